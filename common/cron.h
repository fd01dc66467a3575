/* Cron expressions: parsing into bitsets, and the next fire instant in a
 * time zone, with daylight-saving changes handled by rule.
 *
 * An expression has the 5 standard fields, minute (0-59) hour (0-23)
 * day-of-month (1-31) month (1-12, JAN-DEC) day-of-week (0-7, SUN-SAT; 0
 * and 7 are Sunday), each a comma list of *, * /n, v, a-b, a-b/n or a/n (a
 * through the field's maximum), or one of the macros @yearly (@annually),
 * @monthly, @weekly, @daily (@midnight) and @hourly. Days follow Vixie
 * cron: if neither day field starts with '*', a day matches when either
 * field does; otherwise it must match both.
 *
 * Matching is on the wall clock of the zone. The fire instants are:
 * - each instant whose wall-clock minute matches, once;
 * - when the clock is set forward over matching minutes (a gap), the
 *   instant the gap ends, once, however many matches it swallowed and even
 *   if the minute it lands on matches too;
 * - when the clock is set back and shows matching minutes twice, only the
 *   first time, unless the hour field is exactly '*' or starts with '* /':
 *   then both times, so that the schedule keeps its real-time cadence.
 * The functions are pure and need no locks. */
#ifndef TQ_CRON_H
#define TQ_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "common/tz.h"

#define TQ_CRON_EXPR_MAX 256    /* bytes of an expression, with the NUL */
#define TQ_CRON_NEVER INT64_MAX /* "no fire instant" */
/* How far tq_cron_next() looks: 400 years, the period of the Gregorian
 * calendar with its weekdays, so an expression that does not fire within
 * it never fires at all. */
#define TQ_CRON_HORIZON_S (146097LL * 86400)

enum {
    TQ_CRON_DOM_STAR = 1,  /* the day-of-month field starts with '*' */
    TQ_CRON_DOW_STAR = 2,  /* the day-of-week field starts with '*' */
    TQ_CRON_HOUR_STAR = 4, /* the hour field is '*' or starts with '* /' */
};

/* A parsed expression: one bit per allowed value. A plain value. */
typedef struct {
    uint64_t minutes; /* bits 0-59 */
    uint32_t hours;   /* bits 0-23 */
    uint32_t days;    /* bits 1-31 */
    uint16_t months;  /* bits 1-12 */
    uint8_t weekdays; /* bits 0-6, Sunday 0 */
    uint8_t flags;    /* TQ_CRON_* */
} tq_cron;

/* Parses expr into *c. Returns 0, or TQ_EINVAL with a sentence in err that
 * names the field and says what is wrong (the number of fields, a value out
 * of range, a step of 0, a reversed range, an unknown name, an empty item,
 * an unknown macro). */
int tq_cron_parse(tq_cron *c, const char *expr, char *err, size_t errlen);

/* 1 if some day of the 400-year calendar cycle matches c (so it fires),
 * 0 for expressions such as "0 0 30 2 *". */
int tq_cron_ever(const tq_cron *c);

/* The first fire instant strictly after after_ms, in ms, per the rules
 * above, for the wall clock of zone z (borrowed); TQ_CRON_NEVER if there is
 * none within TQ_CRON_HORIZON_S. Fast: it skips by field and by stretches
 * of constant UTC offset, never minute by minute. */
int64_t tq_cron_next(const tq_cron *c, const tq_tz *z, int64_t after_ms);

/* The last fire instant at or before at_ms; TQ_CRON_NEVER if there is none
 * within TQ_CRON_HORIZON_S before it. A bisection over tq_cron_next(), so
 * about 50 times slower. */
int64_t tq_cron_prev(const tq_cron *c, const tq_tz *z, int64_t at_ms);

/* 1 if the wall-clock time local_s (seconds, any second of the minute)
 * matches c's fields and day rule. */
int tq_cron_matches(const tq_cron *c, int64_t local_s);

#endif
