/* The worker's decisions at chosen instants: when a failed run's next
 * attempt is due (worker/retry.c), and which workers the reaper finds dead
 * and requeues (worker_queue_reap against a real redis-server, with "now"
 * passed in). */
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "worker/queue.h"
#include "worker/retry.h"

static tq_test_redis srv;
static tq_conn *conn;

static int group_setup(void **state)
{
    (void)state;
    return tq_test_redis_group_start_cluster(&srv, &conn, "worker-test");
}

static int group_teardown(void **state)
{
    (void)state;
    return tq_test_redis_group_stop(&srv, conn);
}

static int setup(void **state)
{
    (void)state;
    return tq_test_redis_flush(&srv);
}

/* Full jitter: attempt a waits from 0 to min(cap, base * 2^(a - 1)), all of
 * that window is used, and nothing overflows at the last attempt. */
static void test_retry_windows(void **state)
{
    (void)state;
    uint64_t rng = 88172645463325252ull;
    const int64_t base = 100, cap = 1000;
    for (int a = 1; a <= 8; a++) {
        int64_t window = base << (a - 1);
        if (window > cap)
            window = cap;
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 20000; i++) {
            int64_t d = worker_retry_delay_ms(base, cap, a, &rng);
            TQ_ASSERT_RANGE(d, 0, window);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* The whole window is drawn from, both ends near. */
        TQ_ASSERT_RANGE(lo, 0, window / 50);
        TQ_ASSERT_RANGE(hi, window - window / 50, window);
    }
    TQ_ASSERT_RANGE(worker_retry_delay_ms(base, cap, 1000001, &rng), 0, cap);
    TQ_ASSERT_INT(worker_retry_delay_ms(0, cap, 1000001, &rng), 0);
    TQ_ASSERT_INT(worker_retry_delay_ms(base, 0, 3, &rng), 0);
}

/* The due time is "now" (the run's end) plus the wait; with max_retries
 * 3, attempts 1 to 3 are retried and attempt 4 is the last: its failure is
 * a dead letter. */
static void test_retry_due_at_chosen_instants(void **state)
{
    (void)state;
    uint64_t rng = 1;
    const int64_t t = 1764096000000;
    for (int a = 1; a <= 3; a++)
        TQ_ASSERT_RANGE(worker_retry_due_ms(400, 60000, a, 3, t, &rng), t,
                        t + (400 << (a - 1)));
    TQ_ASSERT_INT(worker_retry_due_ms(400, 60000, 4, 3, t, &rng), -1);
    TQ_ASSERT_INT(worker_retry_due_ms(400, 60000, 1, 0, t, &rng), -1);
}

static void queue_for(worker_queue *q, const char *id)
{
    tq_config cfg;
    char *const argv[] = {"tickq-worker", "--prefix", "unit-worker", NULL};
    char err[256];
    assert_int_equal(
        tq_config_parse(&cfg, TQ_PROG_WORKER, 3, argv, NULL, err, sizeof err), 0);
    assert_int_equal(worker_queue_init(q, &cfg, id), 0);
    q->liveness_ms = cfg.liveness_ms;
}

/* The reaper at chosen instants: a worker whose heartbeat is exactly the
 * liveness window old is alive; a millisecond later it is dead, and its
 * messages go back to their queue, oldest first, its locks released, and
 * it leaves the queue's consumers and the registry. */
static void test_reaper_at_chosen_instants(void **state)
{
    (void)state;
    worker_queue me, other;
    queue_for(&me, "reaper");
    queue_for(&other, "gone");
    const int64_t t0 = 1764096000000, live = me.liveness_ms;
    const worker_qkeys *k = &other.qk[0]; /* queue default */
    redisReply *r =
        tq_test_redis_cmd(&srv, "ZADD %s %lld gone", other.workers, (long long)t0);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "ZADD %s %lld gone", k->consumers, (long long)t0);
    freeReplyObject(r);
    const char *m1 = "{\"v\":1,\"id\":\"a\",\"task\":\"noop\"}";
    const char *m2 = "{\"v\":1,\"id\":\"b\",\"task\":\"noop\"}";
    /* m1 was taken first: it is at the tail of the processing list. */
    freeReplyObject(tq_test_redis_cmd(&srv, "LPUSH %s %s %s", k->processing, m1, m2));
    freeReplyObject(tq_test_redis_cmd(&srv, "SET %sa gone", k->lock_stem));

    TQ_ASSERT_INT(worker_queue_reap(conn, &me, t0 + live), 0);
    r = tq_test_redis_cmd(&srv, "LLEN %s", k->processing);
    TQ_ASSERT_INT(r->integer, 2);
    freeReplyObject(r);

    TQ_ASSERT_INT(worker_queue_reap(conn, &me, t0 + live + 1), 2);
    r = tq_test_redis_cmd(&srv, "LRANGE %s 0 -1", k->queue);
    TQ_ASSERT_INT(r->elements, 2);
    /* Back at the consuming end, oldest first: m1 is taken next. */
    assert_string_equal(r->element[1]->str, m1);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "EXISTS %sa", k->lock_stem);
    TQ_ASSERT_INT(r->integer, 0);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "EXISTS %s", k->processing);
    TQ_ASSERT_INT(r->integer, 0);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "ZSCORE %s gone", k->consumers);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "ZSCORE %s gone", other.workers);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "HGET %s a", k->deliveries);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
}

/* The events of a task that is not fast when it starts: task-received and
 * task-started; a redelivery's fetch recorded task-received already (with
 * its delivery number), so it gets task-started alone. */
static void test_started_events(void **state)
{
    (void)state;
    worker_queue q;
    queue_for(&q, "ev");
    worker_item it;
    memset(&it, 0, sizeof it);
    snprintf(it.id, sizeof it.id, "first");
    snprintf(it.task, sizeof it.task, "sleep");
    TQ_ASSERT_INT(worker_queue_started(conn, &q, 1764096000000, &it), 0);
    freeReplyObject(tq_test_redis_cmd(&srv, "HSET %s again 1", q.qk[0].deliveries));
    snprintf(it.id, sizeof it.id, "again");
    TQ_ASSERT_INT(worker_queue_started(conn, &q, 1764096000001, &it), 0);
    redisReply *r = tq_test_redis_cmd(&srv, "XRANGE %s - +", q.qk[0].events);
    assert_non_null(r);
    TQ_ASSERT_INT(r->elements, 3);
    const char *want[][2] = {
        {"task-received", "first"}, {"task-started", "first"}, {"task-started", "again"}};
    for (size_t i = 0; i < 3; i++) {
        const redisReply *f = r->element[i]->element[1];
        TQ_ASSERT_STR(f->element[1]->str, want[i][0]);
        TQ_ASSERT_STR(f->element[5]->str, want[i][1]);
    }
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_windows),
        cmocka_unit_test(test_retry_due_at_chosen_instants),
        cmocka_unit_test_setup(test_reaper_at_chosen_instants, setup),
        cmocka_unit_test_setup(test_started_events, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
