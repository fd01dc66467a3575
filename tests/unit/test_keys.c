/* Tests of common/keys: every family's name and scope as docs/PROTOCOL.md
 * lists them, the "P:{<queue>}:<family>[:<arg>]" and "P:{@}:..." shapes,
 * the hash tag (every key of a queue in the queue's slot, the global keys
 * in one slot of their own), stems, and buffers that are too small. */
#include "tests/support/check.h"

#include <stdio.h>

#include "common/keys.h"
#include "common/slot.h"

#define Q 1
#define G 2

/* The key table of docs/PROTOCOL.md. */
static const struct {
    tq_key k;
    const char *family;
    int scope;
} families[] = {
    {TQ_KEY_QUEUE, "queue", Q},         {TQ_KEY_PROCESSING, "processing", Q},
    {TQ_KEY_CONSUMERS, "consumers", Q}, {TQ_KEY_LOCK, "lock", Q},
    {TQ_KEY_RESULT, "result", Q},       {TQ_KEY_DELAYED, "delayed", Q},
    {TQ_KEY_DEAD, "dead", Q},           {TQ_KEY_HISTORY, "history", Q},
    {TQ_KEY_STATS, "stats", Q},         {TQ_KEY_DELIVERIES, "deliveries", Q},
    {TQ_KEY_PAUSED, "paused", Q},       {TQ_KEY_COUNTER, "counter", Q},
    {TQ_KEY_TASKS, "tasks", Q},         {TQ_KEY_MINUTE, "minute", Q},
    {TQ_KEY_METRICS, "metrics", Q},     {TQ_KEY_PUBLISHED, "published", Q},
    {TQ_KEY_EVENTS, "events", Q | G},   {TQ_KEY_QUEUES, "queues", G},
    {TQ_KEY_WORKERS, "workers", G},     {TQ_KEY_WORKER, "worker", G},
    {TQ_KEY_SCHEDULES, "schedules", G}, {TQ_KEY_SCHEDULE_STATE, "schedule-state", G},
    {TQ_KEY_BEAT_LEADER, "leader", G},  {TQ_KEY_REAPER, "reaper", G},
    {TQ_KEY_AUDIT, "audit", G},
};
#define NFAMILIES (sizeof families / sizeof families[0])

static void test_every_family_is_listed(void **state)
{
    (void)state;
    TQ_ASSERT_INT(NFAMILIES, TQ_KEY_COUNT_);
    for (size_t i = 0; i < NFAMILIES; i++) {
        TQ_ASSERT_STR(tq_keys_family(families[i].k), families[i].family);
        TQ_ASSERT_INT(tq_keys_scope(families[i].k), families[i].scope);
        for (size_t j = 0; j < i; j++)
            if (families[i].k == families[j].k ||
                strcmp(families[i].family, families[j].family) == 0)
                fail_msg("families %zu and %zu are the same", i, j);
    }
    TQ_ASSERT_STR(tq_keys_family(TQ_KEY_COUNT_), "?");
    TQ_ASSERT_STR(tq_keys_family((tq_key)-1), "?");
    TQ_ASSERT_INT(tq_keys_scope((tq_key)1000), 0);
}

/* Each family in each scope it takes, with and without an argument; the
 * other scope is refused. */
static void test_fmt_every_family(void **state)
{
    (void)state;
    char buf[TQ_KEYS_MAX], want[TQ_KEYS_MAX];
    for (size_t i = 0; i < NFAMILIES; i++) {
        for (int scope = Q; scope <= G; scope++) {
            const char *queue = scope == Q ? "default" : NULL;
            const char *tag = scope == Q ? "default" : "@";
            if (!(families[i].scope & scope)) {
                memset(buf, 'x', sizeof buf);
                TQ_ASSERT_RC(
                    tq_keys_fmt("tickq", families[i].k, queue, NULL, buf, sizeof buf),
                    TQ_EINVAL);
                TQ_ASSERT_STR(buf, "");
                TQ_ASSERT_RC(tq_keys_stem("tickq", families[i].k, queue, buf, sizeof buf),
                             TQ_EINVAL);
                continue;
            }
            snprintf(want, sizeof want, "tickq:{%s}:%s:timer@1764096000000", tag,
                     families[i].family);
            int n = tq_keys_fmt("tickq", families[i].k, queue, "timer@1764096000000", buf,
                                sizeof buf);
            TQ_ASSERT_STR(buf, want);
            TQ_ASSERT_INT(n, strlen(want));
            snprintf(want, sizeof want, "tickq:{%s}:%s", tag, families[i].family);
            TQ_ASSERT_INT(
                tq_keys_fmt("tickq", families[i].k, queue, NULL, buf, sizeof buf),
                strlen(want));
            TQ_ASSERT_STR(buf, want);
            tq_keys_fmt("tickq", families[i].k, queue, "", buf,
                        sizeof buf); /* "": none */
            TQ_ASSERT_STR(buf, want);
        }
    }
    /* An empty queue name is no queue. */
    TQ_ASSERT_RC(tq_keys_fmt("tickq", TQ_KEY_QUEUE, "", NULL, buf, sizeof buf),
                 TQ_EINVAL);
}

static void test_protocol_examples(void **state)
{
    (void)state;
    char buf[TQ_KEYS_MAX];
    tq_keys_fmt("P", TQ_KEY_QUEUE, "default", NULL, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:{default}:queue");
    tq_keys_fmt("P", TQ_KEY_PROCESSING, "a", "host-1-abcd", buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:{a}:processing:host-1-abcd");
    tq_keys_fmt("P", TQ_KEY_RESULT, "default", "timer@1764096000000", buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:{default}:result:timer@1764096000000");
    tq_keys_fmt("P", TQ_KEY_COUNTER, "default", "timer", buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:{default}:counter:timer");
    tq_keys_fmt("P", TQ_KEY_WORKERS, NULL, NULL, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:{@}:workers");
    tq_keys_fmt("P", TQ_KEY_BEAT_LEADER, NULL, NULL, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:{@}:leader");
    tq_keys_fmt("my.app:v2", TQ_KEY_LOCK, "q.1:x", "a:b", buf, sizeof buf);
    TQ_ASSERT_STR(buf, "my.app:v2:{q.1:x}:lock:a:b");
}

/* What makes Redis Cluster work: every key of a queue is in the queue's
 * slot, whatever the prefix, family or argument; the global keys share
 * one slot; and a task id with braces cannot move its key elsewhere (only
 * the first {...} counts). */
static void test_slots(void **state)
{
    (void)state;
    static const char *const queues[] = {"default", "a", "b", "c", "x:y", "Q-9.z_"};
    static const char *const args[] = {"w1", "timer@1", "{evil}", "}{", "{}"};
    char buf[TQ_KEYS_MAX];
    int global = tq_slot("@", 1);
    for (size_t i = 0; i < NFAMILIES; i++) {
        for (size_t q = 0; q < sizeof queues / sizeof *queues; q++) {
            if (!(families[i].scope & Q))
                continue;
            int want = tq_slot(queues[q], strlen(queues[q]));
            for (size_t a = 0; a < sizeof args / sizeof *args; a++) {
                /* (A prefix has no braces: the configuration refuses one.) */
                int n = tq_keys_fmt("tickq", families[i].k, queues[q], args[a], buf,
                                    sizeof buf);
                if (tq_slot(buf, (size_t)n) != want)
                    fail_msg("%s is not in the slot of queue %s", buf, queues[q]);
            }
        }
        if (families[i].scope & G) {
            int n = tq_keys_fmt("tickq", families[i].k, NULL, "{evil}", buf, sizeof buf);
            if (tq_slot(buf, (size_t)n) != global)
                fail_msg("%s is not in the global slot", buf);
        }
    }
}

static void test_stems(void **state)
{
    (void)state;
    char stem[TQ_KEYS_MAX], key[TQ_KEYS_MAX], joined[2 * TQ_KEYS_MAX];
    for (size_t i = 0; i < NFAMILIES; i++) {
        const char *queue = families[i].scope & Q ? "b" : NULL;
        int n = tq_keys_stem("tickq", families[i].k, queue, stem, sizeof stem);
        TQ_ASSERT_INT(n, strlen(stem));
        if (n < 1 || stem[n - 1] != ':')
            fail_msg("stem \"%s\" does not end with ':'", stem);
        /* stem + arg is the key, as a Lua function builds it. */
        tq_keys_fmt("tickq", families[i].k, queue, "id-1", key, sizeof key);
        snprintf(joined, sizeof joined, "%sid-1", stem);
        TQ_ASSERT_STR(joined, key);
    }
    tq_keys_stem("t", TQ_KEY_RESULT, "default", stem, sizeof stem);
    TQ_ASSERT_STR(stem, "t:{default}:result:");
}

static void test_longest_key_fits(void **state)
{
    (void)state;
    /* A 64-byte prefix, a 64-byte queue, the longest family, a 256-byte id. */
    char prefix[65], queue[65], id[257], buf[TQ_KEYS_MAX];
    memset(prefix, 'p', 64);
    prefix[64] = '\0';
    memset(queue, 'q', 64);
    queue[64] = '\0';
    memset(id, 'i', 256);
    id[256] = '\0';
    for (size_t i = 0; i < NFAMILIES; i++) {
        const char *q = families[i].scope & Q ? queue : NULL;
        size_t tag = q ? 64 : 1;
        int n = tq_keys_fmt(prefix, families[i].k, q, id, buf, sizeof buf);
        TQ_ASSERT_INT(n, 64 + 1 + tag + 2 + 1 + strlen(families[i].family) + 1 + 256);
        TQ_ASSERT_RANGE(n + 1, 0, TQ_KEYS_MAX);
    }
}

static void test_too_small(void **state)
{
    (void)state;
    char buf[32];
    /* "tickq:{abc}:queue" is 17 bytes: 18 with the NUL fits, 17 does not. */
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_INT(tq_keys_fmt("tickq", TQ_KEY_QUEUE, "abc", NULL, buf, 18), 17);
    TQ_ASSERT_STR(buf, "tickq:{abc}:queue");
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_RC(tq_keys_fmt("tickq", TQ_KEY_QUEUE, "abc", NULL, buf, 17), TQ_ETOOBIG);
    TQ_ASSERT_STR(buf, "");
    /* A zero-length buffer is not written at all. */
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_RC(tq_keys_fmt("tickq", TQ_KEY_WORKERS, NULL, NULL, buf, 0), TQ_ETOOBIG);
    TQ_ASSERT_INT(buf[0], 'x');

    /* An id longer than TQ_KEYS_MAX cannot fit whatever the prefix. */
    char id[TQ_KEYS_MAX + 8], big[TQ_KEYS_MAX];
    memset(id, 'i', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    memset(big, 'x', sizeof big);
    TQ_ASSERT_RC(tq_keys_fmt("p", TQ_KEY_LOCK, "q", id, big, sizeof big), TQ_ETOOBIG);
    TQ_ASSERT_STR(big, "");

    /* Stems too. */
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_INT(tq_keys_stem("tickq", TQ_KEY_LOCK, "q", buf, 16), 15);
    TQ_ASSERT_STR(buf, "tickq:{q}:lock:");
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_RC(tq_keys_stem("tickq", TQ_KEY_LOCK, "q", buf, 15), TQ_ETOOBIG);
    TQ_ASSERT_STR(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_family_is_listed),
        cmocka_unit_test(test_fmt_every_family),
        cmocka_unit_test(test_protocol_examples),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_stems),
        cmocka_unit_test(test_longest_key_fits),
        cmocka_unit_test(test_too_small),
    };
    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
