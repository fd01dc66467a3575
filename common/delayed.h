/* Messages due later: P:delayed, a zset of message -> due time (Unix ms),
 * fed by retries with backoff and by clients that enqueue with an ETA
 * (`ZADD tickq:delayed <due ms> '<message>'`).
 *
 * Promotion moves due messages to their queues in one script: any number of
 * promoters (the beat leader, every worker) may run it at once, and each
 * message is moved exactly once. */
#ifndef TQ_DELAYED_H
#define TQ_DELAYED_H

#include <stdint.h>

#include "common/conn.h"

#define TQ_DELAYED_BATCH 1000 /* messages one promotion moves at most */

/* Moves up to max messages due at or before now_ms from P:delayed to the
 * back of their queue (the message's "queue" field, "default" if absent; a
 * message without a valid queue becomes a dead letter). Returns how many
 * were moved, or TQ_EREDIS / TQ_EREPLY. One round trip. */
int tq_delayed_promote(tq_conn *c, const char *prefix, int64_t now_ms, int max);

/* The same, and sets *next_due_ms to the due time of the earliest message
 * left (INT64_MAX when none), so a promoter can sleep until then. */
int tq_delayed_promote_next(tq_conn *c, const char *prefix, int64_t now_ms, int max,
                            int64_t *next_due_ms);

#endif
