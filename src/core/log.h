/*
 * log.h - leveled, thread-safe logging, text or JSON, to stderr or a file.
 *
 * One call writes one whole line with a single write(2), so lines from several
 * worker threads never interleave. Context is given as key=value text in the
 * message; in JSON format the message becomes the "msg" field.
 */
#ifndef HQ_CORE_LOG_H
#define HQ_CORE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERROR, LOG_NONE };
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON };

/* Parse "debug|info|notice|warning|error|none"; returns HQ_OK or HQ_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);

/* Configure the process-wide logger. path NULL or "" or "stderr" = stderr.
 * Returns HQ_OK or HQ_EIO (file cannot be opened; errno set). */
int log_open(enum log_level level, enum log_format fmt, const char *path);
void log_close(void);
/* SIGHUP (main thread): open log.file again by name, so logrotate's rename
 * (or copytruncate) takes effect; lines go to the new file from now on. A
 * no-op on stderr. HQ_OK or HQ_EIO (the old file stays in use). */
int log_reopen(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Node name put on every line (node=...), may be NULL. Copied. */
void log_set_node(const char *node);

void log_printf(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A flood guard for lines a peer can cause at will (refused connections,
 * ACL denials): at most LOG_RL_LINES lines per LOG_RL_WINDOW_MS window;
 * the first line of the next window is told how many were dropped, to say so.
 * Zero-initialised; any thread, lock-free. */
#define LOG_RL_LINES 20
#define LOG_RL_WINDOW_MS 10000
struct log_rl {
	_Atomic int64_t win_ms;   /* start of the current window (monotonic ms) */
	atomic_uint n;            /* lines asked for in it */
	_Atomic uint64_t dropped; /* lines refused since the last window began */
};
/* true: write the line (mention *skipped lines dropped before it if > 0). */
bool log_rl_take(struct log_rl *rl, int64_t now_ms, uint64_t *skipped);

#define log_enabled(lvl) ((lvl) >= log_get_level())
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_printf(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_printf(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_printf(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_printf(LOG_ERROR, __VA_ARGS__)

#endif
