/* The first tick of a schedule entry and the catch-up rule; see tick.h. */
#include "beat/tick.h"
#include "common/log.h"

/* A new schedule waits for its next tick rather than publishing one from
 * the past; the ticks of a new grid before a change, or of a disabled
 * period, were never due. */
int64_t beat_tick_first(const beat_entry *e, int64_t now_ms)
{
    int64_t after = e->last != BEAT_ENTRY_NO_TICK ? tq_sched_rule_next(&e->rule, e->last)
                                                  : BEAT_ENTRY_NO_TICK;
    if (e->since == BEAT_ENTRY_SINCE_START)
        return after != BEAT_ENTRY_NO_TICK ? after
                                           : tq_sched_rule_next(&e->rule, now_ms - 1);
    int64_t first = tq_sched_rule_next(&e->rule, e->since - 1);
    return after != BEAT_ENTRY_NO_TICK && after > first ? after : first;
}

int64_t beat_tick_count(const tq_sched_rule *r, int64_t from_ms, int64_t to_ms,
                        int64_t cap)
{
    if (from_ms > to_ms)
        return 0;
    if (r->kind == TQ_SCHED_EVERY) {
        int64_t n = (tq_sched_rule_prev(r, to_ms) - from_ms) / r->every_ms + 1;
        return n < cap ? n : cap;
    }
    int64_t n = 0;
    for (int64_t t = from_ms; t <= to_ms && n < cap; t = tq_sched_rule_next(r, t))
        n++;
    return n;
}

/* Failover gaps (see tick.h): a tick at most the lease plus a second late
 * was merely delayed while a standby waited for the dead leader's lease,
 * so each is published, in order. A later tick was due while no beat ran,
 * and the schedule's policy decides: Celery's behaviour (the latest only)
 * by default, because flooding the queues with stale ticks is usually worse
 * than skipping them. */
int64_t beat_tick_catch_up(const tq_sched_rule *r, tq_sched_catchup policy,
                           int catchup_max, int64_t next_ms, int64_t now_ms,
                           int64_t lease_ms)
{
    if (next_ms > now_ms || next_ms > now_ms - (lease_ms + BEAT_TICK_GAP_SLACK_MS))
        return next_ms;
    if (policy == TQ_SCHED_CATCHUP_NONE)
        return tq_sched_rule_next(r, now_ms);
    if (policy != TQ_SCHED_CATCHUP_ALL || catchup_max < 1)
        return tq_sched_rule_prev(r, now_ms);
    if (beat_tick_count(r, next_ms, now_ms, (int64_t)catchup_max + 1) <= catchup_max)
        return next_ms;
    int64_t t = tq_sched_rule_prev(r, now_ms);
    if (r->kind == TQ_SCHED_EVERY)
        return t - (int64_t)(catchup_max - 1) * r->every_ms;
    for (int i = 1; i < catchup_max; i++)
        t = tq_sched_rule_prev(r, t - 1);
    return t;
}

void beat_tick_log_catch_up(beat_tick_pass *pass, beat_entry *e, int64_t t,
                            int64_t now_ms, int64_t lease_ms, int catchup_max)
{
    char nm[BEAT_ENTRY_SHOWN_MAX];
    int64_t late = now_ms - e->next;
    if (late <= lease_ms + BEAT_TICK_GAP_SLACK_MS) {
        e->catching_up = 0;
        return;
    }
    if (e->catching_up)
        return;
    e->catching_up = 1;
    int64_t skipped =
        t > now_ms ? beat_tick_count(&e->rule, e->next, now_ms, BEAT_TICK_COUNT_CAP)
                   : beat_tick_count(&e->rule, e->next, t - 1, BEAT_TICK_COUNT_CAP);
    pass->caught_up++;
    pass->skipped += skipped;
    tq_log_level level =
        pass->caught_up <= BEAT_TICK_CATCHUP_LOGS ? TQ_LOG_INFO : TQ_LOG_DEBUG;
    if (level < tq_log_min)
        return;
    beat_entry_shown(e->str, e->namelen, nm, sizeof nm);
    const char *more = skipped == BEAT_TICK_COUNT_CAP ? "at least " : "";
    if (e->catchup == TQ_SCHED_CATCHUP_NONE)
        tq_log(level,
               "schedule '%s': no beat ran for %lld ms; skipping %s%lld missed ticks "
               "(catchup none); the next is %s@%lld",
               nm, (long long)late, more, (long long)skipped, nm, (long long)t);
    else if (e->catchup == TQ_SCHED_CATCHUP_ALL && t == e->next)
        tq_log(
            level,
            "schedule '%s': no beat ran for %lld ms; publishing all %lld missed ticks "
            "(catchup all)",
            nm, (long long)late,
            (long long)beat_tick_count(&e->rule, e->next, now_ms, BEAT_TICK_COUNT_CAP));
    else if (e->catchup == TQ_SCHED_CATCHUP_ALL)
        tq_log(level,
               "schedule '%s': no beat ran for %lld ms; skipping %s%lld missed ticks "
               "and publishing the last %d (catchup all, --catchup-max)",
               nm, (long long)late, more, (long long)skipped, catchup_max);
    else
        tq_log(level,
               "schedule '%s': no beat ran for %lld ms; skipping %s%lld missed ticks "
               "and publishing only the latest, %s@%lld",
               nm, (long long)late, more, (long long)skipped, nm, (long long)t);
}
