/*
 * arc_mysql.c - the message archive's MariaDB/MySQL backend over the MariaDB
 * client library (Connector/C): connect (bounded, TLS on request, utf8mb4,
 * UTC, autocommit off), the default table created if missing, and batched
 * idempotent writes. Read-back is arc_mysql_query.c.
 *
 * Writes: the default schema gets one multi-row INSERT ... ON DUPLICATE KEY
 * UPDATE msgid = msgid per batch (a row written before, same id, is skipped;
 * unlike INSERT IGNORE no other error is turned into a warning) as a
 * prepared statement whose values are all bound. A batch that fits the
 * server's max_allowed_packet is one statement of exactly its size, kept
 * for the next batch of that size (full batches); a larger one is cut into
 * pieces of 2^k rows, each size's statement kept too. The operator's
 * template is one statement executed per row. Either way, one transaction.
 */
#include <errno.h>
#include <errmsg.h>
#include <mysqld_error.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/arc_mysql_int.h"
#include "core/err.h"

#define MY_COLS 9
#define MY_PACKET_SLACK 4096 /* header, null bitmap, types: beyond the rows' estimate */

static pthread_once_t my_once = PTHREAD_ONCE_INIT;
static int my_init_rc;

static void my_library_init(void)
{
	/* not thread-safe in the library: once, whichever writer opens first */
	my_init_rc = mysql_library_init(0, NULL, NULL);
}

int my_classify(const struct my_conn *mc, unsigned int e)
{
	if (e >= CR_MIN_ERROR && e <= CR_MAX_ERROR)
		return HQ_EAGAIN; /* client side: connection lost, timeouts, protocol */
	switch (e) {
	case ER_CON_COUNT_ERROR: case ER_TOO_MANY_USER_CONNECTIONS: case ER_OUT_OF_RESOURCES:
	case ER_OUTOFMEMORY: case ER_OUT_OF_SORTMEMORY:
	case ER_LOCK_WAIT_TIMEOUT: case ER_LOCK_DEADLOCK: case ER_LOCK_TABLE_FULL:
	case ER_SERVER_SHUTDOWN: case ER_NORMAL_SHUTDOWN: case ER_SHUTDOWN_COMPLETE:
	case ER_QUERY_INTERRUPTED: case ER_CONNECTION_KILLED: case ER_ABORTING_CONNECTION:
	case ER_NET_READ_ERROR: case ER_NET_READ_INTERRUPTED: case ER_NET_ERROR_ON_WRITE:
	case ER_NET_WRITE_INTERRUPTED: case ER_NET_PACKETS_OUT_OF_ORDER:
	case ER_DISK_FULL: case ER_RECORD_FILE_FULL:
	case ER_OPTION_PREVENTS_STATEMENT: /* read_only during a failover */
	case ER_ERROR_DURING_COMMIT: case ER_ERROR_DURING_ROLLBACK:
	case ER_UNKNOWN_STMT_HANDLER: case ER_NEED_REPREPARE:
	/* an operator fixes grants without losing what waits */
	case ER_ACCESS_DENIED_ERROR: case ER_DBACCESS_DENIED_ERROR: case ER_BAD_DB_ERROR:
	case ER_TABLEACCESS_DENIED_ERROR: case ER_COLUMNACCESS_DENIED_ERROR:
		return HQ_EAGAIN;
	case ER_NO_SUCH_TABLE:
		/* the default table dropped under us: the reopen creates it again;
		 * the operator's table missing is the template's mismatch */
		return mc && !mc->tmpl ? HQ_EAGAIN : HQ_EINVAL;
	default:
		return HQ_EINVAL; /* the rows or the template do not fit the table */
	}
}

int my_fail(struct my_conn *mc, MYSQL_STMT *stmt, const char *what, char *err, size_t errlen)
{
	unsigned int e = stmt ? mysql_stmt_errno(stmt) : mysql_errno(mc->c);
	const char *msg = stmt ? mysql_stmt_error(stmt) : mysql_error(mc->c);
	if (!e && stmt) { /* prepare/bind failures may land on the handle */
		e = mysql_errno(mc->c);
		msg = mysql_error(mc->c);
	}
	snprintf(err, errlen, "mysql: %s: %s (%u)", what, msg && *msg ? msg : "unknown error", e);
	return e ? my_classify(mc, e) : HQ_EAGAIN;
}

void my_time_from_ms(MYSQL_TIME *t, int64_t ms)
{
	int64_t s = ms / 1000, r = ms % 1000;
	if (r < 0) {
		r += 1000;
		s--;
	}
	time_t tt = (time_t)s;
	struct tm tm;
	gmtime_r(&tt, &tm);
	memset(t, 0, sizeof(*t));
	t->year = (unsigned)(tm.tm_year + 1900);
	t->month = (unsigned)tm.tm_mon + 1;
	t->day = (unsigned)tm.tm_mday;
	t->hour = (unsigned)tm.tm_hour;
	t->minute = (unsigned)tm.tm_min;
	t->second = (unsigned)tm.tm_sec;
	t->second_part = (unsigned long)r * 1000;
	t->time_type = MYSQL_TIMESTAMP_DATETIME;
}

int64_t my_time_to_ms(const MYSQL_TIME *t)
{
	struct tm tm = { .tm_year = (int)t->year - 1900, .tm_mon = (int)t->month - 1,
			 .tm_mday = (int)t->day, .tm_hour = (int)t->hour, .tm_min = (int)t->minute,
			 .tm_sec = (int)t->second };
	return (int64_t)timegm(&tm) * 1000 + (int64_t)(t->second_part / 1000);
}

void my_end_read(struct my_conn *mc)
{
	(void)mysql_commit(mc->c);
}

/* `a`.`b` from "a.b" (or `b` from "b"), backticks doubled. */
static char *my_quote_table(const char *table)
{
	size_t n = strlen(table);
	char *q = malloc(n * 2 + 8), *o = q;
	if (!q)
		return NULL;
	*o++ = '`';
	for (const char *p = table; *p; p++) {
		if (*p == '.') {
			*o++ = '`';
			*o++ = '.';
			*o++ = '`';
			continue;
		}
		if (*p == '`')
			*o++ = '`';
		*o++ = *p;
	}
	*o++ = '`';
	*o = '\0';
	return q;
}

static void my_stmt_drop(struct my_stmt *s)
{
	if (s->st)
		mysql_stmt_close(s->st);
	s->st = NULL;
	s->rows = 0;
}

static void my_close(void *db)
{
	struct my_conn *mc = db;
	if (!mc)
		return;
	my_stmt_drop(&mc->full);
	for (int i = 0; i < MY_POW_SLOTS; i++)
		my_stmt_drop(&mc->pow[i]);
	if (mc->tmpl_st)
		mysql_stmt_close(mc->tmpl_st);
	if (mc->c)
		mysql_close(mc->c);
	free(mc->binds);
	free(mc->scr);
	free(mc->qtable);
	free(mc);
}

static int my_exec(struct my_conn *mc, const char *sql, char *err, size_t errlen)
{
	if (mysql_real_query(mc->c, sql, strlen(sql)))
		return my_fail(mc, NULL, "query", err, errlen);
	MYSQL_RES *res = mysql_store_result(mc->c);
	if (res)
		mysql_free_result(res);
	return HQ_OK;
}

static int my_schema(struct my_conn *mc, char *err, size_t errlen)
{
	/* NO PAD binary collation: topics compare byte for byte, a trailing
	 * space included ('a' and 'a ' are two MQTT topics) */
	const char *coll = mc->mariadb ? "utf8mb4_nopad_bin" : "utf8mb4_0900_bin";
	char sql[1536];
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE IF NOT EXISTS %s ("
		 "msgid CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, "
		 "topic TEXT CHARACTER SET utf8mb4 COLLATE %s NOT NULL, "
		 "payload LONGBLOB NOT NULL, "
		 "qos SMALLINT NOT NULL, "
		 "retain BOOLEAN NOT NULL, "
		 "clientid TEXT CHARACTER SET utf8mb4 COLLATE %s NOT NULL, "
		 "username TEXT CHARACTER SET utf8mb4 COLLATE %s NULL, "
		 "ts DATETIME(3) NOT NULL, "
		 "node TEXT CHARACTER SET utf8mb4 NOT NULL, "
		 "INDEX ts_idx (ts), INDEX topic_ts_idx (topic(191), ts)"
		 ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		 mc->qtable, coll, coll, coll);
	if (strlen(sql) >= sizeof(sql) - 1) {
		snprintf(err, errlen, "mysql: table name too long");
		return HQ_EINVAL;
	}
	return my_exec(mc, sql, err, errlen);
}

static int my_open(const struct arc_db *db, void **out, char *err, size_t errlen)
{
	*out = NULL;
	pthread_once(&my_once, my_library_init);
	if (my_init_rc) {
		snprintf(err, errlen, "mysql: client library initialisation failed");
		return HQ_EAGAIN;
	}
	struct my_conn *mc = calloc(1, sizeof(*mc));
	if (!mc || !(mc->c = mysql_init(NULL)) ||
	    !(mc->qtable = my_quote_table(db->table && *db->table ? db->table : "mqtt_messages"))) {
		my_close(mc);
		snprintf(err, errlen, "mysql: out of memory");
		return HQ_ENOMEM;
	}
	mc->tmpl = db->insert;
	unsigned int timeout = db->connect_timeout_s ? db->connect_timeout_s : 5;
	/* reads and writes bounded too: a server that hangs (not one that
	 * died: that is an immediate error) is given up after this */
	unsigned int io_timeout = timeout * 6 > 30 ? timeout * 6 : 30;
	unsigned int proto = MYSQL_PROTOCOL_TCP; /* "localhost" too: the server is host:port */
	my_bool off = 0, on = 1;
	unsigned long max_packet = 1024UL * 1024 * 1024;
	mysql_options(mc->c, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(mc->c, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
	mysql_options(mc->c, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
	mysql_options(mc->c, MYSQL_OPT_PROTOCOL, &proto);
	mysql_options(mc->c, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(mc->c, MYSQL_OPT_LOCAL_INFILE, &off);
	mysql_options(mc->c, MYSQL_OPT_RECONNECT, &off); /* a reconnect would lose the transaction silently */
	mysql_options(mc->c, MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
	mysql_options(mc->c, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
	if (db->tls) {
		mysql_options(mc->c, MYSQL_OPT_SSL_ENFORCE, &on);
		mysql_options(mc->c, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, db->tls_cafile ? &on : &off);
		if (db->tls_cafile)
			mysql_options(mc->c, MYSQL_OPT_SSL_CA, db->tls_cafile);
	}
	if (!mysql_real_connect(mc->c, db->host, db->username, db->password ? db->password : "",
				db->database, db->port ? db->port : 3306, NULL, 0)) {
		snprintf(err, errlen, "mysql: connect to %s:%u: %s (%u)", db->host,
			 db->port ? db->port : 3306, mysql_error(mc->c), mysql_errno(mc->c));
		my_close(mc);
		return HQ_EAGAIN;
	}
	mc->mariadb = strstr(mysql_get_server_info(mc->c), "MariaDB") != NULL;
	int rc = mysql_autocommit(mc->c, 0) ? my_fail(mc, NULL, "autocommit off", err, errlen) : HQ_OK;
	mc->max_packet = 4UL * 1024 * 1024; /* MySQL's default, if the server does not say */
	if (rc == HQ_OK && !mysql_query(mc->c, "SELECT @@max_allowed_packet")) {
		MYSQL_RES *res = mysql_store_result(mc->c);
		MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
		if (row && row[0])
			mc->max_packet = strtoul(row[0], NULL, 10);
		if (res)
			mysql_free_result(res);
	}
	else if (rc == HQ_OK)
		rc = my_fail(mc, NULL, "max_allowed_packet", err, errlen);
	if (rc == HQ_OK && !mc->tmpl)
		rc = my_schema(mc, err, errlen);
	if (rc == HQ_OK && mysql_commit(mc->c))
		rc = my_fail(mc, NULL, "commit", err, errlen);
	if (rc != HQ_OK) {
		my_close(mc);
		/* the server answered but the table could not be made: still
		 * retried, an operator may fix grants or disk without data lost */
		return rc == HQ_ENOMEM ? rc : HQ_EAGAIN;
	}
	*out = mc;
	return HQ_OK;
}

static size_t my_row_bytes(const struct arc_msg *m)
{
	/* 2 type bytes and up to 9 length bytes per value, 12 for the DATETIME */
	return (size_t)MY_COLS * 11 + 12 + ARC_ID_HEX + m->topic_len + m->payload_len +
	       m->clientid_len + m->username_len + (m->node ? strlen(m->node) : 0);
}

static int my_grow(struct my_conn *mc, size_t rows)
{
	if (rows * MY_COLS > mc->nbinds) {
		MYSQL_BIND *b = realloc(mc->binds, rows * MY_COLS * sizeof(*b));
		if (!b)
			return HQ_ENOMEM;
		mc->binds = b;
		mc->nbinds = rows * MY_COLS;
	}
	if (rows > mc->nscr) {
		struct my_scratch *s = realloc(mc->scr, rows * sizeof(*s));
		if (!s)
			return HQ_ENOMEM;
		mc->scr = s;
		mc->nscr = rows;
	}
	return HQ_OK;
}

static void my_bind_str(MYSQL_BIND *b, enum enum_field_types type, const void *p, size_t len)
{
	b->buffer_type = type;
	b->buffer = (void *)(p ? p : ""); /* input only: the library does not write it */
	b->buffer_length = (unsigned long)len;
}

static void my_bind_row(MYSQL_BIND *b, struct my_scratch *s, const struct arc_msg *m)
{
	memset(b, 0, MY_COLS * sizeof(*b));
	my_time_from_ms(&s->ts, m->ts_ms);
	s->qos = m->qos;
	s->retain = m->retain ? 1 : 0;
	my_bind_str(&b[0], MYSQL_TYPE_STRING, m->id, strnlen(m->id, ARC_ID_HEX));
	my_bind_str(&b[1], MYSQL_TYPE_STRING, m->topic, m->topic_len);
	my_bind_str(&b[2], MYSQL_TYPE_BLOB, m->payload, m->payload_len);
	b[3].buffer_type = MYSQL_TYPE_TINY;
	b[3].buffer = &s->qos;
	b[3].is_unsigned = 1;
	b[4].buffer_type = MYSQL_TYPE_TINY;
	b[4].buffer = &s->retain;
	my_bind_str(&b[5], MYSQL_TYPE_STRING, m->clientid, m->clientid_len);
	if (m->username)
		my_bind_str(&b[6], MYSQL_TYPE_STRING, m->username, m->username_len);
	else
		b[6].buffer_type = MYSQL_TYPE_NULL;
	b[7].buffer_type = MYSQL_TYPE_DATETIME;
	b[7].buffer = &s->ts;
	my_bind_str(&b[8], MYSQL_TYPE_STRING, m->node, m->node ? strlen(m->node) : 0);
}

/* The prepared statement for `rows` rows in slot s (prepared when it holds another size). */
static int my_prepare(struct my_conn *mc, struct my_stmt *s, uint32_t rows, char *err, size_t errlen)
{
	if (s->st && s->rows == rows)
		return HQ_OK;
	my_stmt_drop(s);
	static const char head[] = "INSERT INTO %s (msgid, topic, payload, qos, retain, clientid, "
				   "username, ts, node) VALUES ";
	static const char tuple[] = "(?,?,?,?,?,?,?,?,?)";
	static const char tail[] = " ON DUPLICATE KEY UPDATE msgid = msgid";
	size_t cap = sizeof(head) + strlen(mc->qtable) + (size_t)rows * sizeof(tuple) + sizeof(tail);
	char *sql = malloc(cap);
	if (!sql)
		return HQ_ENOMEM;
	size_t n = (size_t)snprintf(sql, cap, head, mc->qtable);
	for (uint32_t i = 0; i < rows; i++) {
		if (i)
			sql[n++] = ',';
		memcpy(sql + n, tuple, sizeof(tuple) - 1);
		n += sizeof(tuple) - 1;
	}
	memcpy(sql + n, tail, sizeof(tail));
	n += sizeof(tail) - 1;
	s->st = mysql_stmt_init(mc->c);
	int rc = HQ_OK;
	if (!s->st)
		rc = my_fail(mc, NULL, "statement", err, errlen);
	else if (mysql_stmt_prepare(s->st, sql, (unsigned long)n)) {
		rc = my_fail(mc, s->st, "prepare insert", err, errlen);
		my_stmt_drop(s);
	}
	else
		s->rows = rows;
	free(sql);
	return rc;
}

/* Rows [0, k) of rows through the statement in slot s. */
static int my_exec_rows(struct my_conn *mc, struct my_stmt *s, const struct arc_msg *rows,
			uint32_t k, char *err, size_t errlen)
{
	int rc = my_prepare(mc, s, k, err, errlen);
	if (rc == HQ_OK)
		rc = my_grow(mc, k);
	if (rc != HQ_OK)
		return rc;
	for (uint32_t i = 0; i < k; i++)
		my_bind_row(mc->binds + (size_t)i * MY_COLS, &mc->scr[i], &rows[i]);
	if (mysql_stmt_bind_param(s->st, mc->binds))
		return my_fail(mc, s->st, "bind", err, errlen);
	if (mysql_stmt_execute(s->st))
		return my_fail(mc, s->st, "insert", err, errlen);
	return HQ_OK;
}

static int my_write_default(struct my_conn *mc, const struct arc_msg *rows, size_t n, char *err,
			    size_t errlen)
{
	size_t budget = mc->max_packet > 2 * MY_PACKET_SLACK ? mc->max_packet - MY_PACKET_SLACK
							      : MY_PACKET_SLACK;
	for (size_t i = 0; i < n;) {
		size_t fit = 0, bytes = 0;
		while (i + fit < n && fit < MY_MAX_ROWS) {
			size_t b = my_row_bytes(&rows[i + fit]);
			if (bytes + b > budget)
				break;
			bytes += b;
			fit++;
		}
		if (!fit) {
			snprintf(err, errlen, "mysql: message %s of %u bytes is larger than the server's "
				 "max_allowed_packet (%lu)", rows[i].id, rows[i].payload_len, mc->max_packet);
			return HQ_EINVAL;
		}
		struct my_stmt *s;
		uint32_t k;
		if (i == 0 && fit == n && (fit & (fit - 1))) {
			s = &mc->full; /* the common case: the whole batch, one statement */
			k = (uint32_t)fit;
		}
		else {
			int p = 0;
			while ((2UL << p) <= fit)
				p++;
			s = &mc->pow[p];
			k = 1U << p;
		}
		int rc = my_exec_rows(mc, s, rows + i, k, err, errlen);
		if (rc != HQ_OK)
			return rc;
		i += k;
	}
	return HQ_OK;
}

static int my_write_tmpl(struct my_conn *mc, const struct arc_msg *rows, size_t n, char *err,
			 size_t errlen)
{
	uint32_t np = arc_tmpl_nparams(mc->tmpl);
	if (!mc->tmpl_st) {
		const char *sql = arc_tmpl_sql(mc->tmpl, ARC_MARK_QUESTION);
		if (!(mc->tmpl_st = mysql_stmt_init(mc->c)))
			return my_fail(mc, NULL, "statement", err, errlen);
		if (mysql_stmt_prepare(mc->tmpl_st, sql, (unsigned long)strlen(sql))) {
			int rc = my_fail(mc, mc->tmpl_st, "prepare the insert template", err, errlen);
			mysql_stmt_close(mc->tmpl_st);
			mc->tmpl_st = NULL;
			return rc;
		}
		if (mysql_stmt_param_count(mc->tmpl_st) != np) {
			snprintf(err, errlen, "mysql: the insert template has %lu markers for the server, "
				 "%u placeholders", mysql_stmt_param_count(mc->tmpl_st), np);
			mysql_stmt_close(mc->tmpl_st);
			mc->tmpl_st = NULL;
			return HQ_EINVAL;
		}
	}
	if (my_grow(mc, (np + MY_COLS - 1) / MY_COLS) != HQ_OK)
		return HQ_ENOMEM;
	int rc = HQ_OK;
	for (size_t i = 0; i < n && rc == HQ_OK; i++) {
		struct arc_tmpl_row r;
		arc_tmpl_row_init(&r, &rows[i]);
		memset(mc->binds, 0, np * sizeof(*mc->binds));
		for (uint32_t k = 0; k < np; k++) {
			size_t len;
			bool bin;
			const char *v = arc_tmpl_param(mc->tmpl, &r, k, &len, &bin);
			if (v)
				my_bind_str(&mc->binds[k], bin ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING, v, len);
			else
				mc->binds[k].buffer_type = MYSQL_TYPE_NULL;
		}
		if (mysql_stmt_bind_param(mc->tmpl_st, mc->binds))
			rc = my_fail(mc, mc->tmpl_st, "bind", err, errlen);
		/* a row the operator's unique key already has was written before
		 * (a retry): skipped, the statement alone rolled back */
		else if (mysql_stmt_execute(mc->tmpl_st) && mysql_stmt_errno(mc->tmpl_st) != ER_DUP_ENTRY)
			rc = my_fail(mc, mc->tmpl_st, "insert template", err, errlen);
		arc_tmpl_row_done(&r);
	}
	return rc;
}

static int my_write(void *db, const struct arc_msg *rows, size_t n, char *err, size_t errlen)
{
	struct my_conn *mc = db;
	if (!n)
		return HQ_OK;
	int rc = mc->tmpl ? my_write_tmpl(mc, rows, n, err, errlen)
			  : my_write_default(mc, rows, n, err, errlen);
	if (rc == HQ_OK && mysql_commit(mc->c))
		rc = my_fail(mc, NULL, "commit", err, errlen);
	if (rc != HQ_OK)
		(void)mysql_rollback(mc->c); /* all or nothing; may fail on a dead link: moot */
	return rc;
}

const struct arc_backend_ops arc_mysql_ops = {
	.name = "mysql",
	.open = my_open,
	.write = my_write,
	.query = my_query,
	.close = my_close,
};
