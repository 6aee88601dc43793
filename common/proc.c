/*
 * common/proc.c: process set-up shared by the daemons.
 */
#include <sys/resource.h>

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
