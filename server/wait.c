/*
 * server/wait.c: parked WaitJob calls.
 *
 * A WaitJob whose job does not differ yet from what the caller knows is
 * parked here: its nng context (the one the request arrived on) waits in a
 * small struct, found by job id (a chained hash table) and by deadline (a
 * binary heap), while the endpoint receives on a fresh context.  No thread
 * waits.  The hub thread hands a parked call to the DB lane when an event
 * for its job arrives, when its deadline passes, or when the hub lost
 * events (reconnect); the pool thread re-reads the job with the caller's
 * ownership check and answers, or parks the call again when the job still
 * equals what the caller knows.  Each call is answered exactly once; its
 * context is closed and its struct freed when the reply was sent.
 *
 * Lost wake-ups: an event that arrives after the handler read the job but
 * before the call is in the table would wake nobody.  Every event bumps a
 * sequence number and is remembered in a ring (job id hash, seq); a call
 * parked with the sequence number taken before its read looks there, and
 * is re-checked at once when its job had an event meanwhile (or when the
 * ring overflowed, or the hub reconnected: then the number jumps).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_int.h"

#define WAIT_BUCKETS 4096	/* power of two */
#define WAIT_RING 1024		/* recent events remembered */
#define WAIT_SEND_TIMEOUT_MS 10000

struct srv_wait {
	struct srv_work work;		/* on the DB lane: wait_run */
	struct srv_waits *reg;
	struct srv_wait *hnext, **hprev;	/* bucket chain; hprev NULL: out */
	size_t heap_i;
	int64_t deadline_ms;
	nng_aio *aio;			/* only while the reply is sent */
	nng_ctx ctx;			/* the parked request's context */
	int known_status, known_progress;
	bool final;			/* answer whatever the job is */
	char job_id[VG_UUID_STRLEN + 1];
	char user_id[VG_UUID_STRLEN + 1];
	char request_id[];		/* echoed in the reply */
};

struct srv_waits {
	struct srv *srv;
	pthread_mutex_t mu;
	struct srv_wait *buckets[WAIT_BUCKETS];
	struct srv_wait **heap;		/* by deadline_ms */
	size_t nheap, capheap;
	_Atomic uint64_t seq;		/* events seen (written under mu) */
	struct {
		uint64_t hash, seq;
	} ring[WAIT_RING];
	atomic_size_t live;		/* parked or being answered */
	bool closed;
	int64_t armed_ms;		/* the hub's next timer wake-up */
	int pipe[2];			/* wakes the hub: a nearer deadline */
};

static uint64_t
hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* ---- the deadline heap (under mu) --------------------------------------- */

static void
heap_set(struct srv_waits *r, size_t i, struct srv_wait *w)
{
	r->heap[i] = w;
	w->heap_i = i;
}

static void
heap_up(struct srv_waits *r, size_t i)
{
	struct srv_wait *w = r->heap[i];

	while (i > 0 && r->heap[(i - 1) / 2]->deadline_ms > w->deadline_ms) {
		heap_set(r, i, r->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(r, i, w);
}

static void
heap_down(struct srv_waits *r, size_t i)
{
	struct srv_wait *w = r->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= r->nheap)
			break;
		if (c + 1 < r->nheap &&
		    r->heap[c + 1]->deadline_ms < r->heap[c]->deadline_ms)
			c++;
		if (r->heap[c]->deadline_ms >= w->deadline_ms)
			break;
		heap_set(r, i, r->heap[c]);
		i = c;
	}
	heap_set(r, i, w);
}

static void
heap_remove(struct srv_waits *r, struct srv_wait *w)
{
	size_t i = w->heap_i;
	struct srv_wait *last = r->heap[--r->nheap];

	if (last == w)
		return;
	heap_set(r, i, last);
	heap_up(r, i);
	heap_down(r, last->heap_i);
}

/* Takes w out of the table and the heap (under mu). */
static void
unlink_wait(struct srv_waits *r, struct srv_wait *w)
{
	*w->hprev = w->hnext;
	if (w->hnext != NULL)
		w->hnext->hprev = w->hprev;
	w->hprev = NULL;
	w->hnext = NULL;
	heap_remove(r, w);
}

/* Did job `h` have an event after `since`?  (under mu) */
static bool
missed_event(struct srv_waits *r, uint64_t h, uint64_t since)
{
	uint64_t now = atomic_load(&r->seq);

	if (now - since >= WAIT_RING)
		return true;
	for (uint64_t s = since + 1; s <= now; s++)
		if (r->ring[s % WAIT_RING].seq == s &&
		    r->ring[s % WAIT_RING].hash == h)
			return true;
	return false;
}

static void wait_run(struct srv_work *wk, store_conn *db);
static void hand_over_list(struct srv_waits *r, struct srv_wait *list,
    bool final);

/* Queues w on the DB lane to be re-checked or answered. */
static void
hand_over(struct srv_waits *r, struct srv_wait *w)
{
	srv_pool_push(r->srv, SRV_LANE_DB, &w->work);
}

/*
 * Puts w in the table, unless the registry closed (VG_EUNAVAIL: answer
 * now) or its job had an event since `seq` (then it is handed over at
 * once).  0 when w now belongs to the registry.
 */
static int
wait_insert(struct srv_waits *r, struct srv_wait *w, uint64_t seq)
{
	uint64_t h = hash_id(w->job_id);
	struct srv_wait **b = &r->buckets[h & (WAIT_BUCKETS - 1)];
	bool wake = false, recheck;

	pthread_mutex_lock(&r->mu);
	if (r->closed) {
		pthread_mutex_unlock(&r->mu);
		return VG_EUNAVAIL;
	}
	recheck = missed_event(r, h, seq);
	if (!recheck) {
		if (r->nheap == r->capheap) {
			size_t cap = r->capheap ? 2 * r->capheap : 256;
			struct srv_wait **nh = realloc(r->heap,
			    cap * sizeof(*nh));

			if (nh == NULL) {
				pthread_mutex_unlock(&r->mu);
				return VG_ENOMEM;
			}
			r->heap = nh;
			r->capheap = cap;
		}
		w->hnext = *b;
		w->hprev = b;
		if (*b != NULL)
			(*b)->hprev = &w->hnext;
		*b = w;
		r->heap[r->nheap++] = w;
		heap_up(r, r->nheap - 1);
		if (w->deadline_ms < r->armed_ms) {
			r->armed_ms = w->deadline_ms;
			wake = true;
		}
	}
	pthread_mutex_unlock(&r->mu);
	if (recheck)
		hand_over(r, w);
	if (wake)
		(void)!write(r->pipe[1], "", 1);
	return 0;
}

/* ---- answering ------------------------------------------------------------ */

static void
wait_free(struct srv_wait *w)
{
	struct srv_waits *r = w->reg;

	nng_ctx_close(w->ctx);
	if (w->aio != NULL)
		nng_aio_reap(w->aio);	/* we may be in its callback */
	free(w);
	atomic_fetch_sub(&r->live, 1);
}

static void
wait_sent(void *arg)
{
	struct srv_wait *w = arg;

	if (nng_aio_result(w->aio) != 0)	/* the caller went away */
		nng_msg_free(nng_aio_get_msg(w->aio));
	wait_free(w);
}

/* Sends the reply on the parked context; w is freed once it is sent. */
static void
wait_reply(struct srv_wait *w, nng_msg *reply)
{
	if (reply == NULL || nng_aio_alloc(&w->aio, wait_sent, w) != 0) {
		vg_warn("wait: cannot answer request_id=%s (out of memory)",
		    w->request_id);
		nng_msg_free(reply);
		wait_free(w);
		return;
	}
	nng_aio_set_timeout(w->aio, WAIT_SEND_TIMEOUT_MS);
	nng_aio_set_msg(w->aio, reply);
	nng_ctx_send(w->ctx, w->aio);
}

/*
 * On a DB-lane thread: re-read the job as its owner; answer when it
 * differs from what the caller knows, when the wait is over, or when the
 * job is gone; else park the call again.
 */
static void
wait_run(struct srv_work *wk, store_conn *db)
{
	struct srv_wait *w = (struct srv_wait *)(void *)((char *)wk -
	    offsetof(struct srv_wait, work));
	struct srv_waits *r = w->reg;
	uint64_t seq = atomic_load(&r->seq);
	struct srv_call call = { 0 };
	struct store_job job = { 0 };
	Vgen__V1__VideoJob *pb = NULL;
	nng_msg *reply = NULL;
	enum vg_status st;
	bool final;
	int rv;

	call.start_ms = vg_now_ms();
	final = w->final || call.start_ms >= w->deadline_ms ||
	    atomic_load(&r->srv->stopping);
	rv = db != NULL ? store_job_get(db, w->user_id, w->job_id, &job) :
	    VG_EUNAVAIL;
	if (!final && (rv == VG_EUNAVAIL || (rv == 0 &&
	    job.status == w->known_status &&
	    job.progress == w->known_progress))) {
		/* Unchanged (or unreadable: the hub re-checks everyone when
		 * it is back): wait on. */
		if (wait_insert(r, w, seq) == 0) {
			store_job_fini(&job);
			return;
		}
	}
	call.srv = r->srv;
	call.db = db;
	call.method = "/vgen.v1.VideoJobService/WaitJob";
	call.request_id = w->request_id;
	memcpy(call.user_id, w->user_id, sizeof(call.user_id));
	if (rv == 0) {
		pb = srv_job_to_pb(&call, &job);
		st = pb != NULL ? VG_STATUS_OK : srv_call_status(&call,
		    VG_ENOMEM);
	} else {
		st = srv_call_status(&call, rv);
	}
	store_job_fini(&job);
	srv_dispatch_answer(&call, st, pb != NULL ? &pb->base : NULL, &reply);
	wait_reply(w, reply);
}

/* ---- the registry's interface --------------------------------------------- */

int
srv_waits_new(struct srv *s, struct srv_waits **out)
{
	struct srv_waits *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return VG_ENOMEM;
	if (pipe(r->pipe) < 0) {
		free(r);
		return VG_EINTERNAL;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(r->pipe[i], F_SETFL, O_NONBLOCK);
		fcntl(r->pipe[i], F_SETFD, FD_CLOEXEC);
	}
	r->srv = s;
	r->armed_ms = INT64_MAX;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return 0;
}

void
srv_waits_free(struct srv_waits *r)
{
	if (r == NULL)
		return;
	if (atomic_load(&r->live) > 0)	/* their sends still refer to us */
		vg_warn("wait: calls left unanswered n=%zu",
		    atomic_load(&r->live));
	else {
		close(r->pipe[0]);
		close(r->pipe[1]);
		pthread_mutex_destroy(&r->mu);
		free(r->heap);
		free(r);
	}
}

uint64_t
srv_wait_seq(struct srv_waits *r)
{
	return atomic_load(&r->seq);
}

int
srv_wait_park(struct srv_waits *r, nng_ctx ctx, const char *request_id,
    const struct srv_park *p)
{
	size_t idlen = strlen(request_id);
	struct srv_wait *w;
	int rv;

	if (atomic_load(&r->live) >= SRV_WAIT_MAX_PARKED)
		return VG_ELIMIT;
	if ((w = calloc(1, sizeof(*w) + idlen + 1)) == NULL)
		return VG_ENOMEM;
	w->work.run = wait_run;
	w->reg = r;
	w->ctx = ctx;
	w->deadline_ms = p->deadline_ms;
	w->known_status = p->known_status;
	w->known_progress = p->known_progress;
	memcpy(w->job_id, p->job_id, sizeof(w->job_id));
	memcpy(w->user_id, p->user_id, sizeof(w->user_id));
	memcpy(w->request_id, request_id, idlen + 1);
	atomic_fetch_add(&r->live, 1);
	if ((rv = wait_insert(r, w, p->seq)) < 0) {
		atomic_fetch_sub(&r->live, 1);
		free(w);	/* the caller keeps ctx */
		return rv;
	}
	return 0;
}

void
srv_wait_event(struct srv_waits *r, const char *job_id, const char *user_id,
    int status, int progress)
{
	uint64_t h = hash_id(job_id), seq;
	struct srv_wait *w, *next, *wake = NULL;

	pthread_mutex_lock(&r->mu);
	seq = atomic_load(&r->seq) + 1;
	r->ring[seq % WAIT_RING].hash = h;
	r->ring[seq % WAIT_RING].seq = seq;
	atomic_store(&r->seq, seq);
	for (w = r->buckets[h & (WAIT_BUCKETS - 1)]; w != NULL; w = next) {
		next = w->hnext;
		/* The owner is checked again by the re-read; an event for
		 * someone else's job of the same id wakes nobody. */
		if (strcmp(w->job_id, job_id) != 0 ||
		    strcmp(w->user_id, user_id) != 0)
			continue;
		if (status == w->known_status && progress == w->known_progress)
			continue;
		unlink_wait(r, w);
		w->hnext = wake;	/* a private list until handed over */
		wake = w;
	}
	pthread_mutex_unlock(&r->mu);
	hand_over_list(r, wake, false);
}

/* Takes every parked call out (under mu) into a list linked by hnext. */
static struct srv_wait *
take_all(struct srv_waits *r)
{
	struct srv_wait *all = NULL;

	while (r->nheap > 0) {
		struct srv_wait *w = r->heap[0];

		unlink_wait(r, w);
		w->hnext = all;
		all = w;
	}
	return all;
}

static void
hand_over_list(struct srv_waits *r, struct srv_wait *list, bool final)
{
	struct srv_wait *next;

	for (; list != NULL; list = next) {
		next = list->hnext;
		list->hnext = NULL;
		list->final = final;
		hand_over(r, list);
	}
}

void
srv_wait_recheck_all(struct srv_waits *r)
{
	struct srv_wait *all;

	pthread_mutex_lock(&r->mu);
	all = take_all(r);
	/* Calls being parked right now read the job before the hub came
	 * back: make them re-check too. */
	atomic_store(&r->seq, atomic_load(&r->seq) + WAIT_RING + 1);
	pthread_mutex_unlock(&r->mu);
	hand_over_list(r, all, false);
}

int64_t
srv_wait_expire(struct srv_waits *r, int64_t now_ms)
{
	struct srv_wait *due = NULL;
	int64_t next;

	pthread_mutex_lock(&r->mu);
	while (r->nheap > 0 && r->heap[0]->deadline_ms <= now_ms) {
		struct srv_wait *w = r->heap[0];

		unlink_wait(r, w);
		w->hnext = due;
		due = w;
	}
	next = r->nheap > 0 ? r->heap[0]->deadline_ms : INT64_MAX;
	r->armed_ms = next;
	pthread_mutex_unlock(&r->mu);
	hand_over_list(r, due, true);
	return next;
}

int
srv_wait_fd(struct srv_waits *r)
{
	return r->pipe[0];
}

void
srv_wait_drain(struct srv_waits *r)
{
	char buf[64];

	while (read(r->pipe[0], buf, sizeof(buf)) > 0)
		;
}

void
srv_wait_close(struct srv_waits *r, int64_t until_ms)
{
	struct srv_wait *all;
	size_t n = 0;

	pthread_mutex_lock(&r->mu);
	r->closed = true;
	all = take_all(r);
	pthread_mutex_unlock(&r->mu);
	for (struct srv_wait *w = all; w != NULL; w = w->hnext)
		n++;
	if (n > 0)
		vg_info("answering parked calls n=%zu", n);
	hand_over_list(r, all, true);
	while (atomic_load(&r->live) > 0 && vg_now_ms() < until_ms)
		usleep(5 * 1000);
}

size_t
srv_wait_parked(struct srv_waits *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->nheap;
	pthread_mutex_unlock(&r->mu);
	return n;
}
