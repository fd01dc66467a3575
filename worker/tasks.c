/* Built-in tasks: timer.tick, noop, sleep, fail. */
#include "worker/tasks.h"
#include "common/clock.h"

#include <jansson.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Adds one second to the timer, through the completion's effect. */
static int task_timer_tick(worker_task_ctx *ctx)
{
    ctx->effect_key = TQ_KEY_TIMER;
    ctx->effect_by = 1;
    return 0;
}

static int task_noop(worker_task_ctx *ctx)
{
    (void)ctx;
    return 0;
}

/* args: [seconds]. Sleeps, waking every 50 ms to see whether the worker is
 * stopping and its grace period is over; then the task is aborted and its
 * message requeued. */
static int task_sleep(worker_task_ctx *ctx)
{
    json_t *a = json_array_get(ctx->msg->args, 0);
    if (!json_is_number(a) || json_number_value(a) < 0 || json_number_value(a) > 86400) {
        snprintf(ctx->error, sizeof ctx->error,
                 "sleep: args[0] must be a number of seconds from 0 to 86400");
        return -1;
    }
    int64_t end = tq_clock_mono_ms() + (int64_t)llround(json_number_value(a) * 1000.0);
    for (;;) {
        int64_t now = tq_clock_mono_ms();
        if (now >= end)
            return 0;
        int64_t grace_end = *ctx->grace_end_ms;
        if (*ctx->stop >= 2 || (grace_end && now >= grace_end)) {
            ctx->aborted = 1;
            snprintf(ctx->error, sizeof ctx->error, "sleep: aborted by shutdown");
            return -1;
        }
        int64_t step = end - now < 50 ? end - now : 50;
        tq_clock_sleep_us(step * 1000);
    }
}

static int task_fail(worker_task_ctx *ctx)
{
    snprintf(ctx->error, sizeof ctx->error, "fail: this task always fails");
    return -1;
}

static const worker_task builtins[] = {
    {"timer.tick", task_timer_tick, 1},
    {"noop", task_noop, 1},
    {"sleep", task_sleep, 0},
    {"fail", task_fail, 1},
};

const worker_task *worker_task_find(const char *name)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}
