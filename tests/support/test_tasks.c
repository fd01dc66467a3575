/* Tasks for the integration and chaos tests, loaded with --tasks:
 *   test.crash   kills its own worker with SIGKILL (a poison message)
 *   test.count   args [counter, ms]: works ms milliseconds, then adds 1 to
 *                P:counter:<counter> in its completion (exactly once) */
#include "common/task.h"

#include <signal.h>
#include <unistd.h>

static int crash(tq_task_ctx *ctx)
{
    (void)ctx;
    kill(getpid(), SIGKILL);
    return 0;
}

static int count(tq_task_ctx *ctx)
{
    const char *name = json_string_value(json_array_get(ctx->args, 0));
    json_int_t ms = json_integer_value(json_array_get(ctx->args, 1));
    if (!name)
        return tq_task_fail(ctx, "test.count: args[0] must be a counter name");
    int64_t end = tq_task_now_ms() + ms;
    while (tq_task_now_ms() < end) {
        if (tq_task_should_stop(ctx))
            return tq_task_fail(ctx, "test.count: stopped");
        struct timespec step = {0, 1000 * 1000};
        nanosleep(&step, NULL);
    }
    return tq_task_count(ctx, name, 1);
}

const int tickq_task_api = TQ_TASK_API;
const tq_task_def tickq_tasks[] = {
    {"test.crash", crash, 0},
    {"test.count", count, 0},
    {NULL, NULL, 0},
};
