/* beat_entry: one field of P:schedules as the beat keeps it, good or bad:
 * decoded once, when its definition appears or changes, into what its
 * ticks' messages need, and the time of its next tick.
 *
 * An entry is one allocation, small enough for a million of them: the
 * timing rule, what a message needs, a hash of the definition's text (to
 * notice changes without keeping the text) and the strings, one after the
 * other. A bad definition (it does not decode, or its messages would be
 * too big) makes a bad entry that holds the name only, so that it is
 * warned about once per version of its text. */
#ifndef TQ_BEAT_ENTRY_H
#define TQ_BEAT_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/log.h"
#include "common/sched.h"

#define BEAT_ENTRY_NO_TICK INT64_MIN
#define BEAT_ENTRY_SINCE_START INT64_MIN /* known since the first load: catches up */
#define BEAT_ENTRY_SHOWN_MAX 80          /* bytes of a name quoted in a log line */

typedef struct beat_entry {
    tq_sched_rule rule;
    int64_t last;        /* last tick known published, or BEAT_ENTRY_NO_TICK */
    int64_t next;        /* next tick to publish, valid while in the heap */
    int64_t since;       /* when it appeared (ms), or BEAT_ENTRY_SINCE_START */
    int64_t retry;       /* wall ms before which a held tick is not tried again */
    uint64_t hash;       /* of the definition's text */
    uint64_t namehash;   /* of the name: the sort key */
    double timeout;      /* seconds, 0: the worker's default */
    double expires;      /* seconds after the tick, 0: never */
    int32_t max_retries; /* -1: the worker's default */
    uint32_t hpos;       /* index in the heap (beat_heap), or BEAT_HEAP_NONE */
    uint32_t namelen;    /* bytes of the name (a bad field name may hold a NUL) */
    uint8_t ok;          /* 1: the definition decoded and its messages encode */
    uint8_t enabled;
    uint8_t catchup;     /* tq_sched_catchup */
    uint8_t catching_up; /* a catch-up has been logged */
    uint8_t held;        /* 1 while its state value is bad (logged), or 0 */
    /* name, then (when ok) task, queue, args JSON, kwargs JSON and the
     * cron expression ("" for an interval), each NUL-terminated */
    char str[];
} beat_entry;

/* A 64-bit hash of the len bytes at s: of a name (the sort key) or of a
 * definition's text (to notice a change). Pure. */
uint64_t beat_entry_hash(const char *s, size_t len);

/* Compares two names of alen and blen bytes like memcmp(), the shorter
 * first when one is a prefix of the other. */
int beat_entry_name_cmp(const char *a, size_t alen, const char *b, size_t blen);

/* Orders two beat_entry pointers (pa and pb point to them, as qsort()
 * passes them) by (namehash, name): the table's order. */
int beat_entry_cmp(const void *pa, const void *pb);

/* Copies the len bytes at s into buf (cap bytes) for a log line:
 * non-printable bytes become '?', and the copy is cut to the buffer and
 * NUL-terminated. Returns buf. */
const char *beat_entry_shown(const char *s, size_t len, char *buf, size_t cap);

/* Decodes the definition text (textlen bytes) of the field name (namelen
 * bytes, any bytes) of the hash where (for the warning) into a new entry
 * (free() it), a cron schedule without "tz" getting default_tz. A bad
 * definition is warned about and makes a bad entry (ok == 0). The entry
 * is in no heap, with nothing known about its ticks. Returns NULL only
 * when out of memory. */
beat_entry *beat_entry_new(const char *name, size_t namelen, const char *text,
                           size_t textlen, const char *default_tz, const char *where);

/* The queue of a good entry (borrowed from e). */
const char *beat_entry_queue(const beat_entry *e);

/* Builds the message of e's tick at tick_ms, enqueued at now_ms. Returns a
 * new string (its length in *len), or NULL when out of memory. */
char *beat_entry_message(const beat_entry *e, int64_t tick_ms, int64_t now_ms,
                         size_t *len);

/* Checks that the messages of s encode (args and kwargs within
 * TQ_MSG_MAX). Returns 0, or TQ_EDECODE / TQ_ENOMEM with a sentence in
 * err. */
int beat_entry_check(const tq_sched *s, char *err, size_t errlen);

/* Logs what a good entry is, as "schedule '<name>' <what>: ...", at
 * level. A bad entry has been warned about: nothing is logged. */
void beat_entry_log(const beat_entry *e, const char *what, tq_log_level level);

/* When e is due: its next tick, or later while a bad key holds that tick
 * back (beat/publish.c). */
int64_t beat_entry_due(const beat_entry *e);

/* The order of the next-due heap, on (due, name): nonzero if entry a comes
 * before entry b. A beat_heap_before_fn. */
int beat_entry_before(const void *a, const void *b);

#endif
