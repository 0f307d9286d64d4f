/*
 * net_tls.h - the TLS transport of ssl listeners (OpenSSL 3, server side).
 *
 * Layer: net/. No MQTT and no broker types: a listener's context is built
 * from its struct conf_listener, a connection's state wraps one non-blocking
 * socket, and read/write behave like recv/send (bytes, 0 at the peer's end,
 * -1 with errno EAGAIN when OpenSSL waits for the socket: tls_wants() says
 * for which direction, as the TLS record layer may need to write while the
 * caller reads and the other way round).
 *
 * Ownership: the broker owns one struct tls_srv per ssl listener (built at
 * start, freed after every connection is freed); each connection owns its
 * struct tls_conn (freed with the connection; the fd stays the caller's).
 * An SSL holds a reference on its SSL_CTX, so a context can never be freed
 * under a live connection. A tls_conn is used by one thread at a time (its
 * connection's worker); the SSL_CTX is shared read-only by all workers,
 * which OpenSSL allows; tls_srv_reload swaps it under a lock.
 */
#ifndef HQ_NET_TLS_H
#define HQ_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct conf_listener;
struct tls_srv;
struct tls_cli;
struct tls_conn;
struct xport;

/* The TLS settings of one endpoint, whatever configured them (a listener's
 * keys, cluster.tls.*); the strings are borrowed for the call. keys is the
 * prefix of the keys an error names ("listeners.ssl.default.",
 * "cluster.tls."). */
struct tls_opts {
	const char *keys;
	const char *certfile, *keyfile;  /* a server's: required; a client's: "" = none */
	const char *cacertfile;          /* "" = none */
	const char *tls_versions;        /* "1.2,1.3", checked by conf */
	const char *ciphers;             /* "" = OpenSSL's default */
	bool verify_peer;                /* a server requires a certificate signed by
					  * cacertfile; a client checks the server's */
};

/* The context of listener L (type ssl or wss): certificate, key, CAs, verify
 * mode, versions, ciphers. NULL with "listeners.<type>.<name>.<key>: <why>" in err
 * when a file cannot be loaded or a value is refused by OpenSSL. */
struct tls_srv *tls_srv_new(const struct conf_listener *L, char *err, size_t errlen);
/* Read L's files again into a new context for the connections accepted from
 * now on (SIGHUP); live connections keep the context they started with.
 * Any thread. On failure the old context stays, err says why. */
int tls_srv_reload(struct tls_srv *s, const struct conf_listener *L, char *err, size_t errlen);
void tls_srv_free(struct tls_srv *s);
/* The same from options, named name in logs (cluster links). */
struct tls_srv *tls_srv_new_opts(const struct tls_opts *o, const char *name, char *err,
				 size_t errlen);
int tls_srv_reload_opts(struct tls_srv *s, const struct tls_opts *o, char *err, size_t errlen);

/* The client side (cluster links dialing a peer): a context from o (own
 * certificate if any, the CAs the server's must chain to), reloadable and
 * shared like a tls_srv. Ownership: its creator's; connections keep the
 * SSL_CTX they were made with alive by reference. */
struct tls_cli *tls_cli_new(const struct tls_opts *o, char *err, size_t errlen);
int tls_cli_reload(struct tls_cli *c, const struct tls_opts *o, char *err, size_t errlen);
void tls_cli_free(struct tls_cli *c);
/* A client-side TLS connection over fd (not yet handshaken). With host (an
 * IP literal or a DNS name) the server's certificate must name it (IP or DNS
 * subjectAltName), checked in the handshake; NULL host: any name. NULL if
 * OpenSSL cannot allocate one or host is not a usable name. tls_conn_srv()
 * of it is NULL. */
struct tls_conn *tls_conn_new_client(struct tls_cli *c, int fd, const char *host);
/* After the handshake: the peer's verified certificate names host (IP
 * literal: IP SAN; else DNS SAN, or the subject CN when it has none). */
bool tls_peer_matches_host(const struct tls_conn *t, const char *host);
const char *tls_srv_name(const struct tls_srv *s);  /* "ssl.<name>", for logs */
bool tls_srv_cn_as_username(const struct tls_srv *s);

/* A server-side TLS connection over fd (not yet handshaken); NULL if OpenSSL
 * cannot allocate one. */
struct tls_conn *tls_conn_new(struct tls_srv *s, int fd);
void tls_conn_free(struct tls_conn *t);
const struct tls_srv *tls_conn_srv(const struct tls_conn *t);

/* Drive the handshake: HQ_OK once established, HQ_EAGAIN to be called
 * again when the socket is ready for tls_wants(), HQ_ECLOSED if the peer
 * closed without a TLS error (a port probe), HQ_EIO on failure (the reason
 * in tls_error). */
int tls_handshake(struct tls_conn *t);
bool tls_established(const struct tls_conn *t);

/* Like recv/send on the decrypted stream (see the header comment). After
 * -1 with errno other than EAGAIN, tls_error() has OpenSSL's reason. */
ssize_t tls_read(struct tls_conn *t, void *p, size_t n);
ssize_t tls_write(struct tls_conn *t, const void *p, size_t n);

/* The ev.h events (EV_READ / EV_WRITE) the last EAGAIN waits for. */
unsigned tls_wants(const struct tls_conn *t);
/* Why the last call failed: OpenSSL's reason (and the certificate check's). */
const char *tls_error(const struct tls_conn *t);

/* Send close_notify, without waiting (best effort, before closing the fd). */
void tls_shutdown(struct tls_conn *t);

/* The connection as a transport layer (net/xport.h), owned by t. */
struct xport *tls_xport(struct tls_conn *t);

/* The verified client certificate's subject CN into out: HQ_OK, or
 * HQ_ENOTFOUND (no certificate, no CN, or a CN with a NUL or too long). */
int tls_peer_cn(const struct tls_conn *t, char *out, size_t outlen);
/* "TLSv1.3", "TLS_AES_256_GCM_SHA384" of an established connection */
const char *tls_version(const struct tls_conn *t);
const char *tls_cipher(const struct tls_conn *t);

#endif
