/*
 * fuzz_auth_answer.c - libFuzzer harness for the authentication methods that
 * ask a server (src/auth/): the templates a client's names and password are
 * substituted into (auth_tmpl.c), the HTTP hook's answer (auth_http_verdict),
 * the Redis command's reply (auth_redis_verdict on any RESP value hiredis
 * reads) and the stored hashes (auth_hash.c). The client and the server are
 * both untrusted here. Built and run by `make fuzz`.
 *
 * Byte 0 picks the mode:
 *   0 templates: tmpl NUL client id NUL user name NUL password (the rest).
 *     An escaped value never escapes its place: "${password}" between quotes
 *     rendered for JSON parses back to exactly the password; rendered for a
 *     URL it is only unreserved bytes and %XX.
 *   1 HTTP answer: two bytes of status, the body.
 *   2 Redis reply: rule byte, RESP bytes; a password is "pw".
 *   3 a stored hash: alg/pos byte, salt NUL stored NUL password.
 * Checks: a verdict is one of the four, a reason is always written, an allow
 * needs a definite answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "auth/auth_async.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

/* The next NUL-terminated piece of [*p, end), as an owned string; the rest
 * when there is no NUL. */
static char *piece(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);
	memcpy(s, *p, n);
	s[n] = '\0';
	*p += n + (z ? 1 : 0);
	if (len)
		*len = n;
	return s;
}

static bool unreserved(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static void fuzz_tmpl(const uint8_t *p, const uint8_t *end)
{
	struct auth_job j = { 0 };
	char *tmpl = piece(&p, end, NULL);
	j.client_id = piece(&p, end, NULL);
	j.username = piece(&p, end, NULL);
	j.peerhost = (char *)"127.0.0.1";
	/* the password may hold NUL bytes: the rest, with a NUL after it */
	j.password_len = (size_t)(end - p);
	j.password = malloc(j.password_len + 1);
	memcpy(j.password, p, j.password_len);
	j.password[j.password_len] = '\0';
	j.has_password = true;

	(void)auth_tmpl_check(tmpl);
	for (int esc = TMPL_RAW; esc <= TMPL_URL; esc++)
		free(auth_tmpl_render(tmpl, &j, (enum tmpl_esc)esc));

	/* a JSON string holding the password is that password, nothing more */
	char *js = auth_tmpl_render("{\"p\":\"${password}\"}", &j, TMPL_JSON);
	cJSON *doc = cJSON_Parse(js);
	CHECK(doc != NULL);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "p");
	CHECK(cJSON_IsString(v) && cJSON_GetArraySize(doc) == 1);
	if (!memchr(j.password, 0, j.password_len))
		CHECK(strlen(v->valuestring) == j.password_len &&
		      memcmp(v->valuestring, j.password, j.password_len) == 0);
	cJSON_Delete(doc);
	free(js);

	/* a URL component holding the user name: unreserved bytes and %XX only */
	char *u = auth_tmpl_render("${username}", &j, TMPL_URL);
	for (const char *c = u; *c; c++) {
		if (*c == '%') {
			CHECK(c[1] && c[2]);
			c += 2;
		} else {
			CHECK(unreserved(*c));
		}
	}
	free(u);
	free(tmpl);
	free(j.client_id);
	free(j.username);
	free(j.password);
}

static void fuzz_http(const uint8_t *p, const uint8_t *end)
{
	if (end - p < 2)
		return;
	static const long common[] = { 200, 204, 200, 401, 500, 302 };
	long status = p[0] < 6 ? common[p[0]] : (long)(p[0] << 8 | p[1]);
	p += 2;
	/* an exact-size copy, not NUL terminated: curl's buffer is not */
	size_t n = (size_t)(end - p);
	char *body = malloc(n ? n : 1);
	memcpy(body, p, n);
	bool su = false, failed = false;
	char why[160] = "";
	enum auth_verdict v = auth_http_verdict(status, body, n, &su, why, sizeof(why), &failed);
	CHECK(v == AV_IGNORE || v == AV_ALLOW || v == AV_DENY);
	CHECK(why[0]);
	CHECK(!su || v == AV_ALLOW);
	if (status != 200 && status != 204)
		CHECK(v == AV_IGNORE);
	free(body);
}

static void fuzz_redis(const uint8_t *p, const uint8_t *end)
{
	if (end - p < 2)
		return;
	uint8_t r = *p++;
	struct auth_redis_rule rule = {
		.f_hash = r & 3, .f_salt = (r >> 2 & 3) - 1, .f_super = (r >> 4 & 3) - 1,
		.alg = (enum auth_hash_alg)(r >> 6), .salt_pos = (enum auth_salt_pos)(r % 3),
		.iter = 1 + r % 4, /* PBKDF2 rounds: slow by design, kept cheap */
	};
	redisReader *rd = redisReaderCreate();
	void *reply = NULL;
	if (redisReaderFeed(rd, (const char *)p, (size_t)(end - p)) == REDIS_OK &&
	    redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
		struct auth_job j = { .client_id = (char *)"c", .username = (char *)"u",
				      .peerhost = (char *)"127.0.0.1", .password = (uint8_t *)"pw",
				      .password_len = 2, .has_password = !(r & 0x80) };
		char why[200] = "";
		enum auth_verdict v = auth_redis_verdict(&rule, reply, &j, why, sizeof(why));
		CHECK(v == AV_IGNORE || v == AV_ALLOW || v == AV_DENY);
		CHECK(why[0]);
		CHECK(!j.superuser || v == AV_ALLOW);
		freeReplyObject(reply);
	}
	redisReaderFree(rd);
}

static void fuzz_hash(const uint8_t *p, const uint8_t *end)
{
	if (end - p < 1)
		return;
	uint8_t m = *p++;
	size_t plen;
	char *salt = piece(&p, end, NULL);
	char *stored = piece(&p, end, NULL);
	char *pw = piece(&p, end, &plen);
	(void)auth_hash_match((enum auth_hash_alg)(m & 3), (enum auth_salt_pos)((m >> 2) % 3),
			      1 + (m >> 4), (const uint8_t *)pw, plen, salt, stored);
	/* plain: equal bytes and nothing else */
	CHECK(auth_hash_match(AH_PLAIN, AS_DISABLE, 1, (const uint8_t *)pw, plen, salt, stored) ==
	      (strlen(stored) == plen && !memcmp(pw, stored, plen)));
	free(salt);
	free(stored);
	free(pw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	log_set_level(LOG_NONE);
	/* an exact-size heap copy so ASan catches a read one past the end */
	uint8_t *p = malloc(size);
	memcpy(p, data, size);
	const uint8_t *end = p + size;
	switch (p[0] % 4) {
	case 0: fuzz_tmpl(p + 1, end); break;
	case 1: fuzz_http(p + 1, end); break;
	case 2: fuzz_redis(p + 1, end); break;
	default: fuzz_hash(p + 1, end); break;
	}
	free(p);
	return 0;
}
