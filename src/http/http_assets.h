/*
 * http_assets.h - the dashboard's files, embedded in the binary.
 *
 * The table is generated at build time by scripts/embed_assets.py from web/
 * (into $(BUILD)/gen/http_assets_gen.c, not committed): each file gzip'd
 * once, so the node serves the compressed bytes as they are and inflates
 * (zlib) only for the rare client that does not accept gzip. Read-only data,
 * shared by every HTTP thread without a lock.
 */
#ifndef HQ_HTTP_ASSETS_H
#define HQ_HTTP_ASSETS_H

#include <stddef.h>

struct http_asset {
	const char *path;          /* URL path: "/index.html", "/assets/app.js", ... */
	const char *mime;          /* Content-Type */
	const char *etag;          /* quoted strong ETag: a hash of the file's bytes */
	const unsigned char *gz;   /* the gzip'd bytes (gzip -9n) */
	size_t gz_len;
	size_t raw_len;            /* size once inflated */
};

extern const struct http_asset http_assets[];
extern const size_t http_assets_count;
extern const size_t http_assets_gz_total; /* bytes: the whole UI, compressed */

/* The OpenAPI document's table (src/http/apidocs/, same generator). */
extern const struct http_asset http_apidocs[];
extern const size_t http_apidocs_count;
extern const size_t http_apidocs_gz_total;

/* The asset at URL path (exact), or NULL. "/" is "/index.html". */
const struct http_asset *http_asset_find(const char *path);
/* Inflate a's bytes into a malloc'd buffer of a->raw_len bytes; NULL when out
 * of memory or the data is corrupt (a build bug). */
unsigned char *http_asset_inflate(const struct http_asset *a);
/* Answer req with a: 304 when If-None-Match names its ETag, else the
 * gzip'd bytes (Accept-Encoding allows) or the inflated ones; 500 when out
 * of memory. Sets the page headers (CSP, nosniff, ...). */
struct http_req;
struct http_resp;
void http_asset_send(const struct http_asset *a, const struct http_req *req,
		     struct http_resp *resp);
/* Does an Accept-Encoding header value accept gzip (a "gzip" or "*" token
 * without q=0)? NULL = no. */
int http_accepts_gzip(const char *accept_encoding);

#endif
