/*
 * ctl_cmd_ops.c - hamqtt-ctl's operator commands: `log level` (GET|PUT
 * /api/v5/log_level, this node only), `trace start|list|stop|log`
 * (/api/v5/trace) and `alarms` (/api/v5/alarms, every node's).
 */
#include "ctl.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* log level [LEVEL] */
int ctl_cmd_log_level(struct ctl *c, const struct ctl_args *a)
{
	cJSON *doc = NULL;
	int rc;
	if (a->npos == 0) {
		rc = ctl_call(c, "GET", "/api/v5/log_level", NULL, false, &doc);
	} else {
		cJSON *req = cJSON_CreateObject();
		char *body = NULL;
		if (!req || !cJSON_AddStringToObject(req, "level", a->pos[0]) ||
		    !(body = cJSON_PrintUnformatted(req))) {
			cJSON_Delete(req);
			fprintf(stderr, "hamqtt-ctl: out of memory\n");
			return 1;
		}
		cJSON_Delete(req);
		rc = ctl_call(c, "PUT", "/api/v5/log_level", body, false, &doc);
		cJSON_free(body);
	}
	if (rc == 0 && !c->json) {
		const char *lv = ctl_jstr(doc, "level");
		printf("log level: %s\n", lv ? lv : "?");
	}
	cJSON_Delete(doc);
	return rc;
}

/* The API's trace type for the command's word. */
static const char *trace_type(const char *w)
{
	if (!strcmp(w, "client") || !strcmp(w, "clientid"))
		return "clientid";
	if (!strcmp(w, "topic"))
		return "topic";
	if (!strcmp(w, "ip") || !strcmp(w, "ip_address"))
		return "ip_address";
	return NULL;
}

/* A default trace name from the filter: its letters, digits and "-_."
 * (what the node accepts), others as '_', after "<type>-", plus the time so
 * two traces of one client get two names. */
static void default_name(char *out, size_t cap, const char *type, const char *filter)
{
	size_t n = (size_t)snprintf(out, cap, "%s-", type);
	for (const char *p = filter; *p && n + 12 < cap && n < 40; p++)
		out[n++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || strchr("-_.", *p) ? *p : '_';
	snprintf(out + n, cap - n, "-%lld", (long long)time(NULL));
}

static const char *const trace_head[] = { "NAME", "TYPE", "FILTER", "STATUS", "START_AT",
					  "END_AT", "LOG_BYTES" };

static void trace_row(struct ctl_table *t, const cJSON *o)
{
	const char *type = ctl_jstr(o, "type");
	char filter[300], st[64], en[64], size[32] = "0";
	double bytes = 0;
	const cJSON *ls = cJSON_GetObjectItemCaseSensitive(o, "log_size"), *n;
	cJSON_ArrayForEach(n, ls) /* per node; the sum of them */
		if (cJSON_IsNumber(n))
			bytes += n->valuedouble;
	snprintf(size, sizeof(size), "%.0f", bytes);
	const char *cells[] = { ctl_jstr(o, "name"), type,
				type ? ctl_jtext(o, type, filter, sizeof(filter)) : "-",
				ctl_jstr(o, "status"), ctl_jtext(o, "start_at", st, sizeof(st)),
				ctl_jtext(o, "end_at", en, sizeof(en)), size };
	ctl_table_row(t, cells);
}

/* trace start client|topic|ip VALUE [--duration S] [--name N]: POST /api/v5/trace */
int ctl_cmd_trace_start(struct ctl *c, const struct ctl_args *a)
{
	const char *type = trace_type(a->pos[0]), *dur = ctl_opt(a, "duration");
	const char *name = ctl_opt(a, "name");
	char *end = NULL, defname[64];
	long secs = dur ? strtol(dur, &end, 10) : 0;
	if (!type) {
		fprintf(stderr, "hamqtt-ctl: trace start: the kind is client, topic or ip, not '%s'\n",
			a->pos[0]);
		return 2;
	}
	if (dur && (!*dur || *end || secs <= 0)) {
		fprintf(stderr, "hamqtt-ctl: --duration is a positive number of seconds\n");
		return 2;
	}
	if (!name) {
		default_name(defname, sizeof(defname), a->pos[0], a->pos[1]);
		name = defname;
	}
	cJSON *req = cJSON_CreateObject(), *doc = NULL;
	char *body = NULL;
	if (!req || !cJSON_AddStringToObject(req, "name", name) ||
	    !cJSON_AddStringToObject(req, "type", type) ||
	    !cJSON_AddStringToObject(req, type, a->pos[1]) ||
	    (dur && !cJSON_AddNumberToObject(req, "end_at", (double)(time(NULL) + secs))) ||
	    !(body = cJSON_PrintUnformatted(req))) {
		cJSON_Delete(req);
		fprintf(stderr, "hamqtt-ctl: out of memory\n");
		return 1;
	}
	cJSON_Delete(req);
	int rc = ctl_call(c, "POST", "/api/v5/trace", body, false, &doc);
	cJSON_free(body);
	if (rc == 0 && !c->json) {
		const char *en = ctl_jstr(doc, "end_at");
		printf("trace %s started (until %s); hamqtt-ctl trace log %s\n",
		       ctl_jstr(doc, "name") ? ctl_jstr(doc, "name") : name, en ? en : "?",
		       ctl_jstr(doc, "name") ? ctl_jstr(doc, "name") : name);
	}
	cJSON_Delete(doc);
	return rc;
}

int ctl_cmd_trace_list(struct ctl *c, const struct ctl_args *a)
{
	cJSON *doc = NULL, *o;
	if (ctl_call(c, "GET", "/api/v5/trace", NULL, false, &doc) != 0)
		return 1;
	if (!c->json) {
		struct ctl_table *t = ctl_table_new(7, trace_head);
		cJSON_ArrayForEach(o, doc)
			trace_row(t, o);
		ctl_table_print(t);
		printf("%d trace%s\n", ctl_table_rows(t), ctl_table_rows(t) == 1 ? "" : "s");
		ctl_table_free(t);
	}
	cJSON_Delete(doc);
	return 0;
}

/* "/api/v5/trace/<name>" + suffix; -1 when too long. */
static int trace_path(char *path, size_t cap, const char *name, const char *suffix)
{
	size_t n = (size_t)snprintf(path, cap, "/api/v5/trace/");
	if (ctl_urlenc(path, cap - strlen(suffix) - 1, &n, name) != 0) {
		fprintf(stderr, "hamqtt-ctl: trace name too long\n");
		return -1;
	}
	snprintf(path + n, cap - n, "%s", suffix);
	return 0;
}

/* trace stop NAME: PUT /api/v5/trace/NAME/stop (the file stays readable). */
int ctl_cmd_trace_stop(struct ctl *c, const struct ctl_args *a)
{
	char path[512];
	cJSON *doc = NULL;
	if (trace_path(path, sizeof(path), a->pos[0], "/stop") ||
	    ctl_call(c, "PUT", path, NULL, false, &doc) != 0)
		return 1;
	if (!c->json)
		printf("trace %s stopped\n", a->pos[0]);
	cJSON_Delete(doc);
	return 0;
}

/* trace log NAME: the whole file as text (GET .../download); --json: GET
 * .../log, the API's {"items", "meta"} of the file's first MiB. */
int ctl_cmd_trace_log(struct ctl *c, const struct ctl_args *a)
{
	char path[512];
	if (c->json) {
		if (trace_path(path, sizeof(path), a->pos[0], "/log"))
			return 1;
		return ctl_call(c, "GET", path, NULL, false, NULL);
	}
	if (trace_path(path, sizeof(path), a->pos[0], "/download"))
		return 1;
	struct ctl_resp r;
	if (ctl_http_request(c, "GET", path, NULL, CTL_SLOW_TIMEOUT_S, &r) != 0)
		return 1;
	int rc = r.status == 200 ? 0 : 1;
	if (rc == 0)
		fwrite(r.body, 1, r.len, stdout); /* the file as it is */
	else
		ctl_report("GET", path, &r);
	ctl_resp_free(&r);
	return rc;
}

/* alarms [--all]: the active alarms (?activated=true), or every alarm the
 * nodes remember with --all; one page of up to 1000 per node. */
int ctl_cmd_alarms(struct ctl *c, const struct ctl_args *a)
{
	bool all = ctl_opt(a, "all") != NULL;
	cJSON *doc = NULL, *o;
	if (ctl_call(c, "GET", all ? "/api/v5/alarms?limit=1000" :
		     "/api/v5/alarms?activated=true&limit=1000", NULL, false, &doc) != 0)
		return 1;
	if (!c->json) {
		static const char *const head[] = { "NODE", "NAME", "ACTIVATED", "ACTIVATE_AT",
						    "DEACTIVATE_AT", "MESSAGE" };
		static const char *const keys[] = { "node", "name", "activated", "activate_at",
						    "deactivate_at", "message" };
		struct ctl_table *t = ctl_table_new(6, head);
		cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(doc, "data"))
			ctl_table_row_json(t, o, keys);
		if (ctl_table_rows(t))
			ctl_table_print(t);
		printf("%d %salarm%s\n", ctl_table_rows(t), all ? "" : "active ",
		       ctl_table_rows(t) == 1 ? "" : "s");
		ctl_table_free(t);
	}
	cJSON_Delete(doc);
	return 0;
}
