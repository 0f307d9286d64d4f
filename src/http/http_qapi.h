/*
 * http_qapi.h - private to src/http/: the handlers of the broker's query
 * routes (clients, subscriptions, topics: http_clients.c; retained
 * messages and publish: http_retained.c) and the helpers they share.
 */
#ifndef HQ_HTTP_QAPI_H
#define HQ_HTTP_QAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;
struct http_ctx;
struct http_req;
struct http_resp;

#define HTTP_QAPI_DECL(name) \
	void name(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp);
HTTP_QAPI_DECL(http_clients_list)
HTTP_QAPI_DECL(http_client_get)
HTTP_QAPI_DECL(http_client_kick)
HTTP_QAPI_DECL(http_client_subs)
HTTP_QAPI_DECL(http_subs_list)
HTTP_QAPI_DECL(http_topics_list)
HTTP_QAPI_DECL(http_retained_list)
HTTP_QAPI_DECL(http_retained_get)
HTTP_QAPI_DECL(http_retained_delete)
HTTP_QAPI_DECL(http_publish)
HTTP_QAPI_DECL(http_publish_bulk)
/* issue 12: GET /api/v5/archive/messages (http_archive.c) */
HTTP_QAPI_DECL(http_archive_messages)

/* ms since the epoch as RFC 3339 ("2026-12-06T20:04:01.123+00:00") */
void http_qapi_time(char *out, size_t cap, int64_t ms);
/* o.name = that time, or null for 0; false on allocation failure */
bool http_qapi_add_time(struct cJSON *o, const char *name, int64_t ms);
/* A broker_api.h error as the HTTP answer (404 says what) */
void http_qapi_error(struct http_resp *resp, int rc, const char *what);
/* req->arg as a malloc'd string (NULL: out of memory) */
char *http_qapi_arg_dup(const struct http_req *req);

#endif
