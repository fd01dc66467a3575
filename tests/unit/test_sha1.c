/* Tests of common/sha1: the FIPS 180 examples and the padding boundaries
 * (a message that leaves 55, 56, 63, 64 bytes in its last block). Reference
 * digests were computed with Python's hashlib. */
#include "tests/support/check.h"

#include <stdlib.h>

#include "common/sha1.h"

static void check(const void *data, size_t len, const char *want)
{
    char hex[41];
    memset(hex, 'X', sizeof hex);
    tq_sha1_hex(data, len, hex);
    if (hex[40] != '\0')
        fail_msg("sha1 of %zu bytes: hex[40] is not NUL", len);
    if (strcmp(hex, want) != 0)
        fail_msg("sha1 of %zu bytes: expected %s, got %s", len, want, hex);
}

static void test_fips_vectors(void **state)
{
    (void)state;
    check("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
          "pqklmn"
          "opqrlmnopqrsmnopqrstnopqrstu",
          112, "a49b2446a02c645bf419f995b67091253a04a259");
    check("The quick brown fox jumps over the lazy dog", 43,
          "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

static void test_million_a(void **state)
{
    (void)state;
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    check(a, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(a);
}

/* Bytes (i * 31 + 7) mod 256 for i < len. */
static const struct {
    size_t len;
    const char *sha;
} boundaries[] = {
    {55, "749bbefb28edc4638b28b2b9a9e03ab9a4032b90"},
    {56, "a5b6e9c29d201c774753ff8e7fb64931656f5e63"},
    {57, "eb0737bed5451790722b2df351829ce117e3d9dd"},
    {63, "d1a454409359fc372b4d22b3cea6488d6ba1be00"},
    {64, "39a0d8b645ad85f1f976731ed112ac9455e28b78"},
    {65, "d0c96e18890114a14716e9686528d2e3fdba8d9e"},
    {119, "562ecf8a430f8e1056e3619bae33628e9a1d0a4e"},
    {120, "353f6d2bf0e91aa91b74a2e0b3f297510f7d825f"},
    {127, "bebc42d2d3d1e5fb8ad8895c2dcef2d68a6c279a"},
    {128, "0060f2a7e34b6e4d459f560197ef93243732a400"},
    {129, "3a16082d1bf09b604907ec6908b9893ca3e937c0"},
};

static void test_block_boundaries(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof boundaries / sizeof boundaries[0]; i++) {
        size_t len = boundaries[i].len;
        /* An exact-size heap buffer, so ASan sees any read past the end. */
        unsigned char *data = malloc(len);
        assert_non_null(data);
        for (size_t j = 0; j < len; j++)
            data[j] = (unsigned char)(j * 31 + 7);
        check(data, len, boundaries[i].sha);
        free(data);
    }
}

static void test_lowercase_hex(void **state)
{
    (void)state;
    char hex[41];
    tq_sha1_hex("tickq", 5, hex);
    TQ_ASSERT_INT(strlen(hex), 40);
    for (int i = 0; i < 40; i++)
        if (!strchr("0123456789abcdef", hex[i]))
            fail_msg("\"%s\" has '%c' at %d", hex, hex[i], i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_block_boundaries),
        cmocka_unit_test(test_lowercase_hex),
    };
    return cmocka_run_group_tests_name("sha1", tests, NULL, NULL);
}
