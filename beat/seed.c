/* The --schedules file and its upsert into P:schedules; see seed.h. */
#include "beat/seed.h"
#include "beat/entry.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void beat_seed_deinit(beat_seed *s)
{
    for (size_t i = 0; i < s->n; i++)
        tq_sched_deinit(&s->scheds[i]);
    free(s->scheds);
    s->scheds = NULL;
    s->n = 0;
}

/* The file's schedules are in Redis (or will never be): frees them. */
static void seed_done(beat_seed *s)
{
    beat_seed_deinit(s);
    s->done = 1;
}

int beat_seed_load(beat_seed *s, const char *file, const char *prefix,
                   const char *default_tz, char *err, size_t errlen)
{
    char sub[512];
    memset(s, 0, sizeof *s);
    snprintf(s->file, sizeof s->file, "%s", file);
    if (tq_keys_fmt(prefix, TQ_KEY_SCHEDULES, NULL, NULL, s->key, TQ_KEYS_MAX) < 0) {
        snprintf(err, errlen, "prefix '%s' is too long", prefix);
        return TQ_EINVAL;
    }
    if (s->file[0]) {
        /* A large file takes seconds: a SIGINT or SIGTERM meanwhile stops
         * the load, and beat_run() then returns at once. */
        int rc = tq_sched_load_file_until(s->file, default_tz, &tq_proc_stop, &s->scheds,
                                          &s->n, err, errlen);
        if (rc == TQ_ESTOPPED)
            goto stopped;
        if (rc == TQ_ENOMEM)
            err[0] = '\0';
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < s->n; i++) {
            if (i % 1024 == 0 && tq_proc_stop)
                goto stopped;
            int crc = beat_entry_check(&s->scheds[i], sub, sizeof sub);
            if (crc < 0) {
                if (crc == TQ_ENOMEM)
                    err[0] = '\0';
                else
                    snprintf(err, errlen, "%s: %s", s->file, sub);
                return crc;
            }
        }
    }
    s->done = s->n == 0;
    return 0;
stopped:
    tq_info("stopped while reading %s: nothing upserted", s->file);
    seed_done(s);
    return TQ_ESTOPPED;
}

int beat_seed_upsert(beat_seed *s, tq_conn *conn)
{
    if (s->done)
        return 0;
    size_t argc = 2 + 2 * s->n;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    char **texts = calloc(s->n, sizeof *texts);
    int rc = TQ_ENOMEM;
    if (!argv || !lens || !texts)
        goto out;
    argv[0] = "HSET";
    argv[1] = s->key;
    lens[0] = 4;
    lens[1] = strlen(s->key);
    for (size_t i = 0; i < s->n; i++) {
        texts[i] = tq_sched_encode(&s->scheds[i], &lens[3 + 2 * i]);
        if (!texts[i])
            goto out;
        argv[2 + 2 * i] = s->scheds[i].name;
        lens[2 + 2 * i] = strlen(s->scheds[i].name);
        argv[3 + 2 * i] = texts[i];
    }
    redisReply *r = tq_conn_cmdargv(conn, (int)argc, argv, lens);
    if (!r) {
        rc = TQ_EREDIS;
    } else if (r->type == REDIS_REPLY_ERROR) {
        if (!s->failing)
            tq_error("could not upsert the schedules into %s: %s; trying again every "
                     "second, and taking no lease until then",
                     s->key, r->str);
        s->failing = 1;
        rc = TQ_EREPLY;
    } else {
        rc = 0;
    }
    freeReplyObject(r);
out:
    if (rc == TQ_ENOMEM)
        tq_error("seeding the schedules: out of memory");
    for (size_t i = 0; texts && i < s->n; i++)
        free(texts[i]);
    free(texts);
    free(argv);
    free(lens);
    if (rc == 0) {
        tq_info("upserted %zu schedules from %s into %s", s->n, s->file, s->key);
        seed_done(s);
    }
    return rc;
}
