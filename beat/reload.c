/* Change detection and reload of P:schedules into the beat's table; see
 * reload.h. */
#include "beat/reload.h"
#include "beat/array.h"
#include "beat/tick.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A definition that changed during a reload: replaces old when it ends. */
struct beat_reload_change {
    beat_entry *old; /* borrowed from the table */
    beat_entry *e;   /* owned until applied */
};

int beat_reload_init(beat_reload *r, const char *prefix, const char *default_tz)
{
    memset(r, 0, sizeof *r);
    snprintf(r->tz, sizeof r->tz, "%s", default_tz);
    r->client_id = -1;
    return tq_keys_fmt(prefix, TQ_KEY_SCHEDULES, NULL, NULL, r->key, TQ_KEYS_MAX) < 0
               ? TQ_EINVAL
               : 0;
}

static void reload_discard(beat_reload *r)
{
    for (size_t i = 0; i < r->nadded; i++)
        free(r->added[i]);
    for (size_t i = 0; i < r->nchanged; i++)
        free(r->changed[i].e);
    r->nadded = r->nchanged = 0;
    r->reloading = 0;
}

void beat_reload_deinit(beat_reload *r)
{
    reload_discard(r);
    free(r->added);
    free(r->changed);
    free(r->hashes);
    r->added = NULL;
    r->changed = NULL;
    r->hashes = NULL;
    r->capadded = r->capchanged = r->caphashes = 0;
}

static void reload_start(beat_reload *r, int64_t now_ms)
{
    reload_discard(r);
    r->reloading = 1;
    r->again = 0;
    r->gen++;
    r->nseen = 0;
    r->nscanned = 0;
    r->start_ms = now_ms;
    r->start_mono = tq_clock_mono_ms();
    snprintf(r->cursor, sizeof r->cursor, "0");
}

/* Takes note of one field of the scan, whose name hashes to nh and whose
 * text to h. Returns 0 or TQ_ENOMEM. */
static int reload_field(beat_reload *r, beat_table *t, const redisReply *name,
                        const redisReply *value, uint64_t nh, uint64_t h)
{
    size_t pos = beat_table_find(t, name->str, name->len, nh, h);
    beat_table_slot *sl = pos == SIZE_MAX ? NULL : &t->slots[pos];
    if (sl && sl->seen != r->gen && sl->def == h) { /* unchanged, first sighting */
        sl->seen = r->gen;
        r->nseen++;
        return 0;
    }
    beat_entry *old = sl ? t->ents[pos] : NULL;
    struct beat_reload_change *ch = NULL;
    if (old && sl->seen != r->gen) { /* changed, first sighting */
        sl->seen = r->gen;
        r->nseen++;
    } else if (old) {
        /* HSCAN may return a field twice: the latest text counts. */
        for (size_t i = 0; i < r->nchanged && !ch; i++)
            if (r->changed[i].old == old)
                ch = &r->changed[i];
        if (ch ? ch->e->hash == h : old->hash == h)
            return 0;
    }
    beat_entry *e =
        beat_entry_new(name->str, name->len, value->str, value->len, r->tz, r->key);
    if (!e)
        return TQ_ENOMEM;
    if (ch) {
        free(ch->e);
        ch->e = e;
    } else if (old) {
        if (beat_array_grow((void **)&r->changed, &r->capchanged, r->nchanged + 1,
                            sizeof *r->changed) < 0) {
            free(e);
            return TQ_ENOMEM;
        }
        r->changed[r->nchanged++] = (struct beat_reload_change){old, e};
    } else {
        if (beat_array_grow((void **)&r->added, &r->capadded, r->nadded + 1,
                            sizeof *r->added) < 0) {
            free(e);
            return TQ_ENOMEM;
        }
        r->added[r->nadded++] = e; /* a duplicate is dropped when applied */
    }
    return 0;
}

/* An entry the scan did not see (beat_table_sweep()): it leaves the heap
 * (arg) and is freed. */
static void removed(beat_entry *o, void *arg)
{
    char nm[BEAT_ENTRY_SHOWN_MAX];
    beat_heap *h = arg;
    tq_info("schedule '%s' removed", beat_entry_shown(o->str, o->namelen, nm, sizeof nm));
    if (beat_heap_contains(h, o))
        beat_heap_remove(h, o);
    free(o);
}

/* Ends a reload: replaces what changed, removes what the scan did not see,
 * inserts what was added, and updates the heap and the state reads for
 * those only, so that a small edit among a million schedules costs little
 * more than the scan. */
static int reload_apply(beat_reload *r, beat_table *t, beat_heap *h, beat_sync *s,
                        int leader, int64_t now_ms)
{
    size_t before = t->n, nchanged = r->nchanged;
    tq_log_level level = r->loaded ? TQ_LOG_INFO : TQ_LOG_DEBUG;
    /* Entries waiting for their state may be freed below: read all, then. */
    if (s->npending)
        beat_sync_all(s);
    /* Added: sorted, and a field seen twice counts once (the last text).
     * (r->added is NULL while nothing was ever added: qsort must not see
     * it, even with a count of 0.) */
    if (r->nadded > 1)
        qsort(r->added, r->nadded, sizeof *r->added, beat_entry_cmp);
    size_t na = 0;
    for (size_t i = 0; i < r->nadded; i++) {
        if (na && beat_entry_cmp(&r->added[na - 1], &r->added[i]) == 0) {
            free(r->added[na - 1]);
            na--;
        }
        r->added[na++] = r->added[i];
    }
    r->nadded = na;
    /* Room for everything below, so that nothing after this can fail. */
    if (beat_table_reserve(t, t->n + na + 1) < 0 ||
        beat_heap_reserve(h, t->n + na + 1) < 0)
        return TQ_ENOMEM;

    /* Changed: the new version takes the old one's place (same name). */
    for (size_t i = 0; i < r->nchanged; i++) {
        beat_entry *old = r->changed[i].old, *e = r->changed[i].e;
        size_t pos = beat_table_find(t, old->str, old->namelen, old->namehash, 0);
        beat_table_replace(t, pos, e);
        e->last = old->last;
        e->since = r->start_ms;
        beat_entry_log(e, "updated", level);
        int live = e->ok && e->enabled;
        if (live)
            e->next = beat_tick_first(e, now_ms);
        if (beat_heap_contains(h, old) && live)
            beat_heap_replace(h, old, e);
        else if (beat_heap_contains(h, old))
            beat_heap_remove(h, old);
        else if (live)
            (void)beat_heap_push(h, e); /* cannot fail: reserved */
        if (live)
            beat_sync_add(s, e, leader);
        free(old);
    }
    r->nchanged = 0;

    /* Removed: not seen by the scan. Only then is every entry visited. */
    if (r->nseen < before)
        beat_table_sweep(t, r->gen, removed, h);

    /* Added: inserted by name in one pass, then (from the last one down,
     * as they were inserted) given their first ticks. */
    beat_table_insert(t, r->added, na, r->gen);
    for (size_t j = na; j-- > 0;) {
        beat_entry *a = r->added[j];
        a->since = r->loaded ? r->start_ms : BEAT_ENTRY_SINCE_START;
        beat_entry_log(a, "added", level);
        if (a->ok && a->enabled) {
            a->next = beat_tick_first(a, now_ms);
            if (na > 1024)                    /* many: one beat_heap_build() below */
                (void)beat_heap_append(h, a); /* cannot fail: reserved */
            else
                (void)beat_heap_push(h, a);
            beat_sync_add(s, a, leader);
        }
    }
    if (na > 1024)
        beat_heap_build(h);
    if ((na || t->n != before) && beat_table_index(t) < 0)
        tq_warn(
            "reload: out of memory for the name index; looking names up by bisection");
    r->nadded = 0;
    r->reloading = 0;
    if (!r->loaded) {
        size_t bad = 0, enabled = h->n;
        for (size_t i = 0; i < t->n; i++)
            bad += !t->ents[i]->ok;
        tq_info("loaded %zu schedules from %s: %zu enabled, %zu disabled, %zu bad", t->n,
                r->key, enabled, t->n - enabled - bad, bad);
    }
    r->loaded = 1;
    int64_t took = tq_clock_mono_ms() - r->start_mono;
    tq_log(took >= 1000 ? TQ_LOG_INFO : TQ_LOG_DEBUG,
           "reloaded %s in %lld ms: %zu fields read, %zu added, %zu changed, %zu removed",
           r->key, (long long)took, r->nscanned, na, nchanged, before + na - t->n);
    return 0;
}

int beat_reload_step(beat_reload *r, tq_conn *conn, beat_table *t, beat_heap *h,
                     beat_sync *s, int leader, int64_t now_ms, int64_t deadline_mono)
{
    char count[16];
    snprintf(count, sizeof count, "%d", BEAT_RELOAD_SCAN_COUNT);
    do {
        const char *argv[] = {"HSCAN", r->key, r->cursor, "COUNT", count};
        redisReply *rep = tq_conn_cmdargv(conn, 5, argv, NULL);
        if (!rep)
            return TQ_EREDIS;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[0]->len >= sizeof r->cursor ||
            rep->element[1]->type != REDIS_REPLY_ARRAY || rep->element[1]->elements % 2) {
            if (!r->failing)
                tq_warn("cannot read %s (%s); keeping the schedules known so far", r->key,
                        rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
            r->failing = 1;
            freeReplyObject(rep);
            reload_discard(r);
            return 0;
        }
        if (r->failing)
            tq_info("%s is readable again", r->key);
        r->failing = 0;
        const redisReply *kv = rep->element[1];
        size_t nf = kv->elements / 2;
        for (size_t i = 0; i < nf; i++)
            if (kv->element[2 * i]->type != REDIS_REPLY_STRING ||
                kv->element[2 * i + 1]->type != REDIS_REPLY_STRING)
                nf = 0; /* not what HSCAN of a hash gives: read none */
        if (beat_array_grow((void **)&r->hashes, &r->caphashes, 2 * nf,
                            sizeof *r->hashes) < 0) {
            freeReplyObject(rep);
            reload_discard(r);
            tq_error("reload: out of memory; trying again at the next check");
            return TQ_ENOMEM;
        }
        /* Hash every field first, then look them up with the index and the
         * slots prefetched a few fields ahead: the lookups' cache misses
         * then overlap instead of coming one after the other. */
        for (size_t i = 0; i < nf; i++) {
            const redisReply *name = kv->element[2 * i], *value = kv->element[2 * i + 1];
            r->hashes[2 * i] = beat_entry_hash(name->str, name->len);
            r->hashes[2 * i + 1] = beat_entry_hash(value->str, value->len);
        }
        for (size_t i = 0; i < nf; i++) {
            if (i + 16 < nf)
                beat_table_prefetch_bucket(t, r->hashes[2 * (i + 16)]);
            if (i + 8 < nf)
                beat_table_prefetch_slot(t, r->hashes[2 * (i + 8)]);
            r->nscanned++;
            if (reload_field(r, t, kv->element[2 * i], kv->element[2 * i + 1],
                             r->hashes[2 * i], r->hashes[2 * i + 1]) < 0) {
                freeReplyObject(rep);
                reload_discard(r);
                tq_error("reload: out of memory; trying again at the next check");
                return TQ_ENOMEM;
            }
        }
        memcpy(r->cursor, rep->element[0]->str, rep->element[0]->len);
        r->cursor[rep->element[0]->len] = '\0';
        freeReplyObject(rep);
        if (strcmp(r->cursor, "0") == 0) {
            int rc = reload_apply(r, t, h, s, leader, now_ms);
            if (rc < 0) {
                reload_discard(r);
                tq_error("reload: out of memory; trying again at the next check");
                return rc;
            }
            if (r->again)
                reload_start(r, now_ms);
            return 0;
        }
    } while (tq_clock_mono_ms() < deadline_mono);
    return 0;
}

int beat_reload_check(beat_reload *r, tq_conn *conn, beat_sync *s, int leader,
                      int64_t now_ms)
{
    const char *client_id[] = {"CLIENT", "ID"};
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *watch[] = {"WATCH", r->key};
    if (tq_conn_append(conn, 2, client_id, NULL) < 0 ||
        tq_conn_append(conn, 1, multi, NULL) < 0 ||
        tq_conn_append(conn, 1, exec, NULL) < 0 ||
        tq_conn_append(conn, 2, watch, NULL) < 0)
        return TQ_EREDIS;
    redisReply *rep[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++)
        if (!(rep[i] = tq_conn_reply(conn))) {
            for (int k = 0; k < i; k++)
                freeReplyObject(rep[k]);
            return TQ_EREDIS;
        }
    long long id = rep[0]->type == REDIS_REPLY_INTEGER ? rep[0]->integer : -1;
    int watched = id >= 0 && rep[1]->type == REDIS_REPLY_STATUS &&
                  rep[3]->type == REDIS_REPLY_STATUS;
    int new_conn = id >= 0 && id != r->client_id;
    int changed = !watched || new_conn || rep[2]->type != REDIS_REPLY_ARRAY;
    if (!watched && !r->watch_warned) {
        const redisReply *e = rep[0]->type == REDIS_REPLY_ERROR   ? rep[0]
                              : rep[1]->type == REDIS_REPLY_ERROR ? rep[1]
                                                                  : rep[3];
        tq_warn("cannot watch %s for changes (%s); reloading it every %d ms instead",
                r->key, e->type == REDIS_REPLY_ERROR ? e->str : "unexpected reply",
                BEAT_RELOAD_CHECK_MS);
        r->watch_warned = 1;
    }
    if (new_conn && r->client_id >= 0 && leader)
        beat_sync_all(s); /* a new connection: Redis may have restarted */
    r->client_id = id;
    for (int i = 0; i < 4; i++)
        freeReplyObject(rep[i]);
    /* A scan under way goes on (its cursor stays valid), and another one
     * follows it, so that every change is seen. */
    if (changed && r->reloading)
        r->again = 1;
    else if (changed)
        reload_start(r, now_ms);
    return 0;
}
