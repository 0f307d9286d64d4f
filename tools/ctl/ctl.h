/*
 * ctl.h - hamqtt-ctl, the admin CLI: shared state of one invocation and the
 * HTTP helper every command uses to talk to a running node's management API
 * (dashboard.listeners.http.bind). Layer: tools/, on top of the public HTTP API
 * only; it never links broker internals beyond core/ (config loading).
 *
 * Exit statuses: 0 success, 1 failure (node unreachable, error status, bad
 * config), 2 usage error.
 */
#ifndef HQ_TOOLS_CTL_H
#define HQ_TOOLS_CTL_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_URL_MAX 320          /* "http://[host]:port" plus slack */
#define CTL_TIMEOUT_S 5L         /* connect and total timeout of one request */
#define CTL_SLOW_TIMEOUT_S 30L   /* total timeout of a cluster command: the node waits for its
				    cluster thread, seconds for a join (connect stays 5 s) */
#define CTL_BODY_MAX (16u << 20) /* bytes; larger responses are refused */

struct ctl {
	const char *conf_path; /* -c FILE, borrowed from argv */
	bool json;             /* --json: print the node's JSON bodies verbatim */
	char base[CTL_URL_MAX]; /* "http://HOST:PORT", no trailing slash */
	const char *api_key;   /* --api-key KEY:SECRET (argv) or $HAMQTTCTL_API_KEY, or NULL */
	char key_buf[256];     /* "key:secret" read from <node.data_dir>/ctl.key */
	char key_path[4096];   /* where the key file was looked for (for the hint on 401) */
};

/* The environment variable with an API key ("key:secret"); not HAMQTT_...,
 * which hamqttd's configuration claims. */
#define CTL_API_KEY_ENV "HAMQTTCTL_API_KEY"
#define CTL_KEY_FILE "ctl.key"   /* the node writes it into node.data_dir at start */

struct ctl_resp {
	long status;  /* HTTP status code */
	char *body;   /* NUL-terminated, owned; free with ctl_resp_free */
	size_t len;   /* bytes in body, excluding the NUL */
};

/* One request to c->base + path (path starts with '/'). body may be NULL for
 * GET; POST sends it as application/json. On success fills *r (caller frees
 * with ctl_resp_free) and returns 0 whatever the HTTP status. When the node
 * cannot be reached prints "hamqtt-ctl: cannot reach hamqtt node at BASE: <curl error>" on
 * stderr and returns -1 (r holds nothing to free). */
int ctl_http_get(const struct ctl *c, const char *path, struct ctl_resp *r);
int ctl_http_post(const struct ctl *c, const char *path, const char *body, struct ctl_resp *r);
/* The general form: method "GET", "POST" (body as above) or "DELETE", with a
 * total timeout of timeout_s seconds (get/post use CTL_TIMEOUT_S). */
int ctl_http_request(const struct ctl *c, const char *method, const char *path,
		     const char *body, long timeout_s, struct ctl_resp *r);
void ctl_resp_free(struct ctl_resp *r);

/* curl's process-wide setup; call once at start and once at exit. */
int ctl_http_init(void);
void ctl_http_cleanup(void);

/* A command handler: argv holds the words after the command (and sub-command)
 * name, global options removed; main has checked that argc is the count the
 * command table declares. Returns the process exit status. */
typedef int (*ctl_cmd_fn)(struct ctl *c, int argc, char **argv);

#endif
