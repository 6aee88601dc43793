/*
 * tests/unit/server_auth_test.c: server/auth.c with the real libxcrypt,
 * libjwt and libsodium.  Every guard auth.c adds around those libraries
 * has a case here that the library alone would get wrong.  bcrypt runs at
 * cost 4 for speed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>
#include <sodium.h>

#include "srv.h"

#define SECRET "0123456789abcdef0123456789abcdef"	/* 32 bytes */
#define OTHER_SECRET "fedcba9876543210fedcba9876543210"
#define USER "0b7c5e2a-3f4d-4e8a-9c1b-2d3e4f5a6b7c"
#define PW "correct horse battery"
#define TTL 3600

static int
setup(void **state)
{
	struct srv_auth *a = NULL;

	if (srv_auth_new(SECRET, strlen(SECRET), 4, TTL, &a) != 0)
		return -1;
	*state = a;
	return 0;
}

static int
teardown(void **state)
{
	srv_auth_free(*state);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* make_token signs `grants` (a JSON object) with libjwt; caller frees. */
static char *
make_token(jwt_alg_t alg, const char *key, const char *grants)
{
	jwt_t *jwt = NULL;
	char *tok;

	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key,
	    (int)strlen(key)), 0);
	assert_int_equal(jwt_add_grants_json(jwt, grants), 0);
	tok = jwt_encode_str(jwt);
	assert_non_null(tok);
	jwt_free(jwt);
	return tok;
}

/* make_claims prints a claim set with times relative to now. */
static void
make_claims(char *buf, size_t size, const char *sub, const char *iss,
    long iat_off, long exp_off)
{
	long now = (long)time(NULL);

	snprintf(buf, size,
	    "{\"sub\":\"%s\",\"iss\":\"%s\",\"iat\":%ld,\"exp\":%ld}", sub,
	    iss, now + iat_off, now + exp_off);
}

static char *
good_token(const char *key)
{
	char claims[256];

	make_claims(claims, sizeof(claims), USER, "vgen", 0, 600);
	return make_token(JWT_ALG_HS256, key, claims);
}

static void
b64url(char *out, size_t size, const char *in)
{
	sodium_bin2base64(out, size, (const unsigned char *)in, strlen(in),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* expect_auth_fails: VG_EAUTH, and the out-parameter left alone. */
static void
expect_auth_fails(struct srv_auth *a, const char *tok)
{
	char uid[VG_UUID_STRLEN + 1];

	memset(uid, 'Z', sizeof(uid));
	assert_int_equal(srv_token_verify(a, tok, uid), VG_EAUTH);
	for (size_t i = 0; i < sizeof(uid); i++)
		assert_int_equal(uid[i], 'Z');
}

static void
expect_claims_fail(struct srv_auth *a, const char *claims)
{
	char *tok = make_token(JWT_ALG_HS256, SECRET, claims);

	expect_auth_fails(a, tok);
	free(tok);
}

/* ---- passwords ---------------------------------------------------------- */

static void
test_policy_table(void **state)
{
	static const struct {
		const char *pw;
		size_t len;
		bool ok;
	} cases[] = {
		{ "1234567", 7, false },
		{ "12345678", 8, true },
		{ "123456789012345678901234567890123456789012345678901234567890"
		  "123456789012", 72, true },
		{ "123456789012345678901234567890123456789012345678901234567890"
		  "1234567890123", 73, false },
		{ "abcd\0efgh", 9, false },		/* NUL inside */
		{ "12345678\0", 9, false },		/* NUL at the end */
		{ "abcdefg\xff", 8, false },		/* invalid byte */
		{ "abcdef\xc0\xaf", 8, false },	/* overlong '/' */
		{ "abcdefg\xc3", 8, false },		/* cut sequence */
		{ "abcd\xed\xa0\x80x", 8, false },	/* surrogate */
		{ "p\xc3\xa4sswd\xc3\xb6rd", 11, true }, /* pässwdörd */
		{ "", 0, false },
	};

	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = srv_password_policy(cases[i].pw, cases[i].len);
		if ((why == NULL) != cases[i].ok)
			fail_msg("case %zu: %s", i, why ? why : "accepted");
	}
	assert_non_null(srv_password_policy(NULL, 8));
	/* A NUL is named as such, not reported as bad UTF-8. */
	why = srv_password_policy("abcd\0efgh", 9);
	assert_non_null(why);
	assert_non_null(strstr(why, "NUL"));
}

static void
test_hash_round_trip(void **state)
{
	struct srv_auth *a = *state;
	char h[SRV_HASH_MAX];

	assert_int_equal(srv_password_hash(a, PW, strlen(PW), h), 0);
	assert_memory_equal(h, "$2b$04$", 7);
	assert_int_equal(strlen(h), 60);
	assert_true(srv_password_verify(a, PW, strlen(PW), h));
	assert_false(srv_password_verify(a, "correct horse battery!", 22, h));
	assert_false(srv_password_verify(a, "wrong password", 14, h));
}

static void
test_hash_salt_is_fresh(void **state)
{
	struct srv_auth *a = *state;
	char h1[SRV_HASH_MAX], h2[SRV_HASH_MAX];

	assert_int_equal(srv_password_hash(a, PW, strlen(PW), h1), 0);
	assert_int_equal(srv_password_hash(a, PW, strlen(PW), h2), 0);
	assert_string_not_equal(h1, h2);
}

static void
test_hash_refuses_policy_failures(void **state)
{
	struct srv_auth *a = *state;
	char h[SRV_HASH_MAX];
	char long_pw[74];

	memset(long_pw, 'x', 73);
	long_pw[73] = '\0';
	assert_int_equal(srv_password_hash(a, long_pw, 73, h), VG_EINVAL);
	assert_int_equal(srv_password_hash(a, "short", 5, h), VG_EINVAL);
	assert_int_equal(srv_password_hash(a, "abcd\0efgh", 9, h), VG_EINVAL);
	assert_int_equal(srv_password_hash(a, "abcdefg\xff", 8, h),
	    VG_EINVAL);
}

/* bcrypt alone would match both of these: it ignores bytes after 72 and
 * after a NUL. */
static void
test_verify_never_truncates(void **state)
{
	struct srv_auth *a = *state;
	char h[SRV_HASH_MAX];
	char pw[74];

	memset(pw, 'y', 73);
	pw[73] = '\0';
	assert_int_equal(srv_password_hash(a, pw, 72, h), 0);
	assert_true(srv_password_verify(a, pw, 72, h));
	assert_false(srv_password_verify(a, pw, 73, h));

	assert_int_equal(srv_password_hash(a, "password", 8, h), 0);
	assert_false(srv_password_verify(a, "password\0xyz", 12, h));
}

/* crypt_hash hashes with any crypt setting, as an old or hostile row
 * might hold. */
static void
crypt_hash(const char *pw, const char *setting, char *out, size_t size)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;

	assert_non_null(cd);
	h = crypt_rn(pw, setting, cd, (int)sizeof(*cd));
	assert_non_null(h);
	assert_true(strlen(h) < size);
	strcpy(out, h);
	/* The hash does verify with plain crypt: only the guard stops it. */
	h = crypt_rn(pw, out, cd, (int)sizeof(*cd));
	assert_non_null(h);
	assert_string_equal(h, out);
	free(cd);
}

static void
test_verify_non_bcrypt_fails_closed(void **state)
{
	static const char *settings[] = {
		"ab",			/* traditional DES */
		"_J9..salt",		/* BSDi extended DES */
		"$1$saltsalt$",		/* MD5 */
		"$5$saltsalt$",		/* SHA-256 */
		"$6$saltsalt$",		/* SHA-512 */
		"$2x$04$abcdefghijklmnopqrstuu",	/* buggy-bcrypt mode */
	};
	struct srv_auth *a = *state;
	char h[CRYPT_OUTPUT_SIZE];

	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		crypt_hash(PW, settings[i], h, sizeof(h));
		assert_false(srv_password_verify(a, PW, strlen(PW), h));
	}
	assert_false(srv_password_verify(a, PW, strlen(PW), ""));
	assert_false(srv_password_verify(a, PW, strlen(PW), "*0"));
	assert_false(srv_password_verify(a, PW, strlen(PW), "$2b$"));
	assert_false(srv_password_verify(a, PW, strlen(PW), "$2b$04$short"));
}

static void
test_verify_accepts_2a_and_2y(void **state)
{
	struct srv_auth *a = *state;
	char h[CRYPT_OUTPUT_SIZE];

	crypt_hash(PW, "$2a$04$abcdefghijklmnopqrstuu", h, sizeof(h));
	assert_true(srv_password_verify(a, PW, strlen(PW), h));
	crypt_hash(PW, "$2y$04$abcdefghijklmnopqrstuu", h, sizeof(h));
	assert_true(srv_password_verify(a, PW, strlen(PW), h));
}

static void
test_verify_dummy_is_false(void **state)
{
	struct srv_auth *a = *state;

	assert_false(srv_password_verify(a, PW, strlen(PW), NULL));
	assert_false(srv_password_verify(a, "12345678", 8, NULL));
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An unknown e-mail must cost a real bcrypt run (cost 8 to measure it):
 * generous bounds, only a short cut fails. */
static void
test_verify_dummy_costs_a_real_check(void **state)
{
	struct srv_auth *a = NULL;
	char h[SRV_HASH_MAX];
	double t0, real, dummy;

	(void)state;
	assert_int_equal(srv_auth_new(SECRET, strlen(SECRET), 8, TTL, &a), 0);
	assert_int_equal(srv_password_hash(a, PW, strlen(PW), h), 0);
	t0 = seconds();
	for (int i = 0; i < 3; i++)
		assert_false(srv_password_verify(a, "wrong password", 14, h));
	real = seconds() - t0;
	t0 = seconds();
	for (int i = 0; i < 3; i++)
		assert_false(srv_password_verify(a, PW, strlen(PW), NULL));
	dummy = seconds() - t0;
	srv_auth_free(a);
	assert_true(dummy > real / 3);
}

static void
test_auth_new_refuses_bad_arguments(void **state)
{
	struct srv_auth *a = NULL;

	(void)state;
	assert_int_equal(srv_auth_new(SECRET, 31, 4, TTL, &a), VG_EINVAL);
	assert_int_equal(srv_auth_new(SECRET, 0, 4, TTL, &a), VG_EINVAL);
	assert_int_equal(srv_auth_new(NULL, 32, 4, TTL, &a), VG_EINVAL);
	assert_int_equal(srv_auth_new(SECRET, 32, 3, TTL, &a), VG_EINVAL);
	assert_int_equal(srv_auth_new(SECRET, 32, 32, TTL, &a), VG_EINVAL);
	assert_int_equal(srv_auth_new(SECRET, 32, 4, 0, &a), VG_EINVAL);
	assert_null(a);
	srv_auth_free(NULL);
}

/* ---- tokens ------------------------------------------------------------- */

static void
test_token_round_trip(void **state)
{
	struct srv_auth *a = *state;
	char uid[VG_UUID_STRLEN + 1];
	char *tok = NULL;
	int64_t exp = 0, now = (int64_t)time(NULL);

	assert_int_equal(srv_token_issue(a, USER, &tok, &exp), 0);
	assert_non_null(tok);
	assert_in_range(exp, now + TTL - 5, now + TTL + 5);
	assert_int_equal(srv_token_verify(a, tok, uid), 0);
	assert_string_equal(uid, USER);
	free(tok);
}

static void
test_token_issue_refuses_bad_user(void **state)
{
	struct srv_auth *a = *state;
	char *tok = NULL;
	int64_t exp = 0;

	assert_int_equal(srv_token_issue(a, "alice", &tok, &exp), VG_EINVAL);
	assert_null(tok);
}

static void
test_token_bearer_prefix_accepted(void **state)
{
	struct srv_auth *a = *state;
	char uid[VG_UUID_STRLEN + 1];
	char *tok = good_token(SECRET);
	char hdr[SRV_TOKEN_MAX + 16];

	snprintf(hdr, sizeof(hdr), "Bearer %s", tok);
	assert_int_equal(srv_token_verify(a, hdr, uid), 0);
	assert_string_equal(uid, USER);
	snprintf(hdr, sizeof(hdr), "Bearer  %s", tok);
	expect_auth_fails(a, hdr);
	snprintf(hdr, sizeof(hdr), "Basic %s", tok);
	expect_auth_fails(a, hdr);
	free(tok);
}

static void
test_token_expired(void **state)
{
	char claims[256];

	make_claims(claims, sizeof(claims), USER, "vgen", -100, -10);
	expect_claims_fail(*state, claims);
	make_claims(claims, sizeof(claims), USER, "vgen", -100, 0);
	expect_claims_fail(*state, claims);
}

static void
test_token_without_exp(void **state)
{
	char claims[256];

	snprintf(claims, sizeof(claims),
	    "{\"sub\":\"%s\",\"iss\":\"vgen\",\"iat\":%ld}", USER,
	    (long)time(NULL));
	expect_claims_fail(*state, claims);
}

/* libjwt's jwt_get_grant_int reads a string exp as 0 with no error. */
static void
test_token_exp_as_string(void **state)
{
	char claims[256];

	snprintf(claims, sizeof(claims),
	    "{\"sub\":\"%s\",\"iss\":\"vgen\",\"iat\":%ld,"
	    "\"exp\":\"9999999999\"}", USER, (long)time(NULL));
	expect_claims_fail(*state, claims);
	snprintf(claims, sizeof(claims),
	    "{\"sub\":\"%s\",\"iss\":\"vgen\",\"iat\":%ld,"
	    "\"exp\":9999999999.5}", USER, (long)time(NULL));
	expect_claims_fail(*state, claims);
}

static void
test_token_iat_checks(void **state)
{
	struct srv_auth *a = *state;
	char uid[VG_UUID_STRLEN + 1];
	char claims[256];
	char *tok;

	make_claims(claims, sizeof(claims), USER, "vgen", 3600, 7200);
	expect_claims_fail(a, claims);
	make_claims(claims, sizeof(claims), USER, "vgen", 120, 7200);
	expect_claims_fail(a, claims);
	/* Within the 60 s clock skew. */
	make_claims(claims, sizeof(claims), USER, "vgen", 30, 7200);
	tok = make_token(JWT_ALG_HS256, SECRET, claims);
	assert_int_equal(srv_token_verify(a, tok, uid), 0);
	free(tok);
	/* Missing, or not an integer. */
	snprintf(claims, sizeof(claims),
	    "{\"sub\":\"%s\",\"iss\":\"vgen\",\"exp\":%ld}", USER,
	    (long)time(NULL) + 600);
	expect_claims_fail(a, claims);
	snprintf(claims, sizeof(claims),
	    "{\"sub\":\"%s\",\"iss\":\"vgen\",\"iat\":\"0\",\"exp\":%ld}",
	    USER, (long)time(NULL) + 600);
	expect_claims_fail(a, claims);
}

static void
test_token_other_key(void **state)
{
	char *tok = good_token(OTHER_SECRET);

	expect_auth_fails(*state, tok);
	free(tok);
}

static void
test_token_alg_none(void **state)
{
	char claims[256], h[128], p[512], tok[1024];

	b64url(h, sizeof(h), "{\"alg\":\"none\",\"typ\":\"JWT\"}");
	make_claims(claims, sizeof(claims), USER, "vgen", 0, 600);
	b64url(p, sizeof(p), claims);
	snprintf(tok, sizeof(tok), "%s.%s.", h, p);
	expect_auth_fails(*state, tok);
	/* With a made-up signature segment too. */
	snprintf(tok, sizeof(tok), "%s.%s.AAAA", h, p);
	expect_auth_fails(*state, tok);
}

/* libjwt verifies an HS512 token with our key: only the alg pin stops
 * it. */
static void
test_token_hs512_same_key(void **state)
{
	char claims[256];
	char *tok;

	make_claims(claims, sizeof(claims), USER, "vgen", 0, 600);
	tok = make_token(JWT_ALG_HS512, SECRET, claims);
	expect_auth_fails(*state, tok);
	free(tok);
	tok = make_token(JWT_ALG_HS384, SECRET, claims);
	expect_auth_fails(*state, tok);
	free(tok);
}

static void
test_token_truncated(void **state)
{
	char *tok = good_token(SECRET);
	size_t len = strlen(tok);

	for (size_t cut = 0; cut < len; cut++) {
		tok[cut] = '\0';
		expect_auth_fails(*state, tok);
		free(tok);
		tok = good_token(SECRET);
	}
	free(tok);
}

/* A token of exactly n bytes, padded with a filler claim. */
static char *
token_of_size(size_t n)
{
	char *claims = malloc(n + 256);
	char *tok = NULL;

	assert_non_null(claims);
	for (size_t pad = n * 3 / 4 - 200; pad < n; pad++) {
		long now = (long)time(NULL);

		snprintf(claims, n + 256,
		    "{\"sub\":\"%s\",\"iss\":\"vgen\",\"iat\":%ld,"
		    "\"exp\":%ld,\"pad\":\"%*s\"}", USER, now, now + 600,
		    (int)pad, "");
		tok = make_token(JWT_ALG_HS256, SECRET, claims);
		if (strlen(tok) >= n)
			break;
		free(tok);
		tok = NULL;
	}
	free(claims);
	assert_non_null(tok);
	assert_int_equal(strlen(tok), n);
	return tok;
}

static void
test_token_size_limit(void **state)
{
	struct srv_auth *a = *state;
	char uid[VG_UUID_STRLEN + 1];
	char *tok;

	tok = token_of_size(SRV_TOKEN_MAX);
	assert_int_equal(srv_token_verify(a, tok, uid), 0);
	free(tok);
	tok = token_of_size(SRV_TOKEN_MAX + 1);
	expect_auth_fails(a, tok);
	free(tok);
}

/* A huge first segment: libjwt would alloca() it and crash the stack. */
static void
expect_huge_fails(struct srv_auth *a, size_t n)
{
	char *tok = malloc(n + 1);

	assert_non_null(tok);
	memcpy(tok, "Bearer ", 7);
	memset(tok + 7, 'A', n - 7);
	tok[n - 2] = '.';
	tok[n - 1] = '.';
	tok[n] = '\0';
	expect_auth_fails(a, tok);
	expect_auth_fails(a, tok + 7);
	/* The same with a plausible shape: header.payload.signature. */
	tok[n / 2] = '.';
	tok[n - 2] = 'A';
	expect_auth_fails(a, tok);
	free(tok);
}

static void
test_token_100k(void **state)
{
	expect_huge_fails(*state, 100 * 1000);
}

static void
test_token_16m(void **state)
{
	expect_huge_fails(*state, 16 * 1024 * 1024);
}

static void
test_token_sub_not_uuid(void **state)
{
	static const char *subs[] = {
		"alice",
		"",
		"0b7c5e2a3f4d4e8a9c1b2d3e4f5a6b7c",
		"0b7c5e2a-3f4d-4e8a-9c1b-2d3e4f5a6b7c0",
		"0b7c5e2a-3f4d-4e8a-9c1b-2d3e4f5a6b7",
		"{0b7c5e2a-3f4d-4e8a-9c1b-2d3e4f5a6b}",
		"0b7c5e2a-3f4d-4e8a-9c1b-2d3e4f5a6bxg",
	};
	char claims[256];

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		make_claims(claims, sizeof(claims), subs[i], "vgen", 0, 600);
		expect_claims_fail(*state, claims);
	}
	/* Not a string, or absent. */
	snprintf(claims, sizeof(claims),
	    "{\"sub\":42,\"iss\":\"vgen\",\"iat\":%ld,\"exp\":%ld}",
	    (long)time(NULL), (long)time(NULL) + 600);
	expect_claims_fail(*state, claims);
	snprintf(claims, sizeof(claims),
	    "{\"iss\":\"vgen\",\"iat\":%ld,\"exp\":%ld}", (long)time(NULL),
	    (long)time(NULL) + 600);
	expect_claims_fail(*state, claims);
}

static void
test_token_wrong_iss(void **state)
{
	static const char *isss[] = { "other", "", "vgen ", "VGEN", "vge" };
	char claims[256];

	for (size_t i = 0; i < sizeof(isss) / sizeof(isss[0]); i++) {
		make_claims(claims, sizeof(claims), USER, isss[i], 0, 600);
		expect_claims_fail(*state, claims);
	}
	snprintf(claims, sizeof(claims),
	    "{\"sub\":\"%s\",\"iat\":%ld,\"exp\":%ld}", USER,
	    (long)time(NULL), (long)time(NULL) + 600);
	expect_claims_fail(*state, claims);
}

static void
test_token_garbage(void **state)
{
	static const char *junk[] = {
		"",
		"Bearer ",
		"Bearer",
		"not a token",
		"a.b.c",
		"...",
		"..",
		"a..c",
		"eyJhbGciOiJIUzI1NiJ9",
		"eyJhbGciOiJIUzI1NiJ9.e30",
		"eyJhbGciOiJIUzI1NiJ9.e30.",
		"eyJhbGciOiJIUzI1NiJ9.e30.e30.e30",
		"e30.e30.e30",
		"Bearer Bearer x.y.z",
		"x.y.z\n",
		"\xff\xfe.\x01.\x80",
	};
	struct srv_auth *a = *state;
	char uid[VG_UUID_STRLEN + 1];

	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		expect_auth_fails(a, junk[i]);
	assert_int_equal(srv_token_verify(a, NULL, uid), VG_EAUTH);
	assert_int_equal(srv_token_verify(NULL, "x.y.z", uid), VG_EAUTH);
}

/* ---- login throttle ----------------------------------------------------- */

static void
test_throttle_after_five_failures(void **state)
{
	struct srv_auth *a = *state;
	const char *e = "five@example.com";

	for (int i = 0; i < SRV_LOGIN_MAX_FAILURES - 1; i++) {
		srv_login_failed(a, e);
		assert_false(srv_login_throttled(a, e));
	}
	srv_login_failed(a, e);
	assert_true(srv_login_throttled(a, e));
	srv_login_failed(a, e);
	assert_true(srv_login_throttled(a, e));
	srv_login_succeeded(a, e);
}

static void
test_throttle_success_resets(void **state)
{
	struct srv_auth *a = *state;
	const char *e = "reset@example.com";

	for (int i = 0; i < SRV_LOGIN_MAX_FAILURES; i++)
		srv_login_failed(a, e);
	assert_true(srv_login_throttled(a, e));
	srv_login_succeeded(a, e);
	assert_false(srv_login_throttled(a, e));
	srv_login_failed(a, e);
	assert_false(srv_login_throttled(a, e));
	srv_login_succeeded(a, e);
}

static void
test_throttle_other_email_unaffected(void **state)
{
	struct srv_auth *a = *state;

	for (int i = 0; i < SRV_LOGIN_MAX_FAILURES; i++)
		srv_login_failed(a, "victim@example.com");
	assert_true(srv_login_throttled(a, "victim@example.com"));
	assert_false(srv_login_throttled(a, "bystander@example.com"));
	srv_login_failed(a, "bystander@example.com");
	assert_false(srv_login_throttled(a, "bystander@example.com"));
	srv_login_succeeded(a, "victim@example.com");
	srv_login_succeeded(a, "bystander@example.com");
	assert_false(srv_login_throttled(a, NULL));
	srv_login_failed(a, NULL);
	srv_login_succeeded(a, NULL);
}

/* Far more e-mails than slots: memory stays fixed, nothing breaks. */
static void
test_throttle_many_emails_bounded(void **state)
{
	struct srv_auth *a = *state;
	char e[64];

	for (int i = 0; i < 50000; i++) {
		snprintf(e, sizeof(e), "user%d@example.com", i);
		srv_login_failed(a, e);
	}
	for (int i = 0; i < SRV_LOGIN_MAX_FAILURES; i++)
		srv_login_failed(a, "late@example.com");
	assert_true(srv_login_throttled(a, "late@example.com"));
	srv_login_succeeded(a, "late@example.com");
}

static void *
fail_thread(void *arg)
{
	for (int i = 0; i < 1000; i++)
		srv_login_failed(arg, i % 2 ? "shared@example.com" : "x@y.z");
	return NULL;
}

static void
test_throttle_threads(void **state)
{
	struct srv_auth *a = *state;
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, fail_thread, a),
		    0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(srv_login_throttled(a, "shared@example.com"));
	srv_login_succeeded(a, "shared@example.com");
	srv_login_succeeded(a, "x@y.z");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_table),
		cmocka_unit_test(test_hash_round_trip),
		cmocka_unit_test(test_hash_salt_is_fresh),
		cmocka_unit_test(test_hash_refuses_policy_failures),
		cmocka_unit_test(test_verify_never_truncates),
		cmocka_unit_test(test_verify_non_bcrypt_fails_closed),
		cmocka_unit_test(test_verify_accepts_2a_and_2y),
		cmocka_unit_test(test_verify_dummy_is_false),
		cmocka_unit_test(test_verify_dummy_costs_a_real_check),
		cmocka_unit_test(test_auth_new_refuses_bad_arguments),
		cmocka_unit_test(test_token_round_trip),
		cmocka_unit_test(test_token_issue_refuses_bad_user),
		cmocka_unit_test(test_token_bearer_prefix_accepted),
		cmocka_unit_test(test_token_expired),
		cmocka_unit_test(test_token_without_exp),
		cmocka_unit_test(test_token_exp_as_string),
		cmocka_unit_test(test_token_iat_checks),
		cmocka_unit_test(test_token_other_key),
		cmocka_unit_test(test_token_alg_none),
		cmocka_unit_test(test_token_hs512_same_key),
		cmocka_unit_test(test_token_truncated),
		cmocka_unit_test(test_token_size_limit),
		cmocka_unit_test(test_token_100k),
		cmocka_unit_test(test_token_16m),
		cmocka_unit_test(test_token_sub_not_uuid),
		cmocka_unit_test(test_token_wrong_iss),
		cmocka_unit_test(test_token_garbage),
		cmocka_unit_test(test_throttle_after_five_failures),
		cmocka_unit_test(test_throttle_success_resets),
		cmocka_unit_test(test_throttle_other_email_unaffected),
		cmocka_unit_test(test_throttle_many_emails_bounded),
		cmocka_unit_test(test_throttle_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
