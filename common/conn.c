/* Redis connection with lazy reconnect, backoff and scripts. */
#include "common/conn.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/sha1.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define NAME_MAX_ 96

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
};

tq_conn *tq_conn_new(const tq_url *url, const char *name)
{
    tq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->url = *url;
    c->timeout_ms = TQ_CONN_COMMAND_TIMEOUT_MS;
    snprintf(c->name, sizeof c->name, "%s", name);
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
    free(c);
}

void tq_conn_set_timeout_ms(tq_conn *c, int64_t ms)
{
    c->timeout_ms = ms > 0 ? ms : TQ_CONN_COMMAND_TIMEOUT_MS;
    if (c->ctx) {
        struct timeval rt = {(time_t)(c->timeout_ms / 1000),
                             (suseconds_t)(c->timeout_ms % 1000) * 1000};
        redisSetTimeout(c->ctx, rt);
    }
}

uint64_t tq_conn_roundtrips(const tq_conn *c)
{
    return c->roundtrips;
}

static uint64_t next_rand(tq_conn *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return c->rng;
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
    char where[TQ_URL_HOST_MAX + 64];
    tq_url_redacted(&c->url, where, sizeof where);
    if (c->failures == 0)
        tq_warn("%s: redis %s unreachable (%s); retrying with backoff", c->name, where,
                why);
    else
        tq_debug("%s: redis %s still unreachable (%s); next try in %lld ms", c->name,
                 where, why, (long long)delay);
    c->failures++;
}

void tq_conn_drop(tq_conn *c, const char *why_)
{
    char why[128]; /* why_ often points into the context freed below */
    snprintf(why, sizeof why, "%s", why_ && *why_ ? why_ : "connection lost");
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    c->unflushed = 0;
    c->pending = 0;
    schedule_retry(c, why);
}

int64_t tq_conn_backoff_ms(const tq_conn *c)
{
    if (c->ctx)
        return 0;
    int64_t left = c->next_try_ms - tq_clock_mono_ms();
    return left > 0 ? left : 0;
}

/* Sends AUTH, SELECT and CLIENT SETNAME on a fresh context. */
static int handshake(tq_conn *c, char *why, size_t whylen)
{
    redisReply *r;
    if (c->url.password[0]) {
        if (c->url.user[0])
            r = redisCommand(c->ctx, "AUTH %s %s", c->url.user, c->url.password);
        else
            r = redisCommand(c->ctx, "AUTH %s", c->url.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "AUTH: %s", r ? r->str : c->ctx->errstr);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    if (c->url.db) {
        r = redisCommand(c->ctx, "SELECT %d", c->url.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "SELECT: %s", r ? r->str : c->ctx->errstr);
            freeReplyObject(r);
            return -1;
        }
        freeReplyObject(r);
    }
    char cname[NAME_MAX_];
    snprintf(cname, sizeof cname, "%s", c->name);
    for (char *p = cname; *p; p++)
        if (*p == ' ')
            *p = '_';
    r = redisCommand(c->ctx, "CLIENT SETNAME %s", cname);
    if (!r) {
        snprintf(why, whylen, "%s", c->ctx->errstr);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

int tq_conn_ensure(tq_conn *c)
{
    if (c->ctx)
        return 0;
    if (tq_clock_mono_ms() < c->next_try_ms)
        return TQ_EREDIS;

    struct timeval ct = {TQ_CONN_CONNECT_TIMEOUT_MS / 1000,
                         (TQ_CONN_CONNECT_TIMEOUT_MS % 1000) * 1000};
    struct timeval rt = {(time_t)(c->timeout_ms / 1000),
                         (suseconds_t)(c->timeout_ms % 1000) * 1000};
    char why[256] = "out of memory";
    if (c->url.is_unix)
        c->ctx = redisConnectUnixWithTimeout(c->url.host, ct);
    else
        c->ctx = redisConnectWithTimeout(c->url.host, c->url.port, ct);
    if (c->ctx && !c->ctx->err && redisSetTimeout(c->ctx, rt) == REDIS_OK &&
        (c->url.is_unix || redisEnableKeepAlive(c->ctx) == REDIS_OK) &&
        handshake(c, why, sizeof why) == 0) {
        if (c->failures) {
            tq_info("%s: redis connection restored after %d failed attempts", c->name,
                    c->failures);
        }
        c->failures = 0;
        return 0;
    }
    if (c->ctx && c->ctx->err && strcmp(why, "out of memory") == 0)
        snprintf(why, sizeof why, "%s", c->ctx->errstr);
    if (!why[0])
        snprintf(why, sizeof why, "no answer within the timeout");
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    schedule_retry(c, why);
    return TQ_EREDIS;
}

int tq_conn_append(tq_conn *c, int argc, const char **argv, const size_t *lens)
{
    if (tq_conn_ensure(c) < 0)
        return TQ_EREDIS;
    if (redisAppendCommandArgv(c->ctx, argc, argv, lens) != REDIS_OK) {
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
    if (!c->ctx || c->pending == 0)
        return NULL;
    if (c->unflushed) {
        c->roundtrips++;
        c->unflushed = 0;
    }
    if (redisGetReply(c->ctx, &reply) != REDIS_OK || !reply) {
        tq_conn_drop(c, c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
        return NULL;
    }
    c->pending--;
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

redisReply *tq_conn_cmd(tq_conn *c, const char *fmt, ...)
{
    va_list ap;
    if (c->pending)
        tq_conn_drop(c, "unread pipelined replies");
    if (tq_conn_ensure(c) < 0)
        return NULL;
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

static pthread_mutex_t script_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *script_sha(tq_script *s)
{
    pthread_mutex_lock(&script_lock);
    if (!s->ready) {
        tq_sha1_hex(s->src, strlen(s->src), s->sha);
        s->ready = 1;
    }
    pthread_mutex_unlock(&script_lock);
    return s->sha;
}

#define EVAL_ARGS_MAX 4096

/* Appends EVAL or EVALSHA of s; argv holds keys, then arguments. */
static int append_script(tq_conn *c, const char *verb, const char *body, int nkeys,
                         int nargs, const char **argv, const size_t *lens)
{
    int total = nkeys + nargs;
    if (total > EVAL_ARGS_MAX)
        return TQ_EINVAL;
    const char **v = malloc(sizeof *v * (size_t)(total + 3));
    size_t *l = malloc(sizeof *l * (size_t)(total + 3));
    char nk[16];
    if (!v || !l) {
        free(v);
        free(l);
        return TQ_ENOMEM;
    }
    snprintf(nk, sizeof nk, "%d", nkeys);
    v[0] = verb;
    l[0] = strlen(verb);
    v[1] = body;
    l[1] = strlen(body);
    v[2] = nk;
    l[2] = strlen(nk);
    for (int i = 0; i < total; i++) {
        v[i + 3] = argv[i];
        l[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    int rc = tq_conn_append(c, total + 3, v, l);
    free(v);
    free(l);
    return rc;
}

int tq_conn_append_eval(tq_conn *c, tq_script *s, int nkeys, int nargs, const char **argv,
                        const size_t *lens)
{
    return append_script(c, "EVALSHA", script_sha(s), nkeys, nargs, argv, lens);
}

int tq_conn_is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

redisReply *tq_conn_eval(tq_conn *c, tq_script *s, int nkeys, int nargs,
                         const char **argv, const size_t *lens)
{
    if (c->pending)
        tq_conn_drop(c, "unread pipelined replies");
    if (append_script(c, "EVALSHA", script_sha(s), nkeys, nargs, argv, lens) < 0)
        return NULL;
    redisReply *r = tq_conn_reply(c);
    if (!tq_conn_is_noscript(r))
        return r;
    freeReplyObject(r);
    if (append_script(c, "EVAL", s->src, nkeys, nargs, argv, lens) < 0)
        return NULL;
    return tq_conn_reply(c);
}
