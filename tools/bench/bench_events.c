/*
 * tools/bench/bench_events.c: vgen-bench events, the event hub's figures
 * (issue 4).
 *
 *   latency  progress commits at --rate events/s, each the very statement
 *            the worker commits ("job_progress" of store/job.c, on a
 *            synchronous_commit=off session, one transaction per
 *            statement); the job trigger NOTIFYs in that transaction, the
 *            server's hub LISTENs and publishes on pub0, and one sub0
 *            socket in the bench receives.  Latency is taken from the
 *            moment the commit returned to the bench (and, second, from
 *            just before the UPDATE went out) to the receive callback.
 *   fanout   the same with --subscribers sockets (100), every one of which
 *            must get every event; plus the server's CPU over the event
 *            window and over an idle window of the same length, with the
 *            same subscribers connected.
 *   waitjob  parks --calls WaitJob calls (10,000) on the server from a
 *            handful of req0 sockets, one context and one aio per call (no
 *            thread waits), reads the server's VmRSS/RssAnon before and
 *            once all are parked, then one UPDATE wakes them all and every
 *            call must answer OK with the new state.
 *
 * The jobs are the bench user's own, inserted through libpq as
 * 'processing' under a lease held by a made-up worker id (the per-user
 * active-job limit is CreateJob's and is not in the way), and deleted at
 * the end.  Progress only rises in that statement (u.p > j.progress) and
 * the worker never writes 100, so a job carries 99 events (1..99); the
 * events rotate over --jobs jobs (500: at 1,000/s each job is written
 * every 0.5 s, the worker's own per-job gap) and move to fresh jobs every
 * 99 rounds.  Which event a frame is follows from its job and version
 * (every write raises version by one, and only the bench writes these
 * rows), so receivers match frames with no shared state.
 *
 * Before the clock starts, a marker job's event must reach every
 * subscriber (the hub publishes in commit order: it then owes nobody
 * the INSERTs of our jobs).  Beside the subscribers, a libpq LISTEN in
 * the bench takes the same NOTIFYs with no hub and no pub/sub between:
 * the baseline the server's share of latency and loss is read against.
 *
 * Loss, where it comes from: nng 1.5's pub0 keeps one frame in flight and
 * at most 16 queued per subscriber pipe (NNG_OPT_SENDBUF) and drops the
 * oldest beyond that.  A publisher that sends a burst faster than a pipe
 * completes its sends (the hub catching up after a stall, or the hundreds
 * of NOTIFYs of one worker batch) keeps only the newest 17 frames of it
 * on every pipe.  The "lost run" lines show such bursts; --raw shows
 * what nng alone does on the machine.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include "vg.h"
#include "vgen.h"
#include "bench.h"

#define EV_HUB_SENDBUF 1024	/* vgen-server's VGEN_EVENTS_SENDBUF default */
#define EV_STEPS 99		/* events per job: progress 1..99 */
#define EV_MAXSZ (64 * 1024)	/* NNG_OPT_RECVMAXSZ of our sockets */
#define EV_CONNECT_MS 10000	/* every socket must have its pipe by then */
#define EV_BARRIER_MS 10000	/* every subscriber has the marker by then */
#define EV_ARENA 4096		/* one JobEvent unpacks into this */
#define EV_MAX_SLOTS (128u * 1024 * 1024)	/* subscribers x events */
#define WJ_SEND_TIMEOUT_MS 10000
#define WJ_PARK_QUIET_TICKS 2	/* server CPU ticks in 1 s: idle */
#define WJ_PARK_MAX_MS 30000	/* time allowed to park every call */

#define M_WAITJOB "/vgen.v1.VideoJobService/WaitJob"
#define M_GETME "/vgen.v1.UserService/GetMe"

/*
 * The worker's progress statement, "job_progress" of store/job.c, word for
 * word: the bench must commit what the worker commits.  Keep the two in
 * step.
 */
#define EV_PROGRESS_SQL "UPDATE video_jobs j SET progress = u.p FROM " \
	"unnest($1::uuid[], $3::int[], $4::int[]) AS u(id, att, p) " \
	"WHERE j.id = u.id AND j.locked_by = $2 AND j.attempts = u.att " \
	"AND j.status = 'processing' AND u.p > j.progress"

/* The worker's progress session (store_open_async in store/conn.c). */
#define EV_ASYNC_SESSION "SET TIME ZONE 'UTC'; SET synchronous_commit = off"

/*
 * The bench's jobs, as a claim would leave them: processing, attempt 1,
 * leased to us for an hour so no reaper takes them back mid-run.
 */
#define EV_INSERT_SQL "INSERT INTO video_jobs (user_id, prompt, " \
	"orientation, status, attempts, locked_by, locked_until, model) " \
	"SELECT $1::uuid, 'vgen-bench events', 'portrait', 'processing', 1, " \
	"$2, now() + interval '1 hour', 'vgen-bench' " \
	"FROM generate_series(1, $3::int) RETURNING id, version"

/* Rows have no DELETE trigger: removing them publishes nothing. */
#define EV_DELETE_SQL "DELETE FROM video_jobs WHERE user_id = $1::uuid " \
	"AND locked_by = $2"

enum ev_mode { MODE_LATENCY, MODE_FANOUT, MODE_WAITJOB };

struct ev_opts {
	enum ev_mode mode;
	const char *server;
	const char *events;
	const char *database_url;
	pid_t pid;		/* the server; 0 unknown */
	long rate, secs, subs, idle, jobs, batch, conns, drain_ms;
	long calls, sockets, wait_ms;
	bool raw;		/* no server: the bench's own pub0 */
};


struct dist {
	size_t n;
	uint32_t p50, p99, p999, max;	/* µs */
};

/* ---- /proc ------------------------------------------------------------- */

/* VmRSS and RssAnon of pid in kB.  0 or -1. */
static int
proc_mem(pid_t pid, long *rss_kb, long *anon_kb)
{
	char path[64], line[256];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", rss_kb) == 1)
			found |= 1;
		else if (sscanf(line, "RssAnon: %ld kB", anon_kb) == 1)
			found |= 2;
	}
	fclose(f);
	return found == 3 ? 0 : -1;
}

/* One line of /proc/PID/limits, e.g. "Max open files", or "?". */
static void
proc_limit(pid_t pid, const char *name, char *out, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(out, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long soft;

		if (strncmp(line, name, strlen(name)) != 0)
			continue;
		if (sscanf(line + strlen(name), " %llu", &soft) == 1)
			snprintf(out, len, "%llu", soft);
		else
			snprintf(out, len, "unlimited");
		break;
	}
	fclose(f);
}

/*
 * The value of `name` in the server's environment (readable by its owner
 * and root), or "unset"/"?".  Flags on its command line are not looked at.
 */
static void
proc_env(pid_t pid, const char *name, char *out, size_t len)
{
	char path[64], buf[65536];
	size_t n, nl = strlen(name);
	FILE *f;

	snprintf(out, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	snprintf(out, len, "unset");
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		if (strncmp(buf + i, name, nl) == 0 && buf[i + nl] == '=') {
			snprintf(out, len, "%s", buf + i + nl + 1);
			return;
		}
}

/* Prints the CPU used between a and b, in cores (1.0: one core busy). */
static void
cpu_print(const char *what, const struct cpu_mark *a,
    const struct cpu_mark *b, bool raw)
{
	double secs = (double)(b->t - a->t) / 1e9;
	long hz = sysconf(_SC_CLK_TCK), ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (secs <= 0)
		return;
	printf("  cpu %-7s %5.2f s:", what, secs);
	if (a->proc_ok && b->proc_ok)
		printf(" server %.3f cores,", (double)(b->ticks -
		    a->ticks) / (double)hz / secs);
	else if (!raw)
		printf(" server ? (no --server-pid),");
	printf(" bench %.3f,", (b->self_s - a->self_s) / secs);
	if (b->sys_total > a->sys_total)
		printf(" machine %.2f of %ld busy", (double)(b->sys_busy -
		    a->sys_busy) / (double)(b->sys_total - a->sys_total) *
		    (double)ncpu, ncpu);
	printf("\n");
}

/*
 * What else the machine was doing before we started (the cores are
 * shared): load average and the kernel's CPU pressure, when it has PSI.
 */
static void
machine_note(char *out, size_t len)
{
	double load = -1, psi = -1;
	FILE *f;

	if ((f = fopen("/proc/loadavg", "r")) != NULL) {
		if (fscanf(f, "%lf", &load) != 1)
			load = -1;
		fclose(f);
	}
	if ((f = fopen("/proc/pressure/cpu", "r")) != NULL) {
		if (fscanf(f, "some avg10=%lf", &psi) != 1)
			psi = -1;
		fclose(f);
	}
	snprintf(out, len, "%ld cores, load average %.2f, CPU pressure "
	    "(some, 10 s) %.0f%%", sysconf(_SC_NPROCESSORS_ONLN), load, psi);
	if (psi < 0)
		snprintf(out + strlen(out), len - strlen(out), " (no PSI)");
}

/* ---- small helpers ------------------------------------------------------- */

/* Sorts v and takes the quantiles. */
static void
dist_of(uint32_t *v, size_t n, struct dist *d)
{
	qsort(v, n, sizeof(*v), cmp_u32);
	d->n = n;
	d->p50 = rank(v, n, 0.50);
	d->p99 = rank(v, n, 0.99);
	d->p999 = rank(v, n, 0.999);
	d->max = n > 0 ? v[n - 1] : 0;
}

static void
dist_print(const char *what, const struct dist *d)
{
	printf("  %-22s p50 %7.3f ms  p99 %7.3f ms  p99.9 %7.3f ms  "
	    "max %8.3f ms  (n=%zu)\n", what, d->p50 / 1e3, d->p99 / 1e3,
	    d->p999 / 1e3, d->max / 1e3, d->n);
}

/* ns → µs for rank(); a negative span (clocks read out of order) is 0. */
static uint32_t
span_us(int64_t from, int64_t to)
{
	int64_t us = (to - from) / 1000;

	return us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void
sleep_until(int64_t t_ns)
{
	struct timespec ts = { t_ns / 1000000000, t_ns % 1000000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

/* Runs sql (no parameters) and wants PGRES_COMMAND_OK/TUPLES_OK.  0/-1. */
static int
pg_run(PGconn *db, const char *sql, const char *what)
{
	PGresult *res = PQexec(db, sql);
	int st = PQresultStatus(res), rv = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_fail(what, db);
		rv = -1;
	}
	PQclear(res);
	return rv;
}

/* ---- the bench's jobs ------------------------------------------------ */

struct ev_jobs {
	PGconn *db;		/* inserts, the clean-up */
	char worker[40];	/* locked_by of our jobs */
	char user_id[VG_UUID_STRLEN + 1];
	uint32_t n;
	char (*id)[VG_UUID_STRLEN + 1];	/* by job index */
	uint32_t *by_id;	/* job indexes sorted by id */
	bool made;
};

static int
cmp_job(const void *a, const void *b, void *arg)
{
	const struct ev_jobs *j = arg;

	return strcmp(j->id[*(const uint32_t *)a], j->id[*(const uint32_t *)b]);
}

/* The index of job `id`, or -1 when it is not one of ours. */
static long
jobs_find(const struct ev_jobs *j, const char *id, size_t len)
{
	size_t lo = 0, hi = j->n;

	if (len != VG_UUID_STRLEN)
		return -1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(j->id[j->by_id[mid]], id, VG_UUID_STRLEN);

		if (c == 0)
			return j->by_id[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * jobs_make inserts n jobs for user_id in one statement and checks that
 * each starts at version 1 (the event index depends on it).  0 or -1.
 */
static int
jobs_make(struct ev_jobs *j, const char *conninfo, const char *user_id,
    uint32_t n)
{
	char count[16], rnd[9];
	const char *params[] = { user_id, j->worker, count };
	PGresult *res = NULL;
	int rv = -1;

	random_chars(rnd, 8);
	snprintf(j->worker, sizeof(j->worker), "vgen-bench-%s", rnd);
	snprintf(j->user_id, sizeof(j->user_id), "%s", user_id);
	snprintf(count, sizeof(count), "%" PRIu32, n);
	if ((j->db = pg_open(conninfo)) == NULL)
		return -1;
	/* Columns are timestamps without zone, kept in UTC (store/conn.c). */
	if (pg_run(j->db, "SET TIME ZONE 'UTC'", "setting the time zone") < 0)
		return -1;
	j->id = calloc(n, sizeof(*j->id));
	j->by_id = calloc(n, sizeof(*j->by_id));
	if (j->id == NULL || j->by_id == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	res = PQexecParams(j->db, EV_INSERT_SQL, 3, NULL, params, NULL, NULL,
	    0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_fail("inserting the bench jobs", j->db);
		goto out;
	}
	j->made = true;
	if ((uint32_t)PQntuples(res) != n) {
		fprintf(stderr, "vgen-bench: inserted %d jobs, not %" PRIu32
		    "\n", PQntuples(res), n);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		snprintf(j->id[i], sizeof(j->id[i]), "%s",
		    PQgetvalue(res, (int)i, 0));
		if (strcmp(PQgetvalue(res, (int)i, 1), "1") != 0) {
			fprintf(stderr, "vgen-bench: a new job has version "
			    "%s, not 1: has migrations/0002_queue.sql "
			    "changed?\n", PQgetvalue(res, (int)i, 1));
			goto out;
		}
		j->by_id[i] = i;
	}
	j->n = n;
	qsort_r(j->by_id, n, sizeof(*j->by_id), cmp_job, j);
	rv = 0;
out:
	PQclear(res);
	return rv;
}

static void
jobs_fini(struct ev_jobs *j)
{
	const char *params[] = { j->user_id, j->worker };
	PGresult *res;

	if (j->made && j->db != NULL) {
		res = PQexecParams(j->db, EV_DELETE_SQL, 2, NULL, params, NULL,
		    NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			pg_fail("deleting the bench jobs", j->db);
		PQclear(res);
	}
	PQfinish(j->db);
	free(j->id);
	free(j->by_id);
	memset(j, 0, sizeof(*j));
}

/*
 * A session that commits progress as the worker's does, with the
 * statement prepared.  NULL on failure (printed).
 */
static PGconn *
progress_session(const char *conninfo)
{
	PGconn *db = pg_open(conninfo);
	PGresult *res;

	if (db == NULL)
		return NULL;
	if (pg_run(db, EV_ASYNC_SESSION, "setting up the session") < 0) {
		PQfinish(db);
		return NULL;
	}
	res = PQprepare(db, "job_progress", EV_PROGRESS_SQL, 4, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail("preparing job_progress", db);
		PQclear(res);
		PQfinish(db);
		return NULL;
	}
	PQclear(res);
	return db;
}

/*
 * The job_progress arrays for n jobs.  ids, atts and ps hold at least
 * n * 37 + 2, n * 2 + 2 and n * 4 + 2 bytes.
 */
static void
progress_params(const struct ev_jobs *j, const uint32_t *job, const int *p,
    int n, char *ids, char *atts, char *ps)
{
	size_t a = 0, b = 0, c = 0;

	ids[a++] = atts[b++] = ps[c++] = '{';
	for (int k = 0; k < n; k++) {
		if (k > 0)
			ids[a++] = atts[b++] = ps[c++] = ',';
		memcpy(ids + a, j->id[job[k]], VG_UUID_STRLEN);
		a += VG_UUID_STRLEN;
		atts[b++] = '1';
		/* A progress is 0..100: at most 3 digits, as sized above. */
		c += (size_t)snprintf(ps + c, 4, "%d",
		    p[k] < 0 ? 0 : p[k] > 100 ? 100 : p[k]);
	}
	ids[a++] = atts[b++] = ps[c++] = '}';
	ids[a] = atts[b] = ps[c] = '\0';
}

/* ---- the event runs: senders ----------------------------------------- */

struct ev_run;

/* One libpq connection committing its share of the events. */
struct ev_sender {
	struct ev_run *run;
	int c;			/* takes events i with i % nsenders == c */
	pthread_t tid;
	bool started;
	PGconn *db;
	uint32_t *rtt;		/* µs per statement: send → commit return */
	size_t nrtt;
	uint64_t sent, failed;
	int64_t max_behind;	/* ns late against the schedule */
	char err[200];		/* the first failure */
};

/* One sub0 socket: what it got, by event index. */
struct ev_sub {
	struct ev_run *run;
	nng_socket sock;
	bool open;
	nng_aio *aio;
	atomic_int npipes;
	atomic_int drops;	/* pipes lost during the run */
	int64_t *recv;		/* bench clock at receipt; 0: not yet */
	atomic_uint_fast64_t got;	/* read live by the drain */
	uint64_t dups, other, bad, errors;
	uint64_t inserts;	/* our jobs' INSERT events, published late */
	atomic_bool marker;	/* the barrier event arrived */
	ProtobufCAllocator alloc;	/* into arena, freed all at once */
	size_t used;
	_Alignas(16) unsigned char arena[EV_ARENA];
};

/*
 * The baseline: the same NOTIFYs straight to a libpq LISTEN in the bench,
 * no hub and no pub/sub between, so the server's share of the latency
 * shows.
 */
struct ev_listen {
	struct ev_run *run;
	PGconn *db;
	pthread_t tid;
	bool started;
	int64_t *recv;		/* bench clock at receipt; 0: not yet */
	atomic_uint_fast64_t got;
	uint64_t other, dups;
	char err[200];
};

struct ev_run {
	const struct ev_opts *o;
	struct ev_jobs jobs;
	uint32_t pool;		/* jobs written in turn */
	uint32_t marker;	/* the last job: the barrier, no event of ours */
	uint64_t total;		/* events scheduled */
	int64_t t0;		/* event 0 is due then */
	int64_t *t_send, *t_commit;	/* by event; t_commit 0: not sent */
	char prefix[64];	/* "job.<user_id>." */
	size_t plen;
	struct ev_sender *snd;
	int nsnd;
	struct ev_sub *sub;
	int nsub;
	int sub_recvbuf, pub_sendbuf;	/* nng's defaults, as read */
	char machine[128];		/* before the run */
	struct ev_listen lis;		/* the baseline */
	nng_socket pub;			/* --raw: ours, on pub_url */
	bool pub_open;
	char pub_url[64];
	const char *events;		/* where the subscribers dial */
	char user_id[VG_UUID_STRLEN + 1];
	atomic_bool stop;
};

/*
 * Event i writes progress step (1..99) of job `job`: the jobs of one
 * "generation" (pool of them) are written in turn, 99 rounds, then the
 * next generation takes over.
 */
static void
event_of(const struct ev_run *r, uint64_t i, uint32_t *job, int *step)
{
	uint64_t round = i / r->pool, slot = i % r->pool;

	*job = (uint32_t)((round / EV_STEPS) * r->pool + slot);
	*step = (int)(round % EV_STEPS) + 1;
}

/* The event a (job, version, progress) frame reports, or -1. */
static int64_t
event_index(const struct ev_run *r, uint32_t job, uint64_t version,
    int progress)
{
	uint64_t gen = job / r->pool, slot = job % r->pool, i;

	/* Version 1 is the INSERT; step s leaves version s + 1. */
	if (version < 2 || version > EV_STEPS + 1 ||
	    (int)version - 1 != progress)
		return -1;
	i = (gen * EV_STEPS + (version - 2)) * r->pool + slot;
	return i < r->total ? (int64_t)i : -1;
}

static void *
sender_main(void *arg)
{
	struct ev_sender *s = arg;
	struct ev_run *r = s->run;
	uint64_t C = (uint64_t)r->nsnd, B = (uint64_t)r->o->batch;
	char *ids = malloc(B * (VG_UUID_STRLEN + 1) + 2);
	char *atts = malloc(B * 2 + 2), *ps = malloc(B * 4 + 2);
	uint32_t *job = malloc(B * sizeof(*job));
	int *step = malloc(B * sizeof(*step));
	const char *params[4];

	if (ids == NULL || atts == NULL || ps == NULL || job == NULL ||
	    step == NULL) {
		snprintf(s->err, sizeof(s->err), "out of memory");
		goto out;
	}
	params[0] = ids;
	params[1] = r->jobs.worker;
	params[2] = atts;
	params[3] = ps;
	for (uint64_t k0 = 0; !atomic_load(&r->stop); k0 += B) {
		uint64_t first = (uint64_t)s->c + C * k0, last, n = 0;
		int64_t due, ts, tc;
		PGresult *res;
		bool ok;

		if (first >= r->total)
			break;
		for (; n < B && first + C * n < r->total; n++)
			event_of(r, first + C * n, &job[n], &step[n]);
		last = first + C * (n - 1);
		/* A batch goes out when its last event is due, as a tick. */
		due = r->t0 + (int64_t)(last * 1000000000ull /
		    (uint64_t)r->o->rate);
		sleep_until(due);
		progress_params(&r->jobs, job, step, (int)n, ids, atts, ps);
		ts = now_ns();
		res = PQexecPrepared(s->db, "job_progress", 4, params, NULL,
		    NULL, 0);
		tc = now_ns();
		if (ts - due > s->max_behind)
			s->max_behind = ts - due;
		ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
		    strtoull(PQcmdTuples(res), NULL, 10) == n;
		if (!ok && s->err[0] == '\0') {
			if (PQresultStatus(res) == PGRES_COMMAND_OK)
				snprintf(s->err, sizeof(s->err), "job_progress "
				    "updated %s of %" PRIu64 " rows (someone "
				    "else wrote the bench jobs?)",
				    PQcmdTuples(res), n);
			else
				snprintf(s->err, sizeof(s->err), "%.*s",
				    (int)strcspn(PQerrorMessage(s->db), "\n"),
				    PQerrorMessage(s->db));
		}
		PQclear(res);
		if (s->nrtt < r->total)
			s->rtt[s->nrtt++] = span_us(ts, tc);
		for (uint64_t k = 0; k < n; k++) {
			r->t_send[first + C * k] = ts;
			r->t_commit[first + C * k] = ok ? tc : 0;
		}
		if (ok)
			s->sent += n;
		else
			s->failed += n;
		if (!ok && PQstatus(s->db) != CONNECTION_OK)
			break;	/* the rest would fail the same way */
	}
out:
	free(ids);
	free(atts);
	free(ps);
	free(job);
	free(step);
	return NULL;
}

/* ---- the event runs: subscribers -------------------------------------- */

/* protobuf-c allocates into the socket's arena: no malloc per frame. */
static void *
arena_alloc(void *data, size_t size)
{
	struct ev_sub *s = data;
	size_t at = (s->used + 15) & ~(size_t)15;

	if (at + size > sizeof(s->arena))
		return NULL;	/* the unpack fails: counted as bad */
	s->used = at + size;
	return s->arena + at;
}

static void
arena_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

/* One frame: topic, 0x00, JobEvent.  Records it by event index. */
static void
sub_frame(struct ev_sub *s, const uint8_t *b, size_t len, int64_t t)
{
	struct ev_run *r = s->run;
	const uint8_t *nul = memchr(b, '\0', len);
	Vgen__V1__JobEvent *e;
	size_t tl;
	long job;
	int64_t i;

	if (nul == NULL) {
		s->bad++;
		return;
	}
	tl = (size_t)(nul - b);
	if (tl < r->plen || memcmp(b, r->prefix, r->plen) != 0) {
		s->other++;	/* nng's sub0 filters: should not happen */
		return;
	}
	s->used = 0;
	e = vgen__v1__job_event__unpack(&s->alloc, len - tl - 1, nul + 1);
	if (e == NULL) {
		s->bad++;
		return;
	}
	/* The topic's job must be the event's. */
	if (e->job_id == NULL || strlen(e->job_id) != tl - r->plen ||
	    memcmp(e->job_id, b + r->plen, tl - r->plen) != 0) {
		s->bad++;
		return;
	}
	job = jobs_find(&r->jobs, e->job_id, strlen(e->job_id));
	i = job < 0 ? -1 : event_index(r, (uint32_t)job, e->version,
	    e->progress);
	if (job == (long)r->marker)
		atomic_store(&s->marker, true);
	else if (i < 0 && job >= 0 && e->version == 1)
		s->inserts++;
	else if (i < 0)
		s->other++;
	else if (s->recv[i] != 0)
		s->dups++;
	else {
		s->recv[i] = t;
		atomic_fetch_add(&s->got, 1);
	}
}

static void
sub_cb(void *arg)
{
	struct ev_sub *s = arg;
	int rv = nng_aio_result(s->aio);
	int64_t t = now_ns();
	nng_msg *m;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv != 0) {
		s->errors++;
	} else {
		m = nng_aio_get_msg(s->aio);
		sub_frame(s, nng_msg_body(m), nng_msg_len(m), t);
		nng_msg_free(m);
	}
	if (!atomic_load(&s->run->stop))
		nng_recv_aio(s->sock, s->aio);
}

static void
sub_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct ev_sub *s = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&s->npipes, 1);
	else if (atomic_fetch_sub(&s->npipes, 1) == 1 &&
	    !atomic_load(&s->run->stop))	/* not our own close */
		atomic_fetch_add(&s->drops, 1);
}

/* Opens, subscribes and dials; does not wait for the pipe.  0 or -1. */
static int
sub_open(struct ev_run *r, struct ev_sub *s)
{
	int rv;

	s->run = r;
	s->alloc.alloc = arena_alloc;
	s->alloc.free = arena_free;
	s->alloc.allocator_data = s;
	if ((rv = nng_sub0_open(&s->sock)) != 0)
		goto fail;
	s->open = true;
	/* RECVMAXSZ is a frame-size bound (DESIGN §6), not a buffer. */
	if ((rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ,
	    EV_MAXSZ)) != 0 ||
	    (rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, r->prefix,
	    r->plen)) != 0 ||
	    (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, sub_pipe,
	    s)) != 0 ||
	    (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, sub_pipe,
	    s)) != 0 ||
	    (rv = nng_aio_alloc(&s->aio, sub_cb, s)) != 0 ||
	    (rv = nng_dial(s->sock, r->events, NULL,
	    NNG_FLAG_NONBLOCK)) != 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "vgen-bench: subscriber on %s: %s\n", r->events,
	    nng_strerror(rv));
	return -1;
}

static void
sub_close(struct ev_sub *s)
{
	if (s->aio != NULL)
		nng_aio_stop(s->aio);	/* waits out a running callback */
	if (s->open)
		nng_close(s->sock);
	if (s->aio != NULL)
		nng_aio_free(s->aio);
	s->aio = NULL;
	s->open = false;
}

/* ---- the event runs: the LISTEN baseline ------------------------------ */

/*
 * The value of "key" in the trigger's JSON (json_build_object's text: a
 * string or a number) into out.  0, or -1 when absent.
 */
static int
json_field(const char *js, const char *key, char *out, size_t len)
{
	char pat[32];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\"", key);
	if ((p = strstr(js, pat)) == NULL)
		return -1;
	p += strlen(pat);
	p += strspn(p, " :");
	if (*p == '"') {
		p++;
		while (p[n] != '\0' && p[n] != '"')
			n++;
	} else {
		while (p[n] == '-' || (p[n] >= '0' && p[n] <= '9'))
			n++;
	}
	if (n == 0 || n >= len)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static void
listen_event(struct ev_listen *l, const char *payload, int64_t t)
{
	struct ev_run *r = l->run;
	char id[VG_UUID_STRLEN + 1], ver[24], prog[16];
	long job;
	int64_t i;

	if (json_field(payload, "job_id", id, sizeof(id)) < 0 ||
	    json_field(payload, "version", ver, sizeof(ver)) < 0 ||
	    json_field(payload, "progress", prog, sizeof(prog)) < 0 ||
	    (job = jobs_find(&r->jobs, id, strlen(id))) < 0) {
		l->other++;	/* someone else's job */
		return;
	}
	i = event_index(r, (uint32_t)job, strtoull(ver, NULL, 10),
	    atoi(prog));
	if (i < 0)
		l->other++;
	else if (l->recv[i] != 0)
		l->dups++;
	else {
		l->recv[i] = t;
		atomic_fetch_add(&l->got, 1);
	}
}

static void *
listen_main(void *arg)
{
	struct ev_listen *l = arg;
	int fd = PQsocket(l->db);

	while (!atomic_load(&l->run->stop)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		PGnotify *n;
		int64_t t;

		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			break;
		if (!PQconsumeInput(l->db)) {
			snprintf(l->err, sizeof(l->err), "%.*s",
			    (int)strcspn(PQerrorMessage(l->db), "\n"),
			    PQerrorMessage(l->db));
			break;
		}
		t = now_ns();
		while ((n = PQnotifies(l->db)) != NULL) {
			listen_event(l, n->extra, t);
			PQfreemem(n);
		}
	}
	return NULL;
}

static int
listen_start(struct ev_run *r, struct ev_listen *l)
{
	l->run = r;
	if ((l->recv = calloc(r->total, sizeof(*l->recv))) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	if ((l->db = pg_open(r->o->database_url)) == NULL ||
	    pg_run(l->db, "LISTEN vgen_job_events", "LISTEN") < 0)
		return -1;
	if (pthread_create(&l->tid, NULL, listen_main, l) != 0) {
		fprintf(stderr, "vgen-bench: cannot start a thread\n");
		return -1;
	}
	l->started = true;
	return 0;
}

/* After r->stop: joins the thread.  Safe on a zeroed struct. */
static void
listen_stop(struct ev_listen *l)
{
	if (l->started)
		pthread_join(l->tid, NULL);
	l->started = false;
	PQfinish(l->db);
	l->db = NULL;
}

/* ---- the event runs ---------------------------------------------------- */

/*
 * What nng gives our sub0 sockets (not raised: the "default
 * buffers"), and a fresh pub0 socket, for comparison with the hub's
 * VGEN_EVENTS_SENDBUF (EV_HUB_SENDBUF by default).
 */
static void
read_buffers(struct ev_run *r)
{
	nng_socket pub;

	r->pub_sendbuf = r->sub_recvbuf = -1;
	if (nng_pub0_open(&pub) == 0) {
		(void)nng_socket_get_int(pub, NNG_OPT_SENDBUF, &r->pub_sendbuf);
		nng_close(pub);
	}
	if (r->nsub > 0)
		(void)nng_socket_get_int(r->sub[0].sock, NNG_OPT_RECVBUF,
		    &r->sub_recvbuf);
}

/* Waits until every subscriber has its pipe.  0 or -1. */
static int
subs_connect(struct ev_run *r)
{
	int64_t until = now_ns() + (int64_t)EV_CONNECT_MS * 1000000;
	int up = 0;

	while (now_ns() < until) {
		up = 0;
		for (int k = 0; k < r->nsub; k++)
			up += atomic_load(&r->sub[k].npipes) > 0;
		if (up == r->nsub)
			return 0;
		sleep_ms(10);
	}
	fprintf(stderr, "vgen-bench: %d of %d subscribers connected to %s "
	    "within %d s\n", up, r->nsub, r->events, EV_CONNECT_MS / 1000);
	return -1;
}

/* Latency samples of one receiver (recv by event) into lat and lats. */
static uint64_t
ev_samples(const struct ev_run *r, const int64_t *recv, uint32_t *lat,
    uint32_t *lats, size_t *n, uint64_t *early)
{
	uint64_t miss = 0;

	for (uint64_t i = 0; i < r->total; i++) {
		if (r->t_commit[i] == 0)
			continue;	/* its commit failed */
		if (recv[i] == 0) {
			miss++;
			continue;
		}
		if (recv[i] < r->t_commit[i])
			(*early)++;
		lat[*n] = span_us(r->t_commit[i], recv[i]);
		if (lats != NULL)
			lats[*n] = span_us(r->t_send[i], recv[i]);
		(*n)++;
	}
	return miss;
}

/*
 * Where a subscriber lost events: the first runs of consecutive losses,
 * when they were committed, and how late the events around them came (a
 * hub running behind publishes what it owes in a burst).
 */
static void
ev_loss_runs(const struct ev_run *r, const struct ev_sub *s, int k)
{
	uint64_t i = 0, j;
	int shown = 0;

	while (i < r->total && shown < 5) {
		uint32_t worst = 0;

		if (r->t_commit[i] == 0 || s->recv[i] != 0) {
			i++;
			continue;
		}
		for (j = i; j < r->total && r->t_commit[j] != 0 &&
		    s->recv[j] == 0; j++)
			;
		for (uint64_t x = i > 64 ? i - 64 : 0; x < j + 64 &&
		    x < r->total; x++)
			if (r->t_commit[x] != 0 && s->recv[x] != 0 &&
			    span_us(r->t_commit[x], s->recv[x]) > worst)
				worst = span_us(r->t_commit[x], s->recv[x]);
		printf("  lost run    subscriber %d: %" PRIu64 " events in a "
		    "row, committed at %.3f s; received neighbours up to %.1f "
		    "ms late\n", k, j - i, (double)(r->t_commit[i] - r->t0) /
		    1e9, worst / 1e3);
		shown++;
		i = j;
	}
}

/*
 * Prints what the run measured and returns the exit code: 1 when an
 * event was lost or a commit failed.
 */
static int
ev_report(struct ev_run *r, const struct cpu_mark *idle0,
    const struct cpu_mark *idle1, const struct cpu_mark *run0,
    const struct cpu_mark *run1, int64_t t_last)
{
	const struct ev_opts *o = r->o;
	uint64_t sent = 0, failed = 0, lost = 0, dups = 0, other = 0, bad = 0;
	uint64_t errors = 0, gmin = UINT64_MAX, gmax = 0, early = 0;
	uint64_t by_all = 0, by_some = 0, lmiss, learly = 0, inserts = 0;
	int lossy = 0, first_lossy = -1, drops = 0, code = 0;
	int64_t behind = 0;
	uint32_t *lat = NULL, *lats = NULL, *rtt = NULL;
	size_t nlat = 0, nrtt = 0;
	struct dist d;
	double secs;

	for (int c = 0; c < r->nsnd; c++) {
		sent += r->snd[c].sent;
		failed += r->snd[c].failed;
		nrtt += r->snd[c].nrtt;
		if (r->snd[c].max_behind > behind)
			behind = r->snd[c].max_behind;
		if (r->snd[c].err[0] != '\0')
			fprintf(stderr, "vgen-bench: commit failed: %s\n",
			    r->snd[c].err);
	}
	if (r->lis.err[0] != '\0')
		fprintf(stderr, "vgen-bench: LISTEN baseline: %s\n",
		    r->lis.err);
	lat = malloc((sent * (uint64_t)r->nsub + 1) * sizeof(*lat));
	lats = malloc((sent * (uint64_t)r->nsub + 1) * sizeof(*lats));
	rtt = malloc((nrtt + 1) * sizeof(*rtt));
	if (lat == NULL || lats == NULL || rtt == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		code = 2;
		goto out;
	}
	nrtt = 0;
	for (int c = 0; c < r->nsnd; c++) {
		memcpy(rtt + nrtt, r->snd[c].rtt, r->snd[c].nrtt *
		    sizeof(*rtt));
		nrtt += r->snd[c].nrtt;
	}
	for (int k = 0; k < r->nsub; k++) {
		struct ev_sub *s = &r->sub[k];
		uint64_t miss = ev_samples(r, s->recv, lat, lats, &nlat,
		    &early);

		gmin = sent - miss < gmin ? sent - miss : gmin;
		gmax = sent - miss > gmax ? sent - miss : gmax;
		lost += miss;
		if (miss > 0 && first_lossy < 0)
			first_lossy = k;
		lossy += miss > 0;
		dups += s->dups;
		other += s->other;
		inserts += s->inserts;
		bad += s->bad;
		errors += s->errors;
		drops += atomic_load(&s->drops);
	}
	for (uint64_t i = 0; i < r->total && lost > 0; i++) {
		int n = 0;

		if (r->t_commit[i] == 0)
			continue;
		for (int k = 0; k < r->nsub; k++)
			n += r->sub[k].recv[i] == 0;
		by_some += n > 0;
		by_all += n == r->nsub;
	}

	secs = (double)(t_last - r->t0) / 1e9;
	printf("events %s: %d subscriber%s, %ld events/s for %ld s over %"
	    PRIu32 " jobs (%u at a time), %ld per statement, %d connection%s"
	    "\n", o->mode == MODE_LATENCY ? "latency" : "fanout", r->nsub,
	    r->nsub == 1 ? "" : "s", o->rate, o->secs, r->jobs.n - 1, r->pool,
	    o->batch, r->nsnd, r->nsnd == 1 ? "" : "s");
	printf("  machine     before: %s\n", r->machine);
	if (o->raw)
		printf("  path        --raw: the bench's own pub0 on %s, "
		    "published as the hub does -> sub0 (no server, no "
		    "PostgreSQL)\n", r->pub_url);
	else
		printf("  path        job_progress UPDATE (synchronous_commit "
		    "off, one transaction) -> trigger NOTIFY -> hub LISTEN -> "
		    "pub0 -> sub0\n");
	printf("  buffers     sub0 recv-buffer %d messages (nng's default, "
	    "not raised); pub0 send-buffer per pipe: the server's "
	    "VGEN_EVENTS_SENDBUF (%d by default; nng's own is %d)\n",
	    r->sub_recvbuf, EV_HUB_SENDBUF, r->pub_sendbuf);
	printf("  sent        %" PRIu64 " events in %.2f s = %.1f/s; %" PRIu64
	    " failed; sender at most %.2f ms behind schedule\n", sent, secs,
	    secs > 0 ? (double)sent / secs : 0.0, failed, behind / 1e6);
	dist_of(rtt, nrtt, &d);
	if (!o->raw)
		dist_print("commit round trip", &d);
	printf("  received    per subscriber min %" PRIu64 " max %" PRIu64
	    " of %" PRIu64 "; lost %" PRIu64 " (%d subscriber%s short; %"
	    PRIu64 " events missed by some, %" PRIu64 " by all), duplicates %"
	    PRIu64 ", other %" PRIu64 ", undecodable %" PRIu64 ", receive "
	    "errors %" PRIu64 ", pipes dropped %d\n",
	    gmin == UINT64_MAX ? 0 : gmin, gmax, sent, lost, lossy,
	    lossy == 1 ? "" : "s", by_some, by_all, dups, other, bad, errors,
	    drops);
	if (inserts > 0)
		printf("  (%" PRIu64 " INSERT events of the bench jobs came after "
		    "the subscriptions and were left out)\n", inserts);
	if (first_lossy >= 0)
		ev_loss_runs(r, &r->sub[first_lossy], first_lossy);
	dist_of(lat, nlat, &d);
	dist_print("latency from commit", &d);
	if (r->nsub == 1)
		printf("  target      p99 <= 10 ms from the commit: %s\n",
		    d.n > 0 && d.p99 <= 10000 ? "met" : "missed");
	dist_of(lats, nlat, &d);
	dist_print("latency from send", &d);
	if (early > 0)
		printf("  (%" PRIu64 " frames arrived before PQexec returned "
		    "their commit: counted as 0 from the commit)\n", early);

	/* The baseline: the same NOTIFYs without the server. */
	if (o->raw)
		goto cpu;
	nlat = 0;
	lmiss = ev_samples(r, r->lis.recv, lat, NULL, &nlat, &learly);
	printf("  baseline    a libpq LISTEN in the bench, no hub: got %zu, "
	    "lost %" PRIu64 ", %" PRIu64 " before the commit returned\n",
	    nlat, lmiss, learly);
	dist_of(lat, nlat, &d);
	dist_print("NOTIFY from commit", &d);
cpu:
	if (idle1->t > idle0->t)
		cpu_print("idle", idle0, idle1, o->raw);
	cpu_print("events", run0, run1, o->raw);
	if (lost > 0 || failed > 0 || sent == 0)
		code = 1;
out:
	free(lat);
	free(lats);
	free(rtt);
	return code;
}

/* ---- the event runs: --raw, nng alone ---------------------------------- */

/*
 * --raw publishes the frames itself, from a pub0 socket in the bench
 * driven as the hub drives its own (nng_sendmsg, non-blocking, nothing
 * set but RECVMAXSZ): no PostgreSQL, no server, the same subscribers.
 * What nng pub/sub alone delivers on this machine.
 */

/* Ids that look like the server's: random, in UUID form. */
static void
raw_uuid(char *out)
{
	char hex[33];

	random_chars(hex, 32);
	for (int i = 0; i < 32; i++)	/* [a-z0-9] → hex digits */
		hex[i] = "0123456789abcdef"[(unsigned char)hex[i] % 16];
	snprintf(out, VG_UUID_STRLEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex,
	    hex + 8, hex + 12, hex + 16, hex + 20);
}

static int
raw_jobs(struct ev_jobs *j, uint32_t n)
{
	j->id = calloc(n, sizeof(*j->id));
	j->by_id = calloc(n, sizeof(*j->by_id));
	if (j->id == NULL || j->by_id == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		raw_uuid(j->id[i]);
		j->by_id[i] = i;
	}
	j->n = n;
	qsort_r(j->by_id, n, sizeof(*j->by_id), cmp_job, j);
	return 0;
}

/* The hub's frame for (job, version, progress), published now. */
static int
raw_publish(struct ev_run *r, uint32_t job, uint64_t version, int progress)
{
	Vgen__V1__JobEvent ev = VGEN__V1__JOB_EVENT__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	char topic[2 * VG_UUID_STRLEN + 8];
	size_t tl, n;
	nng_msg *m;
	uint8_t *b;

	ev.job_id = r->jobs.id[job];
	ev.user_id = r->user_id;
	ev.status = VGEN__V1__JOB_STATUS__PROCESSING;
	ev.progress = progress;
	ev.video_id = "";
	ev.error_message = "";
	ts.seconds = vg_wall_us() / 1000000;
	ev.updated_at = &ts;
	ev.version = version;
	tl = (size_t)snprintf(topic, sizeof(topic), "job.%s.%s", r->user_id,
	    r->jobs.id[job]);
	n = vgen__v1__job_event__get_packed_size(&ev);
	if (nng_msg_alloc(&m, tl + 1 + n) != 0)
		return -1;
	b = nng_msg_body(m);
	memcpy(b, topic, tl);
	b[tl] = 0;
	vgen__v1__job_event__pack(&ev, b + tl + 1);
	if (nng_sendmsg(r->pub, m, NNG_FLAG_NONBLOCK) != 0) {
		nng_msg_free(m);
		return -1;
	}
	return 0;
}

/* The sender of --raw: one thread, on the same schedule. */
static void *
raw_main(void *arg)
{
	struct ev_sender *s = arg;
	struct ev_run *r = s->run;

	for (uint64_t i = 0; i < r->total && !atomic_load(&r->stop); i++) {
		int64_t due = r->t0 + (int64_t)(i * 1000000000ull /
		    (uint64_t)r->o->rate), t;
		uint32_t job;
		int step;

		sleep_until(due);
		event_of(r, i, &job, &step);
		t = now_ns();
		if (t - due > s->max_behind)
			s->max_behind = t - due;
		r->t_send[i] = r->t_commit[i] = t;
		if (raw_publish(r, job, (uint64_t)step + 1, step) < 0) {
			r->t_commit[i] = 0;
			s->failed++;
			if (s->err[0] == '\0')
				snprintf(s->err, sizeof(s->err), "nng_sendmsg "
				    "failed");
			continue;
		}
		s->sent++;
	}
	return NULL;
}

/* Our pub0 on a free loopback port.  0 or -1. */
static int
raw_open(struct ev_run *r)
{
	nng_listener l;
	nng_sockaddr sa;
	int rv;

	if ((rv = nng_pub0_open(&r->pub)) != 0)
		goto fail;
	r->pub_open = true;
	nng_socket_set_size(r->pub, NNG_OPT_RECVMAXSZ, 1024);
	/* As the hub sets it (VGEN_EVENTS_SENDBUF's default). */
	nng_socket_set_int(r->pub, NNG_OPT_SENDBUF, EV_HUB_SENDBUF);
	if ((rv = nng_listen(r->pub, "tcp://127.0.0.1:0", &l, 0)) != 0 ||
	    (rv = nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa)) != 0)
		goto fail;
	snprintf(r->pub_url, sizeof(r->pub_url), "tcp://127.0.0.1:%u",
	    (unsigned)ntohs(sa.s_in.sa_port));
	r->events = r->pub_url;
	return 0;
fail:
	fprintf(stderr, "vgen-bench: --raw pub0: %s\n", nng_strerror(rv));
	return -1;
}

/*
 * The barrier: a progress event on the marker job, and wait until every
 * subscriber has it.  The hub publishes in commit order, so by then it
 * owes nobody anything from before (the INSERTs of our jobs) and every
 * subscription works end to end.  pub/sub may drop it like any event:
 * then the next step goes out, a second later.  0 or -1.
 */
static int
ev_barrier(struct ev_run *r)
{
	char ids[VG_UUID_STRLEN + 3], atts[4], ps[6];
	const char *params[] = { ids, r->jobs.worker, atts, ps };
	int64_t until = now_ns() + (int64_t)EV_BARRIER_MS * 1000000, next = 0;
	uint32_t job = r->marker;
	int step = 0, seen = 0;
	PGresult *res;

	while (now_ns() < until) {
		seen = 0;
		for (int k = 0; k < r->nsub; k++)
			seen += atomic_load(&r->sub[k].marker);
		if (step > 0 && seen == r->nsub)
			return 0;
		if (now_ns() >= next && step < EV_STEPS && r->o->raw) {
			step++;
			(void)raw_publish(r, job, (uint64_t)step + 1, step);
			next = now_ns() + 1000000000;
		} else if (now_ns() >= next && step < EV_STEPS) {
			step++;
			progress_params(&r->jobs, &job, &step, 1, ids, atts,
			    ps);
			res = PQexecPrepared(r->snd[0].db, "job_progress", 4,
			    params, NULL, NULL, 0);
			if (PQresultStatus(res) != PGRES_COMMAND_OK ||
			    strcmp(PQcmdTuples(res), "1") != 0) {
				pg_fail("the barrier's progress update",
				    r->snd[0].db);
				PQclear(res);
				return -1;
			}
			PQclear(res);
			next = now_ns() + 1000000000;
		}
		sleep_ms(5);
	}
	fprintf(stderr, "vgen-bench: %d of %d subscribers got the barrier "
	    "event within %d s: is the hub publishing on %s?\n", seen,
	    r->nsub, EV_BARRIER_MS / 1000, r->events);
	return -1;
}

static int
mode_events(const struct ev_opts *o)
{
	struct ev_run r = { 0 };
	struct bench_user u = { 0 };
	struct cpu_mark idle0 = { 0 }, idle1 = { 0 }, run0, run1;
	uint64_t rounds, gens, slots;
	int64_t t_last = 0, until;
	int code = 2;

	r.o = o;
	r.nsub = (int)o->subs;
	r.nsnd = (int)o->conns;
	/* Each job stays on one connection: its events commit in order. */
	r.pool = (uint32_t)(((o->jobs + r.nsnd - 1) / r.nsnd) * r.nsnd);
	if ((uint64_t)o->batch * (uint64_t)r.nsnd > r.pool) {
		fprintf(stderr, "vgen-bench: --batch x --connections must not "
		    "exceed --jobs (a statement names a job once)\n");
		return 2;
	}
	r.total = (uint64_t)o->rate * (uint64_t)o->secs;
	rounds = (r.total + r.pool - 1) / r.pool;
	gens = (rounds + EV_STEPS - 1) / EV_STEPS;
	slots = r.total * (uint64_t)r.nsub;
	if (slots > EV_MAX_SLOTS || gens * r.pool > 10000000) {
		fprintf(stderr, "vgen-bench: %" PRIu64 " events x %d "
		    "subscribers is more than this bench keeps in memory\n",
		    r.total, r.nsub);
		return 2;
	}

	machine_note(r.machine, sizeof(r.machine));
	r.marker = (uint32_t)(gens * r.pool);
	r.events = o->events;
	if (o->raw) {
		raw_uuid(r.user_id);
		if (raw_jobs(&r.jobs, r.marker + 1) < 0 || raw_open(&r) < 0)
			goto out;
	} else {
		if (user_setup(o->server, &u) < 0)
			goto out;
		snprintf(r.user_id, sizeof(r.user_id), "%s", u.id);
		if (jobs_make(&r.jobs, o->database_url, u.id, r.marker + 1) <
		    0)
			goto out;
	}
	snprintf(r.prefix, sizeof(r.prefix), "job.%s.", r.user_id);
	r.plen = strlen(r.prefix);
	r.t_send = calloc(r.total, sizeof(*r.t_send));
	r.t_commit = calloc(r.total, sizeof(*r.t_commit));
	r.snd = calloc((size_t)r.nsnd, sizeof(*r.snd));
	r.sub = calloc((size_t)r.nsub, sizeof(*r.sub));
	if (r.t_send == NULL || r.t_commit == NULL || r.snd == NULL ||
	    r.sub == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		goto out;
	}
	for (int c = 0; c < r.nsnd; c++) {
		r.snd[c].run = &r;
		r.snd[c].c = c;
		r.snd[c].rtt = calloc(r.total, sizeof(*r.snd[c].rtt));
		if (r.snd[c].rtt == NULL) {
			fprintf(stderr, "vgen-bench: out of memory\n");
			goto out;
		}
		if (!o->raw && (r.snd[c].db =
		    progress_session(o->database_url)) == NULL)
			goto out;
	}
	for (int k = 0; k < r.nsub; k++) {
		r.sub[k].recv = calloc(r.total, sizeof(*r.sub[k].recv));
		if (r.sub[k].recv == NULL) {
			fprintf(stderr, "vgen-bench: out of memory\n");
			goto out;
		}
		if (sub_open(&r, &r.sub[k]) < 0)
			goto out;
	}
	if (subs_connect(&r) < 0)
		goto out;
	read_buffers(&r);
	for (int k = 0; k < r.nsub; k++)
		nng_recv_aio(r.sub[k].sock, r.sub[k].aio);
	if (!o->raw && listen_start(&r, &r.lis) < 0)
		goto out;
	if (ev_barrier(&r) < 0)
		goto out;

	if (o->idle > 0) {
		cpu_read(o->pid, &idle0);
		sleep_ms(o->idle * 1000);
		cpu_read(o->pid, &idle1);
	}
	r.t0 = now_ns() + 10 * 1000000;
	cpu_read(o->pid, &run0);
	for (int c = 0; c < r.nsnd; c++) {
		if (pthread_create(&r.snd[c].tid, NULL, o->raw ? raw_main :
		    sender_main, &r.snd[c]) != 0) {
			fprintf(stderr, "vgen-bench: cannot start a thread\n");
			atomic_store(&r.stop, true);
			break;
		}
		r.snd[c].started = true;
	}
	for (int c = 0; c < r.nsnd; c++)
		if (r.snd[c].started)
			pthread_join(r.snd[c].tid, NULL);
	cpu_read(o->pid, &run1);
	for (uint64_t i = 0; i < r.total; i++)
		if (r.t_commit[i] > t_last)
			t_last = r.t_commit[i];

	/* Late events: wait until every receiver has them all, or drain. */
	until = now_ns() + o->drain_ms * 1000000;
	for (;;) {
		uint64_t want = 0;
		bool all;

		for (int c = 0; c < r.nsnd; c++)
			want += r.snd[c].sent;
		all = o->raw || atomic_load(&r.lis.got) >= want;
		for (int k = 0; k < r.nsub && all; k++)
			all = atomic_load(&r.sub[k].got) >= want;
		if (all || now_ns() >= until)
			break;
		sleep_ms(10);
	}
	atomic_store(&r.stop, true);
	listen_stop(&r.lis);
	for (int k = 0; k < r.nsub; k++)
		sub_close(&r.sub[k]);
	code = ev_report(&r, &idle0, &idle1, &run0, &run1, t_last);
out:
	atomic_store(&r.stop, true);
	listen_stop(&r.lis);
	free(r.lis.recv);
	if (r.sub != NULL)
		for (int k = 0; k < r.nsub; k++) {
			sub_close(&r.sub[k]);
			free(r.sub[k].recv);
		}
	if (r.snd != NULL)
		for (int c = 0; c < r.nsnd; c++) {
			PQfinish(r.snd[c].db);
			free(r.snd[c].rtt);
		}
	if (r.pub_open)
		nng_close(r.pub);
	jobs_fini(&r.jobs);
	free(r.sub);
	free(r.snd);
	free(r.t_send);
	free(r.t_commit);
	users_drop(o->database_url, &u, 1);
	free(u.bearer);
	return code;
}

/* ---- waitjob ------------------------------------------------------------- */

struct wj;

/* One WaitJob call: a req0 context and the aio that carries it. */
struct wj_call {
	struct wj *wj;
	nng_ctx ctx;		/* closed with its socket */
	nng_aio *aio;
	uint32_t job;
	bool sending;
	bool done;
	int code;		/* StatusCode, or -1 transport, -2 bad reply */
	int progress;		/* of the job in the answer */
	int64_t t_done;
};

struct wj {
	const struct ev_opts *o;
	struct ev_jobs jobs;
	nng_socket *socks;
	int nsocks;
	atomic_int npipes;
	struct wj_call *calls;
	long ncalls;
	char rid_prefix[9];
	const char *bearer;
	atomic_long sent, answered, send_failed;
	_Atomic int64_t t_all_sent;	/* the last send completed */
};

enum { WJ_TRANSPORT = -1, WJ_BADREPLY = -2 };

static void
wj_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct wj *w = arg;

	(void)p;
	atomic_fetch_add(&w->npipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

/* Reads one reply: the status, and the job's progress when OK. */
static void
wj_reply(struct wj_call *c, nng_msg *m)
{
	Vgen__V1__RpcResponse *resp;
	Vgen__V1__VideoJob *job;

	resp = vg_env_response_decode(nng_msg_body(m), nng_msg_len(m));
	if (resp == NULL) {
		c->code = WJ_BADREPLY;
		return;
	}
	c->code = (int)resp->code;
	if (resp->code == VGEN__V1__STATUS_CODE__OK) {
		job = vgen__v1__video_job__unpack(NULL, resp->payload.len,
		    resp->payload.data);
		if (job == NULL || strcmp(job->id, c->wj->jobs.id[c->job]) != 0)
			c->code = WJ_BADREPLY;
		else
			c->progress = job->progress;
		if (job != NULL)
			vgen__v1__video_job__free_unpacked(job, NULL);
	}
	vgen__v1__rpc_response__free_unpacked(resp, NULL);
}

static void
wj_cb(void *arg)
{
	struct wj_call *c = arg;
	struct wj *w = c->wj;
	int rv = nng_aio_result(c->aio);
	int64_t t = now_ns();
	nng_msg *m;

	if (c->sending) {
		c->sending = false;
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			c->code = WJ_TRANSPORT;
			c->t_done = t;
			c->done = true;
			atomic_fetch_add(&w->send_failed, 1);
			atomic_fetch_add(&w->answered, 1);
			return;
		}
		if (atomic_fetch_add(&w->sent, 1) + 1 == w->ncalls)
			atomic_store(&w->t_all_sent, t);
		/* The server answers at timeout_ms at the latest. */
		nng_aio_set_timeout(c->aio, (nng_duration)(w->o->wait_ms +
		    20000));
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	if (rv != 0) {
		c->code = WJ_TRANSPORT;
	} else {
		m = nng_aio_get_msg(c->aio);
		wj_reply(c, m);
		nng_msg_free(m);
	}
	c->t_done = t;
	c->done = true;
	atomic_fetch_add(&w->answered, 1);
}

/* The RpcRequest frame of call n: WaitJob on its job, as we know it. */
static int
wj_frame(struct wj *w, long n, nng_msg **out)
{
	Vgen__V1__WaitJobRequest rq = VGEN__V1__WAIT_JOB_REQUEST__INIT;
	Vgen__V1__RpcRequest env = VGEN__V1__RPC_REQUEST__INIT;
	uint8_t payload[256];
	char rid[32];
	size_t len;
	nng_msg *m;

	rq.id = w->jobs.id[w->calls[n].job];
	rq.known_status = VGEN__V1__JOB_STATUS__PROCESSING;
	rq.known_progress = 0;
	rq.timeout_ms = (uint32_t)w->o->wait_ms;
	if (vgen__v1__wait_job_request__get_packed_size(&rq) > sizeof(payload))
		return -1;
	env.payload.len = vgen__v1__wait_job_request__pack(&rq, payload);
	env.payload.data = payload;
	env.method = M_WAITJOB;
	env.authorization = (char *)w->bearer;
	/* libvgen-client's form: an id as long as real ones are. */
	snprintf(rid, sizeof(rid), "%s-%ld", w->rid_prefix, n + 1);
	env.request_id = rid;
	/* The proto's advice: the call outlives the wait. */
	env.timeout_ms = (uint32_t)w->o->wait_ms + 5000;
	len = vgen__v1__rpc_request__get_packed_size(&env);
	if (nng_msg_alloc(&m, len) != 0)
		return -1;
	vgen__v1__rpc_request__pack(&env, nng_msg_body(m));
	*out = m;
	return 0;
}

/* A timed GetMe on a fresh connection: ms, or -1 when it failed. */
static double
wj_getme(const struct wj *w)
{
	Vgen__V1__GetMeRequest rq = VGEN__V1__GET_ME_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	vgen_client *c = NULL;
	struct vgen_status st;
	double ms = -1;
	int64_t t;

	if (vgen_client_open(w->o->server, &c) != 0)
		return -1;
	vgen_client_set_timeout(c, 10000);
	(void)vgen_client_set_token(c, w->bearer + strlen("Bearer "));
	t = now_ns();
	if (vgen_call(c, M_GETME, &rq.base, &vgen__v1__user__descriptor,
	    &resp, &st) == VG_STATUS_OK)
		ms = (double)(now_ns() - t) / 1e6;
	else
		fprintf(stderr, "vgen-bench: GetMe: %s: %s\n",
		    vg_status_name(st.code), st.message);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	vgen_client_close(c);
	return ms;
}

static void
wj_close(struct wj *w)
{
	if (w->calls != NULL)
		for (long n = 0; n < w->ncalls; n++)
			if (w->calls[n].aio != NULL)
				nng_aio_stop(w->calls[n].aio);
	if (w->socks != NULL)
		for (int k = 0; k < w->nsocks; k++)
			nng_close(w->socks[k]);
	if (w->calls != NULL)
		for (long n = 0; n < w->ncalls; n++)
			if (w->calls[n].aio != NULL)
				nng_aio_free(w->calls[n].aio);
	free(w->calls);
	free(w->socks);
	w->calls = NULL;
	w->socks = NULL;
}

static int
mode_waitjob(const struct ev_opts *o)
{
	struct wj w = { 0 };
	struct bench_user u = { 0 };
	char lim[32], env_ctx[32], env_thr[32], machine[128];
	const char *params[4];
	char *ids = NULL, *atts = NULL, *ps = NULL;
	uint32_t *job = NULL, *lat = NULL;
	int *step = NULL;
	long rss0 = 0, anon0 = 0, rss1 = 0, anon1 = 0, rss2 = 0, anon2 = 0;
	long early = 0, bad = 0, nlat = 0, rem;
	int64_t t_send0, t_parked, t_rel0, t_rel, until;
	uint64_t ticks0 = 0, ticks1;
	struct rlimit rl;
	struct dist d;
	PGresult *res;
	double getme;
	int code = 2, up = 0;

	w.o = o;
	w.ncalls = o->calls;
	w.nsocks = (int)o->sockets;
	atomic_init(&w.npipes, 0);
	if (proc_mem(o->pid, &rss0, &anon0) < 0) {
		fprintf(stderr, "vgen-bench: cannot read /proc/%d/status: "
		    "waitjob needs --server-pid of a server on this host\n",
		    (int)o->pid);
		return 2;
	}
	proc_limit(o->pid, "Max open files", lim, sizeof(lim));
	proc_env(o->pid, "VGEN_CONTEXTS", env_ctx, sizeof(env_ctx));
	proc_env(o->pid, "VGEN_THREADS", env_thr, sizeof(env_thr));
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		rl.rlim_cur = 0;
	machine_note(machine, sizeof(machine));
	printf("waitjob: %ld calls over %d req0 sockets (one context and "
	    "one aio per call), %ld jobs, timeout_ms %ld\n", o->calls,
	    w.nsocks, o->jobs, o->wait_ms);
	printf("  limits      server (pid %d): open files %s, VGEN_CONTEXTS "
	    "%s, VGEN_THREADS %s; bench open files %llu (a socket is one "
	    "connection, a context none)\n", (int)o->pid, lim, env_ctx,
	    env_thr, (unsigned long long)rl.rlim_cur);
	printf("  machine     before: %s\n", machine);

	if (user_setup(o->server, &u) < 0)
		goto out;
	w.bearer = u.bearer;
	random_chars(w.rid_prefix, 8);
	if (jobs_make(&w.jobs, o->database_url, u.id, (uint32_t)o->jobs) < 0)
		goto out;

	w.socks = calloc((size_t)w.nsocks, sizeof(*w.socks));
	w.calls = calloc((size_t)w.ncalls, sizeof(*w.calls));
	if (w.socks == NULL || w.calls == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		goto out;
	}
	for (int k = 0; k < w.nsocks; k++) {
		int rv;

		if ((rv = nng_req0_open(&w.socks[k])) != 0) {
			fprintf(stderr, "vgen-bench: req0: %s\n",
			    nng_strerror(rv));
			w.nsocks = k;
			goto out;
		}
		nng_socket_set_size(w.socks[k], NNG_OPT_RECVMAXSZ,
		    VG_CLIENT_MAX_FRAME);
		/* A resend would be a second parked call: never. */
		nng_socket_set_ms(w.socks[k], NNG_OPT_REQ_RESENDTIME,
		    NNG_DURATION_INFINITE);
		nng_pipe_notify(w.socks[k], NNG_PIPE_EV_ADD_POST, wj_pipe, &w);
		nng_pipe_notify(w.socks[k], NNG_PIPE_EV_REM_POST, wj_pipe, &w);
		if ((rv = nng_dial(w.socks[k], o->server, NULL, 0)) != 0) {
			fprintf(stderr, "vgen-bench: dial %s: %s\n", o->server,
			    nng_strerror(rv));
			goto out;
		}
	}
	for (long n = 0; n < w.ncalls; n++) {
		struct wj_call *c = &w.calls[n];
		int rv;

		c->wj = &w;
		c->job = (uint32_t)(n % o->jobs);
		if ((rv = nng_ctx_open(&c->ctx, w.socks[n % w.nsocks])) != 0 ||
		    (rv = nng_aio_alloc(&c->aio, wj_cb, c)) != 0) {
			fprintf(stderr, "vgen-bench: call %ld: %s\n", n,
			    nng_strerror(rv));
			goto out;
		}
	}
	until = now_ns() + (int64_t)EV_CONNECT_MS * 1000000;
	while ((up = atomic_load(&w.npipes)) < w.nsocks && now_ns() < until)
		sleep_ms(10);
	if (up < w.nsocks) {
		fprintf(stderr, "vgen-bench: %d of %d sockets connected\n", up,
		    w.nsocks);
		goto out;
	}

	/* Before: our connections are up, nothing is parked. */
	sleep_ms(1000);
	if (proc_mem(o->pid, &rss0, &anon0) < 0)
		goto proc_gone;
	t_send0 = now_ns();
	for (long n = 0; n < w.ncalls; n++) {
		struct wj_call *c = &w.calls[n];
		nng_msg *m;

		if (wj_frame(&w, n, &m) < 0) {
			fprintf(stderr, "vgen-bench: out of memory\n");
			goto out;
		}
		c->sending = true;
		nng_aio_set_timeout(c->aio, WJ_SEND_TIMEOUT_MS);
		nng_aio_set_msg(c->aio, m);
		nng_ctx_send(c->ctx, c->aio);
	}

	/*
	 * Parked means: every request went out, none came back, and the
	 * server has been idle for a second (a request still queued or
	 * being read would keep it busy).
	 */
	until = t_send0 + (int64_t)WJ_PARK_MAX_MS * 1000000;
	if (proc_ticks(o->pid, &ticks0) < 0)
		goto proc_gone;
	for (;;) {
		sleep_ms(1000);
		if (proc_ticks(o->pid, &ticks1) < 0)
			goto proc_gone;
		if (atomic_load(&w.answered) > 0) {
			fprintf(stderr, "vgen-bench: %ld calls answered before "
			    "the job changed: not parked\n",
			    atomic_load(&w.answered));
			code = 1;
			break;
		}
		if (atomic_load(&w.sent) == w.ncalls &&
		    ticks1 - ticks0 <= WJ_PARK_QUIET_TICKS)
			break;
		ticks0 = ticks1;
		if (now_ns() > until) {
			fprintf(stderr, "vgen-bench: calls not parked after %d "
			    "s (%ld of %ld sent; server still busy)\n",
			    WJ_PARK_MAX_MS / 1000, atomic_load(&w.sent),
			    w.ncalls);
			code = 1;
			break;
		}
	}
	if (code == 1)
		goto out;
	t_parked = now_ns();
	if (proc_mem(o->pid, &rss1, &anon1) < 0)
		goto proc_gone;
	getme = wj_getme(&w);
	printf("  parked      %ld calls sent in %.2f s, none answered, server "
	    "idle for 1 s after; GetMe meanwhile %.2f ms\n",
	    atomic_load(&w.sent), (double)(atomic_load(&w.t_all_sent) -
	    t_send0) / 1e9, getme);
	printf("  server RSS  before %ld kB (anon %ld kB), parked %ld kB "
	    "(anon %ld kB)\n", rss0, anon0, rss1, anon1);
	printf("  per call    %.0f bytes RSS, %.0f bytes anon (on a fresh "
	    "server: one that parked calls before reuses what they freed)\n",
	    (double)(rss1 - rss0) * 1024.0 / (double)w.ncalls,
	    (double)(anon1 - anon0) * 1024.0 / (double)w.ncalls);
	if (getme < 0) {
		code = 1;
		goto out;
	}
	if ((t_parked - t_send0) / 1000000 > o->wait_ms - 5000) {
		fprintf(stderr, "vgen-bench: parking took longer than the "
		    "wait: raise --wait-ms or lower --calls\n");
		code = 1;
		goto out;
	}

	/* Release: the worker's statement raises every job to 1. */
	ids = malloc((size_t)o->jobs * (VG_UUID_STRLEN + 1) + 2);
	atts = malloc((size_t)o->jobs * 2 + 2);
	ps = malloc((size_t)o->jobs * 4 + 2);
	job = malloc((size_t)o->jobs * sizeof(*job));
	step = malloc((size_t)o->jobs * sizeof(*step));
	lat = malloc((size_t)w.ncalls * sizeof(*lat));
	if (ids == NULL || atts == NULL || ps == NULL || job == NULL ||
	    step == NULL || lat == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		goto out;
	}
	for (long k = 0; k < o->jobs; k++) {
		job[k] = (uint32_t)k;
		step[k] = 1;
	}
	progress_params(&w.jobs, job, step, (int)o->jobs, ids, atts, ps);
	params[0] = ids;
	params[1] = w.jobs.worker;
	params[2] = atts;
	params[3] = ps;
	if (pg_run(w.jobs.db, EV_ASYNC_SESSION, "setting up the session") < 0)
		goto out;
	t_rel0 = now_ns();
	res = PQexecParams(w.jobs.db, EV_PROGRESS_SQL, 4, NULL, params, NULL,
	    NULL, 0);
	t_rel = now_ns();
	if (PQresultStatus(res) != PGRES_COMMAND_OK ||
	    strtol(PQcmdTuples(res), NULL, 10) != o->jobs) {
		pg_fail("releasing the calls", w.jobs.db);
		PQclear(res);
		code = 1;
		goto out;
	}
	PQclear(res);
	until = now_ns() + (o->wait_ms + 10000) * 1000000;
	while (atomic_load(&w.answered) < w.ncalls && now_ns() < until)
		sleep_ms(10);
	sleep_ms(500);	/* the server frees what it sent */
	if (proc_mem(o->pid, &rss2, &anon2) < 0)
		goto proc_gone;

	/* Calls still out stop here: their fields are ours to read. */
	for (long n = 0; n < w.ncalls; n++)
		nng_aio_stop(w.calls[n].aio);
	rem = w.ncalls - atomic_load(&w.answered);
	for (long n = 0; n < w.ncalls; n++) {
		struct wj_call *c = &w.calls[n];

		if (!c->done)
			continue;
		/* An answer may beat PQexec's return, not the UPDATE. */
		if (c->t_done < t_rel0)
			early++;
		else if (c->code != 0 || c->progress != 1)
			bad++;
		else
			lat[nlat++] = span_us(t_rel, c->t_done);
	}
	printf("  released    one UPDATE of %ld jobs (PQexec %.2f ms): %ld "
	    "answered OK with the new progress, %ld failed or stale, %ld "
	    "early, %ld never\n", o->jobs, (double)(t_rel - t_rel0) / 1e6,
	    nlat, bad, early, rem);
	dist_of(lat, (size_t)nlat, &d);
	dist_print("answer after commit", &d);
	for (long n = 0, k = 0; n < w.ncalls; n++)
		if (w.calls[n].done && w.calls[n].t_done >= t_rel0 &&
		    w.calls[n].code == 0 && w.calls[n].progress == 1)
			lat[k++] = span_us(t_rel0, w.calls[n].t_done);
	dist_of(lat, (size_t)nlat, &d);
	dist_print("answer after send", &d);
	printf("  server RSS  after all answered %ld kB (anon %ld kB)\n", rss2,
	    anon2);
	code = nlat == w.ncalls ? 0 : 1;
	if (bad > 0) {
		for (long n = 0; n < w.ncalls; n++)
			if (w.calls[n].done && w.calls[n].code != 0) {
				fprintf(stderr, "vgen-bench: e.g. call %ld: "
				    "%s\n", n, w.calls[n].code < 0 ?
				    (w.calls[n].code == WJ_TRANSPORT ?
				    "transport error" : "bad reply") :
				    vg_status_name(w.calls[n].code));
				break;
			}
	}
	goto out;
proc_gone:
	fprintf(stderr, "vgen-bench: server pid %d went away\n", (int)o->pid);
	code = 1;
out:
	wj_close(&w);
	jobs_fini(&w.jobs);
	free(ids);
	free(atts);
	free(ps);
	free(job);
	free(step);
	free(lat);
	users_drop(o->database_url, &u, 1);
	free(u.bearer);
	return code;
}

/* ---- options ------------------------------------------------------------- */

static const char usage[] =
    "usage: vgen-bench events latency|fanout|waitjob [options]\n"
    "\n"
    "latency  one sub0 subscriber; progress committed at --rate events/s,\n"
    "         each as the worker commits it: the job_progress UPDATE of\n"
    "         store/job.c on a synchronous_commit=off session, one\n"
    "         transaction a statement; the trigger NOTIFYs, the server's hub\n"
    "         publishes, the bench receives.  Latency from the commit's\n"
    "         return to the bench, and from just before the UPDATE was sent.\n"
    "fanout   the same with --subscribers sockets, each of which must get\n"
    "         every event (nng's default buffers); the server's CPU over the\n"
    "         event window and over an idle window of the same length.\n"
    "waitjob  parks --calls WaitJob calls, reads the server's VmRSS and\n"
    "         RssAnon before and once all are parked (bytes per parked\n"
    "         call), then one UPDATE wakes them all; each must answer OK.\n"
    "         Run it on a freshly started server: memory that earlier\n"
    "         calls freed would be reused and hide the cost.\n"
    "\n"
    "The bench user's jobs are inserted through libpq as processing under a\n"
    "made-up worker's lease and deleted at the end.  Exit 0; 1 when an\n"
    "event was lost, a commit or a call failed; 2 on a usage or setup error.\n"
    "\n"
    "  --server URL          RPC endpoint ($VGEN_SERVER, tcp://127.0.0.1:7400)\n"
    "  --events URL          pub socket ($VGEN_EVENTS, tcp://127.0.0.1:7401)\n"
    "  --database-url CONN   the server's database ($VGEN_DATABASE_URL);\n"
    "                        the bench user is deleted from it at the end\n"
    "  --server-pid PID      vgen-server on this host, for CPU and memory\n"
    "  --server-pid-file F   read the pid from F (tools/up writes\n"
    "                        var/run/vgen-server.pid)\n"
    "  -r, --rate N          events a second (1000)\n"
    "  -d, --duration S      seconds of events (10)\n"
    "  -s, --subscribers N   sub0 sockets (latency 1, fanout 100)\n"
    "      --idle S          idle window first (fanout: -d; latency: 0)\n"
    "      --jobs N          jobs the events rotate over (500: at 1000/s\n"
    "                        each is written every 0.5 s, the worker's\n"
    "                        per-job gap); waitjob: jobs waited on (100)\n"
    "      --batch N         jobs per statement (1); a worker writes all\n"
    "                        that changed in its 250 ms tick in one\n"
    "                        statement: about 250 at 1000 events/s\n"
    "      --connections N   libpq connections committing (1)\n"
    "      --drain MS        wait for late events after the last commit\n"
    "                        (3000)\n"
    "      --calls N         waitjob: calls to park (10000)\n"
    "      --sockets N       waitjob: req0 sockets carrying them (16)\n"
    "      --wait-ms MS      waitjob: WaitJob timeout_ms (60000, the most\n"
    "                        the server allows)\n"
    "      --raw             latency, fanout: no server and no database;\n"
    "                        the bench publishes the hub's frames from its\n"
    "                        own pub0 (send buffer as the hub's) on the same schedule:\n"
    "                        what nng pub/sub alone delivers here\n";

enum {
	OPT_SERVER = 256, OPT_EVENTS, OPT_DB, OPT_PID, OPT_PIDFILE, OPT_IDLE,
	OPT_JOBS, OPT_BATCH, OPT_CONNS, OPT_DRAIN, OPT_CALLS, OPT_SOCKETS,
	OPT_WAITMS, OPT_RAW,
};

static const struct option longopts[] = {
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "events", required_argument, NULL, OPT_EVENTS },
	{ "database-url", required_argument, NULL, OPT_DB },
	{ "server-pid", required_argument, NULL, OPT_PID },
	{ "server-pid-file", required_argument, NULL, OPT_PIDFILE },
	{ "rate", required_argument, NULL, 'r' },
	{ "duration", required_argument, NULL, 'd' },
	{ "subscribers", required_argument, NULL, 's' },
	{ "idle", required_argument, NULL, OPT_IDLE },
	{ "jobs", required_argument, NULL, OPT_JOBS },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "connections", required_argument, NULL, OPT_CONNS },
	{ "drain", required_argument, NULL, OPT_DRAIN },
	{ "calls", required_argument, NULL, OPT_CALLS },
	{ "sockets", required_argument, NULL, OPT_SOCKETS },
	{ "wait-ms", required_argument, NULL, OPT_WAITMS },
	{ "raw", no_argument, NULL, OPT_RAW },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* 0 to run, 1 after --help, 2 on a usage error (printed). */
static int
parse(int argc, char **argv, struct ev_opts *o)
{
	long subs = -1, idle = -1, jobs = -1, v;
	const char *mode;
	int ch;

	o->server = getenv("VGEN_SERVER") ? getenv("VGEN_SERVER") :
	    VGEN_DEFAULT_SERVER;
	o->events = getenv("VGEN_EVENTS") ? getenv("VGEN_EVENTS") :
	    "tcp://127.0.0.1:7401";
	o->database_url = getenv("VGEN_DATABASE_URL");
	o->rate = 1000;
	o->secs = 10;
	o->batch = 1;
	o->conns = 1;
	o->drain_ms = 3000;
	o->calls = 10000;
	o->sockets = 16;
	o->wait_ms = 60000;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "r:d:s:h", longopts, NULL)) !=
	    -1) {
		int rv = 0;

		switch (ch) {
		case OPT_SERVER:
			o->server = optarg;
			break;
		case OPT_EVENTS:
			o->events = optarg;
			break;
		case OPT_DB:
			o->database_url = optarg;
			break;
		case OPT_PID:
			rv = parse_long("--server-pid", optarg, 1, INT32_MAX, &v);
			o->pid = (pid_t)v;
			break;
		case OPT_PIDFILE:
			rv = pid_file(optarg, &o->pid);
			break;
		case 'r':
			rv = parse_long("--rate", optarg, 1, 100000, &o->rate);
			break;
		case 'd':
			rv = parse_long("--duration", optarg, 1, 3600, &o->secs);
			break;
		case 's':
			rv = parse_long("--subscribers", optarg, 1, 10000, &subs);
			break;
		case OPT_IDLE:
			rv = parse_long("--idle", optarg, 0, 3600, &idle);
			break;
		case OPT_JOBS:
			rv = parse_long("--jobs", optarg, 1, 1000000, &jobs);
			break;
		case OPT_BATCH:
			rv = parse_long("--batch", optarg, 1, 10000, &o->batch);
			break;
		case OPT_CONNS:
			rv = parse_long("--connections", optarg, 1, 64, &o->conns);
			break;
		case OPT_DRAIN:
			rv = parse_long("--drain", optarg, 0, 600000, &o->drain_ms);
			break;
		case OPT_CALLS:
			rv = parse_long("--calls", optarg, 1, 1000000, &o->calls);
			break;
		case OPT_SOCKETS:
			rv = parse_long("--sockets", optarg, 1, 1024, &o->sockets);
			break;
		case OPT_WAITMS:
			rv = parse_long("--wait-ms", optarg, 1000, 60000, &o->wait_ms);
			break;
		case OPT_RAW:
			o->raw = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			fputs(usage, stderr);
			return 2;
		}
		if (rv < 0)
			return 2;
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	mode = argv[optind];
	if (strcmp(mode, "latency") == 0)
		o->mode = MODE_LATENCY;
	else if (strcmp(mode, "fanout") == 0)
		o->mode = MODE_FANOUT;
	else if (strcmp(mode, "waitjob") == 0)
		o->mode = MODE_WAITJOB;
	else {
		fprintf(stderr, "vgen-bench: events: no mode \"%s\"\n", mode);
		return 2;
	}
	o->subs = subs >= 0 ? subs : o->mode == MODE_FANOUT ? 100 : 1;
	o->idle = idle >= 0 ? idle : o->mode == MODE_FANOUT ? o->secs : 0;
	o->jobs = jobs >= 0 ? jobs : o->mode == MODE_WAITJOB ? 100 : 500;
	if (o->raw && o->mode == MODE_WAITJOB) {
		fprintf(stderr, "vgen-bench: --raw is for latency and "
		    "fanout\n");
		return 2;
	}
	if (o->raw) {
		o->batch = 1;	/* one frame at a time, as the hub sends */
		o->conns = 1;
		o->pid = 0;	/* the bench is the publisher */
	} else if (o->database_url == NULL || *o->database_url == '\0') {
		fprintf(stderr, "vgen-bench: events writes the jobs: give "
		    "--database-url or VGEN_DATABASE_URL\n");
		return 2;
	}
	if (o->mode == MODE_WAITJOB && o->pid == 0) {
		fprintf(stderr, "vgen-bench: waitjob measures the server's "
		    "memory: give --server-pid or --server-pid-file\n");
		return 2;
	}
	if (o->mode == MODE_WAITJOB && o->jobs > o->calls)
		o->jobs = o->calls;
	return 0;
}

int
bench_events_main(int argc, char **argv)
{
	struct ev_opts o = { 0 };
	int rv;

	if ((rv = parse(argc, argv, &o)) != 0)
		return rv == 1 ? 0 : rv;
	if (o.pid > 0) {
		char path[64], comm[64] = "not running";
		FILE *f;

		/* A wrong pid would measure some other program. */
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)o.pid);
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(comm, sizeof(comm), f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, "vgen-server") != 0) {
			fprintf(stderr, "vgen-bench: pid %d is \"%s\", not "
			    "vgen-server (on this host)\n", (int)o.pid, comm);
			return 2;
		}
	}
	return o.mode == MODE_WAITJOB ? mode_waitjob(&o) : mode_events(&o);
}
