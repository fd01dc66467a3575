/* The beat's schedule entries: decoding a definition once, and building
 * the messages of its ticks; see entry.h. */
#include "beat/entry.h"
#include "beat/heap.h"
#include "common/err.h"
#include "common/msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *beat_entry_shown(const char *s, size_t len, char *buf, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; i < len && j + 1 < cap; i++)
        buf[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[j] = '\0';
    return buf;
}

int beat_entry_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

int beat_entry_cmp(const void *pa, const void *pb)
{
    const beat_entry *a = *(beat_entry *const *)pa, *b = *(beat_entry *const *)pb;
    if (a->namehash != b->namehash)
        return a->namehash < b->namehash ? -1 : 1;
    return beat_entry_name_cmp(a->str, a->namelen, b->str, b->namelen);
}

/* Eight bytes at a time, finished with the MurmurHash3 mixer: tells a
 * changed definition from an unchanged one, and spreads names evenly over
 * the table's prefix index. Not for adversaries: only writers of
 * P:schedules choose the input, and they can change it anyway. */
uint64_t beat_entry_hash(const char *s, size_t len)
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
static const char *entry_task(const beat_entry *e)
{
    return e->str + e->namelen + 1;
}

const char *beat_entry_queue(const beat_entry *e)
{
    const char *task = entry_task(e);
    return task + strlen(task) + 1;
}

char *beat_entry_message(const beat_entry *e, int64_t tick_ms, int64_t now_ms,
                         size_t *len)
{
    const char *task = entry_task(e), *queue = beat_entry_queue(e);
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

int beat_entry_check(const tq_sched *s, char *err, size_t errlen)
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
static beat_entry *entry_bad(const char *name, size_t namelen, uint64_t hash)
{
    beat_entry *e = calloc(1, sizeof *e + namelen + 1);
    if (!e)
        return NULL;
    memcpy(e->str, name, namelen);
    e->namelen = (uint32_t)namelen;
    e->hash = hash;
    e->namehash = beat_entry_hash(name, namelen);
    e->last = e->next = BEAT_ENTRY_NO_TICK;
    e->hpos = BEAT_HEAP_NONE;
    return e;
}

beat_entry *beat_entry_new(const char *name, size_t namelen, const char *text,
                           size_t textlen, const char *default_tz, const char *where)
{
    char err[512] = "", nm[BEAT_ENTRY_SHOWN_MAX];
    uint64_t hash = beat_entry_hash(text, textlen);
    tq_sched s;
    int rc = tq_sched_decode_text(&s, text, textlen, default_tz, err, sizeof err);
    if (rc == 0 && beat_entry_name_cmp(s.name, strlen(s.name), name, namelen) != 0)
        rc = tq_err_set(TQ_EDECODE, err, sizeof err, "the definition's name is '%s'",
                        s.name);
    /* A message is about as long as its definition: only a long one may
     * be too big once encoded. */
    if (rc == 0 && textlen > TQ_MSG_MAX / 2)
        rc = beat_entry_check(&s, err, sizeof err);
    if (rc < 0) {
        if (rc != TQ_ENOMEM)
            tq_warn("schedule '%s' in %s is skipped: %s",
                    beat_entry_shown(name, namelen, nm, sizeof nm), where, err);
        tq_sched_deinit(&s);
        return rc == TQ_ENOMEM ? NULL : entry_bad(name, namelen, hash);
    }
    size_t alen, klen;
    char *args = tq_msg_dump_json(s.args, &alen),
         *kwargs = tq_msg_dump_json(s.kwargs, &klen);
    size_t tlen = strlen(s.task), qlen = strlen(s.queue);
    size_t clen = s.rule.kind == TQ_SCHED_CRON ? strlen(s.cron) : 0;
    beat_entry *e = NULL;
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
        e->namehash = beat_entry_hash(name, namelen);
        e->ok = 1;
        e->enabled = (uint8_t)s.enabled;
        e->catchup = (uint8_t)s.catchup;
        e->timeout = s.timeout;
        e->expires = s.expires;
        e->max_retries = s.max_retries;
        e->last = e->next = BEAT_ENTRY_NO_TICK;
        e->hpos = BEAT_HEAP_NONE;
    }
    free(args);
    free(kwargs);
    tq_sched_deinit(&s);
    return e;
}

void beat_entry_log(const beat_entry *e, const char *what, tq_log_level level)
{
    char nm[BEAT_ENTRY_SHOWN_MAX];
    if (level < tq_log_min || !e->ok)
        return; /* a bad one has been warned about */
    beat_entry_shown(e->str, e->namelen, nm, sizeof nm);
    const char *task = entry_task(e), *queue = beat_entry_queue(e);
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

int64_t beat_entry_due(const beat_entry *e)
{
    return e->retry > e->next ? e->retry : e->next;
}

int beat_entry_before(const void *a, const void *b)
{
    const beat_entry *x = a, *y = b;
    int64_t dx = beat_entry_due(x), dy = beat_entry_due(y);
    if (dx != dy)
        return dx < dy;
    return beat_entry_name_cmp(x->str, x->namelen, y->str, y->namelen) < 0;
}
