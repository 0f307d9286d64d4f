/*
 * auth_jwt_fetch.c - the JWKS URL fetch thread (auth_jwt_fetch.h).
 */
#include "auth/auth_jwt_fetch.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define FETCH_MAX_BYTES 65536
#define FETCH_TIMEOUT_MS 5000L

struct jwt_fetch {
	pthread_t thread;
	pthread_mutex_t lock;      /* guards stop, requested */
	pthread_cond_t cond;
	bool stop, requested;
	bool failing;              /* the last fetch failed: retry after JWT_FETCH_MIN_GAP */
	char *url;                 /* owned */
	uint32_t interval;
	jwt_fetch_cb cb;
	void *ctx;
};

struct body {
	char *p;
	size_t n;
	bool too_big;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *ud)
{
	struct body *b = ud;
	size_t n = sz * nm;
	if (b->n + n > FETCH_MAX_BYTES) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	b->p = hq_realloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

struct jwk_set *jwt_fetch_once(const char *url, char *err, size_t errlen)
{
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(err, errlen, "curl_easy_init failed");
		return NULL;
	}
	struct body b = { 0 };
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* a thread of a multi-threaded process */
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	struct jwk_set *s = NULL;
	if (b.too_big) {
		snprintf(err, errlen, "%s: larger than %d bytes", url, FETCH_MAX_BYTES);
	} else if (cc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", url, curl_easy_strerror(cc));
	} else if (status != 200) {
		snprintf(err, errlen, "%s: HTTP status %ld", url, status);
	} else {
		char why[200];
		unsigned skipped = 0;
		s = jwk_set_parse(b.p ? b.p : "", b.n, &skipped, why, sizeof(why));
		if (!s)
			snprintf(err, errlen, "%s: %s", url, why);
	}
	hq_free(b.p);
	return s;
}

static int64_t mono_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

static void *fetch_main(void *arg)
{
	struct jwt_fetch *f = arg;
	int64_t last = mono_now();
	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		int64_t due = last + (f->failing ? JWT_FETCH_MIN_GAP : f->interval);
		if (f->requested && last + JWT_FETCH_MIN_GAP < due)
			due = last + JWT_FETCH_MIN_GAP;
		if (mono_now() < due) {
			struct timespec until = { .tv_sec = due };
			pthread_cond_timedwait(&f->cond, &f->lock, &until);
			continue;
		}
		f->requested = false;
		pthread_mutex_unlock(&f->lock);
		char err[300];
		struct jwk_set *s = jwt_fetch_once(f->url, err, sizeof(err));
		if (s) {
			log_info("auth: JWKS %s: %zu keys", f->url, jwk_set_count(s));
			f->cb(f->ctx, s);
		} else {
			/* the keys we have stay in force */
			log_warning("auth: JWKS refresh failed: %s", err);
		}
		last = mono_now();
		pthread_mutex_lock(&f->lock);
		f->failing = !s;
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

struct jwt_fetch *jwt_fetch_start(const char *url, uint32_t interval, bool failing,
				   jwt_fetch_cb cb, void *ctx)
{
	struct jwt_fetch *f = hq_calloc(1, sizeof(*f));
	f->failing = failing;
	f->url = hq_strdup(url);
	f->interval = interval ? interval : 1;
	f->cb = cb;
	f->ctx = ctx;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&f->thread, NULL, fetch_main, f) != 0) {
		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->lock);
		hq_free(f->url);
		hq_free(f);
		return NULL;
	}
	return f;
}

void jwt_fetch_request(struct jwt_fetch *f)
{
	pthread_mutex_lock(&f->lock);
	if (!f->requested) {
		f->requested = true;
		pthread_cond_signal(&f->cond);
	}
	pthread_mutex_unlock(&f->lock);
}

void jwt_fetch_stop(struct jwt_fetch *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	hq_free(f->url);
	hq_free(f);
}
