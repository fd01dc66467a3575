/* beat_table: every field of P:schedules that the beat knows, good or bad,
 * as entries (beat/entry.h) in an array sorted by (hash of the name, name),
 * with an index to find a name fast.
 *
 * The order lets a reload (beat/reload.c) tell added, changed and removed
 * definitions apart. A parallel array of slots holds, per entry, the hash
 * of its name, the hash of its definition and the reload generation that
 * last saw it; a name is found there through a table of where each hash
 * prefix starts. A reload that finds a definition unchanged therefore
 * touches one slot, not the entry: one or two cache misses rather than the
 * twenty of a bisection that chases pointers, and with the lookups of a
 * batch prefetched a few names ahead (beat_table_prefetch_bucket() and
 * _slot()), even those overlap. That is what makes a reload of a million
 * schedules fast. The arrays are grown with beat/array.h (huge pages).
 *
 * The table owns its entries. It knows nothing of Redis or of the heap:
 * the reload decides what changes, and keeps the heap in step. */
#ifndef TQ_BEAT_TABLE_H
#define TQ_BEAT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "beat/entry.h"

/* The lookup data of one entry, next to that of its neighbours. */
typedef struct {
    uint64_t name; /* the entry's namehash: the sort key */
    uint64_t def;  /* the entry's hash: its definition's text */
    uint32_t seen; /* the reload generation that saw it last */
} beat_table_slot;

/* A table, owned by its caller (beat_table_init(), beat_table_deinit()).
 * The fields are read-only outside table.c, but for the slots' seen,
 * which a reload marks. */
typedef struct {
    beat_entry **ents;      /* owned entries, sorted by (namehash, name) */
    beat_table_slot *slots; /* per entry */
    uint32_t *bucket;       /* index of the first slot of each top-bits prefix, then n;
                               NULL: names are found by bisection */
    int bucket_bits;
    size_t n;   /* entries */
    size_t cap; /* room in ents and slots */
} beat_table;

/* Makes *t an empty table. Allocates nothing. */
void beat_table_init(beat_table *t);

/* Frees the entries and the arrays, and leaves *t empty. Safe twice. */
void beat_table_deinit(beat_table *t);

/* Makes room for n entries. Returns 0 or TQ_ENOMEM. */
int beat_table_reserve(beat_table *t, size_t n);

/* The index of the first of the entries [0, n) that does not sort before
 * (h, name), by bisection (for inserting). */
size_t beat_table_lower_bound(const beat_table *t, size_t n, uint64_t h, const char *name,
                              size_t len);

/* The index of the entry called name (len bytes, whose beat_entry_hash()
 * is h), or SIZE_MAX. With def (the hash of a definition's text, or 0), a
 * slot whose name and definition hashes both match is taken without
 * reading the entry: the text holds the name, so that is the same name and
 * the same definition (but for a 128-bit collision). */
size_t beat_table_find(const beat_table *t, const char *name, size_t len, uint64_t h,
                       uint64_t def);

/* Puts e (taken) in the place of the entry at pos, which has the same
 * name; the old entry is the caller's to free. */
void beat_table_replace(beat_table *t, size_t pos, beat_entry *e);

/* Removes every entry whose slot was not seen by the reload generation
 * gen, handing each to gone(e, arg), which takes it. Keeps the order;
 * visits every entry. Returns how many were removed. Call
 * beat_table_index() afterwards. */
size_t beat_table_sweep(beat_table *t, uint32_t gen, void (*gone)(beat_entry *, void *),
                        void *arg);

/* Inserts the n entries of add (taken; sorted by beat_entry_cmp(), none of
 * whose names is in the table), marked as seen by gen, for which
 * beat_table_reserve() made room: from the last one down, each placed by
 * bisection and the entries after it moved up in one block, so that many
 * cost one pass over the array. Call beat_table_index() afterwards. */
void beat_table_insert(beat_table *t, beat_entry *const *add, size_t n, uint32_t gen);

/* Rebuilds the prefix index after entries were added or removed: about
 * eight entries per prefix. O(n), sequential. Returns 0, or TQ_ENOMEM
 * (names are then found by bisection, slower but right). */
int beat_table_index(beat_table *t);

/* Prefetches the part of the index where the name whose hash is h is to
 * be found: a lookup of it some names later then does not wait for it. */
static inline void beat_table_prefetch_bucket(const beat_table *t, uint64_t h)
{
    if (t->bucket)
        __builtin_prefetch(&t->bucket[h >> (64 - t->bucket_bits)]);
}

/* Prefetches the first slot of h's prefix (after its part of the index:
 * see beat_table_prefetch_bucket()). */
static inline void beat_table_prefetch_slot(const beat_table *t, uint64_t h)
{
    if (t->bucket)
        __builtin_prefetch(&t->slots[t->bucket[h >> (64 - t->bucket_bits)]]);
}

#endif
