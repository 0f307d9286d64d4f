/*
 * auth_ext.c - MQTT v5 enhanced authentication methods (auth.h auth_ext_*):
 * today SCRAM-SHA-512 against the password file (auth_scram.c).
 *
 * The method is offered only with auth.password_file set (else a client
 * asking for it gets 0x8C, as for any unknown method). A user without a $7$
 * entry (unknown, or a $6$ entry, which is not a SCRAM SaltedPassword) gets
 * a decoy challenge and fails at the proof with the same answer as a wrong
 * password, so the exchange does not tell which user names exist; the log
 * line says which it was. Server work per exchange: three HMACs and two
 * digests, no PBKDF2 (the client does that), so it runs inline on the
 * worker.
 */
#include "auth/auth.h"
#include "auth/auth_passwd.h"
#include "auth/auth_scram.h"
#include "core/mem.h"

#include <string.h>

#include <openssl/crypto.h>

#define METHOD_SCRAM512 "SCRAM-SHA-512"

struct auth_ext {
	struct scram scram;
	char user[SCRAM_USER_MAX]; /* set on AUTH_EXT_OK */
};

struct auth_ext *auth_ext_new(struct auth *a, const char *method, size_t len)
{
	if (len != strlen(METHOD_SCRAM512) || memcmp(method, METHOD_SCRAM512, len) != 0 ||
	    !auth_has_passwd(a))
		return NULL;
	return hq_calloc(1, sizeof(struct auth_ext));
}

void auth_ext_free(struct auth_ext *x)
{
	if (!x)
		return;
	scram_reset(&x->scram);
	hq_free(x);
}

void auth_ext_restart(struct auth_ext *x)
{
	scram_reset(&x->scram);
	x->user[0] = 0;
}

const char *auth_ext_method(const struct auth_ext *x)
{
	(void)x;
	return METHOD_SCRAM512;
}

const char *auth_ext_user(const struct auth_ext *x)
{
	return x->user;
}

static enum auth_ext_rc scram_first(struct auth *a, struct auth_ext *x, const uint8_t *data,
				    size_t len, uint8_t **out, size_t *outlen, const char **why)
{
	struct scram_first f;
	if (scram_parse_first(data, len, &f, why) != 0)
		return AUTH_EXT_NOT_AUTHORIZED;
	struct passwd_hash h;
	struct scram_cred cred;
	uint32_t max_iter = 0;
	int found = auth_passwd_entry(a, f.user, &h, &max_iter);
	if (found && h.type == 7 && h.salt_len <= sizeof(cred.salt)) {
		memset(&cred, 0, sizeof(cred));
		cred.known = true;
		cred.iter = h.iter;
		cred.salt_len = h.salt_len;
		memcpy(cred.salt, h.salt, h.salt_len);
		memcpy(cred.salted, h.hash, SCRAM_KEY_LEN);
	} else if (scram_cred_decoy(f.user, max_iter ? max_iter : PASSWD_DEFAULT_ITER, &cred) != 0) {
		OPENSSL_cleanse(&h, sizeof(h));
		*why = "no random bytes for a SCRAM decoy";
		return AUTH_EXT_NOT_AUTHORIZED;
	}
	OPENSSL_cleanse(&h, sizeof(h));
	enum scram_rc rc = scram_server_first(&x->scram, &f, &cred, out, outlen, why);
	OPENSSL_cleanse(&cred, sizeof(cred));
	return rc == SCRAM_CONTINUE ? AUTH_EXT_CONTINUE : AUTH_EXT_NOT_AUTHORIZED;
}

enum auth_ext_rc auth_ext_step(struct auth *a, struct auth_ext *x, const uint8_t *data, size_t len,
			       uint8_t **out, size_t *outlen, const char **why)
{
	*out = NULL;
	*outlen = 0;
	if (x->scram.stage == 0)
		return scram_first(a, x, data, len, out, outlen, why);
	enum scram_rc rc = scram_client_final(&x->scram, data, len, out, outlen, why);
	if (rc == SCRAM_OK) {
		memcpy(x->user, x->scram.user, sizeof(x->user));
		return AUTH_EXT_OK;
	}
	return rc == SCRAM_BAD_PROOF ? AUTH_EXT_BAD_CREDENTIALS : AUTH_EXT_NOT_AUTHORIZED;
}
