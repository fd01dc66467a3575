/* Tests of common/lock against a real redis-server: take, renew by the
 * owner, refuse to others, extend and release only by the owner, expiry,
 * bad arguments, a key of the wrong type, and Redis being down. */
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/keys.h"
#include "common/lock.h"

static tq_test_redis srv;
static tq_conn *conn;
static char key[TQ_KEYS_MAX];

static int group_setup(void **state)
{
    (void)state;
    if (tq_test_redis_group_start_cluster(&srv, &conn, "lock-test") < 0)
        return -1;
    return tq_keys_fmt("unit-lock", TQ_KEY_LOCK, "q", "task@1", key, sizeof key) < 0 ? -1
                                                                                     : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    return tq_test_redis_group_stop(&srv, conn);
}

/* Each test starts with an empty server without cached scripts. */
static int setup(void **state)
{
    (void)state;
    return tq_test_redis_flush(&srv);
}

/* The lock's value, "" when it does not exist. */
static const char *holder(void)
{
    static char buf[256];
    redisReply *r = tq_test_redis_cmd(&srv, "GET %s", key);
    assert_non_null(r);
    snprintf(buf, sizeof buf, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return buf;
}

/* The lock's remaining life in ms (-2 when it does not exist). */
static long long pttl(void)
{
    redisReply *r = tq_test_redis_cmd(&srv, "PTTL %s", key);
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void test_acquire(void **state)
{
    (void)state;
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 10000), 1);
    TQ_ASSERT_STR(holder(), "worker-a");
    TQ_ASSERT_RANGE(pttl(), 9000, 10000);
}

static void test_acquire_again_by_owner_renews(void **state)
{
    (void)state;
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 5000), 1);
    TQ_ASSERT_RANGE(pttl(), 4000, 5000);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 60000), 1);
    TQ_ASSERT_STR(holder(), "worker-a");
    TQ_ASSERT_RANGE(pttl(), 59000, 60000);
}

static void test_acquire_by_other_fails(void **state)
{
    (void)state;
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 10000), 1);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-b", 60000), 0);
    TQ_ASSERT_STR(holder(), "worker-a");
    TQ_ASSERT_RANGE(pttl(), 8000, 10000); /* the other did not renew it */
    /* Owners compare exactly: a prefix or a longer id is someone else. */
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-", 60000), 0);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-aa", 60000), 0);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "WORKER-A", 60000), 0);
}

static void test_extend(void **state)
{
    (void)state;
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 5000), 1);
    TQ_ASSERT_INT(tq_lock_extend(conn, key, "worker-a", 60000), 1);
    TQ_ASSERT_RANGE(pttl(), 59000, 60000);
    /* Extending can shorten too: it sets the lease. */
    TQ_ASSERT_INT(tq_lock_extend(conn, key, "worker-a", 3000), 1);
    TQ_ASSERT_RANGE(pttl(), 2000, 3000);

    TQ_ASSERT_INT(tq_lock_extend(conn, key, "worker-b", 60000), 0);
    TQ_ASSERT_RANGE(pttl(), 1000, 3000);
    TQ_ASSERT_STR(holder(), "worker-a");

    /* A lock nobody holds cannot be extended (and is not created). */
    redisReply *r = tq_test_redis_cmd(&srv, "DEL %s", key);
    freeReplyObject(r);
    TQ_ASSERT_INT(tq_lock_extend(conn, key, "worker-a", 60000), 0);
    TQ_ASSERT_STR(holder(), "");
}

static void test_release(void **state)
{
    (void)state;
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 10000), 1);
    TQ_ASSERT_INT(tq_lock_release(conn, key, "worker-b"), 0);
    TQ_ASSERT_STR(holder(), "worker-a");
    TQ_ASSERT_INT(tq_lock_release(conn, key, "worker-a"), 1);
    TQ_ASSERT_STR(holder(), "");
    TQ_ASSERT_INT(pttl(), -2);
    /* Released twice: the second finds nothing. */
    TQ_ASSERT_INT(tq_lock_release(conn, key, "worker-a"), 0);
    /* Then anyone may take it. */
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-b", 10000), 1);
    TQ_ASSERT_STR(holder(), "worker-b");
}

static void test_ttl_expiry(void **state)
{
    (void)state;
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 100), 1);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-b", 100), 0);
    tq_clock_sleep_ms(250, NULL);
    /* The owner vanished: the lock expired, another takes it. */
    TQ_ASSERT_INT(tq_lock_extend(conn, key, "worker-a", 10000), 0);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-b", 10000), 1);
    TQ_ASSERT_STR(holder(), "worker-b");
    /* And the former owner cannot release the new owner's lock. */
    TQ_ASSERT_INT(tq_lock_release(conn, key, "worker-a"), 0);
    TQ_ASSERT_STR(holder(), "worker-b");

    /* Extending keeps a short lock alive past its first ttl. */
    TQ_ASSERT_INT(tq_lock_release(conn, key, "worker-b"), 1);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 300), 1);
    for (int i = 0; i < 6; i++) {
        tq_clock_sleep_ms(75, NULL);
        TQ_ASSERT_INT(tq_lock_extend(conn, key, "worker-a", 300), 1);
    }
    TQ_ASSERT_STR(holder(), "worker-a");
}

static void test_bad_ttl(void **state)
{
    (void)state;
    TQ_ASSERT_RC(tq_lock_acquire(conn, key, "worker-a", 0), TQ_EINVAL);
    TQ_ASSERT_RC(tq_lock_acquire(conn, key, "worker-a", -5), TQ_EINVAL);
    TQ_ASSERT_STR(holder(), "");
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 10000), 1);
    TQ_ASSERT_RC(tq_lock_extend(conn, key, "worker-a", 0), TQ_EINVAL);
    TQ_ASSERT_RC(tq_lock_extend(conn, key, "worker-a", -1), TQ_EINVAL);
    TQ_ASSERT_RANGE(pttl(), 9000, 10000);
}

static void test_odd_owners_and_keys(void **state)
{
    (void)state;
    /* Owner ids are data, not format strings or Lua. */
    const char *odd = "w %s %d \"'] -- ) end \n";
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, odd, 10000), 1);
    TQ_ASSERT_STR(holder(), odd);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "w", 10000), 0);
    TQ_ASSERT_INT(tq_lock_release(conn, key, odd), 1);

    /* Many locks are independent. */
    char k2[TQ_KEYS_MAX];
    tq_keys_fmt("unit-lock", TQ_KEY_LOCK, "q", "task@2", k2, sizeof k2);
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "a", 10000), 1);
    TQ_ASSERT_INT(tq_lock_acquire(conn, k2, "b", 10000), 1);
    TQ_ASSERT_INT(tq_lock_release(conn, k2, "a"), 0);
    TQ_ASSERT_INT(tq_lock_release(conn, key, "a"), 1);
    TQ_ASSERT_INT(tq_lock_release(conn, k2, "b"), 1);
}

static void test_wrong_type(void **state)
{
    (void)state;
    /* A key that is not a string (a bug elsewhere): an error, not a crash,
     * and the key is left alone. */
    redisReply *r = tq_test_redis_cmd(&srv, "RPUSH %s x", key);
    freeReplyObject(r);
    TQ_ASSERT_RC(tq_lock_acquire(conn, key, "worker-a", 1000), TQ_EREPLY);
    TQ_ASSERT_RC(tq_lock_extend(conn, key, "worker-a", 1000), TQ_EREPLY);
    TQ_ASSERT_RC(tq_lock_release(conn, key, "worker-a"), TQ_EREPLY);
    r = tq_test_redis_cmd(&srv, "TYPE %s", key);
    assert_non_null(r);
    TQ_ASSERT_STR(r->str, "list");
    freeReplyObject(r);
}

static void test_scripts_reload_after_flush(void **state)
{
    (void)state;
    TQ_ASSERT_INT(tq_lock_acquire(conn, key, "worker-a", 10000), 1);
    redisReply *r = tq_test_redis_cmd(&srv, "SCRIPT FLUSH");
    freeReplyObject(r);
    TQ_ASSERT_INT(tq_lock_extend(conn, key, "worker-a", 20000), 1);
    r = tq_test_redis_cmd(&srv, "SCRIPT FLUSH");
    freeReplyObject(r);
    TQ_ASSERT_INT(tq_lock_release(conn, key, "worker-a"), 1);
}

static void test_redis_down(void **state)
{
    (void)state;
    int port = tq_test_free_port();
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
    tq_url u;
    assert_int_equal(tq_url_parse(url, &u, NULL, 0), 0);
    tq_conn *down = tq_conn_new(&u, "down");
    assert_non_null(down);
    TQ_ASSERT_RC(tq_lock_acquire(down, key, "worker-a", 1000), TQ_EREDIS);
    TQ_ASSERT_RC(tq_lock_extend(down, key, "worker-a", 1000), TQ_EREDIS);
    TQ_ASSERT_RC(tq_lock_release(down, key, "worker-a"), TQ_EREDIS);
    tq_conn_free(down);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, NULL)
    const struct CMUnitTest tests[] = {
        T(test_acquire),
        T(test_acquire_again_by_owner_renews),
        T(test_acquire_by_other_fails),
        T(test_extend),
        T(test_release),
        T(test_ttl_expiry),
        T(test_bad_ttl),
        T(test_odd_owners_and_keys),
        T(test_wrong_type),
        T(test_scripts_reload_after_flush),
        T(test_redis_down),
    };
#undef T
    return cmocka_run_group_tests_name("lock", tests, group_setup, group_teardown);
}
