/*
 * server/auth.c: passwords, tokens and the login throttle.
 *
 * Passwords are bcrypt ($2b$) through libxcrypt, tokens JWT HS256 through
 * libjwt 1.10.  Neither library is trusted to enforce our policy: libxcrypt
 * would verify a DES or MD5 hash and silently ignores bytes after 72 or
 * after a NUL; libjwt copies token segments onto the stack, accepts any
 * HMAC algorithm for our key and checks no claims.  Each of those gaps is
 * closed here, before or after the library call (DESIGN §6).
 */
#include <crypt.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <sodium.h>

#include "srv.h"

#define BCRYPT_SALT_BYTES 16
#define BCRYPT_COST_MIN 4
#define BCRYPT_COST_MAX 31
#define DUMMY_PW_BYTES 16
#define IAT_SKEW_S 60
#define BEARER "Bearer "

/* Throttle table: 1024 sets of 4 slots; bounded whatever the traffic. */
#define THROTTLE_WAYS 4
#define THROTTLE_SETS 1024
#define THROTTLE_WINDOW_MS ((int64_t)SRV_LOGIN_WINDOW_S * 1000)

struct throttle_slot {
	uint64_t tag;		/* keyed hash of the e-mail; 0 = free */
	int64_t start_ms;	/* first failure of the window (monotonic) */
	unsigned failures;	/* capped at SRV_LOGIN_MAX_FAILURES */
};

/* Lives in sodium_malloc'd memory: locked, guarded, wiped on free. */
struct auth_keys {
	unsigned char shorthash[crypto_shorthash_KEYBYTES];
	unsigned char mac[32];	/* derived from the secret: same on every server */
	size_t jwt_len;
	unsigned char jwt[];
};

/*
 * Verified tokens, so a client's every call does not pay for libjwt, an
 * HMAC and a JSON parse.  Keyed by a keyed BLAKE2b of the whole token (a
 * token that differs in any byte misses); holds only tokens that passed
 * every check, until their exp.  The user's existence is still checked
 * per call by the handlers.
 */
#define TOKEN_CACHE_SLOTS 4096
struct token_slot {
	unsigned char h[16];	/* all zero: empty */
	int64_t exp_s;
	char user_id[VG_UUID_STRLEN + 1];
};

struct srv_auth {
	struct auth_keys *keys;
	int cost;
	long ttl_s;
	char dummy[SRV_HASH_MAX];	/* bcrypt of a random password */
	bool lock_ok;
	pthread_mutex_t lock;	/* guards slots and tokens */
	struct throttle_slot slots[THROTTLE_SETS][THROTTLE_WAYS];
	struct token_slot tokens[TOKEN_CACHE_SLOTS];
};

static int64_t
wall_s(void)
{
	return vg_wall_us() / 1000000;
}

/*
 * bcrypt_run hashes `pw` (len bytes, checked by the caller) with
 * `setting` into out.  The struct crypt_data is 32 KiB, too big for the
 * stacks of RPC threads, so it is allocated per call and wiped: it ends
 * up holding the password.
 */
static int
bcrypt_run(const char *pw, size_t len, const char *setting,
    char out[SRV_HASH_MAX])
{
	struct crypt_data *cd;
	const char *h;
	size_t n;
	int rv;

	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return VG_ENOMEM;
	/* Copies, so setting never aliases crypt_rn's output buffer. */
	n = strnlen(setting, sizeof(cd->setting));
	if (n >= sizeof(cd->setting) || len >= sizeof(cd->input)) {
		rv = VG_EINVAL;
		goto out;
	}
	memcpy(cd->setting, setting, n);
	memcpy(cd->input, pw, len);
	h = crypt_rn(cd->input, cd->setting, cd, (int)sizeof(*cd));
	if (h == NULL || h[0] == '*') {
		rv = VG_EINTERNAL;
		goto out;
	}
	n = strlen(h);
	if (n >= SRV_HASH_MAX) {
		rv = VG_EINTERNAL;
		goto out;
	}
	memcpy(out, h, n + 1);
	rv = 0;
out:
	sodium_memzero(cd, sizeof(*cd));
	free(cd);
	return rv;
}

/*
 * is_bcrypt: $2a$, $2b$ or $2y$ only.  Anything else (DES "ab...", "$1$"
 * MD5, "$6$", "$2x$") is a hash we never issue, and crypt would happily
 * verify it with a weaker algorithm.
 */
static bool
is_bcrypt(const char *hash)
{
	if (strnlen(hash, SRV_HASH_MAX) >= SRV_HASH_MAX)
		return false;
	return strncmp(hash, "$2a$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
	    strncmp(hash, "$2y$", 4) == 0;
}

int
srv_auth_new(const void *secret, size_t len, int cost, long token_ttl_s,
    struct srv_auth **out)
{
	struct srv_auth *a = NULL;
	unsigned char rnd[DUMMY_PW_BYTES];
	char pw[2 * DUMMY_PW_BYTES + 1];
	int rv;

	/* An empty key would make libjwt accept alg "none". */
	if (secret == NULL || len < SRV_SECRET_MIN || len > INT_MAX ||
	    cost < BCRYPT_COST_MIN || cost > BCRYPT_COST_MAX ||
	    token_ttl_s <= 0 || token_ttl_s > INT32_MAX)
		return VG_EINVAL;
	if (sodium_init() < 0)
		return VG_EINTERNAL;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return VG_ENOMEM;
	a->cost = cost;
	a->ttl_s = token_ttl_s;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		rv = VG_ENOMEM;
		goto out;
	}
	a->lock_ok = true;

	a->keys = sodium_malloc(sizeof(*a->keys) + len);
	if (a->keys == NULL) {
		rv = VG_ENOMEM;
		goto out;
	}
	crypto_shorthash_keygen(a->keys->shorthash);
	a->keys->jwt_len = len;
	memcpy(a->keys->jwt, secret, len);
	{
		/* A key of its own for srv_auth_mac, derived from the secret
		 * so that every server sharing the secret agrees on it. */
		static const char label[] = "vgen.v1 srv_auth_mac";
		unsigned char h[32];

		crypto_generichash(h, sizeof(h), secret, len, NULL, 0);
		crypto_generichash(a->keys->mac, sizeof(a->keys->mac),
		    (const unsigned char *)label, sizeof(label) - 1, h,
		    sizeof(h));
		sodium_memzero(h, sizeof(h));
	}
	sodium_mprotect_readonly(a->keys);

	/* The dummy hash: same cost, so an unknown e-mail costs the same. */
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(pw, sizeof(pw), rnd, sizeof(rnd));
	rv = srv_password_hash(a, pw, strlen(pw), a->dummy);
	sodium_memzero(rnd, sizeof(rnd));
	sodium_memzero(pw, sizeof(pw));
	if (rv < 0)
		goto out;

	*out = a;
	a = NULL;
	rv = 0;
out:
	srv_auth_free(a);
	return rv;
}

void
srv_auth_free(struct srv_auth *a)
{
	if (a == NULL)
		return;
	sodium_free(a->keys);	/* wipes; NULL ok */
	if (a->lock_ok)
		pthread_mutex_destroy(&a->lock);
	sodium_memzero(a, sizeof(*a));
	free(a);
}

const char *
srv_password_policy(const char *pw, size_t len)
{
	if (pw == NULL || len < SRV_PASSWORD_MIN)
		return "must be at least 8 bytes";
	/* bcrypt ignores what follows byte 72: refuse, never truncate. */
	if (len > SRV_PASSWORD_MAX)
		return "must be at most 72 bytes";
	/* bcrypt stops at a NUL: "secret\0anything" would equal "secret". */
	if (memchr(pw, '\0', len) != NULL)
		return "must not contain a NUL byte";
	if (!vg_utf8_valid(pw, len))
		return "must be valid UTF-8";
	return NULL;
}

int
srv_password_hash(const struct srv_auth *a, const char *pw, size_t len,
    char out[SRV_HASH_MAX])
{
	char rbytes[BCRYPT_SALT_BYTES];
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	char h[SRV_HASH_MAX];
	int rv;

	if (a == NULL || srv_password_policy(pw, len) != NULL)
		return VG_EINVAL;

	randombytes_buf(rbytes, sizeof(rbytes));
	if (crypt_gensalt_rn("$2b$", (unsigned long)a->cost, rbytes,
	    (int)sizeof(rbytes), setting, (int)sizeof(setting)) == NULL) {
		rv = VG_EINTERNAL;
		goto out;
	}
	rv = bcrypt_run(pw, len, setting, h);
	if (rv < 0)
		goto out;
	if (strncmp(h, "$2b$", 4) != 0) {
		rv = VG_EINTERNAL;
		goto out;
	}
	memcpy(out, h, strlen(h) + 1);
out:
	sodium_memzero(rbytes, sizeof(rbytes));
	sodium_memzero(setting, sizeof(setting));
	sodium_memzero(h, sizeof(h));
	return rv;
}

bool
srv_password_verify(const struct srv_auth *a, const char *pw, size_t len,
    const char *hash)
{
	char h[SRV_HASH_MAX];
	bool dummy = hash == NULL;
	bool ok = false;
	size_t n;

	if (a == NULL || srv_password_policy(pw, len) != NULL)
		return false;
	if (dummy)
		hash = a->dummy;
	if (!is_bcrypt(hash))
		return false;
	if (bcrypt_run(pw, len, hash, h) < 0)
		goto out;
	n = strlen(hash);
	if (strlen(h) == n && sodium_memcmp(h, hash, n) == 0)
		ok = true;
out:
	sodium_memzero(h, sizeof(h));
	return ok && !dummy;
}

int
srv_token_issue(const struct srv_auth *a, const char *user_id, char **token,
    int64_t *exp_s)
{
	jwt_t *jwt = NULL;
	char *tok;
	int64_t now, exp;
	int rv;

	if (a == NULL || user_id == NULL || token == NULL || exp_s == NULL ||
	    !vg_uuid_valid(user_id))
		return VG_EINVAL;
	now = wall_s();
	exp = now + a->ttl_s;

	if (jwt_new(&jwt) != 0) {
		rv = VG_ENOMEM;
		goto out;
	}
	if (jwt_set_alg(jwt, JWT_ALG_HS256, a->keys->jwt,
	    (int)a->keys->jwt_len) != 0 ||
	    jwt_add_grant(jwt, "sub", user_id) != 0 ||
	    jwt_add_grant(jwt, "iss", SRV_JWT_ISSUER) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)exp) != 0) {
		rv = VG_EINTERNAL;
		goto out;
	}
	tok = jwt_encode_str(jwt);
	if (tok == NULL) {
		rv = VG_ENOMEM;
		goto out;
	}
	*token = tok;
	*exp_s = exp;
	rv = 0;
out:
	jwt_free(jwt);	/* scrubs its copy of the key */
	return rv;
}

/*
 * token_shape: header.payload.signature, base64url without padding, each
 * part non-empty.  Refuses garbage before libjwt parses it.
 */
static bool
token_shape(const char *t, size_t len)
{
	size_t dots = 0, seg = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c == '.') {
			if (seg == 0)
				return false;
			dots++;
			seg = 0;
		} else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_') {
			seg++;
		} else {
			return false;
		}
	}
	return dots == 2 && seg > 0;
}

/*
 * claims_check: libjwt checks no claims, and its grant getters read a
 * string "exp" as 0 without an error, so read the JSON ourselves.
 */
static int
claims_check(jwt_t *jwt, char user_id[VG_UUID_STRLEN + 1], int64_t *exp_s)
{
	char *text = NULL;
	json_t *root = NULL, *v;
	int64_t now = wall_s();
	const char *s;
	int rv = VG_EAUTH;

	text = jwt_get_grants_json(jwt, NULL);
	if (text == NULL)
		goto out;
	root = json_loads(text, 0, NULL);
	if (!json_is_object(root))
		goto out;

	v = json_object_get(root, "exp");
	if (!json_is_integer(v) || json_integer_value(v) <= now)
		goto out;
	v = json_object_get(root, "iat");
	if (!json_is_integer(v) || json_integer_value(v) > now + IAT_SKEW_S)
		goto out;
	v = json_object_get(root, "iss");
	if (!json_is_string(v) ||
	    json_string_length(v) != strlen(SRV_JWT_ISSUER) ||
	    strcmp(json_string_value(v), SRV_JWT_ISSUER) != 0)
		goto out;
	v = json_object_get(root, "sub");
	if (!json_is_string(v) || json_string_length(v) != VG_UUID_STRLEN)
		goto out;
	s = json_string_value(v);
	if (!vg_uuid_valid(s))
		goto out;

	memcpy(user_id, s, VG_UUID_STRLEN + 1);
	*exp_s = json_integer_value(json_object_get(root, "exp"));
	rv = 0;
out:
	json_decref(root);
	free(text);
	return rv;
}

/* The cache slot for a token's hash `h`. */
static struct token_slot *
token_slot(struct srv_auth *a, const unsigned char h[16])
{
	uint32_t i;

	memcpy(&i, h, sizeof(i));
	return &a->tokens[i % TOKEN_CACHE_SLOTS];
}

int
srv_token_verify(struct srv_auth *a, const char *authorization,
    char user_id[VG_UUID_STRLEN + 1])
{
	const char *t = authorization;
	unsigned char h[16];
	struct token_slot *slot;
	jwt_t *jwt = NULL;
	int64_t exp_s = 0;
	size_t len;
	int rv = VG_EAUTH;

	if (a == NULL || t == NULL)
		return VG_EAUTH;
	if (strncasecmp(t, BEARER, strlen(BEARER)) == 0)
		t += strlen(BEARER);

	/* libjwt alloca()s each segment: bound the size before it looks. */
	len = strnlen(t, SRV_TOKEN_MAX + 1);
	if (len > SRV_TOKEN_MAX || !token_shape(t, len))
		return VG_EAUTH;

	crypto_generichash(h, sizeof(h), (const unsigned char *)t, len,
	    a->keys->shorthash, sizeof(a->keys->shorthash));
	slot = token_slot(a, h);
	pthread_mutex_lock(&a->lock);
	if (sodium_memcmp(slot->h, h, sizeof(h)) == 0 &&
	    slot->exp_s > wall_s()) {
		memcpy(user_id, slot->user_id, VG_UUID_STRLEN + 1);
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	pthread_mutex_unlock(&a->lock);

	if (jwt_decode(&jwt, t, a->keys->jwt, (int)a->keys->jwt_len) != 0)
		goto out;
	/* libjwt verifies HS384/HS512 with our key too: pin HS256. */
	if (jwt_get_alg(jwt) != JWT_ALG_HS256)
		goto out;
	rv = claims_check(jwt, user_id, &exp_s);
	if (rv == 0) {
		pthread_mutex_lock(&a->lock);
		memcpy(slot->h, h, sizeof(h));
		slot->exp_s = exp_s;
		memcpy(slot->user_id, user_id, VG_UUID_STRLEN + 1);
		pthread_mutex_unlock(&a->lock);
	}
out:
	jwt_free(jwt);
	return rv;
}

static uint64_t
email_tag(const struct srv_auth *a, const char *email)
{
	unsigned char h[crypto_shorthash_BYTES];
	uint64_t tag;

	crypto_shorthash(h, (const unsigned char *)email, strlen(email),
	    a->keys->shorthash);
	memcpy(&tag, h, sizeof(tag));
	return tag == 0 ? 1 : tag;	/* 0 marks a free slot */
}

static bool
slot_expired(const struct throttle_slot *s, int64_t now)
{
	return now - s->start_ms >= THROTTLE_WINDOW_MS;
}

/*
 * slot_find returns the slot for `tag`, or NULL.  With `make` it claims
 * one, reusing in order: a free slot, an expired one, else the one with
 * the fewest failures (the oldest among equals), so that flooding the
 * table with new e-mails hardly ever frees a throttled one.  Called with
 * a->lock held.
 */
static struct throttle_slot *
slot_find(struct srv_auth *a, uint64_t tag, int64_t now, bool make)
{
	struct throttle_slot *set = a->slots[tag % THROTTLE_SETS];
	struct throttle_slot *victim = NULL;

	for (int i = 0; i < THROTTLE_WAYS; i++) {
		if (set[i].tag == tag)
			return &set[i];
	}
	if (!make)
		return NULL;
	for (int i = 0; i < THROTTLE_WAYS && victim == NULL; i++) {
		if (set[i].tag == 0)
			victim = &set[i];
	}
	for (int i = 0; i < THROTTLE_WAYS && victim == NULL; i++) {
		if (slot_expired(&set[i], now))
			victim = &set[i];
	}
	if (victim == NULL) {
		victim = &set[0];
		for (int i = 1; i < THROTTLE_WAYS; i++) {
			if (set[i].failures < victim->failures ||
			    (set[i].failures == victim->failures &&
			    set[i].start_ms < victim->start_ms))
				victim = &set[i];
		}
	}
	victim->tag = tag;
	victim->start_ms = now;
	victim->failures = 0;
	return victim;
}

bool
srv_login_throttled(struct srv_auth *a, const char *email)
{
	struct throttle_slot *s;
	int64_t now;
	uint64_t tag;
	bool hit = false;

	if (a == NULL || email == NULL)
		return false;
	tag = email_tag(a, email);
	now = vg_now_ms();
	pthread_mutex_lock(&a->lock);
	s = slot_find(a, tag, now, false);
	if (s != NULL && !slot_expired(s, now))
		hit = s->failures >= SRV_LOGIN_MAX_FAILURES;
	pthread_mutex_unlock(&a->lock);
	return hit;
}

void
srv_login_failed(struct srv_auth *a, const char *email)
{
	struct throttle_slot *s;
	int64_t now;
	uint64_t tag;

	if (a == NULL || email == NULL)
		return;
	tag = email_tag(a, email);
	now = vg_now_ms();
	pthread_mutex_lock(&a->lock);
	s = slot_find(a, tag, now, true);
	if (slot_expired(s, now)) {
		s->start_ms = now;
		s->failures = 0;
	}
	if (s->failures < SRV_LOGIN_MAX_FAILURES)
		s->failures++;
	pthread_mutex_unlock(&a->lock);
}

void
srv_login_succeeded(struct srv_auth *a, const char *email)
{
	struct throttle_slot *s;
	uint64_t tag;

	if (a == NULL || email == NULL)
		return;
	tag = email_tag(a, email);
	pthread_mutex_lock(&a->lock);
	s = slot_find(a, tag, 0, false);
	if (s != NULL)
		memset(s, 0, sizeof(*s));
	pthread_mutex_unlock(&a->lock);
}

void
srv_auth_mac(const struct srv_auth *a, const void *msg, size_t len,
    unsigned char out[SRV_MAC_BYTES])
{
	crypto_generichash(out, SRV_MAC_BYTES, msg, len, a->keys->mac,
	    sizeof(a->keys->mac));
}
