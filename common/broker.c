/* Calls into the broker's Function library (see broker.h). */
#include "common/broker.h"
#include "common/keys.h"
#include "common/slot.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tq_broker_needs_load(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "TICKQVERSION", 12) == 0 ||
            strncmp(r->str, "ERR Function not found", 22) == 0);
}

/* After a refused FUNCTION LOAD (an ACL user without +function, Redis out
 * of memory, another library owning a name), the whole process waits this
 * long before it tries again, and says so at most this often: every
 * thread's call would otherwise load (a few ms of Redis' time each) and
 * log in a loop. */
#define LOAD_RETRY_MS 1000
#define LOAD_LOG_EVERY_MS 30000
static _Atomic int64_t load_after_ms, load_logged_ms;

int tq_broker_load(tq_conn *c)
{
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", tq_broker_library};
    redisReply *r = tq_conn_cmdargv(c, 4, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        int64_t now = tq_clock_mono_ms(), last = atomic_load(&load_logged_ms);
        atomic_store(&load_after_ms, now + LOAD_RETRY_MS);
        if ((last == 0 || now - last >= LOAD_LOG_EVERY_MS) &&
            atomic_compare_exchange_strong(&load_logged_ms, &last, now ? now : 1))
            tq_error("loading the tickq function library %s failed: %s (retrying, this "
                     "error is repeated at most every %d s)",
                     tq_broker_version, r->str, LOAD_LOG_EVERY_MS / 1000);
        rc = TQ_EREPLY;
    } else {
        atomic_store(&load_logged_ms, 0);
        tq_info("loaded the tickq function library %s", tq_broker_version);
    }
    freeReplyObject(r);
    return rc;
}

/* The argument vector of one FCALL of tickq_<name>: the keys, the version,
 * the arguments. */
typedef struct {
    const char **v;
    size_t *l;
    int n;
    char fname[64], nk[16];
} fcall;

int tq_broker_read_only(const char *name)
{
    static const char *const ro[] = {"version", "info", "dead_page", "hgetall_bounded",
                                     "list_read"};
    for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++)
        if (strcmp(name, ro[i]) == 0)
            return 1;
    return 0;
}

/* Builds f. Returns 0, TQ_EINVAL for a bad count or TQ_ENOMEM; free it
 * with fcall_free() in every case. */
static int fcall_make(fcall *f, const char *name, int nkeys, int nargs, const char **argv,
                      const size_t *lens)
{
    int total = nkeys + nargs;
    f->v = NULL;
    f->l = NULL;
    if (nkeys < 0 || nargs < 0 || total > TQ_BROKER_ARGS_MAX)
        return TQ_EINVAL;
    f->v = malloc(sizeof *f->v * (size_t)(total + 4));
    f->l = malloc(sizeof *f->l * (size_t)(total + 4));
    if (!f->v || !f->l)
        return TQ_ENOMEM;
    snprintf(f->fname, sizeof f->fname, "tickq_%s", name);
    snprintf(f->nk, sizeof f->nk, "%d", nkeys);
    const char **v = f->v;
    v[0] = tq_broker_read_only(name) ? "FCALL_RO" : "FCALL";
    v[1] = f->fname;
    v[2] = f->nk;
    int k = 3;
    for (int i = 0; i < total; i++) {
        if (i == nkeys)
            v[k++] = tq_broker_version;
        v[k++] = argv[i];
    }
    if (nargs == 0)
        v[k++] = tq_broker_version;
    for (int i = 0; i < k; i++) /* with lens, the arguments need no NUL */
        f->l[i] = i < 3 || v[i] == tq_broker_version || !lens ? strlen(v[i]) : 0;
    for (int i = 0; i < total && lens; i++)
        f->l[i < nkeys ? 3 + i : 4 + i] = lens[i];
    f->n = k;
    /* Every key of a call in one slot (common/keys.h), on one Redis as on
     * a cluster: a call that breaks it is a bug, refused here, so that
     * every test on one Redis checks what a cluster would. */
    for (int i = 1; i < nkeys; i++)
        if (tq_slot(v[3 + i], f->l[3 + i]) != tq_slot(v[3], f->l[3])) {
            tq_error("tickq_%s: key %.*s is not in the slot of key %.*s: not sent", name,
                     (int)(f->l[3 + i] < 200 ? f->l[3 + i] : 200), v[3 + i],
                     (int)(f->l[3] < 200 ? f->l[3] : 200), v[3]);
            return TQ_EINVAL;
        }
    return 0;
}

static void fcall_free(fcall *f)
{
    free(f->v);
    free(f->l);
}

int tq_broker_wait(tq_conn *c, int replicas, int64_t timeout_ms)
{
    static _Atomic int64_t warned_ms = 0;
    if (replicas <= 0)
        return 0;
    /* WAIT blocks up to timeout_ms: the connection must wait longer. */
    int64_t was = tq_conn_timeout_ms(c);
    if (timeout_ms + 1000 > was)
        tq_conn_set_timeout_ms(c, timeout_ms + 1000);
    redisReply *r = tq_conn_cmd(c, "WAIT %d %lld", replicas, (long long)timeout_ms);
    if (tq_conn_timeout_ms(c) != was)
        tq_conn_set_timeout_ms(c, was);
    if (!r)
        return TQ_EREDIS;
    long long got = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    int64_t now = tq_clock_mono_ms(), last = atomic_load(&warned_ms);
    if (got < replicas && (last == 0 || now - last >= 60000) &&
        atomic_compare_exchange_strong(&warned_ms, &last, now ? now : 1))
        tq_warn("WAIT %d %lld: %s; the writes stand, but a failover before they reach a "
                "replica loses them (this warning is repeated at most once a minute)",
                replicas, (long long)timeout_ms,
                got >= 0                       ? "fewer replicas acknowledged in time"
                : r->type == REDIS_REPLY_ERROR ? r->str
                                               : "an unexpected reply");
    freeReplyObject(r);
    return got < 0 ? 0 : (int)got;
}

int tq_broker_append(tq_conn *c, const char *name, int nkeys, int nargs,
                     const char **argv, const size_t *lens)
{
    fcall f;
    int rc = fcall_make(&f, name, nkeys, nargs, argv, lens);
    if (rc == 0)
        rc = tq_conn_append(c, f.n, f.v, f.l);
    fcall_free(&f);
    return rc;
}

redisReply *tq_broker_call(tq_conn *c, const char *name, int nkeys, int nargs,
                           const char **argv, const size_t *lens)
{
    fcall f;
    redisReply *r = NULL;
    if (fcall_make(&f, name, nkeys, nargs, argv, lens) < 0)
        goto out;
    /* A refused load leaves the call's error reply as the answer, so the
     * caller pauses as after any error reply, not as after an outage. */
    r = tq_conn_cmdargv(c, f.n, f.v, f.l);
    if (tq_broker_needs_load(r) && tq_clock_mono_ms() >= atomic_load(&load_after_ms)) {
        int rc = tq_broker_load(c);
        if (rc == 0) {
            freeReplyObject(r);
            r = tq_conn_cmdargv(c, f.n, f.v, f.l);
        } else if (rc == TQ_EREDIS) {
            freeReplyObject(r);
            r = NULL;
        }
    }
out:
    fcall_free(&f);
    return r;
}

/* A MessagePack header: the one-byte fix form when n fits in its bits,
 * else the marker and n big-endian in w bytes. */
static void pack_head(tq_buf *b, uint32_t n, unsigned fix, uint32_t fixmax,
                      unsigned char m16, unsigned char m32)
{
    unsigned char h[5];
    size_t len;
    if (n <= fixmax) {
        h[0] = (unsigned char)(fix | n);
        len = 1;
    } else if (n <= 0xffff) {
        h[0] = m16;
        h[1] = (unsigned char)(n >> 8);
        h[2] = (unsigned char)n;
        len = 3;
    } else {
        h[0] = m32;
        for (int i = 0; i < 4; i++)
            h[1 + i] = (unsigned char)(n >> (24 - 8 * i));
        len = 5;
    }
    tq_buf_put(b, (const char *)h, len);
}

void tq_broker_pack_array(tq_buf *b, uint32_t n)
{
    pack_head(b, n, 0x90, 15, 0xdc, 0xdd);
}

void tq_broker_pack_map(tq_buf *b, uint32_t n)
{
    pack_head(b, n, 0x80, 15, 0xde, 0xdf);
}

void tq_broker_pack_str(tq_buf *b, const char *s, size_t len)
{
    if (len > UINT32_MAX) {
        b->oom = 1;
        return;
    }
    /* fixstr, then str16 and str32 (str8 would do too). */
    pack_head(b, (uint32_t)len, 0xa0, 31, 0xda, 0xdb);
    tq_buf_put(b, s, len);
}

void tq_broker_pack_cstr(tq_buf *b, const char *s)
{
    tq_broker_pack_str(b, s, strlen(s));
}

void tq_broker_pack_int(tq_buf *b, int64_t v)
{
    unsigned char h[9];
    if (v >= 0 && v <= 127) {
        h[0] = (unsigned char)v;
        tq_buf_put(b, (const char *)h, 1);
        return;
    }
    uint64_t u = (uint64_t)v;
    h[0] = 0xd3; /* int 64 */
    for (int i = 0; i < 8; i++)
        h[1 + i] = (unsigned char)(u >> (56 - 8 * i));
    tq_buf_put(b, (const char *)h, 9);
}

int tq_broker_old_layout(tq_conn *c, const char *prefix, char *found, size_t len)
{
    static const char *const families[] = {
        "schedules", "schedule-state", "beat:leader",   "workers", "stats", "dead",
        "delayed",   "queue:default",  "counter:timer", "events",  "paused"};
    enum { N = sizeof families / sizeof families[0] };
    char keys[N][TQ_KEYS_MAX];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "%.64s:%s", prefix, families[i]);
        const char *argv[] = {"EXISTS", keys[i]};
        if (tq_conn_append(c, 2, argv, NULL) < 0)
            return TQ_EREDIS;
    }
    int any = 0;
    size_t used = 0;
    found[0] = '\0';
    for (int i = 0; i < N; i++) {
        redisReply *r = tq_conn_reply(c);
        if (!r)
            return TQ_EREDIS;
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
            any = 1;
            if (used < len) {
                int n =
                    snprintf(found + used, len - used, "%s%s", used ? ", " : "", keys[i]);
                used += n > 0 ? (size_t)n : 0;
            }
        }
        freeReplyObject(r);
    }
    return any;
}
