/* Fuzzes the request checks of tickq-web (web/http.c) with request heads
 * split the way civetweb splits them: a request line "METHOD TARGET
 * HTTP/VERSION" (the target cut at '?' into path and query), then "Name:
 * value" lines up to an empty line. Whatever the bytes, web_http_check()
 * gives a known status, a printable error when it refuses, and, when it
 * accepts, a decoded path that is a clean absolute path (no NUL or control
 * byte, no empty, '.' or '..' segment, valid UTF-8) and unambiguous body
 * framing. The same bytes also go through web_http_path_decode() into a
 * buffer of a size taken from the input, through the timer value parser
 * the web applies to what Redis holds, and as a query string through the
 * API's parameter readers (web/req.c): a value found is NUL-terminated
 * within its buffer, printable-free of control bytes, and an integer read
 * is within its bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/utf8.h"
#include "web/http.h"
#include "web/req.h"
#include "web/web.h"

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_web: %s failed: ", #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define MAX_FIELDS 80 /* more than civetweb keeps, to reach the 431 */

/* A heap copy of len bytes with a NUL after them (ASan sees any read past
 * it). */
static char *copy(const uint8_t *p, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static void check_printable(const char *s, size_t max, const char *what)
{
    size_t n = strnlen(s, max);
    CHECK(n < max, "%s is not NUL-terminated", what);
    for (size_t i = 0; i < n; i++)
        CHECK(s[i] >= 0x20 && s[i] < 0x7f, "%s has byte 0x%02x: %s", what,
              (unsigned char)s[i], s);
}

/* What the server relies on when web_http_check() accepts a request. */
static void check_accepted(const web_http_request *rq, const web_http_verdict *v)
{
    const char *p = v->path;
    size_t n = strnlen(p, sizeof v->path);
    CHECK(n < sizeof v->path && n > 0 && p[0] == '/', "path '%s'", p);
    CHECK(v->error[0] == '\0', "an error with status 0: %s", v->error);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        CHECK(c >= 0x21 && c != 0x7f, "byte 0x%02x in path '%s'", c, p);
        if (c == '/') {
            CHECK(i + 1 == n || p[i + 1] != '/', "empty segment in '%s'", p);
            size_t j = i + 1;
            while (j < n && p[j] != '/')
                j++;
            CHECK(!(j - i == 2 && p[i + 1] == '.'), "'.' segment in '%s'", p);
            CHECK(!(j - i == 3 && p[i + 1] == '.' && p[i + 2] == '.'),
                  "'..' segment in '%s'", p);
        }
    }
    for (size_t i = 0; i < n;) {
        size_t k = tq_utf8_seq((const unsigned char *)p + i, n - i);
        CHECK(k > 0, "invalid UTF-8 in path at %zu", i);
        i += k;
    }
    /* Segments are the client's: no '/' comes from an escape. */
    /* Every byte is there (a NUL would cut it): one per raw byte, one per
     * escape. */
    size_t raw_slashes = 0, slashes = 0, escapes = 0, tlen = strlen(rq->target);
    for (const char *r = rq->target; *r; r++) {
        raw_slashes += *r == '/';
        escapes += *r == '%';
    }
    for (size_t i = 0; i < n; i++)
        slashes += p[i] == '/';
    CHECK(slashes == raw_slashes, "'%s' has %zu '/', its target '%s' %zu", p, slashes,
          rq->target, raw_slashes);
    CHECK(n == tlen - 2 * escapes, "'%s' is %zu bytes from a %zu-byte target '%s'", p, n,
          tlen, rq->target);
    /* Decoding is done once: a decoded path without '%' decodes to itself. */
    if (!strchr(p, '%')) {
        char again[WEB_HTTP_PATH_MAX], err[WEB_HTTP_ERROR_MAX];
        int st = web_http_path_decode(p, n, again, sizeof again, err, sizeof err);
        CHECK(st == 0 && strcmp(again, p) == 0, "'%s' decodes to '%s' (%d %s)", p,
              st ? "" : again, st, st ? err : "");
    }

    int ncl = 0, nte = 0, nhost = 0;
    for (int i = 0; i < rq->nheaders; i++) {
        ncl += strcasecmp(rq->headers[i].name, "Content-Length") == 0;
        nte += strcasecmp(rq->headers[i].name, "Transfer-Encoding") == 0;
        nhost += strcasecmp(rq->headers[i].name, "Host") == 0;
    }
    CHECK(ncl <= 1 && nte <= 1 && !(ncl && nte),
          "%d Content-Length, %d Transfer-Encoding", ncl, nte);
    CHECK(nhost <= 1 && (nhost == 1 || strcmp(rq->version, "1.1") != 0), "%d Host",
          nhost);
    CHECK(rq->nheaders <= WEB_HTTP_HEADERS_MAX, "%d fields", rq->nheaders);
    CHECK(v->body_len >= -1, "body_len %lld", v->body_len);
    CHECK((v->body_len == -1) == (nte == 1), "body_len %lld with %d Transfer-Encoding",
          v->body_len, nte);
    CHECK(v->body_len <= 0 || ncl == 1, "body_len %lld without Content-Length",
          v->body_len);
}

/* Splits data into a request head as civetweb would hand it over and
 * checks web_http_check() on it. */
static void fuzz_head(const uint8_t *data, size_t size)
{
    char *text = copy(data, size);
    char *lines[MAX_FIELDS + 1];
    int nlines = 0;
    char *line = text, *end = text + size;

    /* Lines end at '\n' (a '\r' before it is dropped); an empty line ends
     * the head. A NUL inside a line ends that field's value, as in C. */
    while (line < end && nlines < MAX_FIELDS + 1) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl : end;
        if (stop > line && stop[-1] == '\r')
            stop[-1] = '\0';
        *stop = '\0';
        if (nlines > 0 && line[0] == '\0')
            break;
        lines[nlines++] = line;
        line = stop + 1;
    }
    if (nlines == 0) {
        free(text);
        return;
    }

    /* The request line: three words. */
    char *method = lines[0], *target = "", *version = "", *query = NULL;
    char *sp = strchr(method, ' ');
    if (sp) {
        *sp = '\0';
        target = sp + 1;
        sp = strchr(target, ' ');
        if (sp) {
            *sp = '\0';
            version = sp + 1;
            if (strncmp(version, "HTTP/", 5) == 0)
                version += 5;
        }
    }
    char *q = strchr(target, '?');
    if (q) {
        *q = '\0';
        query = q + 1;
    }

    web_http_header fields[MAX_FIELDS];
    int nfields = 0;
    for (int i = 1; i < nlines; i++) {
        char *colon = strchr(lines[i], ':');
        fields[nfields].name = lines[i];
        fields[nfields].value = "";
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            fields[nfields].value = v;
        }
        nfields++;
    }

    /* Each string is a heap copy of exactly its bytes. */
    char *m = strdup(method), *t = strdup(target), *ver = strdup(version);
    char *qs = query ? strdup(query) : NULL;
    if (!m || !t || !ver || (query && !qs))
        abort();
    web_http_request rq = {m, ver, t, qs, fields, nfields};
    web_http_verdict v;
    int status = web_http_check(&rq, &v);

    CHECK(status == v.status, "returned %d, verdict %d", status, v.status);
    CHECK(status == 0 || status == 400 || status == 414 || status == 431 || status == 505,
          "status %d", status);
    if (status) {
        check_printable(v.error, sizeof v.error, "error");
        CHECK(v.error[0], "status %d without an error", status);
    } else {
        check_accepted(&rq, &v);
    }
    free(m);
    free(t);
    free(ver);
    free(qs);
    free(text);
}

/* The path decoder on the raw bytes, into an output buffer whose size
 * (1 to 64 bytes) is the first byte of the input. */
static void fuzz_path(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    size_t outlen = (size_t)(data[0] % 64) + 1;
    char *raw = copy(data + 1, size - 1);
    char *out = malloc(outlen);
    char err[WEB_HTTP_ERROR_MAX];
    if (!out)
        abort();
    err[0] = '\0';
    int st = web_http_path_decode(raw, size - 1, out, outlen, err, sizeof err);
    CHECK(st == 0 || st == 400 || st == 414, "path decode status %d", st);
    if (st == 0)
        CHECK(strlen(out) < outlen && out[0] == '/', "decoded '%s'", out);
    else
        check_printable(err, sizeof err, "path decode error");
    free(out);
    free(raw);
}

/* The timer value as the web reads it from Redis. */
static void fuzz_timer(const uint8_t *data, size_t size)
{
    char *s = copy(data, size);
    long long seconds = 0;
    if (web_timer_parse(s, size, &seconds) == 0) {
        char text[64];
        CHECK(size <= 20 && strtoll(s, NULL, 10) == seconds, "'%s' read as %lld", s,
              seconds);
        int n = web_timer_text(seconds, text, sizeof text);
        CHECK(n > 0 && (size_t)n < sizeof text, "timer text of %lld: %d", seconds, n);
    }
    free(s);
}

/* The bytes as a query string, read as the API's handlers read it. */
static void fuzz_query(const uint8_t *data, size_t size)
{
    char *q = copy(data, size);
    web_req rq;
    memset(&rq, 0, sizeof rq);
    rq.query = q;
    static const char *const names[] = {"state", "q", "limit", "cursor", "a", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char out[16];
        int found = web_req_query(&rq, names[i], out, sizeof out);
        CHECK(found >= -1 && found <= 1, "query '%s': %d", names[i], found);
        CHECK(memchr(out, '\0', sizeof out) != NULL, "query '%s': not terminated",
              names[i]);
        for (const char *p = out; *p; p++)
            CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "query '%s': byte 0x%02x",
                  names[i], (unsigned char)*p);
        long long v = -7;
        if (web_req_query_int(&rq, names[i], 1, 1000, 50, &v) == 0)
            CHECK(v >= 1 && v <= 1000, "query '%s': %lld out of bounds", names[i], v);
    }
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_query(data, size);
    fuzz_head(data, size);
    fuzz_path(data, size);
    fuzz_timer(data, size);
    return 0;
}
