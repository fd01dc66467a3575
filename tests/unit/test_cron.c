/* Tests of common/cron: the parser (every item form, names, macros, the
 * flags of the day and DST rules, every kind of mistake), next fire times
 * in UTC and across the daylight-saving changes of New York, London,
 * Berlin, Sydney, Lord Howe (30 minutes), Santiago (at midnight), Chatham
 * (+12:45), St John's (-3:30) and Kolkata (none), years past 2037,
 * expressions that never fire, prev, and a cross-check against a
 * minute-by-minute brute-force scan around hundreds of DST changes.
 * (tests/integration/test_cron_croniter.sh cross-checks python3-croniter.) */
#include "tests/support/check.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/cron.h"

static const tq_tz *zone(const char *name)
{
    const tq_tz *z = NULL;
    char err[256] = "";
    int rc = tq_tz_get(name, &z, err, sizeof err);
    if (rc != 0)
        fail_msg("tq_tz_get(%s): %s", name, err);
    return z;
}

static tq_cron parse_ok(const char *expr)
{
    tq_cron c;
    char err[512] = "";
    int rc = tq_cron_parse(&c, expr, err, sizeof err);
    if (rc != 0)
        fail_msg("parse '%s': %d (%s): %s", expr, rc, tq_strerror(rc), err);
    return c;
}

static int64_t iso(const char *text)
{
    int64_t ms;
    char err[256] = "";
    if (tq_tz_parse_iso(text, zone("UTC"), &ms, err, sizeof err) != 0)
        fail_msg("bad test time '%s': %s", text, err);
    return ms;
}

/* The next fire times of expr in zone after from, as ISO-8601 UTC, must be
 * the NULL-terminated list. */
static void runs(const char *expr, const char *zname, const char *from, ...)
{
    tq_cron c = parse_ok(expr);
    const tq_tz *z = zone(zname);
    int64_t t = iso(from);
    va_list ap;
    va_start(ap, from);
    for (int i = 0;; i++) {
        const char *want = va_arg(ap, const char *);
        if (!want)
            break;
        char got[TQ_TZ_ISO_MAX] = "never";
        t = tq_cron_next(&c, z, t);
        if (t != TQ_CRON_NEVER)
            tq_tz_format_utc(t, got, sizeof got);
        if (strcmp(got, want) != 0) {
            va_end(ap);
            fail_msg("'%s' in %s after %s: run %d: expected %s, got %s", expr, zname,
                     from, i + 1, want, got);
        }
    }
    va_end(ap);
}

/* ---- parsing ---- */

static uint64_t bits(const int *v, int n)
{
    uint64_t b = 0;
    for (int i = 0; i < n; i++)
        b |= 1ull << v[i];
    return b;
}

#define BITS(...)                                                                        \
    bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

static void test_parse_items(void **state)
{
    (void)state;
    tq_cron c = parse_ok("* * * * *");
    TQ_ASSERT_INT(c.minutes, (1ull << 60) - 1);
    TQ_ASSERT_INT(c.hours, (1u << 24) - 1);
    TQ_ASSERT_INT(c.days, 0xfffffffeu);
    TQ_ASSERT_INT(c.months, 0x1ffe);
    TQ_ASSERT_INT(c.weekdays, 0x7f);
    TQ_ASSERT_INT(c.flags, TQ_CRON_DOM_STAR | TQ_CRON_DOW_STAR | TQ_CRON_HOUR_STAR);

    c = parse_ok("*/15 1-10/3 5/10 JAN,jul,Dec MON-FRI");
    TQ_ASSERT_INT(c.minutes, BITS(0, 15, 30, 45));
    TQ_ASSERT_INT(c.hours, BITS(1, 4, 7, 10));
    TQ_ASSERT_INT(c.days, BITS(5, 15, 25));
    TQ_ASSERT_INT(c.months, BITS(1, 7, 12));
    TQ_ASSERT_INT(c.weekdays, BITS(1, 2, 3, 4, 5));
    TQ_ASSERT_INT(c.flags, 0);

    c = parse_ok("5/15 0,12,23 1,15,31 */5 7");
    TQ_ASSERT_INT(c.minutes, BITS(5, 20, 35, 50));
    TQ_ASSERT_INT(c.hours, BITS(0, 12, 23));
    TQ_ASSERT_INT(c.days, BITS(1, 15, 31));
    TQ_ASSERT_INT(c.months, BITS(1, 6, 11));
    TQ_ASSERT_INT(c.weekdays, BITS(0)); /* 7 is Sunday */

    c = parse_ok("59 23 31 12 5-7");
    TQ_ASSERT_INT(c.weekdays, BITS(0, 5, 6));
    c = parse_ok("0 0 * * */2");
    TQ_ASSERT_INT(c.weekdays, BITS(0, 2, 4, 6));
    c = parse_ok("0 0 * * sun,Sat");
    TQ_ASSERT_INT(c.weekdays, BITS(0, 6));
    c = parse_ok("0 0 * feb-APR/2 TUE/2");
    TQ_ASSERT_INT(c.months, BITS(2, 4));
    TQ_ASSERT_INT(c.weekdays, BITS(2, 4, 6)); /* 2 through 7, step 2 */
    c = parse_ok("  0\t0   1  1  *  ");
    TQ_ASSERT_INT(c.minutes, 1);
    TQ_ASSERT_INT(c.flags, TQ_CRON_DOW_STAR);

    /* The flags: '*'-led day fields, '*' or '* /n' hours. */
    TQ_ASSERT_INT(parse_ok("0 */2 */3 * *").flags,
                  TQ_CRON_HOUR_STAR | TQ_CRON_DOM_STAR | TQ_CRON_DOW_STAR);
    TQ_ASSERT_INT(parse_ok("0 0-23 1 * MON").flags, 0);
    TQ_ASSERT_INT(parse_ok("0 *,1 1 * *").flags, TQ_CRON_DOW_STAR);
    TQ_ASSERT_INT(parse_ok("0 1 * * 1").flags, TQ_CRON_DOM_STAR);
}

static void test_parse_macros(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {"@DAILY", "0 0 * * *"},    {" @hourly ", "0 * * * *"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        tq_cron a = parse_ok(pairs[i][0]), b = parse_ok(pairs[i][1]);
        if (memcmp(&a, &b, sizeof a) != 0)
            fail_msg("'%s' is not '%s'", pairs[i][0], pairs[i][1]);
    }
}

static void parse_bad(const char *expr, const char *needle)
{
    tq_cron c;
    char err[512] = "";
    memset(&c, 0xa5, sizeof c);
    TQ_ASSERT_RC_ERR(tq_cron_parse(&c, expr, err, sizeof err), TQ_EINVAL, err);
    TQ_ASSERT_CONTAINS(err, needle);
    TQ_ASSERT_INT(c.minutes, 0); /* nothing half-parsed is left */
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_bad("",
              "expected 5 fields (minute hour day-of-month month day-of-week), got 0");
    parse_bad("   ", "got 0");
    parse_bad("* * * *", "expected 5 fields");
    parse_bad("* * * *", "got 4");
    parse_bad("0 * * * * *", "got 6");
    parse_bad("60 * * * *", "minute field: 60 is out of range 0-59");
    parse_bad("* 24 * * *", "hour field: 24 is out of range 0-23");
    parse_bad("* * 0 * *", "day-of-month field: 0 is out of range 1-31");
    parse_bad("* * 32 * *", "day-of-month field: 32 is out of range 1-31");
    parse_bad("* * * 0 *", "month field: 0 is out of range 1-12");
    parse_bad("* * * 13 *", "month field: 13 is out of range 1-12");
    parse_bad("* * * * 8", "day-of-week field: 8 is out of range 0-7");
    parse_bad("99999999999 * * * *", "minute field: 99999999999 is out of range");
    parse_bad("*/0 * * * *", "minute field: step 0");
    parse_bad("1-5/0 * * * *", "step 0");
    parse_bad("*/61 * * * *", "step 61 is larger than 59");
    parse_bad("* * * */13 *", "step 13 is larger than 12");
    parse_bad("5-2 * * * *", "minute field: reversed range '5-2' (5 is after 2)");
    parse_bad("* * * DEC-JAN *", "month field: reversed range 'DEC-JAN'");
    parse_bad("* * * * FRI-MON", "reversed range 'FRI-MON'");
    parse_bad("* * * FOO *", "month field: unknown name 'FOO' (use JAN-DEC)");
    parse_bad("* * * * MONDAY", "day-of-week field: unknown name 'MONDAY' (use SUN-SAT)");
    parse_bad("* * * * JAN", "unknown name 'JAN'");
    parse_bad("* * * JANUARY *", "unknown name 'JANUARY'");
    parse_bad("abc * * * *", "minute field: 'abc' is not a number");
    parse_bad("* * MON * *", "day-of-month field: 'MON' is not a number");
    parse_bad("1,,2 * * * *", "minute field: empty item in '1,,2'");
    parse_bad("1, * * * *", "empty item");
    parse_bad(",1 * * * *", "empty item");
    parse_bad("* * * * ,", "day-of-week field: empty item");
    parse_bad("1- * * * *", "a value is missing");
    parse_bad("-1 * * * *", "unexpected '-'");
    parse_bad("*5 * * * *", "unexpected '5' in '*5'");
    parse_bad("1-5/ * * * *", "'/' must be followed by a step");
    parse_bad("1/x * * * *", "'/' must be followed by a step");
    parse_bad("? * * * *", "unexpected '?'");
    parse_bad("0 0 L * *", "'L' is not a number");
    parse_bad("@fortnightly", "unknown macro (use @yearly");
    parse_bad("@reboot", "unknown macro");
    parse_bad("@daily 0", "unknown macro");
    parse_bad("@", "unknown macro");
    /* The message quotes the expression. */
    parse_bad("0 0 32 * *", "'0 0 32 * *': day-of-month field");
    char longexpr[400];
    memset(longexpr, '1', sizeof longexpr - 1);
    longexpr[sizeof longexpr - 1] = '\0';
    parse_bad(longexpr, "at most 255 bytes");
}

/* ---- next, in UTC ---- */

static void test_next_utc(void **state)
{
    (void)state;
    runs("*/5 * * * *", "UTC", "2026-03-28T12:02:30Z", "2026-03-28T12:05:00Z",
         "2026-03-28T12:10:00Z", NULL);
    /* Strictly after: a fire time itself is not its own next. */
    runs("*/5 * * * *", "UTC", "2026-03-28T12:05:00Z", "2026-03-28T12:10:00Z", NULL);
    runs("*/5 * * * *", "UTC", "2026-03-28T12:04:59.999Z", "2026-03-28T12:05:00Z", NULL);
    runs("* * * * *", "UTC", "2026-12-31T23:59:00Z", "2027-01-01T00:00:00Z", NULL);
    runs("0 12 * * MON-FRI", "UTC", "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z",
         "2026-03-31T12:00:00Z", NULL);
    /* Vixie: both day fields restricted: either matches (the 13th or a
     * Friday); one of them '*'-led: both must (odd days that are Fridays). */
    runs("0 0 13 * 5", "UTC", "2026-03-01T00:00:00Z", "2026-03-06T00:00:00Z",
         "2026-03-13T00:00:00Z", "2026-03-20T00:00:00Z", "2026-03-27T00:00:00Z",
         "2026-04-03T00:00:00Z", "2026-04-10T00:00:00Z", "2026-04-13T00:00:00Z", NULL);
    runs("0 0 */2 * 5", "UTC", "2026-03-01T00:00:00Z", "2026-03-13T00:00:00Z",
         "2026-03-27T00:00:00Z", "2026-04-03T00:00:00Z", "2026-04-17T00:00:00Z", NULL);
    runs("0 0 * * 7", "UTC", "2026-03-28T00:00:00Z", "2026-03-29T00:00:00Z", NULL);
    runs("@yearly", "UTC", "2026-03-28T00:00:00Z", "2027-01-01T00:00:00Z",
         "2028-01-01T00:00:00Z", NULL);
    runs("0 0 29 2 *", "UTC", "2026-03-28T00:00:00Z", "2028-02-29T00:00:00Z",
         "2032-02-29T00:00:00Z", NULL);
    runs("0 0 31 * *", "UTC", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z",
         "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z", NULL);
    runs("0 9 1 * MON", "UTC", "2026-05-31T00:00:00Z", "2026-06-01T09:00:00Z",
         "2026-06-08T09:00:00Z", NULL);
    /* A Sunday February 29th: 2032, 2060, 2088, then 40 years to 2128. */
    runs("0 0 29 2 */7", "UTC", "2026-01-01T00:00:00Z", "2032-02-29T00:00:00Z",
         "2060-02-29T00:00:00Z", "2088-02-29T00:00:00Z", "2128-02-29T00:00:00Z", NULL);
    runs("30 4 * * *", "UTC", "1960-06-01T00:00:00Z", "1960-06-01T04:30:00Z", NULL);
    runs("59 23 31 12 *", "UTC", "9998-06-01T00:00:00Z", "9998-12-31T23:59:00Z",
         "9999-12-31T23:59:00Z", NULL);
}

static void test_never(void **state)
{
    (void)state;
    static const char *const never[] = {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 *"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        tq_cron c = parse_ok(never[i]);
        TQ_ASSERT_INT(tq_cron_ever(&c), 0);
        TQ_ASSERT_INT(tq_cron_next(&c, zone("UTC"), iso("2026-01-01T00:00:00Z")),
                      TQ_CRON_NEVER);
        TQ_ASSERT_INT(
            tq_cron_next(&c, zone("Europe/Berlin"), iso("2026-01-01T00:00:00Z")),
            TQ_CRON_NEVER);
        TQ_ASSERT_INT(tq_cron_prev(&c, zone("UTC"), iso("2026-01-01T00:00:00Z")),
                      TQ_CRON_NEVER);
    }
    /* Rare is not never. */
    static const char *const rare[] = {"0 0 29 2 *", "0 0 29 2 */7", "0 0 31 12 *",
                                       "0 0 */31 2 6"};
    for (size_t i = 0; i < sizeof rare / sizeof rare[0]; i++) {
        tq_cron c = parse_ok(rare[i]);
        TQ_ASSERT_INT(tq_cron_ever(&c), 1);
    }
    /* Out of range instants. */
    tq_cron c = parse_ok("* * * * *");
    TQ_ASSERT_INT(tq_cron_next(&c, zone("UTC"), INT64_MAX - 1), TQ_CRON_NEVER);
    TQ_ASSERT_INT(tq_cron_next(&c, zone("UTC"), INT64_MIN + 1), TQ_CRON_NEVER);
}

/* Found by tests/fuzz/fuzz_cron: prev from an instant past next's range
 * bisected against next's NEVER and answered an instant that is no fire. */
static void test_next_prev_range_end(void **state)
{
    (void)state;
    tq_cron c = parse_ok(" 0 3 * * SUN ");
    const tq_tz *z = zone("America/New_York");
    const int64_t at[] = {9223371403128995839LL, INT64_MAX, INT64_MAX / 1000 * 999,
                          INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        int64_t p = tq_cron_prev(&c, z, at[i]);
        if (p != TQ_CRON_NEVER && (p > at[i] || tq_cron_next(&c, z, p - 1) != p))
            fail_msg("prev(%lld) = %lld is not a fire", (long long)at[i], (long long)p);
    }
    TQ_ASSERT_INT(tq_cron_prev(&c, z, INT64_MAX), TQ_CRON_NEVER);
    /* Found by tests/fuzz/fuzz_tz: next near the end of the range answered
     * a fire F for which next(F - 1) was never. */
    tq_cron c2 = parse_ok("*/20 1-3 * * 0");
    int64_t t = 9223359413555575000LL, f = tq_cron_next(&c2, z, t);
    if (f != TQ_CRON_NEVER && tq_cron_next(&c2, z, f - 1) != f)
        fail_msg("next(%lld) = %lld, but next(%lld) = %lld", (long long)t, (long long)f,
                 (long long)(f - 1), (long long)tq_cron_next(&c2, z, f - 1));
    /* Near the end of the range, prev still finds the last fire. */
    int64_t far = (INT64_MAX / 1000 - TQ_CRON_HORIZON_S - 5 * 86400) * 1000;
    int64_t p = tq_cron_prev(&c, z, far);
    assert_true(p != TQ_CRON_NEVER && p <= far && tq_cron_next(&c, z, p - 1) == p &&
                tq_cron_next(&c, z, p) > far);
}

/* ---- daylight-saving time ---- */

static void test_dst_new_york(void **state)
{
    (void)state;
    /* Spring forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z). */
    runs("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z",
         "2026-03-09T06:30:00Z", NULL);
    runs("*/30 2 * * *", "America/New_York", "2026-03-08T05:00:00Z",
         "2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z", "2026-03-09T06:30:00Z", NULL);
    runs("0 3 * * *", "America/New_York", "2026-03-08T00:00:00Z", "2026-03-08T07:00:00Z",
         "2026-03-09T07:00:00Z", NULL);
    /* 02:00, 02:15, 02:30, 02:45 and 03:00 are one fire. */
    runs("*/15 * * * *", "America/New_York", "2026-03-08T06:30:00Z",
         "2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z", NULL);
    runs("0 2 8 3 *", "America/New_York", "2026-01-01T00:00:00Z", "2026-03-08T07:00:00Z",
         "2027-03-08T07:00:00Z", NULL);
    /* Fall back 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z): first only... */
    runs("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z",
         "2026-11-02T06:30:00Z", NULL);
    runs("0 1-3 * * *", "America/New_York", "2026-11-01T03:30:00Z",
         "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z", NULL);
    runs("0,30 1 1 11 *", "America/New_York", "2026-01-01T00:00:00Z",
         "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2027-11-01T05:00:00Z", NULL);
    /* ...unless the hour field is '*' or '* /n': then real-time cadence. */
    runs("*/30 * * * *", "America/New_York", "2026-11-01T04:45:00Z",
         "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z",
         "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z", NULL);
    runs("@hourly", "America/New_York", "2026-11-01T03:30:00Z", "2026-11-01T04:00:00Z",
         "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z", NULL);
    runs("0 */2 * * *", "America/New_York", "2026-11-01T03:30:00Z",
         "2026-11-01T04:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T09:00:00Z", NULL);
    runs("30 */1 1 11 *", "America/New_York", "2026-11-01T04:00:00Z",
         "2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z",
         "2026-11-01T07:30:00Z", NULL);
    /* The same after the table's end (2037), from the footer rule. */
    runs("30 2 11 3 *", "America/New_York", "2040-01-01T00:00:00Z",
         "2040-03-11T07:00:00Z", NULL);
    runs("30 1 4 11 *", "America/New_York", "2040-01-01T00:00:00Z",
         "2040-11-04T05:30:00Z", NULL);
    runs("@daily", "America/New_York", "2099-03-07T12:00:00Z", "2099-03-08T05:00:00Z",
         "2099-03-09T04:00:00Z", NULL);
}

static void test_dst_europe(void **state)
{
    (void)state;
    /* London: 01:00 GMT -> 02:00 BST on 2026-03-29; back 2026-10-25. */
    runs("30 1 * * *", "Europe/London", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
         "2026-03-30T00:30:00Z", NULL);
    runs("30 1 * * *", "Europe/London", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z",
         "2026-10-26T01:30:00Z", NULL);
    /* Berlin: 02:00 CET -> 03:00 CEST; back 03:00 CEST -> 02:00 CET. */
    runs("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z",
         "2026-03-30T00:30:00Z", NULL);
    runs("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z",
         "2026-10-26T01:30:00Z", NULL);
    runs("*/20 * * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-25T00:40:00Z",
         "2026-10-25T01:00:00Z", "2026-10-25T01:20:00Z", "2026-10-25T01:40:00Z",
         "2026-10-25T02:00:00Z", NULL);
    runs("0 9 * * MON-FRI", "Europe/Berlin", "2026-03-27T12:00:00Z",
         "2026-03-30T07:00:00Z", NULL);
    runs("30 2 * * SUN", "Europe/Berlin", "2061-03-20T00:00:00Z", "2061-03-20T01:30:00Z",
         "2061-03-27T01:00:00Z", NULL);
}

static void test_dst_southern(void **state)
{
    (void)state;
    /* Sydney: AEDT ends 2026-04-05 03:00 -> 02:00; starts 2026-10-04
     * 02:00 -> 03:00. */
    runs("30 2 * * *", "Australia/Sydney", "2026-04-04T12:00:00Z", "2026-04-04T15:30:00Z",
         "2026-04-05T16:30:00Z", NULL);
    runs("30 2 * * *", "Australia/Sydney", "2026-10-03T00:00:00Z", "2026-10-03T16:00:00Z",
         "2026-10-04T15:30:00Z", NULL);
    runs("0 3 1 1 *", "Australia/Sydney", "2049-06-01T00:00:00Z", "2049-12-31T16:00:00Z",
         NULL);
    /* Lord Howe: +10:30 / +11, a half-hour gap and overlap. */
    runs("15 2 * * *", "Australia/Lord_Howe", "2026-10-02T12:00:00Z",
         "2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z", NULL);
    runs("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00Z",
         "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z", NULL);
    runs("*/10 * * * *", "Australia/Lord_Howe", "2026-04-04T14:35:00Z",
         "2026-04-04T14:40:00Z", "2026-04-04T14:50:00Z", "2026-04-04T15:00:00Z",
         "2026-04-04T15:10:00Z", "2026-04-04T15:20:00Z", "2026-04-04T15:30:00Z", NULL);
    runs("*/10 2 * * *", "Australia/Lord_Howe", "2026-10-03T15:00:00Z",
         "2026-10-03T15:30:00Z", "2026-10-03T15:40:00Z", NULL);
    /* Santiago: the clock goes from Saturday 24:00 to Sunday 01:00, so
     * midnight does not exist; and back from 24:00 to 23:00. */
    runs("0 0 * * *", "America/Santiago", "2026-09-04T12:00:00Z", "2026-09-05T04:00:00Z",
         "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z", NULL);
    runs("30 23 * * *", "America/Santiago", "2026-04-04T12:00:00Z",
         "2026-04-05T02:30:00Z", "2026-04-06T03:30:00Z", NULL);
    runs("0 0 * * *", "America/Santiago", "2041-09-07T00:00:00Z", "2041-09-07T04:00:00Z",
         "2041-09-08T04:00:00Z", "2041-09-09T03:00:00Z", NULL);
    /* Chatham: +12:45 / +13:45, changing at 02:45 and 03:45. */
    runs("0 3 * * *", "Pacific/Chatham", "2026-09-26T00:00:00Z", "2026-09-26T14:00:00Z",
         "2026-09-27T13:15:00Z", NULL);
    runs("0 3 * * *", "Pacific/Chatham", "2026-04-04T00:00:00Z", "2026-04-04T13:15:00Z",
         "2026-04-05T14:15:00Z", NULL);
}

static void test_dst_others(void **state)
{
    (void)state;
    /* St John's: -3:30 / -2:30. */
    runs("30 2 8 3 *", "America/St_Johns", "2026-01-01T00:00:00Z", "2026-03-08T05:30:00Z",
         "2027-03-08T06:00:00Z", NULL);
    runs("30 1 1 11 *", "America/St_Johns", "2026-10-01T00:00:00Z",
         "2026-11-01T04:00:00Z", "2027-11-01T04:00:00Z", NULL);
    /* Kolkata: +5:30, no DST, now and far ahead. */
    runs("0 9 * * *", "Asia/Kolkata", "2026-03-28T12:00:00Z", "2026-03-29T03:30:00Z",
         "2026-03-30T03:30:00Z", NULL);
    runs("0 0 1 1 *", "Asia/Kolkata", "2099-06-01T00:00:00Z", "2099-12-31T18:30:00Z",
         NULL);
}

/* ---- prev ---- */

static void test_prev(void **state)
{
    (void)state;
    static const char *const exprs[] = {"*/5 * * * *", "30 2 * * *", "0 0 29 2 *",
                                        "0 */2 * * *", "45 1 * * 0", "0 0 13 * 5"};
    static const char *const zones[] = {"UTC", "America/New_York", "Australia/Lord_Howe"};
    uint64_t x = 0xa4093822299f31d0ull;
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++)
        for (size_t k = 0; k < sizeof zones / sizeof zones[0]; k++) {
            tq_cron c = parse_ok(exprs[i]);
            const tq_tz *z = zone(zones[k]);
            for (int n = 0; n < 50; n++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                int64_t t =
                    iso("2020-01-01T00:00:00Z") + (int64_t)(x % (20ull * 365 * 86400000));
                int64_t p = tq_cron_prev(&c, z, t);
                if (!(p <= t && tq_cron_next(&c, z, p - 1) == p &&
                      tq_cron_next(&c, z, p) > t))
                    fail_msg("'%s' in %s: prev(%lld) = %lld is not the last fire",
                             exprs[i], zones[k], (long long)t, (long long)p);
                TQ_ASSERT_INT(tq_cron_prev(&c, z, p), p);
            }
        }
}

/* ---- a brute-force cross-check ----
 *
 * The reference follows the rules literally, one UTC minute at a time
 * (the transitions of these years fall on whole minutes): a minute fires
 * if its wall-clock time matches and the wall clock has not shown that
 * time before (or the hour field is '*'-like); a transition that skips
 * wall-clock time fires if any skipped minute matches. */

static int64_t brute_next(const tq_cron *c, const tq_tz *z, int64_t after_ms,
                          int64_t until_s)
{
    int64_t a = after_ms >= 0 ? after_ms / 1000 : -((-after_ms + 999) / 1000);
    int64_t u = (a / 60) * 60 - 2 * 86400;
    int32_t prev_off = tq_tz_offset(z, u - 60, NULL);
    int64_t hwm = u - 60 + prev_off + 60;
    for (; u <= until_s; u += 60) {
        int32_t off = tq_tz_offset(z, u, NULL);
        int fire = 0;
        if (off > prev_off)
            for (int64_t l = u + prev_off; l < u + off && !fire; l += 60)
                fire = tq_cron_matches(c, l);
        int64_t l = u + off;
        if (tq_cron_matches(c, l) && (l >= hwm || (c->flags & TQ_CRON_HOUR_STAR)))
            fire = 1;
        if (l + 60 > hwm)
            hwm = l + 60;
        prev_off = off;
        if (fire && u > a)
            return u * 1000;
    }
    return TQ_CRON_NEVER;
}

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void test_brute_force(void **state)
{
    (void)state;
    static const char *const zones[] = {"America/New_York",    "Europe/London",
                                        "Europe/Berlin",       "Australia/Sydney",
                                        "Australia/Lord_Howe", "America/Santiago",
                                        "Pacific/Chatham",     "America/St_Johns",
                                        "Asia/Kolkata",        "UTC",
                                        "America/Havana",      "Antarctica/Troll"};
    static const char *const minute[] = {"*",    "*/15", "0",   "30", "45",
                                         "0,30", "5-10", "*/7", "59", "15/20"};
    static const char *const hour[] = {"*", "*/2", "*/3",  "0",  "1",     "2",
                                       "3", "1-3", "0,12", "23", "2-4/2", "*/1"};
    static const char *const dom[] = {"*", "1", "15", "*/2", "1-7", "28-31", "5,6,7,8"};
    static const char *const month[] = {"*", "3", "4", "10,11", "*/2", "9-11"};
    static const char *const dow[] = {"*", "0", "SUN", "1-5", "6", "*/3"};
    uint64_t x = 0x082efa98ec4e6c89ull;
    int cases = 0, fires = 0;
#define PICK(a) a[rnd(&x) % (sizeof a / sizeof a[0])]
    for (size_t k = 0; k < sizeof zones / sizeof zones[0]; k++) {
        const tq_tz *z = zone(zones[k]);
        /* The transitions of 2025-2027 and 2045-2046; for zones without
         * any, one window a year. */
        int64_t windows[2][2] = {
            {iso("2025-01-01T00:00:00Z"), iso("2028-01-01T00:00:00Z")},
            {iso("2045-01-01T00:00:00Z"), iso("2046-06-01T00:00:00Z")}};
        for (int w = 0; w < 2; w++) {
            int64_t t = windows[w][0] / 1000;
            for (;;) {
                int64_t tr = tq_tz_next_transition(z, t, NULL, NULL);
                if (tr == TQ_TZ_NONE)
                    tr = t + 180 * 86400;
                if (tr * 1000 >= windows[w][1])
                    break;
                t = tr;
                for (int e = 0; e < 25; e++) {
                    char expr[128];
                    snprintf(expr, sizeof expr, "%s %s %s %s %s", PICK(minute),
                             PICK(hour), PICK(dom), PICK(month), PICK(dow));
                    tq_cron c = parse_ok(expr);
                    int64_t from = (tr - 36 * 3600 + (int64_t)(x % 7200)) * 1000 + 500;
                    int64_t until = tr + 36 * 3600;
                    int64_t ours = from, ref = from;
                    for (int n = 0; n < 200; n++) {
                        ref = brute_next(&c, z, ref, until);
                        ours = tq_cron_next(&c, z, ours);
                        if (ref == TQ_CRON_NEVER) {
                            if (ours <= until * 1000)
                                fail_msg(
                                    "'%s' in %s after %lld: fire at %lld, brute force "
                                    "finds none before %lld",
                                    expr, zones[k], (long long)from, (long long)ours,
                                    (long long)until);
                            break;
                        }
                        if (ours != ref) {
                            char a[TQ_TZ_ISO_MAX], b[TQ_TZ_ISO_MAX], f[TQ_TZ_ISO_MAX];
                            fail_msg("'%s' in %s, fire %d after %s: expected %s (brute "
                                     "force), "
                                     "got %s",
                                     expr, zones[k], n + 1,
                                     tq_tz_format_utc(from, f, sizeof f),
                                     tq_tz_format_utc(ref, a, sizeof a),
                                     ours == TQ_CRON_NEVER
                                         ? "never"
                                         : tq_tz_format_utc(ours, b, sizeof b));
                        }
                        fires++;
                    }
                    cases++;
                }
            }
        }
    }
#undef PICK
    print_message("cron: %d expressions around DST changes, %d fire times agree with the "
                  "brute force\n",
                  cases, fires);
    if (cases < 300)
        fail_msg("only %d cases", cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_items),  cmocka_unit_test(test_parse_macros),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_next_utc),
        cmocka_unit_test(test_never),        cmocka_unit_test(test_next_prev_range_end),
        cmocka_unit_test(test_dst_new_york), cmocka_unit_test(test_dst_europe),
        cmocka_unit_test(test_dst_southern), cmocka_unit_test(test_dst_others),
        cmocka_unit_test(test_prev),         cmocka_unit_test(test_brute_force),
    };
    return cmocka_run_group_tests_name("cron", tests, NULL, NULL);
}
