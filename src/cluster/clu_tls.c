/*
 * clu_tls.c - TLS on cluster links (cluster.tls.*): the node's two contexts
 * and the TLS part of a link's setup. clu_link.c calls in here; the TLS
 * itself is net/net_tls.h (no cluster types there).
 *
 * Mutual: a node presents cluster.tls.certfile both as the server of the
 * links it accepts and as the client of those it dials, and requires the
 * peer's to be signed by cluster.tls.cacertfile. With verify_hostname the
 * dialer's OpenSSL checks that the accepted node's certificate names the host
 * it dialed (the host part of the member's name), and the acceptor checks
 * that the dialer's names the host in the node name of its HELLO; a mismatch
 * is refused with REFUSE TLS. The cookie challenge (clu_auth.c) then runs
 * inside TLS as on a plain link: a certificate admits a machine, the cookie
 * a member of this cluster.
 *
 * Mixed clusters are refused on both sides with a clear line: an acceptor
 * with TLS peeks at the first byte (0x16 starts a TLS record, CLU_MAGIC a
 * plain frame) and answers a plain peer's HELLO with REFUSE TLS in the clear;
 * an acceptor without TLS recognises a ClientHello the same way (clu_link.c)
 * and answers REFUSE TLS, which the dialer's handshake reports as "not TLS".
 *
 * Threads: contexts are built on the main thread at start and on SIGHUP
 * (clu_reload_tls: swapped under net_tls's lock, so only links set up
 * afterwards use the new files); everything else runs on the cluster thread.
 */
#include "cluster/clu_int.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "net/net_tls.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define TLS_RECORD_HANDSHAKE 0x16

static struct tls_opts opts(const struct hq_config *cfg)
{
	return (struct tls_opts){ .keys = "cluster.tls.",
				  .certfile = cfg->cluster_tls_certfile,
				  .keyfile = cfg->cluster_tls_keyfile,
				  .cacertfile = cfg->cluster_tls_cacertfile,
				  .tls_versions = cfg->cluster_tls_tls_versions,
				  .ciphers = cfg->cluster_tls_ciphers,
				  .verify_peer = true };
}

int clu_tls_init(struct clu_node *n, char *err, size_t errlen)
{
	if (!n->cfg->cluster_tls_enable)
		return HQ_OK;
	struct tls_opts o = opts(n->cfg);
	n->tls_srv = tls_srv_new_opts(&o, "cluster", err, errlen);
	if (!n->tls_srv)
		return HQ_EINVAL;
	n->tls_cli = tls_cli_new(&o, err, errlen);
	if (!n->tls_cli)
		return HQ_EINVAL;
	return HQ_OK;
}

void clu_tls_free(struct clu_node *n)
{
	tls_srv_free(n->tls_srv);
	tls_cli_free(n->tls_cli);
	n->tls_srv = NULL;
	n->tls_cli = NULL;
}

int clu_reload_tls(struct clu_node *n)
{
	if (!n || !n->tls_srv)
		return 0;
	char err[CONF_ERR_MAX];
	struct tls_opts o = opts(n->cfg);
	if (tls_srv_reload_opts(n->tls_srv, &o, err, sizeof(err)) != HQ_OK ||
	    tls_cli_reload(n->tls_cli, &o, err, sizeof(err)) != HQ_OK) {
		/* the server side may be new and the client side old: both
		 * come from the same files, so a second SIGHUP after the fix
		 * makes them agree again */
		log_error("cluster: TLS reload failed, links keep the previous certificates: %s",
			  err);
		return 1;
	}
	log_notice("cluster: TLS certificates reloaded (for links set up from now on)");
	return 0;
}

/* The host part of a node name "name@host" ("[v6]" without brackets). */
static void name_host(const char *name, char *out, size_t outlen)
{
	const char *at = strchr(name, '@');
	const char *h = at ? at + 1 : name;
	size_t len = strlen(h);
	if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
		h++;
		len -= 2;
	}
	clu_fmt(out, outlen, "%.*s", (int)len, h);
}

int clu_tls_attach(struct clu_link *l)
{
	struct clu_node *n = l->n;
	if (!l->initiator) {
		l->tls = tls_conn_new(n->tls_srv, l->io.fd);
		return l->tls ? HQ_OK : HQ_ENOMEM;
	}
	char host[CLU_NAME_MAX + 1];
	name_host(l->m->name, host, sizeof(host));
	l->tls = tls_conn_new_client(n->tls_cli, l->io.fd,
				     n->cfg->cluster_tls_verify_hostname ? host : NULL);
	return l->tls ? HQ_OK : HQ_ENOMEM;
}

/* Log a setup failure of ours at warning once per distinct reason and
 * member (a dialer retries every second), else at debug. */
static void log_dial_failure(struct clu_link *l, const char *why)
{
	struct clu_peer *m = l->m;
	if (m && strcmp(m->last_error, why) == 0)
		log_debug("cluster: link to %s (%s): %s", m->name, l->addr, why);
	else
		log_warning("cluster: link to %s (%s): %s", m ? m->name : "?", l->addr, why);
}

void clu_tls_failed(struct clu_link *l, const char *what)
{
	char why[320];
	clu_fmt(why, sizeof(why), "TLS %s failed: %s", what, tls_error(l->tls));
	if (l->initiator)
		log_dial_failure(l, why);
	else
		log_warning("cluster: refused link from %s%s%s: %s", l->peer[0] ? l->peer : "",
			    l->peer[0] ? " " : "", l->addr, why);
	clu_link_close(l, why);
}

bool clu_tls_ready(struct clu_link *l)
{
	if (!l->initiator && !l->tls_checked) {
		uint8_t first;
		ssize_t k = recv(l->io.fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return false;
		if (k <= 0) {
			clu_link_close(l, "closed before the TLS handshake");
			return false;
		}
		l->tls_checked = true;
		if (first != TLS_RECORD_HANDSHAKE) {
			/* a plain node: read its HELLO in the clear, to refuse
			 * it by name in both logs (on_hello) */
			tls_conn_free(l->tls);
			l->tls = NULL;
			l->refuse_plain = true;
			return true;
		}
	}
	int rc = tls_handshake(l->tls);
	if (rc == HQ_OK) {
		log_debug("cluster: TLS with %s (%s): %s %s", l->initiator ? l->m->name : "peer",
			  l->addr, tls_version(l->tls), tls_cipher(l->tls));
		return true;
	}
	if (rc == HQ_EAGAIN) {
		ev_io_set(l->n->loop, &l->io, tls_wants(l->tls));
		return false;
	}
	clu_tls_failed(l, "handshake");
	return false;
}

int clu_tls_check_hello(struct clu_link *l, char *why, size_t len)
{
	struct clu_node *n = l->n;
	if (l->refuse_plain) {
		log_warning("cluster: refused link from %s (%s): it does not use TLS "
			    "(cluster.tls.enable = false there, true here)", l->peer, l->addr);
		clu_fmt(why, len, "this node requires TLS on cluster links (cluster.tls.enable)");
		return HQ_EAUTH;
	}
	if (!l->tls || !n->cfg->cluster_tls_verify_hostname)
		return HQ_OK;
	char host[CLU_NAME_MAX + 1];
	name_host(l->peer, host, sizeof(host));
	if (tls_peer_matches_host(l->tls, host))
		return HQ_OK;
	log_warning("cluster: refused link from %s (%s): its certificate does not name %s "
		    "(cluster.tls.verify_hostname)", l->peer, l->addr, host);
	clu_fmt(why, len, "your certificate does not name %s (cluster.tls.verify_hostname)", host);
	return HQ_EAUTH;
}

void clu_tls_close(struct clu_link *l)
{
	if (!l->tls)
		return;
	tls_shutdown(l->tls);
	tls_conn_free(l->tls);
	l->tls = NULL;
}
