/* beat_seed: the schedules of the --schedules file, which only seeds
 * P:schedules (the source of truth): read and checked when the beat is
 * built, without Redis, then upserted with one HSET before the beat first
 * asks for the lease, and tried again every renewal period until that
 * succeeds. */
#ifndef TQ_BEAT_SEED_H
#define TQ_BEAT_SEED_H

#include <stddef.h>

#include "common/config.h"
#include "common/conn.h"
#include "common/keys.h"
#include "common/sched.h"

/* The file's schedules until they are in Redis, owned by its caller
 * (beat_seed_load(), beat_seed_deinit()). The fields are read-only outside
 * seed.c. */
typedef struct {
    char file[TQ_CONFIG_STR_MAX]; /* the seed file, "" for none */
    char key[TQ_KEYS_MAX];        /* P:schedules */
    tq_sched *scheds;             /* owned: the file's schedules until upserted */
    size_t n;
    int done;    /* upserted, or nothing to upsert */
    int failing; /* the upsert fails with an error reply (logged once) */
} beat_seed;

/* Reads and checks file (copied; "" for none) for the keys of prefix, a
 * cron schedule without "tz" getting default_tz: every schedule decodes
 * and its messages encode (beat_entry_check()). Returns 0; TQ_ESTOPPED
 * when a SIGTERM or SIGINT (tq_proc_stop) came during the read (logged;
 * nothing will be upserted); or a negative TQ_E... code with a sentence in
 * err that names the file (err is "" when out of memory). *s is usable
 * (beat_seed_deinit()) whatever the result. Blocks on file I/O, in time
 * linear in the file's size. */
int beat_seed_load(beat_seed *s, const char *file, const char *prefix,
                   const char *default_tz, char *err, size_t errlen);

/* Upserts the file's schedules into P:schedules with one HSET, unless
 * that is done. Returns 0, TQ_EREDIS, TQ_EREPLY (logged once) or
 * TQ_ENOMEM. Frees the schedules on success. Blocks on one round trip. */
int beat_seed_upsert(beat_seed *s, tq_conn *conn);

/* Frees the schedules. Safe twice. */
void beat_seed_deinit(beat_seed *s);

#endif
