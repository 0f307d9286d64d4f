/*
 * xport.h - a connection's transport layer below MQTT: TLS, WebSocket, or
 * WebSocket over TLS. Plain TCP has none (the broker's NULL test), so the hot
 * path of a TCP connection pays one pointer test and nothing else.
 *
 * A transport behaves like a non-blocking socket: read and write like
 * recv/send (bytes, 0 at the peer's end, -1 with errno EAGAIN when it waits
 * for the socket; wants() then says for which direction, since TLS may need to
 * write while the caller reads). A layer may take bytes from write and still
 * hold some of them (WebSocket framing): pending() says so and flush() pushes
 * them (HQ_OK when nothing is held, HQ_EAGAIN, or HQ_EIO).
 *
 * Layers compose: a WebSocket layer reads and writes through the TLS layer
 * below it (wss) or the socket itself (ws). Each layer is embedded first in
 * its own state (struct tls_conn, struct ws_conn), which owns it; the ops are
 * static tables. A transport is used by one thread at a time.
 */
#ifndef HQ_NET_XPORT_H
#define HQ_NET_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct xport;

struct xport_ops {
	ssize_t (*read)(struct xport *x, void *p, size_t n);
	ssize_t (*write)(struct xport *x, const void *p, size_t n);
	int (*flush)(struct xport *x);
	bool (*pending)(const struct xport *x);
	unsigned (*wants)(const struct xport *x);   /* EV_READ / EV_WRITE after EAGAIN */
	const char *(*error)(const struct xport *x);/* after -1 other than EAGAIN */
	void (*shutdown)(struct xport *x);          /* best effort goodbye, never waits */
};

struct xport {
	const struct xport_ops *ops;
};

static inline ssize_t xp_read(struct xport *x, void *p, size_t n) { return x->ops->read(x, p, n); }
static inline ssize_t xp_write(struct xport *x, const void *p, size_t n) { return x->ops->write(x, p, n); }
static inline int xp_flush(struct xport *x) { return x->ops->flush(x); }
static inline bool xp_pending(const struct xport *x) { return x->ops->pending(x); }
static inline unsigned xp_wants(const struct xport *x) { return x->ops->wants(x); }
static inline const char *xp_error(const struct xport *x) { return x->ops->error(x); }
static inline void xp_shutdown(struct xport *x) { x->ops->shutdown(x); }

#endif
