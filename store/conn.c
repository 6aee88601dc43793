/*
 * store/conn.c: one libpq connection, its prepared statements, and the
 * reconnect logic.  A broken connection is dropped; the next call connects
 * again, so the server rides out a database restart without a restart of
 * its own.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static const struct store_stmt *const stmt_tables[] = {
	store_user_stmts,
	store_job_stmts,
	store_video_stmts,
	store_admin_stmts,
	NULL,
};

static void
conn_drop(store_conn *db)
{
	memset(db->prepared, 0, sizeof(db->prepared));
	if (db->pg != NULL) {
		PQfinish(db->pg);
		db->pg = NULL;
	}
}

/*
 * Statements are prepared on a connection when first used, so a connection
 * made before the migrations ran (or by the migration runner) works.
 */
static int
conn_prepare(store_conn *db, const struct store_stmt *s, size_t idx)
{
	PGresult *res;
	bool ok;

	if (db->prepared[idx])
		return 0;
	res = PQprepare(db->pg, s->name, s->sql, s->nparams, NULL);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (ok) {
		db->prepared[idx] = true;
		return 0;
	}
	if (PQstatus(db->pg) != CONNECTION_OK)
		return VG_EUNAVAIL;
	vg_error("prepare failed stmt=%s error=\"%.*s\"", s->name,
	    (int)strcspn(PQerrorMessage(db->pg), "\n"),
	    PQerrorMessage(db->pg));
	return VG_EINTERNAL;
}

static int
conn_connect(store_conn *db)
{
	PGresult *res;
	int rv;

	if (db->pg != NULL && PQstatus(db->pg) == CONNECTION_OK)
		return 0;
	conn_drop(db);
	db->pg = PQconnectdb(db->conninfo);
	if (db->pg == NULL)
		return VG_ENOMEM;
	if (PQstatus(db->pg) != CONNECTION_OK) {
		if (db->down_since_ms == 0) {
			db->down_since_ms = vg_now_ms();
			vg_warn("database unreachable error=\"%.*s\"",
			    (int)strcspn(PQerrorMessage(db->pg), "\n"),
			    PQerrorMessage(db->pg));
		}
		conn_drop(db);
		return VG_EUNAVAIL;
	}
	res = PQexec(db->pg, db->session_sql);
	rv = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : VG_EUNAVAIL;
	PQclear(res);
	if (rv < 0) {
		conn_drop(db);
		return rv;
	}
	if (db->down_since_ms != 0) {
		vg_info("database reachable again after_ms=%lld",
		    (long long)(vg_now_ms() - db->down_since_ms));
		db->down_since_ms = 0;
	}
	return 0;
}

static int
conn_open(const char *conninfo, const char *session_sql, store_conn **out)
{
	store_conn *db = calloc(1, sizeof(*db));

	if (db == NULL || (db->conninfo = strdup(conninfo)) == NULL) {
		free(db);
		return VG_ENOMEM;
	}
	db->session_sql = session_sql;
	(void)conn_connect(db);	/* down now is fine: calls will retry */
	*out = db;
	return 0;
}

int
store_open(const char *conninfo, store_conn **out)
{
	return conn_open(conninfo, STORE_SESSION_SQL, out);
}

int
store_open_async(const char *conninfo, store_conn **out)
{
	return conn_open(conninfo, STORE_SESSION_SQL
	    "; SET synchronous_commit = off", out);
}

int
store_open_reads(const char *conninfo, store_conn **out)
{
	return conn_open(conninfo, STORE_READS_SQL, out);
}

void
store_close(store_conn *db)
{
	if (db == NULL)
		return;
	conn_drop(db);
	free(db->conninfo);
	free(db);
}

static const struct store_stmt *
stmt_find(const char *name, size_t *idx)
{
	size_t i = 0;

	for (size_t t = 0; stmt_tables[t] != NULL; t++)
		for (const struct store_stmt *s = stmt_tables[t]; s->name; s++) {
			if (strcmp(s->name, name) == 0) {
				*idx = i;
				return s;
			}
			i++;
		}
	return NULL;
}

/* SQLSTATE class 57P: the server shut the session down before running it. */
static bool
not_executed(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	return res == NULL || state == NULL || strncmp(state, "57P", 3) == 0;
}

int
store_map_error(const char *name, const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state == NULL)
		return VG_EUNAVAIL;
	if (strcmp(state, "23505") == 0)
		return VG_EEXISTS;
	if (strncmp(state, "22", 2) == 0 || strcmp(state, "23514") == 0)
		return VG_EINVAL;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strcmp(state, "53300") == 0)
		return VG_EUNAVAIL;
	if (strcmp(state, "57014") == 0)
		return VG_ETIMEDOUT;
	/* The message may echo row values: log it, never send it. */
	vg_error("query failed stmt=%s sqlstate=%s error=\"%.*s\"", name,
	    state, (int)strcspn(PQresultErrorMessage(res), "\n"),
	    PQresultErrorMessage(res));
	return VG_EINTERNAL;
}

int
store_query(store_conn *db, const char *name, const char *const *params,
    int nparams, PGresult **out)
{
	size_t idx = 0;
	const struct store_stmt *stmt = stmt_find(name, &idx);
	PGresult *res = NULL;
	int rv;

	VG_ASSERT(stmt != NULL && stmt->nparams == nparams &&
	    idx < STORE_MAX_STMTS);
	for (int attempt = 0; attempt < 2; attempt++) {
		rv = conn_connect(db);
		if (rv == 0)
			rv = conn_prepare(db, stmt, idx);
		if (rv == VG_EUNAVAIL && attempt == 0 && db->pg != NULL) {
			conn_drop(db);	/* a stale session: try a fresh one */
			continue;
		}
		if (rv < 0)
			return rv;
		res = PQexecPrepared(db->pg, name, nparams, params, NULL, NULL,
		    0);
		if (PQstatus(db->pg) == CONNECTION_OK)
			break;
		/*
		 * The connection broke: typically an idle session that the
		 * database closed when it restarted.  Run the statement once
		 * more on a fresh connection when that is safe.
		 */
		conn_drop(db);
		if (!(stmt->retry || not_executed(res))) {
			PQclear(res);
			return VG_EUNAVAIL;
		}
		PQclear(res);
		res = NULL;
		rv = VG_EUNAVAIL;
	}
	if (res == NULL)
		return rv < 0 ? rv : VG_EUNAVAIL;
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		*out = res;
		return 0;
	default:
		rv = store_map_error(name, res);
		PQclear(res);
		return rv;
	}
}

void
store_conn_reset(store_conn *db)
{
	conn_drop(db);
}

int
store_prepare_all(store_conn *db)
{
	size_t i = 0;
	int rv;

	if ((rv = conn_connect(db)) < 0)
		return rv;
	for (size_t t = 0; stmt_tables[t] != NULL; t++)
		for (const struct store_stmt *s = stmt_tables[t]; s->name; s++)
			if ((rv = conn_prepare(db, s, i++)) < 0)
				return rv;
	return 0;
}

int
store_ping(store_conn *db)
{
	PGresult *res;
	int rv;

	for (int attempt = 0; attempt < 2; attempt++) {
		rv = conn_connect(db);
		if (rv < 0)
			return VG_EUNAVAIL;
		res = PQexec(db->pg, "SELECT 1");
		rv = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : VG_EUNAVAIL;
		PQclear(res);
		if (rv == 0)
			return 0;
		conn_drop(db);
	}
	return VG_EUNAVAIL;
}

int
store_col_dup(const PGresult *res, int row, int col, char **out)
{
	if (PQgetisnull(res, row, col)) {
		*out = NULL;
		return 0;
	}
	*out = strdup(PQgetvalue(res, row, col));
	return *out == NULL ? VG_ENOMEM : 0;
}

char *
store_col_str(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

void
store_col_copy(char *dst, size_t size, const PGresult *res, int row, int col)
{
	size_t n = (size_t)PQgetlength(res, row, col);

	if (n >= size)
		n = size - 1;
	memcpy(dst, PQgetvalue(res, row, col), n);
	dst[n] = '\0';
}

int
store_strs_own(char **const s[], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (*s[i] != NULL && (*s[i] = strdup(*s[i])) == NULL) {
			while (++i < n)
				*s[i] = NULL;	/* views: not ours to free */
			return VG_ENOMEM;
		}
	}
	return 0;
}

int64_t
store_col_i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* PostgreSQL's timestamps count from 2000-01-01, ours from 1970-01-01. */
#define PG_EPOCH_US INT64_C(946684800000000)

int64_t
store_col_ts_us(const PGresult *res, int row, int col)
{
	const char *v;
	unsigned char b[8];
	uint64_t u = 0;
	int64_t t;

	if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 18)
		return 0;
	v = PQgetvalue(res, row, col);
	if (v[0] != '\\' || v[1] != 'x' || !vg_hex_decode(b, sizeof(b), v + 2))
		return 0;
	for (size_t i = 0; i < sizeof(b); i++)
		u = u << 8 | b[i];
	t = u <= INT64_MAX ? (int64_t)u : -(int64_t)~u - 1;
	if (t == INT64_MAX || t == INT64_MIN)	/* infinity, -infinity */
		return t;
	if (__builtin_add_overflow(t, PG_EPOCH_US, &t))
		return INT64_MAX;
	return t;
}

PGconn *
store_conn_pg(store_conn *db)
{
	return conn_connect(db) == 0 ? db->pg : NULL;
}

int
store_listen(store_conn *db, const char *channel)
{
	char sql[128];
	PGresult *res;
	int rv;

	if ((rv = conn_connect(db)) < 0)
		return rv;
	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	res = PQexec(db->pg, sql);
	rv = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : VG_EUNAVAIL;
	PQclear(res);
	if (rv < 0)
		conn_drop(db);
	return rv;
}

int
store_notify_fd(store_conn *db)
{
	return db->pg != NULL ? PQsocket(db->pg) : -1;
}

int
store_notify_next(store_conn *db, char *channel, size_t chlen, char *payload,
    size_t plen)
{
	PGnotify *n;

	if (db->pg == NULL)
		return VG_EUNAVAIL;
	if (!PQconsumeInput(db->pg) || PQstatus(db->pg) != CONNECTION_OK) {
		conn_drop(db);
		return VG_EUNAVAIL;
	}
	n = PQnotifies(db->pg);
	if (n == NULL)
		return 0;
	snprintf(channel, chlen, "%s", n->relname);
	snprintf(payload, plen, "%s", n->extra);
	PQfreemem(n);
	return 1;
}
