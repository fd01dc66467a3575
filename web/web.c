/* tickq-web's server: civetweb set-up, the route table, the handlers and the
 * response helpers. */
#include "web/web.h"

#include "web/api.h"
#include "web/auth.h"
#include "web/dash.h"
#include "web/http.h"
#include "web/metrics.h"
#include "web/ops.h"
#include "web/reply.h"
#include "web/req.h"
#include "web/sse.h"

#include "common/clock.h"
#include "common/conn.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/url.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MG_FEATURE_IPV6 8 /* mg_check_feature() bit */

/* civetweb 1.15 gives each connection one worker thread from accept to
 * close, also while the client is still sending its request head: a client
 * that sends a byte a second holds a thread until REQUEST_TIMEOUT_MS, the
 * limit on a whole request head (and on each read or write after it). So
 * the server starts WEB_SLOW_CLIENT_THREADS threads beyond --web-threads:
 * that many slow or idle clients may be connected while --web-threads
 * threads still answer. An idle thread costs little (its stack's touched
 * pages and civetweb's 16 KiB request buffer); it opens a Redis connection
 * only once it serves a route that reads Redis. More slow clients than
 * that at once still queue the others (put a proxy in front on a hostile
 * network). A fixed constant rather than an option: see docs/RELIABILITY.md. */
#define WEB_SLOW_CLIENT_THREADS 120
#define REQUEST_TIMEOUT_MS "5000" /* a whole request head must come in this time */
#define KEEP_ALIVE_TIMEOUT_MS "2000"

#define CLEAN_MAX WEB_REPLY_CLEAN_MAX
#define AUDIT_MAXLEN "10000" /* entries P:audit keeps, about */
#define AUDIT_TRIES 3        /* more tries, a second apart, to audit an unknown outcome */

struct web_server {
    struct mg_context *mg;
    tq_config cfg; /* a copy: handlers borrow it through env */
    web_env env;
    tq_url url; /* Redis, parsed once */
    char audit_key[TQ_KEYS_MAX];
    char ports[WEB_PORTS_MAX]; /* civetweb's listening_ports */
    atomic_int nthreads;       /* names the per-thread connections */
    atomic_int sse_clients;    /* env.sse_clients points here */
    volatile int stopping;     /* set before mg_stop: long handlers end */
};

/* Methods a route allows, as a bit mask. A route that allows GET also
 * answers HEAD (the same headers, no body). */
enum {
    M_GET = 1,
    M_HEAD = 2,
    M_POST = 4,
    M_PUT = 8,
    M_DELETE = 16,
    M_OPTIONS = 32,
};

static const struct {
    const char *name;
    int bit;
} methods[] = {
    {"GET", M_GET}, {"HEAD", M_HEAD},     {"POST", M_POST},
    {"PUT", M_PUT}, {"DELETE", M_DELETE}, {"OPTIONS", M_OPTIONS},
};

/* What a route does with a request body. */
enum {
    BODY_NONE = 0,     /* a declared body is refused (413) */
    BODY_OPTIONAL = 1, /* read when declared */
    BODY_REQUIRED = 2, /* read; none is 400 */
};

/* A handler answers one request to its route, which the dispatcher already
 * matched on path and method. Returns the status sent. */
typedef int (*route_fn)(web_req *rq);

typedef struct {
    const char *path; /* a '*' segment matches any one segment */
    int method;       /* one M_* bit; a GET route answers HEAD too */
    route_fn fn;
    int body;            /* BODY_* */
    const char *summary; /* one line for the index page */
} route;

static int get_index(web_req *rq);
static int get_timer(web_req *rq);
static int get_api_timer(web_req *rq);
static int get_healthz(web_req *rq);

/* Every route of tickq-web: a request is served only when its decoded path
 * matches one of these. A method other than GET needs the API token and
 * is written to the audit stream (docs/API.md). */
static const route routes[] = {
    {"/", M_GET, get_index, 0, "this text"},
    {"/timer", M_GET, get_timer, 0, "the timer as \"Minute: M, Second: S\""},
    {"/api/timer", M_GET, get_api_timer, 0,
     "the timer as JSON {seconds, minute, second}"},
    {"/healthz", M_GET, get_healthz, 0, "200 when Redis answers PING, 503 otherwise"},
    {"/dashboard", M_GET, web_dash_get, 0, "the dashboard (HTML)"},
    {"/metrics", M_GET, web_metrics_get, 0, "Prometheus metrics"},
    {"/api/overview", M_GET, web_api_overview, 0, "counts, workers, beat leader, Redis"},
    {"/api/queues", M_GET, web_api_queues, 0, "queues: depth, latency, paused"},
    {"/api/queues/*/pause", M_POST, web_ops_queue_pause, 0, "pause a queue"},
    {"/api/queues/*/resume", M_POST, web_ops_queue_resume, 0, "resume a queue"},
    {"/api/workers", M_GET, web_api_workers, 0, "workers and what they run"},
    {"/api/schedules", M_GET, web_api_schedules, 0, "schedules and their next runs"},
    {"/api/schedules/*", M_GET, web_api_schedule, 0, "one schedule and its history"},
    {"/api/schedules/*", M_PUT, web_ops_schedule_put, BODY_REQUIRED,
     "create or replace a schedule"},
    {"/api/schedules/*", M_DELETE, web_ops_schedule_delete, 0, "delete a schedule"},
    {"/api/schedules/*/run", M_POST, web_ops_schedule_run, 0, "publish a tick now"},
    {"/api/schedules/*/pause", M_POST, web_ops_schedule_pause, 0, "pause a schedule"},
    {"/api/schedules/*/resume", M_POST, web_ops_schedule_resume, 0, "resume a schedule"},
    {"/api/tasks", M_GET, web_api_tasks, 0, "search finished tasks"},
    {"/api/tasks", M_POST, web_ops_task_enqueue, BODY_REQUIRED, "enqueue a message"},
    {"/api/tasks/*", M_GET, web_api_task, 0, "one task: result, message, errors"},
    {"/api/tasks/*/retry", M_POST, web_ops_task_retry, 0, "run a failed task again"},
    {"/api/dead", M_GET, web_api_dead, 0, "dead letters"},
    {"/api/dead", M_DELETE, web_ops_dead_purge, 0, "delete every dead letter"},
    {"/api/dead/requeue", M_POST, web_ops_dead_requeue, BODY_OPTIONAL,
     "requeue dead letters (all, or {\"ids\": [...]})"},
    {"/api/events", M_GET, web_sse_events, 0, "live events (Server-Sent Events)"},
    {"/api/audit", M_GET, web_api_audit, 0, "the audit log of mutations"},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* ---- small pure helpers ------------------------------------------------ */

int web_timer_text(long long seconds, char *buf, size_t len)
{
    return snprintf(buf, len, "Minute: %lld, Second: %lld", seconds / 60, seconds % 60);
}

int web_timer_parse(const char *s, size_t len, long long *out)
{
    /* Redis' own limit for a string it treats as an integer. */
    if (!s || len == 0 || len > 20)
        return TQ_EINVAL;
    char buf[24];
    memcpy(buf, s, len);
    buf[len] = '\0';
    const char *digits = buf[0] == '-' ? buf + 1 : buf;
    if (*digits < '0' || *digits > '9')
        return TQ_EINVAL;
    for (const char *p = digits; *p; p++)
        if (*p < '0' || *p > '9')
            return TQ_EINVAL;
    errno = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return TQ_EINVAL;
    *out = v;
    return 0;
}

int web_listen_ports(const char *listen, char *out, size_t outlen, char *err,
                     size_t errlen)
{
    char host[TQ_CONFIG_NAME_MAX];
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host) {
        snprintf(err, errlen, "--listen: '%s' is not HOST:PORT", listen ? listen : "");
        return TQ_ECONFIG;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || port < 1 || port > 65535) {
        snprintf(err, errlen, "--listen: '%s' has no port from 1 to 65535", listen);
        return TQ_ECONFIG;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';

    int n;
    if (host[0] == '[') {
        size_t hl = strlen(host);
        struct in6_addr a6;
        if (hl < 3 || host[hl - 1] != ']') {
            snprintf(err, errlen, "--listen: '%s': an IPv6 address needs [brackets]",
                     listen);
            return TQ_ECONFIG;
        }
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6) != 1) {
            snprintf(err, errlen, "--listen: '%s' is not an IPv6 address", host + 1);
            return TQ_ECONFIG;
        }
        if (!mg_check_feature(MG_FEATURE_IPV6)) {
            snprintf(err, errlen,
                     "--listen: '%s': this civetweb was built without IPv6; "
                     "use an IPv4 address such as 0.0.0.0:%ld",
                     listen, port);
            return TQ_ECONFIG;
        }
        n = snprintf(out, outlen, "[%s]:%ld", host + 1, port);
    } else if (strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0) {
        n = snprintf(out, outlen, "0.0.0.0:%ld", port);
    } else {
        struct in_addr a4;
        char literal[INET_ADDRSTRLEN];
        if (inet_pton(AF_INET, host, &a4) != 1) {
            struct addrinfo hints, *res = NULL;
            memset(&hints, 0, sizeof hints);
            hints.ai_family = AF_INET;
            hints.ai_socktype = SOCK_STREAM;
            int rc = getaddrinfo(host, NULL, &hints, &res);
            if (rc != 0 || !res) {
                snprintf(err, errlen, "--listen: cannot resolve host '%s': %s", host,
                         rc ? gai_strerror(rc) : "no address");
                if (res)
                    freeaddrinfo(res);
                return TQ_ECONFIG;
            }
            a4 = ((const struct sockaddr_in *)(const void *)res->ai_addr)->sin_addr;
            freeaddrinfo(res);
        }
        inet_ntop(AF_INET, &a4, literal, sizeof literal);
        n = snprintf(out, outlen, "%s:%ld", literal, port);
    }
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "--listen: '%s' is too long", listen);
        return TQ_ECONFIG;
    }
    return 0;
}

/* ---- responses --------------------------------------------------------- */

/* Writes the names of the methods in mask into buf, ", "-separated. With
 * implied, adds what every route answers: HEAD where GET is allowed, and
 * OPTIONS (the value of an Allow header). */
static void methods_text(int mask, int implied, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    if (implied)
        mask |= M_OPTIONS | ((mask & M_GET) ? M_HEAD : 0);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (!(mask & methods[i].bit))
            continue;
        int n =
            snprintf(buf + used, len - used, "%s%s", used ? ", " : "", methods[i].name);
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

/* ---- handlers ---------------------------------------------------------- */

/* Adds the value of the timer's counter key to *seconds. Returns 0, or the
 * status it answered with (500 for a bad value). An absent key adds 0. */
static int add_timer(web_req *rq, const char *key, const redisReply *r,
                     long long *seconds)
{
    long long v = 0;
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type != REDIS_REPLY_STRING)
        return web_reply_redis_error(rq, r, "reading key %s", key);
    if (web_timer_parse(r->str, r->len, &v) < 0)
        return web_reply_error(rq, 500, "key %s does not hold an integer", key);
    if (v < 0)
        return web_reply_error(rq, 500, "key %s holds a negative number of seconds", key);
    if (v > LLONG_MAX - *seconds)
        return web_reply_error(rq, 500, "the timer's counters add up past 2^63");
    *seconds += v;
    return 0;
}

#define TIMER_QUEUES_MAX 256 /* queues whose timer counters /timer adds up */

/* Reads the timer's seconds into *seconds: the "timer" counter
 * (P:{q}:counter:timer) of every queue in use, added up, so that the
 * timer counts wherever its ticks run. Returns 0, or the status it
 * answered with (500 for a bad value, 503 when Redis is unavailable). */
static int read_timer(web_req *rq, long long *seconds)
{
    char kq[TQ_KEYS_MAX];
    web_req_key(rq, TQ_KEY_QUEUES, NULL, NULL, kq);
    const char *argv[] = {"SMEMBERS", kq};
    redisReply *qs = web_req_redis(rq, 2, argv, NULL);
    if (!qs || (qs->type != REDIS_REPLY_ARRAY && qs->type != REDIS_REPLY_ERROR)) {
        int st = web_reply_redis_error(rq, qs, "reading key %s", kq);
        freeReplyObject(qs);
        return st;
    }
    char(*key)[TQ_KEYS_MAX] = calloc(TIMER_QUEUES_MAX + 1, sizeof *key);
    const char *(*cmd)[2] = calloc(TIMER_QUEUES_MAX + 1, sizeof *cmd);
    const char *const **cmds = calloc(TIMER_QUEUES_MAX + 1, sizeof *cmds);
    int *ac = calloc(TIMER_QUEUES_MAX + 1, sizeof *ac);
    redisReply **r = calloc(TIMER_QUEUES_MAX + 1, sizeof *r);
    int n = 0, status = 0;
    if (!key || !cmd || !cmds || !ac || !r) {
        status = web_reply_error(rq, 503, "out of memory");
        goto out;
    }
    /* "default", then the others (a set of the wrong type reads as none). */
    web_req_key(rq, TQ_KEY_COUNTER, "default", "timer", key[n++]);
    for (size_t i = 0;
         qs->type == REDIS_REPLY_ARRAY && i < qs->elements && n <= TIMER_QUEUES_MAX;
         i++) {
        const redisReply *q = qs->element[i];
        if (q->type != REDIS_REPLY_STRING || !tq_config_name_ok(q->str) ||
            strcmp(q->str, "default") == 0)
            continue;
        web_req_key(rq, TQ_KEY_COUNTER, q->str, "timer", key[n++]);
    }
    for (int i = 0; i < n; i++) {
        cmd[i][0] = "GET";
        cmd[i][1] = key[i];
        cmds[i] = cmd[i];
        ac[i] = 2;
    }
    if (web_req_pipeline(rq, n, ac, cmds, NULL, r) < 0) {
        status =
            web_reply_error(rq, 503, "reading the timer: %s", tq_strerror(TQ_EREDIS));
        n = 0;
        goto out;
    }
    *seconds = 0;
    for (int i = 0; i < n && !status; i++)
        status = add_timer(rq, key[i], r[i], seconds);
out:
    for (int i = 0; r && i < n; i++)
        freeReplyObject(r[i]);
    freeReplyObject(qs);
    free(key);
    free(cmd);
    free(cmds);
    free(ac);
    free(r);
    return status;
}

static int get_index(web_req *rq)
{
    char text[4096];
    size_t used = 0;
    int n = snprintf(text, sizeof text,
                     "tickq-web %s: the web side of tickq, a distributed periodic-task "
                     "system.\n\nroutes:\n",
                     TICKQ_VERSION);
    used = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < NROUTES && used < sizeof text; i++) {
        char m[64];
        methods_text(routes[i].method, 0, m, sizeof m);
        n = snprintf(text + used, sizeof text - used, "  %-6s %-24s %s\n", m,
                     routes[i].path, routes[i].summary);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return web_reply_text(rq, 200, text);
}

static int get_timer(web_req *rq)
{
    char text[64];
    long long seconds = 0;
    int status = read_timer(rq, &seconds);
    if (status)
        return status;
    web_timer_text(seconds, text, sizeof text);
    return web_reply_text(rq, 200, text);
}

static int get_api_timer(web_req *rq)
{
    long long seconds = 0;
    int status = read_timer(rq, &seconds);
    if (status)
        return status;
    return web_reply_json(rq, 200,
                          json_pack("{s:I,s:I,s:I}", "seconds", (json_int_t)seconds,
                                    "minute", (json_int_t)(seconds / 60), "second",
                                    (json_int_t)(seconds % 60)));
}

static int get_healthz(web_req *rq)
{
    char why[CLEAN_MAX];
    const char *argv[] = {"PING"};
    redisReply *r = web_req_redis(rq, 1, argv, NULL);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (ok)
        snprintf(why, sizeof why, "ok");
    else if (r && r->type == REDIS_REPLY_ERROR)
        web_reply_clean(r->str, why, sizeof why);
    else if (r)
        snprintf(why, sizeof why, "unexpected reply type %d", r->type);
    else
        snprintf(why, sizeof why, "%s", tq_strerror(rq->redis ? TQ_EREDIS : TQ_ENOMEM));
    freeReplyObject(r);
    return web_reply_json(
        rq, ok ? 200 : 503,
        json_pack("{s:s,s:s}", "status", ok ? "ok" : "unavailable", "redis", why));
}

/* ---- dispatch and civetweb callbacks ------------------------------------ */

static int method_bit(const char *m)
{
    for (size_t i = 0; m && i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

/* Matches a decoded path against a route pattern; fills rq's parameters
 * with the segments that '*' matched. Returns 1 on a match. */
static int route_match(const char *pattern, const char *path, web_req *rq)
{
    int np = 0;
    while (*pattern && *path) {
        if (*pattern == '*') {
            size_t seg = strcspn(path, "/");
            if (seg == 0 || seg >= WEB_REQ_PARAM_MAX || np >= WEB_REQ_PARAMS_MAX)
                return 0;
            if (rq) {
                memcpy(rq->params[np], path, seg);
                rq->params[np][seg] = '\0';
            }
            np++;
            pattern++;
            path += seg;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    if (*pattern || *path)
        return 0;
    if (rq)
        rq->nparams = np;
    return 1;
}

/* Finds the route for path and method: *allowed gets the mask of the
 * methods that the path's routes allow (0: no route has this path).
 * Returns the route for the method, or NULL. */
static const route *route_find(const char *path, int bit, int *allowed, web_req *rq)
{
    const route *hit = NULL;
    *allowed = 0;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!route_match(routes[i].path, path, NULL))
            continue;
        *allowed |= routes[i].method;
        int ok = bit == routes[i].method || (bit == M_HEAD && routes[i].method == M_GET);
        if (ok && !hit) {
            hit = &routes[i];
            route_match(hit->path, path, rq);
        }
    }
    return hit;
}

/* Reads the declared body (len bytes) into a new buffer, NUL-terminated.
 * Returns 0, or the status to answer with a sentence in err. */
static int read_body(struct mg_connection *conn, long long len, char **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    /* civetweb's mg_read() does not answer "Expect: 100-continue" (curl
     * sends it before larger bodies and waits a second for the answer). */
    const char *expect = mg_get_header(conn, "Expect");
    if (expect && strcasecmp(expect, "100-continue") != 0) {
        snprintf(err, errlen, "cannot meet the expectation in the Expect header");
        return 417;
    }
    if (len < 0) {
        snprintf(err, errlen, "a chunked body is not accepted: send Content-Length");
        return 411;
    }
    if (len > WEB_REQ_BODY_MAX) {
        snprintf(err, errlen, "request body of %lld bytes; at most %d", len,
                 WEB_REQ_BODY_MAX);
        return 413;
    }
    if (expect)
        mg_write(conn, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    char *buf = malloc((size_t)len + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory for a body of %lld bytes", len);
        return 503;
    }
    long long got = 0;
    while (got < len) {
        int n = mg_read(conn, buf + got, (size_t)(len - got));
        if (n <= 0) {
            free(buf);
            snprintf(err, errlen, "the body ended after %lld of %lld bytes", got, len);
            return 400;
        }
        got += n;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

/* Appends what a mutation did to P:audit: time, method, path, address,
 * status and the handler's line. A failure is logged, not answered: the
 * change is made. */
static void audit(web_server *w, web_req *rq, int status)
{
    char ts[24], st[8];
    snprintf(ts, sizeof ts, "%lld", (long long)tq_clock_wall_ms());
    snprintf(st, sizeof st, "%d", status);
    const char *argv[] = {"XADD", w->audit_key, "MAXLEN", "~",        AUDIT_MAXLEN,
                          "*",    "ts",         ts,       "method",   rq->method,
                          "path", rq->path,     "remote", rq->remote, "status",
                          st,     "what",       rq->audit};
    redisReply *r = web_req_redis(rq, sizeof argv / sizeof argv[0], argv, NULL);
    /* After a command that got no answer the connection waits out its
     * backoff: an unknown outcome is worth a few tries, a second apart. */
    for (int i = 0; !r && rq->redis && rq->unanswered && i < AUDIT_TRIES; i++) {
        for (int slice = 0; slice < 10 && !*rq->stopping; slice++)
            tq_clock_sleep_us(100 * 1000);
        if (*rq->stopping)
            break;
        r = web_req_redis(rq, sizeof argv / sizeof argv[0], argv, NULL);
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        char why[CLEAN_MAX];
        web_reply_clean(r ? r->str : tq_strerror(TQ_EREDIS), why, sizeof why);
        tq_warn("audit: cannot append to %s (%s): %s %s by %s: %s", w->audit_key, why,
                rq->method, rq->path, rq->remote, rq->audit);
    }
    freeReplyObject(r);
}

/* The one request handler civetweb calls, for every path: checks the
 * request head (web/http.c), finds the route that matches the decoded
 * path and the method, checks the API token of a mutation before it reads
 * any body, reads a body the route takes (bounded), then runs the route's
 * function and audits a mutation that succeeded or whose outcome is not
 * known (Redis did not answer). A request whose body is
 * not read (refused head, a route that takes none, a failed token check)
 * gets its answer at once and its connection closed: the body cannot hold
 * the thread nor be taken for a next request. Returns the status sent, as
 * civetweb expects. */
static int dispatch(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    web_server *w = ri->user_data;
    int64_t t0 = tq_clock_mono_ms();
    web_http_header headers[64];
    web_http_verdict v;
    char allow[64], why[256];
    int status, allowed = 0;
    const char *authorization = NULL;
    char *body = NULL;

    int nh = ri->num_headers;
    if (nh < 0)
        nh = 0;
    if (nh > (int)(sizeof headers / sizeof headers[0]))
        nh = (int)(sizeof headers / sizeof headers[0]);
    for (int i = 0; i < nh; i++) {
        headers[i].name = ri->http_headers[i].name;
        headers[i].value = ri->http_headers[i].value;
        if (strcasecmp(headers[i].name, "Authorization") == 0)
            authorization = headers[i].value;
    }
    /* civetweb runs with decode_url=no and has cut request_uri at '?'. */
    web_http_request hrq = {ri->request_method, ri->http_version, ri->request_uri,
                            ri->query_string,   headers,          nh};
    web_http_check(&hrq, &v);

    /* On the stack: a heap block this size per request makes malloc
     * consolidate its free lists on every request. */
    web_req req;
    memset(&req, 0, sizeof req);
    web_req *rq = &req;
    rq->conn = conn;
    rq->env = &w->env;
    rq->redis = mg_get_thread_pointer(conn);
    rq->method = ri->request_method ? ri->request_method : "";
    rq->path = v.path;
    rq->query = ri->query_string;
    rq->remote = ri->remote_addr;
    rq->stopping = &w->stopping;

    int bit = method_bit(ri->request_method);
    const route *rt = v.status ? NULL : route_find(v.path, bit, &allowed, rq);
    int mutation = bit != M_GET && bit != M_HEAD && bit != M_OPTIONS;
    int takes_body = rt && rt->body != BODY_NONE;
    methods_text(allowed, 1, allow, sizeof allow);
    const char *allow_header[] = {"Allow", allow, NULL};

    if (v.status || (v.body_len != 0 && !takes_body))
        web_reply_close(rq);

    if (v.status) {
        status = web_reply_error(rq, v.status, "%s", v.error);
    } else if (!allowed) {
        status = web_reply_error(rq, 404, "no such path: %s", v.path);
    } else if (bit == M_OPTIONS) {
        status = web_reply(rq, 204, NULL, "", 0, allow_header);
    } else if (!rt) {
        char m[32], shown[CLEAN_MAX];
        web_reply_clean(ri->request_method, m, sizeof m);
        web_reply_clean(v.path, shown, sizeof shown);
        char msg[CLEAN_MAX * 2];
        snprintf(msg, sizeof msg, "method %s not allowed on %s; allowed: %s", m, shown,
                 allow);
        json_t *e = json_pack("{s:s}", "error", msg);
        char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
        status = text ? web_reply(rq, 405, "application/json", text, strlen(text),
                                  allow_header)
                      : web_reply_error(rq, 500, "out of memory");
        free(text);
    } else if (mutation && (status = web_auth_check(w->cfg.api_token, authorization, why,
                                                    sizeof why)) != 0) {
        if (v.body_len != 0)
            web_reply_close(rq);
        status = web_reply_error(rq, status, "%s", why);
    } else if (v.body_len != 0 && !takes_body) {
        char m[32];
        web_reply_clean(ri->request_method, m, sizeof m);
        status = web_reply_error(rq, 413, "%s %s takes no request body", m, v.path);
    } else if (v.body_len != 0 &&
               (status = read_body(conn, v.body_len, &body, why, sizeof why)) != 0) {
        web_reply_close(rq);
        status = web_reply_error(rq, status, "%s", why);
    } else if (rt->body == BODY_REQUIRED && !body) {
        status = web_reply_error(rq, 400, "%s %s needs a JSON body", rq->method, v.path);
    } else {
        rq->body = body;
        rq->body_len = body ? (size_t)v.body_len : 0;
        rq->mutation = mutation;
        status = rt->fn(rq);
        /* No answer from Redis may come after the change was made (Redis
         * answered too late): audited too, as such. Any other refusal
         * changed nothing (every script checks before its first write). */
        if (mutation && rq->unanswered) {
            static const char unknown[] =
                "outcome unknown: redis did not answer, the change may have been made";
            char done[WEB_REQ_AUDIT_MAX - sizeof unknown - 16];
            size_t n = strnlen(rq->audit, sizeof done - 1); /* cut if it must be */
            memcpy(done, rq->audit, n);
            done[n] = '\0';
            snprintf(rq->audit, sizeof rq->audit, "%s%s%s", unknown,
                     done[0] ? "; before that: " : "", done);
        }
        /* A failure after a part was done (a handler wrote its line) is
         * audited too: that part happened. */
        if (mutation &&
            ((status >= 200 && status < 300) || rq->unanswered || rq->audit[0]))
            audit(w, rq, status);
    }
    if (tq_log_min <= TQ_LOG_DEBUG) {
        char m[32], shown[CLEAN_MAX];
        web_reply_clean(ri->request_method, m, sizeof m);
        web_reply_clean(ri->request_uri, shown, sizeof shown);
        tq_debug("%s %s %s -> %d (%lld ms)%s%s", ri->remote_addr, m, shown, status,
                 (long long)(tq_clock_mono_ms() - t0), v.status ? ": " : "", v.error);
    }
    free(body);
    return status;
}

/* civetweb's own errors (a malformed request, a URI it cannot map, a request
 * too large) in our format. Returns 0: handled. */
static int on_http_error(struct mg_connection *conn, int status, const char *errmsg)
{
    char shown[CLEAN_MAX];
    web_reply_clean(errmsg, shown, sizeof shown);
    tq_debug("civetweb error response %d: %s", status, shown);
    if (status < 400)
        status = 500;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    web_req rq;
    memset(&rq, 0, sizeof rq);
    rq.conn = conn;
    rq.close = 1; /* civetweb closes after its own errors */
    rq.method = ri && ri->request_method ? ri->request_method : "";
    web_reply_error(&rq, status, "%s", shown[0] ? shown : "error");
    return 0;
}

/* The first message civetweb logged on this thread: while mg_start2()
 * runs, it says why starting failed ("cannot bind to ...: Address already in
 * use") better than mg_start2's own error text. */
static _Thread_local char first_message[CLEAN_MAX];

static int on_log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    char shown[TQ_LOG_LINE_MAX / 2];
    web_reply_clean(message, shown, sizeof shown);
    tq_warn("civetweb: %s", shown);
    if (!first_message[0])
        web_reply_clean(message, first_message, sizeof first_message);
    return 1;
}

/* Worker threads (type 1) get their own Redis connection, not yet
 * connected; the master and timer threads get none. */
static void *on_init_thread(const struct mg_context *ctx, int thread_type)
{
    if (thread_type != 1)
        return NULL;
    web_server *w = mg_get_user_data(ctx);
    char name[32];
    snprintf(name, sizeof name, "web-%d", atomic_fetch_add(&w->nthreads, 1) + 1);
    tq_conn *c = tq_conn_new(&w->url, name);
    if (!c)
        tq_error("%s: out of memory for a redis connection", name);
    else /* a hung Redis must not hold a request for the default 5 s */
        tq_conn_set_timeout_ms(c, WEB_REDIS_TIMEOUT_MS);
    return c;
}

static void on_exit_thread(const struct mg_context *ctx, int thread_type, void *ptr)
{
    (void)ctx;
    if (thread_type == 1)
        tq_conn_free(ptr);
}

/* Registers the one dispatcher for every path: it decodes the target
 * itself and looks the route up in the table, so civetweb's own matching
 * (on a path it has not decoded nor checked) decides nothing. */
static void register_routes(web_server *w)
{
    mg_set_request_handler(w->mg, "/", dispatch, NULL);
}

/* ---- start and stop ---------------------------------------------------- */

web_server *web_new(const tq_config *cfg, char *err, size_t errlen)
{
    char urlerr[256];
    int rc;
    if (errlen)
        err[0] = '\0';
    web_server *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (tq_config_url(cfg, &w->url, urlerr, sizeof urlerr) < 0) {
        snprintf(err, errlen, "--redis-url: %s", urlerr);
        rc = TQ_ECONFIG;
        goto err;
    }
    w->cfg = *cfg;
    if (cfg->api_token_file[0] &&
        (rc = web_auth_load(cfg->api_token_file, w->cfg.api_token,
                            sizeof w->cfg.api_token, err, errlen)) < 0)
        goto err;
    w->env.cfg = &w->cfg;
    w->env.prefix = w->cfg.prefix;
    w->env.liveness_ms = cfg->liveness_ms;
    w->env.sse_clients = &w->sse_clients;
    if (tq_keys_fmt(cfg->prefix, TQ_KEY_AUDIT, NULL, NULL, w->audit_key,
                    sizeof w->audit_key) < 0) {
        snprintf(err, errlen, "--prefix: '%s' makes too long a key", cfg->prefix);
        rc = TQ_ECONFIG;
        goto err;
    }
    rc = web_listen_ports(cfg->listen, w->ports, sizeof w->ports, err, errlen);
    if (rc < 0)
        goto err;

    char threads[16];
    snprintf(threads, sizeof threads, "%d",
             (cfg->web_threads > 0 ? cfg->web_threads : 1) + WEB_SLOW_CLIENT_THREADS +
                 WEB_SSE_CLIENTS_MAX);
    /* civetweb's options, as name/value pairs. decode_url=no hands the raw
     * target to web_http_check(), which decodes and checks it; with the
     * domain check off, an absolute-form target for this port reaches the
     * dispatcher too (which refuses it) instead of a silent close. */
    // clang-format off
    const char *options[] = {
        "listening_ports",          w->ports,
        "num_threads",              threads,
        "request_timeout_ms",       REQUEST_TIMEOUT_MS,
        "enable_keep_alive",        "yes",
        "keep_alive_timeout_ms",    KEEP_ALIVE_TIMEOUT_MS,
        "decode_url",               "no",
        "enable_auth_domain_check", "no",
        "tcp_nodelay",              "1",
        NULL,
    };
    // clang-format on
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = on_log_message;
    cb.http_error = on_http_error;
    cb.init_thread = on_init_thread;
    cb.exit_thread = on_exit_thread;

    char mgerr[256] = "";
    struct mg_init_data init = {&cb, w, options};
#if CIVETWEB_VERSION_MAJOR == 1 && CIVETWEB_VERSION_MINOR < 16
    unsigned mgcode = 0; /* 1.15 (Debian 12) writes the code through a pointer */
    struct mg_error_data mge = {&mgcode, mgerr, sizeof mgerr};
#else
    struct mg_error_data mge = {.text = mgerr, .text_buffer_size = sizeof mgerr};
#endif
    mg_init_library(0);
    first_message[0] = '\0';
    w->mg = mg_start2(&init, &mge);
    if (!w->mg) {
        char shown[CLEAN_MAX];
        web_reply_clean(first_message[0] ? first_message
                        : mgerr[0]       ? mgerr
                                         : "unknown error",
                        shown, sizeof shown);
        snprintf(err, errlen, "--listen %s: cannot listen: %s", cfg->listen, shown);
        mg_exit_library();
        rc = TQ_ECONFIG;
        goto err;
    }
    register_routes(w);

    char where[TQ_URL_SHOWN_MAX];
    tq_url_redacted(&w->url, where, sizeof where);
    tq_info("listening on http://%s with %s threads (--web-threads %d + %d for slow "
            "clients + %d for event streams); redis %s, prefix %s; the API is %s",
            w->ports, threads, cfg->web_threads, WEB_SLOW_CLIENT_THREADS,
            WEB_SSE_CLIENTS_MAX, where, cfg->prefix,
            w->cfg.api_token[0] ? "read-write (token set)" : "read-only (no token)");
    return w;
err:
    (void)rc;
    memset(w->cfg.api_token, 0, sizeof w->cfg.api_token);
    free(w);
    return NULL;
}

void web_run(web_server *w, volatile sig_atomic_t *stop)
{
    /* A Redis that is down or refuses the login is logged now, not at the
     * first request (which gets a 503 from /healthz meanwhile). */
    char why[512];
    tq_conn_check(&w->url, "web", 0, why, sizeof why);
    while (!*stop)
        tq_clock_sleep_ms(1000, stop);
}

void web_free(web_server *w)
{
    if (!w)
        return;
    w->stopping = 1; /* event streams see it within a slice and end */
    mg_stop(w->mg);
    mg_exit_library();
    tq_info("stopped");
    memset(w->cfg.api_token, 0, sizeof w->cfg.api_token);
    free(w);
}
