/* web_http: the checks tickq-web makes on a request head before any route
 * runs, apart from civetweb so that they are pure functions of the bytes
 * (tests/fuzz/fuzz_web.c calls them as the server does).
 *
 * civetweb 1.15 parses the request line and the header fields; these
 * functions decide what tickq-web accepts of them:
 *
 * - The request target is origin-form ("/path?query"), decoded here (the
 *   server runs civetweb with decode_url=no so that the raw target reaches
 *   us). A path with a NUL or control byte, a bad or encoded '/' or '\'
 *   escape, a "." or ".." segment, an empty segment ("//"), invalid UTF-8 or
 *   too many bytes is refused: a path is served only if it is exactly a
 *   route once decoded. The query must be printable ASCII; it is not used.
 * - Message framing is unambiguous: at most one Content-Length (digits
 *   only), at most one Transfer-Encoding (exactly "chunked"), never both
 *   (request smuggling), exactly one Host in HTTP/1.1.
 * - Fewer header fields than civetweb keeps (it silently drops those past
 *   MG_MAX_HEADERS, which a proxy in front would still see).
 *
 * Only the API's mutation routes take a request body, and only after the
 * token check (web/web.c): any other request that declares a body is
 * answered and its connection closed without reading it, which leaves no
 * way for a body to be taken for the next request. */
#ifndef TQ_WEB_HTTP_H
#define TQ_WEB_HTTP_H

#include <stddef.h>

#define WEB_HTTP_TARGET_MAX 2048 /* a request target (path, '?', query) is shorter */
#define WEB_HTTP_PATH_MAX 1024   /* longest path once decoded, with the NUL */
#define WEB_HTTP_HEADERS_MAX 63  /* civetweb keeps 64 fields: 64 may mean more */
#define WEB_HTTP_ERROR_MAX 200   /* an error sentence, with the NUL */

/* One header field as civetweb parsed it (both borrowed, NUL-terminated). */
typedef struct {
    const char *name;
    const char *value;
} web_http_header;

/* A request head, every pointer borrowed. */
typedef struct {
    const char *method;  /* as sent, e.g. "GET" */
    const char *version; /* "1.0" or "1.1" */
    const char *target;  /* the request target up to '?', undecoded */
    const char *query;   /* what follows '?', undecoded; NULL when no '?' */
    const web_http_header *headers;
    int nheaders;
} web_http_request;

/* What web_http_check() found. */
typedef struct {
    int status;                     /* 0: may be served; else the 4xx/5xx to answer */
    long long body_len;             /* declared body: 0 none, > 0 Content-Length,
                                       -1 chunked */
    char path[WEB_HTTP_PATH_MAX];   /* the decoded path when status is 0 */
    char error[WEB_HTTP_ERROR_MAX]; /* a sentence for the client when status
                                       is not 0: printable ASCII */
} web_http_verdict;

/* Checks a request head (see the top of this file) and fills *out. Returns
 * out->status: 0 when the request may go on to route lookup, else 400 (bad
 * framing, target or header), 414 (target too long), 431 (too many header
 * fields) or 505 (HTTP version), with a sentence in out->error that names
 * the problem. Reads nothing but rq. */
int web_http_check(const web_http_request *rq, web_http_verdict *out);

/* Decodes the path of a request target: raw is len bytes (not necessarily
 * NUL-terminated) that must start with '/'; the decoded path goes into out
 * (outlen bytes, NUL-terminated). Returns 0, or 400 or 414 with a sentence
 * in err (errlen bytes). Refuses what web_http_check() refuses in a path. */
int web_http_path_decode(const char *raw, size_t len, char *out, size_t outlen, char *err,
                         size_t errlen);

/* The value of a hexadecimal digit (either case), or -1. */
int web_http_hex(char c);

#endif
