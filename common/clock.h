/* Clocks. Sleeps and timeouts use the monotonic clock; only schedule grids
 * and message timestamps use wall time. */
#ifndef TQ_CLOCK_H
#define TQ_CLOCK_H

#include <signal.h>
#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t tq_clock_mono_ms(void);

/* Milliseconds and microseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t tq_clock_wall_ms(void);
int64_t tq_clock_wall_us(void);

/* Sleeps ms milliseconds, in steps of at most 100 ms so that a set *stop
 * (may be NULL) ends it early. Returns 1 if stopped, 0 otherwise. */
int tq_clock_sleep_ms(int64_t ms, volatile sig_atomic_t *stop);

/* Sleeps us microseconds without looking at any flag (short waits). */
void tq_clock_sleep_us(int64_t us);

#endif
