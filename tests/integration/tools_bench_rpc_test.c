/*
 * tests/integration/tools_bench_rpc_test.c: vgen-bench rpc as a child
 * process against vgen-server on a private PostgreSQL, for a second at a
 * time: each run must end with exit 0, no failed call, every row of the
 * report, the CPU and context switches each call cost (the server's
 * through --server-pid, the echo child's for --baseline-process) and its
 * users deleted after.
 * The figures themselves are not checked: benchmarks are not timed tests
 * (DESIGN §9).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"

#define BENCH VGEN_BIN_DIR "/vgen-bench"
#define RUN_MS 120000		/* a run far slower than this has hung */
#define OUT_MAX (64 * 1024)

/*
 * Runs vgen-bench rpc with `argv` (after "rpc"), then the stack's
 * --server, --database-url and --server-pid, and --json.  fx_run's code.
 */
static int
bench(struct fx_stack *fx, const char *const *argv, char *out)
{
	const char *args[32];
	char pid[16];
	size_t n = 0;

	snprintf(pid, sizeof(pid), "%d", (int)fx->srv.pid);
	args[n++] = BENCH;
	args[n++] = "rpc";
	for (size_t i = 0; argv[i] != NULL && n < 24; i++)
		args[n++] = argv[i];
	args[n++] = "--server";
	args[n++] = fx->srv.rpc_url;
	args[n++] = "--database-url";
	args[n++] = fx->pg.conninfo;
	args[n++] = "--server-pid";
	args[n++] = pid;
	args[n++] = "--json";
	args[n] = NULL;
	return fx_run(args, out, OUT_MAX, RUN_MS);
}

/*
 * The number after "key": inside the JSON object that follows the first
 * "obj": of out (its nested objects included; obj NULL: anywhere), and
 * within that in the object "in": when `in` is not NULL; -1 when absent.
 * The report holds no braces inside its strings.
 */
static double
num_in(const char *out, const char *obj, const char *in, const char *key)
{
	const char *names[] = { obj, in };
	const char *start = out, *end = out + strlen(out), *p;
	char pat[64];

	for (size_t i = 0; i < 2; i++) {
		int depth = 0;

		if (names[i] == NULL)
			continue;
		snprintf(pat, sizeof(pat), "\"%s\":{", names[i]);
		if ((p = strstr(start, pat)) == NULL || p >= end)
			return -1;
		start = p + strlen(pat) - 1;	/* at its '{' */
		for (p = start; p < end; p++) {
			depth += *p == '{' ? 1 : *p == '}' ? -1 : 0;
			if (depth == 0)
				break;
		}
		end = p;
	}
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(start, pat);
	if (p == NULL || p >= end)
		return -1;
	return strtod(p + strlen(pat), NULL);
}

static double
num(const char *out, const char *obj, const char *key)
{
	return num_in(out, obj, NULL, key);
}

/* The bench deleted its users (and with them their videos). */
static void
assert_no_bench_users(struct fx_stack *fx)
{
	assert_int_equal(fx_pg_exec(&fx->pg, "DO $$ BEGIN IF EXISTS (SELECT 1 "
	    "FROM users WHERE email LIKE 'bench-%@example.com') THEN RAISE "
	    "EXCEPTION 'vgen-bench left its users'; END IF; END $$"), 0);
}

static void
test_getme_with_the_baseline_in_its_own_process(void **state)
{
	static const char *const argv[] = { "--method", "GetMe", "-c", "2",
		"-d", "1", "--baseline-process", "--timeout", "5000", NULL };
	char *out = malloc(OUT_MAX);

	assert_non_null(out);
	assert_int_equal(bench(*state, argv, out), 0);
	assert_non_null(strstr(out, "\"method\":\"GetMe\""));
	assert_non_null(strstr(out, "\"baseline_process\":true"));
	assert_non_null(strstr(out, "\"client\":\"aio\""));
	assert_true(num(out, "baseline", "req_per_s") > 0);
	assert_true(num(out, "server", "req_per_s") > 0);
	assert_true(num(out, "server", "errors") == 0);
	/* CPU: the echo child's and the server's, both measured */
	assert_true(num(out, "baseline", "process") > 0);
	assert_true(num(out, "server", "process") > 0);
	assert_true(num(out, "server", "machine") > 0);
	/* context switches: every call wakes at least the server's threads */
	assert_true(num_in(out, "baseline", "switches_per_s", "process") > 0);
	assert_true(num_in(out, "server", "switches_per_s", "process") > 0);
	assert_true(num_in(out, "server", "switches_per_s", "bench") > 0);
	assert_true(num_in(out, "server", "switches_per_s", "machine") >=
	    num_in(out, "server", "switches_per_s", "process"));
	assert_true(num(out, NULL, "ratio_rps") > 0);
	assert_no_bench_users(*state);
	free(out);
}

static void
test_deep_gallery_page_reports_L(void **state)
{
	static const char *const argv[] = { "--method", "ListVideosDeep",
		"-c", "2", "-d", "1", "--timeout", "5000", NULL };
	char *out = malloc(OUT_MAX);

	assert_non_null(out);
	assert_int_equal(bench(*state, argv, out), 0);
	assert_non_null(strstr(out, "\"page\":400"));
	assert_true(num(out, "pg", "req_per_s") > 0);
	assert_true(num(out, "pg", "errors") == 0);
	assert_true(num(out, "server", "req_per_s") > 0);
	assert_true(num(out, "server", "errors") == 0);
	assert_true(num(out, NULL, "L_req_per_s") > 0);
	assert_true(num(out, NULL, "ratio_server_L") > 0);
	assert_no_bench_users(*state);
	free(out);
}

/* The values of the array "key":[...] of out into v[0..max); how many. */
static int
nums(const char *out, const char *key, double *v, int max)
{
	char pat[64];
	const char *p;
	char *end;
	int n = 0;

	snprintf(pat, sizeof(pat), "\"%s\":[", key);
	if ((p = strstr(out, pat)) == NULL)
		return -1;
	p += strlen(pat);
	while (n < max && *p != ']') {
		v[n++] = strtod(p, &end);
		if (end == p)
			return -1;
		p = *end == ',' ? end + 1 : end;
	}
	return n;
}

/*
 * --rounds 2: each ratio of each round, and their median, which for two
 * rounds is their mean (to the report's 3 decimals).
 */
static void
test_rounds_report_each_ratio_and_its_median(void **state)
{
	static const char *const argv[] = { "--method", "Health", "-c", "2",
		"-d", "1", "--background", "Health:1", "--rounds", "2",
		"--timeout", "5000", NULL };
	static const char *const keys[] = { "ratio_rps", "ratio_p99",
		"ratio_loaded_idle_p99" };
	char *out = malloc(OUT_MAX);
	char key[64];
	double v[4];

	assert_non_null(out);
	assert_int_equal(bench(*state, argv, out), 0);
	assert_true(num(out, NULL, "rounds") == 2);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(key, sizeof(key), "%s_rounds", keys[i]);
		assert_int_equal(nums(out, key, v, 4), 2);
		assert_true(v[0] > 0 && v[1] > 0);
		snprintf(key, sizeof(key), "%s_median", keys[i]);
		assert_true(fabs(num(out, NULL, key) - (v[0] + v[1]) / 2) <
		    0.0015);
	}
	/* not a list method: no L */
	assert_int_equal(nums(out, "ratio_server_L_rounds", v, 4), -1);
	assert_true(num(out, "server", "errors") == 0);
	assert_true(num(out, "loaded", "errors") == 0);
	assert_true(num(out, NULL, "errors_all_rounds") == 0);
	free(out);
}

/*
 * Both kinds of client (--client: aio callbacks, or a thread each) count
 * what the server answers: CreateJob's users reach their limit of active
 * jobs at once (5, and no worker), so nearly every call fails with
 * RESOURCE_EXHAUSTED (none succeeding in the window is exit 1), and a
 * thread pool under a background one measures Health without a failure.
 */
static void
test_both_kinds_of_client_count_the_replies(void **state)
{
	static const char *const kinds[] = { "aio", "threads" };
	char *out = malloc(OUT_MAX);
	char want[64];
	int rv;

	assert_non_null(out);
	for (size_t i = 0; i < 2; i++) {
		const char *const argv[] = { "--method", "CreateJob", "-c",
			"2", "-d", "1", "--no-baseline", "--client", kinds[i],
			"--timeout", "5000", NULL };

		rv = bench(*state, argv, out);
		assert_true(rv == 0 || rv == 1);
		snprintf(want, sizeof(want), "\"client\":\"%s\"", kinds[i]);
		assert_non_null(strstr(out, want));
		assert_true(num(out, "errors_by_status",
		    "RESOURCE_EXHAUSTED") > 0);
		assert_true(num(out, "server", "errors") ==
		    num(out, "errors_by_status", "RESOURCE_EXHAUSTED"));
	}
	{
		const char *const argv[] = { "--method", "Health", "-c", "2",
			"-d", "1", "--no-baseline", "--client", "threads",
			"--background", "Health:1", "--timeout", "5000", NULL };

		assert_int_equal(bench(*state, argv, out), 0);
		assert_true(num(out, "server", "ok") > 0);
		assert_true(num(out, "server", "errors") == 0);
		assert_true(num(out, "loaded", "ok") > 0);
		assert_true(num(out, "loaded", "errors") == 0);
	}
	assert_no_bench_users(*state);
	free(out);
}

static void
test_bad_server_pid_is_a_usage_error(void **state)
{
	const char *const zero[] = { BENCH, "rpc", "--method", "Health",
		"--server-pid", "0", NULL };
	const char *const nofile[] = { BENCH, "rpc", "--method", "Health",
		"--server-pid-file", "/nonexistent/vgen-server.pid", NULL };
	const char *const rounds[] = { BENCH, "rpc", "--method", "Health",
		"--rounds", "0", NULL };
	const char *const client[] = { BENCH, "rpc", "--method", "Health",
		"--client", "fibers", NULL };
	char out[4096];

	(void)state;
	assert_int_equal(fx_run(zero, out, sizeof(out), RUN_MS), 2);
	assert_int_equal(fx_run(nofile, out, sizeof(out), RUN_MS), 2);
	assert_int_equal(fx_run(rounds, out, sizeof(out), RUN_MS), 2);
	assert_int_equal(fx_run(client, out, sizeof(out), RUN_MS), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_getme_with_the_baseline_in_its_own_process),
		cmocka_unit_test(test_deep_gallery_page_reports_L),
		cmocka_unit_test(test_rounds_report_each_ratio_and_its_median),
		cmocka_unit_test(test_both_kinds_of_client_count_the_replies),
		cmocka_unit_test(test_bad_server_pid_is_a_usage_error),
	};

	return cmocka_run_group_tests(tests, fx_stack_setup, fx_stack_teardown);
}
