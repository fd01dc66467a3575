/* The worker's calls into the broker library (see queue.h): fetch and
 * claim (common/lua/10-deliver.lua), complete (20-complete.lua), requeue
 * and reap (30-requeue.lua), register and heartbeat (40-workers.lua).
 * Each function checks the types of the keys it writes before its first
 * write; one that finds a key of the wrong type answers a WRONGTYPE error
 * naming it and leaves everything as it was: the worker logs it and tries
 * again later. */
#include "worker/queue.h"
#include "common/broker.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/lock.h"
#include "common/log.h"
#include "common/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *worker_queue_reply_error(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        return r->str;
    return "unexpected reply from redis";
}

/* Fills k with queue name's keys. Returns nonzero when one does not fit. */
static int qkeys_init(worker_qkeys *k, const char *p, const char *name, const char *id)
{
    int bad = 0;
    const char *q = name;
    snprintf(k->name, sizeof k->name, "%s", name);
    bad |= tq_keys_fmt(p, TQ_KEY_QUEUE, q, NULL, k->queue, sizeof k->queue) < 0;
    bad |=
        tq_keys_fmt(p, TQ_KEY_PROCESSING, q, id, k->processing, sizeof k->processing) < 0;
    bad |=
        tq_keys_fmt(p, TQ_KEY_CONSUMERS, q, NULL, k->consumers, sizeof k->consumers) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_STATS, q, NULL, k->stats, sizeof k->stats) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_DEAD, q, NULL, k->dead, sizeof k->dead) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_DELAYED, q, NULL, k->delayed, sizeof k->delayed) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_DELIVERIES, q, NULL, k->deliveries,
                       sizeof k->deliveries) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_PAUSED, q, NULL, k->paused, sizeof k->paused) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_EVENTS, q, NULL, k->events, sizeof k->events) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_TASKS, q, NULL, k->tasks, sizeof k->tasks) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_METRICS, q, NULL, k->metrics, sizeof k->metrics) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_LOCK, q, k->lock_stem, sizeof k->lock_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_RESULT, q, k->result_stem, sizeof k->result_stem) < 0;
    bad |=
        tq_keys_stem(p, TQ_KEY_HISTORY, q, k->history_stem, sizeof k->history_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_PROCESSING, q, k->processing_stem,
                        sizeof k->processing_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_MINUTE, q, k->minute_stem, sizeof k->minute_stem) < 0;
    return bad;
}

int worker_queue_init(worker_queue *q, const tq_config *cfg, const char *id)
{
    memset(q, 0, sizeof *q);
    snprintf(q->id, sizeof q->id, "%s", id);
    snprintf(q->prefix, sizeof q->prefix, "%s", cfg->prefix);
    const char *p = cfg->prefix;
    int bad = 0;
    for (int i = 0; i < cfg->nqueues; i++)
        bad |= qkeys_init(&q->qk[i], p, cfg->queues[i], id);
    q->nqueues = cfg->nqueues;
    bad |= tq_keys_fmt(p, TQ_KEY_WORKERS, NULL, NULL, q->workers, sizeof q->workers) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_WORKER, NULL, id, q->worker_hash,
                       sizeof q->worker_hash) < 0;
    bad |=
        tq_keys_stem(p, TQ_KEY_WORKER, NULL, q->worker_stem, sizeof q->worker_stem) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_REAPER, NULL, NULL, q->reaper, sizeof q->reaper) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_QUEUES, NULL, NULL, q->queues, sizeof q->queues) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_EVENTS, NULL, NULL, q->events, sizeof q->events) < 0;
    q->liveness_ms = cfg->liveness_ms;
    q->timeout_ms = cfg->timeout_ms;
    q->done_ttl_ms = cfg->done_ttl_ms;
    q->result_ttl_ms = cfg->result_ttl_ms;
    q->wait_replicas = cfg->wait_replicas;
    q->wait_timeout_ms = cfg->wait_timeout_ms;
    q->max_deliveries = cfg->max_deliveries;
    return bad ? TQ_ETOOBIG : 0;
}

void worker_queue_items_clear(worker_item *items, int n)
{
    for (int i = 0; i < n; i++) {
        free(items[i].raw);
        free(items[i].result);
        free(items[i].extra);
        memset(&items[i], 0, sizeof items[i]);
    }
}

/* Takes a copy of a bulk string reply element. */
static int take_raw(worker_item *it, const redisReply *r, int claimed,
                    const redisReply *id)
{
    memset(it, 0, sizeof *it);
    it->raw = malloc(r->len + 1);
    if (!it->raw)
        return TQ_ENOMEM;
    memcpy(it->raw, r->str, r->len);
    it->raw[r->len] = '\0';
    it->len = r->len;
    it->claimed = claimed;
    /* The id the broker locked: a message the worker cannot decode is
     * dead-lettered under it, which releases the lock. */
    if (claimed == 1 && id && id->len < sizeof it->id)
        memcpy(it->id, id->str, id->len + 1);
    return 0;
}

/* Formats the numbers the delivery scripts share. */
typedef struct {
    char now[24], live[24], ttl[24], margin[24], maxdel[16];
} deliver_args;

static void deliver_args_init(deliver_args *d, const worker_queue *q, int64_t now_ms)
{
    snprintf(d->now, sizeof d->now, "%lld", (long long)now_ms);
    snprintf(d->live, sizeof d->live, "%lld", (long long)q->liveness_ms);
    snprintf(d->ttl, sizeof d->ttl, "%lld", (long long)q->timeout_ms);
    snprintf(d->margin, sizeof d->margin, "%d", WORKER_QUEUE_LOCK_MARGIN_MS);
    snprintf(d->maxdel, sizeof d->maxdel, "%d", q->max_deliveries);
}

/* The keys and arguments fetch and claim start with (deliver_start in
 * 10-deliver.lua): 10 keys, then 7 arguments. */
static void deliver_argv(const char **argv, const worker_queue *q, const worker_qkeys *k,
                         const deliver_args *d)
{
    const char *v[] = {
        k->processing, k->consumers, k->stats,       k->deliveries, k->dead, k->events,
        k->paused,     k->lock_stem, k->result_stem, k->queue,      q->id,   d->now,
        d->live,       d->ttl,       d->margin,      d->maxdel,     k->name};
    memcpy(argv, v, sizeof v);
}

/* One queue's fetch of up to max messages into items. Returns how many, or
 * TQ_EREDIS / TQ_EREPLY. */
static int fetch_one(tq_conn *c, const worker_queue *q, int qi, const deliver_args *d,
                     int max, worker_item *items)
{
    char maxs[16];
    const char *argv[18];
    snprintf(maxs, sizeof maxs, "%d", max);
    deliver_argv(argv, q, &q->qk[qi], d);
    argv[17] = maxs;
    redisReply *r = tq_broker_call(c, "fetch", 10, 8, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int n = 0, rc = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 3 != 1 ||
        r->elements / 3 > (size_t)max || r->element[0]->type != REDIS_REPLY_INTEGER) {
        WORKER_WARN_LIMITED("fetch from %s: %s; that queue is skipped until it is fixed",
                            q->qk[qi].name, worker_queue_reply_error(r));
        rc = TQ_EREPLY;
    } else {
        for (size_t i = 1; i < r->elements; i += 3) {
            const redisReply *flag = r->element[i], *msg = r->element[i + 1],
                             *id = r->element[i + 2];
            if (flag->type != REDIS_REPLY_INTEGER || msg->type != REDIS_REPLY_STRING ||
                id->type != REDIS_REPLY_STRING) {
                rc = TQ_EREPLY;
                break;
            }
            if ((rc = take_raw(&items[n], msg, (int)flag->integer, id)) < 0)
                break;
            items[n].qi = qi;
            n++;
        }
    }
    freeReplyObject(r);
    /* Whatever was taken stays in processing: a failure here only delays
     * those messages until the orphan sweep or a requeue. */
    return n ? n : rc;
}

int worker_queue_fetch(tq_conn *c, const worker_queue *q, int64_t now_ms, int max,
                       const _Atomic int *paused, worker_item *items,
                       unsigned *bad_queues)
{
    deliver_args d;
    deliver_args_init(&d, q, now_ms);
    int n = 0, rc = 0;
    unsigned bad = 0;
    for (int qi = 0; qi < q->nqueues && n < max; qi++) {
        if (paused && atomic_load(&paused[qi]))
            continue;
        int got = fetch_one(c, q, qi, &d, max - n, items + n);
        if (got == TQ_EREPLY) {
            bad |= 1u << qi;
        } else if (got < 0) {
            rc = got;
            break;
        } else {
            n += got;
        }
    }
    if (bad_queues)
        *bad_queues = bad;
    return n ? n : rc;
}

int worker_queue_wait(tq_conn *c, const worker_queue *q, int qi, int64_t now_ms,
                      double block_s, worker_item *item)
{
    const worker_qkeys *k = &q->qk[qi];
    char block[32];
    snprintf(block, sizeof block, "%.3f", block_s);
    redisReply *r =
        tq_conn_cmd(c, "BLMOVE %s %s RIGHT LEFT %s", k->queue, k->processing, block);
    if (!r)
        return TQ_EREDIS;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING) {
        WORKER_WARN_LIMITED("wait on %s: %s", k->queue, worker_queue_reply_error(r));
        freeReplyObject(r);
        return TQ_EREPLY;
    }
    int rc = take_raw(item, r, 0, NULL);
    freeReplyObject(r);
    if (rc < 0)
        return rc;

    deliver_args d;
    deliver_args_init(&d, q, now_ms);
    const char *argv[18];
    deliver_argv(argv, q, k, &d);
    argv[17] = item->raw;
    size_t lens[18];
    for (int i = 0; i < 18; i++)
        lens[i] = i == 17 ? item->len : strlen(argv[i]);
    /* If this reply is lost, or the function refuses (a key of the wrong
     * type), the message stays in processing unclaimed; the orphan sweep
     * requeues it: delayed, never lost. */
    r = tq_broker_call(c, "claim", 10, 8, argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        if (r)
            WORKER_WARN_LIMITED("claim: %s", worker_queue_reply_error(r));
        rc = r ? TQ_EREPLY : TQ_EREDIS;
        freeReplyObject(r);
        worker_queue_items_clear(item, 1);
        return rc;
    }
    long long claimed = r->element[0]->integer;
    if (claimed == 1 && r->element[1]->len < sizeof item->id)
        memcpy(item->id, r->element[1]->str, r->element[1]->len + 1);
    freeReplyObject(r);
    if (claimed < 0) {
        worker_queue_items_clear(item, 1);
        return 0;
    }
    item->claimed = (int)claimed;
    item->qi = qi;
    return 1;
}

/* The histogram bounds of common/metrics.h, seconds. */
static const double runtime_bounds[] = {TQ_METRICS_RUNTIME_BUCKETS};
static const double lateness_bounds[] = {TQ_METRICS_LATENESS_BUCKETS};
_Static_assert(sizeof runtime_bounds / sizeof runtime_bounds[0] ==
                   TQ_METRICS_RUNTIME_NBUCKETS - 1,
               "TQ_METRICS_RUNTIME_NBUCKETS is the number of bounds plus one");
_Static_assert(sizeof lateness_bounds / sizeof lateness_bounds[0] ==
                   TQ_METRICS_LATENESS_NBUCKETS - 1,
               "TQ_METRICS_LATENESS_NBUCKETS is the number of bounds plus one");

/* The bucket of value v: the first whose bound is >= v, or nbounds (the
 * +Inf bucket). */
static int bucket_of(const double *bounds, int nbounds, double v)
{
    int i = 0;
    while (i < nbounds && v > bounds[i])
        i++;
    return i;
}

/* The keys of one completion call: the fixed ones, then per item its lock
 * and result (the done marker once final), its history and effect keys, and its finished
 * minute's, each minute once. Key names live in one arena. */
typedef struct {
    const char **argv;
    size_t *lens;
    int n, cap;
    char *arena;
    size_t used, size;
    int64_t *minutes; /* the minutes whose keys were added, */
    int *minute_key;  /* and their KEYS indexes */
    int nminutes;
} complete_keys;

/* Adds the key a followed by b[0..blen) (copied) and returns its KEYS index
 * (from 1), or 0 when out of room or longer than a key may be. No printf:
 * this runs a few times per task. */
static int key_add(complete_keys *k, const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a), len = alen + blen;
    if (len >= TQ_KEYS_MAX || k->n >= k->cap || k->used + len + 1 > k->size)
        return 0;
    char *p = k->arena + k->used;
    memcpy(p, a, alen);
    memcpy(p + alen, b, blen);
    p[len] = '\0';
    k->used += len + 1;
    k->argv[k->n] = p;
    k->lens[k->n] = len;
    return ++k->n;
}

/* The KEYS index of minute's key, added on its first use. */
static int key_minute(complete_keys *k, const char *stem, int64_t minute)
{
    for (int i = k->nminutes - 1; i >= 0; i--)
        if (k->minutes[i] == minute)
            return k->minute_key[i];
    char num[24];
    int i = key_add(k, stem, num, (size_t)(tq_fmt_ll(num, (long long)minute) - num));
    if (i) {
        k->minutes[k->nminutes] = minute;
        k->minute_key[k->nminutes++] = i;
    }
    return i;
}

/* parts[0..n) joined by tabs into out (cap bytes, cut to fit, as snprintf
 * would), without printf's cost. */
static void join_tabs(char *out, size_t cap, const char *const *parts, int n)
{
    size_t len = 0;
    for (int i = 0; i < n && len + 1 < cap; i++) {
        if (i)
            out[len++] = '\t';
        size_t m = strlen(parts[i]);
        if (m > cap - 1 - len)
            m = cap - 1 - len;
        memcpy(out + len, parts[i], m);
        len += m;
    }
    out[len] = '\0';
}

/* One item of a complete batch, with what tickq_complete reads of it that
 * the item does not hold as is: its keys' indexes, labels and buckets. */
typedef struct {
    const worker_item *it;
    int k, h, e, m;  /* KEYS indexes, 0 for none */
    int has_ix, ran; /* writes an index member; ran (has a runtime) */
    int rb, lb;      /* runtime and lateness buckets, when ran / has_lateness */
    int64_t finished;
    /* The strings, set when used: memset stops here. */
    char ml[TQ_CONFIG_NAME_MAX + TQ_MSG_NAME_MAX + 2];
    char ix[16 + TQ_CONFIG_NAME_MAX + 2 * TQ_MSG_NAME_MAX + TQ_MSG_ID_MAX + 8];
    char rt[24];
} complete_row;

/* Fills row for item it, adding its keys to k. Returns 0, or TQ_ETOOBIG
 * when the keys do not fit. */
static int complete_row_fill(complete_row *row, complete_keys *k, const worker_queue *q,
                             const worker_item *it)
{
    const worker_qkeys *qk = &q->qk[it->qi];
    memset(row, 0, offsetof(complete_row, ml));
    row->it = it;
    row->finished = it->finished_ms ? it->finished_ms : tq_clock_wall_ms();
    if (it->id[0]) {
        size_t idlen = strlen(it->id);
        if (!(row->k = key_add(k, qk->lock_stem, it->id, idlen)) ||
            !key_add(k, qk->result_stem, it->id, idlen))
            return TQ_ETOOBIG;
    }
    if (it->schedule[0] &&
        !(row->h = key_add(k, qk->history_stem, it->schedule, strlen(it->schedule))))
        return TQ_ETOOBIG;
    if (it->effect_key[0] && !(row->e = key_add(k, it->effect_key, "", 0)))
        return TQ_ETOOBIG;
    if (!(row->m = key_minute(k, qk->minute_stem, row->finished / 60000)))
        return TQ_ETOOBIG;

    /* The index member: the status it is listed under, queue, task,
     * schedule, id (docs/PROTOCOL.md, "Metrics data"); a dead letter
     * without a run has none. */
    const char *listed = it->op == WORKER_OP_DEAD    ? "dead"
                         : it->op == WORKER_OP_RETRY ? "retrying"
                         : it->status                ? it->status
                                                     : "";
    row->has_ix = it->op != WORKER_OP_DEAD || (it->result && it->result_len);
    /* The label of a task the worker does not know is fixed, so that
     * messages cannot make up label values (common/metrics.h). */
    const char *label = it->known ? it->task : TQ_METRICS_UNKNOWN_TASK;
    const char *ml[] = {qk->name, label};
    join_tabs(row->ml, sizeof row->ml, ml, 2);
    if (row->has_ix) {
        const char *ix[] = {listed, qk->name, it->task, it->schedule, it->id};
        join_tabs(row->ix, sizeof row->ix, ix, 5);
    }
    if (it->started_ms) {
        row->ran = 1;
        tq_buf rt = {0};
        tq_msg_put_ms(&rt, it->finished_ms - it->started_ms);
        if (rt.oom || rt.len >= sizeof row->rt) {
            free(rt.p);
            return TQ_ENOMEM;
        }
        memcpy(row->rt, rt.p, rt.len);
        row->rt[rt.len] = '\0';
        free(rt.p);
        row->rb = bucket_of(runtime_bounds, TQ_METRICS_RUNTIME_NBUCKETS - 1,
                            (double)(it->finished_ms - it->started_ms) / 1e3);
    }
    if (it->has_lateness)
        row->lb = bucket_of(lateness_bounds, TQ_METRICS_LATENESS_NBUCKETS - 1,
                            (double)it->lateness_ms / 1e3);
    return 0;
}

/* The columns of tickq_complete's items (20-complete.lua), in the order
 * pack_column packs them. */
// clang-format off
enum {
    COL_OP, COL_MSG, COL_ID, COL_TASK, COL_STATUS, COL_RESULT, COL_EXTRA, COL_FINISHED,
    COL_ERR, COL_Q, COL_ML, COL_IX, COL_DUE, COL_BY, COL_RB, COL_RT, COL_RMS, COL_LATE,
    COL_LB, COL_K, COL_H, COL_E, COL_M, NCOLUMNS
};
static const char *const column_names[NCOLUMNS] = {
    [COL_OP] = "op",         [COL_MSG] = "msg",       [COL_ID] = "id",
    [COL_TASK] = "task",     [COL_STATUS] = "status", [COL_RESULT] = "result",
    [COL_EXTRA] = "extra",   [COL_FINISHED] = "finished", [COL_ERR] = "err",
    [COL_Q] = "q",           [COL_ML] = "ml",         [COL_IX] = "ix",
    [COL_DUE] = "due",       [COL_BY] = "by",         [COL_RB] = "rb",
    [COL_RT] = "rt",         [COL_RMS] = "rms",       [COL_LATE] = "late",
    [COL_LB] = "lb",         [COL_K] = "k",           [COL_H] = "h",
    [COL_E] = "e",           [COL_M] = "m"};
// clang-format on

static void pack_ll(tq_buf *b, long long v)
{
    char num[24];
    tq_broker_pack_str(b, num, (size_t)(tq_fmt_ll(num, v) - num));
}

/* v in decimal, or "" when the item has none. */
static void pack_opt_ll(tq_buf *b, int has, long long v)
{
    if (has)
        pack_ll(b, v);
    else
        tq_broker_pack_str(b, "", 0);
}

/* Packs row's value of column col. */
static void pack_column(tq_buf *b, const worker_queue *q, const complete_row *row,
                        int col)
{
    static const char *const ops[] = {"", "done", "retry", "dead"};
    const worker_item *it = row->it;
    switch (col) {
    case COL_OP:
        tq_broker_pack_cstr(b, ops[it->op]);
        break;
    case COL_MSG:
        tq_broker_pack_str(b, it->raw, it->len);
        break;
    case COL_ID:
        tq_broker_pack_cstr(b, it->id);
        break;
    case COL_TASK:
        tq_broker_pack_cstr(b, it->task);
        break;
    case COL_STATUS:
        tq_broker_pack_cstr(b, it->status ? it->status : "");
        break;
    case COL_RESULT:
        tq_broker_pack_str(b, it->result ? it->result : "",
                           it->result ? it->result_len : 0);
        break;
    case COL_EXTRA:
        tq_broker_pack_str(b, it->extra ? it->extra : "", it->extra ? it->extra_len : 0);
        break;
    case COL_FINISHED:
        pack_ll(b, (long long)row->finished);
        break;
    case COL_ERR:
        tq_broker_pack_cstr(b, it->error);
        break;
    case COL_Q:
        tq_broker_pack_cstr(b, q->qk[it->qi].name);
        break;
    case COL_ML:
        tq_broker_pack_cstr(b, row->ml);
        break;
    case COL_IX:
        tq_broker_pack_cstr(b, row->has_ix ? row->ix : "");
        break;
    case COL_DUE:
        pack_opt_ll(b, it->op == WORKER_OP_RETRY, (long long)it->due_ms);
        break;
    case COL_BY:
        pack_opt_ll(b, row->e != 0, (long long)it->effect_by);
        break;
    case COL_RB:
        pack_opt_ll(b, row->ran, row->rb);
        break;
    case COL_RT:
        tq_broker_pack_cstr(b, row->ran ? row->rt : "");
        break;
    case COL_RMS:
        tq_broker_pack_int(b, row->ran ? it->finished_ms - it->started_ms : 0);
        break;
    case COL_LATE:
        pack_opt_ll(b, it->has_lateness, (long long)it->lateness_ms);
        break;
    case COL_LB:
        pack_opt_ll(b, it->has_lateness, row->lb);
        break;
    case COL_K:
        tq_broker_pack_int(b, row->k);
        break;
    case COL_H:
        tq_broker_pack_int(b, row->h);
        break;
    case COL_E:
        tq_broker_pack_int(b, row->e);
        break;
    case COL_M:
        tq_broker_pack_int(b, row->m);
        break;
    }
}

/* Packs column col of rows[0..todo) as an array of their values, or as one
 * value when all are the same (an op, a status, a queue of a whole batch):
 * Lua then decodes it once instead of once per item. */
static void pack_values(tq_buf *b, const worker_queue *q, const complete_row *rows,
                        int todo, int col)
{
    size_t start = b->len;
    tq_broker_pack_array(b, (uint32_t)todo);
    size_t first = b->len;
    pack_column(b, q, &rows[0], col);
    size_t len = b->len - first;
    int same = 1;
    for (int t = 1; t < todo; t++) {
        size_t at = b->len;
        pack_column(b, q, &rows[t], col);
        same = same && !b->oom && b->len - at == len &&
               memcmp(b->p + at, b->p + first, len) == 0;
    }
    if (same && !b->oom) {
        memmove(b->p + start, b->p + first, len);
        b->len = start + len;
        b->p[b->len] = '\0';
    }
}

/* 1 if it is to be completed in the call for queue qi: not yet answered
 * (a retry after another queue's call failed sends only the rest). */
static int due_in(const worker_item *it, int qi)
{
    return it->op != WORKER_OP_NONE && it->qi == qi && !it->answered;
}

/* Completes the items of queue qi: one call of tickq_complete. */
static int complete_queue(tq_conn *c, const worker_queue *q, int qi, worker_item *items,
                          int n)
{
    enum { NKEYS = 8, PER_ITEM = 5 };
    const worker_qkeys *qk = &q->qk[qi];
    int todo = 0;
    for (int i = 0; i < n; i++)
        todo += due_in(&items[i], qi);
    if (todo == 0)
        return 0;

    complete_keys k = {0};
    k.cap = NKEYS + PER_ITEM * todo + 4;
    k.size = NKEYS * TQ_KEYS_MAX;
    for (int i = 0; i < n; i++) {
        const worker_item *it = &items[i];
        if (!due_in(it, qi))
            continue;
        size_t id = strlen(it->id) + 1;
        k.size += strlen(qk->lock_stem) + strlen(qk->result_stem) + 2 * id +
                  strlen(qk->history_stem) + strlen(it->schedule) + 1 +
                  strlen(it->effect_key) + 1 + strlen(qk->minute_stem) + 24;
    }
    k.argv = malloc(sizeof *k.argv * (size_t)k.cap);
    k.lens = malloc(sizeof *k.lens * (size_t)k.cap);
    k.arena = malloc(k.size);
    k.minutes = malloc(sizeof *k.minutes * (size_t)todo);
    k.minute_key = malloc(sizeof *k.minute_key * (size_t)todo);
    complete_row *rows = malloc(sizeof *rows * (size_t)todo);
    tq_buf b = {0};
    int rc = 0;
    if (!k.argv || !k.lens || !k.arena || !k.minutes || !k.minute_key || !rows) {
        rc = TQ_ENOMEM;
        goto out;
    }
    const char *fixed[NKEYS] = {qk->processing, qk->stats,  qk->dead,  qk->delayed,
                                qk->deliveries, qk->events, qk->tasks, qk->metrics};
    for (int i = 0; i < NKEYS; i++)
        key_add(&k, fixed[i], "", 0);
    for (int i = 0, t = 0; i < n && rc == 0; i++)
        if (due_in(&items[i], qi))
            rc = complete_row_fill(&rows[t++], &k, q, &items[i]);
    if (rc < 0)
        goto out;
    /* {n = todo, <column> = {value per item}, ...} */
    tq_broker_pack_map(&b, NCOLUMNS + 1);
    tq_broker_pack_cstr(&b, "n");
    tq_broker_pack_int(&b, todo);
    for (int col = 0; col < NCOLUMNS; col++) {
        tq_broker_pack_cstr(&b, column_names[col]);
        pack_values(&b, q, rows, todo, col);
    }
    if (b.oom)
        rc = TQ_ENOMEM;
    if (rc < 0)
        goto out;
    /* A final result is the done marker: it lives the dedupe window at
     * least. */
    char final_ttl[24], result_ttl[24];
    snprintf(final_ttl, sizeof final_ttl, "%lld",
             (long long)(q->done_ttl_ms > q->result_ttl_ms ? q->done_ttl_ms
                                                           : q->result_ttl_ms));
    snprintf(result_ttl, sizeof result_ttl, "%lld", (long long)q->result_ttl_ms);
    int nkeys = k.n;
    const char *args[] = {q->id, final_ttl, result_ttl, b.p};
    size_t alens[] = {strlen(q->id), strlen(final_ttl), strlen(result_ttl), b.len};
    for (int i = 0; i < 4; i++) {
        k.argv[k.n] = args[i];
        k.lens[k.n++] = alens[i];
    }
    redisReply *r = tq_broker_call(c, "complete", nkeys, 4, k.argv, k.lens);
    if (!r) {
        rc = TQ_EREDIS;
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)todo + 1 ||
        r->element[todo]->type != REDIS_REPLY_ARRAY) {
        WORKER_WARN_LIMITED("complete: %s; the tasks wait in processing until it is "
                            "fixed",
                            worker_queue_reply_error(r));
        rc = TQ_EREPLY;
    } else {
        const redisReply *warnings = r->element[todo];
        for (size_t j = 0; j < warnings->elements; j++)
            if (warnings->element[j]->type == REDIS_REPLY_STRING)
                WORKER_WARN_LIMITED("complete: %s", warnings->element[j]->str);
        int t = 0;
        for (int i = 0; i < n; i++)
            if (due_in(&items[i], qi)) {
                items[i].applied = (int)r->element[t++]->integer;
                items[i].answered = 1;
            }
        /* Applied: a failed WAIT changes nothing but the odds of a
         * failover losing it (it warns). */
        tq_broker_wait(c, q->wait_replicas, q->wait_timeout_ms);
    }
    freeReplyObject(r);
out:
    free(k.argv);
    free(k.lens);
    free(k.arena);
    free(k.minutes);
    free(k.minute_key);
    free(rows);
    free(b.p);
    return rc;
}

int worker_queue_complete(tq_conn *c, const worker_queue *q, worker_item *items, int n,
                          int64_t now_ms)
{
    (void)now_ms;
    for (int qi = 0; qi < q->nqueues; qi++) {
        int rc = complete_queue(c, q, qi, items, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int worker_queue_paused(tq_conn *c, const worker_queue *q, int *paused)
{
    for (int i = 0; i < q->nqueues; i++) {
        const char *argv[] = {"EXISTS", q->qk[i].paused};
        if (tq_conn_append(c, 2, argv, NULL) < 0)
            return TQ_EREDIS;
    }
    int rc = 0;
    for (int i = 0; i < q->nqueues; i++) {
        redisReply *r = tq_conn_reply(c);
        if (!r)
            return TQ_EREDIS;
        if (r->type == REDIS_REPLY_INTEGER)
            paused[i] = r->integer > 0;
        else
            rc = TQ_EREPLY;
        freeReplyObject(r);
    }
    return rc;
}

int worker_queue_event(tq_conn *c, const worker_queue *q, const char *event,
                       int64_t now_ms)
{
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)now_ms);
    const char *argv[] = {q->events, event, ts, q->id};
    redisReply *r = tq_broker_call(c, "worker_event", 1, 3, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = r->type == REDIS_REPLY_INTEGER ? 0 : TQ_EREPLY;
    freeReplyObject(r);
    return rc;
}

int worker_queue_started(tq_conn *c, const worker_queue *q, int64_t now_ms,
                         const worker_item *it)
{
    const worker_qkeys *k = &q->qk[it->qi];
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)now_ms);
    const char *argv[] = {k->events, k->deliveries, ts, q->id, it->id, it->task, k->name};
    redisReply *r = tq_broker_call(c, "task_started", 2, 5, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = r->type == REDIS_REPLY_INTEGER ? 0 : TQ_EREPLY;
    freeReplyObject(r);
    return rc;
}

/* A call whose reply is an integer: it, or TQ_EREDIS / TQ_EREPLY (warned
 * as what). */
static int call_int(tq_conn *c, const char *fn, int nkeys, int nargs, const char **argv,
                    const size_t *lens, const char *what)
{
    redisReply *r = tq_broker_call(c, fn, nkeys, nargs, argv, lens);
    if (!r)
        return TQ_EREDIS;
    int rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : TQ_EREPLY;
    if (rc == TQ_EREPLY)
        WORKER_WARN_LIMITED("%s: %s", what, worker_queue_reply_error(r));
    freeReplyObject(r);
    return rc;
}

int worker_queue_requeue(tq_conn *c, const worker_queue *q, const char *instance,
                         int64_t now_ms, int deregister)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    int moved = 0;
    for (int i = 0; i < q->nqueues; i++) {
        const worker_qkeys *k = &q->qk[i];
        const char *argv[] = {k->processing, k->dead,      k->stats,
                              k->consumers,  k->lock_stem, k->queue,
                              q->id,         now,          deregister ? "1" : "0"};
        int rc = call_int(c, "requeue", 6, 3, argv, NULL, "requeue");
        if (rc < 0)
            return rc;
        moved += rc;
    }
    if (deregister) {
        const char *argv[] = {q->workers, q->worker_hash, q->id, instance};
        int rc = call_int(c, "leave", 2, 2, argv, NULL, "leave");
        if (rc < 0)
            return rc;
    }
    return moved;
}

int worker_queue_register(tq_conn *c, const worker_queue *q, const char *instance,
                          int64_t now_ms, worker_holder *holder)
{
    char now[24], live[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(live, sizeof live, "%lld", (long long)q->liveness_ms);
    const char *argv[7 + TQ_CONFIG_QUEUES_MAX] = {
        q->workers, q->worker_hash, q->queues, q->id, instance, now, live};
    for (int i = 0; i < q->nqueues; i++)
        argv[7 + i] = q->qk[i].name;
    redisReply *r = tq_broker_call(c, "register", 3, 4 + q->nqueues, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = TQ_EREPLY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        rc = 1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 5) {
        rc = 0;
        memset(holder, 0, sizeof *holder);
        const redisReply *const *e = (const redisReply *const *)r->element;
        holder->heartbeat_ms = e[1]->str ? strtoll(e[1]->str, NULL, 10) : 0;
        if (e[2]->str)
            snprintf(holder->instance, sizeof holder->instance, "%s", e[2]->str);
        if (e[3]->str)
            snprintf(holder->host, sizeof holder->host, "%s", e[3]->str);
        if (e[4]->str)
            snprintf(holder->pid, sizeof holder->pid, "%s", e[4]->str);
    } else {
        WORKER_WARN_LIMITED("register: %s", worker_queue_reply_error(r));
    }
    freeReplyObject(r);
    return rc;
}

int worker_queue_heartbeat(tq_conn *c, const worker_queue *q, const char *instance,
                           int64_t now_ms, const char *const *info)
{
    enum { ARGS_MAX = 6 + 2 * 16 };
    const char *argv[ARGS_MAX];
    char ttl[24], now[24];
    /* The hash outlives a few missed heartbeats, not a dead worker. */
    snprintf(ttl, sizeof ttl, "%lld", (long long)(q->liveness_ms * 3));
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    int k = 0;
    const char *head[] = {q->workers, q->worker_hash, q->id, instance, now, ttl};
    for (size_t i = 0; i < 6; i++)
        argv[k++] = head[i];
    for (int i = 0; info[i] && k + 2 <= ARGS_MAX; i += 2) {
        argv[k++] = info[i];
        argv[k++] = info[i + 1];
    }
    int rc = call_int(c, "heartbeat", 2, k - 2, argv, NULL, "heartbeat");
    if (rc <= 0)
        return rc;
    /* Each queue's consumers, a call each: a call loads the library where
     * it is missing (a cluster node that has not seen it yet), so that
     * this worker is alive in every queue's eyes from its first
     * heartbeat on (its locks are not taken over). */
    for (int i = 0; i < q->nqueues; i++) {
        const char *cv[] = {q->qk[i].consumers, q->id, now};
        redisReply *r = tq_broker_call(c, "consume", 1, 2, cv, NULL);
        if (!r)
            return TQ_EREDIS;
        if (r->type != REDIS_REPLY_INTEGER) {
            WORKER_WARN_LIMITED("heartbeat in %s: %s", q->qk[i].consumers,
                                worker_queue_reply_error(r));
            rc = TQ_EREPLY;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* The queues in use (P:{@}:queues), into names (cap of them, each at most
 * TQ_CONFIG_NAME_MAX bytes); this worker's own come first. Returns how
 * many, or a negative code. */
static int queues_in_use(tq_conn *c, const worker_queue *q,
                         char (*names)[TQ_CONFIG_NAME_MAX], int cap)
{
    int n = 0;
    for (int i = 0; i < q->nqueues && n < cap; i++)
        snprintf(names[n++], TQ_CONFIG_NAME_MAX, "%s", q->qk[i].name);
    redisReply *r = tq_conn_cmd(c, "SMEMBERS %s", q->queues);
    if (!r)
        return TQ_EREDIS;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t j = 0; j < r->elements && n < cap; j++) {
            const redisReply *e = r->element[j];
            int seen = e->type != REDIS_REPLY_STRING || e->len == 0 ||
                       e->len >= TQ_CONFIG_NAME_MAX || strchr(e->str, '{') ||
                       strchr(e->str, '}');
            for (int i = 0; i < n && !seen; i++)
                seen = strcmp(names[i], e->str) == 0;
            if (!seen)
                snprintf(names[n++], TQ_CONFIG_NAME_MAX, "%s", e->str);
        }
    } else {
        WORKER_WARN_LIMITED("reaper: %s: %s", q->queues, worker_queue_reply_error(r));
    }
    freeReplyObject(r);
    return n;
}

#define REAP_QUEUES_MAX 1024 /* queues one reaper pass looks at */

/* Reaps the dead consumers of queue name. Returns the messages requeued, or
 * a negative code. */
static int reap_queue(tq_conn *c, const worker_queue *q, const char *name,
                      const char *now, const char *live)
{
    worker_qkeys k;
    if (qkeys_init(&k, q->prefix, name, q->id))
        return 0;
    const char *argv[] = {k.consumers, k.dead,  k.stats, k.deliveries, k.processing_stem,
                          k.lock_stem, k.queue, now,     live};
    redisReply *r = tq_broker_call(c, "reap", 7, 2, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int moved = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        WORKER_WARN_LIMITED("reap %s: %s", name, worker_queue_reply_error(r));
        moved = TQ_EREPLY;
    } else {
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const char *who = r->element[i]->str ? r->element[i]->str : "?";
            long long n = r->element[i + 1]->integer;
            if (n < 0) {
                WORKER_WARN_LIMITED("reaper: worker %s is dead but its messages of queue "
                                    "%s cannot be requeued (its processing list, or %s, "
                                    "is not a list); left as they are until it is fixed",
                                    who, name, k.dead);
                continue;
            }
            tq_warn("reaper: worker %s is dead (no heartbeat for %lld ms); requeued %lld "
                    "message(s) of queue %s and released its locks",
                    who, (long long)q->liveness_ms, n, name);
            moved += (int)n;
        }
    }
    freeReplyObject(r);
    return moved;
}

int worker_queue_reap(tq_conn *c, const worker_queue *q, int64_t now_ms)
{
    int got = tq_lock_acquire(c, q->reaper, q->id, 5000);
    if (got <= 0)
        return got;
    char now[24], live[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(live, sizeof live, "%lld", (long long)q->liveness_ms);
    char(*names)[TQ_CONFIG_NAME_MAX] = malloc(REAP_QUEUES_MAX * sizeof *names);
    int n = names ? queues_in_use(c, q, names, REAP_QUEUES_MAX) : TQ_ENOMEM;
    int moved = n < 0 ? n : 0;
    for (int i = 0; i < n; i++) {
        int rc = reap_queue(c, q, names[i], now, live);
        if (rc == TQ_EREDIS) {
            free(names);
            return rc;
        }
        if (rc > 0)
            moved += rc;
    }
    free(names);
    const char *argv[] = {q->workers, q->worker_stem, now, live};
    redisReply *r = tq_broker_call(c, "forget", 2, 2, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY)
        WORKER_WARN_LIMITED("reaper: %s", worker_queue_reply_error(r));
    freeReplyObject(r);
    tq_lock_release(c, q->reaper, q->id);
    return moved;
}

int worker_queue_list_processing(tq_conn *c, const worker_queue *q, int qi,
                                 redisReply **out)
{
    *out = NULL;
    redisReply *r = tq_conn_cmd(c, "LRANGE %s 0 -1", q->qk[qi].processing);
    if (!r)
        return TQ_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return TQ_EREPLY;
    }
    *out = r;
    return 0;
}

int worker_queue_requeue_orphan(tq_conn *c, const worker_queue *q, int qi, int64_t now_ms,
                                const char *raw, size_t len)
{
    const worker_qkeys *k = &q->qk[qi];
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *argv[] = {k->processing, k->dead, k->stats, k->lock_stem,
                          k->queue,      q->id,   now,      raw};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = i == 7 ? len : strlen(argv[i]);
    return call_int(c, "requeue_orphan", 5, 3, argv, lens, "orphan requeue");
}
