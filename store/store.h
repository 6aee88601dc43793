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
	char *email;		/* owned */
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

/* store_user_by_email / store_user_get: 0 and *u, VG_ENOTFOUND, ... */
int store_user_by_email(store_conn *db, const char *email,
    struct store_user *u) VG_MUSTCHECK;
int store_user_get(store_conn *db, const char *id,
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

#endif /* STORE_H */
