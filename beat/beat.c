/* The beat: leader lease, change detection and reload of the schedules,
 * reading the schedule state, the next-due heap, tick publishing and the
 * promotion of delayed messages. One thread, one Redis connection; see
 * beat.h. */
#include "beat/beat.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/delayed.h"
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
#include <sys/mman.h>
#include <time.h>

#define NO_TICK INT64_MIN
#define SINCE_START INT64_MIN /* known since the first load: catch-up applies */
#define NOT_IN_HEAP UINT32_MAX
#define SHOWN_MAX 80                      /* bytes of a name quoted in a log line */
#define STATE_TICK_MAX 1000000000000000LL /* ms; later state values are ignored */
#define COUNT_CAP 100000 /* missed ticks counted for a log line, at most */
#define SYNC_PIPELINE 8  /* HMGETs in flight while reading the state */
#define RETRY_MS 1000    /* a tick held by a bad key is tried again after this */
#define BADQ_MAX 64      /* bad queue keys remembered (each logged once) */

/* Per-tick answers of the publish script besides 1 and 0 (see there). */
enum { HELD_QUEUE = 2, HELD_STATE = 3 };

/* ------------------------------------------------------------------------
 * State.
 *
 * The beat keeps one entry per field of P:schedules, good or bad, in an
 * array sorted by (hash of the name, name), so that a reload can tell
 * added, changed and removed definitions apart and warns about a bad one
 * once (per version of its text). A parallel array of slots holds, per
 * entry, the hash of its name, the hash of its definition and the reload
 * generation that last saw it; a name is found there through a table of
 * where each hash prefix starts. A reload that finds a definition
 * unchanged therefore touches one slot, not the entry: one or two cache
 * misses rather than the twenty of a bisection that chases pointers. That
 * is what makes a reload of a million schedules fast.
 *
 * The good, enabled entries are also in a binary min-heap keyed on (next
 * tick, name): a pass looks at the top only, so it costs O(due * log n).
 *
 * An entry is one allocation, small enough for a million of them: the
 * timing rule, what a message needs, a hash of the definition's text (to
 * notice changes without keeping the text) and the strings, one after the
 * other. */

struct entry {
    tq_sched_rule rule;
    int64_t last;        /* last tick known published, NO_TICK if none known */
    int64_t next;        /* next tick to publish, valid while in the heap */
    int64_t since;       /* SINCE_START, or when this definition appeared (ms) */
    int64_t retry;       /* wall ms before which a held tick is not tried again */
    uint64_t hash;       /* of the definition's text */
    uint64_t namehash;   /* of the name: the sort key */
    double timeout;      /* seconds, 0: the worker's default */
    double expires;      /* seconds after the tick, 0: never */
    int32_t max_retries; /* -1: the worker's default */
    uint32_t hpos;       /* index in the heap, or NOT_IN_HEAP */
    uint32_t namelen;    /* bytes of the name (a bad field name may hold a NUL) */
    uint8_t ok;          /* 1: the definition decoded and its messages encode */
    uint8_t enabled;
    uint8_t catchup;     /* tq_sched_catchup */
    uint8_t catching_up; /* a catch-up has been logged */
    uint8_t held;        /* HELD_STATE while its state value is bad (logged), or 0 */
    /* name, then (when ok) task, queue, args JSON, kwargs JSON and the
     * cron expression ("" for an interval), each NUL-terminated */
    char str[];
};

/* One tick of a publishing pass. */
struct rec {
    struct entry *e; /* borrowed from the entries */
    int64_t tick;
    char *msg; /* owned: the encoded message */
    size_t len;
    int rc; /* 1 published, 0 already published, -1 lease lost, or a TQ_E... code */
};

/* The lookup data of one entry, next to that of its neighbours. */
struct slot {
    uint64_t name; /* the entry's namehash: the sort key */
    uint64_t def;  /* the entry's hash: its definition's text */
    uint32_t seen; /* the reload generation that saw it last */
};

/* A definition that changed during a reload: replaces old when it ends. */
struct change {
    struct entry *old; /* borrowed from the entries */
    struct entry *e;   /* owned until applied */
};

struct beat {
    tq_conn *conn;
    char id[TQ_CONFIG_NAME_MAX];
    char prefix[TQ_CONFIG_NAME_MAX];
    char where[TQ_URL_HOST_MAX + 64]; /* the Redis URL without password */
    char file[TQ_CONFIG_STR_MAX];     /* the seed file, "" for none */
    char tz[TQ_TZ_NAME_MAX];          /* default zone of cron schedules */
    int64_t lease_ms;
    int64_t period_ms; /* lease renewal */
    int catchup_max;
    char key_schedules[TQ_KEYS_MAX];
    char key_state[TQ_KEYS_MAX];
    char key_leader[TQ_KEYS_MAX];
    char key_stats[TQ_KEYS_MAX];
    tq_sched *seed; /* owned: the file's schedules until upserted */
    size_t nseed;
    int seeded;
    struct entry **ents; /* owned entries, sorted by (namehash, name) */
    struct slot *slots;  /* per entry */
    uint32_t *bucket;    /* index of the first slot of each top-bits prefix, and nents */
    int bucket_bits;
    size_t nents, capents;
    struct entry **heap; /* borrowed pointers into ents */
    size_t nheap, capheap;
    struct entry **pending; /* borrowed: entries whose state the leader must read */
    size_t npending, cappending;
    struct rec *recs; /* owned, BEAT_PASS_MAX of them */
    /* reload */
    int reloading;    /* an HSCAN is under way */
    int reload_again; /* P:schedules changed during it */
    char cursor[32];
    uint32_t gen;
    size_t nseen;        /* distinct known entries this scan has seen */
    int64_t reload_ms;   /* wall time the reload started: "since" of new definitions */
    int64_t reload_mono; /* monotonic ms it started */
    size_t nscanned;     /* fields it has read */
    uint64_t *hashes;    /* scratch: name and text hashes of one HSCAN reply */
    size_t caphashes;
    struct entry **added; /* owned until applied */
    size_t nadded, capadded;
    struct change *changed;
    size_t nchanged, capchanged;
    long long client_id; /* CLIENT ID of the connection the WATCH is on, -1 none */
    int watch_warned;
    /* roles */
    int loaded;     /* a reload has been applied */
    int leader;     /* this beat holds the lease (as far as it knows) */
    int role_known; /* leader or standby has been logged once */
    int redis_ok;   /* the last lease renewal succeeded, no failure since */
    int sync_all;   /* read the whole state before publishing */
    int reload_err; /* P:schedules is unreadable (warned) */
    int64_t lease_due_mono;
    int64_t check_due_mono;
    int64_t promote_due_mono;
    size_t pass_caught_up; /* schedules caught up in this pass (for the summary) */
    int64_t pass_skipped;  /* and the missed ticks they skipped */
    /* Problems logged once when they start and once when they end, so that
     * a key of the wrong type is one error, not one per pass. */
    char badq[BADQ_MAX][TQ_KEYS_MAX]; /* queue keys that are not lists */
    int nbadq;
    int publish_failing; /* the publish script answers an error */
    int stats_failing;   /* P:stats is not a hash: ticks are not counted */
    int lease_failing;   /* the lease script answers an error */
    int seed_failing;    /* the upsert of the file's schedules fails */
    int state_failing;   /* P:schedule-state cannot be read */
    int lease_no_ttl;    /* another owner's lease has no expiry (warned) */
    int stopped;         /* a stop signal came while beat_new() read the file */
};

/* Publishes up to BEAT_SCRIPT_TICKS ticks. KEYS: leader, schedule-state,
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

static int entry_cmp(const void *pa, const void *pb)
{
    const struct entry *a = *(struct entry *const *)pa, *b = *(struct entry *const *)pb;
    if (a->namehash != b->namehash)
        return a->namehash < b->namehash ? -1 : 1;
    return name_cmp(a->str, a->namelen, b->str, b->namelen);
}

/* A 64-bit hash of len bytes at s, eight bytes at a time, finished with
 * the MurmurHash3 mixer: tells a changed definition from an unchanged one,
 * and spreads names evenly over the prefix table. Not for adversaries: only
 * writers of P:schedules choose the input, and they can change it anyway. */
static uint64_t text_hash(const char *s, size_t len)
{
    const uint64_t m = 0xff51afd7ed558ccdull;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * m), w;
    for (; len >= 8; s += 8, len -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * m;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, s, len);
    h = (h ^ w) * m;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* The strings after the name. */
static const char *entry_task(const struct entry *e)
{
    return e->str + e->namelen + 1;
}

static const char *entry_queue(const struct entry *e)
{
    const char *task = entry_task(e);
    return task + strlen(task) + 1;
}

/* Builds the message of e's tick at tick_ms, enqueued at now_ms. Returns a
 * new string (its length in *len), or NULL when out of memory. */
static char *entry_message(const struct entry *e, int64_t tick_ms, int64_t now_ms,
                           size_t *len)
{
    const char *task = entry_task(e), *queue = entry_queue(e);
    const char *args = queue + strlen(queue) + 1, *kwargs = args + strlen(args) + 1;
    tq_msg m;
    char *text = NULL;
    if (tq_msg_init(&m) < 0)
        return NULL;
    snprintf(m.id, sizeof m.id, "%s@%lld", e->str, (long long)tick_ms);
    snprintf(m.task, sizeof m.task, "%s", task);
    snprintf(m.queue, sizeof m.queue, "%s", queue);
    snprintf(m.schedule, sizeof m.schedule, "%s", e->str);
    /* Empty args and kwargs are the usual case, and what init made. */
    if (strcmp(args, "[]") != 0) {
        json_decref(m.args);
        m.args = json_loads(args, 0, NULL);
    }
    if (strcmp(kwargs, "{}") != 0) {
        json_decref(m.kwargs);
        m.kwargs = json_loads(kwargs, 0, NULL);
    }
    if (m.args && m.kwargs) {
        m.scheduled_at = (double)tick_ms / 1000.0;
        m.enqueued_at = (double)now_ms / 1000.0;
        /* An expiry past the protocol's last instant is no expiry. */
        if (e->expires > 0 && m.scheduled_at + e->expires < TQ_MSG_TIME_END)
            m.expires_at = m.scheduled_at + e->expires;
        m.max_retries = e->max_retries;
        m.timeout = e->timeout;
        text = tq_msg_encode(&m, len);
    }
    tq_msg_deinit(&m);
    return text;
}

/* Checks that the messages of s encode (args and kwargs within TQ_MSG_MAX).
 * Returns 0, or TQ_EDECODE / TQ_ENOMEM with a sentence in err. */
static int check_messages(const tq_sched *s, char *err, size_t errlen)
{
    tq_msg m;
    size_t len;
    if (tq_sched_message(s, 0, 0, &m) < 0)
        return tq_err_set(TQ_ENOMEM, err, errlen, "schedule '%s': out of memory",
                          s->name);
    char *text = tq_msg_encode(&m, &len);
    tq_msg_deinit(&m);
    if (!text)
        return tq_err_set(TQ_EDECODE, err, errlen,
                          "schedule '%s': its messages would be over %d bytes", s->name,
                          TQ_MSG_MAX);
    free(text);
    return 0;
}

/* Makes a bad entry: the name only. */
static struct entry *entry_bad(const char *name, size_t namelen, uint64_t hash)
{
    struct entry *e = calloc(1, sizeof *e + namelen + 1);
    if (!e)
        return NULL;
    memcpy(e->str, name, namelen);
    e->namelen = (uint32_t)namelen;
    e->hash = hash;
    e->namehash = text_hash(name, namelen);
    e->last = e->next = NO_TICK;
    e->hpos = NOT_IN_HEAP;
    return e;
}

/* Decodes the definition text (textlen bytes) of the field name into a new
 * entry. A bad definition is warned about and makes a bad entry. Returns
 * NULL only when out of memory. */
static struct entry *entry_new(const beat *b, const char *name, size_t namelen,
                               const char *text, size_t textlen)
{
    char err[512] = "", nm[SHOWN_MAX];
    uint64_t hash = text_hash(text, textlen);
    tq_sched s;
    int rc = tq_sched_decode_text(&s, text, textlen, b->tz, err, sizeof err);
    if (rc == 0 && name_cmp(s.name, strlen(s.name), name, namelen) != 0)
        rc = tq_err_set(TQ_EDECODE, err, sizeof err, "the definition's name is '%s'",
                        s.name);
    /* A message is about as long as its definition: only a long one may
     * be too big once encoded. */
    if (rc == 0 && textlen > TQ_MSG_MAX / 2)
        rc = check_messages(&s, err, sizeof err);
    if (rc < 0) {
        if (rc != TQ_ENOMEM)
            tq_warn("schedule '%s' in %s is skipped: %s",
                    shown(name, namelen, nm, sizeof nm), b->key_schedules, err);
        tq_sched_deinit(&s);
        return rc == TQ_ENOMEM ? NULL : entry_bad(name, namelen, hash);
    }
    size_t alen, klen;
    char *args = tq_msg_dump_json(s.args, &alen),
         *kwargs = tq_msg_dump_json(s.kwargs, &klen);
    size_t tlen = strlen(s.task), qlen = strlen(s.queue);
    size_t clen = s.rule.kind == TQ_SCHED_CRON ? strlen(s.cron) : 0;
    struct entry *e = NULL;
    if (args && kwargs)
        e = calloc(1, sizeof *e + namelen + tlen + qlen + alen + klen + clen + 6);
    if (e) {
        char *p = e->str;
        memcpy(p, name, namelen);
        p += namelen + 1;
        memcpy(p, s.task, tlen);
        p += tlen + 1;
        memcpy(p, s.queue, qlen);
        p += qlen + 1;
        memcpy(p, args, alen);
        p += alen + 1;
        memcpy(p, kwargs, klen);
        p += klen + 1;
        memcpy(p, s.cron, clen);
        e->rule = s.rule;
        e->namelen = (uint32_t)namelen;
        e->hash = hash;
        e->namehash = text_hash(name, namelen);
        e->ok = 1;
        e->enabled = (uint8_t)s.enabled;
        e->catchup = (uint8_t)s.catchup;
        e->timeout = s.timeout;
        e->expires = s.expires;
        e->max_retries = s.max_retries;
        e->last = e->next = NO_TICK;
        e->hpos = NOT_IN_HEAP;
    }
    free(args);
    free(kwargs);
    tq_sched_deinit(&s);
    return e;
}

static void log_entry(const beat *b, const struct entry *e, const char *what)
{
    char nm[SHOWN_MAX];
    tq_log_level level = b->loaded ? TQ_LOG_INFO : TQ_LOG_DEBUG;
    if (level < tq_log_min || !e->ok)
        return; /* a bad one has been warned about */
    shown(e->str, e->namelen, nm, sizeof nm);
    const char *task = entry_task(e), *queue = entry_queue(e);
    const char *args = queue + strlen(queue) + 1, *kwargs = args + strlen(args) + 1;
    const char *cron = kwargs + strlen(kwargs) + 1;
    if (!e->enabled)
        tq_log(level, "schedule '%s' %s: disabled", nm, what);
    else if (e->rule.kind == TQ_SCHED_CRON)
        tq_log(level, "schedule '%s' %s: task %s on cron '%s' in %s on queue %s", nm,
               what, task, cron, tq_tz_name(e->rule.zone), queue);
    else
        tq_log(level, "schedule '%s' %s: task %s every %lld ms on queue %s", nm, what,
               task, (long long)e->rule.every_ms, queue);
}

/* ------------------------------------------------------------------------
 * The next-due heap: a binary min-heap of entry pointers on (due, name),
 * where due is the next tick, or later while a bad key holds that tick
 * back (see publish_due()). */

static int64_t due_at(const struct entry *e)
{
    return e->retry > e->next ? e->retry : e->next;
}

static int due_before(const struct entry *a, const struct entry *b)
{
    int64_t da = due_at(a), db = due_at(b);
    if (da != db)
        return da < db;
    return name_cmp(a->str, a->namelen, b->str, b->namelen) < 0;
}

static void heap_put(beat *b, size_t i, struct entry *e)
{
    b->heap[i] = e;
    e->hpos = (uint32_t)i;
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

static void heap_sift_up(beat *b, size_t i)
{
    struct entry *e = b->heap[i];
    while (i > 0 && due_before(e, b->heap[(i - 1) / 2])) {
        heap_put(b, i, b->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_put(b, i, e);
}

/* Restores the order around e, in the heap, after its key changed. */
static void heap_fix(beat *b, struct entry *e)
{
    heap_sift_up(b, e->hpos);
    heap_sift_down(b, e->hpos);
}

/* Adds e; the caller has made room (capheap). */
static void heap_push(beat *b, struct entry *e)
{
    heap_put(b, b->nheap++, e);
    heap_sift_up(b, e->hpos);
}

static void heap_remove(beat *b, struct entry *e)
{
    size_t i = e->hpos;
    struct entry *last = b->heap[--b->nheap];
    e->hpos = NOT_IN_HEAP;
    if (i < b->nheap) {
        heap_put(b, i, last);
        heap_fix(b, last);
    }
}

/* Restores the heap order after any number of keys changed. O(n). */
static void heap_build(beat *b)
{
    for (size_t i = b->nheap / 2; i-- > 0;)
        heap_sift_down(b, i);
}

/* ------------------------------------------------------------------------
 * Ticks: the first one an entry publishes, and the catch-up rule. */

/* The next tick of e from what is known: the tick after the last one
 * published; for a definition known since this beat's first load with
 * nothing published yet, the first tick at or after now (a new schedule
 * waits for its next tick rather than publishing one from the past); for a
 * definition added, changed or re-enabled while running, never a tick from
 * before it appeared (the ticks of a new grid before the change, or of a
 * disabled period, were never due). The catch-up rule then decides, at
 * publish time, what happens to ticks that are overdue. */
static int64_t first_tick(const struct entry *e, int64_t now_ms)
{
    int64_t after = e->last != NO_TICK ? tq_sched_rule_next(&e->rule, e->last) : NO_TICK;
    if (e->since == SINCE_START)
        return after != NO_TICK ? after : tq_sched_rule_next(&e->rule, now_ms - 1);
    int64_t first = tq_sched_rule_next(&e->rule, e->since - 1);
    return after != NO_TICK && after > first ? after : first;
}

/* The number of ticks of r in [from_ms, to_ms], counting at most cap. */
static int64_t count_ticks(const tq_sched_rule *r, int64_t from_ms, int64_t to_ms,
                           int64_t cap)
{
    if (from_ms > to_ms)
        return 0;
    if (r->kind == TQ_SCHED_EVERY) {
        int64_t n = (tq_sched_rule_prev(r, to_ms) - from_ms) / r->every_ms + 1;
        return n < cap ? n : cap;
    }
    int64_t n = 0;
    for (int64_t t = from_ms; t <= to_ms && n < cap; t = tq_sched_rule_next(r, t))
        n++;
    return n;
}

/* Failover gaps (see beat.h): a tick at most the lease plus a second late
 * was merely delayed while a standby waited for the dead leader's lease,
 * so each is published, in order. A later tick was due while no beat ran,
 * and the schedule's policy decides: Celery's behaviour (the latest only)
 * by default, because flooding the queues with stale ticks is usually worse
 * than skipping them. */
int64_t beat_catch_up(const tq_sched_rule *r, tq_sched_catchup policy, int catchup_max,
                      int64_t next_ms, int64_t now_ms, int64_t lease_ms)
{
    if (next_ms > now_ms || next_ms > now_ms - (lease_ms + BEAT_GAP_SLACK_MS))
        return next_ms;
    if (policy == TQ_SCHED_CATCHUP_NONE)
        return tq_sched_rule_next(r, now_ms);
    if (policy != TQ_SCHED_CATCHUP_ALL || catchup_max < 1)
        return tq_sched_rule_prev(r, now_ms);
    if (count_ticks(r, next_ms, now_ms, (int64_t)catchup_max + 1) <= catchup_max)
        return next_ms;
    int64_t t = tq_sched_rule_prev(r, now_ms);
    if (r->kind == TQ_SCHED_EVERY)
        return t - (int64_t)(catchup_max - 1) * r->every_ms;
    for (int i = 1; i < catchup_max; i++)
        t = tq_sched_rule_prev(r, t - 1);
    return t;
}

/* Logs, once per catch-up, what the rule did to e's overdue ticks (t is
 * the tick it chose), and counts it for the pass's summary: the first
 * BEAT_CATCHUP_LOGS schedules of a pass at info level, the others at debug
 * level, so that a million schedules after an outage are one line. */
static void log_catch_up(beat *b, struct entry *e, int64_t t, int64_t now_ms)
{
    char nm[SHOWN_MAX];
    int64_t late = now_ms - e->next;
    if (late <= b->lease_ms + BEAT_GAP_SLACK_MS) {
        e->catching_up = 0;
        return;
    }
    if (e->catching_up)
        return;
    e->catching_up = 1;
    int64_t skipped = t > now_ms ? count_ticks(&e->rule, e->next, now_ms, COUNT_CAP)
                                 : count_ticks(&e->rule, e->next, t - 1, COUNT_CAP);
    b->pass_caught_up++;
    b->pass_skipped += skipped;
    tq_log_level level =
        b->pass_caught_up <= BEAT_CATCHUP_LOGS ? TQ_LOG_INFO : TQ_LOG_DEBUG;
    if (level < tq_log_min)
        return;
    shown(e->str, e->namelen, nm, sizeof nm);
    const char *more = skipped == COUNT_CAP ? "at least " : "";
    if (e->catchup == TQ_SCHED_CATCHUP_NONE)
        tq_log(level,
               "schedule '%s': no beat ran for %lld ms; skipping %s%lld missed ticks "
               "(catchup none); the next is %s@%lld",
               nm, (long long)late, more, (long long)skipped, nm, (long long)t);
    else if (e->catchup == TQ_SCHED_CATCHUP_ALL && t == e->next)
        tq_log(level,
               "schedule '%s': no beat ran for %lld ms; publishing all %lld missed ticks "
               "(catchup all)",
               nm, (long long)late,
               (long long)count_ticks(&e->rule, e->next, now_ms, COUNT_CAP));
    else if (e->catchup == TQ_SCHED_CATCHUP_ALL)
        tq_log(level,
               "schedule '%s': no beat ran for %lld ms; skipping %s%lld missed ticks "
               "and publishing the last %d (catchup all, --catchup-max)",
               nm, (long long)late, more, (long long)skipped, b->catchup_max);
    else
        tq_log(level,
               "schedule '%s': no beat ran for %lld ms; skipping %s%lld missed ticks "
               "and publishing only the latest, %s@%lld",
               nm, (long long)late, more, (long long)skipped, nm, (long long)t);
}

/* ------------------------------------------------------------------------
 * Reload. P:schedules is the source of truth. Every BEAT_CHECK_MS a beat
 * asks whether it changed: WATCH on the hash, and an empty MULTI/EXEC that
 * Redis aborts if anyone wrote the hash since (CLIENT ID tells a new
 * connection, whose WATCH is gone, from the old one). Only then it reads
 * the hash again, with HSCAN in slices between its ticks, and compares each
 * definition's hash with the one it knows. When the scan ends, the added,
 * changed and removed definitions take effect at once. Where WATCH is not
 * allowed (an ACL), every check reloads. */

static void reload_discard(beat *b)
{
    for (size_t i = 0; i < b->nadded; i++)
        free(b->added[i]);
    for (size_t i = 0; i < b->nchanged; i++)
        free(b->changed[i].e);
    b->nadded = b->nchanged = 0;
    b->reloading = 0;
}

static void reload_start(beat *b, int64_t now_ms)
{
    reload_discard(b);
    b->reloading = 1;
    b->reload_again = 0;
    b->gen++;
    b->nseen = 0;
    b->nscanned = 0;
    b->reload_ms = now_ms;
    b->reload_mono = tq_clock_mono_ms();
    snprintf(b->cursor, sizeof b->cursor, "0");
}

/* Asks for huge pages under a big array that is read at random (the
 * slots, the index, the heap): with a million schedules, TLB misses would
 * otherwise cost more than the cache misses. Advice only. */
static void huge_pages(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t page = 4096;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1),
              z = ((uintptr_t)p + len) & ~(page - 1);
    if (len >= ((size_t)4 << 20) && z > a)
        madvise((void *)a, z - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * size);
    if (!p)
        return TQ_ENOMEM;
    huge_pages(p, n * size);
    *arr = p;
    *cap = n;
    return 0;
}

/* The index of the first of the entries [0, n) that does not sort before
 * (h, name), by bisection (for inserting). */
static size_t lower_bound(const beat *b, size_t n, uint64_t h, const char *name,
                          size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->slots[mid].name < h ||
            (b->slots[mid].name == h &&
             name_cmp(b->ents[mid]->str, b->ents[mid]->namelen, name, len) < 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Rebuilds the prefix table after entries were added or removed: about
 * eight entries per prefix. O(n), sequential. Returns 0 or TQ_ENOMEM. */
static int index_build(beat *b)
{
    int bits = 8;
    while (bits < 24 && ((size_t)8 << bits) < b->nents)
        bits++;
    uint32_t *t = realloc(b->bucket, (((size_t)1 << bits) + 1) * sizeof *t);
    if (!t) {
        free(b->bucket); /* find_pos() bisects without it */
        b->bucket = NULL;
        return TQ_ENOMEM;
    }
    huge_pages(t, (((size_t)1 << bits) + 1) * sizeof *t);
    b->bucket = t;
    b->bucket_bits = bits;
    size_t i = 0;
    for (size_t j = 0; j < (size_t)1 << bits; j++) {
        while (i < b->nents && (b->slots[i].name >> (64 - bits)) < j)
            i++;
        t[j] = (uint32_t)i;
    }
    t[(size_t)1 << bits] = (uint32_t)b->nents;
    return 0;
}

/* The index of the entry called name (whose text_hash() is h), or
 * SIZE_MAX. With def (the hash of a definition's text, or 0), a slot whose
 * name and definition hashes both match is taken without reading the
 * entry: the text holds the name, so that is the same name and the same
 * definition (but for a 128-bit collision). */
static size_t find_pos(const beat *b, const char *name, size_t len, uint64_t h,
                       uint64_t def)
{
    size_t i, end;
    if (b->bucket) {
        size_t j = h >> (64 - b->bucket_bits);
        i = b->bucket[j];
        end = b->bucket[j + 1];
    } else {
        i = lower_bound(b, b->nents, h, name, len);
        end = b->nents;
    }
    while (i < end && b->slots[i].name < h)
        i++;
    for (; i < end && b->slots[i].name == h; i++)
        if ((def && b->slots[i].def == def) ||
            name_cmp(b->ents[i]->str, b->ents[i]->namelen, name, len) == 0)
            return i;
    return SIZE_MAX;
}

/* Takes note of one field of the scan, whose name hashes to nh and whose
 * text to h. Returns 0 or TQ_ENOMEM. */
static int reload_field(beat *b, const redisReply *name, const redisReply *value,
                        uint64_t nh, uint64_t h)
{
    size_t pos = find_pos(b, name->str, name->len, nh, h);
    struct slot *sl = pos == SIZE_MAX ? NULL : &b->slots[pos];
    if (sl && sl->seen != b->gen && sl->def == h) { /* unchanged, first sighting */
        sl->seen = b->gen;
        b->nseen++;
        return 0;
    }
    struct entry *old = sl ? b->ents[pos] : NULL;
    struct change *ch = NULL;
    if (old && sl->seen != b->gen) { /* changed, first sighting */
        sl->seen = b->gen;
        b->nseen++;
    } else if (old) {
        /* HSCAN may return a field twice: the latest text counts. */
        for (size_t i = 0; i < b->nchanged && !ch; i++)
            if (b->changed[i].old == old)
                ch = &b->changed[i];
        if (ch ? ch->e->hash == h : old->hash == h)
            return 0;
    }
    struct entry *e = entry_new(b, name->str, name->len, value->str, value->len);
    if (!e)
        return TQ_ENOMEM;
    if (ch) {
        free(ch->e);
        ch->e = e;
    } else if (old) {
        if (grow((void **)&b->changed, &b->capchanged, b->nchanged + 1,
                 sizeof *b->changed) < 0) {
            free(e);
            return TQ_ENOMEM;
        }
        b->changed[b->nchanged++] = (struct change){old, e};
    } else {
        if (grow((void **)&b->added, &b->capadded, b->nadded + 1, sizeof *b->added) < 0) {
            free(e);
            return TQ_ENOMEM;
        }
        b->added[b->nadded++] = e; /* a duplicate is dropped when applied */
    }
    return 0;
}

/* Notes that the leader must read e's state before publishing it. A
 * standby reads every state when it becomes the leader instead. */
static void pending_add(beat *b, struct entry *e)
{
    if (!b->leader || b->sync_all)
        return;
    if (grow((void **)&b->pending, &b->cappending, b->npending + 1, sizeof *b->pending) <
        0) {
        b->sync_all = 1; /* read them all, then */
        b->npending = 0;
        return;
    }
    b->pending[b->npending++] = e;
}

/* Makes room for n entries in ents, slots and the heap. */
static int reserve(beat *b, size_t n)
{
    size_t cap = b->capents;
    if (grow((void **)&b->ents, &b->capents, n, sizeof *b->ents) < 0)
        return TQ_ENOMEM;
    if (b->capents != cap) {
        struct slot *slots = realloc(b->slots, b->capents * sizeof *slots);
        if (!slots) {
            b->capents = cap; /* the larger ents block is harmless */
            return TQ_ENOMEM;
        }
        huge_pages(slots, b->capents * sizeof *slots);
        b->slots = slots;
    }
    return grow((void **)&b->heap, &b->capheap, n, sizeof *b->heap);
}

/* Ends a reload: replaces what changed, removes what the scan did not see,
 * inserts what was added, and updates the heap for those only, so that a
 * small edit among a million schedules costs little more than the scan. */
static int reload_apply(beat *b, int64_t now_ms)
{
    char nm[SHOWN_MAX];
    size_t before = b->nents, nchanged = b->nchanged;
    /* Entries waiting for their state may be freed below: read all, then. */
    if (b->npending) {
        b->npending = 0;
        b->sync_all = 1;
    }
    /* Added: sorted, and a field seen twice counts once (the last text).
     * (b->added is NULL while nothing was ever added: qsort must not see
     * it, even with a count of 0.) */
    if (b->nadded > 1)
        qsort(b->added, b->nadded, sizeof *b->added, entry_cmp);
    size_t na = 0;
    for (size_t i = 0; i < b->nadded; i++) {
        if (na && entry_cmp(&b->added[na - 1], &b->added[i]) == 0) {
            free(b->added[na - 1]);
            na--;
        }
        b->added[na++] = b->added[i];
    }
    b->nadded = na;
    if (reserve(b, b->nents + na + 1) < 0)
        return TQ_ENOMEM;

    /* Changed: the new version takes the old one's place (same name). */
    for (size_t i = 0; i < b->nchanged; i++) {
        struct entry *old = b->changed[i].old, *e = b->changed[i].e;
        size_t pos = find_pos(b, old->str, old->namelen, old->namehash, 0);
        b->ents[pos] = e;
        b->slots[pos].def = e->hash;
        e->last = old->last;
        e->since = b->reload_ms;
        log_entry(b, e, "updated");
        int live = e->ok && e->enabled;
        if (live)
            e->next = first_tick(e, now_ms);
        if (old->hpos != NOT_IN_HEAP && live) {
            heap_put(b, old->hpos, e);
            heap_fix(b, e);
        } else if (old->hpos != NOT_IN_HEAP) {
            heap_remove(b, old);
        } else if (live) {
            heap_push(b, e);
        }
        if (live)
            pending_add(b, e);
        free(old);
    }
    b->nchanged = 0;

    /* Removed: not seen by the scan. Only then is every entry visited. */
    if (b->nseen < before) {
        size_t n = 0;
        for (size_t i = 0; i < b->nents; i++) {
            struct entry *o = b->ents[i];
            if (b->slots[i].seen == b->gen) {
                b->ents[n] = o;
                b->slots[n++] = b->slots[i];
                continue;
            }
            tq_info("schedule '%s' removed", shown(o->str, o->namelen, nm, sizeof nm));
            if (o->hpos != NOT_IN_HEAP)
                heap_remove(b, o);
            free(o);
        }
        b->nents = n;
    }

    /* Added: inserted by name, from the last one down, each found by
     * bisection and the entries after it moved up in one block. */
    size_t end = b->nents, k = b->nents + na;
    for (size_t j = na; j-- > 0;) {
        struct entry *a = b->added[j];
        size_t p = lower_bound(b, end, a->namehash, a->str, a->namelen), len = end - p;
        k -= len;
        memmove(&b->ents[k], &b->ents[p], len * sizeof *b->ents);
        memmove(&b->slots[k], &b->slots[p], len * sizeof *b->slots);
        b->ents[--k] = a;
        b->slots[k] = (struct slot){a->namehash, a->hash, b->gen};
        end = p;
        a->since = b->loaded ? b->reload_ms : SINCE_START;
        log_entry(b, a, "added");
        if (a->ok && a->enabled) {
            a->next = first_tick(a, now_ms);
            if (na > 1024) /* many: one heap_build below */
                heap_put(b, b->nheap++, a);
            else
                heap_push(b, a);
            pending_add(b, a);
        }
    }
    b->nents += na;
    if (na > 1024)
        heap_build(b);
    if ((na || b->nents != before) && index_build(b) < 0)
        tq_warn(
            "reload: out of memory for the name index; looking names up by bisection");
    b->nadded = 0;
    b->reloading = 0;
    if (!b->loaded) {
        size_t bad = 0, enabled = b->nheap;
        for (size_t i = 0; i < b->nents; i++)
            bad += !b->ents[i]->ok;
        tq_info("loaded %zu schedules from %s: %zu enabled, %zu disabled, %zu bad",
                b->nents, b->key_schedules, enabled, b->nents - enabled - bad, bad);
    }
    b->loaded = 1;
    int64_t took = tq_clock_mono_ms() - b->reload_mono;
    tq_log(took >= 1000 ? TQ_LOG_INFO : TQ_LOG_DEBUG,
           "reloaded %s in %lld ms: %zu fields read, %zu added, %zu changed, %zu removed",
           b->key_schedules, (long long)took, b->nscanned, na, nchanged,
           before + na - b->nents);
    return 0;
}

/* Scans P:schedules until the monotonic time deadline (one HSCAN at
 * least). Returns 0 or a negative TQ_E... code (the reload then starts
 * over at the next check). */
static int reload_step(beat *b, int64_t now_ms, int64_t deadline)
{
    char count[16];
    snprintf(count, sizeof count, "%d", BEAT_SCAN_COUNT);
    do {
        const char *argv[] = {"HSCAN", b->key_schedules, b->cursor, "COUNT", count};
        redisReply *r = tq_conn_cmdargv(b->conn, 5, argv, NULL);
        if (!r)
            return TQ_EREDIS;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[0]->len >= sizeof b->cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2) {
            if (!b->reload_err)
                tq_warn("cannot read %s (%s); keeping the schedules known so far",
                        b->key_schedules,
                        r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            b->reload_err = 1;
            freeReplyObject(r);
            reload_discard(b);
            return 0;
        }
        if (b->reload_err)
            tq_info("%s is readable again", b->key_schedules);
        b->reload_err = 0;
        const redisReply *kv = r->element[1];
        size_t nf = kv->elements / 2;
        for (size_t i = 0; i < nf; i++)
            if (kv->element[2 * i]->type != REDIS_REPLY_STRING ||
                kv->element[2 * i + 1]->type != REDIS_REPLY_STRING)
                nf = 0; /* not what HSCAN of a hash gives: read none */
        if (grow((void **)&b->hashes, &b->caphashes, 2 * nf, sizeof *b->hashes) < 0) {
            freeReplyObject(r);
            reload_discard(b);
            tq_error("reload: out of memory; trying again at the next check");
            return TQ_ENOMEM;
        }
        /* Hash every field first, then look them up with the slots
         * prefetched a few fields ahead: the lookups' cache misses then
         * overlap instead of coming one after the other. */
        for (size_t i = 0; i < nf; i++) {
            const redisReply *name = kv->element[2 * i], *value = kv->element[2 * i + 1];
            b->hashes[2 * i] = text_hash(name->str, name->len);
            b->hashes[2 * i + 1] = text_hash(value->str, value->len);
        }
        for (size_t i = 0; i < nf; i++) {
            if (b->bucket && i + 16 < nf)
                __builtin_prefetch(
                    &b->bucket[b->hashes[2 * (i + 16)] >> (64 - b->bucket_bits)]);
            if (b->bucket && i + 8 < nf)
                __builtin_prefetch(&b->slots[b->bucket[b->hashes[2 * (i + 8)] >>
                                                       (64 - b->bucket_bits)]]);
            b->nscanned++;
            if (reload_field(b, kv->element[2 * i], kv->element[2 * i + 1],
                             b->hashes[2 * i], b->hashes[2 * i + 1]) < 0) {
                freeReplyObject(r);
                reload_discard(b);
                tq_error("reload: out of memory; trying again at the next check");
                return TQ_ENOMEM;
            }
        }
        memcpy(b->cursor, r->element[0]->str, r->element[0]->len);
        b->cursor[r->element[0]->len] = '\0';
        freeReplyObject(r);
        if (strcmp(b->cursor, "0") == 0) {
            int rc = reload_apply(b, now_ms);
            if (rc < 0) {
                reload_discard(b);
                tq_error("reload: out of memory; trying again at the next check");
                return rc;
            }
            if (b->reload_again)
                reload_start(b, now_ms);
            return 0;
        }
    } while (tq_clock_mono_ms() < deadline);
    return 0;
}

/* Asks whether P:schedules changed since the last check, and starts a
 * reload if it did (or if that cannot be known). Returns 0 or a negative
 * TQ_E... code. */
static int check_changes(beat *b, int64_t now_ms)
{
    const char *client_id[] = {"CLIENT", "ID"};
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *watch[] = {"WATCH", b->key_schedules};
    if (tq_conn_append(b->conn, 2, client_id, NULL) < 0 ||
        tq_conn_append(b->conn, 1, multi, NULL) < 0 ||
        tq_conn_append(b->conn, 1, exec, NULL) < 0 ||
        tq_conn_append(b->conn, 2, watch, NULL) < 0)
        return TQ_EREDIS;
    redisReply *r[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++)
        if (!(r[i] = tq_conn_reply(b->conn))) {
            for (int k = 0; k < i; k++)
                freeReplyObject(r[k]);
            return TQ_EREDIS;
        }
    long long id = r[0]->type == REDIS_REPLY_INTEGER ? r[0]->integer : -1;
    int watched =
        id >= 0 && r[1]->type == REDIS_REPLY_STATUS && r[3]->type == REDIS_REPLY_STATUS;
    int new_conn = id >= 0 && id != b->client_id;
    int changed = !watched || new_conn || r[2]->type != REDIS_REPLY_ARRAY;
    if (!watched && !b->watch_warned) {
        const redisReply *e = r[0]->type == REDIS_REPLY_ERROR   ? r[0]
                              : r[1]->type == REDIS_REPLY_ERROR ? r[1]
                                                                : r[3];
        tq_warn("cannot watch %s for changes (%s); reloading it every %d ms instead",
                b->key_schedules,
                e->type == REDIS_REPLY_ERROR ? e->str : "unexpected reply",
                BEAT_CHECK_MS);
        b->watch_warned = 1;
    }
    if (new_conn && b->client_id >= 0 && b->leader)
        b->sync_all = 1; /* a new connection: Redis may have restarted */
    b->client_id = id;
    for (int i = 0; i < 4; i++)
        freeReplyObject(r[i]);
    /* A scan under way goes on (its cursor stays valid), and another one
     * follows it, so that every change is seen. */
    if (changed && b->reloading)
        b->reload_again = 1;
    else if (changed)
        reload_start(b, now_ms);
    return 0;
}

/* ------------------------------------------------------------------------
 * Reading P:schedule-state: what has been published, by this beat or
 * another. A beat reads it for every schedule when it becomes the leader
 * (or its connection is new), and for a definition that appeared or
 * changed; after that, as the leader, it knows the state, because only it
 * writes there. HMGETs of BEAT_SYNC_CHUNK names, SYNC_PIPELINE at a time. */

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
    if (t > STATE_TICK_MAX)
        return TQ_EINVAL;
    *out = t;
    return 0;
}

/* Notes whether e's state value is not a tick (bad), logging the change:
 * such a schedule publishes nothing, because what it published is not
 * known, until the value is a tick again or is deleted. */
static void state_bad(beat *b, struct entry *e, int bad, const redisReply *v)
{
    char nm[SHOWN_MAX], val[SHOWN_MAX];
    if (bad && !e->held)
        tq_error("%s field '%s' is '%s', not a tick (ms): schedule '%s' publishes "
                 "nothing until it is a tick again or deleted (HDEL)",
                 b->key_state, shown(e->str, e->namelen, nm, sizeof nm),
                 v && v->type == REDIS_REPLY_STRING
                     ? shown(v->str, v->len, val, sizeof val)
                     : "?",
                 nm);
    else if (!bad && e->held)
        tq_info("%s field '%s' is a tick again: schedule '%s' publishes again",
                b->key_state, shown(e->str, e->namelen, nm, sizeof nm), nm);
    e->held = bad ? HELD_STATE : 0;
}

static int sync_state(beat *b, int64_t now_ms)
{
    if (!b->sync_all && !b->npending)
        return 0;
    int all = b->sync_all, rc = 0;
    size_t n = all ? 0 : b->npending;
    int64_t t0 = tq_clock_mono_ms();
    struct entry **todo = all ? malloc((b->nents + 1) * sizeof *todo) : b->pending;
    const char **argv = malloc((BEAT_SYNC_CHUNK + 2) * SYNC_PIPELINE * sizeof *argv);
    size_t *lens = malloc((BEAT_SYNC_CHUNK + 2) * SYNC_PIPELINE * sizeof *lens);
    if (!todo || !argv || !lens) {
        rc = TQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; all && i < b->nents; i++)
        if (b->ents[i]->ok && b->ents[i]->enabled)
            todo[n++] = b->ents[i];
    for (size_t done = 0; done < n && rc == 0;) {
        /* Send up to SYNC_PIPELINE chunks, then read their replies. */
        size_t sent = 0, start = done;
        for (; sent < SYNC_PIPELINE && done < n; sent++) {
            const char **a = argv + sent * (BEAT_SYNC_CHUNK + 2);
            size_t *l = lens + sent * (BEAT_SYNC_CHUNK + 2), c = 0;
            a[0] = "HMGET";
            l[0] = 5;
            a[1] = b->key_state;
            l[1] = strlen(b->key_state);
            for (; c < BEAT_SYNC_CHUNK && done < n; c++, done++) {
                a[2 + c] = todo[done]->str;
                l[2 + c] = todo[done]->namelen;
            }
            if (tq_conn_append(b->conn, (int)(c + 2), a, l) < 0) {
                rc = TQ_EREDIS;
                break;
            }
        }
        for (size_t k = 0, at = start; k < sent; k++) {
            redisReply *r = tq_conn_reply(b->conn);
            if (!r) {
                rc = TQ_EREDIS;
                break;
            }
            if (r->type != REDIS_REPLY_ARRAY) {
                if (!b->state_failing)
                    tq_error("cannot read %s (%s): no tick is published until it is a "
                             "hash again or deleted",
                             b->key_state,
                             r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
                b->state_failing = 1;
                rc = rc ? rc : TQ_EREPLY;
            }
            for (size_t x = 0; r->type == REDIS_REPLY_ARRAY && x < r->elements; x++) {
                struct entry *e = todo[at + x];
                int64_t t;
                int prc = parse_tick(r->element[x], &t);
                state_bad(b, e, prc == TQ_EINVAL, r->element[x]);
                if (prc == 0 && (e->last == NO_TICK || t > e->last))
                    e->last = t;
            }
            at += r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
            freeReplyObject(r);
        }
    }
    if (rc == 0) {
        if (b->state_failing)
            tq_info("%s is readable again", b->key_state);
        b->state_failing = 0;
        for (size_t i = 0; i < n; i++) {
            /* A bad value tells nothing: what is known stays. */
            if (todo[i]->held && todo[i]->next != NO_TICK)
                continue;
            todo[i]->next = first_tick(todo[i], now_ms);
            if (!all && todo[i]->hpos != NOT_IN_HEAP)
                heap_fix(b, todo[i]);
        }
        if (all)
            heap_build(b);
        b->sync_all = 0;
        b->npending = 0;
        tq_log(n >= 10000 ? TQ_LOG_INFO : TQ_LOG_DEBUG,
               "read %s for %zu schedules in %lld ms", b->key_state, n,
               (long long)(tq_clock_mono_ms() - t0));
    } else {
        b->sync_all = 1; /* start over next time */
        b->npending = 0;
    }
out:
    if (rc == TQ_ENOMEM) {
        tq_error("reading %s: out of memory", b->key_state);
        b->sync_all = 1;
        b->npending = 0;
    }
    if (all)
        free(todo);
    free(argv);
    free(lens);
    return rc;
}

/* ------------------------------------------------------------------------
 * Housekeeping: seed and lease. */

/* The file's schedules are in Redis (or will never be): frees the seed. */
static void seed_done(beat *b)
{
    for (size_t i = 0; i < b->nseed; i++)
        tq_sched_deinit(&b->seed[i]);
    free(b->seed);
    b->seed = NULL;
    b->nseed = 0;
    b->seeded = 1;
}

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
        if (!b->seed_failing)
            tq_error("could not upsert the schedules into %s: %s; trying again every "
                     "second, and taking no lease until then",
                     b->key_schedules, r->str);
        b->seed_failing = 1;
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
        tq_info("upserted %zu schedules from %s into %s", b->nseed, b->file,
                b->key_schedules);
        seed_done(b);
    }
    return rc;
}

static void set_leader(beat *b, int leader, const char *why)
{
    if (leader && !b->leader) {
        tq_info("leader: beat %s holds %s and publishes", b->id, b->key_leader);
        b->sync_all = 1; /* another beat may have published meanwhile */
    } else if (!leader && b->leader) {
        tq_info("lost leadership: %s", why);
    } else if (!leader && !b->role_known) {
        tq_info("standby: another beat holds %s", b->key_leader);
    }
    b->leader = leader;
    b->role_known = 1;
}

/* Seeds (until that succeeds), takes or renews the lease, and sets the time
 * of the next renewal: the period, or sooner for a standby when the current
 * lease runs out first, so that failover waits for the lease only. Returns
 * 0 or a negative TQ_E... code. */
static int lease(beat *b)
{
    int rc;
    if (!b->seeded && (rc = seed(b)) < 0)
        return rc;
    rc = tq_lock_acquire(b->conn, b->key_leader, b->id, b->lease_ms);
    if (rc < 0) {
        if (rc != TQ_EREDIS && !b->lease_failing) {
            redisReply *t = tq_conn_cmd(b->conn, "TYPE %s", b->key_leader);
            if (t && t->type == REDIS_REPLY_STATUS && strcmp(t->str, "string") != 0 &&
                strcmp(t->str, "none") != 0)
                tq_error("cannot take the lease %s: it is a %s, not a string; no beat "
                         "publishes until it is deleted",
                         b->key_leader, t->str);
            else
                tq_error("cannot take the lease %s: %s; trying again every second",
                         b->key_leader, tq_strerror(rc));
            freeReplyObject(t);
            b->lease_failing = 1;
        }
        return rc;
    }
    if (b->lease_failing)
        tq_info("%s is usable again", b->key_leader);
    b->lease_failing = 0;
    set_leader(b, rc == 1, "another beat holds the lease");
    int64_t mono = tq_clock_mono_ms();
    b->lease_due_mono = mono + b->period_ms;
    if (!b->leader) {
        redisReply *ttl = tq_conn_cmd(b->conn, "PTTL %s", b->key_leader);
        if (!ttl)
            return TQ_EREDIS;
        if (ttl->type == REDIS_REPLY_INTEGER) {
            /* -2: the lease is gone already; -1: no TTL (set by hand) */
            int64_t wait = ttl->integer == -2  ? 10
                           : ttl->integer >= 0 ? ttl->integer + 1
                                               : -1;
            if (ttl->integer == -1 && !b->lease_no_ttl)
                tq_warn("%s is held by another owner and never expires (set by hand?): "
                        "this beat stays a standby until it is deleted",
                        b->key_leader);
            b->lease_no_ttl = ttl->integer == -1;
            if (wait >= 0 && mono + wait < b->lease_due_mono)
                b->lease_due_mono = mono + wait;
        }
        freeReplyObject(ttl);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Publishing. Due ticks are popped from the heap in (tick, name) order,
 * encoded, and sent BEAT_SCRIPT_TICKS to a script call, all calls of a pass
 * pipelined: one round trip. A tick whose script did not succeed goes back
 * to its entry, to be retried next time. */

/* Stores the reply of a script call in its recs' rc, and logs when the
 * script starts or stops failing as a whole (a key of the wrong type: once,
 * not once a pass). reply may be NULL (the connection broke). */
static void batch_result(beat *b, size_t from, size_t to, const redisReply *reply)
{
    int ok = reply && reply->type == REDIS_REPLY_ARRAY &&
             reply->elements == to - from + 1 &&
             reply->element[to - from]->type == REDIS_REPLY_INTEGER;
    for (size_t i = from; i < to; i++) {
        struct rec *r = &b->recs[i];
        if (!reply)
            r->rc = TQ_EREDIS;
        else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == -1)
            r->rc = -1;
        else if (ok && reply->element[i - from]->type == REDIS_REPLY_INTEGER)
            r->rc = (int)reply->element[i - from]->integer;
        else
            r->rc = TQ_EREPLY;
    }
    if (reply && b->recs[from].rc == TQ_EREPLY && !b->publish_failing) {
        tq_error("publishing failed: %s; the ticks wait until that is fixed",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        b->publish_failing = 1;
    } else if (ok && b->publish_failing) {
        tq_info("publishing works again");
        b->publish_failing = 0;
    }
    if (ok) {
        int uncounted = reply->element[to - from]->integer != 0;
        if (uncounted && !b->stats_failing)
            tq_error("%s is not a hash: published ticks are not counted in it until "
                     "it is a hash again or deleted",
                     b->key_stats);
        else if (!uncounted && b->stats_failing)
            tq_info("%s is a hash again: published ticks are counted", b->key_stats);
        b->stats_failing = uncounted;
    }
}

/* The key of e's queue, into buf (TQ_KEYS_MAX bytes). */
static const char *queue_key(const beat *b, const struct entry *e, char *buf)
{
    tq_keys_fmt(b->prefix, TQ_KEY_QUEUE, entry_queue(e), buf, TQ_KEYS_MAX);
    return buf;
}

/* Notes that e's queue key is not a list (the publish script skipped its
 * tick): logged once per key, naming its type. */
static void queue_bad(beat *b, const struct entry *e)
{
    char key[TQ_KEYS_MAX], nm[SHOWN_MAX];
    queue_key(b, e, key);
    for (int i = 0; i < b->nbadq; i++)
        if (strcmp(b->badq[i], key) == 0)
            return;
    if (b->nbadq == BADQ_MAX) { /* more than that: the first ones tell */
        tq_debug("queue key %s is not a list", key);
        return;
    }
    snprintf(b->badq[b->nbadq++], TQ_KEYS_MAX, "%s", key);
    redisReply *t = tq_conn_cmd(b->conn, "TYPE %s", key);
    tq_error("queue key %s is a %s, not a list: the ticks of schedule '%s' and of any "
             "other on that queue wait until it is a list again or deleted",
             key, t && t->type == REDIS_REPLY_STATUS ? t->str : "key of another type",
             shown(e->str, e->namelen, nm, sizeof nm));
    freeReplyObject(t);
}

/* Notes that a tick of e went through: its queue key is fine again. */
static void queue_ok(beat *b, const struct entry *e)
{
    char key[TQ_KEYS_MAX];
    if (!b->nbadq)
        return;
    queue_key(b, e, key);
    for (int i = 0; i < b->nbadq; i++)
        if (strcmp(b->badq[i], key) == 0) {
            tq_info("queue key %s is a list again: its ticks are published", key);
            memmove(b->badq[i], b->badq[b->nbadq - 1], TQ_KEYS_MAX);
            b->nbadq--;
            return;
        }
}

/* Sends the script for recs[from, to): pipelined (eval 0), or at once with
 * NOSCRIPT handling (eval 1; the reply is then read and stored). */
static int send_batch(beat *b, size_t from, size_t to, int eval)
{
    enum { QMAX = BEAT_SCRIPT_TICKS };
    const char *argv[3 + QMAX + 1 + 4 * BEAT_SCRIPT_TICKS];
    size_t lens[3 + QMAX + 1 + 4 * BEAT_SCRIPT_TICKS];
    /* Room for any int and any long long: gcc's -Wformat-truncation
     * cannot always bound the values. */
    char qkeys[QMAX][TQ_KEYS_MAX], ticks[BEAT_SCRIPT_TICKS][24], idx[QMAX][12];
    const char *qnames[QMAX];
    int nq = 0, na = 0;

    for (size_t i = from; i < to; i++) {
        const char *queue = entry_queue(b->recs[i].e);
        int q = 0;
        while (q < nq && strcmp(qnames[q], queue) != 0)
            q++;
        if (q == nq) {
            qnames[nq] = queue;
            tq_keys_fmt(b->prefix, TQ_KEY_QUEUE, queue, qkeys[nq], TQ_KEYS_MAX);
            snprintf(idx[nq], sizeof idx[nq], "%d", 4 + nq);
            nq++;
        }
    }
    int nkeys = 3 + nq;
    argv[0] = b->key_leader;
    argv[1] = b->key_state;
    argv[2] = b->key_stats;
    for (int q = 0; q < nq; q++)
        argv[3 + q] = qkeys[q];
    for (int k = 0; k < nkeys; k++)
        lens[k] = strlen(argv[k]);
    na = nkeys;
    argv[na] = b->id;
    lens[na++] = strlen(b->id);
    for (size_t i = from; i < to; i++) {
        struct rec *r = &b->recs[i];
        const char *queue = entry_queue(r->e);
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
        return tq_conn_append_eval(b->conn, &publish_script, nkeys, na - nkeys, argv,
                                   lens);
    redisReply *reply =
        tq_conn_eval(b->conn, &publish_script, nkeys, na - nkeys, argv, lens);
    batch_result(b, from, to, reply);
    freeReplyObject(reply);
    return reply ? 0 : TQ_EREDIS;
}

/* Publishes every tick due at now_ms, up to BEAT_PASS_MAX, as the leader.
 * Returns 0, or a negative TQ_E... code after a failure (the ticks not
 * published are due again). */
static int publish_due(beat *b, int64_t now_ms)
{
    size_t n = 0, sent = 0;
    int rc = 0;
    b->pass_caught_up = 0;
    b->pass_skipped = 0;
    while (b->nheap && due_at(b->heap[0]) <= now_ms && n < BEAT_PASS_MAX) {
        struct entry *e = b->heap[0];
        e->retry = 0;
        int64_t t = beat_catch_up(&e->rule, e->catchup, b->catchup_max, e->next, now_ms,
                                  b->lease_ms);
        log_catch_up(b, e, t, now_ms);
        if (t > now_ms) { /* catchup none: nothing to publish now */
            e->next = t;
            heap_sift_down(b, 0);
            continue;
        }
        struct rec *r = &b->recs[n];
        *r = (struct rec){e, t, NULL, 0, TQ_EREDIS};
        r->msg = entry_message(e, t, now_ms, &r->len);
        if (!r->msg) {
            rc = TQ_ENOMEM;
            break;
        }
        n++;
        e->next = tq_sched_rule_next(&e->rule, t);
        heap_sift_down(b, 0);
    }
    if (rc == TQ_ENOMEM)
        tq_error("publishing: out of memory");
    if (b->pass_caught_up > BEAT_CATCHUP_LOGS)
        tq_info("no beat ran for a while: %zu schedules caught up in this pass, skipping "
                "%lld "
                "missed ticks by their catchup policies",
                b->pass_caught_up, (long long)b->pass_skipped);

    /* Send the batches pipelined, read the replies, retry NOSCRIPT ones in
     * order (stopping at the first failure, so that a later tick never
     * lands before an earlier one of the same schedule). Batch k is
     * recs[k * BEAT_SCRIPT_TICKS, end(k)). */
    size_t nb = (n + BEAT_SCRIPT_TICKS - 1) / BEAT_SCRIPT_TICKS;
#define BATCH_END(k) ((k) + 1 < nb ? ((k) + 1) * BEAT_SCRIPT_TICKS : n)
    for (size_t k = 0; k < nb; k++, sent++)
        if (send_batch(b, k * BEAT_SCRIPT_TICKS, BATCH_END(k), 0) < 0)
            break;
    unsigned char noscript[BEAT_PASS_MAX / BEAT_SCRIPT_TICKS + 1] = {0};
    for (size_t k = 0; k < nb; k++) {
        redisReply *reply = k < sent ? tq_conn_reply(b->conn) : NULL;
        noscript[k] = (unsigned char)tq_conn_is_noscript(reply);
        if (!noscript[k])
            batch_result(b, k * BEAT_SCRIPT_TICKS, BATCH_END(k), reply);
        freeReplyObject(reply);
    }
    for (size_t k = 0, failed = 0; k < nb; k++) {
        if (noscript[k] && failed)
            batch_result(b, k * BEAT_SCRIPT_TICKS, BATCH_END(k), NULL);
        else if (noscript[k])
            send_batch(b, k * BEAT_SCRIPT_TICKS, BATCH_END(k), 1);
        if (b->recs[k * BEAT_SCRIPT_TICKS].rc < 0)
            failed = 1;
    }
#undef BATCH_END

    int rollback = 0, lost = 0;
    for (size_t i = 0; i < n; i++) {
        struct rec *r = &b->recs[i];
        struct entry *e = r->e;
        if (r->rc == 1 || r->rc == 0) {
            if (e->last == NO_TICK || r->tick > e->last)
                e->last = r->tick;
            tq_debug("%s %s@%lld", r->rc ? "published" : "already published", e->str,
                     (long long)r->tick);
            queue_ok(b, e);
            if (e->held)
                state_bad(b, e, 0, NULL);
        } else if (r->rc == HELD_QUEUE || r->rc == HELD_STATE) {
            /* A bad key of this schedule alone: its tick waits, unpublished,
             * and is tried again after RETRY_MS; the others go on. */
            if (e->next > r->tick)
                e->next = r->tick;
            e->retry = now_ms + RETRY_MS;
            rollback = 1;
            if (r->rc == HELD_QUEUE)
                queue_bad(b, e);
            else
                pending_add(b, e); /* read it: logged with its value */
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
        b->lease_due_mono = tq_clock_mono_ms(); /* find out who leads, now */
    }
    return rc;
}

/* ------------------------------------------------------------------------
 * The loop. */

/* After a Redis failure: pause the Redis work until a lease renewal
 * succeeds again, after the connection's backoff. */
static void redis_failed(beat *b, int rc)
{
    int64_t wait = rc == TQ_EREDIS ? tq_conn_backoff_ms(b->conn) : 1000;
    wait = wait < 10 ? 10 : wait > 1000 ? 1000 : wait;
    b->redis_ok = 0;
    b->lease_due_mono = tq_clock_mono_ms() + wait;
}

int64_t beat_step(beat *b, int64_t now_ms, int64_t mono_ms)
{
    int rc;
    if (mono_ms >= b->lease_due_mono) {
        rc = lease(b);
        b->redis_ok = rc == 0;
        if (rc < 0)
            redis_failed(b, rc);
    }
    if (b->redis_ok && mono_ms >= b->check_due_mono) {
        b->check_due_mono = mono_ms + BEAT_CHECK_MS;
        if ((rc = check_changes(b, now_ms)) < 0)
            redis_failed(b, rc);
    }
    if (b->redis_ok && b->leader && b->loaded && (rc = sync_state(b, now_ms)) < 0)
        redis_failed(b, rc);
    if (b->redis_ok && b->leader && b->loaded && (rc = publish_due(b, now_ms)) < 0)
        redis_failed(b, rc);
    if (b->redis_ok && b->reloading) {
        /* Scan until the next tick is due, and at most the budget. */
        int64_t mono = tq_clock_mono_ms(), deadline = mono + BEAT_SCAN_BUDGET_MS;
        if (b->leader && b->nheap && due_at(b->heap[0]) - now_ms < deadline - mono_ms)
            deadline = mono_ms + (due_at(b->heap[0]) - now_ms);
        if ((rc = reload_step(b, now_ms, deadline)) < 0)
            redis_failed(b, rc);
    }
    if (b->redis_ok && b->leader && mono_ms >= b->promote_due_mono) {
        rc = tq_delayed_promote(b->conn, b->prefix, now_ms, TQ_DELAYED_BATCH);
        b->promote_due_mono =
            rc == TQ_DELAYED_BATCH ? mono_ms : mono_ms + BEAT_PROMOTE_MS;
        if (rc > 0)
            tq_debug("promoted %d delayed messages", rc);
        else if (rc == TQ_EREDIS)
            redis_failed(b, rc);
    }

    int64_t wake = b->lease_due_mono;
    if (b->redis_ok) {
        if (b->check_due_mono < wake)
            wake = b->check_due_mono;
        if (b->reloading || (b->leader && (b->sync_all || b->npending)))
            wake = mono_ms;
        if (b->leader && b->promote_due_mono < wake)
            wake = b->promote_due_mono;
    }
    int64_t sleep_ms = wake - mono_ms;
    if (b->leader && b->redis_ok && b->nheap && due_at(b->heap[0]) - now_ms < sleep_ms)
        sleep_ms = due_at(b->heap[0]) - now_ms;
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
    if (b->stopped)
        return; /* a signal came while the file was read */
    if (b->file[0])
        tq_info(
            "beat %s starting: %zu schedules from %s, redis %s, prefix %s, lease %lld ms",
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
        if (sleep_ms > 0)
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
    const tq_tz *zone;
    char sub[512];
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
    if (tq_tz_get(cfg->tz, &zone, sub, sizeof sub) < 0) {
        snprintf(err, errlen, "--tz: %s", sub);
        goto fail;
    }
    snprintf(b->tz, sizeof b->tz, "%s", tq_tz_name(zone));
    if (cfg->beat_id[0])
        snprintf(b->id, sizeof b->id, "%s", cfg->beat_id);
    else
        tq_proc_default_id(b->id, sizeof b->id);
    b->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : 5000;
    b->catchup_max = cfg->catchup_max > 0 ? cfg->catchup_max : 100;
    /* Renew well before the lease runs out: three chances per lease. */
    b->period_ms =
        b->lease_ms / 3 < BEAT_HOUSEKEEPING_MS ? b->lease_ms / 3 : BEAT_HOUSEKEEPING_MS;
    if (b->period_ms < 10)
        b->period_ms = 10;
    b->client_id = -1;
    if (tq_keys_fmt(b->prefix, TQ_KEY_SCHEDULES, NULL, b->key_schedules, TQ_KEYS_MAX) <
            0 ||
        tq_keys_fmt(b->prefix, TQ_KEY_SCHEDULE_STATE, NULL, b->key_state, TQ_KEYS_MAX) <
            0 ||
        tq_keys_fmt(b->prefix, TQ_KEY_BEAT_LEADER, NULL, b->key_leader, TQ_KEYS_MAX) <
            0 ||
        tq_keys_fmt(b->prefix, TQ_KEY_STATS, NULL, b->key_stats, TQ_KEYS_MAX) < 0) {
        snprintf(err, errlen, "prefix '%s' is too long", b->prefix);
        goto fail;
    }
    if (b->file[0]) {
        /* A large file takes seconds: a SIGINT or SIGTERM meanwhile stops
         * the load, and beat_run() then returns at once. */
        int rc = tq_sched_load_file_until(b->file, b->tz, &tq_proc_stop, &b->seed,
                                          &b->nseed, err, errlen);
        if (rc == TQ_ESTOPPED)
            goto stopped;
        if (rc == TQ_ENOMEM)
            err[0] = '\0';
        if (rc < 0)
            goto fail;
        for (size_t i = 0; i < b->nseed; i++) {
            if (i % 1024 == 0 && tq_proc_stop)
                goto stopped;
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
    b->recs = calloc(BEAT_PASS_MAX, sizeof *b->recs);
    b->conn = tq_conn_new(&url, "beat");
    if (!b->recs || !b->conn) {
        err[0] = '\0';
        goto fail;
    }
    return b;
stopped:
    tq_info("stopped while reading %s: nothing upserted", b->file);
    seed_done(b);
    b->stopped = 1;
    b->recs = calloc(BEAT_PASS_MAX, sizeof *b->recs);
    b->conn = tq_conn_new(&url, "beat");
    if (b->recs && b->conn)
        return b;
    err[0] = '\0';
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
    reload_discard(b);
    free(b->added);
    free(b->changed);
    for (size_t i = 0; i < b->nents; i++)
        free(b->ents[i]);
    free(b->ents);
    free(b->slots);
    free(b->hashes);
    free(b->bucket);
    free(b->heap);
    free(b->pending);
    free(b->recs);
    tq_conn_free(b->conn);
    free(b);
}
