/*
 * worker/loop.c: the worker's one event loop.  A curl multi handle runs
 * every transfer; curl_multi_poll also watches the LISTEN connection
 * (vgen_jobs wakes claiming, vgen_job_cancel stops a canceled job) and a
 * self-pipe for SIGTERM/SIGINT.  Ticks in the same loop flush progress in
 * batches, extend leases, run the reaper and the slow claim poll, and
 * fire the jobs' timers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wrk_int.h"

#define TICK_MS 250		/* progress batches; the longest poll wait */
#define PROGRESS_GAP_MS 500	/* per job */
#define CLAIM_BATCH 128
#define LEASE_BATCH 1000
#define REAP_MAX 200

static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_got;

static void
on_signal(int sig)
{
	int saved = errno;

	sig_got = sig;
	if (sig_pipe[1] >= 0)
		(void)!write(sig_pipe[1], "x", 1);
	errno = saved;
}

const struct wrk_provider_ops *
wrk_provider_find(const char *name)
{
	static const struct wrk_provider_ops *const all[] = {
		&wrk_provider_simulated, &wrk_provider_chat_sse,
		&wrk_provider_openai_videos, NULL,
	};

	for (int i = 0; all[i] != NULL; i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return NULL;
}

static struct wrk_job *
job_find(struct wrk *w, const char *id)
{
	for (struct wrk_job *j = w->jobs; j != NULL; j = j->next)
		if (strcasecmp(j->row.id, id) == 0)
			return j;
	return NULL;
}

/* ---- LISTEN ------------------------------------------------------------ */

/*
 * With poll_only (VGEN_WORKER_LISTEN=0) new jobs wait for the slow poll,
 * so that the fallback's pickup time can be measured (vgen-bench worker
 * pickup).  Cancellations come by LISTEN either way.
 */
static void
listen_connect(struct wrk *w, int64_t now)
{
	bool jobs = !w->cfg->poll_only;

	if (w->listening || now < w->listen_retry_at)
		return;
	if ((!jobs || store_listen(w->ldb, "vgen_jobs") == 0) &&
	    store_listen(w->ldb, "vgen_job_cancel") == 0) {
		w->listening = true;
		w->claim_wanted = true;	/* a notify may have been missed */
		vg_debug("listening channels=%svgen_job_cancel",
		    jobs ? "vgen_jobs," : "");
		return;
	}
	w->listen_retry_at = now + 1000;
}

/*
 * A vgen_job_cancel names a job that left processing behind a worker's
 * back, or one that a worker finished (ours too).  Check the row: only a
 * job no longer ours is stopped.
 */
static void
cancel_check(struct wrk *w, const char *id)
{
	struct wrk_job *job = job_find(w, id);
	struct store_job row = { 0 };
	bool ours;

	if (job == NULL || store_job_get_any(w->db, job->row.id, &row) < 0)
		return;
	ours = row.status == STORE_JOB_PROCESSING && row.locked_by != NULL &&
	    strcmp(row.locked_by, w->cfg->worker_id) == 0 &&
	    row.attempts == job->fence.attempt;
	if (!ours)
		wrk_job_drop(job, row.status == STORE_JOB_FAILED &&
		    row.error_message != NULL &&
		    strcmp(row.error_message, "canceled") == 0 ? "canceled" :
		    "taken over");
	store_job_fini(&row);
}

static void
notifications(struct wrk *w)
{
	char ch[64], payload[128];
	int rv;

	if (!w->listening)
		return;
	while ((rv = store_notify_next(w->ldb, ch, sizeof(ch), payload,
	    sizeof(payload))) == 1) {
		if (strcmp(ch, "vgen_jobs") == 0)
			w->claim_wanted = true;
		else if (strcmp(ch, "vgen_job_cancel") == 0)
			cancel_check(w, payload);
	}
	if (rv < 0) {
		vg_warn("listen connection lost; reconnecting");
		w->listening = false;
		w->listen_retry_at = vg_now_ms() + 200;
	}
}

/* ---- claiming ---------------------------------------------------------- */

static void
claim(struct wrk *w)
{
	const struct wrk_config *cfg = w->cfg;
	struct store_job rows[CLAIM_BATCH];
	int want = (int)cfg->concurrency - w->njobs, n = 0, rv;

	if (!w->claim_wanted || w->stopping || want <= 0)
		return;
	if (want > CLAIM_BATCH)
		want = CLAIM_BATCH;
	memset(rows, 0, sizeof(rows));
	rv = store_job_claim(w->db, cfg->worker_id, want, (int)cfg->lease_s,
	    cfg->model_portrait, cfg->model_landscape, rows, &n);
	if (rv < 0) {
		vg_warn("claim failed error=\"%s\"", vg_strerror(rv));
		return;	/* claim_wanted stays: the next tick tries again */
	}
	w->claim_wanted = n == want;	/* a full batch: maybe more */
	for (int i = 0; i < n; i++) {
		struct wrk_job *job = wrk_job_new(w, &rows[i]);

		if (job == NULL)
			continue;	/* the lease runs out; the reaper */
		vg_info("job claimed job=%s attempt=%d model=%s%s",
		    job->row.id, job->fence.attempt,
		    job->row.model ? job->row.model : "",
		    job->row.external_job_id ? " resume=1" : "");
		rv = job->ops->start(job);
		if (rv < 0)
			wrk_job_failed(job, WRK_CLASS_TRANSIENT,
			    "the worker could not start the generation", -1);
	}
}

/* ---- periodic work --------------------------------------------------------- */

static void
flush_progress(struct wrk *w, int64_t now)
{
	struct store_fence *f;
	int *p, n = 0, rv;

	if (w->njobs == 0)
		return;
	f = malloc((size_t)w->njobs * sizeof(*f));
	p = malloc((size_t)w->njobs * sizeof(*p));
	if (f == NULL || p == NULL)
		goto out;
	for (struct wrk_job *j = w->jobs; j != NULL; j = j->next) {
		if (j->progress <= j->progress_sent ||
		    now - j->progress_at < PROGRESS_GAP_MS)
			continue;
		f[n] = j->fence;
		p[n++] = j->progress;
		j->progress_sent = j->progress;
		j->progress_at = now;
	}
	rv = store_job_progress_batch(w->adb, w->cfg->worker_id, f, p, n);
	if (rv < 0)
		vg_warn("progress batch failed jobs=%d error=\"%s\"", n,
		    vg_strerror(rv));
out:
	free(f);
	free(p);
}

static void
extend_leases(struct wrk *w)
{
	struct store_fence f[LEASE_BATCH];
	struct wrk_job *jobs[LEASE_BATCH];
	bool lost[LEASE_BATCH];
	struct wrk_job *j = w->jobs;
	int n, rv;

	while (j != NULL) {
		for (n = 0; j != NULL && n < LEASE_BATCH; j = j->next) {
			jobs[n] = j;
			f[n++] = j->fence;
		}
		rv = store_job_lease_extend(w->db, w->cfg->worker_id, f, n,
		    (int)w->cfg->lease_s, lost);
		if (rv < 0) {
			vg_warn("lease extension failed jobs=%d error=\"%s\"",
			    n, vg_strerror(rv));
			return;
		}
		/* j is past this batch; dropping jobs in it is safe. */
		for (int i = 0; i < n; i++)
			if (lost[i])
				wrk_job_drop(jobs[i], "lease lost");
	}
}

static void
reap(struct wrk *w)
{
	int n = 0, rv;

	rv = store_job_reap(w->db, REAP_MAX, &n);
	if (rv < 0)
		vg_warn("reaper failed error=\"%s\"", vg_strerror(rv));
	else if (n > 0) {
		vg_info("reaped expired leases jobs=%d", n);
		w->claim_wanted = true;
	}
}

/* Jobs' timers and the deadline of jobs between transfers. */
static int64_t
timers(struct wrk *w, int64_t now)
{
	int64_t next_due = now + TICK_MS;
	struct wrk_job *j, *next;

	for (j = w->jobs; j != NULL; j = next) {
		next = j->next;
		if (j->xfer == NULL && now >= j->deadline_ms) {
			char msg[96];

			snprintf(msg, sizeof(msg), "video generation timed out "
			    "after %ld s", w->cfg->job_deadline_s);
			wrk_job_failed(j, WRK_CLASS_TRANSIENT, msg, -1);
			continue;
		}
		if (j->timer_at != 0 && now >= j->timer_at) {
			j->timer_at = 0;
			if (j->ops->timer != NULL)
				j->ops->timer(j);
			continue;
		}
		if (j->timer_at != 0 && j->timer_at < next_due)
			next_due = j->timer_at;
	}
	return next_due;
}

static void
transfers(struct wrk *w)
{
	struct wrk_xfer *x;
	struct wrk_job *job;
	CURLMsg *m;
	int running, left;
	char *priv;

	curl_multi_perform(w->multi, &running);
	while ((m = curl_multi_info_read(w->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		priv = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		x = (struct wrk_xfer *)(void *)priv;
		job = x->job;
		int rc = (int)m->data.result;

		curl_multi_remove_handle(w->multi, x->easy);
		job->xfer = NULL;
		x->job = NULL;	/* freed below without the multi */
		job->ops->done(job, x, rc);
		wrk_xfer_free(x);
	}
}

/* After the grace period: hand every job left back to the queue. */
static void
release_all(struct wrk *w)
{
	int rv;

	while (w->jobs != NULL) {
		struct wrk_job *j = w->jobs;

		rv = store_job_retry(w->db, w->cfg->worker_id, &j->fence, 0,
		    NULL, false, NULL);
		if (rv == 0)
			vg_info("job released job=%s attempt=%d", j->row.id,
			    j->fence.attempt);
		else
			vg_warn("job not released job=%s error=\"%s\"",
			    j->row.id, vg_strerror(rv));
		wrk_job_free(j);
	}
}

/* ---- the run ----------------------------------------------------------------- */

static int
signals_init(void)
{
	struct sigaction sa = { 0 };

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return VG_EINTERNAL;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int
wrk_run(const struct wrk_config *cfg)
{
	struct wrk w = { 0 };
	int64_t now, next_progress = 0, next_lease, next_reap = 0, next_poll;
	int64_t reap_ms, next_due;
	struct curl_waitfd fds[2];
	char drain[64];
	int rv, nfds;

	w.cfg = cfg;
	w.ops = wrk_provider_find(cfg->provider);
	if (w.ops == NULL)
		return VG_EINVAL;
	if ((rv = wrk_http_init(&w)) < 0)
		return rv;
	if (mkdir(cfg->media_dir, 0700) < 0 && errno != EEXIST) {
		vg_error("cannot create media folder path=%s error=\"%s\"",
		    cfg->media_dir, strerror(errno));
		return VG_EINVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return VG_EINTERNAL;
	if ((rv = signals_init()) < 0)
		goto out;
	if ((rv = store_open(cfg->database_url, &w.db)) < 0 ||
	    (rv = store_open_async(cfg->database_url, &w.adb)) < 0 ||
	    (rv = store_open(cfg->database_url, &w.ldb)) < 0)
		goto out;
	w.multi = curl_multi_init();
	if (w.multi == NULL) {
		rv = VG_ENOMEM;
		goto out;
	}
	curl_multi_setopt(w.multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);

	now = vg_now_ms();
	next_lease = now + cfg->lease_s * 1000 / 3;
	next_poll = now + cfg->poll_ms;
	reap_ms = cfg->lease_s * 1000 / 2;
	if (reap_ms > 5000)
		reap_ms = 5000;
	if (reap_ms < 500)
		reap_ms = 500;
	w.claim_wanted = true;
	vg_info("worker started id=%s provider=%s concurrency=%ld lease_s=%ld "
	    "poll_ms=%ld listen=%d media=%s", cfg->worker_id, cfg->provider,
	    cfg->concurrency, cfg->lease_s, cfg->poll_ms, !cfg->poll_only,
	    cfg->media_dir);

	for (;;) {
		now = vg_now_ms();
		if (sig_got != 0 && !w.stopping) {
			w.stopping = true;
			w.grace_end = now + cfg->grace_s * 1000;
			vg_info("stopping signal=%d in_flight=%d grace_s=%ld",
			    (int)sig_got, w.njobs, cfg->grace_s);
		}
		if (w.stopping && (w.njobs == 0 || now >= w.grace_end)) {
			release_all(&w);
			break;
		}
		listen_connect(&w, now);
		notifications(&w);
		if (now >= next_poll) {
			w.claim_wanted = true;
			next_poll = now + cfg->poll_ms;
		}
		if (now >= next_reap) {
			reap(&w);
			next_reap = now + reap_ms;
		}
		claim(&w);
		transfers(&w);
		now = vg_now_ms();
		next_due = timers(&w, now);
		if (now >= next_progress) {
			flush_progress(&w, now);
			next_progress = now + TICK_MS;
		}
		if (now >= next_lease) {
			extend_leases(&w);
			next_lease = now + cfg->lease_s * 1000 / 3;
		}

		nfds = 0;
		fds[nfds].fd = sig_pipe[0];
		fds[nfds].events = CURL_WAIT_POLLIN;
		fds[nfds++].revents = 0;
		if (w.listening && store_notify_fd(w.ldb) >= 0) {
			fds[nfds].fd = store_notify_fd(w.ldb);
			fds[nfds].events = CURL_WAIT_POLLIN;
			fds[nfds++].revents = 0;
		}
		if (w.claim_wanted && !w.stopping &&
		    w.njobs < cfg->concurrency)
			next_due = now + 20;	/* claim again soon */
		if (next_progress < next_due)
			next_due = next_progress;
		if (next_poll < next_due)
			next_due = next_poll;
		curl_multi_poll(w.multi, fds, (unsigned)nfds,
		    next_due > now ? (int)(next_due - now) : 0, NULL);
		while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
			;
	}
	vg_info("worker stopped completed=%llu failed=%llu retried=%llu "
	    "lost=%llu", (unsigned long long)w.completed,
	    (unsigned long long)w.failed, (unsigned long long)w.retried,
	    (unsigned long long)w.lost);
	rv = 0;
out:
	while (w.jobs != NULL)
		wrk_job_free(w.jobs);
	if (w.multi != NULL)
		curl_multi_cleanup(w.multi);
	store_close(w.db);
	store_close(w.adb);
	store_close(w.ldb);
	curl_global_cleanup();
	return rv;
}
