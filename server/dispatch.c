/*
 * server/dispatch.c: from a frame to a reply.  The method table is built
 * from protoc-c's service descriptors, so decoding and encoding are generic:
 * a method name finds its input and output descriptors and its handler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_int.h"

struct srv_table {
	size_t n;
	struct srv_method methods[];
};

static int
method_cmp(const void *a, const void *b)
{
	return strcmp(((const struct srv_method *)a)->full,
	    ((const struct srv_method *)b)->full);
}

struct srv_table *
srv_table_new(const struct srv_service_def *services)
{
	struct srv_table *t;
	size_t n = 0, i = 0;

	for (const struct srv_service_def *sd = services; sd->desc; sd++)
		n += sd->desc->n_methods;
	t = calloc(1, sizeof(*t) + n * sizeof(t->methods[0]));
	if (t == NULL)
		return NULL;
	for (const struct srv_service_def *sd = services; sd->desc; sd++) {
		for (unsigned k = 0; k < sd->desc->n_methods; k++) {
			const ProtobufCMethodDescriptor *md =
			    &sd->desc->methods[k];
			struct srv_method *m = &t->methods[i++];

			snprintf(m->full, sizeof(m->full), "/%s/%s",
			    sd->desc->name, md->name);
			m->in = md->input;
			m->out = md->output;
			for (const struct srv_handler_def *h = sd->handlers;
			    h != NULL && h->name != NULL; h++)
				if (strcmp(h->name, md->name) == 0)
					m->def = h;
		}
	}
	t->n = n;
	qsort(t->methods, n, sizeof(t->methods[0]), method_cmp);
	return t;
}

void
srv_table_free(struct srv_table *t)
{
	free(t);
}

const struct srv_method *
srv_table_find(const struct srv_table *t, const char *full)
{
	struct srv_method key;

	if (strlen(full) >= sizeof(key.full))
		return NULL;
	strcpy(key.full, full);
	return bsearch(&key, t->methods, t->n, sizeof(t->methods[0]),
	    method_cmp);
}

void
srv_dispatch_prepare(struct srv *s, const struct srv_table *t, nng_msg *msg,
    struct srv_req *r)
{
	(void)s;
	memset(r, 0, sizeof(*r));
	r->recv_ms = vg_now_ms();
	r->env = vg_env_request_decode(nng_msg_body(msg), nng_msg_len(msg));
	if (r->env != NULL)
		r->m = srv_table_find(t, r->env->method);
}

enum srv_lane
srv_req_lane(const struct srv_req *r)
{
	if (r->env == NULL || r->m == NULL || r->m->def == NULL)
		return SRV_LANE_INLINE;	/* an error reply needs no thread */
	return r->m->def->lane;
}

void
srv_req_fini(struct srv_req *r)
{
	if (r->env != NULL)
		vgen__v1__rpc_request__free_unpacked(r->env, NULL);
	r->env = NULL;
}

/* request_id is echoed and logged: keep it short and printable. */
static bool
request_id_ok(const char *id)
{
	size_t n = 0;

	for (; id[n] != '\0'; n++)
		if ((unsigned char)id[n] < 0x21 || (unsigned char)id[n] > 0x7e)
			return false;
	return n <= 128;
}

/* Confirms that the token's user still exists: one query on call->db. */
enum vg_status
srv_call_user_check(struct srv_call *call)
{
	return srv_call_user_status(call,
	    store_user_exists(call->db, call->user_id));
}

/* Packs `out` into call memory as *payload: OK, or the status of ENOMEM. */
static enum vg_status
payload_pack(struct srv_call *call, const ProtobufCMessage *out,
    ProtobufCBinaryData *payload)
{
	payload->len = protobuf_c_message_get_packed_size(out);
	payload->data = srv_call_alloc(call, payload->len + 1);
	if (payload->data == NULL)
		return srv_call_status(call, VG_ENOMEM);
	protobuf_c_message_pack(out, payload->data);
	return VG_STATUS_OK;
}

/* Runs the handler; fills call->message/violations and *payload on OK. */
static enum vg_status
call_method(struct srv *s, struct srv_call *call, const struct srv_req *r,
    ProtobufCBinaryData *payload)
{
	const struct srv_method *m = r->m;
	const Vgen__V1__RpcRequest *env = r->env;
	ProtobufCMessage *in = NULL, *out;
	enum vg_status st;
	const char *bad;

	if (m == NULL)
		return srv_call_fail(call, VG_UNIMPLEMENTED, "unknown method");
	if (m->def == NULL)
		return srv_call_fail(call, VG_UNIMPLEMENTED,
		    "method not implemented");
	if (vg_now_ms() >= call->deadline_ms)
		return srv_call_fail(call, VG_DEADLINE_EXCEEDED,
		    "deadline passed before the call started");
	if (m->def->flags & SRV_AUTH) {
		if (srv_token_verify(s->auth, env->authorization,
		    call->user_id) < 0)
			return srv_call_fail(call, VG_UNAUTHENTICATED,
			    "missing, invalid or expired token");
	}
	bad = srv_wire_check(m->in, env->payload.data, env->payload.len);
	if (bad != NULL)
		return srv_call_invalid(call, bad,
		    "must be valid UTF-8 without NUL bytes");
	in = protobuf_c_message_unpack(m->in, NULL, env->payload.len,
	    env->payload.data);
	if (in == NULL)
		return srv_call_fail(call, VG_INVALID_ARGUMENT,
		    "payload is not a valid request message for this method");
	if ((m->def->flags & (SRV_AUTH | SRV_SELF_CHECK)) == SRV_AUTH) {
		st = srv_call_user_check(call);
		if (st != VG_STATUS_OK)
			goto out;
	}
	out = srv_call_alloc(call, m->out->sizeof_message);
	if (out == NULL) {
		st = srv_call_status(call, VG_ENOMEM);
		goto out;
	}
	m->out->message_init(out);
	call->out = out;
	st = m->def->fn(call, in, out);
	/* A deferred call may be answered already: leave it alone.  The
	 * response may point into `in`: packed before `in` is freed. */
	if (!call->deferred && st == VG_STATUS_OK)
		st = payload_pack(call, out, payload);
out:
	protobuf_c_message_free_unpacked(in, NULL);
	return st;
}

/* Packs the envelope of call's answer; frees the call's memory. */
static void
reply_pack(struct srv_call *call, enum vg_status st,
    ProtobufCBinaryData payload, nng_msg **reply)
{
	Vgen__V1__RpcResponse resp = VGEN__V1__RPC_RESPONSE__INIT;
	Vgen__V1__FieldViolation vio[SRV_MAX_VIOLATIONS];
	Vgen__V1__FieldViolation *viop[SRV_MAX_VIOLATIONS];

	resp.code = (Vgen__V1__StatusCode)st;
	resp.request_id = (char *)call->request_id;
	if (st != VG_STATUS_OK) {
		resp.message = (char *)(call->message ? call->message :
		    vg_status_name(st));
	} else {
		resp.payload = payload;
	}
	for (size_t i = 0; i < call->nviolations; i++) {
		vgen__v1__field_violation__init(&vio[i]);
		vio[i].field = (char *)call->violations[i].field;
		vio[i].description = (char *)call->violations[i].description;
		viop[i] = &vio[i];
	}
	resp.n_violations = call->nviolations;
	resp.violations = viop;
	vg_debug("call method=%s request_id=%s code=%s ms=%lld",
	    call->method ? call->method : "-", call->request_id,
	    vg_status_name(st), (long long)(vg_now_ms() - call->start_ms));
	if (vg_env_pack(&resp.base, reply) < 0)
		*reply = NULL;
	srv_arena_free(&call->arena);
}

void
srv_dispatch_answer(struct srv_call *call, enum vg_status st,
    const ProtobufCMessage *out, nng_msg **reply)
{
	ProtobufCBinaryData payload = { 0, NULL };

	if (st == VG_STATUS_OK && out == NULL)
		st = srv_call_status(call, VG_ENOMEM);
	if (st == VG_STATUS_OK)
		st = payload_pack(call, out, &payload);
	reply_pack(call, st, payload, reply);
}

void
srv_call_defer(struct srv_call *call)
{
	call->deferred = true;
	atomic_init(&call->gate, 2);
}

/* The second of the dispatcher and the resume to get here answers. */
static void
deferred_pass(struct srv_call *call)
{
	nng_msg *reply;

	if (atomic_fetch_sub(&call->gate, 1) != 1)
		return;
	srv_dispatch_answer(call, call->deferred_st,
	    call->deferred_st == VG_STATUS_OK ? call->out : NULL, &reply);
	call->req->answer(call->req, reply);
}

void
srv_call_resume(struct srv_call *call, enum vg_status st)
{
	VG_ASSERT(call->deferred);
	call->deferred_st = st;
	deferred_pass(call);
}

bool
srv_dispatch_run(struct srv *s, struct srv_req *r, store_conn *db,
    nng_msg **reply, struct srv_park *park)
{
	ProtobufCBinaryData payload = { 0, NULL };
	struct srv_call *call = &r->call;
	enum vg_status st;
	int64_t timeout;

	memset(call, 0, sizeof(*call));
	call->srv = s;
	call->req = r;
	call->db = db;
	call->start_ms = vg_now_ms();
	call->request_id = "";
	if (r->env == NULL) {
		st = srv_call_fail(call, VG_INVALID_ARGUMENT,
		    "malformed frame: not a vgen.v1.RpcRequest");
	} else if (!request_id_ok(r->env->request_id)) {
		st = srv_call_invalid(call, "request_id",
		    "at most 128 printable ASCII characters");
	} else {
		call->m = r->m;
		call->method = r->env->method;
		call->request_id = r->env->request_id;
		call->authorization = r->env->authorization;
		timeout = r->env->timeout_ms ? (int64_t)r->env->timeout_ms :
		    s->cfg.default_timeout_ms;
		call->deadline_ms = r->recv_ms + timeout;
		st = call_method(s, call, r, &payload);
		if (call->deferred) {
			*reply = NULL;
			deferred_pass(call);
			return false;
		}
	}
	/* The reply is packed even for a parked call: it is the answer
	 * should parking be refused. */
	if (park != NULL)
		*park = st == VG_STATUS_OK ? call->park : (struct srv_park){ 0 };
	reply_pack(call, st, payload, reply);
	return true;
}
