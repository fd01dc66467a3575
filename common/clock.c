/* Clocks and sleeps. */
#include "common/clock.h"

#include <errno.h>
#include <time.h>

int64_t tq_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tq_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tq_clock_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void tq_clock_sleep_us(int64_t us)
{
    if (us <= 0)
        return;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int tq_clock_sleep_ms(int64_t ms, volatile sig_atomic_t *stop)
{
    int64_t end = tq_clock_mono_ms() + ms;
    for (;;) {
        if (stop && *stop)
            return 1;
        int64_t left = end - tq_clock_mono_ms();
        if (left <= 0)
            return 0;
        tq_clock_sleep_us((left > 100 ? 100 : left) * 1000);
    }
}
