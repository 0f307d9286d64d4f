/*
 * clu_start.c - a (re)started node accepts MQTT clients only once it knows
 * the routes of its peers.
 *
 * A node keeps its member list (node.data_dir) but not the other nodes'
 * routes: those arrive in the full route sync each peer sends when its link
 * comes up (ROUTE_SYNC_BEGIN .. END), a dial period (about 100 ms) after the
 * start at best. A QoS 1/2 PUBLISH read before then matches no node session
 * of a peer, so it is acknowledged without ever being forwarded: a message
 * lost for every subscriber on the other nodes (test_65's rolling restart:
 * the publisher reconnected to the restarted node within ms and its first
 * message never reached an offline session on another node; test_37
 * store_redis_restart_routes shows it deterministically). So when the
 * member list names anyone, broker_new leaves the MQTT listeners unwatched
 * (the kernel queues the connections in the backlog; the health check says
 * 503 "starting", b->start_hold) and the cluster thread
 * posts every worker WQ_LISTEN once each member is "known": its route sync
 * ended (its routes are in the workers' inboxes, ahead of WQ_LISTEN: entries
 * to one worker keep their order), or a dial to it failed (it is down: with a
 * shared store its sessions are adopted, otherwise unavailable, as for any
 * dead node), or cluster.heartbeat_timeout passed (a silent peer: the node
 * serves anyway, with a warning; what matches that peer's routes is lost
 * until its link comes up, as before this hold).
 * Thread: the cluster thread only (clu_start_init before it starts).
 */
#include "broker/brk_clu.h"
#include "cluster/clu_int.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

void clu_start_init(struct clu_node *n)
{
	for (size_t i = 1; i < n->n_m; i++)
		if (!n->m[i]->left)
			n->start_held = true;
}

bool clu_start_held(const struct clu_node *n)
{
	return n && n->start_held;
}

static void release(struct clu_node *n, const char *why)
{
	n->start_held = false;
	brk_post_listen(n->wout);
	clu_wout_flush(n);
	log_info("cluster: accepting MQTT clients (%s)", why);
}

static void check(struct clu_node *n)
{
	if (!n->start_held)
		return;
	for (size_t i = 1; i < n->n_m; i++)
		if (!n->m[i]->left && !n->m[i]->start_known)
			return;
	release(n, "the routes of every member that is up are known");
}

void clu_start_peer_known(struct clu_node *n, struct clu_peer *m, const char *how)
{
	if (!n->start_held || m->start_known)
		return;
	m->start_known = true;
	log_debug("cluster: start: %s %s", m->name, how);
	check(n);
}

void clu_start_tick(struct clu_node *n, int64_t now)
{
	if (!n->start_held)
		return;
	if (!n->start_until) {
		n->start_until = now + (int64_t)n->cfg->cluster_heartbeat_timeout * 1000;
		return;
	}
	check(n); /* members removed or left meanwhile */
	if (!n->start_held || now < n->start_until)
		return;
	char names[512] = "";
	size_t len = 0;
	for (size_t i = 1; i < n->n_m && len < sizeof(names) - 1; i++) {
		struct clu_peer *m = n->m[i];
		if (!m->left && !m->start_known) {
			int w = snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "",
					 m->name);
			len += w > 0 ? (size_t)w : 0;
		}
	}
	log_warning("cluster: no routes from %s within cluster.heartbeat_timeout (%d s) of the "
		    "start: accepting MQTT clients anyway (what matches their subscribers is not "
		    "forwarded until their links are up)", names, n->cfg->cluster_heartbeat_timeout);
	release(n, "timeout");
}
