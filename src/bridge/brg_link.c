/*
 * brg_link.c - one MQTT client connection of a bridge: TCP connect, TLS
 * (net/net_tls.h, client side), framing and the codec (mqtt/mqtt.h), output
 * buffered and written as the socket takes it. What the packets mean is the
 * bridge's (brg_run.c), through on_ready / on_packet / on_close.
 *
 * A callback may close the link (the bridge tears both links down when one
 * fails): every loop here checks the state after a callback.
 */
#include "bridge/brg_int.h"
#include "core/err.h"
#include "core/log.h"
#include "net/net_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PACKET (256u * 1024 * 1024)
#define READ_CHUNK 16384

static void link_fail(struct brg_link *l, const char *why)
{
	brg_close_fn cb = l->on_close;
	brg_link_close(l);
	if (cb)
		cb(l, why);
}

void brg_link_close(struct brg_link *l)
{
	if (l->st == LK_IDLE)
		return;
	if (l->tls) {
		if (l->st == LK_MQTT || l->st == LK_UP)
			tls_shutdown(l->tls);
		tls_conn_free(l->tls);
		l->tls = NULL;
	}
	ev_io_stop(l->loop, &l->io);
	close(l->io.fd);
	l->io.fd = -1;
	buf_free(&l->in);
	buf_free(&l->out);
	l->st = LK_IDLE;
}

uint16_t brg_link_pid(struct brg_link *l)
{
	if (++l->next_pid == 0)
		l->next_pid = 1;
	return l->next_pid;
}

static ssize_t raw_write(struct brg_link *l, const void *p, size_t n)
{
	return l->tls ? tls_write(l->tls, p, n) : send(l->io.fd, p, n, MSG_NOSIGNAL);
}

static ssize_t raw_read(struct brg_link *l, void *p, size_t n)
{
	return l->tls ? tls_read(l->tls, p, n) : recv(l->io.fd, p, n, 0);
}

static const char *io_error(struct brg_link *l)
{
	return l->tls ? tls_error(l->tls) : strerror(errno);
}

/* Write what the socket takes; watch for writability while some is left. */
static int flush(struct brg_link *l)
{
	while (buf_avail(&l->out)) {
		ssize_t n = raw_write(l, buf_head(&l->out), buf_avail(&l->out));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			char why[256];
			snprintf(why, sizeof(why), "write failed: %s", io_error(l));
			link_fail(l, why);
			return HQ_EIO;
		}
		buf_consume(&l->out, (size_t)n);
		l->last_tx_ms = ev_now_ms(l->loop);
	}
	unsigned ev = EV_READ;
	if (buf_avail(&l->out))
		ev |= l->tls ? tls_wants(l->tls) | EV_WRITE : EV_WRITE;
	ev_io_set(l->loop, &l->io, ev);
	return HQ_OK;
}

int brg_link_send(struct brg_link *l, const struct mqtt_packet *p)
{
	if (l->st != LK_MQTT && l->st != LK_UP)
		return HQ_ECLOSED;
	int rc = mqtt_encode(&l->out, l->version, p);
	if (rc != HQ_OK) {
		char why[128];
		snprintf(why, sizeof(why), "cannot encode a %s packet", mqtt_type_name(p->type));
		link_fail(l, why);
		return rc;
	}
	return flush(l);
}

static void read_packets(struct brg_link *l)
{
	/* a budget per event for fairness between bridges; not on TLS, whose
	 * decrypted bytes may wait inside OpenSSL where epoll cannot see them */
	for (int budget = 0; budget < 64 || l->tls; budget++) {
		uint8_t *dst = buf_reserve(&l->in, READ_CHUNK);
		ssize_t n = raw_read(l, dst, READ_CHUNK);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			char why[256];
			snprintf(why, sizeof(why), "%s", n == 0 ? "closed by the peer" : io_error(l));
			link_fail(l, why);
			return;
		}
		l->in.len += (size_t)n;
		l->last_rx_ms = ev_now_ms(l->loop);
		for (;;) {
			size_t hl;
			uint32_t rl;
			int rc = mqtt_frame(buf_head(&l->in), buf_avail(&l->in), MAX_PACKET, &hl, &rl);
			if (rc == HQ_EAGAIN || (rc == HQ_OK && buf_avail(&l->in) < hl + rl))
				break;
			struct mqtt_packet pkt;
			const char *why = NULL;
			if (rc == HQ_OK)
				rc = mqtt_decode(buf_head(&l->in), hl + rl, l->version, &pkt, &why);
			if (rc != HQ_OK) {
				char msg[256];
				snprintf(msg, sizeof(msg), "bad packet from the broker: %s",
					 why ? why : "malformed");
				link_fail(l, msg);
				return;
			}
			l->on_packet(l, &pkt, buf_head(&l->in), hl + rl);
			if (l->st == LK_IDLE)
				return; /* the callback closed it: l->in is gone */
			buf_consume(&l->in, hl + rl);
		}
	}
}

static void io_cb(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
	struct brg_link *l = io->arg;
	(void)loop;
	if (l->st == LK_DIAL) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
			err = errno;
		if (err) {
			char why[256];
			snprintf(why, sizeof(why), "TCP connect failed: %s", strerror(err));
			link_fail(l, why);
			return;
		}
		l->st = l->tls ? LK_TLS : LK_MQTT;
		l->since_ms = ev_now_ms(l->loop);
	}
	if (l->st == LK_TLS) {
		int rc = tls_handshake(l->tls);
		if (rc == HQ_EAGAIN) {
			ev_io_set(l->loop, &l->io, tls_wants(l->tls));
			return;
		}
		if (rc != HQ_OK) {
			char why[300];
			snprintf(why, sizeof(why), "TLS handshake failed: %s",
				 rc == HQ_ECLOSED ? "closed by the peer" : tls_error(l->tls));
			link_fail(l, why);
			return;
		}
		l->st = LK_MQTT;
		l->since_ms = ev_now_ms(l->loop);
		l->hello = true;
		ev_io_set(l->loop, &l->io, EV_READ);
		l->on_ready(l);
		return;
	}
	if (l->st == LK_MQTT && !l->hello) {
		l->hello = true;
		ev_io_set(l->loop, &l->io, EV_READ);
		l->on_ready(l); /* sends CONNECT */
		return;
	}
	if ((events & (EV_WRITE | EV_READ)) && buf_avail(&l->out) && flush(l) != HQ_OK)
		return;
	if (events & (EV_READ | EV_ERROR))
		read_packets(l);
}

static void link_start(struct brg_link *l, int fd, enum brg_link_state st)
{
	ev_io_init(&l->io, fd, io_cb, l);
	l->st = st;
	l->since_ms = l->last_rx_ms = ev_now_ms(l->loop);
	l->last_tx_ms = 0;
	l->hello = false;
	l->next_pid = 0;
	l->peer_recv_max = 65535;
	l->peer_max_qos = 2;
}

int brg_link_dial(struct brg_link *l, const char *host, int port, struct tls_cli *tls,
		  const char *sni, char *why, size_t whylen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	int gai = getaddrinfo(host, ps, &hints, &res);
	if (gai != 0) {
		snprintf(why, whylen, "cannot resolve %s: %s", host, gai_strerror(gai));
		return HQ_EIO;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		freeaddrinfo(res);
		return HQ_EIO;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = connect(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (rc != 0 && errno != EINPROGRESS) {
		snprintf(why, whylen, "TCP connect failed: %s", strerror(errno));
		close(fd);
		return HQ_EIO;
	}
	if (tls) {
		l->tls = tls_conn_new_client(tls, fd, sni);
		if (!l->tls) {
			snprintf(why, whylen, "cannot start TLS (server name '%s')", sni ? sni : "");
			close(fd);
			return HQ_EIO;
		}
	}
	link_start(l, fd, LK_DIAL);
	ev_io_set(l->loop, &l->io, EV_WRITE);
	return HQ_OK;
}

int brg_link_attach(struct brg_link *l, int fd)
{
	link_start(l, fd, LK_MQTT);
	l->hello = true;
	l->on_ready(l);
	if (l->st == LK_IDLE)
		return HQ_EIO;
	return flush(l);
}
