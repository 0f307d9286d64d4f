/*
 * clu_discover.c - finding members without `cluster join`:
 * cluster.discovery_strategy = static (cluster.static.seeds) or dns: with
 * cluster.dns.record_type = a every A record of cluster.dns.name is a node
 * named <this node's prefix>@<address>; with srv every SRV record's target is
 * a node <prefix>@<target> (a Kubernetes StatefulSet's headless service: the
 * pod's DNS name outlives its address). Seeds are dialed with JOIN, so a
 * configured node is always let in. Runs every DISCOVERY_EVERY_MS.
 */
#include "cluster/clu_int.h"
#include "core/conf.h"
#include "core/log.h"
#include "core/mem.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
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

/* The answer of one lookup: node names, owned (dns_main hands them over). */
struct dns_names {
	char **v;
	size_t k, cap;
};

static void names_add(struct dns_names *a, const char *prefix, size_t plen, const char *host)
{
	char name[CLU_NAME_MAX + 1];
	int len = snprintf(name, sizeof(name), "%.*s@%s", (int)plen, prefix, host);
	if (len <= 0 || (size_t)len >= sizeof(name))
		return;
	if (a->k + 1 >= a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		a->v = hq_realloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->k++] = hq_strdup(name);
}

/* every A record is a node named like this one: <prefix>@<ip> */
static void lookup_a(const char *qname, const char *prefix, size_t plen, struct dns_names *out)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(qname, NULL, &hints, &res);
	if (gai != 0) {
		log_debug("cluster: dns discovery of %s: %s", qname, gai_strerror(gai));
		return;
	}
	for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		char ip[INET_ADDRSTRLEN];
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
		if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)))
			names_add(out, prefix, plen, ip);
	}
	freeaddrinfo(res);
}

/*
 * Every SRV record's target is a node <prefix>@<target>: the target is the
 * pod's stable DNS name, which links resolve again at each dial, so a pod
 * back with another address is still reached. The SRV port is not used:
 * every node listens on cluster.port, as with A records. A resolver state of
 * this thread's own, with short timeouts: a dead DNS server delays the next
 * round by seconds, never the cluster thread.
 */
static void lookup_srv(const char *qname, const char *prefix, size_t plen, struct dns_names *out)
{
	struct __res_state st;
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0) {
		log_debug("cluster: dns discovery of %s: cannot read the resolver configuration",
			  qname);
		return;
	}
	st.retrans = 2;  /* seconds per try, instead of 5 */
	st.retry = 2;
	unsigned char ans[8192];
	int len = res_nquery(&st, qname, ns_c_in, ns_t_srv, ans, sizeof(ans));
	if (len < 0) {
		log_debug("cluster: dns discovery of %s: no SRV records (%s)", qname,
			  hstrerror(st.res_h_errno));
		res_nclose(&st);
		return;
	}
	res_nclose(&st);
	if (len > (int)sizeof(ans))
		len = (int)sizeof(ans); /* truncated: parse what fits */
	ns_msg msg;
	if (ns_initparse(ans, len, &msg) != 0) {
		log_debug("cluster: dns discovery of %s: malformed answer", qname);
		return;
	}
	int count = ns_msg_count(msg, ns_s_an);
	for (int i = 0; i < count; i++) {
		ns_rr rr;
		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0)
			break;
		/* priority, weight, port: 6 bytes before the target */
		if (ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
			continue;
		char target[NS_MAXDNAME];
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr) + 6, target,
			      sizeof(target)) < 0)
			continue;
		size_t tl = strlen(target);
		if (tl && target[tl - 1] == '.')
			target[--tl] = '\0';
		if (tl) /* "." is "no such service here" (RFC 2782) */
			names_add(out, prefix, plen, target);
	}
}

/*
 * DNS discovery resolves on a thread of its own: a slow resolver (seconds of
 * timeouts) must not hold the cluster thread, whose heartbeats would stop.
 * One lookup at a time; the cluster thread takes the answer on its next round.
 */
static void *dns_main(void *arg)
{
	struct clu_node *n = arg;
	const char *self = n->cfg->node_name;
	const char *at = strchr(self, '@');
	size_t plen = at ? (size_t)(at - self) : strlen(self);
	struct dns_names out = { 0 };
	if (n->cfg->cluster_dns_record_type == CONF_DNS_SRV)
		lookup_srv(n->cfg->cluster_dns_name, self, plen, &out);
	else
		lookup_a(n->cfg->cluster_dns_name, self, plen, &out);
	pthread_mutex_lock(&n->dns_lock);
	n->dns_names = out.v;   /* the cluster thread takes them (dns_take) */
	n->dns_n = out.k;
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
