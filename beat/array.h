/* beat_array: how the beat grows its big arrays (the table's entries and
 * slots, the heap, the lists of a reload and of the state reads), and the
 * huge-page advice it gives for them.
 *
 * With a million schedules the beat reads arrays of millions of elements
 * at random (the slots, the name index, the heap): TLB misses would then
 * cost more than the cache misses, so an array grown here is advised onto
 * huge pages once it is large. */
#ifndef TQ_BEAT_ARRAY_H
#define TQ_BEAT_ARRAY_H

#include <stddef.h>

#define BEAT_ARRAY_MIN 64                 /* elements of a first allocation */
#define BEAT_ARRAY_HUGE ((size_t)4 << 20) /* bytes from which to ask for huge pages */

/* Makes room for need elements of size bytes in *arr, whose capacity is
 * *cap elements: doubles it (from BEAT_ARRAY_MIN) until need fits, with
 * realloc(), and advises the block onto huge pages (beat_array_huge()).
 * Returns 0 (also when there was room already), or TQ_ENOMEM with *arr
 * and *cap unchanged. */
int beat_array_grow(void **arr, size_t *cap, size_t need, size_t size);

/* Asks for huge pages under the whole pages of the len bytes at p, when
 * len is at least BEAT_ARRAY_HUGE. Advice only: nothing can fail. */
void beat_array_huge(void *p, size_t len);

#endif
