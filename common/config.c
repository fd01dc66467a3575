/* The option table and its parser. */
#include "common/config.h"
#include "common/conn.h"
#include "common/err.h"
#include "common/url.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Values are strict, and the same rules hold for a flag and a variable:
 * - an empty value is an error, never "the default" (an unset shell variable
 *   in `--next-runs "$X"` must not start the daemon): leave an option out to
 *   get its default;
 * - no value begins or ends with white space, and none holds a control byte;
 * - whole numbers are decimal digits only (no sign, hex, exponent or
 *   fraction), seconds are digits with an optional decimal fraction;
 * - a flag that takes a value takes the next argument whatever it looks like
 *   (`--next-runs --help` is a dry run of "--help"), and the last of a
 *   repeated flag wins;
 * - an option that only makes sense with another (--from and --count without
 *   --next-runs) is an error, not silently ignored. */

typedef enum {
    OPT_STR,
    OPT_NAME,
    OPT_URL,
    OPT_INT,
    OPT_SECONDS,
    OPT_LEVEL,
    OPT_FORMAT,
    OPT_QUEUES,
    OPT_LISTEN,
    OPT_BOOL
} opt_type;

/* One row per option. For OPT_INT the bounds are integers; for OPT_SECONDS
 * they are seconds and the field holds milliseconds. */
typedef struct {
    const char *flag; /* long flag without the dashes */
    char shortc;      /* short flag, 0 for none */
    const char *env;  /* environment variable */
    const char *def;  /* default, as it would be written on the command line */
    opt_type type;
    size_t offset;  /* of the field in tq_config */
    double lo, hi;  /* bounds for numbers */
    unsigned progs; /* tq_prog mask */
    const char *help;
} opt;

#define F(field) offsetof(tq_config, field)

static const opt options[] = {
    {"redis-url", 0, "TICKQ_REDIS_URL", "redis://127.0.0.1:6379/0", OPT_URL, F(redis_url),
     0, 0, TQ_PROG_ALL,
     "Redis to use: redis://[:password@]host[:port][/db] (rediss:// for TLS), "
     "unix:///path[?db=N], "
     "redis-sentinel://[:password@]host[:port][,host[:port]...][/db]?master=NAME or "
     "redis-cluster://[:password@]host[:port][,host[:port]...] (rediss-cluster:// for "
     "TLS)"},
    {"redis-tls-ca", 0, "TICKQ_REDIS_TLS_CA", "", OPT_STR, F(redis_tls_ca), 0, 0,
     TQ_PROG_ALL,
     "rediss://: the CA certificate file (PEM) that signed the server's (default: the "
     "system's CAs)"},
    {"redis-tls-cert", 0, "TICKQ_REDIS_TLS_CERT", "", OPT_STR, F(redis_tls_cert), 0, 0,
     TQ_PROG_ALL,
     "rediss://: a client certificate file (PEM), for a Redis that asks for one"},
    {"redis-tls-key", 0, "TICKQ_REDIS_TLS_KEY", "", OPT_STR, F(redis_tls_key), 0, 0,
     TQ_PROG_ALL, "rediss://: the client certificate's private key file (PEM)"},
    {"prefix", 0, "TICKQ_PREFIX", "tickq", OPT_NAME, F(prefix), 0, 0, TQ_PROG_ALL,
     "prefix of every Redis key"},
    {"log-level", 0, "TICKQ_LOG_LEVEL", "info", OPT_LEVEL, F(log_level), 0, 0,
     TQ_PROG_ALL, "debug, info, warn or error"},
    {"log-format", 0, "TICKQ_LOG_FORMAT", "text", OPT_FORMAT, F(log_format), 0, 0,
     TQ_PROG_ALL, "text or json"},
    {"check", 0, "TICKQ_CHECK", "false", OPT_BOOL, F(check), 0, 0, TQ_PROG_ALL,
     "health check: exit 0 if Redis answers PING, else 1 and why on stderr"},
    {"wait-replicas", 0, "TICKQ_WAIT_REPLICAS", "0", OPT_INT, F(wait_replicas), 0, 100,
     TQ_PROG_BEAT | TQ_PROG_WORKER,
     "durability: after each batch of publications or completions, wait until this many "
     "replicas have it (WAIT); 0 does not wait"},
    {"wait-timeout", 0, "TICKQ_WAIT_TIMEOUT", "1", OPT_SECONDS, F(wait_timeout_ms), 0.001,
     60, TQ_PROG_BEAT | TQ_PROG_WORKER,
     "the longest wait for --wait-replicas, in seconds (then it goes on, and warns)"},
    {"schedules", 0, "TICKQ_SCHEDULES", "", OPT_STR, F(schedules), 0, 0, TQ_PROG_BEAT,
     "JSON file of schedules upserted into Redis at start"},
    {"beat-id", 0, "TICKQ_BEAT_ID", "", OPT_STR, F(beat_id), 0, 0, TQ_PROG_BEAT,
     "this beat's instance id (default: host-pid-random)"},
    {"lease", 0, "TICKQ_LEASE", "5", OPT_SECONDS, F(lease_ms), 1, 300, TQ_PROG_BEAT,
     "seconds of the leader lease"},
    {"tz", 0, "TICKQ_TZ", "UTC", OPT_STR, F(tz), 0, 0, TQ_PROG_BEAT,
     "IANA time zone of cron schedules that name none"},
    {"catchup-max", 0, "TICKQ_CATCHUP_MAX", "100", OPT_INT, F(catchup_max), 1, 100000,
     TQ_PROG_BEAT, "missed ticks a schedule with \"catchup\": \"all\" publishes at most"},
    {"next-runs", 0, "TICKQ_NEXT_RUNS", "", OPT_STR, F(next_runs), 0, 0, TQ_PROG_BEAT,
     "dry run: print the next fire times of this cron expression and exit"},
    {"from", 0, "TICKQ_FROM", "", OPT_STR, F(from), 0, 0, TQ_PROG_BEAT,
     "dry run: start after this ISO-8601 instant (default: now)"},
    {"count", 0, "TICKQ_COUNT", "10", OPT_INT, F(count), 1, 100000, TQ_PROG_BEAT,
     "dry run: how many fire times to print"},
    {"worker-id", 0, "TICKQ_WORKER_ID", "", OPT_STR, F(worker_id), 0, 0, TQ_PROG_WORKER,
     "this worker's id (default: host-pid-random)"},
    {"concurrency", 'c', "TICKQ_CONCURRENCY", "0", OPT_INT, F(concurrency), 0, 256,
     TQ_PROG_WORKER, "task threads (0: the number of CPUs)"},
    {"queues", 'Q', "TICKQ_QUEUES", "default", OPT_QUEUES, F(queues), 0, 0,
     TQ_PROG_WORKER, "comma-separated queues, highest priority first"},
    {"liveness", 0, "TICKQ_LIVENESS", "10", OPT_SECONDS, F(liveness_ms), 2, 3600,
     TQ_PROG_WORKER | TQ_PROG_WEB,
     "seconds without a heartbeat after which a worker is dead"},
    {"grace", 0, "TICKQ_GRACE", "10", OPT_SECONDS, F(grace_ms), 0, 3600, TQ_PROG_WORKER,
     "seconds a stopping worker waits for running tasks before requeueing them"},
    {"timeout", 0, "TICKQ_TIMEOUT", "30", OPT_SECONDS, F(timeout_ms), 0.001, 86400,
     TQ_PROG_WORKER, "time limit of a task whose message has none, in seconds"},
    {"done-ttl", 0, "TICKQ_DONE_TTL", "86400", OPT_SECONDS, F(done_ttl_ms), 1, 31536000,
     TQ_PROG_WORKER,
     "the dedupe window, in seconds: a final result is the done marker and "
     "lives at least this long"},
    {"result-ttl", 0, "TICKQ_RESULT_TTL", "86400", OPT_SECONDS, F(result_ttl_ms), 1,
     31536000, TQ_PROG_WORKER,
     "seconds a task result lives; a final one lives at least --done-ttl too, "
     "since it is the done marker"},
    {"max-retries", 0, "TICKQ_MAX_RETRIES", "3", OPT_INT, F(max_retries), 0, 1000000,
     TQ_PROG_WORKER, "retries of a failed task whose message and schedule set none"},
    {"retry-base", 0, "TICKQ_RETRY_BASE", "1", OPT_SECONDS, F(retry_base_ms), 0.001,
     86400, TQ_PROG_WORKER,
     "retry backoff: retry n waits a random time up to base * 2^(n-1)"},
    {"retry-cap", 0, "TICKQ_RETRY_CAP", "300", OPT_SECONDS, F(retry_cap_ms), 0.001,
     604800, TQ_PROG_WORKER, "retry backoff: the longest wait, in seconds"},
    {"max-deliveries", 0, "TICKQ_MAX_DELIVERIES", "5", OPT_INT, F(max_deliveries), 1,
     1000, TQ_PROG_WORKER,
     "deliveries after which a message is poison and dead-lettered"},
    {"tasks", 0, "TICKQ_TASKS", "", OPT_STR, F(tasks), 0, 0, TQ_PROG_WORKER,
     "a shared library (.so) of task functions to load"},
    {"listen", 0, "TICKQ_LISTEN", "127.0.0.1:5000", OPT_LISTEN, F(listen), 0, 0,
     TQ_PROG_WEB, "HOST:PORT the web server listens on"},
    {"web-threads", 0, "TICKQ_WEB_THREADS", "8", OPT_INT, F(web_threads), 1, 256,
     TQ_PROG_WEB,
     "HTTP request threads (120 more are started, so that slow clients cannot hold them "
     "all)"},
    {"api-token", 0, "TICKQ_API_TOKEN", "", OPT_STR, F(api_token), 0, 0, TQ_PROG_WEB,
     "bearer token the API's mutations need (none: read-only); a flag shows in ps, "
     "prefer the variable or --api-token-file"},
    {"api-token-file", 0, "TICKQ_API_TOKEN_FILE", "", OPT_STR, F(api_token_file), 0, 0,
     TQ_PROG_WEB, "file whose first line is the API token"},
    {"top", 0, "TICKQ_TOP", "false", OPT_BOOL, F(top), 0, 0, TQ_PROG_WEB,
     "show the live picture in this terminal (like celery events) instead of serving"},
};

#define NOPTIONS (sizeof options / sizeof options[0])

#define fail(err, errlen, ...) tq_err_set(TQ_ECONFIG, err, errlen, __VA_ARGS__)

int tq_config_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= TQ_CONFIG_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-",
                    *s))
            return 0;
    return 1;
}

/* Parses a whole number made of 1 to 15 decimal digits (enough for every
 * bound in the table, and exact in a double). Returns 0 or -1. */
static int parse_whole(const char *s, double *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || s[n] || n > 15)
        return -1;
    *out = strtod(s, NULL);
    return 0;
}

/* Parses seconds: digits, then optionally '.' and more digits. */
static int parse_seconds(const char *s, double *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 15)
        return -1;
    if (s[n] == '.') {
        size_t f = strspn(s + n + 1, "0123456789");
        if (f == 0 || f > 9)
            return -1;
        n += 1 + f;
    }
    if (s[n])
        return -1;
    errno = 0;
    *out = strtod(s, NULL);
    return errno || !isfinite(*out) ? -1 : 0;
}

static int set_queues(tq_config *cfg, const char *val)
{
    cfg->nqueues = 0;
    for (const char *p = val;; p++) {
        const char *end = p + strcspn(p, ",");
        while (p < end && *p == ' ')
            p++;
        const char *e = end;
        while (e > p && e[-1] == ' ')
            e--;
        size_t n = (size_t)(e - p);
        if (n == 0 || n >= TQ_CONFIG_NAME_MAX || cfg->nqueues == TQ_CONFIG_QUEUES_MAX)
            return -1;
        char *q = cfg->queues[cfg->nqueues];
        memcpy(q, p, n);
        q[n] = '\0';
        if (!tq_config_name_ok(q))
            return -1;
        for (int i = 0; i < cfg->nqueues; i++)
            if (strcmp(cfg->queues[i], q) == 0)
                return -1;
        cfg->nqueues++;
        if (!*end)
            return 0;
        p = end;
    }
}

/* Checks HOST:PORT: HOST is a name or IPv4 address of [A-Za-z0-9._-], or
 * an IPv6 address in brackets; PORT is 1..65535 in decimal digits. */
static int listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || strlen(s) >= TQ_CONFIG_NAME_MAX)
        return 0;
    size_t hostlen = (size_t)(colon - s);
    if (s[0] == '[') {
        if (hostlen < 3 || s[hostlen - 1] != ']' ||
            strspn(s + 1, "0123456789abcdefABCDEF:.") != hostlen - 2)
            return 0;
    } else if (strspn(
                   s,
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
               hostlen) {
        return 0;
    }
    double port;
    return parse_whole(colon + 1, &port) == 0 && port >= 1 && port <= 65535;
}

/* Stores val into the field of o. Returns 0 or TQ_ECONFIG with err set;
 * origin says where the value came from, for the message. */
static int set_option(tq_config *cfg, const opt *o, const char *val, const char *origin,
                      char *err, size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    char urlerr[256];
    double d;
    tq_url url;

    switch (o->type) {
    case OPT_STR:
        if (strlen(val) >= TQ_CONFIG_STR_MAX)
            return fail(err, errlen, "%s: value is longer than %d bytes", origin,
                        TQ_CONFIG_STR_MAX - 1);
        if ((o->offset == F(beat_id) || o->offset == F(worker_id)) && *val &&
            !tq_config_name_ok(val))
            return fail(err, errlen, "%s: '%s' must be 1 to 64 of A-Z a-z 0-9 _ . : -",
                        origin, val);
        strcpy(field, val);
        return 0;
    case OPT_NAME:
        if (!tq_config_name_ok(val))
            return fail(err, errlen, "%s: '%s' must be 1 to 64 of A-Z a-z 0-9 _ . : -",
                        origin, val);
        strcpy(field, val);
        return 0;
    case OPT_URL:
        /* urlerr never holds the password: tq_url_parse redacts it. */
        if (strlen(val) >= TQ_CONFIG_STR_MAX)
            return fail(err, errlen, "%s: the url is too long", origin);
        if (tq_url_parse(val, &url, urlerr, sizeof urlerr) < 0)
            return fail(err, errlen, "%s: %s", origin, urlerr);
        if (url.tls && !tq_conn_tls())
            return fail(err, errlen, "%s: a rediss:// url needs TLS, and %s", origin,
                        tq_conn_tls_info());
        strcpy(field, val);
        return 0;
    case OPT_INT:
        if (parse_whole(val, &d) < 0 || d < o->lo || d > o->hi)
            return fail(err, errlen, "%s: '%s' is not a whole number from %g to %g",
                        origin, val, o->lo, o->hi);
        *(int *)(void *)field = (int)d;
        return 0;
    case OPT_SECONDS:
        if (parse_seconds(val, &d) < 0 || d < o->lo || d > o->hi)
            return fail(err, errlen, "%s: '%s' is not a number of seconds from %g to %g",
                        origin, val, o->lo, o->hi);
        *(int64_t *)(void *)field = (int64_t)llround(d * 1000.0);
        return 0;
    case OPT_LEVEL:
        if (tq_log_level_parse(val, (tq_log_level *)(void *)field) < 0)
            return fail(err, errlen, "%s: '%s' is not one of debug, info, warn, error",
                        origin, val);
        return 0;
    case OPT_FORMAT:
        if (strcmp(val, "text") == 0)
            *(tq_log_format *)(void *)field = TQ_LOG_TEXT;
        else if (strcmp(val, "json") == 0)
            *(tq_log_format *)(void *)field = TQ_LOG_JSON;
        else
            return fail(err, errlen, "%s: '%s' is not text or json", origin, val);
        return 0;
    case OPT_QUEUES:
        if (set_queues(cfg, val) < 0)
            return fail(err, errlen,
                        "%s: '%s' must be 1 to %d distinct comma-separated names of "
                        "A-Z a-z 0-9 _ . : -",
                        origin, val, TQ_CONFIG_QUEUES_MAX);
        return 0;
    case OPT_LISTEN:
        if (!listen_ok(val))
            return fail(err, errlen, "%s: '%s' is not HOST:PORT", origin, val);
        strcpy(field, val);
        return 0;
    case OPT_BOOL:
        if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0)
            *(int *)(void *)field = 1;
        else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0)
            *(int *)(void *)field = 0;
        else
            return fail(err, errlen, "%s: '%s' is not true or false", origin, val);
        return 0;
    }
    return fail(err, errlen, "%s: unknown option type", origin);
}

/* set_option() for a value a person gave (a flag or a variable): first the
 * rules every value follows, whatever its type. */
static int set_given(tq_config *cfg, const opt *o, const char *val, const char *origin,
                     char *err, size_t errlen)
{
    size_t n = strlen(val);
    if (n == 0)
        return fail(
            err, errlen,
            "%s: the value is empty (leave the option out to get its default%s%s%s)",
            origin, o->def[0] ? ", '" : "", o->def, o->def[0] ? "'" : "");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f)
            return fail(err, errlen, "%s: the value holds a control character (byte %zu)",
                        origin, i + 1);
    if (val[0] == ' ' || val[n - 1] == ' ')
        return fail(err, errlen, "%s: the value begins or ends with a space", origin);
    return set_option(cfg, o, val, origin, err, errlen);
}

/* Finds an option by its long name (len bytes of name) or, when name is
 * NULL, by its short letter c, among those of the programs in progs. */
static const opt *find(const char *name, size_t len, char c, unsigned progs)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt *o = &options[i];
        if (!(o->progs & progs))
            continue;
        if (name ? strlen(o->flag) == len && strncmp(o->flag, name, len) == 0
                 : o->shortc && o->shortc == c)
            return o;
    }
    return NULL;
}

/* Parses argv[*i] as an option of prog: sets *o (NULL when unknown) and
 * *val (the value after '=', the next argument, or NULL), and advances *i
 * past a separate value. */
static void next_option(int argc, char *const *argv, int *i, unsigned prog, const opt **o,
                        const char **val)
{
    const char *a = argv[*i];
    *o = NULL;
    *val = NULL;
    if (strncmp(a, "--", 2) == 0) {
        const char *eq = strchr(a + 2, '=');
        *o = find(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2), 0, prog);
        if (eq)
            *val = eq + 1;
    } else if (a[0] == '-' && a[1] && !a[2]) {
        *o = find(NULL, 0, a[1], prog);
    }
    if (*o && !*val && (*o)->type != OPT_BOOL && *i + 1 < argc)
        *val = argv[++*i];
}

static const char *prog_name(unsigned progs)
{
    return progs & TQ_PROG_BEAT     ? "tickq-beat"
           : progs & TQ_PROG_WORKER ? "tickq-worker"
                                    : "tickq-web";
}

/* The error for an argument a that is no option of prog. */
static int unknown(const char *a, unsigned prog, char *err, size_t errlen)
{
    const opt *other = NULL;
    if (strncmp(a, "--", 2) == 0)
        other = find(a + 2, strcspn(a + 2, "="), 0, TQ_PROG_ALL & ~prog);
    else if (a[0] == '-' && a[1] && !a[2])
        other = find(NULL, 0, a[1], TQ_PROG_ALL & ~prog);
    if (other)
        return fail(err, errlen,
                    "unknown option '%s': it is an option of %s (see --help)", a,
                    prog_name(other->progs));
    if (a[0] != '-' || !a[1])
        return fail(err, errlen,
                    "unexpected argument '%s': options start with -- (see --help)", a);
    return fail(err, errlen, "unknown option '%s' (see --help)", a);
}

/* Options that only make sense together: returns 0 or TQ_ECONFIG. given[i]
 * is where options[i] came from ("" when it was not given). */
static int check_combinations(const tq_config *cfg, char given[][64], char *err,
                              size_t errlen)
{
    const char *dry_only[] = {"from", "count"};
    const char *next_runs = NULL, *check = NULL;
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (strcmp(options[i].flag, "next-runs") == 0 && given[i][0])
            next_runs = given[i];
        if (strcmp(options[i].flag, "check") == 0 && given[i][0] && cfg->check)
            check = given[i];
    }
    for (size_t i = 0; i < NOPTIONS; i++)
        for (size_t j = 0; j < 2; j++)
            if (strcmp(options[i].flag, dry_only[j]) == 0 && given[i][0] && !next_runs)
                return fail(err, errlen,
                            "%s applies only to the dry run: give --next-runs too, or "
                            "leave %s out",
                            given[i], given[i]);
    if (next_runs && check)
        return fail(err, errlen, "%s and %s exclude each other: a dry run needs no Redis",
                    check, next_runs);
    const char *tls = NULL, *cert = NULL, *key = NULL;
    for (size_t i = 0; i < NOPTIONS; i++) {
        if (strncmp(options[i].flag, "redis-tls-", 10) == 0 && given[i][0])
            tls = given[i];
        if (strcmp(options[i].flag, "redis-tls-cert") == 0 && given[i][0])
            cert = given[i];
        if (strcmp(options[i].flag, "redis-tls-key") == 0 && given[i][0])
            key = given[i];
    }
    if ((cert != NULL) != (key != NULL))
        return fail(err, errlen, "%s needs %s too", cert ? cert : key,
                    cert ? "--redis-tls-key" : "--redis-tls-cert");
    tq_url u;
    char urlerr[8];
    if (tls && (tq_url_parse(cfg->redis_url, &u, urlerr, sizeof urlerr) < 0 || !u.tls))
        return fail(err, errlen,
                    "%s applies to a rediss:// url only (the url is not TLS): use "
                    "rediss://, or leave %s out",
                    tls, tls);
    return 0;
}

int tq_config_url(const tq_config *cfg, tq_url *u, char *err, size_t errlen)
{
    if (tq_url_parse(cfg->redis_url, u, err, errlen) < 0)
        return TQ_EINVAL;
    snprintf(u->tls_ca, sizeof u->tls_ca, "%s", cfg->redis_tls_ca);
    snprintf(u->tls_cert, sizeof u->tls_cert, "%s", cfg->redis_tls_cert);
    snprintf(u->tls_key, sizeof u->tls_key, "%s", cfg->redis_tls_key);
    return 0;
}

int tq_config_parse(tq_config *cfg, tq_prog prog, int argc, char *const *argv,
                    tq_config_getenv getenv_fn, char *err, size_t errlen)
{
    char given[NOPTIONS][64]; /* where each option came from, "" if default */
    int rc;

    /* --help and --version answer even when the environment is bad; an
     * argument that is another option's value is that value. */
    for (int i = 1; i < argc; i++) {
        const opt *o;
        const char *val;
        const char *a = argv[i];
        next_option(argc, argv, &i, prog, &o, &val);
        if (o)
            continue;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return TQ_EHELP;
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0)
            return TQ_EVERSION;
        if (strcmp(a, "--help-markdown") == 0)
            return TQ_EMARKDOWN;
    }
    memset(cfg, 0, sizeof *cfg);
    memset(given, 0, sizeof given);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt *o = &options[i];
        if (!(o->progs & prog) || !o->def[0]) /* "": the field stays zero */
            continue;
        char origin[96];
        snprintf(origin, sizeof origin, "default of --%s", o->flag);
        if ((rc = set_option(cfg, o, o->def, origin, err, errlen)) < 0)
            return rc;
    }
    for (size_t i = 0; getenv_fn && i < NOPTIONS; i++) {
        const opt *o = &options[i];
        const char *v = (o->progs & prog) ? getenv_fn(o->env) : NULL;
        if (!v)
            continue;
        snprintf(given[i], sizeof given[i], "%s", o->env);
        if ((rc = set_given(cfg, o, v, given[i], err, errlen)) < 0)
            return rc;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const opt *o;
        const char *val;
        next_option(argc, argv, &i, prog, &o, &val);
        if (!o)
            return unknown(a, prog, err, errlen);
        size_t k = (size_t)(o - options);
        snprintf(given[k], sizeof given[k], "--%s", o->flag);
        if (!val && o->type == OPT_BOOL && !strchr(a, '='))
            val = "true";
        else if (!val)
            return fail(err, errlen, "%s needs a value", given[k]);
        if ((rc = set_given(cfg, o, val, given[k], err, errlen)) < 0)
            return rc;
    }
    return check_combinations(cfg, given, err, errlen);
}

void tq_config_usage(tq_prog prog, FILE *out, int markdown)
{
    if (markdown)
        fprintf(out, "| flag | environment | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const opt *o = &options[i];
        if (!(o->progs & prog))
            continue;
        char flag[64];
        if (o->shortc)
            snprintf(flag, sizeof flag, "-%c, --%s", o->shortc, o->flag);
        else
            snprintf(flag, sizeof flag, "--%s", o->flag);
        char def[TQ_CONFIG_STR_MAX + 2];
        snprintf(def, sizeof def, o->def[0] ? "`%s`" : "(none)", o->def);
        if (markdown)
            fprintf(out, "| `%s` | `%s` | %s | %s |\n", flag, o->env, def, o->help);
        else
            fprintf(out, "  %-20s %s\n  %-20s [env %s, default '%s']\n", flag, o->help,
                    "", o->env, o->def);
    }
    if (!markdown)
        fprintf(
            out,
            "  %-20s %s\n  %-20s %s\n\n"
            "Values: --opt VALUE or --opt=VALUE; the last of a repeated option wins.\n"
            "An empty value, spaces around it or a control byte are errors (leave an\n"
            "option out for its default); numbers are plain decimal digits.\n",
            "-h, --help", "print this help and exit", "-V, --version",
            "print the version and exit");
}
