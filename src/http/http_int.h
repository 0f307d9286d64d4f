/*
 * http_int.h - private to src/http/: the request/response objects that route
 * handlers see and the route table's shape. http_server.c turns libmicrohttpd
 * requests into struct http_req and struct http_resp into MHD responses;
 * handlers (http_api.c, later metrics and dashboard assets) never see MHD.
 *
 * Ownership: a handler fills resp; resp->body is malloc'd and owned by resp
 * until http_server.c hands it to MHD (which frees it).
 */
#ifndef HQ_HTTP_INT_H
#define HQ_HTTP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mgmt/mgmt_users.h"

struct broker;
struct http_authz;
struct http_guard;
struct http_throttle;
struct hq_config;
struct cJSON;
struct http_resp;
struct http_query;

#define HTTP_MAX_BODY (64 * 1024) /* bytes of request body we accept; more gets 413 */

/* What every handler may read; cfg and b are borrowed for the server's lifetime. */
struct http_ctx {
	const struct hq_config *cfg;
	_Atomic(struct broker *) b; /* NULL until http_server_attach (node starting) */
	atomic_bool stopping;       /* http_server_set_stopping: 503 "stopping" from now on */
	atomic_bool seen_accepting; /* the node accepted MQTT at some point: a node that
				       no longer does is stopping, not starting */
	struct mgmt_users *users;   /* users and API keys (owned by the server) */
	struct http_authz *authz;   /* token key, revocation list, refusal log (owned) */
	struct http_guard *guard;   /* connection limits and deadlines (owned) */
	struct http_throttle *login_throttle; /* failed logins per address (owned) */
	struct http_monitor *monitor; /* the node's /monitor time series (owned) */
};

/* The broker, or NULL while the node is starting (then resp is a 503). */
struct broker *http_broker(struct http_ctx *ctx, struct http_resp *resp);

struct http_req {
	const char *method;   /* "GET", "POST", ... as sent */
	const char *path;     /* decoded path (MHD undoes %XX), without the query string */
	const char *body;     /* request body (NUL terminated) or NULL */
	size_t body_len;
	const char *authorization; /* the Authorization header, or NULL */
	const char *peer;     /* the caller's address, for log lines ("?" if unknown) */
	const struct mgmt_principal *who; /* who the request runs as (set by the dispatcher
					     for routes that need credentials), else NULL */
	const char *arg;      /* the path segment a route's '*' matched (points into path,
				 not NUL terminated), or NULL; set by http_api_dispatch */
	size_t arg_len;
	const struct http_query *query; /* every query argument, decoded (http_query.h);
					   NULL = none; http_arg() reads one */
	bool local;           /* a peer node forwarded this request over the cluster
				 (HTTP_R_FANOUT_*): answer for this node only */
	/* the dashboard's assets (http_assets.c): request headers, or NULL */
	const char *accept_encoding, *if_none_match;
};

/* The query argument name, or NULL (borrowed from req). */
const char *http_arg(const struct http_req *req, const char *name);

/* The window of a paged list (EMQX's shape): ?page= (from 1) and ?limit=
 * (default 100, at most max_limit); a forwarded request (req->local) may
 * give the absolute offset as ?_offset= instead, which a cluster-wide list
 * uses to ask each node for its part of a page. */
struct http_page {
	long page, limit;
	size_t offset;        /* first item of the window: (page - 1) * limit or _offset */
};
/* HQ_OK, or HQ_EINVAL with a 400 already in resp. */
int http_page_get(const struct http_req *req, long max_limit, struct http_page *pg,
		  struct http_resp *resp);
/* {"data": data, "meta": {"page", "limit", "count", "hasnext"}}; takes data
 * (a cJSON array holding the window's items); count = items in the whole list
 * on this node. Fills resp (200, or 500 on allocation failure). */
void http_resp_page(struct http_resp *resp, const struct http_page *pg, struct cJSON *data,
		    size_t count);

struct http_resp {
	int status;                 /* HTTP status code */
	const char *content_type;   /* static string */
	const char *allow;          /* Allow header for 405 (static or resp-owned buffer), or NULL */
	const char *www_auth;       /* WWW-Authenticate header of a 401 (static), or NULL */
	unsigned retry_after;       /* seconds for a Retry-After header (429); 0 = none */
	char *unreachable;          /* X-Hamqtt-Unreachable header: the members a cluster-wide
				       answer lacks, "n1,n2" (malloc'd, owned) or NULL */
	char *body;                 /* malloc'd, owned by resp; NULL = empty body */
	size_t body_len;
	char allow_buf[64];
	/* the dashboard's assets (http_assets.c); NULL/false = not sent, and
	 * Cache-Control is "no-store" (every API answer) */
	const char *content_encoding; /* "gzip" */
	const char *etag;             /* static, quoted */
	const char *cache_control;    /* static */
	bool page_headers;            /* Content-Security-Policy and friends (a page) */
};

typedef void (*http_handler)(struct http_ctx *ctx, const struct http_req *req,
			     struct http_resp *resp);

/* One row of the route table (http_api.c): exact path match, except that a
 * '*' in path matches one non-empty segment (no '/'), handed to the handler as
 * req->arg, and a final "**" the non-empty rest of the path (slashes too);
 * a GET route also answers HEAD (MHD sends the headers only). */
struct http_route {
	const char *method;
	const char *path;
	http_handler fn;
	unsigned flags;    /* HTTP_R_*; 0 = credentials needed, administrator for a
			      non-GET, no pending password change */
};
#define HTTP_R_OPEN 1u     /* no credentials (health, metrics, login) */
#define HTTP_R_SELF 2u     /* any authenticated principal, even a viewer or one that must
			      change its password (change_pwd, logout): the handler checks */
/* Cluster-wide routes: the handler answers for this node only; the
 * dispatcher asks every running member over the cluster links (the request
 * forwarded with req->local set) and combines the answers, so any node
 * answers for the whole cluster. A stopped member is reported, not waited for. */
#define HTTP_R_FANOUT_LIST 4u /* a paged list (http_resp_page): the nodes' lists
				 concatenated in member order, paged over the whole */
#define HTTP_R_FANOUT_ONE 8u  /* one object (GET or DELETE .../{id}), or a write every
				 node makes (PUT log_level, POST trace): every running
				 member runs it; the first answer other than 404 wins
				 (this node first); 404 if none */

/* ---- the cluster-wide REST API (ARCHITECTURE.md "Cluster-wide REST API") ---- */
#define HTTP_R_NODE 16u       /* a node-level route (http_nodes.c): with req->local the
				 handler answers for this node; otherwise it asks the
				 members itself (http_fanout_gather) and combines */
/* One member's answer to a request asked of every member (http_fanout.c). */
struct http_member_ans {
	char node[256];
	bool self;
	bool running;               /* the member list says so */
	int status;                 /* HTTP status, or BROKER_RPC_UNREACHABLE / _TIMEOUT */
	char *body;                 /* malloc'd or NULL */
	size_t len;
};
/* Ask the members (every one, or only the one named) to answer req for
 * themselves: this node through fn with req->local set, the others over the
 * cluster (broker_cluster_call_many), all with req's method, path, body and
 * the query `query` (encoded, "" none). *out is in member order (this node
 * first), http_fanout_free it. HQ_OK, or an error with resp filled. */
int http_fanout_gather(struct http_ctx *ctx, const struct http_req *req, http_handler fn,
		       const char *only, const char *query, struct http_member_ans **out,
		       size_t *n, struct http_resp *resp);
void http_fanout_free(struct http_member_ans *v, size_t n);
/* resp->unreachable and a JSON array of the nodes that did not answer 2xx
 * (status < 100 or 5xx), or NULL when all did. */
struct cJSON *http_fanout_unreachable(const struct http_member_ans *v, size_t n,
				      struct http_resp *resp);
/* The dispatcher's part for HTTP_R_FANOUT_LIST / _ONE when req is not local. */
void http_fanout_route(struct http_ctx *ctx, const struct http_req *req, http_handler fn,
		       unsigned flags, struct http_resp *resp);
/* The executor of peers' requests (http_exec.c): two threads, a bounded
 * queue; registered with broker_set_api_handler by http_server_attach. */
struct http_exec;
struct http_exec *http_exec_new(struct http_ctx *ctx);
void http_exec_free(struct http_exec *e);   /* after broker_set_api_handler(NULL) */
struct broker_rpc_job;
void http_exec_submit(void *exec, struct broker_rpc_job *job);   /* broker_api_fn */
/* The node's time series for /monitor (http_monitor.c): a thread sampling
 * broker_get_info every second, keeping a point per 10 s for an hour. */
struct http_monitor;
struct http_monitor *http_monitor_new(struct http_ctx *ctx);
void http_monitor_free(struct http_monitor *m);
/* Raise *conns / *sessions to the highest values sampled (m may be NULL). */
void http_monitor_peaks(struct http_monitor *m, int64_t *conns, int64_t *sessions);
/* The node-level routes (http_nodes.c). */
void http_nodes_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_nodes_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_nodes_stats(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_nodes_metrics(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_nodes_listeners(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_nodes_test_items(struct http_ctx *ctx, const struct http_req *req,
			   struct http_resp *resp);
void http_nodes_test_item(struct http_ctx *ctx, const struct http_req *req,
			  struct http_resp *resp);
void http_monitor_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_monitor_current(struct http_ctx *ctx, const struct http_req *req,
			  struct http_resp *resp);

/* Find the route for req and run it: 404 for an unknown path, 405 (with an
 * Allow header) for a known path with another method. Always fills resp. */
void http_api_dispatch(struct http_ctx *ctx, const struct http_req *req,
		       struct http_resp *resp);

/* GET / and the dashboard's files (http_assets.c): embedded, gzip'd, ETag. */
void http_assets_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);

/* GET /api-docs, /api-docs/openapi.json (http_apidocs.c): the OpenAPI 3
 * document of every route, embedded like the dashboard's files. */
void http_apidocs_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);

/* GET /api/v5/bridges (http_bridges.c; issue 12 MQTT bridges) */
void http_bridges_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
/* GET /metrics (http_metrics.c): Prometheus text format. */
void http_metrics(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);

/* The cluster administration endpoints (http_cluster.c); they block the
 * calling thread while the broker waits for its cluster thread (seconds). */
void http_cluster_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_cluster_join(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_cluster_leave(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_cluster_force_leave(struct http_ctx *ctx, const struct http_req *req,
			      struct http_resp *resp);

/* The built-in user database (http_authdb.c). */
void http_authdb_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_authdb_add(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_authdb_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_authdb_put(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_authdb_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);

/* The built-in database's ACL rules (http_acldb.c): users, clients, all. */
#define HTTP_ACLDB_DECL(suffix)                                                                  \
	void http_acldb_list_##suffix(struct http_ctx *c, const struct http_req *q, struct http_resp *r); \
	void http_acldb_add_##suffix(struct http_ctx *c, const struct http_req *q, struct http_resp *r); \
	void http_acldb_get_##suffix(struct http_ctx *c, const struct http_req *q, struct http_resp *r); \
	void http_acldb_put_##suffix(struct http_ctx *c, const struct http_req *q, struct http_resp *r); \
	void http_acldb_delete_##suffix(struct http_ctx *c, const struct http_req *q, struct http_resp *r);
HTTP_ACLDB_DECL(users)
HTTP_ACLDB_DECL(clients)
void http_acldb_get_all(struct http_ctx *c, const struct http_req *q, struct http_resp *r);
void http_acldb_post_all(struct http_ctx *c, const struct http_req *q, struct http_resp *r);
void http_acldb_delete_all(struct http_ctx *c, const struct http_req *q, struct http_resp *r);
/* The request bodies of two broker routes, checked without a broker (fuzzed):
 * NULL with the result filled, or the reason of the 400. POST /api/v5/banned
 * (body NUL terminated or NULL; the ban is made at now_s) and POST
 * /api/v5/cluster/join (len bytes and a NUL after them; node gets the name). */
struct broker_ban;
const char *http_banned_parse(const char *body, int64_t now_s, struct broker_ban *ban);
const char *http_cluster_join_parse(const char *body, size_t len, char *node, size_t nodelen);
/* The banned list (http_banned.c). */
void http_banned_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_banned_post(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_banned_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
/* The management routes (http_mgmt.c): api_key, login, logout, users. */
void http_mgmt_login(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_logout(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_users_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_users_add(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_user_put(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_user_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_change_pwd(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_keys_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_key_create(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_key_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_key_put(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_mgmt_key_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);

/* ---- issue 11 "ops" (http_ops.c): alarms, log level, traces ---- */
#define HTTP_OPS_DECL(n) void http_ops_##n(struct http_ctx *c, const struct http_req *q, struct http_resp *r);
HTTP_OPS_DECL(alarms_list)
HTTP_OPS_DECL(alarms_clear)
HTTP_OPS_DECL(log_level_get)
HTTP_OPS_DECL(log_level_put)
HTTP_OPS_DECL(trace_list)
HTTP_OPS_DECL(trace_create)
HTTP_OPS_DECL(trace_delete)
HTTP_OPS_DECL(trace_stop)
HTTP_OPS_DECL(trace_download)
HTTP_OPS_DECL(trace_log)

/* ---- authentication (http_authz.c) ---- */
/* Token key from node.cookie (or the data dir), empty revocation list. NULL + err. */
struct http_authz *http_authz_new(const struct hq_config *cfg, char *err, size_t errlen);
void http_authz_free(struct http_authz *a);
/* Check req's credentials for route flags; HQ_OK with *who filled, or the
 * 401/403 already in resp (and logged, rate limited). */
int http_authz_check(struct http_ctx *ctx, const struct http_req *req, unsigned flags,
		     struct mgmt_principal *who, struct http_resp *resp);
/* A fresh token for who (login); malloc'd, or NULL. */
char *http_authz_issue(struct http_ctx *ctx, const struct mgmt_principal *who);
/* Logout: the bearer token of req is refused here until it expires. HQ_OK,
 * HQ_EINVAL (no bearer token), HQ_ELIMIT (list full). */
int http_authz_revoke(struct http_ctx *ctx, const struct http_req *req);
/* A warning line about a refused request, at most a few per 10 s (then one
 * summary line), so a flood of bad requests cannot flood the log. */
void http_authz_log_refusal(struct http_authz *a, const char *peer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Serialise doc as the JSON body with status; takes ownership of doc (freed). */
void http_resp_json(struct http_resp *resp, int status, struct cJSON *doc);
/* A JSON error body {"code": code, "message": message} with status. */
void http_resp_error(struct http_resp *resp, int status, const char *code, const char *message);

#endif
