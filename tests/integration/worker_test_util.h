/*
 * tests/integration/worker_test_util.h: what the worker_*_test.c files
 * share: a migrated private PostgreSQL with one user, jobs created with
 * store_job_create, and waits that watch a job's row.
 */
#ifndef WORKER_TEST_UTIL_H
#define WORKER_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "fx.h"
#include "store.h"

struct wenv {
	struct fx_pg pg;
	struct fx_fake_sora fake;
	store_conn *db;
	PGconn *pq;
	char user[VG_UUID_STRLEN + 1];
	char tag[32];		/* makes prompts unique per run */
};

static int
wenv_setup(struct wenv **out, const char *const *fake_args)
{
	struct wenv *e = calloc(1, sizeof(*e));
	struct store_user u = { 0 };
	char email[128];

	if (e == NULL || fx_pg_start(&e->pg) < 0)
		goto fail;
	if (store_open(e->pg.conninfo, &e->db) < 0 ||
	    store_migrate(e->db, false) < 0)
		goto fail;
	snprintf(email, sizeof(email), "w%ld-%d@example.com", (long)getpid(),
	    rand());
	if (store_user_create(e->db, email, "x", NULL, &u) < 0)
		goto fail;
	snprintf(e->user, sizeof(e->user), "%s", u.id);
	store_user_fini(&u);
	e->pq = PQconnectdb(e->pg.conninfo);
	if (PQstatus(e->pq) != CONNECTION_OK)
		goto fail;
	if (fake_args != NULL && fx_fake_sora_start(&e->fake, fake_args) < 0)
		goto fail;
	snprintf(e->tag, sizeof(e->tag), "%ld", (long)getpid());
	*out = e;
	return 0;
fail:
	fprintf(stderr, "worker test setup failed\n");
	if (e != NULL) {
		PQfinish(e->pq);
		store_close(e->db);
		fx_pg_destroy(&e->pg);
		free(e);
	}
	return -1;
}

static void
wenv_teardown(struct wenv *e)
{
	fx_fake_sora_stop(&e->fake);
	PQfinish(e->pq);
	store_close(e->db);
	fx_pg_destroy(&e->pg);
	free(e);
}

/* A job with prompt "<text> #<tag>"; its id into id. */
static void
job_new(struct wenv *e, const char *text, int orientation, char *id)
{
	struct store_job job = { 0 };
	char prompt[512];
	int outcome = 0;

	snprintf(prompt, sizeof(prompt), "%s #%s", text, e->tag);
	assert_int_equal(store_job_create(e->db, e->user, prompt, orientation,
	    NULL, 100000, 3, &job, &outcome), 0);
	snprintf(id, VG_UUID_STRLEN + 1, "%s", job.id);
	store_job_fini(&job);
}

static void
prompt_of(struct wenv *e, const char *text, char *out, size_t n)
{
	snprintf(out, n, "%s #%s", text, e->tag);
}

static long
sql_long(struct wenv *e, const char *fmt, ...)
{
	char sql[1024];
	PGresult *res;
	va_list ap;
	long v = -1;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	res = PQexec(e->pq, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    !PQgetisnull(res, 0, 0))
		v = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "sql failed: %s: %s", sql,
		    PQerrorMessage(e->pq));
	PQclear(res);
	return v;
}

static long
videos_of(struct wenv *e, const char *job_id)
{
	return sql_long(e, "SELECT count(*) FROM videos v JOIN video_jobs j "
	    "ON j.video_id = v.id WHERE j.id = '%s'", job_id);
}

/*
 * wait_job polls the row every 20 ms until it is completed or failed (or
 * `until_status` when not 0), at most timeout_ms, asserting that progress
 * never goes down.  Fills *job (store_job_fini it).  Returns the status.
 */
static int
wait_job(struct wenv *e, const char *id, int until_status, int timeout_ms,
    struct store_job *job)
{
	int last = -1, waited = 0;

	for (;;) {
		store_job_fini(job);
		assert_int_equal(store_job_get_any(e->db, id, job), 0);
		if (job->status == STORE_JOB_PROCESSING ||
		    job->status == STORE_JOB_COMPLETED) {
			assert_true(job->progress >= last);
			last = job->progress;
		}
		if (until_status != 0 ? job->status == until_status :
		    job->status == STORE_JOB_COMPLETED ||
		    job->status == STORE_JOB_FAILED)
			return job->status;
		if (waited >= timeout_ms) {
			if (timeout_ms >= 1000)
				fprintf(stderr, "job %s still %s after %d ms "
			    "(attempts %d, error %s)\n", id,
			    store_job_status_name(job->status), timeout_ms,
			    job->attempts, job->error_message ?
			    job->error_message : "-");
			return job->status;
		}
		fx_sleep_ms(20);
		waited += 20;
	}
}

#endif /* WORKER_TEST_UTIL_H */
