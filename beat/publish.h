/* beat_publish: publishing the due ticks, as the leader.
 *
 * Due ticks are popped from the next-due heap in (tick, name) order, after
 * the catch-up rule (beat/tick.h), and encoded. Per queue, in batches of
 * BEAT_PUBLISH_TICKS, tickq_publish pushes them (the queue skips an id it
 * was pushed before), then tickq_advance checks the lease and moves each
 * schedule's P:{@}:schedule-state to its tick: two calls, each in one
 * cluster slot. A tick is pushed at most once by all beats together (its
 * id is deterministic), and a paused old leader moves no state. A tick
 * whose calls did not succeed goes back to its entry, to be tried again
 * next time. A queue key of the wrong type holds back the ticks on that
 * queue alone (logged once per key, and once when it is fixed). */
#ifndef TQ_BEAT_PUBLISH_H
#define TQ_BEAT_PUBLISH_H

#include <stdint.h>

#include "beat/heap.h"
#include "beat/lease.h"
#include "beat/sync.h"
#include "common/config.h"
#include "common/conn.h"
#include "common/keys.h"

#define BEAT_PUBLISH_PASS_MAX 5000 /* ticks published per pass, pipelined */
#define BEAT_PUBLISH_TICKS 100     /* ticks per call of the publish script */
#define BEAT_PUBLISH_RETRY_MS 1000 /* a tick held by a bad key waits this long */
#define BEAT_PUBLISH_BADQ_MAX 64   /* bad queue keys remembered (each logged once) */

struct beat_publish_rec;

/* The publisher, owned by its caller (beat_publish_init(),
 * beat_publish_deinit()). The fields are read-only outside publish.c. */
typedef struct {
    char prefix[TQ_CONFIG_NAME_MAX];
    char id[TQ_CONFIG_NAME_MAX]; /* this beat's instance id: the lease's value */
    char key_leader[TQ_KEYS_MAX];
    char key_state[TQ_KEYS_MAX];
    int catchup_max;               /* --catchup-max */
    int wait_replicas;             /* --wait-replicas: WAIT after each pass */
    int wait_each_queue;           /* ... and after each queue's pushes (a cluster) */
    int64_t wait_timeout_ms;       /* --wait-timeout */
    struct beat_publish_rec *recs; /* owned, BEAT_PUBLISH_PASS_MAX of them */
    /* Problems logged once when they start and once when they end, so that
     * a key of the wrong type is one error, not one per pass. */
    char badq[BEAT_PUBLISH_BADQ_MAX][TQ_KEYS_MAX]; /* queue keys that are not lists */
    int nbadq;
    /* Queues added to P:{@}:queues on the connection of reg_connects. */
    char reg[BEAT_PUBLISH_BADQ_MAX][TQ_CONFIG_NAME_MAX];
    int nreg;
    uint64_t reg_connects;
    int failing;         /* tickq_publish answers an error */
    int advance_failing; /* tickq_advance answers an error */
    int stats_failing;   /* a P:{q}:stats is not a hash: ticks are not counted */
} beat_publish;

/* Makes *p for beat id (copied) and the keys of prefix. Returns 0,
 * TQ_EINVAL when a key would be too long, or TQ_ENOMEM. */
int beat_publish_init(beat_publish *p, const char *prefix, const char *id,
                      int catchup_max);

/* Frees what *p owns. Safe twice. */
void beat_publish_deinit(beat_publish *p);

/* Publishes every tick of the entries in h due at now_ms, up to
 * BEAT_PUBLISH_PASS_MAX, as the leader: advances their next ticks and
 * restores h's order. A schedule whose state value turns out bad is handed
 * to s (beat_sync_add(); beat_sync_held() when it is good again). When the
 * script finds that another beat holds the lease, l is told
 * (beat_lease_lost()). Returns 0, or a negative TQ_E... code after a
 * failure (the ticks not published are due again). Blocks on one round
 * trip (two when Redis lost the script). */
int beat_publish_due(beat_publish *p, tq_conn *conn, beat_heap *h, beat_sync *s,
                     beat_lease *l, int64_t now_ms);

#endif
