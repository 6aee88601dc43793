/*
 * worker/wrk_parse.h: the worker's pure parsers (no network, no database).
 *
 * Internal to worker/: no other folder includes it.  Four parts, each in
 * its own file and each driven by the provider code with bytes it got
 * from libcurl:
 *
 *   sse.c          an incremental Server-Sent Events decoder
 *   chat.c         the chat-completions content parser (progress, final
 *                  URL, in-stream errors; shared/sora-api.md §2.7)
 *   videos.c       the Videos API / task-style object parser (§1, §3), the
 *                  HTTP error envelope parser (§1.6, §4) and the helpers
 *                  that turn provider text into a message a user can read
 *   retry_after.c  Retry-After / retry-after-ms and exponential backoff
 *
 * Nothing here logs, sleeps or keeps global state: every parser works on
 * a caller's struct, so one worker thread can run thousands side by side.
 * Every growing buffer has a ceiling fixed at creation.  Functions that do
 * something return 0 or a negative VG_E* code from common/vg.h.
 */
#ifndef WRK_PARSE_H
#define WRK_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vg.h"

/* ------------------------------------------------------------------------
 * Error classes: what the worker does with a failed attempt (DESIGN §7).
 */
enum wrk_class {
	WRK_CLASS_NONE = 0,	/* no error */
	WRK_CLASS_TRANSIENT,	/* back to pending with backoff; uses an attempt */
	WRK_CLASS_RATE_LIMIT,	/* snooze until Retry-After; no attempt used */
	WRK_CLASS_PERMANENT,	/* fail the job with the message */
	WRK_CLASS_POLICY,	/* content-policy refusal: fail, show the reason */
	WRK_CLASS_QUOTA,	/* quota or balance exhausted: fail, alert */
	WRK_CLASS_AUTH,		/* bad key, region, model gone: fail, alert */
};

/* wrk_class_name returns a static lower-case name ("rate_limit", ...). */
const char *wrk_class_name(enum wrk_class cls);

/* wrk_class_retryable tells whether the job goes back to pending. */
bool wrk_class_retryable(enum wrk_class cls);

/* Messages meant for users are at most this many bytes (plus the NUL). */
#define WRK_MSG_MAX 300

/*
 * wrk_msg_clean makes provider text fit to show a user: invalid UTF-8
 * becomes '?', control characters become spaces, runs of white space
 * collapse to one, both ends are trimmed, and text longer than WRK_MSG_MAX
 * bytes is cut at a character boundary and ends in "…".  Returns a new
 * string the caller frees (possibly ""), or NULL when memory ran out.
 */
char *wrk_msg_clean(const char *s, size_t len);

/*
 * wrk_text_is_policy tells whether provider text (a message, a code)
 * names a content-policy refusal: sentinel_block, moderation_blocked,
 * "content policy", "moderation", ... compared case-insensitively.
 * `loose` also accepts the plain words of sora-api.md §2.7 step 5
 * ("blocked", "policy", "sentinel", "违规"), meant for status text and
 * the failure lines of a chat stream, not for HTTP errors where a
 * gateway's "request blocked" means something else.
 */
bool wrk_text_is_policy(const char *s, size_t len, bool loose);

/*
 * struct wrk_err_info is a provider error found in a JSON document.
 * message is owned (already cleaned by wrk_msg_clean; NULL when the
 * document names no message) and released by wrk_err_info_fini(); code
 * holds error.code or error.type (of the innermost envelope), or "".
 */
struct wrk_err_info {
	char *message;
	char  code[64];
	bool  policy;		/* the message or a code names a policy block */
};

/*
 * wrk_err_from_json looks for a provider error in the object `root`: a
 * top-level `error` (an object with message/code/type, or a string) or
 * `detail` (a string, an object, or FastAPI's [{"msg": ...}]); with
 * `any_message` also a top-level `message` or `msg`, as HTTP error bodies
 * use.  An upstream envelope embedded as JSON text inside the message
 * (sora2api's "API request failed: 400 - {\"error\": ...}") is unwrapped:
 * its message and code win.  Returns 1 and fills *info (the caller then
 * owns info->message) when an error was found, 0 when none was (info is
 * left zeroed), or VG_ENOMEM.
 */
int wrk_err_from_json(const json_t *root, bool any_message,
    struct wrk_err_info *info) VG_MUSTCHECK;
void wrk_err_info_fini(struct wrk_err_info *info);	/* safe on zeroes */

/* ------------------------------------------------------------------------
 * sse.c: an incremental Server-Sent Events decoder.
 *
 * Bytes go in as libcurl hands them over, split anywhere (inside a CRLF,
 * inside a multi-byte UTF-8 character, inside the BOM).  Lines end in LF,
 * CRLF or a lone CR.  A UTF-8 BOM at the very start is dropped.  Lines
 * starting with ':' are comments: counted in `comments` (liveness) and
 * never dispatched.  "event:" names the event; "data:" lines (one leading
 * space dropped) are joined with "\n"; "id:", "retry:" and unknown fields
 * are ignored.  An event is dispatched on a blank line and, if data is
 * pending, by wrk_sse_finish() at EOF.  Per the SSE specification an
 * event without any data line is not dispatched, and two "data:" lines
 * with no blank line between them make ONE event whose data holds both
 * (the chat parser splits concatenated JSON documents again).
 */

#define WRK_SSE_MAX_LINE (64 * 1024)	/* what the worker passes */
#define WRK_SSE_DATA_FACTOR 16		/* data cap = 16 x max_line */
#define WRK_SSE_EVENT_MAX 64		/* event names are cut to 63 bytes */

struct wrk_sse {
	/*
	 * on_event receives one event.  `event` is the event name
	 * ("message" when none was given), `data` the joined data,
	 * NUL-terminated at data[len]; both are borrowed and valid only
	 * during the call.  A return below zero stops the decoder:
	 * wrk_sse_feed/finish return that value, then and on every later
	 * call.  Set by wrk_sse_init, as the rest of this block; max_data
	 * may be lowered before the first feed.
	 */
	int  (*on_event)(void *arg, const char *event, const char *data,
	    size_t len);
	void  *arg;
	size_t max_line;	/* longest line, terminator excluded */
	size_t max_data;	/* most data bytes in one event */

	/* Read by the caller. */
	bool     done;		/* a data line "[DONE]" was seen */
	uint64_t comments;	/* comment lines seen (keep-alives) */
	uint64_t events;	/* events dispatched */
	int      err;		/* sticky: 0, or what stopped the decoder */

	/* Private. */
	char  *line;		/* the current, unfinished line */
	size_t line_len, line_cap;
	char  *data;		/* data of the pending event */
	size_t data_len, data_cap;
	size_t ndata;		/* data lines in the pending event */
	char   event[WRK_SSE_EVENT_MAX];
	uint8_t bom;		/* BOM bytes matched so far at the start */
	bool   started;		/* past the BOM check */
	bool   skip_lf;		/* the last byte was a CR ending a line */
};

/*
 * wrk_sse_init prepares *p for a new stream (*p is not read: fini a used
 * one first): lines of at most `max_line` bytes (0 means
 * WRK_SSE_MAX_LINE), events of at most WRK_SSE_DATA_FACTOR x max_line
 * data bytes, `on_event(arg, ...)` per event.  It allocates nothing;
 * release with wrk_sse_fini().
 */
void wrk_sse_init(struct wrk_sse *p, size_t max_line,
    int (*on_event)(void *arg, const char *event, const char *data,
    size_t len), void *arg);

/* wrk_sse_fini frees the buffers; safe on a zeroed struct and twice. */
void wrk_sse_fini(struct wrk_sse *p);

/*
 * wrk_sse_feed decodes `len` bytes, calling on_event for each complete
 * event.  Returns 0, VG_ETOOBIG (a line longer than max_line, or an
 * event's data over max_data), VG_ENOMEM, or the callback's negative
 * value.  After an error the decoder is stopped: every later feed or
 * finish returns the same code (p->err).
 */
int wrk_sse_feed(struct wrk_sse *p, const char *buf, size_t len)
    VG_MUSTCHECK;

/*
 * wrk_sse_finish is EOF: an unterminated last line is processed and a
 * pending event dispatched.  Returns as wrk_sse_feed.
 */
int wrk_sse_finish(struct wrk_sse *p) VG_MUSTCHECK;

/* ------------------------------------------------------------------------
 * chat.c: the chat-completions content parser (sora-api.md §2.7 steps
 * 3-7).  One struct per stream; wrk_chat_event() per SSE data payload,
 * wrk_chat_finish() once at the end.
 *
 * The text of choices[0].delta.content, delta.reasoning_content and
 * message.content accumulates in one text T (at most WRK_CHAT_MAX_TEXT).
 * T is scanned line by line as lines complete, so a long stream costs
 * linear time:
 *  - progress: "(进度|progress)[^0-9\n]{0,12}N" (case-insensitive, N =
 *    1-3 digits with an optional fraction, the gap counted in characters)
 *    where N is followed by '%', '.', white space or the end of the line;
 *    a number at the very end of T is pending (more digits may come).
 *    Lines inside a ```json fence (the prompt echo) are skipped.  The
 *    value is clamped to 0..100, truncated to an integer, and c->progress
 *    is the largest seen: §2.7 takes the last match and then the maximum
 *    with the previous value, which differs only when one chunk holds
 *    several matches going down.
 *  - the final URL, by level: delta.output[].url, then "url"/"video_url"
 *    (a JSON key in the chunk or in T), then src='...' / src="...", then a
 *    markdown ](URL), then any bare http(s) URL.  Within a level a URL
 *    ending in .mp4/.mov/.webm beats one that does not, one after a success
 *    marker (✅, Complete, successfully, 生成完成, 生成成功) beats one
 *    before, and otherwise the last one wins.  asyncdata.net/web|source
 *    links, image files and the caller's input image never count.  A URL
 *    stops at white space, )]"'<>, a backtick, a backslash or a non-ASCII
 *    byte; &amp; is decoded and trailing .,~ stripped.
 *  - failure lines (❌, 失败, failed, error, blocked, 违规, policy,
 *    sentinel), used only when no URL turns up.
 */

#define WRK_CHAT_MAX_TEXT (1024 * 1024)	/* T */
#define WRK_CHAT_MAX_MALFORMED 20	/* the 21st bad payload is fatal */
#define WRK_CHAT_MAX_LAST_JSON (64 * 1024)
#define WRK_URL_MAX 4096		/* longer candidates are ignored */

enum wrk_chat_outcome {
	WRK_CHAT_PENDING = 0,		/* wrk_chat_finish not called yet */
	WRK_CHAT_SUCCESS,		/* c->url holds the video URL */
	WRK_CHAT_ERROR_PERMANENT,	/* c->error: fail the job */
	WRK_CHAT_ERROR_POLICY,		/* c->error: content policy refusal */
	WRK_CHAT_ERROR_TRANSIENT,	/* c->error: retry (stream dropped) */
};

enum wrk_phase {		/* from keywords in T; never goes back */
	WRK_PHASE_UNKNOWN = 0,
	WRK_PHASE_QUEUED,	/* 排队 队列 Queu ⌛ */
	WRK_PHASE_RUNNING,	/* 生成中 Generating processing 🏃 */
	WRK_PHASE_DONE,		/* 生成完成 生成成功 Complete successfully ✅ */
};

#define WRK_URL_LEVELS 5

struct wrk_chat {
	/* Set by the caller after init, if known; borrowed, must outlive c. */
	const char *input_image;	/* never taken as the result */

	/* Read by the caller while streaming. */
	int      progress;	/* -1 unknown, else 0..100, monotonic */
	enum wrk_phase phase;
	bool     done;		/* "[DONE]" seen */
	bool     ended;		/* [DONE], a finish_reason or an error */
	char     finish_reason[32];	/* lower-cased, "" when none yet */
	char     wm_stage[32];	/* the "wm" watermark stage, "" when none */
	unsigned chunks;	/* JSON chunks parsed */
	unsigned malformed;	/* payloads that were not JSON */
	char    *last_json;	/* owned: text of the last JSON chunk that
				 * fit in WRK_CHAT_MAX_LAST_JSON, or NULL */

	/* Set by wrk_chat_finish (error: also at an in-stream error). */
	enum wrk_chat_outcome outcome;
	char    *url;		/* owned; the video URL on SUCCESS */
	char    *error;		/* owned; ≤ WRK_MSG_MAX bytes, readable */
	bool     truncated;	/* SUCCESS without [DONE] or finish_reason */

	/* Private. */
	char    *text;		/* T, NUL-terminated */
	size_t   text_len, text_cap;
	size_t   line_off;	/* start of the first line not yet scanned */
	size_t   scanned;	/* T up to here has been searched */
	bool     in_fence;	/* inside a ```json fence */
	bool     success_seen;	/* a success marker in a scanned line */
	struct {
		char *url;	/* owned */
		int   score;
	} cand[WRK_URL_LEVELS];
	char    *fail_line;	/* owned, cleaned: the last failure line */
	bool     fail_policy;
	int      fatal;		/* sticky VG_E* from wrk_chat_event */
};

/* wrk_chat_init zeroes *c and sets progress to -1; allocates nothing. */
void wrk_chat_init(struct wrk_chat *c);

/* wrk_chat_fini frees everything c owns; safe on zeroes and twice. */
void wrk_chat_fini(struct wrk_chat *c);

/*
 * wrk_chat_event takes one SSE data payload (not NUL-terminated; `len`
 * bytes).  "[DONE]" marks the end; JSON chunks feed T and the records
 * above; several JSON documents in one payload (two "data:" lines with no
 * blank line between them) are each taken.  A payload that is not JSON is
 * counted in c->malformed and scanned for a URL only.  A top-level
 * `error` or `detail` ends the stream: c->ended, c->outcome and c->error
 * are set at once (later payloads are ignored) and wrk_chat_finish keeps
 * them.  Returns 0 (check c->ended), VG_ETOOBIG when T would pass
 * WRK_CHAT_MAX_TEXT, VG_EPROTO after too many malformed payloads, or
 * VG_ENOMEM; after an error every later call returns it again, and
 * wrk_chat_finish reports a permanent error (transient for VG_ENOMEM).
 */
int wrk_chat_event(struct wrk_chat *c, const char *data, size_t len)
    VG_MUSTCHECK;

/*
 * wrk_chat_error_event takes the data of an SSE "event: error": a JSON
 * error envelope or plain text.  It always ends the stream with an error
 * (policy, transient or permanent by its text).  Returns 0 or VG_ENOMEM.
 */
int wrk_chat_error_event(struct wrk_chat *c, const char *data, size_t len)
    VG_MUSTCHECK;

/*
 * wrk_chat_has_url tells whether a URL has been found in what was scanned
 * so far (complete lines of T and structured fields).
 */
bool wrk_chat_has_url(const struct wrk_chat *c);

/*
 * wrk_chat_finish decides the outcome once the body has ended.
 * `clean_eof` is true when the transfer ended normally (libcurl returned
 * CURLE_OK), false when it broke off.  The rules (§2.7 step 7):
 *  - an error payload, or a fatal wrk_chat_event error, stands;
 *  - a URL → SUCCESS, with c->truncated when no [DONE] or finish_reason
 *    came; a URL still open at the very end of T counts only when the
 *    stream ended cleanly or signalled its end;
 *  - no URL but [DONE] or a finish_reason → ERROR_PERMANENT ("the provider
 *    finished without a video URL", or the last failure line of T, which
 *    makes it ERROR_POLICY when it names a policy block);
 *  - no URL and no end signal → ERROR_TRANSIENT (a dropped stream), unless
 *    a failure line names a policy block (ERROR_POLICY).
 * Sets c->outcome, and c->url or c->error (both owned by c).  Calling it
 * again changes nothing.  Returns 0 or VG_ENOMEM.
 */
int wrk_chat_finish(struct wrk_chat *c, bool clean_eof) VG_MUSTCHECK;

/* ------------------------------------------------------------------------
 * videos.c: Videos API objects (OpenAI /v1/videos and the task-style
 * proxies of sora-api.md §3) and HTTP error bodies.
 */

enum wrk_video_state {
	WRK_VIDEO_UNKNOWN = 0,
	WRK_VIDEO_QUEUED,	/* queued pending submitted not_start created queueing */
	WRK_VIDEO_RUNNING,	/* in_progress processing running */
	WRK_VIDEO_DONE,		/* completed succeeded success */
	WRK_VIDEO_FAILED,	/* failed failure error cancel(l)ed expired timeout */
};

/* wrk_video_state_word maps a status word (any case) to a state. */
enum wrk_video_state wrk_video_state_word(const char *s);

struct wrk_video_status {
	char    *id;		/* owned; id, else task_id; NULL if none */
	enum wrk_video_state state;
	int      progress;	/* 0..100, or -1 when absent */
	char    *url;		/* owned; NULL when the object names none
				 * (OpenAI: download /videos/{id}/content) */
	char    *error;		/* owned, cleaned; NULL when no error */
	enum wrk_class error_class;	/* POLICY or PERMANENT with error */
	double   seconds;	/* seconds or duration, -1 when absent */
	int64_t  expires_at;	/* Unix seconds, 0 when absent */
};

/*
 * wrk_video_parse reads one video object from `len` bytes of JSON.  A
 * {"code":..,"data":{..}} wrapper (PiAPI) is looked through.  The status
 * word is normalised; progress may be an integer, a real or a string such
 * as "100%"; the URL is the first of url, video_url, output.video,
 * data[0].url, content.result_url, meta_data.url, result.video.url that is
 * an http(s) URL.  An error object or string fills error and error_class
 * (POLICY for moderation or "blocked", else PERMANENT); a failed state
 * without one gets a generic message; an object with an error and no
 * status counts as failed.  Returns 0, VG_EPROTO (not a JSON object) or
 * VG_ENOMEM.  *out is written only on success; the caller then releases
 * it with wrk_video_status_fini().
 */
int wrk_video_parse(const char *json, size_t len,
    struct wrk_video_status *out) VG_MUSTCHECK;
void wrk_video_status_fini(struct wrk_video_status *v);	/* safe on zeroes */

struct wrk_http_error {
	long  status;		/* the HTTP status */
	enum wrk_class cls;
	char *message;		/* owned, cleaned, never NULL on success */
	char  code[64];		/* error.code or error.type, or "" */
};

/*
 * wrk_http_error_parse reads the body of an HTTP response with status
 * ≥ 400.  The message is error.message | error (a string) | detail |
 * message | msg, with an embedded upstream envelope unwrapped; a short
 * text/plain body is used as it is; an HTML body, an empty one or JSON
 * without a message gives "HTTP <status> from the provider" (raw HTML is
 * never shown).  The class:
 *   429                          RATE_LIMIT, or QUOTA for insufficient_quota
 *   402, 403/429 + quota/balance QUOTA
 *   401, 403                     AUTH
 *   408, 409, 5xx                TRANSIENT
 *   other 4xx                    PERMANENT
 * and any of them naming a content-policy block (a sentinel_block or
 * moderation_blocked code, "Content policy violation") is POLICY.
 * `content_type` may be NULL.  Returns 0, VG_EINVAL (status < 400) or
 * VG_ENOMEM.  *out is written only on success; release it with
 * wrk_http_error_fini().
 */
int wrk_http_error_parse(long status, const char *body, size_t len,
    const char *content_type, struct wrk_http_error *out) VG_MUSTCHECK;
void wrk_http_error_fini(struct wrk_http_error *e);	/* safe on zeroes */

/* ------------------------------------------------------------------------
 * retry_after.c: how long to wait before the next attempt.
 */

/*
 * wrk_retry_after_ms reads the two hint headers of a 429/503 answer (each
 * NULL when absent; surrounding white space allowed).  retry-after-ms (an
 * integer or real number of milliseconds) wins when it parses; else
 * Retry-After as delta-seconds (an integer or real) or as an HTTP date
 * (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday,
 * 06-Nov-94 08:49:37 GMT" or asctime "Sun Nov  6 08:49:37 1994"), taken
 * relative to `now_unix_s`.  The result is clamped to [0, max_ms]: a date
 * in the past or a negative number gives 0, a date decades away gives
 * max_ms.  Returns -1 when neither header is present and parseable; the
 * caller then backs off with wrk_backoff_ms().
 */
int64_t wrk_retry_after_ms(const char *retry_after, const char *retry_after_ms,
    int64_t now_unix_s, int64_t max_ms);

/*
 * wrk_backoff_ms is the wait before retry number `attempt` (1 for the
 * first retry; lower values count as 1): exponential, cap = min(max_ms,
 * base_ms x 2^(attempt-1)), with "equal jitter": cap/2 + rnd mod
 * (cap/2 + 1).  Half the cap is always waited, so a crowd of failing jobs
 * neither retries at once (the jitter spreads them) nor spins (the floor),
 * unlike full jitter which may draw 0.  `rnd` is a caller's random 32-bit
 * value, so the function stays pure and testable.  Never overflows;
 * returns 0 when base_ms or max_ms is not positive.
 */
int64_t wrk_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms,
    uint32_t rnd);

#endif /* WRK_PARSE_H */
