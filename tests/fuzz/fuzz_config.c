/* Fuzzes the option parser (common/config): argv and an environment made
 * from the input bytes through tq_config_parse() for each program's
 * options. It must answer one of its codes, with an error text for
 * TQ_ECONFIG, be a pure function (the same input gives the same struct),
 * and a config it accepts must hold values within the table's bounds
 * (a Redis URL that tq_url_parse() accepts, names of the allowed bytes,
 * numbers in range).
 *
 * Input: byte 0 picks the program; the rest is split at NUL bytes into
 * up to 64 strings. A string starting with byte 0x01 is an environment
 * entry NAME=VALUE (without the 0x01); the others are argv[1...]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"
#include "common/url.h"

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_config: %s failed: ", #cond);                          \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define MAXS 64

static char *env[MAXS];
static int nenv;

static const char *lookup(const char *name)
{
    size_t n = strlen(name);
    const char *found = NULL;
    for (int i = 0; i < nenv; i++) /* the last entry of a name wins, as in putenv */
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            found = env[i] + n + 1;
    return found;
}

static int bounded(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static void check_config(const tq_config *c, tq_prog prog)
{
    char err[256];
    tq_url u;
    CHECK(bounded(c->redis_url, sizeof c->redis_url) &&
              tq_url_parse(c->redis_url, &u, err, sizeof err) == 0,
          "redis_url '%s': %s", c->redis_url, err);
    CHECK(tq_config_name_ok(c->prefix), "prefix '%s'", c->prefix);
    CHECK(c->log_level >= TQ_LOG_DEBUG && c->log_level <= TQ_LOG_ERROR, "log_level %d",
          (int)c->log_level);
    CHECK(c->log_format == TQ_LOG_TEXT || c->log_format == TQ_LOG_JSON, "log_format");
    CHECK(c->check == 0 || c->check == 1, "check %d", c->check);
    CHECK(!c->beat_id[0] || tq_config_name_ok(c->beat_id), "beat_id '%s'", c->beat_id);
    CHECK(!c->worker_id[0] || tq_config_name_ok(c->worker_id), "worker_id '%s'",
          c->worker_id);
    CHECK(bounded(c->schedules, sizeof c->schedules) && bounded(c->tz, sizeof c->tz) &&
              bounded(c->next_runs, sizeof c->next_runs) &&
              bounded(c->from, sizeof c->from) && bounded(c->tasks, sizeof c->tasks) &&
              bounded(c->listen, sizeof c->listen),
          "a string without its NUL");
    if (prog == TQ_PROG_BEAT) {
        CHECK(c->lease_ms >= 1000 && c->lease_ms <= 300000, "lease_ms %lld",
              (long long)c->lease_ms);
        CHECK(c->catchup_max >= 1 && c->catchup_max <= 100000, "catchup_max %d",
              c->catchup_max);
        CHECK(c->count >= 1 && c->count <= 100000, "count %d", c->count);
    }
    if (prog == TQ_PROG_WORKER) {
        CHECK(c->nqueues >= 1 && c->nqueues <= TQ_CONFIG_QUEUES_MAX, "nqueues %d",
              c->nqueues);
        for (int i = 0; i < c->nqueues; i++) {
            CHECK(tq_config_name_ok(c->queues[i]), "queue '%s'", c->queues[i]);
            for (int k = 0; k < i; k++)
                CHECK(strcmp(c->queues[i], c->queues[k]) != 0, "queue '%s' twice",
                      c->queues[i]);
        }
        CHECK(c->concurrency >= 0 && c->concurrency <= 256, "concurrency %d",
              c->concurrency);
        CHECK(c->liveness_ms >= 2000 && c->liveness_ms <= 3600000, "liveness_ms");
        CHECK(c->grace_ms >= 0 && c->grace_ms <= 3600000, "grace_ms");
        CHECK(c->timeout_ms >= 1 && c->timeout_ms <= 86400000, "timeout_ms %lld",
              (long long)c->timeout_ms);
        CHECK(c->done_ttl_ms >= 1000 && c->result_ttl_ms >= 1000, "ttl");
        CHECK(c->max_retries >= 0 && c->max_retries <= 1000000, "max_retries");
        CHECK(c->retry_base_ms >= 1 && c->retry_cap_ms >= 1, "retry");
        CHECK(c->max_deliveries >= 1 && c->max_deliveries <= 1000, "max_deliveries");
    }
    if (prog == TQ_PROG_WEB) {
        CHECK(c->web_threads >= 1 && c->web_threads <= 256, "web_threads %d",
              c->web_threads);
        CHECK(strchr(c->listen, ':'), "listen '%s'", c->listen);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tq_prog progs[3] = {TQ_PROG_BEAT, TQ_PROG_WORKER, TQ_PROG_WEB};
    static const char *const names[3] = {"tickq-beat", "tickq-worker", "tickq-web"};
    if (size < 1 || size > 8192)
        return 0;
    int which = data[0] % 3;
    char *copy = malloc(size);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    char *argv[MAXS + 2];
    int argc = 0;
    argv[argc++] = (char *)names[which];
    nenv = 0;
    for (char *p = copy; p < copy + size - 1 && argc <= MAXS && nenv < MAXS;
         p += strlen(p) + 1) {
        if (*p == '\x01')
            env[nenv++] = p + 1;
        else
            argv[argc++] = p;
    }
    argv[argc] = NULL;

    tq_config *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    char err[512], err2[512];
    memset(err, 'x', sizeof err);
    int rc = tq_config_parse(a, progs[which], argc, argv, lookup, err, sizeof err);
    CHECK(rc == 0 || rc == TQ_EHELP || rc == TQ_EVERSION || rc == TQ_EMARKDOWN ||
              rc == TQ_ECONFIG,
          "rc %d", rc);
    if (rc == TQ_ECONFIG)
        CHECK(memchr(err, '\0', sizeof err) && err[0], "no error text");
    int rc2 = tq_config_parse(b, progs[which], argc, argv, lookup, err2, sizeof err2);
    CHECK(rc2 == rc && (rc != TQ_ECONFIG || strcmp(err, err2) == 0),
          "not a pure function: %d then %d", rc, rc2);
    if (rc == 0) {
        CHECK(memcmp(a, b, sizeof *a) == 0, "not a pure function: two configs differ");
        check_config(a, progs[which]);
    }
    free(a);
    free(b);
    free(copy);
    return 0;
}
