/*
 * tests/unit/common_envelope_test.c: common/envelope.c.  Round trips, and
 * frames that are not envelopes: malformed, truncated, empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "vg.h"

static void
test_request_round_trip_keeps_every_field(void **state)
{
	Vgen__V1__RpcRequest in = VGEN__V1__RPC_REQUEST__INIT, *out;
	uint8_t payload[] = { 0x0a, 0x03, 'a', 0x00, 'b' };
	nng_msg *msg = NULL;

	(void)state;
	in.method = "/vgen.v1.UserService/Login";
	in.payload.data = payload;
	in.payload.len = sizeof(payload);
	in.authorization = "Bearer x.y.z";
	in.request_id = "r-1";
	in.timeout_ms = 1234;
	assert_int_equal(vg_env_pack(&in.base, &msg), 0);
	out = vg_env_request_decode(nng_msg_body(msg), nng_msg_len(msg));
	assert_non_null(out);
	assert_string_equal(out->method, in.method);
	assert_string_equal(out->authorization, in.authorization);
	assert_string_equal(out->request_id, "r-1");
	assert_int_equal(out->timeout_ms, 1234);
	assert_int_equal(out->payload.len, sizeof(payload));
	assert_memory_equal(out->payload.data, payload, sizeof(payload));
	vgen__v1__rpc_request__free_unpacked(out, NULL);
	nng_msg_free(msg);
}

static void
test_response_round_trip_keeps_violations(void **state)
{
	Vgen__V1__RpcResponse in = VGEN__V1__RPC_RESPONSE__INIT, *out;
	Vgen__V1__FieldViolation v = VGEN__V1__FIELD_VIOLATION__INIT, *vp = &v;
	nng_msg *msg = NULL;

	(void)state;
	in.code = VGEN__V1__STATUS_CODE__INVALID_ARGUMENT;
	in.message = "invalid argument";
	in.request_id = "r-2";
	v.field = "email";
	v.description = "required";
	in.n_violations = 1;
	in.violations = &vp;
	assert_int_equal(vg_env_pack(&in.base, &msg), 0);
	out = vg_env_response_decode(nng_msg_body(msg), nng_msg_len(msg));
	assert_non_null(out);
	assert_int_equal(out->code, VG_INVALID_ARGUMENT);
	assert_int_equal(out->n_violations, 1);
	assert_string_equal(out->violations[0]->field, "email");
	assert_string_equal(out->violations[0]->description, "required");
	vgen__v1__rpc_response__free_unpacked(out, NULL);
	nng_msg_free(msg);
}

static void
test_empty_frame_is_an_empty_request(void **state)
{
	Vgen__V1__RpcRequest *out;

	(void)state;
	/* Zero bytes are a valid proto3 message with every field default:
	 * dispatch then finds no method "" and answers UNIMPLEMENTED. */
	out = vg_env_request_decode("", 0);
	assert_non_null(out);
	assert_string_equal(out->method, "");
	vgen__v1__rpc_request__free_unpacked(out, NULL);
}

static void
test_garbage_and_truncated_frames_are_rejected(void **state)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff };
	/* field 1 (string) announcing 100 bytes, carrying 3 */
	static const uint8_t truncated[] = { 0x0a, 100, 'a', 'b', 'c' };
	/* field 5 (varint) cut inside its varint */
	static const uint8_t cut_varint[] = { 0x28, 0x80 };
	/* wire type 7 does not exist */
	static const uint8_t bad_type[] = { 0x0f, 0x00 };
	Vgen__V1__RpcRequest in = VGEN__V1__RPC_REQUEST__INIT;
	nng_msg *msg = NULL;

	(void)state;
	assert_null(vg_env_request_decode(garbage, sizeof(garbage)));
	assert_null(vg_env_request_decode(truncated, sizeof(truncated)));
	assert_null(vg_env_request_decode(cut_varint, sizeof(cut_varint)));
	assert_null(vg_env_request_decode(bad_type, sizeof(bad_type)));
	assert_null(vg_env_response_decode(garbage, sizeof(garbage)));

	/* Every strict prefix of a real frame that cuts a field is refused. */
	in.method = "/vgen.v1.HealthService/Check";
	in.request_id = "abc";
	assert_int_equal(vg_env_pack(&in.base, &msg), 0);
	for (size_t n = 1; n < nng_msg_len(msg); n++) {
		Vgen__V1__RpcRequest *out =
		    vg_env_request_decode(nng_msg_body(msg), n);

		/* a cut on a field boundary is a shorter valid message */
		if (out != NULL) {
			assert_true(strlen(out->method) == 0 ||
			    strcmp(out->method, in.method) == 0);
			vgen__v1__rpc_request__free_unpacked(out, NULL);
		}
	}
	assert_null(vg_env_request_decode(nng_msg_body(msg), 10));
	nng_msg_free(msg);
}

static void
test_status_table_maps_codes(void **state)
{
	(void)state;
	assert_int_equal(vg_status_from_code(0), VG_STATUS_OK);
	assert_int_equal(vg_status_from_code(VG_ENOTFOUND), VG_NOT_FOUND);
	assert_int_equal(vg_status_from_code(VG_EUNAVAIL), VG_UNAVAILABLE);
	assert_int_equal(vg_status_from_code(VG_EAUTH), VG_UNAUTHENTICATED);
	assert_int_equal(vg_status_from_code(VG_EEXISTS), VG_ALREADY_EXISTS);
	assert_int_equal(vg_status_from_code(-999), VG_INTERNAL);
	assert_string_equal(vg_status_name(16), "UNAUTHENTICATED");
	assert_string_equal(vg_status_name(0), "OK");
	assert_string_equal(vg_status_name(17), "UNKNOWN");
	assert_string_equal(vg_status_name(-1), "UNKNOWN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trip_keeps_every_field),
		cmocka_unit_test(test_response_round_trip_keeps_violations),
		cmocka_unit_test(test_empty_frame_is_an_empty_request),
		cmocka_unit_test(test_garbage_and_truncated_frames_are_rejected),
		cmocka_unit_test(test_status_table_maps_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
