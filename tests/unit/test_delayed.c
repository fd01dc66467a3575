/* Tests of common/delayed against a real redis-server: due messages of a
 * queue's P:{q}:delayed move to the back of that queue, later ones stay,
 * the batch bound holds, the next due time is reported, concurrent
 * promoters move each message once, tq_delayed_promote_all promotes every
 * queue in P:{@}:queues, and keys of the wrong type lose nothing: while
 * the queue key is not a list every due message stays in P:{q}:delayed,
 * P:{q}:delayed of the wrong type is one logged error, P:{q}:stats of the
 * wrong type only goes uncounted. */
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
    if (tq_test_redis_group_start_cluster(&srv, NULL, NULL) < 0)
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

#define DELAYED(q) PFX ":{" q "}:delayed"
#define QUEUE(q) PFX ":{" q "}:queue"

static void zadd_to(const char *key, long long due, const char *msg)
{
    redisReply *r = tq_test_redis_cmd(&srv, "ZADD %s %lld %s", key, due, msg);
    assert_non_null(r);
    freeReplyObject(r);
}

static void zadd(long long due, const char *msg)
{
    zadd_to(DELAYED("default"), due, msg);
}

static void test_promotes_due_messages(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    zadd_to(DELAYED("q1"), 1000,
            "{\"v\":1,\"id\":\"a\",\"task\":\"noop\",\"queue\":\"q1\"}");
    /* A message goes back to the queue whose delayed set holds it, whatever
     * its queue field says. */
    zadd_to(DELAYED("q1"), 2000, "{\"v\":1,\"id\":\"b\",\"task\":\"noop\"}");
    zadd_to(DELAYED("q1"), 5000,
            "{\"v\":1,\"id\":\"c\",\"task\":\"noop\",\"queue\":\"q1\"}");
    int64_t next = 0;
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, "q1", 2000, 100, &next), 2);
    TQ_ASSERT_INT(next, 5000);
    TQ_ASSERT_INT(integer("LLEN %s", QUEUE("q1")), 2);
    TQ_ASSERT_INT(integer("EXISTS %s", QUEUE("default")), 0);
    TQ_ASSERT_INT(integer("ZCARD %s", DELAYED("q1")), 1);
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, "q1", 4999, 100, &next), 0);
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, "q1", 5000, 100, &next), 1);
    TQ_ASSERT_INT(next, INT64_MAX);
    TQ_ASSERT_INT(integer("LLEN %s", QUEUE("q1")), 3);
    /* The back of the queue: LPUSH, the end workers take last. */
    redisReply *r = tq_test_redis_cmd(&srv, "LINDEX %s 0", QUEUE("q1"));
    TQ_ASSERT_CONTAINS(r->str, "\"id\":\"c\"");
    freeReplyObject(r);
    /* The first due is the first taken. */
    r = tq_test_redis_cmd(&srv, "LINDEX %s -1", QUEUE("q1"));
    TQ_ASSERT_CONTAINS(r->str, "\"id\":\"a\"");
    freeReplyObject(r);
    tq_conn_free(c);
}

static void test_batch_bound(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    char msg[128];
    for (int i = 0; i < 10; i++) {
        snprintf(msg, sizeof msg, "{\"v\":1,\"id\":\"m%d\",\"task\":\"noop\"}", i);
        zadd(i, msg);
    }
    int64_t next = 0;
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, "default", 100, 4, &next), 4);
    TQ_ASSERT_INT(next, 100); /* more were due: promote again now */
    TQ_ASSERT_INT(integer("ZCARD %s", DELAYED("default")), 6);
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, "default", 100, 100), 6);
    /* Anything a client put there moves, even bytes that are no message:
     * the worker dead-letters those as undecodable. */
    zadd(1, "not json");
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, "default", 100, 100), 1);
    TQ_ASSERT_INT(integer("LLEN %s", QUEUE("default")), 11);
    tq_conn_free(c);
}

/* The beat's promotion: every queue in P:{@}:queues. */
static void test_promote_all(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    redisReply *r = tq_test_redis_cmd(&srv, "SADD %s a b", PFX ":{@}:queues");
    freeReplyObject(r);
    zadd_to(DELAYED("a"), 1, "{\"v\":1,\"id\":\"1\",\"task\":\"noop\"}");
    zadd_to(DELAYED("b"), 1, "{\"v\":1,\"id\":\"2\",\"task\":\"noop\"}");
    zadd_to(DELAYED("b"), 1, "{\"v\":1,\"id\":\"3\",\"task\":\"noop\"}");
    zadd_to(DELAYED("c"), 1, "{\"v\":1,\"id\":\"4\",\"task\":\"noop\"}"); /* not in use */
    TQ_ASSERT_INT(tq_delayed_promote_all(c, PFX, 100, 100), 3);
    TQ_ASSERT_INT(integer("LLEN %s", QUEUE("a")), 1);
    TQ_ASSERT_INT(integer("LLEN %s", QUEUE("b")), 2);
    TQ_ASSERT_INT(integer("ZCARD %s", DELAYED("c")), 1);
    tq_conn_free(c);
}

static void *promoter(void *arg)
{
    tq_conn *c = tq_conn_new(&url, "delayed-promoter");
    int *moved = arg;
    for (int i = 0; i < 50; i++) {
        int n = tq_delayed_promote(c, PFX, "default", 1000000, 7);
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
    TQ_ASSERT_INT(integer("LLEN %s", QUEUE("default")), 200);
}

static void cmd(const char *fmt, const char *arg)
{
    redisReply *r = tq_test_redis_cmd(&srv, fmt, arg);
    assert_non_null(r);
    freeReplyObject(r);
}

/* A queue key of the wrong type: every due message stays in P:{q}:delayed
 * (none is removed and then lost), reported as stuck; once the key is
 * fixed they move, once. */
static void test_wrong_type_queue_keeps_message(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    cmd("SET %s wrong", QUEUE("bad"));
    zadd_to(DELAYED("bad"), 1, "{\"v\":1,\"id\":\"stuck\",\"task\":\"noop\"}");
    zadd_to(DELAYED("bad"), 2, "{\"v\":1,\"id\":\"also\",\"task\":\"noop\"}");
    int64_t next = 0;
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, "bad", 100, 100, &next), 0);
    TQ_ASSERT_INT(integer("ZCARD %s", DELAYED("bad")), 2);
    TQ_ASSERT_INT(next, 1100); /* tried again in a second */
    redisReply *r = tq_test_redis_cmd(&srv, "GET %s", QUEUE("bad"));
    TQ_ASSERT_STR(r->str, "wrong");
    freeReplyObject(r);
    cmd("DEL %s", QUEUE("bad"));
    TQ_ASSERT_INT(tq_delayed_promote_next(c, PFX, "bad", 100, 100, &next), 2);
    TQ_ASSERT_INT(integer("LLEN %s", QUEUE("bad")), 2);
    TQ_ASSERT_INT(integer("ZCARD %s", DELAYED("bad")), 0);
    TQ_ASSERT_INT(next, INT64_MAX);
    tq_conn_free(c);
}

/* P:{q}:stats of the wrong type: messages move, uncounted. */
static void test_wrong_type_stats(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    cmd("RPUSH %s x", PFX ":{default}:stats");
    zadd(1, "{\"v\":1,\"id\":\"a\",\"task\":\"noop\"}");
    TQ_ASSERT_INT(tq_delayed_promote(c, PFX, "default", 100, 100), 1);
    TQ_ASSERT_INT(integer("LLEN %s", QUEUE("default")), 1);
    TQ_ASSERT_INT(integer("LLEN %s", PFX ":{default}:stats"), 1);
    tq_conn_free(c);
}

/* P:{q}:delayed of the wrong type: an error that names the key, logged
 * once for many calls, nothing written; and once when it works again. */
static void test_wrong_type_delayed_logged_once(void **state)
{
    (void)state;
    tq_conn *c = tq_conn_new(&url, "delayed-test");
    cmd("SET %s wrong", DELAYED("default"));
    tq_test_capture cap;
    assert_int_equal(tq_test_capture_start(&cap, 2), 0);
    int rc[5];
    for (int i = 0; i < 5; i++)
        rc[i] = tq_delayed_promote(c, PFX, "default", 100, 100);
    cmd("DEL %s", DELAYED("default"));
    int after = tq_delayed_promote(c, PFX, "default", 100, 100);
    char *out = tq_test_capture_stop(&cap, NULL);
    assert_non_null(out);
    for (int i = 0; i < 5; i++)
        TQ_ASSERT_RC(rc[i], TQ_EREPLY);
    TQ_ASSERT_INT(after, 0);
    TQ_ASSERT_INT(tq_test_count(out, DELAYED("default") " is a string, not a zset"), 1);
    TQ_ASSERT_INT(tq_test_count_lines(out), 1); /* the recovery is info: not shown */
    free(out);
    tq_conn_free(c);
}

static void test_redis_down(void **state)
{
    (void)state;
    tq_url bad = url;
    bad.port = bad.nodes[0].port = 1; /* nothing listens there */
    tq_conn *c = tq_conn_new(&bad, "delayed-down");
    TQ_ASSERT_RC(tq_delayed_promote(c, PFX, "default", 1, 10), TQ_EREDIS);
    TQ_ASSERT_RC(tq_delayed_promote_all(c, PFX, 1, 10), TQ_EREDIS);
    tq_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_promotes_due_messages, setup),
        cmocka_unit_test_setup(test_batch_bound, setup),
        cmocka_unit_test_setup(test_promote_all, setup),
        cmocka_unit_test_setup(test_concurrent_promoters_move_once, setup),
        cmocka_unit_test_setup(test_wrong_type_queue_keeps_message, setup),
        cmocka_unit_test_setup(test_wrong_type_stats, setup),
        cmocka_unit_test_setup(test_wrong_type_delayed_logged_once, setup),
        cmocka_unit_test_setup(test_redis_down, setup),
    };
    return cmocka_run_group_tests_name("delayed", tests, group_setup, group_teardown);
}
