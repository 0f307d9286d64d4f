/*
 * ev.h - the event loop: one per worker thread, epoll based (Redis ae style).
 *
 * A loop waits for readiness on registered fds (struct ev_io embedded in the
 * owner's object), runs periodic timers, and calls a before-sleep hook once per
 * turn: that is where owners flush buffered writes and free objects closed
 * during the turn (so an ev_io is never freed while its event may still be
 * dispatched). ev_wakeup() is the only function safe to call from another thread.
 */
#ifndef HQ_NET_EV_H
#define HQ_NET_EV_H

#include <stdbool.h>
#include <stdint.h>

#define EV_READ 0x1u
#define EV_WRITE 0x2u
#define EV_ERROR 0x4u     /* hangup or error, reported with the others */

struct ev_loop;
struct ev_io;

typedef void (*ev_io_cb)(struct ev_loop *l, struct ev_io *io, unsigned events);
typedef void (*ev_hook_cb)(struct ev_loop *l, void *arg);

/* Embedded in the owner's object; the owner keeps it alive until ev_io_stop
 * returned and the current turn ended. */
struct ev_io {
	int fd;
	unsigned events;   /* EV_READ|EV_WRITE currently registered */
	ev_io_cb cb;
	void *arg;         /* owner */
	bool active;
};

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *l);

void ev_io_init(struct ev_io *io, int fd, ev_io_cb cb, void *arg);
/* Register or change interest; events 0 keeps it registered but silent. */
int ev_io_set(struct ev_loop *l, struct ev_io *io, unsigned events);
int ev_io_stop(struct ev_loop *l, struct ev_io *io);

/* A periodic timer every interval_ms; returns HQ_OK or HQ_ENOMEM. */
int ev_timer_every(struct ev_loop *l, int interval_ms, ev_hook_cb cb, void *arg);
/* Called once per loop turn after events were dispatched, before waiting. */
void ev_set_before_sleep(struct ev_loop *l, ev_hook_cb cb, void *arg);
/* Called each time the wait returns, before any event is dispatched. */
void ev_set_after_wait(struct ev_loop *l, ev_hook_cb cb, void *arg);
/* Called after every `every` events inside one large batch, so output that
 * waits for the end of the turn is not held back by a long batch. */
void ev_set_mid_batch(struct ev_loop *l, int every, ev_hook_cb cb, void *arg);
/* Called in the loop thread after ev_wakeup() from any thread. */
void ev_set_wakeup(struct ev_loop *l, ev_hook_cb cb, void *arg);
void ev_wakeup(struct ev_loop *l);            /* thread safe, async-signal safe */

/* Run until ev_stop(); returns HQ_OK or HQ_EIO. */
int ev_run(struct ev_loop *l);
void ev_stop(struct ev_loop *l);              /* thread safe */
int64_t ev_now_ms(const struct ev_loop *l);   /* monotonic time cached per turn */

#endif
