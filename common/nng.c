/*
 * common/nng.c: nng_close with a deadline (see vg_nng.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "vg_nng.h"

#define STUCK_MS 100

static atomic_bool reaper_stuck;

/* What vg_nng_leave keeps: rare (one per stuck close), never freed. */
struct left {
	void *p;
	struct left *next;
};
static pthread_mutex_t left_mu = PTHREAD_MUTEX_INITIALIZER;
static struct left *left_head;

/* Shared by the caller and the closing thread: the last one frees it. */
struct closer {
	nng_socket sock;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool closed;
	int refs;
};

static void
closer_unref(struct closer *k)
{
	bool last;

	pthread_mutex_lock(&k->mu);
	last = --k->refs == 0;
	pthread_mutex_unlock(&k->mu);
	if (last) {
		pthread_mutex_destroy(&k->mu);
		pthread_cond_destroy(&k->cv);
		free(k);
	}
}

static void *
closer_main(void *arg)
{
	struct closer *k = arg;

	nng_close(k->sock);
	pthread_mutex_lock(&k->mu);
	k->closed = true;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	closer_unref(k);
	return NULL;
}

bool
vg_nng_close(nng_socket s, int deadline_ms)
{
	struct closer *k = calloc(1, sizeof(*k));
	struct timespec until;
	pthread_t tid;
	bool closed;
	long ms;

	if (k == NULL) {
		nng_close(s);
		return true;
	}
	k->sock = s;
	k->refs = 2;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	if (pthread_create(&tid, NULL, closer_main, k) != 0) {
		k->refs = 1;
		closer_unref(k);
		nng_close(s);
		return true;
	}
	pthread_detach(tid);
	ms = atomic_load(&reaper_stuck) && deadline_ms > STUCK_MS ?
	    STUCK_MS : deadline_ms;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&k->mu);
	while (!k->closed &&
	    pthread_cond_timedwait(&k->cv, &k->mu, &until) != ETIMEDOUT)
		;
	closed = k->closed;
	pthread_mutex_unlock(&k->mu);
	closer_unref(k);
	if (!closed)
		atomic_store(&reaper_stuck, true);
	return closed;
}

void
vg_nng_leave(void *p)
{
	struct left *l;

	if (p == NULL || (l = malloc(sizeof(*l))) == NULL)
		return;		/* out of memory: it stays, unlisted */
	l->p = p;
	pthread_mutex_lock(&left_mu);
	l->next = left_head;
	left_head = l;
	pthread_mutex_unlock(&left_mu);
}
