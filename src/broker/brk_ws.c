/*
 * brk_ws.c - the transport of a connection on ssl, ws and wss listeners:
 * building its layers (net/xport.h) and driving their handshakes from the
 * worker's event loop, in order: the PROXY protocol header (in clear, before
 * anything else), the TLS handshake (ssl, wss: brk_tls.c), the WebSocket
 * upgrade (ws, wss: the HTTP/1.1 request parsed by net/net_ws_hs.c).
 *
 * The connection stays CS_NEW throughout, so a client that does not finish
 * its handshakes within mqtt.connect_timeout is closed like one that never
 * sends CONNECT (tick_cb); the HTTP request is bounded to WS_HS_MAX bytes.
 * A refused upgrade (wrong path, no upgrade, bad version or key, unknown
 * subprotocol, headers too large) gets its HTTP status, one notice line
 * (address, listener, status, target, reason) and a lingering close; nothing
 * else is touched. Once established, MQTT sees a byte stream (brk_conn.c).
 *
 * Threading: everything here runs on the connection's worker.
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/net_ws_hs.h"
#include "net/proxy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *listener_name(const struct conn *c)
{
	if (c->ws)
		return ws_conn_name(c->ws);
	return c->tls ? tls_srv_name(tls_conn_srv(c->tls)) : "tcp";
}

int conn_xp_new(struct conn *c, struct tls_srv *tls, const struct conf_listener *L)
{
	if (tls) {
		c->tls = tls_conn_new(tls, c->io.fd);
		if (!c->tls) {
			log_warning("cannot start TLS for a connection from %s on listener %s",
				    c->addr, tls_srv_name(tls));
			return HQ_ENOMEM;
		}
		c->xp = tls_xport(c->tls);
	}
	if (L->type == CONF_LT_WS || L->type == CONF_LT_WSS) {
		char name[80];
		snprintf(name, sizeof(name), "%s.%s", conf_listener_type_name(L->type), L->name);
		c->ws = ws_conn_new(c->io.fd, c->xp, name, L->ws_path);
		c->xp = ws_xport(c->ws);
	}
	return HQ_OK;
}

void conn_xp_free(struct conn *c)
{
	ws_conn_free(c->ws); /* first: it reads and writes through the TLS layer */
	tls_conn_free(c->tls);
	c->ws = NULL;
	c->tls = NULL;
	c->xp = NULL;
}

ssize_t conn_xp_raw_write(struct conn *c, const void *p, size_t n)
{
	if (c->tls && tls_established(c->tls))
		return tls_write(c->tls, p, n);
	errno = EAGAIN;
	return -1;
}

void conn_xp_failed(struct conn *c)
{
	const char *why = xp_error(c->xp);
	/* an active client's close is logged by conn_close with this reason;
	 * before CONNECT that line is debug only, but a WebSocket protocol
	 * error deserves a notice */
	if (c->ws && c->state != CS_ACTIVE && !c->client_id)
		log_notice("WebSocket connection closed addr=%s listener=%s reason=\"%s\"", c->addr,
			   listener_name(c), why);
	conn_close(c, -1, why);
}

/* The upgrade request is complete: answer it. */
static int ws_answer(struct conn *c, const struct ws_hs *h)
{
	char resp[WS_HS_RESPONSE_MAX];
	size_t rn = ws_hs_response(h, resp, sizeof(resp));
	if (h->status != 101) {
		log_notice("WebSocket upgrade refused addr=%s listener=%s status=%d target=\"%s\" "
			   "reason=\"%s\"", c->addr, listener_name(c), h->status, h->target,
			   h->reason);
		buf_free(&c->in);
		/* conn_close writes it (through TLS on wss) and lingers, so the
		 * client reads the status even while it is still sending */
		buf_append(&c->out, resp, rn);
		conn_close(c, -1, h->reason);
		return HQ_EPROTOCOL;
	}
	if (ws_conn_open(c->ws, resp, rn, buf_head(&c->in) + h->len,
			 buf_avail(&c->in) - h->len) != HQ_OK) {
		log_warning("cannot start WebSocket for a connection from %s on listener %s",
			    c->addr, listener_name(c));
		conn_close(c, -1, "WebSocket setup failed");
		return HQ_ENOMEM;
	}
	buf_free(&c->in);
	log_debug("WebSocket upgrade addr=%s listener=%s subprotocol=%s", c->addr,
		  listener_name(c), h->proto ? h->proto : "(none)");
	/* the 101 goes out now; the client waits for it before its CONNECT */
	int r = xp_flush(c->xp);
	if (r == HQ_EIO) {
		conn_xp_failed(c);
		return HQ_EIO;
	}
	ev_io_set(c->w->loop, &c->io, EV_READ | (r == HQ_EAGAIN ? xp_wants(c->xp) : 0));
	return HQ_OK;
}

/* Read the PROXY header (ws: it comes before the request; on wss the TLS
 * step took it) and the HTTP upgrade request into c->in, then answer. */
static int ws_handshake(struct conn *c)
{
	struct ws_conn *ws = c->ws;
	for (int i = 0; i < 64; i++) {
		size_t have = buf_avail(&c->in), cap = WS_HS_MAX + PROXY_V2_MAX;
		if (have < cap) {
			uint8_t *p = buf_reserve(&c->in, cap - have);
			ssize_t n = ws_raw_read(ws, p, cap - have);
			if (n == 0) {
				log_debug("connection from %s on listener %s closed before the "
					  "WebSocket upgrade", c->addr, listener_name(c));
				conn_close(c, -1, "connection closed by peer");
				return HQ_ECLOSED;
			}
			if (n < 0 && errno == EAGAIN) {
				ev_io_set(c->w->loop, &c->io, ws_raw_wants(ws));
				return HQ_EAGAIN;
			}
			if (n < 0) {
				log_notice("WebSocket upgrade failed addr=%s listener=%s reason=\"%s\"",
					   c->addr, listener_name(c), ws_raw_error(ws));
				conn_close(c, -1, "read failed before the WebSocket upgrade");
				return HQ_EIO;
			}
			c->in.len += (size_t)n;
		}
		if (c->expect_proxy) {
			/* conn_proxy_header closes (and logs) on a bad header */
			int r = conn_proxy_header(c, buf_head(&c->in), buf_avail(&c->in));
			if (r == HQ_EAGAIN)
				continue;
			if (r < 0)
				return r;
			buf_consume(&c->in, (size_t)r);
		}
		struct ws_hs h;
		if (ws_hs_parse(buf_head(&c->in), buf_avail(&c->in), ws_conn_path(ws), &h) == HQ_OK)
			return ws_answer(c, &h);
	}
	return HQ_EAGAIN; /* level-triggered: the rest comes with the next event */
}

int conn_xp_start(struct conn *c)
{
	WK_ASSERT_OWNER(c->w);
	if (c->tls && !tls_established(c->tls)) {
		int r = conn_tls_handshake(c);
		if (r != HQ_OK)
			return r;
	}
	if (c->ws && !ws_conn_is_open(c->ws)) {
		int r = ws_handshake(c);
		if (r != HQ_OK)
			return r;
	}
	c->xp_ready = true;
	return HQ_OK;
}
