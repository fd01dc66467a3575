/* Tests of common/err: every code has its own text, unknown codes say so. */
#include "tests/support/check.h"

#include <limits.h>

#include "common/err.h"

/* Every code, from the same X-macro list as err.h, so a new code is tested
 * without editing this file. */
#define CODE(name, text) {TQ_E##name, "TQ_E" #name, text},
static const struct {
    int code;
    const char *name;
    const char *text;
} codes[] = {TQ_ERR_MAP(CODE)};
#undef CODE
#define NCODES (sizeof codes / sizeof codes[0])

static void test_codes_are_negative_and_distinct(void **state)
{
    (void)state;
    assert_true(NCODES >= 13);
    for (size_t i = 0; i < NCODES; i++) {
        if (codes[i].code >= 0)
            fail_msg("%s is %d, not negative", codes[i].name, codes[i].code);
        for (size_t j = 0; j < i; j++)
            if (codes[i].code == codes[j].code)
                fail_msg("%s and %s are both %d", codes[i].name, codes[j].name,
                         codes[i].code);
    }
}

static void test_every_code_has_its_own_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        const char *t = tq_strerror(codes[i].code);
        assert_non_null(t);
        if (!*t || strcmp(t, "unknown error") == 0 || strcmp(t, "ok") == 0)
            fail_msg("%s has the text \"%s\"", codes[i].name, t);
        TQ_ASSERT_STR(t, codes[i].text);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t, tq_strerror(codes[j].code)) == 0)
                fail_msg("%s and %s share the text \"%s\"", codes[i].name, codes[j].name,
                         t);
    }
}

static void test_ok_text(void **state)
{
    (void)state;
    TQ_ASSERT_INT(TQ_OK, 0);
    TQ_ASSERT_STR(tq_strerror(TQ_OK), "ok");
}

static void test_unknown_codes(void **state)
{
    (void)state;
    int lowest = 0, highest = INT_MIN;
    for (size_t i = 0; i < NCODES; i++) {
        if (codes[i].code < lowest)
            lowest = codes[i].code;
        if (codes[i].code > highest)
            highest = codes[i].code;
    }
    const int unknown[] = {1, -1, 42, lowest - 1, highest + 1, INT_MIN, INT_MAX, -100000};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        int known = 0;
        for (size_t j = 0; j < NCODES; j++)
            known |= codes[j].code == unknown[i];
        if (known)
            continue; /* highest + 1 could be a real code if the list has gaps */
        TQ_ASSERT_STR(tq_strerror(unknown[i]), "unknown error");
    }
}

static void test_err_set(void **state)
{
    (void)state;
    char err[16];
    TQ_ASSERT_RC(tq_err_set(TQ_EDECODE, err, sizeof err, "field '%s': %d", "id", 7),
                 TQ_EDECODE);
    TQ_ASSERT_STR(err, "field 'id': 7");
    /* cut to the buffer, always NUL-terminated */
    TQ_ASSERT_RC(tq_err_set(TQ_ECONFIG, err, sizeof err, "%s", "a rather long sentence"),
                 TQ_ECONFIG);
    TQ_ASSERT_STR(err, "a rather long s");
    /* no buffer: only the code */
    TQ_ASSERT_RC(tq_err_set(TQ_EINVAL, NULL, 0, "ignored %d", 1), TQ_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_set),
        cmocka_unit_test(test_codes_are_negative_and_distinct),
        cmocka_unit_test(test_every_code_has_its_own_text),
        cmocka_unit_test(test_ok_text),
        cmocka_unit_test(test_unknown_codes),
    };
    return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
