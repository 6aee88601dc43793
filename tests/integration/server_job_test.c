/*
 * tests/integration/server_job_test.c: VideoJobService through the RPC,
 * on a private PostgreSQL (no worker: jobs stay pending unless canceled).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"

#define M_CREATE "/vgen.v1.VideoJobService/CreateJob"
#define M_GET "/vgen.v1.VideoJobService/GetJob"
#define M_ACTIVE "/vgen.v1.VideoJobService/ListActiveJobs"
#define M_LIST "/vgen.v1.VideoJobService/ListJobs"
#define M_CANCEL "/vgen.v1.VideoJobService/CancelJob"

static vgen_client *
user_client(struct fx_stack *fx, const char *tag, struct fx_user *u)
{
	vgen_client *c = fx_user_client(&fx->srv, tag, u);

	assert_non_null(c);
	return c;
}

static int
create(vgen_client *c, const char *prompt, int orientation, const char *key,
    Vgen__V1__VideoJob **out, struct vgen_status *st)
{
	Vgen__V1__CreateJobRequest req = VGEN__V1__CREATE_JOB_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int code;

	req.prompt = (char *)prompt;
	req.orientation = orientation;
	if (key != NULL)
		req.idempotency_key = (char *)key;
	code = vgen_call(c, M_CREATE, &req.base,
	    &vgen__v1__video_job__descriptor, &resp, st);
	if (out != NULL)
		*out = (Vgen__V1__VideoJob *)resp;
	else if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return code;
}

static int
by_id(vgen_client *c, const char *method, const char *id,
    Vgen__V1__VideoJob **out)
{
	Vgen__V1__GetJobRequest req = VGEN__V1__GET_JOB_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int code;

	/* GetJobRequest and CancelJobRequest have the same shape. */
	req.id = (char *)id;
	code = vgen_call(c, method, &req.base, &vgen__v1__video_job__descriptor,
	    &resp, NULL);
	if (out != NULL)
		*out = (Vgen__V1__VideoJob *)resp;
	else if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return code;
}

static int
list(vgen_client *c, int status, int size, const char *token,
    Vgen__V1__ListJobsResponse **out)
{
	Vgen__V1__ListJobsRequest req = VGEN__V1__LIST_JOBS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int code;

	req.status = status;
	req.page_size = size;
	if (token != NULL)
		req.page_token = (char *)token;
	code = vgen_call(c, M_LIST, &req.base,
	    &vgen__v1__list_jobs_response__descriptor, &resp, NULL);
	*out = (Vgen__V1__ListJobsResponse *)resp;
	return code;
}

static void
test_create_get_cancel(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "job", &u);
	Vgen__V1__VideoJob *j = NULL, *g = NULL, *x = NULL;

	assert_int_equal(create(c, "a cat surfing at dawn", 1, NULL, &j, NULL),
	    0);
	assert_true(vg_uuid_valid(j->id));
	assert_string_equal(j->user_id, u.id);
	assert_string_equal(j->prompt, "a cat surfing at dawn");
	assert_int_equal(j->orientation, VGEN__V1__ORIENTATION__PORTRAIT);
	assert_int_equal(j->status, VGEN__V1__JOB_STATUS__PENDING);
	assert_int_equal(j->progress, 0);
	assert_int_equal(j->attempts, 0);
	assert_int_equal(j->max_attempts, 3);
	assert_true(j->version >= 1);
	assert_non_null(j->created_at);
	assert_null(j->completed_at);

	assert_int_equal(by_id(c, M_GET, j->id, &g), 0);
	assert_string_equal(g->id, j->id);
	assert_int_equal(g->version, j->version);

	assert_int_equal(by_id(c, M_CANCEL, j->id, &x), 0);
	assert_int_equal(x->status, VGEN__V1__JOB_STATUS__FAILED);
	assert_string_equal(x->error_message, "canceled");
	assert_non_null(x->completed_at);
	assert_true(x->version > j->version);
	protobuf_c_message_free_unpacked(&x->base, NULL);
	/* Canceling a finished job changes nothing. */
	assert_int_equal(by_id(c, M_CANCEL, j->id, &x), 0);
	assert_int_equal(x->status, VGEN__V1__JOB_STATUS__FAILED);
	protobuf_c_message_free_unpacked(&x->base, NULL);

	protobuf_c_message_free_unpacked(&j->base, NULL);
	protobuf_c_message_free_unpacked(&g->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

static void
test_other_users_job_is_not_found(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user a = { 0 }, b = { 0 };
	vgen_client *ca = user_client(fx, "alice", &a);
	vgen_client *cb = user_client(fx, "bob", &b);
	Vgen__V1__VideoJob *j = NULL, *g = NULL;
	struct vgen_status st;
	char upper[64];

	assert_int_equal(create(ca, "alice's job", 2, NULL, &j, NULL), 0);
	assert_int_equal(by_id(cb, M_GET, j->id, NULL), VG_NOT_FOUND);
	assert_int_equal(by_id(cb, M_CANCEL, j->id, NULL), VG_NOT_FOUND);
	/* still pending for alice */
	assert_int_equal(by_id(ca, M_GET, j->id, &g), 0);
	assert_int_equal(g->status, VGEN__V1__JOB_STATUS__PENDING);
	/* malformed and non-canonical ids are refused before SQL */
	assert_int_equal(by_id(ca, M_GET, "not-a-uuid", NULL),
	    VG_INVALID_ARGUMENT);
	snprintf(upper, sizeof(upper), "{%s}", j->id);
	assert_int_equal(by_id(ca, M_GET, upper, NULL), VG_INVALID_ARGUMENT);
	assert_int_equal(by_id(ca, M_GET, "", NULL), VG_INVALID_ARGUMENT);
	(void)st;
	protobuf_c_message_free_unpacked(&j->base, NULL);
	protobuf_c_message_free_unpacked(&g->base, NULL);
	fx_user_fini(&a);
	fx_user_fini(&b);
	vgen_client_close(ca);
	vgen_client_close(cb);
}

static void
test_bad_requests(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "bad", &u);
	char p1000[2100], p1001[2100];
	struct vgen_status st;

	p1000[0] = '\0';
	for (int i = 0; i < 1000; i++)	/* 1000 two-byte characters */
		strcat(p1000, "\xc3\xa9");
	strcpy(p1001, p1000);
	strcat(p1001, "x");
	assert_int_equal(create(c, "", 1, NULL, NULL, &st),
	    VG_INVALID_ARGUMENT);
	assert_string_equal(st.violations[0].field, "prompt");
	assert_int_equal(create(c, "   \t ", 1, NULL, NULL, &st),
	    VG_INVALID_ARGUMENT);
	assert_int_equal(create(c, p1001, 1, NULL, NULL, &st),
	    VG_INVALID_ARGUMENT);
	assert_int_equal(create(c, "fine", 0, NULL, NULL, &st),
	    VG_INVALID_ARGUMENT);
	assert_string_equal(st.violations[0].field, "orientation");
	assert_int_equal(create(c, "fine", 7, NULL, NULL, &st),
	    VG_INVALID_ARGUMENT);
	assert_int_equal(create(c, "fine", 1, "key with spaces", NULL, &st),
	    VG_INVALID_ARGUMENT);
	assert_int_equal(create(c, p1000, 2, NULL, NULL, &st), 0);

	/* invalid UTF-8 in the prompt, seen on the raw bytes */
	{
		Vgen__V1__RpcRequest env = VGEN__V1__RPC_REQUEST__INIT;
		static const uint8_t payload[] = { 0x0a, 0x03, 'a', 0xff, 'b',
			0x10, 0x01 };
		char auth[4200];
		uint8_t frame[8192];
		void *reply = NULL;
		size_t n, rlen = 0;
		Vgen__V1__RpcResponse *r;

		snprintf(auth, sizeof(auth), "Bearer %s", u.token);
		env.method = M_CREATE;
		env.authorization = auth;
		env.payload.data = (uint8_t *)payload;
		env.payload.len = sizeof(payload);
		n = vgen__v1__rpc_request__pack(&env, frame);
		assert_int_equal(vgen_call_raw(c, frame, n, &reply, &rlen), 0);
		r = vgen__v1__rpc_response__unpack(NULL, rlen, reply);
		assert_non_null(r);
		assert_int_equal(r->code, VG_INVALID_ARGUMENT);
		assert_string_equal(r->violations[0]->field, "prompt");
		vgen__v1__rpc_response__free_unpacked(r, NULL);
		free(reply);
	}
	/* without a token */
	assert_int_equal(vgen_client_set_token(c, NULL), 0);
	assert_int_equal(create(c, "fine", 1, NULL, NULL, &st),
	    VG_UNAUTHENTICATED);
	fx_user_fini(&u);
	vgen_client_close(c);
}

static void
test_idempotency_key_returns_the_same_job(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "idem", &u);
	Vgen__V1__VideoJob *a = NULL, *b = NULL;
	struct vgen_status st;

	assert_int_equal(create(c, "same", 1, "req-123", &a, NULL), 0);
	assert_int_equal(create(c, "same", 1, "req-123", &b, NULL), 0);
	assert_string_equal(a->id, b->id);
	assert_string_equal(b->idempotency_key, "req-123");
	/* the same key for a different request is a client bug */
	assert_int_equal(create(c, "different", 1, "req-123", NULL, &st),
	    VG_FAILED_PRECONDITION);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	protobuf_c_message_free_unpacked(&b->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

struct racer {
	vgen_client *c;
	int code;
};

static void *
race_main(void *arg)
{
	struct racer *r = arg;

	r->code = create(r->c, "racing", 1, NULL, NULL, NULL);
	return NULL;
}

static void
test_active_job_limit_holds_under_concurrency(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "limit", &u);
	struct racer r[10];
	pthread_t th[10];
	Vgen__V1__ListJobsResponse *act = NULL;
	Vgen__V1__ListActiveJobsRequest areq =
	    VGEN__V1__LIST_ACTIVE_JOBS_REQUEST__INIT;
	int ok = 0, limited = 0;

	for (int i = 0; i < 10; i++) {
		r[i].c = c;
		assert_int_equal(pthread_create(&th[i], NULL, race_main, &r[i]),
		    0);
	}
	for (int i = 0; i < 10; i++) {
		pthread_join(th[i], NULL);
		ok += r[i].code == 0;
		limited += r[i].code == VG_RESOURCE_EXHAUSTED;
	}
	assert_int_equal(ok, 5);
	assert_int_equal(limited, 5);

	assert_int_equal(vgen_call(c, M_ACTIVE, &areq.base,
	    &vgen__v1__list_jobs_response__descriptor,
	    (ProtobufCMessage **)&act, NULL), 0);
	assert_int_equal(act->n_jobs, 5);
	for (size_t i = 1; i < act->n_jobs; i++)	/* newest first */
		assert_true(act->jobs[i - 1]->created_at->seconds * 1000000000LL +
		    act->jobs[i - 1]->created_at->nanos >=
		    act->jobs[i]->created_at->seconds * 1000000000LL +
		    act->jobs[i]->created_at->nanos);
	/* canceling one frees a slot */
	assert_int_equal(by_id(c, M_CANCEL, act->jobs[0]->id, NULL), 0);
	assert_int_equal(create(c, "after cancel", 1, NULL, NULL, NULL), 0);
	assert_int_equal(create(c, "one too many", 1, NULL, NULL, NULL),
	    VG_RESOURCE_EXHAUSTED);
	protobuf_c_message_free_unpacked(&act->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

static void
test_list_jobs_pages_and_tokens(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 }, o = { 0 };
	vgen_client *c = user_client(fx, "pages", &u);
	vgen_client *other = user_client(fx, "pages-other", &o);
	char ids[12][VG_UUID_STRLEN + 1], token[256], *tampered;
	Vgen__V1__ListJobsResponse *p = NULL;
	int seen = 0;

	/* 12 jobs, newest last; cancel as we go to stay under the limit */
	for (int i = 0; i < 12; i++) {
		Vgen__V1__VideoJob *j = NULL;
		char prompt[32];

		snprintf(prompt, sizeof(prompt), "job %d", i);
		assert_int_equal(create(c, prompt, 1 + i % 2, NULL, &j, NULL),
		    0);
		snprintf(ids[i], sizeof(ids[i]), "%s", j->id);
		if (i < 10)
			assert_int_equal(by_id(c, M_CANCEL, j->id, NULL), 0);
		protobuf_c_message_free_unpacked(&j->base, NULL);
	}
	token[0] = '\0';
	for (int page = 0; page < 10; page++) {
		assert_int_equal(list(c, 0, 5, token[0] ? token : NULL, &p), 0);
		for (size_t i = 0; i < p->n_jobs; i++, seen++)
			assert_string_equal(p->jobs[i]->id, ids[11 - seen]);
		snprintf(token, sizeof(token), "%s", p->next_page_token);
		protobuf_c_message_free_unpacked(&p->base, NULL);
		if (token[0] == '\0')
			break;
	}
	assert_int_equal(seen, 12);

	/* status filter: the 2 pending, then the 10 canceled by pages of 3 */
	assert_int_equal(list(c, VGEN__V1__JOB_STATUS__PENDING, 100, NULL, &p),
	    0);
	assert_int_equal(p->n_jobs, 2);
	assert_string_equal(p->next_page_token, "");
	protobuf_c_message_free_unpacked(&p->base, NULL);
	token[0] = '\0';
	seen = 0;
	for (int page = 0; page < 10; page++) {
		assert_int_equal(list(c, VGEN__V1__JOB_STATUS__FAILED, 3,
		    token[0] ? token : NULL, &p), 0);
		for (size_t i = 0; i < p->n_jobs; i++, seen++)
			assert_string_equal(p->jobs[i]->id, ids[9 - seen]);
		snprintf(token, sizeof(token), "%s", p->next_page_token);
		protobuf_c_message_free_unpacked(&p->base, NULL);
		if (token[0] == '\0')
			break;
	}
	assert_int_equal(seen, 10);

	/* page sizes */
	assert_int_equal(list(c, 0, 101, NULL, &p), VG_INVALID_ARGUMENT);
	assert_int_equal(list(c, 0, -1, NULL, &p), VG_INVALID_ARGUMENT);
	assert_int_equal(list(c, 0, 1, NULL, &p), 0);
	assert_int_equal(p->n_jobs, 1);
	snprintf(token, sizeof(token), "%s", p->next_page_token);
	protobuf_c_message_free_unpacked(&p->base, NULL);

	/* a token is bound to its user and untampered */
	assert_int_equal(list(other, 0, 5, token, &p), VG_INVALID_ARGUMENT);
	tampered = strdup(token);
	tampered[5] = tampered[5] == 'A' ? 'B' : 'A';
	assert_int_equal(list(c, 0, 5, tampered, &p), VG_INVALID_ARGUMENT);
	free(tampered);
	assert_int_equal(list(c, 0, 5, "garbage!", &p), VG_INVALID_ARGUMENT);
	assert_int_equal(list(c, 0, 5, "' OR 1=1 --", &p), VG_INVALID_ARGUMENT);
	assert_int_equal(list(c, 0, 5, token, &p), 0);
	assert_int_equal(p->n_jobs, 5);
	assert_string_equal(p->jobs[0]->id, ids[10]);
	protobuf_c_message_free_unpacked(&p->base, NULL);

	fx_user_fini(&u);
	fx_user_fini(&o);
	vgen_client_close(c);
	vgen_client_close(other);
}

static void
test_deleted_user_cannot_create(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "gone", &u);
	char sql[160];

	snprintf(sql, sizeof(sql), "DELETE FROM users WHERE id = '%s'", u.id);
	assert_int_equal(fx_pg_exec(&fx->pg, sql), 0);
	assert_int_equal(create(c, "ghost", 1, NULL, NULL, NULL),
	    VG_UNAUTHENTICATED);
	assert_int_equal(by_id(c, M_GET, u.id, NULL), VG_UNAUTHENTICATED);
	fx_user_fini(&u);
	vgen_client_close(c);
}

/*
 * A deep page of ListJobs is an index scan that starts at the page: the
 * server's own "job_list" statement, explained in a session set up as the
 * server's (generic plans) 1,000 s into a user's history, with 20 users of
 * 100 jobs each in the table.  The keyset must be in the index condition;
 * for one status ("job_list_status") the status too.
 */
static void
test_deep_job_page_uses_the_index(void **state)
{
	struct fx_stack *fx = *state;
	char *plan, *plan2;

	assert_int_equal(fx_pg_exec(&fx->pg,
	    "INSERT INTO users (email, password_hash, username) "
	    "SELECT 'plan' || u || '@example.com', '*', 'plan' "
	    "FROM generate_series(1, 20) u; "
	    "INSERT INTO video_jobs (user_id, prompt, orientation, status, "
	    "created_at) SELECT u.id, 'plan job', 'portrait', CASE WHEN "
	    "i % 10 = 0 THEN 'completed'::job_status_type ELSE 'failed' END, "
	    "timestamp '2026-01-01' + i * interval '1 minute' FROM users u, "
	    "generate_series(1, 100) i WHERE u.email LIKE 'plan%@example.com'; "
	    "ANALYZE users; ANALYZE video_jobs"), 0);
	/* A generic plan: the values only have to be of the right types. */
	plan = fx_pg_explain(&fx->pg, "job_list", "gen_random_uuid(), "
	    "(extract(epoch from timestamp '2026-01-01') + 1000) * 1000000, "
	    "'ffffffff-ffff-ffff-ffff-ffffffffffff', 21");
	/* one status: the data model's (user_id, status, created_at) */
	plan2 = fx_pg_explain(&fx->pg, "job_list_status", "gen_random_uuid(), "
	    "'failed', (extract(epoch from timestamp '2026-01-01') + 1000) "
	    "* 1000000, 'ffffffff-ffff-ffff-ffff-ffffffffffff', 21");
	assert_int_equal(fx_pg_exec(&fx->pg, "DELETE FROM users "
	    "WHERE email LIKE 'plan%@example.com'"), 0);
	assert_non_null(plan);
	assert_true(fx_plan_has(plan, "Index Cond", "created_at"));
	assert_false(fx_plan_has(plan, "Seq Scan", NULL));
	assert_false(fx_plan_has(plan, "Sort", NULL));
	free(plan);
	assert_non_null(plan2);
	assert_true(fx_plan_has(plan2, "Index Cond", "status"));
	assert_true(fx_plan_has(plan2, "Index Cond", "created_at"));
	assert_false(fx_plan_has(plan2, "Seq Scan", NULL));
	/* ties of created_at are put in id order: never a full sort */
	assert_false(fx_plan_has(plan2, "->  Sort", NULL));
	free(plan2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_get_cancel),
		cmocka_unit_test(test_other_users_job_is_not_found),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_idempotency_key_returns_the_same_job),
		cmocka_unit_test(test_active_job_limit_holds_under_concurrency),
		cmocka_unit_test(test_list_jobs_pages_and_tokens),
		cmocka_unit_test(test_deleted_user_cannot_create),
		cmocka_unit_test(test_deep_job_page_uses_the_index),
	};

	return cmocka_run_group_tests(tests, fx_stack_setup, fx_stack_teardown);
}
