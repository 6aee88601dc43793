/*
 * client/ctl_main.c: vgenctl's entry point.
 *
 * Global flags, the command table, flag parsing and help, and the one
 * connection every command shares.  A new command (or group of them, such
 * as "jobs ...") is one more line in ctl_cmds[].
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define STR(x) STR_(x)
#define STR_(x) #x

static int cmd_help(struct ctl *, const struct ctl_cmd *, int, char **);

/*
 * Every top-level command.  Later groups ("jobs", "videos", "admin") are
 * entries whose run calls ctl_dispatch() on the group's own table.
 */
static const struct ctl_cmd ctl_cmds[] = {
	{ "register", "--email E [--password P | --password-stdin] "
	    "[--username U]",
	    "create an account and print it",
	    "The password comes from --password, --password-stdin, "
	    "$VGEN_PASSWORD,\nor a prompt when stdin is a terminal.",
	    ctl_user_register },
	{ "login", "--email E [--password P | --password-stdin] "
	    "[--print-token]",
	    "log in and save the token for later commands",
	    "The token is saved in $XDG_CONFIG_HOME/vgen/token (default\n"
	    "~/.config/vgen/token, mode 0600).  It is printed only with "
	    "--json or\n--print-token.  The password comes as for 'register'.",
	    ctl_user_login },
	{ "logout", "", "forget the saved token",
	    "Removes the token file; $VGEN_TOKEN and --token are not "
	    "touched.", ctl_user_logout },
	{ "me", "", "show the logged-in user",
	    "The token comes from --token, else $VGEN_TOKEN, else the token "
	    "file.", ctl_user_me },
	{ "profile", "[--username U | --clear-username] "
	    "[--avatar-url URL | --clear-avatar]",
	    "change your username or avatar URL",
	    "Fields not named are left alone; an empty value clears a field "
	    "too.", ctl_user_profile },
	{ "jobs", "COMMAND [flags]", "create, follow, list and cancel video "
	    "jobs", NULL, ctl_jobs },
	{ "videos", "COMMAND [flags]", "list, show and delete your videos",
	    NULL, ctl_videos },
	{ "admin", "COMMAND [flags]", "server statistics, users and job "
	    "retries (admin socket)", NULL, ctl_admin },
	{ "health", "[--service NAME]", "check that the server is serving",
	    "Prints the serving status; exits 0 only when it is SERVING.",
	    ctl_health },
	{ "help", "[COMMAND]", "show help for vgenctl or a command", NULL,
	    cmd_help },
	{ NULL },
};

/* where_name writes "jobs list", "register", "jobs" or "" into buf. */
static const char *
where_name(struct ctl *ctl, const struct ctl_cmd *cmd, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", ctl->group ? ctl->group : "",
	    ctl->group && cmd ? " " : "", cmd ? cmd->name : "");
	return buf;
}

static void
print_cmds(const struct ctl_cmd *table)
{
	const struct ctl_cmd *c;
	int w = 0;

	for (c = table; c->name != NULL; c++)
		if ((int)strlen(c->name) > w)
			w = (int)strlen(c->name);
	for (c = table; c->name != NULL; c++)
		printf("  %-*s  %s\n", w, c->name, c->summary);
}

static void
help_main(struct ctl *ctl)
{
	printf("usage: vgenctl [global flags] COMMAND [flags]\n\n"
	    "Talk to a vgen server: accounts, jobs and videos.\n\n"
	    "commands:\n");
	print_cmds(ctl_cmds);
	printf("\nglobal flags (before the command):\n");
	ctl_flags_help(ctl->global_flags);
	printf("\nenvironment:\n"
	    "  VGEN_SERVER      server URL(s) when --server is absent\n"
	    "  VGEN_TOKEN       token when --token is absent\n"
	    "  VGEN_ADMIN       admin endpoint of the 'admin' commands\n"
	    "  VGEN_PASSWORD    password for register and login\n"
	    "  XDG_CONFIG_HOME  folder of the token file (~/.config)\n"
	    "\nexit status:\n"
	    "  0  success\n"
	    "  1  the server answered with an error status, or a local "
	    "failure\n"
	    "  2  usage error\n"
	    "  3  server unreachable, or no reply in time (UNAVAILABLE,\n"
	    "     DEADLINE_EXCEEDED)\n"
	    "  4  not logged in, or the token was refused (UNAUTHENTICATED)\n"
	    "\nRun 'vgenctl COMMAND --help' for a command's flags.\n");
}

static void
help_cmd(struct ctl *ctl, const struct ctl_cmd *cmd,
    const struct ctl_flag *flags)
{
	char where[128];

	printf("usage: vgenctl [global flags] %s%s%s\n\n%c%s.\n",
	    where_name(ctl, cmd, where, sizeof(where)),
	    cmd->synopsis[0] ? " " : "", cmd->synopsis,
	    toupper((unsigned char)cmd->summary[0]), cmd->summary + 1);
	if (cmd->help != NULL)
		printf("\n%s\n", cmd->help);
	printf("\nflags:\n");
	ctl_flags_help(flags);
	printf("\nRun 'vgenctl --help' for global flags and exit "
	    "statuses.\n");
}

void
ctl_flags_help(const struct ctl_flag *flags)
{
	const struct ctl_flag *f;
	const char *p;
	int w = (int)strlen("-h, --help");
	char buf[64];

	for (f = flags; f->name != NULL; f++) {
		snprintf(buf, sizeof(buf), "--%s%s%s", f->name,
		    f->arg ? " " : "", f->arg ? f->arg : "");
		if ((int)strlen(buf) > w)
			w = (int)strlen(buf);
	}
	for (f = flags; f->name != NULL; f++) {
		snprintf(buf, sizeof(buf), "--%s%s%s", f->name,
		    f->arg ? " " : "", f->arg ? f->arg : "");
		printf("  %-*s  ", w, buf);
		/* A help text's own line breaks stay under its first line. */
		for (p = f->help; *p != '\0'; p++)
			if (*p == '\n')
				printf("\n  %-*s  ", w, "");
			else
				putchar(*p);
		putchar('\n');
	}
	printf("  %-*s  %s\n", w, "-h, --help", "show this help");
}

int
ctl_usage(struct ctl *ctl, const struct ctl_cmd *cmd, const char *fmt, ...)
{
	char msg[512], where[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	where_name(ctl, cmd, where, sizeof(where));
	if (where[0] == '\0') {
		ctl_err("%s", msg);
		fprintf(stderr, "Run 'vgenctl --help' for usage.\n");
	} else {
		ctl_err("%s: %s", where, msg);
		fprintf(stderr, "Run 'vgenctl %s --help' for usage.\n", where);
	}
	return CTL_EXIT_USAGE;
}

/* parse_ms reads a positive decimal number of milliseconds. */
static int
parse_ms(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int
ctl_flags_parse(struct ctl *ctl, const struct ctl_cmd *cmd,
    const struct ctl_flag *flags, int argc, char **argv, int *ip)
{
	const struct ctl_flag *f;
	char *a, *eq, *val;
	size_t nlen;
	int i;

	for (i = *ip; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			return CTL_HELP;
		if (a[0] != '-' || a[1] == '\0')
			break;	/* a positional argument, or "-" */
		if (a[1] != '-')
			return ctl_usage(ctl, cmd, "unknown flag '%s'", a);

		eq = strchr(a + 2, '=');
		nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
		for (f = flags; f->name != NULL; f++)
			if (strlen(f->name) == nlen &&
			    strncmp(f->name, a + 2, nlen) == 0)
				break;
		if (f->name == NULL)
			return ctl_usage(ctl, cmd, "unknown flag '--%.*s'",
			    (int)nlen, a + 2);

		if (f->type == CTL_FLAG_BOOL) {
			if (eq != NULL)
				return ctl_usage(ctl, cmd,
				    "--%s takes no value", f->name);
			*(bool *)f->dst = true;
			continue;
		}
		if (eq != NULL)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return ctl_usage(ctl, cmd, "--%s needs a value",
			    f->name);
		if (f->type == CTL_FLAG_STR)
			*(char **)f->dst = val;
		else if (parse_ms(val, f->dst) < 0)
			return ctl_usage(ctl, cmd, "--%s: '%s' is not a "
			    "positive number of milliseconds", f->name, val);
	}
	*ip = i;
	return 0;
}

int
ctl_cmd_parse(struct ctl *ctl, const struct ctl_cmd *cmd,
    const struct ctl_flag *flags, int argc, char **argv)
{
	int i = 1, rv;

	rv = ctl_flags_parse(ctl, cmd, flags, argc, argv, &i);
	if (rv == CTL_HELP)
		help_cmd(ctl, cmd, flags);
	if (rv != 0)
		return rv;
	if (i < argc)
		return ctl_usage(ctl, cmd, "unexpected argument '%s'",
		    argv[i]);
	return 0;
}

int
ctl_dispatch(struct ctl *ctl, const char *group, const struct ctl_cmd *table,
    int argc, char **argv)
{
	const struct ctl_cmd *c;

	ctl->group = group;
	if (argc < 1)
		return ctl_usage(ctl, NULL, "no command given");
	if (group != NULL && (strcmp(argv[0], "-h") == 0 ||
	    strcmp(argv[0], "--help") == 0)) {
		printf("usage: vgenctl [global flags] %s COMMAND [flags]\n\n"
		    "commands:\n", group);
		print_cmds(table);
		printf("\nRun 'vgenctl %s COMMAND --help' for a command's "
		    "flags.\n", group);
		return CTL_HELP;
	}
	for (c = table; c->name != NULL; c++)
		if (strcmp(c->name, argv[0]) == 0)
			return c->run(ctl, c, argc, argv);
	return ctl_usage(ctl, NULL, "unknown command '%s'", argv[0]);
}

/* "vgenctl help [COMMAND]" is "vgenctl [COMMAND] --help". */
static int
cmd_help(struct ctl *ctl, const struct ctl_cmd *cmd, int argc, char **argv)
{
	const struct ctl_cmd *c;
	char *sub[] = { NULL, "--help", NULL };
	int i = 1, rv;

	rv = ctl_flags_parse(ctl, cmd, (struct ctl_flag[]){ { NULL } }, argc,
	    argv, &i);
	if (rv == CTL_HELP || (rv == 0 && i == argc)) {
		help_main(ctl);
		return CTL_HELP;
	}
	if (rv != 0)
		return rv;
	if (i + 1 < argc)
		return ctl_usage(ctl, cmd, "unexpected argument '%s'",
		    argv[i + 1]);
	for (c = ctl_cmds; c->name != NULL; c++)
		if (strcmp(c->name, argv[i]) == 0) {
			sub[0] = argv[i];
			return c->run(ctl, c, 2, sub);
		}
	return ctl_usage(ctl, cmd, "unknown command '%s'", argv[i]);
}

/*
 * ctl_connect resolves the token (when `auth`) and then opens the client.
 * In that order: a command that fails before its call must not leave a
 * connection half-negotiated behind it (nng 1.5's listener stops
 * accepting when a peer hangs up during the handshake).
 */
int
ctl_connect(struct ctl *ctl, bool auth)
{
	const char *server = ctl->server, *token = ctl->token;
	char path[CTL_PATH_MAX];
	int rv;

	if (auth) {
		if (token == NULL || token[0] == '\0')
			token = getenv("VGEN_TOKEN");
		if ((token == NULL || token[0] == '\0') &&
		    ctl->token_buf == NULL) {
			rv = ctl_token_default_path(path, sizeof(path));
			if (rv == 0)
				rv = ctl_token_load(path, &ctl->token_buf);
			if (rv == -ENOENT) {
				ctl_err("not logged in: run 'vgenctl login', "
				    "or set $VGEN_TOKEN");
				return CTL_EXIT_AUTH;
			}
			if (rv < 0) {
				ctl_err("cannot read token file %s: %s", path,
				    strerror(-rv));
				return CTL_EXIT_RPC;
			}
		}
		if (token == NULL || token[0] == '\0')
			token = ctl->token_buf;
	}
	if (ctl->client == NULL) {
		if (server == NULL || server[0] == '\0')
			server = getenv("VGEN_SERVER");
		if (server == NULL || server[0] == '\0')
			server = VGEN_DEFAULT_SERVER;
		ctl->dialed = server;
		rv = vgen_client_open(server, &ctl->client);
		if (rv == -2) {
			ctl_err("bad server URL list '%s'", server);
			return CTL_EXIT_USAGE;
		}
		if (rv < 0) {
			ctl_err("cannot open a client: out of memory");
			return CTL_EXIT_RPC;
		}
		vgen_client_set_timeout(ctl->client, ctl->timeout_ms);
	}
	if (!auth)
		return 0;
	if (vgen_client_set_token(ctl->client, token) < 0) {
		ctl_err("cannot set the token: out of memory");
		return CTL_EXIT_RPC;
	}
	ctl->sent_token = true;
	return 0;
}

int
main(int argc, char **argv)
{
	struct ctl ctl = { 0 };
	const struct ctl_flag flags[] = {
		{ "server", CTL_FLAG_STR, &ctl.server, "URLS",
		    "server URL(s), comma-separated\n(default $VGEN_SERVER, "
		    "else " VGEN_DEFAULT_SERVER ")" },
		{ "json", CTL_FLAG_BOOL, &ctl.json, NULL,
		    "print each result as one JSON object" },
		{ "timeout", CTL_FLAG_MS, &ctl.timeout_ms, "MS",
		    "per-call deadline in milliseconds (default "
		    STR(VGEN_DEFAULT_TIMEOUT_MS) ")" },
		{ "token", CTL_FLAG_STR, &ctl.token, "TOKEN",
		    "bearer token (default $VGEN_TOKEN, else the token file)" },
		{ NULL },
	};
	int i = 1, rv;

	ctl.global_flags = flags;
	rv = ctl_flags_parse(&ctl, NULL, flags, argc, argv, &i);
	if (rv == CTL_HELP) {
		help_main(&ctl);
		return CTL_EXIT_OK;
	}
	if (rv != 0)
		return rv;

	rv = ctl_dispatch(&ctl, NULL, ctl_cmds, argc - i, argv + i);
	if (rv == CTL_HELP)
		rv = CTL_EXIT_OK;

	vgen_client_close(ctl.client);
	if (ctl.token_buf != NULL) {
		explicit_bzero(ctl.token_buf, strlen(ctl.token_buf));
		free(ctl.token_buf);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		ctl_err("cannot write the output");
		if (rv == CTL_EXIT_OK)
			rv = CTL_EXIT_RPC;
	}
	return rv;
}
