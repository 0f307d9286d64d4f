/*
 * ctl_table.c - hamqtt-ctl's table printer and the JSON-to-text helpers the
 * commands use for their readable output. A table keeps its cells until it
 * is printed, so every column is as wide as its widest cell.
 */
#include "ctl.h"

#include "core/mem.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CTL_TABLE_MAX_COLS 16 /* more would not fit a terminal anyway */

struct ctl_table {
	int ncols;
	int nrows;    /* rows, the header included */
	int cap;
	char **cells; /* nrows * ncols, row-major, owned */
};

const char *ctl_jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *ctl_jtext(const cJSON *o, const char *key, char *buf, size_t cap)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (cJSON_IsString(v)) {
		snprintf(buf, cap, "%s", v->valuestring);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == floor(d) && fabs(d) < 1e15)
			snprintf(buf, cap, "%.0f", d);
		else
			snprintf(buf, cap, "%.2f", d);
	} else if (cJSON_IsBool(v)) {
		snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
	} else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
		char *t = cJSON_PrintUnformatted(v);
		snprintf(buf, cap, "%s", t ? t : "?");
		cJSON_free(t);
	} else {
		snprintf(buf, cap, "-");
	}
	return buf;
}

struct ctl_table *ctl_table_new(int ncols, const char *const *headers)
{
	struct ctl_table *t = hq_calloc(1, sizeof(*t));
	t->ncols = ncols < CTL_TABLE_MAX_COLS ? ncols : CTL_TABLE_MAX_COLS;
	ctl_table_row(t, headers);
	return t;
}

void ctl_table_row(struct ctl_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = hq_realloc(t->cells, (size_t)t->cap * (size_t)t->ncols * sizeof(char *));
	}
	for (int i = 0; i < t->ncols; i++) {
		/* a cell is one line: a newline or tab would break the columns */
		char *s = hq_strdup(cells[i] ? cells[i] : "-");
		for (char *p = s; *p; p++)
			if (*p == '\n' || *p == '\r' || *p == '\t')
				*p = ' ';
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
}

void ctl_table_row_json(struct ctl_table *t, const cJSON *o, const char *const *keys)
{
	char buf[CTL_TABLE_MAX_COLS][256];
	const char *cells[CTL_TABLE_MAX_COLS];
	for (int i = 0; i < t->ncols; i++)
		cells[i] = ctl_jtext(o, keys[i], buf[i], sizeof(buf[i]));
	ctl_table_row(t, cells);
}

int ctl_table_rows(const struct ctl_table *t)
{
	return t->nrows - 1;
}

void ctl_table_print(const struct ctl_table *t)
{
	int *w = hq_calloc((size_t)t->ncols, sizeof(int));
	for (int r = 0; r < t->nrows; r++)
		for (int i = 0; i < t->ncols; i++) {
			int l = (int)strlen(t->cells[r * t->ncols + i]);
			w[i] = l > w[i] ? l : w[i];
		}
	for (int r = 0; r < t->nrows; r++) {
		/* padded cells, then the line's trailing blanks cut (an empty
		 * last cell would leave some) */
		size_t len = 0, cap = 1;
		for (int i = 0; i < t->ncols; i++)
			cap += (size_t)w[i] + 2;
		char *line = hq_malloc(cap);
		for (int i = 0; i < t->ncols; i++)
			len += (size_t)snprintf(line + len, cap - len, "%-*s  ", w[i],
						t->cells[r * t->ncols + i]);
		while (len && line[len - 1] == ' ')
			len--;
		line[len] = '\0';
		printf("%s\n", line);
		hq_free(line);
	}
	hq_free(w);
}

void ctl_table_free(struct ctl_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nrows * t->ncols; i++)
		hq_free(t->cells[i]);
	hq_free(t->cells);
	hq_free(t);
}
