/*
 * worker/wrk.h: vgen-worker, the process that turns pending video jobs
 * into videos (DESIGN §7).
 *
 * One thread runs one event loop (loop.c): a curl multi handle drives
 * every provider transfer, the PostgreSQL LISTEN socket wakes claiming and
 * carries cancellations, and timers drive polling, progress batches,
 * lease extension, the reaper and the simulated provider.  Up to
 * `concurrency` jobs run at once; there is no thread per job.
 *
 * A provider (worker/providers/) is a table of operations with one
 * exported symbol per file; the loop calls them and the provider answers
 * through the job helpers of wrk_int.h (progress, success, failure).
 */
#ifndef WRK_H
#define WRK_H

#include <stdbool.h>
#include <stdint.h>

#include "vg.h"

/*
 * The worker's settings, as vg_config_load fills them from VGEN_* and
 * --flags (worker/main.c).  Strings are borrowed (argv, environ or
 * static defaults); wrk_run copies nothing it keeps past its return.
 */
struct wrk_config {
	const char *database_url;
	const char *provider;		/* simulated | chat-sse | openai-videos */
	const char *provider_url;	/* base URL, "" or NULL for simulated */
	const char *api_key;		/* never logged */
	const char *worker_id;		/* locked_by; default host:pid */
	const char *model_portrait;
	const char *model_landscape;
	const char *media_dir;		/* downloaded and simulated videos */
	long concurrency;		/* jobs in flight */
	long lease_s;			/* lease length; extended every lease/3 */
	long poll_ms;			/* slow claim poll (LISTEN fallback) */
	bool poll_only;			/* no LISTEN vgen_jobs: poll alone */
	long job_deadline_s;		/* overall per-job deadline */
	long idle_timeout_s;		/* a stream silent this long is dropped */
	long sim_ms;			/* simulated generation time */
	long grace_s;			/* SIGTERM grace before release */
	long video_poll_ms;		/* openai-videos status poll interval */
	long backoff_base_ms;		/* first transient retry delay cap */
	long media_max;			/* largest video download, bytes */
};

struct wrk_job;
struct wrk_xfer;

/*
 * wrk_provider_ops: one provider.  start begins the generation of a job
 * just claimed (adding a transfer, or arming the job's timer); done is
 * called when a transfer the provider started ended (rc is libcurl's
 * result; the transfer is freed after done returns); timer when the
 * job's timer (job->timer_at) is due; fini releases job->prov.  A
 * provider ends a job with wrk_job_succeed or wrk_job_failed (wrk_int.h);
 * after that it must not touch the job again.  start returns 0 or a
 * VG_E* code (the loop then fails the job as transient).
 */
struct wrk_provider_ops {
	const char *name;	/* as VGEN_PROVIDER spells it */
	bool needs_url;		/* VGEN_PROVIDER_URL is required */
	int (*start)(struct wrk_job *job);
	void (*done)(struct wrk_job *job, struct wrk_xfer *x, int rc);
	void (*timer)(struct wrk_job *job);
	void (*fini)(struct wrk_job *job);
};

extern const struct wrk_provider_ops wrk_provider_simulated;
extern const struct wrk_provider_ops wrk_provider_chat_sse;
extern const struct wrk_provider_ops wrk_provider_openai_videos;

/* wrk_provider_find returns the provider named `name`, or NULL. */
const struct wrk_provider_ops *wrk_provider_find(const char *name);

/*
 * wrk_run runs the worker until SIGTERM or SIGINT (it installs the
 * handlers): stop claiming, give in-flight jobs grace_s to finish, hand
 * the rest back to the queue.  Returns 0 after a clean stop, or a VG_E*
 * code when it could not start (logged).
 */
int wrk_run(const struct wrk_config *cfg) VG_MUSTCHECK;

#endif /* WRK_H */
