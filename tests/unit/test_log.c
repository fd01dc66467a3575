/* Tests of common/log: level parsing, the text and json line formats (read
 * back from a captured stderr), escaping, truncation, and that arguments of
 * a filtered-out call are never evaluated. */
#include "tests/support/capture.h"
#include "tests/support/check.h"

#include <jansson.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int reset(void **state)
{
    (void)state;
    tq_log_init(TQ_LOG_INFO, TQ_LOG_TEXT, "tickq");
    return 0;
}

/* Runs fn with stderr captured; returns the new output string. */
#define CAPTURE(out, ...)                                                                \
    do {                                                                                 \
        tq_test_capture cap_;                                                            \
        assert_int_equal(tq_test_capture_start(&cap_, STDERR_FILENO), 0);                \
        __VA_ARGS__;                                                                     \
        (out) = tq_test_capture_stop(&cap_, NULL);                                       \
        assert_non_null(out);                                                            \
    } while (0)

static void assert_matches(const char *s, const char *pattern)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0)
        fail_msg("bad regex %s", pattern);
    rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("\"%s\" does not match /%s/", s, pattern);
}

/* Parses one json log line; fails the test if it is not one JSON object. */
static json_t *parse_line(const char *line)
{
    json_error_t je;
    if (tq_test_count_lines(line) != 1 || line[strlen(line) - 1] != '\n')
        fail_msg("not exactly one line: \"%s\"", line);
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o))
        fail_msg("not a JSON object (%s at %d): \"%s\"", je.text, je.position, line);
    return o;
}

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("key \"%s\" is not a string", key);
    return json_string_value(v);
}

/* Seconds between a "YYYY-MM-DDTHH:MM:SS.mmmZ" stamp and now. */
static double age_of(const char *ts)
{
    struct tm tm;
    int ms = 0;
    memset(&tm, 0, sizeof tm);
    if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        fail_msg("bad time stamp \"%s\"", ts);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + now.tv_nsec / 1e9 - ((double)timegm(&tm) + ms / 1000.0);
}

static void test_level_parse(void **state)
{
    (void)state;
    tq_log_level l = TQ_LOG_ERROR;
    const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        TQ_ASSERT_RC(tq_log_level_parse(names[i], &l), 0);
        TQ_ASSERT_INT(l, i);
    }
    TQ_ASSERT_RC(tq_log_level_parse("DEBUG", &l), 0);
    TQ_ASSERT_INT(l, TQ_LOG_DEBUG);
    TQ_ASSERT_RC(tq_log_level_parse("Warn", &l), 0);
    TQ_ASSERT_INT(l, TQ_LOG_WARN);

    const char *badnames[] = {"",      "warning", "fatal",  "info ",
                              " info", "inf",     "debug2", "3"};
    for (size_t i = 0; i < sizeof badnames / sizeof badnames[0]; i++) {
        l = TQ_LOG_WARN;
        TQ_ASSERT_RC(tq_log_level_parse(badnames[i], &l), TQ_EINVAL);
        TQ_ASSERT_INT(l, TQ_LOG_WARN); /* untouched on error */
    }
    TQ_ASSERT_INT(TQ_LOG_DEBUG < TQ_LOG_INFO && TQ_LOG_INFO < TQ_LOG_WARN &&
                      TQ_LOG_WARN < TQ_LOG_ERROR,
                  1);
}

static void test_text_format(void **state)
{
    (void)state;
    char *out;
    char pattern[256];
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_TEXT, "test");
    CAPTURE(out, tq_info("hello %d", 42));
    snprintf(pattern, sizeof pattern,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
             "info  test\\[%d\\] hello 42\n$",
             (int)getpid());
    assert_matches(out, pattern);
    double age = age_of(out);
    if (age < -1 || age > 5)
        fail_msg("time stamp is %.3f s off: %s", age, out);
    free(out);

    const char *names[] = {"debug", "info ", "warn ", "error"};
    for (int l = TQ_LOG_DEBUG; l <= TQ_LOG_ERROR; l++) {
        CAPTURE(out, tq_log((tq_log_level)l, "level %d", l));
        snprintf(pattern, sizeof pattern, "Z %s test\\[[0-9]+\\] level %d\n$", names[l],
                 l);
        assert_matches(out, pattern);
        TQ_ASSERT_INT(tq_test_count_lines(out), 1);
        free(out);
    }

    CAPTURE(out, tq_debug("d"); tq_info("i"); tq_warn("w"); tq_error("e"));
    TQ_ASSERT_INT(tq_test_count_lines(out), 4);
    free(out);
}

static void test_component(void **state)
{
    (void)state;
    char *out;
    tq_log_init(TQ_LOG_INFO, TQ_LOG_TEXT, "worker");
    CAPTURE(out, tq_warn("x"));
    TQ_ASSERT_CONTAINS(out, " warn  worker[");
    free(out);
    tq_log_init(TQ_LOG_INFO, TQ_LOG_JSON, "web");
    CAPTURE(out, tq_warn("x"));
    json_t *o = parse_line(out);
    TQ_ASSERT_STR(str_of(o, "component"), "web");
    json_decref(o);
    free(out);
}

static void test_json_format(void **state)
{
    (void)state;
    char *out;
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_JSON, "beat");
    CAPTURE(out, tq_warn("tick %s published in %d ms", "timer@1000", 3));
    json_t *o = parse_line(out);
    TQ_ASSERT_INT(json_object_size(o), 5);
    TQ_ASSERT_STR(str_of(o, "level"), "warn");
    TQ_ASSERT_STR(str_of(o, "component"), "beat");
    TQ_ASSERT_STR(str_of(o, "msg"), "tick timer@1000 published in 3 ms");
    json_t *pid = json_object_get(o, "pid");
    assert_true(json_is_integer(pid));
    TQ_ASSERT_INT(json_integer_value(pid), getpid());
    const char *ts = str_of(o, "ts");
    assert_matches(ts,
                   "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$");
    double age = age_of(ts);
    if (age < -1 || age > 5)
        fail_msg("time stamp is %.3f s off: %s", age, ts);
    json_decref(o);
    free(out);

    const char *names[] = {"debug", "info", "warn", "error"};
    for (int l = TQ_LOG_DEBUG; l <= TQ_LOG_ERROR; l++) {
        CAPTURE(out, tq_log((tq_log_level)l, "m"));
        o = parse_line(out);
        TQ_ASSERT_STR(str_of(o, "level"), names[l]);
        json_decref(o);
        free(out);
    }
}

static void test_json_escapes(void **state)
{
    (void)state;
    char *out;
    const char *msg =
        "say \"hi\" \\ back\nslash\ttab\r\x01\x1f\x7f caf\xc3\xa9 \xe2\x82\xac "
        "\xf0\x9f\x98\x80 </script>";
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_JSON, "test");
    CAPTURE(out, tq_info("%s", msg));
    json_t *o = parse_line(out);
    TQ_ASSERT_STR(str_of(o, "msg"), msg);
    json_decref(o);
    /* The raw line has no control character but its final newline. */
    for (const char *p = out; p[1]; p++)
        if ((unsigned char)*p < 0x20)
            fail_msg("raw control character 0x%02x in \"%s\"", *p, out);
    free(out);
}

static void test_json_invalid_utf8(void **state)
{
    (void)state;
    char *out;
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_JSON, "test");
    /* A stray continuation byte, a cut sequence, an overlong '/', a
     * surrogate and 0xff: none may make the line invalid JSON. */
    CAPTURE(out, tq_error("bad \x80 \xc3 \xc0\xaf \xed\xa0\x80 \xff end"));
    json_t *o = parse_line(out);
    const char *m = str_of(o, "msg");
    TQ_ASSERT_CONTAINS(m, "bad ");
    TQ_ASSERT_CONTAINS(m, " end");
    TQ_ASSERT_CONTAINS(m, "\xef\xbf\xbd"); /* U+FFFD */
    json_decref(o);
    free(out);
}

static void test_text_is_one_line(void **state)
{
    (void)state;
    char *out;
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_TEXT, "test");
    CAPTURE(out, tq_error("redis said: ERR x\r\nsecond line\nthird\x1b[31m"));
    if (tq_test_count_lines(out) != 1)
        fail_msg("a text event must be one line, got %zu: \"%s\"",
                 tq_test_count_lines(out), out);
    TQ_ASSERT_CONTAINS(out, "redis said: ERR x");
    TQ_ASSERT_CONTAINS(out, "third");
    TQ_ASSERT_NOT_CONTAINS(out, "\r");
    TQ_ASSERT_NOT_CONTAINS(out, "\x1b");
    free(out);
}

static void test_not_evaluated_below_level(void **state)
{
    (void)state;
    char *out;
    int counter = 0;
    tq_log_init(TQ_LOG_WARN, TQ_LOG_TEXT, "test");
    TQ_ASSERT_INT(tq_log_min, TQ_LOG_WARN);
    CAPTURE(out, tq_debug("%d", counter++); tq_info("%d", counter++);
            tq_log(TQ_LOG_INFO, "%d", counter++));
    TQ_ASSERT_INT(counter, 0);
    TQ_ASSERT_STR(out, "");
    free(out);

    CAPTURE(out, tq_warn("%d", counter++); tq_error("%d", counter++));
    TQ_ASSERT_INT(counter, 2);
    TQ_ASSERT_INT(tq_test_count_lines(out), 2);
    free(out);

    tq_log_init(TQ_LOG_ERROR, TQ_LOG_JSON, "test");
    CAPTURE(out, tq_warn("%d", counter++));
    TQ_ASSERT_INT(counter, 2);
    TQ_ASSERT_STR(out, "");
    free(out);
}

static void test_out_of_range_level(void **state)
{
    (void)state;
    char *out;
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_JSON, "test");
    CAPTURE(out, tq_log_write((tq_log_level)7, "x"));
    json_t *o = parse_line(out);
    TQ_ASSERT_STR(str_of(o, "level"), "error");
    json_decref(o);
    free(out);
}

static void test_long_message_text(void **state)
{
    (void)state;
    char *out;
    char *big = malloc(5001);
    assert_non_null(big);
    memset(big, 'x', 5000);
    big[5000] = '\0';
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_TEXT, "test");
    CAPTURE(out, tq_info("%s", big));
    TQ_ASSERT_INT(tq_test_count_lines(out), 1);
    size_t n = strlen(out);
    TQ_ASSERT_RANGE(n, TQ_LOG_LINE_MAX, 2 * TQ_LOG_LINE_MAX);
    if (strcmp(out + n - 5, "x...\n") != 0)
        fail_msg("a cut line ends with \"...\": \"%s\"", out + n - 5);
    free(out);
    free(big);
}

static void test_long_message_json(void **state)
{
    (void)state;
    char *out;
    char *big = malloc(5001);
    assert_non_null(big);
    tq_log_init(TQ_LOG_DEBUG, TQ_LOG_JSON, "test");

    memset(big, 'y', 5000);
    big[5000] = '\0';
    CAPTURE(out, tq_info("%s", big));
    json_t *o = parse_line(out);
    const char *m = str_of(o, "msg");
    TQ_ASSERT_INT(strlen(m), TQ_LOG_LINE_MAX - 1);
    TQ_ASSERT_STR(m + strlen(m) - 4, "y...");
    json_decref(o);
    free(out);

    /* Escapes take six bytes each: the line is cut between escapes and
     * stays valid JSON. */
    memset(big, '\x01', 5000);
    CAPTURE(out, tq_info("%s", big));
    o = parse_line(out);
    m = str_of(o, "msg");
    TQ_ASSERT_RANGE(strlen(m), 100, TQ_LOG_LINE_MAX - 1);
    json_decref(o);
    free(out);

    /* Quotes, escaped as two bytes, near the cut. */
    memset(big, '"', 5000);
    CAPTURE(out, tq_info("%s", big));
    o = parse_line(out);
    json_decref(o);
    free(out);

    /* A multi-byte character cut by the length limit. */
    for (int i = 0; i + 2 < 5000; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[4999] = '\0';
    CAPTURE(out, tq_info("a%s", big));
    o = parse_line(out);
    json_decref(o);
    free(out);
    free(big);
}

#define THREADS 4
#define LINES 200

static void *log_lines(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES; i++)
        tq_info("thread %d line %d %s", id, i, "padding padding padding padding padding");
    return NULL;
}

static void test_threads_do_not_interleave(void **state)
{
    (void)state;
    char *out;
    pthread_t t[THREADS];
    tq_log_init(TQ_LOG_INFO, TQ_LOG_TEXT, "test");
    tq_test_capture cap;
    assert_int_equal(tq_test_capture_start(&cap, STDERR_FILENO), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, log_lines, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    out = tq_test_capture_stop(&cap, NULL);
    assert_non_null(out);
    TQ_ASSERT_INT(tq_test_count_lines(out), THREADS * LINES);
    regex_t re;
    assert_int_equal(
        regcomp(&re,
                "^[0-9T:.-]+Z info  test\\[[0-9]+\\] thread [0-9] line [0-9]+ "
                "padding padding padding padding padding$",
                REG_EXTENDED | REG_NOSUB),
        0);
    for (char *line = out, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        if (regexec(&re, line, 0, NULL, 0) != 0) {
            regfree(&re);
            fail_msg("mangled line \"%s\"", line);
        }
    }
    regfree(&re);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_parse, reset, reset),
        cmocka_unit_test_setup_teardown(test_text_format, reset, reset),
        cmocka_unit_test_setup_teardown(test_component, reset, reset),
        cmocka_unit_test_setup_teardown(test_json_format, reset, reset),
        cmocka_unit_test_setup_teardown(test_json_escapes, reset, reset),
        cmocka_unit_test_setup_teardown(test_json_invalid_utf8, reset, reset),
        cmocka_unit_test_setup_teardown(test_text_is_one_line, reset, reset),
        cmocka_unit_test_setup_teardown(test_not_evaluated_below_level, reset, reset),
        cmocka_unit_test_setup_teardown(test_out_of_range_level, reset, reset),
        cmocka_unit_test_setup_teardown(test_long_message_text, reset, reset),
        cmocka_unit_test_setup_teardown(test_long_message_json, reset, reset),
        cmocka_unit_test_setup_teardown(test_threads_do_not_interleave, reset, reset),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
