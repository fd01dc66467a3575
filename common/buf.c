/* A growable output buffer (see common/buf.h). */
#include "common/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tq_buf_put(tq_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n >= b->cap - b->len || !b->p) {
        size_t cap = b->cap ? b->cap : 256;
        while (n >= cap - b->len) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

char *tq_fmt_ll(char *p, long long v)
{
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *p++ = '-';
    while (n)
        *p++ = tmp[--n];
    return p;
}

void tq_fmt_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void tq_buf_puts(tq_buf *b, const char *s)
{
    tq_buf_put(b, s, strlen(s));
}

void tq_buf_putf(tq_buf *b, const char *fmt, ...)
{
    char tmp[64], *p = tmp;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1; /* an encoding error: fail the whole output, never cut it */
        return;
    }
    if ((size_t)n >= sizeof tmp) {
        if (!(p = malloc((size_t)n + 1))) {
            b->oom = 1;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    tq_buf_put(b, p, (size_t)n);
    if (p != tmp)
        free(p);
}
