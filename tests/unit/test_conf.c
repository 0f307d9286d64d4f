/*
 * test_conf.c - unit tests of the configuration schema and parsers (core/conf.c):
 * defaults, each value type, syntax, exact error messages, environment and
 * --set overrides, listeners, validation, host:port parsing, and the check
 * that etc/hamqtt.conf lists every key with its default (run from repo root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"

#define DEFAULT_CONF "etc/hamqtt.conf"

static char err[CONF_ERR_MAX];

static int setup(void **state)
{
	struct hq_config *cfg = calloc(1, sizeof(*cfg));
	conf_defaults(cfg);
	err[0] = '\0';
	*state = cfg;
	return 0;
}

static int teardown(void **state)
{
	conf_free(*state);
	free(*state);
	return 0;
}

/* Load text as "t.conf" and expect success. */
static void load_ok(struct hq_config *cfg, const char *text)
{
	int rc = conf_load_string(cfg, "t.conf", text, err, sizeof(err));
	if (rc != HQ_OK)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(rc, HQ_OK);
}

/* Load text as name and expect exactly the error message want. */
static void load_err(struct hq_config *cfg, const char *name, const char *text, const char *want)
{
	err[0] = '\0';
	assert_int_equal(conf_load_string(cfg, name, text, err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, want);
}

static void set_ok(struct hq_config *cfg, const char *kv)
{
	int rc = conf_set(cfg, "--set", kv, err, sizeof(err));
	if (rc != HQ_OK)
		print_error("unexpected error: %s\n", err);
	assert_int_equal(rc, HQ_OK);
}

static void set_err(struct hq_config *cfg, const char *kv, const char *want)
{
	err[0] = '\0';
	assert_int_equal(conf_set(cfg, "--set", kv, err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, want);
}

static void get_is(const struct hq_config *cfg, const char *key, const char *want)
{
	char out[256];
	assert_int_equal(conf_get(cfg, key, out, sizeof(out)), HQ_OK);
	assert_string_equal(out, want);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* ---- defaults and the default file ---- */

static void test_defaults(void **state)
{
	struct hq_config *c = *state;
	assert_string_equal(c->node_name, "hamqtt@127.0.0.1");
	assert_string_equal(c->node_cookie, "hamqttsecretcookie");
	assert_string_equal(c->node_data_dir, "data");
	assert_int_equal(c->node_workers, 0);
	assert_string_equal(c->cluster_name, "hamqtt-cluster");
	assert_int_equal(c->cluster_discovery, CONF_DISC_MANUAL);
	assert_string_equal(c->cluster_static_seeds, "");
	assert_string_equal(c->cluster_dns_name, "");
	assert_int_equal(c->cluster_port, 4370);
	assert_int_equal(c->cluster_heartbeat_timeout, 5);
	assert_int_equal(c->n_listeners, 1);
	assert_string_equal(c->listeners[0].name, "default");
	assert_string_equal(c->listeners[0].bind, "0.0.0.0:1883");
	assert_false(c->listeners[0].proxy_protocol);
	assert_true(c->listeners[0].enabled);
	assert_int_equal(c->session_store, CONF_STORE_LOCAL);
	assert_string_equal(c->session_redis_server, "127.0.0.1:6379");
	assert_string_equal(c->dashboard_bind, "0.0.0.0:18083");
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->log_format, LOG_FMT_TEXT);
	assert_string_equal(c->log_file, "");
	assert_int_equal(c->max_packet_size, 1024 * 1024);
	assert_int_equal(c->max_inflight, 32);
	assert_int_equal(c->receive_maximum, 128);
	assert_int_equal(c->max_queued_messages, 1000);
	assert_int_equal(c->max_queued_bytes, 16u << 20);
	assert_int_equal(c->max_queued_bytes_total, 1u << 30);
	assert_int_equal(c->max_topic_levels, 128);
	assert_int_equal(c->max_subscriptions, 0);
	assert_int_equal(c->max_connections, 1000000);
	assert_int_equal(c->max_clientid_len, 65535);
	assert_int_equal(c->connect_timeout, 10);
	assert_int_equal(c->max_keepalive, 65535);
	assert_int_equal(c->server_keepalive, 0);
	assert_int_equal(c->topic_alias_maximum, 10);
	assert_int_equal(c->session_expiry_max, 7200);
	assert_int_equal(c->max_qos, 2);
	assert_true(c->retain_available);
	assert_true(c->wildcard_subscription);
	assert_true(c->shared_subscription);
	assert_true(c->subscription_identifiers);
	assert_int_equal(c->shared_strategy, CONF_SHARED_ROUND_ROBIN);
	assert_int_equal(c->max_outbuf, 8 * 1024 * 1024);
	assert_int_equal(c->sys_interval, 30);
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
}

static void test_key_table(void **state)
{
	(void)state;
	size_t n = conf_key_count();
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(conf_key_name(i));
		assert_non_null(conf_key_default(i));
		assert_non_null(conf_key_doc(i));
		assert_true(strlen(conf_key_doc(i)) > 0);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(conf_key_name(i), conf_key_name(j));
	}
	assert_null(conf_key_name(n));
	assert_null(conf_key_default(n));
	assert_null(conf_key_doc(n));
}

/* Is key set on an active (uncommented) line of text? */
/* Listeners of types other than tcp and ws are documented as a commented-out
 * example ("# listeners.ssl.default.bind = ..."): an ssl listener without
 * certificates would not start. The ws listener is enabled (like EMQX's). */
static bool commented_key(const char *key)
{
	return strncmp(key, "listeners.", 10) == 0 && strncmp(key, "listeners.tcp.", 14) != 0 &&
	       strncmp(key, "listeners.ws.", 13) != 0;
}

/* The line documenting key; its value (after '=', trimmed) into val. */
static bool key_line(const char *text, const char *key, char *val, size_t vlen)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (commented_key(key) && p[0] == '#' && p[1] == ' ')
			p += 2;
		if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '\t' || p[kl] == '=')) {
			const char *v = strchr(p, '=');
			const char *e = v ? strchr(v, '\n') : NULL;
			if (!v || !e)
				return false;
			for (v++; *v == ' '; v++)
				;
			snprintf(val, vlen, "%.*s", (int)(e - v), v);
			return true;
		}
	}
	return false;
}

static bool has_key_line(const char *text, const char *key)
{
	char val[256];
	return key_line(text, key, val, sizeof(val));
}

static void test_default_file(void **state)
{
	struct hq_config *def = *state;
	struct hq_config cfg;
	conf_defaults(&cfg);
	int rc = conf_load_file(&cfg, DEFAULT_CONF, err, sizeof(err));
	if (rc != HQ_OK)
		print_error("%s\n", err);
	assert_int_equal(rc, HQ_OK);
	assert_int_equal(conf_validate(&cfg, err, sizeof(err)), HQ_OK);
	/* relative to the file's directory, as hamqtt-ctl finds it */
	assert_string_equal(cfg.node_data_dir, "etc/data");
	set_ok(&cfg, "node.data_dir=data");
	assert_int_equal(cfg.n_listeners, 2);
	assert_string_equal(cfg.listeners[0].bind, "0.0.0.0:1883");
	assert_int_equal(cfg.listeners[1].type, CONF_LT_WS);
	assert_string_equal(cfg.listeners[1].bind, "0.0.0.0:8083");

	char *text = read_all(DEFAULT_CONF);
	/* the commented-out ssl and wss examples, applied, must give the defaults */
	char val[256], kv[512];
	set_ok(def, "listeners.ssl.default.enabled=true");
	set_ok(def, "listeners.ws.default.enabled=true");
	set_ok(def, "listeners.wss.default.enabled=true");
	for (size_t i = 0; conf_key_name(i); i++) {
		const char *key = conf_key_name(i);
		if (commented_key(key) && key_line(text, key, val, sizeof(val))) {
			if (val[0] == '"')
				snprintf(val, sizeof(val), "%s", conf_key_default(i)); /* "" */
			snprintf(kv, sizeof(kv), "%s=%s", key, val);
			set_ok(&cfg, kv);
		}
	}
	for (size_t i = 0; conf_key_name(i); i++) {
		const char *key = conf_key_name(i);
		if (!has_key_line(text, key))
			print_error("%s does not list key %s\n", DEFAULT_CONF, key);
		assert_true(has_key_line(text, key));
		/* and with the built-in default value */
		char a[256], b[256];
		assert_int_equal(conf_get(def, key, a, sizeof(a)), HQ_OK);
		assert_int_equal(conf_get(&cfg, key, b, sizeof(b)), HQ_OK);
		if (strcmp(a, b) != 0)
			print_error("%s: %s is '%s', default is '%s'\n", DEFAULT_CONF, key, b, a);
		assert_string_equal(a, b);
	}
	free(text);
	conf_free(&cfg);
}

/* Every key's default, written in a file, parses back to the same value. */
static void test_defaults_roundtrip(void **state)
{
	struct hq_config *def = *state;
	set_ok(def, "listeners.ssl.default.enabled=true");
	set_ok(def, "listeners.ws.default.enabled=true");
	set_ok(def, "listeners.wss.default.enabled=true");
	char text[16384];
	size_t n = 0;
	for (size_t i = 0; conf_key_name(i); i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s = \"%s\"\n",
				      conf_key_name(i), conf_key_default(i));
	assert_true(n < sizeof(text));
	struct hq_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	load_ok(&cfg, text);
	for (size_t i = 0; conf_key_name(i); i++) {
		char a[256], b[256];
		assert_int_equal(conf_get(def, conf_key_name(i), a, sizeof(a)), HQ_OK);
		assert_int_equal(conf_get(&cfg, conf_key_name(i), b, sizeof(b)), HQ_OK);
		assert_string_equal(a, b);
	}
	conf_free(&cfg);
}

/* ---- value types ---- */

static void test_strings(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "node.name = broker-1@10.0.0.5\n"
		   "node.cookie = s3cr3t\n"
		   "node.data_dir = /var/lib/hamqtt\n"
		   "log.file = /tmp/x.log\n"
		   "cluster.static.seeds = a@h1, b@h2 ,c@[::1]\n");
	assert_string_equal(c->node_name, "broker-1@10.0.0.5");
	assert_string_equal(c->node_cookie, "s3cr3t");
	assert_string_equal(c->node_data_dir, "/var/lib/hamqtt");
	assert_string_equal(c->log_file, "/tmp/x.log");
	assert_string_equal(c->cluster_static_seeds, "a@h1, b@h2 ,c@[::1]");
	load_ok(c, "log.file =\nnode.cookie = \"\"\n");
	assert_string_equal(c->log_file, "");
	assert_string_equal(c->node_cookie, "");
	load_err(c, "t.conf", "node.name = hamqtt\n",
		 "t.conf:1: node.name: expected name@host, got 'hamqtt'");
	load_err(c, "t.conf", "node.name = hamqtt@\n",
		 "t.conf:1: node.name: expected name@host, got 'hamqtt@'");
	load_err(c, "t.conf", "node.name = @host\n",
		 "t.conf:1: node.name: expected name@host, got '@host'");
	load_err(c, "t.conf", "cluster.static.seeds = a@h1,,b@h2\n",
		 "t.conf:1: cluster.static.seeds: expected a comma separated list of name@host, "
		 "got 'a@h1,,b@h2'");
	load_err(c, "t.conf", "session.redis.server = redis\n",
		 "t.conf:1: session.redis.server: expected host:port, got 'redis'");
	load_err(c, "t.conf", "dashboard.listeners.http.bind = 0.0.0.0:99999\n",
		 "t.conf:1: dashboard.listeners.http.bind: expected host:port, got '0.0.0.0:99999'");
}

static void test_ints(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "node.workers = 256\nmqtt.max_qos = 0\nmqtt.max_inflight = 65535\n"
		   "cluster.port = 0\nmqtt.max_connections = 4294967295\n");
	assert_int_equal(c->node_workers, 256);
	assert_int_equal(c->max_qos, 0);
	assert_int_equal(c->max_inflight, 65535);
	assert_int_equal(c->cluster_port, 0);
	assert_int_equal(c->max_connections, 4294967295u);
	load_err(c, "t.conf", "node.workers = 257\n",
		 "t.conf:1: node.workers: expected an integer 0..256, got '257'");
	load_err(c, "t.conf", "node.workers = -1\n",
		 "t.conf:1: node.workers: expected an integer 0..256, got '-1'");
	load_err(c, "t.conf", "node.workers = 4x\n",
		 "t.conf:1: node.workers: expected an integer 0..256, got '4x'");
	load_err(c, "t.conf", "node.workers =\n",
		 "t.conf:1: node.workers: expected an integer 0..256, got ''");
	load_err(c, "t.conf", "mqtt.max_inflight = 0\n",
		 "t.conf:1: mqtt.max_inflight: expected an integer 1..65535, got '0'");
	load_err(c, "t.conf", "mqtt.max_clientid_len = 0\n",
		 "t.conf:1: mqtt.max_clientid_len: expected an integer 1..65535, got '0'");
	load_err(c, "t.conf", "mqtt.max_connections = 99999999999999999999999\n",
		 "t.conf:1: mqtt.max_connections: expected an integer 1..4294967295, "
		 "got '99999999999999999999999'");
	/* integers take no suffix */
	load_err(c, "t.conf", "mqtt.max_inflight = 1k\n",
		 "t.conf:1: mqtt.max_inflight: expected an integer 1..65535, got '1k'");
	assert_int_equal(c->max_inflight, 65535);
}

static void test_bools(void **state)
{
	struct hq_config *c = *state;
	static const struct { const char *v; bool want; } cases[] = {
		{ "true", true }, { "false", false }, { "on", true }, { "off", false },
		{ "yes", true }, { "no", false }, { "1", true }, { "0", false },
		{ "TRUE", true }, { "Off", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "mqtt.retain_available = %s\n", cases[i].v);
		load_ok(c, line);
		assert_int_equal(c->retain_available, cases[i].want);
	}
	load_err(c, "t.conf", "mqtt.retain_available = maybe\n",
		 "t.conf:1: mqtt.retain_available: expected true or false "
		 "(also on/off, yes/no, 1/0), got 'maybe'");
	load_err(c, "t.conf", "mqtt.retain_available = 2\n",
		 "t.conf:1: mqtt.retain_available: expected true or false "
		 "(also on/off, yes/no, 1/0), got '2'");
	load_ok(c, "mqtt.wildcard_subscription = no\nmqtt.shared_subscription = off\n"
		   "mqtt.subscription_identifiers = 0\n");
	assert_false(c->wildcard_subscription);
	assert_false(c->shared_subscription);
	assert_false(c->subscription_identifiers);
}

static void test_enums(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "cluster.discovery_strategy = dns\nsession.store = redis\n"
		   "log.level = warning\nlog.format = json\n"
		   "mqtt.shared_subscription_strategy = hash_clientid\n");
	assert_int_equal(c->cluster_discovery, CONF_DISC_DNS);
	assert_int_equal(c->session_store, CONF_STORE_REDIS);
	assert_int_equal(c->log_level, LOG_WARNING);
	assert_int_equal(c->log_format, LOG_FMT_JSON);
	assert_int_equal(c->shared_strategy, CONF_SHARED_HASH_CLIENTID);
	load_ok(c, "log.level = none\nsession.store = memory\ncluster.discovery_strategy = static\n"
		   "mqtt.shared_subscription_strategy = random\n");
	assert_int_equal(c->log_level, LOG_NONE);
	assert_int_equal(c->session_store, CONF_STORE_MEMORY);
	assert_int_equal(c->cluster_discovery, CONF_DISC_STATIC);
	assert_int_equal(c->shared_strategy, CONF_SHARED_RANDOM);
	load_err(c, "t.conf", "session.store = disk\n",
		 "t.conf:1: session.store: expected one of memory|local|redis, got 'disk'");
	load_err(c, "t.conf", "log.level = verbose\n",
		 "t.conf:1: log.level: expected one of debug|info|notice|warning|error|none, "
		 "got 'verbose'");
	load_err(c, "t.conf", "mqtt.shared_subscription_strategy = sticky\n",
		 "t.conf:1: mqtt.shared_subscription_strategy: expected one of "
		 "round_robin|random|hash_clientid, got 'sticky'");
}

static void test_sizes(void **state)
{
	struct hq_config *c = *state;
	static const struct { const char *v; uint64_t want; } cases[] = {
		{ "0", 0 }, { "512", 512 }, { "1KB", 1024 }, { "2MB", 2u << 20 },
		{ "3GB", 3ull << 30 }, { "1kb", 1024 }, { "5K", 5120 }, { "7 MB", 7u << 20 },
		{ "100b", 100 }, { "1024GB", 1ull << 40 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "mqtt.max_queued_bytes = %s\n", cases[i].v);
		load_ok(c, line);
		assert_int_equal(c->max_queued_bytes, cases[i].want);
	}
	load_ok(c, "mqtt.max_packet_size = 16\nmqtt.max_outbuf = 64KB\n");
	assert_int_equal(c->max_packet_size, 16);
	assert_int_equal(c->max_outbuf, 65536);
	load_ok(c, "mqtt.max_packet_size = 268435455\n");
	assert_int_equal(c->max_packet_size, 268435455);
	load_err(c, "t.conf", "mqtt.max_packet_size = 256MB\n",
		 "t.conf:1: mqtt.max_packet_size: expected a size 16..268435455 bytes "
		 "(suffix KB, MB or GB allowed), got '256MB'");
	load_err(c, "t.conf", "mqtt.max_packet_size = 15\n",
		 "t.conf:1: mqtt.max_packet_size: expected a size 16..268435455 bytes "
		 "(suffix KB, MB or GB allowed), got '15'");
	load_err(c, "t.conf", "mqtt.max_packet_size = 1TB\n",
		 "t.conf:1: mqtt.max_packet_size: expected a size 16..268435455 bytes "
		 "(suffix KB, MB or GB allowed), got '1TB'");
	load_err(c, "t.conf", "mqtt.max_packet_size = MB\n",
		 "t.conf:1: mqtt.max_packet_size: expected a size 16..268435455 bytes "
		 "(suffix KB, MB or GB allowed), got 'MB'");
	load_err(c, "t.conf", "mqtt.max_outbuf = 4GB\n",
		 "t.conf:1: mqtt.max_outbuf: expected a size 1024..4294967295 bytes "
		 "(suffix KB, MB or GB allowed), got '4GB'");
	/* overflow of the multiplication is refused, not wrapped */
	load_err(c, "t.conf", "mqtt.max_queued_bytes = 99999999999GB\n",
		 "t.conf:1: mqtt.max_queued_bytes: expected a size 0..9223372036854775807 bytes "
		 "(suffix KB, MB or GB allowed), got '99999999999GB'");
}

static void test_durations(void **state)
{
	struct hq_config *c = *state;
	static const struct { const char *v; uint32_t want; } cases[] = {
		{ "0", 0 }, { "45", 45 }, { "30s", 30 }, { "5m", 300 }, { "2h", 7200 },
		{ "1H", 3600 }, { "10 s", 10 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "sys.interval = %s\n", cases[i].v);
		load_ok(c, line);
		assert_int_equal(c->sys_interval, cases[i].want);
	}
	load_ok(c, "mqtt.connect_timeout = 1m\ncluster.heartbeat_timeout = 15s\n"
		   "mqtt.session_expiry_max = 24h\n");
	assert_int_equal(c->connect_timeout, 60);
	assert_int_equal(c->cluster_heartbeat_timeout, 15);
	assert_int_equal(c->session_expiry_max, 86400);
	get_is(c, "mqtt.connect_timeout", "60s");
	load_err(c, "t.conf", "sys.interval = 2d\n",
		 "t.conf:1: sys.interval: expected a duration 0..86400 seconds "
		 "(suffix s, m or h allowed), got '2d'");
	load_err(c, "t.conf", "mqtt.connect_timeout = 0s\n",
		 "t.conf:1: mqtt.connect_timeout: expected a duration 1..3600 seconds "
		 "(suffix s, m or h allowed), got '0s'");
	load_err(c, "t.conf", "sys.interval = 25h\n",
		 "t.conf:1: sys.interval: expected a duration 0..86400 seconds "
		 "(suffix s, m or h allowed), got '25h'");
}

/* ---- syntax ---- */

static void test_quotes_and_comments(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "# a comment line\n"
		   "\n"
		   "   \t\n"
		   "   # indented comment\n"
		   "node.cookie = abc # trailing comment\n"
		   "log.file = \"/tmp/a#b.log\"   # comment after a quoted value\n"
		   "cluster.name=tight#x\n"
		   "cluster.dns.name = \"  spaced  \"\n"
		   "node.data_dir = \"with \\\"quotes\\\" and \\\\\"\n"
		   "\tmqtt.max_qos\t=\t1\t\n");
	assert_string_equal(c->node_cookie, "abc");
	assert_string_equal(c->log_file, "/tmp/a#b.log");
	/* '#' after a non-blank is part of the value (topic filters: a/#) */
	assert_string_equal(c->cluster_name, "tight#x");
	assert_string_equal(c->cluster_dns_name, "  spaced  ");
	assert_string_equal(c->node_data_dir, "with \"quotes\" and \\");
	assert_int_equal(c->max_qos, 1);

	/* CRLF line ends, no final newline, '=' inside a value */
	load_ok(c, "node.cookie = a=b\r\nmqtt.max_qos = 2\r\nlog.file = x.log");
	assert_string_equal(c->node_cookie, "a=b");
	assert_int_equal(c->max_qos, 2);
	assert_string_equal(c->log_file, "x.log");

	/* a later line wins */
	load_ok(c, "mqtt.max_qos = 0\nmqtt.max_qos = 1\n");
	assert_int_equal(c->max_qos, 1);

	load_err(c, "t.conf", "\nlog.file = \"abc\n",
		 "t.conf:2: log.file: unterminated quoted value");
	load_err(c, "t.conf", "log.file = \"abc\" def\n",
		 "t.conf:1: log.file: unexpected text after the closing quote");
	load_ok(c, "");
}

static void test_error_forms(void **state)
{
	struct hq_config *c = *state;
	load_err(c, "etc/x.conf",
		 "# 1\n# 2\n# 3\n# 4\n# 5\n# 6\n# 7\n# 8\n# 9\n# 10\nmqtt.max_qos = 1\n"
		 "mqtt.max_qos = 7   # too high\n",
		 "etc/x.conf:12: mqtt.max_qos: expected an integer 0..2, got '7'");
	load_err(c, "etc/x.conf", "node.name = a@b\n\nnodee.name = a@b\n",
		 "etc/x.conf:3: nodee.name: unknown key");
	load_err(c, "x.conf", "# ok\nnode.cookie = x\n\njust some words\n",
		 "x.conf:4: expected 'key = value'");
	load_err(c, "x.conf", "node.cookie\n", "x.conf:1: expected 'key = value'");
	load_err(c, "x.conf", "= value\n", "x.conf:1: expected 'key = value'");
	load_err(c, "x.conf", "node cookie = x\n", "x.conf:1: expected 'key = value'");
	load_err(c, "x.conf", "node.cookie # = x\n", "x.conf:1: expected 'key = value'");
	load_err(c, "x.conf", "mqtt = 1\n", "x.conf:1: mqtt: unknown key");
	load_err(c, "x.conf", "Node.Name = a@b\n", "x.conf:1: Node.Name: unknown key");
	/* the line number counts blank and comment lines, and stops at the first error */
	load_err(c, "x.conf", "\n\n\nmqtt.max_qos = 9\nbogus = 1\n",
		 "x.conf:4: mqtt.max_qos: expected an integer 0..2, got '9'");
	/* earlier lines stay applied; the struct stays freeable */
	load_err(c, "x.conf", "node.cookie = applied\nnope = 1\n", "x.conf:2: nope: unknown key");
	assert_string_equal(c->node_cookie, "applied");
	/* a NULL err buffer is allowed */
	assert_int_equal(conf_load_string(c, "x", "nope = 1\n", NULL, 0), HQ_EINVAL);
	/* a short err buffer truncates */
	char small[8];
	assert_int_equal(conf_load_string(c, "x.conf", "nope = 1\n", small, sizeof(small)), HQ_EINVAL);
	assert_string_equal(small, "x.conf:");
}

static void test_load_file(void **state)
{
	struct hq_config *c = *state;
	char path[] = "/tmp/test_conf_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "node.name = f@h\nmqtt.max_qos = 1\nmqtt.max_qos = x\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(conf_load_file(c, path, err, sizeof(err)), HQ_EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s:3: mqtt.max_qos: expected an integer 0..2, got 'x'", path);
	assert_string_equal(err, want);
	assert_string_equal(c->node_name, "f@h");
	unlink(path);

	assert_int_equal(conf_load_file(c, "/nonexistent/hamqtt.conf", err, sizeof(err)), HQ_EIO);
	assert_string_equal(err, "/nonexistent/hamqtt.conf: cannot open: No such file or directory");
}

/* ---- overrides ---- */

static void test_env(void **state)
{
	struct hq_config *c = *state;
	char *env[] = {
		"PATH=/usr/bin",
		"HAMQTT_NODE__NAME=env@10.1.1.1",
		"HAMQTT_LISTENERS__TCP__DEFAULT__BIND=127.0.0.1:2883",
		"HAMQTT_MQTT__MAX_QOS= 1 ",
		"HAMQTT_MQTT__MAX_PACKET_SIZE=64KB",
		"HAMQTT_LOG__LEVEL=debug",
		"HAMQTT_LISTENERS__TCP__EXTRA__BIND=:8884",
		"HAMQTTX_IGNORED=1",
		"NOT_HAMQTT_NODE__NAME=x",
		NULL,
	};
	int rc = conf_load_env(c, env, err, sizeof(err));
	if (rc)
		print_error("%s\n", err);
	assert_int_equal(rc, HQ_OK);
	assert_string_equal(c->node_name, "env@10.1.1.1");
	assert_string_equal(c->listeners[0].bind, "127.0.0.1:2883");
	assert_int_equal(c->max_qos, 1);
	assert_int_equal(c->max_packet_size, 65536);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->n_listeners, 2);
	assert_string_equal(c->listeners[1].name, "extra");
	assert_string_equal(c->listeners[1].bind, ":8884");
	assert_int_equal(conf_load_env(c, NULL, err, sizeof(err)), HQ_OK);

	char *bad[] = { "HAMQTT_NODEE__NAME=x@y", NULL };
	assert_int_equal(conf_load_env(c, bad, err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, "env HAMQTT_NODEE__NAME: nodee.name: unknown key");
	char *bad2[] = { "HAMQTT_MQTT__MAX_QOS=7", NULL };
	assert_int_equal(conf_load_env(c, bad2, err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, "env HAMQTT_MQTT__MAX_QOS: mqtt.max_qos: expected an integer 0..2, got '7'");
	char *bad3[] = { "HAMQTT_=1", NULL };
	assert_int_equal(conf_load_env(c, bad3, err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, "env HAMQTT_: : unknown key");
}

static void test_set(void **state)
{
	struct hq_config *c = *state;
	set_ok(c, "node.name=set@h");
	set_ok(c, " mqtt.max_qos = 0 ");
	set_ok(c, "node.cookie=a=b#c");   /* taken literally: no comments on the command line */
	set_ok(c, "listeners.tcp.default.proxy_protocol=yes");
	assert_string_equal(c->node_name, "set@h");
	assert_int_equal(c->max_qos, 0);
	assert_string_equal(c->node_cookie, "a=b#c");
	assert_true(c->listeners[0].proxy_protocol);
	set_err(c, "mqtt.max_qos=9", "--set: mqtt.max_qos: expected an integer 0..2, got '9'");
	set_err(c, "nodee.name=x", "--set: nodee.name: unknown key");
	set_err(c, "node.name", "--set: expected 'key=value', got 'node.name'");
	set_err(c, "=x", "--set: expected 'key=value', got '=x'");
	assert_int_equal(conf_set(c, NULL, "bogus=1", err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, "--set: bogus: unknown key");
}

/* file, then env, then --set: the last one wins */
static void test_override_order(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "mqtt.max_inflight = 10\nmqtt.receive_maximum = 10\nmqtt.max_topic_levels = 10\n");
	char *env[] = { "HAMQTT_MQTT__RECEIVE_MAXIMUM=20", "HAMQTT_MQTT__MAX_TOPIC_LEVELS=20", NULL };
	assert_int_equal(conf_load_env(c, env, err, sizeof(err)), HQ_OK);
	set_ok(c, "mqtt.max_topic_levels=30");
	assert_int_equal(c->max_inflight, 10);
	assert_int_equal(c->receive_maximum, 20);
	assert_int_equal(c->max_topic_levels, 30);
}

/* ---- listeners ---- */

static void test_listeners(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "listeners.tcp.default.bind = 127.0.0.1:1884\n"
		   "listeners.tcp.internal-1.proxy_protocol = true\n"
		   "listeners.tcp.internal-1.bind = [::1]:1885\n"
		   "listeners.tcp.Off_2.enabled = false\n");
	assert_int_equal(c->n_listeners, 3);
	assert_string_equal(c->listeners[0].name, "default");
	assert_string_equal(c->listeners[0].bind, "127.0.0.1:1884");
	assert_string_equal(c->listeners[1].name, "internal-1");
	assert_string_equal(c->listeners[1].bind, "[::1]:1885");
	assert_true(c->listeners[1].proxy_protocol);
	assert_true(c->listeners[1].enabled);
	assert_string_equal(c->listeners[2].name, "Off_2");
	assert_string_equal(c->listeners[2].bind, "");   /* a new listener has no bind */
	assert_false(c->listeners[2].enabled);
	assert_false(c->listeners[2].proxy_protocol);
	get_is(c, "listeners.tcp.internal-1.bind", "[::1]:1885");
	get_is(c, "listeners.tcp.Off_2.enabled", "false");
	/* disabled listeners need no bind */
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);

	load_err(c, "t.conf", "listeners.tcp.a.b.bind = :1\n",
		 "t.conf:1: listeners.tcp.a.b.bind: invalid listener name "
		 "(letters, digits, _ and -, at most 64)");
	load_err(c, "t.conf", "listeners.tcp..bind = :1\n",
		 "t.conf:1: listeners.tcp..bind: invalid listener name "
		 "(letters, digits, _ and -, at most 64)");
	load_err(c, "t.conf", "listeners.tcp.x.port = 1\n",
		 "t.conf:1: listeners.tcp.x.port: unknown key");
	load_err(c, "t.conf", "listeners.tcp.bind = :1\n", "t.conf:1: listeners.tcp.bind: unknown key");
	load_err(c, "t.conf", "listeners.tcp.x.bind = nowhere\n",
		 "t.conf:1: listeners.tcp.x.bind: expected host:port, got 'nowhere'");
	assert_int_equal(c->n_listeners, 3);   /* a refused value creates nothing */
	char out[16];
	assert_int_equal(conf_get(c, "listeners.tcp.nope.bind", out, sizeof(out)), HQ_ENOTFOUND);
}

/* The public default cookie is refused where the cluster port is reachable
 * from other machines; loopback nodes (make run, tests) keep it. */
static void test_default_cookie(void **state)
{
	struct hq_config *c = *state;
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK); /* 127.0.0.1 */
	load_ok(c, "node.name = n@10.0.0.5\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_EINVAL);
	assert_non_null(strstr(err, "node.cookie: the built-in default cookie is public"));
	assert_non_null(strstr(err, "10.0.0.5:4370"));
	load_ok(c, "node.name = n@node1.example\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_EINVAL);
	load_ok(c, "cluster.port = 0\n"); /* standalone: no cluster port */
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	load_ok(c, "cluster.port = 4370\nnode.cookie = 0123456789abcdef\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	load_ok(c, "node.cookie = hamqttsecretcookie\nnode.name = n@127.8.9.10\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	load_ok(c, "node.name = n@localhost\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	load_ok(c, "node.name = n@[::1]\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	load_ok(c, "node.name = n@128.0.0.1\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_EINVAL);
	assert_true(conf_host_is_loopback("127.0.0.1"));
	assert_false(conf_host_is_loopback("127.0.0.1.example"));
	assert_false(conf_host_is_loopback("0.0.0.0"));
	assert_false(conf_host_is_loopback(""));
}

/* A relative node.data_dir in a file is taken from the file's directory. */
static void test_data_dir_from_file(void **state)
{
	struct hq_config *c = *state;
	char dir[] = "/tmp/hq_conf_XXXXXX", path[64];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/h.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("node.data_dir = d/x\n", f);
	fclose(f);
	char want[96];
	snprintf(want, sizeof(want), "%s/d/x", dir);
	assert_int_equal(conf_load_file(c, path, err, sizeof(err)), HQ_OK);
	assert_string_equal(c->node_data_dir, want);
	f = fopen(path, "w");
	fputs("node.data_dir = /abs/dir\n", f);
	fclose(f);
	assert_int_equal(conf_load_file(c, path, err, sizeof(err)), HQ_OK);
	assert_string_equal(c->node_data_dir, "/abs/dir");
	set_ok(c, "node.data_dir=rel"); /* --set: the working directory's */
	assert_string_equal(c->node_data_dir, "rel");
	unlink(path);
	rmdir(dir);
}

static void test_listener_limit(void **state)
{
	struct hq_config *c = *state;
	char line[128];
	for (int i = 1; i < CONF_MAX_LISTENERS; i++) {
		snprintf(line, sizeof(line), "listeners.tcp.l%d.bind = :%d\n", i, 2000 + i);
		load_ok(c, line);
	}
	assert_int_equal(c->n_listeners, CONF_MAX_LISTENERS);
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	/* existing listeners can still be changed */
	load_ok(c, "listeners.tcp.l1.enabled = false\n");
	snprintf(line, sizeof(line), "t.conf:1: listeners.tcp.one-more.bind: "
		 "too many listeners (at most %d)", CONF_MAX_LISTENERS);
	load_err(c, "t.conf", "listeners.tcp.one-more.bind = :3000\n", line);
}

static void validate_err(struct hq_config *c, const char *want)
{
	err[0] = '\0';
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_EINVAL);
	assert_string_equal(err, want);
}

/* listeners.ws.<name>.* and listeners.wss.<name>.*: WebSocket, and over TLS
 * with every ssl key; ws and wss of one name are two more listeners. */
static void test_ws_listeners(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "listeners.ws.default.path = /ws/mqtt\n"
		   "listeners.wss.default.certfile = /x/cert.pem\n"
		   "listeners.wss.default.keyfile = /x/key.pem\n"
		   "listeners.wss.default.verify = peer\n");
	assert_int_equal(c->n_listeners, 3);
	assert_int_equal(c->listeners[1].type, CONF_LT_WS);
	assert_string_equal(c->listeners[1].bind, "0.0.0.0:8083");
	assert_string_equal(c->listeners[1].ws_path, "/ws/mqtt");
	assert_int_equal(c->listeners[2].type, CONF_LT_WSS);
	assert_string_equal(c->listeners[2].bind, "0.0.0.0:8084");
	assert_string_equal(c->listeners[2].ws_path, "/mqtt");
	assert_string_equal(c->listeners[2].tls_versions, "1.2,1.3");
	validate_err(c, "listeners.wss.default.cacertfile: required with verify = peer");
	load_ok(c, "listeners.wss.default.verify = none\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	char out[64];
	assert_int_equal(conf_get(c, "listeners.ws.default.path", out, sizeof(out)), HQ_OK);
	assert_string_equal(out, "/ws/mqtt");
	load_err(c, "t.conf", "listeners.ws.default.path = mqtt\n",
		 "t.conf:1: listeners.ws.default.path: expected an absolute path such as /mqtt, got 'mqtt'");
	load_ok(c, "listeners.wss.two.bind = :9999\n");
	validate_err(c, "listeners.wss.two.certfile: required for a wss listener");
	/* ssl keys exist on wss only, not on ws */
	load_err(c, "t.conf", "listeners.ws.default.certfile = /x\n",
		 "t.conf:1: listeners.ws.default.certfile: unknown key");
}

/* listeners.ssl.<name>.*: a second listener type beside tcp, with TLS keys. */
static void test_ssl_listener(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "listeners.ssl.default.certfile = /x/cert.pem\n"
		   "listeners.ssl.default.keyfile = /x/key.pem\n"
		   "listeners.ssl.default.verify = peer\n"
		   "listeners.ssl.default.peer_cert_as_username = cn\n"
		   "listeners.ssl.default.tls_versions = 1.3\n");
	assert_int_equal(c->n_listeners, 2);
	const struct conf_listener *l = &c->listeners[1];
	assert_int_equal(l->type, CONF_LT_SSL);
	assert_string_equal(l->name, "default");
	assert_string_equal(l->bind, "0.0.0.0:8883");
	assert_string_equal(l->certfile, "/x/cert.pem");
	assert_int_equal(l->verify, CONF_VERIFY_PEER);
	assert_int_equal(l->peer_cert_as_username, CONF_PCU_CN);
	assert_string_equal(l->tls_versions, "1.3");
	assert_true(l->enabled);
	/* the tcp listener of the same name is another listener */
	assert_int_equal(c->listeners[0].type, CONF_LT_TCP);
	assert_string_equal(c->listeners[0].bind, "0.0.0.0:1883");
	load_ok(c, "listeners.ssl.default.verify = none\n");
	validate_err(c, "listeners.ssl.default.peer_cert_as_username: cn requires verify = peer");
	load_ok(c, "listeners.ssl.default.verify = peer\n");
	validate_err(c, "listeners.ssl.default.cacertfile: required with verify = peer");
	load_ok(c, "listeners.ssl.default.cacertfile = /x/ca.pem\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	char out[64];
	assert_int_equal(conf_get(c, "listeners.ssl.default.verify", out, sizeof(out)), HQ_OK);
	assert_string_equal(out, "peer");
	/* another ssl listener must name its bind and its certificate */
	load_ok(c, "listeners.ssl.two.keyfile = /x/key.pem\n");
	validate_err(c, "listeners.ssl.two.bind: expected host:port, got ''");
	load_ok(c, "listeners.ssl.two.bind = :8884\n");
	validate_err(c, "listeners.ssl.two.certfile: required for an ssl listener");
	load_ok(c, "listeners.ssl.two.bind = :1883\nlisteners.ssl.two.certfile = /x/c.pem\n");
	validate_err(c, "listeners.ssl.two.bind: :1883 is already used by listeners.tcp.default");
	/* ssl keys do not exist on tcp listeners, nor other types at all */
	load_err(c, "t.conf", "listeners.tcp.default.certfile = x\n",
		 "t.conf:1: listeners.tcp.default.certfile: unknown key");
	load_err(c, "t.conf", "listeners.quic.default.bind = :1\n",
		 "t.conf:1: listeners.quic.default.bind: unknown key");
	load_err(c, "t.conf", "listeners.ssl.default.tls_versions = 1.1\n",
		 "t.conf:1: listeners.ssl.default.tls_versions: expected a comma separated list "
		 "of 1.2 and 1.3, got '1.1'");
	load_err(c, "t.conf", "listeners.ssl.default.verify = maybe\n",
		 "t.conf:1: listeners.ssl.default.verify: expected one of none|peer, got 'maybe'");
	load_ok(c, "listeners.ssl.default.tls_versions = 1.2 , 1.3\n");
}


static void test_validate(void **state)
{
	struct hq_config *c = *state;
	load_ok(c, "listeners.tcp.second.bind = 0.0.0.0:1883\n");
	validate_err(c, "listeners.tcp.second.bind: 0.0.0.0:1883 is already used by listeners.tcp.default");
	/* ":1883" is the same socket address as "0.0.0.0:1883" */
	load_ok(c, "listeners.tcp.second.bind = :1883\n");
	validate_err(c, "listeners.tcp.second.bind: :1883 is already used by listeners.tcp.default");
	/* fine once one of them is disabled */
	load_ok(c, "listeners.tcp.default.enabled = false\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	load_ok(c, "listeners.tcp.second.enabled = off\n");
	validate_err(c, "listeners.tcp: no enabled listener");
	/* ephemeral ports do not collide */
	load_ok(c, "listeners.tcp.default.enabled = on\nlisteners.tcp.second.enabled = on\n"
		   "listeners.tcp.default.bind = 127.0.0.1:0\nlisteners.tcp.second.bind = 127.0.0.1:0\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	/* a new enabled listener must set bind */
	load_ok(c, "listeners.tcp.third.proxy_protocol = true\n");
	validate_err(c, "listeners.tcp.third.bind: expected host:port, got ''");
	load_ok(c, "listeners.tcp.third.bind = :18083\n");
	validate_err(c, "listeners.tcp.third.bind: :18083 is already used by dashboard.listeners.http.bind");
	load_ok(c, "listeners.tcp.third.bind = :1999\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);

	load_ok(c, "cluster.discovery_strategy = static\n");
	validate_err(c, "cluster.static.seeds: required when cluster.discovery_strategy = static");
	load_ok(c, "cluster.static.seeds = a@h1,b@h2\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);
	load_ok(c, "cluster.discovery_strategy = dns\n");
	validate_err(c, "cluster.dns.name: required when cluster.discovery_strategy = dns");
	load_ok(c, "cluster.dns.name = peers.local\n");
	assert_int_equal(conf_validate(c, err, sizeof(err)), HQ_OK);

	/* node.name is re-checked even if set behind the parser's back */
	free(c->node_name);
	c->node_name = strdup("noat");
	validate_err(c, "node.name: expected name@host, got 'noat'");
}

/* ---- host:port ---- */

/* Overload protection values: rates and the memory watermark (conf_rate.c). */
static void test_overload_values(void **state)
{
	(void)state;
	double r;
	assert_int_equal(conf_parse_rate("1000/s", &r), HQ_OK);
	assert_true(r == 1000);
	assert_int_equal(conf_parse_rate("1MB/s", &r), HQ_OK);
	assert_true(r == 1048576);
	assert_int_equal(conf_parse_rate("100/10s", &r), HQ_OK);
	assert_true(r == 10);
	assert_int_equal(conf_parse_rate("60/m", &r), HQ_OK);
	assert_true(r == 1);
	assert_int_equal(conf_parse_rate("10KB/s", &r), HQ_OK);
	assert_true(r == 10240);
	assert_int_equal(conf_parse_rate("", &r), HQ_OK);
	assert_true(r == 0);
	assert_int_equal(conf_parse_rate("infinity", &r), HQ_OK);
	assert_true(r == 0);
	const char *bad[] = { "1000", "x/s", "10/", "10/d", "-5/s", "10/s extra", "10/0s" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(conf_parse_rate(bad[i], &r), HQ_EINVAL);
	uint64_t v;
	bool pct;
	assert_int_equal(conf_parse_watermark("0", &v, &pct), HQ_OK);
	assert_true(v == 0 && !pct);
	assert_int_equal(conf_parse_watermark("512MB", &v, &pct), HQ_OK);
	assert_true(v == 512ull << 20 && !pct);
	assert_int_equal(conf_parse_watermark("80%", &v, &pct), HQ_OK);
	assert_true(v == 80 && pct);
	assert_int_equal(conf_parse_watermark("120%", &v, &pct), HQ_EINVAL);
	assert_int_equal(conf_parse_watermark("lots", &v, &pct), HQ_EINVAL);
	/* through the key table: a bad value fails with the key named */
	struct hq_config cfg;
	conf_defaults(&cfg);
	char e[CONF_ERR_MAX];
	assert_int_equal(conf_set(&cfg, "--set", "listeners.tcp.default.messages_rate=fast", e,
				  sizeof(e)), HQ_EINVAL);
	assert_non_null(strstr(e, "listeners.tcp.default.messages_rate"));
	assert_int_equal(conf_set(&cfg, "--set", "overload.memory_high_watermark=1MB", e,
				  sizeof(e)), HQ_OK);
	assert_int_equal(conf_set(&cfg, "--set", "listeners.ssl.default.max_conn_rate=5/s", e,
				  sizeof(e)), HQ_OK);
	conf_free(&cfg);
}

static void test_hostport(void **state)
{
	(void)state;
	static const struct { const char *in; const char *host; int port; } ok[] = {
		{ "0.0.0.0:1883", "0.0.0.0", 1883 },
		{ ":1883", "", 1883 },
		{ "[::1]:1883", "::1", 1883 },
		{ "[::]:8883", "::", 8883 },
		{ "[fe80::1%eth0]:1", "fe80::1%eth0", 1 },
		{ "localhost:1883", "localhost", 1883 },
		{ "my-host.example.com:65535", "my-host.example.com", 65535 },
		{ "127.0.0.1:0", "127.0.0.1", 0 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char host[64] = "junk";
		int port = -1;
		assert_int_equal(conf_parse_hostport(ok[i].in, host, sizeof(host), &port), HQ_OK);
		assert_string_equal(host, ok[i].host);
		assert_int_equal(port, ok[i].port);
	}
	static const char *const bad[] = {
		"", "1883", "localhost", "localhost:", ":", "host:65536", "host:-1", "host:1x",
		"::1:1883", "[::1]", "[::1]1883", "[]:1883", "[::1:1883", "ho st:1", "a:b:1",
		"host:+1", "host: 1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char host[64];
		int port;
		if (conf_parse_hostport(bad[i], host, sizeof(host), &port) != HQ_EINVAL)
			print_error("accepted '%s'\n", bad[i]);
		assert_int_equal(conf_parse_hostport(bad[i], host, sizeof(host), &port), HQ_EINVAL);
	}
	/* host buffer too small */
	char tiny[4];
	int port;
	assert_int_equal(conf_parse_hostport("localhost:1", tiny, sizeof(tiny), &port), HQ_EINVAL);
	assert_int_equal(conf_parse_hostport("abc:1", tiny, sizeof(tiny), &port), HQ_OK);
	assert_string_equal(tiny, "abc");
}

static void test_get(void **state)
{
	struct hq_config *c = *state;
	get_is(c, "node.name", "hamqtt@127.0.0.1");
	get_is(c, "mqtt.max_packet_size", "1048576");
	get_is(c, "sys.interval", "30s");
	get_is(c, "log.level", "info");
	get_is(c, "mqtt.retain_available", "true");
	get_is(c, "listeners.tcp.default.bind", "0.0.0.0:1883");
	char out[4];
	assert_int_equal(conf_get(c, "no.such.key", out, sizeof(out)), HQ_ENOTFOUND);
	assert_int_equal(conf_get(c, "node.name", out, sizeof(out)), HQ_ELIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test(test_key_table),
		cmocka_unit_test_setup_teardown(test_default_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enums, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quotes_and_comments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_override_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listeners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listener_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test_setup_teardown(test_ws_listeners, setup, teardown),
		cmocka_unit_test(test_overload_values),
		cmocka_unit_test_setup_teardown(test_ssl_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_cookie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_dir_from_file, setup, teardown),
	};
	return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
