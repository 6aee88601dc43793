/*
 * common/status.c: VG_E* codes, their phrases, and the one table that turns
 * a code into the RPC status a caller sees.
 */
#include "vg.h"

static const struct {
	int code;
	const char *phrase;
	enum vg_status status;
} codes[] = {
	{ VG_OK, "success", VG_STATUS_OK },
	{ VG_ENOMEM, "out of memory", VG_RESOURCE_EXHAUSTED },
	{ VG_EINVAL, "invalid argument", VG_INVALID_ARGUMENT },
	{ VG_ENOTFOUND, "not found", VG_NOT_FOUND },
	{ VG_EEXISTS, "already exists", VG_ALREADY_EXISTS },
	{ VG_ESTALE, "stale: the row changed hands", VG_ABORTED },
	{ VG_EUNAVAIL, "service unavailable", VG_UNAVAILABLE },
	{ VG_ETIMEDOUT, "deadline exceeded", VG_DEADLINE_EXCEEDED },
	{ VG_ETOOBIG, "too large", VG_RESOURCE_EXHAUSTED },
	{ VG_EINTERNAL, "internal error", VG_INTERNAL },
	{ VG_EAUTH, "unauthenticated", VG_UNAUTHENTICATED },
	{ VG_ELIMIT, "limit reached", VG_RESOURCE_EXHAUSTED },
	{ VG_EIMPL, "not implemented", VG_UNIMPLEMENTED },
	{ VG_EPERM, "permission denied", VG_PERMISSION_DENIED },
	{ VG_EPROTO, "malformed message", VG_INVALID_ARGUMENT },
};

static const char *const status_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
	"DATA_LOSS", "UNAUTHENTICATED",
};

const char *
vg_strerror(int code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == code)
			return codes[i].phrase;
	return "unknown error";
}

enum vg_status
vg_status_from_code(int code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == code)
			return codes[i].status;
	return VG_INTERNAL;
}

const char *
vg_status_name(int status)
{
	if (status < 0 ||
	    (size_t)status >= sizeof(status_names) / sizeof(status_names[0]))
		return "UNKNOWN";
	return status_names[status];
}
