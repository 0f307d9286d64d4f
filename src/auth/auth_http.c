/*
 * auth_http.c - the HTTP hook (auth.http.*), EMQX 5's contract: the request
 * carries the client's credentials (body template, JSON by default); 200
 * with {"result": "allow" | "deny" | "ignore"} or 204 (allow) answer; any
 * other status, a timeout or an error is "ignore" (the next method).
 *
 * One thread drives every call with libcurl's multi interface, so a slow
 * hook costs no worker anything and at most auth.http.max_inflight calls
 * are out at once (the rest wait here, in order). Answers of allow / deny
 * are cached per client id + user name + SHA-256 of the password for
 * auth.http.cache_ttl seconds (0: off); the cache is this thread's alone.
 *
 * Threads: auth_http_submit on a worker (the queue's mutex, then
 * curl_multi_wakeup); everything else on the hook's thread.
 */
#include "auth/auth_async.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <uthash.h>

#define RESP_MAX 65536      /* a longer answer is not one of ours: ignore */
#define CACHE_MAX 10000     /* entries; then the cache restarts */

struct call {
	struct auth_job *job;
	CURL *easy;
	struct buf resp;
	char *url, *body;         /* owned: libcurl borrows them */
	struct call *next;
};

struct cached {
	UT_hash_handle hh;
	int64_t expires_ms;
	enum auth_verdict v;
	bool superuser;
	char key[];               /* client id \0 user \0 hex sha256(password) */
};

struct auth_http {
	struct auth_async *aa;
	struct auth_mstat *st;
	/* configuration (read-only after new) */
	char *url, *body;
	bool get;
	struct curl_slist *headers;
	uint32_t timeout_ms, cache_ttl_ms, max_inflight;
	/* the queue from the workers */
	pthread_mutex_t lock;
	struct auth_job *q_head, *q_tail;
	bool stop;
	/* the thread's own */
	pthread_t thread;
	bool started;
	CURLM *multi;
	struct auth_job *wait_head, *wait_tail; /* beyond max_inflight, in order */
	struct call *calls;
	uint32_t n_calls;
	struct cached *cache;
	uint32_t n_cached;
	/* an outage (errors, timeouts, bad answers in a row): logged when it
	 * starts and when it ends, not per CONNECT (as Redis's) */
	bool failing;
	uint64_t failed_calls;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;
	if (buf_avail(b) + sz * n > RESP_MAX)
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	buf_append(b, p, sz * n);
	return sz * n;
}

/* ---- the cache ---- */

static char *cache_key(const struct auth_job *j, size_t *len)
{
	uint8_t md[32];
	unsigned mdl = 0;
	EVP_Digest(j->password, j->password_len, md, &mdl, EVP_sha256(), NULL);
	const char *u = j->username ? j->username : "";
	size_t cl = strlen(j->client_id), ul = strlen(u);
	*len = cl + 1 + ul + 1 + 64 + (j->has_password ? 1 : 0);
	char *k = hq_malloc(*len + 1);
	memcpy(k, j->client_id, cl + 1);
	memcpy(k + cl + 1, u, ul + 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(k + cl + ul + 2 + 2 * i, 3, "%02x", md[i]);
	if (j->has_password)
		k[*len - 1] = 'p';
	k[*len] = 0;
	return k;
}

static bool cache_get(struct auth_http *h, struct auth_job *j, enum auth_verdict *v)
{
	if (!h->cache_ttl_ms)
		return false;
	size_t len;
	char *k = cache_key(j, &len);
	struct cached *e;
	HASH_FIND(hh, h->cache, k, len, e);
	hq_free(k);
	if (!e)
		return false;
	if (auth_now_ms() >= e->expires_ms) {
		HASH_DEL(h->cache, e);
		h->n_cached--;
		hq_free(e);
		return false;
	}
	*v = e->v;
	j->superuser = e->superuser;
	return true;
}

static void cache_clear(struct auth_http *h)
{
	struct cached *e, *t;
	HASH_ITER(hh, h->cache, e, t) {
		HASH_DEL(h->cache, e);
		hq_free(e);
	}
	h->n_cached = 0;
}

static void cache_put(struct auth_http *h, const struct auth_job *j, enum auth_verdict v)
{
	if (!h->cache_ttl_ms || (v != AV_ALLOW && v != AV_DENY))
		return;
	size_t len;
	char *k = cache_key(j, &len);
	struct cached *e;
	HASH_FIND(hh, h->cache, k, len, e);
	if (!e) {
		if (h->n_cached >= CACHE_MAX)
			cache_clear(h);
		e = hq_calloc(1, sizeof(*e) + len + 1);
		memcpy(e->key, k, len + 1);
		HASH_ADD_KEYPTR(hh, h->cache, e->key, len, e);
		h->n_cached++;
	}
	hq_free(k);
	e->v = v;
	e->superuser = j->superuser;
	e->expires_ms = auth_now_ms() + h->cache_ttl_ms;
}

/* ---- calls ---- */

static void answer(struct auth_http *h, struct auth_job *j, enum auth_verdict v, const char *why)
{
	auth_async_answer(h->aa, j, v, why);
}

/* A call ended: failed (no usable answer) or the hook answered. One warning
 * when failures start, one notice when the hook answers again: a hook down
 * under a thousand CONNECTs a second must not write a thousand lines a
 * second. Each CONNECT's own outcome is still its refusal line (if refused),
 * the debug line of auth_async and hamqtt_auth_method_total. */
static void outage_note(struct auth_http *h, bool failed, const char *why, const char *client_id)
{
	if (failed) {
		if (!h->failing)
			log_warning("auth: HTTP hook failing (%s, client_id=%s): CONNECTs go to the "
				    "next method; logged again when it answers", why, client_id);
		h->failing = true;
		h->failed_calls++;
	} else if (h->failing) {
		log_notice("auth: HTTP hook answers again (%" PRIu64 " calls failed meanwhile)",
			   h->failed_calls);
		h->failing = false;
		h->failed_calls = 0;
	}
}

static void call_start(struct auth_http *h, struct auth_job *j)
{
	enum auth_verdict cv;
	if (cache_get(h, j, &cv)) {
		answer(h, j, cv, cv == AV_ALLOW ? "http hook: allow (cached)" : "http hook: deny (cached)");
		return;
	}
	struct call *c = hq_calloc(1, sizeof(*c));
	c->job = j;
	c->easy = curl_easy_init();
	char *url = auth_tmpl_render(h->url, j, TMPL_URL);
	if (h->get) {
		char *q = auth_tmpl_render(h->body, j, TMPL_URL);
		size_t n = strlen(url) + strlen(q) + 2;
		c->url = hq_malloc(n);
		snprintf(c->url, n, "%s%s%s", url, strchr(url, '?') ? "&" : "?", q);
		explicit_bzero(q, strlen(q));
		hq_free(q);
		hq_free(url);
	} else {
		c->url = url;
		c->body = auth_tmpl_render(h->body, j, h->body[0] == '{' ? TMPL_JSON : TMPL_URL);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
	}
	curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)h->timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &c->resp);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	curl_multi_add_handle(h->multi, c->easy);
	c->next = h->calls;
	h->calls = c;
	h->n_calls++;
}

static void call_free(struct auth_http *h, struct call *c)
{
	struct call **pp = &h->calls;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	h->n_calls--;
	curl_multi_remove_handle(h->multi, c->easy);
	curl_easy_cleanup(c->easy);
	buf_free(&c->resp);
	if (c->body)
		explicit_bzero(c->body, strlen(c->body));
	if (c->url)
		explicit_bzero(c->url, strlen(c->url));
	hq_free(c->body);
	hq_free(c->url);
	auth_job_free(c->job);
	hq_free(c);
}

/* EMQX 5: 200 with a JSON result, 204 allow, anything else ignore. */
enum auth_verdict auth_http_verdict(long status, const char *body, size_t len, bool *superuser,
				    char *why, size_t wl, bool *failed)
{
	if (status == 204) {
		snprintf(why, wl, "http hook: allow (204)");
		return AV_ALLOW;
	}
	if (status != 200) {
		snprintf(why, wl, "http hook: status %ld", status);
		*failed = true;
		return AV_IGNORE;
	}
	cJSON *js = len ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *r = js ? cJSON_GetObjectItemCaseSensitive(js, "result") : NULL;
	enum auth_verdict v = AV_IGNORE;
	const char *s = cJSON_IsString(r) ? r->valuestring : NULL;
	if (s && !strcmp(s, "allow")) {
		v = AV_ALLOW;
		*superuser = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(js, "is_superuser"));
	}
	else if (s && !strcmp(s, "deny"))
		v = AV_DENY;
	if (s)
		snprintf(why, wl, "http hook: %s", v == AV_ALLOW ? "allow" : v == AV_DENY ? "deny" : "ignore");
	else {
		snprintf(why, wl, "http hook: 200 without a \"result\" string");
		*failed = true;
	}
	cJSON_Delete(js);
	return v;
}

static void call_done(struct auth_http *h, CURL *easy, CURLcode res)
{
	struct call *c = NULL;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
	char why[160];
	enum auth_verdict v;
	bool failed = res != CURLE_OK;
	if (res == CURLE_OPERATION_TIMEDOUT) {
		snprintf(why, sizeof(why), "http hook: no answer within auth.http.timeout");
		v = AV_TIMEOUT;
	} else if (res != CURLE_OK) {
		snprintf(why, sizeof(why), "http hook: %s", curl_easy_strerror(res));
		v = AV_IGNORE;
	} else {
		long status = 0;
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		v = auth_http_verdict(status, (const char *)buf_head(&c->resp), buf_avail(&c->resp),
				      &c->job->superuser, why, sizeof(why), &failed);
	}
	outage_note(h, failed, why, c->job->client_id);
	cache_put(h, c->job, v);
	struct auth_job *j = c->job;
	c->job = NULL;
	call_free(h, c);
	answer(h, j, v, why);
}

/* Jobs from the queue join the waiting line; start what max_inflight allows.
 * A job that waited longer than the timeout is answered "timeout" unsent. */
static void start_waiting(struct auth_http *h)
{
	pthread_mutex_lock(&h->lock);
	struct auth_job *q = h->q_head;
	h->q_head = h->q_tail = NULL;
	pthread_mutex_unlock(&h->lock);
	while (q) {
		struct auth_job *n = q->next;
		q->next = NULL;
		if (h->wait_tail)
			h->wait_tail->next = q;
		else
			h->wait_head = q;
		h->wait_tail = q;
		q = n;
	}
	int64_t now = auth_now_ms();
	while (h->wait_head && h->n_calls < h->max_inflight) {
		struct auth_job *j = h->wait_head;
		h->wait_head = j->next;
		if (!h->wait_head)
			h->wait_tail = NULL;
		j->next = NULL;
		if (now - j->submitted_ms > (int64_t)h->timeout_ms) {
			const char *why = "http hook: waited auth.http.timeout for a free call "
					  "(auth.http.max_inflight)";
			outage_note(h, true, why, j->client_id);
			answer(h, j, AV_TIMEOUT, why);
		} else
			call_start(h, j);
	}
}

static void *http_main(void *arg)
{
	struct auth_http *h = arg;
	for (;;) {
		pthread_mutex_lock(&h->lock);
		bool stop = h->stop;
		pthread_mutex_unlock(&h->lock);
		if (stop)
			break;
		start_waiting(h);
		int running = 0;
		curl_multi_perform(h->multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(h->multi, &left)))
			if (m->msg == CURLMSG_DONE)
				call_done(h, m->easy_handle, m->data.result);
		curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
	}
	while (h->calls) {
		struct call *c = h->calls;
		call_free(h, c); /* the connection is gone or going: no answer */
	}
	return NULL;
}

/* "Name: value" headers separated by ';' */
static int parse_headers(struct auth_http *h, const char *spec, bool json, char *err, size_t errlen)
{
	bool has_ct = false;
	char *dup = hq_strdup(spec ? spec : "");
	char *save = NULL;
	for (char *t = strtok_r(dup, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		while (*t == ' ')
			t++;
		if (!*t)
			continue;
		if (!strchr(t, ':')) {
			snprintf(err, errlen, "auth.http.headers: \"%s\" is not Name: value", t);
			hq_free(dup);
			return -1;
		}
		has_ct |= !strncasecmp(t, "content-type:", 13);
		h->headers = curl_slist_append(h->headers, t);
	}
	hq_free(dup);
	if (!has_ct && !h->get)
		h->headers = curl_slist_append(h->headers, json ? "Content-Type: application/json"
								: "Content-Type: application/x-www-form-urlencoded");
	/* no "Expect: 100-continue" round trip on a POST */
	h->headers = curl_slist_append(h->headers, "Expect:");
	return 0;
}

#define DEFAULT_JSON "{\"clientid\":\"${clientid}\",\"username\":\"${username}\"," \
		     "\"password\":\"${password}\",\"peerhost\":\"${peerhost}\"}"
#define DEFAULT_FORM "clientid=${clientid}&username=${username}&password=${password}&peerhost=${peerhost}"

struct auth_http *auth_http_new(const struct hq_config *cfg, struct auth_async *aa,
				struct auth_mstat *st, char *err, size_t errlen)
{
	pthread_once(&curl_once, curl_init_once);
	struct auth_http *h = hq_calloc(1, sizeof(*h));
	h->aa = aa;
	h->st = st;
	h->url = hq_strdup(cfg->auth_http_url);
	h->get = cfg->auth_http_method == CONF_AUTH_HTTP_GET;
	h->body = hq_strdup(cfg->auth_http_body && *cfg->auth_http_body ? cfg->auth_http_body
					     : h->get ? DEFAULT_FORM : DEFAULT_JSON);
	h->timeout_ms = cfg->auth_http_timeout * 1000;
	h->cache_ttl_ms = cfg->auth_http_cache_ttl * 1000;
	h->max_inflight = cfg->auth_http_max_inflight;
	pthread_mutex_init(&h->lock, NULL);
	const char *bad = auth_tmpl_check(h->url);
	if (bad || (bad = auth_tmpl_check(h->body))) {
		snprintf(err, errlen, "auth.http: %s", bad);
		goto fail;
	}
	if (strncmp(h->url, "http://", 7) && strncmp(h->url, "https://", 8)) {
		snprintf(err, errlen, "auth.http.url: \"%s\" is not an http:// or https:// URL", h->url);
		goto fail;
	}
	if (parse_headers(h, cfg->auth_http_headers, h->body[0] == '{', err, errlen))
		goto fail;
	h->multi = curl_multi_init();
	if (!h->multi || pthread_create(&h->thread, NULL, http_main, h)) {
		snprintf(err, errlen, "auth.http: cannot start the hook's thread");
		goto fail;
	}
	h->started = true;
	log_info("auth: HTTP hook %s %s (timeout %us, cache %us, max in flight %u)",
		 h->get ? "GET" : "POST", h->url, cfg->auth_http_timeout, cfg->auth_http_cache_ttl,
		 h->max_inflight);
	return h;
fail:
	auth_http_free(h);
	return NULL;
}

void auth_http_submit(struct auth_http *h, struct auth_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&h->lock);
	if (h->q_tail)
		h->q_tail->next = j;
	else
		h->q_head = j;
	h->q_tail = j;
	pthread_mutex_unlock(&h->lock);
	curl_multi_wakeup(h->multi);
}

static void free_list(struct auth_job *j)
{
	while (j) {
		struct auth_job *n = j->next;
		auth_job_free(j);
		j = n;
	}
}

void auth_http_free(struct auth_http *h)
{
	if (!h)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		pthread_mutex_unlock(&h->lock);
		curl_multi_wakeup(h->multi);
		pthread_join(h->thread, NULL);
	}
	free_list(h->q_head);
	free_list(h->wait_head);
	cache_clear(h);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	curl_slist_free_all(h->headers);
	hq_free(h->url);
	hq_free(h->body);
	pthread_mutex_destroy(&h->lock);
	hq_free(h);
}
