/*
 * common/vg_nng.h: what every nng user in vgen needs around nng 1.5.2's
 * known faults.
 */
#ifndef VG_NNG_H
#define VG_NNG_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>

#include "vg.h"

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

/*
 * nng 1.5.2 runs every aio callback on one task queue whose size, 2 x
 * cores threads, is fixed when nng starts (later nngs take
 * NNG_INIT_NUM_TASK_THREADS).  Each dispatch wakes a sleeping one:
 * more threads than CPUs add context switches and lock hand-offs, and
 * fewer make every callback wait for any that blocks.
 *
 * vg_nng_tasks_keep starts nng (its threads inherit the calling
 * thread's CPU mask and policy) and leaves at most `keep` task threads
 * taking work: it occupies each of the others with a callback that
 * blocks until vg_nng_hold_free.  Call it before any other nng call:
 * threads that nng started a moment before may not be counted yet.
 * *nthreads gets the number of task threads nng has; *out the hold,
 * NULL when nothing is held (keep 0, or nng has no more than `keep`).
 * No callback may then wait for another callback to run (nng_aio_wait,
 * nng_aio_stop or nng_aio_free on an aio that has one): with one thread
 * left, that callback's task is queued behind the waiter for ever.  0;
 * VG_ENOMEM; VG_EINTERNAL when nng's threads could not be told apart or
 * held (then nothing is held and nng keeps all its threads).
 */
struct vg_nng_hold;
int vg_nng_tasks_keep(size_t keep, size_t *nthreads,
    struct vg_nng_hold **out) VG_MUSTCHECK;

/*
 * vg_nng_hold_new holds n more task threads of a running nng the same
 * way (n 0: *out NULL), waiting up to 2 s for its callbacks to start;
 * call it from a thread of one's own, never from a callback.  0,
 * VG_ENOMEM, or VG_EINTERNAL (then nothing is held).
 */
int vg_nng_hold_new(size_t n, struct vg_nng_hold **out) VG_MUSTCHECK;

/* Lets the held task threads go and frees `h` (NULL is ignored). */
void vg_nng_hold_free(struct vg_nng_hold *h);

#endif /* VG_NNG_H */
