/* The shell task, the cron replacement: runs a program.
 *
 *   {"task": "shell", "args": ["pg_dump", "-f", "/backup/db.sql", "app"],
 *    "kwargs": {"env": {"PGHOST": "db"}, "cwd": "/srv", "stdin": "..."},
 *    "timeout": 600}
 *
 * args is the argv, run without a shell (write ["sh", "-c", "..."] for one),
 * found through PATH. The program gets a clean environment: of the worker's,
 * only PATH (default /usr/local/bin:/usr/bin:/bin), HOME, USER, LOGNAME,
 * SHELL, LANG, LANGUAGE, LC_*, TZ and TMPDIR, never a TICKQ_* variable (the
 * Redis URL holds the password); kwargs.env adds to it. cwd and stdin are
 * optional. stdout and stderr are captured together; the last
 * TQ_TASK_OUTPUT_MAX bytes are kept. Exit code 0 is success.
 *
 * The program runs in a process group of its own, under a small supervisor
 * process (see shell.c): when the program ends, what it left in its group
 * is killed; when the worker dies, even by kill -9, the whole group is
 * killed at once, so a redelivered message never runs beside an old copy.
 * At the time limit, or when a stopping worker's grace ends, the group gets
 * SIGTERM, then SIGKILL after WORKER_SHELL_KILL_GRACE_MS. */
#ifndef TQ_WORKER_SHELL_H
#define TQ_WORKER_SHELL_H

#include "common/task.h"

#define WORKER_SHELL_KILL_GRACE_MS 5000
#define WORKER_SHELL_ARGS_MAX 4096 /* argv entries */
#define WORKER_SHELL_STDIN_MAX (1024 * 1024)

/* The task function (see common/task.h). */
int worker_shell_run(tq_task_ctx *ctx);

#endif
