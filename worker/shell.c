/* The shell task: posix_spawn in a new process group, a poll loop that
 * feeds stdin, keeps the output's tail and watches the limits. posix_spawn,
 * not fork: the worker is multithreaded. */
#include "worker/shell.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
    char **argv;
    char **envp;
    size_t nenv;
} spawn_args;

static void spawn_args_free(spawn_args *a)
{
    free(a->argv);
    for (size_t i = 0; a->envp && a->envp[i]; i++)
        free(a->envp[i]);
    free(a->envp);
}

/* The worker's environment with kwargs.env on top (new strings). */
static int build_env(tq_task_ctx *ctx, const json_t *env, spawn_args *a)
{
    size_t base = 0;
    while (environ[base])
        base++;
    size_t extra = env ? json_object_size(env) : 0;
    a->envp = calloc(base + extra + 1, sizeof *a->envp);
    if (!a->envp)
        return tq_task_fail(ctx, "shell: out of memory");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        if (!json_is_string(v) || !*k || strchr(k, '=') ||
            strlen(json_string_value(v)) != json_string_length(v))
            return tq_task_fail(
                ctx,
                "shell: kwargs.env['%.64s'] must be a string without NUL, "
                "under a name without '='",
                k);
        char *s = malloc(strlen(k) + json_string_length(v) + 2);
        if (!s)
            return tq_task_fail(ctx, "shell: out of memory");
        sprintf(s, "%s=%s", k, json_string_value(v));
        a->envp[a->nenv++] = s;
    }
    for (size_t i = 0; i < base; i++) {
        size_t n = strcspn(environ[i], "=");
        if (env && json_object_getn(env, environ[i], n))
            continue; /* overridden */
        if (!(a->envp[a->nenv] = strdup(environ[i])))
            return tq_task_fail(ctx, "shell: out of memory");
        a->nenv++;
    }
    return 0;
}

static int build_argv(tq_task_ctx *ctx, spawn_args *a)
{
    size_t n = json_array_size(ctx->args);
    if (!json_is_array(ctx->args) || n == 0 || n > WORKER_SHELL_ARGS_MAX)
        return tq_task_fail(ctx,
                            "shell: args must be the argv, a non-empty array of strings");
    a->argv = calloc(n + 1, sizeof *a->argv);
    if (!a->argv)
        return tq_task_fail(ctx, "shell: out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(ctx->args, i);
        if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
            return tq_task_fail(ctx, "shell: args[%zu] must be a string without NUL", i);
        a->argv[i] = (char *)json_string_value(s);
    }
    return 0;
}

/* Signals the group, then waits up to grace for the child; returns its
 * status, or -1 if it had to be killed with SIGKILL first. */
static int stop_group(pid_t pid, int *status)
{
    kill(-pid, SIGTERM);
    int64_t end = tq_clock_mono_ms() + WORKER_SHELL_KILL_GRACE_MS;
    while (tq_clock_mono_ms() < end) {
        if (waitpid(pid, status, WNOHANG) == pid) {
            kill(-pid, SIGKILL); /* what the child left in its group */
            return 0;
        }
        tq_clock_sleep_us(20000);
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

int worker_shell_run(tq_task_ctx *ctx)
{
    spawn_args a = {0};
    int out[2] = {-1, -1}, in[2] = {-1, -1};
    const char *stdin_data = NULL;
    size_t stdin_len = 0, stdin_off = 0;
    int rc = -1, status = 0;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0;
    pid_t pid = -1;

    const json_t *env = json_object_get(ctx->kwargs, "env");
    const json_t *cwd = json_object_get(ctx->kwargs, "cwd");
    const json_t *sin = json_object_get(ctx->kwargs, "stdin");
    if (env && !json_is_object(env)) {
        tq_task_fail(ctx, "shell: kwargs.env must be an object of strings");
        goto out;
    }
    if (cwd && (!json_is_string(cwd) || !json_string_length(cwd))) {
        tq_task_fail(ctx, "shell: kwargs.cwd must be a non-empty string");
        goto out;
    }
    if (sin &&
        (!json_is_string(sin) || json_string_length(sin) > WORKER_SHELL_STDIN_MAX)) {
        tq_task_fail(ctx, "shell: kwargs.stdin must be a string of at most %d bytes",
                     WORKER_SHELL_STDIN_MAX);
        goto out;
    }
    if (build_argv(ctx, &a) < 0 || build_env(ctx, env, &a) < 0)
        goto out;
    if (sin) {
        stdin_data = json_string_value(sin);
        stdin_len = json_string_length(sin);
    }

    if (pipe2(out, O_CLOEXEC) < 0 || (pipe2(in, O_CLOEXEC) < 0)) {
        tq_task_fail(ctx, "shell: pipe: %s", strerror(errno));
        goto out;
    }
    if (posix_spawn_file_actions_init(&fa) != 0 || posix_spawnattr_init(&attr) != 0) {
        tq_task_fail(ctx, "shell: out of memory");
        goto out;
    }
    fa_ok = attr_ok = 1;
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, json_string_value(cwd));
    /* A new process group, default signal handling and mask in the child. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    int err = posix_spawnp(&pid, a.argv[0], &fa, &attr, a.argv, a.envp);
    if (err) {
        ctx->exit_code = 127;
        tq_task_fail(ctx, "shell: cannot run '%.200s'%s%.200s: %s", a.argv[0],
                     cwd ? " in " : "", cwd ? json_string_value(cwd) : "", strerror(err));
        goto out;
    }
    close(out[1]);
    close(in[0]);
    out[1] = in[0] = -1;
    if (!stdin_len) {
        close(in[1]);
        in[1] = -1;
    } else {
        fcntl(in[1], F_SETFL, O_NONBLOCK);
    }

    int exited = 0, stopped = 0;
    char buf[4096];
    while (!exited) {
        struct pollfd p[2] = {{out[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
        int np = in[1] >= 0 ? 2 : 1;
        if (out[0] < 0) { /* output closed: just wait for the exit */
            p[0].fd = -1;
        }
        poll(p, (nfds_t)np, 50);
        if (out[0] >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(out[0], buf, sizeof buf);
            if (n > 0) {
                tq_task_write(ctx, buf, (size_t)n);
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(out[0]);
                out[0] = -1;
            }
        }
        if (in[1] >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in[1], stdin_data + stdin_off, stdin_len - stdin_off);
            if (n > 0)
                stdin_off += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || stdin_off == stdin_len) {
                close(in[1]);
                in[1] = -1;
            }
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = 1;
            /* The rest of the output (a grandchild may keep the pipe open:
             * take what is there, do not wait for it). */
            if (out[0] >= 0) {
                fcntl(out[0], F_SETFL, O_NONBLOCK);
                ssize_t n;
                while ((n = read(out[0], buf, sizeof buf)) > 0)
                    tq_task_write(ctx, buf, (size_t)n);
            }
        } else if (tq_task_should_stop(ctx)) {
            stopped = 1;
            stop_group(pid, &status);
            exited = 1;
        }
    }
    ctx->exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                     : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                           : -1;
    if (stopped && ctx->timed_out)
        tq_task_fail(ctx, "shell: '%.200s' killed at the time limit", a.argv[0]);
    else if (stopped)
        tq_task_fail(ctx, "shell: '%.200s' stopped by the worker's shutdown", a.argv[0]);
    else if (WIFSIGNALED(status))
        tq_task_fail(ctx, "shell: '%.200s' killed by signal %d", a.argv[0],
                     WTERMSIG(status));
    else if (ctx->exit_code != 0)
        tq_task_fail(ctx, "shell: '%.200s' exited with code %d", a.argv[0],
                     ctx->exit_code);
    else
        rc = 0;
out:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (in[i] >= 0)
            close(in[i]);
    }
    spawn_args_free(&a);
    return rc;
}
