/*
 * client/ctl_user.c: the account commands (register, login, logout, me,
 * profile), over vgen.v1.UserService.
 *
 * Passwords never need to sit in shell history or ps: they can come from
 * stdin, $VGEN_PASSWORD or a prompt, a --password value is wiped from argv
 * once copied, and every buffer that held one is wiped before it is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"

#define PASSWORD_MAX 1024	/* bytes we read; the server allows 72 */

json_t *
ctl_user_json(const Vgen__V1__User *u)
{
	json_t *o = json_object();
	int err = 0;

	if (o == NULL || u == NULL)
		return o;
	err |= json_object_set_new(o, "id", ctl_json_str(u->id));
	err |= json_object_set_new(o, "email", ctl_json_str(u->email));
	err |= json_object_set_new(o, "username", ctl_json_str(u->username));
	err |= json_object_set_new(o, "avatar_url",
	    ctl_json_str(u->avatar_url));
	err |= json_object_set_new(o, "created_at",
	    ctl_json_time(u->created_at));
	err |= json_object_set_new(o, "updated_at",
	    ctl_json_time(u->updated_at));
	if (err != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * read_line reads one line from fd into buf without its line end, a byte
 * at a time so nothing after the line is consumed.  Returns 0, -EMSGSIZE
 * when the line does not fit in cap - 1 bytes, or -errno.
 */
static int
read_line(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;
	char c = 0;
	int rv = 0;

	for (;;) {
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = -errno;
			break;
		}
		if (n == 0 || c == '\n')
			break;
		if (len + 1 >= cap) {
			rv = -EMSGSIZE;
			break;
		}
		buf[len++] = c;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	c = 0;
	if (rv < 0)
		explicit_bzero(buf, len);
	return rv;
}

/*
 * The terminal settings to restore when a signal interrupts the prompt:
 * a signal handler can reach only globals.
 */
static struct termios tty_saved;
static int tty_fd = -1;

static void
tty_restore(int sig)
{
	if (tty_fd >= 0)
		tcsetattr(tty_fd, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* prompt asks for a password on the terminal, echo off. */
static int
prompt(const char *text, char *buf, size_t cap)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa = { 0 }, old[4];
	struct termios raw;
	size_t i;
	int fd, rv;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (tcgetattr(fd, &tty_saved) < 0) {
		rv = -errno;
		close(fd);
		return rv;
	}
	tty_fd = fd;
	sa.sa_handler = tty_restore;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);

	raw = tty_saved;
	raw.c_lflag &= ~(tcflag_t)ECHO;
	raw.c_lflag |= ECHONL;	/* still move to the next line on Enter */
	rv = tcsetattr(fd, TCSAFLUSH, &raw) < 0 ? -errno : 0;
	if (rv == 0 && write(fd, text, strlen(text)) < 0)
		rv = -errno;
	if (rv == 0)
		rv = read_line(fd, buf, cap);

	tcsetattr(fd, TCSAFLUSH, &tty_saved);
	for (i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	tty_fd = -1;
	close(fd);
	return rv;
}

/*
 * get_password fills buf from, in order: --password-stdin (the first line
 * of stdin), --password (then wiped from argv, so ps stops showing it),
 * $VGEN_PASSWORD, or a prompt when stdin is a terminal (twice when
 * `confirm`).  Returns 0 or an exit status, the error printed.
 */
static int
get_password(struct ctl *ctl, const struct ctl_cmd *cmd, char *flag,
    bool from_stdin, bool confirm, char *buf, size_t cap)
{
	const char *src = getenv("VGEN_PASSWORD");
	char again[PASSWORD_MAX];
	int rv;

	if (flag != NULL && from_stdin)
		return ctl_usage(ctl, cmd, "give --password or "
		    "--password-stdin, not both");
	if (from_stdin) {
		rv = read_line(STDIN_FILENO, buf, cap);
	} else if (flag != NULL || (src != NULL && src[0] != '\0')) {
		if (flag != NULL)
			src = flag;
		rv = strlen(src) < cap ? 0 : -EMSGSIZE;
		if (rv == 0)
			memcpy(buf, src, strlen(src) + 1);
		if (flag != NULL)
			explicit_bzero(flag, strlen(flag));
	} else if (!isatty(STDIN_FILENO)) {
		return ctl_usage(ctl, cmd, "no password: use --password-stdin, "
		    "$VGEN_PASSWORD or --password");
	} else {
		rv = prompt("Password: ", buf, cap);
		if (rv == 0 && confirm) {
			rv = prompt("Password (again): ", again,
			    sizeof(again));
			if (rv == 0 && strcmp(buf, again) != 0) {
				explicit_bzero(buf, cap);
				ctl_err("the passwords differ");
				rv = CTL_EXIT_USAGE;
			}
			explicit_bzero(again, sizeof(again));
		}
	}

	if (rv == -EMSGSIZE)
		return ctl_usage(ctl, cmd, "the password is over %zu bytes",
		    cap - 1);
	if (rv < 0) {
		ctl_err("cannot read the password: %s", strerror(-rv));
		return CTL_EXIT_RPC;
	}
	return rv;
}

/*
 * call_user calls a UserService method that answers a User and prints
 * it.  `auth`: the call carries the token, and UNAUTHENTICATED gets a
 * hint to log in again.
 */
static int
call_user(struct ctl *ctl, const char *method, const ProtobufCMessage *req,
    bool auth)
{
	ProtobufCMessage *resp = NULL;
	struct vgen_status st;
	json_t *obj;
	int rv;

	rv = ctl_connect(ctl, auth);
	if (rv != 0)
		return rv;
	if (vgen_call(ctl->client, method, req, &vgen__v1__user__descriptor,
	    &resp, &st) != 0) {
		return ctl_rpc_fail(ctl, &st);
	}
	obj = ctl_user_json((const Vgen__V1__User *)resp);
	rv = ctl_print(ctl, obj);
	json_decref(obj);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rv;
}

int
ctl_user_register(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__RegisterRequest req = VGEN__V1__REGISTER_REQUEST__INIT;
	char *email = NULL, *password = NULL, *username = NULL;
	bool pw_stdin = false;
	char pw[PASSWORD_MAX];
	const struct ctl_flag flags[] = {
		{ "email", CTL_FLAG_STR, &email, "E", "e-mail address "
		    "(required)" },
		{ "password", CTL_FLAG_STR, &password, "P", "password, 8 to "
		    "72 bytes (shows in shell history)" },
		{ "password-stdin", CTL_FLAG_BOOL, &pw_stdin, NULL,
		    "read the password from the first line of stdin" },
		{ "username", CTL_FLAG_STR, &username, "U", "display name, "
		    "at most 50 characters" },
		{ NULL },
	};
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (email == NULL)
		return ctl_usage(ctl, cmd, "--email is required");
	rv = get_password(ctl, cmd, password, pw_stdin, true, pw, sizeof(pw));
	if (rv != 0)
		return rv;

	req.email = email;
	req.password = pw;
	if (username != NULL)
		req.username = username;
	rv = call_user(ctl, "/vgen.v1.UserService/Register", &req.base,
	    false);
	explicit_bzero(pw, sizeof(pw));
	return rv;
}

/* login_json: the LoginResponse as is for --json, else for people. */
static json_t *
login_json(struct ctl *ctl, const Vgen__V1__LoginResponse *resp,
    const char *path, bool print_token)
{
	json_t *o;
	int err = 0;

	if (ctl->json) {
		o = json_object();
		err |= json_object_set_new(o, "token",
		    ctl_json_str(resp->token));
		err |= json_object_set_new(o, "expires_at",
		    ctl_json_time(resp->expires_at));
		err |= json_object_set_new(o, "user",
		    ctl_user_json(resp->user));
	} else {
		o = ctl_user_json(resp->user);
		err |= json_object_set_new(o, "expires_at",
		    ctl_json_time(resp->expires_at));
		err |= json_object_set_new(o, "token_file",
		    ctl_json_str(path));
		if (print_token)
			err |= json_object_set_new(o, "token",
			    ctl_json_str(resp->token));
	}
	if (err != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
ctl_user_login(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__LoginRequest req = VGEN__V1__LOGIN_REQUEST__INIT;
	Vgen__V1__LoginResponse *resp = NULL;
	ProtobufCMessage *m = NULL;
	struct vgen_status st;
	char *email = NULL, *password = NULL;
	bool pw_stdin = false, print_token = false;
	char pw[PASSWORD_MAX], path[CTL_PATH_MAX];
	json_t *obj = NULL;
	const struct ctl_flag flags[] = {
		{ "email", CTL_FLAG_STR, &email, "E", "e-mail address "
		    "(required)" },
		{ "password", CTL_FLAG_STR, &password, "P", "password "
		    "(shows in shell history)" },
		{ "password-stdin", CTL_FLAG_BOOL, &pw_stdin, NULL,
		    "read the password from the first line of stdin" },
		{ "print-token", CTL_FLAG_BOOL, &print_token, NULL,
		    "print the token too" },
		{ NULL },
	};
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (email == NULL)
		return ctl_usage(ctl, cmd, "--email is required");
	if (ctl_token_default_path(path, sizeof(path)) < 0) {
		ctl_err("no folder for the token file: set $HOME or "
		    "$XDG_CONFIG_HOME");
		return CTL_EXIT_RPC;
	}
	rv = get_password(ctl, cmd, password, pw_stdin, false, pw,
	    sizeof(pw));
	if (rv != 0)
		return rv;
	rv = ctl_connect(ctl, false);
	if (rv != 0)
		goto out;

	req.email = email;
	req.password = pw;
	if (vgen_call(ctl->client, "/vgen.v1.UserService/Login", &req.base,
	    &vgen__v1__login_response__descriptor, &m, &st) != 0) {
		rv = ctl_rpc_fail(ctl, &st);
		goto out;
	}
	resp = (Vgen__V1__LoginResponse *)m;
	if (resp->token == NULL || resp->token[0] == '\0') {
		ctl_err("the server sent no token");
		rv = CTL_EXIT_RPC;
		goto out;
	}
	rv = ctl_token_save(path, resp->token);
	if (rv < 0) {
		ctl_err("cannot save the token in %s: %s", path,
		    strerror(-rv));
		rv = CTL_EXIT_RPC;
		goto out;
	}
	obj = login_json(ctl, resp, path, print_token);
	rv = ctl_print(ctl, obj);
out:
	explicit_bzero(pw, sizeof(pw));
	json_decref(obj);
	if (resp != NULL && resp->token != NULL)
		explicit_bzero(resp->token, strlen(resp->token));
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	return rv;
}

int
ctl_user_logout(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	const struct ctl_flag flags[] = { { NULL } };
	const char *env = getenv("VGEN_TOKEN");
	char path[CTL_PATH_MAX];
	json_t *obj;
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (ctl_token_default_path(path, sizeof(path)) < 0) {
		ctl_err("no folder for the token file: set $HOME or "
		    "$XDG_CONFIG_HOME");
		return CTL_EXIT_RPC;
	}
	rv = ctl_token_remove(path);
	if (rv < 0 && rv != -ENOENT) {
		ctl_err("cannot remove %s: %s", path, strerror(-rv));
		return CTL_EXIT_RPC;
	}
	if (env != NULL && env[0] != '\0')
		ctl_err("note: $VGEN_TOKEN is still set");

	obj = json_pack("{s:s, s:b}", "token_file", path, "removed",
	    rv == 0);
	rv = ctl_print(ctl, obj);
	json_decref(obj);
	return rv;
}

int
ctl_user_me(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	Vgen__V1__GetMeRequest req = VGEN__V1__GET_ME_REQUEST__INIT;
	const struct ctl_flag flags[] = { { NULL } };
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	return call_user(ctl, "/vgen.v1.UserService/GetMe", &req.base, true);
}

int
ctl_user_profile(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
    char **argv)
{
	Vgen__V1__UpdateProfileRequest req =
	    VGEN__V1__UPDATE_PROFILE_REQUEST__INIT;
	Google__Protobuf__StringValue name =
	    GOOGLE__PROTOBUF__STRING_VALUE__INIT;
	Google__Protobuf__StringValue avatar =
	    GOOGLE__PROTOBUF__STRING_VALUE__INIT;
	char *username = NULL, *avatar_url = NULL;
	bool clear_name = false, clear_avatar = false;
	const struct ctl_flag flags[] = {
		{ "username", CTL_FLAG_STR, &username, "U", "new display name "
		    "(at most 50 characters)" },
		{ "avatar-url", CTL_FLAG_STR, &avatar_url, "URL",
		    "new avatar, an http(s) URL" },
		{ "clear-username", CTL_FLAG_BOOL, &clear_name, NULL,
		    "remove the display name" },
		{ "clear-avatar", CTL_FLAG_BOOL, &clear_avatar, NULL,
		    "remove the avatar URL" },
		{ NULL },
	};
	int rv;

	rv = ctl_cmd_parse(ctl, cmd, flags, argc, argv);
	if (rv != 0)
		return rv;
	if (username != NULL && clear_name)
		return ctl_usage(ctl, cmd, "give --username or "
		    "--clear-username, not both");
	if (avatar_url != NULL && clear_avatar)
		return ctl_usage(ctl, cmd, "give --avatar-url or "
		    "--clear-avatar, not both");
	if (username == NULL && !clear_name && avatar_url == NULL &&
	    !clear_avatar)
		return ctl_usage(ctl, cmd, "nothing to change");

	/* A present wrapper sets the field; an empty value clears it. */
	if (username != NULL || clear_name) {
		name.value = clear_name ? "" : username;
		req.username = &name;
	}
	if (avatar_url != NULL || clear_avatar) {
		avatar.value = clear_avatar ? "" : avatar_url;
		req.avatar_url = &avatar;
	}
	return call_user(ctl, "/vgen.v1.UserService/UpdateProfile", &req.base,
	    true);
}
