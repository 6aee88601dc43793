/*
 * tests/integration/client_watch_test.c: vgen_watch, the client's
 * watcher over the progress-event pub socket.  Jobs are moved behind the
 * server's back with fx_pg_exec, as a worker would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"
#include "vgen.h"


#define PENDING VGEN__V1__JOB_STATUS__PENDING
#define PROCESSING VGEN__V1__JOB_STATUS__PROCESSING
#define COMPLETED VGEN__V1__JOB_STATUS__COMPLETED

static vgen_client *
user_client(struct fx_stack *fx, const char *tag, struct fx_user *u)
{
	vgen_client *c = fx_user_client(&fx->srv, tag, u);

	assert_non_null(c);
	return c;
}

static Vgen__V1__VideoJob *
create(vgen_client *c, const char *prompt)
{
	Vgen__V1__VideoJob *j = NULL;

	assert_int_equal(fx_job_create(c, prompt, VGEN__V1__ORIENTATION__LANDSCAPE, &j), 0);
	return j;
}

static void
job_sql(struct fx_stack *fx, const char *id, const char *set)
{
	assert_int_equal(fx_job_update(&fx->pg, id, set), 0);
}

static void
job_free(Vgen__V1__VideoJob *j)
{
	if (j != NULL)
		protobuf_c_message_free_unpacked(&j->base, NULL);
}

static const char *const steps[] = {
	"status = 'processing', progress = 10",
	"progress = 50",
	"status = 'completed', progress = 100, completed_at = now()",
};

/*
 * Events drive the watch: with the quiet re-read pushed far out, every
 * step arrives through the pub socket.  Then all steps at once: results
 * until done are strictly newer and monotonic, ending COMPLETED.
 */
static void
test_watch_follows_progress(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "watch", &u);
	Vgen__V1__VideoJob *j = create(c, "a watched fox"), *got = NULL;
	static const int want[] = { 10, 50, 100 };
	vgen_watch *w = NULL;
	uint64_t last;
	int progress, n;
	size_t i;

	assert_int_equal(vgen_watch_open(c, fx->srv.events_url, u.id, j->id,
	    &w), 0);
	vgen_watch_set_quiet(w, 60000);
	/* The first read. */
	assert_int_equal(vgen_watch_next(w, 5000, &got), 0);
	assert_int_equal(got->status, PENDING);
	assert_string_equal(got->id, j->id);
	assert_false(vgen_watch_done(got));
	last = got->version;
	progress = got->progress;
	job_free(got);
	/* Nothing newer yet. */
	assert_int_equal(vgen_watch_next(w, 200, &got), 4);
	assert_null(got);

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		job_sql(fx, j->id, steps[i]);
		assert_int_equal(vgen_watch_next(w, 10000, &got), 0);
		assert_true(got->version > last);
		assert_int_equal(got->progress, want[i]);
		assert_true(got->progress >= progress);
		assert_int_equal(vgen_watch_done(got), i == 2);
		last = got->version;
		progress = got->progress;
		job_free(got);
	}
	vgen_watch_close(w);
	job_free(j);

	/* A second job, moved in a burst, quiet re-read at the default. */
	j = create(c, "a hurried fox");
	assert_int_equal(vgen_watch_open(c, fx->srv.events_url, u.id, j->id,
	    &w), 0);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		job_sql(fx, j->id, steps[i]);
	last = 0;
	progress = 0;
	got = NULL;
	for (n = 0; n < 10; n++) {
		assert_int_equal(vgen_watch_next(w, 10000, &got), 0);
		assert_true(got->version > last);
		assert_true(got->progress >= progress);
		last = got->version;
		progress = got->progress;
		if (vgen_watch_done(got))
			break;
		job_free(got);
	}
	assert_true(n < 10);
	assert_int_equal(got->status, COMPLETED);
	assert_int_equal(got->progress, 100);
	job_free(got);
	vgen_watch_close(w);
	job_free(j);
	fx_user_fini(&u);
	vgen_client_close(c);
}

/* A watcher that comes after the end reads the final state at once. */
static void
test_late_watcher_reads_the_final_state(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "watch-late", &u);
	Vgen__V1__VideoJob *j = create(c, "a late fox"), *got = NULL;
	vgen_watch *w = NULL;
	size_t i;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		job_sql(fx, j->id, steps[i]);
	assert_int_equal(vgen_watch_open(c, fx->srv.events_url, u.id, j->id,
	    &w), 0);
	assert_int_equal(vgen_watch_next(w, 0, &got), 0);
	assert_int_equal(got->status, COMPLETED);
	assert_int_equal(got->progress, 100);
	assert_true(vgen_watch_done(got));
	job_free(got);
	/* Nothing newer will follow. */
	assert_int_equal(vgen_watch_next(w, 300, &got), 4);
	assert_null(got);
	vgen_watch_close(w);
	job_free(j);
	fx_user_fini(&u);
	vgen_client_close(c);
}

/*
 * With every event lost (a pub socket nobody publishes on), the quiet
 * re-read still brings the watcher up to date.
 */
static void
test_quiet_reread_covers_lost_events(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user u = { 0 };
	vgen_client *c = user_client(fx, "watch-quiet", &u);
	Vgen__V1__VideoJob *j = create(c, "a lonely fox"), *got = NULL;
	vgen_watch *w = NULL;
	char url[FX_PATH_MAX + 32];

	snprintf(url, sizeof(url), "%s.nobody", fx->srv.events_url);
	assert_int_equal(vgen_watch_open(c, url, u.id, j->id, &w), 0);
	vgen_watch_set_quiet(w, 200);
	assert_int_equal(vgen_watch_next(w, 5000, &got), 0);
	assert_int_equal(got->status, PENDING);
	job_free(got);
	job_sql(fx, j->id, "status = 'processing', progress = 33");
	assert_int_equal(vgen_watch_next(w, 5000, &got), 0);
	assert_int_equal(got->status, PROCESSING);
	assert_int_equal(got->progress, 33);
	job_free(got);
	vgen_watch_close(w);
	job_free(j);
	fx_user_fini(&u);
	vgen_client_close(c);
}

/* Another user's job: GetJob's NOT_FOUND; bad arguments refused. */
static void
test_open_errors(void **state)
{
	struct fx_stack *fx = *state;
	struct fx_user a = { 0 }, b = { 0 };
	vgen_client *ca = user_client(fx, "watch-a", &a);
	vgen_client *cb = user_client(fx, "watch-b", &b);
	Vgen__V1__VideoJob *j = create(ca, "a private fox");
	vgen_watch *w = (vgen_watch *)1;

	assert_int_equal(vgen_watch_open(cb, fx->srv.events_url, a.id, j->id,
	    &w), 5);
	assert_null(w);
	assert_int_equal(vgen_watch_open(ca, fx->srv.events_url, "a.b",
	    j->id, &w), 3);
	assert_int_equal(vgen_watch_open(ca, fx->srv.events_url, a.id, "",
	    &w), 3);
	assert_int_equal(vgen_watch_open(ca, "nope://x", a.id, j->id, &w), 3);
	assert_null(w);
	vgen_watch_close(NULL);
	assert_false(vgen_watch_done(NULL));
	job_free(j);
	fx_user_fini(&a);
	fx_user_fini(&b);
	vgen_client_close(ca);
	vgen_client_close(cb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_watch_follows_progress),
		cmocka_unit_test(test_late_watcher_reads_the_final_state),
		cmocka_unit_test(test_quiet_reread_covers_lost_events),
		cmocka_unit_test(test_open_errors),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, fx_stack_setup,
	    fx_stack_teardown);
}
