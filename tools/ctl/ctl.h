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

/* The words and options of one command, parsed by main against the
 * command's option list (ctl_main.c `commands`): pos[] are the positional
 * words after the command's name, opt[i] the value of the command's i-th
 * option ("" for a flag that was given, NULL when absent). All borrowed from
 * argv. */
#define CTL_MAX_POS 8
#define CTL_MAX_OPTS 8
struct ctl_args {
	const char *pos[CTL_MAX_POS];
	int npos;
	const char *opt_names[CTL_MAX_OPTS]; /* the command's option names, "limit" */
	const char *opt[CTL_MAX_OPTS];
	int nopts;
};
/* The value of option --name, "" for a given flag, or NULL when absent. */
const char *ctl_opt(const struct ctl_args *a, const char *name);

/* A command handler. main has checked the count of positional words and the
 * options. Returns the process exit status (0 ok, 1 failure). */
typedef int (*ctl_cmd_fn)(struct ctl *c, const struct ctl_args *a);

/*
 * Calling the API (ctl_http.c). ctl_call sends one request and judges the
 * reply: a 2xx is success (0; *doc gets the parsed JSON body, NULL for an
 * empty or non-JSON body; caller deletes); anything else prints
 * "hamqtt-ctl: METHOD PATH: HTTP <status>: <the API's message>" on stderr and
 * returns 1 (also when the node cannot be reached). With --json the node's
 * body is printed on stdout as it came, error replies too, unless the caller
 * sets quiet (it prints something else itself). doc may be NULL.
 */
struct cJSON;
int ctl_call(const struct ctl *c, const char *method, const char *path, const char *body,
	     bool quiet, struct cJSON **doc);
/* Append s to buf (at *len, capacity cap) percent-encoded: every byte but
 * RFC 3986's unreserved ones, so '/', '@', '#', '?' and '%' cannot change a
 * path or query. -1 when it does not fit (buf then holds a truncated
 * prefix, still NUL-terminated). */
int ctl_urlenc(char *buf, size_t cap, size_t *len, const char *s);
/* Print a body as the node sent it, ending with a newline. */
void ctl_print_body(const char *body, size_t len);

/* JSON helpers (ctl_table.c): the string at key, or NULL. */
const char *ctl_jstr(const struct cJSON *o, const char *key);
/* The value at key as text for a table cell into buf: a string as is, a
 * number without a fraction when it has none, true/false, "-" for null or
 * missing, compact JSON for an object or array (cut to fit). Returns buf. */
const char *ctl_jtext(const struct cJSON *o, const char *key, char *buf, size_t cap);

/*
 * The table printer (ctl_table.c): a header row and one line per item,
 * columns aligned by the widest cell, two blanks between columns, no blank
 * at the end of a line. Cells are copied.
 */
struct ctl_table;
struct ctl_table *ctl_table_new(int ncols, const char *const *headers);
void ctl_table_row(struct ctl_table *t, const char *const *cells); /* ncols cells */
/* One row from the JSON object o: the text (ctl_jtext) of keys[0..ncols). */
void ctl_table_row_json(struct ctl_table *t, const struct cJSON *o, const char *const *keys);
int ctl_table_rows(const struct ctl_table *t);
void ctl_table_print(const struct ctl_table *t);
void ctl_table_free(struct ctl_table *t);

/* The command handlers, by file. */
int ctl_cmd_status(struct ctl *c, const struct ctl_args *a);            /* ctl_main.c */
int ctl_cmd_cluster_join(struct ctl *c, const struct ctl_args *a);      /* ctl_cmd_cluster.c */
int ctl_cmd_cluster_leave(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_cluster_force_leave(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_cluster_status(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_nodes(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_clients_list(struct ctl *c, const struct ctl_args *a);      /* ctl_cmd_clients.c */
int ctl_cmd_clients_show(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_clients_kick(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_subs_list(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_retained_list(struct ctl *c, const struct ctl_args *a);     /* ctl_cmd_retained.c */
int ctl_cmd_retained_show(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_retained_delete(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_publish(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_log_level(struct ctl *c, const struct ctl_args *a);         /* ctl_cmd_ops.c */
int ctl_cmd_trace_start(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_trace_list(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_trace_stop(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_trace_log(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_alarms(struct ctl *c, const struct ctl_args *a);
int ctl_cmd_archive_list(struct ctl *c, const struct ctl_args *a);      /* ctl_cmd_archive.c */
int ctl_cmd_archive_replay(struct ctl *c, const struct ctl_args *a);

/* A paged list (ctl_cmd_clients.c): GET base_path + query with the page and
 * limit of --page/--limit, or every page with --all (merged into one
 * {"data", "meta"} document, at most CTL_ALL_MAX items). On success *doc is
 * the page (caller deletes) and, with --json, it has been printed. */
#define CTL_ALL_MAX 1000000
int ctl_list(const struct ctl *c, const struct ctl_args *a, const char *base_path,
	     const char *query, struct cJSON **doc);
/* "N items in all" (what: the singular, whats: the plural), and when a next
 * page exists "; page P (limit L), more with --page P+1 or --all". */
void ctl_list_footer(const struct cJSON *doc, const char *what, const char *whats);
/* The node's error reply r of METHOD path on stderr: "hamqtt-ctl: METHOD
 * PATH: HTTP <status>: <the API's message, or the body's start>". */
void ctl_report(const char *method, const char *path, const struct ctl_resp *r);

#endif
