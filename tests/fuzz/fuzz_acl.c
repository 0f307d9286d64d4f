/*
 * fuzz_acl.c - libFuzzer harness for the ACL file parser (acl_parse,
 * Mosquitto's format: user, topic [read|write|readwrite|deny], pattern with
 * %u and %c) and for acl_check on what it parsed. Built and run by
 * `make fuzz`.
 *
 * Contract: a parse either fails with an error or yields rules that
 * acl_check answers for any user, client id, topic and filter with one of
 * the three verdicts (pattern substitution of hostile names included).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_acl.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); abort(); } } while (0)

static void check_one(const struct acl_rules *r, const char *user, const char *cid,
		      const char *what, bool filter)
{
	for (unsigned access = ACL_READ; access <= ACL_WRITE; access++) {
		if (filter && access != ACL_READ)
			continue;
		enum acl_verdict v = acl_check(r, user, cid, access, what, filter);
		CHECK(v == ACL_NO_MATCH || v == ACL_ALLOW || v == ACL_DENY);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	log_set_level(LOG_NONE);
	char err[256];
	err[0] = '\0';
	/* not NUL terminated on purpose: the parser takes a length */
	char *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	struct acl_rules *r = acl_parse("fuzz.acl", copy, size, err, sizeof(err));
	if (!r) {
		CHECK(err[0]);
		free(copy);
		return 0;
	}
	static const char *const users[] = { NULL, "alice", "bob", "%u", "a/b", "+", "#", "" };
	static const char *const topics[] = { "a", "a/b", "alice/x", "bob/c/d", "$SYS/x", "/",
					      "a//b", "x/%c/y", "" };
	static const char *const filters[] = { "#", "+", "a/#", "+/b", "alice/+", "$SYS/#", "a/+/c" };
	for (size_t u = 0; u < sizeof(users) / sizeof(*users); u++) {
		for (size_t t = 0; t < sizeof(topics) / sizeof(*topics); t++)
			if (topics[t][0])
				check_one(r, users[u], "cid-1", topics[t], false);
		for (size_t f = 0; f < sizeof(filters) / sizeof(*filters); f++)
			check_one(r, users[u], users[u] ? users[u] : "c", filters[f], true);
	}
	acl_unref(r);
	free(copy);
	return 0;
}
