/*
 * worker/providers/simulated.c: the provider of the local stack.  No
 * network: progress climbs steadily over VGEN_SIM_SECONDS, driven by the
 * job's timer in the worker's loop, then a small MP4 is written into the
 * media folder and the job completes with its file:// URL.
 */
#include "../wrk_int.h"

static int64_t
tick_ms(const struct wrk_job *job)
{
	int64_t t = job->w->cfg->sim_ms / 50;

	return t < 20 ? 20 : t > 1000 ? 1000 : t;
}

static int
sim_start(struct wrk_job *job)
{
	job->timer_at = vg_now_ms() + tick_ms(job);
	return 0;
}

static void
sim_timer(struct wrk_job *job)
{
	int64_t total = job->w->cfg->sim_ms, now = vg_now_ms();
	int64_t elapsed = now - job->started_ms;
	char path[512], url[600];
	json_t *meta;

	if (elapsed < total) {
		wrk_job_progress(job, (int)(elapsed * 100 / (total ? total : 1)));
		job->timer_at = now + tick_ms(job);
		return;
	}
	job->timer_at = 0;
	wrk_media_path(job, path, sizeof(path));
	if (wrk_media_write_sample(path) < 0) {
		wrk_job_failed(job, WRK_CLASS_TRANSIENT,
		    "the simulated video could not be stored", -1);
		return;
	}
	snprintf(url, sizeof(url), "file://%s", path);
	meta = wrk_job_metadata(job);
	if (meta != NULL)
		json_object_set_new(meta, "simulated_ms", json_integer(total));
	wrk_job_succeed(job, url, 4, meta);
}

static void
sim_done(struct wrk_job *job, struct wrk_xfer *x, int rc)
{
	(void)x;
	(void)rc;
	wrk_job_failed(job, WRK_CLASS_TRANSIENT, "unexpected transfer", -1);
}

const struct wrk_provider_ops wrk_provider_simulated = {
	.name = "simulated",
	.needs_url = false,
	.start = sim_start,
	.done = sim_done,
	.timer = sim_timer,
	.fini = NULL,
};
