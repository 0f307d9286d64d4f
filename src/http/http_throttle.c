/*
 * http_throttle.c - login throttling per client address (http_throttle.h).
 */
#include "http/http_throttle.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FORGET_MS (3600 * 1000LL) /* an hour without a failure: start over */
#define MAX_DOUBLINGS 6           /* block_time x 64 at most */

struct entry {
	char addr[48];            /* "" = free slot */
	unsigned fails;           /* wrong logins in a row */
	unsigned pending;         /* logins being checked now */
	unsigned blocks;          /* blocks so far (the next lasts block_ms << blocks) */
	int64_t blocked_until_ms; /* 429 until then */
	int64_t last_ms;          /* last use, for eviction and forgetting */
};

struct http_throttle {
	pthread_mutex_t lock;
	unsigned max_failures;
	int64_t block_ms;
	struct entry *e;          /* HTTP_THROTTLE_MAX entries, owned */
	struct http_throttle_stats st;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct http_throttle *http_throttle_new(unsigned max_failures, unsigned block_s)
{
	struct http_throttle *t = hq_calloc(1, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->max_failures = max_failures;
	t->block_ms = (int64_t)block_s * 1000;
	if (max_failures)
		t->e = hq_calloc(HTTP_THROTTLE_MAX, sizeof(*t->e));
	return t;
}

void http_throttle_free(struct http_throttle *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	hq_free(t->e);
	hq_free(t);
}

/* addr's entry, made (evicting the least recently used) when create. A linear
 * scan: logins are rare and the table is small; under the lock. */
static struct entry *find(struct http_throttle *t, const char *addr, int64_t now, bool create)
{
	struct entry *free_e = NULL, *oldest = NULL;
	for (unsigned i = 0; i < HTTP_THROTTLE_MAX; i++) {
		struct entry *e = &t->e[i];
		if (!e->addr[0]) {
			if (!free_e)
				free_e = e;
			continue;
		}
		if (!strcmp(e->addr, addr)) {
			if (!e->pending && now - e->last_ms > FORGET_MS &&
			    now >= e->blocked_until_ms) {
				memset(e, 0, sizeof(*e)); /* a fresh start */
				snprintf(e->addr, sizeof(e->addr), "%s", addr);
			}
			return e;
		}
		if (!e->pending && (!oldest || e->last_ms < oldest->last_ms))
			oldest = e;
	}
	if (!create)
		return NULL;
	struct entry *e = free_e ? free_e : oldest;
	if (!e)
		return NULL; /* every slot has a login in progress: not tracked */
	memset(e, 0, sizeof(*e));
	snprintf(e->addr, sizeof(e->addr), "%s", addr);
	return e;
}

unsigned http_throttle_begin(struct http_throttle *t, const char *addr)
{
	if (!t->max_failures)
		return 0;
	int64_t now = now_ms();
	unsigned wait_s = 0;
	pthread_mutex_lock(&t->lock);
	struct entry *e = find(t, addr, now, true);
	if (e) {
		e->last_ms = now;
		if (now < e->blocked_until_ms)
			wait_s = (unsigned)((e->blocked_until_ms - now + 999) / 1000);
		else if (e->fails + e->pending >= t->max_failures)
			wait_s = 1; /* the budget is out in logins being checked now */
		else
			e->pending++;
	}
	if (wait_s)
		t->st.throttled++;
	pthread_mutex_unlock(&t->lock);
	return wait_s;
}

void http_throttle_done(struct http_throttle *t, const char *addr, bool ok)
{
	int64_t now = now_ms(), block_ms = 0;
	unsigned fails = 0;
	pthread_mutex_lock(&t->lock);
	if (ok)
		t->st.ok++;
	else
		t->st.failed++;
	struct entry *e = t->max_failures ? find(t, addr, now, false) : NULL;
	if (e) {
		if (e->pending)
			e->pending--;
		e->last_ms = now;
		if (ok) {
			e->fails = 0;
			e->blocks = 0;
		} else if (++e->fails >= t->max_failures) {
			fails = e->fails;
			block_ms = t->block_ms << (e->blocks < MAX_DOUBLINGS ? e->blocks : MAX_DOUBLINGS);
			e->blocked_until_ms = now + block_ms;
			e->blocks++;
			e->fails = 0;
			t->st.blocks++;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (block_ms)
		log_warning("http: %u failed logins from %s: its logins answer 429 for %llds "
			    "(dashboard.login.*)", fails, addr, (long long)(block_ms / 1000));
}

void http_throttle_get_stats(struct http_throttle *t, struct http_throttle_stats *out)
{
	pthread_mutex_lock(&t->lock);
	*out = t->st;
	pthread_mutex_unlock(&t->lock);
}
