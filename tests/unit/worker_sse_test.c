/*
 * tests/unit/worker_sse_test.c: worker/sse.c, the incremental SSE decoder.
 *
 * Every transcript of the table is fed whole, split in two at every byte
 * position, byte by byte and (when short) split in three at every pair of
 * positions, and again with its LF line ends turned into CRLF and into
 * lone CR and with a UTF-8 BOM in front: the same events must come out
 * every time.
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

#define MAX_EV 16

struct got {
	size_t n;
	char   name[MAX_EV][WRK_SSE_EVENT_MAX];
	char  *data[MAX_EV];
	size_t len[MAX_EV];
	int    stop_at;		/* return stop_rv from this event (1-based) */
	int    stop_rv;
};

static int
on_event(void *arg, const char *event, const char *data, size_t len)
{
	struct got *g = arg;

	assert_non_null(event);
	assert_non_null(data);
	assert_int_equal(data[len], '\0');
	if (g->n < MAX_EV) {
		snprintf(g->name[g->n], sizeof(g->name[0]), "%s", event);
		g->data[g->n] = malloc(len + 1);
		assert_non_null(g->data[g->n]);
		memcpy(g->data[g->n], data, len + 1);
		g->len[g->n] = len;
	}
	g->n++;
	if (g->stop_at != 0 && (int)g->n == g->stop_at)
		return g->stop_rv;
	return 0;
}

static void
got_free(struct got *g)
{
	for (size_t i = 0; i < g->n && i < MAX_EV; i++)
		free(g->data[i]);
	memset(g, 0, sizeof(*g));
}

struct want {
	const char *event;	/* NULL ends the list */
	const char *data;
};

struct sse_case {
	const char *name;
	const char *in;
	struct want want[8];
	bool done;
	unsigned comments;
	bool raw;		/* has CRs already: no line-end variants */
};

/* ---- transcripts --------------------------------------------------- */

#define E1_HEAD "{\"id\":\"chatcmpl-1768151586858\",\"object\":" \
	"\"chat.completion.chunk\",\"created\":1768151586,\"model\":\"sora\"," \
	"\"choices\":[{\"index\":0,\"delta\":"
#define E1_C1 E1_HEAD "{\"role\":\"assistant\",\"content\":null," \
	"\"reasoning_content\":\"**Generation Process Begins**\\n\\n" \
	"Initializing generation request...\\n\",\"tool_calls\":null}," \
	"\"finish_reason\":null,\"native_finish_reason\":null}]," \
	"\"usage\":{\"prompt_tokens\":0}}"
#define E1_C2 E1_HEAD "{\"content\":null,\"reasoning_content\":" \
	"\"**Video Generation Progress**: 45% (processing)\\n\"}," \
	"\"finish_reason\":null}]}"
#define E1_C3 E1_HEAD "{\"content\":null,\"reasoning_content\":" \
	"\"**Video Generation Completed**\\n\\nVideo generation successful. " \
	"Now caching the video file...\\n\"},\"finish_reason\":null}]}"
#define E1_C4 E1_HEAD "{\"content\":\"```html\\n<video src='http://host:" \
	"8000/tmp/abc.mp4' controls></video>\\n```\",\"reasoning_content\":" \
	"null},\"finish_reason\":\"STOP\"}]}"

#define E3_C1 "{\"choices\":[{\"delta\":{\"content\":\"> \xe2\x9c\x85 Video " \
	"generated successfully, [click here](https://static.aiclound.vip/" \
	"sora/XXXXX83.mp4) to view video~~~\\n\\n\",\"role\":\"assistant\"}," \
	"\"index\":0}],\"created\":0,\"id\":\"39a5d-xxxxx\",\"model\":" \
	"\"sora-2\",\"object\":\"chat.completion.chunk\"}"

#define E5_C(text) "{\"id\":\"chatcmpl-kk\",\"object\":" \
	"\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":" \
	"{\"content\":\"" text "\"},\"finish_reason\":null}]}"
#define E5_C1 E5_C("```json\\n{\\n \\\"prompt\\\": \\\"a cat, 100% fluffy\\\"," \
	" \\\"orientation\\\": \\\"portrait\\\"\\n}\\n```\\n\\n")
#define E5_C2 E5_C("> ID: `task_01k7dzptgwf2z87wj2c3t36qk0`\\n>[Data Preview]" \
	"(https://asyncdata.net/web/task_01k7dzptgwf2z87wj2c3t36qk0) | [Raw " \
	"Data](https://asyncdata.net/source/task_01k7dzptgwf2z87wj2c3t36qk0)\\n")
#define E5_C3 E5_C("> Queuing......\\n> Generating.\\n\\n>\xf0\x9f\x8f\x83 " \
	"Progress 76..\\n\\n")
#define E5_C4 E5_C("> Generation Complete \xe2\x9c\x85\\n> sid: " \
	"s_68ec8accd80c8191ae1fc957af78caaa\\n\\n\\n[Play Online\xe2\x96\xb6" \
	"\xef\xb8\x8f](https://filesystem.site/cdn/20251013/5781a601c5ce5e21" \
	"6e914fef119c99.mp4)")

#define E6_C1 "{\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":" \
	"\"**Video Generation Progress**: 40% (processing)\\n\"}}]}"
#define E6_C2 "{\"choices\":[{\"index\":0,\"delta\":{}}],\"wm\":{\"stage\":" \
	"\"waiting\",\"attempt\":3,\"can_cancel\":true,\"task_id\":\"s_xxxx\"}}"
#define E6_C3 "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"```html\\n" \
	"<video src='https://video-url.mp4' controls></video>\\n```\"," \
	"\"output\":[{\"url\":\"https://video-url.mp4\",\"type\":\"video\"," \
	"\"task_id\":\"s_xxxx\"}]},\"finish_reason\":\"STOP\"}]}"

#define E7_C(text, fr) "{\"choices\":[{\"index\":0,\"delta\":{\"content\":" \
	"\"" text "\"},\"finish_reason\":" fr "}]}"

static const struct sse_case cases[] = {
	{ "E1 sora2api reasoning progress and an HTML video tag",
	    "data: " E1_C1 "\n\n"
	    ": keep-alive\n\n"
	    "data: " E1_C2 "\n\n"
	    "data: " E1_C3 "\n\n"
	    "data: " E1_C4 "\n\n"
	    "data: [DONE]\n\n",
	    { { "message", E1_C1 }, { "message", E1_C2 },
	      { "message", E1_C3 }, { "message", E1_C4 },
	      { "message", "[DONE]" } }, true, 1, false },
	{ "E3 gptproto markdown link, no finish_reason",
	    "data: " E3_C1 "\n\ndata: [DONE]\n\n",
	    { { "message", E3_C1 }, { "message", "[DONE]" } }, true, 0,
	    false },
	{ "E5 asyncdata log with a JSON echo and trickled dots",
	    "data: " E5_C1 "\n\ndata: " E5_C2 "\n\ndata: " E5_C3 "\n\n"
	    "data: " E5_C4 "\n\ndata: [DONE]\n\n",
	    { { "message", E5_C1 }, { "message", E5_C2 },
	      { "message", E5_C3 }, { "message", E5_C4 },
	      { "message", "[DONE]" } }, true, 0, false },
	{ "E6 output next to the HTML, watermark wait",
	    "data: " E6_C1 "\n\n: ping\n\ndata: " E6_C2 "\n\n"
	    "data: " E6_C3 "\n\ndata: [DONE]\n\n",
	    { { "message", E6_C1 }, { "message", E6_C2 },
	      { "message", E6_C3 }, { "message", "[DONE]" } }, true, 1,
	    false },
	{ "E7 bare URL, UTF-8 sent raw",
	    "data: " E7_C("\xf0\x9f\x8e\xac \xe5\xbc\x80\xe5\xa7\x8b...", "null")
	    "\n\ndata: " E7_C("https://drive.google.com/file/d/xxx/view",
	    "\"stop\"") "\n\n",
	    { { "message", E7_C("\xf0\x9f\x8e\xac \xe5\xbc\x80\xe5\xa7\x8b...",
	      "null") }, { "message", E7_C("https://drive.google.com/file/d/"
	      "xxx/view", "\"stop\"") } }, false, 0, false },
	{ "comments are counted, never dispatched",
	    ": keep-alive\n:\n: another\ndata: x\n\n:tail\n",
	    { { "message", "x" } }, false, 4, false },
	{ "multi-line data is joined with newlines",
	    "data: line1\ndata: line2\ndata:\ndata:line4\n\n",
	    { { "message", "line1\nline2\n\nline4" } }, false, 0, false },
	{ "one leading space is dropped, no more",
	    "data:  two spaces\n\ndata:none\n\ndata:\ttab\n\n",
	    { { "message", " two spaces" }, { "message", "none" },
	      { "message", "\ttab" } }, false, 0, false },
	{ "event names apply to one event",
	    "event: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n"
	    "data: next\n\n",
	    { { "error", "{\"error\":{\"message\":\"boom\"}}" },
	      { "message", "next" } }, false, 0, false },
	{ "two data lines without a blank line make one event",
	    "data: {\"a\":1}\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
	    { { "message", "{\"a\":1}\n{\"b\":2}" }, { "message", "[DONE]" } },
	    true, 0, false },
	{ "the last event is dispatched at EOF without a blank line",
	    "data: first\n\ndata: last",
	    { { "message", "first" }, { "message", "last" } }, false, 0,
	    false },
	{ "id, retry and unknown fields are ignored; a bare field name",
	    "id: 7\nretry: 1000\nfoo: bar\ndata\n\nid\n\n",
	    { { "message", "" } }, false, 0, false },
	{ "an event without data is not dispatched",
	    "event: ping\n\n\n\nevent: x\nid: 1\n\n",
	    { { NULL, NULL } }, false, 0, false },
	{ "[DONE] among spaces still counts",
	    "data:  [DONE] \n\n",
	    { { "message", " [DONE] " } }, true, 0, false },
	{ "a field value may hold colons",
	    "data: https://x.example/a:b\n\n",
	    { { "message", "https://x.example/a:b" } }, false, 0, false },
	{ "long event names are cut, not refused",
	    "event: " "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffff"
	    "gggggggggg\ndata: y\n\n",
	    { { "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffggg",
	      "y" } }, false, 0, false },
	{ "mixed line ends in one stream",
	    "data: a\r\n\r\ndata: b\r\rdata: c\n\r\ndata: d\r\n\n",
	    { { "message", "a" }, { "message", "b" }, { "message", "c" },
	      { "message", "d" } }, false, 0, true },
	{ "a BOM only counts at the very start",
	    "\xef\xbb\xbf" "data: kept\n\n\xef\xbb\xbf" "data: lost\n\n",
	    { { "message", "kept" } }, false, 0, true },
	{ "a BOM prefix that is not a BOM stays text",
	    "\xef\xbb" "data: x\n\ndata: y\n\n",
	    { { "message", "y" } }, false, 0, true },
	{ "the §2.5 in-stream error then [DONE]",
	    "data: {\"error\":{\"message\":\"API request failed: 400 - {\\n "
	    "\\\"error\\\": {\\n \\\"code\\\": \\\"sentinel_block\\\"\\n }\\n}"
	    "\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
	    "data: [DONE]\n\n",
	    { { "message", "{\"error\":{\"message\":\"API request failed: 400 - "
	      "{\\n \\\"error\\\": {\\n \\\"code\\\": \\\"sentinel_block\\\"\\n"
	      " }\\n}\",\"type\":\"server_error\",\"param\":null,\"code\":"
	      "null}}" }, { "message", "[DONE]" } }, true, 0, false },
};

/* ---- the harness ---------------------------------------------------- */

static void
check(const struct sse_case *tc, const char *variant, size_t split1,
    size_t split2, struct wrk_sse *p, struct got *g, int rv)
{
	size_t nwant = 0;

	while (nwant < 8 && tc->want[nwant].event != NULL)
		nwant++;
	if (rv != 0)
		fail_msg("%s [%s %zu/%zu]: rv %d", tc->name, variant, split1,
		    split2, rv);
	if (g->n != nwant)
		fail_msg("%s [%s %zu/%zu]: %zu events, want %zu", tc->name,
		    variant, split1, split2, g->n, nwant);
	for (size_t i = 0; i < nwant; i++) {
		if (strcmp(g->name[i], tc->want[i].event) != 0 ||
		    g->len[i] != strlen(tc->want[i].data) ||
		    memcmp(g->data[i], tc->want[i].data, g->len[i]) != 0)
			fail_msg("%s [%s %zu/%zu]: event %zu is %s \"%s\"",
			    tc->name, variant, split1, split2, i, g->name[i],
			    g->data[i]);
	}
	if (p->done != tc->done)
		fail_msg("%s [%s]: done %d", tc->name, variant, p->done);
	if (p->comments != tc->comments)
		fail_msg("%s [%s]: %llu comments", tc->name, variant,
		    (unsigned long long)p->comments);
	assert_int_equal(p->events, nwant);
}

/* Feeds `in` in pieces cut at a and b (a <= b <= n), then EOF. */
static int
run(const char *in, size_t n, size_t a, size_t b, struct wrk_sse *p,
    struct got *g)
{
	int rv;

	wrk_sse_init(p, 0, on_event, g);
	if ((rv = wrk_sse_feed(p, in, a)) < 0 ||
	    (rv = wrk_sse_feed(p, in + a, b - a)) < 0 ||
	    (rv = wrk_sse_feed(p, in + b, n - b)) < 0)
		return rv;
	return wrk_sse_finish(p);
}

static void
run_all_splits(const struct sse_case *tc, const char *variant, const char *in,
    size_t n)
{
	struct wrk_sse p;
	struct got g = { 0 };
	int rv;

	/* whole, then two pieces at every position */
	for (size_t a = 0; a <= n; a++) {
		rv = run(in, n, a, n, &p, &g);
		check(tc, variant, a, n, &p, &g, rv);
		wrk_sse_fini(&p);
		got_free(&g);
	}
	/* three pieces at every pair, for the short ones */
	if (n <= 160) {
		for (size_t a = 0; a <= n; a++) {
			for (size_t b = a; b <= n; b++) {
				rv = run(in, n, a, b, &p, &g);
				check(tc, variant, a, b, &p, &g, rv);
				wrk_sse_fini(&p);
				got_free(&g);
			}
		}
	}
	/* byte by byte */
	wrk_sse_init(&p, 0, on_event, &g);
	rv = 0;
	for (size_t i = 0; i < n && rv == 0; i++)
		rv = wrk_sse_feed(&p, in + i, 1);
	if (rv == 0)
		rv = wrk_sse_finish(&p);
	check(tc, variant, 1, 1, &p, &g, rv);
	wrk_sse_fini(&p);
	got_free(&g);
}

/* Copies `in` with each LF replaced by `eol`, after an optional prefix. */
static char *
variant_of(const char *in, const char *prefix, const char *eol, size_t *n)
{
	size_t len = strlen(in), k = strlen(eol), o;
	char *out = malloc(strlen(prefix) + len * k + 1);

	assert_non_null(out);
	o = strlen(prefix);
	memcpy(out, prefix, o);
	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n') {
			memcpy(out + o, eol, k);
			o += k;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
	*n = o;
	return out;
}

static void
test_transcripts_split_anywhere(void **state)
{
	static const struct {
		const char *name, *prefix, *eol;
	} variants[] = {
		{ "LF", "", "\n" },
		{ "CRLF", "", "\r\n" },
		{ "CR", "", "\r" },
		{ "BOM+LF", "\xef\xbb\xbf", "\n" },
		{ "BOM+CRLF", "\xef\xbb\xbf", "\r\n" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]);
		    v++) {
			size_t n;
			char *in;

			if (cases[i].raw && v > 0)
				break;
			in = variant_of(cases[i].in, variants[v].prefix,
			    variants[v].eol, &n);
			run_all_splits(&cases[i], variants[v].name, in, n);
			free(in);
		}
	}
}

static void
test_callback_error_stops_the_decoder(void **state)
{
	static const char in[] = "data: a\n\ndata: b\n\ndata: c\n\n";
	struct got g = { .stop_at = 1, .stop_rv = -42 };
	struct wrk_sse p;

	(void)state;
	wrk_sse_init(&p, 0, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, in, sizeof(in) - 1), -42);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.data[0], "a");
	assert_int_equal(p.err, -42);
	/* sticky: nothing more is decoded or dispatched */
	assert_int_equal(wrk_sse_feed(&p, "data: d\n\n", 9), -42);
	assert_int_equal(wrk_sse_finish(&p), -42);
	assert_int_equal(g.n, 1);
	wrk_sse_fini(&p);
	got_free(&g);

	/* the same when the event is dispatched at EOF */
	g.stop_at = 1;
	g.stop_rv = VG_EINTERNAL;
	wrk_sse_init(&p, 0, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, "data: x", 7), 0);
	assert_int_equal(g.n, 0);
	assert_int_equal(wrk_sse_finish(&p), VG_EINTERNAL);
	assert_int_equal(g.n, 1);
	wrk_sse_fini(&p);
	got_free(&g);
}

static void
test_four_mib_line_without_newline_is_too_big(void **state)
{
	size_t n = 4 * 1024 * 1024;
	char *big = malloc(n);
	struct got g = { 0 };
	struct wrk_sse p;
	int rv = 0;

	(void)state;
	assert_non_null(big);
	memcpy(big, "data: ", 6);
	memset(big + 6, 'A', n - 6);

	/* in one piece */
	wrk_sse_init(&p, WRK_SSE_MAX_LINE, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, big, n), VG_ETOOBIG);
	assert_int_equal(wrk_sse_finish(&p), VG_ETOOBIG);
	assert_true(p.line_cap <= WRK_SSE_MAX_LINE + 1);
	wrk_sse_fini(&p);

	/* as libcurl would hand it over: it stops at the ceiling */
	wrk_sse_init(&p, WRK_SSE_MAX_LINE, on_event, &g);
	size_t off = 0;
	while (off < n && (rv = wrk_sse_feed(&p, big + off, 16384)) == 0)
		off += 16384;
	assert_int_equal(rv, VG_ETOOBIG);
	assert_true(off <= WRK_SSE_MAX_LINE);
	assert_true(p.line_cap <= WRK_SSE_MAX_LINE + 1);
	wrk_sse_fini(&p);

	/* a newline far too late changes nothing */
	big[n - 1] = '\n';
	wrk_sse_init(&p, WRK_SSE_MAX_LINE, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, big, n), VG_ETOOBIG);
	wrk_sse_fini(&p);
	assert_int_equal(g.n, 0);
	free(big);
}

static void
test_line_limit_is_exact(void **state)
{
	char line[64 + 2];
	struct got g = { 0 };
	struct wrk_sse p;

	(void)state;
	memcpy(line, "data: ", 6);
	memset(line + 6, 'x', 58);		/* 64 bytes */
	line[64] = '\n';
	line[65] = '\n';
	for (size_t a = 0; a <= sizeof(line); a++) {	/* both paths */
		wrk_sse_init(&p, 64, on_event, &g);
		assert_int_equal(wrk_sse_feed(&p, line, a), 0);
		assert_int_equal(wrk_sse_feed(&p, line + a, sizeof(line) - a),
		    0);
		assert_int_equal(g.n, 1);
		assert_int_equal(g.len[0], 58);
		wrk_sse_fini(&p);
		got_free(&g);
	}
	memset(line, 'x', 65);			/* 65 bytes, then LF */
	line[65] = '\n';
	for (size_t a = 0; a <= sizeof(line); a++) {
		int rv;

		wrk_sse_init(&p, 64, on_event, &g);
		rv = wrk_sse_feed(&p, line, a);
		if (rv == 0)
			rv = wrk_sse_feed(&p, line + a, sizeof(line) - a);
		assert_int_equal(rv, VG_ETOOBIG);
		wrk_sse_fini(&p);
	}
	/* an unterminated line at EOF is held to the same ceiling */
	wrk_sse_init(&p, 64, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, line, 64), 0);
	assert_int_equal(wrk_sse_feed(&p, line, 1), VG_ETOOBIG);
	wrk_sse_fini(&p);
}

static void
test_event_data_has_a_ceiling(void **state)
{
	char line[1030];
	struct got g = { 0 };
	struct wrk_sse p;
	int rv = 0, i;

	(void)state;
	memcpy(line, "data: ", 6);
	memset(line + 6, 'd', 1000);
	line[1006] = '\n';
	wrk_sse_init(&p, 1024, on_event, &g);
	assert_int_equal(p.max_data, 1024 * WRK_SSE_DATA_FACTOR);
	/* each line is fine alone; together they pass the data cap */
	for (i = 0; i < 100 && rv == 0; i++)
		rv = wrk_sse_feed(&p, line, 1007);
	assert_int_equal(rv, VG_ETOOBIG);
	assert_int_equal(i, 1024 * WRK_SSE_DATA_FACTOR / 1001 + 1);
	assert_true(p.data_cap <= p.max_data + 1);
	assert_int_equal(g.n, 0);
	wrk_sse_fini(&p);

	/* the caller may lower the cap before feeding */
	wrk_sse_init(&p, 1024, on_event, &g);
	p.max_data = 1500;
	assert_int_equal(wrk_sse_feed(&p, line, 1007), 0);
	assert_int_equal(wrk_sse_feed(&p, line, 1007), VG_ETOOBIG);
	wrk_sse_fini(&p);
}

static void
test_done_is_flagged_and_still_told(void **state)
{
	static const char in[] = "data: {\"x\":1}\r\n\r\ndata: [DONE]\r\n\r\n";
	struct got g = { 0 };
	struct wrk_sse p;

	(void)state;
	wrk_sse_init(&p, 0, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, in, 18), 0);
	assert_false(p.done);
	assert_int_equal(wrk_sse_feed(&p, in + 18, sizeof(in) - 1 - 18), 0);
	assert_true(p.done);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.data[1], "[DONE]");
	wrk_sse_fini(&p);
	got_free(&g);

	/* "[DONE]x" is data, not the end */
	wrk_sse_init(&p, 0, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, "data: [DONE]x\n\n", 15), 0);
	assert_false(p.done);
	wrk_sse_fini(&p);
	got_free(&g);
}

static void
test_comments_show_liveness_while_nothing_is_dispatched(void **state)
{
	struct got g = { 0 };
	struct wrk_sse p;

	(void)state;
	wrk_sse_init(&p, 0, on_event, &g);
	for (int i = 0; i < 5; i++)
		assert_int_equal(wrk_sse_feed(&p, ": keep-alive\n\n", 14), 0);
	assert_int_equal(wrk_sse_feed(&p, ": half", 6), 0);
	assert_int_equal(p.comments, 5);	/* not finished yet */
	assert_int_equal(wrk_sse_feed(&p, "\r", 1), 0);
	assert_int_equal(p.comments, 6);
	assert_int_equal(g.n, 0);
	assert_int_equal(wrk_sse_finish(&p), 0);
	assert_int_equal(g.n, 0);
	wrk_sse_fini(&p);
}

static void
test_lifecycle_is_safe(void **state)
{
	struct wrk_sse p;
	struct got g = { 0 };

	(void)state;
	memset(&p, 0, sizeof(p));
	wrk_sse_fini(&p);			/* zeroed */
	wrk_sse_init(&p, 0, NULL, NULL);	/* no callback: counts only */
	assert_int_equal(p.max_line, WRK_SSE_MAX_LINE);
	assert_int_equal(wrk_sse_feed(&p, "data: a\n\n", 9), 0);
	assert_int_equal(p.events, 1);
	assert_int_equal(wrk_sse_finish(&p), 0);
	assert_int_equal(wrk_sse_finish(&p), 0);
	wrk_sse_fini(&p);
	wrk_sse_fini(&p);			/* twice */

	/* EOF inside a would-be BOM: the bytes are a line of their own */
	wrk_sse_init(&p, 0, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, "\xef\xbb", 2), 0);
	assert_int_equal(wrk_sse_finish(&p), 0);
	assert_int_equal(g.n, 0);
	wrk_sse_fini(&p);
	/* an empty stream */
	wrk_sse_init(&p, 0, on_event, &g);
	assert_int_equal(wrk_sse_feed(&p, "", 0), 0);
	assert_int_equal(wrk_sse_finish(&p), 0);
	assert_int_equal(g.n, 0);
	wrk_sse_fini(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcripts_split_anywhere),
		cmocka_unit_test(test_callback_error_stops_the_decoder),
		cmocka_unit_test(test_four_mib_line_without_newline_is_too_big),
		cmocka_unit_test(test_line_limit_is_exact),
		cmocka_unit_test(test_event_data_has_a_ceiling),
		cmocka_unit_test(test_done_is_flagged_and_still_told),
		cmocka_unit_test(
		    test_comments_show_liveness_while_nothing_is_dispatched),
		cmocka_unit_test(test_lifecycle_is_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
