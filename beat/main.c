/* tickq-beat: publishes the ticks of the schedules in Redis as task
 * messages, while it holds the leader lease. Parses the configuration, builds
 * the beat (beat/beat.c), runs its loop until SIGTERM or SIGINT, and exits 0;
 * a bad configuration or schedules file exits 2. --next-runs is a dry run
 * (beat/dryrun.c) that needs no Redis. */
#include "beat/beat.h"
#include "beat/dryrun.h"
#include "common/config.h"
#include "common/conn.h"
#include "common/proc.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    tq_config cfg;
    char err[1024];
    int rc =
        tq_proc_start(&cfg, TQ_PROG_BEAT, "beat",
                      "Publishes the scheduled ticks of P:schedules as task messages; "
                      "one leader at a time.",
                      argc, argv);
    if (rc >= 0)
        return rc;
    if (cfg.check) { /* one PING; on failure, one line that says why */
        tq_url url;
        if (tq_config_url(&cfg, &url, err, sizeof err) == 0 &&
            tq_conn_check(&url, "check", 1, err, sizeof err) == 0)
            return 0;
        fprintf(stderr, "tickq-beat: --check: %s\n", err);
        return 1;
    }
    if (cfg.next_runs[0])
        return beat_dry_run(&cfg, stdout, stderr);
    tq_proc_signals();

    beat *b = beat_new(&cfg, err, sizeof err);
    if (!b) {
        fprintf(stderr, "tickq-beat: %s\n", err[0] ? err : "out of memory");
        return err[0] ? 2 : 1;
    }
    rc = beat_run(b, &tq_proc_stop);
    beat_free(b);
    return rc;
}
