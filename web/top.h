/* web_top: tickq-web --top, the live picture in a terminal, like celery
 * events: a header (time, Redis, beat leader, counters), then queues (depth,
 * paused, latency), workers (alive, running, processed, failed), schedules
 * (every or cron, next run) and the latest events other than heartbeats,
 * read from Redis with its own connection (no server is started). On a
 * terminal it redraws every second in place; into a pipe or a file it
 * draws one plain frame (no escape codes) and returns, which scripts and
 * tests can read. */
#ifndef TQ_WEB_TOP_H
#define TQ_WEB_TOP_H

#include <signal.h>

#include "common/config.h"

/* Draws until *stop (borrowed) becomes non-zero, or once when stdout is not
 * a terminal. Returns 0; 1 when the one frame found Redis unreachable (on a
 * terminal the frame says so and drawing goes on), or for a --redis-url
 * that does not parse. Blocks. */
int web_top_run(const tq_config *cfg, const volatile sig_atomic_t *stop);

#endif
