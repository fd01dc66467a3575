/* Tests of common/sched: schedule definitions (defaults, every field, every
 * mistake, named by schedule and field), schedule files, the absolute time
 * grid at and around its points (negative times too), and the messages of
 * ticks. */
#include "tests/support/check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/sched.h"

/* ---- helpers ---- */

static void decode_ok(tq_sched *s, const char *json)
{
    char err[512] = "";
    int rc = tq_sched_decode_text(s, json, strlen(json), "UTC", err, sizeof err);
    if (rc != 0)
        fail_msg("decode %s: %d (%s): %s", json, rc, tq_strerror(rc), err);
}

/* Expects TQ_EDECODE and an error naming every needle (up to two). */
static void decode_bad(const char *json, const char *needle1, const char *needle2)
{
    tq_sched s;
    char err[512] = "";
    memset(&s, 0xa5, sizeof s);
    int rc = tq_sched_decode_text(&s, json, strlen(json), "UTC", err, sizeof err);
    if (rc != TQ_EDECODE)
        fail_msg("decode %s: expected TQ_EDECODE, got %d (%s)", json, rc,
                 tq_strerror(rc));
    if (needle1 && !strstr(err, needle1))
        fail_msg("decode %s: error \"%s\" does not name \"%s\"", json, err, needle1);
    if (needle2 && !strstr(err, needle2))
        fail_msg("decode %s: error \"%s\" does not name \"%s\"", json, err, needle2);
    if (s.args || s.kwargs)
        fail_msg("decode %s: a failed decode left owned fields", json);
    tq_sched_deinit(&s);
}

static tq_sched every_ms(int64_t ms)
{
    tq_sched s;
    memset(&s, 0, sizeof s);
    s.rule.every_ms = ms;
    return s;
}

/* A temporary directory for schedule files, removed by the teardown. */
static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tickq-sched.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void free_all(tq_sched *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tq_sched_deinit(&list[i]);
    free(list);
}

/* ---- decoding ---- */

static void test_decode_defaults(void **state)
{
    (void)state;
    tq_sched s;
    decode_ok(&s, "{\"name\":\"timer\",\"task\":\"timer.tick\",\"every\":1}");
    TQ_ASSERT_STR(s.name, "timer");
    TQ_ASSERT_STR(s.task, "timer.tick");
    TQ_ASSERT_STR(s.queue, "default");
    TQ_ASSERT_INT(s.rule.every_ms, 1000);
    assert_true(json_is_array(s.args));
    TQ_ASSERT_INT(json_array_size(s.args), 0);
    assert_true(json_is_object(s.kwargs));
    TQ_ASSERT_INT(json_object_size(s.kwargs), 0);
    TQ_ASSERT_DOUBLE(s.timeout, 0, 0);
    TQ_ASSERT_INT(s.max_retries, -1);
    TQ_ASSERT_DOUBLE(s.expires, 0, 0);
    TQ_ASSERT_INT(s.enabled, 1);
    tq_sched_deinit(&s);
    tq_sched_deinit(&s); /* safe twice */

    /* null optional numbers are absent. */
    decode_ok(&s, "{\"name\":\"n\",\"task\":\"t\",\"every\":2,\"timeout\":null,"
                  "\"max_retries\":null,\"expires\":null}");
    TQ_ASSERT_DOUBLE(s.timeout, 0, 0);
    TQ_ASSERT_INT(s.max_retries, -1);
    TQ_ASSERT_DOUBLE(s.expires, 0, 0);
    tq_sched_deinit(&s);
}

static void test_decode_all_fields(void **state)
{
    (void)state;
    tq_sched s;
    decode_ok(&s, "{\"name\":\"report.daily\",\"task\":\"reports.build\",\"every\":0.25,"
                  "\"queue\":\"low\",\"args\":[1,\"two\"],\"kwargs\":{\"a\":{\"b\":1}},"
                  "\"timeout\":5.5,\"max_retries\":2,\"expires\":30,\"enabled\":false}");
    TQ_ASSERT_STR(s.name, "report.daily");
    TQ_ASSERT_STR(s.task, "reports.build");
    TQ_ASSERT_INT(s.rule.every_ms, 250);
    TQ_ASSERT_STR(s.queue, "low");
    TQ_ASSERT_INT(json_array_size(s.args), 2);
    TQ_ASSERT_STR(json_string_value(json_array_get(s.args, 1)), "two");
    assert_true(json_is_object(json_object_get(s.kwargs, "a")));
    TQ_ASSERT_DOUBLE(s.timeout, 5.5, 0);
    TQ_ASSERT_INT(s.max_retries, 2);
    TQ_ASSERT_DOUBLE(s.expires, 30, 0);
    TQ_ASSERT_INT(s.enabled, 0);
    tq_sched_deinit(&s);

    decode_ok(&s, "{\"name\":\"n\",\"task\":\"t\",\"every\":86400,\"enabled\":true}");
    TQ_ASSERT_INT(s.rule.every_ms, 86400000);
    TQ_ASSERT_INT(s.enabled, 1);
    tq_sched_deinit(&s);

    /* The bounds of every. */
    decode_ok(&s, "{\"name\":\"n\",\"task\":\"t\",\"every\":0.001}");
    TQ_ASSERT_INT(s.rule.every_ms, 1);
    tq_sched_deinit(&s);
    decode_ok(&s, "{\"name\":\"n\",\"task\":\"t\",\"every\":31622400}");
    TQ_ASSERT_INT(s.rule.every_ms, TQ_SCHED_EVERY_MAX_MS);
    tq_sched_deinit(&s);
    decode_ok(&s, "{\"name\":\"n\",\"task\":\"t\",\"every\":0.007}");
    TQ_ASSERT_INT(s.rule.every_ms, 7);
    tq_sched_deinit(&s);
    decode_ok(&s, "{\"name\":\"n\",\"task\":\"t\",\"every\":0.3}");
    TQ_ASSERT_INT(s.rule.every_ms, 300);
    tq_sched_deinit(&s);
}

static void test_decode_copies(void **state)
{
    (void)state;
    /* The definition is borrowed: changing it later does not change s. */
    json_error_t je;
    json_t *def =
        json_loads("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"args\":[1]}", 0, &je);
    assert_non_null(def);
    tq_sched s;
    char err[256] = "";
    TQ_ASSERT_RC_ERR(tq_sched_decode(&s, def, NULL, err, sizeof err), 0, err);
    json_array_append_new(json_object_get(def, "args"), json_integer(2));
    TQ_ASSERT_INT(json_array_size(s.args), 1);
    json_decref(def);
    tq_sched_deinit(&s);

    /* Not an object. */
    json_t *arr = json_array();
    memset(&s, 0xa5, sizeof s);
    TQ_ASSERT_RC(tq_sched_decode(&s, arr, NULL, err, sizeof err), TQ_EDECODE);
    TQ_ASSERT_CONTAINS(err, "object");
    assert_null(s.args);
    json_decref(arr);
}

static void test_decode_errors(void **state)
{
    (void)state;
    decode_bad("{\"task\":\"t\",\"every\":1}", "'name'", "missing");
    decode_bad("{\"name\":\"n\",\"every\":1}", "schedule 'n'", "'task'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\"}", "schedule 'n'", "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":0}", "schedule 'n'", "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":-1}", "schedule 'n'", "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":-0.5}", "schedule 'n'",
               "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":0.0005}", "schedule 'n'",
               "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":0.0015}", "schedule 'n'",
               "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1.0001}", "schedule 'n'",
               "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":31622401}", "schedule 'n'",
               "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":\"1\"}", "schedule 'n'",
               "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":null}", "schedule 'n'",
               "'every'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":true}", "schedule 'n'",
               "'every'");

    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"evry\":2}", "schedule 'n'",
               "'evry'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"cron\":\"* * * * *\"}",
               "schedule 'n'", "'every' and 'cron' exclude each other");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"enabled\":\"yes\"}",
               "schedule 'n'", "'enabled'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"enabled\":1}",
               "schedule 'n'", "'enabled'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"args\":{}}", "schedule 'n'",
               "'args'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"args\":\"x\"}",
               "schedule 'n'", "'args'");
    /* kwargs is checked after args was copied: nothing may leak (ASan). */
    decode_bad(
        "{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"args\":[1,[2]],\"kwargs\":[]}",
        "schedule 'n'", "'kwargs'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"queue\":\"a b\"}",
               "schedule 'n'", "'queue'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"queue\":\"\"}",
               "schedule 'n'", "'queue'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"queue\":7}", "schedule 'n'",
               "'queue'");
    decode_bad("{\"name\":\"a b\",\"task\":\"t\",\"every\":1}", "schedule 'a b'",
               "'name'");
    decode_bad("{\"name\":\"a/b\",\"task\":\"t\",\"every\":1}", "'name'", NULL);
    decode_bad("{\"name\":\"\",\"task\":\"t\",\"every\":1}", "'name'", NULL);
    decode_bad("{\"name\":5,\"task\":\"t\",\"every\":1}", "'name'", NULL);
    decode_bad("{\"name\":\"n\",\"task\":\"\",\"every\":1}", "schedule 'n'", "'task'");
    decode_bad("{\"name\":\"n\",\"task\":\"a\\nb\",\"every\":1}", "schedule 'n'",
               "'task'");
    decode_bad("{\"name\":\"n\",\"task\":[],\"every\":1}", "schedule 'n'", "'task'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"timeout\":0}",
               "schedule 'n'", "'timeout'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"timeout\":-1}",
               "schedule 'n'", "'timeout'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"max_retries\":-1}",
               "schedule 'n'", "'max_retries'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"max_retries\":1.5}",
               "schedule 'n'", "'max_retries'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"expires\":0}",
               "schedule 'n'", "'expires'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"expires\":\"1\"}",
               "schedule 'n'", "'expires'");

    char json[256], name[66];
    memset(name, 'n', 65);
    name[65] = '\0';
    snprintf(json, sizeof json, "{\"name\":\"%s\",\"task\":\"t\",\"every\":1}", name);
    decode_bad(json, "'name'", NULL);
    name[64] = '\0';
    tq_sched s;
    snprintf(json, sizeof json, "{\"name\":\"%s\",\"task\":\"t\",\"every\":1}", name);
    decode_ok(&s, json);
    TQ_ASSERT_STR(s.name, name);
    tq_sched_deinit(&s);
}

static void test_decode_text_errors(void **state)
{
    (void)state;
    decode_bad("", "JSON", NULL);
    decode_bad("{\"name\":", "JSON", NULL);
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1} x", "JSON", NULL);
    decode_bad("{\"name\":\"n\",\"name\":\"m\",\"task\":\"t\",\"every\":1}", "JSON",
               "name");
    decode_bad("[]", "object", NULL);
}

/* ---- encoding ---- */

static void test_encode(void **state)
{
    (void)state;
    tq_sched s;
    size_t len = 0;
    decode_ok(&s, "{\"task\":\"timer.tick\",\"every\":1,\"name\":\"timer\"}");
    char *out = tq_sched_encode(&s, &len);
    TQ_ASSERT_STR(out, "{\"name\":\"timer\",\"task\":\"timer.tick\",\"every\":1.0,"
                       "\"catchup\":\"latest\",\"queue\":\"default\",\"args\":[],"
                       "\"kwargs\":{},\"enabled\":true}");
    TQ_ASSERT_INT(len, strlen(out));
    free(out);
    tq_sched_deinit(&s);

    decode_ok(
        &s, "{\"name\":\"n\",\"task\":\"t\",\"every\":0.25,\"queue\":\"q\",\"args\":[1],"
            "\"kwargs\":{\"k\":\"v\"},\"timeout\":5,\"max_retries\":0,\"expires\":0.5,"
            "\"enabled\":false}");
    out = tq_sched_encode(&s, &len);
    TQ_ASSERT_STR(out, "{\"name\":\"n\",\"task\":\"t\",\"every\":0.25,"
                       "\"catchup\":\"latest\",\"queue\":\"q\","
                       "\"args\":[1],\"kwargs\":{\"k\":\"v\"},\"timeout\":5.0,"
                       "\"max_retries\":0,\"expires\":0.5,\"enabled\":false}");
    free(out);
    tq_sched_deinit(&s);
}

static void test_encode_decode_round_trip(void **state)
{
    (void)state;
    const char *defs[] = {
        "{\"name\":\"a\",\"task\":\"t\",\"every\":1}",
        "{\"name\":\"b\",\"task\":\"t\",\"every\":0.001,\"enabled\":false}",
        "{\"name\":\"c\",\"task\":\"t\\u00e9\",\"every\":0.007,\"queue\":\"x.y\","
        "\"args\":[null,1.5,\"s\",[{}]],\"kwargs\":{\"z\":[]},\"timeout\":0.001,"
        "\"max_retries\":1000000,\"expires\":31536000}",
        "{\"name\":\"d\",\"task\":\"t\",\"every\":31622400}",
        "{\"name\":\"e\",\"task\":\"t\",\"every\":86399.999}",
    };
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        tq_sched a, b;
        decode_ok(&a, defs[i]);
        size_t len;
        char *text = tq_sched_encode(&a, &len);
        assert_non_null(text);
        decode_ok(&b, text);
        TQ_ASSERT_STR(b.name, a.name);
        TQ_ASSERT_STR(b.task, a.task);
        TQ_ASSERT_STR(b.queue, a.queue);
        TQ_ASSERT_INT(b.rule.every_ms, a.rule.every_ms);
        assert_true(json_equal(b.args, a.args));
        assert_true(json_equal(b.kwargs, a.kwargs));
        TQ_ASSERT_DOUBLE(b.timeout, a.timeout, 0);
        TQ_ASSERT_INT(b.max_retries, a.max_retries);
        TQ_ASSERT_DOUBLE(b.expires, a.expires, 0);
        TQ_ASSERT_INT(b.enabled, a.enabled);
        char *again = tq_sched_encode(&b, NULL);
        TQ_ASSERT_STR(again, text);
        free(again);
        free(text);
        tq_sched_deinit(&a);
        tq_sched_deinit(&b);
    }
}

/* ---- files ---- */

static void test_load_file_good(void **state)
{
    (void)state;
    const char *path =
        write_file("good.json",
                   "{\n  \"schedules\": [\n"
                   "    {\"name\": \"timer\", \"task\": \"timer.tick\", \"every\": 1},\n"
                   "    {\"name\": \"slow\", \"task\": \"t\", \"every\": 60,"
                   " \"queue\": \"low\", \"enabled\": false}\n  ]\n}\n");
    tq_sched *list = NULL;
    size_t n = 99;
    char err[512] = "";
    TQ_ASSERT_RC_ERR(tq_sched_load_file(path, "UTC", &list, &n, err, sizeof err), 0, err);
    TQ_ASSERT_INT(n, 2);
    TQ_ASSERT_STR(list[0].name, "timer");
    TQ_ASSERT_INT(list[0].rule.every_ms, 1000);
    TQ_ASSERT_STR(list[1].name, "slow");
    TQ_ASSERT_STR(list[1].queue, "low");
    TQ_ASSERT_INT(list[1].enabled, 0);
    free_all(list, n);

    /* An empty list is fine. */
    path = write_file("empty.json", "{\"schedules\": []}");
    TQ_ASSERT_RC_ERR(tq_sched_load_file(path, "UTC", &list, &n, err, sizeof err), 0, err);
    TQ_ASSERT_INT(n, 0);
    free_all(list, n);

    /* Other top-level keys are allowed next to "schedules". */
    path = write_file("extra.json", "{\"version\": 1, \"schedules\": []}");
    TQ_ASSERT_RC_ERR(tq_sched_load_file(path, "UTC", &list, &n, err, sizeof err), 0, err);
    free_all(list, n);
}

static void load_bad(const char *name, const char *text, const char *needle1,
                     const char *needle2)
{
    const char *path = text ? write_file(name, text) : name;
    char pathcopy[256];
    snprintf(pathcopy, sizeof pathcopy, "%s", path);
    tq_sched *list = (tq_sched *)&list; /* not NULL: must be reset */
    size_t n = 99;
    char err[1024] = "";
    int rc = tq_sched_load_file(pathcopy, "UTC", &list, &n, err, sizeof err);
    if (rc >= 0)
        fail_msg("%s: expected an error, got %d", name, rc);
    assert_null(list);
    TQ_ASSERT_INT(n, 0);
    TQ_ASSERT_CONTAINS(err, pathcopy);
    if (needle1)
        TQ_ASSERT_CONTAINS(err, needle1);
    if (needle2)
        TQ_ASSERT_CONTAINS(err, needle2);
}

static void test_load_file_errors(void **state)
{
    (void)state;
    load_bad("syntax.json", "{\n  \"schedules\": [\n    {\"name\": \"a\",, }\n  ]\n}\n",
             ":3:", NULL);
    load_bad("dup.json",
             "{\"schedules\": [{\"name\": \"a\", \"task\": \"t\", \"every\": 1},\n"
             "               {\"name\": \"b\", \"task\": \"t\", \"every\": 1},\n"
             "               {\"name\": \"a\", \"task\": \"u\", \"every\": 2}]}",
             "entry 3", "'a' is defined twice");
    load_bad("nolist.json", "{\"schedule\": []}", "\"schedules\"", NULL);
    load_bad("notarray.json", "{\"schedules\": {}}", "\"schedules\"", NULL);
    load_bad("array.json", "[{\"name\": \"a\", \"task\": \"t\", \"every\": 1}]",
             "\"schedules\"", NULL);
    load_bad("badentry.json",
             "{\"schedules\": [{\"name\": \"a\", \"task\": \"t\", \"every\": 1},"
             " {\"name\": \"b\", \"task\": \"t\", \"every\": 0}]}",
             "entry 2", "schedule 'b'");
    load_bad("notobject.json", "{\"schedules\": [1]}", "entry 1", "object");
    load_bad("dupkey.json", "{\"schedules\": [], \"schedules\": []}", "duplicate", NULL);
    load_bad("empty.txt", "", NULL, NULL);

    char missing[256];
    snprintf(missing, sizeof missing, "%s/does-not-exist.json", tmpdir);
    load_bad(missing, NULL, "No such file", NULL);
}

/* ---- the grid ---- */

static void check_grid(int64_t every, int64_t t, int64_t prev, int64_t next)
{
    tq_sched s = every_ms(every);
    int64_t p = tq_sched_prev(&s, t), n = tq_sched_next(&s, t);
    if (p != prev || n != next)
        fail_msg("every %lld at %lld: expected prev %lld next %lld, got %lld %lld",
                 (long long)every, (long long)t, (long long)prev, (long long)next,
                 (long long)p, (long long)n);
}

static void test_grid_every_second(void **state)
{
    (void)state;
    check_grid(1000, 0, 0, 1000);
    check_grid(1000, 1, 0, 1000);
    check_grid(1000, 999, 0, 1000);
    check_grid(1000, 1000, 1000, 2000);
    check_grid(1000, 1001, 1000, 2000);
    check_grid(1000, 1764096000000, 1764096000000, 1764096001000);
    check_grid(1000, 1764095999999, 1764095999000, 1764096000000);
    check_grid(1000, 1764096000001, 1764096000000, 1764096001000);
    /* Before the epoch the grid goes on (floor, not truncation). */
    check_grid(1000, -1, -1000, 0);
    check_grid(1000, -999, -1000, 0);
    check_grid(1000, -1000, -1000, 0);
    check_grid(1000, -1001, -2000, -1000);
}

static void test_grid_every_250ms(void **state)
{
    (void)state;
    check_grid(250, 0, 0, 250);
    check_grid(250, 249, 0, 250);
    check_grid(250, 250, 250, 500);
    check_grid(250, 251, 250, 500);
    check_grid(250, 1764096000123, 1764096000000, 1764096000250);
    check_grid(250, 1764096000250, 1764096000250, 1764096000500);
    check_grid(250, 1764096000249, 1764096000000, 1764096000250);
    check_grid(250, 1764096000251, 1764096000250, 1764096000500);
    check_grid(250, -1, -250, 0);
    check_grid(250, -250, -250, 0);
    check_grid(250, -251, -500, -250);
}

static void test_grid_properties(void **state)
{
    (void)state;
    const int64_t everies[] = {1, 7, 250, 1000, 60000, 86400000, TQ_SCHED_EVERY_MAX_MS};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t e = 0; e < sizeof everies / sizeof everies[0]; e++) {
        tq_sched s = every_ms(everies[e]);
        for (int i = 0; i < 2000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* Times within about +-300 years of the epoch. */
            int64_t t = (int64_t)(x % 20000000000000ull) - 10000000000000LL;
            int64_t p = tq_sched_prev(&s, t), n = tq_sched_next(&s, t);
            if (!(p <= t && t < n && n - p == s.rule.every_ms &&
                  p % s.rule.every_ms == 0))
                fail_msg("every %lld at %lld: prev %lld next %lld",
                         (long long)s.rule.every_ms, (long long)t, (long long)p,
                         (long long)n);
            /* The grid is absolute: prev of a tick is the tick, next of the
             * instant before a tick is that tick. */
            TQ_ASSERT_INT(tq_sched_prev(&s, p), p);
            TQ_ASSERT_INT(tq_sched_next(&s, n - 1), n);
            TQ_ASSERT_INT(tq_sched_next(&s, p), n);
        }
    }
}

/* ---- cron schedules ---- */

static void test_decode_cron(void **state)
{
    (void)state;
    tq_sched s;
    char err[512] = "";
    /* No "tz": the default given to decode. */
    const char *def = "{\"name\":\"nightly\",\"task\":\"t\",\"cron\":\"30 2 * * *\"}";
    TQ_ASSERT_RC_ERR(
        tq_sched_decode_text(&s, def, strlen(def), "America/New_York", err, sizeof err),
        0, err);
    TQ_ASSERT_INT(s.rule.kind, TQ_SCHED_CRON);
    TQ_ASSERT_STR(s.cron, "30 2 * * *");
    TQ_ASSERT_STR(s.tz, "America/New_York");
    TQ_ASSERT_STR(tq_tz_name(s.rule.zone), "America/New_York");
    TQ_ASSERT_INT(s.catchup, TQ_SCHED_CATCHUP_LATEST);
    /* 2026-03-08 02:30 does not exist in New York: the gap's end, 07:00Z. */
    TQ_ASSERT_INT(tq_sched_next(&s, 1772884800000), 1772953200000);
    TQ_ASSERT_INT(tq_sched_prev(&s, 1772953200000), 1772953200000);
    TQ_ASSERT_INT(tq_sched_prev(&s, 1772953199999), 1772868600000); /* 03-07 07:30Z */
    tq_sched_deinit(&s);

    /* NULL default: UTC. */
    TQ_ASSERT_RC_ERR(tq_sched_decode_text(&s, def, strlen(def), NULL, err, sizeof err), 0,
                     err);
    TQ_ASSERT_STR(s.tz, "UTC");
    tq_sched_deinit(&s);

    /* "tz" wins over the default; catchup; macros. */
    decode_ok(&s, "{\"name\":\"n\",\"task\":\"t\",\"cron\":\"@daily\","
                  "\"tz\":\"Asia/Kolkata\",\"catchup\":\"all\"}");
    TQ_ASSERT_STR(s.tz, "Asia/Kolkata");
    TQ_ASSERT_INT(s.catchup, TQ_SCHED_CATCHUP_ALL);
    /* Midnight in Kolkata is 18:30Z the day before. */
    TQ_ASSERT_INT(tq_sched_next(&s, 1774656000000), 1774722600000);
    tq_sched_deinit(&s);

    decode_ok(&s, "{\"name\":\"n\",\"task\":\"t\",\"every\":5,\"catchup\":\"none\"}");
    TQ_ASSERT_INT(s.rule.kind, TQ_SCHED_EVERY);
    TQ_ASSERT_INT(s.catchup, TQ_SCHED_CATCHUP_NONE);
    TQ_ASSERT_STR(s.cron, "");
    TQ_ASSERT_STR(s.tz, "");
    tq_sched_deinit(&s);
}

static void test_decode_cron_errors(void **state)
{
    (void)state;
    decode_bad("{\"name\":\"n\",\"task\":\"t\"}", "schedule 'n'", "'every' is missing");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"tz\":\"UTC\"}",
               "schedule 'n'", "'tz' applies only to 'cron'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"cron\":5}", "schedule 'n'",
               "field 'cron' must be a string");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"cron\":\"* * * *\"}",
               "schedule 'n': field 'cron'", "expected 5 fields");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"cron\":\"60 * * * *\"}", "field 'cron'",
               "minute field: 60 is out of range 0-59");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"cron\":\"0 0 30 2 *\"}", "field 'cron'",
               "never fires");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"cron\":\"@reboot\"}", "field 'cron'",
               "unknown macro");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"cron\":\"* * * * *\","
               "\"tz\":\"Mars/Olympus\"}",
               "schedule 'n': field 'tz'", "unknown time zone 'Mars/Olympus'");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"cron\":\"* * * * *\","
               "\"tz\":\"../../etc/passwd\"}",
               "field 'tz'", "not a time zone name");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"cron\":\"* * * * *\",\"tz\":1}",
               "field 'tz'", NULL);
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"catchup\":\"some\"}",
               "schedule 'n'", "'catchup' must be");
    decode_bad("{\"name\":\"n\",\"task\":\"t\",\"every\":1,\"catchup\":true}",
               "schedule 'n'", "'catchup' must be");

    /* The default zone must exist too. */
    tq_sched s;
    char err[512] = "";
    const char *def = "{\"name\":\"n\",\"task\":\"t\",\"cron\":\"* * * * *\"}";
    TQ_ASSERT_RC(
        tq_sched_decode_text(&s, def, strlen(def), "Nowhere/Land", err, sizeof err),
        TQ_EDECODE);
    TQ_ASSERT_CONTAINS(err, "Nowhere/Land");
}

static void test_encode_cron(void **state)
{
    (void)state;
    tq_sched a, b;
    char err[512] = "";
    const char *def = "{\"name\":\"c\",\"task\":\"t\",\"cron\":\"*/15 9-17 * * MON-FRI\","
                      "\"catchup\":\"none\"}";
    TQ_ASSERT_RC_ERR(
        tq_sched_decode_text(&a, def, strlen(def), "Europe/Berlin", err, sizeof err), 0,
        err);
    size_t len;
    char *text = tq_sched_encode(&a, &len);
    /* The default zone is written down, so every beat agrees. */
    TQ_ASSERT_STR(text,
                  "{\"name\":\"c\",\"task\":\"t\",\"cron\":\"*/15 9-17 * * MON-FRI\","
                  "\"tz\":\"Europe/Berlin\",\"catchup\":\"none\",\"queue\":\"default\","
                  "\"args\":[],\"kwargs\":{},\"enabled\":true}");
    TQ_ASSERT_RC_ERR(tq_sched_decode_text(&b, text, len, "UTC", err, sizeof err), 0, err);
    TQ_ASSERT_STR(b.tz, "Europe/Berlin");
    TQ_ASSERT_STR(b.cron, a.cron);
    TQ_ASSERT_INT(b.catchup, a.catchup);
    assert_true(memcmp(&a.rule.cron, &b.rule.cron, sizeof a.rule.cron) == 0);
    free(text);
    tq_sched_deinit(&a);
    tq_sched_deinit(&b);
}

static void test_catchup_names(void **state)
{
    (void)state;
    tq_sched_catchup c = TQ_SCHED_CATCHUP_NONE;
    TQ_ASSERT_RC(tq_sched_catchup_parse("latest", &c), 0);
    TQ_ASSERT_INT(c, TQ_SCHED_CATCHUP_LATEST);
    TQ_ASSERT_RC(tq_sched_catchup_parse("all", &c), 0);
    TQ_ASSERT_INT(c, TQ_SCHED_CATCHUP_ALL);
    TQ_ASSERT_RC(tq_sched_catchup_parse("none", &c), 0);
    TQ_ASSERT_INT(c, TQ_SCHED_CATCHUP_NONE);
    TQ_ASSERT_RC(tq_sched_catchup_parse("Latest", &c), TQ_EINVAL);
    TQ_ASSERT_RC(tq_sched_catchup_parse("", &c), TQ_EINVAL);
    TQ_ASSERT_STR(tq_sched_catchup_name(TQ_SCHED_CATCHUP_LATEST), "latest");
    TQ_ASSERT_STR(tq_sched_catchup_name(TQ_SCHED_CATCHUP_NONE), "none");
    TQ_ASSERT_STR(tq_sched_catchup_name(TQ_SCHED_CATCHUP_ALL), "all");
}

/* ---- messages ---- */

static void test_message(void **state)
{
    (void)state;
    tq_sched s;
    tq_msg m;
    decode_ok(&s,
              "{\"name\":\"timer\",\"task\":\"timer.tick\",\"every\":1,\"queue\":\"q1\","
              "\"args\":[1],\"kwargs\":{\"k\":2},\"timeout\":30,\"max_retries\":3,"
              "\"expires\":30}");
    TQ_ASSERT_RC(tq_sched_message(&s, 1764096000000, 1764096000001, &m), 0);
    TQ_ASSERT_STR(m.id, "timer@1764096000000");
    TQ_ASSERT_STR(m.task, "timer.tick");
    TQ_ASSERT_STR(m.queue, "q1");
    TQ_ASSERT_STR(m.schedule, "timer");
    TQ_ASSERT_DOUBLE(m.scheduled_at, 1764096000.0, 0);
    TQ_ASSERT_DOUBLE(m.enqueued_at, 1764096000.001, 0);
    TQ_ASSERT_DOUBLE(m.expires_at, 1764096030.0, 0);
    TQ_ASSERT_INT(m.attempt, 1);
    TQ_ASSERT_INT(m.max_retries, 3);
    TQ_ASSERT_DOUBLE(m.timeout, 30, 0);
    assert_true(json_equal(m.args, s.args));
    assert_true(json_equal(m.kwargs, s.kwargs));

    /* The message encodes to the protocol and decodes back the same. */
    size_t len;
    char *text = tq_msg_encode(&m, &len);
    assert_non_null(text);
    TQ_ASSERT_STR(text, "{\"v\":1,\"id\":\"timer@1764096000000\",\"task\":\"timer.tick\","
                        "\"queue\":\"q1\",\"args\":[1],\"kwargs\":{\"k\":2},"
                        "\"schedule\":\"timer\",\"scheduled_at\":1764096000.000,"
                        "\"enqueued_at\":1764096000.001,\"expires_at\":1764096030.000,"
                        "\"attempt\":1,\"max_retries\":3,\"timeout\":30.0}");
    tq_msg back;
    char err[256] = "";
    TQ_ASSERT_RC_ERR(tq_msg_decode(&back, text, len, err, sizeof err), 0, err);
    TQ_ASSERT_STR(back.id, m.id);
    TQ_ASSERT_DOUBLE(back.scheduled_at, m.scheduled_at, 0);
    TQ_ASSERT_DOUBLE(back.expires_at, m.expires_at, 0);
    tq_msg_deinit(&back);
    free(text);
    tq_msg_deinit(&m);
    /* The schedule still owns its args after the message is gone. */
    TQ_ASSERT_INT(json_array_size(s.args), 1);
    tq_sched_deinit(&s);
}

static void test_message_defaults(void **state)
{
    (void)state;
    tq_sched s;
    tq_msg m;
    decode_ok(&s, "{\"name\":\"fast\",\"task\":\"t\",\"every\":0.25}");
    TQ_ASSERT_RC(tq_sched_message(&s, 1764096000250, 1764096000260, &m), 0);
    TQ_ASSERT_STR(m.id, "fast@1764096000250");
    TQ_ASSERT_STR(m.queue, "default");
    TQ_ASSERT_DOUBLE(m.scheduled_at, 1764096000.25, 0);
    TQ_ASSERT_DOUBLE(m.enqueued_at, 1764096000.26, 0);
    TQ_ASSERT_DOUBLE(m.expires_at, 0, 0); /* never expires */
    TQ_ASSERT_INT(m.max_retries, -1);
    TQ_ASSERT_DOUBLE(m.timeout, 0, 0);
    tq_msg_deinit(&m);

    /* The same tick always has the same id, whenever it is published. */
    tq_msg a, b;
    TQ_ASSERT_RC(tq_sched_message(&s, 1764096000500, 1764096000500, &a), 0);
    TQ_ASSERT_RC(tq_sched_message(&s, 1764096000500, 1764096009999, &b), 0);
    TQ_ASSERT_STR(a.id, b.id);
    tq_msg_deinit(&a);
    tq_msg_deinit(&b);

    /* A tick before the epoch still makes an id. */
    TQ_ASSERT_RC(tq_sched_message(&s, -250, 0, &m), 0);
    TQ_ASSERT_STR(m.id, "fast@-250");
    tq_msg_deinit(&m);
    tq_sched_deinit(&s);
}

/* Found by tests/fuzz/fuzz_sched: a task name with DEL (0x7f) was
 * accepted, but the worker's decoder refuses it, so every tick of the
 * schedule became a dead letter. The same rule holds for both now. */
static void test_decode_refuses_del(void **state)
{
    (void)state;
    decode_bad("{\"name\":\"a\",\"task\":\"t\\u007f\",\"every\":1}", "schedule 'a'",
               "field 'task' has a control character");
    decode_bad("{\"name\":\"a\",\"task\":\"t\",\"every\":1,\"queue\":\"q\\u007f\"}",
               "schedule 'a'", "field 'queue'");
    /* What is accepted makes messages the worker decodes. */
    tq_sched s;
    tq_msg m, back;
    decode_ok(&s, "{\"name\":\"a\",\"task\":\"t\\u00e9~\",\"every\":1}");
    TQ_ASSERT_RC(tq_sched_message(&s, 1764096000000, 1764096000000, &m), 0);
    size_t len;
    char *text = tq_msg_encode(&m, &len), err[256] = "";
    TQ_ASSERT_RC_ERR(tq_msg_decode(&back, text, len, err, sizeof err), 0, err);
    tq_msg_deinit(&back);
    tq_msg_deinit(&m);
    free(text);
    tq_sched_deinit(&s);
}

/* Found while checking what fuzz_sched checks: 0.6% of the whole numbers
 * of milliseconds above about 194 days were refused as not whole, as
 * every * 1000 is off by up to 4e-6 there. Every whole millisecond up to
 * the maximum is accepted, and a fraction of one is not. */
static void test_decode_every_whole_ms(void **state)
{
    (void)state;
    const char *whole[] = {"17119267.477", "17057263.911", "16929810.852",
                           "31622399.999", "31622400",     "0.001"};
    const int64_t ms[] = {17119267477, 17057263911, 16929810852,
                          31622399999, 31622400000, 1};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"name\":\"a\",\"task\":\"t\",\"every\":%s}",
                 whole[i]);
        tq_sched s;
        decode_ok(&s, json);
        TQ_ASSERT_INT(s.rule.every_ms, ms[i]);
        tq_sched_deinit(&s);
    }
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long long k = 1 + (long long)(x % 31622400000ull);
        char json[128];
        snprintf(json, sizeof json,
                 "{\"name\":\"a\",\"task\":\"t\",\"every\":%lld.%03lld}", k / 1000,
                 k % 1000);
        tq_sched s;
        decode_ok(&s, json);
        TQ_ASSERT_INT(s.rule.every_ms, k);
        tq_sched_deinit(&s);
    }
    decode_bad("{\"name\":\"a\",\"task\":\"t\",\"every\":31622399.9995}", "field 'every'",
               "whole number of milliseconds");
    decode_bad("{\"name\":\"a\",\"task\":\"t\",\"every\":2.0000001}", "field 'every'",
               NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_defaults),
        cmocka_unit_test(test_decode_all_fields),
        cmocka_unit_test(test_decode_copies),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_text_errors),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_decode_round_trip),
        cmocka_unit_test(test_load_file_good),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_grid_every_second),
        cmocka_unit_test(test_grid_every_250ms),
        cmocka_unit_test(test_grid_properties),
        cmocka_unit_test(test_decode_cron),
        cmocka_unit_test(test_decode_cron_errors),
        cmocka_unit_test(test_encode_cron),
        cmocka_unit_test(test_catchup_names),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_message_defaults),
        cmocka_unit_test(test_decode_refuses_del),
        cmocka_unit_test(test_decode_every_whole_ms),
    };
    return cmocka_run_group_tests_name("sched", tests, make_tmpdir, remove_tmpdir);
}
