/*
 * proxy.c - HAProxy PROXY protocol v1/v2 header parser (see proxy.h).
 *
 * The two versions differ in their first byte ('P' starts the v1 text line, CR
 * the 12-byte v2 signature), so dispatch needs one byte and each parser can
 * reject an impossible prefix at once instead of waiting for a full header.
 * Every read is bounded by n and by the version's maximum header size; inputs
 * are copied into a local struct proxy_hdr that reaches *out only on success.
 * Reference: haproxy doc/proxy-protocol.txt, sections 2.1 (v1) and 2.2 (v2).
 */
#include "net/proxy.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#define V1_SIG "PROXY "		/* "PROXY" and the single space that follows it */
#define V1_SIG_LEN 6

/* v2 signature: CR LF CR LF NUL CR LF "QUIT" LF (spec 2.2) */
static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* v2 byte 13: address family (high nibble) and transport (low nibble) */
#define V2_UNSPEC 0x00		/* UNSPEC/UNSPEC: no addresses, only TLVs */
#define V2_TCP4 0x11		/* AF_INET/STREAM: 2 x 4-byte addresses + 2 ports */
#define V2_TCP6 0x21		/* AF_INET6/STREAM: 2 x 16-byte addresses + 2 ports */
#define V2_UNIX_STREAM 0x31	/* AF_UNIX/STREAM: 2 x 108-byte paths */

/* 1 if the available bytes p[0..n) agree with s[0..slen) on their common prefix. */
static int prefix_ok(const uint8_t *p, size_t n, const void *s, size_t slen)
{
	return memcmp(p, s, n < slen ? n : slen) == 0;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* ---- v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" ---- */

/*
 * Copy the field that starts at line[*pos] into tok as a C string. The field
 * must be non-empty, shorter than cap, and end with one space (then *pos moves
 * past it) or, if last, with the end of the line. Returns 0 or -1.
 */
static int v1_field(const uint8_t *line, size_t len, size_t *pos, char *tok, size_t cap,
		    int last)
{
	size_t i = *pos, k;

	while (i < len && line[i] != ' ')
		i++;
	k = i - *pos;
	if (k == 0 || k >= cap)
		return -1;
	if (last ? i != len : i == len)
		return -1;
	memcpy(tok, line + *pos, k);
	tok[k] = '\0';
	*pos = i + 1;
	return 0;
}

/* Decimal port 1..65535 without sign or leading zero, stored in network order. */
static int v1_port(const char *s, in_port_t *port)
{
	unsigned long v = 0;

	if (*s < '1' || *s > '9')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	*port = htons((uint16_t)v);
	return 0;
}

/* Parse the line between "PROXY " and CRLF (line[0..len), len <= 99). */
static int v1_line(const uint8_t *line, size_t len, struct proxy_hdr *h)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], sport[6], dport[6];
	size_t pos = 5;
	int af;

	/* UNKNOWN: whatever follows up to CRLF is ignored */
	if (len >= 7 && memcmp(line, "UNKNOWN", 7) == 0 && (len == 7 || line[7] == ' ')) {
		h->family = AF_UNSPEC;
		return 0;
	}
	if (len >= 5 && memcmp(line, "TCP4 ", 5) == 0)
		af = AF_INET;
	else if (len >= 5 && memcmp(line, "TCP6 ", 5) == 0)
		af = AF_INET6;
	else
		return HQ_EMALFORMED;

	if (v1_field(line, len, &pos, src, sizeof(src), 0) < 0 ||
	    v1_field(line, len, &pos, dst, sizeof(dst), 0) < 0 ||
	    v1_field(line, len, &pos, sport, sizeof(sport), 0) < 0 ||
	    v1_field(line, len, &pos, dport, sizeof(dport), 1) < 0)
		return HQ_EMALFORMED;

	h->family = af;
	if (af == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *d4 = (struct sockaddr_in *)&h->dst;

		s4->sin_family = d4->sin_family = AF_INET;
		if (inet_pton(AF_INET, src, &s4->sin_addr) != 1 ||
		    inet_pton(AF_INET, dst, &d4->sin_addr) != 1 ||
		    v1_port(sport, &s4->sin_port) < 0 || v1_port(dport, &d4->sin_port) < 0)
			return HQ_EMALFORMED;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&h->dst;

		s6->sin6_family = d6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, src, &s6->sin6_addr) != 1 ||
		    inet_pton(AF_INET6, dst, &d6->sin6_addr) != 1 ||
		    v1_port(sport, &s6->sin6_port) < 0 || v1_port(dport, &d6->sin6_port) < 0)
			return HQ_EMALFORMED;
	}
	return 0;
}

static int v1_parse(const uint8_t *p, size_t n, struct proxy_hdr *h)
{
	size_t lim = n < PROXY_V1_MAX ? n : PROXY_V1_MAX, end = 0, i;

	if (!prefix_ok(p, n, V1_SIG, V1_SIG_LEN))
		return HQ_EMALFORMED;
	/* reject an unknown protocol word as soon as it cannot match any */
	if (lim > V1_SIG_LEN) {
		const uint8_t *w = p + V1_SIG_LEN;
		size_t k = lim - V1_SIG_LEN;

		if (!prefix_ok(w, k, "TCP4 ", 5) && !prefix_ok(w, k, "TCP6 ", 5) &&
		    !prefix_ok(w, k, "UNKNOWN", 7))
			return HQ_EMALFORMED;
	}
	/* the line is printable US-ASCII ended by the first CRLF */
	for (i = V1_SIG_LEN; i < lim; i++) {
		uint8_t c = p[i];

		if (c == '\n') {
			if (p[i - 1] != '\r')
				return HQ_EMALFORMED;
			end = i + 1;
			break;
		}
		if (c == '\r') {
			if (i + 1 < n && p[i + 1] != '\n')
				return HQ_EMALFORMED;
			continue;
		}
		if (c < 0x20 || c > 0x7e)
			return HQ_EMALFORMED;
	}
	if (end == 0)
		return lim == PROXY_V1_MAX ? HQ_EMALFORMED : HQ_EAGAIN;
	if (v1_line(p + V1_SIG_LEN, end - 2 - V1_SIG_LEN, h) < 0)
		return HQ_EMALFORMED;
	return (int)end;
}

/* ---- v2: 16-byte fixed part, then a block of addresses and TLVs ---- */

/* Bytes of addresses a PROXY command needs for family byte fam, or -1 if refused. */
static int v2_addr_len(uint8_t fam)
{
	switch (fam) {
	case V2_UNSPEC: return 0;
	case V2_TCP4: return 12;
	case V2_TCP6: return 36;
	case V2_UNIX_STREAM: return 216;
	default: return -1;
	}
}

static int v2_parse(const uint8_t *p, size_t n, struct proxy_hdr *h)
{
	size_t len, total, off;
	int cmd, alen = 0;

	if (!prefix_ok(p, n, v2_sig, sizeof(v2_sig)))
		return HQ_EMALFORMED;
	/* byte 12: version 2 (high nibble), command LOCAL 0 or PROXY 1 (low) */
	if (n > 12 && ((p[12] >> 4) != 2 || (p[12] & 0x0f) > 1))
		return HQ_EMALFORMED;
	/* byte 13: only checked for PROXY; LOCAL ignores the family (spec 2.2) */
	if (n > 13 && (p[12] & 0x0f) == 1 && (alen = v2_addr_len(p[13])) < 0)
		return HQ_EMALFORMED;
	if (n < 16)
		return HQ_EAGAIN;
	cmd = p[12] & 0x0f;
	len = be16(p + 14);
	if (len > PROXY_V2_MAX_LEN || (cmd == 1 && len < (size_t)alen))
		return HQ_EMALFORMED;
	total = 16 + len;
	if (n < total)
		return HQ_EAGAIN;

	h->family = AF_UNSPEC;
	if (cmd == 0)	/* LOCAL: discard the block, the real endpoints apply */
		return (int)total;

	/* TLVs: type (1), length (2, big endian), value; each must fit the block */
	for (off = 16 + (size_t)alen; off < total; ) {
		size_t vlen;

		if (total - off < 3)
			return HQ_EMALFORMED;
		vlen = be16(p + off + 1);
		if (vlen > total - off - 3)
			return HQ_EMALFORMED;
		off += 3 + vlen;
	}

	if (p[13] == V2_TCP4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *d4 = (struct sockaddr_in *)&h->dst;

		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, p + 16, 4);
		memcpy(&d4->sin_addr, p + 20, 4);
		memcpy(&s4->sin_port, p + 24, 2);	/* already network order */
		memcpy(&d4->sin_port, p + 26, 2);
		if (s4->sin_port == 0 || d4->sin_port == 0)
			return HQ_EMALFORMED;
		h->family = AF_INET;
	} else if (p[13] == V2_TCP6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&h->dst;

		s6->sin6_family = d6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, p + 16, 16);
		memcpy(&d6->sin6_addr, p + 32, 16);
		memcpy(&s6->sin6_port, p + 48, 2);
		memcpy(&d6->sin6_port, p + 50, 2);
		if (s6->sin6_port == 0 || d6->sin6_port == 0)
			return HQ_EMALFORMED;
		h->family = AF_INET6;
	}
	/* UNSPEC and UNIX STREAM stay AF_UNSPEC: no IP endpoint to report */
	return (int)total;
}

int proxy_parse(const uint8_t *p, size_t n, struct proxy_hdr *out)
{
	struct proxy_hdr h;
	int rc;

	if (n == 0)
		return HQ_EAGAIN;
	memset(&h, 0, sizeof(h));
	if (p[0] == 'P')
		rc = v1_parse(p, n, &h);
	else if (p[0] == v2_sig[0])
		rc = v2_parse(p, n, &h);
	else
		rc = HQ_EMALFORMED;
	if (rc > 0)
		*out = h;
	return rc;
}
