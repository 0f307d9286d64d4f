/*
 * topic_kids.h - the literal-children hash table shared by the topic tries.
 *
 * Layer: broker, private to topic_tree.c and retain_tree.c (not part of the
 * topic.h API). Both tries keep each node's literal children in one of these:
 * open addressing, linear probing, backward-shift deletion (no tombstones),
 * load factor <= 3/4, capacity a power of two, halved when 1/8 full.
 *
 * Genericity: every node type starts with a struct kids_key (each tree pins
 * that with KIDS_KEY_FIRST), so a node pointer is a key pointer and the API
 * takes and returns nodes as void *, with no casts or offset arithmetic in the
 * tries. kids_find() also needs the level text and takes its offset in the
 * node; it is inline, so that offset is a constant, because lookups sit on the
 * PUBLISH fan-out path. Growing and shrinking live in topic_kids.c.
 *
 * Invariants: a table with no children owns no memory (slot == NULL, n == 0,
 * mask == 0); an empty slot always ends a probe run.
 */
#ifndef HQ_BROKER_TOPIC_KIDS_H
#define HQ_BROKER_TOPIC_KIDS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* First member of every trie node. */
struct kids_key {
	uint32_t hv;		/* kids_hash(level), cached so probes and rehashes skip the text */
	uint32_t len;		/* level length in bytes */
};

/* Node type T must start with its struct kids_key member K. */
#define KIDS_KEY_FIRST(T, K) \
	_Static_assert(offsetof(T, K) == 0, #T " must start with its struct kids_key")

struct kids {
	struct kids_key **slot;	/* open addressing (each entry a child node), or NULL */
	uint32_t n;		/* children held */
	uint32_t mask;		/* capacity - 1 (power of two); 0 while slot is NULL */
};

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

/* Child whose level is s[0..len), or NULL; hv = kids_hash(s, len), and the
 * children's level text sits text_off bytes into each node. */
static inline void *kids_find(const struct kids *t, const char *s, size_t len, uint32_t hv,
			      size_t text_off)
{
	if (!t->slot)
		return NULL;
	for (uint32_t i = kids_home(hv) & t->mask;; i = (i + 1) & t->mask) {
		struct kids_key *k = t->slot[i];
		if (!k)
			return NULL;
		if (k->hv == hv && k->len == len && memcmp((char *)k + text_off, s, len) == 0)
			return k;
	}
}

/* Slot of child node, which must be present. Reads only node's key and
 * compares pointers, so a tree being freed can call it while earlier siblings
 * are already gone. */
static inline uint32_t kids_slot(const struct kids *t, const void *node)
{
	const struct kids_key *k = node;
	uint32_t i = kids_home(k->hv) & t->mask;
	while (t->slot[i] != k)
		i = (i + 1) & t->mask;
	return i;
}

/* First child in slot order at or after *slot, which is set to its slot; NULL
 * past the end. With kids_slot() this walks siblings without any iterator. */
static inline void *kids_next(const struct kids *t, uint32_t *slot)
{
	if (t->slot)
		for (uint32_t i = *slot; i <= t->mask; i++)
			if (t->slot[i]) {
				*slot = i;
				return t->slot[i];
			}
	return NULL;
}

/* Add child node (no sibling may have its level); the table borrows node. */
void kids_insert(struct kids *t, void *node);
/* Remove child node, which must be present; may shrink or free the table. */
void kids_remove(struct kids *t, void *node);
/* Free the table itself (the children are the caller's). */
void kids_free(struct kids *t);

#endif
