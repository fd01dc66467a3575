/* Configuration of the three programs, from one table of options.
 *
 * Every option is a long flag and a TICKQ_* environment variable; a flag beats
 * the environment, which beats the default. The same table drives parsing,
 * --help and docs/CONFIG.md (tickq-<prog> --help-markdown prints the rows).
 * Parsing is a pure function: argv and an environment lookup in, a struct and
 * an error text out. It never prints and never exits. */
#ifndef TQ_CONFIG_H
#define TQ_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "common/log.h"
#include "common/url.h"

#define TQ_CONFIG_STR_MAX 512   /* bytes with the NUL, for URLs and paths */
#define TQ_CONFIG_NAME_MAX 65   /* bytes with the NUL, for prefix, ids, queues */
#define TQ_CONFIG_QUEUES_MAX 16 /* queues one worker consumes */

/* Which program an option belongs to (a bit mask). */
typedef enum {
    TQ_PROG_BEAT = 1,
    TQ_PROG_WORKER = 2,
    TQ_PROG_WEB = 4,
    TQ_PROG_ALL = 7,
} tq_prog;

typedef struct {
    /* every program */
    char redis_url[TQ_CONFIG_STR_MAX];
    char redis_tls_ca[TQ_CONFIG_STR_MAX];   /* rediss://: CA file, "" for the system's */
    char redis_tls_cert[TQ_CONFIG_STR_MAX]; /* client certificate, "" for none */
    char redis_tls_key[TQ_CONFIG_STR_MAX];  /* its private key */
    char prefix[TQ_CONFIG_NAME_MAX];
    tq_log_level log_level;
    tq_log_format log_format;
    int check; /* --check: exit 0 if Redis answers, 1 otherwise */
    /* beat and worker */
    int wait_replicas;       /* WAIT for this many replicas after each batch; 0: none */
    int64_t wait_timeout_ms; /* ... at most this long */
    /* beat */
    char schedules[TQ_CONFIG_STR_MAX]; /* seed file, "" for none */
    char beat_id[TQ_CONFIG_NAME_MAX];  /* "" means host-pid-random */
    int64_t lease_ms;
    char tz[TQ_CONFIG_STR_MAX];        /* default zone of cron schedules */
    int catchup_max;                   /* ticks "catchup": "all" publishes at most */
    char next_runs[TQ_CONFIG_STR_MAX]; /* dry run: a cron expression, "" for none */
    char from[TQ_CONFIG_STR_MAX];      /* dry run: ISO-8601 start, "" for now */
    int count;                         /* dry run: how many fire times */
    /* worker */
    char worker_id[TQ_CONFIG_NAME_MAX]; /* "" means host-pid-random */
    int concurrency;                    /* 0 means the number of CPUs */
    char queues[TQ_CONFIG_QUEUES_MAX][TQ_CONFIG_NAME_MAX]; /* priority order */
    int nqueues;
    int64_t liveness_ms;
    int64_t grace_ms;
    int64_t timeout_ms;            /* a task's time limit when its message has none */
    int64_t done_ttl_ms;           /* dedupe window of the done marker */
    int64_t result_ttl_ms;         /* lifetime of P:result:<id> */
    int max_retries;               /* retries of a failed task whose message has none */
    int64_t retry_base_ms;         /* backoff: attempt n waits up to base * 2^(n-1) */
    int64_t retry_cap_ms;          /* ... and never more than this */
    int max_deliveries;            /* a message delivered more often is poison */
    char tasks[TQ_CONFIG_STR_MAX]; /* a shared library of task functions, "" for none */
    /* web */
    char listen[TQ_CONFIG_NAME_MAX];
    int web_threads;
    char api_token[TQ_CONFIG_STR_MAX];      /* "" : mutations are refused (403) */
    char api_token_file[TQ_CONFIG_STR_MAX]; /* "" for none */
    int top;                                /* --top: the terminal view, no server */
} tq_config;

/* Looks up an environment variable; returns a borrowed string or NULL. */
typedef const char *(*tq_config_getenv)(const char *name);

/* Fills *cfg from defaults, then env (through getenv_fn, which may be NULL
 * for none), then argv (argv[0] is skipped), for the options of prog.
 * Returns 0; TQ_EHELP for -h/--help or TQ_EVERSION for -V/--version (the
 * caller prints); TQ_EMARKDOWN for --help-markdown; or TQ_ECONFIG with a
 * sentence naming the option in err. */
int tq_config_parse(tq_config *cfg, tq_prog prog, int argc, char *const *argv,
                    tq_config_getenv getenv_fn, char *err, size_t errlen);

/* Parses cfg's Redis URL into *u with the TLS files of --redis-tls-*.
 * Returns 0, or TQ_EINVAL with err set (the password never in it). */
int tq_config_url(const tq_config *cfg, tq_url *u, char *err, size_t errlen);

/* Prints the options of prog: the --help text, or markdown table rows. */
void tq_config_usage(tq_prog prog, FILE *out, int markdown);

/* Checks a queue, prefix or id name: 1 to 64 of [A-Za-z0-9_.:-]. */
int tq_config_name_ok(const char *s);

#endif
