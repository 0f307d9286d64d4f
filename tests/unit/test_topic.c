/*
 * test_topic.c - unit tests for src/broker/topic_*.c and retain_tree.c.
 *
 * Validation and matching are checked against the MQTT v5 spec (section 4.7,
 * 4.8.2) with normative IDs in the case names; the trees are checked against
 * topic_matches() by a randomized comparison. Owners and values are small
 * integers cast to pointers: the trees never dereference them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker/topic.h"
#include "core/err.h"

#define S(s) (s), strlen(s)
#define OWN(k) ((void *)(uintptr_t)(k))
#define KEY(p) ((uintptr_t)(p))

/* ---- validation ---- */

static void test_name_valid(void **state)
{
	(void)state;
	assert_true(topic_name_valid(S("sport/tennis/player1"), 0));
	assert_true(topic_name_valid(S("/"), 0));
	assert_true(topic_name_valid(S("a//b"), 0));
	assert_true(topic_name_valid(S("$SYS/broker/load"), 0));
	assert_true(topic_name_valid(S("Accounts payable"), 0));	/* spaces are legal */
	assert_false(topic_name_valid(S(""), 0));			/* [MQTT-4.7.3-1] */
	assert_false(topic_name_valid(S("sport/+"), 0));		/* [MQTT-3.3.2-2] */
	assert_false(topic_name_valid(S("sport/#"), 0));
	assert_false(topic_name_valid(S("a+b"), 0));
	assert_false(topic_name_valid(S("#"), 0));
	assert_false(topic_name_valid("a\0b", 3, 0));			/* [MQTT-4.7.3-2] */
	/* level limit: "/" has two (empty) levels */
	assert_true(topic_name_valid(S("a/b/c"), 3));
	assert_false(topic_name_valid(S("a/b/c"), 2));
	assert_true(topic_name_valid(S("/"), 2));
	assert_false(topic_name_valid(S("/"), 1));
	/* length is honoured, not NUL termination */
	assert_true(topic_name_valid("a/b+", 3, 0));
}

static void test_filter_valid(void **state)
{
	(void)state;
	static const char *const good[] = {
		"sport/tennis/player1/#", "sport/#", "#", "+", "+/tennis/#", "sport/+/player1",
		"+/+", "/+", "/finance", "a//b", "/", "$SYS/#", "$SYS/monitor/+", "+/#",
		"$share", "$shared/x", "sport/tennis/+",
		"$share/g/a/b", "$share/g/#", "$share/g/+", "$share/consumer1/sport/tennis/+",
		"$share/g//", "$share/g/$share/x",
	};
	static const char *const bad[] = {
		"",			/* [MQTT-4.7.3-1] */
		"sport/tennis#",	/* [MQTT-4.7.1-1] '#' not a whole level */
		"sport/tennis/#/ranking",	/* [MQTT-4.7.1-1] '#' not last */
		"#/", "a/#/", "##",
		"sport+",		/* [MQTT-4.7.1-2] '+' not a whole level */
		"+a", "a/+b", "a/b+/c", "++",
		"$share/",		/* [MQTT-4.8.2-1] empty share name */
		"$share//a",
		"$share/g",		/* [MQTT-4.8.2-2] no "/" after the share name */
		"$share/g/",		/* [MQTT-4.8.2-2] no filter after it */
		"$share/g+/a", "$share/#/a", "$share/+/a",	/* [MQTT-4.8.2-2] */
		"$share/g/a#", "$share/g/#/a",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!topic_filter_valid(S(good[i]), 0))
			fail_msg("should be valid: \"%s\"", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (topic_filter_valid(S(bad[i]), 0))
			fail_msg("should be invalid: \"%s\"", bad[i]);
	assert_false(topic_filter_valid("a/\0", 3, 0));	/* [MQTT-4.7.3-2] */
	assert_false(topic_filter_valid("$share/g\0/a", 11, 0));
	/* level limit counts the levels of the inner filter of a share */
	assert_true(topic_filter_valid(S("a/+/#"), 3));
	assert_false(topic_filter_valid(S("a/+/#"), 2));
	assert_true(topic_filter_valid(S("$share/g/a/b"), 2));
	assert_false(topic_filter_valid(S("$share/g/a/b/c"), 2));
	/* length is honoured */
	assert_true(topic_filter_valid("a/#/b", 3, 0));
}

static void test_filter_shared(void **state)
{
	const char *g, *f;
	size_t gl, fl;

	(void)state;
	assert_true(topic_filter_shared(S("$share/grp/sport/+/x"), &g, &gl, &f, &fl));
	assert_int_equal(gl, 3);
	assert_memory_equal(g, "grp", 3);
	assert_int_equal(fl, 9);
	assert_memory_equal(f, "sport/+/x", 9);
	assert_true(topic_filter_shared(S("$share/g/#"), &g, &gl, &f, &fl));
	assert_int_equal(fl, 1);
	assert_false(topic_filter_shared(S("sport/#"), &g, &gl, &f, &fl));
	assert_false(topic_filter_shared(S("$share"), &g, &gl, &f, &fl));
	assert_false(topic_filter_shared(S("$share/g"), &g, &gl, &f, &fl));
	assert_false(topic_filter_shared(S("$shared/g/x"), &g, &gl, &f, &fl));
}

/* ---- matching: the spec examples, shared by the reference and tree tests ---- */

struct mcase {
	const char *filter, *topic;
	bool match;
};

static const struct mcase spec_cases[] = {
	/* 4.7.1.2 multi-level wildcard */
	{ "sport/tennis/player1/#", "sport/tennis/player1", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true },
	{ "sport/tennis/player1/#", "sport/tennis/player2", false },
	{ "sport/tennis/player1/#", "sport/tennis", false },
	{ "sport/#", "sport", true },	/* [MQTT-4.7.1-2] '#' includes the parent */
	{ "sport/#", "sport/", true },
	{ "sport/#", "sports", false },
	{ "#", "sport/tennis/player1", true },
	{ "#", "/", true },
	{ "#", "x", true },
	/* 4.7.1.3 single-level wildcard */
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/tennis/+", "sport/tennis/player2", true },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", false },
	{ "sport/+", "sport", false },
	{ "sport/+", "sport/", true },
	{ "+", "sport", true },
	{ "+/+", "/finance", true },	/* '+' matches an empty level */
	{ "/+", "/finance", true },
	{ "+", "/finance", false },
	{ "+/tennis/#", "sport/tennis/player1/ranking", true },
	{ "+/tennis/#", "sport/tennis", true },
	{ "+/tennis/#", "sport/golf", false },
	{ "sport/+/player1", "sport/tennis/player1", true },
	{ "sport/+/player1", "sport/tennis/player2", false },
	{ "+/+/+", "a/b/c", true },
	{ "+/+/+", "a/b", false },
	{ "+/#", "a", true },
	{ "a//b", "a//b", true },
	{ "a/+/b", "a//b", true },
	{ "a/b", "a/b/", false },
	{ "a/b/", "a/b", false },
	/* 4.7.2 topics beginning with $ [MQTT-4.7.2-1] */
	{ "#", "$SYS/monitor/Clients", false },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", false },
	{ "+", "$SYS", false },
	{ "+/#", "$SYS/x", false },
	{ "$SYS/#", "$SYS/monitor/Clients", true },
	{ "$SYS/#", "$SYS", true },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", true },
	{ "a/+", "a/$x", true },	/* only the first level is special */
	{ "a/#", "a/$x/y", true },
	{ "#", "a$", true },
	/* 4.7.3 case sensitive, exact bytes */
	{ "ACCOUNTS", "Accounts", false },
	{ "Accounts payable", "Accounts payable", true },
	{ "sport/tennis", "sport/tennis", true },
	{ "sport/tennis", "sport/tennis2", false },
	{ "sport/tennis2", "sport/tennis", false },
};
#define NCASES (sizeof(spec_cases) / sizeof(spec_cases[0]))

static void test_matches_spec(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCASES; i++) {
		const struct mcase *c = &spec_cases[i];
		if (topic_matches(S(c->filter), S(c->topic)) != c->match)
			fail_msg("topic_matches(\"%s\", \"%s\") != %d", c->filter, c->topic, c->match);
	}
	/* a shared filter matches what its inner filter matches */
	assert_true(topic_matches(S("$share/g/sport/#"), S("sport/x")));
	assert_false(topic_matches(S("$share/g/#"), S("$SYS/x")));
	assert_true(topic_matches(S("$share/g/$SYS/#"), S("$SYS/x")));
}

/* ---- a collector for topic_tree_match ---- */

#define MAXHITS 4096

struct hits {
	uintptr_t owner[MAXHITS];
	uint32_t sub_id[MAXHITS];
	uint8_t options[MAXHITS];
	size_t n;
	uintptr_t sowner[MAXHITS];
	char sfilter[MAXHITS][48];
	size_t ns;
	uintptr_t ineligible[64];	/* owners eligible() refuses */
	size_t nin;
	size_t elig_calls;
};

static void on_match(void *ctx, const struct topic_sub *sub)
{
	struct hits *h = ctx;
	assert_true(h->n < MAXHITS);
	h->owner[h->n] = KEY(sub->owner);
	h->sub_id[h->n] = sub->sub_id;
	h->options[h->n] = sub->options;
	h->n++;
}

static void on_shared(void *ctx, const struct topic_sub *sub, const char *gf, size_t gf_len)
{
	struct hits *h = ctx;
	assert_true(h->ns < MAXHITS);
	assert_true(gf_len < sizeof(h->sfilter[0]));
	h->sowner[h->ns] = KEY(sub->owner);
	memcpy(h->sfilter[h->ns], gf, gf_len);
	h->sfilter[h->ns][gf_len] = '\0';
	h->ns++;
}

static bool on_eligible(void *ctx, const struct topic_sub *sub)
{
	struct hits *h = ctx;
	h->elig_calls++;
	for (size_t i = 0; i < h->nin; i++)
		if (h->ineligible[i] == KEY(sub->owner))
			return false;
	return true;
}

static int cmp_uptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* for arrays of char[48] */
static int cmp_str48(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void match(struct topic_tree *t, struct hits *h, const char *topic,
		  enum topic_shared_strategy strat, uint32_t pub_hash)
{
	h->n = h->ns = 0;
	h->elig_calls = 0;
	topic_tree_match(t, S(topic), strat, pub_hash, on_match, on_shared,
			 h->nin ? on_eligible : NULL, h);
}

/* Match topic; assert the sorted non-shared owners equal want[0..nwant). */
static void expect_owners(struct topic_tree *t, const char *topic, const uintptr_t *want,
			  size_t nwant)
{
	static struct hits hs;	/* large: keep it off the stack */
	struct hits *h = &hs;
	match(t, h, topic, TOPIC_SHARED_ROUND_ROBIN, 0);
	qsort(h->owner, h->n, sizeof(h->owner[0]), cmp_uptr);
	if (h->n != nwant)
		fail_msg("\"%s\": %zu hits, want %zu", topic, h->n, nwant);
	for (size_t i = 0; i < nwant; i++)
		assert_int_equal(h->owner[i], want[i]);
}

/* ---- subscription tree ---- */

static void test_tree_spec(void **state)
{
	(void)state;
	/* every spec filter subscribed by its own owner; each topic must reach
	 * exactly the owners whose case says "match" */
	struct topic_tree *t = topic_tree_new();
	const char *filters[NCASES];
	size_t nf = 0;
	for (size_t i = 0; i < NCASES; i++) {
		size_t j;
		for (j = 0; j < nf; j++)
			if (strcmp(filters[j], spec_cases[i].filter) == 0)
				break;
		if (j == nf) {
			filters[nf] = spec_cases[i].filter;
			assert_int_equal(topic_tree_add(t, S(filters[nf]), OWN(nf + 1), 0, 0, NULL),
					 HQ_OK);
			nf++;
		}
	}
	assert_int_equal(topic_tree_count(t), nf);
	for (size_t i = 0; i < NCASES; i++) {
		uintptr_t want[NCASES];
		size_t nw = 0;
		for (size_t j = 0; j < nf; j++)
			if (topic_matches(S(filters[j]), S(spec_cases[i].topic)))
				want[nw++] = j + 1;
		expect_owners(t, spec_cases[i].topic, want, nw);
	}
	topic_tree_free(t);
}

static void test_tree_add_remove(void **state)
{
	bool rep;
	struct hits *h = calloc(1, sizeof(*h));

	(void)state;
	struct topic_tree *t = topic_tree_new();
	assert_int_equal(topic_tree_nodes(t), 1);
	assert_int_equal(topic_tree_add(t, S("a/+/c"), OWN(1), 1, 7, &rep), HQ_OK);
	assert_false(rep);
	assert_int_equal(topic_tree_nodes(t), 4);
	assert_int_equal(topic_tree_add(t, S("a/b/#"), OWN(2), 0, 0, &rep), HQ_OK);
	assert_int_equal(topic_tree_nodes(t), 6);
	/* replace: options and sub_id updated, count unchanged */
	assert_int_equal(topic_tree_add(t, S("a/+/c"), OWN(1), 2, 9, &rep), HQ_OK);
	assert_true(rep);
	assert_int_equal(topic_tree_count(t), 2);
	match(t, h, "a/b/c", TOPIC_SHARED_ROUND_ROBIN, 0);
	assert_int_equal(h->n, 2);
	for (size_t i = 0; i < h->n; i++)
		if (h->owner[i] == 1) {
			assert_int_equal(h->options[i], 2);
			assert_int_equal(h->sub_id[i], 9);
		}
	/* invalid filters */
	assert_int_equal(topic_tree_add(t, S("a/#/b"), OWN(1), 0, 0, &rep), HQ_EINVAL);
	assert_int_equal(topic_tree_add(t, S(""), OWN(1), 0, 0, NULL), HQ_EINVAL);
	assert_int_equal(topic_tree_add(t, S("$share//a"), OWN(1), 0, 0, NULL), HQ_EINVAL);
	assert_int_equal(topic_tree_count(t), 2);
	/* remove: unknown filter, unknown owner, prefix of a stored filter */
	assert_int_equal(topic_tree_remove(t, S("a/x/c"), OWN(1)), HQ_ENOTFOUND);
	assert_int_equal(topic_tree_remove(t, S("a/+/c"), OWN(3)), HQ_ENOTFOUND);
	assert_int_equal(topic_tree_remove(t, S("a/+"), OWN(1)), HQ_ENOTFOUND);
	assert_int_equal(topic_tree_remove(t, S("a/#/"), OWN(1)), HQ_ENOTFOUND);
	assert_int_equal(topic_tree_remove(t, S("$share/g/a/+/c"), OWN(1)), HQ_ENOTFOUND);
	/* removing prunes exactly the now-empty branch */
	assert_int_equal(topic_tree_remove(t, S("a/+/c"), OWN(1)), HQ_OK);
	assert_int_equal(topic_tree_nodes(t), 4);
	assert_int_equal(topic_tree_remove(t, S("a/+/c"), OWN(1)), HQ_ENOTFOUND);
	match(t, h, "a/b/c", TOPIC_SHARED_ROUND_ROBIN, 0);
	assert_int_equal(h->n, 1);
	assert_int_equal(h->owner[0], 2);
	assert_int_equal(topic_tree_remove(t, S("a/b/#"), OWN(2)), HQ_OK);
	assert_int_equal(topic_tree_nodes(t), 1);
	assert_int_equal(topic_tree_count(t), 0);
	match(t, h, "a/b/c", TOPIC_SHARED_ROUND_ROBIN, 0);
	assert_int_equal(h->n, 0);
	/* an inner node with subscriptions of its own survives pruning below it */
	topic_tree_add(t, S("x"), OWN(1), 0, 0, NULL);
	topic_tree_add(t, S("x/y/z"), OWN(1), 0, 0, NULL);
	assert_int_equal(topic_tree_nodes(t), 4);
	topic_tree_remove(t, S("x/y/z"), OWN(1));
	assert_int_equal(topic_tree_nodes(t), 2);
	topic_tree_free(t);
	free(h);
}

static void test_tree_dollar(void **state)
{
	(void)state;
	struct topic_tree *t = topic_tree_new();
	topic_tree_add(t, S("#"), OWN(1), 0, 0, NULL);
	topic_tree_add(t, S("+/monitor/Clients"), OWN(2), 0, 0, NULL);
	topic_tree_add(t, S("$SYS/#"), OWN(3), 0, 0, NULL);
	topic_tree_add(t, S("$SYS/monitor/+"), OWN(4), 0, 0, NULL);
	topic_tree_add(t, S("$share/g/#"), OWN(5), 0, 0, NULL);
	topic_tree_add(t, S("+/+/+"), OWN(6), 0, 0, NULL);
	/* [MQTT-4.7.2-1] */
	expect_owners(t, "$SYS/monitor/Clients", (const uintptr_t[]){ 3, 4 }, 2);
	expect_owners(t, "$SYS", (const uintptr_t[]){ 3 }, 1);
	expect_owners(t, "SYS/monitor/Clients", (const uintptr_t[]){ 1, 2, 6 }, 3);
	struct hits *h = calloc(1, sizeof(*h));
	match(t, h, "$SYS/x", TOPIC_SHARED_ROUND_ROBIN, 0);
	assert_int_equal(h->ns, 0);
	match(t, h, "x/$SYS", TOPIC_SHARED_ROUND_ROBIN, 0);
	assert_int_equal(h->ns, 1);
	free(h);
	topic_tree_free(t);
}

static void test_tree_wild_edges(void **state)
{
	(void)state;
	struct topic_tree *t = topic_tree_new();
	topic_tree_add(t, S("sport/#"), OWN(1), 0, 0, NULL);
	topic_tree_add(t, S("+/+"), OWN(2), 0, 0, NULL);
	topic_tree_add(t, S("/+"), OWN(3), 0, 0, NULL);
	topic_tree_add(t, S("+"), OWN(4), 0, 0, NULL);
	topic_tree_add(t, S("sport"), OWN(5), 0, 0, NULL);
	topic_tree_add(t, S("sport/+"), OWN(6), 0, 0, NULL);
	topic_tree_add(t, S("#"), OWN(7), 0, 0, NULL);
	expect_owners(t, "sport", (const uintptr_t[]){ 1, 4, 5, 7 }, 4);	/* [MQTT-4.7.1-2] */
	expect_owners(t, "/finance", (const uintptr_t[]){ 2, 3, 7 }, 3);
	expect_owners(t, "sport/", (const uintptr_t[]){ 1, 2, 6, 7 }, 4);
	expect_owners(t, "/", (const uintptr_t[]){ 2, 3, 7 }, 3);
	expect_owners(t, "a/b/c", (const uintptr_t[]){ 7 }, 1);
	topic_tree_free(t);
}

/* The same owner holds distinct subscriptions: plain, and in two groups. */
static void test_tree_shared_distinct(void **state)
{
	bool rep;
	struct hits *h = calloc(1, sizeof(*h));

	(void)state;
	struct topic_tree *t = topic_tree_new();
	assert_int_equal(topic_tree_add(t, S("a/b"), OWN(1), 0, 0, &rep), HQ_OK);
	assert_int_equal(topic_tree_add(t, S("$share/g/a/b"), OWN(1), 1, 0, &rep), HQ_OK);
	assert_false(rep);
	assert_int_equal(topic_tree_add(t, S("$share/h/a/b"), OWN(1), 2, 0, &rep), HQ_OK);
	assert_false(rep);
	assert_int_equal(topic_tree_add(t, S("$share/g/a/+"), OWN(1), 0, 0, &rep), HQ_OK);
	assert_int_equal(topic_tree_add(t, S("$share/g/a/b"), OWN(1), 3, 0, &rep), HQ_OK);
	assert_true(rep);
	assert_int_equal(topic_tree_count(t), 4);
	match(t, h, "a/b", TOPIC_SHARED_ROUND_ROBIN, 0);
	assert_int_equal(h->n, 1);
	assert_int_equal(h->ns, 3);
	const char *want[] = { "$share/g/a/+", "$share/g/a/b", "$share/h/a/b" };
	qsort(h->sfilter, h->ns, sizeof(h->sfilter[0]), cmp_str48);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(h->sfilter[i], want[i]);
	/* removing the shared one leaves the plain one, and vice versa */
	assert_int_equal(topic_tree_remove(t, S("$share/g/a/b"), OWN(1)), HQ_OK);
	assert_int_equal(topic_tree_remove(t, S("$share/g/a/b"), OWN(1)), HQ_ENOTFOUND);
	assert_int_equal(topic_tree_remove(t, S("$share/x/a/b"), OWN(1)), HQ_ENOTFOUND);
	match(t, h, "a/b", TOPIC_SHARED_ROUND_ROBIN, 0);
	assert_int_equal(h->n, 1);
	assert_int_equal(h->ns, 2);
	assert_int_equal(topic_tree_remove(t, S("a/b"), OWN(1)), HQ_OK);
	assert_int_equal(topic_tree_remove(t, S("$share/h/a/b"), OWN(1)), HQ_OK);
	assert_int_equal(topic_tree_nodes(t), 3);	/* root, a, + */
	assert_int_equal(topic_tree_remove(t, S("$share/g/a/+"), OWN(1)), HQ_OK);
	assert_int_equal(topic_tree_nodes(t), 1);
	assert_int_equal(topic_tree_count(t), 0);
	topic_tree_free(t);
	free(h);
}

static struct topic_tree *group_of(size_t members)
{
	struct topic_tree *t = topic_tree_new();
	for (size_t i = 1; i <= members; i++)
		assert_int_equal(topic_tree_add(t, S("$share/g/jobs/+"), OWN(i), 0, 0, NULL), HQ_OK);
	return t;
}

static void test_shared_round_robin(void **state)
{
	struct hits *h = calloc(1, sizeof(*h));
	uintptr_t seq[12];

	(void)state;
	struct topic_tree *t = group_of(3);
	/* each member in turn, one per message [MQTT-4.8.2] */
	for (size_t i = 0; i < 6; i++) {
		match(t, h, "jobs/x", TOPIC_SHARED_ROUND_ROBIN, 0);
		assert_int_equal(h->ns, 1);
		assert_string_equal(h->sfilter[0], "$share/g/jobs/+");
		seq[i] = h->sowner[0];
	}
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(seq[i], seq[i + 3]);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(seq[i], seq[j]);
	}
	/* a refused member is skipped, the others keep alternating */
	h->ineligible[h->nin++] = 2;
	size_t got[4] = { 0 };
	for (size_t i = 0; i < 10; i++) {
		match(t, h, "jobs/x", TOPIC_SHARED_ROUND_ROBIN, 0);
		assert_int_equal(h->ns, 1);
		assert_int_not_equal(h->sowner[0], 2);
		if (i)
			assert_int_not_equal(h->sowner[0], seq[0]);
		seq[0] = h->sowner[0];
		got[h->sowner[0]]++;
	}
	assert_int_equal(got[1], 5);
	assert_int_equal(got[3], 5);
	/* nobody eligible: still exactly one pick, rotating, so it gets queued */
	h->ineligible[h->nin++] = 1;
	h->ineligible[h->nin++] = 3;
	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < 6; i++) {
		match(t, h, "jobs/x", TOPIC_SHARED_ROUND_ROBIN, 0);
		assert_int_equal(h->ns, 1);
		assert_int_equal(h->elig_calls, 3);
		got[h->sowner[0]]++;
	}
	assert_int_equal(got[1], 2);
	assert_int_equal(got[2], 2);
	assert_int_equal(got[3], 2);
	/* members leaving: the cursor stays in range */
	h->nin = 0;
	topic_tree_remove(t, S("$share/g/jobs/+"), OWN(3));
	topic_tree_remove(t, S("$share/g/jobs/+"), OWN(2));
	for (size_t i = 0; i < 3; i++) {
		match(t, h, "jobs/x", TOPIC_SHARED_ROUND_ROBIN, 0);
		assert_int_equal(h->ns, 1);
		assert_int_equal(h->sowner[0], 1);
	}
	topic_tree_free(t);
	free(h);
}

static void test_shared_random(void **state)
{
	struct hits *h = calloc(1, sizeof(*h));
	size_t got[5] = { 0 };

	(void)state;
	struct topic_tree *t = group_of(4);
	for (size_t i = 0; i < 4000; i++) {
		match(t, h, "jobs/x", TOPIC_SHARED_RANDOM, 0);
		assert_int_equal(h->ns, 1);
		got[h->sowner[0]]++;
	}
	for (size_t k = 1; k <= 4; k++)	/* expected 1000 each */
		assert_in_range(got[k], 800, 1200);
	h->ineligible[h->nin++] = 1;
	h->ineligible[h->nin++] = 4;
	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < 1000; i++) {
		match(t, h, "jobs/x", TOPIC_SHARED_RANDOM, 0);
		assert_int_equal(h->ns, 1);
		got[h->sowner[0]]++;
	}
	assert_int_equal(got[1] + got[4], 0);
	assert_true(got[2] > 0 && got[3] > 0);
	/* nobody eligible: still one pick each time, spread over members */
	h->ineligible[h->nin++] = 2;
	h->ineligible[h->nin++] = 3;
	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < 400; i++) {
		match(t, h, "jobs/x", TOPIC_SHARED_RANDOM, 0);
		assert_int_equal(h->ns, 1);
		got[h->sowner[0]]++;
	}
	for (size_t k = 1; k <= 4; k++)
		assert_true(got[k] > 0);
	topic_tree_free(t);
	free(h);
}

static void test_shared_hash(void **state)
{
	struct hits *h = calloc(1, sizeof(*h));
	uintptr_t first[8];

	(void)state;
	struct topic_tree *t = group_of(4);
	/* same hash, same member; hashes 0..3 reach all four */
	for (uint32_t ph = 0; ph < 8; ph++) {
		match(t, h, "jobs/x", TOPIC_SHARED_HASH, ph);
		first[ph] = h->sowner[0];
		match(t, h, "jobs/y", TOPIC_SHARED_HASH, ph);
		assert_int_equal(h->sowner[0], first[ph]);
		if (ph >= 4)
			assert_int_equal(first[ph], first[ph - 4]);	/* pub_hash % members */
	}
	for (uint32_t i = 0; i < 4; i++)
		for (uint32_t j = 0; j < i; j++)
			assert_int_not_equal(first[i], first[j]);
	/* an ineligible member hands over to the next one in order */
	h->ineligible[h->nin++] = first[1];
	match(t, h, "jobs/x", TOPIC_SHARED_HASH, 1);
	assert_int_equal(h->sowner[0], first[2]);
	match(t, h, "jobs/x", TOPIC_SHARED_HASH, 0);
	assert_int_equal(h->sowner[0], first[0]);
	h->ineligible[h->nin++] = first[2];
	h->ineligible[h->nin++] = first[3];
	match(t, h, "jobs/x", TOPIC_SHARED_HASH, 1);
	assert_int_equal(h->sowner[0], first[0]);	/* wraps around */
	h->ineligible[h->nin++] = first[0];
	match(t, h, "jobs/x", TOPIC_SHARED_HASH, 1);
	assert_int_equal(h->sowner[0], first[1]);	/* none eligible: the hash's pick */
	topic_tree_free(t);
	free(h);
}

/* ---- visit ---- */

struct seen {
	char filter[64][48];
	uintptr_t owner[64];
	size_t n;
};

static void on_visit(void *ctx, const char *filter, size_t len, const struct topic_sub *sub)
{
	struct seen *s = ctx;
	assert_true(s->n < 64 && len < 48);
	memcpy(s->filter[s->n], filter, len);
	s->filter[s->n][len] = '\0';
	s->owner[s->n] = KEY(sub->owner);
	s->n++;
}

static void test_tree_visit(void **state)
{
	static const char *const filters[] = {
		"a/b", "a/+", "a/#", "#", "+", "/finance", "+/+", "a//b", "/", "$SYS/#",
		"$share/g/a/b", "$share/h/+/#",
	};
	const size_t nf = sizeof(filters) / sizeof(filters[0]);
	struct seen s = { .n = 0 };

	(void)state;
	struct topic_tree *t = topic_tree_new();
	for (size_t i = 0; i < nf; i++) {
		topic_tree_add(t, S(filters[i]), OWN(i + 1), 0, 0, NULL);
		topic_tree_add(t, S(filters[i]), OWN(100 + i), 0, 0, NULL);
	}
	topic_tree_visit(t, on_visit, &s);
	assert_int_equal(s.n, 2 * nf);
	for (size_t i = 0; i < nf; i++) {
		size_t found = 0;
		for (size_t j = 0; j < s.n; j++)
			if (strcmp(s.filter[j], filters[i]) == 0 &&
			    (s.owner[j] == i + 1 || s.owner[j] == 100 + i))
				found++;
		if (found != 2)
			fail_msg("visit: \"%s\" seen %zu times", filters[i], found);
	}
	topic_tree_free(t);
	t = topic_tree_new();
	s.n = 0;
	topic_tree_visit(t, on_visit, &s);
	assert_int_equal(s.n, 0);
	topic_tree_free(t);
}

/* ---- scale: owner index, children tables, deep topics ---- */

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)((rng_state >> 11) % n);
}

static void shuffle(uint32_t *v, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		uint32_t j = rnd((uint32_t)i), x = v[i - 1];
		v[i - 1] = v[j];
		v[j] = x;
	}
}

static void test_tree_many_owners(void **state)
{
	enum { N = 2000 };
	static uint32_t order[N];
	static bool present[N + 1];
	struct hits *h = calloc(1, sizeof(*h));
	bool rep;

	(void)state;
	struct topic_tree *t = topic_tree_new();
	for (uint32_t i = 0; i < N; i++)
		order[i] = i + 1;
	shuffle(order, N);
	for (uint32_t i = 0; i < N; i++) {
		assert_int_equal(topic_tree_add(t, S("fan/out"), OWN(order[i]), 0, order[i], &rep), HQ_OK);
		assert_false(rep);
		present[order[i]] = true;
	}
	for (uint32_t i = 0; i < N; i += 7) {	/* replacing through the owner index */
		assert_int_equal(topic_tree_add(t, S("fan/out"), OWN(order[i]), 1, order[i], &rep), HQ_OK);
		assert_true(rep);
	}
	assert_int_equal(topic_tree_count(t), N);
	/* remove in another order, checking the exact set now and then; going
	 * down to a handful drops the index again */
	shuffle(order, N);
	for (uint32_t i = 0; i < N - 3; i++) {
		assert_int_equal(topic_tree_remove(t, S("fan/out"), OWN(order[i])), HQ_OK);
		assert_int_equal(topic_tree_remove(t, S("fan/out"), OWN(order[i])), HQ_ENOTFOUND);
		present[order[i]] = false;
		if (i % 97 == 0 || i > N - 20) {
			match(t, h, "fan/out", TOPIC_SHARED_ROUND_ROBIN, 0);
			assert_int_equal(h->n, N - 1 - i);
			for (size_t k = 0; k < h->n; k++) {
				assert_true(present[h->owner[k]]);
				assert_int_equal(h->sub_id[k], h->owner[k]);
			}
		}
	}
	/* grow again past the index threshold from a small set */
	for (uint32_t i = 0; i < 40; i++)
		topic_tree_add(t, S("fan/out"), OWN(order[i]), 0, order[i], NULL);
	match(t, h, "fan/out", TOPIC_SHARED_ROUND_ROBIN, 0);
	assert_int_equal(h->n, 43);
	/* a large shared group uses the same set code */
	for (uint32_t i = 1; i <= 100; i++)
		topic_tree_add(t, S("$share/w/fan/out"), OWN(i), 0, 0, NULL);
	for (uint32_t i = 1; i <= 100; i += 2)
		assert_int_equal(topic_tree_remove(t, S("$share/w/fan/out"), OWN(i)), HQ_OK);
	size_t got[101] = { 0 };
	for (uint32_t i = 0; i < 100; i++) {
		match(t, h, "fan/out", TOPIC_SHARED_ROUND_ROBIN, 0);
		assert_int_equal(h->ns, 1);
		got[h->sowner[0]]++;
	}
	for (uint32_t i = 1; i <= 100; i++)
		assert_int_equal(got[i], i % 2 ? 0 : 2);
	topic_tree_free(t);
	free(h);
}

static void test_tree_many_children(void **state)
{
	enum { N = 5000 };
	static uint32_t order[N];
	char f[32];

	(void)state;
	struct topic_tree *t = topic_tree_new();
	for (uint32_t i = 0; i < N; i++) {
		order[i] = i;
		snprintf(f, sizeof(f), "dev/%u/t", i);
		topic_tree_add(t, S(f), OWN(i + 1), 0, 0, NULL);
	}
	assert_int_equal(topic_tree_nodes(t), 2 + 2 * N);
	shuffle(order, N);
	for (uint32_t i = 0; i < N; i++) {
		if (i % 250 == 0)	/* everything still present is still found */
			for (uint32_t j = i; j < N; j += 37) {
				snprintf(f, sizeof(f), "dev/%u/t", order[j]);
				expect_owners(t, f, (const uintptr_t[]){ order[j] + 1 }, 1);
			}
		snprintf(f, sizeof(f), "dev/%u/t", order[i]);
		assert_int_equal(topic_tree_remove(t, S(f), OWN(order[i] + 1)), HQ_OK);
		expect_owners(t, f, NULL, 0);
	}
	assert_int_equal(topic_tree_nodes(t), 1);
	topic_tree_free(t);
}

static char *deep(const char *level, size_t n, const char *last)
{
	size_t ll = strlen(level), la = last ? strlen(last) : 0;
	char *s = malloc(n * (ll + 1) + la + 1), *p = s;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, level, ll);
		p += ll;
		*p++ = '/';
	}
	if (last) {
		memcpy(p, last, la);
		p += la;
	} else {
		p--;
	}
	*p = '\0';
	return s;
}

static void on_visit_count(void *ctx, const char *filter, size_t len,
			   const struct topic_sub *sub)
{
	(void)filter;
	(void)sub;
	assert_true(len >= 1);
	(*(size_t *)ctx)++;
}

/* Thousands of levels: no recursion to blow the stack. */
static void test_tree_deep(void **state)
{
	(void)state;
	struct topic_tree *t = topic_tree_new();
	char *topic = deep("a", 20000, NULL);
	char *plus = deep("+", 20000, NULL);
	char *hashf = deep("a", 19999, "#");
	topic_tree_add(t, S(topic), OWN(1), 0, 0, NULL);
	topic_tree_add(t, S(plus), OWN(2), 0, 0, NULL);
	topic_tree_add(t, S(hashf), OWN(3), 0, 0, NULL);
	topic_tree_add(t, S("#"), OWN(4), 0, 0, NULL);
	expect_owners(t, topic, (const uintptr_t[]){ 1, 2, 3, 4 }, 4);
	topic[2 * 15000] = 'b';
	expect_owners(t, topic, (const uintptr_t[]){ 2, 4 }, 2);
	size_t visited = 0;
	topic_tree_visit(t, on_visit_count, &visited);
	assert_int_equal(visited, 4);
	topic_tree_free(t);	/* deep free, no recursion either */
	free(topic);
	free(plus);
	free(hashf);
}

/* ---- randomized: the tree must agree with topic_matches() ---- */

struct ref_sub {
	char filter[48];
	uintptr_t owner;
	uint32_t sub_id;
};

static const char *const rlevels[] = { "a", "b", "c", "", "$s", "bb" };
#define NRLEVELS (sizeof(rlevels) / sizeof(rlevels[0]))

static void rand_topic(char *buf, size_t cap)
{
	size_t n = 1 + rnd(5), len = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "/" : "",
					rlevels[rnd(NRLEVELS)]);
}

static void rand_filter_once(char *buf, size_t cap)
{
	size_t n = 1 + rnd(5), len = 0;
	switch (rnd(8)) {
	case 0:
		len = (size_t)snprintf(buf, cap, "$share/g1/");
		break;
	case 1:
		len = (size_t)snprintf(buf, cap, "$share/g2/");
		break;
	default:
		buf[0] = '\0';
	}
	for (size_t i = 0; i < n; i++) {
		const char *l;
		uint32_t r = rnd(10);
		if (r < 3)
			l = "+";
		else if (r == 3 && i == n - 1)
			l = "#";
		else
			l = rlevels[rnd(NRLEVELS)];
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "/" : "", l);
	}
}

/* Random valid filter, sometimes shared ("$share/g1/" + "" is not valid: retry). */
static void rand_filter(char *buf, size_t cap)
{
	do
		rand_filter_once(buf, cap);
	while (!topic_filter_valid(buf, strlen(buf), 0));
}

static void check_random_match(struct topic_tree *t, struct hits *h, const struct ref_sub *ref,
			       size_t nref, const char *topic)
{
	static uint32_t want[MAXHITS];
	static char wshared[MAXHITS][48];
	size_t nw = 0, nws = 0;

	for (size_t i = 0; i < nref; i++) {
		if (!topic_matches(S(ref[i].filter), S(topic)))
			continue;
		if (strncmp(ref[i].filter, TOPIC_SHARE_PREFIX, 7) != 0) {
			want[nw++] = ref[i].sub_id;
			continue;
		}
		size_t k;	/* one delivery per group, whatever its size */
		for (k = 0; k < nws; k++)
			if (strcmp(wshared[k], ref[i].filter) == 0)
				break;
		if (k == nws)
			strcpy(wshared[nws++], ref[i].filter);
	}
	h->nin = rnd(4);	/* some owners refuse, to exercise eligibility */
	for (size_t i = 0; i < h->nin; i++)
		h->ineligible[i] = 1 + rnd(12);
	match(t, h, topic, (enum topic_shared_strategy)rnd(3), rnd(1000));
	qsort(want, nw, sizeof(want[0]), cmp_u32);
	qsort(h->sub_id, h->n, sizeof(h->sub_id[0]), cmp_u32);
	if (h->n != nw)
		fail_msg("\"%s\": %zu plain hits, want %zu", topic, h->n, nw);
	for (size_t i = 0; i < nw; i++)
		assert_int_equal(h->sub_id[i], want[i]);
	if (h->ns != nws)
		fail_msg("\"%s\": %zu shared hits, want %zu", topic, h->ns, nws);
	/* every shared pick is a member of the group it is reported for */
	for (size_t i = 0; i < h->ns; i++) {
		size_t k;
		for (k = 0; k < nref; k++)
			if (ref[k].owner == h->sowner[i] && strcmp(ref[k].filter, h->sfilter[i]) == 0)
				break;
		assert_true(k < nref);
		/* and an eligible one whenever the group has one */
		if (!on_eligible(h, &(struct topic_sub){ .owner = OWN(h->sowner[i]) }))
			for (k = 0; k < nref; k++)
				if (strcmp(ref[k].filter, h->sfilter[i]) == 0)
					assert_false(on_eligible(h, &(struct topic_sub){ .owner = OWN(ref[k].owner) }));
	}
	qsort(h->sfilter, h->ns, sizeof(h->sfilter[0]), cmp_str48);
	qsort(wshared, nws, sizeof(wshared[0]), cmp_str48);
	for (size_t i = 0; i < nws; i++)
		assert_string_equal(h->sfilter[i], wshared[i]);
}

static void test_tree_random(void **state)
{
	enum { MAXREF = 600, ROUNDS = 6000 };
	struct ref_sub *ref = calloc(MAXREF, sizeof(*ref));
	struct hits *h = calloc(1, sizeof(*h));
	size_t nref = 0;
	uint32_t next_id = 1;
	char f[48], topic[48];

	(void)state;
	struct topic_tree *t = topic_tree_new();
	for (size_t round = 0; round < ROUNDS; round++) {
		uint32_t op = rnd(10);
		if (op < 5 && nref < MAXREF) {	/* add or replace */
			rand_filter(f, sizeof(f));
			assert_true(topic_filter_valid(S(f), 0));
			uintptr_t owner = 1 + rnd(12);
			bool rep;
			size_t i;
			for (i = 0; i < nref; i++)
				if (ref[i].owner == owner && strcmp(ref[i].filter, f) == 0)
					break;
			assert_int_equal(topic_tree_add(t, S(f), OWN(owner), 0, next_id, &rep), HQ_OK);
			assert_int_equal(rep, i < nref);
			if (i == nref) {
				strcpy(ref[nref].filter, f);
				ref[nref++].owner = owner;
			}
			ref[i].sub_id = next_id++;
		} else if (op < 8 && nref) {	/* remove */
			size_t i = rnd((uint32_t)nref);
			assert_int_equal(topic_tree_remove(t, S(ref[i].filter), OWN(ref[i].owner)),
					 HQ_OK);
			ref[i] = ref[--nref];
		} else {			/* remove something absent */
			rand_filter(f, sizeof(f));
			uintptr_t owner = 1 + rnd(12);
			size_t i;
			for (i = 0; i < nref; i++)
				if (ref[i].owner == owner && strcmp(ref[i].filter, f) == 0)
					break;
			if (i == nref)
				assert_int_equal(topic_tree_remove(t, S(f), OWN(owner)), HQ_ENOTFOUND);
		}
		assert_int_equal(topic_tree_count(t), nref);
		for (int k = 0; k < 3; k++) {
			rand_topic(topic, sizeof(topic));
			check_random_match(t, h, ref, nref, topic);
		}
	}
	/* draining the tree prunes it back to the root */
	while (nref) {
		assert_int_equal(topic_tree_remove(t, S(ref[nref - 1].filter), OWN(ref[nref - 1].owner)),
				 HQ_OK);
		nref--;
	}
	assert_int_equal(topic_tree_nodes(t), 1);
	topic_tree_free(t);
	free(ref);
	free(h);
}

/* ---- retained messages ---- */

struct rhits {
	char topic[256][48];
	uintptr_t value[256];
	size_t n;
	size_t stop_after;	/* 0 = never stop */
};

static bool on_retained(void *ctx, const char *topic, size_t len, void *value)
{
	struct rhits *r = ctx;
	assert_true(r->n < 256 && len < 48);
	memcpy(r->topic[r->n], topic, len);
	r->topic[r->n][len] = '\0';
	r->value[r->n] = KEY(value);
	r->n++;
	return !(r->stop_after && r->n >= r->stop_after);
}

static void rmatch(const struct retain_tree *r, struct rhits *h, const char *filter)
{
	h->n = 0;
	retain_tree_match(r, S(filter), on_retained, h);
	qsort(h->topic, h->n, sizeof(h->topic[0]), cmp_str48);
}

static size_t released;

static void release(void *value)
{
	(void)value;
	released++;
}

static void test_retain_basic(void **state)
{
	void *old = OWN(99);

	(void)state;
	struct retain_tree *r = retain_tree_new();
	retain_tree_set(r, S("a/b"), OWN(1), &old);
	assert_null(old);
	assert_int_equal(retain_tree_count(r), 1);
	assert_int_equal(retain_tree_nodes(r), 3);
	retain_tree_set(r, S("a/b"), OWN(2), &old);	/* replace hands back the old value */
	assert_ptr_equal(old, OWN(1));
	assert_int_equal(retain_tree_count(r), 1);
	assert_ptr_equal(retain_tree_get(r, S("a/b")), OWN(2));
	assert_null(retain_tree_get(r, S("a")));
	assert_null(retain_tree_get(r, S("a/b/c")));
	assert_null(retain_tree_get(r, S("x")));
	retain_tree_set(r, S("a"), OWN(3), &old);
	assert_null(old);
	assert_int_equal(retain_tree_nodes(r), 3);
	/* delete: value NULL; deleting what is not there is a no-op */
	retain_tree_set(r, S("a/b/c"), NULL, &old);
	assert_null(old);
	retain_tree_set(r, S("a/b"), NULL, &old);
	assert_ptr_equal(old, OWN(2));
	assert_int_equal(retain_tree_count(r), 1);
	assert_int_equal(retain_tree_nodes(r), 2);	/* "a" still holds a value */
	retain_tree_set(r, S("a/b"), NULL, &old);
	assert_null(old);
	retain_tree_set(r, S("a"), NULL, &old);
	assert_ptr_equal(old, OWN(3));
	assert_int_equal(retain_tree_count(r), 0);
	assert_int_equal(retain_tree_nodes(r), 1);
	/* free releases what is left */
	retain_tree_set(r, S("x/y"), OWN(4), NULL);
	retain_tree_set(r, S("x"), OWN(5), NULL);
	retain_tree_set(r, S("/"), OWN(6), NULL);
	released = 0;
	retain_tree_free(r, release);
	assert_int_equal(released, 3);
	retain_tree_free(retain_tree_new(), NULL);
}

static void test_retain_match(void **state)
{
	static const char *const topics[] = {
		"sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
		"sport/golf", "/finance", "/", "finance", "$SYS/load", "$SYS", "a/$x",
	};
	struct rhits *h = calloc(1, sizeof(*h));

	(void)state;
	struct retain_tree *r = retain_tree_new();
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		retain_tree_set(r, S(topics[i]), OWN(i + 1), NULL);

	rmatch(r, h, "sport/#");	/* [MQTT-4.7.1-2] includes "sport" */
	assert_int_equal(h->n, 5);
	assert_string_equal(h->topic[0], "sport");
	rmatch(r, h, "sport/tennis/+");
	assert_int_equal(h->n, 1);
	assert_string_equal(h->topic[0], "sport/tennis/player1");
	rmatch(r, h, "sport/+");
	assert_int_equal(h->n, 2);
	rmatch(r, h, "+/+");	/* '+' matches the empty level */
	assert_int_equal(h->n, 5);
	assert_string_equal(h->topic[0], "/");
	assert_string_equal(h->topic[1], "/finance");
	rmatch(r, h, "+");
	assert_int_equal(h->n, 2);	/* sport, finance; not $SYS [MQTT-4.7.2-1] */
	rmatch(r, h, "#");
	assert_int_equal(h->n, 9);
	for (size_t i = 0; i < h->n; i++)
		assert_int_not_equal(h->topic[i][0], '$');
	rmatch(r, h, "$SYS/#");
	assert_int_equal(h->n, 2);
	rmatch(r, h, "$SYS/+");
	assert_int_equal(h->n, 1);
	assert_string_equal(h->topic[0], "$SYS/load");
	rmatch(r, h, "a/+");
	assert_int_equal(h->n, 1);
	rmatch(r, h, "sport/tennis");
	assert_int_equal(h->n, 1);
	assert_int_equal(h->value[0], 2);
	rmatch(r, h, "sport/tennis/player1/ranking/x");
	assert_int_equal(h->n, 0);
	rmatch(r, h, "nothing/#");
	assert_int_equal(h->n, 0);
	/* the callback stops the walk, inside '#' and across '+' */
	h->stop_after = 2;
	rmatch(r, h, "#");
	assert_int_equal(h->n, 2);
	rmatch(r, h, "+/+");
	assert_int_equal(h->n, 2);
	h->stop_after = 0;
	retain_tree_free(r, NULL);
	free(h);
}

static bool on_retained_count(void *ctx, const char *topic, size_t len, void *value)
{
	(void)topic;
	(void)len;
	(void)value;
	(*(size_t *)ctx)++;
	return true;
}

static void test_retain_deep(void **state)
{
	(void)state;
	struct retain_tree *r = retain_tree_new();
	char *topic = deep("a", 20000, NULL);
	char *plus = deep("+", 20000, NULL);
	retain_tree_set(r, S(topic), OWN(1), NULL);
	size_t n = 0;
	retain_tree_match(r, S("#"), on_retained_count, &n);
	retain_tree_match(r, S(plus), on_retained_count, &n);
	retain_tree_match(r, S(topic), on_retained_count, &n);
	assert_int_equal(n, 3);
	topic[2 * 19999] = 'b';
	retain_tree_match(r, S(topic), on_retained_count, &n);
	assert_int_equal(n, 3);
	topic[2 * 19999] = 'a';
	retain_tree_set(r, S(topic), NULL, NULL);
	assert_int_equal(retain_tree_nodes(r), 1);
	retain_tree_set(r, S(topic), OWN(1), NULL);
	retain_tree_free(r, NULL);
	free(topic);
	free(plus);
}

/* The randomized retain test keeps topic i + 1's text in rtopics[i]. */
#define MAXT 400
static char rtopics[MAXT][48];

struct rset {
	uintptr_t v[MAXT];
	size_t n;
};

static bool on_retained_set(void *ctx, const char *topic, size_t len, void *value)
{
	struct rset *s = ctx;
	const char *want = rtopics[KEY(value) - 1];
	assert_true(s->n < MAXT);
	assert_int_equal(len, strlen(want));	/* the callback gets the value's own topic */
	assert_memory_equal(topic, want, len);
	s->v[s->n++] = KEY(value);
	return true;
}

static void test_retain_random(void **state)
{
	char (*topics)[48] = rtopics;
	size_t nt = 0;
	char buf[48];
	struct rset got, want;

	(void)state;
	struct retain_tree *r = retain_tree_new();
	for (size_t round = 0; round < 5000; round++) {
		void *old;
		rand_topic(buf, sizeof(buf));
		size_t i;
		for (i = 0; i < nt; i++)
			if (strcmp(topics[i], buf) == 0)
				break;
		if (rnd(3) && nt < MAXT) {	/* set; the value is the slot + 1 */
			if (i == nt)
				strcpy(topics[nt++], buf);
			retain_tree_set(r, S(buf), OWN(i + 1), &old);
			assert_true(old == NULL || old == OWN(i + 1));
		} else if (i < nt) {		/* delete; the last slot moves into i */
			retain_tree_set(r, S(buf), NULL, &old);
			assert_ptr_equal(old, OWN(i + 1));
			nt--;
			if (i != nt) {
				memcpy(topics[i], topics[nt], sizeof(topics[0]));
				retain_tree_set(r, S(topics[i]), OWN(i + 1), &old);
				assert_ptr_equal(old, OWN(nt + 1));
			}
		}
		assert_int_equal(retain_tree_count(r), nt);
		rand_filter(buf, sizeof(buf));
		if (strncmp(buf, TOPIC_SHARE_PREFIX, 7) == 0)
			continue;
		got.n = want.n = 0;
		retain_tree_match(r, S(buf), on_retained_set, &got);
		for (size_t k = 0; k < nt; k++)
			if (topic_matches(S(buf), S(topics[k])))
				want.v[want.n++] = k + 1;
		qsort(got.v, got.n, sizeof(got.v[0]), cmp_uptr);
		if (got.n != want.n)
			fail_msg("retain \"%s\": %zu matches, want %zu", buf, got.n, want.n);
		for (size_t k = 0; k < want.n; k++)
			assert_int_equal(got.v[k], want.v[k]);
	}
	for (size_t i = 0; i < nt; i++)
		retain_tree_set(r, S(topics[i]), NULL, NULL);
	assert_int_equal(retain_tree_nodes(r), 1);
	retain_tree_free(r, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_filter_valid),
		cmocka_unit_test(test_filter_shared),
		cmocka_unit_test(test_matches_spec),
		cmocka_unit_test(test_tree_spec),
		cmocka_unit_test(test_tree_add_remove),
		cmocka_unit_test(test_tree_dollar),
		cmocka_unit_test(test_tree_wild_edges),
		cmocka_unit_test(test_tree_shared_distinct),
		cmocka_unit_test(test_shared_round_robin),
		cmocka_unit_test(test_shared_random),
		cmocka_unit_test(test_shared_hash),
		cmocka_unit_test(test_tree_visit),
		cmocka_unit_test(test_tree_many_owners),
		cmocka_unit_test(test_tree_many_children),
		cmocka_unit_test(test_tree_deep),
		cmocka_unit_test(test_tree_random),
		cmocka_unit_test(test_retain_basic),
		cmocka_unit_test(test_retain_match),
		cmocka_unit_test(test_retain_deep),
		cmocka_unit_test(test_retain_random),
	};
	return cmocka_run_group_tests_name("topic", tests, NULL, NULL);
}
