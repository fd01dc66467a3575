/* A private redis-server for tests (see redis_server.h). */
#include "tests/support/redis_server.h"
#include "common/log.h"
#include "common/url.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int tq_test_free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Forks and execs redis-server on srv->port. Sets srv->pid. */
static int spawn(tq_test_redis *srv)
{
    const char *bin = getenv("TICKQ_REDIS_SERVER");
    char port[16];
    const char *argv[40];
    int n = 0;

    if (!bin || !*bin)
        bin = "redis-server";
    snprintf(port, sizeof port, "%d", srv->port);
    argv[n++] = bin;
    char conf[256];
    if (srv->sentinel_of) {
        /* A sentinel rewrites its configuration file: one of its own. */
        snprintf(conf, sizeof conf, "%s/sentinel.conf", srv->dir);
        FILE *f = fopen(conf, "w");
        if (!f) {
            fprintf(stderr, "redis_server: %s: %s\n", conf, strerror(errno));
            return -1;
        }
        fprintf(f,
                "port %d\nbind 127.0.0.1\ndir %s\nlogfile redis.log\n"
                "sentinel monitor %s 127.0.0.1 %d 1\n"
                "sentinel down-after-milliseconds %s 1000\n",
                srv->port, srv->dir, srv->master, srv->sentinel_of, srv->master);
        if (srv->password[0])
            fprintf(f, "requirepass %s\n", srv->password);
        fclose(f);
        argv[n++] = conf;
        argv[n++] = "--sentinel";
        argv[n] = NULL;
        goto run;
    }
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = srv->dir;
    argv[n++] = "--logfile";
    argv[n++] = "redis.log";
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    if (srv->password[0]) {
        argv[n++] = "--requirepass";
        argv[n++] = srv->password;
    }
    if (srv->cluster) {
        argv[n++] = "--cluster-enabled";
        argv[n++] = "yes";
        argv[n++] = "--cluster-config-file";
        argv[n++] = "nodes.conf";
        argv[n++] = "--cluster-node-timeout";
        argv[n++] = "2000";
        /* A dead master's slots fail, not the whole cluster's. */
        argv[n++] = "--cluster-require-full-coverage";
        argv[n++] = "no";
    }
    if (srv->unix_socket) {
        argv[n++] = "--unixsocket";
        argv[n++] = srv->sock;
        argv[n++] = "--unixsocketperm";
        argv[n++] = "700";
    }
    argv[n] = NULL;
run:;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "redis_server: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Dies with the test, even when the test crashes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            close(null);
        }
        execvp(bin, (char *const *)argv);
        fprintf(stderr, "redis_server: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    srv->pid = pid;
    return 0;
}

/* Connects to srv's TCP port, authenticating if needed. */
static redisContext *connect_srv(const tq_test_redis *srv, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", srv->port, tv);
    if (!ctx)
        return NULL;
    if (ctx->err || redisSetTimeout(ctx, tv) != REDIS_OK) {
        redisFree(ctx);
        return NULL;
    }
    if (srv->password[0]) {
        redisReply *r = redisCommand(ctx, "AUTH %s", srv->password);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!ok) {
            redisFree(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* 1 when the server on srv->port answers INFO and is our child (another
 * test's server may have taken a port we picked). */
static int is_ours(const tq_test_redis *srv)
{
    redisContext *ctx = connect_srv(srv, 200);
    if (!ctx)
        return 0;
    redisReply *r = redisCommand(ctx, "INFO server");
    char want[48];
    snprintf(want, sizeof want, "\nprocess_id:%d\r", (int)srv->pid);
    int ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, want) != NULL;
    freeReplyObject(r);
    redisFree(ctx);
    return ok;
}

/* Waits for the child to answer. Returns 0, or -1 if it exited or timed
 * out (it is then reaped or killed). */
static int wait_ready(tq_test_redis *srv)
{
    long long deadline = mono_ms() + TQ_TEST_REDIS_START_TIMEOUT_MS;
    while (mono_ms() < deadline) {
        int status;
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
            srv->pid = 0;
            return -1;
        }
        if (is_ours(srv))
            return 0;
        sleep_ms(20);
    }
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    srv->pid = 0;
    return -1;
}

static void set_urls(tq_test_redis *srv)
{
    if (srv->sentinel_of) {
        snprintf(srv->url, sizeof srv->url,
                 "redis-sentinel://127.0.0.1:%d/0?master=%s%s%s", srv->port, srv->master,
                 srv->password[0] ? "&sentinel_password=" : "", srv->password);
        srv->unix_url[0] = '\0';
        return;
    }
    if (srv->password[0])
        snprintf(srv->url, sizeof srv->url, "redis://:%s@127.0.0.1:%d/0", srv->password,
                 srv->port);
    else
        snprintf(srv->url, sizeof srv->url, "redis://127.0.0.1:%d/0", srv->port);
    if (srv->unix_socket)
        snprintf(srv->unix_url, sizeof srv->unix_url, "unix://%s", srv->sock);
    else
        srv->unix_url[0] = '\0';
}

/* Starts srv as set up by the callers below (memset, then their fields). */
static int start(tq_test_redis *srv, const char *password, int unix_socket);

int tq_test_redis_start_with(tq_test_redis *srv, const char *password, int unix_socket)
{
    memset(srv, 0, sizeof *srv);
    return start(srv, password, unix_socket);
}

int tq_test_sentinel_start(tq_test_redis *srv, int master_port, const char *name,
                           const char *password)
{
    memset(srv, 0, sizeof *srv);
    srv->sentinel_of = master_port;
    snprintf(srv->master, sizeof srv->master, "%s", name);
    return start(srv, password, 0);
}

static int start(tq_test_redis *srv, const char *password, int unix_socket)
{
    const char *tmp = getenv("TMPDIR");
    /* A unix socket path must fit in sun_path (108 bytes). */
    if (!tmp || !*tmp || strlen(tmp) > 60)
        tmp = "/tmp";
    snprintf(srv->dir, sizeof srv->dir, "%s/tickq-unit.XXXXXX", tmp);
    if (!mkdtemp(srv->dir)) {
        fprintf(stderr, "redis_server: mkdtemp %s: %s\n", srv->dir, strerror(errno));
        srv->dir[0] = '\0';
        return -1;
    }
    if (password)
        snprintf(srv->password, sizeof srv->password, "%s", password);
    srv->unix_socket = unix_socket;
    if (unix_socket)
        snprintf(srv->sock, sizeof srv->sock, "%s/redis.sock", srv->dir);

    for (int tries = 0; tries < 20; tries++) {
        srv->port = tq_test_free_port();
        if (srv->port <= 0)
            continue;
        if (spawn(srv) < 0)
            break;
        if (wait_ready(srv) == 0) {
            set_urls(srv);
            return 0;
        }
    }
    fprintf(stderr, "redis_server: could not start redis-server (see %s/redis.log)\n",
            srv->dir);
    tq_test_redis_stop(srv);
    return -1;
}

/* 1 when every node of srv[0..n) says cluster_state:ok and knows n
 * masters' slot ranges. */
static int cluster_up(const tq_test_redis *srv, int n)
{
    for (int i = 0; i < n; i++) {
        redisReply *info = tq_test_redis_cmd(&srv[i], "CLUSTER INFO");
        redisReply *slots = tq_test_redis_cmd(&srv[i], "CLUSTER SLOTS");
        int ok = info && info->type == REDIS_REPLY_STRING &&
                 strstr(info->str, "cluster_state:ok") && slots &&
                 slots->type == REDIS_REPLY_ARRAY && (int)slots->elements == n;
        freeReplyObject(info);
        freeReplyObject(slots);
        if (!ok)
            return 0;
    }
    return 1;
}

int tq_test_cluster_start(tq_test_redis *srv, int n, char *url, size_t urllen)
{
    int started = 0;
    size_t used = (size_t)snprintf(url, urllen, "redis-cluster://");
    for (; started < n; started++) {
        memset(&srv[started], 0, sizeof srv[started]);
        srv[started].cluster = 1;
        if (start(&srv[started], NULL, 0) < 0)
            goto fail;
        used += (size_t)snprintf(url + used, used < urllen ? urllen - used : 0,
                                 "%s127.0.0.1:%d", started ? "," : "", srv[started].port);
    }
    for (int i = 0; i < n; i++) {
        int lo = 16384 * i / n, hi = 16384 * (i + 1) / n - 1;
        redisReply *r = tq_test_redis_cmd(&srv[i], "CLUSTER ADDSLOTSRANGE %d %d", lo, hi);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (i > 0) {
            r = tq_test_redis_cmd(&srv[i], "CLUSTER MEET 127.0.0.1 %d", srv[0].port);
            ok = ok && r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
        }
        if (!ok) {
            fprintf(stderr, "redis_server: cannot make node %d a cluster master\n", i);
            goto fail;
        }
    }
    for (long long end = mono_ms() + 30000; !cluster_up(srv, n); sleep_ms(100))
        if (mono_ms() > end) {
            fprintf(stderr, "redis_server: the cluster is not up after 30 s\n");
            goto fail;
        }
    return 0;
fail:
    for (int i = 0; i < started; i++)
        tq_test_redis_stop(&srv[i]);
    return -1;
}

int tq_test_redis_start(tq_test_redis *srv)
{
    return tq_test_redis_start_with(srv, NULL, 1);
}

int tq_test_redis_kill(tq_test_redis *srv)
{
    if (!srv->pid)
        return 0;
    kill(srv->pid, SIGTERM);
    long long deadline = mono_ms() + 5000;
    for (;;) {
        pid_t w = waitpid(srv->pid, NULL, WNOHANG);
        if (w == srv->pid || (w < 0 && errno == ECHILD))
            break;
        if (mono_ms() > deadline) {
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, NULL, 0);
            break;
        }
        sleep_ms(5);
    }
    srv->pid = 0;
    return 0;
}

int tq_test_redis_restart(tq_test_redis *srv)
{
    if (srv->pid)
        tq_test_redis_kill(srv);
    /* The port is ours unless someone took it meanwhile: retry a little
     * in case the old socket lingers. */
    for (int tries = 0; tries < 50; tries++) {
        if (spawn(srv) < 0)
            return -1;
        if (wait_ready(srv) == 0)
            return 0;
        sleep_ms(50);
    }
    fprintf(stderr, "redis_server: could not restart redis-server on port %d\n",
            srv->port);
    return -1;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

void tq_test_redis_stop(tq_test_redis *srv)
{
    tq_test_redis_kill(srv);
    if (srv->dir[0])
        remove_dir(srv->dir);
    srv->dir[0] = '\0';
}

redisReply *tq_test_redis_cmd(const tq_test_redis *srv, const char *fmt, ...)
{
    va_list ap;
    redisContext *ctx = connect_srv(srv, 2000);
    if (!ctx)
        return NULL;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    redisFree(ctx);
    return r;
}

int tq_test_redis_flush(const tq_test_redis *srv)
{
    redisReply *r = tq_test_redis_cmd(srv, "FLUSHALL");
    int ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    r = tq_test_redis_cmd(srv, "SCRIPT FLUSH");
    ok = ok && r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    r = tq_test_redis_cmd(srv, "FUNCTION FLUSH");
    ok = ok && r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return ok ? 0 : -1;
}

int tq_test_redis_group_start(tq_test_redis *srv, tq_conn **conn, const char *name)
{
    signal(SIGPIPE, SIG_IGN);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    if (tq_test_redis_start_with(srv, NULL, 0) < 0)
        return -1;
    if (!conn)
        return 0;
    tq_url u;
    if (tq_url_parse(srv->url, &u, NULL, 0) < 0 || !(*conn = tq_conn_new(&u, name))) {
        fprintf(stderr, "cannot connect to the test server %s\n", srv->url);
        return -1;
    }
    return 0;
}

int tq_test_redis_group_stop(tq_test_redis *srv, tq_conn *conn)
{
    tq_conn_free(conn);
    tq_test_redis_stop(srv);
    return 0;
}

int tq_test_redis_group_start_cluster(tq_test_redis *srv, tq_conn **conn,
                                      const char *name)
{
    char url[sizeof srv->url];
    signal(SIGPIPE, SIG_IGN);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    if (tq_test_cluster_start(srv, 1, url, sizeof url) < 0)
        return -1;
    snprintf(srv->url, sizeof srv->url, "%s", url);
    if (!conn)
        return 0;
    tq_url u;
    if (tq_url_parse(url, &u, NULL, 0) < 0 || !(*conn = tq_conn_new(&u, name))) {
        fprintf(stderr, "cannot connect to the test cluster %s\n", url);
        return -1;
    }
    return 0;
}
