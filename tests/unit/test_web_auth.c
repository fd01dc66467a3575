/* Tests of web/auth: the API token check (read-only without a token, 401
 * for a missing, malformed or wrong token, never the token in a sentence)
 * and loading the token from a file (first line, printable, bounded). */
#include "tests/support/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "web/auth.h"

#define TOKEN "s3cr3t-Token_value"

static void test_no_token_is_read_only(void **state)
{
    (void)state;
    char why[256];
    TQ_ASSERT_INT(web_auth_check("", "Bearer " TOKEN, why, sizeof why), 403);
    assert_non_null(strstr(why, "read-only"));
    TQ_ASSERT_INT(web_auth_check(NULL, NULL, why, sizeof why), 403);
}

static void test_missing_or_wrong_token_is_401(void **state)
{
    (void)state;
    char why[256];
    const char *refused[] = {NULL,
                             "",
                             TOKEN,
                             "Basic " TOKEN,
                             "Bearer",
                             "Bearer ",
                             "Bearer s3cr3t-Token_valu",
                             "Bearer s3cr3t-Token_value ",
                             "Bearer s3cr3t-Token_valueX",
                             "Bearer S3CR3T-TOKEN_VALUE"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        why[0] = '\0';
        int rc = web_auth_check(TOKEN, refused[i], why, sizeof why);
        if (rc != 401)
            fail_msg("'%s': expected 401, got %d", refused[i] ? refused[i] : "(none)",
                     rc);
        assert_null(strstr(why, TOKEN));
        assert_null(strstr(why, "s3cr3t"));
        assert_true(why[0] != '\0');
    }
}

static void test_right_token_passes(void **state)
{
    (void)state;
    char why[256];
    TQ_ASSERT_INT(web_auth_check(TOKEN, "Bearer " TOKEN, why, sizeof why), 0);
    TQ_ASSERT_INT(web_auth_check(TOKEN, "bearer " TOKEN, why, sizeof why), 0);
    TQ_ASSERT_INT(web_auth_check(TOKEN, "Bearer   " TOKEN, why, sizeof why), 0);
}

/* Writes text to a new temporary file; returns its path (static). */
static const char *file_with(const char *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_web_auth.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_true(write(fd, text, len) == (ssize_t)len);
    close(fd);
    return path;
}

static void test_load(void **state)
{
    (void)state;
    char token[WEB_AUTH_TOKEN_MAX], err[512];
    const char *p = file_with(TOKEN "\nsecond line\n", strlen(TOKEN) + 13);
    TQ_ASSERT_RC(web_auth_load(p, token, sizeof token, err, sizeof err), 0);
    assert_string_equal(token, TOKEN);
    unlink(p);
    p = file_with(TOKEN "\r\n", strlen(TOKEN) + 2);
    TQ_ASSERT_RC(web_auth_load(p, token, sizeof token, err, sizeof err), 0);
    assert_string_equal(token, TOKEN);
    unlink(p);
    p = file_with(TOKEN, strlen(TOKEN));
    TQ_ASSERT_RC(web_auth_load(p, token, sizeof token, err, sizeof err), 0);
    assert_string_equal(token, TOKEN);
    unlink(p);
    /* The longest token there is, with and without its line end. */
    static char longest[WEB_AUTH_TOKEN_MAX];
    memset(longest, 'x', sizeof longest);
    longest[WEB_AUTH_TOKEN_MAX - 1] = '\n';
    for (size_t len = WEB_AUTH_TOKEN_MAX - 1; len <= WEB_AUTH_TOKEN_MAX; len++) {
        p = file_with(longest, len);
        TQ_ASSERT_RC(web_auth_load(p, token, sizeof token, err, sizeof err), 0);
        assert_int_equal(strlen(token), WEB_AUTH_TOKEN_MAX - 1);
        unlink(p);
    }
}

static void test_load_refuses(void **state)
{
    (void)state;
    char token[WEB_AUTH_TOKEN_MAX], err[512];
    static char big[WEB_AUTH_TOKEN_MAX + 10];
    memset(big, 'a', sizeof big);
    struct {
        const char *text;
        size_t len;
        const char *says;
    } cases[] = {
        {"", 0, "empty"},
        {"\nsecret\n", 8, "empty"},
        {"has space\n", 10, "printable"},
        {"tab\there\n", 9, "printable"},
        {"nul\0here\n", 9, "printable"},
        {big, sizeof big, "longer than"},
        {big, WEB_AUTH_TOKEN_MAX, "too long"},
        {big, WEB_AUTH_TOKEN_MAX + 1, "longer than"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = file_with(cases[i].text, cases[i].len);
        err[0] = '\0';
        TQ_ASSERT_RC(web_auth_load(p, token, sizeof token, err, sizeof err), TQ_ECONFIG);
        if (!strstr(err, cases[i].says))
            fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].says);
        assert_null(strstr(err, "secret"));
        assert_null(strstr(err, "here"));
        unlink(p);
    }
    TQ_ASSERT_RC(
        web_auth_load("/nonexistent/token", token, sizeof token, err, sizeof err),
        TQ_ECONFIG);
    assert_non_null(strstr(err, "/nonexistent/token"));
    TQ_ASSERT_RC(web_auth_load("/tmp", token, sizeof token, err, sizeof err), TQ_ECONFIG);
    assert_non_null(strstr(err, "cannot read"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_token_is_read_only),
        cmocka_unit_test(test_missing_or_wrong_token_is_401),
        cmocka_unit_test(test_right_token_passes),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_load_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
