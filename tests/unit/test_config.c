/* Tests of common/config: defaults per program, env and flag precedence,
 * every kind of value and every kind of mistake. The environment is a static
 * table behind the getenv function pointer: the real environment is never
 * read. */
#include "tests/support/check.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/config.h"
#include "common/conn.h"

/* The current fake environment: name, value, name, value, ..., NULL. */
static const char *const *fake_env;

static const char *fake_getenv(const char *name)
{
    for (size_t i = 0; fake_env && fake_env[i]; i += 2)
        if (strcmp(fake_env[i], name) == 0)
            return fake_env[i + 1];
    return NULL;
}

#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NOENV NULL
#define ARGS(...) ((const char *[]){"tickq-test", __VA_ARGS__, NULL})
#define NOARGS ((const char *[]){"tickq-test", NULL})

static const char *prog_name(tq_prog prog)
{
    return prog == TQ_PROG_BEAT ? "beat" : prog == TQ_PROG_WORKER ? "worker" : "web";
}

static int parse(tq_config *cfg, tq_prog prog, const char *const *env, const char **argv,
                 char *err, size_t errlen)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    fake_env = env;
    int rc =
        tq_config_parse(cfg, prog, argc, (char *const *)argv, fake_getenv, err, errlen);
    fake_env = NULL;
    return rc;
}

/* Describes argv and env for failure messages. */
static const char *describe(const char *const *env, const char **argv)
{
    static char buf[2048];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    buf[0] = '\0';
    if (!f)
        return "?";
    for (size_t i = 0; env && env[i]; i += 2)
        fprintf(f, "%s=%s ", env[i], env[i + 1]);
    for (size_t i = 1; argv[i]; i++)
        fprintf(f, "'%s' ", argv[i]);
    fclose(f);
    buf[sizeof buf - 1] = '\0';
    return buf;
}

static void ok(tq_config *cfg, tq_prog prog, const char *const *env, const char **argv)
{
    char err[512] = "";
    int rc = parse(cfg, prog, env, argv, err, sizeof err);
    if (rc != 0)
        fail_msg("%s %s: expected 0, got %d (%s): %s", prog_name(prog),
                 describe(env, argv), rc, tq_strerror(rc), err);
}

/* Expects TQ_ECONFIG and an error text that contains needle. */
static void bad(tq_prog prog, const char *const *env, const char **argv,
                const char *needle)
{
    tq_config cfg;
    char err[512] = "";
    int rc = parse(&cfg, prog, env, argv, err, sizeof err);
    if (rc != TQ_ECONFIG)
        fail_msg("%s %s: expected TQ_ECONFIG, got %d (%s)", prog_name(prog),
                 describe(env, argv), rc, tq_strerror(rc));
    if (!strstr(err, needle))
        fail_msg("%s %s: error \"%s\" does not name \"%s\"", prog_name(prog),
                 describe(env, argv), err, needle);
}

/* ---- defaults ---- */

static void check_common_defaults(const tq_config *cfg)
{
    TQ_ASSERT_STR(cfg->redis_url, "redis://127.0.0.1:6379/0");
    TQ_ASSERT_STR(cfg->prefix, "tickq");
    TQ_ASSERT_INT(cfg->log_level, TQ_LOG_INFO);
    TQ_ASSERT_INT(cfg->log_format, TQ_LOG_TEXT);
    TQ_ASSERT_INT(cfg->check, 0);
}

static void test_defaults_beat(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_BEAT, NOENV, NOARGS);
    check_common_defaults(&cfg);
    TQ_ASSERT_STR(cfg.schedules, "");
    TQ_ASSERT_STR(cfg.beat_id, "");
    TQ_ASSERT_INT(cfg.lease_ms, 5000);
    /* The worker's and web's fields are not the beat's business. */
    TQ_ASSERT_INT(cfg.nqueues, 0);
    TQ_ASSERT_STR(cfg.listen, "");
}

static void test_defaults_worker(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER, NOENV, NOARGS);
    check_common_defaults(&cfg);
    TQ_ASSERT_STR(cfg.worker_id, "");
    TQ_ASSERT_INT(cfg.concurrency, 0);
    TQ_ASSERT_INT(cfg.nqueues, 1);
    TQ_ASSERT_STR(cfg.queues[0], "default");
    TQ_ASSERT_INT(cfg.liveness_ms, 10000);
    TQ_ASSERT_INT(cfg.grace_ms, 10000);
    TQ_ASSERT_INT(cfg.timeout_ms, 30000);
    TQ_ASSERT_INT(cfg.done_ttl_ms, 86400000);
    TQ_ASSERT_INT(cfg.result_ttl_ms, 86400000);
    TQ_ASSERT_INT(cfg.lease_ms, 0);
    TQ_ASSERT_STR(cfg.listen, "");
}

static void test_defaults_web(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WEB, NOENV, NOARGS);
    check_common_defaults(&cfg);
    TQ_ASSERT_STR(cfg.listen, "127.0.0.1:5000");
    TQ_ASSERT_INT(cfg.web_threads, 8);
    TQ_ASSERT_INT(cfg.nqueues, 0);
    TQ_ASSERT_INT(cfg.lease_ms, 0);
}

static void test_defaults_with_null_getenv(void **state)
{
    (void)state;
    tq_config cfg;
    char err[256] = "";
    const char *argv[] = {"tickq-test", NULL};
    TQ_ASSERT_RC_ERR(tq_config_parse(&cfg, TQ_PROG_WORKER, 1, (char *const *)argv, NULL,
                                     err, sizeof err),
                     0, err);
    TQ_ASSERT_STR(cfg.prefix, "tickq");
    /* argc 0 (no argv[0]) is fine too. */
    TQ_ASSERT_RC_ERR(
        tq_config_parse(&cfg, TQ_PROG_WEB, 0, (char *const *)argv, NULL, err, sizeof err),
        0, err);
    TQ_ASSERT_STR(cfg.listen, "127.0.0.1:5000");
}

static void test_parse_overwrites_everything(void **state)
{
    (void)state;
    tq_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    ok(&cfg, TQ_PROG_BEAT, NOENV, NOARGS);
    TQ_ASSERT_STR(cfg.worker_id, "");
    TQ_ASSERT_INT(cfg.concurrency, 0);
}

/* ---- precedence ---- */

static void test_env_beats_default(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER,
       ENV("TICKQ_PREFIX", "envp", "TICKQ_CONCURRENCY", "4", "TICKQ_QUEUES", "hi,lo",
           "TICKQ_REDIS_URL", "redis://r:6390/2", "TICKQ_LOG_LEVEL", "debug",
           "TICKQ_LOG_FORMAT", "json", "TICKQ_GRACE", "1.5", "TICKQ_WORKER_ID", "w-1"),
       NOARGS);
    TQ_ASSERT_STR(cfg.prefix, "envp");
    TQ_ASSERT_INT(cfg.concurrency, 4);
    TQ_ASSERT_INT(cfg.nqueues, 2);
    TQ_ASSERT_STR(cfg.queues[0], "hi");
    TQ_ASSERT_STR(cfg.queues[1], "lo");
    TQ_ASSERT_STR(cfg.redis_url, "redis://r:6390/2");
    TQ_ASSERT_INT(cfg.log_level, TQ_LOG_DEBUG);
    TQ_ASSERT_INT(cfg.log_format, TQ_LOG_JSON);
    TQ_ASSERT_INT(cfg.grace_ms, 1500);
    TQ_ASSERT_STR(cfg.worker_id, "w-1");

    ok(&cfg, TQ_PROG_BEAT,
       ENV("TICKQ_LEASE", "7", "TICKQ_SCHEDULES", "/etc/tickq/s.json", "TICKQ_BEAT_ID",
           "b1"),
       NOARGS);
    TQ_ASSERT_INT(cfg.lease_ms, 7000);
    TQ_ASSERT_STR(cfg.schedules, "/etc/tickq/s.json");
    TQ_ASSERT_STR(cfg.beat_id, "b1");

    ok(&cfg, TQ_PROG_WEB, ENV("TICKQ_LISTEN", "0.0.0.0:8080", "TICKQ_WEB_THREADS", "2"),
       NOARGS);
    TQ_ASSERT_STR(cfg.listen, "0.0.0.0:8080");
    TQ_ASSERT_INT(cfg.web_threads, 2);
}

static void test_flag_beats_env(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER,
       ENV("TICKQ_PREFIX", "envp", "TICKQ_CONCURRENCY", "4", "TICKQ_QUEUES", "hi,lo"),
       ARGS("--prefix=flagp", "-c", "2", "--queues", "only"));
    TQ_ASSERT_STR(cfg.prefix, "flagp");
    TQ_ASSERT_INT(cfg.concurrency, 2);
    TQ_ASSERT_INT(cfg.nqueues, 1);
    TQ_ASSERT_STR(cfg.queues[0], "only");

    /* The last flag wins. */
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("--prefix", "a", "--prefix", "b"));
    TQ_ASSERT_STR(cfg.prefix, "b");
}

static void test_env_of_other_program_ignored(void **state)
{
    (void)state;
    tq_config cfg;
    /* A worker does not read TICKQ_LISTEN, so garbage there is harmless. */
    ok(&cfg, TQ_PROG_WORKER, ENV("TICKQ_LISTEN", "garbage", "TICKQ_LEASE", "x"), NOARGS);
    TQ_ASSERT_STR(cfg.listen, "");
    ok(&cfg, TQ_PROG_WEB, ENV("TICKQ_QUEUES", "a b", "TICKQ_CONCURRENCY", "-5"), NOARGS);
    TQ_ASSERT_INT(cfg.nqueues, 0);
}

/* ---- flag syntax ---- */

static void test_flag_forms(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--prefix=p1"));
    TQ_ASSERT_STR(cfg.prefix, "p1");
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--prefix", "p2"));
    TQ_ASSERT_STR(cfg.prefix, "p2");
    /* "=" splits at the first '=': the value may hold more. */
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--schedules=/tmp/a=b.json"));
    TQ_ASSERT_STR(cfg.schedules, "/tmp/a=b.json");
    /* An empty value is a mistake (an unset shell variable), never "the
     * default": leave the option out for that. */
    bad(TQ_PROG_BEAT, ENV("TICKQ_SCHEDULES", "/x"), ARGS("--schedules="), "--schedules");
    /* A value may start with a dash when given separately. */
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "-1"), "--concurrency");
}

static void test_short_flags(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("-c", "16", "-Q", "high,default,low"));
    TQ_ASSERT_INT(cfg.concurrency, 16);
    TQ_ASSERT_INT(cfg.nqueues, 3);
    TQ_ASSERT_STR(cfg.queues[0], "high");
    TQ_ASSERT_STR(cfg.queues[1], "default");
    TQ_ASSERT_STR(cfg.queues[2], "low");
    /* Short flags belong to the worker only. */
    bad(TQ_PROG_BEAT, NOENV, ARGS("-c", "2"), "'-c'");
    bad(TQ_PROG_WEB, NOENV, ARGS("-Q", "a"), "'-Q'");
    /* No glued values, no unknown letters. */
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c4"), "'-c4'");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-x"), "'-x'");
}

static void test_help_version_markdown(void **state)
{
    (void)state;
    tq_config cfg;
    char err[256];
    const tq_prog progs[] = {TQ_PROG_BEAT, TQ_PROG_WORKER, TQ_PROG_WEB};
    for (size_t i = 0; i < 3; i++) {
        TQ_ASSERT_RC(parse(&cfg, progs[i], NOENV, ARGS("-h"), err, sizeof err), TQ_EHELP);
        TQ_ASSERT_RC(parse(&cfg, progs[i], NOENV, ARGS("--help"), err, sizeof err),
                     TQ_EHELP);
        TQ_ASSERT_RC(parse(&cfg, progs[i], NOENV, ARGS("-V"), err, sizeof err),
                     TQ_EVERSION);
        TQ_ASSERT_RC(parse(&cfg, progs[i], NOENV, ARGS("--version"), err, sizeof err),
                     TQ_EVERSION);
        TQ_ASSERT_RC(
            parse(&cfg, progs[i], NOENV, ARGS("--help-markdown"), err, sizeof err),
            TQ_EMARKDOWN);
    }
    /* Help after good options still answers help. */
    TQ_ASSERT_RC(
        parse(&cfg, TQ_PROG_WORKER, NOENV, ARGS("-c", "3", "--help"), err, sizeof err),
        TQ_EHELP);
    /* --help and --version answer even when the environment is bad. */
    TQ_ASSERT_RC(parse(&cfg, TQ_PROG_WORKER, ENV("TICKQ_CONCURRENCY", "lots"),
                       ARGS("--help"), err, sizeof err),
                 TQ_EHELP);
    TQ_ASSERT_RC(
        parse(&cfg, TQ_PROG_BEAT, ENV("TICKQ_LEASE", "0"), ARGS("-V"), err, sizeof err),
        TQ_EVERSION);
    /* "--help=x" is not --help. */
    bad(TQ_PROG_WORKER, NOENV, ARGS("--help=x"), "--help=x");
}

static void test_unknown_option(void **state)
{
    (void)state;
    bad(TQ_PROG_BEAT, NOENV, ARGS("--bogus"), "'--bogus'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--bogus=1"), "'--bogus=1'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("positional"), "'positional'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("-"), "'-'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--"), "'--'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--pre"), "'--pre'"); /* no prefix matching */
    bad(TQ_PROG_BEAT, NOENV, ARGS("--PREFIX", "x"), "'--PREFIX'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("-prefix", "x"), "'-prefix'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--prefix", "x", "extra"), "'extra'");
}

static void test_missing_value(void **state)
{
    (void)state;
    bad(TQ_PROG_BEAT, NOENV, ARGS("--prefix"), "--prefix");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--redis-url"), "--redis-url");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c"), "--concurrency");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q"), "--queues");
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen"), "--listen");
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen"), "value");
}

static void test_option_of_another_program(void **state)
{
    (void)state;
    bad(TQ_PROG_WORKER, NOENV, ARGS("--listen", "1.2.3.4:80"), "'--listen'");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--lease=5"), "'--lease=5'");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--web-threads", "2"), "'--web-threads'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--queues", "a"), "'--queues'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--worker-id", "w"), "'--worker-id'");
    bad(TQ_PROG_WEB, NOENV, ARGS("--concurrency", "2"), "'--concurrency'");
    bad(TQ_PROG_WEB, NOENV, ARGS("--schedules", "x"), "'--schedules'");
    bad(TQ_PROG_WEB, NOENV, ARGS("--beat-id", "x"), "'--beat-id'");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--timeout", "5"), "'--timeout'");
}

/* ---- numbers ---- */

static void test_numbers_in_range(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("-c", "256"));
    TQ_ASSERT_INT(cfg.concurrency, 256);
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("-c", "0"));
    TQ_ASSERT_INT(cfg.concurrency, 0);
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("--concurrency=1"));
    TQ_ASSERT_INT(cfg.concurrency, 1);
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--web-threads", "1"));
    TQ_ASSERT_INT(cfg.web_threads, 1);
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--web-threads", "256"));
    TQ_ASSERT_INT(cfg.web_threads, 256);
}

static void test_numbers_out_of_range(void **state)
{
    (void)state;
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "257"), "--concurrency");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--concurrency=-1"), "--concurrency");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "1e9"), "--concurrency");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "99999999999999999999999"), "--concurrency");
    bad(TQ_PROG_WEB, NOENV, ARGS("--web-threads", "0"), "--web-threads");
    bad(TQ_PROG_WEB, NOENV, ARGS("--web-threads", "257"), "--web-threads");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--lease", "0.5"), "--lease");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--lease", "301"), "--lease");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--lease", "-5"), "--lease");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--liveness", "1.999"), "--liveness");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--liveness", "3601"), "--liveness");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--grace", "-0.001"), "--grace");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--timeout", "0"), "--timeout");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--timeout", "86401"), "--timeout");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--done-ttl", "0"), "--done-ttl");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--result-ttl", "31536001"), "--result-ttl");
    /* The same from the environment names the variable. */
    bad(TQ_PROG_WORKER, ENV("TICKQ_CONCURRENCY", "1000"), NOARGS, "TICKQ_CONCURRENCY");
    bad(TQ_PROG_BEAT, ENV("TICKQ_LEASE", "0"), NOARGS, "TICKQ_LEASE");
    bad(TQ_PROG_WEB, ENV("TICKQ_WEB_THREADS", "0"), NOARGS, "TICKQ_WEB_THREADS");
}

static void test_not_numbers(void **state)
{
    (void)state;
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "abc"), "--concurrency");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "1.5"), "--concurrency");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", ""), "--concurrency");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "4x"), "--concurrency");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "nan"), "--concurrency");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--lease", "5s"), "--lease");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--lease", "nan"), "--lease");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--lease", "inf"), "--lease");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--lease", ""), "--lease");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--lease="), "--lease");
    bad(TQ_PROG_WORKER, ENV("TICKQ_TIMEOUT", "thirty"), NOARGS, "TICKQ_TIMEOUT");
    bad(TQ_PROG_WORKER, ENV("TICKQ_CONCURRENCY", ""), NOARGS, "TICKQ_CONCURRENCY");
}

static void test_seconds_to_ms(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER, NOENV,
       ARGS("--grace", "0.5", "--timeout", "0.25", "--liveness", "2", "--done-ttl",
            "3600", "--result-ttl", "1.001"));
    TQ_ASSERT_INT(cfg.grace_ms, 500);
    TQ_ASSERT_INT(cfg.timeout_ms, 250);
    TQ_ASSERT_INT(cfg.liveness_ms, 2000);
    TQ_ASSERT_INT(cfg.done_ttl_ms, 3600000);
    TQ_ASSERT_INT(cfg.result_ttl_ms, 1001);
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("--timeout", "0.001", "--grace", "0"));
    TQ_ASSERT_INT(cfg.timeout_ms, 1);
    TQ_ASSERT_INT(cfg.grace_ms, 0);
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("--timeout", "86400", "--liveness", "3600"));
    TQ_ASSERT_INT(cfg.timeout_ms, 86400000);
    TQ_ASSERT_INT(cfg.liveness_ms, 3600000);
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--lease=2.5"));
    TQ_ASSERT_INT(cfg.lease_ms, 2500);
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--lease=300"));
    TQ_ASSERT_INT(cfg.lease_ms, 300000);
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--lease=1"));
    TQ_ASSERT_INT(cfg.lease_ms, 1000);
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("--result-ttl", "31536000"));
    TQ_ASSERT_INT(cfg.result_ttl_ms, 31536000000LL); /* over 2^31 ms */
}

/* rediss:// and its files: the files only with a rediss:// URL, a
 * certificate with its key; without TLS in the build, rediss:// says so. */
static void test_tls_options(void **state)
{
    (void)state;
    tq_config cfg;
    const char *cert_only[] = {"x",     "--redis-url", "rediss://h", "--redis-tls-cert",
                               "c.pem", NULL};
    const char *key_only[] = {"x",     "--redis-url", "rediss://h", "--redis-tls-key",
                              "k.pem", NULL};
    const char *plain[] = {"x", "--redis-tls-ca", "ca.pem", NULL};
    const char *env_plain[] = {"TICKQ_REDIS_TLS_CA", "ca.pem", NULL};
    const char *none[] = {"x", NULL};
    const char *all[] = {"x",
                         "--redis-url",
                         "rediss://:pw@h:6380/2",
                         "--redis-tls-ca",
                         "/ca.pem",
                         "--redis-tls-cert",
                         "/c.pem",
                         "--redis-tls-key",
                         "/k.pem",
                         NULL};
    /* A cluster's seeds; TLS options go with rediss-cluster:// too. */
    const char *cluster[] = {"x", "--redis-url", "redis-cluster://a:7000,b:7001", NULL};
    ok(&cfg, TQ_PROG_BEAT, NULL, cluster);
    const char *cluster_ca[] = {
        "x", "--redis-url", "redis-cluster://a:7000", "--redis-tls-ca", "ca.pem", NULL};
    bad(TQ_PROG_WORKER, NULL, cluster_ca,
        "--redis-tls-ca applies to a rediss:// url only");
    if (!tq_conn_tls()) {
        bad(TQ_PROG_WORKER, NULL, all,
            "a rediss:// url needs TLS, and this build has none");
        return;
    }
    bad(TQ_PROG_WORKER, NULL, cert_only, "--redis-tls-cert needs --redis-tls-key too");
    bad(TQ_PROG_BEAT, NULL, key_only, "--redis-tls-key needs --redis-tls-cert too");
    bad(TQ_PROG_WEB, NULL, plain, "--redis-tls-ca applies to a rediss:// url only");
    bad(TQ_PROG_WEB, env_plain, none,
        "TICKQ_REDIS_TLS_CA applies to a rediss:// url only");
    ok(&cfg, TQ_PROG_WORKER, NULL, all);
    tq_url u;
    char err[256];
    assert_int_equal(tq_config_url(&cfg, &u, err, sizeof err), 0);
    TQ_ASSERT_INT(u.tls, 1);
    TQ_ASSERT_STR(u.host, "h");
    TQ_ASSERT_INT(u.port, 6380);
    TQ_ASSERT_STR(u.tls_ca, "/ca.pem");
    TQ_ASSERT_STR(u.tls_cert, "/c.pem");
    TQ_ASSERT_STR(u.tls_key, "/k.pem");
}

/* ---- queues ---- */

static void test_queues(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("-Q", "a , b.c ,x:y-z_1"));
    TQ_ASSERT_INT(cfg.nqueues, 3);
    TQ_ASSERT_STR(cfg.queues[0], "a");
    TQ_ASSERT_STR(cfg.queues[1], "b.c");
    TQ_ASSERT_STR(cfg.queues[2], "x:y-z_1");

    /* Exactly TQ_CONFIG_QUEUES_MAX queues, then one too many. */
    char list[512] = "";
    for (int i = 0; i < TQ_CONFIG_QUEUES_MAX; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%sq%d", i ? "," : "",
                 i);
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("--queues", list));
    TQ_ASSERT_INT(cfg.nqueues, TQ_CONFIG_QUEUES_MAX);
    TQ_ASSERT_STR(cfg.queues[TQ_CONFIG_QUEUES_MAX - 1], "q15");
    strcat(list, ",q16");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--queues", list), "--queues");

    /* A queue name of 64 bytes fits, 65 does not. */
    char longq[TQ_CONFIG_NAME_MAX + 1];
    memset(longq, 'q', TQ_CONFIG_NAME_MAX - 1);
    longq[TQ_CONFIG_NAME_MAX - 1] = '\0';
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("-Q", longq));
    TQ_ASSERT_STR(cfg.queues[0], longq);
    strcat(longq, "q");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", longq), "--queues");

    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a,a"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a, b ,a"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", ""), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", ","), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a,,b"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a,"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", " , a"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", " a,b"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a,b "), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", " "), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a, ,b"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a b"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a/b"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a\tb"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "caf\xc3\xa9"), "--queues");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-Q", "a;b"), "--queues");
    bad(TQ_PROG_WORKER, ENV("TICKQ_QUEUES", "x,x"), NOARGS, "TICKQ_QUEUES");
}

/* ---- names, levels, formats, urls, listen, check ---- */

static void test_names(void **state)
{
    (void)state;
    tq_config cfg;
    char name[TQ_CONFIG_NAME_MAX + 1];
    memset(name, 'p', TQ_CONFIG_NAME_MAX - 1);
    name[TQ_CONFIG_NAME_MAX - 1] = '\0';
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--prefix", name));
    TQ_ASSERT_STR(cfg.prefix, name);
    strcat(name, "p");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--prefix", name), "--prefix");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--prefix", ""), "--prefix");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--prefix", "a b"), "--prefix");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--prefix", "a*"), "--prefix");
    bad(TQ_PROG_BEAT, ENV("TICKQ_PREFIX", ""), NOARGS, "TICKQ_PREFIX");

    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("--worker-id", "host-1.2:3_x"));
    TQ_ASSERT_STR(cfg.worker_id, "host-1.2:3_x");
    /* Left out, the id is generated; given empty, it is a mistake. */
    bad(TQ_PROG_WORKER, NOENV, ARGS("--worker-id", ""), "--worker-id");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--worker-id", "a b"), "--worker-id");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--worker-id", name), "--worker-id");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--beat-id", "b/1"), "--beat-id");
    bad(TQ_PROG_BEAT, ENV("TICKQ_BEAT_ID", "b\n1"), NOARGS, "TICKQ_BEAT_ID");
}

static void test_name_ok(void **state)
{
    (void)state;
    char name[TQ_CONFIG_NAME_MAX + 1];
    memset(name, 'n', TQ_CONFIG_NAME_MAX - 1);
    name[TQ_CONFIG_NAME_MAX - 1] = '\0';
    TQ_ASSERT_INT(tq_config_name_ok(name), 1);
    strcat(name, "n");
    TQ_ASSERT_INT(tq_config_name_ok(name), 0);
    TQ_ASSERT_INT(tq_config_name_ok("a"), 1);
    TQ_ASSERT_INT(tq_config_name_ok("AZaz09_.:-"), 1);
    TQ_ASSERT_INT(tq_config_name_ok(""), 0);
    TQ_ASSERT_INT(tq_config_name_ok(" "), 0);
    TQ_ASSERT_INT(tq_config_name_ok("a b"), 0);
    TQ_ASSERT_INT(tq_config_name_ok("a/b"), 0);
    TQ_ASSERT_INT(tq_config_name_ok("a@b"), 0);
    TQ_ASSERT_INT(tq_config_name_ok("caf\xc3\xa9"), 0);
    TQ_ASSERT_INT(tq_config_name_ok("a\x01"), 0);
    TQ_ASSERT_INT(tq_config_name_ok("*"), 0);
}

static void test_log_options(void **state)
{
    (void)state;
    tq_config cfg;
    const char *levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--log-level", levels[i]));
        TQ_ASSERT_INT(cfg.log_level, i);
    }
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--log-level=WARN"));
    TQ_ASSERT_INT(cfg.log_level, TQ_LOG_WARN);
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--log-format", "json"));
    TQ_ASSERT_INT(cfg.log_format, TQ_LOG_JSON);
    ok(&cfg, TQ_PROG_WEB, ENV("TICKQ_LOG_FORMAT", "json"), ARGS("--log-format", "text"));
    TQ_ASSERT_INT(cfg.log_format, TQ_LOG_TEXT);

    bad(TQ_PROG_WEB, NOENV, ARGS("--log-level", "verbose"), "--log-level");
    bad(TQ_PROG_WEB, NOENV, ARGS("--log-level", "warning"), "--log-level");
    bad(TQ_PROG_WEB, NOENV, ARGS("--log-level", ""), "--log-level");
    bad(TQ_PROG_WEB, ENV("TICKQ_LOG_LEVEL", "trace"), NOARGS, "TICKQ_LOG_LEVEL");
    bad(TQ_PROG_WEB, NOENV, ARGS("--log-format", "xml"), "--log-format");
    bad(TQ_PROG_WEB, NOENV, ARGS("--log-format", "JSON"), "--log-format");
    bad(TQ_PROG_WEB, ENV("TICKQ_LOG_FORMAT", ""), NOARGS, "TICKQ_LOG_FORMAT");
}

static void test_redis_url(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--redis-url", "redis://:pw@db.internal:6380/3"));
    TQ_ASSERT_STR(cfg.redis_url, "redis://:pw@db.internal:6380/3");
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--redis-url=unix:///run/redis.sock?db=1"));
    TQ_ASSERT_STR(cfg.redis_url, "unix:///run/redis.sock?db=1");

    bad(TQ_PROG_BEAT, NOENV, ARGS("--redis-url", "http://x"), "--redis-url");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--redis-url", "http://x"), "redis://");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--redis-url", "redis://h:0"), "port");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--redis-url", ""), "--redis-url");
    bad(TQ_PROG_WORKER, ENV("TICKQ_REDIS_URL", "redis://"), NOARGS, "TICKQ_REDIS_URL");

    char longurl[TQ_CONFIG_STR_MAX + 16];
    strcpy(longurl, "redis://h/");
    memset(longurl + 10, '1', TQ_CONFIG_STR_MAX);
    longurl[TQ_CONFIG_STR_MAX + 10] = '\0';
    bad(TQ_PROG_WORKER, NOENV, ARGS("--redis-url", longurl), "--redis-url");
}

static void test_listen(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--listen", "0.0.0.0:8080"));
    TQ_ASSERT_STR(cfg.listen, "0.0.0.0:8080");
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--listen=[::]:5000"));
    TQ_ASSERT_STR(cfg.listen, "[::]:5000");
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--listen=localhost:65535"));
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen", "nohost"), "--listen");
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen", "h:0"), "--listen");
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen", "h:65536"), "--listen");
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen", "h:80x"), "--listen");
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen", "h:"), "--listen");
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen", ":80"), "--listen");
    bad(TQ_PROG_WEB, ENV("TICKQ_LISTEN", "5000"), NOARGS, "TICKQ_LISTEN");
}

static void test_check_bool(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--check"));
    TQ_ASSERT_INT(cfg.check, 1);
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("--check=true"));
    TQ_ASSERT_INT(cfg.check, 1);
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--check=1"));
    TQ_ASSERT_INT(cfg.check, 1);
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--check=false"));
    TQ_ASSERT_INT(cfg.check, 0);
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--check=0"));
    TQ_ASSERT_INT(cfg.check, 0);
    ok(&cfg, TQ_PROG_WEB, ENV("TICKQ_CHECK", "true"), NOARGS);
    TQ_ASSERT_INT(cfg.check, 1);
    ok(&cfg, TQ_PROG_WEB, ENV("TICKQ_CHECK", "1"), ARGS("--check=false"));
    TQ_ASSERT_INT(cfg.check, 0);
    ok(&cfg, TQ_PROG_WEB, ENV("TICKQ_CHECK", "false"), ARGS("--check"));
    TQ_ASSERT_INT(cfg.check, 1);
    /* A boolean flag takes no separate value: "false" is not its value. */
    bad(TQ_PROG_WEB, NOENV, ARGS("--check", "false"), "'false'");
    bad(TQ_PROG_WEB, NOENV, ARGS("--check=yes"), "--check");
    bad(TQ_PROG_WEB, NOENV, ARGS("--check="), "--check");
    bad(TQ_PROG_WEB, ENV("TICKQ_CHECK", "on"), NOARGS, "TICKQ_CHECK");
}

static void test_error_buffer(void **state)
{
    (void)state;
    tq_config cfg;
    char err[12];
    memset(err, 'x', sizeof err);
    TQ_ASSERT_RC(parse(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--a-very-long-unknown-option"),
                       err, sizeof err),
                 TQ_ECONFIG);
    TQ_ASSERT_INT(strnlen(err, sizeof err), sizeof err - 1);
    TQ_ASSERT_RC(parse(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--bogus"), NULL, 0), TQ_ECONFIG);
}

/* ---- usage ---- */

/* noinline: inlined, gcc 12 mistakes open_memstream's buffer for a
 * dangling pointer (-Wdangling-pointer). */
__attribute__((noinline)) static char *usage_text(tq_prog prog, int markdown)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    tq_config_usage(prog, f, markdown);
    fclose(f);
    return text;
}

static void test_usage(void **state)
{
    (void)state;
    char *w = usage_text(TQ_PROG_WORKER, 0);
    TQ_ASSERT_CONTAINS(w, "-c, --concurrency");
    TQ_ASSERT_CONTAINS(w, "-Q, --queues");
    TQ_ASSERT_CONTAINS(w, "TICKQ_QUEUES");
    TQ_ASSERT_CONTAINS(w, "--redis-url");
    TQ_ASSERT_CONTAINS(w, "-h, --help");
    TQ_ASSERT_CONTAINS(w, "-V, --version");
    TQ_ASSERT_NOT_CONTAINS(w, "--listen");
    TQ_ASSERT_NOT_CONTAINS(w, "--lease");
    free(w);

    char *b = usage_text(TQ_PROG_BEAT, 0);
    TQ_ASSERT_CONTAINS(b, "--schedules");
    TQ_ASSERT_CONTAINS(b, "default '5'");
    TQ_ASSERT_NOT_CONTAINS(b, "--queues");
    free(b);

    char *m = usage_text(TQ_PROG_WEB, 1);
    TQ_ASSERT_CONTAINS(m,
                       "| flag | environment | default | meaning |\n|---|---|---|---|\n");
    TQ_ASSERT_CONTAINS(m, "| `--listen` | `TICKQ_LISTEN` | `127.0.0.1:5000` |");
    TQ_ASSERT_CONTAINS(m, "| `--prefix` | `TICKQ_PREFIX` | `tickq` |");
    TQ_ASSERT_NOT_CONTAINS(m, "--queues");
    /* Every row is a table row. */
    for (char *line = m; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        if (line[0] != '|' || nl[-1] != '|')
            fail_msg("markdown line is not a table row: %.*s", (int)(nl - line), line);
        line = nl + 1;
    }
    free(m);
}

/* Every documented default parses (the table cannot hold a bad default):
 * the parse itself would fail with "default of --x" otherwise. */
static void test_every_flag_in_help_parses(void **state)
{
    (void)state;
    const tq_prog progs[] = {TQ_PROG_BEAT, TQ_PROG_WORKER, TQ_PROG_WEB};
    for (size_t i = 0; i < 3; i++) {
        char *m = usage_text(progs[i], 1);
        /* Feed every flag its own default back on the command line. */
        for (char *p = strstr(m, "| `"); p; p = strstr(p + 1, "\n| `")) {
            if (*p == '\n')
                p++;
            char flag[64], env[64], def[128];
            const char *f = strstr(p, "--");
            if (!f ||
                sscanf(f, "--%63[^`]` | `%63[^`]` | `%127[^`]`", flag, env, def) < 2)
                fail_msg("cannot read the row \"%.60s\"", p);
            if (sscanf(f, "--%63[^`]` | `%63[^`]` | `%127[^`]`", flag, env, def) == 2)
                def[0] = '\0';
            char arg[256];
            snprintf(arg, sizeof arg, "--%s=%s", flag, def);
            /* --count only goes with a dry run. */
            int dry = strcmp(flag, "count") == 0;
            const char *argv[] = {"tickq-test", arg, dry ? "--next-runs=* * * * *" : NULL,
                                  NULL};
            if (!def[0]) { /* (none): only leaving it out gives it */
                bad(progs[i], NOENV, argv, flag);
                continue;
            }
            tq_config cfg;
            char err[512] = "";
            int rc = parse(&cfg, progs[i], NOENV, argv, err, sizeof err);
            if (rc != 0)
                fail_msg("%s %s: %d (%s): %s", prog_name(progs[i]), arg, rc,
                         tq_strerror(rc), err);
        }
        free(m);
    }
}

/* ---- every option against every kind of bad value ---- */

/* The flags and variables of prog, from its --help-markdown rows: the
 * options the table really has, so a new option is tested by itself. */
typedef struct {
    char flag[64]; /* without the dashes */
    char env[64];
    int is_bool;
} option_row;

static size_t option_rows(tq_prog prog, option_row *rows, size_t cap)
{
    char *m = usage_text(prog, 1);
    size_t n = 0;
    for (char *p = strstr(m, "\n| `"); p && n < cap; p = strstr(p + 1, "\n| `")) {
        const char *f = strstr(p, "--");
        if (!f || sscanf(f, "--%63[^`]` | `%63[^`]`", rows[n].flag, rows[n].env) != 2)
            fail_msg("cannot read the row \"%.60s\"", p);
        rows[n].is_bool =
            strcmp(rows[n].flag, "check") == 0 || strcmp(rows[n].flag, "top") == 0;
        n++;
    }
    free(m);
    return n;
}

/* Every option refuses the value v, by flag (--x=v and --x v) and by its
 * environment variable, naming the flag or the variable. */
static void refused_everywhere(tq_prog prog, const char *v, int except_bool)
{
    option_row rows[64];
    size_t n = option_rows(prog, rows, 64);
    TQ_ASSERT_RANGE(n, 7, 64);
    for (size_t i = 0; i < n; i++) {
        char flag[80], eq[600];
        snprintf(flag, sizeof flag, "--%.63s", rows[i].flag);
        snprintf(eq, sizeof eq, "--%.63s=%.500s", rows[i].flag, v);
        bad(prog, NOENV, ARGS(eq), flag);
        if (!rows[i].is_bool)
            bad(prog, NOENV, ARGS(flag, v), flag);
        else if (except_bool)
            continue;
        bad(prog, ENV(rows[i].env, v), NOARGS, rows[i].env);
    }
}

static void test_every_option_refuses_empty(void **state)
{
    (void)state;
    const tq_prog progs[] = {TQ_PROG_BEAT, TQ_PROG_WORKER, TQ_PROG_WEB};
    for (size_t i = 0; i < 3; i++)
        refused_everywhere(progs[i], "", 0);
    /* The defect: an empty --next-runs ran the daemon instead of the dry run. */
    bad(TQ_PROG_BEAT, NOENV, ARGS("--next-runs", ""), "--next-runs");
    bad(TQ_PROG_BEAT, ENV("TICKQ_NEXT_RUNS", ""), NOARGS, "TICKQ_NEXT_RUNS");
}

static void test_every_option_refuses_spaces_and_controls(void **state)
{
    (void)state;
    const tq_prog progs[] = {TQ_PROG_BEAT, TQ_PROG_WORKER, TQ_PROG_WEB};
    const char *values[] = {" 5", "5 ", " x", "x ", "\t1", "1\n", "a\001b", "a\x7f"};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < sizeof values / sizeof values[0]; j++)
            refused_everywhere(progs[i], values[j], 0);
    /* The message names the problem. */
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", " 5"), "space");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--schedules", "/x\x1b[2J"), "control");
}

static void test_strict_numbers(void **state)
{
    (void)state;
    const char *ints[] = {"0x10",
                          "1e3",
                          "1e0",
                          "+5",
                          "5.0",
                          "05x",
                          "1_000",
                          "١",
                          "--5",
                          "0x0",
                          "1e-3",
                          "INF",
                          "-",
                          "99999999999999999999",
                          "-99999999999999999999",
                          "18446744073709551617"};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        bad(TQ_PROG_WORKER, NOENV, ARGS("-c", ints[i]), "--concurrency");
        bad(TQ_PROG_WORKER, NOENV, ARGS("--max-retries", ints[i]), "--max-retries");
        bad(TQ_PROG_WORKER, ENV("TICKQ_MAX_DELIVERIES", ints[i]), NOARGS,
            "TICKQ_MAX_DELIVERIES");
        bad(TQ_PROG_BEAT, NOENV, ARGS("--catchup-max", ints[i]), "--catchup-max");
        bad(TQ_PROG_BEAT, NOENV, ARGS("--count", ints[i], "--next-runs", "* * * * *"),
            "--count");
        bad(TQ_PROG_WEB, NOENV, ARGS("--web-threads", ints[i]), "--web-threads");
    }
    const char *secs[] = {"0x10",  "1e3",   "1e0", "+5",  "5.", ".5",
                          "1,5",   "0x1p3", "INF", "nan", "-",  "99999999999999999999",
                          "1.2.3", "5s"};
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        bad(TQ_PROG_WORKER, NOENV, ARGS("--timeout", secs[i]), "--timeout");
        bad(TQ_PROG_WORKER, ENV("TICKQ_GRACE", secs[i]), NOARGS, "TICKQ_GRACE");
        bad(TQ_PROG_BEAT, NOENV, ARGS("--lease", secs[i]), "--lease");
    }
    /* Negative where not allowed (no option allows one). */
    bad(TQ_PROG_WORKER, NOENV, ARGS("--max-retries", "-1"), "--max-retries");
    bad(TQ_PROG_WORKER, NOENV, ARGS("--grace", "-1"), "--grace");
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "-0"), "--concurrency");
    /* What stays valid. */
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER, NOENV,
       ARGS("-c", "007", "--grace", "0.125", "--timeout", "12", "--max-retries", "0"));
    TQ_ASSERT_INT(cfg.concurrency, 7);
    TQ_ASSERT_INT(cfg.grace_ms, 125);
    TQ_ASSERT_INT(cfg.timeout_ms, 12000);
    TQ_ASSERT_INT(cfg.max_retries, 0);
}

static void test_help_as_a_value(void **state)
{
    (void)state;
    tq_config cfg;
    /* "--help" after an option that takes a value is that value. */
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--next-runs", "--help"));
    TQ_ASSERT_STR(cfg.next_runs, "--help");
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--schedules", "-V"));
    TQ_ASSERT_STR(cfg.schedules, "-V");
    ok(&cfg, TQ_PROG_BEAT, NOENV, ARGS("--prefix", "--help"));
    TQ_ASSERT_STR(cfg.prefix, "--help");
    ok(&cfg, TQ_PROG_WORKER, NOENV, ARGS("-Q", "--version"));
    TQ_ASSERT_STR(cfg.queues[0], "--version");
    bad(TQ_PROG_WEB, NOENV, ARGS("--listen", "-h"), "--listen");
    /* ... but a boolean takes none, so --help after --check is help. */
    char err[256];
    TQ_ASSERT_RC(
        parse(&cfg, TQ_PROG_WEB, NOENV, ARGS("--check", "--help"), err, sizeof err),
        TQ_EHELP);
    TQ_ASSERT_RC(
        parse(&cfg, TQ_PROG_WORKER, NOENV, ARGS("-c", "2", "-V"), err, sizeof err),
        TQ_EVERSION);
}

static void test_dry_run_options(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_BEAT, NOENV,
       ARGS("--next-runs", "0 3 * * *", "--from", "2026-01-01T00:00:00", "--count", "3"));
    TQ_ASSERT_STR(cfg.next_runs, "0 3 * * *");
    TQ_ASSERT_STR(cfg.from, "2026-01-01T00:00:00");
    TQ_ASSERT_INT(cfg.count, 3);
    /* --from and --count only apply to the dry run: alone, they were ignored. */
    bad(TQ_PROG_BEAT, NOENV, ARGS("--from", "2026-01-01T00:00:00"), "--from");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--from", "2026-01-01T00:00:00"), "--next-runs");
    bad(TQ_PROG_BEAT, NOENV, ARGS("--count", "3"), "--count");
    bad(TQ_PROG_BEAT, ENV("TICKQ_FROM", "2026-01-01T00:00:00"), NOARGS, "TICKQ_FROM");
    bad(TQ_PROG_BEAT, ENV("TICKQ_COUNT", "4"), NOARGS, "TICKQ_COUNT");
    /* The dry run and the health check exclude each other. */
    bad(TQ_PROG_BEAT, NOENV, ARGS("--check", "--next-runs", "* * * * *"), "--check");
}

static void test_repeated_options_last_wins(void **state)
{
    (void)state;
    tq_config cfg;
    ok(&cfg, TQ_PROG_WORKER, NOENV,
       ARGS("-Q", "a,b", "--queues=c", "-c", "1", "-c", "3"));
    TQ_ASSERT_INT(cfg.nqueues, 1);
    TQ_ASSERT_STR(cfg.queues[0], "c");
    TQ_ASSERT_INT(cfg.concurrency, 3);
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--check", "--check=false"));
    TQ_ASSERT_INT(cfg.check, 0);
    /* A bad value is refused even when a later one would be good. */
    bad(TQ_PROG_WORKER, NOENV, ARGS("-c", "x", "-c", "2"), "--concurrency");
}

static void test_strict_listen(void **state)
{
    (void)state;
    const char *v[] = {"h: 80",   "h:+80",    "h:0x50", "a b:80",   "h:80 ",    "h:1e2",
                       "[::1:80", "h\x01:80", "h:-80",  "h:080000", "[::1]x:80"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        bad(TQ_PROG_WEB, NOENV, ARGS("--listen", v[i]), "--listen");
    tq_config cfg;
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--listen", "[::1]:8080"));
    ok(&cfg, TQ_PROG_WEB, NOENV, ARGS("--listen", "my-host.example_1:80"));
}

static void test_url_host_refused(void **state)
{
    (void)state;
    const char *v[] = {"redis://a b:6379/0", "redis://a%20b:6379/0", "redis://a%0ab/0",
                       "redis://h\t/0",      "redis://:pw@h%00/0",   " redis://h/0",
                       "redis://h/0 "};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        bad(TQ_PROG_WORKER, NOENV, ARGS("--redis-url", v[i]), "--redis-url");
}

static void test_url_error_hides_password(void **state)
{
    (void)state;
    const char *v[] = {"redis://:Sekr1tPw@h:99999/0", "redis://u:Sekr1tPw@h/zz",
                       "redis://:Sekr1tPw@/0",        "redis://:Sekr1tPw@h/0?x=1",
                       "redis://:Sekr1tPw@a b/0",     "redis://:Sekr1tPw@[::1/0"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        tq_config cfg;
        char err[512] = "";
        fake_env = ENV("TICKQ_REDIS_URL", v[i]);
        int rc = tq_config_parse(&cfg, TQ_PROG_WEB, 1, (char *const *)NOARGS, fake_getenv,
                                 err, sizeof err);
        fake_env = NULL;
        TQ_ASSERT_RC_ERR(rc, TQ_ECONFIG, err);
        TQ_ASSERT_CONTAINS(err, "TICKQ_REDIS_URL");
        TQ_ASSERT_NOT_CONTAINS(err, "Sekr1tPw");
    }
}

static void test_other_programs_option_named(void **state)
{
    (void)state;
    bad(TQ_PROG_WORKER, NOENV, ARGS("--listen", "1.2.3.4:80"), "tickq-web");
    bad(TQ_PROG_BEAT, NOENV, ARGS("-Q", "a"), "tickq-worker");
    bad(TQ_PROG_WEB, NOENV, ARGS("--next-runs=x"), "tickq-beat");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_beat),
        cmocka_unit_test(test_defaults_worker),
        cmocka_unit_test(test_defaults_web),
        cmocka_unit_test(test_defaults_with_null_getenv),
        cmocka_unit_test(test_parse_overwrites_everything),
        cmocka_unit_test(test_env_beats_default),
        cmocka_unit_test(test_flag_beats_env),
        cmocka_unit_test(test_env_of_other_program_ignored),
        cmocka_unit_test(test_flag_forms),
        cmocka_unit_test(test_short_flags),
        cmocka_unit_test(test_help_version_markdown),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_option_of_another_program),
        cmocka_unit_test(test_numbers_in_range),
        cmocka_unit_test(test_numbers_out_of_range),
        cmocka_unit_test(test_not_numbers),
        cmocka_unit_test(test_seconds_to_ms),
        cmocka_unit_test(test_queues),
        cmocka_unit_test(test_tls_options),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_name_ok),
        cmocka_unit_test(test_log_options),
        cmocka_unit_test(test_redis_url),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_check_bool),
        cmocka_unit_test(test_error_buffer),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_every_flag_in_help_parses),
        cmocka_unit_test(test_every_option_refuses_empty),
        cmocka_unit_test(test_every_option_refuses_spaces_and_controls),
        cmocka_unit_test(test_strict_numbers),
        cmocka_unit_test(test_help_as_a_value),
        cmocka_unit_test(test_dry_run_options),
        cmocka_unit_test(test_repeated_options_last_wins),
        cmocka_unit_test(test_strict_listen),
        cmocka_unit_test(test_url_host_refused),
        cmocka_unit_test(test_url_error_hides_password),
        cmocka_unit_test(test_other_programs_option_named),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
