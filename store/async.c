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
 * failed by the first attempt that begins after it came: each read tries
 * the database once, as a synchronous call does.
 *
 * A read of one key (store_async_send_key) may share its query.  Keyed
 * reads go to the first connection that is up; while one such query is
 * in flight there, those that come wait, and when its results are in,
 * the connection's thread sends them all as one query over an array of
 * their keys.  Unloaded, a read goes out at once as before; loaded,
 * PostgreSQL starts one executor for many reads instead of one each.
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
#define MERGE_MAX 64		/* keyed reads one query answers at most */
/* An array literal of MERGE_MAX quoted keys, each character escaped. */
#define MERGE_KEYS_SIZE (MERGE_MAX * (2 * STORE_KEY_MAX + 3) + 3)

/* A FIFO of ops, linked through op->next. */
struct op_list {
	struct store_op *head, *tail;
};

struct async_conn {
	struct store_async *a;
	pthread_mutex_t mu;	/* everything below but thr and wake */
	store_conn *db;		/* its pg is in pipeline, non-blocking mode */
	bool up;		/* pg connected, prepared, pipelined */
	bool broken;		/* a send failed: the thread drops it */
	bool want_write;	/* libpq holds unsent bytes */
	bool got_result;	/* head's first result was parsed */
	struct op_list sent;	/* results pending, in order */
	struct op_list waiting;	/* for the connection to come up */
	struct op_list merging;	/* keyed reads, for the next merged query */
	bool merge_busy;	/* a keyed query is in flight */
	size_t queries;		/* sent since open */
	char keys[MERGE_KEYS_SIZE];	/* a merged query's $1 */
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
list_push(struct op_list *l, struct store_op *op)
{
	op->next = NULL;
	if (l->tail != NULL)
		l->tail->next = op;
	else
		l->head = op;
	l->tail = op;
}

/* Moves every op of `from` to the end of `to`. */
static void
list_join(struct op_list *to, struct op_list *from)
{
	if (from->head == NULL)
		return;
	if (to->tail != NULL)
		to->tail->next = from->head;
	else
		to->head = from->head;
	to->tail = from->tail;
	*from = (struct op_list){ NULL, NULL };
}

static void
conn_wake(struct async_conn *c)
{
	uint64_t one = 1;

	(void)!write(c->wake, &one, sizeof(one));
}

/*
 * Moves the ops in flight off a broken connection to *lost, failed with
 * VG_EUNAVAIL (under c->mu); returns how many.
 */
static size_t
conn_break(struct async_conn *c, struct op_list *lost)
{
	size_t n = 0;

	for (struct store_op *op = c->sent.head; op != NULL; op = op->next) {
		op->rv = VG_EUNAVAIL;
		PQclear(op->res);	/* a result without its sync point */
		op->res = NULL;
		for (struct store_op *m = op; m != NULL; m = m->merged)
			n++;
	}
	list_join(lost, &c->sent);
	for (struct store_op *op = c->merging.head; op != NULL;
	    op = op->next) {
		op->rv = VG_EUNAVAIL;
		n++;
	}
	list_join(lost, &c->merging);
	c->merge_busy = false;
	c->up = false;
	c->broken = false;
	c->want_write = false;
	c->got_result = false;
	store_conn_reset(c->db);
	return n;
}

/*
 * Parses the results and runs the done callbacks of a finished list, in
 * order (no lock held); the reads merged into an op's query share its
 * result and its rv.  A result lives until its done returns: a parser
 * may point into it instead of copying (store_video_list_start), and
 * done may reuse the op for another read.
 */
static void
ops_done(struct op_list *l)
{
	struct store_op *op = l->head, *next, *m, *mnext;

	for (; op != NULL; op = next) {
		PGresult *res = op->res;
		int rv = op->rv;

		next = op->next;
		op->next = NULL;
		op->res = NULL;
		for (m = op; m != NULL; m = mnext) {
			mnext = m->merged;
			m->merged = NULL;
			if (res != NULL)	/* set only with rv 0 */
				rv = m->parse(m, res);
			m->rv = rv;
			m->done(m, rv);
		}
		PQclear(res);
	}
}

/*
 * Sends statement `stmt` with `params` on c, which is up, for op and the
 * reads merged behind it (under c->mu).  0 or VG_EUNAVAIL.
 */
static int
conn_query(struct async_conn *c, struct store_op *op, const char *stmt,
    int nparams, const char *const *params)
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
	if (!PQsendQueryPrepared(pg, stmt, nparams, params, NULL, NULL, 0) ||
	    !PQpipelineSync(pg) || (f = PQflush(pg)) < 0) {
		c->broken = true;
		conn_wake(c);
		return VG_EUNAVAIL;
	}
	op->rv = VG_EINTERNAL;	/* until a result says otherwise */
	op->res = NULL;
	list_push(&c->sent, op);
	c->queries++;
	if (f == 1 && !c->want_write) {
		c->want_write = true;
		conn_wake(c);
	}
	return 0;
}

/*
 * Writes `key` into c->keys at *used as an element of an array literal:
 * quoted, its quotes and backslashes escaped (STORE_KEY_MAX bytes fit).
 */
static void
keys_add(struct async_conn *c, size_t *used, const char *key)
{
	char *p = c->keys + *used;

	*p++ = *used == 0 ? '{' : ',';
	*p++ = '"';
	for (; *key != '\0'; key++) {
		if (*key == '"' || *key == '\\')
			*p++ = '\\';
		*p++ = *key;
	}
	*p++ = '"';
	*used = (size_t)(p - c->keys);
}

/*
 * Sends the keyed reads op (and those chained on op->merged) as one
 * query of their statement over the array of their keys (under c->mu).
 * 0 or VG_EUNAVAIL.
 */
static int
conn_merged(struct async_conn *c, struct store_op *op)
{
	const char *params[1] = { c->keys };
	size_t used = 0;
	int rv;

	for (struct store_op *m = op; m != NULL; m = m->merged)
		keys_add(c, &used, m->params[0]);
	c->keys[used++] = '}';
	c->keys[used] = '\0';
	if ((rv = conn_query(c, op, op->stmt, 1, params)) == 0)
		c->merge_busy = true;
	return rv;
}

/*
 * Queues op on c, which is up (under c->mu): a keyed read waits for the
 * next merged query while one is in flight.  0 or VG_EUNAVAIL.
 */
static int
conn_send(struct async_conn *c, struct store_op *op)
{
	if (!c->up || c->broken)
		return VG_EUNAVAIL;
	if (!op->merge)
		return conn_query(c, op, op->stmt, op->nparams, op->params);
	if (c->merge_busy) {
		list_push(&c->merging, op);
		return 0;
	}
	return conn_merged(c, op);
}

/*
 * Sends the keyed reads that waited while a merged query was in flight
 * (under c->mu, on c's thread, once none is): those of the first one's
 * statement, at most MERGE_MAX, as one query; the others keep their
 * order for the next.  False when the connection broke (the reads taken
 * are then in c->sent, to fail with it).
 */
static bool
conn_merge_waiting(struct async_conn *c)
{
	struct store_op *op = c->merging.head, *tail, *o, *next;
	struct op_list rest = { NULL, NULL };
	int n = 1;

	if (c->merge_busy || op == NULL)
		return true;
	tail = op;
	for (o = op->next; o != NULL; o = next) {
		next = o->next;
		if (n < MERGE_MAX && strcmp(o->stmt, op->stmt) == 0) {
			tail->merged = o;
			tail = o;
			n++;
		} else {
			list_push(&rest, o);
		}
	}
	tail->merged = NULL;
	c->merging = rest;
	if (conn_merged(c, op) == 0)
		return true;
	list_push(&c->sent, op);
	return false;
}

/*
 * Connects, prepares every statement, enters pipeline mode, and sends the
 * ops waiting for it, in the order they came.  If the attempt fails, the
 * ops that were waiting when it began fail (to *failed, done not yet
 * called); those that came during it keep waiting for the next attempt,
 * which their wake-up starts at once: an op that came after the database
 * returned must not fail on an attempt begun before.
 */
static void
conn_up(struct async_conn *c, struct op_list *failed)
{
	struct op_list mine;
	struct store_op *op, *next;
	PGconn *pg;
	bool ok;

	pthread_mutex_lock(&c->mu);
	mine = c->waiting;
	c->waiting = (struct op_list){ NULL, NULL };
	pthread_mutex_unlock(&c->mu);

	pg = store_conn_pg(c->db);
	ok = pg != NULL && store_prepare_all(c->db) == 0 &&
	    PQsetnonblocking(pg, 1) == 0 && PQenterPipelineMode(pg) == 1;
	if (!ok)
		store_conn_reset(c->db);
	pthread_mutex_lock(&c->mu);
	c->up = ok;
	if (ok) {
		list_join(&mine, &c->waiting);
		op = mine.head;
	} else {
		op = NULL;
		for (struct store_op *o = mine.head; o != NULL; o = o->next)
			o->rv = VG_EUNAVAIL;
		list_join(failed, &mine);
	}
	for (; op != NULL; op = next) {
		next = op->next;
		if (conn_send(c, op) < 0) {
			op->rv = VG_EUNAVAIL;
			list_push(failed, op);
		}
	}
	pthread_mutex_unlock(&c->mu);
}

/*
 * Reads what arrived and moves the ops whose results are complete to
 * *done (under c->mu; done not yet called).  Per op, the pipeline yields
 * its result(s), NULL, then the sync point.  False when the connection
 * broke.
 */
static bool
conn_read(struct async_conn *c, struct op_list *done)
{
	PGconn *pg = c->db->pg;
	bool after_null = false;

	if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK)
		return false;
	while (c->sent.head != NULL && !PQisBusy(pg)) {
		struct store_op *op = c->sent.head;
		PGresult *res = PQgetResult(pg);

		if (res == NULL) {
			/* End of op's results, its sync point next; twice
			 * means libpq has nothing queued: out of step. */
			if (after_null)
				return false;
			after_null = true;
			continue;
		}
		after_null = false;
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			c->sent.head = op->next;
			if (c->sent.head == NULL)
				c->sent.tail = NULL;
			c->got_result = false;
			if (op->merge)
				c->merge_busy = false;
			list_push(done, op);
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
	return PQstatus(pg) == CONNECTION_OK;
}

static void *
conn_main(void *arg)
{
	struct async_conn *c = arg;
	struct store_async *a = c->a;
	struct op_list done;

	(void)pthread_setname_np(pthread_self(), "vgen:reads");
	while (!atomic_load(&a->stop)) {
		struct pollfd pfd[2] = { { .fd = c->wake, .events = POLLIN } };
		bool broken;
		uint64_t n;

		done = (struct op_list){ NULL, NULL };
		if (!c->up) {
			conn_up(c, &done);
			ops_done(&done);
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
			broken = !conn_read(c, &done);
		if (!broken)
			broken = !conn_merge_waiting(c);
		if (broken)
			vg_warn("database connection lost reads_failed=%zu",
			    conn_break(c, &done));
		pthread_mutex_unlock(&c->mu);
		ops_done(&done);
	}
	/* Closing: what is in flight or waiting fails. */
	done = (struct op_list){ NULL, NULL };
	pthread_mutex_lock(&c->mu);
	(void)conn_break(c, &done);
	for (struct store_op *op = c->waiting.head; op != NULL; op = op->next)
		op->rv = VG_EUNAVAIL;
	list_join(&done, &c->waiting);
	pthread_mutex_unlock(&c->mu);
	ops_done(&done);
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

/*
 * Sends op on a connection of `a`.  A read of its own goes to the first
 * that is up and free (its lock); when all are busy, to the first that
 * is up, once its lock is free.  A keyed read goes to the first that is
 * up in their order, where it waits while a merged query is in flight:
 * the more reads wait together, the fewer queries (GetMe at -c 16: 7
 * reads a query on one connection, 2 when each read took a free one).
 * When none is up, op waits for its connection's next attempt.
 */
static void
async_route(store_async *a, struct store_op *op)
{
	unsigned start = op->merge ? 0 : atomic_fetch_add(&a->next, 1);
	struct async_conn *c;
	int rv;

	for (size_t k = 0; k < a->n && !op->merge; k++) {
		c = &a->c[(start + k) % a->n];
		if (pthread_mutex_trylock(&c->mu) != 0)
			continue;
		rv = conn_send(c, op);
		pthread_mutex_unlock(&c->mu);
		if (rv == 0)
			return;
	}
	for (size_t k = 0; k < a->n; k++) {
		c = &a->c[(start + k) % a->n];
		pthread_mutex_lock(&c->mu);
		rv = conn_send(c, op);
		pthread_mutex_unlock(&c->mu);
		if (rv == 0)
			return;
	}
	c = &a->c[start % a->n];
	pthread_mutex_lock(&c->mu);
	if (conn_send(c, op) == 0) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	list_push(&c->waiting, op);
	pthread_mutex_unlock(&c->mu);
	conn_wake(c);
}

/* Fills in op for a read of `stmt` and sends it.  0 or VG_EINVAL. */
static int
async_send(store_async *a, struct store_op *op, const char *stmt,
    const char *const *params, int nparams,
    int (*parse)(struct store_op *op, const PGresult *res), bool merge)
{
	int rv;

	if ((rv = op_params(op, params, nparams)) < 0)
		return rv;
	op->stmt = stmt;
	op->parse = parse;
	op->res = NULL;
	op->merge = merge;
	op->merged = NULL;
	async_route(a, op);
	return 0;
}

int
store_async_send(store_async *a, struct store_op *op, const char *stmt,
    const char *const *params, int nparams,
    int (*parse)(struct store_op *op, const PGresult *res))
{
	return async_send(a, op, stmt, params, nparams, parse, false);
}

int
store_async_send_key(store_async *a, struct store_op *op, const char *stmt,
    const char *key, int (*parse)(struct store_op *op, const PGresult *res))
{
	if (strlen(key) > STORE_KEY_MAX)
		return VG_EINVAL;
	return async_send(a, op, stmt, &key, 1, parse, true);
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
		if (c->wake < 0 || store_open_reads(conninfo, &c->db) < 0 ||
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
		struct async_conn *c = &a->c[i];

		pthread_mutex_lock(&c->mu);
		for (struct store_op *op = c->sent.head; op != NULL;
		    op = op->next)
			for (struct store_op *m = op; m != NULL; m = m->merged)
				n++;
		for (struct store_op *op = c->merging.head; op != NULL;
		    op = op->next)
			n++;
		pthread_mutex_unlock(&c->mu);
	}
	return n;
}

size_t
store_async_queries(store_async *a)
{
	size_t n = 0;

	for (size_t i = 0; i < a->n; i++) {
		pthread_mutex_lock(&a->c[i].mu);
		n += a->c[i].queries;
		pthread_mutex_unlock(&a->c[i].mu);
	}
	return n;
}
