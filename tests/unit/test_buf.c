/* Tests of common/buf: appends of every size keep the whole text and its
 * NUL; printf output longer than the on-stack piece is never cut; a buffer
 * that ran out of memory stays failed; the hot-path formatters match printf. */
#include "tests/support/check.h"

#include <limits.h>
#include <stdio.h>
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

/* tq_fmt_ll writes what printf's %lld writes, at the ends of the range too. */
static void test_fmt_ll_matches_printf(void **state)
{
    (void)state;
    static const long long v[] = {0,
                                  1,
                                  -1,
                                  9,
                                  10,
                                  -10,
                                  1764096000000LL,
                                  999999999999999999LL,
                                  LLONG_MAX,
                                  LLONG_MIN,
                                  LLONG_MIN + 1};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char got[32], want[32];
        memset(got, 'x', sizeof got);
        char *end = tq_fmt_ll(got, v[i]);
        *end = '\0';
        snprintf(want, sizeof want, "%lld", v[i]);
        assert_string_equal(got, want);
        assert_true(end - got <= 20);
    }
}

/* tq_fmt_copy cuts to fit and always terminates, as snprintf("%s") does. */
static void test_fmt_copy_cuts_and_terminates(void **state)
{
    (void)state;
    char d[4];
    tq_fmt_copy(d, sizeof d, "ab");
    assert_string_equal(d, "ab");
    tq_fmt_copy(d, sizeof d, "abc");
    assert_string_equal(d, "abc");
    tq_fmt_copy(d, sizeof d, "abcdef");
    assert_string_equal(d, "abc");
    tq_fmt_copy(d, 1, "abc");
    assert_string_equal(d, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows_and_keeps_everything),
        cmocka_unit_test(test_putf_is_never_cut),
        cmocka_unit_test(test_failed_stays_failed),
        cmocka_unit_test(test_fmt_ll_matches_printf),
        cmocka_unit_test(test_fmt_copy_cuts_and_terminates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
