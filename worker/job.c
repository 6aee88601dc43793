/*
 * worker/job.c: a job in flight and how it ends.  Every write here is
 * fenced by the store: VG_ESTALE means the job was canceled or taken over
 * meanwhile, and the worker stops quietly.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "wrk_int.h"

struct wrk_job *
wrk_job_new(struct wrk *w, struct store_job *row)
{
	struct wrk_job *job = calloc(1, sizeof(*job));

	if (job == NULL) {
		store_job_fini(row);
		return NULL;
	}
	job->w = w;
	job->row = *row;
	memset(row, 0, sizeof(*row));
	job->fence.id = job->row.id;
	job->fence.attempt = job->row.attempts;
	job->ops = w->ops;
	job->started_ms = vg_now_ms();
	job->deadline_ms = job->started_ms + w->cfg->job_deadline_s * 1000;
	job->progress = job->progress_sent = job->row.progress;
	job->next = w->jobs;
	if (w->jobs != NULL)
		w->jobs->prev = job;
	w->jobs = job;
	w->njobs++;
	return job;
}

void
wrk_job_free(struct wrk_job *job)
{
	struct wrk *w;

	if (job == NULL)
		return;
	w = job->w;
	wrk_xfer_free(job->xfer);
	if (job->ops != NULL && job->ops->fini != NULL)
		job->ops->fini(job);
	if (job->prev != NULL)
		job->prev->next = job->next;
	else
		w->jobs = job->next;
	if (job->next != NULL)
		job->next->prev = job->prev;
	w->njobs--;
	store_job_fini(&job->row);
	free(job);
}

void
wrk_job_progress(struct wrk_job *job, int percent)
{
	if (percent > 99)
		percent = 99;	/* 100 is written by the completion */
	if (percent > job->progress)
		job->progress = percent;
}

json_t *
wrk_job_metadata(struct wrk_job *job)
{
	return json_pack("{s:s, s:i}", "provider", job->ops->name, "attempt",
	    job->fence.attempt);
}

/* A store answer after a fenced write: log it the one time. */
static void
store_result(struct wrk_job *job, int rv, const char *what)
{
	if (rv == VG_ESTALE) {
		job->w->lost++;
		vg_info("job lost job=%s attempt=%d during=%s", job->row.id,
		    job->fence.attempt, what);
	} else if (rv < 0) {
		vg_error("store write failed job=%s during=%s error=\"%s\"",
		    job->row.id, what, vg_strerror(rv));
	}
}

void
wrk_job_succeed(struct wrk_job *job, const char *video_url, int duration,
    json_t *metadata)
{
	char video_id[VG_UUID_STRLEN + 1] = "";
	struct store_video_new v = { 0 };
	char *meta = NULL;
	int rv;

	if (metadata != NULL)
		meta = json_dumps(metadata, JSON_COMPACT);
	v.model_used = job->row.model;
	v.video_url = video_url;
	v.duration = duration;
	v.metadata = meta;
	rv = store_job_complete(job->w->db, job->w->cfg->worker_id, &job->fence,
	    &v, video_id);
	if (rv == 0) {
		job->w->completed++;
		vg_info("job completed job=%s attempt=%d video=%s ms=%lld",
		    job->row.id, job->fence.attempt, video_id,
		    (long long)(vg_now_ms() - job->started_ms));
	}
	store_result(job, rv, "complete");
	free(meta);
	json_decref(metadata);
	wrk_job_free(job);
}

static uint32_t
rnd32(void)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)vg_now_ms() * 2654435761u;
	return r;
}

void
wrk_job_failed(struct wrk_job *job, enum wrk_class cls, const char *msg,
    int64_t retry_ms)
{
	const struct wrk_config *cfg = job->w->cfg;
	bool failed = false;
	int64_t delay;
	int rv;

	if (msg == NULL || msg[0] == '\0')
		msg = "video generation failed";
	if (cls == WRK_CLASS_TRANSIENT || cls == WRK_CLASS_RATE_LIMIT) {
		delay = retry_ms;
		if (cls == WRK_CLASS_TRANSIENT || delay < 0)
			delay = wrk_backoff_ms(job->fence.attempt,
			    cfg->backoff_base_ms, WRK_BACKOFF_MAX_MS, rnd32());
		if (delay > WRK_RETRY_AFTER_MAX_MS)
			delay = WRK_RETRY_AFTER_MAX_MS;
		rv = store_job_retry(job->w->db, cfg->worker_id, &job->fence,
		    delay, msg, cls == WRK_CLASS_TRANSIENT, &failed);
		if (rv == 0) {
			if (failed)
				job->w->failed++;
			else
				job->w->retried++;
			vg_info("job %s job=%s attempt=%d class=%s delay_ms=%lld "
			    "error=\"%s\"", failed ? "failed" : "retry",
			    job->row.id, job->fence.attempt,
			    wrk_class_name(cls), (long long)delay, msg);
		}
		store_result(job, rv, "retry");
	} else {
		rv = store_job_fail(job->w->db, cfg->worker_id, &job->fence,
		    msg);
		if (rv == 0) {
			job->w->failed++;
			vg_info("job failed job=%s attempt=%d class=%s "
			    "error=\"%s\"", job->row.id, job->fence.attempt,
			    wrk_class_name(cls), msg);
		}
		store_result(job, rv, "fail");
	}
	wrk_job_free(job);
}

void
wrk_job_drop(struct wrk_job *job, const char *why)
{
	job->w->lost++;
	vg_info("job dropped job=%s attempt=%d reason=%s", job->row.id,
	    job->fence.attempt, why);
	wrk_job_free(job);
}

void
wrk_job_http_failed(struct wrk_job *job, struct wrk_xfer *x, int rc,
    const char *what)
{
	struct wrk_http_error he = { 0 };
	char msg[WRK_MSG_MAX + 128];
	enum wrk_class cls = WRK_CLASS_TRANSIENT;
	int64_t retry_ms = -1;

	if (x->deadline) {
		snprintf(msg, sizeof(msg), "video generation timed out after "
		    "%ld s", job->w->cfg->job_deadline_s);
	} else if (x->refused || rc == CURLE_UNSUPPORTED_PROTOCOL) {
		cls = WRK_CLASS_PERMANENT;
		snprintf(msg, sizeof(msg), "the provider's %s URL points "
		    "somewhere the worker does not fetch from", what);
	} else if (x->bad_type) {
		cls = WRK_CLASS_PERMANENT;
		snprintf(msg, sizeof(msg), "the provider's %s is not a video "
		    "(Content-Type \"%.60s\")", what, x->content_type);
	} else if (x->too_big) {
		cls = WRK_CLASS_PERMANENT;
		snprintf(msg, sizeof(msg), "the provider's %s answer was too "
		    "large", what);
	} else if (rc == CURLE_TOO_MANY_REDIRECTS) {
		cls = WRK_CLASS_PERMANENT;
		snprintf(msg, sizeof(msg), "the provider's %s redirected too "
		    "often", what);
	} else if (x->status >= 300 && x->status < 400) {
		cls = WRK_CLASS_PERMANENT;
		snprintf(msg, sizeof(msg), "the provider's %s answered with an "
		    "unexpected redirect (HTTP %ld)", what, x->status);
	} else if (x->status >= 400 && (rc == CURLE_OK ||
	    rc == CURLE_WRITE_ERROR || rc == CURLE_PARTIAL_FILE)) {
		if (wrk_http_error_parse(x->status, x->body ? x->body : "",
		    x->len, x->content_type, &he) == 0) {
			cls = he.cls;
			snprintf(msg, sizeof(msg), "%s", he.message);
			wrk_http_error_fini(&he);
		} else {
			snprintf(msg, sizeof(msg), "HTTP %ld from the provider",
			    x->status);
		}
		if (cls == WRK_CLASS_RATE_LIMIT)
			retry_ms = wrk_retry_after_ms(x->retry_after[0] ?
			    x->retry_after : NULL, x->retry_after_ms[0] ?
			    x->retry_after_ms : NULL, (int64_t)time(NULL),
			    WRK_RETRY_AFTER_MAX_MS);
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(msg, sizeof(msg), "the provider stopped responding "
		    "during %s", what);
	} else if (rc != CURLE_OK) {
		snprintf(msg, sizeof(msg), "could not reach the provider "
		    "(%s: %s)", what, curl_easy_strerror((CURLcode)rc));
	} else {
		cls = WRK_CLASS_PERMANENT;
		snprintf(msg, sizeof(msg), "unexpected answer to %s (HTTP %ld)",
		    what, x->status);
	}
	wrk_job_failed(job, cls, msg, retry_ms);
}
