/* Publishing the due ticks with the publish script; see publish.h. */
#include "beat/publish.h"
#include "beat/entry.h"
#include "beat/tick.h"
#include "common/err.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-tick answers of the publish script besides 1 and 0 (see there). */
enum { HELD_QUEUE = 2, HELD_STATE = 3 };

/* One tick of a publishing pass. */
struct beat_publish_rec {
    beat_entry *e; /* borrowed from the table */
    int64_t tick;
    char *msg; /* owned: the encoded message */
    size_t len;
    int rc; /* 1 published, 0 already published, -1 lease lost, or a TQ_E... code */
};

/* Publishes up to BEAT_PUBLISH_TICKS ticks. KEYS: leader, schedule-state,
 * stats, then the queues. ARGV: beat id, then per tick its schedule name,
 * tick ms, the index of its queue in KEYS and the message.
 *
 * Redis does not roll back a script that fails halfway, so nothing here can
 * fail after the first write: the type of every key it writes is checked
 * first, and a state value is compared only once it is known to be a
 * number. A lease or state key of the wrong type is an error reply that
 * names it (nothing is written); a caller that does not hold the lease gets
 * -1 (a stale leader never publishes). Otherwise the reply has, per tick, 1
 * once the state is advanced and the message pushed, 0 if the state is
 * already at or past it (two beats never publish a tick twice), 2 if its
 * queue key is not a list (the tick is skipped, state untouched, and the
 * other ticks go on), or 3 if its state value is not a tick (the same); and
 * then one more element, 1 if the counter in stats was not counted because
 * stats is not a hash, else 0. */
static tq_script publish_script = TQ_SCRIPT(
    "local function kind(k) return redis.call('TYPE', k).ok end\n"
    "local function wrong(k, t, want)\n"
    "  return redis.error_reply('WRONGTYPE ' .. k .. ' is a ' .. t .. ', not a ' .. "
    "want)\n"
    "end\n"
    "local t = kind(KEYS[1])\n"
    "if t ~= 'string' and t ~= 'none' then return wrong(KEYS[1], t, 'string') end\n"
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n"
    "t = kind(KEYS[2])\n"
    "if t ~= 'hash' and t ~= 'none' then return wrong(KEYS[2], t, 'hash') end\n"
    "t = kind(KEYS[3])\n"
    "local count = t == 'hash' or t == 'none'\n"
    "local list = {}\n"
    "for k = 4, #KEYS do\n"
    "  t = kind(KEYS[k])\n"
    "  list[k] = t == 'list' or t == 'none'\n"
    "end\n"
    "local res, n = {}, 0\n"
    "for i = 2, #ARGV, 4 do\n"
    "  local tick, q = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])\n"
    "  local v = redis.call('HGET', KEYS[2], ARGV[i])\n"
    "  local last = v and #v <= 16 and string.match(v, '^%d+$') and tonumber(v)\n"
    "  if v and not last then\n"
    "    res[#res + 1] = 3\n"
    "  elseif last and last >= tick then\n"
    "    res[#res + 1] = 0\n"
    "  elseif not list[q] then\n"
    "    res[#res + 1] = 2\n"
    "  else\n"
    "    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])\n"
    "    redis.call('LPUSH', KEYS[q], ARGV[i + 3])\n"
    "    n = n + 1\n"
    "    res[#res + 1] = 1\n"
    "  end\n"
    "end\n"
    "if n > 0 and count then redis.call('HINCRBY', KEYS[3], 'published', n) end\n"
    "res[#res + 1] = count and 0 or 1\n"
    "return res\n");

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

/* Sends the script for recs[from, to): pipelined (eval 0), or at once with
 * NOSCRIPT handling (eval 1; the reply is then read and stored). */
static int send_batch(beat_publish *p, tq_conn *conn, size_t from, size_t to, int eval)
{
    enum { QMAX = BEAT_PUBLISH_TICKS };
    const char *argv[3 + QMAX + 1 + 4 * BEAT_PUBLISH_TICKS];
    size_t lens[3 + QMAX + 1 + 4 * BEAT_PUBLISH_TICKS];
    /* Room for any int and any long long: gcc's -Wformat-truncation
     * cannot always bound the values. */
    char qkeys[QMAX][TQ_KEYS_MAX], ticks[BEAT_PUBLISH_TICKS][24], idx[QMAX][12];
    const char *qnames[QMAX];
    int nq = 0, na = 0;

    for (size_t i = from; i < to; i++) {
        const char *queue = beat_entry_queue(p->recs[i].e);
        int q = 0;
        while (q < nq && strcmp(qnames[q], queue) != 0)
            q++;
        if (q == nq) {
            qnames[nq] = queue;
            tq_keys_fmt(p->prefix, TQ_KEY_QUEUE, queue, qkeys[nq], TQ_KEYS_MAX);
            snprintf(idx[nq], sizeof idx[nq], "%d", 4 + nq);
            nq++;
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
    for (size_t i = from; i < to; i++) {
        struct beat_publish_rec *r = &p->recs[i];
        const char *queue = beat_entry_queue(r->e);
        int q = 0;
        while (strcmp(qnames[q], queue) != 0)
            q++;
        snprintf(ticks[i - from], sizeof ticks[i - from], "%lld", (long long)r->tick);
        argv[na] = r->e->str;
        lens[na++] = r->e->namelen;
        argv[na] = ticks[i - from];
        lens[na++] = strlen(ticks[i - from]);
        argv[na] = idx[q];
        lens[na++] = strlen(idx[q]);
        argv[na] = r->msg;
        lens[na++] = r->len;
    }
    if (!eval)
        return tq_conn_append_eval(conn, &publish_script, nkeys, na - nkeys, argv, lens);
    redisReply *reply =
        tq_conn_eval(conn, &publish_script, nkeys, na - nkeys, argv, lens);
    batch_result(p, from, to, reply);
    freeReplyObject(reply);
    return reply ? 0 : TQ_EREDIS;
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

    /* Send the batches pipelined, read the replies, retry NOSCRIPT ones in
     * order (stopping at the first failure, so that a later tick never
     * lands before an earlier one of the same schedule). Batch k is
     * recs[k * BEAT_PUBLISH_TICKS, end(k)). */
    size_t nb = (n + BEAT_PUBLISH_TICKS - 1) / BEAT_PUBLISH_TICKS;
#define BATCH_END(k) ((k) + 1 < nb ? ((k) + 1) * BEAT_PUBLISH_TICKS : n)
    for (size_t k = 0; k < nb; k++, sent++)
        if (send_batch(p, conn, k * BEAT_PUBLISH_TICKS, BATCH_END(k), 0) < 0)
            break;
    unsigned char noscript[BEAT_PUBLISH_PASS_MAX / BEAT_PUBLISH_TICKS + 1] = {0};
    for (size_t k = 0; k < nb; k++) {
        redisReply *reply = k < sent ? tq_conn_reply(conn) : NULL;
        noscript[k] = (unsigned char)tq_conn_is_noscript(reply);
        if (!noscript[k])
            batch_result(p, k * BEAT_PUBLISH_TICKS, BATCH_END(k), reply);
        freeReplyObject(reply);
    }
    for (size_t k = 0, failed = 0; k < nb; k++) {
        if (noscript[k] && failed)
            batch_result(p, k * BEAT_PUBLISH_TICKS, BATCH_END(k), NULL);
        else if (noscript[k])
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
    if (lost)
        beat_lease_lost(l, "the lease changed hands before a tick was published");
    return rc;
}
