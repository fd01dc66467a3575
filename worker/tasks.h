/* The tasks a worker knows: the built-ins (timer.tick, noop, sleep, fail,
 * shell) and those of a library loaded with --tasks (common/task.h). */
#ifndef TQ_WORKER_TASKS_H
#define TQ_WORKER_TASKS_H

#include <stddef.h>

#include "common/task.h"

typedef struct worker_tasks worker_tasks;

/* Returns a new table of the built-in tasks plus, if library is not "",
 * the tasks of that shared library; or NULL with a sentence in err (a
 * library that cannot be loaded, has the wrong API version, or names a
 * task twice: a configuration error). */
worker_tasks *worker_tasks_new(const char *library, char *err, size_t errlen);

/* Unloads the library and frees t; NULL does nothing. */
void worker_tasks_free(worker_tasks *t);

/* The task called name (borrowed from t), or NULL. */
const tq_task_def *worker_tasks_find(const worker_tasks *t, const char *name);

/* How many tasks t knows. */
size_t worker_tasks_count(const worker_tasks *t);

#endif
