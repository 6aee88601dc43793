/*
 * client/client.c: libvgen-client.  One req0 socket per client, one nng
 * context per call, the RpcRequest envelope around every message.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sodium.h>

#include "vg.h"
#include "vg_nng.h"
#include "vgen.h"

/*
 * How long a call waits for the first connection before UNAVAILABLE (the
 * call's own timeout when shorter).  Generous: on a loaded machine a
 * process can take seconds to get its connection negotiated.
 */
#define CONNECT_WAIT_MS 10000

struct vgen_client {
	nng_socket sock;
	char *authorization;	/* "Bearer <token>" or NULL; owned */
	uint32_t timeout_ms;
	atomic_int npipes;	/* live connections, from pipe events */
	char id_prefix[9];	/* random per client, for request ids */
	atomic_uint_fast64_t seq;
};

static bool wait_connected(vgen_client *c, int64_t ms);

static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct vgen_client *c = arg;

	(void)p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&c->npipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&c->npipes, 1);
}

int
vgen_client_open(const char *urls, vgen_client **out)
{
	struct vgen_client *c;
	char *list, *save = NULL;
	unsigned char rnd[4];
	int ndial = 0, rv;

	if (urls == NULL)
		urls = getenv("VGEN_SERVER");
	if (urls == NULL || *urls == '\0')
		urls = VGEN_DEFAULT_SERVER;
	if (sodium_init() < 0)
		return VG_EINTERNAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return VG_ENOMEM;
	if (nng_req0_open(&c->sock) != 0) {
		free(c);
		return VG_ENOMEM;
	}
	c->timeout_ms = VGEN_DEFAULT_TIMEOUT_MS;
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(c->id_prefix, sizeof(c->id_prefix), rnd, sizeof(rnd));
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, VG_CLIENT_MAX_FRAME);
	/* Never resend a slow call: see the header on retries. */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
	    NNG_DURATION_INFINITE);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event, c);
	nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c);
	if ((list = strdup(urls)) == NULL) {
		vgen_client_close(c);
		return VG_ENOMEM;
	}
	rv = 0;
	for (char *url = strtok_r(list, ",", &save); url != NULL;
	    url = strtok_r(NULL, ",", &save)) {
		while (*url == ' ')
			url++;
		if (*url == '\0')
			continue;
		/* Non-blocking: connect (and reconnect) in the background. */
		if (nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK) != 0) {
			rv = VG_EINVAL;
			break;
		}
		ndial++;
	}
	free(list);
	if (rv < 0 || ndial == 0) {
		vgen_client_close(c);
		return VG_EINVAL;
	}
	*out = c;
	return 0;
}

/*
 * Closing while a connection is still being negotiated would hang up on
 * the server mid-handshake, and nng 1.5's listener stops accepting after
 * that (nng issue 1518): give a pending connection a moment to finish.
 */
#define CLOSE_WAIT_MS 500
#define CLOSE_SETTLE_MS 100

/* How long a close waits for nng (see vg_nng.h). */
#define CLOSE_DEADLINE_MS 2000

void
vgen_client_close(vgen_client *c)
{
	if (c == NULL)
		return;
	if (atomic_load(&c->npipes) == 0 &&
	    wait_connected(c, CLOSE_WAIT_MS)) {
		/* Ours is done; let the server finish its side too. */
		struct timespec ts = { 0, CLOSE_SETTLE_MS * 1000000L };

		nanosleep(&ts, NULL);
	}
	if (!vg_nng_close(c->sock, CLOSE_DEADLINE_MS)) {
		static atomic_bool warned;

		/* c stays: the socket's pipe callbacks use it. */
		if (!atomic_exchange(&warned, true))
			fprintf(stderr, "libvgen-client: nng_close did not "
			    "return (an nng 1.5 bug); leaving sockets "
			    "behind\n");
		vg_nng_leave(c);
		return;
	}
	free(c->authorization);
	free(c);
}

int
vgen_client_set_token(vgen_client *c, const char *token)
{
	char *a = NULL;

	if (token != NULL && *token != '\0') {
		size_t n = strlen(token) + sizeof("Bearer ");

		if ((a = malloc(n)) == NULL)
			return VG_ENOMEM;
		snprintf(a, n, "Bearer %s", token);
	}
	free(c->authorization);
	c->authorization = a;
	return 0;
}

void
vgen_client_set_timeout(vgen_client *c, uint32_t ms)
{
	c->timeout_ms = ms ? ms : VGEN_DEFAULT_TIMEOUT_MS;
}

const char *
vgen_status_name(int code)
{
	return vg_status_name(code);
}

static void
status_set(struct vgen_status *st, int code, const char *msg)
{
	if (st == NULL)
		return;
	memset(st, 0, sizeof(*st));
	st->code = code;
	snprintf(st->message, sizeof(st->message), "%s", msg ? msg : "");
}

/* Waits until some server is connected, at most `ms`. */
static bool
wait_connected(vgen_client *c, int64_t ms)
{
	int64_t until = vg_now_ms() + ms;

	while (atomic_load(&c->npipes) == 0) {
		struct timespec ts = { 0, 5 * 1000000 };

		if (vg_now_ms() >= until)
			return false;
		nanosleep(&ts, NULL);
	}
	return true;
}

/*
 * One round trip of raw bytes.  Returns 0 and *reply (caller frees with
 * nng_msg_free), or UNAVAILABLE (no server, or the connection dropped
 * before the reply: the call may or may not have run) or
 * DEADLINE_EXCEEDED, with *why saying which.
 */
static int
round_trip(vgen_client *c, nng_msg *req, nng_msg **reply, const char **why)
{
	int64_t start = vg_now_ms(), left;
	nng_aio *aio = NULL;
	nng_ctx ctx;
	int rv, code;

	*why = "no server reachable";
	if (!wait_connected(c, c->timeout_ms < CONNECT_WAIT_MS ?
	    c->timeout_ms : CONNECT_WAIT_MS)) {
		nng_msg_free(req);
		return VG_UNAVAILABLE;
	}
	if (nng_ctx_open(&ctx, c->sock) != 0) {
		nng_msg_free(req);
		return VG_UNAVAILABLE;
	}
	if (nng_aio_alloc(&aio, NULL, NULL) != 0) {
		nng_msg_free(req);
		nng_ctx_close(ctx);
		return VG_UNAVAILABLE;
	}
	nng_aio_set_timeout(aio, (nng_duration)c->timeout_ms);
	nng_aio_set_msg(aio, req);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		nng_msg_free(req);
		code = rv == NNG_ETIMEDOUT ? VG_DEADLINE_EXCEEDED :
		    VG_UNAVAILABLE;
		if (code == VG_DEADLINE_EXCEEDED)
			*why = "no reply before the deadline";
		goto out;
	}
	left = c->timeout_ms - (vg_now_ms() - start);
	nng_aio_set_timeout(aio, (nng_duration)(left > 0 ? left : 1));
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		/* No connection left: the server went away, not slow. */
		code = rv == NNG_ETIMEDOUT && atomic_load(&c->npipes) > 0 ?
		    VG_DEADLINE_EXCEEDED : VG_UNAVAILABLE;
		/* With resend-time infinite, req0 fails the call then. */
		if (rv == NNG_ECONNRESET)
			*why = "connection lost before the reply (the call "
			    "may or may not have run)";
		else if (code == VG_DEADLINE_EXCEEDED)
			*why = "no reply before the deadline";
		goto out;
	}
	*reply = nng_aio_get_msg(aio);
	code = 0;
out:
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	return code;
}

int
vgen_call_raw(vgen_client *c, const void *frame, size_t len, void **reply,
    size_t *rlen)
{
	nng_msg *req, *rep = NULL;
	const char *why;
	int code;

	if (nng_msg_alloc(&req, len) != 0)
		return VG_UNAVAILABLE;
	memcpy(nng_msg_body(req), frame, len);
	if ((code = round_trip(c, req, &rep, &why)) != 0)
		return code;
	*rlen = nng_msg_len(rep);
	*reply = malloc(*rlen ? *rlen : 1);
	if (*reply == NULL) {
		nng_msg_free(rep);
		return VG_INTERNAL;
	}
	memcpy(*reply, nng_msg_body(rep), *rlen);
	nng_msg_free(rep);
	return 0;
}

int
vgen_call(vgen_client *c, const char *method, const ProtobufCMessage *in,
    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
    struct vgen_status *st)
{
	Vgen__V1__RpcRequest env = VGEN__V1__RPC_REQUEST__INIT;
	Vgen__V1__RpcResponse *r = NULL;
	nng_msg *req = NULL, *rep = NULL;
	uint8_t *payload = NULL;
	const char *why;
	char rid[32];
	int code;

	*resp = NULL;
	snprintf(rid, sizeof(rid), "%s-%llu", c->id_prefix,
	    (unsigned long long)atomic_fetch_add(&c->seq, 1));
	env.method = (char *)method;
	env.authorization = c->authorization ? c->authorization : "";
	env.request_id = rid;
	env.timeout_ms = c->timeout_ms;
	env.payload.len = protobuf_c_message_get_packed_size(in);
	if ((payload = malloc(env.payload.len + 1)) == NULL) {
		status_set(st, VG_INTERNAL, "out of memory");
		return VG_INTERNAL;
	}
	protobuf_c_message_pack(in, payload);
	env.payload.data = payload;
	if (vg_env_pack(&env.base, &req) < 0) {
		free(payload);
		status_set(st, VG_INTERNAL, "out of memory");
		return VG_INTERNAL;
	}
	free(payload);

	if ((code = round_trip(c, req, &rep, &why)) != 0) {
		status_set(st, code, why);
		return code;
	}
	r = vg_env_response_decode(nng_msg_body(rep), nng_msg_len(rep));
	nng_msg_free(rep);
	if (r == NULL) {
		status_set(st, VG_INTERNAL, "unreadable reply");
		return VG_INTERNAL;
	}
	code = (int)r->code;
	status_set(st, code, r->message);
	if (st != NULL) {
		for (size_t i = 0; i < r->n_violations && i < 8; i++) {
			snprintf(st->violations[i].field,
			    sizeof(st->violations[i].field), "%s",
			    r->violations[i]->field);
			snprintf(st->violations[i].description,
			    sizeof(st->violations[i].description), "%s",
			    r->violations[i]->description);
			st->nviolations = i + 1;
		}
	}
	if (code == 0) {
		*resp = protobuf_c_message_unpack(resp_desc, NULL,
		    r->payload.len, r->payload.data);
		if (*resp == NULL) {
			code = VG_INTERNAL;
			status_set(st, code, "unreadable reply payload");
		}
	}
	vgen__v1__rpc_response__free_unpacked(r, NULL);
	return code;
}

/* ---- generated stubs ---------------------------------------------------- */

struct client_service {
	ProtobufCService base;
	vgen_client *c;
};

static _Thread_local struct vgen_status last_status;

const struct vgen_status *
vgen_service_last_status(void)
{
	return &last_status;
}

static void
service_invoke(ProtobufCService *service, unsigned index,
    const ProtobufCMessage *in, ProtobufCClosure closure, void *data)
{
	struct client_service *cs = (struct client_service *)service;
	const ProtobufCMethodDescriptor *md = &service->descriptor->methods[index];
	ProtobufCMessage *out = NULL;
	char method[160];

	snprintf(method, sizeof(method), "/%s/%s", service->descriptor->name,
	    md->name);
	(void)vgen_call(cs->c, method, in, md->output, &out, &last_status);
	closure(out, data);
	if (out != NULL)
		protobuf_c_message_free_unpacked(out, NULL);
}

static void
service_destroy(ProtobufCService *service)
{
	free(service);
}

ProtobufCService *
vgen_service_new(vgen_client *c, const ProtobufCServiceDescriptor *desc)
{
	struct client_service *cs = calloc(1, sizeof(*cs));

	if (cs == NULL)
		return NULL;
	cs->base.descriptor = desc;
	cs->base.invoke = service_invoke;
	cs->base.destroy = service_destroy;
	cs->c = c;
	return &cs->base;
}
