/*
 * worker/chat.c: what a chat-completions video stream says.
 *
 * Sora proxies report progress and the final video URL as free text inside
 * the deltas of an OpenAI-style stream, each in its own dialect
 * (shared/sora-api.md §2.4).  This follows the recipe of §2.7: accumulate
 * the text, scan it line by line once each line is complete (so fragments
 * the size of a token, E8, are read as whole lines, and a long stream
 * costs linear time), and decide at the end between a URL, an error and a
 * dropped stream.  No regex library: the patterns are short, they must
 * match UTF-8 bytes, and hand-written scanners state the pending-number
 * and URL-boundary rules exactly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wrk_parse.h"

enum { LVL_OUTPUT, LVL_JSON, LVL_SRC, LVL_MD, LVL_BARE };

/* How much of a line scan_line may look at. */
enum scan_mode {
	SCAN_LINE,	/* a complete line of T */
	SCAN_FINAL,	/* the unterminated last line, at EOF */
	SCAN_RAW,	/* a payload that was not JSON: URLs only */
};

/* UTF-8 spellings of the non-ASCII markers. */
#define U_JINDU "\xe8\xbf\x9b\xe5\xba\xa6"	/* 进度 */
#define U_HOURGLASS "\xe2\x8c\x9b"		/* ⌛ */
#define U_RUNNER "\xf0\x9f\x8f\x83"		/* 🏃 */
#define U_CHECK "\xe2\x9c\x85"			/* ✅ */
#define U_CROSS "\xe2\x9d\x8c"			/* ❌ */

static const char *const queued_words[] = {
	"\xe6\x8e\x92\xe9\x98\x9f",	/* 排队 */
	"\xe9\x98\x9f\xe5\x88\x97",	/* 队列 */
	"Queu", U_HOURGLASS, NULL,
};
static const char *const running_words[] = {
	"\xe7\x94\x9f\xe6\x88\x90\xe4\xb8\xad",	/* 生成中 */
	"Generating", "processing", U_RUNNER, NULL,
};
static const char *const done_words[] = {
	"\xe7\x94\x9f\xe6\x88\x90\xe5\xae\x8c\xe6\x88\x90",	/* 生成完成 */
	"\xe7\x94\x9f\xe6\x88\x90\xe6\x88\x90\xe5\x8a\x9f",	/* 生成成功 */
	"Complete", "successfully", U_CHECK, NULL,
};
/* Compared without case; the ASCII ones are written lower-case. */
static const char *const failure_words[] = {
	U_CROSS, "\xe5\xa4\xb1\xe8\xb4\xa5",	/* 失败 */
	"failed", "error", "blocked", "\xe8\xbf\x9d\xe8\xa7\x84", /* 违规 */
	"policy", "sentinel", NULL,
};
static const char *const transient_words[] = {
	"timeout", "timed out", "no available", "cooling down",
	"rate limit", "rate_limit", "overloaded", "temporarily",
	"try again", "unavailable", NULL,
};

static char
lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Does s (n bytes) start with `w` (lower-case ASCII), ignoring case? */
static bool
ci_prefix(const char *s, size_t n, const char *w)
{
	size_t k = strlen(w), i;

	if (k > n)
		return false;
	for (i = 0; i < k; i++)
		if (lower(s[i]) != w[i])
			return false;
	return true;
}

/* First position of any word in s, or -1; `ci` folds ASCII case. */
static long
find_any(const char *s, size_t n, const char *const *words, bool ci)
{
	long best = -1;
	size_t i, k;

	for (; *words != NULL; words++) {
		k = strlen(*words);
		for (i = 0; i + k <= n; i++) {
			if (ci ? ci_prefix(s + i, n - i, *words) :
			    memcmp(s + i, *words, k) == 0) {
				if (best < 0 || (long)i < best)
					best = (long)i;
				break;
			}
		}
	}
	return best;
}

void
wrk_chat_init(struct wrk_chat *c)
{
	memset(c, 0, sizeof(*c));
	c->progress = -1;
}

void
wrk_chat_fini(struct wrk_chat *c)
{
	int i;

	free(c->last_json);
	free(c->url);
	free(c->error);
	free(c->text);
	free(c->fail_line);
	for (i = 0; i < WRK_URL_LEVELS; i++)
		free(c->cand[i].url);
	memset(c, 0, sizeof(*c));
	c->progress = -1;
}

bool
wrk_chat_has_url(const struct wrk_chat *c)
{
	int i;

	for (i = 0; i < WRK_URL_LEVELS; i++)
		if (c->cand[i].url != NULL)
			return true;
	return false;
}

/* ---------------------------------------------------------------- URLs */

static bool
url_stop(unsigned char ch)
{
	return ch <= 0x20 || ch >= 0x7f || strchr(")]\"'<>`\\", ch) != NULL;
}

/* Does the path of u (before ? or #) end in one of exts? */
static bool
path_ends(const char *u, const char *const *exts)
{
	size_t n = strcspn(u, "?#"), k;

	for (; *exts != NULL; exts++) {
		k = strlen(*exts);
		if (n >= k && ci_prefix(u + n - k, k, *exts))
			return true;
	}
	return false;
}

static const char *const video_exts[] = { ".mp4", ".mov", ".webm", NULL };
static const char *const image_exts[] = {
	".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".svg", ".ico",
	".avif", ".heic", ".tif", ".tiff", NULL,
};

/*
 * Records candidate u (n bytes, as found) at `level`.  A later candidate
 * replaces an earlier one unless it scores lower: .mp4/.mov/.webm counts
 * 2, coming after a success marker 1.
 */
static int
consider(struct wrk_chat *c, int level, const char *u, size_t n, bool after)
{
	char *buf, *r, *w;
	int score;

	if (n > WRK_URL_MAX)
		return 0;
	buf = malloc(n + 1);
	if (buf == NULL)
		return VG_ENOMEM;
	memcpy(buf, u, n);
	buf[n] = '\0';
	for (r = w = buf; *r != '\0'; r++) {	/* &amp; → & */
		*w++ = *r;
		if (*r == '&' && strncmp(r + 1, "amp;", 4) == 0)
			r += 4;
	}
	*w = '\0';
	while (w > buf && strchr(".,~", w[-1]) != NULL)
		*--w = '\0';
	for (r = buf; *r != ':' && *r != '\0'; r++)	/* HTTPS: → https: */
		*r = lower(*r);
	score = 2 * path_ends(buf, video_exts) + after;
	if (!vg_http_url_valid(buf) || path_ends(buf, image_exts) ||
	    strstr(buf, "asyncdata.net/web") != NULL ||
	    strstr(buf, "asyncdata.net/source") != NULL ||
	    (c->input_image != NULL && strcmp(buf, c->input_image) == 0) ||
	    (c->cand[level].url != NULL && score < c->cand[level].score)) {
		free(buf);
		return 0;
	}
	free(c->cand[level].url);
	c->cand[level].url = buf;
	c->cand[level].score = score;
	return 0;
}

/* Skips spaces backwards from p (exclusive) down to 0. */
static size_t
back_spaces(const char *s, size_t p)
{
	while (p > 0 && (s[p - 1] == ' ' || s[p - 1] == '\t'))
		p--;
	return p;
}

/* Steps back over a quote at p-1, and a backslash escaping it. */
static bool
back_quote(const char *s, size_t *p)
{
	if (*p == 0 || (s[*p - 1] != '"' && s[*p - 1] != '\''))
		return false;
	(*p)--;
	if (*p > 0 && s[*p - 1] == '\\')
		(*p)--;
	return true;
}

/* The level of the URL starting at s[p], from what precedes it. */
static int
url_level(const char *s, size_t p)
{
	size_t q = p, k;

	if (p >= 2 && s[p - 1] == '(' && s[p - 2] == ']')
		return LVL_MD;
	if (!back_quote(s, &q))
		return LVL_BARE;
	q = back_spaces(s, q);
	if (q > 0 && s[q - 1] == '=') {		/* src='...' src = "..." */
		q = back_spaces(s, q - 1);
		return q >= 3 && ci_prefix(s + q - 3, 3, "src") ? LVL_SRC :
		    LVL_BARE;
	}
	if (q == 0 || s[q - 1] != ':')
		return LVL_BARE;
	q = back_spaces(s, q - 1);		/* "url": "..." */
	if (!back_quote(s, &q))
		return LVL_BARE;
	for (k = q; k > 0 && s[k - 1] != '"' && s[k - 1] != '\\'; k--)
		;
	if (k == 0)
		return LVL_BARE;
	if ((q - k == 3 && memcmp(s + k, "url", 3) == 0) ||
	    (q - k == 9 && memcmp(s + k, "video_url", 9) == 0))
		return LVL_JSON;
	return LVL_BARE;
}

/*
 * Finds the URLs of one line.  `open_ok` accepts a URL that runs to the
 * end of s (at the end of T it may still be growing).  `succ` is the
 * position of the line's first success marker, or -1.
 */
static int
scan_urls(struct wrk_chat *c, const char *s, size_t n, bool open_ok,
    long succ)
{
	size_t i = 0, e;
	int rv;

	while (i + 7 < n) {
		if (!ci_prefix(s + i, n - i, "http://") &&
		    !ci_prefix(s + i, n - i, "https://")) {
			i++;
			continue;
		}
		for (e = i; e < n && !url_stop((unsigned char)s[e]); e++)
			;
		if (e < n || open_ok) {
			rv = consider(c, url_level(s, i), s + i, e - i,
			    c->success_seen || (succ >= 0 && (size_t)succ < i));
			if (rv < 0)
				return rv;
		}
		i = e;
	}
	return 0;
}

/* Records "url" / "video_url" string members of a chunk object. */
static int
json_urls(struct wrk_chat *c, const json_t *o)
{
	static const char *const keys[] = { "url", "video_url" };
	const json_t *v;
	size_t i;
	int rv;

	for (i = 0; i < 2; i++) {
		v = json_object_get(o, keys[i]);
		if (!json_is_string(v))
			continue;
		rv = consider(c, LVL_JSON, json_string_value(v),
		    json_string_length(v), true);
		if (rv < 0)
			return rv;
	}
	return 0;
}

/* ------------------------------------------------------------ progress */

static bool
progress_follow(char ch)
{
	return ch == '%' || ch == '.' || ch == ' ' || ch == '\t' ||
	    ch == '\r' || ch == '\n' || ch == '\v' || ch == '\f';
}

/*
 * The largest "(进度|progress)[^0-9\n]{0,12}N" value in one line, or -1.
 * The gap counts characters, not bytes, as the regex of §2.7 would on
 * UTF-8 text.  A number running to the end of s is followed by the
 * newline when `complete`, else it is pending and does not count.
 */
static int
progress_scan(const char *s, size_t n, bool complete)
{
	size_t i, j, d, gap;
	int best = -1, v;

	for (i = 0; i < n; i++) {
		if (n - i >= 6 && memcmp(s + i, U_JINDU, 6) == 0)
			j = i + 6;
		else if (ci_prefix(s + i, n - i, "progress"))
			j = i + 8;
		else
			continue;
		for (gap = 0; j < n && !is_digit(s[j]) && s[j] != '\n'; j++)
			if (((unsigned char)s[j] & 0xc0) != 0x80 && ++gap > 12)
				break;
		if (j >= n || !is_digit(s[j]))
			continue;
		for (d = j, v = 0; d < n && is_digit(s[d]) && d - j < 4; d++)
			v = v * 10 + (s[d] - '0');
		if (d - j > 3 || (d == n && !complete) ||
		    (d < n && !progress_follow(s[d])))
			continue;
		if (v > 100)
			v = 100;
		if (v > best)
			best = v;
		i = d - 1;
	}
	return best;
}

/* ---------------------------------------------------------------- lines */

static bool
fence_line(const char *s, size_t n, const char **rest, size_t *rn)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	if (n < 3 || memcmp(s, "```", 3) != 0)
		return false;
	*rest = s + 3;
	*rn = n - 3;
	return true;
}

/*
 * Raises c->phase by the keywords in s (it never goes back) and returns
 * the position of the first success marker, or -1.
 */
static long
phase_scan(struct wrk_chat *c, const char *s, size_t n)
{
	long succ = find_any(s, n, done_words, false);

	if (succ >= 0)
		c->phase = WRK_PHASE_DONE;
	else if (c->phase < WRK_PHASE_RUNNING &&
	    find_any(s, n, running_words, false) >= 0)
		c->phase = WRK_PHASE_RUNNING;
	else if (c->phase < WRK_PHASE_QUEUED &&
	    find_any(s, n, queued_words, false) >= 0)
		c->phase = WRK_PHASE_QUEUED;
	return succ;
}

/* Keeps a failure line to show the user: without quote and bold marks. */
static int
keep_fail_line(struct wrk_chat *c, const char *s, size_t n)
{
	char *m;

	while (n > 0 && strchr(" \t>*#", *s) != NULL) {
		s++;
		n--;
	}
	while (n > 0 && strchr(" \t\r*", s[n - 1]) != NULL)
		n--;
	m = wrk_msg_clean(s, n);
	if (m == NULL)
		return VG_ENOMEM;
	if (m[0] == '\0') {
		free(m);
		return 0;
	}
	free(c->fail_line);
	c->fail_line = m;
	return 0;
}

static int
scan_line(struct wrk_chat *c, const char *s, size_t n, enum scan_mode mode,
    bool open_ok)
{
	const char *rest;
	size_t rn;
	long succ = -1;
	bool fence;
	int v, rv;

	if (mode == SCAN_RAW)
		return scan_urls(c, s, n, true, -1);
	fence = fence_line(s, n, &rest, &rn);
	if (fence && mode == SCAN_LINE) {
		if (c->in_fence)
			c->in_fence = false;
		else if (ci_prefix(rest, rn, "json"))
			c->in_fence = true;
	}
	if (!fence && !c->in_fence) {
		/* the prompt echo in a ```json fence says nothing about us */
		v = progress_scan(s, n, mode == SCAN_LINE);
		if (v > c->progress)
			c->progress = v;
		succ = phase_scan(c, s, n);
		if (find_any(s, n, failure_words, true) >= 0) {
			rv = keep_fail_line(c, s, n);
			if (rv < 0)
				return rv;
			c->fail_policy = wrk_text_is_policy(s, n, true);
		}
	}
	rv = scan_urls(c, s, n, mode == SCAN_LINE || open_ok, succ);
	if (succ >= 0)
		c->success_seen = true;
	return rv;
}

/*
 * T ends inside a line: only progress and phase may be read from it, and
 * only near its end.  A match that the new text completes ends in that
 * text, and a keyword, its gap and a number span at most 8 + 12 x 4 + 3
 * bytes, so looking back PARTIAL_BACK bytes from where the last scan
 * stopped keeps a stream of tiny chunks without newlines linear.
 */
#define PARTIAL_BACK 64

static void
scan_partial(struct wrk_chat *c)
{
	const char *line = c->text + c->line_off, *rest;
	size_t w, rn;
	int v;

	if (c->in_fence || fence_line(line, c->text_len - c->line_off, &rest,
	    &rn))
		return;
	w = c->scanned > PARTIAL_BACK ? c->scanned - PARTIAL_BACK : 0;
	if (w < c->line_off)
		w = c->line_off;
	v = progress_scan(c->text + w, c->text_len - w, false);
	if (v > c->progress)
		c->progress = v;
	(void)phase_scan(c, c->text + w, c->text_len - w);
}

/* Scans the lines of T completed by new text, then the unfinished one. */
static int
scan_text(struct wrk_chat *c)
{
	const char *nl;
	size_t from, start;
	int rv;

	if (c->text == NULL)
		return 0;
	from = c->scanned > c->line_off ? c->scanned : c->line_off;
	while ((nl = memchr(c->text + from, '\n', c->text_len - from)) !=
	    NULL) {
		start = c->line_off;
		c->line_off = from = (size_t)(nl - c->text) + 1;
		rv = scan_line(c, c->text + start, (size_t)(nl - c->text) -
		    start, SCAN_LINE, true);
		if (rv < 0)
			return rv;
	}
	scan_partial(c);
	c->scanned = c->text_len;
	return 0;
}

static int
text_add(struct wrk_chat *c, const json_t *v)
{
	size_t n, cap;
	char *nt;

	if (!json_is_string(v) || (n = json_string_length(v)) == 0)
		return 0;
	if (c->text_len + n > WRK_CHAT_MAX_TEXT)
		return VG_ETOOBIG;
	if (c->text_len + n + 1 > c->text_cap) {
		cap = c->text_cap < 1024 ? 1024 : c->text_cap;
		while (cap < c->text_len + n + 1)
			cap *= 2;
		if (cap > WRK_CHAT_MAX_TEXT + 1)
			cap = WRK_CHAT_MAX_TEXT + 1;
		nt = realloc(c->text, cap);
		if (nt == NULL)
			return VG_ENOMEM;
		c->text = nt;
		c->text_cap = cap;
	}
	memcpy(c->text + c->text_len, json_string_value(v), n);
	c->text_len += n;
	c->text[c->text_len] = '\0';
	return 0;
}

/* --------------------------------------------------------------- errors */

static int
set_error(struct wrk_chat *c, enum wrk_chat_outcome outcome, const char *msg)
{
	free(c->error);
	c->error = strdup(msg);
	c->outcome = outcome;
	c->ended = true;
	return c->error == NULL ? VG_ENOMEM : 0;
}

/* Takes ownership of info->message. */
static int
error_from(struct wrk_chat *c, struct wrk_err_info *info)
{
	enum wrk_chat_outcome out = WRK_CHAT_ERROR_PERMANENT;
	const char *m = info->message;

	if (info->policy)
		out = WRK_CHAT_ERROR_POLICY;
	else if ((m != NULL && find_any(m, strlen(m), transient_words,
	    true) >= 0) || find_any(info->code, strlen(info->code),
	    transient_words, true) >= 0)
		out = WRK_CHAT_ERROR_TRANSIENT;
	if (m == NULL || m[0] == '\0')
		return set_error(c, out, "the provider reported an error");
	free(c->error);
	c->error = info->message;
	info->message = NULL;
	c->outcome = out;
	c->ended = true;
	return 0;
}

int
wrk_chat_error_event(struct wrk_chat *c, const char *data, size_t len)
{
	struct wrk_err_info info = { 0 };
	json_error_t jerr;
	json_t *root;
	int rv;

	if (c->outcome != WRK_CHAT_PENDING)
		return 0;
	root = json_loadb(data, len, 0, &jerr);
	rv = wrk_err_from_json(root, true, &info);
	json_decref(root);
	if (rv < 0)
		goto out;
	if (rv == 0) {		/* plain text */
		info.message = wrk_msg_clean(data, len);
		if (info.message == NULL) {
			rv = VG_ENOMEM;
			goto out;
		}
		info.policy = wrk_text_is_policy(data, len, false);
	}
	rv = error_from(c, &info);
out:
	wrk_err_info_fini(&info);
	return rv;
}

/* --------------------------------------------------------------- chunks */

static int
keep_json(struct wrk_chat *c, const char *raw, size_t n)
{
	char *p;

	if (n > WRK_CHAT_MAX_LAST_JSON)
		return 0;
	p = realloc(c->last_json, n + 1);
	if (p == NULL)
		return VG_ENOMEM;
	memcpy(p, raw, n);
	p[n] = '\0';
	c->last_json = p;
	return 0;
}

static void
stage_of(struct wrk_chat *c, const json_t *o)
{
	const json_t *st = json_object_get(json_object_get(o, "wm"), "stage");

	if (json_is_string(st))
		snprintf(c->wm_stage, sizeof(c->wm_stage), "%s",
		    json_string_value(st));
}

static int
chunk(struct wrk_chat *c, const json_t *root, const char *raw, size_t n)
{
	struct wrk_err_info info = { 0 };
	const json_t *ch, *delta, *msg, *out, *fr;
	size_t i;
	int rv;

	c->chunks++;
	rv = keep_json(c, raw, n);
	if (rv < 0)
		goto out;
	rv = wrk_err_from_json(root, false, &info);
	if (rv != 0) {
		if (rv > 0)
			rv = error_from(c, &info);
		goto out;
	}
	if ((rv = json_urls(c, root)) < 0)
		goto out;
	stage_of(c, root);
	ch = json_array_get(json_object_get(root, "choices"), 0);
	if (!json_is_object(ch))
		goto out;	/* usage-only or unknown: nothing to read */
	delta = json_object_get(ch, "delta");
	msg = json_object_get(ch, "message");
	if ((rv = text_add(c, json_object_get(delta, "content"))) < 0 ||
	    (rv = text_add(c, json_object_get(delta,
	    "reasoning_content"))) < 0 ||
	    (rv = text_add(c, json_object_get(msg, "content"))) < 0)
		goto out;
	out = json_object_get(delta, "output");
	if (!json_is_array(out))
		out = json_object_get(msg, "output");
	for (i = 0; i < json_array_size(out); i++) {
		const json_t *u = json_object_get(json_array_get(out, i),
		    "url");

		if (json_is_string(u) && (rv = consider(c, LVL_OUTPUT,
		    json_string_value(u), json_string_length(u), true)) < 0)
			goto out;
	}
	if ((rv = json_urls(c, ch)) < 0 || (rv = json_urls(c, delta)) < 0 ||
	    (rv = json_urls(c, msg)) < 0)
		goto out;
	stage_of(c, ch);
	stage_of(c, delta);
	fr = json_object_get(ch, "finish_reason");
	if (json_is_string(fr) && json_string_length(fr) > 0) {
		for (i = 0; i + 1 < sizeof(c->finish_reason) &&
		    json_string_value(fr)[i] != '\0'; i++)
			c->finish_reason[i] = lower(json_string_value(fr)[i]);
		c->finish_reason[i] = '\0';
		c->ended = true;
	}
	rv = scan_text(c);
out:
	wrk_err_info_fini(&info);
	return rv;
}

/* A payload that is not JSON: count it, and look for a URL anyway. */
static int
malformed(struct wrk_chat *c, const char *s, size_t n)
{
	size_t k;
	int rv;

	if (++c->malformed > WRK_CHAT_MAX_MALFORMED)
		return VG_EPROTO;
	while (n > 0) {
		for (k = 0; k < n && s[k] != '\r' && s[k] != '\n'; k++)
			;
		rv = scan_line(c, s, k, SCAN_RAW, true);
		if (rv < 0)
			return rv;
		if (k < n)
			k++;
		s += k;
		n -= k;
	}
	return 0;
}

static bool
space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int
event(struct wrk_chat *c, const char *data, size_t len)
{
	json_error_t jerr;
	json_t *root;
	size_t off = 0, used;
	int rv;

	for (;;) {
		while (off < len && space(data[off]))
			off++;
		if (off == len || c->outcome != WRK_CHAT_PENDING)
			return 0;
		if (len - off >= 6 && memcmp(data + off, "[DONE]", 6) == 0) {
			c->done = c->ended = true;
			return 0;
		}
		root = json_loadb(data + off, len - off,
		    JSON_DISABLE_EOF_CHECK, &jerr);
		if (!json_is_object(root)) {
			json_decref(root);
			return malformed(c, data + off, len - off);
		}
		used = (size_t)jerr.position;
		if (used == 0 || used > len - off)
			used = len - off;
		rv = chunk(c, root, data + off, used);
		json_decref(root);
		if (rv < 0)
			return rv;
		off += used;
	}
}

int
wrk_chat_event(struct wrk_chat *c, const char *data, size_t len)
{
	if (c->fatal < 0)
		return c->fatal;
	if (c->done || c->outcome != WRK_CHAT_PENDING)
		return 0;	/* the stream has already ended */
	c->fatal = event(c, data, len);
	return c->fatal;
}

int
wrk_chat_finish(struct wrk_chat *c, bool clean_eof)
{
	bool ended = c->done || c->finish_reason[0] != '\0';
	int rv, i;

	if (c->outcome != WRK_CHAT_PENDING)
		return 0;
	switch (c->fatal) {
	case 0:
		break;
	case VG_ETOOBIG:
		return set_error(c, WRK_CHAT_ERROR_PERMANENT,
		    "the provider sent more text than the worker accepts");
	case VG_EPROTO:
		return set_error(c, WRK_CHAT_ERROR_PERMANENT,
		    "the provider sent a malformed stream");
	default:
		return set_error(c, WRK_CHAT_ERROR_TRANSIENT,
		    "the worker ran out of memory reading the stream");
	}
	if (c->line_off < c->text_len) {
		rv = scan_line(c, c->text + c->line_off, c->text_len -
		    c->line_off, SCAN_FINAL, clean_eof || ended);
		c->line_off = c->text_len;
		if (rv < 0)
			return rv;
	}
	for (i = 0; i < WRK_URL_LEVELS; i++) {
		if (c->cand[i].url != NULL) {
			c->url = c->cand[i].url;
			c->cand[i].url = NULL;
			c->outcome = WRK_CHAT_SUCCESS;
			c->truncated = !ended;
			return 0;
		}
	}
	if (c->fail_line != NULL && (ended || c->fail_policy)) {
		c->error = c->fail_line;
		c->fail_line = NULL;
		c->outcome = c->fail_policy ? WRK_CHAT_ERROR_POLICY :
		    WRK_CHAT_ERROR_PERMANENT;
		return 0;
	}
	if (ended)
		return set_error(c, WRK_CHAT_ERROR_PERMANENT,
		    "the provider finished without a video URL");
	return set_error(c, WRK_CHAT_ERROR_TRANSIENT,
	    "the stream ended before the provider sent a video URL");
}
