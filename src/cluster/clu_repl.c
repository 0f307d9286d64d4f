/*
 * clu_repl.c - the replicated tables (repl/repl.h) across nodes (cluster
 * thread), in the retained messages' way (clu_retain.c): a local change is
 * sent to every linked peer as REPL_SET, a peer's entries are merged by last
 * writer wins (repl_merge), and both sides of a new link send everything
 * they hold, tombstones included, so a node that was down or cut off when a
 * change was made gets it as soon as it links again.
 *
 * A local write reaches this thread as CRQ_REPL naming (table, key) only
 * (repl_set_notify, from whichever thread wrote): the entry is read back
 * here, so a burst of writes to one key sends its latest state, and what a
 * peer receives is always what this node holds.
 */
#include "cluster/clu_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "repl/repl.h"

#include <string.h>

#define SWEEP_MS 60000

/* Any thread: key of table changed here; the cluster thread sends it. */
static void on_notify(void *arg, const char *table, const char *key, size_t klen)
{
	struct clu_node *n = arg;
	size_t tl = strlen(table);
	struct clu_req r = { .kind = CRQ_REPL };
	r.blob_len = (uint32_t)(tl + 1 + klen);
	r.blob = hq_malloc(r.blob_len);
	memcpy(r.blob, table, tl + 1);
	memcpy(r.blob + tl + 1, key, klen);
	struct clu_req_vec v = { 0 };
	clu_req_push(&v, &r);
	clu_submit(n, &v);
	hq_free(v.v);
}

void clu_repl_init(struct clu_node *n)
{
	struct repl *r = brk_clu_repl(n->b);
	if (r)
		repl_set_notify(r, on_notify, n);
}

void clu_repl_free(struct clu_node *n)
{
	struct repl *r = brk_clu_repl(n->b);
	if (r)
		repl_set_notify(r, NULL, NULL);
}

static struct clu_rentry wire_of(const struct repl_entry *e)
{
	return (struct clu_rentry){
		.table = clu_str(e->table),
		.key = { (const uint8_t *)e->key, e->klen },
		.ts = e->ts,
		.origin = { e->origin, e->olen },
		.del = e->del,
		.expires_ms = e->expires_ms,
		.value = { e->val, e->vlen },
	};
}

/* Open a REPL_SET batch on l, or start a new one past 1 MiB. */
struct sender {
	struct clu_link *l;
	struct clu_batch b;
	bool open;
};

static void add(struct sender *s, const struct repl_entry *e)
{
	if (s->open && clu_batch_size(&s->b) > (1u << 20)) {
		clu_batch_end(&s->b);
		s->open = false;
	}
	if (!s->open) {
		if (clu_batch_begin(&s->b, &s->l->out, CLU_MSG_REPL_SET) != HQ_OK)
			return;
		s->open = true;
	}
	struct clu_rentry w = wire_of(e);
	if (clu_batch_rentry(&s->b, &w) != HQ_OK)
		log_warning("cluster: replicated %s entry not sent to %s (invalid)", e->table,
			    s->l->peer);
}

static void send_all_links(void *arg, const struct repl_entry *e)
{
	struct clu_node *n = arg;
	for (struct clu_link *l = n->links; l; l = l->next) {
		if (l->st != LS_UP)
			continue;
		struct sender s = { .l = l };
		add(&s, e);
		if (s.open)
			clu_batch_end(&s.b);
	}
}

void clu_repl_req(struct clu_node *n, struct clu_req *r)
{
	struct repl *rp = brk_clu_repl(n->b);
	const char *table = (const char *)r->blob;
	size_t tl = strnlen(table, r->blob_len);
	if (!rp || tl + 1 >= r->blob_len)
		return;
	repl_entry_get(rp, table, table + tl + 1, r->blob_len - tl - 1, send_all_links, n);
}

static void sync_one(void *arg, const struct repl_entry *e)
{
	add(arg, e);
}

void clu_repl_sync(struct clu_node *n, struct clu_link *l)
{
	struct repl *r = brk_clu_repl(n->b);
	if (!r)
		return;
	struct sender s = { .l = l };
	repl_dump(r, sync_one, &s);
	if (s.open)
		clu_batch_end(&s.b);
}

void clu_repl_frame(struct clu_node *n, struct clu_link *l, struct clu_list list)
{
	struct repl *r = brk_clu_repl(n->b);
	if (!r)
		return;
	struct clu_rentry w;
	while (clu_next_rentry(&list, &w)) {
		char table[CLU_TABLE_MAX + 1];
		memcpy(table, w.table.p, w.table.len);
		table[w.table.len] = 0;
		struct repl_entry e = {
			.table = table, .key = (const char *)w.key.p, .klen = w.key.len,
			.val = w.value.p, .vlen = w.value.len, .ts = w.ts,
			.origin = w.origin.p, .olen = w.origin.len, .del = w.del,
			.expires_ms = w.expires_ms,
		};
		if (repl_merge(r, &e) < 0)
			log_warning("cluster: replicated %s entry from %s refused", table, l->peer);
	}
	repl_flush(r);
}

void clu_repl_tick(struct clu_node *n, int64_t now)
{
	struct repl *r = brk_clu_repl(n->b);
	if (!r || now < n->next_repl_sweep_ms)
		return;
	n->next_repl_sweep_ms = now + SWEEP_MS;
	repl_sweep(r, (uint64_t)clock_wall_ms());
}
