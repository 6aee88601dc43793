/*
 * tests/integration/worker_providers_test.c: vgen-worker against a
 * private PostgreSQL and fake-sora: each provider end to end, the faults
 * of shared/sora-api.md §4, cancellation and the HTTP hygiene of
 * DESIGN §7.  Jobs are created with store_job_create.
 */
#include <signal.h>

#include "worker_test_util.h"

static const char *const fake_args[] = { "--step-ms", "50", "--steps", "10",
	NULL };

#define COMMON_ENV "VGEN_POLL_MS=200", "VGEN_BACKOFF_BASE_MS=200", \
	"VGEN_IDLE_TIMEOUT_S=2", "VGEN_JOB_DEADLINE_S=30", \
	"VGEN_VIDEO_POLL_MS=100", "VGEN_SIM_MS=600"

static void
start_worker(struct wenv *e, struct fx_worker *w, const char *provider)
{
	char prov[64], url[128];
	const char *env[] = { prov, url, COMMON_ENV, NULL };

	snprintf(prov, sizeof(prov), "VGEN_PROVIDER=%s", provider);
	snprintf(url, sizeof(url), "VGEN_PROVIDER_URL=%s", e->fake.url);
	assert_int_equal(fx_worker_start(w, &e->pg, env), 0);
}

/* Checks a completed job: one video with model, URL, metadata. */
static void
assert_video(struct wenv *e, const struct store_job *job, const char *model)
{
	char path[256];

	assert_int_equal(job->status, STORE_JOB_COMPLETED);
	assert_int_equal(job->progress, 100);
	assert_true(job->video_id[0] != '\0');
	assert_int_equal(videos_of(e, job->id), 1);
	assert_int_equal(sql_long(e, "SELECT count(*) FROM videos WHERE id = "
	    "'%s' AND model_used = '%s' AND video_url LIKE 'file://%%' AND "
	    "metadata ? 'provider'", job->video_id, model), 1);
	snprintf(path, sizeof(path), "SELECT 1 FROM videos WHERE id = '%s'",
	    job->video_id);
	assert_int_equal(sql_long(e, "%s", path), 1);
}

static void
run_provider(struct wenv *e, const char *provider)
{
	struct fx_worker w;
	struct store_job job = { 0 };
	char id[40], id2[40], text[64];
	int saw_progress = 0;

	snprintf(text, sizeof(text), "a cat on %s", provider);
	start_worker(e, &w, provider);
	job_new(e, text, STORE_PORTRAIT, id);
	strcat(text, " wide");
	job_new(e, text, STORE_LANDSCAPE, id2);
	assert_int_equal(wait_job(e, id, STORE_JOB_PROCESSING, 10000, &job),
	    STORE_JOB_PROCESSING);
	while (job.status == STORE_JOB_PROCESSING) {
		if (job.progress > 0 && job.progress < 100)
			saw_progress = 1;
		(void)wait_job(e, id, STORE_JOB_COMPLETED, 50, &job);
		if (job.status == STORE_JOB_PENDING)
			break;
	}
	assert_int_equal(wait_job(e, id, 0, 15000, &job), STORE_JOB_COMPLETED);
	assert_video(e, &job, "sora_video2-portrait");
	assert_int_equal(job.attempts, 1);
	assert_true(saw_progress);
	assert_int_equal(wait_job(e, id2, 0, 15000, &job), STORE_JOB_COMPLETED);
	assert_video(e, &job, "sora_video2-landscape");
	store_job_fini(&job);
	assert_int_equal(fx_worker_stop(&w), 0);
}

static void
test_simulated_completes_with_one_video(void **state)
{
	run_provider(*state, "simulated");
}

static void
test_chat_sse_completes_with_one_video(void **state)
{
	run_provider(*state, "chat-sse");
}

static void
test_openai_videos_completes_with_one_create(void **state)
{
	struct wenv *e = *state;
	char prompt[128];

	run_provider(e, "openai-videos");
	prompt_of(e, "a cat on openai-videos", prompt, sizeof(prompt));
	assert_int_equal(fx_fake_sora_stat(&e->fake, prompt, "video_creates"),
	    1);
}

/* One fault: the prompt, and how the job must end. */
struct fault_case {
	const char *prompt;
	int status;		/* completed or failed */
	int attempts;		/* 0: any */
	const char *error_has;	/* failed: a word of error_message, or NULL */
};

static void
run_faults(struct wenv *e, const char *provider, const struct fault_case *fc,
    size_t n, int timeout_ms)
{
	struct fx_worker w;
	struct store_job job = { 0 };
	char (*ids)[40] = calloc(n, sizeof(*ids));
	int bad = 0;

	assert_non_null(ids);
	start_worker(e, &w, provider);
	for (size_t i = 0; i < n; i++)
		job_new(e, fc[i].prompt, STORE_PORTRAIT, ids[i]);
	for (size_t i = 0; i < n; i++) {
		int st = wait_job(e, ids[i], 0, timeout_ms, &job);
		bool ok = st == fc[i].status && (fc[i].attempts == 0 ||
		    job.attempts == fc[i].attempts);

		if (st == STORE_JOB_FAILED) {
			ok = ok && job.error_message != NULL &&
			    job.error_message[0] != '\0' &&
			    videos_of(e, ids[i]) == 0;
			if (fc[i].error_has != NULL)
				ok = ok && strcasestr(job.error_message,
				    fc[i].error_has) != NULL;
		} else if (st == STORE_JOB_COMPLETED) {
			ok = ok && videos_of(e, ids[i]) == 1;
		}
		fprintf(stderr, "%-4s %-30s %s attempts=%d error=%s\n",
		    ok ? "ok" : "BAD", fc[i].prompt,
		    store_job_status_name(st), job.attempts,
		    job.error_message ? job.error_message : "-");
		bad += !ok;
	}
	store_job_fini(&job);
	free(ids);
	if (bad)
		fx_worker_log_tail(&w);
	assert_int_equal(fx_worker_stop(&w), 0);
	assert_int_equal(bad, 0);
}

static void
test_chat_sse_faults_end_as_specified(void **state)
{
	static const struct fault_case fc[] = {
		{ "c1 [fault:500*1]", STORE_JOB_COMPLETED, 2, NULL },
		{ "c2 [fault:502-html*1]", STORE_JOB_COMPLETED, 2, NULL },
		{ "c3 [fault:429*1]", STORE_JOB_COMPLETED, 1, NULL },
		{ "c4 [fault:429-ms*1]", STORE_JOB_COMPLETED, 1, NULL },
		{ "c5 [fault:quota]", STORE_JOB_FAILED, 1, "quota" },
		{ "c6 [fault:400]", STORE_JOB_FAILED, 1, NULL },
		{ "c7 [fault:401]", STORE_JOB_FAILED, 1, NULL },
		{ "c8 [fault:policy]", STORE_JOB_FAILED, 1, NULL },
		{ "c9 [fault:no-url]", STORE_JOB_FAILED, 1, NULL },
		{ "c10 [fault:drop*1]", STORE_JOB_COMPLETED, 2, NULL },
		{ "c11 [fault:drop-after-url]", STORE_JOB_COMPLETED, 1, NULL },
		{ "c12 [fault:malformed]", STORE_JOB_COMPLETED, 1, NULL },
		{ "c13 [fault:fail-late]", STORE_JOB_FAILED, 0, NULL },
		{ "c14 [fault:stall]", STORE_JOB_FAILED, 3, NULL },
		{ "c15 [fault:drop]", STORE_JOB_FAILED, 3, NULL },
	};

	run_faults(*state, "chat-sse", fc, sizeof(fc) / sizeof(fc[0]), 40000);
}

static void
test_openai_videos_faults_end_as_specified(void **state)
{
	static const struct fault_case fc[] = {
		{ "v1 [fault:500*1]", STORE_JOB_COMPLETED, 2, NULL },
		{ "v2 [fault:429*1]", STORE_JOB_COMPLETED, 1, NULL },
		{ "v3 [fault:quota]", STORE_JOB_FAILED, 1, "quota" },
		{ "v4 [fault:400]", STORE_JOB_FAILED, 1, NULL },
		{ "v5 [fault:policy]", STORE_JOB_FAILED, 1, NULL },
		{ "v6 [fault:no-url]", STORE_JOB_FAILED, 1, NULL },
		{ "v7 [fault:content-redirect]", STORE_JOB_COMPLETED, 1, NULL },
		{ "v8 [fault:slow]", STORE_JOB_COMPLETED, 1, NULL },
		{ "v9 [fault:drop@content*1]", STORE_JOB_COMPLETED, 2, NULL },
	};

	run_faults(*state, "openai-videos", fc, sizeof(fc) / sizeof(fc[0]),
	    30000);
}

static void
test_hygiene_refuses_and_caps(void **state)
{
	struct wenv *e = *state;
	static const struct fault_case fc[] = {
		{ "h1 [fault:url-file]", STORE_JOB_FAILED, 1, NULL },
		{ "h2 [fault:url-loopback]", STORE_JOB_FAILED, 1, NULL },
		{ "h3 [fault:url-redirect-private]", STORE_JOB_FAILED, 1, NULL },
		{ "h4 [fault:huge-body]", STORE_JOB_FAILED, 1, NULL },
		{ "h5 [fault:chunked-20m]", STORE_JOB_FAILED, 1, NULL },
		{ "h6 [fault:huge-line]", STORE_JOB_FAILED, 1, NULL },
	};

	run_faults(e, "chat-sse", fc, sizeof(fc) / sizeof(fc[0]), 30000);
	assert_int_equal(fx_fake_sora_stat(&e->fake, NULL, "decoy_downloads"),
	    0);
}

static void
test_hygiene_downloads_are_capped(void **state)
{
	struct wenv *e = *state;
	static const struct fault_case fc[] = {
		{ "d1 [fault:huge-body@content]", STORE_JOB_FAILED, 1, NULL },
		{ "d2 [fault:chunked-20m@content]", STORE_JOB_FAILED, 1, NULL },
		{ "d3 [fault:url-redirect-private]", STORE_JOB_FAILED, 1, NULL },
	};
	struct fx_worker w;
	char prov[] = "VGEN_PROVIDER=openai-videos", url[128];
	const char *env[] = { prov, url, COMMON_ENV, "VGEN_MEDIA_MAX=4194304",
		NULL };
	struct store_job job = { 0 };
	char id[3][40];

	snprintf(url, sizeof(url), "VGEN_PROVIDER_URL=%s", e->fake.url);
	assert_int_equal(fx_worker_start(&w, &e->pg, env), 0);
	for (int i = 0; i < 3; i++)
		job_new(e, fc[i].prompt, STORE_PORTRAIT, id[i]);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(wait_job(e, id[i], 0, 30000, &job),
		    STORE_JOB_FAILED);
		fprintf(stderr, "%s: %s\n", fc[i].prompt, job.error_message);
		assert_int_equal(videos_of(e, id[i]), 0);
	}
	store_job_fini(&job);
	assert_int_equal(fx_worker_stop(&w), 0);
	assert_int_equal(fx_fake_sora_stat(&e->fake, NULL, "decoy_downloads"),
	    0);
}

static void
test_429_far_is_clamped(void **state)
{
	struct wenv *e = *state;
	struct fx_worker w;
	struct store_job job = { 0 };
	char id[40];
	long wait_s;

	start_worker(e, &w, "chat-sse");
	job_new(e, "far [fault:429-far]", STORE_PORTRAIT, id);
	/* Claimed, refused with a date in 2090, back to pending. */
	for (int i = 0; i < 500; i++) {
		(void)wait_job(e, id, STORE_JOB_PENDING, 0, &job);
		if (job.error_message != NULL)
			break;
		fx_sleep_ms(20);
	}
	assert_int_equal(job.status, STORE_JOB_PENDING);
	assert_int_equal(job.attempts, 0);
	wait_s = sql_long(e, "SELECT extract(epoch FROM run_after - now())"
	    "::int FROM video_jobs WHERE id = '%s'", id);
	fprintf(stderr, "429-far: snoozed %ld s\n", wait_s);
	assert_true(wait_s > 60 && wait_s <= 600);
	store_job_fini(&job);
	assert_int_equal(store_job_cancel(e->db, e->user, id, &job), 0);
	store_job_fini(&job);
	assert_int_equal(fx_worker_stop(&w), 0);
}

static void
test_cancel_stops_the_stream_within_a_second(void **state)
{
	struct wenv *e = *state;
	struct fx_worker w;
	struct store_job job = { 0 };
	char id[40], line[128];
	int waited;

	start_worker(e, &w, "chat-sse");
	job_new(e, "cancel me [fault:never-ends]", STORE_PORTRAIT, id);
	assert_int_equal(wait_job(e, id, STORE_JOB_PROCESSING, 10000, &job),
	    STORE_JOB_PROCESSING);
	fx_sleep_ms(300);
	store_job_fini(&job);
	assert_int_equal(store_job_cancel(e->db, e->user, id, &job), 0);
	assert_int_equal(job.status, STORE_JOB_FAILED);
	snprintf(line, sizeof(line), "job dropped job=%s", id);
	for (waited = 0; waited < 1000 && !fx_worker_log_has(&w, line);
	    waited += 10)
		fx_sleep_ms(10);
	fprintf(stderr, "cancel noticed after %d ms\n", waited);
	assert_true(waited < 1000);
	store_job_fini(&job);
	assert_int_equal(store_job_get_any(e->db, id, &job), 0);
	assert_int_equal(job.status, STORE_JOB_FAILED);
	assert_string_equal(job.error_message, "canceled");
	assert_int_equal(videos_of(e, id), 0);
	store_job_fini(&job);
	assert_int_equal(fx_worker_stop(&w), 0);
}

static int
setup(void **state)
{
	return wenv_setup((struct wenv **)state, fake_args);
}

static int
teardown(void **state)
{
	wenv_teardown(*state);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simulated_completes_with_one_video),
		cmocka_unit_test(test_chat_sse_completes_with_one_video),
		cmocka_unit_test(test_openai_videos_completes_with_one_create),
		cmocka_unit_test(test_chat_sse_faults_end_as_specified),
		cmocka_unit_test(test_openai_videos_faults_end_as_specified),
		cmocka_unit_test(test_hygiene_refuses_and_caps),
		cmocka_unit_test(test_hygiene_downloads_are_capped),
		cmocka_unit_test(test_429_far_is_clamped),
		cmocka_unit_test(test_cancel_stops_the_stream_within_a_second),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
