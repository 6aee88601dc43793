/*
 * tests/integration/tools_bench_events_test.c: vgen-bench events as a
 * child process against vgen-server on a private PostgreSQL, in tiny
 * configurations: each mode must run end to end and exit 0, which means
 * no event lost, no commit failed and every WaitJob call answered OK.
 * The figures themselves are not checked (benchmarks are not timed
 * tests, DESIGN §9).  The rates are low and each statement commits one
 * event, so the hub should never owe a subscriber more than pub0's
 * per-pipe queue holds (VGEN_EVENTS_SENDBUF frames: bursts beyond it
 * are dropped).
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

#ifndef VGEN_BIN_DIR
#error "VGEN_BIN_DIR must name the folder holding vgen-bench"
#endif

#define BENCH VGEN_BIN_DIR "/vgen-bench"
#define RUN_MS 60000		/* one run, at most */
#define OUT_MAX (64 * 1024)

/*
 * bench runs vgen-bench events with `argv` (NULL-terminated, after
 * "events"), then the stack's --server, --events, --database-url and
 * --server-pid, through fx_run (stdout into out, and into the log).
 * Returns fx_run's: the exit code, 128 + a signal, or -1.
 */
static int
bench(struct fx_stack *fx, const char *const *argv, char *out)
{
	const char *args[40];
	char pid[16];
	size_t n = 0;

	if (access(BENCH, X_OK) != 0) {
		fprintf(stderr, "no %s: build target vgen-bench\n", BENCH);
		skip();
	}
	snprintf(pid, sizeof(pid), "%d", (int)fx->srv.pid);
	args[n++] = BENCH;
	args[n++] = "events";
	for (size_t i = 0; argv[i] != NULL && n < 28; i++)
		args[n++] = argv[i];
	args[n++] = "--server";
	args[n++] = fx->srv.rpc_url;
	args[n++] = "--events";
	args[n++] = fx->srv.events_url;
	args[n++] = "--database-url";
	args[n++] = fx->pg.conninfo;
	args[n++] = "--server-pid";
	args[n++] = pid;
	args[n] = NULL;
	return fx_run(args, out, OUT_MAX, RUN_MS);
}

static void
test_latency_delivers_every_event(void **state)
{
	static const char *const argv[] = { "latency", "--rate", "100",
		"--duration", "2", "--jobs", "20", "--drain", "5000", NULL };
	char *out = malloc(OUT_MAX);

	assert_non_null(out);
	assert_int_equal(bench(*state, argv, out), 0);
	assert_non_null(strstr(out, "events latency: 1 subscriber"));
	assert_non_null(strstr(out, "lost 0 ("));
	assert_non_null(strstr(out, "latency from commit"));
	/* The LISTEN baseline saw the same 200 NOTIFYs. */
	assert_non_null(strstr(out, "no hub: got 200, lost 0"));
	free(out);
}

static void
test_fanout_every_subscriber_gets_every_event(void **state)
{
	static const char *const argv[] = { "fanout", "--subscribers", "3",
		"--rate", "100", "--duration", "2", "--idle", "1", "--jobs",
		"20", "--drain", "5000", NULL };
	char *out = malloc(OUT_MAX);

	assert_non_null(out);
	assert_int_equal(bench(*state, argv, out), 0);
	assert_non_null(strstr(out, "per subscriber min 200 max 200 of 200"));
	assert_non_null(strstr(out, "lost 0 ("));
	/* CPU from the server's /proc, idle and busy. */
	assert_non_null(strstr(out, "cpu idle"));
	assert_non_null(strstr(out, "cpu events"));
	assert_null(strstr(out, "no --server-pid"));
	free(out);
}

static void
test_raw_baseline_needs_no_server(void **state)
{
	static const char *const argv[] = { "fanout", "--raw",
		"--subscribers", "3", "--rate", "100", "--duration", "1",
		"--idle", "0", "--jobs", "20", NULL };
	char *out = malloc(OUT_MAX);

	assert_non_null(out);
	assert_int_equal(bench(*state, argv, out), 0);
	assert_non_null(strstr(out, "--raw: the bench's own pub0"));
	assert_non_null(strstr(out, "per subscriber min 100 max 100 of 100"));
	free(out);
}

static void
test_waitjob_parks_and_answers_every_call(void **state)
{
	static const char *const argv[] = { "waitjob", "--calls", "100",
		"--jobs", "10", "--sockets", "4", "--wait-ms", "20000", NULL };
	char *out = malloc(OUT_MAX);

	assert_non_null(out);
	assert_int_equal(bench(*state, argv, out), 0);
	assert_non_null(strstr(out, "100 calls sent"));
	assert_non_null(strstr(out, "per call"));
	assert_non_null(strstr(out, "100 answered OK with the new progress, "
	    "0 failed or stale, 0 early, 0 never"));
	free(out);
}

static void
test_usage_errors_exit_2(void **state)
{
	static const char *const nomode[] = { "--rate", "10", NULL };
	static const char *const badmode[] = { "sideways", NULL };
	static const char *const badrate[] = { "latency", "--rate", "0",
		NULL };
	static const char *const help[] = { "--help", NULL };
	char *out = malloc(OUT_MAX);

	assert_non_null(out);
	assert_int_equal(bench(*state, nomode, out), 2);
	assert_int_equal(bench(*state, badmode, out), 2);
	assert_int_equal(bench(*state, badrate, out), 2);
	assert_int_equal(bench(*state, help, out), 0);
	assert_non_null(strstr(out, "usage: vgen-bench events"));
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_latency_delivers_every_event),
		cmocka_unit_test(test_fanout_every_subscriber_gets_every_event),
		cmocka_unit_test(test_raw_baseline_needs_no_server),
		cmocka_unit_test(test_waitjob_parks_and_answers_every_call),
		cmocka_unit_test(test_usage_errors_exit_2),
	};

	return cmocka_run_group_tests(tests, fx_stack_setup,
	    fx_stack_teardown);
}
