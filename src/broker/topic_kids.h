/*
 * topic_kids.h - the literal-children hash table shared by the topic tries.
 *
 * Layer: broker, private to topic_tree.c and retain_tree.c (not part of the
 * topic.h API). Both tries keep each node's literal children in one of these:
 * open addressing, linear probing, backward-shift deletion (no tombstones),
 * load factor <= 3/4, capacity a power of two, shrunk when 1/8 full.
 *
 * Genericity: a node embeds a struct kids_key immediately followed by its
 * level text (each tree pins that layout with KIDS_KEY_BEFORE_TEXT) and the
 * table stores pointers to those keys, so probing reads only the key and the
 * text next to it, and the tree maps a key back to its node with a constant
 * offset. Lookups are inline because they sit on the PUBLISH fan-out path;
 * only the growing and shrinking paths live in topic_kids.c.
 *
 * Invariants: a table with no children owns no memory (slot == NULL, n == 0,
 * mask == 0); an empty slot always ends a probe run.
 */
#ifndef HQ_BROKER_TOPIC_KIDS_H
#define HQ_BROKER_TOPIC_KIDS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Per-node key; the level text (NUL-terminated) follows it in memory. */
struct kids_key {
	uint32_t hv;		/* kids_hash(level), cached so probes and rehashes skip the text */
	uint32_t len;		/* level length in bytes */
};

struct kids {
	struct kids_key **slot;	/* open addressing, or NULL when there are no children */
	uint32_t n;		/* children held */
	uint32_t mask;		/* capacity - 1 (power of two); 0 while slot is NULL */
};

/* In a node type T, the key member K must sit right before the text member L. */
#define KIDS_KEY_BEFORE_TEXT(T, K, L) \
	_Static_assert(offsetof(T, L) == offsetof(T, K) + sizeof(struct kids_key), \
		       #T " level text must follow its kids_key")

static inline const char *kids_text(const struct kids_key *k)
{
	return (const char *)(k + 1);
}

/* FNV-1a: levels are short, so a byte loop is as fast as anything fancier. */
static inline uint32_t kids_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)s[i];
		h *= 16777619u;
	}
	return h;
}

/* FNV's low bits are weak for short keys; fold the high half in before masking. */
static inline uint32_t kids_home(uint32_t hv)
{
	return hv ^ (hv >> 15);
}

/* Child with level s[0..len) (hv = kids_hash(s, len)), or NULL. */
static inline struct kids_key *kids_find(const struct kids *t, const char *s, size_t len,
					 uint32_t hv)
{
	if (!t->slot)
		return NULL;
	for (uint32_t i = kids_home(hv) & t->mask;; i = (i + 1) & t->mask) {
		struct kids_key *k = t->slot[i];
		if (!k)
			return NULL;
		if (k->hv == hv && k->len == len && memcmp(kids_text(k), s, len) == 0)
			return k;
	}
}

/* Slot of child k, which must be present. Reads k and compares pointers only,
 * so a tree being freed can call it while earlier siblings are already gone. */
static inline uint32_t kids_slot(const struct kids *t, const struct kids_key *k)
{
	uint32_t i = kids_home(k->hv) & t->mask;
	while (t->slot[i] != k)
		i = (i + 1) & t->mask;
	return i;
}

/* First child in slot order at or after *slot, which is updated to its slot;
 * NULL past the end. Iterating this way needs no state beyond one index. */
static inline struct kids_key *kids_next(const struct kids *t, uint32_t *slot)
{
	if (t->slot)
		for (uint32_t i = *slot; i <= t->mask; i++)
			if (t->slot[i]) {
				*slot = i;
				return t->slot[i];
			}
	return NULL;
}

/* Add child k (its level must not be present yet); the table borrows k. */
void kids_insert(struct kids *t, struct kids_key *k);
/* Remove child k, which must be present; may shrink or free the table. */
void kids_remove(struct kids *t, struct kids_key *k);
/* Free the table itself (not the children). */
void kids_free(struct kids *t);

#endif
