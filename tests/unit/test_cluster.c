/* Tests of common/slot (the hash slot of a key and of a command) and of
 * common/conn's slot router, against a real three-master Redis Cluster
 * (tests/support): every key lands on the master of its slot, pipelines
 * that span nodes come back in order, commands without keys follow the
 * next key (MULTI ... EXEC), MOVED after a slot moved, ASK during a
 * migration, and a dead master is an outage with its address in the error
 * and a backoff that grows while it stays dead. */
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/log.h"
#include "common/slot.h"

#define NODES 3

static tq_test_redis node[NODES];
static char url[512];

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    tq_log_init(TQ_LOG_ERROR, TQ_LOG_TEXT, "test");
    return tq_test_cluster_start(node, NODES, url, sizeof url);
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        tq_test_redis_stop(&node[i]);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        if (tq_test_redis_flush(&node[i]) < 0)
            return -1;
    return 0;
}

static tq_conn *cluster_conn(void)
{
    tq_url u;
    char err[256] = "";
    if (tq_url_parse(url, &u, err, sizeof err) != 0)
        fail_msg("url %s: %s", url, err);
    tq_conn *c = tq_conn_new(&u, "cluster-test");
    assert_non_null(c);
    return c;
}

/* The node that serves slot, by asking node 0 (CLUSTER SLOTS). */
static int owner(int slot)
{
    redisReply *r = tq_test_redis_cmd(&node[0], "CLUSTER SLOTS");
    assert_non_null(r);
    int port = -1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (slot >= e->element[0]->integer && slot <= e->element[1]->integer)
            port = (int)e->element[2]->element[1]->integer;
    }
    freeReplyObject(r);
    for (int i = 0; i < NODES; i++)
        if (node[i].port == port)
            return i;
    fail_msg("no node serves slot %d", slot);
    return -1;
}

/* 1 if node i holds key. */
static int holds(int i, const char *key)
{
    redisReply *r = tq_test_redis_cmd(&node[i], "CLUSTER COUNTKEYSINSLOT %d",
                                      tq_slot(key, strlen(key)));
    assert_non_null(r);
    int n = (int)r->integer;
    freeReplyObject(r);
    return n > 0;
}

static void expect_status(redisReply *r, const char *want)
{
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("error reply: %s", r->str);
    TQ_ASSERT_STR(r->str, want);
    freeReplyObject(r);
}

/* tq_slot agrees with Redis' CLUSTER KEYSLOT on keys with and without hash
 * tags, empty tags, unclosed braces and bytes of every value. */
static void test_slot_matches_redis(void **state)
{
    (void)state;
    static const char *const fixed[] = {"foo",
                                        "bar",
                                        "{user1000}.following",
                                        "{user1000}.followers",
                                        "foo{}{bar}",
                                        "foo{{bar}}zap",
                                        "foo{bar}{zap}",
                                        "{}",
                                        "{",
                                        "}",
                                        "a{b",
                                        "tickq:{default}:queue",
                                        "",
                                        "\xff\xfe{\x01}"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        redisReply *r =
            tq_test_redis_cmd(&node[0], "CLUSTER KEYSLOT %b", fixed[i], strlen(fixed[i]));
        assert_non_null(r);
        if (tq_slot(fixed[i], strlen(fixed[i])) != r->integer)
            fail_msg("key '%s': tq_slot %d, redis %lld", fixed[i],
                     tq_slot(fixed[i], strlen(fixed[i])), r->integer);
        freeReplyObject(r);
    }
    assert_int_equal(tq_slot("foo", 3), 12182); /* Redis' documentation */
    unsigned seed = 7;
    for (int i = 0; i < 2000; i++) {
        char key[40];
        size_t len = (size_t)(rand_r(&seed) % sizeof key);
        for (size_t k = 0; k < len; k++)
            key[k] = "ab{}\x00\xff:x"[rand_r(&seed) % 8];
        redisReply *r = tq_test_redis_cmd(&node[0], "CLUSTER KEYSLOT %b", key, len);
        assert_non_null(r);
        assert_int_equal(tq_slot(key, len), r->integer);
        freeReplyObject(r);
    }
}

/* The slot of a command is that of its first key, wherever the command
 * keeps it; commands without keys have none. */
static void test_slot_of_commands(void **state)
{
    (void)state;
    int foo = tq_slot("foo", 3);
    const char *get[] = {"GET", "foo"};
    assert_int_equal(tq_slot_argv(2, get, NULL), foo);
    const char *fcall[] = {"FCALL", "f", "2", "foo", "bar", "arg"};
    assert_int_equal(tq_slot_argv(6, fcall, NULL), foo);
    const char *fcall0[] = {"fcall_ro", "f", "0", "arg"};
    assert_int_equal(tq_slot_argv(4, fcall0, NULL), -1);
    const char *badn[] = {"FCALL", "f", "x", "foo"};
    assert_int_equal(tq_slot_argv(4, badn, NULL), -1);
    const char *xread[] = {"XREAD", "BLOCK", "100", "STREAMS", "foo", "$"};
    assert_int_equal(tq_slot_argv(6, xread, NULL), foo);
    const char *xnone[] = {"XREAD", "STREAMS"};
    assert_int_equal(tq_slot_argv(2, xnone, NULL), -1);
    const char *mem[] = {"MEMORY", "USAGE", "foo"};
    assert_int_equal(tq_slot_argv(3, mem, NULL), foo);
    const char *keyless[][2] = {{"PING", "x"},
                                {"function", "LIST"},
                                {"WAIT", "1"},
                                {"MULTI", "x"},
                                {"SCAN", "0"}};
    for (size_t i = 0; i < sizeof keyless / sizeof *keyless; i++)
        assert_int_equal(tq_slot_argv(2, keyless[i], NULL), -1);
    const char *one[] = {"GET"};
    assert_int_equal(tq_slot_argv(1, one, NULL), -1);
    size_t lens[] = {3, 2};
    const char *bin[] = {"GET", "f\0"};
    assert_int_equal(tq_slot_argv(2, bin, lens), tq_slot("f\0", 2));
}

/* Keys spread over every node, each on its slot's master; a pipeline that
 * spans the nodes comes back in order; PING needs no key. */
static void test_keys_land_on_their_master(void **state)
{
    (void)state;
    tq_conn *c = cluster_conn();
    expect_status(tq_conn_cmd(c, "PING"), "PONG");
    int used[NODES] = {0};
    char key[32];
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof key, "k%d", i);
        expect_status(tq_conn_cmd(c, "SET %s v%d", key, i), "OK");
        int o = owner(tq_slot(key, strlen(key)));
        assert_true(holds(o, key));
        used[o]++;
    }
    for (int i = 0; i < NODES; i++)
        assert_true(used[i] > 0);
    uint64_t trips = tq_conn_roundtrips(c);
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof key, "k%d", i);
        const char *argv[] = {"GET", key};
        assert_int_equal(tq_conn_append(c, 2, argv, NULL), 0);
    }
    for (int i = 0; i < 60; i++) {
        redisReply *r = tq_conn_reply(c);
        assert_non_null(r);
        char want[16];
        snprintf(want, sizeof want, "v%d", i);
        TQ_ASSERT_STR(r->str, want);
        freeReplyObject(r);
    }
    /* One round trip per run of keys on one node, not one per key. */
    assert_true(tq_conn_roundtrips(c) - trips < 60);
    tq_conn_free(c);
}

/* MULTI and EXEC (no keys) go where the commands between them go, and the
 * transaction runs there. */
static void test_transaction_follows_its_keys(void **state)
{
    (void)state;
    tq_conn *c = cluster_conn();
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *s1[] = {"SET", "{t}a", "1"}, *s2[] = {"INCR", "{t}b"};
    assert_int_equal(tq_conn_append(c, 1, multi, NULL), 0);
    assert_int_equal(tq_conn_append(c, 3, s1, NULL), 0);
    assert_int_equal(tq_conn_append(c, 2, s2, NULL), 0);
    assert_int_equal(tq_conn_append(c, 1, exec, NULL), 0);
    redisReply *r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = tq_conn_reply(c);
        assert_non_null(r[i]);
    }
    TQ_ASSERT_STR(r[0]->str, "OK");
    TQ_ASSERT_STR(r[1]->str, "QUEUED");
    assert_int_equal(r[3]->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r[3]->element[1]->integer, 1);
    for (int i = 0; i < 4; i++)
        freeReplyObject(r[i]);
    assert_true(holds(owner(tq_slot("t", 1)), "{t}a"));
    tq_conn_free(c);
}

/* Tells every node that slot now belongs to node to. */
static void move_slot(int slot, int to)
{
    redisReply *id = tq_test_redis_cmd(&node[to], "CLUSTER MYID");
    assert_non_null(id);
    for (int i = 0; i < NODES; i++) {
        redisReply *r =
            tq_test_redis_cmd(&node[i], "CLUSTER SETSLOT %d NODE %s", slot, id->str);
        expect_status(r, "OK");
    }
    freeReplyObject(id);
}

/* After a slot moves, the router's old map sends the key to the old
 * master, which answers MOVED: the command is sent again to the new one,
 * and the map is right from then on. */
static void test_moved(void **state)
{
    (void)state;
    tq_conn *c = cluster_conn();
    expect_status(tq_conn_cmd(c, "SET foo 1"), "OK"); /* the map is loaded */
    int slot = tq_slot("foo", 3), from = owner(slot), to = (from + 1) % NODES;
    redisReply *d = tq_conn_cmd(c, "DEL foo"); /* a master gives away no keys */
    assert_non_null(d);
    freeReplyObject(d);
    move_slot(slot, to);
    uint64_t trips = tq_conn_roundtrips(c);
    expect_status(tq_conn_cmd(c, "SET foo 2"), "OK");
    assert_int_equal(tq_conn_roundtrips(c) - trips, 2); /* MOVED, then the right one */
    assert_true(holds(to, "foo"));
    assert_false(holds(from, "foo"));
    trips = tq_conn_roundtrips(c);
    redisReply *r = tq_conn_cmd(c, "GET foo");
    assert_non_null(r);
    TQ_ASSERT_STR(r->str, "2");
    freeReplyObject(r);
    assert_int_equal(tq_conn_roundtrips(c) - trips, 1);
    d = tq_conn_cmd(c, "DEL foo");
    assert_non_null(d);
    freeReplyObject(d);
    move_slot(slot, from); /* as it was, for the other tests */
    tq_conn_free(c);
}

/* During a migration the old master answers ASK for a key it no longer
 * has: the router sends ASKING and the command to the importing node. */
static void test_ask(void **state)
{
    (void)state;
    tq_conn *c = cluster_conn();
    expect_status(tq_conn_cmd(c, "PING"), "PONG");
    int slot = tq_slot("bar", 3), from = owner(slot), to = (from + 1) % NODES;
    redisReply *fid = tq_test_redis_cmd(&node[from], "CLUSTER MYID");
    redisReply *tid = tq_test_redis_cmd(&node[to], "CLUSTER MYID");
    expect_status(
        tq_test_redis_cmd(&node[to], "CLUSTER SETSLOT %d IMPORTING %s", slot, fid->str),
        "OK");
    expect_status(
        tq_test_redis_cmd(&node[from], "CLUSTER SETSLOT %d MIGRATING %s", slot, tid->str),
        "OK");
    expect_status(tq_conn_cmd(c, "SET bar 1"), "OK");
    assert_true(holds(to, "bar")); /* written where the slot is going */
    assert_false(holds(from, "bar"));
    freeReplyObject(fid);
    freeReplyObject(tid);
    move_slot(slot, to); /* the migration ends; then back, as it was */
    redisReply *d = tq_test_redis_cmd(&node[to], "DEL bar");
    assert_non_null(d);
    freeReplyObject(d);
    move_slot(slot, from);
    tq_conn_free(c);
}

/* A master that dies is an outage: NULL, with its address in the error;
 * keys on the other masters work again after the backoff. */
static void test_dead_master(void **state)
{
    (void)state;
    tq_conn *c = cluster_conn();
    expect_status(tq_conn_cmd(c, "PING"), "PONG");
    char key[32] = "", other[32] = "";
    for (int i = 0; !key[0] || !other[0]; i++) {
        char k[32];
        snprintf(k, sizeof k, "d%d", i);
        int o = owner(tq_slot(k, strlen(k)));
        if (o == 2 && !key[0])
            snprintf(key, sizeof key, "%s", k);
        if (o == 0 && !other[0])
            snprintf(other, sizeof other, "%s", k);
    }
    expect_status(tq_conn_cmd(c, "SET %s 1", key), "OK");
    assert_int_equal(tq_test_redis_kill(&node[2]), 0);
    assert_null(tq_conn_cmd(c, "SET %s 2", key));
    char port[16];
    snprintf(port, sizeof port, ":%d", node[2].port);
    TQ_ASSERT_CONTAINS(tq_conn_last_error(c), port);
    /* While it stays dead the backoff grows: a seed that gives the map
     * does not make the connection healthy, only an answered command. */
    int64_t wait_ms = 0;
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 200 && tq_conn_backoff_ms(c) > 0; i++)
            usleep(20 * 1000);
        assert_null(tq_conn_cmd(c, "SET %s 2", key));
        wait_ms = tq_conn_backoff_ms(c);
    }
    if (wait_ms <= TQ_CONN_BACKOFF_BASE_MS)
        fail_msg("after 5 failures the next try is in %lld ms", (long long)wait_ms);
    for (int i = 0; i < 200 && tq_conn_backoff_ms(c) > 0; i++)
        usleep(20 * 1000);
    expect_status(tq_conn_cmd(c, "SET %s 1", other), "OK");
    assert_int_equal(tq_test_redis_restart(&node[2]), 0);
    tq_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_slot_matches_redis, setup),
        cmocka_unit_test_setup(test_slot_of_commands, setup),
        cmocka_unit_test_setup(test_keys_land_on_their_master, setup),
        cmocka_unit_test_setup(test_transaction_follows_its_keys, setup),
        cmocka_unit_test_setup(test_moved, setup),
        cmocka_unit_test_setup(test_ask, setup),
        cmocka_unit_test_setup(test_dead_master, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
