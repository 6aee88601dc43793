/*
 * store/store_int.h: shared by the store files only.  The prepared-statement
 * registry and the query door every store file goes through.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <libpq-fe.h>

#include "store.h"

#define STORE_MAX_STMTS 128	/* prepared statements of all files */

struct store_conn {
	PGconn *pg;		/* NULL while disconnected */
	bool prepared[STORE_MAX_STMTS];	/* by index in the registry */
	char *conninfo;		/* owned */
	int64_t down_since_ms;	/* for logging outages once */
	const char *session_sql;	/* run at each connect; static */
};

/*
 * One prepared statement.  `retry` says the statement may run again when
 * the connection broke mid-call (reads and idempotent writes); others are
 * retried only when PostgreSQL provably did not run them.
 */
struct store_stmt {
	const char *name;
	const char *sql;
	int nparams;
	bool retry;
};

/* Every file's statements, in one table per file, NULL-name terminated. */
extern const struct store_stmt store_user_stmts[];
extern const struct store_stmt store_job_stmts[];
extern const struct store_stmt store_video_stmts[];
extern const struct store_stmt store_admin_stmts[];

/*
 * store_query runs prepared statement `name` with text parameters (NULL
 * is SQL NULL).  Returns 0 and *res (caller PQclears) for a tuples or
 * command result; VG_EEXISTS for a unique violation, VG_EINVAL for a
 * check/format error, VG_EUNAVAIL when the database is unreachable,
 * VG_EINTERNAL for anything else (logged, never shown to clients).
 */
int store_query(store_conn *db, const char *name, const char *const *params,
    int nparams, PGresult **res) VG_MUSTCHECK;

/*
 * store_conn_pg returns the live libpq connection (connecting if needed),
 * for plain SQL outside the prepared set (the migration runner), or NULL
 * when the database is unreachable.  The store keeps ownership.
 */
PGconn *store_conn_pg(store_conn *db);

/*
 * For store/async.c.  store_conn_reset drops the connection (the next
 * store_conn_pg connects again); store_prepare_all prepares every
 * statement of the registry on it (0 or VG_E*); store_map_error maps a
 * failed result of statement `name` as store_query does.
 * store_async_send sends prepared statement `stmt` with text params
 * (copied into op) on a connection of `a`; when its results are in,
 * parse(op, res) runs on the store thread and its return value is the rv
 * given to op->done, which runs once from here on.  0, or VG_EINVAL when
 * the parameters do not fit in op (op->done will not run).
 */
void store_conn_reset(store_conn *db);
int store_prepare_all(store_conn *db) VG_MUSTCHECK;
int store_map_error(const char *name, const PGresult *res);
int store_async_send(store_async *a, struct store_op *op, const char *stmt,
    const char *const *params, int nparams,
    int (*parse)(struct store_op *op, const PGresult *res)) VG_MUSTCHECK;

/*
 * store_async_send_key is store_async_send for a read of one `key` (at
 * most STORE_KEY_MAX bytes, else VG_EINVAL) that may share its query
 * with the other keyed reads of `stmt` waiting on its connection: `stmt`
 * takes the keys as a text array, its only parameter ("WHERE id =
 * ANY($1::uuid[])"), and parse(op, res) finds op's own rows among the
 * result's by op->params[0], the key (none: VG_ENOTFOUND, as for a read
 * of its own).  Parsers of reads merged into one query run one after the
 * other on the same result.
 *
 * Merging saves PostgreSQL an executor start-up, a round of protocol
 * messages and a result per read, and the sending thread a write.
 * Through pgbench (-M prepared -c 8), a user looked up by id cost its
 * backend 7.1-7.4 us of CPU in pipelines of 8 queries, against 3.8 us in
 * one query of 8 ids.  GetMe at -c 16 (vgen-bench) merged 7 reads a
 * query, and the machine's CPU per call fell from 107-116 to 76-85 us.
 */
#define STORE_KEY_MAX 64
int store_async_send_key(store_async *a, struct store_op *op,
    const char *stmt, const char *key,
    int (*parse)(struct store_op *op, const PGresult *res)) VG_MUSTCHECK;

/*
 * Column helpers: a copy of the value (NULL for SQL NULL); the value
 * inside res (NULL for SQL NULL; lives as long as res); the value copied
 * into dst[size], cut to fit; an int64.
 */
int store_col_dup(const PGresult *res, int row, int col, char **out)
    VG_MUSTCHECK;
char *store_col_str(const PGresult *res, int row, int col);
void store_col_copy(char *dst, size_t size, const PGresult *res, int row,
    int col);
int64_t store_col_i64(const PGresult *res, int row, int col);

/*
 * A STORE_TS_US column: microseconds since the Unix epoch; 0 when NULL or
 * not 8 bytes of hex; INT64_MAX and INT64_MIN for infinity and -infinity
 * (and for what lies beyond them once moved to our epoch).
 */
int64_t store_col_ts_us(const PGresult *res, int row, int col);

/*
 * Turns the viewed strings *s[0..n) (store_col_str) into copies of their
 * own.  VG_ENOMEM when one cannot be copied: the copies made stay (the
 * caller's fini frees them) and the strings not yet copied become NULL.
 */
int store_strs_own(char **const s[], size_t n) VG_MUSTCHECK;

/*
 * A TIMESTAMP column as the server's own 8 bytes (timestamp_send:
 * big-endian microseconds since 2000-01-01, sent as bytea hex), which
 * store_col_ts_us reads as microseconds since the Unix epoch: exact, and
 * cheap for the server.  (extract(epoch from col) * 1000000)::int8 is
 * computed in numeric: on a gallery page (20 rows, 40 timestamps) it cost
 * PostgreSQL a fifth of its rate, pgbench -M prepared -c 8: 21.6-23.6k
 * pages a second against 26.4-26.8k with timestamp_send.
 */
#define STORE_TS_US(col) "timestamp_send(" col ")"

/*
 * Every session's settings.  Columns are TIMESTAMP without zone: store and
 * read them as UTC.  bytea comes in hex, as STORE_TS_US columns are read.
 * Plans are generic: every statement here is a fixed OLTP query written
 * so that its generic plan is the right one, and a custom plan would be
 * planned again on each execution (the gallery's keyset query spent
 * twice as long planning as running).
 */
#define STORE_SESSION_SQL "SET TIME ZONE 'UTC'; " \
	"SET plan_cache_mode = force_generic_plan; SET bytea_output = 'hex'"

/*
 * store_open_reads is store_open for store_async's connections, whose
 * session is STORE_READS_SQL.  They run only lookups by key (a user by
 * id, a page of the user's videos), so they never scan a table.  On a
 * small table the planner prefers a scan of its page to the index (users
 * on a new install: 26 rows and 29 dead ones in one page), which filters
 * every tuple and asks the kernel the file's size (an lseek) each call:
 * GetMe's query cost PostgreSQL 10.7 and 11.1 us of CPU a query that way
 * against 7.3-8.3 us through the index (pgbench -M prepared -c 8,
 * pipelines of 8).  On a large table the setting changes nothing: the
 * index is the plan anyway.
 */
int store_open_reads(const char *conninfo, store_conn **out) VG_MUSTCHECK;
#define STORE_READS_SQL STORE_SESSION_SQL "; SET enable_seqscan = off"

/*
 * A page's keyset bound: rows before (created_at, id) = (`us` microseconds
 * since the epoch, `id`), or every row when `id` is NULL (the first page).
 * Always a row comparison, never "$n IS NULL OR ...": the bound is a
 * run-time constant, so even the generic plan (STORE_SESSION_SQL) puts it
 * in the index condition and a deep page reads only its own rows.
 */
#define STORE_KEYSET_BEFORE(us, id) \
	"(created_at, id) < (CASE WHEN " id "::uuid IS NULL " \
	"THEN 'infinity'::timestamp ELSE timestamp 'epoch' + " us "::int8 " \
	"* interval '1 microsecond' END, " \
	"COALESCE(" id "::uuid, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"

#endif /* STORE_INT_H */
