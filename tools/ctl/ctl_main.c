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
	const char *args;  /* usage of the positional words and options, "" when none */
	int min_args, max_args; /* how many positional words; main checks (usage error) */
	/* the command's options, space separated: "limit=" takes a value, "all"
	 * is a flag; given as --limit N / --all after the command's words */
	const char *opts;
	ctl_cmd_fn fn;
	const char *help;  /* one line for `hamqtt-ctl help` */
};

#define PAGING "page= limit= all"
static const struct ctl_cmd commands[] = {
	{ "status", NULL, "", 0, 0, "", ctl_cmd_status,
	  "is the node running: name, uptime, connections, version (exit 1 if not)" },
	{ "cluster", "join", "NODE", 1, 1, "", ctl_cmd_cluster_join,
	  "join the cluster NODE (name@host) belongs to, leaving the current one" },
	{ "cluster", "leave", "", 0, 0, "", ctl_cmd_cluster_leave,
	  "leave the cluster; this node becomes a cluster of one" },
	{ "cluster", "force-leave", "NODE", 1, 1, "", ctl_cmd_cluster_force_leave,
	  "remove a stopped (dead or cut off) member NODE from the cluster" },
	{ "cluster", "status", "", 0, 0, "", ctl_cmd_cluster_status,
	  "the members of this node's cluster and whether each is running" },
	{ "nodes", NULL, "", 0, 0, "", ctl_cmd_nodes,
	  "every member: status, version, uptime, connections, memory, load" },
	{ "clients", "list", "[--clientid ID] [--username U] [--like-clientid S] "
	  "[--page N] [--limit N] [--all]", 0, 0,
	  "clientid= username= like-clientid= " PAGING, ctl_cmd_clients_list,
	  "the cluster's clients (connected and offline sessions), a page at a time" },
	{ "clients", "show", "ID", 1, 1, "", ctl_cmd_clients_show,
	  "one client's details and subscriptions, from whichever node has it" },
	{ "clients", "kick", "ID", 1, 1, "", ctl_cmd_clients_kick,
	  "disconnect the client ID (and discard its session), on any node" },
	{ "subscriptions", "list", "[--clientid ID] [--topic T] [--page N] [--limit N] [--all]",
	  0, 0, "clientid= topic= " PAGING, ctl_cmd_subs_list,
	  "the cluster's subscriptions" },
	{ "retained", "list", "[--page N] [--limit N] [--all]", 0, 0, PAGING,
	  ctl_cmd_retained_list, "the retained messages" },
	{ "retained", "show", "TOPIC", 1, 1, "", ctl_cmd_retained_show,
	  "one retained message with its payload" },
	{ "retained", "delete", "TOPIC", 1, 1, "", ctl_cmd_retained_delete,
	  "delete the retained message of TOPIC (on every node)" },
	{ "publish", NULL, "TOPIC MESSAGE [--qos N] [--retain]", 2, 2, "qos= retain",
	  ctl_cmd_publish, "publish MESSAGE to TOPIC as the administrator" },
	{ "log", "level", "[LEVEL]", 0, 1, "", ctl_cmd_log_level,
	  "show this node's log level, or set it (debug|info|notice|warning|error|none)" },
	{ "trace", "start", "client|topic|ip ID|FILTER|IP [--duration S] [--name N]", 2, 2,
	  "duration= name=", ctl_cmd_trace_start,
	  "trace one client, topic filter or address to a file for S seconds (600)" },
	{ "trace", "list", "", 0, 0, "", ctl_cmd_trace_list, "the traces and their state" },
	{ "trace", "stop", "NAME", 1, 1, "", ctl_cmd_trace_stop, "stop the trace NAME" },
	{ "trace", "log", "NAME", 1, 1, "", ctl_cmd_trace_log,
	  "print the trace NAME's file (--json: its first MiB as the API's JSON)" },
	{ "alarms", NULL, "[--all]", 0, 0, "all", ctl_cmd_alarms,
	  "the active alarms of every node (--all: the deactivated ones too)" },
	/* issue 12: the message archive read back (ctl_cmd_archive.c) */
	{ "archive", "list", "[--archive N] [--topic F] [--from T] [--to T] [--page N] [--limit N] "
	  "[--all]", 0, 0, "archive= topic= from= to= " PAGING, ctl_cmd_archive_list,
	  "archived messages (T: RFC 3339 or ms since the epoch; from the archive's database)" },
	{ "archive", "replay", "--from T --to T --to-topic PREFIX [--archive N] [--topic F] "
	  "[--retain] [--dry-run]", 0, 0, "from= to= to-topic= archive= topic= retain dry-run",
	  ctl_cmd_archive_replay, "republish archived messages of a time range under PREFIX/" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const char *ctl_opt(const struct ctl_args *a, const char *name)
{
	for (int i = 0; i < a->nopts; i++)
		if (!strcmp(a->opt_names[i], name))
			return a->opt[i];
	return NULL;
}

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
		char word[160];
		cmd_words(&commands[i], word, sizeof(word));
		if (strlen(word) > 25) /* long usage: the help on a line of its own */
			fprintf(f, "  %s\n  %-25s %s\n", word, "", commands[i].help);
		else
			fprintf(f, "  %-25s %s\n", word, commands[i].help);
	}
	fprintf(f, "  %-25s %s\n", "help", "this text");
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

static const cJSON *json_num(const cJSON *doc, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
	return cJSON_IsNumber(v) ? v : NULL;
}

/* status: GET /api/v5/status. 200 = running (exit 0); 503 = starting or
 * stopping (exit 1); anything else is unexpected (exit 1). */
int ctl_cmd_status(struct ctl *c, const struct ctl_args *a)
{
	static const char path[] = "/api/v5/status";
	struct ctl_resp r;
	cJSON *doc = NULL;
	int rc = 1;

	if (ctl_http_get(c, path, &r) != 0)
		return 1;
	if (c->json && (r.status == 200 || r.status == 503))
		ctl_print_body(r.body, r.len);
	doc = cJSON_Parse(r.body);
	if (r.status == 200) {
		const char *node = ctl_jstr(doc, "node"), *st = ctl_jstr(doc, "status");
		const char *ver = ctl_jstr(doc, "version");
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
		const char *st = ctl_jstr(doc, "status");
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

/* The command's options and positional words from words[0..n) (the words
 * after the command's name) into *out. Returns 0, or 2 after a usage
 * message. "--" ends the options. */
static int parse_cmd_args(const struct ctl_cmd *cmd, char **words, int n, struct ctl_args *out)
{
	char spec[256];
	bool takes_value[CTL_MAX_OPTS];
	bool opts_done = false;
	memset(out, 0, sizeof(*out));
	snprintf(spec, sizeof(spec), "%s", cmd->opts);
	/* opt_names point into argv-lifetime storage: the table's strings are
	 * static, so keep a static copy of the split spec per process */
	static char names[CTL_MAX_OPTS][32];
	for (char *save = NULL, *tok = strtok_r(spec, " ", &save); tok && out->nopts < CTL_MAX_OPTS;
	     tok = strtok_r(NULL, " ", &save)) {
		size_t l = strlen(tok);
		takes_value[out->nopts] = l && tok[l - 1] == '=';
		snprintf(names[out->nopts], sizeof(names[0]), "%.*s", (int)(l - takes_value[out->nopts]),
			 tok);
		out->opt_names[out->nopts] = names[out->nopts];
		out->nopts++;
	}
	for (int i = 0; i < n; i++) {
		const char *w = words[i];
		if (!opts_done && !strcmp(w, "--")) {
			opts_done = true;
			continue;
		}
		if (opts_done || w[0] != '-' || !w[1]) {
			if (out->npos == CTL_MAX_POS || out->npos == cmd->max_args) {
				fprintf(stderr, "hamqtt-ctl: %s%s%s: unexpected argument '%s'\n", cmd->name,
					cmd->sub ? " " : "", cmd->sub ? cmd->sub : "", w);
				return 2;
			}
			out->pos[out->npos++] = w;
			continue;
		}
		int k = -1;
		for (int j = 0; j < out->nopts && k < 0; j++)
			if (w[0] == '-' && w[1] == '-' && !strcmp(w + 2, out->opt_names[j]))
				k = j;
		if (k < 0) {
			fprintf(stderr, "hamqtt-ctl: %s%s%s: unknown option '%s'\n", cmd->name,
				cmd->sub ? " " : "", cmd->sub ? cmd->sub : "", w);
			return 2;
		}
		if (takes_value[k]) {
			if (i + 1 >= n) {
				fprintf(stderr, "hamqtt-ctl: %s needs a value\n", w);
				return 2;
			}
			out->opt[k] = words[++i];
		} else {
			out->opt[k] = "";
		}
	}
	if (out->npos < cmd->min_args) {
		fprintf(stderr, "hamqtt-ctl: %s%s%s: missing %s\n", cmd->name, cmd->sub ? " " : "",
			cmd->sub ? cmd->sub : "", cmd->args);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	struct ctl_args args;
	bool help = false, opts_done = false;
	/* every word but the global options, in order ("--" kept: the command's
	 * own options end there too) */
	char **pos = hq_calloc((size_t)argc + 1, sizeof(*pos));
	int npos = 0, rc = 2;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts_done || a[0] != '-' || !a[1]) {
			pos[npos++] = argv[i];
		} else if (!strcmp(a, "--")) {
			opts_done = true;
			pos[npos++] = argv[i];
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
		} else if (npos > 0 && a[1] == '-') {
			pos[npos++] = argv[i]; /* the command's option, checked below */
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
	if (npos == 0 || !strcmp(pos[0], "--")) {
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
	if (parse_cmd_args(cmd, pos + skip, npos - skip, &args) != 0) {
		char word[160];
		cmd_words(cmd, word, sizeof(word));
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
	rc = cmd->fn(&c, &args);
	ctl_http_cleanup();
out:
	hq_free(pos);
	return rc;
}
