/* Schedule definitions and their fire instants.
 *
 * A schedule is a JSON object (docs/SCHEDULES.md) kept in P:schedules; a
 * file only seeds it. It fires either on an interval or on a cron
 * expression. An interval schedule ticks on an absolute grid: the multiples
 * of `every` since the Unix epoch, so every beat computes the same instants
 * and publishing late never shifts the next tick (no drift). A cron schedule
 * fires on the wall clock of its time zone (common/cron.h has the rules for
 * daylight-saving changes). The functions here are pure: "now" is passed
 * in. */
#ifndef TQ_SCHED_H
#define TQ_SCHED_H

#include <jansson.h>
#include <signal.h>
#include <stdint.h>

#include "common/cron.h"
#include "common/msg.h"
#include "common/tz.h"

#define TQ_SCHED_NAME_MAX 65    /* bytes of a schedule name, with the NUL */
#define TQ_SCHED_EVERY_MIN_MS 1 /* the finest interval */
#define TQ_SCHED_EVERY_MAX_MS (366LL * 86400 * 1000)
#define TQ_SCHED_FILE_MAX (64 * 1024 * 1024) /* bytes of a schedules file */
#define TQ_SCHED_NEVER INT64_MAX             /* "no such tick" */

typedef enum {
    TQ_SCHED_EVERY = 0, /* an interval on the epoch grid */
    TQ_SCHED_CRON = 1,  /* a cron expression in a time zone */
} tq_sched_kind;

/* What happens to ticks missed while no beat ran (see docs/SCHEDULES.md). */
typedef enum {
    TQ_SCHED_CATCHUP_LATEST = 0, /* publish the most recent missed tick once */
    TQ_SCHED_CATCHUP_NONE = 1,   /* publish none of them */
    TQ_SCHED_CATCHUP_ALL = 2,    /* publish each, up to a bound */
} tq_sched_catchup;

/* When a schedule fires: the timing half of a definition, a small plain
 * value that a beat keeps per schedule. */
typedef struct {
    tq_sched_kind kind;
    int64_t every_ms;  /* TQ_SCHED_EVERY: > 0 */
    tq_cron cron;      /* TQ_SCHED_CRON: the parsed expression */
    const tq_tz *zone; /* TQ_SCHED_CRON: borrowed from the zone cache */
} tq_sched_rule;

typedef struct {
    char name[TQ_SCHED_NAME_MAX];
    char task[TQ_MSG_NAME_MAX];
    char queue[TQ_MSG_QUEUE_MAX];
    tq_sched_rule rule;
    char cron[TQ_CRON_EXPR_MAX]; /* TQ_SCHED_CRON: the expression as given */
    char tz[TQ_TZ_NAME_MAX];     /* TQ_SCHED_CRON: the zone's name (given or default) */
    tq_sched_catchup catchup;
    json_t *args;    /* owned array */
    json_t *kwargs;  /* owned object */
    double timeout;  /* seconds, 0 for the worker's default */
    int max_retries; /* -1 for the worker's default */
    double expires;  /* seconds after the tick when it expires, 0 for never */
    int enabled;     /* 0: kept but not published */
} tq_sched;

/* Decodes one definition (a JSON object, borrowed) into *s. A cron
 * schedule without "tz" gets the zone default_tz (NULL for "UTC"), loaded
 * through the zone cache (file I/O the first time). Returns 0, or
 * TQ_EDECODE with a sentence that names the schedule and field in err (an
 * expression that never fires is an error too); *s then owns nothing. */
int tq_sched_decode(tq_sched *s, const json_t *def, const char *default_tz, char *err,
                    size_t errlen);

/* The same from JSON text (a P:schedules value). */
int tq_sched_decode_text(tq_sched *s, const char *text, size_t len,
                         const char *default_tz, char *err, size_t errlen);

/* Frees what *s owns. Safe twice. */
void tq_sched_deinit(tq_sched *s);

/* Encodes *s as its canonical JSON definition: every field, a cron
 * schedule's "tz" included, so that all beats agree whatever their --tz.
 * Returns a new string (free() it) or NULL when out of memory. */
char *tq_sched_encode(const tq_sched *s, size_t *len);

/* Reads a file {"schedules": [ ... ]} of at most TQ_SCHED_FILE_MAX bytes.
 * Returns 0 and a new array of *n schedules in *out (free each with
 * tq_sched_deinit, then free()), or a negative code with err naming the
 * file, the entry and the field (TQ_ETOOBIG for a file over the limit,
 * checked before parsing). Names must be unique. Linear in the file's
 * size. Blocks on file I/O. */
int tq_sched_load_file(const char *path, const char *default_tz, tq_sched **out,
                       size_t *n, char *err, size_t errlen);

/* The same, and gives up with TQ_ESTOPPED ("stopped while reading ...")
 * soon after *stop (borrowed; NULL: never) becomes non-zero: it is looked
 * at while the file is read and between slices of definitions. */
int tq_sched_load_file_until(const char *path, const char *default_tz,
                             const volatile sig_atomic_t *stop, tq_sched **out, size_t *n,
                             char *err, size_t errlen);

/* The first tick of r strictly after after_ms, or TQ_SCHED_NEVER. */
int64_t tq_sched_rule_next(const tq_sched_rule *r, int64_t after_ms);

/* The last tick of r at or before at_ms, or TQ_SCHED_NEVER if there is
 * none. For cron, a bisection: about 50 times the cost of _next. */
int64_t tq_sched_rule_prev(const tq_sched_rule *r, int64_t at_ms);

/* The same for a whole definition. */
int64_t tq_sched_next(const tq_sched *s, int64_t after_ms);
int64_t tq_sched_prev(const tq_sched *s, int64_t at_ms);

/* Parses "latest", "none" or "all". Returns 0 or TQ_EINVAL. */
int tq_sched_catchup_parse(const char *text, tq_sched_catchup *out);

/* "latest", "none" or "all" (static storage). */
const char *tq_sched_catchup_name(tq_sched_catchup c);

/* Builds the message of the tick at tick_ms, enqueued at now_ms, into *m
 * (initialised here; tq_msg_deinit it). Its id is "<name>@<tick_ms>".
 * Returns 0 or TQ_ENOMEM. */
int tq_sched_message(const tq_sched *s, int64_t tick_ms, int64_t now_ms, tq_msg *m);

#endif
