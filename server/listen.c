/*
 * server/listen.c: rep0 endpoints and the lanes' thread pools.
 *
 * Each endpoint owns C contexts on one rep0 socket, each with a receive
 * and a send aio.  Frames are received by aio callbacks (the fastest way
 * nng serves); a request whose handler does no blocking I/O is handled
 * right there: Health is answered at once, and a one-query read (GetMe,
 * ListVideos) sends its query on a pipelined connection (store_async)
 * and is answered from the store thread that gets the result, so no
 * thread waits for the database.  Other requests are queued to their
 * lane's pool, whose threads each own one store connection, and answered
 * from that thread.  Slow work (bcrypt) has its own small, low-priority
 * pool, so it never holds the threads that serve quick calls.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "srv_int.h"
#include "vg_nng.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

struct srv_ctx {
	struct srv_work work;	/* queued to a pool: ctx_run */
	struct srv_endpoint *ep;
	nng_ctx ctx;		/* replaced by a fresh one when a call parks */
	nng_aio *recv_aio;
	nng_aio *send_aio;
	struct srv_req req;
};

struct srv_endpoint {
	struct srv *srv;
	const struct srv_table *table;
	nng_socket sock;
	bool sock_open;
	size_t nctx;
	struct srv_ctx *ctxs;
	atomic_size_t busy;	/* contexts holding a request */
	atomic_bool stopping;
};

struct srv_pool {
	struct srv *srv;
	enum srv_lane lane;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct srv_work *head, *tail;
	bool stop;
	size_t nthreads;
	pthread_t *threads;
};

static void ctx_send(struct srv_ctx *c, nng_msg *reply);

/* A deferred call's reply, from the thread that finished it. */
static void
ctx_answer(struct srv_req *r, nng_msg *reply)
{
	ctx_send((struct srv_ctx *)(void *)((char *)r -
	    offsetof(struct srv_ctx, req)), reply);
}

/*
 * The hot path takes no lock of ours: a context re-arms unless the
 * endpoint is stopping.  One that re-arms just after the stop cancelled
 * the receives is ended by the socket's close (NNG_ECLOSED).
 */
static void
ctx_rearm(struct srv_ctx *c)
{
	struct srv_endpoint *ep = c->ep;

	if (!atomic_load(&ep->stopping))
		nng_ctx_recv(c->ctx, c->recv_aio);
	atomic_fetch_sub(&ep->busy, 1);
}

static void
pool_push(struct srv_pool *p, struct srv_work *w)
{
	pthread_mutex_lock(&p->mu);
	w->next = NULL;
	if (p->tail != NULL)
		p->tail->next = w;
	else
		p->head = w;
	p->tail = w;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void
srv_pool_push(struct srv *s, enum srv_lane lane, struct srv_work *w)
{
	VG_ASSERT(s->pools[lane] != NULL);
	pool_push(s->pools[lane], w);
}

static void
recv_cb(void *arg)
{
	struct srv_ctx *c = arg;
	struct srv_endpoint *ep = c->ep;
	nng_msg *msg, *reply = NULL;
	enum srv_lane lane;
	int rv = nng_aio_result(c->recv_aio);

	if (rv != 0) {
		if (!atomic_load(&ep->stopping) && rv != NNG_ECLOSED &&
		    rv != NNG_ECANCELED)
			nng_ctx_recv(c->ctx, c->recv_aio);
		return;
	}
	atomic_fetch_add(&ep->busy, 1);

	msg = nng_aio_get_msg(c->recv_aio);
	srv_dispatch_prepare(ep->srv, ep->table, msg, &c->req);
	c->req.answer = ctx_answer;
	nng_msg_free(msg);
	lane = srv_req_lane(&c->req);
	if (lane == SRV_LANE_INLINE || ep->srv->pools[lane] == NULL) {
		if (srv_dispatch_run(ep->srv, &c->req, NULL, &reply, NULL))
			ctx_send(c, reply);
		return;
	}
	pool_push(ep->srv->pools[lane], &c->work);
}

/*
 * A handler asked to park its call (WaitJob): hand this nng context to
 * the wait registry, which answers it later, and receive the next request
 * on a fresh context, so the endpoint keeps its number of receiving
 * contexts and no thread waits.  False when the call cannot be parked
 * (then `reply`, the current state, is sent now).
 */
static bool
ctx_park(struct srv_ctx *c, const struct srv_park *park)
{
	struct srv_endpoint *ep = c->ep;
	struct srv *s = ep->srv;
	nng_ctx fresh;

	if (s->waits == NULL || atomic_load(&ep->stopping) ||
	    nng_ctx_open(&fresh, ep->sock) != 0)
		return false;
	if (srv_wait_park(s->waits, c->ctx, c->req.env->request_id,
	    park) < 0) {
		nng_ctx_close(fresh);
		return false;
	}
	c->ctx = fresh;
	return true;
}

/* Runs a queued request on a pool thread. */
static void
ctx_run(struct srv_work *w, store_conn *db)
{
	struct srv_ctx *c = (struct srv_ctx *)(void *)((char *)w -
	    offsetof(struct srv_ctx, work));
	struct srv_park park = { 0 };
	nng_msg *reply = NULL;

	if (!srv_dispatch_run(c->ep->srv, &c->req, db, &reply, &park))
		return;		/* deferred: answered by ctx_answer */
	if (park.want && reply != NULL && ctx_park(c, &park)) {
		nng_msg_free(reply);
		srv_req_fini(&c->req);
		ctx_rearm(c);
		return;
	}
	ctx_send(c, reply);
}

static void
ctx_send(struct srv_ctx *c, nng_msg *reply)
{
	srv_req_fini(&c->req);
	if (reply == NULL) {	/* out of memory: the client times out */
		ctx_rearm(c);
		return;
	}
	nng_aio_set_msg(c->send_aio, reply);
	nng_ctx_send(c->ctx, c->send_aio);
}

static void
send_cb(void *arg)
{
	struct srv_ctx *c = arg;

	if (nng_aio_result(c->send_aio) != 0)
		nng_msg_free(nng_aio_get_msg(c->send_aio));
	ctx_rearm(c);
}

/* ---- pools ---------------------------------------------------------------- */

/*
 * A bcrypt thread's scheduler slice.  Its nice value makes it yield to
 * the server's own threads only: the kernel weighs each session's (or
 * cgroup's) threads as one against other processes', such as clients
 * and PostgreSQL on the same host.  And EEVDF lets a running thread
 * finish its slice (1.4 ms by default here) before a thread woken on its
 * CPU runs: a busy bcrypt thread makes every such wake-up wait.  While
 * 32 clients logged in, Health's p99 measured 1.09-2.42x its idle value
 * (median 1.79, loaded p99 median 2.3 ms) with 100 us slices, against
 * 1.52-2.63x (median 2.02, 2.7 ms) with the default one: 12 runs each,
 * alternated.  A nice 10 spinner of another process on the bcrypt CPU
 * took Health's p99 from 1.3 to 3.7-4.6 ms.  The price: while Health's
 * 16 clients keep both CPUs busy, bcrypt gets about a tenth of its CPU
 * and logins finish at 0.3-0.4 a second (5 alone); a login waiting past
 * its deadline is answered DEADLINE_EXCEEDED without hashing.
 */
#define SLOW_SLICE_NS (100 * 1000)

static void *
pool_main(void *arg)
{
	struct srv_pool *p = arg;
	store_conn *db = NULL;

	(void)pthread_setname_np(pthread_self(),
	    p->lane == SRV_LANE_SLOW ? "vgen:slow" : "vgen:db");
	if (p->lane == SRV_LANE_SLOW) {	/* bcrypt yields to quick calls */
		(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
		(void)vg_sched_slice_set(SLOW_SLICE_NS);
	}
	if (store_open(p->srv->cfg.database_url, &db) < 0)
		db = NULL;	/* calls answer UNAVAILABLE */
	for (;;) {
		struct srv_work *w;

		pthread_mutex_lock(&p->mu);
		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		w = p->head;
		if (w == NULL) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		p->head = w->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);

		if (db == NULL && store_open(p->srv->cfg.database_url, &db) < 0)
			db = NULL;
		w->run(w, db);
	}
	store_close(db);
	return NULL;
}

static void
pool_free(struct srv_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
}

static int
pool_new(struct srv *s, enum srv_lane lane, size_t n, struct srv_pool **out)
{
	struct srv_pool *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->threads = calloc(n, sizeof(pthread_t))) == NULL) {
		free(p);
		return VG_ENOMEM;
	}
	p->srv = s;
	p->lane = lane;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (; p->nthreads < n; p->nthreads++) {
		if (pthread_create(&p->threads[p->nthreads], NULL, pool_main,
		    p) != 0) {
			pool_free(p);
			return VG_ENOMEM;
		}
	}
	*out = p;
	return 0;
}

/* ---- endpoints ------------------------------------------------------------ */

static void
endpoint_free(struct srv_endpoint *ep)
{
	if (ep == NULL)
		return;
	/*
	 * When nng's close hangs (vg_nng.h) its threads may still use the
	 * contexts' aios: leave them, the process is ending.
	 */
	if (ep->sock_open && !vg_nng_close(ep->sock, SRV_CLOSE_MS)) {
		vg_warn("nng_close did not return: exiting without it");
		vg_nng_leave(ep);
		return;
	}
	for (size_t i = 0; i < ep->nctx; i++) {
		nng_aio_free(ep->ctxs[i].recv_aio);
		nng_aio_free(ep->ctxs[i].send_aio);
	}
	free(ep->ctxs);
	free(ep);
}

static int
endpoint_listen(struct srv_endpoint *ep, const char *urls)
{
	char *list = strdup(urls), *save = NULL;
	int rv = 0;

	if (list == NULL)
		return VG_ENOMEM;
	for (char *url = strtok_r(list, ",", &save); url != NULL;
	    url = strtok_r(NULL, ",", &save)) {
		while (*url == ' ')
			url++;
		if ((rv = srv_lguard_listen(ep->srv->lguard, ep->sock, url,
		    strncmp(url, "ipc://", 6) == 0 ? 0600 : 0,
		    nng_req0_open)) < 0)
			break;
		vg_info("listening url=%s", url);
	}
	free(list);
	return rv;
}

static int
endpoint_new(struct srv *s, const struct srv_table *t, const char *urls,
    size_t nctx, struct srv_endpoint **out)
{
	struct srv_endpoint *ep = calloc(1, sizeof(*ep));
	int rv = VG_ENOMEM;

	if (ep == NULL)
		return VG_ENOMEM;
	ep->srv = s;
	ep->table = t;
	if ((ep->ctxs = calloc(nctx, sizeof(ep->ctxs[0]))) == NULL)
		goto fail;
	if (nng_rep0_open(&ep->sock) != 0)
		goto fail;
	ep->sock_open = true;
	/* nng's default is unlimited: a peer could announce 8 GiB. */
	nng_socket_set_size(ep->sock, NNG_OPT_RECVMAXSZ,
	    (size_t)s->cfg.max_frame);
	for (; ep->nctx < nctx; ep->nctx++) {
		struct srv_ctx *c = &ep->ctxs[ep->nctx];

		c->ep = ep;
		c->work.run = ctx_run;
		if (nng_aio_alloc(&c->recv_aio, recv_cb, c) != 0 ||
		    nng_aio_alloc(&c->send_aio, send_cb, c) != 0 ||
		    nng_ctx_open(&c->ctx, ep->sock) != 0) {
			ep->nctx++;	/* free what this one holds */
			goto fail;
		}
	}
	if ((rv = endpoint_listen(ep, urls)) < 0)
		goto fail;
	for (size_t i = 0; i < ep->nctx; i++)
		nng_ctx_recv(ep->ctxs[i].ctx, ep->ctxs[i].recv_aio);
	*out = ep;
	return 0;
fail:
	endpoint_free(ep);
	return rv;
}

/* Stop receiving; wait until every context has sent its reply. */
static void
endpoint_drain(struct srv_endpoint *ep, int64_t until_ms)
{
	if (ep == NULL)
		return;
	atomic_store(&ep->stopping, true);
	for (size_t i = 0; i < ep->nctx; i++)
		nng_aio_cancel(ep->ctxs[i].recv_aio);
	while (atomic_load(&ep->busy) > 0 && vg_now_ms() < until_ms)
		usleep(10 * 1000);
	if (atomic_load(&ep->busy) > 0)
		vg_warn("shutdown grace over calls_in_flight=%zu",
		    atomic_load(&ep->busy));
}

/* ---- health probe --------------------------------------------------------- */

/* The listener guard probes every LGUARD_EVERY health rounds (seconds). */
#define LGUARD_EVERY 5

static void *
health_main(void *arg)
{
	struct srv *s = arg;
	store_conn *db = NULL;
	unsigned round = 0;

	if (store_open(s->cfg.database_url, &db) < 0)
		db = NULL;	/* store_ping reconnects */
	while (!atomic_load(&s->stopping)) {
		atomic_store(&s->db_ok, db != NULL && store_ping(db) == 0);
		if (db == NULL && store_open(s->cfg.database_url, &db) < 0)
			db = NULL;
		if (++round % LGUARD_EVERY == 0)
			(void)srv_lguard_check(s->lguard, &s->stopping);
		for (int i = 0; i < 10 && !atomic_load(&s->stopping); i++)
			usleep(100 * 1000);
	}
	store_close(db);
	return NULL;
}

/*
 * VGEN_SCHED_BATCH.  A GetMe or ListVideos call changes threads twice:
 * nng's receive thread sends the query, a store thread gets the result
 * and sends the reply.  Under the normal policy a woken thread preempts
 * its waker, often while the waker holds nng's socket lock (held across
 * the TCP send), and the threads that then want that lock sleep too.
 * SCHED_BATCH threads never preempt on wake-up: they run when the running
 * thread blocks or its slice ends.  Measured on 2 cores, -c 16, each
 * against the echo baseline of its own run (before VGEN_RPC_CPUS, so as
 * with none):
 *   0 (normal)           GetMe 0.42-0.48 of the echo, p99 2.8-3.0x
 *   1 (store reads, DB)  GetMe 0.45-0.59, p99 2.0-2.8x  (the default)
 *   2 (all, nng's too)   GetMe 0.44-0.61, p99 2.0-2.9x
 * (one GetMe run in three is slow for all three on this VM), but with 2
 * the nng threads that answer Health cannot preempt a running bcrypt,
 * so while logins run Health's p99 goes to 2-3x its idle value, 4.5x
 * once (1.6-2.1x with 0 or 1).  The bcrypt pool keeps the normal policy in
 * mode 1 too: batch there, it measured 2.3-2.8x.  The echo baseline,
 * whose calls never change threads, gains nothing from SCHED_BATCH.
 *
 * Once VGEN_RPC_CPUS keeps bcrypt off the RPC CPUs, nng's threads no
 * longer wait behind it, and mode 1 makes them batch too.  A profile of
 * ListVideos showed why that pays: the store reads thread sends each
 * reply itself, under nng's socket, pipe and connection locks, and the
 * nng thread the send wakes preempted it there (3 involuntary switches
 * per call; mutex waits and wakes took a fifth of the server's CPU).
 * Alternated on one server, nng's threads normal vs batch, -c 16:
 *   ListVideos page 1    0.63-0.69 of L    vs  0.72-1.03
 *   ListVideos page 400  0.58-0.74         vs  0.71-1.00
 *   GetMe                0.47-0.64 of the echo, p99 1.7-2.7x
 *                                          vs  0.67-0.76, p99 1.6-2.0x
 *   Health + Login:32    loaded p99 2.1-2.9 ms (1.40-2.11x idle)
 *                                          vs  1.7-3.0 ms (1.23-2.22x)
 * (Health's idle p99 dropped more than its loaded one.)  When bcrypt may
 * share their CPU (VGEN_RPC_CPUS none, or one CPU), nng's threads stay
 * normal.
 *
 * Mode 1 gives the policy to the threads created in its window (they
 * inherit the creating thread's) and takes it back before the bcrypt
 * pool (and, unless the RPC CPUs are bcrypt-free, nng's threads) start;
 * mode 2 was set by main before any thread existed.
 */
static int
sched_ours(const struct srv *s)
{
	int old;

	if (s->cfg.sched_batch != 1)
		return -1;
	if ((old = vg_sched_swap(SCHED_BATCH)) < 0)
		vg_warn("cannot use SCHED_BATCH: %s", strerror(errno));
	return old;
}

/*
 * VGEN_RPC_CPUS.  A quick call wakes three or four threads in turn (nng's
 * poller and task threads, a store reads thread, nng's again).  Woken on
 * another CPU, each wake-up is an inter-processor interrupt, dear in a
 * VM (in this one the kernel's share of the server's CPU is two thirds);
 * woken on the waker's CPU, the thread runs when the waker blocks.  The
 * system calls per call stay the same (about 7 futex calls per GetMe, 11
 * per ListVideos): they get cheaper.  Measured on 2 cores, -c 16, each
 * against the echo baseline of its own run (VGEN_SCHED_BATCH 1), none vs
 * auto:
 *   GetMe       0.43-0.59 of the echo  vs  0.51-0.83, median 0.67
 *   ListVideos  0.54-0.71 of L         vs  0.59-1.01, median 0.66
 *   Health      0.97-1.12              vs  1.08-1.41
 * and, with bcrypt kept off the RPC CPU, Health's p99 while 32 clients
 * log in went from about 5 ms to 2-3 ms (1.2-2.0x its idle p99).  Only
 * nng's threads on that CPU, the reads elsewhere, was slower: GetMe
 * 0.40-0.45.  One CPU serves some 20k Health calls a second, and under
 * ListVideos it is the busy one (97%): a list gives the path more.
 *
 * nng starts its threads at its first call: srv_start makes that call
 * while the main thread has the RPC mask, so they inherit it.
 */
int
srv_cpus_plan(const char *spec, struct srv_cpus *out)
{
	int last = -1;

	memset(out, 0, sizeof(*out));
	if (sched_getaffinity(0, sizeof(out->all), &out->all) != 0)
		return strcmp(spec, "none") == 0 || strcmp(spec, "auto") == 0 ?
		    0 : VG_EINVAL;
	if (strcmp(spec, "none") == 0)
		return 0;
	if (strcmp(spec, "auto") == 0) {
		if (CPU_COUNT(&out->all) < 2)
			return 0;
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &out->all))
				last = c;
		CPU_ZERO(&out->rpc);
		CPU_SET(last, &out->rpc);
	} else if (vg_cpus_parse(spec, &out->all, &out->rpc) < 0) {
		return VG_EINVAL;
	}
	CPU_XOR(&out->slow, &out->all, &out->rpc);
	if (CPU_COUNT(&out->slow) == 0)
		out->slow = out->all;
	out->pin = true;
	return 0;
}

/* The calling thread, and the threads it creates, run on `set`. */
static void
on_cpus(const struct srv *s, const cpu_set_t *set)
{
	int rv;

	if (s->cpus.pin && (rv = pthread_setaffinity_np(pthread_self(),
	    sizeof(*set), set)) != 0)
		vg_warn("cannot set the CPU affinity: %s", strerror(rv));
}

/* The RPC path has CPUs of its own: bcrypt never runs there. */
static bool
rpc_cpus_alone(const struct srv *s)
{
	cpu_set_t both;

	CPU_AND(&both, &s->cpus.rpc, &s->cpus.slow);
	return s->cpus.pin && CPU_COUNT(&both) == 0;
}

int
srv_start(struct srv *s)
{
	bool nng_batch;
	int rv, policy;

	atomic_store(&s->db_ok, true);
	if ((rv = srv_lguard_new(&s->lguard)) < 0 ||
	    (rv = srv_waits_new(s, &s->waits)) < 0)
		return rv;
	policy = sched_ours(s);
	nng_batch = policy >= 0 && rpc_cpus_alone(s);
	if ((rv = pool_new(s, SRV_LANE_DB, (size_t)s->cfg.threads,
	    &s->pools[SRV_LANE_DB])) == 0) {
		on_cpus(s, &s->cpus.rpc);
		rv = store_async_open(s->cfg.database_url,
		    (size_t)s->cfg.read_conns, &s->reads);
	}
	if (rv == 0 && nng_batch)
		rv = srv_tasks_start(s, &s->tasks);	/* RPC CPUs, BATCH */
	if (policy >= 0)
		(void)vg_sched_swap(policy);
	if (rv == 0 && !nng_batch)
		rv = srv_tasks_start(s, &s->tasks);	/* RPC CPUs, normal */
	on_cpus(s, &s->cpus.slow);
	if (rv == 0)
		rv = pool_new(s, SRV_LANE_SLOW, (size_t)s->cfg.slow_threads,
		    &s->pools[SRV_LANE_SLOW]);
	on_cpus(s, &s->cpus.all);
	if (rv < 0)
		return rv;
	if (pthread_create(&s->health_thread, NULL, health_main, s) != 0)
		return VG_ENOMEM;
	if ((rv = srv_hub_start(s, &s->hub)) < 0)
		return rv;
	if ((rv = endpoint_new(s, s->rpc_table, s->cfg.rpc_listen,
	    (size_t)s->cfg.contexts, &s->rpc)) < 0)
		return rv;
	if (s->cfg.admin_listen != NULL && *s->cfg.admin_listen != '\0' &&
	    (rv = endpoint_new(s, s->admin_table, s->cfg.admin_listen, 8,
	    &s->admin)) < 0)
		return rv;
	return 0;
}

void
srv_stop(struct srv *s, int grace_ms)
{
	int64_t until = vg_now_ms() + grace_ms;

	atomic_store(&s->stopping, true);
	endpoint_drain(s->rpc, until);
	endpoint_drain(s->admin, until);
	/* The rest of the shutdown has all of nng's task threads. */
	srv_tasks_release(s->tasks);
	/* No listener restarts from here on. */
	if (s->health_thread) {
		pthread_join(s->health_thread, NULL);
		s->health_thread = 0;
	}
	/* Parked calls get the current state while the pools still run;
	 * then the hub (their timer) can stop. */
	if (s->waits != NULL && s->pools[SRV_LANE_DB] != NULL)
		srv_wait_close(s->waits, until);
	srv_hub_stop(s->hub);
	s->hub = NULL;
	for (int i = 0; i < SRV_NLANES; i++) {
		pool_free(s->pools[i]);
		s->pools[i] = NULL;
	}
	/* Reads still in flight (the grace ran out) are answered now. */
	store_async_close(s->reads);
	s->reads = NULL;
	endpoint_free(s->rpc);
	endpoint_free(s->admin);
	s->rpc = s->admin = NULL;
	if (s->health_thread)
		pthread_join(s->health_thread, NULL);
	srv_waits_free(s->waits);
	s->waits = NULL;
	srv_lguard_free(s->lguard);
	s->lguard = NULL;
	srv_tasks_free(s->tasks);	/* the events socket is closed */
	s->tasks = NULL;
}
