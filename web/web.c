/* tickq-web's server: civetweb set-up, the route table, the handlers and the
 * response helpers. */
#include "web/web.h"

#include "web/http.h"

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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The first request after Redis restarted finds the thread's old socket
 * dead. Such a failure is immediate, so a request whose command failed this
 * fast on a connection that was up retries once, after the connection's first
 * backoff step (at most this long). A slow failure (a Redis that hangs) is
 * not retried: the wait is bounded by the command timeout once, not twice. */
#define STALE_FAILURE_MS 500
#define STALE_RETRY_WAIT_MAX_MS 200

#define MSG_MAX 768   /* an error sentence, with the NUL */
#define CLEAN_MAX 160 /* a request path or Redis error quoted in a log or error */

struct web_server {
    struct mg_context *mg;
    tq_url url; /* Redis, parsed once */
    char timer_key[TQ_KEYS_MAX];
    char ports[WEB_PORTS_MAX]; /* civetweb's listening_ports */
    atomic_int nthreads;       /* names the per-thread connections */
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

/* A handler answers one request to its route, which the dispatcher already
 * matched on path and method. redis is the calling thread's connection
 * (borrowed; NULL if it could not be allocated). Returns the status sent. */
typedef int (*route_fn)(struct mg_connection *conn, web_server *w, tq_conn *redis);

typedef struct {
    const char *path; /* exact; anything below it is a 404 */
    int methods;      /* M_* mask */
    route_fn fn;
    const char *summary; /* one line for the index page */
} route;

static int get_index(struct mg_connection *conn, web_server *w, tq_conn *redis);
static int get_timer(struct mg_connection *conn, web_server *w, tq_conn *redis);
static int get_api_timer(struct mg_connection *conn, web_server *w, tq_conn *redis);
static int get_healthz(struct mg_connection *conn, web_server *w, tq_conn *redis);

/* Every route of tickq-web: a request is served only when its decoded path
 * is exactly one of these. */
static const route routes[] = {
    {"/", M_GET, get_index, "this text"},
    {"/timer", M_GET, get_timer, "the timer as \"Minute: M, Second: S\""},
    {"/api/timer", M_GET, get_api_timer, "the timer as JSON {seconds, minute, second}"},
    {"/healthz", M_GET, get_healthz, "200 when Redis answers PING, 503 otherwise"},
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

/* Copies in into out (outlen bytes, NUL-terminated) keeping printable ASCII
 * and writing '?' for any other byte, cut with "..." when too long: safe in
 * a log line and valid UTF-8 for JSON, whatever a client or Redis sent. */
static void clean_text(const char *in, char *out, size_t outlen)
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

static int is_head(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    return ri && ri->request_method && strcmp(ri->request_method, "HEAD") == 0;
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

/* Sends a complete response: status, Content-Type (unless ctype is NULL),
 * Content-Length, Cache-Control: no-store, Allow when allow is not NULL,
 * then body (len bytes, borrowed) unless the request is HEAD. Returns
 * status. */
static int send_response(struct mg_connection *conn, int status, const char *ctype,
                         const char *body, size_t len, const char *allow)
{
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", len);
    sane_version(conn);
    if (mg_response_header_start(conn, status) < 0) {
        tq_debug("cannot start a %d response (connection state)", status);
        return status;
    }
    if (ctype)
        mg_response_header_add(conn, "Content-Type", ctype, -1);
    mg_response_header_add(conn, "Content-Length", clen, -1);
    mg_response_header_add(conn, "Cache-Control", "no-store", -1);
    if (allow)
        mg_response_header_add(conn, "Allow", allow, -1);
    mg_response_header_send(conn);
    if (len && !is_head(conn))
        mg_write(conn, body, len);
    return status;
}

static int send_text(struct mg_connection *conn, int status, const char *text)
{
    return send_response(conn, status, "text/plain; charset=utf-8", text, strlen(text),
                         NULL);
}

/* Sends obj (taken: always released) as compact JSON. */
static int send_json(struct mg_connection *conn, int status, json_t *obj,
                     const char *allow)
{
    static const char fallback[] = "{\"error\":\"out of memory\"}";
    char *body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!body)
        return send_response(conn, 500, "application/json", fallback, sizeof fallback - 1,
                             NULL);
    int rc = send_response(conn, status, "application/json", body, strlen(body), allow);
    free(body);
    return rc;
}

/* Sends {"error": <message>} with status; allow as in send_response(). */
static int send_error_allow(struct mg_connection *conn, int status, const char *allow,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int send_error_allow(struct mg_connection *conn, int status, const char *allow,
                            const char *fmt, ...)
{
    char raw[MSG_MAX], msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    clean_text(raw, msg, sizeof msg);
    return send_json(conn, status, json_pack("{s:s}", "error", msg), allow);
}

#define send_error(conn, status, ...)                                                    \
    send_error_allow((conn), (status), NULL, __VA_ARGS__)

/* ---- Redis ------------------------------------------------------------- */

/* Runs one command on the thread's connection. Returns a new reply (which
 * may be an error reply) or NULL when Redis is unreachable. A fast failure
 * on a connection that was up (Redis restarted since this thread last used
 * it) is retried once; see STALE_FAILURE_MS. Blocks at most about the
 * connect timeout, or the command timeout when Redis hangs. */
static redisReply *redis_cmd(tq_conn *redis, int argc, const char **argv)
{
    int was_up = tq_conn_ensure(redis) == 0;
    int64_t t0 = tq_clock_mono_ms();
    redisReply *r = tq_conn_cmdargv(redis, argc, argv, NULL);
    if (r || !was_up || tq_clock_mono_ms() - t0 > STALE_FAILURE_MS)
        return r;
    int64_t wait_ms = tq_conn_backoff_ms(redis);
    if (wait_ms > STALE_RETRY_WAIT_MAX_MS)
        return NULL;
    tq_clock_sleep_us(wait_ms * 1000);
    return tq_conn_cmdargv(redis, argc, argv, NULL);
}

/* Reads the timer's seconds into *seconds. Returns 0, or the HTTP status to
 * answer (500 for a bad value, 503 when Redis is unavailable) with a
 * sentence in msg. An absent key is 0 seconds. */
static int read_timer(web_server *w, tq_conn *redis, long long *seconds, char *msg,
                      size_t msglen)
{
    if (!redis) {
        snprintf(msg, msglen, "no redis connection for this thread (out of memory)");
        return 503;
    }
    const char *argv[] = {"GET", w->timer_key};
    redisReply *r = redis_cmd(redis, 2, argv);
    int status = 0;
    char what[CLEAN_MAX];
    if (!r) {
        snprintf(msg, msglen, "%s", tq_strerror(TQ_EREDIS));
        return 503;
    }
    switch (r->type) {
    case REDIS_REPLY_NIL:
        *seconds = 0;
        break;
    case REDIS_REPLY_STRING:
        if (web_timer_parse(r->str, r->len, seconds) < 0) {
            snprintf(msg, msglen, "key %s does not hold an integer", w->timer_key);
            status = 500;
        } else if (*seconds < 0) {
            snprintf(msg, msglen, "key %s holds a negative number of seconds",
                     w->timer_key);
            status = 500;
        }
        break;
    case REDIS_REPLY_ERROR:
        clean_text(r->str, what, sizeof what);
        snprintf(msg, msglen, "reading key %s: %s", w->timer_key, what);
        status = strncmp(r->str, "WRONGTYPE", 9) == 0 ? 500 : 503;
        break;
    default:
        snprintf(msg, msglen, "reading key %s: unexpected reply type %d", w->timer_key,
                 r->type);
        status = 500;
        break;
    }
    freeReplyObject(r);
    return status;
}

/* ---- handlers ---------------------------------------------------------- */

static int get_index(struct mg_connection *conn, web_server *w, tq_conn *redis)
{
    (void)w;
    (void)redis;
    char text[1024];
    size_t used = 0;
    int n = snprintf(text, sizeof text,
                     "tickq-web %s: the web side of tickq, a distributed periodic-task "
                     "system.\n\nroutes:\n",
                     TICKQ_VERSION);
    used = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < NROUTES && used < sizeof text; i++) {
        char m[64];
        methods_text(routes[i].methods, 0, m, sizeof m);
        n = snprintf(text + used, sizeof text - used, "  %-4s %-12s %s\n", m,
                     routes[i].path, routes[i].summary);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return send_text(conn, 200, text);
}

static int get_timer(struct mg_connection *conn, web_server *w, tq_conn *redis)
{
    char msg[MSG_MAX], text[64];
    long long seconds = 0;
    int status = read_timer(w, redis, &seconds, msg, sizeof msg);
    if (status)
        return send_error(conn, status, "%s", msg);
    web_timer_text(seconds, text, sizeof text);
    return send_text(conn, 200, text);
}

static int get_api_timer(struct mg_connection *conn, web_server *w, tq_conn *redis)
{
    char msg[MSG_MAX];
    long long seconds = 0;
    int status = read_timer(w, redis, &seconds, msg, sizeof msg);
    if (status)
        return send_error(conn, status, "%s", msg);
    return send_json(conn, 200,
                     json_pack("{s:I,s:I,s:I}", "seconds", (json_int_t)seconds, "minute",
                               (json_int_t)(seconds / 60), "second",
                               (json_int_t)(seconds % 60)),
                     NULL);
}

static int get_healthz(struct mg_connection *conn, web_server *w, tq_conn *redis)
{
    (void)w;
    char why[CLEAN_MAX];
    const char *argv[] = {"PING"};
    redisReply *r = redis ? redis_cmd(redis, 1, argv) : NULL;
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (ok)
        snprintf(why, sizeof why, "ok");
    else if (r && r->type == REDIS_REPLY_ERROR)
        clean_text(r->str, why, sizeof why);
    else if (r)
        snprintf(why, sizeof why, "unexpected reply type %d", r->type);
    else
        snprintf(why, sizeof why, "%s", tq_strerror(redis ? TQ_EREDIS : TQ_ENOMEM));
    freeReplyObject(r);
    return send_json(
        conn, ok ? 200 : 503,
        json_pack("{s:s,s:s}", "status", ok ? "ok" : "unavailable", "redis", why), NULL);
}

/* ---- dispatch and civetweb callbacks ------------------------------------ */

static int method_bit(const char *m)
{
    for (size_t i = 0; m && i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

/* The route whose path is exactly path, or NULL. */
static const route *route_find(const char *path)
{
    for (size_t i = 0; i < NROUTES; i++)
        if (strcmp(path, routes[i].path) == 0)
            return &routes[i];
    return NULL;
}

/* The one request handler civetweb calls, for every path: checks the
 * request head (web/http.c), finds the route whose path is exactly the
 * decoded path, then checks the method and that no body was declared (no
 * route takes one), then runs the route's function. A request that
 * declared a body, or whose head was refused, gets its answer at once and
 * its connection closed: the body is never read, so it cannot hold the
 * thread nor be taken for a next request. Returns the status sent, as
 * civetweb expects. */
static int dispatch(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    web_server *w = ri->user_data;
    int64_t t0 = tq_clock_mono_ms();
    web_http_header headers[64];
    web_http_verdict v;
    char allow[64];
    int status;

    int nh = ri->num_headers;
    if (nh < 0)
        nh = 0;
    if (nh > (int)(sizeof headers / sizeof headers[0]))
        nh = (int)(sizeof headers / sizeof headers[0]);
    for (int i = 0; i < nh; i++) {
        headers[i].name = ri->http_headers[i].name;
        headers[i].value = ri->http_headers[i].value;
    }
    /* civetweb runs with decode_url=no and has cut request_uri at '?'. */
    web_http_request rq = {ri->request_method, ri->http_version, ri->request_uri,
                           ri->query_string,   headers,          nh};
    web_http_check(&rq, &v);

    const route *rt = v.status ? NULL : route_find(v.path);
    int bit = method_bit(ri->request_method);
    if (rt)
        methods_text(rt->methods, 1, allow, sizeof allow);
    if (v.status || v.body_len != 0)
        mg_disable_connection_keep_alive(conn);

    if (v.status) {
        status = send_error(conn, v.status, "%s", v.error);
    } else if (!rt) {
        char shown[CLEAN_MAX];
        clean_text(v.path, shown, sizeof shown);
        status = send_error(conn, 404, "no such path: %s", shown);
    } else if (bit == M_OPTIONS) {
        status = send_response(conn, 204, NULL, "", 0, allow);
    } else if (!(bit & (rt->methods | ((rt->methods & M_GET) ? M_HEAD : 0)))) {
        char m[32];
        clean_text(ri->request_method, m, sizeof m);
        status =
            send_error_allow(conn, 405, allow, "method %s not allowed on %s; allowed: %s",
                             m, rt->path, allow);
    } else if (v.body_len != 0) {
        char m[32];
        clean_text(ri->request_method, m, sizeof m);
        status = send_error(conn, 413, "%s %s takes no request body", m, rt->path);
    } else {
        status = rt->fn(conn, w, mg_get_thread_pointer(conn));
    }
    if (tq_log_min <= TQ_LOG_DEBUG) {
        char m[32], shown[CLEAN_MAX];
        clean_text(ri->request_method, m, sizeof m);
        clean_text(ri->request_uri, shown, sizeof shown);
        tq_debug("%s %s %s -> %d (%lld ms)%s%s", ri->remote_addr, m, shown, status,
                 (long long)(tq_clock_mono_ms() - t0), v.status ? ": " : "", v.error);
    }
    return status;
}

/* civetweb's own errors (a malformed request, a URI it cannot map, a request
 * too large) in our format. Returns 0: handled. */
static int on_http_error(struct mg_connection *conn, int status, const char *errmsg)
{
    char shown[CLEAN_MAX];
    clean_text(errmsg, shown, sizeof shown);
    tq_debug("civetweb error response %d: %s", status, shown);
    if (status < 400)
        status = 500;
    send_error(conn, status, "%s", shown[0] ? shown : "error");
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
    clean_text(message, shown, sizeof shown);
    tq_warn("civetweb: %s", shown);
    if (!first_message[0])
        clean_text(message, first_message, sizeof first_message);
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

int web_start(const tq_config *cfg, web_server **out, char *err, size_t errlen)
{
    char urlerr[256];
    int rc;
    *out = NULL;
    web_server *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return TQ_ENOMEM;
    }
    if (tq_url_parse(cfg->redis_url, &w->url, urlerr, sizeof urlerr) < 0) {
        snprintf(err, errlen, "--redis-url: %s", urlerr);
        rc = TQ_ECONFIG;
        goto err;
    }
    if (tq_keys_fmt(cfg->prefix, TQ_KEY_TIMER, NULL, w->timer_key, sizeof w->timer_key) <
        0) {
        snprintf(err, errlen, "--prefix: '%s' makes too long a key", cfg->prefix);
        rc = TQ_ECONFIG;
        goto err;
    }
    rc = web_listen_ports(cfg->listen, w->ports, sizeof w->ports, err, errlen);
    if (rc < 0)
        goto err;

    char threads[16];
    snprintf(threads, sizeof threads, "%d",
             (cfg->web_threads > 0 ? cfg->web_threads : 1) + WEB_SLOW_CLIENT_THREADS);
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
    unsigned mgcode = 0;
    struct mg_init_data init = {&cb, w, options};
    struct mg_error_data mge = {&mgcode, mgerr, sizeof mgerr};
    mg_init_library(0);
    first_message[0] = '\0';
    w->mg = mg_start2(&init, &mge);
    if (!w->mg) {
        char shown[CLEAN_MAX];
        clean_text(first_message[0] ? first_message
                   : mgerr[0]       ? mgerr
                                    : "unknown error",
                   shown, sizeof shown);
        snprintf(err, errlen, "--listen %s: cannot listen: %s", cfg->listen, shown);
        mg_exit_library();
        rc = TQ_ECONFIG;
        goto err;
    }
    register_routes(w);

    char where[TQ_URL_HOST_MAX + 64];
    tq_url_redacted(&w->url, where, sizeof where);
    tq_info("listening on http://%s with %s threads (--web-threads %d + %d for slow "
            "clients); redis %s, timer key %s",
            w->ports, threads, cfg->web_threads, WEB_SLOW_CLIENT_THREADS, where,
            w->timer_key);
    *out = w;
    return 0;
err:
    free(w);
    return rc;
}

void web_stop(web_server *w)
{
    if (!w)
        return;
    mg_stop(w->mg);
    mg_exit_library();
    tq_info("stopped");
    free(w);
}
