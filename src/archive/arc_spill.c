/*
 * arc_spill.c - an archive's spill file: a separate LMDB environment at
 * node.data_dir/archive/<name>/ (never the session store's: its own size
 * bound, its own fsync'd commits, deleted row by row once written).
 *
 * Rows are keyed by an increasing 64-bit sequence (big-endian, so LMDB's
 * order is arrival order) continued across restarts; a row is one message
 * serialised (fixed header, then its strings and payload). Every put is one
 * transaction committed with fsync (LMDB's default) before the items are
 * acknowledged. Takes hand rows out in key order and remember how far they
 * went (`next`), so two writers never take the same row; rows are deleted
 * only once the database committed them, so a crash replays them (the
 * message id makes that harmless).
 *
 * Threads: any archive thread; one mutex around every call.
 */
#include "archive/arc_int.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

#include <lmdb.h>
#include <stdio.h>
#include <string.h>

struct arc_spill {
	pthread_mutex_t lock;
	MDB_env *env;
	MDB_dbi dbi;
	uint64_t max_bytes;
	uint64_t seq;   /* the next key to put */
	uint64_t next;  /* the next key to take */
	_Atomic uint64_t bytes, rows;
};

#define HDR 58 /* ts 8, qos 1, retain 1, id 32, topic 4, payload 4, clientid 2, username 2, has_user 1, node 2, pad 1 */

static size_t enc_size(const struct arc_msg *m)
{
	return HDR + m->topic_len + m->payload_len + m->clientid_len +
	       (m->username ? m->username_len : 0) + strlen(m->node);
}

static uint8_t *put_n(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t get_n(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void encode(const struct arc_msg *m, uint8_t *out)
{
	size_t nl = strlen(m->node);
	uint8_t *p = put_n(out, (uint64_t)m->ts_ms, 8);
	*p++ = m->qos;
	*p++ = m->retain;
	memcpy(p, m->id, ARC_ID_HEX);
	p += ARC_ID_HEX;
	p = put_n(p, m->topic_len, 4);
	p = put_n(p, m->payload_len, 4);
	p = put_n(p, m->clientid_len, 2);
	p = put_n(p, m->username ? m->username_len : 0, 2);
	*p++ = m->username != NULL;
	p = put_n(p, nl, 2);
	*p++ = 0;
	memcpy(p, m->topic, m->topic_len);
	p += m->topic_len;
	if (m->payload_len)
		memcpy(p, m->payload, m->payload_len);
	p += m->payload_len;
	memcpy(p, m->clientid, m->clientid_len);
	p += m->clientid_len;
	if (m->username)
		memcpy(p, m->username, m->username_len);
	p += m->username ? m->username_len : 0;
	memcpy(p, m->node, nl);
}

/* A row back into an item; NULL if it is not one of ours (truncated). */
static struct archive_item *decode(const uint8_t *p, size_t len)
{
	if (len < HDR)
		return NULL;
	struct arc_msg m = { 0 };
	m.ts_ms = (int64_t)get_n(p, 8);
	m.qos = p[8];
	m.retain = p[9];
	memcpy(m.id, p + 10, ARC_ID_HEX);
	m.id[ARC_ID_HEX] = '\0';
	const uint8_t *q = p + 10 + ARC_ID_HEX;
	m.topic_len = (uint32_t)get_n(q, 4);
	m.payload_len = (uint32_t)get_n(q + 4, 4);
	m.clientid_len = (uint16_t)get_n(q + 8, 2);
	m.username_len = (uint16_t)get_n(q + 10, 2);
	bool has_user = q[12];
	size_t nl = (size_t)get_n(q + 13, 2);
	if ((size_t)HDR + m.topic_len + m.payload_len + m.clientid_len + m.username_len + nl != len)
		return NULL;
	const uint8_t *d = p + HDR;
	m.topic = (const char *)d;
	d += m.topic_len;
	m.payload = d;
	d += m.payload_len;
	m.clientid = (const char *)d;
	d += m.clientid_len;
	m.username = has_user ? (const char *)d : NULL;
	d += m.username_len;
	char node[256];
	snprintf(node, sizeof(node), "%.*s", (int)nl, (const char *)d);
	m.node = node;
	return archive_item_new(&m);
}

static void key_of(uint64_t seq, uint8_t k[8])
{
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(seq >> (56 - 8 * i));
}

static uint64_t seq_of(const MDB_val *k)
{
	uint64_t v = 0;
	const uint8_t *p = k->mv_data;
	for (size_t i = 0; i < 8 && i < k->mv_size; i++)
		v = v << 8 | p[i];
	return v;
}

int arc_spill_open(const char *dir, uint64_t max_bytes, struct arc_spill **out, char *err,
		   size_t errlen)
{
	*out = NULL;
	if (fs_mkdir_p(dir) != HQ_OK) {
		snprintf(err, errlen, "cannot create the directory");
		return HQ_EIO;
	}
	struct arc_spill *sp = hq_calloc(1, sizeof(*sp));
	pthread_mutex_init(&sp->lock, NULL);
	sp->max_bytes = max_bytes;
	int rc = mdb_env_create(&sp->env);
	/* room for the rows, LMDB's pages around them and the freed pages not
	 * yet reused; a sparse file, only what is written takes disk */
	if (!rc)
		rc = mdb_env_set_mapsize(sp->env, (size_t)(max_bytes * 2 + (UINT64_C(64) << 20)));
	if (!rc)
		rc = mdb_env_open(sp->env, dir, MDB_NOTLS, 0600);
	MDB_txn *txn = NULL;
	if (!rc)
		rc = mdb_txn_begin(sp->env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, NULL, 0, &sp->dbi);
	MDB_cursor *cur = NULL;
	if (!rc)
		rc = mdb_cursor_open(txn, sp->dbi, &cur);
	if (!rc) {
		MDB_val k, v;
		uint64_t bytes = 0, rows = 0, last = 0;
		for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !r;
		     r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			bytes += v.mv_size;
			rows++;
			last = seq_of(&k);
		}
		sp->bytes = bytes;
		sp->rows = rows;
		sp->seq = last + 1;
		mdb_cursor_close(cur);
	}
	if (txn)
		rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
	if (rc) {
		snprintf(err, errlen, "%s", mdb_strerror(rc));
		arc_spill_close(sp);
		return HQ_EIO;
	}
	*out = sp;
	return HQ_OK;
}

void arc_spill_close(struct arc_spill *sp)
{
	if (!sp)
		return;
	if (sp->env)
		mdb_env_close(sp->env);
	pthread_mutex_destroy(&sp->lock);
	hq_free(sp);
}

int arc_spill_put(struct arc_spill *sp, const struct archive_item *head, uint32_t n, char *err,
		  size_t errlen)
{
	uint64_t total = 0;
	for (const struct archive_item *it = head; it; it = it->next)
		total += enc_size(&it->m);
	pthread_mutex_lock(&sp->lock);
	if (sp->bytes + total > sp->max_bytes) {
		pthread_mutex_unlock(&sp->lock);
		return HQ_ELIMIT;
	}
	MDB_txn *txn;
	int rc = mdb_txn_begin(sp->env, NULL, 0, &txn);
	uint64_t seq = sp->seq;
	for (const struct archive_item *it = head; it && !rc; it = it->next) {
		uint8_t kb[8];
		key_of(seq++, kb);
		MDB_val k = { 8, kb }, v = { enc_size(&it->m), NULL };
		rc = mdb_put(txn, sp->dbi, &k, &v, MDB_APPEND | MDB_RESERVE);
		if (!rc)
			encode(&it->m, v.mv_data);
	}
	if (!rc)
		rc = mdb_txn_commit(txn); /* fsync'd: the items may be acknowledged */
	else
		mdb_txn_abort(txn);
	if (!rc) {
		sp->seq = seq;
		sp->bytes += total;
		sp->rows += n;
	}
	pthread_mutex_unlock(&sp->lock);
	if (rc == MDB_MAP_FULL)
		return HQ_ELIMIT;
	if (rc) {
		snprintf(err, errlen, "%s", mdb_strerror(rc));
		return HQ_EIO;
	}
	return HQ_OK;
}

int arc_spill_take(struct arc_spill *sp, uint32_t max, struct archive_item **head, uint32_t *n)
{
	*head = NULL;
	*n = 0;
	pthread_mutex_lock(&sp->lock);
	if (sp->next >= sp->seq || !atomic_load_explicit(&sp->rows, memory_order_relaxed)) {
		pthread_mutex_unlock(&sp->lock);
		return HQ_OK;
	}
	MDB_txn *txn;
	int rc = mdb_txn_begin(sp->env, NULL, MDB_RDONLY, &txn);
	MDB_cursor *cur = NULL;
	if (!rc)
		rc = mdb_cursor_open(txn, sp->dbi, &cur);
	struct archive_item *tail = NULL;
	if (!rc) {
		uint8_t kb[8];
		key_of(sp->next, kb);
		MDB_val k = { 8, kb }, v;
		for (int r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !r && *n < max;
		     r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			uint64_t seq = seq_of(&k);
			sp->next = seq + 1;
			struct archive_item *it = decode(v.mv_data, v.mv_size);
			if (!it) {
				log_error("spill file: row %llu is not a message, skipped",
					  (unsigned long long)seq);
				continue;
			}
			it->spill_key = seq;
			if (tail)
				tail->next = it;
			else
				*head = it;
			tail = it;
			(*n)++;
		}
		if (!*n)
			sp->next = sp->seq; /* nothing after it */
		mdb_cursor_close(cur);
	}
	if (!rc)
		mdb_txn_abort(txn);
	pthread_mutex_unlock(&sp->lock);
	return rc ? HQ_EIO : HQ_OK;
}

int arc_spill_del(struct arc_spill *sp, const struct archive_item *head)
{
	pthread_mutex_lock(&sp->lock);
	MDB_txn *txn;
	int rc = mdb_txn_begin(sp->env, NULL, 0, &txn);
	uint64_t bytes = 0, rows = 0;
	for (const struct archive_item *it = head; it && !rc; it = it->next) {
		uint8_t kb[8];
		key_of(it->spill_key, kb);
		MDB_val k = { 8, kb };
		int r = mdb_del(txn, sp->dbi, &k, NULL);
		if (!r) {
			bytes += enc_size(&it->m);
			rows++;
		} else if (r != MDB_NOTFOUND) {
			rc = r;
		}
	}
	if (!rc)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (!rc) {
		sp->bytes -= bytes < sp->bytes ? bytes : sp->bytes;
		sp->rows -= rows < sp->rows ? rows : sp->rows;
	}
	pthread_mutex_unlock(&sp->lock);
	if (rc)
		log_error("spill file: written rows not deleted (%s): written again later",
			  mdb_strerror(rc));
	return rc ? HQ_EIO : HQ_OK;
}

uint64_t arc_spill_bytes(const struct arc_spill *sp)
{
	return atomic_load_explicit(&sp->bytes, memory_order_relaxed);
}

uint64_t arc_spill_rows(const struct arc_spill *sp)
{
	return atomic_load_explicit(&sp->rows, memory_order_relaxed);
}
