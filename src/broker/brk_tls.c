/*
 * brk_tls.c - the start of a connection on an ssl listener: the PROXY
 * protocol header (listener option proxy_protocol: HAProxy's send-proxy-v2
 * in front of TLS passthrough sends it in clear before the ClientHello),
 * then the non-blocking TLS handshake, driven by the worker's event loop.
 *
 * The connection stays CS_NEW throughout, so a client that does not finish
 * the handshake is closed by the same mqtt.connect_timeout as one that never
 * sends CONNECT (tick_cb). A failed handshake (a plain MQTT client, a missing
 * or untrusted client certificate, no common version or cipher) closes the
 * connection with one log line: client address, listener, OpenSSL's reason.
 */
#include "broker/brk_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/proxy.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

/*
 * The PROXY header is taken from the socket without reading past it: the
 * bytes after it are the TLS ClientHello and belong to OpenSSL. Bytes are
 * peeked; a header still incomplete has all the peeked bytes consumed into
 * c->in (they are header bytes, and consuming them keeps level-triggered
 * epoll from waking us again for the same bytes), a complete one has just
 * its remaining bytes consumed.
 */
static int tls_proxy_header(struct conn *c)
{
	uint8_t p[PROXY_V2_MAX];
	size_t have = buf_avail(&c->in);
	if (have)
		memcpy(p, buf_head(&c->in), have);
	ssize_t n = recv(c->io.fd, p + have, sizeof(p) - have, MSG_PEEK);
	if (n == 0) {
		conn_close(c, -1, "connection closed by peer");
		return HQ_ECLOSED;
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return HQ_EAGAIN;
		conn_close(c, -1, strerror(errno));
		return HQ_EIO;
	}
	size_t total = have + (size_t)n;
	/* conn_proxy_header closes (and logs) on a bad header */
	int r = conn_proxy_header(c, p, total);
	size_t take = r == HQ_EAGAIN ? (size_t)n : r > 0 ? (size_t)r - have : 0;
	if (r < 0 && r != HQ_EAGAIN)
		return r;
	if (recv(c->io.fd, p + have, take, 0) != (ssize_t)take) {
		conn_close(c, -1, "PROXY header read failed");
		return HQ_EIO;
	}
	if (r == HQ_EAGAIN) {
		buf_append(&c->in, p + have, take);
		return HQ_EAGAIN;
	}
	buf_free(&c->in);
	return HQ_OK;
}

/* After the handshake: the certificate's CN as the username, if asked. */
static int tls_established_cb(struct conn *c)
{
	const struct tls_srv *s = tls_conn_srv(c->tls);
	char cn[256] = "";
	if (tls_srv_cn_as_username(s)) {
		/* verify = peer (conf_validate): a verified certificate is there */
		if (tls_peer_cn(c->tls, cn, sizeof(cn)) != HQ_OK) {
			log_notice("TLS connection refused addr=%s listener=%s reason=\"the client "
				   "certificate has no usable CN (peer_cert_as_username = cn)\"",
				   c->addr, tls_srv_name(s));
			conn_close(c, -1, "client certificate without CN");
			return HQ_EAUTH;
		}
		c->username = hq_strdup(cn);
	}
	log_debug("TLS established addr=%s listener=%s version=%s cipher=%s%s%s", c->addr,
		  tls_srv_name(s), tls_version(c->tls), tls_cipher(c->tls),
		  c->username ? " cn=" : "", c->username ? c->username : "");
	return HQ_OK;
}

int conn_tls_handshake(struct conn *c)
{
	WK_ASSERT_OWNER(c->w);
	struct worker *w = c->w;
	if (c->expect_proxy) {
		int r = tls_proxy_header(c);
		if (r != HQ_OK)
			return r;
	}
	int r = tls_handshake(c->tls);
	if (r == HQ_EAGAIN) {
		ev_io_set(w->loop, &c->io, tls_wants(c->tls));
		return r;
	}
	if (r == HQ_ECLOSED) {
		/* a port probe or a health check: nothing worth a notice */
		log_debug("connection from %s on listener %s closed before the TLS handshake",
			  c->addr, tls_srv_name(tls_conn_srv(c->tls)));
		conn_close(c, -1, "connection closed by peer");
		return r;
	}
	if (r != HQ_OK) {
		log_notice("TLS handshake failed addr=%s listener=%s reason=\"%s\"", c->addr,
			   tls_srv_name(tls_conn_srv(c->tls)), tls_error(c->tls));
		conn_close(c, -1, "TLS handshake failed");
		return r;
	}
	ev_io_set(w->loop, &c->io, EV_READ);
	return tls_established_cb(c);
}
