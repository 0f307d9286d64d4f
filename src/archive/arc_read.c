/*
 * arc_read.c - read-back of an archive (GET /api/v5/archive/messages) on the
 * caller's thread: its own short-lived connection, never a writer's (a
 * connection is one thread's, arc_backend.h), so a slow query cannot delay
 * the writers and the writers' retries cannot delay the query beyond
 * connect_timeout.
 */
#include "archive/arc_int.h"
#include "broker/topic.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static struct archive *find(const struct archive_set *s, const char *name, char *err,
			    size_t errlen, int *rc)
{
	uint32_t n = archive_count(s);
	if (!name || !*name) {
		if (n == 1)
			return &s->v[0];
		*rc = n ? HQ_EINVAL : HQ_ENOTFOUND;
		if (n)
			snprintf(err, errlen, "%u archives are configured: name one with archive=", n);
		else
			snprintf(err, errlen, "no archive is configured on this node");
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(s->v[i].c.name, name))
			return &s->v[i];
	*rc = HQ_ENOTFOUND;
	snprintf(err, errlen, "no archive named %s", name);
	return NULL;
}

int archive_read(const struct archive_set *s, const char *name, const struct arc_query *q,
		 arc_row_fn each, void *ctx, uint64_t *total, char *err, size_t errlen)
{
	int rc = HQ_OK;
	struct archive *a = find(s, name, err, errlen, &rc);
	if (!a)
		return rc;
	if (a->tmpl) {
		snprintf(err, errlen,
			 "archive %s writes the operator's table (archive.%s.insert): only an archive "
			 "on the default schema can be read back", a->c.name, a->c.name);
		return HQ_EEXIST;
	}
	if (q->topic && !topic_filter_valid(q->topic, strlen(q->topic), 0)) {
		snprintf(err, errlen, "topic is not a valid MQTT topic filter");
		return HQ_ETOPIC;
	}
	if (q->limit < 1 || q->limit > 10000 || q->from_ms > q->to_ms) {
		snprintf(err, errlen, "limit is 1..10000 and from is not after to");
		return HQ_EINVAL;
	}
	if (!a->c.ops->query) {
		snprintf(err, errlen, "the %s backend cannot read back", a->c.ops->name);
		return HQ_EINVAL;
	}
	void *db = NULL;
	char why[512] = "";
	rc = a->c.ops->open(&a->db, &db, why, sizeof(why));
	if (rc == HQ_OK) {
		rc = a->c.ops->query(db, q, each, ctx, total, why, sizeof(why));
		a->c.ops->close(db);
	}
	if (rc != HQ_OK)
		snprintf(err, errlen, "archive %s: %s", a->c.name, why);
	return rc;
}
