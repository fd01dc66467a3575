/* Redis key names: the only code that formats them.
 *
 * Every key is "<prefix>:<family>" or "<prefix>:<family>:<arg>" (see
 * docs/PROTOCOL.md). Lua scripts that must name a key per message (a lock,
 * a done marker) get the family's stem, "<prefix>:<family>:", from
 * tq_keys_stem() as an argument and only append the id. */
#ifndef TQ_KEYS_H
#define TQ_KEYS_H

#include <stddef.h>

/* Longest key, with the NUL. A prefix is at most 64 bytes, a family name 16,
 * an argument (task id) 256. */
#define TQ_KEYS_MAX 352

typedef enum {
    TQ_KEY_QUEUE,          /* list, arg: queue name */
    TQ_KEY_PROCESSING,     /* list, arg: worker id */
    TQ_KEY_WORKERS,        /* zset: worker id -> last heartbeat ms */
    TQ_KEY_WORKER,         /* hash, arg: worker id */
    TQ_KEY_LOCK,           /* string, arg: task id */
    TQ_KEY_RESULT,         /* string (JSON), arg: task id; the done marker once final */
    TQ_KEY_DELAYED,        /* zset: message -> due ms */
    TQ_KEY_DEAD,           /* list of dead letters */
    TQ_KEY_SCHEDULES,      /* hash: name -> JSON definition */
    TQ_KEY_SCHEDULE_STATE, /* hash: name -> last published tick ms */
    TQ_KEY_BEAT_LEADER,    /* string: leader beat id, PX lease */
    TQ_KEY_EVENTS,         /* stream */
    TQ_KEY_HISTORY,        /* list, arg: schedule name */
    TQ_KEY_STATS,          /* hash of counters: published, processed, ... */
    TQ_KEY_REAPER,         /* string: the reaper's short lock */
    TQ_KEY_DELIVERIES,     /* hash: task id -> deliveries of its current attempt */
    TQ_KEY_PAUSED,         /* set of paused queue names */
    TQ_KEY_COUNTER,        /* string, arg: counter name (tq_task_count; the timer) */
    TQ_KEY_TASKS,          /* zset: finished-task index, "<status>\t<queue>\t<task>\t
                              <schedule>\t<id>" -> finished ms (newest 100 000) */
    TQ_KEY_MINUTE,         /* hash, arg: Unix minute: counters of that minute */
    TQ_KEY_METRICS,        /* hash: labelled counters and histograms for /metrics */
    TQ_KEY_AUDIT,          /* stream: every mutation made through tickq-web */
    TQ_KEY_COUNT_
} tq_key;

/* Writes the key of family k with argument arg (NULL or "" for families
 * without one) into buf (TQ_KEYS_MAX bytes is always enough). Returns the
 * length, or TQ_ETOOBIG if it does not fit (buf then holds ""). */
int tq_keys_fmt(const char *prefix, tq_key k, const char *arg, char *buf, size_t len);

/* Writes "<prefix>:<family>:" for a family that takes an argument, for Lua
 * scripts that append the argument themselves. Returns the length. */
int tq_keys_stem(const char *prefix, tq_key k, char *buf, size_t len);

/* The family's name ("queue", "lock", ...): static storage. */
const char *tq_keys_family(tq_key k);

#endif
