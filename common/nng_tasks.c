/*
 * common/nng_tasks.c: nng with fewer task threads (see vg_nng.h).
 *
 * nng's threads name themselves ("nng:task", "nng:poll:epoll", ...) a
 * moment after nng creates them, so the threads that appear with nng's
 * first call are waited for until each has its name; then the task
 * threads are counted.  Each surplus one is occupied by a callback of an
 * aio that sleeps 0 ms: nng runs it on a task thread, and it blocks
 * there until released.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vg_nng.h"

#define TASK_NAME "nng:task"
#define START_MS 2000	/* for nng's threads to name themselves; to hold */

struct vg_nng_hold {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* CLOCK_MONOTONIC */
	size_t held;		/* callbacks blocking a task thread */
	size_t stray;		/* callbacks that ran elsewhere, not held */
	bool release;
	size_t naios;
	nng_aio *aios[];	/* owned: freed by vg_nng_hold_free */
};

/* Thread ids; `v` is the owner's to free. */
struct tids {
	pid_t *v;
	size_t n, cap;
};

/* The process's threads, into *t (read again from scratch). */
static int
tids_read(struct tids *t)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int rv = 0;

	t->n = 0;
	if (d == NULL)
		return VG_EINTERNAL;
	while (rv == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (t->n == t->cap) {
			size_t cap = t->cap ? 2 * t->cap : 64;
			pid_t *v = realloc(t->v, cap * sizeof(*v));

			if (v == NULL) {
				rv = VG_ENOMEM;
				break;
			}
			t->v = v;
			t->cap = cap;
		}
		t->v[t->n++] = (pid_t)atoi(e->d_name);
	}
	closedir(d);
	return rv;
}

static bool
tids_has(const struct tids *t, pid_t tid)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i] == tid)
			return true;
	return false;
}

/* Thread tid's name; "" once it has ended. */
static void
tid_name(pid_t tid, char *buf, size_t n)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	buf[0] = '\0';
	if ((f = fopen(path, "re")) == NULL)
		return;
	if (fgets(buf, (int)n, f) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/*
 * Starts nng (also when it then fails); *count gets its task threads
 * once all of its are named.
 */
static int
start_and_count(size_t *count)
{
	struct tids before = { 0 }, now = { 0 };
	int64_t until = vg_now_ms() + START_MS;
	nng_aio *aio;
	int rv;

	rv = tids_read(&before);
	/* nng starts now even when the threads cannot be counted. */
	if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
		rv = VG_ENOMEM;
		goto out;
	}
	nng_aio_free(aio);
	while (rv == 0) {
		size_t unnamed = 0;

		if ((rv = tids_read(&now)) < 0)
			goto out;
		*count = 0;
		for (size_t i = 0; i < now.n; i++) {
			char name[32];

			tid_name(now.v[i], name, sizeof(name));
			if (strcmp(name, TASK_NAME) == 0)
				(*count)++;
			else if (name[0] != '\0' &&
			    strncmp(name, "nng:", 4) != 0 &&
			    !tids_has(&before, now.v[i]))
				unnamed++;
		}
		if (unnamed == 0)
			break;
		if (vg_now_ms() >= until) {
			rv = VG_EINTERNAL;
			break;
		}
		usleep(1000);
	}
out:
	free(before.v);
	free(now.v);
	return rv;
}

/* Blocks the task thread it runs on until the hold is released. */
static void
hold_cb(void *arg)
{
	struct vg_nng_hold *h = arg;
	char name[16] = "";
	bool task = pthread_getname_np(pthread_self(), name,
	    sizeof(name)) == 0 && strcmp(name, TASK_NAME) == 0;

	pthread_mutex_lock(&h->mu);
	if (task)
		h->held++;
	else
		h->stray++;
	pthread_cond_broadcast(&h->cv);
	while (task && !h->release)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

int
vg_nng_tasks_keep(size_t keep, size_t *nthreads, struct vg_nng_hold **out)
{
	int rv;

	*out = NULL;
	*nthreads = 0;
	if ((rv = start_and_count(nthreads)) < 0)
		return rv;
	if (keep == 0 || *nthreads <= keep)
		return 0;
	return vg_nng_hold_new(*nthreads - keep, out);
}

int
vg_nng_hold_new(size_t n, struct vg_nng_hold **out)
{
	struct vg_nng_hold *h;
	pthread_condattr_t ca;
	struct timespec until;
	int rv = 0;

	*out = NULL;
	if (n == 0)
		return 0;
	if ((h = calloc(1, sizeof(*h) + n * sizeof(h->aios[0]))) == NULL)
		return VG_ENOMEM;
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (; h->naios < n; h->naios++) {
		if (nng_aio_alloc(&h->aios[h->naios], hold_cb, h) != 0) {
			rv = VG_ENOMEM;
			break;
		}
		nng_sleep_aio(0, h->aios[h->naios]);
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += START_MS / 1000;
	pthread_mutex_lock(&h->mu);
	while (rv == 0 && h->held + h->stray < n &&
	    pthread_cond_timedwait(&h->cv, &h->mu, &until) != ETIMEDOUT)
		;
	if (rv == 0 && h->held != n)
		rv = VG_EINTERNAL;
	pthread_mutex_unlock(&h->mu);
	if (rv < 0) {
		vg_nng_hold_free(h);
		return rv;
	}
	*out = h;
	return 0;
}

void
vg_nng_hold_free(struct vg_nng_hold *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->release = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	for (size_t i = 0; i < h->naios; i++)
		nng_aio_free(h->aios[i]);	/* waits for its callback */
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
