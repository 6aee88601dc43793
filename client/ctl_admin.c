/*
 * client/ctl_admin.c: the "admin ..." commands (stats, users, retry),
 * over vgen.v1.AdminService, and "admin events", a subscriber on the
 * server's progress-event pub socket.
 *
 * AdminService answers only on the server's admin endpoint, an ipc socket
 * whose file mode (0600) is the authentication: these commands dial it
 * instead of --server and send no token.  The endpoint comes from
 * --admin, else $VGEN_ADMIN, else the server's own default.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "ctl.h"
#include "vg_nng.h"

#define SVC "/vgen.v1.AdminService/"

#define ADMIN_HELP \
	"These commands dial the admin endpoint, not --server: --admin URL, " \
	"else\n$VGEN_ADMIN, else vgen-server's default " \
	"ipc://$VGEN_RUN_DIR/admin.sock,\nipc://$XDG_RUNTIME_DIR/vgen/" \
	"admin.sock or ipc:///tmp/vgen-<uid>/admin.sock.\nThe local stack " \
	"(tools/up) serves it at ipc://<repo>/var/run/admin.sock.\nOnly " \
	"the user running the server may open it (mode 0600)."

/* Every admin command takes these two flags. */
#define ADMIN_FLAGS(url, ctl) \
	{ "admin", CTL_FLAG_STR, &(url), "URL", "admin endpoint (default " \
	    "$VGEN_ADMIN, else the server's\ndefault socket)" }, \
	{ "json", CTL_FLAG_BOOL, &(ctl)->json, NULL, \
	    "print JSON (the same as the global --json)" }

/* The URL dialed must outlive the client (errors name it). */
static char admin_default[CTL_PATH_MAX + 16];

/*
 * admin_connect opens the client on the admin endpoint: `url` (from
 * --admin), else $VGEN_ADMIN, else the socket vgen-server makes by
 * default.  Returns as ctl_connect.
 */
static int
admin_connect(struct ctl *ctl, char *url)
{
	const char *run = getenv("VGEN_RUN_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (url == NULL || url[0] == '\0')
		url = getenv("VGEN_ADMIN");
	if (url == NULL || url[0] == '\0') {
		if (run != NULL && run[0] != '\0')
			snprintf(admin_default, sizeof(admin_default),
			    "ipc://%s/admin.sock", run);
		else if (xdg != NULL && xdg[0] != '\0')
			snprintf(admin_default, sizeof(admin_default),
			    "ipc://%s/vgen/admin.sock", xdg);
		else
			snprintf(admin_default, sizeof(admin_default),
			    "ipc:///tmp/vgen-%u/admin.sock",
			    (unsigned)getuid());
		url = admin_default;
	}
	ctl->server = url;
	return ctl_connect(ctl, false);
}

static int
print_table(const json_t *titles, json_t *rows, size_t flex)
{
	int rv;

	if (titles == NULL || rows == NULL) {
		ctl_err("out of memory");
		rv = CTL_EXIT_RPC;
	} else {
		rv = ctl_table_print(titles, rows, flex, ctl_term_width());
	}
	json_decref((json_t *)titles);
	json_decref(rows);
	return rv;
}

/* ---- admin stats ------------------------------------------------------- */

/*
 * stats_json mirrors Stats: {"users_total", "new_users_per_day": [{"day",
 * "count"}], "jobs_by_status": [{"status", "count"}], "videos_total",
 * "avg_generation_seconds"}.
 */
static json_t *
stats_json(const Vgen__V1__Stats *s)
{
	json_t *days = json_array(), *jobs = json_array();
	size_t i;
	int err = days == NULL || jobs == NULL;

	for (i = 0; i < s->n_new_users_per_day && !err; i++)
		err = json_array_append_new(days, json_pack("{s:o,s:I}", "day",
		    ctl_json_str(s->new_users_per_day[i]->day), "count",
		    (json_int_t)s->new_users_per_day[i]->count)) < 0;
	for (i = 0; i < s->n_jobs_by_status && !err; i++)
		err = json_array_append_new(jobs, json_pack("{s:o,s:I}",
		    "status", ctl_json_enum(&vgen__v1__job_status__descriptor,
		    s->jobs_by_status[i]->status), "count",
		    (json_int_t)s->jobs_by_status[i]->count)) < 0;
	if (err) {
		json_decref(days);
		json_decref(jobs);
		return NULL;
	}
	return json_pack("{s:I,s:o,s:o,s:I,s:f}", "users_total",
	    (json_int_t)s->users_total, "new_users_per_day", days,
	    "jobs_by_status", jobs, "videos_total",
	    (json_int_t)s->videos_total, "avg_generation_seconds",
	    s->avg_generation_seconds);
}

/*
 * stats_human prints the totals as "key: value" lines, then the days
 * that had sign-ups as a table.
 */
static int
stats_human(struct ctl *ctl, const Vgen__V1__Stats *s)
{
	json_t *obj, *jobs, *rows;
	int64_t recent = 0;
	char avg[32], name[32], count[24];
	size_t i;
	int rv, err = 0;

	for (i = 0; i < s->n_new_users_per_day; i++)
		recent += s->new_users_per_day[i]->count;
	snprintf(avg, sizeof(avg), "%.1f s", s->avg_generation_seconds);
	jobs = json_object();
	for (i = 0; i < s->n_jobs_by_status && jobs != NULL && !err; i++)
		err = json_object_set_new(jobs, ctl_enum_lower(
		    &vgen__v1__job_status__descriptor, "",
		    s->jobs_by_status[i]->status, name, sizeof(name)),
		    json_integer((json_int_t)s->jobs_by_status[i]->count)) < 0;
	if (err) {
		json_decref(jobs);
		jobs = NULL;
	}
	obj = jobs == NULL ? NULL : json_pack("{s:I,s:I,s:I,s:o,s:s}",
	    "users", (json_int_t)s->users_total, "new users (30 days)",
	    (json_int_t)recent, "videos", (json_int_t)s->videos_total,
	    "jobs", jobs, "average generation", avg);
	rv = ctl_print(ctl, obj);
	json_decref(obj);
	if (rv != 0 || recent == 0)
		return rv;

	rows = json_array();
	for (i = 0; i < s->n_new_users_per_day && rows != NULL; i++) {
		if (s->new_users_per_day[i]->count == 0)
			continue;
		snprintf(count, sizeof(count), "%lld",
		    (long long)s->new_users_per_day[i]->count);
		if (json_array_append_new(rows, json_pack("[o,s]",
		    ctl_json_str(s->new_users_per_day[i]->day), count)) < 0) {
			json_decref(rows);
			rows = NULL;
		}
	}
	putchar('\n');
	return print_table(json_pack("[s,s]", "DAY (UTC)", "NEW USERS"), rows,
	    0);
}

static int
admin_stats(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__GetStatsRequest req = VGEN__V1__GET_STATS_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	struct vgen_status st;
	char *url = NULL;
	const struct ctl_flag flags[] = { ADMIN_FLAGS(url, ctl), { NULL } };
	json_t *obj;
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	rv = admin_connect(ctl, url);
	if (rv != 0)
		return rv;
	if (vgen_call(ctl->client, SVC "GetStats", &req.base,
	    &vgen__v1__stats__descriptor, &m, &st) != 0)
		return ctl_rpc_fail(ctl, &st);
	if (ctl->json) {
		obj = stats_json((Vgen__V1__Stats *)m);
		rv = ctl_print(ctl, obj);
		json_decref(obj);
	} else {
		rv = stats_human(ctl, (Vgen__V1__Stats *)m);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return rv;
}

/* ---- admin users ------------------------------------------------------- */

static json_t *
users_row(const Vgen__V1__User *u)
{
	char created[64];

	return json_pack("[s?,s,o,o]", u->id, ctl_time_local(u->created_at,
	    created, sizeof(created)), ctl_json_str(u->email),
	    ctl_json_str(u->username && u->username[0] ? u->username : "-"));
}

/*
 * print_users prints the users of pages[0..n): with --json one object
 * {"users": [...], "next_page_token": the last page's}, else a table.
 */
static int
print_users(struct ctl *ctl, Vgen__V1__ListUsersResponse **pages, size_t n)
{
	json_t *users = json_array();
	const char *next = n > 0 ? pages[n - 1]->next_page_token : "";
	size_t p, i;
	int err = users == NULL;

	for (p = 0; p < n && !err; p++)
		for (i = 0; i < pages[p]->n_users && !err; i++)
			err = json_array_append_new(users, ctl->json ?
			    ctl_user_json(pages[p]->users[i]) :
			    users_row(pages[p]->users[i])) < 0;
	return ctl_print_listing(ctl, "users", users, err,
	    json_pack("[s,s,s,s]", "ID", "CREATED", "EMAIL",
	    "USERNAME"), 2, next);
}

static int
admin_users(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__ListUsersRequest req = VGEN__V1__LIST_USERS_REQUEST__INIT;
	ProtobufCMessage **pages = NULL;
	char *url = NULL, *size = NULL, *token = NULL;
	bool all = false;
	size_t n = 0;
	const struct ctl_flag flags[] = {
		{ "page-size", CTL_FLAG_STR, &size, "N", "users per page, up "
		    "to 100 (default: the server's, 20)" },
		{ "page-token", CTL_FLAG_STR, &token, "T", "start at this "
		    "page (next_page_token of the last)" },
		{ "all", CTL_FLAG_BOOL, &all, NULL, "fetch every page" },
		ADMIN_FLAGS(url, ctl),
		{ NULL },
	};
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (size != NULL && ctl_page_size_parse(size, &req.page_size) < 0)
		return ctl_usage(ctl, cmd, "--page-size: '%s' is not a "
		    "number from 0", size);
	rv = admin_connect(ctl, url);
	if (rv != 0)
		return rv;

	if (token != NULL)
		req.page_token = token;
	rv = ctl_pages_fetch(ctl, SVC "ListUsers", &req.base, &req.page_token,
	    &vgen__v1__list_users_response__descriptor, all, &pages, &n);
	if (rv == 0)
		rv = print_users(ctl, (Vgen__V1__ListUsersResponse **)pages, n);
	ctl_pages_free(pages, n);
	return rv;
}

/* ---- admin retry ------------------------------------------------------- */

static int
admin_retry(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__RetryJobRequest req = VGEN__V1__RETRY_JOB_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	struct vgen_status st;
	char *url = NULL, *id = NULL;
	const struct ctl_flag flags[] = { ADMIN_FLAGS(url, ctl), { NULL } };
	json_t *obj;
	int rv;

	rv = ctl_cmd_parse_id(ctl, cmd, flags, argc, argv, &id);
	if (rv != 0)
		return rv;
	rv = admin_connect(ctl, url);
	if (rv != 0)
		return rv;
	req.id = id;
	if (vgen_call(ctl->client, SVC "RetryJob", &req.base,
	    &vgen__v1__video_job__descriptor, &m, &st) != 0)
		return ctl_rpc_fail(ctl, &st);
	obj = ctl_job_json((Vgen__V1__VideoJob *)m);
	rv = ctl_print(ctl, obj);
	json_decref(obj);
	protobuf_c_message_free_unpacked(m, NULL);
	return rv;
}

/* ---- admin events ------------------------------------------------------ */

#define EVENTS_DEFAULT "tcp://127.0.0.1:7401"
#define EVENTS_MAXSZ (64 * 1024)	/* NNG_OPT_RECVMAXSZ */
#define EVENTS_POLL_MS 200		/* how often Ctrl-C is noticed */

static volatile sig_atomic_t events_stop;

static void
events_on_signal(int sig)
{
	(void)sig;
	events_stop = 1;
}

/* uuid_valid: canonical 8-4-4-4-12 hex, either case. */
static bool
uuid_valid(const char *s)
{
	size_t i;

	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return s[36] == '\0';
}

/*
 * event_json mirrors JobEvent: {"job_id", "user_id", "status",
 * "progress", "video_id", "error_message", "updated_at", "version"}.
 */
static json_t *
event_json(const Vgen__V1__JobEvent *e)
{
	return json_pack("{s:o,s:o,s:o,s:i,s:o,s:o,s:o,s:I}",
	    "job_id", ctl_json_str(e->job_id),
	    "user_id", ctl_json_str(e->user_id),
	    "status", ctl_json_enum(&vgen__v1__job_status__descriptor,
	    e->status),
	    "progress", (int)e->progress,
	    "video_id", ctl_json_str(e->video_id),
	    "error_message", ctl_json_str(e->error_message),
	    "updated_at", ctl_json_time(e->updated_at),
	    "version", (json_int_t)e->version);
}

/* safe_str: s with control bytes as '?', cut to len - 1 bytes. */
static const char *
safe_str(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' :
		    s[i];
	buf[i] = '\0';
	return buf;
}

/*
 * event_human prints one line: TIME  user USER  job JOB  STATUS
 * PROGRESS%  v VERSION [video ID] [error MSG].
 */
static int
event_human(const Vgen__V1__JobEvent *e)
{
	char when[CTL_TIME_STRLEN], status[32], user[64], job[64];
	char video[64], msg[512];

	if (e->updated_at == NULL ||
	    ctl_time_format(e->updated_at, when, sizeof(when)) != 0)
		snprintf(when, sizeof(when), "-");
	printf("%s  user %s  job %s  %s  %d%%  v %llu", when,
	    safe_str(e->user_id, user, sizeof(user)),
	    safe_str(e->job_id, job, sizeof(job)),
	    ctl_enum_lower(&vgen__v1__job_status__descriptor, "",
	    e->status, status, sizeof(status)), (int)e->progress,
	    (unsigned long long)e->version);
	if (e->video_id != NULL && e->video_id[0] != '\0')
		printf("  video %s", safe_str(e->video_id, video,
		    sizeof(video)));
	if (e->error_message != NULL && e->error_message[0] != '\0')
		printf("  error %s", safe_str(e->error_message, msg,
		    sizeof(msg)));
	putchar('\n');
	return 0;
}

/*
 * event_decode splits a frame at its first 0x00, checks the topic
 * against `prefix` and unpacks the JobEvent.  Returns NULL for a
 * malformed frame.
 */
static Vgen__V1__JobEvent *
event_decode(const unsigned char *buf, size_t len, const char *prefix)
{
	const unsigned char *nul = memchr(buf, '\0', len);
	size_t plen = strlen(prefix), tlen;
	Vgen__V1__JobEvent *e;

	if (nul == NULL)
		return NULL;
	tlen = (size_t)(nul - buf);
	if (tlen < plen || memcmp(buf, prefix, plen) != 0)
		return NULL;
	e = vgen__v1__job_event__unpack(NULL, len - tlen - 1, nul + 1);
	if (e == NULL)
		return NULL;
	/* The topic names the event's own user and job. */
	if (e->user_id == NULL || e->job_id == NULL ||
	    tlen != 4 + strlen(e->user_id) + 1 + strlen(e->job_id) ||
	    memcmp(buf + 4, e->user_id, strlen(e->user_id)) != 0) {
		vgen__v1__job_event__free_unpacked(e, NULL);
		return NULL;
	}
	return e;
}

static int
events_count_parse(const char *s, unsigned long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *out == 0)
		return -EINVAL;
	return 0;
}

static int
admin_events(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	char *user = NULL, *url = NULL, *count_s = NULL, prefix[64];
	unsigned long count = 0, seen = 0, bad = 0;
	const struct ctl_flag flags[] = {
		{ "user", CTL_FLAG_STR, &user, "ID", "only this user's "
		    "jobs (a UUID)" },
		{ "events", CTL_FLAG_STR, &url, "URL", "the pub socket "
		    "(default $VGEN_EVENTS, else\n" EVENTS_DEFAULT ")" },
		{ "count", CTL_FLAG_STR, &count_s, "N", "exit after N "
		    "events" },
		{ "json", CTL_FLAG_BOOL, &ctl->json, NULL,
		    "print JSON (the same as the global --json)" },
		{ NULL },
	};
	struct sigaction sa, old_int, old_term;
	nng_socket s = NNG_SOCKET_INITIALIZER;
	int rv, ev;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (user != NULL && !uuid_valid(user))
		return ctl_usage(ctl, cmd, "--user: '%s' is not a UUID", user);
	if (count_s != NULL && events_count_parse(count_s, &count) < 0)
		return ctl_usage(ctl, cmd, "--count: '%s' is not a number "
		    "from 1", count_s);
	if (url == NULL || url[0] == '\0')
		url = getenv("VGEN_EVENTS");
	if (url == NULL || url[0] == '\0')
		url = EVENTS_DEFAULT;
	if (user != NULL)
		snprintf(prefix, sizeof(prefix), "job.%s.", user);
	else
		snprintf(prefix, sizeof(prefix), "job.");

	if ((ev = nng_sub0_open(&s)) != 0 ||
	    (ev = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ,
	    EVENTS_MAXSZ)) != 0 ||
	    (ev = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO,
	    EVENTS_POLL_MS)) != 0 ||
	    (ev = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, prefix,
	    strlen(prefix))) != 0) {
		ctl_err("events socket: %s", nng_strerror(ev));
		if (nng_socket_id(s) > 0)
			nng_close(s);
		return CTL_EXIT_RPC;
	}
	/* Nonblocking dial: it retries until the server is up. */
	ev = nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);
	if (ev != 0) {
		nng_close(s);
		if (ev == NNG_EADDRINVAL || ev == NNG_ENOTSUP)
			return ctl_usage(ctl, cmd, "--events: '%s': %s", url,
			    nng_strerror(ev));
		ctl_err("%s: %s", url, nng_strerror(ev));
		return CTL_EXIT_UNREACH;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = events_on_signal;
	sigemptyset(&sa.sa_mask);
	events_stop = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	rv = CTL_EXIT_OK;
	while (!events_stop && (count == 0 || seen < count)) {
		Vgen__V1__JobEvent *e;
		json_t *obj;
		void *buf = NULL;
		size_t len = 0;

		ev = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
		if (ev == NNG_ETIMEDOUT || ev == NNG_EINTR)
			continue;
		if (ev != 0) {
			ctl_err("%s: %s", url, nng_strerror(ev));
			rv = CTL_EXIT_RPC;
			break;
		}
		e = event_decode(buf, len, prefix);
		nng_free(buf, len);
		if (e == NULL) {
			bad++;
			continue;
		}
		if (ctl->json) {
			obj = event_json(e);
			rv = ctl_print(ctl, obj);
			json_decref(obj);
		} else {
			rv = event_human(e);
		}
		vgen__v1__job_event__free_unpacked(e, NULL);
		if (rv == 0 && fflush(stdout) != 0) {
			ctl_err("stdout: %s", strerror(errno));
			rv = CTL_EXIT_RPC;
		}
		if (rv != 0)
			break;
		seen++;
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	(void)vg_nng_close(s, 2000);	/* we exit next anyway */
	if (bad > 0)
		ctl_err("skipped %lu malformed frame%s", bad,
		    bad == 1 ? "" : "s");
	return rv;
}

static const struct ctl_cmd admin_cmds[] = {
	{ "stats", "[--admin URL]", "show users, jobs, videos and the "
	    "average generation time",
	    "Users in total and new users per day over the last 30 days "
	    "(UTC), jobs\nby status, videos in total and the average time "
	    "from a job's creation\nto its completion.  With --json one "
	    "object, as the Stats message.\n\n" ADMIN_HELP, admin_stats },
	{ "users", "[--page-size N] [--page-token T] [--all] [--admin URL]",
	    "list every user, newest first",
	    "A table: id, created (local time), e-mail and username.  With "
	    "--json one\nobject: {\"users\": [...], \"next_page_token\": "
	    "\"...\"}; the token is empty\non the last page.\n\n" ADMIN_HELP,
	    admin_users },
	{ "retry", "JOB_ID [--admin URL]", "put a failed job back in the "
	    "queue",
	    "The job becomes pending again with attempts 0 and no error, "
	    "and a worker\nstarts it afresh.  Only a failed job (canceled "
	    "ones too) can be retried.\n\n" ADMIN_HELP, admin_retry },
	{ "events", "[--user ID] [--events URL] [--count N]",
	    "print job progress events as they happen",
	    "Subscribes to the server's progress-event pub socket (--events "
	    "URL, else\n$VGEN_EVENTS, else " EVENTS_DEFAULT ") and prints "
	    "every event, like\ntail -f: one line per event, or with --json "
	    "one JSON object per line\n(the JobEvent message).  --user ID: "
	    "only that user's jobs.  --count N\nexits after N events; Ctrl-C "
	    "exits 0.  Malformed frames are skipped and\ncounted.  The pub "
	    "socket has no authentication: bind it internally.",
	    admin_events },
	{ NULL },
};

int
ctl_admin(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	return ctl_dispatch(ctl, "admin", admin_cmds, argc - 1, argv + 1);
}
