/* Key names. */
#include "common/keys.h"
#include "common/err.h"

#include <stdio.h>

static const char *const families[TQ_KEY_COUNT_] = {
    [TQ_KEY_QUEUE] = "queue",
    [TQ_KEY_PROCESSING] = "processing",
    [TQ_KEY_WORKERS] = "workers",
    [TQ_KEY_WORKER] = "worker",
    [TQ_KEY_LOCK] = "lock",
    [TQ_KEY_RESULT] = "result",
    [TQ_KEY_DELAYED] = "delayed",
    [TQ_KEY_DEAD] = "dead",
    [TQ_KEY_SCHEDULES] = "schedules",
    [TQ_KEY_SCHEDULE_STATE] = "schedule-state",
    [TQ_KEY_BEAT_LEADER] = "beat:leader",
    [TQ_KEY_EVENTS] = "events",
    [TQ_KEY_HISTORY] = "history",
    [TQ_KEY_STATS] = "stats",
    [TQ_KEY_REAPER] = "reaper",
    [TQ_KEY_DELIVERIES] = "deliveries",
    [TQ_KEY_PAUSED] = "paused",
    [TQ_KEY_COUNTER] = "counter",
    [TQ_KEY_TASKS] = "tasks",
    [TQ_KEY_MINUTE] = "minute",
    [TQ_KEY_METRICS] = "metrics",
    [TQ_KEY_AUDIT] = "audit",
};

const char *tq_keys_family(tq_key k)
{
    return (unsigned)k < TQ_KEY_COUNT_ ? families[k] : "?";
}

int tq_keys_fmt(const char *prefix, tq_key k, const char *arg, char *buf, size_t len)
{
    int n;
    if (arg && *arg)
        n = snprintf(buf, len, "%s:%s:%s", prefix, tq_keys_family(k), arg);
    else
        n = snprintf(buf, len, "%s:%s", prefix, tq_keys_family(k));
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = '\0';
        return TQ_ETOOBIG;
    }
    return n;
}

int tq_keys_stem(const char *prefix, tq_key k, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s:%s:", prefix, tq_keys_family(k));
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = '\0';
        return TQ_ETOOBIG;
    }
    return n;
}
