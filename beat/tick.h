/* beat_tick: which tick of a schedule the beat publishes next: the first
 * one of an entry, from what is known of it, and the catch-up rule for
 * ticks that are overdue, with the log lines that say what it skipped.
 * Pure functions of the entry, the instant and the rule's parameters, but
 * for the logging. */
#ifndef TQ_BEAT_TICK_H
#define TQ_BEAT_TICK_H

#include <stddef.h>
#include <stdint.h>

#include "beat/entry.h"
#include "common/sched.h"

#define BEAT_TICK_GAP_SLACK_MS 1000 /* a tick up to lease + this late is a failover's */
#define BEAT_TICK_CATCHUP_LOGS 10   /* catch-ups logged one by one per pass (info) */
#define BEAT_TICK_COUNT_CAP 100000  /* missed ticks counted for a log line, at most */

/* What the catch-ups of one publishing pass came to, for its summary. */
typedef struct {
    size_t caught_up; /* schedules caught up in this pass */
    int64_t skipped;  /* and the missed ticks they skipped */
} beat_tick_pass;

/* The next tick of e from what is known: the tick after the last one
 * published; for a definition known since this beat's first load with
 * nothing published yet, the first tick at or after now_ms; for one added,
 * changed or re-enabled while running, never a tick from before it
 * appeared. The catch-up rule then decides, at publish time, what happens
 * to ticks that are overdue. */
int64_t beat_tick_first(const beat_entry *e, int64_t now_ms);

/* The number of ticks of r in [from_ms, to_ms], counting at most cap. */
int64_t beat_tick_count(const tq_sched_rule *r, int64_t from_ms, int64_t to_ms,
                        int64_t cap);

/* The catch-up rule. next_ms is the first tick of r not yet published.
 * Returns the tick to publish next:
 * - next_ms itself if it is not due yet (> now_ms), or if it is at most
 *   lease_ms + BEAT_TICK_GAP_SLACK_MS late: a failover's gap, in which
 *   every tick is published, oldest first;
 * - otherwise no beat ran when it was due, and policy decides: LATEST gives
 *   the most recent due tick (the older ones are skipped), NONE the first
 *   tick after now_ms (all are skipped), ALL next_ms again unless more than
 *   catchup_max ticks are due, and then the oldest of the catchup_max most
 *   recent ones.
 * Pure. */
int64_t beat_tick_catch_up(const tq_sched_rule *r, tq_sched_catchup policy,
                           int catchup_max, int64_t next_ms, int64_t now_ms,
                           int64_t lease_ms);

/* Logs, once per catch-up, what beat_tick_catch_up() did to e's overdue
 * ticks (t is the tick it chose at now_ms), and counts it in *pass: the
 * first BEAT_TICK_CATCHUP_LOGS schedules of a pass at info level, the
 * others at debug level, so that a million schedules after an outage are
 * one line (the caller's summary). Sets or clears e->catching_up. */
void beat_tick_log_catch_up(beat_tick_pass *pass, beat_entry *e, int64_t t,
                            int64_t now_ms, int64_t lease_ms, int catchup_max);

#endif
