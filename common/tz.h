/* Time zones from the system's tz database, and civil (calendar) time.
 *
 * A zone is read from a TZif file (RFC 8536) in $TZDIR or TQ_TZ_DIR: the
 * 64-bit section of version 2+ files (the 32-bit one of version 1 files),
 * and the POSIX TZ footer, whose rule gives the offsets after the last
 * transition of the table, so years past 2037 work. The C library's
 * setenv("TZ")/localtime are not used: they are process-global and not
 * thread-safe. A loaded zone is immutable and cached for the life of the
 * process, so any thread may use it without locking.
 *
 * Times here are seconds (UTC instants since the Unix epoch, or "local
 * seconds": a wall-clock time in a zone counted as if it were UTC), except
 * where a name says _ms. An offset is local minus UTC, east positive. */
#ifndef TQ_TZ_H
#define TQ_TZ_H

#include <stddef.h>
#include <stdint.h>

#define TQ_TZ_NAME_MAX 65               /* bytes of a zone name, with the NUL */
#define TQ_TZ_DIR "/usr/share/zoneinfo" /* where zones are read unless $TZDIR */
#define TQ_TZ_FILE_MAX (1024 * 1024)    /* bytes of a TZif file */
#define TQ_TZ_NONE INT64_MAX            /* "no such instant" */
#define TQ_TZ_ISO_MAX 32                /* bytes of a formatted instant, with the NUL */

typedef struct tq_tz tq_tz;

/* Returns the zone called name ("Europe/Berlin", "UTC") in *out: loaded
 * from the tz database the first time, from the cache afterwards. The zone
 * is borrowed and lives as long as the process. "UTC" and "Etc/UTC" work
 * without a tz database. Returns 0, or TQ_EINVAL with a sentence in err
 * (a malformed name, an unknown zone, a file that is not TZif). Thread-safe;
 * blocks on file I/O on a cache miss. */
int tq_tz_get(const char *name, const tq_tz **out, char *err, size_t errlen);

/* Parses len bytes of TZif data into a new zone called name (not cached:
 * tq_tz_free() it). Returns NULL with a sentence in err if the data is bad
 * (err is "" when out of memory). For tests and other sources of data. */
tq_tz *tq_tz_parse(const char *name, const void *data, size_t len, char *err,
                   size_t errlen);

/* Frees a zone from tq_tz_parse(); NULL does nothing. Never call it on a
 * zone from tq_tz_get(). */
void tq_tz_free(tq_tz *z);

/* The zone's name (borrowed from z). */
const char *tq_tz_name(const tq_tz *z);

/* The offset in seconds at the instant utc_s; *is_dst (may be NULL) says
 * whether it is daylight-saving time. */
int32_t tq_tz_offset(const tq_tz *z, int64_t utc_s, int *is_dst);

/* The first instant strictly after utc_s at which the offset changes, with
 * the offsets before and after it (either pointer may be NULL); TQ_TZ_NONE
 * if the offset never changes again. Changes of name or DST flag alone are
 * not transitions here. */
int64_t tq_tz_next_transition(const tq_tz *z, int64_t utc_s, int32_t *before,
                              int32_t *after);

/* The UTC instants at which the wall clock shows local_s. Returns how many,
 * in increasing order in out: 1 usually; 2 when the clock is set back and
 * shows that time twice; 0 when it is set forward over it (a gap), and then
 * out[0] is the instant the gap ends. */
int tq_tz_resolve(const tq_tz *z, int64_t local_s, int64_t out[2]);

/* ---- civil time (proleptic Gregorian calendar) ---- */

/* Days since 1970-01-01 of year y, month m (1-12), day d (1-31). */
int64_t tq_tz_days_from_civil(int64_t y, int m, int d);

/* The date of a day number from tq_tz_days_from_civil(). */
void tq_tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* The weekday of a day number: 0 Sunday to 6 Saturday. */
int tq_tz_weekday(int64_t days);

/* 28 to 31. */
int tq_tz_days_in_month(int64_t y, int m);

/* Writes the instant ms as ISO-8601 UTC, "2026-03-29T01:00:00Z", with
 * ".123" before the Z when it is not a whole second, into buf (at least
 * TQ_TZ_ISO_MAX bytes is always enough). Returns buf. */
char *tq_tz_format_utc(int64_t ms, char *buf, size_t len);

/* Parses an ISO-8601 instant: YYYY-MM-DD, optionally followed by T (or a
 * space) and hh:mm[:ss[.fff]], then Z, +hh:mm, +hhmm or +hh (or -), or
 * nothing: then it is a wall-clock time in zone z (the earlier instant when
 * the time occurs twice, the end of the gap when it does not exist). A date
 * alone is its midnight. Returns 0 and the instant in *ms, or TQ_EINVAL
 * with a sentence in err. */
int tq_tz_parse_iso(const char *s, const tq_tz *z, int64_t *ms, char *err, size_t errlen);

#endif
