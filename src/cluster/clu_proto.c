/*
 * clu_proto.c - what the cluster codec's encoder (clu_proto_enc.c) and
 * decoder (clu_proto_dec.c) share: the pinned layout, the string domains
 * both sides check, and the message type table. The wire format is
 * documented in clu_proto.h.
 */
#include "cluster/clu_proto_int.h"

#include <assert.h>
#include <string.h>

/* ---- the pinned layout (any change here is a protocol version bump) ---- */

static_assert(sizeof(struct clu_wire_hdr) == CLU_HDR_LEN, "frame header is 8 bytes");
static_assert(offsetof(struct clu_wire_hdr, magic) == 0, "magic at 0");
static_assert(offsetof(struct clu_wire_hdr, version) == 1, "version at 1");
static_assert(offsetof(struct clu_wire_hdr, type) == 2, "type at 2");
static_assert(offsetof(struct clu_wire_hdr, flags) == 3, "flags at 3");
static_assert(offsetof(struct clu_wire_hdr, len) == 4, "length at 4");
static_assert(CLU_PROTO_VERSION == 5 && CLU_MAGIC == 0xC1, "version 5 frames");
static_assert(CLU_MAX_BODY <= UINT32_MAX, "body length fits the u32 field");

static_assert(CLU_MSG_HELLO == 0x01 && CLU_MSG_AUTH == 0x02 && CLU_MSG_REFUSE == 0x03 &&
	      CLU_MSG_HEARTBEAT == 0x04 && CLU_MSG_LEAVE == 0x05 && CLU_MSG_BARRIER == 0x06 &&
	      CLU_MSG_BARRIER_ACK == 0x07, "link message numbers");
static_assert(CLU_MSG_MEMBERS == 0x10, "membership message numbers");
static_assert(CLU_MSG_ROUTE_ADD == 0x20 && CLU_MSG_ROUTE_DEL == 0x21 &&
	      CLU_MSG_ROUTE_SYNC_BEGIN == 0x22 && CLU_MSG_ROUTE_SYNC_END == 0x23,
	      "route message numbers");
static_assert(CLU_MSG_FORWARD == 0x30 && CLU_MSG_FORWARD_ACK == 0x31, "forward message numbers");
static_assert(CLU_MSG_RETAIN_SET == 0x40, "retained message numbers");
static_assert(CLU_MSG_REPL_SET == 0x60, "replicated table message numbers");
static_assert(CLU_MSG_RPC_REQ == 0x70 && CLU_MSG_RPC_RESP == 0x71, "rpc message numbers");
static_assert(CLU_MSG_TAKEOVER_REQ == 0x50 && CLU_MSG_TAKEOVER_RESP == 0x51 &&
	      CLU_MSG_CLIENTS == 0x52,
	      "takeover message numbers");

static_assert(sizeof(struct clu_wire_auth) == 32, "AUTH body");
static_assert(sizeof(struct clu_wire_heartbeat) == 16, "HEARTBEAT body");
static_assert(sizeof(struct clu_wire_sync_begin) == 12, "ROUTE_SYNC_BEGIN body");
static_assert(sizeof(struct clu_wire_sync_end) == 8, "ROUTE_SYNC_END body");
static_assert(sizeof(struct clu_wire_ack_range) == 17, "FORWARD_ACK range");
static_assert(CLU_FF_PLAIN == 0x01 && CLU_FF_CLIENT == 0x02 && CLU_FF_RX == 0x04 &&
	      CLU_FF_SKIP == 0x08, "FORWARD fflags");
static_assert(CLU_FWD_SKIP_MAX < (1u << 20), "a skip set fits the FORWARD envelope room");
/* mbody is the shared message encoding (core/msg_wire.h) */
static_assert(MSG_WIRE_RETAIN == 0x01 && MSG_WIRE_EXPIRY == 0x02, "mbody mflags");

/* ---- string domains ---- */

static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		uint32_t cp, min;
		size_t k;

		if (c < 0x80) {
			if (c == 0)
				return false;
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			k = 1, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			uint8_t d = s[i + j];
			if ((d & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (d & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k + 1;
	}
	return true;
}

static bool printable(const char *p, size_t n, size_t min, size_t max)
{
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7E)
			return false;
	return true;
}

bool clu_name_valid(const char *p, size_t n)
{
	const char *at;

	if (!printable(p, n, 3, CLU_NAME_MAX))
		return false;
	at = memchr(p, '@', n);
	return at && at != p && at != p + n - 1 && !memchr(at + 1, '@', n - (size_t)(at - p) - 1);
}

bool clu_cluster_valid(const char *p, size_t n)
{
	return printable(p, n, 1, CLU_NAME_MAX);
}

bool clu_addr_valid(const char *p, size_t n)
{
	size_t colon, hl;
	uint32_t port = 0;

	if (!printable(p, n, 3, CLU_NAME_MAX))
		return false;
	colon = n;
	while (colon > 0 && p[colon - 1] != ':')
		colon--;
	if (colon < 2 || n - colon < 1 || n - colon > 5)
		return false;
	for (size_t i = colon; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		port = port * 10 + (uint32_t)(p[i] - '0');
	}
	if (port < 1 || port > 65535)
		return false;
	hl = colon - 1;   /* host is p[0..hl) */
	if (p[0] == '[')
		return hl > 2 && p[hl - 1] == ']' && !memchr(p + 1, ']', hl - 2) &&
		       !memchr(p + 1, '[', hl - 2);
	return !memchr(p, ':', hl) && !memchr(p, '[', hl) && !memchr(p, ']', hl);
}

static bool filter_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '+' && p[i] != '#')
			continue;
		if ((i > 0 && p[i - 1] != '/') || (i + 1 < n && p[i + 1] != '/'))
			return false;
		if (p[i] == '#' && i + 1 != n)
			return false;
	}
	return true;
}

bool clu_dom_ok(enum clu_dom d, struct clu_str s)
{
	const char *p = s.p;
	size_t n = s.len;

	if (n && !p)
		return false;
	switch (d) {
	case CLU_D_NAME:
		return clu_name_valid(p, n);
	case CLU_D_CLUSTER:
		return clu_cluster_valid(p, n);
	case CLU_D_ADDR:
		return clu_addr_valid(p, n);
	case CLU_D_TEXT:
		return n <= CLU_TEXT_MAX && utf8_ok((const uint8_t *)p, n);
	case CLU_D_METHOD:
		if (n < 1 || n > CLU_RPC_METHOD_MAX)
			return false;
		for (size_t i = 0; i < n; i++)
			if (p[i] < 'A' || p[i] > 'Z')
				return false;
		return true;
	case CLU_D_PATH:
		return n >= 1 && n <= CLU_RPC_PATH_MAX && p[0] == '/' &&
		       utf8_ok((const uint8_t *)p, n);
	case CLU_D_QUERY:
		if (n > UINT16_MAX)
			return false;
		for (size_t i = 0; i < n; i++)
			if (p[i] < 0x21 || p[i] > 0x7E)
				return false;
		return true;
	case CLU_D_GROUP0:
		if (n == 0)
			return true;
		/* fall through */
	case CLU_D_GROUP:
		return n >= 1 && n <= UINT16_MAX && !memchr(p, '/', n) && !memchr(p, '+', n) &&
		       !memchr(p, '#', n) && utf8_ok((const uint8_t *)p, n);
	case CLU_D_TOPIC:
		return n >= 1 && n <= UINT16_MAX && !memchr(p, '+', n) && !memchr(p, '#', n) &&
		       utf8_ok((const uint8_t *)p, n);
	case CLU_D_FILTER:
		return n >= 1 && n <= UINT16_MAX && filter_ok(p, n) &&
		       utf8_ok((const uint8_t *)p, n);
	case CLU_D_CID:
		return n >= 1 && n <= UINT16_MAX && utf8_ok((const uint8_t *)p, n);
	case CLU_D_TABLE:
		if (n < 1 || n > CLU_TABLE_MAX)
			return false;
		for (size_t i = 0; i < n; i++)
			if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
				return false;
		return true;
	case CLU_D_TARGET:
		/* the store's mark encoding: 'c' + client id, 'g' + "$share/g/f" */
		return n >= 2 && n <= UINT16_MAX && (p[0] == 'c' || p[0] == 'g') &&
		       utf8_ok((const uint8_t *)p + 1, n - 1);
	}
	return false;
}

struct clu_str clu_str(const char *s)
{
	struct clu_str r = { s, s ? strlen(s) : 0 };
	return r;
}

const char *clu_type_name(int type)
{
	switch (type) {
	case CLU_MSG_HELLO: return "HELLO";
	case CLU_MSG_AUTH: return "AUTH";
	case CLU_MSG_REFUSE: return "REFUSE";
	case CLU_MSG_HEARTBEAT: return "HEARTBEAT";
	case CLU_MSG_LEAVE: return "LEAVE";
	case CLU_MSG_BARRIER: return "BARRIER";
	case CLU_MSG_BARRIER_ACK: return "BARRIER_ACK";
	case CLU_MSG_MEMBERS: return "MEMBERS";
	case CLU_MSG_ROUTE_ADD: return "ROUTE_ADD";
	case CLU_MSG_ROUTE_DEL: return "ROUTE_DEL";
	case CLU_MSG_ROUTE_SYNC_BEGIN: return "ROUTE_SYNC_BEGIN";
	case CLU_MSG_ROUTE_SYNC_END: return "ROUTE_SYNC_END";
	case CLU_MSG_FORWARD: return "FORWARD";
	case CLU_MSG_FORWARD_ACK: return "FORWARD_ACK";
	case CLU_MSG_RETAIN_SET: return "RETAIN_SET";
	case CLU_MSG_TAKEOVER_REQ: return "SESSION_TAKEOVER_REQ";
	case CLU_MSG_TAKEOVER_RESP: return "SESSION_TAKEOVER_RESP";
	case CLU_MSG_CLIENTS: return "CLIENTS";
	case CLU_MSG_REPL_SET: return "REPL_SET";
	case CLU_MSG_RPC_REQ: return "RPC_REQ";
	case CLU_MSG_RPC_RESP: return "RPC_RESP";
	}
	return "UNKNOWN";
}

bool clu_is_batched(int type)
{
	return type == CLU_MSG_MEMBERS || type == CLU_MSG_ROUTE_ADD || type == CLU_MSG_ROUTE_DEL ||
	       type == CLU_MSG_FORWARD_ACK || type == CLU_MSG_RETAIN_SET ||
	       type == CLU_MSG_CLIENTS || type == CLU_MSG_REPL_SET;
}

bool clu_ack_rc_ok(uint8_t rc)
{
	return rc == 0x00 || rc == 0x10 || rc >= 0x80;
}

bool clu_known_type(int type)
{
	return strcmp(clu_type_name(type), "UNKNOWN") != 0;
}
