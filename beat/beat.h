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
 * failover loses no tick (see the catch-up rule at beat_tick_catch_up()).
 *
 * A beat is one thread with one Redis connection. Its loop is a sequence of
 * passes, beat_step(), each given "now". A pass renews the lease when that
 * is due (every BEAT_LEASE_PERIOD_MS, more often for short leases), checks
 * whether P:schedules changed (every BEAT_RELOAD_CHECK_MS, with WATCH: one
 * cheap round trip when nothing changed), advances a reload of the changed
 * hash (HSCAN, in slices, so a million schedules never block Redis or the
 * ticks), reads P:schedule-state for what it has not seen as leader,
 * publishes what is due, promotes delayed messages, and says how long to
 * sleep.
 *
 * This file is the composition; each concern is a module of beat/, in
 * reading order: seed (the --schedules file), lease, reload (change
 * detection and HSCAN) into table (the entries and their name index) of
 * entry (one decoded schedule), heap (the next-due order), sync (reading
 * P:schedule-state), tick (first ticks and the catch-up rule), publish
 * (the publish script), with array (growth and huge pages) underneath;
 * dryrun is --next-runs. */
#ifndef TQ_BEAT_H
#define TQ_BEAT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define BEAT_PROMOTE_MS 100    /* how often the leader promotes delayed messages */
#define BEAT_SLEEP_MAX_MS 1000 /* a pass never sleeps longer (clock jumps) */

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

/* Runs one pass at wall time now_ms and monotonic time mono_ms (see
 * above): now_ms is the instant of the schedule grid, the only wall time
 * the pass uses (ticks, catch-up, messages' enqueued_at, delayed
 * promotion); mono_ms times the lease, the change checks and the
 * promotion. Redis being down is logged and retried later. Returns the
 * milliseconds to sleep before the next pass (0 to BEAT_SLEEP_MAX_MS).
 * Blocks on Redis round trips; taking over as leader with a very large
 * P:schedule-state blocks for as long as reading it takes. */
int64_t beat_step(beat *b, int64_t now_ms, int64_t mono_ms);

/* Loops beat_step() with precise monotonic sleeps until *stop is set, then
 * releases the lease (beat_resign()). Reads the clocks once per pass.
 * Blocks. Returns 0, or 2 when Redis holds data of the old key layout
 * (tq_broker_old_layout(): logged, nothing written). */
int beat_run(beat *b, volatile sig_atomic_t *stop);

/* Releases the lease if this beat holds it, so a standby takes over at once.
 * Returns 1 if released, 0 if not held, or a negative TQ_E... code. */
int beat_resign(beat *b);

/* 1 while this beat believes it holds the lease. */
int beat_is_leader(const beat *b);

#endif
