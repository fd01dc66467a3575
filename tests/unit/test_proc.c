/* Tests of common/proc: instance ids, what tq_proc_start() returns and
 * prints for --help, --version, --help-markdown and bad options, the
 * signal counter, and --check against a real redis-server. */
#include "tests/support/capture.h"
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/log.h"
#include "common/conn.h"
#include "common/proc.h"

extern char **environ;

/* The tests read the real environment through tq_proc_start(): start from
 * one without TICKQ_* so the caller's cannot leak in. */
static void clear_tickq_env(void)
{
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "TICKQ_", 6) == 0) {
                char name[256];
                size_t n = strcspn(*e, "=");
                snprintf(name, sizeof name, "%.*s", (int)n, *e);
                unsetenv(name);
                again = 1;
                break;
            }
        }
    }
}

static int group_setup(void **state)
{
    (void)state;
    clear_tickq_env();
    return 0;
}

static int reset(void **state)
{
    (void)state;
    tq_log_init(TQ_LOG_INFO, TQ_LOG_TEXT, "tickq");
    clear_tickq_env();
    return 0;
}

/* Runs tq_proc_start with stdout and stderr captured. */
static int start(tq_prog prog, const char *component, char **out, char **err,
                 tq_config *cfg, ...)
{
    char *argv[16] = {"tickq-test"};
    int argc = 1;
    va_list ap;
    va_start(ap, cfg);
    for (const char *a; argc < 15 && (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    tq_test_capture co, ce;
    assert_int_equal(tq_test_capture_start(&co, STDOUT_FILENO), 0);
    assert_int_equal(tq_test_capture_start(&ce, STDERR_FILENO), 0);
    int rc = tq_proc_start(cfg, prog, component, "a test program.", argc, argv);
    *err = tq_test_capture_stop(&ce, NULL);
    *out = tq_test_capture_stop(&co, NULL);
    assert_non_null(*out);
    assert_non_null(*err);
    return rc;
}

/* ---- ids ---- */

static void test_default_id(void **state)
{
    (void)state;
    char id[TQ_CONFIG_NAME_MAX];
    tq_proc_default_id(id, sizeof id);
    regex_t re;
    assert_int_equal(
        regcomp(&re, "^[A-Za-z0-9_.-]+-[0-9]+-[0-9a-f]{4}$", REG_EXTENDED | REG_NOSUB),
        0);
    int match = regexec(&re, id, 0, NULL, 0);
    regfree(&re);
    if (match != 0)
        fail_msg("id \"%s\" is not host-pid-xxxx", id);
    TQ_ASSERT_INT(tq_config_name_ok(id), 1);

    char pid[32];
    snprintf(pid, sizeof pid, "-%d-", (int)getpid());
    TQ_ASSERT_CONTAINS(id, pid);

    char host[256] = "";
    gethostname(host, sizeof host - 1);
    if (host[0] && strlen(host) <= 40 && tq_config_name_ok(host))
        assert_true(strncmp(id, host, strlen(host)) == 0);
}

static void test_default_id_small_buffer(void **state)
{
    (void)state;
    char buf[16];
    memset(buf, 'x', sizeof buf);
    tq_proc_default_id(buf, 8);
    TQ_ASSERT_INT(strlen(buf), 7);
    TQ_ASSERT_INT(buf[8], 'x');
}

/* ---- start ---- */

static void test_start_help(void **state)
{
    (void)state;
    tq_config cfg;
    char *out, *err;
    TQ_ASSERT_INT(start(TQ_PROG_WORKER, "worker", &out, &err, &cfg, "--help", NULL), 0);
    TQ_ASSERT_CONTAINS(out, "usage: tickq-worker [options]");
    TQ_ASSERT_CONTAINS(out, "a test program.");
    TQ_ASSERT_CONTAINS(out, "-Q, --queues");
    TQ_ASSERT_CONTAINS(out, "TICKQ_REDIS_URL");
    TQ_ASSERT_STR(err, "");
    free(out);
    free(err);

    TQ_ASSERT_INT(start(TQ_PROG_WEB, "web", &out, &err, &cfg, "-h", NULL), 0);
    TQ_ASSERT_CONTAINS(out, "usage: tickq-web");
    TQ_ASSERT_CONTAINS(out, "--listen");
    free(out);
    free(err);
}

static void test_start_version(void **state)
{
    (void)state;
    tq_config cfg;
    char *out, *err;
    char want[512];
    snprintf(want, sizeof want, "tickq-beat %s\nTLS (rediss://): %s\n", TICKQ_VERSION,
             tq_conn_tls_info());
    TQ_ASSERT_INT(start(TQ_PROG_BEAT, "beat", &out, &err, &cfg, "--version", NULL), 0);
    TQ_ASSERT_STR(out, want);
    TQ_ASSERT_STR(err, "");
    free(out);
    free(err);
    TQ_ASSERT_INT(start(TQ_PROG_BEAT, "beat", &out, &err, &cfg, "-V", NULL), 0);
    TQ_ASSERT_STR(out, want);
    free(out);
    free(err);
}

static void test_start_markdown(void **state)
{
    (void)state;
    tq_config cfg;
    char *out, *err;
    TQ_ASSERT_INT(start(TQ_PROG_BEAT, "beat", &out, &err, &cfg, "--help-markdown", NULL),
                  0);
    TQ_ASSERT_CONTAINS(out, "| `--schedules` | `TICKQ_SCHEDULES` |");
    TQ_ASSERT_STR(err, "");
    free(out);
    free(err);
}

static void test_start_bad_option(void **state)
{
    (void)state;
    tq_config cfg;
    char *out, *err;
    TQ_ASSERT_INT(start(TQ_PROG_WORKER, "worker", &out, &err, &cfg, "--bogus", NULL), 2);
    TQ_ASSERT_STR(out, "");
    TQ_ASSERT_CONTAINS(err, "tickq-worker: ");
    TQ_ASSERT_CONTAINS(err, "'--bogus'");
    TQ_ASSERT_INT(tq_test_count_lines(err), 1);
    free(out);
    free(err);

    TQ_ASSERT_INT(start(TQ_PROG_WEB, "web", &out, &err, &cfg, "--listen", "nope", NULL),
                  2);
    TQ_ASSERT_CONTAINS(err, "tickq-web: --listen");
    free(out);
    free(err);

    /* A bad environment variable is a bad configuration too. */
    setenv("TICKQ_CONCURRENCY", "lots", 1);
    TQ_ASSERT_INT(start(TQ_PROG_WORKER, "worker", &out, &err, &cfg, NULL), 2);
    unsetenv("TICKQ_CONCURRENCY");
    TQ_ASSERT_CONTAINS(err, "TICKQ_CONCURRENCY");
    free(out);
    free(err);
}

static void test_start_goes_on(void **state)
{
    (void)state;
    tq_config cfg;
    char *out, *err;
    setenv("TICKQ_PREFIX", "from-env", 1);
    TQ_ASSERT_INT(start(TQ_PROG_WORKER, "worker", &out, &err, &cfg, "--log-level", "warn",
                        "--log-format=json", "-c", "3", NULL),
                  -1);
    unsetenv("TICKQ_PREFIX");
    TQ_ASSERT_STR(out, "");
    TQ_ASSERT_STR(err, "");
    TQ_ASSERT_STR(cfg.prefix, "from-env");
    TQ_ASSERT_INT(cfg.concurrency, 3);
    TQ_ASSERT_INT(cfg.log_level, TQ_LOG_WARN);
    /* Logging was started with the configuration. */
    TQ_ASSERT_INT(tq_log_min, TQ_LOG_WARN);
    free(out);
    free(err);

    tq_test_capture ce;
    assert_int_equal(tq_test_capture_start(&ce, STDERR_FILENO), 0);
    tq_warn("hello");
    err = tq_test_capture_stop(&ce, NULL);
    TQ_ASSERT_CONTAINS(err, "\"component\":\"worker\"");
    TQ_ASSERT_CONTAINS(err, "\"msg\":\"hello\"");
    free(err);
}

/* ---- signals ---- */

static void test_signals(void **state)
{
    (void)state;
    struct sigaction old_term, old_int, old_pipe;
    sigaction(SIGTERM, NULL, &old_term);
    sigaction(SIGINT, NULL, &old_int);
    sigaction(SIGPIPE, NULL, &old_pipe);

    tq_proc_stop = 0;
    tq_proc_signals();
    TQ_ASSERT_INT(tq_proc_stop, 0);
    raise(SIGTERM);
    TQ_ASSERT_INT(tq_proc_stop, 1);
    raise(SIGINT);
    TQ_ASSERT_INT(tq_proc_stop, 2);
    raise(SIGPIPE); /* ignored: the process lives on */
    TQ_ASSERT_INT(tq_proc_stop, 2);
    for (int i = 0; i < 200; i++)
        raise(SIGTERM);
    TQ_ASSERT_RANGE(tq_proc_stop, 3, 127); /* counts, but never overflows */

    tq_proc_stop = 0;
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_id, reset, reset),
        cmocka_unit_test_setup_teardown(test_default_id_small_buffer, reset, reset),
        cmocka_unit_test_setup_teardown(test_start_help, reset, reset),
        cmocka_unit_test_setup_teardown(test_start_version, reset, reset),
        cmocka_unit_test_setup_teardown(test_start_markdown, reset, reset),
        cmocka_unit_test_setup_teardown(test_start_bad_option, reset, reset),
        cmocka_unit_test_setup_teardown(test_start_goes_on, reset, reset),
        cmocka_unit_test_setup_teardown(test_signals, reset, reset),
    };
    return cmocka_run_group_tests_name("proc", tests, group_setup, NULL);
}
