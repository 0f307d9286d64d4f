/*
 * sess_serial.c - write and read the session blob whose layout sess_serial.h
 * documents (format version 2). Messages use the encoding the cluster sends
 * (core/msg_wire.h); all of it goes through the core byte cursors.
 *
 * Writing trusts the session (asserts its invariants). Reading trusts nothing:
 * every field goes through a bounds-checked cursor, every count is checked
 * against the bytes left before anything is allocated for it, and every value
 * the broker relies on (packet ids, QoS, flags, topics, filters) is validated,
 * so a corrupt blob yields HQ_EMALFORMED and never a session the broker could
 * not have built. On error everything built so far is released through the
 * session's own teardown (sess_unref).
 */
#include "broker/sess_serial.h"
#include "broker/brk_int.h"
#include "broker/topic.h"
#include "core/clock.h"
#include "core/bytes.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/msg_wire.h"

#include <assert.h>
#include <string.h>

#define SS_KNOWN (SS_EXPIRE_AT | SS_WILL | SS_WILL_AT)
#define DV_KNOWN (DV_RETAIN | DV_SENT | DV_PUBREL | DV_SHARED)
/* a remaining time can never exceed the longest interval the broker schedules */
#define MAX_REMAINING_MS ((uint64_t)UINT32_MAX * 1000)
/* smallest encodings, used to bound counts before allocating for them */
#define MIN_SUB 3    /* filter:str (1 + 1), options, sub_id */
#define MIN_DELIV 5  /* pid, qos, dflags, n_sub_ids (PUBREL: no message) */
#define MIN_RX_PID 2

/* ---- writing ---- */

/* vi length then the bytes */
static void put_bin(struct bytes_wr *w, const void *p, size_t n)
{
	assert(n <= BYTES_VARINT_MAX);
	bytes_wr_varint(w, (uint32_t)n);
	bytes_wr_bytes(w, p, n);
}

/* ms left until an absolute monotonic time (0 when already past) */
static uint64_t ms_left(int64_t at, int64_t now)
{
	return at > now ? (uint64_t)(at - now) : 0;
}

/* the shared message encoding (core/msg_wire.h), as the cluster sends it */
static void put_msg(struct bytes_wr *w, const struct brk_msg *m, int64_t now)
{
	assert(m->qos <= 2);
	struct msg_wire mw = {
		.qos = m->qos, .retain = m->retain, .has_expiry = m->has_expiry,
		.expiry = m->has_expiry ? msg_remaining(m, now) : 0, .pub_hash = m->pub_hash,
		.topic = (const uint8_t *)m->topic, .topic_len = m->topic_len,
		.props = m->props, .props_len = m->props_len,
		.payload = m->payload, .payload_len = m->payload_len,
	};
	msg_wire_put(w, &mw);
}

static void put_deliv(struct bytes_wr *w, const struct deliv *d, int64_t now)
{
	bytes_wr_u16(w, d->pid);
	bytes_wr_u8(w, d->qos);
	bytes_wr_u8(w, d->flags);
	bytes_wr_u8(w, d->n_sub_ids);
	const uint32_t *ids = deliv_sub_ids(d);
	for (uint32_t i = 0; i < d->n_sub_ids; i++)
		bytes_wr_varint(w, ids[i]);
	if (d->flags & DV_SHARED) {
		assert(d->share_group);
		put_bin(w, d->share_group, strlen(d->share_group));
	}
	if (!(d->flags & DV_PUBREL)) {
		assert(d->msg);
		put_msg(w, d->msg, now);
	}
}

struct put_ctx {
	struct bytes_wr *w;
	int64_t now;
};

static void put_deliv_cb(void *ctx, const struct deliv *d)
{
	struct put_ctx *pc = ctx;
	put_deliv(pc->w, d, pc->now);
}

static void put_target(void *ctx, const uint8_t *target, size_t len)
{
	put_bin(ctx, (const char *)target, len);
}

void sess_serialize(const struct session *s, struct buf *out)
{
	int64_t now = clock_mono_ms();
	struct bytes_wr wr, *w = &wr;

	bytes_wr_buf(w, out);
	bytes_wr_bytes(w, SESS_SERIAL_MAGIC, 4);
	bytes_wr_u8(w, SESS_SERIAL_VERSION);
	put_bin(w, s->client_id, strlen(s->client_id));
	bytes_wr_u8(w, s->version);
	bytes_wr_u32(w, s->expiry);
	uint8_t f = 0;
	if (s->expire_at)
		f |= SS_EXPIRE_AT;
	if (s->will) {
		f |= SS_WILL;
		if (s->will_at)
			f |= SS_WILL_AT;
	}
	bytes_wr_u8(w, f);
	if (f & SS_EXPIRE_AT)
		bytes_wr_u64(w, ms_left(s->expire_at, now));
	bytes_wr_u16(w, s->next_pid);
	if (f & SS_WILL) {
		bytes_wr_u32(w, s->will_delay);
		if (f & SS_WILL_AT)
			bytes_wr_u64(w, ms_left(s->will_at, now));
		put_msg(w, s->will, now);
	}

	bytes_wr_varint(w, s->n_subs);
	for (const struct sess_sub *sub = s->subs; sub; sub = sub->hh.next) {
		put_bin(w, sub->filter, strlen(sub->filter));
		bytes_wr_u8(w, sub->options);
		bytes_wr_varint(w, sub->sub_id);
	}

	bytes_wr_varint(w, s->n_inflight);
	for (uint32_t i = 0; i < s->n_inflight; i++)
		put_deliv(w, &s->inflight[i], now);

	/* retained messages still to send go first, as queue entries: the
	 * session's next owner sends them in the same order */
	const struct dqueue *q = &s->queue;
	bytes_wr_varint(w, sess_retained_pending(s) + q->len);
	struct put_ctx pc = { w, now };
	sess_retained_each(s, put_deliv_cb, &pc);
	for (uint32_t i = 0; i < q->len; i++)
		put_deliv(w, &q->v[(q->head + i) % q->cap], now);

	bytes_wr_varint(w, s->n_rx_pids);
	for (uint32_t i = 0; i < s->n_rx_pids; i++)
		bytes_wr_u16(w, s->rx_pids[i]);
	uint32_t n_unconf = 0;
	for (const struct rx_unconf *u = s->rx_unconf; u; u = u->next)
		n_unconf++;
	bytes_wr_varint(w, n_unconf);
	for (const struct rx_unconf *u = s->rx_unconf; u; u = u->next) {
		bytes_wr_u16(w, u->pid);
		bytes_wr_u8(w, u->unread ? SS_UNCONF_UNREAD : 0);
		bytes_wr_varint(w, u->n_marks);
		rx_unconf_each(u, put_target, w);
	}
	int rc = bytes_wr_end(w);
	assert(rc == HQ_OK);   /* a live session always encodes */
	(void)rc;
}

/* ---- reading ---- */

/* The blob is read through a struct bytes_rd (core/bytes.h): bounds-checked,
 * nothing read past the end, the first error sticky. The get_* below return
 * whether the field was there and well formed, so each structure's
 * validation reads as one chain of conditions. */

static bool get_u8(struct bytes_rd *r, uint8_t *v)
{
	*v = bytes_rd_u8(r);
	return bytes_rd_ok(r);
}

static bool get_u16(struct bytes_rd *r, uint16_t *v)
{
	*v = bytes_rd_u16(r);
	return bytes_rd_ok(r);
}

static bool get_u32(struct bytes_rd *r, uint32_t *v)
{
	*v = bytes_rd_u32(r);
	return bytes_rd_ok(r);
}

static bool get_u64(struct bytes_rd *r, uint64_t *v)
{
	*v = bytes_rd_u64(r);
	return bytes_rd_ok(r);
}

static bool get_vi(struct bytes_rd *r, uint32_t *v)
{
	*v = bytes_rd_varint(r);
	return bytes_rd_ok(r);
}

/* bin: a vi length and a view of that many bytes (borrowed from the blob) */
static bool get_bin(struct bytes_rd *r, const uint8_t **p, uint32_t *len)
{
	*len = bytes_rd_varint(r);
	*p = bytes_rd_take(r, *len);
	return bytes_rd_ok(r);
}

/* str: a bin that is valid UTF-8 without U+0000 (so it is also a C string) */
static bool get_str(struct bytes_rd *r, const char **s, uint32_t *len)
{
	const uint8_t *p;
	if (!get_bin(r, &p, len) || !mqtt_utf8_valid(p, *len))
		return false;
	*s = (const char *)p;
	return true;
}

/* A count of items each at least min_size bytes long: refuse counts the blob
 * cannot hold, so nothing is allocated for items that are not there. */
static bool get_count(struct bytes_rd *r, size_t min_size, uint32_t *n)
{
	return get_vi(r, n) && *n <= bytes_rd_left(r) / min_size;
}

/* Decode one message (the shared encoding, core/msg_wire.h); *out gets a
 * new reference. */
static bool get_msg(struct bytes_rd *r, int64_t now, struct brk_msg **out)
{
	struct msg_wire mw;

	msg_wire_get(r, &mw);
	if (!bytes_rd_ok(r) || !mqtt_utf8_valid(mw.topic, mw.topic_len) ||
	    !topic_name_valid((const char *)mw.topic, mw.topic_len, 0))
		return false;
	struct brk_msg *m = msg_new((const char *)mw.topic, mw.topic_len, mw.props,
				    (uint32_t)mw.props_len, mw.payload, (uint32_t)mw.payload_len,
				    mw.qos, mw.retain, mw.has_expiry, mw.expiry, now);
	m->pub_hash = mw.pub_hash;
	*out = m;
	return true;
}

/* Decode one delivery into *d (zeroed first). On false, *d may hold partial
 * contents: the caller releases it with deliv_release. */
static bool get_deliv(struct bytes_rd *r, bool inflight, int64_t now, struct deliv *d)
{
	uint8_t n_ids;
	memset(d, 0, sizeof(*d));
	if (!get_u16(r, &d->pid) || !get_u8(r, &d->qos) || !get_u8(r, &d->flags) ||
	    !get_u8(r, &n_ids))
		return false;
	if (d->qos > 2 || (d->flags & ~DV_KNOWN))
		return false;
	if (inflight && (d->pid == 0 || d->qos == 0))
		return false;
	if ((d->flags & DV_PUBREL) && (!inflight || d->qos != 2))
		return false;
	if (n_ids > bytes_rd_left(r))
		return false;
	if (n_ids > 1)
		d->sub_ids = hq_malloc(n_ids * sizeof(*d->sub_ids));
	d->n_sub_ids = n_ids; /* from here deliv_release frees sub_ids */
	uint32_t *ids = n_ids > 1 ? d->sub_ids : &d->sub_id;
	for (uint32_t i = 0; i < n_ids; i++)
		if (!get_vi(r, &ids[i]) || ids[i] == 0)
			return false;
	if (d->flags & DV_SHARED) {
		const char *g, *grp, *inner;
		uint32_t gl;
		size_t grpl, innerl;
		if (!get_str(r, &g, &gl) || !topic_filter_valid(g, gl, 0) ||
		    !topic_filter_shared(g, gl, &grp, &grpl, &inner, &innerl))
			return false;
		d->share_group = hq_strndup(g, gl);
	}
	if (!(d->flags & DV_PUBREL) && !get_msg(r, now, &d->msg))
		return false;
	return true;
}

/* absolute monotonic time from a remaining interval; never 0 (= unscheduled) */
static bool get_at(struct bytes_rd *r, int64_t now, int64_t *at)
{
	uint64_t left;
	if (!get_u64(r, &left) || left > MAX_REMAINING_MS)
		return false;
	*at = now + (int64_t)left;
	if (*at == 0)
		*at = 1;
	return true;
}

static bool get_subs(struct bytes_rd *r, struct session *s)
{
	uint32_t n;
	if (!get_count(r, MIN_SUB, &n))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		const char *f;
		uint32_t fl, sub_id;
		uint8_t opt;
		struct sess_sub *sub;
		if (!get_str(r, &f, &fl) || !topic_filter_valid(f, fl, 0) || !get_u8(r, &opt) ||
		    !get_vi(r, &sub_id))
			return false;
		/* reserved bits, QoS 3, retain handling 3 [MQTT-3.8.3-5] */
		if ((opt & 0xC0) || (opt & MQTT_SUBOPT_QOS_MASK) > 2 ||
		    ((opt & MQTT_SUBOPT_RH_MASK) >> MQTT_SUBOPT_RH_SHIFT) > 2)
			return false;
		HASH_FIND(hh, s->subs, f, fl, sub);
		if (sub)
			return false;
		sub = hq_calloc(1, sizeof(*sub));
		sub->filter = hq_strndup(f, fl);
		sub->options = opt;
		sub->sub_id = sub_id;
		HASH_ADD_KEYPTR(hh, s->subs, sub->filter, fl, sub);
		s->n_subs++;
		brk_prom_subs(s, 1);
	}
	return true;
}

/* 65536 bits: one per packet id, to refuse duplicates in linear time */
struct pid_set {
	uint64_t w[65536 / 64];
};

/* false if pid was already in the set */
static bool pid_set_add(struct pid_set *ps, uint16_t pid)
{
	uint64_t bit = (uint64_t)1 << (pid % 64);
	if (ps->w[pid / 64] & bit)
		return false;
	ps->w[pid / 64] |= bit;
	return true;
}

static bool get_inflight(struct bytes_rd *r, struct session *s, int64_t now, struct pid_set *ps)
{
	uint32_t n;
	if (!get_count(r, MIN_DELIV, &n) || n > UINT16_MAX)
		return false;
	if (n) {
		s->inflight = s->inflight_base = hq_malloc(n * sizeof(*s->inflight));
		s->cap_inflight = n;
	}
	memset(ps, 0, sizeof(*ps));
	for (uint32_t i = 0; i < n; i++) {
		struct deliv d;
		if (!get_deliv(r, true, now, &d) || !pid_set_add(ps, d.pid)) {
			deliv_release(&d);
			return false;
		}
		s->inflight[s->n_inflight++] = d;
	}
	return true;
}

static bool get_queue(struct bytes_rd *r, struct session *s, int64_t now)
{
	uint32_t n;
	if (!get_count(r, MIN_DELIV, &n))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		struct deliv d;
		if (!get_deliv(r, false, now, &d)) {
			deliv_release(&d);
			return false;
		}
		if (d.msg) {
			uint64_t bytes = (uint64_t)d.msg->topic_len + d.msg->payload_len;
			s->queued_bytes += bytes;
			/* counted in the node-wide total (brk_qbound.c), not limited by
			 * it: a session handed over keeps what it had queued */
			brk_queued_add_shared(s->w->b, (int64_t)bytes);
		}
		if (d.qos == 0)
			s->queued_qos0++;
		dq_push(&s->queue, &d);
	}
	return true;
}

static bool get_rx_pids(struct bytes_rd *r, struct session *s, struct pid_set *ps)
{
	uint32_t n;
	if (!get_count(r, MIN_RX_PID, &n))
		return false;
	if (n) {
		s->rx_pids = hq_malloc(n * sizeof(*s->rx_pids));
		s->cap_rx_pids = n;
	}
	memset(ps, 0, sizeof(*ps));
	for (uint32_t i = 0; i < n; i++) {
		uint16_t pid;
		if (!get_u16(r, &pid) || pid == 0 || !pid_set_add(ps, pid))
			return false;
		s->rx_pids[s->n_rx_pids++] = pid;
	}
	return true;
}

#define MIN_UNCONF 4  /* pid, uflags, n_targets */
#define MIN_TARGET 3  /* str of at least 2 bytes */

static bool has_rx_pid(const struct session *s, uint16_t pid)
{
	for (uint32_t i = 0; i < s->n_rx_pids; i++)
		if (s->rx_pids[i] == pid)
			return true;
	return false;
}

static bool get_unconf(struct bytes_rd *r, struct session *s)
{
	uint32_t n;
	if (!get_count(r, MIN_UNCONF, &n))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		uint16_t pid;
		uint8_t uf;
		uint32_t nt;
		if (!get_u16(r, &pid) || !has_rx_pid(s, pid) || sess_rx_unconf_has(s, pid) ||
		    !get_u8(r, &uf) || (uf & ~SS_UNCONF_UNREAD) || !get_count(r, MIN_TARGET, &nt))
			return false;
		if (uf & SS_UNCONF_UNREAD)
			sess_rx_unconf_unread(s, pid);
		else
			sess_rx_unconf_add(s, pid);
		for (uint32_t k = 0; k < nt; k++) {
			const char *t;
			uint32_t len;
			if (!get_str(r, &t, &len) || len < 2 || (t[0] != 'c' && t[0] != 'g'))
				return false;
			sess_rx_unconf_mark(s, pid, (const uint8_t *)t, len);
		}
	}
	return true;
}

int sess_deserialize(struct worker *w, const uint8_t *p, size_t n, int64_t now_ms,
		     struct session **out)
{
	struct bytes_rd r;
	struct session *s = NULL;
	struct pid_set *ps = NULL;
	const char *id;
	uint32_t id_len;
	uint8_t proto, f;
	int rc = HQ_EMALFORMED;

	*out = NULL;
	if (n < 5 || memcmp(p, SESS_SERIAL_MAGIC, 4))
		goto out;
	bytes_rd_init(&r, p + 5, n - 5);
	if (p[4] != SESS_SERIAL_VERSION) {
		rc = HQ_EVERSION;
		goto out;
	}
	if (!get_str(&r, &id, &id_len) || !get_u8(&r, &proto))
		goto out;
	if (proto != 0 && proto != MQTT_V31 && proto != MQTT_V311 && proto != MQTT_V5)
		goto out;
	s = sess_new(w, id, id_len);
	s->version = proto;
	if (!get_u32(&r, &s->expiry) || !get_u8(&r, &f) || (f & ~SS_KNOWN) ||
	    ((f & SS_WILL_AT) && !(f & SS_WILL)))
		goto out;
	if ((f & SS_EXPIRE_AT) && !get_at(&r, now_ms, &s->expire_at))
		goto out;
	if (!get_u16(&r, &s->next_pid) || s->next_pid == 0)
		goto out;
	if (f & SS_WILL) {
		if (!get_u32(&r, &s->will_delay))
			goto out;
		if ((f & SS_WILL_AT) && !get_at(&r, now_ms, &s->will_at))
			goto out;
		if (!get_msg(&r, now_ms, &s->will))
			goto out;
	}
	ps = hq_malloc(sizeof(*ps));
	if (!get_subs(&r, s) || !get_inflight(&r, s, now_ms, ps) || !get_queue(&r, s, now_ms) ||
	    !get_rx_pids(&r, s, ps) || !get_unconf(&r, s) || bytes_rd_left(&r) != 0)
		goto out;
	*out = s;
	s = NULL;
	rc = HQ_OK;
out:
	hq_free(ps);
	if (s)
		sess_unref(s);
	return rc;
}
