/*
 * tests/integration/server_admin_test.c: AdminService on the admin
 * endpoint (stats, users, job retry), its absence from the public
 * endpoint, the admin socket's file mode, `vgenctl admin` and `vgenctl
 * admin events` on the pub socket.  On a
 * private PostgreSQL, without a worker: jobs stay pending unless canceled.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>

#include "fx.h"

#define M_STATS "/vgen.v1.AdminService/GetStats"
#define M_USERS "/vgen.v1.AdminService/ListUsers"
#define M_RETRY "/vgen.v1.AdminService/RetryJob"
#define M_CANCEL "/vgen.v1.VideoJobService/CancelJob"

#define VGENCTL VGEN_BIN_DIR "/vgenctl"

static vgen_client *
user_client(struct fx_stack *fx, const char *tag, struct fx_user *u)
{
	vgen_client *c = fx_user_client(&fx->srv, tag, u);

	assert_non_null(c);
	return c;
}

static Vgen__V1__VideoJob *
create_job(vgen_client *c, const char *prompt)
{
	Vgen__V1__VideoJob *j = NULL;

	assert_int_equal(fx_job_create(c, prompt, VGEN__V1__ORIENTATION__PORTRAIT, &j), 0);
	return j;
}

static void
cancel_job(vgen_client *c, const char *id)
{
	Vgen__V1__CancelJobRequest req = VGEN__V1__CANCEL_JOB_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;

	req.id = (char *)id;
	assert_int_equal(vgen_call(c, M_CANCEL, &req.base,
	    &vgen__v1__video_job__descriptor, &resp, NULL), 0);
	assert_int_equal(((Vgen__V1__VideoJob *)resp)->status,
	    VGEN__V1__JOB_STATUS__FAILED);
	protobuf_c_message_free_unpacked(resp, NULL);
}

static Vgen__V1__Stats *
get_stats(vgen_client *admin)
{
	Vgen__V1__GetStatsRequest req = VGEN__V1__GET_STATS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;

	assert_int_equal(vgen_call(admin, M_STATS, &req.base,
	    &vgen__v1__stats__descriptor, &resp, NULL), 0);
	return (Vgen__V1__Stats *)resp;
}

static int64_t
jobs_with(const Vgen__V1__Stats *s, int status)
{
	for (size_t i = 0; i < s->n_jobs_by_status; i++)
		if ((int)s->jobs_by_status[i]->status == status)
			return s->jobs_by_status[i]->count;
	fail_msg("status %d missing from jobs_by_status", status);
	return -1;
}

static int
retry(vgen_client *admin, const char *id, Vgen__V1__VideoJob **out,
    struct vgen_status *st)
{
	Vgen__V1__RetryJobRequest req = VGEN__V1__RETRY_JOB_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int code;

	req.id = (char *)id;
	code = vgen_call(admin, M_RETRY, &req.base,
	    &vgen__v1__video_job__descriptor, &resp, st);
	if (out != NULL)
		*out = (Vgen__V1__VideoJob *)resp;
	else if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return code;
}

static int
list_users(vgen_client *admin, int size, const char *token,
    Vgen__V1__ListUsersResponse **out)
{
	Vgen__V1__ListUsersRequest req = VGEN__V1__LIST_USERS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int code;

	req.page_size = size;
	if (token != NULL)
		req.page_token = (char *)token;
	code = vgen_call(admin, M_USERS, &req.base,
	    &vgen__v1__list_users_response__descriptor, &resp, NULL);
	if (out != NULL)
		*out = (Vgen__V1__ListUsersResponse *)resp;
	else if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return code;
}

static void
test_admin_socket_is_mode_0600(void **state)
{
	struct fx_stack *fx = *state;
	const char *path = fx->srv.admin_url + strlen("ipc://");
	struct stat sb;

	assert_int_equal(strncmp(fx->srv.admin_url, "ipc://", 6), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);
}

static void
test_admin_service_not_on_public_rpc(void **state)
{
	struct fx_stack *fx = *state;
	Vgen__V1__GetStatsRequest req = VGEN__V1__GET_STATS_REQUEST__INIT;
	struct fx_user u = { 0 };
	vgen_client *anon = fx_client(&fx->srv, NULL);
	vgen_client *c = user_client(fx, "adm-public", &u);
	ProtobufCMessage *resp = NULL;

	assert_non_null(anon);
	assert_int_equal(vgen_call(anon, M_STATS, &req.base,
	    &vgen__v1__stats__descriptor, &resp, NULL), VG_UNIMPLEMENTED);
	assert_null(resp);
	/* A user's token opens nothing either. */
	assert_int_equal(vgen_call(c, M_STATS, &req.base,
	    &vgen__v1__stats__descriptor, &resp, NULL), VG_UNIMPLEMENTED);
	assert_int_equal(list_users(c, 0, NULL, NULL), VG_UNIMPLEMENTED);
	assert_int_equal(retry(c, u.id, NULL, NULL), VG_UNIMPLEMENTED);
	fx_user_fini(&u);
	vgen_client_close(c);
	vgen_client_close(anon);
}

static void
test_get_stats_counts(void **state)
{
	struct fx_stack *fx = *state;
	vgen_client *admin = fx_admin_client(&fx->srv);
	struct fx_user a = { 0 }, b = { 0 };
	vgen_client *ca, *cb;
	Vgen__V1__Stats *before, *after;
	Vgen__V1__VideoJob *j1, *j2;
	const Vgen__V1__DayCount *today;
	char sql[1024], day0[16], day1[16];
	time_t now = time(NULL);

	assert_non_null(admin);
	strftime(day0, sizeof(day0), "%Y-%m-%d", gmtime(&now));
	before = get_stats(admin);

	ca = user_client(fx, "adm-stats-a", &a);
	cb = user_client(fx, "adm-stats-b", &b);
	j1 = create_job(ca, "a lighthouse at dusk");
	j2 = create_job(cb, "a fox in the snow");
	cancel_job(cb, j2->id);
	/* A finished generation: 90 s from creation to completion. */
	snprintf(sql, sizeof(sql),
	    "WITH v AS (INSERT INTO videos (user_id, prompt, orientation, "
	    "video_url) VALUES ('%s', 'done', 'portrait', "
	    "'http://example.com/v.mp4') RETURNING id) "
	    "INSERT INTO video_jobs (user_id, prompt, orientation, status, "
	    "progress, video_id, created_at, completed_at) SELECT '%s', "
	    "'done', 'portrait', 'completed', 100, id, "
	    "now() - interval '90 seconds', now() FROM v", a.id, a.id);
	assert_int_equal(fx_pg_exec(&fx->pg, sql), 0);

	after = get_stats(admin);
	now = time(NULL);
	strftime(day1, sizeof(day1), "%Y-%m-%d", gmtime(&now));
	assert_int_equal(after->users_total, before->users_total + 2);
	assert_int_equal(after->videos_total, before->videos_total + 1);
	assert_int_equal(jobs_with(after, VGEN__V1__JOB_STATUS__PENDING),
	    jobs_with(before, VGEN__V1__JOB_STATUS__PENDING) + 1);
	assert_int_equal(jobs_with(after, VGEN__V1__JOB_STATUS__FAILED),
	    jobs_with(before, VGEN__V1__JOB_STATUS__FAILED) + 1);
	assert_int_equal(jobs_with(after, VGEN__V1__JOB_STATUS__COMPLETED),
	    jobs_with(before, VGEN__V1__JOB_STATUS__COMPLETED) + 1);
	assert_int_equal(jobs_with(after, VGEN__V1__JOB_STATUS__PROCESSING),
	    jobs_with(before, VGEN__V1__JOB_STATUS__PROCESSING));
	assert_true(after->avg_generation_seconds > 0);
	assert_true(after->avg_generation_seconds < 1000);

	/* 30 days, oldest first, ending today (UTC) with today's sign-ups. */
	assert_int_equal(after->n_new_users_per_day, 30);
	today = after->new_users_per_day[29];
	assert_true(strcmp(today->day, day0) == 0 ||
	    strcmp(today->day, day1) == 0);
	assert_true(strcmp(after->new_users_per_day[0]->day, today->day) < 0);
	assert_true(today->count >= 2);
	if (strcmp(day0, day1) == 0 && before->n_new_users_per_day == 30 &&
	    strcmp(before->new_users_per_day[29]->day, today->day) == 0)
		assert_int_equal(today->count,
		    before->new_users_per_day[29]->count + 2);

	protobuf_c_message_free_unpacked(&j1->base, NULL);
	protobuf_c_message_free_unpacked(&j2->base, NULL);
	protobuf_c_message_free_unpacked(&before->base, NULL);
	protobuf_c_message_free_unpacked(&after->base, NULL);
	fx_user_fini(&a);
	fx_user_fini(&b);
	vgen_client_close(ca);
	vgen_client_close(cb);
	vgen_client_close(admin);
}

static void
test_list_users_pages_walk_every_user_once(void **state)
{
	struct fx_stack *fx = *state;
	vgen_client *admin = fx_admin_client(&fx->srv);
	struct fx_user u[5] = { { { 0 } } };
	vgen_client *c[5];
	Vgen__V1__ListUsersResponse *page = NULL;
	Vgen__V1__Stats *stats;
	char (*seen)[VG_UUID_STRLEN + 1];
	char token[256] = "";
	size_t nseen = 0, cap, pages = 0;
	int64_t last_us = INT64_MAX;

	assert_non_null(admin);
	for (int i = 0; i < 5; i++)
		c[i] = user_client(fx, "adm-list", &u[i]);
	stats = get_stats(admin);
	cap = (size_t)stats->users_total + 1;
	seen = calloc(cap, sizeof(*seen));
	assert_non_null(seen);

	do {
		assert_int_equal(list_users(admin, 2, token[0] ? token : NULL,
		    &page), 0);
		assert_true(page->n_users <= 2);
		for (size_t i = 0; i < page->n_users; i++) {
			const Vgen__V1__User *x = page->users[i];
			int64_t us = x->created_at->seconds * 1000000 +
			    x->created_at->nanos / 1000;

			assert_true(us <= last_us);	/* newest first */
			last_us = us;
			for (size_t k = 0; k < nseen; k++)
				assert_string_not_equal(seen[k], x->id);
			assert_true(nseen < cap);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", x->id);
			assert_string_not_equal(x->email, "");
		}
		assert_true(strlen(page->next_page_token) < sizeof(token));
		snprintf(token, sizeof(token), "%s", page->next_page_token);
		protobuf_c_message_free_unpacked(&page->base, NULL);
		assert_true(++pages < cap + 2);
	} while (token[0] != '\0');
	assert_int_equal(nseen, stats->users_total);
	for (int i = 0; i < 5; i++) {
		size_t k;

		for (k = 0; k < nseen; k++)
			if (strcmp(seen[k], u[i].id) == 0)
				break;
		assert_true(k < nseen);
	}

	/* The default page, and the limits. */
	assert_int_equal(list_users(admin, 0, NULL, &page), 0);
	assert_int_equal(page->n_users, stats->users_total < 20 ?
	    (size_t)stats->users_total : 20);
	protobuf_c_message_free_unpacked(&page->base, NULL);
	assert_int_equal(list_users(admin, 100, NULL, NULL), 0);
	assert_int_equal(list_users(admin, 101, NULL, NULL),
	    VG_INVALID_ARGUMENT);
	assert_int_equal(list_users(admin, -1, NULL, NULL),
	    VG_INVALID_ARGUMENT);
	assert_int_equal(list_users(admin, 2, "garbage", NULL),
	    VG_INVALID_ARGUMENT);

	free(seen);
	protobuf_c_message_free_unpacked(&stats->base, NULL);
	for (int i = 0; i < 5; i++) {
		fx_user_fini(&u[i]);
		vgen_client_close(c[i]);
	}
	vgen_client_close(admin);
}

static void
test_retry_job(void **state)
{
	struct fx_stack *fx = *state;
	vgen_client *admin = fx_admin_client(&fx->srv);
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "adm-retry", &u);
	Vgen__V1__VideoJob *j = create_job(c, "a storm over the sea");
	Vgen__V1__VideoJob *r = NULL;
	struct vgen_status st;

	assert_non_null(admin);
	/* Pending: nothing to retry. */
	assert_int_equal(retry(admin, j->id, NULL, &st),
	    VG_FAILED_PRECONDITION);
	assert_non_null(strstr(st.message, "failed"));

	cancel_job(c, j->id);
	assert_int_equal(retry(admin, j->id, &r, NULL), 0);
	assert_string_equal(r->id, j->id);
	assert_string_equal(r->user_id, u.id);
	assert_int_equal(r->status, VGEN__V1__JOB_STATUS__PENDING);
	assert_int_equal(r->attempts, 0);
	assert_int_equal(r->progress, 0);
	assert_string_equal(r->error_message, "");
	assert_null(r->completed_at);
	assert_true(r->version > j->version);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	/* Pending again: a second retry is refused. */
	assert_int_equal(retry(admin, j->id, NULL, NULL),
	    VG_FAILED_PRECONDITION);
	assert_int_equal(retry(admin, "00000000-0000-4000-8000-000000000000",
	    NULL, NULL), VG_NOT_FOUND);
	assert_int_equal(retry(admin, "not-a-uuid", NULL, &st),
	    VG_INVALID_ARGUMENT);
	assert_int_equal(st.nviolations, 1);
	assert_string_equal(st.violations[0].field, "id");

	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
	vgen_client_close(admin);
}

/* run_json runs `cmd` and parses its standard output as one JSON value. */
static json_t *
run_json(const char *cmd)
{
	char out[1 << 16];
	size_t len = 0, n;
	json_error_t err;
	json_t *v;
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	while ((n = fread(out + len, 1, sizeof(out) - 1 - len, p)) > 0)
		len += n;
	out[len] = '\0';
	assert_int_equal(pclose(p), 0);
	v = json_loads(out, 0, &err);
	if (v == NULL)
		fail_msg("not JSON (%s): %s", err.text, out);
	return v;
}

static void
test_vgenctl_admin(void **state)
{
	struct fx_stack *fx = *state;
	vgen_client *admin = fx_admin_client(&fx->srv);
	Vgen__V1__Stats *stats;
	char cmd[FX_PATH_MAX * 2];
	json_t *v, *days, *jobs;

	assert_non_null(admin);
	stats = get_stats(admin);

	snprintf(cmd, sizeof(cmd), "%s --json admin stats --admin '%s' "
	    "</dev/null", VGENCTL, fx->srv.admin_url);
	v = run_json(cmd);
	assert_int_equal(json_integer_value(json_object_get(v,
	    "users_total")), stats->users_total);
	assert_int_equal(json_integer_value(json_object_get(v,
	    "videos_total")), stats->videos_total);
	assert_true(json_is_number(json_object_get(v,
	    "avg_generation_seconds")));
	days = json_object_get(v, "new_users_per_day");
	assert_int_equal(json_array_size(days), 30);
	jobs = json_object_get(v, "jobs_by_status");
	assert_int_equal(json_array_size(jobs), 4);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(jobs, 0), "status")), "PENDING");
	json_decref(v);

	/* Every user, in pages of 3. */
	snprintf(cmd, sizeof(cmd), "VGEN_ADMIN='%s' %s admin users --all "
	    "--page-size 3 --json </dev/null", fx->srv.admin_url, VGENCTL);
	v = run_json(cmd);
	assert_int_equal(json_array_size(json_object_get(v, "users")),
	    stats->users_total);
	assert_string_equal(json_string_value(json_object_get(v,
	    "next_page_token")), "");
	json_decref(v);

	/* Retrying an unknown job is NOT_FOUND: exit status 1. */
	snprintf(cmd, sizeof(cmd), "%s admin retry --admin '%s' "
	    "00000000-0000-4000-8000-000000000000 </dev/null 2>/dev/null",
	    VGENCTL, fx->srv.admin_url);
	assert_int_equal(WEXITSTATUS(system(cmd)), 1);

	protobuf_c_message_free_unpacked(&stats->base, NULL);
	vgen_client_close(admin);
}

/*
 * events_start runs `vgenctl --json admin events --count 1` (with --user
 * when user is not NULL) on the server's pub socket, its stdout a pipe.
 */
static FILE *
events_start(struct fx_stack *fx, const char *user)
{
	char cmd[FX_PATH_MAX * 2];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "exec timeout 20 %s --json admin events "
	    "--events '%s' --count 1%s%s </dev/null", VGENCTL,
	    fx->srv.events_url, user != NULL ? " --user " : "",
	    user != NULL ? user : "");
	p = popen(cmd, "r");
	assert_non_null(p);
	return p;
}

/* events_read reads the one JSON line of `p` and checks its exit. */
static json_t *
events_read(FILE *p)
{
	char line[1 << 14];
	json_error_t err;
	json_t *v;

	if (fgets(line, sizeof(line), p) == NULL)
		fail_msg("vgenctl admin events printed nothing");
	assert_int_equal(pclose(p), 0);
	v = json_loads(line, 0, &err);
	if (v == NULL)
		fail_msg("not JSON (%s): %s", err.text, line);
	return v;
}

static void
test_vgenctl_admin_events(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "adminev", &u);
	Vgen__V1__VideoJob *j = create_job(c, "a job someone watches");
	struct timespec nap = { 0, 300 * 1000 * 1000 };
	char cmd[FX_PATH_MAX * 2];
	FILE *all, *mine;
	json_t *v;
	int i;

	all = events_start(fx, NULL);
	mine = events_start(fx, u.id);
	nanosleep(&nap, NULL);	/* let both subscribe */
	assert_int_equal(fx_job_update(&fx->pg, j->id,
	    "status = 'processing', progress = 37"), 0);

	for (i = 0; i < 2; i++) {
		v = events_read(i == 0 ? all : mine);
		assert_string_equal(json_string_value(json_object_get(v,
		    "job_id")), j->id);
		assert_string_equal(json_string_value(json_object_get(v,
		    "user_id")), u.id);
		assert_int_equal(json_integer_value(json_object_get(v,
		    "progress")), 37);
		assert_string_equal(json_string_value(json_object_get(v,
		    "status")), "PROCESSING");
		assert_true(json_integer_value(json_object_get(v,
		    "version")) > (json_int_t)j->version);
		assert_true(json_is_string(json_object_get(v, "updated_at")));
		json_decref(v);
	}

	/* A --user that is no UUID is a usage error: exit status 2. */
	snprintf(cmd, sizeof(cmd), "%s admin events --events '%s' --user "
	    "not-a-uuid --count 1 </dev/null 2>/dev/null", VGENCTL,
	    fx->srv.events_url);
	assert_int_equal(WEXITSTATUS(system(cmd)), 2);

	cancel_job(c, j->id);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admin_socket_is_mode_0600),
		cmocka_unit_test(test_admin_service_not_on_public_rpc),
		cmocka_unit_test(test_get_stats_counts),
		cmocka_unit_test(test_list_users_pages_walk_every_user_once),
		cmocka_unit_test(test_retry_job),
		cmocka_unit_test(test_vgenctl_admin),
		cmocka_unit_test(test_vgenctl_admin_events),
	};

	return cmocka_run_group_tests(tests, fx_stack_setup, fx_stack_teardown);
}
