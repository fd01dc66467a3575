/* What every tickq program does around its loop: parse the configuration
 * (printing --help, --version or the error), start logging, install the
 * signal handlers, make a default instance id, answer --check. */
#ifndef TQ_PROC_H
#define TQ_PROC_H

#include <signal.h>
#include <stddef.h>

#include "common/config.h"

/* Counts SIGTERM and SIGINT: 0 running, 1 stop gracefully, 2+ stop now. */
extern volatile sig_atomic_t tq_proc_stop;

/* Parses argv and the environment into *cfg for prog, then starts logging
 * as component. Returns -1 to go on, or the exit code to return from main:
 * 0 after printing --help, --version or --help-markdown on stdout, 2 after
 * printing a configuration error on stderr. */
int tq_proc_start(tq_config *cfg, tq_prog prog, const char *component,
                  const char *summary, int argc, char **argv);

/* Installs handlers for SIGTERM and SIGINT (which only count into
 * tq_proc_stop) and ignores SIGPIPE. */
void tq_proc_signals(void);

/* Writes "<host>-<pid>-<4 hex digits>" into buf: an instance id that differs
 * between restarts of the same container. */
void tq_proc_default_id(char *buf, size_t len);

#endif
