/*
 * client/ctl_admin.c: the "admin ..." commands (stats, users, retry),
 * over vgen.v1.AdminService.
 *
 * AdminService answers only on the server's admin endpoint, an ipc socket
 * whose file mode (0600) is the authentication: these commands dial it
 * instead of --server and send no token.  The endpoint comes from
 * --admin, else $VGEN_ADMIN, else the server's own default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

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
	json_t *users = json_array(), *obj;
	const char *next = n > 0 ? pages[n - 1]->next_page_token : "";
	size_t p, i;
	int err = users == NULL, rv;

	for (p = 0; p < n && !err; p++)
		for (i = 0; i < pages[p]->n_users && !err; i++)
			err = json_array_append_new(users, ctl->json ?
			    ctl_user_json(pages[p]->users[i]) :
			    users_row(pages[p]->users[i])) < 0;
	if (err) {
		json_decref(users);
		ctl_err("out of memory");
		return CTL_EXIT_RPC;
	}
	if (ctl->json) {
		obj = json_pack("{s:o,s:o}", "users", users, "next_page_token",
		    ctl_json_str(next));
		rv = ctl_print(ctl, obj);
		json_decref(obj);
		return rv;
	}
	rv = print_table(json_pack("[s,s,s,s]", "ID", "CREATED", "EMAIL",
	    "USERNAME"), users, 2);
	if (rv == 0 && next != NULL && next[0] != '\0')
		ctl_err("more: add --page-token %s (or --all)", next);
	return rv;
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
	{ NULL },
};

int
ctl_admin(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	(void)cmd;
	return ctl_dispatch(ctl, "admin", admin_cmds, argc - 1, argv + 1);
}
