/*
 * net_tls.c - the TLS transport of ssl listeners over OpenSSL 3 (net_tls.h).
 *
 * Everything is non-blocking: OpenSSL reads and writes the socket itself
 * (SSL_set_fd) and reports WANT_READ / WANT_WRITE, which the caller turns into
 * epoll interest. Writes may be partial (SSL_MODE_ENABLE_PARTIAL_WRITE) and
 * retried from a moved buffer (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: the
 * connection's output buffer may grow between two attempts); idle
 * connections give their record buffers back (SSL_MODE_RELEASE_BUFFERS), so
 * a connected but silent TLS client costs little more than a TCP one.
 */
#include "net/net_tls.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"
#include "net/ev.h"
#include "net/xport.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_srv {
	/* the current context: replaced whole by a reload (SIGHUP), read by
	 * tls_conn_new on the workers. The lock covers the load and SSL_new's
	 * reference, so a replaced context is freed only by its last SSL. */
	pthread_mutex_t lock;
	SSL_CTX *ctx;
	bool cn_as_username;
	char name[80];            /* "ssl.<name>" or "wss.<name>" */
};

/* the client side: the same swap under a lock as tls_srv */
struct tls_cli {
	pthread_mutex_t lock;
	SSL_CTX *ctx;
};

struct tls_conn {
	struct xport xp;          /* first: the transport view (net/xport.h) */
	SSL *ssl;
	const struct tls_srv *srv;  /* NULL on a client connection */
	unsigned wants;           /* EV_READ / EV_WRITE of the last EAGAIN */
	bool established;
	char err[160];
};

/* ---- context ---- */

/* The reason of the newest error in this thread's queue, then clear it. */
static void take_error(char *out, size_t outlen, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	if (e && ERR_GET_LIB(e) == ERR_LIB_SYS)
		r = strerror(ERR_GET_REASON(e));
	snprintf(out, outlen, "%s", r ? r : fallback);
	ERR_clear_error();
}

static int srv_fail(const struct tls_opts *o, const char *key, const char *path,
		    char *err, size_t errlen, const char *fallback)
{
	char why[160];
	take_error(why, sizeof(why), "");
	const char *sep = why[0] ? " (OpenSSL: " : "", *end = why[0] ? ")" : "";
	if (path)
		snprintf(err, errlen, "%s%s: cannot load %s: %s%s%s%s", o->keys, key, path,
			 fallback, sep, why, end);
	else
		snprintf(err, errlen, "%s%s: %s%s%s%s", o->keys, key, fallback, sep, why, end);
	return HQ_EINVAL;
}

/* A file that is missing or unreadable is named with errno's words, which
 * say more than OpenSSL's "system lib". */
static bool readable(const struct tls_opts *o, const char *key, const char *path,
		     char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f) {
		fclose(f);
		return true;
	}
	snprintf(err, errlen, "%s%s: cannot load %s: %s", o->keys, key, path, strerror(errno));
	return false;
}

/* tls_versions ("1.2,1.3", checked by conf) as a min..max range. */
static void version_range(const char *v, int *min, int *max)
{
	bool v12 = strstr(v, "1.2") != NULL, v13 = strstr(v, "1.3") != NULL;
	*min = v12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	*max = v13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

/* One ciphers key for both protocol versions, as operators know it from
 * other brokers: TLS 1.3 suites (TLS_...) go to SSL_CTX_set_ciphersuites,
 * the others to SSL_CTX_set_cipher_list. */
static int set_ciphers(SSL_CTX *ctx, const struct tls_opts *o, char *err, size_t errlen)
{
	if (!o->ciphers[0])
		return HQ_OK;
	size_t n = strlen(o->ciphers) + 1;
	char *v13 = hq_calloc(1, n), *v12 = hq_calloc(1, n), *copy = hq_strdup(o->ciphers);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ":, ", &save); tok; tok = strtok_r(NULL, ":, ", &save)) {
		char *dst = strncmp(tok, "TLS_", 4) == 0 ? v13 : v12;
		if (*dst)
			strcat(dst, ":");
		strcat(dst, tok);
	}
	int rc = HQ_OK;
	if (*v13 && !SSL_CTX_set_ciphersuites(ctx, v13))
		rc = srv_fail(o, "ciphers", NULL, err, errlen, "no valid TLS 1.3 cipher suite");
	else if (*v12 && !SSL_CTX_set_cipher_list(ctx, v12))
		rc = srv_fail(o, "ciphers", NULL, err, errlen, "no valid TLS 1.2 cipher");
	hq_free(v13);
	hq_free(v12);
	hq_free(copy);
	return rc;
}

/* A server (or client) context from o, its files read now; NULL with err set.
 * A server always has a certificate; a client presents one if o has it. */
/* OpenSSL fills a certificate's extension data (key identifiers, ...) lazily,
 * on first use, in whichever worker's handshake gets there first, while
 * another worker's handshake may read it (TSan: a write under the store's
 * lock against a read in ASN1_STRING_cmp, two workers verifying client
 * certificates). Filled here, on one thread, before any handshake: the
 * handshakes only read it. */
static void warm_certs(SSL_CTX *ctx)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx));
	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		if (x)
			(void)X509_check_purpose(x, -1, 0);
	}
	X509 *leaf = SSL_CTX_get0_certificate(ctx);
	if (leaf)
		(void)X509_check_purpose(leaf, -1, 0);
	STACK_OF(X509) *chain = NULL;
	if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1)
		for (int i = 0; i < sk_X509_num(chain); i++)
			(void)X509_check_purpose(sk_X509_value(chain, i), -1, 0);
}

static SSL_CTX *ctx_build(const struct tls_opts *o, bool server, char *err, size_t errlen)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		srv_fail(o, "certfile", NULL, err, errlen, "cannot create an OpenSSL context");
		return NULL;
	}
	int min, max;
	version_range(o->tls_versions, &min, &max);
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_max_proto_version(ctx, max);
	/* a client that drops TCP without close_notify has just gone away
	 * (MQTT says so with DISCONNECT or not at all): not a TLS error */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
				 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	if (server) {
		/* resumed sessions must keep the listener's verify result */
		char sid[80];
		int sn = snprintf(sid, sizeof(sid), "hamqtt:%s", o->keys);
		SSL_CTX_set_session_id_context(ctx, (const unsigned char *)sid,
					       (unsigned)(sn < (int)SSL_MAX_SID_CTX_LENGTH ? sn : SSL_MAX_SID_CTX_LENGTH));
	}
	if (server || o->certfile[0]) {
		if (!readable(o, "certfile", o->certfile, err, errlen))
			goto fail;
		if (SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1) {
			srv_fail(o, "certfile", o->certfile, err, errlen, "not a PEM certificate");
			goto fail;
		}
		if (!readable(o, "keyfile", o->keyfile, err, errlen))
			goto fail;
		if (SSL_CTX_use_PrivateKey_file(ctx, o->keyfile, SSL_FILETYPE_PEM) != 1) {
			bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
			srv_fail(o, "keyfile", o->keyfile, err, errlen,
				 mismatch ? "the key does not match the certificate in certfile"
					  : "not a PEM private key");
			goto fail;
		}
		if (SSL_CTX_check_private_key(ctx) != 1) {
			srv_fail(o, "keyfile", o->keyfile, err, errlen,
				 "the key does not match the certificate in certfile");
			goto fail;
		}
	}
	if (o->cacertfile[0]) {
		if (!readable(o, "cacertfile", o->cacertfile, err, errlen))
			goto fail;
		if (SSL_CTX_load_verify_locations(ctx, o->cacertfile, NULL) != 1) {
			srv_fail(o, "cacertfile", o->cacertfile, err, errlen, "no PEM certificate");
			goto fail;
		}
		/* tell clients which CAs we accept, so they pick the right cert */
		STACK_OF(X509_NAME) *names = server ? SSL_load_client_CA_file(o->cacertfile) : NULL;
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (o->verify_peer)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
				   NULL);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (set_ciphers(ctx, o, err, errlen) != HQ_OK)
		goto fail;
	warm_certs(ctx);
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

/* A listener's keys as options; prefix holds "listeners.ssl.<name>." */
static struct tls_opts listener_opts(const struct conf_listener *L, char *prefix, size_t len)
{
	snprintf(prefix, len, "listeners.%s.%s.", conf_listener_type_name(L->type), L->name);
	return (struct tls_opts){ .keys = prefix, .certfile = L->certfile, .keyfile = L->keyfile,
				  .cacertfile = L->cacertfile, .tls_versions = L->tls_versions,
				  .ciphers = L->ciphers, .verify_peer = L->verify == CONF_VERIFY_PEER };
}

struct tls_srv *tls_srv_new_opts(const struct tls_opts *o, const char *name, char *err,
				 size_t errlen)
{
	SSL_CTX *ctx = ctx_build(o, true, err, errlen);
	if (!ctx)
		return NULL;
	struct tls_srv *s = hq_calloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->ctx = ctx;
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

struct tls_srv *tls_srv_new(const struct conf_listener *L, char *err, size_t errlen)
{
	char prefix[96], name[80];
	struct tls_opts o = listener_opts(L, prefix, sizeof(prefix));
	snprintf(name, sizeof(name), "%s.%s", conf_listener_type_name(L->type), L->name);
	struct tls_srv *s = tls_srv_new_opts(&o, name, err, errlen);
	if (s)
		s->cn_as_username = L->peer_cert_as_username == CONF_PCU_CN;
	return s;
}

/* Swap *slot for ctx under lock; the old context's last reference may be a
 * live connection's. */
static void ctx_swap(pthread_mutex_t *lock, SSL_CTX **slot, SSL_CTX *ctx)
{
	pthread_mutex_lock(lock);
	SSL_CTX *old = *slot;
	*slot = ctx;
	pthread_mutex_unlock(lock);
	SSL_CTX_free(old); /* the listener's reference; live connections keep theirs */
}

int tls_srv_reload_opts(struct tls_srv *s, const struct tls_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_build(o, true, err, errlen);
	if (!ctx)
		return HQ_EINVAL;
	ctx_swap(&s->lock, &s->ctx, ctx);
	return HQ_OK;
}

int tls_srv_reload(struct tls_srv *s, const struct conf_listener *L, char *err, size_t errlen)
{
	char prefix[96];
	struct tls_opts o = listener_opts(L, prefix, sizeof(prefix));
	return tls_srv_reload_opts(s, &o, err, errlen);
}

void tls_srv_free(struct tls_srv *s)
{
	if (!s)
		return;
	SSL_CTX_free(s->ctx);
	pthread_mutex_destroy(&s->lock);
	hq_free(s);
}

const char *tls_srv_name(const struct tls_srv *s)
{
	return s->name;
}

bool tls_srv_cn_as_username(const struct tls_srv *s)
{
	return s->cn_as_username;
}

/* ---- connections ---- */

/* A connection over fd on the current context behind lock (not yet
 * handshaken); NULL if OpenSSL cannot allocate one. */
static const struct xport_ops tls_xport_ops;

static struct tls_conn *conn_make(pthread_mutex_t *lock, SSL_CTX **ctx, int fd)
{
	pthread_mutex_lock(lock);
	SSL *ssl = SSL_new(*ctx); /* takes a reference on the context */
	pthread_mutex_unlock(lock);
	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) { /* a socket BIO with BIO_NOCLOSE */
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	struct tls_conn *t = hq_calloc(1, sizeof(*t));
	t->xp.ops = &tls_xport_ops;
	t->ssl = ssl;
	return t;
}

struct tls_conn *tls_conn_new(struct tls_srv *s, int fd)
{
	struct tls_conn *t = conn_make(&s->lock, &s->ctx, fd);
	if (!t)
		return NULL;
	SSL_set_accept_state(t->ssl);
	t->srv = s;
	return t;
}

/* ---- the client side ---- */

struct tls_cli *tls_cli_new(const struct tls_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_build(o, false, err, errlen);
	if (!ctx)
		return NULL;
	struct tls_cli *c = hq_calloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->ctx = ctx;
	return c;
}

int tls_cli_reload(struct tls_cli *c, const struct tls_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_build(o, false, err, errlen);
	if (!ctx)
		return HQ_EINVAL;
	ctx_swap(&c->lock, &c->ctx, ctx);
	return HQ_OK;
}

void tls_cli_free(struct tls_cli *c)
{
	if (!c)
		return;
	SSL_CTX_free(c->ctx);
	pthread_mutex_destroy(&c->lock);
	hq_free(c);
}

/* An IP literal (v4 or v6, no brackets)? Certificates name those in IP SANs. */
static bool is_ip(const char *host)
{
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
	bool yes = ip != NULL;
	ASN1_OCTET_STRING_free(ip);
	return yes;
}

struct tls_conn *tls_conn_new_client(struct tls_cli *c, int fd, const char *host)
{
	struct tls_conn *t = conn_make(&c->lock, &c->ctx, fd);
	if (!t)
		return NULL;
	SSL_set_connect_state(t->ssl);
	if (host && host[0]) {
		/* the name is checked during the handshake's certificate
		 * verification, so a mismatch fails it like an unknown CA */
		int ok = is_ip(host) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host)
				     : SSL_set1_host(t->ssl, host) &&
					       SSL_set_tlsext_host_name(t->ssl, host);
		if (ok != 1) {
			ERR_clear_error();
			tls_conn_free(t);
			return NULL;
		}
	}
	return t;
}

bool tls_peer_matches_host(const struct tls_conn *t, const char *host)
{
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	if (!cert || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return false;
	/* DNS names in subjectAltName (the subject CN only without any) */
	int r = is_ip(host) ? X509_check_ip_asc(cert, host, 0) : X509_check_host(cert, host, 0, 0, NULL);
	ERR_clear_error();
	return r == 1;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	hq_free(t);
}

const struct tls_srv *tls_conn_srv(const struct tls_conn *t)
{
	return t->srv;
}

/*
 * Map an SSL_* result r <= 0 to HQ_EAGAIN (t->wants set), HQ_ECLOSED (the
 * peer's close_notify or end of stream) or HQ_EIO (t->err set). The error
 * queue is left empty.
 */
static int classify(struct tls_conn *t, int r)
{
	int saved = errno;
	int e = SSL_get_error(t->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		t->wants = EV_READ;
		return HQ_EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		t->wants = EV_WRITE;
		return HQ_EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return HQ_ECLOSED;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error()) {
			take_error(t->err, sizeof(t->err), "system error");
		} else if (saved == 0) {
			ERR_clear_error();
			return HQ_ECLOSED; /* EOF */
		} else {
			snprintf(t->err, sizeof(t->err), "%s", strerror(saved));
		}
		return HQ_EIO;
	default: {
		long vr = SSL_get_verify_result(t->ssl);
		int reason = ERR_GET_REASON(ERR_peek_last_error());
		char why[120];
		take_error(why, sizeof(why), "TLS error");
		/* the first bytes were no TLS record at all: say what it likely was */
		if (!t->established && (reason == SSL_R_WRONG_VERSION_NUMBER ||
					reason == SSL_R_HTTP_REQUEST ||
					reason == SSL_R_PACKET_LENGTH_TOO_LONG))
			snprintf(t->err, sizeof(t->err), "%s (not TLS: %s)", why,
				 t->srv ? "a plain MQTT client?" : "the peer does not speak TLS");
		else if (vr != X509_V_OK)
			snprintf(t->err, sizeof(t->err), "%s: %s", why,
				 X509_verify_cert_error_string(vr));
		else
			snprintf(t->err, sizeof(t->err), "%s", why);
		return HQ_EIO;
	}
	}
}

int tls_handshake(struct tls_conn *t)
{
	if (t->established)
		return HQ_OK;
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		t->established = true;
		return HQ_OK;
	}
	int rc = classify(t, r);
	if (rc == HQ_ECLOSED)
		snprintf(t->err, sizeof(t->err), "connection closed during the handshake");
	return rc;
}

bool tls_established(const struct tls_conn *t)
{
	return t->established;
}

/* recv/send-like results from classify */
static ssize_t io_result(struct tls_conn *t, int r)
{
	int rc = classify(t, r);
	if (rc == HQ_ECLOSED)
		return 0;
	errno = rc == HQ_EAGAIN ? EAGAIN : EIO;
	return -1;
}

ssize_t tls_read(struct tls_conn *t, void *p, size_t n)
{
	/* a stale error of another libcrypto user on this thread would make
	 * SSL_get_error misreport this call */
	ERR_clear_error();
	errno = 0;
	int r = SSL_read(t->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
	return r > 0 ? r : io_result(t, r);
}

ssize_t tls_write(struct tls_conn *t, const void *p, size_t n)
{
	ERR_clear_error();
	errno = 0;
	int r = SSL_write(t->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
	if (r > 0)
		return r;
	ssize_t v = io_result(t, r);
	if (v == 0) { /* the peer's close_notify: writing is over too */
		snprintf(t->err, sizeof(t->err), "connection closed by peer");
		errno = EPIPE;
		return -1;
	}
	return v;
}

unsigned tls_wants(const struct tls_conn *t)
{
	return t->wants;
}

const char *tls_error(const struct tls_conn *t)
{
	return t->err[0] ? t->err : "TLS error";
}

void tls_shutdown(struct tls_conn *t)
{
	if (!t->established)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(t->ssl); /* one attempt: we do not wait for the peer's */
	ERR_clear_error();
}

int tls_peer_cn(const struct tls_conn *t, char *out, size_t outlen)
{
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	if (!cert || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return HQ_ENOTFOUND;
	X509_NAME *subj = X509_get_subject_name(cert);
	int i = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
	if (i < 0)
		return HQ_ENOTFOUND;
	ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
	unsigned char *u = NULL;
	int n = ASN1_STRING_to_UTF8(&u, d);
	int rc = HQ_ENOTFOUND;
	/* a CN with a NUL inside could pose as another user: refused */
	if (n > 0 && (size_t)n < outlen && memchr(u, 0, (size_t)n) == NULL) {
		memcpy(out, u, (size_t)n);
		out[n] = '\0';
		rc = HQ_OK;
	}
	OPENSSL_free(u);
	return rc;
}

const char *tls_version(const struct tls_conn *t)
{
	return SSL_get_version(t->ssl);
}

const char *tls_cipher(const struct tls_conn *t)
{
	return SSL_get_cipher_name(t->ssl);
}

/* ---- the transport view (net/xport.h) ---- */

static ssize_t xp_tls_read(struct xport *x, void *p, size_t n)
{
	return tls_read((struct tls_conn *)x, p, n);
}

static ssize_t xp_tls_write(struct xport *x, const void *p, size_t n)
{
	return tls_write((struct tls_conn *)x, p, n);
}

/* OpenSSL keeps nothing back: a partial write is reported as such */
static int xp_tls_flush(struct xport *x)
{
	(void)x;
	return HQ_OK;
}

static bool xp_tls_pending(const struct xport *x)
{
	(void)x;
	return false;
}

static unsigned xp_tls_wants(const struct xport *x)
{
	return tls_wants((const struct tls_conn *)x);
}

static const char *xp_tls_error(const struct xport *x)
{
	return tls_error((const struct tls_conn *)x);
}

static void xp_tls_shutdown(struct xport *x)
{
	tls_shutdown((struct tls_conn *)x);
}

static const struct xport_ops tls_xport_ops = {
	.read = xp_tls_read, .write = xp_tls_write, .flush = xp_tls_flush,
	.pending = xp_tls_pending, .wants = xp_tls_wants, .error = xp_tls_error,
	.shutdown = xp_tls_shutdown,
};

struct xport *tls_xport(struct tls_conn *t)
{
	return &t->xp;
}
