/*
 * net_ws_hs.h - the server side of the WebSocket opening handshake (RFC 6455
 * section 4.2): parse the client's HTTP/1.1 Upgrade request, decide, and
 * write the answer. Pure functions: no I/O, no allocation, so the parser is
 * unit-tested and fuzzed on its own (tests/unit/test_ws_hs.c,
 * tests/fuzz/fuzz_ws_handshake.c).
 *
 * Bounds: a request is at most WS_HS_MAX bytes (request line and headers); a
 * longer one is refused with 431 without waiting for its end. The time bound
 * is the caller's (mqtt.connect_timeout: the connection stays CS_NEW).
 *
 * Subprotocols (Sec-WebSocket-Protocol): "mqtt" (MQTT 3.1.1 and 5.0) and
 * "mqttv3.1" (MQTT 3.1, what paho sends for it) are accepted; the first one
 * the client lists that we support is chosen. A request that names none is
 * accepted without the header (EMQX's default, fail_if_no_subprotocol =
 * false: some clients send none). A request that names only others is
 * refused with 400: the client asked for a protocol we do not speak, and
 * answering anyway (Mosquitto's libwebsockets does) would only fail later.
 */
#ifndef HQ_NET_WS_HS_H
#define HQ_NET_WS_HS_H

#include <stddef.h>
#include <stdint.h>

#define WS_HS_MAX 8192
#define WS_HS_RESPONSE_MAX 512

struct ws_hs {
	int status;            /* 101, or the refusal's HTTP status (400, 404, 405, 426, 431) */
	const char *reason;    /* why refused (static text), NULL with 101 */
	size_t len;            /* bytes of the request, through its blank line */
	const char *proto;     /* the subprotocol chosen (static), NULL: none asked */
	char key[32];          /* Sec-WebSocket-Key as sent (24 base64 characters) */
	char target[80];       /* the request target, for the log (truncated) */
};

/*
 * Parse the request at p[0..n) for a listener serving path. HQ_EAGAIN: the
 * request is incomplete (read more); HQ_OK: h is filled, with status 101 for
 * an accepted upgrade or the refusal's status and reason. Bytes after h->len
 * belong to the WebSocket stream (a client may send them right away).
 */
int ws_hs_parse(const uint8_t *p, size_t n, const char *path, struct ws_hs *h);

/* The answer to h (101 with Sec-WebSocket-Accept, or the refusal with its
 * reason as body) into out; its length, or 0 if outlen is too small. */
size_t ws_hs_response(const struct ws_hs *h, char *out, size_t outlen);

/* Sec-WebSocket-Accept of key (base64 of SHA-1, 28 characters + NUL). */
void ws_hs_accept_key(const char *key, char out[29]);

#endif
