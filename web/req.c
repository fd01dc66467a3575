/* A request's parameters, query and Redis access (see web/req.h). */
#include "web/req.h"

#include "common/broker.h"
#include "common/clock.h"
#include "common/err.h"
#include "web/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first request after Redis restarted finds the thread's old socket
 * dead. Such a failure is immediate, so a request whose command failed this
 * fast on a connection that was up retries once, after the connection's first
 * backoff step (at most this long). A slow failure (a Redis that hangs) is
 * not retried: the wait is bounded by the command timeout once, not twice. */
#define STALE_FAILURE_MS 500
#define STALE_RETRY_WAIT_MAX_MS 200

const char *web_req_param(const web_req *rq, int i)
{
    return i >= 0 && i < rq->nparams ? rq->params[i] : "";
}

/* Decodes len bytes of a query value ('+' is a space, %XX a byte) into out.
 * Returns 0, or -1 for a bad escape, a NUL or control byte, or no room. */
static int query_decode(const char *in, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = web_http_hex(in[i + 1]), lo = web_http_hex(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || n + 1 >= outlen)
            return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

int web_req_query(const web_req *rq, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (outlen)
        out[0] = '\0';
    for (const char *p = rq->query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen > nl && p[nl] == '=' && memcmp(p, name, nl) == 0) {
            if (query_decode(p + nl + 1, plen - nl - 1, out, outlen) < 0) {
                if (outlen)
                    out[0] = '\0';
                return -1;
            }
            return 1;
        }
        if (plen == nl && memcmp(p, name, nl) == 0) /* "name" alone: empty */
            return 1;
        p = amp ? amp + 1 : NULL;
    }
    return 0;
}

int web_req_query_int(const web_req *rq, const char *name, long long lo, long long hi,
                      long long def, long long *out)
{
    char buf[32], *end;
    int found = web_req_query(rq, name, buf, sizeof buf);
    if (found == 0 || (found == 1 && buf[0] == '\0')) {
        *out = def;
        return 0;
    }
    if (found < 0 || buf[0] < '0' || buf[0] > '9')
        return -1;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int web_req_key(const web_req *rq, tq_key k, const char *queue, const char *arg,
                char *buf)
{
    return tq_keys_fmt(rq->env->prefix, k, queue, arg, buf, TQ_KEYS_MAX) < 0 ? TQ_ETOOBIG
                                                                             : 0;
}

/* Runs a command (argc/argv/lens), or with name the call of the library
 * function tickq_<name> whose first nkeys arguments are keys, with the
 * stale-socket retry. */
static redisReply *with_retry(web_req *rq, const char *name, int argc, int nkeys,
                              const char **argv, const size_t *lens)
{
    if (!rq->redis)
        return NULL;
    int was_up = tq_conn_ensure(rq->redis) == 0;
    for (int attempt = 0;; attempt++) {
        int64_t t0 = tq_clock_mono_ms();
        redisReply *r =
            name ? tq_broker_call(rq->redis, name, nkeys, argc - nkeys, argv, lens)
                 : tq_conn_cmdargv(rq->redis, argc, argv, lens);
        if (r || !was_up || attempt > 0 || tq_clock_mono_ms() - t0 > STALE_FAILURE_MS)
            return r;
        int64_t wait_ms = tq_conn_backoff_ms(rq->redis);
        if (wait_ms > STALE_RETRY_WAIT_MAX_MS)
            return NULL;
        tq_clock_sleep_us(wait_ms * 1000);
    }
}

redisReply *web_req_redis(web_req *rq, int argc, const char **argv, const size_t *lens)
{
    return with_retry(rq, NULL, argc, 0, argv, lens);
}

redisReply *web_req_fcall(web_req *rq, const char *name, int nkeys, int nargs,
                          const char **argv, const size_t *lens)
{
    return with_retry(rq, name, nkeys + nargs, nkeys, argv, lens);
}

/* 1 when cmd, of argc words, is a library call: {"FCALL", name, nkeys,
 * keys..., arguments...} (see web_req_pipeline()). *nkeys gets its key
 * count, -1 when that is not a count of its words. */
static int is_fcall(int argc, const char *const *cmd, int *nkeys)
{
    if (argc < 3 || strcmp(cmd[0], "FCALL") != 0)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(cmd[2], &end, 10);
    *nkeys = errno || end == cmd[2] || *end || n < 0 || n > argc - 3 ? -1 : (int)n;
    return 1;
}

/* Appends one command of a pipeline. Returns 0, or -1 with the connection
 * dropped, so that no reply is owed for the commands appended before. */
static int append_one(tq_conn *c, int argc, const char *const *cmd, const size_t *lens)
{
    int nkeys;
    if (!is_fcall(argc, cmd, &nkeys))
        return tq_conn_append(c, argc, (const char **)cmd, lens) == 0 ? 0 : -1;
    int rc = nkeys < 0 ? TQ_EINVAL
                       : tq_broker_append(c, cmd[1], nkeys, argc - 3 - nkeys,
                                          (const char **)cmd + 3, lens ? lens + 3 : NULL);
    if (rc == 0)
        return 0;
    if (rc != TQ_EREDIS) /* TQ_EREDIS has dropped it already */
        tq_conn_drop(c, "a library call that cannot be sent");
    return -1;
}

/* Replaces out[i] of each library call whose reply says the library is
 * missing or of another version (the call did nothing) with the reply of
 * the same call made again by tq_broker_call(), which loads it. Returns 0,
 * or -1 when Redis could not be reached (out[i] is then NULL). */
static int reload(tq_conn *c, int n, const int *argcs, const char *const *const *cmds,
                  const size_t *const *lens, redisReply **out)
{
    for (int i = 0; i < n; i++) {
        int nkeys;
        if (!tq_broker_needs_load(out[i]) || !is_fcall(argcs[i], cmds[i], &nkeys))
            continue;
        freeReplyObject(out[i]);
        out[i] = tq_broker_call(c, cmds[i][1], nkeys, argcs[i] - 3 - nkeys,
                                (const char **)cmds[i] + 3, lens ? lens[i] + 3 : NULL);
        if (!out[i])
            return -1;
    }
    return 0;
}

int web_req_pipeline(web_req *rq, int n, const int *argcs, const char *const *const *cmds,
                     const size_t *const *lens, redisReply **out)
{
    if (!rq->redis || n > WEB_REQ_PIPELINE_MAX)
        return -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        int was_up = tq_conn_ensure(rq->redis) == 0;
        int64_t t0 = tq_clock_mono_ms();
        int i = 0, ok = was_up;
        for (; ok && i < n; i++)
            ok = append_one(rq->redis, argcs[i], cmds[i], lens ? lens[i] : NULL) == 0;
        for (i = 0; ok && i < n; i++)
            ok = (out[i] = tq_conn_reply(rq->redis)) != NULL;
        if (ok && reload(rq->redis, n, argcs, cmds, lens, out) == 0)
            return 0;
        for (int j = 0; j < i; j++) {
            freeReplyObject(out[j]);
            out[j] = NULL;
        }
        /* A failed append or read has dropped the connection (no reply is
         * owed any more, nor after a failed reload): reconnect after its
         * first backoff step. */
        int64_t wait_ms = tq_conn_backoff_ms(rq->redis);
        if (!was_up || tq_clock_mono_ms() - t0 > STALE_FAILURE_MS ||
            wait_ms > STALE_RETRY_WAIT_MAX_MS)
            return -1;
        tq_clock_sleep_us(wait_ms * 1000);
    }
    return -1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

int web_req_queues(web_req *rq, char (*names)[TQ_CONFIG_NAME_MAX])
{
    char key[TQ_KEYS_MAX];
    web_req_key(rq, TQ_KEY_QUEUES, NULL, NULL, key);
    const char *argv[] = {"SMEMBERS", key};
    redisReply *r = web_req_redis(rq, 2, argv, NULL);
    if (!r)
        return -1;
    int n = 0;
    snprintf(names[n++], TQ_CONFIG_NAME_MAX, "default");
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (n == WEB_REQ_QUEUES_MAX || e->type != REDIS_REPLY_STRING ||
            e->len >= TQ_CONFIG_NAME_MAX || !tq_config_name_ok(e->str) ||
            strcmp(e->str, "default") == 0)
            continue;
        memcpy(names[n++], e->str, e->len + 1);
    }
    freeReplyObject(r);
    qsort(names + 1, (size_t)n - 1, sizeof names[0], by_name);
    return n;
}
