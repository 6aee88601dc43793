/*
 * worker/providers/chat_sse.c: OpenAI-compatible chat completions that
 * stream the generation (shared/sora-api.md §2).  POST
 * /v1/chat/completions with stream:true; the SSE bytes go through
 * wrk_sse and wrk_chat, which find progress and the final video URL in
 * the text; the URL is downloaded at once (it expires) and the job
 * completes with the local copy.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../wrk_int.h"

struct chat_state {
	struct wrk_sse sse;
	struct wrk_chat chat;
	bool sse_mode;		/* the answer is text/event-stream */
	bool decided;
	bool downloading;
	json_t *meta;		/* built when the URL is known */
	char *url;
};

static int
on_event(void *arg, const char *event, const char *data, size_t len)
{
	struct chat_state *st = arg;

	if (strcmp(event, "error") == 0)
		return wrk_chat_error_event(&st->chat, data, len);
	return wrk_chat_event(&st->chat, data, len);
}

static int
on_data(struct wrk_xfer *x, const char *data, size_t len)
{
	struct wrk_job *job = x->job;
	struct chat_state *st = job->prov;
	int rv;

	if (!st->decided) {
		st->decided = true;
		st->sse_mode = strncasecmp(x->content_type,
		    "text/event-stream", 17) == 0;
	}
	if (!st->sse_mode)
		return wrk_xfer_body_add(x, data, len);
	rv = wrk_sse_feed(&st->sse, data, len);
	if (st->chat.progress >= 0)
		wrk_job_progress(job, st->chat.progress);
	return rv;
}

static int
chat_start(struct wrk_job *job)
{
	const struct wrk_config *cfg = job->w->cfg;
	struct chat_state *st = calloc(1, sizeof(*st));
	struct wrk_xfer *x = NULL;
	char url[1024];
	char *body = NULL;
	json_t *req;
	int rv;

	if (st == NULL)
		return VG_ENOMEM;
	job->prov = st;
	wrk_sse_init(&st->sse, WRK_SSE_MAX_LINE, on_event, st);
	wrk_chat_init(&st->chat);
	if (wrk_url_join(cfg->provider_url, "/v1/chat/completions", url,
	    sizeof(url)) < 0)
		return VG_EINVAL;
	req = json_pack("{s:s, s:b, s:[{s:s, s:s}]}", "model",
	    job->row.model ? job->row.model : "", "stream", 1, "messages",
	    "role", "user", "content", job->row.prompt);
	if (req != NULL)
		body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL)
		return VG_ENOMEM;
	x = wrk_xfer_new(job, WRK_XFER_STREAM, url, true, body);
	free(body);
	if (x == NULL)
		return VG_ENOMEM;
	x->on_data = on_data;
	rv = wrk_xfer_start(x);
	if (rv < 0)
		wrk_xfer_free(x);
	return rv;
}

static void
stream_done(struct wrk_job *job, struct wrk_xfer *x, int rc)
{
	struct chat_state *st = job->prov;
	struct wrk_chat *c = &st->chat;
	enum wrk_class cls;
	json_t *final = NULL;
	int rv = 0;

	if (x->status < 200 || x->status >= 300 || x->deadline ||
	    x->too_big) {
		wrk_job_http_failed(job, x, rc, "generation stream");
		return;
	}
	if (x->cb_err == VG_ETOOBIG || x->cb_err == VG_EPROTO) {
		wrk_job_failed(job, WRK_CLASS_PERMANENT, x->cb_err ==
		    VG_ETOOBIG ? "the provider's stream had a line or text "
		    "too large" : "the provider's stream was malformed", -1);
		return;
	}
	if (x->cb_err < 0) {
		wrk_job_failed(job, WRK_CLASS_TRANSIENT,
		    "the generation stream could not be read", -1);
		return;
	}
	if (!st->sse_mode && x->len > 0)
		rv = wrk_chat_event(c, x->body, x->len);
	else if (rc == CURLE_OK)
		rv = wrk_sse_finish(&st->sse);
	if (rv == 0 || rv == VG_ETOOBIG || rv == VG_EPROTO)
		rv = wrk_chat_finish(c, rc == CURLE_OK);
	if (rv < 0 || c->outcome == WRK_CHAT_PENDING) {
		wrk_job_failed(job, WRK_CLASS_TRANSIENT,
		    "the generation stream could not be read", -1);
		return;
	}
	if (c->outcome != WRK_CHAT_SUCCESS) {
		cls = c->outcome == WRK_CHAT_ERROR_POLICY ? WRK_CLASS_POLICY :
		    c->outcome == WRK_CHAT_ERROR_TRANSIENT ?
		    WRK_CLASS_TRANSIENT : WRK_CLASS_PERMANENT;
		if (cls == WRK_CLASS_TRANSIENT && rc == CURLE_OPERATION_TIMEDOUT) {
			char msg[128];

			snprintf(msg, sizeof(msg), "the provider's stream went "
			    "silent for %ld s", job->w->cfg->idle_timeout_s);
			wrk_job_failed(job, cls, msg, -1);
			return;
		}
		if (cls == WRK_CLASS_TRANSIENT && rc != CURLE_OK)
			vg_info("stream dropped job=%s error=\"%s\"",
			    job->row.id, curl_easy_strerror((CURLcode)rc));
		wrk_job_failed(job, cls, c->error, -1);
		return;
	}
	if (c->last_json != NULL)
		final = json_loads(c->last_json, 0, NULL);
	st->meta = wrk_job_metadata(job);
	if (st->meta != NULL) {
		json_object_set_new(st->meta, "final", final ? final :
		    json_null());
		json_object_set_new(st->meta, "truncated",
		    json_boolean(c->truncated));
	} else {
		json_decref(final);
	}
	st->url = strdup(c->url);
	if (st->url == NULL) {
		wrk_job_failed(job, WRK_CLASS_TRANSIENT, "out of memory", -1);
		return;
	}
	vg_info("video ready job=%s downloading=1", job->row.id);
	st->downloading = true;
	rv = wrk_media_fetch(job, st->url, false);
	if (rv == VG_EPERM)
		wrk_job_failed(job, WRK_CLASS_PERMANENT, "the provider's video "
		    "URL points somewhere the worker does not fetch from", -1);
	else if (rv < 0)
		wrk_job_failed(job, WRK_CLASS_TRANSIENT,
		    "the video download could not start", -1);
}

static void
chat_done(struct wrk_job *job, struct wrk_xfer *x, int rc)
{
	struct chat_state *st = job->prov;
	json_t *meta;

	if (!st->downloading) {
		stream_done(job, x, rc);
		return;
	}
	meta = st->meta;
	st->meta = NULL;
	wrk_media_finish(job, x, rc, st->url, 0, meta);
}

static void
chat_fini(struct wrk_job *job)
{
	struct chat_state *st = job->prov;

	if (st == NULL)
		return;
	wrk_sse_fini(&st->sse);
	wrk_chat_fini(&st->chat);
	json_decref(st->meta);
	free(st->url);
	free(st);
	job->prov = NULL;
}

const struct wrk_provider_ops wrk_provider_chat_sse = {
	.name = "chat-sse",
	.needs_url = true,
	.start = chat_start,
	.done = chat_done,
	.timer = NULL,
	.fini = chat_fini,
};
