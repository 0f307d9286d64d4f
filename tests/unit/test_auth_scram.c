/*
 * test_auth_scram.c - unit tests for src/auth/auth_scram.c: SCRAM-SHA-512
 * message parsing and formatting, and a whole exchange against a client
 * written here with OpenSSL primitives (PBKDF2 from the password, as a SCRAM
 * client does) and the $7$ entry mosquitto_passwd 2.0.11 wrote for
 * alice/secret (test_auth_passwd.c): the entry's hash is the SaltedPassword.
 * Self-consistency only: no RFC vector exists for SHA-512 (RFC 7677's is
 * SHA-256, which hamqtt does not offer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth_passwd.h"
#include "auth/auth_scram.h"
#include "core/mem.h"

#define ALICE_HASH "$7$101$R11+BqtlehKNapki$KpxC09gdb30tplOyKLo2Mg1LiTwd/B5CI6XGtbulRkTmfJE5/GCpqUVJyLQex5QB6YxTyH7g5FJL92N6iB2shw=="
#define M(s) (const uint8_t *)(s), strlen(s)

static const char *why;

static void test_parse_first(void **state)
{
	(void)state;
	struct scram_first f;
	const char *msg = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
	assert_int_equal(scram_parse_first(M(msg), &f, &why), 0);
	assert_string_equal(f.user, "user");
	assert_int_equal(f.gs2_len, 3);
	assert_memory_equal(f.gs2, "n,,", 3);
	assert_int_equal(f.bare_len, strlen(msg) - 3);
	assert_memory_equal(f.cnonce, "fyko+d2lbbFgONRv9qkxdawL", f.cnonce_len);
	/* saslname escapes, "y" flag, authzid equal to the user, an extension */
	assert_int_equal(scram_parse_first(M("y,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=xyz,q=ext"), &f, &why), 0);
	assert_string_equal(f.user, "a,b=c");
	assert_int_equal(f.gs2_len, strlen("y,a=a=2Cb=3Dc,"));
	assert_int_equal(f.cnonce_len, 3);
}

static void test_parse_first_bad(void **state)
{
	(void)state;
	struct scram_first f;
	const char *bad[] = {
		"", "n", "n,", "n,,", "p=tls-unique,,n=u,r=x", "x,,n=u,r=x", "n,,m=x,n=u,r=x",
		"n,,n=,r=x", "n,,n=u", "n,,n=u,", "n,,n=u,r=", "n,,n=u,r=a b", "n,,r=x,n=u",
		"n,,n=a=2X,r=x", "n,,n=a=2,r=x", "n,,n=a=,r=x", "n,a=v,n=u,r=x", "n,a=,n=u,r=x",
		"n,b,n=u,r=x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (scram_parse_first(M(bad[i]), &f, &why) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
	}
	/* a NUL inside, and a user name too long for the buffer */
	assert_int_equal(scram_parse_first((const uint8_t *)"n,,n=a\0b,r=x", 12, &f, &why), -1);
	char longname[600] = "n,,n=";
	memset(longname + 5, 'u', 300);
	strcpy(longname + 305, ",r=x");
	assert_int_equal(scram_parse_first(M(longname), &f, &why), -1);
}

static void test_parse_final(void **state)
{
	(void)state;
	struct scram_final f;
	uint8_t proof[SCRAM_KEY_LEN];
	char p64[100], msg[300];
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		proof[i] = (uint8_t)(i * 7);
	EVP_EncodeBlock((unsigned char *)p64, proof, SCRAM_KEY_LEN);
	snprintf(msg, sizeof(msg), "c=biws,r=abcDEF,x=ext,p=%s", p64);
	assert_int_equal(scram_parse_final(M(msg), &f, &why), 0);
	assert_memory_equal(f.cbind, "biws", f.cbind_len);
	assert_memory_equal(f.nonce, "abcDEF", f.nonce_len);
	assert_int_equal(f.without_proof_len, strlen("c=biws,r=abcDEF,x=ext"));
	assert_memory_equal(f.proof, proof, SCRAM_KEY_LEN);
	const char *bad[] = {
		"c=biws,r=abc", "c=biws,r=abc,p=", "c=biws,r=abc,p=AAAA", "c=biws,p=AAAA",
		"r=abc,c=biws,p=AAAA", "c=biws,r=,p=AAAA",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (scram_parse_final(M(bad[i]), &f, &why) == 0)
			fail_msg("accepted: %s", bad[i]);
	/* proof not last, bad base64, padding inside */
	snprintf(msg, sizeof(msg), "c=biws,r=abc,p=%s,x=y", p64);
	assert_int_equal(scram_parse_final(M(msg), &f, &why), -1);
	snprintf(msg, sizeof(msg), "c=biws,r=abc,p=%s", p64);
	msg[20] = '*';
	assert_int_equal(scram_parse_final(M(msg), &f, &why), -1);
	snprintf(msg, sizeof(msg), "c=biws,r=abc,p=%s", p64);
	msg[20] = '=';
	assert_int_equal(scram_parse_final(M(msg), &f, &why), -1);
}

static void hmac512(const uint8_t *k, size_t kl, const void *m, size_t n, uint8_t *out)
{
	unsigned int len = 0;
	assert_non_null(HMAC(EVP_sha512(), k, (int)kl, m, n, out, &len));
}

/* The client's final message for server-first sf (and the signature it
 * expects back), from the password as a SCRAM client computes it. */
static void client_final(const char *pw, const char *bare, const char *sf, size_t sflen, char *out,
			 size_t cap, char *want_v, bool flip)
{
	char sfs[512];
	memcpy(sfs, sf, sflen);
	sfs[sflen] = 0;
	char nonce[200], salt64[100];
	unsigned iter = 0;
	assert_int_equal(sscanf(sfs, "r=%199[^,],s=%99[^,],i=%u", nonce, salt64, &iter), 3);
	uint8_t salt[64], salted[64], ck[64], sk[64], sig[64], skey[64], ssig[64], proof[64];
	int sl = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
	sl -= (int)(strchr(salt64, '=') ? strlen(strchr(salt64, '=')) : 0);
	assert_int_equal(PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, sl, (int)iter, EVP_sha512(), 64, salted), 1);
	hmac512(salted, 64, "Client Key", 10, ck);
	unsigned int dl;
	EVP_Digest(ck, 64, sk, &dl, EVP_sha512(), NULL);
	char without[300], am[1200];
	snprintf(without, sizeof(without), "c=biws,r=%s", nonce);
	snprintf(am, sizeof(am), "%s,%s,%s", bare, sfs, without);
	hmac512(sk, 64, am, strlen(am), sig);
	for (int i = 0; i < 64; i++)
		proof[i] = ck[i] ^ sig[i];
	if (flip)
		proof[5] ^= 1;
	hmac512(salted, 64, "Server Key", 10, skey);
	hmac512(skey, 64, am, strlen(am), ssig);
	char p64[100], v64[100];
	EVP_EncodeBlock((unsigned char *)p64, proof, 64);
	EVP_EncodeBlock((unsigned char *)v64, ssig, 64);
	assert_true(strlen(without) + strlen(p64) + 4 <= cap);
	strcpy(out, without);
	strcat(out, ",p=");
	strcat(out, p64);
	strcpy(want_v, "v=");
	strcat(want_v, v64); /* 88 characters: want_v holds 100 */
}

static enum scram_rc exchange(const char *user, const char *pw, bool known, bool flip, char *v, size_t *vlen)
{
	struct passwd_hash h;
	struct scram_cred cred = { 0 };
	assert_int_equal(passwd_hash_parse(ALICE_HASH, strlen(ALICE_HASH), &h, &why), 0);
	if (known) {
		cred.known = true;
		cred.iter = h.iter;
		cred.salt_len = h.salt_len;
		memcpy(cred.salt, h.salt, h.salt_len);
		memcpy(cred.salted, h.hash, 64);
	} else {
		assert_int_equal(scram_cred_decoy(user, 101, &cred), 0);
	}
	char first[200], fin[400], want_v[100];
	snprintf(first, sizeof(first), "n,,n=%s,r=clientNONCE123", user);
	struct scram_first f;
	assert_int_equal(scram_parse_first(M(first), &f, &why), 0);
	struct scram s = { 0 };
	uint8_t *out = NULL;
	size_t outlen = 0;
	assert_int_equal(scram_server_first(&s, &f, &cred, &out, &outlen, &why), SCRAM_CONTINUE);
	assert_true(outlen > strlen("r=clientNONCE123") && memcmp(out, "r=clientNONCE123", 16) == 0);
	client_final(pw, first + 3, (const char *)out, outlen, fin, sizeof(fin), want_v, flip);
	hq_free(out);
	out = NULL;
	enum scram_rc rc = scram_client_final(&s, M(fin), &out, &outlen, &why);
	if (rc == SCRAM_OK) {
		assert_int_equal(outlen, strlen(want_v));
		assert_memory_equal(out, want_v, outlen);
		memcpy(v, out, outlen);
		*vlen = outlen;
	}
	/* a second client-final is out of sequence */
	uint8_t *o2 = NULL;
	size_t o2len = 0;
	assert_int_equal(scram_client_final(&s, M(fin), &o2, &o2len, &why), SCRAM_BAD_MESSAGE);
	hq_free(out);
	scram_reset(&s);
	return rc;
}

static void test_exchange(void **state)
{
	(void)state;
	char v[200];
	size_t vlen = 0;
	assert_int_equal(exchange("alice", "secret", true, false, v, &vlen), SCRAM_OK);
	assert_true(vlen == 2 + 88 && memcmp(v, "v=", 2) == 0);
	assert_int_equal(exchange("alice", "secreT", true, false, v, &vlen), SCRAM_BAD_PROOF);
	assert_int_equal(exchange("alice", "secret", true, true, v, &vlen), SCRAM_BAD_PROOF);
	/* a decoy never succeeds, whatever the client sends */
	assert_int_equal(exchange("mallory", "secret", false, false, v, &vlen), SCRAM_BAD_PROOF);
}

static void test_decoy_stable(void **state)
{
	(void)state;
	struct scram_cred a, b, c;
	assert_int_equal(scram_cred_decoy("mallory", 101, &a), 0);
	assert_int_equal(scram_cred_decoy("mallory", 101, &b), 0);
	assert_int_equal(scram_cred_decoy("trudy", 101, &c), 0);
	assert_false(a.known);
	assert_int_equal(a.salt_len, 12);
	assert_memory_equal(a.salt, b.salt, 12);
	assert_memory_not_equal(a.salt, c.salt, 12);
}

static void test_final_checks(void **state)
{
	(void)state;
	struct scram_cred cred = { .known = true, .iter = 101, .salt_len = 12 };
	struct scram_first f;
	struct scram s = { 0 };
	uint8_t *out = NULL;
	size_t outlen;
	assert_int_equal(scram_parse_first(M("n,,n=u,r=cn"), &f, &why), 0);
	assert_int_equal(scram_server_first(&s, &f, &cred, &out, &outlen, &why), SCRAM_CONTINUE);
	hq_free(out);
	/* a nonce that is not the server's, with a well-formed proof */
	char msg[300], p64[100];
	uint8_t proof[64] = { 0 };
	EVP_EncodeBlock((unsigned char *)p64, proof, 64);
	snprintf(msg, sizeof(msg), "c=biws,r=cnXXXX,p=%s", p64);
	assert_int_equal(scram_client_final(&s, M(msg), &out, &outlen, &why), SCRAM_BAD_MESSAGE);
	assert_string_equal(why, "nonce does not match");
	scram_reset(&s);
	/* channel binding data that is not the gs2 header */
	assert_int_equal(scram_server_first(&s, &f, &cred, &out, &outlen, &why), SCRAM_CONTINUE);
	char nonce[100];
	memcpy(nonce, out + 2, strchr((char *)out, ',') - (char *)out - 2);
	nonce[strchr((char *)out, ',') - (char *)out - 2] = 0;
	hq_free(out);
	snprintf(msg, sizeof(msg), "c=eSws,r=%s,p=%s", nonce, p64);
	assert_int_equal(scram_client_final(&s, M(msg), &out, &outlen, &why), SCRAM_BAD_MESSAGE);
	scram_reset(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_first),
		cmocka_unit_test(test_parse_first_bad),
		cmocka_unit_test(test_parse_final),
		cmocka_unit_test(test_exchange),
		cmocka_unit_test(test_decoy_stable),
		cmocka_unit_test(test_final_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
