/* Time zones: a TZif reader with its POSIX TZ footer rule, the zone cache,
 * UTC <-> wall-clock conversion, civil dates and ISO-8601 instants. */
#include "common/tz.h"
#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define bad(err, errlen, ...) tq_err_set(TQ_EINVAL, err, errlen, __VA_ARGS__)

#define OFFSET_MIN (-89999) /* RFC 8536: offsets are within +-25:59:59 */
#define OFFSET_MAX 93599
#define RESOLVE_WINDOW_S (30 * 3600) /* wider than any offset */
#define TYPES_MAX 256
#define RULE_TIME_MAX (167 * 3600) /* RFC 8536 extension of POSIX rule times */
/* Transition times are within +-2^59 s, zic's "big bang" (-2^59) included:
 * civil-date arithmetic on them cannot overflow. */
#define TIME_MAX ((int64_t)1 << 59)

/* ------------------------------------------------------------------------
 * Civil dates. Howard Hinnant's algorithms: exact for every year of the
 * proleptic Gregorian calendar that fits the types. */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t tq_tz_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tq_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tq_tz_weekday(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tq_tz_days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* ------------------------------------------------------------------------
 * The zone. */

struct ttype {
    int32_t off; /* seconds east of UTC */
    uint8_t isdst;
};

/* A date of a POSIX TZ rule: Jn (1-365, February 29 never counted), n
 * (0-365, counted) or Mm.w.d (weekday d of week w of month m, 5 = last). */
struct rule_date {
    char kind; /* 'J', 'n' or 'M' */
    int n, m, w, d;
};

/* A POSIX TZ string, the footer of a TZif file. */
struct posix {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;
    struct rule_date start, end;
    int32_t start_time; /* seconds after midnight, standard time */
    int32_t end_time;   /* seconds after midnight, daylight time */
};

struct tq_tz {
    char name[TQ_TZ_NAME_MAX];
    size_t n;            /* transitions */
    int64_t *at;         /* owned: n UTC instants, increasing */
    uint8_t *type;       /* owned: n indexes into types */
    struct ttype *types; /* owned */
    size_t ntypes;       /* >= 1 */
    int has_rule;        /* the footer gives the offsets after at[n-1] */
    struct posix rule;
    struct tq_tz *next; /* the cache's list */
};

void tq_tz_free(tq_tz *z)
{
    if (!z)
        return;
    free(z->at);
    free(z->type);
    free(z->types);
    free(z);
}

const char *tq_tz_name(const tq_tz *z)
{
    return z->name;
}

/* ---- the POSIX rule ---- */

static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    int64_t jan1 = tq_tz_days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == 'n')
        return jan1 + r->n;
    int64_t first = tq_tz_days_from_civil(y, r->m, 1);
    int day = (r->d - tq_tz_weekday(first) + 7) % 7 + (r->w - 1) * 7;
    int dim = tq_tz_days_in_month(y, r->m);
    while (day >= dim)
        day -= 7;
    return first + day;
}

/* The instants daylight time starts and ends in year y. */
static int64_t rule_start(const struct posix *p, int64_t y)
{
    return rule_day(&p->start, y) * 86400 + p->start_time - p->std_off;
}

static int64_t rule_end(const struct posix *p, int64_t y)
{
    return rule_day(&p->end, y) * 86400 + p->end_time - p->dst_off;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;
    tq_tz_civil_from_days(floor_div(t, 86400), &y, &m, &d);
    return y;
}

static int32_t rule_offset(const struct posix *p, int64_t t, int *is_dst)
{
    int in = 0;
    if (p->has_dst) {
        int64_t y = year_of(t + p->std_off);
        int64_t s = rule_start(p, y), e = rule_end(p, y);
        in = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    }
    if (is_dst)
        *is_dst = in;
    return in ? p->dst_off : p->std_off;
}

/* The first instant after t at which rule_offset() changes. It can only
 * change where daylight time starts or ends, or where the year it looks at
 * (of t + std_off) changes: a rule whose start and end swap order from one
 * year to the next ("M1.5.0,30") flips there. The candidates of year y lie
 * within 8 days of it (rule times are at most 167 h), and a rule can skip
 * years (day 365 exists in leap years only), so up to 9 years are looked
 * at. Returns TQ_TZ_NONE when the rule has no daylight time, or when it is
 * daylight time all year round. */
static int64_t rule_next(const struct posix *p, int64_t t)
{
    if (!p->has_dst || p->std_off == p->dst_off)
        return TQ_TZ_NONE;
    int64_t y0 = year_of(t), best = TQ_TZ_NONE;
    for (int64_t y = y0 - 1; y <= y0 + 9; y++) {
        int64_t c[3] = {rule_start(p, y), rule_end(p, y),
                        tq_tz_days_from_civil(y, 1, 1) * 86400 - p->std_off};
        for (int i = 0; i < 3; i++)
            if (c[i] > t && c[i] < best &&
                rule_offset(p, c[i] - 1, NULL) != rule_offset(p, c[i], NULL))
                best = c[i];
        if (best < tq_tz_days_from_civil(y + 1, 1, 1) * 86400 - 10 * 86400)
            break; /* the later years' candidates are all later */
    }
    return best;
}

/* ---- lookups ---- */

/* The number of transitions at or before t. */
static size_t count_upto(const tq_tz *z, int64_t t)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int32_t tq_tz_offset(const tq_tz *z, int64_t utc_s, int *is_dst)
{
    size_t k = count_upto(z, utc_s);
    if (z->has_rule && (z->n == 0 || (k == z->n && utc_s > z->at[z->n - 1])))
        return rule_offset(&z->rule, utc_s, is_dst);
    /* Before the first transition, time type 0 applies (RFC 8536). */
    const struct ttype *tt = &z->types[k ? z->type[k - 1] : 0];
    if (is_dst)
        *is_dst = tt->isdst;
    return tt->off;
}

int64_t tq_tz_next_transition(const tq_tz *z, int64_t utc_s, int32_t *before,
                              int32_t *after)
{
    int64_t t = utc_s, found = TQ_TZ_NONE;
    int32_t b = 0, a = 0;
    for (size_t i = count_upto(z, t); i < z->n; i++) {
        b = z->types[i ? z->type[i - 1] : 0].off;
        a = z->types[z->type[i]].off;
        if (a != b) {
            found = z->at[i];
            break;
        }
    }
    if (found == TQ_TZ_NONE && z->has_rule) {
        if (z->n && t < z->at[z->n - 1])
            t = z->at[z->n - 1];
        found = rule_next(&z->rule, t);
        if (found != TQ_TZ_NONE) {
            b = tq_tz_offset(z, found - 1, NULL);
            a = tq_tz_offset(z, found, NULL);
        }
    }
    if (before)
        *before = b;
    if (after)
        *after = a;
    return found;
}

/* Walks the stretches of constant offset that cover the instants near
 * local_s, and keeps each instant whose wall clock shows local_s. */
int tq_tz_resolve(const tq_tz *z, int64_t local_s, int64_t out[2])
{
    int64_t lo = local_s - RESOLVE_WINDOW_S, gap_end = TQ_TZ_NONE;
    int32_t o = tq_tz_offset(z, lo, NULL);
    int n = 0;
    for (;;) {
        int32_t b, a;
        int64_t hi = tq_tz_next_transition(z, lo, &b, &a);
        int64_t u = local_s - o;
        if (u >= lo && (hi == TQ_TZ_NONE || u < hi) && n < 2)
            out[n++] = u;
        if (hi == TQ_TZ_NONE || hi > local_s + RESOLVE_WINDOW_S)
            break;
        if (a > o && hi + o <= local_s && local_s < hi + a)
            gap_end = hi;
        lo = hi;
        o = a;
    }
    if (n == 0)
        out[0] = gap_end != TQ_TZ_NONE ? gap_end : local_s - o;
    return n;
}

/* ------------------------------------------------------------------------
 * Parsing the POSIX TZ footer: std offset [dst [offset] [,start[/time],end[/time]]]. */

static int parse_abbr(const char **sp)
{
    const char *s = *sp;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while (s[n] && s[n] != '>' &&
               (s[n] == '+' || s[n] == '-' || (s[n] >= '0' && s[n] <= '9') ||
                (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z')))
            n++;
        if (s[n] != '>' || n < 3)
            return -1;
        *sp = s + n + 1;
        return 0;
    }
    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
        n++;
    if (n < 3)
        return -1;
    *sp = s + n;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h; the value in seconds, signed. */
static int parse_hms(const char **sp, int max_h, int32_t *out)
{
    const char *s = *sp;
    int sign = 1, part[3] = {0, 0, 0}, np = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    for (;;) {
        int digits = 0, v = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        if (digits == 0 || (np > 0 && (digits != 2 || v > 59)) || (np == 0 && v > max_h))
            return -1;
        part[np++] = v;
        if (np == 3 || *s != ':')
            break;
        s++;
    }
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *sp = s;
    return 0;
}

static int parse_uint(const char **sp, int lo, int hi, int *out)
{
    const char *s = *sp;
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9' && digits < 4) {
        v = v * 10 + (*s++ - '0');
        digits++;
    }
    if (!digits || v < lo || v > hi)
        return -1;
    *out = v;
    *sp = s;
    return 0;
}

static int parse_rule_date(const char **sp, struct rule_date *r, int32_t *time)
{
    const char *s = *sp;
    memset(r, 0, sizeof *r);
    if (*s == 'J') {
        s++;
        r->kind = 'J';
        if (parse_uint(&s, 1, 365, &r->n) < 0)
            return -1;
    } else if (*s == 'M') {
        s++;
        r->kind = 'M';
        if (parse_uint(&s, 1, 12, &r->m) < 0 || *s++ != '.' ||
            parse_uint(&s, 1, 5, &r->w) < 0 || *s++ != '.' ||
            parse_uint(&s, 0, 6, &r->d) < 0)
            return -1;
    } else {
        r->kind = 'n';
        if (parse_uint(&s, 0, 365, &r->n) < 0)
            return -1;
    }
    *time = 2 * 3600;
    if (*s == '/') {
        s++;
        if (parse_hms(&s, RULE_TIME_MAX / 3600, time) < 0)
            return -1;
    }
    *sp = s;
    return 0;
}

/* Parses a footer; returns 1 with *p set, 0 for an empty footer, -1 if bad. */
static int parse_posix(const char *s, struct posix *p)
{
    int32_t v;
    memset(p, 0, sizeof *p);
    if (!*s)
        return 0;
    if (parse_abbr(&s) < 0 || parse_hms(&s, 24, &v) < 0)
        return -1;
    p->std_off = -v; /* POSIX counts hours west of Greenwich */
    if (!*s)
        return 1;
    if (parse_abbr(&s) < 0)
        return -1;
    p->has_dst = 1;
    p->dst_off = p->std_off + 3600;
    if (*s && *s != ',') {
        if (parse_hms(&s, 24, &v) < 0)
            return -1;
        p->dst_off = -v;
    }
    if (!*s) { /* no rule: POSIX leaves it to us; use the US rule, as glibc does */
        p->start = (struct rule_date){'M', 0, 3, 2, 0};
        p->end = (struct rule_date){'M', 0, 11, 1, 0};
        p->start_time = p->end_time = 2 * 3600;
        return 1;
    }
    if (*s++ != ',' || parse_rule_date(&s, &p->start, &p->start_time) < 0 ||
        *s++ != ',' || parse_rule_date(&s, &p->end, &p->end_time) < 0 || *s)
        return -1;
    if (p->std_off < OFFSET_MIN || p->std_off > OFFSET_MAX || p->dst_off < OFFSET_MIN ||
        p->dst_off > OFFSET_MAX)
        return -1;
    return 1;
}

/* ------------------------------------------------------------------------
 * Parsing TZif data (RFC 8536). */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct counts {
    uint64_t isut, isstd, leap, time, type, chars;
};

static void read_counts(const unsigned char *h, struct counts *c)
{
    c->isut = be32(h + 20);
    c->isstd = be32(h + 24);
    c->leap = be32(h + 28);
    c->time = be32(h + 32);
    c->type = be32(h + 36);
    c->chars = be32(h + 40);
}

/* Bytes of a data block whose times have tsize bytes. */
static uint64_t block_size(const struct counts *c, int tsize)
{
    return c->time * (uint64_t)tsize + c->time + c->type * 6 + c->chars +
           c->leap * (uint64_t)(tsize + 4) + c->isstd + c->isut;
}

tq_tz *tq_tz_parse(const char *name, const void *data, size_t len, char *err,
                   size_t errlen)
{
    const unsigned char *p = data, *end = p + len;
    struct counts c;
    int tsize = 4;
    tq_tz *z = NULL;

    if (errlen)
        err[0] = '\0';
    if (len < 44 || memcmp(p, "TZif", 4) != 0) {
        bad(err, errlen, "zone '%s': not a TZif file", name);
        return NULL;
    }
    read_counts(p, &c);
    if (p[4] >= '2') { /* skip the 32-bit data to the 64-bit header */
        uint64_t skip = 44 + block_size(&c, 4);
        if (skip + 44 > len || memcmp(p + skip, "TZif", 4) != 0) {
            bad(err, errlen, "zone '%s': truncated TZif data", name);
            return NULL;
        }
        p += skip;
        read_counts(p, &c);
        tsize = 8;
    }
    p += 44;
    if (c.type == 0 || c.type > TYPES_MAX || c.chars == 0 || c.time > (uint64_t)len ||
        block_size(&c, tsize) > (uint64_t)(end - p)) {
        bad(err, errlen, "zone '%s': truncated or malformed TZif data", name);
        return NULL;
    }
    if (c.leap) {
        bad(err, errlen,
            "zone '%s': zones with leap seconds (right/...) are not supported", name);
        return NULL;
    }
    z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    snprintf(z->name, sizeof z->name, "%s", name);
    z->n = c.time;
    z->ntypes = c.type;
    z->at = malloc((c.time ? c.time : 1) * sizeof *z->at);
    z->type = malloc(c.time ? c.time : 1);
    z->types = malloc(c.type * sizeof *z->types);
    if (!z->at || !z->type || !z->types)
        goto nomem;
    for (size_t i = 0; i < z->n; i++) {
        z->at[i] = tsize == 8 ? be64(p) : (int32_t)be32(p);
        p += tsize;
        if (z->at[i] < -TIME_MAX || z->at[i] > TIME_MAX) {
            bad(err, errlen, "zone '%s': a transition time is out of range", name);
            goto fail;
        }
        if (i && z->at[i] <= z->at[i - 1]) {
            bad(err, errlen, "zone '%s': transition times are not increasing", name);
            goto fail;
        }
    }
    for (size_t i = 0; i < z->n; i++) {
        z->type[i] = *p++;
        if (z->type[i] >= c.type) {
            bad(err, errlen, "zone '%s': a transition names a type that does not exist",
                name);
            goto fail;
        }
    }
    for (size_t i = 0; i < z->ntypes; i++, p += 6) {
        int32_t off = (int32_t)be32(p);
        if (off < OFFSET_MIN || off > OFFSET_MAX || p[4] > 1 || p[5] >= c.chars) {
            bad(err, errlen, "zone '%s': malformed local time type", name);
            goto fail;
        }
        z->types[i] = (struct ttype){off, p[4]};
    }
    p += c.chars + c.isstd + c.isut; /* abbreviations and flags are not needed */
    if (tsize == 8) {
        /* The footer: "\n<POSIX TZ string>\n". */
        const unsigned char *nl =
            p < end && *p == '\n' ? memchr(p + 1, '\n', (size_t)(end - p - 1)) : NULL;
        char footer[128];
        if (!nl || (size_t)(nl - p - 1) >= sizeof footer ||
            memchr(p + 1, '\0', (size_t)(nl - p - 1))) {
            bad(err, errlen, "zone '%s': missing or malformed TZ string footer", name);
            goto fail;
        }
        memcpy(footer, p + 1, (size_t)(nl - p - 1));
        footer[nl - p - 1] = '\0';
        int rc = parse_posix(footer, &z->rule);
        if (rc < 0) {
            bad(err, errlen, "zone '%s': cannot read its TZ string '%s'", name, footer);
            goto fail;
        }
        z->has_rule = rc == 1;
        /* RFC 8536 wants the rule to agree with the last transition; if it
         * did not, the offset would change just after it unannounced. */
        if (z->has_rule && z->n &&
            rule_offset(&z->rule, z->at[z->n - 1], NULL) !=
                z->types[z->type[z->n - 1]].off) {
            bad(err, errlen,
                "zone '%s': its TZ string '%s' disagrees with its last transition", name,
                footer);
            goto fail;
        }
    }
    return z;
nomem:
    if (errlen)
        err[0] = '\0';
fail:
    tq_tz_free(z);
    return NULL;
}

/* ------------------------------------------------------------------------
 * The cache. Zones are never freed: every tq_tz_get() caller may keep its
 * pointer for the life of the process. */

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static tq_tz *cache;

/* A name is 1 to 64 bytes of components of A-Z a-z 0-9 _ + - . separated by
 * single slashes; no component is "." or "..", so it stays under the tz
 * directory. */
static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= TQ_TZ_NAME_MAX)
        return 0;
    const char *s = name;
    for (;;) {
        size_t k = strspn(
            s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-.");
        if (k == 0 || (k == 1 && s[0] == '.') || (k == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        s += k;
        if (!*s)
            return 1;
        if (*s != '/')
            return 0;
        s++;
    }
}

static tq_tz *utc_zone(const char *name)
{
    tq_tz *z = calloc(1, sizeof *z);
    if (!z || !(z->types = calloc(1, sizeof *z->types))) {
        free(z);
        return NULL;
    }
    snprintf(z->name, sizeof z->name, "%s", name);
    z->ntypes = 1;
    return z;
}

static tq_tz *load_file(const char *name, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    struct stat st;
    if (!dir || !*dir)
        dir = TQ_TZ_DIR;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            bad(err, errlen, "unknown time zone '%s' (no file %s)", name, path);
        else
            bad(err, errlen, "time zone '%s': cannot open %s: %s", name, path,
                strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TQ_TZ_FILE_MAX) {
        close(fd);
        bad(err, errlen, "unknown time zone '%s' (%s is not a zone file)", name, path);
        return NULL;
    }
    size_t len = (size_t)st.st_size, got = 0;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        if (errlen)
            err[0] = '\0';
        return NULL;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    tq_tz *z = tq_tz_parse(name, buf, got, err, errlen);
    free(buf);
    return z;
}

int tq_tz_get(const char *name, const tq_tz **out, char *err, size_t errlen)
{
    if (!name_ok(name))
        return bad(err, errlen,
                   "'%s' is not a time zone name (like Europe/Berlin or UTC)", name);
    pthread_mutex_lock(&cache_lock);
    tq_tz *z = cache;
    while (z && strcmp(z->name, name) != 0)
        z = z->next;
    if (!z) {
        z = strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0
                ? utc_zone(name)
                : load_file(name, err, errlen);
        if (z) {
            z->next = cache;
            cache = z;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    if (!z)
        return errlen && err[0] ? TQ_EINVAL : TQ_ENOMEM;
    *out = z;
    return 0;
}

/* ------------------------------------------------------------------------
 * ISO-8601. */

char *tq_tz_format_utc(int64_t ms, char *buf, size_t len)
{
    int64_t s = floor_div(ms, 1000), y;
    int frac = (int)(ms % 1000), m, d; /* not ms - s * 1000: that overflows */
    if (frac < 0)
        frac += 1000;
    int64_t days = floor_div(s, 86400), sod = s - days * 86400;
    tq_tz_civil_from_days(days, &y, &m, &d);
    if (frac)
        snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), frac);
    else
        snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d,
                 (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
    return buf;
}

/* Reads exactly n digits. */
static int digits(const char **sp, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*sp)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *sp += n;
    *out = v;
    return 0;
}

int tq_tz_parse_iso(const char *s, const tq_tz *z, int64_t *ms, char *err, size_t errlen)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0, off = 0, has_off = 0;
    if (digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
        digits(&p, 2, &d) < 0)
        goto syntax;
    if (mo < 1 || mo > 12 || d < 1 || d > tq_tz_days_in_month(y, mo))
        return bad(err, errlen, "'%s': there is no such date", s);
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0)
            goto syntax;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) < 0)
                goto syntax;
            if (*p == '.' || *p == ',') {
                int scale = 100, nd = 0;
                p++;
                while (*p >= '0' && *p <= '9') {
                    frac_ms += (*p++ - '0') * scale;
                    scale /= 10;
                    nd++;
                }
                if (!nd)
                    goto syntax;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return bad(err, errlen, "'%s': there is no such time of day", s);
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
        has_off = 1;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (digits(&p, 2, &oh) < 0)
            goto syntax;
        if (*p == ':')
            p++;
        if (*p && digits(&p, 2, &om) < 0)
            goto syntax;
        if (oh > 25 || om > 59)
            return bad(err, errlen, "'%s': the UTC offset is out of range", s);
        off = sign * (oh * 3600 + om * 60);
        has_off = 1;
    }
    if (*p)
        goto syntax;
    int64_t local = tq_tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    if (has_off) {
        *ms = (local - off) * 1000 + frac_ms;
    } else {
        int64_t u[2];
        tq_tz_resolve(z, local, u);
        *ms = u[0] * 1000 + frac_ms;
    }
    return 0;
syntax:
    return bad(err, errlen,
               "'%s' is not an ISO-8601 time like 2026-03-28T12:00:00Z, "
               "2026-03-28T13:00:00+01:00 or 2026-03-28",
               s);
}
