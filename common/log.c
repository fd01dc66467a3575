/* The logger: formats one line into a stack buffer and writes it at once. */
#include "common/log.h"
#include "common/err.h"
#include "common/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

tq_log_level tq_log_min = TQ_LOG_INFO;
static tq_log_format log_format = TQ_LOG_TEXT;
static const char *log_component = "tickq";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void tq_log_init(tq_log_level level, tq_log_format format, const char *component)
{
    tq_log_min = level;
    log_format = format;
    log_component = component;
}

int tq_log_level_parse(const char *s, tq_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (tq_log_level)i;
            return 0;
        }
    }
    return TQ_EINVAL;
}

/* Appends s to buf as the inside of a JSON string, escaping what JSON
 * requires; invalid UTF-8 (a cut message, bytes from outside) becomes
 * U+FFFD so the line stays valid JSON. Returns the new length, never more
 * than cap - 1. */
static size_t json_escape(char *buf, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        size_t n;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else if (c < 0x80) {
            buf[len++] = (char)c;
        } else if ((n = tq_utf8_seq((const unsigned char *)s, strnlen(s, 4))) != 0) {
            memcpy(buf + len, s, n);
            len += n;
            s += n - 1;
        } else {
            memcpy(buf + len, "\\ufffd", 6);
            len += 6;
        }
    }
    buf[len] = '\0';
    return len;
}

/* Appends s to buf for the text format: control characters are written as
 * escapes (\n, \r, \t, \xNN) so that an event is always one line.
 * Returns the new length, never more than cap - 1. */
static size_t text_escape(char *buf, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n' || c == '\r' || c == '\t') {
            buf[len++] = '\\';
            buf[len++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            len += (size_t)snprintf(buf + len, cap - len, "\\x%02x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    buf[len] = '\0';
    return len;
}

void tq_log_write(tq_log_level level, const char *fmt, ...)
{
    char msg[TQ_LOG_LINE_MAX];
    char line[TQ_LOG_LINE_MAX * 2];
    struct timespec ts;
    struct tm tm;
    char when[32];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);

    size_t len;
    if ((unsigned)level > TQ_LOG_ERROR)
        level = TQ_LOG_ERROR;
    if (log_format == TQ_LOG_JSON) {
        len = (size_t)snprintf(line, sizeof line,
                               "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\","
                               "\"pid\":%d,\"msg\":\"",
                               when, level_names[level], log_component, (int)getpid());
        len = json_escape(line, len, sizeof line - 3, msg);
        memcpy(line + len, "\"}\n", 3);
        len += 3;
    } else {
        n = snprintf(line, sizeof line, "%s %-5s %s[%d] ", when, level_names[level],
                     log_component, (int)getpid());
        len = n < (int)sizeof line ? (size_t)n : sizeof line - 1;
        len = text_escape(line, len, sizeof line - 1, msg);
        line[len++] = '\n';
    }
    /* One write per line; a short write to stderr is not worth a retry loop
     * that could block a worker thread. */
    ssize_t wr = write(STDERR_FILENO, line, len);
    (void)wr;
}
