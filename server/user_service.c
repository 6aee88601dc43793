/*
 * server/user_service.c: UserService.  Register and Login hash passwords
 * and run on the slow lane; UpdateProfile on the database lane; GetMe is
 * a deferred read (srv_call_defer).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "srv_int.h"

#define AVATAR_URL_MAX 2048

Google__Protobuf__Timestamp *
srv_ts_to_pb(struct srv_call *call, int64_t us)
{
	Google__Protobuf__Timestamp *ts;

	ts = srv_call_alloc(call, sizeof(*ts));
	if (ts == NULL)
		return NULL;
	google__protobuf__timestamp__init(ts);
	ts->seconds = us / 1000000;
	ts->nanos = (int32_t)(us % 1000000) * 1000;
	if (ts->nanos < 0) {
		ts->seconds--;
		ts->nanos += 1000000000;
	}
	return ts;
}

Vgen__V1__User *
srv_user_to_pb(struct srv_call *call, const struct store_user *u)
{
	Vgen__V1__User *pb = srv_call_alloc(call, sizeof(*pb));

	if (pb == NULL)
		return NULL;
	vgen__v1__user__init(pb);
	if ((pb->id = srv_call_strdup(call, u->id)) == NULL ||
	    (pb->email = srv_call_strdup(call, u->email)) == NULL ||
	    (pb->username = srv_call_strdup(call, u->username)) == NULL ||
	    (pb->avatar_url = srv_call_strdup(call, u->avatar_url)) == NULL ||
	    (pb->created_at = srv_ts_to_pb(call, u->created_us)) == NULL ||
	    (pb->updated_at = srv_ts_to_pb(call, u->updated_us)) == NULL)
		return NULL;
	return pb;
}

/* Copies `u` into the reply message `out` (same layout as User). */
static enum vg_status
user_reply(struct srv_call *call, const struct store_user *u,
    Vgen__V1__User *out)
{
	Vgen__V1__User *pb = srv_user_to_pb(call, u);

	if (pb == NULL)
		return srv_call_status(call, VG_ENOMEM);
	*out = *pb;
	return VG_STATUS_OK;
}

/*
 * The answer of a call about the caller's own row: a token whose user is
 * gone is UNAUTHENTICATED.  Releases *u.
 */
static enum vg_status
self_reply(struct srv_call *call, int rv, struct store_user *u,
    Vgen__V1__User *out)
{
	enum vg_status st;

	if (rv < 0)
		return srv_call_user_status(call, rv);
	st = user_reply(call, u, out);
	store_user_fini(u);
	return st;
}

/*
 * Trims ASCII white space and lower-cases ASCII letters into call memory.
 * Returns NULL when out of memory.
 */
static char *
email_normalize(struct srv_call *call, const char *in)
{
	size_t len;
	char *s;

	while (*in != '\0' && isspace((unsigned char)*in))
		in++;
	len = strlen(in);
	while (len > 0 && isspace((unsigned char)in[len - 1]))
		len--;
	s = srv_call_alloc(call, len + 1);
	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		s[i] = (char)tolower((unsigned char)in[i]);
	return s;
}

/* A display name: 1..50 characters, no control characters. */
static const char *
username_problem(const char *s)
{
	if (vg_utf8_len(s) > STORE_USERNAME_MAX)
		return "at most 50 characters";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "must not contain control characters";
	return NULL;
}

static enum vg_status
do_register(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__RegisterRequest *req = in;
	struct store_user u = { 0 };
	char hash[SRV_HASH_MAX];
	const char *problem;
	char *email;
	int rv;

	if ((email = email_normalize(call, req->email)) == NULL)
		return srv_call_status(call, VG_ENOMEM);
	if (*email == '\0')
		srv_call_invalid(call, "email", "required");
	else if (strlen(email) > STORE_EMAIL_MAX)
		srv_call_invalid(call, "email", "at most 255 characters");
	else if (!vg_email_valid(email))
		srv_call_invalid(call, "email", "not a valid e-mail address");
	problem = srv_password_policy(req->password, strlen(req->password));
	if (problem != NULL)
		srv_call_invalid(call, "password", problem);
	if ((problem = username_problem(req->username)) != NULL)
		srv_call_invalid(call, "username", problem);
	if (call->nviolations > 0)
		return VG_INVALID_ARGUMENT;

	rv = srv_password_hash(call->srv->auth, req->password,
	    strlen(req->password), hash);
	if (rv < 0)
		return srv_call_status(call, rv);
	rv = store_user_create(call->db, email, hash,
	    req->username[0] ? req->username : NULL, &u);
	if (rv == VG_EEXISTS)
		return srv_call_fail(call, VG_ALREADY_EXISTS,
		    "an account with this e-mail already exists");
	if (rv < 0)
		return srv_call_status(call, rv);
	vg_info("user registered user_id=%s request_id=%s", u.id,
	    call->request_id);
	rv = user_reply(call, &u, out);
	store_user_fini(&u);
	return rv;
}

/*
 * Login: an unknown e-mail and a wrong password take the same time (the
 * dummy hash) and get the same answer; repeated failures for one e-mail
 * are throttled.
 */
static enum vg_status
login(struct srv_call *call, const void *in, void *out)
{
	static const char bad[] = "wrong e-mail or password";
	const Vgen__V1__LoginRequest *req = in;
	Vgen__V1__LoginResponse *resp = out;
	struct store_user u = { 0 };
	size_t pwlen = strlen(req->password);
	enum vg_status st;
	char *email, *token = NULL;
	int64_t exp = 0;
	int rv;

	if ((email = email_normalize(call, req->email)) == NULL)
		return srv_call_status(call, VG_ENOMEM);
	if (*email == '\0')
		srv_call_invalid(call, "email", "required");
	if (*req->password == '\0')
		srv_call_invalid(call, "password", "required");
	if (call->nviolations > 0)
		return VG_INVALID_ARGUMENT;
	if (srv_login_throttled(call->srv->auth, email))
		return srv_call_fail(call, VG_RESOURCE_EXHAUSTED,
		    "too many failed logins for this e-mail; try again later");

	rv = store_user_by_email(call->db, email, &u);
	if (rv < 0 && rv != VG_ENOTFOUND)
		return srv_call_status(call, rv);
	if (!srv_password_verify(call->srv->auth, req->password, pwlen,
	    rv == 0 ? u.password_hash : NULL)) {
		srv_login_failed(call->srv->auth, email);
		store_user_fini(&u);
		return srv_call_fail(call, VG_UNAUTHENTICATED, bad);
	}
	srv_login_succeeded(call->srv->auth, email);
	rv = srv_token_issue(call->srv->auth, u.id, &token, &exp);
	if (rv < 0) {
		st = srv_call_status(call, rv);
		goto out;
	}
	if ((resp->token = srv_call_strdup(call, token)) == NULL ||
	    (resp->expires_at = srv_ts_to_pb(call, exp * 1000000)) == NULL ||
	    (resp->user = srv_user_to_pb(call, &u)) == NULL) {
		st = srv_call_status(call, VG_ENOMEM);
		goto out;
	}
	st = VG_STATUS_OK;
out:
	free(token);
	store_user_fini(&u);
	return st;
}

/* GetMe reads without a thread: the row comes back on a store thread. */
struct get_me {
	struct store_op op;
	struct srv_call *call;
	struct store_user u;
};

static void
get_me_done(struct store_op *op, int rv)
{
	struct get_me *g = (struct get_me *)(void *)op;

	/* g->u views the read's result: copied by user_reply, not freed. */
	srv_call_resume(g->call, rv < 0 ? srv_call_user_status(g->call, rv) :
	    user_reply(g->call, &g->u, g->call->out));
}

static enum vg_status
get_me(struct srv_call *call, const void *in, void *out)
{
	struct get_me *g = srv_call_alloc(call, sizeof(*g));
	int rv;

	(void)in;
	(void)out;
	if (g == NULL)
		return srv_call_status(call, VG_ENOMEM);
	g->op.done = get_me_done;
	g->call = call;
	srv_call_defer(call);
	rv = store_user_get_start(call->srv->reads, &g->op, call->user_id,
	    &g->u);
	if (rv < 0)
		get_me_done(&g->op, rv);
	return VG_STATUS_OK;
}

static enum vg_status
update_profile(struct srv_call *call, const void *in, void *out)
{
	const Vgen__V1__UpdateProfileRequest *req = in;
	const char *name = req->username ? req->username->value : NULL;
	const char *avatar = req->avatar_url ? req->avatar_url->value : NULL;
	struct store_user u = { 0 };
	const char *problem;
	int rv;

	if (name != NULL && (problem = username_problem(name)) != NULL)
		srv_call_invalid(call, "username", problem);
	if (avatar != NULL && *avatar != '\0' &&
	    (strlen(avatar) > AVATAR_URL_MAX || !vg_http_url_valid(avatar)))
		srv_call_invalid(call, "avatar_url",
		    "must be an http(s) URL of at most 2048 characters");
	if (call->nviolations > 0)
		return VG_INVALID_ARGUMENT;

	/* Present but empty clears the field. */
	rv = store_user_update(call->db, call->user_id, name != NULL,
	    name && *name ? name : NULL, avatar != NULL,
	    avatar && *avatar ? avatar : NULL, &u);
	return self_reply(call, rv, &u, out);
}

const struct srv_handler_def srv_user_handlers[] = {
	{ "Register", do_register, SRV_LANE_SLOW, 0 },
	{ "Login", login, SRV_LANE_SLOW, 0 },
	{ "GetMe", get_me, SRV_LANE_INLINE, SRV_AUTH | SRV_SELF_CHECK },
	{ "UpdateProfile", update_profile, SRV_LANE_DB,
	    SRV_AUTH | SRV_SELF_CHECK },
	{ NULL, NULL, 0, 0 },
};
