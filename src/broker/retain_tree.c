/*
 * retain_tree.c - retained messages: a trie of topic levels -> opaque value.
 *
 * Layer: broker, pure container (see topic.h). One tree per node, guarded by
 * the caller's mutex; nothing here locks.
 *
 * Shape: like topic_tree.c, each node is one topic level with its literal
 * children in the open-addressing table of topic_kids.h. Topics hold no
 * wildcards, so there are no '+'/'#' children; the
 * wildcards are in the filter given to retain_tree_match(), which walks the
 * trie with them.
 *
 * Invariants:
 *   - A node holding a value also holds its full topic text (the match
 *     callback needs it, and rebuilding it would need a buffer, i.e. an
 *     allocation or an unbounded stack).
 *   - Every node but the root holds a value or a child: deletes prune.
 *   - The root never holds a value (every topic has at least one level).
 *   - Matching allocates nothing and uses O(1) stack: parent pointers give the
 *     way back up, and the filter position is recovered by scanning back to
 *     the previous '/'.
 */
#include "broker/topic.h"
#include "broker/topic_kids.h"
#include "core/mem.h"

#include <string.h>

struct retain_node {
	struct kids_key key;		/* hash and length of level */
	struct retain_node *parent;	/* NULL only for the root */
	struct kids kids;		/* children */
	void *value;			/* NULL = nothing retained at this topic */
	char *topic;			/* full topic text iff value != NULL */
	size_t topic_len;
	char level[];			/* level text, NUL-terminated */
};
KIDS_KEY_FIRST(struct retain_node, key);

struct retain_tree {
	struct retain_node *root;
	size_t count;			/* nodes with a value */
	size_t nodes;			/* trie nodes, root included */
};

/* ---- children ---- */

static struct retain_node *kid_find(const struct retain_node *n, const char *s, size_t len)
{
	if (!n->kids.slot)	/* leaves are common: skip hashing for them */
		return NULL;
	return kids_find(&n->kids, s, len, kids_hash(s, len), offsetof(struct retain_node, level));
}

/* First child at or after slot; with skip_dollar, children whose level starts
 * with '$' are passed over ([MQTT-4.7.2-1], for wildcards at the first level).
 * inline: a '+' match calls it once per child, and gcc no longer inlines it
 * unasked (+3% instructions for retained '+' matches without it). */
static inline struct retain_node *child_from(const struct retain_node *n, uint32_t slot,
				      bool skip_dollar)
{
	struct retain_node *c;

	while ((c = kids_next(&n->kids, &slot)) && skip_dollar && c->key.len && c->level[0] == '$')
		slot++;
	return c;
}

static struct retain_node *next_sibling(const struct retain_node *c, bool skip_dollar)
{
	return child_from(c->parent, kids_slot(&c->parent->kids, c) + 1, skip_dollar);
}

/* ---- nodes ---- */

static struct retain_node *node_new(struct retain_node *parent, const char *s, size_t len)
{
	struct retain_node *n = hq_calloc(1, sizeof(*n) + len + 1);
	n->parent = parent;
	n->key.hv = kids_hash(s, len);
	n->key.len = (uint32_t)len;
	memcpy(n->level, s, len);
	return n;
}

/* Node of topic. With nodes != NULL missing levels are created and counted
 * there; otherwise NULL is returned for a topic not in the trie. */
static struct retain_node *node_walk(struct retain_node *root, const char *topic, size_t len,
				     size_t *nodes)
{
	struct retain_node *n = root;
	size_t pos = 0;

	for (;;) {
		const char *sl = memchr(topic + pos, '/', len - pos);
		size_t e = sl ? (size_t)(sl - topic) : len;
		struct retain_node *c = kid_find(n, topic + pos, e - pos);
		if (!c) {
			if (!nodes)
				return NULL;
			c = node_new(n, topic + pos, e - pos);
			kids_insert(&n->kids, c);
			(*nodes)++;
		}
		n = c;
		if (e == len)
			return n;
		pos = e + 1;
	}
}

/* ---- public API ---- */

struct retain_tree *retain_tree_new(void)
{
	struct retain_tree *r = hq_calloc(1, sizeof(*r));
	r->root = node_new(NULL, "", 0);
	r->nodes = 1;
	return r;
}

void retain_tree_free(struct retain_tree *r, void (*release)(void *value))
{
	if (!r)
		return;
	/* post-order walk; a node's successor is found before it is freed */
	struct retain_node *n = r->root, *c;
	while ((c = child_from(n, 0, false)))
		n = c;
	while (n) {
		struct retain_node *next = NULL;
		if (n->parent) {
			next = next_sibling(n, false);
			if (next) {
				while ((c = child_from(next, 0, false)))
					next = c;
			} else {
				next = n->parent;
			}
		}
		if (n->value && release)
			release(n->value);
		hq_free(n->topic);
		kids_free(&n->kids);
		hq_free(n);
		n = next;
	}
	hq_free(r);
}

void retain_tree_set(struct retain_tree *r, const char *topic, size_t len, void *value,
		     void **old)
{
	struct retain_node *n;

	if (old)
		*old = NULL;
	if (!value) {
		n = node_walk(r->root, topic, len, NULL);
		if (!n || !n->value)
			return;
		if (old)
			*old = n->value;
		n->value = NULL;
		HQ_FREE(n->topic);
		r->count--;
		while (n->parent && !n->value && n->kids.n == 0) {	/* prune */
			struct retain_node *p = n->parent;
			kids_remove(&p->kids, n);
			hq_free(n);
			r->nodes--;
			n = p;
		}
		return;
	}
	n = node_walk(r->root, topic, len, &r->nodes);
	if (n->value) {
		if (old)
			*old = n->value;
	} else {
		n->topic = hq_strndup(topic, len);
		n->topic_len = len;
		r->count++;
	}
	n->value = value;
}

void *retain_tree_get(const struct retain_tree *r, const char *topic, size_t len)
{
	const struct retain_node *n = node_walk(r->root, topic, len, NULL);
	return n ? n->value : NULL;
}

size_t retain_tree_count(const struct retain_tree *r)
{
	return r->count;
}

size_t retain_tree_nodes(const struct retain_tree *r)
{
	return r->nodes;
}

/* Report every value in the subtree of h, h included; false if cb stopped. */
static bool match_subtree(const struct retain_node *root, const struct retain_node *h,
			  retain_match_cb cb, void *ctx)
{
	const struct retain_node *n = h, *c;

	for (;;) {
		if (n->value && !cb(ctx, n->topic, n->topic_len, n->value))
			return false;
		/* "#" at the first level skips $-topics; deeper they are ordinary */
		c = child_from(n, 0, n == root);
		if (c) {
			n = c;
			continue;
		}
		for (;;) {
			if (n == h)
				return true;
			c = next_sibling(n, n->parent == root);
			if (c)
				break;
			n = n->parent;
		}
		n = c;
	}
}

/* Start of the filter level that ends just before pos (pos = its end + 1). */
static size_t level_start(const char *f, size_t pos)
{
	size_t s = pos - 1;
	while (s > 0 && f[s - 1] != '/')
		s--;
	return s;
}

/*
 * Depth-first over the trie, each node's children selected by the filter
 * level at that depth: a literal picks one child, '+' all of them, '#' the
 * node itself and its whole subtree. State is (n, pos): pos is the start of
 * the filter level that selects n's children, or len + 1 once the filter is
 * used up (then n itself matches).
 */
void retain_tree_match(const struct retain_tree *r, const char *filter, size_t len,
		       retain_match_cb cb, void *ctx)
{
	const struct retain_node *root = r->root, *n = root;
	size_t pos = 0;

	for (;;) {
		const struct retain_node *next = NULL;
		size_t e = 0;

		if (pos > len) {
			if (n->value && !cb(ctx, n->topic, n->topic_len, n->value))
				return;
		} else {
			const char *sl = memchr(filter + pos, '/', len - pos);
			e = sl ? (size_t)(sl - filter) : len;
			if (e - pos == 1 && filter[pos] == '#') {
				if (!match_subtree(root, n, cb, ctx))
					return;
			} else if (e - pos == 1 && filter[pos] == '+') {
				next = child_from(n, 0, n == root);
			} else {
				next = kid_find(n, filter + pos, e - pos);
			}
		}
		if (next) {
			n = next;
			pos = e + 1;
			continue;
		}
		/* leave n: under '+' move on to its next sibling, else go up */
		for (;;) {
			if (n == root)
				return;
			size_t ps = level_start(filter, pos);
			if (pos - 1 - ps == 1 && filter[ps] == '+') {
				next = next_sibling(n, n->parent == root);
				if (next)
					break;
			}
			n = n->parent;
			pos = ps;
		}
		n = next;
	}
}
