/*
 * http_server.c - libmicrohttpd wiring of the management HTTP server.
 *
 * We bind the listening socket ourselves (net/sock.h, so a bind error names
 * the key, the address and errno) and hand it to MHD, which runs one internal
 * thread accepting connections and one thread per connection (poll(2); select
 * where MHD lacks poll), so a slow handler delays only its own connection.
 * Each request is turned into a struct http_req, its body collected (capped
 * at HTTP_MAX_BODY), routed by http_api_dispatch and the struct http_resp
 * sent back.
 *
 * Logging: one notice line at start; per-request lines and MHD's own messages
 * (a peer closing early, ...) only at debug level, so load-balancer health
 * checks leave no noise in the log.
 */
#include "http/http.h"
#include "http/http_guard.h"
#include "http/http_throttle.h"
#include "http/http_int.h"
#include "http/http_query.h"
#include "broker/broker.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HTTP_BACKLOG 128
#define HTTP_CONN_TIMEOUT_S 30     /* idle keep-alive connections are closed after this
				      (http_guard's request deadline is usually first) */
#define HTTP_STACK_SIZE (512 * 1024) /* per connection thread: up to
					dashboard.listeners.http.max_connections of them */

struct http_server {
	struct http_ctx ctx;
	struct MHD_Daemon *mhd;
	atomic_bool started;           /* MHD is up: its messages drop to debug level */
	struct http_exec *exec;        /* peers' requests (http_exec.c), from attach; owned */
};

/* Per request state, allocated on MHD's first call for a request and freed in
 * on_completed. */
struct http_reqstate {
	struct http_query query; /* decoded query arguments (owned) */
	bool query_bad;    /* more than HTTP_QUERY_MAX_ARGS: 400 */
	char *body;        /* collected request body, NUL terminated, or NULL */
	size_t len;
	bool too_large;    /* body exceeded HTTP_MAX_BODY: answer 413, drop the rest */
};

/* A printable copy of s for a log line: control bytes become '?'. */
static void log_safe(char *out, size_t outlen, const char *s)
{
	size_t i = 0;
	for (; s && s[i] && i + 1 < outlen; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	out[i] = '\0';
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *s = cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (atomic_load(&s->started))
		log_debug("http: %s", msg);
	else
		log_warning("http: %s", msg);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_reqstate *st = *con_cls;
	http_guard_response_done(s->ctx.guard, c);
	if (st) {
		http_query_free(&st->query);
		free(st->body);
		free(st);
		*con_cls = NULL;
	}
}

/* Append a chunk of request body; past the cap the body is dropped and the
 * request answered 413 once it is complete. */
static void body_append(struct http_reqstate *st, const char *data, size_t n)
{
	if (st->too_large)
		return;
	if (st->len + n > HTTP_MAX_BODY) {
		st->too_large = true;
		HQ_FREE(st->body);
		st->len = 0;
		return;
	}
	st->body = hq_realloc(st->body, st->len + n + 1);
	memcpy(st->body + st->len, data, n);
	st->len += n;
	st->body[st->len] = '\0';
}

/* The dashboard's files (http_assets.c): encoding, validator and, for a
 * page, a strict Content-Security-Policy (ARCHITECTURE.md "The dashboard"):
 * no inline script or style, no eval, fetch/XHR to this origin and
 * WebSockets to the MQTT listeners only, no framing. */
#define HTTP_PAGE_CSP "default-src 'self'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; " \
	"base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
static void add_page_headers(struct MHD_Response *mr, const struct http_resp *r)
{
	if (r->content_encoding)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_ENCODING, r->content_encoding);
	if (r->etag)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_ETAG, r->etag);
	if (!r->page_headers)
		return;
	MHD_add_response_header(mr, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	MHD_add_response_header(mr, "Content-Security-Policy", HTTP_PAGE_CSP);
	MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(mr, "X-Frame-Options", "DENY");
	MHD_add_response_header(mr, "Referrer-Policy", "no-referrer");
}

static enum MHD_Result send_resp(struct MHD_Connection *c, struct http_resp *r)
{
	struct MHD_Response *mr;
	if (r->body)
		mr = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
	else
		mr = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!mr) {
		free(r->body);
		free(r->unreachable);
		return MHD_NO;
	}
	r->body = NULL; /* MHD owns it now */
	if (r->content_type)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL,
				r->cache_control ? r->cache_control : "no-store");
	add_page_headers(mr, r);
	if (r->allow)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->www_auth)
		MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_auth);
	if (r->unreachable) {
		MHD_add_response_header(mr, "X-Hamqtt-Unreachable", r->unreachable);
		HQ_FREE(r->unreachable);
	}
	if (r->retry_after) {
		char ra[16];
		snprintf(ra, sizeof(ra), "%u", r->retry_after);
		MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	enum MHD_Result ret = MHD_queue_response(c, (unsigned int)r->status, mr);
	MHD_destroy_response(mr);
	return ret;
}

/* The caller's address for log lines. */
static void peer_name(struct MHD_Connection *c, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	char a[INET6_ADDRSTRLEN] = "?";
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof(a));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof(a));
	snprintf(out, n, "%s", a);
}

/* MHD_get_connection_values' iterator: copy each decoded query argument. */
static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct http_reqstate *st = cls;
	(void)kind;
	if (http_query_add(&st->query, key, value) != HQ_OK) {
		st->query_bad = true;
		return MHD_NO;
	}
	return MHD_YES;
}

/* MHD's access handler: called once with the headers, then once per body
 * chunk, then once more (upload size 0) when the request is complete. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_reqstate *st = *con_cls;
	if (!st) {
		*con_cls = hq_calloc(1, sizeof(*st));
		return MHD_YES;
	}
	if (*upload_data_size) {
		body_append(st, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}

	http_guard_request_complete(s->ctx.guard, c);
	if (!st->query.n && !st->query_bad)
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg, st);
	char peer[INET6_ADDRSTRLEN + 8];
	peer_name(c, peer, sizeof(peer));
	struct http_req req = {
		.method = method,
		.path = url ? url : "/",
		.body = st->body,
		.body_len = st->len,
		.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_AUTHORIZATION),
		.peer = peer,
		.query = &st->query,
		.accept_encoding = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							       MHD_HTTP_HEADER_ACCEPT_ENCODING),
		.if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_IF_NONE_MATCH),
	};
	struct http_resp resp;
	memset(&resp, 0, sizeof(resp));
	if (st->too_large)
		http_resp_error(&resp, 413, "PAYLOAD_TOO_LARGE", "request body too large");
	else if (st->query_bad)
		http_resp_error(&resp, 400, "BAD_REQUEST", "too many query arguments");
	else
		http_api_dispatch(&s->ctx, &req, &resp);
	if (log_enabled(LOG_DEBUG)) {
		char m[16], p[256];
		log_safe(m, sizeof(m), method);
		log_safe(p, sizeof(p), req.path);
		log_debug("http: %s %s -> %d", m, p, resp.status);
	}
	return send_resp(c, &resp);
}

/* The management API's state: the user table, token key and connection
 * guard, all in node.data_dir (created here: the HTTP server starts first).
 * A table or key that cannot be read or made (bad file, no random bytes)
 * disables the credentialed routes (503, logged) but not the node: MQTT
 * service and the health check do not depend on them. */
static int mgmt_open(struct http_server *s, const struct hq_config *cfg, char *err, size_t errlen)
{
	char why[512] = "";
	if (fs_mkdir_p(cfg->node_data_dir) != HQ_OK) {
		snprintf(err, errlen, "node.data_dir: cannot create %s: %s", cfg->node_data_dir,
			 strerror(errno));
		return HQ_EIO;
	}
	s->ctx.users = mgmt_users_open(cfg->node_data_dir, cfg->dashboard_default_password_file,
				       why, sizeof(why));
	if (s->ctx.users)
		s->ctx.authz = http_authz_new(cfg, why, sizeof(why));
	if (!s->ctx.authz)
		log_error("management API disabled (every route but /api/v5/status and /metrics "
			  "answers 503): %s", why);
	s->ctx.guard = http_guard_new(cfg->dashboard_max_conns_per_addr,
				      cfg->dashboard_request_timeout);
	if (!s->ctx.guard) {
		snprintf(err, errlen, "cannot start the HTTP connection guard thread");
		return HQ_EIO;
	}
	s->ctx.login_throttle = http_throttle_new((unsigned)cfg->dashboard_login_max_failures,
						  (unsigned)cfg->dashboard_login_block_time);
	return HQ_OK;
}

/* After MHD stopped (or never started): no callback can run any more. */
static void free_parts(struct http_server *s)
{
	http_monitor_free(s->ctx.monitor);
	http_guard_free(s->ctx.guard);
	http_throttle_free(s->ctx.login_throttle);
	http_authz_free(s->ctx.authz);
	mgmt_users_detach(s->ctx.users);   /* the broker's tables outlive us (main.c) */
	mgmt_users_free(s->ctx.users);
	free(s);
}

/* host and port of dashboard.listeners.http.bind, or HQ_EINVAL with err set */
static int parse_bind(const struct hq_config *cfg, char *host, size_t hostlen, int *port,
		      char *err, size_t errlen)
{
	if (cfg->dashboard_bind &&
	    conf_parse_hostport(cfg->dashboard_bind, host, hostlen, port) == HQ_OK)
		return HQ_OK;
	snprintf(err, errlen, "dashboard.listeners.http.bind: bad address '%s'",
		 cfg->dashboard_bind ? cfg->dashboard_bind : "");
	return HQ_EINVAL;
}

int http_server_check(const struct hq_config *cfg, char *err, size_t errlen)
{
	char host[256];
	int port;
	if (parse_bind(cfg, host, sizeof(host), &port, err, errlen) != HQ_OK)
		return HQ_EINVAL;
	if (port == 0 || sock_port_free(host, port) == HQ_OK)
		return HQ_OK;
	if (errno == EADDRINUSE)
		snprintf(err, errlen, "dashboard.listeners.http.bind: %s is already in use "
			 "(another hamqttd or another program listens there)", cfg->dashboard_bind);
	else
		snprintf(err, errlen, "dashboard.listeners.http.bind: cannot listen on %s: %s",
			 cfg->dashboard_bind, strerror(errno));
	return HQ_EIO;
}

struct http_server *http_server_start(const struct hq_config *cfg, char *err, size_t errlen)
{
	char host[256];
	int port;
	if (parse_bind(cfg, host, sizeof(host), &port, err, errlen) != HQ_OK)
		return NULL;
	int fd = sock_listen_tcp(host, port, HTTP_BACKLOG, 0);
	if (fd < 0) {
		snprintf(err, errlen, "dashboard.listeners.http.bind: cannot listen on %s: %s",
			 cfg->dashboard_bind, strerror(errno));
		return NULL;
	}
	if (port == 0)
		port = sock_local_port(fd);

	struct http_server *s = hq_calloc(1, sizeof(*s));
	s->ctx.cfg = cfg;
	if (mgmt_open(s, cfg, err, errlen) != HQ_OK) {
		close(fd);
		free_parts(s);
		return NULL;
	}
	atomic_init(&s->ctx.b, NULL);
	atomic_init(&s->ctx.stopping, false);
	atomic_init(&s->ctx.seen_accepting, false);
	atomic_init(&s->started, false);

	/* One thread per connection: the cluster endpoints block their handler
	 * for seconds (a join waits for the other node), and with one polling
	 * thread (or MHD's pool, whose threads each serve many connections) that
	 * would stall /api/v5/status health checks behind it. Handlers therefore
	 * run concurrently; they only read cfg, atomics and thread-safe broker
	 * calls. dashboard.listeners.http.max_connections bounds the threads
	 * (small stacks: 1024 x 512 KiB of address space), and http_guard frees
	 * the slots that slow or greedy clients would hold.
	 * poll, not epoll: with MHD_USE_EPOLL, libmicrohttpd 0.9.75 does not see a
	 * peer that closes in the middle of a request body until the connection
	 * timeout, so aborted requests would pin connection slots (and epoll
	 * cannot be combined with a thread per connection anyway) */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_ERROR_LOG;
	if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
		flags |= MHD_USE_POLL;
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->dashboard_max_conns,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_CONN_TIMEOUT_S,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_NOTIFY_CONNECTION, http_guard_on_connection, s->ctx.guard,
				  MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTP_STACK_SIZE,
				  MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(err, errlen, "dashboard.listeners.http.bind: cannot start the HTTP server on %s "
			 "(libmicrohttpd refused; see the log)", cfg->dashboard_bind);
		close(fd);
		free_parts(s);
		return NULL;
	}
	atomic_store(&s->started, true);
	s->ctx.monitor = http_monitor_new(&s->ctx);
	bool v6 = strchr(host, ':') != NULL;
	log_notice("listener http (dashboard, REST API, /api/v5/status) on %s%s%s:%d",
		   v6 ? "[" : "", *host ? host : "0.0.0.0", v6 ? "]" : "", port);
	return s;
}

void http_server_attach(struct http_server *s, struct broker *b)
{
	char err[512];
	/* only now: broker_new holds the data dir's lock, so a second node
	 * refused there never overwrites the running node's key file */
	if (s->ctx.authz && mgmt_users_write_ctl_key(s->ctx.users, err, sizeof(err)) != HQ_OK)
		log_error("cannot write the local API key for hamqtt-ctl: %s (hamqtt-ctl needs "
			  "--api-key or HAMQTT_API_KEY)", err);
	/* users, API keys and logouts cluster-wide from now on (mgmt_repl.c) */
	if (s->ctx.users && mgmt_users_attach(s->ctx.users, broker_repl(b)) != HQ_OK)
		log_error("management users not replicated: no replicated tables");
	atomic_store(&s->ctx.b, b);
	/* the requests other members ask this node to answer (cluster-wide API) */
	s->exec = http_exec_new(&s->ctx);
	if (s->exec)
		broker_set_api_handler(b, http_exec_submit, s->exec);
}

void http_server_set_stopping(struct http_server *s)
{
	if (s)
		atomic_store(&s->ctx.stopping, true);
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	/* no new peer request from here; those queued are answered 503 */
	struct broker *b = atomic_load(&s->ctx.b);
	if (b && s->exec)
		broker_set_api_handler(b, NULL, NULL);
	http_exec_free(s->exec);
	/* closes the listening socket and every connection, joins the thread */
	MHD_stop_daemon(s->mhd);
	free_parts(s);
}
