/* The one logger: one line per event on stderr.
 *
 * A line carries the time in milliseconds (UTC), the level, the component
 * ("beat", "worker", "web") with the process id, and the message; in the json
 * format the same fields are the keys ts, level, component, pid, msg. Each
 * line is written with a single write(2), so lines from several threads never
 * interleave. tq_log() checks the level before it evaluates its arguments. */
#ifndef TQ_LOG_H
#define TQ_LOG_H

#include <stdbool.h>

typedef enum {
    TQ_LOG_DEBUG = 0,
    TQ_LOG_INFO = 1,
    TQ_LOG_WARN = 2,
    TQ_LOG_ERROR = 3,
} tq_log_level;

typedef enum {
    TQ_LOG_TEXT = 0,
    TQ_LOG_JSON = 1,
} tq_log_format;

/* The longest line written; longer messages are cut, with "..." at the end. */
#define TQ_LOG_LINE_MAX 2048

/* The level below which tq_log() does nothing. Set by tq_log_init(). */
extern tq_log_level tq_log_min;

/* Sets the level, format and component name (borrowed: a string literal).
 * Call once, before any thread logs. */
void tq_log_init(tq_log_level level, tq_log_format format, const char *component);

/* Parses "debug", "info", "warn" or "error"; returns 0 or TQ_EINVAL. */
int tq_log_level_parse(const char *s, tq_log_level *out);

/* Formats and writes one line; use the tq_log() macro instead. */
void tq_log_write(tq_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tq_log(level, ...)                                                               \
    do {                                                                                 \
        if ((level) >= tq_log_min)                                                       \
            tq_log_write((level), __VA_ARGS__);                                          \
    } while (0)

#define tq_debug(...) tq_log(TQ_LOG_DEBUG, __VA_ARGS__)
#define tq_info(...) tq_log(TQ_LOG_INFO, __VA_ARGS__)
#define tq_warn(...) tq_log(TQ_LOG_WARN, __VA_ARGS__)
#define tq_error(...) tq_log(TQ_LOG_ERROR, __VA_ARGS__)

#endif
