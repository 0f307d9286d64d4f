/*
 * tls.c - hamqtt-bench's TLS client (OpenSSL 3): one SSL_CTX per process,
 * one SSL per connection, driven by the same non-blocking epoll loop as TCP.
 *
 * Every call maps OpenSSL's outcome onto what client.c expects of recv/send:
 * > 0 bytes, 0 for an orderly end (read only), -1 with errno = EAGAIN when
 * the call must be retried once the socket is ready, or another errno (the
 * reason is in b->err via the caller) for a failure. What the retry waits
 * for is left in c->tls_wait: EV_READ or EV_WRITE. A TLS write may have to
 * wait for input (SSL_ERROR_WANT_READ) and a read for output room
 * (SSL_ERROR_WANT_WRITE); client.c resumes each from the other event.
 *
 * No session is ever reused: the client-side session cache is off and no
 * SSL_set_session is made, so every connection pays a full handshake (what
 * S13 measures). The server may still send TLS 1.3 session tickets; they are
 * read and dropped by OpenSSL.
 *
 * Writes use SSL_MODE_ENABLE_PARTIAL_WRITE and ACCEPT_MOVING_WRITE_BUFFER:
 * client.c retries a write with the head of c->out, which may have moved
 * (realloc) and grown since, but never lost bytes it offered before.
 */
#include "bench.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

static SSL_CTX *ctx;   /* process-wide, made by btls_init, freed by btls_free */

/* The last OpenSSL error as text (the queue is emptied). */
static const char *ossl_reason(char *out, size_t n)
{
	unsigned long e = ERR_get_error();
	unsigned long next;

	while ((next = ERR_get_error()) != 0)
		e = next;   /* the last one is the most specific */
	if (!e)
		snprintf(out, n, "no OpenSSL reason");
	else
		ERR_error_string_n(e, out, n);
	return out;
}

static int version_of(const char *v)
{
	if (!v)
		return 0;
	if (!strcmp(v, "1.2"))
		return TLS1_2_VERSION;
	if (!strcmp(v, "1.3"))
		return TLS1_3_VERSION;
	return -1;
}

int btls_init(const struct opts *o)
{
	char why[256];
	int ver = version_of(o->tls_version);

	if (!o->cafile)
		return 0;   /* plain TCP */
	if (ver < 0) {
		fprintf(stderr, "hamqtt-bench: invalid --tls-version '%s' (1.2 or 1.3)\n",
			o->tls_version);
		return -1;
	}
	if (!!o->certfile != !!o->keyfile) {
		fprintf(stderr, "hamqtt-bench: --cert and --key go together\n");
		return -1;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		fprintf(stderr, "hamqtt-bench: SSL_CTX_new: %s\n", ossl_reason(why, sizeof(why)));
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, ver ? ver : TLS1_2_VERSION);
	if (ver)
		SSL_CTX_set_max_proto_version(ctx, ver);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* a broker closing TCP without close_notify is an ordinary end */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
				    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != 1) {
		fprintf(stderr, "hamqtt-bench: --cafile %s: %s\n", o->cafile,
			ossl_reason(why, sizeof(why)));
		goto fail;
	}
	if (o->certfile &&
	    (SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, o->keyfile, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1)) {
		fprintf(stderr, "hamqtt-bench: --cert %s / --key %s: %s\n", o->certfile, o->keyfile,
			ossl_reason(why, sizeof(why)));
		goto fail;
	}
	if (o->ciphers) {
		/* TLS_* names are TLS 1.3 suites, anything else a TLS 1.2 cipher list */
		int ok = !strncmp(o->ciphers, "TLS_", 4) ?
				 SSL_CTX_set_ciphersuites(ctx, o->ciphers) :
				 SSL_CTX_set_cipher_list(ctx, o->ciphers);
		if (ok != 1) {
			fprintf(stderr, "hamqtt-bench: --ciphers %s: %s\n", o->ciphers,
				ossl_reason(why, sizeof(why)));
			goto fail;
		}
	}
	return 0;
fail:
	SSL_CTX_free(ctx);
	ctx = NULL;
	return -1;
}

void btls_free(void)
{
	SSL_CTX_free(ctx);
	ctx = NULL;
}

bool btls_on(void)
{
	return ctx != NULL;
}

int btls_start(struct client *c)
{
	const char *host = c->b->o.host;
	char why[256];
	SSL *ssl = SSL_new(ctx);

	if (!ssl) {
		cli_error(c->b, "SSL_new: %s", ossl_reason(why, sizeof(why)));
		return -1;
	}
	/* the server certificate must name the host: an IP address as an IP SAN */
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
		ERR_clear_error();
		SSL_set_tlsext_host_name(ssl, host);
		if (SSL_set1_host(ssl, host) != 1)
			goto fail;
	}
	if (SSL_set_fd(ssl, c->io.fd) != 1)
		goto fail;
	SSL_set_connect_state(ssl);
	c->ssl = ssl;
	return 0;
fail:
	cli_error(c->b, "TLS setup: %s", ossl_reason(why, sizeof(why)));
	SSL_free(ssl);
	return -1;
}

void btls_close(struct client *c)
{
	if (!c->ssl)
		return;
	SSL_free(c->ssl);
	c->ssl = NULL;
}

/*
 * OpenSSL's outcome of a call that returned r <= 0 -> -1 with errno, or 0
 * (orderly end). why gets a reason for a failure.
 */
static int outcome(struct client *c, int r, char *why, size_t n)
{
	int e = SSL_get_error(c->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->tls_wait = EV_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		c->tls_wait = EV_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;   /* close_notify */
	case SSL_ERROR_SYSCALL:
		if (errno == 0 || ERR_peek_error() == 0) {
			/* EOF without close_notify: MQTT brokers close TCP directly */
			if (errno == 0)
				return 0;
			snprintf(why, n, "%s", strerror(errno));
			return -1;
		}
		/* fall through */
	default: {
		int saved = errno;
		char r2[200];
		long vr = SSL_get_verify_result(c->ssl);
		if (vr != X509_V_OK)
			snprintf(why, n, "certificate check: %s", X509_verify_cert_error_string(vr));
		else
			snprintf(why, n, "%s", ossl_reason(r2, sizeof(r2)));
		ERR_clear_error();
		errno = saved && saved != EAGAIN ? saved : EPROTO;
		return -1;
	}
	}
}

int btls_handshake(struct client *c, char *why, size_t n)
{
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(c->ssl);
	if (r == 1)
		return 1;
	r = outcome(c, r, why, n);
	if (r == 0) {
		snprintf(why, n, "closed by the broker during the TLS handshake");
		return -1;
	}
	return errno == EAGAIN ? 0 : -1;
}

ssize_t btls_read(struct client *c, void *p, size_t len, char *why, size_t n)
{
	size_t got = 0;

	ERR_clear_error();
	errno = 0;
	if (SSL_read_ex(c->ssl, p, len, &got) == 1)
		return (ssize_t)got;
	return outcome(c, 0, why, n);
}

ssize_t btls_write(struct client *c, const void *p, size_t len, char *why, size_t n)
{
	size_t put = 0;

	ERR_clear_error();
	errno = 0;
	if (SSL_write_ex(c->ssl, p, len, &put) == 1)
		return (ssize_t)put;
	int r = outcome(c, 0, why, n);
	if (r == 0) {
		snprintf(why, n, "closed by the broker (close_notify)");
		errno = EPIPE;
		return -1;
	}
	return r;
}

/* More decrypted bytes inside OpenSSL than epoll can announce. */
bool btls_pending(const struct client *c)
{
	return c->ssl && SSL_has_pending(c->ssl);
}

void btls_shutdown(struct client *c)
{
	if (!c->ssl)
		return;
	/* close_notify, not waited for (what the brokers do too) */
	ERR_clear_error();
	if (SSL_shutdown(c->ssl) < 0)
		ERR_clear_error();
}
