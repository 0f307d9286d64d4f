/*
 * clu_proto_enc.c - encoder of the cluster link protocol (clu_proto.h):
 * single frames (clu_encode) and batched frames (clu_batch_*).
 *
 * A struct bytes_wr (core/bytes.h) appends to the caller's buffer; a field
 * failing its check records the first error and later writes are dropped,
 * and the frame (or batch entry) is then cut off again so out is unchanged.
 * The checks mirror the decoder's (clu_proto_dec.c): a frame we send is one
 * the peer accepts.
 */
#include "cluster/clu_proto_int.h"

#include <stdint.h>
#include <string.h>

static void wr_str(struct bytes_wr *w, enum clu_dom d, struct clu_str s)
{
	bytes_wr_check(w, clu_dom_ok(d, s), "string outside its domain");
	bytes_wr_u16(w, (uint16_t)s.len);
	bytes_wr_bytes(w, s.p, s.len);
}

static void wr_bin(struct bytes_wr *w, struct clu_bin b)
{
	if (b.len > CLU_MAX_BODY)
		bytes_wr_fail(w, HQ_ETOOLARGE, "blob larger than a frame");
	bytes_wr_check(w, !b.len || b.p, "blob without bytes");
	bytes_wr_u32(w, (uint32_t)b.len);
	bytes_wr_bytes(w, b.p, b.len);
}

static void wr_hlc(struct bytes_wr *w, struct clu_hlc_ts ts)
{
	bytes_wr_u64(w, ts.wall_ms);
	bytes_wr_u16(w, ts.logical);
}

static void enc_topic(struct bytes_wr *w, const struct clu_message *m)
{
	wr_str(w, CLU_D_TOPIC, m->topic);
}

/* mbody: the shared message encoding minus the topic (written by the caller) */
static void enc_mbody(struct bytes_wr *w, const struct clu_message *m)
{
	struct msg_wire mw = clu_msg_wire(m);

	/* refused before a byte is copied: the frame could not carry it */
	if (m->props.len > CLU_MAX_BODY || m->payload.len > CLU_MAX_BODY)
		bytes_wr_fail(w, HQ_ETOOLARGE, "message larger than a frame");
	msg_wire_put_body(w, &mw);
}

static void enc_member(struct bytes_wr *w, const struct clu_member *m)
{
	bytes_wr_check(w, m->state >= CLU_MEMBER_RUNNING && m->state <= CLU_MEMBER_LEFT &&
			  m->incarnation != 0, "invalid member");
	wr_str(w, CLU_D_NAME, m->node);
	wr_str(w, CLU_D_ADDR, m->addr);
	bytes_wr_u8(w, m->state);
	bytes_wr_u64(w, m->incarnation);
}

static void enc_route(struct bytes_wr *w, const struct clu_route *r)
{
	wr_str(w, CLU_D_FILTER, r->filter);
	wr_str(w, CLU_D_GROUP0, r->group);
}

static void enc_ack(struct bytes_wr *w, const struct clu_ack_range *a, uint64_t prev_last)
{
	bytes_wr_check(w, a->first != 0 && a->first <= a->last && a->first > prev_last &&
			  clu_ack_rc_ok(a->rc), "invalid acknowledgement range");
	bytes_wr_u64(w, a->first);
	bytes_wr_u64(w, a->last);
	bytes_wr_u8(w, a->rc);
}

static void enc_retained(struct bytes_wr *w, const struct clu_retained *e)
{
	wr_hlc(w, e->ts);
	wr_str(w, CLU_D_NAME, e->origin);
	enc_topic(w, &e->msg);
	bytes_wr_u8(w, e->del ? CLU_RK_DELETE : CLU_RK_SET);
	if (!e->del)
		enc_mbody(w, &e->msg);
}

static void enc_client(struct bytes_wr *w, const struct clu_client *c)
{
	wr_str(w, CLU_D_CID, c->client_id);
	wr_hlc(w, c->ts);
}

static void enc_rentry(struct bytes_wr *w, const struct clu_rentry *e)
{
	bytes_wr_check(w, e->key.len >= 1 && e->key.len <= CLU_RKEY_MAX && e->key.p,
		       "replicated key outside its domain");
	wr_str(w, CLU_D_TABLE, e->table);
	bytes_wr_u16(w, (uint16_t)e->key.len);
	bytes_wr_bytes(w, e->key.p, e->key.len);
	wr_hlc(w, e->ts);
	wr_str(w, CLU_D_NAME, e->origin);
	bytes_wr_u8(w, e->del ? CLU_RK_DELETE : CLU_RK_SET);
	bytes_wr_u64(w, e->expires_ms);
	if (!e->del)
		wr_bin(w, e->value);
}

/* FORWARD's skip set: its size on the wire, SIZE_MAX past CLU_FWD_SKIP_MAX */
static size_t skip_size(const struct clu_forward *f)
{
	size_t n = 0;

	for (uint32_t i = 0; i < f->n_skip; i++) {
		n += 2 + f->skip[i].len;
		if (n > CLU_FWD_SKIP_MAX)
			return SIZE_MAX;
	}
	return n;
}

static void enc_forward(struct bytes_wr *w, const struct clu_forward *f)
{
	const struct clu_message *m = &f->msg;
	bool client = f->client.len > 0;
	bool rx = f->rx_client.len > 0;

	bytes_wr_check(w, (f->seq == 0) == (m->qos == 0) &&
			  (client ? !f->plain && !f->n_groups : (f->plain || f->n_groups)) &&
			  (!f->n_groups || f->groups), "inconsistent FORWARD");
	bytes_wr_check(w, (!rx || (m->qos == 2 && !client && f->rx_pid)) &&
			  (!f->n_skip || (rx && f->skip)), "inconsistent FORWARD RX/SKIP");
	if (m->topic.len + m->props.len + m->payload.len > CLU_MAX_BODY)
		bytes_wr_fail(w, HQ_ETOOLARGE, "message larger than a frame");
	if (w->rc == HQ_OK && f->n_skip && skip_size(f) == SIZE_MAX)
		bytes_wr_fail(w, HQ_ETOOLARGE, "skip set larger than CLU_FWD_SKIP_MAX");
	bytes_wr_u64(w, f->seq);
	bytes_wr_u8(w, (f->plain ? CLU_FF_PLAIN : 0) | (client ? CLU_FF_CLIENT : 0) |
			       (rx ? CLU_FF_RX : 0) | (f->n_skip ? CLU_FF_SKIP : 0));
	wr_str(w, CLU_D_NAME, f->origin);
	bytes_wr_u64(w, f->mid);
	if (client)
		wr_str(w, CLU_D_CID, f->client);
	if (rx) {
		wr_str(w, CLU_D_CID, f->rx_client);
		bytes_wr_u16(w, f->rx_pid);
	}
	if (f->n_skip) {
		bytes_wr_u32(w, f->n_skip);
		for (uint32_t i = 0; i < f->n_skip && w->rc == HQ_OK; i++)
			wr_str(w, CLU_D_TARGET, f->skip[i]);
	}
	bytes_wr_u16(w, f->n_groups);
	for (uint16_t i = 0; i < f->n_groups && w->rc == HQ_OK; i++) {
		wr_str(w, CLU_D_GROUP, f->groups[i].group);
		wr_str(w, CLU_D_FILTER, f->groups[i].filter);
	}
	enc_topic(w, m);
	enc_mbody(w, m);
}

static void enc_hello(struct bytes_wr *w, const struct clu_hello *h)
{
	bytes_wr_check(w, h->proto != 0 && h->incarnation != 0, "invalid HELLO");
	bytes_wr_u16(w, h->proto);
	wr_str(w, CLU_D_NAME, h->node);
	wr_str(w, CLU_D_CLUSTER, h->cluster);
	wr_str(w, CLU_D_ADDR, h->addr);
	bytes_wr_u64(w, h->incarnation);
	bytes_wr_bytes(w, h->nonce, CLU_NONCE_LEN);
	bytes_wr_u8(w, h->join ? CLU_HELLO_JOIN : 0);
}

/* the body of a non-batched frame */
static void enc_body(struct bytes_wr *w, const struct clu_msg *m)
{
	switch (m->type) {
	case CLU_MSG_HELLO:
		enc_hello(w, &m->hello);
		break;
	case CLU_MSG_AUTH:
		bytes_wr_bytes(w, m->proof, CLU_PROOF_LEN);
		break;
	case CLU_MSG_REFUSE:
		bytes_wr_check(w, m->refuse.reason >= CLU_REFUSE_VERSION &&
				  m->refuse.reason <= CLU_REFUSE_TLS, "unknown REFUSE reason");
		bytes_wr_u8(w, m->refuse.reason);
		wr_str(w, CLU_D_TEXT, m->refuse.why);
		break;
	case CLU_MSG_HEARTBEAT:
		bytes_wr_u64(w, m->hb.wall_ms);
		bytes_wr_u64(w, m->hb.echo_ms);
		break;
	case CLU_MSG_BARRIER:
	case CLU_MSG_BARRIER_ACK:
		bytes_wr_u64(w, m->barrier_id);
		break;
	case CLU_MSG_LEAVE:
		bytes_wr_check(w, m->leave.incarnation != 0, "LEAVE incarnation 0");
		bytes_wr_u8(w, m->leave.force ? CLU_LEAVE_FORCE : 0);
		wr_str(w, CLU_D_NAME, m->leave.node);
		bytes_wr_u64(w, m->leave.incarnation);
		break;
	case CLU_MSG_ROUTE_SYNC_BEGIN:
		bytes_wr_check(w, m->sync.incarnation != 0, "SYNC_BEGIN incarnation 0");
		bytes_wr_u64(w, m->sync.incarnation);
		bytes_wr_u32(w, m->sync.sync_id);
		break;
	case CLU_MSG_ROUTE_SYNC_END:
		bytes_wr_u32(w, m->sync.sync_id);
		bytes_wr_u32(w, m->sync.count);
		break;
	case CLU_MSG_FORWARD:
		enc_forward(w, &m->fwd);
		break;
	case CLU_MSG_TAKEOVER_REQ:
		bytes_wr_u64(w, m->treq.req_id);
		bytes_wr_u8(w, m->treq.clean_start ? CLU_TAKEOVER_CLEAN_START : 0);
		wr_hlc(w, m->treq.ts);
		wr_str(w, CLU_D_CID, m->treq.client_id);
		break;
	case CLU_MSG_TAKEOVER_RESP:
		bytes_wr_check(w, m->tresp.status <= CLU_TAKEOVER_REFUSED &&
				  (m->tresp.status == CLU_TAKEOVER_OK || m->tresp.session.len == 0),
			       "invalid TAKEOVER_RESP");
		bytes_wr_u64(w, m->tresp.req_id);
		bytes_wr_u8(w, m->tresp.status);
		wr_str(w, CLU_D_CID, m->tresp.client_id);
		wr_bin(w, m->tresp.session);
		break;
	case CLU_MSG_RPC_REQ:
		bytes_wr_check(w, m->rpcq.body.len <= CLU_RPC_REQ_BODY_MAX, "RPC_REQ body too large");
		bytes_wr_u64(w, m->rpcq.id);
		wr_str(w, CLU_D_METHOD, m->rpcq.method);
		wr_str(w, CLU_D_PATH, m->rpcq.path);
		wr_str(w, CLU_D_QUERY, m->rpcq.query);
		wr_str(w, CLU_D_TEXT, m->rpcq.caller);
		wr_bin(w, m->rpcq.body);
		break;
	case CLU_MSG_RPC_RESP:
		bytes_wr_check(w, m->rpcr.status >= 100 && m->rpcr.status <= 599 &&
				  m->rpcr.body.len <= CLU_RPC_RESP_BODY_MAX, "invalid RPC_RESP");
		bytes_wr_u64(w, m->rpcr.id);
		bytes_wr_u16(w, m->rpcr.status);
		wr_bin(w, m->rpcr.body);
		break;
	}
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
	struct bytes_wr w;
	size_t start;

	if (!clu_known_type(m->type) || clu_is_batched(m->type))
		return HQ_EINVAL;
	start = frame_begin(out, m->type);
	bytes_wr_buf(&w, out);
	enc_body(&w, m);
	return frame_end(out, start, bytes_wr_end(&w));
}

/* ---- batches ---- */

int clu_batch_begin(struct clu_batch *b, struct buf *out, int type)
{
	static const uint8_t zero[4];

	if (!clu_is_batched(type))
		return HQ_EINVAL;
	b->out = out;
	b->type = (uint8_t)type;
	b->n = 0;
	b->last_seq = 0;
	b->start = frame_begin(out, type);
	buf_append(out, zero, sizeof(zero));   /* n, patched by clu_batch_end */
	return HQ_OK;
}

size_t clu_batch_size(const struct clu_batch *b)
{
	return b->out->len - b->out->off - b->start;
}

/* keep an entry just written, or drop it on error or when the frame grew too large */
static int batch_entry_end(struct clu_batch *b, size_t before, struct bytes_wr *w)
{
	int err = bytes_wr_end(w);

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

/* start an entry of a batch of one of the types t1, t2 (HQ_EINVAL otherwise) */
static int batch_entry_begin(struct clu_batch *b, int t1, int t2, struct bytes_wr *w,
			     size_t *before)
{
	if (b->type != t1 && b->type != t2)
		return HQ_EINVAL;
	*before = clu_batch_size(b);
	bytes_wr_buf(w, b->out);
	return HQ_OK;
}

int clu_batch_member(struct clu_batch *b, const struct clu_member *m)
{
	struct bytes_wr w;
	size_t before;

	if (batch_entry_begin(b, CLU_MSG_MEMBERS, CLU_MSG_MEMBERS, &w, &before))
		return HQ_EINVAL;
	enc_member(&w, m);
	return batch_entry_end(b, before, &w);
}

int clu_batch_route(struct clu_batch *b, const struct clu_route *r)
{
	struct bytes_wr w;
	size_t before;

	if (batch_entry_begin(b, CLU_MSG_ROUTE_ADD, CLU_MSG_ROUTE_DEL, &w, &before))
		return HQ_EINVAL;
	enc_route(&w, r);
	return batch_entry_end(b, before, &w);
}

int clu_batch_ack(struct clu_batch *b, const struct clu_ack_range *r)
{
	struct bytes_wr w;
	size_t before;
	int rc;

	if (batch_entry_begin(b, CLU_MSG_FORWARD_ACK, CLU_MSG_FORWARD_ACK, &w, &before))
		return HQ_EINVAL;
	enc_ack(&w, r, b->last_seq);
	rc = batch_entry_end(b, before, &w);
	if (!rc)
		b->last_seq = r->last;
	return rc;
}

int clu_batch_retained(struct clu_batch *b, const struct clu_retained *r)
{
	struct bytes_wr w;
	size_t before;

	if (batch_entry_begin(b, CLU_MSG_RETAIN_SET, CLU_MSG_RETAIN_SET, &w, &before))
		return HQ_EINVAL;
	enc_retained(&w, r);
	return batch_entry_end(b, before, &w);
}

int clu_batch_client(struct clu_batch *b, const struct clu_client *c)
{
	struct bytes_wr w;
	size_t before;

	if (batch_entry_begin(b, CLU_MSG_CLIENTS, CLU_MSG_CLIENTS, &w, &before))
		return HQ_EINVAL;
	enc_client(&w, c);
	return batch_entry_end(b, before, &w);
}

int clu_batch_rentry(struct clu_batch *b, const struct clu_rentry *e)
{
	struct bytes_wr w;
	size_t before;

	if (batch_entry_begin(b, CLU_MSG_REPL_SET, CLU_MSG_REPL_SET, &w, &before))
		return HQ_EINVAL;
	enc_rentry(&w, e);
	return batch_entry_end(b, before, &w);
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
