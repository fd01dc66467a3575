/* Tests of common/msg: decoding the protocol v1 message (DESIGN.md), the
 * defaults, unknown fields, the exact encoded bytes, shortest floats, every
 * decode error (each must name its field), the size limit, and dead
 * letters for any bytes at all. */
#include "tests/support/check.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/msg.h"

/* The example message of DESIGN.md, verbatim. */
static const char design_example[] =
    "{\"v\":1,\"id\":\"timer@1764096000000\",\"task\":\"timer.tick\",\"queue\":"
    "\"default\",\n"
    " \"args\":[],\"kwargs\":{},\"schedule\":\"timer\",\"scheduled_at\":1764096000.000,\n"
    " \"enqueued_at\":1764096000.001,\"expires_at\":1764096030.0,\n"
    " \"attempt\":1,\"max_retries\":3,\"timeout\":30}";

static void decode_ok(tq_msg *m, const char *json)
{
    char err[512] = "";
    int rc = tq_msg_decode(m, json, strlen(json), err, sizeof err);
    if (rc != 0)
        fail_msg("decode %s: %d (%s): %s", json, rc, tq_strerror(rc), err);
}

/* Expects decode to fail with rc and an error that contains needle, and
 * the message to be left holding nothing. */
static void decode_bad_len(const char *buf, size_t len, int want, const char *needle)
{
    tq_msg m;
    char err[512] = "";
    memset(&m, 0xa5, sizeof m); /* whatever the caller's stack held */
    int rc = tq_msg_decode(&m, buf, len, err, sizeof err);
    if (rc != want)
        fail_msg("decode %.200s: expected %d (%s), got %d (%s); err \"%s\"", buf, want,
                 tq_strerror(want), rc, tq_strerror(rc), err);
    if (needle && !strstr(err, needle))
        fail_msg("decode %.200s: error \"%s\" does not name \"%s\"", buf, err, needle);
    if (m.args || m.kwargs || m.extra)
        fail_msg("decode %.200s: a failed decode left owned fields", buf);
    tq_msg_deinit(&m); /* safe after a failed decode */
}

static void decode_bad(const char *json, const char *needle)
{
    decode_bad_len(json, strlen(json), TQ_EDECODE, needle);
}

static void assert_msg_equal(const tq_msg *a, const tq_msg *b)
{
    TQ_ASSERT_STR(a->id, b->id);
    TQ_ASSERT_STR(a->task, b->task);
    TQ_ASSERT_STR(a->queue, b->queue);
    TQ_ASSERT_STR(a->schedule, b->schedule);
    TQ_ASSERT_DOUBLE(a->scheduled_at, b->scheduled_at, 0);
    TQ_ASSERT_DOUBLE(a->enqueued_at, b->enqueued_at, 0);
    TQ_ASSERT_DOUBLE(a->expires_at, b->expires_at, 0);
    TQ_ASSERT_INT(a->attempt, b->attempt);
    TQ_ASSERT_INT(a->max_retries, b->max_retries);
    TQ_ASSERT_DOUBLE(a->timeout, b->timeout, 0);
    assert_true(json_equal(a->args, b->args));
    assert_true(json_equal(a->kwargs, b->kwargs));
    assert_true(json_equal(a->extra, b->extra));
}

/* Encodes, checks the length, decodes back and compares. */
static void round_trip(const tq_msg *m)
{
    size_t len = 0;
    char *s = tq_msg_encode(m, &len);
    assert_non_null(s);
    TQ_ASSERT_INT(len, strlen(s));
    tq_msg back;
    decode_ok(&back, s);
    assert_msg_equal(m, &back);
    /* And the second encoding is byte for byte the first. */
    size_t len2 = 0;
    char *s2 = tq_msg_encode(&back, &len2);
    assert_non_null(s2);
    TQ_ASSERT_STR(s2, s);
    free(s2);
    tq_msg_deinit(&back);
    free(s);
}

static char *dump(json_t *v)
{
    size_t len = 0;
    char *s = tq_msg_dump_json(v, &len);
    assert_non_null(s);
    TQ_ASSERT_INT(len, strlen(s));
    json_decref(v);
    return s;
}

/* ---- decoding ---- */

static void test_decode_design_example(void **state)
{
    (void)state;
    tq_msg m;
    decode_ok(&m, design_example);
    TQ_ASSERT_STR(m.id, "timer@1764096000000");
    TQ_ASSERT_STR(m.task, "timer.tick");
    TQ_ASSERT_STR(m.queue, "default");
    TQ_ASSERT_STR(m.schedule, "timer");
    assert_true(json_is_array(m.args));
    TQ_ASSERT_INT(json_array_size(m.args), 0);
    assert_true(json_is_object(m.kwargs));
    TQ_ASSERT_INT(json_object_size(m.kwargs), 0);
    TQ_ASSERT_DOUBLE(m.scheduled_at, 1764096000.0, 0);
    TQ_ASSERT_DOUBLE(m.enqueued_at, 1764096000.001, 0);
    TQ_ASSERT_DOUBLE(m.expires_at, 1764096030.0, 0);
    TQ_ASSERT_INT(m.attempt, 1);
    TQ_ASSERT_INT(m.max_retries, 3);
    TQ_ASSERT_DOUBLE(m.timeout, 30, 0);
    TQ_ASSERT_INT(json_object_size(m.extra), 0);
    round_trip(&m);
    tq_msg_deinit(&m);
}

static void test_defaults(void **state)
{
    (void)state;
    tq_msg m;
    decode_ok(&m, "{\"v\":1,\"id\":\"x\",\"task\":\"t\"}");
    TQ_ASSERT_STR(m.id, "x");
    TQ_ASSERT_STR(m.task, "t");
    TQ_ASSERT_STR(m.queue, "default");
    TQ_ASSERT_STR(m.schedule, "");
    TQ_ASSERT_INT(json_array_size(m.args), 0);
    assert_true(json_is_array(m.args));
    assert_true(json_is_object(m.kwargs));
    TQ_ASSERT_INT(json_object_size(m.kwargs), 0);
    TQ_ASSERT_DOUBLE(m.scheduled_at, 0, 0);
    TQ_ASSERT_DOUBLE(m.enqueued_at, 0, 0);
    TQ_ASSERT_DOUBLE(m.expires_at, 0, 0);
    TQ_ASSERT_INT(m.attempt, 1);
    TQ_ASSERT_INT(m.max_retries, -1);
    TQ_ASSERT_DOUBLE(m.timeout, 0, 0);
    TQ_ASSERT_INT(json_object_size(m.extra), 0);
    round_trip(&m);
    tq_msg_deinit(&m);

    /* null is the same as absent where the protocol allows it. */
    decode_ok(
        &m, "{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"schedule\":null,\"max_retries\":null,"
            "\"timeout\":null,\"scheduled_at\":null,\"enqueued_at\":null,"
            "\"expires_at\":null}");
    TQ_ASSERT_STR(m.schedule, "");
    TQ_ASSERT_INT(m.max_retries, -1);
    TQ_ASSERT_DOUBLE(m.timeout, 0, 0);
    TQ_ASSERT_DOUBLE(m.scheduled_at, 0, 0);
    TQ_ASSERT_DOUBLE(m.expires_at, 0, 0);
    TQ_ASSERT_INT(json_object_size(m.extra), 0);
    tq_msg_deinit(&m);
}

static void test_init_deinit(void **state)
{
    (void)state;
    tq_msg m;
    TQ_ASSERT_RC(tq_msg_init(&m), 0);
    TQ_ASSERT_STR(m.queue, "default");
    TQ_ASSERT_INT(m.attempt, 1);
    TQ_ASSERT_INT(m.max_retries, -1);
    assert_true(json_is_array(m.args));
    assert_true(json_is_object(m.kwargs));
    assert_true(json_is_object(m.extra));
    tq_msg_deinit(&m);
    tq_msg_deinit(&m); /* safe twice */
    assert_null(m.args);
}

static void test_all_fields_and_types(void **state)
{
    (void)state;
    tq_msg m;
    decode_ok(&m, "{\"task\":\"t\\u00e9\",\"id\":\"r\\u00e9sum\\u00e9@1\",\"v\":1,"
                  "\"queue\":\"hi.prio:1-x_y\",\"args\":[1,2.5,\"s\",null,true,[],{}],"
                  "\"kwargs\":{\"k\":{\"n\":[1]}},\"attempt\":4,\"max_retries\":0,"
                  "\"timeout\":0.25,\"scheduled_at\":0,\"enqueued_at\":1,"
                  "\"expires_at\":2.5}");
    TQ_ASSERT_STR(m.id, "r\xc3\xa9sum\xc3\xa9@1");
    TQ_ASSERT_STR(m.task, "t\xc3\xa9");
    TQ_ASSERT_STR(m.queue, "hi.prio:1-x_y");
    TQ_ASSERT_INT(json_array_size(m.args), 7);
    TQ_ASSERT_INT(m.attempt, 4);
    TQ_ASSERT_INT(m.max_retries, 0);
    TQ_ASSERT_DOUBLE(m.timeout, 0.25, 0);
    TQ_ASSERT_DOUBLE(m.enqueued_at, 1, 0);
    TQ_ASSERT_DOUBLE(m.expires_at, 2.5, 0);
    round_trip(&m);
    tq_msg_deinit(&m);

    /* The longest id (256 bytes), task (128) and queue (64) fit. */
    char json[1024], id[257], task[129], queue[65];
    memset(id, 'i', 256);
    id[256] = '\0';
    memset(task, 't', 128);
    task[128] = '\0';
    memset(queue, 'q', 64);
    queue[64] = '\0';
    snprintf(json, sizeof json,
             "{\"v\":1,\"id\":\"%s\",\"task\":\"%s\",\"queue\":\"%s\"}", id, task, queue);
    decode_ok(&m, json);
    TQ_ASSERT_STR(m.id, id);
    TQ_ASSERT_STR(m.task, task);
    TQ_ASSERT_STR(m.queue, queue);
    round_trip(&m);
    tq_msg_deinit(&m);
}

static void test_unknown_fields_kept(void **state)
{
    (void)state;
    tq_msg m;
    decode_ok(&m, "{\"v\":1,\"zeta\":{\"a\":[1,2.5,\"s\"]},\"id\":\"x\",\"task\":\"t\","
                  "\"alpha\":null,\"priority\":7,\"eta\":1764096000.25,\"flag\":false,"
                  "\"note\":\"caf\\u00e9 \\\"q\\\"\"}");
    TQ_ASSERT_INT(json_object_size(m.extra), 6);
    assert_true(json_is_object(json_object_get(m.extra, "zeta")));
    assert_true(json_is_null(json_object_get(m.extra, "alpha")));
    TQ_ASSERT_INT(json_integer_value(json_object_get(m.extra, "priority")), 7);
    TQ_ASSERT_DOUBLE(json_real_value(json_object_get(m.extra, "eta")), 1764096000.25, 0);
    round_trip(&m);

    /* Unknown fields come after the known ones, in their original order. */
    char *s = tq_msg_encode(&m, NULL);
    assert_non_null(s);
    TQ_ASSERT_CONTAINS(s, "\"attempt\":1,\"zeta\":{\"a\":[1,2.5,\"s\"]},\"alpha\":null,"
                          "\"priority\":7,\"eta\":1764096000.25,\"flag\":false,"
                          "\"note\":\"caf\xc3\xa9 \\\"q\\\"\"}");
    free(s);
    tq_msg_deinit(&m);
}

/* ---- encoding ---- */

static void test_encode_exact_bytes(void **state)
{
    (void)state;
    tq_msg m;
    size_t len = 0;
    TQ_ASSERT_RC(tq_msg_init(&m), 0);
    strcpy(m.id, "a@1");
    strcpy(m.task, "t");
    char *s = tq_msg_encode(&m, &len);
    TQ_ASSERT_STR(
        s, "{\"v\":1,\"id\":\"a@1\",\"task\":\"t\",\"queue\":\"default\",\"args\":[],"
           "\"kwargs\":{},\"attempt\":1}");
    TQ_ASSERT_INT(len, strlen(s));
    free(s);
    tq_msg_deinit(&m);

    /* Every field, given in a scrambled order: the output order is fixed. */
    decode_ok(
        &m, "{\"z\":0.1,\"timeout\":30,\"max_retries\":3,\"attempt\":2,"
            "\"expires_at\":1764096030,\"enqueued_at\":1764096000.001,"
            "\"scheduled_at\":1764096000.0,\"schedule\":\"s\",\"kwargs\":{\"k\":true},"
            "\"args\":[1,\"x\"],\"queue\":\"q\",\"task\":\"t\",\"id\":\"a@1\",\"v\":1}");
    s = tq_msg_encode(&m, &len);
    TQ_ASSERT_STR(
        s, "{\"v\":1,\"id\":\"a@1\",\"task\":\"t\",\"queue\":\"q\",\"args\":[1,\"x\"],"
           "\"kwargs\":{\"k\":true},\"schedule\":\"s\","
           "\"scheduled_at\":1764096000.000,\"enqueued_at\":1764096000.001,"
           "\"expires_at\":1764096030.000,\"attempt\":2,\"max_retries\":3,"
           "\"timeout\":30.0,\"z\":0.1}");
    TQ_ASSERT_INT(len, strlen(s));
    free(s);
    tq_msg_deinit(&m);
}

static void test_encode_escapes_strings(void **state)
{
    (void)state;
    tq_msg m;
    TQ_ASSERT_RC(tq_msg_init(&m), 0);
    strcpy(m.id, "q\"b\\s/\xc3\xa9");
    strcpy(m.task, "t");
    char *s = tq_msg_encode(&m, NULL);
    TQ_ASSERT_CONTAINS(s, "\"id\":\"q\\\"b\\\\s/\xc3\xa9\"");
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    assert_non_null(o);
    TQ_ASSERT_STR(json_string_value(json_object_get(o, "id")), m.id);
    json_decref(o);
    free(s);
    tq_msg_deinit(&m);
}

static void test_encode_too_big(void **state)
{
    (void)state;
    tq_msg m;
    TQ_ASSERT_RC(tq_msg_init(&m), 0);
    strcpy(m.id, "big");
    strcpy(m.task, "t");
    char *pad = malloc(TQ_MSG_MAX + 1);
    assert_non_null(pad);
    memset(pad, 'p', TQ_MSG_MAX);
    pad[TQ_MSG_MAX] = '\0';
    json_array_append_new(m.args, json_string(pad));
    size_t len = 12345;
    assert_null(tq_msg_encode(&m, &len));
    TQ_ASSERT_INT(len, 12345); /* untouched */
    free(pad);
    tq_msg_deinit(&m);
}

static void test_floats_shortest(void **state)
{
    (void)state;
    const struct {
        double v;
        const char *s;
    } cases[] = {
        {0.1, "0.1"},
        {1764096000.001, "1764096000.001"},
        {1764096000.25, "1764096000.25"},
        {1.0, "1.0"},
        {30.0, "30.0"},
        {-0.5, "-0.5"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3, "0.3333333333333333"},
        {1e300, "1e+300"},
        {2.5e-7, "2.5e-07"},
        {123456789.123, "123456789.123"},
        {1e15, "1e+15"},
        {0.0, "0.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = dump(json_real(cases[i].v));
        if (strcmp(s, cases[i].s) != 0)
            fail_msg("%.17g: expected \"%s\", got \"%s\"", cases[i].v, cases[i].s, s);
        free(s);
    }
}

static void test_floats_read_back_exactly(void **state)
{
    (void)state;
    /* Many doubles of every magnitude: the text reads back to the same bits
     * and reads back as a real (not an integer). */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        uint64_t bits = x;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v))
            continue;
        char *s = dump(json_real(v));
        char *end;
        double back = strtod(s, &end);
        if (*end || memcmp(&back, &v, sizeof v) != 0)
            fail_msg("%.17g was written as \"%s\"", v, s);
        if (strlen(s) > 24)
            fail_msg("%.17g was written as \"%s\": too long", v, s);
        json_error_t je;
        json_t *j = json_loads(s, JSON_DECODE_ANY, &je);
        if (!json_is_real(j))
            fail_msg("\"%s\" does not read back as a JSON real", s);
        json_decref(j);
        free(s);
    }
}

static void test_dump_json_values(void **state)
{
    (void)state;
    char *s = dump(json_pack("{s:[i,{s:n}],s:b,s:I}", "a", 1, "b", "c", 0, "big",
                             (json_int_t)9007199254740993LL));
    TQ_ASSERT_STR(s, "{\"a\":[1,{\"b\":null}],\"c\":false,\"big\":9007199254740993}");
    free(s);
    s = dump(json_integer(-42));
    TQ_ASSERT_STR(s, "-42");
    free(s);
    s = dump(json_string("a\"b\\c\n\x01\x1f\x7f/\xc3\xa9"));
    TQ_ASSERT_STR(s, "\"a\\\"b\\\\c\\n\\u0001\\u001f\x7f/\xc3\xa9\"");
    free(s);
    /* The short escapes JSON has, for readable output in redis-cli. */
    s = dump(json_string("\t\r\b\f"));
    TQ_ASSERT_STR(s, "\"\\t\\r\\b\\f\"");
    free(s);
    /* A string that is not UTF-8 (jansson's _nocheck) still dumps as JSON. */
    s = dump(json_stringn_nocheck("x\xff\xc3y", 4));
    TQ_ASSERT_STR(s, "\"x\\ufffd\\ufffdy\"");
    free(s);
    /* An embedded NUL is escaped, not a cut. */
    s = dump(json_stringn("a\0b", 3));
    TQ_ASSERT_STR(s, "\"a\\u0000b\"");
    free(s);
    s = dump(json_array());
    TQ_ASSERT_STR(s, "[]");
    free(s);
    s = dump(json_true());
    TQ_ASSERT_STR(s, "true");
    free(s);
}

/* ---- errors ---- */

static void test_errors_not_a_message(void **state)
{
    (void)state;
    decode_bad("not json", "JSON");
    decode_bad("", "JSON");
    decode_bad("{", "JSON");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\"} trailing", "JSON");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",}", "JSON");
    decode_bad("[1,2]", "object");
    decode_bad("[]", "object");
    decode_bad("\"str\"", "JSON");
    decode_bad("42", "JSON");
    decode_bad("null", "JSON");
    /* Invalid UTF-8 and raw NUL bytes are not JSON. */
    decode_bad("{\"v\":1,\"id\":\"\xff\",\"task\":\"t\"}", "JSON");
    static const char with_nul[] = "{\"v\":1,\"id\":\"a\0b\",\"task\":\"t\"}";
    decode_bad_len(with_nul, sizeof with_nul - 1, TQ_EDECODE, "JSON");
    decode_bad("{\"v\":1,\"id\":\"a\\u0000b\",\"task\":\"t\"}", NULL);
    /* The JSON error names the byte position. */
    decode_bad("{\"v\":1,\"id\":x}", "byte");
}

static void test_errors_required(void **state)
{
    (void)state;
    decode_bad("{}", "'v'");
    decode_bad("{\"id\":\"x\",\"task\":\"t\"}", "field 'v'");
    decode_bad("{\"v\":1,\"task\":\"t\"}", "field 'id'");
    decode_bad("{\"v\":1,\"id\":\"x\"}", "field 'task'");
    decode_bad("{\"v\":1,\"id\":\"x\"}", "missing");
}

static void test_errors_version(void **state)
{
    (void)state;
    decode_bad("{\"v\":2,\"id\":\"x\",\"task\":\"t\"}", "field 'v'");
    decode_bad("{\"v\":0,\"id\":\"x\",\"task\":\"t\"}", "field 'v'");
    decode_bad("{\"v\":\"1\",\"id\":\"x\",\"task\":\"t\"}", "field 'v'");
    decode_bad("{\"v\":1.0,\"id\":\"x\",\"task\":\"t\"}", "field 'v'");
    decode_bad("{\"v\":null,\"id\":\"x\",\"task\":\"t\"}", "field 'v'");
}

static void test_errors_id_task(void **state)
{
    (void)state;
    char json[1024], id[258];
    memset(id, 'i', 257);
    id[257] = '\0';
    snprintf(json, sizeof json, "{\"v\":1,\"id\":\"%s\",\"task\":\"t\"}", id);
    decode_bad(json, "field 'id'");
    decode_bad("{\"v\":1,\"id\":\"\",\"task\":\"t\"}", "field 'id'");
    decode_bad("{\"v\":1,\"id\":\"a\\u0001b\",\"task\":\"t\"}", "field 'id'");
    decode_bad("{\"v\":1,\"id\":\"a\\nb\",\"task\":\"t\"}", "field 'id'");
    decode_bad("{\"v\":1,\"id\":\"a\\u007fb\",\"task\":\"t\"}", "field 'id'");
    decode_bad("{\"v\":1,\"id\":7,\"task\":\"t\"}", "field 'id'");
    decode_bad("{\"v\":1,\"id\":null,\"task\":\"t\"}", "field 'id'");

    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":42}", "field 'task'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":[\"t\"]}", "field 'task'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"\"}", "field 'task'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"a\\tb\"}", "field 'task'");
    char task[130];
    memset(task, 't', 129);
    task[129] = '\0';
    snprintf(json, sizeof json, "{\"v\":1,\"id\":\"x\",\"task\":\"%s\"}", task);
    decode_bad(json, "field 'task'");
}

static void test_errors_queue_schedule(void **state)
{
    (void)state;
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"queue\":\"a b\"}",
               "field 'queue'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"queue\":\"a/b\"}",
               "field 'queue'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"queue\":\"\"}", "field 'queue'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"queue\":\"caf\\u00e9\"}",
               "field 'queue'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"queue\":5}", "field 'queue'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"queue\":null}", "field 'queue'");
    char json[256], q[66];
    memset(q, 'q', 65);
    q[65] = '\0';
    snprintf(json, sizeof json, "{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"queue\":\"%s\"}",
             q);
    decode_bad(json, "field 'queue'");

    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"schedule\":5}",
               "field 'schedule'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"schedule\":\"a\\u0002\"}",
               "field 'schedule'");
}

static void test_errors_args_kwargs(void **state)
{
    (void)state;
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"args\":{}}", "field 'args'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"args\":\"a\"}", "field 'args'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"args\":null}", "field 'args'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"kwargs\":[]}", "field 'kwargs'");
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"kwargs\":1}", "field 'kwargs'");
    /* An error after args and kwargs were taken frees them (ASan checks). */
    decode_bad("{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"args\":[1],\"kwargs\":{\"a\":[2]},"
               "\"extra\":{\"b\":3},\"attempt\":0}",
               "field 'attempt'");
}

static void test_errors_numbers(void **state)
{
    (void)state;
    const char *head = "{\"v\":1,\"id\":\"x\",\"task\":\"t\",";
    const struct {
        const char *tail;
        const char *field;
    } cases[] = {
        {"\"attempt\":0}", "field 'attempt'"},
        {"\"attempt\":-1}", "field 'attempt'"},
        {"\"attempt\":1.5}", "field 'attempt'"},
        {"\"attempt\":\"1\"}", "field 'attempt'"},
        {"\"attempt\":null}", "field 'attempt'"},
        {"\"attempt\":99999999999}", "field 'attempt'"},
        {"\"max_retries\":-1}", "field 'max_retries'"},
        {"\"max_retries\":1.5}", "field 'max_retries'"},
        {"\"max_retries\":\"3\"}", "field 'max_retries'"},
        {"\"max_retries\":1000001}", "field 'max_retries'"},
        {"\"timeout\":0}", "field 'timeout'"},
        {"\"timeout\":0.0}", "field 'timeout'"},
        {"\"timeout\":-1}", "field 'timeout'"},
        {"\"timeout\":-0.5}", "field 'timeout'"},
        {"\"timeout\":\"30\"}", "field 'timeout'"},
        {"\"timeout\":31536001}", "field 'timeout'"},
        {"\"timeout\":true}", "field 'timeout'"},
        {"\"scheduled_at\":-1}", "field 'scheduled_at'"},
        {"\"scheduled_at\":-0.001}", "field 'scheduled_at'"},
        {"\"scheduled_at\":\"1764096000\"}", "field 'scheduled_at'"},
        {"\"scheduled_at\":[]}", "field 'scheduled_at'"},
        {"\"enqueued_at\":-5}", "field 'enqueued_at'"},
        {"\"enqueued_at\":false}", "field 'enqueued_at'"},
        {"\"expires_at\":-1e10}", "field 'expires_at'"},
        {"\"expires_at\":{}}", "field 'expires_at'"},
        /* Out of the documented ranges (docs/PROTOCOL.md): issue 8, 4 and 5. */
        {"\"expires_at\":1e300}", "field 'expires_at'"},
        {"\"scheduled_at\":253402300800}", "field 'scheduled_at'"},
        {"\"enqueued_at\":1e20}", "field 'enqueued_at'"},
        {"\"timeout\":1e300}", "field 'timeout'"},
        {"\"timeout\":31536000.000001}", "field 'timeout'"},
        {"\"attempt\":1000002}", "field 'attempt'"},
    };
    char json[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(json, sizeof json, "%s%s", head, cases[i].tail);
        decode_bad(json, cases[i].field);
    }
    /* The bounds themselves are fine. */
    tq_msg m;
    decode_ok(&m, "{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"attempt\":1000000,"
                  "\"max_retries\":1000000,\"timeout\":31536000,\"scheduled_at\":0}");
    TQ_ASSERT_INT(m.attempt, 1000000);
    TQ_ASSERT_INT(m.max_retries, 1000000);
    TQ_ASSERT_DOUBLE(m.timeout, 31536000, 0);
    tq_msg_deinit(&m);
    decode_ok(&m, "{\"v\":1,\"id\":\"x\",\"task\":\"t\","
                  "\"scheduled_at\":253402300799.999,\"enqueued_at\":253402300799,"
                  "\"expires_at\":253402300799.9999}");
    TQ_ASSERT_DOUBLE(m.scheduled_at, 253402300799.999, 0);
    round_trip(&m);
    tq_msg_deinit(&m);
}

/* Issue 8, defect 4: a large value the decoder accepted was cut at 63 bytes
 * when encoded, so a retry was invalid JSON. Now such values are refused
 * with the range in the error, and what is accepted comes back exactly. */
static void test_errors_name_the_range(void **state)
{
    (void)state;
    const char *head = "{\"v\":1,\"id\":\"x\",\"task\":\"t\",";
    const struct {
        const char *tail;
        const char *needle;
    } cases[] = {
        {"\"expires_at\":1e300}", "field 'expires_at': must be null or a number of Unix "
                                  "seconds from 0 to 253402300799.999"},
        {"\"scheduled_at\":-1}", "(years 1970 to 9999)"},
        {"\"timeout\":1e300}", "field 'timeout': must be null or a number of seconds > 0 "
                               "and <= 31536000"},
        {"\"attempt\":0}", "field 'attempt': must be a whole number from 1 to 1000001"},
        {"\"max_retries\":-2}", "field 'max_retries': must be a whole number from 0 to "
                                "1000000"},
    };
    char json[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(json, sizeof json, "%s%s", head, cases[i].tail);
        decode_bad(json, cases[i].needle);
    }
}

/* Every time stamp the decoder accepts encodes back to the same double: in
 * milliseconds when that is exact (what the programs write), else in the
 * shortest exact form. */
static void test_times_round_trip_exactly(void **state)
{
    (void)state;
    const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"1764096000", "1764096000.000"},
        {"1764096000.001", "1764096000.001"},
        {"1.0001", "1.0001"},
        {"0.0001", "0.0001"},
        {"1764096000.0005", "1764096000.0005"},
        {"253402300799.999", "253402300799.999"},
        {"253402300799.9999", "253402300799.9999"},
        {"1e-300", "1e-300"},
        {"0.1", "0.100"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256], want[256];
        snprintf(json, sizeof json,
                 "{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"expires_at\":%s}", cases[i].in);
        tq_msg m;
        decode_ok(&m, json);
        char *s = tq_msg_encode(&m, NULL);
        snprintf(want, sizeof want, "\"expires_at\":%s,", cases[i].out);
        TQ_ASSERT_CONTAINS(s, want);
        free(s);
        round_trip(&m);
        tq_msg_deinit(&m);
    }
}

/* A message on its last allowed attempt is retried with attempt + 1: that
 * message must still decode, or the retry turns into a dead letter. */
static void test_attempt_after_last_retry_decodes(void **state)
{
    (void)state;
    tq_msg m;
    decode_ok(&m, "{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"attempt\":1000000,"
                  "\"max_retries\":1000000}");
    assert_true(m.attempt <= m.max_retries); /* the worker retries it ... */
    m.attempt++;                             /* ... as the next attempt */
    round_trip(&m);
    tq_msg_deinit(&m);
}

static void test_errors_duplicate_keys(void **state)
{
    (void)state;
    decode_bad("{\"v\":1,\"id\":\"a\",\"task\":\"t\",\"id\":\"b\"}", "id");
    decode_bad("{\"v\":1,\"id\":\"a\",\"task\":\"t\",\"id\":\"b\"}", "duplicate");
    decode_bad("{\"v\":1,\"id\":\"a\",\"task\":\"t\",\"zz\":1,\"zz\":2}", "zz");
    decode_bad("{\"v\":1,\"id\":\"a\",\"task\":\"t\",\"kwargs\":{\"k\":1,\"k\":2}}", "k");
}

static void test_size_limit(void **state)
{
    (void)state;
    /* Over the limit: refused before parsing, whatever the bytes. */
    char *buf = malloc(TQ_MSG_MAX + 2);
    assert_non_null(buf);
    memset(buf, ' ', TQ_MSG_MAX + 1);
    buf[TQ_MSG_MAX + 1] = '\0';
    decode_bad_len(buf, TQ_MSG_MAX + 1, TQ_ETOOBIG, "limit");

    /* Exactly the limit: a valid message decodes. */
    const char *head = "{\"v\":1,\"id\":\"x\",\"task\":\"t\",\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(buf, head, hl);
    memset(buf + hl, 'p', TQ_MSG_MAX - hl - 2);
    memcpy(buf + TQ_MSG_MAX - 2, "\"}", 2);
    buf[TQ_MSG_MAX] = '\0';
    TQ_ASSERT_INT(strlen(buf), TQ_MSG_MAX);
    tq_msg m;
    char err[256] = "";
    TQ_ASSERT_RC_ERR(tq_msg_decode(&m, buf, TQ_MSG_MAX, err, sizeof err), 0, err);
    TQ_ASSERT_INT(json_string_length(json_object_get(m.extra, "pad")),
                  TQ_MSG_MAX - hl - 2);
    tq_msg_deinit(&m);
    free(buf);
}

static void test_decode_uses_len_not_nul(void **state)
{
    (void)state;
    /* Only len bytes are read: a longer buffer's tail is ignored. */
    const char *s = "{\"v\":1,\"id\":\"x\",\"task\":\"t\"}GARBAGE";
    tq_msg m;
    char err[256] = "";
    TQ_ASSERT_RC_ERR(tq_msg_decode(&m, s, strlen(s) - 7, err, sizeof err), 0, err);
    tq_msg_deinit(&m);
    TQ_ASSERT_RC(tq_msg_decode(&m, s, 0, err, sizeof err), TQ_EDECODE);
}

/* ---- dead letters ---- */

static size_t base64_decode(const char *in, unsigned char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0, len = strlen(in);
    if (len % 4)
        fail_msg("base64 length %zu is not a multiple of 4", len);
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *p = in[i + j] == '=' ? NULL : strchr(tab, in[i + j]);
            if (in[i + j] == '=')
                pad++;
            else if (!p || !in[i + j])
                fail_msg("bad base64 character '%c'", in[i + j]);
            v = v << 6 | (p ? (unsigned)(p - tab) : 0);
        }
        out[n++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[n++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[n++] = (unsigned char)v;
    }
    return n;
}

/* Builds a dead letter and parses it; fails unless it is a JSON object. */
static json_t *dead_letter(const char *raw, size_t rawlen, const char *error, double now)
{
    size_t len = 0;
    char *s = tq_msg_dead_letter(raw, rawlen, "undecodable", error, "w-1", now, &len);
    assert_non_null(s);
    TQ_ASSERT_INT(len, strlen(s));
    json_error_t je;
    json_t *o = json_loads(s, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o))
        fail_msg("dead letter is not a JSON object (%s): %s", je.text, s);
    free(s);
    TQ_ASSERT_STR(json_string_value(json_object_get(o, "reason")), "undecodable");
    TQ_ASSERT_STR(json_string_value(json_object_get(o, "worker")), "w-1");
    assert_true(json_is_string(json_object_get(o, "error")));
    assert_true(json_is_number(json_object_get(o, "dead_at")));
    TQ_ASSERT_DOUBLE(json_number_value(json_object_get(o, "dead_at")), now, 0.0005);
    return o;
}

static void test_dead_letter_utf8(void **state)
{
    (void)state;
    json_t *o = dead_letter(design_example, strlen(design_example), "field 'x': bad",
                            1764096000.5);
    TQ_ASSERT_STR(json_string_value(json_object_get(o, "message")), design_example);
    assert_null(json_object_get(o, "message_base64"));
    TQ_ASSERT_STR(json_string_value(json_object_get(o, "error")), "field 'x': bad");
    json_decref(o);

    /* Quotes, backslashes, control characters, multi-byte: kept exactly. */
    const char *odd = "{\"a\":\"\\\"\"}\n\t\x01 caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f";
    o = dead_letter(odd, strlen(odd), "e", 1);
    TQ_ASSERT_STR(json_string_value(json_object_get(o, "message")), odd);
    json_decref(o);

    /* Empty. */
    o = dead_letter("", 0, "empty", 2);
    TQ_ASSERT_STR(json_string_value(json_object_get(o, "message")), "");
    json_decref(o);
}

static void check_base64(const char *raw, size_t rawlen)
{
    json_t *o = dead_letter(raw, rawlen, "not utf-8", 3);
    assert_null(json_object_get(o, "message"));
    const char *b64 = json_string_value(json_object_get(o, "message_base64"));
    assert_non_null(b64);
    unsigned char *back = malloc(rawlen + 3);
    assert_non_null(back);
    size_t n = base64_decode(b64, back);
    TQ_ASSERT_INT(n, rawlen);
    assert_memory_equal(back, raw, rawlen);
    free(back);
    json_decref(o);
}

static void test_dead_letter_base64(void **state)
{
    (void)state;
    check_base64("\xff", 1);
    check_base64("\xff\xfe", 2);
    check_base64("\xff\xfe\xfd", 3);
    check_base64("{\"v\":1,\"id\":\"\xc3(\"}", 15);
    check_base64("ab\0cd", 5); /* valid UTF-8 but a NUL */
    check_base64("\0", 1);
    check_base64("caf\xc3", 4);          /* cut sequence at the end */
    check_base64("\xed\xa0\x80", 3);     /* a surrogate */
    check_base64("\xc0\xaf", 2);         /* overlong */
    check_base64("\xf4\x90\x80\x80", 4); /* above U+10FFFF */

    /* All 256 byte values, twice, at every alignment mod 3. */
    unsigned char all[514];
    for (int i = 0; i < 514; i++)
        all[i] = (unsigned char)i;
    for (size_t cut = 512; cut <= 514; cut++)
        check_base64((const char *)all, cut);
}

/* Issue 8, defect 4: dead_at went through the 63-byte cut too. Any dead_at
 * gives valid JSON: the same number, or null when it is not finite. */
static void test_dead_letter_any_dead_at(void **state)
{
    (void)state;
    const double finite[] = {1e300, -1e300, 1764096000.0005, 5e-324, -0.0, 0};
    for (size_t i = 0; i < sizeof finite / sizeof finite[0]; i++) {
        json_t *o = dead_letter("x", 1, "e", finite[i]);
        TQ_ASSERT_DOUBLE(json_number_value(json_object_get(o, "dead_at")), finite[i], 0);
        json_decref(o);
    }
    const double odd[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        char *s = tq_msg_dead_letter("x", 1, "r", "e", "w", odd[i], NULL);
        json_error_t je;
        json_t *o = json_loads(s, 0, &je);
        if (!json_is_object(o))
            fail_msg("dead letter is not JSON (%s): %s", je.text, s);
        assert_true(json_is_null(json_object_get(o, "dead_at")));
        json_decref(o);
        free(s);
    }
}

static void test_dead_letter_bad_error_text(void **state)
{
    (void)state;
    /* An error text with invalid UTF-8, quotes and newlines stays JSON. */
    json_t *o = dead_letter("x", 1, "bad \xff byte \"q\"\n", 4);
    const char *e = json_string_value(json_object_get(o, "error"));
    TQ_ASSERT_CONTAINS(e, "bad ");
    TQ_ASSERT_CONTAINS(e, "\xef\xbf\xbd"); /* U+FFFD */
    TQ_ASSERT_CONTAINS(e, " byte \"q\"\n");
    json_decref(o);

    /* A real decode error, whatever its text, makes a valid dead letter. */
    const char *raw = "{\"v\":1,\"id\":\"x\xff\",\"task\":\"t\"}";
    tq_msg m;
    char err[512];
    TQ_ASSERT_RC(tq_msg_decode(&m, raw, strlen(raw), err, sizeof err), TQ_EDECODE);
    o = dead_letter(raw, strlen(raw), err, 5);
    assert_non_null(json_object_get(o, "message_base64"));
    json_decref(o);
}

/* Milliseconds written by hand as seconds with three decimals, and read
 * back by strtod to ms / 1000. */
static void test_put_ms(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {{0, "0.000"},
                 {5, "0.005"},
                 {999, "0.999"},
                 {1000, "1.000"},
                 {-1, "-0.001"},
                 {-1500, "-1.500"},
                 {1764096000001, "1764096000.001"},
                 {253402300799999, "253402300799.999"},
                 {INT64_MAX, "9223372036854775.807"},
                 {INT64_MIN, "-9223372036854775.808"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tq_buf b = {0};
        tq_msg_put_ms(&b, cases[i].ms);
        assert_false(b.oom);
        assert_string_equal(b.p, cases[i].want);
        free(b.p);
    }
}

/* The fast path reads plain messages as jansson does, and declines the
 * rest (jansson then reads them, with its own errors). */
static void test_load_plain(void **state)
{
    (void)state;
    static const char *const read[] = {
        "{\"v\":1,\"id\":\"a\",\"task\":\"noop\",\"queue\":\"default\",\"args\":[],"
        "\"kwargs\":{},\"enqueued_at\":1764096000.000,\"attempt\":1}",
        " { \"x\" : -0 , \"y\":-0.0,\"z\":[ "
        "],\"w\":{\n},\"t\":true,\"f\":false,\"n\":null,"
        "\"big\":999999999999999999,\"r\":0.1234567890123456,\"\":\"\" }\r\n",
        "{}",
    };
    for (size_t i = 0; i < sizeof read / sizeof read[0]; i++) {
        json_t *fast = tq_msg_load_plain(read[i], strlen(read[i]));
        json_error_t je;
        json_t *slow = json_loadb(read[i], strlen(read[i]), 0, &je);
        if (!fast || !slow)
            fail_msg("not read (fast %d, jansson %d: %s): %s", fast != NULL, slow != NULL,
                     slow ? "" : je.text, read[i]);
        char *a = json_dumps(fast, JSON_COMPACT), *b = json_dumps(slow, JSON_COMPACT);
        assert_string_equal(a, b);
        free(a);
        free(b);
        json_decref(fast);
        json_decref(slow);
    }
    static const char *const declined[] = {
        "{\"id\":\"a\\\"b\"}",          /* an escape */
        "{\"id\":\"caf\xc3\xa9\"}",     /* not ASCII */
        "{\"n\":1e5}",                  /* an exponent */
        "{\"n\":01}",                   /* a leading zero */
        "{\"n\":1234567890123456789}",  /* 19 digits */
        "{\"n\":0.123456789012345678}", /* 18 digits */
        "{\"a\":1,\"a\":2}",            /* a key twice */
        "{\"a\":[1]}",                  /* not empty */
        "{\"a\":1} x",                  /* after the end */
        "{\"a\":1,}",                   /* a trailing comma */
        "[1]",                          /* not an object */
        "{\"a\":tru}",
        "{\"a\":\"b\t\"}", /* a control character */
    };
    for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++) {
        json_t *fast = tq_msg_load_plain(declined[i], strlen(declined[i]));
        if (fast)
            fail_msg("read: %s", declined[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_design_example),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_init_deinit),
        cmocka_unit_test(test_all_fields_and_types),
        cmocka_unit_test(test_unknown_fields_kept),
        cmocka_unit_test(test_encode_exact_bytes),
        cmocka_unit_test(test_encode_escapes_strings),
        cmocka_unit_test(test_encode_too_big),
        cmocka_unit_test(test_floats_shortest),
        cmocka_unit_test(test_floats_read_back_exactly),
        cmocka_unit_test(test_dump_json_values),
        cmocka_unit_test(test_errors_not_a_message),
        cmocka_unit_test(test_errors_required),
        cmocka_unit_test(test_errors_version),
        cmocka_unit_test(test_errors_id_task),
        cmocka_unit_test(test_errors_queue_schedule),
        cmocka_unit_test(test_errors_args_kwargs),
        cmocka_unit_test(test_errors_numbers),
        cmocka_unit_test(test_errors_name_the_range),
        cmocka_unit_test(test_times_round_trip_exactly),
        cmocka_unit_test(test_attempt_after_last_retry_decodes),
        cmocka_unit_test(test_errors_duplicate_keys),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_decode_uses_len_not_nul),
        cmocka_unit_test(test_dead_letter_utf8),
        cmocka_unit_test(test_dead_letter_base64),
        cmocka_unit_test(test_dead_letter_any_dead_at),
        cmocka_unit_test(test_dead_letter_bad_error_text),
        cmocka_unit_test(test_put_ms),
        cmocka_unit_test(test_load_plain),
    };
    return cmocka_run_group_tests_name("msg", tests, NULL, NULL);
}
