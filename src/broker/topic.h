/*
 * topic.h - topic names, topic filters and the subscription index.
 *
 * Pure containers: no I/O, no locks, no MQTT sessions. The broker keeps one
 * struct topic_tree per worker thread (a replica, so matching a PUBLISH takes no
 * lock) and one struct retain_tree for the whole node behind a mutex.
 *
 * Ownership: the trees copy filter/topic strings. Subscriber identities
 * (`owner`) and retained values (`value`) are opaque pointers the trees never
 * dereference or free; callers manage their lifetime (a value is released by
 * the caller when it is replaced or removed: see the out parameters).
 *
 * Matching never allocates.
 */
#ifndef HQ_BROKER_TOPIC_H
#define HQ_BROKER_TOPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOPIC_SHARE_PREFIX "$share/"

/* ---- validation ---- */

/* Valid topic name for PUBLISH: non-empty, no '+' or '#' [MQTT-3.3.2-2],
 * at most max_levels levels (0 = unlimited). UTF-8 validity is the codec's job. */
bool topic_name_valid(const char *t, size_t len, unsigned max_levels);
/* Valid topic filter: '+' and '#' only as whole levels, '#' last
 * [MQTT-4.7.1-1] [MQTT-4.7.1-2]; a $share filter must be
 * "$share/<group>/<filter>" with a non-empty group without + # /
 * [MQTT-4.8.2-1] [MQTT-4.8.2-2]. */
bool topic_filter_valid(const char *f, size_t len, unsigned max_levels);
/* If f is "$share/group/filter": set group/filter views and return true. */
bool topic_filter_shared(const char *f, size_t len, const char **group, size_t *group_len,
			 const char **filter, size_t *filter_len);
/* Does filter match topic? ('$' topics not matched by leading wildcards [MQTT-4.7.2-1]) */
bool topic_matches(const char *filter, size_t flen, const char *topic, size_t tlen);

/* ---- subscription index ---- */

enum topic_shared_strategy { TOPIC_SHARED_ROUND_ROBIN = 0, TOPIC_SHARED_RANDOM, TOPIC_SHARED_HASH };

struct topic_sub {
	void *owner;         /* subscriber identity, opaque */
	uint32_t sub_id;     /* v5 subscription identifier, 0 = none */
	uint8_t options;     /* MQTT subscription options byte */
};

struct topic_tree;

struct topic_tree *topic_tree_new(void);
void topic_tree_free(struct topic_tree *t);

/* Add or replace the subscription of owner to filter (a $share/... filter joins
 * that group). *replaced (may be NULL) says whether it existed (options updated).
 * Returns HQ_OK or HQ_EINVAL for an invalid filter. */
int topic_tree_add(struct topic_tree *t, const char *filter, size_t len, void *owner,
		   uint8_t options, uint32_t sub_id, bool *replaced);
/* Remove; HQ_OK or HQ_ENOTFOUND. Empty nodes are pruned. */
int topic_tree_remove(struct topic_tree *t, const char *filter, size_t len, void *owner);
size_t topic_tree_count(const struct topic_tree *t);   /* subscriptions held */
size_t topic_tree_nodes(const struct topic_tree *t);   /* trie nodes incl. root (stats, tests) */

/* Called once per matching non-shared subscription. */
typedef void (*topic_match_cb)(void *ctx, const struct topic_sub *sub);
/* Asked while choosing a shared-group member: may this member take it now? */
typedef bool (*topic_eligible_cb)(void *ctx, const struct topic_sub *sub);

/*
 * Call cb for each subscription matching topic. For each matching shared group,
 * choose exactly one member by `strategy` (hash uses pub_hash), preferring members
 * for which eligible() returns true (eligible may be NULL = all), and call
 * shared_cb for it with the group's filter ("$share/g/f") in `group_filter`.
 */
typedef void (*topic_shared_cb)(void *ctx, const struct topic_sub *sub,
				const char *group_filter, size_t gf_len);
void topic_tree_match(struct topic_tree *t, const char *topic, size_t len,
		      enum topic_shared_strategy strategy, uint32_t pub_hash,
		      topic_match_cb cb, topic_shared_cb shared_cb,
		      topic_eligible_cb eligible, void *ctx);

/* Visit every subscription (admin listing, tests). */
typedef void (*topic_visit_cb)(void *ctx, const char *filter, size_t len,
			       const struct topic_sub *sub);
void topic_tree_visit(const struct topic_tree *t, topic_visit_cb cb, void *ctx);

/* ---- retained messages: topic -> value ---- */

struct retain_tree;

struct retain_tree *retain_tree_new(void);
/* Frees the tree; calls release(value) for each value still held (may be NULL). */
void retain_tree_free(struct retain_tree *r, void (*release)(void *value));
/* Set topic's value (value NULL deletes). *old receives the previous value (or
 * NULL), which the caller now owns. */
void retain_tree_set(struct retain_tree *r, const char *topic, size_t len, void *value,
		     void **old);
void *retain_tree_get(const struct retain_tree *r, const char *topic, size_t len);
size_t retain_tree_count(const struct retain_tree *r);
size_t retain_tree_nodes(const struct retain_tree *r);   /* trie nodes incl. root (stats, tests) */
/* Call cb for every retained topic matching filter (not $-topics for a
 * leading wildcard [MQTT-4.7.2-1]). Return false from cb to stop early. */
typedef bool (*retain_match_cb)(void *ctx, const char *topic, size_t len, void *value);
void retain_tree_match(const struct retain_tree *r, const char *filter, size_t len,
		       retain_match_cb cb, void *ctx);

#endif
