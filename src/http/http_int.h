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

struct broker;
struct hq_config;
struct cJSON;
struct http_resp;

#define HTTP_MAX_BODY (64 * 1024) /* bytes of request body we accept; more gets 413 */

/* What every handler may read; cfg and b are borrowed for the server's lifetime. */
struct http_ctx {
	const struct hq_config *cfg;
	_Atomic(struct broker *) b; /* NULL until http_server_attach (node starting) */
	atomic_bool stopping;       /* http_server_set_stopping: 503 "stopping" from now on */
	atomic_bool seen_accepting; /* the node accepted MQTT at some point: a node that
				       no longer does is stopping, not starting */
};

/* The broker, or NULL while the node is starting (then resp is a 503). */
struct broker *http_broker(struct http_ctx *ctx, struct http_resp *resp);

struct http_req {
	const char *method;   /* "GET", "POST", ... as sent */
	const char *path;     /* decoded path (MHD undoes %XX), without the query string */
	const char *body;     /* request body (NUL terminated) or NULL */
	size_t body_len;
	const char *arg;      /* the path segment a route's '*' matched (points into path,
				 not NUL terminated), or NULL; set by http_api_dispatch */
	size_t arg_len;
};

struct http_resp {
	int status;                 /* HTTP status code */
	const char *content_type;   /* static string */
	const char *allow;          /* Allow header for 405 (static or resp-owned buffer), or NULL */
	char *body;                 /* malloc'd, owned by resp; NULL = empty body */
	size_t body_len;
	char allow_buf[64];
};

typedef void (*http_handler)(struct http_ctx *ctx, const struct http_req *req,
			     struct http_resp *resp);

/* One row of the route table (http_api.c): exact path match, except that a
 * '*' in path matches one non-empty segment (no '/'), handed to the handler as
 * req->arg; a GET route also answers HEAD (MHD sends the headers only). */
struct http_route {
	const char *method;
	const char *path;
	http_handler fn;
};

/* Find the route for req and run it: 404 for an unknown path, 405 (with an
 * Allow header) for a known path with another method. Always fills resp. */
void http_api_dispatch(struct http_ctx *ctx, const struct http_req *req,
		       struct http_resp *resp);

/* GET /metrics (http_metrics.c): Prometheus text format. */
void http_metrics(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);

/* The cluster administration endpoints (http_cluster.c); they block the
 * calling thread while the broker waits for its cluster thread (seconds). */
void http_cluster_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_cluster_join(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_cluster_leave(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_cluster_force_leave(struct http_ctx *ctx, const struct http_req *req,
			      struct http_resp *resp);

/* The banned list (http_banned.c). */
void http_banned_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_banned_post(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_banned_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);

/* Serialise doc as the JSON body with status; takes ownership of doc (freed). */
void http_resp_json(struct http_resp *resp, int status, struct cJSON *doc);
/* A JSON error body {"code": code, "message": message} with status. */
void http_resp_error(struct http_resp *resp, int status, const char *code, const char *message);

#endif
