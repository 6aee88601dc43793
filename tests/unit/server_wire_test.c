/*
 * tests/unit/server_wire_test.c: server/wire.c sees what protobuf-c hides,
 * a NUL byte or invalid UTF-8 inside a string field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "srv_int.h"

/* Serializes field 1 (email) and field 2 (password) by hand. */
static size_t
frame(uint8_t *buf, const char *email, size_t elen, const char *pw,
    size_t plen)
{
	size_t n = 0;

	buf[n++] = 0x0a;
	buf[n++] = (uint8_t)elen;
	memcpy(buf + n, email, elen);
	n += elen;
	buf[n++] = 0x12;
	buf[n++] = (uint8_t)plen;
	memcpy(buf + n, pw, plen);
	return n + plen;
}

static void
test_clean_strings_pass(void **state)
{
	uint8_t buf[128];
	size_t n = frame(buf, "a@b.co", 6, "p\xc3\xa4ssword", 9);

	(void)state;
	assert_null(srv_wire_check(&vgen__v1__login_request__descriptor, buf,
	    n));
}

static void
test_nul_in_password_is_named(void **state)
{
	uint8_t buf[128];
	size_t n = frame(buf, "a@b.co", 6, "abc\0defgh", 9);
	Vgen__V1__LoginRequest *req;

	(void)state;
	/* protobuf-c alone would hand us "abc". */
	req = vgen__v1__login_request__unpack(NULL, n, buf);
	assert_non_null(req);
	assert_string_equal(req->password, "abc");
	vgen__v1__login_request__free_unpacked(req, NULL);
	assert_string_equal(srv_wire_check(
	    &vgen__v1__login_request__descriptor, buf, n), "password");
}

static void
test_invalid_utf8_is_named(void **state)
{
	uint8_t buf[128];
	size_t n = frame(buf, "a\xff@b.co", 7, "password", 8);

	(void)state;
	assert_string_equal(srv_wire_check(
	    &vgen__v1__login_request__descriptor, buf, n), "email");
}

static void
test_nested_wrapper_is_checked(void **state)
{
	/* UpdateProfileRequest.username = StringValue{value = "a\0b"} */
	static const uint8_t buf[] = { 0x0a, 0x05, 0x0a, 0x03, 'a', 0, 'b' };

	(void)state;
	assert_string_equal(srv_wire_check(
	    &vgen__v1__update_profile_request__descriptor, buf, sizeof(buf)),
	    "username");
}

static void
test_bytes_fields_and_garbage_are_left_to_unpack(void **state)
{
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff };
	/* RpcRequest.payload (bytes) may hold anything */
	static const uint8_t bytes[] = { 0x12, 0x02, 0x00, 0xff };

	(void)state;
	assert_null(srv_wire_check(&vgen__v1__login_request__descriptor,
	    garbage, sizeof(garbage)));
	assert_null(srv_wire_check(&vgen__v1__rpc_request__descriptor, bytes,
	    sizeof(bytes)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_strings_pass),
		cmocka_unit_test(test_nul_in_password_is_named),
		cmocka_unit_test(test_invalid_utf8_is_named),
		cmocka_unit_test(test_nested_wrapper_is_checked),
		cmocka_unit_test(test_bytes_fields_and_garbage_are_left_to_unpack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
