/*
 * tests/integration/fixtures_pg_test.c: the private PostgreSQL fixture
 * (tests/fixtures/fx_pg.c) that every other integration test stands on.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "fx.h"

/* select_one connects to `conninfo` and tells whether SELECT 1 gives 1. */
static bool
select_one(const char *conninfo)
{
	PGresult *res = NULL;
	PGconn *conn;
	bool ok = false;

	conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		goto out;
	res = PQexec(conn, "SELECT 1");
	ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "1") == 0;
out:
	PQclear(res);
	PQfinish(conn);
	return ok;
}

static bool
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* The group's cluster runs all along: this one runs beside it. */
static void
test_pg_serves_stops_resumes_and_is_removed(void **state)
{
	struct fx_pg *group = *state;
	struct fx_pg pg = { 0 };
	char dir[FX_PATH_MAX];

	assert_int_equal(fx_pg_start(&pg), 0);
	snprintf(dir, sizeof(dir), "%s", pg.dir);
	assert_true(exists(dir));
	assert_string_not_equal(pg.dir, group->dir);
	assert_non_null(strstr(pg.conninfo, "dbname=vgen"));
	assert_true(select_one(pg.conninfo));

	assert_int_equal(fx_pg_stop(&pg), 0);
	assert_int_equal(pg.pid, 0);
	assert_false(select_one(pg.conninfo));
	assert_true(exists(pg.datadir));

	assert_int_equal(fx_pg_resume(&pg), 0);
	assert_true(select_one(pg.conninfo));
	assert_int_equal(fx_pg_exec(&pg, "CREATE TABLE t (x int); "
	    "INSERT INTO t VALUES (1)"), 0);
	assert_int_equal(fx_pg_exec(&pg, "SELECT * FROM no_such_table"),
	    VG_EINTERNAL);

	fx_pg_destroy(&pg);
	assert_false(exists(dir));
	assert_int_equal(pg.pid, 0);
	fx_pg_destroy(&pg);	/* twice is fine */
	assert_true(select_one(group->conninfo));
}

static void
test_pg_data_survives_a_restart(void **state)
{
	struct fx_pg *pg = *state;

	assert_int_equal(fx_pg_exec(pg, "CREATE TABLE kept (x int); "
	    "INSERT INTO kept VALUES (7)"), 0);
	assert_int_equal(fx_pg_stop(pg), 0);
	assert_int_equal(fx_pg_stop(pg), 0);	/* stopped: no-op */
	assert_int_equal(fx_pg_resume(pg), 0);
	assert_int_equal(fx_pg_resume(pg), 0);	/* running: no-op */
	assert_int_equal(fx_pg_exec(pg, "DO $$ BEGIN IF (SELECT x FROM kept) "
	    "<> 7 THEN RAISE 'lost'; END IF; END $$"), 0);
}

/*
 * child_cluster starts a cluster in a forked child that then ends without
 * destroying it, by exit(0) when `sig` is 0, else by that signal, and
 * reports the postmaster's pid and the folder.
 */
static void
child_cluster(int sig, pid_t *pm, char *dir, size_t n)
{
	struct fx_pg pg = { 0 };
	char buf[FX_PATH_MAX + 32];
	int fds[2], st;
	ssize_t got;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (fx_pg_start(&pg) < 0)
			_exit(1);
		snprintf(buf, sizeof(buf), "%d %s", (int)pg.pid, pg.dir);
		if (write(fds[1], buf, strlen(buf)) < 0)
			_exit(1);
		close(fds[1]);
		if (sig != 0)
			raise(sig);
		exit(0);	/* runs the fixture's atexit cleanup */
	}
	close(fds[1]);
	got = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (sig != 0)
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == sig);
	else
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(got > 0);
	buf[got] = '\0';
	*pm = (pid_t)strtol(buf, NULL, 10);
	snprintf(dir, n, "%s", strchr(buf, ' ') + 1);
	assert_true(*pm > 0);
}

/*
 * gone_within tells whether postmaster `pid` ended within `ms`.  We are
 * the subreaper (see main), so an orphaned postmaster becomes our child
 * and is reaped here; one reaped already is gone too.
 */
static bool
gone_within(pid_t pid, int ms)
{
	int st;

	return fx_reap(pid, ms, &st) == 0;
}

static void
test_pg_exit_without_destroy_leaves_nothing(void **state)
{
	char dir[FX_PATH_MAX];
	pid_t pm;

	(void)state;
	child_cluster(0, &pm, dir, sizeof(dir));
	assert_true(gone_within(pm, 10000));
	assert_false(exists(dir));
}

static void
test_pg_interrupted_test_leaves_nothing(void **state)
{
	char dir[FX_PATH_MAX];
	pid_t pm;

	(void)state;
	child_cluster(SIGTERM, &pm, dir, sizeof(dir));
	assert_true(gone_within(pm, 10000));
	assert_false(exists(dir));
}

static void
test_pg_killed_test_leaves_no_postmaster(void **state)
{
	char dir[FX_PATH_MAX];
	pid_t pm;

	(void)state;
	child_cluster(SIGKILL, &pm, dir, sizeof(dir));
	assert_true(gone_within(pm, 10000));
	assert_int_equal(fx_rmtree(dir), 0);	/* only the folder stays */
	assert_false(exists(dir));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pg_serves_stops_resumes_and_is_removed),
		cmocka_unit_test(test_pg_data_survives_a_restart),
		cmocka_unit_test(test_pg_exit_without_destroy_leaves_nothing),
		cmocka_unit_test(test_pg_interrupted_test_leaves_nothing),
		cmocka_unit_test(test_pg_killed_test_leaves_no_postmaster),
	};

	/* Orphans of our children come to us, not to a pid 1 that might
	 * never reap them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return cmocka_run_group_tests(tests, fx_pg_setup, fx_pg_teardown);
}
