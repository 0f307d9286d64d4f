/*
 * The message archive's database seam (issue 12): what an archive needs from
 * a database, so the archive's core (buffer, batching, spill, retries, acks:
 * arc_*.c) knows no SQL dialect and each backend (arc_pg.c over libpq,
 * arc_mysql.c over the MariaDB client library) knows nothing of the broker.
 *
 * Threads: a connection (`void *db`) is used by one thread at a time, the
 * one that opened it: an archive's writer thread, or the HTTP thread that
 * reads back (its own short-lived connection). Backends keep no global
 * state besides their library's one-time initialisation, done on open.
 *
 * Errors: every op returns HQ_OK or a negative HQ_E* (core/err.h) and puts a
 * one-line reason for the log in `err` (never a password):
 *   HQ_EAGAIN  the server is unreachable or went away, or a transient
 *              failure (deadlock, serialisation, too many connections): the
 *              core closes the connection, keeps the rows and retries with
 *              backoff;
 *   HQ_EINVAL  the rows or the template can never be written (a column the
 *              template names is missing, a type mismatch): the core logs,
 *              counts and drops the batch instead of retrying for ever.
 */
#ifndef HQ_ARC_BACKEND_H
#define HQ_ARC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARC_ID_HEX 32 /* a message id as text: 32 lowercase hex digits */

/* Where and how to connect; filled from archive.<name>.* by the core. */
struct arc_db {
	const char *name;     /* the archive's <name>, for log lines */
	const char *host;     /* from `server` host:port */
	uint16_t port;        /* 5432 / 3306 when `server` has none */
	const char *database;
	const char *username;
	const char *password; /* may be NULL */
	bool tls;             /* require TLS; no TLS at all when false */
	const char *tls_cafile; /* verify the server against it; NULL: encrypt only */
	const char *table;    /* the default schema's table (default "mqtt_messages") */
	const struct arc_tmpl *insert; /* the operator's INSERT template, or NULL */
	uint32_t connect_timeout_s;
};

/*
 * One message to store. Borrowed views, valid for the call only. `id` is
 * unique cluster-wide and the same on every retry of the message, so a
 * write that may have happened before (a commit whose answer was lost,
 * the node restarted mid-spill) is written again without a second row.
 */
struct arc_msg {
	char id[ARC_ID_HEX + 1];
	const char *topic;
	uint32_t topic_len;
	const uint8_t *payload;
	uint32_t payload_len;
	const char *clientid; /* "" when unknown (a message of the REST API) */
	uint16_t clientid_len;
	const char *username; /* NULL when the client had none */
	uint16_t username_len;
	uint8_t qos;
	bool retain;
	int64_t ts_ms;        /* publish time, ms since the epoch, UTC */
	const char *node;     /* the node that took the PUBLISH */
};

/*
 * The default schema (created on first use, when `insert` is NULL):
 *   msgid     CHAR(32) PRIMARY KEY          -- arc_msg.id
 *   topic     TEXT / VARCHAR(65535)         -- NOT NULL
 *   payload   BYTEA / LONGBLOB              -- the bytes as published
 *   qos       SMALLINT, retain BOOLEAN
 *   clientid  TEXT, username TEXT NULL
 *   ts        TIMESTAMPTZ(3) / DATETIME(3)  -- publish time, UTC
 *   node      TEXT
 * plus an index on (ts) and one on (topic(prefix), ts).
 */

/* A read-back request (GET /api/v5/archive/messages, hamqtt-ctl archive replay). */
struct arc_query {
	const char *topic;  /* an MQTT topic filter ('+', '#'), or NULL for all */
	int64_t from_ms;    /* inclusive; INT64_MIN when not given */
	int64_t to_ms;      /* exclusive; INT64_MAX when not given */
	uint64_t offset;    /* rows to skip, in (ts, msgid) order */
	uint32_t limit;     /* at most this many rows (1..10000) */
};

/* Called once per row, in (ts, msgid) order; a non-zero return stops the walk. */
typedef int (*arc_row_fn)(void *ctx, const struct arc_msg *m);

struct arc_backend_ops {
	const char *name; /* "postgresql", "mysql" */
	/* Connect (bounded by connect_timeout_s) and, when `insert` is NULL,
	 * create the default table and its indexes if missing. */
	int (*open)(const struct arc_db *db, void **out, char *err, size_t errlen);
	/* Write n rows in one transaction (COPY / multi-row INSERT ... with
	 * duplicate ids skipped: ON CONFLICT DO NOTHING / INSERT IGNORE).
	 * All or nothing: on error none of them counts as written. */
	int (*write)(void *db, const struct arc_msg *rows, size_t n, char *err, size_t errlen);
	/* Read back the default table: the rows of q in order, and the
	 * number of rows matching q without offset/limit in *total. Only for
	 * the default schema (a template's table is the operator's). */
	int (*query)(void *db, const struct arc_query *q, arc_row_fn each, void *ctx,
		     uint64_t *total, char *err, size_t errlen);
	void (*close)(void *db);
};

extern const struct arc_backend_ops arc_pg_ops;    /* arc_pg.c */
extern const struct arc_backend_ops arc_mysql_ops; /* arc_mysql.c */

/*
 * The operator's INSERT template (archive.<name>.insert), parsed once by the
 * core (arc_tmpl.c, pure): literal SQL with placeholders ${topic},
 * ${payload}, ${clientid}, ${username}, ${qos}, ${retain}, ${timestamp}
 * (ms since the epoch), ${node}, ${id}, and ${payload.a.b} (a field of a
 * JSON payload; SQL NULL when the payload is not JSON or lacks it).
 * Backends never splice values into SQL: they get the statement with their
 * own parameter markers and bind the values.
 */
struct arc_tmpl;

enum arc_marker { ARC_MARK_DOLLAR /* $1, $2 (PostgreSQL) */, ARC_MARK_QUESTION /* ? (MySQL) */ };

/* Parse (refuses unknown placeholders, an unterminated ${, a placeholder
 * inside a quoted SQL literal, a statement that is not an INSERT; the
 * reason goes to err, for the config loader's file:line message). */
int arc_tmpl_parse(const char *text, struct arc_tmpl **out, char *err, size_t errlen);
void arc_tmpl_free(struct arc_tmpl *t);
/* The statement with markers, owned by the template (valid while it lives). */
const char *arc_tmpl_sql(const struct arc_tmpl *t, enum arc_marker style);
/* How many parameters a row binds. */
uint32_t arc_tmpl_nparams(const struct arc_tmpl *t);

/*
 * One row's parameters. A template is shared read-only by an archive's
 * writer threads, so what a row needs (the payload parsed as JSON once,
 * numbers and JSON fields as text) lives in this caller-owned scratch:
 * init, any number of arc_tmpl_param calls, done (frees what it holds).
 */
struct arc_tmpl_row {
	const struct arc_msg *m;
	void *json;      /* the payload parsed (cJSON *), owned; NULL if not JSON */
	bool json_tried;
	char **texts;    /* values made for this row, owned, freed by done */
	uint32_t n_texts;
};
void arc_tmpl_row_init(struct arc_tmpl_row *r, const struct arc_msg *m);
void arc_tmpl_row_done(struct arc_tmpl_row *r);
/* Parameter i as text, or NULL for SQL NULL; its length in *len; *binary
 * when it is bytes (${payload}) rather than text. Valid until row_done. */
const char *arc_tmpl_param(const struct arc_tmpl *t, struct arc_tmpl_row *r, uint32_t i,
			   size_t *len, bool *binary);

#endif
