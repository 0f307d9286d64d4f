/*
 * brk_conn.c - one client connection: read, frame, write, close.
 *
 * Reads drain the socket into conn->in (bounded by the maximum packet size)
 * and every complete packet is dispatched. Writes only append to conn->out and
 * mark the connection dirty; the worker's before-sleep hook flushes each dirty
 * connection with one write per loop turn (batched writes). A connection whose
 * output exceeds mqtt.max_outbuf counts as not writable: deliveries queue in
 * its session instead (bounded by the queue policy), so a slow reader cannot
 * grow the broker's memory without bound.
 *
 * On ssl, ws and wss listeners c->xp is set and the same paths go through
 * the transport (net/xport.h: TLS, WebSocket, or WebSocket over TLS) instead
 * of recv/send (one NULL test on the TCP path); its handshakes come first
 * (conn_xp_start, brk_ws.c).
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/proxy.h"
#include "net/sock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utlist.h>

#define READ_CHUNK 16384
#define READ_BUDGET (256 * 1024) /* bytes per readiness event, for fairness */

struct conn *conn_new(struct worker *w, int fd, const char *addr, bool expect_proxy,
		      struct tls_srv *tls, int lidx)
{
	WK_ASSERT_OWNER(w);
	struct broker *b = w->b;
	const struct conf_listener *L = &b->cfg->listeners[lidx];
	struct conn *c = hq_calloc(1, sizeof(*c));
	ev_io_init(&c->io, fd, conn_io_cb, c);
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->connected_ms = c->last_rx_ms = ev_now_ms(w->loop);
	c->state = CS_NEW;
	c->expect_proxy = expect_proxy;
	c->lidx = (uint8_t)lidx;
	wk_conn_add(w, c);
	atomic_fetch_add(&b->conns_now, 1);
	c->ltype = (uint8_t)L->type;
	atomic_fetch_add(&b->conns_by_type[L->type], 1);
	/* every listener type comes through here: its limits apply to all */
	if (!ovl_conn_admit(c)) {
		conn_close(c, -1, "refused by overload protection");
		return NULL;
	}
	if (L->type != CONF_LT_TCP && conn_xp_new(c, tls, L) != HQ_OK) {
		conn_close(c, -1, "transport setup failed");
		return NULL;
	}
	if (ev_io_set(w->loop, &c->io, EV_READ) != HQ_OK) {
		log_warning("cannot watch connection from %s: %s", addr, strerror(errno));
		conn_close(c, -1, "epoll failed");
		return NULL;
	}
	log_debug("accepted connection from %s", addr);
	return c;
}

void conn_mark_dirty(struct conn *c)
{
	WK_ASSERT_OWNER(c->w);
	if (c->dirty || c->state == CS_CLOSED)
		return;
	c->dirty = true;
	c->dirty_next = c->w->dirty;
	c->w->dirty = c;
}

static size_t out_pending(const struct conn *c)
{
	return buf_avail(&c->out) + (c->segs ? c->segs->pending : 0);
}

bool conn_writable(const struct conn *c)
{
	return c->state == CS_ACTIVE && !c->closing && out_pending(c) < c->w->b->cfg->max_outbuf;
}

void conn_add_payload_seg(struct conn *c, struct brk_msg *m)
{
	WK_ASSERT_OWNER(c->w);
	if (!c->segs)
		c->segs = hq_calloc(1, sizeof(*c->segs));
	struct conn_segs *sg = c->segs;
	if (sg->n == sg->cap) {
		sg->cap = sg->cap ? sg->cap * 2 : 4;
		sg->v = hq_realloc(sg->v, sg->cap * sizeof(*sg->v));
	}
	sg->v[sg->n++] = (struct out_seg){ .before = buf_avail(&c->out), .msg = msg_ref(m) };
	sg->pending += m->payload_len;
	conn_mark_dirty(c);
}

static void segs_free(struct conn *c)
{
	if (!c->segs)
		return;
	for (uint32_t i = 0; i < c->segs->n; i++)
		msg_unref(c->segs->v[i].msg);
	hq_free(c->segs->v);
	HQ_FREE(c->segs);
}

#define SEG_IOV_MAX 64

/* One writev of c->out interleaved with the payload segments. Returns bytes
 * written or -1 (errno set). */
static ssize_t write_with_segs(struct conn *c)
{
	struct conn_segs *sg = c->segs;
	struct iovec iov[SEG_IOV_MAX];
	int k = 0;
	size_t pos = 0, avail = buf_avail(&c->out);
	const uint8_t *head = buf_head(&c->out);
	uint32_t i;
	for (i = 0; i < sg->n && k < SEG_IOV_MAX - 2; i++) {
		struct out_seg *s = &sg->v[i];
		if (s->before > pos) {
			iov[k++] = (struct iovec){ (void *)(head + pos), s->before - pos };
			pos = s->before;
		}
		iov[k++] = (struct iovec){ s->msg->payload + s->off, s->msg->payload_len - s->off };
	}
	/* c->out's tail only after the last segment, never ahead of one */
	if (i == sg->n && avail > pos)
		iov[k++] = (struct iovec){ (void *)(head + pos), avail - pos };
	ssize_t n;
	if (c->xp) {
		/* no writev under TLS or WebSocket: the first piece only (one
		 * record or frame or more); a retry after EAGAIN starts with the
		 * same bytes, as OpenSSL requires, since nothing was consumed */
		n = xp_write(c->xp, iov[0].iov_base, iov[0].iov_len);
	} else {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)k };
		n = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
	}
	if (n <= 0)
		return n;
	/* consume n bytes in the same order */
	size_t left = (size_t)n, used = 0; /* used: bytes of c->out consumed */
	uint32_t done = 0;
	for (i = 0; i < sg->n && left; i++) {
		struct out_seg *s = &sg->v[i];
		size_t take = s->before - used < left ? s->before - used : left;
		used += take;
		left -= take;
		if (used < s->before)
			break;
		size_t rest = s->msg->payload_len - s->off;
		take = rest < left ? rest : left;
		s->off += (uint32_t)take;
		sg->pending -= take;
		left -= take;
		if (s->off < s->msg->payload_len)
			break;
		done = i + 1;
	}
	used += left; /* whatever is left came from c->out's tail */
	for (i = 0; i < done; i++)
		msg_unref(sg->v[i].msg);
	memmove(sg->v, sg->v + done, (sg->n - done) * sizeof(*sg->v));
	sg->n -= done;
	for (i = 0; i < sg->n; i++)
		sg->v[i].before -= used;
	buf_consume(&c->out, used);
	if (!sg->n)
		segs_free(c);
	return n;
}

/* Write as much of c->out as the socket takes; watch for EPOLLOUT if not all. */
void conn_flush(struct conn *c)
{
	WK_ASSERT_OWNER(c->w);
	struct worker *w = c->w;
	while (out_pending(c)) {
		ssize_t n;
		if (c->segs) {
			n = write_with_segs(c);
		} else {
			n = c->xp ? xp_write(c->xp, buf_head(&c->out), buf_avail(&c->out))
				   : send(c->io.fd, buf_head(&c->out), buf_avail(&c->out), MSG_NOSIGNAL);
			if (n > 0)
				buf_consume(&c->out, (size_t)n);
		}
		if (n > 0) {
			STAT_ADD(w->st.bytes_out[c->lidx], (uint64_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* TLS may wait for input first (then the read event
			 * flushes again, conn_io_cb) */
			unsigned want = c->xp ? xp_wants(c->xp) : EV_WRITE;
			ev_io_set(w->loop, &c->io, (conn_reading(c) ? EV_READ : 0) | want);
			return;
		}
		if (c->xp && n < 0) {
			conn_xp_failed(c);
			return;
		}
		conn_close(c, -1, n < 0 ? strerror(errno) : "send returned 0");
		return;
	}
	/* a transport may hold bytes it took (a WebSocket frame being sent) */
	if (c->xp && xp_pending(c->xp)) {
		int r = xp_flush(c->xp);
		if (r == HQ_EAGAIN) {
			ev_io_set(w->loop, &c->io, (conn_reading(c) ? EV_READ : 0) | xp_wants(c->xp));
			return;
		}
		if (r != HQ_OK) {
			conn_xp_failed(c);
			return;
		}
	}
	/* nothing is kept between bursts except mid-sized buffers of busy
	 * connections (the tick frees those when idle): small ones are cheap to
	 * get again, and an idle connection then costs no output buffer */
	if (c->out.cap <= 4096 || c->out.cap > 65536)
		buf_free(&c->out);
	if (c->io.active && (c->io.events & EV_WRITE))
		ev_io_set(w->loop, &c->io, conn_reading(c) ? EV_READ : 0);
	/* room again: move queued deliveries into the window */
	if (c->sess && c->state == CS_ACTIVE && (c->sess->queue.len || c->sess->retained_out))
		sess_pump(c->sess);
}

/*
 * The PROXY protocol header a load balancer sends first (listener option
 * proxy_protocol): from then on the client's real address is the one logged
 * and limited. A connection without a valid header is refused. Returns the
 * header length, HQ_EAGAIN, or another error after closing the connection.
 */
int conn_proxy_header(struct conn *c, const uint8_t *p, size_t n)
{
	struct proxy_hdr h;
	int r = proxy_parse(p, n, &h);
	if (r == HQ_EAGAIN)
		return r;
	if (r < 0) {
		log_warning("connection from %s refused: no valid PROXY protocol header", c->addr);
		conn_close(c, -1, "no valid PROXY protocol header");
		return r;
	}
	c->expect_proxy = false;
	if (h.family != AF_UNSPEC) {
		char real[64];
		sock_addr_str((const struct sockaddr *)&h.src, real, sizeof(real));
		log_debug("connection from %s is %s (PROXY protocol)", c->addr, real);
		snprintf(c->addr, sizeof(c->addr), "%s", real);
	}
	if (!ovl_proxy_admit(c)) {
		conn_close(c, -1, "refused by overload protection");
		return HQ_ELIMIT;
	}
	return r;
}

/*
 * Dispatch every complete packet in p[0..n). Returns the bytes consumed; stops
 * early when the connection closes (then the return value is meaningless),
 * pauses (hand-off) or is throttled. *need gets the size of an incomplete
 * packet at the end, so the caller can make room for it at once.
 */
static size_t dispatch_bytes(struct conn *c, const uint8_t *p, size_t n, size_t *need)
{
	struct broker *b = c->w->b;
	size_t off = 0;
	*need = 0;
	while (conn_reading(c) && off < n) {
		size_t hdr;
		uint32_t rem;
		if (c->expect_proxy) {
			int r = conn_proxy_header(c, p + off, n - off);
			if (r == HQ_EAGAIN)
				break;
			if (r < 0)
				return off;
			off += (size_t)r;
			continue;
		}
		if (c->state == CS_NEW && !c->eauth && p[off] != (MQTT_CONNECT << 4)) {
			/* [MQTT-3.1.0-1] decided on the first byte, so that e.g. an
			 * HTTP request is refused at once, not after the timeout */
			conn_close(c, -1, "first packet is not CONNECT");
			return off;
		}
		int rc = mqtt_frame(p + off, n - off, b->cfg->max_packet_size, &hdr, &rem);
		if (rc == HQ_EAGAIN)
			break;
		if (rc != HQ_OK) {
			const char *why = rc == HQ_ETOOLARGE ? "packet exceeds mqtt.max_packet_size"
							     : "malformed remaining length";
			if (c->state == CS_NEW && !c->eauth)
				brk_handle_connect_error(c, p + off, n - off, rc, why);
			else if (c->state == CS_NEW)
				brk_connect_refuse(c, brk_reason_from_err(rc), why);
			else
				conn_close(c, brk_reason_from_err(rc), why);
			return off;
		}
		size_t total = hdr + rem;
		if (n - off < total) {
			*need = total;
			break;
		}
		rc = brk_handle_packet(c, p + off, total);
		if (c->state == CS_CLOSED)
			return off;
		off += total;
		if (c->rl && (p[off - total] >> 4) == MQTT_PUBLISH)
			rl_message(c); /* may pause: the loop stops, the rest waits in c->in */
		if (rc != HQ_OK)
			return off;
	}
	return off;
}

/* Dispatch the packets waiting in c->in (after a pause or a hand-off). */
void conn_process_input(struct conn *c)
{
	WK_ASSERT_OWNER(c->w);
	size_t need;
	size_t used = dispatch_bytes(c, buf_head(&c->in), buf_avail(&c->in), &need);
	if (c->state == CS_CLOSED)
		return;
	buf_consume(&c->in, used);
	/* a packet left unfinished: the clock of overload.incomplete_packet_timeout */
	if (!buf_avail(&c->in))
		c->partial_since = 0;
	else if (used || !c->partial_since)
		c->partial_since = ev_now_ms(c->w->loop);
	if (need > buf_avail(&c->in))
		buf_reserve(&c->in, need - buf_avail(&c->in));
	else if (!buf_avail(&c->in))
		buf_free(&c->in); /* idle connections keep no input buffer */
}

/*
 * Reads go into the worker's shared buffer and packets are dispatched from
 * there, so an idle connection owns no input buffer at all. Only the bytes
 * of an incomplete packet (or of packets left by a pause) are copied into
 * c->in, and while c->in holds bytes, reads append to it to keep order.
 */
static void conn_read(struct conn *c)
{
	struct worker *w = c->w;
	size_t budget = READ_BUDGET;
	while (budget && conn_reading(c)) {
		bool direct = !buf_avail(&c->in);
		uint8_t *p = direct ? w->rbuf : buf_reserve(&c->in, READ_CHUNK);
		size_t room = direct ? sizeof(w->rbuf) : c->in.cap - c->in.len;
		if (c->rl)
			room = rl_room(c, room); /* bytes_rate: read no more than the budget */
		/* room >= one TLS record's plaintext (16 KiB): OpenSSL never
		 * keeps decrypted bytes back that epoll would not announce */
		ssize_t n = c->xp ? xp_read(c->xp, p, room) : recv(c->io.fd, p, room, 0);
		if (n > 0) {
			STAT_ADD(w->st.bytes_in[c->lidx], (uint64_t)n);
			c->last_rx_ms = ev_now_ms(w->loop);
			budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
			if (direct) {
				size_t need;
				size_t used = dispatch_bytes(c, p, (size_t)n, &need);
				if (c->state == CS_CLOSED)
					return;
				if (used < (size_t)n) {
					size_t left = (size_t)n - used;
					buf_reserve(&c->in, need > left ? need : left);
					buf_append(&c->in, p + used, left);
					c->partial_since = ev_now_ms(w->loop);
				}
			} else {
				c->in.len += (size_t)n;
				conn_process_input(c);
			}
			if (c->rl) {
				if (c->state == CS_CLOSED)
					return;
				rl_bytes(c, (size_t)n);
				if ((size_t)n < room && !c->xp)
					rl_drained(c);
			}
			if ((size_t)n < room && !c->xp)
				break; /* socket drained (TLS, WebSocket: read on to EAGAIN) */
			continue;
		}
		if (n == 0) {
			conn_close(c, -1, "connection closed by peer");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			if (c->xp)
				conn_xp_failed(c);
			else
				conn_close(c, -1, strerror(errno));
			return;
		}
		if (c->rl)
			rl_drained(c);
		if (c->xp && xp_wants(c->xp) == EV_WRITE) {
			ev_io_set(w->loop, &c->io, c->io.events | EV_WRITE); /* conn_io_cb reads on */
		}
		return;
	}
}

void conn_io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct conn *c = io->arg;
	if (c->state == CS_CLOSED)
		return;
	if (c->xp) {
		if (!c->xp_ready) {
			if (conn_xp_start(c) != HQ_OK)
				return;
			events = EV_READ; /* the CONNECT may be there already */
		} else if (events & EV_READ) {
			events |= EV_WRITE; /* a write that waited for input */
		} else if (events & EV_WRITE) {
			events |= EV_READ;  /* a read that waited to write */
		}
		if ((events & EV_WRITE) && !out_pending(c) && !xp_pending(c->xp))
			events &= ~EV_WRITE;
	}
	if (events & EV_WRITE)
		conn_flush(c);
	if ((events & EV_READ) && conn_reading(c))
		conn_read(c);
}

/* Responses to the client's requests: these wait behind a held one (brk_gate.c). */
static bool is_response(uint8_t type)
{
	return type == MQTT_PUBACK || type == MQTT_PUBREC || type == MQTT_PUBCOMP ||
	       type == MQTT_SUBACK || type == MQTT_UNSUBACK;
}

void conn_send_packet(struct conn *c, const struct mqtt_packet *p)
{
	WK_ASSERT_OWNER(c->w);
	size_t mark = buf_avail(&c->out);
	if (mqtt_encode(&c->out, c->version ? c->version : MQTT_V311, p) != HQ_OK) {
		c->out.len = c->out.off + mark;
		log_warning("client_id=%s cannot encode %s", c->client_id ? c->client_id : "",
			    mqtt_type_name(p->type));
		return;
	}
	if (c->gate && is_response(p->type))
		gate_capture(c, mark);
	if (c->trace_mask)
		brk_trace_pkt(c, p, false);
	conn_mark_dirty(c);
}

void conn_send_ack(struct conn *c, uint8_t type, uint16_t pid, uint8_t reason)
{
	WK_ASSERT_OWNER(c->w);
	/* fast path, no property: 2 or 3 bytes of variable header */
	uint8_t *o = buf_reserve(&c->out, 5);
	bool v5r = c->version == MQTT_V5 && reason != 0;
	o[0] = (uint8_t)(type << 4) | (type == MQTT_PUBREL ? 0x02 : 0);
	o[1] = v5r ? 3 : 2;
	o[2] = (uint8_t)(pid >> 8);
	o[3] = (uint8_t)pid;
	o[4] = reason;
	c->out.len += v5r ? 5 : 4;
	/* a PUBREL is no response to the client, but it queues behind an
	 * outgoing PUBLISH or PUBREL waiting for the store (gate_open_out) */
	if (c->gate && (type != MQTT_PUBREL || c->gate->n_out))
		gate_capture(c, buf_avail(&c->out) - (v5r ? 5 : 4));
	if (c->trace_mask)
		brk_trace_ack(c, type, pid, reason, false);
	conn_mark_dirty(c);
}

void conn_send_disconnect(struct conn *c, uint8_t reason, const char *reason_string)
{
	WK_ASSERT_OWNER(c->w);
	struct mqtt_packet p = { .type = MQTT_DISCONNECT };
	p.u.disconnect.reason = reason;
	if (reason_string && c->request_problem_info) {
		p.u.disconnect.props.present |= MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
		p.u.disconnect.props.reason_string.p = (const uint8_t *)reason_string;
		p.u.disconnect.props.reason_string.len = (uint16_t)strlen(reason_string);
	}
	conn_send_packet(c, &p);
}

/*
 * Close the connection. reason >= 0x80 is sent first as a v5 DISCONNECT when
 * CONNACK was sent (or as the CONNACK code by the CONNECT handler itself);
 * reason -1 closes silently. The session (if any) is detached here; the
 * struct is freed at the end of the loop turn.
 *
 * A close that ends with a packet the client must be able to read (that
 * DISCONNECT, or a refusing CONNACK) is a lingering close (net/linger.h): the
 * socket moves to the worker's linger set, which sends what is left, shuts
 * down writing and drains the client's input for a bounded time, so that
 * input still arriving does not make the kernel reset the connection and
 * destroy the reason code. Other closes are immediate.
 */
void conn_close(struct conn *c, int reason, const char *why)
{
	WK_ASSERT_OWNER(c->w);
	if (c->state == CS_CLOSED)
		return;
	struct worker *w = c->w;
	bool last_word = false;
	if (reason >= 0x80 && c->version == MQTT_V5 && c->sent_connack) {
		conn_send_disconnect(c, (uint8_t)reason, why);
		last_word = true;
	} else if (!c->sent_connack && buf_avail(&c->out)) {
		last_word = true; /* before CONNACK only a refusing CONNACK is ever written */
	}
	/* best effort: the final packets, without waiting (not when a large
	 * payload is pending: what follows it cannot go ahead of it) */
	if (buf_avail(&c->out) && !c->segs) {
		ssize_t n = !c->xp ? send(c->io.fd, buf_head(&c->out), buf_avail(&c->out),
					  MSG_NOSIGNAL | MSG_DONTWAIT)
			  : c->xp_ready ? xp_write(c->xp, buf_head(&c->out), buf_avail(&c->out))
			  : conn_xp_raw_write(c, buf_head(&c->out), buf_avail(&c->out));
		if (n > 0) {
			STAT_ADD(w->st.bytes_out[c->lidx], (uint64_t)n);
			buf_consume(&c->out, (size_t)n);
		}
	}
	bool was_active = c->state == CS_ACTIVE;
	if (c->thr) {
		DL_DELETE(w->throttled, c->thr);
		sess_unref(c->thr->sess);
		HQ_FREE(c->thr);
	}
	if (c->rl)
		rl_conn_close(c);
	c->state = CS_CLOSED;
	ev_io_stop(w->loop, &c->io);
	if (c->xp)
		xp_shutdown(c->xp); /* close frame, close_notify after the last bytes */
	if (last_word && !c->segs) {
		/* the rest of c->out (if small) goes with it: the lingerer owns
		 * the fd from here on, conn_free must not close it. Under TLS or
		 * WebSocket the rest cannot go raw: the lingerer only drains
		 * (except an HTTP refusal before the upgrade on ws) */
		bool raw_ok = !c->tls && (!c->ws || !c->xp_ready);
		linger_add(w->linger, c->io.fd, raw_ok ? &c->out : NULL, ev_now_ms(w->loop));
		c->io.fd = -1;
	} else {
		shutdown(c->io.fd, SHUT_RDWR);
	}
	if (was_active || c->client_id) {
		int lvl = (reason >= 0x80 || reason == -1) && !c->disconnect_normal ? LOG_NOTICE : LOG_INFO;
		if (c->disconnect_normal)
			why = "client sent DISCONNECT";
		log_printf(lvl, "client disconnected client_id=%s addr=%s proto=%d reason=\"%s\"",
			   c->client_id ? c->client_id : "", c->addr, c->version, why ? why : "");
	} else {
		log_debug("connection from %s closed before CONNECT: %s", c->addr, why ? why : "");
	}
	if (c->sess) {
		struct session *s = c->sess;
		sess_detach(s, c);
	}
	wk_conn_remove(w, c);
	c->free_next = w->closed;
	w->closed = c;
}

/*
 * Close for a bad request, but only after the responses held for the
 * requests before it (brk_gate.c) have left. A client that went over the
 * Receive Maximum (paho 1.x resends every unacknowledged message at once
 * after a reconnect, however many) otherwise never learns which of its
 * messages were accepted: it resends them all on the next connection, goes
 * over again, and makes no progress at all. Meanwhile nothing more is read
 * and nothing new is sent (conn_reading, conn_writable); the close happens in
 * gate_drain, or after CONN_CLOSING_MAX_MS (tick_cb) if the store or a peer
 * never answers.
 */
void conn_close_after_gate(struct conn *c, uint8_t reason, const char *why)
{
	WK_ASSERT_OWNER(c->w);
	if (c->state == CS_CLOSED || c->closing)
		return;
	if (!c->gate) {
		conn_close(c, reason, why);
		return;
	}
	c->closing = true;
	c->closing_reason = reason;
	c->closing_why = why;
	c->closing_since = ev_now_ms(c->w->loop);
	ev_io_set(c->w->loop, &c->io, c->io.events & EV_WRITE);
}

/* Release a closed (or never attached) connection. */
void conn_free(struct conn *c)
{
	if (!c)
		return;
	struct broker *b = c->w->b;
	if (c->io.fd >= 0)
		close(c->io.fd);
	conn_xp_free(c); /* the SSL's BIO does not own the fd */
	atomic_fetch_sub(&b->conns_now, 1);
	if (!c->internal) /* a bridge's local side is of no listener */
		atomic_fetch_sub(&b->conns_by_type[c->ltype], 1);
	ovl_conn_release(c);
	buf_free(&c->in);
	buf_free(&c->out);
	segs_free(c);
	gate_conn_free(c);
	brk_cluster_conn_free(c);
	brk_store_conn_free(c);
	brk_auth_conn_free(c);
	brk_eauth_conn_free(c);
	if (c->will)
		msg_unref(c->will);
	struct alias_in *ai, *ai_tmp;
	HASH_ITER(hh, c->alias_in, ai, ai_tmp) {
		HASH_DEL(c->alias_in, ai);
		hq_free(ai->topic);
		hq_free(ai);
	}
	struct alias_out *a, *tmp;
	HASH_ITER(hh, c->alias_out, a, tmp) {
		HASH_DEL(c->alias_out, a);
		hq_free(a->topic);
		hq_free(a);
	}
	if (!c->client_id_borrowed)
		hq_free(c->client_id);
	hq_free(c->username);
	auth_client_free(c->acl);
	hq_free(c);
}

/*
 * Back-pressure. A publisher whose message just landed in the queue of a live
 * subscriber that is behind stops being read until that queue is back under
 * the low watermark. So a fast publisher is slowed to what its consumer takes
 * instead of filling the queue until the drop policy loses messages.
 *
 * "Behind" = the queue plus the deliveries on their way to it from other
 * workers (session.inbound, counted by the sender before posting) reach the
 * high watermark: half of mqtt.max_queued_messages (at most 1024) or half of
 * mqtt.max_queued_bytes. The other half is headroom for what is already
 * under way when the pause takes effect: the pause is checked after every
 * PUBLISH and nothing is read from a paused connection, so each publisher
 * feeding the subscriber adds at most one message after the watermark, on
 * whichever worker it is (ARCHITECTURE.md, "Invariants").
 *
 * A consumer with an unacknowledged message and no acknowledgement for
 * THROTTLE_STALL_MS is stuck, not slow: it never holds a publisher back (the
 * queue policy applies to it), nor does any pause last longer than
 * THROTTLE_MAX_MS, so one bad subscriber cannot stall others.
 */
#define THROTTLE_STALL_MS 1000
#define THROTTLE_MAX_MS 1000

static uint32_t high_msgs(const struct hq_config *cfg)
{
	uint32_t max = cfg->max_queued_messages;
	uint32_t high = max ? max / 2 : 1024;
	if (high > 1024)
		high = 1024;
	return high ? high : 1;
}

/* 0 = no byte limit */
static uint64_t high_bytes(const struct hq_config *cfg)
{
	uint64_t max = cfg->max_queued_bytes;
	return max ? (max / 2 ? max / 2 : 1) : 0;
}

/* The load t's publishers see: its queue plus what is on its way to it. */
static void sess_load(const struct session *t, uint64_t *msgs, uint64_t *bytes)
{
	*msgs = (uint64_t)atomic_load_explicit(&t->qlen_pub, memory_order_relaxed) +
		atomic_load_explicit(&t->inbound, memory_order_relaxed);
	*bytes = atomic_load_explicit(&t->qbytes_pub, memory_order_relaxed) +
		 atomic_load_explicit(&t->inbound_bytes, memory_order_relaxed);
}

static bool sess_stuck(const struct session *t, int64_t now)
{
	return now - atomic_load_explicit(&t->progress_ms, memory_order_relaxed) >= THROTTLE_STALL_MS;
}

bool sess_congested(const struct session *t, const struct hq_config *cfg, int64_t now)
{
	if (!atomic_load_explicit(&t->online, memory_order_relaxed))
		return false;
	uint64_t msgs, bytes, hb = high_bytes(cfg);
	sess_load(t, &msgs, &bytes);
	if (msgs < high_msgs(cfg) && (!hb || bytes < hb))
		return false;
	return !sess_stuck(t, now);
}

void conn_throttle(struct conn *c, struct session *t)
{
	WK_ASSERT_OWNER(c->w);
	struct worker *w = c->w;
	if (c->thr || c->state != CS_ACTIVE)
		return;
	c->thr = hq_calloc(1, sizeof(*c->thr));
	c->thr->c = c;
	c->thr->sess = sess_ref(t);
	c->thr->since = ev_now_ms(w->loop);
	DL_APPEND(w->throttled, c->thr);
	log_debug("client_id=%s paused: subscriber %s is behind", c->client_id, t->client_id);
	ev_io_set(w->loop, &c->io, (c->io.events & EV_WRITE));
}

static void conn_unthrottle(struct conn *c, int64_t now)
{
	struct worker *w = c->w;
	DL_DELETE(w->throttled, c->thr);
	sess_unref(c->thr->sess);
	HQ_FREE(c->thr);
	c->last_rx_ms = now; /* the silence was ours, not the client's */
	if (c->partial_since)
		c->partial_since = now;
	ev_io_set(w->loop, &c->io, (conn_reading(c) ? EV_READ : 0) | (c->io.events & EV_WRITE));
	conn_process_input(c); /* packets read before the pause */
}

void wk_check_throttled(struct worker *w, int64_t now)
{
	WK_ASSERT_OWNER(w);
	struct conn_thr *p, *tmp;
	struct hq_config *cfg = w->b->cfg;
	uint64_t low = high_msgs(cfg) / 2, low_bytes = high_bytes(cfg) / 2;
	/* walk a detached list: unthrottling reads input, which may throttle
	 * the same connection again (it then waits for the next turn) */
	struct conn_thr *list = w->throttled;
	w->throttled = NULL;
	DL_FOREACH_SAFE(list, p, tmp) {
		DL_DELETE(list, p);
		DL_APPEND(w->throttled, p);
		struct session *t = p->sess;
		uint64_t msgs, bytes;
		sess_load(t, &msgs, &bytes);
		bool drained = msgs <= low && (!low_bytes || bytes <= low_bytes);
		bool stuck = sess_stuck(t, now);
		bool gone = !atomic_load_explicit(&t->online, memory_order_relaxed);
		if (drained || stuck || gone || now - p->since >= THROTTLE_MAX_MS)
			conn_unthrottle(p->c, now);
	}
}
