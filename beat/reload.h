/* beat_reload: keeping the table (beat/table.h) in step with P:schedules,
 * the source of truth.
 *
 * Every BEAT_RELOAD_CHECK_MS a beat asks whether the hash changed: WATCH
 * on it, and an empty MULTI/EXEC that Redis aborts if anyone wrote the
 * hash since (CLIENT ID tells a new connection, whose WATCH is gone, from
 * the old one): one cheap round trip when nothing changed. Only then it
 * reads the hash again, with HSCAN in slices between its ticks (so a
 * million schedules never block Redis or the ticks), and compares each
 * definition's hash with the one it knows. When the scan ends, the added,
 * changed and removed definitions take effect at once, and the heap and
 * the state reads (beat/sync.h) follow for those only. Where WATCH is not
 * allowed (an ACL), every check reloads. A scan under way is never
 * restarted by a check: another one follows it, so that every change is
 * seen. */
#ifndef TQ_BEAT_RELOAD_H
#define TQ_BEAT_RELOAD_H

#include <stddef.h>
#include <stdint.h>

#include "beat/entry.h"
#include "beat/heap.h"
#include "beat/sync.h"
#include "beat/table.h"
#include "common/conn.h"
#include "common/keys.h"
#include "common/tz.h"

#define BEAT_RELOAD_CHECK_MS 250    /* how often P:schedules is checked for changes */
#define BEAT_RELOAD_SCAN_COUNT 5000 /* HSCAN COUNT */
#define BEAT_RELOAD_BUDGET_MS 20    /* scan work per pass before ticks get a turn */
#define BEAT_RELOAD_CURSOR_MAX 32   /* bytes of an HSCAN cursor, with the NUL */

struct beat_reload_change;

/* A reload and what tells whether one is needed, owned by its caller
 * (beat_reload_init(), beat_reload_deinit()). The fields are read-only
 * outside reload.c. */
typedef struct {
    char key[TQ_KEYS_MAX];   /* P:schedules */
    char tz[TQ_TZ_NAME_MAX]; /* default zone of cron schedules */
    int loaded;              /* a reload has been applied */
    int reloading;           /* an HSCAN is under way */
    int again;               /* P:schedules changed during it */
    int failing;             /* P:schedules is unreadable (warned once) */
    char cursor[BEAT_RELOAD_CURSOR_MAX];
    uint32_t gen;       /* the scan's generation, marked in the table's slots */
    size_t nseen;       /* distinct known entries this scan has seen */
    int64_t start_ms;   /* wall time the reload started: "since" of new definitions */
    int64_t start_mono; /* monotonic ms it started */
    size_t nscanned;    /* fields it has read */
    uint64_t *hashes;   /* scratch: name and text hashes of one HSCAN reply */
    size_t caphashes;
    beat_entry **added; /* owned until applied */
    size_t nadded, capadded;
    struct beat_reload_change *changed; /* owned new versions until applied */
    size_t nchanged, capchanged;
    long long client_id; /* CLIENT ID of the connection the WATCH is on, -1 none */
    int watch_warned;    /* WATCH is refused (warned once) */
} beat_reload;

/* Makes *r for the keys of prefix, with default_tz (copied) for cron
 * schedules without "tz": nothing loaded, no reload under way. Returns 0,
 * or TQ_EINVAL when the key would be too long. Allocates nothing. */
int beat_reload_init(beat_reload *r, const char *prefix, const char *default_tz);

/* Frees what *r owns (not the table's entries). Safe twice. */
void beat_reload_deinit(beat_reload *r);

/* Asks Redis whether P:schedules changed since the last check, and starts
 * a reload at now_ms if it did (or if that cannot be known; a reload under
 * way is followed by another). A new connection of the leader (Redis may
 * have restarted) asks s to read the whole state. Returns 0 or a negative
 * TQ_E... code. Blocks on one round trip (four commands, pipelined). */
int beat_reload_check(beat_reload *r, tq_conn *conn, beat_sync *s, int leader,
                      int64_t now_ms);

/* Scans P:schedules until the monotonic time deadline_mono (one HSCAN at
 * least), and when the scan ends applies it to t, h and s (now_ms: for the
 * first ticks). leader: whether the states of what changed are to be read.
 * An unreadable hash keeps the schedules known so far (warned once).
 * Returns 0 or a negative TQ_E... code (the reload then starts over at the
 * next check). Blocks on Redis round trips until the deadline. */
int beat_reload_step(beat_reload *r, tq_conn *conn, beat_table *t, beat_heap *h,
                     beat_sync *s, int leader, int64_t now_ms, int64_t deadline_mono);

#endif
