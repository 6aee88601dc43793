/*
 * server/lguard.c: listeners that heal.
 *
 * nng 1.5.2's IPC listener breaks for good when a peer hangs up during
 * the SP handshake (nng issue 1518): it keeps accepting connections but
 * never hands them to the socket, so every later client waits for
 * nothing.  Any local process that connects and closes, or a second
 * server started on the same path (nng's "address in use" check does
 * exactly that), breaks it.  The guard notices and restarts the listener.
 *
 * Every listener of ours is made here.  For IPC ones, srv_lguard_check
 * (run every few seconds) dials the listener with a peer of the right
 * protocol and watches whether the socket gets the pipe (NNG_PIPE_EV_
 * ADD_POST, counted per listener).  When our side connected but the
 * socket got nothing, the listener is closed (with the connections it
 * accepted) and opened again on the same path.  TCP listeners do not
 * show the fault and are not probed.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_int.h"
#include "vg_nng.h"

#define LG_MAX 8		/* listeners per server: rpc, admin, events */
/*
 * How long a probe waits for each side of its handshake.  A probe that
 * fails is repeated with LG_RETRY_MS, so that a busy machine (a handshake
 * that was only slow) does not cost every client its connection.
 */
#define LG_WAIT_MS 1000
#define LG_RETRY_MS 3000

struct lg_entry {
	struct srv_lguard *g;
	nng_socket sock;
	int (*peer_open)(nng_socket *);	/* a protocol the socket accepts */
	char *url;		/* owned */
	int perms;		/* IPC file mode, 0: nng's default */
	nng_listener l;
	atomic_int lid;		/* nng_listener_id(l) */
	atomic_uint added;	/* pipes the socket got from l */
	atomic_uint probe_added;	/* the probe's own connection */
};

struct srv_lguard {
	pthread_mutex_t mu;	/* serialises listen and restart */
	atomic_size_t n;	/* e[0..n) are set up and stay */
	struct lg_entry e[LG_MAX];
};

static void
added_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct srv_lguard *g = arg;
	int id = nng_listener_id(nng_pipe_listener(p));

	(void)ev;
	for (size_t i = 0; i < atomic_load(&g->n); i++) {
		if (atomic_load(&g->e[i].lid) == id &&
		    g->e[i].sock.id == nng_pipe_socket(p).id)
			atomic_fetch_add(&g->e[i].added, 1);
	}
}

static void
probe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct lg_entry *e = arg;

	(void)p;
	(void)ev;
	atomic_fetch_add(&e->probe_added, 1);
}

int
srv_lguard_new(struct srv_lguard **out)
{
	struct srv_lguard *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return VG_ENOMEM;
	pthread_mutex_init(&g->mu, NULL);
	*out = g;
	return 0;
}

void
srv_lguard_free(struct srv_lguard *g)
{
	if (g == NULL)
		return;
	for (size_t i = 0; i < atomic_load(&g->n); i++)
		free(g->e[i].url);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static int
lg_start(struct lg_entry *e)
{
	int rv;

	if ((rv = nng_listener_create(&e->l, e->sock, e->url)) != 0)
		return rv;
	if (e->perms != 0 && (rv = nng_listener_set_int(e->l,
	    NNG_OPT_IPC_PERMISSIONS, e->perms)) != 0) {
		nng_listener_close(e->l);
		return rv;
	}
	if ((rv = nng_listener_start(e->l, 0)) != 0) {
		nng_listener_close(e->l);
		return rv;
	}
	atomic_store(&e->lid, nng_listener_id(e->l));
	return 0;
}

int
srv_lguard_listen(struct srv_lguard *g, nng_socket sock, const char *url,
    int perms, int (*peer_open)(nng_socket *))
{
	struct lg_entry *e;
	int rv;

	pthread_mutex_lock(&g->mu);
	if (atomic_load(&g->n) == LG_MAX) {
		pthread_mutex_unlock(&g->mu);
		vg_error("cannot listen url=%s error=\"more than %d "
		    "listeners\"", url, LG_MAX);
		return VG_EINVAL;
	}
	e = &g->e[atomic_load(&g->n)];
	memset(e, 0, sizeof(*e));
	e->g = g;
	e->sock = sock;
	e->perms = perms;
	e->peer_open = peer_open;
	if ((e->url = strdup(url)) == NULL) {
		pthread_mutex_unlock(&g->mu);
		return VG_ENOMEM;
	}
	/* One callback per socket and event: set again, same arguments. */
	nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, added_cb, g);
	if ((rv = lg_start(e)) != 0) {
		vg_error("cannot listen url=%s error=\"%s\"", url,
		    nng_strerror(rv));
		free(e->url);
		e->url = NULL;
		pthread_mutex_unlock(&g->mu);
		return VG_EINVAL;
	}
	atomic_fetch_add(&g->n, 1);
	pthread_mutex_unlock(&g->mu);
	return 0;
}

static bool
wait_change(atomic_uint *v, unsigned from, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (atomic_load(v) != from)
			return true;
		usleep(10 * 1000);
	}
	return atomic_load(v) != from;
}

/*
 * Probes one listener: false only when a connection reached it and the
 * socket never got it (the fault), true otherwise (also when we could
 * not even connect: then the fault is elsewhere, and restarting would
 * not help).
 */
static bool
lg_probe(struct lg_entry *e, int wait_ms)
{
	unsigned before = atomic_load(&e->added);
	nng_socket peer;
	bool connected, handed;

	if (e->peer_open(&peer) != 0)
		return true;
	atomic_store(&e->probe_added, 0);
	nng_pipe_notify(peer, NNG_PIPE_EV_ADD_POST, probe_cb, e);
	if (nng_dial(peer, e->url, NULL, NNG_FLAG_NONBLOCK) != 0) {
		(void)vg_nng_close(peer, 2000);
		return true;
	}
	connected = wait_change(&e->probe_added, 0, wait_ms);
	handed = connected && wait_change(&e->added, before, wait_ms);
	/* e outlives the peer's callbacks: entries are never freed early. */
	(void)vg_nng_close(peer, 2000);
	return !connected || handed;
}

int
srv_lguard_check(struct srv_lguard *g, const atomic_bool *stopping)
{
	size_t n = atomic_load(&g->n);
	int restarted = 0;

	for (size_t i = 0; i < n && !atomic_load(stopping); i++) {
		struct lg_entry *e = &g->e[i];
		int rv;

		if (strncmp(e->url, "ipc://", 6) != 0 ||
		    lg_probe(e, LG_WAIT_MS) || lg_probe(e, LG_RETRY_MS))
			continue;
		pthread_mutex_lock(&g->mu);
		if (atomic_load(stopping)) {
			pthread_mutex_unlock(&g->mu);
			break;
		}
		vg_warn("listener stopped handing over connections (nng "
		    "issue 1518): restarting url=%s", e->url);
		nng_listener_close(e->l);
		if ((rv = lg_start(e)) != 0)
			vg_error("cannot listen again url=%s error=\"%s\"",
			    e->url, nng_strerror(rv));
		else
			restarted++;
		pthread_mutex_unlock(&g->mu);
	}
	return restarted;
}
