/* Publishing the due ticks with tickq_publish; see publish.h. */
#include "beat/publish.h"
#include "beat/entry.h"
#include "beat/tick.h"
#include "common/broker.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-tick answers of tickq_publish besides 1 and 0 (70-beat.lua). */
enum { HELD_QUEUE = 2, HELD_STATE = 3 };

/* One tick of a publishing pass. */
struct beat_publish_rec {
    beat_entry *e; /* borrowed from the table */
    int64_t tick;
    char *msg; /* owned: the encoded message */
    size_t len;
    int rc; /* 1 published, 0 already published, -1 lease lost, or a TQ_E... code */
};

int beat_publish_init(beat_publish *p, const char *prefix, const char *id,
                      int catchup_max)
{
    memset(p, 0, sizeof *p);
    snprintf(p->prefix, sizeof p->prefix, "%s", prefix);
    snprintf(p->id, sizeof p->id, "%s", id);
    p->catchup_max = catchup_max;
    if (tq_keys_fmt(prefix, TQ_KEY_BEAT_LEADER, NULL, p->key_leader, TQ_KEYS_MAX) < 0 ||
        tq_keys_fmt(prefix, TQ_KEY_SCHEDULE_STATE, NULL, p->key_state, TQ_KEYS_MAX) < 0 ||
        tq_keys_fmt(prefix, TQ_KEY_STATS, NULL, p->key_stats, TQ_KEYS_MAX) < 0)
        return TQ_EINVAL;
    p->recs = calloc(BEAT_PUBLISH_PASS_MAX, sizeof *p->recs);
    return p->recs ? 0 : TQ_ENOMEM;
}

void beat_publish_deinit(beat_publish *p)
{
    free(p->recs);
    p->recs = NULL;
}

/* Stores the reply of a script call in its recs' rc, and logs when the
 * script starts or stops failing as a whole (a key of the wrong type: once,
 * not once a pass). reply may be NULL (the connection broke). */
static void batch_result(beat_publish *p, size_t from, size_t to, const redisReply *reply)
{
    int ok = reply && reply->type == REDIS_REPLY_ARRAY &&
             reply->elements == to - from + 1 &&
             reply->element[to - from]->type == REDIS_REPLY_INTEGER;
    for (size_t i = from; i < to; i++) {
        struct beat_publish_rec *r = &p->recs[i];
        if (!reply)
            r->rc = TQ_EREDIS;
        else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == -1)
            r->rc = -1;
        else if (ok && reply->element[i - from]->type == REDIS_REPLY_INTEGER)
            r->rc = (int)reply->element[i - from]->integer;
        else
            r->rc = TQ_EREPLY;
    }
    if (reply && p->recs[from].rc == TQ_EREPLY && !p->failing) {
        tq_error("publishing failed: %s; the ticks wait until that is fixed",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        p->failing = 1;
    } else if (ok && p->failing) {
        tq_info("publishing works again");
        p->failing = 0;
    }
    if (ok) {
        int uncounted = reply->element[to - from]->integer != 0;
        if (uncounted && !p->stats_failing)
            tq_error("%s is not a hash: published ticks are not counted in it until "
                     "it is a hash again or deleted",
                     p->key_stats);
        else if (!uncounted && p->stats_failing)
            tq_info("%s is a hash again: published ticks are counted", p->key_stats);
        p->stats_failing = uncounted;
    }
}

/* The key of e's queue, into buf (TQ_KEYS_MAX bytes). */
static const char *queue_key(const beat_publish *p, const beat_entry *e, char *buf)
{
    tq_keys_fmt(p->prefix, TQ_KEY_QUEUE, beat_entry_queue(e), buf, TQ_KEYS_MAX);
    return buf;
}

/* Notes that e's queue key is not a list (the publish script skipped its
 * tick): logged once per key, naming its type. */
static void queue_bad(beat_publish *p, tq_conn *conn, const beat_entry *e)
{
    char key[TQ_KEYS_MAX], nm[BEAT_ENTRY_SHOWN_MAX];
    queue_key(p, e, key);
    for (int i = 0; i < p->nbadq; i++)
        if (strcmp(p->badq[i], key) == 0)
            return;
    if (p->nbadq == BEAT_PUBLISH_BADQ_MAX) { /* more than that: the first ones tell */
        tq_debug("queue key %s is not a list", key);
        return;
    }
    snprintf(p->badq[p->nbadq++], TQ_KEYS_MAX, "%s", key);
    redisReply *t = tq_conn_cmd(conn, "TYPE %s", key);
    tq_error("queue key %s is a %s, not a list: the ticks of schedule '%s' and of any "
             "other on that queue wait until it is a list again or deleted",
             key, t && t->type == REDIS_REPLY_STATUS ? t->str : "key of another type",
             beat_entry_shown(e->str, e->namelen, nm, sizeof nm));
    freeReplyObject(t);
}

/* Notes that a tick of e went through: its queue key is fine again. */
static void queue_ok(beat_publish *p, const beat_entry *e)
{
    char key[TQ_KEYS_MAX];
    if (!p->nbadq)
        return;
    queue_key(p, e, key);
    for (int i = 0; i < p->nbadq; i++)
        if (strcmp(p->badq[i], key) == 0) {
            tq_info("queue key %s is a list again: its ticks are published", key);
            memmove(p->badq[i], p->badq[p->nbadq - 1], TQ_KEYS_MAX);
            p->nbadq--;
            return;
        }
}

/* Sends tickq_publish (common/lua/70-beat.lua) for recs[from, to):
 * pipelined (eval 0), or at once, loading the library when it is missing
 * (eval 1; the reply is then read and stored). */
static int send_batch(beat_publish *p, tq_conn *conn, size_t from, size_t to, int eval)
{
    enum { QMAX = BEAT_PUBLISH_TICKS };
    const char *argv[3 + QMAX + 2];
    size_t lens[3 + QMAX + 2];
    /* Room for any long long: gcc's -Wformat-truncation cannot always
     * bound the values. */
    char qkeys[QMAX][TQ_KEYS_MAX], tick[24];
    const char *qnames[QMAX];
    int nq = 0, na = 0;

    for (size_t i = from; i < to; i++) {
        const char *queue = beat_entry_queue(p->recs[i].e);
        int q = 0;
        while (q < nq && strcmp(qnames[q], queue) != 0)
            q++;
        if (q == nq) {
            if (tq_keys_fmt(p->prefix, TQ_KEY_QUEUE, queue, qkeys[nq], TQ_KEYS_MAX) < 0)
                return TQ_ETOOBIG;
            qnames[nq++] = queue;
        }
    }
    int nkeys = 3 + nq;
    argv[0] = p->key_leader;
    argv[1] = p->key_state;
    argv[2] = p->key_stats;
    for (int q = 0; q < nq; q++)
        argv[3 + q] = qkeys[q];
    for (int k = 0; k < nkeys; k++)
        lens[k] = strlen(argv[k]);
    na = nkeys;
    argv[na] = p->id;
    lens[na++] = strlen(p->id);
    tq_buf b = {0};
    tq_broker_pack_array(&b, (uint32_t)(to - from));
    for (size_t i = from; i < to; i++) {
        struct beat_publish_rec *r = &p->recs[i];
        const char *queue = beat_entry_queue(r->e);
        int q = 0;
        while (strcmp(qnames[q], queue) != 0)
            q++;
        snprintf(tick, sizeof tick, "%lld", (long long)r->tick);
        tq_broker_pack_map(&b, 4);
        tq_broker_pack_cstr(&b, "s");
        tq_broker_pack_str(&b, r->e->str, r->e->namelen);
        tq_broker_pack_cstr(&b, "t");
        tq_broker_pack_cstr(&b, tick);
        tq_broker_pack_cstr(&b, "q");
        tq_broker_pack_int(&b, 4 + q); /* its KEYS index, from 1 */
        tq_broker_pack_cstr(&b, "m");
        tq_broker_pack_str(&b, r->msg, r->len);
    }
    if (b.oom) {
        free(b.p);
        return TQ_ENOMEM;
    }
    argv[na] = b.p;
    lens[na++] = b.len;
    int rc = 0;
    if (!eval) {
        rc = tq_broker_append(conn, "publish", nkeys, na - nkeys, argv, lens);
    } else {
        redisReply *reply =
            tq_broker_call(conn, "publish", nkeys, na - nkeys, argv, lens);
        batch_result(p, from, to, reply);
        freeReplyObject(reply);
        rc = reply ? 0 : TQ_EREDIS;
    }
    free(b.p);
    return rc;
}

int beat_publish_due(beat_publish *p, tq_conn *conn, beat_heap *h, beat_sync *s,
                     beat_lease *l, int64_t now_ms)
{
    size_t n = 0, sent = 0;
    int rc = 0;
    beat_tick_pass pass = {0, 0};
    beat_entry *e;
    while ((e = beat_heap_top(h)) && beat_entry_due(e) <= now_ms &&
           n < BEAT_PUBLISH_PASS_MAX) {
        e->retry = 0;
        int64_t t = beat_tick_catch_up(&e->rule, e->catchup, p->catchup_max, e->next,
                                       now_ms, l->lease_ms);
        beat_tick_log_catch_up(&pass, e, t, now_ms, l->lease_ms, p->catchup_max);
        if (t > now_ms) { /* catchup none: nothing to publish now */
            e->next = t;
            beat_heap_fix(h, e);
            continue;
        }
        struct beat_publish_rec *r = &p->recs[n];
        *r = (struct beat_publish_rec){e, t, NULL, 0, TQ_EREDIS};
        r->msg = beat_entry_message(e, t, now_ms, &r->len);
        if (!r->msg) {
            rc = TQ_ENOMEM;
            break;
        }
        n++;
        e->next = tq_sched_rule_next(&e->rule, t);
        beat_heap_fix(h, e);
    }
    if (rc == TQ_ENOMEM)
        tq_error("publishing: out of memory");
    if (pass.caught_up > BEAT_TICK_CATCHUP_LOGS)
        tq_info("no beat ran for a while: %zu schedules caught up in this pass, skipping "
                "%lld "
                "missed ticks by their catchup policies",
                pass.caught_up, (long long)pass.skipped);

    /* The first batch goes alone, and loads the library if Redis lacks it;
     * the others are pipelined behind it. A pipelined batch that still
     * finds the library missing or replaced (another build replaced it
     * just now) is sent again, in order, stopping at the first failure,
     * so that a later tick never lands before an earlier one of the same
     * schedule (only a second replacement between two batches of one
     * pipeline could let a later batch pass: two builds at once, both
     * replacing). Batch k is recs[k * BEAT_PUBLISH_TICKS, end(k)). */
    size_t nb = (n + BEAT_PUBLISH_TICKS - 1) / BEAT_PUBLISH_TICKS;
#define BATCH_END(k) ((k) + 1 < nb ? ((k) + 1) * BEAT_PUBLISH_TICKS : n)
    if (nb > 0)
        send_batch(p, conn, 0, BATCH_END(0), 1);
    int failed = nb > 0 && p->recs[0].rc < 0;
    for (size_t k = 1; k < nb && !failed; k++, sent++)
        if (send_batch(p, conn, k * BEAT_PUBLISH_TICKS, BATCH_END(k), 0) < 0)
            break;
    unsigned char reload[BEAT_PUBLISH_PASS_MAX / BEAT_PUBLISH_TICKS + 1] = {0};
    for (size_t k = 1; k < nb; k++) {
        redisReply *reply = k - 1 < sent ? tq_conn_reply(conn) : NULL;
        reload[k] = (unsigned char)tq_broker_needs_load(reply);
        if (!reload[k])
            batch_result(p, k * BEAT_PUBLISH_TICKS, BATCH_END(k), reply);
        freeReplyObject(reply);
    }
    for (size_t k = 1; k < nb; k++) {
        if (reload[k] && failed)
            batch_result(p, k * BEAT_PUBLISH_TICKS, BATCH_END(k), NULL);
        else if (reload[k])
            send_batch(p, conn, k * BEAT_PUBLISH_TICKS, BATCH_END(k), 1);
        if (p->recs[k * BEAT_PUBLISH_TICKS].rc < 0)
            failed = 1;
    }
#undef BATCH_END

    int rollback = 0, lost = 0;
    for (size_t i = 0; i < n; i++) {
        struct beat_publish_rec *r = &p->recs[i];
        e = r->e;
        if (r->rc == 1 || r->rc == 0) {
            if (e->last == BEAT_ENTRY_NO_TICK || r->tick > e->last)
                e->last = r->tick;
            tq_debug("%s %s@%lld", r->rc ? "published" : "already published", e->str,
                     (long long)r->tick);
            queue_ok(p, e);
            if (e->held)
                beat_sync_held(s, e, 0, NULL);
        } else if (r->rc == HELD_QUEUE || r->rc == HELD_STATE) {
            /* A bad key of this schedule alone: its tick waits, unpublished,
             * and is tried again after BEAT_PUBLISH_RETRY_MS; the others go
             * on. */
            if (e->next > r->tick)
                e->next = r->tick;
            e->retry = now_ms + BEAT_PUBLISH_RETRY_MS;
            rollback = 1;
            if (r->rc == HELD_QUEUE)
                queue_bad(p, conn, e);
            else
                beat_sync_add(s, e, l->leader); /* read it: logged with its value */
        } else {
            if (r->rc == -1)
                lost = 1;
            else if (rc == 0)
                rc = r->rc < 0 ? r->rc : TQ_EREPLY;
            if (e->next > r->tick)
                e->next = r->tick;
            rollback = 1;
        }
        free(r->msg);
        r->msg = NULL;
    }
    if (rollback)
        beat_heap_build(h);
    if (n > 0 && rc == 0)
        tq_broker_wait(conn, p->wait_replicas, p->wait_timeout_ms);
    if (lost)
        beat_lease_lost(l, "the lease changed hands before a tick was published");
    return rc;
}
