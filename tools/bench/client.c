/*
 * client.c - one MQTT client connection of the generator: connect, handshake
 * (CONNECT/CONNACK, SUBSCRIBE/SUBACK), read, handle packets, write.
 *
 * Reads go into the bench's shared scratch buffer (b->rx, BENCH_RX_CHUNK per
 * read()); a partial packet left at the end is kept in c->in and copied back in
 * front of the next read, so idle connections hold no read buffer. Every
 * received packet goes through the codec (mqtt_decode). Writes only append to
 * c->out and put the client on the dirty list; the loop's before-sleep hook
 * flushes each dirty client with one write per turn (cli_flush_all).
 *
 * A client is never freed during the run (they live in one array); closing
 * stops its ev_io, so events already fetched for it are skipped by the loop.
 *
 * With --cafile every byte goes through tls.c (io_send/io_recv below) and a
 * connection has one more stage, CS_TLS, between TCP connect and CONNECT. A
 * TLS write may wait for input and a TLS read for output room: wr_wait and
 * rd_wait_write say so, set_interest() asks epoll for exactly that, and
 * io_cb() resumes each operation from the event it waits for.
 */
#include "bench.h"
#include "core/err.h"
#include "core/mem.h"
#include "mqtt/mqtt.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ERROR_LINES 5 /* error messages printed; the rest only counted */

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void cli_error(struct bench *b, const char *fmt, ...)
{
	static unsigned printed;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!b->err.first[0])
		snprintf(b->err.first, sizeof(b->err.first), "%s", msg);
	if (printed < MAX_ERROR_LINES)
		fprintf(stderr, "hamqtt-bench: %s\n", msg);
	else if (printed == MAX_ERROR_LINES)
		fprintf(stderr, "hamqtt-bench: (further errors only counted)\n");
	printed++;
}

static const char *role_name(const struct client *c)
{
	return c->role == ROLE_PUB ? "publisher" : c->role == ROLE_SUB ? "subscriber" : "client";
}

void cli_mark_dirty(struct client *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = c->b->dirty;
	c->b->dirty = c;
}

void cli_close(struct client *c)
{
	struct bench *b = c->b;

	if (c->state == CS_CLOSED)
		return;
	if (c->state == CS_READY)
		b->alive--;
	else if (c->state != CS_IDLE && c->state != CS_BYE && b->pending)
		b->pending--;
	ev_io_stop(b->loop, &c->io);
	btls_close(c);
	close(c->io.fd);
	c->io.fd = -1;
	c->state = CS_CLOSED;
	buf_free(&c->in);
	buf_free(&c->out);
}

/* The connection ended without us asking: count it by the stage it was in. */
static void cli_lost(struct client *c, const char *why)
{
	struct bench *b = c->b;

	if (c->state == CS_CLOSED)
		return;
	if (b->phase == PH_CLOSING) {
		cli_close(c);   /* the broker closed after our DISCONNECT, as it should */
		return;
	}
	if (c->state == CS_BYE) {
		hs_on_closed(c);   /* hs mode: the same, at the end of one cycle */
		return;
	}
	if (c->state == CS_READY) {
		b->err.dropped++;
		cli_error(b, "%s %u: connection dropped by the broker: %s", role_name(c),
			  c->idx, why);
	} else {
		b->err.connect_fail++;
		cli_error(b, "%s %u: connection failed: %s", role_name(c), c->idx, why);
	}
	cli_close(c);
}

static void protocol_error(struct client *c, const char *why)
{
	c->b->err.protocol++;
	cli_error(c->b, "%s %u: protocol error: %s", role_name(c), c->idx, why);
	cli_close(c);
}

void cli_send_disconnect(struct client *c)
{
	static const uint8_t disc[2] = { MQTT_DISCONNECT << 4, 0x00 };

	buf_append(&c->out, disc, sizeof(disc));
	cli_mark_dirty(c);
	c->bye = true;
}

void cli_disconnect(struct client *c)
{
	static const uint8_t disc[2] = { MQTT_DISCONNECT << 4, 0x00 };

	if (c->state == CS_CLOSED)
		return;
	if (c->state == CS_READY && !c->bye && !c->wr_blocked && buf_avail(&c->out) == 0) {
		char why[8];
		ssize_t r = c->ssl ? btls_write(c, disc, sizeof(disc), why, sizeof(why)) :
				     send(c->io.fd, disc, sizeof(disc), MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)r;
		btls_shutdown(c);
	}
	cli_close(c);
}

/* ---- the byte stream: TCP or TLS ---- */

/* like send(); why gets the reason of a TLS failure */
static ssize_t io_send(struct client *c, const void *p, size_t n, char *why, size_t wn)
{
	if (c->ssl)
		return btls_write(c, p, n, why, wn);
	return send(c->io.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static ssize_t io_recv(struct client *c, void *p, size_t n, char *why, size_t wn)
{
	if (c->ssl)
		return btls_read(c, p, n, why, wn);
	return recv(c->io.fd, p, n, MSG_DONTWAIT);
}

/* epoll interest: always input; output room when a write waits for it, or a
 * TLS read does */
static void set_interest(struct client *c)
{
	unsigned ev = EV_READ;

	if ((c->wr_blocked && c->wr_wait == EV_WRITE) || c->rd_wait_write)
		ev |= EV_WRITE;
	if (c->io.events != ev)
		ev_io_set(c->b->loop, &c->io, ev);
}

/* ---- writing ---- */

static void flush(struct client *c)
{
	struct bench *b = c->b;
	char why[200] = "";

	while (buf_avail(&c->out)) {
		size_t want = buf_avail(&c->out);
		ssize_t n = io_send(c, buf_head(&c->out), want, why, sizeof(why));
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			b->c.bytes_out += (uint64_t)n;
			b->last_progress_ns = b->now_ns;
			if ((size_t)n == want)
				break;
			errno = EAGAIN;   /* short write: the socket buffer is full */
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			cli_lost(c, why[0] ? why : strerror(errno));
			return;
		}
		/* a TLS write that needs input first (WANT_READ) waits for EV_READ */
		c->wr_blocked = true;
		c->wr_wait = c->ssl && n < 0 ? c->tls_wait : EV_WRITE;
		set_interest(c);
		return;
	}
	if (c->wr_blocked) {
		c->wr_blocked = false;
		set_interest(c);
	}
}

void cli_flush_all(struct bench *b)
{
	struct client *c = b->dirty;

	b->dirty = NULL;
	while (c) {
		struct client *next = c->dirty_next;
		c->dirty = false;
		c->dirty_next = NULL;
		if (c->state != CS_CLOSED && c->state != CS_TCP && c->state != CS_TLS &&
		    c->state != CS_IDLE && !c->wr_blocked)
			flush(c);
		c = next;
	}
}

static void put_ack(struct client *c, uint8_t first, uint16_t pid)
{
	uint8_t *p = buf_reserve(&c->out, 4);
	p[0] = first;
	p[1] = 2;
	p[2] = (uint8_t)(pid >> 8);
	p[3] = (uint8_t)pid;
	c->out.len += 4;
	cli_mark_dirty(c);
}

/* Encode pkt into c->out; the codec only fails on unencodable fields. */
static int put_packet(struct client *c, const struct mqtt_packet *pkt)
{
	int rc = mqtt_encode(&c->out, (uint8_t)c->b->o.version, pkt);
	if (rc != HQ_OK)
		return rc;
	c->last_tx_ms = ev_now_ms(c->b->loop);
	cli_mark_dirty(c);
	return HQ_OK;
}

/* ---- connecting ---- */

static void client_id(const struct client *c, char *out, size_t n)
{
	const struct bench *b = c->b;
	char role = c->role == ROLE_PUB ? 'p' : c->role == ROLE_SUB ? 's' : 'c';

	if (b->o.id_prefix)
		snprintf(out, n, "%s%c%u", b->o.id_prefix, role, c->idx);
	else
		snprintf(out, n, "hqb%d%c%u", (int)getpid(), role, c->idx);
}

static void send_connect(struct client *c)
{
	struct bench *b = c->b;
	struct mqtt_packet pk = { .type = MQTT_CONNECT };
	struct mqtt_connect *cn = &pk.u.connect;
	char id[96];

	client_id(c, id, sizeof(id));
	cn->version = (uint8_t)b->o.version;
	cn->clean_start = b->o.clean;
	cn->keepalive = (uint16_t)b->o.keepalive;
	cn->client_id.p = (const uint8_t *)id;
	cn->client_id.len = (uint16_t)strlen(id);
	if (b->o.username) {
		cn->has_username = true;
		cn->username.p = (const uint8_t *)b->o.username;
		cn->username.len = (uint16_t)strlen(b->o.username);
	}
	if (b->o.password) {
		cn->has_password = true;
		cn->password.p = (const uint8_t *)b->o.password;
		cn->password.len = (uint16_t)strlen(b->o.password);
	}
	if (b->o.version == MQTT_V5 && b->o.session_expiry >= 0) {
		cn->props.present |= MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
		cn->props.session_expiry = (uint32_t)b->o.session_expiry;
	}
	if (put_packet(c, &pk) != HQ_OK) {
		protocol_error(c, "cannot encode CONNECT");
		return;
	}
	c->state = CS_CONNACK;
}

static void send_subscribe(struct client *c)
{
	struct buf list = { 0 };
	struct mqtt_packet pk = { .type = MQTT_SUBSCRIBE, .flags = 0x02 };

	mqtt_sub_append(&list, c->topic, (uint8_t)c->b->o.sub_qos);
	c->sub_pid = (uint16_t)(c->idx % 65535 + 1);
	pk.u.subscribe.packet_id = c->sub_pid;
	pk.u.subscribe.list = list.data;
	pk.u.subscribe.list_len = (uint32_t)list.len;
	pk.u.subscribe.count = 1;
	int rc = put_packet(c, &pk);
	buf_free(&list);
	if (rc != HQ_OK) {
		protocol_error(c, "cannot encode SUBSCRIBE (filter too long?)");
		return;
	}
	c->state = CS_SUBACK;
	if (c->b->o.expect)
		bench_expect_start(c->b, now_ns());
}

static void set_ready(struct client *c)
{
	struct bench *b = c->b;

	c->state = CS_READY;
	b->pending--;
	b->established++;
	b->alive++;
	b->conn_t1_ns = now_ns();
}

/* One step of the TLS handshake; CONNECT once it is done. */
static void tls_step(struct client *c)
{
	char why[200] = "";
	int r = btls_handshake(c, why, sizeof(why));

	if (r < 0) {
		cli_lost(c, why[0] ? why : "TLS handshake failed");
		return;
	}
	if (r == 0) {
		if (c->io.events != c->tls_wait)
			ev_io_set(c->b->loop, &c->io, c->tls_wait);
		return;
	}
	ev_io_set(c->b->loop, &c->io, EV_READ);
	send_connect(c);
}

/* TCP is up: the TLS handshake, or CONNECT straight away */
static void tcp_up(struct client *c)
{
	if (btls_on()) {
		if (btls_start(c) < 0) {
			cli_lost(c, "TLS setup failed");
			return;
		}
		c->state = CS_TLS;
		tls_step(c);
		return;
	}
	ev_io_set(c->b->loop, &c->io, EV_READ);
	send_connect(c);
}

static void on_connected(struct client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		cli_lost(c, strerror(err));
		return;
	}
	tcp_up(c);
}

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events);

void cli_start(struct bench *b, struct client *c)
{
	int one = 1;
	int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	c->t_start_ns = now_ns();
	c->last_tx_ms = ev_now_ms(b->loop);
	if (!b->conn_t0_ns)
		b->conn_t0_ns = c->t_start_ns;
	c->state = CS_TCP;
	c->bye = c->wr_blocked = c->rd_wait_write = false;
	b->pending++;
	ev_io_init(&c->io, fd, io_cb, c);
	if (fd < 0) {
		c->state = CS_CLOSED;
		b->pending--;
		b->err.connect_fail++;
		cli_error(b, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (b->o.bind_spread && b->addr.ss_family == AF_INET) {
		/* 127.0.0.1 .. 127.0.0.254 round robin; the port is chosen at
		 * connect() time from the whole 4-tuple */
		struct sockaddr_in src = { .sin_family = AF_INET };
		uint32_t n = (uint32_t)(c - b->cl);
		src.sin_addr.s_addr = htonl(0x7F000001u + n % 254);
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			cli_lost(c, strerror(errno));
			return;
		}
	}
	if (connect(fd, (struct sockaddr *)&b->addr, b->addrlen) == 0) {
		tcp_up(c);
		return;
	}
	if (errno != EINPROGRESS) {
		cli_lost(c, strerror(errno));
		return;
	}
	ev_io_set(b->loop, &c->io, EV_WRITE);
}

/* ---- packets ---- */

static void on_connack(struct client *c, const struct mqtt_connack *ca)
{
	struct bench *b = c->b;

	if (c->state != CS_CONNACK) {
		protocol_error(c, "unexpected CONNACK");
		return;
	}
	if (ca->reason != 0) {
		b->err.refused++;
		cli_error(b, "%s %u: CONNACK refused the connection: %s 0x%02x", role_name(c),
			  c->idx, b->o.version == MQTT_V5 ? "reason" : "return code", ca->reason);
		cli_close(c);
		return;
	}
	if ((ca->props.present & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAX)) &&
	    ca->props.receive_max < c->window)
		c->window = ca->props.receive_max;
	if (b->o.mode == MODE_HS)
		hs_on_connack(c);
	else if (c->role == ROLE_SUB)
		send_subscribe(c);
	else
		set_ready(c);
}

static void on_suback(struct client *c, const struct mqtt_suback *sa)
{
	struct bench *b = c->b;

	if (c->state != CS_SUBACK || sa->packet_id != c->sub_pid || sa->count != 1) {
		protocol_error(c, "unexpected SUBACK");
		return;
	}
	if (sa->codes[0] >= 0x80) {
		b->err.sub_refused++;
		cli_error(b, "subscriber %u: SUBACK refused '%s': 0x%02x", c->idx, c->topic,
			  sa->codes[0]);
		cli_close(c);
		return;
	}
	set_ready(c);
}

static void on_publish(struct client *c, const struct mqtt_publish *pb, int64_t t)
{
	struct bench *b = c->b;
	int64_t ts;
	uint32_t id, seq;

	if (pb->qos == 1)
		put_ack(c, MQTT_PUBACK << 4, pb->packet_id);
	else if (pb->qos == 2)
		put_ack(c, MQTT_PUBREC << 4, pb->packet_id);
	if (b->phase == PH_CLOSING)
		return;   /* the report is made */
	if (c->role != ROLE_SUB || !c->trk) {
		b->c.stray++;
		return;
	}
	b->c.delivered++;
	b->last_progress_ns = t;
	if (pb->payload_len < BENCH_HDR) {
		b->c.stray++;
		return;
	}
	memcpy(&ts, pb->payload, 8);
	memcpy(&id, pb->payload + 8, 4);
	memcpy(&seq, pb->payload + 12, 4);

	/* when the publishers are known, their tracks were made at setup and
	 * anything else is misrouted */
	struct track *k = b->known_pubs ? trk_find(c->trk, id) : trk_get(c->trk, id);
	if (!k) {
		b->c.stray++;
		return;
	}
	switch (trk_seen(c->trk, k, seq)) {
	case SEEN_NEW:
		b->unique++;
		break;
	case SEEN_REORDER:
		b->unique++;
		b->c.reorder++;
		break;
	case SEEN_DUP:
		b->c.dup++;
		break;
	}
	if (b->o.expect && b->unique >= b->o.expect && b->measuring) {
		b->cm.delivered++;   /* the expect-th message is in the period */
		bench_expect_reached(b, t);
		return;
	}
	if (b->o.mode == MODE_PUBSUB) {
		struct pubstate *p = &b->pubs[id];
		p->delivered++;
		p->stall_ms = 0;
	}
	if (b->measuring) {
		uint64_t lat = t > ts ? (uint64_t)(t - ts) : 0;
		b->cm.delivered++;
		hist_add(&b->lat, lat);
		hist_add(&b->lat_tick, lat);
	}
}

static void handle_packet(struct client *c, const uint8_t *p, size_t n, int64_t t)
{
	struct mqtt_packet pk;
	const char *why = NULL;
	char msg[160];

	int rc = mqtt_decode(p, n, (uint8_t)c->b->o.version, &pk, &why);
	if (rc != HQ_OK) {
		snprintf(msg, sizeof(msg), "undecodable %s from the broker: %s",
			 mqtt_type_name(p[0] >> 4), why ? why : hq_strerror(rc));
		protocol_error(c, msg);
		return;
	}
	switch (pk.type) {
	case MQTT_PUBLISH:
		on_publish(c, &pk.u.publish, t);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		if (c->role != ROLE_PUB || c->state != CS_READY) {
			protocol_error(c, "unexpected acknowledgement");
			return;
		}
		c->b->last_progress_ns = t;
		gen_on_ack(c, pk.type, pk.u.ack.packet_id, pk.u.ack.reason);
		break;
	case MQTT_PUBREL:
		put_ack(c, MQTT_PUBCOMP << 4, pk.u.ack.packet_id);
		break;
	case MQTT_CONNACK:
		on_connack(c, &pk.u.connack);
		break;
	case MQTT_SUBACK:
		on_suback(c, &pk.u.suback);
		break;
	case MQTT_PINGRESP:
		break;
	case MQTT_DISCONNECT:
		snprintf(msg, sizeof(msg), "DISCONNECT from the broker, reason 0x%02x",
			 pk.u.disconnect.reason);
		cli_lost(c, msg);
		break;
	default:
		snprintf(msg, sizeof(msg), "unexpected %s", mqtt_type_name(pk.type));
		protocol_error(c, msg);
		break;
	}
}

/* Handle every whole packet in p[0..n); keep the tail in c->in. */
static void process(struct client *c, const uint8_t *p, size_t n, int64_t t)
{
	size_t off = 0;

	while (off < n) {
		size_t hl;
		uint32_t rl;
		int rc = mqtt_frame(p + off, n - off, 0, &hl, &rl);
		if (rc == HQ_EAGAIN)
			break;
		if (rc != HQ_OK) {
			protocol_error(c, "invalid fixed header from the broker");
			return;
		}
		if (hl + rl > n - off)
			break;
		handle_packet(c, p + off, hl + rl, t);
		if (c->state == CS_CLOSED)
			return;
		off += hl + rl;
	}
	if (off < n)
		buf_append(&c->in, p + off, n - off);
}

static void on_readable(struct client *c)
{
	struct bench *b = c->b;
	unsigned reads = 0;
	char why[200] = "";

	for (;;) {
		size_t keep = buf_avail(&c->in);
		b->rx.off = b->rx.len = 0;
		uint8_t *p = buf_reserve(&b->rx, keep + BENCH_RX_CHUNK);
		ssize_t n = io_recv(c, p + keep, BENCH_RX_CHUNK, why, sizeof(why));
		if (n == 0) {
			cli_lost(c, "closed by the broker");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				cli_lost(c, why[0] ? why : strerror(errno));
			} else if (c->ssl && (c->tls_wait == EV_WRITE) != c->rd_wait_write) {
				c->rd_wait_write = c->tls_wait == EV_WRITE;
				set_interest(c);
			}
			return;
		}
		if (c->rd_wait_write) {
			c->rd_wait_write = false;
			set_interest(c);
		}
		int64_t t = now_ns();
		b->c.bytes_in += (uint64_t)n;
		if (keep) {
			memcpy(p, buf_head(&c->in), keep);
			buf_reset(&c->in);
		}
		process(c, p, keep + (size_t)n, t);
		if (c->state == CS_CLOSED)
			return;
		/* a short read drained the socket; a full one may leave more, but
		 * bound the work per event so other clients get their turn. TLS
		 * returns one record (<= 16 KiB) per call: read on to EAGAIN within
		 * a budget of the same bytes, and past it while OpenSSL still holds
		 * decrypted bytes, which epoll cannot announce */
		if (c->ssl) {
			if (++reads >= 4 * BENCH_RX_CHUNK / 16384 && !btls_pending(c))
				return;
			continue;
		}
		if ((size_t)n < BENCH_RX_CHUNK || ++reads == 4)
			return;
	}
}

static void io_cb(struct ev_loop *l, struct ev_io *io, unsigned events)
{
	struct client *c = io->arg;

	if (c->state == CS_TCP) {
		on_connected(c);
		return;
	}
	if (c->state == CS_TLS) {
		tls_step(c);
		return;
	}
	/* a write resumes on output room, or on input when TLS needed input */
	if ((events & EV_WRITE) || (c->wr_blocked && c->wr_wait == EV_READ && (events & EV_READ))) {
		flush(c);
		if (c->state == CS_CLOSED)
			return;
	}
	/* a read resumes on input, or on output room when TLS needed to write */
	if ((events & EV_READ) || (c->rd_wait_write && (events & EV_WRITE)))
		on_readable(c);
}

/* ---- timers ---- */

void cli_tick(struct bench *b, int64_t now_ms)
{
	int64_t ka_ms = (int64_t)b->o.keepalive * 1000;
	int64_t deadline = (int64_t)(b->o.timeout * 1e9);
	int64_t t = now_ns();

	for (uint32_t i = 0; i < b->n_cl; i++) {
		struct client *c = &b->cl[i];
		if (c->state == CS_READY) {
			if (ka_ms && now_ms - c->last_tx_ms >= ka_ms / 2) {
				static const uint8_t ping[2] = { MQTT_PINGREQ << 4, 0 };
				buf_append(&c->out, ping, sizeof(ping));
				c->last_tx_ms = now_ms;
				cli_mark_dirty(c);
			}
		} else if (c->state == CS_BYE && t - c->t_start_ns > deadline) {
			b->err.protocol++;
			cli_error(b, "client %u: no close after DISCONNECT (timed out)", c->idx);
			cli_close(c);
		} else if (c->state != CS_IDLE && c->state != CS_CLOSED &&
			   t - c->t_start_ns > deadline) {
			cli_lost(c, c->state == CS_TCP ? "TCP connect timed out" :
				    c->state == CS_TLS ? "TLS handshake timed out" :
				    c->state == CS_CONNACK ? "no CONNACK (timed out)" :
							     "no SUBACK (timed out)");
		}
	}
}
