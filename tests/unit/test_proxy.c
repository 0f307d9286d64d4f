/*
 * test_proxy.c - unit tests for src/net/proxy.c (PROXY protocol v1 and v2).
 *
 * Every vector is handed to the parser in a heap buffer of exactly n bytes, so
 * under ASan any read past the input fails the test. Valid headers are also
 * replayed at every truncation length (must be HQ_EAGAIN) and followed by MQTT
 * bytes (must return exactly the header length). Section numbers refer to
 * haproxy doc/proxy-protocol.txt.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "core/err.h"
#include "net/proxy.h"

#define S(s) (const uint8_t *)(s), strlen(s)

/* a CONNECT packet's first bytes, to follow a header on the wire */
static const uint8_t mqtt_bytes[] = { 0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02 };

/* proxy_parse on an exact-size heap copy of p[0..n) */
static int parse(const uint8_t *p, size_t n, struct proxy_hdr *h)
{
	uint8_t *b = malloc(n ? n : 1);
	int rc;

	assert_non_null(b);
	if (n)
		memcpy(b, p, n);
	rc = proxy_parse(n ? b : NULL, n, h);
	free(b);
	return rc;
}

/* Valid header p[0..n): complete parse returns n, every prefix HQ_EAGAIN, trailing
 * MQTT bytes are not consumed, and *out is untouched on HQ_EAGAIN. */
static void check_valid(const uint8_t *p, size_t n, struct proxy_hdr *h)
{
	struct proxy_hdr junk, probe;
	uint8_t buf[PROXY_V2_MAX + sizeof(mqtt_bytes)];
	size_t k;

	assert_true(n <= PROXY_V2_MAX);
	for (k = 0; k < n; k++) {
		memset(&probe, 0xa5, sizeof(probe));
		memcpy(&junk, &probe, sizeof(junk));
		if (parse(p, k, &probe) != HQ_EAGAIN)
			fail_msg("truncation at %zu of %zu not HQ_EAGAIN", k, n);
		assert_memory_equal(&probe, &junk, sizeof(probe));
	}
	memcpy(buf, p, n);
	memcpy(buf + n, mqtt_bytes, sizeof(mqtt_bytes));
	assert_int_equal(parse(buf, n + sizeof(mqtt_bytes), &probe), (int)n);
	assert_int_equal(parse(p, n, h), (int)n);
	assert_memory_equal(&probe, h, sizeof(*h));
}

static void check_bad(const uint8_t *p, size_t n)
{
	struct proxy_hdr h, before;

	memset(&h, 0x5a, sizeof(h));
	before = h;
	if (parse(p, n, &h) != HQ_EMALFORMED)
		fail_msg("not HQ_EMALFORMED: %.*s", (int)n, (const char *)p);
	assert_memory_equal(&h, &before, sizeof(h));
}

static void check_in4(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char txt[INET_ADDRSTRLEN];

	assert_int_equal(sin->sin_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, txt, sizeof(txt)));
	assert_string_equal(txt, ip);
	assert_int_equal(ntohs(sin->sin_port), port);
}

static void check_in6(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	char txt[INET6_ADDRSTRLEN];

	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, txt, sizeof(txt)));
	assert_string_equal(txt, ip);
	assert_int_equal(ntohs(sin6->sin6_port), port);
}

/* ---- v1 (section 2.1) ---- */

static void test_v1_tcp4(void **state)
{
	struct proxy_hdr h;

	(void)state;
	check_valid(S("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), &h);
	assert_int_equal(h.family, AF_INET);
	check_in4(&h.src, "192.168.0.1", 56324);
	check_in4(&h.dst, "192.168.0.11", 443);

	check_valid(S("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"), &h);
	check_in4(&h.src, "255.255.255.255", 65535);
	check_valid(S("PROXY TCP4 0.0.0.0 10.0.0.1 1 1883\r\n"), &h);
	check_in4(&h.src, "0.0.0.0", 1);
	check_in4(&h.dst, "10.0.0.1", 1883);
}

static void test_v1_tcp6(void **state)
{
	struct proxy_hdr h;
	char line[128];

	(void)state;
	check_valid(S("PROXY TCP6 2001:db8::1 ::1 51000 8883\r\n"), &h);
	assert_int_equal(h.family, AF_INET6);
	check_in6(&h.src, "2001:db8::1", 51000);
	check_in6(&h.dst, "::1", 8883);

	check_valid(S("PROXY TCP6 ::ffff:10.1.2.3 fe80::1 1 2\r\n"), &h);
	check_in6(&h.src, "::ffff:10.1.2.3", 1);

	/* the longest TCP6 line of section 2.1: 104 bytes */
	snprintf(line, sizeof(line), "PROXY TCP6 %s %s 65535 65535\r\n",
		 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_int_equal(strlen(line), 104);
	check_valid(S(line), &h);
	check_in6(&h.dst, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

static void test_v1_unknown(void **state)
{
	struct proxy_hdr h;
	char line[128];

	(void)state;
	check_valid(S("PROXY UNKNOWN\r\n"), &h);
	assert_int_equal(h.family, AF_UNSPEC);
	/* the rest of an UNKNOWN line is ignored; the longest line is 107 bytes */
	snprintf(line, sizeof(line), "PROXY UNKNOWN %s %s 65535 65535\r\n",
		 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	assert_int_equal(strlen(line), PROXY_V1_MAX);
	check_valid(S(line), &h);
	assert_int_equal(h.family, AF_UNSPEC);
	check_valid(S("PROXY UNKNOWN whatever\r\n"), &h);
	assert_int_equal(h.family, AF_UNSPEC);
	check_bad(S("PROXY UNKNOWNX\r\n"));
}

static void test_v1_no_crlf(void **state)
{
	struct proxy_hdr h;
	uint8_t line[PROXY_V1_MAX + 8];

	(void)state;
	/* 107 bytes of a plausible line and still no CRLF */
	memcpy(line, "PROXY UNKNOWN ", 14);
	memset(line + 14, 'a', sizeof(line) - 14);
	assert_int_equal(parse(line, PROXY_V1_MAX - 1, &h), HQ_EAGAIN);
	check_bad(line, PROXY_V1_MAX);
	check_bad(line, sizeof(line));
	/* CRLF just past the limit: a 108-byte line */
	line[PROXY_V1_MAX - 1] = '\r';
	line[PROXY_V1_MAX] = '\n';
	assert_int_equal(parse(line, PROXY_V1_MAX - 1, &h), HQ_EAGAIN);
	check_bad(line, PROXY_V1_MAX);		/* the LF could only come too late */
	check_bad(line, PROXY_V1_MAX + 1);
	/* CRLF exactly at the limit is fine */
	line[PROXY_V1_MAX - 2] = '\r';
	line[PROXY_V1_MAX - 1] = '\n';
	assert_int_equal(parse(line, sizeof(line), &h), PROXY_V1_MAX);

	check_bad(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"));		/* bare LF */
	check_bad(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"));
	check_bad(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"));	/* CR not followed by LF */
	check_bad(S("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"));	/* control byte */
	check_bad((const uint8_t *)"PROXY TCP4 1.2\0", 15);
	check_bad(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\xff"));
}

static void test_v1_bad_ports(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 1.2.3.4 5.6.7.8 0 80\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 80 0\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 80 65536\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 123456 80\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 0080 80\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 +80 80\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 8a 80\r\n",
		"PROXY TCP6 ::1 ::2 0 80\r\n",
		"PROXY TCP6 ::1 ::2 1 65536\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_bad(S(bad[i]));
}

static void test_v1_bad_fields(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",		/* IPv6 under TCP4 */
		"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",		/* IPv4 under TCP6 */
		"PROXY TCP6 ::1::2 ::1 1 2\r\n",
		"PROXY TCP6 host ::1 1 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",		/* double space */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",		/* trailing space */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",		/* missing port */
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",		/* extra field */
		"PROXY TCP4 1.2.3.4 5.6.7.8\r\n",
		"PROXY TCP4 \r\n",
		"PROXY TCP4\r\n",
		"PROXY \r\n",
		"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 1 2\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_bad(S(bad[i]));
}

/* ---- v2 (section 2.2) ---- */

static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 'Q', 'U', 'I', 'T', 0x0a };

/* signature, ver_cmd, fam, then block b[0..blen) with its length filled in */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *b, size_t blen)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen)
		memcpy(out + 16, b, blen);
	return 16 + blen;
}

/* 192.0.2.1:40000 -> 198.51.100.7:1883 */
static const uint8_t addr4[12] = { 192, 0, 2, 1, 198, 51, 100, 7, 0x9c, 0x40, 0x07, 0x5b };
/* [2001:db8::5]:65535 -> [2001:db8::1]:8883 */
static const uint8_t addr6[36] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0xff, 0xff, 0x22, 0xb3,
};
/* ALPN "mqtt", NOOP (empty), AUTHORITY "broker.example" */
static const uint8_t tlvs[] = {
	0x01, 0x00, 0x04, 'm', 'q', 't', 't',
	0x04, 0x00, 0x00,
	0x02, 0x00, 0x0e, 'b', 'r', 'o', 'k', 'e', 'r', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e',
};

static void test_v2_ipv4(void **state)
{
	struct proxy_hdr h;
	uint8_t blk[PROXY_V2_MAX_LEN], hdr[PROXY_V2_MAX];
	size_t n;

	(void)state;
	n = v2(hdr, 0x21, 0x11, addr4, sizeof(addr4));
	assert_int_equal(n, 28);
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_INET);
	check_in4(&h.src, "192.0.2.1", 40000);
	check_in4(&h.dst, "198.51.100.7", 1883);

	memcpy(blk, addr4, sizeof(addr4));
	memcpy(blk + sizeof(addr4), tlvs, sizeof(tlvs));
	n = v2(hdr, 0x21, 0x11, blk, sizeof(addr4) + sizeof(tlvs));
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_INET);
	check_in4(&h.src, "192.0.2.1", 40000);

	/* the largest block accepted: one TLV filling 520 bytes */
	memset(blk + 12, 'x', sizeof(blk) - 12);
	blk[12] = 0xee;
	blk[13] = (uint8_t)((PROXY_V2_MAX_LEN - 15) >> 8);
	blk[14] = (uint8_t)(PROXY_V2_MAX_LEN - 15);
	n = v2(hdr, 0x21, 0x11, blk, PROXY_V2_MAX_LEN);
	assert_int_equal(n, 536);
	check_valid(hdr, n, &h);
	check_in4(&h.dst, "198.51.100.7", 1883);
}

static void test_v2_ipv6(void **state)
{
	struct proxy_hdr h;
	uint8_t blk[128], hdr[PROXY_V2_MAX];
	size_t n;

	(void)state;
	n = v2(hdr, 0x21, 0x21, addr6, sizeof(addr6));
	assert_int_equal(n, 52);
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_INET6);
	check_in6(&h.src, "2001:db8::5", 65535);
	check_in6(&h.dst, "2001:db8::1", 8883);

	memcpy(blk, addr6, sizeof(addr6));
	memcpy(blk + sizeof(addr6), tlvs, sizeof(tlvs));
	n = v2(hdr, 0x21, 0x21, blk, sizeof(addr6) + sizeof(tlvs));
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_INET6);
	check_in6(&h.dst, "2001:db8::1", 8883);
}

static void test_v2_local(void **state)
{
	struct proxy_hdr h;
	uint8_t hdr[PROXY_V2_MAX], junk[40];
	size_t n;

	(void)state;
	n = v2(hdr, 0x20, 0x00, NULL, 0);
	assert_int_equal(n, 16);
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_UNSPEC);
	/* LOCAL ignores the family and discards the block, whatever it holds */
	n = v2(hdr, 0x20, 0x11, addr4, sizeof(addr4));
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_UNSPEC);
	memset(junk, 0xff, sizeof(junk));
	n = v2(hdr, 0x20, 0xff, junk, sizeof(junk));
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_UNSPEC);
}

static void test_v2_unspec_unix(void **state)
{
	struct proxy_hdr h;
	uint8_t blk[PROXY_V2_MAX_LEN], hdr[PROXY_V2_MAX];
	size_t n;

	(void)state;
	/* PROXY with UNSPEC: the receiver may accept it and use the real endpoints */
	n = v2(hdr, 0x21, 0x00, NULL, 0);
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_UNSPEC);
	n = v2(hdr, 0x21, 0x00, tlvs, sizeof(tlvs));
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_UNSPEC);
	/* UNIX STREAM: two 108-byte paths, no IP endpoint to report */
	memset(blk, 0, 216);
	memcpy(blk, "/run/lb.sock", 12);
	n = v2(hdr, 0x21, 0x31, blk, 216);
	check_valid(hdr, n, &h);
	assert_int_equal(h.family, AF_UNSPEC);
	check_bad(hdr, v2(hdr, 0x21, 0x31, blk, 215));
}

static void test_v2_bad(void **state)
{
	static const uint8_t bad_fam[] = { 0x01, 0x10, 0x12, 0x13, 0x22, 0x32, 0x41, 0x1f, 0xff };
	uint8_t blk[PROXY_V2_MAX_LEN + 8], hdr[PROXY_V2_MAX + 8];
	struct proxy_hdr h;
	size_t i, n;

	(void)state;
	check_bad(hdr, v2(hdr, 0x11, 0x11, addr4, 12));		/* version 1 */
	check_bad(hdr, v2(hdr, 0x31, 0x11, addr4, 12));		/* version 3 */
	check_bad(hdr, v2(hdr, 0x01, 0x11, addr4, 12));
	check_bad(hdr, v2(hdr, 0x22, 0x11, addr4, 12));		/* command 2 */
	check_bad(hdr, v2(hdr, 0x2f, 0x11, addr4, 12));
	for (i = 0; i < sizeof(bad_fam); i++)
		check_bad(hdr, v2(hdr, 0x21, bad_fam[i], addr6, 36));
	/* rejected as soon as the offending byte arrives */
	v2(hdr, 0x22, 0x11, addr4, 12);
	check_bad(hdr, 13);
	v2(hdr, 0x21, 0x41, addr4, 12);
	check_bad(hdr, 14);
	/* block too short for the addresses */
	check_bad(hdr, v2(hdr, 0x21, 0x11, addr4, 11));
	check_bad(hdr, v2(hdr, 0x21, 0x21, addr6, 35));
	check_bad(hdr, v2(hdr, 0x21, 0x21, addr4, 12));
	/* block longer than 520: rejected from the length field alone */
	memset(blk, 0, sizeof(blk));
	memcpy(blk, addr4, 12);
	blk[12] = 0x04;
	blk[13] = (uint8_t)((PROXY_V2_MAX_LEN + 1 - 15) >> 8);
	blk[14] = (uint8_t)(PROXY_V2_MAX_LEN + 1 - 15);
	n = v2(hdr, 0x21, 0x11, blk, PROXY_V2_MAX_LEN + 1);
	check_bad(hdr, 16);
	check_bad(hdr, n);
	hdr[14] = hdr[15] = 0xff;
	check_bad(hdr, 16);
	/* TLVs that overrun the block, or a partial TLV header */
	memcpy(blk + 12, tlvs, sizeof(tlvs));
	check_bad(hdr, v2(hdr, 0x21, 0x11, blk, 12 + sizeof(tlvs) - 1));
	check_bad(hdr, v2(hdr, 0x21, 0x11, blk, 12 + 1));
	check_bad(hdr, v2(hdr, 0x21, 0x11, blk, 12 + 2));
	check_bad(hdr, v2(hdr, 0x21, 0x11, blk, 12 + 5));
	check_bad(hdr, v2(hdr, 0x21, 0x00, tlvs, 2));
	/* port 0 is no TCP endpoint */
	memcpy(blk, addr4, 12);
	blk[8] = blk[9] = 0;
	check_bad(hdr, v2(hdr, 0x21, 0x11, blk, 12));
	memcpy(blk, addr6, 36);
	blk[34] = blk[35] = 0;
	check_bad(hdr, v2(hdr, 0x21, 0x21, blk, 36));
	/* a valid header is still fine right after all of that */
	assert_int_equal(parse(hdr, v2(hdr, 0x21, 0x21, addr6, 36), &h), 52);
}

/* ---- neither version ---- */

static void test_bad_signature(void **state)
{
	uint8_t hdr[PROXY_V2_MAX];
	size_t n, i;

	(void)state;
	check_bad(S("PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
	check_bad(S("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
	check_bad(S("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
	check_bad(S(" PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"));
	check_bad(S("PRO"  "\r\n"));
	check_bad(S("PROXY FOO"));		/* an unknown word is refused early */
	check_bad(S("PROXY TCP7"));
	check_bad(S("PROXY U"  "NKNOWX"));
	/* each byte of the v2 signature matters */
	n = v2(hdr, 0x21, 0x11, addr4, 12);
	for (i = 0; i < 12; i++) {
		hdr[i] ^= 0x20;
		check_bad(hdr, n);
		check_bad(hdr, i + 1);
		hdr[i] ^= 0x20;
	}
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",	/* TLS ClientHello */
		"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c",		/* MQTT CONNECT */
		"\r\n\r\n\r\n",
		"\r\n\r\n\x01",
		"P\r\n",
		"\xff",
	};
	struct proxy_hdr h;
	uint8_t buf[600];
	uint32_t x = 2463534242u;
	size_t i, j, n;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_bad(S(bad[i]));
	check_bad((const uint8_t *)"\0", 1);
	assert_int_equal(parse(NULL, 0, &h), HQ_EAGAIN);
	assert_int_equal(parse(S("P"), &h), HQ_EAGAIN);
	assert_int_equal(parse(sig, 1, &h), HQ_EAGAIN);

	/* random bytes, half of them behind a real signature: every answer is sane */
	for (i = 0; i < 20000; i++) {
		for (j = 0; j < sizeof(buf); j++) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			buf[j] = (uint8_t)x;
		}
		n = x % sizeof(buf);
		if (i & 1)
			memcpy(buf, sig, 12), buf[12] = 0x20 | (i & 2 ? 1 : 0), buf[14] = 0x01;
		else if (i & 2)
			memcpy(buf, "PROXY TCP4 ", 11);
		rc = parse(buf, n, &h);
		assert_true(rc == HQ_EAGAIN || rc == HQ_EMALFORMED || (rc > 0 && (size_t)rc <= n));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_no_crlf),
		cmocka_unit_test(test_v1_bad_ports),
		cmocka_unit_test(test_v1_bad_fields),
		cmocka_unit_test(test_v2_ipv4),
		cmocka_unit_test(test_v2_ipv6),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_unspec_unix),
		cmocka_unit_test(test_v2_bad),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
