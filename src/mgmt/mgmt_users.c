/*
 * mgmt_users.c - the user and API key table (mgmt_users.h): a linked list of
 * each under one mutex, saved whole as JSON after every change; the users
 * and the file here, the API keys in mgmt_keys.c.
 */
#include "mgmt/mgmt_int.h"
#include "auth/auth_passwd.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/mem.h"
#include "core/rand.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bool mgmt_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n >= MGMT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

void mgmt_fmt_time(int64_t t, char *out, size_t n)
{
	if (t <= 0) {
		snprintf(out, n, "infinity");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t mgmt_time_parse(const cJSON *v)
{
	if (cJSON_IsNull(v))
		return 0;
	/* at most 9999-12-31T23:59:59Z, as a string can say: a larger double
	 * (1e300, inf) does not fit an int64_t (undefined behaviour; fuzz_http) */
	if (cJSON_IsNumber(v))
		return v->valuedouble >= 0 && v->valuedouble <= 253402300799.0 ?
		       (int64_t)v->valuedouble : -1;
	if (!cJSON_IsString(v))
		return -1;
	if (!strcmp(v->valuestring, "infinity"))
		return 0;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *e = strptime(v->valuestring, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!e)
		return -1;
	if (*e == '.') /* fractional seconds: ignored */
		for (e++; *e >= '0' && *e <= '9'; e++)
			;
	int64_t off = 0;
	if ((*e == '+' || *e == '-') && strlen(e) == 6 && e[3] == ':') {
		off = ((e[1] - '0') * 10 + (e[2] - '0')) * 3600 + ((e[4] - '0') * 10 + (e[5] - '0')) * 60;
		if (*e == '-')
			off = -off;
	} else if (strcmp(e, "Z") && strcmp(e, "")) {
		return -1;
	}
	return (int64_t)timegm(&tm) - off;
}

/* ---- persistence ---- */

cJSON *mgmt_user_to_json(const struct user *x)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "username", x->name) ||
	    !cJSON_AddStringToObject(o, "role", mgmt_role_name(x->role)) ||
	    !cJSON_AddStringToObject(o, "password_hash", x->hash) ||
	    !cJSON_AddBoolToObject(o, "must_change", x->must_change) ||
	    !cJSON_AddNumberToObject(o, "pwd_changed_ms", (double)x->pwd_changed_ms) ||
	    !cJSON_AddStringToObject(o, "description", x->desc ? x->desc : "")) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *mgmt_key_to_json(const struct apikey *k)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "name", k->name) ||
	    !cJSON_AddStringToObject(o, "api_key", k->id) ||
	    !cJSON_AddStringToObject(o, "salt", k->salt) ||
	    !cJSON_AddStringToObject(o, "secret_sha256", k->hash) ||
	    !cJSON_AddBoolToObject(o, "enable", k->enable) ||
	    !cJSON_AddNumberToObject(o, "expired_at", (double)k->expired_at) ||
	    !cJSON_AddNumberToObject(o, "created_at", (double)k->created_at) ||
	    !cJSON_AddStringToObject(o, "desc", k->desc ? k->desc : "")) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *to_json_locked(struct mgmt_users *u)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *ua = cJSON_AddArrayToObject(doc, "users");
	cJSON *ka = cJSON_AddArrayToObject(doc, "api_keys");
	if (!ua || !ka)
		goto fail;
	for (struct user *x = u->users; x; x = x->next) {
		cJSON *o = mgmt_user_to_json(x);
		if (!o || !cJSON_AddItemToArray(ua, o))
			goto fail;
	}
	for (struct apikey *k = u->keys; k; k = k->next) {
		cJSON *o = mgmt_key_to_json(k);
		if (!o || !cJSON_AddItemToArray(ka, o))
			goto fail;
	}
	return doc;
fail:
	cJSON_Delete(doc);
	return NULL;
}

int mgmt_save_locked(struct mgmt_users *u)
{
	cJSON *doc = to_json_locked(u);
	char *text = doc ? cJSON_Print(doc) : NULL;
	cJSON_Delete(doc);
	if (!text)
		return HQ_ENOMEM;
	int rc = fs_write_atomic(u->path, text, strlen(text), 0600);
	free(text);
	return rc;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

struct user *mgmt_user_from_json(const cJSON *x, const char **why)
{
	const char *name = jstr(x, "username"), *hash = jstr(x, "password_hash");
	struct user *n = hq_calloc(1, sizeof(*n));
	struct passwd_hash ph;
	const char *pw_why;
	if (!mgmt_name_ok(name) || !hash || strlen(hash) >= HASH_STR_MAX ||
	    passwd_hash_parse(hash, strlen(hash), &ph, &pw_why) != 0 ||
	    mgmt_role_parse(jstr(x, "role"), &n->role) != 0) {
		*why = "a user with a bad name, role or password_hash";
		free(n);
		return NULL;
	}
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->hash, sizeof(n->hash), "%s", hash);
	n->must_change = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "must_change"));
	n->pwd_changed_ms = (int64_t)jnum(x, "pwd_changed_ms");
	n->desc = hq_strdup(jstr(x, "description") ? jstr(x, "description") : "");
	return n;
}

struct apikey *mgmt_key_from_json(const cJSON *x, const char **why)
{
	const char *name = jstr(x, "name"), *id = jstr(x, "api_key"), *salt = jstr(x, "salt"),
		   *hash = jstr(x, "secret_sha256");
	struct apikey *k = hq_calloc(1, sizeof(*k));
	if (!mgmt_name_ok(name) || !id || strlen(id) != sizeof(k->id) - 1 || !salt ||
	    strlen(salt) != sizeof(k->salt) - 1 || !hash || strlen(hash) != 64) {
		*why = "an API key with a bad name, api_key, salt or secret_sha256";
		free(k);
		return NULL;
	}
	snprintf(k->name, sizeof(k->name), "%s", name);
	memcpy(k->id, id, sizeof(k->id));
	memcpy(k->salt, salt, sizeof(k->salt));
	memcpy(k->hash, hash, sizeof(k->hash));
	k->enable = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "enable"));
	k->expired_at = (int64_t)jnum(x, "expired_at");
	k->created_at = (int64_t)jnum(x, "created_at");
	k->desc = hq_strdup(jstr(x, "desc") ? jstr(x, "desc") : "");
	return k;
}

static int load_json(struct mgmt_users *u, const char *text, const char **why)
{
	cJSON *doc = cJSON_Parse(text);
	const cJSON *x;
	int rc = HQ_EINVAL;
	*why = "not JSON";
	if (!doc)
		return rc;
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(doc, "users")) {
		struct user *n = mgmt_user_from_json(x, why);
		if (!n)
			goto out;
		n->next = u->users;
		u->users = n;
	}
	cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(doc, "api_keys")) {
		struct apikey *k = mgmt_key_from_json(x, why);
		if (!k)
			goto out;
		k->next = u->keys;
		u->keys = k;
	}
	rc = HQ_OK;
out:
	cJSON_Delete(doc);
	return rc;
}

static char *read_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = hq_malloc(max + 1);
	size_t n = fread(buf, 1, max, f);
	int bad = ferror(f) || !feof(f);
	fclose(f);
	if (bad) {
		free(buf);
		errno = bad && errno == 0 ? EFBIG : errno;
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static struct user *new_user(const char *name, enum mgmt_role role, const char *hash,
			     bool must_change, const char *desc)
{
	struct user *n = hq_calloc(1, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->hash, sizeof(n->hash), "%s", hash);
	n->role = role;
	n->must_change = must_change;
	n->pwd_changed_ms = clock_wall_ms();
	n->desc = hq_strdup(desc ? desc : "");
	return n;
}

static int make_hash(const char *pw, char out[HASH_STR_MAX])
{
	return passwd_hash_make((const uint8_t *)pw, strlen(pw), MGMT_PBKDF2_ITER, out,
				HASH_STR_MAX) == 0 ? HQ_OK : HQ_EIO;
}

/* The first account of a fresh node. */
static int create_default(struct mgmt_users *u, const char *pw_file, char *err, size_t errlen)
{
	char pw[MGMT_PWD_MAX + 2] = MGMT_DEFAULT_PASSWORD, hash[HASH_STR_MAX];
	bool must_change = true;
	if (pw_file && *pw_file) {
		char *text = read_file(pw_file, 4096);
		if (!text) {
			snprintf(err, errlen, "dashboard.default_password_file: %s: %s", pw_file,
				 strerror(errno));
			return HQ_EIO;
		}
		size_t n = strcspn(text, "\r\n");
		if (n < MGMT_PWD_MIN || n > MGMT_PWD_MAX) {
			free(text);
			snprintf(err, errlen, "dashboard.default_password_file: %s: the first line must "
				 "hold a password of %d to %d bytes", pw_file, MGMT_PWD_MIN, MGMT_PWD_MAX);
			return HQ_EINVAL;
		}
		memcpy(pw, text, n);
		pw[n] = '\0';
		OPENSSL_cleanse(text, n);
		free(text);
		must_change = false;
	}
	int rc = make_hash(pw, hash);
	OPENSSL_cleanse(pw, sizeof(pw));
	if (rc != HQ_OK) {
		snprintf(err, errlen, "cannot hash the default password (no random bytes?)");
		return rc;
	}
	u->users = new_user(MGMT_DEFAULT_USER, MGMT_ROLE_ADMIN, hash, must_change,
			    "the default administrator");
	u->created_now = true;   /* not told to a cluster until changed (mgmt_repl.c) */
	if (mgmt_save_locked(u) != HQ_OK) {
		snprintf(err, errlen, "%s: %s", u->path, strerror(errno));
		return HQ_EIO;
	}
	return HQ_OK;
}

struct mgmt_users *mgmt_users_open(const char *data_dir, const char *default_pw_file,
				   char *err, size_t errlen)
{
	struct mgmt_users *u = hq_calloc(1, sizeof(*u));
	const char *dir = data_dir && *data_dir ? data_dir : ".";
	pthread_mutex_init(&u->mu, NULL);
	if (asprintf(&u->path, "%s/%s", dir, MGMT_USERS_FILE) < 0 ||
	    asprintf(&u->ctl_path, "%s/%s", dir, MGMT_CTL_KEY_FILE) < 0)
		abort();
	char *text = read_file(u->path, 16u << 20);
	if (!text) {
		if (errno == ENOENT && create_default(u, default_pw_file, err, errlen) == HQ_OK)
			return u;
		if (errno != ENOENT)
			snprintf(err, errlen, "%s: %s", u->path, strerror(errno));
		mgmt_users_free(u);
		return NULL;
	}
	const char *why = NULL;
	int rc = load_json(u, text, &why);
	free(text);
	if (rc != HQ_OK) {
		snprintf(err, errlen, "%s: %s", u->path, why);
		mgmt_users_free(u);
		return NULL;
	}
	return u;
}

void mgmt_users_free(struct mgmt_users *u)
{
	if (!u)
		return;
	for (struct user *x = u->users, *n; x; x = n) {
		n = x->next;
		OPENSSL_cleanse(x->hash, sizeof(x->hash));
		free(x->desc);
		free(x);
	}
	for (struct apikey *k = u->keys, *n; k; k = n) {
		n = k->next;
		free(k->desc);
		free(k);
	}
	pthread_mutex_destroy(&u->mu);
	free(u->path);
	free(u->ctl_path);
	free(u);
}


/* ---- users ---- */

static struct user **find_user(struct mgmt_users *u, const char *name)
{
	struct user **p = &u->users;
	while (*p && strcmp((*p)->name, name))
		p = &(*p)->next;
	return p;
}

static const char *pwd_bad(const char *pw)
{
	size_t n = pw ? strlen(pw) : 0;
	if (n < MGMT_PWD_MIN || n > MGMT_PWD_MAX)
		return "password must be 8 to 128 bytes";
	return NULL;
}

int mgmt_users_login(struct mgmt_users *u, const char *name, const char *pw,
		     struct mgmt_principal *out)
{
	struct passwd_hash h;
	const char *why;
	bool found = false;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&u->mu);
	struct user *x = name ? *find_user(u, name) : NULL;
	if (x && passwd_hash_parse(x->hash, strlen(x->hash), &h, &why) == 0) {
		found = true;
		snprintf(out->name, sizeof(out->name), "%s", x->name);
		out->role = x->role;
		out->must_change = x->must_change;
	}
	pthread_mutex_unlock(&u->mu);
	/* the slow hash runs unlocked; an unknown user costs the same, so timing
	 * does not tell which names exist */
	if (!found) {
		char dummy[HASH_STR_MAX];
		make_hash("not a user", dummy);
		return HQ_EAUTH;
	}
	int ok = pw && passwd_hash_verify(&h, (const uint8_t *)pw, strlen(pw)) == 1;
	OPENSSL_cleanse(&h, sizeof(h));
	return ok ? HQ_OK : HQ_EAUTH;
}

bool mgmt_users_exists(struct mgmt_users *u, const char *name, int64_t *pwd_changed_ms)
{
	pthread_mutex_lock(&u->mu);
	struct user *x = *find_user(u, name);
	if (x && pwd_changed_ms)
		*pwd_changed_ms = x->pwd_changed_ms;
	pthread_mutex_unlock(&u->mu);
	return x != NULL;
}

int mgmt_users_add(struct mgmt_users *u, const char *name, const char *pw, enum mgmt_role role,
		   const char *desc, const char **why)
{
	char hash[HASH_STR_MAX];
	if (!mgmt_name_ok(name)) {
		*why = "username must be 1 to 63 characters of [A-Za-z0-9_.-]";
		return HQ_EINVAL;
	}
	if ((*why = pwd_bad(pw)))
		return HQ_EINVAL;
	if (make_hash(pw, hash) != HQ_OK) {
		*why = "cannot hash the password";
		return HQ_EIO;
	}
	pthread_mutex_lock(&u->mu);
	int rc = HQ_EEXIST;
	if (!*find_user(u, name)) {
		struct user *n = new_user(name, role, hash, false, desc);
		n->next = u->users;
		u->users = n;
		rc = mgmt_save_locked(u);
		mgmt_repl_user(u, name);
	}
	pthread_mutex_unlock(&u->mu);
	*why = rc == HQ_EEXIST ? "user already exists" : "cannot save the user table";
	return rc;
}

static int admin_count_locked(struct mgmt_users *u)
{
	int n = 0;
	for (struct user *x = u->users; x; x = x->next)
		n += x->role == MGMT_ROLE_ADMIN;
	return n;
}

int mgmt_users_update(struct mgmt_users *u, const char *name, int role, const char *desc)
{
	pthread_mutex_lock(&u->mu);
	struct user *x = *find_user(u, name);
	int rc = HQ_ENOTFOUND;
	if (x && x->role == MGMT_ROLE_ADMIN && role == MGMT_ROLE_VIEWER &&
	    admin_count_locked(u) == 1) {
		rc = HQ_EINVAL; /* the last administrator stays one */
	} else if (x) {
		if (role >= 0)
			x->role = (enum mgmt_role)role;
		if (desc) {
			free(x->desc);
			x->desc = hq_strdup(desc);
		}
		rc = mgmt_save_locked(u);
		mgmt_repl_user(u, name);
	}
	pthread_mutex_unlock(&u->mu);
	return rc;
}

int mgmt_users_delete(struct mgmt_users *u, const char *name, const char **why)
{
	pthread_mutex_lock(&u->mu);
	struct user **p = find_user(u, name), *x = *p;
	int rc = HQ_ENOTFOUND;
	*why = "no such user";
	if (x && x->role == MGMT_ROLE_ADMIN && admin_count_locked(u) == 1) {
		/* the table must keep a way in besides the local ctl key */
		rc = HQ_EINVAL;
		*why = "cannot delete the last administrator";
	} else if (x) {
		*p = x->next;
		free(x->desc);
		free(x);
		rc = mgmt_save_locked(u);
		mgmt_repl_user(u, name);
		*why = "cannot save the user table";
	}
	pthread_mutex_unlock(&u->mu);
	return rc;
}

int mgmt_users_change_pwd(struct mgmt_users *u, const char *name, const char *old_pw,
			  const char *new_pw, const char **why)
{
	struct mgmt_principal p;
	char hash[HASH_STR_MAX];
	if ((*why = pwd_bad(new_pw)))
		return HQ_EINVAL;
	if (old_pw && !strcmp(old_pw, new_pw)) {
		*why = "the new password must differ from the old one";
		return HQ_EINVAL;
	}
	if (mgmt_users_login(u, name, old_pw, &p) != HQ_OK) {
		*why = "wrong old password";
		return HQ_EAUTH;
	}
	if (make_hash(new_pw, hash) != HQ_OK) {
		*why = "cannot hash the password";
		return HQ_EIO;
	}
	pthread_mutex_lock(&u->mu);
	struct user *x = *find_user(u, name);
	int rc = HQ_ENOTFOUND;
	*why = "no such user";
	if (x) {
		snprintf(x->hash, sizeof(x->hash), "%s", hash);
		x->must_change = false;
		x->pwd_changed_ms = clock_wall_ms();
		rc = mgmt_save_locked(u);
		mgmt_repl_user(u, name);
		*why = "cannot save the user table";
	}
	pthread_mutex_unlock(&u->mu);
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

static cJSON *user_json(const struct user *x)
{
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "username", x->name) ||
	    !cJSON_AddStringToObject(o, "role", mgmt_role_name(x->role)) ||
	    !cJSON_AddStringToObject(o, "description", x->desc ? x->desc : "") ||
	    !cJSON_AddBoolToObject(o, "password_change_required", x->must_change)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *mgmt_users_list(struct mgmt_users *u)
{
	cJSON *a = cJSON_CreateArray();
	pthread_mutex_lock(&u->mu);
	for (struct user *x = u->users; a && x; x = x->next) {
		cJSON *o = user_json(x);
		if (!o || !cJSON_AddItemToArray(a, o)) {
			cJSON_Delete(o);
			cJSON_Delete(a);
			a = NULL;
		}
	}
	pthread_mutex_unlock(&u->mu);
	return a;
}

cJSON *mgmt_users_get(struct mgmt_users *u, const char *name)
{
	pthread_mutex_lock(&u->mu);
	struct user *x = *find_user(u, name);
	cJSON *o = x ? user_json(x) : NULL;
	pthread_mutex_unlock(&u->mu);
	return o;
}

