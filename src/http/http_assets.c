/*
 * http_assets.c - serves the dashboard (GET /, /assets/..., /vendor/...) from
 * the table embedded at build time (http_assets.h).
 *
 * The routes are open (HTTP_R_OPEN): a page holds no data; every API call it
 * makes carries the bearer token. Each file is stored gzip'd and sent as is
 * with Content-Encoding: gzip to a client that accepts it (every browser);
 * any other client gets it inflated here. ETag = hash of the file, so a
 * reload revalidates with If-None-Match and gets 304 without a body; the
 * URLs carry no content hash, so Cache-Control is "no-cache" (always
 * revalidate) rather than a long max-age that would serve a stale page after
 * an upgrade. Page responses carry a strict Content-Security-Policy: scripts
 * and styles from this origin only, no inline script, no eval; connections
 * to this origin and to WebSocket listeners (the MQTT client page).
 */
#include "http/http_assets.h"
#include "http/http_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

const struct http_asset *http_asset_find(const char *path)
{
	if (!path || !strcmp(path, "/"))
		path = "/index.html";
	for (size_t i = 0; i < http_assets_count; i++)
		if (!strcmp(http_assets[i].path, path))
			return &http_assets[i];
	return NULL;
}

unsigned char *http_asset_inflate(const struct http_asset *a)
{
	unsigned char *out = malloc(a->raw_len ? a->raw_len : 1);
	if (!out)
		return NULL;
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { /* 16: a gzip header */
		free(out);
		return NULL;
	}
	zs.next_in = (unsigned char *)a->gz;
	zs.avail_in = (uInt)a->gz_len;
	zs.next_out = out;
	zs.avail_out = (uInt)a->raw_len;
	int rc = inflate(&zs, Z_FINISH);
	size_t got = zs.total_out;
	inflateEnd(&zs);
	if (rc != Z_STREAM_END || got != a->raw_len) {
		free(out);
		return NULL;
	}
	return out;
}

/* One token of an Accept-Encoding list ("gzip;q=0.5"): accepts gzip? */
static int token_gzip(const char *t, size_t n)
{
	size_t name = 0;
	while (name < n && t[name] != ';' && t[name] != ' ' && t[name] != '\t')
		name++;
	if (!((name == 4 && !strncasecmp(t, "gzip", 4)) || (name == 1 && t[0] == '*')))
		return 0;
	/* q=0 (or 0.0, 0.000) refuses it */
	for (const char *q = t + name; q + 1 < t + n; q++) {
		if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
			double v = strtod(q + 2, NULL);
			return v > 0.0;
		}
	}
	return 1;
}

int http_accepts_gzip(const char *ae)
{
	while (ae && *ae) {
		while (*ae == ' ' || *ae == '\t' || *ae == ',')
			ae++;
		size_t n = strcspn(ae, ",");
		if (n && token_gzip(ae, n))
			return 1;
		ae += n;
	}
	return 0;
}

/* Does an If-None-Match value name etag (a list, or "*")? Weak validators
 * (W/"...") compare equal too: RFC 9110 uses the weak comparison here. */
static int etag_matches(const char *inm, const char *etag)
{
	size_t el = strlen(etag);
	while (inm && *inm) {
		while (*inm == ' ' || *inm == '\t' || *inm == ',')
			inm++;
		if (*inm == '*')
			return 1;
		if (!strncmp(inm, "W/", 2))
			inm += 2;
		size_t n = strcspn(inm, ", \t");
		if (n == el && !memcmp(inm, etag, el))
			return 1;
		inm += n;
	}
	return 0;
}

void http_assets_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	const struct http_asset *a = http_asset_find(req->path);
	if (!a) {
		http_resp_error(resp, 404, "NOT_FOUND", "no such file");
		return;
	}
	http_asset_send(a, req, resp);
}

void http_asset_send(const struct http_asset *a, const struct http_req *req,
		     struct http_resp *resp)
{
	resp->content_type = a->mime;
	resp->etag = a->etag;
	resp->cache_control = "no-cache";
	resp->page_headers = true;
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	if (etag_matches(req->if_none_match, a->etag)) {
		resp->status = 304;
		return;
	}
	if (http_accepts_gzip(req->accept_encoding)) {
		/* the response owns a copy: http_server.c hands resp->body to MHD
		 * to free, and one code path for every body is worth the memcpy */
		resp->body = malloc(a->gz_len);
		if (!resp->body)
			goto oom;
		memcpy(resp->body, a->gz, a->gz_len);
		resp->body_len = a->gz_len;
		resp->content_encoding = "gzip";
	} else {
		resp->body = (char *)http_asset_inflate(a);
		if (!resp->body)
			goto oom;
		resp->body_len = a->raw_len;
	}
	resp->status = 200;
	return;
oom:
	resp->etag = NULL;
	resp->content_encoding = NULL;
	http_resp_error(resp, 500, "INTERNAL_ERROR", "out of memory");
}
