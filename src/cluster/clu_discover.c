/*
 * clu_discover.c - finding members without `cluster join`:
 * cluster.discovery_strategy = static (cluster.static.seeds) or dns (every A
 * record of cluster.dns.name is a node named <this node's prefix>@<address>,
 * as a Kubernetes headless service gives). Seeds are dialed with JOIN, so a
 * configured node is always let in. Runs every DISCOVERY_EVERY_MS.
 */
#include "cluster/clu_int.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#define DISCOVERY_EVERY_MS 5000

static void seed(struct clu_node *n, const char *name, size_t len)
{
	if (!clu_name_valid(name, len))
		return;
	if (len == strlen(n->m[0]->name) && !memcmp(name, n->m[0]->name, len))
		return;
	struct clu_peer *m = clu_member_find(n, name, len);
	if (!m) {
		m = clu_member_add(n, name, len, NULL, 1);
		m->next_dial_ms = clu_now(n);
	}
	m->left = false;
	m->seed = true;
}

/*
 * DNS discovery resolves on a thread of its own: a slow resolver (seconds of
 * timeouts) must not hold the cluster thread, whose heartbeats would stop.
 * One lookup at a time; the cluster thread takes the answer on its next round.
 */
static void *dns_main(void *arg)
{
	struct clu_node *n = arg;
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL, *ai;
	char **names = NULL;
	size_t k = 0;
	int gai = getaddrinfo(n->cfg->cluster_dns_name, NULL, &hints, &res);
	if (gai != 0) {
		log_debug("cluster: dns discovery of %s: %s", n->cfg->cluster_dns_name,
			  gai_strerror(gai));
	} else {
		/* every A record is a node named like this one: <prefix>@<ip> */
		const char *self = n->cfg->node_name;
		const char *at = strchr(self, '@');
		size_t plen = at ? (size_t)(at - self) : strlen(self);
		size_t cap = 0;
		for (ai = res; ai; ai = ai->ai_next)
			cap++;
		names = hq_calloc(cap + 1, sizeof(*names));
		for (ai = res; ai; ai = ai->ai_next) {
			char ip[INET_ADDRSTRLEN], name[CLU_NAME_MAX + 1];
			const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
			if (!inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)))
				continue;
			int len = snprintf(name, sizeof(name), "%.*s@%s", (int)plen, self, ip);
			if (len > 0 && (size_t)len < sizeof(name))
				names[k++] = hq_strdup(name);
		}
		freeaddrinfo(res);
	}
	pthread_mutex_lock(&n->dns_lock);
	n->dns_names = names;   /* the cluster thread takes them (dns_take) */
	n->dns_n = k;
	n->dns_done = true;
	pthread_mutex_unlock(&n->dns_lock);
	return NULL;
}

static void dns_free_names(char **names, size_t k)
{
	for (size_t i = 0; i < k; i++)
		hq_free(names[i]);
	hq_free(names);
}

/* The last lookup's answer, if it finished: seed its nodes, reap the thread. */
static void dns_take(struct clu_node *n)
{
	if (!n->dns_running)
		return;
	pthread_mutex_lock(&n->dns_lock);
	bool done = n->dns_done;
	char **names = n->dns_names;
	size_t k = n->dns_n;
	n->dns_names = NULL;
	n->dns_n = 0;
	pthread_mutex_unlock(&n->dns_lock);
	if (!done)
		return;
	pthread_join(n->dns_thread, NULL);
	n->dns_running = false;
	for (size_t i = 0; i < k; i++)
		seed(n, names[i], strlen(names[i]));
	dns_free_names(names, k);
}

static void dns_start(struct clu_node *n)
{
	if (n->dns_running)
		return;
	n->dns_done = false;
	if (pthread_create(&n->dns_thread, NULL, dns_main, n) == 0)
		n->dns_running = true;
	else
		log_warning("cluster: cannot start the dns discovery thread: %s", strerror(errno));
}

static void discover(struct clu_node *n)
{
	const struct hq_config *cfg = n->cfg;
	if (cfg->cluster_discovery == CONF_DISC_STATIC && cfg->cluster_static_seeds) {
		const char *p = cfg->cluster_static_seeds;
		while (*p) {
			while (*p == ' ' || *p == ',' || *p == '\t')
				p++;
			const char *e = p;
			while (*e && *e != ',' && *e != ' ' && *e != '\t')
				e++;
			if (e > p)
				seed(n, p, (size_t)(e - p));
			p = e;
		}
	} else if (cfg->cluster_discovery == CONF_DISC_DNS && cfg->cluster_dns_name &&
		   *cfg->cluster_dns_name) {
		dns_take(n);
		dns_start(n);
	}
}


void clu_discover_tick(struct clu_node *n, int64_t now)
{
	if (n->cfg->cluster_discovery != CONF_DISC_MANUAL && now >= n->next_discovery_ms) {
		n->next_discovery_ms = now + DISCOVERY_EVERY_MS;
		discover(n);
	}
	dns_take(n);
}

/* Shutdown: wait for a lookup in progress (bounded by the resolver's own
 * timeouts) and drop its answer. */
void clu_discover_stop(struct clu_node *n)
{
	if (!n->dns_running)
		return;
	pthread_join(n->dns_thread, NULL);
	n->dns_running = false;
	dns_free_names(n->dns_names, n->dns_n);
	n->dns_names = NULL;
	n->dns_n = 0;
}
