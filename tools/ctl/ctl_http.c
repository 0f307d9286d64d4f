/*
 * ctl_http.c - hamqtt-ctl's HTTP client: one blocking libcurl request per call
 * to the node's management API, a 5 s connect timeout and a total timeout
 * chosen by the command (5 s, or 30 s for cluster changes), no proxies
 * (the node is addressed directly), response bodies capped at CTL_BODY_MAX.
 * Layer: tools/ctl; knows nothing about individual commands.
 */
#include "ctl.h"

#include "core/mem.h"

#include <cjson/cJSON.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_http_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void ctl_http_cleanup(void)
{
	curl_global_cleanup();
}

void ctl_resp_free(struct ctl_resp *r)
{
	HQ_FREE(r->body);
	r->len = 0;
}

struct sink {
	struct ctl_resp *r;
	bool too_large; /* set when the body passed CTL_BODY_MAX */
};

/* CURLOPT_WRITEFUNCTION: append to the ctl_resp, keeping it NUL-terminated.
 * Returning less than n makes curl fail the transfer (CURLE_WRITE_ERROR). */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	struct ctl_resp *r = s->r;
	size_t n = size * nmemb;
	if (n > CTL_BODY_MAX - r->len) {
		s->too_large = true;
		return 0;
	}
	r->body = hq_realloc(r->body, r->len + n + 1);
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

int ctl_http_request(const struct ctl *c, const char *method, const char *path,
		     const char *body, long timeout_s, struct ctl_resp *r)
{
	char url[CTL_URL_MAX + 256];
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct sink sink = { r, false };
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (snprintf(url, sizeof(url), "%s%s", c->base, path) >= (int)sizeof(url)) {
		fprintf(stderr, "hamqtt-ctl: URL too long: %s%s\n", c->base, path);
		return -1;
	}
	CURL *h = curl_easy_init();
	if (!h) {
		fprintf(stderr, "hamqtt-ctl: cannot initialise libcurl\n");
		return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CTL_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "hamqtt-ctl");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	/* HTTP Basic with the API key; curl only sends it to this URL's host */
	const char *key = c->api_key ? c->api_key : c->key_buf;
	if (key[0]) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERPWD, key);
	}
	if (!strcmp(method, "POST") || !strcmp(method, "PUT")) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
	}
	if (strcmp(method, "GET") && strcmp(method, "POST"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
		if (sink.too_large)
			why = "response body larger than 16 MiB";
		fprintf(stderr, "hamqtt-ctl: cannot reach hamqtt node at %s: %s\n", c->base, why);
		ctl_resp_free(r);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status == 401 && !key[0])
		fprintf(stderr, "hamqtt-ctl: no API key: cannot read %s (run as the node's user, "
			"or pass --api-key KEY:SECRET or set " CTL_API_KEY_ENV ")\n", c->key_path);
	if (!r->body) /* empty body: still a valid C string */
		r->body = hq_strdup("");
	rc = 0;
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return rc;
}

int ctl_http_get(const struct ctl *c, const char *path, struct ctl_resp *r)
{
	return ctl_http_request(c, "GET", path, NULL, CTL_TIMEOUT_S, r);
}

int ctl_http_post(const struct ctl *c, const char *path, const char *body, struct ctl_resp *r)
{
	return ctl_http_request(c, "POST", path, body, CTL_TIMEOUT_S, r);
}

void ctl_print_body(const char *body, size_t len)
{
	fwrite(body, 1, len, stdout);
	if (!len || body[len - 1] != '\n')
		fputc('\n', stdout);
}

int ctl_urlenc(char *buf, size_t cap, size_t *len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = *len;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (n + 4 > cap) {
			buf[n < cap ? n : cap - 1] = '\0';
			*len = n;
			return -1;
		}
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			buf[n++] = (char)*p;
		} else {
			buf[n++] = '%';
			buf[n++] = hex[*p >> 4];
			buf[n++] = hex[*p & 15];
		}
	}
	buf[n] = '\0';
	*len = n;
	return 0;
}

void ctl_report(const char *method, const char *path, const struct ctl_resp *r)
{
	cJSON *d = r->len ? cJSON_ParseWithLength(r->body, r->len) : NULL;
	const char *msg = ctl_jstr(d, "message");
	if (msg)
		fprintf(stderr, "hamqtt-ctl: %s %s: HTTP %ld: %s\n", method, path, r->status, msg);
	else
		fprintf(stderr, "hamqtt-ctl: %s %s: HTTP %ld: %.200s\n", method, path, r->status,
			r->body);
	cJSON_Delete(d);
}

int ctl_call(const struct ctl *c, const char *method, const char *path, const char *body,
	     bool quiet, cJSON **doc)
{
	struct ctl_resp r;
	if (doc)
		*doc = NULL;
	/* the slow timeout for all: a cluster-wide list waits for its members */
	if (ctl_http_request(c, method, path, body, CTL_SLOW_TIMEOUT_S, &r) != 0)
		return 1;
	cJSON *d = r.len ? cJSON_ParseWithLength(r.body, r.len) : NULL;
	bool ok = r.status >= 200 && r.status < 300;
	if (c->json && r.len && (!quiet || !ok))
		ctl_print_body(r.body, r.len);
	if (!ok)
		ctl_report(method, path, &r);
	if (ok && doc)
		*doc = d;
	else
		cJSON_Delete(d);
	ctl_resp_free(&r);
	return ok ? 0 : 1;
}
