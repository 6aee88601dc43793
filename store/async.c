/*
 * store/async.c: reads without a waiting thread.  A store_async holds a
 * few libpq connections in pipeline mode.  Any thread sends a query on
 * one of them (store_async_send, under that connection's lock: a
 * non-blocking write, no thread switch), and the connection's own thread
 * waits for the results, which come back in order, and hands each to its
 * op's done callback.  One PostgreSQL wake-up then serves every query
 * queued on its connection, and no thread sleeps per call.
 *
 * A connection that breaks fails its ops in flight with VG_EUNAVAIL; its
 * thread connects again (every ASYNC_RETRY_MS while the database is down)
 * and meanwhile ops go to the other connections.  When none is up, an op
 * waits on one whose thread tries to connect at once, and is sent or
 * failed by that attempt: each read tries the database once, as a
 * synchronous call does.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "store_int.h"

#define ASYNC_RETRY_MS 100	/* reconnect period while the database is down */

struct async_conn {
	struct store_async *a;
	pthread_mutex_t mu;	/* everything below but thr and wake */
	store_conn *db;		/* its pg is in pipeline, non-blocking mode */
	bool up;		/* pg connected, prepared, pipelined */
	bool broken;		/* a send failed: the thread drops it */
	bool want_write;	/* libpq holds unsent bytes */
	bool got_result;	/* head's first result was parsed */
	struct store_op *head, *tail;	/* sent, results pending, in order */
	struct store_op *waiting;	/* for the connection, newest first */
	size_t inflight;
	int wake;		/* eventfd: stop, or poll for writing */
	pthread_t thr;
	bool started;
};

struct store_async {
	size_t n;
	struct async_conn *c;
	atomic_uint next;	/* round robin */
	atomic_bool stop;
};

static void
conn_wake(struct async_conn *c)
{
	uint64_t one = 1;

	(void)!write(c->wake, &one, sizeof(one));
}

/* Takes the ops in flight off a broken connection (under c->mu). */
static struct store_op *
conn_break(struct async_conn *c)
{
	struct store_op *ops = c->head;

	for (struct store_op *op = ops; op != NULL; op = op->next) {
		op->rv = VG_EUNAVAIL;
		PQclear(op->res);	/* a result without its sync point */
		op->res = NULL;
	}
	c->head = c->tail = NULL;
	c->inflight = 0;
	c->up = false;
	c->broken = false;
	c->want_write = false;
	c->got_result = false;
	store_conn_reset(c->db);
	return ops;
}

/*
 * Parses the results and runs the done callbacks of a finished list, in
 * order (no lock held: parsing copies rows).
 */
static void
ops_done(struct store_op *ops)
{
	while (ops != NULL) {
		struct store_op *next = ops->next;

		if (ops->res != NULL) {
			if (ops->rv == 0)
				ops->rv = ops->parse(ops, ops->res);
			PQclear(ops->res);
			ops->res = NULL;
		}
		ops->next = NULL;
		ops->done(ops, ops->rv);
		ops = next;
	}
}

/* Queues op on c, which is up (under c->mu).  0 or VG_EUNAVAIL. */
static int
conn_send(struct async_conn *c, struct store_op *op)
{
	PGconn *pg;
	int f;

	if (!c->up || c->broken)
		return VG_EUNAVAIL;
	pg = c->db->pg;
	/*
	 * A failure may leave libpq's queue out of step with ours: the
	 * connection is dropped (by its thread) and the op goes elsewhere.
	 */
	if (!PQsendQueryPrepared(pg, op->stmt, op->nparams, op->params, NULL,
	    NULL, 0) || !PQpipelineSync(pg) || (f = PQflush(pg)) < 0) {
		c->broken = true;
		conn_wake(c);
		return VG_EUNAVAIL;
	}
	op->rv = VG_EINTERNAL;	/* until a result says otherwise */
	op->res = NULL;
	op->next = NULL;
	if (c->tail != NULL)
		c->tail->next = op;
	else
		c->head = op;
	c->tail = op;
	c->inflight++;
	if (f == 1 && !c->want_write) {
		c->want_write = true;
		conn_wake(c);
	}
	return 0;
}

/*
 * Connects, prepares every statement, enters pipeline mode, and sends the
 * ops waiting for it; or fails them.  Returns the ops that failed (done
 * not yet called).
 */
static struct store_op *
conn_up(struct async_conn *c)
{
	PGconn *pg = store_conn_pg(c->db);
	struct store_op *failed = NULL, *op, *next;
	bool ok;

	ok = pg != NULL && store_prepare_all(c->db) == 0 &&
	    PQsetnonblocking(pg, 1) == 0 && PQenterPipelineMode(pg) == 1;
	if (!ok)
		store_conn_reset(c->db);
	pthread_mutex_lock(&c->mu);
	c->up = ok;
	/* Oldest first, so that they are sent in the order they came. */
	for (op = c->waiting, c->waiting = NULL; op != NULL; op = next) {
		next = op->next;
		op->next = c->waiting;
		c->waiting = op;
	}
	for (op = c->waiting, c->waiting = NULL; op != NULL; op = next) {
		next = op->next;
		if (!ok || conn_send(c, op) < 0) {
			op->rv = VG_EUNAVAIL;
			op->next = failed;
			failed = op;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return failed;
}

/*
 * Reads what arrived and finishes the ops whose results are complete
 * (under c->mu; the finished ops are returned, done not yet called).
 * Per op, the pipeline yields its result(s), NULL, then the sync point.
 */
static struct store_op *
conn_read(struct async_conn *c, bool *broken)
{
	PGconn *pg = c->db->pg;
	struct store_op *done = NULL, **tail = &done;
	bool after_null = false;

	if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK) {
		*broken = true;
		return NULL;
	}
	while (c->head != NULL && !PQisBusy(pg)) {
		struct store_op *op = c->head;
		PGresult *res = PQgetResult(pg);

		if (res == NULL) {
			/* End of op's results, its sync point next; twice
			 * means libpq has nothing queued: out of step. */
			if (after_null) {
				*broken = true;
				break;
			}
			after_null = true;
			continue;
		}
		after_null = false;
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			c->head = op->next;
			if (c->head == NULL)
				c->tail = NULL;
			c->inflight--;
			c->got_result = false;
			op->next = NULL;
			*tail = op;
			tail = &op->next;
			break;
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
			if (!c->got_result) {
				op->rv = 0;
				op->res = res;	/* parsed by ops_done */
				res = NULL;
			}
			c->got_result = true;
			break;
		default:
			if (!c->got_result)
				op->rv = store_map_error(op->stmt, res);
			c->got_result = true;
			break;
		}
		PQclear(res);
	}
	if (PQstatus(pg) != CONNECTION_OK)
		*broken = true;
	return done;
}

static void *
conn_main(void *arg)
{
	struct async_conn *c = arg;
	struct store_async *a = c->a;

	(void)pthread_setname_np(pthread_self(), "vgen:reads");
	while (!atomic_load(&a->stop)) {
		struct pollfd pfd[2] = { { .fd = c->wake, .events = POLLIN } };
		struct store_op *done = NULL;
		bool broken = false;
		uint64_t n;

		if (!c->up) {
			ops_done(conn_up(c));
			if (c->up)
				continue;
			/* Down: again after a while, or when an op waits. */
			(void)poll(pfd, 1, ASYNC_RETRY_MS);
			if (pfd[0].revents & POLLIN)
				(void)!read(c->wake, &n, sizeof(n));
			continue;
		}
		pthread_mutex_lock(&c->mu);
		pfd[1].fd = PQsocket(c->db->pg);
		pfd[1].events = POLLIN | (c->want_write ? POLLOUT : 0);
		pthread_mutex_unlock(&c->mu);
		if (poll(pfd, 2, -1) < 0)
			continue;	/* EINTR: nothing else can fail here */
		if (pfd[0].revents & POLLIN)
			(void)!read(c->wake, &n, sizeof(n));
		pthread_mutex_lock(&c->mu);
		broken = c->broken;
		if (!broken && (pfd[1].revents & POLLOUT)) {
			int f = PQflush(c->db->pg);

			c->want_write = f == 1;
			broken = f < 0;
		}
		if (!broken && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			done = conn_read(c, &broken);
		if (broken) {
			size_t nlost = c->inflight;
			struct store_op *lost = conn_break(c);

			vg_warn("database connection lost reads_failed=%zu",
			    nlost);
			if (done == NULL) {
				done = lost;
			} else {
				struct store_op *t = done;

				while (t->next != NULL)
					t = t->next;
				t->next = lost;
			}
		}
		pthread_mutex_unlock(&c->mu);
		ops_done(done);
	}
	pthread_mutex_lock(&c->mu);
	{
		struct store_op *lost = conn_break(c), *t;

		/* Closing: the waiting ops fail too. */
		for (t = c->waiting; t != NULL; t = t->next)
			t->rv = VG_EUNAVAIL;
		if (lost == NULL) {
			lost = c->waiting;
		} else {
			for (t = lost; t->next != NULL; t = t->next)
				;
			t->next = c->waiting;
		}
		c->waiting = NULL;
		pthread_mutex_unlock(&c->mu);
		ops_done(lost);
	}
	return NULL;
}

/* Copies the text parameters into op.  0 or VG_EINVAL. */
static int
op_params(struct store_op *op, const char *const *params, int nparams)
{
	size_t used = 0;

	if (nparams > STORE_OP_NPARAMS)
		return VG_EINVAL;
	for (int i = 0; i < nparams; i++) {
		size_t len;

		op->params[i] = NULL;
		if (params[i] == NULL)
			continue;
		len = strlen(params[i]) + 1;
		if (len > sizeof(op->pbuf) - used)
			return VG_EINVAL;
		memcpy(op->pbuf + used, params[i], len);
		op->params[i] = op->pbuf + used;
		used += len;
	}
	op->nparams = nparams;
	return 0;
}

int
store_async_send(store_async *a, struct store_op *op, const char *stmt,
    const char *const *params, int nparams,
    int (*parse)(struct store_op *op, const PGresult *res))
{
	unsigned start = atomic_fetch_add(&a->next, 1);
	struct async_conn *c;
	int rv;

	if ((rv = op_params(op, params, nparams)) < 0)
		return rv;
	op->stmt = stmt;
	op->parse = parse;
	op->res = NULL;
	/*
	 * The first free connection that is up takes it; when all are
	 * busy, the first that is up, once its lock is free.
	 */
	for (size_t k = 0; k < a->n; k++) {
		c = &a->c[(start + k) % a->n];
		if (pthread_mutex_trylock(&c->mu) != 0)
			continue;
		rv = conn_send(c, op);
		pthread_mutex_unlock(&c->mu);
		if (rv == 0)
			return 0;
	}
	for (size_t k = 0; k < a->n; k++) {
		c = &a->c[(start + k) % a->n];
		pthread_mutex_lock(&c->mu);
		rv = conn_send(c, op);
		pthread_mutex_unlock(&c->mu);
		if (rv == 0)
			return 0;
	}
	/* None is up: the op waits for its connection's next attempt. */
	c = &a->c[start % a->n];
	pthread_mutex_lock(&c->mu);
	if (conn_send(c, op) == 0) {
		pthread_mutex_unlock(&c->mu);
		return 0;
	}
	op->next = c->waiting;
	c->waiting = op;
	pthread_mutex_unlock(&c->mu);
	conn_wake(c);
	return 0;
}

void
store_async_close(store_async *a)
{
	if (a == NULL)
		return;
	atomic_store(&a->stop, true);
	for (size_t i = 0; i < a->n; i++) {
		struct async_conn *c = &a->c[i];

		if (c->started) {
			conn_wake(c);
			pthread_join(c->thr, NULL);
		}
		store_close(c->db);
		if (c->wake >= 0)
			close(c->wake);
		pthread_mutex_destroy(&c->mu);
	}
	free(a->c);
	free(a);
}

int
store_async_open(const char *conninfo, size_t nconn, store_async **out)
{
	store_async *a;

	if (nconn == 0)
		return VG_EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL || (a->c = calloc(nconn, sizeof(a->c[0]))) == NULL) {
		free(a);
		return VG_ENOMEM;
	}
	for (; a->n < nconn; a->n++) {
		struct async_conn *c = &a->c[a->n];

		c->a = a;
		pthread_mutex_init(&c->mu, NULL);
		c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (c->wake < 0 || store_open(conninfo, &c->db) < 0 ||
		    pthread_create(&c->thr, NULL, conn_main, c) != 0) {
			a->n++;
			store_async_close(a);
			return VG_ENOMEM;
		}
		c->started = true;
	}
	*out = a;
	return 0;
}

size_t
store_async_inflight(store_async *a)
{
	size_t n = 0;

	for (size_t i = 0; i < a->n; i++) {
		pthread_mutex_lock(&a->c[i].mu);
		n += a->c[i].inflight;
		pthread_mutex_unlock(&a->c[i].mu);
	}
	return n;
}
