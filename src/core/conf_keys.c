/*
 * conf_keys.c - the configuration schema: one row per key (name, type, range
 * or value names, field in struct hq_config, default as file text, one-line
 * doc) and the syntax checks its string keys use. conf.c parses, defaults and
 * prints every key by walking this one table; etc/hamqtt.conf is checked
 * against it by tests/unit/test_conf.c.
 */
#include "core/conf.h"
#include "core/conf_int.h"
#include "core/err.h"
#include "core/log.h"

#include <string.h>
#include <strings.h>

/* ---- string checks ---- */

bool conf_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

static bool is_host_char(char c)
{
	return conf_is_name_char(c) || c == ':' || c == '[' || c == ']';
}

/* "name@host": a non-empty name of [A-Za-z0-9_.-] and a non-empty host. */
static bool nodename_ok(const char *s, size_t n)
{
	const char *at = memchr(s, '@', n);
	if (!at || at == s || at == s + n - 1)
		return false;
	for (const char *p = s; p < at; p++)
		if (!conf_is_name_char(*p))
			return false;
	for (const char *p = at + 1; p < s + n; p++)
		if (!is_host_char(*p))
			return false;
	return true;
}

bool conf_check_nodename(const char *v)
{
	return nodename_ok(v, strlen(v));
}

/* Comma separated node names, spaces allowed around commas; may be empty. */
static bool check_seeds(const char *v)
{
	const char *p = v;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return true;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if (!nodename_ok(p, (size_t)(t - p)))
			return false;
		if (!*e)
			return true;
		p = e + 1;
	}
}

static bool check_hostport(const char *v)
{
	char host[256];
	int port;
	return conf_parse_hostport(v, host, sizeof(host), &port) == HQ_OK;
}

/* A WebSocket path: absolute, printable, no space, no query (ws listeners). */
static bool check_ws_path(const char *v)
{
	if (v[0] != '/' || strlen(v) > 200)
		return false;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '?' || *p == '#')
			return false;
	return true;
}

/* Comma separated host:port list (Redis Sentinels); may be empty. */
static bool check_hostports(const char *v)
{
	char item[300];
	const char *p = v;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return true;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - p) >= sizeof(item))
			return false;
		memcpy(item, p, (size_t)(t - p));
		item[t - p] = 0;
		if (!check_hostport(item))
			return false;
		if (!*e)
			return true;
		p = e + 1;
	}
}

/* TLS protocol versions: a comma separated list of 1.2 and 1.3, not empty. */
bool conf_check_tls_versions(const char *v)
{
	bool any = false;
	const char *p = v;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "1.2", 3) != 0 && strncmp(p, "1.3", 3) != 0)
			return false;
		any = true;
		p += 3;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return any;
		if (*p++ != ',')
			return false;
	}
}

/* ---- the schema ---- */

/* auth.jwt.jwks_url: empty, or an http(s) URL (libcurl is held to those). */
static bool check_http_url(const char *v)
{
	return !*v || ((!strncmp(v, "http://", 7) && v[7]) || (!strncmp(v, "https://", 8) && v[8]));
}

static const char *const disc_names[] = { "manual", "static", "dns", NULL };
static const char *const dns_record_names[] = { "a", "srv", NULL };
_Static_assert(CONF_DNS_A == 0 && CONF_DNS_SRV == 1 && sizeof(enum conf_dns_record) == 4, "dns_record_names");
static const char *const store_names[] = { "memory", "local", "redis", NULL };
static const char *const level_names[] = { "debug", "info", "notice", "warning", "error", "none", NULL };
static const char *const format_names[] = { "text", "json", NULL };
static const char *const strategy_names[] = { "round_robin", "random", "hash_clientid", NULL };
static const char *const verify_names[] = { "none", "peer", NULL };
static const char *const pcu_names[] = { "none", "cn", NULL };
static const char *const acl_no_match_names[] = { "deny", "allow", NULL };
static const char *const acl_deny_action_names[] = { "ignore", "disconnect", NULL };
/* auth.http / auth.redis values (src/auth/ checks them again at start) */
static bool check_auth_tmpl(const char *v)
{
	static const char *const known[] = { "${clientid}", "${username}", "${password}", "${peerhost}" };
	for (const char *d = strstr(v, "${"); d; d = strstr(d + 2, "${")) {
		bool ok = false;
		for (size_t i = 0; i < 4; i++)
			ok |= !strncmp(d, known[i], strlen(known[i]));
		if (!ok)
			return false;
	}
	return true;
}
static bool check_auth_url(const char *v)
{
	return !*v || ((!strncmp(v, "http://", 7) || !strncmp(v, "https://", 8)) && check_auth_tmpl(v));
}
static bool check_hostport_or_empty(const char *v)
{
	return !*v || check_hostport(v);
}
static bool check_redis_cmd(const char *v)
{
	return !strncasecmp(v, "HMGET ", 6) && strstr(v, "password") && check_auth_tmpl(v);
}
static const char *const auth_http_method_names[] = { "post", "get", NULL };
static const char *const auth_hash_names[] = { "plain", "sha256", "sha512", "pbkdf2", NULL };
static const char *const auth_salt_names[] = { "prefix", "suffix", "disable", NULL };
_Static_assert(CONF_AUTH_HTTP_GET == 1 && CONF_AUTH_HASH_PBKDF2 == 3 && CONF_AUTH_SALT_DISABLE == 2 &&
	       sizeof(enum conf_auth_http_method) == 4 && sizeof(enum conf_auth_hash) == 4 &&
	       sizeof(enum conf_auth_salt) == 4, "auth async names");
_Static_assert(CONF_ACL_DENY == 0 && CONF_ACL_ALLOW == 1 && CONF_ACL_IGNORE == 0 &&
	       CONF_ACL_DISCONNECT == 1 && sizeof(enum conf_acl_no_match) == 4 &&
	       sizeof(enum conf_acl_deny_action) == 4, "acl names");

_Static_assert(CONF_DISC_MANUAL == 0 && CONF_DISC_STATIC == 1 && CONF_DISC_DNS == 2, "disc_names");
_Static_assert(CONF_STORE_MEMORY == 0 && CONF_STORE_LOCAL == 1 && CONF_STORE_REDIS == 2, "store_names");
_Static_assert(LOG_DEBUG == 0 && LOG_INFO == 1 && LOG_NOTICE == 2 && LOG_WARNING == 3 &&
	       LOG_ERROR == 4 && LOG_NONE == 5, "level_names");
_Static_assert(LOG_FMT_TEXT == 0 && LOG_FMT_JSON == 1, "format_names");
_Static_assert(CONF_SHARED_ROUND_ROBIN == 0 && CONF_SHARED_RANDOM == 1 &&
	       CONF_SHARED_HASH_CLIENTID == 2, "strategy_names");
_Static_assert(CONF_VERIFY_NONE == 0 && CONF_VERIFY_PEER == 1, "verify_names");
_Static_assert(CONF_PCU_NONE == 0 && CONF_PCU_CN == 1, "pcu_names");
_Static_assert(sizeof(enum conf_tls_verify) == 4 && sizeof(enum conf_peer_cert_user) == 4, "4-byte enums");
_Static_assert(sizeof(enum conf_store) == 4 && sizeof(enum conf_discovery) == 4 &&
	       sizeof(enum conf_shared_strategy) == 4 && sizeof(int) == 4, "4-byte enums");

#define FSZ(type, f) sizeof(((struct type *)0)->f)
#define CF(f) .off = offsetof(struct hq_config, f), .width = FSZ(hq_config, f)
#define LF(f) .off = offsetof(struct conf_listener, f), .width = FSZ(conf_listener, f)

#define K_STR(n, f, chk, exp, d, dc) \
	{ .name = n, .type = KT_STR, CF(f), .check = chk, .expect = exp, .def = d, .doc = dc }
#define K_INT(n, f, lo, hi, d, dc) \
	{ .name = n, .type = KT_INT, CF(f), .min = lo, .max = hi, .def = d, .doc = dc }
#define K_BOOL(n, f, d, dc) \
	{ .name = n, .type = KT_BOOL, CF(f), .max = 1, .def = d, .doc = dc }
#define K_ENUM(n, f, nm, d, dc) \
	{ .name = n, .type = KT_ENUM, CF(f), .names = nm, .def = d, .doc = dc }
#define K_SIZE(n, f, lo, hi, d, dc) \
	{ .name = n, .type = KT_SIZE, CF(f), .min = lo, .max = hi, .def = d, .doc = dc }
#define K_DUR(n, f, lo, hi, d, dc) \
	{ .name = n, .type = KT_DUR, CF(f), .min = lo, .max = hi, .def = d, .doc = dc }

#define U16 65535

const struct conf_key conf_keys[] = {
	K_STR("node.name", node_name, conf_check_nodename, "name@host", "hamqtt@127.0.0.1",
	      "name@host of this node; peers reach host:cluster.port"),
	K_STR("node.cookie", node_cookie, NULL, NULL, CONF_DEFAULT_COOKIE,
	      "shared secret of the cluster; every node must use the same"),
	K_STR("node.data_dir", node_data_dir, NULL, NULL, "data",
	      "directory for the local session store and node state"),
	K_INT("node.workers", node_workers, 0, 256, "0",
	      "I/O worker threads; 0 = one per CPU core"),
	K_DUR("node.shutdown_grace", node_shutdown_grace, 0, 300, "0s",
	      "after SIGTERM: health check 503 and no new MQTT connections for this long "
	      "before clients are disconnected"),

	K_STR("cluster.name", cluster_name, NULL, NULL, "hamqtt-cluster",
	      "nodes only join a cluster of the same name"),
	K_ENUM("cluster.discovery_strategy", cluster_discovery, disc_names, "manual",
	       "how nodes find each other: manual (hamqtt-ctl cluster join) | static | dns"),
	K_STR("cluster.static.seeds", cluster_static_seeds, check_seeds, "a comma separated list of name@host", "",
	      "static discovery: comma separated node names"),
	K_STR("cluster.dns.name", cluster_dns_name, NULL, NULL, "",
	      "dns discovery: a name whose A (or SRV) records are the peers' hosts"),
	K_ENUM("cluster.dns.record_type", cluster_dns_record_type, dns_record_names, "a",
	       "dns discovery: a (peers named by address) | srv (peers named by the SRV targets)"),
	K_INT("cluster.port", cluster_port, 0, U16, "4370",
	      "TCP port of cluster links, on the host part of node.name; 0 = standalone, no cluster"),
	K_DUR("cluster.heartbeat_timeout", cluster_heartbeat_timeout, 1, 86400, "5s",
	      "a peer silent this long is considered down"),
	/* TLS on cluster links (cluster/clu_tls.c) */
	K_BOOL("cluster.tls.enable", cluster_tls_enable, "false",
	       "TLS with mutual certificates on cluster links, in addition to node.cookie"),
	K_STR("cluster.tls.certfile", cluster_tls_certfile, NULL, NULL, "",
	      "PEM certificate (chain) of this node, presented to every peer; required with enable"),
	K_STR("cluster.tls.keyfile", cluster_tls_keyfile, NULL, NULL, "",
	      "PEM private key of cluster.tls.certfile; required with enable"),
	K_STR("cluster.tls.cacertfile", cluster_tls_cacertfile, NULL, NULL, "",
	      "PEM CAs every peer's certificate must be signed by; required with enable"),
	K_BOOL("cluster.tls.verify_hostname", cluster_tls_verify_hostname, "true",
	       "a peer's certificate must name the host part of its node name (IP or DNS "
	       "subjectAltName)"),
	K_STR("cluster.tls.tls_versions", cluster_tls_tls_versions, conf_check_tls_versions,
	      "a comma separated list of 1.2 and 1.3", "1.2,1.3", "TLS versions of cluster links"),
	K_STR("cluster.tls.ciphers", cluster_tls_ciphers, NULL, NULL, "",
	      "OpenSSL cipher list (TLS 1.2) and/or TLS 1.3 suites; empty = OpenSSL's default"),

	{ .name = "listeners.tcp.default.bind", .type = KT_STR, .flags = KEY_LISTENER | KEY_DEFAULT_ONLY,
	  LF(bind), .check = check_hostport, .expect = "host:port", .def = "0.0.0.0:1883",
	  .doc = "MQTT/TCP listener address; any listeners.tcp.<name>.* creates a listener" },
	{ .name = "listeners.tcp.default.proxy_protocol", .type = KT_BOOL, .flags = KEY_LISTENER,
	  LF(proxy_protocol), .max = 1, .def = "false",
	  .doc = "expect a PROXY protocol v1/v2 header (HAProxy send-proxy) first" },
	{ .name = "listeners.tcp.default.enabled", .type = KT_BOOL, .flags = KEY_LISTENER,
	  LF(enabled), .max = 1, .def = "true",
	  .doc = "false keeps the listener configured but closed" },

	/* MQTT over TLS (net/net_tls.c): listeners.ssl.<name>.* */
	{ .name = "listeners.ssl.default.bind", .type = KT_STR, .flags = KEY_LISTENER | KEY_DEFAULT_ONLY,
	  .ltype = CONF_LT_SSL, LF(bind), .check = check_hostport, .expect = "host:port",
	  .def = "0.0.0.0:8883",
	  .doc = "MQTT/TLS listener address; any listeners.ssl.<name>.* creates a listener" },
	{ .name = "listeners.ssl.default.proxy_protocol", .type = KT_BOOL, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(proxy_protocol), .max = 1, .def = "false",
	  .doc = "expect a PROXY protocol v1/v2 header before the TLS handshake" },
	{ .name = "listeners.ssl.default.enabled", .type = KT_BOOL, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(enabled), .max = 1, .def = "true",
	  .doc = "false keeps the listener configured but closed" },
	{ .name = "listeners.ssl.default.certfile", .type = KT_STR, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(certfile), .def = "",
	  .doc = "PEM file of the server certificate (and its chain); required" },
	{ .name = "listeners.ssl.default.keyfile", .type = KT_STR, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(keyfile), .def = "",
	  .doc = "PEM file of the server certificate's private key; required" },
	{ .name = "listeners.ssl.default.cacertfile", .type = KT_STR, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(cacertfile), .def = "",
	  .doc = "PEM file of the CAs client certificates are checked against" },
	{ .name = "listeners.ssl.default.verify", .type = KT_ENUM, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(verify), .names = verify_names, .def = "none",
	  .doc = "none | peer (a client certificate signed by cacertfile is required)" },
	{ .name = "listeners.ssl.default.peer_cert_as_username", .type = KT_ENUM, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(peer_cert_as_username), .names = pcu_names, .def = "none",
	  .doc = "none | cn (the client certificate's CN is the username)" },
	{ .name = "listeners.ssl.default.tls_versions", .type = KT_STR, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(tls_versions), .check = conf_check_tls_versions,
	  .expect = "a comma separated list of 1.2 and 1.3", .def = "1.2,1.3",
	  .doc = "TLS versions accepted" },
	{ .name = "listeners.ssl.default.ciphers", .type = KT_STR, .flags = KEY_LISTENER,
	  .ltype = CONF_LT_SSL, LF(ciphers), .def = "",
	  .doc = "OpenSSL cipher list (TLS 1.2) and/or TLS 1.3 suites; empty = OpenSSL's default" },

	/* MQTT over WebSocket (net/net_ws.c, broker/brk_ws.c): listeners.ws.<name>.* and,
	 * over TLS, listeners.wss.<name>.* (every ssl key too) */
#define WS_ROW(t, lt, leaf, kt, f, ...) \
	{ .name = "listeners." t ".default." leaf, .type = kt, .flags = KEY_LISTENER, \
	  .ltype = lt, LF(f), __VA_ARGS__ }
	{ .name = "listeners.ws.default.bind", .type = KT_STR, .flags = KEY_LISTENER | KEY_DEFAULT_ONLY,
	  .ltype = CONF_LT_WS, LF(bind), .check = check_hostport, .expect = "host:port",
	  .def = "0.0.0.0:8083",
	  .doc = "MQTT/WebSocket listener address; any listeners.ws.<name>.* creates a listener" },
	WS_ROW("ws", CONF_LT_WS, "proxy_protocol", KT_BOOL, proxy_protocol, .max = 1, .def = "false",
	       .doc = "expect a PROXY protocol v1/v2 header before the HTTP upgrade request"),
	WS_ROW("ws", CONF_LT_WS, "enabled", KT_BOOL, enabled, .max = 1, .def = "true",
	       .doc = "false keeps the listener configured but closed"),
	WS_ROW("ws", CONF_LT_WS, "path", KT_STR, ws_path, .check = check_ws_path,
	       .expect = "an absolute path such as /mqtt", .def = "/mqtt",
	       .doc = "HTTP path of the WebSocket upgrade; other paths get 404"),
	{ .name = "listeners.wss.default.bind", .type = KT_STR, .flags = KEY_LISTENER | KEY_DEFAULT_ONLY,
	  .ltype = CONF_LT_WSS, LF(bind), .check = check_hostport, .expect = "host:port",
	  .def = "0.0.0.0:8084",
	  .doc = "MQTT/WebSocket/TLS listener address; any listeners.wss.<name>.* creates a listener" },
	WS_ROW("wss", CONF_LT_WSS, "proxy_protocol", KT_BOOL, proxy_protocol, .max = 1, .def = "false",
	       .doc = "expect a PROXY protocol v1/v2 header before the TLS handshake"),
	WS_ROW("wss", CONF_LT_WSS, "enabled", KT_BOOL, enabled, .max = 1, .def = "true",
	       .doc = "false keeps the listener configured but closed"),
	WS_ROW("wss", CONF_LT_WSS, "path", KT_STR, ws_path, .check = check_ws_path,
	       .expect = "an absolute path such as /mqtt", .def = "/mqtt",
	       .doc = "HTTP path of the WebSocket upgrade; other paths get 404"),
	WS_ROW("wss", CONF_LT_WSS, "certfile", KT_STR, certfile, .def = "",
	       .doc = "PEM file of the server certificate (and its chain); required"),
	WS_ROW("wss", CONF_LT_WSS, "keyfile", KT_STR, keyfile, .def = "",
	       .doc = "PEM file of the server certificate's private key; required"),
	WS_ROW("wss", CONF_LT_WSS, "cacertfile", KT_STR, cacertfile, .def = "",
	       .doc = "PEM file of the CAs client certificates are checked against"),
	WS_ROW("wss", CONF_LT_WSS, "verify", KT_ENUM, verify, .names = verify_names, .def = "none",
	       .doc = "none | peer (a client certificate signed by cacertfile is required)"),
	WS_ROW("wss", CONF_LT_WSS, "peer_cert_as_username", KT_ENUM, peer_cert_as_username,
	       .names = pcu_names, .def = "none",
	       .doc = "none | cn (the client certificate's CN is the username)"),
	WS_ROW("wss", CONF_LT_WSS, "tls_versions", KT_STR, tls_versions,
	       .check = conf_check_tls_versions, .expect = "a comma separated list of 1.2 and 1.3",
	       .def = "1.2,1.3", .doc = "TLS versions accepted"),
	WS_ROW("wss", CONF_LT_WSS, "ciphers", KT_STR, ciphers, .def = "",
	       .doc = "OpenSSL cipher list (TLS 1.2) and/or TLS 1.3 suites; empty = OpenSSL's default"),
#undef WS_ROW

	K_ENUM("session.store", session_store, store_names, "local",
	       "where persistent sessions live: memory | local (data_dir) | redis"),
	K_BOOL("session.local.fsync", session_local_fsync, "false",
	       "local store: fsync every group commit (survives power loss) instead of leaving "
	       "writes to the page cache (survives a crash of the process)"),
	K_SIZE("session.local.max_size", session_local_max_size, 1 << 20, INT64_MAX, "8GB",
	       "local store: the most disk the store file may grow to"),
	K_STR("session.redis.server", session_redis_server, check_hostport, "host:port", "127.0.0.1:6379",
	      "Redis server for session.store = redis (unused when sentinels are set)"),
	K_STR("session.redis.password", session_redis_password, NULL, NULL, "",
	      "Redis AUTH password; empty = none"),
	K_INT("session.redis.database", session_redis_database, 0, 65535, "0",
	      "Redis database number (SELECT)"),
	K_STR("session.redis.sentinels", session_redis_sentinels, check_hostports, "host:port,...", "",
	      "Redis Sentinels (comma separated) asked for the master; empty = use session.redis.server"),
	K_STR("session.redis.master_name", session_redis_master_name, NULL, NULL, "mymaster",
	      "the master's name as the Sentinels know it"),
	K_INT("session.redis.wait_replicas", session_redis_wait_replicas, 0, 16, "0",
	      "replicas that must have each group of writes before it counts as stored (WAIT)"),
	K_DUR("session.redis.timeout", session_redis_timeout, 1, 3600, "2s",
	      "a Redis command or connect slower than this counts as a failure (retried)"),
	K_STR("dashboard.listeners.http.bind", dashboard_bind, check_hostport, "host:port", "0.0.0.0:18083",
	      "dashboard, REST API, health and Prometheus metrics"),
	K_INT("dashboard.listeners.http.max_connections", dashboard_max_conns, 16, 10000, "1024",
	      "concurrent HTTP connections (one thread each)"),
	K_INT("dashboard.listeners.http.max_connections_per_address",
	      dashboard_max_conns_per_addr, 0, 10000, "32",
	      "concurrent HTTP connections from one client address; 0 = no limit"),
	K_DUR("dashboard.listeners.http.request_timeout", dashboard_request_timeout, 1, 3600, "10s",
	      "a request's headers and body must arrive within this (from connect or the previous response)"),
	K_DUR("dashboard.token_expired_time", dashboard_token_expiry, 1, 604800, "60m",
	      "how long a dashboard login token (POST /api/v5/login) is valid"),
	K_STR("dashboard.default_password_file", dashboard_default_password_file, NULL, NULL, "",
	      "file whose first line is admin's first password; empty = public, changed at first login"),
	/* secure defaults (secdef): login throttling */
	K_INT("dashboard.login.max_failures", dashboard_login_max_failures, 0, 1000, "5",
	      "failed logins from one address before it gets 429 for a while; 0 = no limit"),
	K_DUR("dashboard.login.block_time", dashboard_login_block_time, 1, 86400, "10s",
	      "first 429 period after max_failures failed logins; doubles each time, up to 64x"),

	K_ENUM("log.level", log_level, level_names, "info",
	       "debug | info | notice | warning | error | none"),
	K_ENUM("log.format", log_format, format_names, "text",
	       "text | json (one object per line)"),
	K_STR("log.file", log_file, NULL, NULL, "",
	      "append log lines to this file; empty = stderr"),

	K_SIZE("mqtt.max_packet_size", max_packet_size, 16, 268435455, "1MB",
	       "largest packet accepted or sent, in bytes"),
	K_INT("mqtt.max_inflight", max_inflight, 1, U16, "32",
	      "outgoing QoS 1/2 messages awaiting acknowledgement per client"),
	K_INT("mqtt.receive_maximum", receive_maximum, 1, U16, "128",
	      "incoming QoS 1/2 window advertised to clients"),
	K_INT("mqtt.max_queued_messages", max_queued_messages, 0, CONF_U32, "1000",
	      "messages queued per session beyond the in-flight window; 0 = no limit"),
	K_SIZE("mqtt.max_queued_bytes", max_queued_bytes, 0, INT64_MAX, "16MB",
	       "bytes queued per session; 0 = no byte limit"),
	K_SIZE("mqtt.max_queued_bytes_total", max_queued_bytes_total, 0, INT64_MAX, "1GB",
	       "bytes queued across all sessions of the node; 0 = no node-wide limit"),
	K_INT("mqtt.max_topic_levels", max_topic_levels, 1, U16, "128",
	      "most levels in a topic name or filter"),
	K_INT("mqtt.max_subscriptions", max_subscriptions, 0, CONF_U32, "0",
	      "subscriptions per client; 0 = unlimited"),
	K_INT("mqtt.max_connections", max_connections, 1, CONF_U32, "1000000",
	      "client connections per node"),
	K_INT("mqtt.max_clientid_len", max_clientid_len, 1, U16, "65535",
	      "longest client identifier accepted"),
	K_DUR("mqtt.connect_timeout", connect_timeout, 1, 3600, "10s",
	      "time a new connection has to send CONNECT"),
	K_INT("mqtt.max_keepalive", max_keepalive, 1, U16, "65535",
	      "seconds; larger client keep alive values are capped (v5)"),
	K_INT("mqtt.server_keepalive", server_keepalive, 0, U16, "0",
	      "seconds imposed on v5 clients; 0 = accept the client's value"),
	K_INT("mqtt.topic_alias_maximum", topic_alias_maximum, 0, U16, "10",
	      "topic aliases accepted from each client; 0 disables"),
	K_DUR("mqtt.session_expiry_max", session_expiry_max, 0, CONF_U32, "2h",
	      "cap on client requested session expiry; 0 = no cap"),
	K_INT("mqtt.max_qos", max_qos, 0, 2, "2",
	      "highest QoS granted"),
	K_BOOL("mqtt.retain_available", retain_available, "true",
	       "accept retained messages"),
	K_BOOL("mqtt.wildcard_subscription", wildcard_subscription, "true",
	       "allow + and # in subscriptions"),
	K_BOOL("mqtt.shared_subscription", shared_subscription, "true",
	       "allow $share/<group>/<filter> subscriptions"),
	K_BOOL("mqtt.subscription_identifiers", subscription_identifiers, "true",
	       "support v5 subscription identifiers"),
	K_ENUM("mqtt.shared_subscription_strategy", shared_strategy, strategy_names, "round_robin",
	       "how a shared subscription group picks a member: round_robin | random | hash_clientid"),
	K_SIZE("mqtt.max_outbuf", max_outbuf, 1024, CONF_U32, "8MB",
	       "bytes buffered for a slow reader before we stop queuing to its socket"),

	K_DUR("sys.interval", sys_interval, 0, 86400, "30s",
	      "how often $SYS topics are published; 0 disables"),

	K_BOOL("auth.allow_anonymous", auth_allow_anonymous, "true",
	       "clients without a user name may connect"),
	K_STR("auth.password_file", auth_password_file, NULL, NULL, "",
	      "password file in Mosquitto's format (mosquitto_passwd / hamqtt-passwd); empty = none"),
	K_BOOL("auth.builtin_db.enable", auth_builtin_db_enable, "true",
	       "the built-in user database (REST, replicated) in the chain, once it has users"),
	K_STR("auth.acl_file", auth_acl_file, NULL, NULL, "",
	      "ACL file in Mosquitto's format; empty = no ACL, everything allowed"),
	K_ENUM("auth.acl.no_match", auth_acl_no_match, acl_no_match_names, "deny",
	       "with an ACL file: what a request no rule matches gets: allow | deny"),
	K_ENUM("auth.acl.deny_action", auth_acl_deny_action, acl_deny_action_names, "ignore",
	       "a PUBLISH the ACL denies: ignore (drop it; v5 0x87 in PUBACK/PUBREC) | disconnect"),
	K_STR("auth.http.url", auth_http_url, check_auth_url, "http:// or https:// URL, ${clientid} ${username} ${password} ${peerhost}", "",
	      "HTTP authentication hook (EMQX style), http:// or https://; empty = none"),
	K_ENUM("auth.http.method", auth_http_method, auth_http_method_names, "post",
	       "post (the body template as the request body) | get (as the query string)"),
	K_STR("auth.http.body", auth_http_body, check_auth_tmpl, "a template with ${clientid} ${username} ${password} ${peerhost}", "",
	      "template with ${clientid} ${username} ${password} ${peerhost}; empty = JSON (post) "
	      "or a query string (get) of all four"),
	K_STR("auth.http.headers", auth_http_headers, NULL, NULL, "",
	      "extra request headers, \"Name: value\" separated by ';'"),
	K_DUR("auth.http.timeout", auth_http_timeout, 1, 600, "5s",
	      "a hook slower than this counts as ignore (the next method)"),
	K_DUR("auth.http.cache_ttl", auth_http_cache_ttl, 0, 86400, "0s",
	      "allow/deny answers cached per client id, user name and password; 0 = no cache"),
	K_INT("auth.http.max_inflight", auth_http_max_inflight, 1, 100000, "64",
	      "hook calls out at once; more CONNECTs wait their turn"),
	K_STR("auth.redis.server", auth_redis_server, check_hostport_or_empty, "host:port or empty", "",
	      "Redis authentication (EMQX style), host:port; empty = none"),
	K_STR("auth.redis.password", auth_redis_password, NULL, NULL, "",
	      "Redis AUTH password; empty = none"),
	K_INT("auth.redis.database", auth_redis_database, 0, 65535, "0",
	      "Redis database number (SELECT)"),
	K_DUR("auth.redis.timeout", auth_redis_timeout, 1, 600, "2s",
	      "a Redis connect or command slower than this counts as ignore (the next method)"),
	K_STR("auth.redis.cmd", auth_redis_cmd, check_redis_cmd, "HMGET <key> password_hash [salt] [is_superuser]",
	      "HMGET mqtt_user:${username} password_hash salt",
	      "HMGET <key> password_hash [salt]; fields named so are read"),
	K_ENUM("auth.redis.password_hash", auth_redis_password_hash, auth_hash_names, "sha256",
	       "how password_hash is stored: plain | sha256 | sha512 | pbkdf2 (HMAC-SHA512), hex"),
	K_ENUM("auth.redis.salt_position", auth_redis_salt_position, auth_salt_names, "prefix",
	       "sha256/sha512: the salt before (prefix) or after (suffix) the password, or none"),
	K_INT("auth.redis.pbkdf2_iterations", auth_redis_pbkdf2_iterations, 1, 10000000, "4096",
	      "pbkdf2: iterations"),

	/* overload protection (brk_overload.c, brk_ratelimit.c): the listener
	 * keys exist for every listener type (the accept path is common) */
#define OVL_LISTENER_KEYS(T, TN) \
	{ .name = "listeners." TN ".default.max_connections", .type = KT_INT, .flags = KEY_LISTENER, \
	  .ltype = T, LF(max_connections), .min = 0, .max = CONF_U32, .def = "0", \
	  .doc = "connections open on this listener; more are closed at accept; 0 = no limit" }, \
	{ .name = "listeners." TN ".default.max_conn_rate", .type = KT_STR, .flags = KEY_LISTENER, \
	  .ltype = T, LF(max_conn_rate), .check = conf_check_rate, .expect = "a rate like 1000/s", \
	  .def = "", .doc = "new connections accepted per second (\"500/s\"); more wait in the " \
	  "kernel backlog; empty = no limit" }, \
	{ .name = "listeners." TN ".default.messages_rate", .type = KT_STR, .flags = KEY_LISTENER, \
	  .ltype = T, LF(messages_rate), .check = conf_check_rate, .expect = "a rate like 1000/s", \
	  .def = "", .doc = "PUBLISH packets read per client per second; above it the socket is " \
	  "not read (TCP back-pressure); empty = no limit" }, \
	{ .name = "listeners." TN ".default.bytes_rate", .type = KT_STR, .flags = KEY_LISTENER, \
	  .ltype = T, LF(bytes_rate), .check = conf_check_rate, .expect = "a rate like 1MB/s", \
	  .def = "", .doc = "bytes read per client per second (\"1MB/s\"); empty = no limit" }
	OVL_LISTENER_KEYS(CONF_LT_TCP, "tcp"),
	OVL_LISTENER_KEYS(CONF_LT_SSL, "ssl"),
	OVL_LISTENER_KEYS(CONF_LT_WS, "ws"),
	OVL_LISTENER_KEYS(CONF_LT_WSS, "wss"),
#undef OVL_LISTENER_KEYS
	K_INT("overload.max_connections_per_ip", ovl_max_conns_per_ip, 0, CONF_U32, "0",
	      "connections per client address (after PROXY protocol) on this node; 0 = no limit"),
	K_DUR("overload.incomplete_packet_timeout", ovl_incomplete_packet_timeout, 1, 3600, "30s",
	      "a packet not complete this long after its first byte closes the connection"),
	K_DUR("overload.rate_limit_disconnect", ovl_rate_limit_disconnect, 0, 86400, "30s",
	      "a client over messages_rate or bytes_rate this long is disconnected (v5 0x96); "
	      "0 = throttle only"),
	K_STR("overload.memory_high_watermark", ovl_memory_high_watermark, conf_check_watermark,
	      "0, a size (512MB) or a percentage (80%)", "0",
	      "above this resident memory new connections are refused (0x89) and QoS 0 to slow "
	      "subscribers is dropped; 0 = off"),
	K_BOOL("flapping_detect.enable", flap_enable, "false",
	       "ban a client id that connects too often (flapping_detect.max_count per window_time)"),
	K_INT("flapping_detect.max_count", flap_max_count, 1, CONF_U32, "15",
	      "connects of one client id allowed within window_time"),
	K_DUR("flapping_detect.window_time", flap_window_time, 1, 86400, "1m",
	      "the window connects are counted in"),
	K_DUR("flapping_detect.ban_time", flap_ban_time, 1, 31536000, "5m",
	      "how long a flapping client id is banned"),
	/* auth.jwt.* (src/auth/auth_jwt.h): the JWT method; the names of `from`
	 * inline so that the block stays in one place */
	K_ENUM("auth.jwt.from", auth_jwt_from, ((const char *const[]){ "password", "username", NULL }),
	       "password", "where a client puts its JWT: password | username"),
	K_STR("auth.jwt.secret", auth_jwt_secret, NULL, NULL, "",
	      "HS256/384/512 shared secret; empty = none"),
	K_BOOL("auth.jwt.secret_base64", auth_jwt_secret_base64, "false",
	       "auth.jwt.secret is base64 text (the key is the decoded bytes)"),
	K_STR("auth.jwt.public_key", auth_jwt_public_key, NULL, NULL, "",
	      "PEM public key file (RSA: RS256/384/512, EC: ES256/384/512); empty = none"),
	K_STR("auth.jwt.jwks_file", auth_jwt_jwks_file, NULL, NULL, "",
	      "JWK Set file; empty = none"),
	K_STR("auth.jwt.jwks_url", auth_jwt_jwks_url, check_http_url, "http://... or https://...", "",
	      "JWK Set URL, fetched on start, every jwks_refresh and on an unknown kid; empty = none"),
	K_DUR("auth.jwt.jwks_refresh", auth_jwt_jwks_refresh, 1, 86400, "5m",
	      "time between two fetches of auth.jwt.jwks_url"),
	K_DUR("auth.jwt.leeway", auth_jwt_leeway, 0, 600, "0s",
	      "clock skew allowed when checking exp and nbf"),
	K_STR("auth.jwt.issuer", auth_jwt_issuer, NULL, NULL, "",
	      "required iss claim; empty = not checked"),
	K_STR("auth.jwt.audience", auth_jwt_audience, NULL, NULL, "",
	      "required aud claim (or member of it); empty = not checked"),
	K_BOOL("auth.jwt.verify_clientid", auth_jwt_verify_clientid, "false",
	       "the claim clientid (else sub) must equal the client id"),
	K_BOOL("auth.jwt.verify_username", auth_jwt_verify_username, "false",
	       "the claim username (else sub) must equal the user name"),
	K_STR("auth.jwt.acl_claim", auth_jwt_acl_claim, NULL, NULL, "acl",
	      "the claim holding the client's ACL; empty = none"),
};

const size_t conf_n_keys = sizeof(conf_keys) / sizeof(conf_keys[0]);
#define N_KEYS conf_n_keys

size_t conf_key_count(void)
{
	return N_KEYS;
}

const char *conf_key_name(size_t i)
{
	return i < N_KEYS ? conf_keys[i].name : NULL;
}

const char *conf_key_default(size_t i)
{
	return i < N_KEYS ? conf_keys[i].def : NULL;
}

const char *conf_key_doc(size_t i)
{
	return i < N_KEYS ? conf_keys[i].doc : NULL;
}
