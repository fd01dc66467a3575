/* The beat: its modules put together, and the loop that runs them. One
 * thread, one Redis connection; see beat.h. */
#include "beat/beat.h"
#include "beat/entry.h"
#include "beat/heap.h"
#include "beat/lease.h"
#include "beat/publish.h"
#include "beat/reload.h"
#include "beat/seed.h"
#include "common/broker.h"
#include "beat/sync.h"
#include "beat/table.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/delayed.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/tz.h"
#include "common/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ------------------------------------------------------------------------
 * State.
 *
 * The beat keeps one entry per field of P:schedules, good or bad, in its
 * table; the good, enabled entries are also in the next-due heap, keyed on
 * (due, name) (beat_entry_before()): a pass looks at the top only, so it
 * costs O(due * log n). The other modules hold what their concern needs;
 * this struct adds the loop's timers. */

struct beat {
    tq_conn *conn;
    char prefix[TQ_CONFIG_NAME_MAX];
    char where[TQ_URL_SHOWN_MAX]; /* the Redis URL without password */
    beat_seed seed;               /* the --schedules file until upserted */
    beat_lease lease;             /* P:beat:leader */
    beat_reload reload;           /* P:schedules into table */
    beat_table table;             /* every field of P:schedules */
    beat_heap heap;               /* borrowed from table: the good, enabled ones */
    beat_sync sync;               /* P:schedule-state into table */
    beat_publish publish;         /* the due ticks of heap */
    int redis_ok;                 /* the last lease renewal succeeded, no failure since */
    uint64_t connects;            /* tq_conn_connects(conn) as last seen */
    int64_t check_due_mono;
    int64_t promote_due_mono;
    int stopped; /* a stop signal came while beat_new() read the file */
    int layout;  /* 1: Redis has no data of the old key layout; -1: it has */
};

/* ------------------------------------------------------------------------
 * The loop. */

/* After a Redis failure: pause the Redis work until a lease renewal
 * succeeds again, after the connection's backoff. */
static void redis_failed(beat *b, int rc)
{
    int64_t wait = rc == TQ_EREDIS ? tq_conn_backoff_ms(b->conn) : 1000;
    wait = wait < 10 ? 10 : wait > 1000 ? 1000 : wait;
    b->redis_ok = 0;
    b->lease.due_mono = tq_clock_mono_ms() + wait;
}

/* Seeds (until that succeeds: no lease before), then takes or renews the
 * lease; a new leader reads the whole state. Returns 0 or a negative
 * TQ_E... code. */
static int housekeeping(beat *b)
{
    if (!b->layout) {
        char found[512];
        int old = tq_broker_old_layout(b->conn, b->prefix, found, sizeof found);
        if (old < 0)
            return old;
        if (old > 0) {
            tq_error("redis holds data of tickq's key layout v1 (%s): this version uses "
                     "layout v2 and would not see it; drain and delete it, or choose "
                     "another --prefix (docs/PROTOCOL.md, \"From layout v1\")",
                     found);
            b->layout = -1;
            return TQ_EBUSY;
        }
        b->layout = 1;
    }
    int rc = beat_seed_upsert(&b->seed, b->conn);
    if (rc < 0)
        return rc;
    rc = beat_lease_renew(&b->lease, b->conn);
    if (rc == 1)
        beat_sync_all(&b->sync); /* another beat may have published meanwhile */
    return rc < 0 ? rc : 0;
}

/* The wall time at which the first entry of the heap is due, or
 * INT64_MAX when the heap is empty. */
static int64_t next_due(const beat *b)
{
    const beat_entry *e = beat_heap_top(&b->heap);
    return e ? beat_entry_due(e) : INT64_MAX;
}

int64_t beat_step(beat *b, int64_t now_ms, int64_t mono_ms)
{
    int rc;
    if (mono_ms >= b->lease.due_mono) {
        rc = housekeeping(b);
        b->redis_ok = rc == 0;
        if (rc < 0)
            redis_failed(b, rc);
    }
    if (b->redis_ok && mono_ms >= b->check_due_mono) {
        b->check_due_mono = mono_ms + BEAT_RELOAD_CHECK_MS;
        if ((rc = beat_reload_check(&b->reload, b->conn, &b->sync, b->lease.leader,
                                    now_ms)) < 0)
            redis_failed(b, rc);
    }
    /* A new connection may be to another Redis: a replica promoted by a
     * failover, which lacks the old master's last publications, or a Redis
     * restarted without them. The leader reads the state again before it
     * publishes, so that it publishes those ticks again instead of
     * skipping them. (After any failure the lease renewal is a step's
     * first call, so a new connection shows here before the next publish.) */
    if (tq_conn_connects(b->conn) != b->connects) {
        if (b->connects && b->lease.leader)
            beat_sync_all(&b->sync);
        b->connects = tq_conn_connects(b->conn);
    }
    if (b->redis_ok && b->lease.leader && b->reload.loaded &&
        (rc = beat_sync_run(&b->sync, b->conn, &b->table, &b->heap, now_ms)) < 0)
        redis_failed(b, rc);
    if (b->redis_ok && b->lease.leader && b->reload.loaded &&
        (rc = beat_publish_due(&b->publish, b->conn, &b->heap, &b->sync, &b->lease,
                               now_ms)) < 0)
        redis_failed(b, rc);
    if (b->redis_ok && b->reload.reloading) {
        /* Scan until the next tick is due, and at most the budget. */
        int64_t mono = tq_clock_mono_ms(), deadline = mono + BEAT_RELOAD_BUDGET_MS;
        if (b->lease.leader && b->heap.n && next_due(b) - now_ms < deadline - mono_ms)
            deadline = mono_ms + (next_due(b) - now_ms);
        if ((rc = beat_reload_step(&b->reload, b->conn, &b->table, &b->heap, &b->sync,
                                   b->lease.leader, now_ms, deadline)) < 0)
            redis_failed(b, rc);
    }
    if (b->redis_ok && b->lease.leader && mono_ms >= b->promote_due_mono) {
        rc = tq_delayed_promote_all(b->conn, b->prefix, now_ms, TQ_DELAYED_BATCH);
        b->promote_due_mono = mono_ms + BEAT_PROMOTE_MS;
        if (rc > 0)
            tq_debug("promoted %d delayed messages", rc);
        else if (rc == TQ_EREDIS)
            redis_failed(b, rc);
    }

    int64_t wake = b->lease.due_mono;
    if (b->redis_ok) {
        if (b->check_due_mono < wake)
            wake = b->check_due_mono;
        if (b->reload.reloading || (b->lease.leader && beat_sync_due(&b->sync)))
            wake = mono_ms;
        if (b->lease.leader && b->promote_due_mono < wake)
            wake = b->promote_due_mono;
    }
    int64_t sleep_ms = wake - mono_ms;
    if (b->lease.leader && b->redis_ok && b->heap.n && next_due(b) - now_ms < sleep_ms)
        sleep_ms = next_due(b) - now_ms;
    return sleep_ms < 0 ? 0 : sleep_ms > BEAT_SLEEP_MAX_MS ? BEAT_SLEEP_MAX_MS : sleep_ms;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleeps until the monotonic time deadline_us, in steps of at most 100 ms
 * so that a set *stop ends it early. */
static void sleep_until(int64_t deadline_us, volatile sig_atomic_t *stop)
{
    for (;;) {
        int64_t left = deadline_us - mono_us();
        if (*stop || left <= 0)
            return;
        tq_clock_sleep_us(left > 100000 ? 100000 : left);
    }
}

int beat_run(beat *b, volatile sig_atomic_t *stop)
{
    if (b->stopped)
        return 0; /* a signal came while the file was read */
    if (b->seed.file[0])
        tq_info(
            "beat %s starting: %zu schedules from %s, redis %s, prefix %s, lease %lld ms",
            b->lease.id, b->seed.n, b->seed.file, b->where, b->prefix,
            (long long)b->lease.lease_ms);
    else
        tq_info("beat %s starting: schedules from %s, redis %s, lease %lld ms",
                b->lease.id, b->reload.key, b->where, (long long)b->lease.lease_ms);
    while (!*stop && b->layout >= 0) {
        /* "now" is read once per pass. Ticks fall on whole wall-clock
         * milliseconds, so the sleep is measured from the microsecond read
         * here, and on the monotonic clock, so that the time the pass took
         * is not slept again and a wall-clock step cannot stretch it. */
        int64_t wall = tq_clock_wall_us(), mono = mono_us();
        int64_t sleep_ms = beat_step(b, wall / 1000, mono / 1000);
        if (sleep_ms > 0)
            sleep_until(mono + sleep_ms * 1000 - wall % 1000, stop);
    }
    if (b->layout < 0)
        return 2;
    beat_resign(b);
    tq_info("beat %s stopped", b->lease.id);
    return 0;
}

int beat_resign(beat *b)
{
    return beat_lease_release(&b->lease, b->conn);
}

int beat_is_leader(const beat *b)
{
    return b->lease.leader;
}

/* ------------------------------------------------------------------------
 * Construction. */

beat *beat_new(const tq_config *cfg, char *err, size_t errlen)
{
    tq_url url;
    const tq_tz *zone;
    char sub[512], id[TQ_CONFIG_NAME_MAX], tz[TQ_TZ_NAME_MAX];
    beat *b = calloc(1, sizeof *b);
    if (errlen)
        err[0] = '\0';
    if (!b)
        return NULL;
    /* Every module is usable by beat_free() from here on. */
    beat_table_init(&b->table);
    beat_heap_init(&b->heap, beat_entry_before, offsetof(beat_entry, hpos));
    if (tq_config_url(cfg, &url, err, errlen) < 0)
        goto fail;
    tq_url_redacted(&url, b->where, sizeof b->where);
    snprintf(b->prefix, sizeof b->prefix, "%s", cfg->prefix);
    if (tq_tz_get(cfg->tz, &zone, sub, sizeof sub) < 0) {
        snprintf(err, errlen, "--tz: %s", sub);
        goto fail;
    }
    snprintf(tz, sizeof tz, "%s", tq_tz_name(zone));
    if (cfg->beat_id[0])
        snprintf(id, sizeof id, "%s", cfg->beat_id);
    else
        tq_proc_default_id(id, sizeof id);
    int64_t lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : 5000;
    int catchup_max = cfg->catchup_max > 0 ? cfg->catchup_max : 100;
    int rc = beat_lease_init(&b->lease, b->prefix, id, lease_ms);
    if (rc == 0)
        rc = beat_reload_init(&b->reload, b->prefix, tz);
    if (rc == 0)
        rc = beat_sync_init(&b->sync, b->prefix);
    if (rc == 0)
        rc = beat_publish_init(&b->publish, b->prefix, id, catchup_max);
    b->publish.wait_replicas = cfg->wait_replicas;
    b->publish.wait_timeout_ms = cfg->wait_timeout_ms;
    b->publish.wait_each_queue = url.is_cluster;
    if (rc == TQ_ENOMEM) {
        err[0] = '\0';
        goto fail;
    }
    if (rc < 0) {
        snprintf(err, errlen, "prefix '%s' is too long", b->prefix);
        goto fail;
    }
    rc = beat_seed_load(&b->seed, cfg->schedules, b->prefix, tz, err, errlen);
    if (rc == TQ_ESTOPPED)
        b->stopped = 1; /* beat_run() returns at once */
    else if (rc < 0)
        goto fail;
    b->conn = tq_conn_new(&url, "beat");
    if (!b->conn) {
        err[0] = '\0';
        goto fail;
    }
    return b;
fail:
    beat_free(b);
    return NULL;
}

void beat_free(beat *b)
{
    if (!b)
        return;
    beat_seed_deinit(&b->seed);
    beat_reload_deinit(&b->reload);
    beat_table_deinit(&b->table);
    beat_heap_deinit(&b->heap);
    beat_sync_deinit(&b->sync);
    beat_publish_deinit(&b->publish);
    tq_conn_free(b->conn);
    free(b);
}
