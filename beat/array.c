/* Growth of the beat's big arrays, with huge-page advice; see array.h. */
#include "beat/array.h"
#include "common/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Asks for huge pages under a big array that is read at random (the
 * slots, the index, the heap): with a million schedules, TLB misses would
 * otherwise cost more than the cache misses. Advice only. */
void beat_array_huge(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t page = 4096;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1),
              z = ((uintptr_t)p + len) & ~(page - 1);
    if (len >= BEAT_ARRAY_HUGE && z > a)
        madvise((void *)a, z - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

int beat_array_grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : BEAT_ARRAY_MIN;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * size);
    if (!p)
        return TQ_ENOMEM;
    beat_array_huge(p, n * size);
    *arr = p;
    *cap = n;
    return 0;
}
