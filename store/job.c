/*
 * store/job.c: the video_jobs table, both as the users' view (create, get,
 * list, cancel) and as the workers' queue (claim, progress, lease,
 * complete, retry, fail, reap).  Worker writes are fenced on
 * (locked_by, attempts, status = processing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_int.h"

#define JOB_COLS_OF(t) \
	t "id, " t "user_id, " t "video_id, " t "prompt, " t "error_message, " \
	t "external_job_id, " t "model, " t "idempotency_key, " t "locked_by, " \
	t "orientation::text, " t "status::text, " t "progress, " t "attempts, " \
	t "max_attempts, " t "version, " STORE_TS_US(t "created_at") ", " \
	STORE_TS_US(t "updated_at") ", " STORE_TS_US(t "completed_at") ", " \
	STORE_TS_US(t "run_after") ", " STORE_TS_US(t "locked_until")
#define JOB_COLS JOB_COLS_OF("")

#define FENCE "locked_by = $2 AND attempts = $3 AND status = 'processing'"

const struct store_stmt store_job_stmts[] = {
	{ "job_create",
	    "SELECT c.outcome, " JOB_COLS_OF("j.") " FROM vgen_job_create("
	    "$1, $2, $3, $4, $5, $6) c LEFT JOIN LATERAL "
	    "(SELECT (c.job).*) j ON true", 6, false },
	{ "job_get", "SELECT " JOB_COLS " FROM video_jobs "
	    "WHERE id = $1 AND user_id = $2", 2, true },
	{ "job_get_any", "SELECT " JOB_COLS " FROM video_jobs WHERE id = $1",
	    1, true },
	/*
	 * A page of the user's jobs, and of one status of them: two
	 * statements, so that each has its own index in its generic plan.
	 */
	{ "job_list", "SELECT " JOB_COLS " FROM video_jobs WHERE user_id = $1 "
	    "AND " STORE_KEYSET_BEFORE("$2", "$3") " "
	    "ORDER BY created_at DESC, id DESC LIMIT $4", 4, true },
	{ "job_list_status", "SELECT " JOB_COLS " FROM video_jobs "
	    "WHERE user_id = $1 AND status = $2::job_status_type "
	    "AND " STORE_KEYSET_BEFORE("$3", "$4") " "
	    "ORDER BY created_at DESC, id DESC LIMIT $5", 5, true },
	{ "job_list_active", "SELECT " JOB_COLS " FROM video_jobs "
	    "WHERE user_id = $1 AND status IN ('pending', 'processing') "
	    "ORDER BY created_at DESC, id DESC LIMIT $2", 2, true },
	{ "job_list_active_all", "SELECT " JOB_COLS " FROM video_jobs "
	    "WHERE status IN ('pending', 'processing') "
	    "ORDER BY updated_at DESC, id DESC LIMIT $1", 1, true },
	{ "job_cancel",
	    "WITH u AS (UPDATE video_jobs SET status = 'failed', "
	    "error_message = 'canceled', completed_at = now(), "
	    "locked_by = NULL, locked_until = NULL "
	    "WHERE id = $1 AND user_id = $2 "
	    "AND status IN ('pending', 'processing') RETURNING *) "
	    "SELECT " JOB_COLS " FROM u UNION ALL "
	    "SELECT " JOB_COLS " FROM video_jobs WHERE id = $1 AND user_id = $2 "
	    "AND NOT EXISTS (SELECT 1 FROM u)", 2, true },
	{ "job_claim",
	    "UPDATE video_jobs SET status = 'processing', "
	    "attempts = attempts + 1, locked_by = $1, "
	    "locked_until = now() + make_interval(secs => $3), "
	    "model = CASE orientation WHEN 'portrait' THEN $4 ELSE $5 END "
	    "WHERE id IN (SELECT id FROM video_jobs WHERE status = 'pending' "
	    "AND run_after <= now() ORDER BY created_at "
	    "FOR UPDATE SKIP LOCKED LIMIT $2) RETURNING " JOB_COLS, 5, false },
	{ "job_progress",
	    "UPDATE video_jobs j SET progress = u.p FROM unnest($1::uuid[], "
	    "$3::int[], $4::int[]) AS u(id, att, p) WHERE j.id = u.id "
	    "AND j.locked_by = $2 AND j.attempts = u.att "
	    "AND j.status = 'processing' AND u.p > j.progress", 4, true },
	{ "job_lease",
	    "UPDATE video_jobs j SET locked_until = now() + "
	    "make_interval(secs => $4) FROM unnest($1::uuid[], $3::int[]) "
	    "AS u(id, att) WHERE j.id = u.id AND j.locked_by = $2 "
	    "AND j.attempts = u.att AND j.status = 'processing' "
	    "RETURNING j.id", 4, true },
	{ "job_set_external",
	    "UPDATE video_jobs SET external_job_id = $4 WHERE id = $1 AND "
	    FENCE " RETURNING id", 4, true },
	{ "job_complete",
	    "WITH j AS (SELECT id, user_id, prompt, orientation FROM video_jobs "
	    "WHERE id = $1 AND " FENCE " FOR UPDATE), "
	    "v AS (INSERT INTO videos (user_id, prompt, orientation, "
	    "model_used, video_url, thumbnail_url, duration, metadata) "
	    "SELECT user_id, prompt, orientation, $4, $5, $6, $7::int, $8::jsonb "
	    "FROM j RETURNING id), "
	    "u AS (UPDATE video_jobs SET status = 'completed', progress = 100, "
	    "video_id = (SELECT id FROM v), completed_at = now(), "
	    "error_message = NULL, locked_by = NULL, locked_until = NULL "
	    "WHERE id = (SELECT id FROM j) RETURNING video_id) "
	    "SELECT video_id FROM u", 8, false },
	{ "job_retry",
	    "UPDATE video_jobs SET "
	    "attempts = attempts - CASE WHEN $6 THEN 0 ELSE 1 END, "
	    "status = CASE WHEN $6 AND attempts >= max_attempts "
	    "THEN 'failed'::job_status_type ELSE 'pending' END, "
	    "completed_at = CASE WHEN $6 AND attempts >= max_attempts "
	    "THEN now() END, "
	    "run_after = now() + make_interval(secs => $4::float8 / 1000), "
	    "error_message = $5, locked_by = NULL, locked_until = NULL "
	    "WHERE id = $1 AND " FENCE " RETURNING status::text", 6, false },
	{ "job_fail",
	    "UPDATE video_jobs SET status = 'failed', error_message = $4, "
	    "completed_at = now(), locked_by = NULL, locked_until = NULL "
	    "WHERE id = $1 AND " FENCE " RETURNING id", 4, true },
	{ "job_reap",
	    "UPDATE video_jobs SET "
	    "status = CASE WHEN attempts >= max_attempts "
	    "THEN 'failed'::job_status_type ELSE 'pending' END, "
	    "error_message = CASE WHEN attempts >= max_attempts THEN "
	    "'generation failed: the worker running it stopped responding' "
	    "ELSE error_message END, "
	    "completed_at = CASE WHEN attempts >= max_attempts THEN now() END, "
	    "run_after = now(), locked_by = NULL, locked_until = NULL "
	    "WHERE id IN (SELECT id FROM video_jobs WHERE status = 'processing' "
	    "AND locked_until < now() ORDER BY locked_until "
	    "FOR UPDATE SKIP LOCKED LIMIT $1) RETURNING id", 1, true },
	{ NULL, NULL, 0, false },
};

static const char *const status_names[] = { NULL, "pending", "processing",
	"completed", "failed" };

const char *
store_job_status_name(int status)
{
	if (status < STORE_JOB_PENDING || status > STORE_JOB_FAILED)
		return NULL;
	return status_names[status];
}

int
store_job_status_parse(const char *s)
{
	for (int i = STORE_JOB_PENDING; i <= STORE_JOB_FAILED; i++)
		if (strcmp(s, status_names[i]) == 0)
			return i;
	return 0;
}

static const char *
orientation_name(int o)
{
	return o == STORE_PORTRAIT ? "portrait" :
	    o == STORE_LANDSCAPE ? "landscape" : NULL;
}

void
store_job_fini(struct store_job *job)
{
	if (job == NULL)
		return;
	free(job->prompt);
	free(job->error_message);
	free(job->external_job_id);
	free(job->model);
	free(job->idempotency_key);
	free(job->locked_by);
	memset(job, 0, sizeof(*job));
}

/* Reads JOB_COLS starting at column `c`. */
static int
job_from_row(const PGresult *res, int row, int c, struct store_job *out)
{
	struct store_job j = { 0 };
	int rv;

	snprintf(j.id, sizeof(j.id), "%s", PQgetvalue(res, row, c + 0));
	snprintf(j.user_id, sizeof(j.user_id), "%s",
	    PQgetvalue(res, row, c + 1));
	snprintf(j.video_id, sizeof(j.video_id), "%s",
	    PQgetvalue(res, row, c + 2));
	if ((rv = store_col_dup(res, row, c + 3, &j.prompt)) < 0 ||
	    (rv = store_col_dup(res, row, c + 4, &j.error_message)) < 0 ||
	    (rv = store_col_dup(res, row, c + 5, &j.external_job_id)) < 0 ||
	    (rv = store_col_dup(res, row, c + 6, &j.model)) < 0 ||
	    (rv = store_col_dup(res, row, c + 7, &j.idempotency_key)) < 0 ||
	    (rv = store_col_dup(res, row, c + 8, &j.locked_by)) < 0) {
		store_job_fini(&j);
		return rv;
	}
	j.orientation = strcmp(PQgetvalue(res, row, c + 9), "portrait") == 0 ?
	    STORE_PORTRAIT : STORE_LANDSCAPE;
	j.status = store_job_status_parse(PQgetvalue(res, row, c + 10));
	j.progress = (int)store_col_i64(res, row, c + 11);
	j.attempts = (int)store_col_i64(res, row, c + 12);
	j.max_attempts = (int)store_col_i64(res, row, c + 13);
	j.version = store_col_i64(res, row, c + 14);
	j.created_us = store_col_ts_us(res, row, c + 15);
	j.updated_us = store_col_ts_us(res, row, c + 16);
	j.completed_us = store_col_ts_us(res, row, c + 17);
	j.run_after_us = store_col_ts_us(res, row, c + 18);
	j.locked_until_us = store_col_ts_us(res, row, c + 19);
	*out = j;
	return 0;
}

static int
jobs_from_result(const PGresult *res, int max, struct store_job *jobs, int *n)
{
	int rows = PQntuples(res), rv;

	if (rows > max)
		rows = max;
	for (int i = 0; i < rows; i++) {
		if ((rv = job_from_row(res, i, 0, &jobs[i])) < 0) {
			while (i-- > 0)
				store_job_fini(&jobs[i]);
			return rv;
		}
	}
	*n = rows;
	return 0;
}

static int
job_one(store_conn *db, const char *stmt, const char *const *params, int n,
    struct store_job *job)
{
	PGresult *res = NULL;
	int rv;

	rv = store_query(db, stmt, params, n, &res);
	if (rv == 0 && PQntuples(res) == 0)
		rv = VG_ENOTFOUND;
	if (rv == 0)
		rv = job_from_row(res, 0, 0, job);
	PQclear(res);
	return rv;
}

int
store_job_create(store_conn *db, const char *user_id, const char *prompt,
    int orientation, const char *idem_key, int max_active, int max_attempts,
    struct store_job *job, int *outcome)
{
	char active[16], attempts[16];
	const char *params[] = { user_id, prompt, orientation_name(orientation),
		idem_key, active, attempts };
	PGresult *res = NULL;
	const char *o;
	int rv;

	if (params[2] == NULL || !vg_uuid_valid(user_id))
		return VG_EINVAL;
	snprintf(active, sizeof(active), "%d", max_active);
	snprintf(attempts, sizeof(attempts), "%d", max_attempts);
	rv = store_query(db, "job_create", params, 6, &res);
	if (rv < 0)
		goto out;
	o = PQgetvalue(res, 0, 0);
	if (strcmp(o, "limit") == 0)
		rv = VG_ELIMIT;
	else if (strcmp(o, "no_user") == 0)
		rv = VG_ENOTFOUND;
	else if ((rv = job_from_row(res, 0, 1, job)) == 0)
		*outcome = strcmp(o, "created") == 0 ? STORE_CREATED :
		    STORE_EXISTING;
out:
	PQclear(res);
	return rv;
}

int
store_job_get(store_conn *db, const char *user_id, const char *job_id,
    struct store_job *job)
{
	const char *params[] = { job_id, user_id };

	if (!vg_uuid_valid(job_id) || !vg_uuid_valid(user_id))
		return VG_ENOTFOUND;
	return job_one(db, "job_get", params, 2, job);
}

int
store_job_get_any(store_conn *db, const char *job_id, struct store_job *job)
{
	const char *params[] = { job_id };

	if (!vg_uuid_valid(job_id))
		return VG_ENOTFOUND;
	return job_one(db, "job_get_any", params, 1, job);
}

static int
job_many(store_conn *db, const char *stmt, const char *const *params, int np,
    int limit, struct store_job *jobs, int *n)
{
	PGresult *res = NULL;
	int rv;

	rv = store_query(db, stmt, params, np, &res);
	if (rv == 0)
		rv = jobs_from_result(res, limit, jobs, n);
	PQclear(res);
	return rv;
}

int
store_job_list(store_conn *db, const char *user_id, int status,
    int64_t after_us, const char *after_id, int limit,
    struct store_job *jobs, int *n)
{
	const char *name = store_job_status_name(status);
	char us[24], lim[16];
	const char *all[] = { user_id, us, after_id, lim };
	const char *one[] = { user_id, name, us, after_id, lim };

	if (after_id != NULL && !vg_uuid_valid(after_id))
		return VG_EINVAL;
	snprintf(us, sizeof(us), "%lld", (long long)after_us);
	snprintf(lim, sizeof(lim), "%d", limit);
	if (name == NULL)
		return job_many(db, "job_list", all, 4, limit, jobs, n);
	return job_many(db, "job_list_status", one, 5, limit, jobs, n);
}

int
store_job_list_active(store_conn *db, const char *user_id, int limit,
    struct store_job *jobs, int *n)
{
	char lim[16];
	const char *params[] = { user_id, lim };

	snprintf(lim, sizeof(lim), "%d", limit);
	return job_many(db, "job_list_active", params, 2, limit, jobs, n);
}

int
store_job_list_active_all(store_conn *db, int limit, struct store_job *jobs,
    int *n)
{
	char lim[16];
	const char *params[] = { lim };

	snprintf(lim, sizeof(lim), "%d", limit);
	return job_many(db, "job_list_active_all", params, 1, limit, jobs, n);
}

int
store_job_cancel(store_conn *db, const char *user_id, const char *job_id,
    struct store_job *job)
{
	const char *params[] = { job_id, user_id };

	if (!vg_uuid_valid(job_id))
		return VG_ENOTFOUND;
	return job_one(db, "job_cancel", params, 2, job);
}

/* ---- worker side ------------------------------------------------------------ */

int
store_job_claim(store_conn *db, const char *worker, int max, int lease_s,
    const char *model_portrait, const char *model_landscape,
    struct store_job *jobs, int *n)
{
	char smax[16], slease[16];
	const char *params[] = { worker, smax, slease, model_portrait,
		model_landscape };

	snprintf(smax, sizeof(smax), "%d", max);
	snprintf(slease, sizeof(slease), "%d", lease_s);
	return job_many(db, "job_claim", params, 5, max, jobs, n);
}

/*
 * Builds PostgreSQL array literals "{a,b,...}" of the fences' ids and
 * attempts (and values), malloc'd into *ids, *atts and *vals (the caller
 * frees them, also on failure).
 */
static int
fence_arrays(const struct store_fence *f, const int *vals, int n, char **ids,
    char **atts, char **vs)
{
	size_t cap = (size_t)n * (VG_UUID_STRLEN + 1) + 3;
	size_t icap = (size_t)n * 12 + 3;
	size_t a = 0, b = 0, c = 0;

	*ids = malloc(cap);
	*atts = malloc(icap);
	*vs = malloc(icap);
	if (*ids == NULL || *atts == NULL || *vs == NULL)
		return VG_ENOMEM;
	(*ids)[a++] = (*atts)[b++] = (*vs)[c++] = '{';
	for (int i = 0; i < n; i++) {
		if (!vg_uuid_valid(f[i].id))
			return VG_EINVAL;
		a += (size_t)snprintf(*ids + a, cap - a, "%s%s", i ? "," : "",
		    f[i].id);
		b += (size_t)snprintf(*atts + b, icap - b, "%s%d", i ? "," : "",
		    f[i].attempt);
		c += (size_t)snprintf(*vs + c, icap - c, "%s%d", i ? "," : "",
		    vals ? vals[i] : 0);
	}
	snprintf(*ids + a, cap - a, "}");
	snprintf(*atts + b, icap - b, "}");
	snprintf(*vs + c, icap - c, "}");
	return 0;
}

int
store_job_progress_batch(store_conn *db, const char *worker,
    const struct store_fence *f, const int *progress, int n)
{
	char *ids = NULL, *atts = NULL, *vals = NULL;
	PGresult *res = NULL;
	int rv;

	if (n == 0)
		return 0;
	rv = fence_arrays(f, progress, n, &ids, &atts, &vals);
	if (rv == 0) {
		const char *params[] = { ids, worker, atts, vals };

		rv = store_query(db, "job_progress", params, 4, &res);
	}
	PQclear(res);
	free(ids);
	free(atts);
	free(vals);
	return rv;
}

int
store_job_lease_extend(store_conn *db, const char *worker,
    const struct store_fence *f, int n, int lease_s, bool *lost)
{
	char *ids = NULL, *atts = NULL, *vals = NULL, slease[16];
	PGresult *res = NULL;
	int rv;

	if (n == 0)
		return 0;
	snprintf(slease, sizeof(slease), "%d", lease_s);
	rv = fence_arrays(f, NULL, n, &ids, &atts, &vals);
	if (rv == 0) {
		const char *params[] = { ids, worker, atts, slease };

		rv = store_query(db, "job_lease", params, 4, &res);
	}
	if (rv == 0) {
		for (int i = 0; i < n; i++) {
			lost[i] = true;
			for (int r = 0; r < PQntuples(res); r++)
				if (strcasecmp(PQgetvalue(res, r, 0),
				    f[i].id) == 0)
					lost[i] = false;
		}
	}
	PQclear(res);
	free(ids);
	free(atts);
	free(vals);
	return rv;
}

/* A fenced write: VG_ESTALE when the fence matched no row. */
static int
fenced(store_conn *db, const char *stmt, const char *const *params, int n,
    PGresult **out)
{
	PGresult *res = NULL;
	int rv;

	rv = store_query(db, stmt, params, n, &res);
	if (rv == 0 && PQntuples(res) == 0)
		rv = VG_ESTALE;
	if (rv == 0 && out != NULL) {
		*out = res;
		return 0;
	}
	PQclear(res);
	return rv;
}

int
store_job_set_external(store_conn *db, const char *worker,
    const struct store_fence *f, const char *external_id)
{
	char att[16];
	const char *params[] = { f->id, worker, att, external_id };

	snprintf(att, sizeof(att), "%d", f->attempt);
	return fenced(db, "job_set_external", params, 4, NULL);
}

int
store_job_complete(store_conn *db, const char *worker,
    const struct store_fence *f, const struct store_video_new *v,
    char video_id[VG_UUID_STRLEN + 1])
{
	char att[16], dur[16];
	const char *params[] = { f->id, worker, att, v->model_used,
		v->video_url, v->thumbnail_url, v->duration > 0 ? dur : NULL,
		v->metadata };
	PGresult *res = NULL;
	int rv;

	snprintf(att, sizeof(att), "%d", f->attempt);
	snprintf(dur, sizeof(dur), "%d", v->duration);
	rv = fenced(db, "job_complete", params, 8, &res);
	if (rv == 0) {
		snprintf(video_id, VG_UUID_STRLEN + 1, "%s",
		    PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return rv;
}

int
store_job_retry(store_conn *db, const char *worker,
    const struct store_fence *f, int64_t delay_ms, const char *error,
    bool count_attempt, bool *failed)
{
	char att[16], delay[24];
	const char *params[] = { f->id, worker, att, delay, error,
		count_attempt ? "t" : "f" };
	PGresult *res = NULL;
	int rv;

	snprintf(att, sizeof(att), "%d", f->attempt);
	snprintf(delay, sizeof(delay), "%lld", (long long)delay_ms);
	rv = fenced(db, "job_retry", params, 6, &res);
	if (rv == 0) {
		if (failed != NULL)
			*failed = strcmp(PQgetvalue(res, 0, 0), "failed") == 0;
		PQclear(res);
	}
	return rv;
}

int
store_job_fail(store_conn *db, const char *worker,
    const struct store_fence *f, const char *error)
{
	char att[16];
	const char *params[] = { f->id, worker, att, error };

	snprintf(att, sizeof(att), "%d", f->attempt);
	return fenced(db, "job_fail", params, 4, NULL);
}

int
store_job_reap(store_conn *db, int max, int *n)
{
	char smax[16];
	const char *params[] = { smax };
	PGresult *res = NULL;
	int rv;

	snprintf(smax, sizeof(smax), "%d", max);
	rv = store_query(db, "job_reap", params, 1, &res);
	if (rv == 0 && n != NULL)
		*n = PQntuples(res);
	PQclear(res);
	return rv;
}
