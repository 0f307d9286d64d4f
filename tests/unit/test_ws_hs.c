/*
 * test_ws_hs.c - unit tests for src/net/net_ws_hs.c, the server side of the
 * WebSocket opening handshake (RFC 6455 section 4.2).
 *
 * Every request is handed to the parser in a heap buffer of exactly n bytes,
 * so under ASan any read past the input fails the test; complete requests
 * are also replayed at every truncation length (must be HQ_EAGAIN).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "net/net_ws_hs.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static int parse(const char *req, size_t n, struct ws_hs *h)
{
	uint8_t *p = malloc(n ? n : 1);
	memcpy(p, req, n);
	int rc = ws_hs_parse(p, n, "/mqtt", h);
	free(p);
	return rc;
}

/* A complete request: every prefix is incomplete, the whole is decided. */
static int parse_full(const char *req, struct ws_hs *h)
{
	size_t n = strlen(req);
	for (size_t k = 0; k < n; k++) {
		struct ws_hs t;
		int rc = parse(req, k, &t);
		/* only the first byte decides early (not HTTP) */
		assert_int_equal(rc, HQ_EAGAIN);
	}
	return parse(req, n, h);
}

static char *req(const char *line, const char *headers)
{
	static char buf[4096];
	snprintf(buf, sizeof(buf), "%s\r\n%s\r\n", line, headers);
	return buf;
}

#define GOOD_HEADERS(extra) \
	"Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
	"Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n" extra

static void test_accept_key_rfc_example(void **state)
{
	(void)state;
	char out[29];
	ws_hs_accept_key(KEY, out); /* RFC 6455 section 1.3 */
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_upgrade_mqtt(void **state)
{
	(void)state;
	struct ws_hs h;
	const char *r = req("GET /mqtt HTTP/1.1", GOOD_HEADERS("Sec-WebSocket-Protocol: mqtt\r\n"));
	assert_int_equal(parse_full(r, &h), HQ_OK);
	assert_int_equal(h.status, 101);
	assert_int_equal(h.len, strlen(r));
	assert_string_equal(h.proto, "mqtt");
	assert_string_equal(h.key, KEY);
	char out[WS_HS_RESPONSE_MAX];
	size_t n = ws_hs_response(&h, out, sizeof(out));
	assert_true(n > 0);
	assert_non_null(strstr(out, "HTTP/1.1 101 Switching Protocols\r\n"));
	assert_non_null(strstr(out, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	assert_non_null(strstr(out, "Sec-WebSocket-Protocol: mqtt\r\n"));
	assert_int_equal(memcmp(out + n - 4, "\r\n\r\n", 4), 0);
}

/* bytes after the blank line are the stream's, not the request's */
static void test_stream_bytes_after(void **state)
{
	(void)state;
	static char buf[4200];
	snprintf(buf, sizeof(buf), "%s\x82\x85xxxxxyyyyy", req("GET /mqtt HTTP/1.1", GOOD_HEADERS("")));
	struct ws_hs h;
	assert_int_equal(parse(buf, strlen(buf), &h), HQ_OK);
	assert_int_equal(h.status, 101);
	assert_int_equal(h.len, strlen(buf) - 12);
}

static void test_subprotocols(void **state)
{
	(void)state;
	struct ws_hs h;
	/* paho's MQTT 3.1 */
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1",
					GOOD_HEADERS("Sec-WebSocket-Protocol: mqttv3.1\r\n")), &h), HQ_OK);
	assert_int_equal(h.status, 101);
	assert_string_equal(h.proto, "mqttv3.1");
	/* the client's order, the first we support */
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1",
					GOOD_HEADERS("Sec-WebSocket-Protocol: chat, mqtt , mqttv3.1\r\n")), &h), HQ_OK);
	assert_int_equal(h.status, 101);
	assert_string_equal(h.proto, "mqtt");
	/* none asked: accepted without the header */
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1", GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 101);
	assert_null(h.proto);
	char out[WS_HS_RESPONSE_MAX];
	assert_true(ws_hs_response(&h, out, sizeof(out)) > 0);
	assert_null(strstr(out, "Sec-WebSocket-Protocol"));
	/* only unknown ones: refused */
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1",
					GOOD_HEADERS("Sec-WebSocket-Protocol: chat, MQTT\r\n")), &h), HQ_OK);
	assert_int_equal(h.status, 400);
	assert_non_null(strstr(h.reason, "subprotocol"));
}

static void test_path(void **state)
{
	(void)state;
	struct ws_hs h;
	assert_int_equal(parse_full(req("GET /mqtt?x=1 HTTP/1.1", GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 101);
	assert_int_equal(parse_full(req("GET /other HTTP/1.1", GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 404);
	assert_string_equal(h.target, "/other");
	assert_int_equal(parse_full(req("GET /mqtt/ HTTP/1.1", GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 404);
	assert_int_equal(parse_full(req("GET /mqt HTTP/1.1", GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 404);
}

static void test_not_upgrade(void **state)
{
	(void)state;
	struct ws_hs h;
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1", "Host: x\r\n"), &h), HQ_OK);
	assert_int_equal(h.status, 426);
	char out[WS_HS_RESPONSE_MAX];
	assert_true(ws_hs_response(&h, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "HTTP/1.1 426 Upgrade Required\r\n"));
	assert_non_null(strstr(out, "Sec-WebSocket-Version: 13\r\n"));
	/* Upgrade without Connection: upgrade */
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1",
					"Upgrade: websocket\r\nConnection: keep-alive\r\n"
					"Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"), &h), HQ_OK);
	assert_int_equal(h.status, 400);
}

/* header names and tokens are case-insensitive, lists are lists */
static void test_header_case_and_lists(void **state)
{
	(void)state;
	struct ws_hs h;
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1",
					"host: x\r\nUPGRADE:WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
					"sec-websocket-key:   " KEY "  \r\nsec-websocket-version: 13\r\n"), &h), HQ_OK);
	assert_int_equal(h.status, 101);
}

static void test_bad_version_key_method(void **state)
{
	(void)state;
	struct ws_hs h;
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1",
					"Upgrade: websocket\r\nConnection: Upgrade\r\n"
					"Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n"), &h), HQ_OK);
	assert_int_equal(h.status, 426);
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1",
					"Upgrade: websocket\r\nConnection: Upgrade\r\n"
					"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n"), &h), HQ_OK);
	assert_int_equal(h.status, 400);
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1",
					"Upgrade: websocket\r\nConnection: Upgrade\r\n"
					"Sec-WebSocket-Version: 13\r\n"), &h), HQ_OK);
	assert_int_equal(h.status, 400);
	assert_int_equal(parse_full(req("POST /mqtt HTTP/1.1", GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 405);
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.0", GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 400);
	assert_int_equal(parse_full(req("GET /mqtt", GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 400);
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1", GOOD_HEADERS(" folded\r\n")), &h), HQ_OK);
	assert_int_equal(h.status, 400);
	assert_int_equal(parse_full(req("GET /mqtt HTTP/1.1", GOOD_HEADERS("no colon\r\n")), &h), HQ_OK);
	assert_int_equal(h.status, 400);
}

/* an MQTT CONNECT (or TLS ClientHello) on the port: refused at the first byte */
static void test_not_http(void **state)
{
	(void)state;
	struct ws_hs h;
	assert_int_equal(parse("\x10\x0c", 2, &h), HQ_OK);
	assert_int_equal(h.status, 400);
	assert_int_equal(parse("\x16\x03\x01", 3, &h), HQ_OK);
	assert_int_equal(h.status, 400);
}

static void test_too_large(void **state)
{
	(void)state;
	size_t n = WS_HS_MAX;
	char *big = malloc(n);
	memset(big, 'a', n);
	memcpy(big, "GET /mqtt HTTP/1.1\r\nX: ", 23);
	struct ws_hs h;
	assert_int_equal(parse(big, n - 1, &h), HQ_EAGAIN);
	assert_int_equal(parse(big, n, &h), HQ_OK);
	assert_int_equal(h.status, 431);
	char out[WS_HS_RESPONSE_MAX];
	assert_true(ws_hs_response(&h, out, sizeof(out)) > 0);
	free(big);
}

/* the target in the log line is printable and bounded */
static void test_target_sanitised(void **state)
{
	(void)state;
	struct ws_hs h;
	char line[300];
	memset(line, 0, sizeof(line));
	memcpy(line, "GET /\x01", 6);
	memset(line + 6, 'z', 200);
	strcat(line, " HTTP/1.1");
	assert_int_equal(parse_full(req(line, GOOD_HEADERS("")), &h), HQ_OK);
	assert_int_equal(h.status, 404);
	assert_true(strlen(h.target) < sizeof(h.target));
	assert_int_equal(h.target[1], '?');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_key_rfc_example),
		cmocka_unit_test(test_upgrade_mqtt),
		cmocka_unit_test(test_stream_bytes_after),
		cmocka_unit_test(test_subprotocols),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_not_upgrade),
		cmocka_unit_test(test_header_case_and_lists),
		cmocka_unit_test(test_bad_version_key_method),
		cmocka_unit_test(test_not_http),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_target_sanitised),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
