/* Tests of common/tz: civil dates, TZif files of the system's tz database
 * (offsets checked against the C library's localtime, which reads the same
 * files), the POSIX footer rule past 2037, transitions, wall-clock times
 * that occur twice or never, hand-made TZif data for the corners of the
 * format, every kind of bad name and bad file, the cache, and ISO-8601. */
#include "tests/support/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/tz.h"

/* Unix seconds of a UTC date and time. */
static int64_t utc(int64_t y, int m, int d, int h, int mi)
{
    return tq_tz_days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60;
}

static const tq_tz *zone(const char *name)
{
    const tq_tz *z = NULL;
    char err[256] = "";
    int rc = tq_tz_get(name, &z, err, sizeof err);
    if (rc != 0)
        fail_msg("tq_tz_get(%s): %d (%s): %s", name, rc, tq_strerror(rc), err);
    return z;
}

static void check_offset(const char *name, int64_t t, int32_t off, int dst)
{
    int is_dst = -1;
    int32_t got = tq_tz_offset(zone(name), t, &is_dst);
    if (got != off || is_dst != dst)
        fail_msg("%s at %lld: expected offset %d dst %d, got %d dst %d", name,
                 (long long)t, off, dst, got, is_dst);
}

/* ---- civil dates ---- */

static void test_civil(void **state)
{
    (void)state;
    TQ_ASSERT_INT(tq_tz_days_from_civil(1970, 1, 1), 0);
    TQ_ASSERT_INT(tq_tz_days_from_civil(2000, 3, 1), 11017);
    TQ_ASSERT_INT(tq_tz_days_from_civil(1969, 12, 31), -1);
    TQ_ASSERT_INT(tq_tz_weekday(0), 4); /* Thursday */
    TQ_ASSERT_INT(tq_tz_weekday(-1), 3);
    TQ_ASSERT_INT(tq_tz_weekday(tq_tz_days_from_civil(2026, 3, 29)), 0); /* Sunday */
    TQ_ASSERT_INT(tq_tz_days_in_month(2024, 2), 29);
    TQ_ASSERT_INT(tq_tz_days_in_month(2100, 2), 28);
    TQ_ASSERT_INT(tq_tz_days_in_month(2000, 2), 29);
    TQ_ASSERT_INT(tq_tz_days_in_month(2026, 4), 30);
    TQ_ASSERT_INT(tq_tz_days_in_month(2026, 12), 31);
    /* Round trips over 1600 years, and against gmtime_r where time_t reaches. */
    int64_t prev = tq_tz_days_from_civil(1599, 12, 31);
    for (int64_t y = 1600; y < 3200; y++)
        for (int m = 1; m <= 12; m++)
            for (int d = 1; d <= tq_tz_days_in_month(y, m); d++) {
                int64_t n = tq_tz_days_from_civil(y, m, d), yy;
                int mm, dd;
                if (n != prev + 1)
                    fail_msg("%lld-%d-%d is day %lld, after %lld", (long long)y, m, d,
                             (long long)n, (long long)prev);
                prev = n;
                tq_tz_civil_from_days(n, &yy, &mm, &dd);
                if (yy != y || mm != m || dd != d)
                    fail_msg("day %lld: expected %lld-%d-%d, got %lld-%d-%d",
                             (long long)n, (long long)y, m, d, (long long)yy, mm, dd);
                if (y >= 1902 && y < 2200 && d == 13) {
                    struct tm tm;
                    time_t t = (time_t)(n * 86400);
                    gmtime_r(&t, &tm);
                    if (tm.tm_wday != tq_tz_weekday(n))
                        fail_msg("weekday of day %lld: %d, gmtime says %d", (long long)n,
                                 tq_tz_weekday(n), tm.tm_wday);
                }
            }
}

/* ---- zones from the tz database ---- */

static void test_known_offsets(void **state)
{
    (void)state;
    /* New York: EST/EDT; DST 2026-03-08 07:00Z to 2026-11-01 06:00Z. */
    check_offset("America/New_York", utc(2026, 3, 8, 6, 59) + 59, -18000, 0);
    check_offset("America/New_York", utc(2026, 3, 8, 7, 0), -14400, 1);
    check_offset("America/New_York", utc(2026, 11, 1, 5, 59), -14400, 1);
    check_offset("America/New_York", utc(2026, 11, 1, 6, 0), -18000, 0);
    /* Past 2037: the footer rule (second Sunday of March 2040 is the 11th). */
    check_offset("America/New_York", utc(2040, 3, 11, 6, 59), -18000, 0);
    check_offset("America/New_York", utc(2040, 3, 11, 7, 0), -14400, 1);
    check_offset("America/New_York", utc(2099, 7, 1, 12, 0), -14400, 1);
    check_offset("America/New_York", utc(2400, 12, 25, 12, 0), -18000, 0);
    /* London, Berlin: the same instants (01:00Z), different offsets. */
    check_offset("Europe/London", utc(2026, 3, 29, 0, 59), 0, 0);
    check_offset("Europe/London", utc(2026, 3, 29, 1, 0), 3600, 1);
    check_offset("Europe/London", utc(2026, 10, 25, 1, 0), 0, 0);
    check_offset("Europe/Berlin", utc(2026, 3, 29, 1, 0), 7200, 1);
    check_offset("Europe/Berlin", utc(2026, 10, 25, 0, 59), 7200, 1);
    check_offset("Europe/Berlin", utc(2026, 10, 25, 1, 0), 3600, 0);
    check_offset("Europe/Berlin", utc(2061, 10, 30, 1, 0), 3600, 0);
    /* Sydney: southern hemisphere; AEDT ends 2026-04-05 03:00 local. */
    check_offset("Australia/Sydney", utc(2026, 4, 4, 15, 59), 39600, 1);
    check_offset("Australia/Sydney", utc(2026, 4, 4, 16, 0), 36000, 0);
    check_offset("Australia/Sydney", utc(2026, 10, 3, 16, 0), 39600, 1);
    check_offset("Australia/Sydney", utc(2050, 1, 1, 0, 0), 39600, 1);
    /* Lord Howe: a 30-minute shift. */
    check_offset("Australia/Lord_Howe", utc(2026, 4, 4, 14, 59), 39600, 1);
    check_offset("Australia/Lord_Howe", utc(2026, 4, 4, 15, 0), 37800, 0);
    check_offset("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30), 39600, 1);
    check_offset("Australia/Lord_Howe", utc(2045, 10, 1, 15, 30), 39600, 1);
    /* Santiago: changes at 24:00 local. */
    check_offset("America/Santiago", utc(2026, 9, 6, 3, 59), -14400, 0);
    check_offset("America/Santiago", utc(2026, 9, 6, 4, 0), -10800, 1);
    check_offset("America/Santiago", utc(2026, 4, 5, 3, 0), -14400, 0);
    /* Chatham: +12:45 / +13:45. */
    check_offset("Pacific/Chatham", utc(2026, 9, 26, 14, 0), 49500, 1);
    check_offset("Pacific/Chatham", utc(2026, 9, 26, 13, 59), 45900, 0);
    check_offset("Pacific/Chatham", utc(2026, 4, 4, 14, 0), 45900, 0);
    /* St John's: -3:30 / -2:30. */
    check_offset("America/St_Johns", utc(2026, 3, 8, 5, 30), -9000, 1);
    check_offset("America/St_Johns", utc(2026, 11, 1, 4, 30), -12600, 0);
    /* Kolkata: no DST, +5:30, now and in 2100. */
    check_offset("Asia/Kolkata", utc(2026, 6, 1, 0, 0), 19800, 0);
    check_offset("Asia/Kolkata", utc(2100, 1, 1, 0, 0), 19800, 0);
    check_offset("UTC", utc(2026, 6, 1, 0, 0), 0, 0);
    check_offset("Etc/UTC", utc(1900, 6, 1, 0, 0), 0, 0);
}

/* The C library reads the same files; its localtime_r is the reference.
 * setenv("TZ") is process-global: fine in a single-threaded test. */
static void test_against_libc(void **state)
{
    (void)state;
    static const char *const zones[] = {
        "America/New_York", "Europe/London",       "Europe/Berlin",
        "Australia/Sydney", "Australia/Lord_Howe", "America/Santiago",
        "Pacific/Chatham",  "America/St_Johns",    "Asia/Kolkata",
        "Pacific/Apia",     "Africa/Casablanca",   "America/Sao_Paulo",
        "Asia/Tehran",      "Europe/Dublin",       "America/Godthab",
        "Antarctica/Troll", "Pacific/Kiritimati",  "America/Havana",
        "Asia/Gaza",        "Europe/Moscow"};
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    uint64_t x = 0x243f6a8885a308d3ull;
    for (size_t k = 0; k < sizeof zones / sizeof zones[0]; k++) {
        char tzvar[128];
        snprintf(tzvar, sizeof tzvar, ":%s", zones[k]);
        setenv("TZ", tzvar, 1);
        tzset();
        const tq_tz *z = zone(zones[k]);
        for (int i = 0; i < 20000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* 1970 to 2120, and every transition's neighbourhood below. */
            int64_t t = (int64_t)(x % (150ull * 365 * 86400));
            struct tm tm;
            time_t tt = (time_t)t;
            localtime_r(&tt, &tm);
            int dst;
            int32_t off = tq_tz_offset(z, t, &dst);
            if (off != tm.tm_gmtoff)
                fail_msg("%s at %lld: offset %d, libc says %ld", zones[k], (long long)t,
                         off, (long)tm.tm_gmtoff);
        }
        /* Around each transition from 1970 to 2120. */
        int64_t t = 0;
        int32_t before, after;
        while ((t = tq_tz_next_transition(z, t, &before, &after)) <
               utc(2120, 1, 1, 0, 0)) {
            for (int d = -1; d <= 0; d++) {
                struct tm tm;
                time_t tt = (time_t)(t + d);
                localtime_r(&tt, &tm);
                int32_t off = tq_tz_offset(z, t + d, NULL);
                if (off != tm.tm_gmtoff || off != (d ? before : after))
                    fail_msg(
                        "%s at transition %lld%+d: offset %d (before %d after %d), libc "
                        "says %ld",
                        zones[k], (long long)t, d, off, before, after,
                        (long)tm.tm_gmtoff);
            }
        }
    }
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

static void test_next_transition(void **state)
{
    (void)state;
    int32_t b, a;
    const tq_tz *ny = zone("America/New_York");
    TQ_ASSERT_INT(tq_tz_next_transition(ny, utc(2026, 1, 1, 0, 0), &b, &a),
                  utc(2026, 3, 8, 7, 0));
    TQ_ASSERT_INT(b, -18000);
    TQ_ASSERT_INT(a, -14400);
    /* Strictly after. */
    TQ_ASSERT_INT(tq_tz_next_transition(ny, utc(2026, 3, 8, 7, 0), &b, &a),
                  utc(2026, 11, 1, 6, 0));
    TQ_ASSERT_INT(b, -14400);
    TQ_ASSERT_INT(a, -18000);
    /* From the footer rule. */
    TQ_ASSERT_INT(tq_tz_next_transition(ny, utc(2040, 1, 1, 0, 0), NULL, NULL),
                  utc(2040, 3, 11, 7, 0));
    TQ_ASSERT_INT(tq_tz_next_transition(ny, utc(2299, 12, 1, 0, 0), NULL, NULL),
                  utc(2300, 3, 11, 7, 0));
    /* Santiago's 24:00 rule: the first Saturday of September at 24:00 -04. */
    TQ_ASSERT_INT(
        tq_tz_next_transition(zone("America/Santiago"), utc(2041, 8, 1, 0, 0), &b, &a),
        utc(2041, 9, 8, 4, 0));
    TQ_ASSERT_INT(a, -10800);
    /* No more changes. */
    TQ_ASSERT_INT(
        tq_tz_next_transition(zone("Asia/Kolkata"), utc(2026, 1, 1, 0, 0), NULL, NULL),
        TQ_TZ_NONE);
    TQ_ASSERT_INT(tq_tz_next_transition(zone("UTC"), 0, NULL, NULL), TQ_TZ_NONE);
}

static void check_resolve(const char *name, int64_t local, int n, int64_t u0, int64_t u1)
{
    int64_t out[2] = {-1, -1};
    int got = tq_tz_resolve(zone(name), local, out);
    if (got != n || out[0] != u0 || (n == 2 && out[1] != u1))
        fail_msg("%s: wall time %lld: expected %d (%lld, %lld), got %d (%lld, %lld)",
                 name, (long long)local, n, (long long)u0, (long long)u1, got,
                 (long long)out[0], (long long)out[1]);
}

static void test_resolve(void **state)
{
    (void)state;
    /* Wall times are written as if UTC. New York 2026. */
    check_resolve("America/New_York", utc(2026, 3, 8, 1, 59), 1, utc(2026, 3, 8, 6, 59),
                  0);
    check_resolve("America/New_York", utc(2026, 3, 8, 2, 0), 0, utc(2026, 3, 8, 7, 0), 0);
    check_resolve("America/New_York", utc(2026, 3, 8, 2, 30), 0, utc(2026, 3, 8, 7, 0),
                  0);
    check_resolve("America/New_York", utc(2026, 3, 8, 3, 0), 1, utc(2026, 3, 8, 7, 0), 0);
    check_resolve("America/New_York", utc(2026, 11, 1, 0, 59), 1, utc(2026, 11, 1, 4, 59),
                  0);
    check_resolve("America/New_York", utc(2026, 11, 1, 1, 0), 2, utc(2026, 11, 1, 5, 0),
                  utc(2026, 11, 1, 6, 0));
    check_resolve("America/New_York", utc(2026, 11, 1, 1, 59), 2, utc(2026, 11, 1, 5, 59),
                  utc(2026, 11, 1, 6, 59));
    check_resolve("America/New_York", utc(2026, 11, 1, 2, 0), 1, utc(2026, 11, 1, 7, 0),
                  0);
    /* Lord Howe: a 30-minute gap and overlap. */
    check_resolve("Australia/Lord_Howe", utc(2026, 10, 4, 2, 15), 0,
                  utc(2026, 10, 3, 15, 30), 0);
    check_resolve("Australia/Lord_Howe", utc(2026, 10, 4, 2, 30), 1,
                  utc(2026, 10, 3, 15, 30), 0);
    check_resolve("Australia/Lord_Howe", utc(2026, 4, 5, 1, 45), 2,
                  utc(2026, 4, 4, 14, 45), utc(2026, 4, 4, 15, 15));
    /* Santiago: midnight does not exist on 2026-09-06. */
    check_resolve("America/Santiago", utc(2026, 9, 6, 0, 0), 0, utc(2026, 9, 6, 4, 0), 0);
    check_resolve("America/Santiago", utc(2026, 4, 4, 23, 30), 2, utc(2026, 4, 5, 2, 30),
                  utc(2026, 4, 5, 3, 30));
    /* Chatham, past 2037. */
    check_resolve("Pacific/Chatham", utc(2045, 9, 24, 3, 0), 0, utc(2045, 9, 23, 14, 0),
                  0);
    check_resolve("Asia/Kolkata", utc(2026, 3, 8, 2, 30), 1, utc(2026, 3, 7, 21, 0), 0);
    check_resolve("UTC", 123456789, 1, 123456789, 0);
}

/* resolve() against its definition: u is an answer iff u + offset(u) is
 * the wall time. Candidates are the wall time minus each offset nearby. */
static void test_resolve_brute_force(void **state)
{
    (void)state;
    static const char *const zones[] = {"America/New_York", "Australia/Lord_Howe",
                                        "America/Santiago", "Pacific/Chatham",
                                        "Europe/London",    "Pacific/Apia"};
    uint64_t x = 0x13198a2e03707344ull;
    for (size_t k = 0; k < sizeof zones / sizeof zones[0]; k++) {
        const tq_tz *z = zone(zones[k]);
        for (int i = 0; i < 20000; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            int64_t local = utc(2000, 1, 1, 0, 0) + (int64_t)(x % (60ull * 365 * 86400));
            if (i % 2) { /* next to a transition, where it matters */
                int64_t t = tq_tz_next_transition(z, local, NULL, NULL);
                if (t != TQ_TZ_NONE)
                    local =
                        t + tq_tz_offset(z, t, NULL) - 5400 + (int64_t)(x >> 40) % 10800;
            }
            int64_t want[4];
            int nwant = 0;
            for (int64_t d = -2 * 86400; d <= 2 * 86400; d += 900) {
                int32_t off = tq_tz_offset(z, local + d, NULL);
                int64_t u = local - off;
                if (tq_tz_offset(z, u, NULL) == off) {
                    int dup = 0;
                    for (int j = 0; j < nwant; j++)
                        dup |= want[j] == u;
                    if (!dup && nwant < 4)
                        want[nwant++] = u;
                }
            }
            int64_t out[2];
            int n = tq_tz_resolve(z, local, out);
            if (nwant > 1 && want[0] > want[1]) {
                int64_t tmp = want[0];
                want[0] = want[1];
                want[1] = tmp;
            }
            if (n != nwant || (n >= 1 && out[0] != want[0]) ||
                (n == 2 && out[1] != want[1]))
                fail_msg(
                    "%s: wall time %lld: resolve gives %d answers (%lld), expected %d "
                    "(%lld)",
                    zones[k], (long long)local, n, (long long)out[0], nwant,
                    (long long)(nwant ? want[0] : 0));
            if (n == 0) { /* the gap's end: the first instant showing a later time */
                int32_t before = tq_tz_offset(z, out[0] - 1, NULL),
                        after = tq_tz_offset(z, out[0], NULL);
                if (!(out[0] - 1 + before < local && local < out[0] + after))
                    fail_msg("%s: wall time %lld is not in the gap ending at %lld",
                             zones[k], (long long)local, (long long)out[0]);
            }
        }
    }
}

/* ---- bad names and files, the cache ---- */

static void get_bad(const char *name, const char *needle)
{
    const tq_tz *z = (const tq_tz *)&z;
    char err[512] = "";
    int rc = tq_tz_get(name, &z, err, sizeof err);
    if (rc != TQ_EINVAL)
        fail_msg("tq_tz_get(%s): expected TQ_EINVAL, got %d (%s)", name, rc,
                 tq_strerror(rc));
    TQ_ASSERT_CONTAINS(err, needle);
}

static void test_bad_names(void **state)
{
    (void)state;
    get_bad("", "not a time zone name");
    get_bad("../etc/passwd", "not a time zone name");
    get_bad("Europe/../../etc/passwd", "not a time zone name");
    get_bad("/etc/localtime", "not a time zone name");
    get_bad("Europe//Berlin", "not a time zone name");
    get_bad("Europe/Berlin/", "not a time zone name");
    get_bad("Europe/Ber lin", "not a time zone name");
    get_bad("./UTC", "not a time zone name");
    get_bad("Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'");
    get_bad("europe/berlin", "unknown time zone");
    get_bad("America", "is not a zone file");
    get_bad("zone.tab", "not a TZif file");
    char long_name[80];
    memset(long_name, 'A', 70);
    long_name[70] = '\0';
    get_bad(long_name, "not a time zone name");
    if (access(TQ_TZ_DIR "/right/UTC", R_OK) == 0)
        get_bad("right/UTC", "leap seconds");

    /* The cache: the same pointer every time. */
    TQ_ASSERT_INT(zone("Europe/Berlin") == zone("Europe/Berlin"), 1);
    TQ_ASSERT_STR(tq_tz_name(zone("Europe/Berlin")), "Europe/Berlin");
    /* Links are zones of their own name. */
    TQ_ASSERT_STR(tq_tz_name(zone("US/Eastern")), "US/Eastern");
    check_offset("US/Eastern", utc(2026, 7, 1, 0, 0), -14400, 1);
}

/* ---- hand-made TZif data ---- */

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

static unsigned char *header(unsigned char *p, char version, uint32_t timecnt,
                             uint32_t typecnt, uint32_t charcnt, uint32_t leapcnt)
{
    memcpy(p, "TZif", 4);
    p[4] = (unsigned char)version;
    memset(p + 5, 0, 15);
    p += 20;
    p = put32(p, 0); /* isutcnt */
    p = put32(p, 0); /* isstdcnt */
    p = put32(p, leapcnt);
    p = put32(p, timecnt);
    p = put32(p, typecnt);
    return put32(p, charcnt);
}

/* A version 2 file: no 32-bit data, then the 64-bit transitions at[i] to
 * types idx[i] (offsets off[], dst flags dst[]) and the footer. Returns its
 * length. */
static size_t make_tzif(unsigned char *buf, const int64_t *at, const unsigned char *idx,
                        size_t n, const int32_t *off, const unsigned char *dst,
                        size_t ntypes, const char *footer)
{
    unsigned char *p = header(buf, '2', 0, 1, 4, 0);
    p = put32(p, 0); /* one type in the v1 block */
    *p++ = 0;
    *p++ = 0;
    memcpy(p, "UTC", 4);
    p += 4;
    p = header(p, '2', (uint32_t)n, (uint32_t)ntypes, 4, 0);
    for (size_t i = 0; i < n; i++) {
        p = put32(p, (uint32_t)((uint64_t)at[i] >> 32));
        p = put32(p, (uint32_t)at[i]);
    }
    for (size_t i = 0; i < n; i++)
        *p++ = idx[i];
    for (size_t i = 0; i < ntypes; i++) {
        p = put32(p, (uint32_t)off[i]);
        *p++ = dst[i];
        *p++ = 0;
    }
    memcpy(p, "ABC", 4);
    p += 4;
    *p++ = '\n';
    memcpy(p, footer, strlen(footer));
    p += strlen(footer);
    *p++ = '\n';
    return (size_t)(p - buf);
}

static tq_tz *parse_ok(const char *name, const unsigned char *buf, size_t len)
{
    char err[256] = "";
    tq_tz *z = tq_tz_parse(name, buf, len, err, sizeof err);
    if (!z)
        fail_msg("parse %s: %s", name, err);
    return z;
}

static void parse_bad(const char *name, const unsigned char *buf, size_t len,
                      const char *needle)
{
    char err[256] = "";
    tq_tz *z = tq_tz_parse(name, buf, len, err, sizeof err);
    if (z)
        fail_msg("parse %s: expected an error naming '%s'", name, needle);
    TQ_ASSERT_CONTAINS(err, needle);
}

static void test_footer_rules(void **state)
{
    (void)state;
    unsigned char buf[1024];
    int32_t off[2] = {3600, 7200};
    unsigned char dst[2] = {0, 1};
    /* Jn: day n of 365, February 29 never counted (J60 is March 1);
     * n: day n from 0, February 29 counted (59 is February 29 in a leap
     * year). DST from J60 02:00 to day 300 03:00. */
    size_t len = make_tzif(buf, NULL, NULL, 0, off, dst, 1, "AAA-1BBB,J60,300/3");
    tq_tz *z = parse_ok("rule", buf, len);
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2028, 3, 1, 0, 59), NULL), 3600); /* 01:59 local */
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2028, 3, 1, 1, 0), NULL), 7200);
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2027, 3, 1, 1, 0), NULL), 7200);
    /* Day 300 from 0 is October 27 in a leap year, October 28 otherwise;
     * 03:00 daylight time is 01:00Z. */
    TQ_ASSERT_INT(tq_tz_next_transition(z, utc(2028, 6, 1, 0, 0), NULL, NULL),
                  utc(2028, 10, 27, 1, 0));
    TQ_ASSERT_INT(tq_tz_next_transition(z, utc(2027, 6, 1, 0, 0), NULL, NULL),
                  utc(2027, 10, 28, 1, 0));
    tq_tz_free(z);

    /* Negative and over-24 rule times (RFC 8536), and <quoted> names. */
    len = make_tzif(buf, NULL, NULL, 0, off, dst, 1, "<-03>3<-02>,M3.5.0/-2,M10.5.0/25");
    z = parse_ok("quoted", buf, len);
    /* Last Sunday of March 2026 is the 29th; -2:00 is 22:00 on the 28th,
     * -03 local: 01:00Z on the 29th. */
    TQ_ASSERT_INT(tq_tz_next_transition(z, utc(2026, 1, 1, 0, 0), NULL, NULL),
                  utc(2026, 3, 29, 1, 0));
    /* Last Sunday of October is the 25th; 25:00 -02 is 03:00Z on the 26th. */
    TQ_ASSERT_INT(tq_tz_next_transition(z, utc(2026, 6, 1, 0, 0), NULL, NULL),
                  utc(2026, 10, 26, 3, 0));
    tq_tz_free(z);

    /* Daylight time all year round: no transitions at all. */
    len = make_tzif(buf, NULL, NULL, 0, off, dst, 1, "EST5EDT,0/0,J365/25");
    z = parse_ok("alldst", buf, len);
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2030, 1, 1, 12, 0), NULL), -14400);
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2030, 12, 31, 23, 0), NULL), -14400);
    TQ_ASSERT_INT(tq_tz_next_transition(z, utc(2030, 1, 1, 0, 0), NULL, NULL),
                  TQ_TZ_NONE);
    tq_tz_free(z);

    /* No footer rule: the last type lasts forever; before the first
     * transition, type 0. */
    int64_t at[1] = {1000000000};
    unsigned char idx[1] = {1};
    len = make_tzif(buf, at, idx, 1, off, dst, 2, "");
    z = parse_ok("empty-footer", buf, len);
    TQ_ASSERT_INT(tq_tz_offset(z, 999999999, NULL), 3600);
    TQ_ASSERT_INT(tq_tz_offset(z, 1000000000, NULL), 7200);
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2100, 1, 1, 0, 0), NULL), 7200);
    TQ_ASSERT_INT(tq_tz_next_transition(z, 0, NULL, NULL), 1000000000);
    TQ_ASSERT_INT(tq_tz_next_transition(z, 1000000000, NULL, NULL), TQ_TZ_NONE);
    tq_tz_free(z);

    /* A transition that only renames does not count. */
    int32_t same[2] = {3600, 3600};
    len = make_tzif(buf, at, idx, 1, same, dst, 2, "");
    z = parse_ok("rename", buf, len);
    TQ_ASSERT_INT(tq_tz_next_transition(z, 0, NULL, NULL), TQ_TZ_NONE);
    tq_tz_free(z);
}

static void test_bad_data(void **state)
{
    (void)state;
    unsigned char buf[1024];
    int32_t off[2] = {3600, 7200};
    unsigned char dst[2] = {0, 1};
    int64_t at[2] = {2000, 1000};
    unsigned char idx[2] = {1, 0};
    size_t len;

    parse_bad("short", (const unsigned char *)"TZif", 4, "not a TZif file");
    parse_bad("text",
              (const unsigned char *)"# tzdata zone.tab, not TZif at all ..........", 45,
              "not a TZif file");
    len = make_tzif(buf, NULL, NULL, 0, off, dst, 1, "CET-1CEST,M3.5.0,M10.5.0/3");
    for (size_t cut = 44; cut + 1 < len; cut += 7)
        parse_bad("truncated", buf, cut, "zone 'truncated'");
    len = make_tzif(buf, at, idx, 2, off, dst, 2, "");
    parse_bad("order", buf, len, "not increasing");
    unsigned char bigidx[2] = {0, 5};
    int64_t good_at[2] = {1000, 2000};
    len = make_tzif(buf, good_at, bigidx, 2, off, dst, 2, "");
    parse_bad("type", buf, len, "type that does not exist");
    int32_t huge[1] = {100000};
    len = make_tzif(buf, NULL, NULL, 0, huge, dst, 1, "");
    parse_bad("offset", buf, len, "malformed local time type");
    static const char *const footers[] = {"C",
                                          "CET",
                                          "CET-1CEST,M13.1.0,M10.5.0",
                                          "CET-1CEST,M3.5.0",
                                          "CET-1CEST,M3.5.7,M10.5.0",
                                          "CET-1CEST,J0,J365",
                                          "CET-1CEST,366,1",
                                          "<ab-1",
                                          "CET-1CEST,M3.5.0/200,M10.5.0",
                                          "CET-1:5"};
    for (size_t i = 0; i < sizeof footers / sizeof footers[0]; i++) {
        len = make_tzif(buf, NULL, NULL, 0, off, dst, 1, footers[i]);
        parse_bad(footers[i], buf, len, "cannot read its TZ string");
    }
    /* Leap-second records. */
    unsigned char *p = header(buf, '1', 0, 1, 4, 1);
    p = put32(p, 0);
    *p++ = 0;
    *p++ = 0;
    memcpy(p, "UTC", 4);
    p += 4;
    memset(p, 0, 8);
    p += 8;
    parse_bad("leap", buf, (size_t)(p - buf), "leap seconds");
}

/* Found by tests/fuzz/fuzz_tz: a footer rule that disagrees with the last
 * transition changed the offset one second after it, a change that
 * tq_tz_next_transition() never reported (so cron walked a stretch of
 * "constant" offset that was not). RFC 8536 requires them to agree: such
 * a file is refused, and one that agrees is read. */
static void test_footer_agrees_with_last_transition(void **state)
{
    (void)state;
    unsigned char buf[1024];
    int32_t off[2] = {0, 37800};
    unsigned char dst[2] = {0, 0};
    unsigned char idx[1] = {1};
    const char *footer = "<+1030>-10:30<+11>-11,J60/0,280/25";
    int64_t in_dst[1] = {1000000000}; /* 2001-09-09: the rule says +11 */
    size_t len = make_tzif(buf, in_dst, idx, 1, off, dst, 2, footer);
    parse_bad("disagrees", buf, len, "disagrees with its last transition");

    int64_t in_std[1] = {1007164800}; /* 2001-12-01: +10:30 by both */
    len = make_tzif(buf, in_std, idx, 1, off, dst, 2, footer);
    tq_tz *z = parse_ok("agrees", buf, len);
    TQ_ASSERT_INT(tq_tz_offset(z, 1007164800, NULL), 37800);
    TQ_ASSERT_INT(tq_tz_offset(z, 1007164801, NULL), 37800);
    int32_t before, after;
    int64_t e = tq_tz_next_transition(z, 1007164800, &before, &after);
    TQ_ASSERT_INT(before, 37800);
    TQ_ASSERT_INT(after, 39600);
    TQ_ASSERT_INT(tq_tz_offset(z, e - 1, NULL), 37800);
    TQ_ASSERT_INT(tq_tz_offset(z, e, NULL), 39600);
    tq_tz_free(z);
}

/* Found by tests/fuzz/fuzz_tz: in "CET-5CEST,M1.5.0,30" daylight time
 * starts on the last Sunday of January and ends on January 31, which is
 * after the start in 2026 (a week of daylight time) and before it in 2027
 * (daylight time all year but a few hours). The offset flips at new year,
 * and tq_tz_next_transition() did not say so. Now every change of offset
 * is a transition, whatever the rule. */
static void test_rule_flips_at_new_year(void **state)
{
    (void)state;
    unsigned char buf[1024];
    int32_t off[1] = {18000};
    unsigned char dst[1] = {0};
    size_t len = make_tzif(buf, NULL, NULL, 0, off, dst, 1, "CET-5CEST,M1.5.0,30");
    tq_tz *z = parse_ok("flip", buf, len);
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2026, 3, 29, 0, 0), NULL), 18000);
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2027, 1, 10, 0, 0), NULL), 21600);
    int changes = 0;
    for (int64_t t = utc(2025, 6, 1, 0, 0); t < utc(2031, 1, 1, 0, 0);) {
        int32_t before, after;
        int64_t e = tq_tz_next_transition(z, t, &before, &after);
        assert_true(e != TQ_TZ_NONE && e > t);
        if (tq_tz_offset(z, t, NULL) != before ||
            tq_tz_offset(z, e - 1, NULL) != before || tq_tz_offset(z, e, NULL) != after)
            fail_msg(
                "after %lld: a transition at %lld from %d to %d, but the offsets are "
                "%d at %lld, %d before it and %d at it",
                (long long)t, (long long)e, before, after, tq_tz_offset(z, t, NULL),
                (long long)t, tq_tz_offset(z, e - 1, NULL), tq_tz_offset(z, e, NULL));
        t = e;
        changes++;
    }
    /* 2026: a week, then a flip at new year; 2027 to 2030: a few hours of
     * standard time a year, or a week of daylight time. */
    TQ_ASSERT_RANGE(changes, 8, 14);
    tq_tz_free(z);
}

/* Found by tests/fuzz/fuzz_tz: a footer is the text between two newlines;
 * one holding a NUL byte was read up to the NUL and the rest ignored. */
static void test_footer_with_nul(void **state)
{
    (void)state;
    unsigned char buf[1024];
    int32_t off[1] = {0};
    unsigned char dst[1] = {0};
    size_t len = make_tzif(buf, NULL, NULL, 0, off, dst, 1, "UTC0#CET-1CEST");
    unsigned char *hash = memchr(buf, '#', len);
    assert_non_null(hash);
    *hash = '\0';
    parse_bad("nul", buf, len, "malformed TZ string footer");
}

/* Transition times beyond +-2^59 s (zic writes -2^59 as its "big bang")
 * are refused: with a footer rule, the date arithmetic on a time near
 * INT64_MAX overflowed (UBSan). */
static void test_transition_time_range(void **state)
{
    (void)state;
    unsigned char buf[1024];
    int32_t off[2] = {3600, 7200};
    unsigned char dst[2] = {0, 1};
    unsigned char idx[2] = {0, 0};
    const char *rule = "CET-1CEST,M3.5.0,M10.5.0/3";
    int64_t big_bang[2] = {-((int64_t)1 << 59), 0};
    size_t len = make_tzif(buf, big_bang, idx, 2, off, dst, 2, rule);
    tq_tz *z = parse_ok("big-bang", buf, len);
    TQ_ASSERT_INT(tq_tz_offset(z, utc(2026, 7, 1, 0, 0), NULL), 7200);
    tq_tz_free(z);
    int64_t too_early[2] = {-((int64_t)1 << 59) - 1, 0};
    len = make_tzif(buf, too_early, idx, 2, off, dst, 2, rule);
    parse_bad("early", buf, len, "transition time is out of range");
    int64_t too_late[1] = {INT64_MAX - 1};
    len = make_tzif(buf, too_late, idx, 1, off, dst, 2, rule);
    parse_bad("late", buf, len, "transition time is out of range");
}

/* Found by tests/fuzz/fuzz_iso: formatting an instant near INT64_MIN ms
 * overflowed (UBSan: ms - s * 1000). Every int64_t formats, within
 * TQ_TZ_ISO_MAX bytes. */
static void test_format_extremes(void **state)
{
    (void)state;
    char buf[TQ_TZ_ISO_MAX];
    TQ_ASSERT_STR(tq_tz_format_utc(INT64_MIN, buf, sizeof buf),
                  "-292275055-05-16T16:47:04.192Z");
    TQ_ASSERT_STR(tq_tz_format_utc(INT64_MIN + 808, buf, sizeof buf),
                  "-292275055-05-16T16:47:05Z");
    TQ_ASSERT_STR(tq_tz_format_utc(INT64_MAX, buf, sizeof buf),
                  "292278994-08-17T07:12:55.807Z");
    TQ_ASSERT_STR(tq_tz_format_utc(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
    TQ_ASSERT_STR(tq_tz_format_utc(-1000, buf, sizeof buf), "1969-12-31T23:59:59Z");
}

/* A version 1 file (32-bit times, no footer) still works. */
static void test_version1(void **state)
{
    (void)state;
    unsigned char buf[256], *p = header(buf, 0, 1, 2, 4, 0);
    p = put32(p, 1000000000);
    *p++ = 1;
    p = put32(p, (uint32_t)-18000);
    *p++ = 0;
    *p++ = 0;
    p = put32(p, (uint32_t)-14400);
    *p++ = 1;
    *p++ = 0;
    memcpy(p, "ABC", 4);
    p += 4;
    tq_tz *z = parse_ok("v1", buf, (size_t)(p - buf));
    TQ_ASSERT_INT(tq_tz_offset(z, 999999999, NULL), -18000);
    TQ_ASSERT_INT(tq_tz_offset(z, 1000000000, NULL), -14400);
    tq_tz_free(z);
    tq_tz_free(NULL);
}

/* $TZDIR moves the database. */
static void test_tzdir(void **state)
{
    (void)state;
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/tickq-tz.XXXXXX");
    assert_non_null(mkdtemp(dir));
    unsigned char buf[512];
    int32_t off[1] = {-9000};
    unsigned char dst[1] = {0};
    size_t len = make_tzif(buf, NULL, NULL, 0, off, dst, 1, "<-0230>2:30");
    snprintf(path, sizeof path, "%s/Test_Zone", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(buf, 1, len, f);
    fclose(f);
    char *saved = getenv("TZDIR") ? strdup(getenv("TZDIR")) : NULL;
    setenv("TZDIR", dir, 1);
    check_offset("Test_Zone", 0, -9000, 0);
    if (saved) {
        setenv("TZDIR", saved, 1);
        free(saved);
    } else {
        unsetenv("TZDIR");
    }
    unlink(path);
    rmdir(dir);
}

/* ---- ISO-8601 ---- */

static void iso_ok(const char *text, const char *zname, int64_t want_ms)
{
    int64_t ms = -1;
    char err[256] = "";
    int rc = tq_tz_parse_iso(text, zone(zname), &ms, err, sizeof err);
    if (rc != 0 || ms != want_ms)
        fail_msg("'%s' in %s: expected %lld, got %lld (rc %d: %s)", text, zname,
                 (long long)want_ms, (long long)ms, rc, err);
}

static void iso_bad(const char *text, const char *needle)
{
    int64_t ms;
    char err[256] = "";
    TQ_ASSERT_RC_ERR(tq_tz_parse_iso(text, zone("UTC"), &ms, err, sizeof err), TQ_EINVAL,
                     err);
    TQ_ASSERT_CONTAINS(err, needle);
}

static void test_iso(void **state)
{
    (void)state;
    int64_t t = utc(2026, 3, 28, 12, 0) * 1000;
    iso_ok("2026-03-28T12:00:00Z", "UTC", t);
    iso_ok("2026-03-28t12:00:00z", "UTC", t);
    iso_ok("2026-03-28 12:00:00Z", "UTC", t);
    iso_ok("2026-03-28T12:00Z", "UTC", t);
    iso_ok("2026-03-28T13:00:00+01:00", "UTC", t);
    iso_ok("2026-03-28T13:00:00+0100", "UTC", t);
    iso_ok("2026-03-28T13:00:00+01", "UTC", t);
    iso_ok("2026-03-28T06:30:00-05:30", "UTC", t);
    iso_ok("2026-03-28T12:00:00.250Z", "UTC", t + 250);
    iso_ok("2026-03-28T12:00:00,5Z", "UTC", t + 500);
    iso_ok("2026-03-28T12:00:00.123456789Z", "UTC", t + 123);
    iso_ok("2026-03-28", "UTC", utc(2026, 3, 28, 0, 0) * 1000);
    /* Without an offset: the wall clock of the zone. */
    iso_ok("2026-03-28T13:00:00", "Europe/Berlin", t);
    iso_ok("2026-03-28", "Asia/Kolkata", utc(2026, 3, 27, 18, 30) * 1000);
    iso_ok("2026-11-01T01:30:00", "America/New_York", utc(2026, 11, 1, 5, 30) * 1000);
    iso_ok("2026-03-08T02:30:00", "America/New_York", utc(2026, 3, 8, 7, 0) * 1000);
    iso_ok("1969-12-31T23:59:59Z", "UTC", -1000);

    iso_bad("", "not an ISO-8601 time");
    iso_bad("2026-3-28", "not an ISO-8601 time");
    iso_bad("2026-03-28T12", "not an ISO-8601 time");
    iso_bad("2026-03-28T12:00:00.Z", "not an ISO-8601 time");
    iso_bad("2026-03-28T12:00:00Zx", "not an ISO-8601 time");
    iso_bad("2026-03-28T12:00:00+1", "not an ISO-8601 time");
    iso_bad("tomorrow", "not an ISO-8601 time");
    iso_bad("2026-02-29", "no such date");
    iso_bad("2026-13-01", "no such date");
    iso_bad("2026-03-28T24:00:00Z", "no such time");
    iso_bad("2026-03-28T12:60:00Z", "no such time");
    iso_bad("2026-03-28T12:00:60Z", "no such time");
    iso_bad("2026-03-28T12:00:00+26:00", "offset");

    char buf[TQ_TZ_ISO_MAX];
    TQ_ASSERT_STR(tq_tz_format_utc(t, buf, sizeof buf), "2026-03-28T12:00:00Z");
    TQ_ASSERT_STR(tq_tz_format_utc(t + 7, buf, sizeof buf), "2026-03-28T12:00:00.007Z");
    TQ_ASSERT_STR(tq_tz_format_utc(0, buf, sizeof buf), "1970-01-01T00:00:00Z");
    TQ_ASSERT_STR(tq_tz_format_utc(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
    TQ_ASSERT_STR(tq_tz_format_utc(utc(2400, 2, 29, 23, 59) * 1000, buf, sizeof buf),
                  "2400-02-29T23:59:00Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil),
        cmocka_unit_test(test_known_offsets),
        cmocka_unit_test(test_against_libc),
        cmocka_unit_test(test_next_transition),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_resolve_brute_force),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_footer_rules),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_version1),
        cmocka_unit_test(test_footer_agrees_with_last_transition),
        cmocka_unit_test(test_rule_flips_at_new_year),
        cmocka_unit_test(test_footer_with_nul),
        cmocka_unit_test(test_transition_time_range),
        cmocka_unit_test(test_format_extremes),
        cmocka_unit_test(test_tzdir),
        cmocka_unit_test(test_iso),
    };
    return cmocka_run_group_tests_name("tz", tests, NULL, NULL);
}
