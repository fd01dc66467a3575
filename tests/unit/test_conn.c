/* Tests of common/conn against a real redis-server (tests/support): connect
 * over TCP and a unix socket, database and password from the URL, error
 * replies, pipelining and the round-trip counter, scripts (EVALSHA and the
 * NOSCRIPT fallback), and what happens when Redis goes away: NULL replies,
 * a capped backoff that grows, no reconnect storm, and a reconnect by itself
 * when Redis is back. */
#include "tests/support/capture.h"
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/sha1.h"

static tq_test_redis srv;

static int group_setup(void **state)
{
    (void)state;
    /* As every program does (tq_proc_signals): a write to a socket that
     * Redis closed must be an error, not a fatal SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    return tq_test_redis_start(&srv);
}

static int group_teardown(void **state)
{
    (void)state;
    tq_test_redis_stop(&srv);
    return 0;
}

/* Each test starts with a running, empty server without cached scripts
 * (a test that stopped it has it restarted here). */
static int setup(void **state)
{
    (void)state;
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    if (!srv.pid && tq_test_redis_restart(&srv) < 0)
        return -1;
    return tq_test_redis_flush(&srv);
}

static tq_conn *conn_to(const char *url, const char *name)
{
    tq_url u;
    char err[256] = "";
    int rc = tq_url_parse(url, &u, err, sizeof err);
    if (rc != 0)
        fail_msg("url %s: %s", url, err);
    tq_conn *c = tq_conn_new(&u, name);
    assert_non_null(c);
    return c;
}

static void want_status(redisReply *r, const char *want)
{
    if (!r)
        fail_msg("expected status %s, got no reply", want);
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, want) != 0)
        fail_msg("expected status %s, got type %d \"%s\"", want, r->type,
                 r->str ? r->str : "");
    freeReplyObject(r);
}

static void want_int(redisReply *r, long long want)
{
    if (!r)
        fail_msg("expected integer %lld, got no reply", want);
    if (r->type != REDIS_REPLY_INTEGER || r->integer != want)
        fail_msg("expected integer %lld, got type %d (%lld \"%s\")", want, r->type,
                 r->integer, r->str ? r->str : "");
    freeReplyObject(r);
}

static void want_string(redisReply *r, const char *want)
{
    if (!r)
        fail_msg("expected \"%s\", got no reply", want);
    if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0)
        fail_msg("expected \"%s\", got type %d \"%s\"", want, r->type,
                 r->str ? r->str : "");
    freeReplyObject(r);
}

static void ping_ok(tq_conn *c)
{
    want_status(tq_conn_cmd(c, "PING"), "PONG");
}

/* Calls PING until it answers, sleeping the backoff between tries as a
 * caller's loop would. Returns the milliseconds it took, or fails. */
static int64_t wait_for_pong(tq_conn *c, int64_t limit_ms)
{
    int64_t t0 = tq_clock_mono_ms();
    while (tq_clock_mono_ms() - t0 < limit_ms) {
        redisReply *r = tq_conn_cmd(c, "PING");
        if (r) {
            want_status(r, "PONG");
            return tq_clock_mono_ms() - t0;
        }
        int64_t b = tq_conn_backoff_ms(c);
        tq_clock_sleep_ms(b > 5 ? b : 5, NULL);
    }
    fail_msg("no PONG within %lld ms", (long long)limit_ms);
    return -1;
}

/* ---- connecting ---- */

static void test_connect_ping(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "unit conn");
    TQ_ASSERT_INT(tq_conn_roundtrips(c), 0);
    TQ_ASSERT_INT(tq_conn_backoff_ms(c), 0); /* nothing failed yet */
    ping_ok(c);
    TQ_ASSERT_INT(tq_conn_roundtrips(c), 1);
    TQ_ASSERT_INT(tq_conn_backoff_ms(c), 0);
    TQ_ASSERT_RC(tq_conn_ensure(c), 0);
    /* The name shows in CLIENT LIST, spaces made safe. */
    want_string(tq_conn_cmd(c, "CLIENT GETNAME"), "unit_conn");
    TQ_ASSERT_INT(tq_conn_roundtrips(c), 2);
    tq_conn_free(c);
    tq_conn_free(NULL);
}

static void test_cmd_and_argv(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "t");
    /* Binary data through %b and through argv lengths. */
    want_status(tq_conn_cmd(c, "SET %s %b", "bin", "a\0b", (size_t)3), "OK");
    redisReply *r = tq_conn_cmd(c, "GET %s", "bin");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_STRING);
    TQ_ASSERT_INT(r->len, 3);
    assert_memory_equal(r->str, "a\0b", 3);
    freeReplyObject(r);

    const char *argv[] = {"RPUSH", "list", "x y", "z\"w"};
    want_int(tq_conn_cmdargv(c, 4, argv, NULL), 2);
    const char *argv2[] = {"RPUSH", "list", "n\0l"};
    const size_t lens2[] = {5, 4, 3};
    want_int(tq_conn_cmdargv(c, 3, argv2, lens2), 3);
    r = tq_conn_cmd(c, "LRANGE list 0 -1");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_ARRAY);
    TQ_ASSERT_INT(r->elements, 3);
    TQ_ASSERT_STR(r->element[0]->str, "x y");
    TQ_ASSERT_STR(r->element[1]->str, "z\"w");
    TQ_ASSERT_INT(r->element[2]->len, 3);
    assert_memory_equal(r->element[2]->str, "n\0l", 3);
    freeReplyObject(r);
    tq_conn_free(c);
}

static void test_error_reply_is_a_reply(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "t");
    redisReply *r = tq_conn_cmd(c, "NOSUCHCOMMAND x");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_ERROR);
    TQ_ASSERT_CONTAINS(r->str, "unknown command");
    freeReplyObject(r);
    want_status(tq_conn_cmd(c, "SET s notanumber"), "OK");
    r = tq_conn_cmd(c, "INCR s");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    /* The connection is still fine: no drop, no backoff. */
    TQ_ASSERT_INT(tq_conn_backoff_ms(c), 0);
    ping_ok(c);
    tq_conn_free(c);
}

static void test_db_from_url(void **state)
{
    (void)state;
    char url[400];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/3", srv.port);
    tq_conn *c3 = conn_to(url, "db3");
    tq_conn *c0 = conn_to(srv.url, "db0");
    want_status(tq_conn_cmd(c3, "SET only-in-3 x"), "OK");
    want_int(tq_conn_cmd(c3, "EXISTS only-in-3"), 1);
    want_int(tq_conn_cmd(c0, "EXISTS only-in-3"), 0);
    redisReply *r = tq_conn_cmd(c3, "CLIENT INFO");
    assert_non_null(r);
    TQ_ASSERT_CONTAINS(r->str, " db=3 ");
    freeReplyObject(r);
    tq_conn_free(c3);
    tq_conn_free(c0);

    /* A database that does not exist: SELECT fails, no connection. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/99", srv.port);
    tq_conn *bad = conn_to(url, "db99");
    assert_null(tq_conn_cmd(bad, "PING"));
    TQ_ASSERT_RANGE(tq_conn_backoff_ms(bad), 1, TQ_CONN_BACKOFF_CAP_MS);
    tq_conn_free(bad);
}

static void test_unix_socket(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.unix_url, "unix");
    ping_ok(c);
    redisReply *r = tq_conn_cmd(c, "CLIENT INFO");
    assert_non_null(r);
    TQ_ASSERT_CONTAINS(r->str, srv.sock); /* addr= is the socket */
    TQ_ASSERT_CONTAINS(r->str, " db=0 ");
    freeReplyObject(r);
    tq_conn_free(c);

    char url[400];
    snprintf(url, sizeof url, "%s?db=2", srv.unix_url);
    c = conn_to(url, "unix2");
    r = tq_conn_cmd(c, "CLIENT INFO");
    assert_non_null(r);
    TQ_ASSERT_CONTAINS(r->str, " db=2 ");
    freeReplyObject(r);
    tq_conn_free(c);

    snprintf(url, sizeof url, "unix://%s/no-such.sock", srv.dir);
    c = conn_to(url, "nosock");
    assert_null(tq_conn_cmd(c, "PING"));
    TQ_ASSERT_RC(tq_conn_ensure(c), TQ_EREDIS);
    TQ_ASSERT_RANGE(tq_conn_backoff_ms(c), 1, TQ_CONN_BACKOFF_CAP_MS);
    tq_conn_free(c);
}

static void test_passwords(void **state)
{
    (void)state;
    tq_test_redis auth;
    /* A password with a space and an '@': %-escaped in the URL. */
    assert_int_equal(tq_test_redis_start_with(&auth, "s3cret p@ss", 0), 0);
    char url[400];

    snprintf(url, sizeof url, "redis://:s3cret%%20p%%40ss@127.0.0.1:%d/0", auth.port);
    tq_conn *c = conn_to(url, "good");
    ping_ok(c);
    tq_conn_free(c);

    /* A wrong password: no connection, a backoff, and the log names the
     * server but never the password. */
    snprintf(url, sizeof url, "redis://:hunter2-wrong@127.0.0.1:%d/0", auth.port);
    c = conn_to(url, "wrong");
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_TEXT, "test");
    tq_test_capture cap;
    assert_int_equal(tq_test_capture_start(&cap, STDERR_FILENO), 0);
    redisReply *r = tq_conn_cmd(c, "PING");
    int64_t backoff = tq_conn_backoff_ms(c);
    int ensure = tq_conn_ensure(c);
    char *log = tq_test_capture_stop(&cap, NULL);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    assert_null(r);
    TQ_ASSERT_RC(ensure, TQ_EREDIS);
    TQ_ASSERT_RANGE(backoff, 1, TQ_CONN_BACKOFF_CAP_MS);
    TQ_ASSERT_RANGE(backoff, 1, TQ_CONN_BACKOFF_BASE_MS);
    TQ_ASSERT_CONTAINS(log, "AUTH");
    TQ_ASSERT_CONTAINS(log, "***@127.0.0.1");
    TQ_ASSERT_NOT_CONTAINS(log, "hunter2");
    free(log);
    tq_conn_free(c);

    /* No password at all: the handshake sees NOAUTH, so no command is sent
     * on a connection that refuses everything. */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", auth.port);
    c = conn_to(url, "none");
    assert_null(tq_conn_cmd(c, "PING"));
    TQ_ASSERT_INT(tq_conn_auth_failed(c), 1);
    TQ_ASSERT_INT(tq_conn_error(c), TQ_CONN_AUTH);
    TQ_ASSERT_CONTAINS(tq_conn_last_error(c), "NOAUTH");
    TQ_ASSERT_RANGE(tq_conn_backoff_ms(c), 1, TQ_CONN_BACKOFF_CAP_MS);
    tq_conn_free(c);

    /* An ACL user with its own password: user:password@. */
    r = tq_test_redis_cmd(&auth, "ACL SETUSER alice on >alicepw ~* &* +@all");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    snprintf(url, sizeof url, "redis://alice:alicepw@127.0.0.1:%d/0", auth.port);
    c = conn_to(url, "alice");
    want_string(tq_conn_cmd(c, "ACL WHOAMI"), "alice");
    tq_conn_free(c);
    snprintf(url, sizeof url, "redis://alice:s3cret%%20p%%40ss@127.0.0.1:%d/0",
             auth.port);
    c = conn_to(url, "alice-wrong");
    assert_null(tq_conn_cmd(c, "PING"));
    tq_conn_free(c);

    tq_test_redis_stop(&auth);
}

/* ---- Redis going away ---- */

static void test_server_stopped_backoff_grows(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "down");
    ping_ok(c);
    assert_int_equal(tq_test_redis_kill(&srv), 0);

    /* The broken connection is noticed: NULL, and a first short backoff. */
    int64_t t0 = tq_clock_mono_ms();
    assert_null(tq_conn_cmd(c, "PING"));
    TQ_ASSERT_RANGE(tq_clock_mono_ms() - t0, 0, 1000);
    int64_t b = tq_conn_backoff_ms(c);
    TQ_ASSERT_RANGE(b, 1, TQ_CONN_BACKOFF_BASE_MS);

    /* Each failed attempt doubles the window (jittered within its upper
     * half) up to the cap. A caller sleeps the backoff, then retries. */
    int64_t window = TQ_CONN_BACKOFF_BASE_MS, prev = b;
    for (int attempt = 1; attempt <= 6; attempt++) {
        tq_clock_sleep_ms(tq_conn_backoff_ms(c), NULL);
        int doubled = window * 2 <= TQ_CONN_BACKOFF_CAP_MS;
        window = doubled ? window * 2 : TQ_CONN_BACKOFF_CAP_MS;
        t0 = tq_clock_mono_ms();
        assert_null(tq_conn_cmd(c, "PING"));
        int64_t took = tq_clock_mono_ms() - t0;
        b = tq_conn_backoff_ms(c);
        if (b < window / 2 - 20 || b > window)
            fail_msg("attempt %d: backoff %lld ms outside %lld..%lld", attempt,
                     (long long)b, (long long)(window / 2), (long long)window);
        /* A doubled window starts where the last one ended: it grows. At
         * the cap the jitter may give less than the time before. */
        if (doubled && b < prev - 20)
            fail_msg("attempt %d: backoff shrank from %lld to %lld ms", attempt,
                     (long long)prev, (long long)b);
        TQ_ASSERT_RANGE(took, 0, 1000); /* refused at once, no waiting */
        TQ_ASSERT_INT(tq_conn_error(c), TQ_CONN_UNREACHABLE);
        prev = b;
    }
    TQ_ASSERT_RANGE(b, TQ_CONN_BACKOFF_CAP_MS / 2 - 20, TQ_CONN_BACKOFF_CAP_MS);

    /* While the backoff runs, calls fail at once without trying. */
    t0 = tq_clock_mono_ms();
    for (int i = 0; i < 1000; i++) {
        assert_null(tq_conn_cmd(c, "PING"));
        TQ_ASSERT_RC(tq_conn_ensure(c), TQ_EREDIS);
    }
    TQ_ASSERT_RANGE(tq_clock_mono_ms() - t0, 0, 500);
    TQ_ASSERT_RANGE(tq_conn_backoff_ms(c), 1, TQ_CONN_BACKOFF_CAP_MS);
    tq_conn_free(c);
}

static void test_server_stopped_no_busy_loop(void **state)
{
    (void)state;
    assert_int_equal(tq_test_redis_kill(&srv), 0);
    tq_conn *c = conn_to(srv.url, "busy");

    /* A caller that ignores the backoff and calls every millisecond for a
     * second: connection attempts (one log line each) stay few. */
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_TEXT, "test");
    tq_test_capture cap;
    assert_int_equal(tq_test_capture_start(&cap, STDERR_FILENO), 0);
    int calls = 0, replies = 0;
    int64_t t0 = tq_clock_mono_ms();
    while (tq_clock_mono_ms() - t0 < 1000) {
        redisReply *r = tq_conn_cmd(c, "PING");
        replies += r != NULL;
        freeReplyObject(r);
        calls++;
        tq_clock_sleep_us(1000);
    }
    char *log = tq_test_capture_stop(&cap, NULL);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");

    TQ_ASSERT_INT(replies, 0);
    TQ_ASSERT_RANGE(calls, 100, 1000);
    size_t attempts = tq_test_count(log, "unreachable");
    /* Windows of 100, 200, 400, 800 ms: at most 5 attempts in a second. */
    if (attempts < 2 || attempts > 5)
        fail_msg("%zu connection attempts in %d calls over 1 s:\n%s", attempts, calls,
                 log);
    /* One warning, then quieter debug lines. */
    TQ_ASSERT_INT(tq_test_count(log, " warn "), 1);
    free(log);
    tq_conn_free(c);
}

static void test_server_restarted_reconnects(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "restart");
    ping_ok(c);
    want_status(tq_conn_cmd(c, "SET before restart"), "OK");

    /* Restarted between two commands: the next ones recover by
     * themselves (the first may see the old, closed socket). */
    assert_int_equal(tq_test_redis_restart(&srv), 0);
    int64_t took = wait_for_pong(c, 5000);
    TQ_ASSERT_RANGE(took, 0, 1000);
    TQ_ASSERT_INT(tq_conn_backoff_ms(c), 0);
    want_int(tq_conn_cmd(c, "EXISTS before"), 0); /* a new, empty server */

    /* Down for a while (several failures), then back: reconnected within
     * one backoff window, and the log says so. */
    assert_int_equal(tq_test_redis_kill(&srv), 0);
    int64_t t0 = tq_clock_mono_ms();
    while (tq_clock_mono_ms() - t0 < 800) {
        redisReply *r = tq_conn_cmd(c, "PING");
        assert_null(r);
        tq_clock_sleep_ms(tq_conn_backoff_ms(c) > 5 ? tq_conn_backoff_ms(c) : 5, NULL);
    }
    assert_int_equal(tq_test_redis_restart(&srv), 0);
    tq_log_init(TQ_LOG_INFO, TQ_LOG_TEXT, "test");
    tq_test_capture cap;
    assert_int_equal(tq_test_capture_start(&cap, STDERR_FILENO), 0);
    t0 = tq_clock_mono_ms();
    redisReply *r = NULL;
    while (!r && tq_clock_mono_ms() - t0 < 5000) {
        r = tq_conn_cmd(c, "PING");
        if (!r)
            tq_clock_sleep_ms(10, NULL);
    }
    took = tq_clock_mono_ms() - t0;
    char *log = tq_test_capture_stop(&cap, NULL);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    want_status(r, "PONG");
    TQ_ASSERT_RANGE(took, 0, TQ_CONN_BACKOFF_CAP_MS + 500);
    TQ_ASSERT_CONTAINS(log, "restored");
    free(log);
    tq_conn_free(c);
}

static void test_connection_killed_by_server(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "victim");
    ping_ok(c);
    redisReply *r = tq_test_redis_cmd(&srv, "CLIENT KILL TYPE normal");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    assert_null(tq_conn_cmd(c, "PING"));
    TQ_ASSERT_RANGE(tq_conn_backoff_ms(c), 1, TQ_CONN_BACKOFF_BASE_MS);
    TQ_ASSERT_RANGE(wait_for_pong(c, 3000), 0, TQ_CONN_BACKOFF_BASE_MS + 500);
    tq_conn_free(c);
}

static void test_drop(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "drop");
    ping_ok(c);
    tq_conn_drop(c, "a protocol surprise");
    TQ_ASSERT_RANGE(tq_conn_backoff_ms(c), 1, TQ_CONN_BACKOFF_BASE_MS);
    assert_null(tq_conn_cmd(c, "PING")); /* within the backoff */
    TQ_ASSERT_RANGE(wait_for_pong(c, 3000), 0, TQ_CONN_BACKOFF_BASE_MS + 500);
    /* Dropping a connection that is not connected is harmless. */
    tq_conn *idle = conn_to(srv.url, "idle");
    tq_conn_drop(idle, "never connected");
    tq_conn_free(idle);
    tq_conn_free(c);
}

static void test_command_timeout(void **state)
{
    (void)state;
    /* A blocking command that never returns is cut by the command
     * timeout: NULL, not a hang. */
    tq_conn *c = conn_to(srv.url, "blocked");
    ping_ok(c);
    int64_t t0 = tq_clock_mono_ms();
    assert_null(tq_conn_cmd(c, "BLPOP never-filled 0"));
    int64_t took = tq_clock_mono_ms() - t0;
    TQ_ASSERT_RANGE(took, TQ_CONN_COMMAND_TIMEOUT_MS - 100,
                    TQ_CONN_COMMAND_TIMEOUT_MS + 2000);
    wait_for_pong(c, 3000);
    tq_conn_free(c);
}

static void test_unanswered_counts_sent_commands(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "unanswered");
    tq_conn_set_timeout_ms(c, 300);
    ping_ok(c);
    TQ_ASSERT_INT(tq_conn_unanswered(c), 0);
    /* Sent, never answered in time: it may have run. */
    assert_null(tq_conn_cmd(c, "BLPOP never-filled 0"));
    TQ_ASSERT_INT(tq_conn_unanswered(c), 1);
    wait_for_pong(c, 3000);
    TQ_ASSERT_INT(tq_conn_unanswered(c), 1);
    /* Never sent (nobody listens): it did not run. (The first command after
     * the kill goes into the old socket, which the kernel takes: that one
     * cannot be told from a late answer, and may count.) */
    assert_int_equal(tq_test_redis_kill(&srv), 0);
    assert_null(tq_conn_cmd(c, "SET into-the-old-socket 1"));
    uint64_t counted = tq_conn_unanswered(c);
    TQ_ASSERT_RANGE(counted, 1, 2);
    for (int i = 0; i < 3; i++) {
        tq_clock_sleep_ms(tq_conn_backoff_ms(c) + 10, NULL);
        assert_null(tq_conn_cmd(c, "SET never-sent 1"));
    }
    TQ_ASSERT_INT(tq_conn_unanswered(c), counted);
    tq_conn_free(c);
}

/* ---- pipelining ---- */

static void test_pipeline(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "pipe");
    ping_ok(c);
    uint64_t before = tq_conn_roundtrips(c);
    const char *incr[] = {"INCR", "counter"};
    for (int i = 0; i < 100; i++)
        TQ_ASSERT_RC(tq_conn_append(c, 2, incr, NULL), 0);
    for (int i = 1; i <= 100; i++)
        want_int(tq_conn_reply(c), i);
    TQ_ASSERT_INT(tq_conn_roundtrips(c) - before, 1);

    /* No reply pending: NULL, and the connection is untouched. */
    assert_null(tq_conn_reply(c));
    TQ_ASSERT_INT(tq_conn_backoff_ms(c), 0);
    ping_ok(c);
    TQ_ASSERT_INT(tq_conn_roundtrips(c) - before, 2);

    /* Mixed commands and binary values keep their order. */
    const char *set[] = {"SET", "k", "v\0v"};
    const size_t setl[] = {3, 1, 3};
    const char *get[] = {"GET", "k"};
    const char *bad[] = {"NOSUCH"};
    TQ_ASSERT_RC(tq_conn_append(c, 3, set, setl), 0);
    TQ_ASSERT_RC(tq_conn_append(c, 1, bad, NULL), 0);
    TQ_ASSERT_RC(tq_conn_append(c, 2, get, NULL), 0);
    want_status(tq_conn_reply(c), "OK");
    redisReply *r = tq_conn_reply(c);
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = tq_conn_reply(c);
    assert_non_null(r);
    TQ_ASSERT_INT(r->len, 3);
    assert_memory_equal(r->str, "v\0v", 3);
    freeReplyObject(r);
    TQ_ASSERT_INT(tq_conn_roundtrips(c) - before, 3);
    tq_conn_free(c);
}

static void test_roundtrips_count_flushes(void **state)
{
    (void)state;
    tq_conn *c = conn_to(srv.url, "rt");
    for (int i = 1; i <= 5; i++) {
        ping_ok(c);
        TQ_ASSERT_INT(tq_conn_roundtrips(c), i);
    }
    /* Two pipelines of 100 are two round trips. */
    const char *ping[] = {"PING"};
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < 100; i++)
            tq_conn_append(c, 1, ping, NULL);
        for (int i = 0; i < 100; i++)
            want_status(tq_conn_reply(c), "PONG");
    }
    TQ_ASSERT_INT(tq_conn_roundtrips(c), 7);
    tq_conn_free(c);
}

static void test_lost_pipeline_recovers(void **state)
{
    (void)state;
    /* A caller that reads fewer replies than it queued must never get a
     * stale reply to its next command. */
    tq_conn *c = conn_to(srv.url, "lost");
    const char *incr[] = {"INCR", "n"};
    tq_conn_append(c, 2, incr, NULL);
    tq_conn_append(c, 2, incr, NULL);
    want_int(tq_conn_reply(c), 1);
    TQ_ASSERT_RANGE(wait_for_pong(c, 3000), 0, 1000);
    want_string(tq_conn_cmd(c, "GET n"), "2");
    tq_conn_free(c);
}

/* Calls PING for about ms milliseconds as a program's loop would (sleeping
 * the backoff between tries) and returns what was logged at info level.
 * Every reply must be NULL. */
static char *ping_for(tq_conn *c, int64_t ms)
{
    tq_log_init(TQ_LOG_INFO, TQ_LOG_TEXT, "test");
    tq_test_capture cap;
    if (tq_test_capture_start(&cap, STDERR_FILENO) < 0)
        fail_msg("cannot capture stderr");
    int64_t end = tq_clock_mono_ms() + ms;
    int replies = 0, tries = 0;
    while (tq_clock_mono_ms() < end) {
        redisReply *r = tq_conn_cmd(c, "PING");
        if (r)
            replies++;
        freeReplyObject(r);
        tries++;
        int64_t b = tq_conn_backoff_ms(c);
        tq_clock_sleep_ms(b > 10 ? b : 10, NULL);
    }
    char *log = tq_test_capture_stop(&cap, NULL);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    if (replies)
        fail_msg("%d of %d PINGs got a reply from a connection that failed to log in",
                 replies, tries);
    return log;
}

/* A failed login is one clear "authentication failed" error per outage,
 * then quiet retries under the capped backoff: not an error per call, not
 * "unexpected reply", not a connection that looks healthy. */
static void test_auth_failure_is_one_clear_error(void **state)
{
    (void)state;
    tq_test_redis auth;
    assert_int_equal(tq_test_redis_start_with(&auth, "Pw-4b1e9c", 0), 0);
    char wrong[400], none[400], right[400];
    snprintf(wrong, sizeof wrong, "redis://:Wrong-77f3@127.0.0.1:%d/0", auth.port);
    snprintf(none, sizeof none, "redis://127.0.0.1:%d/0", auth.port);
    snprintf(right, sizeof right, "redis://:Pw-4b1e9c@127.0.0.1:%d/0", auth.port);
    const char *urls[] = {wrong, none};
    const char *codes[] = {"WRONGPASS", "NOAUTH"};
    for (int i = 0; i < 2; i++) {
        /* A good login first: a new outage starts after it. */
        tq_conn *ok = conn_to(right, "right");
        ping_ok(ok);
        tq_conn_free(ok);
        tq_conn *c1 = conn_to(urls[i], "one");
        tq_conn *c2 = conn_to(urls[i], "two");
        char *log1 = ping_for(c1, 2500);
        char *log2 = ping_for(c2, 1000); /* the same outage: quiet */
        TQ_ASSERT_INT(tq_test_count_lines(log1), 1);
        TQ_ASSERT_CONTAINS(log1, "authentication failed");
        TQ_ASSERT_CONTAINS(log1, codes[i]);
        TQ_ASSERT_CONTAINS(log1, "127.0.0.1");
        TQ_ASSERT_NOT_CONTAINS(log1, "Wrong-77f3");
        TQ_ASSERT_NOT_CONTAINS(log1, "unexpected");
        TQ_ASSERT_NOT_CONTAINS(log1, "unreachable");
        TQ_ASSERT_INT(tq_test_count_lines(log2), 0);
        TQ_ASSERT_INT(tq_conn_auth_failed(c1), 1);
        TQ_ASSERT_CONTAINS(tq_conn_last_error(c1), codes[i]);
        /* The backoff grew toward its cap: a handful of tries, no storm. */
        TQ_ASSERT_RANGE(tq_conn_backoff_ms(c1), 0, TQ_CONN_BACKOFF_CAP_MS);
        free(log1);
        free(log2);
        tq_conn_free(c1);
        tq_conn_free(c2);
    }
    tq_test_redis_stop(&auth);
}

/* An ACL user that cannot log in (disabled) and one without rights: each a
 * distinct error, and the connection comes back by itself once the user is
 * fixed, with one "restored" line. */
static void test_acl_user_errors_and_recovery(void **state)
{
    (void)state;
    tq_test_redis auth;
    assert_int_equal(tq_test_redis_start_with(&auth, "Pw-admin", 0), 0);
    redisReply *r =
        tq_test_redis_cmd(&auth, "ACL SETUSER carol off >carolpw ~* &* +@all");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&auth, "ACL SETUSER dave on >davepw ~* &* -@all");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    char url[400];

    /* A good login first: the outage an earlier test left is over, so
     * dave's is a new one, logged once. */
    snprintf(url, sizeof url, "redis://:Pw-admin@127.0.0.1:%d/0", auth.port);
    tq_conn *first = conn_to(url, "admin");
    ping_ok(first);
    tq_conn_free(first);
    /* dave may log in but may not even PING: no rights at all, a failed
     * login (one who lacks some right gets NOPERM as that command's
     * answer). */
    snprintf(url, sizeof url, "redis://dave:davepw@127.0.0.1:%d/0", auth.port);
    tq_conn *d = conn_to(url, "dave");
    char *log = ping_for(d, 1000);
    TQ_ASSERT_INT(tq_test_count_lines(log), 1);
    TQ_ASSERT_CONTAINS(log, "NOPERM");
    TQ_ASSERT_CONTAINS(log, "redis://dave:***@127.0.0.1");
    TQ_ASSERT_NOT_CONTAINS(log, "davepw");
    free(log);
    TQ_ASSERT_INT(tq_conn_auth_failed(d), 1);
    TQ_ASSERT_INT(tq_conn_error(d), TQ_CONN_NOPERM);
    assert_string_equal(tq_conn_state_text(tq_conn_error(d)), "permission denied");
    tq_conn_free(d);

    /* erin lacks one right: WATCH answers NOPERM, as a reply; the
     * connection stays up and everything else works. */
    r = tq_test_redis_cmd(&auth, "ACL SETUSER erin on >erinpw ~* &* +@all -watch");
    assert_non_null(r);
    freeReplyObject(r);
    snprintf(url, sizeof url, "redis://erin:erinpw@127.0.0.1:%d/0", auth.port);
    tq_conn *e = conn_to(url, "erin");
    r = tq_conn_cmd(e, "WATCH k");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_ERROR);
    TQ_ASSERT_CONTAINS(r->str, "NOPERM");
    freeReplyObject(r);
    TQ_ASSERT_INT(tq_conn_auth_failed(e), 0);
    TQ_ASSERT_INT(tq_conn_error(e), TQ_CONN_OK);
    ping_ok(e);
    tq_conn_free(e);

    /* A good login in between ends that outage. */
    snprintf(url, sizeof url, "redis://:Pw-admin@127.0.0.1:%d/0", auth.port);
    tq_conn *admin = conn_to(url, "admin");
    ping_ok(admin);
    tq_conn_free(admin);
    snprintf(url, sizeof url, "redis://carol:carolpw@127.0.0.1:%d/0", auth.port);
    tq_conn *c = conn_to(url, "carol");
    log = ping_for(c, 1500);
    TQ_ASSERT_INT(tq_test_count_lines(log), 1);
    TQ_ASSERT_CONTAINS(log, "authentication failed");
    TQ_ASSERT_NOT_CONTAINS(log, "carolpw");
    free(log);
    r = tq_test_redis_cmd(&auth, "ACL SETUSER carol on");
    freeReplyObject(r);
    tq_log_init(TQ_LOG_INFO, TQ_LOG_TEXT, "test");
    tq_test_capture cap;
    assert_int_equal(tq_test_capture_start(&cap, STDERR_FILENO), 0);
    int64_t t0 = tq_clock_mono_ms();
    redisReply *pong = NULL;
    while (!pong && tq_clock_mono_ms() - t0 < 30000) {
        pong = tq_conn_cmd(c, "PING");
        if (!pong)
            tq_clock_sleep_ms(tq_conn_backoff_ms(c) + 5, NULL);
    }
    log = tq_test_capture_stop(&cap, NULL);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    want_status(pong, "PONG");
    TQ_ASSERT_INT(tq_conn_auth_failed(c), 0);
    TQ_ASSERT_INT(tq_conn_error(c), TQ_CONN_OK);
    TQ_ASSERT_INT(tq_test_count_lines(log), 1);
    TQ_ASSERT_CONTAINS(log, "restored");
    free(log);
    tq_conn_free(c);
    tq_test_redis_stop(&auth);
}

/* tq_conn_check of the URL url. */
static int check(const char *url, char *why, size_t whylen)
{
    tq_url u;
    assert_int_equal(tq_url_parse(url, &u, NULL, 0), 0);
    return tq_conn_check(&u, "check", 1, why, whylen);
}

/* --check: one try, no log lines, and the reason in words. */
static void test_check_says_why(void **state)
{
    (void)state;
    tq_test_redis auth;
    assert_int_equal(tq_test_redis_start_with(&auth, "Pw-chk-5150", 0), 0);
    char url[400], why[512];
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_TEXT, "test");
    tq_test_capture cap;
    assert_int_equal(tq_test_capture_start(&cap, STDERR_FILENO), 0);
    snprintf(url, sizeof url, "redis://:Pw-chk-5150@127.0.0.1:%d/0", auth.port);
    int good = check(url, why, sizeof why);
    snprintf(url, sizeof url, "redis://:Bad-chk-9@127.0.0.1:%d/0", auth.port);
    int wrong = check(url, why, sizeof why);
    char why_wrong[512];
    snprintf(why_wrong, sizeof why_wrong, "%s", why);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", auth.port);
    int none = check(url, why, sizeof why);
    char why_none[512];
    snprintf(why_none, sizeof why_none, "%s", why);
    tq_test_redis_stop(&auth);
    int down = check(url, why, sizeof why);
    char *log = tq_test_capture_stop(&cap, NULL);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    TQ_ASSERT_RC(good, 0);
    TQ_ASSERT_RC(wrong, TQ_EREDIS);
    TQ_ASSERT_CONTAINS(why_wrong, "authentication failed");
    TQ_ASSERT_CONTAINS(why_wrong, "WRONGPASS");
    TQ_ASSERT_CONTAINS(why_wrong, ":***@127.0.0.1");
    TQ_ASSERT_NOT_CONTAINS(why_wrong, "Bad-chk-9");
    TQ_ASSERT_RC(none, TQ_EREDIS);
    TQ_ASSERT_CONTAINS(why_none, "NOAUTH");
    TQ_ASSERT_RC(down, TQ_EREDIS);
    TQ_ASSERT_STR(log, ""); /* quiet: the caller prints why */
    free(log);
}

/* ---- Sentinel ---- */

/* Waits (up to 5 s) until a connection to url answers PING, sleeping the
 * backoff in between; returns the connection. */
static tq_conn *sentinel_conn(const char *url)
{
    tq_conn *c = conn_to(url, "sentinel-test");
    wait_for_pong(c, 5000);
    return c;
}

/* The connection asks the sentinel where the master is, and writes there;
 * a second sentinel that is down is passed over. */
static void test_sentinel_finds_the_master(void **state)
{
    (void)state;
    tq_test_redis sen;
    assert_int_equal(tq_test_sentinel_start(&sen, srv.port, "mm", NULL), 0);
    char url[512];
    int dead = tq_test_free_port();
    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d/0?master=mm",
             dead, sen.port);
    tq_conn *c = sentinel_conn(url);
    want_status(tq_conn_cmd(c, "SET %s %s", "where", "master"), "OK");
    want_string(tq_test_redis_cmd(&srv, "GET where"), "master");
    tq_conn_free(c);
    tq_test_redis_stop(&sen);
}

/* What each sentinel said is the error: none answers, none knows the
 * master, or the sentinels want a password the URL does not give. */
static void test_sentinel_errors_say_why(void **state)
{
    (void)state;
    tq_test_redis sen;
    assert_int_equal(tq_test_sentinel_start(&sen, srv.port, "mm", "sen-pw"), 0);
    char url[512];
    int a = tq_test_free_port(), b = tq_test_free_port();

    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d?master=mm", a,
             b);
    tq_conn *c = conn_to(url, "sentinel-test");
    assert_null(tq_conn_cmd(c, "PING"));
    char want[64];
    snprintf(want, sizeof want, "sentinel 127.0.0.1:%d: ", a);
    TQ_ASSERT_CONTAINS(tq_conn_last_error(c), want);
    snprintf(want, sizeof want, "; sentinel 127.0.0.1:%d: ", b);
    TQ_ASSERT_CONTAINS(tq_conn_last_error(c), want);
    assert_int_equal(tq_conn_error(c), TQ_CONN_UNREACHABLE);
    tq_conn_free(c);

    snprintf(url, sizeof url,
             "redis-sentinel://127.0.0.1:%d?master=other&sentinel_password=sen-pw",
             sen.port);
    c = conn_to(url, "sentinel-test");
    assert_null(tq_conn_cmd(c, "PING"));
    TQ_ASSERT_CONTAINS(tq_conn_last_error(c), "it watches no master named other");
    tq_conn_free(c);

    /* No password, and a wrong one: a refused login, never the password. */
    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d?master=mm", sen.port);
    c = conn_to(url, "sentinel-test");
    assert_null(tq_conn_cmd(c, "PING"));
    TQ_ASSERT_CONTAINS(tq_conn_last_error(c), "NOAUTH");
    assert_int_equal(tq_conn_error(c), TQ_CONN_AUTH);
    tq_conn_free(c);
    snprintf(url, sizeof url,
             "redis-sentinel://127.0.0.1:%d?master=mm&sentinel_password=Wr0ngPw",
             sen.port);
    c = conn_to(url, "sentinel-test");
    assert_null(tq_conn_cmd(c, "PING"));
    TQ_ASSERT_CONTAINS(tq_conn_last_error(c), "AUTH: WRONGPASS");
    TQ_ASSERT_NOT_CONTAINS(tq_conn_last_error(c), "Wr0ngPw");
    assert_int_equal(tq_conn_error(c), TQ_CONN_AUTH);
    tq_conn_free(c);

    /* The right one works. */
    c = sentinel_conn(sen.url);
    tq_conn_free(c);
    tq_test_redis_stop(&sen);
}

/* A master the sentinels name but that is a replica now (a failover under
 * way) is not used; and a write that a replica refuses (READONLY) drops the
 * connection as a lost one: the command did not run. */
static void test_sentinel_master_that_is_a_replica(void **state)
{
    (void)state;
    tq_test_redis other, sen;
    assert_int_equal(tq_test_redis_start_with(&other, NULL, 0), 0);
    assert_int_equal(tq_test_sentinel_start(&sen, srv.port, "mm", NULL), 0);
    tq_conn *c = sentinel_conn(sen.url);
    tq_conn *plain = conn_to(srv.url, "plain");
    ping_ok(plain);

    /* srv becomes a replica of other: the sentinel still names it (it is
     * not down, so no failover follows). */
    want_status(tq_test_redis_cmd(&srv, "REPLICAOF 127.0.0.1 %d", other.port), "OK");
    assert_null(tq_conn_cmd(plain, "SET %s %s", "k", "v"));
    TQ_ASSERT_CONTAINS(tq_conn_last_error(plain), "READONLY");
    assert_int_equal(tq_conn_error(plain), TQ_CONN_UNREACHABLE);
    assert_null(tq_conn_cmd(c, "SET %s %s", "k", "v"));
    tq_conn_free(c);
    c = conn_to(sen.url, "sentinel-test");
    assert_null(tq_conn_cmd(c, "PING"));
    TQ_ASSERT_CONTAINS(tq_conn_last_error(c), "as master mm, but it is a slave");

    want_status(tq_test_redis_cmd(&srv, "REPLICAOF NO ONE"), "OK");
    wait_for_pong(c, 5000);
    tq_conn_free(c);
    tq_conn_free(plain);
    tq_test_redis_stop(&sen);
    tq_test_redis_stop(&other);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, NULL)
    const struct CMUnitTest tests[] = {
        T(test_connect_ping),
        T(test_cmd_and_argv),
        T(test_error_reply_is_a_reply),
        T(test_db_from_url),
        T(test_unix_socket),
        T(test_passwords),
        T(test_auth_failure_is_one_clear_error),
        T(test_acl_user_errors_and_recovery),
        T(test_check_says_why),
        T(test_server_stopped_backoff_grows),
        T(test_server_stopped_no_busy_loop),
        T(test_server_restarted_reconnects),
        T(test_connection_killed_by_server),
        T(test_drop),
        T(test_command_timeout),
        T(test_unanswered_counts_sent_commands),
        T(test_pipeline),
        T(test_roundtrips_count_flushes),
        T(test_lost_pipeline_recovers),
        T(test_sentinel_finds_the_master),
        T(test_sentinel_errors_say_why),
        T(test_sentinel_master_that_is_a_replica),
    };
#undef T
    return cmocka_run_group_tests_name("conn", tests, group_setup, group_teardown);
}
