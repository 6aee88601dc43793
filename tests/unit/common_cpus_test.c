/*
 * tests/unit/common_cpus_test.c: vg_cpus_parse (common/proc.c), the CPU
 * lists of VGEN_RPC_CPUS, as a case table against a fixed allowed set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sched.h>
#include <string.h>

#include "vg.h"

static int
ones(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '1';
	return n;
}

static void
test_cpu_list_table(void **state)
{
	static const struct {
		const char *list;
		const char *cpus;	/* CPUs 0-7 expected; NULL: VG_EINVAL */
	} cases[] = {
		{ "0", "10000000" },
		{ "3", "00010000" },
		{ "0,2", "10100000" },
		{ "1-3", "01110000" },
		{ "0,2-3,5", "10110100" },
		{ "3-3", "00010000" },
		{ "2,2", "00100000" },
		{ "", NULL },
		{ "a", NULL },
		{ " 1", NULL },
		{ "1 ", NULL },
		{ "-1", NULL },
		{ "1-", NULL },
		{ "3-1", NULL },
		{ "0,", NULL },
		{ "0,,1", NULL },
		{ "1-2-3", NULL },
		{ "4", NULL },			/* not allowed */
		{ "3-4", NULL },		/* 4 not allowed */
		{ "6", NULL },
		{ "1024", NULL },		/* CPU_SETSIZE */
		{ "99999999999999999999", NULL },
	};
	cpu_set_t allowed, out;

	(void)state;
	CPU_ZERO(&allowed);
	for (int c = 0; c < 8; c++)
		if (c != 4 && c != 6)	/* 0-3, 5, 7 */
			CPU_SET(c, &allowed);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rv = vg_cpus_parse(cases[i].list, &allowed, &out);

		if (cases[i].cpus == NULL) {
			if (rv != VG_EINVAL)
				fail_msg("\"%s\" was accepted", cases[i].list);
			continue;
		}
		if (rv != 0)
			fail_msg("\"%s\" was refused", cases[i].list);
		for (int c = 0; c < 8; c++)
			if ((CPU_ISSET(c, &out) != 0) !=
			    (cases[i].cpus[c] == '1'))
				fail_msg("\"%s\": CPU %d", cases[i].list, c);
		/* and nothing beyond the 8 */
		assert_int_equal(CPU_COUNT(&out), ones(cases[i].cpus));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpu_list_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
