/* Tests of beat/heap, the beat's binary min-heap of pointers: an empty
 * heap, push and pop against a sort of the same random keys (duplicates
 * included, broken by a second key), the order restored after keys change
 * (beat_heap_fix() and beat_heap_build()), removal from the middle,
 * replacement, appends then one build, growth from nothing to many items,
 * and the items' own index fields kept right after every operation. */
#include "tests/support/check.h"

#include <stdio.h>
#include <stdlib.h>

#include "beat/heap.h"

/* An item: ordered on (key, id); id makes the order total. */
typedef struct {
    int key;
    int id;
    uint32_t pos; /* the heap's index field */
} item;

static int item_before(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key;
    return x->id < y->id;
}

static int item_cmp(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void init(beat_heap *h)
{
    beat_heap_init(h, item_before, offsetof(item, pos));
}

/* n items with keys in [0, range) from a fixed seed, ids 0..n-1, in no
 * heap. A new array (free() it). */
static item *make_items(size_t n, int range, unsigned seed)
{
    item *v = calloc(n ? n : 1, sizeof *v);
    assert_non_null(v);
    srand(seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (item){rand() % range, (int)i, BEAT_HEAP_NONE};
    return v;
}

/* The heap's invariants: every item knows its index, and no item comes
 * before its parent. */
static void check_heap(const beat_heap *h)
{
    assert_true(h->n <= h->cap);
    for (size_t i = 0; i < h->n; i++) {
        const item *e = h->items[i];
        if (e->pos != i)
            fail_msg("item %d at index %zu says it is at %u", e->id, i, e->pos);
        if (i > 0 && item_before(e, h->items[(i - 1) / 2]))
            fail_msg("item %d (key %d) at %zu comes before its parent", e->id, e->key, i);
    }
}

/* Pops everything and checks it comes out in the order of a sort of the
 * same items. Empties the heap. */
static void check_pops_sorted(beat_heap *h)
{
    size_t n = h->n;
    item *want = calloc(n ? n : 1, sizeof *want);
    assert_non_null(want);
    for (size_t i = 0; i < n; i++)
        want[i] = *(item *)h->items[i];
    qsort(want, n, sizeof *want, item_cmp);
    for (size_t i = 0; i < n; i++) {
        item *got = beat_heap_pop(h);
        assert_non_null(got);
        if (got->key != want[i].key || got->id != want[i].id)
            fail_msg("pop %zu: expected (%d, %d), got (%d, %d)", i, want[i].key,
                     want[i].id, got->key, got->id);
        TQ_ASSERT_INT(got->pos, BEAT_HEAP_NONE);
        assert_false(beat_heap_contains(h, got));
        if (i % 97 == 0)
            check_heap(h);
    }
    TQ_ASSERT_INT(h->n, 0);
    assert_null(beat_heap_pop(h));
    free(want);
}

static void test_empty(void **state)
{
    (void)state;
    beat_heap h;
    init(&h);
    TQ_ASSERT_INT(h.n, 0);
    assert_null(beat_heap_top(&h));
    assert_null(beat_heap_pop(&h));
    beat_heap_build(&h); /* nothing to do, nothing allocated */
    assert_null(h.items);
    beat_heap_deinit(&h);
    beat_heap_deinit(&h); /* twice is fine */

    /* One item in and out. */
    item one = {5, 0, BEAT_HEAP_NONE};
    init(&h);
    assert_false(beat_heap_contains(&h, &one));
    TQ_ASSERT_RC(beat_heap_push(&h, &one), 0);
    assert_true(beat_heap_contains(&h, &one));
    TQ_ASSERT_INT(one.pos, 0);
    assert_ptr_equal(beat_heap_top(&h), &one);
    beat_heap_fix(&h, &one);
    assert_ptr_equal(beat_heap_pop(&h), &one);
    assert_false(beat_heap_contains(&h, &one));
    assert_null(beat_heap_top(&h));
    beat_heap_deinit(&h);
}

static void test_push_pop_random_vs_sort(void **state)
{
    (void)state;
    /* Few distinct keys (many ties) and many; sizes around powers of two. */
    const size_t sizes[] = {1, 2, 3, 7, 8, 9, 63, 64, 65, 1000, 4097};
    const int ranges[] = {3, 1000000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (size_t r = 0; r < 2; r++) {
            beat_heap h;
            size_t n = sizes[s];
            item *v = make_items(n, ranges[r], (unsigned)(s * 31 + r));
            init(&h);
            for (size_t i = 0; i < n; i++) {
                TQ_ASSERT_RC(beat_heap_push(&h, &v[i]), 0);
                const item *top = beat_heap_top(&h);
                assert_false(item_before(&v[i], top)); /* the least is on top */
            }
            TQ_ASSERT_INT(h.n, n);
            check_heap(&h);
            check_pops_sorted(&h);
            beat_heap_deinit(&h);
            free(v);
        }
}

static void test_fix_after_key_change(void **state)
{
    (void)state;
    const size_t n = 2000;
    beat_heap h;
    item *v = make_items(n, 500, 7);
    init(&h);
    for (size_t i = 0; i < n; i++)
        TQ_ASSERT_RC(beat_heap_push(&h, &v[i]), 0);
    /* Keys up, down and unchanged, anywhere in the heap. */
    srand(8);
    for (int round = 0; round < 5000; round++) {
        item *e = &v[(size_t)rand() % n];
        e->key = rand() % 3 == 0 ? e->key : rand() % 500;
        beat_heap_fix(&h, e);
        if (round % 500 == 0)
            check_heap(&h);
    }
    check_heap(&h);
    /* The top moved to the back, as the beat does after publishing it. */
    for (int round = 0; round < 100; round++) {
        item *top = beat_heap_top(&h);
        top->key += 1000;
        beat_heap_fix(&h, top);
    }
    check_heap(&h);
    /* Many keys changed at once, then one build. */
    for (size_t i = 0; i < n; i += 3)
        v[i].key = -v[i].key;
    beat_heap_build(&h);
    check_heap(&h);
    check_pops_sorted(&h);
    beat_heap_deinit(&h);
    free(v);
}

static void test_remove_from_middle(void **state)
{
    (void)state;
    const size_t n = 1500;
    beat_heap h;
    item *v = make_items(n, 100, 11);
    init(&h);
    for (size_t i = 0; i < n; i++)
        TQ_ASSERT_RC(beat_heap_push(&h, &v[i]), 0);
    /* Every third item, wherever it is: the middle, a leaf, the top. */
    size_t left = n;
    for (size_t i = 0; i < n; i += 3) {
        beat_heap_remove(&h, &v[i]);
        left--;
        TQ_ASSERT_INT(h.n, left);
        TQ_ASSERT_INT(v[i].pos, BEAT_HEAP_NONE);
        assert_false(beat_heap_contains(&h, &v[i]));
        if (i % 30 == 0)
            check_heap(&h);
    }
    beat_heap_remove(&h, beat_heap_top(&h));
    beat_heap_remove(&h, h.items[h.n - 1]); /* the last one: nothing moves */
    left -= 2;
    check_heap(&h);
    TQ_ASSERT_INT(h.n, left);
    /* None of the removed ones is left (ids are indexes), and the others
     * come out in order. */
    for (size_t i = 0; i < h.n; i++)
        if (((item *)h.items[i])->id % 3 == 0)
            fail_msg("item %d was removed but is at %zu", ((item *)h.items[i])->id, i);
    check_pops_sorted(&h);
    /* A removed item can come back. */
    TQ_ASSERT_RC(beat_heap_push(&h, &v[0]), 0);
    assert_ptr_equal(beat_heap_top(&h), &v[0]);
    beat_heap_deinit(&h);
    free(v);
}

static void test_replace(void **state)
{
    (void)state;
    const size_t n = 300;
    beat_heap h;
    item *v = make_items(n, 1000, 13);
    item fresh[3] = {{-1, 1000, BEAT_HEAP_NONE},
                     {5000, 1001, BEAT_HEAP_NONE},
                     {500, 1002, BEAT_HEAP_NONE}};
    init(&h);
    for (size_t i = 0; i < n; i++)
        TQ_ASSERT_RC(beat_heap_push(&h, &v[i]), 0);
    /* A new version takes the old one's place, earlier, later or equal. */
    for (int k = 0; k < 3; k++) {
        item *old = &v[50 * (size_t)k + 10];
        beat_heap_replace(&h, old, &fresh[k]);
        TQ_ASSERT_INT(old->pos, BEAT_HEAP_NONE);
        assert_true(beat_heap_contains(&h, &fresh[k]));
        check_heap(&h);
    }
    TQ_ASSERT_INT(h.n, n);
    assert_ptr_equal(beat_heap_top(&h), &fresh[0]);
    check_pops_sorted(&h);
    beat_heap_deinit(&h);
    free(v);
}

static void test_append_then_build(void **state)
{
    (void)state;
    const size_t n = 5000;
    beat_heap h;
    item *v = make_items(n, 1 << 20, 17);
    init(&h);
    TQ_ASSERT_RC(beat_heap_reserve(&h, n), 0);
    void **before = h.items;
    for (size_t i = 0; i < n; i++)
        TQ_ASSERT_RC(beat_heap_append(&h, &v[i]), 0);
    assert_ptr_equal(h.items, before); /* reserved: no reallocation */
    beat_heap_build(&h);
    check_heap(&h);
    check_pops_sorted(&h);
    beat_heap_deinit(&h);
    free(v);
}

static void test_growth(void **state)
{
    (void)state;
    /* From nothing, through many doublings, with the items in reverse
     * order (every push goes to the top). */
    const size_t n = 300000;
    beat_heap h;
    item *v = calloc(n, sizeof *v);
    assert_non_null(v);
    init(&h);
    size_t caps = 0, last_cap = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = (item){(int)(n - i), (int)i, BEAT_HEAP_NONE};
        TQ_ASSERT_RC(beat_heap_push(&h, &v[i]), 0);
        assert_ptr_equal(beat_heap_top(&h), &v[i]);
        if (h.cap != last_cap) {
            caps++;
            last_cap = h.cap;
        }
    }
    TQ_ASSERT_INT(h.n, n);
    assert_true(h.cap >= n);
    assert_true(caps >= 10); /* it grew by doubling, not once */
    check_heap(&h);
    for (size_t i = 0; i < n; i++) {
        item *e = beat_heap_pop(&h);
        TQ_ASSERT_INT(e->id, n - 1 - i);
    }
    /* Reserving less than there is room for changes nothing; more than a
     * heap can index is refused. */
    size_t cap = h.cap;
    TQ_ASSERT_RC(beat_heap_reserve(&h, 10), 0);
    TQ_ASSERT_INT(h.cap, cap);
    TQ_ASSERT_RC(beat_heap_reserve(&h, (size_t)BEAT_HEAP_MAX + 1), TQ_ENOMEM);
    TQ_ASSERT_INT(h.cap, cap);
    beat_heap_deinit(&h);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_push_pop_random_vs_sort),
        cmocka_unit_test(test_fix_after_key_change),
        cmocka_unit_test(test_remove_from_middle),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_append_then_build),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
