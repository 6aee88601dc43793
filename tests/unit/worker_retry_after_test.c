/*
 * tests/unit/worker_retry_after_test.c: worker/retry_after.c, the
 * Retry-After forms of RFC 9110 and openai-python, and the backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wrk_parse.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example. */
#define T1994 784111777LL
/* 2026-11-25T00:00:00Z */
#define T2026 1795564800LL
#define MAX_MS (120 * 1000LL)

static void
test_retry_after_table(void **state)
{
	static const struct {
		const char *ra, *ra_ms;
		int64_t now, max, want;
	} cases[] = {
		/* retry-after-ms wins, integer or real, rounded up */
		{ "1", "20000", T2026, MAX_MS, 20000 },
		{ NULL, "250.5", T2026, MAX_MS, 251 },
		{ NULL, " 0 ", T2026, MAX_MS, 0 },
		{ NULL, "-1", T2026, MAX_MS, 0 },
		{ NULL, "999999999999", T2026, MAX_MS, MAX_MS },
		{ "3", "soon", T2026, MAX_MS, 3000 },	/* bad ms: falls back */
		{ NULL, "soon", T2026, MAX_MS, -1 },
		/* delta-seconds */
		{ "20", NULL, T2026, MAX_MS, 20000 },
		{ " 7 ", NULL, T2026, MAX_MS, 7000 },
		{ "1.5", NULL, T2026, MAX_MS, 1500 },
		{ "0", NULL, T2026, MAX_MS, 0 },
		{ "-5", NULL, T2026, MAX_MS, 0 },
		{ "600", NULL, T2026, MAX_MS, MAX_MS },
		{ "99999999999999999999", NULL, T2026, MAX_MS, MAX_MS },
		{ "20s", NULL, T2026, MAX_MS, -1 },
		{ "inf", NULL, T2026, MAX_MS, -1 },
		{ "0x10", NULL, T2026, MAX_MS, -1 },
		{ "1,5", NULL, T2026, MAX_MS, -1 },
		{ "", NULL, T2026, MAX_MS, -1 },
		{ ".", NULL, T2026, MAX_MS, -1 },
		{ NULL, NULL, T2026, MAX_MS, -1 },
		/* the three HTTP date forms, 20 s ahead */
		{ "Sun, 06 Nov 1994 08:49:37 GMT", NULL, T1994 - 20, MAX_MS,
		  20000 },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", NULL, T1994 - 20, MAX_MS,
		  20000 },
		{ "Sun Nov  6 08:49:37 1994", NULL, T1994 - 20, MAX_MS, 20000 },
		{ "Sun Nov 6 08:49:37 1994", NULL, T1994 - 20, MAX_MS, 20000 },
		{ "  Sun, 06 Nov 1994 08:49:37 GMT  ", NULL, T1994 - 1, MAX_MS,
		  1000 },
		{ "Sun, 06 Nov 1994 08:49:37 UTC", NULL, T1994 - 2, MAX_MS,
		  2000 },
		{ "Sun, 06 Nov 1994 08:49:37", NULL, T1994 - 3, MAX_MS, 3000 },
		{ "sun, 06 NOV 1994 08:49:37 GMT", NULL, T1994 - 4, MAX_MS, 4000 },
		/* past and far future */
		{ "Sun, 06 Nov 1994 08:49:37 GMT", NULL, T1994 + 5, MAX_MS, 0 },
		{ "Wed, 25 Nov 2026 00:00:00 GMT", NULL, T2026, MAX_MS, 0 },
		{ "Wed, 25 Nov 2026 00:01:00 GMT", NULL, T2026, MAX_MS, 60000 },
		{ "Fri, 01 Jan 2094 00:00:00 GMT", NULL, T2026, MAX_MS, MAX_MS },
		{ "Fri, 31 Dec 9999 23:59:59 GMT", NULL, T2026, MAX_MS, MAX_MS },
		{ "Thu, 01 Jan 1970 00:00:00 GMT", NULL, T2026, MAX_MS, 0 },
		/* RFC 850 years: more than 50 years ahead means last century */
		{ "Thursday, 01-Jan-70 00:00:00 GMT", NULL, T2026, MAX_MS,
		  MAX_MS },			/* 2070 */
		{ "Monday, 01-Jan-80 00:00:00 GMT", NULL, T2026, MAX_MS, 0 },
		/* leap days */
		{ "Thu, 29 Feb 1996 00:00:00 GMT", NULL,
		  820454400LL + 59 * 86400 - 10, MAX_MS, 10000 },
		{ "Wed, 29 Feb 1995 00:00:00 GMT", NULL, T1994, MAX_MS, -1 },
		{ "Tue, 29 Feb 2000 00:00:10 GMT", NULL, 951782400LL, MAX_MS,
		  10000 },
		/* not dates */
		{ "Sun, 32 Nov 1994 08:49:37 GMT", NULL, T1994, MAX_MS, -1 },
		{ "Sun, 06 Foo 1994 08:49:37 GMT", NULL, T1994, MAX_MS, -1 },
		{ "Sun, 06 Nov 1994 24:00:00 GMT", NULL, T1994, MAX_MS, -1 },
		{ "Sun, 06 Nov 1994 08:60:00 GMT", NULL, T1994, MAX_MS, -1 },
		{ "Sun, 06 Nov 1994 8:49:37 GMT", NULL, T1994, MAX_MS, -1 },
		{ "Sun, 06 Nov 194 08:49:37 GMT", NULL, T1994, MAX_MS, -1 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT junk", NULL, T1994, MAX_MS, -1 },
		{ "Sun, 06-Nov 1994 08:49:37 GMT", NULL, T1994, MAX_MS, -1 },
		{ "Sun, 06 Nov", NULL, T1994, MAX_MS, -1 },
		{ "Sun,", NULL, T1994, MAX_MS, -1 },
		{ "Sun Nov  6 08:49:37", NULL, T1994, MAX_MS, -1 },
		{ "Novembre 6 08:49:37 1994", NULL, T1994, MAX_MS, -1 },
		/* the clamp itself */
		{ "10", NULL, T2026, 0, 0 },
		{ "10", NULL, T2026, -5, 0 },
		{ "10", NULL, T2026, INT64_MAX, 10000 },
		{ "Fri, 31 Dec 9999 23:59:59 GMT", NULL, 0, INT64_MAX,
		  253402300799000LL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = wrk_retry_after_ms(cases[i].ra, cases[i].ra_ms,
		    cases[i].now, cases[i].max);

		if (got != cases[i].want)
			fail_msg("case %zu (\"%s\", \"%s\"): %lld, want %lld", i,
			    cases[i].ra ? cases[i].ra : "NULL",
			    cases[i].ra_ms ? cases[i].ra_ms : "NULL",
			    (long long)got, (long long)cases[i].want);
	}
}

/* Every IMF-fixdate strftime writes parses back to the same second. */
static void
test_http_dates_agree_with_gmtime(void **state)
{
	int64_t t;

	(void)state;
	for (t = 0; t < 4102444800LL; t += 86400LL * 37 + 3607) {
		time_t tt = (time_t)t;
		struct tm tm;
		char buf[64];

		assert_non_null(gmtime_r(&tt, &tm));
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		if (wrk_retry_after_ms(buf, NULL, t - 42, MAX_MS) != 42000)
			fail_msg("%s: %lld", buf, (long long)
			    wrk_retry_after_ms(buf, NULL, t - 42, MAX_MS));
		strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm);
		if (wrk_retry_after_ms(buf, NULL, t - 1, MAX_MS) != 1000)
			fail_msg("%s: asctime form", buf);
	}
}

static void
test_backoff(void **state)
{
	static const uint32_t rnds[] = { 0, 1, 499, 500, 501, 12345,
	    0x7fffffff, 0xffffffff };

	(void)state;
	/* the floor and ceiling of each step: [cap/2, cap] */
	for (int attempt = -1; attempt <= 70; attempt++) {
		int64_t cap = 1000;

		for (int k = 1; k < attempt && cap < 60000; k++)
			cap *= 2;
		if (cap > 60000)
			cap = 60000;
		for (size_t r = 0; r < sizeof(rnds) / sizeof(rnds[0]); r++) {
			int64_t w = wrk_backoff_ms(attempt, 1000, 60000,
			    rnds[r]);

			if (w < cap - cap / 2 || w > cap)
				fail_msg("attempt %d rnd %u: %lld not in "
				    "[%lld, %lld]", attempt, rnds[r],
				    (long long)w, (long long)(cap - cap / 2),
				    (long long)cap);
		}
	}
	assert_int_equal(wrk_backoff_ms(1, 1000, 60000, 0), 500);
	assert_int_equal(wrk_backoff_ms(1, 1000, 60000, 500), 1000);
	assert_int_equal(wrk_backoff_ms(2, 1000, 60000, 0), 1000);
	assert_int_equal(wrk_backoff_ms(3, 1000, 60000, 0), 2000);
	assert_int_equal(wrk_backoff_ms(0, 1000, 60000, 0), 500);
	assert_int_equal(wrk_backoff_ms(1000, 1000, 60000, 0), 30000);
	/* the jitter spreads a crowd */
	assert_true(wrk_backoff_ms(5, 1000, 60000, 1) !=
	    wrk_backoff_ms(5, 1000, 60000, 2));
	/* degenerate arguments */
	assert_int_equal(wrk_backoff_ms(3, 0, 60000, 7), 0);
	assert_int_equal(wrk_backoff_ms(3, 1000, 0, 7), 0);
	assert_int_equal(wrk_backoff_ms(3, -1, -1, 7), 0);
	assert_int_equal(wrk_backoff_ms(1, 90000, 60000, 0), 30000);
	assert_int_equal(wrk_backoff_ms(1, 1, 1, 0xffffffff), 1);
	/* no overflow near the top */
	assert_int_equal(wrk_backoff_ms(200, 1, INT64_MAX, 0),
	    INT64_MAX - INT64_MAX / 2);
	assert_true(wrk_backoff_ms(200, INT64_MAX / 3, INT64_MAX,
	    0xffffffff) <= INT64_MAX);
	assert_true(wrk_backoff_ms(200, INT64_MAX / 3, INT64_MAX, 0) > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_after_table),
		cmocka_unit_test(test_http_dates_agree_with_gmtime),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
