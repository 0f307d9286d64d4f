/*
 * http_apidocs.c - GET /api-docs (and /api-docs/openapi.json): the OpenAPI
 * 3 document of the management API, src/http/apidocs/openapi.json embedded
 * at build time by scripts/embed_assets.py (table http_apidocs).
 *
 * Open (HTTP_R_OPEN) like EMQX's /api-docs: it describes the routes, every
 * one of which still asks for credentials itself. Served gzip'd with an
 * ETag like the dashboard's files (http_asset_send). The document is kept
 * by hand beside the route table; tests/integration/test_58_openapi.py
 * fails when a route of http_api.c is missing from it.
 */
#include "http/http_assets.h"
#include "http/http_int.h"

#include <string.h>

void http_apidocs_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	(void)ctx;
	for (size_t i = 0; i < http_apidocs_count; i++) {
		if (!strcmp(http_apidocs[i].path, "/openapi.json")) {
			http_asset_send(&http_apidocs[i], req, resp);
			return;
		}
	}
	/* the build embeds the file: missing means a broken build */
	http_resp_error(resp, 500, "INTERNAL_ERROR", "the OpenAPI document is not embedded");
}
