/* The live event stream, GET /api/events: P:events as Server-Sent Events
 * (see web/sse.h for what a client sees). */
#include "web/sse.h"

#include "web/reply.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/utf8.h"

#include <civetweb.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_ID_MAX 48   /* "<u64>-<u64>" with the NUL is at most 42 */
#define FILTER_MAX 512     /* a decoded ?type=, ?queue= or ?task=, with the NUL */
#define READ_COUNT "100"   /* entries one XREAD returns at most */
#define BACKOFF_MIN_MS 100 /* a retry after a failed read waits at least this */

/* What a client asked to see; a "" member filters nothing. */
typedef struct {
    char types[FILTER_MAX]; /* event names, comma-separated */
    char queue[FILTER_MAX];
    char task[FILTER_MAX];
} sse_filter;

#define POLL_MS 200             /* a read that found nothing waits this long */
#define STREAMS_REFRESH_MS 5000 /* how often new queues' streams are looked for */
#define STREAMS_MAX (WEB_REQ_QUEUES_MAX + 1)

/* One Redis stream read: the global P:{@}:events or a queue's. */
typedef struct {
    char key[TQ_KEYS_MAX];
    char cursor[STREAM_ID_MAX]; /* read after this entry */
} sse_source;

/* One event stream being served. */
typedef struct {
    web_req *rq;
    sse_filter filter;
    char cursor[STREAM_ID_MAX]; /* where a new source starts; "" until known */
    sse_source *src;            /* STREAMS_MAX of them */
    int nsrc;
    int64_t refresh_ms;    /* monotonic: when to look for new queues */
    int64_t last_write_ms; /* monotonic: when the client last got bytes */
    int gone;              /* a write failed: the client went away */
} sse_stream;

/* ---- checks on what the client sent ------------------------------------ */

/* 1 when s[0..len) is 1 to 20 decimal digits whose value fits 64 bits. */
static int is_u64(const char *s, size_t len)
{
    static const char max[] = "18446744073709551615";
    if (len == 0 || len > sizeof max - 1)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return len < sizeof max - 1 || memcmp(s, max, len) <= 0;
}

/* 1 when s is a full stream id, "<ms>-<seq>", as Redis gives them. */
static int is_stream_id(const char *s)
{
    const char *dash = strchr(s, '-');
    return dash && is_u64(s, (size_t)(dash - s)) && is_u64(dash + 1, strlen(dash + 1));
}

/* Reads the start position and the filters. Returns 0, or the 400 it
 * answered. */
static int read_request(sse_stream *st)
{
    web_req *rq = st->rq;
    static const struct {
        const char *name;
        size_t off;
    } params[] = {
        {"type", offsetof(sse_filter, types)},
        {"queue", offsetof(sse_filter, queue)},
        {"task", offsetof(sse_filter, task)},
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        char *out = (char *)&st->filter + params[i].off;
        if (web_req_query(rq, params[i].name, out, FILTER_MAX) < 0)
            return web_reply_error(rq, 400,
                                   "?%s=: badly escaped, or longer than %d bytes",
                                   params[i].name, FILTER_MAX - 1);
    }

    /* The header is what EventSource sends on a reconnect, so it is newer
     * than a ?last_event_id= that the page was first opened with. */
    char given[STREAM_ID_MAX];
    const char *from = "Last-Event-ID";
    const char *h = mg_get_header(rq->conn, "Last-Event-ID");
    int found;
    if (h && h[0]) {
        found = strlen(h) < sizeof given ? 1 : -1;
        if (found > 0)
            memcpy(given, h, strlen(h) + 1);
    } else {
        from = "?last_event_id=";
        found = web_req_query(rq, "last_event_id", given, sizeof given);
    }
    if (found < 0 || (found > 0 && given[0] && !is_stream_id(given))) {
        char shown[WEB_REPLY_CLEAN_MAX];
        web_reply_clean(found < 0 ? (h && h[0] ? h : "(too long)") : given, shown,
                        sizeof shown);
        return web_reply_error(
            rq, 400, "%s: '%s' is not a stream id such as 1764096000000-0", from, shown);
    }
    if (found > 0)
        snprintf(st->cursor, sizeof st->cursor, "%s", given);
    return 0;
}

/* ---- one event ----------------------------------------------------------- */

/* 1 when the comma-separated list has the item v (len bytes). */
static int list_has(const char *list, const char *v, size_t len)
{
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && p[m - 1] == ' ')
            m--;
        if (m > 0 && m == len && memcmp(p, v, len) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* The value of field name in an entry's field list (pairs of strings), or
 * NULL when absent, empty or not a string. */
static const redisReply *field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && strcmp(f->str, name) == 0)
            return v->type == REDIS_REPLY_STRING && v->len ? v : NULL;
    }
    return NULL;
}

/* 1 when the string reply v holds exactly the bytes of s. */
static int same(const redisReply *v, const char *s)
{
    return v->len == strlen(s) && memcmp(v->str, s, v->len) == 0;
}

/* 1 when the event passes the filter: each filter that is set needs the
 * field, with the same bytes (one of the names, for type). */
static int matches(const sse_filter *f, const redisReply *fields)
{
    const redisReply *v;
    if (f->types[0] &&
        (!(v = field(fields, "event")) || !list_has(f->types, v->str, v->len)))
        return 0;
    if (f->queue[0] && (!(v = field(fields, "queue")) || !same(v, f->queue)))
        return 0;
    if (f->task[0] && (!(v = field(fields, "task")) || !same(v, f->task)))
        return 0;
    return 1;
}

/* A JSON string of len bytes of s, with U+FFFD for each byte that does not
 * start a valid UTF-8 sequence (jansson refuses those). New, or NULL when
 * out of memory. */
static json_t *utf8_string(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j || len == 0)
        return j;
    char *fixed = malloc(len * 3 + 1);
    if (!fixed)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t k = tq_utf8_seq((const unsigned char *)s + i, len - i);
        if (k == 0) {
            memcpy(fixed + n, "\xEF\xBF\xBD", 3);
            n += 3;
            i++;
        } else {
            memcpy(fixed + n, s + i, k);
            n += k;
            i += k;
        }
    }
    j = json_stringn(fixed, n);
    free(fixed);
    return j;
}

/* The JSON value of one field: "ts" as an integer and "runtime" as a
 * number when they hold one (as every writer of P:events writes them), any
 * other field, or a value that is no such number, as a string. */
static json_t *field_value(const char *name, const redisReply *v)
{
    if (strcmp(name, "ts") == 0 && v->len <= 18 && strspn(v->str, "0123456789") == v->len)
        return json_integer(strtoll(v->str, NULL, 10));
    if (strcmp(name, "runtime") == 0 && v->len < 32 &&
        strspn(v->str, "0123456789.eE+-") == v->len) {
        char *end;
        errno = 0;
        double d = strtod(v->str, &end);
        if (end == v->str + v->len && errno == 0 && isfinite(d))
            return json_real(d);
    }
    return utf8_string(v->str, v->len);
}

/* Writes len bytes to the client; a failure marks it gone. Returns 0 or -1. */
static int send_bytes(sse_stream *st, const char *buf, size_t len)
{
    if (st->gone || mg_write(st->rq->conn, buf, len) != (int)len) {
        st->gone = 1;
        return -1;
    }
    st->last_write_ms = tq_clock_mono_ms();
    return 0;
}

/* Sends one entry (its id and its field list) as an event. Returns 0, or -1
 * when the client is gone or memory ran out (the stream then ends: a
 * skipped event would be a silent gap). */
static int send_event(sse_stream *st, const char *id, const redisReply *fields)
{
    /* A field whose name jansson refuses (not UTF-8) is left out rather
     * than ending the stream; json_object_set_new frees the value then. */
    json_t *obj = json_object();
    for (size_t i = 0; obj && i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i], *v = fields->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING && v->len)
            json_object_set_new(obj, f->str, field_value(f->str, v));
    }
    char *data = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(obj);
    if (!data) {
        tq_error("event stream to %s: out of memory for event %s; closing it",
                 st->rq->remote, id);
        return -1;
    }
    /* An event name is one line: anything but printable ASCII is replaced
     * (jansson already escapes line breaks inside the JSON). */
    char name[WEB_REPLY_CLEAN_MAX] = "";
    const redisReply *ev = field(fields, "event");
    if (ev)
        web_reply_clean(ev->str, name, sizeof name);
    size_t cap = strlen(id) + strlen(name) + strlen(data) + 32;
    char *text = malloc(cap);
    int rc = -1;
    if (text) {
        int n = snprintf(text, cap, "id: %s\n%s%s%sdata: %s\n\n", id,
                         name[0] ? "event: " : "", name, name[0] ? "\n" : "", data);
        rc = n > 0 && (size_t)n < cap ? send_bytes(st, text, (size_t)n) : -1;
    } else {
        tq_error("event stream to %s: out of memory for event %s; closing it",
                 st->rq->remote, id);
    }
    free(text);
    free(data);
    return rc;
}

/* Ends the stream with one "error" event whose data is {"error": why}. */
static void send_error(sse_stream *st, const char *why)
{
    char shown[TQ_KEYS_MAX + WEB_REPLY_CLEAN_MAX + 64];
    web_reply_clean(why, shown, sizeof shown);
    tq_error("event stream to %s: %s; closing it", st->rq->remote, shown);
    json_t *obj = json_pack("{s:s}", "error", shown);
    char *data = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    char text[2 * sizeof shown + 64]; /* JSON escapes at most double it */
    int n = snprintf(text, sizeof text, "event: error\ndata: %s\n\n",
                     data ? data : "{\"error\":\"out of memory\"}");
    free(data);
    if (n > 0 && (size_t)n < sizeof text)
        send_bytes(st, text, (size_t)n);
}

/* ---- reading P:events ------------------------------------------------- */

/* What one read did. */
enum {
    READ_OK = 0,     /* events sent (maybe none) */
    READ_RETRY = 1,  /* Redis cannot be read now: wait the backoff, try again */
    READ_FATAL = -1, /* the stream is over (error sent, or the client gone) */
};

/* Handles a reply that is no answer (r borrowed) about key: NULL and
 * transient errors (LOADING, BUSY, a failover) are retried; a wrong type,
 * any other error and a reply of the wrong shape end the stream with an
 * error event, since retrying cannot cure them. Returns READ_RETRY or
 * READ_FATAL. */
static int read_failed(sse_stream *st, const redisReply *r, const char *what,
                       const char *key)
{
    char why[TQ_KEYS_MAX + WEB_REPLY_CLEAN_MAX + 64], shown[WEB_REPLY_CLEAN_MAX];
    if (!r)
        return READ_RETRY;
    if (r->type == REDIS_REPLY_ERROR) {
        web_reply_clean(r->str, shown, sizeof shown);
        if (strncmp(r->str, "WRONGTYPE", 9) != 0 && strncmp(r->str, "ERR", 3) != 0) {
            tq_warn("event stream to %s: %s %s: %s; retrying", st->rq->remote, what, key,
                    shown);
            return READ_RETRY;
        }
        snprintf(why, sizeof why, "%s %s: %s", what, key, shown);
    } else if (r->type == REDIS_REPLY_ARRAY) {
        snprintf(why, sizeof why, "%s %s: a malformed reply", what, key);
    } else {
        snprintf(why, sizeof why, "%s %s: unexpected reply type %d", what, key, r->type);
    }
    send_error(st, why);
    return READ_FATAL;
}

/* Sets the cursor to Redis' clock now (TIME), so that "only new events"
 * survives a reconnect to Redis: a concrete id, unlike XREAD's "$",
 * misses nothing added in between, in any of the streams. */
static int read_start(sse_stream *st)
{
    const char *argv[] = {"TIME"};
    redisReply *r = web_req_redis(st->rq, 1, argv, NULL);
    int rc = READ_OK;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        long long ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
                       strtoll(r->element[1]->str, NULL, 10) / 1000;
        snprintf(st->cursor, sizeof st->cursor, "%lld-0", ms > 0 ? ms - 1 : 0);
    } else {
        rc = read_failed(st, r, "reading the time of", "the server");
    }
    freeReplyObject(r);
    return rc;
}

/* Makes the list of sources: the queue of ?queue=, or the global stream
 * and every queue's; a source new to the list starts at the stream's
 * cursor. Returns READ_OK or READ_RETRY. */
static int read_sources(sse_stream *st)
{
    web_req *rq = st->rq;
    char(*names)[TQ_CONFIG_NAME_MAX] = NULL;
    int n;
    if (st->filter.queue[0]) {
        if (st->nsrc)
            return READ_OK;
        if (!tq_config_name_ok(st->filter.queue))
            return READ_OK; /* no queue has that name: nothing matches */
        n = 1;
    } else {
        names = calloc(WEB_REQ_QUEUES_MAX, sizeof *names);
        if (!names || (n = web_req_queues(rq, names)) < 0) {
            free(names);
            return READ_RETRY;
        }
    }
    for (int i = -1; i < n && st->nsrc < STREAMS_MAX; i++) {
        char key[TQ_KEYS_MAX];
        if (i < 0 && st->filter.queue[0])
            continue; /* the workers' events have no queue */
        const char *q = i < 0 ? NULL : st->filter.queue[0] ? st->filter.queue : names[i];
        if (web_req_key(rq, TQ_KEY_EVENTS, q, NULL, key) < 0)
            continue;
        int k = 0;
        while (k < st->nsrc && strcmp(st->src[k].key, key) != 0)
            k++;
        if (k == st->nsrc) {
            snprintf(st->src[k].key, sizeof st->src[k].key, "%s", key);
            snprintf(st->src[k].cursor, sizeof st->src[k].cursor, "%s", st->cursor);
            st->nsrc++;
        }
    }
    free(names);
    st->refresh_ms = tq_clock_mono_ms() + STREAMS_REFRESH_MS;
    return READ_OK;
}

/* 1 when stream id a comes before b (both checked by is_stream_id). */
static int id_before(const char *a, const char *b)
{
    unsigned long long am = strtoull(a, NULL, 10), bm = strtoull(b, NULL, 10);
    if (am != bm)
        return am < bm;
    return strtoull(strchr(a, '-') + 1, NULL, 10) <
           strtoull(strchr(b, '-') + 1, NULL, 10);
}

/* One entry read, for the merge. */
typedef struct {
    const redisReply *e;
    int src;
} sse_entry;

/* Reads what is new after each source's cursor (one pipeline, no blocking:
 * the sources may live on several cluster nodes) and sends the entries
 * that pass the filter, all sources merged in id order; each cursor moves
 * past every entry read, sent or not. Waits POLL_MS when nothing came. */
static int read_events(sse_stream *st)
{
    if ((!st->nsrc || tq_clock_mono_ms() >= st->refresh_ms) &&
        read_sources(st) == READ_RETRY)
        return READ_RETRY;
    int n = st->nsrc;
    if (n == 0) {
        tq_clock_sleep_us(POLL_MS * 1000);
        return READ_OK;
    }
    const char *(*cmd)[6] = calloc((size_t)n, sizeof *cmd);
    const char *const **cmds = calloc((size_t)n, sizeof *cmds);
    int *ac = calloc((size_t)n, sizeof *ac);
    redisReply **r = calloc((size_t)n, sizeof *r);
    sse_entry *all = NULL;
    int rc = READ_OK;
    if (!cmd || !cmds || !ac || !r) {
        send_error(st, "out of memory");
        rc = READ_FATAL;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *c[] = {"XREAD",   "COUNT",        READ_COUNT,
                           "STREAMS", st->src[i].key, st->src[i].cursor};
        memcpy(cmd[i], c, sizeof c);
        cmds[i] = cmd[i];
        ac[i] = 6;
    }
    if (web_req_pipeline(st->rq, n, ac, cmds, NULL, r) < 0) {
        memset(r, 0, sizeof *r * (size_t)n);
        rc = READ_RETRY;
        goto out;
    }
    /* [[key, [[id, [field, value, ...]], ...]]] per source, or nil. */
    size_t total = 0;
    for (int i = 0; i < n && rc == READ_OK; i++) {
        const redisReply *x = r[i];
        if (x->type == REDIS_REPLY_NIL)
            continue;
        if (x->type == REDIS_REPLY_ARRAY && x->elements == 1 &&
            x->element[0]->type == REDIS_REPLY_ARRAY && x->element[0]->elements == 2 &&
            x->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
            total += x->element[0]->element[1]->elements;
        else
            rc = read_failed(st, x, "reading", st->src[i].key);
    }
    if (rc != READ_OK || total == 0)
        goto out;
    all = calloc(total, sizeof *all);
    if (!all) {
        send_error(st, "out of memory");
        rc = READ_FATAL;
        goto out;
    }
    size_t m = 0;
    for (int i = 0; i < n && rc == READ_OK; i++) {
        if (r[i]->type == REDIS_REPLY_NIL)
            continue;
        const redisReply *entries = r[i]->element[0]->element[1];
        for (size_t j = 0; j < entries->elements; j++) {
            const redisReply *e = entries->element[j];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING ||
                !is_stream_id(e->element[0]->str) ||
                (e->element[1]->type != REDIS_REPLY_ARRAY &&
                 e->element[1]->type != REDIS_REPLY_NIL)) {
                char why[TQ_KEYS_MAX + 64];
                snprintf(why, sizeof why, "reading %s: a malformed entry",
                         st->src[i].key);
                send_error(st, why);
                rc = READ_FATAL;
                break;
            }
            all[m++] = (sse_entry){e, i};
        }
    }
    /* Merge: each source's entries are in order; insertion keeps it. */
    for (size_t i = 1; i < m; i++) {
        sse_entry x = all[i];
        size_t j = i;
        while (j > 0 && id_before(x.e->element[0]->str, all[j - 1].e->element[0]->str)) {
            all[j] = all[j - 1];
            j--;
        }
        all[j] = x;
    }
    for (size_t i = 0; i < m && rc == READ_OK; i++) {
        const redisReply *e = all[i].e;
        const char *id = e->element[0]->str;
        if (e->element[1]->type == REDIS_REPLY_ARRAY &&
            matches(&st->filter, e->element[1]) && send_event(st, id, e->element[1]) < 0)
            rc = READ_FATAL;
        else
            snprintf(st->src[all[i].src].cursor, sizeof st->src[0].cursor, "%s", id);
    }
out:
    for (int i = 0; r && i < n; i++)
        freeReplyObject(r[i]);
    free(all);
    free(cmd);
    free(cmds);
    free(ac);
    free(r);
    if (rc == READ_OK && total == 0)
        for (int64_t end = tq_clock_mono_ms() + POLL_MS;
             tq_clock_mono_ms() < end && !*st->rq->stopping;)
            tq_clock_sleep_us(50 * 1000);
    return rc;
}

/* ---- the handler ------------------------------------------------------- */

/* Sends the head of the stream: no Content-Length, and the connection
 * closes when the handler returns (the end of the body is the close). */
static void send_head(web_req *rq)
{
    mg_disable_connection_keep_alive(rq->conn);
    mg_response_header_start(rq->conn, 200);
    mg_response_header_add(rq->conn, "Content-Type", "text/event-stream; charset=utf-8",
                           -1);
    mg_response_header_add(rq->conn, "Cache-Control", "no-store", -1);
    /* A buffering proxy (nginx) would hold the events back. */
    mg_response_header_add(rq->conn, "X-Accel-Buffering", "no", -1);
    mg_response_header_send(rq->conn);
}

/* Serves the stream until the client goes, the server stops or the stream
 * cannot go on. */
static void serve(sse_stream *st)
{
    char retry[32];
    int n = snprintf(retry, sizeof retry, "retry: %d\n\n", WEB_SSE_RETRY_MS);
    if (send_bytes(st, retry, (size_t)n) < 0)
        return;
    while (!*st->rq->stopping && !st->gone) {
        int rc = st->cursor[0] ? read_events(st) : read_start(st);
        if (rc == READ_FATAL)
            return;
        if (rc == READ_RETRY) {
            /* Redis is away: wait the connection's backoff (at least a
             * little, so a refused connect cannot spin), at most a slice so
             * the pings and the stop flag are still looked at. */
            int64_t wait_ms = tq_conn_backoff_ms(st->rq->redis);
            if (wait_ms < BACKOFF_MIN_MS)
                wait_ms = BACKOFF_MIN_MS;
            if (wait_ms > WEB_SSE_SLICE_MS)
                wait_ms = WEB_SSE_SLICE_MS;
            for (int64_t end = tq_clock_mono_ms() + wait_ms;
                 tq_clock_mono_ms() < end && !*st->rq->stopping;)
                tq_clock_sleep_us(50 * 1000);
        }
        if (tq_clock_mono_ms() - st->last_write_ms >= WEB_SSE_PING_MS)
            send_bytes(st, ": ping\n\n", 8);
    }
}

int web_sse_events(web_req *rq)
{
    sse_stream *st = calloc(1, sizeof *st);
    if (!st)
        return web_reply_error(rq, 503, "out of memory");
    st->rq = rq;
    int status = read_request(st);
    if (status) {
        free(st);
        return status;
    }
    st->src = calloc(STREAMS_MAX, sizeof *st->src);
    if (!st->src || !rq->redis) {
        free(st->src);
        free(st);
        return web_reply_error(rq, 503, "%s",
                               rq->redis ? "out of memory"
                                         : "no redis connection for this thread");
    }

    int open = atomic_fetch_add(rq->env->sse_clients, 1) + 1;
    if (open > WEB_SSE_CLIENTS_MAX) {
        atomic_fetch_sub(rq->env->sse_clients, 1);
        free(st->src);
        free(st);
        char secs[16], body[160];
        snprintf(secs, sizeof secs, "%d", WEB_SSE_RETRY_AFTER_S);
        int n = snprintf(body, sizeof body,
                         "{\"error\":\"too many event streams open (at most %d); "
                         "retry later\"}",
                         WEB_SSE_CLIENTS_MAX);
        const char *headers[] = {"Retry-After", secs, NULL};
        return web_reply(rq, 503, "application/json", body, (size_t)n, headers);
    }

    send_head(rq);
    if (strcmp(rq->method, "HEAD") != 0) {
        tq_debug("event stream to %s opened (%d open), after %s", rq->remote, open,
                 st->cursor[0] ? st->cursor : "the newest");
        st->last_write_ms = tq_clock_mono_ms();
        serve(st);
        tq_debug("event stream to %s closed (%s)", rq->remote,
                 st->gone        ? "client gone"
                 : *rq->stopping ? "server stopping"
                                 : "error");
    }
    atomic_fetch_sub(rq->env->sse_clients, 1);
    free(st->src);
    free(st);
    return 200;
}
