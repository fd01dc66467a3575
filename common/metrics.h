/* The layout of P:metrics, the hash of labelled counters and histograms
 * that workers add to in their completion script and tickq-web turns into
 * Prometheus series at scrape time (docs/PROTOCOL.md, "Metrics").
 *
 * Fields are TAB-separated (no label value can hold a TAB: queue names
 * are [A-Za-z0-9_.:-], task names have no control byte). <queue> is the
 * queue the worker took the message from (one of its --queues, so the
 * label is bounded too):
 *   "tasks\t<queue>\t<task>\t<state>"  completions per state, one for each
 *                                      task event of that name: success
 *                                      (task-succeeded), failure (a run
 *                                      failed with no retry left:
 *                                      task-failed), retried (a run failed
 *                                      and the next attempt is scheduled),
 *                                      dead (a dead letter written at
 *                                      completion: retries used up, unknown
 *                                      task, undecodable), expired; a last
 *                                      failed run counts in failure and dead
 *   "runtime\t<queue>\t<task>\t<i>"    runs whose runtime fell in bucket i
 *                                      (per bucket, not cumulative)
 *   "runtime_sum\t<queue>\t<task>"     their runtimes' sum, seconds (float)
 *   "lateness\t<i>"                    scheduled first attempts published
 *                                      that late (enqueued_at - scheduled_at)
 *   "lateness_sum"                     seconds (float)
 * Bucket i counts values <= bound i and > bound i-1; the last bucket has
 * no bound (+Inf). A task the worker does not know is labelled
 * TQ_METRICS_UNKNOWN_TASK, so that a client cannot make label values up. */
#ifndef TQ_METRICS_H
#define TQ_METRICS_H

/* Upper bounds, seconds, of the finite buckets, as C and Lua text. */
#define TQ_METRICS_RUNTIME_BUCKETS                                                       \
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300
#define TQ_METRICS_RUNTIME_NBUCKETS 15 /* 14 bounds and +Inf */
#define TQ_METRICS_LATENESS_BUCKETS 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60
#define TQ_METRICS_LATENESS_NBUCKETS 11 /* 10 bounds and +Inf */
#define TQ_METRICS_UNKNOWN_TASK "(unknown)"

/* P:tasks, the finished-task index, keeps the newest this many members
 * (web/api.h's WEB_API_TASKS_MAX is the same number). */
#define TQ_METRICS_TASKS_MAX 100000
/* A P:minute:<m> hash lives this long after its last write, seconds: the
 * dashboard charts the last hour. */
#define TQ_METRICS_MINUTE_TTL_S 7200

#endif
