/*
 * server/tasks.c: how many of nng's task threads take work
 * (VGEN_NNG_TASK_THREADS; the figures are below).
 *
 * One working thread answers calls with fewer switches, but the event
 * fan-out to many subscribers needs them all: each frame written to a
 * subscriber completes on a task thread, and one thread falls behind.
 * So "auto" keeps one at work while the events socket has few
 * subscribers, lets the others go when SRV_TASKS_WIDE have come, and
 * holds them again once no more than SRV_TASKS_NARROW are left.  The
 * pipe callbacks only count and signal; a thread of ours holds and lets
 * go, so that no nng callback ever waits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "srv_int.h"
#include "vg_nng.h"

/*
 * VGEN_NNG_TASK_THREADS.  nng 1.5.2 runs every aio callback on 2 x cores
 * task threads, and with VGEN_RPC_CPUS they all share the RPC CPU: each
 * dispatch wakes a sleeping one, which then contends with the others
 * for the task queue's and the rep0 socket's locks.  A ListVideos call
 * made 7.3 futex calls, 4.8 of them in nng's task threads, and the
 * switches are dear here (finish_task_switch alone took 15% of the
 * server's CPU).  Held down to one, the server's context switches per
 * call halve (page 400: 0.96-1.64 against 2.51-3.98).  Measured on 2
 * cores, -c 16, one binary serving as two servers (all four task
 * threads vs one), alternated, 3 rounds each:
 *   GetMe                0.66-0.73 of the echo  vs  0.81-0.87
 *   ListVideos page 400  0.80-0.99 of L, median 0.86
 *                                          vs  0.78-0.98, median 0.89
 *   ListVideos page 1    0.67-1.02 of L         vs  0.89-1.07
 *                        (0.37-0.39 of the echo vs 0.36-0.41 in 2 more)
 *   Health, and its p99 while 32 clients log in: no difference
 * but the event hub's fan-out suffers: at 100 subscribers x 1000 events
 * a second (issue 4's target), frames were lost in 13 runs of 15 with
 * one thread, each subscriber getting 43-81% of them; with four, in 10
 * runs of 21 (this VM was slow then; issue 4's runs lost none).  With
 * one, the hub thread switched 5 times as often for the same task CPU:
 * it writes to every subscriber under the pub socket's lock, which each
 * pipe's completion takes too.  But publishing from a task callback
 * instead (no other thread takes that lock) still lost frames in 2 runs
 * of 3, so the lock is not the whole cause.  Two threads measured in
 * between (GetMe 0.75-0.82; fan-out lost some in 4 runs of 6).
 *
 * What one thread cannot carry is the width of the fan-out: at 1000
 * events a second it got every frame to 10 and 25 subscribers (p50
 * 0.2-0.4 ms), and lost 4-17% to 50, in both runs, where four lost
 * none.  So the default is auto (tasks.c): one thread at work while
 * fewer than 32 subscribers are connected, all from 32 on, until no
 * more than 16 are left.  One binary as two servers, auto (no
 * subscribers: one) vs all, alternated, 3 rounds each:
 *   ListVideos page 1    0.97, 0.95 of L  vs  0.85, 0.87
 *   ListVideos page 400  0.92, 1.09       vs  0.81, 0.97
 *   GetMe                0.80, 0.79, 0.79 of the echo
 *                                         vs  0.68, 0.73, 0.76
 * and at 100 subscribers x 1000 events a second, where auto lets all
 * four go, frames were lost in 1 run of 9 with auto, 2 of 6 with all.
 *
 * nng starts its threads at the first call that needs them, which
 * srv_tasks_start makes (srv_start calls it on the RPC CPUs).
 */

struct srv_tasks {
	size_t nthreads;		/* nng's task threads */
	pthread_mutex_t mu;		/* all below */
	pthread_cond_t cv;		/* pipes changed, or stop */
	long pipes;			/* the events socket's subscribers */
	bool stop;
	bool gave_up;			/* a hold failed: retry after a wide spell */
	struct vg_nng_hold *hold;	/* owned; NULL: all at work */
	pthread_t thr;
	bool started;
};

int
srv_tasks_parse(const char *spec, long *out)
{
	char *end;
	long n;

	if (strcmp(spec, "auto") == 0) {
		*out = SRV_TASKS_AUTO;
		return 0;
	}
	if (strcmp(spec, "all") == 0) {
		*out = 0;
		return 0;
	}
	if (spec[0] < '0' || spec[0] > '9')
		return VG_EINVAL;	/* strtol takes " 5", "+5" */
	errno = 0;
	n = strtol(spec, &end, 10);
	if (errno != 0 || end == spec || *end != '\0' || n < 1 || n > 4096)
		return VG_EINVAL;
	*out = n;
	return 0;
}

/* Holds or lets go as the subscribers come and go (auto only). */
static void *
tasks_main(void *arg)
{
	struct srv_tasks *t = arg;

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		long pipes = t->pipes;
		struct vg_nng_hold *h;
		int rv;

		if (pipes >= SRV_TASKS_WIDE && t->gave_up) {
			t->gave_up = false;	/* try again once narrow */
		} else if (pipes >= SRV_TASKS_WIDE && t->hold != NULL) {
			h = t->hold;
			t->hold = NULL;
			pthread_mutex_unlock(&t->mu);
			vg_nng_hold_free(h);
			vg_info("nng task_threads=%zu working=%zu "
			    "subscribers=%ld", t->nthreads, t->nthreads, pipes);
			pthread_mutex_lock(&t->mu);
		} else if (t->hold == NULL && !t->gave_up &&
		    pipes <= SRV_TASKS_NARROW) {
			pthread_mutex_unlock(&t->mu);
			rv = vg_nng_hold_new(t->nthreads - 1, &h);
			if (rv < 0)
				vg_warn("cannot hold nng's task threads: %s",
				    vg_strerror(rv));
			else
				vg_info("nng task_threads=%zu working=1 "
				    "subscribers=%ld", t->nthreads, pipes);
			pthread_mutex_lock(&t->mu);
			t->hold = h;
			t->gave_up = rv < 0;
		} else {
			pthread_cond_wait(&t->cv, &t->mu);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int
srv_tasks_start(struct srv *s, struct srv_tasks **out)
{
	struct srv_tasks *t;
	nng_aio *aio;
	size_t keep;
	int rv;

	*out = NULL;
	if (s->cfg.nng_tasks == 0) {
		/* All of nng's threads: just start nng, here. */
		if (nng_aio_alloc(&aio, NULL, NULL) != 0)
			return VG_ENOMEM;
		nng_aio_free(aio);
		return 0;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return VG_ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	*out = t;	/* srv_tasks_free frees what was made */
	keep = s->cfg.nng_tasks == SRV_TASKS_AUTO ? 1 :
	    (size_t)s->cfg.nng_tasks;
	rv = vg_nng_tasks_keep(keep, &t->nthreads, &t->hold);
	if (rv == VG_ENOMEM)
		return rv;
	if (rv < 0) {
		vg_warn("cannot limit nng's task threads: %s",
		    vg_strerror(rv));
		return 0;	/* all at work, for good */
	}
	vg_info("nng task_threads=%zu working=%zu%s", t->nthreads,
	    t->hold != NULL ? keep : t->nthreads,
	    s->cfg.nng_tasks == SRV_TASKS_AUTO ? " (auto)" : "");
	if (s->cfg.nng_tasks != SRV_TASKS_AUTO || t->hold == NULL)
		return 0;
	if (pthread_create(&t->thr, NULL, tasks_main, t) != 0)
		return VG_ENOMEM;
	t->started = true;
	return 0;
}

void
srv_tasks_pipes(struct srv_tasks *t, int delta)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	t->pipes += delta;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

void
srv_tasks_release(struct srv_tasks *t)
{
	struct vg_nng_hold *h;

	if (t == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (t->started) {
		pthread_join(t->thr, NULL);
		t->started = false;
	}
	pthread_mutex_lock(&t->mu);
	h = t->hold;
	t->hold = NULL;
	pthread_mutex_unlock(&t->mu);
	vg_nng_hold_free(h);
}

void
srv_tasks_free(struct srv_tasks *t)
{
	if (t == NULL)
		return;
	srv_tasks_release(t);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
