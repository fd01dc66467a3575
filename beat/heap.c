/* A binary min-heap of pointers that keep their own index; see heap.h. */
#include "beat/heap.h"
#include "beat/array.h"
#include "common/err.h"

#include <stdlib.h>

static uint32_t *pos_of(const beat_heap *h, const void *item)
{
    return (uint32_t *)((char *)(uintptr_t)item + h->pos_offset);
}

static void put(beat_heap *h, size_t i, void *item)
{
    h->items[i] = item;
    *pos_of(h, item) = (uint32_t)i;
}

static void sift_down(beat_heap *h, size_t i)
{
    void *e = h->items[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->before(h->items[c + 1], h->items[c]))
            c++;
        if (!h->before(h->items[c], e))
            break;
        put(h, i, h->items[c]);
        i = c;
    }
    put(h, i, e);
}

static void sift_up(beat_heap *h, size_t i)
{
    void *e = h->items[i];
    while (i > 0 && h->before(e, h->items[(i - 1) / 2])) {
        put(h, i, h->items[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    put(h, i, e);
}

void beat_heap_init(beat_heap *h, beat_heap_before_fn before, size_t pos_offset)
{
    *h = (beat_heap){NULL, 0, 0, before, pos_offset};
}

void beat_heap_deinit(beat_heap *h)
{
    free(h->items);
    h->items = NULL;
    h->n = h->cap = 0;
}

int beat_heap_reserve(beat_heap *h, size_t n)
{
    if (n > BEAT_HEAP_MAX)
        return TQ_ENOMEM;
    return beat_array_grow((void **)&h->items, &h->cap, n, sizeof *h->items);
}

int beat_heap_append(beat_heap *h, void *item)
{
    if (h->n == h->cap && beat_heap_reserve(h, h->n + 1) < 0)
        return TQ_ENOMEM;
    put(h, h->n++, item);
    return 0;
}

int beat_heap_push(beat_heap *h, void *item)
{
    if (beat_heap_append(h, item) < 0)
        return TQ_ENOMEM;
    sift_up(h, h->n - 1);
    return 0;
}

void beat_heap_build(beat_heap *h)
{
    for (size_t i = h->n / 2; i-- > 0;)
        sift_down(h, i);
}

void *beat_heap_top(const beat_heap *h)
{
    return h->n ? h->items[0] : NULL;
}

void beat_heap_remove(beat_heap *h, void *item)
{
    size_t i = *pos_of(h, item);
    void *last = h->items[--h->n];
    *pos_of(h, item) = BEAT_HEAP_NONE;
    if (i < h->n) {
        put(h, i, last);
        beat_heap_fix(h, last);
    }
}

void *beat_heap_pop(beat_heap *h)
{
    void *top = beat_heap_top(h);
    if (top)
        beat_heap_remove(h, top);
    return top;
}

void beat_heap_fix(beat_heap *h, void *item)
{
    sift_up(h, *pos_of(h, item));
    sift_down(h, *pos_of(h, item));
}

void beat_heap_replace(beat_heap *h, void *old, void *item)
{
    size_t i = *pos_of(h, old);
    *pos_of(h, old) = BEAT_HEAP_NONE;
    put(h, i, item);
    beat_heap_fix(h, item);
}

int beat_heap_contains(const beat_heap *h, const void *item)
{
    return *pos_of(h, item) != BEAT_HEAP_NONE;
}
