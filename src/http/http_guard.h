/*
 * http_guard.h - private to src/http/: keeps the management port answering
 * while someone abuses it. libmicrohttpd's own connection timeout is an idle
 * timeout (one byte every few seconds resets it), so a few hundred
 * connections dripping half a request line used to hold every slot and the
 * health check failed. The guard tracks every connection (MHD's
 * NOTIFY_CONNECTION callback) and
 *   - closes at once a connection from an address that already has
 *     dashboard.listeners.http.max_connections_per_address open;
 *   - closes a connection whose request (headers and body) is not complete
 *     dashboard.listeners.http.request_timeout after it opened or after its
 *     previous response, however slowly it keeps sending;
 *   - counts both for /metrics and logs them as one summary line per 10 s.
 * Closing is shutdown(2) on the socket from the guard's own thread, under the
 * guard's lock; MHD's CLOSED notification removes the record under the same
 * lock before MHD closes the descriptor, so a descriptor is never shut down
 * after it was reused.
 *
 * Threads: the callbacks run on MHD's threads, the deadline scan on the
 * guard's thread (one wake-up every 500 ms); one mutex guards everything.
 */
#ifndef HQ_HTTP_GUARD_H
#define HQ_HTTP_GUARD_H

#include <microhttpd.h>
#include <stdint.h>

struct http_guard;

struct http_guard_stats {
	uint64_t open;                /* connections open now */
	uint64_t refused_per_address; /* closed at once: too many from their address */
	uint64_t request_timeouts;    /* closed: request not complete in time */
};

/* per_addr 0 = no per-address limit. NULL if the thread cannot start. */
struct http_guard *http_guard_new(int per_addr, int timeout_s);
/* Stop the thread and free; call after MHD_stop_daemon (no callbacks left). */
void http_guard_free(struct http_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION callback (cls = the guard). */
void http_guard_on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			      enum MHD_ConnectionNotificationCode code);
/* A request on c is complete and now handled: no deadline while it runs. */
void http_guard_request_complete(struct http_guard *g, struct MHD_Connection *c);
/* c's response went out (or the request was aborted): the next request's
 * deadline starts now. */
void http_guard_response_done(struct http_guard *g, struct MHD_Connection *c);

void http_guard_get_stats(struct http_guard *g, struct http_guard_stats *out);

#endif
