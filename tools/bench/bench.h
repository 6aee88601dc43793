/*
 * tools/bench/bench.h: what vgen-bench's modes share.  vgen-bench.c holds
 * rpc, pg and echo and these helpers; each further mode lives in its own
 * file and is reached from main() through its *_main(argc, argv), parsing
 * its own options (argv[1] is the mode's name).
 */
#ifndef VGEN_BENCH_H
#define VGEN_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include "vg.h"

/* A registered, logged-in bench user. */
struct bench_user {
	char email[64];
	char password[24];
	char id[VG_UUID_STRLEN + 1];	/* LoginResponse.user.id */
	char *bearer;		/* "Bearer <token>", malloc'd; the caller frees */
};

/* CLOCK_MONOTONIC in ns. */
int64_t now_ns(void);
void sleep_ms(int64_t ms);

/* n random [a-z0-9] characters and a NUL into out (n + 1 bytes, n <= 64). */
void random_chars(char *out, size_t n);

/*
 * Parses s as a whole number in [min, max] into *out; prints what was
 * wrong with it (naming flag) and returns -1 otherwise.
 */
int parse_long(const char *flag, const char *s, long min, long max,
    long *out);

/*
 * opt_error answers what a getopt_long loop (opterr 0, optstring starting
 * with ':') got instead of an option: ':' a missing value, else an unknown
 * option.  Prints which, pointing at `help`, and returns 2 (usage).
 */
int opt_error(int ch, char **argv, const char *help);

/* qsort comparator, and the nearest-rank quantile q of a sorted array. */
int cmp_u32(const void *a, const void *b);
uint32_t rank(const uint32_t *v, size_t n, double q);

/*
 * Registers a fresh user with a random e-mail and logs it in over urls;
 * prints why on failure.  0 or -1.
 */
int user_setup(const char *urls, struct bench_user *u);

/*
 * users_drop deletes the n bench users (their jobs and videos go with
 * them: ON DELETE CASCADE) through conninfo; without a database it says
 * on stderr that they stay.  Users whose setup failed (no id) are skipped.
 */
void users_drop(const char *conninfo, const struct bench_user *users, int n);

/*
 * A CPU reading of a process (the server, or the echo baseline's child),
 * of the machine and of ourselves, with their context switches; cpu_read
 * takes one (pid <= 0: no process).  proc_ticks: a process's utime +
 * stime in clock ticks, 0 or -1.  pid_file reads a pid (as tools/up
 * writes it), 0 or -1 printed.
 */
struct cpu_mark {
	int64_t t;
	bool proc_ok;
	uint64_t ticks;	/* utime + stime of the process */
	uint64_t sys_busy, sys_total;	/* /proc/stat, all cores */
	double self_s;		/* our own user + system seconds */
	/*
	 * Context switches so far, voluntary and not: the process's (the
	 * sum over its threads now alive; proc_switches_ok), ours (all our
	 * threads) and the machine's (/proc/stat ctxt; 0 when unread).
	 */
	bool proc_switches_ok;
	uint64_t proc_switches, self_switches, sys_switches;
};

void cpu_read(pid_t pid, struct cpu_mark *m);
int proc_ticks(pid_t pid, uint64_t *out);
int pid_file(const char *path, pid_t *out);

/* A libpq connection (5 s connect timeout), or NULL with the reason printed. */
PGconn *pg_open(const char *conninfo);
/* Prints "vgen-bench: what: <libpq's first line>". */
void pg_fail(const char *what, PGconn *db);

/* The further modes: each returns the process exit code. */
int bench_worker_main(int argc, char **argv);
int bench_events_main(int argc, char **argv);

#endif
