/*
 * worker/providers/openai_videos.c: the OpenAI Videos API and the
 * resellers that copy it (shared/sora-api.md §1, §3).  POST /v1/videos
 * creates a generation; its id is stored in external_job_id before
 * anything else, so a job claimed again resumes polling GET
 * /v1/videos/{id} and never pays for a second generation; a completed
 * video is fetched from /v1/videos/{id}/content into the media folder.
 */
#include <stdlib.h>
#include <string.h>

#include "../wrk_int.h"

enum vstate { V_CREATE, V_POLL, V_CONTENT };

struct videos_state {
	enum vstate state;
	char *id;		/* the provider's video id */
	char *source;		/* the content URL downloaded */
	json_t *final;		/* the last video object */
	int seconds;
};

static int
post_create(struct wrk_job *job)
{
	const struct wrk_config *cfg = job->w->cfg;
	struct wrk_xfer *x;
	char url[1024], *body = NULL;
	json_t *req;
	int rv;

	if (wrk_url_join(cfg->provider_url, "/v1/videos", url, sizeof(url)) < 0)
		return VG_EINVAL;
	req = json_pack("{s:s, s:s, s:s, s:s}", "model",
	    job->row.model ? job->row.model : "", "prompt", job->row.prompt,
	    "seconds", "4", "size", job->row.orientation == STORE_PORTRAIT ?
	    "720x1280" : "1280x720");
	if (req != NULL)
		body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL)
		return VG_ENOMEM;
	x = wrk_xfer_new(job, WRK_XFER_API, url, true, body);
	free(body);
	if (x == NULL)
		return VG_ENOMEM;
	rv = wrk_xfer_start(x);
	if (rv < 0)
		wrk_xfer_free(x);
	return rv;
}

/* id_url writes base + "/v1/videos/<escaped id>" + suffix into out. */
static int
id_url(struct wrk_job *job, const char *suffix, char *out, size_t n)
{
	struct videos_state *st = job->prov;
	char *esc = curl_easy_escape(NULL, st->id, 0), *path = NULL;
	int rv;

	if (esc == NULL || asprintf(&path, "/v1/videos/%s%s", esc, suffix) < 0)
		path = NULL;
	curl_free(esc);
	if (path == NULL)
		return VG_ENOMEM;
	rv = wrk_url_join(job->w->cfg->provider_url, path, out, n);
	free(path);
	return rv;
}

static void
poll_now(struct wrk_job *job)
{
	struct wrk_xfer *x;
	char url[1024];

	job->timer_at = 0;
	if (id_url(job, "", url, sizeof(url)) < 0 ||
	    (x = wrk_xfer_new(job, WRK_XFER_API, url, true, NULL)) == NULL) {
		wrk_job_failed(job, WRK_CLASS_TRANSIENT, "out of memory", -1);
		return;
	}
	if (wrk_xfer_start(x) < 0) {
		wrk_xfer_free(x);
		wrk_job_failed(job, WRK_CLASS_TRANSIENT,
		    "the status poll could not start", -1);
	}
}

static int
videos_start(struct wrk_job *job)
{
	struct videos_state *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return VG_ENOMEM;
	job->prov = st;
	if (job->row.external_job_id != NULL &&
	    job->row.external_job_id[0] != '\0') {
		/* Paid work already submitted: resume, never create again. */
		st->id = strdup(job->row.external_job_id);
		if (st->id == NULL)
			return VG_ENOMEM;
		st->state = V_POLL;
		vg_info("job resumed job=%s external_id=%s", job->row.id,
		    st->id);
		job->timer_at = vg_now_ms();
		return 0;
	}
	st->state = V_CREATE;
	return post_create(job);
}

/* got_object acts on a video object from the create call or a poll. */
static void
got_object(struct wrk_job *job, struct wrk_video_status *v, json_t *obj)
{
	struct videos_state *st = job->prov;
	char url[1024];
	int rv;

	json_decref(st->final);
	st->final = obj;
	if (v->seconds > 0)
		st->seconds = (int)(v->seconds + 0.5);
	if (v->progress >= 0)
		wrk_job_progress(job, v->progress);
	switch (v->state) {
	case WRK_VIDEO_FAILED:
		wrk_job_failed(job, v->error_class == WRK_CLASS_NONE ?
		    WRK_CLASS_PERMANENT : v->error_class, v->error, -1);
		return;
	case WRK_VIDEO_DONE:
		st->state = V_CONTENT;
		if (v->url != NULL) {
			st->source = strdup(v->url);
			rv = st->source ? wrk_media_fetch(job, st->source,
			    false) : VG_ENOMEM;
		} else {
			rv = id_url(job, "/content", url, sizeof(url));
			if (rv == 0 && (st->source = strdup(url)) == NULL)
				rv = VG_ENOMEM;
			if (rv == 0)
				rv = wrk_media_fetch(job, st->source, true);
		}
		if (rv == VG_EPERM)
			wrk_job_failed(job, WRK_CLASS_PERMANENT, "the "
			    "provider's video URL points somewhere the worker "
			    "does not fetch from", -1);
		else if (rv < 0)
			wrk_job_failed(job, WRK_CLASS_TRANSIENT,
			    "the video download could not start", -1);
		return;
	default:
		st->state = V_POLL;
		job->timer_at = vg_now_ms() + job->w->cfg->video_poll_ms;
		return;
	}
}

static void
videos_done(struct wrk_job *job, struct wrk_xfer *x, int rc)
{
	struct videos_state *st = job->prov;
	struct wrk_video_status v = { 0 };
	json_t *obj, *meta;
	int rv;

	if (st->state == V_CONTENT) {
		meta = wrk_job_metadata(job);
		if (meta != NULL) {
			json_object_set_new(meta, "external_id",
			    json_string(st->id));
			json_object_set(meta, "final", st->final ? st->final :
			    json_null());
		}
		wrk_media_finish(job, x, rc, st->source, st->seconds, meta);
		return;
	}
	if (!wrk_xfer_ok(x, rc)) {
		if (st->state == V_POLL && x->status == 404)
			wrk_job_failed(job, WRK_CLASS_PERMANENT, "the provider "
			    "no longer knows this generation", -1);
		else
			wrk_job_http_failed(job, x, rc, st->state == V_CREATE ?
			    "create call" : "status poll");
		return;
	}
	if (wrk_video_parse(x->body ? x->body : "", x->len, &v) < 0 ||
	    (obj = json_loadb(x->body, x->len, 0, NULL)) == NULL) {
		wrk_video_status_fini(&v);
		wrk_job_failed(job, WRK_CLASS_PERMANENT,
		    "the provider's answer was not a video object", -1);
		return;
	}
	if (st->state == V_CREATE) {
		if (v.id == NULL) {
			json_decref(obj);
			wrk_video_status_fini(&v);
			wrk_job_failed(job, WRK_CLASS_PERMANENT, "the provider "
			    "did not name the generation it started", -1);
			return;
		}
		st->id = strdup(v.id);
		rv = st->id ? store_job_set_external(job->w->db,
		    job->w->cfg->worker_id, &job->fence, st->id) : VG_ENOMEM;
		if (rv == VG_ESTALE) {
			json_decref(obj);
			wrk_video_status_fini(&v);
			wrk_job_drop(job, "lost before the external id was "
			    "stored");
			return;
		}
		if (rv < 0)
			vg_error("cannot store external id job=%s "
			    "external_id=%s error=\"%s\"", job->row.id,
			    v.id, vg_strerror(rv));
		else
			vg_info("job submitted job=%s external_id=%s",
			    job->row.id, v.id);
	}
	got_object(job, &v, obj);
	wrk_video_status_fini(&v);
}

static void
videos_timer(struct wrk_job *job)
{
	poll_now(job);
}

static void
videos_fini(struct wrk_job *job)
{
	struct videos_state *st = job->prov;

	if (st == NULL)
		return;
	free(st->id);
	free(st->source);
	json_decref(st->final);
	free(st);
	job->prov = NULL;
}

const struct wrk_provider_ops wrk_provider_openai_videos = {
	.name = "openai-videos",
	.needs_url = true,
	.start = videos_start,
	.done = videos_done,
	.timer = videos_timer,
	.fini = videos_fini,
};
