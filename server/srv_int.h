/*
 * server/srv_int.h: shared by the server files only.
 *
 * A call's life: listen.c receives a frame on a context, dispatch.c
 * decodes it and picks the method, the method's lane decides where the
 * handler runs (inline in nng's callback, or on a pool thread that owns a
 * store connection), the handler fills the response from call memory, and
 * dispatch.c encodes the reply and frees the call.
 */
#ifndef SRV_INT_H
#define SRV_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <nng/nng.h>

#include "srv.h"
#include "vgen/v1/admin.pb-c.h"
#include "vgen/v1/health.pb-c.h"
#include "vgen/v1/job.pb-c.h"
#include "vgen/v1/user.pb-c.h"
#include "vgen/v1/video.pb-c.h"

#define SRV_MAX_VIOLATIONS 8
#define SRV_CLOSE_MS 2000	/* nng_close's deadline at shutdown (vg_nng.h) */

/* ---- call memory: everything a handler allocates dies with the call -- */

struct srv_chunk;	/* arena.c */
struct srv_arena {
	struct srv_chunk *head;
	size_t used, cap;	/* within head */
	size_t total;		/* bytes handed out, bounded */
};

/*
 * srv_arena_alloc returns `size` zeroed bytes owned by the arena, or NULL
 * when memory ran out (or the call used more than SRV_CALL_MEM_MAX).
 * srv_arena_free releases every allocation at once; safe on zeroes.
 */
#define SRV_CALL_MEM_MAX (8u << 20)
void *srv_arena_alloc(struct srv_arena *a, size_t size);
void srv_arena_free(struct srv_arena *a);

struct srv;

/*
 * What a handler asks for when it wants its call parked (WaitJob): the
 * reply it filled is the answer should parking be refused; otherwise the
 * call waits in the wait registry (wait.c) until job `job_id` differs
 * from (known_status, known_progress) or deadline_ms passes.  `seq` is
 * srv_wait_seq() taken before the handler read the job, so an event that
 * arrived between the read and the parking is not lost.
 */
struct srv_park {
	bool want;
	char job_id[VG_UUID_STRLEN + 1];
	char user_id[VG_UUID_STRLEN + 1];	/* the caller, owner of the job */
	int known_status, known_progress;
	int64_t deadline_ms;		/* vg_now_ms() clock */
	uint64_t seq;
};

struct srv_req;

/* One RPC in flight.  Lives from the decoded frame to the sent reply. */
struct srv_call {
	struct srv *srv;
	const struct srv_method *m;
	const char *method;		/* full name, from the request */
	const char *request_id;		/* from the request ("" if none) */
	const char *authorization;
	store_conn *db;			/* the lane thread's; NULL inline */
	char user_id[VG_UUID_STRLEN + 1];	/* set when authenticated */
	int64_t deadline_ms;		/* vg_now_ms() clock */
	int64_t start_ms;
	const char *message;		/* static or arena memory */
	size_t nviolations;
	struct {
		const char *field;
		const char *description;
	} violations[SRV_MAX_VIOLATIONS];
	struct srv_arena arena;
	struct srv_park park;		/* set by a handler that parks */
	/* A deferred call (srv_call_defer): */
	struct srv_req *req;		/* answered through req->answer */
	void *out;			/* the response the handler fills */
	bool deferred;
	enum vg_status deferred_st;	/* from srv_call_resume */
	atomic_int gate;		/* the dispatcher and the resume */
};

void *srv_call_alloc(struct srv_call *call, size_t size);
char *srv_call_strdup(struct srv_call *call, const char *s); /* NULL → "" */

/*
 * Status helpers (status.c).  srv_call_status maps a VG_E* code (0: OK)
 * through the table in common/status.c; srv_call_invalid records a field
 * violation and returns INVALID_ARGUMENT; srv_call_fail sets a message
 * (static or call memory) and returns `st`.
 */
enum vg_status srv_call_status(struct srv_call *call, int rv);
enum vg_status srv_call_invalid(struct srv_call *call, const char *field,
    const char *description);
enum vg_status srv_call_fail(struct srv_call *call, enum vg_status st,
    const char *message);

/*
 * A valid token outlives its user.  srv_call_user_status answers a store
 * lookup of the caller's own row: VG_ENOTFOUND (the user was deleted) is
 * UNAUTHENTICATED, other errors map as srv_call_status.
 * srv_call_user_check (dispatch.c) runs that lookup, one query; the
 * dispatcher does it before every SRV_AUTH method that does not confirm
 * the user itself (SRV_SELF_CHECK).
 */
enum vg_status srv_call_user_status(struct srv_call *call, int rv);
enum vg_status srv_call_user_check(struct srv_call *call);

/*
 * Reads that do not hold a thread.  A handler running inline calls
 * srv_call_defer, then starts one store_async read (call->srv->reads)
 * whose done callback, on a store thread, fills the response and calls
 * srv_call_resume once, which answers the call; when the read cannot
 * start, the handler calls that done callback itself with the error.
 * From srv_call_defer on, the handler touches neither the call nor `in`
 * (freed when it returns: copy what the callback needs into call memory)
 * and its return value is ignored.
 */
void srv_call_defer(struct srv_call *call);
void srv_call_resume(struct srv_call *call, enum vg_status st);

/* ---- methods ------------------------------------------------------------ */

/* Where a handler runs. */
enum srv_lane {
	SRV_LANE_INLINE,	/* in nng's callback: no blocking I/O (a
				 * deferred read may start), microseconds */
	SRV_LANE_DB,		/* a pool thread with a store connection */
	SRV_LANE_SLOW,		/* few low-priority threads: bcrypt */
	SRV_NLANES,
};

/*
 * A handler reads `in` (decoded, string fields checked for UTF-8 and NUL)
 * and fills `out` (initialised, in call memory) and returns a status.
 */
typedef enum vg_status (*srv_handler)(struct srv_call *call, const void *in,
    void *out);

#define SRV_AUTH 0x1		/* needs a valid token; sets call->user_id */
#define SRV_SELF_CHECK 0x2	/* the handler itself confirms the user */

/* A service file's handlers, by method name; ends with name NULL. */
struct srv_handler_def {
	const char *name;	/* "GetMe", as in the .proto */
	srv_handler fn;
	enum srv_lane lane;
	unsigned flags;
};

/* Built from protoc-c's descriptors by dispatch.c. */
struct srv_method {
	char full[96];		/* "/vgen.v1.UserService/GetMe" */
	const ProtobufCMessageDescriptor *in, *out;
	const struct srv_handler_def *def;	/* NULL: UNIMPLEMENTED */
};

extern const struct srv_handler_def srv_user_handlers[];
extern const struct srv_handler_def srv_health_handlers[];
extern const struct srv_handler_def srv_job_handlers[];
extern const struct srv_handler_def srv_video_handlers[];
extern const struct srv_handler_def srv_admin_handlers[];	/* admin only */

/* Convert store rows to messages (copies into call memory). */
Vgen__V1__User *srv_user_to_pb(struct srv_call *call,
    const struct store_user *u);
Google__Protobuf__Timestamp *srv_ts_to_pb(struct srv_call *call, int64_t us);
Vgen__V1__VideoJob *srv_job_to_pb(struct srv_call *call,
    const struct store_job *j);

/* ---- page.c: page tokens ---------------------------------------------- */

/* What a token pages through: a token of one listing is refused by another. */
enum { SRV_PAGE_JOBS = 1, SRV_PAGE_VIDEOS = 2, SRV_PAGE_USERS = 3 };

/*
 * srv_page_token encodes the keyset position (created_us, id) of listing
 * `kind` for the calling user into call memory; NULL when out of memory.
 * srv_page_parse reverses it: 0, or VG_EINVAL for a token that is not
 * ours, not this user's, not this listing's, or damaged.
 */
char *srv_page_token(struct srv_call *call, int kind, int64_t created_us,
    const char *id);
int srv_page_parse(struct srv_call *call, int kind, const char *token,
    int64_t *created_us, char id[VG_UUID_STRLEN + 1]) VG_MUSTCHECK;

/* ---- wire.c: string fields checked on the raw bytes ------------------- */

/*
 * srv_wire_check walks the serialized message `buf` of type `desc` and
 * checks every string field (nested messages too): valid UTF-8 and no NUL
 * byte, which protobuf-c would silently cut at.  Returns NULL when fine,
 * else the name of the first bad field (static).
 */
const char *srv_wire_check(const ProtobufCMessageDescriptor *desc,
    const uint8_t *buf, size_t len);

/* ---- dispatch.c ----------------------------------------------------------- */

struct srv_table;	/* method name → srv_method */

/*
 * srv_table_new builds the table for the given services (NULL-terminated);
 * handlers are looked up by service and method name among `defs` (pairs
 * of service descriptor and handler list).  Returns NULL when out of
 * memory.
 */
struct srv_service_def {
	const ProtobufCServiceDescriptor *desc;
	const struct srv_handler_def *handlers;
};
struct srv_table *srv_table_new(const struct srv_service_def *services);
void srv_table_free(struct srv_table *t);
const struct srv_method *srv_table_find(const struct srv_table *t,
    const char *full);

/*
 * A request taken off the wire, waiting for its lane.  Owned by the
 * context it arrived on (listen.c) until the reply is sent.
 */
struct srv_req {
	Vgen__V1__RpcRequest *env;	/* decoded envelope; NULL if malformed */
	const struct srv_method *m;	/* NULL: unknown method */
	int64_t recv_ms;
	struct srv_call call;		/* while the handler runs */
	/* How a deferred call's reply (NULL: out of memory) is sent. */
	void (*answer)(struct srv_req *r, nng_msg *reply);
};

/*
 * srv_dispatch_prepare decodes `msg`'s body into *r and finds the method
 * (it does not free msg); the caller then sets r->answer.
 * srv_dispatch_run authenticates, decodes the payload, runs the handler
 * with `db` and packs the reply into *reply (NULL only when out of
 * memory).  It returns false when the handler deferred the call: then
 * r->answer gets the reply later, from whichever thread finishes last.
 * srv_req_fini frees the envelope.
 */
void srv_dispatch_prepare(struct srv *s, const struct srv_table *t,
    nng_msg *msg, struct srv_req *r);
enum srv_lane srv_req_lane(const struct srv_req *r);
bool srv_dispatch_run(struct srv *s, struct srv_req *r, store_conn *db,
    nng_msg **reply, struct srv_park *park);
void srv_req_fini(struct srv_req *r);

/*
 * srv_dispatch_answer packs the reply of a call that is answered outside
 * srv_dispatch_run (a parked WaitJob): status `st`, `out` as the payload
 * when st is OK (NULL is answered as out of memory), the call's
 * request id, message and violations.  *reply is NULL when out of memory.
 * Frees the call's memory.
 */
void srv_dispatch_answer(struct srv_call *call, enum vg_status st,
    const ProtobufCMessage *out, nng_msg **reply);

/* ---- listen.c: the lanes' pools --------------------------------------- */

/* A unit of work for a pool thread: run(w, db) with the thread's store. */
struct srv_work {
	void (*run)(struct srv_work *w, store_conn *db);
	struct srv_work *next;		/* queue link */
};

/* srv_pool_push queues `w` on lane `lane` (FIFO); the pool runs it once. */
void srv_pool_push(struct srv *s, enum srv_lane lane, struct srv_work *w);

/* ---- wait.c: parked WaitJob calls ------------------------------------- */

#define SRV_WAIT_DEFAULT_MS 30000	/* WaitJob timeout_ms 0 */
#define SRV_WAIT_MAX_MS 60000		/* larger timeout_ms are capped */
#define SRV_WAIT_MAX_PARKED 100000	/* beyond: answered at once */

struct srv_waits;	/* the registry: by job id, and a deadline heap */

/*
 * srv_waits_new makes the registry (with the pipe that wakes the hub
 * when a nearer deadline arrives).  0, VG_ENOMEM or VG_EINTERNAL.
 * srv_waits_free frees it; every call must have been answered
 * (srv_wait_close).
 */
int srv_waits_new(struct srv *s, struct srv_waits **out) VG_MUSTCHECK;
void srv_waits_free(struct srv_waits *w);

/* srv_wait_seq: the event counter, read before a handler reads a job. */
uint64_t srv_wait_seq(struct srv_waits *w);

/*
 * srv_wait_park takes the call's nng context `ctx` (answered later, once,
 * then closed) with the request id (copied).  Returns 0 when parked, or
 * VG_ELIMIT / VG_ENOMEM / VG_EUNAVAIL (closing): the caller still owns
 * ctx and answers now.
 */
int srv_wait_park(struct srv_waits *w, nng_ctx ctx, const char *request_id,
    const struct srv_park *p) VG_MUSTCHECK;

/*
 * Called by the hub thread.  srv_wait_event records an event and hands
 * the calls waiting on `job_id` whose known state differs to the DB lane
 * (which re-reads the job and answers, or parks the call again).
 * srv_wait_recheck_all hands every parked call over (after the hub lost
 * events).  srv_wait_expire hands over the calls whose deadline passed
 * and returns the next deadline (INT64_MAX: none).  srv_wait_fd is the
 * read end of the wake pipe; srv_wait_drain empties it.
 */
void srv_wait_event(struct srv_waits *w, const char *job_id,
    const char *user_id, int status, int progress);
void srv_wait_recheck_all(struct srv_waits *w);
int64_t srv_wait_expire(struct srv_waits *w, int64_t now_ms);
int srv_wait_fd(struct srv_waits *w);
void srv_wait_drain(struct srv_waits *w);

/*
 * srv_wait_close refuses new parkings, answers every parked call with the
 * job's current state (UNAVAILABLE when the database is down) through the
 * DB lane, and waits until all those replies are sent (up to until_ms).
 */
void srv_wait_close(struct srv_waits *w, int64_t until_ms);

/* srv_wait_parked: calls parked now (for logs and tests). */
size_t srv_wait_parked(struct srv_waits *w);

/* ---- hub.c: LISTEN vgen_job_events → pub socket, and the wait timers -- */

/*
 * lguard.c: every listener is made by srv_lguard_listen (IPC ones with
 * file mode `perms` when not 0; peer_open opens a socket of a protocol
 * that may connect, e.g. nng_req0_open for a rep0 socket).
 * srv_lguard_check probes the IPC listeners and restarts those nng 1.5
 * broke (issue 1518); it returns how many it restarted.  The guard must
 * outlive the sockets it listens on.
 */
struct srv_lguard;
int srv_lguard_new(struct srv_lguard **out) VG_MUSTCHECK;
void srv_lguard_free(struct srv_lguard *g);
int srv_lguard_listen(struct srv_lguard *g, nng_socket sock, const char *url,
    int perms, int (*peer_open)(nng_socket *)) VG_MUSTCHECK;
int srv_lguard_check(struct srv_lguard *g, const atomic_bool *stopping);

struct srv_hub;

/*
 * srv_hub_start binds the pub socket on cfg.events_listen (when set) and
 * starts the hub thread with its own store connection.  0 or VG_E*.
 * srv_hub_stop ends the thread and closes the socket; NULL is a no-op.
 */
int srv_hub_start(struct srv *s, struct srv_hub **out) VG_MUSTCHECK;
void srv_hub_stop(struct srv_hub *h);

/*
 * nng's task threads (tasks.c).  srv_tasks_parse reads
 * VGEN_NNG_TASK_THREADS: "auto" (SRV_TASKS_AUTO), "all" (0) or 1..4096;
 * 0 or VG_EINVAL.  srv_tasks_start starts nng, from the thread whose CPU
 * mask and policy nng's threads are to have, and holds all but the
 * count asked for; auto keeps one at work while the events socket has
 * fewer than SRV_TASKS_WIDE subscribers, all of them from there until no
 * more than SRV_TASKS_NARROW are left.  *out is NULL for "all".  The
 * hub reports each subscriber that comes and goes (srv_tasks_pipes, any
 * thread, never blocks).  srv_tasks_release lets every thread go for
 * good (the shutdown); srv_tasks_free, once no pipe callback can come,
 * frees.  NULL is a no-op for all three.
 */
#define SRV_TASKS_AUTO (-1L)
#define SRV_TASKS_WIDE 32
#define SRV_TASKS_NARROW 16
struct srv_tasks;
int srv_tasks_parse(const char *spec, long *out) VG_MUSTCHECK;
int srv_tasks_start(struct srv *s, struct srv_tasks **out) VG_MUSTCHECK;
void srv_tasks_pipes(struct srv_tasks *t, int delta);
void srv_tasks_release(struct srv_tasks *t);
void srv_tasks_free(struct srv_tasks *t);

/* ---- the server ---------------------------------------------------------- */

struct srv_config {
	const char *database_url;
	const char *rpc_listen;		/* comma-separated */
	const char *admin_listen;
	const char *events_listen;
	long events_sendbuf;		/* frames queued per subscriber */
	const char *run_dir;
	const char *jwt_secret;
	const char *jwt_secret_file;
	long bcrypt_cost;
	long threads;			/* DB lane */
	long read_conns;		/* store_async connections */
	long slow_threads;		/* SLOW lane */
	long contexts;			/* rep0 contexts per endpoint */
	long token_ttl_s;
	long default_timeout_ms;
	long max_frame;
	long max_active_jobs;		/* pending + processing per user */
	long job_max_attempts;
	long sched_batch;		/* 0 none, 1 ours, 2 all SCHED_BATCH */
	const char *rpc_cpus;		/* "auto", "none" or a CPU list */
	const char *nng_tasks_spec;	/* VGEN_NNG_TASK_THREADS */
	long nng_tasks;			/* its value: SRV_TASKS_AUTO, 0 all, N */
};

struct srv_pool;	/* listen.c: a lane's threads and queue */
struct srv_endpoint;	/* listen.c: a rep0 socket and its contexts */

/*
 * Where the threads run (VGEN_RPC_CPUS, listen.c).  The RPC path, nng's
 * threads and the store reads', hands each call from thread to thread;
 * on the CPUs of `rpc` the woken thread is on the waker's CPU, or near.
 */
struct srv_cpus {
	bool pin;		/* false: every thread may run anywhere */
	cpu_set_t all;		/* the process's mask at start */
	cpu_set_t rpc;		/* nng's threads and the store reads' */
	cpu_set_t slow;		/* the bcrypt pool: all but rpc, if any */
};

/*
 * srv_cpus_plan reads VGEN_RPC_CPUS: "none" pins nothing; "auto" puts
 * the RPC path on the highest CPU of the process's mask and the bcrypt
 * pool on the others, when the mask has two CPUs or more; a CPU list
 * puts the RPC path there (and bcrypt on the rest, if any).  0, or
 * VG_EINVAL when the list is not one of CPUs the process may use.
 */
int srv_cpus_plan(const char *spec, struct srv_cpus *out) VG_MUSTCHECK;

struct srv {
	struct srv_config cfg;
	struct srv_cpus cpus;
	struct srv_auth *auth;
	struct srv_table *rpc_table, *admin_table;
	struct srv_endpoint *rpc, *admin;
	struct srv_pool *pools[SRV_NLANES];
	store_async *reads;		/* deferred reads (srv_call_defer) */
	struct srv_waits *waits;	/* parked WaitJob calls */
	struct srv_hub *hub;		/* event hub thread */
	struct srv_lguard *lguard;	/* every listener; heals IPC ones */
	struct srv_tasks *tasks;	/* VGEN_NNG_TASK_THREADS; or NULL */
	pthread_t health_thread;
	atomic_bool db_ok;		/* last health probe reached the database */
	atomic_bool stopping;
};

/*
 * srv_start opens the pools and endpoints and begins serving; srv_stop
 * stops receiving, waits (up to `grace_ms`) for calls in flight to be
 * answered, and closes everything.  srv_start returns 0 or VG_E*.
 */
int srv_start(struct srv *s) VG_MUSTCHECK;
void srv_stop(struct srv *s, int grace_ms);

#endif /* SRV_INT_H */
