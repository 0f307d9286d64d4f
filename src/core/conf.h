/*
 * conf.h - node configuration: one file of `key = value` lines with dotted keys
 * and `#` comments, then HAMQTT_<KEY> environment overrides (dots written as
 * "__", e.g. HAMQTT_NODE__NAME), then `--set key=value` overrides, in that order.
 *
 * Keys are a table (conf.c, one row per key: name, type, range, default, doc);
 * the same table fills defaults, parses, validates and prints documentation.
 * Unknown keys and bad values are refused with "file:line: key: what is
 * expected" (for overrides the "file" is "env HAMQTT_..." or "--set").
 *
 * Ownership: struct hq_config owns all its strings; conf_free releases them.
 */
#ifndef HQ_CORE_CONF_H
#define HQ_CORE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_LISTENERS 8
#define CONF_ERR_MAX 512

enum conf_store { CONF_STORE_MEMORY = 0, CONF_STORE_LOCAL, CONF_STORE_REDIS };
enum conf_discovery { CONF_DISC_MANUAL = 0, CONF_DISC_STATIC, CONF_DISC_DNS };
/* cluster.dns.record_type: A records name peers by address, SRV by target host */
enum conf_dns_record { CONF_DNS_A = 0, CONF_DNS_SRV };
enum conf_shared_strategy { CONF_SHARED_ROUND_ROBIN = 0, CONF_SHARED_RANDOM, CONF_SHARED_HASH_CLIENTID };
/* auth (issue 10, src/auth/) */
enum conf_acl_no_match { CONF_ACL_DENY = 0, CONF_ACL_ALLOW };
enum conf_acl_deny_action { CONF_ACL_IGNORE = 0, CONF_ACL_DISCONNECT };
/* auth.http / auth.redis (src/auth/auth_async.h) */
enum conf_auth_http_method { CONF_AUTH_HTTP_POST = 0, CONF_AUTH_HTTP_GET };
enum conf_auth_hash { CONF_AUTH_HASH_PLAIN = 0, CONF_AUTH_HASH_SHA256, CONF_AUTH_HASH_SHA512,
		      CONF_AUTH_HASH_PBKDF2 };
enum conf_auth_salt { CONF_AUTH_SALT_PREFIX = 0, CONF_AUTH_SALT_SUFFIX, CONF_AUTH_SALT_DISABLE };

/* listeners.<type>.<name>.*: a listener is known by its type and name (tcp
 * "default" and ssl "default" are two listeners). */
enum conf_listener_type { CONF_LT_TCP = 0, CONF_LT_SSL, CONF_LT_WS, CONF_LT_WSS, CONF_LT_COUNT };
/* ssl and wss listeners carry TLS (net/net_tls.c) */
#define CONF_LT_HAS_TLS(t) ((t) == CONF_LT_SSL || (t) == CONF_LT_WSS)
enum conf_tls_verify { CONF_VERIFY_NONE = 0, CONF_VERIFY_PEER };
enum conf_peer_cert_user { CONF_PCU_NONE = 0, CONF_PCU_CN };

struct conf_listener {
	char *name;            /* the <name> in listeners.<type>.<name>.* */
	enum conf_listener_type type;
	char *bind;            /* "host:port"; host may be empty, "0.0.0.0", "::" or "[v6]" */
	bool proxy_protocol;   /* expect a PROXY v1/v2 header first (before TLS on ssl) */
	bool enabled;
	/* ssl only (net/net_tls.c) */
	enum conf_tls_verify verify;        /* peer: a client certificate is required */
	enum conf_peer_cert_user peer_cert_as_username;
	char *certfile;        /* PEM server certificate (chain) */
	char *keyfile;         /* PEM private key */
	char *cacertfile;      /* PEM CAs client certificates are checked against; "" = none */
	char *tls_versions;    /* "1.2,1.3", "1.3", ... */
	char *ciphers;         /* OpenSSL cipher list for TLS 1.2; "" = OpenSSL's default */
	/* ws and wss only (net/net_ws.c) */
	char *ws_path;         /* the HTTP path of the WebSocket upgrade, "/mqtt" */
	/* overload protection (brk_overload.c): 0 / "" = no limit */
	uint32_t max_connections;  /* connections open on this listener */
	char *max_conn_rate;   /* "1000/s": new connections accepted per second */
	char *messages_rate;   /* "1000/s": PUBLISH packets read per client */
	char *bytes_rate;      /* "1MB/s": bytes read per client */
};

/* "tcp", "ssl", "ws", "wss" */
const char *conf_listener_type_name(enum conf_listener_type t);

/* An "archive.*" or "bridges.*" line kept as text (issue 12: src/archive/
 * and src/bridge/ parse and check their own keys, which are per archive or
 * bridge and structured). All owned by the config. */
struct conf_raw {
	char *key;
	char *value;
	char *origin; /* "file:line: " or "env HAMQTT_X: ": an error message's prefix */
};
/* Refuse a kept line: "<origin><key>: <message>" into err; HQ_EINVAL.
 * r may be NULL (a cross-key check with no one line to name). */
int conf_raw_fail(const struct conf_raw *r, const char *key, char *err, size_t errlen,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A section's <name> (listeners, archives, bridges): 1..max of [A-Za-z0-9_-]. */
bool conf_section_name_ok(const char *s, size_t n, size_t max);

struct hq_config {
	/* bridges.mqtt.<name>.* lines, in order (src/bridge/brg_conf.c) */
	struct conf_raw *bridge_raw;
	int n_bridge_raw;
	/* node */
	char *node_name;               /* name@host */
	char *node_cookie;
	char *node_data_dir;
	int node_workers;              /* 0 = one per CPU core */
	int node_shutdown_grace;       /* seconds between SIGTERM and disconnecting clients */
	/* cluster (used by the clustering issue; parsed and validated now) */
	char *cluster_name;
	enum conf_discovery cluster_discovery;
	char *cluster_static_seeds;    /* comma separated node names */
	char *cluster_dns_name;
	enum conf_dns_record cluster_dns_record_type;
	int cluster_port;              /* 4370 */
	int cluster_heartbeat_timeout; /* seconds */
	/* cluster.tls.*: TLS on cluster links (cluster/clu_tls.c) */
	bool cluster_tls_enable;
	char *cluster_tls_certfile;    /* this node's certificate, presented both ways */
	char *cluster_tls_keyfile;
	char *cluster_tls_cacertfile;  /* the CA every node's certificate must chain to */
	bool cluster_tls_verify_hostname; /* a peer's certificate must name its node host */
	char *cluster_tls_tls_versions;
	char *cluster_tls_ciphers;
	/* listeners */
	struct conf_listener listeners[CONF_MAX_LISTENERS];
	int n_listeners;
	/* issue 12 archives: every archive.<name>.<leaf> line as written, in
	 * order, with where it came from ("file:line", "env HAMQTT_X", "--set");
	 * src/archive/arc_conf.c parses and checks them (it owns their schema) */
	struct conf_raw *archive_kv;
	int n_archive_kv;
	/* sessions */
	enum conf_store session_store;
	bool session_local_fsync;      /* fsync per group commit */
	uint64_t session_local_max_size; /* bytes: the LMDB map size */
	char *session_redis_server;    /* host:port */
	char *session_redis_password;  /* "" = none */
	int session_redis_database;
	char *session_redis_sentinels; /* "" = no Sentinel; comma separated host:port */
	char *session_redis_master_name;
	int session_redis_timeout;     /* seconds */
	int session_redis_wait_replicas; /* WAIT for this many replicas per group commit */
	/* dashboard / http */
	char *dashboard_bind;          /* host:port */
	/* management API credentials and HTTP abuse limits (src/http/, src/mgmt/) */
	int dashboard_max_conns;       /* concurrent HTTP connections */
	int dashboard_max_conns_per_addr; /* per client address; 0 = no limit */
	int dashboard_request_timeout; /* seconds for a request's headers + body */
	int dashboard_token_expiry;    /* seconds a login token is valid */
	char *dashboard_default_password_file; /* "" = admin/public, changed at first login */
	/* secure defaults (secdef): login throttling (http_throttle.c) */
	int dashboard_login_max_failures; /* failed logins per address before 429; 0 = off */
	int dashboard_login_block_time;   /* seconds of the first 429 period (doubles) */
	/* log */
	int log_level;                 /* enum log_level */
	int log_format;                /* enum log_format */
	char *log_file;                /* "" = stderr */
	/* mqtt limits and features */
	uint32_t max_packet_size;      /* bytes, both directions */
	uint32_t max_inflight;         /* outgoing QoS 1/2 window per client */
	uint32_t receive_maximum;      /* incoming QoS 1/2 window we advertise */
	uint32_t max_queued_messages;  /* per session, beyond the in-flight window */
	uint64_t max_queued_bytes;     /* per session; 0 = no byte limit */
	uint64_t max_queued_bytes_total; /* all sessions of the node; 0 = no limit */
	uint32_t max_topic_levels;
	uint32_t max_subscriptions;    /* per client; 0 = unlimited */
	uint32_t max_connections;      /* per node */
	uint32_t max_clientid_len;
	uint32_t connect_timeout;      /* seconds to wait for CONNECT */
	uint32_t max_keepalive;        /* seconds; larger client values are capped (v5) */
	uint32_t server_keepalive;     /* 0 = accept client's value */
	uint32_t topic_alias_maximum;  /* we accept from clients; 0 disables */
	uint32_t session_expiry_max;   /* seconds; cap on client requested expiry */
	uint32_t max_qos;              /* 0..2 */
	bool retain_available;
	bool wildcard_subscription;
	bool shared_subscription;
	bool subscription_identifiers;
	enum conf_shared_strategy shared_strategy;
	uint32_t max_outbuf;           /* bytes buffered to a slow reader before we stop queuing to its socket */
	/* $SYS */
	uint32_t sys_interval;         /* seconds; 0 disables */
	/* auth (src/auth/auth.h) */
	bool auth_allow_anonymous;     /* clients without a user name may connect */
	/* issue 10, replicated tables (auth_builtin.h) */
	bool auth_builtin_db_enable;   /* the built-in database in the chain (when it has users) */
	char *auth_password_file;      /* "" = none; Mosquitto's format */
	char *auth_acl_file;           /* "" = no ACL (everything allowed) */
	enum conf_acl_no_match auth_acl_no_match;
	enum conf_acl_deny_action auth_acl_deny_action;
	/* auth.http.* / auth.redis.*: the methods that ask a server (auth_async.h) */
	char *auth_http_url;           /* "" = no HTTP hook */
	enum conf_auth_http_method auth_http_method;
	char *auth_http_body;          /* template; "" = the default of the method */
	char *auth_http_headers;       /* "Name: value; Name: value" */
	uint32_t auth_http_timeout;    /* seconds */
	uint32_t auth_http_cache_ttl;  /* seconds; 0 = no cache */
	uint32_t auth_http_max_inflight;
	char *auth_redis_server;       /* "" = no Redis authentication */
	char *auth_redis_password;
	uint32_t auth_redis_database;
	uint32_t auth_redis_timeout;   /* seconds */
	char *auth_redis_cmd;
	enum conf_auth_hash auth_redis_password_hash;
	enum conf_auth_salt auth_redis_salt_position;
	uint32_t auth_redis_pbkdf2_iterations;
	/* overload protection (brk_overload.c, brk_ratelimit.c) */
	uint32_t ovl_max_conns_per_ip;     /* per source address, node-wide; 0 = no limit */
	uint32_t ovl_incomplete_packet_timeout; /* seconds a started packet may take */
	uint32_t ovl_rate_limit_disconnect; /* seconds over a rate limit before a
					     * disconnect; 0 = throttle only */
	char *ovl_memory_high_watermark;   /* "0" = off, "512MB", "80%" */
	bool flap_enable;                  /* flapping_detect.* (brk_banned.c) */
	uint32_t flap_max_count;           /* connects allowed per window */
	uint32_t flap_window_time;         /* seconds */
	uint32_t flap_ban_time;            /* seconds */
	/* auth.jwt.* (src/auth/auth_jwt.h) */
	enum conf_jwt_from { CONF_JWT_FROM_PASSWORD = 0, CONF_JWT_FROM_USERNAME } auth_jwt_from;
	char *auth_jwt_secret;         /* "" = none; HS256/384/512 */
	bool auth_jwt_secret_base64;   /* the secret is base64 (or base64url) text */
	char *auth_jwt_public_key;     /* "" = none; PEM file, RSA or EC */
	char *auth_jwt_jwks_file;      /* "" = none; a JWK Set file */
	char *auth_jwt_jwks_url;       /* "" = none; http(s) URL of a JWK Set */
	uint32_t auth_jwt_jwks_refresh; /* seconds between two fetches of jwks_url */
	uint32_t auth_jwt_leeway;      /* seconds of clock skew allowed on exp / nbf */
	char *auth_jwt_issuer;         /* "" = iss not checked */
	char *auth_jwt_audience;       /* "" = aud not checked */
	bool auth_jwt_verify_clientid; /* claim clientid (else sub) = the client id */
	bool auth_jwt_verify_username; /* claim username (else sub) = the user name */
	char *auth_jwt_acl_claim;      /* "" = no ACL from claims */
};

/* Overload protection values (conf_rate.c). A rate: "<n>[KB|MB|GB]/<unit>"
 * with unit s, m, h or a number of seconds ("100/10s"); "", "0" and
 * "infinity" are no limit (0). Returns HQ_OK or HQ_EINVAL. */
int conf_parse_rate(const char *v, double *per_s);
bool conf_check_rate(const char *v);
/* A memory watermark: "0" (off), a size ("512MB") or a percentage of the
 * machine's (or cgroup's) memory ("80%", *pct set). */
int conf_parse_watermark(const char *v, uint64_t *val, bool *pct);
bool conf_check_watermark(const char *v);

/* Fill cfg with the built-in defaults (the values documented in etc/hamqtt.conf). */
void conf_defaults(struct hq_config *cfg);

/* Parse a config file into cfg (which holds defaults or earlier values).
 * On error returns HQ_EINVAL and writes "file:line: key: message" into err.
 * A relative node.data_dir (from the file or the default) is then taken from
 * the file's directory, so hamqttd and hamqtt-ctl find the same directory
 * whatever their working directories; HAMQTT_* and --set values applied
 * later stay relative to the working directory. */
int conf_load_file(struct hq_config *cfg, const char *path, char *err, size_t errlen);
/* Parse text as if it were a file named `name` (used by tests and embedded default). */
int conf_load_string(struct hq_config *cfg, const char *name, const char *text,
		     char *err, size_t errlen);
#define CONF_ARCHIVE_PREFIX "archive."
/* The table's value syntaxes (sizes "1GB", durations "5s", booleans). */
bool conf_parse_size(const char *s, uint64_t *out);
bool conf_parse_dur_s(const char *s, uint64_t *out);
bool conf_parse_bool(const char *s, bool *out);

/* Apply HAMQTT_* variables from envp (NULL-terminated, like environ). */
int conf_load_env(struct hq_config *cfg, char *const *envp, char *err, size_t errlen);
/* Apply one "key=value" override (from --set). */
int conf_set(struct hq_config *cfg, const char *origin, const char *kv, char *err, size_t errlen);
/* Cross-key checks after everything is loaded (e.g. at least one listener).
 * Refuses the compiled-in (public) node.cookie on a node whose cluster port
 * listens on a non-loopback address (conf_host_is_loopback). */
int conf_validate(const struct hq_config *cfg, char *err, size_t errlen);
/* The compiled-in node.cookie: public, so only fit for a node nobody else reaches. */
#define CONF_DEFAULT_COOKIE "hamqttsecretcookie"
/* host is 127.0.0.0/8, ::1 or localhost (what only this machine can reach). */
bool conf_host_is_loopback(const char *host);
void conf_free(struct hq_config *cfg);

/* Split "host:port" / "[v6]:port" / ":port"; host copied into host (size hostlen),
 * empty host means any. Returns HQ_OK or HQ_EINVAL. */
int conf_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* The schema, for documentation and checks: key i's name, default (as written in
 * a file) and one-line doc; NULL past the end. Listener keys are spelled with the
 * listener "default" (listeners.tcp.default.bind); any <name> works the same. */
size_t conf_key_count(void);
const char *conf_key_name(size_t i);
const char *conf_key_default(size_t i);
const char *conf_key_doc(size_t i);
/* Current value of key as text into out (sizes in bytes, durations as "Ns").
 * Returns HQ_OK, HQ_ENOTFOUND (unknown key or listener) or HQ_ELIMIT (truncated). */
int conf_get(const struct hq_config *cfg, const char *key, char *out, size_t outlen);

#endif
