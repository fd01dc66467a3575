/* Tests of common/utf8: valid sequences of each length, and every kind of
 * invalid one (stray continuation, overlong, surrogate, past U+10FFFF,
 * truncated). */
#include "tests/support/check.h"

#include "common/utf8.h"

#define SEQ(lit) tq_utf8_seq((const unsigned char *)(lit), sizeof(lit) - 1)

static void test_valid(void **state)
{
    (void)state;
    TQ_ASSERT_INT(SEQ("a"), 1);
    TQ_ASSERT_INT(tq_utf8_seq((const unsigned char *)"", 1), 1); /* NUL */
    TQ_ASSERT_INT(SEQ("\xc3\xa9"), 2);                           /* U+00E9 */
    TQ_ASSERT_INT(SEQ("\xe2\x82\xac"), 3);                       /* U+20AC */
    TQ_ASSERT_INT(SEQ("\xef\xbf\xbd"), 3);                       /* U+FFFD */
    TQ_ASSERT_INT(SEQ("\xf0\x9f\x98\x80"), 4);                   /* U+1F600 */
    TQ_ASSERT_INT(SEQ("\xf4\x8f\xbf\xbf"), 4);                   /* U+10FFFF */
    TQ_ASSERT_INT(SEQ("\xc3\xa9xyz"), 2); /* only the first sequence */
}

static void test_invalid(void **state)
{
    (void)state;
    TQ_ASSERT_INT(SEQ("\x80"), 0);             /* stray continuation */
    TQ_ASSERT_INT(SEQ("\xc0\xaf"), 0);         /* overlong '/' */
    TQ_ASSERT_INT(SEQ("\xe0\x80\xaf"), 0);     /* overlong, 3 bytes */
    TQ_ASSERT_INT(SEQ("\xf0\x80\x80\xaf"), 0); /* overlong, 4 bytes */
    TQ_ASSERT_INT(SEQ("\xed\xa0\x80"), 0);     /* surrogate U+D800 */
    TQ_ASSERT_INT(SEQ("\xf4\x90\x80\x80"), 0); /* U+110000 */
    TQ_ASSERT_INT(SEQ("\xf5\x80\x80\x80"), 0);
    TQ_ASSERT_INT(SEQ("\xff"), 0);
    TQ_ASSERT_INT(SEQ("\xe2\x82"), 0);  /* truncated by n */
    TQ_ASSERT_INT(SEQ("\xe2\x82x"), 0); /* bad continuation */
    TQ_ASSERT_INT(SEQ("\xc3"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
