/*
 * clu_auth.c - the cookie challenge of cluster links (see AUTHENTICATION in
 * clu_proto.h): HMAC-SHA256 proofs over both nonces and both node names, keyed
 * by node.cookie, which never leaves the process. OpenSSL libcrypto.
 */
#include "cluster/clu_proto.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/err.h"

#define LABEL_LEN (sizeof(CLU_AUTH_LABEL) - 1)
/* the largest MAC input: label, two length-prefixed names, two nonces */
#define INPUT_MAX (LABEL_LEN + 2 * (2 + CLU_NAME_MAX) + 2 * CLU_NONCE_LEN)

int clu_auth_nonce(uint8_t out[CLU_NONCE_LEN])
{
	return RAND_bytes(out, CLU_NONCE_LEN) == 1 ? HQ_OK : HQ_EIO;
}

static size_t put_name(uint8_t *p, struct clu_str s)
{
	p[0] = (uint8_t)(s.len >> 8);
	p[1] = (uint8_t)s.len;
	memcpy(p + 2, s.p, s.len);
	return 2 + s.len;
}

int clu_auth_proof(const char *cookie, struct clu_str local_name, struct clu_str remote_name,
		   const uint8_t nonce_a[CLU_NONCE_LEN], const uint8_t nonce_b[CLU_NONCE_LEN],
		   uint8_t out[CLU_PROOF_LEN])
{
	uint8_t in[INPUT_MAX];
	size_t n = 0, klen = cookie ? strlen(cookie) : 0;
	unsigned int olen = 0;

	if (klen == 0 || klen > INT32_MAX || !clu_name_valid(local_name.p, local_name.len) ||
	    !clu_name_valid(remote_name.p, remote_name.len))
		return HQ_EINVAL;
	memcpy(in, CLU_AUTH_LABEL, LABEL_LEN);
	n += LABEL_LEN;
	n += put_name(in + n, local_name);
	n += put_name(in + n, remote_name);
	memcpy(in + n, nonce_a, CLU_NONCE_LEN);
	n += CLU_NONCE_LEN;
	memcpy(in + n, nonce_b, CLU_NONCE_LEN);
	n += CLU_NONCE_LEN;
	if (!HMAC(EVP_sha256(), cookie, (int)klen, in, n, out, &olen) || olen != CLU_PROOF_LEN)
		return HQ_EIO;
	return HQ_OK;
}

int clu_auth_verify(const char *cookie, struct clu_str local_name, struct clu_str remote_name,
		    const uint8_t nonce_a[CLU_NONCE_LEN], const uint8_t nonce_b[CLU_NONCE_LEN],
		    const uint8_t proof[CLU_PROOF_LEN])
{
	uint8_t want[CLU_PROOF_LEN];
	/* the proof was made by remote_name for us */
	int rc = clu_auth_proof(cookie, remote_name, local_name, nonce_a, nonce_b, want);

	if (rc)
		return rc;
	rc = CRYPTO_memcmp(want, proof, CLU_PROOF_LEN) == 0 ? HQ_OK : HQ_EAUTH;
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}
