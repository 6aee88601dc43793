/*
 * store/user.c: the users table.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "store_int.h"

#define USER_COLS "id, email, password_hash, username, avatar_url, " \
	STORE_TS_US("created_at") ", " STORE_TS_US("updated_at")

const struct store_stmt store_user_stmts[] = {
	{ "user_create",
	    "INSERT INTO users (email, password_hash, username) "
	    "VALUES ($1, $2, $3) RETURNING " USER_COLS, 3, false },
	{ "user_by_email", "SELECT " USER_COLS " FROM users WHERE email = $1",
	    1, true },
	{ "user_get_any", "SELECT " USER_COLS " FROM users "
	    "WHERE id = ANY($1::uuid[])", 1, true },
	{ "user_exists", "SELECT 1 FROM users WHERE id = $1", 1, true },
	{ "user_update",
	    "UPDATE users SET "
	    "username = CASE WHEN $2::bool THEN $3 ELSE username END, "
	    "avatar_url = CASE WHEN $4::bool THEN $5 ELSE avatar_url END, "
	    "updated_at = now() WHERE id = $1 RETURNING " USER_COLS, 5, true },
	{ NULL, NULL, 0, false },
};

void
store_user_fini(struct store_user *u)
{
	if (u == NULL)
		return;
	if (u->password_hash != NULL)
		sodium_memzero(u->password_hash, strlen(u->password_hash));
	free(u->email);
	free(u->password_hash);
	free(u->username);
	free(u->avatar_url);
	memset(u, 0, sizeof(*u));
}

/* Row `row`, its strings pointing into res (no copies). */
static int
user_view(const PGresult *res, int row, struct store_user *u)
{
	if (PQntuples(res) <= row)
		return VG_ENOTFOUND;
	memset(u, 0, sizeof(*u));
	store_col_copy(u->id, sizeof(u->id), res, row, 0);
	u->email = store_col_str(res, row, 1);
	u->password_hash = store_col_str(res, row, 2);
	u->username = store_col_str(res, row, 3);
	u->avatar_url = store_col_str(res, row, 4);
	u->created_us = store_col_ts_us(res, row, 5);
	u->updated_us = store_col_ts_us(res, row, 6);
	return 0;
}

/* Row `row` with strings of its own (store_user_fini it). */
static int
user_from_row(const PGresult *res, int row, struct store_user *out)
{
	struct store_user u;
	char **const strs[] = { &u.email, &u.password_hash, &u.username,
	    &u.avatar_url };
	int rv;

	if ((rv = user_view(res, row, &u)) < 0)
		return rv;
	if ((rv = store_strs_own(strs, sizeof(strs) / sizeof(strs[0]))) < 0) {
		store_user_fini(&u);	/* wipes a copied hash */
		return rv;
	}
	*out = u;
	return 0;
}

static int
user_one(store_conn *db, const char *stmt, const char *const *params,
    int n, struct store_user *u)
{
	PGresult *res = NULL;
	int rv;

	rv = store_query(db, stmt, params, n, &res);
	if (rv == 0)
		rv = user_from_row(res, 0, u);
	PQclear(res);
	return rv;
}

int
store_user_create(store_conn *db, const char *email, const char *hash,
    const char *username, struct store_user *u)
{
	const char *params[] = { email, hash, username };

	return user_one(db, "user_create", params, 3, u);
}

int
store_user_by_email(store_conn *db, const char *email, struct store_user *u)
{
	const char *params[] = { email };

	return user_one(db, "user_by_email", params, 1, u);
}

int
store_user_update(store_conn *db, const char *id, bool set_username,
    const char *username, bool set_avatar, const char *avatar_url,
    struct store_user *u)
{
	const char *params[] = { id, set_username ? "t" : "f", username,
		set_avatar ? "t" : "f", avatar_url };

	if (!vg_uuid_valid(id))
		return VG_ENOTFOUND;
	return user_one(db, "user_update", params, 5, u);
}

int
store_user_exists(store_conn *db, const char *id)
{
	const char *params[] = { id };
	PGresult *res = NULL;
	int rv;

	if (!vg_uuid_valid(id))
		return VG_ENOTFOUND;
	rv = store_query(db, "user_exists", params, 1, &res);
	if (rv == 0 && PQntuples(res) == 0)
		rv = VG_ENOTFOUND;
	PQclear(res);
	return rv;
}

/* ---- asynchronous ------------------------------------------------------- */

/* The row of op's key among those of the keys its query merged. */
static int
user_get_parse(struct store_op *op, const PGresult *res)
{
	for (int row = 0; row < PQntuples(res); row++) {
		const char *id = PQgetvalue(res, row, 0);

		/* the key passed vg_uuid_valid; PostgreSQL writes lower case */
		if (strcasecmp(id, op->params[0]) == 0)
			return user_view(res, row, op->out);
	}
	return VG_ENOTFOUND;
}

int
store_user_get_start(store_async *a, struct store_op *op, const char *id,
    struct store_user *u)
{
	if (!vg_uuid_valid(id))
		return VG_ENOTFOUND;
	op->out = u;
	return store_async_send_key(a, op, "user_get_any", id,
	    user_get_parse);
}

static int
user_exists_parse(struct store_op *op, const PGresult *res)
{
	(void)op;
	return PQntuples(res) > 0 ? 0 : VG_ENOTFOUND;
}

int
store_user_exists_start(store_async *a, struct store_op *op, const char *id)
{
	const char *params[] = { id };

	if (!vg_uuid_valid(id))
		return VG_ENOTFOUND;
	return store_async_send(a, op, "user_exists", params, 1,
	    user_exists_parse);
}
