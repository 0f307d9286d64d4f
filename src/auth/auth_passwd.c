/*
 * auth_passwd.c - Mosquitto password files: parse, check, make hashes.
 *
 * The formats are mosquitto_passwd's (see auth_passwd.h); hashes are derived
 * with OpenSSL (PKCS5_PBKDF2_HMAC for $7$, one SHA-512 digest for $6$) and
 * compared with CRYPTO_memcmp, so a wrong password takes as long as a right
 * one. An unknown user costs nothing: the chain's answer for it does not
 * depend on a password (it is not in the file), so there is nothing to hide
 * by spending time on it.
 */
#include "auth/auth_passwd.h"
#include "core/mem.h"
#include "core/rand.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <uthash.h>

struct pw_entry {
	char *user;                /* owned */
	struct passwd_hash h;
	UT_hash_handle hh;
};

struct passwd_db {
	struct pw_entry *users;    /* uthash by user */
	uint32_t n;
	uint32_t max_iter;
};

/* base64 (with padding) into out; the decoded length, or -1. */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	if (n == 0 || n % 4 || n / 4 * 3 > cap + 2)
		return -1;
	uint8_t tmp[128];
	if (n / 4 * 3 > sizeof(tmp))
		return -1;
	int len = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (s[n - 1] == '=')
		len--;
	if (s[n - 2] == '=')
		len--;
	if ((size_t)len > cap)
		return -1;
	memcpy(out, tmp, (size_t)len);
	return len;
}

int passwd_hash_parse(const char *s, size_t n, struct passwd_hash *h, const char **why)
{
	memset(h, 0, sizeof(*h));
	if (n < 3 || s[0] != '$' || (s[1] != '6' && s[1] != '7') || s[2] != '$') {
		*why = "hash is neither $7$ (PBKDF2-SHA512) nor $6$ (SHA512); a plain text "
		       "password must be hashed first (hamqtt-passwd -U is not supported: "
		       "use mosquitto_passwd -U)";
		return -1;
	}
	h->type = s[1] - '0';
	const char *p = s + 3, *end = s + n;
	if (h->type == 7) {
		uint64_t it = 0;
		const char *d = p;
		while (p < end && *p >= '0' && *p <= '9' && it <= UINT32_MAX)
			it = it * 10 + (uint64_t)(*p++ - '0');
		if (p == d || p >= end || *p != '$' || it == 0 || it > UINT32_MAX) {
			*why = "bad iteration count in $7$ hash";
			return -1;
		}
		h->iter = (uint32_t)it;
		p++;
	}
	const char *sep = memchr(p, '$', (size_t)(end - p));
	if (!sep) {
		*why = "hash has no '$' between salt and hash";
		return -1;
	}
	int sl = b64_decode(p, (size_t)(sep - p), h->salt, sizeof(h->salt));
	if (sl <= 0) {
		*why = "salt is not base64";
		return -1;
	}
	h->salt_len = (size_t)sl;
	int hl = b64_decode(sep + 1, (size_t)(end - sep - 1), h->hash, sizeof(h->hash));
	if (hl != PASSWD_HASH_LEN) {
		*why = "hash is not 64 bytes of base64 (SHA-512)";
		return -1;
	}
	return 0;
}

/* The hash of pw under h's salt and method into out (64 bytes). */
static int derive(const struct passwd_hash *h, const uint8_t *pw, size_t pwlen, uint8_t *out)
{
	if (h->type == 7)
		return PKCS5_PBKDF2_HMAC((const char *)pw, (int)pwlen, h->salt, (int)h->salt_len,
					 (int)h->iter, EVP_sha512(), PASSWD_HASH_LEN, out) == 1 ? 0 : -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, pw, pwlen) == 1 &&
		 EVP_DigestUpdate(ctx, h->salt, h->salt_len) == 1 &&
		 EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == PASSWD_HASH_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

int passwd_hash_verify(const struct passwd_hash *h, const uint8_t *pw, size_t pwlen)
{
	uint8_t got[PASSWD_HASH_LEN];
	if (pwlen > INT32_MAX || derive(h, pw, pwlen, got) != 0)
		return 0;
	int ok = CRYPTO_memcmp(got, h->hash, PASSWD_HASH_LEN) == 0;
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

int passwd_hash_make(const uint8_t *pw, size_t pwlen, uint32_t iter, char *out, size_t outlen)
{
	struct passwd_hash h = { .type = 7, .iter = iter, .salt_len = PASSWD_SALT_LEN };
	char salt64[4 * ((PASSWD_SALT_LEN + 2) / 3) + 1];
	char hash64[4 * ((PASSWD_HASH_LEN + 2) / 3) + 1];
	if (iter == 0 || pwlen > INT32_MAX || rand_bytes(h.salt, PASSWD_SALT_LEN) != 0 ||
	    derive(&h, pw, pwlen, h.hash) != 0)
		return -1;
	EVP_EncodeBlock((unsigned char *)salt64, h.salt, PASSWD_SALT_LEN);
	EVP_EncodeBlock((unsigned char *)hash64, h.hash, PASSWD_HASH_LEN);
	OPENSSL_cleanse(&h, sizeof(h));
	int n = snprintf(out, outlen, "$7$%u$%s$%s", iter, salt64, hash64);
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

void passwd_db_free(struct passwd_db *db)
{
	if (!db)
		return;
	struct pw_entry *e, *t;
	HASH_ITER(hh, db->users, e, t) {
		HASH_DEL(db->users, e);
		hq_free(e->user);
		OPENSSL_cleanse(&e->h, sizeof(e->h));
		hq_free(e);
	}
	hq_free(db);
}

static struct passwd_db *parse_fail(struct passwd_db *db, const char *name, int line,
				    const char *why, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s:%d: %s", name, line, why);
	passwd_db_free(db);
	return NULL;
}

struct passwd_db *passwd_db_parse(const char *name, const char *text, size_t len,
				  char *err, size_t errlen)
{
	struct passwd_db *db = hq_calloc(1, sizeof(*db));
	const char *p = text, *end = text + len;
	for (int line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;
		while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == p || *p == '#') {
			p = next;
			continue;
		}
		const char *colon = memchr(p, ':', (size_t)(e - p));
		if (!colon || colon == p)
			return parse_fail(db, name, line, "expected user:hash", err, errlen);
		if (memchr(p, 0, (size_t)(e - p)))
			return parse_fail(db, name, line, "NUL byte in line", err, errlen);
		struct pw_entry *x = hq_calloc(1, sizeof(*x));
		const char *why = NULL;
		if (passwd_hash_parse(colon + 1, (size_t)(e - colon - 1), &x->h, &why) != 0) {
			hq_free(x);
			return parse_fail(db, name, line, why, err, errlen);
		}
		x->user = hq_strndup(p, (size_t)(colon - p));
		struct pw_entry *dup;
		HASH_FIND_STR(db->users, x->user, dup);
		if (dup) {
			hq_free(x->user);
			hq_free(x);
			return parse_fail(db, name, line, "user listed twice", err, errlen);
		}
		HASH_ADD_KEYPTR(hh, db->users, x->user, strlen(x->user), x);
		db->n++;
		if (x->h.iter > db->max_iter)
			db->max_iter = x->h.iter;
		p = next;
	}
	return db;
}

struct passwd_db *passwd_db_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, len = 0;
	char *buf = hq_malloc(cap);
	size_t got;
	while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap)
			buf = hq_realloc(buf, cap *= 2);
	}
	int rerr = ferror(f);
	fclose(f);
	if (rerr) {
		snprintf(err, errlen, "%s: read error", path);
		hq_free(buf);
		return NULL;
	}
	struct passwd_db *db = passwd_db_parse(path, buf, len, err, errlen);
	OPENSSL_cleanse(buf, len);
	hq_free(buf);
	return db;
}

uint32_t passwd_db_count(const struct passwd_db *db)
{
	return db->n;
}

uint32_t passwd_db_max_iter(const struct passwd_db *db)
{
	return db->max_iter;
}

enum passwd_result passwd_db_check(const struct passwd_db *db, const char *user,
				   const uint8_t *pw, size_t pwlen)
{
	struct pw_entry *e;
	HASH_FIND_STR(db->users, user, e);
	if (!e)
		return PASSWD_UNKNOWN_USER;
	return passwd_hash_verify(&e->h, pw, pwlen) ? PASSWD_OK : PASSWD_WRONG;
}

int passwd_db_lookup(const struct passwd_db *db, const char *user, struct passwd_hash *out)
{
	struct pw_entry *e;
	HASH_FIND_STR(db->users, user, e);
	if (!e)
		return 0;
	*out = e->h;
	return 1;
}
