/* Reading P:schedule-state into the beat's entries; see sync.h. */
#include "beat/sync.h"
#include "beat/array.h"
#include "beat/tick.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

int beat_sync_init(beat_sync *s, const char *prefix)
{
    memset(s, 0, sizeof *s);
    return tq_keys_fmt(prefix, TQ_KEY_SCHEDULE_STATE, NULL, NULL, s->key, TQ_KEYS_MAX) < 0
               ? TQ_EINVAL
               : 0;
}

void beat_sync_deinit(beat_sync *s)
{
    free(s->pending);
    s->pending = NULL;
    s->npending = s->cappending = 0;
}

void beat_sync_all(beat_sync *s)
{
    s->all = 1;
    s->npending = 0;
}

void beat_sync_add(beat_sync *s, beat_entry *e, int leader)
{
    if (!leader || s->all)
        return;
    if (beat_array_grow((void **)&s->pending, &s->cappending, s->npending + 1,
                        sizeof *s->pending) < 0) {
        beat_sync_all(s); /* read them all, then */
        return;
    }
    s->pending[s->npending++] = e;
}

int beat_sync_due(const beat_sync *s)
{
    return s->all || s->npending;
}

/* Parses a P:schedule-state value: a tick in ms, decimal digits only (as
 * the publish script reads it). Returns 0, TQ_EINVAL for a value that is
 * not a tick, or TQ_EDECODE for none (nil). */
static int parse_tick(const redisReply *v, int64_t *out)
{
    int64_t t = 0;
    if (v->type == REDIS_REPLY_NIL)
        return TQ_EDECODE;
    if (v->type != REDIS_REPLY_STRING || v->len == 0 || v->len > 16)
        return TQ_EINVAL;
    for (size_t i = 0; i < v->len; i++) {
        if (v->str[i] < '0' || v->str[i] > '9')
            return TQ_EINVAL;
        t = t * 10 + (v->str[i] - '0');
    }
    if (t > BEAT_SYNC_TICK_MAX)
        return TQ_EINVAL;
    *out = t;
    return 0;
}

void beat_sync_held(beat_sync *s, beat_entry *e, int bad, const redisReply *v)
{
    char nm[BEAT_ENTRY_SHOWN_MAX], val[BEAT_ENTRY_SHOWN_MAX];
    if (bad && !e->held)
        tq_error("%s field '%s' is '%s', not a tick (ms): schedule '%s' publishes "
                 "nothing until it is a tick again or deleted (HDEL)",
                 s->key, beat_entry_shown(e->str, e->namelen, nm, sizeof nm),
                 v && v->type == REDIS_REPLY_STRING
                     ? beat_entry_shown(v->str, v->len, val, sizeof val)
                     : "?",
                 nm);
    else if (!bad && e->held)
        tq_info("%s field '%s' is a tick again: schedule '%s' publishes again", s->key,
                beat_entry_shown(e->str, e->namelen, nm, sizeof nm), nm);
    e->held = bad ? 1 : 0;
}

int beat_sync_run(beat_sync *s, tq_conn *conn, const beat_table *t, beat_heap *h,
                  int64_t now_ms)
{
    if (!s->all && !s->npending)
        return 0;
    int all = s->all, rc = 0;
    size_t n = all ? 0 : s->npending;
    int64_t t0 = tq_clock_mono_ms();
    beat_entry **todo = all ? malloc((t->n + 1) * sizeof *todo) : s->pending;
    const char **argv = malloc((BEAT_SYNC_CHUNK + 2) * BEAT_SYNC_PIPELINE * sizeof *argv);
    size_t *lens = malloc((BEAT_SYNC_CHUNK + 2) * BEAT_SYNC_PIPELINE * sizeof *lens);
    if (!todo || !argv || !lens) {
        rc = TQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; all && i < t->n; i++)
        if (t->ents[i]->ok && t->ents[i]->enabled)
            todo[n++] = t->ents[i];
    for (size_t done = 0; done < n && rc == 0;) {
        /* Send up to BEAT_SYNC_PIPELINE chunks, then read their replies. */
        size_t sent = 0, start = done;
        for (; sent < BEAT_SYNC_PIPELINE && done < n; sent++) {
            const char **a = argv + sent * (BEAT_SYNC_CHUNK + 2);
            size_t *l = lens + sent * (BEAT_SYNC_CHUNK + 2), c = 0;
            a[0] = "HMGET";
            l[0] = 5;
            a[1] = s->key;
            l[1] = strlen(s->key);
            for (; c < BEAT_SYNC_CHUNK && done < n; c++, done++) {
                a[2 + c] = todo[done]->str;
                l[2 + c] = todo[done]->namelen;
            }
            if (tq_conn_append(conn, (int)(c + 2), a, l) < 0) {
                rc = TQ_EREDIS;
                break;
            }
        }
        for (size_t k = 0, at = start; k < sent; k++) {
            redisReply *r = tq_conn_reply(conn);
            if (!r) {
                rc = TQ_EREDIS;
                break;
            }
            if (r->type != REDIS_REPLY_ARRAY) {
                if (!s->failing)
                    tq_error("cannot read %s (%s): no tick is published until it is a "
                             "hash again or deleted",
                             s->key,
                             r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
                s->failing = 1;
                rc = rc ? rc : TQ_EREPLY;
            }
            for (size_t x = 0; r->type == REDIS_REPLY_ARRAY && x < r->elements; x++) {
                beat_entry *e = todo[at + x];
                int64_t tick;
                int prc = parse_tick(r->element[x], &tick);
                beat_sync_held(s, e, prc == TQ_EINVAL, r->element[x]);
                /* The state in Redis is the truth, even when it is behind
                 * what this beat published: a failover to a replica that
                 * lacked the last publications, or a restart that lost
                 * them. Those ticks are then due again. */
                if (prc == 0)
                    e->last = tick;
            }
            at += r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
            freeReplyObject(r);
        }
    }
    if (rc == 0) {
        if (s->failing)
            tq_info("%s is readable again", s->key);
        s->failing = 0;
        for (size_t i = 0; i < n; i++) {
            /* A bad value tells nothing: what is known stays. */
            if (todo[i]->held && todo[i]->next != BEAT_ENTRY_NO_TICK)
                continue;
            todo[i]->next = beat_tick_first(todo[i], now_ms);
            if (!all && beat_heap_contains(h, todo[i]))
                beat_heap_fix(h, todo[i]);
        }
        if (all)
            beat_heap_build(h);
        s->all = 0;
        s->npending = 0;
        tq_log(n >= 10000 ? TQ_LOG_INFO : TQ_LOG_DEBUG,
               "read %s for %zu schedules in %lld ms", s->key, n,
               (long long)(tq_clock_mono_ms() - t0));
    } else {
        beat_sync_all(s); /* start over next time */
    }
out:
    if (rc == TQ_ENOMEM) {
        tq_error("reading %s: out of memory", s->key);
        beat_sync_all(s);
    }
    if (all)
        free(todo);
    free(argv);
    free(lens);
    return rc;
}
