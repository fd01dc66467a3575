/* The beat: a leader-elected scheduler that publishes the ticks of the
 * schedules kept in P:schedules as task messages on their queues, and
 * promotes due delayed messages (P:delayed).
 *
 * Any number of beats may run; the one holding the lease P:beat:leader
 * publishes, the others stand by and take over when the lease expires (or is
 * released on a clean stop). The lease is taken and renewed by one script
 * that renews only for its owner. Publishing is one Lua script per batch of
 * ticks that checks the lease and advances P:schedule-state, so a tick is
 * published at most once by all beats together, a paused old leader
 * publishes nothing, and a new leader continues from the state, so a
 * failover loses no tick (see the catch-up rule at beat_catch_up()).
 *
 * A beat is one thread with one Redis connection. Its loop is a sequence of
 * passes, beat_step(), each given "now". A pass renews the lease when that
 * is due (every BEAT_HOUSEKEEPING_MS, more often for short leases), checks
 * whether P:schedules changed (every BEAT_CHECK_MS, with WATCH: one cheap
 * round trip when nothing changed), advances a reload of the changed hash
 * (HSCAN, in slices, so a million schedules never block Redis or the ticks),
 * reads P:schedule-state for what it has not seen as leader, publishes what
 * is due, promotes delayed messages, and says how long to sleep. */
#ifndef TQ_BEAT_H
#define TQ_BEAT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/config.h"
#include "common/sched.h"

#define BEAT_PASS_MAX 5000        /* ticks published per pass, pipelined */
#define BEAT_SCRIPT_TICKS 100     /* ticks per call of the publish script */
#define BEAT_HOUSEKEEPING_MS 1000 /* lease renewal period */
#define BEAT_CHECK_MS 250         /* how often P:schedules is checked for changes */
#define BEAT_PROMOTE_MS 100       /* how often the leader promotes delayed messages */
#define BEAT_SCAN_COUNT 5000      /* HSCAN COUNT of a reload */
#define BEAT_SCAN_BUDGET_MS 20    /* reload work per pass before ticks get a turn */
#define BEAT_SYNC_CHUNK 1000      /* schedule names per HMGET of P:schedule-state */
#define BEAT_GAP_SLACK_MS 1000    /* a tick up to lease + this late is a failover's */
#define BEAT_CATCHUP_LOGS 10      /* catch-ups logged one by one per pass (info) */
#define BEAT_SLEEP_MAX_MS 1000    /* a pass never sleeps longer (clock jumps) */

typedef struct beat beat;

/* Builds a beat from cfg (borrowed; what is needed is copied): checks --tz
 * and reads and checks the --schedules file, if any (at most
 * TQ_SCHED_FILE_MAX bytes, in time linear in its size), without touching
 * Redis. Returns a new beat (beat_free() it), or NULL with a sentence in err
 * naming the problem (a bad file or option: exit 2), or with err set to ""
 * when out of memory. A SIGTERM or SIGINT (tq_proc_stop) while the file is
 * read stops the reading: the beat is returned without the file's
 * schedules, and beat_run() returns at once (nothing was upserted). */
beat *beat_new(const tq_config *cfg, char *err, size_t errlen);

/* Frees b and closes its connection; does not touch the lease (see
 * beat_resign()). NULL does nothing. */
void beat_free(beat *b);

/* Runs one pass at wall time now_ms and monotonic time mono_ms (see above).
 * Redis being down is logged and retried later. Returns the milliseconds to
 * sleep before the next pass (0 to BEAT_SLEEP_MAX_MS). Blocks on Redis
 * round trips; taking over as leader with a very large P:schedule-state
 * blocks for as long as reading it takes. */
int64_t beat_step(beat *b, int64_t now_ms, int64_t mono_ms);

/* Loops beat_step() with precise monotonic sleeps until *stop is set, then
 * releases the lease (beat_resign()). Blocks. */
void beat_run(beat *b, volatile sig_atomic_t *stop);

/* Releases the lease if this beat holds it, so a standby takes over at once.
 * Returns 1 if released, 0 if not held, or a negative TQ_E... code. */
int beat_resign(beat *b);

/* 1 while this beat believes it holds the lease. */
int beat_is_leader(const beat *b);

/* The catch-up rule. next_ms is the first tick of r not yet published.
 * Returns the tick to publish next:
 * - next_ms itself if it is not due yet (> now_ms), or if it is at most
 *   lease_ms + BEAT_GAP_SLACK_MS late: a failover's gap, in which every
 *   tick is published, oldest first;
 * - otherwise no beat ran when it was due, and policy decides: LATEST gives
 *   the most recent due tick (the older ones are skipped), NONE the first
 *   tick after now_ms (all are skipped), ALL next_ms again unless more than
 *   catchup_max ticks are due, and then the oldest of the catchup_max most
 *   recent ones.
 * Pure. */
int64_t beat_catch_up(const tq_sched_rule *r, tq_sched_catchup policy, int catchup_max,
                      int64_t next_ms, int64_t now_ms, int64_t lease_ms);

/* The dry run (--next-runs EXPR [--tz ZONE] [--from ISO] [--count N]):
 * prints the next cfg->count fire times of the cron expression after
 * --from (default now), one ISO-8601 UTC instant per line on out. Returns
 * the exit code: 0, or 2 after a sentence on errout for a bad expression,
 * zone or time (nothing is printed on out then). No Redis. */
int beat_dry_run(const tq_config *cfg, FILE *out, FILE *errout);

#endif
