/* Messages due later: each queue's P:{q}:delayed, a zset of message -> due
 * time (Unix ms), fed by retries with backoff and by clients that enqueue
 * with an ETA (`ZADD 'tickq:{default}:delayed' <due ms> '<message>'`).
 *
 * Promotion moves due messages to the back of their queue in one script:
 * any number of promoters (the beat leader, every worker) may run it at
 * once, and each message is moved exactly once. */
#ifndef TQ_DELAYED_H
#define TQ_DELAYED_H

#include <stdint.h>

#include "common/conn.h"

#define TQ_DELAYED_BATCH 1000 /* messages one promotion moves at most */

/* Moves up to max messages due at or before now_ms from queue's
 * P:{q}:delayed to the back of P:{q}:queue. While the queue key is of the
 * wrong type, due messages stay where they are. Returns how many were
 * moved, or TQ_EREDIS / TQ_EREPLY (P:{q}:delayed of the wrong type:
 * nothing moves). A problem is logged when it starts and when it ends, once
 * per process, not once per call. One round trip. */
int tq_delayed_promote(tq_conn *c, const char *prefix, const char *queue, int64_t now_ms,
                       int max);

/* The same, and sets *next_due_ms to when to promote again: the due time
 * of the earliest message not yet due (INT64_MAX when none), now_ms when
 * more than max were due, and at most a second ahead while messages are
 * stuck behind a key of the wrong type. */
int tq_delayed_promote_next(tq_conn *c, const char *prefix, const char *queue,
                            int64_t now_ms, int max, int64_t *next_due_ms);

/* Promotes the due messages of every queue in use (P:{@}:queues), up to max
 * per queue. Returns how many were moved in all, or TQ_EREDIS when Redis
 * is away. (The beat leader's promotion: workers promote their own
 * queues.) */
int tq_delayed_promote_all(tq_conn *c, const char *prefix, int64_t now_ms, int max);

#endif
