/* accept_guard.c - accept() failures for lack of resources (see accept_guard.h). */
#include "net/accept_guard.h"
#include "core/log.h"
#include "net/fd_reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const err_names[ACCEPT_ERR_N] = {
	[ACCEPT_ERR_EMFILE] = "emfile",
	[ACCEPT_ERR_ENFILE] = "enfile",
	[ACCEPT_ERR_ENOBUFS] = "enobufs",
	[ACCEPT_ERR_ENOMEM] = "enomem",
	[ACCEPT_ERR_OTHER] = "other",
};

const char *accept_err_name(int reason)
{
	return reason >= 0 && reason < ACCEPT_ERR_N ? err_names[reason] : "other";
}

void accept_guard_init(struct accept_guard *g, const char *what)
{
	memset(g, 0, sizeof(*g));
	g->what = what;
	fd_reserve_want(1); /* each guard adds one descriptor to the shared pool */
	g->wants_reserve = true;
}

void accept_guard_free(struct accept_guard *g)
{
	if (g->wants_reserve)
		fd_reserve_unwant(1);
	g->wants_reserve = false;
}

/* One writer (the owning thread): a relaxed load+store, no locked add. */
static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/*
 * Out of descriptors: lend a reserve's slot from the process's pool and use
 * it to take each pending connection off the backlog and close it. Closing a
 * socket whose client already sent its CONNECT resets it; either way the
 * client knows at once, and the listener stops being readable. When the pool
 * is busy (a sibling is refusing) or empty, the pause retries: nothing here
 * waits.
 */
static void refuse_pending(struct accept_guard *g, int lfd)
{
	uint64_t n = 0;
	enum fd_refuse r = fd_reserve_refuse(lfd, ACCEPT_REFUSE_BATCH, &n);
	if (r == FD_REFUSE_NO_RESERVE)
		g->unlogged_no_reserve++;
	count(&g->refused, n);
	g->unlogged_refused += n;
}

static void log_report(struct accept_guard *g, int64_t now_ms)
{
	char limit[48] = "";
	struct rlimit rl;
	if (g->last_errno == EMFILE && getrlimit(RLIMIT_NOFILE, &rl) == 0)
		snprintf(limit, sizeof(limit), " (limit %llu descriptors)",
			 (unsigned long long)rl.rlim_cur);
	char none[96] = "";
	if (g->unlogged_no_reserve)
		snprintf(none, sizeof(none), ", %llu times no reserve descriptor to refuse with "
			 "(those clients wait)", (unsigned long long)g->unlogged_no_reserve);
	log_warning("%s listener: accept failed: %s%s: %llu failed accepts, %llu connections "
		    "refused since the last report%s; accepting again after %d ms pauses "
		    "(at most one line per %d s)", g->what, strerror(g->last_errno), limit,
		    (unsigned long long)g->unlogged_errors, (unsigned long long)g->unlogged_refused,
		    none, ACCEPT_PAUSE_MS, ACCEPT_LOG_EVERY_MS / 1000);
	g->unlogged_errors = g->unlogged_refused = g->unlogged_no_reserve = 0;
	g->last_log_ms = now_ms;
}

static bool log_due(const struct accept_guard *g, int64_t now_ms)
{
	return g->last_log_ms == 0 || now_ms - g->last_log_ms >= ACCEPT_LOG_EVERY_MS;
}

enum accept_verdict accept_guard_failed(struct accept_guard *g, int lfd, int err, int64_t now_ms)
{
	int reason;
	switch (err) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
		return ACCEPT_DONE;
	/* that one connection failed (accept(2): pending network errors are
	 * passed on; treat like EAGAIN by retrying), or a firewall rule */
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
	case EPERM:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
	case ENONET:
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return ACCEPT_NEXT;
	case EMFILE: reason = ACCEPT_ERR_EMFILE; break;
	case ENFILE: reason = ACCEPT_ERR_ENFILE; break;
	case ENOBUFS: reason = ACCEPT_ERR_ENOBUFS; break;
	case ENOMEM: reason = ACCEPT_ERR_ENOMEM; break;
	/* anything else would fail again at once: pause as well rather than spin */
	default: reason = ACCEPT_ERR_OTHER; break;
	}
	count(&g->errors[reason], 1);
	g->unlogged_errors++;
	g->last_errno = err;
	if (err == EMFILE || err == ENFILE)
		refuse_pending(g, lfd);
	if (log_due(g, now_ms))
		log_report(g, now_ms);
	g->paused = true;
	g->resume_at = now_ms + ACCEPT_PAUSE_MS;
	return ACCEPT_PAUSE;
}

bool accept_guard_tick(struct accept_guard *g, int64_t now_ms)
{
	/* a reserve lost to another thread is regained as soon as a
	 * descriptor is free, paused or not (never blocks) */
	fd_reserve_refill();
	if ((g->unlogged_errors || g->unlogged_refused) && log_due(g, now_ms))
		log_report(g, now_ms);
	if (!g->paused || now_ms < g->resume_at)
		return false;
	g->paused = false;
	return true;
}

void accept_guard_counts_add(const struct accept_guard *g, struct accept_counts *sum)
{
	for (int i = 0; i < ACCEPT_ERR_N; i++)
		sum->errors[i] += atomic_load_explicit(&g->errors[i], memory_order_relaxed);
	sum->refused += atomic_load_explicit(&g->refused, memory_order_relaxed);
}
