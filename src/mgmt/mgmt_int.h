/*
 * mgmt_int.h - private to src/mgmt/: the table's structs and the helpers
 * mgmt_users.c (users, the file) and mgmt_keys.c (API keys) share. Every
 * field below is guarded by mgmt_users.mu.
 */
#ifndef HQ_MGMT_MGMT_INT_H
#define HQ_MGMT_MGMT_INT_H

#include "mgmt/mgmt_users.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define HASH_STR_MAX 256
#define KEY_ID_BYTES 8      /* api_key: 16 hex chars, a public identifier */
#define KEY_SECRET_BYTES 32 /* api_secret: 256 random bits */
#define KEY_SALT_BYTES 16

struct user {
	struct user *next;
	char name[MGMT_NAME_MAX];
	enum mgmt_role role;
	char hash[HASH_STR_MAX]; /* "$7$..." */
	bool must_change;
	int64_t pwd_changed_ms;   /* tokens issued before this are refused here */
	char *desc;
};

struct apikey {
	struct apikey *next;
	char name[MGMT_NAME_MAX];
	char id[2 * KEY_ID_BYTES + 1];
	char salt[2 * KEY_SALT_BYTES + 1];
	char hash[65];           /* hex SHA-256(salt || secret) */
	bool enable;
	int64_t expired_at;      /* unix s, 0 = never */
	int64_t created_at;
	char *desc;
};

struct mgmt_users {
	pthread_mutex_t mu;
	char *path;                /* the table file */
	char *ctl_path;            /* the local key file */
	struct user *users;
	struct apikey *keys;
	struct apikey ctl;         /* the local hamqtt-ctl key; id[0] == 0 until made */
	/* the replicated table "mgmt" (mgmt_repl.c), NULL until attached */
	struct repl_table *repl;
	bool created_now;          /* the default admin was made at this start */
};

/* [A-Za-z0-9_.-], 1..MGMT_NAME_MAX-1 bytes */
bool mgmt_name_ok(const char *s);
/* hex SHA-256(salt || secret) */
void mgmt_secret_hash(const char *salt, const char *secret, char out[65]);
/* "infinity" for t <= 0, else RFC 3339 UTC */
void mgmt_fmt_time(int64_t t, char *out, size_t n);
/* Save the whole table; with u->mu held. */
int mgmt_save_locked(struct mgmt_users *u);

/* One user or key as stored (the file's and the replicated table's form). */
struct cJSON *mgmt_user_to_json(const struct user *x);
struct cJSON *mgmt_key_to_json(const struct apikey *k);
struct user *mgmt_user_from_json(const struct cJSON *x, const char **why);
struct apikey *mgmt_key_from_json(const struct cJSON *x, const char **why);

/* mgmt_repl.c, with u->mu held: tell the cluster the current state of user
 * (or key) name here: its entry, or a delete when it is gone. No-op until
 * attached. */
void mgmt_repl_user(struct mgmt_users *u, const char *name);
void mgmt_repl_key(struct mgmt_users *u, const char *name);

#endif
