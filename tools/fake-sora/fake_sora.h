/*
 * tools/fake-sora/fake_sora.h: what the files of fake-sora share.
 *
 * fake-sora is a test double for the two provider APIs the worker speaks
 * (../shared/sora-api.md): the chat-completions SSE style of the Sora
 * proxies (chat.c) and the OpenAI Videos API (videos.c), with faults
 * injected per request (faults.c).  It runs on libmicrohttpd with one
 * internal epoll thread; timed output (SSE progress, trickled bodies) is
 * produced by content readers that suspend their connection until the
 * next event is due, and one timer thread resumes them (stream.c).  So a
 * thousand idle streams cost a heap entry each, not a thread.
 *
 * Threads.  Every MHD callback of the main daemon runs on its one polling
 * thread; the decoy daemons (fake_sora.c) have one thread each.  What they
 * share (the prompt table, the videos, the counters) is guarded by
 * fs_server.mu.  A stream is touched only by the thread of its daemon,
 * except for the timer, which only resumes it.
 *
 * Nothing here is exported from the tool: the prefix is fs_.
 */
#ifndef FAKE_SORA_H
#define FAKE_SORA_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>
#include <microhttpd.h>

#define FS_BODY_MAX (1024 * 1024)	/* largest request body we read */
#define FS_MARKERS_MAX 4		/* [fault:...] markers per prompt */
#define FS_STYLES 7			/* chat stream shapes, chat.c */
#define FS_VIDEOS_MAX 200000		/* oldest videos are forgotten */
#define FS_FOREVER_MS (3600 * 1000)	/* "forever" faults end after 1 h */
#define FS_HUGE_BYTES (50u * 1024 * 1024)
#define FS_CHUNKED_BYTES (20u * 1024 * 1024)
#define FS_HUGE_LINE_BYTES (4u * 1024 * 1024)

/* The request kinds that counters and fault markers are kept for. */
enum fs_kind {
	FS_CHAT,		/* POST /v1/chat/completions */
	FS_CREATE,		/* POST /v1/videos */
	FS_POLL,		/* GET /v1/videos/{id} */
	FS_CONTENT,		/* GET /v1/videos/{id}/content, /media/... */
	FS_KIND_MAX
};

/* The two protocol flows; a fault's default target depends on it. */
enum fs_flow {
	FS_FLOW_CHAT,
	FS_FLOW_VIDEOS,
};

/* Every fault fake-sora can inject; faults.c has the names and help. */
enum fs_fault {
	FS_F_NONE,
	FS_F_429,
	FS_F_429_MS,
	FS_F_429_DATE,
	FS_F_429_FAR,
	FS_F_429_BIG,
	FS_F_429_NONE,
	FS_F_QUOTA,
	FS_F_500,
	FS_F_502_HTML,
	FS_F_503,
	FS_F_400,
	FS_F_401,
	FS_F_404,
	FS_F_STALL,
	FS_F_KEEPALIVE_ONLY,
	FS_F_NEVER_ENDS,
	FS_F_DROP,
	FS_F_DROP_AFTER_URL,
	FS_F_MALFORMED,
	FS_F_POLICY,
	FS_F_NO_URL,
	FS_F_FAIL_LATE,
	FS_F_URL_FILE,
	FS_F_URL_LOOPBACK,
	FS_F_URL_REDIRECT_PRIVATE,
	FS_F_HUGE_BODY,
	FS_F_CHUNKED_20M,
	FS_F_HUGE_LINE,
	FS_F_SLOW,
	FS_F_CONTENT_REDIRECT,
	FS_F_MAX
};

/* Per-prompt bookkeeping: the counters /stats reports and the uses of
 * each [fault:NAME*K] marker of that prompt. */
struct fs_prompt {
	char *text;			/* owned */
	uint64_t count[FS_KIND_MAX];
	uint64_t decoy;			/* downloads from a decoy address */
	uint64_t faults;		/* faults injected */
	uint32_t uses[FS_MARKERS_MAX];
	struct fs_prompt *next;		/* hash chain */
};

/* A generated video: an OpenAI Videos object, or the media a chat stream
 * pointed at (chat == true, always complete). */
struct fs_video {
	char id[64];
	char model[64];
	char seconds[16];
	char size[24];
	char *prompt;			/* owned */
	int64_t created_at;		/* Unix seconds */
	uint64_t t0;			/* fs_now_ms() at creation */
	enum fs_fault behaviour;	/* policy, fail-late, stall, ... */
	bool chat;
	struct fs_video *hnext;		/* hash chain */
	struct fs_video *older, *newer;	/* creation order */
};

struct fs_timer;

/* The process: options, daemons and shared state. */
struct fs_server {
	/* options, read-only after start */
	char listen[64];
	unsigned port;			/* the main port, once bound */
	unsigned decoy_port;		/* 127.0.0.1 decoy, 0 when none */
	bool decoy2;			/* 127.0.0.2:port decoy is up */
	unsigned steps;
	unsigned step_ms;
	char *api_key;			/* NULL: no auth */
	size_t video_bytes;
	bool verbose;

	struct fs_timer *timer;
	atomic_bool stopping;
	atomic_long streams;		/* open timed responses */
	atomic_ulong streams_total;

	pthread_mutex_t mu;		/* guards everything below */
	struct fs_prompt **prompts;
	size_t nprompts, prompt_buckets;
	struct fs_video **videos;
	size_t nvideos, video_buckets;
	struct fs_video *oldest, *newest;
	uint64_t total[FS_KIND_MAX];
	uint64_t total_decoy, total_faults;
};

/* One HTTP request being read; *con_cls in MHD's terms. */
struct fs_req {
	struct fs_server *srv;
	struct MHD_Connection *conn;
	bool decoy;			/* arrived on a decoy daemon */
	char *body;			/* owned, NUL-terminated */
	size_t len;
	bool too_big;
	/* multipart or urlencoded fields, filled by the post processor */
	json_t *form;			/* owned */
};

/* ---- fake_sora.c --------------------------------------------------------- */

/* fs_log prints to stderr when --verbose is on. */
void fs_log(struct fs_server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fs_now_ms is CLOCK_MONOTONIC in milliseconds. */
uint64_t fs_now_ms(void);

/* fs_random_hex writes n random hex digits and a NUL to out. */
void fs_random_hex(char *out, size_t n);

/* fs_base_url writes "http://host:port" for URLs that point back at us,
 * taking the host from the request's Host header when it is sane. */
void fs_base_url(struct fs_req *rq, char *out, size_t size);

/* fs_authorized is true when no key is set or the request carries
 * "Authorization: Bearer <key>". */
bool fs_authorized(struct fs_req *rq);

/* fs_reply_* queue a whole response and return MHD's verdict.  The JSON
 * forms take ownership of `obj` (a NULL obj is a 500). */
enum MHD_Result fs_reply(struct fs_req *rq, unsigned status,
    const char *type, const char *body, size_t len,
    const char *const *headers);	/* name, value, ..., NULL */
enum MHD_Result fs_reply_json(struct fs_req *rq, unsigned status,
    json_t *obj);
enum MHD_Result fs_reply_text(struct fs_req *rq, unsigned status,
    const char *type, const char *text);
enum MHD_Result fs_reply_error(struct fs_req *rq, unsigned status,
    const char *message, const char *type, const char *param,
    const char *code);
enum MHD_Result fs_reply_redirect(struct fs_req *rq, const char *location);

/* fs_prompt_get returns the entry for `text`, adding it; NULL when memory
 * ran out.  Call with srv->mu held. */
struct fs_prompt *fs_prompt_get(struct fs_server *srv, const char *text);

/* fs_count adds one request of `kind` for `prompt` (NULL: totals only). */
void fs_count(struct fs_server *srv, const char *prompt, enum fs_kind kind);

/* ---- faults.c ------------------------------------------------------------ */

/* fs_fault_name is a fault's name as markers spell it. */
const char *fs_fault_name(enum fs_fault f);

/* fs_fault_help prints the fault list for --help. */
void fs_fault_help(FILE *out);

/*
 * fs_fault_pick chooses the fault for one request of `kind` in `flow`.
 * An X-Fake-Fault header on the request wins; otherwise the first
 * [fault:NAME[@KIND][*K]] marker in `prompt` that targets `kind` and has
 * uses left is taken and its use counted.  Returns FS_F_NONE when none
 * applies.
 */
enum fs_fault fs_fault_pick(struct fs_req *rq, const char *prompt,
    enum fs_flow flow, enum fs_kind kind);

/*
 * fs_fault_reply answers the request with the HTTP-level error `f` stands
 * for (429 in all forms, quota, 5xx, 400, 401, 404) and returns true;
 * false when `f` is not such an error.  *ret receives MHD's verdict.
 */
bool fs_fault_reply(struct fs_req *rq, enum fs_fault f,
    enum MHD_Result *ret);

/* fs_style_marker returns N of a "[style:N]" marker in prompt, or -1. */
int fs_style_marker(const char *prompt);

/* ---- stream.c ------------------------------------------------------------ */

struct fs_stream;

/*
 * A generator appends the bytes of the events due at `now` with
 * fs_stream_add*, and sets st->due to when it wants to run again, or
 * st->end to FS_END_OK / FS_END_ERROR once it has nothing more to say
 * (what it added is still sent first).  Returns 0, or -1 when memory ran
 * out (the connection is then closed).
 */
typedef int (*fs_gen_fn)(struct fs_stream *st, uint64_t now);

enum fs_end {
	FS_END_NO,
	FS_END_OK,		/* a clean end of the body */
	FS_END_ERROR,		/* close the connection abruptly */
};

/* A timed response.  The generic part is stream.c's; the generator keeps
 * its state in the fields below it. */
struct fs_stream {
	struct fs_server *srv;
	struct MHD_Connection *conn;
	fs_gen_fn gen;
	char *buf;		/* pending output, owned */
	size_t len, off, cap;
	uint64_t due;		/* fs_now_ms() of the next generator call */
	uint64_t t0;
	enum fs_end end;
	bool watch_peer;	/* silent: check the client is still there */
	size_t heap_i;		/* timer.c's index while suspended */

	/* SSE (chat.c) */
	int style;
	enum fs_fault fault;
	unsigned step;		/* progress events sent */
	int phase;
	bool json;		/* stream:false, one chat.completion */
	char id[64];		/* completion id */
	char model[64];
	char url[512];		/* the final video URL */
	char task[32];		/* a task / sid token for the text */
	char *prompt;		/* owned */
	uint64_t sent;		/* bulk bytes so far */
	uint64_t limit;		/* bulk bytes wanted */

	/* bytes (videos.c) */
	uint64_t seed;
	uint64_t total;		/* MHD_SIZE_UNKNOWN for chunked */
	uint64_t drop_at;	/* 0: never */
	size_t piece;		/* trickle size, 0: as fast as possible */
};

/*
 * fs_stream_new returns a zeroed stream bound to the request, due now;
 * NULL when memory ran out.  Hand it to fs_stream_queue_sse or
 * fs_stream_queue_bytes, which own it from then on.
 */
struct fs_stream *fs_stream_new(struct fs_req *rq, fs_gen_fn gen);

/* fs_stream_free releases a stream that was never queued. */
void fs_stream_free(struct fs_stream *st);

/* fs_stream_add appends bytes to the pending output; -1 on ENOMEM. */
int fs_stream_add(struct fs_stream *st, const void *data, size_t len);
int fs_stream_addf(struct fs_stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * fs_stream_queue queues a 200 (or `status`) response of `size` bytes
 * (MHD_SIZE_UNKNOWN: chunked) whose body the generator produces, with the
 * given Content-Type.  With `bytes` the generator is not used: the body
 * is the video bytes of st->seed, trickled when st->piece is set and cut
 * at st->drop_at.  Takes the stream in every case.
 */
enum MHD_Result fs_stream_queue(struct fs_stream *st, unsigned status,
    uint64_t size, const char *type, bool bytes);

/* fs_timer_start starts the thread that resumes sleeping streams. */
int fs_timer_start(struct fs_server *srv);

/* fs_timer_stop resumes every sleeping stream, refuses new sleeps and
 * joins the thread.  Call before MHD_stop_daemon. */
void fs_timer_stop(struct fs_server *srv);

/* fs_timer_free releases the timer once every daemon has stopped. */
void fs_timer_free(struct fs_server *srv);

/* ---- chat.c -------------------------------------------------------------- */

/* fs_chat_handle answers POST /v1/chat/completions. */
enum MHD_Result fs_chat_handle(struct fs_req *rq);

/* ---- videos.c ------------------------------------------------------------ */

/* fs_videos_handle answers /v1/videos and everything under it. */
enum MHD_Result fs_videos_handle(struct fs_req *rq, const char *method,
    const char *url);

/* fs_media_handle answers GET /media/<id>.mp4 (and any *.mp4 on a decoy). */
enum MHD_Result fs_media_handle(struct fs_req *rq, const char *url);

/* fs_video_add records a video (chat media when chat is true); returns it
 * or NULL when memory ran out.  Call with srv->mu held. */
struct fs_video *fs_video_add(struct fs_server *srv, const char *id,
    const char *prompt, bool chat);

/* fs_videos_clear forgets every video (POST /reset).  srv->mu held. */
void fs_videos_clear(struct fs_server *srv);

/* fs_video_fill writes `len` bytes of the MP4 of `seed` starting at byte
 * `off` of a file of `total` bytes. */
void fs_video_fill(uint64_t seed, uint64_t total, uint64_t off, char *out,
    size_t len);

/* fs_hash is FNV-1a over a string. */
uint64_t fs_hash(const char *s);

#endif
