/*
 * http_guard.c - per-address limits and request deadlines of the management
 * port (http_guard.h).
 */
#include "http/http_guard.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <uthash.h>

#define SCAN_MS 500
#define LOG_EVERY_MS 10000

struct gaddr {                 /* connections open per client address */
	char key[INET6_ADDRSTRLEN];
	unsigned n;
	UT_hash_handle hh;
};

struct gconn {
	struct gconn *prev, *next;
	MHD_socket fd;
	struct gaddr *addr;        /* counted in addr->n; NULL when not counted */
	int64_t since_ms;          /* start of the current request's deadline */
	bool handling;             /* request complete, in its handler or being answered */
	bool closing;              /* shut down by us: waiting for MHD's CLOSED */
};

struct http_guard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool stop;
	unsigned per_addr;
	int64_t timeout_ms;
	struct gconn *conns;
	struct gaddr *addrs;
	struct http_guard_stats st;
	/* summary log: counts since the last line */
	uint64_t log_refused, log_timeouts;
	char log_refused_addr[INET6_ADDRSTRLEN], log_timeout_addr[INET6_ADDRSTRLEN];
	int64_t log_at_ms;
};

static void addr_key(struct MHD_Connection *c, char out[INET6_ADDRSTRLEN])
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	snprintf(out, INET6_ADDRSTRLEN, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, INET6_ADDRSTRLEN);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  INET6_ADDRSTRLEN);
}

static void close_locked(struct gconn *k)
{
	if (!k->closing) {
		k->closing = true;
		shutdown(k->fd, SHUT_RDWR); /* MHD's thread sees EOF and closes */
	}
}

/* One summary line per LOG_EVERY_MS at most, with what happened since the
 * previous one; called with the lock held, logs after copying. */
static void maybe_log(struct http_guard *g, int64_t now)
{
	if (now - g->log_at_ms < LOG_EVERY_MS || (!g->log_refused && !g->log_timeouts))
		return;
	uint64_t r = g->log_refused, t = g->log_timeouts;
	char ra[INET6_ADDRSTRLEN], ta[INET6_ADDRSTRLEN];
	memcpy(ra, g->log_refused_addr, sizeof(ra));
	memcpy(ta, g->log_timeout_addr, sizeof(ta));
	g->log_refused = g->log_timeouts = 0;
	g->log_at_ms = now;
	pthread_mutex_unlock(&g->mu);
	if (r)
		log_warning("http: closed %llu connections over "
			    "dashboard.listeners.http.max_connections_per_address = %u (latest from "
			    "%s)", (unsigned long long)r, g->per_addr, ra);
	if (t)
		log_warning("http: closed %llu connections whose request was not complete within "
			    "dashboard.listeners.http.request_timeout = %lld s (latest from %s)",
			    (unsigned long long)t, (long long)(g->timeout_ms / 1000), ta);
	pthread_mutex_lock(&g->mu);
}

void http_guard_on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			      enum MHD_ConnectionNotificationCode code)
{
	struct http_guard *g = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct gconn *k = hq_calloc(1, sizeof(*k));
		char key[INET6_ADDRSTRLEN];
		addr_key(c, key);
		k->fd = ci ? ci->connect_fd : MHD_INVALID_SOCKET;
		k->since_ms = clock_mono_ms();
		pthread_mutex_lock(&g->mu);
		struct gaddr *a;
		HASH_FIND_STR(g->addrs, key, a);
		if (!a) {
			a = hq_calloc(1, sizeof(*a));
			memcpy(a->key, key, sizeof(a->key));
			HASH_ADD_STR(g->addrs, key, a);
		}
		a->n++;
		k->addr = a;
		k->next = g->conns;
		if (g->conns)
			g->conns->prev = k;
		g->conns = k;
		g->st.open++;
		if (g->per_addr && a->n > g->per_addr && k->fd != MHD_INVALID_SOCKET) {
			close_locked(k);
			g->st.refused_per_address++;
			g->log_refused++;
			memcpy(g->log_refused_addr, key, sizeof(key));
		}
		pthread_mutex_unlock(&g->mu);
		*socket_ctx = k;
		return;
	}
	struct gconn *k = *socket_ctx;
	if (!k)
		return;
	pthread_mutex_lock(&g->mu);
	if (k->prev)
		k->prev->next = k->next;
	else
		g->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	g->st.open--;
	if (k->addr && --k->addr->n == 0) {
		HASH_DEL(g->addrs, k->addr);
		free(k->addr);
	}
	pthread_mutex_unlock(&g->mu);
	free(k);
	*socket_ctx = NULL;
}

static struct gconn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

void http_guard_request_complete(struct http_guard *g, struct MHD_Connection *c)
{
	struct gconn *k = conn_of(c);
	if (!k)
		return;
	pthread_mutex_lock(&g->mu);
	k->handling = true;
	pthread_mutex_unlock(&g->mu);
}

void http_guard_response_done(struct http_guard *g, struct MHD_Connection *c)
{
	struct gconn *k = conn_of(c);
	if (!k)
		return;
	pthread_mutex_lock(&g->mu);
	k->handling = false;
	k->since_ms = clock_mono_ms();
	pthread_mutex_unlock(&g->mu);
}

static void *guard_main(void *arg)
{
	struct http_guard *g = arg;
	pthread_mutex_lock(&g->mu);
	while (!g->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += SCAN_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&g->cv, &g->mu, &ts);
		int64_t now = clock_mono_ms();
		for (struct gconn *k = g->conns; k; k = k->next) {
			if (k->handling || k->closing || k->fd == MHD_INVALID_SOCKET ||
			    now - k->since_ms < g->timeout_ms)
				continue;
			close_locked(k);
			g->st.request_timeouts++;
			g->log_timeouts++;
			if (k->addr)
				memcpy(g->log_timeout_addr, k->addr->key, sizeof(k->addr->key));
		}
		maybe_log(g, now);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

struct http_guard *http_guard_new(int per_addr, int timeout_s)
{
	struct http_guard *g = hq_calloc(1, sizeof(*g));
	g->per_addr = per_addr > 0 ? (unsigned)per_addr : 0;
	g->timeout_ms = (int64_t)timeout_s * 1000;
	g->log_at_ms = clock_mono_ms() - LOG_EVERY_MS;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g);
		return NULL;
	}
	return g;
}

void http_guard_free(struct http_guard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->stop = true;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
	/* MHD is stopped: every CLOSED came, the lists are empty; free any rest */
	struct gaddr *a, *t;
	HASH_ITER(hh, g->addrs, a, t) {
		HASH_DEL(g->addrs, a);
		free(a);
	}
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	free(g);
}

void http_guard_get_stats(struct http_guard *g, struct http_guard_stats *out)
{
	pthread_mutex_lock(&g->mu);
	*out = g->st;
	pthread_mutex_unlock(&g->mu);
}
