/*
 * topic_tree.c - the subscription index: a trie of topic-filter levels.
 *
 * Layer: broker, pure container (see topic.h). One tree per worker thread; no
 * locking here. topic_tree_match() is the PUBLISH fan-out hot path.
 *
 * Shape: each node is one filter level. Literal children live in a small
 * open-addressing hash table (topic_kids.h, shared with retain_tree.c); the
 * '+' and '#' children hang off dedicated pointers, so a match
 * at a node costs one hash probe plus two pointer tests. A node holds the
 * non-shared subscriptions of the filter it ends, in one contiguous array, and
 * the shared groups of that filter ("$share/<g>/<filter>" is stored under
 * <filter> in group <g>).
 *
 * Invariants:
 *   - Every node but the root holds a subscription, a group or a child: empty
 *     nodes are pruned on remove, so the trie never outgrows its filters.
 *   - A '#' node never has children ('#' is the last level of a filter).
 *   - A group is never empty; its gfilter text is stored once, in the group.
 *   - A sub_set holds each owner at most once; with more than SUBSET_SCAN_MAX
 *     entries it also keeps an owner -> position index, so subscribe and
 *     unsubscribe stay O(1) on a filter with 100k subscribers.
 *   - Matching allocates nothing and uses O(1) stack: it walks the trie with
 *     parent pointers and recovers the topic position by scanning back to the
 *     previous '/', so a topic with thousands of levels is harmless.
 */
#include "broker/topic.h"
#include "broker/topic_kids.h"
#include "core/err.h"
#include "core/mem.h"

#include <assert.h>
#include <string.h>

#define SHARE_PREFIX_LEN (sizeof(TOPIC_SHARE_PREFIX) - 1)
/* Up to this many entries a linear scan of the array beats hashing the owner. */
#define SUBSET_SCAN_MAX 16
#define NONE UINT32_MAX

struct sub_set {
	struct topic_sub *v;	/* contiguous; order carries no meaning */
	uint32_t n, cap;
	uint32_t *idx;		/* owner -> position + 1 (0 = empty slot), or NULL */
	uint32_t imask;		/* index capacity - 1; capacity >= 2 * n */
};

struct topic_group {
	char *gfilter;		/* "$share/<name>/<filter>", owned */
	uint32_t gf_len;
	uint32_t name_len;	/* the name is gfilter + SHARE_PREFIX_LEN */
	uint32_t cursor;	/* round robin: the member to try first */
	struct sub_set members;	/* never empty */
};

struct topic_node {
	struct kids_key key;		/* hash (0 for wildcards) and length of level */
	struct topic_node *parent;	/* NULL only for the root */
	struct kids kids;		/* literal children */
	struct topic_node *plus;	/* the '+' child */
	struct topic_node *hash;	/* the '#' child (a leaf) */
	struct sub_set subs;		/* non-shared subscriptions to this exact filter */
	struct topic_group *groups;	/* shared groups of this filter, contiguous */
	uint32_t ngroups, gcap;
	char level[];			/* level text, NUL-terminated ("+" / "#" for wildcards) */
};
KIDS_KEY_FIRST(struct topic_node, key);

struct topic_tree {
	struct topic_node *root;
	size_t count;		/* subscriptions plus shared memberships */
	size_t nodes;		/* trie nodes, root included */
	uint32_t rng;		/* xorshift32 state for TOPIC_SHARED_RANDOM, never 0 */
};

/* Everything topic_tree_match() passes down, to keep helper signatures short. */
struct match_args {
	struct topic_tree *t;
	enum topic_shared_strategy strategy;
	uint32_t pub_hash;
	topic_match_cb cb;
	topic_shared_cb shared_cb;
	topic_eligible_cb eligible;
	void *ctx;
};

static uint32_t owner_home(const void *owner)
{
	return (uint32_t)(((uint64_t)(uintptr_t)owner * 0x9E3779B97F4A7C15ull) >> 32);
}

/* Literal child of n with level s[0..len) (hv = kids_hash(s, len)), or NULL. */
static struct topic_node *kid_find(const struct topic_node *n, const char *s, size_t len,
				   uint32_t hv)
{
	return kids_find(&n->kids, s, len, hv, offsetof(struct topic_node, level));
}

/* ---- sub_set: a contiguous array of subscriptions, unique by owner ---- */

static uint32_t subset_find(const struct sub_set *s, const void *owner)
{
	if (!s->idx) {
		for (uint32_t i = 0; i < s->n; i++)
			if (s->v[i].owner == owner)
				return i;
		return NONE;
	}
	for (uint32_t i = owner_home(owner) & s->imask;; i = (i + 1) & s->imask) {
		uint32_t p = s->idx[i];
		if (!p)
			return NONE;
		if (s->v[p - 1].owner == owner)
			return p - 1;
	}
}

/* Index slot holding owner (which must be present). */
static uint32_t subset_islot(const struct sub_set *s, const void *owner)
{
	uint32_t i = owner_home(owner) & s->imask;
	while (s->v[s->idx[i] - 1].owner != owner)
		i = (i + 1) & s->imask;
	return i;
}

static void subset_iplace(struct sub_set *s, uint32_t pos)
{
	uint32_t i = owner_home(s->v[pos].owner) & s->imask;
	while (s->idx[i])
		i = (i + 1) & s->imask;
	s->idx[i] = pos + 1;
}

static void subset_reindex(struct sub_set *s, uint32_t cap)
{
	hq_free(s->idx);
	s->idx = hq_calloc(cap, sizeof(*s->idx));
	s->imask = cap - 1;
	for (uint32_t i = 0; i < s->n; i++)
		subset_iplace(s, i);
}

static void subset_free(struct sub_set *s)
{
	hq_free(s->v);
	hq_free(s->idx);
	memset(s, 0, sizeof(*s));
}

/* Append sub; its owner must not be in s yet. */
static void subset_add(struct sub_set *s, const struct topic_sub *sub)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 2;
		s->v = hq_realloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = *sub;
	if (s->idx) {
		if (s->n * 2 > s->imask + 1)
			subset_reindex(s, (s->imask + 1) * 2);
		else
			subset_iplace(s, s->n - 1);
	} else if (s->n > SUBSET_SCAN_MAX) {
		subset_reindex(s, 4 * SUBSET_SCAN_MAX);
	}
}

/* Delete index slot i by backward shift (see kids_remove). */
static void subset_idelete(struct sub_set *s, uint32_t i)
{
	uint32_t mask = s->imask, j = i;

	s->idx[i] = 0;
	for (;;) {
		j = (j + 1) & mask;
		uint32_t p = s->idx[j];
		if (!p)
			break;
		uint32_t k = owner_home(s->v[p - 1].owner) & mask;
		if (j > i ? (k <= i || k > j) : (k <= i && k > j)) {
			s->idx[i] = p;
			s->idx[j] = 0;
			i = j;
		}
	}
}

/* Remove entry pos; the last entry moves into its place. */
static void subset_del(struct sub_set *s, uint32_t pos)
{
	uint32_t last = s->n - 1;

	if (s->idx) {
		subset_idelete(s, subset_islot(s, s->v[pos].owner));
		if (pos != last)
			s->idx[subset_islot(s, s->v[last].owner)] = pos + 1;
	}
	s->v[pos] = s->v[last];
	s->n--;
	if (s->n == 0) {
		subset_free(s);
	} else if (s->idx && s->n < SUBSET_SCAN_MAX / 2) {
		/* hysteresis: drop the index well below the threshold that built it */
		HQ_FREE(s->idx);
		s->imask = 0;
	}
}

/* ---- nodes and groups ---- */

static struct topic_node *node_new(struct topic_node *parent, const char *s, size_t len,
				   uint32_t hv)
{
	struct topic_node *n = hq_calloc(1, sizeof(*n) + len + 1);
	n->parent = parent;
	n->key.hv = hv;
	n->key.len = (uint32_t)len;
	memcpy(n->level, s, len);
	return n;
}

static void node_free(struct topic_node *n)
{
	for (uint32_t i = 0; i < n->ngroups; i++) {
		hq_free(n->groups[i].gfilter);
		subset_free(&n->groups[i].members);
	}
	hq_free(n->groups);
	subset_free(&n->subs);
	kids_free(&n->kids);
	hq_free(n);
}

static bool node_empty(const struct topic_node *n)
{
	return n->subs.n == 0 && n->ngroups == 0 && n->kids.n == 0 && !n->plus && !n->hash;
}

static bool is_wild(const char *s, size_t len, char w)
{
	return len == 1 && s[0] == w;
}

/* Node of the plain filter f (levels already validated), created if asked. */
static struct topic_node *node_walk(struct topic_tree *t, const char *f, size_t len, bool create)
{
	struct topic_node *n = t->root;
	size_t pos = 0;

	for (;;) {
		const char *sl = memchr(f + pos, '/', len - pos);
		size_t e = sl ? (size_t)(sl - f) : len;
		const char *s = f + pos;
		size_t l = e - pos;
		struct topic_node *c;

		if (is_wild(s, l, '+')) {
			c = n->plus;
			if (!c && create) {
				c = n->plus = node_new(n, s, l, 0);
				t->nodes++;
			}
		} else if (is_wild(s, l, '#')) {
			c = n->hash;
			if (!c && create) {
				c = n->hash = node_new(n, s, l, 0);
				t->nodes++;
			}
		} else {
			uint32_t hv = kids_hash(s, l);
			c = kid_find(n, s, l, hv);
			if (!c && create) {
				c = node_new(n, s, l, hv);
				kids_insert(&n->kids, c);
				t->nodes++;
			}
		}
		if (!c)
			return NULL;
		n = c;
		if (e == len)
			return n;
		pos = e + 1;
	}
}

/* Free empty nodes from n upwards (never the root). */
static void node_prune(struct topic_tree *t, struct topic_node *n)
{
	while (n->parent && node_empty(n)) {
		struct topic_node *p = n->parent;
		if (p->plus == n)
			p->plus = NULL;
		else if (p->hash == n)
			p->hash = NULL;
		else
			kids_remove(&p->kids, n);
		node_free(n);
		t->nodes--;
		n = p;
	}
}

static struct topic_group *group_find(struct topic_node *n, const char *name, size_t len)
{
	for (uint32_t i = 0; i < n->ngroups; i++) {
		struct topic_group *g = &n->groups[i];
		if (g->name_len == len && memcmp(g->gfilter + SHARE_PREFIX_LEN, name, len) == 0)
			return g;
	}
	return NULL;
}

static struct topic_group *group_add(struct topic_node *n, const char *gfilter, size_t gf_len,
				     size_t name_len)
{
	if (n->ngroups == n->gcap) {
		n->gcap = n->gcap ? n->gcap * 2 : 1;
		n->groups = hq_realloc(n->groups, n->gcap * sizeof(*n->groups));
	}
	struct topic_group *g = &n->groups[n->ngroups++];
	memset(g, 0, sizeof(*g));
	g->gfilter = hq_strndup(gfilter, gf_len);
	g->gf_len = (uint32_t)gf_len;
	g->name_len = (uint32_t)name_len;
	return g;
}

static void group_del(struct topic_node *n, struct topic_group *g)
{
	hq_free(g->gfilter);
	subset_free(&g->members);
	*g = n->groups[--n->ngroups];
	if (n->ngroups == 0) {
		HQ_FREE(n->groups);
		n->gcap = 0;
	}
}

/* ---- traversal helpers (visit, free): parent pointers instead of a stack ---- */

static struct topic_node *first_child_from(const struct topic_node *n, uint32_t slot)
{
	struct topic_node *c = kids_next(&n->kids, &slot);
	if (c)
		return c;
	return n->plus ? n->plus : n->hash;
}

static struct topic_node *first_child(const struct topic_node *n)
{
	return first_child_from(n, 0);
}

/* Children come in order: literal table slots, then '+', then '#'. */
static struct topic_node *next_sibling(const struct topic_node *c)
{
	const struct topic_node *p = c->parent;
	if (c == p->hash)
		return NULL;
	if (c == p->plus)
		return p->hash;
	return first_child_from(p, kids_slot(&p->kids, c) + 1);
}

/* ---- public API ---- */

struct topic_tree *topic_tree_new(void)
{
	struct topic_tree *t = hq_calloc(1, sizeof(*t));
	t->root = node_new(NULL, "", 0, 0);
	t->nodes = 1;
	/* per-tree seed so worker replicas do not pick in lockstep */
	t->rng = owner_home(t) | 1u;
	return t;
}

void topic_tree_free(struct topic_tree *t)
{
	if (!t)
		return;
	/* post-order walk; a node's next position is computed before it is freed */
	struct topic_node *n = t->root, *c;
	while ((c = first_child(n)))
		n = c;
	while (n != t->root) {
		struct topic_node *next = next_sibling(n);
		if (next) {
			while ((c = first_child(next)))
				next = c;
		} else {
			next = n->parent;
		}
		node_free(n);
		n = next;
	}
	node_free(t->root);
	hq_free(t);
}

int topic_tree_add(struct topic_tree *t, const char *filter, size_t len, void *owner,
		   uint8_t options, uint32_t sub_id, bool *replaced)
{
	const char *g = NULL, *f = filter;
	size_t glen = 0, flen = len;
	struct topic_sub sub = { .owner = owner, .sub_id = sub_id, .options = options };
	struct sub_set *set;

	if (replaced)
		*replaced = false;
	if (!topic_filter_valid(filter, len, 0))
		return HQ_EINVAL;
	bool shared = topic_filter_shared(filter, len, &g, &glen, &f, &flen);
	struct topic_node *n = node_walk(t, f, flen, true);
	if (shared) {
		struct topic_group *grp = group_find(n, g, glen);
		if (!grp)
			grp = group_add(n, filter, len, glen);
		set = &grp->members;
	} else {
		set = &n->subs;
	}
	uint32_t i = subset_find(set, owner);
	if (i != NONE) {
		set->v[i] = sub;
		if (replaced)
			*replaced = true;
		return HQ_OK;
	}
	subset_add(set, &sub);
	t->count++;
	return HQ_OK;
}

int topic_tree_remove(struct topic_tree *t, const char *filter, size_t len, void *owner)
{
	const char *g = NULL, *f = filter;
	size_t glen = 0, flen = len;

	if (!topic_filter_valid(filter, len, 0))
		return HQ_ENOTFOUND;	/* could never have been added */
	bool shared = topic_filter_shared(filter, len, &g, &glen, &f, &flen);
	struct topic_node *n = node_walk(t, f, flen, false);
	if (!n)
		return HQ_ENOTFOUND;
	if (shared) {
		struct topic_group *grp = group_find(n, g, glen);
		uint32_t i = grp ? subset_find(&grp->members, owner) : NONE;
		if (i == NONE)
			return HQ_ENOTFOUND;
		subset_del(&grp->members, i);
		if (grp->members.n == 0)
			group_del(n, grp);
	} else {
		uint32_t i = subset_find(&n->subs, owner);
		if (i == NONE)
			return HQ_ENOTFOUND;
		subset_del(&n->subs, i);
	}
	t->count--;
	node_prune(t, n);
	return HQ_OK;
}

size_t topic_tree_count(const struct topic_tree *t)
{
	return t->count;
}

size_t topic_tree_nodes(const struct topic_tree *t)
{
	return t->nodes;
}

static uint32_t rng_next(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/*
 * Choose the member of g that gets this message: the strategy names a start
 * position, then members are probed in order for eligibility. When nobody is
 * eligible the start position wins anyway, so the message is queued for that
 * (offline or full) member rather than dropped.
 */
static const struct topic_sub *group_pick(struct topic_group *g, const struct match_args *a)
{
	uint32_t n = g->members.n, start, pick;

	assert(n > 0);
	switch (a->strategy) {
	case TOPIC_SHARED_RANDOM:
		start = (uint32_t)(((uint64_t)rng_next(&a->t->rng) * n) >> 32);
		break;
	case TOPIC_SHARED_HASH:
		start = a->pub_hash % n;
		break;
	case TOPIC_SHARED_ROUND_ROBIN:
	default:
		start = g->cursor % n;	/* the group may have shrunk since */
		break;
	}
	pick = start;
	if (a->eligible) {
		uint32_t k = start;
		for (uint32_t i = 0; i < n; i++) {
			if (a->eligible(a->ctx, &g->members.v[k])) {
				pick = k;
				break;
			}
			if (++k == n)
				k = 0;
		}
	}
	if (a->strategy != TOPIC_SHARED_RANDOM && a->strategy != TOPIC_SHARED_HASH)
		g->cursor = pick + 1 == n ? 0 : pick + 1;
	return &g->members.v[pick];
}

/* Hand every subscription of n (whose filter matched) to the callbacks. */
static void deliver(struct topic_node *n, const struct match_args *a)
{
	if (a->cb)
		for (uint32_t i = 0; i < n->subs.n; i++)
			a->cb(a->ctx, &n->subs.v[i]);
	if (a->shared_cb)
		for (uint32_t i = 0; i < n->ngroups; i++) {
			struct topic_group *g = &n->groups[i];
			a->shared_cb(a->ctx, group_pick(g, a), g->gfilter, g->gf_len);
		}
}

/* Start of the topic level that ends just before pos (pos = its end + 1). */
static size_t level_start(const char *topic, size_t pos)
{
	size_t s = pos - 1;
	while (s > 0 && topic[s - 1] != '/')
		s--;
	return s;
}

/*
 * Depth-first over the trie nodes whose filter prefix matches a topic prefix.
 * State is just (n, pos): pos is the start of the topic level n's children
 * must match, or len + 1 once the topic is used up. Each node is entered at
 * most once, so each matching filter is delivered once. Callbacks must not
 * modify the tree. Not const: round-robin cursors and the random state move,
 * which is why each worker thread has its own replica.
 */
void topic_tree_match(struct topic_tree *t, const char *topic, size_t len,
		      enum topic_shared_strategy strategy, uint32_t pub_hash,
		      topic_match_cb cb, topic_shared_cb shared_cb,
		      topic_eligible_cb eligible, void *ctx)
{
	const struct match_args a = { t, strategy, pub_hash, cb, shared_cb, eligible, ctx };
	struct topic_node *root = t->root, *n = root;
	/* [MQTT-4.7.2-1] a leading wildcard must not match "$SYS/..." etc. */
	bool dollar = len > 0 && topic[0] == '$';
	size_t pos = 0;

	for (;;) {
		/* enter n */
		bool wild = n != root || !dollar;
		struct topic_node *next = NULL;
		size_t npos = 0;

		if (n->hash && wild)	/* "a/#" matches "a" and everything below */
			deliver(n->hash, &a);
		if (pos > len) {
			deliver(n, &a);
		} else {
			const char *sl = memchr(topic + pos, '/', len - pos);
			size_t e = sl ? (size_t)(sl - topic) : len;
			npos = e + 1;
			if (n->kids.slot)	/* leaves are common: skip hashing for them */
				next = kid_find(n, topic + pos, e - pos,
						kids_hash(topic + pos, e - pos));
			if (!next && wild)
				next = n->plus;
		}
		if (next) {
			n = next;
			pos = npos;
			continue;
		}
		/* leave n: a literal child is followed by its '+' sibling, which
		 * consumes the same topic level; otherwise go up one level */
		for (;;) {
			if (n == root)
				return;
			struct topic_node *p = n->parent;
			if (n != p->plus && p->plus && (p != root || !dollar)) {
				n = p->plus;
				break;
			}
			pos = level_start(topic, pos);
			n = p;
		}
	}
}

/* Filter text of node n into *buf (grown as needed); returns its length. */
static size_t node_filter(const struct topic_node *n, char **buf, size_t *cap)
{
	size_t len = 0;
	for (const struct topic_node *p = n; p->parent; p = p->parent)
		len += p->key.len + (p->parent->parent ? 1 : 0);
	if (!*buf || len + 1 > *cap) {
		*cap = len + 1;
		*buf = hq_realloc(*buf, *cap);
	}
	size_t end = len;
	(*buf)[end] = '\0';
	for (const struct topic_node *p = n; p->parent; p = p->parent) {
		end -= p->key.len;
		memcpy(*buf + end, p->level, p->key.len);
		if (p->parent->parent)
			(*buf)[--end] = '/';
	}
	return len;
}

void topic_tree_visit(const struct topic_tree *t, topic_visit_cb cb, void *ctx)
{
	char *buf = NULL;
	size_t cap = 0;
	const struct topic_node *n = t->root;

	/* pre-order walk with parent pointers */
	while (n) {
		if (n->subs.n) {
			size_t len = node_filter(n, &buf, &cap);
			for (uint32_t i = 0; i < n->subs.n; i++)
				cb(ctx, buf, len, &n->subs.v[i]);
		}
		for (uint32_t i = 0; i < n->ngroups; i++) {
			const struct topic_group *g = &n->groups[i];
			for (uint32_t j = 0; j < g->members.n; j++)
				cb(ctx, g->gfilter, g->gf_len, &g->members.v[j]);
		}
		const struct topic_node *c = first_child(n);
		if (c) {
			n = c;
			continue;
		}
		while (n != t->root && !(c = next_sibling(n)))
			n = n->parent;
		n = n == t->root ? NULL : c;
	}
	hq_free(buf);
}
