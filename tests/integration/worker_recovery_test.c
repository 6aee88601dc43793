/*
 * tests/integration/worker_recovery_test.c: vgen-worker processes that
 * die, pause, stop and race: SIGKILL mid-generation (the lease runs out,
 * another worker finishes; openai-videos resumes without a second
 * create), SIGSTOP past the lease (late writes are fenced off), SIGTERM
 * (grace, then release), and two workers over 200 jobs.
 */
#include <signal.h>

#include "worker_test_util.h"

static const char *const fake_args[] = { "--step-ms", "300", "--steps", "10",
	NULL };

#define COMMON_ENV "VGEN_POLL_MS=200", "VGEN_BACKOFF_BASE_MS=200", \
	"VGEN_IDLE_TIMEOUT_S=5", "VGEN_JOB_DEADLINE_S=60", \
	"VGEN_VIDEO_POLL_MS=100", "VGEN_LEASE_S=2"

static void
start_worker(struct wenv *e, struct fx_worker *w, const char *provider,
    const char *more)
{
	char prov[64], url[128];
	const char *env[] = { prov, url, COMMON_ENV, "VGEN_SIM_MS=60000", more,
		NULL };

	snprintf(prov, sizeof(prov), "VGEN_PROVIDER=%s", provider);
	snprintf(url, sizeof(url), "VGEN_PROVIDER_URL=%s", e->fake.url);
	assert_int_equal(fx_worker_start(w, &e->pg, env), 0);
}

static void
test_sigkill_openai_videos_resumes_without_second_create(void **state)
{
	struct wenv *e = *state;
	struct fx_worker a, b;
	struct store_job job = { 0 };
	char id[40], prompt[128];
	int i;

	start_worker(e, &a, "openai-videos", NULL);
	job_new(e, "killed while polling", STORE_PORTRAIT, id);
	for (i = 0; i < 500; i++) {
		(void)wait_job(e, id, STORE_JOB_PROCESSING, 0, &job);
		if (job.external_job_id != NULL && job.progress > 0)
			break;
		fx_sleep_ms(20);
	}
	assert_non_null(job.external_job_id);
	fx_worker_kill(&a);
	start_worker(e, &b, "openai-videos", NULL);
	assert_int_equal(wait_job(e, id, 0, 30000, &job), STORE_JOB_COMPLETED);
	assert_int_equal(job.attempts, 2);
	assert_int_equal(videos_of(e, id), 1);
	prompt_of(e, "killed while polling", prompt, sizeof(prompt));
	assert_int_equal(fx_fake_sora_stat(&e->fake, prompt, "video_creates"),
	    1);
	assert_true(fx_worker_log_has(&b, "resume=1"));
	store_job_fini(&job);
	assert_int_equal(fx_worker_stop(&b), 0);
	fx_worker_stop(&a);
}

static void
test_sigkill_chat_sse_mid_stream_another_worker_finishes(void **state)
{
	struct wenv *e = *state;
	struct fx_worker a, b;
	struct store_job job = { 0 };
	char id[40];

	start_worker(e, &a, "chat-sse", NULL);
	job_new(e, "killed mid stream", STORE_LANDSCAPE, id);
	for (int i = 0; i < 500; i++) {
		(void)wait_job(e, id, STORE_JOB_PROCESSING, 0, &job);
		if (job.progress > 0)
			break;
		fx_sleep_ms(20);
	}
	assert_int_equal(job.status, STORE_JOB_PROCESSING);
	fx_worker_kill(&a);
	start_worker(e, &b, "chat-sse", NULL);
	assert_int_equal(wait_job(e, id, 0, 30000, &job), STORE_JOB_COMPLETED);
	assert_int_equal(videos_of(e, id), 1);
	store_job_fini(&job);
	assert_int_equal(fx_worker_stop(&b), 0);
	fx_worker_stop(&a);
}

static void
test_sigstop_past_lease_late_writes_are_fenced(void **state)
{
	struct wenv *e = *state;
	struct fx_worker a, b;
	struct store_job job = { 0 };
	char id[40], line[128];
	int waited;

	start_worker(e, &a, "chat-sse", NULL);
	job_new(e, "paused worker", STORE_PORTRAIT, id);
	for (int i = 0; i < 500; i++) {
		(void)wait_job(e, id, STORE_JOB_PROCESSING, 0, &job);
		if (job.progress > 0)
			break;
		fx_sleep_ms(20);
	}
	assert_int_equal(job.status, STORE_JOB_PROCESSING);
	assert_int_equal(fx_worker_signal(&a, SIGSTOP), 0);
	start_worker(e, &b, "chat-sse", NULL);
	assert_int_equal(wait_job(e, id, 0, 30000, &job), STORE_JOB_COMPLETED);
	assert_int_equal(job.attempts, 2);
	assert_int_equal(fx_worker_signal(&a, SIGCONT), 0);
	snprintf(line, sizeof(line), "job=%s attempt=1", id);
	for (waited = 0; waited < 5000; waited += 50) {
		if (fx_worker_log_has(&a, "job lost") ||
		    fx_worker_log_has(&a, "job dropped"))
			break;
		fx_sleep_ms(50);
	}
	assert_true(waited < 5000);
	store_job_fini(&job);
	assert_int_equal(store_job_get_any(e->db, id, &job), 0);
	assert_int_equal(job.status, STORE_JOB_COMPLETED);
	assert_int_equal(job.attempts, 2);
	assert_int_equal(videos_of(e, id), 1);
	assert_int_equal(sql_long(e, "SELECT count(*) FROM videos WHERE "
	    "prompt LIKE 'paused worker%%'"), 1);
	store_job_fini(&job);
	assert_int_equal(fx_worker_stop(&a), 0);
	assert_int_equal(fx_worker_stop(&b), 0);
}

static void
test_sigterm_releases_jobs_after_grace(void **state)
{
	struct wenv *e = *state;
	struct fx_worker a;
	struct store_job job = { 0 };
	char id[3][40];

	start_worker(e, &a, "simulated", "VGEN_GRACE_S=1");
	for (int i = 0; i < 3; i++)
		job_new(e, "released on sigterm", STORE_PORTRAIT, id[i]);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wait_job(e, id[i], STORE_JOB_PROCESSING, 10000,
		    &job), STORE_JOB_PROCESSING);
	assert_int_equal(fx_worker_signal(&a, SIGTERM), 0);
	assert_int_equal(fx_worker_wait(&a, 5000), 0);
	for (int i = 0; i < 3; i++) {
		store_job_fini(&job);
		assert_int_equal(store_job_get_any(e->db, id[i], &job), 0);
		assert_int_equal(job.status, STORE_JOB_PENDING);
		assert_int_equal(job.attempts, 0);
		assert_null(job.locked_by);
	}
	store_job_fini(&job);
	/* Leave nothing pending for the next test. */
	assert_int_equal(fx_pg_exec(&e->pg, "UPDATE video_jobs SET status = "
	    "'failed' WHERE status = 'pending'"), 0);
	fx_worker_stop(&a);
}

static void
test_two_workers_race_over_200_jobs(void **state)
{
	struct wenv *e = *state;
	struct fx_worker a, b;
	static char ids[200][40];
	struct store_job job = { 0 };
	int64_t t0;
	char text[64];

	start_worker(e, &a, "simulated", "VGEN_SIM_MS=300");
	start_worker(e, &b, "simulated", "VGEN_SIM_MS=300");
	t0 = vg_now_ms();
	for (int i = 0; i < 200; i++) {
		snprintf(text, sizeof(text), "race %d", i);
		job_new(e, text, i % 2 ? STORE_PORTRAIT : STORE_LANDSCAPE,
		    ids[i]);
	}
	for (int i = 0; i < 200; i++)
		assert_int_equal(wait_job(e, ids[i], 0, 30000, &job),
		    STORE_JOB_COMPLETED);
	fprintf(stderr, "200 jobs on two workers in %lld ms\n",
	    (long long)(vg_now_ms() - t0));
	store_job_fini(&job);
	assert_int_equal(sql_long(e, "SELECT count(*) FROM videos WHERE "
	    "prompt LIKE 'race %%'"), 200);
	assert_int_equal(sql_long(e, "SELECT count(DISTINCT video_id) FROM "
	    "video_jobs WHERE prompt LIKE 'race %%' AND status = "
	    "'completed' AND attempts = 1"), 200);
	assert_false(fx_worker_log_has(&a, "job lost"));
	assert_false(fx_worker_log_has(&b, "job lost"));
	assert_int_equal(fx_worker_stop(&a), 0);
	assert_int_equal(fx_worker_stop(&b), 0);
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
		cmocka_unit_test(
		    test_sigkill_openai_videos_resumes_without_second_create),
		cmocka_unit_test(
		    test_sigkill_chat_sse_mid_stream_another_worker_finishes),
		cmocka_unit_test(test_sigstop_past_lease_late_writes_are_fenced),
		cmocka_unit_test(test_sigterm_releases_jobs_after_grace),
		cmocka_unit_test(test_two_workers_race_over_200_jobs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
