/* tickq-web --top: the live picture in a terminal (see web/top.h), read
 * straight from Redis with one tq_conn. Each frame is composed in memory
 * and written at once, so a slow terminal never shows half of one. */
#include "web/top.h"

#include "common/clock.h"
#include "common/conn.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/sched.h"
#include "common/tz.h"
#include "common/url.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define TOP_REFRESH_MS 1000
#define TOP_TIMEOUT_MS 2000 /* one read waits at most this for Redis */
#define TOP_ROWS_MAX 20     /* rows of the queue, worker and schedule sections */
#define TOP_EVENTS 10       /* events shown */
/* The newest entries read to find TOP_EVENTS that are not heartbeats (one
 * per worker a second). */
#define TOP_EVENTS_READ "200"
#define TOP_QUEUES_MAX 256    /* queue names collected */
#define TOP_QUEUE_NAME_MAX 65 /* with the NUL, as tq_config_name_ok allows */
#define TOP_FIELD_MAX 40      /* a name shown in a column, with the NUL */

/* One frame being drawn. */
typedef struct {
    tq_conn *c;
    const tq_config *cfg;
    FILE *out;      /* the frame, in memory */
    int64_t now_ms; /* wall clock, read once per frame */
} top_frame;

/* The queue names of one frame. */
typedef struct {
    char name[TOP_QUEUES_MAX][TOP_QUEUE_NAME_MAX];
    int n;
    int more; /* names were left out (over TOP_QUEUES_MAX) */
} top_queues;

static void key(const top_frame *t, tq_key k, const char *queue, const char *arg,
                char *buf)
{
    if (tq_keys_fmt(t->cfg->prefix, k, queue, arg, buf, TQ_KEYS_MAX) < 0)
        buf[0] = '\0'; /* a name too long for a key: reads find nothing */
}

/* Runs one command. Returns a new reply, or NULL (Redis unreachable). */
static redisReply *cmd(top_frame *t, int argc, const char **argv)
{
    return tq_conn_cmdargv(t->c, argc, argv, NULL);
}

/* Copies a reply string into buf as printable ASCII, cut to fit a column. */
static void shown(const char *s, size_t len, char *buf, size_t buflen)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < buflen; i++)
        buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[n] = '\0';
    if (len >= buflen && buflen > 4)
        memcpy(buf + buflen - 4, "...", 4);
}

/* A duration in seconds, short: "0.4s", "12s", "3m05s", "2h10m", "4d".
 * Clamped to 99 999 days. */
static void duration(double s, char *buf, size_t len)
{
    int x = s < 60 ? (int)s : 0, d = 0, h = 0, m = 0;
    if (s >= 60) {
        double days = s / 86400 < 99999 ? s / 86400 : 99999;
        d = (int)days;
        int rest = d ? 0 : (int)s;
        h = rest / 3600;
        m = rest % 3600 / 60;
        x = rest % 60;
    }
    if (!(s >= 0))
        snprintf(buf, len, "-");
    else if (s < 10)
        snprintf(buf, len, "%.1fs", s);
    else if (s < 60)
        snprintf(buf, len, "%ds", x);
    else if (d)
        snprintf(buf, len, "%dd", d);
    else if (h)
        snprintf(buf, len, "%dh%02dm", h, m);
    else
        snprintf(buf, len, "%dm%02ds", m, x);
}

/* The integer in a reply string, or -1 when it holds none. */
static long long reply_int(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 18 ||
        strspn(r->str, "0123456789") != r->len)
        return -1;
    return strtoll(r->str, NULL, 10);
}

/* ---- the header -------------------------------------------------------- */

/* The first lines: the time, Redis, the beat leader, the counters. Returns
 * 0, or -1 when Redis does not answer (the frame then says why). */
static int draw_header(top_frame *t)
{
    char when[TQ_TZ_ISO_MAX], where[TQ_URL_SHOWN_MAX], k[TQ_KEYS_MAX];
    tq_url url;
    char urlerr[64];
    if (tq_config_url(t->cfg, &url, urlerr, sizeof urlerr) == 0)
        tq_url_redacted(&url, where, sizeof where);
    else
        snprintf(where, sizeof where, "(bad url)");
    tq_tz_format_utc(t->now_ms / 1000 * 1000, when, sizeof when);
    fprintf(t->out, "tickq top  %s  redis %s  prefix %s\n", when, where, t->cfg->prefix);

    const char *ping[] = {"PING"};
    redisReply *r = cmd(t, 1, ping);
    if (!r || r->type != REDIS_REPLY_STATUS) {
        char why[TQ_CONN_ERROR_MAX];
        const char *text =
            r && r->type == REDIS_REPLY_ERROR ? r->str : tq_conn_last_error(t->c);
        shown(text, strlen(text), why, sizeof why);
        fprintf(t->out, "redis: unreachable: %s\n", why[0] ? why : "no answer");
        freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);

    key(t, TQ_KEY_BEAT_LEADER, NULL, NULL, k);
    const char *get[] = {"GET", k}, *pttl[] = {"PTTL", k};
    r = cmd(t, 2, get);
    redisReply *ttl = cmd(t, 2, pttl);
    char leader[TOP_FIELD_MAX * 2] = "none";
    if (r && r->type == REDIS_REPLY_STRING)
        shown(r->str, r->len, leader, sizeof leader);
    else if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(leader, sizeof leader, "(the key holds another type)");
    char lease[32] = "";
    if (r && r->type == REDIS_REPLY_STRING && ttl && ttl->type == REDIS_REPLY_INTEGER &&
        ttl->integer >= 0) {
        char d[16];
        duration((double)ttl->integer / 1000.0, d, sizeof d);
        snprintf(lease, sizeof lease, " (lease %s)", d);
    }
    fprintf(t->out, "beat leader: %s%s\n", leader, lease);
    freeReplyObject(r);
    freeReplyObject(ttl);

    return 0;
}

/* ---- queues -------------------------------------------------------------- */

/* Adds a name (len bytes) unless it is there already or too long. */
static void queue_add(top_queues *q, const char *name, size_t len)
{
    if (len == 0 || len >= TOP_QUEUE_NAME_MAX || memchr(name, '\0', len))
        return;
    for (int i = 0; i < q->n; i++)
        if (strlen(q->name[i]) == len && memcmp(q->name[i], name, len) == 0)
            return;
    if (q->n == TOP_QUEUES_MAX) {
        q->more = 1;
        return;
    }
    memcpy(q->name[q->n], name, len);
    q->name[q->n][len] = '\0';
    q->n++;
}

static int queue_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Collects the queue names: the queues in use (P:{@}:queues) and those
 * that live workers consume, so a queue in use shows even when empty. */
static void find_queues(top_frame *t, top_queues *q)
{
    char k[TQ_KEYS_MAX];
    queue_add(q, "default", 7);
    key(t, TQ_KEY_QUEUES, NULL, NULL, k);
    const char *smembers[] = {"SMEMBERS", k};
    redisReply *r = cmd(t, 2, smembers);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            queue_add(q, r->element[i]->str, r->element[i]->len);
    freeReplyObject(r);

    /* The queues field of live workers' hashes: "a,b,c". */
    key(t, TQ_KEY_WORKERS, NULL, NULL, k);
    const char *zrange[] = {"ZREVRANGE", k, "0", "99"};
    r = cmd(t, 4, zrange);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;
        char wk[TQ_KEYS_MAX];
        key(t, TQ_KEY_WORKER, NULL, r->element[i]->str, wk);
        const char *hget[] = {"HGET", wk, "queues"};
        redisReply *v = cmd(t, 3, hget);
        if (v && v->type == REDIS_REPLY_STRING)
            for (const char *p = v->str; p < v->str + v->len;) {
                size_t n = strcspn(p, ",");
                queue_add(q, p, n);
                p += n + 1;
            }
        freeReplyObject(v);
    }
    freeReplyObject(r);
    qsort(q->name, (size_t)q->n, sizeof q->name[0], queue_cmp);
}

/* The counters, added up over the queues (P:{q}:stats). */
static void draw_counters(top_frame *t, const top_queues *q)
{
    static const char *const counters[] = {"published", "processed", "failed",
                                           "retried",   "dead",      "expired"};
    long long sum[6] = {0};
    int bad = 0;
    for (int i = 0; i < q->n; i++) {
        char k[TQ_KEYS_MAX];
        key(t, TQ_KEY_STATS, q->name[i], NULL, k);
        const char *hmget[] = {"HMGET",     k,           counters[0], counters[1],
                               counters[2], counters[3], counters[4], counters[5]};
        redisReply *r = cmd(t, 8, hmget);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 6) {
            for (size_t j = 0; j < 6; j++) {
                long long v = reply_int(r->element[j]);
                sum[j] += v < 0 ? 0 : v;
            }
        } else {
            bad++;
        }
        freeReplyObject(r);
    }
    for (size_t j = 0; j < 6; j++)
        fprintf(t->out, "%s%s %lld", j ? "  " : "", counters[j], sum[j]);
    if (bad)
        fprintf(t->out, "  (%d queue(s)' counters unreadable)", bad);
    fputc('\n', t->out);
}

/* The age of the oldest waiting message of a queue (its right end), in
 * seconds, or -1 when it is empty or carries no enqueued_at. */
static double queue_latency(top_frame *t, const char *k)
{
    const char *lindex[] = {"LINDEX", k, "-1"};
    redisReply *r = cmd(t, 3, lindex);
    double age = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        json_t *m = json_loadb(r->str, r->len, 0, NULL);
        json_t *at = json_object_get(m, "enqueued_at");
        if (json_is_number(at)) {
            age = (double)t->now_ms / 1000.0 - json_number_value(at);
            if (age < 0)
                age = 0;
        }
        json_decref(m);
    }
    freeReplyObject(r);
    return age;
}

static void draw_queues(top_frame *t, top_queues *q)
{
    fprintf(t->out, "\nQUEUES (%d%s)\n  %-24s %8s  %-6s  %s\n", q->n, q->more ? "+" : "",
            "name", "depth", "paused", "latency");
    for (int i = 0; i < q->n && i < TOP_ROWS_MAX; i++) {
        char qk[TQ_KEYS_MAX], k[TQ_KEYS_MAX], depth[24], age[16], name[TOP_FIELD_MAX];
        key(t, TQ_KEY_QUEUE, q->name[i], NULL, qk);
        key(t, TQ_KEY_PAUSED, q->name[i], NULL, k);
        const char *llen[] = {"LLEN", qk}, *exists[] = {"EXISTS", k};
        redisReply *r = cmd(t, 2, llen), *p = cmd(t, 2, exists);
        if (r && r->type == REDIS_REPLY_INTEGER)
            snprintf(depth, sizeof depth, "%lld", (long long)r->integer);
        else
            snprintf(depth, sizeof depth, "%s",
                     r && r->type == REDIS_REPLY_ERROR ? "bad type" : "?");
        duration(queue_latency(t, qk), age, sizeof age);
        shown(q->name[i], strlen(q->name[i]), name, sizeof name);
        fprintf(t->out, "  %-24s %8s  %-6s  %s\n", name, depth,
                p && p->type == REDIS_REPLY_INTEGER && p->integer ? "yes" : "no", age);
        freeReplyObject(r);
        freeReplyObject(p);
    }
    if (q->n > TOP_ROWS_MAX)
        fprintf(t->out, "  ... %d more\n", q->n - TOP_ROWS_MAX);
}

/* ---- workers ------------------------------------------------------------- */

static void draw_workers(top_frame *t)
{
    char k[TQ_KEYS_MAX];
    key(t, TQ_KEY_WORKERS, NULL, NULL, k);
    const char *zcard[] = {"ZCARD", k};
    char rows[8];
    snprintf(rows, sizeof rows, "%d", TOP_ROWS_MAX - 1);
    const char *zrange[] = {"ZREVRANGE", k, "0", rows, "WITHSCORES"};
    redisReply *n = cmd(t, 2, zcard), *r = cmd(t, 5, zrange);
    long long total = n && n->type == REDIS_REPLY_INTEGER ? n->integer : 0;
    fprintf(t->out, "\nWORKERS (%lld)\n  %-32s %-5s %7s %9s %7s  %s\n", total, "id",
            "alive", "running", "processed", "failed", "heartbeat");
    if (!r || r->type != REDIS_REPLY_ARRAY)
        fprintf(t->out, "  cannot read %s\n", k);
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *id = r->element[i], *score = r->element[i + 1];
        if (id->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING)
            continue;
        double hb = strtod(score->str, NULL);
        double age = ((double)t->now_ms - hb) / 1000.0;
        int alive = age * 1000.0 <= (double)t->cfg->liveness_ms;
        char wk[TQ_KEYS_MAX], name[TOP_FIELD_MAX], ago[16];
        key(t, TQ_KEY_WORKER, NULL, id->str, wk);
        const char *hmget[] = {"HMGET", wk, "processed", "failed", "queues"};
        redisReply *h = cmd(t, 5, hmget);
        long long processed = -1, failed = -1, running = 0;
        if (h && h->type == REDIS_REPLY_ARRAY && h->elements == 3) {
            processed = reply_int(h->element[0]);
            failed = reply_int(h->element[1]);
            /* Running: its processing lists, one per queue it consumes. */
            const redisReply *qs = h->element[2];
            for (const char *p = qs->str;
                 qs->type == REDIS_REPLY_STRING && p < qs->str + qs->len;) {
                char qn[TOP_QUEUE_NAME_MAX], pk[TQ_KEYS_MAX];
                size_t len = strcspn(p, ",");
                if (len && len < sizeof qn) {
                    memcpy(qn, p, len);
                    qn[len] = '\0';
                    key(t, TQ_KEY_PROCESSING, qn, id->str, pk);
                    const char *llen[] = {"LLEN", pk};
                    redisReply *l = cmd(t, 2, llen);
                    if (l && l->type == REDIS_REPLY_INTEGER)
                        running += l->integer;
                    freeReplyObject(l);
                }
                p += len + 1;
            }
        }
        shown(id->str, id->len, name, sizeof name);
        duration(age < 0 ? 0 : age, ago, sizeof ago);
        fprintf(t->out, "  %-32s %-5s %7lld %9lld %7lld  %s ago\n", name,
                alive ? "yes" : "no", running < 0 ? 0 : running,
                processed < 0 ? 0 : processed, failed < 0 ? 0 : failed, ago);
        freeReplyObject(h);
    }
    if (total > TOP_ROWS_MAX)
        fprintf(t->out, "  ... %lld more\n", total - TOP_ROWS_MAX);
    freeReplyObject(n);
    freeReplyObject(r);
}

/* ---- schedules ------------------------------------------------------------ */

/* One schedule row, kept to sort them by name. */
typedef struct {
    char name[TOP_FIELD_MAX];
    char when[TOP_FIELD_MAX * 2];
    char target[TOP_FIELD_MAX * 2];
    int64_t next_ms;
    int enabled;
} top_sched_row;

static int sched_cmp(const void *a, const void *b)
{
    return strcmp(((const top_sched_row *)a)->name, ((const top_sched_row *)b)->name);
}

/* "every 5s", "every 250ms", "every 1h" for an interval. */
static void every_text(int64_t ms, char *buf, size_t len)
{
    if (ms % 3600000 == 0)
        snprintf(buf, len, "every %lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(buf, len, "every %lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "every %llds", (long long)(ms / 1000));
    else
        snprintf(buf, len, "every %lldms", (long long)ms);
}

static void draw_schedules(top_frame *t)
{
    char k[TQ_KEYS_MAX];
    key(t, TQ_KEY_SCHEDULES, NULL, NULL, k);
    const char *hgetall[] = {"HGETALL", k};
    redisReply *r = cmd(t, 2, hgetall);
    size_t n = r && r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    top_sched_row *rows = n ? calloc(n, sizeof *rows) : NULL;
    fprintf(t->out, "\nSCHEDULES (%zu)\n  %-20s %-30s %-24s %s\n", n, "name", "when",
            "task -> queue", "next run (UTC)");
    if (!r || r->type != REDIS_REPLY_ARRAY)
        fprintf(t->out, "  cannot read %s\n", k);
    else if (n && !rows)
        fprintf(t->out, "  out of memory\n");
    for (size_t i = 0; rows && i < n; i++) {
        const redisReply *name = r->element[2 * i], *def = r->element[2 * i + 1];
        top_sched_row *row = &rows[i];
        if (name->type == REDIS_REPLY_STRING)
            shown(name->str, name->len, row->name, sizeof row->name);
        row->next_ms = TQ_SCHED_NEVER;
        tq_sched s;
        char err[256];
        if (def->type != REDIS_REPLY_STRING ||
            tq_sched_decode_text(&s, def->str, def->len, NULL, err, sizeof err) < 0) {
            snprintf(row->when, sizeof row->when, "(undecodable)");
            continue;
        }
        if (s.rule.kind == TQ_SCHED_EVERY)
            every_text(s.rule.every_ms, row->when, sizeof row->when);
        else
            snprintf(row->when, sizeof row->when, "cron %.40s %.20s", s.cron, s.tz);
        snprintf(row->target, sizeof row->target, "%.30s -> %.30s", s.task, s.queue);
        row->enabled = s.enabled;
        row->next_ms = tq_sched_next(&s, t->now_ms);
        tq_sched_deinit(&s);
    }
    if (rows)
        qsort(rows, n, sizeof *rows, sched_cmp);
    for (size_t i = 0; rows && i < n && i < TOP_ROWS_MAX; i++) {
        char next[TQ_TZ_ISO_MAX + 32] = "never";
        if (!rows[i].enabled && rows[i].when[0] != '(') {
            snprintf(next, sizeof next, "paused");
        } else if (rows[i].next_ms != TQ_SCHED_NEVER) {
            char iso[TQ_TZ_ISO_MAX], in[16];
            tq_tz_format_utc(rows[i].next_ms, iso, sizeof iso);
            duration((double)(rows[i].next_ms - t->now_ms) / 1000.0, in, sizeof in);
            snprintf(next, sizeof next, "%s (in %s)", iso, in);
        }
        fprintf(t->out, "  %-20s %-30s %-24s %s\n", rows[i].name, rows[i].when,
                rows[i].target, next);
    }
    if (n > TOP_ROWS_MAX)
        fprintf(t->out, "  ... %zu more\n", n - TOP_ROWS_MAX);
    free(rows);
    freeReplyObject(r);
}

/* ---- events ---------------------------------------------------------------- */

/* The value of a field in a stream entry's field list, "" when absent. */
static void entry_field(const redisReply *fields, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0) {
            shown(fields->element[i + 1]->str, fields->element[i + 1]->len, buf, len);
            return;
        }
}

/* 1 when stream id a comes after b. */
static int id_after(const char *a, const char *b)
{
    unsigned long long am = strtoull(a, NULL, 10), bm = strtoull(b, NULL, 10);
    if (am != bm)
        return am > bm;
    const char *ad = strchr(a, '-'), *bd = strchr(b, '-');
    return ad && bd && strtoull(ad + 1, NULL, 10) > strtoull(bd + 1, NULL, 10);
}

/* The newest events of the global stream and of every queue's, merged. */
static void draw_events(top_frame *t, const top_queues *q)
{
    int ns = q->n + 1;
    redisReply **r = calloc((size_t)ns, sizeof *r);
    size_t *at = calloc((size_t)ns, sizeof *at);
    fprintf(t->out, "\nEVENTS (newest first, heartbeats left out)\n");
    if (!r || !at) {
        fprintf(t->out, "  out of memory\n");
        free(r);
        free(at);
        return;
    }
    for (int i = 0; i < ns; i++) {
        char k[TQ_KEYS_MAX];
        key(t, TQ_KEY_EVENTS, i ? q->name[i - 1] : NULL, NULL, k);
        const char *xrevrange[] = {"XREVRANGE", k, "+", "-", "COUNT", TOP_EVENTS_READ};
        r[i] = cmd(t, 6, xrevrange);
        if (!r[i] || r[i]->type != REDIS_REPLY_ARRAY)
            fprintf(t->out, "  cannot read %s\n", k);
    }
    int shown_n = 0;
    for (;;) {
        /* The newest entry not shown yet, of all streams. */
        int best = -1;
        for (int i = 0; i < ns; i++) {
            if (!r[i] || r[i]->type != REDIS_REPLY_ARRAY || at[i] >= r[i]->elements)
                continue;
            const redisReply *e = r[i]->element[at[i]];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING ||
                e->element[1]->type != REDIS_REPLY_ARRAY) {
                at[i]++;
                i--;
                continue;
            }
            if (best < 0 ||
                id_after(e->element[0]->str, r[best]->element[at[best]]->element[0]->str))
                best = i;
        }
        if (best < 0 || shown_n >= TOP_EVENTS)
            break;
        const redisReply *f = r[best]->element[at[best]++]->element[1];
        char ev[TOP_FIELD_MAX], ts[24], id[TOP_FIELD_MAX], task[TOP_FIELD_MAX],
            worker[TOP_FIELD_MAX], queue[TOP_FIELD_MAX], runtime[16],
            error[TOP_FIELD_MAX * 2];
        entry_field(f, "event", ev, sizeof ev);
        if (strcmp(ev, "worker-heartbeat") == 0)
            continue;
        entry_field(f, "ts", ts, sizeof ts);
        entry_field(f, "id", id, sizeof id);
        entry_field(f, "task", task, sizeof task);
        entry_field(f, "worker", worker, sizeof worker);
        entry_field(f, "queue", queue, sizeof queue);
        entry_field(f, "runtime", runtime, sizeof runtime);
        entry_field(f, "error", error, sizeof error);
        char when[16] = "";
        long long ms = strtoll(ts, NULL, 10);
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        if (gmtime_r(&secs, &tm))
            snprintf(when, sizeof when, "%02d:%02d:%02d.%03lld", tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ms % 1000);
        fprintf(t->out, "  %-12s %-15s %-16s %-24s %-10s %s", when, ev, task, id, queue,
                worker);
        if (runtime[0])
            fprintf(t->out, "  %ss", runtime);
        if (error[0])
            fprintf(t->out, "  %s", error);
        fputc('\n', t->out);
        shown_n++;
    }
    if (shown_n == 0)
        fprintf(t->out, "  (none)\n");
    for (int i = 0; i < ns; i++)
        freeReplyObject(r[i]);
    free(r);
    free(at);
}

/* ---- the loop ------------------------------------------------------------- */

/* Composes one frame. Returns a new string (free it) and its length in
 * *len, or NULL when out of memory; *down is 1 when Redis did not answer. */
static char *compose(tq_conn *c, const tq_config *cfg, size_t *len, int *down)
{
    char *text = NULL;
    top_frame t = {c, cfg, open_memstream(&text, len), tq_clock_wall_ms()};
    if (!t.out)
        return NULL;
    *down = draw_header(&t) < 0;
    top_queues *q = *down ? NULL : calloc(1, sizeof *q);
    if (q) {
        find_queues(&t, q);
        draw_counters(&t, q);
        draw_queues(&t, q);
        draw_workers(&t);
        draw_schedules(&t);
        draw_events(&t, q);
        free(q);
    } else if (!*down) {
        fprintf(t.out, "out of memory\n");
    }
    if (fclose(t.out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Writes a frame to a terminal: from the top left corner, each line cut
 * to the width and cleared to its end, at most the height, then the rest
 * of the screen cleared (redrawing over the old frame does not flicker the
 * way clearing first does). */
static void paint(const char *text)
{
    struct winsize ws;
    int cols = 80, rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        cols = ws.ws_col;
        rows = ws.ws_row;
    }
    fputs("\033[H", stdout);
    int row = 0;
    for (const char *p = text; *p && row < rows - 1; row++) {
        size_t n = strcspn(p, "\n");
        fwrite(p, 1, n < (size_t)cols ? n : (size_t)cols, stdout);
        fputs("\033[K\n", stdout);
        p += n + (p[n] == '\n');
    }
    fputs("\033[J", stdout);
    fflush(stdout);
}

int web_top_run(const tq_config *cfg, const volatile sig_atomic_t *stop)
{
    tq_url url;
    char err[256];
    if (tq_config_url(cfg, &url, err, sizeof err) < 0) {
        fprintf(stderr, "tickq-web --top: --redis-url: %s\n", err);
        return 1;
    }
    tq_conn *c = tq_conn_new(&url, "top");
    if (!c) {
        fprintf(stderr, "tickq-web --top: out of memory\n");
        return 1;
    }
    tq_conn_set_timeout_ms(c, TOP_TIMEOUT_MS);
    int tty = isatty(STDOUT_FILENO);
    int rc = 0;
    if (tty)
        fputs("\033[?25l\033[2J", stdout); /* hide the cursor, clear once */
    while (!*stop) {
        size_t len = 0;
        int down = 0;
        char *text = compose(c, cfg, &len, &down);
        if (!tty) {
            /* One frame, for a pipe or a file: 1 when Redis did not answer. */
            if (text)
                fwrite(text, 1, len, stdout);
            else
                fprintf(stderr, "tickq-web --top: out of memory\n");
            fflush(stdout);
            rc = !text || down;
            free(text);
            break;
        }
        if (text)
            paint(text);
        free(text);
        for (int64_t end = tq_clock_mono_ms() + TOP_REFRESH_MS;
             !*stop && tq_clock_mono_ms() < end;)
            tq_clock_sleep_us(50 * 1000);
    }
    if (tty) {
        fputs("\033[?25h\n", stdout); /* the cursor back */
        fflush(stdout);
    }
    tq_conn_free(c);
    return rc;
}
