/*
 * tests/unit/worker_chat_test.c: worker/chat.c, the chat-completions
 * content parser, over the transcripts of shared/sora-api.md §2.4-2.5.
 *
 * Each transcript is a list of SSE data payloads.  It runs straight into
 * wrk_chat_event, and again as an SSE byte stream through worker/sse.c cut
 * at every byte position: the outcome must not depend on the cuts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wrk_parse.h"

/* A content delta, a reasoning delta, and either with a finish_reason. */
#define CHUNK(delta, fr) "{\"id\":\"chatcmpl-1768151586858\",\"object\":" \
	"\"chat.completion.chunk\",\"created\":1768151586,\"model\":\"sora\"," \
	"\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" fr \
	"}]}"
#define DC(text) CHUNK("{\"content\":\"" text "\"}", "null")
#define DCF(text, fr) CHUNK("{\"content\":\"" text "\"}", "\"" fr "\"")
#define DR(text) CHUNK("{\"content\":null,\"reasoning_content\":\"" text \
	"\"}", "null")

#define CHECK "\xe2\x9c\x85"		/* ✅ */
#define CROSS "\xe2\x9d\x8c"		/* ❌ */
#define RUNNER "\xf0\x9f\x8f\x83"	/* 🏃 */
#define JINDU "\xe8\xbf\x9b\xe5\xba\xa6"	/* 进度 */

#define E1_C4 CHUNK("{\"content\":\"```html\\n<video src='http://host:8000/" \
	"tmp/abc.mp4' controls></video>\\n```\",\"reasoning_content\":null}", \
	"\"STOP\"")
#define SENTINEL_ERROR "{\"error\":{\"message\":\"API request failed: 400 -" \
	" {\\n \\\"error\\\": {\\n \\\"message\\\": \\\"Hmmm something " \
	"didn't look right with your request. Please try again later or " \
	"visit https://help.openai.com if this issue persists.\\\",\\n " \
	"\\\"type\\\": \\\"invalid_request_error\\\",\\n \\\"param\\\": null," \
	"\\n \\\"code\\\": \\\"sentinel_block\\\"\\n }\\n}\",\"type\":" \
	"\"server_error\",\"param\":null,\"code\":null}}"

struct chat_case {
	const char *name;
	const char *ev[16];	/* payloads; NULL ends */
	bool clean_eof;
	enum wrk_chat_outcome outcome;
	const char *url;	/* the URL on success */
	const char *error;	/* a substring of c->error otherwise */
	int progress;
	bool truncated;
	const char *input_image;
};

static const struct chat_case cases[] = {
	{ "E1 sora2api: reasoning progress, then <video src>",
	    { DR("**Generation Process Begins**\\n\\nInitializing generation "
	      "request...\\n"),
	      DR("**Video Generation Progress**: 45% (processing)\\n"),
	      DR("Generation in progress: 40% completed (estimated)...\\n"),
	      DR("**Video Generation Completed**\\n\\nVideo generation "
	      "successful. Now caching the video file...\\n"),
	      E1_C4, "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "http://host:8000/tmp/abc.mp4", NULL, 45,
	    false, NULL },
	{ "E2 qhaigc: Chinese emoji text, full-width and ASCII colons",
	    { DC("\xe2\x8c\x9b\xef\xb8\x8f \xe4\xbb\xbb\xe5\x8a\xa1\xe6\xad\xa3"
	      "\xe5\x9c\xa8\xe9\x98\x9f\xe5\x88\x97\xe4\xb8\xad\xef\xbc\x8c"
	      "\xe8\xaf\xb7\xe8\x80\x90\xe5\xbf\x83\xe7\xad\x89\xe5\xbe\x85"
	      "...\\n\\n"),
	      DC(RUNNER " " JINDU "\xef\xbc\x9a" "36.0%\\n\\n"),
	      DC(RUNNER " " JINDU ":52.5%\\n\\n"),
	      DC(CHECK " \xe8\xa7\x86\xe9\xa2\x91\xe7\x94\x9f\xe6\x88\x90\xe6"
	      "\x88\x90\xe5\x8a\x9f\xef\xbc\x8c[\xe7\x82\xb9\xe5\x87\xbb\xe8"
	      "\xbf\x99\xe9\x87\x8c](https://cdn.example.com/v/abc.mp4) \xe6"
	      "\x9f\xa5\xe7\x9c\x8b\xe8\xa7\x86\xe9\xa2\x91~~~"), "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/v/abc.mp4", NULL,
	    52, false, NULL },
	{ "E3 gptproto: markdown link in a quote, no finish_reason, no [DONE]",
	    { "{\"choices\":[{\"delta\":{\"content\":\"> " CHECK " Video "
	      "generated successfully, [click here](https://static.aiclound.vip"
	      "/sora/XXXXX83.mp4) to view video~~~\\n\\n\",\"role\":"
	      "\"assistant\"},\"index\":0}],\"created\":0,\"id\":\"39a5d-xxxxx\","
	      "\"model\":\"sora-2\",\"object\":\"chat.completion.chunk\"}" },
	    true, WRK_CHAT_SUCCESS, "https://static.aiclound.vip/sora/XXXXX83.mp4",
	    NULL, -1, true, NULL },
	{ "E4 apifox: chat.completion object carrying a delta",
	    { "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{"
	      "\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
	      "\"finish_reason\":null}]}",
	      "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{"
	      "\"index\":0,\"delta\":{\"content\":\"\\n\\nvideo generated "
	      "successful,[click here](https://xxxxxx.mp4)\"},\"finish_reason\":"
	      "null}]}", "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://xxxxxx.mp4", NULL, -1, false,
	    NULL },
	{ "E5 kkiai: JSON echo with a %, asyncdata links, trickled dots",
	    { DC("```json\\n{\\n \\\"prompt\\\": \\\"a progress bar at 100% "
	      "then a cat\\\", \\\"orientation\\\": \\\"portrait\\\"\\n}\\n```"
	      "\\n\\n"),
	      DC("> ID: `task_01k7dzptgwf2z87wj2c3t36qk0`\\n>[Data Preview]("
	      "https://asyncdata.net/web/task_01k7dzptgwf2z87wj2c3t36qk0) | "
	      "[Raw Data](https://asyncdata.net/source/task_01k7dzptgwf2z87wj2"
	      "c3t36qk0)\\n"),
	      DC("> Queuing."), DC("....."), DC("\\n> Generating."),
	      DC("\\n\\n>" RUNNER " Progress 76.."), DC("\\n\\n"),
	      DC("> Generation Complete " CHECK "\\n> sid: s_68ec8accd80c8191ae1"
	      "fc957af78caaa\\n\\n\\n[Play Online\xe2\x96\xb6\xef\xb8\x8f](https"
	      "://filesystem.site/cdn/20251013/5781a601c5ce5e216e914fef119c99."
	      "mp4)"), "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://filesystem.site/cdn/20251013/"
	    "5781a601c5ce5e216e914fef119c99.mp4", NULL, 76, false, NULL },
	{ "E5 in Chinese",
	    { DC("\xe6\x8e\x92\xe9\x98\x9f\xe4\xb8\xad......\\n"),
	      DC("\xe7\x94\x9f\xe6\x88\x90\xe4\xb8\xad.\\n\\n"),
	      DC(RUNNER " " JINDU " 76..\\n\\n"),
	      DC("\xe7\x94\x9f\xe6\x88\x90\xe5\xae\x8c\xe6\x88\x90 " CHECK
	      "\\n[\xe5\x9c\xa8\xe7\xba\xbf\xe6\x92\xad\xe6\x94\xbe](https://"
	      "filesystem.site/cdn/x/zh.mp4)\\n"), "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://filesystem.site/cdn/x/zh.mp4",
	    NULL, 76, false, NULL },
	{ "E6 soradeno: output[].url beats the HTML next to it",
	    { CHUNK("{\"reasoning_content\":\"**Video Generation Progress**: 40%"
	      " (processing)\\n\"}", "null"),
	      "{\"choices\":[{\"index\":0,\"delta\":{}}],\"wm\":{\"stage\":"
	      "\"waiting\",\"attempt\":3,\"can_cancel\":true,\"task_id\":"
	      "\"s_xxxx\"}}",
	      CHUNK("{\"content\":\"```html\\n<video src='https://video-url.mp4' "
	      "controls></video>\\n```\",\"output\":[{\"url\":\"https://cdn."
	      "example.com/out/final.mp4\",\"type\":\"video\",\"task_id\":"
	      "\"s_xxxx\"}]}", "\"STOP\""), "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/out/final.mp4",
	    NULL, 40, false, NULL },
	{ "E7 Sora2mb: a bare URL without .mp4 as the final content",
	    { DC("\xf0\x9f\x8e\xac \xe5\xbc\x80\xe5\xa7\x8b\xe7\x94\x9f\xe6\x88"
	      "\x90\xe8\xa7\x86\xe9\xa2\x91..."),
	      DC("\xe2\x98\x81\xef\xb8\x8f \xe4\xb8\x8a\xe4\xbc\xa0\xe5\x88\xb0"
	      "Google Drive..."),
	      DCF("https://drive.google.com/file/d/xxx/view", "stop") },
	    true, WRK_CHAT_SUCCESS, "https://drive.google.com/file/d/xxx/view",
	    NULL, -1, false, NULL },
	{ "§2.5 sentinel_block nested in an in-stream error is policy",
	    { DR("**Generation Process Begins**\\n"), SENTINEL_ERROR,
	      "[DONE]" },
	    true, WRK_CHAT_ERROR_POLICY, NULL,
	    "Hmmm something didn't look right with your request.", -1, false,
	    NULL },
	{ "moderation_blocked partway is policy",
	    { DR("Video Generation Progress: 60%\\n"),
	      "{\"error\":{\"message\":\"Your request was blocked by our "
	      "moderation system.\",\"type\":\"invalid_request_error\","
	      "\"code\":\"moderation_blocked\"}}" },
	    false, WRK_CHAT_ERROR_POLICY, NULL,
	    "Your request was blocked by our moderation system.", 60, false,
	    NULL },
	{ "an error string about tokens cooling down is transient",
	    { "{\"error\":\"No available tokens for video generation. All "
	      "tokens are either disabled, cooling down, or expired.\"}",
	      "[DONE]" },
	    true, WRK_CHAT_ERROR_TRANSIENT, NULL, "No available tokens", -1,
	    false, NULL },
	{ "an upstream timeout is transient",
	    { "{\"error\":{\"message\":\"Upstream API timeout: Generation "
	      "exceeded 600 seconds limit\",\"type\":\"server_error\"}}" },
	    true, WRK_CHAT_ERROR_TRANSIENT, NULL, "Upstream API timeout", -1,
	    false, NULL },
	{ "invalid_request is permanent",
	    { "{\"error\":{\"message\":\"Unable to process request\",\"type\":"
	      "\"invalid_request_error\",\"code\":\"invalid_request\"}}" },
	    true, WRK_CHAT_ERROR_PERMANENT, NULL, "Unable to process request",
	    -1, false, NULL },
	{ "a FastAPI detail is an error",
	    { "{\"detail\":\"Failed to create video: bad orientation\"}" },
	    true, WRK_CHAT_ERROR_PERMANENT, NULL,
	    "Failed to create video: bad orientation", -1, false, NULL },
	{ "an error after the URL still wins",
	    { DC("[v](https://cdn.example.com/v.mp4)\\n"),
	      "{\"error\":{\"message\":\"Unable to process request\"}}" },
	    true, WRK_CHAT_ERROR_PERMANENT, NULL, "Unable to process request",
	    -1, false, NULL },
	{ "error: null is not an error",
	    { "{\"error\":null,\"choices\":[{\"delta\":{\"content\":\"[v](https"
	      "://cdn.example.com/n.mp4)\"},\"finish_reason\":\"stop\"}]}" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/n.mp4", NULL, -1,
	    false, NULL },
	{ "[DONE] without a URL is permanent",
	    { DC("Progress 100%\\nAll done, thanks!\\n"), "[DONE]" },
	    true, WRK_CHAT_ERROR_PERMANENT, NULL,
	    "the provider finished without a video URL", 100, false, NULL },
	{ "a finish_reason without a URL is permanent too",
	    { DCF("Done.", "stop") },
	    false, WRK_CHAT_ERROR_PERMANENT, NULL,
	    "the provider finished without a video URL", -1, false, NULL },
	{ "a failure line naming a violation is policy",
	    { DC(RUNNER " " JINDU " 12%\\n"),
	      DCF(CROSS " \xe7\x94\x9f\xe6\x88\x90\xe5\xa4\xb1\xe8\xb4\xa5\xef"
	      "\xbc\x9a\xe5\x86\x85\xe5\xae\xb9\xe8\xbf\x9d\xe8\xa7\x84", "stop"),
	      "[DONE]" },
	    true, WRK_CHAT_ERROR_POLICY, NULL, CROSS " \xe7\x94\x9f\xe6\x88\x90"
	    "\xe5\xa4\xb1\xe8\xb4\xa5", 12, false, NULL },
	{ "a plain failure line is permanent, shown without markdown",
	    { DC("> **" CROSS " Generation failed: upstream error 42**\\n"),
	      "[DONE]" },
	    true, WRK_CHAT_ERROR_PERMANENT, NULL,
	    CROSS " Generation failed: upstream error 42", -1, false, NULL },
	{ "a policy failure line then a dropped stream is still policy",
	    { DC(CROSS " Your prompt was blocked by the content policy\\n") },
	    false, WRK_CHAT_ERROR_POLICY, NULL, "blocked by the content policy",
	    -1, false, NULL },
	{ "a drop after the URL is success, marked truncated",
	    { DR("Progress: 80%\\n"), DC("[v](https://cdn.example.com/t.mp4)"
	      "\\n"), DR("cleaning up...\\n") },
	    false, WRK_CHAT_SUCCESS, "https://cdn.example.com/t.mp4", NULL, 80,
	    true, NULL },
	{ "a drop before any URL is transient",
	    { DR("Progress: 80%\\n"), DR("Generation failed? no, still going") },
	    false, WRK_CHAT_ERROR_TRANSIENT, NULL, "before the provider sent a "
	    "video URL", 80, false, NULL },
	{ "a drop with a URL still open at the end of T is transient",
	    { DC("done: https://cdn.example.com/part") },
	    false, WRK_CHAT_ERROR_TRANSIENT, NULL, "video URL", -1, false,
	    NULL },
	{ "the same URL at a clean EOF counts",
	    { DC("done: https://cdn.example.com/part") },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/part", NULL, -1,
	    true, NULL },
	{ "malformed chunks are skipped; a later URL still succeeds",
	    { "{\"choices\":[{\"delta\":{\"content\":\"Progress 10", "not json",
	      "{\"choices\":", DC("Progress 20%\\n[v](https://cdn.example.com/"
	      "m.mp4)\\n"), "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/m.mp4", NULL, 20,
	    false, NULL },
	{ "a raw text payload is scanned for a URL",
	    { DR("Progress 90%\\n"), CHECK " https://cdn.example.com/raw.mp4",
	      "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/raw.mp4", NULL,
	    90, false, NULL },
	{ "truncated JSON is scanned for a URL",
	    { "{\"choices\":[{\"delta\":{\"content\":\"[v](https://cdn.example."
	      "com/cut.mp4) and then the conn", "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/cut.mp4", NULL, -1,
	    false, NULL },
	{ "two JSON documents in one payload are both read",
	    { DC("Progress 30%\\n") "\n" DC("[v](https://cdn.example.com/two."
	      "mp4)\\n") "\n[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/two.mp4", NULL, 30,
	    false, NULL },
	{ "usage-only and empty-choice chunks are ignored",
	    { "{\"choices\":[],\"usage\":{\"total_tokens\":5}}",
	      "{\"object\":\"chat.completion.chunk\"}",
	      DCF("[v](https://cdn.example.com/u.mp4)", "stop"), "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/u.mp4", NULL, -1,
	    false, NULL },
	{ "a non-streaming answer: message.content",
	    { "{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[{"
	      "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
	      CHECK " [video](https://cdn.example.com/whole.mp4)\"},"
	      "\"finish_reason\":\"stop\"}]}" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/whole.mp4", NULL,
	    -1, false, NULL },
	{ "progress going backwards is reported monotonically",
	    { DC("Progress 50%\\n"), DC("Progress 30%\\n"),
	      DC("[v](https://cdn.example.com/b.mp4)\\n"), "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/b.mp4", NULL, 50,
	    false, NULL },
	{ "the input image is never the result",
	    { DC("[ref](https://in.example.com/ref?id=1)\\n"),
	      DC("[out](https://out.example.com/v?id=2)\\n"),
	      DC("[ref again](https://in.example.com/ref?id=1)\\n"), "[DONE]" },
	    true, WRK_CHAT_SUCCESS, "https://out.example.com/v?id=2", NULL, -1,
	    false, "https://in.example.com/ref?id=1" },
	{ "payloads after [DONE] are ignored",
	    { DC("[v](https://cdn.example.com/first.mp4)\\n"), "[DONE]",
	      DC("[v](https://cdn.example.com/later.mp4)\\n"),
	      "{\"error\":\"late\"}" },
	    true, WRK_CHAT_SUCCESS, "https://cdn.example.com/first.mp4", NULL,
	    -1, false, NULL },
	{ "only asyncdata and image links: no result",
	    { DC(">[Data Preview](https://asyncdata.net/web/task_1) | [Raw Data]"
	      "(https://asyncdata.net/source/task_1)\\n![thumb](https://cdn."
	      "example.com/t.webp)\\n"), "[DONE]" },
	    true, WRK_CHAT_ERROR_PERMANENT, NULL,
	    "the provider finished without a video URL", -1, false, NULL },
};

/* ---- harness --------------------------------------------------------- */

static void
expect(const struct chat_case *tc, const char *how, struct wrk_chat *c)
{
	if (c->outcome != tc->outcome)
		fail_msg("%s [%s]: outcome %d, want %d (error \"%s\", url %s)",
		    tc->name, how, c->outcome, tc->outcome,
		    c->error ? c->error : "", c->url ? c->url : "-");
	if (tc->url != NULL && (c->url == NULL || strcmp(c->url, tc->url)))
		fail_msg("%s [%s]: url %s, want %s", tc->name, how,
		    c->url ? c->url : "(null)", tc->url);
	if (tc->url == NULL && c->url != NULL)
		fail_msg("%s [%s]: unexpected url %s", tc->name, how, c->url);
	if (tc->error != NULL && (c->error == NULL ||
	    strstr(c->error, tc->error) == NULL))
		fail_msg("%s [%s]: error \"%s\", want \"%s\"", tc->name, how,
		    c->error ? c->error : "(null)", tc->error);
	if (tc->outcome == WRK_CHAT_SUCCESS && c->error != NULL)
		fail_msg("%s [%s]: error set on success", tc->name, how);
	if (c->progress != tc->progress)
		fail_msg("%s [%s]: progress %d, want %d", tc->name, how,
		    c->progress, tc->progress);
	if (c->truncated != tc->truncated)
		fail_msg("%s [%s]: truncated %d", tc->name, how, c->truncated);
	if (c->error != NULL) {
		assert_true(strlen(c->error) <= WRK_MSG_MAX);
		assert_true(vg_utf8_valid(c->error, strlen(c->error)));
		for (const char *p = c->error; *p != '\0'; p++)
			assert_true((unsigned char)*p >= 0x20);
	}
}

static void
run_direct(const struct chat_case *tc, struct wrk_chat *c)
{
	int progress = -1;

	wrk_chat_init(c);
	c->input_image = tc->input_image;
	for (size_t i = 0; tc->ev[i] != NULL; i++) {
		assert_int_equal(wrk_chat_event(c, tc->ev[i],
		    strlen(tc->ev[i])), 0);
		assert_true(c->progress >= progress);	/* monotonic */
		progress = c->progress;
	}
	assert_int_equal(wrk_chat_finish(c, tc->clean_eof), 0);
}

static void
test_transcripts(void **state)
{
	struct wrk_chat c;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_direct(&cases[i], &c);
		expect(&cases[i], "direct", &c);
		/* finish again: nothing changes */
		assert_int_equal(wrk_chat_finish(&c, !cases[i].clean_eof), 0);
		expect(&cases[i], "finish twice", &c);
		wrk_chat_fini(&c);
		wrk_chat_fini(&c);
	}
}

static int
pipe_event(void *arg, const char *event, const char *data, size_t len)
{
	struct wrk_chat *c = arg;

	if (strcmp(event, "error") == 0)
		return wrk_chat_error_event(c, data, len);
	return wrk_chat_event(c, data, len);
}

static char *
sse_of(const struct chat_case *tc, size_t *n)
{
	size_t len = 0, o = 0;
	char *s;

	for (size_t i = 0; tc->ev[i] != NULL; i++)
		len += strlen(tc->ev[i]) * 2 + 16;
	s = malloc(len + 1);
	assert_non_null(s);
	for (size_t i = 0; tc->ev[i] != NULL; i++) {
		const char *p = tc->ev[i];

		/* every line of a payload becomes a data: line */
		o += (size_t)sprintf(s + o, "data: ");
		for (; *p != '\0'; p++) {
			if (*p == '\n')
				o += (size_t)sprintf(s + o, "\r\ndata: ");
			else
				s[o++] = *p;
		}
		o += (size_t)sprintf(s + o, i % 2 ? "\r\n\r\n" : "\n\n");
	}
	s[o] = '\0';
	*n = o;
	return s;
}

static void
test_transcripts_through_sse_split_anywhere(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		char *s = sse_of(&cases[i], &n);

		for (size_t a = 0; a <= n; a++) {
			struct wrk_chat c;
			struct wrk_sse p;

			wrk_chat_init(&c);
			c.input_image = cases[i].input_image;
			wrk_sse_init(&p, WRK_SSE_MAX_LINE, pipe_event, &c);
			assert_int_equal(wrk_sse_feed(&p, s, a), 0);
			assert_int_equal(wrk_sse_feed(&p, s + a, n - a), 0);
			assert_int_equal(wrk_sse_finish(&p), 0);
			assert_int_equal(wrk_chat_finish(&c,
			    cases[i].clean_eof), 0);
			expect(&cases[i], "sse", &c);
			wrk_sse_fini(&p);
			wrk_chat_fini(&c);
		}
		free(s);
	}
}

/* ---- progress ---------------------------------------------------------- */

static void
test_progress_table(void **state)
{
	static const struct {
		const char *text[6];	/* content pieces, NULL ends */
		int after[6];		/* progress after each piece */
		int final;		/* after wrk_chat_finish */
	} cases_p[] = {
		{ { "Progress 7", "6%" }, { -1, 76 }, 76 },
		{ { "Progress 4", "2", "%" }, { -1, -1, 42 }, 42 },
		{ { "Progress 42" }, { -1 }, -1 },	/* pending to the end */
		{ { "Progress 42 " }, { 42 }, 42 },
		{ { "Progress 42\n" }, { 42 }, 42 },
		{ { JINDU " 76.." }, { 76 }, 76 },
		{ { RUNNER " Progress 76..\n\n" }, { 76 }, 76 },
		{ { "Progress: 36%" }, { 36 }, 36 },
		{ { "PROGRESS: 12%" }, { 12 }, 12 },
		{ { JINDU "\xef\xbc\x9a" "36.0%" }, { 36 }, 36 },
		{ { "Progress: 99.9%" }, { 99 }, 99 },
		{ { "Progress: 76.5" }, { 76 }, 76 },
		{ { "Progress: 0%" }, { 0 }, 0 },
		{ { "**Video Generation Progress**: 45% (processing)\n" }, { 45 },
		  45 },
		{ { "Generation in progress: 40% completed (estimated)..." },
		  { 40 }, 40 },
		{ { "Progress 50%\n", "Progress 30%\n" }, { 50, 50 }, 50 },
		{ { "progress 250%\n" }, { 100 }, 100 },
		{ { "progress 1234%\n" }, { -1 }, -1 },
		{ { "progress 42x\n" }, { -1 }, -1 },
		{ { "progress is reported here and now 55%\n" }, { -1 }, -1 },
		{ { "progress  :  12 34%\n" }, { 12 }, 12 },
		{ { "Progress\n50%\n" }, { -1 }, -1 },
		{ { "Progress 10%, progress 20%, progress 15%\n" }, { 20 }, 20 },
		{ { "```json\n{\"prompt\": \"progress 99% done\"}\n```\n",
		    "Progress 10%\n" }, { -1, 10 }, 10 },
		{ { "```js", "on\n{\"p\": \"progress 90%\"}\n", "```\n",
		    "progress 5%\n" }, { -1, -1, -1, 5 }, 5 },
		{ { "Progress: 5%\n", "```json\n", "Progress: 90%\n", "```\n",
		    "Progress: 7%\n" }, { 5, 5, 5, 5, 7 }, 7 },
		{ { "```html\n<p>progress 33%</p>\n```\n" }, { 33 }, 33 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases_p) / sizeof(cases_p[0]); i++) {
		struct wrk_chat c;
		size_t k;

		wrk_chat_init(&c);
		for (k = 0; k < 6 && cases_p[i].text[k] != NULL; k++) {
			json_t *j = json_pack("{s:[{s:{s:s}}]}", "choices",
			    "delta", "content", cases_p[i].text[k]);
			char *s = json_dumps(j, 0);

			assert_int_equal(wrk_chat_event(&c, s, strlen(s)), 0);
			if (c.progress != cases_p[i].after[k])
				fail_msg("progress case %zu piece %zu: %d, want "
				    "%d", i, k, c.progress,
				    cases_p[i].after[k]);
			free(s);
			json_decref(j);
		}
		assert_int_equal(wrk_chat_finish(&c, true), 0);
		if (c.progress != cases_p[i].final)
			fail_msg("progress case %zu final: %d, want %d", i,
			    c.progress, cases_p[i].final);
		wrk_chat_fini(&c);
	}
}

/* ---- URL priorities ----------------------------------------------------- */

static void
test_url_priority_table(void **state)
{
	static const struct {
		const char *name;
		const char *content;	/* the text of T */
		const char *extra;	/* a whole chunk sent before, or NULL */
		const char *url;	/* NULL: no URL */
	} cases_u[] = {
		{ "markdown beats bare",
		  "https://x.example/bare.mp4 [a](https://x.example/md.mp4)\n"
		  "https://x.example/late.mp4\n", NULL,
		  "https://x.example/md.mp4" },
		{ "src beats markdown and bare, even without .mp4",
		  "[m](https://x.example/m.mp4) <video src=\"https://x.example/"
		  "src\" controls></video>\n", NULL, "https://x.example/src" },
		{ "src = with spaces and single quotes",
		  "<video src = 'https://x.example/sq.mp4'>\n", NULL,
		  "https://x.example/sq.mp4" },
		{ "a url key in T beats src",
		  "<video src='https://x.example/s.mp4'>\n{\"video_url\": "
		  "\"https://x.example/j\"}\n", NULL, "https://x.example/j" },
		{ "\"url\" counts, \"image_url\" does not",
		  "{\"image_url\": \"https://x.example/i\"}\n<video src='https://"
		  "x.example/s'>\n", NULL, "https://x.example/s" },
		{ "output[] beats everything, last wins",
		  "{\"url\": \"https://x.example/j.mp4\"}\n",
		  "{\"choices\":[{\"delta\":{\"output\":[{\"url\":\"https://x."
		  "example/o1.mp4\"},{\"url\":\"https://x.example/o2.mp4\"}]}}]}",
		  "https://x.example/o2.mp4" },
		{ "a url member of the chunk counts as a JSON url",
		  "[m](https://x.example/m.mp4)\n",
		  "{\"choices\":[{\"delta\":{}}],\"video_url\":\"https://x."
		  "example/top\"}", "https://x.example/top" },
		{ "a video extension beats a later link without one",
		  "[1](https://x.example/one) [2](https://x.example/two.mp4) "
		  "[3](https://x.example/three)\n", NULL,
		  "https://x.example/two.mp4" },
		{ "otherwise the last one wins",
		  "[1](https://x.example/one.mp4)\n[2](https://x.example/two.MOV"
		  "?sig=a)\n", NULL, "https://x.example/two.MOV?sig=a" },
		{ "after a success marker beats before, at equal extension",
		  "[a](https://x.example/a)\n" CHECK " [b](https://x.example/b)\n",
		  NULL, "https://x.example/b" },
		{ "asyncdata pages are skipped",
		  "[p](https://asyncdata.net/web/task_1) [r](https://asyncdata."
		  "net/source/task_1) https://x.example/v\n", NULL,
		  "https://x.example/v" },
		{ "images are skipped",
		  "![i](https://x.example/p.png) [v](https://x.example/v) "
		  "https://x.example/q.JPG?sig=1\n", NULL, "https://x.example/v" },
		{ "&amp; is decoded",
		  "<video src=\"https://x.example/v.mp4?a=1&amp;b=2\">\n", NULL,
		  "https://x.example/v.mp4?a=1&b=2" },
		{ "trailing ~ . , are stripped",
		  "see https://x.example/v.mp4~~~\n", NULL,
		  "https://x.example/v.mp4" },
		{ "a trailing full stop",
		  "Saved to https://x.example/v.webm.\n", NULL,
		  "https://x.example/v.webm" },
		{ "a backtick stops a URL",
		  "`https://x.example/tick.mp4`\n", NULL,
		  "https://x.example/tick.mp4" },
		{ "angle brackets stop a URL", "<https://x.example/ang.mp4>\n",
		  NULL, "https://x.example/ang.mp4" },
		{ "non-ASCII stops a URL",
		  "https://x.example/v.mp4\xe6\x9f\xa5\xe7\x9c\x8b\n", NULL,
		  "https://x.example/v.mp4" },
		{ "an upper-case scheme is lowered",
		  "HTTPS://x.example/U.mp4\n", NULL, "https://x.example/U.mp4" },
		{ "other schemes are not URLs",
		  "file:///etc/passwd ftp://x.example/v.mp4 javascript:alert(1)\n",
		  NULL, NULL },
		{ "a URL without a host is not one", "https:// and http://\n",
		  NULL, NULL },
		{ "loopback is the worker's business, not the parser's",
		  "[v](http://127.0.0.1:8000/tmp/x.mp4)\n", NULL,
		  "http://127.0.0.1:8000/tmp/x.mp4" },
		{ "JSON url key with escaped quotes in a raw payload",
		  NULL, "not json: {\\\"url\\\": \\\"https://x.example/esc.mp4\\\"}",
		  "https://x.example/esc.mp4" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases_u) / sizeof(cases_u[0]); i++) {
		struct wrk_chat c;

		wrk_chat_init(&c);
		if (cases_u[i].extra != NULL)
			assert_int_equal(wrk_chat_event(&c, cases_u[i].extra,
			    strlen(cases_u[i].extra)), 0);
		if (cases_u[i].content != NULL) {
			json_t *j = json_pack("{s:[{s:{s:s}}]}", "choices",
			    "delta", "content", cases_u[i].content);
			char *s = json_dumps(j, 0);

			assert_int_equal(wrk_chat_event(&c, s, strlen(s)), 0);
			free(s);
			json_decref(j);
		}
		assert_int_equal(wrk_chat_event(&c, "[DONE]", 6), 0);
		assert_int_equal(wrk_chat_finish(&c, true), 0);
		if (cases_u[i].url == NULL) {
			if (c.outcome != WRK_CHAT_ERROR_PERMANENT)
				fail_msg("%s: outcome %d url %s", cases_u[i].name,
				    c.outcome, c.url);
		} else if (c.outcome != WRK_CHAT_SUCCESS ||
		    strcmp(c.url, cases_u[i].url) != 0) {
			fail_msg("%s: url %s, want %s", cases_u[i].name,
			    c.url ? c.url : "(null)", cases_u[i].url);
		}
		wrk_chat_fini(&c);
	}
}

static void
test_overlong_url_is_ignored(void **state)
{
	size_t n = WRK_URL_MAX + 100;
	char *text = malloc(n + 64);
	struct wrk_chat c;
	json_t *j;
	char *s;

	(void)state;
	strcpy(text, "[v](https://x.example/");
	memset(text + strlen(text), 'a', n);
	strcpy(text + 22 + n, ".mp4)\n[w](https://x.example/ok)\n");
	j = json_pack("{s:[{s:{s:s}}]}", "choices", "delta", "content", text);
	s = json_dumps(j, 0);
	wrk_chat_init(&c);
	assert_int_equal(wrk_chat_event(&c, s, strlen(s)), 0);
	assert_int_equal(wrk_chat_event(&c, "[DONE]", 6), 0);
	assert_int_equal(wrk_chat_finish(&c, true), 0);
	assert_int_equal(c.outcome, WRK_CHAT_SUCCESS);
	assert_string_equal(c.url, "https://x.example/ok");
	wrk_chat_fini(&c);
	free(s);
	json_decref(j);
	free(text);
}

/* ---- E8: token-sized fragments ------------------------------------------ */

/* Sends `text` as fragments of 1, 2, 3 ... 7 bytes, never cutting a
 * character, each wrapped in its own chunk as PiAPI does. */
static void
feed_fragments(struct wrk_chat *c, const char *text, size_t start)
{
	size_t n = strlen(text), i = 0, k = start, prev = 0;
	json_t *j;
	char *s;

	j = json_pack("{s:[{s:{s:s,s:s}}]}", "choices", "delta", "role",
	    "assistant", "content", "");
	s = json_dumps(j, 0);
	assert_int_equal(wrk_chat_event(c, s, strlen(s)), 0);
	free(s);
	json_decref(j);
	while (i < n) {
		size_t m = k % 7 + 1;
		int last = c->progress;

		if (m > n - i)
			m = n - i;
		while (i + m < n && ((unsigned char)text[i + m] & 0xc0) == 0x80)
			m++;
		j = json_pack("{s:[{s:{s:s%}}]}", "choices", "delta",
		    "content", text + i, m);
		s = json_dumps(j, 0);
		assert_int_equal(wrk_chat_event(c, s, strlen(s)), 0);
		assert_true(c->progress >= last);
		free(s);
		json_decref(j);
		i += m;
		k++;
		prev = i;
	}
	assert_int_equal(prev, n);
}

static void
test_token_sized_fragments_read_like_the_whole(void **state)
{
	static const char *const texts[] = {
		"```json\n{\n \"prompt\": \"progress 99% of a cat\",\n "
		"\"image\": \"https://in.example.com/ref.png\"\n}\n```\n\n"
		"> ID: `task_01k7`\n> Queuing......\n> " RUNNER " Progress 12.."
		"\n> " RUNNER " Progress 76..\n\n> Generation Complete " CHECK
		"\n[Play Online](https://filesystem.site/cdn/e8.mp4)\n",
		CHECK " \xe8\xa7\x86\xe9\xa2\x91\xe7\x94\x9f\xe6\x88\x90\xe6\x88"
		"\x90\xe5\x8a\x9f " JINDU "\xef\xbc\x9a" "100%\n<video src='https"
		"://cdn.example.com/e8b.mp4?x=1&amp;y=2'></video>",
	};
	static const char *const urls[] = {
		"https://filesystem.site/cdn/e8.mp4",
		"https://cdn.example.com/e8b.mp4?x=1&y=2",
	};
	static const int progress[] = { 76, 100 };

	(void)state;
	for (size_t t = 0; t < 2; t++) {
		for (size_t start = 0; start < 7; start++) {
			struct wrk_chat c;

			wrk_chat_init(&c);
			feed_fragments(&c, texts[t], start);
			assert_int_equal(wrk_chat_event(&c, "[DONE]", 6), 0);
			assert_int_equal(wrk_chat_finish(&c, true), 0);
			assert_int_equal(c.outcome, WRK_CHAT_SUCCESS);
			assert_string_equal(c.url, urls[t]);
			assert_int_equal(c.progress, progress[t]);
			assert_int_equal(c.phase, WRK_PHASE_DONE);
			wrk_chat_fini(&c);
		}
	}
}

/*
 * 200 KB of text in two-byte chunks with no newline: each chunk must cost
 * the same, not a rescan of the whole unfinished line (that would be
 * 10^10 byte comparisons here and run for minutes).
 */
static void
test_tiny_chunks_without_newlines_stay_linear(void **state)
{
	static const char ab[] = DC("ab");
	static const char pr[] = DC(" Progress 4");
	static const char pr2[] = DC("2% [v](https://x.example/v.mp4)");
	struct wrk_chat c;

	(void)state;
	wrk_chat_init(&c);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(wrk_chat_event(&c, ab, sizeof(ab) - 1), 0);
	assert_int_equal(wrk_chat_event(&c, pr, sizeof(pr) - 1), 0);
	assert_int_equal(c.progress, -1);		/* "4" is pending */
	assert_int_equal(wrk_chat_event(&c, pr2, sizeof(pr2) - 1), 0);
	assert_int_equal(c.progress, 42);
	assert_int_equal(wrk_chat_event(&c, "[DONE]", 6), 0);
	assert_int_equal(wrk_chat_finish(&c, true), 0);
	assert_int_equal(c.outcome, WRK_CHAT_SUCCESS);
	assert_string_equal(c.url, "https://x.example/v.mp4");
	wrk_chat_fini(&c);
}

/* ---- limits, errors and records ------------------------------------------ */

static void
test_text_over_one_mib_is_too_big(void **state)
{
	size_t piece = 64 * 1024;
	char *text = malloc(piece + 1);
	struct wrk_chat c;
	json_t *j;
	char *s;
	int rv = 0, i;

	(void)state;
	memset(text, 'x', piece);
	text[piece] = '\0';
	j = json_pack("{s:[{s:{s:s}}]}", "choices", "delta", "content", text);
	s = json_dumps(j, 0);
	wrk_chat_init(&c);
	for (i = 0; i < 40 && rv == 0; i++)
		rv = wrk_chat_event(&c, s, strlen(s));
	assert_int_equal(rv, VG_ETOOBIG);
	assert_int_equal(i, WRK_CHAT_MAX_TEXT / piece + 1);
	assert_true(c.text_cap <= WRK_CHAT_MAX_TEXT + 1);
	assert_int_equal(wrk_chat_event(&c, "[DONE]", 6), VG_ETOOBIG);
	assert_int_equal(wrk_chat_finish(&c, true), 0);
	assert_int_equal(c.outcome, WRK_CHAT_ERROR_PERMANENT);
	assert_non_null(c.error);
	wrk_chat_fini(&c);
	free(s);
	json_decref(j);
	free(text);
}

static void
test_too_many_malformed_payloads_give_up(void **state)
{
	struct wrk_chat c;
	int i;

	(void)state;
	wrk_chat_init(&c);
	for (i = 0; i < WRK_CHAT_MAX_MALFORMED; i++)
		assert_int_equal(wrk_chat_event(&c, "{oops", 5), 0);
	assert_int_equal(c.malformed, WRK_CHAT_MAX_MALFORMED);
	assert_int_equal(wrk_chat_event(&c, "{oops", 5), VG_EPROTO);
	assert_int_equal(wrk_chat_event(&c, DC("fine"), strlen(DC("fine"))),
	    VG_EPROTO);
	assert_int_equal(wrk_chat_finish(&c, true), 0);
	assert_int_equal(c.outcome, WRK_CHAT_ERROR_PERMANENT);
	assert_non_null(strstr(c.error, "malformed"));
	wrk_chat_fini(&c);
}

static void
test_error_messages_are_readable(void **state)
{
	char body[4096], msg[2400];
	struct wrk_chat c;
	size_t n;

	(void)state;
	/* 1000 characters with control characters and a split emoji */
	n = 0;
	for (int i = 0; i < 100; i++)
		n += (size_t)sprintf(msg + n, "bad\\u0007\\t\\n%s",
		    i % 2 ? "\xc3\xa9\xc3\xa9\xc3\xa9" : "\xf0\x9f\x8e\xac");
	snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%s\"}}", msg);
	wrk_chat_init(&c);
	assert_int_equal(wrk_chat_event(&c, body, strlen(body)), 0);
	assert_true(c.ended);
	assert_int_equal(c.outcome, WRK_CHAT_ERROR_PERMANENT);
	assert_true(strlen(c.error) <= WRK_MSG_MAX);
	assert_true(vg_utf8_valid(c.error, strlen(c.error)));
	for (const char *p = c.error; *p != '\0'; p++)
		assert_true((unsigned char)*p >= 0x20);
	assert_non_null(strstr(c.error, "bad \xf0\x9f\x8e\xac" "bad"));
	assert_string_equal(c.error + strlen(c.error) - 3, "\xe2\x80\xa6");
	wrk_chat_fini(&c);
}

static void
test_error_event(void **state)
{
	struct wrk_chat c;

	(void)state;
	/* JSON envelope */
	wrk_chat_init(&c);
	assert_int_equal(wrk_chat_error_event(&c, SENTINEL_ERROR,
	    strlen(SENTINEL_ERROR)), 0);
	assert_int_equal(c.outcome, WRK_CHAT_ERROR_POLICY);
	assert_true(c.ended);
	assert_int_equal(wrk_chat_finish(&c, false), 0);
	assert_int_equal(c.outcome, WRK_CHAT_ERROR_POLICY);
	wrk_chat_fini(&c);
	/* plain text, with a URL seen before: the error wins */
	wrk_chat_init(&c);
	assert_int_equal(wrk_chat_event(&c, DC("[v](https://x.example/v.mp4)"
	    "\\n"), strlen(DC("[v](https://x.example/v.mp4)\\n"))), 0);
	assert_true(wrk_chat_has_url(&c));
	assert_int_equal(wrk_chat_error_event(&c, "Service\r\nUnavailable",
	    21), 0);
	assert_int_equal(wrk_chat_finish(&c, true), 0);
	assert_int_equal(c.outcome, WRK_CHAT_ERROR_TRANSIENT);
	assert_string_equal(c.error, "Service Unavailable");
	assert_null(c.url);
	wrk_chat_fini(&c);
	/* an empty one still ends the stream */
	wrk_chat_init(&c);
	assert_int_equal(wrk_chat_error_event(&c, "", 0), 0);
	assert_int_equal(c.outcome, WRK_CHAT_ERROR_PERMANENT);
	assert_string_equal(c.error, "the provider reported an error");
	wrk_chat_fini(&c);
}

static void
test_records_for_metadata_and_phase(void **state)
{
	static const char *const ev[] = {
		DC("\xe2\x8c\x9b\xef\xb8\x8f queued\\n"),
		DC(RUNNER " Generating\\n"),
		"{\"choices\":[{\"index\":0,\"delta\":{\"wm\":{\"stage\":"
		"\"waiting\"}}}]}",
		DCF("[v](https://x.example/v.mp4)", "STOP"),
		"{\"choices\":[],\"usage\":{\"total_tokens\":1}}",
	};
	static const enum wrk_phase phase[] = {
		WRK_PHASE_QUEUED, WRK_PHASE_RUNNING, WRK_PHASE_RUNNING,
		WRK_PHASE_RUNNING, WRK_PHASE_RUNNING,
	};
	struct wrk_chat c;

	(void)state;
	wrk_chat_init(&c);
	assert_int_equal(c.progress, -1);
	assert_null(c.last_json);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(wrk_chat_event(&c, ev[i], strlen(ev[i])), 0);
		assert_int_equal(c.phase, phase[i]);
	}
	assert_string_equal(c.wm_stage, "waiting");
	assert_string_equal(c.finish_reason, "stop");
	assert_true(c.ended);
	assert_false(c.done);
	assert_int_equal(c.chunks, 5);
	assert_string_equal(c.last_json, ev[4]);
	/* the URL is the last text, not yet ended by a newline */
	assert_false(wrk_chat_has_url(&c));
	assert_int_equal(wrk_chat_event(&c, "[DONE]", 6), 0);
	assert_true(c.done);
	assert_string_equal(c.last_json, ev[4]);
	assert_int_equal(wrk_chat_finish(&c, true), 0);
	assert_int_equal(c.outcome, WRK_CHAT_SUCCESS);
	assert_false(c.truncated);
	assert_string_equal(c.url, "https://x.example/v.mp4");
	wrk_chat_fini(&c);
	wrk_chat_fini(&c);

	/* a chunk over the cap is not kept for metadata */
	{
		size_t n = WRK_CHAT_MAX_LAST_JSON + 10;
		char *big = malloc(n + 64);
		json_t *j;
		char *s;

		memset(big, 'y', n);
		big[n] = '\0';
		j = json_pack("{s:[{s:{s:s}}]}", "choices", "delta", "content",
		    big);
		s = json_dumps(j, 0);
		wrk_chat_init(&c);
		assert_int_equal(wrk_chat_event(&c, ev[0], strlen(ev[0])), 0);
		assert_int_equal(wrk_chat_event(&c, s, strlen(s)), 0);
		assert_string_equal(c.last_json, ev[0]);
		wrk_chat_fini(&c);
		free(s);
		json_decref(j);
		free(big);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcripts),
		cmocka_unit_test(test_transcripts_through_sse_split_anywhere),
		cmocka_unit_test(test_progress_table),
		cmocka_unit_test(test_url_priority_table),
		cmocka_unit_test(test_overlong_url_is_ignored),
		cmocka_unit_test(test_token_sized_fragments_read_like_the_whole),
		cmocka_unit_test(test_tiny_chunks_without_newlines_stay_linear),
		cmocka_unit_test(test_text_over_one_mib_is_too_big),
		cmocka_unit_test(test_too_many_malformed_payloads_give_up),
		cmocka_unit_test(test_error_messages_are_readable),
		cmocka_unit_test(test_error_event),
		cmocka_unit_test(test_records_for_metadata_and_phase),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
