/*
 * test_auth_acldb.c - unit tests for the built-in database's ACL rules:
 * EMQX rule lists (acl_ordered_* in auth_acl.c), their validation and
 * canonical form, and a client's combined list (client id, user name, all)
 * in auth_acldb.c on a real replicated table in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "auth/auth_acl.h"
#include "auth/auth_acldb.h"
#include "core/err.h"
#include "core/mem.h"
#include "repl/repl.h"

static char why[256];

/* validate text as a rule list: HQ_OK and the canonical text in *out */
static int validate(const char *text, char **out)
{
	cJSON *j = cJSON_Parse(text);
	assert_non_null(j);
	why[0] = 0;
	int rc = auth_acldb_validate(j, out, why, sizeof(why));
	cJSON_Delete(j);
	return rc;
}

static void test_validate(void **state)
{
	(void)state;
	char *t = NULL;
	assert_int_equal(validate("[{\"action\":\"all\",\"permission\":\"allow\",\"topic\":\"t/#\"},"
				  "{\"topic\":\"#\",\"permission\":\"deny\",\"action\":\"publish\"}]", &t),
			 HQ_OK);
	/* canonical: topic, permission, action, compact */
	assert_string_equal(t, "[{\"topic\":\"t/#\",\"permission\":\"allow\",\"action\":\"all\"},"
			       "{\"topic\":\"#\",\"permission\":\"deny\",\"action\":\"publish\"}]");
	hq_free(t);
	assert_int_equal(validate("[]", &t), HQ_OK);
	assert_string_equal(t, "[]");
	hq_free(t);
	assert_int_equal(validate("{}", &t), HQ_EINVAL);
	assert_null(t);
	assert_string_equal(why, "rules must be an array");
	assert_int_equal(validate("[1]", &t), HQ_EINVAL);
	assert_string_equal(why, "rule 1: must be an object");
	assert_int_equal(validate("[{\"topic\":\"a\",\"permission\":\"allow\",\"action\":\"all\"},"
				  "{\"topic\":\"a\",\"permission\":\"maybe\",\"action\":\"all\"}]", &t),
			 HQ_EINVAL);
	assert_string_equal(why, "rule 2: permission must be allow or deny");
	assert_int_equal(validate("[{\"topic\":\"a\",\"permission\":\"allow\",\"action\":\"read\"}]", &t),
			 HQ_EINVAL);
	assert_string_equal(why, "rule 1: action must be publish, subscribe or all");
	assert_int_equal(validate("[{\"topic\":\"a/#/b\",\"permission\":\"allow\",\"action\":\"all\"}]", &t),
			 HQ_EINVAL);
	assert_string_equal(why, "rule 1: topic must be a valid topic filter");
	assert_int_equal(validate("[{\"permission\":\"allow\",\"action\":\"all\"}]", &t), HQ_EINVAL);
	assert_string_equal(why, "rule 1: topic must be a valid topic filter");
	/* a condition we do not evaluate is refused, never ignored */
	assert_int_equal(validate("[{\"topic\":\"a\",\"permission\":\"allow\",\"action\":\"all\","
				  "\"qos\":[1]}]", &t), HQ_EINVAL);
	assert_string_equal(why, "rule 1: unsupported member \"qos\" (topic, permission and action only)");
	/* at most ACLDB_MAX_RULES per list */
	char big[16384] = "[";
	for (int i = 0; i <= ACLDB_MAX_RULES; i++)
		strcat(big, "{\"topic\":\"a\",\"permission\":\"allow\",\"action\":\"all\"},");
	big[strlen(big) - 1] = ']';
	assert_int_equal(validate(big, &t), HQ_EINVAL);
	assert_string_equal(why, "rule 101: too many rules");
}

static enum acl_verdict check(const struct acl_rules *r, const char *user, const char *cid,
			      unsigned access, const char *what, bool filter)
{
	return acl_check(r, user, cid, access, what, filter);
}

static void test_ordered_append(void **state)
{
	(void)state;
	struct acl_rules *r = acl_ordered_new();
	cJSON *a = cJSON_Parse("[{\"topic\":\"t/x\",\"permission\":\"deny\",\"action\":\"publish\"},"
			       "{\"topic\":\"t/#\",\"permission\":\"allow\",\"action\":\"all\"}]");
	cJSON *b = cJSON_Parse("[{\"topic\":\"#\",\"permission\":\"deny\",\"action\":\"all\"},"
			       "{\"topic\":\"u/${clientid}/#\",\"permission\":\"allow\",\"action\":\"all\"}]");
	cJSON *bad = cJSON_Parse("[{\"topic\":\"ok\",\"permission\":\"allow\",\"action\":\"all\"},"
				 "{\"topic\":\"+x\",\"permission\":\"allow\",\"action\":\"all\"}]");
	assert_true(acl_ordered_append(r, a, 100, why, sizeof(why)));
	assert_true(acl_ordered_append(r, b, 100, why, sizeof(why)));
	/* a bad list leaves the set as it was */
	assert_false(acl_ordered_append(r, bad, 100, why, sizeof(why)));
	assert_int_equal(acl_ordered_count(r), 4);
	/* first covering rule decides, across the appended lists */
	assert_int_equal(check(r, "u", "c1", ACL_WRITE, "t/x", false), ACL_DENY);
	assert_int_equal(check(r, "u", "c1", ACL_READ, "t/x", false), ACL_ALLOW);
	assert_int_equal(check(r, "u", "c1", ACL_WRITE, "t/y", false), ACL_ALLOW);
	assert_int_equal(check(r, "u", "c1", ACL_READ, "t/+", true), ACL_ALLOW);
	/* the later list's deny # comes before its own allow */
	assert_int_equal(check(r, "u", "c1", ACL_WRITE, "u/c1/a", false), ACL_DENY);
	assert_int_equal(check(r, "u", "c1", ACL_WRITE, "other", false), ACL_DENY);
	/* $-topics: # never covers them */
	assert_int_equal(check(r, "u", "c1", ACL_READ, "$SYS/x", false), ACL_NO_MATCH);
	cJSON *notlist = cJSON_Parse("{}");
	assert_false(acl_ordered_append(r, notlist, 100, why, sizeof(why)));
	assert_string_equal(why, "rules must be an array");
	cJSON_Delete(notlist);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(bad);
	acl_unref(r);
}

static struct repl *open_repl(char *dir)
{
	strcpy(dir, "/tmp/hq-acldb-XXXXXX");
	assert_non_null(mkdtemp(dir));
	char err[256];
	struct repl *rp = repl_open(dir, "n1", err, sizeof(err));
	if (!rp)
		fail_msg("repl_open: %s", err);
	return rp;
}

static void rm_dir(const char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int set(struct auth_acldb *db, enum acldb_kind k, const char *name, const char *text,
	       bool create_only)
{
	cJSON *j = cJSON_Parse(text);
	int rc = auth_acldb_set(db, k, name, j, create_only, why, sizeof(why));
	cJSON_Delete(j);
	return rc;
}

static void test_db_rules_for(void **state)
{
	(void)state;
	char dir[64];
	struct repl *rp = open_repl(dir);
	struct auth_acldb *db = auth_acldb_new(rp);
	assert_non_null(db);
	/* an empty table: nothing read, no rules */
	assert_false(auth_acldb_active(db));
	assert_null(auth_acldb_rules_for(db, "alice", "c1"));
	assert_int_equal(set(db, ACLDB_ALL, NULL,
			     "[{\"topic\":\"#\",\"permission\":\"deny\",\"action\":\"all\"}]", false), HQ_OK);
	assert_int_equal(set(db, ACLDB_USER, "alice",
			     "[{\"topic\":\"a/#\",\"permission\":\"allow\",\"action\":\"all\"},"
			     "{\"topic\":\"c/#\",\"permission\":\"allow\",\"action\":\"all\"}]", true), HQ_OK);
	assert_int_equal(set(db, ACLDB_USER, "alice", "[]", true), HQ_EEXIST);
	assert_int_equal(set(db, ACLDB_CLIENT, "c1",
			     "[{\"topic\":\"c/#\",\"permission\":\"deny\",\"action\":\"publish\"}]", true), HQ_OK);
	assert_int_equal(set(db, ACLDB_USER, "", "[]", false), HQ_EINVAL);
	assert_string_equal(why, "username must be 1..1000 bytes");
	assert_int_equal(set(db, ACLDB_USER, "bob", "[{\"topic\":\"x\"}]", false), HQ_EINVAL);
	assert_true(auth_acldb_active(db));
	/* order: client id's, user name's, all's */
	struct acl_rules *r = auth_acldb_rules_for(db, "alice", "c1");
	assert_non_null(r);
	assert_int_equal(acl_ordered_count(r), 4);
	assert_int_equal(check(r, "alice", "c1", ACL_WRITE, "c/1", false), ACL_DENY);  /* client */
	assert_int_equal(check(r, "alice", "c1", ACL_READ, "c/1", false), ACL_ALLOW);  /* user */
	assert_int_equal(check(r, "alice", "c1", ACL_WRITE, "a/1", false), ACL_ALLOW);
	assert_int_equal(check(r, "alice", "c1", ACL_WRITE, "z", false), ACL_DENY);    /* all */
	acl_unref(r);
	/* anonymous: client and all only */
	r = auth_acldb_rules_for(db, NULL, "c2");
	assert_int_equal(acl_ordered_count(r), 1);
	assert_int_equal(check(r, NULL, "c2", ACL_WRITE, "a/1", false), ACL_DENY);
	acl_unref(r);
	/* get, list, delete */
	cJSON *got = NULL;
	assert_int_equal(auth_acldb_get(db, ACLDB_CLIENT, "c1", &got), HQ_OK);
	char *s = cJSON_PrintUnformatted(got);
	assert_string_equal(s, "[{\"topic\":\"c/#\",\"permission\":\"deny\",\"action\":\"publish\"}]");
	cJSON_free(s);
	cJSON_Delete(got);
	assert_int_equal(auth_acldb_get(db, ACLDB_CLIENT, "nope", &got), HQ_ENOTFOUND);
	assert_int_equal(set(db, ACLDB_USER, "bob", "[]", false), HQ_OK);
	struct auth_acldb_entry *v;
	size_t n, total;
	auth_acldb_list(db, ACLDB_USER, 1, 10, &v, &n, &total);
	assert_int_equal(total, 2);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "bob");
	auth_acldb_entries_free(v, n);
	/* empty lists give no rules: a client whose lists are all empty has none */
	assert_int_equal(auth_acldb_delete(db, ACLDB_ALL, NULL), HQ_OK);
	assert_null(auth_acldb_rules_for(db, "bob", "c9"));
	assert_int_equal(auth_acldb_delete(db, ACLDB_USER, "alice"), HQ_OK);
	assert_int_equal(auth_acldb_delete(db, ACLDB_USER, "alice"), HQ_ENOTFOUND);
	assert_int_equal(auth_acldb_delete(db, ACLDB_CLIENT, "c1"), HQ_OK);
	assert_int_equal(auth_acldb_delete(db, ACLDB_USER, "bob"), HQ_OK);
	assert_false(auth_acldb_active(db));
	auth_acldb_free(db);
	repl_free(rp);
	rm_dir(dir);
}

static void test_db_bad_stored_list_fails_closed(void **state)
{
	(void)state;
	char dir[64];
	struct repl *rp = open_repl(dir);
	struct auth_acldb *db = auth_acldb_new(rp);
	/* as a newer version might have written it */
	const char *v = "[{\"topic\":\"t\",\"permission\":\"allow\",\"action\":\"publish_v9\"}]";
	assert_int_equal(repl_put(repl_table(rp, "acldb"), "u:eve", 5, v, strlen(v), 0), HQ_OK);
	cJSON *j = cJSON_Parse("[]");
	assert_int_equal(auth_acldb_set(db, ACLDB_CLIENT, "x", j, false, why, sizeof(why)), HQ_OK);
	cJSON_Delete(j);
	struct acl_rules *r = auth_acldb_rules_for(db, "eve", "c");
	assert_non_null(r);
	assert_int_equal(check(r, "eve", "c", ACL_WRITE, "t", false), ACL_DENY);
	assert_int_equal(check(r, "eve", "c", ACL_READ, "$SYS/broker/uptime", false), ACL_DENY);
	assert_int_equal(check(r, "eve", "c", ACL_READ, "#", true), ACL_DENY);
	acl_unref(r);
	auth_acldb_free(db);
	repl_free(rp);
	rm_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_ordered_append),
		cmocka_unit_test(test_db_rules_for),
		cmocka_unit_test(test_db_bad_stored_list_fails_closed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
