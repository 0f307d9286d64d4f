/*
 * store_redis_codec.c - the redis backend's bytes: the records it stores
 * (session header, subscription, queue entry, message) and the encoding of a
 * batch event as one argument of the batch script (store_redis_lua.c).
 *
 * Integers are big endian. A message id travels as its 8 bytes, never as a
 * Lua number (a double: 64-bit ids would lose precision). A queue entry
 * record starts with a fixed RQ_HDR-byte head the script rewrites on
 * QENT_UPDATE (msg id | pid | qos | state | flags). Decoders never trust
 * their input (a record written by another version or damaged): a short or
 * inconsistent record is HQ_EMALFORMED, not a crash.
 */
#include "store/store_redis_int.h"
#include "core/err.h"
#include "core/mem.h"

#include <string.h>

/* ---- writing ---- */

void rbuf_reset(struct rbuf *b)
{
	b->len = 0;
}

void rbuf_free(struct rbuf *b)
{
	hq_free(b->p);
	*b = (struct rbuf){ 0 };
}

static uint8_t *rbuf_grow(struct rbuf *b, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap - b->len < n)
			cap *= 2;
		b->p = hq_realloc(b->p, cap);
		b->cap = cap;
	}
	uint8_t *p = b->p + b->len;
	b->len += n;
	return p;
}

static void w_uint(struct rbuf *b, uint64_t v, int bytes)
{
	uint8_t *p = rbuf_grow(b, (size_t)bytes);
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void w_bytes(struct rbuf *b, const void *p, size_t n)
{
	w_uint(b, n, 4);
	if (n)
		memcpy(rbuf_grow(b, n), p, n);
}

uint64_t rget64(const void *p)
{
	const uint8_t *q = p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | q[i];
	return v;
}

void rput64(void *p, uint64_t v)
{
	uint8_t *q = p;
	for (int i = 7; i >= 0; i--, v >>= 8)
		q[i] = (uint8_t)v;
}

static void w_msg(struct rbuf *b, const struct store_msg *m)
{
	w_bytes(b, m->topic.p, m->topic.len);
	w_bytes(b, m->props.p, m->props.len);
	w_bytes(b, m->payload.p, m->payload.len);
	w_bytes(b, m->origin.p, m->origin.len);
	w_uint(b, (uint64_t)m->expire_at, 8);
	w_uint(b, m->expiry, 4);
	w_uint(b, m->pub_hash, 4);
	w_uint(b, m->ts_wall, 8);
	w_uint(b, m->ts_logical, 2);
	w_uint(b, m->qos, 1);
	w_uint(b, m->retain, 1);
	w_uint(b, m->has_expiry, 1);
}

/* kind | len4 a | a | len4 b | b: the head of every script argument */
static void w_head(struct rbuf *b, uint8_t kind, const void *a, size_t alen, const void *bb,
		   size_t blen)
{
	w_uint(b, kind, 1);
	w_bytes(b, a, alen);
	w_bytes(b, bb, blen);
}

static bool session_scoped(uint8_t kind)
{
	return kind != STORE_EV_MSG_PUT && kind != STORE_EV_RETAIN_PUT && kind != STORE_EV_RETAIN_DEL;
}

int rcodec_event(struct rbuf *b, const struct store_ev *ev, const char *node)
{
	uint8_t k8[8];
	uint8_t p2[2];
	const struct store_bytes *cid = &ev->client_id;
	if (ev->kind == 0 || ev->kind > STORE_EV_KIND_MAX)
		return HQ_EINVAL;
	if (session_scoped(ev->kind) && !cid->len)
		return HQ_EINVAL;
	switch (ev->kind) {
	case STORE_EV_SESSION_PUT: {
		const struct store_sess *s = &ev->u.sess;
		struct store_bytes owner = s->owner;
		if (!owner.len)
			owner = (struct store_bytes){ (const uint8_t *)node, (uint32_t)strlen(node) };
		w_head(b, s->update ? RK_SESSION_UPDATE : ev->kind, cid->p, cid->len, owner.p,
		       owner.len);
		w_bytes(b, owner.p, owner.len);
		w_uint(b, (uint64_t)s->expire_at, 8);
		w_uint(b, (uint64_t)s->will_at, 8);
		w_uint(b, s->expiry, 4);
		w_uint(b, s->will_delay, 4);
		w_uint(b, s->version, 1);
		w_uint(b, s->has_will, 1);
		if (s->has_will)
			w_msg(b, &s->will);
		break;
	}
	case STORE_EV_SESSION_DEL:
		w_head(b, ev->kind, cid->p, cid->len, NULL, 0);
		break;
	case STORE_EV_SUB_PUT:
	case STORE_EV_SUB_DEL:
		w_head(b, ev->kind, cid->p, cid->len, ev->u.sub.filter.p, ev->u.sub.filter.len);
		if (ev->kind == STORE_EV_SUB_PUT) {
			w_uint(b, ev->u.sub.sub_id, 4);
			w_uint(b, ev->u.sub.options, 1);
		}
		break;
	case STORE_EV_MSG_PUT:
		if (!ev->u.msg.id || !ev->u.msg.topic.len)
			return HQ_EINVAL;
		rput64(k8, ev->u.msg.id);
		w_head(b, ev->kind, k8, 8, NULL, 0);
		w_msg(b, &ev->u.msg);
		break;
	case STORE_EV_QENT_PUT:
	case STORE_EV_QENT_UPDATE:
	case STORE_EV_QENT_DEL: {
		const struct store_qent *q = &ev->u.qent;
		if (ev->kind != STORE_EV_QENT_DEL && q->state > STORE_Q_PUBREL)
			return HQ_EINVAL;
		rput64(k8, q->seq);
		w_head(b, ev->kind, cid->p, cid->len, k8, 8);
		if (ev->kind == STORE_EV_QENT_PUT) {
			w_uint(b, q->msg_id, 8);
			w_uint(b, q->pid, 2);
			w_uint(b, q->qos, 1);
			w_uint(b, q->state, 1);
			w_uint(b, q->flags, 1);
			w_bytes(b, q->sub_ids.p, q->sub_ids.len);
			w_bytes(b, q->share_group.p, q->share_group.len);
		} else if (ev->kind == STORE_EV_QENT_UPDATE) {
			w_uint(b, q->pid, 2);
			w_uint(b, q->state, 1);
			w_uint(b, q->flags, 1);
		}
		break;
	}
	case STORE_EV_RXID_ADD:
	case STORE_EV_RXID_DEL:
		p2[0] = (uint8_t)(ev->u.pid >> 8);
		p2[1] = (uint8_t)ev->u.pid;
		w_head(b, ev->kind, cid->p, cid->len, p2, 2);
		break;
	case STORE_EV_RXID_MARK:
		/* the pid where RXID_ADD/DEL have it; the target is the rest */
		if (!ev->u.mark.target.len)
			return HQ_EINVAL;
		p2[0] = (uint8_t)(ev->u.mark.pid >> 8);
		p2[1] = (uint8_t)ev->u.mark.pid;
		w_head(b, ev->kind, cid->p, cid->len, p2, 2);
		memcpy(rbuf_grow(b, ev->u.mark.target.len), ev->u.mark.target.p, ev->u.mark.target.len);
		break;
	case STORE_EV_RETAIN_PUT:
	case STORE_EV_RETAIN_DEL:
		if (!ev->u.msg.topic.len)
			return HQ_EINVAL;
		w_head(b, ev->kind, ev->u.msg.topic.p, ev->u.msg.topic.len, NULL, 0);
		if (ev->kind == STORE_EV_RETAIN_PUT)
			w_msg(b, &ev->u.msg);
		break;
	}
	return HQ_OK;
}

/* ---- reading ---- */

struct rd {
	const uint8_t *p;
	size_t n, off;
	bool bad;                     /* ran past the end */
};

static uint64_t r_uint(struct rd *r, int bytes)
{
	if (r->n - r->off < (size_t)bytes) {
		r->bad = true;
		r->off = r->n;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v = v << 8 | r->p[r->off++];
	return v;
}

static struct store_bytes r_bytes(struct rd *r)
{
	uint64_t n = r_uint(r, 4);
	if (r->bad || r->n - r->off < n) {
		r->bad = true;
		return (struct store_bytes){ 0 };
	}
	struct store_bytes s = { r->p + r->off, (uint32_t)n };
	r->off += n;
	return s;
}

static void r_msg(struct rd *r, struct store_msg *m)
{
	m->topic = r_bytes(r);
	m->props = r_bytes(r);
	m->payload = r_bytes(r);
	m->origin = r_bytes(r);
	m->expire_at = (int64_t)r_uint(r, 8);
	m->expiry = (uint32_t)r_uint(r, 4);
	m->pub_hash = (uint32_t)r_uint(r, 4);
	m->ts_wall = r_uint(r, 8);
	m->ts_logical = (uint16_t)r_uint(r, 2);
	m->qos = (uint8_t)r_uint(r, 1);
	m->retain = r_uint(r, 1) != 0;
	m->has_expiry = r_uint(r, 1) != 0;
}

static struct rd rd_of(const char *v, size_t n)
{
	return (struct rd){ (const uint8_t *)v, n, 0, false };
}

static struct store_bytes bytes_of(const char *p, size_t n)
{
	return (struct store_bytes){ (const uint8_t *)p, (uint32_t)n };
}

int rdecode_sess(struct store_ev *ev, const char *cid, size_t clen, const char *v, size_t vlen)
{
	struct rd r = rd_of(v, vlen);
	*ev = (struct store_ev){ .kind = STORE_EV_SESSION_PUT, .client_id = bytes_of(cid, clen) };
	struct store_sess *s = &ev->u.sess;
	s->owner = r_bytes(&r);
	s->expire_at = (int64_t)r_uint(&r, 8);
	s->will_at = (int64_t)r_uint(&r, 8);
	s->expiry = (uint32_t)r_uint(&r, 4);
	s->will_delay = (uint32_t)r_uint(&r, 4);
	s->version = (uint8_t)r_uint(&r, 1);
	s->has_will = r_uint(&r, 1) != 0;
	if (s->has_will)
		r_msg(&r, &s->will);
	return r.bad || r.off != r.n ? HQ_EMALFORMED : HQ_OK;
}

int rdecode_sub(struct store_ev *ev, const char *cid, size_t clen, const char *filter, size_t flen,
		const char *v, size_t vlen)
{
	struct rd r = rd_of(v, vlen);
	*ev = (struct store_ev){ .kind = STORE_EV_SUB_PUT, .client_id = bytes_of(cid, clen) };
	ev->u.sub.filter = bytes_of(filter, flen);
	ev->u.sub.sub_id = (uint32_t)r_uint(&r, 4);
	ev->u.sub.options = (uint8_t)r_uint(&r, 1);
	return r.bad || r.off != r.n ? HQ_EMALFORMED : HQ_OK;
}

int rdecode_qent(struct store_ev *ev, const char *cid, size_t clen, const char *seq, size_t slen,
		 const char *v, size_t vlen)
{
	if (slen != 8)
		return HQ_EMALFORMED;
	struct rd r = rd_of(v, vlen);
	*ev = (struct store_ev){ .kind = STORE_EV_QENT_PUT, .client_id = bytes_of(cid, clen) };
	struct store_qent *q = &ev->u.qent;
	q->seq = rget64(seq);
	q->msg_id = r_uint(&r, 8);
	q->pid = (uint16_t)r_uint(&r, 2);
	q->qos = (uint8_t)r_uint(&r, 1);
	q->state = (uint8_t)r_uint(&r, 1);
	q->flags = (uint8_t)r_uint(&r, 1);
	q->sub_ids = r_bytes(&r);
	q->share_group = r_bytes(&r);
	if (q->sub_ids.len % sizeof(uint32_t))
		return HQ_EMALFORMED;
	return r.bad || r.off != r.n ? HQ_EMALFORMED : HQ_OK;
}

int rdecode_rx(struct store_ev *ev, const char *cid, size_t clen, const char *pid, size_t plen)
{
	if (plen != 2)
		return HQ_EMALFORMED;
	*ev = (struct store_ev){ .kind = STORE_EV_RXID_ADD, .client_id = bytes_of(cid, clen) };
	ev->u.pid = (uint16_t)((uint8_t)pid[0] << 8 | (uint8_t)pid[1]);
	return HQ_OK;
}

int rdecode_mark(struct store_ev *ev, const char *cid, size_t clen, const char *pid, size_t plen,
		 const char *target, size_t tlen)
{
	if (plen != 2 || !tlen)
		return HQ_EMALFORMED;
	*ev = (struct store_ev){ .kind = STORE_EV_RXID_MARK, .client_id = bytes_of(cid, clen) };
	ev->u.mark.pid = (uint16_t)((uint8_t)pid[0] << 8 | (uint8_t)pid[1]);
	ev->u.mark.target = bytes_of(target, tlen);
	return HQ_OK;
}

int rdecode_msg(struct store_ev *ev, uint8_t kind, const char *id8, const char *v, size_t vlen)
{
	struct rd r = rd_of(v, vlen);
	*ev = (struct store_ev){ .kind = kind };
	if (id8)
		ev->u.msg.id = rget64(id8);
	r_msg(&r, &ev->u.msg);
	return r.bad || r.off != r.n ? HQ_EMALFORMED : HQ_OK;
}
