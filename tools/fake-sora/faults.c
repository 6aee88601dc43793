/*
 * tools/fake-sora/faults.c: which fault a request gets, and the faults
 * that are plain HTTP error replies.
 *
 * A prompt carries up to FS_MARKERS_MAX markers [fault:NAME], each
 * optionally limited to the first K requests (*K) and aimed at one
 * request kind (@chat, @create, @poll, @content).  Without @ a fault aims
 * at the request where it makes sense: errors at the submitting call
 * (chat or create), download faults at the download, and so on (the
 * table below).  Uses are counted per prompt and marker, so
 * "[fault:500*1]" fails the first create of that prompt and lets the
 * retry through.  An X-Fake-Fault header applies to its own request only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_sora.h"

#define NA (-1)			/* the fault means nothing in this flow */

struct fault_def {
	enum fs_fault f;
	const char *name;
	int chat_kind;		/* default target in the chat flow */
	int videos_kind;	/* ... and in the videos flow */
	const char *help;
};

static const struct fault_def faults[] = {
	{ FS_F_429, "429", FS_CHAT, FS_CREATE,
	    "429 rate_limit_exceeded, Retry-After: 1 (seconds)" },
	{ FS_F_429_MS, "429-ms", FS_CHAT, FS_CREATE,
	    "429 with only retry-after-ms: 1500" },
	{ FS_F_429_DATE, "429-date", FS_CHAT, FS_CREATE,
	    "429 with Retry-After as an HTTP-date 2 s ahead" },
	{ FS_F_429_FAR, "429-far", FS_CHAT, FS_CREATE,
	    "429 with Retry-After: an HTTP-date in 2090" },
	{ FS_F_429_BIG, "429-big", FS_CHAT, FS_CREATE,
	    "429 with Retry-After: 300 (above the SDK's 2 min cap)" },
	{ FS_F_429_NONE, "429-none", FS_CHAT, FS_CREATE,
	    "429 without any retry hint" },
	{ FS_F_QUOTA, "quota", FS_CHAT, FS_CREATE,
	    "429 insufficient_quota (must not be retried)" },
	{ FS_F_500, "500", FS_CHAT, FS_CREATE,
	    "500 server_error JSON" },
	{ FS_F_502_HTML, "502-html", FS_CHAT, FS_CREATE,
	    "502 with an nginx HTML body" },
	{ FS_F_503, "503", FS_CHAT, FS_CREATE,
	    "503 overloaded JSON" },
	{ FS_F_400, "400", FS_CHAT, FS_CREATE,
	    "400 invalid_request_error (seconds given as an integer)" },
	{ FS_F_401, "401", FS_CHAT, FS_CREATE,
	    "401 invalid_api_key" },
	{ FS_F_404, "404", FS_CONTENT, FS_CONTENT,
	    "404 JSON (an expired download)" },
	{ FS_F_STALL, "stall", FS_CHAT, FS_CREATE,
	    "chat: 200, two progress chunks, then silence until the client "
	    "leaves; videos: progress freezes, status stays in_progress" },
	{ FS_F_KEEPALIVE_ONLY, "keepalive-only", FS_CHAT, FS_CREATE,
	    "chat: only ': keep-alive' comments, one per step; videos: "
	    "status stays queued" },
	{ FS_F_NEVER_ENDS, "never-ends", FS_CHAT, FS_CREATE,
	    "chat: progress chunks forever, no URL; videos: progress stops "
	    "at 99, never completes" },
	{ FS_F_DROP, "drop", FS_CHAT, FS_CONTENT,
	    "chat: three progress chunks, then the connection is cut (no "
	    "[DONE], no URL); download: cut after half the bytes" },
	{ FS_F_DROP_AFTER_URL, "drop-after-url", FS_CHAT, NA,
	    "chat: the final URL chunk, then the connection is cut" },
	{ FS_F_MALFORMED, "malformed", FS_CHAT, NA,
	    "chat: a BOM, truncated JSON, a raw text data line, CRLF line "
	    "ends, two events without a blank line; then a valid URL" },
	{ FS_F_POLICY, "policy", FS_CHAT, FS_CREATE,
	    "chat: in-stream error with sentinel_block nested in message, "
	    "then [DONE]; videos: status failed, moderation_blocked" },
	{ FS_F_NO_URL, "no-url", FS_CHAT, FS_CONTENT,
	    "chat: finish_reason stop and [DONE] without a URL; videos: "
	    "/content answers 404" },
	{ FS_F_FAIL_LATE, "fail-late", FS_CHAT, FS_CREATE,
	    "chat: progress to 99 then an in-stream timeout error; videos: "
	    "status failed after progress reached 99" },
	{ FS_F_URL_FILE, "url-file", FS_CHAT, NA,
	    "chat: the final URL is file:///etc/passwd" },
	{ FS_F_URL_LOOPBACK, "url-loopback", FS_CHAT, NA,
	    "chat: the final URL is http://127.0.0.1:<decoy port>/media/"
	    "<id>.mp4, a decoy that serves a valid video" },
	{ FS_F_URL_REDIRECT_PRIVATE, "url-redirect-private", FS_CHAT,
	    FS_CONTENT,
	    "chat: the final URL is our /redirect, a 302 to http://"
	    "127.0.0.2:<port>/media/<id>.mp4 (a decoy); videos: /content "
	    "answers that 302" },
	{ FS_F_HUGE_BODY, "huge-body", FS_CHAT, FS_CONTENT,
	    "chat: 50 MiB of padded progress chunks, then the URL; "
	    "download: a 50 MiB video (Content-Length set)" },
	{ FS_F_CHUNKED_20M, "chunked-20m", FS_CHAT, FS_CONTENT,
	    "chat: 20 MiB of padded progress chunks; download: a 20 MiB "
	    "chunked body without Content-Length" },
	{ FS_F_HUGE_LINE, "huge-line", FS_CHAT, NA,
	    "chat: a 4 MiB data: line without a newline, then the end" },
	{ FS_F_SLOW, "slow", FS_CONTENT, FS_CONTENT,
	    "download: the body trickles in --steps pieces, --step-ms apart" },
	{ FS_F_CONTENT_REDIRECT, "content-redirect", FS_CONTENT, FS_CONTENT,
	    "download: 302 to /media/<id>.mp4 on fake-sora itself" },
};

#define NFAULTS (sizeof(faults) / sizeof(faults[0]))

static const char *const kind_names[FS_KIND_MAX] = {
	[FS_CHAT] = "chat",
	[FS_CREATE] = "create",
	[FS_POLL] = "poll",
	[FS_CONTENT] = "content",
};

static const struct fault_def *
fault_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NFAULTS; i++)
		if (strlen(faults[i].name) == len &&
		    strncmp(faults[i].name, name, len) == 0)
			return &faults[i];
	return NULL;
}

const char *
fs_fault_name(enum fs_fault f)
{
	size_t i;

	for (i = 0; i < NFAULTS; i++)
		if (faults[i].f == f)
			return faults[i].name;
	return "none";
}

void
fs_fault_help(FILE *out)
{
	size_t i;

	for (i = 0; i < NFAULTS; i++) {
		const char *p = faults[i].help;

		fprintf(out, "  %-21s", faults[i].name);
		/* wrap at 78 columns under the help column */
		while (*p != '\0') {
			size_t n = strlen(p), cut = n;

			if (n > 54) {
				cut = 54;
				while (cut > 0 && p[cut] != ' ')
					cut--;
				if (cut == 0)
					cut = 54;
			}
			fprintf(out, " %.*s\n", (int)cut, p);
			p += cut;
			while (*p == ' ')
				p++;
			if (*p != '\0')
				fprintf(out, "  %-21s", "");
		}
	}
}

/* One parsed marker. */
struct marker {
	const struct fault_def *def;
	int kind;		/* -1: the default target */
	unsigned limit;		/* 0: every request */
};

/*
 * parse_spec reads "NAME[@KIND][*K]" (either order) up to `end`.  False
 * when the name is unknown.
 */
static bool
parse_spec(const char *s, const char *end, struct marker *m)
{
	const char *p = s;
	size_t i;

	while (p < end && *p != '@' && *p != '*')
		p++;
	m->def = fault_find(s, (size_t)(p - s));
	m->kind = -1;
	m->limit = 0;
	if (m->def == NULL)
		return false;
	while (p < end) {
		const char *q = p + 1;

		while (q < end && *q != '@' && *q != '*')
			q++;
		if (*p == '*') {
			m->limit = (unsigned)strtoul(p + 1, NULL, 10);
		} else {
			size_t n = (size_t)(q - p - 1);

			for (i = 0; i < FS_KIND_MAX; i++)
				if (strlen(kind_names[i]) == n &&
				    strncmp(kind_names[i], p + 1, n) == 0)
					m->kind = (int)i;
			if (n == 8 && strncmp(p + 1, "download", 8) == 0)
				m->kind = FS_CONTENT;
		}
		p = q;
	}
	return true;
}

/* parse_markers finds the [fault:...] markers of a prompt. */
static size_t
parse_markers(const char *prompt, struct marker *m)
{
	const char *p = prompt;
	size_t n = 0;

	while (n < FS_MARKERS_MAX && (p = strstr(p, "[fault:")) != NULL) {
		const char *end;

		p += 7;
		end = strchr(p, ']');
		if (end == NULL)
			break;
		/* An unknown name still takes its slot, so the use counters
		 * of the others keep their index. */
		if (!parse_spec(p, end, &m[n]))
			m[n].def = NULL;
		n++;
		p = end + 1;
	}
	return n;
}

int
fs_style_marker(const char *prompt)
{
	const char *p = prompt ? strstr(prompt, "[style:") : NULL;

	if (p == NULL || p[7] < '0' || p[7] > '9')
		return -1;
	return atoi(p + 7) % FS_STYLES;
}

static void
count_fault(struct fs_server *srv, const char *prompt)
{
	struct fs_prompt *p;

	pthread_mutex_lock(&srv->mu);
	srv->total_faults++;
	if (prompt != NULL && (p = fs_prompt_get(srv, prompt)) != NULL)
		p->faults++;
	pthread_mutex_unlock(&srv->mu);
}

enum fs_fault
fs_fault_pick(struct fs_req *rq, const char *prompt, enum fs_flow flow,
    enum fs_kind kind)
{
	struct fs_server *srv = rq->srv;
	struct marker m[FS_MARKERS_MAX];
	enum fs_fault f = FS_F_NONE;
	const char *hdr;
	size_t i, n;

	hdr = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
	    "X-Fake-Fault");
	if (hdr != NULL && parse_spec(hdr, hdr + strlen(hdr), &m[0])) {
		count_fault(srv, prompt);
		fs_log(srv, "fault %s (header) on %s", m[0].def->name,
		    kind_names[kind]);
		return m[0].def->f;
	}
	if (prompt == NULL)
		return FS_F_NONE;
	n = parse_markers(prompt, m);
	if (n == 0)
		return FS_F_NONE;

	pthread_mutex_lock(&srv->mu);
	for (i = 0; i < n; i++) {
		struct fs_prompt *p;
		int target;

		if (m[i].def == NULL)
			continue;
		target = m[i].kind >= 0 ? m[i].kind :
		    flow == FS_FLOW_CHAT ? m[i].def->chat_kind :
		    m[i].def->videos_kind;
		if (target != (int)kind)
			continue;
		p = fs_prompt_get(srv, prompt);
		if (p == NULL)
			break;
		if (m[i].limit != 0 && p->uses[i] >= m[i].limit)
			continue;
		p->uses[i]++;
		p->faults++;
		srv->total_faults++;
		f = m[i].def->f;
		break;
	}
	pthread_mutex_unlock(&srv->mu);
	if (f != FS_F_NONE)
		fs_log(srv, "fault %s on %s", fs_fault_name(f),
		    kind_names[kind]);
	return f;
}

/* http_date formats t as an IMF-fixdate. */
static void
http_date(time_t t, char *out, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static enum MHD_Result
reply_429(struct fs_req *rq, const char *h1, const char *v1,
    const char *h2, const char *v2)
{
	const char *hdrs[] = { h1, v1, h2, v2, NULL };
	static const char body[] =
	    "{\"error\":{\"message\":\"Rate limit reached for requests. "
	    "Limit: 25, Used: 25, Requested: 1. Please try again later.\","
	    "\"type\":\"requests\",\"param\":null,"
	    "\"code\":\"rate_limit_exceeded\"}}";

	return fs_reply(rq, 429, "application/json", body, sizeof(body) - 1,
	    h1 != NULL ? hdrs : NULL);
}

bool
fs_fault_reply(struct fs_req *rq, enum fs_fault f, enum MHD_Result *ret)
{
	char date[64];
	struct tm far = { .tm_year = 2090 - 1900, .tm_mon = 0, .tm_mday = 1 };
	static const char html[] =
	    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
	    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
	    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

	switch (f) {
	case FS_F_429:
		*ret = reply_429(rq, "Retry-After", "1",
		    "x-ratelimit-remaining-requests", "0");
		return true;
	case FS_F_429_MS:
		*ret = reply_429(rq, "retry-after-ms", "1500", NULL, NULL);
		return true;
	case FS_F_429_DATE:
		http_date(time(NULL) + 2, date, sizeof(date));
		*ret = reply_429(rq, "Retry-After", date, NULL, NULL);
		return true;
	case FS_F_429_FAR:
		http_date(timegm(&far), date, sizeof(date));
		*ret = reply_429(rq, "Retry-After", date, NULL, NULL);
		return true;
	case FS_F_429_BIG:
		*ret = reply_429(rq, "Retry-After", "300",
		    "x-ratelimit-reset-requests", "5m0s");
		return true;
	case FS_F_429_NONE:
		*ret = reply_429(rq, NULL, NULL, NULL, NULL);
		return true;
	case FS_F_QUOTA:
		*ret = fs_reply_error(rq, 429,
		    "You exceeded your current quota, please check your plan "
		    "and billing details.", "insufficient_quota", NULL,
		    "insufficient_quota");
		return true;
	case FS_F_500:
		*ret = fs_reply_error(rq, 500,
		    "The server had an error while processing your request. "
		    "Sorry about that!", "server_error", NULL, NULL);
		return true;
	case FS_F_502_HTML:
		*ret = fs_reply(rq, 502, "text/html", html, sizeof(html) - 1,
		    NULL);
		return true;
	case FS_F_503:
		*ret = fs_reply_error(rq, 503,
		    "The engine is currently overloaded, please try again "
		    "later.", "server_error", NULL, NULL);
		return true;
	case FS_F_400:
		*ret = fs_reply_error(rq, 400,
		    "Invalid type for 'seconds': expected one of '4', '8', or "
		    "'12', but got an integer instead.",
		    "invalid_request_error", "seconds", "invalid_type");
		return true;
	case FS_F_401:
		*ret = fs_reply_error(rq, 401, "Incorrect API key provided",
		    "invalid_request_error", NULL, "invalid_api_key");
		return true;
	case FS_F_404:
		*ret = fs_reply_error(rq, 404,
		    "The requested video has expired.",
		    "invalid_request_error", NULL, "not_found");
		return true;
	default:
		return false;
	}
}
