/* The beat: leader lease, schedule reload, the next-due heap and tick
 * publishing. One thread, one Redis connection; see beat.h. */
#include "beat/beat.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/lock.h"
#include "common/log.h"
#include "common/msg.h"
#include "common/proc.h"
#include "common/url.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_TICK INT64_MIN
#define NOT_IN_HEAP SIZE_MAX
#define SHOWN_MAX 80               /* bytes of a name quoted in a log line */
#define STATE_TICK_MAX 1000000000000000LL /* ms; later state values are ignored */
#define RC_NOSCRIPT 2              /* a pipelined EVALSHA found no script */

/* ------------------------------------------------------------------------
 * State.
 *
 * The beat keeps one entry per field of P:schedules, good or bad, sorted by
 * name, so that a reload can tell added, changed and removed definitions
 * apart and warns about a bad one once (per version of its text). The good,
 * enabled entries are also in a binary min-heap keyed on (next tick, name):
 * a pass looks at the top only, so it costs O(due * log n). */

/* How a reload came to know an entry; decides its first tick (reload()). */
enum { MODE_CARRIED, MODE_FIRST, MODE_ADDED, MODE_CHANGED };

/* One schedule as this beat knows it. */
struct entry {
    char *name;     /* owned, NUL-terminated: the P:schedules field */
    size_t namelen; /* bytes (a field with a NUL in it is a bad name) */
    char *text;     /* owned: the definition as stored */
    size_t textlen;
    int ok;         /* 1: text decoded into s and its messages encode */
    tq_sched s;     /* owned when ok */
    int64_t last;   /* last tick known published, NO_TICK if none */
    int64_t next;   /* next tick to publish, valid while in the heap */
    size_t hpos;    /* index in the heap, or NOT_IN_HEAP */
    int mode;       /* MODE_*, only during a reload */
};

/* One tick of a publishing batch. */
struct rec {
    struct entry *e; /* borrowed from the entries */
    int64_t tick;
    char *msg;       /* owned: the encoded message */
    size_t len;
    int rc;          /* script result 1, 0 or -1, RC_NOSCRIPT, or a TQ_E... code */
};

struct beat {
    tq_conn *conn;
    char id[TQ_CONFIG_NAME_MAX];
    char prefix[TQ_CONFIG_NAME_MAX];
    char where[TQ_URL_HOST_MAX + 64]; /* the Redis URL without password */
    char file[TQ_CONFIG_STR_MAX];     /* the seed file, "" for none */
    int64_t lease_ms;
    int64_t period_ms; /* housekeeping: lease renewal and reload */
    char key_schedules[TQ_KEYS_MAX];
    char key_state[TQ_KEYS_MAX];
    char key_leader[TQ_KEYS_MAX];
    char key_stats[TQ_KEYS_MAX];
    tq_sched *seed; /* owned: the file's schedules until upserted */
    size_t nseed;
    int seeded;
    struct entry *ents; /* owned, sorted by name */
    size_t nents;
    struct entry **heap; /* borrowed pointers into ents */
    size_t nheap;
    struct rec *recs; /* owned, BEAT_BATCH_MAX of them */
    int loaded;       /* a reload has succeeded */
    int leader;       /* this beat holds the lease (as far as it knows) */
    int role_known;   /* leader or standby has been logged once */
    int redis_ok;     /* the last housekeeping succeeded, no failure since */
    int reload_err;   /* the last reload found unreadable keys (warned) */
    int64_t hk_due_mono; /* monotonic ms of the next housekeeping */
};

/* Publishes one tick. KEYS: leader, schedule-state, queue, stats. ARGV: beat
 * id, schedule name, tick ms, message. Returns -1 if the caller does not hold
 * the lease (a stale leader never publishes), 0 if the state is already at
 * or past the tick (two beats never publish a tick twice), 1 once the state
 * is advanced, the message pushed and the counter incremented. A state value
 * that is not a number counts as absent. */
static tq_script publish_script = TQ_SCRIPT(
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n"
    "local last = tonumber(redis.call('HGET', KEYS[2], ARGV[2]))\n"
    "if last and last >= tonumber(ARGV[3]) then return 0 end\n"
    "redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])\n"
    "redis.call('LPUSH', KEYS[3], ARGV[4])\n"
    "redis.call('HINCRBY', KEYS[4], 'published', 1)\n"
    "return 1\n");

/* Copies len bytes of s into buf for a log line: non-printable bytes become
 * '?', and the copy is cut to the buffer. Returns buf. */
static const char *shown(const char *s, size_t len, char *buf, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < cap; i++)
        buf[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[j] = '\0';
    return buf;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

static void entry_deinit(struct entry *e)
{
    free(e->name);
    free(e->text);
    if (e->ok)
        tq_sched_deinit(&e->s);
    memset(e, 0, sizeof *e);
}

/* Checks that every message of s can be encoded (args and kwargs within
 * TQ_MSG_MAX). Returns 0, or TQ_EDECODE with a sentence in err. */
static int check_messages(const tq_sched *s, char *err, size_t errlen)
{
    tq_msg m;
    size_t len;
    if (tq_sched_message(s, 0, 0, &m) < 0) {
        snprintf(err, errlen, "schedule '%s': out of memory", s->name);
        return TQ_ENOMEM;
    }
    char *text = tq_msg_encode(&m, &len);
    tq_msg_deinit(&m);
    if (!text) {
        snprintf(err, errlen, "schedule '%s': its messages would be over %d bytes", s->name,
                 TQ_MSG_MAX);
        return TQ_EDECODE;
    }
    free(text);
    return 0;
}

/* Decodes e's text into e->s, and warns (once per text: the caller only
 * decodes a new or changed text) when it is bad. Sets e->ok. */
static void entry_decode(beat *b, struct entry *e)
{
    char err[512] = "out of memory";
    char nm[SHOWN_MAX];
    int rc = tq_sched_decode_text(&e->s, e->text, e->textlen, err, sizeof err);
    if (rc == 0 && name_cmp(e->s.name, strlen(e->s.name), e->name, e->namelen) != 0) {
        snprintf(err, sizeof err, "the definition's name is '%s'", e->s.name);
        rc = TQ_EDECODE;
    }
    if (rc == 0)
        rc = check_messages(&e->s, err, sizeof err);
    if (rc < 0) {
        tq_sched_deinit(&e->s);
        tq_warn("schedule '%s' in %s is skipped: %s",
                shown(e->name, e->namelen, nm, sizeof nm), b->key_schedules, err);
    }
    e->ok = rc == 0;
}

/* ------------------------------------------------------------------------
 * The next-due heap: a binary min-heap of entry pointers on (next, name). */

static int due_before(const struct entry *a, const struct entry *b)
{
    if (a->next != b->next)
        return a->next < b->next;
    return name_cmp(a->name, a->namelen, b->name, b->namelen) < 0;
}

static void heap_put(beat *b, size_t i, struct entry *e)
{
    b->heap[i] = e;
    e->hpos = i;
}

static void heap_sift_down(beat *b, size_t i)
{
    struct entry *e = b->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= b->nheap)
            break;
        if (c + 1 < b->nheap && due_before(b->heap[c + 1], b->heap[c]))
            c++;
        if (!due_before(b->heap[c], e))
            break;
        heap_put(b, i, b->heap[c]);
        i = c;
    }
    heap_put(b, i, e);
}

/* Restores the heap order after any number of keys changed. O(n). */
static void heap_build(beat *b)
{
    for (size_t i = b->nheap / 2; i-- > 0;)
        heap_sift_down(b, i);
}

/* ------------------------------------------------------------------------
 * The catch-up rule (see beat.h). A gap no longer than the lease plus a
 * second is what a failover leaves (the old leader died, its lease ran out,
 * a standby took over): those ticks were merely delayed, so each is
 * published, in order. A longer gap means no beat ran at all, and flooding
 * the queues with stale ticks is worse than skipping them, so only the most
 * recent due tick is published. */

int64_t beat_catch_up(const tq_sched *s, int64_t next_ms, int64_t now_ms, int64_t lease_ms)
{
    if (next_ms > now_ms || next_ms > now_ms - (lease_ms + BEAT_GAP_SLACK_MS))
        return next_ms;
    return tq_sched_prev(s, now_ms);
}

/* ------------------------------------------------------------------------
 * Reload. P:schedules is the source of truth: every housekeeping reads it
 * whole, with P:schedule-state, and rebuilds the entries and the heap.
 *
 * The first tick an entry publishes depends on how this beat came to know
 * it (MODE_*):
 * - carried (same text as before): its next tick stays, or moves forward if
 *   P:schedule-state says another beat published further;
 * - first (this process's first reload): the tick after the state's last,
 *   and the catch-up rule decides at publish time what happens to missed
 *   ticks; with no state, the first grid tick at or after now (a new
 *   schedule waits for its next tick rather than publishing one from the
 *   past);
 * - added, changed or re-enabled while running: the first grid tick at or
 *   after now, but never one the state has already passed. Ticks of a new
 *   grid that fall before the change, or of a disabled period, were never
 *   due and are not published. */

struct field {
    const redisReply *name;
    const redisReply *value;
};

static int field_cmp(const void *pa, const void *pb)
{
    const struct field *a = pa, *b = pb;
    return name_cmp(a->name->str, a->name->len, b->name->str, b->name->len);
}

static struct entry *find_entry(struct entry *ents, size_t n, const char *name, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(ents[mid].name, ents[mid].namelen, name, len);
        if (c == 0)
            return &ents[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Parses a P:schedule-state value: a tick in ms. Returns 0 or TQ_EINVAL. */
static int parse_tick(const redisReply *v, int64_t *out)
{
    char buf[32], *end;
    if (v->type != REDIS_REPLY_STRING || v->len == 0 || v->len >= sizeof buf)
        return TQ_EINVAL;
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    errno = 0;
    long long t = strtoll(buf, &end, 10);
    if (errno || *end || t < 0 || t > STATE_TICK_MAX)
        return TQ_EINVAL;
    *out = t;
    return 0;
}

/* Copies a field and its value into a fresh entry. Returns 0 or TQ_ENOMEM. */
static int entry_init(struct entry *e, const redisReply *name, const redisReply *value)
{
    memset(e, 0, sizeof *e);
    e->name = malloc(name->len + 1);
    e->text = malloc(value->len + 1);
    if (!e->name || !e->text) {
        entry_deinit(e);
        return TQ_ENOMEM;
    }
    memcpy(e->name, name->str, name->len);
    e->name[name->len] = '\0';
    e->namelen = name->len;
    memcpy(e->text, value->str, value->len);
    e->text[value->len] = '\0';
    e->textlen = value->len;
    e->last = NO_TICK;
    e->hpos = NOT_IN_HEAP;
    return 0;
}

static void log_entry(const beat *b, const struct entry *e, const char *what)
{
    char nm[SHOWN_MAX];
    shown(e->name, e->namelen, nm, sizeof nm);
    if (!e->ok)
        return; /* entry_decode() has warned */
    if (e->s.enabled)
        tq_log(b->loaded ? TQ_LOG_INFO : TQ_LOG_DEBUG,
               "schedule '%s' %s: task %s every %lld ms on queue %s", nm, what, e->s.task,
               (long long)e->s.every_ms, e->s.queue);
    else
        tq_log(b->loaded ? TQ_LOG_INFO : TQ_LOG_DEBUG, "schedule '%s' %s: disabled", nm,
               what);
}

/* Rebuilds the entries and the heap from the replies of HGETALL P:schedules
 * (defs) and HGETALL P:schedule-state (state), both borrowed, at now_ms.
 * Returns 0, TQ_EREPLY if a key holds the wrong type (warned once; the old
 * schedules stay), or TQ_ENOMEM (nothing changed). */
static int reload(beat *b, const redisReply *defs, const redisReply *state, int64_t now_ms)
{
    if (defs->type != REDIS_REPLY_ARRAY || defs->elements % 2 ||
        state->type != REDIS_REPLY_ARRAY || state->elements % 2) {
        const redisReply *bad = defs->type != REDIS_REPLY_ARRAY ? defs : state;
        if (!b->reload_err)
            tq_warn("cannot read %s and %s (%s); keeping the schedules known so far",
                    b->key_schedules, b->key_state,
                    bad->type == REDIS_REPLY_ERROR ? bad->str : "unexpected reply");
        b->reload_err = 1;
        return TQ_EREPLY;
    }
    if (b->reload_err)
        tq_info("%s is readable again", b->key_schedules);
    b->reload_err = 0;

    size_t k = defs->elements / 2, nf = 0, n = 0, i = 0, j = 0;
    struct field *fields = malloc((k ? k : 1) * sizeof *fields);
    struct entry *ents = calloc(k ? k : 1, sizeof *ents);
    struct entry **heap = malloc((k ? k : 1) * sizeof *heap);
    if (!fields || !ents || !heap) {
        free(fields);
        free(ents);
        free(heap);
        tq_error("reload: out of memory");
        return TQ_ENOMEM;
    }
    for (size_t f = 0; f < k; f++) {
        const redisReply *name = defs->element[2 * f], *value = defs->element[2 * f + 1];
        if (name->type == REDIS_REPLY_STRING && value->type == REDIS_REPLY_STRING)
            fields[nf++] = (struct field){name, value};
    }
    qsort(fields, nf, sizeof *fields, field_cmp);

    /* Merge the old entries (sorted) with the new fields (sorted). */
    while (i < b->nents || j < nf) {
        struct entry *old = i < b->nents ? &b->ents[i] : NULL;
        const struct field *f = j < nf ? &fields[j] : NULL;
        int c = !old ? 1 : !f ? -1
                              : name_cmp(old->name, old->namelen, f->name->str, f->name->len);
        if (c < 0) {
            char nm[SHOWN_MAX];
            tq_info("schedule '%s' removed", shown(old->name, old->namelen, nm, sizeof nm));
            entry_deinit(old);
            i++;
            continue;
        }
        j++;
        if (c == 0 && old->textlen == f->value->len &&
            memcmp(old->text, f->value->str, old->textlen) == 0) {
            ents[n] = *old; /* the entry moves; the old slot owns nothing now */
            memset(old, 0, sizeof *old);
            ents[n++].mode = MODE_CARRIED;
            i++;
            continue;
        }
        struct entry *e = &ents[n];
        if (entry_init(e, f->name, f->value) < 0) {
            tq_error("reload: out of memory; a schedule is left out until the next reload");
            if (c == 0) {
                entry_deinit(old);
                i++;
            }
            continue;
        }
        entry_decode(b, e);
        if (c == 0) {
            e->last = old->last;
            e->mode = MODE_CHANGED;
            log_entry(b, e, "updated");
            entry_deinit(old);
            i++;
        } else {
            e->mode = b->loaded ? MODE_ADDED : MODE_FIRST;
            log_entry(b, e, "added");
        }
        n++;
    }
    free(fields);
    free(b->ents);
    free(b->heap);
    b->ents = ents;
    b->nents = n;
    b->heap = heap;
    b->nheap = 0;

    /* What has been published, by this beat or another. */
    for (size_t f = 0; f + 1 < state->elements; f += 2) {
        const redisReply *name = state->element[f];
        int64_t t;
        if (name->type != REDIS_REPLY_STRING || parse_tick(state->element[f + 1], &t) < 0)
            continue;
        struct entry *e = find_entry(b->ents, b->nents, name->str, name->len);
        if (e && (e->last == NO_TICK || t > e->last))
            e->last = t;
    }

    size_t enabled = 0, bad = 0;
    for (size_t x = 0; x < b->nents; x++) {
        struct entry *e = &b->ents[x];
        e->hpos = NOT_IN_HEAP;
        if (!e->ok) {
            bad++;
            continue;
        }
        if (!e->s.enabled)
            continue;
        int64_t after = e->last != NO_TICK ? tq_sched_next(&e->s, e->last) : NO_TICK;
        int64_t first = tq_sched_next(&e->s, now_ms - 1);
        switch (e->mode) {
        case MODE_CARRIED:
            if (after != NO_TICK && after > e->next)
                e->next = after;
            break;
        case MODE_FIRST:
            e->next = after != NO_TICK ? after : first;
            break;
        default:
            e->next = after != NO_TICK && after > first ? after : first;
            break;
        }
        heap_put(b, b->nheap++, e);
        enabled++;
    }
    heap_build(b);
    if (!b->loaded)
        tq_info("loaded %zu schedules from %s: %zu enabled, %zu disabled, %zu bad", b->nents,
                b->key_schedules, enabled, b->nents - enabled - bad, bad);
    b->loaded = 1;
    return 0;
}

/* ------------------------------------------------------------------------
 * Housekeeping: seed, lease, reload. */

/* Upserts the file's schedules into P:schedules with one HSET. Returns 0,
 * TQ_EREDIS, TQ_EREPLY (warned) or TQ_ENOMEM. Frees the seed on success. */
static int seed(beat *b)
{
    size_t argc = 2 + 2 * b->nseed;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    char **texts = calloc(b->nseed, sizeof *texts);
    int rc = TQ_ENOMEM;
    if (!argv || !lens || !texts)
        goto out;
    argv[0] = "HSET";
    argv[1] = b->key_schedules;
    lens[0] = 4;
    lens[1] = strlen(b->key_schedules);
    for (size_t i = 0; i < b->nseed; i++) {
        texts[i] = tq_sched_encode(&b->seed[i], &lens[3 + 2 * i]);
        if (!texts[i])
            goto out;
        argv[2 + 2 * i] = b->seed[i].name;
        lens[2 + 2 * i] = strlen(b->seed[i].name);
        argv[3 + 2 * i] = texts[i];
    }
    redisReply *r = tq_conn_cmdargv(b->conn, (int)argc, argv, lens);
    if (!r) {
        rc = TQ_EREDIS;
    } else if (r->type == REDIS_REPLY_ERROR) {
        tq_warn("could not upsert the schedules into %s: %s", b->key_schedules, r->str);
        rc = TQ_EREPLY;
    } else {
        rc = 0;
    }
    freeReplyObject(r);
out:
    if (rc == TQ_ENOMEM)
        tq_error("seeding the schedules: out of memory");
    for (size_t i = 0; texts && i < b->nseed; i++)
        free(texts[i]);
    free(texts);
    free(argv);
    free(lens);
    if (rc == 0) {
        tq_info("upserted %zu schedules from %s into %s", b->nseed, b->file, b->key_schedules);
        for (size_t i = 0; i < b->nseed; i++)
            tq_sched_deinit(&b->seed[i]);
        free(b->seed);
        b->seed = NULL;
        b->nseed = 0;
        b->seeded = 1;
    }
    return rc;
}

static void set_leader(beat *b, int leader, const char *why)
{
    if (leader && !b->leader)
        tq_info("leader: beat %s holds %s and publishes", b->id, b->key_leader);
    else if (!leader && b->leader)
        tq_info("lost leadership: %s", why);
    else if (!leader && !b->role_known)
        tq_info("standby: another beat holds %s", b->key_leader);
    b->leader = leader;
    b->role_known = 1;
}

/* Seeds (until that succeeds), takes or renews the lease, reloads, and sets
 * the time of the next housekeeping: the period, or sooner for a standby
 * when the current lease runs out first, so that failover waits for the
 * lease only. Returns 0 or a negative TQ_E... code (nothing else done). */
static int housekeeping(beat *b, int64_t now_ms)
{
    int rc;
    if (!b->seeded && (rc = seed(b)) < 0)
        return rc;
    rc = tq_lock_acquire(b->conn, b->key_leader, b->id, b->lease_ms);
    if (rc < 0) {
        if (rc != TQ_EREDIS)
            tq_warn("cannot take %s: %s", b->key_leader, tq_strerror(rc));
        return rc;
    }
    set_leader(b, rc == 1, "another beat holds the lease");

    const char *hgetall_defs[] = {"HGETALL", b->key_schedules};
    const char *hgetall_state[] = {"HGETALL", b->key_state};
    const char *pttl[] = {"PTTL", b->key_leader};
    if (tq_conn_append(b->conn, 2, hgetall_defs, NULL) < 0 ||
        tq_conn_append(b->conn, 2, hgetall_state, NULL) < 0 ||
        tq_conn_append(b->conn, 2, pttl, NULL) < 0)
        return TQ_EREDIS;
    redisReply *defs = tq_conn_reply(b->conn);
    redisReply *state = defs ? tq_conn_reply(b->conn) : NULL;
    redisReply *ttl = state ? tq_conn_reply(b->conn) : NULL;
    if (!ttl) {
        freeReplyObject(defs);
        freeReplyObject(state);
        return TQ_EREDIS;
    }
    rc = reload(b, defs, state, now_ms);
    int64_t mono = tq_clock_mono_ms();
    b->hk_due_mono = mono + b->period_ms;
    if (!b->leader && ttl->type == REDIS_REPLY_INTEGER) {
        /* -2: the lease is gone already; -1: no TTL (set by hand) */
        int64_t wait = ttl->integer == -2 ? 10 : ttl->integer >= 0 ? ttl->integer + 1 : -1;
        if (wait >= 0 && mono + wait < b->hk_due_mono)
            b->hk_due_mono = mono + wait;
    }
    freeReplyObject(defs);
    freeReplyObject(state);
    freeReplyObject(ttl);
    return rc == TQ_EREPLY ? 0 : rc; /* unreadable schedules: keep the old ones */
}

/* ------------------------------------------------------------------------
 * Publishing. Due ticks are popped from the heap in (tick, name) order and
 * their scripts pipelined: one round trip for the whole batch. A tick whose
 * script did not succeed goes back to its entry, to be retried next time. */

/* The publish script's answer for r: 1, 0 or -1, or TQ_EREDIS when the
 * connection broke, or TQ_EREPLY (logged) for anything else. */
static int reply_rc(const struct rec *r, const redisReply *reply)
{
    if (!reply)
        return TQ_EREDIS;
    if (reply->type == REDIS_REPLY_INTEGER)
        return (int)reply->integer;
    tq_warn("publishing %s@%lld failed: %s", r->e->name, (long long)r->tick,
            reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    return TQ_EREPLY;
}

/* Sends rec r's script: pipelined (eval 0) or at once with NOSCRIPT
 * handling (eval 1; the reply is then read and stored in r->rc). */
static int send_rec(beat *b, struct rec *r, int eval)
{
    char qkey[TQ_KEYS_MAX], tick[24];
    tq_keys_fmt(b->prefix, TQ_KEY_QUEUE, r->e->s.queue, qkey, sizeof qkey);
    snprintf(tick, sizeof tick, "%lld", (long long)r->tick);
    const char *argv[8] = {b->key_leader, b->key_state, qkey, b->key_stats,
                           b->id,         r->e->name,   tick, r->msg};
    size_t lens[8] = {strlen(argv[0]), strlen(argv[1]), strlen(qkey), strlen(argv[3]),
                      strlen(b->id),   r->e->namelen,   strlen(tick), r->len};
    if (!eval)
        return tq_conn_append_eval(b->conn, &publish_script, 4, 4, argv, lens);
    redisReply *reply = tq_conn_eval(b->conn, &publish_script, 4, 4, argv, lens);
    r->rc = reply_rc(r, reply);
    freeReplyObject(reply);
    return r->rc < 0 ? r->rc : 0;
}

/* Reads the pipelined replies of recs[0..n) into their rc, then retries the
 * NOSCRIPT ones in order (stopping at the first failure, so that a later
 * tick never lands before an earlier one of the same schedule). */
static void read_replies(beat *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct rec *r = &b->recs[i];
        redisReply *reply = tq_conn_reply(b->conn);
        r->rc = tq_conn_is_noscript(reply) ? RC_NOSCRIPT : reply_rc(r, reply);
        freeReplyObject(reply);
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct rec *r = &b->recs[i];
        if (r->rc == RC_NOSCRIPT) {
            if (failed)
                r->rc = TQ_EREDIS;
            else
                send_rec(b, r, 1); /* sets r->rc */
        }
        if (r->rc < 0)
            failed = 1;
    }
}

/* Publishes every tick due at now_ms, up to BEAT_BATCH_MAX, as the leader.
 * Returns 0, or a negative TQ_E... code after a failure (the ticks not
 * published are due again). */
static int publish_due(beat *b, int64_t now_ms)
{
    size_t n = 0, sent = 0;
    int rc = 0;
    while (b->nheap && b->heap[0]->next <= now_ms && n < BEAT_BATCH_MAX) {
        struct entry *e = b->heap[0];
        int64_t t = beat_catch_up(&e->s, e->next, now_ms, b->lease_ms);
        if (t != e->next)
            tq_info("schedule '%s': no beat ran for %lld ms; skipping %lld missed ticks and "
                    "publishing only the latest, %s@%lld",
                    e->name, (long long)(now_ms - e->next),
                    (long long)((t - e->next) / e->s.every_ms), e->name, (long long)t);
        tq_msg m;
        struct rec *r = &b->recs[n];
        *r = (struct rec){e, t, NULL, 0, TQ_EREDIS};
        if (tq_sched_message(&e->s, t, now_ms, &m) < 0) {
            rc = TQ_ENOMEM;
            break;
        }
        r->msg = tq_msg_encode(&m, &r->len);
        tq_msg_deinit(&m);
        n++;
        if (!r->msg) {
            rc = TQ_ENOMEM;
            break;
        }
        if ((rc = send_rec(b, r, 0)) < 0)
            break;
        sent++;
        e->next = tq_sched_next(&e->s, t);
        heap_sift_down(b, 0);
    }
    if (rc == TQ_ENOMEM)
        tq_error("publishing: out of memory");
    read_replies(b, sent);

    int rollback = 0, lost = 0;
    for (size_t i = 0; i < n; i++) {
        struct rec *r = &b->recs[i];
        struct entry *e = r->e;
        if (r->rc == 1 || r->rc == 0) {
            if (e->last == NO_TICK || r->tick > e->last)
                e->last = r->tick;
            tq_debug("%s %s@%lld on queue %s", r->rc ? "published" : "already published",
                     e->name, (long long)r->tick, e->s.queue);
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
        heap_build(b);
    if (lost) {
        set_leader(b, 0, "the lease changed hands before a tick was published");
        b->hk_due_mono = tq_clock_mono_ms(); /* find out who leads, now */
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * The loop. */

int64_t beat_step(beat *b, int64_t now_ms, int64_t mono_ms)
{
    if (mono_ms >= b->hk_due_mono) {
        int rc = housekeeping(b, now_ms);
        b->redis_ok = rc == 0;
        if (rc < 0) {
            int64_t wait = rc == TQ_EREDIS ? tq_conn_backoff_ms(b->conn) : 1000;
            wait = wait < 10 ? 10 : wait > 1000 ? 1000 : wait;
            b->hk_due_mono = tq_clock_mono_ms() + wait;
        }
    }
    if (b->leader && b->redis_ok) {
        int rc = publish_due(b, now_ms);
        if (rc < 0) {
            /* Redis went away (or an error reply): pause publishing until a
             * housekeeping succeeds again, after the connection's backoff. */
            int64_t wait = rc == TQ_EREDIS ? tq_conn_backoff_ms(b->conn) : 1000;
            wait = wait < 10 ? 10 : wait > 1000 ? 1000 : wait;
            b->redis_ok = 0;
            b->hk_due_mono = tq_clock_mono_ms() + wait;
        }
    }
    int64_t sleep_ms = b->hk_due_mono - mono_ms;
    if (b->leader && b->redis_ok && b->nheap && b->heap[0]->next - now_ms < sleep_ms)
        sleep_ms = b->heap[0]->next - now_ms;
    return sleep_ms < 0 ? 0 : sleep_ms > BEAT_SLEEP_MAX_MS ? BEAT_SLEEP_MAX_MS : sleep_ms;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleeps until the monotonic time deadline_us, in steps of at most 100 ms
 * so that a set *stop ends it early. */
static void sleep_until(int64_t deadline_us, volatile sig_atomic_t *stop)
{
    for (;;) {
        int64_t left = deadline_us - mono_us();
        if (*stop || left <= 0)
            return;
        tq_clock_sleep_us(left > 100000 ? 100000 : left);
    }
}

void beat_run(beat *b, volatile sig_atomic_t *stop)
{
    if (b->file[0])
        tq_info("beat %s starting: %zu schedules from %s, redis %s, prefix %s, lease %lld ms",
                b->id, b->nseed, b->file, b->where, b->prefix, (long long)b->lease_ms);
    else
        tq_info("beat %s starting: schedules from %s, redis %s, lease %lld ms", b->id,
                b->key_schedules, b->where, (long long)b->lease_ms);
    while (!*stop) {
        /* "now" is read once per pass. Ticks fall on whole wall-clock
         * milliseconds, so the sleep is measured from the microsecond read
         * here, and on the monotonic clock, so that the time the pass took
         * is not slept again and a wall-clock step cannot stretch it. */
        int64_t wall = tq_clock_wall_us(), mono = mono_us();
        int64_t sleep_ms = beat_step(b, wall / 1000, mono / 1000);
        sleep_until(mono + sleep_ms * 1000 - wall % 1000, stop);
    }
    beat_resign(b);
    tq_info("beat %s stopped", b->id);
}

int beat_resign(beat *b)
{
    int was = b->leader;
    int rc = tq_lock_release(b->conn, b->key_leader, b->id);
    if (rc == 1)
        tq_info("released %s: a standby can take over now", b->key_leader);
    else if (rc < 0 && was)
        tq_warn("could not release %s (%s); it expires within %lld ms", b->key_leader,
                tq_strerror(rc), (long long)b->lease_ms);
    b->leader = 0;
    return rc;
}

int beat_is_leader(const beat *b)
{
    return b->leader;
}

/* ------------------------------------------------------------------------
 * Construction. */

beat *beat_new(const tq_config *cfg, char *err, size_t errlen)
{
    tq_url url;
    beat *b = calloc(1, sizeof *b);
    if (errlen)
        err[0] = '\0';
    if (!b)
        return NULL;
    if (tq_url_parse(cfg->redis_url, &url, err, errlen) < 0)
        goto fail;
    tq_url_redacted(&url, b->where, sizeof b->where);
    snprintf(b->prefix, sizeof b->prefix, "%s", cfg->prefix);
    snprintf(b->file, sizeof b->file, "%s", cfg->schedules);
    if (cfg->beat_id[0])
        snprintf(b->id, sizeof b->id, "%s", cfg->beat_id);
    else
        tq_proc_default_id(b->id, sizeof b->id);
    b->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : 5000;
    /* Renew well before the lease runs out: three chances per lease. */
    b->period_ms = b->lease_ms / 3 < BEAT_HOUSEKEEPING_MS ? b->lease_ms / 3
                                                           : BEAT_HOUSEKEEPING_MS;
    if (b->period_ms < 10)
        b->period_ms = 10;
    if (tq_keys_fmt(b->prefix, TQ_KEY_SCHEDULES, NULL, b->key_schedules, TQ_KEYS_MAX) < 0 ||
        tq_keys_fmt(b->prefix, TQ_KEY_SCHEDULE_STATE, NULL, b->key_state, TQ_KEYS_MAX) < 0 ||
        tq_keys_fmt(b->prefix, TQ_KEY_BEAT_LEADER, NULL, b->key_leader, TQ_KEYS_MAX) < 0 ||
        tq_keys_fmt(b->prefix, TQ_KEY_STATS, NULL, b->key_stats, TQ_KEYS_MAX) < 0) {
        snprintf(err, errlen, "prefix '%s' is too long", b->prefix);
        goto fail;
    }
    if (b->file[0]) {
        int rc = tq_sched_load_file(b->file, &b->seed, &b->nseed, err, errlen);
        if (rc == TQ_ENOMEM)
            err[0] = '\0';
        if (rc < 0)
            goto fail;
        for (size_t i = 0; i < b->nseed; i++) {
            char sub[256];
            int crc = check_messages(&b->seed[i], sub, sizeof sub);
            if (crc < 0) {
                if (crc == TQ_ENOMEM)
                    err[0] = '\0';
                else
                    snprintf(err, errlen, "%s: %s", b->file, sub);
                goto fail;
            }
        }
    }
    b->seeded = b->nseed == 0;
    b->recs = calloc(BEAT_BATCH_MAX, sizeof *b->recs);
    b->conn = tq_conn_new(&url, "beat");
    if (!b->recs || !b->conn) {
        err[0] = '\0';
        goto fail;
    }
    return b;
fail:
    beat_free(b);
    return NULL;
}

void beat_free(beat *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nseed; i++)
        tq_sched_deinit(&b->seed[i]);
    free(b->seed);
    for (size_t i = 0; i < b->nents; i++)
        entry_deinit(&b->ents[i]);
    free(b->ents);
    free(b->heap);
    free(b->recs);
    tq_conn_free(b->conn);
    free(b);
}
