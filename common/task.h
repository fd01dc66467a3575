/* Writing a tickq task in C.
 *
 * A task is a function that gets a tq_task_ctx: the message's id, arguments
 * and limits in, and its outcome out. It returns 0 for success or -1 for a
 * failure (tq_task_fail() sets the error and returns -1). A failed task is
 * retried with backoff up to max_retries, then dead-lettered.
 *
 * Tasks run in a worker thread. A C task cannot be killed safely, so the
 * time limit is cooperative: a long task calls tq_task_should_stop() now and
 * then and returns when it says so (the worker then records a timeout, or
 * requeues the task if the worker is shutting down). The `shell` task runs a
 * process and kills its process group at the limit instead.
 *
 * A task may ask for one effect in Redis, applied in the same script as its
 * completion (done marker, result, ack), so that it happens exactly once
 * even if the worker is killed at any instant: tq_task_count() adds to the
 * counter P:counter:<name>.
 *
 * Your own tasks, without rebuilding tickq: build a shared library that
 * includes this header and defines
 *
 *     const int tickq_task_api = TQ_TASK_API;
 *     const tq_task_def tickq_tasks[] = {
 *         {"example.hello", hello, 0},
 *         {NULL, NULL, 0},
 *     };
 *
 * and start the worker with --tasks /path/to/libmytasks.so. Everything here
 * is inline or a plain struct, so the library links against nothing of
 * tickq. See examples/tasks/. */
#ifndef TQ_TASK_H
#define TQ_TASK_H

#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TQ_TASK_API 2           /* tickq_task_api must equal this */
#define TQ_TASK_ERROR_MAX 512   /* bytes of the error text, with the NUL */
#define TQ_TASK_OUTPUT_MAX 4096 /* bytes of output kept: the last ones */
#define TQ_TASK_NAME_MAX 129    /* bytes of a task or counter name, with the NUL */

typedef struct tq_task_ctx {
    /* In: borrowed, valid during the call. */
    const char *id;                /* the task id */
    const char *task;              /* the task name */
    int attempt;                   /* 1 for the first run */
    const json_t *args;            /* array */
    const json_t *kwargs;          /* object */
    int64_t deadline_mono_ms;      /* time limit, CLOCK_MONOTONIC ms */
    volatile sig_atomic_t *stop;   /* the worker's signal counter */
    _Atomic int64_t *grace_end_ms; /* monotonic ms when a stopping worker's
                                      grace ends; 0 while running */
    /* Out: written by the task (through the helpers below). */
    char error[TQ_TASK_ERROR_MAX];   /* why it failed */
    char output[TQ_TASK_OUTPUT_MAX]; /* the last output bytes (not NUL-terminated) */
    size_t output_len;
    int exit_code;                  /* a process' exit code, -1 if none */
    int timed_out;                  /* stopped at the time limit */
    int aborted;                    /* stopped by the worker's shutdown */
    char counter[TQ_TASK_NAME_MAX]; /* effect: INCRBY P:counter:<counter> */
    int64_t counter_by;
} tq_task_ctx;

/* Runs the task: 0 on success, -1 on failure. */
typedef int (*tq_task_fn)(tq_task_ctx *ctx);

typedef struct {
    const char *name; /* 1 to 128 bytes, unique within the worker */
    tq_task_fn run;
    int flags; /* TQ_TASK_FAST or 0 */
} tq_task_def;

/* The task returns within microseconds: it may share a fetched batch. */
#define TQ_TASK_FAST 1

static inline int64_t tq_task_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns 1 when the task must return now: its time limit passed (sets
 * timed_out) or the worker is stopping and its grace is over, or a second
 * signal came (sets aborted). Cheap: call it in loops. */
static inline int tq_task_should_stop(tq_task_ctx *ctx)
{
    int64_t now = tq_task_now_ms();
    int64_t grace_end = ctx->grace_end_ms ? atomic_load(ctx->grace_end_ms) : 0;
    if ((ctx->stop && *ctx->stop >= 2) || (grace_end && now >= grace_end)) {
        ctx->aborted = 1;
        return 1;
    }
    if (now >= ctx->deadline_mono_ms) {
        ctx->timed_out = 1;
        return 1;
    }
    return 0;
}

/* Sets the error text (printf-style) and returns -1: `return
 * tq_task_fail(ctx, "no such file: %s", path);`. */
static inline int tq_task_fail(tq_task_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline int tq_task_fail(tq_task_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    return -1;
}

/* Appends output; only the last TQ_TASK_OUTPUT_MAX bytes are kept. */
static inline void tq_task_write(tq_task_ctx *ctx, const void *data, size_t len)
{
    const char *p = (const char *)data;
    if (len >= TQ_TASK_OUTPUT_MAX) {
        memcpy(ctx->output, p + len - TQ_TASK_OUTPUT_MAX, TQ_TASK_OUTPUT_MAX);
        ctx->output_len = TQ_TASK_OUTPUT_MAX;
        return;
    }
    if (ctx->output_len + len > TQ_TASK_OUTPUT_MAX) {
        size_t drop = ctx->output_len + len - TQ_TASK_OUTPUT_MAX;
        memmove(ctx->output, ctx->output + drop, ctx->output_len - drop);
        ctx->output_len -= drop;
    }
    memcpy(ctx->output + ctx->output_len, p, len);
    ctx->output_len += len;
}

/* Asks the completion to add `by` to the counter P:counter:<name> (1 to 128
 * of A-Z a-z 0-9 _ . : -), exactly once. Returns 0, or -1 (with the error
 * set) for a bad name. */
static inline int tq_task_count(tq_task_ctx *ctx, const char *name, int64_t by)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof ctx->counter ||
        strspn(name,
               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") != n)
        return tq_task_fail(
            ctx, "counter name '%.64s' must be 1 to 128 of A-Z a-z 0-9 _ . : -", name);
    memcpy(ctx->counter, name, n + 1);
    ctx->counter_by = by;
    return 0;
}

#endif
