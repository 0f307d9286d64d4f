/*
 * test_clu_proto_rpc.c - the RPC_REQ and RPC_RESP frames (cluster-wide REST
 * API, clu_proto.h version 5): both round-trip field by field, the domains
 * and bounds are enforced by encoder and decoder alike, and every truncation
 * or corruption of a sample frame is refused or re-encodes to the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/clu_proto.h"
#include "core/err.h"
#include "core/mem.h"

static bool str_eq(struct clu_str s, const char *c)
{
	return s.len == strlen(c) && (!s.len || !memcmp(s.p, c, s.len));
}

static struct clu_msg sample_req(void)
{
	struct clu_msg m = { .type = CLU_MSG_RPC_REQ };
	m.rpcq.id = 0x0102030405060708ull;
	m.rpcq.method = clu_str("DELETE");
	m.rpcq.path = clu_str("/api/v5/clients/caf\xc3\xa9 1");   /* decoded: UTF-8, space */
	m.rpcq.query = clu_str("_offset=10&limit=5&like_clientid=a%2Fb");
	m.rpcq.caller = clu_str("127.0.0.1");
	m.rpcq.body = (struct clu_bin){ (const uint8_t *)"{\"a\":1}", 7 };
	return m;
}

static struct clu_msg sample_resp(void)
{
	struct clu_msg m = { .type = CLU_MSG_RPC_RESP };
	m.rpcr.id = 77;
	m.rpcr.status = 404;
	m.rpcr.body = (struct clu_bin){ (const uint8_t *)"{\"code\":\"NOT_FOUND\"}", 20 };
	return m;
}

static uint8_t *encode(const struct clu_msg *m, size_t *n)
{
	struct buf b = { 0 };
	assert_int_equal(clu_encode(&b, m), HQ_OK);
	*n = buf_avail(&b);
	uint8_t *p = hq_malloc(*n);
	memcpy(p, buf_head(&b), *n);
	buf_free(&b);
	return p;
}

static void test_roundtrip(void **state)
{
	(void)state;
	size_t n, used;
	struct clu_msg s = sample_req(), m;
	uint8_t *p = encode(&s, &n);
	assert_int_equal(clu_decode(p, n, CLU_MAX_BODY, &m, &used), HQ_OK);
	assert_int_equal(used, n);
	assert_int_equal(m.type, CLU_MSG_RPC_REQ);
	assert_string_equal(clu_type_name(CLU_MSG_RPC_REQ), "RPC_REQ");
	assert_true(m.rpcq.id == s.rpcq.id);
	assert_true(str_eq(m.rpcq.method, "DELETE"));
	assert_true(str_eq(m.rpcq.path, "/api/v5/clients/caf\xc3\xa9 1"));
	assert_true(str_eq(m.rpcq.query, "_offset=10&limit=5&like_clientid=a%2Fb"));
	assert_true(str_eq(m.rpcq.caller, "127.0.0.1"));
	assert_true(m.rpcq.body.len == 7 && !memcmp(m.rpcq.body.p, "{\"a\":1}", 7));
	hq_free(p);

	s = sample_resp();
	p = encode(&s, &n);
	assert_int_equal(clu_decode(p, n, CLU_MAX_BODY, &m, &used), HQ_OK);
	assert_int_equal(m.type, CLU_MSG_RPC_RESP);
	assert_string_equal(clu_type_name(CLU_MSG_RPC_RESP), "RPC_RESP");
	assert_true(m.rpcr.id == 77 && m.rpcr.status == 404);
	assert_true(m.rpcr.body.len == 20 && !memcmp(m.rpcr.body.p, s.rpcr.body.p, 20));
	hq_free(p);

	/* empty query, caller and body are fine */
	s = sample_req();
	s.rpcq.query = clu_str("");
	s.rpcq.caller = clu_str("");
	s.rpcq.body = (struct clu_bin){ NULL, 0 };
	p = encode(&s, &n);
	assert_int_equal(clu_decode(p, n, CLU_MAX_BODY, &m, &used), HQ_OK);
	assert_true(m.rpcq.query.len == 0 && m.rpcq.body.len == 0);
	hq_free(p);
}

static void test_domains(void **state)
{
	(void)state;
	struct buf b = { 0 };
	struct clu_msg m = sample_req();
	m.rpcq.method = clu_str("get");                 /* lower case */
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m = sample_req();
	m.rpcq.method = clu_str("");
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m = sample_req();
	m.rpcq.method = clu_str("ABCDEFGHIJKLMNOPQ");   /* 17 > CLU_RPC_METHOD_MAX */
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m = sample_req();
	m.rpcq.path = clu_str("api/v5/nodes");          /* no leading '/' */
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m = sample_req();
	m.rpcq.path = clu_str("/bad\xff");              /* not UTF-8 */
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m = sample_req();
	m.rpcq.query = clu_str("a=b c");                /* not encoded */
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m = sample_req();
	uint8_t *big = hq_calloc(1, CLU_RPC_RESP_BODY_MAX + 1);
	m.rpcq.body = (struct clu_bin){ big, CLU_RPC_REQ_BODY_MAX + 1 };
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m = sample_resp();
	m.rpcr.status = 99;
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m.rpcr.status = 600;
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m = sample_resp();
	m.rpcr.body = (struct clu_bin){ big, CLU_RPC_RESP_BODY_MAX + 1 };
	assert_int_equal(clu_encode(&b, &m), HQ_EINVAL);
	m.rpcr.body.len = CLU_RPC_RESP_BODY_MAX;         /* the bound itself is fine */
	assert_int_equal(clu_encode(&b, &m), HQ_OK);
	/* the decoder refuses what the encoder refuses: a status of 600 patched in */
	struct clu_msg d;
	size_t used;
	uint8_t *p = buf_head(&b);
	p[CLU_HDR_LEN + 8] = 600 >> 8;
	p[CLU_HDR_LEN + 9] = 600 & 0xFF;
	assert_int_equal(clu_decode(p, buf_avail(&b), CLU_MAX_BODY, &d, &used), HQ_EMALFORMED);
	hq_free(big);
	buf_free(&b);
}

/* Cut at every length, flip every byte: refused, or re-encodes identically. */
static void truncate_corrupt(struct clu_msg s)
{
	size_t n, used;
	uint8_t *p = encode(&s, &n);
	struct clu_msg m;
	for (size_t k = 0; k < n; k++) {
		uint8_t *c = hq_malloc(k ? k : 1);
		memcpy(c, p, k);
		int rc = clu_decode(c, k, CLU_MAX_BODY, &m, &used);
		assert_true(rc == HQ_EAGAIN || rc == HQ_EMALFORMED);
		if (k >= CLU_HDR_LEN)
			assert_int_equal(clu_decode_body(s.type, c + CLU_HDR_LEN, k - CLU_HDR_LEN, &m),
					 HQ_EMALFORMED);
		hq_free(c);
	}
	for (size_t i = CLU_HDR_LEN; i < n; i++) {
		uint8_t *c = hq_malloc(n);
		memcpy(c, p, n);
		c[i] ^= 0x5A;
		if (clu_decode(c, n, CLU_MAX_BODY, &m, &used) == HQ_OK) {
			struct buf b = { 0 };
			assert_int_equal(clu_encode(&b, &m), HQ_OK);
			assert_int_equal(buf_avail(&b), n);
			assert_memory_equal(buf_head(&b), c, n);
			buf_free(&b);
		}
		hq_free(c);
	}
	hq_free(p);
}

static void test_truncate_corrupt(void **state)
{
	(void)state;
	truncate_corrupt(sample_req());
	truncate_corrupt(sample_resp());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_truncate_corrupt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
