/* GET /metrics: Prometheus' text exposition of what Redis holds now (see
 * web/metrics.h; docs/METRICS.md lists every series). */
#include "web/metrics.h"

#include "web/api.h"
#include "web/reply.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/metrics.h"
#include "common/utf8.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOTE_MAX 400 /* one comment line, with its newline and the NUL */
#define NUM_MAX 40   /* a number as text, with the NUL */

/* HSCAN may return a field more than once and a hash that grows while it
 * is read takes more pages; past this many pages it is left out rather
 * than read forever. */
#define SCAN_PAGES_MAX (4 * (WEB_METRICS_FIELDS_MAX / WEB_METRICS_PAGE) + 4)

#define RT_NB TQ_METRICS_RUNTIME_NBUCKETS
#define LT_NB TQ_METRICS_LATENESS_NBUCKETS

static const double runtime_bounds[] = {TQ_METRICS_RUNTIME_BUCKETS};
static const double lateness_bounds[] = {TQ_METRICS_LATENESS_BUCKETS};
_Static_assert(sizeof runtime_bounds / sizeof runtime_bounds[0] + 1 == RT_NB,
               "TQ_METRICS_RUNTIME_NBUCKETS is the number of bounds plus +Inf");
_Static_assert(sizeof lateness_bounds / sizeof lateness_bounds[0] + 1 == LT_NB,
               "TQ_METRICS_LATENESS_NBUCKETS is the number of bounds plus +Inf");

/* The counters of P:stats, each its own family (docs/METRICS.md). */
static const struct {
    const char *field, *name, *help;
} stats_series[] = {
    {"published", "tickq_ticks_published_total", "Ticks the beat published."},
    {"processed", "tickq_tasks_processed_total", "Task runs that succeeded."},
    {"failed", "tickq_tasks_failed_total",
     "Task runs that ended in failure without a retry or a dead letter."},
    {"retried", "tickq_tasks_retried_total", "Failed task runs scheduled to run again."},
    {"expired", "tickq_tasks_expired_total", "Messages past their expires_at, not run."},
    {"dead", "tickq_messages_dead_total", "Messages moved to the dead letters."},
    {"duplicates", "tickq_messages_duplicate_total",
     "Deliveries dropped because their task was done or running elsewhere."},
    {"requeued", "tickq_messages_requeued_total",
     "Messages put back into their queue from a stopped or dead worker."},
    {"promoted", "tickq_messages_promoted_total",
     "Delayed messages (retries, ETAs) moved into their queue when due."},
};
#define NSTATS (sizeof stats_series / sizeof stats_series[0])

/* ---- the output ----------------------------------------------------------- */

/* Writes n bytes from Redis as the inside of a label value: valid UTF-8 is
 * kept, a byte that starts no valid sequence (and NUL, which some parsers
 * stop at) becomes U+FFFD, and \, " and newline are escaped, which is all
 * the text format requires. Runs of plain bytes are copied at once. */
static void out_label(tq_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < n) {
        size_t k = tq_utf8_seq(u + i, n - i);
        const char *esc = NULL;
        if (k == 0 || u[i] == '\0')
            esc = "\xef\xbf\xbd";
        else if (u[i] == '\\')
            esc = "\\\\";
        else if (u[i] == '"')
            esc = "\\\"";
        else if (u[i] == '\n')
            esc = "\\n";
        if (!esc) {
            i += k;
            continue;
        }
        tq_buf_put(b, s + run, i - run);
        tq_buf_puts(b, esc);
        i += k ? k : 1;
        run = i;
    }
    tq_buf_put(b, s + run, n - run);
}

/* Writes v as the shortest decimal text that reads back as v, in %g's
 * form ("0.005", "300", "1764096000.001", "1e-05"), and NaN and +Inf/-Inf
 * as the format spells them. The histogram bounds ("le") are written this
 * way, so each has one spelling. A scrape writes thousands of numbers, so
 * the common cases are fast: an integer is printed as one, and %.15g,
 * which drops trailing zeros, is tried before 16 and 17 digits (it reads
 * back for any value that came from 15 or fewer decimal digits, as every
 * count, time stamp and bound here does). */
static void fmt_num(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, len, "%.0f", v);
        return;
    }
    for (int p = 15; p < 17; p++) {
        snprintf(buf, len, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return;
    }
    snprintf(buf, len, "%.17g", v);
}

static void out_num(tq_buf *b, double v)
{
    char num[NUM_MAX];
    fmt_num(num, sizeof num, v);
    tq_buf_puts(b, num);
}

/* "# HELP" and "# TYPE" of a family. */
static void out_head(tq_buf *b, const char *name, const char *type, const char *help)
{
    tq_buf_putf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A comment line that some series of a family were left out. */
static void out_left_out(tq_buf *b, const char *name, size_t n)
{
    if (n)
        tq_buf_putf(b, "# tickq: %s: %zu series left out (at most %d samples a family)\n",
                    name, n, WEB_METRICS_SERIES_MAX);
}

/* ---- values read from Redis ----------------------------------------------- */

/* An unsigned decimal integer of n bytes, as HINCRBY writes it. Returns 0
 * or -1 for anything else (a negative count is not one). */
static int parse_count(const char *s, size_t n, unsigned long long *out)
{
    unsigned long long v = 0;
    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A finite decimal number of n bytes, as HINCRBYFLOAT or ZADD writes it.
 * Returns 0 or -1. */
static int parse_float(const char *s, size_t n, double *out)
{
    char buf[NUM_MAX + 32], *end;
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!((buf[0] >= '0' && buf[0] <= '9') || buf[0] == '-' || buf[0] == '+' ||
          buf[0] == '.'))
        return -1;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Adds a to *sum, saturating rather than wrapping: a count near 2^64 is
 * garbage anyway, and a wrapped cumulative bucket would break monotony. */
static unsigned long long sat_add(unsigned long long sum, unsigned long long a)
{
    return a > ULLONG_MAX - sum ? ULLONG_MAX : sum + a;
}

/* ---- series collected from hashes ----------------------------------------- */

/* One field of a labelled family: its label values joined by TABs (as the
 * field names of P:metrics hold them), which sample of the family it is,
 * and its value. */
typedef struct {
    char *labels; /* owned, NUL-terminated */
    int idx;      /* a histogram's bucket; RT_NB for its sum; 0 otherwise */
    unsigned long long count;
    double value;
} entry;

/* A growing array of entries; it owns them. */
typedef struct {
    entry *v;
    size_t n, cap;
} entries;

static int entries_add(entries *es, const char *labels, size_t len, int idx,
                       unsigned long long count, double value)
{
    if (es->n == es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 64;
        entry *v = realloc(es->v, cap * sizeof *v);
        if (!v)
            return -1;
        es->v = v;
        es->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, labels, len);
    copy[len] = '\0';
    es->v[es->n++] = (entry){copy, idx, count, value};
    return 0;
}

static void entries_free(entries *es)
{
    for (size_t i = 0; i < es->n; i++)
        free(es->v[i].labels);
    free(es->v);
    es->v = NULL;
    es->n = es->cap = 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->labels, y->labels);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Sorts es by labels, then sample, and drops repeats (HSCAN may return a
 * field twice; both copies are the same field, so either value will do).
 * Sorting also makes the series kept under the cap the same each scrape. */
static void entries_sort(entries *es)
{
    size_t w = 0;
    if (es->n == 0)
        return;
    qsort(es->v, es->n, sizeof *es->v, entry_cmp);
    for (size_t i = 1; i < es->n; i++) {
        if (entry_cmp(&es->v[w], &es->v[i]) == 0) {
            free(es->v[i].labels);
            continue;
        }
        es->v[++w] = es->v[i];
    }
    es->n = w + 1;
}

/* Writes the labels of e, TAB-separated values named by names[0..n-1]
 * (the caller checked when reading that it has exactly n values), without
 * the closing brace, so that a histogram can add "le". */
static void out_labels(tq_buf *b, const char *const *names, int n, const char *values)
{
    const char *p = values;
    for (int i = 0; i < n; i++) {
        const char *tab = i + 1 < n ? strchr(p, '\t') : NULL;
        size_t len = tab ? (size_t)(tab - p) : strlen(p);
        tq_buf_putf(b, "%s%s=\"", i ? "," : "{", names[i]);
        out_label(b, p, len);
        tq_buf_puts(b, "\"");
        p = tab ? tab + 1 : p + len;
    }
}

/* ---- the scrape ----------------------------------------------------------- */

struct scrape;
typedef int (*field_fn)(struct scrape *s, const char *f, size_t flen, const char *v,
                        size_t vlen);

/* A hash read whole in HSCAN pages, each parsed by fn into the scrape and
 * freed, so memory follows what is kept, not the reply. */
typedef struct {
    const char *key;
    field_fn fn;
    int ok;          /* 1 while its series can be written */
    int done;        /* read to the end */
    char cursor[24]; /* the next HSCAN cursor */
    int pages;
    char note[NOTE_MAX]; /* when !ok: the comment line that says why */
} hash_read;

/* The commands of the first round trip (the global keys), one reply each,
 * in this order. */
enum {
    Q_STATE_LEN,
    Q_STATE_PAGE,
    Q_ALIVE,
    Q_WORKERS,
    Q_WORKER_LIST,
    Q_LEADER,
    Q_LEASE,
    Q_COUNT_
};

/* The commands of each queue's round trip, in this order. */
enum { QQ_METRICS_LEN, QQ_METRICS_PAGE, QQ_STATS, QQ_DEAD, QQ_DELAYED, QQ_COUNT_ };

typedef struct scrape {
    web_req *rq;
    char k_state[TQ_KEYS_MAX], k_workers[TQ_KEYS_MAX], k_leader[TQ_KEYS_MAX];
    redisReply *r[Q_COUNT_]; /* the first round trip's replies, owned */
    hash_read state;
    tq_buf notes; /* comments on each queue's keys that were left out */
    unsigned long long stats[NSTATS];
    long long dead, delayed;
    entries tasks;   /* "queue\ttask\tstate" -> count */
    entries runtime; /* "queue\ttask", bucket or RT_NB -> count or sum */
    entries sched;   /* schedule name -> last run, seconds */
    unsigned long long late[LT_NB];
    double late_sum;
    size_t bad_fields; /* fields of P:{q}:metrics not of the documented layout */
    size_t bad_sched;  /* P:schedule-state values that are not times */
    int oom;
} scrape;

/* Writes into note the comment for a key whose reply r is not of the
 * expected type: "holds the wrong type" for WRONGTYPE, else Redis' error. */
static void note_reply(char *note, const char *key, const redisReply *r)
{
    char k[WEB_REPLY_CLEAN_MAX], e[WEB_REPLY_CLEAN_MAX];
    web_reply_clean(key, k, sizeof k);
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) {
        snprintf(note, NOTE_MAX, "# tickq: %s holds the wrong type\n", k);
    } else if (r->type == REDIS_REPLY_ERROR) {
        web_reply_clean(r->str, e, sizeof e);
        snprintf(note, NOTE_MAX, "# tickq: %s: %s\n", k, e);
    } else {
        snprintf(note, NOTE_MAX, "# tickq: %s: unexpected reply type %d\n", k, r->type);
    }
}

/* 1 when r has type t or t2 (-1: none); otherwise writes the note into the
 * output and returns 0, and the caller leaves the key's families out. */
static int reply_is(tq_buf *b, const char *key, const redisReply *r, int t, int t2)
{
    char note[NOTE_MAX];
    if (r->type == t || r->type == t2)
        return 1;
    note_reply(note, key, r);
    tq_buf_puts(b, note);
    return 0;
}

/* Label values are separated by TABs in field names; each must be short
 * enough to be a label (a longer one is not something tickq wrote). */
static int labels_ok(const char *p, size_t n, int want_tabs)
{
    int tabs = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '\t') {
            if (i - start > WEB_METRICS_LABEL_MAX)
                return 0;
            start = i + 1;
            tabs += i < n;
        }
    }
    return tabs == want_tabs;
}

/* A bucket index "0".."nb-1", written as the worker writes it (no leading
 * zero, so that no two fields name one bucket). Returns it or -1. */
static int parse_bucket(const char *s, size_t n, int nb)
{
    unsigned long long v;
    if (n > 3 || (n > 1 && s[0] == '0') || parse_count(s, n, &v) < 0 ||
        v >= (unsigned long long)nb)
        return -1;
    return (int)v;
}

static int has_prefix(const char *f, size_t n, const char *prefix, size_t plen)
{
    return n >= plen && memcmp(f, prefix, plen) == 0;
}

/* One field of P:metrics (layout: common/metrics.h). A field of a family
 * this web does not know is skipped silently (a newer worker may write
 * more); one of a known family but not of its layout is counted in
 * bad_fields. Returns 0, or -1 when out of memory. */
static int on_metrics_field(scrape *s, const char *f, size_t fn, const char *v, size_t vn)
{
    unsigned long long count;
    double value;
    if (memchr(f, '\0', fn))
        goto bad;
    if (has_prefix(f, fn, "tasks\t", 6)) {
        if (!labels_ok(f + 6, fn - 6, 2) || parse_count(v, vn, &count) < 0)
            goto bad;
        return entries_add(&s->tasks, f + 6, fn - 6, 0, count, 0);
    }
    if (has_prefix(f, fn, "runtime_sum\t", 12)) {
        if (!labels_ok(f + 12, fn - 12, 1) || parse_float(v, vn, &value) < 0)
            goto bad;
        return entries_add(&s->runtime, f + 12, fn - 12, RT_NB, 0, value);
    }
    if (has_prefix(f, fn, "runtime\t", 8)) {
        const char *rest = f + 8;
        size_t rn = fn - 8;
        if (!labels_ok(rest, rn, 2))
            goto bad;
        const char *tab = memchr(rest, '\t', rn);
        tab = memchr(tab + 1, '\t', rn - (size_t)(tab + 1 - rest));
        size_t ln = (size_t)(tab - rest);
        int i = parse_bucket(tab + 1, rn - ln - 1, RT_NB);
        if (i < 0 || parse_count(v, vn, &count) < 0)
            goto bad;
        return entries_add(&s->runtime, rest, ln, i, count, 0);
    }
    if (has_prefix(f, fn, "lateness\t", 9)) {
        int i = parse_bucket(f + 9, fn - 9, LT_NB);
        if (i < 0 || parse_count(v, vn, &count) < 0)
            goto bad;
        s->late[i] = sat_add(s->late[i], count);
        return 0;
    }
    if (fn == 12 && memcmp(f, "lateness_sum", 12) == 0) {
        if (parse_float(v, vn, &value) < 0)
            goto bad;
        s->late_sum += value;
        return 0;
    }
    return 0;
bad:
    s->bad_fields++;
    return 0;
}

/* One field of P:schedule-state: schedule name -> last tick, Unix ms. */
static int on_state_field(scrape *s, const char *f, size_t fn, const char *v, size_t vn)
{
    double ms;
    if (fn > WEB_METRICS_LABEL_MAX || memchr(f, '\0', fn) ||
        parse_float(v, vn, &ms) < 0) {
        s->bad_sched++;
        return 0;
    }
    return entries_add(&s->sched, f, fn, 0, 0, ms / 1000.0);
}

/* Parses one HSCAN page of h (then read to the end, or left out with a
 * note). Returns 0, or -1 when out of memory. */
static int hash_page(scrape *s, hash_read *h, const redisReply *page);

/* Takes the first page of a hash from the first round trip: len is its
 * HLEN, page its first HSCAN page, ignored when the hash is too big to
 * read. Returns 0, or -1 when out of memory. */
static int hash_start(scrape *s, hash_read *h, const redisReply *len,
                      const redisReply *page)
{
    char k[WEB_REPLY_CLEAN_MAX];
    h->ok = 0;
    h->done = 1;
    if (len->type != REDIS_REPLY_INTEGER) {
        note_reply(h->note, h->key, len);
        return 0;
    }
    if (len->integer > WEB_METRICS_FIELDS_MAX) {
        web_reply_clean(h->key, k, sizeof k);
        snprintf(h->note, NOTE_MAX,
                 "# tickq: %s holds %lld fields, more than %d: its series are left out\n",
                 k, len->integer, WEB_METRICS_FIELDS_MAX);
        return 0;
    }
    h->ok = 1;
    h->done = 0;
    return hash_page(s, h, page);
}

static int hash_page(scrape *s, hash_read *h, const redisReply *page)
{
    char k[WEB_REPLY_CLEAN_MAX];
    const redisReply *items =
        page->type == REDIS_REPLY_ARRAY && page->elements == 2 ? page->element[1] : NULL;
    if (!items || page->element[0]->type != REDIS_REPLY_STRING ||
        page->element[0]->len >= sizeof h->cursor || items->type != REDIS_REPLY_ARRAY ||
        items->elements % 2) {
        note_reply(h->note, h->key, page);
        h->ok = 0;
        return 0;
    }
    for (size_t i = 0; i < items->elements; i += 2) {
        const redisReply *f = items->element[i], *v = items->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (h->fn(s, f->str, f->len, v->str, v->len) < 0)
            return -1;
    }
    memcpy(h->cursor, page->element[0]->str, page->element[0]->len + 1);
    h->done = strcmp(h->cursor, "0") == 0;
    if (!h->done && ++h->pages > SCAN_PAGES_MAX) {
        web_reply_clean(h->key, k, sizeof k);
        snprintf(
            h->note, NOTE_MAX,
            "# tickq: %s changed too much while it was read: its series are left out\n",
            k);
        h->ok = 0;
    }
    return 0;
}

static void free_replies(scrape *s)
{
    for (int i = 0; i < Q_COUNT_; i++) {
        freeReplyObject(s->r[i]);
        s->r[i] = NULL;
    }
}

/* Sends the first round trip: the global keys but the rest of a large
 * P:{@}:schedule-state. Returns 0 with s->r filled, or -1 when Redis could
 * not be reached (nothing kept). A fast failure of a stale socket is
 * retried (web_req_pipeline). */
static int round_one(scrape *s)
{
    char now_min[32], page[16], last[16];
    int64_t now_ms = tq_clock_wall_ms();
    /* A worker is alive while its last heartbeat is at most liveness old,
     * as the reaper counts it. */
    snprintf(now_min, sizeof now_min, "%lld",
             (long long)(now_ms - s->rq->env->liveness_ms));
    snprintf(page, sizeof page, "%d", WEB_METRICS_PAGE);
    snprintf(last, sizeof last, "%d", WEB_METRICS_SERIES_MAX - 1);
    struct {
        int argc;
        const char *argv[6];
    } plain[Q_COUNT_] = {
        [Q_STATE_LEN] = {2, {"HLEN", s->k_state}},
        [Q_STATE_PAGE] = {5, {"HSCAN", s->k_state, "0", "COUNT", page}},
        [Q_ALIVE] = {4, {"ZCOUNT", s->k_workers, now_min, "+inf"}},
        [Q_WORKERS] = {2, {"ZCARD", s->k_workers}},
        [Q_WORKER_LIST] = {5, {"ZRANGE", s->k_workers, "0", last, "WITHSCORES"}},
        [Q_LEADER] = {2, {"GET", s->k_leader}},
        [Q_LEASE] = {2, {"PTTL", s->k_leader}},
    };
    const char *const *cmds[Q_COUNT_];
    int argcs[Q_COUNT_];
    for (int i = 0; i < Q_COUNT_; i++) {
        cmds[i] = plain[i].argv;
        argcs[i] = plain[i].argc;
    }
    return web_req_pipeline(s->rq, Q_COUNT_, argcs, cmds, NULL, s->r);
}

/* Reads the remaining pages of hash h, one round trip each. Returns 0, -1
 * when Redis could not be reached, -2 when out of memory. */
static int more_pages(scrape *s, hash_read *h)
{
    char page[16];
    snprintf(page, sizeof page, "%d", WEB_METRICS_PAGE);
    hash_read *hs[1] = {h};
    for (;;) {
        hash_read *pend[1];
        int n = 0, failed = 0, oom = 0;
        for (int i = 0; i < 1; i++) {
            if (!hs[i]->ok || hs[i]->done)
                continue;
            const char *argv[] = {"HSCAN", hs[i]->key, hs[i]->cursor, "COUNT", page};
            /* After a failed append the connection is gone: appending more
             * would open a new one and leave replies nobody reads. */
            if (!failed)
                failed = tq_conn_append(s->rq->redis, 5, argv, NULL) < 0;
            pend[n++] = hs[i];
        }
        if (n == 0)
            return 0;
        for (int i = 0; i < n; i++) {
            redisReply *r = failed ? NULL : tq_conn_reply(s->rq->redis);
            if (!r) {
                failed = 1;
                continue;
            }
            if (!oom && hash_page(s, pend[i], r) < 0)
                oom = 1;
            freeReplyObject(r);
        }
        if (failed)
            return -1;
        if (oom)
            return -2;
    }
}

/* Reads queue q's keys: its labelled counters (P:{q}:metrics, whole), its
 * counters (P:{q}:stats), dead letters and delayed messages, added to the
 * scrape; a key of the wrong type adds a comment instead. Returns 0, -1
 * when Redis could not be reached, -2 when out of memory. */
static int read_queue(scrape *s, const char *q)
{
    char km[TQ_KEYS_MAX], kst[TQ_KEYS_MAX], kd[TQ_KEYS_MAX], kdl[TQ_KEYS_MAX], page[16];
    char note[NOTE_MAX];
    if (web_req_key(s->rq, TQ_KEY_METRICS, q, NULL, km) < 0 ||
        web_req_key(s->rq, TQ_KEY_STATS, q, NULL, kst) < 0 ||
        web_req_key(s->rq, TQ_KEY_DEAD, q, NULL, kd) < 0 ||
        web_req_key(s->rq, TQ_KEY_DELAYED, q, NULL, kdl) < 0)
        return 0;
    snprintf(page, sizeof page, "%d", WEB_METRICS_PAGE);
    const char *stats[2 + NSTATS] = {"HMGET", kst};
    for (size_t i = 0; i < NSTATS; i++)
        stats[2 + i] = stats_series[i].field;
    const char *c0[] = {"HLEN", km}, *c1[] = {"HSCAN", km, "0", "COUNT", page};
    const char *c3[] = {"LLEN", kd}, *c4[] = {"ZCARD", kdl};
    const char *const *cmds[QQ_COUNT_] = {c0, c1, stats, c3, c4};
    const int argcs[QQ_COUNT_] = {2, 5, (int)(2 + NSTATS), 2, 2};
    redisReply *r[QQ_COUNT_];
    if (web_req_pipeline(s->rq, QQ_COUNT_, argcs, cmds, NULL, r) < 0)
        return -1;
    int rc = 0;
    hash_read h = {.key = km, .fn = on_metrics_field};
    if (hash_start(s, &h, r[QQ_METRICS_LEN], r[QQ_METRICS_PAGE]) < 0)
        rc = -2;
    else
        rc = more_pages(s, &h);
    if (rc == 0 && !h.ok)
        tq_buf_puts(&s->notes, h.note);
    if (r[QQ_STATS]->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < NSTATS && i < r[QQ_STATS]->elements; i++) {
            const redisReply *v = r[QQ_STATS]->element[i];
            unsigned long long count = 0;
            /* A counter not written yet is 0: nothing of its kind happened. */
            if (v->type == REDIS_REPLY_STRING &&
                parse_count(v->str, v->len, &count) < 0) {
                char k[WEB_REPLY_CLEAN_MAX];
                web_reply_clean(kst, k, sizeof k);
                tq_buf_putf(&s->notes, "# tickq: %s: field %s is not a count\n", k,
                            stats_series[i].field);
                continue;
            }
            s->stats[i] = sat_add(s->stats[i], count);
        }
    } else {
        note_reply(note, kst, r[QQ_STATS]);
        tq_buf_puts(&s->notes, note);
    }
    const char *ck[] = {kd, kdl};
    long long *sum[] = {&s->dead, &s->delayed};
    for (int i = 0; i < 2; i++) {
        if (r[QQ_DEAD + i]->type == REDIS_REPLY_INTEGER) {
            *sum[i] += r[QQ_DEAD + i]->integer;
        } else {
            note_reply(note, ck[i], r[QQ_DEAD + i]);
            tq_buf_puts(&s->notes, note);
        }
    }
    for (int i = 0; i < QQ_COUNT_; i++)
        freeReplyObject(r[i]);
    return rc;
}

/* ---- the families --------------------------------------------------------- */

static void out_tasks(tq_buf *b, scrape *s)
{
    static const char *const names[] = {"queue", "task", "state"};
    size_t n = 0, left = 0;
    out_head(
        b, "tickq_tasks_total", "counter",
        "Task runs that ended, by queue, task and how (success, failure, retried, dead, "
        "expired).");
    for (size_t i = 0; i < s->tasks.n; i++) {
        if (n >= WEB_METRICS_SERIES_MAX) {
            left++;
            continue;
        }
        tq_buf_puts(b, "tickq_tasks_total");
        out_labels(b, names, 3, s->tasks.v[i].labels);
        tq_buf_putf(b, "} %llu\n", s->tasks.v[i].count);
        n++;
    }
    out_left_out(b, "tickq_tasks_total", left);
}

/* One histogram's samples: per-bucket counts (not cumulative, the last
 * one +Inf) are summed into the cumulative buckets the format wants, so
 * _count equals the +Inf bucket by construction. lnames/labels as for
 * out_labels(); nl 0 for a histogram without labels. */
static void out_histogram(tq_buf *b, const char *name, const char *const *lnames, int nl,
                          const char *labels, const double *bounds, int nb,
                          const unsigned long long *counts, double sum)
{
    unsigned long long cum = 0;
    char le[NUM_MAX];
    for (int i = 0; i < nb; i++) {
        cum = sat_add(cum, counts[i]);
        if (i + 1 < nb)
            fmt_num(le, sizeof le, bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        tq_buf_putf(b, "%s_bucket", name);
        if (nl) {
            out_labels(b, lnames, nl, labels);
            tq_buf_putf(b, ",le=\"%s\"} %llu\n", le, cum);
        } else {
            tq_buf_putf(b, "{le=\"%s\"} %llu\n", le, cum);
        }
    }
    tq_buf_putf(b, "%s_sum", name);
    if (nl) {
        out_labels(b, lnames, nl, labels);
        tq_buf_puts(b, "}");
    }
    tq_buf_puts(b, " ");
    out_num(b, sum);
    tq_buf_putf(b, "\n%s_count", name);
    if (nl) {
        out_labels(b, lnames, nl, labels);
        tq_buf_puts(b, "}");
    }
    tq_buf_putf(b, " %llu\n", cum);
}

static void out_runtime(tq_buf *b, scrape *s)
{
    static const char *const names[] = {"queue", "task"};
    const char *name = "tickq_task_runtime_seconds";
    size_t samples = 0, left = 0;
    out_head(b, name, "histogram", "How long task runs took, by queue and task.");
    /* The entries are sorted by labels, then bucket: one histogram per run
     * of equal labels; a bucket with no field counts 0. */
    for (size_t i = 0; i < s->runtime.n;) {
        unsigned long long counts[RT_NB] = {0};
        double sum = 0;
        size_t j = i;
        for (; j < s->runtime.n &&
               strcmp(s->runtime.v[j].labels, s->runtime.v[i].labels) == 0;
             j++) {
            if (s->runtime.v[j].idx == RT_NB)
                sum = s->runtime.v[j].value;
            else
                counts[s->runtime.v[j].idx] = s->runtime.v[j].count;
        }
        if (samples + RT_NB + 2 > WEB_METRICS_SERIES_MAX) {
            left++;
        } else {
            out_histogram(b, name, names, 2, s->runtime.v[i].labels, runtime_bounds,
                          RT_NB, counts, sum);
            samples += RT_NB + 2;
        }
        i = j;
    }
    out_left_out(b, name, left);
}

static void out_metrics_families(tq_buf *b, scrape *s)
{
    out_tasks(b, s);
    out_runtime(b, s);
    out_head(b, "tickq_tick_lateness_seconds", "histogram",
             "How late the beat published scheduled ticks (enqueued_at - scheduled_at of "
             "first attempts).");
    out_histogram(b, "tickq_tick_lateness_seconds", NULL, 0, NULL, lateness_bounds, LT_NB,
                  s->late, s->late_sum);
    if (s->bad_fields)
        tq_buf_putf(b,
                    "# tickq: P:{<queue>}:metrics: skipped %zu field(s) not of the "
                    "documented layout\n",
                    s->bad_fields);
}

/* The queues, as /api/queues shows them. A queue whose key could not be
 * read (the wrong type) has null for its depth and latency and an "error":
 * its samples are left out and a comment says why. */
static void out_queues(tq_buf *b, const json_t *qs)
{
    static const struct {
        const char *name, *field, *help;
    } fams[] = {
        {"tickq_queue_depth", "depth", "Messages waiting in the queue."},
        {"tickq_queue_latency_seconds", "latency_s",
         "Age of the queue's oldest waiting message (0 when it is empty)."},
        {"tickq_queue_paused", "paused",
         "1 when the queue is paused (workers do not take from it)."},
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        size_t n = 0, left = 0, i;
        json_t *q;
        out_head(b, fams[f].name, "gauge", fams[f].help);
        json_array_foreach(qs, i, q)
        {
            json_t *name = json_object_get(q, "name"),
                   *v = json_object_get(q, fams[f].field);
            if (!json_is_string(name) || json_string_length(name) > WEB_METRICS_LABEL_MAX)
                continue;
            if (!json_is_number(v) && !json_is_boolean(v)) {
                const char *why = json_string_value(json_object_get(q, "error"));
                char e[WEB_REPLY_CLEAN_MAX];
                if (f > 0)
                    continue;
                web_reply_clean(why ? why : "no depth", e, sizeof e);
                tq_buf_puts(b, "# tickq: queue \"");
                out_label(b, json_string_value(name), json_string_length(name));
                tq_buf_putf(b, "\" left out: %s\n", e);
                continue;
            }
            if (n >= WEB_METRICS_SERIES_MAX) {
                left++;
                continue;
            }
            tq_buf_putf(b, "%s{queue=\"", fams[f].name);
            out_label(b, json_string_value(name), json_string_length(name));
            tq_buf_puts(b, "\"} ");
            out_num(b, json_is_boolean(v) ? json_is_true(v) : json_number_value(v));
            tq_buf_puts(b, "\n");
            n++;
        }
        out_left_out(b, fams[f].name, left);
    }
}

static void out_workers(tq_buf *b, scrape *s)
{
    const redisReply *alive = s->r[Q_ALIVE], *all = s->r[Q_WORKERS],
                     *list = s->r[Q_WORKER_LIST];
    if (!reply_is(b, s->k_workers, alive, REDIS_REPLY_INTEGER, -1) ||
        !reply_is(b, s->k_workers, all, REDIS_REPLY_INTEGER, -1) ||
        !reply_is(b, s->k_workers, list, REDIS_REPLY_ARRAY, -1))
        return;
    long long dead = all->integer - alive->integer;
    out_head(b, "tickq_workers", "gauge",
             "Workers by state: alive while their last heartbeat is within the liveness "
             "window, dead until the reaper removes them.");
    tq_buf_putf(b, "tickq_workers{state=\"alive\"} %lld\n", alive->integer);
    tq_buf_putf(b, "tickq_workers{state=\"dead\"} %lld\n", dead > 0 ? dead : 0);
    out_head(b, "tickq_worker_last_heartbeat_timestamp_seconds", "gauge",
             "When each worker last sent a heartbeat (Unix seconds).");
    for (size_t i = 0; i + 1 < list->elements; i += 2) {
        const redisReply *id = list->element[i], *score = list->element[i + 1];
        double ms;
        if (id->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING ||
            id->len > WEB_METRICS_LABEL_MAX ||
            parse_float(score->str, score->len, &ms) < 0)
            continue;
        tq_buf_puts(b, "tickq_worker_last_heartbeat_timestamp_seconds{worker=\"");
        out_label(b, id->str, id->len);
        tq_buf_puts(b, "\"} ");
        out_num(b, ms / 1000.0);
        tq_buf_puts(b, "\n");
    }
    if (all->integer > (long long)(list->elements / 2))
        out_left_out(b, "tickq_worker_last_heartbeat_timestamp_seconds",
                     (size_t)(all->integer - (long long)(list->elements / 2)));
}

static void out_counts(tq_buf *b, scrape *s)
{
    out_head(b, "tickq_dead_letters", "gauge", "Messages in the dead letters.");
    tq_buf_putf(b, "tickq_dead_letters %lld\n", s->dead);
    out_head(b, "tickq_delayed_messages", "gauge",
             "Messages waiting for their due time (retries, ETAs).");
    tq_buf_putf(b, "tickq_delayed_messages %lld\n", s->delayed);
}

static void out_leader(tq_buf *b, scrape *s)
{
    const redisReply *leader = s->r[Q_LEADER], *ttl = s->r[Q_LEASE];
    if (!reply_is(b, s->k_leader, leader, REDIS_REPLY_STRING, REDIS_REPLY_NIL) ||
        !reply_is(b, s->k_leader, ttl, REDIS_REPLY_INTEGER, -1))
        return;
    out_head(b, "tickq_beat_leader", "gauge",
             "1 when a beat holds the leader lease (label leader: its id), else 0.");
    if (leader->type == REDIS_REPLY_STRING) {
        /* One series, so a long id is cut rather than left out. */
        tq_buf_puts(b, "tickq_beat_leader{leader=\"");
        out_label(b, leader->str,
                  leader->len > WEB_METRICS_LABEL_MAX ? WEB_METRICS_LABEL_MAX
                                                      : leader->len);
        tq_buf_puts(b, "\"} 1\n");
    } else {
        tq_buf_puts(b, "tickq_beat_leader 0\n");
    }
    /* PTTL: -2 no key (no leader), -1 a key without expiry (set by hand:
     * a lease that never ends). */
    out_head(b, "tickq_beat_leader_lease_seconds", "gauge",
             "Seconds left on the leader's lease (0 when there is no leader).");
    tq_buf_puts(b, "tickq_beat_leader_lease_seconds ");
    out_num(b, ttl->integer == -1 ? INFINITY
               : ttl->integer < 0 ? 0
                                  : (double)ttl->integer / 1000.0);
    tq_buf_puts(b, "\n");
}

static void out_schedules(tq_buf *b, scrape *s)
{
    size_t n = 0, left = 0;
    const char *name = "tickq_schedule_last_run_timestamp_seconds";
    if (!s->state.ok) {
        tq_buf_puts(b, s->state.note);
        return;
    }
    out_head(b, name, "gauge",
             "The scheduled time of each schedule's last published tick "
             "(Unix seconds).");
    for (size_t i = 0; i < s->sched.n; i++) {
        if (n >= WEB_METRICS_SERIES_MAX) {
            left++;
            continue;
        }
        tq_buf_putf(b, "%s{schedule=\"", name);
        out_label(b, s->sched.v[i].labels, strlen(s->sched.v[i].labels));
        tq_buf_puts(b, "\"} ");
        out_num(b, s->sched.v[i].value);
        tq_buf_puts(b, "\n");
        n++;
    }
    out_left_out(b, name, left);
    if (s->bad_sched) {
        char k[WEB_REPLY_CLEAN_MAX];
        web_reply_clean(s->k_state, k, sizeof k);
        tq_buf_putf(b, "# tickq: %s: skipped %zu field(s) whose value is not a time\n", k,
                    s->bad_sched);
    }
}

static void out_stats(tq_buf *b, scrape *s)
{
    for (size_t i = 0; i < NSTATS; i++) {
        out_head(b, stats_series[i].name, "counter", stats_series[i].help);
        tq_buf_putf(b, "%s %llu\n", stats_series[i].name, s->stats[i]);
    }
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void scrape_free(scrape *s)
{
    free_replies(s);
    free(s->notes.p);
    entries_free(&s->tasks);
    entries_free(&s->runtime);
    entries_free(&s->sched);
}

int web_metrics_get(web_req *rq)
{
    double t0 = mono_s();
    uint64_t trips0 = rq->redis ? tq_conn_roundtrips(rq->redis) : 0;
    scrape s = {.rq = rq};
    tq_buf b = {0};
    int status = 200, rc;
    char err[WEB_REPLY_CLEAN_MAX] = "";
    json_t *queues = NULL;

    if (web_req_key(rq, TQ_KEY_SCHEDULE_STATE, NULL, NULL, s.k_state) < 0 ||
        web_req_key(rq, TQ_KEY_WORKERS, NULL, NULL, s.k_workers) < 0 ||
        web_req_key(rq, TQ_KEY_BEAT_LEADER, NULL, NULL, s.k_leader) < 0)
        return web_reply_error(rq, 500, "metrics: key name too long");
    s.state = (hash_read){.key = s.k_state, .fn = on_state_field};

    if (round_one(&s) < 0)
        return web_reply_redis_error(rq, NULL, "metrics: reading redis");
    if (hash_start(&s, &s.state, s.r[Q_STATE_LEN], s.r[Q_STATE_PAGE]) < 0)
        goto oom;
    rc = more_pages(&s, &s.state);
    /* Then each queue's keys, in its own slot. */
    char(*names)[TQ_CONFIG_NAME_MAX] = calloc(WEB_REQ_QUEUES_MAX, sizeof *names);
    int nq = rc == 0 && names ? web_req_queues(rq, names) : 0;
    if (rc == 0 && !names)
        rc = -2;
    if (nq < 0)
        rc = -1;
    for (int q = 0; rc == 0 && q < nq; q++)
        rc = read_queue(&s, names[q]);
    free(names);
    if (rc == -1) {
        scrape_free(&s);
        return web_reply_redis_error(rq, NULL, "metrics: reading redis");
    }
    if (rc == -2)
        goto oom;
    entries_sort(&s.tasks);
    entries_sort(&s.runtime);
    entries_sort(&s.sched);

    queues = web_api_queue_list(rq, &status, err, sizeof err);
    if (!queues && status == 503) {
        scrape_free(&s);
        return web_reply_error(rq, 503, "metrics: %s", err);
    }

    out_head(&b, "tickq_redis_up", "gauge",
             "1: Redis answered this scrape (when it cannot be reached /metrics answers "
             "503).");
    tq_buf_puts(&b, "tickq_redis_up 1\n");
    out_metrics_families(&b, &s);
    if (queues) {
        out_queues(&b, queues);
    } else {
        char e[WEB_REPLY_CLEAN_MAX];
        web_reply_clean(err, e, sizeof e);
        tq_buf_putf(&b, "# tickq: queues could not be read (%d): %s\n", status, e);
    }
    out_workers(&b, &s);
    out_counts(&b, &s);
    out_leader(&b, &s);
    out_schedules(&b, &s);
    out_stats(&b, &s);
    if (s.notes.len)
        tq_buf_puts(&b, s.notes.p);
    json_decref(queues);
    out_head(&b, "tickq_scrape_redis_roundtrips", "gauge",
             "Round trips to Redis this scrape took.");
    tq_buf_putf(
        &b, "tickq_scrape_redis_roundtrips %llu\n",
        (unsigned long long)(rq->redis ? tq_conn_roundtrips(rq->redis) - trips0 : 0));
    out_head(&b, "tickq_scrape_duration_seconds", "gauge",
             "How long this scrape took to read Redis and write its answer.");
    tq_buf_puts(&b, "tickq_scrape_duration_seconds ");
    out_num(&b, round((mono_s() - t0) * 1e6) / 1e6); /* microseconds are plenty */
    tq_buf_puts(&b, "\n");
    scrape_free(&s);
    if (b.oom) {
        free(b.p);
        return web_reply_error(rq, 500, "metrics: out of memory");
    }
    rc = web_reply(rq, 200, WEB_METRICS_CTYPE, b.p ? b.p : "", b.len, NULL);
    free(b.p);
    return rc;

oom:
    scrape_free(&s);
    free(b.p);
    return web_reply_error(rq, 500, "metrics: out of memory");
}
