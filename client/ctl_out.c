/*
 * client/ctl_out.c: what vgenctl prints.
 *
 * Every result is built once as a JSON object; --json prints it as one
 * line of JSON with the proto's snake_case field names, and people get
 * the same members as aligned "key: value" lines.  Errors go to stderr.
 * Text from the server is never trusted with the terminal: control bytes
 * are masked in human output, invalid UTF-8 is repaired in JSON.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* put_safe writes s, masking control bytes (ESC, CR, ...) as '?'. */
static void
put_safe(FILE *f, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

void
ctl_err(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fputs("vgenctl: ", stderr);
	put_safe(stderr, msg);
	fputc('\n', stderr);
}

int
ctl_rpc_fail(struct ctl *ctl, const struct vgen_status *st)
{
	size_t i, n;

	fprintf(stderr, "vgenctl: %s", vgen_status_name(st->code));
	if (st->message[0] != '\0') {
		fputs(": ", stderr);
		put_safe(stderr, st->message);
	}
	fputc('\n', stderr);
	n = st->nviolations;
	if (n > sizeof(st->violations) / sizeof(st->violations[0]))
		n = sizeof(st->violations) / sizeof(st->violations[0]);
	for (i = 0; i < n; i++) {
		fputs("  ", stderr);
		put_safe(stderr, st->violations[i].field);
		fputs(": ", stderr);
		put_safe(stderr, st->violations[i].description);
		fputc('\n', stderr);
	}

	switch (st->code) {
	case VGEN__V1__STATUS_CODE__UNAVAILABLE:
	case VGEN__V1__STATUS_CODE__DEADLINE_EXCEEDED:
		if (ctl->dialed != NULL)
			ctl_err("server: %s", ctl->dialed);
		return CTL_EXIT_UNREACH;
	case VGEN__V1__STATUS_CODE__UNAUTHENTICATED:
		if (ctl->sent_token)
			ctl_err("log in again with 'vgenctl login'");
		return CTL_EXIT_AUTH;
	default:
		return CTL_EXIT_RPC;
	}
}

/*
 * utf8_seq returns the length of the valid UTF-8 sequence at s, or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static size_t
utf8_seq(const unsigned char *s)
{
	unsigned long cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return n;
}

json_t *
ctl_json_str(const char *s)
{
	const unsigned char *p;
	char *fixed, *q;
	json_t *v;
	size_t n;

	if (s == NULL)
		s = "";
	for (p = (const unsigned char *)s; *p != '\0'; p += n)
		if ((n = utf8_seq(p)) == 0)
			break;
	if (*p == '\0')
		return json_string(s);

	/* Each bad byte becomes U+FFFD: three bytes for one. */
	fixed = malloc(strlen(s) * 3 + 1);
	if (fixed == NULL)
		return NULL;
	for (p = (const unsigned char *)s, q = fixed; *p != '\0'; p += n) {
		n = utf8_seq(p);
		if (n == 0) {
			memcpy(q, "\xef\xbf\xbd", 3);
			q += 3;
			n = 1;
		} else {
			memcpy(q, p, n);
			q += n;
		}
	}
	*q = '\0';
	v = json_string(fixed);
	free(fixed);
	return v;
}

int
ctl_time_format(const Google__Protobuf__Timestamp *ts, char *buf, size_t len)
{
	time_t t = (time_t)ts->seconds;
	struct tm tm;
	size_t n;
	int m;

	if (ts->nanos < 0 || ts->nanos > 999999999 ||
	    gmtime_r(&t, &tm) == NULL || tm.tm_year < 1 - 1900 ||
	    tm.tm_year > 9999 - 1900)
		return -EINVAL;
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return -ERANGE;

	/* Fractions as protobuf's JSON mapping: 0, 3, 6 or 9 digits. */
	if (ts->nanos == 0)
		m = snprintf(buf + n, len - n, "Z");
	else if (ts->nanos % 1000000 == 0)
		m = snprintf(buf + n, len - n, ".%03dZ", ts->nanos / 1000000);
	else if (ts->nanos % 1000 == 0)
		m = snprintf(buf + n, len - n, ".%06dZ", ts->nanos / 1000);
	else
		m = snprintf(buf + n, len - n, ".%09dZ", ts->nanos);
	if (m < 0 || (size_t)m >= len - n)
		return -ERANGE;
	return 0;
}

json_t *
ctl_json_time(const Google__Protobuf__Timestamp *ts)
{
	char buf[CTL_TIME_STRLEN];

	if (ts == NULL || ctl_time_format(ts, buf, sizeof(buf)) < 0)
		return json_null();
	return json_string(buf);
}

json_t *
ctl_json_enum(const ProtobufCEnumDescriptor *desc, int value)
{
	const ProtobufCEnumValue *ev;

	ev = protobuf_c_enum_descriptor_get_value(desc, value);
	if (ev == NULL)
		return json_integer(value);
	return json_string(ev->name);
}

/* ---- human output ----------------------------------------------------- */

/*
 * Keys are flattened to "parent.key" and "list[2].key"; human_walk either
 * measures the widest key (out NULL) or prints every line padded to w.
 */
static size_t
human_walk(const json_t *v, char *key, size_t klen, size_t cap, FILE *out,
    size_t w)
{
	const char *k;
	json_t *m;
	size_t i, max = 0, n;
	int len;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, m) {
			len = snprintf(key + klen, cap - klen, "%s%s",
			    klen ? "." : "", k);
			if (len < 0 || (size_t)len >= cap - klen)
				continue;
			n = human_walk(m, key, klen + len, cap, out, w);
			if (n > max)
				max = n;
		}
		key[klen] = '\0';
		return max;
	}
	if (json_is_array(v) && json_array_size(v) > 0 &&
	    json_is_object(json_array_get(v, 0))) {
		json_array_foreach(v, i, m) {
			len = snprintf(key + klen, cap - klen, "[%zu]", i);
			if (len < 0 || (size_t)len >= cap - klen)
				continue;
			n = human_walk(m, key, klen + len, cap, out, w);
			if (n > max)
				max = n;
		}
		key[klen] = '\0';
		return max;
	}
	if (out == NULL)
		return klen;

	fprintf(out, "%s:", key);
	if (!json_is_null(v) && !(json_is_string(v) &&
	    json_string_length(v) == 0) && !(json_is_array(v) &&
	    json_array_size(v) == 0))
		fprintf(out, "%*s", (int)(w - klen + 1), "");
	if (json_is_string(v)) {
		put_safe(out, json_string_value(v));
	} else if (json_is_integer(v)) {
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		fprintf(out, "%g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		fputs(json_is_true(v) ? "true" : "false", out);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m) {
			if (i > 0)
				fputs(", ", out);
			if (json_is_string(m))
				put_safe(out, json_string_value(m));
			else if (json_is_integer(m))
				fprintf(out, "%" JSON_INTEGER_FORMAT,
				    json_integer_value(m));
		}
	}
	fputc('\n', out);
	return klen;
}

int
ctl_print(struct ctl *ctl, const json_t *obj)
{
	char key[256] = "";
	size_t w;

	if (obj == NULL) {
		ctl_err("out of memory");
		return CTL_EXIT_RPC;
	}
	if (ctl->json) {
		if (json_dumpf(obj, stdout, JSON_COMPACT) < 0) {
			ctl_err("cannot write the output");
			return CTL_EXIT_RPC;
		}
		fputc('\n', stdout);
	} else {
		w = human_walk(obj, key, 0, sizeof(key), NULL, 0);
		human_walk(obj, key, 0, sizeof(key), stdout, w);
	}
	if (fflush(stdout) != 0) {
		ctl_err("cannot write the output");
		return CTL_EXIT_RPC;
	}
	return CTL_EXIT_OK;
}
