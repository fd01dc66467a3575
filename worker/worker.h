/* tickq-worker: N task threads, a heartbeat thread that also reaps dead
 * workers, and a graceful stop. See queue.h for the Redis side. */
#ifndef TQ_WORKER_H
#define TQ_WORKER_H

#include <signal.h>
#include <stddef.h>

#include "common/config.h"

typedef struct worker worker;

/* Returns a new worker for cfg (copied), with cfg's --worker-id or the
 * default one (host-pid), or NULL with a sentence in err: out of memory,
 * key names that do not fit, or a --tasks library that cannot be loaded (a
 * configuration error). Loads the tasks; connects to nothing yet. */
worker *worker_new(const tq_config *cfg, char *err, size_t errlen);

/* Registers, requeues what an earlier process with the same id left, runs
 * the threads until *stop is set (1: graceful; 2: a second signal, abort
 * the tasks; the worker sets it to 1 itself when another process takes
 * its id over), then stops gracefully: no new tasks, running ones get
 * --grace, the rest is requeued and the worker leaves P:workers. Waits for
 * Redis as long as it is down. Returns the exit code. */
int worker_run(worker *w, volatile sig_atomic_t *stop);

/* Frees w; NULL does nothing. */
void worker_free(worker *w);

#endif
