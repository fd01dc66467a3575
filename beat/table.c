/* The beat's table of schedule entries and its name index; see table.h. */
#include "beat/table.h"
#include "beat/array.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

void beat_table_init(beat_table *t)
{
    memset(t, 0, sizeof *t);
}

void beat_table_deinit(beat_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->ents[i]);
    free(t->ents);
    free(t->slots);
    free(t->bucket);
    beat_table_init(t);
}

int beat_table_reserve(beat_table *t, size_t n)
{
    size_t cap = t->cap;
    if (beat_array_grow((void **)&t->ents, &t->cap, n, sizeof *t->ents) < 0)
        return TQ_ENOMEM;
    if (t->cap != cap) {
        beat_table_slot *slots = realloc(t->slots, t->cap * sizeof *slots);
        if (!slots) {
            t->cap = cap; /* the larger ents block is harmless */
            return TQ_ENOMEM;
        }
        beat_array_huge(slots, t->cap * sizeof *slots);
        t->slots = slots;
    }
    return 0;
}

size_t beat_table_lower_bound(const beat_table *t, size_t n, uint64_t h, const char *name,
                              size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->slots[mid].name < h ||
            (t->slots[mid].name == h &&
             beat_entry_name_cmp(t->ents[mid]->str, t->ents[mid]->namelen, name, len) <
                 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int beat_table_index(beat_table *t)
{
    int bits = 8;
    while (bits < 24 && ((size_t)8 << bits) < t->n)
        bits++;
    uint32_t *b = realloc(t->bucket, (((size_t)1 << bits) + 1) * sizeof *b);
    if (!b) {
        free(t->bucket); /* beat_table_find() bisects without it */
        t->bucket = NULL;
        return TQ_ENOMEM;
    }
    beat_array_huge(b, (((size_t)1 << bits) + 1) * sizeof *b);
    t->bucket = b;
    t->bucket_bits = bits;
    size_t i = 0;
    for (size_t j = 0; j < (size_t)1 << bits; j++) {
        while (i < t->n && (t->slots[i].name >> (64 - bits)) < j)
            i++;
        b[j] = (uint32_t)i;
    }
    b[(size_t)1 << bits] = (uint32_t)t->n;
    return 0;
}

size_t beat_table_find(const beat_table *t, const char *name, size_t len, uint64_t h,
                       uint64_t def)
{
    size_t i, end;
    if (t->bucket) {
        size_t j = h >> (64 - t->bucket_bits);
        i = t->bucket[j];
        end = t->bucket[j + 1];
    } else {
        i = beat_table_lower_bound(t, t->n, h, name, len);
        end = t->n;
    }
    while (i < end && t->slots[i].name < h)
        i++;
    for (; i < end && t->slots[i].name == h; i++)
        if ((def && t->slots[i].def == def) ||
            beat_entry_name_cmp(t->ents[i]->str, t->ents[i]->namelen, name, len) == 0)
            return i;
    return SIZE_MAX;
}

void beat_table_replace(beat_table *t, size_t pos, beat_entry *e)
{
    t->ents[pos] = e;
    t->slots[pos].def = e->hash;
}

size_t beat_table_sweep(beat_table *t, uint32_t gen, void (*gone)(beat_entry *, void *),
                        void *arg)
{
    size_t n = 0, before = t->n;
    for (size_t i = 0; i < t->n; i++) {
        beat_entry *o = t->ents[i];
        if (t->slots[i].seen == gen) {
            t->ents[n] = o;
            t->slots[n++] = t->slots[i];
            continue;
        }
        gone(o, arg);
    }
    t->n = n;
    return before - n;
}

void beat_table_insert(beat_table *t, beat_entry *const *add, size_t n, uint32_t gen)
{
    size_t end = t->n, k = t->n + n;
    for (size_t j = n; j-- > 0;) {
        beat_entry *a = add[j];
        size_t p = beat_table_lower_bound(t, end, a->namehash, a->str, a->namelen),
               len = end - p;
        k -= len;
        memmove(&t->ents[k], &t->ents[p], len * sizeof *t->ents);
        memmove(&t->slots[k], &t->slots[p], len * sizeof *t->slots);
        t->ents[--k] = a;
        t->slots[k] = (beat_table_slot){a->namehash, a->hash, gen};
        end = p;
    }
    t->n += n;
}
