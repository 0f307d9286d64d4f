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
	ctl_cmd_fn fn;
	const char *help;  /* one line for `hamqtt-ctl help` */
};

static int cmd_status(struct ctl *c, int argc, char **argv);

static const struct ctl_cmd commands[] = {
	{ "status", NULL, "", cmd_status,
	  "is the node running: name, uptime, connections, version (exit 1 if not)" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

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
		"  --json      print the node's JSON reply verbatim instead of text\n"
		"  -h, --help  this text\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct ctl_cmd *k = &commands[i];
		char word[64];
		snprintf(word, sizeof(word), "%s%s%s%s%s", k->name, k->sub ? " " : "",
			 k->sub ? k->sub : "", k->args[0] ? " " : "", k->args);
		fprintf(f, "  %-22s %s\n", word, k->help);
	}
	fprintf(f, "  %-22s %s\n", "help", "this text");
	fprintf(f, "\nexit status: 0 ok, 1 failure (node unreachable or not running, bad config), 2 usage\n");
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

	if (argc > 0) {
		fprintf(stderr, "hamqtt-ctl: status takes no arguments\n");
		return 2;
	}
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
