/*
 * store/migrate.c: the migration runner.  Migration files are compiled in
 * (cmake/embed_migrations.cmake); each is applied once, in name order, in
 * its own transaction, and recorded in schema_migrations with a BLAKE2b
 * checksum.  A released file must never change: a recorded checksum that
 * differs from the embedded file stops the server.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "store_int.h"

/* pg_advisory_lock key: "vgen" in ASCII. */
#define MIGRATE_LOCK "1986488174"

static void
checksum(const char *sql, char hex[65])
{
	unsigned char h[32];

	crypto_generichash(h, sizeof(h), (const unsigned char *)sql,
	    strlen(sql), NULL, 0);
	sodium_bin2hex(hex, 65, h, sizeof(h));
}

static int
exec_ok(PGconn *pg, const char *sql, const char *what)
{
	PGresult *res = PQexec(pg, sql);
	ExecStatusType st = PQresultStatus(res);
	int rv = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		vg_error("migrate: %s failed: %.*s", what,
		    (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
		rv = PQstatus(pg) == CONNECTION_OK ? VG_EINTERNAL : VG_EUNAVAIL;
	}
	PQclear(res);
	return rv;
}

/* Returns 1 when `name` is recorded (with the same checksum), 0 when not. */
static int
recorded(PGconn *pg, const char *name, const char *sum)
{
	const char *params[] = { name };
	PGresult *res;
	int rv;

	res = PQexecParams(pg,
	    "SELECT checksum FROM schema_migrations WHERE name = $1", 1, NULL,
	    params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rv = VG_EUNAVAIL;
	else if (PQntuples(res) == 0)
		rv = 0;
	else if (strcmp(PQgetvalue(res, 0, 0), sum) == 0)
		rv = 1;
	else {
		vg_error("migrate: %s was changed after it was applied "
		    "(checksum %s, recorded %s): migrations are never edited "
		    "once released", name, sum, PQgetvalue(res, 0, 0));
		rv = VG_EINVAL;
	}
	PQclear(res);
	return rv;
}

static int
apply(PGconn *pg, const struct store_migration *m, const char *sum)
{
	const char *params[] = { m->name, sum };
	PGresult *res;
	int rv;

	if ((rv = exec_ok(pg, "BEGIN", "begin")) < 0)
		return rv;
	if ((rv = exec_ok(pg, m->sql, m->name)) < 0)
		goto fail;
	res = PQexecParams(pg,
	    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
	    2, NULL, params, NULL, NULL, 0);
	rv = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : VG_EINTERNAL;
	PQclear(res);
	if (rv < 0)
		goto fail;
	if ((rv = exec_ok(pg, "COMMIT", "commit")) < 0)
		return rv;
	vg_info("migrate: applied %s", m->name);
	return 0;
fail:
	(void)exec_ok(pg, "ROLLBACK", "rollback");
	return rv;
}

int
store_migrate(store_conn *db, bool check_only)
{
	PGconn *pg = store_conn_pg(db);
	int rv, pending = 0;

	if (pg == NULL)
		return VG_EUNAVAIL;
	if ((rv = exec_ok(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")",
	    "lock")) < 0)
		return rv;
	rv = exec_ok(pg, "SET client_min_messages = warning; "
	    "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "name text PRIMARY KEY, checksum text NOT NULL, "
	    "applied_at timestamptz NOT NULL DEFAULT now())", "bookkeeping");
	for (const struct store_migration *m = store_migrations;
	    rv == 0 && m->name != NULL; m++) {
		char sum[65];
		int have;

		checksum(m->sql, sum);
		have = recorded(pg, m->name, sum);
		if (have < 0)
			rv = have;
		else if (have == 0 && check_only)
			pending++;
		else if (have == 0)
			rv = apply(pg, m, sum);
	}
	(void)exec_ok(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")",
	    "unlock");
	if (rv == 0 && pending > 0)
		rv = VG_ESTALE;
	return rv;
}
