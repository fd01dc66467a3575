/* Built-in tasks and the --tasks library loader. */
#include "worker/tasks.h"
#include "common/clock.h"
#include "common/err.h"
#include "worker/shell.h"

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>

#define TASKS_MAX 1024 /* tasks one worker knows, built-ins included */

struct worker_tasks {
    void *lib; /* dlopen handle, NULL for none */
    size_t n;
    tq_task_def defs[TASKS_MAX];
};

/* The demo's timer: an ordinary counter task, one second a tick, added
 * to P:counter:timer in the completion, exactly once. */
static int task_timer_tick(tq_task_ctx *ctx)
{
    return tq_task_count(ctx, "timer", 1);
}

static int task_noop(tq_task_ctx *ctx)
{
    (void)ctx;
    return 0;
}

/* args: [seconds]. Returns early at the time limit or a shutdown. */
static int task_sleep(tq_task_ctx *ctx)
{
    json_t *a = json_array_get(ctx->args, 0);
    if (!json_is_number(a) || json_number_value(a) < 0 || json_number_value(a) > 86400)
        return tq_task_fail(ctx,
                            "sleep: args[0] must be a number of seconds from 0 to 86400");
    int64_t end = tq_clock_mono_ms() + (int64_t)llround(json_number_value(a) * 1000.0);
    for (;;) {
        int64_t left = end - tq_clock_mono_ms();
        if (left <= 0)
            return 0;
        if (tq_task_should_stop(ctx))
            return -1;
        tq_clock_sleep_us((left < 20 ? left : 20) * 1000);
    }
}

static int task_fail(tq_task_ctx *ctx)
{
    return tq_task_fail(ctx, "fail: this task always fails");
}

static const tq_task_def builtins[] = {
    {"timer.tick", task_timer_tick, TQ_TASK_FAST},
    {"noop", task_noop, TQ_TASK_FAST},
    {"sleep", task_sleep, 0},
    {"fail", task_fail, TQ_TASK_FAST},
    {"shell", worker_shell_run, 0},
};

const tq_task_def *worker_tasks_find(const worker_tasks *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->defs[i].name, name) == 0)
            return &t->defs[i];
    return NULL;
}

size_t worker_tasks_count(const worker_tasks *t)
{
    return t->n;
}

static int add(worker_tasks *t, const tq_task_def *d, const char *from, char *err,
               size_t errlen)
{
    if (!d->name || !d->run || !d->name[0] || strlen(d->name) >= TQ_TASK_NAME_MAX)
        return tq_err_set(TQ_ECONFIG, err, errlen,
                          "%s: a task needs a name of 1 to 128 bytes and a function",
                          from);
    if (worker_tasks_find(t, d->name))
        return tq_err_set(TQ_ECONFIG, err, errlen, "%s: task '%s' is defined twice", from,
                          d->name);
    if (t->n == TASKS_MAX)
        return tq_err_set(TQ_ECONFIG, err, errlen, "%s: more than %d tasks", from,
                          TASKS_MAX);
    t->defs[t->n++] = *d;
    return 0;
}

static int load(worker_tasks *t, const char *path, char *err, size_t errlen)
{
    t->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!t->lib)
        return tq_err_set(TQ_ECONFIG, err, errlen, "--tasks: %s", dlerror());
    const int *api = dlsym(t->lib, "tickq_task_api");
    const tq_task_def *defs = dlsym(t->lib, "tickq_tasks");
    if (!api || !defs)
        return tq_err_set(TQ_ECONFIG, err, errlen,
                          "--tasks %s: defines no tickq_task_api and tickq_tasks (see "
                          "common/task.h)",
                          path);
    if (*api != TQ_TASK_API)
        return tq_err_set(TQ_ECONFIG, err, errlen,
                          "--tasks %s: built for task API %d, this worker has %d", path,
                          *api, TQ_TASK_API);
    for (size_t i = 0; defs[i].name; i++) {
        int rc = add(t, &defs[i], path, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

worker_tasks *worker_tasks_new(const char *library, char *err, size_t errlen)
{
    worker_tasks *t = calloc(1, sizeof *t);
    if (!t) {
        tq_err_set(TQ_ENOMEM, err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        add(t, &builtins[i], "built-in", err, errlen);
    if (library && *library && load(t, library, err, errlen) < 0) {
        worker_tasks_free(t);
        return NULL;
    }
    return t;
}

void worker_tasks_free(worker_tasks *t)
{
    if (!t)
        return;
    if (t->lib)
        dlclose(t->lib);
    free(t);
}
