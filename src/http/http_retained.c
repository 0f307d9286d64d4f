/*
 * http_retained.c - EMQX's /api/v5/mqtt/retainer/messages, GET|DELETE
 * /mqtt/retainer/message/{topic} and POST /api/v5/publish(/bulk).
 *
 * Retained messages are on every node (replicated), so their routes answer
 * locally; a delete is an empty retained write, which the cluster
 * replicates like a client's. The topic of /message/ is the rest of the
 * path: EMQX accepts it URL-encoded as one segment (a%2Fb, which MHD
 * decodes before we see it) or raw with its slashes (a/b/c): both arrive
 * here as a/b. A publish runs the broker's normal path as the
 * administrator: no ACL.
 */
#include "broker/broker_api.h"
#include "broker/broker.h"
#include "core/err.h"
#include "http/http_int.h"
#include "http/http_qapi.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RET_MAX_LIMIT 10000
#define BULK_MAX 100 /* messages per POST /publish/bulk (the body is 64 KiB anyway) */
#define USER_PROPS_MAX 64

static char *b64_encode(const uint8_t *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* Strict base64 into a malloc'd buffer; NULL if invalid (or no memory). */
static uint8_t *b64_decode(const char *s, size_t *n)
{
	size_t len = strlen(s);
	if (len % 4)
		return NULL;
	uint8_t *out = malloc(len / 4 * 3 + 1);
	if (!out)
		return NULL;
	int r = len ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)len) : 0;
	if (r < 0) {
		free(out);
		return NULL;
	}
	size_t pad = len && s[len - 1] == '=' ? (len > 1 && s[len - 2] == '=' ? 2 : 1) : 0;
	*n = (size_t)r - pad;
	return out;
}

static cJSON *retained_json(const struct broker_retained *r)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o && cJSON_AddStringToObject(o, "topic", r->topic) &&
		  cJSON_AddNumberToObject(o, "qos", r->qos) &&
		  cJSON_AddNullToObject(o, "from_clientid") &&
		  cJSON_AddNullToObject(o, "from_username") &&
		  http_qapi_add_time(o, "publish_at", r->publish_at);
	if (ok && r->payload) {
		char *p = b64_encode(r->payload, r->payload_len);
		ok = p && cJSON_AddStringToObject(o, "payload", p);
		free(p);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

void http_retained_list(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_page pg;
	struct broker *b = http_broker(ctx, resp);
	if (!b || http_page_get(req, RET_MAX_LIMIT, &pg, resp) != HQ_OK)
		return;
	struct broker_retained *v = NULL;
	size_t n = 0, total = 0;
	int rc = broker_retained_list(b, pg.offset, (size_t)pg.limit, &v, &n, &total);
	if (rc != HQ_OK) {
		http_qapi_error(resp, rc, "");
		return;
	}
	cJSON *data = cJSON_CreateArray();
	for (size_t i = 0; data && i < n; i++) {
		cJSON *o = retained_json(&v[i]);
		if (!o) {
			cJSON_Delete(data);
			data = NULL;
			break;
		}
		cJSON_AddItemToArray(data, o);
	}
	broker_retained_free(v, n);
	http_resp_page(resp, &pg, data, total);
}

void http_retained_get(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	char *topic = b ? http_qapi_arg_dup(req) : NULL;
	if (!topic) {
		if (b)
			http_resp_json(resp, 500, NULL);
		return;
	}
	struct broker_retained r;
	int rc = broker_retained_get(b, topic, &r);
	free(topic);
	if (rc != HQ_OK) {
		http_qapi_error(resp, rc, "Viewed message not found");
		return;
	}
	cJSON *o = retained_json(&r);
	free(r.topic);
	free(r.payload);
	http_resp_json(resp, o ? 200 : 500, o);
}

void http_retained_delete(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	char *topic = b ? http_qapi_arg_dup(req) : NULL;
	if (!topic) {
		if (b)
			http_resp_json(resp, 500, NULL);
		return;
	}
	int rc = broker_retained_delete(b, topic);
	free(topic);
	if (rc != HQ_OK) {
		http_qapi_error(resp, rc, rc == HQ_ETOPIC ? "invalid topic" : "Viewed message not found");
		return;
	}
	resp->status = 204;
}

/* ---- publish ---- */

/* One message of a request, with what it owns. */
struct pub_req {
	struct broker_publish p;
	uint8_t *payload, *corr;  /* owned (decoded base64), or NULL */
	struct broker_user_prop up[USER_PROPS_MAX];
};

static void pub_req_free(struct pub_req *r)
{
	free(r->payload);
	free(r->corr);
}

static const char *pub_props(cJSON *props, struct pub_req *r)
{
	struct broker_publish *p = &r->p;
	if (!props)
		return NULL;
	if (!cJSON_IsObject(props))
		return "properties is an object";
	cJSON *it;
	cJSON_ArrayForEach(it, props) {
		const char *k = it->string;
		if (!strcmp(k, "message_expiry_interval")) {
			if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 4294967295.0)
				return "message_expiry_interval is a number of seconds";
			p->has_expiry = true;
			p->message_expiry = (uint32_t)it->valuedouble;
		} else if (!strcmp(k, "payload_format_indicator")) {
			if (!cJSON_IsNumber(it) || (it->valueint != 0 && it->valueint != 1))
				return "payload_format_indicator is 0 or 1";
			p->payload_format = it->valueint;
		} else if (!strcmp(k, "content_type") || !strcmp(k, "response_topic") ||
			   !strcmp(k, "correlation_data")) {
			if (!cJSON_IsString(it))
				return "content_type, response_topic and correlation_data are strings";
			if (k[0] == 'c' && k[1] == 'o' && k[2] == 'n')
				p->content_type = it->valuestring;
			else if (k[0] == 'r')
				p->response_topic = it->valuestring;
			else {
				p->correlation_data = (const uint8_t *)it->valuestring;
				p->correlation_len = strlen(it->valuestring);
			}
		} else if (!strcmp(k, "user_properties")) {
			if (!cJSON_IsObject(it))
				return "user_properties is an object of strings";
			cJSON *u;
			cJSON_ArrayForEach(u, it) {
				if (!cJSON_IsString(u) || p->n_user_props == USER_PROPS_MAX)
					return "user_properties is an object of strings (at most 64)";
				r->up[p->n_user_props].key = u->string;
				r->up[p->n_user_props++].value = u->valuestring;
			}
			p->user_props = r->up;
		} else {
			return "unknown property";
		}
	}
	return NULL;
}

/* o into r (strings borrowed from o); NULL or why it is a 400. */
static const char *pub_parse(cJSON *o, struct pub_req *r)
{
	memset(r, 0, sizeof(*r));
	r->p.payload_format = -1;
	if (!cJSON_IsObject(o))
		return "a message is a JSON object";
	cJSON *topic = cJSON_GetObjectItemCaseSensitive(o, "topic");
	cJSON *payload = cJSON_GetObjectItemCaseSensitive(o, "payload");
	cJSON *qos = cJSON_GetObjectItemCaseSensitive(o, "qos");
	cJSON *retain = cJSON_GetObjectItemCaseSensitive(o, "retain");
	cJSON *enc = cJSON_GetObjectItemCaseSensitive(o, "payload_encoding");
	if (!cJSON_IsString(topic) || !*topic->valuestring)
		return "topic is a non-empty string";
	r->p.topic = topic->valuestring;
	if (payload && !cJSON_IsString(payload))
		return "payload is a string";
	if (qos && (!cJSON_IsNumber(qos) || qos->valuedouble != (double)qos->valueint ||
		    qos->valueint < 0 || qos->valueint > 2))
		return "qos is 0, 1 or 2";
	r->p.qos = qos ? (uint8_t)qos->valueint : 0;
	if (retain && !cJSON_IsBool(retain))
		return "retain is a boolean";
	r->p.retain = cJSON_IsTrue(retain);
	const char *text = payload ? payload->valuestring : "";
	if (enc && (!cJSON_IsString(enc) || (strcmp(enc->valuestring, "plain") &&
					    strcmp(enc->valuestring, "base64"))))
		return "payload_encoding is plain or base64";
	if (enc && !strcmp(enc->valuestring, "base64")) {
		if (!(r->payload = b64_decode(text, &r->p.payload_len)))
			return "payload is not valid base64";
		r->p.payload = r->payload;
	} else {
		r->p.payload = (const uint8_t *)text;
		r->p.payload_len = strlen(text);
	}
	return pub_props(cJSON_GetObjectItemCaseSensitive(o, "properties"), r);
}

/* The answer for one published message: {"id"} or EMQX's 202 body. */
static cJSON *pub_answer(uint64_t id, bool matched)
{
	cJSON *o = cJSON_CreateObject();
	char hex[40];
	snprintf(hex, sizeof(hex), "%016llX", (unsigned long long)id);
	if (!o || (matched ? !cJSON_AddStringToObject(o, "id", hex)
			   : (!cJSON_AddNumberToObject(o, "reason_code", 16) ||
			      !cJSON_AddStringToObject(o, "message", "no_matching_subscribers")))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static const char *pub_error(int rc)
{
	return rc == HQ_ETOPIC ? "invalid topic name" : "qos, retain or a property not allowed";
}

void http_publish(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	cJSON *doc = req->body ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
	struct pub_req r;
	const char *why = doc ? pub_parse(doc, &r) : "the body is a JSON object";
	if (why) {
		if (doc)
			pub_req_free(&r);
		cJSON_Delete(doc);
		http_resp_error(resp, 400, "BAD_REQUEST", why);
		return;
	}
	uint64_t id = 0;
	bool matched = false;
	int rc = broker_publish_msg(b, &r.p, &id, &matched);
	pub_req_free(&r);
	cJSON_Delete(doc);
	if (rc != HQ_OK) {
		http_qapi_error(resp, rc, pub_error(rc));
		return;
	}
	cJSON *o = pub_answer(id, matched);
	http_resp_json(resp, o ? (matched ? 200 : 202) : 500, o);
}

void http_publish_bulk(struct http_ctx *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b)
		return;
	cJSON *doc = req->body ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
	int n = cJSON_IsArray(doc) ? cJSON_GetArraySize(doc) : -1;
	if (n < 1 || n > BULK_MAX) {
		cJSON_Delete(doc);
		http_resp_error(resp, 400, "BAD_REQUEST", "the body is an array of 1 to 100 messages");
		return;
	}
	struct pub_req *v = calloc((size_t)n, sizeof(*v));
	cJSON *out = cJSON_CreateArray();
	const char *why = v && out ? NULL : "out of memory";
	int parsed = 0;
	/* every message is parsed before any is published: a malformed one
	 * publishes nothing (the broker's own refusal, $SYS/..., stops the rest) */
	for (; !why && parsed < n; parsed++) {
		why = pub_parse(cJSON_GetArrayItem(doc, parsed), &v[parsed]);
		if (!why && (!*v[parsed].p.topic || strchr(v[parsed].p.topic, '+') ||
			     strchr(v[parsed].p.topic, '#')))
			why = "invalid topic name";
	}
	int rc = HQ_OK, any = 0;
	for (int i = 0; !why && rc == HQ_OK && i < n; i++) {
		uint64_t id = 0;
		bool matched = false;
		rc = broker_publish_msg(b, &v[i].p, &id, &matched);
		cJSON *a = rc == HQ_OK ? pub_answer(id, matched) : NULL;
		if (a)
			cJSON_AddItemToArray(out, a);
		any += matched;
	}
	for (int i = 0; v && i < parsed; i++)
		pub_req_free(&v[i]);
	free(v);
	cJSON_Delete(doc);
	if (why || rc != HQ_OK) {
		cJSON_Delete(out);
		if (why)
			http_resp_error(resp, 400, "BAD_REQUEST", why);
		else
			http_qapi_error(resp, rc, pub_error(rc));
		return;
	}
	http_resp_json(resp, any ? 200 : 202, out);
}
