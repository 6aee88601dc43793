/*
 * worker/videos.c: provider answers that are one JSON document.
 *
 * The video objects of the OpenAI Videos API and of the task-style proxies
 * (shared/sora-api.md §1.3, §3), the error envelopes of HTTP answers with
 * status ≥ 400 (§1.6, §2.5, §4), and the helpers that turn provider text
 * into a short message a user may read.  The providers vary field names
 * and types freely, so every lookup here tolerates absent, null and
 * oddly-typed fields.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wrk_parse.h"

#define NESTED_DEPTH 3		/* envelopes inside messages, at most */

const char *
wrk_class_name(enum wrk_class cls)
{
	switch (cls) {
	case WRK_CLASS_NONE:
		return "none";
	case WRK_CLASS_TRANSIENT:
		return "transient";
	case WRK_CLASS_RATE_LIMIT:
		return "rate_limit";
	case WRK_CLASS_PERMANENT:
		return "permanent";
	case WRK_CLASS_POLICY:
		return "policy";
	case WRK_CLASS_QUOTA:
		return "quota";
	case WRK_CLASS_AUTH:
		return "auth";
	}
	return "unknown";
}

bool
wrk_class_retryable(enum wrk_class cls)
{
	return cls == WRK_CLASS_TRANSIENT || cls == WRK_CLASS_RATE_LIMIT;
}

static char
lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* ASCII case-insensitive memmem; `needle` is lower-case. */
static const char *
ci_find(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle), i, j;

	if (k == 0 || k > n)
		return k == 0 ? s : NULL;
	for (i = 0; i + k <= n; i++) {
		for (j = 0; j < k && lower(s[i + j]) == needle[j]; j++)
			;
		if (j == k)
			return s + i;
	}
	return NULL;
}

static bool
ci_any(const char *s, size_t n, const char *const *words)
{
	for (; *words != NULL; words++)
		if (ci_find(s, n, *words) != NULL)
			return true;
	return false;
}

/*
 * Length of the valid UTF-8 character at s (at most n bytes), storing its
 * code point, or 0 when the bytes are not one (overlong forms, surrogates
 * and values above U+10FFFF included).
 */
static size_t
utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t k, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		k = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		k = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (k > n)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return k;
}

char *
wrk_msg_clean(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char *out;
	size_t i = 0, o = 0, k;
	bool space = false, cut = false;
	uint32_t cp;

	out = malloc(WRK_MSG_MAX + 1);
	if (out == NULL)
		return NULL;
	while (i < len) {
		const char *src = s + i;
		size_t w;

		k = utf8_char(u + i, len - i, &cp);
		if (k == 0) {	/* not UTF-8: show a '?' */
			k = 1;
			cp = '?';
			src = "?";
		}
		w = k;
		if (cp <= 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
		    cp == 0x2028 || cp == 0x2029) {
			space = o > 0;
			i += k;
			continue;
		}
		if (o + space + w > WRK_MSG_MAX) {
			cut = true;
			break;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		memcpy(out + o, src, w);
		o += w;
		i += k;
	}
	if (cut) {
		static const char ell[] = "\xe2\x80\xa6";	/* … */

		if (o > WRK_MSG_MAX - 3)
			o = WRK_MSG_MAX - 3;
		while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80)
			o--;
		while (o > 0 && out[o - 1] == ' ')
			o--;
		memcpy(out + o, ell, 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

bool
wrk_text_is_policy(const char *s, size_t len, bool loose)
{
	static const char *const strict[] = {
		"sentinel_block", "moderation_blocked", "content policy",
		"content_policy", "moderation", "content_filter",
		"safety system", NULL,
	};
	static const char *const plain[] = {
		"blocked", "policy", "sentinel", "\xe8\xbf\x9d\xe8\xa7\x84",
		"\xe6\x95\x8f\xe6\x84\x9f", NULL,	/* 违规 敏感 */
	};

	if (s == NULL)
		return false;
	return ci_any(s, len, strict) || (loose && ci_any(s, len, plain));
}

/* Copies a code that may be a string or a non-zero integer. */
static void
code_copy(char *dst, size_t cap, const json_t *v)
{
	if (json_is_string(v))
		snprintf(dst, cap, "%s", json_string_value(v));
	else if (json_is_integer(v) && json_integer_value(v) != 0)
		snprintf(dst, cap, "%lld", (long long)json_integer_value(v));
}

static const char *
str_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The message of a FastAPI-style detail: a string, {message}, [{msg}]. */
static const char *
detail_text(const json_t *d)
{
	const char *s;

	if (json_is_string(d))
		return json_string_value(d);
	if (json_is_array(d))
		d = json_array_get(d, 0);
	if (json_is_string(d))
		return json_string_value(d);
	if ((s = str_of(d, "message")) != NULL)
		return s;
	return str_of(d, "msg");
}

static int err_find(const json_t *root, bool any_message,
    struct wrk_err_info *info, int depth);

/*
 * sora2api reports upstream failures as "API request failed: 400 - {...}":
 * the real envelope is JSON text inside the message.  Fills *inner when
 * it finds one with a message.
 */
static int
unwrap(const char *msg, struct wrk_err_info *inner, int depth)
{
	const char *brace = strchr(msg, '{');
	json_error_t jerr;
	json_t *doc;
	int rv = 0;

	if (brace == NULL || depth >= NESTED_DEPTH)
		return 0;
	doc = json_loadb(brace, strlen(brace), JSON_DISABLE_EOF_CHECK, &jerr);
	if (json_is_object(doc))
		rv = err_find(doc, true, inner, depth + 1);
	json_decref(doc);
	if (rv == 1 && inner->message == NULL) {
		wrk_err_info_fini(inner);
		rv = 0;
	}
	return rv;
}

static int
err_find(const json_t *root, bool any_message, struct wrk_err_info *info,
    int depth)
{
	struct wrk_err_info inner = { 0 };
	const json_t *e = json_object_get(root, "error");
	const json_t *d = json_object_get(root, "detail");
	const char *msg = NULL, *type = NULL;
	char code[sizeof(info->code)] = "";
	int rv;

	memset(info, 0, sizeof(*info));
	if (json_is_object(e)) {
		msg = str_of(e, "message");
		if (msg == NULL)
			msg = str_of(e, "msg");
		code_copy(code, sizeof(code), json_object_get(e, "code"));
		type = str_of(e, "type");
		if ((msg == NULL || *msg == '\0') && code[0] == '\0' &&
		    (type == NULL || *type == '\0'))
			return 0;	/* PiAPI's {"code":0,"message":""} */
	} else if (json_is_string(e) && *json_string_value(e) != '\0') {
		msg = json_string_value(e);
	} else if (json_is_true(e)) {
		msg = str_of(root, "message");
		code_copy(code, sizeof(code), json_object_get(root, "code"));
	} else if (d != NULL && !json_is_null(d)) {
		msg = detail_text(d);
		if (msg == NULL)
			msg = "the provider reported an error";
	} else if (any_message) {
		msg = str_of(root, "message");
		if (msg == NULL)
			msg = str_of(root, "msg");
		if (msg == NULL)
			return 0;
		code_copy(code, sizeof(code), json_object_get(root, "code"));
	} else {
		return 0;
	}
	if (code[0] == '\0' && type != NULL)
		snprintf(code, sizeof(code), "%s", type);

	info->policy = wrk_text_is_policy(code, strlen(code), false) ||
	    (type != NULL && wrk_text_is_policy(type, strlen(type), false));
	if (msg != NULL) {
		info->policy |= wrk_text_is_policy(msg, strlen(msg), false);
		rv = unwrap(msg, &inner, depth);
		if (rv < 0)
			return rv;
	}
	if (inner.message != NULL) {
		info->message = inner.message;
		inner.message = NULL;
		info->policy |= inner.policy;
		if (inner.code[0] != '\0')
			memcpy(code, inner.code, sizeof(code));
	} else if (msg != NULL && *msg != '\0') {
		info->message = wrk_msg_clean(msg, strlen(msg));
		if (info->message == NULL)
			return VG_ENOMEM;
	}
	memcpy(info->code, code, sizeof(code));
	return 1;
}

int
wrk_err_from_json(const json_t *root, bool any_message,
    struct wrk_err_info *info)
{
	int rv;

	if (!json_is_object(root)) {
		memset(info, 0, sizeof(*info));
		return 0;
	}
	rv = err_find(root, any_message, info, 0);
	if (rv <= 0)
		wrk_err_info_fini(info);
	return rv;
}

void
wrk_err_info_fini(struct wrk_err_info *info)
{
	free(info->message);
	memset(info, 0, sizeof(*info));
}

/* ------------------------------------------------------------------ */

enum wrk_video_state
wrk_video_state_word(const char *s)
{
	static const struct {
		const char *word;
		enum wrk_video_state state;
	} words[] = {
		{ "queued", WRK_VIDEO_QUEUED },
		{ "pending", WRK_VIDEO_QUEUED },
		{ "submitted", WRK_VIDEO_QUEUED },
		{ "not_start", WRK_VIDEO_QUEUED },
		{ "created", WRK_VIDEO_QUEUED },
		{ "queueing", WRK_VIDEO_QUEUED },
		{ "in_progress", WRK_VIDEO_RUNNING },
		{ "processing", WRK_VIDEO_RUNNING },
		{ "running", WRK_VIDEO_RUNNING },
		{ "completed", WRK_VIDEO_DONE },
		{ "succeeded", WRK_VIDEO_DONE },
		{ "success", WRK_VIDEO_DONE },
		{ "failed", WRK_VIDEO_FAILED },
		{ "failure", WRK_VIDEO_FAILED },
		{ "error", WRK_VIDEO_FAILED },
		{ "cancelled", WRK_VIDEO_FAILED },
		{ "canceled", WRK_VIDEO_FAILED },
		{ "expired", WRK_VIDEO_FAILED },
		{ "timeout", WRK_VIDEO_FAILED },
	};
	size_t n, i;

	if (s == NULL)
		return WRK_VIDEO_UNKNOWN;
	while (*s == ' ')
		s++;
	n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		n--;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == n &&
		    ci_find(s, n, words[i].word) == s)
			return words[i].state;
	return WRK_VIDEO_UNKNOWN;
}

/* A number that may be sent as a string ("4", "100%", " 45.5 "). */
static bool
number_of(const json_t *v, double *out)
{
	const char *s;
	char *end;
	double d;

	if (json_is_number(v)) {
		d = json_number_value(v);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		d = strtod(s, &end);
		if (end == s)
			return false;
		while (*end == ' ')
			end++;
		if (*end == '%')
			end++;
		if (*end == 's')	/* "10s" */
			end++;
		while (*end == ' ')
			end++;
		if (*end != '\0')
			return false;
	} else {
		return false;
	}
	if (!isfinite(d))
		return false;
	*out = d;
	return true;
}

static const json_t *
path_get(const json_t *o, const char *a, const char *b, const char *c)
{
	o = json_object_get(o, a);
	if (b != NULL)
		o = json_object_get(o, b);
	if (c != NULL)
		o = json_object_get(o, c);
	return o;
}

static const char *
url_of(const json_t *o)
{
	const json_t *cand[7];
	size_t i;

	cand[0] = json_object_get(o, "url");
	cand[1] = json_object_get(o, "video_url");
	cand[2] = path_get(o, "output", "video", NULL);
	cand[3] = json_object_get(json_array_get(json_object_get(o, "data"),
	    0), "url");
	cand[4] = path_get(o, "content", "result_url", NULL);
	cand[5] = path_get(o, "meta_data", "url", NULL);
	cand[6] = path_get(o, "result", "video", "url");
	for (i = 0; i < 7; i++)
		if (json_is_string(cand[i]) &&
		    vg_http_url_valid(json_string_value(cand[i])))
			return json_string_value(cand[i]);
	return NULL;
}

static int
dup_to(char **dst, const char *s)
{
	if (s == NULL)
		return 0;
	*dst = strdup(s);
	return *dst == NULL ? VG_ENOMEM : 0;
}

int
wrk_video_parse(const char *json, size_t len, struct wrk_video_status *out)
{
	struct wrk_video_status v = { .progress = -1, .seconds = -1 };
	struct wrk_err_info ei = { 0 };
	const json_t *obj, *x;
	const char *word, *url;
	json_error_t jerr;
	json_t *root;
	char buf[128];
	double d;
	int rv;

	root = json_loadb(json, len, 0, &jerr);
	if (!json_is_object(root)) {
		rv = VG_EPROTO;
		goto out;
	}
	obj = root;
	x = json_object_get(root, "data");
	if (json_object_get(root, "status") == NULL && json_is_object(x))
		obj = x;	/* {"code":200,"data":{...},"message":...} */

	x = json_object_get(obj, "id");
	if (!json_is_string(x) && !json_is_integer(x))
		x = json_object_get(obj, "task_id");
	if (!json_is_string(x) && !json_is_integer(x) && obj != root)
		x = json_object_get(root, "id");
	if (json_is_string(x) && (rv = dup_to(&v.id, json_string_value(x))) < 0)
		goto out;
	if (json_is_integer(x)) {
		snprintf(buf, sizeof(buf), "%lld",
		    (long long)json_integer_value(x));
		if ((rv = dup_to(&v.id, buf)) < 0)
			goto out;
	}

	word = str_of(obj, "status");
	if (word == NULL)
		word = str_of(obj, "state");
	v.state = wrk_video_state_word(word);

	if (number_of(json_object_get(obj, "progress"), &d))
		v.progress = d < 0 ? 0 : d > 100 ? 100 : (int)d;

	url = url_of(obj);
	if (url == NULL && obj != root)
		url = url_of(root);
	if ((rv = dup_to(&v.url, url)) < 0)
		goto out;

	rv = wrk_err_from_json(obj, false, &ei);
	if (rv == 0 && obj != root)
		rv = wrk_err_from_json(root, false, &ei);
	if (rv < 0)
		goto out;
	if (rv == 1) {
		if (ei.message == NULL) {
			snprintf(buf, sizeof(buf), "the provider reported "
			    "error %.63s", ei.code);
			ei.message = wrk_msg_clean(buf, strlen(buf));
			if (ei.message == NULL) {
				rv = VG_ENOMEM;
				goto out;
			}
		}
		v.error = ei.message;
		ei.message = NULL;
		v.error_class = ei.policy || wrk_text_is_policy(v.error,
		    strlen(v.error), true) || wrk_text_is_policy(ei.code,
		    strlen(ei.code), true) ? WRK_CLASS_POLICY :
		    WRK_CLASS_PERMANENT;
		if (word == NULL)
			v.state = WRK_VIDEO_FAILED;
	} else if (v.state == WRK_VIDEO_FAILED) {
		snprintf(buf, sizeof(buf), "the provider reported the video "
		    "as %.60s", word);
		if ((v.error = wrk_msg_clean(buf, strlen(buf))) == NULL) {
			rv = VG_ENOMEM;
			goto out;
		}
		v.error_class = WRK_CLASS_PERMANENT;
	}

	x = json_object_get(obj, "seconds");
	if (!number_of(x, &d))
		x = json_object_get(obj, "duration");
	if (number_of(x, &d) && d >= 0)
		v.seconds = d;
	x = json_object_get(obj, "expires_at");
	if (json_is_integer(x))
		v.expires_at = json_integer_value(x);

	*out = v;
	memset(&v, 0, sizeof(v));
	rv = 0;
out:
	wrk_err_info_fini(&ei);
	wrk_video_status_fini(&v);
	json_decref(root);
	return rv;
}

void
wrk_video_status_fini(struct wrk_video_status *v)
{
	free(v->id);
	free(v->url);
	free(v->error);
	v->id = v->url = v->error = NULL;
}

/* ------------------------------------------------------------------ */

static bool
looks_like(const char *body, size_t len, char ch)
{
	size_t i = 0;

	while (i < len && (body[i] == ' ' || body[i] == '\t' ||
	    body[i] == '\r' || body[i] == '\n'))
		i++;
	return i < len && body[i] == ch;
}

static enum wrk_class
http_class(long status, const char *msg, const char *code, bool policy)
{
	static const char *const quota[] = {
		"insufficient_quota", "exceeded your current quota",
		"insufficient balance", "insufficient_balance",
		"insufficient credit", "quota exceeded", NULL,
	};
	bool q;

	q = ci_any(msg, strlen(msg), quota) || ci_any(code, strlen(code),
	    quota);
	if (policy)
		return WRK_CLASS_POLICY;
	if (status == 402 || ((status == 429 || status == 403) && q))
		return WRK_CLASS_QUOTA;
	if (status == 429)
		return WRK_CLASS_RATE_LIMIT;
	if (status == 401 || status == 403)
		return WRK_CLASS_AUTH;
	if (status == 408 || status == 409 || status >= 500)
		return WRK_CLASS_TRANSIENT;
	return WRK_CLASS_PERMANENT;
}

int
wrk_http_error_parse(long status, const char *body, size_t len,
    const char *content_type, struct wrk_http_error *out)
{
	struct wrk_http_error e = { .status = status };
	struct wrk_err_info ei = { 0 };
	const char *ct = content_type != NULL ? content_type : "";
	json_error_t jerr;
	json_t *root = NULL;
	char buf[96];
	int rv;

	if (status < 400)
		return VG_EINVAL;
	if (body == NULL)
		len = 0;
	if (len > 0 && (ci_find(ct, strlen(ct), "json") != NULL ||
	    looks_like(body, len, '{'))) {
		root = json_loadb(body, len, 0, &jerr);
		rv = wrk_err_from_json(root, true, &ei);
		if (rv < 0)
			goto out;
	}
	if (ei.message != NULL && ei.message[0] != '\0') {
		e.message = ei.message;
		ei.message = NULL;
	} else if (root == NULL && len > 0 && len <= 512 &&
	    (ct[0] == '\0' || ci_find(ct, strlen(ct), "text/plain") != NULL) &&
	    memchr(body, '<', len) == NULL && !looks_like(body, len, '{')) {
		/* a short plain-text body: kie's "This interface is ..." */
		e.message = wrk_msg_clean(body, len);
		if (e.message == NULL) {
			rv = VG_ENOMEM;
			goto out;
		}
	}
	if (e.message == NULL || e.message[0] == '\0') {
		free(e.message);
		snprintf(buf, sizeof(buf), "HTTP %ld from the provider", status);
		if ((e.message = strdup(buf)) == NULL) {
			rv = VG_ENOMEM;
			goto out;
		}
	}
	memcpy(e.code, ei.code, sizeof(e.code));
	e.cls = http_class(status, e.message, e.code, ei.policy ||
	    wrk_text_is_policy(e.message, strlen(e.message), false));
	*out = e;
	e.message = NULL;
	rv = 0;
out:
	wrk_err_info_fini(&ei);
	free(e.message);
	json_decref(root);
	return rv;
}

void
wrk_http_error_fini(struct wrk_http_error *e)
{
	free(e->message);
	e->message = NULL;
}
