/*
 * test_mgmt.c - unit tests for src/mgmt/: dashboard token signing and
 * checking (mgmt_token.c) and the user / API key table (mgmt_users.c) with
 * its file in a temporary data dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "core/conf.h"
#include "core/err.h"
#include "mgmt/mgmt_token.h"
#include "mgmt/mgmt_users.h"

static char err[512];

static void claims(struct mgmt_claims *c, int64_t iat, int64_t exp)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->user, sizeof(c->user), "alice");
	snprintf(c->node, sizeof(c->node), "hamqtt@127.0.0.1");
	c->role = MGMT_ROLE_VIEWER;
	c->must_change = true;
	c->iat_ms = iat;
	c->exp = exp;
}

static void test_token_roundtrip(void **state)
{
	(void)state;
	uint8_t key[MGMT_KEY_LEN], other[MGMT_KEY_LEN];
	assert_int_equal(mgmt_token_key("cookie-a", NULL, key, err, sizeof(err)), 0);
	assert_int_equal(mgmt_token_key("cookie-b", NULL, other, err, sizeof(err)), 0);
	assert_memory_not_equal(key, other, MGMT_KEY_LEN);
	struct mgmt_claims c, out;
	claims(&c, 1000000, 2000);
	char *tok = mgmt_token_sign(key, &c);
	assert_non_null(tok);
	assert_int_equal(strlen(c.jti), MGMT_JTI_LEN);
	assert_int_equal(mgmt_token_verify(key, tok, 1500, &out), MGMT_TOKEN_OK);
	assert_string_equal(out.user, "alice");
	assert_string_equal(out.node, "hamqtt@127.0.0.1");
	assert_string_equal(out.jti, c.jti);
	assert_int_equal(out.role, MGMT_ROLE_VIEWER);
	assert_true(out.must_change);
	assert_int_equal(out.exp, 2000);
	/* expired at exp; another key (cookie) refuses it */
	assert_int_equal(mgmt_token_verify(key, tok, 2000, &out), MGMT_TOKEN_EXPIRED);
	assert_int_equal(mgmt_token_verify(other, tok, 1500, &out), MGMT_TOKEN_BAD);
	/* any flipped character breaks it: payload (e.g. role) or MAC */
	for (size_t i = 0; i < strlen(tok); i++) {
		char save = tok[i];
		tok[i] = tok[i] == 'A' ? 'B' : 'A';
		assert_int_not_equal(mgmt_token_verify(key, tok, 1500, &out), MGMT_TOKEN_OK);
		tok[i] = save;
	}
	free(tok);
	assert_int_equal(mgmt_token_verify(key, "", 1500, &out), MGMT_TOKEN_BAD);
	assert_int_equal(mgmt_token_verify(key, "v1..", 1500, &out), MGMT_TOKEN_BAD);
	assert_int_equal(mgmt_token_verify(key, NULL, 1500, &out), MGMT_TOKEN_BAD);
}

static char dir[64];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/hq_test_mgmt_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The public default cookie never keys tokens: a random key file does. */
static void test_token_key_default_cookie(void **state)
{
	(void)state;
	struct hq_config cfg;
	conf_defaults(&cfg);
	assert_string_equal(cfg.node_cookie, MGMT_PUBLIC_COOKIE);
	conf_free(&cfg);
	uint8_t k1[MGMT_KEY_LEN], k2[MGMT_KEY_LEN], pub[MGMT_KEY_LEN];
	assert_int_equal(mgmt_token_key(MGMT_PUBLIC_COOKIE, dir, k1, err, sizeof(err)), 0);
	assert_int_equal(mgmt_token_key("", dir, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, MGMT_KEY_LEN); /* the same file, read back */
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, MGMT_TOKEN_KEY_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* what a forger would compute from the public cookie is not it */
	assert_int_equal(mgmt_token_key("x" MGMT_PUBLIC_COOKIE, NULL, pub, err, sizeof(err)), 0);
	assert_memory_not_equal(k1, pub, MGMT_KEY_LEN);
}

static void test_users_default_admin(void **state)
{
	(void)state;
	struct mgmt_principal p;
	const char *why;
	struct mgmt_users *u = mgmt_users_open(dir, "", err, sizeof(err));
	assert_non_null(u);
	assert_int_equal(mgmt_users_login(u, "admin", "public", &p), HQ_OK);
	assert_true(p.must_change);
	assert_int_equal(p.role, MGMT_ROLE_ADMIN);
	assert_int_equal(mgmt_users_login(u, "admin", "wrong", &p), HQ_EAUTH);
	assert_int_equal(mgmt_users_login(u, "nobody", "public", &p), HQ_EAUTH);
	assert_int_equal(mgmt_users_change_pwd(u, "admin", "public", "short", &why), HQ_EINVAL);
	assert_int_equal(mgmt_users_change_pwd(u, "admin", "bad-old", "longenough1", &why),
			 HQ_EAUTH);
	assert_int_equal(mgmt_users_change_pwd(u, "admin", "public", "longenough1", &why), HQ_OK);
	assert_int_equal(mgmt_users_add(u, "vera", "viewerpass", MGMT_ROLE_VIEWER, "v", &why), HQ_OK);
	assert_int_equal(mgmt_users_add(u, "vera", "viewerpass", MGMT_ROLE_VIEWER, "v", &why),
			 HQ_EEXIST);
	assert_int_equal(mgmt_users_add(u, "bad name", "viewerpass", MGMT_ROLE_VIEWER, "", &why),
			 HQ_EINVAL);
	/* the last administrator stays */
	assert_int_equal(mgmt_users_delete(u, "admin", &why), HQ_EINVAL);
	assert_int_equal(mgmt_users_update(u, "admin", MGMT_ROLE_VIEWER, NULL), HQ_EINVAL);
	assert_int_equal(mgmt_users_update(u, "admin", -1, "still admin"), HQ_OK);
	mgmt_users_free(u);

	/* reopened from the file: the changes are there, the file is 0600 */
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, MGMT_USERS_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	u = mgmt_users_open(dir, "", err, sizeof(err));
	assert_non_null(u);
	assert_int_equal(mgmt_users_login(u, "admin", "public", &p), HQ_EAUTH);
	assert_int_equal(mgmt_users_login(u, "admin", "longenough1", &p), HQ_OK);
	assert_false(p.must_change);
	assert_int_equal(mgmt_users_login(u, "vera", "viewerpass", &p), HQ_OK);
	assert_int_equal(p.role, MGMT_ROLE_VIEWER);
	assert_int_equal(mgmt_users_delete(u, "vera", &why), HQ_OK);
	assert_false(mgmt_users_exists(u, "vera", NULL));
	mgmt_users_free(u);
}

static void test_users_password_file(void **state)
{
	(void)state;
	char sub[128], pwf[160];
	snprintf(sub, sizeof(sub), "%s/pf", dir);
	mkdir(sub, 0700);
	snprintf(pwf, sizeof(pwf), "%s/pw", dir);
	FILE *f = fopen(pwf, "w");
	fputs("from-the-file\n", f);
	fclose(f);
	struct mgmt_principal p;
	struct mgmt_users *u = mgmt_users_open(sub, pwf, err, sizeof(err));
	assert_non_null(u);
	assert_int_equal(mgmt_users_login(u, "admin", "public", &p), HQ_EAUTH);
	assert_int_equal(mgmt_users_login(u, "admin", "from-the-file", &p), HQ_OK);
	assert_false(p.must_change);
	mgmt_users_free(u);
	/* a missing file is an error naming the key */
	snprintf(sub, sizeof(sub), "%s/pf2", dir);
	mkdir(sub, 0700);
	assert_null(mgmt_users_open(sub, "/nonexistent/pw", err, sizeof(err)));
	assert_non_null(strstr(err, "dashboard.default_password_file"));
}

static void test_api_keys(void **state)
{
	(void)state;
	int rc;
	const char *why;
	struct mgmt_principal p;
	struct mgmt_users *u = mgmt_users_open(dir, "", err, sizeof(err));
	assert_non_null(u);
	cJSON *k = mgmt_keys_create(u, "k1", "d", true, 0, &rc, &why);
	assert_non_null(k);
	char *key = strdup(cJSON_GetObjectItem(k, "api_key")->valuestring);
	char *secret = strdup(cJSON_GetObjectItem(k, "api_secret")->valuestring);
	cJSON_Delete(k);
	assert_null(mgmt_keys_create(u, "k1", "d", true, 0, &rc, &why));
	assert_int_equal(rc, HQ_EEXIST);
	assert_int_equal(mgmt_keys_check(u, key, secret, 100, &p), HQ_OK);
	assert_string_equal(p.name, "k1");
	assert_true(p.is_key);
	assert_int_equal(mgmt_keys_check(u, key, "wrong", 100, &p), HQ_EAUTH);
	/* the secret is not in the file, only its salted hash */
	char path[128], buf[8192] = "";
	snprintf(path, sizeof(path), "%s/%s", dir, MGMT_USERS_FILE);
	FILE *f = fopen(path, "r");
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	assert_non_null(strstr(buf, key));
	assert_null(strstr(buf, secret));
	/* disabled, then expired */
	cJSON_Delete(mgmt_keys_update(u, "k1", 0, NULL, -1, &rc));
	assert_int_equal(mgmt_keys_check(u, key, secret, 100, &p), HQ_EAUTH);
	cJSON_Delete(mgmt_keys_update(u, "k1", 1, NULL, 200, &rc));
	assert_int_equal(mgmt_keys_check(u, key, secret, 199, &p), HQ_OK);
	assert_int_equal(mgmt_keys_check(u, key, secret, 200, &p), HQ_EAUTH);
	assert_int_equal(mgmt_keys_delete(u, "k1"), HQ_OK);
	assert_int_equal(mgmt_keys_check(u, key, secret, 100, &p), HQ_EAUTH);
	assert_int_equal(mgmt_keys_delete(u, "k1"), HQ_ENOTFOUND);
	/* the local ctl key: in its file, never in the table */
	assert_int_equal(mgmt_users_write_ctl_key(u, err, sizeof(err)), HQ_OK);
	snprintf(path, sizeof(path), "%s/%s", dir, MGMT_CTL_KEY_FILE);
	f = fopen(path, "r");
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	char *colon = strchr(buf, ':');
	assert_non_null(colon);
	*colon = 0;
	assert_int_equal(mgmt_keys_check(u, buf, colon + 1, 100, &p), HQ_OK);
	assert_int_equal(p.role, MGMT_ROLE_ADMIN);
	cJSON *list = mgmt_keys_list(u);
	assert_int_equal(cJSON_GetArraySize(list), 0);
	cJSON_Delete(list);
	free(key);
	free(secret);
	mgmt_users_free(u);
}

static void test_time_parse(void **state)
{
	(void)state;
	cJSON *v = cJSON_CreateString("infinity");
	assert_int_equal(mgmt_time_parse(v), 0);
	cJSON_Delete(v);
	v = cJSON_CreateString("2030-01-01T00:00:00Z");
	assert_int_equal(mgmt_time_parse(v), 1893456000);
	cJSON_Delete(v);
	v = cJSON_CreateString("2030-01-01T01:00:00+01:00");
	assert_int_equal(mgmt_time_parse(v), 1893456000);
	cJSON_Delete(v);
	v = cJSON_CreateString("soon");
	assert_int_equal(mgmt_time_parse(v), -1);
	cJSON_Delete(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_roundtrip),
		cmocka_unit_test(test_token_key_default_cookie),
		cmocka_unit_test(test_users_default_admin),
		cmocka_unit_test(test_users_password_file),
		cmocka_unit_test(test_api_keys),
		cmocka_unit_test(test_time_parse),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
