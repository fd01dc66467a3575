/* web_reply: how tickq-web answers. Every response carries Content-Length
 * and "Cache-Control: no-store", and a HEAD request gets the headers
 * without the body. Every error is JSON, {"error": "..."}, whose text is
 * printable ASCII whatever a client or Redis sent. Each function returns
 * the status it sent, as a civetweb request handler does. */
#ifndef TQ_WEB_REPLY_H
#define TQ_WEB_REPLY_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>

#include "web/req.h"

#define WEB_REPLY_CLEAN_MAX 160 /* a path or Redis error quoted in a message */

/* Sends a whole response: status, Content-Type (none when ctype is NULL),
 * the header fields in headers (NULL, or name, value, ..., NULL),
 * Content-Length, Cache-Control, Date and Connection, then len bytes of
 * body (borrowed; none for HEAD), in one write when it fits 8 KiB. The
 * header values must be our own text, never a client's. */
int web_reply(web_req *rq, int status, const char *ctype, const char *body, size_t len,
              const char *const *headers);

/* Closes the connection after the answer (an unread body, a refused
 * head): the answer then says "Connection: close". */
void web_reply_close(web_req *rq);

/* text/plain; charset=utf-8. */
int web_reply_text(web_req *rq, int status, const char *text);

/* obj (taken, released on every path) as compact JSON; NULL (a failed
 * json_pack) answers 500 "out of memory". */
int web_reply_json(web_req *rq, int status, json_t *obj);

/* The same for obj (an object) with one more member, name, whose value raw
 * (rawlen bytes) is JSON text the caller wrote: for a big part of an
 * answer that is cheaper to write than to build. */
int web_reply_json_with(web_req *rq, int status, json_t *obj, const char *name,
                        const char *raw, size_t rawlen);

/* {"error": <printf text>}. */
int web_reply_error(web_req *rq, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The error for a Redis command that failed: r NULL (unreachable: 503), an
 * error reply (WRONGTYPE: 500 naming what, else 503), or a reply of a type
 * the caller did not expect (500). The printf text names the read
 * ("reading tickq:stats"). Does not free r. */
int web_reply_redis_error(web_req *rq, const redisReply *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies in into out (outlen bytes, NUL-terminated) as printable ASCII,
 * '?' for any other byte, "..." when cut: safe in a log line and in JSON. */
void web_reply_clean(const char *in, char *out, size_t outlen);

#endif
