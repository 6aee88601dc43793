/*
 * server/hub.c: the event hub.  One thread with its own store connection
 * LISTENs on vgen_job_events (the job trigger notifies there, in the
 * writing transaction) and publishes each event on the pub0 socket as the
 * DESIGN frame: topic "job.<user_id>.<job_id>", one 0x00 byte, then a
 * serialized vgen.v1.JobEvent.  It also wakes the parked WaitJob calls of
 * that job and runs their timers (wait.c).
 *
 * When the connection breaks it reconnects with a backoff, LISTENs again,
 * publishes the current state of every active job once (watchers that
 * missed events catch up; versions let them drop what they already have)
 * and has every parked call re-checked.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "srv_int.h"
#include "vg_nng.h"
#include "vgen/v1/events.pb-c.h"

#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#define HUB_CHANNEL "vgen_job_events"
#define HUB_PAYLOAD_MAX 8192	/* PostgreSQL caps a payload at 8000 bytes */
#define HUB_CATCHUP_MAX 10000	/* active jobs re-published after a break */
#define HUB_BACKOFF_MIN_MS 100
#define HUB_BACKOFF_MAX_MS 2000
#define HUB_TICK_MS 1000	/* longest sleep: checks the stop flag */
#define HUB_RECVMAX 1024	/* pub receives nothing; bound it anyway */

struct srv_hub {
	struct srv *srv;
	nng_socket pub;
	bool pub_open;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	int stop_pipe[2];
	char payload[HUB_PAYLOAD_MAX];
	char channel[64];
};

/* Publishes one event (dropped, like any pub0 message, when it fails). */
static void
hub_publish(struct srv_hub *h, const Vgen__V1__JobEvent *ev)
{
	char topic[2 * VG_UUID_STRLEN + 8];
	size_t tl, n;
	nng_msg *msg;
	uint8_t *b;

	if (!h->pub_open)
		return;
	tl = (size_t)snprintf(topic, sizeof(topic), "job.%s.%s", ev->user_id,
	    ev->job_id);
	n = vgen__v1__job_event__get_packed_size(ev);
	if (nng_msg_alloc(&msg, tl + 1 + n) != 0)
		return;
	b = nng_msg_body(msg);
	memcpy(b, topic, tl);
	b[tl] = 0;
	vgen__v1__job_event__pack(ev, b + tl + 1);
	if (nng_sendmsg(h->pub, msg, NNG_FLAG_NONBLOCK) != 0)
		nng_msg_free(msg);
}

static void
ts_from_us(Google__Protobuf__Timestamp *ts, int64_t us)
{
	int64_t s = us / 1000000, r = us % 1000000;

	if (r < 0) {
		r += 1000000;
		s--;
	}
	ts->seconds = s;
	ts->nanos = (int32_t)(r * 1000);
}

static const char *
str_or_empty(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL ? v : "";
}

/* One notification: publish it and wake the calls waiting on the job. */
static void
hub_event(struct srv_hub *h, const char *payload)
{
	Vgen__V1__JobEvent ev = VGEN__V1__JOB_EVENT__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	json_error_t err;
	json_t *o = json_loads(payload, 0, &err);

	if (o == NULL || !json_is_object(o)) {
		vg_warn("hub: unreadable event error=\"%s\"", o ? "not an "
		    "object" : err.text);
		json_decref(o);
		return;
	}
	ev.job_id = (char *)str_or_empty(o, "job_id");
	ev.user_id = (char *)str_or_empty(o, "user_id");
	if (!vg_uuid_valid(ev.job_id) || !vg_uuid_valid(ev.user_id)) {
		vg_warn("hub: event without job_id/user_id");
		json_decref(o);
		return;
	}
	ev.status = (Vgen__V1__JobStatus)store_job_status_parse(
	    str_or_empty(o, "status"));
	ev.progress = (int32_t)json_integer_value(json_object_get(o,
	    "progress"));
	ev.video_id = (char *)str_or_empty(o, "video_id");
	ev.error_message = (char *)str_or_empty(o, "error_message");
	ts_from_us(&ts, json_integer_value(json_object_get(o, "updated_at")));
	ev.updated_at = &ts;
	ev.version = (uint64_t)json_integer_value(json_object_get(o,
	    "version"));
	hub_publish(h, &ev);
	srv_wait_event(h->srv->waits, ev.job_id, ev.user_id, (int)ev.status,
	    ev.progress);
	json_decref(o);
}

/* After a break: publish every active job's current state once. */
static void
hub_catch_up(struct srv_hub *h, store_conn *db)
{
	struct store_job *jobs = calloc(HUB_CATCHUP_MAX, sizeof(*jobs));
	int n = 0, rv;

	if (jobs == NULL)
		return;
	rv = store_job_list_active_all(db, HUB_CATCHUP_MAX, jobs, &n);
	if (rv < 0)
		vg_warn("hub: cannot list active jobs error=%s",
		    vg_strerror(rv));
	for (int i = 0; i < n; i++) {
		Vgen__V1__JobEvent ev = VGEN__V1__JOB_EVENT__INIT;
		Google__Protobuf__Timestamp ts =
		    GOOGLE__PROTOBUF__TIMESTAMP__INIT;

		ev.job_id = jobs[i].id;
		ev.user_id = jobs[i].user_id;
		ev.status = (Vgen__V1__JobStatus)jobs[i].status;
		ev.progress = jobs[i].progress;
		ev.video_id = jobs[i].video_id;
		ev.error_message = jobs[i].error_message ?
		    jobs[i].error_message : "";
		ts_from_us(&ts, jobs[i].updated_us);
		ev.updated_at = &ts;
		ev.version = (uint64_t)jobs[i].version;
		hub_publish(h, &ev);
		store_job_fini(&jobs[i]);
	}
	if (n == HUB_CATCHUP_MAX)
		vg_warn("hub: catch-up truncated at %d active jobs", n);
	vg_info("hub: published active jobs n=%d", n);
	free(jobs);
}

/* Reads every notification libpq has (or buffered during a query). */
static bool
hub_drain(struct srv_hub *h, store_conn *db)
{
	for (;;) {
		int rv = store_notify_next(db, h->channel, sizeof(h->channel),
		    h->payload, sizeof(h->payload));

		if (rv == 0)
			return true;
		if (rv < 0)
			return false;
		hub_event(h, h->payload);
	}
}

static void *
hub_main(void *arg)
{
	struct srv_hub *h = arg;
	struct srv *s = h->srv;
	store_conn *db = NULL;
	bool listening = false, lost = false;
	int backoff = HUB_BACKOFF_MIN_MS;

	if (store_open(s->cfg.database_url, &db) < 0) {
		vg_error("hub: out of memory");
		return NULL;
	}
	while (!atomic_load(&h->stop)) {
		struct pollfd fds[3];
		int64_t now, next, timeout;

		if (!listening) {
			if (store_listen(db, HUB_CHANNEL) == 0) {
				listening = true;
				backoff = HUB_BACKOFF_MIN_MS;
				if (lost) {
					vg_info("hub: listening again");
					hub_catch_up(h, db);
					srv_wait_recheck_all(s->waits);
					lost = false;
				}
			} else if (!lost) {
				vg_warn("hub: cannot listen on the database; "
				    "retrying");
				lost = true;
			}
		}
		if (listening && !hub_drain(h, db)) {
			vg_warn("hub: lost the database connection; "
			    "reconnecting");
			listening = false;
			lost = true;
			continue;
		}
		now = vg_now_ms();
		next = srv_wait_expire(s->waits, now);
		timeout = next == INT64_MAX ? HUB_TICK_MS : next - now;
		if (timeout > HUB_TICK_MS)
			timeout = HUB_TICK_MS;
		if (!listening) {
			if (timeout > backoff)
				timeout = backoff;
			backoff = backoff * 2 > HUB_BACKOFF_MAX_MS ?
			    HUB_BACKOFF_MAX_MS : backoff * 2;
		}
		fds[0].fd = listening ? store_notify_fd(db) : -1;
		fds[0].events = POLLIN;
		fds[1].fd = srv_wait_fd(s->waits);
		fds[1].events = POLLIN;
		fds[2].fd = h->stop_pipe[0];
		fds[2].events = POLLIN;
		fds[0].revents = fds[1].revents = fds[2].revents = 0;
		(void)poll(fds, 3, (int)(timeout < 0 ? 0 : timeout));
		if (fds[1].revents & POLLIN)
			srv_wait_drain(s->waits);
	}
	store_close(db);
	return NULL;
}

/*
 * A subscriber came or went: nng runs REM_POST for each pipe that had
 * ADD_PRE, also one closed early.  lguard's listener probes count too,
 * for the moment they last.
 */
static void
hub_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct srv *s = arg;

	(void)p;
	srv_tasks_pipes(s->tasks, ev == NNG_PIPE_EV_ADD_PRE ? 1 : -1);
}

int
srv_hub_start(struct srv *s, struct srv_hub **out)
{
	struct srv_hub *h = calloc(1, sizeof(*h));
	const char *url = s->cfg.events_listen;
	int rv;

	if (h == NULL)
		return VG_ENOMEM;
	h->srv = s;
	h->stop_pipe[0] = h->stop_pipe[1] = -1;
	*out = h;	/* srv_hub_stop frees what was made */
	if (pipe(h->stop_pipe) < 0)
		return VG_EINTERNAL;
	if (url != NULL && *url != '\0') {
		if ((rv = nng_pub0_open(&h->pub)) != 0) {
			vg_error("hub: cannot open the pub socket error=\"%s\"",
			    nng_strerror(rv));
			return VG_EINTERNAL;
		}
		h->pub_open = true;
		nng_pipe_notify(h->pub, NNG_PIPE_EV_ADD_PRE, hub_pipe_cb, s);
		nng_pipe_notify(h->pub, NNG_PIPE_EV_REM_POST, hub_pipe_cb, s);
		/* nng's default is unlimited; pub0 receives nothing. */
		nng_socket_set_size(h->pub, NNG_OPT_RECVMAXSZ, HUB_RECVMAX);
		/*
		 * pub0 queues 16 frames per subscriber by default and drops
		 * the oldest beyond: one worker commit NOTIFYs a whole tick's
		 * progress (hundreds of jobs) at once, and a default queue
		 * lost most of such a burst.  8 bytes per slot per
		 * subscriber.
		 */
		if (s->cfg.events_sendbuf > 0)
			nng_socket_set_int(h->pub, NNG_OPT_SENDBUF,
			    (int)s->cfg.events_sendbuf);
		if (srv_lguard_listen(s->lguard, h->pub, url, 0,
		    nng_sub0_open) < 0)
			return VG_EINVAL;
		vg_info("events listening url=%s", url);
	}
	if (pthread_create(&h->thread, NULL, hub_main, h) != 0)
		return VG_ENOMEM;
	h->started = true;
	return 0;
}

void
srv_hub_stop(struct srv_hub *h)
{
	if (h == NULL)
		return;
	if (h->started) {
		atomic_store(&h->stop, true);
		(void)!write(h->stop_pipe[1], "", 1);
		pthread_join(h->thread, NULL);
	}
	if (h->pub_open)
		(void)vg_nng_close(h->pub, SRV_CLOSE_MS);
	if (h->stop_pipe[0] >= 0) {
		close(h->stop_pipe[0]);
		close(h->stop_pipe[1]);
	}
	free(h);
}
