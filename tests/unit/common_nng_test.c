/*
 * tests/unit/common_nng_test.c: common/nng.c and common/nng_tasks.c.
 * vg_nng_tasks_keep leaves only the task threads asked for taking work,
 * and all of them again once the hold is freed; vg_nng_close closes a
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

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "vg.h"
#include "vg_nng.h"

/* The task threads that ran a batch of callbacks. */
struct seen {
	pthread_mutex_t mu;
	pid_t tids[64];
	size_t ntids;
};

static void
record_cb(void *arg)
{
	struct seen *s = arg;
	pid_t me = gettid();
	size_t i;

	usleep(2000);	/* meanwhile the next callbacks find other threads */
	pthread_mutex_lock(&s->mu);
	for (i = 0; i < s->ntids && s->tids[i] != me; i++)
		;
	if (i == s->ntids && s->ntids < 64)
		s->tids[s->ntids++] = me;
	pthread_mutex_unlock(&s->mu);
}

/* How many task threads share 32 callbacks dispatched at once. */
static size_t
threads_taking_work(void)
{
	struct seen s = { .mu = PTHREAD_MUTEX_INITIALIZER };
	nng_aio *aios[32];

	for (int i = 0; i < 32; i++) {
		assert_int_equal(nng_aio_alloc(&aios[i], record_cb, &s), 0);
		nng_sleep_aio(0, aios[i]);
	}
	for (int i = 0; i < 32; i++) {
		nng_aio_wait(aios[i]);
		nng_aio_free(aios[i]);
	}
	return s.ntids;
}

/* First, so that it is the call that starts nng (vg_nng.h). */
static void
test_tasks_keep_leaves_one_thread_then_all(void **state)
{
	struct vg_nng_hold *h = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(vg_nng_tasks_keep(1, &n, &h), 0);
	assert_true(n >= 1);
	if (n == 1) {		/* one core and a small nng: nothing to hold */
		assert_null(h);
		skip();
	}
	assert_non_null(h);
	assert_int_equal(threads_taking_work(), 1);
	assert_int_equal(threads_taking_work(), 1);
	vg_nng_hold_free(h);
	assert_true(threads_taking_work() > 1);
}

static void
test_tasks_keep_two_or_all(void **state)
{
	struct vg_nng_hold *h = NULL;
	size_t n = 0, again = 0;

	(void)state;
	assert_int_equal(vg_nng_tasks_keep(0, &n, &h), 0);	/* all */
	assert_null(h);
	assert_int_equal(vg_nng_tasks_keep(n, &again, &h), 0);
	assert_null(h);
	assert_int_equal(again, n);
	if (n <= 2)
		skip();
	assert_int_equal(vg_nng_tasks_keep(2, &again, &h), 0);
	assert_non_null(h);
	assert_int_equal(again, n);
	assert_true(threads_taking_work() <= 2);
	vg_nng_hold_free(h);
	vg_nng_hold_free(NULL);		/* ignored */
}

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
		cmocka_unit_test(test_tasks_keep_leaves_one_thread_then_all),
		cmocka_unit_test(test_tasks_keep_two_or_all),
		cmocka_unit_test(test_close_returns_for_a_socket_nng_can_close),
		cmocka_unit_test(test_left_memory_stays_reachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
