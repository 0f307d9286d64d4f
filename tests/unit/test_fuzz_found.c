/*
 * test_fuzz_found.c - regression tests for what the libFuzzer targets
 * (tests/fuzz/) found, one test per finding, each the smallest input that
 * showed it. Undefined behaviour shows only under the sanitizers: these fail
 * before their fix in `make SAN=asan unit` (UBSan stops the test).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth_async.h"
#include "broker/broker.h"
#include "core/buf.h"
#include "core/mem.h"
#include "http/http_int.h"
#include "mgmt/mgmt_token.h"
#include "mgmt/mgmt_users.h"

/* fuzz_auth_answer: a template that starts with a placeholder appended zero
 * bytes to an empty buf (NULL + 0 in buf_reserve, memcpy to NULL). An
 * auth.redis.cmd argument of just "${username}" does that at every CONNECT. */
static void test_tmpl_leading_placeholder(void **state)
{
	(void)state;
	struct auth_job j = { .client_id = (char *)"", .username = (char *)"",
			      .peerhost = (char *)"", .password = (uint8_t *)"", .has_password = true };
	char *s = auth_tmpl_render("${username}", &j, TMPL_URL);
	assert_string_equal(s, "");
	hq_free(s);
	s = auth_tmpl_render("${clientid}/x", &j, TMPL_RAW);
	assert_string_equal(s, "/x");
	hq_free(s);
	struct buf b = { 0 };
	buf_append(&b, "", 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

/* fuzz_http: an API key's "expired_at" of 1e300 (or 1e999, inf) was cast to
 * int64_t: undefined behaviour, and on x86 INT64_MIN, not the -1 the callers
 * test for. Refused now, as a string past year 9999 is. */
static void test_key_expiry_huge_number(void **state)
{
	(void)state;
	static const double bad[] = { 1e300, 1e19, -1, 253402300800.0 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cJSON *v = cJSON_CreateNumber(bad[i]);
		assert_int_equal(mgmt_time_parse(v), -1);
		cJSON_Delete(v);
	}
	cJSON *inf = cJSON_Parse("1e999");
	assert_non_null(inf);
	assert_int_equal(mgmt_time_parse(inf), -1);
	cJSON_Delete(inf);
	cJSON *ok = cJSON_CreateNumber(4102444800.0);
	assert_int_equal(mgmt_time_parse(ok), 4102444800);
	cJSON_Delete(ok);
}

/* fuzz_http: a ban "until" of 1e999 (inf) was cast to int64_t likewise. */
static void test_ban_until_huge_number(void **state)
{
	(void)state;
	struct broker_ban ban;
	assert_non_null(http_banned_parse("{\"as\":\"clientid\",\"who\":\"c\",\"until\":1e999}",
					  1700000000, &ban));
	assert_non_null(http_banned_parse("{\"as\":\"clientid\",\"who\":\"c\",\"until\":1e300}",
					  1700000000, &ban));
	assert_null(http_banned_parse("{\"as\":\"clientid\",\"who\":\"c\",\"until\":4102444800}",
				      1700000000, &ban));
	assert_int_equal(ban.until_s, 4102444800);
}

/* fuzz_http: an authentic token (signed with the node's key) whose "iat" is
 * 1e300 was cast to int64_t. Only nodes sign tokens, so only a node with a
 * bug could send one; refused now like any malformed claim. */
static void test_token_claim_huge_number(void **state)
{
	(void)state;
	uint8_t key[MGMT_KEY_LEN];
	char err[200];
	assert_int_equal(mgmt_token_key("fuzzcookie", NULL, key, err, sizeof(err)), 0);
	static const char claims[] = "{\"u\":\"a\",\"r\":\"viewer\",\"c\":false,\"iat\":1e300,"
				     "\"exp\":4102444800,\"j\":\"x\",\"n\":\"n@h\"}";
	char tok[600] = "v1.";
	mgmt_b64url((const uint8_t *)claims, strlen(claims), tok + 3);
	size_t tl = strlen(tok);
	uint8_t mac[32];
	unsigned int ml = 0;
	HMAC(EVP_sha256(), key, MGMT_KEY_LEN, (const uint8_t *)tok, tl, mac, &ml);
	tok[tl++] = '.';
	mgmt_b64url(mac, sizeof(mac), tok + tl);
	struct mgmt_claims c;
	assert_int_equal(mgmt_token_verify(key, tok, 1700000000, &c), MGMT_TOKEN_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tmpl_leading_placeholder),
		cmocka_unit_test(test_key_expiry_huge_number),
		cmocka_unit_test(test_ban_until_huge_number),
		cmocka_unit_test(test_token_claim_huge_number),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
