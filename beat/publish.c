/* Publishing the due ticks with tickq_publish; see publish.h. */
#include "beat/publish.h"
#include "beat/entry.h"
#include "beat/tick.h"
#include "common/broker.h"
#include "common/clock.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/msg.h"

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
    if (tq_keys_fmt(prefix, TQ_KEY_BEAT_LEADER, NULL, NULL, p->key_leader, TQ_KEYS_MAX) <
            0 ||
        tq_keys_fmt(prefix, TQ_KEY_SCHEDULE_STATE, NULL, NULL, p->key_state,
                    TQ_KEYS_MAX) < 0)
        return TQ_EINVAL;
    p->recs = calloc(BEAT_PUBLISH_PASS_MAX, sizeof *p->recs);
    return p->recs ? 0 : TQ_ENOMEM;
}

void beat_publish_deinit(beat_publish *p)
{
    free(p->recs);
    p->recs = NULL;
}

/* Logs when publishing starts or stops failing as a whole (a key of the
 * wrong type: once, not once a pass). */
static void failing(int *flag, const redisReply *reply, int ok)
{
    if (!ok && reply && !*flag) {
        tq_error("publishing failed: %s; the ticks wait until that is fixed",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        *flag = 1;
    } else if (ok && *flag) {
        tq_info("publishing works again");
        *flag = 0;
    }
}

/* Stores the reply of tickq_publish for the recs idx[0..n) in their rc. */
static void pushed(beat_publish *p, const size_t *idx, size_t n, const char *stats,
                   const redisReply *reply)
{
    int ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == n + 1 &&
             reply->element[n]->type == REDIS_REPLY_INTEGER;
    for (size_t i = 0; i < n; i++) {
        struct beat_publish_rec *r = &p->recs[idx[i]];
        if (!reply)
            r->rc = TQ_EREDIS;
        else if (ok && reply->element[i]->type == REDIS_REPLY_INTEGER)
            r->rc = (int)reply->element[i]->integer;
        else
            r->rc = TQ_EREPLY;
    }
    failing(&p->failing, reply, ok || !reply);
    if (ok) {
        int uncounted = reply->element[n]->integer != 0;
        if (uncounted && !p->stats_failing)
            tq_error("%s is not a hash: published ticks are not counted in it until "
                     "it is a hash again or deleted",
                     stats);
        else if (!uncounted && p->stats_failing)
            tq_info("%s is a hash again: published ticks are counted", stats);
        p->stats_failing = uncounted;
    }
}

/* Stores the reply of tickq_advance for the recs idx[0..n): a tick whose
 * state did not move to it because the lease is lost keeps rc -1 (it was
 * pushed: the next leader's push of it is skipped), one whose state value
 * is bad gets HELD_STATE. */
static void advanced(beat_publish *p, const size_t *idx, size_t n,
                     const redisReply *reply)
{
    int lost = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == -1;
    int ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == n;
    for (size_t i = 0; i < n; i++) {
        struct beat_publish_rec *r = &p->recs[idx[i]];
        if (!reply)
            r->rc = TQ_EREDIS;
        else if (lost)
            r->rc = -1;
        else if (ok && reply->element[i]->type == REDIS_REPLY_INTEGER &&
                 reply->element[i]->integer == HELD_STATE)
            r->rc = HELD_STATE;
        else if (!ok || reply->element[i]->type != REDIS_REPLY_INTEGER)
            r->rc = TQ_EREPLY;
    }
    failing(&p->advance_failing, reply, ok || lost || !reply);
}

/* The key of e's queue, into buf (TQ_KEYS_MAX bytes). */
static const char *queue_key(const beat_publish *p, const beat_entry *e, char *buf)
{
    tq_keys_fmt(p->prefix, TQ_KEY_QUEUE, beat_entry_queue(e), NULL, buf, TQ_KEYS_MAX);
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

/* Adds queue to P:{@}:queues (where the web, the reaper and the promoter
 * find every queue) once per connection. Returns 0 or a negative code. */
static int register_queue(beat_publish *p, tq_conn *conn, const char *queue)
{
    if (p->reg_connects != tq_conn_connects(conn)) {
        p->nreg = 0;
        p->reg_connects = tq_conn_connects(conn);
    }
    for (int i = 0; i < p->nreg; i++)
        if (strcmp(p->reg[i], queue) == 0)
            return 0;
    char key[TQ_KEYS_MAX];
    if (tq_keys_fmt(p->prefix, TQ_KEY_QUEUES, NULL, NULL, key, sizeof key) < 0)
        return TQ_ETOOBIG;
    const char *argv[] = {key, queue};
    redisReply *r = tq_broker_call(conn, "queues_add", 1, 1, argv, NULL);
    int rc = !r ? TQ_EREDIS : r->type == REDIS_REPLY_INTEGER ? 0 : TQ_EREPLY;
    if (rc == TQ_EREPLY)
        tq_warn("cannot add queue %s to %s: %s", queue, key,
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    if (rc == 0 && p->nreg < BEAT_PUBLISH_BADQ_MAX)
        snprintf(p->reg[p->nreg++], sizeof p->reg[0], "%s", queue);
    return rc == TQ_EREDIS ? rc : 0;
}

/* Pushes the recs idx[0..n), all of one queue, with tickq_publish
 * (common/lua/70-beat.lua). */
static int push_batch(beat_publish *p, tq_conn *conn, const size_t *idx, size_t n)
{
    char keys[3][TQ_KEYS_MAX], tick[24];
    const char *queue = beat_entry_queue(p->recs[idx[0]].e);
    if (register_queue(p, conn, queue) < 0)
        return TQ_EREDIS;
    if (tq_keys_fmt(p->prefix, TQ_KEY_QUEUE, queue, NULL, keys[0], TQ_KEYS_MAX) < 0 ||
        tq_keys_fmt(p->prefix, TQ_KEY_PUBLISHED, queue, NULL, keys[1], TQ_KEYS_MAX) < 0 ||
        tq_keys_fmt(p->prefix, TQ_KEY_STATS, queue, NULL, keys[2], TQ_KEYS_MAX) < 0)
        return TQ_ETOOBIG;
    tq_buf b = {0};
    tq_broker_pack_array(&b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        struct beat_publish_rec *r = &p->recs[idx[i]];
        int tl = snprintf(tick, sizeof tick, "%lld", (long long)r->tick);
        tq_broker_pack_map(&b, 3);
        tq_broker_pack_cstr(&b, "i"); /* the id: <schedule>@<tick> */
        char id[TQ_MSG_ID_MAX + 32];
        if (r->e->namelen + 1 + (size_t)tl >= sizeof id) {
            b.oom = 1;
            break;
        }
        memcpy(id, r->e->str, r->e->namelen);
        id[r->e->namelen] = '@';
        memcpy(id + r->e->namelen + 1, tick, (size_t)tl);
        tq_broker_pack_str(&b, id, r->e->namelen + 1 + (size_t)tl);
        tq_broker_pack_cstr(&b, "t");
        tq_broker_pack_cstr(&b, tick);
        tq_broker_pack_cstr(&b, "m");
        tq_broker_pack_str(&b, r->msg, r->len);
    }
    if (b.oom) {
        free(b.p);
        return TQ_ENOMEM;
    }
    char now[24];
    int nl = snprintf(now, sizeof now, "%lld", (long long)tq_clock_wall_ms());
    const char *argv[] = {keys[0], keys[1], keys[2], b.p, now};
    size_t lens[] = {strlen(keys[0]), strlen(keys[1]), strlen(keys[2]), b.len,
                     (size_t)nl};
    redisReply *reply = tq_broker_call(conn, "publish", 3, 2, argv, lens);
    pushed(p, idx, n, keys[2], reply);
    freeReplyObject(reply);
    free(b.p);
    return reply ? 0 : TQ_EREDIS;
}

/* Moves the schedules' states to the recs idx[0..n) with tickq_advance. */
static int advance_batch(beat_publish *p, tq_conn *conn, const size_t *idx, size_t n)
{
    char tick[24];
    tq_buf b = {0};
    tq_broker_pack_array(&b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        struct beat_publish_rec *r = &p->recs[idx[i]];
        snprintf(tick, sizeof tick, "%lld", (long long)r->tick);
        tq_broker_pack_map(&b, 2);
        tq_broker_pack_cstr(&b, "s");
        tq_broker_pack_str(&b, r->e->str, r->e->namelen);
        tq_broker_pack_cstr(&b, "t");
        tq_broker_pack_cstr(&b, tick);
    }
    if (b.oom) {
        free(b.p);
        return TQ_ENOMEM;
    }
    const char *argv[] = {p->key_leader, p->key_state, p->id, b.p};
    size_t lens[] = {strlen(argv[0]), strlen(argv[1]), strlen(argv[2]), b.len};
    redisReply *reply = tq_broker_call(conn, "advance", 2, 2, argv, lens);
    advanced(p, idx, n, reply);
    freeReplyObject(reply);
    free(b.p);
    return reply ? 0 : TQ_EREDIS;
}

/* Publishes recs[0..n): per queue, in batches of BEAT_PUBLISH_TICKS in
 * (tick, name) order, the push and then the state's advance (two calls,
 * each in one cluster slot). Stops at the first failed call, so that a
 * later tick of a schedule never lands before an earlier one; the recs
 * not sent keep rc TQ_EREDIS. */
static void publish_recs(beat_publish *p, tq_conn *conn, size_t n)
{
    size_t *idx = malloc(sizeof *idx * (n ? n : 1));
    unsigned char *done = calloc(n ? n : 1, 1);
    if (!idx || !done) {
        free(idx);
        free(done);
        return;
    }
    /* The lease first: a beat that paused past its lease and lost it
     * learns so before it pushes anything. (Should the lease change hands
     * between this and a push, the queue still skips the tick when the new
     * leader pushes it: pushed once either way.) */
    redisReply *lease = tq_conn_cmd(conn, "GET %s", p->key_leader);
    int mine =
        lease && lease->type == REDIS_REPLY_STRING && strcmp(lease->str, p->id) == 0;
    int gone = !lease;
    freeReplyObject(lease);
    if (!mine) {
        for (size_t i = 0; i < n; i++)
            p->recs[i].rc = gone ? TQ_EREDIS : -1;
        free(idx);
        free(done);
        return;
    }
    int stop = 0, waiting = 1;
    size_t next = 0; /* the first rec not sent */
    while (!stop) {
        while (next < n && done[next])
            next++;
        if (next == n)
            break;
        const char *queue = beat_entry_queue(p->recs[next].e);
        size_t m = 0;
        for (size_t i = next; i < n && m < BEAT_PUBLISH_TICKS; i++)
            if (!done[i] && strcmp(beat_entry_queue(p->recs[i].e), queue) == 0)
                idx[m++] = i;
        for (size_t i = 0; i < m; i++)
            done[idx[i]] = 1;
        if (push_batch(p, conn, idx, m) < 0)
            break;
        size_t k = 0, fresh = 0; /* pushed now or before: their states move */
        for (size_t i = 0; i < m; i++)
            if (p->recs[idx[i]].rc == 1 || p->recs[idx[i]].rc == 0) {
                fresh += p->recs[idx[i]].rc == 1;
                idx[k++] = idx[i];
            }
        /* In a cluster the pushes are on the queue's master and the state
         * on the global slot's: the pushes reach the replicas before the
         * state moves past them, or a failover that kept the state but
         * lost a push would lose that tick (the WAIT after the pass
         * reaches only the global slot's master). One WAIT that falls
         * short ends the waiting for this pass, so that a missing replica
         * costs --wait-timeout once, not once per queue, within the lease. */
        if (fresh && p->wait_each_queue && waiting &&
            tq_broker_wait(conn, p->wait_replicas, p->wait_timeout_ms) < p->wait_replicas)
            waiting = 0;
        if (k && advance_batch(p, conn, idx, k) < 0)
            break;
        /* Not the leader, or a call that failed: publish no more now. */
        for (size_t i = 0; i < k && !stop; i++)
            stop = p->recs[idx[i]].rc == -1 || p->recs[idx[i]].rc == TQ_EREDIS ||
                   p->recs[idx[i]].rc == TQ_EREPLY;
    }
    free(idx);
    free(done);
}

int beat_publish_due(beat_publish *p, tq_conn *conn, beat_heap *h, beat_sync *s,
                     beat_lease *l, int64_t now_ms)
{
    size_t n = 0;
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

    publish_recs(p, conn, n);

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
