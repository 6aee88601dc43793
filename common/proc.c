/*
 * common/proc.c: process set-up shared by the daemons, and the child
 * processes the tests and benchmarks start.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vg.h"

/*
 * A worker holds a socket per stream and a server one per client
 * connection: 1024, the usual soft limit, is too few for either, so the
 * soft limit goes up to the hard one.
 */
long
vg_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
}

int
vg_sched_swap(int policy)
{
	struct sched_param sp = { .sched_priority = 0 };
	int old = sched_getscheduler(0);

	if (old < 0 || sched_setscheduler(0, policy, &sp) != 0)
		return -1;
	return old;
}

/* struct sched_attr up to SCHED_ATTR_SIZE_VER0: glibc 2.36 has neither
 * it nor a sched_setattr wrapper. */
struct sched_attr0 {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
};

int
vg_sched_slice_get(pid_t tid, uint64_t *ns)
{
	struct sched_attr0 a = { 0 };

	if (syscall(SYS_sched_getattr, tid, &a, sizeof(a), 0) != 0)
		return -1;
	*ns = a.runtime;
	return 0;
}

int
vg_sched_slice_set(uint64_t ns)
{
	struct sched_attr0 a = { 0 };

	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0)
		return -1;
	a.size = sizeof(a);
	a.flags = 0;
	a.runtime = ns;
	return syscall(SYS_sched_setattr, 0, &a, 0) != 0 ? -1 : 0;
}

int
vg_cpus_parse(const char *list, const cpu_set_t *allowed, cpu_set_t *out)
{
	const char *p = list;

	CPU_ZERO(out);
	for (;;) {
		char *end;
		long lo, hi;

		if (*p < '0' || *p > '9')
			return VG_EINVAL;
		lo = hi = strtol(p, &end, 10);
		if (*end == '-') {
			p = end + 1;
			if (*p < '0' || *p > '9')
				return VG_EINVAL;
			hi = strtol(p, &end, 10);
		}
		if (lo > hi || hi >= CPU_SETSIZE)
			return VG_EINVAL;
		for (long c = lo; c <= hi; c++) {
			if (!CPU_ISSET((int)c, allowed))
				return VG_EINVAL;
			CPU_SET((int)c, out);
		}
		if (*end == '\0')
			return 0;
		if (*end != ',')
			return VG_EINVAL;
		p = end + 1;
	}
}

pid_t
vg_spawn(const char *bin, char *const *argv, char *const *envp,
    const char *log)
{
	pid_t parent = getpid(), pid;
	sigset_t none;
	int fd, err;

	fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls here: nng has threads. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
		    getppid() != parent)
			_exit(126);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(STDIN_FILENO);
		if (open("/dev/null", O_RDONLY) != STDIN_FILENO)
			_exit(126);
		close_range(3, ~0U, 0);	/* no fd of the parent leaks in */
		if (envp != NULL)
			execve(bin, argv, envp);
		else
			execv(bin, argv);
		_exit(127);
	}
	err = errno;
	close(fd);
	errno = err;
	return pid;
}
