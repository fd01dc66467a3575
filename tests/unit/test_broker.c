/* Tests of common/broker against a real redis-server: the library loads
 * itself when missing, replaces another version, refuses callers of
 * another version without touching anything, declares its limits as the
 * C headers do, and writes dead letters that are the codec's. */
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/broker.h"
#include "common/delayed.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/msg.h"
#include "worker/queue.h"

#define PFX "unit-broker"

static tq_test_redis srv;
static tq_conn *conn;

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    if (tq_test_redis_start_with(&srv, NULL, 0) < 0)
        return -1;
    tq_url u;
    if (tq_url_parse(srv.url, &u, NULL, 0) < 0 ||
        !(conn = tq_conn_new(&u, "broker-test")))
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tq_conn_free(conn);
    tq_test_redis_stop(&srv);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return tq_test_redis_flush(&srv);
}

/* The version of the library Redis holds, "" when none. */
static const char *loaded(void)
{
    static char buf[64];
    redisReply *r = tq_test_redis_cmd(&srv, "FCALL_RO tickq_version 0");
    assert_non_null(r);
    snprintf(buf, sizeof buf, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return buf;
}

static void test_loads_when_missing(void **state)
{
    (void)state;
    assert_string_equal(loaded(), "");
    redisReply *r = tq_broker_call(conn, "info", 0, 0, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    assert_string_equal(loaded(), tq_broker_version);
    assert_int_equal(strlen(tq_broker_version), 12);
}

/* The limits written in the Lua library are the C headers' numbers. */
static void test_limits_match_the_headers(void **state)
{
    (void)state;
    redisReply *r = tq_broker_call(conn, "info", 0, 0, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 5);
    assert_int_equal(r->element[0]->integer, WORKER_QUEUE_EVENTS_MAX);
    assert_int_equal(r->element[1]->integer, TQ_MSG_TIMEOUT_MAX);
    assert_int_equal(r->element[2]->integer, TQ_METRICS_TASKS_MAX);
    assert_int_equal(r->element[3]->integer, TQ_METRICS_MINUTE_TTL_S);
    assert_int_equal(r->element[4]->integer, TQ_MSG_ID_MAX - 1);
    freeReplyObject(r);
}

/* Another build's library (another version) is replaced by the first
 * call, which then runs. */
static void test_replaces_another_version(void **state)
{
    (void)state;
    size_t n = strlen(tq_broker_library);
    char *other = malloc(n + 64);
    assert_non_null(other);
    snprintf(other, n + 64, "%sVERSION = 'another'\n", tq_broker_library);
    redisReply *r = tq_test_redis_cmd(&srv, "FUNCTION LOAD %s", other);
    free(other);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    assert_string_equal(loaded(), "another");

    char key[TQ_KEYS_MAX];
    assert_true(tq_keys_fmt(PFX, TQ_KEY_LOCK, "x", key, sizeof key) >= 0);
    const char *argv[] = {key, "me", "10000"};
    r = tq_broker_call(conn, "lock_acquire", 1, 2, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_string_equal(loaded(), tq_broker_version);
}

/* A caller of another version gets an error and nothing is written. */
static void test_refuses_another_caller(void **state)
{
    (void)state;
    redisReply *r = tq_broker_call(conn, "info", 0, 0, NULL, NULL);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "FCALL tickq_lock_acquire 1 %s old me 10000",
                          PFX ":lock:y");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "TICKQVERSION"));
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "EXISTS %s", PFX ":lock:y");
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* The dead letter the library writes for a message without a valid
 * queue is the one tq_msg_dead_letter writes, whatever the bytes. */
static void test_dead_letters_match_the_codec(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        size_t len;
    } cases[] = {
        {"{\"v\":1,\"id\":\"a\",\"queue\":\"bad queue\"}", 0},
        {"not json at all / \"quoted\" \\ \t", 0},
        {"caf\xc3\xa9 \xe2\x82\xac", 0}, /* valid UTF-8 */
        {"bad \xff\xfe utf-8", 0},       /* invalid: base64 */
        {"nul \0 inside", 13},           /* a NUL byte: base64 */
        {"\xed\xa0\x80 surrogate", 0},   /* invalid: base64 */
        {"ab", 0},                       /* base64 padding cases below */
        {"\xc0", 1},
        {"\xc0\xc1", 2},
        {"\xc0\xc1\xf5", 3},
    };
    char delayed[TQ_KEYS_MAX], dead[TQ_KEYS_MAX];
    assert_true(tq_keys_fmt(PFX, TQ_KEY_DELAYED, NULL, delayed, sizeof delayed) >= 0);
    assert_true(tq_keys_fmt(PFX, TQ_KEY_DEAD, NULL, dead, sizeof dead) >= 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
        redisReply *r =
            tq_test_redis_cmd(&srv, "ZADD %s 1000 %b", delayed, cases[i].msg, len);
        freeReplyObject(r);
        assert_int_equal(tq_delayed_promote(conn, PFX, 2000, 10), 0);
        r = tq_test_redis_cmd(&srv, "LPOP %s", dead);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        json_error_t jerr;
        json_t *got = json_loadb(r->str, r->len, 0, &jerr);
        if (!got)
            fail_msg("case %zu: invalid JSON %s: %s", i, r->str, jerr.text);
        size_t wlen;
        char *want_s =
            tq_msg_dead_letter(cases[i].msg, len, "undecodable",
                               "delayed: no valid queue field", "promoter", 2.0, &wlen);
        json_t *want = json_loadb(want_s, wlen, 0, &jerr);
        assert_non_null(want);
        if (!json_equal(got, want))
            fail_msg("case %zu: %s != %s", i, r->str, want_s);
        json_decref(got);
        json_decref(want);
        free(want_s);
        freeReplyObject(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_loads_when_missing, setup),
        cmocka_unit_test_setup(test_limits_match_the_headers, setup),
        cmocka_unit_test_setup(test_replaces_another_version, setup),
        cmocka_unit_test_setup(test_refuses_another_caller, setup),
        cmocka_unit_test_setup(test_dead_letters_match_the_codec, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
