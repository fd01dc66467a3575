/* tickq-web: parse the configuration, start the HTTP server, serve until
 * SIGTERM or SIGINT, stop. Exit 0 after a clean stop, 2 for a bad
 * configuration (including an address that cannot be listened on). With
 * --top it starts no server and shows the live picture in the terminal
 * instead (web/top.h). */
#include "common/config.h"
#include "common/broker.h"
#include "common/conn.h"
#include "common/err.h"
#include "common/proc.h"
#include "web/top.h"
#include "web/web.h"

#include <stdio.h>

#define SUMMARY                                                                          \
    "The web side of tickq: /timer, /dashboard, /api/... (JSON API and live events),\n"  \
    "/metrics, /healthz; / lists the routes. --top shows the same in a terminal."

int main(int argc, char **argv)
{
    tq_config cfg;
    char err[512];
    int rc = tq_proc_start(&cfg, TQ_PROG_WEB, "web", SUMMARY, argc, argv);
    if (rc >= 0)
        return rc;
    if (cfg.check) { /* one PING; on failure, one line that says why */
        tq_url url;
        if (tq_config_url(&cfg, &url, err, sizeof err) == 0 &&
            tq_conn_check(&url, "check", 1, err, sizeof err) == 0)
            return 0;
        fprintf(stderr, "tickq-web: --check: %s\n", err);
        return 1;
    }
    tq_proc_signals();
    if (cfg.top)
        return web_top_run(&cfg, &tq_proc_stop);

    /* Data of the old key layout would show as an empty system: refuse it,
     * when Redis answers now (the workers and beats refuse it too). */
    tq_url url;
    if (tq_config_url(&cfg, &url, err, sizeof err) == 0) {
        tq_conn *c = tq_conn_new(&url, "web-layout");
        char found[512];
        if (c && tq_broker_old_layout(c, cfg.prefix, found, sizeof found) > 0) {
            fprintf(
                stderr,
                "tickq-web: redis holds data of tickq's key layout v1 (%s): this "
                "version uses layout v2 and would not see it; drain and delete it, or "
                "choose another --prefix (docs/PROTOCOL.md, \"From layout v1\")\n",
                found);
            tq_conn_free(c);
            return 2;
        }
        tq_conn_free(c);
    }
    err[0] = '\0';
    web_server *w = web_new(&cfg, err, sizeof err);
    if (!w) {
        fprintf(stderr, "tickq-web: %s\n", err[0] ? err : "out of memory");
        return err[0] ? 2 : 1;
    }
    web_run(w, &tq_proc_stop);
    web_free(w);
    return 0;
}
