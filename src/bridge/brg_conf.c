/*
 * brg_conf.c - bridges.mqtt.<name>.* (the lines conf.c keeps as text in
 * cfg->bridge_raw) into struct brg_conf, refusing anything wrong with the
 * line it came from ("file:line: key: why").
 *
 * Why here and not in the key table: a bridge's keys are per name and two of
 * them are small languages (`forwards`, `subscriptions`), so the table's
 * one-value-per-key parsers do not fit; conf.c only keeps their origin.
 */
#include "bridge/bridge.h"
#include "broker/topic.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "bridges.mqtt."
#define NAME_MAX_LEN 63

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static char *trim_dup(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return hq_strndup(s, n);
}

/* One "<filter> -> <prefix> [qos N]" into rule; false with why. */
static bool rule_parse(const char *s, size_t n, struct brg_rule *rule, const char **why)
{
	const char *arrow = NULL;
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '-' && s[i + 1] == '>') {
			arrow = s + i;
			break;
		}
	if (!arrow) {
		*why = "expected '<filter> -> <prefix> [qos N]' (quote a value where a filter is '#' alone)";
		return false;
	}
	rule->filter = trim_dup(s, (size_t)(arrow - s));
	if (!topic_filter_valid(rule->filter, strlen(rule->filter), 0)) {
		*why = "not a valid topic filter before '->'";
		return false;
	}
	char *rest = trim_dup(arrow + 2, (size_t)(s + n - arrow - 2));
	rule->qos = 1;
	/* the tail may be "qos N" (the prefix alone, or nothing, before it) */
	char *q = strstr(rest, "qos");
	if (q && (q == rest || q[-1] == ' ' || q[-1] == '\t')) {
		char *e = q + 3;
		while (*e == ' ' || *e == '\t')
			e++;
		if (!(e[0] >= '0' && e[0] <= '2') || e[1]) {
			hq_free(rest);
			*why = "qos must be 0, 1 or 2";
			return false;
		}
		rule->qos = (uint8_t)(e[0] - '0');
		*q = '\0';
	}
	rule->prefix = trim_dup(rest, strlen(rest));
	hq_free(rest);
	for (const char *p = rule->prefix; *p; p++)
		if (*p == '+' || *p == '#' || *p == ' ' || *p == '\t') {
			*why = "the prefix after '->' must be a plain topic part (no wildcard, no space)";
			return false;
		}
	return true;
}

/* "a -> b qos 1, c -> d" into *v (appended). */
static int rules_parse(const struct conf_raw *r, struct brg_rule **v, int *n, char *err,
		       size_t errlen)
{
	const char *p = r->value;
	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (!e && !*n && !len)
			break; /* an empty value: "no entry" below */
		*v = hq_realloc(*v, (size_t)(*n + 1) * sizeof(**v));
		struct brg_rule *rule = &(*v)[(*n)++];
		memset(rule, 0, sizeof(*rule));
		const char *why = NULL;
		if (!rule_parse(p, len, rule, &why))
			return conf_raw_fail(r, r->key, err, errlen, "entry %d: %s, got '%.*s'", *n, why, (int)len, p);
		if (!e)
			break;
		p = e + 1; /* an entry must follow: "a -> b," is refused */
	}
	if (!*n)
		return conf_raw_fail(r, r->key, err, errlen, "no entry (a '#' after a blank starts a comment: quote a value where a filter is '#' alone)");
	return HQ_OK;
}

/* "60s", "500ms", "2m", "1h", or plain seconds, into ms within [min, max]. */
static bool dur_parse(const char *s, uint64_t min_ms, uint64_t max_ms, uint32_t *out)
{
	char *end;
	if (!(*s >= '0' && *s <= '9'))
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mul = 1000;
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (!strcmp(end, "h"))
		mul = 3600000;
	else if (*end && strcmp(end, "s"))
		return false;
	if (v > UINT32_MAX)
		return false;
	uint64_t ms = v * mul;
	if (ms < min_ms || ms > max_ms)
		return false;
	*out = (uint32_t)ms;
	return true;
}

static struct brg_conf *find_or_add(struct brg_conf **v, int *n, const char *name, size_t len,
				    const char *cluster_name, const struct conf_raw **first,
				    const struct conf_raw *r)
{
	for (int i = 0; i < *n; i++)
		if (strlen((*v)[i].name) == len && !memcmp((*v)[i].name, name, len))
			return &(*v)[i];
	*v = hq_realloc(*v, (size_t)(*n + 1) * sizeof(**v));
	struct brg_conf *b = &(*v)[(*n)++];
	memset(b, 0, sizeof(*b));
	b->name = hq_strndup(name, len);
	b->version = 5;
	size_t idl = strlen(cluster_name) + len + 16;
	b->clientid = hq_malloc(idl);
	snprintf(b->clientid, idl, "%s-bridge-%s", cluster_name, b->name);
	b->cacertfile = hq_strdup("");
	b->certfile = hq_strdup("");
	b->keyfile = hq_strdup("");
	b->server_name = hq_strdup("");
	b->verify_peer = true;
	b->keepalive_s = 60;
	b->reconnect_min_ms = 1000;
	b->reconnect_max_ms = 60000;
	b->max_buffered = 100000;
	first[*n - 1] = r;
	return b;
}

static void set_str(char **p, const char *v)
{
	hq_free(*p);
	*p = hq_strdup(v);
}

static int apply(struct brg_conf *b, const struct conf_raw *r, const char *leaf, char *err,
		 size_t errlen)
{
	const char *v = r->value;
	uint32_t ms;
	if (!strcmp(leaf, "server")) {
		char host[256];
		int port;
		if (conf_parse_hostport(v, host, sizeof(host), &port) != HQ_OK || !host[0] || port <= 0)
			return conf_raw_fail(r, r->key, err, errlen, "expected host:port, got '%.100s'", v);
		set_str(&b->server, v);
		set_str(&b->host, host);
		b->port = port;
	} else if (!strcmp(leaf, "mqtt_version")) {
		if (!strcmp(v, "5"))
			b->version = 5;
		else if (!strcmp(v, "3.1.1"))
			b->version = 4;
		else
			return conf_raw_fail(r, r->key, err, errlen, "expected 5 or 3.1.1, got '%.100s'", v);
	} else if (!strcmp(leaf, "clientid")) {
		if (!*v || strlen(v) > 65535)
			return conf_raw_fail(r, r->key, err, errlen, "expected a client id (1 to 65535 bytes)");
		set_str(&b->clientid, v);
	} else if (!strcmp(leaf, "username")) {
		set_str(&b->username, v);
	} else if (!strcmp(leaf, "password")) {
		set_str(&b->password, v);
	} else if (!strcmp(leaf, "ssl.enable")) {
		if (!strcmp(v, "true"))
			b->ssl = true;
		else if (!strcmp(v, "false"))
			b->ssl = false;
		else
			return conf_raw_fail(r, r->key, err, errlen, "expected true or false, got '%.100s'", v);
	} else if (!strcmp(leaf, "ssl.cacertfile")) {
		set_str(&b->cacertfile, v);
	} else if (!strcmp(leaf, "ssl.certfile")) {
		set_str(&b->certfile, v);
	} else if (!strcmp(leaf, "ssl.keyfile")) {
		set_str(&b->keyfile, v);
	} else if (!strcmp(leaf, "ssl.server_name")) {
		set_str(&b->server_name, v);
	} else if (!strcmp(leaf, "ssl.verify")) {
		if (!strcmp(v, "peer"))
			b->verify_peer = true;
		else if (!strcmp(v, "none"))
			b->verify_peer = false;
		else
			return conf_raw_fail(r, r->key, err, errlen, "expected peer or none, got '%.100s'", v);
	} else if (!strcmp(leaf, "forwards")) {
		return rules_parse(r, &b->fwd, &b->n_fwd, err, errlen);
	} else if (!strcmp(leaf, "subscriptions")) {
		return rules_parse(r, &b->sub, &b->n_sub, err, errlen);
	} else if (!strcmp(leaf, "keepalive")) {
		if (!dur_parse(v, 1000, 65535000, &ms))
			return conf_raw_fail(r, r->key, err, errlen, "expected a duration from 1s to 65535s, got '%.100s'", v);
		b->keepalive_s = ms / 1000;
	} else if (!strcmp(leaf, "reconnect_min")) {
		if (!dur_parse(v, 100, 3600000, &ms))
			return conf_raw_fail(r, r->key, err, errlen, "expected a duration from 100ms to 1h, got '%.100s'", v);
		b->reconnect_min_ms = ms;
	} else if (!strcmp(leaf, "reconnect_max")) {
		if (!dur_parse(v, 100, 3600000, &ms))
			return conf_raw_fail(r, r->key, err, errlen, "expected a duration from 100ms to 1h, got '%.100s'", v);
		b->reconnect_max_ms = ms;
	} else if (!strcmp(leaf, "max_buffered")) {
		char *end;
		unsigned long long n = strtoull(v, &end, 10);
		if (!(*v >= '0' && *v <= '9') || *end || n < 1 || n > 100000000)
			return conf_raw_fail(r, r->key, err, errlen, "expected a count from 1 to 100000000, got '%.100s'", v);
		b->max_buffered = (uint32_t)n;
	} else {
		return conf_raw_fail(r, r->key, err, errlen, "unknown key");
	}
	return HQ_OK;
}

int bridge_conf_parse(const struct hq_config *cfg, struct brg_conf **out, int *n, char *err,
		      size_t errlen)
{
	struct brg_conf *v = NULL;
	int nv = 0;
	const struct conf_raw **first = hq_calloc((size_t)cfg->n_bridge_raw + 1, sizeof(*first));
	int rc = HQ_OK;
	for (int i = 0; i < cfg->n_bridge_raw && rc == HQ_OK; i++) {
		const struct conf_raw *r = &cfg->bridge_raw[i];
		size_t plen = strlen(PREFIX);
		if (strncmp(r->key, PREFIX, plen) != 0) {
			rc = conf_raw_fail(r, r->key, err, errlen, "unknown key (bridges.mqtt.<name>.* only)");
			break;
		}
		const char *name = r->key + plen, *p = name;
		while (name_char(*p))
			p++;
		if (p == name || *p != '.' || (size_t)(p - name) > NAME_MAX_LEN) {
			rc = conf_raw_fail(r, r->key, err, errlen, "invalid bridge name (letters, digits, _ and -, at most %d)",
				  NAME_MAX_LEN);
			break;
		}
		struct brg_conf *b = find_or_add(&v, &nv, name, (size_t)(p - name), cfg->cluster_name,
						 first, r);
		rc = apply(b, r, p + 1, err, errlen);
	}
	for (int i = 0; i < nv && rc == HQ_OK; i++) {
		struct brg_conf *b = &v[i];
		if (!b->server)
			rc = conf_raw_fail(first[i], first[i]->key, err, errlen, "bridge '%s' has no server (bridges.mqtt.%s.server)",
				  b->name, b->name);
		else if (!b->n_fwd && !b->n_sub)
			rc = conf_raw_fail(first[i], first[i]->key, err, errlen, "bridge '%s' has neither forwards nor subscriptions",
				  b->name);
		else if (b->reconnect_min_ms > b->reconnect_max_ms)
			rc = conf_raw_fail(first[i], first[i]->key, err, errlen, "bridge '%s': reconnect_min above reconnect_max",
				  b->name);
		else if (!b->ssl && (b->certfile[0] || b->cacertfile[0]))
			rc = conf_raw_fail(first[i], first[i]->key, err, errlen, "bridge '%s': ssl.* files set but ssl.enable = false",
				  b->name);
		else if (!b->certfile[0] != !b->keyfile[0])
			rc = conf_raw_fail(first[i], first[i]->key, err, errlen, "bridge '%s': ssl.certfile and ssl.keyfile go together",
				  b->name);
	}
	hq_free(first);
	if (rc != HQ_OK) {
		bridge_conf_free(v, nv);
		return rc;
	}
	*out = v;
	*n = nv;
	return HQ_OK;
}

static void rules_free(struct brg_rule *v, int n)
{
	for (int i = 0; i < n; i++) {
		hq_free(v[i].filter);
		hq_free(v[i].prefix);
	}
	hq_free(v);
}

void bridge_conf_free(struct brg_conf *v, int n)
{
	for (int i = 0; i < n; i++) {
		struct brg_conf *b = &v[i];
		hq_free(b->name);
		hq_free(b->server);
		hq_free(b->host);
		hq_free(b->clientid);
		hq_free(b->username);
		hq_free(b->password);
		hq_free(b->cacertfile);
		hq_free(b->certfile);
		hq_free(b->keyfile);
		hq_free(b->server_name);
		rules_free(b->fwd, b->n_fwd);
		rules_free(b->sub, b->n_sub);
	}
	hq_free(v);
}
