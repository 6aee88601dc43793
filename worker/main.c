/*
 * worker/main.c: vgen-worker's settings (VGEN_* variables and --flags)
 * and its start.  The work itself is in loop.c.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wrk.h"

#define USAGE "usage: vgen-worker [--flag value ...]"

static struct {
	const char *database_url, *provider, *provider_url, *api_key;
	const char *worker_id, *model_portrait, *model_landscape, *media_dir;
	const char *run_dir;
	long concurrency, lease_s, poll_ms, deadline_s, idle_s, sim_s, sim_ms;
	long grace_s, video_poll_ms, backoff_ms, media_max;
	bool listen;
} o;

static const struct vg_opt opts[] = {
	{ "database-url", "VGEN_DATABASE_URL", VG_OPT_STR, NULL,
	    "libpq connection string (required)", &o.database_url, 0, 0 },
	{ "provider", "VGEN_PROVIDER", VG_OPT_STR, "simulated",
	    "simulated, chat-sse or openai-videos", &o.provider, 0, 0 },
	{ "provider-url", "VGEN_PROVIDER_URL", VG_OPT_STR, NULL,
	    "provider base URL (chat-sse, openai-videos)", &o.provider_url,
	    0, 0 },
	{ "provider-api-key", "VGEN_PROVIDER_API_KEY", VG_OPT_STR, NULL,
	    "provider API key (sent as a bearer token, never logged)",
	    &o.api_key, 0, 0 },
	{ "worker-concurrency", "VGEN_WORKER_CONCURRENCY", VG_OPT_INT, "256",
	    "jobs in flight in this process", &o.concurrency, 1, 100000 },
	{ "worker-id", "VGEN_WORKER_ID", VG_OPT_STR, NULL,
	    "lease owner name (default host:pid)", &o.worker_id, 0, 0 },
	{ "lease-s", "VGEN_LEASE_S", VG_OPT_INT, "30",
	    "job lease in seconds, extended every lease/3", &o.lease_s, 1,
	    3600 },
	{ "poll-ms", "VGEN_POLL_MS", VG_OPT_INT, "5000",
	    "slow claim poll when no notification comes", &o.poll_ms, 10,
	    3600000 },
	{ "worker-listen", "VGEN_WORKER_LISTEN", VG_OPT_BOOL, "1",
	    "wake on LISTEN vgen_jobs (0: claim on the poll alone)",
	    &o.listen, 0, 0 },
	{ "job-deadline-s", "VGEN_JOB_DEADLINE_S", VG_OPT_INT, "1800",
	    "overall deadline of one attempt", &o.deadline_s, 1, 86400 },
	{ "idle-timeout-s", "VGEN_IDLE_TIMEOUT_S", VG_OPT_INT, "180",
	    "a stream silent this long is dropped", &o.idle_s, 1, 86400 },
	{ "model-portrait", "VGEN_MODEL_PORTRAIT", VG_OPT_STR,
	    "sora_video2-portrait", "model for portrait jobs",
	    &o.model_portrait, 0, 0 },
	{ "model-landscape", "VGEN_MODEL_LANDSCAPE", VG_OPT_STR,
	    "sora_video2-landscape", "model for landscape jobs",
	    &o.model_landscape, 0, 0 },
	{ "media-dir", "VGEN_MEDIA_DIR", VG_OPT_STR, NULL,
	    "folder for videos (default <run-dir>/media or "
	    "/tmp/vgen-media-<uid>)", &o.media_dir, 0, 0 },
	{ "run-dir", "VGEN_RUN_DIR", VG_OPT_STR, NULL,
	    "run folder of the local stack", &o.run_dir, 0, 0 },
	{ "media-max", "VGEN_MEDIA_MAX", VG_OPT_INT, "536870912",
	    "largest video download in bytes", &o.media_max, 1024,
	    LONG_MAX },
	{ "sim-seconds", "VGEN_SIM_SECONDS", VG_OPT_INT, "10",
	    "simulated generation time in seconds", &o.sim_s, 0, 86400 },
	{ "sim-ms", "VGEN_SIM_MS", VG_OPT_INT, "0",
	    "simulated generation time in ms (overrides sim-seconds)",
	    &o.sim_ms, 0, 86400000 },
	{ "grace-s", "VGEN_GRACE_S", VG_OPT_INT, "10",
	    "on SIGTERM, time for jobs to finish before release", &o.grace_s,
	    0, 3600 },
	{ "video-poll-ms", "VGEN_VIDEO_POLL_MS", VG_OPT_INT, "1000",
	    "openai-videos status poll interval", &o.video_poll_ms, 10,
	    600000 },
	{ "backoff-base-ms", "VGEN_BACKOFF_BASE_MS", VG_OPT_INT, "2000",
	    "first retry waits up to this (doubling per attempt)",
	    &o.backoff_ms, 1, 3600000 },
	{ NULL, NULL, 0, NULL, NULL, NULL, 0, 0 },
};

int
main(int argc, char **argv)
{
	const struct wrk_provider_ops *ops;
	struct wrk_config cfg = { 0 };
	char host[128], id[200], media[512];
	char **rest;
	long nofile;
	int rv, nrest;

	vg_log_init("worker");
	rv = vg_config_load(opts, USAGE, argc, argv, &rest, &nrest);
	if (rv != 0)
		return rv > 0 ? 0 : 2;
	if (nrest > 0) {
		fprintf(stderr, "vgen-worker: unexpected argument \"%s\" "
		    "(see --help)\n", rest[0]);
		return 2;
	}
	if (o.database_url == NULL) {
		fprintf(stderr, "vgen-worker: set VGEN_DATABASE_URL "
		    "(a libpq connection string)\n");
		return 2;
	}
	ops = wrk_provider_find(o.provider);
	if (ops == NULL) {
		fprintf(stderr, "vgen-worker: VGEN_PROVIDER \"%s\" is not "
		    "simulated, chat-sse or openai-videos\n", o.provider);
		return 2;
	}
	if (ops->needs_url && (o.provider_url == NULL ||
	    o.provider_url[0] == '\0')) {
		fprintf(stderr, "vgen-worker: provider %s needs "
		    "VGEN_PROVIDER_URL\n", o.provider);
		return 2;
	}
	if (ops->needs_url && strncmp(o.provider_url, "https://", 8) != 0 &&
	    strncmp(o.provider_url, "http://", 7) != 0) {
		fprintf(stderr, "vgen-worker: VGEN_PROVIDER_URL must be an "
		    "http(s) URL\n");
		return 2;
	}
	if (o.worker_id == NULL) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		snprintf(id, sizeof(id), "%s:%ld", host, (long)getpid());
		o.worker_id = id;
	}
	if (o.media_dir == NULL) {
		if (o.run_dir != NULL)
			snprintf(media, sizeof(media), "%s/media", o.run_dir);
		else
			snprintf(media, sizeof(media), "/tmp/vgen-media-%ld",
			    (long)getuid());
		o.media_dir = media;
	}
	cfg.database_url = o.database_url;
	cfg.provider = o.provider;
	cfg.provider_url = ops->needs_url ? o.provider_url : NULL;
	cfg.api_key = o.api_key;
	cfg.worker_id = o.worker_id;
	cfg.model_portrait = o.model_portrait;
	cfg.model_landscape = o.model_landscape;
	cfg.media_dir = o.media_dir;
	cfg.concurrency = o.concurrency;
	nofile = vg_raise_nofile();
	if (nofile > 0 && nofile < o.concurrency + 64)
		vg_warn("open-file limit %ld is low for %ld concurrent "
		    "streams: raise the hard limit (ulimit -Hn)", nofile,
		    o.concurrency);
	cfg.lease_s = o.lease_s;
	cfg.poll_ms = o.poll_ms;
	cfg.poll_only = !o.listen;
	cfg.job_deadline_s = o.deadline_s;
	cfg.idle_timeout_s = o.idle_s;
	cfg.sim_ms = o.sim_ms > 0 ? o.sim_ms : o.sim_s * 1000;
	cfg.grace_s = o.grace_s;
	cfg.video_poll_ms = o.video_poll_ms;
	cfg.backoff_base_ms = o.backoff_ms;
	cfg.media_max = o.media_max;
	rv = wrk_run(&cfg);
	if (rv < 0) {
		fprintf(stderr, "vgen-worker: cannot start: %s\n",
		    vg_strerror(rv));
		return 1;
	}
	return 0;
}
