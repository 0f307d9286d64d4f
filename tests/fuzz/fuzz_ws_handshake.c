/*
 * fuzz_ws_handshake.c - libFuzzer harness for the WebSocket upgrade request
 * parser (src/net/net_ws_hs.c), which reads the bytes a ws/wss client sends
 * before anything else (after TLS and a PROXY header). Built and run by
 * `make fuzz`.
 *
 * Besides "no crash, no overread" (ASan), it checks the parser's contract:
 * HQ_EAGAIN only below WS_HS_MAX, a request length never past the input, a
 * known status, a printable bounded target, an answer that always fits
 * WS_HS_RESPONSE_MAX, and the same decision from the request alone (nothing
 * after its blank line was looked at).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "net/net_ws_hs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ws_hs h, h2;
	int rc = ws_hs_parse(size ? data : NULL, size, "/mqtt", &h);
	CHECK(rc == HQ_OK || rc == HQ_EAGAIN);
	if (rc == HQ_EAGAIN) {
		CHECK(size < WS_HS_MAX);
		return 0;
	}
	CHECK(h.len <= size && h.len > 0);
	CHECK(h.status == 101 || h.status == 400 || h.status == 404 || h.status == 405 ||
	      h.status == 426 || h.status == 431);
	CHECK((h.status == 101) == (h.reason == NULL));
	CHECK(strlen(h.target) < sizeof(h.target) && strlen(h.key) < sizeof(h.key));
	for (const char *t = h.target; *t; t++)
		CHECK(*t >= 0x20 && *t < 0x7f);
	char out[WS_HS_RESPONSE_MAX];
	CHECK(ws_hs_response(&h, out, sizeof(out)) > 0);
	int rc2 = ws_hs_parse(data, h.len, "/mqtt", &h2);
	CHECK(rc2 == HQ_OK && h2.status == h.status && h2.len == h.len);
	return 0;
}
