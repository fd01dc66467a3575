/* Tests of web/http: the checks tickq-web makes on a request head before any
 * route runs (target decoding, header syntax, message framing), fed request
 * heads as civetweb hands them over. Every refusal is checked for its
 * status, for an error sentence that is printable ASCII and names the
 * problem, and for an empty path; every acceptance for its decoded path and
 * declared body length. See tests/fuzz/fuzz_web.c for the same checks on
 * random bytes and tests/integration/test_web_hardening.sh for them through
 * the server. */
#include "tests/support/check.h"

#include <stdio.h>

#include "web/http.h"

/* ---- helpers --------------------------------------------------------------- */

/* s as printable ASCII for a failure message (other bytes as \xNN, cut
 * after 200 bytes). Four buffers in turn: a case's label and the two values
 * of its failure may all be shown at once. */
static const char *shown(const char *s)
{
    static char bufs[4][1024];
    static int turn;
    char *out = bufs[turn];
    size_t j = 0;
    turn = (turn + 1) % 4;
    if (!s)
        return "(null)";
    for (size_t i = 0; s[i] && j + 8 < sizeof bufs[0]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 200) {
            j += (size_t)snprintf(out + j, sizeof bufs[0] - j, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[j++] = (char)c;
        else
            j += (size_t)snprintf(out + j, sizeof bufs[0] - j, "\\x%02x", c);
    }
    out[j] = '\0';
    return out;
}

/* A request head with the given version, target, query and fields; the
 * method is GET. */
static web_http_request request(const char *version, const char *target,
                                const char *query, const web_http_header *h, int n)
{
    web_http_request rq = {"GET", version, target, query, h, n};
    return rq;
}

static const web_http_header host[] = {{"Host", "x"}};

/* GET target?query HTTP/1.1 with a Host header. */
static web_http_request get(const char *target, const char *query)
{
    return request("1.1", target, query, host, 1);
}

/* Runs web_http_check() on a verdict filled with garbage first (every field
 * that it reports must be set), checks that it returns the verdict's status
 * and returns it. */
static int run(const web_http_request *rq, web_http_verdict *v, const char *what)
{
    memset(v, 0x5a, sizeof *v);
    int st = web_http_check(rq, v);
    if (st != v->status)
        fail_msg("%s: web_http_check returned %d, verdict status %d", what, st,
                 v->status);
    return st;
}

/* err is a non-empty NUL-terminated sentence of printable ASCII. */
static void check_error(const char *err, const char *what)
{
    size_t n = strnlen(err, WEB_HTTP_ERROR_MAX);
    if (n == WEB_HTTP_ERROR_MAX)
        fail_msg("%s: the error is not NUL-terminated within %d bytes", what,
                 WEB_HTTP_ERROR_MAX);
    if (n == 0)
        fail_msg("%s: expected an error sentence, got an empty one", what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)err[i];
        if (c < 0x20 || c >= 0x7f)
            fail_msg("%s: expected a printable error, got byte 0x%02x at %zu: \"%s\"",
                     what, c, i, shown(err));
    }
}

/* rq may be served: status 0, the decoded path, body_len, no error. */
static void accepted(const web_http_request *rq, const char *path, long long body_len,
                     const char *what)
{
    web_http_verdict v;
    int st = run(rq, &v, what);
    if (st != 0)
        fail_msg("%s: expected status 0, got %d: \"%.*s\"", what, st,
                 (int)strnlen(v.error, sizeof v.error), v.error);
    if (strnlen(v.path, sizeof v.path) == sizeof v.path)
        fail_msg("%s: the path is not NUL-terminated", what);
    if (strcmp(v.path, path) != 0)
        fail_msg("%s: expected path \"%s\", got \"%s\"", what, shown(path),
                 shown(v.path));
    if (v.body_len != body_len)
        fail_msg("%s: expected body_len %lld, got %lld", what, body_len, v.body_len);
    if (v.error[0] != '\0')
        fail_msg("%s: expected no error with status 0, got \"%.*s\"", what,
                 (int)strnlen(v.error, sizeof v.error), shown(v.error));
}

/* rq is refused with status, a printable error containing needle and no
 * path. The verdict goes to *out if out is not NULL. */
static void refused(const web_http_request *rq, int status, const char *needle,
                    const char *what, web_http_verdict *out)
{
    web_http_verdict v;
    int st = run(rq, &v, what);
    if (st != status)
        fail_msg("%s: expected status %d, got %d (path \"%s\", error \"%s\")", what,
                 status, st, st ? "" : shown(v.path), st ? shown(v.error) : "");
    check_error(v.error, what);
    if (!strstr(v.error, needle))
        fail_msg("%s: expected an error naming \"%s\", got \"%s\"", what, needle,
                 v.error);
    if (v.path[0] != '\0')
        fail_msg("%s: expected no path with status %d, got \"%s\"", what, status,
                 shown(v.path));
    if (out)
        *out = v;
}

/* GET target HTTP/1.1 (no query) is refused with status and needle. */
static void target_refused(const char *target, int status, const char *needle)
{
    web_http_request rq = get(target, NULL);
    refused(&rq, status, needle, shown(target), NULL);
}

/* GET target HTTP/1.1 (no query) is accepted as path. */
static void target_accepted(const char *target, const char *path)
{
    web_http_request rq = get(target, NULL);
    accepted(&rq, path, 0, shown(target));
}

/* GET /timer HTTP/1.1 with the given fields (the caller adds Host). */
static web_http_request with_fields(web_http_header *h, int n)
{
    return request("1.1", "/timer", NULL, h, n);
}

/* web_http_path_decode() of len bytes of raw into outlen bytes. */
static void decode_ok(const char *raw, size_t len, size_t outlen, const char *path)
{
    char out[WEB_HTTP_PATH_MAX + 8], err[WEB_HTTP_ERROR_MAX] = "";
    assert_true(outlen <= sizeof out);
    int st = web_http_path_decode(raw, len, out, outlen, err, sizeof err);
    if (st != 0)
        fail_msg("path_decode(\"%s\", %zu, outlen %zu): expected 0, got %d: \"%s\"",
                 shown(raw), len, outlen, st, err);
    if (strcmp(out, path) != 0)
        fail_msg("path_decode(\"%s\", %zu): expected \"%s\", got \"%s\"", shown(raw), len,
                 shown(path), shown(out));
}

static void decode_refused(const char *raw, size_t len, size_t outlen, int status,
                           const char *needle)
{
    char out[WEB_HTTP_PATH_MAX + 8], err[WEB_HTTP_ERROR_MAX], what[300];
    assert_true(outlen <= sizeof out);
    memset(err, 0x5a, sizeof err);
    snprintf(what, sizeof what, "path_decode(\"%s\", %zu, outlen %zu)", shown(raw), len,
             outlen);
    int st = web_http_path_decode(raw, len, out, outlen, err, sizeof err);
    if (st != status)
        fail_msg("%s: expected %d, got %d", what, status, st);
    check_error(err, what);
    if (!strstr(err, needle))
        fail_msg("%s: expected an error naming \"%s\", got \"%s\"", what, needle, err);
}

/* Fills buf with prefix, then copies of unit while they fit, then 'a', up to len bytes in
 * all, NUL-terminated. */
static char *fill(char *buf, const char *prefix, const char *unit, size_t len)
{
    size_t n = strlen(prefix), u = strlen(unit);
    memcpy(buf, prefix, n);
    while (n + u <= len) {
        memcpy(buf + n, unit, u);
        n += u;
    }
    while (n < len)
        buf[n++] = 'a';
    buf[n] = '\0';
    return buf;
}

/* ---- accepted ---------------------------------------------------------------- */

static void test_plain_routes(void **state)
{
    (void)state;
    /* Clean paths are served as they are, route or not (the 404 is the
     * server's): a trailing '/', dots inside a segment, a raw '\', raw
     * UTF-8. */
    const char *paths[] = {
        "/",           "/timer",       "/api/timer",        "/healthz", "/timer/",
        "/timer.html", "/TIMER",       "/timer\\",          "/...",     "/.well-known/x",
        "/a..b/c.",    "/caf\xc3\xa9", "/-._~!$&'()*+,;=:@"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        target_accepted(paths[i], paths[i]);

    const char *methods[] = {"GET",    "HEAD",
                             "POST",   "OPTIONS",
                             "DELETE", "M23456789012345678901234567890AB"}; /* 32 bytes */
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        web_http_request rq = get("/timer", NULL);
        rq.method = methods[i];
        accepted(&rq, "/timer", 0, methods[i]);
    }
}

static void test_percent_decoding(void **state)
{
    (void)state;
    target_accepted("/%74imer", "/timer");
    target_accepted("/%74%69%6D%65%72", "/timer");
    target_accepted("/%74%69%6d%65%72", "/timer");
    target_accepted("/api%2Dtimer", "/api-timer");
    target_accepted("/%7e", "/~");
    target_accepted("/caf%C3%A9", "/caf\xc3\xa9");
    target_accepted("/%F0%9F%98%80", "/\xf0\x9f\x98\x80");
    /* Decoded once: "%25" is '%', not the start of another escape. */
    target_accepted("/%25", "/%");
    target_accepted("/%252F", "/%2F");
    target_accepted("/%2541", "/%41");
    /* '.' from an escape inside a segment is a plain byte. */
    target_accepted("/a%2eb", "/a.b");
}

static void test_queries(void **state)
{
    (void)state;
    /* The query is never decoded nor used: any printable ASCII goes. */
    const char *queries[] = {
        "",     "a=1&b=2",        "x=%0d%0aSet-Cookie:%20a=b&y=%0aX-Injected:1",
        "%zz%", "/../..//%2F%5C", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        web_http_request rq = get("/timer", queries[i]);
        char what[200];
        snprintf(what, sizeof what, "/timer?%s", shown(queries[i]));
        accepted(&rq, "/timer", 0, what);
    }
}

static void test_http10_without_host(void **state)
{
    (void)state;
    web_http_request rq = request("1.0", "/healthz", NULL, NULL, 0);
    accepted(&rq, "/healthz", 0, "HTTP/1.0 without Host");
    rq = request("1.0", "/timer", NULL, host, 1);
    accepted(&rq, "/timer", 0, "HTTP/1.0 with Host");
    web_http_header h[] = {{"Connection", "close"}, {"Accept", "*/*"}};
    rq = request("1.0", "/timer", "a=1", h, 2);
    accepted(&rq, "/timer", 0, "HTTP/1.0 with fields but no Host");
    web_http_header two[] = {{"Host", "x"}, {"host", "y"}};
    rq = request("1.0", "/timer", NULL, two, 2);
    refused(&rq, 400, "more than one Host", "HTTP/1.0 with two Host", NULL);
}

/* ---- framing ----------------------------------------------------------------- */

static void test_content_length_with_transfer_encoding(void **state)
{
    (void)state;
    web_http_header cl_te[] = {
        {"Host", "x"}, {"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}};
    web_http_header te_cl[] = {
        {"Host", "x"}, {"transfer-encoding", "chunked"}, {"CONTENT-LENGTH", "0"}};
    web_http_verdict v;
    web_http_request rq = with_fields(cl_te, 3);
    refused(&rq, 400, "ambiguous", "Content-Length then Transfer-Encoding", &v);
    TQ_ASSERT_CONTAINS(v.error, "Content-Length");
    TQ_ASSERT_CONTAINS(v.error, "Transfer-Encoding");
    TQ_ASSERT_CONTAINS(v.error, "smuggling");
    rq = with_fields(te_cl, 3);
    refused(&rq, 400, "Content-Length and Transfer-Encoding",
            "Transfer-Encoding then Content-Length (any case)", NULL);
    rq.version = "1.0";
    refused(&rq, 400, "Content-Length and Transfer-Encoding",
            "Content-Length and Transfer-Encoding in HTTP/1.0", NULL);
}

static void test_duplicate_framing_fields(void **state)
{
    (void)state;
    web_http_header cl[] = {
        {"Host", "x"}, {"Content-Length", "0"}, {"Content-Length", "0"}};
    web_http_header cl2[] = {
        {"Host", "x"}, {"Content-Length", "0"}, {"content-length", "5"}};
    web_http_header te[] = {{"Host", "x"},
                            {"Transfer-Encoding", "chunked"},
                            {"Transfer-Encoding", "chunked"}};
    web_http_header hosts[] = {{"Host", "x"}, {"Accept", "*/*"}, {"HOST", "x"}};
    web_http_request rq = with_fields(cl, 3);
    refused(&rq, 400, "more than one Content-Length", "two equal Content-Length", NULL);
    rq = with_fields(cl2, 3);
    refused(&rq, 400, "more than one Content-Length", "two Content-Length", NULL);
    rq = with_fields(te, 3);
    refused(&rq, 400, "more than one Transfer-Encoding", "two Transfer-Encoding", NULL);
    rq = with_fields(hosts, 3);
    refused(&rq, 400, "more than one Host", "two Host", NULL);
}

static void test_content_length_values(void **state)
{
    (void)state;
    struct {
        const char *value;
        long long len;
    } good[] = {{"0", 0},
                {"5", 5},
                {"007", 7},
                {"100000000000", 100000000000LL},
                {"999999999999999999", 999999999999999999LL}}; /* 18 digits */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        web_http_header h[] = {{"Host", "x"}, {"Content-Length", good[i].value}};
        web_http_request rq = with_fields(h, 2);
        accepted(&rq, "/timer", good[i].len, good[i].value);
    }

    const char *bad[] = {"+0",
                         "-1",
                         "",
                         " 5",
                         "5 ",
                         "5,5",
                         "1e3",
                         "0x10",
                         "1000000000000000000", /* 19 digits */
                         "0000000000000000000", /* 19 digits, all zero */
                         "99999999999999999999999",
                         "\xff\xfe"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        web_http_header h[] = {{"Host", "x"}, {"Content-Length", bad[i]}};
        web_http_request rq = with_fields(h, 2);
        char what[100];
        snprintf(what, sizeof what, "Content-Length \"%s\"", shown(bad[i]));
        refused(&rq, 400, "is not a length", what, NULL);
        refused(&rq, 400, "Content-Length", what, NULL);
    }
}

static void test_transfer_encoding_values(void **state)
{
    (void)state;
    web_http_header h[] = {{"Host", "x"}, {"Transfer-Encoding", "chunked"}};
    web_http_request rq = with_fields(h, 2);
    accepted(&rq, "/timer", -1, "Transfer-Encoding chunked");
    rq.version = "1.0";
    rq.headers = h + 1;
    rq.nheaders = 1;
    accepted(&rq, "/timer", -1, "HTTP/1.0 Transfer-Encoding chunked");

    const char *bad[] = {"identity",    "gzip, chunked", "chunked, gzip", "gzip",     "",
                         "chunked;x=1", "chunkedx",      "\xff\x80",      " chunked "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        web_http_header b[] = {{"Host", "x"}, {"Transfer-Encoding", bad[i]}};
        rq = with_fields(b, 2);
        char what[100];
        snprintf(what, sizeof what, "Transfer-Encoding \"%s\"", shown(bad[i]));
        refused(&rq, 400, "Transfer-Encoding", what, NULL);
        refused(&rq, 400, "only chunked", what, NULL);
    }
}

static void test_http11_needs_host(void **state)
{
    (void)state;
    web_http_request rq = request("1.1", "/timer", NULL, NULL, 0);
    refused(&rq, 400, "needs a Host header", "HTTP/1.1 without fields", NULL);
    web_http_header h[] = {{"Connection", "close"}, {"X-Host", "x"}, {"Hostx", "y"}};
    rq = with_fields(h, 3);
    refused(&rq, 400, "Host", "HTTP/1.1 with fields but no Host", NULL);
    web_http_header lower[] = {{"Accept", "*/*"}, {"hOsT", "x"}};
    rq = with_fields(lower, 2);
    accepted(&rq, "/timer", 0, "HTTP/1.1 with hOsT");
}

/* ---- request line ------------------------------------------------------------ */

static void test_versions(void **state)
{
    (void)state;
    const char *bad[] = {"2.0", "1.2", "0.9", "", "HTTP/1.1", "1.1 ", "1.10", "\x01\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        web_http_request rq = request(bad[i], "/timer", NULL, host, 1);
        refused(&rq, 505, "HTTP version", shown(bad[i]), NULL);
    }
    web_http_request rq = request(NULL, "/timer", NULL, host, 1);
    refused(&rq, 505, "is not supported", "NULL version", NULL);
}

static void test_methods(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "GE T",
                         "GET\x01",
                         "G(ET)",
                         "GET/",
                         "G\xc3\xa9T",
                         "M23456789012345678901234567890ABC"}; /* 33 bytes */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        web_http_request rq = get("/timer", NULL);
        rq.method = bad[i];
        refused(&rq, 400, "method", shown(bad[i]), NULL);
        refused(&rq, 400, "is not a token", shown(bad[i]), NULL);
    }
    web_http_request rq = get("/timer", NULL);
    rq.method = NULL;
    refused(&rq, 400, "method", "NULL method", NULL);
}

static void test_target_not_a_path(void **state)
{
    (void)state;
    target_refused("*", 400, "only a path is served");
    target_refused("http://127.0.0.1:5000/timer", 400, "only a path is served");
    target_refused("timer", 400, "is not a path");
    target_refused("", 400, "is not a path");
    target_refused("\\timer", 400, "is not a path");
    web_http_request rq = get(NULL, NULL);
    refused(&rq, 400, "is not a path", "NULL target", NULL);
}

/* ---- paths ------------------------------------------------------------------- */

static void test_path_bytes(void **state)
{
    (void)state;
    /* Raw, with the offset of the byte. */
    target_refused("/ti\rmer", 400, "control byte 0x0d at byte 3");
    target_refused("/ti\nmer", 400, "control byte 0x0a at byte 3");
    target_refused("/timer\r\nX-Injected: yes", 400, "control byte 0x0d at byte 6");
    target_refused("/\x01", 400, "control byte 0x01");
    target_refused("/\x1f", 400, "control byte 0x1f");
    target_refused("/\t", 400, "control byte 0x09");
    target_refused("/\x7f", 400, "control byte 0x7f");
    target_refused("/ti mer", 400, "space at byte 3");
    target_refused("/timer ", 400, "space");
    /* Percent-encoded. */
    target_refused("/timer%00", 400, "NUL byte");
    target_refused("/timer%00.html", 400, "NUL byte");
    target_refused("/timer%0d%0aX-Injected:%20yes", 400, "control byte 0x0d");
    target_refused("/timer%0D", 400, "control byte 0x0d");
    target_refused("/timer%0a", 400, "control byte 0x0a");
    target_refused("/%01", 400, "control byte 0x01");
    target_refused("/%09", 400, "control byte 0x09");
    target_refused("/%1F", 400, "control byte 0x1f");
    target_refused("/%7f", 400, "control byte 0x7f");
    target_refused("/timer%20", 400, "space");
    /* A raw NUL only reaches the decoder with a length. */
    decode_refused("/timer\0.html", 11, WEB_HTTP_PATH_MAX, 400, "NUL byte at byte 6");
    decode_refused("/\0", 2, WEB_HTTP_PATH_MAX, 400, "NUL byte");
}

static void test_dot_segments(void **state)
{
    (void)state;
    const char *bad[] = {"/.",
                         "/..",
                         "/./timer",
                         "/../timer",
                         "/timer/.",
                         "/timer/..",
                         "/timer/../timer",
                         "/api/./timer",
                         "/%2e",
                         "/%2E",
                         "/%2e%2e",
                         "/%2e%2e/timer",
                         "/%2E%2e/timer",
                         "/.%2e",
                         "/%2e.",
                         "/timer/%2E",
                         "/timer/%2e%2e/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        target_refused(bad[i], 400, "'.' or '..' segment");
}

static void test_empty_segments(void **state)
{
    (void)state;
    const char *bad[] = {"//", "//timer", "/api//timer", "/timer//", "///"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        target_refused(bad[i], 400, "empty segment ('//')");
}

static void test_encoded_slash(void **state)
{
    (void)state;
    target_refused("/api%2ftimer", 400, "encoded '/' (%2F) at byte 4");
    target_refused("/api%2Ftimer", 400, "encoded '/'");
    target_refused("/%2F", 400, "encoded '/'");
    target_refused("/%2f%2f", 400, "encoded '/'");
    target_refused("/%5C", 400, "encoded '\\' (%5C) at byte 1");
    target_refused("/timer%5c", 400, "encoded '\\' (%5C) at byte 6");
    target_refused("/api%5Ctimer", 400, "encoded '\\'");
}

static void test_bad_escapes(void **state)
{
    (void)state;
    target_refused("/%", 400, "bad percent escape '%' at byte 1");
    target_refused("/timer%", 400, "bad percent escape '%' at byte 6");
    target_refused("/%z", 400, "bad percent escape '%z'");
    target_refused("/%zz", 400, "bad percent escape '%zz'");
    target_refused("/timer%zz", 400, "bad percent escape");
    target_refused("/%4", 400, "bad percent escape '%4'");
    target_refused("/%4g", 400, "bad percent escape '%4g'");
    target_refused("/%g4", 400, "bad percent escape");
    target_refused("/%%41", 400, "bad percent escape");
    target_refused("/% 1", 400, "bad percent escape");
    target_refused("/%\x01\x02", 400,
                   "bad percent escape '%?"
                   "?'");
    /* An escape cut by the length given to the decoder. */
    decode_refused("/%41", 3, WEB_HTTP_PATH_MAX, 400, "bad percent escape");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    const char *bad[] = {"/tim%C3%28", /* a lead byte then no continuation */
                         "/%ff",       /* never in UTF-8 */
                         "/%ff%fe",       "/%C0%AF", /* overlong '/' */
                         "/%C1%BF",                  /* overlong */
                         "/%E0%80%AF",               /* overlong, 3 bytes */
                         "/%F0%80%80%AF",            /* overlong, 4 bytes */
                         "/%ED%A0%80",               /* a surrogate */
                         "/%F4%90%80%80",            /* past U+10FFFF */
                         "/%C3",                     /* cut */
                         "/%E2%82",                  /* cut */
                         "/%80",                     /* a lone continuation */
                         "/\xff",                    /* raw */
                         "/caf\xc3"};                /* raw, cut */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        target_refused(bad[i], 400, "not valid UTF-8");
}

/* ---- lengths ----------------------------------------------------------------- */

static void test_target_length(void **state)
{
    (void)state;
    static char t[WEB_HTTP_TARGET_MAX + 16], q[3001];
    static char path[WEB_HTTP_PATH_MAX];
    web_http_request rq;

    /* Without a query: at most WEB_HTTP_TARGET_MAX - 1 bytes. Escapes keep
     * the decoded path short: "/" and 682 "%61" are 2047 bytes, 683 decoded. */
    fill(t, "/", "%61", WEB_HTTP_TARGET_MAX - 1);
    TQ_ASSERT_INT(strlen(t), WEB_HTTP_TARGET_MAX - 1);
    fill(path, "/", "a", 683);
    target_accepted(t, path);
    fill(t, "/", "%61", WEB_HTTP_TARGET_MAX); /* ends in a plain 'a' */
    TQ_ASSERT_INT(strlen(t), WEB_HTTP_TARGET_MAX);
    rq = get(t, NULL);
    refused(&rq, 414, "request target of 2048 bytes; at most 2047", "a 2048-byte target",
            NULL);
    fill(t, "/", "%61", WEB_HTTP_TARGET_MAX + 1);
    rq = get(t, NULL);
    refused(&rq, 414, "request target of 2049 bytes", "a 2049-byte target", NULL);

    /* With a query: "/timer?" and the query, WEB_HTTP_TARGET_MAX - 1 bytes
     * in all is served, one more than WEB_HTTP_TARGET_MAX is not. */
    fill(q, "", "q", WEB_HTTP_TARGET_MAX - 1 - strlen("/timer?"));
    rq = get("/timer", q);
    accepted(&rq, "/timer", 0, "a 2047-byte target with a query");
    fill(q, "", "q", WEB_HTTP_TARGET_MAX - strlen("/timer?"));
    rq = get("/timer", q);
    refused(&rq, 414, "request target of 2048 bytes; at most 2047",
            "a 2048-byte target with a query", NULL);
    fill(q, "", "q", WEB_HTTP_TARGET_MAX + 1 - strlen("/timer?"));
    rq = get("/timer", q);
    refused(&rq, 414, "request target of 2049 bytes", "a 2049-byte target with a query",
            NULL);
    fill(q, "", "q", 3000);
    rq = get("/timer", q);
    refused(&rq, 414, "at most 2047", "/timer?<3000 bytes>", NULL);

    /* The decoder on its own. */
    fill(t, "/", "%61", WEB_HTTP_TARGET_MAX - 1);
    decode_ok(t, WEB_HTTP_TARGET_MAX - 1, WEB_HTTP_PATH_MAX, path);
    fill(t, "/", "%61", WEB_HTTP_TARGET_MAX);
    decode_refused(t, WEB_HTTP_TARGET_MAX, WEB_HTTP_PATH_MAX, 414, "2048 bytes");
}

static void test_decoded_path_length(void **state)
{
    (void)state;
    static char t[WEB_HTTP_TARGET_MAX], path[WEB_HTTP_PATH_MAX + 8];

    /* WEB_HTTP_PATH_MAX counts the NUL: 1023 bytes decoded are served. */
    fill(t, "/", "a", WEB_HTTP_PATH_MAX - 1);
    target_accepted(t, t);
    fill(t, "/", "a", WEB_HTTP_PATH_MAX);
    target_refused(t, 414, "path longer than 1023 bytes once decoded");
    /* The same through escapes: 511 "%61" and 511 'a' (2045 bytes raw) are
     * 1023 bytes decoded; one more 'a' is 1024. */
    fill(t, "/", "%61", 1 + 511 * 3);
    strcat(t, fill(path, "", "a", 511));
    fill(path, "/", "a", WEB_HTTP_PATH_MAX - 1);
    target_accepted(t, path);
    strcat(t, "a");
    target_refused(t, 414, "once decoded");

    /* The decoder into a smaller buffer. */
    decode_ok("/timer", 6, 7, "/timer");
    decode_refused("/timer", 6, 6, 414, "path longer than 5 bytes once decoded");
    decode_refused("/%74imer", 8, 6, 414, "once decoded");
    decode_ok("/", 1, 2, "/");
    decode_refused("/", 1, 1, 414, "longer than 0 bytes");
    char err[WEB_HTTP_ERROR_MAX];
    TQ_ASSERT_INT(web_http_path_decode("/timer", 6, NULL, 10, err, sizeof err), 414);
    check_error(err, "path_decode into no buffer");
    TQ_ASSERT_INT(web_http_path_decode("/timer", 6, path, 0, err, sizeof err), 414);
    check_error(err, "path_decode into 0 bytes");
}

/* ---- header fields ----------------------------------------------------------- */

static void test_header_count(void **state)
{
    (void)state;
    /* Fewer than civetweb keeps: at most WEB_HTTP_HEADERS_MAX fields. */
    web_http_header h[80];
    h[0].name = "Host";
    h[0].value = "x";
    for (int i = 1; i < 80; i++) {
        h[i].name = "X-Field";
        h[i].value = "v";
    }
    web_http_request rq = with_fields(h, WEB_HTTP_HEADERS_MAX - 1);
    accepted(&rq, "/timer", 0, "WEB_HTTP_HEADERS_MAX - 1 fields");
    rq = with_fields(h, WEB_HTTP_HEADERS_MAX);
    accepted(&rq, "/timer", 0, "WEB_HTTP_HEADERS_MAX fields");
    web_http_verdict v;
    rq = with_fields(h, WEB_HTTP_HEADERS_MAX + 1);
    refused(&rq, 431, "too many header fields", "WEB_HTTP_HEADERS_MAX + 1 fields", &v);
    TQ_ASSERT_CONTAINS(v.error, "at most 63");
    rq = with_fields(h, 80);
    refused(&rq, 431, "too many header fields", "80 fields", NULL);
    /* The count comes first, before any field is read. */
    h[WEB_HTTP_HEADERS_MAX].name = "Bad(Name)";
    rq = with_fields(h, WEB_HTTP_HEADERS_MAX + 1);
    refused(&rq, 431, "too many", "WEB_HTTP_HEADERS_MAX + 1 fields, one bad", NULL);
}

static void test_header_names(void **state)
{
    (void)state;
    const char *bad[] = {"Bad(Name)", "",         "X H",  "X:Y",  "X\x01",
                         "X\x7f",     "\xc3\xa9", "X\"",  "X/Y",  "X@Y",
                         "{X}",       "X[1]",     "X=Y",  "X,Y",  "X;Y",
                         "Host ",     " Host",    "X\tY", "X\\Y", "X?"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        web_http_header h[] = {{"Host", "x"}, {bad[i], "v"}};
        web_http_request rq = with_fields(h, 2);
        char what[100];
        snprintf(what, sizeof what, "field name \"%s\"", shown(bad[i]));
        refused(&rq, 400, "is not a token", what, NULL);
        refused(&rq, 400, "header field name", what, NULL);
    }
    web_http_header null_name[] = {{"Host", "x"}, {NULL, "v"}};
    web_http_request rq = with_fields(null_name, 2);
    refused(&rq, 400, "is not a token", "a NULL field name", NULL);

    web_http_header good[] = {{"Host", "x"}, {"X-!#$%&'*+-.^_`|~09azAZ", "v"}};
    rq = with_fields(good, 2);
    accepted(&rq, "/timer", 0, "a field name of every tchar");
}

static void test_header_values(void **state)
{
    (void)state;
    const char *bad[] = {"a\x01z", "a\rz", "a\nz",
                         "\x7f",   "\x1f", "x\r\nSet-Cookie: a=b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        web_http_header h[] = {{"Host", "x"}, {"X-Ctl", bad[i]}};
        web_http_request rq = with_fields(h, 2);
        char what[100];
        snprintf(what, sizeof what, "field value \"%s\"", shown(bad[i]));
        refused(&rq, 400, "X-Ctl has control byte", what, NULL);
    }
    web_http_header hv[] = {{"Host", "x\x01"}};
    web_http_request rq = with_fields(hv, 1);
    refused(&rq, 400, "Host has control byte 0x01", "Host \"x\\x01\"", NULL);

    /* Tab, obs-text, empty and NULL values go. */
    web_http_header good[] = {
        {"Host", ""}, {"X-Tab", "a\tb"}, {"X-Obs", "\xff\x80"}, {"X-Null", NULL}};
    rq = with_fields(good, 4);
    accepted(&rq, "/timer", 0, "tab, obs-text, empty and NULL values");
}

static void test_query_bytes(void **state)
{
    (void)state;
    const char *bad[] = {" ",          "a b",  "\t",
                         "\x01",       "\x1f", "\x7f",
                         "\x80",       "\xff", "x=\r\nSet-Cookie:a=b",
                         "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        web_http_request rq = get("/timer", bad[i]);
        char what[100];
        snprintf(what, sizeof what, "/timer?%s", shown(bad[i]));
        refused(&rq, 400, "query string has byte", what, NULL);
    }
    web_http_request rq = get("/timer", "ok=1&x=\x0d");
    refused(&rq, 400, "query string has byte 0x0d at byte 7", "/timer?ok=1&x=\\r", NULL);
}

/* ---- errors and the verdict -------------------------------------------------- */

static void test_errors_quote_hostile_bytes(void **state)
{
    (void)state;
    /* Long runs of bytes that must not reach the client as they are. */
    static char junk[600];
    for (size_t i = 0; i < sizeof junk - 1; i++)
        junk[i] = (char)(0x80 + i % 0x80);
    junk[sizeof junk - 1] = '\0';
    static char ctl[600];
    for (size_t i = 0; i < sizeof ctl - 1; i++)
        ctl[i] = (char)(1 + i % 0x1f);
    ctl[sizeof ctl - 1] = '\0';

    web_http_request rq = request(junk, "/timer", NULL, host, 1);
    refused(&rq, 505, "...", "a 599-byte version", NULL);
    rq = get("/timer", NULL);
    rq.method = junk;
    refused(&rq, 400, "is not a token", "a 599-byte method", NULL);
    rq = get(junk, NULL);
    refused(&rq, 400, "...", "a 599-byte target that is not a path", NULL);
    rq = get(ctl, NULL);
    refused(&rq, 400, "is not a path", "a target of control bytes", NULL);
    web_http_header name[] = {{"Host", "x"}, {ctl, "v"}};
    rq = with_fields(name, 2);
    refused(&rq, 400, "...", "a field name of control bytes", NULL);
    web_http_header cl[] = {{"Host", "x"}, {"Content-Length", junk}};
    rq = with_fields(cl, 2);
    refused(&rq, 400, "...", "a 599-byte Content-Length", NULL);
    web_http_header te[] = {{"Host", "x"}, {"Transfer-Encoding", junk}};
    rq = with_fields(te, 2);
    refused(&rq, 400, "...", "a 599-byte Transfer-Encoding", NULL);
    rq = get("/timer", junk);
    refused(&rq, 400, "query string", "a query of high bytes", NULL);

    /* err may be NULL or 0 bytes: only the status comes back; a short one
     * gets the start of the sentence. */
    char out[10], err[4] = "abc";
    TQ_ASSERT_INT(web_http_path_decode("/%zz", 4, out, sizeof out, NULL, 0), 400);
    TQ_ASSERT_INT(web_http_path_decode("/%zz", 4, out, sizeof out, err, 0), 400);
    TQ_ASSERT_STR(err, "abc");
    TQ_ASSERT_INT(web_http_path_decode("/%zz", 4, out, sizeof out, err, sizeof err), 400);
    TQ_ASSERT_STR(err, "pat");
}

static void test_path_decode_alone(void **state)
{
    (void)state;
    decode_ok("/timer", 6, WEB_HTTP_PATH_MAX, "/timer");
    decode_ok("/timerXYZ", 6, WEB_HTTP_PATH_MAX, "/timer"); /* only len bytes */
    decode_ok("/%74imer", 8, WEB_HTTP_PATH_MAX, "/timer");
    decode_refused(NULL, 0, WEB_HTTP_PATH_MAX, 400, "is not a path");
    decode_refused("", 0, WEB_HTTP_PATH_MAX, 400, "is not a path");
    decode_refused("/timer", 0, WEB_HTTP_PATH_MAX, 400, "is not a path");
    decode_refused("timer", 5, WEB_HTTP_PATH_MAX, 400, "'timer' is not a path");
    decode_refused("/a/../b", 7, WEB_HTTP_PATH_MAX, 400, "'..' segment");
    decode_refused("/a//b", 5, WEB_HTTP_PATH_MAX, 400, "empty segment");
    decode_refused("/%C0%AF", 7, WEB_HTTP_PATH_MAX, 400, "UTF-8");
}

static void test_verdict_is_reset(void **state)
{
    (void)state;
    /* One verdict through a refusal, a chunked request then a plain one:
     * nothing of a call stays for the next. */
    web_http_verdict v;
    web_http_request rq = get("/%zz", NULL);
    TQ_ASSERT_INT(web_http_check(&rq, &v), 400);
    web_http_header te[] = {{"Host", "x"}, {"Transfer-Encoding", "chunked"}};
    rq = with_fields(te, 2);
    TQ_ASSERT_INT(web_http_check(&rq, &v), 0);
    TQ_ASSERT_STR(v.error, "");
    TQ_ASSERT_INT(v.body_len, -1);
    rq = get("/api/timer", NULL);
    TQ_ASSERT_INT(web_http_check(&rq, &v), 0);
    TQ_ASSERT_INT(v.body_len, 0);
    TQ_ASSERT_STR(v.path, "/api/timer");
    rq = get("/timer/../x", NULL);
    TQ_ASSERT_INT(web_http_check(&rq, &v), 400);
    TQ_ASSERT_STR(v.path, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_routes),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_http10_without_host),
        cmocka_unit_test(test_content_length_with_transfer_encoding),
        cmocka_unit_test(test_duplicate_framing_fields),
        cmocka_unit_test(test_content_length_values),
        cmocka_unit_test(test_transfer_encoding_values),
        cmocka_unit_test(test_http11_needs_host),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_target_not_a_path),
        cmocka_unit_test(test_path_bytes),
        cmocka_unit_test(test_dot_segments),
        cmocka_unit_test(test_empty_segments),
        cmocka_unit_test(test_encoded_slash),
        cmocka_unit_test(test_bad_escapes),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_target_length),
        cmocka_unit_test(test_decoded_path_length),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_header_names),
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_query_bytes),
        cmocka_unit_test(test_errors_quote_hostile_bytes),
        cmocka_unit_test(test_path_decode_alone),
        cmocka_unit_test(test_verdict_is_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
