/*
 * tests/integration/server_events_test.c: the event hub (pub frames,
 * reconnect after a database restart) and WaitJob (answers at once,
 * parks, wakes, times out, owner check, many parked calls without
 * holding threads, parked calls answered at shutdown).  Jobs are moved
 * behind the server's back with fx_pg_exec, as a worker would.
 *
 * The server runs with VGEN_THREADS=2 and VGEN_CONTEXTS=32: 200 parked
 * calls could not even be received if parking held contexts or threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "fx.h"
#include "vgen/v1/events.pb-c.h"

#define M_WAIT "/vgen.v1.VideoJobService/WaitJob"
#define M_GETME "/vgen.v1.UserService/GetMe"

#define PENDING VGEN__V1__JOB_STATUS__PENDING
#define PROCESSING VGEN__V1__JOB_STATUS__PROCESSING



static int
events_setup(void **state)
{
	static const char *const env[] = { "VGEN_THREADS=2",
		"VGEN_CONTEXTS=32", "VGEN_MAX_ACTIVE_JOBS=100", NULL };
	struct fx_stack *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return -1;
	if (fx_pg_start(&st->pg) < 0 ||
	    fx_server_start(&st->srv, &st->pg, env) < 0) {
		fx_pg_destroy(&st->pg);
		free(st);
		return -1;
	}
	*state = st;
	return 0;
}

static int
events_teardown(void **state)
{
	return fx_stack_teardown(state);
}

static vgen_client *
user_client(struct fx_stack *fx, const char *tag, struct fx_user *u,
    uint32_t timeout_ms)
{
	vgen_client *c = fx_user_client(&fx->srv, tag, u);

	assert_non_null(c);
	vgen_client_set_timeout(c, timeout_ms);
	return c;
}

static Vgen__V1__VideoJob *
create(vgen_client *c, const char *prompt)
{
	Vgen__V1__VideoJob *j = NULL;

	assert_int_equal(fx_job_create(c, prompt, VGEN__V1__ORIENTATION__LANDSCAPE, &j), 0);
	return j;
}

static int
wait_job(vgen_client *c, const char *id, int status, int progress,
    uint32_t timeout_ms, Vgen__V1__VideoJob **out)
{
	Vgen__V1__WaitJobRequest req = VGEN__V1__WAIT_JOB_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int code;

	req.id = (char *)id;
	req.known_status = status;
	req.known_progress = progress;
	req.timeout_ms = timeout_ms;
	code = vgen_call(c, M_WAIT, &req.base, &vgen__v1__video_job__descriptor,
	    &resp, NULL);
	if (out != NULL)
		*out = (Vgen__V1__VideoJob *)resp;
	else if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	return code;
}

static void
job_sql(struct fx_stack *fx, const char *id, const char *set)
{
	assert_int_equal(fx_job_update(&fx->pg, id, set), 0);
}

/* ---- a subscriber ----------------------------------------------------- */

static nng_socket
subscribe(struct fx_stack *fx, const char *topic)
{
	nng_socket s;

	assert_int_equal(nng_sub0_open(&s), 0);
	assert_int_equal(nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 65536), 0);
	assert_int_equal(nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, topic,
	    strlen(topic)), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 50), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 200), 0);
	assert_int_equal(nng_dial(s, fx->srv.events_url, NULL, 0), 0);
	fx_sleep_ms(100);	/* the pipe reaches the publisher */
	return s;
}

/* Receives one frame: 0 with the topic and the event, or nng's error. */
static int
recv_event(nng_socket s, char *topic, size_t tlen, Vgen__V1__JobEvent **ev)
{
	nng_msg *msg;
	const uint8_t *b, *nul;
	size_t n;
	int rv;

	if ((rv = nng_recvmsg(s, &msg, 0)) != 0)
		return rv;
	b = nng_msg_body(msg);
	n = nng_msg_len(msg);
	nul = memchr(b, 0, n);
	assert_non_null(nul);
	assert_true((size_t)(nul - b) < tlen);
	memcpy(topic, b, (size_t)(nul - b));
	topic[nul - b] = '\0';
	*ev = vgen__v1__job_event__unpack(NULL, n - (size_t)(nul - b) - 1,
	    nul + 1);
	nng_msg_free(msg);
	assert_non_null(*ev);
	return 0;
}

/* Receives until an event for job `id` with `progress` (else fails). */
static Vgen__V1__JobEvent *
recv_until(nng_socket s, const char *id, int progress)
{
	char topic[128];
	Vgen__V1__JobEvent *ev;

	for (;;) {
		assert_int_equal(recv_event(s, topic, sizeof(topic), &ev), 0);
		if (strcmp(ev->job_id, id) == 0 && ev->progress == progress)
			return ev;
		vgen__v1__job_event__free_unpacked(ev, NULL);
	}
}

/* ---- WaitJob in a thread ------------------------------------------------ */

struct waiter {
	vgen_client *c;
	const char *id;
	int status, progress;
	uint32_t timeout_ms;
	int code;
	Vgen__V1__VideoJob *job;
	int64_t done_ms;
	pthread_t t;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->code = wait_job(w->c, w->id, w->status, w->progress, w->timeout_ms,
	    &w->job);
	w->done_ms = vg_now_ms();
	return NULL;
}

static void
waiter_start(struct waiter *w)
{
	assert_int_equal(pthread_create(&w->t, NULL, waiter_main, w), 0);
}

static void
waiter_join(struct waiter *w)
{
	pthread_join(w->t, NULL);
}

static void
waiter_fini(struct waiter *w)
{
	if (w->job != NULL)
		protobuf_c_message_free_unpacked(&w->job->base, NULL);
	w->job = NULL;
}

/* ---- tests ------------------------------------------------------------- */

/* Started first, checked last: a 60 s wait runs behind the other tests. */
static struct {
	struct fx_user u;
	vgen_client *c;
	Vgen__V1__VideoJob *job;
	struct waiter w;
	int64_t start_ms;
} cap;

static void
test_over_cap_start(void **state)
{
	struct fx_stack *fx = *state;

	cap.c = user_client(fx, "cap", &cap.u, 90000);
	cap.job = create(cap.c, "a job nobody touches");
	cap.w = (struct waiter){ .c = cap.c, .id = cap.job->id,
		.status = PENDING, .progress = 0, .timeout_ms = 600000 };
	cap.start_ms = vg_now_ms();
	waiter_start(&cap.w);
}

static void
test_over_cap_end(void **state)
{
	int64_t took;

	(void)state;
	waiter_join(&cap.w);
	took = cap.w.done_ms - cap.start_ms;
	fprintf(stderr, "over-cap WaitJob returned after %lld ms\n",
	    (long long)took);
	assert_int_equal(cap.w.code, 0);
	assert_int_equal(cap.w.job->status, PENDING);
	assert_int_equal(cap.w.job->progress, 0);
	assert_true(took >= 59500 && took < 63000);
	waiter_fini(&cap.w);
	protobuf_c_message_free_unpacked(&cap.job->base, NULL);
	fx_user_fini(&cap.u);
	vgen_client_close(cap.c);
}

static void
test_pub_frames(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "pub", &u, 10000);
	Vgen__V1__VideoJob *j = create(c, "a pub/sub job");
	Vgen__V1__JobEvent *e1, *e2;
	char topic[128], want[128];
	nng_socket s;

	snprintf(topic, sizeof(topic), "job.%s.", u.id);
	s = subscribe(fx, topic);
	job_sql(fx, j->id, "status = 'processing', progress = 10");
	e1 = recv_until(s, j->id, 10);
	job_sql(fx, j->id, "progress = 20");
	assert_int_equal(recv_event(s, topic, sizeof(topic), &e2), 0);
	snprintf(want, sizeof(want), "job.%s.%s", u.id, j->id);
	assert_string_equal(topic, want);
	assert_string_equal(e2->job_id, j->id);
	assert_string_equal(e2->user_id, u.id);
	assert_int_equal(e1->status, PROCESSING);
	assert_int_equal(e2->status, PROCESSING);
	assert_int_equal(e2->progress, 20);
	assert_true(e1->version > j->version);
	assert_true(e2->version > e1->version);
	assert_non_null(e2->updated_at);
	assert_true(e2->updated_at->seconds > 1600000000);
	vgen__v1__job_event__free_unpacked(e1, NULL);
	vgen__v1__job_event__free_unpacked(e2, NULL);
	nng_close(s);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

static void
test_wait_answers_at_once_when_known_state_differs(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "now", &u, 20000);
	Vgen__V1__VideoJob *j = create(c, "a pending job"), *r = NULL;
	int64_t t0 = vg_now_ms();

	assert_int_equal(wait_job(c, j->id, PROCESSING, 0, 10000, &r), 0);
	assert_true(vg_now_ms() - t0 < 1000);
	assert_string_equal(r->id, j->id);
	assert_int_equal(r->status, PENDING);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	/* knowing nothing (UNSPECIFIED) also differs */
	t0 = vg_now_ms();
	assert_int_equal(wait_job(c, j->id, 0, 0, 10000, &r), 0);
	assert_true(vg_now_ms() - t0 < 1000);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

static void
test_wait_parks_and_wakes_on_change(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "wake", &u, 20000);
	Vgen__V1__VideoJob *j = create(c, "a job that moves");
	struct waiter w = { .c = c, .id = j->id, .status = PENDING,
		.progress = 0, .timeout_ms = 10000 };
	int64_t t0, t1;

	t0 = vg_now_ms();
	waiter_start(&w);
	fx_sleep_ms(400);
	t1 = vg_now_ms();
	job_sql(fx, j->id, "status = 'processing', progress = 5");
	waiter_join(&w);
	fprintf(stderr, "WaitJob woke %lld ms after the UPDATE\n",
	    (long long)(w.done_ms - t1));
	assert_int_equal(w.code, 0);
	assert_true(w.done_ms - t0 >= 400);	/* it did wait */
	assert_true(w.done_ms - t1 < 150);
	assert_int_equal(w.job->status, PROCESSING);
	assert_int_equal(w.job->progress, 5);
	assert_true(w.job->version > j->version);
	waiter_fini(&w);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

static void
test_wait_times_out_with_unchanged_state(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "timeout", &u, 20000);
	Vgen__V1__VideoJob *j = create(c, "a job that sits"), *r = NULL;
	int64_t t0 = vg_now_ms(), took;

	assert_int_equal(wait_job(c, j->id, PENDING, 0, 700, &r), 0);
	took = vg_now_ms() - t0;
	fprintf(stderr, "WaitJob timeout_ms=700 took %lld ms\n",
	    (long long)took);
	assert_true(took >= 690 && took < 1500);
	assert_int_equal(r->status, PENDING);
	assert_int_equal(r->version, j->version);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	/* The caller's own deadline bounds the wait: answered before it. */
	vgen_client_set_timeout(c, 1500);
	t0 = vg_now_ms();
	assert_int_equal(wait_job(c, j->id, PENDING, 0, 0, &r), 0);
	took = vg_now_ms() - t0;
	assert_true(took >= 1000 && took < 1500);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

static void
test_wait_other_users_job_is_not_found(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user a = { 0 }, b = { 0 };
	vgen_client *ca = user_client(fx, "alice", &a, 20000);
	vgen_client *cb = user_client(fx, "bob", &b, 20000);
	Vgen__V1__VideoJob *j = create(ca, "alice's job");
	int64_t t0 = vg_now_ms();

	assert_int_equal(wait_job(cb, j->id, PENDING, 0, 5000, NULL),
	    VG_NOT_FOUND);
	assert_true(vg_now_ms() - t0 < 1000);
	assert_int_equal(wait_job(cb, "not-a-uuid", PENDING, 0, 5000, NULL),
	    VG_INVALID_ARGUMENT);
	assert_int_equal(wait_job(cb, "00000000-0000-4000-8000-000000000000",
	    PENDING, 0, 5000, NULL), VG_NOT_FOUND);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&a);
	fx_user_fini(&b);
	vgen_client_close(ca);
	vgen_client_close(cb);
}

#define NWAIT 200

static void
test_many_parked_calls_do_not_block_others(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "many", &u, 30000);
	vgen_client *me = fx_client(&fx->srv, u.token);
	Vgen__V1__VideoJob *jobs[4];
	struct waiter *w = calloc(NWAIT, sizeof(*w));
	int64_t worst = 0, t1;

	assert_non_null(w);
	assert_non_null(me);
	for (int i = 0; i < 4; i++)
		jobs[i] = create(c, "one of four");
	for (int i = 0; i < NWAIT; i++) {
		w[i] = (struct waiter){ .c = c, .id = jobs[i % 4]->id,
			.status = PENDING, .progress = 0, .timeout_ms = 20000 };
		waiter_start(&w[i]);
	}
	fx_sleep_ms(1000);	/* all parked by now */
	for (int i = 0; i < 50; i++) {
		Vgen__V1__GetMeRequest req = VGEN__V1__GET_ME_REQUEST__INIT;
		ProtobufCMessage *resp = NULL;
		int64_t t0 = vg_now_ms();

		assert_int_equal(vgen_call(me, M_GETME, &req.base,
		    &vgen__v1__user__descriptor, &resp, NULL), 0);
		if (vg_now_ms() - t0 > worst)
			worst = vg_now_ms() - t0;
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	fprintf(stderr, "GetMe with %d parked WaitJob: worst %lld ms\n",
	    NWAIT, (long long)worst);
	assert_true(worst < 500);
	for (int i = 0; i < NWAIT; i++)	/* nobody answered yet */
		assert_int_equal(w[i].done_ms, 0);
	t1 = vg_now_ms();
	for (int i = 0; i < 4; i++)
		job_sql(fx, jobs[i]->id, "status = 'processing', progress = 1");
	for (int i = 0; i < NWAIT; i++) {
		waiter_join(&w[i]);
		assert_int_equal(w[i].code, 0);
		assert_int_equal(w[i].job->status, PROCESSING);
		assert_int_equal(w[i].job->progress, 1);
		assert_true(w[i].done_ms - t1 < 3000);
		waiter_fini(&w[i]);
	}
	for (int i = 0; i < 4; i++)
		protobuf_c_message_free_unpacked(&jobs[i]->base, NULL);
	free(w);
	fx_user_fini(&u);
	vgen_client_close(c);
	vgen_client_close(me);
}

static void
test_hub_reconnects_after_database_restart(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "restart", &u, 60000);
	Vgen__V1__VideoJob *j = create(c, "a job across a restart");
	struct waiter w = { .c = c, .id = j->id, .status = PENDING,
		.progress = 0, .timeout_ms = 40000 };
	Vgen__V1__VideoJob *j2 = create(c, "a job changed as the hub is away");
	struct waiter w2 = { .c = c, .id = j2->id, .status = PENDING,
		.progress = 0, .timeout_ms = 40000 };
	Vgen__V1__JobEvent *ev;
	char topic[128];
	nng_socket s, s2;

	snprintf(topic, sizeof(topic), "job.%s.%s", u.id, j->id);
	s = subscribe(fx, topic);
	snprintf(topic, sizeof(topic), "job.%s.%s", u.id, j2->id);
	s2 = subscribe(fx, topic);
	waiter_start(&w);
	waiter_start(&w2);
	fx_sleep_ms(300);
	assert_int_equal(fx_pg_stop(&fx->pg), 0);
	fx_sleep_ms(1000);
	assert_int_equal(fx_pg_resume(&fx->pg), 0);
	/*
	 * j2 changes at once, most likely before the hub LISTENs again (it
	 * retries with a backoff): its NOTIFY goes to nobody, and only the
	 * hub's catch-up (the current state of every active job, published
	 * once after it reconnects) can tell the watchers.
	 */
	job_sql(fx, j2->id, "status = 'processing', progress = 17");
	ev = recv_until(s2, j2->id, 17);
	assert_int_equal(ev->status, PROCESSING);
	vgen__v1__job_event__free_unpacked(ev, NULL);
	waiter_join(&w2);
	assert_int_equal(w2.code, 0);
	assert_int_equal(w2.job->status, PROCESSING);
	assert_int_equal(w2.job->progress, 17);
	waiter_fini(&w2);
	nng_close(s2);
	protobuf_c_message_free_unpacked(&j2->base, NULL);
	/* Give the hub its backoff to LISTEN again; then a change must
	 * reach both the subscriber and the parked call. */
	fx_sleep_ms(2500);
	job_sql(fx, j->id, "status = 'processing', progress = 42");
	ev = recv_until(s, j->id, 42);
	assert_int_equal(ev->status, PROCESSING);
	vgen__v1__job_event__free_unpacked(ev, NULL);
	waiter_join(&w);
	assert_int_equal(w.code, 0);
	assert_int_equal(w.job->progress, 42);
	waiter_fini(&w);
	/* and the next one too: live events, not only the catch-up */
	job_sql(fx, j->id, "progress = 43");
	ev = recv_until(s, j->id, 43);
	vgen__v1__job_event__free_unpacked(ev, NULL);
	nng_close(s);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

static void
test_late_subscriber_reads_the_final_state(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "late", &u, 10000);
	Vgen__V1__VideoJob *j = create(c, "a job that ends early"), *g = NULL;
	nng_socket s;
	char topic[128];

	job_sql(fx, j->id, "status = 'failed', error_message = 'boom', "
	    "completed_at = now()");
	/* The watcher pattern: subscribe, then read the job. */
	snprintf(topic, sizeof(topic), "job.%s.", u.id);
	s = subscribe(fx, topic);
	assert_int_equal(fx_job_get(c, j->id, &g), 0);
	assert_int_equal(g->status, VGEN__V1__JOB_STATUS__FAILED);
	assert_string_equal(g->error_message, "boom");
	assert_true(g->version > j->version);
	nng_close(s);
	protobuf_c_message_free_unpacked(&g->base, NULL);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

/* Last: SIGTERM answers parked calls with the current state, exit 0. */
static void
test_shutdown_answers_parked_calls(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "bye", &u, 60000);
	Vgen__V1__VideoJob *j = create(c, "a job at shutdown");
	struct waiter w = { .c = c, .id = j->id, .status = PENDING,
		.progress = 0, .timeout_ms = 50000 };
	int64_t t0;

	waiter_start(&w);
	fx_sleep_ms(300);
	t0 = vg_now_ms();
	assert_int_equal(fx_server_signal(&fx->srv, SIGTERM), 0);
	waiter_join(&w);
	assert_true(w.done_ms - t0 < 3000);
	assert_int_equal(w.code, 0);
	assert_int_equal(w.job->status, PENDING);
	assert_int_equal(fx_server_wait(&fx->srv, 10000), 0);
	waiter_fini(&w);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	fx_user_fini(&u);
	vgen_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_over_cap_start),
		cmocka_unit_test(test_pub_frames),
		cmocka_unit_test(
		    test_wait_answers_at_once_when_known_state_differs),
		cmocka_unit_test(test_wait_parks_and_wakes_on_change),
		cmocka_unit_test(test_wait_times_out_with_unchanged_state),
		cmocka_unit_test(test_wait_other_users_job_is_not_found),
		cmocka_unit_test(test_many_parked_calls_do_not_block_others),
		cmocka_unit_test(test_hub_reconnects_after_database_restart),
		cmocka_unit_test(test_late_subscriber_reads_the_final_state),
		cmocka_unit_test(test_over_cap_end),
		cmocka_unit_test(test_shutdown_answers_parked_calls),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, events_setup, events_teardown);
}
