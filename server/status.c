/*
 * server/status.c: the RPC edge's status helpers.  VG_E* codes become
 * statuses through the one table in common/status.c; what is missing there
 * is INTERNAL and logged by the dispatcher with the request id.
 */
#include "srv_int.h"

enum vg_status
srv_call_status(struct srv_call *call, int rv)
{
	enum vg_status st;

	if (rv >= 0)
		return VG_STATUS_OK;
	st = vg_status_from_code(rv);
	if (call->message == NULL)
		call->message = vg_strerror(rv);
	if (st == VG_INTERNAL || rv == VG_EINTERNAL)
		vg_error("call failed method=%s request_id=%s code=%d (%s)",
		    call->method, call->request_id, rv, vg_strerror(rv));
	return st;
}

enum vg_status
srv_call_invalid(struct srv_call *call, const char *field,
    const char *description)
{
	if (call->nviolations < SRV_MAX_VIOLATIONS) {
		call->violations[call->nviolations].field = field;
		call->violations[call->nviolations].description = description;
		call->nviolations++;
	}
	if (call->message == NULL)
		call->message = "invalid argument";
	return VG_INVALID_ARGUMENT;
}

enum vg_status
srv_call_fail(struct srv_call *call, enum vg_status st, const char *message)
{
	call->message = message;
	return st;
}

enum vg_status
srv_call_user_status(struct srv_call *call, int rv)
{
	if (rv == VG_ENOTFOUND)
		return srv_call_fail(call, VG_UNAUTHENTICATED,
		    "the token's user no longer exists");
	return srv_call_status(call, rv);
}

