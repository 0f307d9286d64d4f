/*
 * ctl_main.c - hamqtt-ctl: argument parsing, the command table and the
 * commands themselves. Finds the node from its configuration file (-c FILE,
 * default etc/hamqtt.conf, then HAMQTT_* variables, as hamqttd reads it) and
 * talks to dashboard.listeners.http.bind over the public HTTP API only.
 *
 * Adding a command is one row in `commands` plus its handler; only commands
 * that exist are listed, so `help` never advertises something unimplemented.
 */
#include "ctl.h"

#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_DEFAULT_CONF "etc/hamqtt.conf"

extern char **environ;

struct ctl_cmd {
	const char *name;  /* first word, e.g. "clients" */
	const char *sub;   /* second word, e.g. "kick"; NULL for one-word commands */
	const char *args;  /* usage of the remaining words, "" when none */
	int nargs;         /* how many words args stands for; main checks it (usage error) */
	ctl_cmd_fn fn;
	const char *help;  /* one line for `hamqtt-ctl help` */
};

static int cmd_status(struct ctl *c, int argc, char **argv);
static int cmd_cluster_join(struct ctl *c, int argc, char **argv);
static int cmd_cluster_leave(struct ctl *c, int argc, char **argv);
static int cmd_cluster_force_leave(struct ctl *c, int argc, char **argv);
static int cmd_cluster_status(struct ctl *c, int argc, char **argv);

static const struct ctl_cmd commands[] = {
	{ "status", NULL, "", 0, cmd_status,
	  "is the node running: name, uptime, connections, version (exit 1 if not)" },
	{ "cluster", "join", "NODE", 1, cmd_cluster_join,
	  "join the cluster NODE (name@host) belongs to, leaving the current one" },
	{ "cluster", "leave", "", 0, cmd_cluster_leave,
	  "leave the cluster; this node becomes a cluster of one" },
	{ "cluster", "force-leave", "NODE", 1, cmd_cluster_force_leave,
	  "remove a stopped (dead or cut off) member NODE from the cluster" },
	{ "cluster", "status", "", 0, cmd_cluster_status,
	  "the members of this node's cluster and whether each is running" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* "cluster join NODE": the words of a command and its arguments. */
static void cmd_words(const struct ctl_cmd *k, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s%s%s%s%s", k->name, k->sub ? " " : "", k->sub ? k->sub : "",
		 k->args[0] ? " " : "", k->args);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hamqtt-ctl [-c FILE] [--json] COMMAND [ARGS...]\n"
		"Administers a running hamqtt node over its HTTP API (the node's\n"
		"dashboard.listeners.http.bind; a 0.0.0.0 / :: / empty host means this machine).\n"
		"\n"
		"options:\n"
		"  -c FILE     the node's configuration file (default " CTL_DEFAULT_CONF
		", or built-in\n"
		"              defaults if that does not exist); HAMQTT_* variables apply as for hamqttd\n"
		"  --json      print the node's JSON reply verbatim instead of text (error\n"
		"              replies too; the exit status still tells success)\n"
		"  --api-key KEY:SECRET  an API key (POST /api/v5/api_key); default: "
		CTL_API_KEY_ENV ",\n"
		"              else the local key the node writes to node.data_dir/" CTL_KEY_FILE "\n"
		"  -h, --help  this text\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char word[64];
		cmd_words(&commands[i], word, sizeof(word));
		fprintf(f, "  %-24s %s\n", word, commands[i].help);
	}
	fprintf(f, "  %-24s %s\n", "help", "this text");
	fprintf(f, "\nexit status: 0 ok, 1 failure (node unreachable or not running, the node refused,\n"
		"bad config), 2 usage\n");
}

/* The local API key the node wrote to <data_dir>/ctl.key at start, unless a
 * key was given; none (an unreadable file) is no error here: the node then
 * answers 401 and ctl_http says why. */
static void read_key(struct ctl *c, const struct hq_config *cfg)
{
	snprintf(c->key_path, sizeof(c->key_path), "%s/%s",
		 cfg->node_data_dir && *cfg->node_data_dir ? cfg->node_data_dir : ".", CTL_KEY_FILE);
	if (c->api_key)
		return;
	FILE *f = fopen(c->key_path, "re");
	if (!f)
		return;
	if (!fgets(c->key_buf, sizeof(c->key_buf), f))
		c->key_buf[0] = '\0';
	fclose(f);
	c->key_buf[strcspn(c->key_buf, "\r\n")] = '\0';
}

/* Fill c->base from the configuration (c->conf_path, or the default file if it
 * exists, or built-in defaults), then HAMQTT_* variables. Returns 0, or prints
 * the config error and returns -1. */
static int find_node(struct ctl *c)
{
	struct hq_config cfg;
	char err[CONF_ERR_MAX];
	char host[256];
	int port = 0, rc = -1;
	const char *path = c->conf_path;

	if (!path && access(CTL_DEFAULT_CONF, F_OK) == 0)
		path = CTL_DEFAULT_CONF;
	conf_defaults(&cfg);
	if (path && conf_load_file(&cfg, path, err, sizeof(err)) != HQ_OK)
		goto config_error;
	if (conf_load_env(&cfg, environ, err, sizeof(err)) != HQ_OK)
		goto config_error;
	if (conf_parse_hostport(cfg.dashboard_bind, host, sizeof(host), &port) != HQ_OK) {
		snprintf(err, sizeof(err), "dashboard.listeners.http.bind: invalid host:port '%s'",
			 cfg.dashboard_bind ? cfg.dashboard_bind : "");
		goto config_error;
	}
	/* a wildcard bind accepts on loopback too */
	if (!host[0] || !strcmp(host, "0.0.0.0"))
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (!strcmp(host, "::"))
		snprintf(host, sizeof(host), "::1");

	char h[sizeof(host) * 3 + 2];
	size_t n = 0;
	if (strchr(host, ':')) { /* IPv6 literal: brackets, zone '%' escaped as %25 */
		h[n++] = '[';
		for (const char *p = host; *p; p++) {
			if (*p == '%') {
				memcpy(h + n, "%25", 3);
				n += 3;
			} else {
				h[n++] = *p;
			}
		}
		h[n++] = ']';
		h[n] = '\0';
	} else {
		snprintf(h, sizeof(h), "%s", host);
	}
	read_key(c, &cfg);
	int len = snprintf(c->base, sizeof(c->base), "http://%s:%d", h, port);
	if (len < 0 || (size_t)len >= sizeof(c->base)) {
		snprintf(err, sizeof(err), "dashboard.listeners.http.bind: host too long");
		goto config_error;
	}
	rc = 0;
	goto out;
config_error:
	fprintf(stderr, "hamqtt-ctl: %s\n", err);
out:
	conf_free(&cfg);
	return rc;
}

/* Print a JSON body as the node sent it, ending with a newline. */
static void print_body(const struct ctl_resp *r)
{
	fwrite(r->body, 1, r->len, stdout);
	if (!r->len || r->body[r->len - 1] != '\n')
		fputc('\n', stdout);
}

static const char *json_str(const cJSON *doc, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *json_num(const cJSON *doc, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
	return cJSON_IsNumber(v) ? v : NULL;
}

/* status: GET /api/v5/status. 200 = running (exit 0); 503 = starting or
 * stopping (exit 1); anything else is unexpected (exit 1). */
static int cmd_status(struct ctl *c, int argc, char **argv)
{
	static const char path[] = "/api/v5/status";
	struct ctl_resp r;
	cJSON *doc = NULL;
	int rc = 1;

	if (ctl_http_get(c, path, &r) != 0)
		return 1;
	if (c->json && (r.status == 200 || r.status == 503))
		print_body(&r);
	doc = cJSON_Parse(r.body);
	if (r.status == 200) {
		const char *node = json_str(doc, "node"), *st = json_str(doc, "status");
		const char *ver = json_str(doc, "version");
		const cJSON *up = json_num(doc, "uptime"), *conns = json_num(doc, "connections");
		if (!node || !st || !ver || !up || !conns) {
			fprintf(stderr, "hamqtt-ctl: unexpected reply from %s%s: %s\n", c->base, path, r.body);
			goto out;
		}
		if (!c->json) {
			long long nc = (long long)conns->valuedouble;
			printf("Node %s is %s (uptime %lld s, %lld connection%s, version %s)\n", node, st,
			       (long long)up->valuedouble, nc, nc == 1 ? "" : "s", ver);
		}
		rc = 0;
	} else if (r.status == 503) {
		const char *st = json_str(doc, "status");
		fprintf(stderr, "hamqtt-ctl: hamqtt node at %s is not running: %s (HTTP 503)\n", c->base,
			st ? st : "unavailable");
	} else {
		fprintf(stderr, "hamqtt-ctl: unexpected HTTP status %ld from %s%s: %s\n", r.status,
			c->base, path, r.body);
	}
out:
	cJSON_Delete(doc);
	ctl_resp_free(&r);
	return rc;
}

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
		print_body(r);
	if (r->status == 200 && cJSON_IsObject(doc))
		return doc;
	const char *msg = r->status != 200 ? json_str(doc, "message") : NULL;
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
static int cmd_cluster_join(struct ctl *c, int argc, char **argv)
{
	cJSON *req = cJSON_CreateObject();
	char *body = NULL; /* cJSON's allocation: cJSON_free */
	if (!req || !cJSON_AddStringToObject(req, "node", argv[0]) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		cJSON_Delete(req);
		fprintf(stderr, "hamqtt-ctl: out of memory\n");
		return 1;
	}
	cJSON_Delete(req);
	int rc = cluster_call(c, "POST", "/api/v5/cluster/join", body, NULL);
	cJSON_free(body);
	if (rc == 0 && !c->json)
		printf("joined the cluster of %s\n", argv[0]);
	return rc;
}

/* cluster leave: POST /api/v5/cluster/leave. */
static int cmd_cluster_leave(struct ctl *c, int argc, char **argv)
{
	int rc = cluster_call(c, "POST", "/api/v5/cluster/leave", NULL, NULL);
	if (rc == 0 && !c->json)
		printf("left the cluster; this node is now a cluster of one\n");
	return rc;
}

/* cluster force-leave NODE: DELETE /api/v5/cluster/NODE/force_leave, NODE
 * percent-encoded (anything but RFC 3986 unreserved bytes, so '@' and '/'
 * cannot change the path; the node decodes it). */
static int cmd_cluster_force_leave(struct ctl *c, int argc, char **argv)
{
	static const char hex[] = "0123456789ABCDEF";
	char path[64 + 3 * 256];
	const char *node = argv[0];
	size_t n = (size_t)snprintf(path, sizeof(path), "/api/v5/cluster/");

	for (const unsigned char *p = (const unsigned char *)node; *p; p++) {
		if (n + 3 + sizeof("/force_leave") > sizeof(path)) {
			fprintf(stderr, "hamqtt-ctl: node name too long: %s\n", node);
			return 1;
		}
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			path[n++] = (char)*p;
		} else {
			path[n++] = '%';
			path[n++] = hex[*p >> 4];
			path[n++] = hex[*p & 15];
		}
	}
	snprintf(path + n, sizeof(path) - n, "/force_leave");
	int rc = cluster_call(c, "DELETE", path, NULL, NULL);
	if (rc == 0 && !c->json)
		printf("%s removed from the cluster\n", node);
	return rc;
}

/* cluster status: GET /api/v5/cluster, a header line then one aligned line
 * per member, this node first (the node's order). */
static int cmd_cluster_status(struct ctl *c, int argc, char **argv)
{
	static const char path[] = "/api/v5/cluster";
	cJSON *doc = NULL;
	int rc = cluster_call(c, "GET", path, NULL, &doc);
	if (rc != 0 || c->json)
		goto out;

	const char *name = json_str(doc, "name");
	const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(doc, "nodes");
	const cJSON *m;
	int total = 0, running = 0, wn = 0, ws = 0, wa = 0;
	if (!name || !cJSON_IsArray(nodes))
		goto bad;
	cJSON_ArrayForEach(m, nodes) {
		const char *node = json_str(m, "node"), *st = json_str(m, "status");
		const char *addr = json_str(m, "addr");
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
			printf("  %-*s   %-*s   %-*s   (this node)\n", wn, json_str(m, "node"), ws,
			       json_str(m, "status"), wa, json_str(m, "addr"));
		else
			printf("  %-*s   %-*s   %s\n", wn, json_str(m, "node"), ws,
			       json_str(m, "status"), json_str(m, "addr"));
	}
	goto out;
bad:
	fprintf(stderr, "hamqtt-ctl: unexpected reply from %s%s\n", c->base, path);
	rc = 1;
out:
	cJSON_Delete(doc);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	bool help = false, opts_done = false;
	char **pos = hq_calloc((size_t)argc + 1, sizeof(*pos));
	int npos = 0, rc = 2;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts_done || a[0] != '-' || !a[1]) {
			pos[npos++] = argv[i];
		} else if (!strcmp(a, "--")) {
			opts_done = true;
		} else if (!strcmp(a, "-c")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "hamqtt-ctl: -c needs a FILE\n");
				goto out;
			}
			c.conf_path = argv[++i];
		} else if (!strcmp(a, "--api-key")) {
			if (i + 1 >= argc || !strchr(argv[i + 1], ':')) {
				fprintf(stderr, "hamqtt-ctl: --api-key needs KEY:SECRET\n");
				goto out;
			}
			c.api_key = argv[++i];
		} else if (!strcmp(a, "--json")) {
			c.json = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			help = true;
		} else {
			fprintf(stderr, "hamqtt-ctl: unknown option '%s'\n", a);
			usage(stderr);
			goto out;
		}
	}
	if (help || (npos > 0 && !strcmp(pos[0], "help"))) {
		usage(stdout);
		rc = 0;
		goto out;
	}
	if (npos == 0) {
		usage(stderr);
		goto out;
	}

	const struct ctl_cmd *cmd = NULL;
	for (size_t i = 0; i < N_COMMANDS && !cmd; i++) {
		const struct ctl_cmd *k = &commands[i];
		if (!strcmp(k->name, pos[0]) &&
		    (!k->sub || (npos > 1 && !strcmp(k->sub, pos[1]))))
			cmd = k;
	}
	if (!cmd) {
		fprintf(stderr, "hamqtt-ctl: unknown command '%s%s%s' (try hamqtt-ctl help)\n", pos[0],
			npos > 1 ? " " : "", npos > 1 ? pos[1] : "");
		goto out;
	}
	int skip = cmd->sub ? 2 : 1;
	if (npos - skip != cmd->nargs) {
		char word[64];
		cmd_words(cmd, word, sizeof(word));
		if (npos - skip < cmd->nargs)
			fprintf(stderr, "hamqtt-ctl: %s%s%s: missing %s\n", cmd->name, cmd->sub ? " " : "",
				cmd->sub ? cmd->sub : "", cmd->args);
		else
			fprintf(stderr, "hamqtt-ctl: %s%s%s: unexpected argument '%s'\n", cmd->name,
				cmd->sub ? " " : "", cmd->sub ? cmd->sub : "", pos[skip + cmd->nargs]);
		fprintf(stderr, "usage: hamqtt-ctl [-c FILE] [--json] %s\n", word);
		goto out;
	}

	if (!c.api_key && getenv(CTL_API_KEY_ENV) && *getenv(CTL_API_KEY_ENV))
		c.api_key = getenv(CTL_API_KEY_ENV);
	rc = 1;
	if (find_node(&c) != 0)
		goto out;
	if (ctl_http_init() != 0) {
		fprintf(stderr, "hamqtt-ctl: cannot initialise libcurl\n");
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = cmd->fn(&c, npos - skip, pos + skip);
	ctl_http_cleanup();
out:
	hq_free(pos);
	return rc;
}
