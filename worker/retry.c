/* Retry backoff (see retry.h). */
#include "worker/retry.h"

int64_t worker_retry_delay_ms(int64_t base_ms, int64_t cap_ms, int attempt, uint64_t *rng)
{
    int64_t window = base_ms;
    for (int i = 1; i < attempt && window > 0 && window < cap_ms; i++)
        window *= 2;
    if (window > cap_ms)
        window = cap_ms;
    if (window < 0)
        window = 0;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return (int64_t)(*rng % (uint64_t)(window + 1));
}

int64_t worker_retry_due_ms(int64_t base_ms, int64_t cap_ms, int attempt, int max_retries,
                            int64_t finished_ms, uint64_t *rng)
{
    if (attempt > max_retries)
        return -1;
    return finished_ms + worker_retry_delay_ms(base_ms, cap_ms, attempt, rng);
}
