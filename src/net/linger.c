/* linger.c - lingering close (see linger.h). */
#include "net/linger.h"
#include "core/err.h"
#include "core/mem.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utlist.h>

struct lingerer {
	struct ev_io io;
	struct linger_set *set;
	struct buf out;           /* our last bytes the kernel has not taken yet (owned) */
	int64_t deadline;         /* monotonic ms */
	uint32_t drained;         /* input bytes read and discarded */
	bool wr_shut;             /* FIN queued: everything of ours is with the kernel */
	bool eof;                 /* the peer closed its side: stop reading */
	struct lingerer *prev, *next; /* set->live (utlist DL), or set->dead via next */
};

struct linger_set {
	struct ev_loop *loop;
	/* every entry lingers for the same LINGER_MS, so adding at the tail
	 * keeps the list in deadline order: the tick looks only at the head */
	struct lingerer *live;
	struct lingerer *dead;    /* closed this turn, freed by linger_reap */
	uint32_t n, max;
};

struct linger_set *linger_set_new(struct ev_loop *loop, uint32_t max)
{
	struct linger_set *s = hq_calloc(1, sizeof(*s));
	s->loop = loop;
	s->max = max;
	return s;
}

static void finish(struct lingerer *l)
{
	struct linger_set *s = l->set;
	ev_io_stop(s->loop, &l->io);
	close(l->io.fd);
	l->io.fd = -1;
	buf_free(&l->out);
	DL_DELETE(s->live, l);
	s->n--;
	l->next = s->dead;
	s->dead = l;
}

/* Hand our remaining output to the kernel, then queue the FIN. Returns
 * false when the socket failed (the peer is gone). */
static bool flush_out(struct lingerer *l)
{
	while (buf_avail(&l->out)) {
		ssize_t n = send(l->io.fd, buf_head(&l->out), buf_avail(&l->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&l->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true; /* EPOLLOUT brings us back */
		return false;
	}
	buf_free(&l->out);
	shutdown(l->io.fd, SHUT_WR);
	l->wr_shut = true;
	return true;
}

static unsigned wanted(const struct lingerer *l)
{
	return (l->eof ? 0 : EV_READ) | (l->wr_shut ? 0 : EV_WRITE);
}

static void io_cb(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
	struct lingerer *l = io->arg;
	if ((events & EV_WRITE) && !l->wr_shut && !flush_out(l)) {
		finish(l);
		return;
	}
	while ((events & EV_READ) && !l->eof) {
		uint8_t sink[16384];
		ssize_t n = recv(io->fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0) {
			l->drained += (uint32_t)n;
			if (l->drained >= LINGER_DRAIN_MAX) {
				finish(l); /* enough: the peer is not going to stop */
				return;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0 || l->wr_shut) {
			finish(l); /* reset, or EOF after all of ours went out */
			return;
		}
		l->eof = true; /* EOF, our last bytes still to send: keep writing */
	}
	if ((events & EV_ERROR) && l->eof) {
		finish(l); /* hangup with nothing left to read: would repeat forever */
		return;
	}
	if (!wanted(l) || ev_io_set(loop, io, wanted(l)) != HQ_OK)
		finish(l);
}

void linger_add(struct linger_set *s, int fd, struct buf *out, int64_t now_ms)
{
	if (!s || s->n >= s->max) {
		close(fd);
		return;
	}
	struct lingerer *l = hq_calloc(1, sizeof(*l));
	l->set = s;
	l->deadline = now_ms + LINGER_MS;
	ev_io_init(&l->io, fd, io_cb, l);
	if (out && buf_avail(out) <= LINGER_OUT_MAX) {
		l->out = *out; /* the storage moves, nothing is copied */
		*out = (struct buf){ 0 };
	}
	DL_APPEND(s->live, l);
	s->n++;
	if (!flush_out(l) || ev_io_set(s->loop, &l->io, wanted(l)) != HQ_OK)
		finish(l);
}

void linger_tick(struct linger_set *s, int64_t now_ms)
{
	while (s->live && s->live->deadline <= now_ms)
		finish(s->live);
}

void linger_close_all(struct linger_set *s)
{
	while (s->live)
		finish(s->live);
}

void linger_reap(struct linger_set *s)
{
	while (s->dead) {
		struct lingerer *l = s->dead;
		s->dead = l->next;
		hq_free(l);
	}
}

uint32_t linger_count(const struct linger_set *s)
{
	return s->n;
}

void linger_set_free(struct linger_set *s)
{
	if (!s)
		return;
	linger_close_all(s);
	linger_reap(s);
	hq_free(s);
}
