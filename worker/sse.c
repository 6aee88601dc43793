/*
 * worker/sse.c: an incremental Server-Sent Events decoder.
 *
 * libcurl hands the body over in pieces cut anywhere; this keeps the
 * unfinished line and the pending event between calls and follows the
 * WHATWG event-stream rules, with ceilings on both buffers so a provider
 * cannot make the worker grow without bound.  The splitting only looks
 * for CR and LF, bytes that never occur inside a multi-byte UTF-8
 * character, so characters cut between chunks come out whole.
 */
#include <stdlib.h>
#include <string.h>

#include "wrk_parse.h"

static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };

void
wrk_sse_init(struct wrk_sse *p, size_t max_line,
    int (*on_event)(void *arg, const char *event, const char *data,
    size_t len), void *arg)
{
	memset(p, 0, sizeof(*p));
	if (max_line == 0)
		max_line = WRK_SSE_MAX_LINE;
	p->max_line = max_line;
	p->max_data = max_line * WRK_SSE_DATA_FACTOR;
	p->on_event = on_event;
	p->arg = arg;
}

void
wrk_sse_fini(struct wrk_sse *p)
{
	free(p->line);
	free(p->data);
	p->line = p->data = NULL;
	p->line_len = p->line_cap = p->data_len = p->data_cap = 0;
}

/*
 * Grows *buf to hold `need` bytes plus a NUL.  Doubling amortises the
 * copies; `limit` (the ceiling plus the NUL) bounds the allocation.
 */
static int
grow(char **buf, size_t *cap, size_t need, size_t limit)
{
	size_t ncap;
	char *nb;

	if (need + 1 <= *cap)
		return 0;
	ncap = *cap < 256 ? 256 : *cap;
	while (ncap < need + 1)
		ncap *= 2;
	if (ncap > limit)
		ncap = limit;
	nb = realloc(*buf, ncap);
	if (nb == NULL)
		return VG_ENOMEM;
	*buf = nb;
	*cap = ncap;
	return 0;
}

static void
event_reset(struct wrk_sse *p)
{
	p->data_len = 0;
	p->ndata = 0;
	p->event[0] = '\0';
}

static int
dispatch(struct wrk_sse *p)
{
	const char *name;
	int rv;

	if (p->ndata == 0) {	/* no data line: nothing to tell */
		event_reset(p);
		return 0;
	}
	if (p->data == NULL) {	/* only empty data lines so far */
		rv = grow(&p->data, &p->data_cap, 0, p->max_data + 1);
		if (rv < 0)
			return rv;
	}
	p->data[p->data_len] = '\0';
	name = p->event[0] != '\0' ? p->event : "message";
	p->events++;
	rv = p->on_event != NULL ?
	    p->on_event(p->arg, name, p->data, p->data_len) : 0;
	event_reset(p);
	return rv < 0 ? rv : 0;
}

static bool
is_done(const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n == 6 && memcmp(s, "[DONE]", 6) == 0;
}

static int
add_data(struct wrk_sse *p, const char *v, size_t n)
{
	size_t need = p->data_len + n + (p->ndata > 0);
	int rv;

	if (need > p->max_data)
		return VG_ETOOBIG;
	rv = grow(&p->data, &p->data_cap, need, p->max_data + 1);
	if (rv < 0)
		return rv;
	if (p->ndata > 0)
		p->data[p->data_len++] = '\n';
	memcpy(p->data + p->data_len, v, n);
	p->data_len += n;
	p->ndata++;
	if (is_done(v, n))
		p->done = true;
	return 0;
}

/* One complete line, terminator removed. */
static int
line(struct wrk_sse *p, const char *s, size_t n)
{
	const char *colon, *v;
	size_t fn, vn;

	if (n == 0)
		return dispatch(p);
	if (s[0] == ':') {
		p->comments++;
		return 0;
	}
	colon = memchr(s, ':', n);
	if (colon != NULL) {
		fn = (size_t)(colon - s);
		v = colon + 1;
		vn = n - fn - 1;
		if (vn > 0 && *v == ' ') {
			v++;
			vn--;
		}
	} else {		/* a field name alone: its value is "" */
		fn = n;
		v = s + n;
		vn = 0;
	}
	if (fn == 4 && memcmp(s, "data", 4) == 0)
		return add_data(p, v, vn);
	if (fn == 5 && memcmp(s, "event", 5) == 0) {
		if (vn >= sizeof(p->event))
			vn = sizeof(p->event) - 1;
		memcpy(p->event, v, vn);
		p->event[vn] = '\0';
	}
	/* id, retry and unknown fields mean nothing to the worker */
	return 0;
}

/* Appends to the unfinished line, enforcing the ceiling. */
static int
line_add(struct wrk_sse *p, const char *s, size_t n)
{
	int rv;

	if (n == 0)
		return 0;
	if (p->line_len + n > p->max_line)
		return VG_ETOOBIG;
	rv = grow(&p->line, &p->line_cap, p->line_len + n, p->max_line + 1);
	if (rv < 0)
		return rv;
	memcpy(p->line + p->line_len, s, n);
	p->line_len += n;
	return 0;
}

/*
 * Drops a UTF-8 BOM at the start of the stream.  The BOM itself may be
 * cut between chunks, so matched bytes are held back until it is clear
 * whether they were a BOM or the start of a line.  Advances *buf past
 * the bytes it took.
 */
static int
strip_bom(struct wrk_sse *p, const char **buf, size_t *len)
{
	int rv;

	while (!p->started && *len > 0) {
		if ((unsigned char)**buf == bom[p->bom]) {
			(*buf)++;
			(*len)--;
			if (++p->bom == sizeof(bom))
				p->started = true;
			continue;
		}
		/* not a BOM after all: the held bytes were text */
		p->started = true;
		rv = line_add(p, (const char *)bom, p->bom);
		if (rv < 0)
			return rv;
	}
	return 0;
}

static int
feed(struct wrk_sse *p, const char *buf, size_t len)
{
	const char *end = buf + len, *s;
	int rv;

	rv = strip_bom(p, &buf, &len);
	if (rv < 0)
		return rv;
	while (buf < end) {
		if (p->skip_lf) {	/* the LF of a CRLF cut after the CR */
			p->skip_lf = false;
			if (*buf == '\n') {
				buf++;
				continue;
			}
		}
		for (s = buf; s < end && *s != '\n' && *s != '\r'; s++)
			;
		if (s == end)
			return line_add(p, buf, (size_t)(s - buf));
		if (p->line_len == 0) {	/* whole line in buf: no copy */
			if ((size_t)(s - buf) > p->max_line)
				return VG_ETOOBIG;
			rv = line(p, buf, (size_t)(s - buf));
		} else {
			size_t n;

			rv = line_add(p, buf, (size_t)(s - buf));
			if (rv < 0)
				return rv;
			n = p->line_len;
			p->line_len = 0;
			rv = line(p, p->line, n);
		}
		if (rv < 0)
			return rv;
		if (*s == '\r')
			p->skip_lf = true;
		buf = s + 1;
	}
	return 0;
}

int
wrk_sse_feed(struct wrk_sse *p, const char *buf, size_t len)
{
	if (p->err == 0)
		p->err = feed(p, buf, len);
	return p->err;
}

int
wrk_sse_finish(struct wrk_sse *p)
{
	size_t n;
	int rv;

	if (p->err != 0)
		return p->err;
	if (!p->started && p->bom > 0) {	/* EOF inside a would-be BOM */
		p->started = true;
		rv = line_add(p, (const char *)bom, p->bom);
		if (rv < 0)
			goto out;
	}
	if (p->line_len > 0) {	/* an unterminated last line */
		n = p->line_len;
		p->line_len = 0;
		rv = line(p, p->line, n);
		if (rv < 0)
			goto out;
	}
	rv = dispatch(p);
out:
	p->err = rv;
	return rv;
}
