/*
 * clu_link.c - one TCP link between two nodes: connect or accept, the
 * authenticated handshake (clu_proto.h "Link setup"), framing, heartbeats,
 * buffered writes. What a frame means is decided elsewhere: membership in
 * clu_node.c, routes and messages in clu_route.c.
 *
 * Handshake, as the protocol pins it: the initiator sends HELLO; the acceptor
 * answers HELLO (or REFUSE); the initiator sends AUTH; the acceptor verifies
 * and answers AUTH (or REFUSE); the initiator verifies. A proof is only ever
 * sent to a peer that has proven itself or will have to prove itself next
 * with nonces it cannot have chosen, and nothing but HELLO/AUTH/REFUSE is
 * accepted before both proofs checked out.
 *
 * With cluster.tls all of it runs inside TLS (clu_tls.c): the handshake
 * comes first (nothing is written before it completes, so the initiator's
 * HELLO waits in the output buffer), then the same frames through
 * tls_read/tls_write.
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/net_tls.h"
#include "net/sock.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void link_io_cb(struct ev_loop *loop, struct ev_io *io, unsigned events);

static struct clu_link *link_new(struct clu_node *n, int fd, bool initiator)
{
	struct clu_link *l = hq_calloc(1, sizeof(*l));
	l->n = n;
	l->initiator = initiator;
	l->opened_ms = l->last_rx_ms = l->last_tx_ms = clu_now(n);
	ev_io_init(&l->io, fd, link_io_cb, l);
	l->next = n->links;
	n->links = l;
	return l;
}

static const char *link_name(const struct clu_link *l)
{
	if (l->peer[0])
		return l->peer;
	if (l->m)
		return l->m->name;
	return l->addr;
}

void clu_link_send(struct clu_link *l, const struct clu_msg *m)
{
	if (l->st == LS_CLOSED)
		return;
	if (clu_encode(&l->out, m) != HQ_OK)
		log_error("cluster: cannot encode %s for %s", clu_type_name(m->type), link_name(l));
}

static void send_refuse(struct clu_link *l, uint8_t reason, const char *why)
{
	struct clu_msg m = { .type = CLU_MSG_REFUSE };
	m.refuse.reason = reason;
	m.refuse.why.p = why;
	m.refuse.why.len = strnlen(why, CLU_TEXT_MAX);
	clu_link_send(l, &m);
	l->close_after_flush = true;
	clu_link_write(l);
}

void clu_link_write(struct clu_link *l)
{
	if (l->st == LS_CLOSED || l->st == LS_CONNECTING)
		return;
	if (l->tls && !tls_established(l->tls))
		return; /* the handshake drives the socket (link_io_cb) */
	while (buf_avail(&l->out)) {
		/* a TLS retry after EAGAIN starts with the same bytes, as
		 * OpenSSL requires (the buffer only grows at its end) */
		ssize_t k = l->tls ? tls_write(l->tls, buf_head(&l->out), buf_avail(&l->out))
				   : send(l->io.fd, buf_head(&l->out), buf_avail(&l->out),
					  MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			buf_consume(&l->out, (size_t)k);
			if (l->m)
				l->m->st_bytes_out += (uint64_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_set(l->n->loop, &l->io, EV_READ | EV_WRITE);
			return;
		}
		if (l->tls && l->st != LS_UP) {
			clu_tls_failed(l, "write");
			return;
		}
		char why[200];
		clu_fmt(why, sizeof(why), "write failed: %s", l->tls ? tls_error(l->tls) : strerror(errno));
		clu_link_close(l, why);
		return;
	}
	buf_shrink(&l->out, 65536);
	if (l->close_after_flush) {
		clu_link_close(l, NULL);
		return;
	}
	ev_io_set(l->n->loop, &l->io, EV_READ | (l->tls_read_wants_write ? EV_WRITE : 0));
}

void clu_link_close(struct clu_link *l, const char *why)
{
	struct clu_node *n = l->n;
	if (l->st == LS_CLOSED)
		return;
	enum clu_link_state was = l->st;
	l->st = LS_CLOSED;
	ev_io_stop(n->loop, &l->io);
	clu_tls_close(l); /* close_notify, before the fd goes */
	close(l->io.fd);
	l->io.fd = -1;
	if (was == LS_UP) {
		clu_on_link_down(n, l, why ? why : "closed");
	} else if (l->initiator && l->m && l->m->dial == l) {
		struct clu_peer *m = l->m;
		m->dial = NULL;
		if (why)
			clu_fmt(m->last_error, sizeof(m->last_error), "%s", why);
		log_debug("cluster: link to %s not established: %s", m->name, why ? why : "closed");
		clu_on_dial_failed(n, m, 0);
	} else if (why) {
		log_debug("cluster: link from %s closed during setup: %s", link_name(l), why);
	}
	/* unlink from the live list, free in before-sleep */
	for (struct clu_link **p = &n->links; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			break;
		}
	}
	l->free_next = n->closed;
	n->closed = l;
}

void clu_link_free(struct clu_link *l)
{
	buf_free(&l->in);
	buf_free(&l->out);
	hq_free(l->bars);
	hq_free(l);
}

/* ---- outgoing ---- */

void clu_link_dial(struct clu_node *n, struct clu_peer *m, bool join)
{
	char host[CLU_NAME_MAX + 1], portstr[16];
	int port;
	if (conf_parse_hostport(m->addr, host, sizeof(host), &port) != HQ_OK || port <= 0) {
		clu_fmt(m->last_error, sizeof(m->last_error), "bad address '%s'", m->addr);
		clu_on_dial_failed(n, m, 0);
		return;
	}
	clu_fmt(portstr, sizeof(portstr), "%d", port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	/* a numeric address never blocks; a DNS name may (the cluster thread
	 * waits for the resolver, see ARCHITECTURE.md "The cluster"; DNS
	 * discovery resolves on a thread of its own and yields numeric names,
	 * or with SRV host names resolved here at every dial, never cached, so a
	 * restarted pod with a new address is reached again) */
	int gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0 || !res) {
		clu_fmt(m->last_error, sizeof(m->last_error), "cannot resolve %s: %s", host,
			 gai_strerror(gai));
		clu_on_dial_failed(n, m, 0);
		return;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		clu_fmt(m->last_error, sizeof(m->last_error), "socket: %s", strerror(errno));
		freeaddrinfo(res);
		clu_on_dial_failed(n, m, 0);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = connect(fd, res->ai_addr, res->ai_addrlen);
	struct clu_link *l = link_new(n, fd, true);
	sock_addr_str(res->ai_addr, l->addr, sizeof(l->addr));
	freeaddrinfo(res);
	l->m = m;
	l->join = join;
	m->dial = l;
	l->st = LS_CONNECTING;
	if (rc < 0 && errno != EINPROGRESS) {
		char why[256];
		clu_fmt(why, sizeof(why), "cannot reach %s at %s: %s", m->name, m->addr,
			 strerror(errno));
		clu_link_close(l, why);
		return;
	}
	ev_io_set(n->loop, &l->io, EV_WRITE);
}

static void send_hello(struct clu_link *l)
{
	struct clu_node *n = l->n;
	struct clu_peer *self = n->m[0];
	struct clu_msg m = { .type = CLU_MSG_HELLO };
	m.hello.proto = CLU_PROTO_VERSION;
	m.hello.node = clu_str(self->name);
	m.hello.cluster = clu_str(n->cfg->cluster_name);
	m.hello.addr = clu_str(self->addr);
	m.hello.incarnation = self->incarnation;
	memcpy(m.hello.nonce, l->initiator ? l->nonce_a : l->nonce_b, CLU_NONCE_LEN);
	m.hello.join = l->initiator && l->join;
	clu_link_send(l, &m);
}

static void connected(struct clu_link *l)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(l->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		char why[256];
		clu_fmt(why, sizeof(why), "cannot reach %s at %s: %s", l->m->name, l->m->addr,
			 strerror(err));
		clu_link_close(l, why);
		return;
	}
	if (clu_auth_nonce(l->nonce_a) != HQ_OK) {
		clu_link_close(l, "no random bytes for the nonce");
		return;
	}
	l->st = LS_WAIT_HELLO;
	send_hello(l);
	if (l->n->tls_cli) {
		if (clu_tls_attach(l) != HQ_OK) {
			clu_link_close(l, "cannot create a TLS connection (out of memory?)");
			return;
		}
		if (clu_tls_ready(l)) /* the HELLO goes once TLS is up */
			clu_link_write(l);
		return;
	}
	clu_link_write(l);
}

void clu_link_accept(struct clu_node *n, int fd, const char *addr)
{
	struct clu_link *l = link_new(n, fd, false);
	clu_fmt(l->addr, sizeof(l->addr), "%s", addr);
	l->st = LS_WAIT_HELLO;
	ev_io_set(n->loop, &l->io, EV_READ);
	if (n->tls_srv && clu_tls_attach(l) != HQ_OK)
		clu_link_close(l, "cannot create a TLS connection (out of memory?)");
}

/* ---- handshake ---- */

static void auth_send(struct clu_link *l)
{
	struct clu_node *n = l->n;
	struct clu_msg m = { .type = CLU_MSG_AUTH };
	if (clu_auth_proof(n->cfg->node_cookie, clu_str(n->m[0]->name), clu_str(l->peer),
			   l->nonce_a, l->nonce_b, m.proof) != HQ_OK) {
		clu_link_close(l, "cannot compute the authentication proof (node.cookie empty?)");
		return;
	}
	clu_link_send(l, &m);
}

static void on_hello(struct clu_link *l, const struct clu_hello *h)
{
	struct clu_node *n = l->n;
	char why[256];
	clu_fmt(l->peer, sizeof(l->peer), "%.*s", (int)h->node.len, h->node.p);
	clu_fmt(l->peer_addr, sizeof(l->peer_addr), "%.*s", (int)h->addr.len, h->addr.p);
	l->peer_inc = h->incarnation;
	bool same_cluster = h->cluster.len == strlen(n->cfg->cluster_name) &&
			    !memcmp(h->cluster.p, n->cfg->cluster_name, h->cluster.len);
	if (!l->initiator) {
		uint8_t reason = 0;
		if ((l->tls || l->refuse_plain) && clu_tls_check_hello(l, why, sizeof(why)) != HQ_OK) {
			send_refuse(l, CLU_REFUSE_TLS, why); /* logged by the check */
			return;
		}
		if (!same_cluster) {
			reason = CLU_REFUSE_CLUSTER;
			clu_fmt(why, sizeof(why), "cluster name differs: this is '%s', you are in '%.*s'",
				 n->cfg->cluster_name, (int)h->cluster.len, h->cluster.p);
		} else if (clu_on_hello(n, l, h, &reason, why, sizeof(why)) == HQ_OK) {
			memcpy(l->nonce_a, h->nonce, CLU_NONCE_LEN);
			if (clu_auth_nonce(l->nonce_b) != HQ_OK) {
				clu_link_close(l, "no random bytes for the nonce");
				return;
			}
			send_hello(l);
			l->st = LS_WAIT_AUTH;
			return;
		}
		if (reason == CLU_REFUSE_BUSY)
			log_debug("cluster: link from %s (%s) refused: %s", l->peer, l->addr, why);
		else
			log_warning("cluster: refused link from %s (%s): %s", l->peer, l->addr, why);
		send_refuse(l, reason, why);
		return;
	}
	/* initiator: the node we dialed answered */
	if (!same_cluster) {
		clu_fmt(why, sizeof(why), "%s is in another cluster: its cluster name is '%.*s', ours '%s'",
			 l->peer, (int)h->cluster.len, h->cluster.p, n->cfg->cluster_name);
		log_warning("cluster: %s", why);
		clu_link_close(l, why);
		return;
	}
	if (l->m && strcmp(l->m->name, l->peer) != 0) {
		clu_fmt(why, sizeof(why), "%s answered as %s", l->m->name, l->peer);
		log_warning("cluster: %s", why);
		clu_link_close(l, why);
		return;
	}
	memcpy(l->nonce_b, h->nonce, CLU_NONCE_LEN);
	auth_send(l);
	l->st = LS_WAIT_AUTH;
}

static void on_auth(struct clu_link *l, const uint8_t proof[CLU_PROOF_LEN])
{
	struct clu_node *n = l->n;
	int rc = clu_auth_verify(n->cfg->node_cookie, clu_str(n->m[0]->name), clu_str(l->peer),
				 l->nonce_a, l->nonce_b, proof);
	if (rc != HQ_OK) {
		char why[256];
		clu_fmt(why, sizeof(why), "%s failed authentication: node.cookie differs", l->peer);
		log_warning("cluster: refused link from %s (%s): wrong cookie (node.cookie differs)",
			    l->peer, l->addr);
		if (!l->initiator) {
			send_refuse(l, CLU_REFUSE_AUTH, "authentication failed: node.cookie differs");
		} else {
			clu_link_close(l, why);
		}
		return;
	}
	if (!l->initiator) {
		auth_send(l);
		if (l->st == LS_CLOSED)
			return;
	}
	l->st = LS_UP;
	clu_on_link_up(n, l);
}

static void on_refuse(struct clu_link *l, const struct clu_refuse *r)
{
	char why[320];
	const char *what = r->reason == CLU_REFUSE_AUTH ? "wrong cookie (node.cookie differs)"
			 : r->reason == CLU_REFUSE_CLUSTER ? "other cluster name"
			 : r->reason == CLU_REFUSE_VERSION ? "protocol version"
			 : r->reason == CLU_REFUSE_REMOVED ? "removed from the cluster"
			 : r->reason == CLU_REFUSE_NAME ? "node name clash"
			 : r->reason == CLU_REFUSE_TLS ? "TLS (cluster.tls differs)" : "busy";
	clu_fmt(why, sizeof(why), "%s refused the link: %s (%.*s)", link_name(l), what,
		 (int)r->why.len, r->why.p);
	if (r->reason == CLU_REFUSE_BUSY)
		log_debug("cluster: %s", why);
	else
		log_warning("cluster: %s", why);
	struct clu_peer *m = l->initiator ? l->m : NULL;
	if (m && m->dial == l) {
		m->dial = NULL;
		l->m = NULL;
		clu_fmt(m->last_error, sizeof(m->last_error), "%s", why);
		clu_link_close(l, NULL);
		clu_on_dial_failed(l->n, m, r->reason);
		return;
	}
	clu_link_close(l, why);
}

/* ---- input ---- */

static void on_frame(struct clu_link *l, const struct clu_msg *m)
{
	struct clu_node *n = l->n;
	if (m->type == CLU_MSG_REFUSE) {
		on_refuse(l, &m->refuse);
		return;
	}
	switch (l->st) {
	case LS_WAIT_HELLO:
		if (m->type != CLU_MSG_HELLO)
			break;
		on_hello(l, &m->hello);
		return;
	case LS_WAIT_AUTH:
		if (m->type != CLU_MSG_AUTH)
			break;
		on_auth(l, m->proof);
		return;
	case LS_UP:
		switch (m->type) {
		case CLU_MSG_HELLO:
		case CLU_MSG_AUTH:
			break;
		case CLU_MSG_HEARTBEAT:
			clu_stats_heartbeat(l, &m->hb);
			return;
		case CLU_MSG_LEAVE:
			clu_on_leave(n, l, &m->leave);
			return;
		case CLU_MSG_MEMBERS:
			clu_on_members(n, l, m->list);
			return;
		case CLU_MSG_RETAIN_SET:
			clu_retain_frame(n, l, m->list);
			return;
		case CLU_MSG_REPL_SET:
			clu_repl_frame(n, l, m->list);
			return;
		case CLU_MSG_TAKEOVER_REQ:
		case CLU_MSG_TAKEOVER_RESP:
			clu_takeover_frame(n, l, m);
			return;
		case CLU_MSG_CLIENTS:
			clu_takeover_clients(n, l, m->list);
			return;
		case CLU_MSG_RPC_REQ:
		case CLU_MSG_RPC_RESP:
			clu_rpc_frame(n, l, m);
			return;
		default:
			clu_route_frame(n, l, m);
			return;
		}
		break;
	default:
		break;
	}
	char why[128];
	clu_fmt(why, sizeof(why), "unexpected %s", clu_type_name(m->type));
	log_warning("cluster: link %s (%s): %s", link_name(l), l->addr, why);
	clu_link_close(l, why);
}

/* A node without cluster.tls reading a TLS ClientHello where a HELLO
 * should be: say so (both logs), rather than "bad frame". */
static bool plain_meets_tls(const struct clu_link *l)
{
	return !l->initiator && !l->n->tls_srv && l->st == LS_WAIT_HELLO && buf_avail(&l->in) &&
	       buf_head(&l->in)[0] == 0x16;
}

static void link_read(struct clu_link *l)
{
	struct clu_node *n = l->n;
	for (int rounds = 0; rounds < 16 && l->st != LS_CLOSED; rounds++) {
		uint8_t *p = buf_reserve(&l->in, 65536);
		ssize_t k = l->tls ? tls_read(l->tls, p, 65536) : recv(l->io.fd, p, 65536, MSG_DONTWAIT);
		if (k == 0) {
			clu_link_close(l, "closed by the peer");
			return;
		}
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (l->tls && tls_wants(l->tls) == EV_WRITE) {
					l->tls_read_wants_write = true;
					ev_io_set(n->loop, &l->io, EV_READ | EV_WRITE);
				}
				break;
			}
			if (l->tls && l->st != LS_UP) {
				/* e.g. the acceptor's alert about our certificate,
				 * which TLS 1.3 sends after our side completed */
				clu_tls_failed(l, "setup");
				return;
			}
			char why[200];
			clu_fmt(why, sizeof(why), "read failed: %s",
				 l->tls ? tls_error(l->tls) : strerror(errno));
			clu_link_close(l, why);
			return;
		}
		l->in.len += (size_t)k;
		l->last_rx_ms = clu_now(n);
		if (l->m)
			l->m->st_bytes_in += (uint64_t)k;
		size_t max = l->st == LS_UP ? CLU_MAX_BODY : CLU_HANDSHAKE_MAX_BODY;
		while (l->st != LS_CLOSED && !l->close_after_flush) {
			struct clu_msg m;
			size_t used = 0;
			int rc = clu_decode(buf_head(&l->in), buf_avail(&l->in), max, &m, &used);
			if (rc == HQ_EAGAIN)
				break;
			if (rc != HQ_OK && plain_meets_tls(l)) {
				log_warning("cluster: refused link from %s: it speaks TLS, this node "
					    "does not (cluster.tls.enable = true there, false here)",
					    l->addr);
				send_refuse(l, CLU_REFUSE_TLS,
					    "this node does not use TLS on cluster links");
				return;
			}
			if (rc != HQ_OK) {
				char why[128];
				clu_fmt(why, sizeof(why), "bad frame from the peer (%s)", hq_strerror(rc));
				log_warning("cluster: link %s (%s): %s", link_name(l), l->addr, why);
				if (l->st != LS_UP && rc == HQ_EVERSION)
					send_refuse(l, CLU_REFUSE_VERSION, "protocol version not spoken");
				else
					clu_link_close(l, why);
				return;
			}
			on_frame(l, &m);
			if (l->st == LS_CLOSED)
				return;
			buf_consume(&l->in, used);
		}
		if ((size_t)k < 65536 && !l->tls)
			break; /* (a TLS read returns one record: go on to EAGAIN) */
	}
	if (l->st != LS_CLOSED && !buf_avail(&l->in))
		buf_shrink(&l->in, 65536);
}

static void link_io_cb(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
	struct clu_link *l = io->arg;
	(void)loop;
	if (l->st == LS_CONNECTING) {
		if (events & (EV_WRITE | EV_ERROR))
			connected(l);
		return;
	}
	if (l->tls || l->refuse_plain) {
		/* TLS: the handshake first; then either direction may wait
		 * for either event, so both are tried on any */
		if (l->tls && !tls_established(l->tls) && !clu_tls_ready(l))
			return;
		l->tls_read_wants_write = false;
		link_read(l);
		if (l->st != LS_CLOSED)
			clu_link_write(l);
		return;
	}
	if (events & (EV_READ | EV_ERROR))
		link_read(l);
	if (l->st != LS_CLOSED && (events & EV_WRITE))
		clu_link_write(l);
}

/* ---- timers ---- */

void clu_link_tick(struct clu_node *n, int64_t now)
{
	int64_t timeout = (int64_t)n->cfg->cluster_heartbeat_timeout * 1000;
	int64_t every = timeout / 4;
	if (every < 200)
		every = 200;
	if (every > 1000)
		every = 1000;
	struct clu_link *l = n->links, *next;
	for (; l; l = next) {
		next = l->next;
		if (l->st != LS_UP) {
			if (now - l->opened_ms > CLU_HANDSHAKE_TIMEOUT_MS) {
				char why[128];
				clu_fmt(why, sizeof(why), "no answer from %s within %d s", link_name(l),
					 CLU_HANDSHAKE_TIMEOUT_MS / 1000);
				clu_link_close(l, why);
			}
			continue;
		}
		if (now - l->last_rx_ms > timeout) {
			char why[128];
			clu_fmt(why, sizeof(why), "no heartbeat for %lld ms", (long long)(now - l->last_rx_ms));
			clu_link_close(l, why);
			continue;
		}
		/* a busy link sends no idle heartbeat: probe it anyway, for the RTT */
		if (now - l->last_tx_ms >= every ||
		    (l->m && now - l->m->probe_ms >= CLU_PROBE_EVERY_MS))
			clu_stats_probe(l, now);
	}
}
