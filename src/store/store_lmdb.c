/*
 * store_lmdb.c - the local store backend (session.store = local): the
 * state of store_mem.c, kept on disk in node.data_dir/store with LMDB.
 * Keys and values: store_lmdb_int.h; ARCHITECTURE.md "Persistence".
 *
 * Transactions (group commit). The runner applies a group of batches and
 * then calls sync once. One LMDB write transaction spans the group; each
 * batch is a nested transaction inside it, committed into the group when the
 * batch applied whole and aborted otherwise (all or nothing per batch). sync
 * commits the group. Measured (test_store_lmdb's bench, 99-event batches,
 * 2-core VM, ext4): fsync off, commit per batch 14-18k batches/s, per group
 * of 8 17.5-18.5k; fsync on, 0.7-1.3k vs 10-12.5k. With fsync on only the
 * group transaction gives group commit safely (see below); off, it still
 * writes each touched page once per group instead of once per batch.
 *
 * Durability (session.local.fsync):
 *  - false: the environment is opened MDB_NOSYNC. A commit write()s the pages
 *    into the page cache and returns: that survives kill -9 of the process
 *    (the kernel has the data), not a power cut, which may lose or - LMDB
 *    does not order the unsynced data and meta page writes - damage the
 *    last transactions.
 *  - true: LMDB's default, fully synced commit: data pages, fdatasync, meta
 *    page, fdatasync. That is two syncs per group, never per batch. Not
 *    MDB_NOSYNC + mdb_env_sync(): the meta page could then reach the disk
 *    before the pages it points to; not MDB_NOMETASYNC: a power cut could
 *    undo the last commit, which the runner has already acknowledged.
 * Either way a crash never corrupts what was committed before: LMDB's
 * B-tree is copy-on-write and a commit switches between two meta pages, so
 * no write-ahead log of our own is needed.
 *
 * Checks mirror store_mem.c: a first pass over the batch against the stored
 * state (a put needs its session / message, stored or put earlier in the
 * batch), then the changes; any error aborts the batch's transaction.
 * Threads: MDB_NOTLS, since the runner thread applies and the main thread
 * loads; one at a time (store.h). One process per data dir: core/lockfile.c.
 */
#include "store/store.h"
#include "store/store_lmdb_int.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <string.h>
#include <uthash.h>

#define GROUP_MAX 256             /* batches per group transaction before an early commit */

/* ---- apply ---- */

/* What the check pass knows about keys the batch touched before (as
 * store_mem.c). */
struct shadow {
	const void *key;
	size_t klen;
	bool exists;
	UT_hash_handle hh;
};

static void shadow_set(struct shadow **tb, const void *key, size_t klen, bool exists)
{
	struct shadow *e;
	HASH_FIND(hh, *tb, key, klen, e);
	if (!e) {
		e = hq_calloc(1, sizeof(*e));
		e->key = key;
		e->klen = klen;
		HASH_ADD_KEYPTR(hh, *tb, e->key, e->klen, e);
	}
	e->exists = exists;
}

static struct shadow *shadow_find(struct shadow *tb, const void *key, size_t klen)
{
	struct shadow *e;
	HASH_FIND(hh, tb, key, klen, e);
	return e;
}

static void shadow_free(struct shadow **tb)
{
	struct shadow *e, *tmp;
	HASH_ITER(hh, *tb, e, tmp) {
		HASH_DEL(*tb, e);
		hq_free(e);
	}
}

/* The check pass of store_mem.c, against the stored state. */
static int check(struct lmdb_store *l, MDB_txn *t, const struct store_batch *b)
{
	struct shadow *sess = NULL, *msgs = NULL;
	int rc = HQ_OK;
	for (uint32_t i = 0; i < b->n_ev && rc == HQ_OK; i++) {
		const struct store_ev *ev = &b->ev[i];
		if (ev->kind == 0 || ev->kind > STORE_EV_KIND_MAX ||
		    (lmdb_session_scoped(ev->kind) && !ev->client_id.len)) {
			rc = HQ_EINVAL;
			break;
		}
		bool have_sess = false;
		if (lmdb_session_scoped(ev->kind)) {
			struct shadow *sh = shadow_find(sess, ev->client_id.p, ev->client_id.len);
			if (sh)
				have_sess = sh->exists;
			else if ((rc = lmdb_sess_exists(l, t, ev->client_id, &have_sess)) != HQ_OK)
				break;
		}
		switch (ev->kind) {
		case STORE_EV_SESSION_PUT:
		case STORE_EV_SESSION_DEL:
			shadow_set(&sess, ev->client_id.p, ev->client_id.len,
				   ev->kind == STORE_EV_SESSION_PUT);
			break;
		case STORE_EV_SUB_PUT:
		case STORE_EV_RXID_ADD:
			if (!have_sess)
				rc = HQ_ENOTFOUND;
			break;
		case STORE_EV_MSG_PUT:
			if (!ev->u.msg.id || !ev->u.msg.topic.len)
				rc = HQ_EINVAL;
			else
				shadow_set(&msgs, &ev->u.msg.id, sizeof(uint64_t), true);
			break;
		case STORE_EV_QENT_PUT:
		case STORE_EV_QENT_UPDATE:
			if (ev->u.qent.state > STORE_Q_PUBREL) {
				rc = HQ_EINVAL;
				break;
			}
			if (ev->kind == STORE_EV_QENT_UPDATE)
				break;
			if (!have_sess) {
				rc = HQ_ENOTFOUND;
			} else if (ev->u.qent.state != STORE_Q_PUBREL &&
				   !shadow_find(msgs, &ev->u.qent.msg_id, sizeof(uint64_t))) {
				uint32_t refs;
				bool found;
				rc = lmdb_refs_get(l, t, ev->u.qent.msg_id, &refs, &found);
				if (rc == HQ_OK && !found)
					rc = HQ_ENOTFOUND; /* an entry needs its message */
			}
			break;
		case STORE_EV_RETAIN_PUT:
		case STORE_EV_RETAIN_DEL:
			if (!ev->u.msg.topic.len)
				rc = HQ_EINVAL;
			break;
		case STORE_EV_RXID_MARK:
			/* no rx id: ignored when applied, not an error */
			if (!ev->u.mark.target.len)
				rc = HQ_EINVAL;
			break;
		default:
			break;
		}
	}
	shadow_free(&sess);
	shadow_free(&msgs);
	return rc;
}

static int apply_batch(struct lmdb_store *l, MDB_txn *t, const struct store_batch *b)
{
	int rc = check(l, t, b);
	for (uint32_t i = 0; i < b->n_ev && rc == HQ_OK; i++)
		rc = lmdb_apply_ev(l, t, &b->ev[i]);
	/* a message no entry took by the batch's end is not kept */
	for (uint32_t i = 0; i < b->n_ev && rc == HQ_OK; i++) {
		if (b->ev[i].kind != STORE_EV_MSG_PUT)
			continue;
		uint32_t refs;
		bool found;
		rc = lmdb_refs_get(l, t, b->ev[i].u.msg.id, &refs, &found);
		if (rc == HQ_OK && found && !refs)
			rc = lmdb_msg_del(l, t, b->ev[i].u.msg.id);
	}
	return rc;
}

/* ---- the group transaction ---- */

/* Commit the group's transaction (nothing open: nothing to do). */
static int group_commit(struct lmdb_store *l)
{
	if (!l->group)
		return HQ_OK;
	int rc = mdb_txn_commit(l->group);
	l->group = NULL;
	l->group_batches = 0;
	if (rc)
		return lmdb_err(l, rc, "commit");
	l->err_logged = false;
	return HQ_OK;
}

/* The group's transaction is lost: batches already applied into it were
 * reported applied, so the group's sync must fail. */
static int group_lost(struct lmdb_store *l, int rc)
{
	if (l->group)
		mdb_txn_abort(l->group);
	l->group = NULL;
	if (l->group_batches)
		l->poisoned = rc;
	l->group_batches = 0;
	return rc;
}

static int l_apply(struct store *st, const struct store_batch *b)
{
	struct lmdb_store *l = st->impl;
	if (l->poisoned)
		return l->poisoned; /* the group fails anyway */
	if (l->group_batches >= GROUP_MAX) {
		/* a long group (a backlog): bound the transaction's dirty pages */
		int had = l->group_batches, rc = group_commit(l);
		if (rc != HQ_OK) {
			l->poisoned = had ? rc : 0;
			return rc;
		}
	}
	int rc;
	if (!l->group && (rc = mdb_txn_begin(l->env, NULL, 0, &l->group)) != 0) {
		l->group = NULL;
		return lmdb_err(l, rc, "begin");
	}
	MDB_txn *t;
	if ((rc = mdb_txn_begin(l->env, l->group, 0, &t)) != 0)
		return group_lost(l, lmdb_err(l, rc, "begin"));
	int hrc = apply_batch(l, t, b);
	if (hrc != HQ_OK) {
		mdb_txn_abort(t); /* nothing of the batch; the group goes on */
		return hrc;
	}
	if ((rc = mdb_txn_commit(t)) != 0)
		return group_lost(l, lmdb_err(l, rc, "commit"));
	l->group_batches++;
	return HQ_OK;
}

static int l_sync(struct store *st)
{
	struct lmdb_store *l = st->impl;
	int rc = l->poisoned;
	l->poisoned = 0;
	return rc != HQ_OK ? rc : group_commit(l);
}

/* ---- load ---- */

struct loader {
	struct lmdb_store *l;
	MDB_txn *t;
	store_load_cb cb;
	void *ctx;
};

static int malformed(struct lmdb_store *l, const char *db, const char *why)
{
	log_error("store local: a record of \"%s\" in %s/data.mdb is malformed (%s): "
		  "refusing to load it (move the store away to start empty)", db, l->dir, why);
	return HQ_EMALFORMED;
}

/* Is the rx id of mark key k (P(cid) be16(pid) ..., the prefix plen long)
 * stored? A mark is written only while it is; this keeps a stray one out. */
static int mark_has_rxid(struct loader *ld, const MDB_val *k, size_t plen, bool *found)
{
	MDB_val rk = { plen + 2, k->mv_data }, v;
	int rc = mdb_get(ld->t, ld->l->rxid, &rk, &v);
	*found = rc == 0;
	return rc == 0 || rc == MDB_NOTFOUND ? HQ_OK : lmdb_err(ld->l, rc, "read");
}

/* Every record of dbi (under prefix p when given), decoded as `kind`;
 * session-scoped kinds get cid and the key's tail (seq, pid). */
static int load_db(struct loader *ld, MDB_dbi dbi, const char *db, uint8_t kind,
		   const struct lmdb_key *p, struct store_bytes cid)
{
	struct lmdb_store *l = ld->l;
	MDB_cursor *c;
	int rc = mdb_cursor_open(ld->t, dbi, &c);
	if (rc)
		return lmdb_err(l, rc, "cursor");
	MDB_val k = p ? lmdb_kv(p) : (MDB_val){ 0, NULL }, v;
	size_t plen = p ? p->len : 0;
	int hrc = HQ_OK;
	for (rc = mdb_cursor_get(c, &k, &v, p ? MDB_SET_RANGE : MDB_FIRST); rc == 0 && hrc == HQ_OK;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (p && (k.mv_size < plen || memcmp(k.mv_data, p->b, plen)))
			break;
		struct store_ev e;
		const char *why;
		if ((hrc = lmdb_dec(kind, v.mv_data, v.mv_size, &e, &l->scratch, &why)) != HQ_OK) {
			hrc = malformed(l, db, why);
			break;
		}
		const uint8_t *tail = (const uint8_t *)k.mv_data + plen;
		size_t tlen = k.mv_size - plen;
		if (kind == STORE_EV_QENT_PUT || kind == STORE_EV_RXID_ADD) {
			if (tlen != (kind == STORE_EV_QENT_PUT ? 8u : 2u)) {
				hrc = malformed(l, db, "bad key length");
				break;
			}
			if (kind == STORE_EV_QENT_PUT)
				e.u.qent.seq = lmdb_be64(tail);
			else
				e.u.pid = (uint16_t)(tail[0] << 8 | tail[1]);
		}
		if (kind == STORE_EV_RXID_MARK) {
			bool has_rxid;
			if (tlen < 3) {
				hrc = malformed(l, db, "bad key length");
				break;
			}
			if ((hrc = mark_has_rxid(ld, &k, plen, &has_rxid)) != HQ_OK)
				break;
			if (!has_rxid)
				continue;
			e.u.mark.pid = (uint16_t)(tail[0] << 8 | tail[1]);
		}
		if (kind != STORE_EV_SESSION_PUT && lmdb_session_scoped(kind))
			e.client_id = cid;
		if (kind == STORE_EV_MSG_PUT && (tlen != 8 || e.u.msg.id != lmdb_be64(tail))) {
			hrc = malformed(l, db, "message id differs from its key");
			break;
		}
		/* a record keyed by a string is under the key that string makes */
		struct lmdb_key sk;
		bool keyed = true;
		if (kind == STORE_EV_SESSION_PUT) {
			lmdb_key_sess(&sk, e.client_id);
		} else if (kind == STORE_EV_SUB_PUT) {
			sk = *p;
			lmdb_key_str(&sk, e.u.sub.filter);
		} else if (kind == STORE_EV_RXID_MARK) {
			sk = *p;
			lmdb_key_u16(&sk, e.u.mark.pid);
			lmdb_key_str(&sk, e.u.mark.target);
		} else if (kind == STORE_EV_RETAIN_PUT) {
			sk.len = 0;
			lmdb_key_str(&sk, e.u.msg.topic);
		} else {
			keyed = false;
		}
		if (keyed && (sk.len != k.mv_size || memcmp(sk.b, k.mv_data, sk.len))) {
			hrc = malformed(l, db, "the full key differs from the record's key");
			break;
		}
		hrc = ld->cb(ld->ctx, &e);
		if (hrc == HQ_OK && kind == STORE_EV_SESSION_PUT) {
			/* the session's records, in load order */
			hrc = load_db(ld, l->sub, "sub", STORE_EV_SUB_PUT, &sk, e.client_id);
			if (hrc == HQ_OK)
				hrc = load_db(ld, l->qent, "qent", STORE_EV_QENT_PUT, &sk, e.client_id);
			if (hrc == HQ_OK)
				hrc = load_db(ld, l->rxid, "rxid", STORE_EV_RXID_ADD, &sk, e.client_id);
			if (hrc == HQ_OK)
				hrc = load_db(ld, l->mark, "mark", STORE_EV_RXID_MARK, &sk, e.client_id);
		}
	}
	mdb_cursor_close(c);
	if (hrc != HQ_OK)
		return hrc;
	return rc == 0 || rc == MDB_NOTFOUND ? HQ_OK : lmdb_err(l, rc, "read");
}

static int read_begin(struct lmdb_store *l, MDB_txn **t)
{
	/* whatever was applied without a sync yet (tests; a stopped runner
	 * has synced its last group) */
	int rc = group_commit(l);
	if (rc != HQ_OK)
		return rc;
	if ((rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, t)) != 0)
		return lmdb_err(l, rc, "begin");
	return HQ_OK;
}

static int l_load(struct store *st, store_load_cb cb, void *ctx)
{
	struct lmdb_store *l = st->impl;
	struct loader ld = { l, NULL, cb, ctx };
	int rc = read_begin(l, &ld.t);
	if (rc != HQ_OK)
		return rc;
	struct store_bytes none = { 0 };
	rc = load_db(&ld, l->msg, "msg", STORE_EV_MSG_PUT, NULL, none);
	if (rc == HQ_OK)
		rc = load_db(&ld, l->sess, "sess", STORE_EV_SESSION_PUT, NULL, none);
	if (rc == HQ_OK)
		rc = load_db(&ld, l->ret, "ret", STORE_EV_RETAIN_PUT, NULL, none);
	mdb_txn_abort(ld.t);
	return rc;
}

static uint64_t l_next_msg_id(struct store *st)
{
	struct lmdb_store *l = st->impl;
	MDB_txn *t;
	if (read_begin(l, &t) != HQ_OK)
		return 1;
	uint64_t next = 1;
	MDB_cursor *c;
	MDB_val k, v;
	if (mdb_cursor_open(t, l->msg, &c) == 0) {
		if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
			next = lmdb_be64(k.mv_data) + 1;
		mdb_cursor_close(c);
	}
	mdb_txn_abort(t);
	return next;
}

static const char *l_describe(struct store *st)
{
	struct lmdb_store *l = st->impl;
	return l->desc;
}

static void l_close(struct store *st)
{
	struct lmdb_store *l = st->impl;
	if (!l)
		return;
	int rc = l->poisoned ? l->poisoned : group_commit(l);
	if (rc != HQ_OK)
		log_error("store local: the last writes to %s were lost at close (%s)", l->dir,
			  hq_strerror(rc));
	if (l->env) {
		mdb_env_sync(l->env, 1); /* a clean stop leaves everything on disk */
		mdb_env_close(l->env);
	}
	buf_free(&l->scratch);
	buf_free(&l->val);
	hq_free(l->dir);
	hq_free(l);
	st->impl = NULL;
}

static const struct store_ops lmdb_ops = {
	.name = "local",
	.durable = true,
	.apply = l_apply,
	.sync = l_sync,
	.load = l_load,
	.next_msg_id = l_next_msg_id,
	.close = l_close,
	.describe = l_describe,
};

int store_lmdb_open(const struct hq_config *cfg, struct store **out, char *err, size_t errlen)
{
	*out = NULL;
	struct lmdb_store *l = hq_calloc(1, sizeof(*l));
	struct store st = { &lmdb_ops, l };
	int rc = lmdb_env_open(l, cfg, err, errlen);
	if (rc != HQ_OK) {
		l_close(&st);
		return rc;
	}
	snprintf(l->desc, sizeof(l->desc), "LMDB in %s, fsync %s, max_size %llu bytes", l->dir,
		 l->fsync ? "on" : "off", (unsigned long long)l->max_size);
	*out = hq_memdup(&st, sizeof(st));
	return HQ_OK;
}
