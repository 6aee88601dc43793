/*
 * tools/bench/bench_worker.c: vgen-bench worker, what one vgen-worker
 * process carries and how fast it picks a job up (issue 3).
 *
 *   streams  N jobs inserted straight through libpq (around CreateJob's
 *            per-user limit), a fake-sora whose chat streams last S seconds
 *            with an event every step, and one vgen-worker (chat-sse,
 *            concurrency N).  The worker's CPU (utime + stime of
 *            /proc/PID/stat) is taken over the steady window, from a
 *            second after every job streams (each has progress) to the
 *            last sample before the first one ends, and over the whole run;
 *            then its RSS.  Every job must end completed with exactly one
 *            video, downloaded by this worker.
 *   pickup   jobs created one at a time, at a steady rate, through the
 *            CreateJob of a running vgen-server, while the worker runs
 *            short generations: the time from CreateJob returned to the job
 *            being processing.  First with LISTEN/NOTIFY, then with the
 *            worker restarted with VGEN_WORKER_LISTEN=0, the poll alone.
 *
 * How pickup sees the claim: the bench LISTENs on vgen_job_events on its
 * own connection.  The claim's UPDATE fires the trigger that notifies,
 * and PostgreSQL delivers the notification when that transaction commits,
 * the moment the job is processing for every reader.  Both ends are read
 * on the bench's clock, so no two clocks are compared.  The server's pub
 * socket would add the event hub's hop to every sample, and the row's
 * updated_at is overwritten by the first progress write.  The
 * notifications carry updated_at, though, which the INSERT sets to its
 * transaction's now() and the claim to its own: their difference is
 * printed beside, a cross-check on the database's clock.
 *
 * Both modes start their own fake-sora and vgen-worker, found next to
 * this executable, in a temporary run folder, and stop them and remove
 * the folder and the bench's rows at the end, also on failure.  The
 * children die with the bench (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "vg.h"
#include "vgen.h"
#include "bench.h"

#define M_CREATE "/vgen.v1.VideoJobService/CreateJob"

#define STREAM_USERS 8		/* streams: jobs spread over a few users */
#define SAMPLE_MS 500		/* streams: counts and CPU */
#define SETTLE_MS 1000		/* streams: after all stream, before steady */
#define PICKUP_STEPS "2"	/* pickup: 0.5 s generations */
#define PICKUP_STEP_MS "250"
#define PICKUP_MAX_USERS 64
#define START_MS 10000		/* fake-sora's port file */
#define STOP_MS 20000		/* SIGTERM to SIGKILL */
#define LINGER_MS 3000		/* a stopped worker's session, going away */
#define LOG_TAIL 2000		/* bytes of a child's log shown on failure */
#define API_KEY_LEN 24
#define RUN_PATH 1024		/* the bench's folder and the run folder */

static const char usage[] =
    "usage: vgen-bench worker streams [-n N] [--seconds S] [--step-ms MS]\n"
    "                  [--database-url CONN]\n"
    "       vgen-bench worker pickup [-n N] [--rate R] [--poll-ms MS]\n"
    "                  [--users U] [--server URL] [--database-url CONN]\n"
    "\n"
    "Both start their own fake-sora and vgen-worker (from the folder of\n"
    "this vgen-bench) in a temporary folder, on a database with the vgen\n"
    "schema that no other worker serves and that has no pending or\n"
    "processing jobs (the bench's worker would run them).  They stop\n"
    "both and delete the bench's users, jobs and videos at the end.\n"
    "\n"
    "streams  N jobs inserted through libpq for 8 bench users, then one\n"
    "         vgen-worker (chat-sse, VGEN_WORKER_CONCURRENCY=N) against\n"
    "         fake-sora streams of S seconds, an event every MS.  Prints\n"
    "         the worker's CPU in cores over the steady window (every job\n"
    "         streaming, none finished) and the whole run, its RSS, and\n"
    "         checks that every job completed with exactly one video made\n"
    "         by this worker (none failed, none lost).\n"
    "pickup   N jobs a phase created one at a time through CreateJob on\n"
    "         --server (a vgen-server on the same database) at R a second,\n"
    "         round-robin over U users, while the worker runs 0.5 s\n"
    "         generations.  Measures CreateJob returned -> processing\n"
    "         (the claim's vgen_job_events notification, received by the\n"
    "         bench), p50/p99/max, with LISTEN/NOTIFY and then with the\n"
    "         worker restarted with VGEN_WORKER_LISTEN=0 (the poll alone,\n"
    "         every --poll-ms; both phases run with that VGEN_POLL_MS).\n"
    "\n"
    "  -n N                   streams: concurrent streams (1000);\n"
    "                         pickup: jobs a phase (200)\n"
    "  --seconds S            streams: generation length (60)\n"
    "  --step-ms MS           streams: time between events (1000)\n"
    "  --rate R               pickup: jobs created a second (10)\n"
    "  --poll-ms MS           pickup: the worker's VGEN_POLL_MS (5000)\n"
    "  --users U              pickup: bench users (0: enough that none has\n"
    "                         more than 4 active jobs, the server's default\n"
    "                         limit being 5)\n"
    "  --server URL           pickup: vgen-server RPC URL ($VGEN_SERVER,\n"
    "                         else " VGEN_DEFAULT_SERVER ")\n"
    "  --database-url CONN    libpq connection string ($VGEN_DATABASE_URL)\n";

struct wopts {
	const char *what;	/* "streams" or "pickup" */
	const char *database_url;
	const char *server;
	long n, seconds, step_ms;
	long rate, poll_ms, users;
};

/* A child process and its log (its stdout and stderr). */
struct child {
	const char *name;
	pid_t pid;		/* 0: not running */
	int status;		/* wait status once reaped */
	char log[RUN_PATH + 32];
};

/* What a run made, so that run_fini can undo all of it. */
struct run {
	char bindir[RUN_PATH];
	char dir[RUN_PATH];	/* the temporary run folder; "" when none */
	char media[RUN_PATH + 16];	/* VGEN_MEDIA_DIR */
	char url_prefix[RUN_PATH + 32];	/* "file://<media>/": our videos */
	char api_key[API_KEY_LEN + 1];
	char prov_url[64];	/* fake-sora's "http://127.0.0.1:PORT" */
	int nworkers;		/* started so far: names VGEN_WORKER_ID */
	struct child fake, worker;
	PGconn *db;		/* setup, counts, checks, clean-up */
	char *users;		/* the bench users' ids, "{id,...}" */
	int nusers;
};

/* Job counts by status, of a set of jobs. */
struct counts {
	long pending, processing, streaming, completed, failed;
};

/* The end state of a set of jobs, checked after a run. */
struct verdict {
	long jobs, completed, failed, active, retried;
	long ours;		/* completed with a video in our media folder */
	long videos;		/* videos of the bench users, all told */
	long users_done;	/* completed jobs of the bench users, all told */
	double spread_s;	/* first completion to last */
};

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	interrupted = sig;
}

/* ---- small helpers ---------------------------------------------------- */

/*
 * A growing "{a,b,...}" array literal of UUIDs, for "= ANY($1::uuid[])":
 * one parameter, whatever the count.
 */
struct idlist {
	char *s;		/* malloc'd, NUL-terminated */
	size_t len, cap;
	int n;
};

static int
idlist_add(struct idlist *l, const char *id)
{
	size_t need = l->len + strlen(id) + 3;

	if (need > l->cap) {
		size_t cap = l->cap > 0 ? l->cap * 2 : 1024;
		char *s;

		while (cap < need)
			cap *= 2;
		if ((s = realloc(l->s, cap)) == NULL)
			return -1;
		l->s = s;
		l->cap = cap;
	}
	if (l->len == 0)
		l->s[l->len++] = '{';
	else
		l->s[l->len - 1] = ',';	/* over the closing brace */
	memcpy(l->s + l->len, id, strlen(id));
	l->len += strlen(id);
	l->s[l->len++] = '}';
	l->s[l->len] = '\0';
	l->n++;
	return 0;
}

static void
idlist_fini(struct idlist *l)
{
	free(l->s);
	memset(l, 0, sizeof(*l));
}

/* A statement with text parameters; NULL after printing why. */
static PGresult *
pg_run(PGconn *db, const char *what, const char *sql, int n,
    const char *const *params, ExecStatusType want)
{
	PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(res) != want) {
		pg_fail(what, db);
		PQclear(res);
		return NULL;
	}
	return res;
}

static long
cell(const PGresult *res, int row, int col)
{
	return strtol(PQgetvalue(res, row, col), NULL, 10);
}

/* utime + stime of pid in clock ticks (bench.h's proc_ticks); -1 if gone. */
static int64_t
ticks_of(pid_t pid)
{
	uint64_t t;

	return proc_ticks(pid, &t) == 0 ? (int64_t)t : -1;
}

/* A "Vm...:" line of /proc/PID/status in kB, or -1. */
static long
proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

static double
cores(int64_t ticks, int64_t ns)
{
	return ns > 0 ? (double)ticks / (double)sysconf(_SC_CLK_TCK) /
	    ((double)ns / 1e9) : 0;
}

static void
log_tail(const struct child *c)
{
	char buf[LOG_TAIL + 1];
	ssize_t len;
	off_t size;
	int fd;

	if (c->log[0] == '\0' || (fd = open(c->log, O_RDONLY |
	    O_CLOEXEC)) < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > LOG_TAIL)
		lseek(fd, size - LOG_TAIL, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	if ((len = read(fd, buf, LOG_TAIL)) > 0) {
		char *from = buf;

		buf[len] = '\0';
		/* Whole lines only: skip what the seek cut. */
		if (size > LOG_TAIL && (from = strchr(buf, '\n')) != NULL)
			from++;
		else
			from = buf;
		fprintf(stderr, "---- the end of %s's log (%s) ----\n%s%s"
		    "----\n", c->name, c->log, from,
		    buf[len - 1] == '\n' ? "" : "\n");
	}
	close(fd);
}

/* ---- children ---------------------------------------------------------- */

/*
 * env_new: our environment without VGEN_* but VGEN_LOG_LEVEL (a setting
 * of the caller's shell, VGEN_PROVIDER say, must not reach the child),
 * then `extra` ("NAME=value").  NULL when out of memory; env_free.
 */
static char **
env_new(const char *const *extra)
{
	extern char **environ;
	size_t n = 0, cap = 1;
	char **env;

	for (char **p = environ; *p != NULL; p++)
		cap++;
	for (const char *const *p = extra; *p != NULL; p++)
		cap++;
	if ((env = calloc(cap, sizeof(*env))) == NULL)
		return NULL;
	for (char **p = environ; *p != NULL; p++)
		if (strncmp(*p, "VGEN_", 5) != 0 ||
		    strncmp(*p, "VGEN_LOG_LEVEL=", 15) == 0)
			env[n++] = *p;
	for (const char *const *p = extra; *p != NULL; p++)
		env[n++] = (char *)*p;
	env[n] = NULL;
	return env;
}

/* The strings belong to environ and the caller: only the array goes. */
static void
env_free(char **env)
{
	free(env);
}

/*
 * child_start runs r->bindir/name with argv and env, its output in
 * r->dir/name.log.  The child is killed if the bench dies: a bench
 * stopped by any means leaves no worker streaming.  0 or -1 (printed).
 */
static int
child_start(struct run *r, struct child *c, const char *name,
    char *const *argv, char *const *env)
{
	char bin[RUN_PATH + 32];
	pid_t pid;

	memset(c, 0, sizeof(*c));
	c->name = name;
	snprintf(bin, sizeof(bin), "%s/%s", r->bindir, name);
	snprintf(c->log, sizeof(c->log), "%s/%s.log", r->dir, name);
	pid = vg_spawn(bin, argv, env, c->log);
	if (pid < 0) {
		fprintf(stderr, "vgen-bench: cannot start %s: %s\n", name,
		    strerror(errno));
		return -1;
	}
	c->pid = pid;
	return 0;
}

/* child_alive reaps an exited child and tells whether it still runs. */
static bool
child_alive(struct child *c)
{
	if (c->pid <= 0)
		return false;
	if (waitpid(c->pid, &c->status, WNOHANG) == 0)
		return true;
	c->pid = 0;
	return false;
}

static void
child_dead(struct child *c)
{
	if (WIFSIGNALED(c->status))
		fprintf(stderr, "vgen-bench: %s was killed by signal %d\n",
		    c->name, WTERMSIG(c->status));
	else
		fprintf(stderr, "vgen-bench: %s exited with status %d\n",
		    c->name, WEXITSTATUS(c->status));
	log_tail(c);
}

/* child_stop: SIGTERM, STOP_MS to finish, then SIGKILL.  Safe twice. */
static void
child_stop(struct child *c)
{
	int64_t end = now_ns() + (int64_t)STOP_MS * 1000000;

	if (c->pid <= 0)
		return;
	kill(c->pid, SIGTERM);
	while (waitpid(c->pid, &c->status, WNOHANG) == 0) {
		if (now_ns() >= end) {
			fprintf(stderr, "vgen-bench: %s ignored SIGTERM for "
			    "%d s: killed\n", c->name, STOP_MS / 1000);
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &c->status, 0);
			break;
		}
		sleep_ms(10);
	}
	c->pid = 0;
}

/*
 * fake_start runs fake-sora on a free port of 127.0.0.1 with `steps`
 * events `step_ms` apart, requiring our API key, and waits for its port.
 */
static int
fake_start(struct run *r, const char *steps, const char *step_ms)
{
	char portfile[RUN_PATH + 32];
	char *argv[] = { "fake-sora", "--listen", "127.0.0.1", "--port", "0",
		"--port-file", portfile, "--steps", (char *)steps,
		"--step-ms", (char *)step_ms, "--api-key", r->api_key, NULL };
	const char *extra[] = { NULL };
	int64_t end = now_ns() + (int64_t)START_MS * 1000000;
	unsigned port = 0;
	char **env;
	FILE *f;
	int rv;

	snprintf(portfile, sizeof(portfile), "%s/fake-sora.port", r->dir);
	if ((env = env_new(extra)) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	rv = child_start(r, &r->fake, "fake-sora", argv, env);
	env_free(env);
	if (rv < 0)
		return -1;
	while (port == 0) {
		if (!child_alive(&r->fake)) {
			child_dead(&r->fake);
			return -1;
		}
		if (now_ns() >= end || interrupted) {
			fprintf(stderr, "vgen-bench: fake-sora wrote no port "
			    "within %d s\n", START_MS / 1000);
			log_tail(&r->fake);
			return -1;
		}
		if ((f = fopen(portfile, "re")) != NULL) {
			if (fscanf(f, "%u", &port) != 1)
				port = 0;
			fclose(f);
		}
		if (port == 0)
			sleep_ms(10);
	}
	snprintf(r->prov_url, sizeof(r->prov_url), "http://127.0.0.1:%u",
	    port);
	return 0;
}

/*
 * worker_start runs vgen-worker on chat-sse against our fake-sora: every
 * setting it needs is given, so a VGEN_* of the caller's shell changes
 * nothing.  The grace is short: when the bench stops it, its jobs are
 * done or the run has failed.
 */
static int
worker_start(struct run *r, const char *conninfo, long concurrency,
    long poll_ms, bool listen)
{
	char db[4096], url[128], key[64], conc[64], id[64];
	char media[RUN_PATH + 32], rundir[RUN_PATH + 32], poll[64], lst[32];
	const char *extra[] = { db, "VGEN_PROVIDER=chat-sse", url, key, conc,
		id, media, rundir, poll, lst, "VGEN_GRACE_S=2", NULL };
	char *argv[] = { "vgen-worker", NULL };
	char **env;
	int rv;

	if (snprintf(db, sizeof(db), "VGEN_DATABASE_URL=%s", conninfo) >=
	    (int)sizeof(db)) {
		fprintf(stderr, "vgen-bench: the database URL is too long\n");
		return -1;
	}
	snprintf(url, sizeof(url), "VGEN_PROVIDER_URL=%s", r->prov_url);
	snprintf(key, sizeof(key), "VGEN_PROVIDER_API_KEY=%s", r->api_key);
	snprintf(conc, sizeof(conc), "VGEN_WORKER_CONCURRENCY=%ld",
	    concurrency);
	snprintf(id, sizeof(id), "VGEN_WORKER_ID=vgen-bench-%ld-%d",
	    (long)getpid(), ++r->nworkers);
	snprintf(media, sizeof(media), "VGEN_MEDIA_DIR=%s", r->media);
	snprintf(rundir, sizeof(rundir), "VGEN_RUN_DIR=%s", r->dir);
	snprintf(poll, sizeof(poll), "VGEN_POLL_MS=%ld", poll_ms);
	snprintf(lst, sizeof(lst), "VGEN_WORKER_LISTEN=%d", listen ? 1 : 0);
	if ((env = env_new(extra)) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	rv = child_start(r, &r->worker, "vgen-worker", argv, env);
	env_free(env);
	return rv;
}

/* ---- the run: folder, database, clean-up -------------------------------- */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0)
		fprintf(stderr, "vgen-bench: cannot remove %s: %s\n", path,
		    strerror(errno));
	return 0;
}

/*
 * run_init finds fake-sora and vgen-worker next to this program, makes
 * the run folder and a random API key, and connects to the database.
 */
static int
run_init(struct run *r, const char *conninfo)
{
	const char *tmp = getenv("TMPDIR");
	char *slash;
	ssize_t len;

	memset(r, 0, sizeof(*r));
	len = readlink("/proc/self/exe", r->bindir, sizeof(r->bindir) - 1);
	if (len <= 0 || (size_t)len >= sizeof(r->bindir) - 1) {
		fprintf(stderr, "vgen-bench: cannot read /proc/self/exe\n");
		return -1;
	}
	r->bindir[len] = '\0';
	if ((slash = strrchr(r->bindir, '/')) != NULL)
		*slash = '\0';
	for (int i = 0; i < 2; i++) {
		const char *name = i == 0 ? "fake-sora" : "vgen-worker";
		char bin[RUN_PATH + 32];

		snprintf(bin, sizeof(bin), "%s/%s", r->bindir, name);
		if (access(bin, X_OK) < 0) {
			fprintf(stderr, "vgen-bench: %s: %s (worker mode runs "
			    "the %s built beside vgen-bench)\n", bin,
			    strerror(errno), name);
			return -1;
		}
	}
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 200)
		tmp = "/tmp";
	snprintf(r->dir, sizeof(r->dir), "%s/vgen-bench-worker-XXXXXX", tmp);
	if (mkdtemp(r->dir) == NULL) {
		fprintf(stderr, "vgen-bench: cannot make a folder in %s: %s\n",
		    tmp, strerror(errno));
		r->dir[0] = '\0';
		return -1;
	}
	snprintf(r->media, sizeof(r->media), "%s/media", r->dir);
	snprintf(r->url_prefix, sizeof(r->url_prefix), "file://%s/",
	    r->media);
	random_chars(r->api_key, API_KEY_LEN);
	if ((r->db = pg_open(conninfo)) == NULL)
		return -1;
	return 0;
}

/*
 * db_ready: the vgen schema is there, no job is waiting or running (the
 * bench's worker would run them, and they would skew what it measures),
 * and no other worker listens (it would take the bench's jobs: the last
 * statement of a worker's LISTEN connection is LISTEN vgen_job_cancel).
 * The backend of a worker that has just exited lingers a moment: such a
 * session gets LINGER_MS to go.
 */
static int
db_ready(struct run *r)
{
	int64_t end = now_ns() + (int64_t)LINGER_MS * 1000000;
	PGresult *res;
	long waiting, running, workers;

	res = PQexec(r->db, "SELECT locked_by, version, attempts FROM "
	    "video_jobs LIMIT 0");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_fail("no vgen schema in this database (start vgen-server "
		    "on it once, or run vgen-server migrate)", r->db);
		PQclear(res);
		return -1;
	}
	PQclear(res);
again:
	res = pg_run(r->db, "reading the queue", "SELECT "
	    "count(*) FILTER (WHERE status = 'pending'), "
	    "count(*) FILTER (WHERE status = 'processing'), "
	    "(SELECT count(*) FROM pg_stat_activity WHERE "
	    "query = 'LISTEN vgen_job_cancel' AND pid <> pg_backend_pid()) "
	    "FROM video_jobs WHERE status IN ('pending', 'processing')", 0,
	    NULL, PGRES_TUPLES_OK);
	if (res == NULL)
		return -1;
	waiting = cell(res, 0, 0);
	running = cell(res, 0, 1);
	workers = cell(res, 0, 2);
	PQclear(res);
	if (workers > 0 && now_ns() < end && !interrupted) {
		sleep_ms(100);
		goto again;
	}
	if (workers > 0) {
		fprintf(stderr, "vgen-bench: %ld other vgen-worker%s serve%s "
		    "this database and would take the bench's jobs: stop %s "
		    "(tools/up starts one), or use a database of the bench's "
		    "own\n", workers, workers > 1 ? "s" : "",
		    workers > 1 ? "" : "s", workers > 1 ? "them" : "it");
		return -1;
	}
	if (waiting > 0 || running > 0) {
		fprintf(stderr, "vgen-bench: the database has %ld pending and "
		    "%ld processing jobs; the bench's worker would run them: "
		    "let them finish, or use a database of the bench's own\n",
		    waiting, running);
		return -1;
	}
	return 0;
}

/*
 * run_fini stops the children, deletes the bench users (their jobs and
 * videos go with them, ON DELETE CASCADE) and removes the folder.
 */
static void
run_fini(struct run *r)
{
	const char *params[1];
	PGresult *res;

	child_stop(&r->worker);
	child_stop(&r->fake);
	if (r->db != NULL && r->users != NULL) {
		params[0] = r->users;
		res = pg_run(r->db, "deleting the bench users", "DELETE FROM "
		    "users WHERE id = ANY($1::uuid[])", 1, params,
		    PGRES_COMMAND_OK);
		PQclear(res);
	}
	PQfinish(r->db);
	free(r->users);
	if (r->dir[0] != '\0')
		nftw(r->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	memset(r, 0, sizeof(*r));
}

static int
job_counts(struct run *r, const char *ids, struct counts *c)
{
	const char *params[] = { ids };
	PGresult *res;

	res = pg_run(r->db, "counting the jobs", "SELECT "
	    "count(*) FILTER (WHERE status = 'pending'), "
	    "count(*) FILTER (WHERE status = 'processing'), "
	    "count(*) FILTER (WHERE status = 'processing' AND progress > 0), "
	    "count(*) FILTER (WHERE status = 'completed'), "
	    "count(*) FILTER (WHERE status = 'failed') "
	    "FROM video_jobs WHERE id = ANY($1::uuid[])", 1, params,
	    PGRES_TUPLES_OK);
	if (res == NULL)
		return -1;
	c->pending = cell(res, 0, 0);
	c->processing = cell(res, 0, 1);
	c->streaming = cell(res, 0, 2);
	c->completed = cell(res, 0, 3);
	c->failed = cell(res, 0, 4);
	PQclear(res);
	return 0;
}

/*
 * judge reads how the jobs `ids` ended: a job completed by our worker
 * has its video in our media folder (a video made elsewhere has another
 * URL), and the bench users own exactly one video per completed job.
 * The reasons of failed jobs are printed.
 */
static int
judge(struct run *r, const char *ids, struct verdict *v)
{
	const char *params[] = { ids, r->url_prefix, r->users };
	PGresult *res;

	res = pg_run(r->db, "checking the jobs", "SELECT count(*), "
	    "count(*) FILTER (WHERE j.status = 'completed'), "
	    "count(*) FILTER (WHERE j.status = 'failed'), "
	    "count(*) FILTER (WHERE j.status IN ('pending', 'processing')), "
	    "count(*) FILTER (WHERE j.attempts > 1), "
	    "count(*) FILTER (WHERE j.status = 'completed' AND "
	    "left(v.video_url, length($2)) = $2), "
	    "(SELECT count(*) FROM videos WHERE user_id = ANY($3::uuid[])), "
	    "(SELECT count(*) FROM video_jobs WHERE user_id = "
	    "ANY($3::uuid[]) AND status = 'completed'), "
	    "coalesce(extract(epoch FROM max(j.completed_at) - "
	    "min(j.completed_at)), 0) "
	    "FROM video_jobs j LEFT JOIN videos v ON v.id = j.video_id "
	    "WHERE j.id = ANY($1::uuid[])", 3, params, PGRES_TUPLES_OK);
	if (res == NULL)
		return -1;
	v->jobs = cell(res, 0, 0);
	v->completed = cell(res, 0, 1);
	v->failed = cell(res, 0, 2);
	v->active = cell(res, 0, 3);
	v->retried = cell(res, 0, 4);
	v->ours = cell(res, 0, 5);
	v->videos = cell(res, 0, 6);
	v->users_done = cell(res, 0, 7);
	v->spread_s = strtod(PQgetvalue(res, 0, 8), NULL);
	PQclear(res);
	if (v->failed == 0)
		return 0;
	res = pg_run(r->db, "reading the failures", "SELECT count(*), "
	    "coalesce(error_message, '') FROM video_jobs WHERE "
	    "id = ANY($1::uuid[]) AND status = 'failed' GROUP BY 2 "
	    "ORDER BY 1 DESC LIMIT 5", 1, params, PGRES_TUPLES_OK);
	for (int i = 0; res != NULL && i < PQntuples(res); i++)
		fprintf(stderr, "vgen-bench: %ld job(s) failed: %s\n",
		    cell(res, i, 0), PQgetvalue(res, i, 1));
	PQclear(res);
	return 0;
}

/* The verdict's failures, printed; true when the jobs all ended well. */
static bool
verdict_ok(const struct verdict *v, long want)
{
	bool ok = true;

	if (v->jobs != want) {
		fprintf(stderr, "vgen-bench: %ld of the %ld jobs are left\n",
		    v->jobs, want);
		ok = false;
	}
	if (v->failed > 0 || v->active > 0) {
		fprintf(stderr, "vgen-bench: %ld failed, %ld not finished "
		    "(lost)\n", v->failed, v->active);
		ok = false;
	}
	if (v->ours != v->completed) {
		fprintf(stderr, "vgen-bench: %ld jobs were completed by "
		    "another worker (their videos are not in our media "
		    "folder)\n", v->completed - v->ours);
		ok = false;
	}
	/* Videos do not name their job: count them by owner. */
	if (v->videos != v->users_done) {
		fprintf(stderr, "vgen-bench: the bench users have %ld videos "
		    "for %ld completed jobs (one each expected)\n", v->videos,
		    v->users_done);
		ok = false;
	}
	return ok;
}

/* ---- streams ------------------------------------------------------------ */

/* stream_seed makes the bench users and n jobs spread over them. */
static int
stream_seed(struct run *r, long n, struct idlist *jobs)
{
	char tag[13], count[24], nusers[16];
	const char *uparams[] = { tag, nusers };
	const char *jparams[2];
	struct idlist users = { 0 };
	PGresult *res;
	int64_t t0 = now_ns();
	int rv = -1;

	random_chars(tag, 12);
	snprintf(nusers, sizeof(nusers), "%d", STREAM_USERS);
	snprintf(count, sizeof(count), "%ld", n);
	/* A password hash no login accepts: these users only own jobs. */
	res = pg_run(r->db, "inserting the bench users", "INSERT INTO users "
	    "(email, password_hash) SELECT 'bench-worker-' || $1 || '-' || i "
	    "|| '@example.com', '!' FROM generate_series(1, $2::int) AS i "
	    "RETURNING id", 2, uparams, PGRES_TUPLES_OK);
	if (res == NULL)
		goto out;
	for (int i = 0; i < PQntuples(res); i++)
		if (idlist_add(&users, PQgetvalue(res, i, 0)) < 0)
			goto oom;
	PQclear(res);
	r->users = users.s;
	r->nusers = users.n;
	users.s = NULL;

	jparams[0] = r->users;
	jparams[1] = count;
	res = pg_run(r->db, "inserting the jobs", "INSERT INTO video_jobs "
	    "(user_id, prompt, orientation) SELECT "
	    "u.a[1 + i % cardinality(u.a)], 'vgen-bench stream ' || i, "
	    "(CASE WHEN i % 2 = 0 THEN 'portrait' ELSE 'landscape' END)"
	    "::orientation_type FROM generate_series(0, $2::int - 1) AS i, "
	    "(SELECT $1::uuid[] AS a) AS u RETURNING id", 2, jparams,
	    PGRES_TUPLES_OK);
	if (res == NULL)
		goto out;
	for (int i = 0; i < PQntuples(res); i++)
		if (idlist_add(jobs, PQgetvalue(res, i, 0)) < 0)
			goto oom;
	PQclear(res);
	fprintf(stderr, "vgen-bench: %ld jobs for %d bench users, inserted "
	    "in %.0f ms\n", n, r->nusers, (double)(now_ns() - t0) / 1e6);
	rv = 0;
	goto out;
oom:
	PQclear(res);
	fprintf(stderr, "vgen-bench: out of memory\n");
out:
	idlist_fini(&users);
	return rv;
}

/* What the streams run saw, sample by sample. */
struct stream_obs {
	int64_t t0;		/* the worker started */
	long peak;		/* most jobs streaming at once */
	int64_t t_all;		/* all N streaming first; 0: not yet */
	int64_t ts0, ts1;	/* the steady window; ts1 0: none */
	int64_t ks0, ks1;	/* the worker's ticks at its ends */
	int64_t fs0, fs1;	/* fake-sora's */
	long rss_kb;		/* at the window's end */
	int64_t t_end, k_end;	/* all N finished */
	long hwm_kb;
};

static void
stream_sample(struct run *r, long n, const struct counts *c, int64_t now,
    struct stream_obs *o)
{
	int64_t k = ticks_of(r->worker.pid);
	int64_t fk = ticks_of(r->fake.pid);

	if (c->streaming > o->peak)
		o->peak = c->streaming;
	if (o->t_all == 0 && c->streaming == n) {
		o->t_all = now;
		fprintf(stderr, "vgen-bench: all %ld streaming after %.1f s\n",
		    n, (double)(now - o->t0) / 1e9);
	}
	/* Steady: every job streaming, none finished, none yet reclaimed. */
	if (o->t_all == 0 || c->streaming != n || k < 0 || fk < 0)
		return;
	if (o->ts0 == 0) {
		if (now - o->t_all >= (int64_t)SETTLE_MS * 1000000) {
			o->ts0 = now;
			o->ks0 = k;
			o->fs0 = fk;
		}
		return;
	}
	o->ts1 = now;
	o->ks1 = k;
	o->fs1 = fk;
	o->rss_kb = proc_kb(r->worker.pid, "VmRSS");
}

static int
stream_watch(struct run *r, const struct wopts *o, const char *ids,
    struct stream_obs *ob)
{
	int64_t deadline = ob->t0 + (o->seconds * 2 + 60) * 1000000000LL;
	struct counts c;
	int64_t now;

	for (;;) {
		sleep_ms(SAMPLE_MS);
		now = now_ns();
		if (interrupted) {
			fprintf(stderr, "vgen-bench: interrupted\n");
			return -1;
		}
		if (!child_alive(&r->fake)) {
			child_dead(&r->fake);
			return -1;
		}
		if (!child_alive(&r->worker)) {
			child_dead(&r->worker);
			return -1;
		}
		if (job_counts(r, ids, &c) < 0)
			return -1;
		if (c.completed + c.failed == o->n) {
			ob->t_end = now;
			ob->k_end = ticks_of(r->worker.pid);
			ob->hwm_kb = proc_kb(r->worker.pid, "VmHWM");
			if (ob->k_end < 0 || ob->hwm_kb < 0) {
				fprintf(stderr, "vgen-bench: cannot read "
				    "/proc/%ld\n", (long)r->worker.pid);
				return -1;
			}
			return 0;
		}
		stream_sample(r, o->n, &c, now, ob);
		if (now >= deadline) {
			fprintf(stderr, "vgen-bench: after %.0f s: %ld pending, "
			    "%ld processing, %ld completed, %ld failed\n",
			    (double)(now - ob->t0) / 1e9, c.pending,
			    c.processing, c.completed, c.failed);
			log_tail(&r->worker);
			return -1;
		}
	}
}

static int
mode_streams(const struct wopts *o)
{
	struct idlist jobs = { 0 };
	struct stream_obs ob = { 0 };
	struct verdict v = { 0 };
	struct run r;
	char steps[24], step_ms[24];
	long nsteps = o->seconds * 1000 / o->step_ms;
	bool steady, ok;
	int rv = 1;

	if (nsteps < 1)
		nsteps = 1;
	snprintf(steps, sizeof(steps), "%ld", nsteps);
	snprintf(step_ms, sizeof(step_ms), "%ld", o->step_ms);
	if (run_init(&r, o->database_url) < 0 || db_ready(&r) < 0 ||
	    stream_seed(&r, o->n, &jobs) < 0 ||
	    fake_start(&r, steps, step_ms) < 0)
		goto out;
	fprintf(stderr, "vgen-bench: fake-sora on %s: %s events %s ms apart; "
	    "starting vgen-worker (chat-sse, concurrency %ld)\n", r.prov_url,
	    steps, step_ms, o->n);
	ob.t0 = now_ns();
	if (worker_start(&r, o->database_url, o->n, 5000, true) < 0 ||
	    stream_watch(&r, o, jobs.s, &ob) < 0 ||
	    judge(&r, jobs.s, &v) < 0)
		goto out;
	ok = verdict_ok(&v, o->n);
	steady = ob.ts1 > ob.ts0 && ob.ts0 > 0;

	printf("vgen-bench worker streams: %ld streams of %.0f s (%ld events "
	    "%ld ms apart), chat-sse against fake-sora\n\n", o->n,
	    (double)(nsteps * o->step_ms) / 1000, nsteps, o->step_ms);
	if (ob.t_all > 0)
		printf("all streaming      %.1f s after the worker started\n",
		    (double)(ob.t_all - ob.t0) / 1e9);
	else
		printf("all streaming      never (at most %ld at once)\n",
		    ob.peak);
	if (steady)
		printf("steady window      %.1f s: worker %.3f cores, "
		    "fake-sora %.3f cores\n", (double)(ob.ts1 - ob.ts0) / 1e9,
		    cores(ob.ks1 - ob.ks0, ob.ts1 - ob.ts0),
		    cores(ob.fs1 - ob.fs0, ob.ts1 - ob.ts0));
	else
		printf("steady window      none (generations too short for "
		    "%d ms samples)\n", SAMPLE_MS);
	printf("whole run          %.1f s: worker %.3f cores\n",
	    (double)(ob.t_end - ob.t0) / 1e9, cores(ob.k_end, ob.t_end -
	    ob.t0));
	if (steady)
		printf("worker RSS         %.1f MiB steady, %.1f MiB peak\n",
		    (double)ob.rss_kb / 1024, (double)ob.hwm_kb / 1024);
	else
		printf("worker RSS         %.1f MiB peak\n",
		    (double)ob.hwm_kb / 1024);
	printf("jobs               %ld completed, %ld failed, %ld lost; "
	    "%ld videos; %ld retried\n", v.completed, v.failed, v.active,
	    v.videos, v.retried);
	/* The streams end within the ramp of each other; the rest is ours. */
	printf("completions        spread over %.1f s (first to last)\n",
	    v.spread_s);
	if (o->n >= 1000 && steady)
		printf("target (issue 3)   >= 1000 streams under 0.5 cores: %s\n",
		    cores(ob.ks1 - ob.ks0, ob.ts1 - ob.ts0) < 0.5 && ok &&
		    ob.t_all > 0 ? "met" : "NOT met");
	fflush(stdout);
	if (ob.t_all == 0) {
		fprintf(stderr, "vgen-bench: the %ld streams never ran all at "
		    "once\n", o->n);
		goto out;
	}
	rv = ok ? 0 : 1;
out:
	if (rv != 0 && r.worker.pid > 0 && !interrupted)
		log_tail(&r.worker);
	idlist_fini(&jobs);
	run_fini(&r);
	return rv;
}

/* ---- pickup: the events ------------------------------------------------- */

/* A notification on vgen_job_events of a bench user's job. */
struct event {
	char id[VG_UUID_STRLEN + 1];
	char status;		/* 'n' pending (new or retried), 'p' processing */
	int64_t t;		/* received, bench clock ns */
	int64_t db_us;		/* its updated_at: the database's clock */
};

/*
 * The listener thread keeps every pending and processing notification of
 * the bench users' jobs, with the time it arrived; the main thread reads
 * them under the lock.
 */
struct listener {
	PGconn *db;
	const char *users;	/* the bench users' ids: the filter */
	pthread_t tid;
	bool started;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct event *ev;	/* cap of them */
	size_t n, cap, dropped;
	bool lost;		/* the connection failed */
};

/*
 * json_val copies the value of "key" in a notification of vgen_job_notify
 * (json_build_object's flat object of strings, numbers and nulls) into
 * out, without quotes.
 */
static bool
json_val(const char *js, const char *key, char *out, size_t n)
{
	char pat[48];
	const char *p;
	size_t len = 0;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if ((p = strstr(js, pat)) == NULL)
		return false;
	p += strlen(pat);
	p += strspn(p, " :");
	if (*p == '"')
		p++;
	while (p[len] != '\0' && p[len] != '"' && p[len] != ',' &&
	    p[len] != '}' && len + 1 < n)
		len++;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

static void
listener_record(struct listener *l, const char *js, int64_t t)
{
	char id[64], user[64], status[32], at[32];
	struct event *e;

	if (!json_val(js, "job_id", id, sizeof(id)) ||
	    !json_val(js, "user_id", user, sizeof(user)) ||
	    !json_val(js, "status", status, sizeof(status)) ||
	    !json_val(js, "updated_at", at, sizeof(at)) ||
	    strlen(id) != VG_UUID_STRLEN || strstr(l->users, user) == NULL)
		return;
	if (strcmp(status, "pending") != 0 && strcmp(status, "processing") != 0)
		return;
	pthread_mutex_lock(&l->mu);
	if (l->n < l->cap) {
		e = &l->ev[l->n++];
		memcpy(e->id, id, sizeof(e->id));
		e->status = status[1] == 'e' ? 'n' : 'p';
		e->t = t;
		e->db_us = strtoll(at, NULL, 10);
		pthread_cond_broadcast(&l->cv);
	} else {
		l->dropped++;
	}
	pthread_mutex_unlock(&l->mu);
}

static void *
listener_main(void *arg)
{
	struct listener *l = arg;
	struct pollfd pfd = { .fd = PQsocket(l->db), .events = POLLIN };
	PGnotify *nt;

	while (!atomic_load(&l->stop)) {
		int rv = poll(&pfd, 1, 100);
		/* Read the clock first: the notification arrived by now. */
		int64_t t = now_ns();

		if (rv < 0 && errno != EINTR)
			break;
		if (rv > 0 && !PQconsumeInput(l->db)) {
			pthread_mutex_lock(&l->mu);
			l->lost = true;
			pthread_cond_broadcast(&l->cv);
			pthread_mutex_unlock(&l->mu);
			break;
		}
		while ((nt = PQnotifies(l->db)) != NULL) {
			listener_record(l, nt->extra, t);
			PQfreemem(nt);
		}
	}
	return NULL;
}

static int
listener_start(struct listener *l, const char *conninfo, const char *users,
    size_t cap)
{
	PGresult *res;
	int rv;

	memset(l, 0, sizeof(*l));
	atomic_init(&l->stop, false);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->users = users;
	l->cap = cap;
	if ((l->ev = calloc(cap, sizeof(*l->ev))) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	if ((l->db = pg_open(conninfo)) == NULL)
		return -1;
	res = PQexec(l->db, "LISTEN vgen_job_events");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail("LISTEN vgen_job_events", l->db);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	if ((rv = pthread_create(&l->tid, NULL, listener_main, l)) != 0) {
		fprintf(stderr, "vgen-bench: cannot start a thread: %s\n",
		    strerror(rv));
		return -1;
	}
	l->started = true;
	return 0;
}

/* Safe on a zeroed listener and after listener_start failed. */
static void
listener_fini(struct listener *l)
{
	if (l->started) {
		atomic_store(&l->stop, true);
		pthread_join(l->tid, NULL);
	}
	if (l->cap > 0) {
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->cv);
	}
	PQfinish(l->db);
	free(l->ev);
	memset(l, 0, sizeof(*l));
}

/* The first event of job `id` with `status`, copied; the lock is held. */
static bool
event_find(const struct listener *l, const char *id, char status,
    struct event *out)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->ev[i].status == status && strcmp(l->ev[i].id, id) == 0) {
			*out = l->ev[i];
			return true;
		}
	return false;
}

/* ---- pickup: the phases -------------------------------------------------- */

struct pjob {
	char id[VG_UUID_STRLEN + 1];
	int64_t t_ret;		/* CreateJob returned, bench clock ns */
};

/* One phase: a worker with LISTEN on, or polling alone. */
struct phase {
	const char *name;
	bool listen;
	struct pjob *jobs;	/* n, the warm-up job not among them */
	long n;
	struct idlist ids;	/* the warm-up job and the n */
	uint32_t *lat, *dbl;	/* µs: bench clock; database clock */
	size_t nlat, ndbl;
	long early;		/* claimed before CreateJob returned */
	struct verdict v;
};

static void
phase_fini(struct phase *ph)
{
	free(ph->jobs);
	free(ph->lat);
	free(ph->dbl);
	idlist_fini(&ph->ids);
}

/* CreateJob for user u; the id into `id`, the time it returned in *t. */
static int
create_job(vgen_client *c, const struct bench_user *u, char *id, int64_t *t)
{
	Vgen__V1__CreateJobRequest rq = VGEN__V1__CREATE_JOB_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct vgen_status st;
	int code;

	rq.prompt = "vgen-bench pickup";
	rq.orientation = VGEN__V1__ORIENTATION__PORTRAIT;
	if (vgen_client_set_token(c, u->bearer + strlen("Bearer ")) != 0) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	code = vgen_call(c, M_CREATE, &rq.base, &vgen__v1__video_job__descriptor,
	    &resp, &st);
	*t = now_ns();
	if (code != VG_STATUS_OK) {
		fprintf(stderr, "vgen-bench: CreateJob: %s: %s\n",
		    vgen_status_name(code), st.message);
		if (code == VG_RESOURCE_EXHAUSTED)
			fprintf(stderr, "vgen-bench: a bench user reached the "
			    "server's active-job limit: raise --users, lower "
			    "--rate, or run the server with a larger "
			    "VGEN_MAX_ACTIVE_JOBS\n");
		return -1;
	}
	snprintf(id, VG_UUID_STRLEN + 1, "%s",
	    ((Vgen__V1__VideoJob *)resp)->id);
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

/*
 * wait_claimed waits until job `id` was seen processing, at most
 * timeout_ms, while the worker lives.
 */
static int
wait_claimed(struct run *r, struct listener *l, const char *id,
    int64_t timeout_ms)
{
	int64_t end = now_ns() + timeout_ms * 1000000;
	struct event e;
	bool seen, lost;

	for (;;) {
		struct timespec ts;

		pthread_mutex_lock(&l->mu);
		seen = event_find(l, id, 'p', &e);
		lost = l->lost;
		if (!seen && !lost) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&l->cv, &l->mu, &ts);
			seen = event_find(l, id, 'p', &e);
		}
		pthread_mutex_unlock(&l->mu);
		if (seen)
			return 0;
		if (lost) {
			fprintf(stderr, "vgen-bench: the LISTEN connection "
			    "failed\n");
			return -1;
		}
		if (interrupted) {
			fprintf(stderr, "vgen-bench: interrupted\n");
			return -1;
		}
		if (!child_alive(&r->worker)) {
			child_dead(&r->worker);
			return -1;
		}
		if (now_ns() >= end) {
			fprintf(stderr, "vgen-bench: job %s was not picked up "
			    "within %.1f s\n", id, (double)timeout_ms / 1000);
			log_tail(&r->worker);
			return -1;
		}
	}
}

/* wait_finished waits until the jobs `ids` are all completed or failed. */
static int
wait_finished(struct run *r, const char *ids, long n, int64_t timeout_ms)
{
	int64_t end = now_ns() + timeout_ms * 1000000;
	struct counts c;

	for (;;) {
		if (job_counts(r, ids, &c) < 0)
			return -1;
		if (c.completed + c.failed == n)
			return 0;
		if (interrupted) {
			fprintf(stderr, "vgen-bench: interrupted\n");
			return -1;
		}
		if (!child_alive(&r->worker)) {
			child_dead(&r->worker);
			return -1;
		}
		if (now_ns() >= end) {
			fprintf(stderr, "vgen-bench: after %.0f s, %ld pending "
			    "and %ld processing jobs\n",
			    (double)timeout_ms / 1000, c.pending, c.processing);
			log_tail(&r->worker);
			return -1;
		}
		sleep_ms(100);
	}
}

/* phase_stats pairs every job with its events: the samples, sorted. */
static int
phase_stats(struct phase *ph, struct listener *l)
{
	struct event p, nw;

	ph->lat = calloc((size_t)ph->n, sizeof(*ph->lat));
	ph->dbl = calloc((size_t)ph->n, sizeof(*ph->dbl));
	if (ph->lat == NULL || ph->dbl == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	pthread_mutex_lock(&l->mu);
	for (long i = 0; i < ph->n; i++) {
		const struct pjob *j = &ph->jobs[i];
		int64_t us;

		if (!event_find(l, j->id, 'p', &p))
			continue;
		us = (p.t - j->t_ret) / 1000;
		if (us < 0) {
			/* The claim's commit came before CreateJob's reply. */
			ph->early++;
			us = 0;
		}
		ph->lat[ph->nlat++] = us > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)us;
		if (event_find(l, j->id, 'n', &nw) && p.db_us >= nw.db_us &&
		    p.db_us - nw.db_us <= UINT32_MAX)
			ph->dbl[ph->ndbl++] = (uint32_t)(p.db_us - nw.db_us);
	}
	pthread_mutex_unlock(&l->mu);
	qsort(ph->lat, ph->nlat, sizeof(*ph->lat), cmp_u32);
	qsort(ph->dbl, ph->ndbl, sizeof(*ph->dbl), cmp_u32);
	if ((long)ph->nlat != ph->n) {
		fprintf(stderr, "vgen-bench: %s: %ld of %ld jobs seen "
		    "processing\n", ph->name, (long)ph->nlat, ph->n);
		return -1;
	}
	return 0;
}

/*
 * phase_run starts a worker, makes sure it claims (a warm-up job, not
 * counted), creates the phase's jobs at the rate, waits for every claim
 * and completion, checks them, and stops the worker.
 */
static int
phase_run(struct run *r, const struct wopts *o, vgen_client *c,
    const struct bench_user *users, int nusers, struct listener *l,
    struct phase *ph)
{
	char warm[VG_UUID_STRLEN + 1];
	int64_t t, t_start, wait_ms = o->poll_ms + 15000;

	if ((ph->jobs = calloc((size_t)ph->n, sizeof(*ph->jobs))) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	fprintf(stderr, "vgen-bench: %s: starting vgen-worker "
	    "(VGEN_WORKER_LISTEN=%d, VGEN_POLL_MS=%ld)\n", ph->name,
	    ph->listen ? 1 : 0, o->poll_ms);
	if (worker_start(r, o->database_url, 256, o->poll_ms, ph->listen) < 0)
		return -1;
	if (create_job(c, &users[0], warm, &t) < 0 ||
	    idlist_add(&ph->ids, warm) < 0 ||
	    wait_claimed(r, l, warm, wait_ms) < 0)
		return -1;
	fprintf(stderr, "vgen-bench: %s: the worker claims; %ld jobs at "
	    "%ld/s\n", ph->name, ph->n, o->rate);
	t_start = now_ns();
	for (long i = 0; i < ph->n; i++) {
		int64_t due = t_start + i * 1000000000LL / o->rate;

		if (interrupted) {
			fprintf(stderr, "vgen-bench: interrupted\n");
			return -1;
		}
		if ((t = now_ns()) < due)
			sleep_ms((due - t + 999999) / 1000000);
		if (create_job(c, &users[i % nusers], ph->jobs[i].id,
		    &ph->jobs[i].t_ret) < 0)
			return -1;
		if (idlist_add(&ph->ids, ph->jobs[i].id) < 0) {
			fprintf(stderr, "vgen-bench: out of memory\n");
			return -1;
		}
	}
	for (long i = 0; i < ph->n; i++)
		if (wait_claimed(r, l, ph->jobs[i].id, wait_ms) < 0)
			return -1;
	if (wait_finished(r, ph->ids.s, ph->ids.n, 60000) < 0 ||
	    judge(r, ph->ids.s, &ph->v) < 0)
		return -1;
	child_stop(&r->worker);
	return phase_stats(ph, l);
}

/* users_setup registers the pickup users, on the server's database. */
static int
users_setup(struct run *r, const struct wopts *o, struct bench_user *users,
    int n)
{
	struct idlist ids = { 0 };
	const char *params[1];
	PGresult *res;
	long found;

	for (int i = 0; i < n; i++) {
		if (interrupted || user_setup(o->server, &users[i]) < 0)
			goto fail;
		if (idlist_add(&ids, users[i].id) < 0) {
			fprintf(stderr, "vgen-bench: out of memory\n");
			goto fail;
		}
	}
	r->users = ids.s;
	r->nusers = ids.n;
	params[0] = r->users;
	res = pg_run(r->db, "looking up the bench users", "SELECT count(*) "
	    "FROM users WHERE id = ANY($1::uuid[])", 1, params,
	    PGRES_TUPLES_OK);
	if (res == NULL)
		return -1;
	found = cell(res, 0, 0);
	PQclear(res);
	if (found != n) {
		fprintf(stderr, "vgen-bench: the users registered on %s are "
		    "not in the database of --database-url: the server must "
		    "use that database\n", o->server);
		return -1;
	}
	return 0;
fail:
	/* What was registered is deleted with the run. */
	r->users = ids.s;
	r->nusers = ids.n;
	return -1;
}

static void
phase_row(const struct phase *ph)
{
	printf("%-34s %5ld %9.1f %9.1f %9.1f   %7.1f %7.1f\n", ph->name,
	    ph->n, rank(ph->lat, ph->nlat, 0.50) / 1000.0,
	    rank(ph->lat, ph->nlat, 0.99) / 1000.0,
	    ph->nlat > 0 ? ph->lat[ph->nlat - 1] / 1000.0 : 0.0,
	    rank(ph->dbl, ph->ndbl, 0.50) / 1000.0,
	    rank(ph->dbl, ph->ndbl, 0.99) / 1000.0);
}

static int
mode_pickup(const struct wopts *o)
{
	struct phase ph[2] = {
		{ .name = "LISTEN/NOTIFY", .listen = true, .n = o->n },
		{ .name = "poll only (VGEN_WORKER_LISTEN=0)", .listen = false,
		    .n = o->n },
	};
	struct bench_user *users = NULL;
	struct listener l = { .db = NULL };
	vgen_client *c = NULL;
	struct run r;
	long nusers = o->users;
	bool ok = true;
	int rv = 1;

	/*
	 * Enough users that none has more than 4 jobs active when each job
	 * waits up to a poll, runs 0.5 s and takes some slack to complete.
	 */
	if (nusers == 0)
		nusers = (o->rate * (o->poll_ms + 2500) + 3999) / 4000;
	if (nusers < 1)
		nusers = 1;
	if (nusers > PICKUP_MAX_USERS)
		nusers = PICKUP_MAX_USERS;
	if (run_init(&r, o->database_url) < 0 || db_ready(&r) < 0)
		goto out;
	if ((users = calloc((size_t)nusers, sizeof(*users))) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		goto out;
	}
	if (users_setup(&r, o, users, (int)nusers) < 0)
		goto out;
	if (vgen_client_open(o->server, &c) != 0) {
		fprintf(stderr, "vgen-bench: bad server URL \"%s\"\n",
		    o->server);
		goto out;
	}
	vgen_client_set_timeout(c, 10000);
	/* Each job: pending, processing, maybe a retry; two phases. */
	if (listener_start(&l, o->database_url, r.users,
	    (size_t)(o->n + 1) * 8 + 64) < 0 ||
	    fake_start(&r, PICKUP_STEPS, PICKUP_STEP_MS) < 0)
		goto out;
	for (int i = 0; i < 2; i++)
		if (phase_run(&r, o, c, users, (int)nusers, &l, &ph[i]) < 0)
			goto out;

	printf("vgen-bench worker pickup: %ld jobs a phase at %ld/s over %ld "
	    "users, server %s\n", o->n, o->rate, nusers, o->server);
	printf("chat-sse on fake-sora, 0.5 s generations; VGEN_POLL_MS=%ld "
	    "in both phases\n\n", o->poll_ms);
	printf("%-34s %5s %9s %9s %9s   %15s\n", "CreateJob returned -> "
	    "processing", "jobs", "p50 ms", "p99 ms", "max ms",
	    "db clock p50/p99");
	for (int i = 0; i < 2; i++)
		phase_row(&ph[i]);
	printf("\n");
	for (int i = 0; i < 2; i++) {
		printf("%s: %ld completed, %ld failed, %ld lost, %ld retried "
		    "(with the warm-up job)", ph[i].name, ph[i].v.completed,
		    ph[i].v.failed, ph[i].v.active, ph[i].v.retried);
		if (ph[i].early > 0)
			printf("; %ld claimed before CreateJob's reply arrived "
			    "(counted as 0)", ph[i].early);
		printf("\n");
		if (!verdict_ok(&ph[i].v, ph[i].n + 1))
			ok = false;
	}
	if (l.dropped > 0)
		printf("(%zu notifications beyond the event log's size were "
		    "not kept)\n", l.dropped);
	printf("target (issue 3): LISTEN p99 <= 50 ms: %s\n",
	    rank(ph[0].lat, ph[0].nlat, 0.99) <= 50000 ? "met" : "NOT met");
	fflush(stdout);
	rv = ok ? 0 : 1;
out:
	listener_fini(&l);
	vgen_client_close(c);
	for (long i = 0; users != NULL && i < nusers; i++)
		free(users[i].bearer);
	free(users);
	for (int i = 0; i < 2; i++)
		phase_fini(&ph[i]);
	run_fini(&r);
	return rv;
}

/* ---- arguments ---------------------------------------------------------- */

enum {
	OPT_SECONDS = 256, OPT_STEP_MS, OPT_RATE, OPT_POLL_MS, OPT_USERS,
	OPT_SERVER, OPT_DATABASE_URL,
};

/* 0 to run, 1 after --help, 2 on a usage error (printed). */
static int
parse_opts(int argc, char **argv, struct wopts *o)
{
	static const struct option longopts[] = {
		{ "seconds", required_argument, NULL, OPT_SECONDS },
		{ "step-ms", required_argument, NULL, OPT_STEP_MS },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "poll-ms", required_argument, NULL, OPT_POLL_MS },
		{ "users", required_argument, NULL, OPT_USERS },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "database-url", required_argument, NULL, OPT_DATABASE_URL },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *env;
	bool streams;
	bool n_set = false, set[2] = { false, false }, pset = false;
	int ch;

	if (argc < 3 || strcmp(argv[2], "--help") == 0 ||
	    strcmp(argv[2], "-h") == 0) {
		fputs(usage, argc < 3 ? stderr : stdout);
		return argc < 3 ? 2 : 1;
	}
	o->what = argv[2];
	if (strcmp(o->what, "streams") != 0 && strcmp(o->what, "pickup") != 0) {
		fprintf(stderr, "vgen-bench: worker measures streams or "
		    "pickup, not \"%s\" (see vgen-bench worker --help)\n",
		    o->what);
		return 2;
	}
	streams = strcmp(o->what, "streams") == 0;
	o->seconds = 60;
	o->step_ms = 1000;
	o->rate = 10;
	o->poll_ms = 5000;
	env = getenv("VGEN_SERVER");
	o->server = env != NULL && *env != '\0' ? env : VGEN_DEFAULT_SERVER;
	o->database_url = getenv("VGEN_DATABASE_URL");

	opterr = 0;
	optind = 3;
	while ((ch = getopt_long(argc, argv, ":n:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			if (parse_long("-n", optarg, 1, 100000, &o->n) < 0)
				return 2;
			n_set = true;
			break;
		case OPT_SECONDS:
			if (parse_long("--seconds", optarg, 1, 3600,
			    &o->seconds) < 0)
				return 2;
			set[0] = true;
			break;
		case OPT_STEP_MS:
			if (parse_long("--step-ms", optarg, 10, 60000,
			    &o->step_ms) < 0)
				return 2;
			set[1] = true;
			break;
		case OPT_RATE:
			if (parse_long("--rate", optarg, 1, 1000, &o->rate) < 0)
				return 2;
			pset = true;
			break;
		case OPT_POLL_MS:
			if (parse_long("--poll-ms", optarg, 10, 600000,
			    &o->poll_ms) < 0)
				return 2;
			pset = true;
			break;
		case OPT_USERS:
			if (parse_long("--users", optarg, 0, PICKUP_MAX_USERS,
			    &o->users) < 0)
				return 2;
			pset = true;
			break;
		case OPT_SERVER:
			o->server = optarg;
			pset = true;
			break;
		case OPT_DATABASE_URL:
			o->database_url = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			return opt_error(ch, argv, "vgen-bench worker --help");
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vgen-bench: unexpected argument \"%s\"\n",
		    argv[optind]);
		return 2;
	}
	if (streams && pset) {
		fprintf(stderr, "vgen-bench: --rate, --poll-ms, --users and "
		    "--server belong to pickup\n");
		return 2;
	}
	if (!streams && (set[0] || set[1])) {
		fprintf(stderr, "vgen-bench: --seconds and --step-ms belong "
		    "to streams\n");
		return 2;
	}
	if (!n_set)
		o->n = streams ? 1000 : 200;
	if (o->database_url == NULL || *o->database_url == '\0') {
		fprintf(stderr, "vgen-bench: worker needs --database-url or "
		    "VGEN_DATABASE_URL (the worker it starts claims from "
		    "that database)\n");
		return 2;
	}
	return 0;
}

int
bench_worker_main(int argc, char **argv)
{
	struct sigaction sa = { 0 };
	struct wopts o = { 0 };
	struct rlimit rl;
	int rv;

	if ((rv = parse_opts(argc, argv, &o)) != 0)
		return rv == 1 ? 0 : rv;
	/*
	 * A worker with N streams holds N sockets, and does not raise its
	 * own descriptor limit: ours, raised to the hard limit, is what the
	 * children inherit.
	 */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Stop cleanly on ^C: children stopped, rows and folder removed. */
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(o.what, "streams") == 0)
		return mode_streams(&o);
	return mode_pickup(&o);
}
