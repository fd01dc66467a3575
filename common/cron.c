/* Cron expressions: the parser, the calendar search and the walk over
 * stretches of constant UTC offset that applies the daylight-saving rules
 * (see cron.h). */
#include "common/cron.h"
#include "common/err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define NONE INT64_MAX

/* ------------------------------------------------------------------------
 * Parsing. */

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, NFIELDS };

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* 3-letter names of lo, lo + 1, ... or NULL */
    int nnames;
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct field fields[NFIELDS] = {
    {"minute", 0, 59, NULL, 0},          {"hour", 0, 23, NULL, 0},
    {"day-of-month", 1, 31, NULL, 0},    {"month", 1, 12, month_names, 12},
    {"day-of-week", 0, 7, day_names, 7},
};

static const struct {
    const char *name;
    const char *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Reads the decimal digits at s into *v (saturating above 100000, which is
 * out of every field's range anyway). Returns how many digits there were. */
static int read_number(const char *s, long *v)
{
    int n = 0;
    *v = 0;
    while (isdigit((unsigned char)s[n])) {
        if (*v < 100000)
            *v = *v * 10 + (s[n] - '0');
        n++;
    }
    return n;
}

/* Reads a number or, where the field has them, a name, at *sp. Returns 0
 * with the value, or -1 with err set. */
static int parse_value(const char **sp, const struct field *f, const char *expr, int *out,
                       char *err, size_t errlen)
{
    const char *s = *sp;
    if (isdigit((unsigned char)*s)) {
        long v;
        int n = read_number(s, &v);
        if (v < f->lo || v > f->hi)
            return tq_err_set(-1, err, errlen,
                              "'%s': %s field: %.*s is out of range %d-%d", expr, f->name,
                              n, s, f->lo, f->hi);
        *out = (int)v;
        *sp = s + n;
        return 0;
    }
    int n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    if (n == 0) {
        if (*s == '\0' || *s == ',')
            return tq_err_set(-1, err, errlen, "'%s': %s field: a value is missing", expr,
                              f->name);
        return tq_err_set(-1, err, errlen, "'%s': %s field: unexpected '%c'", expr,
                          f->name, *s);
    }
    for (int i = 0; f->names && n == 3 && i < f->nnames; i++)
        if (strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->lo + i;
            *sp = s + n;
            return 0;
        }
    if (!f->names)
        return tq_err_set(-1, err, errlen, "'%s': %s field: '%.*s' is not a number", expr,
                          f->name, n, s);
    return tq_err_set(-1, err, errlen, "'%s': %s field: unknown name '%.*s' (use %s-%s)",
                      expr, f->name, n, s, f->names[0], f->names[f->nnames - 1]);
}

/* Reads "/n" at *sp if there is one (else *step stays). */
static int parse_step(const char **sp, const struct field *f, const char *expr, int *step,
                      char *err, size_t errlen)
{
    const char *s = *sp;
    if (*s != '/')
        return 0;
    s++;
    if (!isdigit((unsigned char)*s))
        return tq_err_set(-1, err, errlen,
                          "'%s': %s field: '/' must be followed by a step", expr,
                          f->name);
    long v;
    int n = read_number(s, &v);
    if (v == 0)
        return tq_err_set(-1, err, errlen,
                          "'%s': %s field: step 0 (a step is at least 1)", expr, f->name);
    if (v > f->hi)
        return tq_err_set(-1, err, errlen, "'%s': %s field: step %.*s is larger than %d",
                          expr, f->name, n, s, f->hi);
    *step = (int)v;
    *sp = s + n;
    return 0;
}

/* Parses one field (len bytes at text) into bits. */
static int parse_field(const char *text, size_t len, const struct field *f,
                       const char *expr, uint64_t *bits, char *err, size_t errlen)
{
    char buf[TQ_CRON_EXPR_MAX];
    memcpy(buf, text, len);
    buf[len] = '\0';
    *bits = 0;
    for (const char *item = buf;;) {
        const char *end = item + strcspn(item, ",");
        if (end == item)
            return tq_err_set(-1, err, errlen, "'%s': %s field: empty item in '%s'", expr,
                              f->name, buf);
        const char *s = item;
        int a, b, step = 1;
        if (*s == '*') {
            s++;
            a = f->lo;
            b = f->hi;
        } else {
            if (parse_value(&s, f, expr, &a, err, errlen) < 0)
                return -1;
            b = a;
            if (*s == '-') {
                s++;
                if (parse_value(&s, f, expr, &b, err, errlen) < 0)
                    return -1;
                if (b < a)
                    return tq_err_set(
                        -1, err, errlen,
                        "'%s': %s field: reversed range '%.*s' (%d is after %d)", expr,
                        f->name, (int)(s - item), item, a, b);
            } else if (*s == '/') {
                b = f->hi;
            }
        }
        if (parse_step(&s, f, expr, &step, err, errlen) < 0)
            return -1;
        if (s != end)
            return tq_err_set(-1, err, errlen,
                              "'%s': %s field: unexpected '%c' in '%.*s'", expr, f->name,
                              *s, (int)(end - item), item);
        for (int v = a; v <= b; v += step)
            *bits |= 1ull << v;
        if (!*end)
            return 0;
        item = end + 1;
    }
}

int tq_cron_parse(tq_cron *c, const char *expr, char *err, size_t errlen)
{
    const char *start[NFIELDS + 1], *s = expr;
    size_t len[NFIELDS + 1];
    int n = 0;

    memset(c, 0, sizeof *c);
    if (strlen(expr) >= TQ_CRON_EXPR_MAX)
        return tq_err_set(TQ_EINVAL, err, errlen, "a cron expression is at most %d bytes",
                          TQ_CRON_EXPR_MAX - 1);
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '@') {
        size_t k = strcspn(s, " \t");
        const char *rest = s + k + strspn(s + k, " \t");
        for (size_t i = 0; !*rest && i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == k && strncasecmp(s, macros[i].name, k) == 0)
                return tq_cron_parse(c, macros[i].expr, err, errlen);
        return tq_err_set(
            TQ_EINVAL, err, errlen,
            "'%s': unknown macro (use @yearly, @annually, @monthly, @weekly, "
            "@daily, @midnight or @hourly)",
            expr);
    }
    while (*s) {
        size_t k = strcspn(s, " \t");
        if (n <= NFIELDS) {
            start[n] = s;
            len[n] = k;
        }
        n++;
        s += k;
        s += strspn(s, " \t");
    }
    if (n != NFIELDS)
        return tq_err_set(TQ_EINVAL, err, errlen,
                          "'%s': expected 5 fields (minute hour day-of-month month "
                          "day-of-week), got %d",
                          expr, n);
    uint64_t bits[NFIELDS];
    for (int i = 0; i < NFIELDS; i++)
        if (parse_field(start[i], len[i], &fields[i], expr, &bits[i], err, errlen) < 0) {
            memset(c, 0, sizeof *c);
            return TQ_EINVAL;
        }
    c->minutes = bits[F_MINUTE];
    c->hours = (uint32_t)bits[F_HOUR];
    c->days = (uint32_t)bits[F_DOM];
    c->months = (uint16_t)bits[F_MONTH];
    c->weekdays = (uint8_t)((bits[F_DOW] | bits[F_DOW] >> 7) & 0x7f); /* 7 is Sunday */
    if (start[F_DOM][0] == '*')
        c->flags |= TQ_CRON_DOM_STAR;
    if (start[F_DOW][0] == '*')
        c->flags |= TQ_CRON_DOW_STAR;
    if ((len[F_HOUR] == 1 && start[F_HOUR][0] == '*') ||
        (len[F_HOUR] >= 2 && start[F_HOUR][0] == '*' && start[F_HOUR][1] == '/'))
        c->flags |= TQ_CRON_HOUR_STAR;
    return 0;
}

/* ------------------------------------------------------------------------
 * The calendar. */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The lowest set bit of mask at or above i, or -1. */
static int next_bit(uint64_t mask, int i)
{
    if (i >= 64)
        return -1;
    mask >>= i;
    return mask ? i + __builtin_ctzll(mask) : -1;
}

/* The days of month m of year y that match, as bits 1-31. */
static uint32_t day_mask(const tq_cron *c, int64_t y, int m)
{
    /* Days 1, 8, 15, 22 and 29: shifted by k, the days of one weekday. */
    const uint64_t every7 = 1ull << 1 | 1ull << 8 | 1ull << 15 | 1ull << 22 | 1ull << 29;
    int dim = tq_tz_days_in_month(y, m);
    uint32_t valid = (uint32_t)(((1ull << dim) - 1) << 1);
    int wd1 = tq_tz_weekday(tq_tz_days_from_civil(y, m, 1));
    uint64_t dow = 0;
    for (int w = 0; w < 7; w++)
        if (c->weekdays >> w & 1)
            dow |= every7 << ((w - wd1 + 7) % 7);
    uint32_t dom = c->days & valid, dw = (uint32_t)dow & valid;
    return (c->flags & (TQ_CRON_DOM_STAR | TQ_CRON_DOW_STAR)) ? (dom & dw) : (dom | dw);
}

int tq_cron_matches(const tq_cron *c, int64_t local_s)
{
    int64_t days = floor_div(local_s, 86400), sod = local_s - days * 86400, y;
    int m, d;
    tq_tz_civil_from_days(days, &y, &m, &d);
    return (c->minutes >> (sod / 60 % 60) & 1) && (c->hours >> (sod / 3600) & 1) &&
           (c->months >> m & 1) && (day_mask(c, y, m) >> d & 1);
}

int tq_cron_ever(const tq_cron *c)
{
    for (int64_t y = 2000; y < 2400; y++)
        for (int m = 1; m <= 12; m++)
            if ((c->months >> m & 1) && day_mask(c, y, m))
                return 1;
    return 0;
}

/* The first matching wall-clock minute at or after from and before limit
 * (local seconds), or NONE. Skips a month, a day, an hour at a time. */
static int64_t first_match(const tq_cron *c, int64_t from, int64_t limit)
{
    int64_t t = floor_div(from + 59, 60) * 60, y;
    int64_t days = floor_div(t, 86400), sod = t - days * 86400;
    int m, d, h = (int)(sod / 3600), mi = (int)(sod / 60 % 60);
    tq_tz_civil_from_days(days, &y, &m, &d);
    for (;;) {
        if (tq_tz_days_from_civil(y, m, 1) * 86400 + (int64_t)(d - 1) * 86400 + h * 3600 +
                mi * 60 >=
            limit)
            return NONE;
        if (!(c->months >> m & 1)) {
            int nm = next_bit(c->months, m + 1);
            if (nm < 0) {
                y++;
                nm = next_bit(c->months, 1);
            }
            m = nm;
            d = 1;
            h = mi = 0;
            continue;
        }
        int nd = next_bit(day_mask(c, y, m), d);
        if (nd < 0) {
            if (++m > 12) {
                m = 1;
                y++;
            }
            d = 1;
            h = mi = 0;
            continue;
        }
        if (nd != d) {
            d = nd;
            h = mi = 0;
        }
        int nh = next_bit(c->hours, h);
        if (nh < 0) {
            d++;
            h = mi = 0;
            continue;
        }
        if (nh != h) {
            h = nh;
            mi = 0;
        }
        int nmi = next_bit(c->minutes, mi);
        if (nmi < 0) {
            h++;
            mi = 0;
            continue;
        }
        int64_t l = tq_tz_days_from_civil(y, m, d) * 86400 + h * 3600 + nmi * 60;
        return l < limit ? l : NONE;
    }
}

/* ------------------------------------------------------------------------
 * The next fire instant.
 *
 * Time is cut into stretches of constant UTC offset (between transitions),
 * in which the wall clock is UTC plus that offset, so the first matching
 * minute of a stretch is its first fire. Where the clock was set back, the
 * wall-clock times the previous stretches already showed (up to the "high
 * water mark") are skipped unless the hour field is '*'-like. Where it was
 * set forward, a match in the skipped wall-clock times fires at the
 * transition. The walk starts two days early so that it knows the high
 * water mark of a fall-back just before after_ms. */

/* 1 if the walk from ms, and the horizon after it, stay within int64_t
 * milliseconds; for the rest next and prev answer TQ_CRON_NEVER. */
static int in_range(int64_t ms)
{
    int64_t lo = floor_div(ms, 1000) + 1;
    return lo <= INT64_MAX / 1000 - TQ_CRON_HORIZON_S - 4 * 86400 &&
           lo >= INT64_MIN / 1000 + 4 * 86400;
}

static int64_t next_fire(const tq_cron *c, const tq_tz *z, int64_t after_ms)
{
    int64_t lo = floor_div(after_ms, 1000) + 1; /* the first allowed fire, in s */
    int64_t horizon = lo + TQ_CRON_HORIZON_S;
    int64_t s = lo - 2 * 86400;
    int32_t o = tq_tz_offset(z, s, NULL);
    int64_t hwm = s + o;
    for (;;) {
        int32_t before, after;
        int64_t e = tq_tz_next_transition(z, s, &before, &after);
        int64_t end = e == TQ_TZ_NONE || e > horizon ? horizon : e;
        int64_t from = (s > lo ? s : lo) + o;
        if (!(c->flags & TQ_CRON_HOUR_STAR) && from < hwm)
            from = hwm;
        int64_t l = first_match(c, from, end + o);
        if (l != NONE)
            return (l - o) * 1000;
        if (end == horizon)
            return TQ_CRON_NEVER;
        if (e + o > hwm)
            hwm = e + o;
        if (after > o && e >= lo && first_match(c, e + o, e + after) != NONE)
            return e * 1000;
        s = e;
        o = after;
    }
}

/* Only fires F with F - 1 in range count, so that next(F - 1) is F for
 * every fire next answers, up to the very end of the range. */
int64_t tq_cron_next(const tq_cron *c, const tq_tz *z, int64_t after_ms)
{
    if (!in_range(after_ms))
        return TQ_CRON_NEVER;
    int64_t f = next_fire(c, z, after_ms);
    return f != TQ_CRON_NEVER && in_range(f - 1) ? f : TQ_CRON_NEVER;
}

int64_t tq_cron_prev(const tq_cron *c, const tq_tz *z, int64_t at_ms)
{
    /* Out of next's range, the bisection below would take next's NEVER for
     * "no fire yet" and answer an instant that is no fire. */
    if (!in_range(at_ms))
        return TQ_CRON_NEVER;
    /* Find lo with a fire in (lo, at_ms], doubling the distance. */
    int64_t step = 60000, lo;
    for (;;) {
        if (at_ms < INT64_MIN + step)
            return TQ_CRON_NEVER;
        lo = at_ms - step;
        if (tq_cron_next(c, z, lo) <= at_ms)
            break;
        if (step > TQ_CRON_HORIZON_S * 1000)
            return TQ_CRON_NEVER;
        step *= 2;
    }
    /* next(lo) <= at_ms < next(hi): the last fire is the smallest such hi. */
    int64_t hi = at_ms;
    if (tq_cron_next(c, z, hi) <= at_ms)
        return TQ_CRON_NEVER; /* cannot happen: next is strictly after */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (tq_cron_next(c, z, mid) <= at_ms)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}
