/*
 * auth_scram.c - SCRAM-SHA-512 server messages and proofs (auth_scram.h).
 * Crypto is OpenSSL's (HMAC, EVP_Digest, RAND_bytes, CRYPTO_memcmp); this
 * file only parses and formats the RFC 5802 messages.
 */
#include "auth/auth_scram.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SNONCE_RAW 18             /* server nonce bytes: 24 base64 characters */

static int fail(const char **why, const char *msg)
{
	*why = msg;
	return -1;
}

static bool b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

/* Strict base64 (padded, no whitespace) into out (cap bytes): its length or
 * -1. EVP_DecodeBlock alone would skip whitespace and count padding. */
static int b64_dec(const char *s, size_t n, uint8_t *out, size_t cap)
{
	if (n == 0 || n % 4 || n / 4 * 3 > cap + 2 || n > 4 * 1024)
		return -1;
	size_t pad = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=' && i >= n - 2 && (i == n - 1 || s[n - 1] == '='))
			pad++;
		else if (!b64_char(s[i]) || pad)
			return -1;
	}
	uint8_t tmp[3 * 1024 + 3];
	int r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r < pad || (size_t)r - pad > cap)
		return -1;
	memcpy(out, tmp, (size_t)r - pad);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return r - (int)pad;
}

/* The value of attribute `name` at in[*pos] ("x=value" up to ',' or end). */
static bool attr(const char *in, size_t n, size_t *pos, char name, const char **v, size_t *vlen)
{
	size_t p = *pos;
	if (p + 2 > n || in[p] != name || in[p + 1] != '=')
		return false;
	p += 2;
	size_t s = p;
	while (p < n && in[p] != ',')
		p++;
	*v = in + s;
	*vlen = p - s;
	*pos = p;
	return true;
}

/* saslname: "=2C" is ',', "=3D" is '='; any other '=' or a NUL is invalid. */
static int sasl_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '=') {
			if (i + 2 >= n)
				return -1;
			if (s[i + 1] == '2' && s[i + 2] == 'C')
				ch = ',';
			else if (s[i + 1] == '3' && s[i + 2] == 'D')
				ch = '=';
			else
				return -1;
			i += 2;
		} else if (ch == 0) {
			return -1;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = ch;
	}
	out[o] = 0;
	return (int)o;
}

static bool printable_nonce(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

int scram_parse_first(const uint8_t *inb, size_t n, struct scram_first *out, const char **why)
{
	const char *in = (const char *)inb;
	memset(out, 0, sizeof(*out));
	if (n == 0 || n > SCRAM_MSG_MAX)
		return fail(why, "client-first-message empty or too long");
	if (memchr(in, 0, n))
		return fail(why, "client-first-message contains NUL");
	size_t p = 0;
	if (in[0] == 'p')
		return fail(why, "channel binding is not supported");
	if ((in[0] != 'n' && in[0] != 'y') || n < 2 || in[1] != ',')
		return fail(why, "bad gs2 header");
	p = 2;
	const char *az = NULL;
	size_t azlen = 0;
	if (p < n && in[p] == 'a') {
		if (!attr(in, n, &p, 'a', &az, &azlen) || azlen == 0)
			return fail(why, "bad authzid");
	}
	if (p >= n || in[p] != ',')
		return fail(why, "bad gs2 header");
	p++;
	out->gs2 = in;
	out->gs2_len = p;
	out->bare = in + p;
	out->bare_len = n - p;
	if (p < n && in[p] == 'm')
		return fail(why, "mandatory extensions are not supported");
	const char *u;
	size_t ulen;
	if (!attr(in, n, &p, 'n', &u, &ulen) || ulen == 0)
		return fail(why, "no user name");
	if (sasl_decode(u, ulen, out->user, sizeof(out->user)) <= 0)
		return fail(why, "bad user name");
	if (p >= n || in[p] != ',')
		return fail(why, "no nonce");
	p++;
	if (!attr(in, n, &p, 'r', &out->cnonce, &out->cnonce_len) ||
	    !printable_nonce(out->cnonce, out->cnonce_len))
		return fail(why, "bad nonce");
	/* optional extensions after the nonce are ignored (RFC 5802 5.1) */
	if (az) {
		char azd[SCRAM_USER_MAX];
		if (sasl_decode(az, azlen, azd, sizeof(azd)) <= 0 || strcmp(azd, out->user) != 0)
			return fail(why, "an authorization identity other than the user");
	}
	return 0;
}

int scram_parse_final(const uint8_t *inb, size_t n, struct scram_final *out, const char **why)
{
	const char *in = (const char *)inb;
	memset(out, 0, sizeof(*out));
	if (n == 0 || n > SCRAM_MSG_MAX)
		return fail(why, "client-final-message empty or too long");
	if (memchr(in, 0, n))
		return fail(why, "client-final-message contains NUL");
	size_t p = 0;
	if (!attr(in, n, &p, 'c', &out->cbind, &out->cbind_len) || p >= n)
		return fail(why, "no channel binding attribute");
	p++;
	if (!attr(in, n, &p, 'r', &out->nonce, &out->nonce_len) || !printable_nonce(out->nonce, out->nonce_len))
		return fail(why, "bad nonce");
	/* the proof is the last attribute: after the last comma */
	size_t last = n;
	while (last > p && in[last - 1] != ',')
		last--;
	if (last <= p || last < 1)
		return fail(why, "no proof");
	size_t q = last;
	const char *pf;
	size_t pflen;
	if (!attr(in, n, &q, 'p', &pf, &pflen) || q != n)
		return fail(why, "no proof");
	if (b64_dec(pf, pflen, out->proof, sizeof(out->proof)) != SCRAM_KEY_LEN)
		return fail(why, "bad proof");
	out->without_proof_len = last - 1;
	return 0;
}

/* ---- keys and messages ---- */

static pthread_once_t secret_once = PTHREAD_ONCE_INIT;
static uint8_t decoy_secret[32];
static bool decoy_ok;

static void secret_init(void)
{
	decoy_ok = RAND_bytes(decoy_secret, sizeof(decoy_secret)) == 1;
}

int scram_cred_decoy(const char *user, uint32_t iter, struct scram_cred *out)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	memset(out, 0, sizeof(*out));
	pthread_once(&secret_once, secret_init);
	if (!decoy_ok || !HMAC(EVP_sha512(), decoy_secret, sizeof(decoy_secret),
			       (const unsigned char *)user, strlen(user), mac, &maclen) ||
	    RAND_bytes(out->salted, sizeof(out->salted)) != 1)
		return -1;
	out->known = false;
	out->iter = iter;
	out->salt_len = 12; /* as mosquitto_passwd's */
	memcpy(out->salt, mac, out->salt_len);
	return 0;
}

static bool hmac512(const uint8_t *key, size_t klen, const void *msg, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int len = 0;
	return HMAC(EVP_sha512(), key, (int)klen, msg, n, out, &len) && len == SCRAM_KEY_LEN;
}

static char *b64_enc(const uint8_t *p, size_t n)
{
	char *s = hq_malloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	return s;
}

void scram_reset(struct scram *s)
{
	hq_free(s->first_bare);
	hq_free(s->server_first);
	hq_free(s->gs2);
	hq_free(s->nonce);
	OPENSSL_cleanse(s, sizeof(*s));
	memset(s, 0, sizeof(*s));
}

enum scram_rc scram_server_first(struct scram *s, const struct scram_first *f,
				 const struct scram_cred *cred, uint8_t **out, size_t *outlen,
				 const char **why)
{
	uint8_t raw[SNONCE_RAW], client_key[SCRAM_KEY_LEN];
	unsigned int dlen = 0;
	if (s->stage != 0) {
		*why = "client-first-message out of sequence";
		return SCRAM_BAD_MESSAGE;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1 ||
	    !hmac512(cred->salted, SCRAM_KEY_LEN, "Client Key", 10, client_key) ||
	    !EVP_Digest(client_key, sizeof(client_key), s->stored_key, &dlen, EVP_sha512(), NULL) ||
	    !hmac512(cred->salted, SCRAM_KEY_LEN, "Server Key", 10, s->server_key)) {
		OPENSSL_cleanse(client_key, sizeof(client_key));
		*why = "OpenSSL failed (random bytes or HMAC)";
		return SCRAM_BAD_MESSAGE;
	}
	OPENSSL_cleanse(client_key, sizeof(client_key));
	char *snonce = b64_enc(raw, sizeof(raw));
	char *salt = b64_enc(cred->salt, cred->salt_len);
	s->nonce = hq_malloc(f->cnonce_len + strlen(snonce) + 1);
	memcpy(s->nonce, f->cnonce, f->cnonce_len);
	strcpy(s->nonce + f->cnonce_len, snonce);
	size_t cap = strlen(s->nonce) + strlen(salt) + 32;
	s->server_first = hq_malloc(cap);
	int len = snprintf(s->server_first, cap, "r=%s,s=%s,i=%u", s->nonce, salt, cred->iter);
	hq_free(snonce);
	hq_free(salt);
	s->first_bare = hq_strndup(f->bare, f->bare_len);
	s->gs2 = hq_strndup(f->gs2, f->gs2_len);
	snprintf(s->user, sizeof(s->user), "%s", f->user);
	s->known = cred->known;
	s->stage = 1;
	*out = hq_memdup(s->server_first, (size_t)len);
	*outlen = (size_t)len;
	return SCRAM_CONTINUE;
}

enum scram_rc scram_client_final(struct scram *s, const uint8_t *in, size_t n, uint8_t **out,
				 size_t *outlen, const char **why)
{
	struct scram_final f;
	if (s->stage != 1) {
		*why = "client-final-message out of sequence";
		return SCRAM_BAD_MESSAGE;
	}
	s->stage = 2;
	if (scram_parse_final(in, n, &f, why) != 0)
		return SCRAM_BAD_MESSAGE;
	uint8_t cb[SCRAM_MSG_MAX];
	int cblen = b64_dec(f.cbind, f.cbind_len, cb, sizeof(cb));
	if (cblen < 0 || (size_t)cblen != strlen(s->gs2) || memcmp(cb, s->gs2, (size_t)cblen) != 0) {
		*why = "channel binding does not repeat the gs2 header";
		return SCRAM_BAD_MESSAGE;
	}
	if (f.nonce_len != strlen(s->nonce) || memcmp(f.nonce, s->nonce, f.nonce_len) != 0) {
		*why = "nonce does not match";
		return SCRAM_BAD_MESSAGE;
	}
	/* AuthMessage = client-first-bare "," server-first "," client-final-without-proof */
	size_t a1 = strlen(s->first_bare), a2 = strlen(s->server_first);
	size_t alen = a1 + 1 + a2 + 1 + f.without_proof_len;
	uint8_t *am = hq_malloc(alen);
	memcpy(am, s->first_bare, a1);
	am[a1] = ',';
	memcpy(am + a1 + 1, s->server_first, a2);
	am[a1 + 1 + a2] = ',';
	memcpy(am + a1 + 2 + a2, in, f.without_proof_len);
	uint8_t sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN], ssig[SCRAM_KEY_LEN];
	unsigned int dlen = 0;
	bool ok = hmac512(s->stored_key, SCRAM_KEY_LEN, am, alen, sig) &&
		  hmac512(s->server_key, SCRAM_KEY_LEN, am, alen, ssig);
	hq_free(am);
	if (!ok) {
		*why = "OpenSSL failed (HMAC)";
		return SCRAM_BAD_MESSAGE;
	}
	/* ClientKey = ClientProof XOR ClientSignature; H(ClientKey) must be StoredKey */
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = f.proof[i] ^ sig[i];
	ok = EVP_Digest(key, sizeof(key), stored, &dlen, EVP_sha512(), NULL) == 1;
	int same = CRYPTO_memcmp(stored, s->stored_key, SCRAM_KEY_LEN) == 0;
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok || !same || !s->known) {
		OPENSSL_cleanse(ssig, sizeof(ssig));
		*why = s->known ? "wrong password (SCRAM proof)" : "unknown user (SCRAM)";
		return SCRAM_BAD_PROOF;
	}
	char *v = b64_enc(ssig, sizeof(ssig));
	size_t vlen = strlen(v);
	*out = hq_malloc(vlen + 2);
	memcpy(*out, "v=", 2);
	memcpy(*out + 2, v, vlen);
	*outlen = vlen + 2;
	hq_free(v);
	*why = "SCRAM-SHA-512 (password file)";
	return SCRAM_OK;
}
