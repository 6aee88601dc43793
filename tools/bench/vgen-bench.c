/*
 * tools/bench/vgen-bench.c: load against a running vgen-server, and in the
 * same run against the raw baselines it is judged by (DESIGN §9).
 *
 *   rpc   N closed-loop client threads, each with its own req0 socket,
 *         send one pre-encoded RpcRequest frame, wait for the reply, and
 *         repeat; every latency is recorded.  The baseline is an nng rep0
 *         echo server in this process, driven by aio callbacks on 64
 *         contexts (the fastest way nng serves), fed the same frame by the
 *         same threads.  --background adds uncounted load (Login:32) and
 *         compares the foreground's p99 idle and loaded.
 *         ListVideos and ListVideosDeep (the first page and the page 400
 *         deep, 20 a page) first give the bench user 10,000 videos through
 *         libpq (--database-url), and add a third row: the very keyset
 *         query the server runs ("video_list" of store/video.c) at the
 *         same position, prepared and run straight through libpq, one
 *         connection per thread.  With E the echo and P that query, the
 *         server is judged by L = 1/(1/E + 1/P), the rate of a server
 *         that did nothing but both, one after the other.
 *   pg    the SQL baseline: a prepared primary-key SELECT on users straight
 *         through libpq, one connection per thread.
 *   echo  the echo baseline alone, as a server, for runs across processes.
 *
 * The client side stays cheap so that it is not what gets measured: frames
 * are encoded once, a thread does one copy, one send and one receive per
 * call, and latencies go into arrays allocated before the clock starts.
 * Setup (registering the bench user, logging in) goes through
 * libvgen-client.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "vg.h"
#include "vgen.h"
#include "bench.h"
#include "store_int.h"

#define BENCH_WARMUP_MS 1000
#define BENCH_ECHO_CTXS 64
#define BENCH_HEALTH_TIMEOUT_MS 3000
#define BENCH_SETUP_TIMEOUT_MS 60000
/* No thread completes more than this many calls a second (10 µs each). */
#define BENCH_MAX_RATE 100000
/* Latency samples kept per run, over all threads: 4 bytes each. */
#define BENCH_MAX_SAMPLES (32u * 1024 * 1024)
#define BENCH_MAX_THREADS 1024
#define BENCH_MAX_ROUNDS 100

#define M_HEALTH "/vgen.v1.HealthService/Check"
#define M_REGISTER "/vgen.v1.UserService/Register"
#define M_LOGIN "/vgen.v1.UserService/Login"
#define M_GETME "/vgen.v1.UserService/GetMe"
#define M_LIST "/vgen.v1.VideoService/ListVideos"
#define M_CREATE "/vgen.v1.VideoJobService/CreateJob"

/*
 * CreateJob's baseline: the same row inserted straight through libpq (the
 * server's statement adds the per-user lock, the active-job count and the
 * idempotency lookup; both notify the workers through the trigger).
 */
#define BENCH_INSERT_SQL "INSERT INTO video_jobs (user_id, prompt, " \
	"orientation) VALUES ($1, 'vgen-bench job', 'portrait')"

/* ListVideos*: the bench user's gallery, and the pages loaded. */
#define BENCH_VIDEOS 10000
#define BENCH_PAGE_SIZE 20
#define BENCH_DEEP_PAGE 400

/*
 * The P baseline runs the server's own "video_list" statement (store/video.c),
 * in a session set up as the server's reads are (STORE_READS_SQL).
 */
static const char *
bench_list_sql(void)
{
	for (const struct store_stmt *st = store_video_stmts; st->name; st++)
		if (strcmp(st->name, "video_list") == 0)
			return st->sql;
	return NULL;
}

/*
 * What a call can end in, besides OK: a vgen.v1.StatusCode (1..16), or a
 * failure on our side of the wire.
 */
enum {
	K_OK = 0,
	K_NSTATUS = 17,		/* StatusCode numbers 0..16 */
	K_TRANSPORT = K_NSTATUS, /* send/receive failed, or a pg error */
	K_TIMEOUT,		/* no reply within --timeout */
	K_BADREPLY,		/* undecodable, or not our echo */
	K_NKINDS,
	K_CLOSED = -1,		/* closed or canceled under us: stop */
};

struct frame {
	uint8_t *buf;
	size_t len;
};

struct pool;

/*
 * A statement prepared on every pg connection, its parameters, and the
 * session it runs in: STORE_READS_SQL for the server's reads
 * (store_async), STORE_SESSION_SQL for the others.
 */
struct pg_query {
	const char *name;
	const char *sql;
	int nparams;
	const char *const *params;
	const char *session_sql;
};

/* One client (a thread, and for nng an aio loop) and what it measured. */
struct worker {
	pthread_t tid;
	bool started;
	struct pool *pool;
	nng_socket sock;
	bool sock_open;
	nng_aio *aio;		/* carries every send and receive */
	bool recving;		/* aio: the call's receive, not its send */
	int64_t t0;		/* when the call in flight began */
	sem_t done;		/* a callback loop has ended */
	bool sem_ok;
	const struct frame *frame;	/* what it sends */
	PGconn *pg;
	const struct pg_query *pgq;	/* what it runs */
	uint32_t *lat;		/* µs, one per OK call in the window */
	size_t nlat, cap;
	uint64_t ok, dropped;	/* dropped: OK calls beyond cap */
	uint64_t err[K_NKINDS];
};

/*
 * How a pool's workers call.  With `run` alone, each worker's thread
 * makes blocking calls (libpq).  With `check` alone, the calls go over
 * nng, driven by the worker's aio callback as the echo server's are
 * (worker_cb): no thread of ours wakes per call.  With both (--client
 * threads), the thread sends over nng and waits for each reply (call_nng).
 * `check` judges a reply, and frees it.
 */
struct call_kind {
	int (*run)(struct worker *w);
	int (*check)(struct worker *w, nng_msg *reply);
};

/*
 * A pool runs n workers on one call function.  A foreground pool counts
 * calls that complete between t_meas and t_end; a background pool loops,
 * uncounted, until pool_join cancels it.
 */
struct pool {
	struct worker *w;
	int n;
	const struct call_kind *kind;
	bool background;
	int64_t t_start, t_meas, t_end;	/* CLOCK_MONOTONIC ns */
	int64_t t_stop;
	atomic_bool stop;
};

/* A rate of the measured process, of this bench and of the machine. */
struct rates {
	bool ok, proc_ok;	/* measured at all; the process's too */
	double proc, bench, machine;
};

struct result {
	const char *name;
	double secs;
	double rps;
	uint64_t ok, errors, dropped;
	uint32_t p50, p99, p999, max;
	uint64_t err[K_NKINDS];
	/*
	 * CPU over the measured seconds, in cores: the measured process (the
	 * server's --server-pid, or the echo baseline's child), this bench
	 * (its clients, and an in-process echo) and the whole machine.
	 */
	struct rates cpu;
	/*
	 * Context switches a second over the same seconds, of the same
	 * three (the process's: all its threads).  Where the cores are
	 * virtual, a switch costs a few microseconds, so these tell where a
	 * ratio's gap lies.
	 */
	struct rates sw;
};

/* The echo baseline: a rep0 socket served by aio callbacks. */
struct echo_ctx {
	nng_aio *aio;
	nng_ctx ctx;
	bool sending;
};

struct echo {
	nng_socket sock;
	bool sock_open;
	struct echo_ctx c[BENCH_ECHO_CTXS];
	char url[64];
};

struct opts {
	const char *mode;
	const char *method;
	const char *server;
	const char *listen;
	const char *database_url;
	const char *query;
	const char *bg_method;
	long clients, secs, bg_clients, timeout_ms, rounds;
	pid_t server_pid;	/* for CPU per call; -1 when not given */
	bool no_baseline, baseline_process, json;
	bool thread_clients;	/* --client threads */
};

static const char usage[] =
    "usage: vgen-bench rpc --method Health|GetMe|Login|CreateJob [-c N] [-d SECONDS]\n"
    "                  [--server URL] [--no-baseline] [--baseline-process]\n"
    "                  [--background METHOD:N] [--rounds N] [--timeout MS]\n"
    "                  [--client aio|threads] [--json]\n"
    "       vgen-bench rpc --method ListVideos|ListVideosDeep\n"
    "                  --database-url CONN [options as above]\n"
    "       vgen-bench pg [--database-url CONN] [-c N] [-d SECONDS]\n"
    "                  [--query pk] [--json]\n"
    "       vgen-bench echo [--listen URL] [-d SECONDS]\n"
    "       vgen-bench worker streams|pickup [options]   (see worker --help:\n"
    "                  concurrent streams and CPU; CreateJob to processing)\n"
    "       vgen-bench events --help    (the hub: latency, fan-out, WaitJob)\n"
    "\n"
    "rpc   closed-loop load on one method: N clients, one req0 socket each,\n"
    "      1 s warm-up then -d seconds measured.  First the same frames\n"
    "      against an in-process nng echo server (aio callbacks, 64\n"
    "      contexts), then against the server; prints req/s, p50, p99,\n"
    "      p99.9, max, errors and the ratios server/baseline; then the\n"
    "      CPU each call cost the server (--server-pid; for the baseline\n"
    "      the echo child of --baseline-process), this bench's clients\n"
    "      and the whole machine, in microseconds of CPU per call, and\n"
    "      the context switches per call of each.\n"
    "      --baseline-process  serve the echo from a child process instead,\n"
    "      as vgen-server serves from its own (not sharing nng's threads).\n"
    "      --background METHOD:N  N more clients load METHOD, uncounted,\n"
    "      while the method is measured again: idle vs loaded p99.\n"
    "      --rounds N  measure it all N times over, in turn (the echo,\n"
    "      P, the server, loaded), and print each round's ratios and\n"
    "      their median: on a machine whose speed drifts, a ratio is\n"
    "      only as good as the time between its two runs.\n"
    "      --client aio  (the default) each client's calls are driven by\n"
    "      its aio callback on nng's threads, as the echo serves; threads:\n"
    "      each client is a thread that waits for its send and its reply\n"
    "      (how the figures before this option were taken: dearer per\n"
    "      call, most of all for slow replies, on the server's CPUs).\n"
    "      ListVideos (page 1) and ListVideosDeep (page 400), 20 a page:\n"
    "      the bench user first gets 10,000 videos through libpq\n"
    "      (--database-url), and the server's own keyset query at the same\n"
    "      position is measured through libpq too (P, one connection per\n"
    "      thread); with E the echo, prints L = 1/(1/E + 1/P) and\n"
    "      server/L.  The videos are deleted at the end.\n"
    "      CreateJob: each call creates a job (run the server with a large\n"
    "      VGEN_MAX_ACTIVE_JOBS and no worker); each thread is its own user\n"
    "      (one user's calls queue on its row lock).  With --database-url\n"
    "      the same row is also inserted straight through libpq (P, the\n"
    "      same user per thread) for server/P; the jobs are deleted after.\n"
    "pg    a prepared primary-key SELECT on users through libpq, one\n"
    "      connection per thread (the SQL baseline).\n"
    "echo  serve the echo baseline alone on --listen for -d seconds; the\n"
    "      address it got is printed on stdout.\n"
    "\n"
    "  -c, --clients N        clients (16)\n"
    "  -d, --duration S       seconds measured (10; echo: 60)\n"
    "  --server URL           vgen-server RPC URL(s), comma-separated\n"
    "                         ($VGEN_SERVER, else " VGEN_DEFAULT_SERVER ")\n"
    "  --timeout MS           per-call reply timeout (10000)\n"
    "  --database-url CONN    libpq connection string ($VGEN_DATABASE_URL);\n"
    "                         with it, the bench's users (and what they\n"
    "                         own) are deleted at the end\n"
    "  --listen URL           echo address (tcp://127.0.0.1:7499)\n"
    "  --server-pid PID       rpc: vgen-server on this host; adds its CPU\n"
    "                         per call (the echo child's for the baseline)\n"
    "  --server-pid-file F    read that pid from F (tools/up writes\n"
    "                         var/run/vgen-server.pid)\n"
    "  --json                 one JSON object on stdout instead of a table\n";

int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *
kind_name(int k)
{
	switch (k) {
	case K_TRANSPORT:
		return "transport";
	case K_TIMEOUT:
		return "timeout";
	case K_BADREPLY:
		return "bad-reply";
	default:
		return vg_status_name(k);
	}
}

static int
kind_from_nng(int rv)
{
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return K_CLOSED;
	if (rv == NNG_ETIMEDOUT)
		return K_TIMEOUT;
	return K_TRANSPORT;
}

/* ---- calls: one request, one reply; return K_OK or what went wrong ---- */

/*
 * Sends the pool's frame and receives the reply into *out.  Through an aio
 * rather than nng_sendmsg/nng_recvmsg, so that pool_join can cancel a call
 * in flight: closing a req0 socket while a thread waits in nng_recvmsg can
 * deadlock nng_close (nanomsg/nng#1813, seen here with nng 1.5.2).
 */
static int
roundtrip(struct worker *w, nng_msg **out)
{
	const struct frame *f = w->frame;
	nng_msg *m;
	int rv;

	if (nng_msg_alloc(&m, f->len) != 0)
		return K_TRANSPORT;
	memcpy(nng_msg_body(m), f->buf, f->len);
	nng_aio_set_msg(w->aio, m);
	nng_send_aio(w->sock, w->aio);
	nng_aio_wait(w->aio);
	if ((rv = nng_aio_result(w->aio)) != 0) {
		nng_msg_free(m);	/* a failed send leaves it to us */
		nng_aio_set_msg(w->aio, NULL);
		return kind_from_nng(rv);
	}
	nng_recv_aio(w->sock, w->aio);
	nng_aio_wait(w->aio);
	if ((rv = nng_aio_result(w->aio)) != 0)
		return kind_from_nng(rv);
	*out = nng_aio_get_msg(w->aio);
	nng_aio_set_msg(w->aio, NULL);
	return K_OK;
}

/* Against vgen-server: the reply must be an RpcResponse with code OK. */
static int
rpc_check(struct worker *w, nng_msg *m)
{
	Vgen__V1__RpcResponse *resp;
	int k;

	(void)w;
	resp = vg_env_response_decode(nng_msg_body(m), nng_msg_len(m));
	nng_msg_free(m);
	if (resp == NULL)
		return K_BADREPLY;
	k = (int)resp->code;
	if (k < 0 || k >= K_NSTATUS)
		k = VG_UNKNOWN;
	vgen__v1__rpc_response__free_unpacked(resp, NULL);
	return k;
}

/* Against the echo baseline: the reply must be the frame we sent. */
static int
echo_check(struct worker *w, nng_msg *m)
{
	const struct frame *f = w->frame;
	int k = K_OK;

	if (nng_msg_len(m) != f->len || memcmp(nng_msg_body(m), f->buf,
	    f->len) != 0)
		k = K_BADREPLY;
	nng_msg_free(m);
	return k;
}

static int
call_pg(struct worker *w)
{
	const struct pg_query *q = w->pgq;
	PGresult *res;
	int k = K_OK;

	res = PQexecPrepared(w->pg, q->name, q->nparams, q->params, NULL, NULL,
	    0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK)
		k = K_TRANSPORT;
	PQclear(res);
	return k;
}

/* --client threads: the worker's thread sends, and waits for the reply. */
static int
call_nng(struct worker *w)
{
	nng_msg *m;
	int k;

	if ((k = roundtrip(w, &m)) != K_OK)
		return k;
	return w->pool->kind->check(w, m);
}

static const struct call_kind CALL_RPC = { NULL, rpc_check };
static const struct call_kind CALL_ECHO = { NULL, echo_check };
static const struct call_kind CALL_RPC_THREADS = { call_nng, rpc_check };
static const struct call_kind CALL_ECHO_THREADS = { call_nng, echo_check };
static const struct call_kind CALL_PG = { call_pg, NULL };

/* The kind of nng calls --client asks for: the server's, or the echo's. */
static const struct call_kind *
kind_nng(const struct opts *o, bool echo)
{
	if (o->thread_clients)
		return echo ? &CALL_ECHO_THREADS : &CALL_RPC_THREADS;
	return echo ? &CALL_ECHO : &CALL_RPC;
}

/* ---- the pool --------------------------------------------------------- */

/* May a call that begins at t0 begin? */
static bool
worker_may_start(const struct worker *w, int64_t t0)
{
	const struct pool *p = w->pool;

	if (atomic_load_explicit(&p->stop, memory_order_relaxed))
		return false;
	return p->background || t0 < p->t_end;
}

/*
 * Counts a call that began at t0 and ended at t1 in k; false when the
 * worker stops there.
 */
static bool
worker_count(struct worker *w, int k, int64_t t0, int64_t t1)
{
	const struct pool *p = w->pool;

	if (p->background) {
		/* one that ends while the pool drains is not counted */
		if (atomic_load(&p->stop))
			return false;
		if (k == K_OK)
			w->ok++;
		else
			w->err[k]++;
		return true;
	}
	/*
	 * Count what completes inside the window: with closed loops in a
	 * steady state that is the server's rate, whatever the call takes.
	 * Failures are counted from the end of the warm-up on, late ones
	 * included, so that none go unseen.
	 */
	if (k != K_OK) {
		if (t1 >= p->t_meas)
			w->err[k]++;
		return true;
	}
	if (t1 < p->t_meas || t1 > p->t_end)
		return true;
	w->ok++;
	if (w->nlat < w->cap) {
		int64_t us = (t1 - t0 + 500) / 1000;

		w->lat[w->nlat++] = us > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)us;
	} else {
		w->dropped++;
	}
	return true;
}

/*
 * Starts the worker's next nng call (sends its frame), or ends its loop:
 * the window is over, or the pool stops.
 */
static void
worker_next(struct worker *w)
{
	const struct frame *f = w->frame;
	nng_msg *m;

	for (;;) {
		w->t0 = now_ns();
		if (!worker_may_start(w, w->t0))
			break;
		if (nng_msg_alloc(&m, f->len) == 0) {
			memcpy(nng_msg_body(m), f->buf, f->len);
			w->recving = false;
			nng_aio_set_msg(w->aio, m);
			nng_send_aio(w->sock, w->aio);
			return;
		}
		if (!worker_count(w, K_TRANSPORT, w->t0, now_ns()))
			break;
	}
	sem_post(&w->done);
}

/*
 * The worker's aio completed: a send (then receive the reply) or a
 * receive (then check and count the call, and start the next).  This
 * runs on the nng thread that completed the aio, and the next request
 * leaves from there, as the echo server's reply does.  A thread of ours
 * per client, woken at each send and each reply (--client threads), cost
 * the bench 8.6 context switches and 20 system calls per ListVideos call
 * against 4.8 and 14 this way, and 110 us of CPU per call against 59, on
 * the 2 cores the server has (the echo's: 62 against 27).  A cancel
 * (pool_join) ends the loop.
 */
static void
worker_cb(void *arg)
{
	struct worker *w = arg;
	int rv = nng_aio_result(w->aio), k;

	if (!w->recving) {
		if (rv == 0) {
			w->recving = true;
			nng_recv_aio(w->sock, w->aio);
			return;
		}
		nng_msg_free(nng_aio_get_msg(w->aio));	/* ours on failure */
		nng_aio_set_msg(w->aio, NULL);
		k = kind_from_nng(rv);
	} else if (rv != 0) {
		k = kind_from_nng(rv);
	} else {
		nng_msg *m = nng_aio_get_msg(w->aio);

		nng_aio_set_msg(w->aio, NULL);
		k = w->pool->kind->check(w, m);
	}
	if (k == K_CLOSED || !worker_count(w, k, w->t0, now_ns())) {
		sem_post(&w->done);
		return;
	}
	worker_next(w);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->pool;

	if (p->kind->run == NULL) {	/* nng: the callbacks loop */
		worker_next(w);
		while (sem_wait(&w->done) != 0 && errno == EINTR)
			;
		return NULL;
	}
	for (;;) {
		int64_t t0 = now_ns();
		int k;

		if (!worker_may_start(w, t0))
			break;
		k = p->kind->run(w);
		if (k == K_CLOSED || !worker_count(w, k, t0, now_ns()))
			break;
	}
	return NULL;
}

static int
dial_all(nng_socket s, const char *urls)
{
	char *list, *save = NULL;
	int rv = 0;

	if ((list = strdup(urls)) == NULL)
		return NNG_ENOMEM;
	for (char *u = strtok_r(list, ",", &save); u != NULL;
	    u = strtok_r(NULL, ",", &save)) {
		if ((rv = nng_dial(s, u, NULL, 0)) != 0) {
			fprintf(stderr, "vgen-bench: cannot connect to %s: "
			    "%s\n", u, nng_strerror(rv));
			break;
		}
	}
	free(list);
	return rv;
}

/* With `cb`, the worker's calls are driven by worker_cb. */
static int
worker_open_nng(struct worker *w, const char *urls, long timeout_ms, bool cb)
{
	int rv;

	if ((rv = nng_req0_open(&w->sock)) != 0) {
		fprintf(stderr, "vgen-bench: req0 socket: %s\n",
		    nng_strerror(rv));
		return -1;
	}
	w->sock_open = true;
	/* Never resend: a resent call would be counted once, served twice. */
	if ((rv = nng_socket_set_ms(w->sock, NNG_OPT_REQ_RESENDTIME,
	    NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ,
	    VG_CLIENT_MAX_FRAME)) != 0 ||
	    (rv = nng_aio_alloc(&w->aio, cb ? worker_cb : NULL, w)) != 0) {
		fprintf(stderr, "vgen-bench: socket options: %s\n",
		    nng_strerror(rv));
		return -1;
	}
	/* Bounds each send and each receive: no loop waits for ever. */
	nng_aio_set_timeout(w->aio, (nng_duration)timeout_ms);
	return dial_all(w->sock, urls) == 0 ? 0 : -1;
}

/* pg_fail prints libpq's complaint on one line (it spans several). */
void
pg_fail(const char *what, PGconn *db)
{
	const char *msg = db != NULL ? PQerrorMessage(db) : "out of memory";
	int len = (int)strcspn(msg, "\n");

	fprintf(stderr, "vgen-bench: %s: %.*s\n", what, len, msg);
}

static int
worker_open_pg(struct worker *w, const char *conninfo,
    const struct pg_query *q)
{
	/* Our connect_timeout first, so that one in conninfo wins. */
	const char *keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { "5", conninfo, NULL };
	PGresult *res;

	w->pg = PQconnectdbParams(keys, vals, 1);
	if (w->pg == NULL || PQstatus(w->pg) != CONNECTION_OK) {
		pg_fail("cannot connect to the database", w->pg);
		return -1;
	}
	res = PQexec(w->pg, q->session_sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail("session settings", w->pg);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	res = PQprepare(w->pg, q->name, q->sql, q->nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail("prepare", w->pg);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/*
 * pool_fini closes every socket and connection and frees the samples;
 * safe on a zeroed pool and after pool_open failed half-way.
 */
static void
pool_fini(struct pool *p)
{
	for (int i = 0; p->w != NULL && i < p->n; i++) {
		struct worker *w = &p->w[i];

		if (w->aio != NULL)
			nng_aio_free(w->aio);
		if (w->sock_open)
			nng_close(w->sock);
		PQfinish(w->pg);
		free(w->lat);
		if (w->sem_ok)
			sem_destroy(&w->done);
	}
	free(p->w);
	memset(p, 0, sizeof(*p));
}

/*
 * pool_open prepares n workers: sockets dialed to `urls` (or database
 * connections when conninfo is set) and sample arrays for a run of `secs`
 * seconds.  f and q each point to nvar variants (or are NULL): worker i
 * sends f[i % nvar] and runs q[i % nvar], so that CreateJob's threads can
 * each be their own user.  Returns 0, or -1 after printing why; pool_fini
 * either way.
 */
static int
pool_open(struct pool *p, int n, const struct call_kind *kind,
    const struct frame *f, const char *urls, const char *conninfo,
    const struct pg_query *q, int nvar, bool background, long secs,
    long timeout_ms)
{
	size_t cap = 0;

	memset(p, 0, sizeof(*p));
	atomic_init(&p->stop, false);
	p->n = n;
	p->kind = kind;
	p->background = background;
	if ((p->w = calloc((size_t)n, sizeof(*p->w))) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	if (!background) {
		/* Untouched pages cost nothing: be generous, to a ceiling. */
		cap = (size_t)secs * BENCH_MAX_RATE;
		if (cap > BENCH_MAX_SAMPLES / (size_t)n)
			cap = BENCH_MAX_SAMPLES / (size_t)n;
	}
	for (int i = 0; i < n; i++) {
		struct worker *w = &p->w[i];

		w->pool = p;
		w->frame = f != NULL ? &f[i % nvar] : NULL;
		w->pgq = q != NULL ? &q[i % nvar] : NULL;
		if (kind->run == NULL) {	/* worker_cb ends its loop here */
			if (sem_init(&w->done, 0, 0) != 0) {
				fprintf(stderr, "vgen-bench: semaphore: %s\n",
				    strerror(errno));
				return -1;
			}
			w->sem_ok = true;
		}
		if (cap > 0) {
			if ((w->lat = malloc(cap * sizeof(*w->lat))) == NULL) {
				fprintf(stderr, "vgen-bench: out of memory\n");
				return -1;
			}
			w->cap = cap;
		}
		/*
		 * A background call waits as long as it takes: one abandoned
		 * at a timeout would still be served, and be sent again on
		 * top.  pool_join cancels what is left.
		 */
		if (conninfo != NULL ? worker_open_pg(w, conninfo, w->pgq) :
		    worker_open_nng(w, urls, background ?
		    NNG_DURATION_INFINITE : timeout_ms, kind->run == NULL))
			return -1;
	}
	return 0;
}

/* pool_start starts the threads: warm-up, then `secs` seconds counted. */
static int
pool_start(struct pool *p, long secs)
{
	p->t_start = now_ns();
	p->t_meas = p->t_start + (int64_t)BENCH_WARMUP_MS * 1000000;
	p->t_end = p->t_meas + (int64_t)secs * 1000000000;
	for (int i = 0; i < p->n; i++) {
		int rv = pthread_create(&p->w[i].tid, NULL, worker_main,
		    &p->w[i]);

		if (rv != 0) {
			fprintf(stderr, "vgen-bench: cannot start a thread: "
			    "%s\n", strerror(rv));
			atomic_store(&p->stop, true);
			return -1;
		}
		p->w[i].started = true;
	}
	return 0;
}

/*
 * A background pool stops after the call each of its threads is in, as
 * long as that takes up to BENCH_DRAIN_MS: a call canceled would still be
 * served (a login's bcrypt then runs into the next measurement), and
 * nng 1.5.2's nng_close can hang on a req0 socket whose request was just
 * canceled (seen with --rounds, about one run in ten on a loaded
 * machine).  Its rate counts up to the stop.
 */
#define BENCH_DRAIN_MS 30000

static void
pool_drain(struct pool *p)
{
	struct timespec until;

	atomic_store(&p->stop, true);
	p->t_stop = now_ns();
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += BENCH_DRAIN_MS / 1000;
	for (int i = 0; i < p->n; i++)
		if (p->w[i].started &&
		    pthread_timedjoin_np(p->w[i].tid, NULL, &until) == 0)
			p->w[i].started = false;
}

/*
 * pool_join waits for the threads.  A foreground pool ends by itself; a
 * background pool drains (pool_drain).  Calls still waiting then, or in
 * a pool told to stop, are canceled (a stopped aio also refuses the next
 * call).  Sockets are closed only after, by pool_fini, when no thread
 * uses them.
 */
static void
pool_join(struct pool *p)
{
	if (p->background)
		pool_drain(p);
	if (atomic_load(&p->stop)) {
		for (int i = 0; i < p->n; i++)
			if (p->w[i].started && p->w[i].aio != NULL)
				nng_aio_stop(p->w[i].aio);
	}
	for (int i = 0; i < p->n; i++) {
		if (p->w[i].started)
			pthread_join(p->w[i].tid, NULL);
		p->w[i].started = false;
	}
	if (!p->background)
		p->t_stop = now_ns();
}

/* ---- CPU readings --------------------------------------------------------- */

int
proc_ticks(pid_t pid, uint64_t *out)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields follow the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	    "%llu %llu", &ut, &st) != 2)
		return -1;
	*out = ut + st;
	return 0;
}

/*
 * The context switches of pid's threads now alive, from each one's
 * /proc/PID/task/TID/status (the process's own status counts only its
 * first thread).  0 or -1.
 */
static int
proc_switches(pid_t pid, uint64_t *out)
{
	char path[96], line[128];
	struct dirent *e;
	unsigned long long v;
	uint64_t sum = 0;
	DIR *d;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/status",
		    (int)pid, e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;	/* the thread has just ended */
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "voluntary_ctxt_switches: %llu",
			    &v) == 1 || sscanf(line,
			    "nonvoluntary_ctxt_switches: %llu", &v) == 1)
				sum += v;
		fclose(f);
	}
	closedir(d);
	*out = sum;
	return 0;
}

void
cpu_read(pid_t pid, struct cpu_mark *m)
{
	unsigned long long v[8] = { 0 }, ctxt;
	char line[256];
	struct rusage ru;
	FILE *f;

	memset(m, 0, sizeof(*m));
	m->t = now_ns();
	m->proc_ok = pid > 0 && proc_ticks(pid, &m->ticks) == 0;
	m->proc_switches_ok = pid > 0 &&
	    proc_switches(pid, &m->proc_switches) == 0;
	if ((f = fopen("/proc/stat", "r")) != NULL) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
		    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
		    &v[7]) == 8) {
			for (int i = 0; i < 8; i++)
				m->sys_total += v[i];
			m->sys_busy = m->sys_total - v[3] - v[4];
		}
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "ctxt %llu", &ctxt) == 1) {
				m->sys_switches = ctxt;
				break;
			}
		fclose(f);
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		m->self_s = (double)ru.ru_utime.tv_sec +
		    (double)ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
		m->self_switches = (uint64_t)ru.ru_nvcsw +
		    (uint64_t)ru.ru_nivcsw;
	}
}

int
pid_file(const char *path, pid_t *out)
{
	char buf[32] = "";
	long v;
	FILE *f = fopen(path, "r");

	if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
		fprintf(stderr, "vgen-bench: cannot read %s: %s\n", path,
		    strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	if (parse_long("the pid file", buf, 1, INT32_MAX, &v) < 0)
		return -1;
	*out = (pid_t)v;
	return 0;
}

int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least q of them at or below. */
uint32_t
rank(const uint32_t *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

/* pool_result merges the workers' counts and samples into *r. */
static int
pool_result(struct pool *p, const char *name, struct result *r)
{
	uint32_t *all = NULL;
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	r->name = name;
	for (int i = 0; i < p->n; i++) {
		struct worker *w = &p->w[i];

		r->ok += w->ok;
		r->dropped += w->dropped;
		n += w->nlat;
		for (int k = 1; k < K_NKINDS; k++) {
			r->err[k] += w->err[k];
			r->errors += w->err[k];
		}
	}
	if (p->background)
		r->secs = (double)(p->t_stop - p->t_start) / 1e9;
	else
		r->secs = (double)(p->t_end - p->t_meas) / 1e9;
	r->rps = r->secs > 0 ? (double)r->ok / r->secs : 0;
	if (n == 0)
		return 0;
	if ((all = malloc(n * sizeof(*all))) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	n = 0;
	for (int i = 0; i < p->n; i++) {
		memcpy(all + n, p->w[i].lat, p->w[i].nlat * sizeof(*all));
		n += p->w[i].nlat;
	}
	qsort(all, n, sizeof(*all), cmp_u32);
	r->p50 = rank(all, n, 0.50);
	r->p99 = rank(all, n, 0.99);
	r->p999 = rank(all, n, 0.999);
	r->max = all[n - 1];
	free(all);
	return 0;
}

/* The CPU used and the context switches between two readings, into r. */
static void
cpu_use(const struct cpu_mark *a, const struct cpu_mark *b, struct result *r)
{
	double secs = (double)(b->t - a->t) / 1e9;
	long hz = sysconf(_SC_CLK_TCK), ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (secs <= 0 || b->sys_total <= a->sys_total)
		return;
	r->cpu.ok = true;
	r->cpu.proc_ok = a->proc_ok && b->proc_ok;
	if (r->cpu.proc_ok)
		r->cpu.proc = (double)(b->ticks - a->ticks) /
		    (double)hz / secs;
	r->cpu.bench = (b->self_s - a->self_s) / secs;
	r->cpu.machine = (double)(b->sys_busy - a->sys_busy) /
	    (double)(b->sys_total - a->sys_total) * (double)ncpu;
	if (a->sys_switches == 0 || b->sys_switches < a->sys_switches)
		return;		/* a /proc/stat without its ctxt line */
	r->sw.ok = true;
	r->sw.proc_ok = a->proc_switches_ok && b->proc_switches_ok &&
	    b->proc_switches >= a->proc_switches;
	if (r->sw.proc_ok)
		r->sw.proc = (double)(b->proc_switches - a->proc_switches) /
		    secs;
	r->sw.bench = (double)(b->self_switches - a->self_switches) / secs;
	r->sw.machine = (double)(b->sys_switches - a->sys_switches) / secs;
}

/*
 * run_load measures one foreground load from start to finish: n threads
 * on `urls` (or the database, running q), warm-up, `secs` seconds,
 * results in *r.  f and q hold nvar variants, as for pool_open.
 */
static int
run_load(const char *name, int n, const struct call_kind *kind,
    const struct frame *f, const char *urls, const char *conninfo,
    const struct pg_query *q, int nvar, long secs, long timeout_ms,
    pid_t pid, struct result *r)
{
	struct cpu_mark a, b;
	struct pool p;
	int rv = -1;

	fprintf(stderr, "vgen-bench: %s: %d clients, 1 s warm-up + %ld s\n",
	    name, n, secs);
	if (pool_open(&p, n, kind, f, urls, conninfo, q, nvar, false, secs,
	    timeout_ms) < 0)
		goto out;
	if (pool_start(&p, secs) < 0) {
		pool_join(&p);
		goto out;
	}
	if (p.t_meas > now_ns())
		sleep_ms((p.t_meas - now_ns()) / 1000000);
	cpu_read(pid, &a);
	if (p.t_end > now_ns())
		sleep_ms((p.t_end - now_ns()) / 1000000);
	cpu_read(pid, &b);
	pool_join(&p);
	if ((rv = pool_result(&p, name, r)) == 0)
		cpu_use(&a, &b, r);
out:
	pool_fini(&p);
	return rv;
}

/* ---- the echo baseline ------------------------------------------------- */

/*
 * Each context loops recv → send the same message back → recv, driven by
 * its aio's callback: no thread of ours waits anywhere.
 */
static void
echo_cb(void *arg)
{
	struct echo_ctx *x = arg;
	int rv = nng_aio_result(x->aio);
	nng_msg *m;

	if (x->sending) {
		x->sending = false;
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(x->aio));
			nng_aio_set_msg(x->aio, NULL);
		}
	} else if (rv == 0) {
		m = nng_aio_get_msg(x->aio);
		nng_aio_set_msg(x->aio, m);
		x->sending = true;
		nng_ctx_send(x->ctx, x->aio);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	nng_ctx_recv(x->ctx, x->aio);
}

static void
echo_stop(struct echo *e)
{
	for (int i = 0; i < BENCH_ECHO_CTXS; i++)
		if (e->c[i].aio != NULL)
			nng_aio_stop(e->c[i].aio);
	if (e->sock_open)
		nng_close(e->sock);
	for (int i = 0; i < BENCH_ECHO_CTXS; i++) {
		nng_aio_free(e->c[i].aio);
		e->c[i].aio = NULL;
	}
	e->sock_open = false;
}

/*
 * echo_start serves the echo on `url`; with port 0 it picks a free port
 * and writes the address it got in e->url.  Returns 0, or -1 after
 * printing why (echo_stop either way).
 */
static int
echo_start(struct echo *e, const char *url)
{
	nng_listener l;
	nng_sockaddr sa;
	int rv;

	memset(e, 0, sizeof(*e));
	if ((rv = nng_rep0_open(&e->sock)) != 0)
		goto fail;
	e->sock_open = true;
	if ((rv = nng_socket_set_size(e->sock, NNG_OPT_RECVMAXSZ,
	    VG_SERVER_MAX_FRAME)) != 0)
		goto fail;
	for (int i = 0; i < BENCH_ECHO_CTXS; i++) {
		struct echo_ctx *x = &e->c[i];

		if ((rv = nng_aio_alloc(&x->aio, echo_cb, x)) != 0 ||
		    (rv = nng_ctx_open(&x->ctx, e->sock)) != 0)
			goto fail;
	}
	if ((rv = nng_listen(e->sock, url, &l, 0)) != 0)
		goto fail;
	if ((rv = nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa)) != 0)
		goto fail;
	if (sa.s_family == NNG_AF_INET)
		snprintf(e->url, sizeof(e->url), "tcp://127.0.0.1:%u",
		    (unsigned)ntohs(sa.s_in.sa_port));
	else
		snprintf(e->url, sizeof(e->url), "%s", url);
	for (int i = 0; i < BENCH_ECHO_CTXS; i++)
		nng_ctx_recv(e->c[i].ctx, e->c[i].aio);
	return 0;
fail:
	fprintf(stderr, "vgen-bench: echo server on %s: %s\n", url,
	    nng_strerror(rv));
	echo_stop(e);
	return -1;
}

/*
 * echo_spawn runs "vgen-bench echo" (this very program) on a free port in
 * a child process that lives at most `secs` seconds, and writes its
 * address in url.  Returns the child's pid, or -1 after printing why.
 * The child is started with exec, not a bare fork: nng's threads would
 * not survive a fork.
 */
static pid_t
echo_spawn(long secs, char *url, size_t len)
{
	posix_spawn_file_actions_t fa;
	char dur[24], *argv[] = { "vgen-bench", "echo", "--listen",
	    "tcp://127.0.0.1:0", "-d", dur, NULL };
	struct pollfd pfd;
	size_t got = 0;
	pid_t pid = -1;
	int fds[2], rv;

	snprintf(dur, sizeof(dur), "%ld", secs);
	if (pipe(fds) != 0) {
		fprintf(stderr, "vgen-bench: pipe: %s\n", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	rv = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rv != 0) {
		fprintf(stderr, "vgen-bench: cannot start the echo process: "
		    "%s\n", strerror(rv));
		close(fds[0]);
		return -1;
	}
	/* One line, the address, within 5 s. */
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (got + 1 < len && poll(&pfd, 1, 5000) == 1) {
		ssize_t r = read(fds[0], url + got, len - 1 - got);

		if (r <= 0)
			break;
		got += (size_t)r;
		url[got] = '\0';
		if (strchr(url, '\n') != NULL)
			break;
	}
	close(fds[0]);
	if (got == 0 || strchr(url, '\n') == NULL) {
		fprintf(stderr, "vgen-bench: the echo process gave no "
		    "address\n");
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return -1;
	}
	*strchr(url, '\n') = '\0';
	return pid;
}

/* ---- setup through libvgen-client -------------------------------------- */

static int
frame_pack(struct frame *f, const char *method, const ProtobufCMessage *body,
    const char *bearer)
{
	Vgen__V1__RpcRequest rq = VGEN__V1__RPC_REQUEST__INIT;
	uint8_t *payload;
	size_t plen = protobuf_c_message_get_packed_size(body);

	if ((payload = malloc(plen > 0 ? plen : 1)) == NULL)
		return -1;
	protobuf_c_message_pack(body, payload);
	rq.method = (char *)method;
	rq.payload.data = payload;
	rq.payload.len = plen;
	rq.authorization = (char *)(bearer != NULL ? bearer : "");
	rq.request_id = "vgen-bench";
	f->len = vgen__v1__rpc_request__get_packed_size(&rq);
	f->buf = malloc(f->len > 0 ? f->len : 1);
	if (f->buf != NULL)
		vgen__v1__rpc_request__pack(&rq, f->buf);
	free(payload);
	return f->buf != NULL ? 0 : -1;
}

void
random_chars(char *out, size_t n)
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r[64];

	if (n > sizeof(r))
		n = sizeof(r);
	if (getrandom(r, n, 0) != (ssize_t)n) {
		/* Not secret, only unlikely to collide. */
		srand((unsigned)now_ns() ^ (unsigned)getpid());
		for (size_t i = 0; i < n; i++)
			r[i] = (unsigned char)rand();
	}
	for (size_t i = 0; i < n; i++)
		out[i] = set[r[i] % (sizeof(set) - 1)];
	out[n] = '\0';
}

/*
 * server_check: Health must answer SERVING before we load the server.  It
 * speaks nng directly, so that an absent server fails fast with the reason
 * ("Connection refused") and the very frame the load will send is tried.
 */
static int
server_check(const char *urls)
{
	Vgen__V1__HealthCheckRequest rq = VGEN__V1__HEALTH_CHECK_REQUEST__INIT;
	Vgen__V1__HealthCheckResponse *health = NULL;
	Vgen__V1__RpcResponse *resp = NULL;
	struct pool p = { 0 };
	struct worker w = { 0 };
	struct frame f = { 0 };
	nng_msg *m = NULL;
	int k, rv = -1;

	w.pool = &p;
	w.frame = &f;
	if (frame_pack(&f, M_HEALTH, &rq.base, NULL) < 0) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		goto out;
	}
	if (worker_open_nng(&w, urls, BENCH_HEALTH_TIMEOUT_MS, false) < 0)
		goto out;
	if ((k = roundtrip(&w, &m)) != K_OK) {
		fprintf(stderr, "vgen-bench: server %s unreachable: Health: "
		    "%s\n", urls, k == K_TIMEOUT ? "no reply within 3 s" :
		    "transport error");
		goto out;
	}
	resp = vg_env_response_decode(nng_msg_body(m), nng_msg_len(m));
	if (resp == NULL) {
		fprintf(stderr, "vgen-bench: %s does not speak the vgen "
		    "envelope\n", urls);
		goto out;
	}
	if (resp->code != VGEN__V1__STATUS_CODE__OK) {
		fprintf(stderr, "vgen-bench: server %s: Health: %s: %s\n",
		    urls, vg_status_name((int)resp->code), resp->message);
		goto out;
	}
	health = vgen__v1__health_check_response__unpack(NULL,
	    resp->payload.len, resp->payload.data);
	if (health == NULL || health->status !=
	    VGEN__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
		fprintf(stderr, "vgen-bench: server %s is not serving\n", urls);
		goto out;
	}
	rv = 0;
out:
	if (health != NULL)
		vgen__v1__health_check_response__free_unpacked(health, NULL);
	if (resp != NULL)
		vgen__v1__rpc_response__free_unpacked(resp, NULL);
	if (m != NULL)
		nng_msg_free(m);
	if (w.aio != NULL)
		nng_aio_free(w.aio);
	if (w.sock_open)
		nng_close(w.sock);
	free(f.buf);
	return rv;
}

/*
 * user_setup registers a fresh bench user (a new random e-mail when one is
 * taken) and logs in, leaving the credentials and bearer in *u.
 */
int
user_setup(const char *urls, struct bench_user *u)
{
	Vgen__V1__RegisterRequest reg = VGEN__V1__REGISTER_REQUEST__INIT;
	Vgen__V1__LoginRequest login = VGEN__V1__LOGIN_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	struct vgen_status st;
	vgen_client *c = NULL;
	const char *token;
	char rnd[17];
	int code = VG_ALREADY_EXISTS, rv = -1;

	if (vgen_client_open(urls, &c) != 0) {
		fprintf(stderr, "vgen-bench: bad server URL \"%s\"\n", urls);
		return -1;
	}
	vgen_client_set_timeout(c, BENCH_SETUP_TIMEOUT_MS);
	for (int i = 0; i < 5 && code == VG_ALREADY_EXISTS; i++) {
		random_chars(rnd, 12);
		snprintf(u->email, sizeof(u->email), "bench-%s@example.com",
		    rnd);
		random_chars(u->password, 16);
		reg.email = u->email;
		reg.password = u->password;
		code = vgen_call(c, M_REGISTER, &reg.base,
		    &vgen__v1__user__descriptor, &resp, &st);
		if (resp != NULL)
			protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
	}
	if (code != VG_STATUS_OK) {
		fprintf(stderr, "vgen-bench: cannot register a bench user: "
		    "%s: %s\n", vg_status_name(code), st.message);
		goto out;
	}
	login.email = u->email;
	login.password = u->password;
	code = vgen_call(c, M_LOGIN, &login.base,
	    &vgen__v1__login_response__descriptor, &resp, &st);
	if (code != VG_STATUS_OK) {
		fprintf(stderr, "vgen-bench: cannot log the bench user in: "
		    "%s: %s\n", vg_status_name(code), st.message);
		goto out;
	}
	token = ((Vgen__V1__LoginResponse *)resp)->token;
	if (((Vgen__V1__LoginResponse *)resp)->user != NULL)
		snprintf(u->id, sizeof(u->id), "%s",
		    ((Vgen__V1__LoginResponse *)resp)->user->id);
	if ((u->bearer = malloc(strlen(token) + 8)) == NULL)
		goto out;
	sprintf(u->bearer, "Bearer %s", token);
	fprintf(stderr, "vgen-bench: bench user %s\n", u->email);
	rv = 0;
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	vgen_client_close(c);
	return rv;
}

/* ---- ListVideos: the gallery, the walk to the page, the keyset --------- */

static bool
list_method(const char *m)
{
	return strcmp(m, "ListVideos") == 0 || strcmp(m, "ListVideosDeep") == 0;
}

/*
 * What a ListVideos* run loads, and the keyset position of that page for
 * the P baseline: after (after_us, after_id), the last video of the page
 * before, as the server's page token encodes it; none for the first page.
 */
struct list_setup {
	PGconn *db;		/* seeding, the check, the clean-up */
	char user_id[VG_UUID_STRLEN + 1];
	bool seeded;
	int page;		/* 1 or BENCH_DEEP_PAGE */
	char *page_token;	/* the page's token; NULL: the first page */
	char first_id[VG_UUID_STRLEN + 1];	/* its first video, by RPC */
	bool have_after;
	char after_us[24];
	char after_id[VG_UUID_STRLEN + 1];
	char limit[16];
	const char *params[4];
	struct pg_query q;
};

PGconn *
pg_open(const char *conninfo)
{
	/* Our connect_timeout first, so that one in conninfo wins. */
	const char *keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { "5", conninfo, NULL };
	PGconn *db = PQconnectdbParams(keys, vals, 1);

	if (db == NULL || PQstatus(db) != CONNECTION_OK) {
		pg_fail("cannot connect to the database", db);
		PQfinish(db);
		return NULL;
	}
	return db;
}

/*
 * list_seed gives the bench user BENCH_VIDEOS videos in one statement,
 * one millisecond apart (distinct created_at: each page boundary is a
 * real keyset step), then ANALYZEs, so that the planner knows the table
 * as it will be read.
 */
static int
list_seed(struct list_setup *ls, const char *conninfo, const char *user_id)
{
	char count[16];
	const char *params[] = { user_id, count };
	PGresult *res;
	int64_t t0 = now_ns();

	if (*user_id == '\0') {
		fprintf(stderr, "vgen-bench: the LoginResponse carried no user "
		    "id\n");
		return -1;
	}
	snprintf(ls->user_id, sizeof(ls->user_id), "%s", user_id);
	snprintf(count, sizeof(count), "%d", BENCH_VIDEOS);
	if ((ls->db = pg_open(conninfo)) == NULL)
		return -1;
	res = PQexecParams(ls->db, "INSERT INTO videos (user_id, prompt, "
	    "orientation, model_used, video_url, thumbnail_url, duration, "
	    "status, metadata, created_at, updated_at) "
	    "SELECT $1::uuid, 'vgen-bench video ' || i, "
	    "(CASE WHEN i % 2 = 0 THEN 'portrait' ELSE 'landscape' END)"
	    "::orientation_type, 'sora-2', "
	    "'https://videos.example.com/bench/' || i || '.mp4', "
	    "'https://videos.example.com/bench/' || i || '.jpg', 8, "
	    "'completed', jsonb_build_object('bench', i), "
	    "now() - i * interval '1 millisecond', "
	    "now() - i * interval '1 millisecond' "
	    "FROM generate_series(1, $2::int) AS i", 2, NULL, params, NULL,
	    NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail("inserting the bench videos", ls->db);
		PQclear(res);
		return -1;
	}
	ls->seeded = true;
	PQclear(res);
	res = PQexec(ls->db, "ANALYZE videos");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail("ANALYZE videos", ls->db);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	fprintf(stderr, "vgen-bench: %d videos for user %s, analyzed, in "
	    "%.0f ms\n", BENCH_VIDEOS, user_id, (double)(now_ns() - t0) / 1e6);
	return 0;
}

/*
 * list_walk pages through the gallery with libvgen-client, as a user
 * would, up to ls->page: it keeps that page's token (the frame loaded)
 * and the last video of the page before (the keyset of the P baseline).
 * Every page must be full.
 */
static int
list_walk(struct list_setup *ls, const char *urls, const char *bearer)
{
	Vgen__V1__ListVideosRequest rq = VGEN__V1__LIST_VIDEOS_REQUEST__INIT;
	Vgen__V1__ListVideosResponse *r;
	ProtobufCMessage *resp = NULL;
	struct vgen_status st;
	vgen_client *c = NULL;
	char *next = NULL;
	int64_t t0 = now_ns();
	int code, rv = -1;

	if (vgen_client_open(urls, &c) != 0 ||
	    vgen_client_set_token(c, bearer + strlen("Bearer ")) != 0) {
		fprintf(stderr, "vgen-bench: cannot open a client on \"%s\"\n",
		    urls);
		goto out;
	}
	vgen_client_set_timeout(c, BENCH_SETUP_TIMEOUT_MS);
	rq.page_size = BENCH_PAGE_SIZE;
	for (int i = 1; i <= ls->page; i++) {
		rq.page_token = next != NULL ? next : "";
		code = vgen_call(c, M_LIST, &rq.base,
		    &vgen__v1__list_videos_response__descriptor, &resp, &st);
		if (code != VG_STATUS_OK) {
			fprintf(stderr, "vgen-bench: ListVideos, page %d: %s: "
			    "%s\n", i, vg_status_name(code), st.message);
			goto out;
		}
		r = (Vgen__V1__ListVideosResponse *)resp;
		if (r->n_videos != BENCH_PAGE_SIZE) {
			fprintf(stderr, "vgen-bench: ListVideos, page %d: %zu "
			    "videos, not %d\n", i, r->n_videos,
			    BENCH_PAGE_SIZE);
			goto out;
		}
		if (i == ls->page - 1) {
			const Vgen__V1__Video *v = r->videos[BENCH_PAGE_SIZE -
			    1];

			if (v->created_at == NULL) {
				fprintf(stderr, "vgen-bench: ListVideos, page "
				    "%d: a video without created_at\n", i);
				goto out;
			}
			snprintf(ls->after_us, sizeof(ls->after_us), "%lld",
			    (long long)v->created_at->seconds * 1000000 +
			    v->created_at->nanos / 1000);
			snprintf(ls->after_id, sizeof(ls->after_id), "%s",
			    v->id);
			ls->have_after = true;
		}
		if (i == ls->page) {
			snprintf(ls->first_id, sizeof(ls->first_id), "%s",
			    r->videos[0]->id);
		} else {
			if (*r->next_page_token == '\0') {
				fprintf(stderr, "vgen-bench: ListVideos, page "
				    "%d: no next page token\n", i);
				goto out;
			}
			free(next);
			if ((next = strdup(r->next_page_token)) == NULL) {
				fprintf(stderr, "vgen-bench: out of memory\n");
				goto out;
			}
		}
		protobuf_c_message_free_unpacked(resp, NULL);
		resp = NULL;
	}
	ls->page_token = next;
	next = NULL;
	fprintf(stderr, "vgen-bench: walked %d page%s through RPC in %.0f ms\n",
	    ls->page, ls->page > 1 ? "s" : "",
	    (double)(now_ns() - t0) / 1e6);
	rv = 0;
out:
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	free(next);
	vgen_client_close(c);
	return rv;
}

/*
 * list_check prepares the P baseline's statement and runs it once at the
 * page's keyset: it must give the page (and the one row more that tells
 * the server another page follows), starting with the video the server
 * gave first.  Then the plan, on stderr: deep pages want an index scan.
 */
static int
list_check(struct list_setup *ls)
{
	PGresult *res;
	char *sql, *lit[4] = { NULL };
	size_t len = 64;
	int rv = -1;

	snprintf(ls->limit, sizeof(ls->limit), "%d", BENCH_PAGE_SIZE + 1);
	if (!ls->have_after)
		snprintf(ls->after_us, sizeof(ls->after_us), "0");
	ls->params[0] = ls->user_id;	/* both orientations */
	ls->params[1] = ls->after_us;
	ls->params[2] = ls->have_after ? ls->after_id : NULL;
	ls->params[3] = ls->limit;
	ls->q.name = "bench_video_list";
	ls->q.sql = bench_list_sql();
	ls->q.nparams = 4;
	if (ls->q.sql == NULL) {
		fprintf(stderr, "vgen-bench: the store has no video_list\n");
		return -1;
	}
	ls->q.params = ls->params;
	ls->q.session_sql = STORE_READS_SQL;	/* as the server reads it */

	res = PQexec(ls->db, ls->q.session_sql);	/* the plan shown */
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail("session settings", ls->db);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	res = PQprepare(ls->db, ls->q.name, ls->q.sql, ls->q.nparams, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_fail("prepare video_list", ls->db);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	res = PQexecPrepared(ls->db, ls->q.name, ls->q.nparams, ls->q.params,
	    NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_fail("video_list", ls->db);
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) != BENCH_PAGE_SIZE + 1 ||
	    strcmp(PQgetvalue(res, 0, 0), ls->first_id) != 0) {
		fprintf(stderr, "vgen-bench: the keyset query gives %d rows "
		    "from %s, the server gave page %d from %s\n",
		    PQntuples(res), PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) :
		    "nothing", ls->page, ls->first_id);
		PQclear(res);
		return -1;
	}
	PQclear(res);

	/* EXPLAIN EXECUTE takes literals only. */
	for (int i = 0; i < 4; i++) {
		const char *v = ls->params[i];

		lit[i] = v != NULL ? PQescapeLiteral(ls->db, v, strlen(v)) :
		    strdup("NULL");
		if (lit[i] == NULL) {
			fprintf(stderr, "vgen-bench: out of memory\n");
			goto out;
		}
		len += strlen(lit[i]) + 2;
	}
	if ((sql = malloc(len)) == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		goto out;
	}
	snprintf(sql, len, "EXPLAIN EXECUTE %s(%s, %s, %s, %s)",
	    ls->q.name, lit[0], lit[1], lit[2], lit[3]);
	res = PQexec(ls->db, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_fail("EXPLAIN", ls->db);
		PQclear(res);
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++)
		fprintf(stderr, "vgen-bench: plan: %s\n",
		    PQgetvalue(res, i, 0));
	PQclear(res);
	rv = 0;
out:
	for (int i = 0; i < 4; i++) {
		if (ls->params[i] != NULL)
			PQfreemem(lit[i]);
		else
			free(lit[i]);
	}
	return rv;
}

/* list_fini deletes the bench videos (users_drop, the user, later). */
static void
list_fini(struct list_setup *ls)
{
	const char *params[] = { ls->user_id };
	PGresult *res;

	if (ls->seeded && ls->db != NULL) {
		res = PQexecParams(ls->db, "DELETE FROM videos WHERE user_id = "
		    "$1::uuid", 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			pg_fail("deleting the bench videos", ls->db);
		PQclear(res);
	}
	PQfinish(ls->db);
	free(ls->page_token);
	memset(ls, 0, sizeof(*ls));
}

/*
 * method_frame encodes the frame that loads `method` ("Health", ...);
 * page_token is ListVideos*'s (NULL: the first page).
 */
static int
method_frame(const char *method, const struct bench_user *u,
    const char *page_token, struct frame *f)
{
	Vgen__V1__HealthCheckRequest health =
	    VGEN__V1__HEALTH_CHECK_REQUEST__INIT;
	Vgen__V1__GetMeRequest me = VGEN__V1__GET_ME_REQUEST__INIT;
	Vgen__V1__LoginRequest login = VGEN__V1__LOGIN_REQUEST__INIT;
	Vgen__V1__ListVideosRequest list = VGEN__V1__LIST_VIDEOS_REQUEST__INIT;
	Vgen__V1__CreateJobRequest create = VGEN__V1__CREATE_JOB_REQUEST__INIT;

	if (strcmp(method, "CreateJob") == 0) {
		create.prompt = "vgen-bench job";
		create.orientation = VGEN__V1__ORIENTATION__PORTRAIT;
		return frame_pack(f, M_CREATE, &create.base, u->bearer);
	}
	if (list_method(method)) {
		list.page_size = BENCH_PAGE_SIZE;
		list.page_token = (char *)(page_token != NULL ? page_token :
		    "");
		return frame_pack(f, M_LIST, &list.base, u->bearer);
	}
	if (strcmp(method, "Health") == 0)
		return frame_pack(f, M_HEALTH, &health.base, NULL);
	if (strcmp(method, "GetMe") == 0)
		return frame_pack(f, M_GETME, &me.base, u->bearer);
	login.email = (char *)u->email;
	login.password = (char *)u->password;
	return frame_pack(f, M_LOGIN, &login.base, NULL);
}

/* ---- CreateJob: one user per thread ----------------------------------- */

/*
 * What a CreateJob run loads.  vgen_job_create locks the user's row so
 * that the active-job limit holds: one user's calls run one at a time,
 * and with a single bench user that lock is all that gets measured.  So
 * every client thread is its own user, with its own frame, and the raw
 * INSERT binds the same user per thread.
 */
struct create_setup {
	int n;
	struct bench_user *users;	/* n, each with its bearer */
	struct frame *frames;		/* n CreateJob frames */
	struct pg_query *ins;		/* n: BENCH_INSERT_SQL for users[i] */
	const char **params;		/* n: users[i].id */
};

static int
create_setup(struct create_setup *cs, const char *urls, int n)
{
	int64_t t0 = now_ns();

	cs->n = n;
	cs->users = calloc((size_t)n, sizeof(*cs->users));
	cs->frames = calloc((size_t)n, sizeof(*cs->frames));
	cs->ins = calloc((size_t)n, sizeof(*cs->ins));
	cs->params = calloc((size_t)n, sizeof(*cs->params));
	if (cs->users == NULL || cs->frames == NULL || cs->ins == NULL ||
	    cs->params == NULL) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (user_setup(urls, &cs->users[i]) < 0)
			return -1;
		if (method_frame("CreateJob", &cs->users[i], NULL,
		    &cs->frames[i]) < 0) {
			fprintf(stderr, "vgen-bench: out of memory\n");
			return -1;
		}
		cs->params[i] = cs->users[i].id;
		cs->ins[i] = (struct pg_query){ "bench_insert",
		    BENCH_INSERT_SQL, 1, &cs->params[i], STORE_SESSION_SQL };
	}
	fprintf(stderr, "vgen-bench: %d bench users, one per thread, in "
	    "%.1f s\n", n, (double)(now_ns() - t0) / 1e9);
	return 0;
}

/* The ids of users as a uuid[] literal, "{id,id,...}" (malloc'd), or NULL. */
static char *
ids_literal(const struct bench_user *users, int n)
{
	char *ids = malloc((size_t)n * (VG_UUID_STRLEN + 1) + 3);
	size_t len = 0;

	if (ids == NULL)
		return NULL;
	ids[len++] = '{';
	for (int i = 0; i < n; i++) {
		if (users[i].id[0] == '\0')
			continue;
		if (len > 1)
			ids[len++] = ',';
		memcpy(ids + len, users[i].id, strlen(users[i].id));
		len += strlen(users[i].id);
	}
	ids[len++] = '}';
	ids[len] = '\0';
	return ids;
}

/*
 * Runs `sql` with the users' ids as $1 (uuid[]) and says what it did to
 * `what`.  Nothing without a database.
 */
static void
users_exec(const char *conninfo, const struct bench_user *users, int n,
    const char *sql, const char *what)
{
	const char *params[1] = { NULL };
	PGresult *res;
	PGconn *db;

	if (users == NULL || n <= 0 || conninfo == NULL || *conninfo == '\0' ||
	    (params[0] = ids_literal(users, n)) == NULL)
		return;
	if ((db = pg_open(conninfo)) != NULL) {
		res = PQexecParams(db, sql, 1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			pg_fail(what, db);
		else
			fprintf(stderr, "vgen-bench: %s: %s\n", what,
			    PQcmdTuples(res));
		PQclear(res);
	}
	PQfinish(db);
	free((char *)params[0]);
}

void
users_drop(const char *conninfo, const struct bench_user *users, int n)
{
	int have = 0;

	for (int i = 0; users != NULL && i < n; i++)
		have += users[i].id[0] != '\0';
	if (have == 0)
		return;
	if (conninfo == NULL || *conninfo == '\0') {
		fprintf(stderr, "vgen-bench: %d bench user%s left in the "
		    "database (no --database-url to delete %s)\n", have,
		    have == 1 ? "" : "s", have == 1 ? "it" : "them");
		return;
	}
	users_exec(conninfo, users, n, "DELETE FROM users WHERE "
	    "id = ANY($1::uuid[])", "bench users deleted");
}

/*
 * create_clear deletes the bench users' jobs, when it can reach the
 * database: after the raw INSERTs, whose rows CreateJob's active-job
 * count would otherwise walk through.
 */
static void
create_clear(struct create_setup *cs, const char *conninfo)
{
	users_exec(conninfo, cs->users, cs->n, "DELETE FROM video_jobs "
	    "WHERE user_id = ANY($1::uuid[])", "bench jobs deleted");
}

static void
create_fini(struct create_setup *cs, const char *conninfo)
{
	users_drop(conninfo, cs->users, cs->n);	/* their jobs too */
	for (int i = 0; i < cs->n; i++) {
		if (cs->users != NULL)
			free(cs->users[i].bearer);
		if (cs->frames != NULL)
			free(cs->frames[i].buf);
	}
	free(cs->users);
	free(cs->frames);
	free(cs->ins);
	free(cs->params);
	memset(cs, 0, sizeof(*cs));
}

/* ---- output ------------------------------------------------------------ */

static void
table_head(void)
{
	printf("%-26s %10s %9s %9s %9s %9s %8s\n", "", "req/s", "p50 us",
	    "p99 us", "p99.9 us", "max us", "errors");
}

/*
 * A row of `x` per call (scaled by `scale`, `prec` decimals), then
 * `tail`; none when x was not measured.
 */
static void
rates_row(const char *name, const struct rates *x, double rps, double scale,
    int prec, const char *tail)
{
	char proc[16] = "-";

	if (!x->ok || rps <= 0)
		return;
	if (x->proc_ok)
		snprintf(proc, sizeof(proc), "%.*f", prec,
		    x->proc * scale / rps);
	printf("%-26s %10s %9.*f %9.*f%s\n", name, proc, prec,
	    x->bench * scale / rps, prec, x->machine * scale / rps, tail);
}

/*
 * The CPU per call of `rows` (n of them, NULL ones skipped), in µs: what
 * the 2 (or N) cores gave each call; the machine's figure includes
 * everything on it (PostgreSQL, other work).  Then their context
 * switches per call, of the same processes.
 */
static void
cpu_tables(const struct result *const *rows, size_t n)
{
	char tail[64];

	printf("%-26s %10s %9s %9s   (CPU per call, us)\n", "", "process",
	    "bench", "machine");
	for (size_t i = 0; i < n; i++) {
		if (rows[i] == NULL)
			continue;
		snprintf(tail, sizeof(tail), "   (machine %.2f cores busy)",
		    rows[i]->cpu.machine);
		rates_row(rows[i]->name, &rows[i]->cpu, rows[i]->rps, 1e6, 1,
		    tail);
	}
	printf("%-26s %10s %9s %9s   (context switches per call)\n", "",
	    "process", "bench", "machine");
	for (size_t i = 0; i < n; i++)
		if (rows[i] != NULL)
			rates_row(rows[i]->name, &rows[i]->sw, rows[i]->rps,
			    1, 2, "");
}

static void
table_row(const struct result *r)
{
	bool first = true;

	if (r->max == 0)	/* background: no latencies kept */
		printf("%-26s %10.0f %9s %9s %9s %9s %8" PRIu64 "\n", r->name,
		    r->rps, "-", "-", "-", "-", r->errors);
	else
		printf("%-26s %10.0f %9" PRIu32 " %9" PRIu32 " %9" PRIu32
		    " %9" PRIu32 " %8" PRIu64 "\n", r->name, r->rps, r->p50,
		    r->p99, r->p999, r->max, r->errors);
	for (int k = 1; k < K_NKINDS; k++) {
		if (r->err[k] == 0)
			continue;
		printf("%s%s %" PRIu64, first ? "  errors: " : ", ",
		    kind_name(k), r->err[k]);
		first = false;
	}
	if (!first)
		printf("\n");
	if (r->dropped > 0)
		printf("  (%" PRIu64 " samples beyond the memory ceiling not "
		    "kept; percentiles use the rest)\n", r->dropped);
}

static double
ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* ,"key":{...} of x with `prec` decimals; nothing when x was not measured. */
static void
json_rates(const char *key, const struct rates *x, int prec)
{
	if (!x->ok)
		return;
	printf(",\"%s\":{\"bench\":%.*f,\"machine\":%.*f", key, prec,
	    x->bench, prec, x->machine);
	if (x->proc_ok)
		printf(",\"process\":%.*f", prec, x->proc);
	printf("}");
}

static void
json_result(const char *key, const struct result *r)
{
	bool first = true;

	printf("\"%s\":{\"req_per_s\":%.1f,\"ok\":%" PRIu64 ",\"seconds\":%.3f,"
	    "\"p50_us\":%" PRIu32 ",\"p99_us\":%" PRIu32 ",\"p999_us\":%"
	    PRIu32 ",\"max_us\":%" PRIu32 ",\"errors\":%" PRIu64
	    ",\"samples_dropped\":%" PRIu64 ",\"errors_by_status\":{", key,
	    r->rps, r->ok, r->secs, r->p50, r->p99, r->p999, r->max,
	    r->errors, r->dropped);
	for (int k = 1; k < K_NKINDS; k++) {
		if (r->err[k] == 0)
			continue;
		printf("%s\"%s\":%" PRIu64, first ? "" : ",", kind_name(k),
		    r->err[k]);
		first = false;
	}
	printf("}");
	json_rates("cpu_cores", &r->cpu, 4);
	json_rates("switches_per_s", &r->sw, 1);
	printf("}");
}

/* ---- modes ------------------------------------------------------------- */

/* What --background loads; --method also takes the list methods. */
static bool
method_valid(const char *m)
{
	return strcmp(m, "Health") == 0 || strcmp(m, "GetMe") == 0 ||
	    strcmp(m, "Login") == 0;
}

/* L: the rate of a server that did an echo's work and P's, in turn. */
static double
limit_rate(double e, double p)
{
	return e > 0 && p > 0 ? 1 / (1 / e + 1 / p) : 0;
}

/* What every round of mode_rpc runs, set up once. */
struct rpc_plan {
	const struct opts *o;
	int n, nvar;
	const struct frame *load, *bgf;
	struct create_setup *cs;
	struct list_setup *ls;
	bool is_list, is_create, have_pg, have_bg;
	const char *name_base, *name_idle, *name_loaded, *name_bg;
};

/* One round's results: the echo, P, the server idle and loaded. */
struct rpc_results {
	struct result base, pgr, idle, loaded, bgr;
};

/* The ratios a round gives, in the text report and the JSON. */
enum { R_RPS, R_P99, R_LIM, R_LOADED, R_N };

static const struct {
	const char *text, *json;
} ratio_names[R_N] = {
	[R_RPS] = { "server/baseline", "ratio_rps" },
	[R_P99] = { "server/baseline p99", "ratio_p99" },
	[R_LIM] = { "server/L", "ratio_server_L" },
	[R_LOADED] = { "loaded/idle p99", "ratio_loaded_idle_p99" },
};

/* One round's ratios, by R_*; 0 where the run does not measure them. */
struct round_ratios {
	double v[R_N];
};

/* The echo baseline, in a child process or in this one. */
static int
rpc_echo(const struct rpc_plan *x, struct result *r)
{
	const struct opts *o = x->o;
	struct echo echo;
	char url[64];
	pid_t pid;
	int rv;

	if (!o->baseline_process) {
		if (echo_start(&echo, "tcp://127.0.0.1:0") < 0)
			return -1;
		rv = run_load(x->name_base, x->n, kind_nng(o, true), x->load,
		    echo.url, NULL, NULL, x->nvar, o->secs, o->timeout_ms, -1,
		    r);
		echo_stop(&echo);
		return rv;
	}
	/* Long enough for the run; the child goes away by itself. */
	pid = echo_spawn(o->secs + 2 * o->timeout_ms / 1000 + 30, url,
	    sizeof(url));
	if (pid < 0)
		return -1;
	rv = run_load(x->name_base, x->n, kind_nng(o, true), x->load, url,
	    NULL, NULL, x->nvar, o->secs, o->timeout_ms, pid, r);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return rv;
}

/* The method with --background's load beside it. */
static int
rpc_loaded(const struct rpc_plan *x, struct rpc_results *r)
{
	const struct opts *o = x->o;
	struct pool bg;
	int rv = -1;

	fprintf(stderr, "vgen-bench: background: %ld clients on %s\n",
	    o->bg_clients, o->bg_method);
	if (pool_open(&bg, (int)o->bg_clients, kind_nng(o, false), x->bgf,
	    o->server, NULL, NULL, 1, true, o->secs, o->timeout_ms) < 0)
		goto out;
	if (pool_start(&bg, o->secs) < 0) {
		pool_join(&bg);
		goto out;
	}
	/* The foreground's warm-up lets the background ramp up too. */
	rv = run_load(x->name_loaded, x->n, kind_nng(o, false), x->load,
	    o->server, NULL, NULL, x->nvar, o->secs, o->timeout_ms,
	    o->server_pid, &r->loaded);
	pool_join(&bg);
	if (rv == 0)
		rv = pool_result(&bg, x->name_bg, &r->bgr);
out:
	pool_fini(&bg);
	return rv;
}

/* One round: the echo, P, the server, the server loaded, in turn. */
static int
rpc_round(const struct rpc_plan *x, struct rpc_results *r)
{
	const struct opts *o = x->o;

	memset(r, 0, sizeof(*r));
	if (!o->no_baseline && rpc_echo(x, &r->base) < 0)
		return -1;
	if (x->is_create && x->have_pg) {
		if (run_load("pg INSERT (raw)", x->n, &CALL_PG, NULL, NULL,
		    o->database_url, x->cs->ins, x->n, o->secs, o->timeout_ms,
		    -1, &r->pgr) < 0)
			return -1;
		create_clear(x->cs, o->database_url);
	}
	if (x->is_list && x->have_pg && run_load("pg keyset (same query)",
	    x->n, &CALL_PG, NULL, NULL, o->database_url, &x->ls->q, 1, o->secs,
	    o->timeout_ms, -1, &r->pgr) < 0)
		return -1;
	if (run_load(x->name_idle, x->n, kind_nng(o, false), x->load,
	    o->server, NULL, NULL, x->nvar, o->secs, o->timeout_ms,
	    o->server_pid, &r->idle) < 0)
		return -1;
	return x->have_bg ? rpc_loaded(x, r) : 0;
}

/* Whether the run measures ratio k. */
static bool
ratio_on(const struct rpc_plan *x, int k)
{
	switch (k) {
	case R_RPS:
	case R_P99:
		return !x->o->no_baseline;
	case R_LIM:
		return x->is_list && x->have_pg;
	default:
		return x->have_bg;
	}
}

static struct round_ratios
round_ratios(const struct rpc_plan *x, const struct rpc_results *r)
{
	struct round_ratios q = { { 0 } };

	q.v[R_RPS] = ratio(r->idle.rps, r->base.rps);
	q.v[R_P99] = ratio(r->idle.p99, r->base.p99);
	q.v[R_LIM] = ratio(r->idle.rps, limit_rate(r->base.rps, r->pgr.rps));
	q.v[R_LOADED] = ratio(r->loaded.p99, r->idle.p99);
	for (int k = 0; k < R_N; k++)
		if (!ratio_on(x, k))
			q.v[k] = 0;
	return q;
}

/* "label N: server/baseline 0.61; server/baseline p99 1.80; ..." */
static void
round_print(FILE *f, const char *label, int round,
    const struct rpc_plan *x, const struct round_ratios *q)
{
	fprintf(f, "%s %d:", label, round);
	for (int k = 0; k < R_N; k++)
		if (ratio_on(x, k))
			fprintf(f, " %s %.2f;", ratio_names[k].text, q->v[k]);
	fprintf(f, "\n");
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median, lowest and highest of ratio k over n rounds. */
static void
ratio_spread(const struct round_ratios *rr, int n, int k, double out[3])
{
	double v[BENCH_MAX_ROUNDS];

	for (int i = 0; i < n; i++)
		v[i] = rr[i].v[k];
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	out[0] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	out[1] = v[0];
	out[2] = v[n - 1];
}

/* The rounds' summary: each ratio's median and range, then the rounds. */
static void
rounds_text(const struct rpc_plan *x, const struct round_ratios *rr, int n,
    uint64_t errors)
{
	double m[3];

	printf("\nover %d rounds (the tables above are the last round's), "
	    "median (lowest-highest):\n", n);
	for (int k = 0; k < R_N; k++) {
		if (!ratio_on(x, k))
			continue;
		ratio_spread(rr, n, k, m);
		printf("  %-20s %.2f (%.2f-%.2f)\n", ratio_names[k].text, m[0],
		    m[1], m[2]);
	}
	for (int r = 0; r < n; r++)
		round_print(stdout, "  round", r + 1, x, &rr[r]);
	printf("  failed calls, all rounds: %" PRIu64 "\n", errors);
}

static void
rounds_json(const struct rpc_plan *x, const struct round_ratios *rr, int n,
    uint64_t errors)
{
	double m[3];

	printf(",\"rounds\":%d,\"errors_all_rounds\":%" PRIu64, n, errors);
	for (int k = 0; k < R_N; k++) {
		if (!ratio_on(x, k))
			continue;
		ratio_spread(rr, n, k, m);
		printf(",\"%s_median\":%.3f,\"%s_rounds\":[",
		    ratio_names[k].json, m[0], ratio_names[k].json);
		for (int r = 0; r < n; r++)
			printf("%s%.3f", r ? "," : "", rr[r].v[k]);
		printf("]");
	}
}

static int
mode_rpc(const struct opts *o)
{
	struct bench_user user = { .bearer = NULL };
	struct list_setup ls = { .db = NULL };
	struct create_setup cs = { .n = 0 };
	struct frame fg = { 0 }, bgf = { 0 };
	const struct frame *load = &fg;	/* nvar frames */
	struct result base = { 0 }, idle = { 0 }, loaded = { 0 }, bgr = { 0 };
	struct result pgr = { 0 };
	struct rpc_results last;
	struct rpc_plan plan;
	struct round_ratios rr[BENCH_MAX_ROUNDS];
	char name_base[64], name_idle[64], name_loaded[64], name_bg[64];
	bool need_user, have_bg = o->bg_method != NULL;
	bool is_list = list_method(o->method);
	bool is_create = strcmp(o->method, "CreateJob") == 0;
	bool have_pg = (is_list || is_create) && !o->no_baseline;
	double lim;
	int n = (int)o->clients, nvar = 1, rv = 1, round;
	uint64_t errors_all = 0;	/* failed calls, every round's */
	bool none_ok = false;	/* a round where nothing succeeded */

	if (server_check(o->server) < 0)
		return 1;
	if (is_create && have_pg && (o->database_url == NULL ||
	    *o->database_url == '\0')) {
		fprintf(stderr, "vgen-bench: CreateJob's baseline needs "
		    "--database-url (or --no-baseline)\n");
		return 1;
	}
	need_user = (strcmp(o->method, "Health") != 0 && !is_create) ||
	    (have_bg && strcmp(o->bg_method, "Health") != 0);
	if (need_user && user_setup(o->server, &user) < 0)
		goto out;
	if (is_create) {
		if (create_setup(&cs, o->server, n) < 0)
			goto out;
		load = cs.frames;
		nvar = n;
	}
	if (is_list) {
		ls.page = strcmp(o->method, "ListVideosDeep") == 0 ?
		    BENCH_DEEP_PAGE : 1;
		if (list_seed(&ls, o->database_url, user.id) < 0 ||
		    list_walk(&ls, o->server, user.bearer) < 0 ||
		    list_check(&ls) < 0)
			goto out;
	}
	if ((!is_create && method_frame(o->method, &user, ls.page_token,
	    &fg) < 0) ||
	    (have_bg && method_frame(o->bg_method, &user, NULL, &bgf) < 0)) {
		fprintf(stderr, "vgen-bench: out of memory\n");
		goto out;
	}
	snprintf(name_base, sizeof(name_base), "echo baseline%s",
	    o->baseline_process ? " (process)" : "");
	snprintf(name_idle, sizeof(name_idle), "server %s%s", o->method,
	    have_bg ? " (idle)" : "");
	snprintf(name_loaded, sizeof(name_loaded), "server %s (+%s:%ld)",
	    o->method, have_bg ? o->bg_method : "", o->bg_clients);
	snprintf(name_bg, sizeof(name_bg), "background %s:%ld",
	    have_bg ? o->bg_method : "", o->bg_clients);

	plan = (struct rpc_plan){ o, n, nvar, load, &bgf, &cs, &ls, is_list,
	    is_create, have_pg, have_bg, name_base, name_idle, name_loaded,
	    name_bg };
	for (round = 0; round < o->rounds; round++) {
		if (o->rounds > 1)
			fprintf(stderr, "vgen-bench: round %d of %ld\n",
			    round + 1, o->rounds);
		if (rpc_round(&plan, &last) < 0)
			goto out;
		rr[round] = round_ratios(&plan, &last);
		errors_all += last.base.errors + last.pgr.errors +
		    last.idle.errors + last.loaded.errors + last.bgr.errors;
		none_ok = none_ok || last.idle.ok == 0 ||
		    (have_bg && last.loaded.ok == 0) ||
		    (have_pg && last.pgr.ok == 0);
		if (o->rounds > 1)
			round_print(stderr, "vgen-bench: round", round + 1,
			    &plan, &rr[round]);
	}
	base = last.base;
	pgr = last.pgr;
	idle = last.idle;
	loaded = last.loaded;
	bgr = last.bgr;

	if (o->json) {
		printf("{\"mode\":\"rpc\",\"method\":");
		json_str(o->method);
		printf(",\"clients\":%d,\"duration_s\":%ld,\"server_url\":", n,
		    o->secs);
		json_str(o->server);
		printf(",\"client\":\"%s\",", o->thread_clients ? "threads" :
		    "aio");
		if (!o->no_baseline) {
			printf("\"baseline_process\":%s,",
			    o->baseline_process ? "true" : "false");
			json_result("baseline", &base);
			printf(",");
		}
		if (is_list) {
			printf("\"keyset\":{\"videos\":%d,\"page_size\":%d,"
			    "\"page\":%d,\"after_us\":", BENCH_VIDEOS,
			    BENCH_PAGE_SIZE, ls.page);
			if (ls.have_after) {
				printf("%s,\"after_id\":", ls.after_us);
				json_str(ls.after_id);
			} else {
				printf("null,\"after_id\":null");
			}
			printf("},");
		}
		if (have_pg) {
			json_result("pg", &pgr);
			printf(",");
		}
		json_result("server", &idle);
		if (!o->no_baseline)
			printf(",\"ratio_rps\":%.3f,\"ratio_p99\":%.3f",
			    ratio(idle.rps, base.rps),
			    ratio(idle.p99, base.p99));
		if (have_pg) {
			lim = limit_rate(base.rps, pgr.rps);
			printf(",\"E_req_per_s\":%.1f,\"P_req_per_s\":%.1f,"
			    "\"L_req_per_s\":%.1f,\"server_req_per_s\":%.1f,"
			    "\"ratio_server_L\":%.3f,\"ratio_server_P\":%.3f",
			    base.rps, pgr.rps, lim, idle.rps,
			    ratio(idle.rps, lim), ratio(idle.rps, pgr.rps));
		}
		if (have_bg) {
			printf(",\"background\":{\"method\":");
			json_str(o->bg_method);
			printf(",\"clients\":%ld,\"req_per_s\":%.1f,"
			    "\"errors\":%" PRIu64 "},", o->bg_clients, bgr.rps,
			    bgr.errors);
			json_result("loaded", &loaded);
			printf(",\"idle_p99_us\":%" PRIu32
			    ",\"loaded_p99_us\":%" PRIu32
			    ",\"ratio_loaded_idle_p99\":%.3f", idle.p99,
			    loaded.p99, ratio(loaded.p99, idle.p99));
		}
		if (o->rounds > 1)
			rounds_json(&plan, rr, (int)o->rounds, errors_all);
		printf("}\n");
	} else {
		printf("vgen-bench rpc %s: -c %d (%s clients), %ld s per run, "
		    "server %s\n", o->method, n, o->thread_clients ?
		    "thread" : "aio", o->secs, o->server);
		if (is_list && ls.have_after)
			printf("page %d of %d videos, %d a page: after "
			    "(created_us %s, id %s)\n", ls.page, BENCH_VIDEOS,
			    BENCH_PAGE_SIZE, ls.after_us, ls.after_id);
		else if (is_list)
			printf("page 1 of %d videos, %d a page\n", BENCH_VIDEOS,
			    BENCH_PAGE_SIZE);
		printf("\n");
		table_head();
		if (!o->no_baseline)
			table_row(&base);
		if (have_pg)
			table_row(&pgr);
		table_row(&idle);
		if (have_bg) {
			table_row(&loaded);
			table_row(&bgr);
		}
		printf("\n");
		cpu_tables((const struct result *const []){
		    o->no_baseline ? NULL : &base, have_pg ? &pgr : NULL,
		    &idle, have_bg ? &loaded : NULL }, 4);
		printf("\n");
		if (!o->no_baseline)
			printf("server/baseline: throughput %.2f, p99 %.2f\n",
			    ratio(idle.rps, base.rps),
			    ratio(idle.p99, base.p99));
		if (have_pg) {
			lim = limit_rate(base.rps, pgr.rps);
			printf("E %.0f/s, P %.0f/s, L = 1/(1/E + 1/P) %.0f/s; "
			    "server %.0f/s\n", base.rps, pgr.rps, lim,
			    idle.rps);
			if (is_list)
				printf("server/L: %.2f (target >= 0.80), "
				    "server/P: %.2f\n", ratio(idle.rps, lim),
				    ratio(idle.rps, pgr.rps));
			else
				printf("server/P (raw INSERT): %.2f\n",
				    ratio(idle.rps, pgr.rps));
		}
		if (have_bg)
			printf("%s p99: idle %" PRIu32 " us, loaded %" PRIu32
			    " us, loaded/idle %.2f\n", o->method, idle.p99,
			    loaded.p99, ratio(loaded.p99, idle.p99));
		if (o->rounds > 1)
			rounds_text(&plan, rr, (int)o->rounds, errors_all);
	}
	fflush(stdout);
	rv = 0;
	if (none_ok) {
		fprintf(stderr, "vgen-bench: no call to %s succeeded\n",
		    o->method);
		rv = 1;
	}
out:
	list_fini(&ls);
	create_fini(&cs, o->database_url);
	users_drop(o->database_url, &user, 1);
	free(fg.buf);
	free(bgf.buf);
	free(user.bearer);
	return rv;
}

/* The SQL baseline: what one indexed read costs without the transport. */
static int
mode_pg(const struct opts *o)
{
	const char *keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { "5", o->database_url, NULL };
	char id[VG_UUID_STRLEN + 1] = "00000000-0000-4000-8000-000000000000";
	const char *params[] = { id };
	const struct pg_query pk = { "bench_pk", "SELECT id, email, username, "
	    "avatar_url, created_at, updated_at FROM users WHERE id = $1", 1,
	    params, STORE_READS_SQL };
	struct result r;
	PGconn *db;
	PGresult *res;
	bool found = false;

	if (o->database_url == NULL || *o->database_url == '\0') {
		fprintf(stderr, "vgen-bench: pg needs --database-url or "
		    "VGEN_DATABASE_URL\n");
		return 2;
	}
	db = PQconnectdbParams(keys, vals, 1);
	if (db == NULL || PQstatus(db) != CONNECTION_OK) {
		pg_fail("cannot connect to the database", db);
		PQfinish(db);
		return 1;
	}
	res = PQexec(db, "SELECT id::text FROM users LIMIT 1");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pg_fail("reading users", db);
		PQclear(res);
		PQfinish(db);
		return 1;
	}
	if (PQntuples(res) == 1) {
		snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
		found = true;
	}
	PQclear(res);
	PQfinish(db);
	if (!found)
		fprintf(stderr, "vgen-bench: no users yet; looking up an "
		    "absent id (the same index probe, no row)\n");

	if (run_load("pg pk select", (int)o->clients, &CALL_PG, NULL, NULL,
	    o->database_url, &pk, 1, o->secs, o->timeout_ms, -1, &r) < 0)
		return 1;
	if (o->json) {
		printf("{\"mode\":\"pg\",\"query\":\"pk\",\"clients\":%ld,"
		    "\"duration_s\":%ld,", o->clients, o->secs);
		json_result("pg", &r);
		printf("}\n");
	} else {
		printf("vgen-bench pg pk: -c %ld, %ld s\n\n", o->clients,
		    o->secs);
		table_head();
		table_row(&r);
	}
	return r.ok == 0;
}

static int
mode_echo(const struct opts *o)
{
	struct echo e;

	if (echo_start(&e, o->listen) < 0)
		return 1;
	printf("%s\n", e.url);	/* echo_spawn reads this line */
	fflush(stdout);
	fprintf(stderr, "vgen-bench: echo on %s for %ld s\n", e.url, o->secs);
	sleep_ms((int64_t)o->secs * 1000);
	echo_stop(&e);
	return 0;
}

/* ---- arguments ---------------------------------------------------------- */

int
parse_long(const char *flag, const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "vgen-bench: %s must be a whole number from "
		    "%ld to %ld, not \"%s\"\n", flag, min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

int
opt_error(int ch, char **argv, const char *help)
{
	if (ch == ':')
		fprintf(stderr, "vgen-bench: %s needs a value\n",
		    argv[optind - 1]);
	else
		fprintf(stderr, "vgen-bench: unknown option \"%s\" (see %s)\n",
		    argv[optind - 1], help);
	return 2;
}

static int
parse_background(const char *s, struct opts *o)
{
	static char method[16];
	const char *colon = strchr(s, ':');
	size_t len = colon != NULL ? (size_t)(colon - s) : 0;

	if (colon == NULL || len == 0 || len >= sizeof(method)) {
		fprintf(stderr, "vgen-bench: --background wants METHOD:N, "
		    "like Login:32\n");
		return -1;
	}
	memcpy(method, s, len);
	method[len] = '\0';
	if (!method_valid(method)) {
		fprintf(stderr, "vgen-bench: --background method must be "
		    "Health, GetMe or Login, not \"%s\"\n", method);
		return -1;
	}
	o->bg_method = method;
	return parse_long("--background N", colon + 1, 1, BENCH_MAX_THREADS,
	    &o->bg_clients);
}

enum {
	OPT_SERVER = 256, OPT_NO_BASELINE, OPT_BACKGROUND, OPT_JSON,
	OPT_TIMEOUT, OPT_DATABASE_URL, OPT_QUERY, OPT_LISTEN, OPT_METHOD,
	OPT_BASELINE_PROC, OPT_PID, OPT_PIDFILE, OPT_ROUNDS, OPT_CLIENT,
};

static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "method", required_argument, NULL, OPT_METHOD },
		{ "clients", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "no-baseline", no_argument, NULL, OPT_NO_BASELINE },
		{ "baseline-process", no_argument, NULL, OPT_BASELINE_PROC },
		{ "background", required_argument, NULL, OPT_BACKGROUND },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "database-url", required_argument, NULL, OPT_DATABASE_URL },
		{ "query", required_argument, NULL, OPT_QUERY },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "server-pid", required_argument, NULL, OPT_PID },
		{ "server-pid-file", required_argument, NULL, OPT_PIDFILE },
		{ "rounds", required_argument, NULL, OPT_ROUNDS },
		{ "client", required_argument, NULL, OPT_CLIENT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool secs_set = false;
	const char *env;
	long pid;
	int ch;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 1;
	}
	o->mode = argv[1];
	if (strcmp(o->mode, "rpc") != 0 && strcmp(o->mode, "pg") != 0 &&
	    strcmp(o->mode, "echo") != 0) {
		fprintf(stderr, "vgen-bench: unknown mode \"%s\" (rpc, pg or "
		    "echo; see --help)\n", o->mode);
		return 2;
	}
	o->clients = 16;
	o->secs = 10;
	o->rounds = 1;
	o->timeout_ms = 10000;
	o->query = "pk";
	o->listen = "tcp://127.0.0.1:7499";
	o->server_pid = -1;
	env = getenv("VGEN_SERVER");
	o->server = env != NULL && *env != '\0' ? env : VGEN_DEFAULT_SERVER;
	o->database_url = getenv("VGEN_DATABASE_URL");

	opterr = 0;
	optind = 2;
	while ((ch = getopt_long(argc, argv, ":c:d:h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_METHOD:
			o->method = optarg;
			break;
		case 'c':
			if (parse_long("-c", optarg, 1, BENCH_MAX_THREADS,
			    &o->clients) < 0)
				return 2;
			break;
		case 'd':
			if (parse_long("-d", optarg, 1, 86400, &o->secs) < 0)
				return 2;
			secs_set = true;
			break;
		case OPT_SERVER:
			o->server = optarg;
			break;
		case OPT_NO_BASELINE:
			o->no_baseline = true;
			break;
		case OPT_BASELINE_PROC:
			o->baseline_process = true;
			break;
		case OPT_BACKGROUND:
			if (parse_background(optarg, o) < 0)
				return 2;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_ROUNDS:
			if (parse_long("--rounds", optarg, 1, BENCH_MAX_ROUNDS,
			    &o->rounds) < 0)
				return 2;
			break;
		case OPT_CLIENT:
			if (strcmp(optarg, "threads") != 0 &&
			    strcmp(optarg, "aio") != 0) {
				fprintf(stderr, "vgen-bench: --client is aio or "
				    "threads, not \"%s\"\n", optarg);
				return 2;
			}
			o->thread_clients = strcmp(optarg, "threads") == 0;
			break;
		case OPT_TIMEOUT:
			if (parse_long("--timeout", optarg, 1, 3600000,
			    &o->timeout_ms) < 0)
				return 2;
			break;
		case OPT_DATABASE_URL:
			o->database_url = optarg;
			break;
		case OPT_QUERY:
			o->query = optarg;
			break;
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_PID:
			if (parse_long("--server-pid", optarg, 1, INT32_MAX,
			    &pid) < 0)
				return 2;
			o->server_pid = (pid_t)pid;
			break;
		case OPT_PIDFILE:
			if (pid_file(optarg, &o->server_pid) < 0)
				return 2;
			break;
		case 'h':
			fputs(usage, stdout);
			return 1;
		default:
			return opt_error(ch, argv, "--help");
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vgen-bench: unexpected argument \"%s\"\n",
		    argv[optind]);
		return 2;
	}
	if (strcmp(o->mode, "rpc") == 0) {
		if (o->method == NULL) {
			fprintf(stderr, "vgen-bench: rpc needs --method "
			    "Health, GetMe, Login, CreateJob, ListVideos or "
			    "ListVideosDeep\n");
			return 2;
		}
		if (!method_valid(o->method) && !list_method(o->method) &&
		    strcmp(o->method, "CreateJob") != 0) {
			fprintf(stderr, "vgen-bench: --method must be Health, "
			    "GetMe, Login, CreateJob, ListVideos or ListVideosDeep, not "
			    "\"%s\"\n", o->method);
			return 2;
		}
		if (list_method(o->method) && (o->database_url == NULL ||
		    *o->database_url == '\0')) {
			fprintf(stderr, "vgen-bench: %s needs --database-url "
			    "or VGEN_DATABASE_URL (to insert the videos it "
			    "lists)\n", o->method);
			return 2;
		}
	}
	if (strcmp(o->mode, "rpc") != 0 && (o->method != NULL ||
	    o->bg_method != NULL || o->no_baseline || o->baseline_process)) {
		fprintf(stderr, "vgen-bench: --method, --background and "
		    "--*baseline* belong to rpc mode\n");
		return 2;
	}
	if (strcmp(o->mode, "pg") == 0 && strcmp(o->query, "pk") != 0) {
		fprintf(stderr, "vgen-bench: --query must be pk, not \"%s\"\n",
		    o->query);
		return 2;
	}
	if (strcmp(o->mode, "echo") == 0 && !secs_set)
		o->secs = 60;
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o = { 0 };
	int rv;

	if (argc >= 2 && strcmp(argv[1], "worker") == 0)
		return bench_worker_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "events") == 0)
		return bench_events_main(argc, argv);
	if ((rv = parse_args(argc, argv, &o)) != 0)
		return rv == 1 ? 0 : rv;
	if (strcmp(o.mode, "rpc") == 0)
		return mode_rpc(&o);
	if (strcmp(o.mode, "pg") == 0)
		return mode_pg(&o);
	return mode_echo(&o);
}
