/*
 * tests/unit/common_validate_test.c: common/validate.c, as case tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "vg.h"

static void
test_email_table(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{ "a@example.com", true },
		{ "first.last+tag@sub.example.co", true },
		{ "x@y.z", true },
		{ "no-at.example.com", false },
		{ "@example.com", false },
		{ "user@", false },
		{ "user@example", false },
		{ "two@@example.com", false },
		{ "a@b@example.com", false },
		{ "sp ace@example.com", false },
		{ "user@exa mple.com", false },
		{ ".lead@example.com", false },
		{ "trail.@example.com", false },
		{ "dou..ble@example.com", false },
		{ "user@-bad.com", false },
		{ "user@bad-.com", false },
		{ "user@example..com", false },
		{ "", false },
		{ "ünï@example.com", false },
	};
	char big[300];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (vg_email_valid(cases[i].s) != cases[i].ok)
			fail_msg("email \"%s\": expected %d", cases[i].s,
			    cases[i].ok);
	/* 256 bytes: one over the column */
	memset(big, 'a', sizeof(big));
	memcpy(big + 256 - 12, "@example.com", 13);
	assert_int_equal(strlen(big), 256);
	assert_false(vg_email_valid(big));
	/* a 65-byte local part */
	memset(big, 'a', 65);
	strcpy(big + 65, "@example.com");
	assert_false(vg_email_valid(big));
}

static void
test_utf8_table(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		bool ok;
	} cases[] = {
		{ "plain", 5, true },
		{ "F\xc3\xb6\xc3\xb6", 5, true },		/* Föö */
		{ "\xe2\x82\xac", 3, true },			/* € */
		{ "\xf0\x9f\x8e\xac", 4, true },		/* 🎬 */
		{ "a\0b", 3, false },				/* NUL */
		{ "\xc0\xaf", 2, false },			/* overlong / */
		{ "\xe0\x80\xaf", 3, false },			/* overlong */
		{ "\xed\xa0\x80", 3, false },			/* surrogate */
		{ "\xf4\x90\x80\x80", 4, false },		/* > U+10FFFF */
		{ "\x80", 1, false },				/* lone cont. */
		{ "\xc3", 1, false },				/* truncated */
		{ "\xe2\x82", 2, false },			/* truncated */
		{ "\xff", 1, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (vg_utf8_valid(cases[i].s, cases[i].len) != cases[i].ok)
			fail_msg("utf8 case %zu: expected %d", i, cases[i].ok);
	assert_int_equal(vg_utf8_len("F\xc3\xb6\xc3\xb6"), 3);
	assert_int_equal(vg_utf8_len("\xf0\x9f\x8e\xac!"), 2);
}

static void
test_uuid_is_canonical_only(void **state)
{
	(void)state;
	assert_true(vg_uuid_valid("71b4924c-c817-4265-96e9-7c53f802d2be"));
	assert_true(vg_uuid_valid("71B4924C-C817-4265-96E9-7C53F802D2BE"));
	/* PostgreSQL would accept these: we do not. */
	assert_false(vg_uuid_valid("{71b4924c-c817-4265-96e9-7c53f802d2be}"));
	assert_false(vg_uuid_valid("71b4924cc817426596e97c53f802d2be"));
	assert_false(vg_uuid_valid("71b4924c-c817-4265-96e9-7c53f802d2b"));
	assert_false(vg_uuid_valid("71b4924c-c817-4265-96e9-7c53f802d2bee"));
	assert_false(vg_uuid_valid("71b4924g-c817-4265-96e9-7c53f802d2be"));
	assert_false(vg_uuid_valid(""));
	assert_false(vg_uuid_valid(NULL));
}

static void
test_hex_decode(void **state)
{
	static const char digits[] = "0123456789abcdefABCDEF";
	unsigned char b[8];
	char two[3] = { 0 };

	(void)state;
	/* every pair of digits, either case, gives its byte */
	for (size_t i = 0; i < sizeof(digits) - 1; i++)
		for (size_t j = 0; j < sizeof(digits) - 1; j++) {
			unsigned hi, lo;

			two[0] = digits[i];
			two[1] = digits[j];
			hi = i < 16 ? (unsigned)i : (unsigned)i - 6;
			lo = j < 16 ? (unsigned)j : (unsigned)j - 6;
			assert_true(vg_hex_decode(b, 1, two));
			assert_int_equal(b[0], hi << 4 | lo);
		}
	assert_true(vg_hex_decode(b, 8, "00010203fFfEfdfc9"));
	assert_memory_equal(b, "\x00\x01\x02\x03\xff\xfe\xfd\xfc", 8);
	assert_true(vg_hex_decode(b, 0, ""));
	/* a non-digit anywhere, or the string ending early */
	assert_false(vg_hex_decode(b, 8, "00010203fffefdf"));
	assert_false(vg_hex_decode(b, 8, "0001020 fffefdfc"));
	assert_false(vg_hex_decode(b, 1, "g0"));
	assert_false(vg_hex_decode(b, 1, "0g"));
	assert_false(vg_hex_decode(b, 1, "-1"));
	assert_false(vg_hex_decode(b, 1, "0"));
	assert_false(vg_hex_decode(b, 1, ""));
}

static void
test_http_url_table(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{ "https://cdn.example.com/a.png", true },
		{ "http://example.com", true },
		{ "https://example.com:8443/x?y=1#z", true },
		{ "https://[::1]/x", true },
		{ "ftp://example.com/a.png", false },
		{ "javascript:alert(1)", false },
		{ "file:///etc/passwd", false },
		{ "https://", false },
		{ "https:///path", false },
		{ "https://exa mple.com/", false },
		{ "https://user:pw@example.com/", false },
		{ "https://example.com:99999/", false },
		{ "https://example.com:/", false },
		{ "https://exa_mple.com/", false },
		{ "https://example.com/\x01", false },
		{ "not a url", false },
		{ "", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (vg_http_url_valid(cases[i].s) != cases[i].ok)
			fail_msg("url \"%s\": expected %d", cases[i].s,
			    cases[i].ok);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_email_table),
		cmocka_unit_test(test_utf8_table),
		cmocka_unit_test(test_uuid_is_canonical_only),
		cmocka_unit_test(test_hex_decode),
		cmocka_unit_test(test_http_url_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
