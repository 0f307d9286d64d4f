/*
 * fd_reserve.h - the process's reserve descriptors, one pool shared by every
 * accept guard (accept_guard.h explains the reserve trick).
 *
 * Why one pool and not one reserve per guard: the trick frees a descriptor
 * slot for a moment (close the reserve, accept into the slot). With several
 * workers a sibling's accept() or reserve reopen could take the slot in
 * between, and a guard whose reopen then failed had no reserve for good: its
 * listener's backlog was never refused again and those clients hung (each
 * worker has its own SO_REUSEPORT listener, so no one else takes them).
 * Here:
 *  - any guard uses any reserve in the pool, so a lost reserve costs the pool
 *    one descriptor, not one listener its only remedy;
 *  - one thread refuses at a time (a trylock: a worker never waits; a busy
 *    pool means "try again after the pause"), so siblings' refusals never
 *    race each other for the freed slot;
 *  - with two reserves held, an accepted connection is closed by dup3()ing a
 *    reserve over it: the slot becomes the reserve again without ever being
 *    free. Only the instant between close(reserve) and accept() is open;
 *  - every owner's tick tops the pool up again once descriptors are free.
 * What is left: another thread's ordinary accept()/open() can still take the
 * slot in that instant. Then the pool is one short until a descriptor is
 * freed; while it is empty the listeners stay paused and retry every pause
 * (the clients wait, as they would without the trick).
 *
 * Threading: every function may be called from any thread; none blocks
 * except fd_reserve_want/unwant (start and stop only).
 */
#ifndef HQ_NET_FD_RESERVE_H
#define HQ_NET_FD_RESERVE_H

#include <stdint.h>

#define FD_RESERVE_MAX 64   /* descriptors the pool can hold */

/* Raise (want) or lower (unwant) the number of reserves the pool keeps by n
 * and open or close descriptors to match (opening may fall short: refill
 * retries). */
void fd_reserve_want(int n);
void fd_reserve_unwant(int n);

/* Reopen missing reserves, if descriptors are free. Never blocks. */
void fd_reserve_refill(void);

enum fd_refuse {
	FD_REFUSE_DRAINED,     /* nothing left pending on the listener */
	FD_REFUSE_PARTIAL,     /* max reached, or stopped early: some may be left */
	FD_REFUSE_BUSY,        /* another thread is refusing now: retry later */
	FD_REFUSE_NO_RESERVE,  /* the pool is empty: retry later */
};

/* Accept up to max pending connections on listening socket lfd (non-blocking)
 * and close them at once, using a reserve's slot; *refused += how many. */
enum fd_refuse fd_reserve_refuse(int lfd, int max, uint64_t *refused);

/* Reserves held now (tests, diagnostics). */
int fd_reserve_held(void);

#endif
