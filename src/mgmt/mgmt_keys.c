/*
 * mgmt_keys.c - the API keys of the management table (mgmt_users.h): made
 * here with 32 random secret bytes, stored as salted SHA-256 (why: see
 * mgmt_users.h), checked on every Basic-authenticated request; and the
 * local hamqtt-ctl key, which lives in memory and in its file only.
 */
#include "mgmt/mgmt_int.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void mgmt_secret_hash(const char *salt, const char *secret, char out[65])
{
	uint8_t md[32];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, salt, strlen(salt)) ||
	    !EVP_DigestUpdate(ctx, secret, strlen(secret)) || !EVP_DigestFinal_ex(ctx, md, &len))
		memset(md, 0, sizeof(md)); /* all-zero never equals a stored hash's hex by chance */
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int mgmt_users_write_ctl_key(struct mgmt_users *u, char *err, size_t errlen)
{
	char secret[2 * KEY_SECRET_BYTES + 1], line[256];
	struct apikey k = { .enable = true };
	snprintf(k.name, sizeof(k.name), "hamqtt-ctl");
	if (mgmt_rand_hex(k.id, KEY_ID_BYTES) || mgmt_rand_hex(k.salt, KEY_SALT_BYTES) ||
	    mgmt_rand_hex(secret, KEY_SECRET_BYTES)) {
		snprintf(err, errlen, "no random bytes for the local API key");
		return HQ_EIO;
	}
	mgmt_secret_hash(k.salt, secret, k.hash);
	snprintf(line, sizeof(line), "%s:%s\n", k.id, secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	int rc = fs_write_atomic(u->ctl_path, line, strlen(line), 0600);
	OPENSSL_cleanse(line, sizeof(line));
	if (rc != HQ_OK) {
		snprintf(err, errlen, "%s: %s", u->ctl_path, strerror(errno));
		return rc;
	}
	pthread_mutex_lock(&u->mu);
	u->ctl = k;
	pthread_mutex_unlock(&u->mu);
	return HQ_OK;
}

/* ---- API keys ---- */

static struct apikey **find_key(struct mgmt_users *u, const char *name)
{
	struct apikey **p = &u->keys;
	while (*p && strcmp((*p)->name, name))
		p = &(*p)->next;
	return p;
}

static cJSON *key_json(const struct apikey *k, int64_t now)
{
	char exp[32], cre[32];
	mgmt_fmt_time(k->expired_at, exp, sizeof(exp));
	mgmt_fmt_time(k->created_at, cre, sizeof(cre));
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "name", k->name) ||
	    !cJSON_AddStringToObject(o, "api_key", k->id) ||
	    !cJSON_AddStringToObject(o, "desc", k->desc ? k->desc : "") ||
	    !cJSON_AddBoolToObject(o, "enable", k->enable) ||
	    !cJSON_AddStringToObject(o, "expired_at", exp) ||
	    !cJSON_AddStringToObject(o, "created_at", cre) ||
	    !cJSON_AddBoolToObject(o, "expired", k->expired_at > 0 && k->expired_at <= now)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *mgmt_keys_create(struct mgmt_users *u, const char *name, const char *desc, bool enable,
			int64_t expired_at, int *rc, const char **why)
{
	char secret[2 * KEY_SECRET_BYTES + 1];
	*rc = HQ_EINVAL;
	if (!mgmt_name_ok(name)) {
		*why = "name must be 1 to 63 characters of [A-Za-z0-9_.-]";
		return NULL;
	}
	struct apikey *k = hq_calloc(1, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	if (mgmt_rand_hex(k->id, KEY_ID_BYTES) || mgmt_rand_hex(k->salt, KEY_SALT_BYTES) ||
	    mgmt_rand_hex(secret, KEY_SECRET_BYTES)) {
		free(k);
		*rc = HQ_EIO;
		*why = "no random bytes";
		return NULL;
	}
	mgmt_secret_hash(k->salt, secret, k->hash);
	k->enable = enable;
	k->expired_at = expired_at;
	k->created_at = (int64_t)time(NULL);
	k->desc = hq_strdup(desc ? desc : "");
	cJSON *o = NULL;
	pthread_mutex_lock(&u->mu);
	if (*find_key(u, name)) {
		*rc = HQ_EEXIST;
		*why = "an API key with this name exists";
	} else {
		k->next = u->keys;
		u->keys = k;
		*rc = mgmt_save_locked(u);
		if (*rc == HQ_OK)
			mgmt_repl_key(u, name);
		*why = "cannot save the key table";
		if (*rc == HQ_OK) {
			o = key_json(k, k->created_at);
			if (o && !cJSON_AddStringToObject(o, "api_secret", secret)) {
				cJSON_Delete(o);
				o = NULL;
			}
		} else {
			u->keys = k->next;
		}
	}
	bool linked = *rc == HQ_OK; /* else k is not in the table: ours to free */
	pthread_mutex_unlock(&u->mu);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (!linked) {
		free(k->desc);
		free(k);
	}
	return o;
}

cJSON *mgmt_keys_list(struct mgmt_users *u)
{
	int64_t now = (int64_t)time(NULL);
	cJSON *a = cJSON_CreateArray();
	pthread_mutex_lock(&u->mu);
	for (struct apikey *k = u->keys; a && k; k = k->next) {
		cJSON *o = key_json(k, now);
		if (!o || !cJSON_AddItemToArray(a, o)) {
			cJSON_Delete(o);
			cJSON_Delete(a);
			a = NULL;
		}
	}
	pthread_mutex_unlock(&u->mu);
	return a;
}

cJSON *mgmt_keys_get(struct mgmt_users *u, const char *name)
{
	pthread_mutex_lock(&u->mu);
	struct apikey *k = *find_key(u, name);
	cJSON *o = k ? key_json(k, (int64_t)time(NULL)) : NULL;
	pthread_mutex_unlock(&u->mu);
	return o;
}

cJSON *mgmt_keys_update(struct mgmt_users *u, const char *name, int enable, const char *desc,
			int64_t expired_at, int *rc)
{
	cJSON *o = NULL;
	pthread_mutex_lock(&u->mu);
	struct apikey *k = *find_key(u, name);
	*rc = HQ_ENOTFOUND;
	if (k) {
		if (enable >= 0)
			k->enable = enable;
		if (desc) {
			free(k->desc);
			k->desc = hq_strdup(desc);
		}
		if (expired_at >= 0)
			k->expired_at = expired_at;
		*rc = mgmt_save_locked(u);
		mgmt_repl_key(u, name);
		if (*rc == HQ_OK)
			o = key_json(k, (int64_t)time(NULL));
	}
	pthread_mutex_unlock(&u->mu);
	return o;
}

int mgmt_keys_delete(struct mgmt_users *u, const char *name)
{
	pthread_mutex_lock(&u->mu);
	struct apikey **p = find_key(u, name), *k = *p;
	int rc = HQ_ENOTFOUND;
	if (k) {
		*p = k->next;
		free(k->desc);
		free(k);
		rc = mgmt_save_locked(u);
		mgmt_repl_key(u, name);
	}
	pthread_mutex_unlock(&u->mu);
	return rc;
}

static bool key_matches(const struct apikey *k, const char *key, const char *secret, int64_t now)
{
	char h[65];
	if (!k->id[0] || strcmp(k->id, key))
		return false;
	mgmt_secret_hash(k->salt, secret, h);
	return CRYPTO_memcmp(h, k->hash, 64) == 0 && k->enable &&
	       (k->expired_at == 0 || now < k->expired_at);
}

int mgmt_keys_check(struct mgmt_users *u, const char *key, const char *secret, int64_t now_s,
		    struct mgmt_principal *out)
{
	memset(out, 0, sizeof(*out));
	if (!key || !secret)
		return HQ_EAUTH;
	int rc = HQ_EAUTH;
	pthread_mutex_lock(&u->mu);
	const struct apikey *hit = key_matches(&u->ctl, key, secret, now_s) ? &u->ctl : NULL;
	for (struct apikey *k = u->keys; !hit && k; k = k->next)
		if (key_matches(k, key, secret, now_s))
			hit = k;
	if (hit) {
		snprintf(out->name, sizeof(out->name), "%s", hit->name);
		out->is_key = true;
		out->role = MGMT_ROLE_ADMIN; /* EMQX's API keys carry the administrator role */
		rc = HQ_OK;
	}
	pthread_mutex_unlock(&u->mu);
	return rc;
}

