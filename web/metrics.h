/* web_metrics: GET /metrics, Prometheus' text format (version 0.0.4),
 * computed from Redis at scrape time (the web keeps no state): task
 * counters and runtime histograms by queue and task and the lateness of
 * published ticks (P:metrics), queue depths, latencies and pauses (through
 * web_api_queue_list(), so /metrics and /api/queues agree), workers by
 * state, dead letters, delayed messages, the beat leader and its lease,
 * schedules' last runs and the counters of P:stats. docs/METRICS.md lists
 * every series with its type, labels and source key.
 *
 * A scrape costs one pipelined round trip for everything but the queues
 * (which web_api_queue_list() reads in its own), plus one per further page
 * of a large P:metrics or P:schedule-state. A key of the wrong type leaves
 * out its families with a comment line ("# tickq: <key> holds the wrong
 * type") and the rest is served; only a Redis that cannot be reached at all
 * answers 503 (JSON). Every label value from Redis is written as valid
 * UTF-8 (U+FFFD for a bad byte) with \\, \" and \n escaped.
 *
 * The output is bounded whatever Redis holds: a hash with more than
 * WEB_METRICS_FIELDS_MAX fields is not read (a comment says so), and a
 * family holds at most WEB_METRICS_SERIES_MAX samples (the first ones in
 * the order of their labels, so the same ones each scrape; a comment
 * counts those left out). */
#ifndef TQ_WEB_METRICS_H
#define TQ_WEB_METRICS_H

#include "web/req.h"

#define WEB_METRICS_SERIES_MAX 10000 /* samples one family may hold */
#define WEB_METRICS_FIELDS_MAX                                                           \
    100000                    /* a larger P:metrics or P:schedule-state is left out */
#define WEB_METRICS_PAGE 5000 /* HSCAN COUNT: fields one round trip reads, about */
#define WEB_METRICS_LABEL_MAX                                                            \
    256 /* bytes of a label value read from Redis; a longer                              \
           one leaves its series out */
#define WEB_METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"

/* GET /metrics: 200 with the exposition, 503 (JSON) when Redis cannot be
 * reached, 500 (JSON) when out of memory. Blocks on Redis, at most about
 * the command timeout per round trip. */
int web_metrics_get(web_req *rq);

#endif
