/* Tests of the beat (beat/beat.c and the modules it puts together) against
 * a real redis-server, pass by pass: beat_step() is given "now", so each
 * test says at which wall-clock instants the passes run, and looks at what
 * reached Redis: the messages in the queues (ids "<schedule>@<ms>"),
 * P:schedule-state and the lease.
 *
 * Covered: each tick of an interval and a cron schedule published once,
 * however many passes run at the same instant; the sleep a pass asks for;
 * the catch-up rule after a jump (a failover's gap: every tick; a longer
 * one: "latest", "none", "all" up to --catchup-max, for intervals and
 * cron); a schedule added or removed while running; a second beat that
 * stands by while the first holds the lease, then takes over without a
 * duplicate; a leader that lost its lease without noticing publishes
 * nothing; delayed messages promoted at "now".
 *
 * The monotonic time given to beat_step() is the real one plus a skew
 * that a test advances when it wants the beat's timers (lease renewal,
 * change checks, promotion) to be due without waiting for them. */
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "beat/beat.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/msg.h"

#define T0 1764096000000LL /* 2025-11-25T18:40:00Z: on a whole minute */
#define SEC 1000LL
#define MIN 60000LL

static tq_test_redis srv;
static int64_t mono_skew;

static int group_setup(void **state)
{
    (void)state;
    return tq_test_redis_group_start(&srv, NULL, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    return tq_test_redis_group_stop(&srv, NULL);
}

/* Each test starts with an empty server without cached scripts. */
static int setup(void **state)
{
    (void)state;
    mono_skew = 0;
    return tq_test_redis_flush(&srv);
}

/* ---- helpers --------------------------------------------------------------- */

/* A new beat with instance id and the options that follow (NULL-ended),
 * on the default prefix "tickq". */
static beat *make_beat(const char *id, ...)
{
    const char *argv[32] = {"test_beat", "--redis-url", srv.url, "--beat-id", id};
    int argc = 5;
    va_list ap;
    va_start(ap, id);
    for (const char *a; argc < 31 && (a = va_arg(ap, const char *));)
        argv[argc++] = a;
    va_end(ap);
    tq_config cfg;
    char err[512] = "";
    TQ_ASSERT_RC_ERR(tq_config_parse(&cfg, TQ_PROG_BEAT, argc, (char *const *)argv, NULL,
                                     err, sizeof err),
                     0, err);
    beat *b = beat_new(&cfg, err, sizeof err);
    if (!b)
        fail_msg("beat_new: \"%s\"", err);
    return b;
}

/* Runs a command for its effect (hiredis formatting: each %s is one
 * argument), failing the test on an error reply. */
__attribute__((format(printf, 1, 2))) static void cmd(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    redisContext *c = redisConnect("127.0.0.1", srv.port);
    assert_non_null(c);
    TQ_ASSERT_INT(c->err, 0);
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap); /* for the failure message */
    va_end(ap);
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", buf, r->str);
    freeReplyObject(r);
    redisFree(c);
}

/* Adds or replaces the definition of schedule name in P:schedules. */
static void put_schedule(const char *name, const char *json)
{
    redisReply *r = tq_test_redis_cmd(&srv, "HSET tickq:{@}:schedules %s %s", name, json);
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}

static int64_t mono(void)
{
    return tq_clock_mono_ms() + mono_skew;
}

/* Runs n passes of b at wall time now_ms. Returns the last one's sleep. */
static int64_t pass(beat *b, int64_t now_ms, int n)
{
    int64_t sleep_ms = -1;
    for (int i = 0; i < n; i++) {
        sleep_ms = beat_step(b, now_ms, mono());
        TQ_ASSERT_RANGE(sleep_ms, 0, BEAT_SLEEP_MAX_MS);
    }
    return sleep_ms;
}

/* A string in one of eight static buffers, in turn: a test compares two at
 * once, and a failure prints both. A string kept longer is copied. */
static char *buffer(void)
{
    static char bufs[8][8192];
    static int turn;
    turn = (turn + 1) % 8;
    bufs[turn][0] = '\0';
    return bufs[turn];
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ticks of the messages of schedule name in queue (default:
 * "default"), from their ids, sorted, separated by spaces: "" for none.
 * Each message's id must be "<schedule>@<scheduled_at in ms>". */
static const char *published_on(const char *queue, const char *name)
{
    char *out = buffer(), prefix[128];
    char *ticks[512];
    size_t n = 0;
    snprintf(prefix, sizeof prefix, "%s@", name);
    redisReply *r = tq_test_redis_cmd(&srv, "LRANGE tickq:{%s}:queue 0 -1", queue);
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements && n < 512; i++) {
        tq_msg m;
        char err[256] = "";
        TQ_ASSERT_RC_ERR(
            tq_msg_decode(&m, r->element[i]->str, r->element[i]->len, err, sizeof err), 0,
            err);
        if (strcmp(m.schedule, name) == 0) {
            char at[32];
            TQ_ASSERT_INT(strncmp(m.id, prefix, strlen(prefix)), 0);
            snprintf(at, sizeof at, "%lld", (long long)(m.scheduled_at * 1000.0 + 0.5));
            TQ_ASSERT_STR(m.id + strlen(prefix), at);
            ticks[n++] = strdup(at);
        }
        tq_msg_deinit(&m);
    }
    freeReplyObject(r);
    qsort(ticks, n, sizeof *ticks, str_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, 8192 - len, "%s%s", i ? " " : "", ticks[i]);
        free(ticks[i]);
    }
    return out;
}

static const char *published(const char *name)
{
    return published_on("default", name);
}

/* "from from+step ... to" (ticks, as published() gives them); "" when
 * from > to. */
static const char *ticks(int64_t from, int64_t to, int64_t step)
{
    char *out = buffer();
    for (int64_t t = from; t <= to; t += step) {
        size_t len = strlen(out);
        snprintf(out + len, 8192 - len, "%s%lld", t == from ? "" : " ", (long long)t);
    }
    return out;
}

/* Two lists of ticks joined. */
static const char *both(const char *a, const char *b)
{
    char *out = buffer();
    size_t la = strlen(a), lb = strlen(b), n = la;
    assert_true(la + lb + 2 <= 8192);
    memcpy(out, a, la);
    if (la && lb)
        out[n++] = ' ';
    memcpy(out + n, b, lb);
    out[n + lb] = '\0';
    return out;
}

static long long llen(const char *queue)
{
    redisReply *r = tq_test_redis_cmd(&srv, "LLEN tickq:{%s}:queue", queue);
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* The value of key (a string) or of its field (a hash), "" when none. */
static const char *get(const char *key, const char *field)
{
    char *out = buffer();
    redisReply *r = field ? tq_test_redis_cmd(&srv, "HGET %s %s", key, field)
                          : tq_test_redis_cmd(&srv, "GET %s", key);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_STRING)
        snprintf(out, 8192, "%s", r->str);
    freeReplyObject(r);
    return out;
}

static const char *state_of(const char *name)
{
    return get("tickq:{@}:schedule-state", name);
}

static const char *ms(int64_t t)
{
    char *out = buffer();
    snprintf(out, 8192, "%lld", (long long)t);
    return out;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_each_tick_once(void **state)
{
    (void)state;
    put_schedule("every", "{\"name\":\"every\",\"task\":\"noop\",\"every\":1}");
    put_schedule("minutely",
                 "{\"name\":\"minutely\",\"task\":\"noop\",\"cron\":\"* * * * *\"}");
    beat *a = make_beat("a", NULL);

    /* The first passes take the lease, load the schedules and read the
     * state; a schedule never published starts with its tick at now. Any
     * number of passes at one instant publish that instant's ticks once. */
    pass(a, T0, 3);
    assert_true(beat_is_leader(a));
    TQ_ASSERT_STR(get("tickq:{@}:leader", NULL), "a");
    TQ_ASSERT_STR(published("every"), ms(T0));
    TQ_ASSERT_STR(published("minutely"), ms(T0));
    TQ_ASSERT_INT(llen("default"), 2);
    TQ_ASSERT_STR(state_of("every"), ms(T0));
    TQ_ASSERT_STR(state_of("minutely"), ms(T0));

    /* Between ticks nothing is due; the pass sleeps until the next one. */
    pass(a, T0 + 500, 2);
    TQ_ASSERT_INT(llen("default"), 2);
    TQ_ASSERT_RANGE(pass(a, T0 + SEC - 1, 1), 0, 1);

    for (int64_t t = T0 + SEC; t <= T0 + 5 * SEC; t += SEC)
        pass(a, t, 2);
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + 5 * SEC, SEC));
    TQ_ASSERT_STR(published("minutely"), ms(T0));
    TQ_ASSERT_STR(state_of("every"), ms(T0 + 5 * SEC));

    /* Late by less than a tick: the tick that was due, and no other. */
    pass(a, T0 + 6 * SEC + 300, 2);
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + 6 * SEC, SEC));

    /* The message: what the schedule says, scheduled at the tick, enqueued
     * at the pass's "now". */
    redisReply *r = tq_test_redis_cmd(&srv, "LINDEX tickq:{default}:queue 0");
    assert_non_null(r);
    TQ_ASSERT_INT(r->type, REDIS_REPLY_STRING);
    tq_msg m;
    char err[256] = "";
    TQ_ASSERT_RC_ERR(tq_msg_decode(&m, r->str, r->len, err, sizeof err), 0, err);
    freeReplyObject(r);
    TQ_ASSERT_STR(m.id, "every@1764096006000");
    TQ_ASSERT_STR(m.task, "noop");
    TQ_ASSERT_STR(m.queue, "default");
    TQ_ASSERT_STR(m.schedule, "every");
    TQ_ASSERT_DOUBLE(m.scheduled_at, (double)(T0 + 6 * SEC) / 1000.0, 1e-6);
    TQ_ASSERT_DOUBLE(m.enqueued_at, (double)(T0 + 6 * SEC + 300) / 1000.0, 1e-6);
    tq_msg_deinit(&m);

    /* The cron schedule's next minute, with the interval's ticks. */
    for (int64_t t = T0 + 7 * SEC; t <= T0 + MIN + SEC; t += SEC)
        pass(a, t, 1);
    TQ_ASSERT_STR(published("minutely"), ticks(T0, T0 + MIN, MIN));
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + MIN + SEC, SEC));
    TQ_ASSERT_INT(llen("default"), 62 + 2);
    beat_free(a);
}

static void test_catch_up(void **state)
{
    (void)state;
    put_schedule("latest", "{\"name\":\"latest\",\"task\":\"noop\",\"every\":1}");
    put_schedule(
        "none", "{\"name\":\"none\",\"task\":\"noop\",\"every\":1,\"catchup\":\"none\"}");
    put_schedule("all",
                 "{\"name\":\"all\",\"task\":\"noop\",\"every\":1,\"catchup\":\"all\"}");
    put_schedule("cron-latest",
                 "{\"name\":\"cron-latest\",\"task\":\"noop\",\"cron\":\"* * * * *\"}");
    put_schedule("cron-all", "{\"name\":\"cron-all\",\"task\":\"noop\","
                             "\"cron\":\"* * * * *\",\"catchup\":\"all\"}");
    /* A lease of 5 s: a tick up to 6 s late is a failover's gap. */
    beat *a = make_beat("a", "--lease", "5", "--catchup-max", "5", NULL);
    pass(a, T0, 2);
    TQ_ASSERT_STR(published("latest"), ms(T0));
    TQ_ASSERT_STR(published("none"), ms(T0));
    TQ_ASSERT_STR(published("all"), ms(T0));

    /* 3 s without a pass (a failover's gap): every tick of it, whatever
     * the policy. */
    pass(a, T0 + 3 * SEC, 2);
    char gap[128];
    snprintf(gap, sizeof gap, "%s", ticks(T0, T0 + 3 * SEC, SEC));
    TQ_ASSERT_STR(published("latest"), gap);
    TQ_ASSERT_STR(published("none"), gap);
    TQ_ASSERT_STR(published("all"), gap);

    /* 27 s without a pass: no beat ran. "latest": the most recent tick
     * only; "none": nothing until the next tick; "all": the 5 most recent
     * (--catchup-max). */
    pass(a, T0 + 30 * SEC, 2);
    TQ_ASSERT_STR(published("latest"), both(gap, ms(T0 + 30 * SEC)));
    TQ_ASSERT_STR(published("none"), gap);
    TQ_ASSERT_STR(state_of("none"), ms(T0 + 3 * SEC));
    TQ_ASSERT_STR(published("all"), both(gap, ticks(T0 + 26 * SEC, T0 + 30 * SEC, SEC)));

    /* Then each goes on, tick by tick. */
    pass(a, T0 + 31 * SEC, 2);
    TQ_ASSERT_STR(published("latest"),
                  both(gap, ticks(T0 + 30 * SEC, T0 + 31 * SEC, SEC)));
    TQ_ASSERT_STR(published("none"), both(gap, ms(T0 + 31 * SEC)));
    TQ_ASSERT_STR(published("all"), both(gap, ticks(T0 + 26 * SEC, T0 + 31 * SEC, SEC)));

    /* Cron, 4 minutes missed: "latest" the last minute only; "all" each
     * of the 5 (within --catchup-max). */
    TQ_ASSERT_STR(published("cron-latest"), ms(T0));
    pass(a, T0 + 5 * MIN, 2);
    TQ_ASSERT_STR(published("cron-latest"), both(ms(T0), ms(T0 + 5 * MIN)));
    TQ_ASSERT_STR(published("cron-all"), ticks(T0, T0 + 5 * MIN, MIN));
    /* And 20 missed minutes with "all": the 5 most recent. */
    pass(a, T0 + 25 * MIN, 2);
    TQ_ASSERT_STR(published("cron-all"), both(ticks(T0, T0 + 5 * MIN, MIN),
                                              ticks(T0 + 21 * MIN, T0 + 25 * MIN, MIN)));
    TQ_ASSERT_STR(published("cron-latest"),
                  both(both(ms(T0), ms(T0 + 5 * MIN)), ms(T0 + 25 * MIN)));
    TQ_ASSERT_STR(state_of("cron-all"), ms(T0 + 25 * MIN));
    beat_free(a);
}

static void test_added_and_removed_while_running(void **state)
{
    (void)state;
    put_schedule("every", "{\"name\":\"every\",\"task\":\"noop\",\"every\":1}");
    beat *a = make_beat("a", NULL);
    pass(a, T0, 2);
    TQ_ASSERT_STR(published("every"), ms(T0));

    /* Added at T0 + 1.2 s: its first tick is the next one, not one from
     * before it appeared. The change is seen at the next check. */
    put_schedule("fast", "{\"name\":\"fast\",\"task\":\"noop\",\"every\":0.5,"
                         "\"queue\":\"fastq\"}");
    mono_skew += 300;
    pass(a, T0 + 1200, 2);
    TQ_ASSERT_STR(published_on("fastq", "fast"), "");
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + SEC, SEC));
    pass(a, T0 + 1500, 1);
    pass(a, T0 + 2 * SEC, 1);
    TQ_ASSERT_STR(published_on("fastq", "fast"), ticks(T0 + 1500, T0 + 2 * SEC, 500));
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + 2 * SEC, SEC));

    /* Changed to every 2 s: the new grid from the change on, after the
     * last tick published. */
    put_schedule("every", "{\"name\":\"every\",\"task\":\"noop\",\"every\":2}");
    mono_skew += 300;
    pass(a, T0 + 2500, 2);
    pass(a, T0 + 3 * SEC, 1);
    pass(a, T0 + 4 * SEC, 1);
    TQ_ASSERT_STR(published("every"),
                  both(ticks(T0, T0 + 2 * SEC, SEC), ms(T0 + 4 * SEC)));

    /* Removed: no more ticks. */
    cmd("HDEL tickq:{@}:schedules fast");
    mono_skew += 300;
    pass(a, T0 + 4200, 2);
    pass(a, T0 + 5 * SEC, 1);
    pass(a, T0 + 6 * SEC, 1);
    TQ_ASSERT_STR(published_on("fastq", "fast"), ticks(T0 + 1500, T0 + 4 * SEC, 500));
    TQ_ASSERT_STR(published("every"), both(ticks(T0, T0 + 2 * SEC, SEC),
                                           ticks(T0 + 4 * SEC, T0 + 6 * SEC, 2 * SEC)));
    beat_free(a);
}

static void test_second_beat_stands_by(void **state)
{
    (void)state;
    put_schedule("every", "{\"name\":\"every\",\"task\":\"noop\",\"every\":1}");
    beat *a = make_beat("a", NULL), *b = make_beat("b", NULL);
    pass(a, T0, 2);
    assert_true(beat_is_leader(a));

    /* b stands by: whatever its passes, a's ticks are not published twice
     * and b publishes none of its own. */
    pass(b, T0, 3);
    pass(b, T0 + SEC, 3);
    assert_false(beat_is_leader(b));
    TQ_ASSERT_STR(published("every"), ms(T0));
    TQ_ASSERT_STR(get("tickq:{@}:leader", NULL), "a");

    pass(a, T0 + SEC, 2);
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + SEC, SEC));
    /* b asks for the lease again (its renewal is due): still a's. */
    mono_skew += 2 * SEC;
    pass(b, T0 + 2 * SEC, 2);
    assert_false(beat_is_leader(b));
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + SEC, SEC));

    /* a stops cleanly and releases the lease: b takes over at its next
     * renewal and goes on from P:schedule-state, without a duplicate. */
    TQ_ASSERT_INT(beat_resign(a), 1);
    assert_false(beat_is_leader(a));
    TQ_ASSERT_STR(get("tickq:{@}:leader", NULL), "");
    mono_skew += 2 * SEC;
    pass(b, T0 + 2 * SEC, 2);
    assert_true(beat_is_leader(b));
    TQ_ASSERT_STR(get("tickq:{@}:leader", NULL), "b");
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + 2 * SEC, SEC));

    /* a, back, is the standby now. */
    mono_skew += 2 * SEC;
    pass(a, T0 + 3 * SEC, 2);
    assert_false(beat_is_leader(a));
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + 2 * SEC, SEC));
    pass(b, T0 + 3 * SEC, 1);
    TQ_ASSERT_STR(published("every"), ticks(T0, T0 + 3 * SEC, SEC));
    TQ_ASSERT_INT(llen("default"), 4);
    beat_free(a);
    beat_free(b);
}

static void test_lost_lease_publishes_nothing(void **state)
{
    (void)state;
    put_schedule("every", "{\"name\":\"every\",\"task\":\"noop\",\"every\":1}");
    beat *a = make_beat("a", NULL);
    pass(a, T0, 2);
    assert_true(beat_is_leader(a));

    /* a pauses; its lease runs out and another beat takes it. a still
     * believes it leads: its publish script finds another owner. */
    cmd("SET tickq:{@}:leader other PX 60000");
    pass(a, T0 + SEC, 1);
    assert_false(beat_is_leader(a));
    pass(a, T0 + 2 * SEC, 2);
    TQ_ASSERT_STR(published("every"), ms(T0));
    TQ_ASSERT_STR(state_of("every"), ms(T0));
    TQ_ASSERT_STR(get("tickq:{@}:leader", NULL), "other");
    beat_free(a);
}

static void test_delayed_promoted_at_now(void **state)
{
    (void)state;
    beat *a = make_beat("a", NULL);
    /* The leader promotes every queue in use (P:{@}:queues). */
    cmd("SADD tickq:{@}:queues %s", "dq");
    cmd("ZADD tickq:{dq}:delayed %lld %s", (long long)(T0 + 5 * SEC),
        "{\"v\":1,\"id\":\"d1\",\"task\":\"noop\",\"queue\":\"dq\"}");
    pass(a, T0, 2);
    assert_true(beat_is_leader(a));
    TQ_ASSERT_INT(llen("dq"), 0);
    mono_skew += 200; /* promotion is due again */
    pass(a, T0 + 5 * SEC - 1, 1);
    TQ_ASSERT_INT(llen("dq"), 0);
    mono_skew += 200;
    pass(a, T0 + 5 * SEC, 1);
    TQ_ASSERT_INT(llen("dq"), 1);
    beat_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_each_tick_once, setup),
        cmocka_unit_test_setup(test_catch_up, setup),
        cmocka_unit_test_setup(test_added_and_removed_while_running, setup),
        cmocka_unit_test_setup(test_second_beat_stands_by, setup),
        cmocka_unit_test_setup(test_lost_lease_publishes_nothing, setup),
        cmocka_unit_test_setup(test_delayed_promoted_at_now, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
