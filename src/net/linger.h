/*
 * linger.h - lingering close: end a TCP connection so that the peer can read
 * the last bytes we sent (an MQTT DISCONNECT with its reason code, a refusing
 * CONNACK) even while it is still writing to us.
 *
 * Why: close() on a socket with unread input makes the kernel answer with RST
 * at once (RFC 1122 4.2.2.13), and a RST discards whatever of our output the
 * peer has not received yet, so the reason code is lost exactly when it
 * matters (the peer misbehaves and keeps sending). Careful servers (Apache's
 * lingering_close, nginx's lingering_close, HAProxy) do instead: hand the last
 * bytes to the kernel, shutdown(SHUT_WR) (FIN after them), then read and
 * discard the peer's input for a bounded time and amount, and only then
 * close. A peer that reads sees our last packet, then EOF.
 *
 * Bounds (per lingering socket): LINGER_MS of time, LINGER_DRAIN_MAX bytes of
 * input read and thrown away (nothing is buffered), at most LINGER_OUT_MAX
 * bytes of our own output still to send (moved from the closing connection,
 * never copied); and at most `max` lingering sockets per set, beyond which a
 * close is immediate (the old behaviour). EOF or an error from the peer ends
 * it early. A lingering socket holds an fd and ~100 bytes: no session, no
 * connection slot.
 *
 * Threading: a set belongs to one event loop; only that loop's thread calls
 * these functions.
 */
#ifndef HQ_NET_LINGER_H
#define HQ_NET_LINGER_H

#include <stdint.h>

#include "core/buf.h"
#include "net/ev.h"

#define LINGER_MS 2000
#define LINGER_DRAIN_MAX (64 * 1024)
#define LINGER_OUT_MAX (16 * 1024)

struct linger_set;

struct linger_set *linger_set_new(struct ev_loop *loop, uint32_t max);
/* Close every lingering socket now and free the set (NULL is fine). */
void linger_set_free(struct linger_set *s);

/*
 * Take over fd (not registered with the loop any more) for a lingering close.
 * out: our unsent output; when it holds at most LINGER_OUT_MAX bytes its
 * storage moves into the set (*out is left empty) and is sent before the
 * FIN, else it is dropped. Never fails: when the set is full (or out of
 * resources) fd is closed at once. The caller must not touch fd again.
 */
void linger_add(struct linger_set *s, int fd, struct buf *out, int64_t now_ms);

/* Close the sockets whose time is up (call from a periodic timer). */
void linger_tick(struct linger_set *s, int64_t now_ms);
/* Close them all now: descriptors are short (EMFILE) and these are optional. */
void linger_close_all(struct linger_set *s);
/* Free what was closed during this loop turn (call from before-sleep: an
 * event for a socket closed earlier in the same batch may still be pending). */
void linger_reap(struct linger_set *s);

uint32_t linger_count(const struct linger_set *s);

#endif
