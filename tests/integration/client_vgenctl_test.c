/*
 * tests/integration/client_vgenctl_test.c: vgenctl as a user runs it, a
 * child process against vgen-server on a private PostgreSQL (no worker:
 * jobs stay pending unless canceled).  Each test gets its own config
 * folder, so its own token file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "fx.h"

#define VGENCTL VGEN_BIN_DIR "/vgenctl"
#define OUT_MAX (256 * 1024)
#define PASSWORD "password1"

extern char **environ;

/* One vgenctl run: where it talks to, and what it printed. */
struct run {
	const char *server;	/* VGEN_SERVER */
	const char *xdg;	/* XDG_CONFIG_HOME */
	pid_t pid;
	int out_fd, err_fd;
	char out[OUT_MAX];
	char err[OUT_MAX];
	int status;		/* exit code, or 128 + signal */
};

/*
 * run_start starts vgenctl with `argv` (NULL-terminated, without the
 * program) in an environment of ours without VGEN_* and
 * XDG_CONFIG_HOME, plus VGEN_SERVER, XDG_CONFIG_HOME and VGEN_PASSWORD.
 */
static void
run_start(struct run *r, const char *const *argv)
{
	char *args[32], *env[256], srv[FX_PATH_MAX + 16], xdg[FX_PATH_MAX + 32];
	int out[2], err[2];
	size_t i, n = 0;

	args[0] = "vgenctl";
	for (i = 0; argv[i] != NULL && i + 2 < 32; i++)
		args[i + 1] = (char *)argv[i];
	args[i + 1] = NULL;
	snprintf(srv, sizeof(srv), "VGEN_SERVER=%s", r->server);
	snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s", r->xdg);
	for (i = 0; environ[i] != NULL && n + 5 < 256; i++)
		if (strncmp(environ[i], "VGEN_", 5) != 0 &&
		    strncmp(environ[i], "XDG_CONFIG_HOME=", 16) != 0)
			env[n++] = environ[i];
	env[n++] = srv;
	env[n++] = xdg;
	env[n++] = "VGEN_PASSWORD=" PASSWORD;
	env[n] = NULL;

	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		execve(VGENCTL, args, env);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	r->out_fd = out[0];
	r->err_fd = err[0];
}

/* run_finish reads all output, reaps the child and returns its status. */
static int
run_finish(struct run *r)
{
	struct pollfd pfd[2] = { { r->out_fd, POLLIN, 0 },
	    { r->err_fd, POLLIN, 0 } };
	size_t len[2] = { 0, 0 };
	char *buf[2] = { r->out, r->err };
	int open_fds = 2, ws = 0, i;
	ssize_t n;

	while (open_fds > 0) {
		if (poll(pfd, 2, 60000) <= 0)
			break;
		for (i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			n = read(pfd[i].fd, buf[i] + len[i],
			    OUT_MAX - 1 - len[i]);
			if (n > 0) {
				len[i] += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			close(pfd[i].fd);
			pfd[i].fd = -1;
			open_fds--;
		}
	}
	for (i = 0; i < 2; i++) {
		buf[i][len[i]] = '\0';
		if (pfd[i].fd >= 0)
			close(pfd[i].fd);
	}
	assert_int_equal(fx_reap(r->pid, 60000, &ws), 0);
	r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	if (getenv("VGENCTL_TEST_VERBOSE") != NULL)
		fprintf(stderr, "-- exit %d\n-- stdout:\n%s-- stderr:\n%s",
		    r->status, r->out, r->err);
	return r->status;
}

static int
run(struct run *r, const char *const *argv)
{
	run_start(r, argv);
	return run_finish(r);
}

#define RUN(r, ...) run((r), (const char *const[]){ __VA_ARGS__, NULL })

/* A test's own config folder and the account logged in there. */
struct user {
	char xdg[FX_DIR_MAX];
	char email[128];
	int slot;		/* removes xdg even when an assertion fails */
};

static struct run *
run_new(struct fx_stack *fx, struct user *u)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->server = fx->srv.rpc_url;
	r->xdg = u->xdg;
	return r;
}

static void
user_setup(struct user *u)
{
	assert_int_equal(fx_tmpdir(u->xdg, sizeof(u->xdg), "ctl"), 0);
	u->slot = fx_cleanup_add(0, SIGTERM, u->xdg);
	fx_unique_email(u->email, sizeof(u->email), "ctl");
}

static void
user_teardown(struct user *u)
{
	fx_cleanup_del(u->slot);
	fx_rmtree(u->xdg);
}

/* json_out parses a run's stdout as one JSON value. */
static json_t *
json_out(const struct run *r)
{
	json_error_t e;
	json_t *v = json_loads(r->out, 0, &e);

	if (v == NULL)
		fprintf(stderr, "not JSON (%s): %s\n", e.text, r->out);
	assert_non_null(v);
	return v;
}

static const char *
str_member(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	assert_non_null(s);
	return s;
}

static void
test_account_and_jobs(void **state)
{
	struct fx_stack *fx = *state;
	struct user u;
	struct run *r;
	char path[FX_PATH_MAX + 32], id[64], other[64];
	struct stat sb;
	json_t *v, *jobs, *j;
	bool found;
	int rc;

	user_setup(&u);
	r = run_new(fx, &u);

	/* register -> login: the token file is private */
	assert_int_equal(RUN(r, "register", "--email", u.email), 0);
	assert_non_null(strstr(r->out, u.email));
	assert_int_equal(RUN(r, "login", "--email", u.email), 0);
	snprintf(path, sizeof(path), "%s/vgen/token", u.xdg);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(RUN(r, "--json", "me"), 0);
	v = json_out(r);
	assert_string_equal(str_member(v, "email"), u.email);
	json_decref(v);

	/* jobs create, get, active */
	assert_int_equal(RUN(r, "--json", "jobs", "create", "--prompt",
	    "a cat surfing at dawn", "--orientation", "portrait"), 0);
	v = json_out(r);
	snprintf(id, sizeof(id), "%s", str_member(v, "id"));
	assert_string_equal(str_member(v, "status"), "PENDING");
	assert_string_equal(str_member(v, "orientation"), "PORTRAIT");
	json_decref(v);

	assert_int_equal(RUN(r, "jobs", "create", "--prompt", "a dog in snow",
	    "--orientation", "landscape", "--idempotency-key", "k-1"), 0);
	assert_non_null(strstr(r->out, "status:"));
	assert_non_null(strstr(r->out, "LANDSCAPE"));

	assert_int_equal(RUN(r, "jobs", "get", id), 0);
	assert_non_null(strstr(r->out, id));
	assert_non_null(strstr(r->out, "a cat surfing at dawn"));

	assert_int_equal(RUN(r, "jobs", "active"), 0);
	assert_non_null(strstr(r->out, "PROMPT"));
	assert_non_null(strstr(r->out, id));
	assert_non_null(strstr(r->out, "pending"));

	/* jobs list --json: every field, newest first */
	assert_int_equal(RUN(r, "jobs", "list", "--json"), 0);
	v = json_out(r);
	jobs = json_object_get(v, "jobs");
	assert_int_equal(json_array_size(jobs), 2);
	assert_string_equal(str_member(v, "next_page_token"), "");
	j = json_array_get(jobs, 0);
	assert_string_equal(str_member(j, "prompt"), "a dog in snow");
	assert_string_equal(str_member(j, "orientation"), "LANDSCAPE");
	assert_string_equal(str_member(j, "idempotency_key"), "k-1");
	j = json_array_get(jobs, 1);
	assert_string_equal(str_member(j, "id"), id);
	assert_string_equal(str_member(j, "status"), "PENDING");
	assert_string_equal(str_member(j, "error_message"), "");
	assert_string_equal(str_member(j, "video_id"), "");
	assert_true(json_is_integer(json_object_get(j, "progress")));
	assert_true(json_is_integer(json_object_get(j, "version")));
	assert_true(json_is_integer(json_object_get(j, "max_attempts")));
	assert_true(json_is_string(json_object_get(j, "created_at")));
	assert_true(json_is_null(json_object_get(j, "completed_at")));
	snprintf(other, sizeof(other), "%s",
	    str_member(json_array_get(jobs, 0), "id"));
	json_decref(v);

	/* one per page, all pages */
	assert_int_equal(RUN(r, "--json", "jobs", "list", "--page-size", "1",
	    "--all"), 0);
	v = json_out(r);
	assert_int_equal(json_array_size(json_object_get(v, "jobs")), 2);
	json_decref(v);
	assert_int_equal(RUN(r, "jobs", "list", "--page-size", "1"), 0);
	assert_non_null(strstr(r->err, "--page-token"));

	/* cancel -> failed "canceled" */
	assert_int_equal(RUN(r, "--json", "jobs", "cancel", id), 0);
	v = json_out(r);
	assert_string_equal(str_member(v, "status"), "FAILED");
	assert_string_equal(str_member(v, "error_message"), "canceled");
	json_decref(v);

	assert_int_equal(RUN(r, "--json", "jobs", "list", "--status",
	    "failed"), 0);
	v = json_out(r);
	jobs = json_object_get(v, "jobs");
	assert_int_equal(json_array_size(jobs), 1);
	assert_string_equal(str_member(json_array_get(jobs, 0), "id"), id);
	json_decref(v);
	assert_int_equal(RUN(r, "jobs", "list", "--status", "pending"), 0);
	assert_non_null(strstr(r->out, other));
	assert_null(strstr(r->out, id));

	/* watching a job that has ended returns at once: failed is 1 */
	assert_int_equal(RUN(r, "jobs", "watch", id), 1);
	assert_non_null(strstr(r->err, "canceled"));

	/* a job that is not there */
	assert_int_equal(RUN(r, "jobs", "get",
	    "7d1f5b1e-8a34-4c1e-9a8e-2b6f0c7e4d21"), 1);
	assert_non_null(strstr(r->err, "NOT_FOUND"));

	/* videos: the server may not have VideoService yet; either way
	 * vgenctl answers with a status, not a crash */
	rc = RUN(r, "--json", "videos", "list");
	assert_true(rc == 0 || rc == 1);
	if (rc == 0) {
		v = json_out(r);
		assert_true(json_is_array(json_object_get(v, "videos")));
		json_decref(v);
	}

	/* logout forgets the token */
	assert_int_equal(RUN(r, "logout"), 0);
	found = stat(path, &sb) == 0;
	assert_false(found);
	assert_int_equal(RUN(r, "me"), 4);

	free(r);
	user_teardown(&u);
}

/* jobs watch follows a pending job by polling, and ends when canceled. */
static void
test_watch_until_canceled(void **state)
{
	struct fx_stack *fx = *state;
	struct user u;
	struct run *r, *w;
	char id[64];
	json_t *v;

	user_setup(&u);
	r = run_new(fx, &u);
	w = run_new(fx, &u);
	assert_int_equal(RUN(r, "register", "--email", u.email), 0);
	assert_int_equal(RUN(r, "login", "--email", u.email), 0);
	assert_int_equal(RUN(r, "--json", "jobs", "create", "--prompt",
	    "waves", "--orientation", "landscape"), 0);
	v = json_out(r);
	snprintf(id, sizeof(id), "%s", str_member(v, "id"));
	json_decref(v);

	run_start(w, (const char *const[]){ "jobs", "watch", id, NULL });
	fx_sleep_ms(1200);
	assert_int_equal(RUN(r, "jobs", "cancel", id), 0);
	assert_int_equal(run_finish(w), 1);
	/* not a terminal: one line per change */
	assert_non_null(strstr(w->out, "pending"));
	assert_non_null(strstr(w->out, "failed"));
	assert_non_null(strstr(w->err, "canceled"));

	free(w);
	free(r);
	user_teardown(&u);
}

static void
test_exit_codes(void **state)
{
	struct fx_stack *fx = *state;
	struct user u;
	struct run *r;

	user_setup(&u);
	r = run_new(fx, &u);

	/* usage errors: 2 */
	assert_int_equal(RUN(r, "--bogus", "me"), 2);
	assert_int_equal(RUN(r, "jobs", "list", "--bogus"), 2);
	assert_int_equal(RUN(r, "jobs", "list", "--status", "done"), 2);
	assert_int_equal(RUN(r, "jobs", "create", "--prompt", "x"), 2);
	assert_int_equal(RUN(r, "jobs", "create", "--prompt", "x",
	    "--orientation", "square"), 2);
	assert_int_equal(RUN(r, "jobs", "get"), 2);
	assert_int_equal(RUN(r, "videos", "list", "--page-size", "-1"), 2);
	assert_int_equal(RUN(r, "jobs", "frobnicate"), 2);

	/* help: 0 */
	assert_int_equal(RUN(r, "jobs", "--help"), 0);
	assert_non_null(strstr(r->out, "watch"));
	assert_int_equal(RUN(r, "videos", "list", "--help"), 0);
	assert_non_null(strstr(r->out, "--page-size"));
	assert_int_equal(RUN(r, "help", "jobs"), 0);

	/* not logged in: 4 */
	assert_int_equal(RUN(r, "me"), 4);
	assert_int_equal(RUN(r, "jobs", "active"), 4);

	/* a refused token: 4 */
	assert_int_equal(RUN(r, "--token", "not-a-jwt", "jobs", "list"), 4);

	/* unreachable: 3 */
	r->server = "ipc:///nonexistent";
	assert_int_equal(RUN(r, "--timeout", "1000", "health"), 3);
	assert_int_equal(RUN(r, "--timeout", "1000", "--token", "t", "jobs",
	    "list"), 3);

	free(r);
	user_teardown(&u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_account_and_jobs),
		cmocka_unit_test(test_watch_until_canceled),
	};

	return cmocka_run_group_tests(tests, fx_stack_setup,
	    fx_stack_teardown);
}
