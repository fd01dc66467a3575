/* tickq-worker: consumes task messages from Redis queues. */
#include <stdio.h>

#include "common/conn.h"
#include "common/log.h"
#include "common/proc.h"
#include "worker/worker.h"

int main(int argc, char **argv)
{
    tq_config cfg;
    char err[512];

    int rc = tq_proc_start(&cfg, TQ_PROG_WORKER, "worker",
                           "Runs tickq tasks from Redis queues, each exactly once.", argc,
                           argv);
    if (rc >= 0)
        return rc;
    if (cfg.check) { /* one PING; on failure, one line that says why */
        tq_url url;
        if (tq_config_url(&cfg, &url, err, sizeof err) == 0 &&
            tq_conn_check(&url, "check", 1, err, sizeof err) == 0)
            return 0;
        fprintf(stderr, "tickq-worker: --check: %s\n", err);
        return 1;
    }
    tq_proc_signals();

    worker *w = worker_new(&cfg, err, sizeof err);
    if (!w) {
        fprintf(stderr, "tickq-worker: %s\n", err);
        return 2;
    }
    rc = worker_run(w, &tq_proc_stop);
    worker_free(w);
    return rc;
}
