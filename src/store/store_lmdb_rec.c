/*
 * store_lmdb_rec.c - the local store's records: what one event changes,
 * inside the batch's LMDB transaction (keys and values: store_lmdb_int.h;
 * the check pass, transactions and load: store_lmdb.c). Semantics are
 * store_mem.c's: deleting or updating what is not there is a no-op, a
 * message counts the queue entries referencing it and goes with the last,
 * an rx id's marks live under its key and go with it.
 */
#include "store/store_lmdb_int.h"
#include "core/bytes.h"
#include "core/err.h"
#include "core/log.h"

#include <errno.h>
#include <string.h>

/* ---- errors ---- */

/* An LMDB error as an HQ_E* code: HQ_EIO when retrying may succeed (the map
 * is full, the disk is full or failing), permanent otherwise. */
int lmdb_err(struct lmdb_store *l, int rc, const char *what)
{
	if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EIO) {
		if (!l->err_logged)
			log_error("store local: %s in %s: %s%s%llu bytes); writes are retried", what,
				  l->dir, mdb_strerror(rc),
				  rc == MDB_MAP_FULL ? " (the store reached session.local.max_size = "
						     : " (session.local.max_size = ",
				  (unsigned long long)l->max_size);
		l->err_logged = true;
		return HQ_EIO;
	}
	log_error("store local: %s in %s: %s", what, l->dir, mdb_strerror(rc));
	return HQ_EINVAL;
}

/* ---- small record helpers (all inside the batch's transaction t) ---- */

/* Look key up: HQ_OK with *found; a hashed key whose stored full key is not
 * `full` (a SHA-256 collision) is refused rather than confused. */
static int get_checked(struct lmdb_store *l, MDB_txn *t, MDB_dbi dbi, const struct lmdb_key *key,
		       struct store_bytes full, MDB_val *v, bool *found)
{
	MDB_val k = lmdb_kv(key);
	int rc = mdb_get(t, dbi, &k, v);
	*found = rc == 0;
	if (rc == MDB_NOTFOUND)
		return HQ_OK;
	if (rc)
		return lmdb_err(l, rc, "read");
	if (key->hashed) {
		struct store_bytes have;
		if (!lmdb_dec_full_key(v->mv_data, v->mv_size, &have) || have.len != full.len ||
		    memcmp(have.p, full.p, full.len)) {
			log_error("store local: two keys share one SHA-256 (or a damaged record) in %s",
				  l->dir);
			return HQ_EEXIST;
		}
	}
	return HQ_OK;
}

/* Put the value of put event ev at key: encoded straight into the space
 * LMDB reserves (one counting pass, one writing pass). */
static int put_ev(struct lmdb_store *l, MDB_txn *t, MDB_dbi dbi, const struct lmdb_key *key,
		  const struct store_ev *ev)
{
	struct bytes_wr w;
	bytes_wr_count(&w);
	lmdb_enc(&w, ev);
	if (w.rc != HQ_OK)
		return w.rc;
	MDB_val k = lmdb_kv(key), v = { w.n, NULL };
	int rc = mdb_put(t, dbi, &k, &v, MDB_RESERVE);
	if (rc)
		return lmdb_err(l, rc, "write");
	size_t n = w.n;
	bytes_wr_fixed(&w, v.mv_data, v.mv_size);
	lmdb_enc(&w, ev);
	return w.rc == HQ_OK && w.n == n ? HQ_OK : HQ_EINVAL;
}

static int put_checked(struct lmdb_store *l, MDB_txn *t, MDB_dbi dbi, const struct lmdb_key *key,
		       struct store_bytes full, const struct store_ev *ev)
{
	MDB_val v;
	bool found;
	int rc = key->hashed ? get_checked(l, t, dbi, key, full, &v, &found) : HQ_OK;
	return rc == HQ_OK ? put_ev(l, t, dbi, key, ev) : rc;
}

/* Delete key; absent is not an error. */
static int del_key(struct lmdb_store *l, MDB_txn *t, MDB_dbi dbi, const struct lmdb_key *key,
		   struct store_bytes full)
{
	MDB_val v;
	bool found = true;
	int rc = key->hashed ? get_checked(l, t, dbi, key, full, &v, &found) : HQ_OK;
	if (rc != HQ_OK || !found)
		return rc;
	MDB_val k = lmdb_kv(key);
	rc = mdb_del(t, dbi, &k, NULL);
	return rc == 0 || rc == MDB_NOTFOUND ? HQ_OK : lmdb_err(l, rc, "delete");
}

static void key_msg(struct lmdb_key *k, uint64_t id)
{
	k->len = 0;
	k->hashed = false;
	lmdb_key_u64(k, id);
}

int lmdb_refs_get(struct lmdb_store *l, MDB_txn *t, uint64_t id, uint32_t *refs, bool *found)
{
	struct lmdb_key k;
	key_msg(&k, id);
	MDB_val v;
	int rc = get_checked(l, t, l->mref, &k, (struct store_bytes){ 0 }, &v, found);
	*refs = 0;
	if (rc == HQ_OK && *found) {
		if (v.mv_size != 4)
			return HQ_EMALFORMED;
		const uint8_t *p = v.mv_data;
		*refs = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	}
	return rc;
}

static int refs_set(struct lmdb_store *l, MDB_txn *t, uint64_t id, uint32_t refs)
{
	struct lmdb_key k;
	key_msg(&k, id);
	uint8_t b[4];
	bytes_st_u32(b, refs);
	MDB_val kk = lmdb_kv(&k), v = { 4, b };
	int rc = mdb_put(t, l->mref, &kk, &v, 0);
	return rc ? lmdb_err(l, rc, "write") : HQ_OK;
}

int lmdb_msg_del(struct lmdb_store *l, MDB_txn *t, uint64_t id)
{
	struct lmdb_key k;
	key_msg(&k, id);
	int rc = del_key(l, t, l->msg, &k, (struct store_bytes){ 0 });
	return rc == HQ_OK ? del_key(l, t, l->mref, &k, (struct store_bytes){ 0 }) : rc;
}

/* One more entry references id (if it is stored: as store_mem.c). */
static int msg_ref(struct lmdb_store *l, MDB_txn *t, uint64_t id)
{
	uint32_t refs;
	bool found;
	int rc = id ? lmdb_refs_get(l, t, id, &refs, &found) : HQ_OK;
	if (rc != HQ_OK || !id || !found)
		return rc;
	return refs_set(l, t, id, refs + 1);
}

/* One entry less; the message goes with its last reference. */
static int msg_unref(struct lmdb_store *l, MDB_txn *t, uint64_t id)
{
	uint32_t refs;
	bool found;
	int rc = id ? lmdb_refs_get(l, t, id, &refs, &found) : HQ_OK;
	if (rc != HQ_OK || !id || !found || refs == 0)
		return rc;
	return refs == 1 ? lmdb_msg_del(l, t, id) : refs_set(l, t, id, refs - 1);
}

static int msg_put(struct lmdb_store *l, MDB_txn *t, const struct store_ev *ev)
{
	struct lmdb_key k;
	key_msg(&k, ev->u.msg.id);
	uint32_t refs;
	bool found;
	int rc = lmdb_refs_get(l, t, ev->u.msg.id, &refs, &found);
	if (rc == HQ_OK && !found)
		rc = refs_set(l, t, ev->u.msg.id, 0);
	/* the same id again: newer content, same references */
	return rc == HQ_OK ? put_ev(l, t, l->msg, &k, ev) : rc;
}

/* ---- sessions and their records ---- */

int lmdb_sess_exists(struct lmdb_store *l, MDB_txn *t, struct store_bytes cid, bool *found)
{
	struct lmdb_key k;
	lmdb_key_sess(&k, cid);
	MDB_val v;
	return get_checked(l, t, l->sess, &k, cid, &v, found);
}

/* The queue entry at k decoded from a private copy (the caller rewrites the
 * record, which may reuse the memory LMDB handed out). */
static int qent_get(struct lmdb_store *l, MDB_txn *t, const struct lmdb_key *k,
		    struct store_ev *e, bool *found)
{
	MDB_val kk = lmdb_kv(k), v;
	int rc = mdb_get(t, l->qent, &kk, &v);
	*found = rc == 0;
	if (rc == MDB_NOTFOUND)
		return HQ_OK;
	if (rc)
		return lmdb_err(l, rc, "read");
	buf_reset(&l->val);
	buf_append(&l->val, v.mv_data, v.mv_size);
	const char *why;
	rc = lmdb_dec(STORE_EV_QENT_PUT, buf_head(&l->val), v.mv_size, e, &l->scratch, &why);
	if (rc != HQ_OK)
		log_error("store local: a queue entry in %s is malformed (%s)", l->dir, why);
	return rc;
}

/* Delete every record of dbi under prefix p (a session's); queue entries
 * release their messages. */
static int del_prefix(struct lmdb_store *l, MDB_txn *t, MDB_dbi dbi, const struct lmdb_key *p,
		      bool entries)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, dbi, &c);
	if (rc)
		return lmdb_err(l, rc, "cursor");
	int hrc = HQ_OK;
	for (;;) {
		/* seek again after each delete: simpler than LMDB's cursor
		 * position rules after mdb_cursor_del, and O(log n) anyway */
		MDB_val k = lmdb_kv(p), v;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc || k.mv_size < p->len || memcmp(k.mv_data, p->b, p->len))
			break;
		uint64_t msg_id = 0;
		if (entries) {
			struct store_ev e;
			const char *why;
			hrc = lmdb_dec(STORE_EV_QENT_PUT, v.mv_data, v.mv_size, &e, &l->scratch, &why);
			if (hrc != HQ_OK)
				break;
			msg_id = e.u.qent.msg_id;
		}
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
		if (entries && (hrc = msg_unref(l, t, msg_id)) != HQ_OK)
			break;
	}
	mdb_cursor_close(c);
	if (hrc != HQ_OK)
		return hrc;
	return rc == 0 || rc == MDB_NOTFOUND ? HQ_OK : lmdb_err(l, rc, "delete");
}

static int sess_del(struct lmdb_store *l, MDB_txn *t, struct store_bytes cid)
{
	struct lmdb_key k;
	lmdb_key_sess(&k, cid);
	int rc = del_key(l, t, l->sess, &k, cid);
	if (rc == HQ_OK)
		rc = del_prefix(l, t, l->sub, &k, false);
	if (rc == HQ_OK)
		rc = del_prefix(l, t, l->rxid, &k, false);
	if (rc == HQ_OK)
		rc = del_prefix(l, t, l->mark, &k, false);
	if (rc == HQ_OK)
		rc = del_prefix(l, t, l->qent, &k, true);
	return rc;
}

/* RXID_DEL: the rx id and its marks (keys under P(cid) be16(pid)). */
static int rxid_del(struct lmdb_store *l, MDB_txn *t, const struct store_ev *ev)
{
	struct lmdb_key k;
	lmdb_key_sess(&k, ev->client_id);
	lmdb_key_u16(&k, ev->u.pid);
	/* an rx id's value holds no full key to compare (its session's does):
	 * a hashed client id must not make del_key look for one */
	k.hashed = false;
	int rc = del_key(l, t, l->rxid, &k, (struct store_bytes){ 0 });
	return rc == HQ_OK ? del_prefix(l, t, l->mark, &k, false) : rc;
}

/* RXID_MARK: stored only while its rx id is (store.h); the same mark again
 * rewrites the same key. */
static int mark_put(struct lmdb_store *l, MDB_txn *t, const struct store_ev *ev)
{
	struct lmdb_key k;
	lmdb_key_sess(&k, ev->client_id);
	lmdb_key_u16(&k, ev->u.mark.pid);
	MDB_val kk = lmdb_kv(&k), v;
	int rc = mdb_get(t, l->rxid, &kk, &v);
	if (rc == MDB_NOTFOUND)
		return HQ_OK;
	if (rc)
		return lmdb_err(l, rc, "read");
	lmdb_key_str(&k, ev->u.mark.target);
	return put_checked(l, t, l->mark, &k, ev->u.mark.target, ev);
}

static int qent_put(struct lmdb_store *l, MDB_txn *t, const struct store_ev *ev)
{
	struct lmdb_key k;
	lmdb_key_sess(&k, ev->client_id);
	lmdb_key_u64(&k, ev->u.qent.seq);
	int rc = msg_ref(l, t, ev->u.qent.msg_id);
	struct store_ev old;
	bool found = false;
	if (rc == HQ_OK)
		rc = qent_get(l, t, &k, &old, &found);
	if (rc == HQ_OK)
		rc = put_ev(l, t, l->qent, &k, ev);
	if (rc == HQ_OK && found)
		rc = msg_unref(l, t, old.u.qent.msg_id); /* a replaced entry lets go */
	return rc;
}

static int qent_update(struct lmdb_store *l, MDB_txn *t, const struct store_ev *ev)
{
	struct lmdb_key k;
	lmdb_key_sess(&k, ev->client_id);
	lmdb_key_u64(&k, ev->u.qent.seq);
	struct store_ev e;
	bool found;
	int rc = qent_get(l, t, &k, &e, &found);
	if (rc != HQ_OK || !found)
		return rc;
	struct store_qent *q = &e.u.qent;
	uint64_t drop = 0;
	q->state = ev->u.qent.state;
	q->pid = ev->u.qent.pid;
	q->flags = ev->u.qent.flags;
	if (q->state == STORE_Q_PUBREL && q->msg_id) {
		/* PUBREC received: the message is not needed any more */
		drop = q->msg_id;
		q->msg_id = 0;
	}
	rc = put_ev(l, t, l->qent, &k, &e);
	return rc == HQ_OK ? msg_unref(l, t, drop) : rc;
}

static int qent_del(struct lmdb_store *l, MDB_txn *t, const struct store_ev *ev)
{
	struct lmdb_key k;
	lmdb_key_sess(&k, ev->client_id);
	lmdb_key_u64(&k, ev->u.qent.seq);
	struct store_ev e;
	bool found;
	int rc = qent_get(l, t, &k, &e, &found);
	if (rc != HQ_OK || !found)
		return rc;
	MDB_val kk = lmdb_kv(&k);
	if ((rc = mdb_del(t, l->qent, &kk, NULL)) != 0)
		return lmdb_err(l, rc, "delete");
	return msg_unref(l, t, e.u.qent.msg_id);
}


/* ---- one event ---- */

int lmdb_apply_ev(struct lmdb_store *l, MDB_txn *t, const struct store_ev *ev)
{
	struct lmdb_key k;
	if (lmdb_session_scoped(ev->kind))
		lmdb_key_sess(&k, ev->client_id);
	switch (ev->kind) {
	case STORE_EV_SESSION_PUT:
		return put_checked(l, t, l->sess, &k, ev->client_id, ev);
	case STORE_EV_SESSION_DEL:
		return sess_del(l, t, ev->client_id);
	case STORE_EV_SUB_PUT:
		lmdb_key_str(&k, ev->u.sub.filter);
		return put_checked(l, t, l->sub, &k, ev->u.sub.filter, ev);
	case STORE_EV_SUB_DEL:
		lmdb_key_str(&k, ev->u.sub.filter);
		return del_key(l, t, l->sub, &k, ev->u.sub.filter);
	case STORE_EV_MSG_PUT:
		return msg_put(l, t, ev);
	case STORE_EV_QENT_PUT:
		return qent_put(l, t, ev);
	case STORE_EV_QENT_UPDATE:
		return qent_update(l, t, ev);
	case STORE_EV_QENT_DEL:
		return qent_del(l, t, ev);
	case STORE_EV_RXID_ADD:
		lmdb_key_u16(&k, ev->u.pid);
		return put_ev(l, t, l->rxid, &k, ev);
	case STORE_EV_RXID_DEL:
		return rxid_del(l, t, ev);
	case STORE_EV_RXID_MARK:
		return mark_put(l, t, ev);
	case STORE_EV_RETAIN_PUT:
	case STORE_EV_RETAIN_DEL:
		k.len = 0;
		k.hashed = false;
		lmdb_key_str(&k, ev->u.msg.topic);
		if (ev->kind == STORE_EV_RETAIN_PUT)
			return put_checked(l, t, l->ret, &k, ev->u.msg.topic, ev);
		return del_key(l, t, l->ret, &k, ev->u.msg.topic);
	}
	return HQ_EINVAL;
}

