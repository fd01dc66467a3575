/* Schedule definitions and their time grid.
 *
 * A schedule is a JSON object (docs/SCHEDULES.md) kept in P:schedules; a
 * file only seeds it. An interval schedule ticks on an absolute grid: the
 * multiples of `every` since the Unix epoch, so every beat computes the same
 * instants and publishing late never shifts the next tick (no drift). The
 * functions here are pure: "now" is passed in. */
#ifndef TQ_SCHED_H
#define TQ_SCHED_H

#include <jansson.h>
#include <stdint.h>

#include "common/msg.h"

#define TQ_SCHED_NAME_MAX 65       /* bytes of a schedule name, with the NUL */
#define TQ_SCHED_EVERY_MIN_MS 1    /* the finest interval */
#define TQ_SCHED_EVERY_MAX_MS (366LL * 86400 * 1000)
#define TQ_SCHED_FILE_MAX (64 * 1024 * 1024) /* bytes of a schedules file */

typedef struct {
    char name[TQ_SCHED_NAME_MAX];
    char task[TQ_MSG_NAME_MAX];
    char queue[TQ_MSG_QUEUE_MAX];
    int64_t every_ms;  /* > 0 */
    json_t *args;      /* owned array */
    json_t *kwargs;    /* owned object */
    double timeout;    /* seconds, 0 for the worker's default */
    int max_retries;   /* -1 for the worker's default */
    double expires;    /* seconds after the tick when it expires, 0 for never */
    int enabled;       /* 0: kept but not published */
} tq_sched;

/* Decodes one definition (a JSON object, borrowed) into *s. Returns 0, or
 * TQ_EDECODE with a sentence that names the schedule and field in err; *s
 * then owns nothing. */
int tq_sched_decode(tq_sched *s, const json_t *def, char *err, size_t errlen);

/* The same from JSON text (a P:schedules value). */
int tq_sched_decode_text(tq_sched *s, const char *text, size_t len, char *err, size_t errlen);

/* Frees what *s owns. Safe twice. */
void tq_sched_deinit(tq_sched *s);

/* Encodes *s as its canonical JSON definition. Returns a new string. */
char *tq_sched_encode(const tq_sched *s, size_t *len);

/* Reads a file {"schedules": [ ... ]}. Returns 0 and a new array of *n
 * schedules in *out (free each with tq_sched_deinit, then free()), or a
 * negative code with err naming the file, the entry and the field. Names
 * must be unique. Blocks on file I/O. */
int tq_sched_load_file(const char *path, tq_sched **out, size_t *n, char *err, size_t errlen);

/* The first tick strictly after after_ms. */
int64_t tq_sched_next(const tq_sched *s, int64_t after_ms);

/* The last tick at or before at_ms. */
int64_t tq_sched_prev(const tq_sched *s, int64_t at_ms);

/* Builds the message of the tick at tick_ms, enqueued at now_ms, into *m
 * (initialised here; tq_msg_deinit it). Its id is "<name>@<tick_ms>".
 * Returns 0 or TQ_ENOMEM. */
int tq_sched_message(const tq_sched *s, int64_t tick_ms, int64_t now_ms, tq_msg *m);

#endif
