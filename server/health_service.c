/*
 * server/health_service.c: HealthService/Check, shaped like
 * grpc.health.v1.  Answered inline (no I/O): the database's state comes
 * from the probe thread in listen.c.
 */
#include <string.h>

#include "srv_int.h"

static const char *const known_services[] = {
	"vgen.v1.UserService",
	"vgen.v1.VideoJobService",
	"vgen.v1.VideoService",
	"vgen.v1.HealthService",
	NULL,
};

static enum vg_status
check(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__HealthCheckRequest *req = in;
	Vgen__V1__HealthCheckResponse *resp = out;
	bool known = req->service[0] == '\0';

	for (size_t i = 0; !known && known_services[i] != NULL; i++)
		known = strcmp(req->service, known_services[i]) == 0;
	if (!known)
		return srv_call_fail(call, VG_NOT_FOUND, "unknown service");
	if (strcmp(req->service, "vgen.v1.HealthService") == 0 ||
	    atomic_load(&call->srv->db_ok))
		resp->status = VGEN__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	else
		resp->status = VGEN__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	return VG_STATUS_OK;
}

const struct srv_handler_def srv_health_handlers[] = {
	{ "Check", check, SRV_LANE_INLINE, 0 },
	{ NULL, NULL, 0, 0 },
};
