/*
 * http_fanout.c - cluster-wide answers (ARCHITECTURE.md "Cluster-wide REST
 * API"): the dispatcher's part for HTTP_R_FANOUT_LIST and HTTP_R_FANOUT_ONE
 * routes, and http_fanout_gather, which node-level routes use too.
 *
 * Runs on the HTTP connection's thread and blocks it for at most the RPC
 * deadline (BROKER_RPC_TIMEOUT_MS, twice for a list: count, then window).
 * This node answers through the route's handler directly (req->local set);
 * the other members through broker_cluster_call_many. A member that does not
 * answer is named (meta "unreachable", header X-Hamqtt-Unreachable), never
 * waited for beyond the deadline: a stopped one is answered at once.
 */
#include "http/http_int.h"
#include "http/http_query.h"
#include "broker/broker.h"
#include "core/err.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An offset past any list: the answer is the count alone (and the handler
 * still checks page and limit). http_page_get accepts up to 1 << 40. */
#define COUNT_ONLY_OFFSET "1099511627776"

void http_fanout_free(struct http_member_ans *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].body);
	free(v);
}

/* This node's answer: fn with req->local set and the query parsed from qs. */
static void ask_self(struct http_ctx *ctx, const struct http_req *req, http_handler fn,
		     const char *qs, struct http_member_ans *a)
{
	struct http_query q = { 0 };
	struct http_resp r;
	memset(&r, 0, sizeof(r));
	if (http_query_parse(&q, qs, strlen(qs)) != HQ_OK) {
		http_resp_error(&r, 400, "BAD_REQUEST", "bad query string");
	} else {
		struct http_req l = *req;
		l.query = &q;
		l.local = true;
		fn(ctx, &l, &r);
	}
	http_query_free(&q);
	free(r.unreachable);
	a->status = r.status;
	a->body = r.body;
	a->len = r.body_len;
}

/* Ask every target i (v[i] filled with node/self) with query qs[i]. */
static void ask(struct http_ctx *ctx, struct broker *b, const struct http_req *req,
		http_handler fn, struct http_member_ans *v, size_t n, char **qs)
{
	struct broker_rpc *rq = hq_calloc(n ? n : 1, sizeof(*rq));
	size_t k = 0;
	size_t *idx = hq_calloc(n ? n : 1, sizeof(*idx));
	for (size_t i = 0; i < n; i++) {
		if (v[i].self || !qs[i])
			continue;
		rq[k] = (struct broker_rpc){
			.node = v[i].node, .method = req->method, .path = req->path,
			.query = qs[i], .caller = req->peer, .body = req->body,
			.body_len = req->body ? req->body_len : 0,
		};
		idx[k++] = i;
	}
	/* HEAD travels as GET: the answer's body is dropped by MHD anyway */
	for (size_t j = 0; j < k; j++)
		if (!strcmp(rq[j].method, "HEAD"))
			rq[j].method = "GET";
	if (k)
		broker_cluster_call_many(b, rq, k, 0);
	for (size_t j = 0; j < k; j++) {
		struct http_member_ans *a = &v[idx[j]];
		a->status = rq[j].status;
		a->body = rq[j].resp;
		a->len = rq[j].resp_len;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].self && qs[i])
			ask_self(ctx, req, fn, qs[i], &v[i]);
	hq_free(rq);
	hq_free(idx);
}

/* The members (this node first), as answer slots; HQ_OK or resp filled. */
static int members(struct broker *b, const char *only, struct http_member_ans **out, size_t *n,
		   struct http_resp *resp)
{
	struct broker_member *m = NULL;
	size_t nm = 0;
	if (broker_cluster_members(b, &m, &nm) != HQ_OK) {
		free(m);
		http_resp_error(resp, 503, "NOT_RUNNING", "the node is not running");
		return HQ_EIO;
	}
	struct http_member_ans *v = hq_calloc(nm ? nm : 1, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < nm; i++) {
		if (only && strcmp(only, m[i].node))
			continue;
		snprintf(v[k].node, sizeof(v[k].node), "%s", m[i].node);
		v[k].self = m[i].self;
		v[k].running = !strcmp(m[i].status, "running");
		v[k].status = BROKER_RPC_UNREACHABLE;
		k++;
	}
	free(m);
	*out = v;
	*n = k;
	return HQ_OK;
}

int http_fanout_gather(struct http_ctx *ctx, const struct http_req *req, http_handler fn,
		       const char *only, const char *query, struct http_member_ans **out,
		       size_t *n, struct http_resp *resp)
{
	struct broker *b = http_broker(ctx, resp);
	if (!b || members(b, only, out, n, resp) != HQ_OK)
		return HQ_EIO;
	char **qs = hq_calloc(*n ? *n : 1, sizeof(*qs));
	for (size_t i = 0; i < *n; i++)
		qs[i] = (char *)query;
	ask(ctx, b, req, fn, *out, *n, qs);
	hq_free(qs);
	return HQ_OK;
}

cJSON *http_fanout_unreachable(const struct http_member_ans *v, size_t n, struct http_resp *resp)
{
	size_t len = 0;
	cJSON *arr = NULL;
	for (size_t i = 0; i < n; i++) {
		if (v[i].status >= 100 && v[i].status < 500)
			continue;
		if (!arr)
			arr = cJSON_CreateArray();
		cJSON_AddItemToArray(arr, cJSON_CreateString(v[i].node));
		len += strlen(v[i].node) + 1;
	}
	if (!arr)
		return NULL;
	free(resp->unreachable);
	resp->unreachable = malloc(len + 1);
	if (resp->unreachable) {
		size_t o = 0;
		for (size_t i = 0; i < n; i++)
			if (!(v[i].status >= 100 && v[i].status < 500))
				o += (size_t)sprintf(resp->unreachable + o, "%s%s", o ? "," : "",
						     v[i].node);
	}
	return arr;
}

/* The query of req without page, limit and _offset, then "&" extra. */
static char *list_query(const struct http_req *req, const char *limit, const char *offset)
{
	struct http_query q = { 0 };
	for (size_t i = 0; req->query && i < req->query->n; i++) {
		const struct http_qarg *a = &req->query->v[i];
		if (strcmp(a->name, "page") && strcmp(a->name, "limit") && strcmp(a->name, "_offset"))
			http_query_add(&q, a->name, a->value);
	}
	http_query_add(&q, "limit", limit);
	http_query_add(&q, "_offset", offset);
	char *s = http_query_encode(&q, NULL);
	http_query_free(&q);
	return s;
}

/* meta.count of a paged answer, or -1 */
static double page_count(cJSON *doc)
{
	cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "meta"),
						    "count");
	return cJSON_IsNumber(c) && c->valuedouble >= 0 ? c->valuedouble : -1;
}

static void copy_resp(struct http_resp *resp, struct http_member_ans *a)
{
	free(resp->body);
	resp->status = a->status;
	resp->content_type = "application/json";
	resp->body = a->body;
	resp->body_len = a->len;
	a->body = NULL;
	a->len = 0;
}

static void fan_list(struct http_ctx *ctx, struct broker *b, const struct http_req *req,
		     http_handler fn, struct http_member_ans *v, size_t n, struct http_resp *resp)
{
	struct http_page pg;
	struct http_req top = *req;
	top.local = false; /* the client's window is page/limit, never _offset */
	if (http_page_get(&top, 1L << 30, &pg, resp) != HQ_OK)
		return;
	char lim[32], off[32];
	snprintf(lim, sizeof(lim), "%ld", pg.limit);
	char **qs = hq_calloc(n, sizeof(*qs));
	char *q1 = list_query(req, lim, COUNT_ONLY_OFFSET);
	for (size_t i = 0; i < n; i++)
		qs[i] = q1;
	/* phase 1: how many each member has (and the handler's own checks) */
	ask(ctx, b, req, fn, v, n, qs);
	free(q1);
	double *cnt = hq_calloc(n, sizeof(*cnt));
	for (size_t i = 0; i < n; i++) {
		cnt[i] = -1;
		if (v[i].self && v[i].status != 200) { /* bad arguments: say so as the node did */
			copy_resp(resp, &v[i]);
			goto out;
		}
		cJSON *doc = v[i].status == 200 ? cJSON_ParseWithLength(v[i].body, v[i].len) : NULL;
		cnt[i] = page_count(doc);
		cJSON_Delete(doc);
		if (cnt[i] < 0 && v[i].status == 200)
			v[i].status = 502; /* not a paged answer: counted as not answering */
	}
	/* phase 2: only the members overlapping the window, with their offset */
	double total = 0, base = 0;
	double lo = (double)pg.offset, hi = lo + (double)pg.limit;
	for (size_t i = 0; i < n; i++) {
		qs[i] = NULL;
		free(v[i].body);
		v[i].body = NULL;
		v[i].len = 0;
		if (cnt[i] < 0)
			continue;
		total += cnt[i];
		double s = base > lo ? base : lo, e = base + cnt[i] < hi ? base + cnt[i] : hi;
		if (s < e) {
			snprintf(off, sizeof(off), "%.0f", s - base);
			snprintf(lim, sizeof(lim), "%.0f", e - s);
			qs[i] = list_query(req, lim, off);
		}
		base += cnt[i];
	}
	ask(ctx, b, req, fn, v, n, qs);
	cJSON *data = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		if (!qs[i])
			continue;
		free(qs[i]);
		cJSON *doc = v[i].status == 200 ? cJSON_ParseWithLength(v[i].body, v[i].len) : NULL;
		cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "data");
		if (!cJSON_IsArray(d)) {
			if (v[i].status == 200)
				v[i].status = 502;
			cJSON_Delete(doc);
			continue;
		}
		cJSON *it;
		while ((it = cJSON_DetachItemFromArray(d, 0)) &&
		       cJSON_GetArraySize(data) < pg.limit)
			cJSON_AddItemToArray(data, it);
		cJSON_Delete(it);
		cJSON_Delete(doc);
	}
	/* a member that failed phase 1 kept its status; phase 2 failures too */
	for (size_t i = 0; i < n; i++)
		if (cnt[i] < 0 && v[i].status >= 100 && v[i].status < 500)
			v[i].status = 502;
	cJSON *unr = http_fanout_unreachable(v, n, resp);
	http_resp_page(resp, &pg, data, (size_t)total);
	if (unr && resp->status == 200) {
		cJSON *doc = cJSON_ParseWithLength(resp->body, resp->body_len);
		cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "meta");
		if (meta) {
			cJSON_AddItemToObject(meta, "unreachable", unr);
			unr = NULL;
			http_resp_json(resp, 200, doc);
		} else {
			cJSON_Delete(doc);
		}
	}
	cJSON_Delete(unr);
out:
	hq_free(cnt);
	hq_free(qs);
}

static void fan_one(struct http_ctx *ctx, struct broker *b, const struct http_req *req,
		    http_handler fn, struct http_member_ans *v, size_t n, struct http_resp *resp)
{
	char *q = http_query_encode(req->query, "_");
	char **qs = hq_calloc(n, sizeof(*qs));
	for (size_t i = 0; i < n; i++)
		qs[i] = q ? q : "";
	ask(ctx, b, req, fn, v, n, qs);
	free(q);
	hq_free(qs);
	cJSON_Delete(http_fanout_unreachable(v, n, resp));
	long first404 = -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i].status == 404) {
			if (first404 < 0)
				first404 = (long)i;
			continue;
		}
		if (v[i].status >= 100 && v[i].status < 500) { /* member order: first wins */
			copy_resp(resp, &v[i]);
			return;
		}
	}
	if (first404 >= 0)
		copy_resp(resp, &v[first404]);
	else
		http_resp_error(resp, 503, "UNREACHABLE", "no node answered");
}

void http_fanout_route(struct http_ctx *ctx, const struct http_req *req, http_handler fn,
		       unsigned flags, struct http_resp *resp)
{
	struct broker *b = atomic_load(&ctx->b);
	struct http_member_ans *v = NULL;
	size_t n = 0;
	if (!b || members(b, NULL, &v, &n, resp) != HQ_OK || n <= 1) {
		/* starting, or a cluster of one: the handler alone answers */
		http_fanout_free(v, n);
		free(resp->body);
		memset(resp, 0, sizeof(*resp));
		fn(ctx, req, resp);
		return;
	}
	if (flags & HTTP_R_FANOUT_LIST)
		fan_list(ctx, b, req, fn, v, n, resp);
	else
		fan_one(ctx, b, req, fn, v, n, resp);
	http_fanout_free(v, n);
}
