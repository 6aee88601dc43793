/*
 * client/watch.c: vgen_watch, the DESIGN §4 watcher pattern over the
 * progress-event pub socket: subscribe to job.<user>.<job> first, then
 * read the job with GetJob, then let an event with a newer version
 * trigger a fresh GetJob, and re-read after a quiet interval so that
 * events dropped by pub/sub never leave the watcher behind.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "vg.h"
#include "vg_nng.h"
#include "vgen.h"

#define WATCH_CLOSE_MS 2000	/* nng_close's deadline (vg_nng.h) */
#define WATCH_MAXSZ (64 * 1024)		/* NNG_OPT_RECVMAXSZ */
#define WATCH_CONNECT_MS 1000		/* open waits this long for a pipe */
#define WATCH_ID_MAX 128

struct vgen_watch {
	vgen_client *c;			/* borrowed */
	nng_socket sock;
	atomic_int npipes;
	char job_id[WATCH_ID_MAX];
	char topic[2 * WATCH_ID_MAX + 8];
	uint64_t last_version;		/* of the last job returned; 0 none */
	Vgen__V1__VideoJob *held;	/* read, not yet returned; owned */
	int quiet_ms;
	int64_t last_read_ms;		/* monotonic time of the last GetJob */
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
watch_pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct vgen_watch *w = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&w->npipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&w->npipes, 1);
}

/* An id goes into a topic: printable ASCII without '.', not empty. */
static bool
id_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) >= WATCH_ID_MAX)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '.')
			return false;
	return true;
}

/* read_job: GetJob through the client; the status code. */
static int
read_job(struct vgen_watch *w, Vgen__V1__VideoJob **out)
{
	Vgen__V1__GetJobRequest req = VGEN__V1__GET_JOB_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int code;

	req.id = w->job_id;
	code = vgen_call(w->c, "/vgen.v1.VideoJobService/GetJob", &req.base,
	    &vgen__v1__video_job__descriptor, &resp, NULL);
	w->last_read_ms = now_ms();
	*out = code == 0 ? (Vgen__V1__VideoJob *)resp : NULL;
	return code;
}

/*
 * event_version: the version of a frame for this watch's job, or 0 for a
 * malformed frame or one about another job.
 */
static uint64_t
event_version(const struct vgen_watch *w, const unsigned char *buf,
    size_t len)
{
	const unsigned char *nul = memchr(buf, '\0', len);
	size_t tlen = strlen(w->topic);
	Vgen__V1__JobEvent *e;
	uint64_t v = 0;

	if (nul == NULL || (size_t)(nul - buf) != tlen ||
	    memcmp(buf, w->topic, tlen) != 0)
		return 0;
	e = vgen__v1__job_event__unpack(NULL, len - tlen - 1, nul + 1);
	if (e == NULL)
		return 0;
	if (e->job_id != NULL && strcmp(e->job_id, w->job_id) == 0)
		v = e->version;
	vgen__v1__job_event__free_unpacked(e, NULL);
	return v;
}

int
vgen_watch_open(vgen_client *c, const char *events_url, const char *user_id,
    const char *job_id, vgen_watch **out)
{
	struct vgen_watch *w;
	int64_t until;
	int ev, code;

	if (out != NULL)
		*out = NULL;
	if (c == NULL || out == NULL || events_url == NULL ||
	    events_url[0] == '\0' || !id_ok(user_id) || !id_ok(job_id))
		return VG_INVALID_ARGUMENT;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return VG_RESOURCE_EXHAUSTED;
	w->c = c;
	w->quiet_ms = VGEN_WATCH_QUIET_MS;
	atomic_init(&w->npipes, 0);
	snprintf(w->job_id, sizeof(w->job_id), "%s", job_id);
	snprintf(w->topic, sizeof(w->topic), "job.%s.%s", user_id, job_id);

	/* 1. Subscribe. */
	if ((ev = nng_sub0_open(&w->sock)) != 0) {
		free(w);
		return VG_RESOURCE_EXHAUSTED;
	}
	if ((ev = nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ,
	    WATCH_MAXSZ)) != 0 ||
	    (ev = nng_socket_set_ms(w->sock, NNG_OPT_RECONNMINT, 50)) != 0 ||
	    (ev = nng_socket_set_ms(w->sock, NNG_OPT_RECONNMAXT, 1000)) != 0 ||
	    (ev = nng_socket_set(w->sock, NNG_OPT_SUB_SUBSCRIBE, w->topic,
	    strlen(w->topic))) != 0 ||
	    (ev = nng_pipe_notify(w->sock, NNG_PIPE_EV_ADD_POST,
	    watch_pipe_event, w)) != 0 ||
	    (ev = nng_pipe_notify(w->sock, NNG_PIPE_EV_REM_POST,
	    watch_pipe_event, w)) != 0) {
		nng_close(w->sock);
		free(w);
		return VG_INTERNAL;
	}
	/* Nonblocking: nng keeps redialing until the publisher is up. */
	if ((ev = nng_dial(w->sock, events_url, NULL,
	    NNG_FLAG_NONBLOCK)) != 0) {
		nng_close(w->sock);
		free(w);
		return ev == NNG_EADDRINVAL || ev == NNG_ENOTSUP ?
		    VG_INVALID_ARGUMENT : VG_UNAVAILABLE;
	}
	/*
	 * Give the connection a moment so fewer events fall between the
	 * read and the subscription; the quiet re-read covers the rest.
	 */
	until = now_ms() + WATCH_CONNECT_MS;
	while (atomic_load(&w->npipes) == 0 && now_ms() < until)
		nanosleep(&(struct timespec){ 0, 5000000 }, NULL);

	/* 2. Read. */
	code = read_job(w, &w->held);
	if (code != 0) {
		vgen_watch_close(w);
		return code;
	}
	*out = w;
	return 0;
}

void
vgen_watch_set_quiet(vgen_watch *w, int quiet_ms)
{
	if (w != NULL)
		w->quiet_ms = quiet_ms > 0 ? quiet_ms : VGEN_WATCH_QUIET_MS;
}

/* take: hands `j` out when newer than the last one; frees it otherwise. */
static bool
take(struct vgen_watch *w, Vgen__V1__VideoJob *j, Vgen__V1__VideoJob **out)
{
	if (j == NULL)
		return false;
	if (w->last_version != 0 && j->version <= w->last_version) {
		protobuf_c_message_free_unpacked(&j->base, NULL);
		return false;
	}
	w->last_version = j->version;
	*out = j;
	return true;
}

int
vgen_watch_next(vgen_watch *w, int timeout_ms, Vgen__V1__VideoJob **job)
{
	int64_t deadline, now, quiet_at;
	Vgen__V1__VideoJob *j;
	int code, ev;

	if (job != NULL)
		*job = NULL;
	if (w == NULL || job == NULL)
		return VG_INVALID_ARGUMENT;
	if (w->held != NULL) {
		j = w->held;
		w->held = NULL;
		if (take(w, j, job))
			return 0;
	}
	deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		void *buf = NULL;
		size_t len = 0;
		int64_t wait;
		uint64_t v;

		now = now_ms();
		quiet_at = w->last_read_ms + w->quiet_ms;
		if (now >= quiet_at) {
			/* 4. Quiet for a while: re-read. */
			if ((code = read_job(w, &j)) != 0)
				return code;
			if (take(w, j, job))
				return 0;
			continue;
		}
		if (now >= deadline)
			return VG_DEADLINE_EXCEEDED;
		wait = (quiet_at < deadline ? quiet_at : deadline) - now;
		nng_socket_set_ms(w->sock, NNG_OPT_RECVTIMEO,
		    (nng_duration)wait);
		ev = nng_recv(w->sock, &buf, &len, NNG_FLAG_ALLOC);
		if (ev == NNG_ETIMEDOUT || ev == NNG_EINTR)
			continue;
		if (ev != 0)
			return VG_UNAVAILABLE;
		v = event_version(w, buf, len);
		nng_free(buf, len);
		/* 3. A newer event: read the job it speaks of. */
		if (v == 0 || v <= w->last_version)
			continue;
		if ((code = read_job(w, &j)) != 0)
			return code;
		if (take(w, j, job))
			return 0;
	}
}

bool
vgen_watch_done(const Vgen__V1__VideoJob *j)
{
	return j != NULL && (j->status == VGEN__V1__JOB_STATUS__COMPLETED ||
	    j->status == VGEN__V1__JOB_STATUS__FAILED);
}

void
vgen_watch_close(vgen_watch *w)
{
	if (w == NULL)
		return;
	/* Left behind when nng does not return: its callbacks use w. */
	if (!vg_nng_close(w->sock, WATCH_CLOSE_MS)) {
		vg_nng_leave(w);
		return;
	}
	if (w->held != NULL)
		protobuf_c_message_free_unpacked(&w->held->base, NULL);
	free(w);
}
