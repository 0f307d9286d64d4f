/*
 * test_http_query.c - unit tests for src/http/http_query.c: query strings
 * decoded into pairs and encoded back (a cluster-wide request is forwarded
 * to peers in the encoded form, so the round trip must be exact).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "http/http_query.h"

static int parse(struct http_query *q, const char *s)
{
	/* exactly strlen bytes on the heap: ASan catches a read past the end */
	size_t n = strlen(s);
	char *p = malloc(n ? n : 1);
	memcpy(p, s, n);
	int rc = http_query_parse(q, p, n);
	free(p);
	return rc;
}

static void test_parse_decodes(void **state)
{
	(void)state;
	struct http_query q = { 0 };
	assert_int_equal(parse(&q, "clientid=a%2Fb&like_username=x+y&flag&&page=2&e="), HQ_OK);
	assert_int_equal(q.n, 5);
	assert_string_equal(http_query_get(&q, "clientid"), "a/b");
	assert_string_equal(http_query_get(&q, "like_username"), "x y");
	assert_string_equal(http_query_get(&q, "flag"), "");
	assert_string_equal(http_query_get(&q, "page"), "2");
	assert_string_equal(http_query_get(&q, "e"), "");
	assert_null(http_query_get(&q, "limit"));
	assert_null(http_query_get(NULL, "limit"));
	http_query_free(&q);
}

static void test_parse_refuses_bad_escapes(void **state)
{
	(void)state;
	const char *bad[] = { "a=%", "a=%4", "a=%G1", "a=%00", "%zz=1", "a=b&c=%" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_query q = { 0 };
		assert_int_equal(parse(&q, bad[i]), HQ_EINVAL);
		http_query_free(&q);
	}
}

static void test_limit(void **state)
{
	(void)state;
	char s[HTTP_QUERY_MAX_ARGS * 8 + 16] = "";
	for (int i = 0; i <= HTTP_QUERY_MAX_ARGS; i++)
		snprintf(s + strlen(s), sizeof(s) - strlen(s), "%sa%d=1", i ? "&" : "", i);
	struct http_query q = { 0 };
	assert_int_equal(parse(&q, s), HQ_ELIMIT);
	assert_int_equal(q.n, HTTP_QUERY_MAX_ARGS);
	assert_int_equal(http_query_add(&q, "x", "y"), HQ_ELIMIT);
	http_query_free(&q);
}

static void test_encode_round_trip(void **state)
{
	(void)state;
	struct http_query q = { 0 };
	assert_int_equal(http_query_add(&q, "clientid", "dev/1 é&=?%+"), HQ_OK);
	assert_int_equal(http_query_add(&q, "_offset", "200"), HQ_OK);
	assert_int_equal(http_query_add(&q, "topic", NULL), HQ_OK);
	char *all = http_query_encode(&q, NULL);
	char *pub = http_query_encode(&q, "_");
	assert_string_equal(pub, "clientid=dev%2F1%20%C3%A9%26%3D%3F%25%2B&topic=");
	struct http_query back = { 0 };
	assert_int_equal(parse(&back, all), HQ_OK);
	assert_int_equal(back.n, 3);
	assert_string_equal(http_query_get(&back, "clientid"), "dev/1 é&=?%+");
	assert_string_equal(http_query_get(&back, "_offset"), "200");
	assert_string_equal(http_query_get(&back, "topic"), "");
	free(all);
	free(pub);
	http_query_free(&back);
	http_query_free(&q);
	char *none = http_query_encode(NULL, NULL);
	assert_string_equal(none, "");
	free(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_decodes),
		cmocka_unit_test(test_parse_refuses_bad_escapes),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_encode_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
