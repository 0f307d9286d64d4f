/*
 * mgmt_token.c - signing and checking dashboard tokens (mgmt_token.h), and
 * the key they are signed with. OpenSSL libcrypto for HMAC-SHA256, cJSON for
 * the claims.
 */
#include "mgmt/mgmt_token.h"
#include "core/mem.h"
#include "core/rand.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_LABEL "hamqtt management token v1" /* domain separation from the cookie's other uses */

const char *mgmt_role_name(enum mgmt_role r)
{
	return r == MGMT_ROLE_ADMIN ? "administrator" : "viewer";
}

int mgmt_role_parse(const char *s, enum mgmt_role *out)
{
	if (s && !strcmp(s, "administrator"))
		*out = MGMT_ROLE_ADMIN;
	else if (s && !strcmp(s, "viewer"))
		*out = MGMT_ROLE_VIEWER;
	else
		return -1;
	return 0;
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void mgmt_b64url(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = B64URL[(v >> 18) & 63];
		out[o++] = B64URL[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = B64URL[(v >> 6) & 63];
		if (i + 2 < n)
			out[o++] = B64URL[v & 63];
	}
	out[o] = '\0';
}

static int b64url_val(char c)
{
	const char *p = c ? strchr(B64URL, c) : NULL;
	return p ? (int)(p - B64URL) : -1;
}

/* Decode n chars of unpadded base64url; the byte count, or -1. */
static int b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val(s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (int)o;
}

int mgmt_rand_hex(char *out, size_t n)
{
	uint8_t b[64];
	if (n > sizeof(b) || rand_bytes(b, n) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	OPENSSL_cleanse(b, sizeof(b));
	return 0;
}

/* Read or create the per-node random key file. */
static int key_file(const char *data_dir, uint8_t key[MGMT_KEY_LEN], char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", data_dir && *data_dir ? data_dir : ".",
		 MGMT_TOKEN_KEY_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = read(fd, key, MGMT_KEY_LEN);
		close(fd);
		if (r == MGMT_KEY_LEN)
			return 0;
		snprintf(err, errlen, "%s: not a %d byte key (delete it to make a new one)", path,
			 MGMT_KEY_LEN);
		return -1;
	}
	if (errno != ENOENT || rand_bytes(key, MGMT_KEY_LEN) != 0)
		goto fail;
	/* O_EXCL: two processes never end up with different keys in one file */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	ssize_t w = write(fd, key, MGMT_KEY_LEN);
	if (close(fd) != 0 || w != MGMT_KEY_LEN) {
		unlink(path);
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	return -1;
}

int mgmt_token_key(const char *cookie, const char *data_dir, uint8_t key[MGMT_KEY_LEN],
		   char *err, size_t errlen)
{
	if (!cookie || !*cookie || !strcmp(cookie, MGMT_PUBLIC_COOKIE))
		return key_file(data_dir, key, err, errlen);
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), cookie, (int)strlen(cookie), (const uint8_t *)KEY_LABEL,
		  sizeof(KEY_LABEL) - 1, key, &len) || len != MGMT_KEY_LEN) {
		snprintf(err, errlen, "cannot derive the token key (OpenSSL HMAC failed)");
		return -1;
	}
	return 0;
}

static void mac(const uint8_t key[MGMT_KEY_LEN], const char *s, size_t n, uint8_t out[32])
{
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), key, MGMT_KEY_LEN, (const uint8_t *)s, n, out, &len))
		memset(out, 0, 32); /* never matches a real MAC by chance: verify fails closed */
}

char *mgmt_token_sign(const uint8_t key[MGMT_KEY_LEN], struct mgmt_claims *c)
{
	if (mgmt_rand_hex(c->jti, MGMT_JTI_LEN / 2) != 0)
		return NULL;
	cJSON *doc = cJSON_CreateObject();
	if (!doc || !cJSON_AddStringToObject(doc, "u", c->user) ||
	    !cJSON_AddStringToObject(doc, "r", mgmt_role_name(c->role)) ||
	    !cJSON_AddBoolToObject(doc, "c", c->must_change) ||
	    !cJSON_AddNumberToObject(doc, "iat", (double)c->iat_ms) ||
	    !cJSON_AddNumberToObject(doc, "exp", (double)c->exp) ||
	    !cJSON_AddStringToObject(doc, "j", c->jti) ||
	    !cJSON_AddStringToObject(doc, "n", c->node)) {
		cJSON_Delete(doc);
		return NULL;
	}
	char *json = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!json)
		return NULL;
	size_t jl = strlen(json);
	char *tok = hq_malloc(3 + (jl + 2) / 3 * 4 + 1 + 44 + 1);
	memcpy(tok, "v1.", 3);
	mgmt_b64url((const uint8_t *)json, jl, tok + 3);
	free(json);
	size_t n = strlen(tok);
	uint8_t m[32];
	mac(key, tok, n, m);
	tok[n] = '.';
	mgmt_b64url(m, sizeof(m), tok + n + 1);
	return tok;
}

static bool str_claim(const cJSON *doc, const char *name, char *out, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
		return false;
	memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
	return true;
}

/* A number claim that fits an int64_t: a double past +-2^63 (1e300, inf) would
 * be undefined behaviour to convert (fuzz_http, with claims it signed itself) */
static bool int_claim(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble > -9.2e18 && v->valuedouble < 9.2e18;
}

enum mgmt_token_result mgmt_token_verify(const uint8_t key[MGMT_KEY_LEN], const char *tok,
					 int64_t now_s, struct mgmt_claims *out)
{
	memset(out, 0, sizeof(*out));
	size_t n = tok ? strnlen(tok, MGMT_TOKEN_MAX + 1) : 0;
	if (n > MGMT_TOKEN_MAX || n < 4 || memcmp(tok, "v1.", 3))
		return MGMT_TOKEN_BAD;
	const char *dot = memchr(tok + 3, '.', n - 3);
	if (!dot)
		return MGMT_TOKEN_BAD;
	uint8_t want[32], got[33];
	mac(key, tok, (size_t)(dot - tok), want);
	char canon[44];
	if (b64url_decode(dot + 1, n - (size_t)(dot + 1 - tok), got, sizeof(got)) != 32 ||
	    CRYPTO_memcmp(want, got, 32) != 0)
		return MGMT_TOKEN_BAD;
	/* one spelling per token: the last character's unused bits must be 0 */
	mgmt_b64url(got, 32, canon);
	if (strcmp(canon, dot + 1))
		return MGMT_TOKEN_BAD;
	/* authentic from here on: the payload is our own JSON */
	uint8_t json[MGMT_TOKEN_MAX];
	int jl = b64url_decode(tok + 3, (size_t)(dot - tok - 3), json, sizeof(json) - 1);
	if (jl < 0)
		return MGMT_TOKEN_BAD;
	json[jl] = '\0';
	cJSON *doc = cJSON_Parse((const char *)json);
	const cJSON *iat = cJSON_GetObjectItemCaseSensitive(doc, "iat");
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(doc, "exp");
	const cJSON *chg = cJSON_GetObjectItemCaseSensitive(doc, "c");
	char role[32];
	bool ok = doc && str_claim(doc, "u", out->user, sizeof(out->user)) &&
		  str_claim(doc, "r", role, sizeof(role)) && mgmt_role_parse(role, &out->role) == 0 &&
		  str_claim(doc, "j", out->jti, sizeof(out->jti)) &&
		  str_claim(doc, "n", out->node, sizeof(out->node)) && int_claim(iat) &&
		  int_claim(exp) && cJSON_IsBool(chg);
	if (ok) {
		out->iat_ms = (int64_t)iat->valuedouble;
		out->exp = (int64_t)exp->valuedouble;
		out->must_change = cJSON_IsTrue(chg);
	}
	cJSON_Delete(doc);
	if (!ok)
		return MGMT_TOKEN_BAD;
	return now_s < out->exp ? MGMT_TOKEN_OK : MGMT_TOKEN_EXPIRED;
}
