/*
 * clu_proto_dec.c - decoder of the cluster link protocol (clu_proto.h).
 *
 * A struct bytes_rd (core/bytes.h) walks the body: a field read past the end
 * or failing its check records the first error and later reads yield zeros,
 * so each entry type is one straight description and the frame is judged
 * once at the end. The checks mirror the encoder's (clu_proto_enc.c).
 */
#include "cluster/clu_proto_int.h"

#include <string.h>

static struct clu_str rd_str(struct bytes_rd *r, enum clu_dom d)
{
	size_t len = bytes_rd_u16(r);
	struct clu_str s = { (const char *)bytes_rd_take(r, len), len };

	if (!bytes_rd_ok(r))
		return (struct clu_str){ NULL, 0 };
	bytes_rd_check(r, clu_dom_ok(d, s), "string outside its domain");
	return s;
}

static struct clu_bin rd_bin(struct bytes_rd *r)
{
	size_t len = bytes_rd_u32(r);
	struct clu_bin b = { bytes_rd_take(r, len), len };

	if (!bytes_rd_ok(r))
		return (struct clu_bin){ NULL, 0 };
	return b;
}

static struct clu_hlc_ts rd_hlc(struct bytes_rd *r)
{
	struct clu_hlc_ts ts;

	ts.wall_ms = bytes_rd_u64(r);
	ts.logical = bytes_rd_u16(r);
	return ts;
}

/* the topic of a message, in the topic domain */
static void dec_topic(struct bytes_rd *r, struct clu_message *m)
{
	m->topic = rd_str(r, CLU_D_TOPIC);
}

/* mbody: the shared message encoding minus the topic (read by the caller) */
static void dec_mbody(struct bytes_rd *r, struct clu_message *m)
{
	struct msg_wire w;

	msg_wire_get_body(r, &w);
	m->qos = w.qos;
	m->retain = w.retain;
	m->has_expiry = w.has_expiry;
	m->expiry = w.expiry;
	m->pub_hash = w.pub_hash;
	m->props = (struct clu_bin){ w.props, w.props_len };
	m->payload = (struct clu_bin){ w.payload, w.payload_len };
}

static void dec_member(struct bytes_rd *r, struct clu_member *m)
{
	m->node = rd_str(r, CLU_D_NAME);
	m->addr = rd_str(r, CLU_D_ADDR);
	m->state = bytes_rd_u8(r);
	m->incarnation = bytes_rd_u64(r);
	bytes_rd_check(r, m->state >= CLU_MEMBER_RUNNING && m->state <= CLU_MEMBER_LEFT &&
			  m->incarnation != 0, "invalid member");
}

static void dec_route(struct bytes_rd *r, struct clu_route *rt)
{
	rt->filter = rd_str(r, CLU_D_FILTER);
	rt->group = rd_str(r, CLU_D_GROUP0);
}

static void dec_group(struct bytes_rd *r, struct clu_group *g)
{
	g->group = rd_str(r, CLU_D_GROUP);
	g->filter = rd_str(r, CLU_D_FILTER);
}

static void dec_ack(struct bytes_rd *r, struct clu_ack_range *a, uint64_t prev_last)
{
	a->first = bytes_rd_u64(r);
	a->last = bytes_rd_u64(r);
	a->rc = bytes_rd_u8(r);
	bytes_rd_check(r, a->first != 0 && a->first <= a->last && a->first > prev_last &&
			  clu_ack_rc_ok(a->rc), "invalid acknowledgement range");
}

static void dec_retained(struct bytes_rd *r, struct clu_retained *e)
{
	uint8_t kind;

	e->ts = rd_hlc(r);
	e->origin = rd_str(r, CLU_D_NAME);
	memset(&e->msg, 0, sizeof(e->msg));
	dec_topic(r, &e->msg);
	kind = bytes_rd_u8(r);
	bytes_rd_check(r, kind == CLU_RK_DELETE || kind == CLU_RK_SET, "unknown retained kind");
	e->del = kind == CLU_RK_DELETE;
	if (bytes_rd_ok(r) && !e->del)
		dec_mbody(r, &e->msg);
}

static void dec_rentry(struct bytes_rd *r, struct clu_rentry *e)
{
	uint8_t kind;
	size_t klen;

	e->table = rd_str(r, CLU_D_TABLE);
	klen = bytes_rd_u16(r);
	bytes_rd_check(r, klen >= 1 && klen <= CLU_RKEY_MAX, "replicated key outside its domain");
	e->key.p = bytes_rd_take(r, klen);
	e->key.len = bytes_rd_ok(r) ? klen : 0;
	e->ts = rd_hlc(r);
	e->origin = rd_str(r, CLU_D_NAME);
	kind = bytes_rd_u8(r);
	bytes_rd_check(r, kind == CLU_RK_DELETE || kind == CLU_RK_SET, "unknown entry kind");
	e->del = kind == CLU_RK_DELETE;
	e->expires_ms = bytes_rd_u64(r);
	e->value = (struct clu_bin){ NULL, 0 };
	if (bytes_rd_ok(r) && !e->del)
		e->value = rd_bin(r);
}

static void dec_client(struct bytes_rd *r, struct clu_client *c)
{
	c->client_id = rd_str(r, CLU_D_CID);
	c->ts = rd_hlc(r);
}

/* a list body: n:u32 then n entries, validated now and read later by clu_next_* */
static void dec_list(struct bytes_rd *r, int type, struct clu_list *l)
{
	uint64_t prev = 0;

	l->n = bytes_rd_u32(r);
	l->p = bytes_rd_cur(r);
	l->len = bytes_rd_left(r);
	for (uint32_t i = 0; i < l->n && bytes_rd_ok(r); i++) {
		union {
			struct clu_member m;
			struct clu_route rt;
			struct clu_ack_range a;
			struct clu_retained e;
			struct clu_client c;
			struct clu_rentry re;
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
		case CLU_MSG_REPL_SET:
			dec_rentry(r, &u.re);
			break;
		default:
			dec_retained(r, &u.e);
			break;
		}
	}
}

static void dec_forward(struct bytes_rd *r, struct clu_forward *f)
{
	uint8_t fl;

	f->seq = bytes_rd_u64(r);
	fl = bytes_rd_u8(r);
	bytes_rd_check(r, !(fl & ~(CLU_FF_PLAIN | CLU_FF_CLIENT | CLU_FF_RX | CLU_FF_SKIP)),
		       "reserved FORWARD flag");
	f->plain = fl & CLU_FF_PLAIN;
	f->origin = rd_str(r, CLU_D_NAME);
	f->mid = bytes_rd_u64(r);
	f->client = (struct clu_str){ NULL, 0 };
	if (fl & CLU_FF_CLIENT)
		f->client = rd_str(r, CLU_D_CID);
	f->rx_client = (struct clu_str){ NULL, 0 };
	f->rx_pid = 0;
	if (fl & CLU_FF_RX) {
		f->rx_client = rd_str(r, CLU_D_CID);
		f->rx_pid = bytes_rd_u16(r);
		bytes_rd_check(r, f->rx_pid != 0, "FORWARD RX packet id 0");
	}
	f->n_skip = 0;
	f->skip = NULL;
	f->slist = (struct clu_list){ 0 };
	if (fl & CLU_FF_SKIP) {
		f->n_skip = bytes_rd_u32(r);
		bytes_rd_check(r, f->n_skip != 0 && (fl & CLU_FF_RX), "FORWARD SKIP set");
		f->slist.n = f->n_skip;
		f->slist.p = bytes_rd_cur(r);
		for (uint32_t i = 0; i < f->n_skip && bytes_rd_ok(r); i++)
			(void)rd_str(r, CLU_D_TARGET);
		f->slist.len = bytes_rd_ok(r) ? (size_t)(bytes_rd_cur(r) - f->slist.p) : 0;
		bytes_rd_check(r, f->slist.len <= CLU_FWD_SKIP_MAX, "FORWARD SKIP set too large");
	}
	f->n_groups = bytes_rd_u16(r);
	f->groups = NULL;
	f->glist.n = f->n_groups;
	f->glist.p = bytes_rd_cur(r);
	for (uint32_t i = 0; i < f->n_groups && bytes_rd_ok(r); i++) {
		struct clu_group g;
		dec_group(r, &g);
	}
	f->glist.len = bytes_rd_ok(r) ? (size_t)(bytes_rd_cur(r) - f->glist.p) : 0;
	dec_topic(r, &f->msg);
	dec_mbody(r, &f->msg);
	bytes_rd_check(r, (f->seq == 0) == (f->msg.qos == 0) &&
			  (f->client.len ? !f->plain && !f->n_groups : (f->plain || f->n_groups)),
		       "inconsistent FORWARD");
	bytes_rd_check(r, !(fl & CLU_FF_RX) || (f->msg.qos == 2 && !f->client.len),
		       "FORWARD RX without QoS 2");
}

static void dec_hello(struct bytes_rd *r, struct clu_hello *h)
{
	const uint8_t *q;
	uint8_t fl;

	h->proto = bytes_rd_u16(r);
	h->node = rd_str(r, CLU_D_NAME);
	h->cluster = rd_str(r, CLU_D_CLUSTER);
	h->addr = rd_str(r, CLU_D_ADDR);
	h->incarnation = bytes_rd_u64(r);
	q = bytes_rd_take(r, CLU_NONCE_LEN);
	if (q)
		memcpy(h->nonce, q, CLU_NONCE_LEN);
	fl = bytes_rd_u8(r);
	bytes_rd_check(r, !(fl & ~CLU_HELLO_JOIN), "reserved HELLO flag");
	h->join = fl & CLU_HELLO_JOIN;
	bytes_rd_check(r, h->proto != 0 && h->incarnation != 0, "invalid HELLO");
}

int clu_decode_body(int type, const uint8_t *p, size_t n, struct clu_msg *m)
{
	struct bytes_rd r;
	const uint8_t *q;

	bytes_rd_init(&r, p, n);
	memset(m, 0, sizeof(*m));
	m->type = (uint8_t)type;
	switch (type) {
	case CLU_MSG_HELLO:
		dec_hello(&r, &m->hello);
		break;
	case CLU_MSG_AUTH:
		q = bytes_rd_take(&r, sizeof(struct clu_wire_auth));
		if (q)
			memcpy(m->proof, q, CLU_PROOF_LEN);
		break;
	case CLU_MSG_REFUSE:
		m->refuse.reason = bytes_rd_u8(&r);
		m->refuse.why = rd_str(&r, CLU_D_TEXT);
		bytes_rd_check(&r, m->refuse.reason >= CLU_REFUSE_VERSION &&
				   m->refuse.reason <= CLU_REFUSE_TLS, "unknown REFUSE reason");
		break;
	case CLU_MSG_HEARTBEAT:
		bytes_rd_check(&r, n == sizeof(struct clu_wire_heartbeat), "HEARTBEAT size");
		m->hb.wall_ms = bytes_rd_u64(&r);
		m->hb.echo_ms = bytes_rd_u64(&r);
		break;
	case CLU_MSG_BARRIER:
	case CLU_MSG_BARRIER_ACK:
		bytes_rd_check(&r, n == 8, "BARRIER size");
		m->barrier_id = bytes_rd_u64(&r);
		break;
	case CLU_MSG_LEAVE: {
		uint8_t fl = bytes_rd_u8(&r);
		bytes_rd_check(&r, !(fl & ~CLU_LEAVE_FORCE), "reserved LEAVE flag");
		m->leave.force = fl & CLU_LEAVE_FORCE;
		m->leave.node = rd_str(&r, CLU_D_NAME);
		m->leave.incarnation = bytes_rd_u64(&r);
		bytes_rd_check(&r, m->leave.incarnation != 0, "LEAVE incarnation 0");
		break;
	}
	case CLU_MSG_MEMBERS:
	case CLU_MSG_ROUTE_ADD:
	case CLU_MSG_ROUTE_DEL:
	case CLU_MSG_FORWARD_ACK:
	case CLU_MSG_RETAIN_SET:
	case CLU_MSG_CLIENTS:
	case CLU_MSG_REPL_SET:
		dec_list(&r, type, &m->list);
		break;
	case CLU_MSG_ROUTE_SYNC_BEGIN:
		bytes_rd_check(&r, n == sizeof(struct clu_wire_sync_begin), "SYNC_BEGIN size");
		m->sync.incarnation = bytes_rd_u64(&r);
		m->sync.sync_id = bytes_rd_u32(&r);
		bytes_rd_check(&r, m->sync.incarnation != 0, "SYNC_BEGIN incarnation 0");
		break;
	case CLU_MSG_ROUTE_SYNC_END:
		bytes_rd_check(&r, n == sizeof(struct clu_wire_sync_end), "SYNC_END size");
		m->sync.sync_id = bytes_rd_u32(&r);
		m->sync.count = bytes_rd_u32(&r);
		break;
	case CLU_MSG_FORWARD:
		dec_forward(&r, &m->fwd);
		break;
	case CLU_MSG_TAKEOVER_REQ: {
		uint8_t fl;
		m->treq.req_id = bytes_rd_u64(&r);
		fl = bytes_rd_u8(&r);
		bytes_rd_check(&r, !(fl & ~CLU_TAKEOVER_CLEAN_START), "reserved TAKEOVER_REQ flag");
		m->treq.clean_start = fl & CLU_TAKEOVER_CLEAN_START;
		m->treq.ts = rd_hlc(&r);
		m->treq.client_id = rd_str(&r, CLU_D_CID);
		break;
	}
	case CLU_MSG_TAKEOVER_RESP:
		m->tresp.req_id = bytes_rd_u64(&r);
		m->tresp.status = bytes_rd_u8(&r);
		m->tresp.client_id = rd_str(&r, CLU_D_CID);
		m->tresp.session = rd_bin(&r);
		bytes_rd_check(&r, m->tresp.status <= CLU_TAKEOVER_REFUSED &&
				   (m->tresp.status == CLU_TAKEOVER_OK || m->tresp.session.len == 0),
			       "invalid TAKEOVER_RESP");
		break;
	case CLU_MSG_RPC_REQ:
		m->rpcq.id = bytes_rd_u64(&r);
		m->rpcq.method = rd_str(&r, CLU_D_METHOD);
		m->rpcq.path = rd_str(&r, CLU_D_PATH);
		m->rpcq.query = rd_str(&r, CLU_D_QUERY);
		m->rpcq.caller = rd_str(&r, CLU_D_TEXT);
		m->rpcq.body = rd_bin(&r);
		bytes_rd_check(&r, m->rpcq.body.len <= CLU_RPC_REQ_BODY_MAX, "RPC_REQ body too large");
		break;
	case CLU_MSG_RPC_RESP:
		m->rpcr.id = bytes_rd_u64(&r);
		m->rpcr.status = bytes_rd_u16(&r);
		m->rpcr.body = rd_bin(&r);
		bytes_rd_check(&r, m->rpcr.status >= 100 && m->rpcr.status <= 599 &&
				   m->rpcr.body.len <= CLU_RPC_RESP_BODY_MAX, "invalid RPC_RESP");
		break;
	default:
		return HQ_EMALFORMED;
	}
	if (!bytes_rd_ok(&r) || bytes_rd_left(&r) != 0)
		return HQ_EMALFORMED;
	return HQ_OK;
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
	if (!clu_known_type(h->type) || h->flags != 0)
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
		struct bytes_rd r_;                               \
		if ((l)->n == 0)                                  \
			return false;                             \
		bytes_rd_init(&r_, (l)->p, (l)->len);             \
		dec(&r_, out);                                    \
		if (!bytes_rd_ok(&r_))                            \
			return false;                             \
		(l)->n--;                                         \
		(l)->p = bytes_rd_cur(&r_);                       \
		(l)->len = bytes_rd_left(&r_);                    \
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

bool clu_next_rentry(struct clu_list *l, struct clu_rentry *out)
{
	LIST_NEXT(l, dec_rentry, out);
}

/* ascending order was checked when the frame was decoded */
static void dec_ack_any(struct bytes_rd *r, struct clu_ack_range *a)
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

static void dec_target(struct bytes_rd *r, struct clu_str *t)
{
	*t = rd_str(r, CLU_D_TARGET);
}

bool clu_next_target(struct clu_list *l, struct clu_str *out)
{
	LIST_NEXT(l, dec_target, out);
}
