/* Tests of common/clock: the monotonic clock never goes back, wall clocks
 * agree with each other and with time(), sleeps last about as long as asked,
 * survive signals, and end early (returning 1) when the stop flag is set.
 *
 * Time bounds are generous on the slow side (a loaded machine or a
 * sanitizer build oversleeps) and strict on the fast side (sleeping too
 * little is always a bug). */
#include "tests/support/check.h"

#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>

#include "common/clock.h"

#define SLACK_MS 400 /* how late a sleep may end on a busy machine */

static void test_mono_never_goes_back(void **state)
{
    (void)state;
    int64_t prev = tq_clock_mono_ms();
    int64_t start = prev;
    for (int i = 0; i < 200000; i++) {
        int64_t now = tq_clock_mono_ms();
        if (now < prev)
            fail_msg("monotonic clock went back from %lld to %lld", (long long)prev,
                     (long long)now);
        prev = now;
    }
    TQ_ASSERT_RANGE(prev - start, 0, 10000);
    assert_true(start > 0);
}

static void test_wall_clocks_agree(void **state)
{
    (void)state;
    int64_t ms = tq_clock_wall_ms();
    int64_t us = tq_clock_wall_us();
    time_t t = time(NULL);
    TQ_ASSERT_RANGE(us / 1000 - ms, 0, 50);
    TQ_ASSERT_RANGE(ms / 1000 - (int64_t)t, -2, 2);
    assert_true(ms > 1700000000000LL); /* after November 2023 */
}

static void test_sleep_ms_duration(void **state)
{
    (void)state;
    int64_t t0 = tq_clock_mono_ms();
    TQ_ASSERT_INT(tq_clock_sleep_ms(250, NULL), 0);
    int64_t took = tq_clock_mono_ms() - t0;
    TQ_ASSERT_RANGE(took, 250, 250 + SLACK_MS);

    volatile sig_atomic_t stop = 0;
    t0 = tq_clock_mono_ms();
    TQ_ASSERT_INT(tq_clock_sleep_ms(120, &stop), 0);
    took = tq_clock_mono_ms() - t0;
    TQ_ASSERT_RANGE(took, 120, 120 + SLACK_MS);

    /* Short ones too (under one 100 ms step). */
    t0 = tq_clock_mono_ms();
    TQ_ASSERT_INT(tq_clock_sleep_ms(15, &stop), 0);
    took = tq_clock_mono_ms() - t0;
    TQ_ASSERT_RANGE(took, 15, 15 + SLACK_MS);
}

static void test_sleep_zero_and_negative(void **state)
{
    (void)state;
    int64_t t0 = tq_clock_mono_ms();
    TQ_ASSERT_INT(tq_clock_sleep_ms(0, NULL), 0);
    TQ_ASSERT_INT(tq_clock_sleep_ms(-5, NULL), 0);
    TQ_ASSERT_INT(tq_clock_sleep_ms(INT64_MIN / 2, NULL), 0);
    tq_clock_sleep_us(0);
    tq_clock_sleep_us(-1000);
    TQ_ASSERT_RANGE(tq_clock_mono_ms() - t0, 0, 50);
}

static void test_sleep_stopped_before(void **state)
{
    (void)state;
    volatile sig_atomic_t stop = 1;
    int64_t t0 = tq_clock_mono_ms();
    TQ_ASSERT_INT(tq_clock_sleep_ms(5000, &stop), 1);
    TQ_ASSERT_RANGE(tq_clock_mono_ms() - t0, 0, 50);
    /* A stop flag wins even over a zero sleep: the caller is told. */
    TQ_ASSERT_INT(tq_clock_sleep_ms(0, &stop), 1);
}

static volatile sig_atomic_t thread_stop;

static void *set_stop_later(void *arg)
{
    (void)arg;
    tq_clock_sleep_us(150 * 1000);
    thread_stop = 1;
    return NULL;
}

static void test_sleep_stopped_during(void **state)
{
    (void)state;
    pthread_t t;
    thread_stop = 0;
    int64_t t0 = tq_clock_mono_ms();
    assert_int_equal(pthread_create(&t, NULL, set_stop_later, NULL), 0);
    int rc = tq_clock_sleep_ms(10000, &thread_stop);
    int64_t took = tq_clock_mono_ms() - t0;
    pthread_join(t, NULL);
    TQ_ASSERT_INT(rc, 1);
    /* Noticed within one 100 ms step of being set. */
    TQ_ASSERT_RANGE(took, 150, 150 + 100 + SLACK_MS);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void test_sleep_survives_signals(void **state)
{
    (void)state;
    /* A signal every 20 ms interrupts nanosleep (no SA_RESTART); the sleep
     * must still last its full time. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval it = {{0, 20000}, {0, 20000}}, off = {{0, 0}, {0, 0}};
    alarms = 0;
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);

    int64_t t0 = tq_clock_mono_ms();
    tq_clock_sleep_us(200 * 1000);
    int64_t took_us = tq_clock_mono_ms() - t0;
    t0 = tq_clock_mono_ms();
    int rc = tq_clock_sleep_ms(200, NULL);
    int64_t took_ms = tq_clock_mono_ms() - t0;

    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    assert_true(alarms >= 3);
    TQ_ASSERT_RANGE(took_us, 200, 200 + SLACK_MS);
    TQ_ASSERT_INT(rc, 0);
    TQ_ASSERT_RANGE(took_ms, 200, 200 + SLACK_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mono_never_goes_back),
        cmocka_unit_test(test_wall_clocks_agree),
        cmocka_unit_test(test_sleep_ms_duration),
        cmocka_unit_test(test_sleep_zero_and_negative),
        cmocka_unit_test(test_sleep_stopped_before),
        cmocka_unit_test(test_sleep_stopped_during),
        cmocka_unit_test(test_sleep_survives_signals),
    };
    return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
