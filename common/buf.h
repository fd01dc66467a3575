/* A growable output buffer, for text built piece by piece (JSON, the
 * Prometheus text format).
 *
 * Start from {0}; every append keeps p NUL-terminated. An append that
 * cannot grow the buffer sets oom, and every later append does nothing: the
 * caller checks oom once at the end, then frees p in every case. */
#ifndef TQ_BUF_H
#define TQ_BUF_H

#include <stddef.h>

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} tq_buf;

/* Appends n bytes of s. */
void tq_buf_put(tq_buf *b, const char *s, size_t n);

/* Appends the string s. */
void tq_buf_puts(tq_buf *b, const char *s);

/* Writes v in decimal at p (at most 20 bytes, no NUL) and returns the end:
 * for numbers on hot paths, where snprintf costs ten times as much. */
char *tq_fmt_ll(char *p, long long v);

/* Copies the string src into dst (cap > 0 bytes), cut to fit and always
 * NUL-terminated: snprintf(dst, cap, "%s", src) without printf's cost. */
void tq_fmt_copy(char *dst, size_t cap, const char *src);

/* Appends printf output of any length: never cut, since a cut number or
 * string would leave invalid output behind. */
void tq_buf_putf(tq_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
