/*
 * store/store.h: the only door to PostgreSQL.  Every SQL statement of vgen
 * lives in store/; no other module builds a query.
 *
 * A store_conn is one libpq connection with its prepared statements.  It
 * is not thread-safe: one thread owns it.  It connects on first use and
 * again after the database restarts: a call made while the database is
 * unreachable returns VG_EUNAVAIL and the next call tries again.  The
 * session runs in UTC; timestamps cross this header as Unix microseconds.
 *
 * Functions return 0 or a negative VG_E* code.  Out-structs are written
 * only on success and are released with their _fini (safe on zeroes).
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "vg.h"

typedef struct store_conn store_conn;

/* One embedded migration file; the array ends with {NULL, NULL}. */
struct store_migration {
	const char *name;	/* "0001_init.sql" */
	const char *sql;
};
extern const struct store_migration store_migrations[];

/*
 * store_open allocates a connection handle for `conninfo` (a libpq
 * connection string, copied) and tries to connect.  Returns 0 and *out
 * even when the database is down (calls then answer VG_EUNAVAIL until it
 * is back), or VG_ENOMEM.  Free with store_close.
 */
int store_open(const char *conninfo, store_conn **out) VG_MUSTCHECK;
void store_close(store_conn *db);	/* NULL is a no-op */

/* store_ping: 0 when a trivial query succeeds, else VG_EUNAVAIL. */
int store_ping(store_conn *db) VG_MUSTCHECK;

/*
 * store_migrate applies every embedded migration not yet recorded in
 * schema_migrations, each in its own transaction, under a PostgreSQL
 * advisory lock (so concurrent servers do not race).  A recorded file
 * whose checksum differs from the embedded one is an error (VG_EINVAL,
 * logged with its name): released migrations are never edited.
 * With `check_only` it applies nothing and returns VG_ESTALE when some
 * migration is pending.
 */
int store_migrate(store_conn *db, bool check_only) VG_MUSTCHECK;

/* ---- users ------------------------------------------------------------ */

#define STORE_EMAIL_MAX 255
#define STORE_USERNAME_MAX 50	/* characters */

struct store_user {
	char id[VG_UUID_STRLEN + 1];
	char *email;		/* owned, like every pointer below (but
				 * for store_user_get_start's) */
	char *password_hash;	/* owned; wiped by store_user_fini */
	char *username;		/* owned; NULL when unset */
	char *avatar_url;	/* owned; NULL when unset */
	int64_t created_us;
	int64_t updated_us;
};
void store_user_fini(struct store_user *u);

/*
 * store_user_create inserts a user.  `username` may be NULL.  Returns 0
 * and *u, VG_EEXISTS when the e-mail is taken, VG_EUNAVAIL.
 */
int store_user_create(store_conn *db, const char *email, const char *hash,
    const char *username, struct store_user *u) VG_MUSTCHECK;

/* store_user_by_email: 0 and *u, VG_ENOTFOUND, ... */
int store_user_by_email(store_conn *db, const char *email,
    struct store_user *u) VG_MUSTCHECK;

/* store_user_exists: 0 when user `id` exists, VG_ENOTFOUND, VG_EUNAVAIL. */
int store_user_exists(store_conn *db, const char *id) VG_MUSTCHECK;

/*
 * store_user_update changes the fields whose set_* flag is true (a NULL
 * value stores NULL) and bumps updated_at.  Returns 0 and the updated
 * *u, or VG_ENOTFOUND.
 */
int store_user_update(store_conn *db, const char *id, bool set_username,
    const char *username, bool set_avatar, const char *avatar_url,
    struct store_user *u) VG_MUSTCHECK;

/* ---- jobs ----------------------------------------------------------------- */

#define STORE_PROMPT_MAX 1000	/* characters */
#define STORE_IDEMPOTENCY_KEY_MAX 128
#define STORE_ERROR_MAX 1000	/* bytes of error_message we store */

/* Numbers as the proto enums (Orientation, JobStatus). */
enum store_orientation { STORE_PORTRAIT = 1, STORE_LANDSCAPE = 2 };
enum store_job_status {
	STORE_JOB_PENDING = 1,
	STORE_JOB_PROCESSING = 2,
	STORE_JOB_COMPLETED = 3,
	STORE_JOB_FAILED = 4,
};
const char *store_job_status_name(int status);	/* "pending", ... */
int store_job_status_parse(const char *s);	/* 0 when unknown */

struct store_job {
	char id[VG_UUID_STRLEN + 1];
	char user_id[VG_UUID_STRLEN + 1];
	char video_id[VG_UUID_STRLEN + 1];	/* "" when none */
	char *prompt;		/* owned, like every pointer below */
	char *error_message;	/* NULL when none */
	char *external_job_id;	/* NULL when none */
	char *model;		/* NULL when none */
	char *idempotency_key;	/* NULL when none */
	char *locked_by;	/* NULL when not leased */
	int orientation;	/* enum store_orientation */
	int status;		/* enum store_job_status */
	int progress;		/* 0..100 */
	int attempts, max_attempts;
	int64_t version;
	int64_t created_us, updated_us;
	int64_t completed_us;	/* 0 when not finished */
	int64_t run_after_us, locked_until_us;	/* 0 when NULL */
};
void store_job_fini(struct store_job *job);	/* safe on zeroes */

/* Outcomes of store_job_create. */
enum store_create_outcome {
	STORE_CREATED = 1,	/* a new job */
	STORE_EXISTING = 2,	/* the job of the same idempotency key */
};

/*
 * store_job_create inserts a pending job for `user_id` unless the user
 * already has `max_active` pending or processing jobs (VG_ELIMIT), or a
 * job with the same `idem_key` (may be NULL) exists: then that job comes
 * back with *outcome STORE_EXISTING.  Serialised per user, so the limit
 * holds under concurrency.  The insert wakes workers (NOTIFY vgen_jobs).
 * Returns 0 and *job, VG_ELIMIT, VG_ENOTFOUND (no such user), ...
 */
int store_job_create(store_conn *db, const char *user_id, const char *prompt,
    int orientation, const char *idem_key, int max_active, int max_attempts,
    struct store_job *job, int *outcome) VG_MUSTCHECK;

/* store_job_get: the job if `user_id` owns it; VG_ENOTFOUND otherwise. */
int store_job_get(store_conn *db, const char *user_id, const char *job_id,
    struct store_job *job) VG_MUSTCHECK;

/* store_job_get_any: by id alone, for workers, admins and tests. */
int store_job_get_any(store_conn *db, const char *job_id,
    struct store_job *job) VG_MUSTCHECK;

/*
 * A page of jobs, newest first.  store_job_list fills jobs[0..*n) (at most
 * `limit`, caller-allocated array, each released with store_job_fini) for
 * `user_id`, optionally only `status` (0: all), after the keyset position
 * (after_us, after_id) when after_id is not NULL.  store_job_list_active
 * lists pending and processing jobs (at most `limit`).
 */
int store_job_list(store_conn *db, const char *user_id, int status,
    int64_t after_us, const char *after_id, int limit,
    struct store_job *jobs, int *n) VG_MUSTCHECK;
int store_job_list_active(store_conn *db, const char *user_id, int limit,
    struct store_job *jobs, int *n) VG_MUSTCHECK;

/*
 * store_job_list_active_all lists pending and processing jobs of every
 * user, most recently changed first, at most `limit` (the event hub's
 * catch-up after it lost its LISTEN connection).  Same ownership rules as
 * store_job_list.
 */
int store_job_list_active_all(store_conn *db, int limit,
    struct store_job *jobs, int *n) VG_MUSTCHECK;

/*
 * store_job_cancel moves the user's pending or processing job to failed
 * with error_message "canceled" (its worker is told through NOTIFY
 * vgen_job_cancel).  Returns 0 and the job as it is now — also when it had
 * already finished (then unchanged) — or VG_ENOTFOUND.
 */
int store_job_cancel(store_conn *db, const char *user_id, const char *job_id,
    struct store_job *job) VG_MUSTCHECK;

/* ---- the worker's side of the queue ---------------------------------------
 *
 * Every write after a claim is fenced on (id, locked_by = worker,
 * attempts = attempt, status = processing): VG_ESTALE means the job was
 * canceled or taken over, and nothing was written.
 */

/*
 * store_job_claim leases up to `max` due pending jobs, oldest first, for
 * `worker` for lease_s seconds (FOR UPDATE SKIP LOCKED): status becomes
 * processing, attempts + 1, model set from the orientation.  Fills
 * jobs[0..*n) (caller-allocated; store_job_fini each).
 */
int store_job_claim(store_conn *db, const char *worker, int max, int lease_s,
    const char *model_portrait, const char *model_landscape,
    struct store_job *jobs, int *n) VG_MUSTCHECK;

/* One job's fence. */
struct store_fence {
	const char *id;
	int attempt;
};

/*
 * store_job_progress_batch raises progress (never lowers it) for the
 * fenced jobs in one statement; jobs whose fence fails are skipped.
 * Meant for a connection made with store_open_async (progress commits
 * without waiting for fsync: a lost tick is harmless).
 */
int store_job_progress_batch(store_conn *db, const char *worker,
    const struct store_fence *f, const int *progress, int n) VG_MUSTCHECK;

/*
 * store_job_lease_extend pushes locked_until to now + lease_s for the
 * fenced jobs and sets lost[i] for each one whose fence failed (canceled
 * or taken over).
 */
int store_job_lease_extend(store_conn *db, const char *worker,
    const struct store_fence *f, int n, int lease_s, bool *lost) VG_MUSTCHECK;

/* store_job_set_external records the provider's id of the generation. */
int store_job_set_external(store_conn *db, const char *worker,
    const struct store_fence *f, const char *external_id) VG_MUSTCHECK;

/* The result of a generation. */
struct store_video_new {
	const char *model_used;
	const char *video_url;
	const char *thumbnail_url;	/* NULL when none */
	int duration;			/* seconds; 0 when unknown */
	const char *metadata;		/* JSON text, or NULL */
};

/*
 * store_job_complete inserts the video and marks the job completed
 * (progress 100, video_id, completed_at) in one statement: exactly one
 * video per job.  Returns 0 and the video id, or VG_ESTALE (nothing
 * written), VG_EINVAL (metadata not JSON).
 */
int store_job_complete(store_conn *db, const char *worker,
    const struct store_fence *f, const struct store_video_new *v,
    char video_id[VG_UUID_STRLEN + 1]) VG_MUSTCHECK;

/*
 * store_job_retry puts the job back to pending, due in delay_ms, keeping
 * `error` as its error_message.  With `count_attempt` false the attempt
 * is given back (rate limiting, shutdown).  A job out of attempts fails
 * instead.  *failed tells which happened (may be NULL).
 */
int store_job_retry(store_conn *db, const char *worker,
    const struct store_fence *f, int64_t delay_ms, const char *error,
    bool count_attempt, bool *failed) VG_MUSTCHECK;

/* store_job_fail: failed with `error` (readable by the user). */
int store_job_fail(store_conn *db, const char *worker,
    const struct store_fence *f, const char *error) VG_MUSTCHECK;

/*
 * store_job_reap returns processing jobs whose lease ran out to pending,
 * or fails them when they are out of attempts.  *n: how many (may be NULL).
 */
int store_job_reap(store_conn *db, int max, int *n) VG_MUSTCHECK;

/* ---- videos ----------------------------------------------------------------- */

enum store_video_status { STORE_VIDEO_COMPLETED = 1, STORE_VIDEO_FAILED = 2 };

struct store_video {
	char id[VG_UUID_STRLEN + 1];
	char user_id[VG_UUID_STRLEN + 1];
	char *prompt;		/* owned, like every pointer below (but for
				 * store_video_list_start's) */
	char *model_used;	/* NULL when none */
	char *video_url;
	char *thumbnail_url;	/* NULL when none */
	char *metadata;		/* JSON text; NULL when none */
	int orientation;	/* enum store_orientation */
	int status;		/* enum store_video_status */
	int duration;		/* seconds; 0 when unknown */
	int64_t created_us, updated_us;
};
void store_video_fini(struct store_video *v);	/* safe on zeroes */

/* A page of the gallery: store_video_list_start (asynchronous reads). */

/* store_video_get: the video if `user_id` owns it, else VG_ENOTFOUND. */
int store_video_get(store_conn *db, const char *user_id, const char *id,
    struct store_video *v) VG_MUSTCHECK;

/*
 * store_video_delete deletes the user's video; the job that made it keeps
 * existing with video_id NULL (ON DELETE SET NULL).  0 or VG_ENOTFOUND.
 */
int store_video_delete(store_conn *db, const char *user_id, const char *id)
    VG_MUSTCHECK;

/* ---- admin ---------------------------------------------------------------
 *
 * For the admin endpoint only: nothing here is scoped to an owner (the
 * admin socket's file mode is the authentication).
 */

#define STORE_STATS_DAYS 30	/* days of new-user counts, today included */

struct store_day_count {
	char day[11];		/* "YYYY-MM-DD", UTC */
	int64_t count;
};

struct store_stats {
	int64_t users_total;
	int ndays;		/* new_users[0..ndays), oldest day first */
	struct store_day_count new_users[STORE_STATS_DAYS];
	int64_t jobs_by_status[STORE_JOB_FAILED + 1];	/* by status; [0] 0 */
	int64_t videos_total;
	double avg_generation_s;	/* completed jobs; 0 when none */
};

/*
 * store_admin_stats counts users (in total and per day for the last
 * STORE_STATS_DAYS days, days without sign-ups as 0), jobs by status,
 * videos, and the average completed_at - created_at of completed jobs in
 * seconds.  Returns 0 and *out (plain data: nothing to release), or
 * VG_EUNAVAIL, ...
 */
int store_admin_stats(store_conn *db, struct store_stats *out) VG_MUSTCHECK;

/*
 * store_admin_user_list fills users[0..*n) (caller-allocated, at most
 * `limit`; store_user_fini each) with every user, newest first (created_at,
 * id), after the keyset position (after_us, after_id) when after_id is not
 * NULL.  password_hash is not read (NULL).  Returns 0, VG_EINVAL (after_id
 * not a UUID), ...
 */
int store_admin_user_list(store_conn *db, int64_t after_us,
    const char *after_id, int limit, struct store_user *users, int *n)
    VG_MUSTCHECK;

/*
 * store_admin_job_retry puts a failed job back to pending as if new:
 * attempts 0, progress 0, due now, no error, lease, external id or
 * completed_at (the update wakes the workers).  Returns 0 and the job as
 * it is now (release with store_job_fini), VG_ENOTFOUND when there is no
 * such job, or VG_EINVAL when the job is not failed (nothing changed).
 */
int store_admin_job_retry(store_conn *db, const char *job_id,
    struct store_job *job) VG_MUSTCHECK;

/*
 * store_open_async is store_open for a connection whose commits do not
 * wait for the WAL flush (synchronous_commit = off): progress only.
 */
int store_open_async(const char *conninfo, store_conn **out) VG_MUSTCHECK;

/*
 * Notifications.  store_listen subscribes this connection to `channel`;
 * store_notify_fd is its socket for poll(); store_notify_next takes one
 * pending notification (channel and payload copied into the buffers,
 * truncated) after consuming input: 1 when it got one, 0 when none,
 * VG_EUNAVAIL when the connection broke (listen again after reconnecting).
 */
int store_listen(store_conn *db, const char *channel) VG_MUSTCHECK;
int store_notify_fd(store_conn *db);
int store_notify_next(store_conn *db, char *channel, size_t chlen,
    char *payload, size_t plen) VG_MUSTCHECK;

/* ---- asynchronous reads ----------------------------------------------------
 *
 * A store_async is a few connections in libpq's pipeline mode, each with
 * a thread that reads its results.  A read is started from any thread
 * without blocking (the query is written to the socket at once) and
 * finishes on that connection's thread, which calls the op's done
 * callback exactly once.  Ops in flight when a connection breaks fail
 * with VG_EUNAVAIL; the thread connects again on its own.  Reads of a
 * user by id that come while another is in flight on their connection
 * are answered together by its next query (store/async.c).
 */
typedef struct store_async store_async;

/*
 * store_async_open starts `nconn` connections to `conninfo`, each with
 * its thread: 0, VG_EINVAL (nconn 0) or VG_ENOMEM.  store_async_close
 * fails the ops still in flight (their done runs, with VG_EUNAVAIL) and
 * frees everything; NULL is a no-op.  store_async_inflight counts ops
 * started whose results are not in yet; store_async_queries, the
 * queries sent since open (fewer than the ops when reads were merged).
 */
int store_async_open(const char *conninfo, size_t nconn, store_async **out)
    VG_MUSTCHECK;
void store_async_close(store_async *a);
size_t store_async_inflight(store_async *a);
size_t store_async_queries(store_async *a);

struct pg_result;	/* libpq's PGresult, for the store's own parsers */

#define STORE_OP_NPARAMS 6
#define STORE_OP_PARAMS_MAX 256	/* bytes of parameter text */

/*
 * One asynchronous read.  The caller owns the memory (and the out-structs
 * it names) from the _start call until `done` returns; `done` runs on a
 * store thread, must not block, and gets 0 or a VG_E* code (VG_ENOTFOUND,
 * VG_EUNAVAIL, ... as for the synchronous calls).  A start function returns 0
 * when `done` will run, or VG_E* (a parameter is not valid) and then
 * `done` never runs.  Like the sync calls, a read that finds no
 * connection up makes the store try to connect once before it fails
 * with VG_EUNAVAIL.  The fields below `done` are the store's.
 */
struct store_op {
	void (*done)(struct store_op *op, int rv);
	const char *stmt;
	int (*parse)(struct store_op *op, const struct pg_result *res);
	void *out;		/* the start function's out-struct(s) */
	int limit, *n;
	int rv;
	struct pg_result *res;	/* the result, until parsed */
	int nparams;
	const char *params[STORE_OP_NPARAMS];	/* into pbuf, or NULL */
	char pbuf[STORE_OP_PARAMS_MAX];
	bool merge;		/* keyed: may share a query */
	struct store_op *merged;	/* answered by the same query, after */
	struct store_op *next;
};

/*
 * The user `id`: 0 and *u, VG_ENOTFOUND, ...  u's strings point into the
 * read's result, which lives until done returns (as for
 * store_video_list_start): copy what must outlive it, no store_user_fini.
 */
int store_user_get_start(store_async *a, struct store_op *op, const char *id,
    struct store_user *u) VG_MUSTCHECK;

/* store_user_exists, asynchronous. */
int store_user_exists_start(store_async *a, struct store_op *op,
    const char *id) VG_MUSTCHECK;

/*
 * A page of `user_id`'s videos, newest first (created_at, id), after the
 * keyset position (after_us, after_id) when after_id is not NULL, only
 * `orientation` when it is not 0: fills videos[0..*n) (caller-allocated,
 * at most `limit`).  Their strings point into the read's result, which
 * lives until done returns: copy what must outlive it, and do not
 * store_video_fini them.  VG_EINVAL at start when an id is not a UUID.
 */
int store_video_list_start(store_async *a, struct store_op *op,
    const char *user_id, int orientation, int64_t after_us,
    const char *after_id, int limit, struct store_video *videos, int *n)
    VG_MUSTCHECK;

#endif /* STORE_H */
