/*
 * fuzz_scram.c - libFuzzer harness for the SCRAM-SHA-512 message parsers
 * (src/auth/auth_scram.c): client-first and client-final as they arrive in
 * an MQTT Authentication Data property, and a whole server exchange on them.
 * Built and run by `make fuzz`.
 *
 * Input: the bytes up to the first 0xFF are the client-first-message, the
 * rest the client-final-message. Contract: the parsers either fail with a
 * reason or return views inside the input; the exchange never succeeds
 * (the fuzzer cannot know the server's random nonce and the key) and never
 * reads or writes out of bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_scram.h"
#include "core/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static bool inside(const void *p, size_t len, const uint8_t *base, size_t n)
{
	const uint8_t *q = p;
	return q >= base && q + len <= base + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * SCRAM_MSG_MAX + 1)
		return 0;
	const uint8_t *sep = memchr(data, 0xFF, size);
	size_t n1 = sep ? (size_t)(sep - data) : size;
	const uint8_t *d2 = sep ? sep + 1 : data + size;
	size_t n2 = sep ? size - n1 - 1 : 0;
	const char *why = NULL;
	struct scram_first f;
	struct scram_final fin;
	if (scram_parse_final(data, n1, &fin, &why) == 0) {
		CHECK(inside(fin.cbind, fin.cbind_len, data, n1));
		CHECK(inside(fin.nonce, fin.nonce_len, data, n1));
		CHECK(fin.without_proof_len < n1);
	} else {
		CHECK(why != NULL);
	}
	why = NULL;
	if (scram_parse_first(data, n1, &f, &why) != 0) {
		CHECK(why != NULL);
		return 0;
	}
	CHECK(inside(f.gs2, f.gs2_len, data, n1) && inside(f.bare, f.bare_len, data, n1));
	CHECK(inside(f.cnonce, f.cnonce_len, data, n1) && f.cnonce_len > 0);
	CHECK(strlen(f.user) > 0 && strlen(f.user) < SCRAM_USER_MAX);
	struct scram_cred cred = { .known = true, .iter = 1, .salt_len = 12 };
	struct scram s = { 0 };
	uint8_t *out = NULL;
	size_t outlen = 0;
	CHECK(scram_server_first(&s, &f, &cred, &out, &outlen, &why) == SCRAM_CONTINUE);
	CHECK(outlen > 2 && memcmp(out, "r=", 2) == 0);
	hq_free(out);
	out = NULL;
	enum scram_rc rc = scram_client_final(&s, d2, n2, &out, &outlen, &why);
	CHECK(rc == SCRAM_BAD_MESSAGE || rc == SCRAM_BAD_PROOF);
	CHECK(out == NULL);
	scram_reset(&s);
	return 0;
}
