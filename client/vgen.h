/*
 * client/vgen.h: libvgen-client, the C door to a vgen server.
 *
 * A vgen_client holds one nng req0 socket dialed to one or several server
 * URLs ("tcp://a:7400,tcp://b:7400"); nng spreads requests over the
 * servers it is connected to.  Calls are safe from many threads at once:
 * each call uses its own nng context.
 *
 * Retries.  nng's req0 resends a request after req:resend-time and after
 * a reconnect, so a server could run one call twice.  The client never
 * lets it: it sets resend-time to infinite, with which req0 neither
 * repeats a slow call nor resends after a reconnect: a call whose
 * connection drops before the reply fails at once with UNAVAILABLE
 * ("connection lost before the reply").  As with gRPC, such a call may
 * or may not have run; calling again is the caller's choice, and every
 * mutating method is safe to repeat (CreateJob with an idempotency key,
 * Register answers ALREADY_EXISTS, UpdateProfile, CancelJob and
 * DeleteVideo are naturally idempotent).
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

/*
 * vgen_watch: the DESIGN §4 watcher pattern for internal services that
 * can reach the (unauthenticated) progress-event pub socket.  Outside
 * clients use WaitJob instead.
 *
 * vgen_watch_open subscribes to "job.<user_id>.<job_id>" on a sub0
 * socket dialed to `events_url` (e.g. "tcp://127.0.0.1:7401"; nng keeps
 * redialing while the publisher is away), then reads the job with GetJob
 * through `c`, which must carry a token of the job's owner.  The watch
 * borrows `c`: the client must outlive it.  Returns 0 and *out (free with
 * vgen_watch_close), or a status code: INVALID_ARGUMENT for a bad
 * argument or URL, RESOURCE_EXHAUSTED out of memory, UNAVAILABLE, or
 * GetJob's own status (NOT_FOUND, UNAUTHENTICATED, ...).
 *
 * vgen_watch_next returns the job's state when it is newer (by version)
 * than the last one this watch returned: first the state read by open,
 * then a fresh GetJob whenever an event with a higher version arrives,
 * or when nothing was heard for the quiet interval (VGEN_WATCH_QUIET_MS,
 * see vgen_watch_set_quiet), so dropped events only delay a watcher.
 * Returns 0 with *job (the caller frees it with
 * protobuf_c_message_free_unpacked(&(*job)->base, NULL)),
 * DEADLINE_EXCEEDED when nothing newer came within timeout_ms (0: only
 * what is already at hand), or the status of a failed GetJob
 * (UNAVAILABLE ...: calling again is fine).  *job is NULL unless 0.
 * A watch is used by one thread at a time; different watches are
 * independent.
 *
 * vgen_watch_done is true for COMPLETED and FAILED (nothing newer will
 * follow).  vgen_watch_close frees the watch; NULL is a no-op.
 */
typedef struct vgen_watch vgen_watch;

#define VGEN_WATCH_QUIET_MS 2000

int vgen_watch_open(vgen_client *c, const char *events_url,
    const char *user_id, const char *job_id, vgen_watch **out);
int vgen_watch_next(vgen_watch *w, int timeout_ms, Vgen__V1__VideoJob **job);
/* vgen_watch_set_quiet: the quiet re-read interval in ms (<= 0: default). */
void vgen_watch_set_quiet(vgen_watch *w, int quiet_ms);
bool vgen_watch_done(const Vgen__V1__VideoJob *j);
void vgen_watch_close(vgen_watch *w);

#endif /* VGEN_H */
