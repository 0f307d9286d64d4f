/*
 * ctl_cmd_cluster.c - hamqtt-ctl's cluster commands (join, leave,
 * force-leave, status) over /api/v5/cluster, and `nodes` over /api/v5/nodes.
 */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The cluster commands: each is one request to the node's cluster API with
 * CTL_SLOW_TIMEOUT_S (the node answers once its cluster thread has, seconds
 * for a join). With --json the node's reply is printed as is; the exit
 * status is 0 for a 200, else 1 with the node's message on stderr.
 */

/* The reply of a cluster request: the parsed body of a 200 (caller deletes),
 * or NULL after telling why on stderr. */
static cJSON *cluster_reply(const struct ctl *c, const char *path, const struct ctl_resp *r)
{
	cJSON *doc = cJSON_Parse(r->body);
	if (c->json && doc)
		ctl_print_body(r->body, r->len);
	if (r->status == 200 && cJSON_IsObject(doc))
		return doc;
	const char *msg = r->status != 200 ? ctl_jstr(doc, "message") : NULL;
	if (msg)
		fprintf(stderr, "hamqtt-ctl: %s\n", msg);
	else
		fprintf(stderr, "hamqtt-ctl: unexpected reply (HTTP %ld) from %s%s: %s\n", r->status,
			c->base, path, r->body);
	cJSON_Delete(doc);
	return NULL;
}

/* One cluster request and its reply: 0 for a 200, else 1 (reason printed).
 * *doc gets the parsed reply (caller deletes) when doc is not NULL. */
static int cluster_call(const struct ctl *c, const char *method, const char *path,
			const char *body, cJSON **doc)
{
	struct ctl_resp r;
	if (ctl_http_request(c, method, path, body, CTL_SLOW_TIMEOUT_S, &r) != 0)
		return 1;
	cJSON *d = cluster_reply(c, path, &r);
	ctl_resp_free(&r);
	if (!d)
		return 1;
	if (doc)
		*doc = d;
	else
		cJSON_Delete(d);
	return 0;
}

/* cluster join NODE: POST /api/v5/cluster/join {"node": NODE}. */
int ctl_cmd_cluster_join(struct ctl *c, const struct ctl_args *a)
{
	cJSON *req = cJSON_CreateObject();
	char *body = NULL; /* cJSON's allocation: cJSON_free */
	if (!req || !cJSON_AddStringToObject(req, "node", a->pos[0]) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		cJSON_Delete(req);
		fprintf(stderr, "hamqtt-ctl: out of memory\n");
		return 1;
	}
	cJSON_Delete(req);
	int rc = cluster_call(c, "POST", "/api/v5/cluster/join", body, NULL);
	cJSON_free(body);
	if (rc == 0 && !c->json)
		printf("joined the cluster of %s\n", a->pos[0]);
	return rc;
}

/* cluster leave: POST /api/v5/cluster/leave. */
int ctl_cmd_cluster_leave(struct ctl *c, const struct ctl_args *a)
{
	int rc = cluster_call(c, "POST", "/api/v5/cluster/leave", NULL, NULL);
	if (rc == 0 && !c->json)
		printf("left the cluster; this node is now a cluster of one\n");
	return rc;
}

/* cluster force-leave NODE: DELETE /api/v5/cluster/NODE/force_leave, NODE
 * percent-encoded (anything but RFC 3986 unreserved bytes, so '@' and '/'
 * cannot change the path; the node decodes it). */
int ctl_cmd_cluster_force_leave(struct ctl *c, const struct ctl_args *a)
{
	char path[64 + 3 * 256];
	const char *node = a->pos[0];
	size_t n = (size_t)snprintf(path, sizeof(path), "/api/v5/cluster/");
	if (ctl_urlenc(path, sizeof(path) - sizeof("/force_leave"), &n, node) != 0) {
		fprintf(stderr, "hamqtt-ctl: node name too long: %s\n", node);
		return 1;
	}
	snprintf(path + n, sizeof(path) - n, "/force_leave");
	int rc = cluster_call(c, "DELETE", path, NULL, NULL);
	if (rc == 0 && !c->json)
		printf("%s removed from the cluster\n", node);
	return rc;
}

/* cluster status: GET /api/v5/cluster, a header line then one aligned line
 * per member, this node first (the node's order). */
int ctl_cmd_cluster_status(struct ctl *c, const struct ctl_args *a)
{
	static const char path[] = "/api/v5/cluster";
	cJSON *doc = NULL;
	int rc = cluster_call(c, "GET", path, NULL, &doc);
	if (rc != 0 || c->json)
		goto out;

	const char *name = ctl_jstr(doc, "name");
	const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(doc, "nodes");
	const cJSON *m;
	int total = 0, running = 0, wn = 0, ws = 0, wa = 0;
	if (!name || !cJSON_IsArray(nodes))
		goto bad;
	cJSON_ArrayForEach(m, nodes) {
		const char *node = ctl_jstr(m, "node"), *st = ctl_jstr(m, "status");
		const char *addr = ctl_jstr(m, "addr");
		if (!node || !st || !addr)
			goto bad;
		total++;
		running += !strcmp(st, "running");
		wn = (int)strlen(node) > wn ? (int)strlen(node) : wn;
		ws = (int)strlen(st) > ws ? (int)strlen(st) : ws;
		wa = (int)strlen(addr) > wa ? (int)strlen(addr) : wa;
	}
	printf("Cluster %s: %d node%s, %d running\n", name, total, total == 1 ? "" : "s", running);
	cJSON_ArrayForEach(m, nodes) {
		/* no padding after the last column: lines carry no trailing blanks */
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "self")))
			printf("  %-*s   %-*s   %-*s   (this node)\n", wn, ctl_jstr(m, "node"), ws,
			       ctl_jstr(m, "status"), wa, ctl_jstr(m, "addr"));
		else
			printf("  %-*s   %-*s   %s\n", wn, ctl_jstr(m, "node"), ws,
			       ctl_jstr(m, "status"), ctl_jstr(m, "addr"));
	}
	goto out;
bad:
	fprintf(stderr, "hamqtt-ctl: unexpected reply from %s%s\n", c->base, path);
	rc = 1;
out:
	cJSON_Delete(doc);
	return rc;
}


/* nodes: GET /api/v5/nodes, one line per member (a stopped one has only
 * its name and status). Memory in MiB, uptime in seconds. */
int ctl_cmd_nodes(struct ctl *c, const struct ctl_args *a)
{
	cJSON *doc = NULL, *o;
	if (ctl_call(c, "GET", "/api/v5/nodes", NULL, false, &doc) != 0)
		return 1;
	if (c->json) {
		cJSON_Delete(doc);
		return 0;
	}
	if (!cJSON_IsArray(doc)) {
		fprintf(stderr, "hamqtt-ctl: unexpected reply from %s/api/v5/nodes\n", c->base);
		cJSON_Delete(doc);
		return 1;
	}
	static const char *const head[] = { "NODE", "STATUS", "VERSION", "UPTIME_S",
					    "CONNECTIONS", "MEMORY_MIB", "LOAD1" };
	struct ctl_table *t = ctl_table_new(7, head);
	cJSON_ArrayForEach(o, doc) {
		char up[32] = "-", mem[32] = "-", conns[32], load[32], ver[64];
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "uptime");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "memory_used");
		if (cJSON_IsNumber(u)) /* EMQX's uptime is in milliseconds */
			snprintf(up, sizeof(up), "%.0f", u->valuedouble / 1000.0);
		if (cJSON_IsNumber(m))
			snprintf(mem, sizeof(mem), "%.1f", m->valuedouble / 1048576.0);
		const char *cells[] = { ctl_jstr(o, "node"), ctl_jstr(o, "node_status"),
					ctl_jtext(o, "version", ver, sizeof(ver)), up,
					ctl_jtext(o, "connections", conns, sizeof(conns)), mem,
					ctl_jtext(o, "load1", load, sizeof(load)) };
		ctl_table_row(t, cells);
	}
	ctl_table_print(t);
	ctl_table_free(t);
	cJSON_Delete(doc);
	return 0;
}
