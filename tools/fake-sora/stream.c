/*
 * tools/fake-sora/stream.c: timed responses without a thread each.
 *
 * A response body comes from a content reader.  When its next event is
 * not due yet the reader suspends the connection (MHD_suspend_connection
 * is allowed from a content reader), files the stream in a min-heap by
 * due time, and returns 0; the timer thread resumes it when it is due and
 * MHD calls the reader again.  A stream is in the heap exactly while its
 * connection is suspended, so the timer never resumes a connection that
 * is not suspended (undefined in MHD) and MHD never frees a stream the
 * heap still holds (it does not touch suspended connections).
 *
 * A suspended connection does not notice its client leaving, but every
 * stream wakes at least once a second; silent ones then peek at the
 * socket and end when the client has gone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "fake_sora.h"

#define SSE_BLOCK 4096		/* MHD's buffer for a small-event response */
#define BULK_BLOCK 65536	/* ... and for bodies sent as fast as we can */

struct fs_timer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct fs_stream **heap;	/* min-heap on due */
	size_t n, cap;
	bool stop;			/* shutting down: no more sleeping */
	pthread_t thr;
};

/* ---- the heap ------------------------------------------------------------ */

static void
heap_set(struct fs_timer *t, size_t i, struct fs_stream *st)
{
	t->heap[i] = st;
	st->heap_i = i;
}

static void
heap_up(struct fs_timer *t, size_t i)
{
	struct fs_stream *st = t->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (t->heap[p]->due <= st->due)
			break;
		heap_set(t, i, t->heap[p]);
		i = p;
	}
	heap_set(t, i, st);
}

static void
heap_down(struct fs_timer *t, size_t i)
{
	struct fs_stream *st = t->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= t->n)
			break;
		if (c + 1 < t->n && t->heap[c + 1]->due < t->heap[c]->due)
			c++;
		if (st->due <= t->heap[c]->due)
			break;
		heap_set(t, i, t->heap[c]);
		i = c;
	}
	heap_set(t, i, st);
}

static struct fs_stream *
heap_pop(struct fs_timer *t)
{
	struct fs_stream *top = t->heap[0];

	t->n--;
	if (t->n > 0) {
		t->heap[0] = t->heap[t->n];
		heap_down(t, 0);
	}
	return top;
}

/* ---- the timer thread ---------------------------------------------------- */

static void
abs_time(uint64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

static void *
timer_main(void *arg)
{
	struct fs_timer *t = arg;
	struct timespec ts;

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		uint64_t now;

		if (t->n == 0) {
			pthread_cond_wait(&t->cv, &t->mu);
			continue;
		}
		now = fs_now_ms();
		if (t->heap[0]->due > now) {
			abs_time(t->heap[0]->due, &ts);
			pthread_cond_timedwait(&t->cv, &t->mu, &ts);
			continue;
		}
		while (t->n > 0 && t->heap[0]->due <= now)
			MHD_resume_connection(heap_pop(t)->conn);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int
fs_timer_start(struct fs_server *srv)
{
	struct fs_timer *t;
	pthread_condattr_t ca;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t->thr, NULL, timer_main, t) != 0) {
		free(t);
		return -1;
	}
	srv->timer = t;
	return 0;
}

void
fs_timer_stop(struct fs_server *srv)
{
	struct fs_timer *t = srv->timer;

	if (t == NULL)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	while (t->n > 0)
		MHD_resume_connection(heap_pop(t)->conn);
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thr, NULL);
	/* The timer stays: readers still running refuse to sleep under it. */
}

void
fs_timer_free(struct fs_server *srv)
{
	struct fs_timer *t = srv->timer;

	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t->heap);
	free(t);
	srv->timer = NULL;
}

/*
 * timer_sleep suspends the stream's connection until st->due.  False
 * when it may not (shutting down, no memory): the caller ends the body.
 */
static bool
timer_sleep(struct fs_stream *st)
{
	struct fs_timer *t = st->srv->timer;
	bool ok = false;

	pthread_mutex_lock(&t->mu);
	if (t->stop)
		goto out;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 1024;
		struct fs_stream **h = realloc(t->heap, cap * sizeof(*h));

		if (h == NULL)
			goto out;
		t->heap = h;
		t->cap = cap;
	}
	/* Suspend before the timer can see it: it only resumes what is
	 * suspended. */
	MHD_suspend_connection(st->conn);
	t->heap[t->n++] = st;
	heap_up(t, t->n - 1);
	if (st->heap_i == 0)
		pthread_cond_signal(&t->cv);
	ok = true;
out:
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* ---- streams ------------------------------------------------------------- */

struct fs_stream *
fs_stream_new(struct fs_req *rq, fs_gen_fn gen)
{
	struct fs_stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->srv = rq->srv;
	st->conn = rq->conn;
	st->gen = gen;
	st->t0 = fs_now_ms();
	st->due = st->t0;
	return st;
}

void
fs_stream_free(struct fs_stream *st)
{
	if (st == NULL)
		return;
	free(st->buf);
	free(st->prompt);
	free(st);
}

int
fs_stream_add(struct fs_stream *st, const void *data, size_t len)
{
	if (st->len + len + 1 > st->cap) {
		size_t cap = st->cap ? st->cap : 1024;
		char *b;

		while (cap < st->len + len + 1)
			cap *= 2;
		b = realloc(st->buf, cap);
		if (b == NULL)
			return -1;
		st->buf = b;
		st->cap = cap;
	}
	memcpy(st->buf + st->len, data, len);
	st->len += len;
	st->buf[st->len] = '\0';
	return 0;
}

int
fs_stream_addf(struct fs_stream *st, const char *fmt, ...)
{
	va_list ap;
	char small[512];
	char *big = NULL;
	int n, rv;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return fs_stream_add(st, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (big == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rv = fs_stream_add(st, big, (size_t)n);
	free(big);
	return rv;
}

/* peer_gone peeks at the socket: true when the client closed it. */
static bool
peer_gone(struct fs_stream *st)
{
	const union MHD_ConnectionInfo *ci;
	char c;
	ssize_t n;

	ci = MHD_get_connection_info(st->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return false;
	n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return true;
	return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR;
}

/* The content reader of generated (SSE or JSON) bodies. */
static ssize_t
gen_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct fs_stream *st = cls;

	(void)pos;
	for (;;) {
		uint64_t now;

		if (st->off < st->len) {
			size_t n = st->len - st->off;

			if (n > max)
				n = max;
			memcpy(out, st->buf + st->off, n);
			st->off += n;
			return (ssize_t)n;
		}
		if (atomic_load(&st->srv->stopping))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (st->end == FS_END_OK)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (st->end == FS_END_ERROR)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		now = fs_now_ms();
		if (now < st->due) {
			if (st->watch_peer && peer_gone(st))
				return MHD_CONTENT_READER_END_WITH_ERROR;
			if (!timer_sleep(st))
				return MHD_CONTENT_READER_END_WITH_ERROR;
			return 0;
		}
		st->off = st->len = 0;
		if (st->gen(st, now) < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		/* A generator that neither wrote, waited nor ended spins. */
		if (st->len == 0 && st->end == FS_END_NO && st->due <= now)
			st->due = now + 1000;
	}
}

/* The content reader of video bytes: whole, trickled, or cut short. */
static ssize_t
bytes_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct fs_stream *st = cls;
	uint64_t left;

	if (atomic_load(&st->srv->stopping))
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (st->drop_at != 0 && pos >= st->drop_at)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos >= st->limit)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (st->piece != 0) {
		uint64_t now = fs_now_ms();

		if (now < st->due) {
			if (!timer_sleep(st))
				return MHD_CONTENT_READER_END_WITH_ERROR;
			return 0;
		}
		st->due = now + st->srv->step_ms;
		if (max > st->piece)
			max = st->piece;
	}
	left = st->limit - pos;
	if (st->drop_at != 0 && st->drop_at - pos < left)
		left = st->drop_at - pos;
	if (max > left)
		max = (size_t)left;
	fs_video_fill(st->seed, st->limit, pos, out, max);
	return (ssize_t)max;
}

static void
stream_done(void *cls)
{
	struct fs_stream *st = cls;

	atomic_fetch_sub(&st->srv->streams, 1);
	fs_stream_free(st);
}

enum MHD_Result
fs_stream_queue(struct fs_stream *st, unsigned status, uint64_t size,
    const char *type, bool bytes)
{
	struct MHD_Response *resp;
	struct MHD_Connection *conn = st->conn;
	size_t block = (bytes || st->limit != 0) ? BULK_BLOCK : SSE_BLOCK;
	enum MHD_Result ret;

	st->total = size;
	resp = MHD_create_response_from_callback(size, block,
	    bytes ? bytes_read : gen_read, st, stream_done);
	if (resp == NULL) {
		fs_stream_free(st);
		return MHD_NO;
	}
	atomic_fetch_add(&st->srv->streams, 1);
	atomic_fetch_add(&st->srv->streams_total, 1);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (!bytes) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
		    "no-cache");
		MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);	/* if unqueued, stream_done frees st */
	return ret;
}
