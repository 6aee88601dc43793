/*
 * common/vg.h: what every vgen module shares.
 *
 * Error codes (VG_E*), the mapping of codes to RPC status names, logging,
 * configuration (environment variables with matching --flags), input
 * validation (UUIDs, UTF-8, e-mail, URLs), time helpers and the RPC
 * envelope.  Depends only on nng, protobuf-c and libsodium.
 */
#ifndef VG_H
#define VG_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vgen/v1/rpc.pb-c.h"

#define VG_MUSTCHECK __attribute__((warn_unused_result))
#define VG_PRINTF(f, a) __attribute__((format(printf, f, a)))

/*
 * Error codes.  A function that does something returns 0 or one of these
 * (negative) codes.  Appended, never renumbered.
 */
enum {
	VG_OK = 0,
	VG_ENOMEM = -1,		/* out of memory */
	VG_EINVAL = -2,		/* bad input (a caller's mistake) */
	VG_ENOTFOUND = -3,	/* absent, or not the caller's */
	VG_EEXISTS = -4,	/* unique value already taken */
	VG_ESTALE = -5,		/* a fenced write matched no row */
	VG_EUNAVAIL = -6,	/* database or peer unreachable */
	VG_ETIMEDOUT = -7,	/* deadline passed */
	VG_ETOOBIG = -8,	/* over a size limit */
	VG_EINTERNAL = -9,	/* a bug, or an unexpected answer */
	VG_EAUTH = -10,		/* missing, bad or expired credentials */
	VG_ELIMIT = -11,	/* quota or throttle */
	VG_EIMPL = -12,		/* not implemented */
	VG_EPERM = -13,		/* not allowed here */
	VG_EPROTO = -14,	/* malformed frame or message */
};

/* vg_strerror returns a static English phrase for a VG_E* code. */
const char *vg_strerror(int code);

/*
 * RPC status codes: numbers as gRPC's, the proto's vgen.v1.StatusCode.
 * vg_status_name returns "NOT_FOUND" etc., or "UNKNOWN" for other numbers;
 * vg_status_from_code maps a VG_E* code to the status an RPC answers with
 * (codes missing from the table become VG_INTERNAL).
 */
enum vg_status {
	VG_STATUS_OK = 0,
	VG_CANCELLED = 1,
	VG_UNKNOWN = 2,
	VG_INVALID_ARGUMENT = 3,
	VG_DEADLINE_EXCEEDED = 4,
	VG_NOT_FOUND = 5,
	VG_ALREADY_EXISTS = 6,
	VG_PERMISSION_DENIED = 7,
	VG_RESOURCE_EXHAUSTED = 8,
	VG_FAILED_PRECONDITION = 9,
	VG_ABORTED = 10,
	VG_OUT_OF_RANGE = 11,
	VG_UNIMPLEMENTED = 12,
	VG_INTERNAL = 13,
	VG_UNAVAILABLE = 14,
	VG_DATA_LOSS = 15,
	VG_UNAUTHENTICATED = 16,
};
const char *vg_status_name(int status);
enum vg_status vg_status_from_code(int code);

/*
 * Logging: one line per event on stderr, "ts level component msg k=v ...".
 * vg_log_init sets the component name (a static string) and the minimum
 * level (from VGEN_LOG_LEVEL: debug, info, warn, error; default info).
 */
enum vg_log_level { VG_LOG_DEBUG, VG_LOG_INFO, VG_LOG_WARN, VG_LOG_ERROR };
void vg_log_init(const char *component);
void vg_log(enum vg_log_level lvl, const char *fmt, ...) VG_PRINTF(2, 3);
#define vg_debug(...) vg_log(VG_LOG_DEBUG, __VA_ARGS__)
#define vg_info(...) vg_log(VG_LOG_INFO, __VA_ARGS__)
#define vg_warn(...) vg_log(VG_LOG_WARN, __VA_ARGS__)
#define vg_error(...) vg_log(VG_LOG_ERROR, __VA_ARGS__)

/* VG_ASSERT checks invariants (never input): on failure log and abort. */
#define VG_ASSERT(x)                                                        \
	do {                                                                \
		if (!(x))                                                   \
			vg_assert_fail(#x, __FILE__, __LINE__);             \
	} while (0)
_Noreturn void vg_assert_fail(const char *what, const char *file, int line);

/*
 * Configuration.  A program describes its settings in a table of
 * struct vg_opt, terminated by an entry with name NULL; each names an
 * environment variable (VGEN_*), the matching --flag, a default and a help
 * line, and points at the program's storage.  vg_config_load fills every
 * setting from its default, then the environment, then argv (--flag=value
 * or --flag value).  Strings point into argv/environ or at the default
 * (static): nothing to free.  Unknown flags and bad numbers are errors:
 * it prints one clear line and returns VG_EINVAL.  --help prints the table
 * and returns 1.  Arguments that are not flags are left in argv order in
 * *rest (argv's own pointers; *nrest of them).
 */
enum vg_opt_type { VG_OPT_STR, VG_OPT_INT, VG_OPT_BOOL };
struct vg_opt {
	const char *name;	/* flag name without "--": "database-url" */
	const char *env;	/* "VGEN_DATABASE_URL", or NULL */
	enum vg_opt_type type;
	const char *def;	/* default as text, or NULL */
	const char *help;
	void *ptr;		/* const char ** / long * / bool * */
	long min, max;		/* bounds for VG_OPT_INT */
};
int vg_config_load(const struct vg_opt *opts, const char *usage, int argc,
    char **argv, char ***rest, int *nrest) VG_MUSTCHECK;
void vg_config_help(const struct vg_opt *opts, const char *usage);

/* Validation, at the edge.  All take NUL-terminated strings. */
#define VG_UUID_STRLEN 36
bool vg_uuid_valid(const char *s);	  /* canonical lower/upper hex 8-4-4-4-12 */
/* The first 2n characters of hex (either case) into out[n]; false when
 * one is not a hex digit (a NUL included: reads stop there). */
bool vg_hex_decode(unsigned char *out, size_t n, const char *hex);
bool vg_utf8_valid(const char *s, size_t len);	/* no NUL, no overlongs */
size_t vg_utf8_len(const char *s);	  /* code points of valid UTF-8 */
bool vg_email_valid(const char *s);	  /* already trimmed and lower-cased */
bool vg_http_url_valid(const char *s);	  /* http(s)://host[...], no spaces */

/* Time. */
int64_t vg_now_ms(void);	/* CLOCK_MONOTONIC in ms */

/* Raises the open-file soft limit to the hard one; the limit now (-1:
 * unknown or unlimited). */
long vg_raise_nofile(void);

/*
 * vg_sched_swap gives the calling thread `policy` (SCHED_OTHER,
 * SCHED_BATCH or SCHED_IDLE, priority 0) and returns the one it had, or
 * -1 with errno set.  Threads it creates afterwards inherit the policy.
 */
int vg_sched_swap(int policy);

/*
 * vg_sched_slice_set asks for the calling thread to run in slices of `ns`
 * (EEVDF's custom slice, Linux 6.12 and later, which clamps it to 100 us
 * - 100 ms; 0 for the default), keeping its policy and nice value.  Older
 * kernels accept and ignore it.  vg_sched_slice_get reads thread tid's
 * slice (0 where the kernel does not say).  Both: 0, or -1 with errno.
 */
int vg_sched_slice_set(uint64_t ns);
int vg_sched_slice_get(pid_t tid, uint64_t *ns);

/*
 * vg_cpus_parse reads a CPU list ("3", "0,2", "1-3,6") into *out: 0, or
 * VG_EINVAL when the list is malformed or names a CPU not in *allowed.
 */
int vg_cpus_parse(const char *list, const cpu_set_t *allowed,
    cpu_set_t *out);

/*
 * vg_spawn starts `bin` (argv, and envp or our environment when NULL)
 * with stdout and stderr appended to `log`, stdin from /dev/null, none of
 * our other fds, default signals and a SIGKILL when we die (tests and
 * benchmarks leave no child behind).  Returns the pid, or -1 (errno).
 */
pid_t vg_spawn(const char *bin, char *const *argv, char *const *envp,
    const char *log);
int64_t vg_wall_us(void);	/* CLOCK_REALTIME in µs */

/*
 * Envelope.  vg_env_request_decode unpacks one RPC frame; it returns NULL
 * for a malformed frame.  The caller frees with
 * vgen__v1__rpc_request__free_unpacked(req, NULL).  vg_env_pack packs any
 * message into a fresh nng_msg (*out, caller owns; NULL on failure) and
 * returns 0 or VG_ENOMEM.
 */
struct nng_msg;
Vgen__V1__RpcRequest *vg_env_request_decode(const void *buf, size_t len);
Vgen__V1__RpcResponse *vg_env_response_decode(const void *buf, size_t len);
int vg_env_pack(const ProtobufCMessage *m, struct nng_msg **out) VG_MUSTCHECK;

/* Set on every socket we open (DESIGN §6: nng defaults to unlimited). */
#define VG_SERVER_MAX_FRAME (64 * 1024)
#define VG_CLIENT_MAX_FRAME (16 * 1024 * 1024)

#endif /* VG_H */
