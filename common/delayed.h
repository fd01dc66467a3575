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
 * message without a valid queue becomes a dead letter). A message whose
 * destination key is of the wrong type stays in P:delayed until it is
 * fixed, and the ones behind it go on. Returns how many were moved, or
 * TQ_EREDIS / TQ_EREPLY (P:delayed of the wrong type: nothing moves). A
 * problem is logged when it starts and when it ends, once per process, not
 * once per call. One round trip. */
int tq_delayed_promote(tq_conn *c, const char *prefix, int64_t now_ms, int max);

/* The same, and sets *next_due_ms to when to promote again: the due time
 * of the earliest message not yet due (INT64_MAX when none), now_ms when
 * more than max were due, and at most a second ahead while messages are
 * stuck behind a key of the wrong type. */
int tq_delayed_promote_next(tq_conn *c, const char *prefix, int64_t now_ms, int max,
                            int64_t *next_due_ms);

#endif
