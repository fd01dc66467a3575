/* The beat's leader lease; see lease.h. */
#include "beat/lease.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/lock.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

int beat_lease_init(beat_lease *l, const char *prefix, const char *id, int64_t lease_ms)
{
    memset(l, 0, sizeof *l);
    snprintf(l->id, sizeof l->id, "%s", id);
    l->lease_ms = lease_ms;
    /* Renew well before the lease runs out: three chances per lease. */
    l->period_ms =
        lease_ms / 3 < BEAT_LEASE_PERIOD_MS ? lease_ms / 3 : BEAT_LEASE_PERIOD_MS;
    if (l->period_ms < 10)
        l->period_ms = 10;
    return tq_keys_fmt(prefix, TQ_KEY_BEAT_LEADER, NULL, NULL, l->key, TQ_KEYS_MAX) < 0
               ? TQ_EINVAL
               : 0;
}

/* Sets the role, logging a change (and the first standby). Returns 1 if
 * this beat has just become the leader. */
static int set_leader(beat_lease *l, int leader, const char *why)
{
    int became = leader && !l->leader;
    if (became)
        tq_info("leader: beat %s holds %s and publishes", l->id, l->key);
    else if (!leader && l->leader)
        tq_info("lost leadership: %s", why);
    else if (!leader && !l->role_known)
        tq_info("standby: another beat holds %s", l->key);
    l->leader = leader;
    l->role_known = 1;
    return became;
}

int beat_lease_renew(beat_lease *l, tq_conn *conn)
{
    int rc = tq_lock_acquire(conn, l->key, l->id, l->lease_ms);
    if (rc < 0) {
        if (rc != TQ_EREDIS && !l->failing) {
            redisReply *t = tq_conn_cmd(conn, "TYPE %s", l->key);
            if (t && t->type == REDIS_REPLY_STATUS && strcmp(t->str, "string") != 0 &&
                strcmp(t->str, "none") != 0)
                tq_error("cannot take the lease %s: it is a %s, not a string; no beat "
                         "publishes until it is deleted",
                         l->key, t->str);
            else
                tq_error("cannot take the lease %s: %s; trying again every second",
                         l->key, tq_strerror(rc));
            freeReplyObject(t);
            l->failing = 1;
        }
        return rc;
    }
    if (l->failing)
        tq_info("%s is usable again", l->key);
    l->failing = 0;
    int became = set_leader(l, rc == 1, "another beat holds the lease");
    int64_t mono = tq_clock_mono_ms();
    l->due_mono = mono + l->period_ms;
    if (!l->leader) {
        redisReply *ttl = tq_conn_cmd(conn, "PTTL %s", l->key);
        if (!ttl)
            return TQ_EREDIS;
        if (ttl->type == REDIS_REPLY_INTEGER) {
            /* -2: the lease is gone already; -1: no TTL (set by hand) */
            int64_t wait = ttl->integer == -2  ? 10
                           : ttl->integer >= 0 ? ttl->integer + 1
                                               : -1;
            if (ttl->integer == -1 && !l->no_ttl)
                tq_warn("%s is held by another owner and never expires (set by hand?): "
                        "this beat stays a standby until it is deleted",
                        l->key);
            l->no_ttl = ttl->integer == -1;
            if (wait >= 0 && mono + wait < l->due_mono)
                l->due_mono = mono + wait;
        }
        freeReplyObject(ttl);
    }
    return became;
}

void beat_lease_lost(beat_lease *l, const char *why)
{
    set_leader(l, 0, why);
    l->due_mono = tq_clock_mono_ms(); /* find out who leads, now */
}

int beat_lease_release(beat_lease *l, tq_conn *conn)
{
    int was = l->leader;
    int rc = tq_lock_release(conn, l->key, l->id);
    if (rc == 1)
        tq_info("released %s: a standby can take over now", l->key);
    else if (rc < 0 && was)
        tq_warn("could not release %s (%s); it expires within %lld ms", l->key,
                tq_strerror(rc), (long long)l->lease_ms);
    l->leader = 0;
    return rc;
}
