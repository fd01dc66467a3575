/* Owned locks in Redis: SET NX PX to take, compare-and-delete to release,
 * compare-and-pexpire to extend. The value is the owner's id, so only the
 * owner can release or extend; a lock whose owner vanished expires.
 *
 * Used for the beat's leader lease, the reaper's short lock, and by anyone
 * who needs one. The worker's per-task lock is taken inside its fetch script
 * with the same rules (worker/worker.c). */
#ifndef TQ_LOCK_H
#define TQ_LOCK_H

#include <stdint.h>

#include "common/conn.h"

/* Tries to take key for owner for ttl_ms. Returns 1 if taken (or already
 * held by owner, whose lease is then renewed), 0 if another owner holds it,
 * TQ_EREDIS or TQ_EREPLY on failure. Blocks for one round trip. */
int tq_lock_acquire(tq_conn *c, const char *key, const char *owner, int64_t ttl_ms);

/* Extends key to ttl_ms if owner holds it. Returns 1 if extended, 0 if the
 * lock is not owner's (lost or expired), or a negative TQ_E... code. */
int tq_lock_extend(tq_conn *c, const char *key, const char *owner, int64_t ttl_ms);

/* Deletes key if owner holds it. Returns 1 if deleted, 0 if not owner's,
 * or a negative TQ_E... code. */
int tq_lock_release(tq_conn *c, const char *key, const char *owner);

#endif
