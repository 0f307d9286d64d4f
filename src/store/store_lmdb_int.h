/*
 * store_lmdb_int.h - what the two halves of the local (LMDB) backend share:
 * the key layout and the value codec (store_lmdb_codec.c), used by the
 * backend (store_lmdb.c) and its tests. ARCHITECTURE.md "Persistence"
 * describes the layout; this header pins it.
 *
 * Keys (LMDB compares keys as bytes; every session-scoped key starts with
 * the session's prefix, so one cursor range scan per session finds its
 * subscriptions, entries and rx ids, and SESSION_DEL deletes by range):
 *   sess   P(cid)                       -> session value
 *   sub    P(cid) T(filter, room left)  -> subscription value
 *   qent   P(cid) be64(seq)             -> entry value (big endian: queue order)
 *   rxid   P(cid) be16(pid)             -> one version byte
 *   mark   P(cid) be16(pid) T(target, room left) -> target value (RXID_MARK:
 *          under its rx id's key, so RXID_DEL and SESSION_DEL delete a
 *          pid's or a session's marks by range)
 *   msg    be64(id)                     -> message value
 *   mref   be64(id)                     -> be32 number of entries referencing it
 *   ret    T(topic, 511)                -> message value
 *   meta   "format"                     -> be32 LMDB_FORMAT
 * P(cid) = len8 cid when the id is at most LMDB_CID_RAW_MAX bytes, else
 * 0xFF sha256(cid): the first byte says how long the prefix is, so no
 * prefix is the start of another. T(s, room) = 0x00 s when that fits in
 * room, else 0x01 sha256(s). LMDB keys are at most 511 bytes, client ids and
 * topics up to 65535: a value whose key may be hashed (session, subscription,
 * mark, retained) starts with its full key, and every read or write of a hashed
 * key compares it (a mismatch, a SHA-256 collision, is refused, never
 * overwritten).
 *
 * Values start with a version byte (LMDB_VAL_V1), then fixed-width
 * big-endian fields and u32-length byte strings (core/bytes.h).
 */
#ifndef HQ_STORE_LMDB_INT_H
#define HQ_STORE_LMDB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

/* the meta "format" record: the layout above. The "mark" database came
 * later without a bump: a format 1 store without it is read as one without
 * marks (open creates the database), which it is. */
#define LMDB_FORMAT 1
#define LMDB_VAL_V1 1             /* first byte of every value */
#define LMDB_KEY_MAX 511          /* liblmdb's default MDB_MAXKEYSIZE; checked at open */
#define LMDB_CID_RAW_MAX 200      /* longer client ids are hashed in keys */
#define LMDB_HASH_LEN 32

struct lmdb_key {
	uint8_t b[LMDB_KEY_MAX];
	size_t len;
	bool hashed;              /* the variable part is a hash: compare the full key */
};

/* k = P(cid) */
void lmdb_key_sess(struct lmdb_key *k, struct store_bytes cid);
/* k = P(cid) T(s) (sub), P(cid) be64 (qent), P(cid) be16 (rxid), P(cid) be16
 * T(s) (mark), T(s) (ret), be64 (msg, mref); each from an empty or
 * session-prefixed k */
void lmdb_key_str(struct lmdb_key *k, struct store_bytes s);
void lmdb_key_u64(struct lmdb_key *k, uint64_t v);
void lmdb_key_u16(struct lmdb_key *k, uint16_t v);

/* Encode the value of a put event (SESSION_PUT, SUB_PUT, MSG_PUT, QENT_PUT,
 * RXID_ADD, RXID_MARK, RETAIN_PUT) into w (count or fixed mode). Errors stick in w. */
struct bytes_wr;
void lmdb_enc(struct bytes_wr *w, const struct store_ev *ev);

/* Decode a value into *ev as a put event of `kind` whose bytes borrow from
 * p (and from *scratch for a queue entry's subscription ids, host order).
 * Fields the key carries (client id of sub/qent/rxid/mark, seq, pid) are the
 * caller's to fill. HQ_OK or HQ_EMALFORMED with *why set. */
int lmdb_dec(uint8_t kind, const void *p, size_t n, struct store_ev *ev, struct buf *scratch,
	     const char **why);

/* The full key at the start of a session, subscription, mark or retained
 * value (client id, filter, target, topic); false when the value is malformed. */
bool lmdb_dec_full_key(const void *p, size_t n, struct store_bytes *out);

/* ---- the backend's state (store_lmdb*.c) ---- */

#include <lmdb.h>

struct lmdb_store {
	MDB_env *env;
	MDB_dbi meta, sess, sub, qent, rxid, mark, msg, mref, ret;
	MDB_txn *group;           /* the current group's write transaction, or NULL */
	unsigned group_batches;   /* batches committed into it */
	int poisoned;             /* a group lost after some of its batches were applied:
				   * sync reports it (the runner fails the whole group) */
	bool fsync;
	bool err_logged;          /* map full / disk error logged since the last commit */
	uint64_t max_size;
	char *dir;                /* owned: node.data_dir/store */
	struct buf scratch;       /* decoded subscription ids */
	struct buf val;           /* a copy of a value being rewritten */
	char desc[256];
};

/* store_lmdb_env.c: create or open the environment in node.data_dir/store,
 * check or write the format record, open the named databases. HQ_OK, or an
 * error with err set (the node refuses to start). */
struct hq_config;
int lmdb_env_open(struct lmdb_store *l, const struct hq_config *cfg, char *err, size_t errlen);

/* store_lmdb_rec.c: the records, inside the batch's transaction t. */
int lmdb_err(struct lmdb_store *l, int rc, const char *what);
int lmdb_sess_exists(struct lmdb_store *l, MDB_txn *t, struct store_bytes cid, bool *found);
/* The reference count of message id; *found false when it is not stored
 * (a message and its count are written and deleted together). */
int lmdb_refs_get(struct lmdb_store *l, MDB_txn *t, uint64_t id, uint32_t *refs, bool *found);
int lmdb_msg_del(struct lmdb_store *l, MDB_txn *t, uint64_t id);
/* The changes of one checked event (the check pass: store_lmdb.c). */
int lmdb_apply_ev(struct lmdb_store *l, MDB_txn *t, const struct store_ev *ev);

static inline bool lmdb_session_scoped(uint8_t kind)
{
	return kind != STORE_EV_MSG_PUT && kind != STORE_EV_RETAIN_PUT && kind != STORE_EV_RETAIN_DEL;
}

static inline MDB_val lmdb_kv(const struct lmdb_key *k)
{
	return (MDB_val){ k->len, (void *)k->b };
}

static inline uint64_t lmdb_be64(const uint8_t *p)
{
	return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
	       (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
	       (uint64_t)p[6] << 8 | p[7];
}

#endif
