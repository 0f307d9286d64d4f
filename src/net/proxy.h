/*
 * proxy.h - HAProxy PROXY protocol header parser (v1 text and v2 binary).
 *
 * Layer: net/, pure codec: bytes in, addresses out; no sockets, no allocation,
 * no MQTT. A load balancer in front of the broker prefixes each TCP connection
 * with one PROXY header naming the real client; the caller strips the returned
 * number of bytes and hands the rest to the MQTT codec.
 *
 * Invariants: proxy_parse() reads only p[0..n), never more than
 * PROXY_V1_MAX or PROXY_V2_MAX bytes, and decides as early as it can: a
 * prefix that no valid header can start with is HQ_EMALFORMED at once.
 */
#ifndef HQ_NET_PROXY_H
#define HQ_NET_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107	/* whole v1 line including CRLF (spec 2.1) */
#define PROXY_V2_MAX_LEN 520	/* largest v2 address+TLV block accepted here */
#define PROXY_V2_MAX (16 + PROXY_V2_MAX_LEN)	/* fixed part + block = 536 bytes */

struct proxy_hdr {
	int family;	/* AF_INET, AF_INET6, or AF_UNSPEC (v2 LOCAL, v1 UNKNOWN, ...):
			 * then src/dst are zeroed and the connection's own addresses apply */
	struct sockaddr_storage src, dst;	/* sockaddr_in / sockaddr_in6, port in network order */
};

/*
 * Parse a PROXY header at the start of p[0..n) (p may be NULL when n is 0).
 * Returns the header length (> 0) and fills *out (caller-owned; untouched on
 * error); HQ_EAGAIN if more bytes are needed (never past PROXY_V1_MAX for v1
 * or PROXY_V2_MAX for v2); HQ_EMALFORMED if the bytes are not a valid PROXY
 * header: neither signature, a v1 line without CRLF in PROXY_V1_MAX bytes,
 * bad addresses or ports (port 0 included), a v2 version other than 2, a
 * command other than LOCAL/PROXY, a family other than TCP over IPv4/IPv6
 * (UNSPEC and UNIX STREAM are accepted as AF_UNSPEC), a block longer than
 * PROXY_V2_MAX_LEN or too short for its addresses, or an overrunning TLV.
 * v2 LOCAL discards the whole block (family ignored, spec 2.2); v2 TLVs are
 * length-checked and skipped.
 */
int proxy_parse(const uint8_t *p, size_t n, struct proxy_hdr *out);

#endif
