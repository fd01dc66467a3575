/* beat_sync: reading P:schedule-state, what has been published, by this
 * beat or another, into the entries' last ticks.
 *
 * A beat reads it for every schedule when it becomes the leader (or, as
 * the leader, gets a new connection: Redis may have restarted or failed
 * over), and for a definition that
 * appeared or changed; after that, as the leader, it knows the state,
 * because only it writes there. HMGETs of BEAT_SYNC_CHUNK names,
 * BEAT_SYNC_PIPELINE of them in flight. A tick read replaces the entry's
 * last tick even when it is older (the publications after it were lost
 * with a failed master or a restart: they are due again); a missing field
 * leaves it. A value that is not a tick holds its schedule back (logged
 * once) until it is a tick again or deleted. */
#ifndef TQ_BEAT_SYNC_H
#define TQ_BEAT_SYNC_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "beat/entry.h"
#include "beat/heap.h"
#include "beat/table.h"
#include "common/conn.h"
#include "common/keys.h"

#define BEAT_SYNC_CHUNK 1000                  /* schedule names per HMGET */
#define BEAT_SYNC_PIPELINE 8                  /* HMGETs in flight */
#define BEAT_SYNC_TICK_MAX 1000000000000000LL /* ms; later state values are ignored */

/* What is left to read, owned by its caller (beat_sync_init(),
 * beat_sync_deinit()). The fields are read-only outside sync.c. */
typedef struct {
    char key[TQ_KEYS_MAX]; /* P:schedule-state */
    beat_entry **pending;  /* borrowed: entries whose state the leader must read */
    size_t npending, cappending;
    int all;     /* read the whole state before publishing (pending is then empty) */
    int failing; /* P:schedule-state cannot be read (logged once) */
} beat_sync;

/* Makes *s, with nothing to read, for the keys of prefix. Returns 0, or
 * TQ_EINVAL when the key would be too long. Allocates nothing. */
int beat_sync_init(beat_sync *s, const char *prefix);

/* Frees the pending list. Safe twice. */
void beat_sync_deinit(beat_sync *s);

/* Asks for the whole state to be read before the next publication (a new
 * leader, a new connection, a pending list that may point to freed
 * entries). */
void beat_sync_all(beat_sync *s);

/* Notes that the leader must read e's state (borrowed: it must stay in the
 * table until then, or beat_sync_all() be called) before publishing it.
 * Does nothing when not leader: a standby reads every state when it
 * becomes the leader instead. Out of memory, asks for all. */
void beat_sync_add(beat_sync *s, beat_entry *e, int leader);

/* 1 if there is something to read. */
int beat_sync_due(const beat_sync *s);

/* Reads what is to be read for the entries of t, sets their last and next
 * ticks (next from now_ms, beat/tick.h), and restores the order of h.
 * Returns 0, or a negative TQ_E... code (all is read again next time).
 * Blocks on Redis: with all, for as long as reading a whole large state
 * takes. */
int beat_sync_run(beat_sync *s, tq_conn *conn, const beat_table *t, beat_heap *h,
                  int64_t now_ms);

/* Notes whether e's state value (v, borrowed, for the log line; may be
 * NULL) is not a tick (bad), logging the change: such a schedule
 * publishes nothing, because what it published is not known, until the
 * value is a tick again or is deleted. */
void beat_sync_held(beat_sync *s, beat_entry *e, int bad, const redisReply *v);

#endif
