/*
 * common/vg_nng.h: what every nng user in vgen needs around nng 1.5.2's
 * known faults.
 */
#ifndef VG_NNG_H
#define VG_NNG_H

#include <stdbool.h>

#include <nng/nng.h>

/*
 * nng 1.5.2's nng_close can wait forever on its reaper thread after
 * connections came and went (nng issues 1543, 1813; seen here about once
 * in a few hundred closes right after a peer dropped a connection, on a
 * loaded machine).  vg_nng_close closes `s` on a thread of its own and
 * waits at most `deadline_ms`; false when nng did not return by then:
 * the socket is left behind, and so must be everything its callbacks
 * use.  Once that happened, every later close in the process would wait
 * for the same reaper, so those wait 100 ms at most.
 */
bool vg_nng_close(nng_socket s, int deadline_ms);

/*
 * vg_nng_leave keeps `p` (memory a socket's callbacks use, left behind
 * because vg_nng_close returned false) on a list for the rest of the
 * process: nng's threads may still touch it, so it is not freed, and it
 * stays reachable, so a leak checker does not take it for a leak.  The
 * list's nodes are never freed either.  NULL is ignored.
 */
void vg_nng_leave(void *p);

#endif /* VG_NNG_H */
