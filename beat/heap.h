/* beat_heap: a binary min-heap of pointers, ordered by a function given at
 * init and independent of what the items are. The beat keeps its next-due
 * schedules in one (beat/entry.h says on what key), so that a pass looks
 * at the top only and costs O(due * log n).
 *
 * Each item records its own index in the heap, in a uint32_t field at an
 * offset given at init, so that removing an item, or restoring the order
 * after its key changed, is O(log n) without a search. A uint32_t rather
 * than a size_t keeps the beat's per-schedule entry small (there may be a
 * million), and bounds a heap to BEAT_HEAP_MAX items. The field holds
 * BEAT_HEAP_NONE while the item is not in the heap: the owner sets it so
 * when it makes an item, and the heap sets it when it lets one go.
 *
 * The heap borrows its items (it never frees one). Ties are broken by the
 * order function alone: for a deterministic order it must be total. Not
 * thread-safe. */
#ifndef TQ_BEAT_HEAP_H
#define TQ_BEAT_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define BEAT_HEAP_NONE UINT32_MAX       /* the index field of an item not in a heap */
#define BEAT_HEAP_MAX (UINT32_MAX - 1u) /* items a heap can hold */

/* Nonzero if item a comes before item b (strictly). */
typedef int (*beat_heap_before_fn)(const void *a, const void *b);

/* A heap, owned by its caller (beat_heap_init(), beat_heap_deinit()). The
 * fields are read-only outside heap.c. */
typedef struct {
    void **items; /* owned array of borrowed items; items[0] is the first */
    size_t n;     /* items in the heap */
    size_t cap;   /* room in items */
    beat_heap_before_fn before;
    size_t pos_offset; /* of each item's uint32_t index field, in bytes */
} beat_heap;

/* Makes *h an empty heap ordered by before, whose items keep their index
 * in the uint32_t field at pos_offset (offsetof(type, field)). Allocates
 * nothing. */
void beat_heap_init(beat_heap *h, beat_heap_before_fn before, size_t pos_offset);

/* Frees the array (not the items) and leaves *h empty. Safe twice. */
void beat_heap_deinit(beat_heap *h);

/* Makes room for n items, so that pushes and appends up to that many
 * cannot fail. Returns 0, or TQ_ENOMEM (also for n over BEAT_HEAP_MAX). */
int beat_heap_reserve(beat_heap *h, size_t n);

/* Adds item, which must not be in a heap. Returns 0, or TQ_ENOMEM (the
 * heap is unchanged). O(log n). */
int beat_heap_push(beat_heap *h, void *item);

/* Adds item without restoring the order: a cheaper push for many items at
 * once, after which beat_heap_build() must come before any other call but
 * another append. Returns 0 or TQ_ENOMEM. */
int beat_heap_append(beat_heap *h, void *item);

/* Restores the order after appends, or after the keys of any number of
 * items changed. O(n). */
void beat_heap_build(beat_heap *h);

/* The first item (borrowed), or NULL when the heap is empty. */
void *beat_heap_top(const beat_heap *h);

/* Removes the first item and returns it (borrowed), or NULL when empty. */
void *beat_heap_pop(beat_heap *h);

/* Removes item, which must be in h. O(log n). */
void beat_heap_remove(beat_heap *h, void *item);

/* Restores the order around item, which is in h, after its key changed.
 * O(log n). */
void beat_heap_fix(beat_heap *h, void *item);

/* Puts item in the place of old, which is in h and leaves it (item must
 * not be in a heap), then restores the order around item. O(log n). */
void beat_heap_replace(beat_heap *h, void *old, void *item);

/* 1 if item is in a heap (its index field is not BEAT_HEAP_NONE). */
int beat_heap_contains(const beat_heap *h, const void *item);

#endif
