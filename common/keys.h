/* Redis key names: the only code that formats them.
 *
 * Layout v2 (docs/PROTOCOL.md): every key carries a Redis Cluster hash tag,
 * so that each broker function touches one slot.
 *
 *   P:{<queue>}:<family>[:<arg>]   a queue's keys: its list, its processing
 *                                  lists, its tasks' locks and results, ...
 *   P:{@}:<family>[:<arg>]         the rest: workers, schedules, the leader
 *
 * '@' is no queue name's (queue names are 1 to 64 of A-Z a-z 0-9 _ . : -),
 * so the two never meet. Lua functions that must name a key per message (a
 * lock, a result) get the family's stem, "P:{<queue>}:<family>:", from
 * tq_keys_stem() and only append the id. */
#ifndef TQ_KEYS_H
#define TQ_KEYS_H

#include <stddef.h>

/* Longest key, with the NUL: a prefix of 64 bytes, a tag of 66 ("{queue}"),
 * a family of 16, an argument (task id) of 256, and the colons. */
#define TQ_KEYS_MAX 416

/* The tag of the keys that belong to no queue. */
#define TQ_KEYS_GLOBAL "@"

typedef enum {
    /* A queue's keys (queue given): */
    TQ_KEY_QUEUE,      /* list: pending messages */
    TQ_KEY_PROCESSING, /* list, arg: worker id: what it took from this queue */
    TQ_KEY_CONSUMERS,  /* zset: worker id -> last heartbeat ms, of its consumers */
    TQ_KEY_LOCK,       /* string, arg: task id */
    TQ_KEY_RESULT,     /* string (JSON), arg: task id; the done marker once final */
    TQ_KEY_DELAYED,    /* zset: message -> due ms */
    TQ_KEY_DEAD,       /* list of dead letters */
    TQ_KEY_HISTORY,    /* list, arg: schedule name */
    TQ_KEY_STATS,      /* hash of counters: published, processed, ... */
    TQ_KEY_DELIVERIES, /* hash: task id -> deliveries of its current attempt */
    TQ_KEY_PAUSED,     /* string: present while the queue is paused */
    TQ_KEY_COUNTER,    /* string, arg: counter name (tq_task_count; the timer) */
    TQ_KEY_TASKS,      /* zset: finished-task index, "<status>\t<task>\t<schedule>\t
                          <id>" -> finished ms (newest 100 000) */
    TQ_KEY_MINUTE,     /* hash, arg: Unix minute: counters of that minute */
    TQ_KEY_METRICS,    /* hash: labelled counters and histograms for /metrics */
    TQ_KEY_PUBLISHED,  /* zset: tick id -> tick ms, what the beat pushed (dedupe) */
    /* Either: */
    TQ_KEY_EVENTS, /* stream: a queue's task events; global: workers' and beats' */
    /* Global keys (queue NULL): */
    TQ_KEY_QUEUES,         /* set: every queue name in use */
    TQ_KEY_WORKERS,        /* zset: worker id -> last heartbeat ms */
    TQ_KEY_WORKER,         /* hash, arg: worker id */
    TQ_KEY_SCHEDULES,      /* hash: name -> JSON definition */
    TQ_KEY_SCHEDULE_STATE, /* hash: name -> last published tick ms */
    TQ_KEY_BEAT_LEADER,    /* string: leader beat id, PX lease */
    TQ_KEY_REAPER,         /* string: the reaper's short lock */
    TQ_KEY_AUDIT,          /* stream: every mutation made through tickq-web */
    TQ_KEY_COUNT_
} tq_key;

/* Writes the key of family k, of queue (NULL for a global key) with
 * argument arg (NULL or "" for families without one) into buf (TQ_KEYS_MAX
 * bytes is always enough for a valid queue name). Returns the length,
 * TQ_ETOOBIG if it does not fit, or TQ_EINVAL when the family does not
 * take that scope (a queue for a global family, none for a queue's); buf
 * then holds "". */
int tq_keys_fmt(const char *prefix, tq_key k, const char *queue, const char *arg,
                char *buf, size_t len);

/* Writes "P:{<queue>}:<family>:" (or "P:{@}:<family>:" with queue NULL) for
 * a family that takes an argument, for Lua functions that append it
 * themselves. Returns the length, or an error as tq_keys_fmt(). */
int tq_keys_stem(const char *prefix, tq_key k, const char *queue, char *buf, size_t len);

/* The family's name ("queue", "lock", ...): static storage. */
const char *tq_keys_family(tq_key k);

/* 1 if family k may be a queue's (queue given), 2 if global (queue NULL),
 * 3 if either. */
int tq_keys_scope(tq_key k);

#endif
