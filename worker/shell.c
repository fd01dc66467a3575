/* The shell task: a supervised child in a new process group, and a poll
 * loop that feeds stdin, keeps the output's tail and watches the limits.
 *
 * Processes. The worker forks a supervisor, which forks the task:
 *
 *     worker thread --> supervisor (PR_SET_PDEATHSIG: SIGHUP)
 *                         --> task: leader of a new process group, execve
 *                               --> what the task starts (same group)
 *
 * - The worker dies (kill -9, OOM): the kernel sends the supervisor SIGHUP,
 *   and it SIGKILLs the task's whole group, so no copy of a task outlives
 *   its worker and runs beside the reaper's redelivery. (It also polls
 *   getppid() each second, in case the signal was lost.)
 * - The task ends: the supervisor SIGKILLs what it left in its group (as
 *   systemd does for a service), then exits with the task's status (the
 *   same code, or dies by the same signal).
 * - Time limit or worker shutdown: the worker signals the task's group,
 *   SIGTERM then SIGKILL after the grace, and waits for the supervisor.
 *
 * Why not posix_spawn: PR_SET_PDEATHSIG must be set in the child between
 * fork and exec, and it would only kill that child, not its group; a group
 * kill needs a process that outlives the task. Why not a subreaper: the
 * orphans would move to it, but it dies with the worker. A task that leaves
 * its process group (setsid) escapes; only a cgroup would hold it.
 *
 * The worker is multithreaded, so between _Fork() and execve() the two
 * children make only async-signal-safe system calls: nothing allocates, the
 * program is found through PATH before the fork. A launch pipe reports what
 * happened: the supervisor writes the task's pid (or -errno if it could not
 * fork), the task writes errno if chdir or execve fails, and end of file
 * means the program is running. */
#include "worker/shell.h"
#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"
#define LAUNCH_FD 3 /* the launch pipe in the children */

typedef struct {
    char **argv;
    char **envp;
    size_t nenv;
    char *path; /* argv[0] found through PATH */
} spawn_args;

/* The value of name in envp, or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp[i]; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

static void spawn_args_free(spawn_args *a)
{
    free(a->argv);
    free(a->path);
    for (size_t i = 0; a->envp && a->envp[i]; i++)
        free(a->envp[i]);
    free(a->envp);
}

/* What a task keeps of the worker's environment: the locale, the zone,
 * who and where it is, and PATH. Nothing else: no TICKQ_* (the Redis URL
 * holds the password) and no other secret the worker was given.
 * kwargs.env adds to this (and may set any name). */
static int inherited(const char *entry)
{
    static const char *const keep[] = {"PATH", "HOME",     "USER", "LOGNAME", "SHELL",
                                       "LANG", "LANGUAGE", "TZ",   "TMPDIR"};
    size_t n = strcspn(entry, "=");
    if (strncmp(entry, "LC_", 3) == 0)
        return 1;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (strlen(keep[i]) == n && strncmp(entry, keep[i], n) == 0)
            return 1;
    return 0;
}

/* The clean environment (see inherited()) with kwargs.env on top, and
 * PATH=DEFAULT_PATH when neither has one (new strings). */
static int build_env(tq_task_ctx *ctx, const json_t *env, spawn_args *a)
{
    size_t base = 0;
    while (environ[base])
        base++;
    size_t extra = env ? json_object_size(env) : 0;
    a->envp = calloc(base + extra + 2, sizeof *a->envp);
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
        if (!inherited(environ[i]) || (env && json_object_getn(env, environ[i], n)))
            continue; /* not for tasks, or overridden */
        if (!(a->envp[a->nenv] = strdup(environ[i])))
            return tq_task_fail(ctx, "shell: out of memory");
        a->nenv++;
    }
    if (!env_get(a->envp, "PATH") && !(a->envp[a->nenv++] = strdup("PATH=" DEFAULT_PATH)))
        return tq_task_fail(ctx, "shell: out of memory");
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

/* Finds name through path as execvp() would, before the fork: the child
 * must not allocate. A name with a '/' is used as it is (relative to the
 * task's cwd). Returns a new string, or NULL with errno set. */
static char *find_program(const char *name, const char *path)
{
    if (strchr(name, '/'))
        return strdup(name);
    int err = ENOENT;
    for (const char *p = path;;) {
        const char *e = strchrnul(p, ':');
        int dl = (int)(e - p);
        char *full = malloc((size_t)dl + strlen(name) + 2);
        if (!full)
            return NULL;
        sprintf(full, "%.*s%s%s", dl, p, dl ? "/" : "", name); /* "": the cwd */
        struct stat st;
        if (access(full, X_OK) == 0 && stat(full, &st) == 0 && S_ISREG(st.st_mode))
            return full;
        if (errno == EACCES)
            err = EACCES;
        free(full);
        if (!*e)
            break;
        p = e + 1;
    }
    errno = err;
    return NULL;
}

/* What the children need, prepared before the fork. */
typedef struct {
    const spawn_args *a;
    const char *cwd; /* NULL for the worker's */
    int in_fd, out_fd, launch_fd;
    pid_t worker;
    int max_fd; /* close descriptors below this if close_range() fails */
} launch;

/* Async-signal-safe helpers for the children. */
static void put_int(int fd, int v)
{
    ssize_t n = write(fd, &v, sizeof v);
    (void)n;
}

static void close_from(int lo, int max_fd)
{
    if (close_range((unsigned)lo, ~0U, 0) == 0)
        return;
    for (int fd = lo; fd < max_fd; fd++)
        close(fd);
}

/* The task, in the supervisor's child: its own process group, default
 * signals, the cwd, execve. Never returns. */
__attribute__((noreturn)) static void run_task(const launch *l)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a supervisor killed outright */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* the worker ignores SIGPIPE */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (!l->cwd || chdir(l->cwd) == 0)
        execve(l->a->path, l->a->argv, l->a->envp);
    put_int(LAUNCH_FD, errno);
    _exit(127);
}

/* Ends the supervisor as the task ended: the same exit code, or death by
 * the same signal (without a core file). */
__attribute__((noreturn)) static void exit_like(int status)
{
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    kill(getpid(), sig);
    _exit(128 + sig);
}

/* The supervisor (see the top of the file). Runs in the worker's fresh
 * child; never returns. */
__attribute__((noreturn)) static void supervise(const launch *l)
{
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* taken with sigtimedwait() */
    prctl(PR_SET_PDEATHSIG, SIGHUP);
    if (getppid() != l->worker)
        _exit(125); /* the worker died before prctl() */
    /* 0 stdin, 1 and 2 the output, LAUNCH_FD the launch pipe; no other
     * descriptor (another task's launch pipe would never see its EOF). */
    int in = fcntl(l->in_fd, F_DUPFD, 10), out = fcntl(l->out_fd, F_DUPFD, 10);
    int lf = fcntl(l->launch_fd, F_DUPFD_CLOEXEC, 10);
    if (in < 0 || out < 0 || lf < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(out, 2) < 0 || dup3(lf, LAUNCH_FD, O_CLOEXEC) < 0) {
        put_int(lf >= 0 ? lf : l->launch_fd, -errno);
        _exit(126);
    }
    close_from(LAUNCH_FD + 1, l->max_fd);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &dfl, NULL); /* never SIG_IGN: we wait for the task */

    pid_t t = _Fork();
    if (t == 0)
        run_task(l);
    if (t < 0) {
        put_int(LAUNCH_FD, -errno);
        _exit(126);
    }
    setpgid(t, t); /* also done by the task: whichever runs first */
    put_int(LAUNCH_FD, t);
    close(LAUNCH_FD);

    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, SIGCHLD);
    sigaddset(&wake, SIGHUP);
    for (;;) {
        /* WNOWAIT: the task stays a zombie, so its pid (the group's id)
         * cannot be reused while we kill the group. */
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)t, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid) {
            kill(-t, SIGKILL); /* what the task left in its group */
            int status = 0;
            while (waitpid(t, &status, 0) < 0 && errno == EINTR)
                ;
            exit_like(status);
        }
        if (getppid() != l->worker) {
            kill(-t, SIGKILL);
            _exit(128 + SIGKILL);
        }
        struct timespec second = {1, 0};
        if (sigtimedwait(&wake, NULL, &second) == SIGHUP) {
            kill(-t, SIGKILL); /* the worker died */
            _exit(128 + SIGKILL);
        }
    }
}

/* Reads one int from the launch pipe: 1 when read, 0 at end of file. */
static int get_int(int fd, int *v)
{
    size_t got = 0;
    while (got < sizeof *v) {
        ssize_t n = read(fd, (char *)v + got, sizeof *v - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || errno != EINTR)
            return 0;
    }
    return 1;
}

/* Starts the supervisor and the task. Returns 0 with *sup and *pgid set,
 * or -1 after failing ctx (the supervisor, if any, reaped). */
static int start(tq_task_ctx *ctx, spawn_args *a, const char *cwd, int in_fd, int out_fd,
                 pid_t *sup, pid_t *pgid)
{
    int lp[2];
    if (pipe2(lp, O_CLOEXEC) < 0)
        return tq_task_fail(ctx, "shell: pipe: %s", strerror(errno));
    struct rlimit nofile;
    launch l = {a, cwd, in_fd, out_fd, lp[1], getpid(), 65536};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < 65536)
        l.max_fd = (int)nofile.rlim_cur;
    pid_t pid = _Fork();
    if (pid == 0)
        supervise(&l);
    int fork_errno = errno;
    close(lp[1]);
    if (pid < 0) {
        close(lp[0]);
        return tq_task_fail(ctx, "shell: fork: %s", strerror(fork_errno));
    }
    int t = 0, err = 0;
    int got_pid = get_int(lp[0], &t);
    int failed = got_pid && t > 0 && get_int(lp[0], &err);
    close(lp[0]);
    if (got_pid && t > 0 && !failed) {
        *sup = pid;
        *pgid = t;
        return 0;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    ctx->exit_code = 127;
    if (!got_pid)
        return tq_task_fail(ctx, "shell: the supervisor of '%.200s' failed to start",
                            a->argv[0]);
    return tq_task_fail(ctx, "shell: cannot run '%.200s'%s%.200s: %s", a->argv[0],
                        cwd ? " in " : "", cwd ? cwd : "", strerror(t > 0 ? err : -t));
}

/* Signals the task's group, then waits up to grace for the supervisor;
 * returns 0, or -1 if the group had to be killed with SIGKILL first. */
static int stop_group(pid_t sup, pid_t pgid, int *status)
{
    kill(-pgid, SIGTERM);
    int64_t end = tq_clock_mono_ms() + WORKER_SHELL_KILL_GRACE_MS;
    while (tq_clock_mono_ms() < end) {
        if (waitpid(sup, status, WNOHANG) == sup)
            return 0; /* the supervisor killed what the task left */
        tq_clock_sleep_us(20000);
    }
    kill(-pgid, SIGKILL);
    while (waitpid(sup, status, 0) < 0 && errno == EINTR)
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
    pid_t pid = -1, pgid = -1;

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
    if (!(a.path = find_program(a.argv[0], env_get(a.envp, "PATH")))) {
        ctx->exit_code = 127;
        tq_task_fail(ctx, "shell: cannot run '%.200s': %s", a.argv[0], strerror(errno));
        goto out;
    }
    if (sin) {
        stdin_data = json_string_value(sin);
        stdin_len = json_string_length(sin);
    }

    if (pipe2(out, O_CLOEXEC) < 0 || (pipe2(in, O_CLOEXEC) < 0)) {
        tq_task_fail(ctx, "shell: pipe: %s", strerror(errno));
        goto out;
    }
    if (start(ctx, &a, cwd ? json_string_value(cwd) : NULL, in[0], out[1], &pid, &pgid) <
        0)
        goto out;
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
            stop_group(pid, pgid, &status);
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
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (in[i] >= 0)
            close(in[i]);
    }
    spawn_args_free(&a);
    return rc;
}
