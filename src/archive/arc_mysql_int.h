/*
 * arc_mysql_int.h - what the MariaDB/MySQL backend's two files share:
 * arc_mysql.c (connect, schema, batched writes) and arc_mysql_query.c
 * (read-back with MQTT filter semantics). Not for other modules: they see
 * arc_mysql_ops through arc_backend.h.
 */
#ifndef HQ_ARC_MYSQL_INT_H
#define HQ_ARC_MYSQL_INT_H

#include <mysql.h>

#include "archive/arc_backend.h"

#define MY_MAX_ROWS 4096 /* rows per INSERT: 9 markers each, under the 65535 markers cap */
#define MY_POW_SLOTS 13  /* cached statements of 1, 2, 4 ... 4096 rows */

struct my_stmt {
	MYSQL_STMT *st;
	uint32_t rows;
};

/* Per-row values the binds point at (the rest points into the arc_msg). */
struct my_scratch {
	MYSQL_TIME ts;
	unsigned char qos;
	signed char retain;
};

struct my_conn {
	MYSQL *c;
	char *qtable;                  /* `db`.`table`, quoted, owned */
	bool mariadb;                  /* else MySQL: collation names differ */
	const struct arc_tmpl *tmpl;   /* the archive's, read-only; NULL: default schema */
	unsigned long max_packet;      /* the server's max_allowed_packet */
	struct my_stmt full;           /* a whole batch of `rows` rows */
	struct my_stmt pow[MY_POW_SLOTS]; /* the pieces of a batch split for size */
	MYSQL_STMT *tmpl_st;           /* the template's statement */
	MYSQL_BIND *binds;
	size_t nbinds;
	struct my_scratch *scr;
	size_t nscr;
};

/* HQ_EAGAIN or HQ_EINVAL for a client/server error number (see arc_backend.h). */
int my_classify(const struct my_conn *mc, unsigned int errnum);
/* The error of the connection (stmt NULL) or of a statement into err, classified. */
int my_fail(struct my_conn *mc, MYSQL_STMT *stmt, const char *what, char *err, size_t errlen);
/* ms since the epoch, UTC, to a DATETIME and back. */
void my_time_from_ms(MYSQL_TIME *t, int64_t ms);
int64_t my_time_to_ms(const MYSQL_TIME *t);
/* Ends the read transaction (autocommit is off) so the next query sees new rows. */
void my_end_read(struct my_conn *mc);

/*
 * An MQTT topic filter as SQL conditions over `topic`: exact (one
 * parameter: the topic), or a LIKE prefix (for the (topic, ts) index) and a
 * REGEXP (the exact semantics): *like and *regex malloc'd, either may be
 * NULL; *cond is the SQL text with ? markers. HQ_EINVAL for a bad filter.
 */
struct my_filter {
	char cond[160];
	char *params[2];  /* owned */
	uint32_t nparams;
};
int my_filter_make(const char *filter, struct my_filter *out);
void my_filter_free(struct my_filter *f);

int my_query(void *db, const struct arc_query *q, arc_row_fn each, void *ctx, uint64_t *total,
	     char *err, size_t errlen);

#endif
