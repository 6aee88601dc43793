/*
 * store/admin.c: what the admin endpoint asks of the database: totals for
 * the dashboard, every user page by page, and putting a failed job back
 * in the queue.  None of it is scoped to an owner: the admin socket's
 * file mode is the authentication.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define ADMIN_USER_COLS "id, email, username, avatar_url, " \
	STORE_TS_US("created_at") ", " STORE_TS_US("updated_at")

/* The first day of the window, in the session's time zone (UTC). */
#define DAY0 "(date_trunc('day', localtimestamp) - " \
	"($1::int - 1) * interval '1 day')"

const struct store_stmt store_admin_stmts[] = {
	{ "admin_totals",
	    "SELECT (SELECT count(*) FROM users), "
	    "(SELECT count(*) FROM videos), "
	    "(SELECT coalesce(extract(epoch from avg(completed_at - "
	    "created_at)), 0)::float8 FROM video_jobs "
	    "WHERE status = 'completed' AND completed_at IS NOT NULL)",
	    0, true },
	/* The range condition on created_at is served by its index. */
	{ "admin_users_per_day",
	    "SELECT to_char(d, 'YYYY-MM-DD'), coalesce(c.n, 0) "
	    "FROM generate_series(" DAY0 ", date_trunc('day', localtimestamp), "
	    "interval '1 day') d LEFT JOIN (SELECT date_trunc('day', "
	    "created_at) AS day, count(*) AS n FROM users "
	    "WHERE created_at >= " DAY0 " GROUP BY 1) c ON c.day = d "
	    "ORDER BY d", 1, true },
	{ "admin_jobs_by_status",
	    "SELECT s::text, count(j.id) FROM "
	    "unnest(enum_range(NULL::job_status_type)) s "
	    "LEFT JOIN video_jobs j ON j.status = s GROUP BY s ORDER BY s",
	    0, true },
	{ "admin_user_list",
	    "SELECT " ADMIN_USER_COLS " FROM users "
	    "WHERE " STORE_KEYSET_BEFORE("$1", "$2") " "
	    "ORDER BY created_at DESC, id DESC LIMIT $3", 3, true },
	/*
	 * A fresh start: the provider's id goes too, or the worker would
	 * resume the generation that failed.  Not retried after a broken
	 * connection: a second run would find the job pending.
	 */
	{ "admin_job_retry",
	    "WITH u AS (UPDATE video_jobs SET status = 'pending', "
	    "attempts = 0, progress = 0, run_after = now(), "
	    "error_message = NULL, completed_at = NULL, locked_by = NULL, "
	    "locked_until = NULL, external_job_id = NULL "
	    "WHERE id = $1 AND status = 'failed' RETURNING id) "
	    "SELECT EXISTS (SELECT 1 FROM u), "
	    "EXISTS (SELECT 1 FROM video_jobs WHERE id = $1)", 1, false },
	{ NULL, NULL, 0, false },
};

int
store_admin_stats(store_conn *db, struct store_stats *out)
{
	struct store_stats s = { 0 };
	const char *params[1];
	char days[16];
	PGresult *res = NULL;
	int rv, n, st;

	rv = store_query(db, "admin_totals", NULL, 0, &res);
	if (rv < 0)
		goto out;
	s.users_total = store_col_i64(res, 0, 0);
	s.videos_total = store_col_i64(res, 0, 1);
	s.avg_generation_s = strtod(PQgetvalue(res, 0, 2), NULL);
	PQclear(res);
	res = NULL;

	snprintf(days, sizeof(days), "%d", STORE_STATS_DAYS);
	params[0] = days;
	rv = store_query(db, "admin_users_per_day", params, 1, &res);
	if (rv < 0)
		goto out;
	n = PQntuples(res);
	for (int i = 0; i < n && s.ndays < STORE_STATS_DAYS; i++) {
		struct store_day_count *d = &s.new_users[s.ndays++];

		snprintf(d->day, sizeof(d->day), "%s", PQgetvalue(res, i, 0));
		d->count = store_col_i64(res, i, 1);
	}
	PQclear(res);
	res = NULL;

	rv = store_query(db, "admin_jobs_by_status", NULL, 0, &res);
	if (rv < 0)
		goto out;
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		if ((st = store_job_status_parse(PQgetvalue(res, i, 0))) != 0)
			s.jobs_by_status[st] = store_col_i64(res, i, 1);
	*out = s;
out:
	PQclear(res);
	return rv;
}

static int
user_from_row(const PGresult *res, int row, struct store_user *out)
{
	struct store_user u = { 0 };
	int rv;

	snprintf(u.id, sizeof(u.id), "%s", PQgetvalue(res, row, 0));
	if ((rv = store_col_dup(res, row, 1, &u.email)) < 0 ||
	    (rv = store_col_dup(res, row, 2, &u.username)) < 0 ||
	    (rv = store_col_dup(res, row, 3, &u.avatar_url)) < 0) {
		store_user_fini(&u);
		return rv;
	}
	u.created_us = store_col_ts_us(res, row, 4);
	u.updated_us = store_col_ts_us(res, row, 5);
	*out = u;
	return 0;
}

int
store_admin_user_list(store_conn *db, int64_t after_us, const char *after_id,
    int limit, struct store_user *users, int *n)
{
	char us[24], lim[16];
	const char *params[] = { us, after_id, lim };
	PGresult *res = NULL;
	int rows = 0, rv;

	if (after_id != NULL && !vg_uuid_valid(after_id))
		return VG_EINVAL;
	snprintf(us, sizeof(us), "%lld", (long long)after_us);
	snprintf(lim, sizeof(lim), "%d", limit);
	rv = store_query(db, "admin_user_list", params, 3, &res);
	if (rv < 0)
		goto out;
	rows = PQntuples(res) < limit ? PQntuples(res) : limit;
	for (int i = 0; i < rows; i++) {
		if ((rv = user_from_row(res, i, &users[i])) < 0) {
			while (i-- > 0)
				store_user_fini(&users[i]);
			goto out;
		}
	}
	*n = rows;
out:
	PQclear(res);
	return rv;
}

int
store_admin_job_retry(store_conn *db, const char *job_id,
    struct store_job *job)
{
	const char *params[] = { job_id };
	PGresult *res = NULL;
	int rv;

	if (!vg_uuid_valid(job_id))
		return VG_ENOTFOUND;
	rv = store_query(db, "admin_job_retry", params, 1, &res);
	if (rv < 0)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
		rv = VG_ENOTFOUND;
	else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		rv = VG_EINVAL;
	else
		rv = store_job_get_any(db, job_id, job);
out:
	PQclear(res);
	return rv;
}
