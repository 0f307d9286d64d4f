/*
 * auth_acl.h - an ACL file in Mosquitto's format:
 *   # comment
 *   topic [read|write|readwrite|deny] <filter>     (no access word = readwrite)
 *   user <name>                                    (the rules below are <name>'s)
 *   pattern [read|write|readwrite|deny] <filter>   (every client; %u user, %c client id)
 * Rules before the first `user` line are the anonymous clients' (no user
 * name). `pattern` lines apply to every client wherever they stand.
 *
 * A check is: a deny rule that matches -> deny; else a rule granting the
 * access that matches -> allow; else no match (the caller applies
 * auth.acl.no_match). For a topic (PUBLISH, a delivered message) "matches"
 * is MQTT topic matching; for a SUBSCRIBE filter it is "covers": every topic
 * the filter can match is matched by the rule (a/+ covers a/b, # covers
 * everything but $-topics). A wildcard filter that no rule covers but a read
 * rule overlaps (# with a rule a/#) is granted too: each message delivered
 * through it is checked (Mosquitto 2.0 grants every SUBSCRIBE and checks
 * only delivered messages; we refuse what can never deliver anything, and a
 * filter a deny rule covers). A rule starting
 * with a wildcard never matches a topic starting with '$' [MQTT-4.7.2-1]:
 * $SYS is readable only where a rule names it.
 *
 * A parsed file is immutable and reference counted: connections keep the
 * rules they started with across a reload.
 */
#ifndef HQ_AUTH_AUTH_ACL_H
#define HQ_AUTH_AUTH_ACL_H

#include <stdbool.h>
#include <stddef.h>

#define ACL_READ 1u
#define ACL_WRITE 2u

enum acl_verdict { ACL_NO_MATCH = 0, ACL_ALLOW, ACL_DENY };

struct acl_rules;

struct acl_rules *acl_parse(const char *name, const char *text, size_t len, char *err, size_t errlen);
struct acl_rules *acl_load(const char *path, char *err, size_t errlen);
struct acl_rules *acl_ref(struct acl_rules *r);
void acl_unref(struct acl_rules *r);

/* A client's own rules from a JWT claim (EMQX's two forms):
 *   {"pub": [filters], "sub": [filters], "all": [filters]}          (grants)
 *   [{"permission": "allow"|"deny", "action": "publish"|"subscribe"|"all",
 *     "topic": filter}, ...]                                        (in order)
 * ${username} / ${clientid} in a filter stand for %u / %c. Unlike a file's
 * rules these are ordered: the first rule that covers the request decides
 * (so [allow t/#, deny #] grants t/... only), as EMQX evaluates them; a
 * wildcard SUBSCRIBE filter an allow rule only overlaps is granted and its
 * deliveries checked, as for files. At most 256 rules. NULL and err (what
 * is wrong, no token text) when the claim is malformed. */
struct cJSON;
struct acl_rules *acl_from_claim(const struct cJSON *claim, char *err, size_t errlen);

/* Ordered rules made piecewise (the built-in database's, auth_acldb.h):
 * an empty set, then EMQX rule lists (the list form above) appended in the
 * order they are to be checked. acl_ordered_append: false and err ("rule
 * <i>: why") when list is not such a list or holds more than max rules; r
 * is unchanged then. */
struct acl_rules *acl_ordered_new(void);
bool acl_ordered_append(struct acl_rules *r, const struct cJSON *list, unsigned max, char *err,
			size_t errlen);
unsigned acl_ordered_count(const struct acl_rules *r);

/* user NULL: anonymous. access ACL_READ or ACL_WRITE on a topic name;
 * is_filter: `what` is a SUBSCRIBE filter (access ACL_READ). */
enum acl_verdict acl_check(const struct acl_rules *r, const char *user, const char *client_id,
			   unsigned access, const char *what, bool is_filter);

/* Does rule filter p cover filter or topic f (both NUL terminated)? */
bool acl_covers(const char *p, const char *f);
/* Can some topic match both filters? */
bool acl_overlaps(const char *p, const char *f);

#endif
