/*
 * test_bridge_conf.c - unit tests for src/bridge/brg_conf.c (bridges.mqtt.*
 * lines into struct brg_conf, refusals with file:line) and the bridge's
 * topic matcher (brg_pipe.c), which picks the rule a message came through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bridge/brg_int.h"
#include "core/conf.h"
#include "core/err.h"

static int parse(const char *text, struct brg_conf **v, int *n, char *err, size_t errlen)
{
	struct hq_config cfg;
	conf_defaults(&cfg);
	int rc = conf_load_string(&cfg, "t.conf", text, err, errlen);
	if (rc == HQ_OK)
		rc = bridge_conf_parse(&cfg, v, n, err, errlen);
	conf_free(&cfg);
	return rc;
}

static void test_full(void **state)
{
	(void)state;
	struct brg_conf *v;
	int n;
	char err[512] = "";
	int rc = parse("bridges.mqtt.cloud.server = remote.example:8883\n"
		       "bridges.mqtt.cloud.mqtt_version = 3.1.1\n"
		       "bridges.mqtt.cloud.forwards = \"a/# -> site/ qos 2, b/+ -> qos 0, c -> x/\"\n"
		       "bridges.mqtt.cloud.subscriptions = \"cmd/# -> \"\n"
		       "bridges.mqtt.cloud.ssl.enable = true\n"
		       "bridges.mqtt.cloud.ssl.verify = none\n"
		       "bridges.mqtt.cloud.reconnect_min = 500ms\n"
		       "bridges.mqtt.cloud.keepalive = 2m\n"
		       "bridges.mqtt.other.server = [::1]:1883\n"
		       "bridges.mqtt.other.forwards = \"x -> y/\"\n",
		       &v, &n, err, sizeof(err));
	assert_int_equal(rc, HQ_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "cloud");
	assert_string_equal(v[0].host, "remote.example");
	assert_int_equal(v[0].port, 8883);
	assert_int_equal(v[0].version, 4);
	assert_string_equal(v[0].clientid, "hamqtt-cluster-bridge-cloud");
	assert_int_equal(v[0].n_fwd, 3);
	assert_string_equal(v[0].fwd[0].filter, "a/#");
	assert_string_equal(v[0].fwd[0].prefix, "site/");
	assert_int_equal(v[0].fwd[0].qos, 2);
	assert_string_equal(v[0].fwd[1].prefix, "");
	assert_int_equal(v[0].fwd[1].qos, 0);
	assert_int_equal(v[0].fwd[2].qos, 1); /* the default */
	assert_int_equal(v[0].n_sub, 1);
	assert_string_equal(v[0].sub[0].prefix, "");
	assert_true(v[0].ssl);
	assert_false(v[0].verify_peer);
	assert_int_equal(v[0].reconnect_min_ms, 500);
	assert_int_equal(v[0].keepalive_s, 120);
	assert_int_equal(v[0].max_buffered, 100000);
	assert_string_equal(v[1].host, "::1");
	assert_int_equal(v[1].version, 5);
	bridge_conf_free(v, n);
}

static void refused(const char *text, const char *want)
{
	struct brg_conf *v = NULL;
	int n = 0;
	char err[512] = "";
	assert_int_equal(parse(text, &v, &n, err, sizeof(err)), HQ_EINVAL);
	if (!strstr(err, want))
		fail_msg("error '%s' does not contain '%s'", err, want);
}

static void test_refused(void **state)
{
	(void)state;
	refused("bridges.mqtt.a.forwards = \"x -> y\"\n", "t.conf:1: bridges.mqtt.a.forwards: bridge 'a' has no server");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x y\"\n",
		"t.conf:2: bridges.mqtt.a.forwards: entry 1: expected '<filter> -> <prefix> [qos N]'");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x/#/y -> z\"\n",
		"t.conf:2: bridges.mqtt.a.forwards: entry 1: not a valid topic filter");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x/a+ -> z\"\n",
		"not a valid topic filter");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x -> z/+\"\n",
		"the prefix after '->' must be a plain topic part");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x -> z qos 3\"\n",
		"qos must be 0, 1 or 2");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x -> z,\"\n",
		"entry 2: expected");
	refused("bridges.mqtt.a.server = h\n", "t.conf:1: bridges.mqtt.a.server: expected host:port");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.colour = red\n",
		"t.conf:2: bridges.mqtt.a.colour: unknown key");
	refused("bridges.mqtt.a.server = h:1\n", "neither forwards nor subscriptions");
	refused("bridges.mqtt.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.server = h:1\n",
		"invalid bridge name"); /* 64 characters */
	refused("bridges.mqtt..server = h:1\n", "invalid bridge name");
	refused("bridges.kafka.a.server = h:1\n", "t.conf:1: bridges.kafka.a.server: unknown key");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x -> y\"\n"
		"bridges.mqtt.a.mqtt_version = 4\n", "expected 5 or 3.1.1");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x -> y\"\n"
		"bridges.mqtt.a.reconnect_min = 2m\nbridges.mqtt.a.reconnect_max = 1m\n",
		"reconnect_min above reconnect_max");
	refused("bridges.mqtt.a.server = h:1\nbridges.mqtt.a.forwards = \"x -> y\"\n"
		"bridges.mqtt.a.max_buffered = 0\n", "expected a count");
}

static bool m(const char *f, const char *t)
{
	return brg_topic_match(f, (const uint8_t *)t, strlen(t));
}

static void test_topic_match(void **state)
{
	(void)state;
	assert_true(m("a/b", "a/b"));
	assert_false(m("a/b", "a/bc"));
	assert_false(m("a/bc", "a/b"));
	assert_false(m("a/b", "a/b/c"));
	assert_true(m("a/#", "a/b/c"));
	assert_true(m("a/#", "a"));       /* [MQTT-4.7.1-2] the parent level too */
	assert_true(m("#", "x/y"));
	assert_false(m("#", "$SYS/x"));   /* [MQTT-4.7.2-1] */
	assert_false(m("+/x", "$SYS/x"));
	assert_true(m("$SYS/#", "$SYS/x"));
	assert_true(m("a/+/c", "a/b/c"));
	assert_true(m("a/+/c", "a//c"));
	assert_false(m("a/+/c", "a/b/d"));
	assert_true(m("a/+", "a/"));
	assert_false(m("a/+", "a"));
	assert_true(m("+", ""));
	assert_true(m("+/+", "/"));
	assert_false(m("a", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_topic_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
