/*
 * tools/fake-sora/chat.c: POST /v1/chat/completions in the style of the
 * Sora proxies (sora-api.md §2).
 *
 * A stream sends an opening chunk, --steps progress chunks --step-ms
 * apart (with ": keep-alive" comments mixed in), then the final chunk
 * that links the video at /media/<id>.mp4, then "data: [DONE]".  The
 * shape of the text follows one of the transcripts in sora-api.md §2.4,
 * chosen by a "[style:N]" marker or else by a hash of the prompt:
 *
 *   0  E1 sora2api: reasoning_content progress, <video src='...'>,
 *      a new id per chunk, model "sora", finish_reason "STOP"
 *   1  E3 gptproto: "🏃 Progress 40%", a markdown link in a quote,
 *      no finish_reason at all (the stream ends with [DONE])
 *   2  E5 asyncdata: a ```json prompt echo, non-video links, queue
 *      dots, ">🏃 Progress 76..", "[Play Online▶️](...)"
 *   3  E6 soradeno: reasoning progress, a watermark-wait chunk, the
 *      final <video> plus delta.output[].url, finish_reason "STOP"
 *   4  E2 Chinese: "🏃 进度：36.0%", "[点击这里](...)"
 *   5  "Progress: 40%" lines and a bare URL as the final content (E7)
 *   6  E8 token fragments: every text cut into 1-4 byte pieces
 *
 * stream:false waits the same time and answers one chat.completion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_sora.h"

enum phase {
	P_INTRO,
	P_PROGRESS,
	P_SILENT,		/* stall: nothing at all */
	P_KEEPALIVE,		/* keepalive-only */
	P_BULK,			/* huge-body, chunked-20m */
	P_LINE,			/* huge-line */
};

#define BULK_PIECE 65536	/* bytes generated per reader call in bulk */
#define PAD_BYTES 8000		/* padding per bulk event: lines stay short */

static const char sentinel_msg[] =
    "API request failed: 400 - {\n  \"error\": {\n    \"message\": \"Hmmm "
    "something didn't look right with your request. Please try again "
    "later or visit https://help.openai.com if this issue persists.\",\n"
    "    \"type\": \"invalid_request_error\",\n    \"param\": null,\n"
    "    \"code\": \"sentinel_block\"\n  }\n}";

/* ---- emitting events ----------------------------------------------------- */

/* The malformed fault ends every other event with CRLF. */
static const char *
eol(const struct fs_stream *st)
{
	return st->fault == FS_F_MALFORMED && st->step % 2 == 1 ? "\r\n" : "\n";
}

static int
emit_data(struct fs_stream *st, const char *payload)
{
	const char *e = eol(st);

	if (fs_stream_add(st, "data: ", 6) < 0 ||
	    fs_stream_add(st, payload, strlen(payload)) < 0)
		return -1;
	return fs_stream_addf(st, "%s%s", e, e);
}

/* emit_json sends obj as one event and releases it. */
static int
emit_json(struct fs_stream *st, json_t *obj)
{
	char *s;
	int rv;

	if (obj == NULL)
		return -1;
	s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (s == NULL)
		return -1;
	rv = emit_data(st, s);
	free(s);
	return rv;
}

static int
emit_done(struct fs_stream *st)
{
	return emit_data(st, "[DONE]");
}

/* chunk wraps a delta (taken) in the chunk shape of the stream's style;
 * finish NULL is null (or absent in the E3 style). */
static json_t *
chunk(struct fs_stream *st, json_t *delta, const char *finish)
{
	json_t *choice, *c;
	char id[48];

	if (delta == NULL)
		return NULL;
	if (st->style == 1) {
		choice = json_pack("{s:o,s:i}", "delta", delta, "index", 0);
		return json_pack("{s:[o],s:i,s:s,s:s,s:s}", "choices", choice,
		    "created", 0, "id", st->id, "model", st->model,
		    "object", "chat.completion.chunk");
	}
	choice = json_pack("{s:i,s:o,s:o}", "index", 0, "delta", delta,
	    "finish_reason", finish ? json_string(finish) : json_null());
	if (st->style == 0) {
		/* sora2api: a new id per chunk and "sora" whatever was asked */
		snprintf(id, sizeof(id), "chatcmpl-%llu",
		    (unsigned long long)fs_now_ms() + st->step);
		json_object_set_new(choice, "native_finish_reason",
		    finish ? json_string(finish) : json_null());
		c = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:{s:i,s:i,s:i}}",
		    "id", id, "object", "chat.completion.chunk",
		    "created", (json_int_t)time(NULL), "model", "sora",
		    "choices", choice, "usage", "prompt_tokens", 0,
		    "completion_tokens", 0, "total_tokens", 0);
		return c;
	}
	return json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", st->id,
	    "object", "chat.completion.chunk",
	    "created", (json_int_t)time(NULL), "model", st->model,
	    "choices", choice);
}

static int
emit_content(struct fs_stream *st, const char *text, const char *finish)
{
	json_t *d;

	if (st->style == 1)
		d = json_pack("{s:s,s:s}", "content", text, "role",
		    "assistant");
	else
		d = json_pack("{s:s}", "content", text);
	return emit_json(st, chunk(st, d, finish));
}

static int
emit_reasoning(struct fs_stream *st, const char *text)
{
	return emit_json(st, chunk(st, json_pack("{s:n,s:s}", "content",
	    "reasoning_content", text), NULL));
}

/* emit_fragments sends text as 1-4 byte pieces, never splitting a UTF-8
 * character (E8). */
static int
emit_fragments(struct fs_stream *st, const char *text)
{
	size_t len = strlen(text), off = 0, k = 0;
	char piece[16];

	while (off < len) {
		size_t n = 1 + (k++ + st->step) % 4;

		if (n > len - off)
			n = len - off;
		while (off + n < len && ((unsigned char)text[off + n] & 0xC0)
		    == 0x80 && n < sizeof(piece) - 1)
			n++;
		memcpy(piece, text + off, n);
		piece[n] = '\0';
		if (emit_content(st, piece, NULL) < 0)
			return -1;
		off += n;
	}
	return 0;
}

/* ---- the styles ---------------------------------------------------------- */

static int
intro(struct fs_stream *st)
{
	json_t *echo;
	char *q, buf[1024];
	int rv;

	switch (st->style) {
	case 0:
		return emit_json(st, chunk(st, json_pack("{s:s,s:n,s:s,s:n}",
		    "role", "assistant", "content", "reasoning_content",
		    "**Generation Process Begins**\n\nInitializing generation "
		    "request...\n", "tool_calls"), NULL));
	case 1:
		return emit_content(st, "", NULL);
	case 2:
	case 6:
		echo = json_string(st->prompt);
		q = echo ? json_dumps(echo, JSON_ENCODE_ANY) : NULL;
		json_decref(echo);
		if (q == NULL)
			return -1;
		snprintf(buf, sizeof(buf), "```json\n{\n \"prompt\": %.900s, "
		    "\"orientation\": \"portrait\"\n}\n```\n\n", q);
		free(q);
		if (st->style == 6) {
			if (emit_json(st, chunk(st, json_pack("{s:s,s:s}",
			    "role", "assistant", "content", ""), NULL)) < 0)
				return -1;
			return emit_fragments(st, buf);
		}
		rv = emit_content(st, buf, NULL);
		snprintf(buf, sizeof(buf), "> ID: `task_%s`\n", st->task);
		rv |= emit_content(st, buf, NULL);
		snprintf(buf, sizeof(buf), ">[Data Preview](https://asyncdata."
		    "net/web/task_%s) | [Raw Data](https://asyncdata.net/"
		    "source/task_%s)\n", st->task, st->task);
		rv |= emit_content(st, buf, NULL);
		rv |= emit_content(st, "> Queuing", NULL);
		rv |= emit_content(st, "......\n", NULL);
		return rv;
	case 3:
		return emit_json(st, chunk(st, json_pack("{s:s,s:s}", "role",
		    "assistant", "reasoning_content",
		    "**Video Generation Started**\n"), NULL));
	case 4:
		return emit_content(st, "⌛️ 任务正在队列中，请耐心等待...\n",
		    NULL);
	default:
		return emit_content(st, "🎬 开始生成视频...\n", NULL);
	}
}

static int
progress(struct fs_stream *st, int pct)
{
	char buf[128];

	switch (st->style) {
	case 0:
		if (st->step % 4 == 2)
			snprintf(buf, sizeof(buf), "Generation in progress: "
			    "%d%% completed (estimated)...\n", pct);
		else
			snprintf(buf, sizeof(buf), "**Video Generation "
			    "Progress**: %d%% (processing)\n", pct);
		return emit_reasoning(st, buf);
	case 1:
		snprintf(buf, sizeof(buf), "🏃 Progress %d%%\n\n", pct);
		return emit_content(st, buf, NULL);
	case 2:
		if (st->step == 1 &&
		    emit_content(st, "> Generating.", NULL) < 0)
			return -1;
		snprintf(buf, sizeof(buf), "\n\n>🏃 Progress %d..", pct);
		return emit_content(st, buf, NULL);
	case 3:
		snprintf(buf, sizeof(buf), "**Video Generation Progress**: "
		    "%d%% (processing)\n", pct);
		return emit_reasoning(st, buf);
	case 4:
		snprintf(buf, sizeof(buf), st->step % 2 ? "🏃 进度：%d.0%%\n" :
		    "🏃 进度:%d.0%%\n", pct);
		return emit_content(st, buf, NULL);
	case 5:
		snprintf(buf, sizeof(buf), "Progress: %d%%\n", pct);
		return emit_content(st, buf, NULL);
	default:
		snprintf(buf, sizeof(buf), "🏃 Progress %d%%\n", pct);
		return emit_fragments(st, buf);
	}
}

/* final sends the closing chunks; url NULL for the no-url fault. */
static int
final(struct fs_stream *st, const char *url)
{
	char buf[1024];
	json_t *d;

	switch (st->style) {
	case 0:
		if (emit_reasoning(st, "**Video Generation Completed**\n\n"
		    "Video generation successful. Now caching the video "
		    "file...\n") < 0)
			return -1;
		if (url == NULL)
			return emit_content(st, "Video generation finished.",
			    "STOP");
		snprintf(buf, sizeof(buf), "```html\n<video src='%s' controls>"
		    "</video>\n```", url);
		return emit_content(st, buf, "STOP");
	case 1:
		if (url == NULL)
			return emit_content(st, "> ✅ Video generation "
			    "finished.\n\n", NULL);
		snprintf(buf, sizeof(buf), "> ✅ Video generated successfully, "
		    "[click here](%s) to view video~~~\n\n", url);
		return emit_content(st, buf, NULL);
	case 2:
		if (emit_content(st, "\n\n> Generation Complete ✅\n",
		    NULL) < 0)
			return -1;
		snprintf(buf, sizeof(buf), "> sid: s_%s\n\n\n", st->task);
		if (emit_content(st, buf, NULL) < 0)
			return -1;
		if (url == NULL)
			return emit_content(st, "", "stop");
		snprintf(buf, sizeof(buf), "[Play Online▶️](%s)", url);
		return emit_content(st, buf, "stop");
	case 3:
		d = json_pack("{s:s,s:{s:s,s:i,s:b,s:s}}", "reasoning_content",
		    "Waiting for watermark removal...\n", "wm", "stage",
		    "waiting", "attempt", 3, "can_cancel", 1, "task_id",
		    st->task);
		if (emit_json(st, chunk(st, d, NULL)) < 0)
			return -1;
		if (url == NULL)
			return emit_content(st, "Video generation finished.",
			    "STOP");
		snprintf(buf, sizeof(buf), "```html\n<video src='%s' controls>"
		    "</video>\n```", url);
		d = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "content", buf,
		    "output", "url", url, "type", "video", "task_id", st->task);
		return emit_json(st, chunk(st, d, "STOP"));
	case 4:
		if (url == NULL)
			return emit_content(st, "✅ 视频生成完成", "stop");
		snprintf(buf, sizeof(buf), "✅ 视频生成成功，[点击这里](%s) "
		    "查看视频~~~", url);
		return emit_content(st, buf, "stop");
	case 5:
		if (emit_content(st, "☁️ 上传中...\n", NULL) < 0)
			return -1;
		return emit_content(st, url ? url : "Done.", "stop");
	default:
		if (url == NULL)
			snprintf(buf, sizeof(buf), "✅ Video ready.\n");
		else
			snprintf(buf, sizeof(buf), "✅ Video ready: "
			    "[video](%s)\n", url);
		if (emit_fragments(st, buf) < 0)
			return -1;
		return emit_json(st, chunk(st, json_object(), "stop"));
	}
}

static int
emit_error(struct fs_stream *st, const char *message, const char *code)
{
	return emit_json(st, json_pack("{s:{s:s,s:s,s:n,s:o}}", "error",
	    "message", message, "type", "server_error", "param", "code",
	    code ? json_string(code) : json_null()));
}

/* The malformed fault's junk, one kind per progress step. */
static int
junk(struct fs_stream *st)
{
	switch (st->step % 4) {
	case 1:
		return fs_stream_addf(st, "data: {\"id\":\"%s\",\"object\":"
		    "\"chat.completion.chunk\",\"choices\":[{\"delta\":"
		    "{\"content\":\"Progr\n\n", st->id);
	case 2:
		return fs_stream_addf(st, "data: upstream says: still "
		    "rendering, please wait%s%s", eol(st), eol(st));
	case 3:
		/* two events with no blank line: one payload of two lines */
		return fs_stream_addf(st, "data: {\"choices\":[{\"index\":0,"
		    "\"delta\":{\"content\":\"\"}}]}\ndata: {\"choices\":"
		    "[{\"index\":0,\"delta\":{\"content\":\"\"}}]}\n\n");
	default:
		return fs_stream_addf(st, "event: ping\ndata:{\"choices\":[]}"
		    "\n\n");
	}
}

/* ---- the generators ------------------------------------------------------ */

/* stop_after is how many progress chunks come before a fault strikes. */
static unsigned
stop_after(const struct fs_stream *st, unsigned want)
{
	unsigned steps = st->srv->steps;

	return steps > want ? want : steps - 1;
}

static char pad[PAD_BYTES + 1];		/* 'x' * PAD_BYTES */
static char line[BULK_PIECE];		/* 'A' * BULK_PIECE */
static pthread_once_t filler_once = PTHREAD_ONCE_INIT;

static void
filler_init(void)
{
	memset(pad, 'x', PAD_BYTES);
	memset(line, 'A', sizeof(line));
}

static int
bulk(struct fs_stream *st, uint64_t now)
{
	char text[64];

	pthread_once(&filler_once, filler_init);
	while (st->len < BULK_PIECE && st->sent < st->limit) {
		size_t before = st->len;
		json_t *c;

		snprintf(text, sizeof(text), "🏃 Progress %d%%\n",
		    (int)(st->sent * 99 / st->limit));
		c = chunk(st, json_pack("{s:s}", "content", text), NULL);
		if (c == NULL)
			return -1;
		json_object_set_new(c, "x_padding", json_string(pad));
		if (emit_json(st, c) < 0)
			return -1;
		st->sent += st->len - before;
	}
	if (st->sent >= st->limit) {
		if (final(st, st->url) < 0 || emit_done(st) < 0)
			return -1;
		st->end = FS_END_OK;
	}
	st->due = now;
	return 0;
}

static int
huge_line(struct fs_stream *st, uint64_t now)
{
	size_t n = BULK_PIECE;

	pthread_once(&filler_once, filler_init);
	if (st->sent == 0 && fs_stream_add(st, "data: ", 6) < 0)
		return -1;
	if (n > st->limit - st->sent)
		n = (size_t)(st->limit - st->sent);
	if (fs_stream_add(st, line, n) < 0)
		return -1;
	st->sent += n;
	if (st->sent >= st->limit)
		st->end = FS_END_OK;	/* and never a newline */
	st->due = now;
	return 0;
}

/* step_done ends a progress step: the last one sends the outcome. */
static int
step_done(struct fs_stream *st)
{
	if (st->step < st->srv->steps || st->fault == FS_F_NEVER_ENDS) {
		st->due = st->t0 + (uint64_t)(st->step + 1) * st->srv->step_ms;
		return 0;
	}
	if (st->fault == FS_F_FAIL_LATE) {
		if (emit_error(st, "Upstream API timeout: Generation exceeded "
		    "600 seconds limit", "timeout") < 0 || emit_done(st) < 0)
			return -1;
		st->end = FS_END_OK;
		return 0;
	}
	if (final(st, st->fault == FS_F_NO_URL ? NULL : st->url) < 0)
		return -1;
	if (st->fault == FS_F_DROP_AFTER_URL) {
		st->end = FS_END_ERROR;	/* what is buffered still goes out */
		return 0;
	}
	if (emit_done(st) < 0)
		return -1;
	st->end = FS_END_OK;
	return 0;
}

static int
gen_sse(struct fs_stream *st, uint64_t now)
{
	struct fs_server *srv = st->srv;
	unsigned pct;

	if (now - st->t0 > FS_FOREVER_MS) {
		st->end = FS_END_ERROR;
		return 0;
	}
	switch (st->phase) {
	case P_INTRO:
		if (st->fault == FS_F_MALFORMED &&
		    fs_stream_add(st, "\xEF\xBB\xBF", 3) < 0)
			return -1;
		if (st->fault == FS_F_KEEPALIVE_ONLY) {
			st->phase = P_KEEPALIVE;
			return gen_sse(st, now);
		}
		if (intro(st) < 0)
			return -1;
		if (st->fault == FS_F_HUGE_BODY ||
		    st->fault == FS_F_CHUNKED_20M) {
			st->phase = P_BULK;
			st->limit = st->fault == FS_F_HUGE_BODY ?
			    FS_HUGE_BYTES : FS_CHUNKED_BYTES;
			st->due = now;
			return 0;
		}
		st->phase = P_PROGRESS;
		st->due = st->t0 + srv->step_ms;
		return 0;
	case P_PROGRESS:
		if (st->fault == FS_F_STALL && st->step >= stop_after(st, 2)) {
			st->phase = P_SILENT;
			st->watch_peer = true;
			return gen_sse(st, now);
		}
		if (st->fault == FS_F_DROP && st->step >= stop_after(st, 3)) {
			st->end = FS_END_ERROR;
			return 0;
		}
		if (st->fault == FS_F_POLICY && st->step >= stop_after(st, 2)) {
			if (emit_error(st, sentinel_msg, NULL) < 0 ||
			    emit_done(st) < 0)
				return -1;
			st->end = FS_END_OK;
			return 0;
		}
		if (st->fault == FS_F_HUGE_LINE && st->step >= 1) {
			st->phase = P_LINE;
			st->limit = FS_HUGE_LINE_BYTES;
			return huge_line(st, now);
		}
		st->step++;
		pct = st->step * 100 / srv->steps;
		if ((st->fault == FS_F_NEVER_ENDS ||
		    st->fault == FS_F_FAIL_LATE) && pct > 99)
			pct = 99;
		if (st->step % 3 == 0 && fs_stream_addf(st, ": keep-alive%s%s",
		    eol(st), eol(st)) < 0)
			return -1;
		if (st->fault == FS_F_MALFORMED && junk(st) < 0)
			return -1;
		if (progress(st, (int)pct) < 0)
			return -1;
		return step_done(st);
	case P_SILENT:
		st->due = now + 1000;
		return 0;
	case P_KEEPALIVE:
		if (fs_stream_add(st, ": keep-alive\n\n", 14) < 0)
			return -1;
		st->due = now + (srv->step_ms ? srv->step_ms : 1000);
		return 0;
	case P_BULK:
		return bulk(st, now);
	default:
		return huge_line(st, now);
	}
}

/* gen_json answers stream:false with one chat.completion at the end. */
static int
gen_json(struct fs_stream *st, uint64_t now)
{
	char text[1024];
	json_t *o;
	char *s;
	int rv;

	switch (st->fault) {
	case FS_F_STALL:
	case FS_F_KEEPALIVE_ONLY:
	case FS_F_NEVER_ENDS:
		st->watch_peer = true;
		st->due = now + 1000;
		if (now - st->t0 > FS_FOREVER_MS)
			st->end = FS_END_ERROR;
		return 0;
	case FS_F_DROP:
	case FS_F_DROP_AFTER_URL:
	case FS_F_HUGE_LINE:
		st->end = FS_END_ERROR;
		return 0;
	default:
		break;
	}
	if (st->fault == FS_F_NO_URL)
		snprintf(text, sizeof(text), "✅ Video generation finished.");
	else
		snprintf(text, sizeof(text), "✅ Video generated successfully, "
		    "[click here](%s) to view video~~~", st->url);
	o = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:s}],"
	    "s:{s:i,s:i,s:i}}", "id", st->id, "object", "chat.completion",
	    "created", (json_int_t)time(NULL), "model", st->model, "choices",
	    "index", 0, "message", "role", "assistant", "content", text,
	    "finish_reason", "stop", "usage", "prompt_tokens", 0,
	    "completion_tokens", 0, "total_tokens", 0);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s == NULL)
		return -1;
	rv = fs_stream_add(st, s, strlen(s));
	free(s);
	st->end = FS_END_OK;
	return rv;
}

/* ---- the request --------------------------------------------------------- */

/* user_prompt returns the text of the last user message (owned), or NULL.
 * Content is a string or parts, whose "text" parts are joined. */
static char *
user_prompt(json_t *messages)
{
	size_t i = json_array_size(messages);

	while (i-- > 0) {
		json_t *m = json_array_get(messages, i);
		json_t *c = json_object_get(m, "content");
		const char *role = json_string_value(json_object_get(m,
		    "role"));
		size_t j, len = 0;
		char *out;

		if (role == NULL || strcmp(role, "user") != 0)
			continue;
		if (json_is_string(c))
			return strdup(json_string_value(c));
		if (!json_is_array(c))
			return NULL;
		for (j = 0; j < json_array_size(c); j++) {
			const char *t = json_string_value(json_object_get(
			    json_array_get(c, j), "text"));

			len += (t ? strlen(t) : 0) + 1;
		}
		out = calloc(1, len + 1);
		if (out == NULL)
			return NULL;
		for (j = 0; j < json_array_size(c); j++) {
			const char *t = json_string_value(json_object_get(
			    json_array_get(c, j), "text"));

			if (t == NULL)
				continue;
			if (out[0] != '\0')
				strcat(out, "\n");
			strcat(out, t);
		}
		return out;
	}
	return NULL;
}

/* video_url writes the final URL the fault asks for. */
static void
video_url(struct fs_req *rq, struct fs_stream *st, const char *media_id)
{
	struct fs_server *srv = rq->srv;
	char base[300];

	fs_base_url(rq, base, sizeof(base));
	switch (st->fault) {
	case FS_F_URL_FILE:
		snprintf(st->url, sizeof(st->url), "file:///etc/passwd");
		break;
	case FS_F_URL_LOOPBACK:
		/* another port on loopback: a decoy serving a real video */
		snprintf(st->url, sizeof(st->url),
		    "http://127.0.0.1:%u/media/%s.mp4",
		    srv->decoy_port ? srv->decoy_port : 9, media_id);
		break;
	case FS_F_URL_REDIRECT_PRIVATE:
		snprintf(st->url, sizeof(st->url), "%s/redirect?to=http%%3A%%2F"
		    "%%2F127.0.0.2%%3A%u%%2Fmedia%%2F%s.mp4", base, srv->port,
		    media_id);
		break;
	default:
		snprintf(st->url, sizeof(st->url), "%s/media/%s.mp4", base,
		    media_id);
	}
}

enum MHD_Result
fs_chat_handle(struct fs_req *rq)
{
	struct fs_server *srv = rq->srv;
	struct fs_stream *st = NULL;
	json_t *root = NULL;
	const char *model;
	char *prompt = NULL, media_id[40];
	enum fs_fault f;
	enum MHD_Result ret;
	bool stream;
	int style;

	if (!fs_authorized(rq))
		return fs_reply_error(rq, 401, "Incorrect API key provided",
		    "invalid_request_error", NULL, "invalid_api_key");
	root = json_loads(rq->body ? rq->body : "", 0, NULL);
	if (!json_is_object(root)) {
		ret = fs_reply_error(rq, 400, "We could not parse the JSON "
		    "body of your request.", "invalid_request_error", NULL,
		    NULL);
		goto out;
	}
	prompt = user_prompt(json_object_get(root, "messages"));
	if (prompt == NULL || prompt[0] == '\0') {
		ret = fs_reply_error(rq, 400, "messages must end with a user "
		    "message that has content", "invalid_request_error",
		    "messages", NULL);
		goto out;
	}
	model = json_string_value(json_object_get(root, "model"));
	stream = json_is_true(json_object_get(root, "stream"));

	fs_count(srv, prompt, FS_CHAT);
	f = fs_fault_pick(rq, prompt, FS_FLOW_CHAT, FS_CHAT);
	if (fs_fault_reply(rq, f, &ret))
		goto out;
	if (!stream && f == FS_F_POLICY) {
		ret = fs_reply_error(rq, 500, sentinel_msg, "server_error",
		    NULL, NULL);
		goto out;
	}

	st = fs_stream_new(rq, stream ? gen_sse : gen_json);
	if (st == NULL || (st->prompt = strdup(prompt)) == NULL) {
		ret = MHD_NO;
		goto out;
	}
	strcpy(media_id, "sora_");
	fs_random_hex(media_id + 5, 24);
	pthread_mutex_lock(&srv->mu);
	fs_video_add(srv, media_id, prompt, true);
	pthread_mutex_unlock(&srv->mu);

	style = fs_style_marker(prompt);
	st->style = style >= 0 ? style : (int)(fs_hash(prompt) % FS_STYLES);
	st->fault = f;
	st->json = !stream;
	snprintf(st->model, sizeof(st->model), "%s", model ? model :
	    "sora_video2");
	strcpy(st->id, "chatcmpl-");
	fs_random_hex(st->id + 9, 24);
	fs_random_hex(st->task, 26);
	video_url(rq, st, media_id);
	if (!stream)
		st->due = st->t0 + (uint64_t)srv->steps * srv->step_ms;
	fs_log(srv, "chat style %d fault %s stream %d", st->style,
	    fs_fault_name(f), stream);
	ret = fs_stream_queue(st, 200, MHD_SIZE_UNKNOWN, stream ?
	    "text/event-stream; charset=utf-8" : "application/json", false);
	st = NULL;
out:
	fs_stream_free(st);
	free(prompt);
	json_decref(root);
	return ret;
}
