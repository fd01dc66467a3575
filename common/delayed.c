/* Promotion of due delayed messages: tickq_promote, common/lua/50-delayed.lua. */
#include "common/delayed.h"
#include "common/broker.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Problems are logged when they start and when they end, once per process
 * (workers promote from several threads) and queue, not once per call: a
 * flag per queue, by a hash of its name (two queues that share one only
 * log less). */
#define FLAGS 64
static atomic_int failing_of[FLAGS], stuck_of[FLAGS];

static unsigned flag_of(const char *queue)
{
    unsigned h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)queue; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % FLAGS;
}

int tq_delayed_promote(tq_conn *c, const char *prefix, const char *queue, int64_t now_ms,
                       int max)
{
    return tq_delayed_promote_next(c, prefix, queue, now_ms, max, NULL);
}

int tq_delayed_promote_next(tq_conn *c, const char *prefix, const char *queue,
                            int64_t now_ms, int max, int64_t *next_due_ms)
{
    char delayed[TQ_KEYS_MAX], stats[TQ_KEYS_MAX], qkey[TQ_KEYS_MAX];
    char now[24], maxs[16];
    if (tq_keys_fmt(prefix, TQ_KEY_DELAYED, queue, NULL, delayed, sizeof delayed) < 0 ||
        tq_keys_fmt(prefix, TQ_KEY_STATS, queue, NULL, stats, sizeof stats) < 0 ||
        tq_keys_fmt(prefix, TQ_KEY_QUEUE, queue, NULL, qkey, sizeof qkey) < 0)
        return TQ_ETOOBIG;
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(maxs, sizeof maxs, "%d", max > 0 ? max : TQ_DELAYED_BATCH);
    const char *argv[] = {delayed, stats, qkey, now, maxs};
    atomic_int *failing = &failing_of[flag_of(queue)],
               *stuck_warned = &stuck_of[flag_of(queue)];
    redisReply *r = tq_broker_call(c, "promote", 3, 2, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = TQ_EREPLY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
        r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[2]->type == REDIS_REPLY_INTEGER &&
        r->element[3]->type == REDIS_REPLY_STRING) {
        rc = (int)r->element[0]->integer;
        if (next_due_ms) {
            double due = strtod(r->element[1]->str, NULL);
            *next_due_ms = due < 0 ? INT64_MAX : (int64_t)due;
        }
        if (atomic_exchange(failing, 0))
            tq_info("promoting delayed messages works again");
        long long stuck = r->element[2]->integer;
        if (stuck > 0 && !atomic_exchange(stuck_warned, 1))
            tq_error("due messages stay in %s: %s; they are promoted once it is a list "
                     "again or deleted",
                     delayed, r->element[3]->str);
        else if (stuck == 0 && atomic_exchange(stuck_warned, 0))
            tq_info("no due message is stuck in %s any more", delayed);
    } else if (!atomic_exchange(failing, 1)) {
        tq_error("promoting delayed messages failed: %s; trying again, quietly",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return rc;
}

int tq_delayed_promote_all(tq_conn *c, const char *prefix, int64_t now_ms, int max)
{
    char queues[TQ_KEYS_MAX];
    if (tq_keys_fmt(prefix, TQ_KEY_QUEUES, NULL, NULL, queues, sizeof queues) < 0)
        return TQ_ETOOBIG;
    redisReply *r = tq_conn_cmd(c, "SMEMBERS %s", queues);
    if (!r)
        return TQ_EREDIS;
    int moved = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *q = r->element[i];
        if (q->type != REDIS_REPLY_STRING || q->len == 0 || q->len > 64 ||
            strpbrk(q->str, "{}"))
            continue;
        int rc = tq_delayed_promote(c, prefix, q->str, now_ms, max);
        if (rc == TQ_EREDIS) {
            moved = rc;
            break;
        }
        if (rc > 0)
            moved += rc;
    }
    freeReplyObject(r);
    return moved;
}
