/*
 * brk_bridge.c - the broker's side of an MQTT bridge (src/bridge/, issue 12):
 * the bridge's local client connection, handed over as one end of a
 * socketpair.
 *
 * Why a connection and not an API: the bridge is then an ordinary MQTT
 * client of this node, so its persistent session, queue, store, QoS, order,
 * no-local and the cluster's takeover all come from the broker's own
 * machinery. What differs is trust: the connection is of no listener (not
 * counted against listener limits, no transport), is not authenticated and
 * has no ACL (connect_auth), and its session's queue is bounded by the
 * bridge's max_buffered instead of mqtt.max_queued_messages (s->qmax).
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct conn *conn_new_internal(struct worker *w, int fd, const char *label, uint32_t qmax)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	struct conn *c = hq_calloc(1, sizeof(*c));
	ev_io_init(&c->io, fd, conn_io_cb, c);
	snprintf(c->addr, sizeof(c->addr), "%s", label);
	c->connected_ms = c->last_rx_ms = ev_now_ms(w->loop);
	c->state = CS_NEW;
	c->internal = true;
	c->int_qmax = qmax;
	c->lidx = 0; /* its bytes are counted with the first listener's */
	c->ltype = (uint8_t)b->cfg->listeners[0].type;
	wk_conn_add(w, c);
	atomic_fetch_add(&b->conns_now, 1);
	if (ev_io_set(w->loop, &c->io, EV_READ) != HQ_OK) {
		log_warning("cannot watch the bridge connection %s: %s", label, strerror(errno));
		conn_close(c, -1, "epoll failed");
		return NULL;
	}
	log_debug("bridge connection %s attached", label);
	return c;
}

struct attach_job {
	int fd;
	const char *label;
	uint32_t qmax;
	bool done;
};

static void attach_on_worker(struct worker *w, void *arg)
{
	struct attach_job *j = arg;
	j->done = true;
	conn_new_internal(w, j->fd, j->label, j->qmax);
}

int broker_bridge_attach(struct broker *b, int fd, const char *label, uint32_t max_queued)
{
	int fl = fcntl(fd, F_GETFL);
	if (b->n_workers <= 0 || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return HQ_EIO;
	}
	/* a bridge's traffic is light: the first worker takes every one */
	struct attach_job j = { .fd = fd, .label = label, .qmax = max_queued };
	int rc = brk_call_one(b, &b->workers[0], attach_on_worker, &j);
	if (rc != HQ_OK || !j.done) { /* not run: the fd is still ours */
		close(fd);
		return rc != HQ_OK ? rc : HQ_ECLOSED;
	}
	return HQ_OK; /* the connection owns fd now (closed with it) */
}
