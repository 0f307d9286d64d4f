/*
 * accept_guard.h - what a listener does when accept() fails for lack of
 * resources (out of file descriptors, kernel memory).
 *
 * The failure: a listening socket with pending connections stays readable
 * (level-triggered epoll) while accept() keeps failing with EMFILE, so the
 * loop spins at 100 % CPU and logs one line per attempt, and the pending
 * clients hang until their own timeout.
 *
 * What careful servers do, and what we do:
 *  - libuv (and libev's documentation before it) keeps a reserve descriptor:
 *    on EMFILE/ENFILE close it, accept the pending connections and close them
 *    at once, reopen the reserve. The clients learn at once that they are
 *    refused (EOF or reset) instead of waiting in the backlog for a timeout,
 *    and the backlog no longer keeps the listener readable. We do that, with
 *    one pool of reserves for the whole process (fd_reserve.h: with several
 *    workers, a reserve per worker was lost to a sibling taking the freed
 *    slot, and that worker's backlog was never refused again).
 *  - nginx and HAProxy stop watching the listening sockets and retry after a
 *    delay (nginx: 500 ms, HAProxy: 100 ms), for EMFILE/ENFILE and, in
 *    HAProxy, also ENOBUFS/ENOMEM. We do that too, for ACCEPT_PAUSE_MS: it
 *    bounds the work a storm of connections can cause while nothing can be
 *    admitted, and it is the only remedy for a kernel out of memory (the
 *    reserve trick cannot help there) or when the pool is empty (another
 *    thread took a freed slot; every tick refills the pool).
 *  - One log line per ACCEPT_LOG_EVERY_MS at most, with the counts since the
 *    previous line (HAProxy rate-limits the same warning); the counters are
 *    exported (hamqtt_listener_accept_errors_total and
 *    hamqtt_listener_connections_refused_total in /metrics).
 * Connections already accepted are not touched: they keep being served.
 *
 * Threading: a guard belongs to one event loop thread (a worker or the
 * cluster thread), which calls every function here; the counters are atomics
 * that other threads may read (accept_guard_counts_add).
 */
#ifndef HQ_NET_ACCEPT_GUARD_H
#define HQ_NET_ACCEPT_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define ACCEPT_PAUSE_MS 250
#define ACCEPT_LOG_EVERY_MS 10000
#define ACCEPT_REFUSE_BATCH 64    /* pending connections refused per failure */

/* Reasons, in the order of accept_err_name (the metric's reason label). */
enum accept_err {
	ACCEPT_ERR_EMFILE = 0,    /* process out of descriptors */
	ACCEPT_ERR_ENFILE,        /* system out of descriptors */
	ACCEPT_ERR_ENOBUFS,       /* kernel out of socket memory */
	ACCEPT_ERR_ENOMEM,
	ACCEPT_ERR_OTHER,         /* anything else that is not about one connection */
	ACCEPT_ERR_N
};
const char *accept_err_name(int reason);

struct accept_counts {
	uint64_t errors[ACCEPT_ERR_N]; /* failed accept() calls */
	uint64_t refused;              /* connections accepted only to be closed at once */
};

struct accept_guard {
	const char *what;          /* listener kind for the log ("MQTT", "cluster") */
	bool wants_reserve;        /* counted in the shared pool (fd_reserve.h) */
	bool paused;
	int64_t resume_at;         /* monotonic ms, while paused */
	int64_t last_log_ms;       /* 0: nothing logged yet */
	uint64_t unlogged_errors, unlogged_refused; /* since the last log line */
	uint64_t unlogged_no_reserve; /* refusals that found the pool empty */
	int last_errno;
	_Atomic uint64_t errors[ACCEPT_ERR_N];
	_Atomic uint64_t refused;
};

/* Add one reserve descriptor to the process's pool (fd_reserve.h); failing
 * to open it is not fatal: the ticks retry, and the pause remains. */
void accept_guard_init(struct accept_guard *g, const char *what);
void accept_guard_free(struct accept_guard *g);

/*
 * Decide what an accept() failure with errno err on listening socket lfd
 * means. Returns ACCEPT_NEXT: a failure of that one connection (try the
 * next), ACCEPT_DONE: nothing pending (EAGAIN), or ACCEPT_PAUSE: the owner
 * must stop watching its listening sockets until accept_guard_tick says so
 * (pending connections were refused first when descriptors ran out).
 */
enum accept_verdict { ACCEPT_NEXT, ACCEPT_DONE, ACCEPT_PAUSE };
enum accept_verdict accept_guard_failed(struct accept_guard *g, int lfd, int err, int64_t now_ms);

/* From the owner's periodic timer: true when a pause ended and the owner must
 * watch its listening sockets again. Also writes the pending log line. */
bool accept_guard_tick(struct accept_guard *g, int64_t now_ms);

/* Add g's counters into *sum (any thread). */
void accept_guard_counts_add(const struct accept_guard *g, struct accept_counts *sum);

#endif
