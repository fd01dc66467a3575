/* When a failed run's next attempt is due: exponential backoff with full
 * jitter, a pure function of the attempt, the policy and "now", so that it
 * is tested at chosen instants (tests/unit/test_worker.c). */
#ifndef TQ_WORKER_RETRY_H
#define TQ_WORKER_RETRY_H

#include <stdint.h>

/* The wait before attempt + 1 of a run that failed at attempt (from 1): a
 * random number of ms from 0 to min(cap_ms, base_ms * 2^(attempt - 1)),
 * drawn with the xorshift state *rng (never 0). base_ms and cap_ms are
 * >= 0; no attempt overflows. */
int64_t worker_retry_delay_ms(int64_t base_ms, int64_t cap_ms, int attempt,
                              uint64_t *rng);

/* The due time of the next attempt of a run that failed at finished_ms,
 * or -1 when attempt already used the last of max_retries retries (the
 * run is then a dead letter). */
int64_t worker_retry_due_ms(int64_t base_ms, int64_t cap_ms, int attempt, int max_retries,
                            int64_t finished_ms, uint64_t *rng);

#endif
