/* Tests of common/keys: every family's name as DESIGN.md lists it, the
 * "<prefix>:<family>[:<arg>]" shape, stems, and buffers that are too small. */
#include "tests/support/check.h"

#include <stdio.h>

#include "common/keys.h"

/* The key table of DESIGN.md (plus the families keys.h adds). */
static const struct {
    tq_key k;
    const char *family;
    int has_arg;
} families[] = {
    {TQ_KEY_QUEUE, "queue", 1},
    {TQ_KEY_PROCESSING, "processing", 1},
    {TQ_KEY_WORKERS, "workers", 0},
    {TQ_KEY_WORKER, "worker", 1},
    {TQ_KEY_LOCK, "lock", 1},
    {TQ_KEY_RESULT, "result", 1},
    {TQ_KEY_DELAYED, "delayed", 0},
    {TQ_KEY_DEAD, "dead", 0},
    {TQ_KEY_SCHEDULES, "schedules", 0},
    {TQ_KEY_SCHEDULE_STATE, "schedule-state", 0},
    {TQ_KEY_BEAT_LEADER, "beat:leader", 0},
    {TQ_KEY_EVENTS, "events", 0},
    {TQ_KEY_HISTORY, "history", 1},
    {TQ_KEY_STATS, "stats", 0},
    {TQ_KEY_REAPER, "reaper", 0},
    {TQ_KEY_DELIVERIES, "deliveries", 0},
    {TQ_KEY_PAUSED, "paused", 0},
    {TQ_KEY_COUNTER, "counter", 1},
    {TQ_KEY_TASKS, "tasks", 0},
    {TQ_KEY_MINUTE, "minute", 1},
    {TQ_KEY_METRICS, "metrics", 0},
    {TQ_KEY_AUDIT, "audit", 0},
};
#define NFAMILIES (sizeof families / sizeof families[0])

static void test_every_family_is_listed(void **state)
{
    (void)state;
    TQ_ASSERT_INT(NFAMILIES, TQ_KEY_COUNT_);
    for (size_t i = 0; i < NFAMILIES; i++)
        for (size_t j = 0; j < i; j++)
            if (families[i].k == families[j].k ||
                strcmp(families[i].family, families[j].family) == 0)
                fail_msg("families %zu and %zu are the same", i, j);
}

static void test_family_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < NFAMILIES; i++)
        TQ_ASSERT_STR(tq_keys_family(families[i].k), families[i].family);
    TQ_ASSERT_STR(tq_keys_family(TQ_KEY_COUNT_), "?");
    TQ_ASSERT_STR(tq_keys_family((tq_key)-1), "?");
    TQ_ASSERT_STR(tq_keys_family((tq_key)1000), "?");
}

static void test_fmt_every_family(void **state)
{
    (void)state;
    char buf[TQ_KEYS_MAX], want[TQ_KEYS_MAX];
    for (size_t i = 0; i < NFAMILIES; i++) {
        if (families[i].has_arg) {
            snprintf(want, sizeof want, "tickq:%s:timer@1764096000000",
                     families[i].family);
            int n = tq_keys_fmt("tickq", families[i].k, "timer@1764096000000", buf,
                                sizeof buf);
            TQ_ASSERT_STR(buf, want);
            TQ_ASSERT_INT(n, strlen(want));
        }
        snprintf(want, sizeof want, "tickq:%s", families[i].family);
        int n = tq_keys_fmt("tickq", families[i].k, NULL, buf, sizeof buf);
        TQ_ASSERT_STR(buf, want);
        TQ_ASSERT_INT(n, strlen(want));
        /* "" is no argument, like NULL. */
        n = tq_keys_fmt("tickq", families[i].k, "", buf, sizeof buf);
        TQ_ASSERT_STR(buf, want);
        TQ_ASSERT_INT(n, strlen(want));
    }
}

static void test_design_examples(void **state)
{
    (void)state;
    char buf[TQ_KEYS_MAX];
    tq_keys_fmt("P", TQ_KEY_QUEUE, "default", buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:queue:default");
    tq_keys_fmt("P", TQ_KEY_PROCESSING, "host-1-abcd", buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:processing:host-1-abcd");
    tq_keys_fmt("P", TQ_KEY_WORKERS, NULL, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:workers");
    tq_keys_fmt("P", TQ_KEY_BEAT_LEADER, NULL, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:beat:leader");
    tq_keys_fmt("P", TQ_KEY_SCHEDULE_STATE, NULL, buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:schedule-state");
    tq_keys_fmt("P", TQ_KEY_HISTORY, "timer", buf, sizeof buf);
    TQ_ASSERT_STR(buf, "P:history:timer");
    tq_keys_fmt("my.app:v2", TQ_KEY_LOCK, "a:b", buf, sizeof buf);
    TQ_ASSERT_STR(buf, "my.app:v2:lock:a:b");
}

static void test_stems(void **state)
{
    (void)state;
    char stem[TQ_KEYS_MAX], key[TQ_KEYS_MAX], joined[2 * TQ_KEYS_MAX];
    for (size_t i = 0; i < NFAMILIES; i++) {
        int n = tq_keys_stem("tickq", families[i].k, stem, sizeof stem);
        TQ_ASSERT_INT(n, strlen(stem));
        if (n < 1 || stem[n - 1] != ':')
            fail_msg("stem \"%s\" does not end with ':'", stem);
        /* stem + arg is the key, as a Lua script would build it. */
        tq_keys_fmt("tickq", families[i].k, "id-1", key, sizeof key);
        snprintf(joined, sizeof joined, "%sid-1", stem);
        TQ_ASSERT_STR(joined, key);
    }
    tq_keys_stem("t", TQ_KEY_RESULT, stem, sizeof stem);
    TQ_ASSERT_STR(stem, "t:result:");
}

static void test_longest_key_fits(void **state)
{
    (void)state;
    /* A 64-byte prefix, the longest family, a 256-byte task id. */
    char prefix[65], id[257], buf[TQ_KEYS_MAX];
    memset(prefix, 'p', 64);
    prefix[64] = '\0';
    memset(id, 'i', 256);
    id[256] = '\0';
    size_t longest = 0;
    for (size_t i = 0; i < NFAMILIES; i++)
        if (strlen(families[i].family) > longest)
            longest = strlen(families[i].family);
    for (size_t i = 0; i < NFAMILIES; i++) {
        int n = tq_keys_fmt(prefix, families[i].k, id, buf, sizeof buf);
        TQ_ASSERT_INT(n, 64 + 1 + strlen(families[i].family) + 1 + 256);
    }
    TQ_ASSERT_RANGE(64 + 1 + longest + 1 + 256 + 1, 0, TQ_KEYS_MAX);
}

static void test_too_small(void **state)
{
    (void)state;
    char buf[32];
    /* "tickq:queue:abc" is 15 bytes: 16 with the NUL fits, 15 does not. */
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_INT(tq_keys_fmt("tickq", TQ_KEY_QUEUE, "abc", buf, 16), 15);
    TQ_ASSERT_STR(buf, "tickq:queue:abc");
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_RC(tq_keys_fmt("tickq", TQ_KEY_QUEUE, "abc", buf, 15), TQ_ETOOBIG);
    TQ_ASSERT_STR(buf, "");
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_RC(tq_keys_fmt("tickq", TQ_KEY_WORKERS, NULL, buf, 5), TQ_ETOOBIG);
    TQ_ASSERT_STR(buf, "");
    /* A zero-length buffer is not written at all. */
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_RC(tq_keys_fmt("tickq", TQ_KEY_WORKERS, NULL, buf, 0), TQ_ETOOBIG);
    TQ_ASSERT_INT(buf[0], 'x');

    /* An id longer than TQ_KEYS_MAX cannot fit whatever the prefix. */
    char prefix[65], id[TQ_KEYS_MAX + 8], big[TQ_KEYS_MAX];
    memset(prefix, 'p', 64);
    prefix[64] = '\0';
    memset(id, 'i', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    memset(big, 'x', sizeof big);
    TQ_ASSERT_RC(tq_keys_fmt(prefix, TQ_KEY_LOCK, id, big, sizeof big), TQ_ETOOBIG);
    TQ_ASSERT_STR(big, "");

    /* Stems too. */
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_INT(tq_keys_stem("tickq", TQ_KEY_LOCK, buf, 12), 11);
    TQ_ASSERT_STR(buf, "tickq:lock:");
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_RC(tq_keys_stem("tickq", TQ_KEY_LOCK, buf, 11), TQ_ETOOBIG);
    TQ_ASSERT_STR(buf, "");
    memset(buf, 'x', sizeof buf);
    TQ_ASSERT_RC(tq_keys_stem("tickq", TQ_KEY_LOCK, buf, 0), TQ_ETOOBIG);
    TQ_ASSERT_INT(buf[0], 'x');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_family_is_listed),
        cmocka_unit_test(test_family_names),
        cmocka_unit_test(test_fmt_every_family),
        cmocka_unit_test(test_design_examples),
        cmocka_unit_test(test_stems),
        cmocka_unit_test(test_longest_key_fits),
        cmocka_unit_test(test_too_small),
    };
    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
