/* Tests of common/delayed against a real redis-server: due messages move
 * to the back of their queue (default queue when none), later ones stay,
 * the batch bound holds, a message without a valid queue becomes a dead
 * letter, the next due time is reported, concurrent promoters move each
 * message once, and keys of the wrong type lose nothing: a message whose
 * destination is not a list stays in P:delayed while the others go on,
 * P:delayed of the wrong type is one logged error, P:stats of the wrong
 * type only goes uncounted. */
#include "tests/support/capture.h"
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/delayed.h"

#define PFX "unit-delayed"

static tq_test_redis srv;
static tq_url url;

static int group_setup(void **state)
{
    (void)state;
    if (tq_test_redis_group_start(&srv, NULL, NULL) < 0)
        return -1;
    return tq_url_parse(srv.url, &url, NULL, 0);
}

static int group_teardown(void **state)
{
    (void)state;
    return tq_test_redis_group_stop(&srv, NULL);
}

static int setup(void **state)
{
    (void)state;
    return tq_test_redis_flush(&srv);
}

static long long integer(const char *fmt, const char *arg)
{
    redisReply *r = tq_test_redis_cmd(&srv, fmt, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

static void zadd(long long due, const char *msg)
{
    redisReply *r = tq_test_redis_cmd(&srv, "ZADD " PFX ":delayed %lld %s", due, msg);
    assert_non_null(r);
    freeReplyObject(r);
}

static void test_promotes_due_messages(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    zadd(1000, "{\"v\":1,\"id\":\"a\",\"task\":\"noop\",\"queue\":\"q1\"}");
    zadd(2000, "{\"v\":1,\"id\":\"b\",\"task\":\"noop\"}");
    zadd(5000, "{\"v\":1,\"id\":\"c\",\"task\":\"noop\",\"queue\":\"q1\"}");
    int64_t next = 0;
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, 2000, 100, &next), 2);
    TQ_ASSERT_INT(next, 5000);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":queue:q1"), 1);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":queue:default"), 1);
    TQ_ASSERT_INT(integer("ZCARD %s", PFX ":delayed"), 1);
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, 4999, 100, &next), 0);
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, 5000, 100, &next), 1);
    TQ_ASSERT_INT(next, INT64_MAX);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":queue:q1"), 2);
    /* The back of the queue: LPUSH, the end workers take last. */
    redisReply *r = tq_test_redis_cmd(&srv, "LINDEX %s 0", PFX ":queue:q1");
    TQ_ASSERT_CONTAINS(r->str, "\"id\":\"c\"");
    freeReplyObject(r);
    tq_conn_free(c);
}

static void test_batch_bound_and_bad_queue(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    char msg[128];
    for (int i = 0; i < 10; i++) {
        snprintf(msg, sizeof msg, "{\"v\":1,\"id\":\"m%d\",\"task\":\"noop\"}", i);
        zadd(i, msg);
    }
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, 100, 4), 4);
    TQ_ASSERT_INT(integer("ZCARD %s", PFX ":delayed"), 6);
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, 100, 100), 6);

    zadd(1, "not json");
    zadd(2, "{\"v\":1,\"id\":\"x\",\"task\":\"noop\",\"queue\":\"bad queue!\"}");
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, 100, 100), 0);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":dead"), 2);
    TQ_ASSERT_INT(integer("ZCARD %s", PFX ":delayed"), 0);
    redisReply *r = tq_test_redis_cmd(&srv, "LINDEX %s 0", PFX ":dead");
    TQ_ASSERT_CONTAINS(r->str, "no valid queue field");
    freeReplyObject(r);
    tq_conn_free(c);
}

static void *promoter(void *arg)
{
    tq_conn *c = tq_conn_new(&url, "delayed-promoter");
    int *moved = arg;
    for (int i = 0; i < 50; i++) {
        int n = tq_delayed_promote(c, PFX, 1000000, 7);
        if (n > 0)
            *moved += n;
    }
    tq_conn_free(c);
    return NULL;
}

static void test_concurrent_promoters_move_once(void **state)
{
    (void)state;
    char msg[128];
    for (int i = 0; i < 200; i++) {
        snprintf(msg, sizeof msg, "{\"v\":1,\"id\":\"p%d\",\"task\":\"noop\"}", i);
        zadd(i, msg);
    }
    pthread_t t[4];
    int moved[4] = {0};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, promoter, &moved[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    TQ_ASSERT_INT(moved[0] + moved[1] + moved[2] + moved[3], 200);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":queue:default"), 200);
}

static void cmd(const char *fmt, const char *arg)
{
    redisReply *r = tq_test_redis_cmd(&srv, fmt, arg);
    assert_non_null(r);
    freeReplyObject(r);
}

/* A queue key of the wrong type: before, the script removed the message
 * from P:delayed and then failed on LPUSH, losing it. */
static void test_wrong_type_queue_keeps_message(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    cmd("SET %s wrong", PFX ":queue:bad");
    zadd(1, "{\"v\":1,\"id\":\"stuck\",\"task\":\"noop\",\"queue\":\"bad\"}");
    zadd(2, "{\"v\":1,\"id\":\"fine\",\"task\":\"noop\",\"queue\":\"good\"}");
    int64_t next = 0;
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, 100, 100, &next), 1);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":queue:good"), 1);
    TQ_ASSERT_INT(integer("ZCARD %s", PFX ":delayed"), 1);
    TQ_ASSERT_INT(next, 1100); /* tried again in a second */
    redisReply *r = tq_test_redis_cmd(&srv, "GET %s", PFX ":queue:bad");
    TQ_ASSERT_STR(r->str, "wrong");
    freeReplyObject(r);
    /* Once the key is fixed, the message moves, once. */
    cmd("DEL %s", PFX ":queue:bad");
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, 100, 100, &next), 1);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":queue:bad"), 1);
    TQ_ASSERT_INT(integer("ZCARD %s", PFX ":delayed"), 0);
    TQ_ASSERT_INT(next, INT64_MAX);
    tq_conn_free(c);
}

/* More stuck messages than a batch do not hide the ones behind them for
 * ever: a call steps over up to max of them. */
static void test_stuck_messages_do_not_block(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    char msg[128];
    cmd("HSET %s f v", PFX ":queue:bad");
    for (int i = 0; i < 5; i++) {
        snprintf(msg, sizeof msg,
                 "{\"v\":1,\"id\":\"s%d\",\"task\":\"n\",\"queue\":\"bad\"}", i);
        zadd(i, msg);
    }
    zadd(10, "{\"v\":1,\"id\":\"ok\",\"task\":\"n\",\"queue\":\"good\"}");
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, 100, 10), 1);
    TQ_ASSERT_INT(integer("ZCARD %s", PFX ":delayed"), 5);
    tq_conn_free(c);
}

/* P:dead of the wrong type: a message without a valid queue stays in
 * P:delayed instead of vanishing. */
static void test_wrong_type_dead_keeps_message(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    cmd("SET %s wrong", PFX ":dead");
    zadd(1, "not json");
    zadd(2, "{\"v\":1,\"id\":\"fine\",\"task\":\"noop\"}");
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, 100, 100), 1);
    TQ_ASSERT_INT(integer("ZCARD %s", PFX ":delayed"), 1);
    cmd("DEL %s", PFX ":dead");
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, 100, 100), 0);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":dead"), 1);
    TQ_ASSERT_INT(integer("ZCARD %s", PFX ":delayed"), 0);
    tq_conn_free(c);
}

/* P:stats of the wrong type: messages move, uncounted. */
static void test_wrong_type_stats(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    cmd("RPUSH %s x", PFX ":stats");
    zadd(1, "{\"v\":1,\"id\":\"a\",\"task\":\"noop\"}");
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, 100, 100), 1);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":queue:default"), 1);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":stats"), 1);
    tq_conn_free(c);
}

/* P:delayed of the wrong type: an error that names the key, logged once
 * for many calls, nothing written; and once when it works again. */
static void test_wrong_type_delayed_logged_once(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    cmd("SET %s wrong", PFX ":delayed");
    tq_test_capture cap;
    assert_int_equal(tq_test_capture_start(&cap, 2), 0);
    int rc[5];
    for (int i = 0; i < 5; i++)
        rc[i] = tq_delayed_promote(c, PFX, 100, 100);
    cmd("DEL %s", PFX ":delayed");
    int after = tq_delayed_promote(c, PFX, 100, 100);
    char *out = tq_test_capture_stop(&cap, NULL);
    assert_non_null(out);
    for (int i = 0; i < 5; i++)
        TQ_ASSERT_RC(rc[i], TQ_EREPLY);
    TQ_ASSERT_INT(after, 0);
    TQ_ASSERT_INT(tq_test_count(out, PFX ":delayed is a string, not a zset"), 1);
    TQ_ASSERT_INT(tq_test_count_lines(out), 1); /* the recovery is info: not shown */
    free(out);
    tq_conn_free(c);
}

static void test_redis_down(void **state)
{
    (void)state;
    tq_url bad = url;
    bad.port = 1; /* nothing listens there */
    tq_conn *c = tq_conn_new(&bad, "delayed-down");
    TQ_ASSERT_RC(tq_delayed_promote(c, PFX, 1, 10), TQ_EREDIS);
    tq_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_promotes_due_messages, setup),
        cmocka_unit_test_setup(test_batch_bound_and_bad_queue, setup),
        cmocka_unit_test_setup(test_concurrent_promoters_move_once, setup),
        cmocka_unit_test_setup(test_wrong_type_queue_keeps_message, setup),
        cmocka_unit_test_setup(test_stuck_messages_do_not_block, setup),
        cmocka_unit_test_setup(test_wrong_type_dead_keeps_message, setup),
        cmocka_unit_test_setup(test_wrong_type_stats, setup),
        cmocka_unit_test_setup(test_wrong_type_delayed_logged_once, setup),
        cmocka_unit_test_setup(test_redis_down, setup),
    };
    return cmocka_run_group_tests_name("delayed", tests, group_setup, group_teardown);
}
