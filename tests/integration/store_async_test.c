/*
 * tests/integration/store_async_test.c: store_async, the pipelined reads
 * (store/async.c), against a private PostgreSQL: results reach the op
 * that asked, in any mix of rows, empty results and SQL errors, from
 * several threads at once; a database restart fails what was in flight
 * and the next read succeeds, also one sent while a connect attempt begun
 * before the restart still hangs; closing answers every op exactly once;
 * a user is read through the index even when a scan would be planned;
 * reads of users that wait for their connection share one query, and
 * fail with it.
 */
#include <ctype.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <libpq-fe.h>

#include "fx.h"
#include "store.h"
#include "store_int.h"

#define NUSERS 8

struct env {
	struct fx_pg *pg;
	struct store_user users[NUSERS];
	PGconn *lock;		/* lock_users' session, until unlock_users */
};

/*
 * A read whose done records its outcome; tests wait on the counter.  A
 * user read's strings view the result, which dies when done returns:
 * done copies the email and clears them.
 */
struct rd {
	struct store_op op;
	struct store_user u;
	char email[64];
	struct store_video vids[4];
	int n;
	int rv;
	int calls;		/* done ran this many times */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int finished;	/* done calls since reset_finished */

static void
rd_done(struct store_op *op, int rv)
{
	struct rd *r = (struct rd *)(void *)op;

	if (r->u.email != NULL)
		snprintf(r->email, sizeof(r->email), "%s", r->u.email);
	r->u.email = r->u.password_hash = r->u.username = NULL;
	r->u.avatar_url = NULL;
	pthread_mutex_lock(&mu);
	r->rv = rv;
	r->calls++;
	finished++;
	pthread_mutex_unlock(&mu);
}

/* Polls until `n` ops finished since the counter was reset (10 s). */
static bool
wait_finished(int n)
{
	int64_t until = vg_now_ms() + 10000;
	bool ok;

	pthread_mutex_lock(&mu);
	while (finished < n && vg_now_ms() < until) {
		pthread_mutex_unlock(&mu);
		usleep(1000);
		pthread_mutex_lock(&mu);
	}
	ok = finished >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

static void
reset_finished(void)
{
	pthread_mutex_lock(&mu);
	finished = 0;
	pthread_mutex_unlock(&mu);
}

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	store_conn *db = NULL;
	char sql[256];
	int rv = -1;

	if (e == NULL || fx_pg_setup((void **)&e->pg) != 0)
		goto out;
	if (store_open(e->pg->conninfo, &db) < 0 ||
	    store_migrate(db, false) < 0)
		goto out;
	for (int i = 0; i < NUSERS; i++) {
		char email[64];

		snprintf(email, sizeof(email), "async%d@example.com", i);
		if (store_user_create(db, email, "$2b$04$x", NULL,
		    &e->users[i]) < 0)
			goto out;
	}
	/*
	 * users[0] has a video: the SQL error of start_mixed (a keyset bound
	 * out of range) is then raised whichever index the page plan reads,
	 * as the bound is computed at the latest on that row.
	 */
	snprintf(sql, sizeof(sql), "INSERT INTO videos (user_id, prompt, "
	    "orientation, video_url) VALUES ('%s', 'p', 'portrait', "
	    "'https://v.example/0')", e->users[0].id);
	if (fx_pg_exec(e->pg, sql) < 0)
		goto out;
	rv = 0;
out:
	store_close(db);
	*state = e;
	return rv;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	for (int i = 0; i < NUSERS; i++)
		store_user_fini(&e->users[i]);
	fx_pg_teardown((void **)&e->pg);
	free(e);
	return 0;
}

static store_async *
open_async(struct env *e, size_t n)
{
	store_async *a = NULL;

	assert_int_equal(store_async_open(e->pg->conninfo, n, &a), 0);
	return a;
}

/* One read of kind k % 3: a user, a missing user, or an SQL error. */
static void
start_mixed(struct env *e, store_async *a, struct rd *r, int k)
{
	static const char missing[] = "00000000-0000-4000-8000-000000000000";
	int rv = 0;

	memset(r, 0, sizeof(*r));
	r->op.done = rd_done;
	switch (k % 3) {
	case 0:
		rv = store_user_get_start(a, &r->op,
		    e->users[k % NUSERS].id, &r->u);
		break;
	case 1:
		rv = store_user_get_start(a, &r->op, missing, &r->u);
		break;
	case 2:
		/* In range for int8, not for an interval: SQLSTATE 22008. */
		rv = store_video_list_start(a, &r->op, e->users[0].id, 0,
		    INT64_MAX, missing, 4, r->vids, &r->n);
		break;
	}
	assert_int_equal(rv, 0);
}

static void
check_mixed(struct env *e, struct rd *r, int k)
{
	assert_int_equal(r->calls, 1);
	switch (k % 3) {
	case 0:
		assert_int_equal(r->rv, 0);
		assert_string_equal(r->u.id, e->users[k % NUSERS].id);
		assert_string_equal(r->email, e->users[k % NUSERS].email);
		break;
	case 1:
		assert_int_equal(r->rv, VG_ENOTFOUND);
		break;
	case 2:
		assert_int_equal(r->rv, VG_EINVAL);
		break;
	}
}

/* One read of kind k % 3, waited for and checked. */
static void
read_one(struct env *e, store_async *a, struct rd *r, int k)
{
	reset_finished();
	start_mixed(e, a, r, k);
	assert_true(wait_finished(1));
	check_mixed(e, r, k);
}

struct burst {
	struct env *e;
	store_async *a;
	struct rd *rds;
	int first, n;
};

static void *
burst_main(void *arg)
{
	struct burst *b = arg;

	for (int k = b->first; k < b->first + b->n; k++)
		start_mixed(b->e, b->a, &b->rds[k], k);
	return NULL;
}

/* 4 threads × 500 reads on 2 connections: each gets its own answer. */
static void
test_results_reach_their_op_under_concurrency(void **state)
{
	struct env *e = *state;
	store_async *a = open_async(e, 2);
	enum { NTHR = 4, PER = 500 };
	struct rd *rds = calloc(NTHR * PER, sizeof(*rds));
	struct burst b[NTHR];
	pthread_t t[NTHR];

	assert_non_null(rds);
	reset_finished();
	for (int i = 0; i < NTHR; i++) {
		b[i] = (struct burst){ e, a, rds, i * PER, PER };
		assert_int_equal(pthread_create(&t[i], NULL, burst_main,
		    &b[i]), 0);
	}
	for (int i = 0; i < NTHR; i++)
		pthread_join(t[i], NULL);
	assert_true(wait_finished(NTHR * PER));
	assert_int_equal(store_async_inflight(a), 0);
	for (int k = 0; k < NTHR * PER; k++)
		check_mixed(e, &rds[k], k);
	store_async_close(a);
	free(rds);
}

/*
 * STORE_TS_US columns read back exactly what PostgreSQL's own epoch
 * arithmetic gives, on both sides of both epochs and at the ends of the
 * range; infinities, NULL and a value that is not 8 bytes are told
 * apart.  The session settings pin bytea_output, even over "escape".
 */
static void
test_timestamps_read_exactly(void **state)
{
	struct env *e = *state;
	PGconn *pg = PQconnectdb(e->pg->conninfo);
	PGresult *res;

	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	PQclear(PQexec(pg, "SET bytea_output = 'escape'"));
	res = PQexec(pg, STORE_SESSION_SQL);
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	res = PQexec(pg, "SELECT " STORE_TS_US("t") ", (extract(epoch from t) "
	    "* 1000000)::int8 FROM (VALUES (timestamp '1970-01-01'), "
	    "('2000-01-01'), ('1969-12-31 23:59:59.999999'), "
	    "('1999-12-31 23:59:59.999999'), ('2026-12-07 11:41:57.015253'), "
	    "('4713-01-01 00:00:00 BC'), ('200000-01-01 00:00:00.000001')) "
	    "v(t)");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_int_equal(PQntuples(res), 7);
	for (int i = 0; i < PQntuples(res); i++)
		assert_true(store_col_ts_us(res, i, 0) ==
		    store_col_i64(res, i, 1));
	assert_true(store_col_ts_us(res, 0, 0) == 0);
	assert_true(store_col_ts_us(res, 4, 0) == INT64_C(1796643717015253));
	PQclear(res);
	res = PQexec(pg, "SELECT " STORE_TS_US("'infinity'::timestamp") ", "
	    STORE_TS_US("'-infinity'::timestamp") ", " STORE_TS_US(
	    "'294276-12-31 23:59:59.999999'::timestamp") ", NULL::bytea, "
	    "'\\x0001'::bytea, '\\xzzzzzzzzzzzzzzzz'::text");
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_true(store_col_ts_us(res, 0, 0) == INT64_MAX);
	assert_true(store_col_ts_us(res, 0, 1) == INT64_MIN);
	/* 294276 AD overflows int64 once moved to the Unix epoch */
	assert_true(store_col_ts_us(res, 0, 2) == INT64_MAX);
	for (int c = 3; c < 6; c++)
		assert_true(store_col_ts_us(res, 0, c) == 0);
	PQclear(res);
	PQfinish(pg);
}

/* users' sequential and index scans so far (-1: unreadable). */
static void
users_scans(PGconn *pg, long *seq, long *idx)
{
	PGresult *res = PQexec(pg, "SELECT seq_scan, idx_scan FROM "
	    "pg_stat_user_tables WHERE relname = 'users'");

	*seq = *idx = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		*seq = atol(PQgetvalue(res, 0, 0));
		*idx = atol(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
}

/*
 * The reads' sessions never scan a table (STORE_READS_SQL): the users
 * here fit in one page and, once analyzed, a session set up as any
 * other's plans a scan of it for user_get_any; the reads look each user
 * up in the index.  Each query scans the index once however many reads it merged.  The
 * counts come from the statistics that each backend reports when it ends
 * (store_async_close), hence the wait.
 */
static void
test_reads_look_users_up_in_the_index(void **state)
{
	struct env *e = *state;
	PGconn *pg = PQconnectdb(e->pg->conninfo);
	char args[64];
	char *plan;
	struct rd rds[20];
	store_async *a;
	long seq0, idx0, seq, idx, queries;
	int64_t until;

	/* as autovacuum leaves it: without statistics, the index is chosen */
	assert_int_equal(fx_pg_exec(e->pg, "ANALYZE users"), 0);
	snprintf(args, sizeof(args), "'{%s}'", e->users[1].id);
	plan = fx_pg_explain(e->pg, "user_get_any", args);
	assert_non_null(plan);
	assert_true(fx_plan_has(plan, "Seq Scan", "users"));
	free(plan);

	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	users_scans(pg, &seq0, &idx0);
	assert_true(seq0 >= 0 && idx0 >= 0);
	a = open_async(e, 2);
	reset_finished();
	for (int i = 0; i < 20; i++) {
		memset(&rds[i], 0, sizeof(rds[i]));
		rds[i].op.done = rd_done;
		assert_int_equal(store_user_get_start(a, &rds[i].op,
		    e->users[i % NUSERS].id, &rds[i].u), 0);
	}
	assert_true(wait_finished(20));
	for (int i = 0; i < 20; i++)
		assert_int_equal(rds[i].rv, 0);
	queries = (long)store_async_queries(a);	/* merged: 1 to 20 */
	assert_true(queries >= 1 && queries <= 20);
	store_async_close(a);
	until = vg_now_ms() + 10000;
	do {
		usleep(20 * 1000);
		users_scans(pg, &seq, &idx);
	} while (idx < idx0 + queries && vg_now_ms() < until);
	assert_true(idx >= idx0 + queries);
	assert_true(seq == seq0);
	PQfinish(pg);
}

/* Parameters are checked before anything is sent: done never runs. */
static void
test_bad_parameters_are_refused_at_start(void **state)
{
	struct env *e = *state;
	store_async *a = open_async(e, 1);
	struct rd r = { .op.done = rd_done };

	assert_int_equal(store_user_get_start(a, &r.op, "not-a-uuid", &r.u),
	    VG_ENOTFOUND);
	assert_int_equal(store_video_list_start(a, &r.op, e->users[0].id, 0,
	    0, "garbage", 4, r.vids, &r.n), VG_EINVAL);
	assert_int_equal(r.calls, 0);
	store_async_close(a);
	assert_int_equal(store_async_open(e->pg->conninfo, 0, &a),
	    VG_EINVAL);
}

/*
 * A page's rows view the result, which lives until done returns: done
 * copies what the test checks after it.
 */
struct page_rd {
	struct rd rd;
	char prompts[4][8];
	char ids[4][VG_UUID_STRLEN + 1];
};

static void
page_done(struct store_op *op, int rv)
{
	struct page_rd *p = (struct page_rd *)(void *)op;

	for (int i = 0; rv == 0 && i < p->rd.n; i++) {
		snprintf(p->prompts[i], sizeof(p->prompts[i]), "%s",
		    p->rd.vids[i].prompt);
		snprintf(p->ids[i], sizeof(p->ids[i]), "%s", p->rd.vids[i].id);
	}
	rd_done(op, rv);
}

/* A page comes back whole: rows parsed into the caller's array. */
static void
test_video_page_is_parsed(void **state)
{
	struct env *e = *state;
	store_async *a = open_async(e, 1);
	struct page_rd p = { .rd.op.done = page_done };
	struct rd r = { 0 };
	char sql[512];

	snprintf(sql, sizeof(sql), "INSERT INTO videos (user_id, prompt, "
	    "orientation, video_url, duration, created_at) SELECT '%s', "
	    "'p' || g, 'landscape', 'https://v.example/' || g, g, "
	    "timestamp '2026-01-01' + g * interval '1 second' "
	    "FROM generate_series(1, 6) g", e->users[1].id);
	assert_int_equal(fx_pg_exec(e->pg, sql), 0);
	reset_finished();
	assert_int_equal(store_video_list_start(a, &p.rd.op, e->users[1].id,
	    0, 0, NULL, 4, p.rd.vids, &p.rd.n), 0);
	assert_true(wait_finished(1));
	r = p.rd;
	assert_int_equal(r.rv, 0);
	assert_int_equal(r.n, 4);
	assert_string_equal(p.prompts[0], "p6");	/* newest first */
	assert_string_equal(p.prompts[3], "p3");
	assert_true(vg_uuid_valid(p.ids[0]));
	assert_string_equal(r.vids[0].user_id, e->users[1].id);
	assert_int_equal(r.vids[0].duration, 6);
	assert_int_equal(r.vids[0].orientation, STORE_LANDSCAPE);
	store_async_close(a);
}

/*
 * The database stops: reads fail with VG_EUNAVAIL (done still runs once);
 * it starts again: the very next read succeeds, without waiting for the
 * connections' retry period.
 */
static void
test_database_restart(void **state)
{
	struct env *e = *state;
	store_async *a = open_async(e, 2);
	struct rd r[8];

	/* Both connections up (a read answered on each). */
	reset_finished();
	for (int k = 0; k < 4; k++)
		start_mixed(e, a, &r[k], 0);
	assert_true(wait_finished(4));
	for (int k = 0; k < 4; k++)
		check_mixed(e, &r[k], 0);

	assert_int_equal(fx_pg_stop(e->pg), 0);
	reset_finished();
	for (int k = 0; k < 8; k++)
		start_mixed(e, a, &r[k], 0);
	assert_true(wait_finished(8));
	for (int k = 0; k < 8; k++) {
		assert_int_equal(r[k].calls, 1);
		assert_int_equal(r[k].rv, VG_EUNAVAIL);
	}

	assert_int_equal(fx_pg_resume(e->pg), 0);
	reset_finished();
	for (int k = 0; k < 8; k++)
		start_mixed(e, a, &r[k], (k % 3 == 0) ? k : 0);
	assert_true(wait_finished(8));
	for (int k = 0; k < 8; k++)
		check_mixed(e, &r[k], (k % 3 == 0) ? k : 0);
	store_async_close(a);
}

/*
 * A read sent while a connect attempt from before the database came back
 * still hangs is sent on the next attempt, not failed with that one.  The
 * hang is a listener on the socket path that never answers; closing it
 * fails the attempt, after PostgreSQL is up again on a fresh socket.
 */
static void
test_read_outlives_a_stale_connect_attempt(void **state)
{
	struct env *e = *state;
	store_async *a = open_async(e, 1);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd = { .events = POLLIN };
	struct rd r[3];
	int n;

	read_one(e, a, &r[0], 0);

	assert_int_equal(fx_pg_stop(e->pg), 0);
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/.s.PGSQL.%d",
	    e->pg->dir, e->pg->port);
	assert_true(n > 0 && (size_t)n < sizeof(sa.sun_path));
	(void)unlink(sa.sun_path);
	pfd.fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(pfd.fd >= 0);
	assert_int_equal(bind(pfd.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(pfd.fd, 4), 0);
	/* The connection's retry connects and waits for an answer. */
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(unlink(sa.sun_path), 0);
	assert_int_equal(fx_pg_resume(e->pg), 0);

	reset_finished();
	for (int k = 0; k < 3; k++)
		start_mixed(e, a, &r[k], k);
	close(pfd.fd);	/* the stale attempt fails */
	assert_true(wait_finished(3));
	for (int k = 0; k < 3; k++)
		check_mixed(e, &r[k], k);
	store_async_close(a);
}

/* Closing with reads in flight answers each exactly once. */
static void
test_close_answers_everything_once(void **state)
{
	struct env *e = *state;
	store_async *a = open_async(e, 2);
	enum { N = 300 };
	struct rd *rds = calloc(N, sizeof(*rds));

	assert_non_null(rds);
	reset_finished();
	for (int k = 0; k < N; k++)
		start_mixed(e, a, &rds[k], 0);
	store_async_close(a);
	assert_true(wait_finished(N));
	for (int k = 0; k < N; k++) {
		assert_int_equal(rds[k].calls, 1);
		assert_true(rds[k].rv == 0 || rds[k].rv == VG_EUNAVAIL);
	}
	free(rds);
}

/*
 * A session that holds users locked, so that reads of it wait, kept in
 * e->lock: a test that fails before unlock_users leaves it to
 * unlock_teardown, and the tests after it do not hang on the lock.
 */
static void
lock_users(struct env *e)
{
	PGresult *res;

	e->lock = PQconnectdb(e->pg->conninfo);
	assert_int_equal(PQstatus(e->lock), CONNECTION_OK);
	res = PQexec(e->lock, "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE "
	    "MODE");
	assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
}

/* Ends lock_users' transaction: `sql` ("COMMIT", ...) then closes. */
static void
unlock_users(struct env *e, const char *sql)
{
	PGresult *res = PQexec(e->lock, sql);
	ExecStatusType st = PQresultStatus(res);

	PQclear(res);
	PQfinish(e->lock);
	e->lock = NULL;
	assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

static int
unlock_teardown(void **state)
{
	struct env *e = *state;

	PQfinish(e->lock);	/* NULL unless the test failed holding it */
	e->lock = NULL;
	return 0;
}

/*
 * The reads of users go to one connection, and those that come while
 * one is in flight there wait and are answered together by its next
 * query, each with its own user (duplicates and missing ones among
 * them), at most 64 a query; a read of another kind is sent at once
 * meanwhile.  While users is locked the first read hangs in PostgreSQL,
 * so what is sent when is known.
 */
static void
test_waiting_reads_share_one_query(void **state)
{
	struct env *e = *state;
	store_async *a = open_async(e, 2);
	enum { N = 1 + 70 };
	struct rd *rds = calloc(N + 1, sizeof(*rds));
	char upper[VG_UUID_STRLEN + 1];

	assert_non_null(rds);
	read_one(e, a, &rds[0], 0);
	assert_int_equal(store_async_queries(a), 1);
	usleep(200 * 1000);	/* the other connection is up too */

	lock_users(e);
	reset_finished();
	start_mixed(e, a, &rds[0], 3);	/* sent alone, and hangs */
	for (int k = 1; k < N; k++)	/* users, and missing users */
		start_mixed(e, a, &rds[k], k % 2 == 0 ? k * 3 : 1);
	start_mixed(e, a, &rds[N], 2);	/* a page: sent at once */
	assert_int_equal(store_async_queries(a), 1 + 2);
	assert_true(store_async_inflight(a) >= N);

	unlock_users(e, "COMMIT");
	assert_true(wait_finished(N + 1));
	check_mixed(e, &rds[0], 3);
	for (int k = 1; k < N; k++)
		check_mixed(e, &rds[k], k % 2 == 0 ? k * 3 : 1);
	check_mixed(e, &rds[N], 2);
	/* then the 70 that waited: 64, and 6 */
	assert_int_equal(store_async_queries(a), 1 + 2 + 2);
	assert_int_equal(store_async_inflight(a), 0);

	/* A key is found in the rows whatever the case of its hex digits. */
	snprintf(upper, sizeof(upper), "%s", e->users[5].id);
	for (char *p = upper; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	reset_finished();
	memset(&rds[0], 0, sizeof(rds[0]));
	rds[0].op.done = rd_done;
	assert_int_equal(store_user_get_start(a, &rds[0].op, upper,
	    &rds[0].u), 0);
	assert_true(wait_finished(1));
	assert_int_equal(rds[0].rv, 0);
	assert_string_equal(rds[0].email, e->users[5].email);
	store_async_close(a);
	free(rds);
}

/* Ends the backends waiting for a lock, once there is one (10 s). */
static bool
terminate_waiting(struct env *e)
{
	PGconn *pg = PQconnectdb(e->pg->conninfo);
	int64_t until = vg_now_ms() + 10000;
	bool done = false;

	while (!done && PQstatus(pg) == CONNECTION_OK &&
	    vg_now_ms() < until) {
		PGresult *res = PQexec(pg, "SELECT pg_terminate_backend(pid) "
		    "FROM pg_stat_activity WHERE wait_event_type = 'Lock'");

		done = PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) > 0;
		PQclear(res);
		if (!done)
			usleep(5000);
	}
	PQfinish(pg);
	return done;
}

/*
 * The connection breaks with reads waiting to be merged: each fails once
 * with VG_EUNAVAIL, and the next read succeeds.
 */
static void
test_waiting_reads_fail_with_their_connection(void **state)
{
	struct env *e = *state;
	store_async *a = open_async(e, 1);
	struct rd r[6];

	read_one(e, a, &r[0], 0);	/* the connection is up */
	lock_users(e);
	reset_finished();
	for (int k = 0; k < 5; k++)	/* one sent, four waiting */
		start_mixed(e, a, &r[k], k % 2 == 0 ? 0 : 1);
	assert_int_equal(store_async_inflight(a), 5);
	assert_int_equal(store_async_queries(a), 2);
	assert_true(terminate_waiting(e));
	assert_true(wait_finished(5));
	for (int k = 0; k < 5; k++) {
		assert_int_equal(r[k].calls, 1);
		assert_int_equal(r[k].rv, VG_EUNAVAIL);
	}
	unlock_users(e, "ROLLBACK");
	read_one(e, a, &r[5], 3);
	assert_int_equal(store_async_inflight(a), 0);
	store_async_close(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_reach_their_op_under_concurrency),
		cmocka_unit_test(test_bad_parameters_are_refused_at_start),
		cmocka_unit_test(test_timestamps_read_exactly),
		cmocka_unit_test(test_reads_look_users_up_in_the_index),
		cmocka_unit_test(test_video_page_is_parsed),
		cmocka_unit_test_teardown(test_waiting_reads_share_one_query,
		    unlock_teardown),
		cmocka_unit_test_teardown(
		    test_waiting_reads_fail_with_their_connection,
		    unlock_teardown),
		cmocka_unit_test(test_database_restart),
		cmocka_unit_test(test_read_outlives_a_stale_connect_attempt),
		cmocka_unit_test(test_close_answers_everything_once),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
