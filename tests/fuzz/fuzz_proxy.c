/*
 * fuzz_proxy.c - libFuzzer harness for the PROXY protocol v1/v2 parser
 * (src/net/proxy.c), which reads bytes from the network before anything else
 * does. Built and run by `make fuzz`.
 *
 * Besides "no crash, no overread" (ASan), it checks the parser's contract:
 * a length never past the input or the v1/v2 maxima, HQ_EAGAIN only while a
 * longer input could still complete a header, and the same answer for the
 * same header followed by extra bytes (the parser must not read past it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/err.h"
#include "net/proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr h, h2;
	int rc = proxy_parse(size ? data : NULL, size, &h);

	CHECK(rc > 0 || rc == HQ_EAGAIN || rc == HQ_EMALFORMED);
	if (rc == HQ_EAGAIN)
		CHECK(size < PROXY_V2_MAX);
	if (rc <= 0)
		return 0;
	CHECK((size_t)rc <= size && rc <= PROXY_V2_MAX);
	CHECK(h.family == AF_INET || h.family == AF_INET6 || h.family == AF_UNSPEC);
	/* the header alone parses the same: nothing after it was looked at */
	int rc2 = proxy_parse(data, (size_t)rc, &h2);
	CHECK(rc2 == rc && h2.family == h.family);
	CHECK(memcmp(&h.src, &h2.src, sizeof(h.src)) == 0);
	CHECK(memcmp(&h.dst, &h2.dst, sizeof(h.dst)) == 0);
	return 0;
}
