/*
 * server/srv.h: vgen-server's modules.
 *
 * The listener (listen.c) receives RpcRequest frames on rep0 contexts,
 * dispatch.c finds the method in a table built from protoc-c's service
 * descriptors, decodes the payload, runs the handler with a srv_call and
 * encodes the reply.  Handlers live one file per service; auth.c holds
 * passwords and tokens; status.c maps VG_E* codes to statuses.
 */
#ifndef SRV_H
#define SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "store.h"
#include "vg.h"

/* ---- auth.c: passwords (bcrypt via libxcrypt) and tokens (JWT HS256) --- */

#define SRV_PASSWORD_MIN 8	/* bytes */
#define SRV_PASSWORD_MAX 72	/* bytes: bcrypt ignores the rest */
#define SRV_SECRET_MIN 32	/* bytes */
#define SRV_TOKEN_MAX 4096	/* bytes: libjwt copies tokens on the stack */
#define SRV_HASH_MAX 128	/* a bcrypt hash is 60 bytes */
#define SRV_JWT_ISSUER "vgen"

struct srv_auth;	/* opaque: secret, cost, dummy hash, throttle table */

/*
 * srv_auth_new prepares signing and hashing.  `secret` (len bytes, copied
 * into locked memory) must be at least SRV_SECRET_MIN bytes: else
 * VG_EINVAL.  `cost` is the bcrypt cost (4..31), `token_ttl_s` the token
 * lifetime.  Returns 0 and *out (free with srv_auth_free), VG_EINVAL or
 * VG_ENOMEM.
 */
int srv_auth_new(const void *secret, size_t len, int cost, long token_ttl_s,
    struct srv_auth **out) VG_MUSTCHECK;
void srv_auth_free(struct srv_auth *a);	/* wipes the secret; NULL ok */

/*
 * srv_password_policy checks a candidate password of `len` bytes: 8 to 72
 * bytes, no NUL byte (bcrypt would stop there), valid UTF-8.  Returns NULL
 * when fine, else a static description of what is wrong.
 */
const char *srv_password_policy(const char *pw, size_t len);

/*
 * srv_password_hash hashes a password that passed the policy into `out`
 * ("$2b$<cost>$...", NUL-terminated, at most SRV_HASH_MAX bytes) with a
 * fresh salt.  Returns 0, VG_EINVAL (policy) or VG_EINTERNAL.  Scratch
 * memory is wiped.
 */
int srv_password_hash(const struct srv_auth *a, const char *pw, size_t len,
    char out[SRV_HASH_MAX]) VG_MUSTCHECK;

/*
 * srv_password_verify tells whether `pw` matches `hash`, comparing in
 * constant time.  Fails closed: a hash that is not $2a$/$2b$/$2y$ bcrypt
 * (which crypt would verify with DES or MD5), or a password failing the
 * policy, never matches.  With hash NULL it verifies against the dummy
 * hash (same cost) and returns false, so an unknown e-mail costs the same
 * time as a wrong password.
 */
bool srv_password_verify(const struct srv_auth *a, const char *pw, size_t len,
    const char *hash);

/*
 * srv_token_issue signs a token for `user_id` (a UUID): claims sub, iat,
 * exp = now + ttl, iss = SRV_JWT_ISSUER.  Returns 0 with *token
 * (malloc'd, caller frees) and *exp_s (Unix seconds), or VG_ENOMEM /
 * VG_EINTERNAL.
 */
int srv_token_issue(const struct srv_auth *a, const char *user_id,
    char **token, int64_t *exp_s) VG_MUSTCHECK;

/*
 * srv_token_verify checks an Authorization value ("Bearer <jwt>") or a
 * bare token: at most SRV_TOKEN_MAX bytes (checked before libjwt sees it),
 * signature HS256 with our key (alg pinned: none/HS512/... refused), exp
 * an integer in the future, iat an integer not in the future (60 s skew),
 * iss ours, sub a canonical UUID.  Returns 0 and the user id in `user_id`,
 * or VG_EAUTH.  It does not look the user up: the caller confirms the
 * user still exists.  Tokens that passed are remembered (by a keyed hash
 * of the whole token) until their exp, so a client's later calls skip
 * libjwt; thread-safe.
 */
int srv_token_verify(struct srv_auth *a, const char *authorization,
    char user_id[VG_UUID_STRLEN + 1]) VG_MUSTCHECK;

/*
 * Login throttle, per process: after SRV_LOGIN_MAX_FAILURES failed logins
 * for one e-mail within SRV_LOGIN_WINDOW_S seconds, srv_login_throttled
 * answers true until the window passes.  srv_login_failed counts a
 * failure, srv_login_succeeded forgets the e-mail.  Bounded memory: a
 * fixed table keyed by a keyed hash of the e-mail; thread-safe.
 */
#define SRV_LOGIN_MAX_FAILURES 5
#define SRV_LOGIN_WINDOW_S 300
bool srv_login_throttled(struct srv_auth *a, const char *email);
void srv_login_failed(struct srv_auth *a, const char *email);
void srv_login_succeeded(struct srv_auth *a, const char *email);

/*
 * srv_auth_mac writes a keyed BLAKE2b tag of `msg` into out, with a key
 * derived from the JWT secret (so every server sharing the secret agrees).
 * For values we hand out and must recognise untampered (page tokens).
 */
#define SRV_MAC_BYTES 16
void srv_auth_mac(const struct srv_auth *a, const void *msg, size_t len,
    unsigned char out[SRV_MAC_BYTES]);

#endif /* SRV_H */
