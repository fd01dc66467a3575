/* The beat: a leader-elected scheduler that publishes the ticks of the
 * schedules kept in P:schedules as task messages on their queues.
 *
 * Any number of beats may run; the one holding the lease P:beat:leader
 * publishes, the others stand by and take over when the lease expires (or is
 * released on a clean stop). Publishing a tick is one Lua script that checks
 * the lease and advances P:schedule-state, so a tick is published at most
 * once by all beats together, and a failover loses none (see the catch-up
 * rule at beat_catch_up()).
 *
 * A beat is one thread with one Redis connection. Its loop is a sequence of
 * passes, beat_step(), each given "now"; a pass renews the lease and reloads
 * the schedules when that is due (every BEAT_HOUSEKEEPING_MS, more often for
 * short leases), then publishes what is due, and says how long to sleep. */
#ifndef TQ_BEAT_H
#define TQ_BEAT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/sched.h"

#define BEAT_BATCH_MAX 1000        /* ticks published per pass, in one pipeline */
#define BEAT_HOUSEKEEPING_MS 1000  /* lease renewal and schedule reload period */
#define BEAT_GAP_SLACK_MS 1000     /* a gap up to lease + this is a failover gap */
#define BEAT_SLEEP_MAX_MS 1000     /* a pass never sleeps longer (clock jumps) */

typedef struct beat beat;

/* Builds a beat from cfg (borrowed; what is needed is copied): reads and
 * checks the --schedules file, if any, without touching Redis. Returns a new
 * beat (beat_free() it), or NULL with a sentence in err naming the problem
 * (a bad file or option: exit 2), or with err set to "" when out of memory. */
beat *beat_new(const tq_config *cfg, char *err, size_t errlen);

/* Frees b and closes its connection; does not touch the lease (see
 * beat_resign()). NULL does nothing. */
void beat_free(beat *b);

/* Runs one pass at wall time now_ms and monotonic time mono_ms: seeds the
 * file's schedules if that has not succeeded yet, renews the lease and
 * reloads P:schedules and P:schedule-state when due, then, as the leader,
 * publishes every due tick (at most BEAT_BATCH_MAX, pipelined). Redis being
 * down is logged and retried later. Returns the milliseconds to sleep before
 * the next pass (0 to BEAT_SLEEP_MAX_MS). Blocks on Redis round trips. */
int64_t beat_step(beat *b, int64_t now_ms, int64_t mono_ms);

/* Loops beat_step() with precise monotonic sleeps until *stop is set, then
 * releases the lease (beat_resign()). Blocks. */
void beat_run(beat *b, volatile sig_atomic_t *stop);

/* Releases the lease if this beat holds it, so a standby takes over at once.
 * Returns 1 if released, 0 if not held, or a negative TQ_E... code. */
int beat_resign(beat *b);

/* 1 while this beat believes it holds the lease. */
int beat_is_leader(const beat *b);

/* The catch-up rule. next_ms is the first tick of s not yet published (the
 * tick after the last one in P:schedule-state). Returns the tick to publish
 * next: next_ms itself if it is not due yet (> now_ms) or if it is more
 * recent than now_ms - (lease_ms + BEAT_GAP_SLACK_MS) — a failover gap, in
 * which every missed tick is published, oldest first; otherwise all beats
 * were down, and only the most recent due tick is published (Celery's
 * behaviour), the older ones are skipped. Pure. */
int64_t beat_catch_up(const tq_sched *s, int64_t next_ms, int64_t now_ms, int64_t lease_ms);

#endif
