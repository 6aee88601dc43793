/*
 * tests/unit/common_nng_test.c: common/nng.c.  vg_nng_close closes a
 * socket that nng can close; vg_nng_leave keeps what it is given
 * reachable, so the sanitizer build's leak check (run when this process
 * exits) passes with memory that was left behind on purpose and would
 * fail without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "vg.h"
#include "vg_nng.h"

static void
test_close_returns_for_a_socket_nng_can_close(void **state)
{
	nng_socket s;
	int64_t t0;

	(void)state;
	assert_int_equal(nng_rep0_open(&s), 0);
	assert_int_equal(nng_listen(s, "inproc://vg-nng-test", NULL, 0), 0);
	t0 = vg_now_ms();
	assert_true(vg_nng_close(s, 2000));
	assert_true(vg_now_ms() - t0 < 2000);
}

/* Allocates, leaves, and forgets: no pointer of ours survives the call. */
static void __attribute__((noinline))
leave_some(void)
{
	for (int i = 0; i < 3; i++) {
		char *p = malloc(64);

		assert_non_null(p);
		memset(p, 'x', 64);
		vg_nng_leave(p);
	}
}

static void
test_left_memory_stays_reachable(void **state)
{
	(void)state;
	leave_some();
	vg_nng_leave(NULL);	/* ignored */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_returns_for_a_socket_nng_can_close),
		cmocka_unit_test(test_left_memory_stays_reachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
