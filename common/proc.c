/* Start-up, signals and health check shared by the three programs. */
#include "common/proc.h"
#include "common/clock.h"
#include "common/conn.h"
#include "common/err.h"
#include "common/log.h"
#include "common/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile sig_atomic_t tq_proc_stop = 0;

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

int tq_proc_start(tq_config *cfg, tq_prog prog, const char *component,
                  const char *summary, int argc, char **argv)
{
    char err[512];
    int rc = tq_config_parse(cfg, prog, argc, argv, env_lookup, err, sizeof err);
    switch (rc) {
    case 0:
        tq_log_init(cfg->log_level, cfg->log_format, component);
        return -1;
    case TQ_EHELP:
        printf("usage: tickq-%s [options]\n%s\n\noptions (each also an environment "
               "variable; flags beat the environment):\n",
               component, summary);
        tq_config_usage(prog, stdout, 0);
        return 0;
    case TQ_EVERSION:
        printf("tickq-%s %s\nTLS (rediss://): %s\n", component, TICKQ_VERSION,
               tq_conn_tls_info());
        return 0;
    case TQ_EMARKDOWN:
        tq_config_usage(prog, stdout, 1);
        return 0;
    default:
        fprintf(stderr, "tickq-%s: %s\n", component, err);
        return 2;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    if (tq_proc_stop < 100)
        tq_proc_stop++;
}

void tq_proc_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

void tq_proc_default_id(char *buf, size_t len)
{
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-",
                    *p))
            *p = '_';
    host[40] = '\0'; /* keep the id within TQ_CONFIG_NAME_MAX */
    unsigned r = (unsigned)(tq_clock_wall_us() ^ ((uint64_t)getpid() << 16)) & 0xffff;
    snprintf(buf, len, "%s-%d-%04x", host, (int)getpid(), r);
}
