/*
 * auth_acldb.h - authorization rules from the built-in database (EMQX's
 * "built_in_database" authorization source): ordered rule lists per client
 * id, per user name and for all clients, managed over REST
 * (/api/v5/authorization/sources/built_in_database/rules/...) and kept in
 * the replicated table "acldb" (repl/repl.h), so a rule added on one node
 * holds on every node and survives restarts.
 *
 * A rule is EMQX's {"topic", "permission": allow|deny, "action":
 * publish|subscribe|all}; ${username} / ${clientid} in a topic stand for
 * the client's (as in a JWT's ACL claim). A client's rules are its client
 * id's, then its user name's, then the "all" list, checked in that order as
 * one list: the first rule that covers the request decides (auth_acl.h,
 * acl_ordered_*). The chain (auth_chain.c) checks them after a JWT's claims
 * and before the ACL file; auth.acl.no_match decides where nothing matched.
 *
 * Table: key "c:<client id>", "u:<user name>" or "a" (all), value the rule
 * list as compact JSON, validated before it is stored. Separate from
 * "authdb" (users): that table's entry count says whether the user database
 * takes part, and users and rules are managed apart, as in EMQX.
 *
 * Rules are read when a client connects (auth_client_new): a change holds
 * for connections made after it, not for those already open (as with a
 * reloaded ACL file). While the table is empty (an atomic count) nothing is
 * read: a node where nobody added a rule behaves as before.
 *
 * Threads: any. The table's lock guards the entries.
 */
#ifndef HQ_AUTH_AUTH_ACLDB_H
#define HQ_AUTH_AUTH_ACLDB_H

#include <stdbool.h>
#include <stddef.h>

struct auth_acldb;
struct repl;
struct acl_rules;
struct cJSON;

#define ACLDB_MAX_RULES 100      /* per list: EMQX's max_rules default */
#define ACLDB_NAME_MAX 1000      /* bytes of a user name or client id (key "u:<name>") */

enum acldb_kind { ACLDB_CLIENT = 'c', ACLDB_USER = 'u', ACLDB_ALL = 'a' };

struct auth_acldb *auth_acldb_new(struct repl *r);
void auth_acldb_free(struct auth_acldb *db);
/* Holds at least one list (relaxed atomic read). */
bool auth_acldb_active(const struct auth_acldb *db);

/* The rules of a client (username NULL: anonymous), one ordered set; NULL
 * when the table holds none for it. A stored list that no longer parses
 * (written by a newer version) denies everything: failing closed. */
struct acl_rules *auth_acldb_rules_for(struct auth_acldb *db, const char *username,
				       const char *client_id);

/* Is rules a valid list? *text (caller frees, hq_free) is its canonical
 * compact JSON: [{"topic","permission","action"}, ...]. HQ_EINVAL and why
 * otherwise (members other than those three, among them EMQX's qos and
 * retain conditions, are refused: ignoring a condition would widen an allow). */
int auth_acldb_validate(const struct cJSON *rules, char **text, char *why, size_t whylen);

/* ---- management (the REST routes); name is ignored for ACLDB_ALL ----
 * HQ_OK, HQ_EINVAL (why), HQ_EEXIST (add only), HQ_ENOTFOUND */
int auth_acldb_set(struct auth_acldb *db, enum acldb_kind k, const char *name,
		   const struct cJSON *rules, bool create_only, char *why, size_t whylen);
/* *rules: a new cJSON array (caller deletes). */
int auth_acldb_get(struct auth_acldb *db, enum acldb_kind k, const char *name,
		   struct cJSON **rules);
int auth_acldb_delete(struct auth_acldb *db, enum acldb_kind k, const char *name);
bool auth_acldb_name_ok(const char *name);

struct auth_acldb_entry {
	char *name;             /* owned */
	struct cJSON *rules;    /* owned */
};
/* The lists of kind k in name order from offset, at most limit (<= 1000):
 * *out is the caller's (auth_acldb_entries_free); *total counts all. */
void auth_acldb_list(struct auth_acldb *db, enum acldb_kind k, size_t offset, size_t limit,
		     struct auth_acldb_entry **out, size_t *n, size_t *total);
void auth_acldb_entries_free(struct auth_acldb_entry *v, size_t n);

#endif
