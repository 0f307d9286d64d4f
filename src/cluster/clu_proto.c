/*
 * clu_proto.c - encoder and decoder of the cluster link protocol; the wire
 * format is documented in clu_proto.h.
 *
 * Both directions share one description per entry type (dec_* / enc_*) and one
 * set of domain checks (dom_ok), so what we encode is exactly what we accept.
 * Reading and writing use sticky-error cursors (SQLite's pRC idiom): a field
 * read past the end or failing its check marks the cursor bad, later reads
 * yield zeros, and the frame is judged once at the end.
 */
#include "cluster/clu_proto.h"

#include <assert.h>
#include <string.h>

#include "core/err.h"

/* ---- the pinned layout (any change here is a protocol version bump) ---- */

static_assert(sizeof(struct clu_wire_hdr) == CLU_HDR_LEN, "frame header is 8 bytes");
static_assert(offsetof(struct clu_wire_hdr, magic) == 0, "magic at 0");
static_assert(offsetof(struct clu_wire_hdr, version) == 1, "version at 1");
static_assert(offsetof(struct clu_wire_hdr, type) == 2, "type at 2");
static_assert(offsetof(struct clu_wire_hdr, flags) == 3, "flags at 3");
static_assert(offsetof(struct clu_wire_hdr, len) == 4, "length at 4");
static_assert(CLU_PROTO_VERSION == 1 && CLU_MAGIC == 0xC1, "version 1 frames");
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
static_assert(CLU_MSG_TAKEOVER_REQ == 0x50 && CLU_MSG_TAKEOVER_RESP == 0x51 &&
	      CLU_MSG_CLIENTS == 0x52,
	      "takeover message numbers");

/* fixed-size bodies and entries, as on the wire */
struct clu_wire_auth {
	uint8_t proof[CLU_PROOF_LEN];
};
struct clu_wire_heartbeat {
	uint8_t wall_ms[8];
	uint8_t echo_ms[8];
};
struct clu_wire_sync_begin {
	uint8_t incarnation[8];
	uint8_t sync_id[4];
};
struct clu_wire_sync_end {
	uint8_t sync_id[4];
	uint8_t count[4];
};
struct clu_wire_ack_range {
	uint8_t first[8];
	uint8_t last[8];
	uint8_t rc;
};
static_assert(sizeof(struct clu_wire_auth) == 32, "AUTH body");
static_assert(sizeof(struct clu_wire_heartbeat) == 16, "HEARTBEAT body");
static_assert(sizeof(struct clu_wire_sync_begin) == 12, "ROUTE_SYNC_BEGIN body");
static_assert(sizeof(struct clu_wire_sync_end) == 8, "ROUTE_SYNC_END body");
static_assert(sizeof(struct clu_wire_ack_range) == 17, "FORWARD_ACK range");

#define MF_RETAIN 0x01   /* mbody mflags */
#define MF_EXPIRY 0x02
#define FF_PLAIN 0x01    /* FORWARD fflags */
#define FF_CLIENT 0x02
#define RK_DELETE 0      /* RETAIN_SET kind */
#define RK_SET 1

/* ---- string domains ---- */

enum dom {
	D_NAME, D_CLUSTER, D_ADDR, D_TOPIC, D_FILTER, D_GROUP, D_GROUP0, D_TEXT, D_CID,
};

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

static bool dom_ok(enum dom d, struct clu_str s)
{
	const char *p = s.p;
	size_t n = s.len;

	if (n && !p)
		return false;
	switch (d) {
	case D_NAME:
		return clu_name_valid(p, n);
	case D_CLUSTER:
		return clu_cluster_valid(p, n);
	case D_ADDR:
		return clu_addr_valid(p, n);
	case D_TEXT:
		return n <= CLU_TEXT_MAX && utf8_ok((const uint8_t *)p, n);
	case D_GROUP0:
		if (n == 0)
			return true;
		/* fall through */
	case D_GROUP:
		return n >= 1 && n <= UINT16_MAX && !memchr(p, '/', n) && !memchr(p, '+', n) &&
		       !memchr(p, '#', n) && utf8_ok((const uint8_t *)p, n);
	case D_TOPIC:
		return n >= 1 && n <= UINT16_MAX && !memchr(p, '+', n) && !memchr(p, '#', n) &&
		       utf8_ok((const uint8_t *)p, n);
	case D_FILTER:
		return n >= 1 && n <= UINT16_MAX && filter_ok(p, n) &&
		       utf8_ok((const uint8_t *)p, n);
	case D_CID:
		return n >= 1 && n <= UINT16_MAX && utf8_ok((const uint8_t *)p, n);
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
	}
	return "UNKNOWN";
}

static bool is_batched(int type)
{
	return type == CLU_MSG_MEMBERS || type == CLU_MSG_ROUTE_ADD || type == CLU_MSG_ROUTE_DEL ||
	       type == CLU_MSG_FORWARD_ACK || type == CLU_MSG_RETAIN_SET ||
	       type == CLU_MSG_CLIENTS;
}

/* a valid PUBACK/PUBREC reason code: success, no matching subscribers, or a failure */
static bool ack_rc_ok(uint8_t rc)
{
	return rc == 0x00 || rc == 0x10 || rc >= 0x80;
}

/* ---- reading ---- */

struct rd {
	const uint8_t *p;
	size_t n;
	bool bad;
};

static const uint8_t *rd_take(struct rd *r, size_t k)
{
	const uint8_t *q = r->p;

	if (r->bad || r->n < k) {
		r->bad = true;
		return NULL;
	}
	r->p += k;
	r->n -= k;
	return q;
}

static uint64_t rd_uint(struct rd *r, size_t k)
{
	const uint8_t *q = rd_take(r, k);
	uint64_t v = 0;

	for (size_t i = 0; q && i < k; i++)
		v = v << 8 | q[i];
	return v;
}

static uint8_t rd_u8(struct rd *r) { return (uint8_t)rd_uint(r, 1); }
static uint16_t rd_u16(struct rd *r) { return (uint16_t)rd_uint(r, 2); }
static uint32_t rd_u32(struct rd *r) { return (uint32_t)rd_uint(r, 4); }
static uint64_t rd_u64(struct rd *r) { return rd_uint(r, 8); }

static void rd_check(struct rd *r, bool ok)
{
	if (!ok)
		r->bad = true;
}

static struct clu_str rd_str(struct rd *r, enum dom d)
{
	size_t len = rd_u16(r);
	struct clu_str s = { (const char *)rd_take(r, len), len };

	if (r->bad)
		return (struct clu_str){ NULL, 0 };
	rd_check(r, dom_ok(d, s));
	return s;
}

static struct clu_bin rd_bin(struct rd *r)
{
	size_t len = rd_u32(r);
	struct clu_bin b = { rd_take(r, len), len };

	if (r->bad)
		return (struct clu_bin){ NULL, 0 };
	return b;
}

static struct clu_hlc_ts rd_hlc(struct rd *r)
{
	struct clu_hlc_ts ts;

	ts.wall_ms = rd_u64(r);
	ts.logical = rd_u16(r);
	return ts;
}

/* mbody (the topic is read by the caller) */
static void dec_mbody(struct rd *r, struct clu_message *m)
{
	uint8_t fl;

	m->qos = rd_u8(r);
	fl = rd_u8(r);
	rd_check(r, m->qos <= 2 && !(fl & ~(MF_RETAIN | MF_EXPIRY)));
	m->retain = fl & MF_RETAIN;
	m->has_expiry = fl & MF_EXPIRY;
	m->expiry = m->has_expiry ? rd_u32(r) : 0;
	m->pub_hash = rd_u32(r);
	m->props = rd_bin(r);
	m->payload = rd_bin(r);
}

static void dec_member(struct rd *r, struct clu_member *m)
{
	m->node = rd_str(r, D_NAME);
	m->addr = rd_str(r, D_ADDR);
	m->state = rd_u8(r);
	m->incarnation = rd_u64(r);
	rd_check(r, m->state >= CLU_MEMBER_RUNNING && m->state <= CLU_MEMBER_LEFT &&
		     m->incarnation != 0);
}

static void dec_route(struct rd *r, struct clu_route *rt)
{
	rt->filter = rd_str(r, D_FILTER);
	rt->group = rd_str(r, D_GROUP0);
}

static void dec_group(struct rd *r, struct clu_group *g)
{
	g->group = rd_str(r, D_GROUP);
	g->filter = rd_str(r, D_FILTER);
}

static void dec_ack(struct rd *r, struct clu_ack_range *a, uint64_t prev_last)
{
	a->first = rd_u64(r);
	a->last = rd_u64(r);
	a->rc = rd_u8(r);
	rd_check(r, a->first != 0 && a->first <= a->last && a->first > prev_last && ack_rc_ok(a->rc));
}

static void dec_retained(struct rd *r, struct clu_retained *e)
{
	uint8_t kind;

	e->ts = rd_hlc(r);
	e->origin = rd_str(r, D_NAME);
	memset(&e->msg, 0, sizeof(e->msg));
	e->msg.topic = rd_str(r, D_TOPIC);
	kind = rd_u8(r);
	rd_check(r, kind == RK_DELETE || kind == RK_SET);
	e->del = kind == RK_DELETE;
	if (!r->bad && !e->del)
		dec_mbody(r, &e->msg);
}

static void dec_client(struct rd *r, struct clu_client *c)
{
	c->client_id = rd_str(r, D_CID);
	c->ts = rd_hlc(r);
}

/* a list body: n:u32 then n entries, validated now and read later by clu_next_* */
static void dec_list(struct rd *r, int type, struct clu_list *l)
{
	uint64_t prev = 0;

	l->n = rd_u32(r);
	l->p = r->p;
	l->len = r->n;
	for (uint32_t i = 0; i < l->n && !r->bad; i++) {
		union {
			struct clu_member m;
			struct clu_route rt;
			struct clu_ack_range a;
			struct clu_retained e;
			struct clu_client c;
		} u;

		switch (type) {
		case CLU_MSG_MEMBERS:
			dec_member(r, &u.m);
			break;
		case CLU_MSG_ROUTE_ADD:
		case CLU_MSG_ROUTE_DEL:
			dec_route(r, &u.rt);
			break;
		case CLU_MSG_FORWARD_ACK:
			dec_ack(r, &u.a, prev);
			prev = u.a.last;
			break;
		case CLU_MSG_CLIENTS:
			dec_client(r, &u.c);
			break;
		default:
			dec_retained(r, &u.e);
			break;
		}
	}
}

static void dec_forward(struct rd *r, struct clu_forward *f)
{
	uint8_t fl;

	f->seq = rd_u64(r);
	fl = rd_u8(r);
	rd_check(r, !(fl & ~(FF_PLAIN | FF_CLIENT)));
	f->plain = fl & FF_PLAIN;
	f->origin = rd_str(r, D_NAME);
	f->client = (struct clu_str){ NULL, 0 };
	if (fl & FF_CLIENT)
		f->client = rd_str(r, D_CID);
	f->n_groups = rd_u16(r);
	f->groups = NULL;
	f->glist.n = f->n_groups;
	f->glist.p = r->p;
	for (uint32_t i = 0; i < f->n_groups && !r->bad; i++) {
		struct clu_group g;
		dec_group(r, &g);
	}
	f->glist.len = r->bad ? 0 : (size_t)(r->p - f->glist.p);
	f->msg.topic = rd_str(r, D_TOPIC);
	dec_mbody(r, &f->msg);
	rd_check(r, (f->seq == 0) == (f->msg.qos == 0) &&
		     (f->client.len ? !f->plain && !f->n_groups : (f->plain || f->n_groups)));
}

int clu_decode_body(int type, const uint8_t *p, size_t n, struct clu_msg *m)
{
	struct rd r = { p, n, false };
	const uint8_t *q;

	memset(m, 0, sizeof(*m));
	m->type = (uint8_t)type;
	switch (type) {
	case CLU_MSG_HELLO:
		m->hello.proto = rd_u16(&r);
		m->hello.node = rd_str(&r, D_NAME);
		m->hello.cluster = rd_str(&r, D_CLUSTER);
		m->hello.addr = rd_str(&r, D_ADDR);
		m->hello.incarnation = rd_u64(&r);
		q = rd_take(&r, CLU_NONCE_LEN);
		if (q)
			memcpy(m->hello.nonce, q, CLU_NONCE_LEN);
		{
			uint8_t fl = rd_u8(&r);
			rd_check(&r, !(fl & ~CLU_HELLO_JOIN));
			m->hello.join = fl & CLU_HELLO_JOIN;
		}
		rd_check(&r, m->hello.proto != 0 && m->hello.incarnation != 0);
		break;
	case CLU_MSG_AUTH:
		q = rd_take(&r, sizeof(struct clu_wire_auth));
		if (q)
			memcpy(m->proof, q, CLU_PROOF_LEN);
		break;
	case CLU_MSG_REFUSE:
		m->refuse.reason = rd_u8(&r);
		m->refuse.why = rd_str(&r, D_TEXT);
		rd_check(&r, m->refuse.reason >= CLU_REFUSE_VERSION &&
			     m->refuse.reason <= CLU_REFUSE_BUSY);
		break;
	case CLU_MSG_HEARTBEAT:
		rd_check(&r, n == sizeof(struct clu_wire_heartbeat));
		m->hb.wall_ms = rd_u64(&r);
		m->hb.echo_ms = rd_u64(&r);
		break;
	case CLU_MSG_BARRIER:
	case CLU_MSG_BARRIER_ACK:
		rd_check(&r, n == 8);
		m->barrier_id = rd_u64(&r);
		break;
	case CLU_MSG_LEAVE: {
		uint8_t fl = rd_u8(&r);
		rd_check(&r, !(fl & ~CLU_LEAVE_FORCE));
		m->leave.force = fl & CLU_LEAVE_FORCE;
		m->leave.node = rd_str(&r, D_NAME);
		m->leave.incarnation = rd_u64(&r);
		rd_check(&r, m->leave.incarnation != 0);
		break;
	}
	case CLU_MSG_MEMBERS:
	case CLU_MSG_ROUTE_ADD:
	case CLU_MSG_ROUTE_DEL:
	case CLU_MSG_FORWARD_ACK:
	case CLU_MSG_RETAIN_SET:
	case CLU_MSG_CLIENTS:
		dec_list(&r, type, &m->list);
		break;
	case CLU_MSG_ROUTE_SYNC_BEGIN:
		rd_check(&r, n == sizeof(struct clu_wire_sync_begin));
		m->sync.incarnation = rd_u64(&r);
		m->sync.sync_id = rd_u32(&r);
		rd_check(&r, m->sync.incarnation != 0);
		break;
	case CLU_MSG_ROUTE_SYNC_END:
		rd_check(&r, n == sizeof(struct clu_wire_sync_end));
		m->sync.sync_id = rd_u32(&r);
		m->sync.count = rd_u32(&r);
		break;
	case CLU_MSG_FORWARD:
		dec_forward(&r, &m->fwd);
		break;
	case CLU_MSG_TAKEOVER_REQ: {
		uint8_t fl;
		m->treq.req_id = rd_u64(&r);
		fl = rd_u8(&r);
		rd_check(&r, !(fl & ~CLU_TAKEOVER_CLEAN_START));
		m->treq.clean_start = fl & CLU_TAKEOVER_CLEAN_START;
		m->treq.ts = rd_hlc(&r);
		m->treq.client_id = rd_str(&r, D_CID);
		break;
	}
	case CLU_MSG_TAKEOVER_RESP:
		m->tresp.req_id = rd_u64(&r);
		m->tresp.status = rd_u8(&r);
		m->tresp.client_id = rd_str(&r, D_CID);
		m->tresp.session = rd_bin(&r);
		rd_check(&r, m->tresp.status <= CLU_TAKEOVER_REFUSED &&
			     (m->tresp.status == CLU_TAKEOVER_OK || m->tresp.session.len == 0));
		break;
	default:
		return HQ_EMALFORMED;
	}
	if (r.bad || r.n != 0)
		return HQ_EMALFORMED;
	return HQ_OK;
}

static bool known_type(int type)
{
	return strcmp(clu_type_name(type), "UNKNOWN") != 0;
}

int clu_frame_parse(const uint8_t *p, size_t n, size_t max_body, struct clu_frame *h)
{
	if (n >= 1 && p[0] != CLU_MAGIC)
		return HQ_EMALFORMED;
	if (n < CLU_HDR_LEN)
		return HQ_EAGAIN;
	h->version = p[1];
	h->type = p[2];
	h->flags = p[3];
	h->len = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
	if (h->len > CLU_MAX_BODY || h->len > max_body)
		return HQ_ETOOLARGE;
	if (h->version != CLU_PROTO_VERSION)
		return HQ_EVERSION;
	if (!known_type(h->type) || h->flags != 0)
		return HQ_EMALFORMED;
	return HQ_OK;
}

int clu_decode(const uint8_t *p, size_t n, size_t max_body, struct clu_msg *m, size_t *used)
{
	struct clu_frame h;
	int rc = clu_frame_parse(p, n, max_body, &h);

	if (rc)
		return rc;
	if (n - CLU_HDR_LEN < h.len)
		return HQ_EAGAIN;
	rc = clu_decode_body(h.type, p + CLU_HDR_LEN, h.len, m);
	if (rc)
		return rc;
	*used = CLU_HDR_LEN + (size_t)h.len;
	return HQ_OK;
}

/* ---- iterating validated lists ---- */

#define LIST_NEXT(l, dec, out)                                    \
	do {                                                      \
		struct rd r_ = { (l)->p, (l)->len, false };       \
		if ((l)->n == 0)                                  \
			return false;                             \
		dec(&r_, out);                                    \
		if (r_.bad)                                       \
			return false;                             \
		(l)->n--;                                         \
		(l)->p = r_.p;                                    \
		(l)->len = r_.n;                                  \
		return true;                                      \
	} while (0)

bool clu_next_member(struct clu_list *l, struct clu_member *out)
{
	LIST_NEXT(l, dec_member, out);
}

bool clu_next_route(struct clu_list *l, struct clu_route *out)
{
	LIST_NEXT(l, dec_route, out);
}

bool clu_next_client(struct clu_list *l, struct clu_client *out)
{
	LIST_NEXT(l, dec_client, out);
}

/* ascending order was checked when the frame was decoded */
static void dec_ack_any(struct rd *r, struct clu_ack_range *a)
{
	dec_ack(r, a, 0);
}

bool clu_next_ack(struct clu_list *l, struct clu_ack_range *out)
{
	LIST_NEXT(l, dec_ack_any, out);
}

bool clu_next_retained(struct clu_list *l, struct clu_retained *out)
{
	LIST_NEXT(l, dec_retained, out);
}

bool clu_next_group(struct clu_list *l, struct clu_group *out)
{
	LIST_NEXT(l, dec_group, out);
}

/* ---- writing ---- */

struct wr {
	struct buf *b;
	int err;
};

static void wr_check(struct wr *w, bool ok)
{
	if (!ok && !w->err)
		w->err = HQ_EINVAL;
}

static void wr_uint(struct wr *w, uint64_t v, size_t k)
{
	uint8_t t[8];

	if (w->err)
		return;
	for (size_t i = 0; i < k; i++)
		t[i] = (uint8_t)(v >> (8 * (k - 1 - i)));
	buf_append(w->b, t, k);
}

static void wr_u8(struct wr *w, uint8_t v) { wr_uint(w, v, 1); }
static void wr_u16(struct wr *w, uint16_t v) { wr_uint(w, v, 2); }
static void wr_u32(struct wr *w, uint32_t v) { wr_uint(w, v, 4); }
static void wr_u64(struct wr *w, uint64_t v) { wr_uint(w, v, 8); }

static void wr_raw(struct wr *w, const void *p, size_t n)
{
	if (!w->err && n)
		buf_append(w->b, p, n);
}

static void wr_str(struct wr *w, enum dom d, struct clu_str s)
{
	wr_check(w, dom_ok(d, s));
	wr_u16(w, (uint16_t)s.len);
	wr_raw(w, s.p, s.len);
}

static void wr_bin(struct wr *w, struct clu_bin b)
{
	if (!w->err && b.len > CLU_MAX_BODY)
		w->err = HQ_ETOOLARGE;
	wr_check(w, !b.len || b.p);
	wr_u32(w, (uint32_t)b.len);
	wr_raw(w, b.p, b.len);
}

static void wr_hlc(struct wr *w, struct clu_hlc_ts ts)
{
	wr_u64(w, ts.wall_ms);
	wr_u16(w, ts.logical);
}

static void enc_mbody(struct wr *w, const struct clu_message *m)
{
	wr_check(w, m->qos <= 2);
	wr_u8(w, m->qos);
	wr_u8(w, (m->retain ? MF_RETAIN : 0) | (m->has_expiry ? MF_EXPIRY : 0));
	if (m->has_expiry)
		wr_u32(w, m->expiry);
	wr_u32(w, m->pub_hash);
	wr_bin(w, m->props);
	wr_bin(w, m->payload);
}

static void enc_member(struct wr *w, const struct clu_member *m)
{
	wr_check(w, m->state >= CLU_MEMBER_RUNNING && m->state <= CLU_MEMBER_LEFT &&
		     m->incarnation != 0);
	wr_str(w, D_NAME, m->node);
	wr_str(w, D_ADDR, m->addr);
	wr_u8(w, m->state);
	wr_u64(w, m->incarnation);
}

static void enc_route(struct wr *w, const struct clu_route *r)
{
	wr_str(w, D_FILTER, r->filter);
	wr_str(w, D_GROUP0, r->group);
}

static void enc_ack(struct wr *w, const struct clu_ack_range *a, uint64_t prev_last)
{
	wr_check(w, a->first != 0 && a->first <= a->last && a->first > prev_last && ack_rc_ok(a->rc));
	wr_u64(w, a->first);
	wr_u64(w, a->last);
	wr_u8(w, a->rc);
}

static void enc_retained(struct wr *w, const struct clu_retained *e)
{
	wr_hlc(w, e->ts);
	wr_str(w, D_NAME, e->origin);
	wr_str(w, D_TOPIC, e->msg.topic);
	wr_u8(w, e->del ? RK_DELETE : RK_SET);
	if (!e->del)
		enc_mbody(w, &e->msg);
}

static void enc_forward(struct wr *w, const struct clu_forward *f)
{
	const struct clu_message *m = &f->msg;

	bool client = f->client.len > 0;

	wr_check(w, (f->seq == 0) == (m->qos == 0) &&
		     (client ? !f->plain && !f->n_groups : (f->plain || f->n_groups)) &&
		     (!f->n_groups || f->groups));
	if (!w->err && m->topic.len + m->props.len + m->payload.len > CLU_MAX_BODY)
		w->err = HQ_ETOOLARGE;
	wr_u64(w, f->seq);
	wr_u8(w, (f->plain ? FF_PLAIN : 0) | (client ? FF_CLIENT : 0));
	wr_str(w, D_NAME, f->origin);
	if (client)
		wr_str(w, D_CID, f->client);
	wr_u16(w, f->n_groups);
	for (uint16_t i = 0; i < f->n_groups && !w->err; i++) {
		wr_str(w, D_GROUP, f->groups[i].group);
		wr_str(w, D_FILTER, f->groups[i].filter);
	}
	wr_str(w, D_TOPIC, m->topic);
	enc_mbody(w, m);
}

/* where a frame starts, as an offset from out->off (buf_reserve may compact) */
static size_t frame_begin(struct buf *out, int type)
{
	struct clu_wire_hdr h = { CLU_MAGIC, CLU_PROTO_VERSION, (uint8_t)type, 0, { 0 } };
	size_t start = out->len - out->off;

	buf_append(out, &h, sizeof(h));
	return start;
}

static int frame_end(struct buf *out, size_t start, int err)
{
	uint8_t *h = out->data + out->off + start;
	size_t body = out->len - out->off - start - CLU_HDR_LEN;

	if (!err && body > CLU_MAX_BODY)
		err = HQ_ETOOLARGE;
	if (err) {
		out->len = out->off + start;
		return err;
	}
	h[4] = (uint8_t)(body >> 24);
	h[5] = (uint8_t)(body >> 16);
	h[6] = (uint8_t)(body >> 8);
	h[7] = (uint8_t)body;
	return HQ_OK;
}

int clu_encode(struct buf *out, const struct clu_msg *m)
{
	struct wr w = { out, HQ_OK };
	size_t start;

	if (!known_type(m->type) || is_batched(m->type))
		return HQ_EINVAL;
	start = frame_begin(out, m->type);
	switch (m->type) {
	case CLU_MSG_HELLO:
		wr_check(&w, m->hello.proto != 0 && m->hello.incarnation != 0);
		wr_u16(&w, m->hello.proto);
		wr_str(&w, D_NAME, m->hello.node);
		wr_str(&w, D_CLUSTER, m->hello.cluster);
		wr_str(&w, D_ADDR, m->hello.addr);
		wr_u64(&w, m->hello.incarnation);
		wr_raw(&w, m->hello.nonce, CLU_NONCE_LEN);
		wr_u8(&w, m->hello.join ? CLU_HELLO_JOIN : 0);
		break;
	case CLU_MSG_AUTH:
		wr_raw(&w, m->proof, CLU_PROOF_LEN);
		break;
	case CLU_MSG_REFUSE:
		wr_check(&w, m->refuse.reason >= CLU_REFUSE_VERSION &&
			     m->refuse.reason <= CLU_REFUSE_BUSY);
		wr_u8(&w, m->refuse.reason);
		wr_str(&w, D_TEXT, m->refuse.why);
		break;
	case CLU_MSG_HEARTBEAT:
		wr_u64(&w, m->hb.wall_ms);
		wr_u64(&w, m->hb.echo_ms);
		break;
	case CLU_MSG_BARRIER:
	case CLU_MSG_BARRIER_ACK:
		wr_u64(&w, m->barrier_id);
		break;
	case CLU_MSG_LEAVE:
		wr_check(&w, m->leave.incarnation != 0);
		wr_u8(&w, m->leave.force ? CLU_LEAVE_FORCE : 0);
		wr_str(&w, D_NAME, m->leave.node);
		wr_u64(&w, m->leave.incarnation);
		break;
	case CLU_MSG_ROUTE_SYNC_BEGIN:
		wr_check(&w, m->sync.incarnation != 0);
		wr_u64(&w, m->sync.incarnation);
		wr_u32(&w, m->sync.sync_id);
		break;
	case CLU_MSG_ROUTE_SYNC_END:
		wr_u32(&w, m->sync.sync_id);
		wr_u32(&w, m->sync.count);
		break;
	case CLU_MSG_FORWARD:
		enc_forward(&w, &m->fwd);
		break;
	case CLU_MSG_TAKEOVER_REQ:
		wr_u64(&w, m->treq.req_id);
		wr_u8(&w, m->treq.clean_start ? CLU_TAKEOVER_CLEAN_START : 0);
		wr_hlc(&w, m->treq.ts);
		wr_str(&w, D_CID, m->treq.client_id);
		break;
	case CLU_MSG_TAKEOVER_RESP:
		wr_check(&w, m->tresp.status <= CLU_TAKEOVER_REFUSED &&
			     (m->tresp.status == CLU_TAKEOVER_OK || m->tresp.session.len == 0));
		wr_u64(&w, m->tresp.req_id);
		wr_u8(&w, m->tresp.status);
		wr_str(&w, D_CID, m->tresp.client_id);
		wr_bin(&w, m->tresp.session);
		break;
	}
	return frame_end(out, start, w.err);
}

/* ---- batches ---- */

int clu_batch_begin(struct clu_batch *b, struct buf *out, int type)
{
	struct wr w = { out, HQ_OK };

	if (!is_batched(type))
		return HQ_EINVAL;
	b->out = out;
	b->type = (uint8_t)type;
	b->n = 0;
	b->last_seq = 0;
	b->start = frame_begin(out, type);
	wr_u32(&w, 0);   /* n, patched by clu_batch_end */
	return HQ_OK;
}

size_t clu_batch_size(const struct clu_batch *b)
{
	return b->out->len - b->out->off - b->start;
}

/* keep an entry just written, or drop it on error or when the frame grew too large */
static int batch_entry_end(struct clu_batch *b, size_t before, int err)
{
	if (!err && clu_batch_size(b) - CLU_HDR_LEN > CLU_MAX_BODY)
		err = HQ_ETOOLARGE;
	if (!err && b->n == UINT32_MAX)
		err = HQ_ETOOLARGE;
	if (err) {
		b->out->len = b->out->off + b->start + before;
		return err;
	}
	b->n++;
	return HQ_OK;
}

int clu_batch_member(struct clu_batch *b, const struct clu_member *m)
{
	struct wr w = { b->out, HQ_OK };
	size_t before = clu_batch_size(b);

	if (b->type != CLU_MSG_MEMBERS)
		return HQ_EINVAL;
	enc_member(&w, m);
	return batch_entry_end(b, before, w.err);
}

int clu_batch_route(struct clu_batch *b, const struct clu_route *r)
{
	struct wr w = { b->out, HQ_OK };
	size_t before = clu_batch_size(b);

	if (b->type != CLU_MSG_ROUTE_ADD && b->type != CLU_MSG_ROUTE_DEL)
		return HQ_EINVAL;
	enc_route(&w, r);
	return batch_entry_end(b, before, w.err);
}

int clu_batch_ack(struct clu_batch *b, const struct clu_ack_range *r)
{
	struct wr w = { b->out, HQ_OK };
	size_t before = clu_batch_size(b);
	int rc;

	if (b->type != CLU_MSG_FORWARD_ACK)
		return HQ_EINVAL;
	enc_ack(&w, r, b->last_seq);
	rc = batch_entry_end(b, before, w.err);
	if (!rc)
		b->last_seq = r->last;
	return rc;
}

int clu_batch_retained(struct clu_batch *b, const struct clu_retained *r)
{
	struct wr w = { b->out, HQ_OK };
	size_t before = clu_batch_size(b);

	if (b->type != CLU_MSG_RETAIN_SET)
		return HQ_EINVAL;
	enc_retained(&w, r);
	return batch_entry_end(b, before, w.err);
}

void clu_batch_end(struct clu_batch *b)
{
	uint8_t *c = b->out->data + b->out->off + b->start + CLU_HDR_LEN;

	c[0] = (uint8_t)(b->n >> 24);
	c[1] = (uint8_t)(b->n >> 16);
	c[2] = (uint8_t)(b->n >> 8);
	c[3] = (uint8_t)b->n;
	frame_end(b->out, b->start, HQ_OK);   /* entries keep the body within CLU_MAX_BODY */
}

void clu_batch_abort(struct clu_batch *b)
{
	b->out->len = b->out->off + b->start;
}

int clu_batch_client(struct clu_batch *b, const struct clu_client *c)
{
	struct wr w = { b->out, HQ_OK };
	size_t before = clu_batch_size(b);

	if (b->type != CLU_MSG_CLIENTS)
		return HQ_EINVAL;
	wr_str(&w, D_CID, c->client_id);
	wr_hlc(&w, c->ts);
	return batch_entry_end(b, before, w.err);
}
