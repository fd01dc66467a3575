/* The JSON reads of tickq-web (see web/api.h and docs/API.md). Each handler
 * reads Redis in a few pipelined round trips and shapes the answer; none
 * writes. A key of the wrong type is an error naming the key (500), Redis
 * being unreachable is 503. */
#include "web/api.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/metrics.h"
#include "common/msg.h"
#include "common/sched.h"
#include "web/reply.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MINUTES 60                 /* the overview's per-minute series */
#define NEXT_RUNS 3                /* next fire times a schedule shows */
#define HISTORY_MAX 100            /* runs of a schedule shown (P:history keeps 100) */
#define SCAN_CHUNK 1000            /* index entries read per round trip in a search */
#define DEAD_SCAN_MAX 1000         /* dead letters a task's detail looks through */
#define PROCESSING_SCAN_MAX 100000 /* messages of a worker's processing list */
#define FOUND_MAX 4                /* entries holding a task's id a detail reads */
#define QUEUES_MAX 256             /* queues /api/queues lists */
#define WORKERS_MAX 1000           /* workers /api/workers lists */
#define CURSOR_MAX 64              /* bytes of a cursor, with the NUL */
#define METRICS_FIELDS_MAX 100000  /* a bigger P:metrics is not read */
#define VIEW_EXTRA_MAX 72          /* commands a caller adds to the view's first read */
#define STR_(x) #x
#define STR(x) STR_(x)

/* What a key of the wrong type reads as. */
static const redisReply empty_array = {.type = REDIS_REPLY_ARRAY};

/* ---- small helpers ------------------------------------------------------ */

/* Writes ms as ISO 8601 UTC with milliseconds ("2026-11-28T10:00:00.000Z"). */
static void iso_utc(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm)) {
        snprintf(out, 32, "?");
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms - (int64_t)s * 1000));
}

static json_t *iso_json(int64_t ms)
{
    char buf[32];
    iso_utc(ms, buf);
    return json_string(buf);
}

/* A Redis string as a JSON string: valid UTF-8 kept, anything else made
 * printable ASCII. New reference. */
static json_t *str_json(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (j)
        return j;
    char clean[WEB_REPLY_CLEAN_MAX * 4];
    web_reply_clean(s, clean, sizeof clean);
    return json_string(clean);
}

/* Parses a Redis string holding a decimal integer. Returns 0 or -1. */
static int reply_ll(const redisReply *r, long long *out)
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
        return -1;
    char buf[24], *end;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* A zset score (ms since the epoch) as an integer: anything that is no
 * finite number, or lies outside years 0..9999, is clamped into them (a
 * score is whatever a client wrote; "inf" is a valid one). */
static int64_t reply_ms(const redisReply *r)
{
    const int64_t ms_max = 253402300799999; /* 9999-12-31T23:59:59.999Z */
    double d = r && r->type == REDIS_REPLY_STRING && r->str ? strtod(r->str, NULL) : 0;
    if (!(d > 0)) /* also NaN */
        return 0;
    return d > (double)ms_max ? ms_max : (int64_t)d;
}

/* A P:tasks score as the search's cursor counts it: the score itself
 * (integer ms) up to 2^63, every bigger one (and inf) as LLONG_MAX, which
 * the next slice reads from +inf; no number at all as 0. */
static long long index_score(const redisReply *r)
{
    double d = r && r->type == REDIS_REPLY_STRING && r->str ? strtod(r->str, NULL) : 0;
    if (!(d > 0))
        return 0;
    return d >= 9.2e18 ? LLONG_MAX : (long long)d;
}

/* JSON text in a Redis string, parsed: a new object, or NULL when it is not
 * JSON (the caller then shows the raw text). */
static json_t *reply_json(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING)
        return NULL;
    return json_loadb(r->str, r->len, JSON_REJECT_DUPLICATES, NULL);
}

static void free_replies(redisReply **r, int n)
{
    for (int i = 0; i < n; i++)
        freeReplyObject(r[i]);
}

/* 1 when r is an error reply (WRONGTYPE and the like). */
static int is_error(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR;
}

/* ---- what several routes read ------------------------------------------ */

/* A set of names (queues), small and ordered by first sight. */
typedef struct {
    char names[QUEUES_MAX][TQ_MSG_QUEUE_MAX];
    int n;
} name_set;

static void name_add(name_set *s, const char *name, size_t len)
{
    char buf[TQ_MSG_QUEUE_MAX];
    if (len == 0 || len >= sizeof buf || s->n >= QUEUES_MAX)
        return;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (!tq_config_name_ok(buf))
        return;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], buf) == 0)
            return;
    memcpy(s->names[s->n++], buf, len + 1);
}

/* The value of field in a HGETALL reply, or NULL. */
static const redisReply *hash_get(const redisReply *h, const char *field)
{
    if (!h || h->type != REDIS_REPLY_ARRAY)
        return NULL;
    size_t fl = strlen(field);
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->len == fl && memcmp(h->element[i]->str, field, fl) == 0)
            return h->element[i + 1];
    return NULL;
}

static long long hash_ll(const redisReply *h, const char *field)
{
    long long v = 0;
    reply_ll(hash_get(h, field), &v);
    return v;
}

/* What the worker routes and the queue routes share: the workers (id,
 * heartbeat, hash, processing lists), the queues in use with whether each
 * is paused and its labelled counters, and the schedules' definitions.
 * Read in three round trips: the global keys, then per worker and per
 * queue, then each worker's processing list of each of its queues. */
typedef struct {
    int nworkers;
    char (*ids)[TQ_CONFIG_NAME_MAX + 192]; /* worker ids as stored */
    int64_t *heartbeat_ms;
    redisReply **info;           /* HGETALL P:{@}:worker:<id>, per worker */
    redisReply **processing;     /* [i * nqueues + q]: LRANGE P:{q}:processing:<id>,
                                    NULL when worker i does not consume queue q */
    name_set *queues;            /* the queues in use, "default" first */
    int *paused;                 /* per queue */
    redisReply **metrics;        /* per queue: HGETALL P:{q}:metrics (bounded) */
    const redisReply *workers;   /* ZRANGE P:{@}:workers WITHSCORES */
    const redisReply *schedules; /* HVALS P:{@}:schedules */
    redisReply *raw[3];          /* the replies of those and of SMEMBERS P:{@}:queues */
    char warnings[1024];         /* keys left out, for the overview */
} system_view;

static void view_free(system_view *v)
{
    int nq = v->queues ? v->queues->n : 0;
    for (int i = 0; i < v->nworkers; i++) {
        freeReplyObject(v->info ? v->info[i] : NULL);
        for (int q = 0; v->processing && q < nq; q++)
            freeReplyObject(v->processing[i * nq + q]);
    }
    for (int q = 0; v->metrics && q < nq; q++)
        freeReplyObject(v->metrics[q]);
    free(v->ids);
    free(v->heartbeat_ms);
    free(v->info);
    free(v->processing);
    free(v->queues);
    free(v->paused);
    free(v->metrics);
    free_replies(v->raw, 3);
    memset(v, 0, sizeof *v);
}

/* Adds a warning to v's. */
static void view_warn(system_view *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void view_warn(system_view *v, const char *fmt, ...)
{
    size_t used = strlen(v->warnings);
    if (used + 3 >= sizeof v->warnings)
        return;
    if (used)
        used += (size_t)snprintf(v->warnings + used, sizeof v->warnings - used, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->warnings + used, sizeof v->warnings - used, fmt, ap);
    va_end(ap);
}

/* Runs n commands in round trips of WEB_REQ_PIPELINE_MAX. Returns 0 or -1
 * (Redis unreachable: the replies read are freed). */
static int pipeline_all(web_req *rq, int n, const int *ac, const char *const *const *cmds,
                        redisReply **out)
{
    for (int done = 0; done < n;) {
        int batch = n - done > WEB_REQ_PIPELINE_MAX ? WEB_REQ_PIPELINE_MAX : n - done;
        if (web_req_pipeline(rq, batch, ac + done, cmds + done, NULL, out + done) < 0) {
            free_replies(out, done);
            memset(out, 0, sizeof *out * (size_t)n);
            return -1;
        }
        done += batch;
    }
    return 0;
}

/* Adds the queue names of a comma-separated list (a worker's "queues"). */
static void names_add_list(name_set *set, const redisReply *q)
{
    if (!q || q->type != REDIS_REPLY_STRING)
        return;
    for (const char *p = q->str, *end = q->str + q->len; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = comma ? (size_t)(comma - p) : (size_t)(end - p);
        name_add(set, p, len);
        p += len + 1;
    }
}

/* The index of queue name in set, or -1. */
static int name_find(const name_set *set, const char *name, size_t len)
{
    for (int i = 0; i < set->n; i++)
        if (strlen(set->names[i]) == len && memcmp(set->names[i], name, len) == 0)
            return i;
    return -1;
}

/* The queues in use (web_req_queues()) into set. Returns 0 or -1. */
static int queue_names(web_req *rq, name_set *set)
{
    char(*names)[TQ_CONFIG_NAME_MAX] = calloc(WEB_REQ_QUEUES_MAX, sizeof *names);
    int n = names ? web_req_queues(rq, names) : -1;
    set->n = 0;
    for (int i = 0; i < n; i++)
        name_add(set, names[i], strlen(names[i]));
    free(names);
    return n < 0 ? -1 : 0;
}

/* A new set of the queue only, when only[0], else of every queue in use.
 * NULL with *rc TQ_ENOMEM or TQ_EREDIS. */
static name_set *queue_set(web_req *rq, const char *only, int *rc)
{
    name_set *set = calloc(1, sizeof *set);
    *rc = set ? 0 : TQ_ENOMEM;
    if (set && only[0])
        name_add(set, only, strlen(only));
    else if (set && queue_names(rq, set) < 0) {
        free(set);
        set = NULL;
        *rc = TQ_EREDIS;
    }
    return set;
}

/* Reads the view. Returns 0, or the HTTP status with a sentence in err. */
static int view_read(web_req *rq, system_view *v, char *err, size_t errlen)
{
    char kw[TQ_KEYS_MAX], kq[TQ_KEYS_MAX], ks[TQ_KEYS_MAX];
    memset(v, 0, sizeof *v);
    if (web_req_key(rq, TQ_KEY_WORKERS, NULL, NULL, kw) ||
        web_req_key(rq, TQ_KEY_QUEUES, NULL, NULL, kq) ||
        web_req_key(rq, TQ_KEY_SCHEDULES, NULL, NULL, ks))
        return snprintf(err, errlen, "prefix too long"), 500;
    /* The freshest WORKERS_MAX heartbeats (a zset ranks by score). */
    const char *c0[] = {"ZRANGE", kw, "-" STR(WORKERS_MAX), "-1", "WITHSCORES"};
    const char *c1[] = {"SMEMBERS", kq};
    const char *c2[] = {"HVALS", ks};
    const char *const *cmds[3] = {c0, c1, c2};
    int argcs[3] = {5, 2, 2};
    const char *keys[] = {kw, kq, ks};
    if (web_req_pipeline(rq, 3, argcs, cmds, NULL, v->raw) < 0)
        return snprintf(err, errlen, "%s", tq_strerror(TQ_EREDIS)), 503;
    /* A key of the wrong type counts as empty, with a warning: one broken
     * key must not hide every queue. */
    const redisReply *use[3];
    for (int i = 0; i < 3; i++) {
        const redisReply *r = v->raw[i];
        use[i] = r;
        if (r->type == REDIS_REPLY_ARRAY)
            continue;
        use[i] = &empty_array;
        if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "WRONGTYPE")) {
            view_warn(v, "%s holds a value of the wrong type: left out", keys[i]);
        } else {
            char shown[WEB_REPLY_CLEAN_MAX];
            web_reply_clean(r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply",
                            shown, sizeof shown);
            snprintf(err, errlen, "reading %s: %s", keys[i], shown);
            view_free(v);
            return 503;
        }
    }
    v->workers = use[0];
    v->schedules = use[2];
    v->queues = calloc(1, sizeof *v->queues);
    if (!v->queues) {
        view_free(v);
        return snprintf(err, errlen, "out of memory"), 503;
    }
    name_add(v->queues, "default", 7);
    for (size_t i = 0; i < use[1]->elements; i++)
        name_add(v->queues, use[1]->element[i]->str, use[1]->element[i]->len);
    for (size_t i = 0; i < v->schedules->elements; i++) {
        json_t *j = reply_json(v->schedules->element[i]);
        const char *q = json_string_value(json_object_get(j, "queue"));
        if (q)
            name_add(v->queues, q, strlen(q));
        json_decref(j);
    }

    int n = (int)(v->workers->elements / 2);
    if (n > WORKERS_MAX)
        n = WORKERS_MAX;
    v->ids = calloc((size_t)n + 1, sizeof *v->ids);
    v->heartbeat_ms = calloc((size_t)n + 1, sizeof *v->heartbeat_ms);
    v->info = calloc((size_t)n + 1, sizeof *v->info);
    if (!v->ids || !v->heartbeat_ms || !v->info) {
        view_free(v);
        return snprintf(err, errlen, "out of memory"), 503;
    }
    /* Per worker: HGETALL P:{@}:worker:<id>; then per queue: EXISTS
     * P:{q}:paused and its metrics (tickq_hgetall_bounded: the labels are
     * bounded by the tasks in use, but nothing stops a client). The
     * workers' hashes may name queues the registry lacks: those are read
     * in the next round trip. */
    typedef struct {
        char key[TQ_KEYS_MAX];
        const char *cmd[5];
    } one;
    int cap = n + 2 * QUEUES_MAX;
    one *oc = calloc((size_t)cap + 1, sizeof *oc);
    const char *const **cmdv = calloc((size_t)cap + 1, sizeof *cmdv);
    int *ac = calloc((size_t)cap + 1, sizeof *ac);
    redisReply **rr = calloc((size_t)cap + 1, sizeof *rr);
    int rc = oc && cmdv && ac && rr ? 0 : -2;
    for (int i = 0; rc == 0 && i < n; i++) {
        const redisReply *id = v->workers->element[i * 2];
        const redisReply *score = v->workers->element[i * 2 + 1];
        size_t len = id->len < sizeof v->ids[0] - 1 ? id->len : sizeof v->ids[0] - 1;
        memcpy(v->ids[i], id->str, len);
        v->ids[i][len] = '\0';
        v->heartbeat_ms[i] = reply_ms(score);
        web_req_key(rq, TQ_KEY_WORKER, NULL, v->ids[i], oc[i].key);
        oc[i].cmd[0] = "HGETALL";
        oc[i].cmd[1] = oc[i].key;
        cmdv[i] = oc[i].cmd;
        ac[i] = 2;
    }
    if (rc == 0 && n && pipeline_all(rq, n, ac, cmdv, rr) < 0)
        rc = -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        v->info[i] = rr[i];
        names_add_list(v->queues, hash_get(rr[i], "queues"));
    }
    if (rc == 0)
        v->nworkers = n;
    int nq = v->queues->n;
    v->paused = calloc((size_t)nq + 1, sizeof *v->paused);
    v->metrics = calloc((size_t)nq + 1, sizeof *v->metrics);
    v->processing = calloc((size_t)n * (size_t)nq + 1, sizeof *v->processing);
    if (rc == 0 && (!v->paused || !v->metrics || !v->processing))
        rc = -2;
    for (int q = 0; rc == 0 && q < nq; q++) {
        one *p = &oc[2 * q], *m = &oc[2 * q + 1];
        web_req_key(rq, TQ_KEY_PAUSED, v->queues->names[q], NULL, p->key);
        web_req_key(rq, TQ_KEY_METRICS, v->queues->names[q], NULL, m->key);
        p->cmd[0] = "EXISTS";
        p->cmd[1] = p->key;
        m->cmd[0] = "FCALL";
        m->cmd[1] = "hgetall_bounded";
        m->cmd[2] = "1";
        m->cmd[3] = m->key;
        m->cmd[4] = STR(METRICS_FIELDS_MAX);
        cmdv[2 * q] = p->cmd;
        cmdv[2 * q + 1] = m->cmd;
        ac[2 * q] = 2;
        ac[2 * q + 1] = 5;
    }
    if (rc == 0 && pipeline_all(rq, 2 * nq, ac, cmdv, rr) < 0)
        rc = -1;
    for (int q = 0; rc == 0 && q < nq; q++) {
        redisReply *p = rr[2 * q], *m = rr[2 * q + 1];
        v->paused[q] = p->type == REDIS_REPLY_INTEGER && p->integer > 0;
        freeReplyObject(p);
        if (m->type != REDIS_REPLY_ARRAY) {
            if (m->type == REDIS_REPLY_NIL)
                view_warn(v, "%s has more than %d fields: left out", oc[2 * q + 1].key,
                          METRICS_FIELDS_MAX);
            else
                view_warn(v, "%s holds a value of the wrong type: left out",
                          oc[2 * q + 1].key);
            freeReplyObject(m);
            m = NULL;
        }
        v->metrics[q] = m;
    }
    /* Each worker's processing list of each queue it consumes. */
    free(oc);
    free(cmdv);
    free(ac);
    free(rr);
    int np = 0;
    for (int i = 0; i < n; i++) {
        name_set mine = {.n = 0};
        names_add_list(&mine, hash_get(v->info[i], "queues"));
        np += mine.n;
    }
    oc = calloc((size_t)np + 1, sizeof *oc);
    cmdv = calloc((size_t)np + 1, sizeof *cmdv);
    ac = calloc((size_t)np + 1, sizeof *ac);
    rr = calloc((size_t)np + 1, sizeof *rr);
    int *slot = calloc((size_t)np + 1, sizeof *slot);
    if (rc == 0 && (!oc || !cmdv || !ac || !rr || !slot))
        rc = -2;
    int k = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        name_set mine = {.n = 0};
        names_add_list(&mine, hash_get(v->info[i], "queues"));
        for (int j = 0; j < mine.n && k < np; j++) {
            int q = name_find(v->queues, mine.names[j], strlen(mine.names[j]));
            if (q < 0)
                continue;
            web_req_key(rq, TQ_KEY_PROCESSING, mine.names[j], v->ids[i], oc[k].key);
            oc[k].cmd[0] = "LRANGE";
            oc[k].cmd[1] = oc[k].key;
            oc[k].cmd[2] = "0";
            oc[k].cmd[3] = "-1";
            cmdv[k] = oc[k].cmd;
            ac[k] = 4;
            slot[k++] = i * nq + q;
        }
    }
    if (rc == 0 && k && pipeline_all(rq, k, ac, cmdv, rr) < 0)
        rc = -1;
    for (int j = 0; rc == 0 && j < k; j++)
        v->processing[slot[j]] = rr[j];
    free(oc);
    free(cmdv);
    free(ac);
    free(rr);
    free(slot);
    if (rc < 0) {
        view_free(v);
        return rc == -2 ? (snprintf(err, errlen, "out of memory"), 503)
                        : (snprintf(err, errlen, "%s", tq_strerror(TQ_EREDIS)), 503);
    }
    return 0;
}

static int worker_alive(const web_req *rq, int64_t heartbeat_ms, int64_t now_ms)
{
    return now_ms - heartbeat_ms <= rq->env->liveness_ms;
}

/* Sums the labelled counters "tasks\t<queue>\t<task>\t<state>" of the
 * view's metrics (each queue's P:{q}:metrics) over tasks, for one queue
 * (NULL: all queues) and one state. */
static long long metrics_sum(const system_view *v, const char *queue, const char *state)
{
    long long sum = 0;
    size_t ql = queue ? strlen(queue) : 0, sl = strlen(state);
    for (int k = 0; k < v->queues->n; k++) {
        const redisReply *m = v->metrics[k];
        for (size_t i = 0; m && i + 1 < m->elements; i += 2) {
            const redisReply *f = m->element[i];
            if (f->len < 6 || memcmp(f->str, "tasks\t", 6) != 0)
                continue;
            const char *q = f->str + 6, *end = f->str + f->len;
            const char *tab = memchr(q, '\t', (size_t)(end - q));
            const char *last = memrchr(f->str, '\t', f->len);
            if (!tab || !last || last <= tab)
                continue;
            if (queue && ((size_t)(tab - q) != ql || memcmp(q, queue, ql) != 0))
                continue;
            if ((size_t)(end - last - 1) != sl || memcmp(last + 1, state, sl) != 0)
                continue;
            long long val = 0;
            if (reply_ll(m->element[i + 1], &val) == 0)
                sum += val;
        }
    }
    return sum;
}

/* The messages in worker i's processing lists, all queues. */
static long long view_running(const system_view *v, int i)
{
    long long n = 0;
    for (int q = 0; q < v->queues->n; q++) {
        const redisReply *l = v->processing[i * v->queues->n + q];
        if (l && l->type == REDIS_REPLY_ARRAY)
            n += (long long)l->elements;
    }
    return n;
}

static json_t *queue_list(web_req *rq, const system_view *v, int64_t now_ms, int *status,
                          char *err, size_t errlen)
{
    const name_set *set = v->queues;
    int n = set->n;
    char(*keys)[TQ_KEYS_MAX] = calloc((size_t)n + 1, sizeof *keys);
    const char *(*cc)[4] = calloc((size_t)n * 2 + 1, sizeof *cc);
    const char *const **cmds = calloc((size_t)n * 2 + 1, sizeof *cmds);
    int *ac = calloc((size_t)n * 2 + 1, sizeof *ac);
    redisReply **r = calloc((size_t)n * 2 + 1, sizeof *r);
    json_t *out = json_array();
    if (!keys || !cc || !cmds || !ac || !r || !out) {
        *status = 503;
        snprintf(err, errlen, "out of memory");
        json_decref(out);
        out = NULL;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        web_req_key(rq, TQ_KEY_QUEUE, set->names[i], NULL, keys[i]);
        cc[2 * i][0] = "LLEN";
        cc[2 * i][1] = keys[i];
        cc[2 * i + 1][0] = "LINDEX";
        cc[2 * i + 1][1] = keys[i];
        cc[2 * i + 1][2] = "-1";
        cmds[2 * i] = cc[2 * i];
        cmds[2 * i + 1] = cc[2 * i + 1];
        ac[2 * i] = 2;
        ac[2 * i + 1] = 3;
    }
    /* Two commands a queue, WEB_REQ_PIPELINE_MAX a round trip. */
    if (pipeline_all(rq, n * 2, ac, cmds, r) < 0) {
        *status = 503;
        snprintf(err, errlen, "%s", tq_strerror(TQ_EREDIS));
        json_decref(out);
        out = NULL;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const redisReply *len = r[2 * i], *oldest = r[2 * i + 1];
        long long processing = 0;
        for (int w = 0; w < v->nworkers; w++) {
            const redisReply *l = v->processing[w * n + i];
            if (l && l->type == REDIS_REPLY_ARRAY)
                processing += (long long)l->elements;
        }
        json_t *q = json_pack("{s:s,s:b}", "name", set->names[i], "paused", v->paused[i]);
        if (is_error(len)) { /* a queue key of the wrong type: say so, go on */
            char shown[WEB_REPLY_CLEAN_MAX];
            web_reply_clean(len->str, shown, sizeof shown);
            json_object_set_new(q, "error", json_string(shown));
            json_object_set_new(q, "depth", json_null());
            json_object_set_new(q, "latency_s", json_null());
        } else {
            json_object_set_new(q, "depth", json_integer(len->integer));
            double latency = 0;
            json_t *m = reply_json(oldest);
            json_t *at = json_object_get(m, "enqueued_at");
            if (json_is_number(at))
                latency = (double)now_ms / 1000.0 - json_number_value(at);
            json_decref(m);
            json_object_set_new(
                q, "latency_s",
                json_real(latency > 0 ? round(latency * 1000) / 1000 : 0));
        }
        json_object_set_new(q, "processing", json_integer(processing));
        json_object_set_new(q, "processed",
                            json_integer(metrics_sum(v, set->names[i], "success")));
        json_object_set_new(q, "failed",
                            json_integer(metrics_sum(v, set->names[i], "failure") +
                                         metrics_sum(v, set->names[i], "dead")));
        json_array_append_new(out, q);
    }
    free_replies(r, n * 2);
done:
    free(keys);
    free(cc);
    free(cmds);
    free(ac);
    free(r);
    return out;
}

json_t *web_api_queue_list(web_req *rq, int *status, char *err, size_t errlen)
{
    system_view v;
    int st = view_read(rq, &v, err, errlen);
    if (st) {
        *status = st;
        return NULL;
    }
    json_t *out = queue_list(rq, &v, tq_clock_wall_ms(), status, err, errlen);
    view_free(&v);
    return out;
}

/* ---- routes ------------------------------------------------------------- */

int web_api_queues(web_req *rq)
{
    char err[512];
    int status = 0;
    json_t *q = web_api_queue_list(rq, &status, err, sizeof err);
    if (!q)
        return web_reply_error(rq, status, "%s", err);
    return web_reply_json(rq, 200, q);
}

/* The ids of the tasks worker i's processing lists hold. */
static json_t *running_ids(const system_view *v, int i)
{
    json_t *ids = json_array();
    for (int q = 0; q < v->queues->n; q++) {
        const redisReply *l = v->processing[i * v->queues->n + q];
        for (size_t j = 0; l && l->type == REDIS_REPLY_ARRAY && j < l->elements; j++) {
            json_t *m = reply_json(l->element[j]);
            const char *id = json_string_value(json_object_get(m, "id"));
            if (id)
                json_array_append_new(ids, json_string(id));
            json_decref(m);
        }
    }
    return ids;
}

static json_t *worker_json(const web_req *rq, const system_view *v, int i, int64_t now_ms)
{
    const redisReply *h = v->info[i];
    const redisReply *host = hash_get(h, "host"), *queues = hash_get(h, "queues");
    json_t *qs = json_array();
    if (queues && queues->type == REDIS_REPLY_STRING)
        for (const char *p = queues->str, *end = queues->str + queues->len; p < end;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            size_t len = comma ? (size_t)(comma - p) : (size_t)(end - p);
            json_array_append_new(qs, str_json(p, len));
            p += len + 1;
        }
    long long started = hash_ll(h, "started");
    return json_pack(
        "{s:s,s:o,s:I,s:o,s:I,s:o,s:o,s:b,s:I,s:I,s:o}", "id", v->ids[i], "host",
        host && host->type == REDIS_REPLY_STRING ? str_json(host->str, host->len)
                                                 : json_null(),
        "pid", (json_int_t)hash_ll(h, "pid"), "queues", qs, "concurrency",
        (json_int_t)hash_ll(h, "concurrency"), "started",
        started ? iso_json(started) : json_null(), "last_heartbeat",
        iso_json(v->heartbeat_ms[i]), "alive",
        worker_alive(rq, v->heartbeat_ms[i], now_ms), "processed",
        (json_int_t)hash_ll(h, "processed"), "failed", (json_int_t)hash_ll(h, "failed"),
        "running", running_ids(v, i));
}

int web_api_workers(web_req *rq)
{
    char err[512];
    system_view v;
    int st = view_read(rq, &v, err, sizeof err);
    if (st)
        return web_reply_error(rq, st, "%s", err);
    int64_t now = tq_clock_wall_ms();
    json_t *out = json_array();
    for (int i = v.nworkers - 1; i >= 0; i--) /* the freshest heartbeat first */
        json_array_append_new(out, worker_json(rq, &v, i, now));
    view_free(&v);
    return web_reply_json(rq, 200, out);
}

static const char *const minute_fields[] = {"processed", "failed", "retried", "dead",
                                            "expired"};
#define MINUTE_FIELDS 5

/* Copies the string s to p; returns the end. */
static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* The minutes as JSON text (an array) from the HGETALL replies r of nq
 * queues' MINUTES minute keys (r[q * MINUTES + i]), summed over the
 * queues: a new string whose length goes to *len, or NULL when out of
 * memory. Written, not built with jansson: 60 objects of 6 integers cost
 * more to build and dump than all the rest of the overview. A value that
 * is no integer counts 0, as does a minute of the wrong type (with a
 * warning). */
static char *minutes_text(redisReply *const *r, int nq, int64_t first_minute, size_t *len,
                          system_view *v, const char *first_bad)
{
    /* {"minute":<20>,"<field>":<20>,...} at most */
    char *out = malloc(MINUTES * (32 + MINUTE_FIELDS * 34) + 3), *p = out;
    if (!out)
        return NULL;
    int wrong = 0;
    *p++ = '[';
    for (int i = 0; i < MINUTES; i++) {
        p = put_str(p, i ? ",{\"minute\":" : "{\"minute\":");
        p = tq_fmt_ll(p, (long long)(first_minute + i));
        for (int f = 0; f < MINUTE_FIELDS; f++) {
            long long sum = 0;
            for (int q = 0; q < nq; q++) {
                wrong += f == 0 && is_error(r[q * MINUTES + i]);
                sum += hash_ll(r[q * MINUTES + i], minute_fields[f]);
            }
            *p++ = ',';
            *p++ = '"';
            p = put_str(p, minute_fields[f]);
            *p++ = '"';
            *p++ = ':';
            p = tq_fmt_ll(p, sum);
        }
        *p++ = '}';
    }
    *p++ = ']';
    *len = (size_t)(p - out);
    if (wrong)
        view_warn(v,
                  "%d of the last hour's minute keys hold a value of the wrong type (%s "
                  "first): counted 0",
                  wrong, first_bad);
    return out;
}

/* The Redis version, learnt once per connection (INFO is not cheap, and a
 * server does not change its version without dropping the connection). */
static _Thread_local struct {
    uint64_t connects;
    char version[32];
} redis_seen;

int web_api_overview(web_req *rq)
{
    char err[512];
    system_view v;
    int64_t t0 = tq_clock_mono_ms();
    int st = view_read(rq, &v, err, sizeof err);
    if (st)
        return web_reply_error(rq, st, "%s", err);
    int64_t latency_ms = tq_clock_mono_ms() - t0;
    /* Then, in one pipeline: the leader and its lease, Redis' version when
     * this connection has not told it yet, and per queue its counters,
     * dead letters, delayed messages and the last hour's minutes. */
    int nq = v.queues->n;
    uint64_t connects = rq->redis ? tq_conn_connects(rq->redis) : 0;
    int know_version = connects && redis_seen.connects == connects;
    int head = 2 + !know_version, per = 3 + MINUTES, n = head + per * nq;
    typedef struct {
        char key[TQ_KEYS_MAX];
        const char *cmd[3];
    } one;
    one *c = calloc((size_t)n + 1, sizeof *c);
    const char *const **cmds = calloc((size_t)n + 1, sizeof *cmds);
    int *ac = calloc((size_t)n + 1, sizeof *ac);
    redisReply **r = calloc((size_t)n + 1, sizeof *r);
    if (!c || !cmds || !ac || !r) {
        free(c);
        free(cmds);
        free(ac);
        free(r);
        view_free(&v);
        return web_reply_error(rq, 503, "out of memory");
    }
    web_req_key(rq, TQ_KEY_BEAT_LEADER, NULL, NULL, c[0].key);
    c[0].cmd[0] = "GET";
    c[1].cmd[0] = "PTTL";
    c[0].cmd[1] = c[1].cmd[1] = c[0].key;
    c[2].cmd[0] = "INFO";
    c[2].cmd[1] = "server";
    int64_t first_minute = tq_clock_wall_ms() / 60000 - (MINUTES - 1);
    for (int q = 0; q < nq; q++) {
        one *x = &c[head + per * q];
        const char *name = v.queues->names[q];
        web_req_key(rq, TQ_KEY_STATS, name, NULL, x[0].key);
        web_req_key(rq, TQ_KEY_DEAD, name, NULL, x[1].key);
        web_req_key(rq, TQ_KEY_DELAYED, name, NULL, x[2].key);
        x[0].cmd[0] = "HGETALL";
        x[1].cmd[0] = "LLEN";
        x[2].cmd[0] = "ZCARD";
        char stem[TQ_KEYS_MAX];
        tq_keys_stem(rq->env->prefix, TQ_KEY_MINUTE, name, stem, sizeof stem);
        size_t sl = strlen(stem);
        for (int i = 0; i < MINUTES; i++) {
            memcpy(x[3 + i].key, stem, sl);
            *tq_fmt_ll(x[3 + i].key + sl, (long long)(first_minute + i)) = '\0';
            x[3 + i].cmd[0] = "HGETALL";
        }
        for (int i = 0; i < per; i++)
            x[i].cmd[1] = x[i].key;
    }
    for (int i = 0; i < n; i++) {
        cmds[i] = c[i].cmd;
        ac[i] = 2;
    }
    if (pipeline_all(rq, n, ac, cmds, r) < 0) {
        free(c);
        free(cmds);
        free(ac);
        free(r);
        view_free(&v);
        return web_reply_error(rq, 503, "%s", tq_strerror(TQ_EREDIS));
    }
    if (!know_version) {
        const char *p =
            r[2]->type == REDIS_REPLY_STRING ? strstr(r[2]->str, "redis_version:") : NULL;
        redis_seen.version[0] = '\0';
        if (p)
            sscanf(p + 14, "%31[^\r\n]", redis_seen.version);
        /* Kept only when no reconnection came in between: INFO may have been
         * answered by the server before. */
        redis_seen.connects = connects == tq_conn_connects(rq->redis) ? connects : 0;
    }
    int64_t now = tq_clock_wall_ms();
    int status = 0;
    json_t *queues = queue_list(rq, &v, now, &status, err, sizeof err);
    if (!queues) {
        view_free(&v);
        free_replies(r, n);
        free(c);
        free(cmds);
        free(ac);
        free(r);
        return web_reply_error(rq, status, "%s", err);
    }
    json_t *counts = json_object();
    static const char *const fields[] = {"published",  "processed", "failed",
                                         "retried",    "expired",   "dead",
                                         "duplicates", "requeued",  "promoted"};
    long long dead = 0, delayed = 0;
    redisReply **minute = calloc((size_t)nq * MINUTES + 1, sizeof *minute);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        long long sum = 0;
        for (int q = 0; q < nq; q++)
            sum += hash_ll(r[head + per * q], fields[i]);
        json_object_set_new(counts, fields[i], json_integer(sum));
    }
    for (int q = 0; q < nq; q++) {
        const redisReply *d = r[head + per * q + 1], *dl = r[head + per * q + 2];
        dead += d->type == REDIS_REPLY_INTEGER ? d->integer : 0;
        delayed += dl->type == REDIS_REPLY_INTEGER ? dl->integer : 0;
        for (int i = 0; minute && i < MINUTES; i++)
            minute[q * MINUTES + i] = r[head + per * q + 3 + i];
    }
    long long waiting = 0, running = 0;
    size_t qi;
    json_t *q;
    json_array_foreach(queues, qi, q) waiting +=
        json_integer_value(json_object_get(q, "depth"));
    int alive = 0;
    for (int i = 0; i < v.nworkers; i++) {
        if (worker_alive(rq, v.heartbeat_ms[i], now))
            alive++;
        running += view_running(&v, i);
    }
    json_object_set_new(counts, "in_queues", json_integer(waiting));
    json_object_set_new(counts, "running", json_integer(running));
    json_object_set_new(counts, "dead_letters", json_integer(dead));
    json_object_set_new(counts, "delayed", json_integer(delayed));

    json_t *leader = json_null();
    if (r[0]->type == REDIS_REPLY_STRING)
        leader = json_pack(
            "{s:o,s:I}", "id", str_json(r[0]->str, r[0]->len), "lease_ms",
            (json_int_t)(r[1]->type == REDIS_REPLY_INTEGER ? r[1]->integer : -1));
    const char *first_bad = "";
    for (int k = 0; k < nq && !first_bad[0]; k++)
        for (int i = 0; i < MINUTES && !first_bad[0]; i++)
            if (is_error(r[head + per * k + 3 + i]))
                first_bad = c[head + per * k + 3 + i].key;
    size_t mlen = 0;
    char *minutes =
        minute ? minutes_text(minute, nq, first_minute, &mlen, &v, first_bad) : NULL;
    json_t *out =
        json_pack("{s:o,s:{s:i,s:i},s:o,s:{s:b,s:s,s:I},s:o,s:s}", "counts", counts,
                  "workers", "alive", alive, "dead", v.nworkers - alive, "beat_leader",
                  leader, "redis", "ok", 1, "version", redis_seen.version, "latency_ms",
                  (json_int_t)latency_ms, "queues", queues, "warnings", v.warnings);
    free(minute);
    free_replies(r, n);
    free(c);
    free(cmds);
    free(ac);
    free(r);
    view_free(&v);
    if (!minutes) {
        json_decref(out);
        return web_reply_json(rq, 200, NULL);
    }
    st = web_reply_json_with(rq, 200, out, "minutes", minutes, mlen);
    free(minutes);
    return st;
}

/* ---- schedules ---------------------------------------------------------- */

/* One schedule as the API shows it: its definition decoded, its last run
 * from P:schedule-state and its next NEXT_RUNS fire times. def is the
 * stored text; a definition that does not decode shows its error. */
static json_t *schedule_json(const char *name, size_t nlen, const redisReply *def,
                             const redisReply *state, int64_t now_ms)
{
    tq_sched s;
    char err[512];
    json_t *out = json_object();
    json_object_set_new(out, "name", str_json(name, nlen));
    long long last = 0;
    json_object_set_new(out, "last_run",
                        reply_ll(state, &last) == 0 ? iso_json(last) : json_null());
    if (!def || def->type != REDIS_REPLY_STRING ||
        tq_sched_decode_text(&s, def->str, def->len, NULL, err, sizeof err) < 0) {
        char shown[512];
        web_reply_clean(def && def->type == REDIS_REPLY_STRING ? err : "no definition",
                        shown, sizeof shown);
        json_object_set_new(out, "error", json_string(shown));
        return out;
    }
    json_t *given = reply_json(def);
    json_object_set_new(out, "task", json_string(s.task));
    json_object_set_new(out, "queue", json_string(s.queue));
    if (s.rule.kind == TQ_SCHED_EVERY) {
        json_object_set_new(out, "every", json_real((double)s.rule.every_ms / 1000.0));
    } else {
        json_object_set_new(out, "cron", json_string(s.cron));
        /* A definition without tz runs in each beat's --tz: say so. */
        json_t *tz = json_object_get(given, "tz");
        json_object_set_new(out, "tz", json_is_string(tz) ? json_copy(tz) : json_null());
    }
    json_object_set_new(out, "enabled", json_boolean(s.enabled));
    json_object_set_new(out, "catchup", json_string(tq_sched_catchup_name(s.catchup)));
    json_object_set_new(out, "args", json_copy(s.args));
    json_object_set_new(out, "kwargs", json_copy(s.kwargs));
    json_object_set_new(out, "definition", given ? given : json_null());
    json_t *next = json_array();
    int64_t at = now_ms;
    for (int i = 0; i < NEXT_RUNS && s.enabled; i++) {
        at = tq_sched_next(&s, at);
        if (at == TQ_SCHED_NEVER)
            break;
        json_array_append_new(next, iso_json(at));
    }
    json_object_set_new(out, "next_runs", next);
    tq_sched_deinit(&s);
    return out;
}

/* The fields of a result that say how a run went, for a schedule's last
 * run: a new object, or null when r holds no result. */
static json_t *last_result(const redisReply *r)
{
    json_t *res = reply_json(r);
    if (!json_is_object(res)) {
        json_decref(res);
        return json_null();
    }
    json_t *out = json_object();
    static const char *const keep[] = {"id",       "status", "runtime",
                                       "finished", "worker", "error"};
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
        json_t *v = json_object_get(res, keep[k]);
        if (v)
            json_object_set(out, keep[k], v);
    }
    json_decref(res);
    return out;
}

/* The queue of a schedule's stored definition: its "queue", "default"
 * when it has none; NULL when that is no queue name. */
static const char *def_queue(const redisReply *def, char *buf, size_t len)
{
    json_t *j = reply_json(def);
    json_t *q = json_object_get(j, "queue");
    const char *out = NULL;
    if (!q)
        out = "default";
    else if (json_is_string(q) && tq_config_name_ok(json_string_value(q)))
        out = json_string_value(q);
    if (out) {
        snprintf(buf, len, "%s", out);
        out = buf;
    }
    json_decref(j);
    return out;
}

int web_api_schedules(web_req *rq)
{
    char ks[TQ_KEYS_MAX], kst[TQ_KEYS_MAX];
    web_req_key(rq, TQ_KEY_SCHEDULES, NULL, NULL, ks);
    web_req_key(rq, TQ_KEY_SCHEDULE_STATE, NULL, NULL, kst);
    const char *argv[] = {"HGETALL", ks};
    redisReply *defs = web_req_redis(rq, 2, argv, NULL);
    if (!defs || defs->type != REDIS_REPLY_ARRAY) {
        int st = web_reply_redis_error(rq, defs, "reading %s", ks);
        freeReplyObject(defs);
        return st;
    }
    /* Then, per schedule, its last published tick (one HMGET) and its
     * last run (LINDEX of its history), WEB_REQ_PIPELINE_MAX a round trip. */
    size_t n = defs->elements / 2;
    const char **names = calloc(n + 2, sizeof *names);
    size_t *lens = calloc(n + 2, sizeof *lens);
    char(*kh)[TQ_KEYS_MAX] = calloc(n + 1, sizeof *kh);
    const char *(*cmd)[3] = calloc(n + 1, sizeof *cmd);
    const char *const **cmdv = calloc(n + 1, sizeof *cmdv);
    int *ac = calloc(n + 1, sizeof *ac);
    redisReply **last = calloc(n + 1, sizeof *last);
    redisReply *state = NULL;
    json_t *out = NULL;
    int st = 0; /* non-zero: answered with this status */
    if (!names || !lens || !kh || !cmd || !cmdv || !ac || !last) {
        st = web_reply_error(rq, 503, "out of memory");
        goto done;
    }
    names[0] = "HMGET";
    names[1] = kst;
    lens[0] = 5;
    lens[1] = strlen(kst);
    for (size_t i = 0; i < n; i++) {
        const redisReply *name = defs->element[2 * i];
        names[i + 2] = name->str;
        lens[i + 2] = name->len;
        char qb[TQ_MSG_QUEUE_MAX];
        const char *queue = def_queue(defs->element[2 * i + 1], qb, sizeof qb);
        if (!queue || tq_keys_fmt(rq->env->prefix, TQ_KEY_HISTORY, queue, name->str,
                                  kh[i], TQ_KEYS_MAX) < 0)
            snprintf(kh[i], TQ_KEYS_MAX, "%s:{@}:no-history", rq->env->prefix);
        cmd[i][0] = "LINDEX";
        cmd[i][1] = kh[i];
        cmd[i][2] = "0";
        cmdv[i] = cmd[i];
        ac[i] = 3;
    }
    state = n ? web_req_redis(rq, (int)n + 2, names, lens) : NULL;
    if (n && (!state || state->type != REDIS_REPLY_ARRAY || state->elements != n)) {
        st = web_reply_redis_error(rq, state, "reading %s", kst);
        goto done;
    }
    for (size_t done = 0; done < n;) {
        size_t batch = n - done > WEB_REQ_PIPELINE_MAX ? WEB_REQ_PIPELINE_MAX : n - done;
        if (web_req_pipeline(rq, (int)batch, ac + done, cmdv + done, NULL, last + done) <
            0) {
            st = web_reply_error(rq, 503, "reading the schedules' histories: %s",
                                 tq_strerror(TQ_EREDIS));
            goto done;
        }
        done += batch;
    }
    int64_t now = tq_clock_wall_ms();
    out = json_array();
    for (size_t i = 0; i < n; i++) {
        const redisReply *name = defs->element[2 * i];
        json_t *sj = schedule_json(name->str, name->len, defs->element[2 * i + 1],
                                   state->element[i], now);
        json_object_set_new(sj, "last_result", last_result(last[i]));
        json_array_append_new(out, sj);
    }
    st = web_reply_json(rq, 200, out);
done:
    for (size_t i = 0; last && i < n; i++)
        freeReplyObject(last[i]);
    freeReplyObject(state);
    freeReplyObject(defs);
    free(names);
    free(lens);
    free(kh);
    free(cmd);
    free(cmdv);
    free(ac);
    free(last);
    return st;
}

int web_api_schedule(web_req *rq)
{
    const char *name = web_req_param(rq, 0);
    char ks[TQ_KEYS_MAX], kst[TQ_KEYS_MAX], kh[TQ_KEYS_MAX];
    if (!tq_config_name_ok(name))
        return web_reply_error(
            rq, 400, "schedule name '%s': must be 1 to 64 of A-Z a-z 0-9 _ . : -", name);
    web_req_key(rq, TQ_KEY_SCHEDULES, NULL, NULL, ks);
    web_req_key(rq, TQ_KEY_SCHEDULE_STATE, NULL, NULL, kst);
    const char *c0[] = {"HGET", ks, name};
    const char *c1[] = {"HGET", kst, name};
    const char *const *cmds[] = {c0, c1};
    const int ac[] = {3, 3};
    redisReply *r[3] = {NULL, NULL, NULL};
    if (web_req_pipeline(rq, 2, ac, cmds, NULL, r) < 0)
        return web_reply_error(rq, 503, "reading %s: %s", ks, tq_strerror(TQ_EREDIS));
    int st = 0;
    if (is_error(r[0]) || is_error(r[1]))
        st = web_reply_redis_error(rq, is_error(r[0]) ? r[0] : r[1], "%s",
                                   is_error(r[0]) ? ks : kst);
    else if (r[0]->type == REDIS_REPLY_NIL)
        st = web_reply_error(rq, 404, "no schedule named %s", name);
    if (st) {
        free_replies(r, 2);
        return st;
    }
    /* Its history, in its queue's slot. */
    char qb[TQ_MSG_QUEUE_MAX];
    const char *queue = def_queue(r[0], qb, sizeof qb);
    if (queue &&
        tq_keys_fmt(rq->env->prefix, TQ_KEY_HISTORY, queue, name, kh, sizeof kh) > 0) {
        const char *c2[] = {"LRANGE", kh, "0", "99"};
        r[2] = web_req_redis(rq, 4, c2, NULL);
        if (!r[2]) {
            free_replies(r, 2);
            return web_reply_error(rq, 503, "reading %s: %s", kh, tq_strerror(TQ_EREDIS));
        }
    } else {
        r[2] = calloc(1, sizeof *r[2]); /* none: an empty array */
        if (!r[2]) {
            free_replies(r, 2);
            return web_reply_error(rq, 503, "out of memory");
        }
        r[2]->type = REDIS_REPLY_ARRAY;
    }
    json_t *out = schedule_json(name, strlen(name), r[0], r[1], tq_clock_wall_ms());
    json_t *history = json_array();
    /* Each run: its result as the worker wrote it, plus the tick it was
     * for (from the id "<schedule>@<tick ms>"). */
    for (size_t i = 0; r[2]->type == REDIS_REPLY_ARRAY && i < r[2]->elements; i++) {
        json_t *res = reply_json(r[2]->element[i]);
        if (!json_is_object(res)) {
            json_decref(res);
            continue;
        }
        json_object_del(res, "output");
        const char *id = json_string_value(json_object_get(res, "id"));
        const char *at = id ? strrchr(id, '@') : NULL;
        char *end;
        long long tick = at ? strtoll(at + 1, &end, 10) : 0;
        if (at && *end == '\0' && tick > 0)
            json_object_set_new(res, "tick", iso_json(tick));
        json_array_append_new(history, res);
    }
    json_object_set_new(out, "history", history);
    if (is_error(r[2]))
        json_object_set_new(out, "history_error", str_json(r[2]->str, r[2]->len));
    free_replies(r, 3);
    return web_reply_json(rq, 200, out);
}

/* ---- tasks -------------------------------------------------------------- */

/* A position in P:tasks, newest first: the entries at or below score, the
 * first skip of those at exactly score already seen. As text,
 * "<score>-<skip>". */
typedef struct {
    long long score;
    long long skip;
} cursor;

static int cursor_parse(const char *s, cursor *c)
{
    char *end;
    errno = 0;
    c->score = strtoll(s, &end, 10);
    if (errno || end == s || *end != '-' || c->score < 0)
        return -1;
    const char *k = end + 1;
    c->skip = strtoll(k, &end, 10);
    if (errno || end == k || *end || c->skip < 0 || c->skip > WEB_API_TASKS_MAX * 2LL)
        return -1;
    return 0;
}

/* Splits an index member "<status>\t<queue>\t<task>\t<schedule>\t<id>"
 * into five borrowed pieces with their lengths. Returns 0 or -1. */
static int member_split(const char *s, size_t len, const char *part[5], size_t plen[5])
{
    const char *p = s, *end = s + len;
    for (int i = 0; i < 4; i++) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        if (!tab)
            return -1;
        part[i] = p;
        plen[i] = (size_t)(tab - p);
        p = tab + 1;
    }
    part[4] = p;
    plen[4] = (size_t)(end - p);
    return plen[4] ? 0 : -1;
}

static int field_is(const char *part, size_t len, const char *want)
{
    return !*want || (strlen(want) == len && memcmp(part, want, len) == 0);
}

int web_api_tasks(web_req *rq)
{
    char state[32], queue[TQ_MSG_QUEUE_MAX], task[TQ_MSG_NAME_MAX],
        sched[TQ_MSG_NAME_MAX];
    char prefix[TQ_MSG_ID_MAX], cur[CURSOR_MAX];
    long long limit;
    struct {
        const char *name;
        char *buf;
        size_t len;
    } q[] = {{"state", state, sizeof state}, {"queue", queue, sizeof queue},
             {"task", task, sizeof task},    {"schedule", sched, sizeof sched},
             {"q", prefix, sizeof prefix},   {"cursor", cur, sizeof cur}};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        if (web_req_query(rq, q[i].name, q[i].buf, q[i].len) < 0)
            return web_reply_error(
                rq, 400, "query parameter '%s': too long or badly escaped", q[i].name);
    if (web_req_query_int(rq, "limit", 1, WEB_API_LIMIT_MAX, WEB_API_LIMIT_DEF, &limit) <
        0)
        return web_reply_error(rq, 400,
                               "query parameter 'limit': must be an integer from 1 to %d",
                               WEB_API_LIMIT_MAX);
    cursor at = {-1, 0}; /* -1: from the newest */
    if (cur[0] && cursor_parse(cur, &at) < 0)
        return web_reply_error(rq, 400,
                               "query parameter 'cursor': '%s' is not a cursor this "
                               "API gave",
                               cur);
    /* Each queue keeps its own index (P:{q}:tasks): a round reads the next
     * slice of each and merges them, newest first (equal scores in queue
     * order), so that the cursor is one place in the merged order. */
    int rc;
    name_set *set = queue_set(rq, queue, &rc);
    if (!set)
        return web_reply_error(rq, 503, "reading the queues: %s", tq_strerror(rc));
    int nq = set->n;
    json_t *items = json_array();
    long long scanned = 0;
    int more = 1;
    typedef struct {
        const redisReply *m, *sc;
        long long score;
        int q;
        size_t at;
    } entry;
    char(*kt)[TQ_KEYS_MAX] = calloc((size_t)nq + 1, sizeof *kt);
    const char *(*cc)[8] = calloc((size_t)nq + 1, sizeof *cc);
    const char *const **cmds = calloc((size_t)nq + 1, sizeof *cmds);
    int *ac = calloc((size_t)nq + 1, sizeof *ac);
    redisReply **rr = calloc((size_t)nq + 1, sizeof *rr);
    if (!kt || !cc || !cmds || !ac || !rr) {
        more = -1;
        goto search_done;
    }
    for (int i = 0; i < nq; i++)
        web_req_key(rq, TQ_KEY_TASKS, set->names[i], NULL, kt[i]);
    /* A stopping server ends the search early: the page is shorter, its
     * cursor goes on from where it stopped. */
    while (nq && more && (long long)json_array_size(items) < limit &&
           scanned < WEB_API_TASKS_MAX + SCAN_CHUNK && !*rq->stopping) {
        char max[32], cnt[32];
        long long skip = at.score < 0 ? 0 : at.skip;
        if (at.score < 0 || at.score == LLONG_MAX)
            snprintf(max, sizeof max, "+inf");
        else
            snprintf(max, sizeof max, "%lld", at.score);
        snprintf(cnt, sizeof cnt, "%lld", skip + SCAN_CHUNK);
        for (int i = 0; i < nq; i++) {
            const char *c[] = {"ZREVRANGEBYSCORE", kt[i],   max, "-inf",
                               "WITHSCORES",       "LIMIT", "0", cnt};
            memcpy(cc[i], c, sizeof c);
            cmds[i] = cc[i];
            ac[i] = 8;
        }
        if (pipeline_all(rq, nq, ac, cmds, rr) < 0) {
            more = -1;
            break;
        }
        size_t total = 0;
        int bad = -1;
        for (int i = 0; i < nq; i++) {
            if (rr[i]->type != REDIS_REPLY_ARRAY && bad < 0)
                bad = i;
            else if (rr[i]->type == REDIS_REPLY_ARRAY)
                total += rr[i]->elements / 2;
        }
        if (bad >= 0) {
            json_decref(items);
            items = NULL;
            int st = web_reply_redis_error(rq, rr[bad], "reading %s", kt[bad]);
            free_replies(rr, nq);
            free(set);
            free(kt);
            free(cc);
            free(cmds);
            free(ac);
            free(rr);
            return st;
        }
        entry *e = calloc(total + 1, sizeof *e);
        if (!e) {
            free_replies(rr, nq);
            more = -1;
            break;
        }
        size_t ne = 0;
        more = 0;
        for (int i = 0; i < nq; i++) {
            size_t n = rr[i]->elements / 2;
            more |= (long long)n == skip + SCAN_CHUNK;
            for (size_t j = 0; j < n; j++)
                e[ne++] = (entry){rr[i]->element[2 * j], rr[i]->element[2 * j + 1],
                                  index_score(rr[i]->element[2 * j + 1]), i, j};
        }
        /* Newest first; equal scores in queue order, then each queue's. */
        for (size_t i = 1; i < ne; i++) { /* insertion sort: slices are sorted runs */
            entry x = e[i];
            size_t j = i;
            while (j > 0 &&
                   (e[j - 1].score < x.score ||
                    (e[j - 1].score == x.score &&
                     (e[j - 1].q > x.q || (e[j - 1].q == x.q && e[j - 1].at > x.at))))) {
                e[j] = e[j - 1];
                j--;
            }
            e[j] = x;
        }
        size_t from = 0;
        while (from < ne && at.score >= 0 && from < (size_t)skip &&
               e[from].score == at.score)
            from++;
        size_t used = from;
        for (size_t i = from; i < ne && used - from < SCAN_CHUNK; i++, used++) {
            const redisReply *m = e[i].m, *sc = e[i].sc;
            long long score = e[i].score;
            if (score == at.score) {
                at.skip++;
            } else {
                at.score = score;
                at.skip = 1;
            }
            scanned++;
            const char *part[5];
            size_t plen[5];
            if (member_split(m->str, m->len, part, plen) < 0)
                continue;
            size_t pl = strlen(prefix);
            if (!field_is(part[0], plen[0], state) ||
                !field_is(part[1], plen[1], queue) || !field_is(part[2], plen[2], task) ||
                !field_is(part[3], plen[3], sched) ||
                (pl && (plen[4] < pl || memcmp(part[4], prefix, pl) != 0)))
                continue;
            json_array_append_new(
                items,
                json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "id", str_json(part[4], plen[4]),
                          "status", str_json(part[0], plen[0]), "queue",
                          str_json(part[1], plen[1]), "task", str_json(part[2], plen[2]),
                          "schedule", plen[3] ? str_json(part[3], plen[3]) : json_null(),
                          "finished", iso_json(reply_ms(sc))));
            if ((long long)json_array_size(items) >= limit) {
                more = more || i + 1 < ne;
                used++;
                break;
            }
        }
        more = more || used < ne;
        free(e);
        free_replies(rr, nq);
    }
search_done:
    free(kt);
    free(cc);
    free(cmds);
    free(ac);
    free(rr);
    if (more < 0) {
        json_decref(items);
        free(set);
        return web_reply_error(rq, 503, "reading the task index: %s",
                               tq_strerror(TQ_EREDIS));
    }

    /* The results of the page, one round trip: runtime, worker, error. */
    size_t n = json_array_size(items);
    if (n) {
        char(*keys)[TQ_KEYS_MAX] = calloc(n, sizeof *keys);
        /* One GET each: the results are in their queues' slots. */
        const char *(*gc)[2] = calloc(n, sizeof *gc);
        const char *const **gv = calloc(n, sizeof *gv);
        int *gac = calloc(n, sizeof *gac);
        redisReply **got = calloc(n, sizeof *got);
        int ok = keys && gc && gv && gac && got;
        for (size_t i = 0; ok && i < n; i++) {
            json_t *it = json_array_get(items, i);
            web_req_key(rq, TQ_KEY_RESULT,
                        json_string_value(json_object_get(it, "queue")),
                        json_string_value(json_object_get(it, "id")), keys[i]);
            gc[i][0] = "GET";
            gc[i][1] = keys[i];
            gv[i] = gc[i];
            gac[i] = 2;
        }
        ok = ok && pipeline_all(rq, (int)n, gac, gv, got) == 0;
        for (size_t i = 0; ok && i < n; i++) {
            json_t *res = reply_json(got[i]);
            json_t *item = json_array_get(items, i);
            static const char *const keep[] = {"runtime", "worker",    "attempts",
                                               "error",   "exit_code", "started"};
            for (size_t k = 0; json_is_object(res) && k < sizeof keep / sizeof keep[0];
                 k++) {
                json_t *val = json_object_get(res, keep[k]);
                if (val)
                    json_object_set(item, keep[k], val);
            }
            json_object_set_new(item, "result_kept", json_boolean(json_is_object(res)));
            json_decref(res);
        }
        if (ok)
            free_replies(got, (int)n);
        free(gc);
        free(gv);
        free(gac);
        free(got);
        free(keys);
    }
    free(set);
    if (at.score < 0 && more) { /* stopped before the first slice */
        json_decref(items);
        return web_reply_error(rq, 503, "the server is stopping");
    }
    char next[CURSOR_MAX];
    snprintf(next, sizeof next, "%lld-%lld", at.score, at.skip);
    return web_reply_json(rq, 200,
                          json_pack("{s:o,s:o,s:I}", "items", items, "cursor",
                                    more ? json_string(next) : json_null(), "scanned",
                                    (json_int_t)scanned));
}

/* Reads list key with tickq_list_read (common/lua/80-web.lua): the
 * entries from index from on (moved down by how much the list grew since
 * it had seen entries, when seen >= 0: entries arrive at the head), at
 * most count of them looked at; those that hold find (a plain substring;
 * "" for all), at most want, stopping once WEB_API_READ_BUDGET bytes are
 * answered (after at least one). Answers {LLEN, first index looked at,
 * index, entry, index, entry, ...}, an entry longer than
 * WEB_API_ENTRY_MAX bytes as its length (an integer) instead of its text:
 * a new reply, or NULL when Redis cannot be reached. */
static redisReply *list_read(web_req *rq, const char *key, long long from, long long seen,
                             long long count, const char *find, long long want)
{
    char a[24], b[24], c[24], d[24], e[24], f[24];
    snprintf(a, sizeof a, "%lld", from);
    snprintf(f, sizeof f, "%lld", seen);
    snprintf(b, sizeof b, "%lld", count);
    snprintf(c, sizeof c, "%lld", want);
    snprintf(d, sizeof d, "%d", WEB_API_READ_BUDGET);
    snprintf(e, sizeof e, "%d", WEB_API_ENTRY_MAX);
    const char *argv[] = {key, a, b, find, c, d, e, f};
    return web_req_fcall(rq, "list_read", 1, 7, argv, NULL);
}

/* 1 when r is a list_read() answer. */
static int list_read_ok(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->elements % 2 != 0 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return 0;
    for (size_t i = 2; i < r->elements; i += 2)
        if (r->element[i]->type != REDIS_REPLY_INTEGER ||
            (r->element[i + 1]->type != REDIS_REPLY_STRING &&
             r->element[i + 1]->type != REDIS_REPLY_INTEGER))
            return 0;
    return 1;
}

/* The message of a dead letter d: a new object, parsed when the letter
 * holds it as text (as workers write it: the bytes as they came), or NULL
 * when there is none or it is not a JSON object. */
static json_t *dead_message(const json_t *d)
{
    json_t *m = json_object_get(d, "message");
    if (json_is_object(m))
        return json_incref(m);
    if (!json_is_string(m))
        return NULL;
    json_t *parsed = json_loadb(json_string_value(m), json_string_length(m), 0, NULL);
    if (json_is_object(parsed))
        return parsed;
    json_decref(parsed);
    return NULL;
}

/* Looks for the message whose id is id in a list_read() answer of
 * messages, or of dead letters (dead: then *letter gets the letter, new).
 * Returns the message, new, or NULL. */
static json_t *find_message(const redisReply *l, const char *id, json_t **letter)
{
    size_t idl = strlen(id);
    for (size_t i = 3; list_read_ok(l) && i < l->elements; i += 2) {
        const redisReply *e = l->element[i];
        /* Cheap filter before parsing: the id must occur in the text
         * (escaped inside a dead letter, so only ids without '"' or '\\'
         * are found there). */
        if (e->type != REDIS_REPLY_STRING || !memmem(e->str, e->len, id, idl))
            continue;
        json_t *j = reply_json(e);
        json_t *m = letter ? dead_message(j) : json_incref(j);
        const char *mid = json_string_value(json_object_get(m, "id"));
        if (mid && strcmp(mid, id) == 0) {
            if (letter)
                *letter = json_incref(j);
            json_decref(j);
            return m;
        }
        json_decref(m);
        json_decref(j);
    }
    return NULL;
}

/* find_message() over the first count entries of list key: read FOUND_MAX
 * entries holding the id at a time (the id may be a part of other ids).
 * Returns the message (new) or NULL; *gone is set when Redis could not be
 * read. */
static json_t *find_in_list(web_req *rq, const char *key, long long count, const char *id,
                            json_t **letter, int *gone)
{
    json_t *m = NULL;
    for (long long from = 0; !m && from < count && !*rq->stopping;) {
        redisReply *r = list_read(rq, key, from, -1, count - from, id, FOUND_MAX);
        if (!r) {
            *gone = 1;
            break;
        }
        m = find_message(r, id, letter);
        /* Go on after the last entry answered (tickq_list_read stops at
         * FOUND_MAX entries or its byte budget); none answered means it
         * looked at all the rest. */
        int more = list_read_ok(r) && r->elements > 2;
        from = more ? r->element[r->elements - 2]->integer + 1 : count;
        freeReplyObject(r);
    }
    return m;
}

int web_api_task(web_req *rq)
{
    const char *id = web_req_param(rq, 0);
    char qp[TQ_MSG_QUEUE_MAX];
    if (web_req_query(rq, "queue", qp, sizeof qp) < 0 ||
        (qp[0] && !tq_config_name_ok(qp)))
        return web_reply_error(rq, 400, "query parameter 'queue': not a queue name");
    int rc;
    name_set *set = queue_set(rq, qp, &rc);
    if (!set)
        return web_reply_error(rq, 503, "reading task %s: %s", id, tq_strerror(rc));
    /* Its result, lock and the lock's TTL in each queue's slot (a task id
     * is unique across queues, as the beat and clients make them). */
    int nq = set->n;
    typedef struct {
        char kr[TQ_KEYS_MAX], kl[TQ_KEYS_MAX];
        const char *c[3][2];
    } per;
    per *pq = calloc((size_t)nq + 1, sizeof *pq);
    const char *const **cmds = calloc((size_t)nq * 3 + 1, sizeof *cmds);
    int *ac = calloc((size_t)nq * 3 + 1, sizeof *ac);
    redisReply **all = calloc((size_t)nq * 3 + 1, sizeof *all);
    if (!pq || !cmds || !ac || !all) {
        free(set);
        free(pq);
        free(cmds);
        free(ac);
        free(all);
        return web_reply_error(rq, 503, "out of memory");
    }
    int bad = 0;
    for (int q = 0; q < nq; q++) {
        bad |= web_req_key(rq, TQ_KEY_RESULT, set->names[q], id, pq[q].kr) ||
               web_req_key(rq, TQ_KEY_LOCK, set->names[q], id, pq[q].kl);
        const char *c[3][2] = {{"GET", pq[q].kr}, {"GET", pq[q].kl}, {"PTTL", pq[q].kl}};
        memcpy(pq[q].c, c, sizeof c);
        for (int k = 0; k < 3; k++) {
            cmds[3 * q + k] = pq[q].c[k];
            ac[3 * q + k] = 2;
        }
    }
    redisReply *r[3] = {0};
    json_t *dead = NULL, *message = NULL;
    int gone = bad ? 0 : pipeline_all(rq, 3 * nq, ac, cmds, all) < 0;
    int at = -1; /* the queue that knows the task: a lock, else a result */
    for (int q = 0; !bad && !gone && q < nq && at < 0; q++)
        if (all[3 * q + 1]->type == REDIS_REPLY_STRING)
            at = q;
    for (int q = 0; !bad && !gone && q < nq && at < 0; q++)
        if (all[3 * q]->type == REDIS_REPLY_STRING)
            at = q;
    if (!bad && !gone) {
        int use = at < 0 ? 0 : at;
        for (int k = 0; k < 3; k++) {
            r[k] = all[3 * use + k];
            all[3 * use + k] = NULL;
        }
        /* Its dead letter: in its queue's list, or in any queue's. */
        for (int q = at < 0 ? 0 : at; !message && !gone && q < (at < 0 ? nq : at + 1);
             q++) {
            char kdead[TQ_KEYS_MAX];
            web_req_key(rq, TQ_KEY_DEAD, set->names[q], NULL, kdead);
            message = find_in_list(rq, kdead, DEAD_SCAN_MAX, id, &dead, &gone);
            if (message && at < 0)
                at = q;
        }
    }
    for (int i = 0; i < 3 * nq; i++)
        freeReplyObject(all[i]);
    free(all);
    free(cmds);
    free(ac);
    if (bad) {
        free(set);
        free(pq);
        return web_reply_error(rq, 400, "task id too long");
    }
    if (!r[0] || gone) {
        json_decref(message);
        json_decref(dead);
        free_replies(r, 3);
        free(set);
        free(pq);
        return web_reply_error(rq, 503, "reading task %s: %s", id,
                               tq_strerror(TQ_EREDIS));
    }

    json_t *result = reply_json(r[0]);
    json_t *lock = json_null();
    const char *state = NULL;
    if (r[1]->type == REDIS_REPLY_STRING) {
        lock = json_pack(
            "{s:o,s:I}", "worker", str_json(r[1]->str, r[1]->len), "ttl_ms",
            (json_int_t)(r[2]->type == REDIS_REPLY_INTEGER ? r[2]->integer : -1));
        state = "running";
        /* The running copy of the message, from its holder's list. */
        char kp[TQ_KEYS_MAX];
        char holder[TQ_CONFIG_NAME_MAX + 192];
        size_t hl = r[1]->len < sizeof holder - 1 ? r[1]->len : sizeof holder - 1;
        memcpy(holder, r[1]->str, hl);
        holder[hl] = '\0';
        if (!message &&
            web_req_key(rq, TQ_KEY_PROCESSING, set->names[at], holder, kp) == 0) {
            message = find_in_list(rq, kp, PROCESSING_SCAN_MAX, id, NULL, &gone);
        }
    }
    const char *found_in = at >= 0 ? set->names[at] : NULL;
    /* A dead letter and a result: the newer one says how it ended (a task
     * dead-lettered, then enqueued again under its id, may have succeeded). */
    double died = json_number_value(json_object_get(dead, "dead_at"));
    double finished = json_number_value(json_object_get(result, "finished"));
    if (!state && dead &&
        (!json_is_object(result) || !json_is_number(json_object_get(dead, "dead_at")) ||
         died >= finished))
        state = "dead";
    /* A final result is the done marker (docs/PROTOCOL.md). */
    const char *status = json_string_value(json_object_get(result, "status"));
    if (!state)
        state = status;
    int st;
    if (!state) {
        st = web_reply_error(rq, 404,
                             "no task %s: no result, lock or recent dead letter has "
                             "that id",
                             id);
    } else {
        json_t *out = json_pack("{s:s,s:s,s:s}", "id", id, "state", state, "queue",
                                found_in ? found_in : "default");
        json_object_set_new(out, "done",
                            status && strcmp(status, "retrying") != 0
                                ? json_string(status)
                                : json_null());
        json_object_set_new(out, "lock", lock);
        lock = NULL;
        if (json_is_object(result)) {
            static const char *const lift[] = {"attempts", "errors", "output", "error"};
            for (size_t i = 0; i < sizeof lift / sizeof lift[0]; i++) {
                json_t *val = json_object_get(result, lift[i]);
                if (val)
                    json_object_set(out, lift[i], val);
            }
        }
        json_object_set_new(out, "result", result ? result : json_null());
        result = NULL;
        json_object_set_new(out, "message", message ? message : json_null());
        message = NULL;
        if (dead) {
            json_object_del(dead, "message");
            json_object_set_new(out, "dead_letter", dead);
            dead = NULL;
        }
        st = web_reply_json(rq, 200, out);
    }
    json_decref(lock);
    json_decref(result);
    json_decref(message);
    json_decref(dead);
    free_replies(r, 3);
    free(set);
    free(pq);
    return st;
}

/* ---- dead letters and the audit log ------------------------------------ */

/* A place in P:dead: the index to go on from and the list's length when
 * that index was counted, as "<index>-<length>" (a bare index is taken
 * too). Dead letters arrive at the head, so when the list has grown by n
 * since, the place has moved down by n. Returns 0 or -1. */
static int dead_cursor(const char *s, long long *index, long long *len)
{
    char *end;
    *len = -1;
    if (!*s) {
        *index = 0;
        return 0;
    }
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *index = strtoll(s, &end, 10);
    if (errno || *index > (1LL << 40))
        return -1;
    if (*end == '\0')
        return 0;
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return -1;
    *len = strtoll(end + 1, &end, 10);
    return errno || *end || *len > (1LL << 40) ? -1 : 0;
}

int web_api_dead(web_req *rq)
{
    long long limit, from, then;
    char cur[CURSOR_MAX], qp[TQ_MSG_QUEUE_MAX];
    if (web_req_query_int(rq, "limit", 1, WEB_API_LIMIT_MAX, WEB_API_LIMIT_DEF, &limit) <
        0)
        return web_reply_error(rq, 400,
                               "query parameter 'limit': must be an integer from 1 to %d",
                               WEB_API_LIMIT_MAX);
    if (web_req_query(rq, "queue", qp, sizeof qp) < 0 ||
        (qp[0] && !tq_config_name_ok(qp)))
        return web_reply_error(rq, 400, "query parameter 'queue': not a queue name");
    /* The cursor: "<queue>/<index>-<length>" (each queue's letters in turn,
     * in name order), or a bare "<index>-<length>" of the first queue. */
    char cq[TQ_MSG_QUEUE_MAX] = "";
    if (web_req_query(rq, "cursor", cur, sizeof cur) < 0)
        return web_reply_error(rq, 400, "query parameter 'cursor': too long");
    const char *slash = strchr(cur, '/');
    if (slash) {
        size_t ql = (size_t)(slash - cur);
        if (ql == 0 || ql >= sizeof cq)
            return web_reply_error(rq, 400,
                                   "query parameter 'cursor': must be a cursor an "
                                   "earlier page gave");
        memcpy(cq, cur, ql);
        cq[ql] = '\0';
    }
    if (dead_cursor(slash ? slash + 1 : cur, &from, &then) < 0 ||
        (cq[0] && !tq_config_name_ok(cq)))
        return web_reply_error(rq, 400,
                               "query parameter 'cursor': must be a cursor an "
                               "earlier page gave");
    int rc;
    name_set *set = queue_set(rq, qp, &rc);
    if (!set)
        return web_reply_error(rq, 503, "reading the queues: %s", tq_strerror(rc));
    int q = 0;
    if (cq[0]) {
        q = name_find(set, cq, strlen(cq));
        if (q < 0) { /* a queue gone from the list: start over after it */
            for (q = 0; q < set->n && strcmp(set->names[q], cq) < 0; q++)
                ;
            from = 0;
            then = -1;
        }
    }
    /* Every queue's length first: the total, and whether a queue after
     * the page holds any letter (else the page is the last). */
    long long *len = calloc((size_t)set->n + 1, sizeof *len);
    if (!len) {
        free(set);
        return web_reply_error(rq, 503, "out of memory");
    }
    long long all = 0;
    for (int k = 0; k < set->n; k++) {
        char kd[TQ_KEYS_MAX];
        web_req_key(rq, TQ_KEY_DEAD, set->names[k], NULL, kd);
        const char *argv[] = {"LLEN", kd};
        redisReply *r = web_req_redis(rq, 2, argv, NULL);
        if (!r) {
            free(set);
            free(len);
            return web_reply_error(rq, 503, "reading %s: %s", kd, tq_strerror(TQ_EREDIS));
        }
        if (r->type != REDIS_REPLY_INTEGER) {
            int st = web_reply_redis_error(rq, r, "reading %s", kd);
            freeReplyObject(r);
            free(set);
            free(len);
            return st;
        }
        len[k] = r->integer;
        all += len[k];
        freeReplyObject(r);
    }
    json_t *items = json_array();
    char nc[CURSOR_MAX + TQ_MSG_QUEUE_MAX] = "";
    for (; q < set->n && (long long)json_array_size(items) < limit; q++) {
        if (len[q] == 0 && then < 0)
            continue;
        char kd[TQ_KEYS_MAX];
        web_req_key(rq, TQ_KEY_DEAD, set->names[q], NULL, kd);
        long long want = limit - (long long)json_array_size(items);
        redisReply *r = list_read(rq, kd, from, then, want, "", want);
        if (!list_read_ok(r)) {
            json_decref(items);
            free(set);
            free(len);
            int st = web_reply_redis_error(rq, r, "reading %s", kd);
            freeReplyObject(r);
            return st;
        }
        long long next = r->element[1]->integer; /* from, moved by what arrived since */
        for (size_t i = 2; i < r->elements; i += 2) {
            const redisReply *e = r->element[i + 1];
            long long index = r->element[i]->integer;
            json_t *d = e->type == REDIS_REPLY_STRING ? reply_json(e) : NULL;
            if (e->type == REDIS_REPLY_INTEGER) {
                char why[128];
                snprintf(why, sizeof why,
                         "a dead letter of %lld bytes: more than the %d the web shows",
                         e->integer, WEB_API_ENTRY_MAX);
                d = json_pack("{s:s,s:s}", "reason", "unreadable", "error", why);
            } else if (!json_is_object(d)) {
                json_decref(d);
                d = json_pack("{s:s,s:o}", "reason", "unreadable", "raw",
                              str_json(e->str, e->len));
            }
            json_object_set_new(d, "index", json_integer(index));
            json_object_set_new(d, "queue", json_string(set->names[q]));
            json_t *m = dead_message(d);
            json_t *id = json_object_get(m, "id");
            if (json_is_string(id))
                json_object_set(d, "id", id);
            json_decref(m);
            json_array_append_new(items, d);
            next = index + 1;
        }
        long long total = r->element[0]->integer;
        freeReplyObject(r);
        from = 0;
        then = -1;
        if (next < total) { /* the page is full inside this queue */
            snprintf(nc, sizeof nc, "%s/%lld-%lld", set->names[q], next, total);
            break;
        }
    }
    /* Else the next queue that holds letters, from its newest. */
    for (int k = q + (nc[0] ? set->n : 0); !nc[0] && k < set->n; k++)
        if (len[k] > 0)
            snprintf(nc, sizeof nc, "%s/0", set->names[k]);
    free(set);
    free(len);
    return web_reply_json(rq, 200,
                          json_pack("{s:o,s:I,s:o}", "items", items, "total",
                                    (json_int_t)all, "cursor",
                                    nc[0] ? json_string(nc) : json_null()));
}

/* A stream id "<ms>-<seq>". */
static int stream_id_ok(const char *s)
{
    /* Both parts must fit 64 bits, as Redis reads them. */
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return 0;
    strtoull(s, &end, 10);
    if (errno || *end != '-' || end[1] < '0' || end[1] > '9')
        return 0;
    const char *seq = end + 1;
    strtoull(seq, &end, 10);
    return !errno && *end == '\0';
}

int web_api_audit(web_req *rq)
{
    long long limit;
    char cur[64], from[66];
    if (web_req_query_int(rq, "limit", 1, WEB_API_LIMIT_MAX, WEB_API_LIMIT_DEF, &limit) <
        0)
        return web_reply_error(rq, 400,
                               "query parameter 'limit': must be an integer from 1 to %d",
                               WEB_API_LIMIT_MAX);
    if (web_req_query(rq, "cursor", cur, sizeof cur) < 0 ||
        (cur[0] && !stream_id_ok(cur)))
        return web_reply_error(rq, 400,
                               "query parameter 'cursor': must be a stream id "
                               "like 1764096000000-0");
    snprintf(from, sizeof from, cur[0] ? "(%s" : "+", cur);
    char ka[TQ_KEYS_MAX], cnt[24];
    web_req_key(rq, TQ_KEY_AUDIT, NULL, NULL, ka);
    snprintf(cnt, sizeof cnt, "%lld", limit);
    const char *argv[] = {"XREVRANGE", ka, from, "-", "COUNT", cnt};
    redisReply *r = web_req_redis(rq, 6, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        int st = web_reply_redis_error(rq, r, "reading %s", ka);
        freeReplyObject(r);
        return st;
    }
    json_t *items = json_array();
    const char *last = NULL;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        json_t *item =
            json_pack("{s:o}", "id", str_json(e->element[0]->str, e->element[0]->len));
        last = e->element[0]->str;
        const redisReply *f = e->element[1];
        for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
            const redisReply *name = f->element[k], *val = f->element[k + 1];
            long long num;
            char nbuf[32];
            size_t nl = name->len < sizeof nbuf - 1 ? name->len : sizeof nbuf - 1;
            memcpy(nbuf, name->str, nl);
            nbuf[nl] = '\0';
            if ((strcmp(nbuf, "ts") == 0 || strcmp(nbuf, "status") == 0) &&
                reply_ll(val, &num) == 0)
                json_object_set_new(item, nbuf,
                                    strcmp(nbuf, "ts") == 0 ? iso_json(num)
                                                            : json_integer(num));
            else
                json_object_set_new(item, nbuf, str_json(val->str, val->len));
        }
        json_array_append_new(items, item);
    }
    json_t *next =
        (long long)r->elements == limit && last ? json_string(last) : json_null();
    freeReplyObject(r);
    return web_reply_json(rq, 200,
                          json_pack("{s:o,s:o}", "items", items, "cursor", next));
}
