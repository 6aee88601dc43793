/*
 * client/ctl_jobs.c: the "jobs ..." commands (create, get, active, list,
 * cancel, watch), over vgen.v1.VideoJobService.
 *
 * Watching a job asks WaitJob, which answers when the job changes; a
 * server without it (UNIMPLEMENTED) is polled with GetJob twice a second
 * instead.  People see one line that updates on a terminal, and one line
 * per change elsewhere; with --json every change is the job as one line.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#define SVC "/vgen.v1.VideoJobService/"
#define POLL_MS 500		/* GetJob interval when WaitJob is missing */
#define WAIT_MS 30000		/* how long one WaitJob may hold */
#define WAIT_SLACK_MS 5000	/* our deadline beyond WaitJob's */
#define BAR_WIDTH 20

/* --json is global, but people put it after the command too. */
#define JSON_FLAG(ctl) { "json", CTL_FLAG_BOOL, &(ctl)->json, NULL, \
	"print JSON (the same as the global --json)" }

static json_t *
job_json(const Vgen__V1__VideoJob *j)
{
	json_t *o = json_object();
	int err = 0;

	if (o == NULL)
		return NULL;
	err |= json_object_set_new(o, "id", ctl_json_str(j->id));
	err |= json_object_set_new(o, "user_id", ctl_json_str(j->user_id));
	err |= json_object_set_new(o, "prompt", ctl_json_str(j->prompt));
	err |= json_object_set_new(o, "orientation", ctl_json_enum(
	    &vgen__v1__orientation__descriptor, j->orientation));
	err |= json_object_set_new(o, "status", ctl_json_enum(
	    &vgen__v1__job_status__descriptor, j->status));
	err |= json_object_set_new(o, "progress", json_integer(j->progress));
	err |= json_object_set_new(o, "error_message",
	    ctl_json_str(j->error_message));
	err |= json_object_set_new(o, "external_job_id",
	    ctl_json_str(j->external_job_id));
	err |= json_object_set_new(o, "video_id", ctl_json_str(j->video_id));
	err |= json_object_set_new(o, "created_at",
	    ctl_json_time(j->created_at));
	err |= json_object_set_new(o, "updated_at",
	    ctl_json_time(j->updated_at));
	err |= json_object_set_new(o, "completed_at",
	    ctl_json_time(j->completed_at));
	err |= json_object_set_new(o, "version",
	    json_integer((json_int_t)j->version));
	err |= json_object_set_new(o, "attempts", json_integer(j->attempts));
	err |= json_object_set_new(o, "max_attempts",
	    json_integer(j->max_attempts));
	err |= json_object_set_new(o, "model", ctl_json_str(j->model));
	err |= json_object_set_new(o, "idempotency_key",
	    ctl_json_str(j->idempotency_key));
	if (err != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int
print_job(struct ctl *ctl, const Vgen__V1__VideoJob *j)
{
	json_t *obj = job_json(j);
	int rv;

	rv = ctl_print(ctl, obj);
	json_decref(obj);
	return rv;
}

/* call_job calls a method that answers a VideoJob. */
static int
call_job(struct ctl *ctl, const char *method, const ProtobufCMessage *req,
    Vgen__V1__VideoJob **out, struct vgen_status *st)
{
	ProtobufCMessage *m = NULL;
	int code;

	code = vgen_call(ctl->client, method, req,
	    &vgen__v1__video_job__descriptor, &m, st);
	*out = (Vgen__V1__VideoJob *)m;
	return code;
}

static bool
job_done(const Vgen__V1__VideoJob *j)
{
	return j->status == VGEN__V1__JOB_STATUS__COMPLETED ||
	    j->status == VGEN__V1__JOB_STATUS__FAILED;
}

/* ---- watching --------------------------------------------------------- */

/*
 * On SIGINT the job goes on: say how to follow it again.  A signal
 * handler reaches only globals.
 */
static char watch_hint[256];
static size_t watch_hint_len;
static volatile sig_atomic_t watch_line_open;

static void
watch_on_signal(int sig)
{
	ssize_t n = 0;

	if (watch_line_open)
		n = write(STDOUT_FILENO, "\n", 1);
	n += write(STDERR_FILENO, watch_hint, watch_hint_len);
	(void)n;
	signal(sig, SIG_DFL);
	raise(sig);
}

struct watch {
	bool tty;		/* one updating line on stdout */
	bool use_wait;		/* false once WaitJob said UNIMPLEMENTED */
	bool seen;		/* status and progress hold the last shown */
	int status;
	int progress;
	struct timespec t0;	/* CLOCK_MONOTONIC when the watch began */
	double before;		/* seconds from created_at to t0 */
};

static double
watch_elapsed(const struct watch *w)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return w->before + (double)(now.tv_sec - w->t0.tv_sec) +
	    (double)(now.tv_nsec - w->t0.tv_nsec) / 1e9;
}

static const char *
fmt_elapsed(double secs, char *buf, size_t len)
{
	long s = secs > 0 ? (long)secs : 0;

	if (s >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60,
		    s % 60);
	else
		snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
	return buf;
}

/* watch_show shows the job's state: always on a terminal, else on change. */
static int
watch_show(struct ctl *ctl, struct watch *w, const Vgen__V1__VideoJob *j)
{
	bool changed = !w->seen || (int)j->status != w->status ||
	    j->progress != w->progress;
	char bar[BAR_WIDTH + 1], el[32], st[32];
	int pct = j->progress < 0 ? 0 : j->progress > 100 ? 100 : j->progress;
	int i, rv = 0;

	w->seen = true;
	w->status = j->status;
	w->progress = j->progress;
	if (ctl->json)
		return changed ? print_job(ctl, j) : 0;
	if (!changed && !w->tty)
		return 0;

	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < pct * BAR_WIDTH / 100 ? '#' : '-';
	bar[BAR_WIDTH] = '\0';
	fmt_elapsed(watch_elapsed(w), el, sizeof(el));
	ctl_enum_lower(&vgen__v1__job_status__descriptor, "", j->status, st,
	    sizeof(st));
	if (w->tty) {
		printf("\r\033[K[%s] %3d%%  %-10s  %s", bar, pct, st, el);
		watch_line_open = 1;
	} else {
		printf("%s  %-10s  %3d%%\n", el, st, pct);
	}
	if (fflush(stdout) != 0) {
		ctl_err("cannot write the output");
		rv = CTL_EXIT_RPC;
	}
	return rv;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * watch_next fetches the job's next state into *out: WaitJob while the
 * server has it, else GetJob after POLL_MS.  Returns the status code;
 * a WaitJob that ran out of time is OK with *out NULL.
 */
static int
watch_next(struct ctl *ctl, struct watch *w, const Vgen__V1__VideoJob *j,
    Vgen__V1__VideoJob **out, struct vgen_status *st)
{
	Vgen__V1__WaitJobRequest wreq = VGEN__V1__WAIT_JOB_REQUEST__INIT;
	Vgen__V1__GetJobRequest greq = VGEN__V1__GET_JOB_REQUEST__INIT;
	uint32_t t = ctl->timeout_ms ? ctl->timeout_ms :
	    VGEN_DEFAULT_TIMEOUT_MS;
	int code;

	*out = NULL;
	if (w->use_wait) {
		wreq.id = j->id;
		wreq.known_progress = j->progress;
		wreq.known_status = j->status;
		wreq.timeout_ms = WAIT_MS;
		/* The call itself may take WAIT_MS: give it more. */
		if (t < WAIT_MS + WAIT_SLACK_MS)
			vgen_client_set_timeout(ctl->client,
			    WAIT_MS + WAIT_SLACK_MS);
		code = call_job(ctl, SVC "WaitJob", &wreq.base, out, st);
		vgen_client_set_timeout(ctl->client, ctl->timeout_ms);
		if (code == VGEN__V1__STATUS_CODE__DEADLINE_EXCEEDED)
			return 0;
		if (code != VGEN__V1__STATUS_CODE__UNIMPLEMENTED)
			return code;
		w->use_wait = false;
	}
	sleep_ms(POLL_MS);
	greq.id = j->id;
	return call_job(ctl, SVC "GetJob", &greq.base, out, st);
}

/*
 * video_url asks GetVideo for the URL of the job's video; NULL when the
 * server cannot tell (VideoService may be missing): the id suffices.
 */
static char *
video_url(struct ctl *ctl, const char *video_id)
{
	Vgen__V1__GetVideoRequest req = VGEN__V1__GET_VIDEO_REQUEST__INIT;
	Vgen__V1__Video *v;
	ProtobufCMessage *m = NULL;
	char *url = NULL;

	req.id = (char *)video_id;
	if (vgen_call(ctl->client, "/vgen.v1.VideoService/GetVideo",
	    &req.base, &vgen__v1__video__descriptor, &m, NULL) != 0)
		return NULL;
	v = (Vgen__V1__Video *)m;
	if (v->video_url != NULL && v->video_url[0] != '\0')
		url = strdup(v->video_url);
	protobuf_c_message_free_unpacked(m, NULL);
	return url;
}

/* watch_end says how the job ended: 0 when completed, 1 when failed. */
static int
watch_end(struct ctl *ctl, const Vgen__V1__VideoJob *j)
{
	json_t *obj;
	char *url;
	int rv;

	if (j->status == VGEN__V1__JOB_STATUS__FAILED) {
		ctl_err("job %s failed: %s", j->id, j->error_message &&
		    j->error_message[0] ? j->error_message : "no reason given");
		return CTL_EXIT_RPC;
	}
	if (ctl->json)	/* the last line was the completed job */
		return CTL_EXIT_OK;
	url = j->video_id && j->video_id[0] ? video_url(ctl, j->video_id) :
	    NULL;
	obj = json_object();
	if (obj != NULL && (json_object_set_new(obj, "video_id",
	    ctl_json_str(j->video_id)) < 0 || (url != NULL &&
	    json_object_set_new(obj, "video_url", ctl_json_str(url)) < 0))) {
		json_decref(obj);
		obj = NULL;
	}
	rv = ctl_print(ctl, obj);
	json_decref(obj);
	free(url);
	return rv;
}

/*
 * watch_job follows job `j` (taken; freed here) until it completes or
 * fails.  `shown`: the caller printed it already.  Returns 0 when it
 * completed, CTL_EXIT_RPC when it failed, else the error's status.
 */
static int
watch_job(struct ctl *ctl, Vgen__V1__VideoJob *j, bool shown)
{
	struct watch w = { 0 };
	struct sigaction sa = { 0 }, old_int, old_term;
	Vgen__V1__VideoJob *next = NULL;
	struct vgen_status st;
	struct timespec now;
	int code, rv = 0;

	w.tty = !ctl->json && isatty(STDOUT_FILENO);
	w.use_wait = true;
	clock_gettime(CLOCK_MONOTONIC, &w.t0);
	clock_gettime(CLOCK_REALTIME, &now);
	if (j->created_at != NULL && now.tv_sec > j->created_at->seconds)
		w.before = (double)(now.tv_sec - j->created_at->seconds);
	if (shown && ctl->json) {
		w.seen = true;
		w.status = j->status;
		w.progress = j->progress;
	}

	snprintf(watch_hint, sizeof(watch_hint), "vgenctl: the job goes on; "
	    "follow it with 'vgenctl jobs watch %s'\n", j->id);
	watch_hint_len = strlen(watch_hint);
	sa.sa_handler = watch_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	for (;;) {
		rv = watch_show(ctl, &w, j);
		if (rv != 0 || job_done(j))
			break;
		code = watch_next(ctl, &w, j, &next, &st);
		if (code != 0) {
			if (watch_line_open)
				putchar('\n');
			watch_line_open = 0;
			rv = ctl_rpc_fail(ctl, &st);
			break;
		}
		if (next != NULL) {
			protobuf_c_message_free_unpacked(&j->base, NULL);
			j = next;
			next = NULL;
		}
	}

	if (watch_line_open)
		putchar('\n');
	watch_line_open = 0;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (rv == 0)
		rv = watch_end(ctl, j);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	return rv;
}

/* ---- commands --------------------------------------------------------- */

static int
jobs_create(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__CreateJobRequest req = VGEN__V1__CREATE_JOB_REQUEST__INIT;
	Vgen__V1__VideoJob *j = NULL;
	struct vgen_status st;
	char *prompt = NULL, *orientation = NULL, *key = NULL;
	bool wait = false, watch = false;
	const struct ctl_flag flags[] = {
		{ "prompt", CTL_FLAG_STR, &prompt, "TEXT", "what the video "
		    "shows, 1 to 1000 characters (required)" },
		{ "orientation", CTL_FLAG_STR, &orientation, "O",
		    "portrait or landscape (required)" },
		{ "idempotency-key", CTL_FLAG_STR, &key, "K", "a retry with "
		    "the same key returns the same job" },
		{ "wait", CTL_FLAG_BOOL, &wait, NULL, "follow the job until "
		    "it completes or fails" },
		{ "watch", CTL_FLAG_BOOL, &watch, NULL, "the same as --wait" },
		JSON_FLAG(ctl),
		{ NULL },
	};
	int o, rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (prompt == NULL)
		return ctl_usage(ctl, cmd, "--prompt is required");
	if (orientation == NULL)
		return ctl_usage(ctl, cmd, "--orientation is required");
	o = ctl_enum_parse(&vgen__v1__orientation__descriptor, "",
	    orientation);
	if (o < 0)
		return ctl_usage(ctl, cmd, "--orientation: '%s' is not "
		    "portrait or landscape", orientation);
	rv = ctl_connect(ctl, true);
	if (rv != 0)
		return rv;

	req.prompt = prompt;
	req.orientation = o;
	if (key != NULL)
		req.idempotency_key = key;
	if (call_job(ctl, SVC "CreateJob", &req.base, &j, &st) != 0)
		return ctl_rpc_fail(ctl, &st);
	rv = print_job(ctl, j);
	if (rv != 0 || !(wait || watch)) {
		protobuf_c_message_free_unpacked(&j->base, NULL);
		return rv;
	}
	return watch_job(ctl, j, true);
}

/* by_id runs "jobs get ID", "jobs cancel ID" and "jobs watch ID". */
static int
by_id(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv,
    const char *method, bool watch)
{
	/* GetJobRequest and CancelJobRequest have the same shape. */
	Vgen__V1__GetJobRequest greq = VGEN__V1__GET_JOB_REQUEST__INIT;
	Vgen__V1__CancelJobRequest creq = VGEN__V1__CANCEL_JOB_REQUEST__INIT;
	const ProtobufCMessage *req = &greq.base;
	Vgen__V1__VideoJob *j = NULL;
	struct vgen_status st;
	const struct ctl_flag flags[] = { JSON_FLAG(ctl), { NULL } };
	char *id = NULL;
	int rv;

	rv = ctl_cmd_parse_id(ctl, cmd, flags, argc, argv, &id);
	if (rv != 0)
		return rv;
	rv = ctl_connect(ctl, true);
	if (rv != 0)
		return rv;
	greq.id = creq.id = id;
	if (strcmp(method, SVC "CancelJob") == 0)
		req = &creq.base;
	if (call_job(ctl, method, req, &j, &st) != 0)
		return ctl_rpc_fail(ctl, &st);
	if (watch)
		return watch_job(ctl, j, false);
	rv = print_job(ctl, j);
	protobuf_c_message_free_unpacked(&j->base, NULL);
	return rv;
}

static int
jobs_get(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	return by_id(ctl, cmd, argc, argv, SVC "GetJob", false);
}

static int
jobs_cancel(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	return by_id(ctl, cmd, argc, argv, SVC "CancelJob", false);
}

static int
jobs_watch(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	return by_id(ctl, cmd, argc, argv, SVC "GetJob", true);
}

/* jobs_row: a table row for people. */
static json_t *
jobs_row(const Vgen__V1__VideoJob *j)
{
	char created[64], status[32], pct[16], orient[32];

	snprintf(pct, sizeof(pct), "%d%%", j->progress);
	return json_pack("[s?,s,s,s,s,o]", j->id,
	    ctl_time_local(j->created_at, created, sizeof(created)),
	    ctl_enum_lower(&vgen__v1__job_status__descriptor, "", j->status,
	    status, sizeof(status)), pct,
	    ctl_enum_lower(&vgen__v1__orientation__descriptor, "",
	    j->orientation, orient, sizeof(orient)), ctl_json_str(j->prompt));
}

/*
 * print_jobs prints the jobs of pages[0..n): with --json one object
 * {"jobs": [...], "next_page_token": the last page's}, else a table.
 */
static int
print_jobs(struct ctl *ctl, Vgen__V1__ListJobsResponse **pages, size_t n)
{
	json_t *jobs = json_array();
	const char *next = n > 0 ? pages[n - 1]->next_page_token : "";
	size_t p, i;
	int err = jobs == NULL;

	for (p = 0; p < n && !err; p++)
		for (i = 0; i < pages[p]->n_jobs && !err; i++)
			err = json_array_append_new(jobs, ctl->json ?
			    job_json(pages[p]->jobs[i]) :
			    jobs_row(pages[p]->jobs[i])) < 0;
	return ctl_print_listing(ctl, "jobs", jobs, err,
	    json_pack("[s,s,s,s,s,s]", "ID", "CREATED", "STATUS",
	    "PROGRESS", "ORIENTATION", "PROMPT"), 5, next);
}

static int
jobs_active(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__ListActiveJobsRequest req =
	    VGEN__V1__LIST_ACTIVE_JOBS_REQUEST__INIT;
	const struct ctl_flag flags[] = { JSON_FLAG(ctl), { NULL } };
	ProtobufCMessage *m = NULL;
	Vgen__V1__ListJobsResponse *page;
	struct vgen_status st;
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	rv = ctl_connect(ctl, true);
	if (rv != 0)
		return rv;
	if (vgen_call(ctl->client, SVC "ListActiveJobs", &req.base,
	    &vgen__v1__list_jobs_response__descriptor, &m, &st) != 0)
		return ctl_rpc_fail(ctl, &st);
	page = (Vgen__V1__ListJobsResponse *)m;
	rv = print_jobs(ctl, &page, 1);
	protobuf_c_message_free_unpacked(m, NULL);
	return rv;
}

static int
jobs_list(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	Vgen__V1__ListJobsRequest req = VGEN__V1__LIST_JOBS_REQUEST__INIT;
	ProtobufCMessage **pages = NULL;
	char *status = NULL, *size = NULL, *token = NULL;
	bool all = false;
	size_t n = 0;
	const struct ctl_flag flags[] = {
		{ "status", CTL_FLAG_STR, &status, "S", "only jobs that are "
		    "pending, processing, completed\nor failed" },
		{ "page-size", CTL_FLAG_STR, &size, "N", "jobs per page "
		    "(default: the server's)" },
		{ "page-token", CTL_FLAG_STR, &token, "T", "start at this "
		    "page (next_page_token of the last)" },
		{ "all", CTL_FLAG_BOOL, &all, NULL, "fetch every page" },
		JSON_FLAG(ctl),
		{ NULL },
	};
	int s, rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (status != NULL) {
		s = ctl_enum_parse(&vgen__v1__job_status__descriptor, "",
		    status);
		if (s < 0)
			return ctl_usage(ctl, cmd, "--status: '%s' is not "
			    "pending, processing, completed or failed",
			    status);
		req.status = s;
	}
	if (size != NULL && ctl_page_size_parse(size, &req.page_size) < 0)
		return ctl_usage(ctl, cmd, "--page-size: '%s' is not a "
		    "number from 0", size);
	rv = ctl_connect(ctl, true);
	if (rv != 0)
		return rv;

	if (token != NULL)
		req.page_token = token;
	rv = ctl_pages_fetch(ctl, SVC "ListJobs", &req.base, &req.page_token,
	    &vgen__v1__list_jobs_response__descriptor, all, &pages, &n);
	if (rv == 0)
		rv = print_jobs(ctl, (Vgen__V1__ListJobsResponse **)pages, n);
	ctl_pages_free(pages, n);
	return rv;
}

static const struct ctl_cmd jobs_cmds[] = {
	{ "create", "--prompt TEXT --orientation portrait|landscape "
	    "[--idempotency-key K] [--wait]",
	    "ask for a video and print the job",
	    "With --wait (or --watch) vgenctl then follows the job as 'jobs "
	    "watch' does\nand exits 0 when it completes, 1 when it fails.",
	    jobs_create },
	{ "get", "ID", "show a job", NULL, jobs_get },
	{ "active", "", "list your pending and processing jobs",
	    "Newest first.", jobs_active },
	{ "list", "[--status S] [--page-size N] [--page-token T] [--all]",
	    "list your jobs, newest first",
	    "A table: id, created (local time), status, progress, "
	    "orientation and the\nprompt, cut to the terminal's width.  "
	    "With --json one object:\n{\"jobs\": [...], \"next_page_token\": "
	    "\"...\"}; the token is empty on the last page.",
	    jobs_list },
	{ "cancel", "ID", "cancel a pending or processing job",
	    "The job ends failed, with error_message \"canceled\".",
	    jobs_cancel },
	{ "watch", "ID", "follow a job until it completes or fails",
	    "On a terminal one line shows progress, status and the time "
	    "since the job\nwas created; elsewhere each change is one line, "
	    "and with --json each\nchange is the job as one JSON line.  "
	    "Prints the video at the end, or the\nerror.  Exits 0 when the "
	    "job completed, 1 when it failed.", jobs_watch },
	{ NULL },
};

int
ctl_jobs(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	return ctl_dispatch(ctl, "jobs", jobs_cmds, argc - 1, argv + 1);
}

json_t *
ctl_job_json(const Vgen__V1__VideoJob *j)
{
	return job_json(j);
}
