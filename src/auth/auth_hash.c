/*
 * auth_hash.c - the password hashes EMQX's Redis authentication reads:
 * plain, sha256, sha512 (hex of the hash of salt+password or password+salt)
 * and pbkdf2 (PBKDF2-HMAC-SHA512, hex). OpenSSL does the hashing; the
 * comparison takes the same time wherever the first difference is.
 */
#include "auth/auth_async.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#define MAX_DK 128

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* stored (hex) decoded into out; its length, or 0 if not hex or too long. */
static size_t unhex(const char *stored, uint8_t *out, size_t cap)
{
	size_t n = strlen(stored);
	if (!n || n % 2 || n / 2 > cap)
		return 0;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(stored[2 * i]), lo = hexval(stored[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n / 2;
}

static bool digest_match(const EVP_MD *md, enum auth_salt_pos pos, const uint8_t *pw, size_t plen,
			 const char *salt, const char *stored)
{
	uint8_t want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	unsigned glen = 0;
	size_t wlen = unhex(stored, want, sizeof(want));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1;
	size_t slen = pos == AS_DISABLE ? 0 : strlen(salt);
	if (ok && pos == AS_PREFIX)
		ok = EVP_DigestUpdate(ctx, salt, slen) == 1;
	if (ok)
		ok = EVP_DigestUpdate(ctx, pw, plen) == 1;
	if (ok && pos == AS_SUFFIX)
		ok = EVP_DigestUpdate(ctx, salt, slen) == 1;
	if (ok)
		ok = EVP_DigestFinal_ex(ctx, got, &glen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok && wlen == glen && CRYPTO_memcmp(want, got, glen) == 0;
}

bool auth_hash_match(enum auth_hash_alg alg, enum auth_salt_pos pos, uint32_t iter,
		     const uint8_t *password, size_t plen, const char *salt, const char *stored)
{
	switch (alg) {
	case AH_PLAIN:
		return strlen(stored) == plen && CRYPTO_memcmp(stored, password, plen) == 0;
	case AH_SHA256:
		return digest_match(EVP_sha256(), pos, password, plen, salt, stored);
	case AH_SHA512:
		return digest_match(EVP_sha512(), pos, password, plen, salt, stored);
	case AH_PBKDF2: {
		uint8_t want[MAX_DK], got[MAX_DK];
		size_t wlen = unhex(stored, want, sizeof(want));
		if (!wlen || !iter)
			return false;
		if (PKCS5_PBKDF2_HMAC((const char *)password, (int)plen, (const unsigned char *)salt,
				      (int)strlen(salt), (int)iter, EVP_sha512(), (int)wlen, got) != 1)
			return false;
		return CRYPTO_memcmp(want, got, wlen) == 0;
	}
	}
	return false;
}
