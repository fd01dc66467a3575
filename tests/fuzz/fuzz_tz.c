/* Fuzzes the TZif reader (common/tz): any bytes through tq_tz_parse(); a
 * zone it accepts must answer sane offsets, transitions that agree with
 * the offsets, wall-clock times that resolve to instants showing them, and
 * cron fire times after the instant asked, from the dawn of time to past
 * year 2037 and beyond (the POSIX TZ footer's rule). */
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
            fprintf(stderr, "fuzz_tz: %s failed: ", #cond);                              \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define OFFSET_MIN (-89999) /* RFC 8536: within +-25:59:59 */
#define OFFSET_MAX 93599
/* The instants cron asks about: tq_cron_next() answers never beyond. */
#define EDGE_S (INT64_MAX / 1000 - TQ_CRON_HORIZON_S - 5 * 86400)

/* A wall-clock time that may not exist: if no instant shows it, resolve
 * answers the end of the gap it is in. */
static void check_gap(const tq_tz *z, int64_t local)
{
    int64_t out[2];
    int dst = 7;
    int n = tq_tz_resolve(z, local, out);
    CHECK(n >= 0 && n <= 2, "resolve(%lld): %d", (long long)local, n);
    if (n > 0)
        return;
    int64_t e = out[0];
    int32_t b = tq_tz_offset(z, e - 1, NULL), a = tq_tz_offset(z, e, &dst);
    CHECK(dst == 0 || dst == 1, "is_dst %d", dst);
    CHECK(a > b && e + b <= local && local < e + a,
          "resolve(%lld): no instant, but %lld (offsets %d to %d) is no gap around it",
          (long long)local, (long long)e, b, a);
}

static void check_at(const tq_tz *z, int64_t t)
{
    int32_t off = tq_tz_offset(z, t, NULL);
    CHECK(off >= OFFSET_MIN && off <= OFFSET_MAX, "offset(%lld) = %d", (long long)t, off);
    int32_t before = 7, after = 7;
    int64_t e = tq_tz_next_transition(z, t, &before, &after);
    if (e != TQ_TZ_NONE) {
        CHECK(e > t, "next_transition(%lld) = %lld", (long long)t, (long long)e);
        CHECK(before != after, "a transition at %lld from %d to %d", (long long)e, before,
              after);
        CHECK(tq_tz_offset(z, e - 1, NULL) == before && tq_tz_offset(z, e, NULL) == after,
              "transition at %lld: %d -> %d, but offsets %d -> %d", (long long)e, before,
              after, tq_tz_offset(z, e - 1, NULL), tq_tz_offset(z, e, NULL));
        CHECK(off == before,
              "offset(%lld) = %d, but the next transition (%lld) is from %d",
              (long long)t, off, (long long)e, before);
        if (after > before)
            check_gap(z, e + before);
    }

    /* The wall clock at t resolves to t among its instants. */
    int64_t local = t + off, out[2];
    int n = tq_tz_resolve(z, local, out);
    CHECK(n >= 1 && n <= 2, "resolve(%lld), the wall clock at %lld: %d instants",
          (long long)local, (long long)t, n);
    int found = 0;
    for (int i = 0; i < n; i++) {
        CHECK(out[i] + tq_tz_offset(z, out[i], NULL) == local,
              "resolve(%lld) gave %lld, whose wall clock is %lld", (long long)local,
              (long long)out[i], (long long)(out[i] + tq_tz_offset(z, out[i], NULL)));
        found |= out[i] == t;
    }
    CHECK(found, "resolve(%lld) does not give %lld", (long long)local, (long long)t);
    CHECK(n < 2 || out[0] < out[1], "resolve(%lld): %lld, %lld", (long long)local,
          (long long)out[0], (long long)out[1]);
}

static void check_cron(const tq_tz *z, const char *expr, int64_t t_s)
{
    tq_cron c;
    char err[256];
    CHECK(tq_cron_parse(&c, expr, err, sizeof err) == 0, "%s", err);
    int64_t t = t_s * 1000, n = tq_cron_next(&c, z, t);
    if (n == TQ_CRON_NEVER)
        return;
    CHECK(n > t, "'%s': next(%lld) = %lld", expr, (long long)t, (long long)n);
    int64_t again = tq_cron_next(&c, z, n - 1);
    CHECK(again == n, "'%s': next(%lld) = %lld, next(%lld) = %lld", expr, (long long)t,
          (long long)n, (long long)(n - 1), (long long)again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    memset(err, 'x', sizeof err);
    tq_tz *z = tq_tz_parse("Fuzz/Zone", data, size, err, sizeof err);
    if (!z) {
        CHECK(memchr(err, '\0', sizeof err) && err[0], "no error text");
        return 0;
    }
    static const int64_t fixed[] = {0,           1000000000,  1774744200, 1792890000,
                                    2147483647,  2147483648,  2500000000, 4102444800,
                                    -2147483648, -2208988800, -1,         253402300799,
                                    EDGE_S,      -EDGE_S,     1LL << 40,  -(1LL << 40)};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_at(z, fixed[i]);

    /* Along the transitions: from before the first, up to 64 of them, and
     * on both sides of each. */
    int64_t t = -EDGE_S;
    for (int i = 0; i < 64; i++) {
        int64_t e = tq_tz_next_transition(z, t, NULL, NULL);
        if (e == TQ_TZ_NONE || e > EDGE_S)
            break;
        CHECK(e > t, "next_transition(%lld) = %lld", (long long)t, (long long)e);
        check_at(z, e - 1);
        check_at(z, e);
        t = e;
    }

    static const char *const exprs[] = {"0 * * * *", "30 2 * * *", "*/20 1-3 * * 0"};
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        check_cron(z, exprs[i], 1774744200);
        check_cron(z, exprs[i], 4102444800);
        check_cron(z, exprs[i], EDGE_S - 86400);
        check_cron(z, exprs[i], -EDGE_S + 86400);
    }
    tq_tz_free(z);
    return 0;
}
