/* The worker's built-in tasks and the interface a task implements.
 *
 * A task runs in a worker thread with the decoded message. It reports
 * success or failure and may ask for one effect in Redis: INCRBY of a key by
 * an amount, applied in the same script as the task's completion (done
 * marker, result, ack), so the effect happens exactly once even when the
 * worker is killed at any instant. timer.tick uses it on P:timer. */
#ifndef TQ_WORKER_TASKS_H
#define TQ_WORKER_TASKS_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/keys.h"
#include "common/msg.h"

#define WORKER_ERROR_MAX 512 /* bytes of a task's error text, with the NUL */

typedef struct {
    const tq_msg *msg;               /* borrowed, the message being run */
    volatile sig_atomic_t *stop;     /* the process' stop counter */
    _Atomic int64_t *grace_end_ms;   /* monotonic ms when a stopping worker's
                                        grace ends; 0 while running */
    /* filled by the task */
    char error[WORKER_ERROR_MAX];    /* why it failed ("" on success) */
    int aborted;                     /* 1: stopped by shutdown, not finished */
    tq_key effect_key;               /* TQ_KEY_COUNT_ for no effect */
    int64_t effect_by;               /* INCRBY amount */
} worker_task_ctx;

/* Runs the task. Returns 0 on success, -1 on failure (ctx->error says why). */
typedef int (*worker_task_fn)(worker_task_ctx *ctx);

typedef struct {
    const char *name;
    worker_task_fn run;
    int inline_fast; /* 1: returns in microseconds and may share a batch */
} worker_task;

/* Returns the built-in task called name (borrowed, static), or NULL. */
const worker_task *worker_task_find(const char *name);

#endif
