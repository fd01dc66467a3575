/* How tickq-web answers: whole responses with Content-Length, JSON bodies
 * and JSON errors (see web/reply.h). */
#include "web/reply.h"

#include "common/err.h"
#include "common/log.h"

#include <civetweb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MSG_MAX 768 /* an error sentence, with the NUL */

void web_reply_clean(const char *in, char *out, size_t outlen)
{
    size_t i = 0;
    if (outlen == 0)
        return;
    if (!in)
        in = "";
    for (; *in && i + 1 < outlen; in++)
        out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    out[i] = '\0';
    if (*in && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
}

static int is_head(const web_req *rq)
{
    return rq->method && strcmp(rq->method, "HEAD") == 0;
}

/* civetweb 1.15 writes the request's version into the status line as the
 * client sent it: after a malformed request line that is whatever bytes
 * followed the target ("HTTP/HTTP/1.1 extra\r\nHost: ..."), and "2.0" for
 * an HTTP/2.0 request. An answer's status line says 1.0 or 1.1, our own
 * version, whatever the request said: the version is set to "1.1" unless it
 * is exactly "1.0" or "1.1" (request_info is the connection's own struct; the
 * pointer is never freed, so a static string is safe there). */
static void sane_version(struct mg_connection *conn)
{
    struct mg_request_info *ri = (struct mg_request_info *)mg_get_request_info(conn);
    if (ri && (!ri->http_version || (strcmp(ri->http_version, "1.0") != 0 &&
                                     strcmp(ri->http_version, "1.1") != 0)))
        ri->http_version = "1.1";
}

void web_reply_close(web_req *rq)
{
    rq->close = 1;
    mg_disable_connection_keep_alive(rq->conn);
}

/* 1 when the comma-separated list (a Connection header) holds token,
 * compared without case, the whitespace around each item ignored. */
static int has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = list; *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(p, token, tl) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* Whether the connection stays open after this answer, as civetweb decides
 * it (HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
 * "Connection: keep-alive"; the header a list of tokens); when not,
 * civetweb is told too, so that the header and what happens agree. */
static int keep_alive(web_req *rq)
{
    if (rq->close)
        return 0;
    const struct mg_request_info *ri = mg_get_request_info(rq->conn);
    const char *c = mg_get_header(rq->conn, "Connection");
    int keep = c ? has_token(c, "keep-alive")
                 : ri && ri->http_version && strcmp(ri->http_version, "1.1") == 0;
    if (c && has_token(c, "close"))
        keep = 0;
    if (!keep)
        web_reply_close(rq);
    return keep;
}

int web_reply(web_req *rq, int status, const char *ctype, const char *body, size_t len,
              const char *const *headers)
{
    /* The head and a small body leave in one write: civetweb's own header
     * functions write each line apart, which with TCP_NODELAY is a packet
     * (and a system call) a line. */
    char buf[8192], date[64];
    size_t used = 0;
    int n;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    sane_version(rq->conn);
    const struct mg_request_info *ri = mg_get_request_info(rq->conn);
    const char *reason = mg_get_response_code_text(rq->conn, status);
    n = snprintf(buf, sizeof buf, "HTTP/%s %d %s\r\n", ri->http_version, status,
                 reason ? reason : "");
    used = n > 0 ? (size_t)n : 0;
    if (ctype)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "Content-Type: %s\r\n",
                                 ctype);
    for (; headers && headers[0] && headers[1] && used < sizeof buf; headers += 2)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s: %s\r\n", headers[0],
                                 headers[1]);
    char clen[48] = ""; /* a 204 has no Content-Length (RFC 9110 8.6) */
    if (status != 204)
        snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", len);
    if (used < sizeof buf)
        used += (size_t)snprintf(buf + used, sizeof buf - used,
                                 "%sCache-Control: no-store\r\nDate: %s\r\n"
                                 "Connection: %s\r\n\r\n",
                                 clen, date, keep_alive(rq) ? "keep-alive" : "close");
    if (used >= sizeof buf) {
        tq_error("a %d response head over %zu bytes: not sent", status, sizeof buf);
        web_reply_close(rq);
        return status;
    }
    if (is_head(rq))
        len = 0;
    if (len && len <= sizeof buf - used) {
        memcpy(buf + used, body, len);
        used += len;
        len = 0;
    }
    mg_write(rq->conn, buf, used);
    if (len)
        mg_write(rq->conn, body, len);
    return status;
}

int web_reply_text(web_req *rq, int status, const char *text)
{
    return web_reply(rq, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

int web_reply_json(web_req *rq, int status, json_t *obj)
{
    static const char fallback[] = "{\"error\":\"out of memory\"}";
    char *body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!body)
        return web_reply(rq, 500, "application/json", fallback, sizeof fallback - 1,
                         NULL);
    int rc = web_reply(rq, status, "application/json", body, strlen(body), NULL);
    free(body);
    return rc;
}

int web_reply_json_with(web_req *rq, int status, json_t *obj, const char *name,
                        const char *raw, size_t rawlen)
{
    char *body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    size_t len = body ? strlen(body) : 0, nl = strlen(name);
    char *all = len >= 2 ? malloc(len + nl + rawlen + 8) : NULL;
    if (!all) {
        free(body);
        return web_reply_json(rq, status, NULL);
    }
    /* "{...}" becomes "{...,"name":raw}" ("{"name":raw}" when empty). */
    memcpy(all, body, len - 1);
    size_t at = len - 1;
    if (len > 2)
        all[at++] = ',';
    all[at++] = '"';
    memcpy(all + at, name, nl);
    at += nl;
    all[at++] = '"';
    all[at++] = ':';
    memcpy(all + at, raw, rawlen);
    at += rawlen;
    all[at++] = '}';
    int rc = web_reply(rq, status, "application/json", all, at, NULL);
    free(all);
    free(body);
    return rc;
}

int web_reply_error(web_req *rq, int status, const char *fmt, ...)
{
    char raw[MSG_MAX], msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    web_reply_clean(raw, msg, sizeof msg);
    return web_reply_json(rq, status, json_pack("{s:s}", "error", msg));
}

int web_reply_redis_error(web_req *rq, const redisReply *r, const char *fmt, ...)
{
    char what[MSG_MAX / 2], shown[WEB_REPLY_CLEAN_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!r)
        return web_reply_error(
            rq, 503, "%s: %s%s", what,
            rq->redis ? tq_strerror(TQ_EREDIS) : "no redis connection for this thread",
            rq->unanswered ? " (redis got the change but did not answer "
                             "in time: it may have been made; see "
                             "/api/audit)"
                           : "");
    if (r->type == REDIS_REPLY_ERROR) {
        web_reply_clean(r->str, shown, sizeof shown);
        return web_reply_error(rq, strncmp(r->str, "WRONGTYPE", 9) == 0 ? 500 : 503,
                               "%s: %s", what, shown);
    }
    return web_reply_error(rq, 500, "%s: unexpected reply type %d", what, r->type);
}
