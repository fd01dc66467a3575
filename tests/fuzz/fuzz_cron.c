/* Fuzzes cron expressions (common/cron): any text through tq_cron_parse();
 * an expression it accepts goes through tq_cron_next() and tq_cron_prev()
 * from a few instants in a few zones, with daylight-saving changes near
 * them. next is strictly after, prev at or before, both are whole seconds,
 * and they agree with each other; in UTC, next is checked minute by minute.
 *
 * Input: byte 0 picks the zone and a fixed instant, then the expression,
 * then optionally a NUL and 8 bytes of another instant (ms, any int64). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cron.h"
#include "common/err.h"
#include "common/tz.h"

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_cron: %s failed: ", #cond);                            \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static const char *const zones[] = {
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Santiago",
    "Asia/Kathmandu",
    "Europe/Dublin",
};
#define NZONES (sizeof zones / sizeof zones[0])

/* Instants near daylight-saving changes of those zones, and odd ones. */
static int64_t fixed_instant(unsigned i)
{
    static const struct {
        int y, m, d, h, mi;
    } t[] = {
        {2026, 3, 29, 0, 30},  {2026, 10, 25, 0, 30}, {2026, 3, 8, 6, 30},
        {2026, 11, 1, 5, 30},  {2026, 4, 4, 14, 0},   {2026, 10, 3, 15, 0},
        {2026, 4, 4, 23, 0},   {2026, 9, 6, 3, 0},    {1970, 1, 1, 0, 0},
        {2000, 2, 29, 23, 59}, {2037, 12, 31, 23, 0}, {2100, 2, 28, 12, 0},
        {9999, 12, 31, 23, 0}, {1900, 1, 1, 0, 0},    {2024, 12, 31, 23, 59},
        {2026, 6, 15, 12, 34},
    };
    i %= sizeof t / sizeof t[0];
    return (tq_tz_days_from_civil(t[i].y, t[i].m, t[i].d) * 86400 + t[i].h * 3600 +
            t[i].mi * 60) *
           1000;
}

static void check_next(const tq_cron *c, const tq_tz *z, int64_t t, const char *expr)
{
    int64_t n = tq_cron_next(c, z, t);
    if (n == TQ_CRON_NEVER)
        return;
    const char *zn = tq_tz_name(z);
    CHECK(n > t, "'%s' %s: next(%lld) = %lld", expr, zn, (long long)t, (long long)n);
    CHECK(n % 1000 == 0, "'%s' %s: next(%lld) = %lld", expr, zn, (long long)t,
          (long long)n);
    /* The same fire from just before it, and it is its own last fire. */
    int64_t again = tq_cron_next(c, z, n - 1);
    CHECK(again == n, "'%s' %s: next(%lld) = %lld but next(%lld) = %lld", expr, zn,
          (long long)t, (long long)n, (long long)(n - 1), (long long)again);
    int64_t p = tq_cron_prev(c, z, n);
    CHECK(p == n, "'%s' %s: prev(next(%lld) = %lld) = %lld", expr, zn, (long long)t,
          (long long)n, (long long)p);
    /* Its wall clock matches, or it ends a gap that swallowed a match. */
    int64_t s = n / 1000;
    int32_t off = tq_tz_offset(z, s, NULL);
    CHECK(tq_cron_matches(c, s + off) || tq_tz_offset(z, s - 1, NULL) < off,
          "'%s' %s: next(%lld) = %lld does not match", expr, zn, (long long)t,
          (long long)n);
    /* In UTC the first matching minute after t, looked for minute by minute
     * over a day. */
    if (strcmp(zn, "UTC") == 0 && t > -((int64_t)1 << 50) && t < (int64_t)1 << 50) {
        int64_t m = (t >= 0 ? t / 60000 : (t - 59999) / 60000) + 1;
        for (int i = 0; i < 1440; i++, m++)
            if (tq_cron_matches(c, m * 60)) {
                CHECK(n == m * 60000,
                      "'%s' UTC: next(%lld) = %lld, the first match is %lld", expr,
                      (long long)t, (long long)n, (long long)(m * 60000));
                break;
            }
    }
}

static void check_prev(const tq_cron *c, const tq_tz *z, int64_t t, const char *expr)
{
    int64_t p = tq_cron_prev(c, z, t);
    if (p == TQ_CRON_NEVER)
        return;
    const char *zn = tq_tz_name(z);
    CHECK(p <= t, "'%s' %s: prev(%lld) = %lld", expr, zn, (long long)t, (long long)p);
    /* p is a fire, and there is none in (p, t]. */
    CHECK(tq_cron_next(c, z, p - 1) == p, "'%s' %s: prev(%lld) = %lld, next(%lld) = %lld",
          expr, zn, (long long)t, (long long)p, (long long)(p - 1),
          (long long)tq_cron_next(c, z, p - 1));
    int64_t n = tq_cron_next(c, z, p);
    CHECK(n > t, "'%s' %s: prev(%lld) = %lld but next(%lld) = %lld", expr, zn,
          (long long)t, (long long)p, (long long)p, (long long)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 + 300 + 1 + 8)
        return 0;
    unsigned sel = data[0];
    const uint8_t *text = data + 1, *nul = memchr(text, 0, size - 1);
    size_t tlen = nul ? (size_t)(nul - text) : size - 1;
    char expr[512];
    memcpy(expr, text, tlen);
    expr[tlen] = '\0';

    tq_cron c;
    char err[512];
    memset(err, 'x', sizeof err);
    int rc = tq_cron_parse(&c, expr, err, sizeof err);
    if (rc < 0) {
        CHECK(rc == TQ_EINVAL && memchr(err, '\0', sizeof err) && err[0], "'%s': rc %d",
              expr, rc);
        return 0;
    }
    CHECK(c.minutes && c.minutes >> 60 == 0 && c.hours && c.hours >> 24 == 0 && c.days &&
              (c.days & 1) == 0 && c.months && (c.months & 0xe001) == 0 && c.weekdays &&
              c.weekdays >> 7 == 0,
          "'%s': a field without values or out of range", expr);
    if (!tq_cron_ever(&c))
        return 0; /* the schedule layer refuses it; next is NEVER */

    const tq_tz *z;
    char zerr[256];
    const char *zname = zones[sel % NZONES];
    CHECK(tq_tz_get(zname, &z, zerr, sizeof zerr) == 0, "zone %s: %s", zname, zerr);
    int64_t t = fixed_instant(sel / NZONES);
    check_next(&c, z, t, expr);
    check_prev(&c, z, t, expr);
    check_next(&c, z, t + 1, expr);
    if (nul && (size_t)(data + size - (nul + 1)) >= 8) {
        int64_t raw;
        memcpy(&raw, nul + 1, sizeof raw);
        check_next(&c, z, raw, expr);
        check_prev(&c, z, raw, expr);
    }
    return 0;
}
