/*
 * log.h - leveled, thread-safe logging, text or JSON, to stderr or a file.
 *
 * One call writes one whole line with a single write(2), so lines from several
 * worker threads never interleave. Context is given as key=value text in the
 * message; in JSON format the message becomes the "msg" field.
 */
#ifndef HQ_CORE_LOG_H
#define HQ_CORE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERROR, LOG_NONE };
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON };

/* Parse "debug|info|notice|warning|error|none"; returns HQ_OK or HQ_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l);

/* Configure the process-wide logger. path NULL or "" or "stderr" = stderr.
 * Returns HQ_OK or HQ_EIO (file cannot be opened; errno set). */
int log_open(enum log_level level, enum log_format fmt, const char *path);
void log_close(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Node name put on every line (node=...), may be NULL. Copied. */
void log_set_node(const char *node);

void log_printf(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_enabled(lvl) ((lvl) >= log_get_level())
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_printf(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_printf(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_printf(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_printf(LOG_ERROR, __VA_ARGS__)

#endif
