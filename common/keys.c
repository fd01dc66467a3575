/* Key names. */
#include "common/keys.h"
#include "common/err.h"

#include <stdio.h>

#define Q 1 /* a queue's */
#define G 2 /* global */

static const struct {
    const char *name;
    int scope;
} families[TQ_KEY_COUNT_] = {
    [TQ_KEY_QUEUE] = {"queue", Q},
    [TQ_KEY_PROCESSING] = {"processing", Q},
    [TQ_KEY_CONSUMERS] = {"consumers", Q},
    [TQ_KEY_LOCK] = {"lock", Q},
    [TQ_KEY_RESULT] = {"result", Q},
    [TQ_KEY_DELAYED] = {"delayed", Q},
    [TQ_KEY_DEAD] = {"dead", Q},
    [TQ_KEY_HISTORY] = {"history", Q},
    [TQ_KEY_STATS] = {"stats", Q},
    [TQ_KEY_DELIVERIES] = {"deliveries", Q},
    [TQ_KEY_PAUSED] = {"paused", Q},
    [TQ_KEY_COUNTER] = {"counter", Q},
    [TQ_KEY_TASKS] = {"tasks", Q},
    [TQ_KEY_MINUTE] = {"minute", Q},
    [TQ_KEY_METRICS] = {"metrics", Q},
    [TQ_KEY_PUBLISHED] = {"published", Q},
    [TQ_KEY_EVENTS] = {"events", Q | G},
    [TQ_KEY_QUEUES] = {"queues", G},
    [TQ_KEY_WORKERS] = {"workers", G},
    [TQ_KEY_WORKER] = {"worker", G},
    [TQ_KEY_SCHEDULES] = {"schedules", G},
    [TQ_KEY_SCHEDULE_STATE] = {"schedule-state", G},
    [TQ_KEY_BEAT_LEADER] = {"leader", G},
    [TQ_KEY_REAPER] = {"reaper", G},
    [TQ_KEY_AUDIT] = {"audit", G},
};

const char *tq_keys_family(tq_key k)
{
    return (unsigned)k < TQ_KEY_COUNT_ ? families[k].name : "?";
}

int tq_keys_scope(tq_key k)
{
    return (unsigned)k < TQ_KEY_COUNT_ ? families[k].scope : 0;
}

/* Writes "P:{tag}:family" and ":arg" (or ":" with stem) into buf. */
static int put(const char *prefix, tq_key k, const char *queue, const char *arg, int stem,
               char *buf, size_t len)
{
    int n = TQ_EINVAL;
    if ((unsigned)k < TQ_KEY_COUNT_ && (families[k].scope & (queue ? Q : G)) &&
        (!queue || *queue))
        n = snprintf(buf, len, "%s:{%s}:%s%s%s", prefix, queue ? queue : TQ_KEYS_GLOBAL,
                     families[k].name, stem || (arg && *arg) ? ":" : "",
                     stem || !arg ? "" : arg);
    if (n >= 0 && (size_t)n >= len)
        n = TQ_ETOOBIG;
    if (n < 0 && len)
        buf[0] = '\0';
    return n;
}

int tq_keys_fmt(const char *prefix, tq_key k, const char *queue, const char *arg,
                char *buf, size_t len)
{
    return put(prefix, k, queue, arg, 0, buf, len);
}

int tq_keys_stem(const char *prefix, tq_key k, const char *queue, char *buf, size_t len)
{
    return put(prefix, k, queue, NULL, 1, buf, len);
}
