/*
 * client/vgen.h: libvgen-client, the C door to a vgen server.
 *
 * A vgen_client holds one nng req0 socket dialed to one or several server
 * URLs ("tcp://a:7400,tcp://b:7400"); nng spreads requests over the
 * servers it is connected to.  Calls are safe from many threads at once:
 * each call uses its own nng context.
 *
 * Retries.  nng's req0 resends a request after req:resend-time and after
 * a reconnect, so a server could run one call twice.  The client sets
 * resend-time to infinite, so a slow call is never repeated; a request is
 * sent again only when its connection broke before the reply came, and
 * every mutating method is safe to repeat (CreateJob carries an
 * idempotency key, Register answers ALREADY_EXISTS, UpdateProfile,
 * CancelJob and DeleteVideo are naturally idempotent).
 *
 * Typed calls go through protoc-c's generated stubs:
 *
 *	ProtobufCService *svc = vgen_service_new(c,
 *	    &vgen__v1__user_service__descriptor);
 *	vgen__v1__user_service__get_me(svc, &req, on_user, &result);
 *	protobuf_c_service_destroy(svc);
 *
 * or directly with vgen_call(), which also reports the status.
 */
#ifndef VGEN_H
#define VGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "vgen/v1/admin.pb-c.h"
#include "vgen/v1/events.pb-c.h"
#include "vgen/v1/health.pb-c.h"
#include "vgen/v1/job.pb-c.h"
#include "vgen/v1/rpc.pb-c.h"
#include "vgen/v1/user.pb-c.h"
#include "vgen/v1/video.pb-c.h"

typedef struct vgen_client vgen_client;

/* Default RPC endpoint and call timeout. */
#define VGEN_DEFAULT_SERVER "tcp://127.0.0.1:7400"
#define VGEN_DEFAULT_TIMEOUT_MS 30000

/*
 * vgen_client_open dials every URL in the comma-separated list `urls`
 * (NULL: $VGEN_SERVER, else VGEN_DEFAULT_SERVER) without waiting for the
 * connections.  Returns 0 and *out (free with vgen_client_close), or
 * VG-style negative codes: -2 for a bad URL list, -1 out of memory.
 */
int vgen_client_open(const char *urls, vgen_client **out);
void vgen_client_close(vgen_client *c);	/* NULL is a no-op */

/*
 * vgen_client_set_token sets the bearer token sent with every call (copied;
 * NULL or "" clears it).  vgen_client_set_timeout sets the per-call
 * deadline in ms (0: VGEN_DEFAULT_TIMEOUT_MS); it is sent to the server as
 * RpcRequest.timeout_ms and bounds the wait for the reply.
 * Set both before sharing the client between threads.
 */
int vgen_client_set_token(vgen_client *c, const char *token);
void vgen_client_set_timeout(vgen_client *c, uint32_t ms);

/*
 * The outcome of a call: a vgen.v1.StatusCode number (0 OK) and a message
 * for people.  Violations list the bad fields of an INVALID_ARGUMENT.
 */
struct vgen_status {
	int code;
	char message[256];
	size_t nviolations;
	struct {
		char field[64];
		char description[128];
	} violations[8];
};

/* vgen_status_name: "OK", "NOT_FOUND", ...; "UNKNOWN" for other numbers. */
const char *vgen_status_name(int code);

/*
 * vgen_call sends `req` to `method` ("/vgen.v1.UserService/GetMe") and
 * waits for the reply.  Returns the status code (0 OK) and fills *st when
 * st is not NULL.  Transport failures become UNAVAILABLE (no server),
 * DEADLINE_EXCEEDED (no reply in time) or INTERNAL (unreadable reply).
 * On OK, *resp is the decoded reply message of type `resp_desc`; the
 * caller frees it with protobuf_c_message_free_unpacked(*resp, NULL).
 * On any other status *resp is NULL.
 */
int vgen_call(vgen_client *c, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
    struct vgen_status *st);

/*
 * vgen_call_raw sends the bytes of one frame as they are and returns the
 * reply frame in *reply (malloc'd; caller frees) and its length.  For
 * tools and tests that speak the envelope themselves.  Returns 0, or the
 * transport status (UNAVAILABLE, DEADLINE_EXCEEDED).
 */
int vgen_call_raw(vgen_client *c, const void *frame, size_t len,
    void **reply, size_t *rlen);

/*
 * vgen_service_new wraps the client as a ProtobufCService for the
 * generated stubs (vgen__v1__user_service__login() and friends).  The
 * stub's closure receives the reply, or NULL when the status is not OK;
 * vgen_service_last_status then tells why (per thread).  Free with
 * protobuf_c_service_destroy(); the client must outlive it.
 */
ProtobufCService *vgen_service_new(vgen_client *c,
    const ProtobufCServiceDescriptor *desc);
const struct vgen_status *vgen_service_last_status(void);

#endif /* VGEN_H */
