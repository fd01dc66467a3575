/* Tests of common/broker against a real redis-server: the library loads
 * itself when missing, replaces another version, refuses callers of
 * another version without touching anything, declares its limits as the
 * C headers do, and writes dead letters that are the codec's. */
#include "tests/support/check.h"
#include "tests/support/redis_server.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/broker.h"
#include "common/clock.h"
#include "common/delayed.h"
#include "common/keys.h"
#include "common/metrics.h"
#include "common/msg.h"
#include "worker/queue.h"

#define PFX "unit-broker"
#define Q(x) PFX ":{default}:" x /* a key of queue default */
#define G(x) PFX ":{@}:" x       /* a global key */

static tq_test_redis srv;
static tq_conn *conn;

static int group_setup(void **state)
{
    (void)state;
    return tq_test_redis_group_start_cluster(&srv, &conn, "broker-test");
}

static int group_teardown(void **state)
{
    (void)state;
    return tq_test_redis_group_stop(&srv, conn);
}

static int setup(void **state)
{
    (void)state;
    return tq_test_redis_flush(&srv);
}

/* The version of the library Redis holds, "" when none. */
static const char *loaded(void)
{
    static char buf[64];
    redisReply *r = tq_test_redis_cmd(&srv, "FCALL_RO tickq_version 0");
    assert_non_null(r);
    snprintf(buf, sizeof buf, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return buf;
}

static void test_loads_when_missing(void **state)
{
    (void)state;
    assert_string_equal(loaded(), "");
    redisReply *r = tq_broker_call(conn, "info", 0, 0, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    assert_string_equal(loaded(), tq_broker_version);
    assert_int_equal(strlen(tq_broker_version), 12);
}

/* A function is called with FCALL_RO exactly when the library registers
 * it with the 'no-writes' flag (FCALL_RO refuses any other, and a
 * read-only user may make no FCALL). */
static void test_read_only_functions_match_the_library(void **state)
{
    (void)state;
    freeReplyObject(tq_broker_call(conn, "info", 0, 0, NULL, NULL));
    redisReply *r = tq_test_redis_cmd(&srv, "FUNCTION LIST LIBRARYNAME tickq");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    const redisReply *lib = r->element[0], *fns = NULL;
    for (size_t i = 0; i + 1 < lib->elements; i += 2)
        if (strcmp(lib->element[i]->str, "functions") == 0)
            fns = lib->element[i + 1];
    assert_non_null(fns);
    int nro = 0;
    for (size_t f = 0; f < fns->elements; f++) {
        const redisReply *fn = fns->element[f];
        const char *name = NULL;
        int no_writes = 0;
        for (size_t i = 0; i + 1 < fn->elements; i += 2) {
            if (strcmp(fn->element[i]->str, "name") == 0)
                name = fn->element[i + 1]->str;
            if (strcmp(fn->element[i]->str, "flags") == 0)
                for (size_t k = 0; k < fn->element[i + 1]->elements; k++)
                    no_writes |=
                        strcmp(fn->element[i + 1]->element[k]->str, "no-writes") == 0;
        }
        assert_non_null(name);
        assert_int_equal(strncmp(name, "tickq_", 6), 0);
        if (tq_broker_read_only(name + 6) != no_writes)
            fail_msg("%s: 'no-writes' %d, but tq_broker_read_only says %d", name,
                     no_writes, tq_broker_read_only(name + 6));
        nro += no_writes;
    }
    assert_true(nro >= 4);
    freeReplyObject(r);
    /* And such a call is made with FCALL_RO. */
    freeReplyObject(tq_test_redis_cmd(&srv, "CONFIG RESETSTAT"));
    r = tq_broker_call(conn, "version", 0, 0, NULL, NULL);
    assert_non_null(r);
    TQ_ASSERT_STR(r->str, tq_broker_version);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "INFO commandstats");
    assert_non_null(r);
    TQ_ASSERT_CONTAINS(r->str, "cmdstat_fcall_ro:calls=1,");
    TQ_ASSERT_NOT_CONTAINS(r->str, "cmdstat_fcall:");
    freeReplyObject(r);
}

/* The limits written in the Lua library are the C headers' numbers. */
static void test_limits_match_the_headers(void **state)
{
    (void)state;
    redisReply *r = tq_broker_call(conn, "info", 0, 0, NULL, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 5);
    assert_int_equal(r->element[0]->integer, WORKER_QUEUE_EVENTS_MAX);
    assert_int_equal(r->element[1]->integer, TQ_MSG_TIMEOUT_MAX);
    assert_int_equal(r->element[2]->integer, TQ_METRICS_TASKS_MAX);
    assert_int_equal(r->element[3]->integer, TQ_METRICS_MINUTE_TTL_S);
    assert_int_equal(r->element[4]->integer, TQ_MSG_ID_MAX - 1);
    freeReplyObject(r);
}

/* Another build's library (another version) is replaced by the first
 * call, which then runs. */
static void test_replaces_another_version(void **state)
{
    (void)state;
    size_t n = strlen(tq_broker_library);
    char *other = malloc(n + 64);
    assert_non_null(other);
    snprintf(other, n + 64, "%sVERSION = 'another'\n", tq_broker_library);
    redisReply *r = tq_test_redis_cmd(&srv, "FUNCTION LOAD %s", other);
    free(other);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    assert_string_equal(loaded(), "another");

    char key[TQ_KEYS_MAX];
    assert_true(tq_keys_fmt(PFX, TQ_KEY_LOCK, "default", "x", key, sizeof key) >= 0);
    const char *argv[] = {key, "me", "10000"};
    r = tq_broker_call(conn, "lock_acquire", 1, 2, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_string_equal(loaded(), tq_broker_version);
}

/* The tests run against a one-node Redis Cluster, which refuses a call
 * whose keys are not all in one slot: every call here, like every call of
 * the programs, names the keys of one queue (P:{q}:...) or only global
 * ones (P:{@}:...). The broker refuses such a call itself before it sends
 * it, so that every test on a single Redis checks it too. */
static void test_one_slot_per_call(void **state)
{
    (void)state;
    const char *argv[] = {Q("delayed"), Q("stats"), PFX ":{other}:queue", "100", "10"};
    assert_null(tq_broker_call(conn, "promote", 3, 2, argv, NULL));
    const char *ok[] = {Q("delayed"), Q("stats"), Q("queue"), "100", "10"};
    redisReply *r = tq_broker_call(conn, "promote", 3, 2, ok, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    /* What the cluster says to one sent anyway. */
    r = tq_test_redis_cmd(&srv, "FCALL tickq_promote 3 %s %s %s %s 100 10", Q("delayed"),
                          Q("stats"), PFX ":{other}:queue", tq_broker_version);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    TQ_ASSERT_CONTAINS(r->str, "CROSSSLOT");
    freeReplyObject(r);
}

/* A caller of another version gets an error and nothing is written. */
static void test_refuses_another_caller(void **state)
{
    (void)state;
    redisReply *r = tq_broker_call(conn, "info", 0, 0, NULL, NULL);
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "FCALL tickq_lock_acquire 1 %s old me 10000",
                          Q("lock:y"));
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "TICKQVERSION"));
    freeReplyObject(r);
    r = tq_test_redis_cmd(&srv, "EXISTS %s", Q("lock:y"));
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

/* The dead letter the library writes (a message requeued to a queue key
 * of the wrong type) is the one tq_msg_dead_letter writes, whatever the
 * bytes. */
static void test_dead_letters_match_the_codec(void **state)
{
    (void)state;
    static const struct {
        const char *msg;
        size_t len;
    } cases[] = {
        {"{\"v\":1,\"id\":\"a\",\"queue\":\"bad queue\"}", 0},
        {"not json at all / \"quoted\" \\ \t", 0},
        {"caf\xc3\xa9 \xe2\x82\xac", 0}, /* valid UTF-8 */
        {"bad \xff\xfe utf-8", 0},       /* invalid: base64 */
        {"nul \0 inside", 13},           /* a NUL byte: base64 */
        {"\xed\xa0\x80 surrogate", 0},   /* invalid: base64 */
        {"ab", 0},                       /* base64 padding cases below */
        {"\xc0", 1},
        {"\xc0\xc1", 2},
        {"\xc0\xc1\xf5", 3},
    };
    freeReplyObject(tq_test_redis_cmd(&srv, "SET %s not-a-list", Q("queue")));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].msg);
        freeReplyObject(tq_test_redis_cmd(&srv, "LPUSH %s %b", Q("processing:w1"),
                                          cases[i].msg, len));
        const char *argv[] = {Q("processing:w1"), Q("dead"),  Q("stats"), Q("lock:"),
                              Q("queue"),         "promoter", "2000",     cases[i].msg};
        size_t lens[8];
        for (int k = 0; k < 8; k++)
            lens[k] = k == 7 ? len : strlen(argv[k]);
        redisReply *r = tq_broker_call(conn, "requeue_orphan", 5, 3, argv, lens);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
            fail_msg("case %zu: requeue_orphan: %s", i,
                     r->type == REDIS_REPLY_ERROR ? r->str : "not 1");
        freeReplyObject(r);
        r = tq_test_redis_cmd(&srv, "LPOP %s", Q("dead"));
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        json_error_t jerr;
        json_t *got = json_loadb(r->str, r->len, 0, &jerr);
        if (!got)
            fail_msg("case %zu: invalid JSON %s: %s", i, r->str, jerr.text);
        const char *err = json_string_value(json_object_get(got, "error"));
        assert_non_null(err);
        TQ_ASSERT_CONTAINS(err, "requeue: ");
        TQ_ASSERT_CONTAINS(err, Q("queue"));
        size_t wlen;
        char *want_s = tq_msg_dead_letter(cases[i].msg, len, "undecodable", err,
                                          "promoter", 2.0, &wlen);
        json_t *want = json_loadb(want_s, wlen, 0, &jerr);
        assert_non_null(want);
        if (!json_equal(got, want))
            fail_msg("case %zu: %s != %s", i, r->str, want_s);
        json_decref(got);
        json_decref(want);
        free(want_s);
        freeReplyObject(r);
    }
}

/* An integer reply, or fails. */
static long long integer_of(const char *fmt, const char *a)
{
    redisReply *r = tq_test_redis_cmd(&srv, fmt, a);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* fn (fetch or claim) with deliver's keys and arguments for worker w1 on
 * queue default, then last (fetch's max, claim's message). */
static redisReply *deliver(const char *fn, const char *last)
{
    const char *argv[] = {Q("processing:w1"),
                          Q("consumers"),
                          Q("stats"),
                          Q("deliveries"),
                          Q("dead"),
                          Q("events"),
                          Q("paused"),
                          Q("lock:"),
                          Q("result:"),
                          Q("queue"),
                          "w1",
                          "1000",
                          "10000",
                          "30000",
                          "5000",
                          "5",
                          "default",
                          last};
    return tq_broker_call(conn, fn, 10, 8, argv, NULL);
}

static redisReply *fetch(const char *max)
{
    return deliver("fetch", max);
}

/* A fetch that fails after it took messages off the queue (its events
 * stream's IDs are used up, a redelivery wants an event) loses none: they
 * are in processing, where the orphan sweep finds them. */
static void test_fetch_loses_nothing_when_an_event_fails(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        char m[128];
        snprintf(m, sizeof m, "{\"v\":1,\"id\":\"m%d\",\"task\":\"noop\"}", i);
        freeReplyObject(tq_test_redis_cmd(&srv, "LPUSH %s %s", Q("queue"), m));
    }
    freeReplyObject(tq_test_redis_cmd(
        &srv, "XADD %s 18446744073709551615-18446744073709551615 a b", Q("events")));
    freeReplyObject(tq_test_redis_cmd(&srv, "HSET %s m2 1", Q("deliveries")));
    redisReply *r = fetch("10");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(
        integer_of("LLEN %s", Q("queue")) + integer_of("LLEN %s", Q("processing:w1")), 5);
}

/* max outside 1..1000 is refused before anything moves. */
static void test_fetch_bounds_max(void **state)
{
    (void)state;
    freeReplyObject(tq_test_redis_cmd(&srv, "LPUSH %s x", Q("queue")));
    static const char *const bad[] = {"0", "1001", "9000", "nan", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        redisReply *r = fetch(bad[i]);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
        assert_int_equal(integer_of("LLEN %s", Q("queue")), 1);
    }
}

/* A final result is the done marker: its message is acked without being
 * delivered; a retrying result, or a result key of the wrong type, is not
 * done. */
static void test_final_result_is_the_done_marker(void **state)
{
    (void)state;
    static const struct {
        const char *id, *result; /* result NULL: none; "" a hash */
        int delivered;
    } cases[] = {
        {"d-success", "{\"id\":\"d-success\",\"status\":\"success\"}", 0},
        {"d-failure", "{\"id\":\"d-failure\",\"status\":\"failure\"}", 0},
        {"d-retrying", "{\"id\":\"d-retrying\",\"status\":\"retrying\"}", 1},
        {"d-output",
         "{\"status\":\"success\",\"output\":\"\\\"status\\\":\\\"retrying\\\"\"}", 0},
        {"d-hash", "", 1},
        {"d-none", NULL, 1},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        char m[128], key[96];
        snprintf(m, sizeof m, "{\"v\":1,\"id\":\"%s\",\"task\":\"noop\"}", cases[i].id);
        freeReplyObject(tq_test_redis_cmd(&srv, "LPUSH %s %s", Q("queue"), m));
        snprintf(key, sizeof key, Q("result:%s"), cases[i].id);
        if (cases[i].result && cases[i].result[0])
            freeReplyObject(tq_test_redis_cmd(&srv, "SET %s %s", key, cases[i].result));
        else if (cases[i].result)
            freeReplyObject(tq_test_redis_cmd(&srv, "HSET %s a b", key));
    }
    redisReply *r = fetch("10");
    assert_non_null(r);
    if (r->type != REDIS_REPLY_ARRAY)
        fail_msg("fetch: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        for (size_t j = 1; j + 2 < r->elements; j += 3)
            if (r->element[j + 2]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[j + 2]->str, cases[i].id) == 0)
                found = 1;
        if (found != cases[i].delivered)
            fail_msg("%s: delivered %d, want %d", cases[i].id, found, cases[i].delivered);
    }
    freeReplyObject(r);
    assert_int_equal(integer_of("LLEN %s", Q("processing:w1")), 3);
    redisReply *d = tq_test_redis_cmd(&srv, "HGET %s duplicates", Q("stats"));
    assert_non_null(d);
    assert_string_equal(d->str ? d->str : "", "3");
    freeReplyObject(d);
}

/* A MessagePack float 64, which tq_broker_pack_* has no need to write. */
static void pack_double(tq_buf *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    char out[9] = {(char)0xcb};
    for (int i = 0; i < 8; i++)
        out[1 + i] = (char)(bits >> (56 - 8 * i));
    tq_buf_put(b, out, sizeof out);
}

/* complete with hand-made items: one whose fields or keys do not hold is
 * refused before the first write, in an array or as a value shared by
 * every item; two items of one id in a batch apply once. */
static void test_complete_checks_items_first(void **state)
{
    (void)state;
    const char *msg = "{\"v\":1,\"id\":\"X\",\"task\":\"noop\"}";
    const char *msg2 = "{\"v\":1,\"id\":\"X\",\"task\":\"noop\",\"attempt\":1}";
    /* KEYS[13], given only to HISTORY_IS_STATS, names the same key as
     * KEYS[2]. */
    enum { NKEYS = 13 };
    const char *keys[NKEYS] = {
        Q("processing:w1"), Q("stats"),     Q("dead"),    Q("delayed"), Q("deliveries"),
        Q("events"),        Q("tasks"),     Q("metrics"), Q("lock:X"),  Q("result:X"),
        Q("minute:1"),      Q("counter:c"), Q("stats")};
    enum {
        LB_WITHOUT_LATE,  /* a lateness bucket without the lateness */
        FIXED_INDEX,      /* the history is KEYS[1], the processing list */
        MSG_NOT_STRING,   /* a message that is an array */
        RMS_NOT_NUMBER,   /* a shared rms of "x" */
        ML_NAN,           /* a label that is NaN: it would be a table key */
        RMS_INFINITE,     /* a shared rms of infinity */
        TOO_MANY,         /* 1001 items */
        EFFECT_IS_RESULT, /* the effect key is the item's result key */
        HISTORY_IS_STATS, /* the history key is P:{q}:stats under another index */
        TTL_ZERO,         /* a final TTL of 0 ms */
        GOOD_ARRAYS,      /* every column an array */
        GOOD              /* every column but msg one shared value */
    };
    for (int variant = 0; variant <= GOOD; variant++) {
        tq_buf b = {0};
        if (variant == 0 || variant == GOOD) {
            /* Two messages of one id in processing, its lock this
             * worker's, and nothing else. */
            assert_int_equal(tq_test_redis_flush(&srv), 0);
            freeReplyObject(
                tq_test_redis_cmd(&srv, "RPUSH %s %s %s", Q("processing:w1"), msg, msg2));
            freeReplyObject(tq_test_redis_cmd(&srv, "SET %s w1", Q("lock:X")));
        }
        int shared = variant == RMS_NOT_NUMBER || variant == RMS_INFINITE ||
                     variant == TOO_MANY || variant == GOOD;
        int n = variant == TOO_MANY ? 1001 : shared || variant == GOOD_ARRAYS ? 2 : 1;
        const char *str[][2] = {{"op", "done"},
                                {"id", "X"},
                                {"task", "noop"},
                                {"status", "success"},
                                {"result", "{}"},
                                {"extra", ""},
                                {"by", "1"},
                                {"finished", "60000"},
                                {"err", ""},
                                {"q", "default"},
                                {"ml", "default\tnoop"}};
        const char *absent[] = {"ix", "due", "rb", "rt", "late"}; /* "" */
        int nstr = (int)(sizeof str / sizeof str[0]), nabsent = 5;
        tq_broker_pack_map(&b, (uint32_t)(1 + 1 + nstr + nabsent + 6));
        tq_broker_pack_cstr(&b, "n");
        tq_broker_pack_int(&b, n);
        tq_broker_pack_cstr(&b, "msg");
        tq_broker_pack_array(&b, (uint32_t)n);
        for (int j = 0; j < n; j++) {
            if (variant == MSG_NOT_STRING)
                tq_broker_pack_array(&b, 0);
            else
                tq_broker_pack_cstr(&b, j ? msg2 : msg);
        }
        /* An array of n values, or one value for all. */
        for (int x = 0; x < nstr; x++) {
            tq_broker_pack_cstr(&b, str[x][0]);
            if (!shared)
                tq_broker_pack_array(&b, (uint32_t)n);
            for (int j = 0; j < (shared ? 1 : n); j++) {
                if (variant == ML_NAN && strcmp(str[x][0], "ml") == 0)
                    pack_double(&b, NAN);
                else
                    tq_broker_pack_cstr(&b, str[x][1]);
            }
        }
        for (int x = 0; x < nabsent; x++) {
            tq_broker_pack_cstr(&b, absent[x]);
            if (!shared)
                tq_broker_pack_array(&b, (uint32_t)n);
            for (int j = 0; j < (shared ? 1 : n); j++)
                tq_broker_pack_cstr(&b, "");
        }
        const char *idx[] = {"k", "m", "h", "e", "rms", "lb"};
        int h = variant == FIXED_INDEX ? 1 : variant == HISTORY_IS_STATS ? 13 : 0;
        int val[] = {9, 11, h, variant == EFFECT_IS_RESULT ? 10 : 12, 0, 0};
        for (int x = 0; x < 6; x++) {
            tq_broker_pack_cstr(&b, idx[x]);
            if (!shared)
                tq_broker_pack_array(&b, (uint32_t)n);
            for (int j = 0; j < (shared ? 1 : n); j++) {
                if (x == 5)
                    tq_broker_pack_cstr(&b, variant == LB_WITHOUT_LATE ? "3" : "");
                else if (x == 4 && variant == RMS_NOT_NUMBER)
                    tq_broker_pack_cstr(&b, "x");
                else if (x == 4 && variant == RMS_INFINITE)
                    pack_double(&b, INFINITY);
                else
                    tq_broker_pack_int(&b, val[x]);
            }
        }
        assert_false(b.oom);
        int nkeys = variant == HISTORY_IS_STATS ? NKEYS : NKEYS - 1;
        const char *argv[NKEYS + 4];
        size_t lens[NKEYS + 4];
        for (int k = 0; k < nkeys; k++) {
            argv[k] = keys[k];
            lens[k] = strlen(keys[k]);
        }
        const char *args[] = {"w1", variant == TTL_ZERO ? "0" : "86400000", "86400000",
                              b.p};
        for (int k = 0; k < 4; k++) {
            argv[nkeys + k] = args[k];
            lens[nkeys + k] = k == 3 ? b.len : strlen(args[k]);
        }
        redisReply *r = tq_broker_call(conn, "complete", nkeys, 4, argv, lens);
        free(b.p);
        assert_non_null(r);
        if (variant < GOOD_ARRAYS) {
            if (r->type != REDIS_REPLY_ERROR || !strstr(r->str, "ERR complete: "))
                fail_msg("variant %d: not refused by complete's checks: %s", variant,
                         r->type == REDIS_REPLY_ERROR ? r->str : "(no error)");
            assert_int_equal(integer_of("LLEN %s", Q("processing:w1")), 2);
            assert_int_equal(integer_of("EXISTS %s", Q("result:X")), 0);
            assert_int_equal(integer_of("EXISTS %s", Q("stats")), 0);
        } else {
            if (r->type != REDIS_REPLY_ARRAY)
                fail_msg("complete: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
            assert_int_equal(r->element[0]->integer, 1);
            assert_int_equal(r->element[1]->integer, 0); /* a duplicate */
            redisReply *v = tq_test_redis_cmd(&srv, "GET %s", Q("counter:c"));
            assert_non_null(v);
            assert_string_equal(v->str ? v->str : "", "1");
            freeReplyObject(v);
            assert_int_equal(integer_of("EXISTS %s", Q("lock:X")), 0);
        }
        freeReplyObject(r);
    }
}

/* Arguments no tickq program sends, each refused with the function's
 * error before anything is written: numbers that are not whole or not in
 * range (each would make a later command fail, or a loop run on), too few
 * keys, and keys that name one another (check() reads each on its own, so
 * a key given twice passes as two types). */
static void test_bad_arguments_write_nothing(void **state)
{
    (void)state;
#define K(x) Q(x)
    /* fetch's and claim's ten keys */
#define DELIVER_KEYS                                                                     \
    K("processing:w"), K("consumers"), K("stats"), K("deliveries"), K("dead"),           \
        K("events"), K("paused"), K("lock:"), K("result:"), K("queue")
    static const struct {
        const char *fn, *err;
        int nkeys;
        const char *argv[24];
    } cases[] = {
        {"promote",
         "ERR promote",
         3,
         {K("delayed"), K("stats"), K("queue"), "(5", "100"}},
        {"promote", "ERR promote", 3, {K("delayed"), K("stats"), K("queue"), "100", "0"}},
        {"promote",
         "ERR promote",
         3,
         {K("delayed"), K("delayed"), K("queue"), "100", "10"}},
        {"requeue_orphan",
         "ERR requeue_orphan",
         5,
         {K("processing:w"), K("dead"), K("stats"), K("lock:"), K("queue"), "w", "x",
          "{}"}},
        {"requeue",
         "ERR requeue",
         4,
         {K("processing:w"), K("dead"), K("stats"), K("consumers"), "w", "100", "1"}},
        {"reap",
         "ERR reap",
         7,
         {K("consumers"), K("dead"), K("stats"), K("deliveries"), K("processing:"),
          K("lock:"), K("queue"), "100", "abc"}},
        {"register",
         "ERR register",
         3,
         {G("workers"), G("worker:w"), G("queues"), "w", "i", "nan", "100"}},
        {"heartbeat",
         "ERR heartbeat",
         2,
         {G("workers"), G("worker:w"), "w", "i", "100", "3000", "host"}},
        {"heartbeat",
         "ERR heartbeat",
         2,
         {G("workers"), G("worker:w"), "w", "i", "100", "0"}},
        {"heartbeat",
         "ERR heartbeat",
         2,
         {G("workers"), G("workers"), "w", "i", "100", "3000"}},
        {"consume", "ERR consume", 1, {K("consumers"), "w", "-1"}},
        {"forget", "ERR forget", 2, {G("workers"), G("worker:"), "1.5", "100"}},
        {"forget", "ERR forget", 1, {G("workers"), "100", "100"}},
        {"leave", "ERR leave", 2, {G("workers"), G("workers"), "w", "i"}},
        {"leave", "ERR leave", 1, {G("workers"), "w", "i"}},
        {"schedule_put",
         "ERR schedule_put",
         2,
         {G("queues"), G("queues"), "s", "{}", "q"}},
        /* fetch: a lock TTL of 0 ms; max_deliveries 0; no queue name; a
         * queue that is the processing list. */
        {"fetch",
         "ERR deliver",
         10,
         {DELIVER_KEYS, "w", "100", "30000", "0", "0", "10", "a", "10"}},
        {"fetch",
         "ERR deliver",
         10,
         {DELIVER_KEYS, "w", "100", "30000", "1000", "0", "0", "a", "10"}},
        {"fetch",
         "ERR deliver",
         10,
         {DELIVER_KEYS, "w", "100", "30000", "1000", "0", "10"}},
        {"fetch",
         "ERR fetch",
         10,
         {DELIVER_KEYS, "w", "100", "30000", "1000", "0", "10", "a", "0"}},
        {"fetch",
         "ERR deliver",
         10,
         {K("processing:w"), K("consumers"), K("stats"), K("deliveries"), K("dead"),
          K("events"), K("paused"), K("lock:"), K("result:"), K("processing:w"), "w",
          "100", "30000", "1000", "0", "10", "a", "10"}},
        {"claim",
         "ERR claim",
         10,
         {DELIVER_KEYS, "w", "100", "30000", "1000", "0", "10", "a"}},
        {"lock_acquire", "ERR lock_acquire", 1, {K("lock:x"), "me", "0"}},
        {"lock_extend", "ERR lock_extend", 1, {K("lock:x"), "me", "-5"}},
        {"publish", "ERR publish", 3, {K("queue"), K("published"), K("queue"), ""}},
        {"publish", "ERR publish", 3, {K("queue"), K("published"), K("stats"), "x", "1"}},
        {"publish",
         "ERR publish",
         3,
         {K("queue"), K("published"), K("stats"), "\x90", "1e300"}},
        {"advance", "ERR advance", 2, {G("leader"), G("schedule-state"), "b", ""}},
        {"advance", "ERR advance", 2, {G("leader"), G("leader"), "b", ""}},
        {"dead_requeue",
         "ERR dead_requeue",
         4,
         {K("dead"), K("deliveries"), K("queue"), K("dead"), "1", "letter", "{}", "x"}},
        {"dead_requeue",
         "ERR dead_requeue",
         4,
         {K("dead"), K("deliveries"), K("queue"), K("result:x"), "0", "letter", "{}",
          "x"}},
        {"queues_add", "ERR queues_add", 1, {G("queues")}},
        {"complete",
         "ERR complete",
         8,
         {K("processing:w"), K("stats"), K("stats"), K("delayed"), K("deliveries"),
          K("events"), K("tasks"), K("metrics"), "w", "1000", "1000", ""}},
        {"complete",
         "ERR complete",
         8,
         {K("processing:w"), K("stats"), K("dead"), K("delayed"), K("deliveries"),
          K("events"), K("tasks"), K("metrics"), "w", "0", "1000", ""}},
    };
#undef DELIVER_KEYS
#undef K
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[24];
        int n = 0;
        for (; n < 24 && cases[i].argv[n]; n++)
            argv[n] = cases[i].argv[n];
        redisReply *r = tq_broker_call(conn, cases[i].fn, cases[i].nkeys,
                                       n - cases[i].nkeys, argv, NULL);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_ERROR ||
            strncmp(r->str, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu (%s): %s", i, cases[i].fn,
                     r->type == REDIS_REPLY_ERROR ? r->str : "not refused");
        freeReplyObject(r);
        assert_int_equal(integer_of("DBSIZE%s", ""), 0);
    }
}

/* A pushed tick is remembered from when it was pushed, not from its own
 * time: ticks more than a day apart in one catch-up are all remembered,
 * and pushed once however often the beat asks. */
static void test_publish_remembers_old_ticks(void **state)
{
    (void)state;
    static const char *const ticks[][2] = {{"s@1000", "1000"},
                                           {"s@400000000", "400000000"}};
    tq_buf b = {0};
    tq_broker_pack_array(&b, 2);
    for (int i = 0; i < 2; i++) {
        tq_broker_pack_map(&b, 3);
        tq_broker_pack_cstr(&b, "i");
        tq_broker_pack_cstr(&b, ticks[i][0]);
        tq_broker_pack_cstr(&b, "t");
        tq_broker_pack_cstr(&b, ticks[i][1]);
        tq_broker_pack_cstr(&b, "m");
        tq_broker_pack_cstr(&b, ticks[i][0]);
    }
    assert_false(b.oom);
    const char *argv[] = {Q("queue"), Q("published"), Q("stats"), b.p, "1800000000000"};
    size_t lens[] = {strlen(argv[0]), strlen(argv[1]), strlen(argv[2]), b.len, 13};
    for (int round = 0; round < 3; round++) {
        redisReply *r = tq_broker_call(conn, "publish", 3, 2, argv, lens);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 3);
        for (int i = 0; i < 2; i++)
            if (r->element[i]->integer != (round == 0))
                fail_msg("round %d, tick %s: %lld", round, ticks[i][0],
                         r->element[i]->integer);
        freeReplyObject(r);
    }
    free(b.p);
    assert_int_equal(integer_of("LLEN %s", Q("queue")), 2);
    assert_int_equal(integer_of("ZCARD %s", Q("published")), 2);
}

/* A message of a paused queue goes back to its queue only if it is still
 * in processing: the reaper may have requeued it meanwhile. */
static void test_claim_paused_requeues_once(void **state)
{
    (void)state;
    freeReplyObject(tq_test_redis_cmd(&srv, "SET %s 1", Q("paused")));
    const char *msg = "{\"v\":1,\"id\":\"x\",\"task\":\"noop\",\"queue\":\"default\"}";
    redisReply *r = deliver("claim", msg);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, -3);
    freeReplyObject(r);
    assert_int_equal(integer_of("LLEN %s", Q("queue")), 0);
    freeReplyObject(tq_test_redis_cmd(&srv, "LPUSH %s %s", Q("processing:w1"), msg));
    r = deliver("claim", msg);
    assert_non_null(r);
    assert_int_equal(r->element[0]->integer, -3);
    freeReplyObject(r);
    assert_int_equal(integer_of("LLEN %s", Q("queue")), 1);
    assert_int_equal(integer_of("LLEN %s", Q("processing:w1")), 0);
}

/* WAIT for a replica that is not there waits its whole timeout, even one
 * longer than the connection's command timeout, on the same connection;
 * it answers 0 replicas and leaves the command timeout as it was. */
static void test_wait_outlasts_the_command_timeout(void **state)
{
    (void)state;
    tq_conn_set_timeout_ms(conn, 300);
    uint64_t connects = tq_conn_connects(conn);
    int64_t t0 = tq_clock_mono_ms();
    assert_int_equal(tq_broker_wait(conn, 1, 800), 0);
    int64_t took = tq_clock_mono_ms() - t0;
    if (took < 700)
        fail_msg("WAIT returned after %lld ms", (long long)took);
    assert_int_equal(tq_conn_connects(conn), connects);
    assert_int_equal(tq_conn_timeout_ms(conn), 300);
    tq_conn_set_timeout_ms(conn, 0);
}

/* A user who may not load functions gets the call's error reply, not
 * NULL (which reads as an outage), and the process does not load again
 * within the second. */
static void test_refused_load_is_an_error_reply(void **state)
{
    (void)state;
    freeReplyObject(
        tq_test_redis_cmd(&srv, "ACL SETUSER nofn on >pw ~* &* +@all -function"));
    char url[256];
    snprintf(url, sizeof url, "redis://nofn:pw@127.0.0.1:%d/0", srv.port);
    tq_url u;
    assert_int_equal(tq_url_parse(url, &u, NULL, 0), 0);
    tq_conn *c = tq_conn_new(&u, "nofn");
    assert_non_null(c);
    freeReplyObject(tq_test_redis_cmd(&srv, "CONFIG RESETSTAT"));
    for (int i = 0; i < 20; i++) {
        redisReply *r = tq_broker_call(c, "info", 0, 0, NULL, NULL);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
    }
    redisReply *r = tq_test_redis_cmd(&srv, "INFO commandstats");
    assert_non_null(r);
    /* One refused FUNCTION LOAD at most (NOPERM is counted as rejected,
     * not as a call, in Redis 7), never twenty. */
    const char *at = strstr(r->str, "cmdstat_function|load:");
    long long calls = 0, rejected = 0;
    if (at) {
        const char *cs = strstr(at, "calls=");
        const char *rj = strstr(at, "rejected_calls=");
        calls = cs ? atoll(cs + 6) : 0;
        rejected = rj ? atoll(rj + 15) : 0;
    }
    assert_true(calls + rejected <= 1);
    freeReplyObject(r);
    tq_conn_free(c);
    freeReplyObject(tq_test_redis_cmd(&srv, "ACL DELUSER nofn"));
}

/* Pipelined calls that find the library missing did nothing and say so
 * (tq_broker_needs_load); the same call made again loads it. */
static void test_pipelined_calls_reload(void **state)
{
    (void)state;
    const char *argv[] = {Q("lock:p"), "me", "10000"};
    for (int i = 0; i < 2; i++)
        assert_int_equal(tq_broker_append(conn, "lock_acquire", 1, 2, argv, NULL), 0);
    for (int i = 0; i < 2; i++) {
        redisReply *r = tq_conn_reply(conn);
        assert_true(tq_broker_needs_load(r));
        freeReplyObject(r);
    }
    assert_int_equal(integer_of("EXISTS %s", Q("lock:p")), 0);
    redisReply *r = tq_broker_call(conn, "lock_acquire", 1, 2, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tq_broker_append(conn, "lock_acquire", 1, 2, argv, NULL), 0);
    for (int i = 0; i < 3; i++) {
        r = tq_conn_reply(conn);
        assert_non_null(r);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
    }
}

/* Out of memory, a function that writes is refused before it starts, and
 * one that only deletes (allow-oom) still runs. */
static void test_out_of_memory(void **state)
{
    (void)state;
    const char *hold[] = {Q("lock:o"), "me", "10000"};
    redisReply *r = tq_broker_call(conn, "lock_acquire", 1, 2, hold, NULL);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    freeReplyObject(tq_test_redis_cmd(&srv, "CONFIG SET maxmemory 1"));
    const char *other[] = {Q("lock:o2"), "me", "10000"};
    r = tq_broker_call(conn, "lock_acquire", 1, 2, other, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "OOM"));
    freeReplyObject(r);
    const char *release[] = {Q("lock:o"), "me"};
    r = tq_broker_call(conn, "lock_release", 1, 1, release, NULL);
    assert_non_null(r);
    int type = r->type;
    long long v = r->integer;
    freeReplyObject(r);
    freeReplyObject(tq_test_redis_cmd(&srv, "CONFIG SET maxmemory 0"));
    assert_int_equal(type, REDIS_REPLY_INTEGER);
    assert_int_equal(v, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_loads_when_missing, setup),
        cmocka_unit_test_setup(test_limits_match_the_headers, setup),
        cmocka_unit_test_setup(test_read_only_functions_match_the_library, setup),
        cmocka_unit_test_setup(test_replaces_another_version, setup),
        cmocka_unit_test_setup(test_refuses_another_caller, setup),
        cmocka_unit_test_setup(test_one_slot_per_call, setup),
        cmocka_unit_test_setup(test_dead_letters_match_the_codec, setup),
        cmocka_unit_test_setup(test_fetch_loses_nothing_when_an_event_fails, setup),
        cmocka_unit_test_setup(test_fetch_bounds_max, setup),
        cmocka_unit_test_setup(test_final_result_is_the_done_marker, setup),
        cmocka_unit_test_setup(test_complete_checks_items_first, setup),
        cmocka_unit_test_setup(test_bad_arguments_write_nothing, setup),
        cmocka_unit_test_setup(test_publish_remembers_old_ticks, setup),
        cmocka_unit_test_setup(test_claim_paused_requeues_once, setup),
        cmocka_unit_test_setup(test_wait_outlasts_the_command_timeout, setup),
        cmocka_unit_test_setup(test_pipelined_calls_reload, setup),
        cmocka_unit_test_setup(test_out_of_memory, setup),
        /* Last: a refused load holds loads back for a second, process-wide. */
        cmocka_unit_test_setup(test_refused_load_is_an_error_reply, setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
