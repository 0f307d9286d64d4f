/*
 * store_lmdb_codec.c - keys and values of the local store (layout in
 * store_lmdb_int.h). Values are written by one encoder used twice, once
 * counting and once into the space LMDB reserved (MDB_RESERVE), so the size
 * and the bytes come from the same code and a value is copied once.
 */
#include "store/store_lmdb_int.h"
#include "core/bytes.h"
#include "core/err.h"

#include <openssl/sha.h>
#include <string.h>

/* ---- keys ---- */

static void key_hash(struct lmdb_key *k, const uint8_t *p, size_t n)
{
	SHA256(p, n, k->b + k->len);
	k->len += LMDB_HASH_LEN;
	k->hashed = true;
}

void lmdb_key_sess(struct lmdb_key *k, struct store_bytes cid)
{
	k->hashed = false;
	k->len = 0;
	if (cid.len <= LMDB_CID_RAW_MAX) {
		k->b[k->len++] = (uint8_t)cid.len;
		memcpy(k->b + k->len, cid.p, cid.len);
		k->len += cid.len;
	} else {
		k->b[k->len++] = 0xFF;
		key_hash(k, cid.p, cid.len);
	}
}

void lmdb_key_str(struct lmdb_key *k, struct store_bytes s)
{
	/* k->len <= 1 + LMDB_CID_RAW_MAX + 2 here (a session prefix and a
	 * pid at most): room for the tag and a hash */
	if (k->len + 1 + s.len <= LMDB_KEY_MAX) {
		k->b[k->len++] = 0x00;
		if (s.len)
			memcpy(k->b + k->len, s.p, s.len);
		k->len += s.len;
	} else {
		k->b[k->len++] = 0x01;
		key_hash(k, s.p, s.len);
	}
}

void lmdb_key_u64(struct lmdb_key *k, uint64_t v)
{
	bytes_st_u32(bytes_st_u32(k->b + k->len, (uint32_t)(v >> 32)), (uint32_t)v);
	k->len += 8;
}

void lmdb_key_u16(struct lmdb_key *k, uint16_t v)
{
	bytes_st_u16(k->b + k->len, v);
	k->len += 2;
}

/* ---- values: encoding ---- */

static void put_str(struct bytes_wr *w, struct store_bytes s)
{
	bytes_wr_u32(w, s.len);
	bytes_wr_bytes(w, s.p, s.len);
}

/* Every field of a message, whatever it is used for (stored message,
 * retained message, will): one layout, nothing to forget. */
static void enc_msg(struct bytes_wr *w, const struct store_msg *m)
{
	put_str(w, m->topic);     /* first: the full key of a retained value */
	bytes_wr_u64(w, m->id);
	put_str(w, m->props);
	put_str(w, m->payload);
	bytes_wr_u64(w, (uint64_t)m->expire_at);
	bytes_wr_u32(w, m->expiry);
	bytes_wr_u32(w, m->pub_hash);
	bytes_wr_u64(w, m->ts_wall);
	bytes_wr_u16(w, m->ts_logical);
	put_str(w, m->origin);
	bytes_wr_u8(w, m->qos);
	bytes_wr_u8(w, (uint8_t)((m->retain ? 1 : 0) | (m->has_expiry ? 2 : 0)));
}

static void enc_qent(struct bytes_wr *w, const struct store_qent *q)
{
	bytes_wr_u64(w, q->msg_id);
	bytes_wr_u16(w, q->pid);
	bytes_wr_u8(w, q->qos);
	bytes_wr_u8(w, q->state);
	bytes_wr_u8(w, q->flags);
	/* subscription ids: host-order uint32s in memory, big endian here */
	bytes_wr_check(w, q->sub_ids.len % 4 == 0, "subscription ids not a multiple of 4 bytes");
	uint32_t n = q->sub_ids.len / 4;
	bytes_wr_u32(w, n);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t id;
		memcpy(&id, q->sub_ids.p + 4 * i, 4);
		bytes_wr_u32(w, id);
	}
	put_str(w, q->share_group);
}

void lmdb_enc(struct bytes_wr *w, const struct store_ev *ev)
{
	bytes_wr_u8(w, LMDB_VAL_V1);
	switch (ev->kind) {
	case STORE_EV_SESSION_PUT: {
		const struct store_sess *s = &ev->u.sess;
		put_str(w, ev->client_id); /* first: the full key */
		put_str(w, s->owner);
		bytes_wr_u64(w, (uint64_t)s->expire_at);
		bytes_wr_u64(w, (uint64_t)s->will_at);
		bytes_wr_u32(w, s->expiry);
		bytes_wr_u32(w, s->will_delay);
		bytes_wr_u8(w, s->version);
		bytes_wr_u8(w, s->has_will);
		if (s->has_will)
			enc_msg(w, &s->will);
		break;
	}
	case STORE_EV_SUB_PUT:
		put_str(w, ev->u.sub.filter);
		bytes_wr_u32(w, ev->u.sub.sub_id);
		bytes_wr_u8(w, ev->u.sub.options);
		break;
	case STORE_EV_MSG_PUT:
	case STORE_EV_RETAIN_PUT:
		enc_msg(w, &ev->u.msg);
		break;
	case STORE_EV_QENT_PUT:
		enc_qent(w, &ev->u.qent);
		break;
	case STORE_EV_RXID_ADD:
		break; /* the key is everything */
	case STORE_EV_RXID_MARK:
		put_str(w, ev->u.mark.target); /* the full key (the key may hash it) */
		break;
	default:
		bytes_wr_fail(w, HQ_EINVAL, "not a put event");
	}
}

/* ---- values: decoding ---- */

static struct store_bytes get_str(struct bytes_rd *r)
{
	uint32_t n = bytes_rd_u32(r);
	const uint8_t *p = bytes_rd_take(r, n);
	return p ? (struct store_bytes){ p, n } : (struct store_bytes){ 0 };
}

static void dec_msg(struct bytes_rd *r, struct store_msg *m)
{
	m->topic = get_str(r);
	m->id = bytes_rd_u64(r);
	m->props = get_str(r);
	m->payload = get_str(r);
	m->expire_at = (int64_t)bytes_rd_u64(r);
	m->expiry = bytes_rd_u32(r);
	m->pub_hash = bytes_rd_u32(r);
	m->ts_wall = bytes_rd_u64(r);
	m->ts_logical = bytes_rd_u16(r);
	m->origin = get_str(r);
	m->qos = bytes_rd_u8(r);
	uint8_t f = bytes_rd_u8(r);
	bytes_rd_check(r, f <= 3, "unknown message flags");
	m->retain = f & 1;
	m->has_expiry = f & 2;
}

static void dec_qent(struct bytes_rd *r, struct store_qent *q, struct buf *scratch)
{
	q->msg_id = bytes_rd_u64(r);
	q->pid = bytes_rd_u16(r);
	q->qos = bytes_rd_u8(r);
	q->state = bytes_rd_u8(r);
	q->flags = bytes_rd_u8(r);
	bytes_rd_check(r, q->state <= STORE_Q_PUBREL, "unknown queue entry state");
	uint32_t n = bytes_rd_u32(r);
	const uint8_t *ids = bytes_rd_take(r, (size_t)n * 4);
	if (ids && n) {
		buf_reset(scratch);
		uint8_t *out = buf_reserve(scratch, (size_t)n * 4);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t id = (uint32_t)ids[4 * i] << 24 | (uint32_t)ids[4 * i + 1] << 16 |
				      (uint32_t)ids[4 * i + 2] << 8 | ids[4 * i + 3];
			memcpy(out + 4 * i, &id, 4);
		}
		q->sub_ids = (struct store_bytes){ out, n * 4 };
	}
	q->share_group = get_str(r);
}

int lmdb_dec(uint8_t kind, const void *p, size_t n, struct store_ev *ev, struct buf *scratch,
	     const char **why)
{
	struct bytes_rd r;
	bytes_rd_init(&r, p, n);
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	bytes_rd_check(&r, bytes_rd_u8(&r) == LMDB_VAL_V1, "unknown value version");
	switch (kind) {
	case STORE_EV_SESSION_PUT: {
		struct store_sess *s = &ev->u.sess;
		ev->client_id = get_str(&r);
		s->owner = get_str(&r);
		s->expire_at = (int64_t)bytes_rd_u64(&r);
		s->will_at = (int64_t)bytes_rd_u64(&r);
		s->expiry = bytes_rd_u32(&r);
		s->will_delay = bytes_rd_u32(&r);
		s->version = bytes_rd_u8(&r);
		uint8_t w = bytes_rd_u8(&r);
		bytes_rd_check(&r, w <= 1, "bad will flag");
		s->has_will = w;
		if (s->has_will)
			dec_msg(&r, &s->will);
		break;
	}
	case STORE_EV_SUB_PUT:
		ev->u.sub.filter = get_str(&r);
		ev->u.sub.sub_id = bytes_rd_u32(&r);
		ev->u.sub.options = bytes_rd_u8(&r);
		break;
	case STORE_EV_MSG_PUT:
	case STORE_EV_RETAIN_PUT:
		dec_msg(&r, &ev->u.msg);
		break;
	case STORE_EV_QENT_PUT:
		dec_qent(&r, &ev->u.qent, scratch);
		break;
	case STORE_EV_RXID_ADD:
		break;
	case STORE_EV_RXID_MARK:
		ev->u.mark.target = get_str(&r);
		break;
	default:
		bytes_rd_fail(&r, HQ_EINVAL, "not a put event");
	}
	bytes_rd_check(&r, bytes_rd_left(&r) == 0, "trailing bytes after the value");
	*why = r.why;
	return r.rc;
}

bool lmdb_dec_full_key(const void *p, size_t n, struct store_bytes *out)
{
	struct bytes_rd r;
	bytes_rd_init(&r, p, n);
	bytes_rd_u8(&r);
	*out = get_str(&r);
	return bytes_rd_ok(&r);
}
