/*
 * server/tasks.c: how many of nng's task threads take work
 * (VGEN_NNG_TASK_THREADS; the figures are in listen.c).
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

struct srv_tasks {
	long want;			/* SRV_TASKS_AUTO, 0 (all) or a count */
	size_t nthreads;		/* nng's task threads */
	pthread_mutex_t mu;		/* all below */
	pthread_cond_t cv;		/* pipes changed, or stop */
	long pipes;			/* the events socket's subscribers */
	bool stop;
	bool gave_up;			/* a hold failed: wait for a release */
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

		if (t->hold != NULL && pipes >= SRV_TASKS_WIDE) {
			h = t->hold;
			t->hold = NULL;
			t->gave_up = false;
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
	t->want = s->cfg.nng_tasks;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	*out = t;	/* srv_tasks_free frees what was made */
	keep = t->want == SRV_TASKS_AUTO ? 1 : (size_t)t->want;
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
	    t->want == SRV_TASKS_AUTO ? " (auto)" : "");
	if (t->want != SRV_TASKS_AUTO || t->hold == NULL)
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
