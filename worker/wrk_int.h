/*
 * worker/wrk_int.h: shared by the worker's files only.  The loop state,
 * the in-flight job, one HTTP transfer, and the helpers providers use.
 */
#ifndef WRK_INT_H
#define WRK_INT_H

#include <stdio.h>

#include <curl/curl.h>

#include "store.h"
#include "wrk.h"
#include "wrk_parse.h"

#define WRK_API_BODY_MAX (1024 * 1024)	/* JSON answers and error bodies */
#define WRK_STREAM_MAX (16 * 1024 * 1024)	/* one SSE stream in total */
#define WRK_RETRY_AFTER_MAX_MS (10 * 60 * 1000)	/* clamp of any hint */
#define WRK_BACKOFF_MAX_MS (5 * 60 * 1000)
#define WRK_API_TIMEOUT_S 60	/* a whole non-stream API call */
#define WRK_CONNECT_TIMEOUT_S 15

struct wrk;

/* What a transfer is for: it decides the hygiene rules applied. */
enum wrk_xfer_kind {
	WRK_XFER_API,		/* JSON call: no redirects, body capped */
	WRK_XFER_STREAM,	/* SSE: no redirects, idle timeout, on_data */
	WRK_XFER_MEDIA,		/* video download to a file, https redirects */
};

/*
 * One libcurl transfer of a job.  The header callback records the status
 * of the last response and its hint headers; the body goes to `body`
 * (capped at body_max), to `on_data` (streams with a 2xx status) or to
 * `file` (media with a 2xx status).
 */
struct wrk_xfer {
	struct wrk_job *job;
	CURL *easy;
	struct curl_slist *headers;
	enum wrk_xfer_kind kind;
	char *req_body;		/* owned POST body */

	long status;		/* of the last response seen */
	char content_type[128];
	char retry_after[128];
	char retry_after_ms[64];

	char *body;		/* owned, NUL-terminated */
	size_t len, cap, body_max;
	size_t total;		/* all body bytes, every sink */

	/* streams: called with 2xx body bytes; < 0 stops the transfer */
	int (*on_data)(struct wrk_xfer *x, const char *data, size_t len);

	/* media */
	FILE *file;
	char path[512];		/* the final file */
	char part[520];		/* path + ".part" while downloading */
	unsigned char head[12];	/* first bytes: the ftyp check */
	size_t nhead;
	int64_t media_max;

	/* why we stopped it, when we did */
	bool too_big;		/* a cap was hit */
	bool refused;		/* an address or scheme check failed */
	bool bad_type;		/* media Content-Type not a video */
	bool deadline;		/* the job's deadline passed */
	int cb_err;		/* on_data's error */
};

/* A job in flight. */
struct wrk_job {
	struct wrk *w;
	struct wrk_job *prev, *next;
	struct store_job row;	/* as claimed; owned */
	struct store_fence fence;	/* id points into row */
	const struct wrk_provider_ops *ops;
	void *prov;		/* provider state, released by ops->fini */
	struct wrk_xfer *xfer;	/* the transfer running now, or NULL */

	int64_t started_ms;
	int64_t deadline_ms;	/* overall deadline (monotonic) */
	int64_t timer_at;	/* 0: no timer armed */
	int progress;		/* best known, 0..100 */
	int progress_sent;	/* last written */
	int64_t progress_at;	/* when it was written */
};

/* The worker: settings, store connections, the multi handle, the jobs. */
struct wrk {
	const struct wrk_config *cfg;
	const struct wrk_provider_ops *ops;
	store_conn *db;		/* durable: claims, results, lease, reaper */
	store_conn *adb;	/* progress (synchronous_commit off) */
	store_conn *ldb;	/* LISTEN vgen_jobs, vgen_job_cancel */
	bool listening;
	int64_t listen_retry_at;
	CURLM *multi;

	/* the provider URL, split once */
	char prov_scheme[16];
	char prov_host[256];
	long prov_port;
	char protocols[32];	/* CURLOPT_PROTOCOLS_STR */

	struct wrk_job *jobs;	/* in flight, a list */
	int njobs;
	bool claim_wanted;
	bool stopping;
	int64_t grace_end;

	uint64_t completed, failed, retried, lost;
};

/* ---- job.c ---------------------------------------------------------------- */

/*
 * wrk_job_new makes the in-flight job of a claimed row (stolen: *row is
 * zeroed) and links it into w->jobs.  NULL when memory ran out (the row
 * is then released).  wrk_job_free unlinks and frees it with its
 * transfer and provider state, writing nothing.
 */
struct wrk_job *wrk_job_new(struct wrk *w, struct store_job *row);
void wrk_job_free(struct wrk_job *job);

/* wrk_job_progress records a new percent (kept monotonic, 0..99). */
void wrk_job_progress(struct wrk_job *job, int percent);

/*
 * wrk_job_succeed completes the job: one fenced statement writes the
 * video (model_used = the job's model) and marks the job completed.
 * `metadata` is a JSON object (stolen: the call owns it).  The job is
 * freed.
 */
void wrk_job_succeed(struct wrk_job *job, const char *video_url,
    int duration, json_t *metadata);

/*
 * wrk_job_failed ends this attempt by class: TRANSIENT goes back to
 * pending with backoff (using an attempt), RATE_LIMIT is snoozed for
 * retry_ms (or a backoff when < 0) without using one, the rest fail with
 * `msg` (readable by a user).  The job is freed.
 */
void wrk_job_failed(struct wrk_job *job, enum wrk_class cls,
    const char *msg, int64_t retry_ms);

/* wrk_job_drop frees the job without writing anything (lost, canceled). */
void wrk_job_drop(struct wrk_job *job, const char *why);

/*
 * wrk_job_http_failed classifies a finished transfer that did not give a
 * usable answer (libcurl error, HTTP status ≥ 300, our own caps and
 * checks) and ends the job through wrk_job_failed.  `what` names the
 * call in messages ("create", "download").
 */
void wrk_job_http_failed(struct wrk_job *job, struct wrk_xfer *x, int rc,
    const char *what);

/* wrk_job_metadata starts the metadata object {"provider": ...}. */
json_t *wrk_job_metadata(struct wrk_job *job);

/* ---- http.c ---------------------------------------------------------------- */

/*
 * wrk_xfer_new makes a transfer of `kind` for `url` with the hygiene
 * options of DESIGN §7, the provider's Authorization header when `auth`,
 * and a JSON POST of `post` (copied) when not NULL.  Returns NULL when
 * memory ran out.  wrk_xfer_start adds it to the loop (job->xfer = x);
 * wrk_xfer_free removes and frees it (NULL is a no-op).
 */
struct wrk_xfer *wrk_xfer_new(struct wrk_job *job, enum wrk_xfer_kind kind,
    const char *url, bool auth, const char *post);
int wrk_xfer_start(struct wrk_xfer *x) VG_MUSTCHECK;
void wrk_xfer_free(struct wrk_xfer *x);

/* wrk_xfer_body_add appends to x->body under its cap (VG_ETOOBIG). */
int wrk_xfer_body_add(struct wrk_xfer *x, const char *data, size_t len)
    VG_MUSTCHECK;

/* wrk_xfer_ok: libcurl finished cleanly with a 2xx status. */
bool wrk_xfer_ok(const struct wrk_xfer *x, int rc);

/* wrk_url_join writes base + path (base's trailing '/' and a "/v1" dup
 * handled) into out.  Returns 0 or VG_ETOOBIG. */
int wrk_url_join(const char *base, const char *path, char *out, size_t n);

/* wrk_http_init splits the provider URL into w->prov_* and protocols. */
int wrk_http_init(struct wrk *w) VG_MUSTCHECK;

/* ---- media.c ---------------------------------------------------------------- */

/*
 * wrk_media_fetch starts the download of `url` into the media folder as
 * the job's file; when it ends the provider's done sees a WRK_XFER_MEDIA
 * transfer and calls wrk_media_finish.  Returns 0 or VG_E* (refused URL:
 * VG_EPERM).
 */
int wrk_media_fetch(struct wrk_job *job, const char *url, bool auth)
    VG_MUSTCHECK;

/*
 * wrk_media_finish checks a finished download (status, Content-Type,
 * the 'ftyp' box), moves it into place and completes the job with its
 * file:// URL and `metadata` (stolen); on any problem it fails the job
 * by class and removes the partial file.
 */
void wrk_media_finish(struct wrk_job *job, struct wrk_xfer *x, int rc,
    const char *source_url, int duration, json_t *metadata);

/* wrk_media_path writes "<media_dir>/<job id>.mp4" into out. */
void wrk_media_path(const struct wrk_job *job, char *out, size_t n);

/* wrk_media_write_sample writes a small valid-looking MP4 to `path`. */
int wrk_media_write_sample(const char *path) VG_MUSTCHECK;

#endif /* WRK_INT_H */
