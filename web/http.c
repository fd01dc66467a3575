/* The request-head checks of tickq-web: target decoding, header syntax and
 * message framing (see web/http.h for the rules and why). */
#include "web/http.h"

#include "common/utf8.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define QUOTE_MAX 48 /* client bytes quoted in an error sentence, with the NUL */

/* Copies at most len bytes of in (stopping at a NUL) into out (QUOTE_MAX
 * bytes) as printable ASCII, '?' for any other byte, "..." when cut: safe
 * to show in an error sentence whatever the client sent. */
static void quote(const char *in, size_t len, char out[QUOTE_MAX])
{
    size_t i = 0, j = 0;
    for (; i < len && in[i] && j + 1 < QUOTE_MAX; i++)
        out[j++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[j] = '\0';
    if (i < len && in[i])
        memcpy(out + QUOTE_MAX - 4, "...", 4);
}

/* Writes a sentence into err and returns status. */
static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(int status, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

int web_http_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 9110 tchar: what a method or a header field name is made of. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

int web_http_path_decode(const char *raw, size_t len, char *out, size_t outlen, char *err,
                         size_t errlen)
{
    char shown[QUOTE_MAX];
    size_t n = 0;

    if (!raw || len == 0 || raw[0] != '/') {
        quote(raw ? raw : "", len, shown);
        return fail(400, err, errlen, "request target '%s' is not a path", shown);
    }
    if (len >= WEB_HTTP_TARGET_MAX)
        return fail(414, err, errlen, "request target of %zu bytes; at most %d", len,
                    WEB_HTTP_TARGET_MAX - 1);
    if (!out || outlen == 0)
        return fail(414, err, errlen, "no room for the path");

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)raw[i];
        size_t at = i; /* where the byte starts, escape or not */
        if (c == '%') {
            int hi = i + 2 < len ? web_http_hex(raw[i + 1]) : -1;
            int lo = i + 2 < len ? web_http_hex(raw[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                quote(raw + i, len - i < 3 ? len - i : 3, shown);
                return fail(400, err, errlen,
                            "path has a bad percent escape '%s' at byte %zu", shown, i);
            }
            c = (unsigned char)(hi * 16 + lo);
            if (c == '/' || c == '\\')
                return fail(400, err, errlen,
                            "path has an encoded '%c' (%%%02X) at byte %zu", c, c, at);
            i += 2;
        }
        if (c == '\0')
            return fail(400, err, errlen, "path has a NUL byte at byte %zu", at);
        if (c < 0x20 || c == 0x7f)
            return fail(400, err, errlen, "path has control byte 0x%02x at byte %zu", c,
                        at);
        if (c == ' ')
            return fail(400, err, errlen, "path has a space at byte %zu", at);
        if (n + 1 >= outlen)
            return fail(414, err, errlen, "path longer than %zu bytes once decoded",
                        outlen - 1);
        out[n++] = (char)c;
    }
    out[n] = '\0';

    /* Segments, on the decoded path so that "%2e%2e" counts as "..". */
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && out[j] != '/')
            j++;
        size_t seg = j - i - 1; /* bytes between this '/' and the next */
        if (seg == 0 && j < n)
            return fail(400, err, errlen, "path has an empty segment ('//')");
        if ((seg == 1 && out[i + 1] == '.') ||
            (seg == 2 && out[i + 1] == '.' && out[i + 2] == '.'))
            return fail(400, err, errlen, "path has a '.' or '..' segment");
        i = j;
    }
    for (size_t i = 0; i < n;) {
        size_t k = tq_utf8_seq((const unsigned char *)out + i, n - i);
        if (k == 0)
            return fail(400, err, errlen, "path is not valid UTF-8 (byte %zu)", i);
        i += k;
    }
    return 0;
}

/* Parses a Content-Length value: decimal digits only (no sign, space, list
 * or exponent), at most 18 of them so that it fits any int64. Returns 0 and
 * the value, or -1. */
static int content_length(const char *s, long long *out)
{
    long long v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 18)
            return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0)
        return -1;
    *out = v;
    return 0;
}

/* A field value may hold visible ASCII, space, tab and bytes >= 0x80
 * (obs-text); no other control byte. Returns the offset of the first bad
 * byte, or -1. */
static long bad_value_byte(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return (long)(p - (const unsigned char *)v);
    return -1;
}

/* The header checks: count, syntax, Host, framing. Returns 0 or a status. */
static int check_headers(const web_http_request *rq, web_http_verdict *out)
{
    char shown[QUOTE_MAX];
    int ncl = 0, nte = 0, nhost = 0;
    const char *cl = NULL, *te = NULL;

    if (rq->nheaders > WEB_HTTP_HEADERS_MAX)
        return fail(431, out->error, sizeof out->error,
                    "too many header fields (%d or more); at most %d", rq->nheaders,
                    WEB_HTTP_HEADERS_MAX);
    for (int i = 0; i < rq->nheaders; i++) {
        const web_http_header *h = &rq->headers[i];
        const char *name = h->name ? h->name : "";
        const char *value = h->value ? h->value : "";
        if (!is_token(name)) {
            quote(name, strlen(name), shown);
            return fail(400, out->error, sizeof out->error,
                        "header field name '%s' is not a token", shown);
        }
        long bad = bad_value_byte(value);
        if (bad >= 0) {
            quote(name, strlen(name), shown);
            return fail(400, out->error, sizeof out->error,
                        "header field %s has control byte 0x%02x in its value", shown,
                        (unsigned char)value[bad]);
        }
        if (strcasecmp(name, "Content-Length") == 0) {
            ncl++;
            cl = value;
        } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            nte++;
            te = value;
        } else if (strcasecmp(name, "Host") == 0) {
            nhost++;
        }
    }

    if (nhost > 1)
        return fail(400, out->error, sizeof out->error, "more than one Host header");
    if (nhost == 0 && strcmp(rq->version, "1.1") == 0)
        return fail(400, out->error, sizeof out->error,
                    "an HTTP/1.1 request needs a Host header");
    if (ncl && nte)
        return fail(400, out->error, sizeof out->error,
                    "both Content-Length and Transfer-Encoding: the body's length is "
                    "ambiguous (request smuggling)");
    if (ncl > 1)
        return fail(400, out->error, sizeof out->error,
                    "more than one Content-Length header");
    if (nte > 1)
        return fail(400, out->error, sizeof out->error,
                    "more than one Transfer-Encoding header");
    if (cl && content_length(cl, &out->body_len) < 0) {
        quote(cl, strlen(cl), shown);
        return fail(400, out->error, sizeof out->error,
                    "Content-Length '%s' is not a length (decimal digits, at most 18)",
                    shown);
    }
    if (te) {
        if (strcasecmp(te, "chunked") != 0) {
            quote(te, strlen(te), shown);
            return fail(400, out->error, sizeof out->error,
                        "Transfer-Encoding '%s' is not supported (only chunked)", shown);
        }
        out->body_len = -1;
    }
    return 0;
}

int web_http_check(const web_http_request *rq, web_http_verdict *out)
{
    char shown[QUOTE_MAX];
    memset(out, 0, sizeof *out);

    const char *version = rq->version ? rq->version : "";
    if (strcmp(version, "1.0") != 0 && strcmp(version, "1.1") != 0) {
        quote(version, strlen(version), shown);
        return out->status =
                   fail(505, out->error, sizeof out->error,
                        "HTTP version '%s' is not supported (1.0 or 1.1)", shown);
    }
    if (!is_token(rq->method) || strlen(rq->method) > 32) {
        quote(rq->method ? rq->method : "", 32, shown);
        return out->status = fail(400, out->error, sizeof out->error,
                                  "method '%s' is not a token", shown);
    }
    web_http_request r = *rq;
    r.version = version;
    int status = check_headers(&r, out);
    if (status)
        return out->status = status;

    const char *target = rq->target ? rq->target : "";
    if (target[0] != '/') {
        quote(target, strlen(target), shown);
        if (strcmp(target, "*") == 0 || strstr(target, "://"))
            return out->status = fail(400, out->error, sizeof out->error,
                                      "request target '%s': only a path is served "
                                      "(origin-form, such as /timer)",
                                      shown);
        return out->status = fail(400, out->error, sizeof out->error,
                                  "request target '%s' is not a path", shown);
    }
    size_t tlen = strlen(target), qlen = rq->query ? strlen(rq->query) : 0;
    if (tlen + (rq->query ? 1 : 0) + qlen >= WEB_HTTP_TARGET_MAX)
        return out->status =
                   fail(414, out->error, sizeof out->error,
                        "request target of %zu bytes; at most %d",
                        tlen + (rq->query ? 1 : 0) + qlen, WEB_HTTP_TARGET_MAX - 1);
    status = web_http_path_decode(target, tlen, out->path, sizeof out->path, out->error,
                                  sizeof out->error);
    if (status) {
        out->path[0] = '\0';
        return out->status = status;
    }
    for (size_t i = 0; i < qlen; i++) {
        unsigned char c = (unsigned char)rq->query[i];
        if (c <= 0x20 || c >= 0x7f) {
            out->path[0] = '\0';
            return out->status = fail(400, out->error, sizeof out->error,
                                      "query string has byte 0x%02x at byte %zu; only "
                                      "printable ASCII (percent-encode the rest)",
                                      c, i);
        }
    }
    return out->status = 0;
}
