/*
 * server/main.c: vgen-server.  Reads the configuration, applies the
 * migrations, serves until SIGTERM or SIGINT, then finishes the calls in
 * flight and exits 0.  `vgen-server migrate` only applies the migrations.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "srv_int.h"

#define USAGE \
	"usage: vgen-server [serve|migrate] [--flag value ...]\n" \
	"  serve    apply pending migrations and serve (the default)\n" \
	"  migrate  apply pending migrations and exit"

static struct srv_config cfg;

static const struct vg_opt opts[] = {
	{ "database-url", "VGEN_DATABASE_URL", VG_OPT_STR, NULL,
	    "libpq connection string (required)", &cfg.database_url, 0, 0 },
	{ "rpc-listen", "VGEN_RPC_LISTEN", VG_OPT_STR, "tcp://127.0.0.1:7400",
	    "RPC endpoint(s), comma-separated", &cfg.rpc_listen, 0, 0 },
	{ "events-listen", "VGEN_EVENTS_LISTEN", VG_OPT_STR,
	    "tcp://127.0.0.1:7401", "progress events pub socket",
	    &cfg.events_listen, 0, 0 },
	{ "events-sendbuf", "VGEN_EVENTS_SENDBUF", VG_OPT_INT, "1024",
	    "events queued per subscriber before the oldest are dropped "
	    "(at least a worker's batch)", &cfg.events_sendbuf, 1, 8192 },
	{ "admin-listen", "VGEN_ADMIN_LISTEN", VG_OPT_STR, NULL,
	    "admin endpoint (default ipc://<run-dir>/admin.sock, mode 0600)",
	    &cfg.admin_listen, 0, 0 },
	{ "run-dir", "VGEN_RUN_DIR", VG_OPT_STR, NULL,
	    "folder for sockets (default $XDG_RUNTIME_DIR/vgen or "
	    "/tmp/vgen-<uid>)", &cfg.run_dir, 0, 0 },
	{ "jwt-secret", "VGEN_JWT_SECRET", VG_OPT_STR, NULL,
	    "token signing secret, at least 32 bytes", &cfg.jwt_secret, 0, 0 },
	{ "jwt-secret-file", "VGEN_JWT_SECRET_FILE", VG_OPT_STR, NULL,
	    "file holding the signing secret", &cfg.jwt_secret_file, 0, 0 },
	{ "bcrypt-cost", "VGEN_BCRYPT_COST", VG_OPT_INT, "12",
	    "bcrypt cost", &cfg.bcrypt_cost, 4, 31 },
	{ "threads", "VGEN_THREADS", VG_OPT_INT, "0",
	    "database threads (0: 4 x cores)", &cfg.threads, 0, 1024 },
	{ "read-conns", "VGEN_READ_CONNS", VG_OPT_INT, "0",
	    "pipelined database connections for quick reads (0: cores)",
	    &cfg.read_conns, 0, 64 },
	{ "slow-threads", "VGEN_SLOW_THREADS", VG_OPT_INT, "0",
	    "password-hashing threads (0: cores / 2, at least 1)",
	    &cfg.slow_threads, 0, 256 },
	{ "contexts", "VGEN_CONTEXTS", VG_OPT_INT, "256",
	    "requests received at once", &cfg.contexts, 1, 65536 },
	{ "token-ttl", "VGEN_TOKEN_TTL", VG_OPT_INT, "86400",
	    "token lifetime in seconds", &cfg.token_ttl_s, 60, 31536000 },
	{ "default-timeout-ms", "VGEN_DEFAULT_TIMEOUT_MS", VG_OPT_INT,
	    "30000", "deadline of calls that set none", &cfg.default_timeout_ms,
	    1, 3600000 },
	{ "max-frame", "VGEN_MAX_FRAME", VG_OPT_INT, "65536",
	    "largest request frame in bytes", &cfg.max_frame, 1024,
	    16777216 },
	{ "max-active-jobs", "VGEN_MAX_ACTIVE_JOBS", VG_OPT_INT, "5",
	    "pending + processing jobs one user may have",
	    &cfg.max_active_jobs, 1, 1000000000 },
	{ "job-max-attempts", "VGEN_JOB_MAX_ATTEMPTS", VG_OPT_INT, "3",
	    "attempts a job gets before it fails", &cfg.job_max_attempts, 1,
	    100 },
	{ "sched-batch", "VGEN_SCHED_BATCH", VG_OPT_INT, "1",
	    "threads that run SCHED_BATCH (woken, they preempt no one): "
	    "0 none, 1 the store reads' and the DB pool's, and nng's when "
	    "the RPC CPUs are bcrypt-free (see rpc-cpus), 2 all (bcrypt "
	    "too: slower Health while logins run)",
	    &cfg.sched_batch, 0, 2 },
	{ "rpc-cpus", "VGEN_RPC_CPUS", VG_OPT_STR, "auto",
	    "CPUs of nng's and the store reads' threads: a list (\"3\", "
	    "\"0-1\"), none, or auto (the highest CPU, with bcrypt on the "
	    "others, when there are two or more)", &cfg.rpc_cpus, 0, 0 },
	{ "nng-task-threads", "VGEN_NNG_TASK_THREADS", VG_OPT_STR, "auto",
	    "nng task threads that take work, the others held asleep: a "
	    "count, all (nng's 2 x cores), or auto (one while fewer than "
	    "32 subscribers watch the events: fewer switches per call; all "
	    "from there, for the fan-out)", &cfg.nng_tasks_spec, 0, 0 },
	{ NULL, NULL, 0, NULL, NULL, NULL, 0, 0 },
};

static const struct srv_service_def rpc_services[] = {
	{ &vgen__v1__user_service__descriptor, srv_user_handlers },
	{ &vgen__v1__video_job_service__descriptor, srv_job_handlers },
	{ &vgen__v1__video_service__descriptor, srv_video_handlers },
	{ &vgen__v1__health_service__descriptor, srv_health_handlers },
	{ NULL, NULL },
};

/* The admin endpoint serves everything, plus AdminService. */
static const struct srv_service_def admin_services[] = {
	{ &vgen__v1__user_service__descriptor, srv_user_handlers },
	{ &vgen__v1__video_job_service__descriptor, srv_job_handlers },
	{ &vgen__v1__video_service__descriptor, srv_video_handlers },
	{ &vgen__v1__health_service__descriptor, srv_health_handlers },
	{ &vgen__v1__admin_service__descriptor, srv_admin_handlers },
	{ NULL, NULL },
};

/* Loads the secret into sodium memory (*out, *len); the caller frees. */
static int
load_secret(char **out, size_t *len)
{
	const char *src = cfg.jwt_secret;
	char *buf = NULL;
	size_t n = 0;

	if (src == NULL && cfg.jwt_secret_file != NULL) {
		int fd = open(cfg.jwt_secret_file, O_RDONLY | O_CLOEXEC);
		ssize_t r;

		buf = sodium_malloc(4097);
		if (fd < 0 || buf == NULL) {
			fprintf(stderr, "vgen-server: cannot read %s: %s\n",
			    cfg.jwt_secret_file, strerror(errno));
			if (fd >= 0)
				close(fd);
			sodium_free(buf);
			return VG_EINVAL;
		}
		while (n < 4096 && (r = read(fd, buf + n, 4096 - n)) > 0)
			n += (size_t)r;
		close(fd);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
	} else if (src != NULL) {
		n = strlen(src);
		if ((buf = sodium_malloc(n + 1)) == NULL)
			return VG_ENOMEM;
		memcpy(buf, src, n);
	} else {
		fprintf(stderr, "vgen-server: set VGEN_JWT_SECRET or "
		    "VGEN_JWT_SECRET_FILE (at least %d bytes)\n",
		    SRV_SECRET_MIN);
		return VG_EINVAL;
	}
	if (n < SRV_SECRET_MIN) {
		fprintf(stderr, "vgen-server: the JWT secret must be at least "
		    "%d bytes (it has %zu)\n", SRV_SECRET_MIN, n);
		sodium_free(buf);
		return VG_EINVAL;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int
migrate(void)
{
	store_conn *db = NULL;
	int rv;

	if ((rv = store_open(cfg.database_url, &db)) < 0)
		return rv;
	/* Ride out a database that is still starting. */
	for (int i = 0; i < 100 && store_ping(db) < 0; i++)
		usleep(100 * 1000);
	rv = store_migrate(db, false);
	if (rv == VG_EUNAVAIL)
		fprintf(stderr, "vgen-server: cannot reach the database "
		    "(VGEN_DATABASE_URL)\n");
	else if (rv < 0)
		fprintf(stderr, "vgen-server: migrations failed: %s\n",
		    vg_strerror(rv));
	store_close(db);
	return rv;
}

static char admin_default[4200];

static int
default_admin_listen(void)
{
	char dir[4096];
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (cfg.run_dir != NULL)
		snprintf(dir, sizeof(dir), "%s", cfg.run_dir);
	else if (xdg != NULL && *xdg != '\0')
		snprintf(dir, sizeof(dir), "%s/vgen", xdg);
	else
		snprintf(dir, sizeof(dir), "/tmp/vgen-%u", (unsigned)getuid());
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "vgen-server: cannot create %s: %s\n", dir,
		    strerror(errno));
		return VG_EINVAL;
	}
	snprintf(admin_default, sizeof(admin_default), "ipc://%s/admin.sock",
	    dir);
	cfg.admin_listen = admin_default;
	return 0;
}

int
main(int argc, char **argv)
{
	struct srv s = { 0 };
	char *secret = NULL, **rest;
	size_t secret_len = 0;
	int rv, nrest, sig;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	sigset_t set;

	vg_log_init("server");
	rv = vg_config_load(opts, USAGE, argc, argv, &rest, &nrest);
	if (rv != 0)
		return rv > 0 ? 0 : 2;
	(void)vg_raise_nofile();
	if (nrest > 1 || (nrest == 1 && strcmp(rest[0], "serve") != 0 &&
	    strcmp(rest[0], "migrate") != 0)) {
		fprintf(stderr, "vgen-server: unknown command \"%s\" "
		    "(see --help)\n", rest[0]);
		return 2;
	}
	if (cfg.database_url == NULL) {
		fprintf(stderr, "vgen-server: set VGEN_DATABASE_URL "
		    "(a libpq connection string)\n");
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "vgen-server: libsodium failed to start\n");
		return 1;
	}
	if (nrest == 1 && strcmp(rest[0], "migrate") == 0)
		return migrate() < 0 ? 1 : 0;
	if (srv_tasks_parse(cfg.nng_tasks_spec, &cfg.nng_tasks) < 0) {
		fprintf(stderr, "vgen-server: VGEN_NNG_TASK_THREADS \"%s\" is "
		    "not auto, all or a count from 1 to 4096\n",
		    cfg.nng_tasks_spec);
		return 2;
	}
	if (srv_cpus_plan(cfg.rpc_cpus, &s.cpus) < 0) {
		fprintf(stderr, "vgen-server: VGEN_RPC_CPUS \"%s\" is not "
		    "auto, none or a list of CPUs this process may use\n",
		    cfg.rpc_cpus);
		return 2;
	}

	if (cores < 1)
		cores = 1;
	if (cfg.threads == 0)
		cfg.threads = 4 * cores;
	if (cfg.read_conns == 0)
		cfg.read_conns = cores;
	if (cfg.slow_threads == 0)
		cfg.slow_threads = cores / 2 > 0 ? cores / 2 : 1;
	if (cfg.admin_listen == NULL && default_admin_listen() < 0)
		return 2;
	if (load_secret(&secret, &secret_len) < 0)
		return 2;
	rv = srv_auth_new(secret, secret_len, (int)cfg.bcrypt_cost,
	    cfg.token_ttl_s, &s.auth);
	sodium_free(secret);
	if (rv < 0) {
		fprintf(stderr, "vgen-server: cannot set up auth: %s\n",
		    vg_strerror(rv));
		return 2;
	}
	if (migrate() < 0)
		return 1;

	/* Before any thread exists: they all inherit it (listen.c). */
	if (cfg.sched_batch == 2 && vg_sched_swap(SCHED_BATCH) < 0)
		vg_warn("cannot use SCHED_BATCH: %s", strerror(errno));
	/* Every thread inherits this mask; only sigwait below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	s.cfg = cfg;
	s.rpc_table = srv_table_new(rpc_services);
	s.admin_table = srv_table_new(admin_services);
	if (s.rpc_table == NULL || s.admin_table == NULL)
		rv = VG_ENOMEM;
	else
		rv = srv_start(&s);
	if (rv < 0) {
		fprintf(stderr, "vgen-server: cannot start: %s\n",
		    vg_strerror(rv));
		srv_stop(&s, 0);
		return 1;
	}
	vg_info("serving rpc=%s admin=%s threads=%ld slow_threads=%ld "
	    "contexts=%ld", cfg.rpc_listen, cfg.admin_listen, cfg.threads,
	    cfg.slow_threads, cfg.contexts);
	sigwait(&set, &sig);
	vg_info("stopping signal=%d", sig);
	srv_stop(&s, 10000);
	srv_table_free(s.rpc_table);
	srv_table_free(s.admin_table);
	srv_auth_free(s.auth);
	vg_info("stopped");
	return 0;
}
