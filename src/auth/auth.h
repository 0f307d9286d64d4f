/*
 * auth.h - authentication (the chain) and authorization (ACL) of MQTT
 * clients: the broker's only view of src/auth/.
 *
 * The chain asks its methods in order; the first definite answer wins:
 *   1. the password file (auth.password_file): a user it lists is accepted
 *      with the right password and refused (bad user name or password) with a
 *      wrong one; a user it does not list is left to the next method;
 *   then the built-in user database (auth_builtin.c, replicated);
 *   2. JWT (auth.jwt.*, auth_jwt.h): a credential that is not a JWT is left
 *      to the next method; a JWT is accepted or refused (bad credentials);
 *   then the methods that ask a server, on the auth threads (auth_async.c),
 *   never on a worker: the HTTP hook (auth.http.*), Redis (auth.redis.*);
 *   3. the end of the chain: a client without a user name is anonymous and
 *      auth.allow_anonymous decides (refused: not authorized); a client with
 *      a user name no method accepted is refused (bad user name or password)
 *      when a credentials method is configured, else treated as anonymous.
 * With no method configured and allow_anonymous true (the default),
 * auth_connect always allows and the broker skips it altogether
 * (auth_connect_needed).
 *
 * Authorization: with auth.acl_file set, or with rules of its own (a JWT's
 * ACL claim, auth_result.acl, or the built-in database's rules for its
 * client id, user name or all clients: auth_acldb.h; checked in that order,
 * then the file's), a connection gets a struct auth_client
 * holding the rules it connected with (references), its user name and
 * client id, and a cache of decisions by topic; otherwise it gets NULL and
 * the broker checks nothing (one NULL test on each path).
 *
 * Threads: auth_connect and auth_client_new run on any worker (read lock on
 * the tables); auth_reload on the main thread (SIGHUP) parses the files
 * outside the lock and swaps the tables under the write lock. A struct
 * auth_client belongs to one session's worker.
 */
#ifndef HQ_AUTH_AUTH_H
#define HQ_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth_acl.h"
#include "core/conf.h"

struct auth;

/* Reads the files the configuration names; NULL and "file:line: why" in err
 * when one cannot be read or has a bad line. */
struct auth *auth_new(const struct hq_config *cfg, char *err, size_t errlen);
void auth_free(struct auth *a);
/* Re-read the files (SIGHUP). On an error the old tables stay in force. */
int auth_reload(struct auth *a, char *err, size_t errlen);

enum auth_rc {
	AUTH_ALLOW = 0,
	AUTH_BAD_CREDENTIALS,   /* v5 0x86, v3 return code 4 */
	AUTH_NOT_AUTHORIZED,    /* v5 0x87, v3 return code 5 */
	AUTH_PENDING,           /* auth_connect_async only: the answer comes later */
};

/* What a method hands back besides its answer (see auth_req.out). */
struct auth_result {
	struct acl_rules *acl;    /* the client's own rules (a JWT's claims), a
				   * reference for auth_client_new; NULL: none */
	bool replace_username;    /* the user name field held a credential (a JWT):
				   * use `username` instead, never log the field */
	char *username;           /* owned; NULL: none (the JWT's username/sub) */
	bool superuser;           /* allowed as a superuser (built-in database): no ACL */
};

struct auth_req {
	const char *client_id;
	const char *username;   /* NULL: none */
	const uint8_t *password;
	size_t password_len;
	bool has_password;
	const char *peerhost;   /* the client's address without the port (HTTP hook); NULL: "" */
	struct auth_result *out; /* NULL or zeroed; the caller owns what lands there */
};

/* The built-in user database (auth_builtin.h) on the node's replicated
 * tables: made here (broker_new, after repl_open); NULL before. */
struct repl;
struct auth_builtin;
void auth_set_repl(struct auth *a, struct repl *r);
struct auth_builtin *auth_builtin_db(struct auth *a);
/* The built-in database's ACL rules (auth_acldb.h), made with it. */
struct auth_acldb;
struct auth_acldb *auth_acl_db(struct auth *a);

/* false: every CONNECT is allowed (no method, anonymous allowed). */
bool auth_connect_needed(const struct auth *a);
/* The chain's answer; *why says which rule decided (static text). */
enum auth_rc auth_connect(struct auth *a, const struct auth_req *r, const char **why);

/* ---- methods that ask a server (HTTP hook, Redis): auth_async.c ----
 *
 * They never run on a worker. auth_connect_async asks the in-process
 * methods first, as auth_connect does; when none decided and a server method
 * is configured it copies the request to the auth threads (owned by this
 * module) and answers AUTH_PENDING. The answer then comes through the
 * callback set by auth_set_done, on an auth thread, with (worker, token)
 * as given: the caller routes it back to the worker that asked and checks
 * the token there (the connection may be gone). */
struct auth_answer {
	uint64_t token;
	uint32_t worker;
	enum auth_rc rc;        /* AUTH_ALLOW, AUTH_BAD_CREDENTIALS or AUTH_NOT_AUTHORIZED */
	bool superuser;         /* allowed as a superuser: no ACL applies */
	char why[160];          /* which method and rule decided */
};
/* ans is the callee's (hq_free). Called on an auth thread. */
typedef void (*auth_done_fn)(void *arg, struct auth_answer *ans);
/* Before the first auth_connect_async (the broker, at start). */
void auth_set_done(struct auth *a, auth_done_fn fn, void *arg);
enum auth_rc auth_connect_async(struct auth *a, const struct auth_req *r, uint32_t worker,
				uint64_t token, const char **why);
/* Stops and joins the auth threads: no callback runs after it returns.
 * Pending requests are dropped. Idempotent; auth_free calls it too. */
void auth_stop(struct auth *a);
/* Prometheus lines: per method allow / deny / ignore / timeout counts. */
struct buf;
void auth_metrics(struct auth *a, const char *node, struct buf *out);
/* JWT verdicts by result (auth.jwt.*), for /metrics: index i counts
 * auth_jwt_result_names[i] ("success", "expired", ...); zeros when off. */
#define AUTH_JWT_RESULTS 8
extern const char *const auth_jwt_result_names[AUTH_JWT_RESULTS];
void auth_jwt_results(const struct auth *a, uint64_t out[AUTH_JWT_RESULTS]);

/* ---- MQTT v5 enhanced authentication (AUTH packets): auth_ext.c ----
 *
 * One exchange of a method the broker supports (today "SCRAM-SHA-512"
 * against the password file's $7$ entries), owned by the connection and
 * used by its worker only. auth_ext_new: NULL when the method is not
 * supported here (the client gets 0x8C). auth_ext_step takes the client's
 * Authentication Data (CONNECT's, then each AUTH 0x18's) and answers:
 *   AUTH_EXT_CONTINUE  send *out in an AUTH 0x18 and wait for the client;
 *   AUTH_EXT_OK        authenticated as auth_ext_user(): *out goes in the
 *                      CONNACK (or the AUTH 0x00 of a re-authentication);
 *   AUTH_EXT_BAD_CREDENTIALS / AUTH_EXT_NOT_AUTHORIZED  refuse (*why).
 * *out is hq_malloc'd (the caller frees it) or NULL. auth_ext_restart
 * begins a new exchange on the same object (re-authentication). */
struct auth_ext;
enum auth_ext_rc { AUTH_EXT_CONTINUE, AUTH_EXT_OK, AUTH_EXT_BAD_CREDENTIALS, AUTH_EXT_NOT_AUTHORIZED };
struct auth_ext *auth_ext_new(struct auth *a, const char *method, size_t len);
enum auth_ext_rc auth_ext_step(struct auth *a, struct auth_ext *x, const uint8_t *data, size_t len,
			       uint8_t **out, size_t *outlen, const char **why);
void auth_ext_restart(struct auth_ext *x);
const char *auth_ext_method(const struct auth_ext *x);
/* The authenticated user ("" before AUTH_EXT_OK). */
const char *auth_ext_user(const struct auth_ext *x);
void auth_ext_free(struct auth_ext *x);

/* ---- authorization ---- */

struct auth_client;
/* NULL when no ACL file is configured, own is NULL and the built-in
 * database holds no rules for the client (everything allowed). own: NULL
 * or the client's own rules (auth_result.acl), taken over (*own becomes
 * NULL); they are checked first, then the database's (read now: a change
 * holds for later connections), then the file's. */
struct auth_client *auth_client_new(struct auth *a, const char *username, const char *client_id,
				    struct acl_rules **own);
void auth_client_free(struct auth_client *ac);
/* May the client publish to topic (ACL_WRITE), receive a message of topic
 * (ACL_READ), or subscribe to a filter (ACL_READ, is_filter)? topic is len
 * bytes (no NUL needed). Topics are cached per client; filters are not (a
 * SUBSCRIBE is rare). */
bool auth_client_allow(struct auth_client *ac, unsigned access, const char *topic, size_t len,
		       bool is_filter);
/* How many decisions came from the cache (for tests and /metrics). */
uint64_t auth_client_cache_hits(const struct auth_client *ac);

#endif
