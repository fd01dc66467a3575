/* beat_lease: the leader lease P:beat:leader, which says which beat
 * publishes.
 *
 * The lease is the beat's instance id with a PX expiry, taken and renewed
 * by common/lock's acquire script, which renews only for its owner. The
 * leader renews every period (BEAT_LEASE_PERIOD_MS, more often for short
 * leases: three chances per lease); a standby asks again when the
 * holder's lease runs out (it reads the remaining time), so that failover
 * waits for the lease only. A beat that stops cleanly releases it
 * (compare-and-delete), so a standby takes over at once. The publish
 * script checks the lease again for every batch (beat/publish.c): this
 * module's idea of who leads is only the beat's belief. */
#ifndef TQ_BEAT_LEASE_H
#define TQ_BEAT_LEASE_H

#include <stdint.h>

#include "common/config.h"
#include "common/conn.h"
#include "common/keys.h"

#define BEAT_LEASE_PERIOD_MS 1000 /* renewal period, at most */

/* A beat's view of the lease, owned by its caller (beat_lease_init()). The
 * fields are read-only outside lease.c, but for due_mono. */
typedef struct {
    char key[TQ_KEYS_MAX];       /* P:beat:leader */
    char id[TQ_CONFIG_NAME_MAX]; /* this beat's instance id: the lease's value */
    int64_t lease_ms;            /* the lease's lifetime */
    int64_t period_ms;           /* renewal period */
    int64_t due_mono;            /* monotonic ms of the next renewal; the beat sets it
                                    later after a Redis failure */
    int leader;                  /* this beat holds the lease (as far as it knows) */
    int role_known;              /* leader or standby has been logged once */
    int failing;                 /* the lease script answers an error (logged once) */
    int no_ttl;                  /* another owner's lease has no expiry (warned) */
} beat_lease;

/* Makes *l for beat id (copied) and the keys of prefix: not the leader,
 * renewal due at once. Returns 0, or TQ_EINVAL when the key would be too
 * long. No Redis. */
int beat_lease_init(beat_lease *l, const char *prefix, const char *id, int64_t lease_ms);

/* Takes or renews the lease and sets the time of the next renewal: the
 * period, or sooner for a standby when the current lease runs out first.
 * Logs a change of role. Returns 1 if this beat has just become the
 * leader (another beat may have published meanwhile: the caller reads the
 * state again), 0 if nothing changed or it is a standby, or a negative
 * TQ_E... code (a key of the wrong type is logged once). Blocks on one or
 * two round trips. */
int beat_lease_renew(beat_lease *l, tq_conn *conn);

/* Notes that the lease is not this beat's any more (why: for the log), and
 * makes the next renewal due now, to find out who leads. No Redis. */
void beat_lease_lost(beat_lease *l, const char *why);

/* Releases the lease if this beat holds it, so a standby takes over at
 * once; this beat is a standby afterwards. Returns 1 if released, 0 if
 * not held, or a negative TQ_E... code (logged if it was the leader: the
 * lease then expires by itself). Blocks on one round trip. */
int beat_lease_release(beat_lease *l, tq_conn *conn);

#endif
