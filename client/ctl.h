/*
 * client/ctl.h: vgenctl's modules, private to client/ctl_*.c.
 *
 * vgenctl uses only the public client API (vgen.h), as curl's tool uses
 * libcurl.  ctl_main.c parses the global flags and finds the command in a
 * name -> function table (like PgBouncer's show_map); each ctl_<group>.c
 * file holds the commands of one group; ctl_out.c prints results as
 * aligned "key: value" lines or as JSON, ctl_table.c lists as tables;
 * ctl_token.c keeps the login token in a file under the XDG config folder.
 */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vgen.h"

/*
 * Exit statuses, documented in `vgenctl --help`.  A command returns one of
 * these; CTL_HELP means "help was printed, stop" and exits 0.
 */
enum {
	CTL_HELP = -1,
	CTL_EXIT_OK = 0,
	CTL_EXIT_RPC = 1,	/* an error status, or a local failure */
	CTL_EXIT_USAGE = 2,	/* bad command line */
	CTL_EXIT_UNREACH = 3,	/* UNAVAILABLE, DEADLINE_EXCEEDED */
	CTL_EXIT_AUTH = 4,	/* not logged in, or UNAUTHENTICATED */
};

struct ctl_flag;

/* One run of vgenctl: global flags and the connection, shared by commands. */
struct ctl {
	char *server;		/* --server, else $VGEN_SERVER, else default */
	char *token;		/* --token; NULL: $VGEN_TOKEN, else the file */
	uint32_t timeout_ms;	/* --timeout; 0: the library's default */
	bool json;		/* --json */
	const char *group;	/* "jobs" while running "vgenctl jobs ..." */
	const struct ctl_flag *global_flags;	/* for help */
	vgen_client *client;	/* opened by ctl_connect, closed by main */
	const char *dialed;	/* the URL list client dialed */
	bool sent_token;	/* calls carry a token: UNAUTHENTICATED means log in */
	char *token_buf;	/* token read by ctl_connect; wiped and freed */
};

/*
 * A command: its name on the command line, a synopsis of its flags, one
 * summary line for `vgenctl --help`, a longer text for `vgenctl CMD
 * --help`, and the function that runs it.  run receives argv[0] = name
 * and returns a CTL_EXIT_* status (or CTL_HELP).
 *
 * Tables end with a zeroed entry.  A group of sub-commands ("jobs list",
 * "jobs get ID") is one entry whose run calls ctl_dispatch() on the
 * group's own table.
 */
struct ctl_cmd {
	const char *name;
	const char *synopsis;	/* "--email E [--username U]" */
	const char *summary;
	const char *help;	/* may be NULL */
	int (*run)(struct ctl *ctl, const struct ctl_cmd *cmd, int argc,
	    char **argv);
};

/*
 * ctl_dispatch runs the command named argv[0] from `table`; `group` names
 * the table in messages ("jobs"), NULL for the top level.  An unknown or
 * missing name is a usage error.  Returns the command's status.
 */
int ctl_dispatch(struct ctl *ctl, const char *group,
    const struct ctl_cmd *table, int argc, char **argv);

/*
 * Flags.  A command describes its flags in a table ending with a zeroed
 * entry; dst points at the command's variable: bool * for CTL_FLAG_BOOL,
 * char * * for CTL_FLAG_STR (pointing into argv, so a command may wipe a
 * secret), uint32_t * for CTL_FLAG_MS (milliseconds, 1..UINT32_MAX).
 * Flags are --name VALUE or --name=VALUE; -h and --help are always known.
 */
enum ctl_flag_type { CTL_FLAG_BOOL, CTL_FLAG_STR, CTL_FLAG_MS };
struct ctl_flag {
	const char *name;	/* "email" for --email */
	enum ctl_flag_type type;
	void *dst;
	const char *arg;	/* "E" in "--email E"; NULL for BOOL */
	const char *help;
};

/*
 * ctl_flags_parse reads flags from argv[*ip] on and stops at the first
 * argument that is not a flag (after "--", or at the end), leaving its
 * index in *ip.  Returns 0, CTL_HELP when -h/--help was seen (nothing
 * printed), or CTL_EXIT_USAGE after printing the error for `cmd` (NULL:
 * the global flags).
 */
int ctl_flags_parse(struct ctl *ctl, const struct ctl_cmd *cmd,
    const struct ctl_flag *flags, int argc, char **argv, int *ip);

/*
 * ctl_cmd_parse parses all of a command's arguments (argv[0] is its name)
 * and accepts no others.  On --help it prints the command's help.  Returns
 * 0, CTL_HELP or CTL_EXIT_USAGE; a command returns anything but 0 as is.
 */
int ctl_cmd_parse(struct ctl *ctl, const struct ctl_cmd *cmd,
    const struct ctl_flag *flags, int argc, char **argv);

/* ctl_flags_help prints a flag table as aligned help lines on stdout. */
void ctl_flags_help(const struct ctl_flag *flags);

/*
 * ctl_usage prints "vgenctl: CMD: <message>" and a pointer to --help on
 * stderr and returns CTL_EXIT_USAGE.  cmd NULL: the level of ctl->group
 * (the global level when that is NULL too).
 */
int ctl_usage(struct ctl *ctl, const struct ctl_cmd *cmd, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/*
 * ctl_connect opens ctl->client once, with --server and --timeout; when
 * `auth` is true it also sets the token (--token, $VGEN_TOKEN, else the
 * token file).  Returns 0, or prints why not and returns CTL_EXIT_USAGE (a
 * bad URL list), CTL_EXIT_AUTH (not logged in) or CTL_EXIT_RPC.
 */
int ctl_connect(struct ctl *ctl, bool auth);

/* ---- ctl_out.c: results and errors ------------------------------------ */

/*
 * ctl_rpc_fail reports a failed call on stderr, "vgenctl: NOT_FOUND:
 * message" then "  field: description" per violation, and returns the
 * exit status for st->code (3 for UNAVAILABLE and DEADLINE_EXCEEDED, 4 for
 * UNAUTHENTICATED, else 1).  A refused token gets a hint to log in again.
 */
int ctl_rpc_fail(struct ctl *ctl, const struct vgen_status *st);

/* ctl_err prints "vgenctl: <message>" on stderr, control bytes masked. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * ctl_print writes one result: with --json, `obj` as one line of JSON;
 * else its members as aligned "key: value" lines (nested objects as
 * "parent.key").  It does not take `obj`.  Returns 0, or CTL_EXIT_RPC when
 * obj is NULL (out of memory) or stdout fails.
 */
int ctl_print(struct ctl *ctl, const json_t *obj);

/*
 * JSON values from protobuf fields; each returns a new reference (NULL
 * only when out of memory).  ctl_json_str makes invalid UTF-8 valid with
 * U+FFFD; NULL is "".  ctl_json_time gives RFC 3339 in UTC
 * ("2025-01-02T03:04:05.123Z"), or null when ts is NULL or out of range.
 * ctl_json_enum gives the value's name ("SERVING"), or its number when
 * the descriptor does not know it.
 */
json_t *ctl_json_str(const char *s);
json_t *ctl_json_time(const Google__Protobuf__Timestamp *ts);
json_t *ctl_json_enum(const ProtobufCEnumDescriptor *desc, int value);

/*
 * ctl_time_format writes ts as RFC 3339 UTC into buf (CTL_TIME_STRLEN
 * bytes suffice).  Returns 0, or -EINVAL (nanos out of range, year outside
 * 1..9999) or -ERANGE (buf too small).
 */
#define CTL_TIME_STRLEN 40
int ctl_time_format(const Google__Protobuf__Timestamp *ts, char *buf,
    size_t len);

/* ---- ctl_token.c: the saved login token ------------------------------- */

#define CTL_TOKEN_MAX (16 * 1024)	/* bytes read from a token file */
#define CTL_PATH_MAX 4096		/* the token file's path, with its NUL */

/*
 * ctl_token_path writes the token file's path into buf:
 * `xdg`/vgen/token when xdg (the value of $XDG_CONFIG_HOME) is an absolute
 * path, else `home`/.config/vgen/token.  Returns 0, -ENOENT when neither
 * gives a folder, or -ENAMETOOLONG.  ctl_token_default_path does the same
 * with the environment (and the password database when $HOME is unset).
 */
int ctl_token_path(const char *xdg, const char *home, char *buf, size_t len);
int ctl_token_default_path(char *buf, size_t len);

/*
 * ctl_token_save writes `token` to `path` atomically: it creates missing
 * folders (0700), writes a 0600 temporary file beside path, syncs it and
 * renames it over path.  Returns 0 or a negative errno; on failure path is
 * untouched and no temporary file remains.
 */
int ctl_token_save(const char *path, const char *token);

/*
 * ctl_token_load reads the token from `path` (surrounding white space
 * trimmed).  Returns 0 and *out (malloc'd; the caller wipes and frees it),
 * -ENOENT when the file is missing or empty, -EFBIG over CTL_TOKEN_MAX,
 * or another negative errno.  Warns on stderr when others may read it.
 */
int ctl_token_load(const char *path, char **out);

/* ctl_token_remove deletes `path`: 0, -ENOENT if absent, or -errno. */
int ctl_token_remove(const char *path);

/* ---- commands --------------------------------------------------------- */

/* ctl_user.c */
int ctl_user_register(struct ctl *, const struct ctl_cmd *, int, char **);
int ctl_user_login(struct ctl *, const struct ctl_cmd *, int, char **);
int ctl_user_logout(struct ctl *, const struct ctl_cmd *, int, char **);
int ctl_user_me(struct ctl *, const struct ctl_cmd *, int, char **);
int ctl_user_profile(struct ctl *, const struct ctl_cmd *, int, char **);

/* ctl_user_json returns a User as a JSON object (a new reference). */
json_t *ctl_user_json(const Vgen__V1__User *u);

/* ctl_health.c */
int ctl_health(struct ctl *, const struct ctl_cmd *, int, char **);

/* ctl_jobs.c and ctl_videos.c: the "jobs ..." and "videos ..." groups */
int ctl_jobs(struct ctl *, const struct ctl_cmd *, int, char **);
int ctl_videos(struct ctl *, const struct ctl_cmd *, int, char **);

/* ctl_job_json returns a VideoJob as a JSON object (a new reference). */
json_t *ctl_job_json(const Vgen__V1__VideoJob *j);

/*
 * ctl_admin.c: the "admin ..." group, over AdminService on the admin
 * endpoint (--admin, $VGEN_ADMIN, else the server's default socket).
 */
int ctl_admin(struct ctl *, const struct ctl_cmd *, int, char **);

/* ---- ctl_table.c: shared by the jobs and videos commands -------------- */

/*
 * ctl_pages_fetch calls `method` with `req` and collects the replies of
 * type resp_desc (which has a next_page_token) into *pages[0..*n), after
 * the first one only when `all`, moving *page_token (a field of req) to
 * each next page.  Returns 0, or the exit code after printing the error;
 * either way the caller frees *pages with ctl_pages_free (the messages
 * own the tokens *page_token may point into).
 */
int ctl_pages_fetch(struct ctl *ctl, const char *method, ProtobufCMessage *req,
    char **page_token, const ProtobufCMessageDescriptor *resp_desc, bool all,
    ProtobufCMessage ***pages, size_t *n);
void ctl_pages_free(ProtobufCMessage **pages, size_t n);

/*
 * ctl_cmd_parse_id parses a command's flags and exactly one positional
 * argument, an ID, in any order; *id then points into argv.  Returns as
 * ctl_cmd_parse (0, CTL_HELP or CTL_EXIT_USAGE).
 */
int ctl_cmd_parse_id(struct ctl *ctl, const struct ctl_cmd *cmd,
    const struct ctl_flag *flags, int argc, char **argv, char **id);

/*
 * ctl_page_size_parse reads a --page-size value: decimal 0..INT32_MAX (0:
 * the server's default).  Returns 0 and *out, or -EINVAL.
 */
int ctl_page_size_parse(const char *s, int32_t *out);

/*
 * ctl_enum_parse finds the value named `s` in `desc`, ignoring case and
 * the name's `prefix` ("portrait" is PORTRAIT, "completed" with prefix
 * "VIDEO_STATUS_" is VIDEO_STATUS_COMPLETED).  The unspecified value (0)
 * is never matched.  Returns the value, or -1.
 */
int ctl_enum_parse(const ProtobufCEnumDescriptor *desc, const char *prefix,
    const char *s);

/*
 * ctl_enum_lower writes the name of `value` in lower case without
 * `prefix` into buf ("processing"), or "-" for 0, or the number when desc
 * does not know it.  Returns buf.
 */
const char *ctl_enum_lower(const ProtobufCEnumDescriptor *desc,
    const char *prefix, int value, char *buf, size_t len);

/* ctl_time_local writes ts as "2025-01-02 03:04" local time, or "-". */
const char *ctl_time_local(const Google__Protobuf__Timestamp *ts, char *buf,
    size_t len);

/*
 * ctl_term_width returns the width of the terminal on stdout, else
 * $COLUMNS, else 0 (no limit).
 */
int ctl_term_width(void);

/*
 * ctl_table_print prints `rows` (a JSON array of arrays of strings) under
 * `titles` (an array of strings) as columns two spaces apart on stdout.
 * When a line would be wider than `width` (0: no limit), column `flex` is
 * narrowed (not below 10) and its cells cut with "...".  The last column
 * is not padded; control bytes show as '?'.  Returns 0, or CTL_EXIT_RPC
 * (printed) when stdout fails.
 */
int ctl_table_print(const json_t *titles, const json_t *rows, size_t flex,
    int width);

/*
 * ctl_print_listing prints what a listing collected: `items` (JSON
 * objects with --json, else table rows; NULL or `failed`: out of memory)
 * as {key: items, "next_page_token": next} with --json, else as a table
 * under `titles` (see ctl_table_print) followed, when `next` is not
 * empty, by a hint for the next page on stderr.  Takes `items` and
 * `titles`.  Returns 0 or a CTL_EXIT_* code (printed).
 */
int ctl_print_listing(struct ctl *ctl, const char *key, json_t *items,
    bool failed, json_t *titles, size_t flex, const char *next);

#endif /* CTL_H */
