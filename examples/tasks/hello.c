/* An example library of tickq tasks, loaded by a worker with
 *
 *     tickq-worker --tasks build/examples/libtickq-example-tasks.so
 *
 * It shows the whole API of common/task.h: arguments, output, failure, a
 * cooperative time limit and an exactly-once counter. Enqueue one with
 *
 *     redis-cli LPUSH 'tickq:{default}:queue' \
 *       '{"v":1,"id":"hello-1","task":"example.hello","args":["world"]}'
 *
 * and read its result with `redis-cli GET 'tickq:{default}:result:hello-1'`. */
#include "common/task.h"

#include <time.h>

/* args: [name]. Writes a greeting to the output and counts greetings in
 * the counter P:counter:example.greetings. */
static int hello(tq_task_ctx *ctx)
{
    const char *name = json_string_value(json_array_get(ctx->args, 0));
    if (!name)
        return tq_task_fail(ctx, "example.hello: args[0] must be a name");
    char line[256];
    int n =
        snprintf(line, sizeof line, "hello, %.200s (attempt %d)\n", name, ctx->attempt);
    tq_task_write(ctx, line, (size_t)n);
    return tq_task_count(ctx, "example.greetings", 1);
}

/* args: [seconds]. Works in 10 ms steps and gives up at the time limit or
 * at a shutdown, as a long task should. */
static int work(tq_task_ctx *ctx)
{
    double seconds = json_number_value(json_array_get(ctx->args, 0));
    struct timespec step = {0, 10 * 1000 * 1000};
    for (double done = 0; done < seconds; done += 0.01) {
        if (tq_task_should_stop(ctx))
            return tq_task_fail(ctx, "example.work: stopped after %.2f s", done);
        nanosleep(&step, NULL);
    }
    return 0;
}

const int tickq_task_api = TQ_TASK_API;
const tq_task_def tickq_tasks[] = {
    {"example.hello", hello, TQ_TASK_FAST},
    {"example.work", work, 0},
    {NULL, NULL, 0},
};
