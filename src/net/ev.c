/*
 * ev.c - epoll event loop (see ev.h).
 *
 * Invariants: only the loop's own thread touches it, except ev_wakeup/ev_stop
 * which write to the eventfd / an atomic. Timers are few (a handful per loop)
 * and kept in a small array scanned each turn.
 */
#include "net/ev.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EV_MAX_EVENTS 256
#define EV_MAX_TIMERS 8

struct ev_timer {
	int interval_ms;
	int64_t next_ms;
	ev_hook_cb cb;
	void *arg;
};

struct ev_loop {
	int epfd;
	int wakefd;
	struct ev_io wake_io;
	atomic_bool stop;
	int64_t now_ms;
	struct ev_timer timers[EV_MAX_TIMERS];
	int n_timers;
	ev_hook_cb before_sleep;
	void *before_sleep_arg;
	ev_hook_cb on_wakeup;
	void *on_wakeup_arg;
	ev_hook_cb after_wait;
	void *after_wait_arg;
	ev_hook_cb mid_batch;
	void *mid_batch_arg;
	int mid_every;
	struct epoll_event events[EV_MAX_EVENTS];
};

static void wake_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	uint64_t v;
	/* drain: a nonblocking eventfd read resets the counter */
	while (read(io->fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	if (l->on_wakeup)
		l->on_wakeup(l, l->on_wakeup_arg);
}

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *l = hq_calloc(1, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->wakefd < 0)
		goto fail;
	ev_io_init(&l->wake_io, l->wakefd, wake_cb, l);
	if (ev_io_set(l, &l->wake_io, EV_READ) != HQ_OK)
		goto fail;
	l->now_ms = clock_mono_ms();
	return l;
fail:
	ev_loop_free(l);
	return NULL;
}

void ev_loop_free(struct ev_loop *l)
{
	if (!l)
		return;
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	hq_free(l);
}

void ev_io_init(struct ev_io *io, int fd, ev_io_cb cb, void *arg)
{
	io->fd = fd;
	io->events = 0;
	io->cb = cb;
	io->arg = arg;
	io->active = false;
}

int ev_io_set(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct epoll_event ee = { 0 };
	if (io->active && io->events == events)
		return HQ_OK;
	if (events & EV_READ)
		ee.events |= EPOLLIN | EPOLLRDHUP;
	if (events & EV_WRITE)
		ee.events |= EPOLLOUT;
	ee.data.ptr = io;
	if (epoll_ctl(l->epfd, io->active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd, &ee) < 0)
		return HQ_EIO;
	io->active = true;
	io->events = events;
	return HQ_OK;
}

int ev_io_stop(struct ev_loop *l, struct ev_io *io)
{
	if (!io->active)
		return HQ_OK;
	io->active = false;
	io->events = 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL) < 0)
		return HQ_EIO;
	return HQ_OK;
}

int ev_timer_every(struct ev_loop *l, int interval_ms, ev_hook_cb cb, void *arg)
{
	if (l->n_timers == EV_MAX_TIMERS || interval_ms <= 0)
		return HQ_EINVAL;
	struct ev_timer *t = &l->timers[l->n_timers++];
	t->interval_ms = interval_ms;
	t->next_ms = clock_mono_ms() + interval_ms;
	t->cb = cb;
	t->arg = arg;
	return HQ_OK;
}

void ev_set_before_sleep(struct ev_loop *l, ev_hook_cb cb, void *arg)
{
	l->before_sleep = cb;
	l->before_sleep_arg = arg;
}

void ev_set_after_wait(struct ev_loop *l, ev_hook_cb cb, void *arg)
{
	l->after_wait = cb;
	l->after_wait_arg = arg;
}

void ev_set_mid_batch(struct ev_loop *l, int every, ev_hook_cb cb, void *arg)
{
	l->mid_every = every;
	l->mid_batch = cb;
	l->mid_batch_arg = arg;
}

void ev_set_wakeup(struct ev_loop *l, ev_hook_cb cb, void *arg)
{
	l->on_wakeup = cb;
	l->on_wakeup_arg = arg;
}

void ev_wakeup(struct ev_loop *l)
{
	uint64_t one = 1;
	ssize_t r;
	do {
		r = write(l->wakefd, &one, sizeof(one));
	} while (r < 0 && errno == EINTR);
	/* EAGAIN means the counter is already non-zero: a wakeup is pending */
}

void ev_stop(struct ev_loop *l)
{
	atomic_store(&l->stop, true);
	ev_wakeup(l);
}

int64_t ev_now_ms(const struct ev_loop *l)
{
	return l->now_ms;
}

static int next_timeout(struct ev_loop *l)
{
	int timeout = -1;
	for (int i = 0; i < l->n_timers; i++) {
		int64_t d = l->timers[i].next_ms - l->now_ms;
		if (d < 0)
			d = 0;
		if (timeout < 0 || d < timeout)
			timeout = (int)d;
	}
	return timeout;
}

static void run_timers(struct ev_loop *l)
{
	for (int i = 0; i < l->n_timers; i++) {
		struct ev_timer *t = &l->timers[i];
		if (l->now_ms >= t->next_ms) {
			t->next_ms = l->now_ms + t->interval_ms;
			t->cb(l, t->arg);
		}
	}
}

int ev_run(struct ev_loop *l)
{
	while (!atomic_load(&l->stop)) {
		if (l->before_sleep)
			l->before_sleep(l, l->before_sleep_arg);
		if (atomic_load(&l->stop))
			break;
		int n = epoll_wait(l->epfd, l->events, EV_MAX_EVENTS, next_timeout(l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return HQ_EIO;
		}
		l->now_ms = clock_mono_ms();
		if (l->after_wait)
			l->after_wait(l, l->after_wait_arg);
		for (int i = 0; i < n; i++) {
			struct ev_io *io = l->events[i].data.ptr;
			uint32_t e = l->events[i].events;
			unsigned ev = 0;
			if (e & (EPOLLIN | EPOLLRDHUP))
				ev |= EV_READ;
			if (e & EPOLLOUT)
				ev |= EV_WRITE;
			if (e & (EPOLLERR | EPOLLHUP))
				ev |= EV_ERROR | EV_READ;
			/* an io stopped earlier in this batch is skipped: its owner
			 * stays allocated until before_sleep, so this read is safe */
			if (io->active)
				io->cb(l, io, ev);
			if (l->mid_batch && (i + 1) % l->mid_every == 0 && i + 1 < n)
				l->mid_batch(l, l->mid_batch_arg);
		}
		run_timers(l);
	}
	if (l->before_sleep)
		l->before_sleep(l, l->before_sleep_arg);
	return HQ_OK;
}
