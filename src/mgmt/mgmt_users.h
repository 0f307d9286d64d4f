/*
 * mgmt_users.h - the management API's principals: dashboard users (name,
 * role, PBKDF2-SHA512 password hash, "must change" flag) and API keys (name,
 * public key id, salted SHA-256 of the secret, enable, expiry), kept in one
 * JSON file in the node's data dir (written to a temporary file, 0600, then
 * renamed over the old one, so a crash leaves the old or the new table).
 *
 * This interface is the table's only door; once attached (mgmt_repl.c) the
 * table is replicated across the cluster behind the same functions.
 *
 * Threads: every function may be called from any thread (MHD's connection
 * threads); one mutex guards the table. Password hashing (PBKDF2, ~10 ms)
 * runs outside the lock.
 *
 * Secret hashes: user passwords are chosen by people, so they get PBKDF2 (a
 * slow hash against offline guessing). API secrets are 32 random bytes made
 * here: a guess has 2^-256 odds whatever the hash costs, so one salted
 * SHA-256 suffices and every Basic-authenticated request stays cheap.
 */
#ifndef HQ_MGMT_MGMT_USERS_H
#define HQ_MGMT_MGMT_USERS_H

#include "mgmt/mgmt_token.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct mgmt_users;

#define MGMT_USERS_FILE "mgmt_users.json"   /* in node.data_dir */
#define MGMT_CTL_KEY_FILE "ctl.key"         /* in node.data_dir: "key:secret" for hamqtt-ctl */
#define MGMT_DEFAULT_USER "admin"
#define MGMT_DEFAULT_PASSWORD "public"      /* the guide's; must be changed at first login */
#define MGMT_PWD_MIN 8
#define MGMT_PWD_MAX 128
#define MGMT_PBKDF2_ITER 10000

/* Who a request runs as, after authentication. */
struct mgmt_principal {
	char name[MGMT_NAME_MAX];  /* user name, or API key name */
	bool is_key;               /* authenticated with an API key (Basic) */
	enum mgmt_role role;
	bool must_change;          /* only change_pwd / logout allowed */
};

/* Load <data_dir>/mgmt_users.json, or create it with the default admin: its
 * password read from default_pw_file (first line) when that is set and
 * non-empty, else "public" flagged must-change. NULL with err on a bad file. */
struct mgmt_users *mgmt_users_open(const char *data_dir, const char *default_pw_file,
				   char *err, size_t errlen);
void mgmt_users_free(struct mgmt_users *u);

/* Make the in-memory local API key (administrator; new at each start, never
 * in the table file) and write "key:secret\n" to <data_dir>/ctl.key (0600). */
int mgmt_users_write_ctl_key(struct mgmt_users *u, char *err, size_t errlen);

/* ---- users; HQ_OK or HQ_ENOTFOUND / HQ_EEXIST / HQ_EINVAL (why set) / HQ_EAUTH / HQ_EIO ---- */
int mgmt_users_login(struct mgmt_users *u, const char *name, const char *pw,
		     struct mgmt_principal *out);
/* Is name a user of this table; *pwd_changed_ms when it last changed its
 * password (unix ms; tokens issued before are refused). */
bool mgmt_users_exists(struct mgmt_users *u, const char *name, int64_t *pwd_changed_ms);
int mgmt_users_add(struct mgmt_users *u, const char *name, const char *pw, enum mgmt_role role,
		   const char *desc, const char **why);
/* role < 0 / desc NULL: unchanged */
int mgmt_users_update(struct mgmt_users *u, const char *name, int role, const char *desc);
int mgmt_users_delete(struct mgmt_users *u, const char *name, const char **why);
int mgmt_users_change_pwd(struct mgmt_users *u, const char *name, const char *old_pw,
			  const char *new_pw, const char **why);
/* [{"username","role","description","password_change_required"}] */
struct cJSON *mgmt_users_list(struct mgmt_users *u);
struct cJSON *mgmt_users_get(struct mgmt_users *u, const char *name);

/* ---- API keys ---- */
/* expired_at: unix seconds, 0 = never. Returns the key's JSON with
 * "api_secret" (the only time it is shown), or NULL (HQ_* in *rc). */
struct cJSON *mgmt_keys_create(struct mgmt_users *u, const char *name, const char *desc,
			       bool enable, int64_t expired_at, int *rc, const char **why);
struct cJSON *mgmt_keys_list(struct mgmt_users *u);
struct cJSON *mgmt_keys_get(struct mgmt_users *u, const char *name);
/* enable < 0 / desc NULL / expired_at < 0: unchanged */
struct cJSON *mgmt_keys_update(struct mgmt_users *u, const char *name, int enable,
			       const char *desc, int64_t expired_at, int *rc);
int mgmt_keys_delete(struct mgmt_users *u, const char *name);
/* Basic auth: HQ_OK (out filled), HQ_EAUTH (unknown, wrong, disabled or expired) */
int mgmt_keys_check(struct mgmt_users *u, const char *key, const char *secret, int64_t now_s,
		    struct mgmt_principal *out);

/* ---- cluster-wide (mgmt_repl.c; the replicated table "mgmt", repl/repl.h) ----
 * Attach once the broker made its tables (http_server_attach): from then on
 * users and keys hold on every node. Detach before the tables go. */
struct repl;
int mgmt_users_attach(struct mgmt_users *u, struct repl *r);
void mgmt_users_detach(struct mgmt_users *u);
/* A token revoked by logout, cluster-wide until its expiry (unix s). */
int mgmt_users_revoke(struct mgmt_users *u, const char *jti, int64_t exp_s);
bool mgmt_users_revoked(struct mgmt_users *u, const char *jti);

/* "infinity" or an RFC 3339 UTC time; unix seconds or -1 for anything else */
int64_t mgmt_time_parse(const struct cJSON *v);

#endif
