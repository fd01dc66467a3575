/* Tests of common/buf: appends of every size keep the whole text and its
 * NUL; printf output longer than the on-stack piece is never cut; a buffer
 * that ran out of memory stays failed. */
#include "tests/support/check.h"

#include <stdlib.h>

#include "common/buf.h"

static void test_grows_and_keeps_everything(void **state)
{
    (void)state;
    tq_buf b = {0};
    char want[5000];
    size_t n = 0;
    /* Pieces of 0..99 bytes: the buffer doubles several times past 256. */
    for (int i = 0; n + 100 < sizeof want; i++) {
        char piece[100];
        size_t len = (size_t)(i % 100);
        memset(piece, 'a' + i % 26, len);
        tq_buf_put(&b, piece, len);
        memcpy(want + n, piece, len);
        n += len;
    }
    want[n] = '\0';
    assert_false(b.oom);
    assert_int_equal(b.len, n);
    assert_true(b.cap > b.len);
    assert_string_equal(b.p, want);
    free(b.p);
}

static void test_putf_is_never_cut(void **state)
{
    (void)state;
    tq_buf b = {0};
    tq_buf_puts(&b, "[");
    tq_buf_putf(&b, "%d,%s", 42, "x");
    char longer[300];
    memset(longer, 'z', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    tq_buf_putf(&b, ",%s]", longer); /* longer than the 64-byte piece */
    assert_false(b.oom);
    assert_int_equal(b.len, strlen("[42,x,") + strlen(longer) + 1);
    assert_int_equal(strncmp(b.p, "[42,x,zzz", 9), 0);
    assert_int_equal(b.p[b.len - 1], ']');
    assert_int_equal(b.p[b.len], '\0');
    free(b.p);
}

static void test_failed_stays_failed(void **state)
{
    (void)state;
    tq_buf b = {0};
    tq_buf_puts(&b, "ok");
    b.oom = 1; /* as after a failed realloc */
    tq_buf_puts(&b, "more");
    tq_buf_putf(&b, "%d", 7);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.p, "ok");
    free(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_and_keeps_everything),
        cmocka_unit_test(test_putf_is_never_cut),
        cmocka_unit_test(test_failed_stays_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
