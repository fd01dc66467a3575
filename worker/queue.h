/* The worker's side of the broker: every Redis operation of a worker, each
 * one script so that it is atomic, with the fewest round trips.
 *
 *   fetch      RPOP up to N messages from a queue that is not paused
 *              (in priority order), drop duplicates (done, or locked by a
 *              live worker), count the delivery (past max_deliveries: a
 *              poison dead letter), take each lock, LPUSH into
 *              P:{q}:processing:<id>: one round trip for N messages.
 *   wait       BLMOVE when every queue was empty, then the same claim (a
 *              message of a queue paused meanwhile goes back).
 *   complete   for N messages: ack (LREM), and only if the ack removed it,
 *              one of: final result (the done marker) + history + effect (success,
 *              failure, expired); the next attempt into P:{q}:delayed (retry);
 *              the dead letter. Releases the locks, clears the delivery
 *              count, records the events, and feeds the monitoring data:
 *              the finished-task index P:{q}:tasks, the counters of the
 *              minute P:{q}:minute:<m> and P:{q}:metrics (common/metrics.h).
 *              Retrying after a lost reply is safe: a second ack removes
 *              nothing and applies nothing.
 *   requeue    move a worker's processing lists back to their queues and
 *              release its locks (shutdown, start-up, and the reaper).
 *   reap       requeue every consumer whose heartbeat is older than liveness.
 *   orphan     requeue one message of this worker's processing list that no
 *              thread holds: its fetch reply was lost (see worker.c).
 *
 * Every call touches one queue's keys (P:{q}:...) or only global ones
 * (P:{@}:...), never both: each is one Redis Cluster slot. The Lua
 * functions get key stems from common/keys and only append ids. */
#ifndef TQ_WORKER_QUEUE_H
#define TQ_WORKER_QUEUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/log.h"

#include "common/config.h"
#include "common/conn.h"
#include "common/keys.h"
#include "common/msg.h"

#define WORKER_QUEUE_LOCK_MARGIN_MS 5000 /* lock TTL = task timeout + this */
#define WORKER_QUEUE_BATCH_MAX 64        /* messages one fetch takes at most */
#define WORKER_QUEUE_EVENTS_MAX 10000    /* a stream is capped near this (MAXLEN ~) */
#define WORKER_WARN_EVERY_MS 30000       /* a repeated warning is logged this often */

/* tq_warn(), at most once per WORKER_WARN_EVERY_MS at each place it is
 * used: a key of the wrong type fails every call the same way until
 * someone fixes it, and one line says so without flooding the log. */
#define WORKER_WARN_LIMITED(...)                                                         \
    do {                                                                                 \
        static _Atomic int64_t last_;                                                    \
        int64_t now_ = tq_clock_mono_ms(), was_ = atomic_load(&last_);                   \
        if ((was_ == 0 || now_ - was_ >= WORKER_WARN_EVERY_MS) &&                        \
            atomic_compare_exchange_strong(&last_, &was_, now_))                         \
            tq_warn(__VA_ARGS__);                                                        \
    } while (0)

typedef enum {
    WORKER_OP_NONE = 0, /* leave it in processing (aborted: requeued later) */
    WORKER_OP_DONE,     /* ran (success, failure) or expired */
    WORKER_OP_RETRY,    /* failed; the next attempt goes to P:delayed */
    WORKER_OP_DEAD,     /* dead letter (undecodable, unknown task, retries used up) */
} worker_op;

/* One fetched message and, once run, its outcome. */
typedef struct {
    char *raw; /* owned: the exact bytes in processing */
    size_t len;
    int claimed; /* 1: locked (id is the locked id); 0: the broker could not read its id
                  */
    worker_op op;
    char id[TQ_MSG_ID_MAX];     /* "" when unknown */
    char task[TQ_MSG_NAME_MAX]; /* "" when unknown */
    const char *status;         /* success, failure, expired, retrying, dead */
    char *result;               /* owned: result JSON, NULL for none */
    size_t result_len;
    char *extra; /* owned: dead letter (DEAD) or next attempt (RETRY) */
    size_t extra_len;
    int64_t due_ms;               /* RETRY: when the next attempt is due */
    char effect_key[TQ_KEYS_MAX]; /* "" for none */
    int64_t effect_by;
    char schedule[TQ_MSG_NAME_MAX];  /* "" when not scheduled */
    int64_t started_ms, finished_ms; /* 0 when it did not run */
    char error[512];                 /* for the events */
    int applied;  /* set by complete: 1 applied, 0 lost, 2 its effect cannot be applied */
    int answered; /* complete's call for it answered (applied is set) */
    int qi;       /* the queue it was taken from: index in worker_queue.qk */
    int known;    /* 1: its task is one the worker knows (for the label) */
    int has_lateness;    /* a scheduled first attempt with scheduled_at, enqueued_at */
    int64_t lateness_ms; /* then enqueued_at - scheduled_at, >= 0 */
} worker_item;

/* The keys of one queue the worker consumes: all in the queue's slot. */
typedef struct {
    char name[TQ_CONFIG_NAME_MAX];
    char queue[TQ_KEYS_MAX], processing[TQ_KEYS_MAX], consumers[TQ_KEYS_MAX];
    char stats[TQ_KEYS_MAX], dead[TQ_KEYS_MAX], delayed[TQ_KEYS_MAX];
    char deliveries[TQ_KEYS_MAX], paused[TQ_KEYS_MAX], events[TQ_KEYS_MAX];
    char tasks[TQ_KEYS_MAX], metrics[TQ_KEYS_MAX];
    char lock_stem[TQ_KEYS_MAX], result_stem[TQ_KEYS_MAX], history_stem[TQ_KEYS_MAX];
    char processing_stem[TQ_KEYS_MAX], minute_stem[TQ_KEYS_MAX];
} worker_qkeys;

/* Key names and limits of one worker: a plain value, filled once. */
typedef struct {
    char id[TQ_CONFIG_NAME_MAX];
    worker_qkeys qk[TQ_CONFIG_QUEUES_MAX]; /* priority order */
    int nqueues;
    /* Global keys (P:{@}:...): */
    char workers[TQ_KEYS_MAX], worker_hash[TQ_KEYS_MAX], worker_stem[TQ_KEYS_MAX];
    char reaper[TQ_KEYS_MAX], queues[TQ_KEYS_MAX], events[TQ_KEYS_MAX];
    char prefix[TQ_CONFIG_NAME_MAX];
    int64_t liveness_ms, timeout_ms, done_ttl_ms, result_ttl_ms;
    int max_deliveries;
    int wait_replicas; /* --wait-replicas: WAIT after each completion batch */
    int64_t wait_timeout_ms;
} worker_queue;

/* Fills *q for worker id from cfg. Returns 0 or TQ_ETOOBIG. */
int worker_queue_init(worker_queue *q, const tq_config *cfg, const char *id);

/* Frees what items[0..n) own and zeroes them. */
void worker_queue_items_clear(worker_item *items, int n);

/* Takes up to max messages without blocking, from the queues in priority
 * order (one call per queue until max are taken), passing over those
 * paused[i] (may be NULL). Returns how many (items[0..) filled), or
 * TQ_EREDIS / TQ_EREPLY. Sets bit i of *bad_queues (may be NULL) when
 * queue i refused (a key of the wrong type): it was skipped. */
int worker_queue_fetch(tq_conn *c, const worker_queue *q, int64_t now_ms, int max,
                       const _Atomic int *paused, worker_item *items,
                       unsigned *bad_queues);

/* The text of an error reply, for logs; a fixed text for other replies.
 * Borrowed from r. */
const char *worker_queue_reply_error(const redisReply *r);

/* Blocks up to block_s seconds for one message of queue number qi, then
 * claims it. Returns 1 (item filled), 0 (none, a duplicate or poison
 * dropped, or the queue was paused meanwhile), or TQ_EREDIS / TQ_EREPLY. */
int worker_queue_wait(tq_conn *c, const worker_queue *q, int qi, int64_t now_ms,
                      double block_s, worker_item *item);

/* Reads each queue's P:{q}:paused: sets paused[i] to 1 for each of this
 * worker's queues that is paused. Returns 0 or a negative code. */
int worker_queue_paused(tq_conn *c, const worker_queue *q, int *paused);

/* Records a worker event (worker-online, worker-heartbeat,
 * worker-offline) in the global P:{@}:events. Returns 0 or a negative
 * code. */
int worker_queue_event(tq_conn *c, const worker_queue *q, const char *event,
                       int64_t now_ms);

/* Records that a task that is not fast began running: task-started, after
 * task-received unless it is a redelivery (its fetch recorded that); a
 * fast task's only event is its outcome, written by complete. Returns 0 or
 * a negative code. */
int worker_queue_started(tq_conn *c, const worker_queue *q, int64_t now_ms,
                         const worker_item *it);

/* Completes the items whose op is not NONE, one script per queue, and sets
 * their `applied` (2: the effect key cannot be added to, nothing done:
 * record a failure and complete again). Returns 0, or TQ_EREDIS /
 * TQ_EREPLY (then call again: a key of the wrong type refuses a queue's
 * whole batch before any write; the monitoring keys P:{q}:tasks,
 * P:{q}:metrics and P:{q}:minute:<m> never do: a wrong one is skipped with
 * a warning). */
int worker_queue_complete(tq_conn *c, const worker_queue *q, worker_item *items, int n,
                          int64_t now_ms);

/* Requeues this worker's processing list of each queue; with deregister,
 * also leaves each queue's consumers and the registry (P:{@}:workers and
 * its hash). Returns the number of messages moved, or a negative code. */
int worker_queue_requeue(tq_conn *c, const worker_queue *q, const char *instance,
                         int64_t now_ms, int deregister);

/* Who holds a worker id: another live process with the same id. */
typedef struct {
    int64_t heartbeat_ms; /* its last heartbeat, wall ms */
    char instance[40], host[64], pid[16];
} worker_holder;

/* Registers this process (instance: a random text unique to it) as the
 * worker q->id, and its queues in P:{@}:queues. Returns 1; 0 when another
 * instance heartbeats under this id within liveness (*holder says which,
 * nothing written); or a negative code. */
int worker_queue_register(tq_conn *c, const worker_queue *q, const char *instance,
                          int64_t now_ms, worker_holder *holder);

/* Records a heartbeat: the score in P:{@}:workers and the worker hash
 * (fields in info, a NULL-terminated list of name, value pairs, at most
 * 16) with a TTL, then the score in each queue's P:{q}:consumers. Returns
 * 1; 0 when another instance has taken the id over (nothing written); or a
 * negative code. */
int worker_queue_heartbeat(tq_conn *c, const worker_queue *q, const char *instance,
                           int64_t now_ms, const char *const *info);

/* Reaps dead workers (one reaper at a time, under P:{@}:reaper): each
 * queue in P:{@}:queues requeues its dead consumers' processing lists, and
 * the registry forgets them. Returns the number of messages requeued, or a
 * negative code. */
int worker_queue_reap(tq_conn *c, const worker_queue *q, int64_t now_ms);

/* Reads this worker's processing list of queue qi: *out is a new array
 * reply (free it with freeReplyObject). Returns 0 or a negative code. */
int worker_queue_list_processing(tq_conn *c, const worker_queue *q, int qi,
                                 redisReply **out);

/* Requeues raw if it is still in this worker's processing list of queue
 * qi, releasing this worker's lock on it. Returns 1 if requeued, 0 if it
 * was gone, or a negative code. */
int worker_queue_requeue_orphan(tq_conn *c, const worker_queue *q, int qi, int64_t now_ms,
                                const char *raw, size_t len);

#endif
