/*
 * topic_kids.c - growing, shrinking and deleting in the literal-children table
 * of the topic tries (see topic_kids.h for the scheme and its invariants).
 *
 * Layer: broker, private to topic_tree.c and retain_tree.c. Only subscribe,
 * unsubscribe and retained-set paths come here; matching uses the inline
 * lookups in the header and never allocates.
 */
#include "broker/topic_kids.h"
#include "core/mem.h"

static void kids_place(struct kids_key **slot, uint32_t mask, struct kids_key *k)
{
	uint32_t i = kids_home(k->hv) & mask;
	while (slot[i])
		i = (i + 1) & mask;
	slot[i] = k;
}

static void kids_rehash(struct kids *t, uint32_t cap)
{
	struct kids_key **ns = hq_calloc(cap, sizeof(*ns));
	if (t->slot) {
		for (uint32_t i = 0; i <= t->mask; i++)
			if (t->slot[i])
				kids_place(ns, cap - 1, t->slot[i]);
		hq_free(t->slot);
	}
	t->slot = ns;
	t->mask = cap - 1;
}

void kids_insert(struct kids *t, void *node)
{
	struct kids_key *k = node;
	uint32_t cap = t->slot ? t->mask + 1 : 0;
	if ((t->n + 1) * 4 > cap * 3)	/* keep load <= 3/4 so probes stay short */
		kids_rehash(t, cap ? cap * 2 : 2);
	kids_place(t->slot, t->mask, k);
	t->n++;
}

void kids_remove(struct kids *t, void *node)
{
	uint32_t mask = t->mask, i = kids_slot(t, node), j = i;

	t->slot[i] = NULL;
	/* backward shift: pull later entries of the probe run into the hole unless
	 * their home lies cyclically in (i, j], where they must stay */
	for (;;) {
		j = (j + 1) & mask;
		struct kids_key *e = t->slot[j];
		if (!e)
			break;
		uint32_t h = kids_home(e->hv) & mask;
		if (j > i ? (h <= i || h > j) : (h <= i && h > j)) {
			t->slot[i] = e;
			t->slot[j] = NULL;
			i = j;
		}
	}
	if (--t->n == 0) {
		kids_free(t);
	} else if (mask >= 8 && t->n * 8 <= mask + 1) {
		/* shrink at 1/8 so a table that lost most children stops costing
		 * memory, with hysteresis against the 3/4 growth point */
		kids_rehash(t, (mask + 1) / 2);
	}
}

void kids_free(struct kids *t)
{
	HQ_FREE(t->slot);
	t->n = 0;
	t->mask = 0;
}
