/*
 * track.c - what each tracker (subscriber, or shared subscription) saw of each
 * publisher: the sequence numbers received, as "everything below next except
 * these gaps".
 *
 * In order delivery is the fast path (next++). A number above next opens a gap
 * [next, seq); a number inside a gap is a reorder and shrinks or splits it; a
 * number below next and outside every gap was seen before: a duplicate. Memory
 * is proportional to the number of gaps, not of messages; a gap list longer
 * than TRK_MAX_GAPS forgets its oldest half (counted as t->forgotten, still
 * lost; a late arrival into a forgotten gap counts as a duplicate).
 *
 * Bitmap mode (bitmap_bits > 0, e.g. retained messages, whose arrival order is
 * not defined): one bit per sequence number below bitmap_bits, so any order is
 * counted exactly; numbers at or above it fall back to the gap lists.
 */
#include "bench.h"
#include "core/mem.h"

#include <string.h>

#define TRK_MAX_GAPS 4096
#define TRK_EMPTY UINT32_MAX

static struct track *new_table(uint32_t cap)
{
	struct track *tab = hq_calloc(cap, sizeof(*tab));
	for (uint32_t i = 0; i < cap; i++)
		tab[i].pub_id = TRK_EMPTY;
	return tab;
}

void trk_init(struct tracker *t, const char *filter, uint32_t bitmap_bits)
{
	memset(t, 0, sizeof(*t));
	t->filter = hq_strdup(filter);
	t->bitmap_bits = bitmap_bits;
	t->cap = 4;
	t->tab = new_table(t->cap);
}

void trk_free(struct tracker *t)
{
	for (uint32_t i = 0; i < t->cap; i++) {
		hq_free(t->tab[i].gaps);
		hq_free(t->tab[i].seen);
	}
	hq_free(t->tab);
	hq_free(t->filter);
	memset(t, 0, sizeof(*t));
}

static uint32_t slot_of(uint32_t id, uint32_t cap)
{
	return (id * 2654435761u) & (cap - 1);
}

static void grow(struct tracker *t)
{
	struct track *old = t->tab;
	uint32_t ocap = t->cap;

	t->cap *= 2;
	t->tab = new_table(t->cap);
	for (uint32_t i = 0; i < ocap; i++) {
		if (old[i].pub_id == TRK_EMPTY)
			continue;
		uint32_t s = slot_of(old[i].pub_id, t->cap);
		while (t->tab[s].pub_id != TRK_EMPTY)
			s = (s + 1) & (t->cap - 1);
		t->tab[s] = old[i];
	}
	hq_free(old);
	t->last = NULL;
}

struct track *trk_find(struct tracker *t, uint32_t pub_id)
{
	if (t->last && t->last->pub_id == pub_id)
		return t->last;
	uint32_t s = slot_of(pub_id, t->cap);
	while (t->tab[s].pub_id != TRK_EMPTY) {
		if (t->tab[s].pub_id == pub_id)
			return t->last = &t->tab[s];
		s = (s + 1) & (t->cap - 1);
	}
	return NULL;
}

struct track *trk_get(struct tracker *t, uint32_t pub_id)
{
	struct track *k = trk_find(t, pub_id);
	if (k || pub_id == TRK_EMPTY)
		return k;
	if ((t->n + 1) * 2 > t->cap)
		grow(t);
	uint32_t s = slot_of(pub_id, t->cap);
	while (t->tab[s].pub_id != TRK_EMPTY)
		s = (s + 1) & (t->cap - 1);
	k = &t->tab[s];
	memset(k, 0, sizeof(*k));
	k->pub_id = pub_id;
	if (t->bitmap_bits)
		k->seen = hq_calloc(((size_t)t->bitmap_bits + 63) / 64, sizeof(*k->seen));
	t->n++;
	return t->last = k;
}

static void gap_insert(struct track *k, uint32_t at, uint32_t lo, uint32_t hi)
{
	if (k->n_gaps == k->cap_gaps) {
		k->cap_gaps = k->cap_gaps ? k->cap_gaps * 2 : 4;
		k->gaps = hq_realloc(k->gaps, k->cap_gaps * sizeof(*k->gaps));
	}
	memmove(&k->gaps[at + 1], &k->gaps[at], (k->n_gaps - at) * sizeof(*k->gaps));
	k->gaps[at].lo = lo;
	k->gaps[at].hi = hi;
	k->n_gaps++;
}

static void gap_remove(struct track *k, uint32_t at)
{
	memmove(&k->gaps[at], &k->gaps[at + 1], (k->n_gaps - at - 1) * sizeof(*k->gaps));
	k->n_gaps--;
}

/* forget the oldest half of the gaps (still counted as lost) */
static void gap_forget(struct tracker *t, struct track *k)
{
	uint32_t drop = k->n_gaps / 2;
	for (uint32_t i = 0; i < drop; i++)
		t->forgotten += k->gaps[i].hi - k->gaps[i].lo;
	memmove(k->gaps, k->gaps + drop, (k->n_gaps - drop) * sizeof(*k->gaps));
	k->n_gaps -= drop;
}

/* index of the gap holding seq, or -1 */
static long gap_find(const struct track *k, uint32_t seq)
{
	long lo = 0, hi = (long)k->n_gaps - 1;
	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		const struct gap *g = &k->gaps[mid];
		if (seq < g->lo)
			hi = mid - 1;
		else if (seq >= g->hi)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

static enum seen seen_bitmap(struct tracker *t, struct track *k, uint32_t seq)
{
	uint64_t bit = 1ull << (seq % 64);

	if (k->seen[seq / 64] & bit) {
		t->dup++;
		return SEEN_DUP;
	}
	k->seen[seq / 64] |= bit;
	k->unique++;
	if (seq >= k->next) {
		k->next = seq + 1;
		return SEEN_NEW;
	}
	t->reorder++;
	return SEEN_REORDER;
}

enum seen trk_seen(struct tracker *t, struct track *k, uint32_t seq)
{
	if (k->seen && seq < t->bitmap_bits)
		return seen_bitmap(t, k, seq);
	if (seq == k->next) {
		k->next++;
		k->unique++;
		return SEEN_NEW;
	}
	if (seq > k->next) {
		if (k->n_gaps >= TRK_MAX_GAPS)
			gap_forget(t, k);
		gap_insert(k, k->n_gaps, k->next, seq);
		k->next = seq + 1;
		k->unique++;
		return SEEN_NEW;
	}
	long i = gap_find(k, seq);
	if (i < 0) {
		t->dup++;
		return SEEN_DUP;
	}
	struct gap *g = &k->gaps[i];
	if (seq == g->lo) {
		if (++g->lo == g->hi)
			gap_remove(k, (uint32_t)i);
	} else if (seq == g->hi - 1) {
		g->hi--;
	} else {
		uint32_t hi = g->hi;
		g->hi = seq;
		gap_insert(k, (uint32_t)i + 1, seq + 1, hi);
	}
	k->unique++;
	t->reorder++;
	return SEEN_REORDER;
}

uint64_t trk_gap_total(const struct track *k)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < k->n_gaps; i++)
		n += k->gaps[i].hi - k->gaps[i].lo;
	return n;
}
