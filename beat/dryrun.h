/* The dry run of tickq-beat: `--next-runs EXPR [--tz ZONE] [--from ISO]
 * [--count N]` answers "when will this run?" like `systemd-analyze
 * calendar` does, without Redis. */
#ifndef TQ_BEAT_DRYRUN_H
#define TQ_BEAT_DRYRUN_H

#include <stdio.h>

#include "common/config.h"

/* Prints the next cfg->count fire times of the cron expression
 * cfg->next_runs after --from (default now), one ISO-8601 UTC instant per
 * line on out. Returns the exit code: 0, or 2 after a sentence on errout
 * for a bad expression, zone or time (nothing is printed on out then). No
 * Redis. */
int beat_dry_run(const tq_config *cfg, FILE *out, FILE *errout);

#endif
