/*
 * tests/integration/server_video_test.c: VideoService through the RPC:
 * keyset pages over 10,000 videos, page tokens, ownership, delete.
 * Videos are inserted with SQL (the worker makes them in production).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "fx.h"

#define M_LIST "/vgen.v1.VideoService/ListVideos"
#define M_GET "/vgen.v1.VideoService/GetVideo"
#define M_DELETE "/vgen.v1.VideoService/DeleteVideo"
#define M_JOBS "/vgen.v1.VideoJobService/ListJobs"

static struct fx_user alice, bob;
static vgen_client *ca, *cb;

static int
setup(void **state)
{
	struct fx_stack *fx;
	char email[128], sql[2048];

	if (fx_stack_setup(state) != 0)
		return -1;
	fx = *state;
	ca = fx_client(&fx->srv, NULL);
	cb = fx_client(&fx->srv, NULL);
	if (ca == NULL || cb == NULL ||
	    fx_register_login(ca, fx_unique_email(email, sizeof(email), "va"),
	    "password1", &alice) != 0 ||
	    fx_register_login(cb, fx_unique_email(email, sizeof(email), "vb"),
	    "password1", &bob) != 0 ||
	    vgen_client_set_token(ca, alice.token) != 0 ||
	    vgen_client_set_token(cb, bob.token) != 0)
		return -1;
	/* 10,000 for alice, three per second so created_at ties; 5 for bob */
	snprintf(sql, sizeof(sql),
	    "INSERT INTO videos (user_id, prompt, orientation, model_used, "
	    "video_url, duration, metadata, created_at) "
	    "SELECT '%s', 'prompt ' || i, CASE WHEN i %% 2 = 0 THEN "
	    "'portrait'::orientation_type ELSE 'landscape' END, "
	    "'sora_video2-portrait', 'https://cdn.example.com/' || i || "
	    "'.mp4', 4, ('{\"i\": ' || i || '}')::jsonb, "
	    "timestamp '2026-01-01' + (i / 3) * interval '1 second' "
	    "FROM generate_series(1, 10000) i; "
	    "INSERT INTO videos (user_id, prompt, orientation, video_url) "
	    "SELECT '%s', 'bob ' || i, 'portrait', 'https://b/' || i "
	    "FROM generate_series(1, 5) i; "
	    /* and a crowd of others, so the plan is the one of a real table */
	    "INSERT INTO users (email, password_hash) SELECT 'crowd' || u || "
	    "'-' || '%s' || '@example.com', 'x' FROM generate_series(1, 30) u; "
	    "INSERT INTO videos (user_id, prompt, orientation, video_url, "
	    "created_at) SELECT u.id, 'crowd', 'portrait', 'https://c/', "
	    "timestamp '2026-01-01' + (i %% 4000) * interval '1 second' "
	    "FROM users u, generate_series(1, 1000) i WHERE u.email LIKE "
	    "'crowd%%-%s@example.com'; ANALYZE videos;",
	    alice.id, bob.id, alice.id, alice.id);
	return fx_pg_exec(&fx->pg, sql) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	vgen_client_close(ca);
	vgen_client_close(cb);
	fx_user_fini(&alice);
	fx_user_fini(&bob);
	return fx_stack_teardown(state);
}

static int
list(vgen_client *c, int size, const char *token, int orientation,
    Vgen__V1__ListVideosResponse **out)
{
	Vgen__V1__ListVideosRequest req = VGEN__V1__LIST_VIDEOS_REQUEST__INIT;

	req.page_size = size;
	req.orientation = orientation;
	if (token != NULL)
		req.page_token = (char *)token;
	*out = NULL;
	return vgen_call(c, M_LIST, &req.base,
	    &vgen__v1__list_videos_response__descriptor,
	    (ProtobufCMessage **)out, NULL);
}

static int64_t
ts_us(const Google__Protobuf__Timestamp *t)
{
	return t->seconds * 1000000 + t->nanos / 1000;
}

static int
idcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Walks every page; after page `insert_after` inserts newer videos.
 * Returns the ids seen (malloc'd), checking order on the way.
 */
static char **
walk(struct fx_stack *fx, int size, int orientation, int insert_after,
    size_t *count)
{
	char **ids = calloc(20000, sizeof(char *)), token[256] = "";
	int64_t prev_us = INT64_MAX;
	char prev_id[64] = "";
	size_t n = 0;

	for (int page = 0;; page++) {
		Vgen__V1__ListVideosResponse *p = NULL;

		assert_int_equal(list(ca, size, token[0] ? token : NULL,
		    orientation, &p), 0);
		assert_true(p->n_videos <= (size_t)size);
		for (size_t i = 0; i < p->n_videos; i++) {
			Vgen__V1__Video *v = p->videos[i];
			int64_t us = ts_us(v->created_at);

			assert_string_equal(v->user_id, alice.id);
			if (orientation != 0)
				assert_int_equal(v->orientation, orientation);
			/* newest first; ties broken by id, descending */
			assert_true(us < prev_us || (us == prev_us &&
			    strcmp(v->id, prev_id) < 0));
			prev_us = us;
			snprintf(prev_id, sizeof(prev_id), "%s", v->id);
			assert_true(n < 20000);
			ids[n++] = strdup(v->id);
		}
		snprintf(token, sizeof(token), "%s", p->next_page_token);
		protobuf_c_message_free_unpacked(&p->base, NULL);
		if (page == insert_after) {
			char sql[512];

			snprintf(sql, sizeof(sql), "INSERT INTO videos (user_id, "
			    "prompt, orientation, video_url) SELECT '%s', "
			    "'late ' || i, 'portrait', 'https://late/' || i "
			    "FROM generate_series(1, 50) i", alice.id);
			assert_int_equal(fx_pg_exec(&fx->pg, sql), 0);
		}
		if (token[0] == '\0')
			break;
	}
	*count = n;
	return ids;
}

static void
free_ids(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

static void
test_walk_all_pages_exactly_once(void **state)
{
	struct fx_stack *fx = *state;
	size_t n = 0;
	char **ids = walk(fx, 100, 0, -1, &n);

	assert_int_equal(n, 10000);
	qsort(ids, n, sizeof(*ids), idcmp);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	free_ids(ids, n);
}

/* alice's odd-numbered videos are landscape: 5,000 of them, by pages. */
static void
test_walk_one_orientation(void **state)
{
	struct fx_stack *fx = *state;
	size_t n = 0;
	char **ids = walk(fx, 100, VGEN__V1__ORIENTATION__LANDSCAPE, -1, &n);

	assert_int_equal(n, 5000);
	qsort(ids, n, sizeof(*ids), idcmp);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	free_ids(ids, n);
}

static void
test_walk_while_videos_are_inserted(void **state)
{
	struct fx_stack *fx = *state;
	size_t n = 0;
	char **ids = walk(fx, 20, 0, 3, &n);

	/* The late ones are newer than the cursor: the walk goes on where
	 * it was, with no duplicate and no skip among the original 10,000. */
	assert_int_equal(n, 10000);
	qsort(ids, n, sizeof(*ids), idcmp);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	free_ids(ids, n);
	assert_int_equal(fx_pg_exec(&fx->pg, "DELETE FROM videos WHERE "
	    "prompt LIKE 'late %'"), 0);
}

static void
test_page_sizes_and_tokens(void **state)
{
	Vgen__V1__ListVideosResponse *p = NULL, *q = NULL;
	Vgen__V1__ListJobsRequest jreq = VGEN__V1__LIST_JOBS_REQUEST__INIT;
	char *tampered;

	(void)state;
	assert_int_equal(list(ca, 0, NULL, 0, &p), 0);
	assert_int_equal(p->n_videos, 20);	/* the default */
	protobuf_c_message_free_unpacked(&p->base, NULL);
	assert_int_equal(list(ca, 1, NULL, 0, &p), 0);
	assert_int_equal(p->n_videos, 1);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	assert_int_equal(list(ca, 100, NULL, 0, &p), 0);
	assert_int_equal(p->n_videos, 100);
	assert_int_equal(list(ca, 101, NULL, 0, &q), VG_INVALID_ARGUMENT);
	assert_int_equal(list(ca, -1, NULL, 0, &q), VG_INVALID_ARGUMENT);

	/* another user's token, a tampered one, garbage */
	assert_int_equal(list(cb, 20, p->next_page_token, 0, &q),
	    VG_INVALID_ARGUMENT);
	tampered = strdup(p->next_page_token);
	tampered[3] = tampered[3] == 'x' ? 'y' : 'x';
	assert_int_equal(list(ca, 20, tampered, 0, &q), VG_INVALID_ARGUMENT);
	free(tampered);
	assert_int_equal(list(ca, 20, "AAAA", 0, &q), VG_INVALID_ARGUMENT);
	assert_int_equal(list(ca, 20, "'; DROP TABLE videos; --", 0, &q),
	    VG_INVALID_ARGUMENT);
	/* a token of another listing */
	jreq.page_token = p->next_page_token;
	assert_int_equal(vgen_call(ca, M_JOBS, &jreq.base,
	    &vgen__v1__list_jobs_response__descriptor,
	    (ProtobufCMessage **)&q, NULL), VG_INVALID_ARGUMENT);
	/* the real one works */
	assert_int_equal(list(ca, 20, p->next_page_token, 0, &q), 0);
	assert_int_equal(q->n_videos, 20);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	protobuf_c_message_free_unpacked(&q->base, NULL);

	/* bob sees only his five, and the last page has no token */
	assert_int_equal(list(cb, 10, NULL, 0, &p), 0);
	assert_int_equal(p->n_videos, 5);
	assert_string_equal(p->next_page_token, "");
	protobuf_c_message_free_unpacked(&p->base, NULL);
	/* orientation filter */
	assert_int_equal(list(ca, 100, NULL, VGEN__V1__ORIENTATION__LANDSCAPE,
	    &p), 0);
	for (size_t i = 0; i < p->n_videos; i++)
		assert_int_equal(p->videos[i]->orientation,
		    VGEN__V1__ORIENTATION__LANDSCAPE);
	protobuf_c_message_free_unpacked(&p->base, NULL);
}

/*
 * An empty gallery is an empty last page, and a deleted user's token is
 * refused (the dispatcher re-checks the user) while others go on.
 */
static void
test_empty_gallery_and_deleted_user(void **state)
{
	struct fx_stack *fx = *state;
	Vgen__V1__ListVideosResponse *p = NULL;
	struct fx_user carol = { 0 };
	char email[128], sql[256];
	vgen_client *c = fx_client(&fx->srv, NULL);

	assert_non_null(c);
	assert_int_equal(fx_register_login(c, fx_unique_email(email,
	    sizeof(email), "vc"), "password1", &carol), 0);
	assert_int_equal(vgen_client_set_token(c, carol.token), 0);
	assert_int_equal(list(c, 20, NULL, 0, &p), 0);
	assert_int_equal(p->n_videos, 0);
	assert_string_equal(p->next_page_token, "");
	protobuf_c_message_free_unpacked(&p->base, NULL);

	snprintf(sql, sizeof(sql), "DELETE FROM users WHERE id = '%s'",
	    carol.id);
	assert_int_equal(fx_pg_exec(&fx->pg, sql), 0);
	assert_int_equal(list(c, 20, NULL, 0, &p), VG_UNAUTHENTICATED);
	assert_null(p);
	/* alice's page still comes whole */
	assert_int_equal(list(ca, 20, NULL, 0, &p), 0);
	assert_int_equal(p->n_videos, 20);
	protobuf_c_message_free_unpacked(&p->base, NULL);
	fx_user_fini(&carol);
	vgen_client_close(c);
}

static int
by_id(vgen_client *c, const char *method, const char *id,
    const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	Vgen__V1__GetVideoRequest req = VGEN__V1__GET_VIDEO_REQUEST__INIT;

	req.id = (char *)id;
	*out = NULL;
	return vgen_call(c, method, &req.base, d, out, NULL);
}

static void
test_get_and_delete_are_owner_only(void **state)
{
	struct fx_stack *fx = *state;
	Vgen__V1__ListVideosResponse *p = NULL;
	ProtobufCMessage *m = NULL;
	Vgen__V1__Video *v;
	char id[64], sql[512], prompt[64];
	PGconn *pg;
	PGresult *res;

	assert_int_equal(list(cb, 1, NULL, 0, &p), 0);
	snprintf(id, sizeof(id), "%s", p->videos[0]->id);
	protobuf_c_message_free_unpacked(&p->base, NULL);

	/* alice cannot see or delete bob's video */
	assert_int_equal(by_id(ca, M_GET, id, &vgen__v1__video__descriptor,
	    &m), VG_NOT_FOUND);
	assert_int_equal(by_id(ca, M_DELETE, id,
	    &vgen__v1__delete_video_response__descriptor, &m), VG_NOT_FOUND);
	assert_int_equal(by_id(cb, M_GET, id, &vgen__v1__video__descriptor,
	    &m), 0);
	v = (Vgen__V1__Video *)m;
	assert_string_equal(v->user_id, bob.id);
	assert_int_equal(strncmp(v->prompt, "bob ", 4), 0);
	snprintf(prompt, sizeof(prompt), "%s", v->prompt);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(by_id(cb, M_GET, "nope",
	    &vgen__v1__video__descriptor, &m), VG_INVALID_ARGUMENT);

	/* a job that produced the video keeps existing, video_id cleared */
	snprintf(sql, sizeof(sql), "INSERT INTO video_jobs (user_id, prompt, "
	    "orientation, status, progress, video_id, completed_at) VALUES "
	    "('%s', '%s', 'portrait', 'completed', 100, '%s', now())",
	    bob.id, prompt, id);
	assert_int_equal(fx_pg_exec(&fx->pg, sql), 0);
	assert_int_equal(by_id(cb, M_DELETE, id,
	    &vgen__v1__delete_video_response__descriptor, &m), 0);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(by_id(cb, M_DELETE, id,
	    &vgen__v1__delete_video_response__descriptor, &m), VG_NOT_FOUND);
	assert_int_equal(by_id(cb, M_GET, id, &vgen__v1__video__descriptor,
	    &m), VG_NOT_FOUND);

	pg = PQconnectdb(fx->pg.conninfo);
	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	snprintf(sql, sizeof(sql), "SELECT count(*), count(video_id) FROM "
	    "video_jobs WHERE user_id = '%s' AND prompt = '%s'", bob.id, prompt);
	res = PQexec(pg, sql);
	assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(res, 0, 0), "1");
	assert_string_equal(PQgetvalue(res, 0, 1), "0");
	PQclear(res);
	PQfinish(pg);
}

/*
 * A deep page is an index scan that starts at the page, not a scan and
 * sort of all the rows nor a walk through the newer ones: the server's own
 * "video_list" statement, prepared in a session set up as the server's
 * (generic plans) and explained at a position 1,000 s into alice's
 * gallery.  The keyset must be in the index condition.
 */
static void
test_deep_page_uses_the_index(void **state)
{
	struct fx_stack *fx = *state;
	char args[256];
	char *plan;

	snprintf(args, sizeof(args), "'%s', (extract(epoch from "
	    "timestamp '2026-01-01') + 1000) * 1000000, "
	    "'ffffffff-ffff-ffff-ffff-ffffffffffff', 21", alice.id);
	plan = fx_pg_explain(&fx->pg, "video_list", args);
	assert_non_null(plan);
	assert_true(fx_plan_has(plan, "idx_videos_user_created", NULL));
	assert_true(fx_plan_has(plan, "Index Cond", "created_at"));
	assert_false(fx_plan_has(plan, "Seq Scan", NULL));
	assert_false(fx_plan_has(plan, "Sort", NULL));
	free(plan);

	/* one orientation: its own index, orientation and keyset bound it */
	snprintf(args, sizeof(args), "'%s', 'portrait', (extract(epoch from "
	    "timestamp '2026-01-01') + 1000) * 1000000, "
	    "'ffffffff-ffff-ffff-ffff-ffffffffffff', 21", alice.id);
	plan = fx_pg_explain(&fx->pg, "video_list_orient", args);
	assert_non_null(plan);
	assert_true(fx_plan_has(plan, "idx_videos_user_orient_created_id",
	    NULL));
	assert_true(fx_plan_has(plan, "Index Cond", "orientation"));
	assert_true(fx_plan_has(plan, "Index Cond", "created_at"));
	assert_false(fx_plan_has(plan, "Seq Scan", NULL));
	assert_false(fx_plan_has(plan, "Sort", NULL));
	free(plan);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_all_pages_exactly_once),
		cmocka_unit_test(test_walk_one_orientation),
		cmocka_unit_test(test_walk_while_videos_are_inserted),
		cmocka_unit_test(test_page_sizes_and_tokens),
		cmocka_unit_test(test_get_and_delete_are_owner_only),
		cmocka_unit_test(test_empty_gallery_and_deleted_user),
		cmocka_unit_test(test_deep_page_uses_the_index),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
