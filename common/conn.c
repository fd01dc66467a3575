/* Redis connection with lazy reconnect and backoff. */
#include "common/conn.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/slot.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#ifdef TQ_HAVE_TLS
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#endif

#define NAME_MAX_ 96
#define CLUSTER_NODES_MAX 254   /* nodes one connection knows (uint8_t map) */
#define CLUSTER_REDIRECTS_MAX 5 /* MOVED/ASK/TRYAGAIN hops for one command */
#define CLUSTER_TRYAGAIN_MS 50

typedef struct {
    char host[TQ_URL_HOST_MAX];
    int port;
    redisContext *ctx; /* NULL until a command goes there */
    int inflight;      /* replies this node owes */
} cl_node;

typedef struct {
    char *buf; /* the command, RESP-encoded (owned) */
    size_t len;
    int slot; /* -1: no key */
    int node; /* where it was sent; -1 not yet */
} cl_cmd;

struct tq_conn {
    tq_url url;
    char name[NAME_MAX_];
    redisContext *ctx;   /* NULL while disconnected */
    int failures;        /* consecutive failed attempts; 0 while healthy */
    int64_t next_try_ms; /* monotonic time of the next allowed attempt */
    int64_t timeout_ms;  /* command timeout */
    uint64_t rng;        /* xorshift state for jitter */
    int unflushed;       /* commands appended since the last reply read */
    int pending;         /* replies still to read */
    uint64_t roundtrips;
    uint64_t connects;   /* contexts made so far */
    uint64_t unanswered; /* commands sent whose reply never came */
    int auth_failed;     /* the last failure was a refused login or right */
    int auth_cmd;        /* ... refused to a command: a new login proves nothing */
    int unproven;        /* connected, but no command answered yet */
    int quiet;           /* log nothing (tq_conn_check for --check) */
    /* Redis Cluster (redis-cluster://): one context per node, the slot map,
     * and the commands whose replies are still owed, kept for redirects. */
    cl_node *nodes;
    int nnodes;
    uint8_t *slots; /* [TQ_SLOT_COUNT] node index + 1, 0 unknown; NULL: no map */
    int last_node;  /* where the last command went: keyless ones follow it */
    int refresh;    /* a MOVED came: reload the map before the next send */
    cl_cmd *q;      /* q[qhead .. qhead + qlen): owed replies, in order */
    int qhead, qlen, qcap;
    int sentinel_next; /* the sentinel to ask first: the last that answered */
    int seed_next;     /* the cluster seed to ask first: the last that answered */
    char master_host[TQ_URL_HOST_MAX]; /* where the sentinels last said the master is */
    int master_port;
#ifdef TQ_HAVE_TLS
    SSL_CTX *tls; /* rediss://: made at the first connection, kept */
#endif
    char error[TQ_CONN_ERROR_MAX]; /* why the last attempt failed, "" if none */
};

/* When a login failure was last logged (monotonic ms), for the whole
 * process: every thread's connection fails the same way at once, and one
 * line says it. 0 means "not during this outage": a good login resets it. */
static _Atomic int64_t auth_logged_ms = 0;

static void cluster_close(tq_conn *c);

/* 1 if an error reply s means Redis refused our credentials or rights:
 * WRONGPASS (Redis 6+, also a disabled user), NOAUTH (no password given),
 * "invalid password" (Redis 5 and older), AUTH sent to a server without a
 * password, or NOPERM (an ACL user without the rights a command needs). */
static int is_auth_error(const char *s)
{
    return strncmp(s, "WRONGPASS", 9) == 0 || strncmp(s, "NOAUTH", 6) == 0 ||
           strncmp(s, "NOPERM", 6) == 0 || strstr(s, "invalid password") ||
           strstr(s, "without any password configured");
}

tq_conn *tq_conn_new(const tq_url *url, const char *name)
{
    tq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->url = *url;
    c->timeout_ms = TQ_CONN_COMMAND_TIMEOUT_MS;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->last_node = -1;
    c->rng = (uint64_t)tq_clock_wall_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;
    if (!c->rng)
        c->rng = 88172645463325252ull;
    return c;
}

void tq_conn_free(tq_conn *c)
{
    if (!c)
        return;
    if (c->ctx)
        redisFree(c->ctx);
    cluster_close(c);
    free(c->nodes);
    free(c->q);
#ifdef TQ_HAVE_TLS
    SSL_CTX_free(c->tls);
#endif
    free(c);
}

#define STR_(x) #x
#define STR(x) STR_(x)

#ifdef TQ_HAVE_TLS
int tq_conn_tls(void)
{
    return 1;
}

const char *tq_conn_tls_info(void)
{
    return "yes (hiredis " STR(HIREDIS_MAJOR) "." STR(HIREDIS_MINOR) "." STR(
        HIREDIS_PATCH) " with hiredis_ssl, " OPENSSL_VERSION_TEXT ")";
}

/* OpenSSL's last error as text into buf, or "unknown error". */
static const char *ssl_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e)
        return "unknown error";
    ERR_error_string_n(e, buf, len);
    return buf;
}

static void init_openssl(void)
{
    redisInitOpenSSL();
}

/* c's TLS settings, made at its first TLS connection and kept: TLS 1.2 at
 * least, the server's certificate checked against the CA file (or the
 * system's CAs), the client certificate when one is given. NULL with why
 * set when a file cannot be used. */
static SSL_CTX *tls_ctx(tq_conn *c, char *why, size_t whylen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    char e[160];
    if (c->tls)
        return c->tls;
    pthread_once(&once, init_openssl);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(why, whylen, "TLS: %s", ssl_error(e, sizeof e));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    const tq_url *u = &c->url;
    const char *what = NULL, *path = "";
    if (u->tls_ca[0] ? SSL_CTX_load_verify_locations(ctx, u->tls_ca, NULL) != 1
                     : SSL_CTX_set_default_verify_paths(ctx) != 1)
        what = "the CA file", path = u->tls_ca;
    else if (u->tls_cert[0] && SSL_CTX_use_certificate_chain_file(ctx, u->tls_cert) != 1)
        what = "the client certificate", path = u->tls_cert;
    else if (u->tls_key[0] &&
             (SSL_CTX_use_PrivateKey_file(ctx, u->tls_key, SSL_FILETYPE_PEM) != 1 ||
              SSL_CTX_check_private_key(ctx) != 1))
        what = "the client key", path = u->tls_key;
    if (what) {
        snprintf(why, whylen, "TLS: cannot use %s %.100s: %.100s", what, path,
                 ssl_error(e, sizeof e));
        SSL_CTX_free(ctx);
        return NULL;
    }
    c->tls = ctx;
    return ctx;
}

/* Starts TLS on c->ctx, connected to host. The server's certificate must
 * chain to the CA and name host: a DNS name in its names, or an IP
 * address in its IP addresses (OpenSSL checks both during the handshake;
 * hiredis' own context would only send the name). Returns 0, or -1 with
 * why set. */
static int tls_start(tq_conn *c, const char *host, char *why, size_t whylen)
{
    char e[160];
    SSL_CTX *ctx = tls_ctx(c, why, whylen);
    if (!ctx)
        return -1;
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
        snprintf(why, whylen, "TLS: %s", ssl_error(e, sizeof e));
        return -1;
    }
    unsigned char addr[16];
    int ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    int ok =
        ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
           : SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
    if (ok && redisInitiateSSL(c->ctx, ssl) == REDIS_OK)
        return 0; /* c->ctx owns ssl now */
    long v = SSL_get_verify_result(ssl);
    snprintf(why, whylen, "TLS with %.64s: %s%s%s", host,
             !ok ? "cannot set the server's name" : c->ctx->errstr,
             v != X509_V_OK ? ": " : "",
             v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    SSL_free(ssl);
    return -1;
}
#else
int tq_conn_tls(void)
{
    return 0;
}

const char *tq_conn_tls_info(void)
{
    return "this build has none: hiredis " STR(HIREDIS_MAJOR) "." STR(
        HIREDIS_MINOR) " has no hiredis_ssl (Debian 12's); TLS needs hiredis 1.x with "
                       "hiredis_ssl (Debian 13), as in the container images";
}

static int tls_start(tq_conn *c, const char *host, char *why, size_t whylen)
{
    (void)c;
    snprintf(why, whylen, "TLS with %.64s: %s", host, tq_conn_tls_info());
    return -1;
}
#endif

void tq_conn_set_timeout_ms(tq_conn *c, int64_t ms)
{
    c->timeout_ms = ms > 0 ? ms : TQ_CONN_COMMAND_TIMEOUT_MS;
    struct timeval rt = {(time_t)(c->timeout_ms / 1000),
                         (suseconds_t)(c->timeout_ms % 1000) * 1000};
    if (c->ctx)
        redisSetTimeout(c->ctx, rt);
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].ctx)
            redisSetTimeout(c->nodes[i].ctx, rt);
}

int64_t tq_conn_timeout_ms(const tq_conn *c)
{
    return c->timeout_ms;
}

uint64_t tq_conn_roundtrips(const tq_conn *c)
{
    return c->roundtrips;
}

uint64_t tq_conn_connects(const tq_conn *c)
{
    return c->connects;
}

uint64_t tq_conn_unanswered(const tq_conn *c)
{
    return c->unanswered;
}

int tq_conn_auth_failed(const tq_conn *c)
{
    return c->auth_failed;
}

const char *tq_conn_last_error(const tq_conn *c)
{
    return c->error;
}

tq_conn_state tq_conn_error(const tq_conn *c)
{
    if (!c->error[0])
        return TQ_CONN_OK;
    if (!c->auth_failed)
        return TQ_CONN_UNREACHABLE;
    return strstr(c->error, "NOPERM") ? TQ_CONN_NOPERM : TQ_CONN_AUTH;
}

const char *tq_conn_state_text(tq_conn_state s)
{
    switch (s) {
    case TQ_CONN_OK:
        return "ok";
    case TQ_CONN_UNREACHABLE:
        return "unreachable";
    case TQ_CONN_AUTH:
        return "authentication failed";
    case TQ_CONN_NOPERM:
        return "permission denied";
    }
    return "?";
}

int tq_conn_check(const tq_url *u, const char *name, int quiet, char *why, size_t whylen)
{
    tq_conn *c = tq_conn_new(u, name);
    if (!c)
        return tq_err_set(TQ_ENOMEM, why, whylen, "out of memory");
    c->quiet = quiet;
    redisReply *r = tq_conn_cmd(c, "PING");
    int rc = 0;
    char where[TQ_URL_SHOWN_MAX];
    tq_url_redacted(u, where, sizeof where);
    if (!r)
        rc = tq_err_set(
            TQ_EREDIS, why, whylen, "redis %s: %s: %s", where,
            tq_conn_state_text(c->error[0] ? tq_conn_error(c) : TQ_CONN_UNREACHABLE),
            c->error[0] ? c->error : "no answer");
    else if (r->type != REDIS_REPLY_STATUS)
        rc = tq_err_set(TQ_EREDIS, why, whylen, "redis %s: PING answered %s", where,
                        r->type == REDIS_REPLY_ERROR ? r->str : "something else");
    freeReplyObject(r);
    tq_conn_free(c);
    return rc;
}

static uint64_t next_rand(tq_conn *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->rng;
}

/* Logs a refused login: an error once per outage for the whole process,
 * then at most every TQ_CONN_AUTH_LOG_EVERY_MS; debug otherwise. */
static void log_auth_failure(const tq_conn *c, const char *where, const char *why)
{
    int64_t now = tq_clock_mono_ms();
    int64_t last = atomic_load(&auth_logged_ms);
    int nopriv = strstr(why, "NOPERM") != NULL;
    if ((last == 0 || now - last >= TQ_CONN_AUTH_LOG_EVERY_MS) &&
        atomic_compare_exchange_strong(&auth_logged_ms, &last, now ? now : 1)) {
        tq_error("%s: redis %s: %s: %s; check the %s in the redis url (retrying with "
                 "backoff, this error is repeated at most once a minute)",
                 c->name, where, nopriv ? "permission denied" : "authentication failed",
                 why, nopriv ? "user's ACL rights" : "user and password");
    } else {
        tq_debug("%s: redis %s: %s still fails: %s", c->name, where,
                 nopriv ? "permission" : "authentication", why);
    }
}

/* After a failed attempt: wait half the window plus a random part of the
 * other half, where the window doubles per failure up to the cap. */
static void schedule_retry(tq_conn *c, const char *why)
{
    int64_t window = TQ_CONN_BACKOFF_BASE_MS;
    for (int i = 0; i < c->failures && window < TQ_CONN_BACKOFF_CAP_MS; i++)
        window *= 2;
    if (window > TQ_CONN_BACKOFF_CAP_MS)
        window = TQ_CONN_BACKOFF_CAP_MS;
    int64_t delay = window / 2 + (int64_t)(next_rand(c) % (uint64_t)(window / 2 + 1));
    c->next_try_ms = tq_clock_mono_ms() + delay;
    char where[TQ_URL_SHOWN_MAX];
    tq_url_redacted(&c->url, where, sizeof where);
    snprintf(c->error, sizeof c->error, "%s", why);
    if (c->quiet)
        ;
    else if (c->auth_failed)
        log_auth_failure(c, where, why);
    else if (c->failures == 0)
        tq_warn("%s: redis %s unreachable (%s); retrying with backoff", c->name, where,
                why);
    else
        tq_debug("%s: redis %s still unreachable (%s); next try in %lld ms", c->name,
                 where, why, (long long)delay);
    c->failures++;
}

/* Frees the context(s) and schedules the next attempt. */
static void drop(tq_conn *c, const char *why_)
{
    char why[TQ_CONN_ERROR_MAX]; /* why_ often points into the context freed below */
    snprintf(why, sizeof why, "%s", why_ && *why_ ? why_ : "connection lost");
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    cluster_close(c);
    c->unflushed = 0;
    c->pending = 0;
    schedule_retry(c, why);
}

void tq_conn_drop(tq_conn *c, const char *why)
{
    c->auth_failed = c->auth_cmd = 0;
    drop(c, why);
}

/* The connection works again: one line if it had failed, and the end of a
 * login outage. */
static void healthy(tq_conn *c)
{
    if (c->failures && !c->quiet)
        tq_info("%s: redis connection restored after %d failed attempts", c->name,
                c->failures);
    c->failures = 0;
    c->error[0] = '\0';
    atomic_store(&auth_logged_ms, 0); /* Redis let us in: that outage is over */
    c->auth_failed = c->auth_cmd = c->unproven = 0;
}

int64_t tq_conn_backoff_ms(const tq_conn *c)
{
    if (c->url.is_cluster ? c->slots != NULL : c->ctx != NULL)
        return 0;
    int64_t left = c->next_try_ms - tq_clock_mono_ms();
    return left > 0 ? left : 0;
}

/* Checks a handshake reply: returns 0, or -1 with why set (and
 * c->auth_failed when Redis refused the login). Frees r. */
static int handshake_reply(tq_conn *c, redisReply *r, const char *what, char *why,
                           size_t whylen)
{
    int rc = 0;
    if (!r) {
        snprintf(why, whylen, "%s: %s", what, c->ctx->errstr);
        rc = -1;
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%s: %s", what, r->str);
        c->auth_failed = is_auth_error(r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Sends AUTH, SELECT, CLIENT SETNAME and PING on a fresh context. Without a
 * password in the URL, a server that wants one answers SETNAME (or SELECT)
 * with NOAUTH: that is a failed login, found here rather than as an error
 * reply to every command the program sends afterwards. */
static int handshake(tq_conn *c, char *why, size_t whylen)
{
    redisReply *r;
    if (c->url.password[0]) {
        if (c->url.user[0])
            r = redisCommand(c->ctx, "AUTH %s %s", c->url.user, c->url.password);
        else
            r = redisCommand(c->ctx, "AUTH %s", c->url.password);
        if (handshake_reply(c, r, "AUTH", why, whylen) < 0)
            return -1;
    }
    if (c->url.db) {
        r = redisCommand(c->ctx, "SELECT %d", c->url.db);
        if (handshake_reply(c, r, "SELECT", why, whylen) < 0)
            return -1;
    }
    char cname[NAME_MAX_];
    snprintf(cname, sizeof cname, "%s", c->name);
    for (char *p = cname; *p; p++)
        if (*p == ' ')
            *p = '_';
    r = redisCommand(c->ctx, "CLIENT SETNAME %s", cname);
    /* A user without the right to name itself may still do its work: only
     * a refused login counts here. */
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOAUTH", 6) != 0) {
        freeReplyObject(r);
        r = NULL;
    } else if (handshake_reply(c, r, "CLIENT SETNAME", why, whylen) < 0) {
        return -1;
    }
    /* A user who may not even PING has no rights at all: a failed login.
     * One who lacks some right gets NOPERM as the answer to that command. */
    r = redisCommand(c->ctx, "PING");
    return handshake_reply(c, r, "PING", why, whylen);
}

/* Asks the sentinel s where the master is: 0 with c->master_host and
 * c->master_port set, or -1 with err set (and *auth when the sentinel
 * refused the login). */
static int ask_sentinel(tq_conn *c, const tq_url_node *s, char *err, size_t errlen,
                        int *auth)
{
    struct timeval t = {TQ_CONN_SENTINEL_TIMEOUT_MS / 1000,
                        (TQ_CONN_SENTINEL_TIMEOUT_MS % 1000) * 1000};
    redisContext *ctx = redisConnectWithTimeout(s->host, s->port, t);
    redisReply *r = NULL;
    int rc = -1;
    *auth = 0;
    if (!ctx || ctx->err || redisSetTimeout(ctx, t) != REDIS_OK) {
        snprintf(err, errlen, "%s", ctx ? ctx->errstr : "out of memory");
        goto out;
    }
    if (c->url.sentinel_password[0]) {
        r = c->url.sentinel_user[0]
                ? redisCommand(ctx, "AUTH %s %s", c->url.sentinel_user,
                               c->url.sentinel_password)
                : redisCommand(ctx, "AUTH %s", c->url.sentinel_password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "AUTH: %s", r ? r->str : ctx->errstr);
            *auth = r && is_auth_error(r->str);
            goto out;
        }
        freeReplyObject(r);
    }
    r = redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", c->url.master);
    if (!r) {
        snprintf(err, errlen, "%s", ctx->errstr);
    } else if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s", r->str);
        *auth = is_auth_error(r->str);
    } else if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "it watches no master named %s", c->url.master);
    } else {
        int port = 0;
        const redisReply *h =
            r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[0] : NULL;
        const redisReply *p = h ? r->element[1] : NULL;
        if (h && h->type == REDIS_REPLY_STRING && h->len > 0 &&
            h->len < sizeof c->master_host &&
            strspn(h->str,
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                   "._-:") == h->len &&
            p->type == REDIS_REPLY_STRING && p->len > 0 && p->len <= 5 &&
            strspn(p->str, "0123456789") == p->len && (port = atoi(p->str)) >= 1 &&
            port <= 65535) {
            if (strcmp(c->master_host, h->str) != 0 || c->master_port != port) {
                if (c->master_host[0] && !c->quiet)
                    tq_info(
                        "%s: the sentinels name a new redis master: %s:%d (was %s:%d)",
                        c->name, h->str, port, c->master_host, c->master_port);
                memcpy(c->master_host, h->str, h->len + 1);
                c->master_port = port;
            }
            rc = 0;
        } else {
            snprintf(err, errlen, "an answer that is not a host and a port");
        }
    }
out:
    freeReplyObject(r);
    if (ctx)
        redisFree(ctx);
    return rc;
}

/* Finds the master through the sentinels, asking each in turn from the one
 * that answered last. Returns 0, or -1 with why saying what each said. */
static int discover(tq_conn *c, char *why, size_t whylen)
{
    size_t used = 0;
    int auth_all = 1;
    why[0] = '\0';
    for (int k = 0; k < c->url.nnodes; k++) {
        int i = (c->sentinel_next + k) % c->url.nnodes;
        const tq_url_node *s = &c->url.nodes[i];
        char err[160];
        int auth;
        if (ask_sentinel(c, s, err, sizeof err, &auth) == 0) {
            c->sentinel_next = i;
            return 0;
        }
        auth_all &= auth;
        int v6 = strchr(s->host, ':') != NULL;
        if (used < whylen) {
            int n = snprintf(why + used, whylen - used, "%ssentinel %s%s%s:%d: %s",
                             used ? "; " : "", v6 ? "[" : "", s->host, v6 ? "]" : "",
                             s->port, err);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    c->auth_failed = auth_all;
    return -1;
}

/* After the handshake with the master the sentinels named: 0 if it says
 * it is the master (ROLE), -1 with why set if it is a replica (a failover
 * is under way, or the sentinels' view is stale). A user without the right
 * to ask ROLE is taken at the sentinels' word. */
static int check_role(tq_conn *c, char *why, size_t whylen)
{
    redisReply *r = redisCommand(c->ctx, "ROLE");
    int rc = 0;
    if (!r) {
        snprintf(why, whylen, "ROLE: %s", c->ctx->errstr);
        rc = -1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               strcmp(r->element[0]->str, "master") != 0) {
        snprintf(why, whylen,
                 "the sentinels name %.64s:%d as master %.64s, but it is a %.20s (a "
                 "failover is under way)",
                 c->master_host, c->master_port, c->url.master, r->element[0]->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Connects c->ctx to host:port (the socket path for a unix URL) with the
 * timeouts, keepalive, TLS and the handshake. Returns 0, or -1 with why set
 * and c->ctx NULL. */
static int open_ctx(tq_conn *c, const char *host, int port, char *why, size_t whylen)
{
    struct timeval ct = {TQ_CONN_CONNECT_TIMEOUT_MS / 1000,
                         (TQ_CONN_CONNECT_TIMEOUT_MS % 1000) * 1000};
    struct timeval rt = {(time_t)(c->timeout_ms / 1000),
                         (suseconds_t)(c->timeout_ms % 1000) * 1000};
    snprintf(why, whylen, "out of memory");
    c->ctx = c->url.is_unix ? redisConnectUnixWithTimeout(host, ct)
                            : redisConnectWithTimeout(host, port, ct);
    if (c->ctx && !c->ctx->err && redisSetTimeout(c->ctx, rt) == REDIS_OK &&
        (c->url.is_unix || redisEnableKeepAlive(c->ctx) == REDIS_OK) &&
        (!c->url.tls || tls_start(c, host, why, whylen) == 0) &&
        handshake(c, why, whylen) == 0)
        return 0;
    if (c->ctx && c->ctx->err && strcmp(why, "out of memory") == 0)
        snprintf(why, whylen, "%s", c->ctx->errstr);
    if (!why[0])
        snprintf(why, whylen, "no answer within the timeout");
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    return -1;
}

static int cluster_load(tq_conn *c, int fresh, char *why, size_t whylen);

/* 1 while c can take commands without connecting first. */
static int connected(const tq_conn *c)
{
    return c->url.is_cluster ? c->slots != NULL : c->ctx != NULL;
}

int tq_conn_ensure(tq_conn *c)
{
    if (connected(c))
        return 0;
    if (tq_clock_mono_ms() < c->next_try_ms)
        return TQ_EREDIS;

    char why[TQ_CONN_ERROR_MAX] = "";
    int auth_cmd = c->auth_cmd;
    c->auth_failed = c->auth_cmd = 0;
    int rc;
    if (c->url.is_cluster)
        rc = cluster_load(c, 1, why, sizeof why);
    else if (c->url.is_sentinel)
        rc = discover(c, why, sizeof why) < 0 ||
                     open_ctx(c, c->master_host, c->master_port, why, sizeof why) < 0
                 ? -1
                 : check_role(c, why, sizeof why);
    else
        rc = open_ctx(c, c->url.host, c->url.port, why, sizeof why);
    if (rc == 0) {
        /* Healthy only once a command is answered: a server that lets us
         * in and then fails every command (a cluster master that is gone
         * while a seed still gives the map, LOADING, a revoked right) must
         * not reset the backoff at each attempt. A cluster counts the
         * contexts it makes to its nodes (cluster_connect). */
        c->connects += !c->url.is_cluster;
        c->unproven = 1;
        if (auth_cmd)
            c->auth_failed = c->auth_cmd = 1;
        return 0;
    }
    if (c->ctx) { /* check_role refused the master */
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    if (!why[0])
        snprintf(why, sizeof why, "no answer within the timeout");
    schedule_retry(c, why);
    return TQ_EREDIS;
}

/* Writes n in decimal at p, then CRLF; returns the end. */
static char *put_count(char *p, size_t n)
{
    p = tq_fmt_ll(p, (long long)n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

#define APPEND_STACK_MAX 4096 /* a command this short is encoded on the stack */

/* The RESP encoding of a command, written here: hiredis' own (sdscatfmt)
 * costs more than the rest of a small command's trip through the client.
 * Into stack when it fits (stack may be NULL), else into a new buffer;
 * NULL when out of memory. */
static char *encode(int argc, const char **argv, const size_t *lens, char *stack,
                    size_t stacklen, size_t *outlen)
{
    size_t total = 24;
    for (int i = 0; i < argc; i++)
        total += 24 + 4 + (lens ? lens[i] : strlen(argv[i]));
    char *buf = stack && total <= stacklen ? stack : malloc(total);
    if (!buf)
        return NULL;
    char *p = buf;
    *p++ = '*';
    p = put_count(p, (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = lens ? lens[i] : strlen(argv[i]);
        *p++ = '$';
        p = put_count(p, len);
        memcpy(p, argv[i], len);
        p += len;
        *p++ = '\r';
        *p++ = '\n';
    }
    *outlen = (size_t)(p - buf);
    return buf;
}

/* ---- Redis Cluster: a small slot router ----
 *
 * The map of slots to masters comes from CLUSTER SLOTS, asked of the seed
 * nodes in the URL in turn (then of every node met since). Each command
 * goes to the master of its first key's slot (tq_slot_argv); one without
 * keys goes where the next command with a key goes, or else where the
 * last command went, so that MULTI ... EXEC, WATCH, FUNCTION LOAD after a
 * refused FCALL, and WAIT after writes reach the right node. A pipeline is
 * sent as runs of consecutive commands for one node, one run in flight at
 * a time, so a redirected command can be sent again at once: MOVED updates
 * the slot and reloads the map before the next run, ASK sends ASKING and
 * the command to the node named, TRYAGAIN waits a moment. A node that
 * cannot be reached, or CLUSTERDOWN, is an outage of the connection as a
 * whole: every context is dropped and the next call reloads the map. */

/* The index of the node host:port, added if new (add); -1 if absent, or
 * when the table is full. */
static int cluster_node(tq_conn *c, const char *host, int port, int add)
{
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].port == port && strcmp(c->nodes[i].host, host) == 0)
            return i;
    if (!add || c->nnodes == CLUSTER_NODES_MAX || strlen(host) >= TQ_URL_HOST_MAX)
        return -1;
    cl_node *n = realloc(c->nodes, (size_t)(c->nnodes + 1) * sizeof *n);
    if (!n)
        return -1;
    c->nodes = n;
    n = &c->nodes[c->nnodes];
    memset(n, 0, sizeof *n);
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    return c->nnodes++;
}

/* 1 if r is a string of len 1..max bytes made of chars. */
static int is_token(const redisReply *r, size_t max, const char *chars)
{
    return r && r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= max &&
           strspn(r->str, chars) == r->len;
}

#define HOST_CHARS_ "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:"

/* Fills map (TQ_SLOT_COUNT entries, zeroed) from a CLUSTER SLOTS reply r
 * got from host (which stands for a master whose endpoint is NULL, "" or
 * "?").
 * Returns 0, or -1 with why set. */
static int cluster_parse(tq_conn *c, const redisReply *r, const char *host, uint8_t *map,
                         char *why, size_t whylen)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        snprintf(why, whylen, "CLUSTER SLOTS: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "no slot is served");
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i], *m;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER ||
            (m = e->element[2])->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
            (m->element[0]->type != REDIS_REPLY_STRING &&
             m->element[0]->type != REDIS_REPLY_NIL) ||
            m->element[1]->type != REDIS_REPLY_INTEGER || e->element[0]->integer < 0 ||
            e->element[0]->integer > e->element[1]->integer ||
            e->element[1]->integer >= TQ_SLOT_COUNT || m->element[1]->integer < 1 ||
            m->element[1]->integer > 65535) {
            snprintf(why, whylen,
                     "CLUSTER SLOTS: an entry that is not a slot range "
                     "and a master");
            return -1;
        }
        /* NULL (cluster-preferred-endpoint-type unknown-endpoint), "" or
         * "?": the master is at the address of the node that answered. */
        const redisReply *h = m->element[0];
        const char *mh =
            h->type == REDIS_REPLY_NIL || h->len == 0 || strcmp(h->str, "?") == 0
                ? host
                : h->str;
        if (mh != host && !is_token(h, TQ_URL_HOST_MAX - 1, HOST_CHARS_)) {
            snprintf(why, whylen, "CLUSTER SLOTS: a master's address is not a host name");
            return -1;
        }
        int k = cluster_node(c, mh, (int)m->element[1]->integer, 1);
        if (k < 0) {
            snprintf(why, whylen, "CLUSTER SLOTS: more than %d nodes", CLUSTER_NODES_MAX);
            return -1;
        }
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
            map[s] = (uint8_t)(k + 1);
    }
    return 0;
}

/* Loads the slot map from the first seed (or known node) that gives one,
 * starting from the last that did. fresh (every context closed, nothing
 * owed): the nodes known are then only those of the new map, so that
 * addresses met over the process' life (nodes that left, a hostile reply)
 * do not fill the table for good. Returns 0, or -1 with why saying what
 * each said. */
static int cluster_load(tq_conn *c, int fresh, char *why, size_t whylen)
{
    uint8_t *map = calloc(TQ_SLOT_COUNT, 1);
    if (!map) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    cl_node *known = c->nodes; /* asked after the seeds */
    int nknown = c->nnodes;
    if (fresh) {
        c->nodes = NULL;
        c->nnodes = 0;
    }
    size_t used = 0;
    int auth_all = 1, all = c->url.nnodes + nknown, rc = -1;
    for (int j = 0; j < all && rc < 0; j++) {
        char host[TQ_URL_HOST_MAX], err[TQ_CONN_ERROR_MAX];
        int port, k = (c->seed_next + j) % all;
        /* known may move as cluster_parse adds nodes (not when fresh) */
        const cl_node *kn = fresh ? known : c->nodes;
        if (k < c->url.nnodes) {
            snprintf(host, sizeof host, "%s", c->url.nodes[k].host);
            port = c->url.nodes[k].port;
        } else {
            snprintf(host, sizeof host, "%s", kn[k - c->url.nnodes].host);
            port = kn[k - c->url.nnodes].port;
        }
        rc = open_ctx(c, host, port, err, sizeof err);
        if (rc == 0) {
            redisReply *r = redisCommand(c->ctx, "CLUSTER SLOTS");
            c->auth_failed = r && r->type == REDIS_REPLY_ERROR && is_auth_error(r->str);
            if (!r)
                snprintf(err, sizeof err, "CLUSTER SLOTS: %s", c->ctx->errstr);
            if (fresh)
                c->nnodes = 0; /* what a bad reply before added */
            rc = r ? cluster_parse(c, r, host, map, err, sizeof err) : -1;
            freeReplyObject(r);
            redisFree(c->ctx);
            c->ctx = NULL;
        }
        if (rc == 0) {
            free(c->slots);
            c->slots = map;
            c->refresh = 0;
            c->seed_next = k < c->url.nnodes ? k : 0;
            break;
        }
        memset(map, 0, TQ_SLOT_COUNT);
        auth_all &= c->auth_failed;
        int v6 = strchr(host, ':') != NULL;
        if (used < whylen) {
            int n =
                snprintf(why + used, whylen - used, "%snode %s%s%s:%d: %s",
                         used ? "; " : "", v6 ? "[" : "", host, v6 ? "]" : "", port, err);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    if (rc < 0) {
        free(map);
        c->auth_failed = auth_all;
    }
    if (fresh && rc < 0) { /* keep what was known, to ask next time */
        free(c->nodes);
        c->nodes = known;
        c->nnodes = nknown;
    } else if (fresh) {
        free(known);
    }
    return rc;
}

/* Frees every node's context and the owed commands; keeps the nodes'
 * addresses, to ask for the map next time. */
static void cluster_close(tq_conn *c)
{
    for (int i = 0; i < c->nnodes; i++) {
        redisContext *ctx = c->nodes[i].ctx;
        /* hiredis empties its output buffer once every byte is written:
         * then the node got the commands it owes replies to, and may have
         * run them. */
        if (ctx && ctx->obuf && ctx->obuf[0] == '\0')
            c->unanswered += (uint64_t)c->nodes[i].inflight;
        if (ctx)
            redisFree(ctx);
        c->nodes[i].ctx = NULL;
        c->nodes[i].inflight = 0;
    }
    c->last_node = -1; /* it may be the node that is gone */
    for (int i = 0; i < c->qlen; i++)
        free(c->q[c->qhead + i].buf);
    c->qhead = c->qlen = 0;
    free(c->slots);
    c->slots = NULL;
}

/* The node for slot (-1: none known, use the last node, else one already
 * connected, else the master of a slot drawn at random from the map: not
 * always the first, which may be a master that is gone). */
static int cluster_route(tq_conn *c, int slot)
{
    if (slot >= 0 && c->slots[slot])
        return c->slots[slot] - 1;
    if (slot < 0 && c->last_node >= 0 && c->last_node < c->nnodes)
        return c->last_node;
    for (int i = 0; i < c->nnodes; i++)
        if (c->nodes[i].ctx)
            return i;
    int from = (int)(next_rand(c) % TQ_SLOT_COUNT);
    for (int j = 0; j < TQ_SLOT_COUNT; j++)
        if (c->slots[(from + j) % TQ_SLOT_COUNT])
            return c->slots[(from + j) % TQ_SLOT_COUNT] - 1;
    return 0;
}

/* Where the owed command j goes: its key's node; for one without keys, the
 * node of the next command with a key, else the last node. */
static int cluster_target(tq_conn *c, int j)
{
    int end = c->qhead + c->qlen;
    for (int k = j; k < end; k++)
        if (c->q[k].slot >= 0)
            return cluster_route(c, c->q[k].slot);
    return cluster_route(c, -1);
}

/* Connects node i if it has no context yet. Returns 0, or -1 (dropped). */
static int cluster_connect(tq_conn *c, int i)
{
    if (c->nodes[i].ctx)
        return 0;
    char why[TQ_CONN_ERROR_MAX];
    if (open_ctx(c, c->nodes[i].host, c->nodes[i].port, why, sizeof why) < 0) {
        drop(c, why);
        return -1;
    }
    c->nodes[i].ctx = c->ctx;
    c->ctx = NULL;
    /* A new context may be to a master promoted since (a MOVED after a
     * failover leads here too): the callers' checks for a new connection
     * (tq_conn_connects) must see it. */
    c->connects++;
    return 0;
}

/* Sends the run of unsent commands from the queue's head that go to one
 * node. Returns 0, or -1 (dropped). */
static int cluster_send(tq_conn *c)
{
    char why[TQ_CONN_ERROR_MAX];
    if (c->refresh && cluster_load(c, 0, why, sizeof why) < 0)
        c->refresh = 0; /* the old map, with what MOVED said, serves */
    int node = cluster_target(c, c->qhead);
    if (cluster_connect(c, node) < 0)
        return -1;
    for (int j = c->qhead; j < c->qhead + c->qlen && c->q[j].node < 0; j++) {
        if (j > c->qhead && cluster_target(c, j) != node)
            break;
        if (redisAppendFormattedCommand(c->nodes[node].ctx, c->q[j].buf, c->q[j].len) !=
            REDIS_OK) {
            drop(c, "out of memory");
            return -1;
        }
        c->q[j].node = node;
        c->nodes[node].inflight++;
    }
    c->last_node = node;
    c->roundtrips++;
    return 0;
}

/* Reads node i's next reply. NULL when the connection broke (dropped). */
static redisReply *cluster_read(tq_conn *c, int i)
{
    void *reply = NULL;
    redisContext *ctx = c->nodes[i].ctx;
    if (redisGetReply(ctx, &reply) != REDIS_OK || !reply) {
        char why[TQ_CONN_ERROR_MAX];
        snprintf(why, sizeof why, "%.64s:%d: %.160s", c->nodes[i].host, c->nodes[i].port,
                 ctx->errstr[0] ? ctx->errstr : "connection lost");
        drop(c, why);
        return NULL;
    }
    c->nodes[i].inflight--;
    return reply;
}

/* If r is a redirect (MOVED or ASK) to a node this connection may use,
 * returns that node (and sets *ask for ASK); -1 otherwise. MOVED also
 * updates the slot and asks for a new map. */
static int cluster_redirect(tq_conn *c, const redisReply *r, int from, int *ask)
{
    int slot, port, n = 0;
    char host[TQ_URL_HOST_MAX];
    *ask = strncmp(r->str, "ASK ", 4) == 0;
    if (!*ask && strncmp(r->str, "MOVED ", 6) != 0)
        return -1;
    const char *a = r->str + (*ask ? 4 : 6);
    const char *colon = strrchr(a, ':');
    char *end;
    long sl = strtol(a, &end, 10), po;
    if (end == a || *end != ' ' || sl < 0 || sl >= TQ_SLOT_COUNT)
        return -1;
    slot = (int)sl;
    n = (int)(end + 1 - a);
    if (!colon || colon < a + n || (size_t)(colon - (a + n)) >= sizeof host ||
        (po = strtol(colon + 1, &end, 10)) < 1 || po > 65535 || *end != '\0' ||
        !isdigit((unsigned char)colon[1]))
        return -1;
    port = (int)po;
    memcpy(host, a + n, (size_t)(colon - (a + n)));
    host[colon - (a + n)] = '\0';
    if (strspn(host, HOST_CHARS_) != strlen(host))
        return -1;
    int k = cluster_node(c, host[0] ? host : c->nodes[from].host, port, 1);
    if (k >= 0 && !*ask) {
        c->slots[slot] = (uint8_t)(k + 1);
        c->refresh = 1;
    }
    return k;
}

/* The reply to the owed command at the head of the queue, following
 * redirects; NULL when the connection broke (dropped). */
static redisReply *cluster_reply(tq_conn *c)
{
    cl_cmd *p = &c->q[c->qhead];
    if (p->node < 0 && cluster_send(c) < 0)
        return NULL;
    redisReply *r = cluster_read(c, p->node);
    int asked = 0; /* the last hop was an ASK: a TRYAGAIN there asks again */
    for (int hop = 0; r && r->type == REDIS_REPLY_ERROR && hop < CLUSTER_REDIRECTS_MAX;
         hop++) {
        int ask = 0, to = cluster_redirect(c, r, p->node, &ask);
        if (to < 0 && strncmp(r->str, "TRYAGAIN", 8) == 0) {
            to = p->node;
            ask = asked;
            usleep(CLUSTER_TRYAGAIN_MS * 1000);
        }
        asked = ask;
        if (to < 0)
            break;
        freeReplyObject(r);
        r = NULL;
        /* Only this run is in flight; the node must owe nothing, or the
         * reply read next would not be this command's. */
        if (c->nodes[to].inflight || cluster_connect(c, to) < 0) {
            if (c->nodes[to].inflight)
                drop(c, "a redirect into a pipeline still in flight");
            return NULL;
        }
        static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
        redisContext *ctx = c->nodes[to].ctx;
        if ((ask &&
             redisAppendFormattedCommand(ctx, asking, sizeof asking - 1) != REDIS_OK) ||
            redisAppendFormattedCommand(ctx, p->buf, p->len) != REDIS_OK) {
            drop(c, "out of memory");
            return NULL;
        }
        c->nodes[to].inflight += 1 + ask;
        c->roundtrips++;
        p->node = c->last_node = to;
        if (ask) {
            redisReply *ok = cluster_read(c, to);
            if (!ok)
                return NULL;
            freeReplyObject(ok);
        }
        r = cluster_read(c, to);
    }
    if (!r)
        return NULL;
    free(p->buf);
    c->qhead++;
    if (--c->qlen == 0)
        c->qhead = 0;
    return r;
}

/* Queues the encoded command buf (taken) for the cluster. Returns 0 or
 * TQ_EREDIS (dropped). */
static int cluster_queue(tq_conn *c, char *buf, size_t len, int slot)
{
    if (c->qhead + c->qlen == c->qcap) {
        int cap = c->qcap ? c->qcap * 2 : 16;
        cl_cmd *q = realloc(c->q, (size_t)cap * sizeof *q);
        if (!q) {
            free(buf);
            tq_conn_drop(c, "out of memory");
            return TQ_EREDIS;
        }
        c->q = q;
        c->qcap = cap;
    }
    c->q[c->qhead + c->qlen++] = (cl_cmd){buf, len, slot, -1};
    c->unflushed = 1;
    c->pending++;
    return 0;
}

int tq_conn_append(tq_conn *c, int argc, const char **argv, const size_t *lens)
{
    if (tq_conn_ensure(c) < 0)
        return TQ_EREDIS;
    char stack[APPEND_STACK_MAX];
    size_t len;
    char *buf =
        encode(argc, argv, lens, c->url.is_cluster ? NULL : stack, sizeof stack, &len);
    if (!buf) { /* as for any failed append: no reply is owed any more */
        tq_conn_drop(c, "out of memory");
        return TQ_EREDIS;
    }
    if (c->url.is_cluster)
        return cluster_queue(c, buf, len, tq_slot_argv(argc, argv, lens));
    int ok = redisAppendFormattedCommand(c->ctx, buf, len) == REDIS_OK;
    if (buf != stack)
        free(buf);
    if (!ok) {
        tq_conn_drop(c, c->ctx->errstr);
        return TQ_EREDIS;
    }
    c->unflushed = 1;
    c->pending++;
    return 0;
}

redisReply *tq_conn_reply(tq_conn *c)
{
    void *reply = NULL;
    if (!connected(c) || c->pending == 0)
        return NULL;
    if (c->url.is_cluster) {
        c->unflushed = 0;
        if (!(reply = cluster_reply(c)))
            return NULL;
    } else {
        if (c->unflushed) {
            c->roundtrips++;
            c->unflushed = 0;
        }
        if (redisGetReply(c->ctx, &reply) != REDIS_OK || !reply) {
            /* hiredis empties its output buffer once every byte is written:
             * an empty one means Redis got the command and may still run it. */
            c->unanswered += c->ctx->obuf && c->ctx->obuf[0] == '\0';
            tq_conn_drop(c, c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
            return NULL;
        }
    }
    c->pending--;
    redisReply *r = reply;
    if (r->type == REDIS_REPLY_ERROR && is_auth_error(r->str) &&
        strncmp(r->str, "NOPERM", 6) != 0) {
        /* The login was revoked (NOAUTH, WRONGPASS): the command did not
         * run, and every other would fail the same way. An outage, not a
         * reply for each caller to log. NOPERM on one command is that
         * command's answer: a user may lack one right (the beat falls back
         * when WATCH is denied); the handshake catches a user who has none. */
        char why[TQ_CONN_ERROR_MAX];
        snprintf(why, sizeof why, "%s", r->str);
        freeReplyObject(r);
        c->auth_failed = c->auth_cmd = 1;
        drop(c, why);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR &&
        (strncmp(r->str, "READONLY", 8) == 0 || strncmp(r->str, "LOADING", 7) == 0 ||
         strncmp(r->str, "MASTERDOWN", 10) == 0 ||
         strncmp(r->str, "CLUSTERDOWN", 11) == 0)) {
        /* A master that became a replica (a failover), a server loading
         * its data, or a cluster without a master for some slots: the
         * command did not run, and nothing will until the next connection
         * finds the master (through the sentinels, or a new slot map) or
         * the load is over. An outage, as a lost connection is. */
        char why[TQ_CONN_ERROR_MAX];
        snprintf(why, sizeof why, "%s", r->str);
        freeReplyObject(r);
        drop(c, why);
        return NULL;
    }
    if (c->unproven || c->auth_cmd)
        healthy(c);
    return reply;
}

redisReply *tq_conn_cmdargv(tq_conn *c, int argc, const char **argv, const size_t *lens)
{
    if (c->pending) /* a caller lost track of a pipeline: start clean */
        tq_conn_drop(c, "unread pipelined replies");
    if (tq_conn_append(c, argc, argv, lens) < 0)
        return NULL;
    return tq_conn_reply(c);
}

/* The slot of the RESP-encoded command [buf, buf + len) (tq_slot_argv). */
static int resp_slot(const char *buf, size_t len)
{
    enum { MAXARGS = 16 };
    const char *argv[MAXARGS];
    size_t lens[MAXARGS];
    const char *p = buf, *end = buf + len;
    long argc = strtol(p + 1, NULL, 10);
    int n = 0;
    p = memchr(p, '\n', (size_t)(end - p));
    while (p && ++p < end && *p == '$' && n < MAXARGS && n < argc) {
        long l = strtol(p + 1, NULL, 10);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || l < 0 || (size_t)l > (size_t)(end - nl - 1))
            break;
        argv[n] = nl + 1;
        lens[n++] = (size_t)l;
        p = nl + 1 + l + 1; /* at the '\n' of the argument's CRLF */
    }
    return tq_slot_argv(n, argv, lens);
}

redisReply *tq_conn_cmd(tq_conn *c, const char *fmt, ...)
{
    va_list ap;
    if (c->pending)
        tq_conn_drop(c, "unread pipelined replies");
    if (tq_conn_ensure(c) < 0)
        return NULL;
    if (c->url.is_cluster) {
        char *cmd = NULL, *own;
        va_start(ap, fmt);
        int len = redisvFormatCommand(&cmd, fmt, ap);
        va_end(ap);
        if (len < 0 || !(own = malloc((size_t)len))) {
            redisFreeCommand(cmd);
            tq_conn_drop(c, "out of memory");
            return NULL;
        }
        memcpy(own, cmd, (size_t)len);
        redisFreeCommand(cmd);
        if (cluster_queue(c, own, (size_t)len, resp_slot(own, (size_t)len)) < 0)
            return NULL;
        return tq_conn_reply(c);
    }
    va_start(ap, fmt);
    int rc = redisvAppendCommand(c->ctx, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        tq_conn_drop(c, c->ctx->errstr);
        return NULL;
    }
    c->unflushed = 1;
    c->pending++;
    return tq_conn_reply(c);
}
