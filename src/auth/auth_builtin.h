/*
 * auth_builtin.h - the built-in user database: MQTT users (user id,
 * PBKDF2-SHA512 "$7$" hash, superuser flag) managed over REST (EMQX's
 * /api/v5/authentication/password_based:built_in_database/users) and kept in
 * the replicated table "authdb" (repl/repl.h), so a user added on one node
 * can connect on every node within a link's round trip, and survives
 * restarts in the data dir.
 *
 * In the chain (auth_chain.c) it comes after the password file and before
 * JWT. auth.builtin_db.enable = true (the default) puts it there, but it
 * takes part only while the table holds at least one user: a node whose
 * operator never added one behaves exactly as before (a user name no method
 * knows stays allowed when nothing else is configured and anonymous clients
 * are). false: never asked (the table can still be managed). A user it
 * holds: right password accepted, wrong one refused (0x86); a superuser
 * skips the ACL. A user name it does not hold: the next method is asked.
 *
 * Threads: any. The table's lock guards the entries; n_users (an atomic)
 * makes "is it active" free on every CONNECT. A check costs one PBKDF2 of
 * AUTH_BUILTIN_ITER iterations on the worker (inline like the password file).
 */
#ifndef HQ_AUTH_AUTH_BUILTIN_H
#define HQ_AUTH_AUTH_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_builtin;
struct repl;

#define AUTH_BUILTIN_ITER 1000      /* PBKDF2-SHA512 rounds: ~1 ms per CONNECT */
#define AUTH_BUILTIN_ID_MAX 255
#define AUTH_BUILTIN_PW_MAX 1024

struct auth_builtin *auth_builtin_new(struct repl *r);
void auth_builtin_free(struct auth_builtin *db);
/* Holds at least one user (relaxed atomic read). */
bool auth_builtin_active(const struct auth_builtin *db);

enum auth_builtin_verdict { AB_UNKNOWN = 0, AB_OK, AB_WRONG };
enum auth_builtin_verdict auth_builtin_check(struct auth_builtin *db, const char *user,
					     const uint8_t *pw, size_t pwlen, bool *superuser);

/* ---- management (the REST routes) ----
 * HQ_OK, HQ_EINVAL (*why: an empty or too long id or password), HQ_EEXIST,
 * HQ_ENOTFOUND, HQ_EIO (no random bytes for a salt) */
int auth_builtin_add(struct auth_builtin *db, const char *user, const char *pw, bool superuser,
		     const char **why);
/* pw NULL: unchanged; superuser < 0: unchanged */
int auth_builtin_update(struct auth_builtin *db, const char *user, const char *pw, int superuser,
			const char **why);
int auth_builtin_delete(struct auth_builtin *db, const char *user);
int auth_builtin_get(struct auth_builtin *db, const char *user, bool *superuser);

struct auth_builtin_user {
	char user_id[AUTH_BUILTIN_ID_MAX + 1];
	bool superuser;
};
/* Users in id order from offset, at most limit: *out is the caller's
 * (hq_free); *total counts all of them. */
void auth_builtin_list(struct auth_builtin *db, size_t offset, size_t limit,
		       struct auth_builtin_user **out, size_t *n, size_t *total);

#endif
