/*
 * tests/integration/tools_bench_worker_test.c: vgen-bench worker as a
 * child process on a private cluster and server, in small sizes: usage
 * errors, a refusal to run over jobs it did not make, 20 streams that
 * all complete, and pickup with LISTEN and then the poll alone.  The
 * figures themselves are not checked: benchmarks are not timed tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fx.h"

#define BENCH_BIN VGEN_BIN_DIR "/vgen-bench"
#define RUN_MS 120000		/* a run far slower than this has hung */

/*
 * bench runs vgen-bench with `args` (after argv[0]), its stdout into out
 * (NUL-terminated, cut to n - 1 bytes), its stderr to ours for the log.
 * Returns the exit code, or -1 when it did not exit in time (killed) or
 * could not start.
 */
static int
bench(const char *const *args, char *out, size_t n)
{
	const char *argv[24] = { BENCH_BIN };
	size_t i = 1;

	for (; *args != NULL && i < 23; args++)
		argv[i++] = *args;
	argv[i] = NULL;
	return fx_run(argv, out, n, RUN_MS);
}

static void
test_worker_without_a_measurement_is_a_usage_error(void **state)
{
	const char *const none[] = { "worker", NULL };
	const char *const wrong[] = { "worker", "streams", "--rate", "5",
		"--database-url", "x", NULL };
	const char *const help[] = { "worker", "--help", NULL };
	char out[4096];

	(void)state;
	assert_int_equal(bench(none, out, sizeof(out)), 2);
	assert_int_equal(bench(wrong, out, sizeof(out)), 2);
	assert_int_equal(bench(help, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "vgen-bench worker streams"));
}

static void
test_streams_refuses_a_queue_with_jobs_of_others(void **state)
{
	struct fx_stack *st = *state;
	const char *const args[] = { "worker", "streams", "-n", "5",
		"--seconds", "1", "--database-url", st->pg.conninfo, NULL };
	char out[4096];

	assert_int_equal(fx_pg_exec(&st->pg, "INSERT INTO users (email, "
	    "password_hash) VALUES ('other@example.com', '!'); "
	    "INSERT INTO video_jobs (user_id, prompt, orientation) "
	    "SELECT id, 'not the bench''s', 'portrait' FROM users "
	    "WHERE email = 'other@example.com'"), 0);
	assert_int_equal(bench(args, out, sizeof(out)), 1);
	assert_int_equal(fx_pg_exec(&st->pg, "DELETE FROM users WHERE "
	    "email = 'other@example.com'"), 0);
}

static void
test_streams_completes_every_job_once(void **state)
{
	struct fx_stack *st = *state;
	const char *const args[] = { "worker", "streams", "-n", "20",
		"--seconds", "3", "--step-ms", "500", "--database-url",
		st->pg.conninfo, NULL };
	char out[4096];

	assert_int_equal(bench(args, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "20 streams of 3 s"));
	assert_non_null(strstr(out, "20 completed, 0 failed, 0 lost; "
	    "20 videos"));
	assert_non_null(strstr(out, "worker RSS"));
	/* The bench took its users, jobs and videos away again. */
	assert_int_equal(fx_pg_exec(&st->pg, "DO $$ BEGIN IF (SELECT "
	    "count(*) FROM video_jobs) > 0 THEN RAISE 'jobs left'; END IF; "
	    "END $$"), 0);
}

static void
test_pickup_measures_listen_then_poll(void **state)
{
	struct fx_stack *st = *state;
	const char *const args[] = { "worker", "pickup", "-n", "20",
		"--rate", "20", "--poll-ms", "300", "--server",
		st->srv.rpc_url, "--database-url", st->pg.conninfo, NULL };
	char out[8192];

	assert_int_equal(bench(args, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "LISTEN/NOTIFY "));
	assert_non_null(strstr(out, "poll only (VGEN_WORKER_LISTEN=0) "));
	assert_non_null(strstr(out, "LISTEN/NOTIFY: 21 completed, 0 failed, "
	    "0 lost"));
	assert_non_null(strstr(out, "poll only (VGEN_WORKER_LISTEN=0): 21 "
	    "completed, 0 failed, 0 lost"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_worker_without_a_measurement_is_a_usage_error),
		cmocka_unit_test(
		    test_streams_refuses_a_queue_with_jobs_of_others),
		cmocka_unit_test(test_streams_completes_every_job_once),
		cmocka_unit_test(test_pickup_measures_listen_then_poll),
	};

	return cmocka_run_group_tests(tests, fx_stack_setup,
	    fx_stack_teardown);
}
