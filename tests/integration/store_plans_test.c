/*
 * tests/integration/store_plans_test.c: the gallery's generic plans on a
 * skewed table.  The server prepares with plan_cache_mode =
 * force_generic_plan, so "user_id = $1" is planned from the table's
 * statistics alone.  Here one user owns nearly every video, all newer
 * than another user's five: with the statistics ANALYZE measures, the
 * plan would walk idx_videos_created_at with a user filter, and the light
 * user's page would read the heavy user's 10,000 rows.  Every page of
 * every user must come from that user's own index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "fx.h"
#include "store.h"

#define HEAVY "11111111-1111-4111-8111-111111111111"
#define LIGHT "22222222-2222-4222-8222-222222222222"

static int
setup(void **state)
{
	struct fx_pg *pg;
	store_conn *db = NULL;
	int rv;

	if (fx_pg_setup(state) != 0)
		return -1;
	pg = *state;
	rv = store_open(pg->conninfo, &db) == 0 &&
	    store_migrate(db, false) == 0 ? 0 : -1;
	store_close(db);
	if (rv == 0)
		rv = fx_pg_exec(pg,
		    "INSERT INTO users (id, email, password_hash) VALUES "
		    "('" HEAVY "', 'heavy@example.com', 'x'), "
		    "('" LIGHT "', 'light@example.com', 'x'); "
		    "INSERT INTO videos (user_id, prompt, orientation, "
		    "video_url, created_at) SELECT '" LIGHT "', 'old', "
		    "'portrait', 'https://l/', timestamp '2025-01-01' + "
		    "i * interval '1 second' FROM generate_series(1, 5) i; "
		    "INSERT INTO videos (user_id, prompt, orientation, "
		    "video_url, created_at) SELECT '" HEAVY "', 'new', "
		    "CASE WHEN i % 2 = 0 THEN 'portrait'::orientation_type "
		    "ELSE 'landscape' END, 'https://h/', timestamp "
		    "'2026-01-01' + i * interval '1 second' "
		    "FROM generate_series(1, 10000) i; ANALYZE videos;");
	return rv == 0 ? 0 : -1;
}

/* The plan of `stmt` with `args` reads the user's own index, in order. */
static void
assert_own_index(struct fx_pg *pg, const char *stmt, const char *args,
    const char *index)
{
	char *plan = fx_pg_explain(pg, stmt, args);

	assert_non_null(plan);
	if (!fx_plan_has(plan, index, NULL) ||
	    fx_plan_has(plan, "idx_videos_created_at", NULL) ||
	    fx_plan_has(plan, "Sort", NULL))
		fprintf(stderr, "%s(%s):\n%s\n", stmt, args, plan);
	assert_true(fx_plan_has(plan, index, NULL));
	assert_false(fx_plan_has(plan, "idx_videos_created_at", NULL));
	assert_false(fx_plan_has(plan, "Seq Scan", NULL));
	/* in index order: no sort of the user's rows, whole or incremental */
	assert_false(fx_plan_has(plan, "Sort", NULL));
	free(plan);
}

static void
test_every_page_reads_its_users_index(void **state)
{
	struct fx_pg *pg = *state;
	static const char *const users[] = { LIGHT, HEAVY };

	for (size_t i = 0; i < 2; i++) {
		char args[256];

		/* the first page, then one 1,000 s into 2026 */
		snprintf(args, sizeof(args), "'%s', 0, NULL, 21", users[i]);
		assert_own_index(pg, "video_list", args,
		    "idx_videos_user_created");
		snprintf(args, sizeof(args), "'%s', (extract(epoch from "
		    "timestamp '2026-01-01') + 1000) * 1000000, "
		    "'ffffffff-ffff-ffff-ffff-ffffffffffff', 21", users[i]);
		assert_own_index(pg, "video_list", args,
		    "idx_videos_user_created");
		snprintf(args, sizeof(args), "'%s', 'portrait', 0, NULL, 21",
		    users[i]);
		assert_own_index(pg, "video_list_orient", args,
		    "idx_videos_user_");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_page_reads_its_users_index),
	};

	return cmocka_run_group_tests(tests, setup, fx_pg_teardown);
}
