/*
 * client/ctl_health.c: 'vgenctl health', over vgen.v1.HealthService, for
 * people and for probes: the exit status is 0 only when the server (or
 * the named service) is SERVING.
 */
#include "ctl.h"

int
ctl_health(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	Vgen__V1__HealthCheckRequest req = VGEN__V1__HEALTH_CHECK_REQUEST__INIT;
	Vgen__V1__HealthCheckResponse *resp;
	ProtobufCMessage *m = NULL;
	struct vgen_status st;
	char *service = NULL;
	json_t *obj = NULL;
	const struct ctl_flag flags[] = {
		{ "service", CTL_FLAG_STR, &service, "NAME", "a service, "
		    "such as vgen.v1.UserService (default: the server)" },
		{ NULL },
	};
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	rv = ctl_connect(ctl, false);
	if (rv != 0)
		return rv;

	if (service != NULL)
		req.service = service;
	if (vgen_call(ctl->client, "/vgen.v1.HealthService/Check", &req.base,
	    &vgen__v1__health_check_response__descriptor, &m, &st) != 0)
		return ctl_rpc_fail(ctl, &st);
	resp = (Vgen__V1__HealthCheckResponse *)m;

	obj = json_object();
	if (json_object_set_new(obj, "status", ctl_json_enum(
	    &vgen__v1__health_check_response__serving_status__descriptor,
	    resp->status)) < 0) {
		json_decref(obj);
		obj = NULL;
	}
	rv = ctl_print(ctl, obj);
	if (rv == 0 && resp->status !=
	    VGEN__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
		rv = CTL_EXIT_RPC;
	json_decref(obj);
	protobuf_c_message_free_unpacked(m, NULL);
	return rv;
}
