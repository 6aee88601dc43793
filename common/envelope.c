/*
 * common/envelope.c: the RPC frame.  Every request frame is one
 * vgen.v1.RpcRequest and every reply one vgen.v1.RpcResponse (DESIGN §4).
 */
#include <nng/nng.h>

#include "vg.h"

Vgen__V1__RpcRequest *
vg_env_request_decode(const void *buf, size_t len)
{
	return vgen__v1__rpc_request__unpack(NULL, len, buf);
}

Vgen__V1__RpcResponse *
vg_env_response_decode(const void *buf, size_t len)
{
	return vgen__v1__rpc_response__unpack(NULL, len, buf);
}

int
vg_env_pack(const ProtobufCMessage *m, nng_msg **out)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	nng_msg *msg;

	if (nng_msg_alloc(&msg, len) != 0)
		return VG_ENOMEM;
	protobuf_c_message_pack(m, nng_msg_body(msg));
	*out = msg;
	return 0;
}
