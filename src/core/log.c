/*
 * log.c - the process-wide logger (core layer; its only I/O is its own fd).
 *
 * Each call formats the whole line into a stack buffer and hands it to one
 * write(2), so lines from concurrent threads never interleave; no lock is taken.
 * Over-long messages are cut and end in "...". The level is an atomic and may be
 * changed from any thread at any time. log_open, log_close and log_set_node
 * should be called before worker threads start (a line being written while the
 * file is swapped may be lost, never corrupted into another line).
 *
 * Text lines escape control bytes (a peer's client id cannot forge a line); JSON
 * lines are valid JSON with invalid UTF-8 replaced by U+FFFD.
 */
#include "core/log.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192
#define LOG_NODE_MAX 256

static atomic_int g_level = LOG_INFO;
static atomic_int g_format = LOG_FMT_TEXT;
static atomic_int g_fd = STDERR_FILENO;
static atomic_int g_retired_fd = -1;   /* the file before the last reopen (log_reopen) */
static char g_node[LOG_NODE_MAX]; /* "" = no node; set before threads start */
/* log.file as opened, for log_reopen ("" = stderr); written by log_open and
 * read by log_reopen, both on the main thread */
static char g_path[4096];

static const char *const level_names[] = { "debug", "info", "notice", "warning", "error", "none" };

int log_level_parse(const char *s, enum log_level *out)
{
	for (int i = LOG_DEBUG; i <= LOG_NONE; i++) {
		if (s && strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return HQ_OK;
		}
	}
	return HQ_EINVAL;
}

const char *log_level_name(enum log_level l)
{
	return (int)l >= LOG_DEBUG && l <= LOG_NONE ? level_names[l] : "?";
}

int log_open(enum log_level level, enum log_format fmt, const char *path)
{
	int fd = STDERR_FILENO;
	if (path && *path && strcmp(path, "stderr") != 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			return HQ_EIO;
	}
	atomic_store(&g_level, level);
	atomic_store(&g_format, fmt);
	snprintf(g_path, sizeof(g_path), "%s", fd == STDERR_FILENO ? "" : path);
	int old = atomic_exchange(&g_fd, fd);
	if (old > STDERR_FILENO && old != fd)
		close(old);
	return HQ_OK;
}

int log_reopen(void)
{
	if (!g_path[0])
		return HQ_OK; /* stderr: journald or the service manager rotates */
	int fd = open(g_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return HQ_EIO; /* the old file stays in use */
	int old = atomic_exchange(&g_fd, fd);
	/* Another thread may be writing a line to old right now (it loaded the
	 * descriptor just before the exchange): old is closed only at the next
	 * reopen, when no write can still hold it, and the one before is closed
	 * now. So a line is never lost or cut, and never half in the new file. */
	int retired = atomic_exchange(&g_retired_fd, old != fd ? old : -1);
	if (retired > STDERR_FILENO && retired != fd)
		close(retired);
	return HQ_OK;
}

bool log_rl_take(struct log_rl *rl, int64_t now_ms, uint64_t *skipped)
{
	int64_t win = atomic_load_explicit(&rl->win_ms, memory_order_relaxed);
	*skipped = 0;
	if (now_ms - win >= LOG_RL_WINDOW_MS &&
	    atomic_compare_exchange_strong(&rl->win_ms, &win, now_ms)) {
		/* a new window: this line tells how many the last one dropped */
		atomic_store_explicit(&rl->n, 1, memory_order_relaxed);
		*skipped = atomic_exchange(&rl->dropped, 0);
		return true;
	}
	if (atomic_fetch_add_explicit(&rl->n, 1, memory_order_relaxed) < LOG_RL_LINES)
		return true;
	atomic_fetch_add_explicit(&rl->dropped, 1, memory_order_relaxed);
	return false;
}

void log_close(void)
{
	int old = atomic_exchange(&g_fd, STDERR_FILENO);
	int retired = atomic_exchange(&g_retired_fd, -1);
	g_path[0] = '\0';
	if (old > STDERR_FILENO)
		close(old);
	if (retired > STDERR_FILENO && retired != old)
		close(retired);
}

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&g_level, level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&g_level, memory_order_relaxed);
}

void log_set_node(const char *node)
{
	snprintf(g_node, sizeof(g_node), "%s", node ? node : "");
}

/* Output buffer that never overflows; `full` is set once something was cut. */
struct line {
	char *p;
	size_t n, cap;
	bool full;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (l->full || n > l->cap - l->n) {
		l->full = true;
		return;
	}
	memcpy(l->p + l->n, s, n);
	l->n += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	unsigned cp = c & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Append s escaped: as a JSON string body, or for a text line (control bytes
 * as \n, \t, \xNN; other bytes unchanged). Never splits an escape. */
static void put_escaped(struct line *l, const char *str, bool json)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);
	char tmp[8];
	for (size_t i = 0; i < n && !l->full;) {
		unsigned c = s[i];
		const char *e = NULL;
		switch (c) {
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		case '\b': e = json ? "\\b" : NULL; break;
		case '\f': e = json ? "\\f" : NULL; break;
		case '"': e = json ? "\\\"" : NULL; break;
		case '\\': e = json ? "\\\\" : NULL; break;
		default: break;
		}
		if (e) {
			puts_(l, e);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(tmp, sizeof(tmp), json ? "\\u%04x" : "\\x%02x", c);
			puts_(l, tmp);
			i++;
		} else if (c < 0x80 || !json) {
			put(l, (const char *)s + i, 1);
			i++;
		} else {
			size_t len = utf8_len(s + i, n - i);
			if (len) {
				put(l, (const char *)s + i, len);
				i += len;
			} else {
				puts_(l, "\\ufffd");
				i++;
			}
		}
	}
}

void log_printf(enum log_level level, const char *fmt, ...)
{
	if (level < log_get_level() || level >= LOG_NONE || (int)level < LOG_DEBUG)
		return;
	int saved_errno = errno;

	char msg[LOG_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int mn = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bool cut = mn < 0 || (size_t)mn >= sizeof(msg);
	if (mn < 0)
		msg[0] = '\0';

	struct timespec ts;
	struct tm tm;
	char tbuf[40];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t tn = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(tbuf + tn, sizeof(tbuf) - tn, ".%03ldZ", ts.tv_nsec / 1000000);

	/* 16 bytes kept back for the "..." marker, closing and newline */
	char buf[LOG_LINE_MAX + 512];
	struct line l = { buf, 0, sizeof(buf) - 16, false };
	bool json = atomic_load_explicit(&g_format, memory_order_relaxed) == LOG_FMT_JSON;
	const char *lv = level_names[level];
	if (json) {
		puts_(&l, "{\"time\":\"");
		puts_(&l, tbuf);
		puts_(&l, "\",\"level\":\"");
		puts_(&l, lv);
		if (g_node[0]) {
			puts_(&l, "\",\"node\":\"");
			put_escaped(&l, g_node, true);
		}
		puts_(&l, "\",\"msg\":\"");
		put_escaped(&l, msg, true);
	} else {
		puts_(&l, tbuf);
		puts_(&l, " [");
		puts_(&l, lv);
		puts_(&l, "] ");
		if (g_node[0]) {
			puts_(&l, "node=");
			put_escaped(&l, g_node, false);
			puts_(&l, " ");
		}
		put_escaped(&l, msg, false);
	}
	cut = cut || l.full;
	l.cap = sizeof(buf);
	l.full = false;
	if (cut)
		puts_(&l, "...");
	puts_(&l, json ? "\"}\n" : "\n");

	/* acquire: pairs with the exchange in log_open/log_reopen, so the file
	 * the descriptor names is opened before this thread writes to it */
	int fd = atomic_load_explicit(&g_fd, memory_order_acquire);
	const char *p = buf;
	size_t left = l.n;
	while (left) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		left -= (size_t)w;
	}
	errno = saved_errno;
}
