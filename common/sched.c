/* Schedule definitions, the interval grid and cron rules. */
#include "common/sched.h"
#include "common/config.h"
#include "common/err.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define bad(err, errlen, ...) tq_err_set(TQ_EDECODE, err, errlen, __VA_ARGS__)

void tq_sched_deinit(tq_sched *s)
{
    json_decref(s->args);
    json_decref(s->kwargs);
    s->args = s->kwargs = NULL;
}

static int str_field(const json_t *def, const char *name, const char *f, char *dst,
                     size_t cap, const char *dflt, char *err, size_t errlen)
{
    const json_t *v = json_object_get(def, f);
    if (!v) {
        if (!dflt)
            return bad(err, errlen, "schedule '%s': field '%s' is missing", name, f);
        snprintf(dst, cap, "%s", dflt);
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= cap)
        return bad(err, errlen,
                   "schedule '%s': field '%s' must be a string of 1 to %zu bytes", name,
                   f, cap - 1);
    /* The same rule as the message codec's: a task the worker would refuse
     * must be refused here, not published to be dead-lettered every tick. */
    const char *s = json_string_value(v);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return bad(err, errlen, "schedule '%s': field '%s' has a control character",
                       name, f);
    strcpy(dst, s);
    return 0;
}

static int num_field(const json_t *def, const char *name, const char *f, double lo,
                     double hi, double *out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(def, f);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return bad(err, errlen,
                   "schedule '%s': field '%s' must be a number from %g to %g", name, f,
                   lo, hi);
    *out = json_number_value(v);
    return 0;
}

/* Decodes the "cron" and "tz" fields (a cron schedule) into s. */
static int cron_fields(tq_sched *s, const json_t *def, const char *default_tz, char *err,
                       size_t errlen)
{
    char sub[512];
    const json_t *v = json_object_get(def, "cron");
    if (!json_is_string(v) || json_string_length(v) >= sizeof s->cron)
        return bad(err, errlen,
                   "schedule '%s': field 'cron' must be a string of at most %zu "
                   "bytes, like \"*/5 * * * *\"",
                   s->name, sizeof s->cron - 1);
    snprintf(s->cron, sizeof s->cron, "%s", json_string_value(v));
    if (tq_cron_parse(&s->rule.cron, s->cron, sub, sizeof sub) < 0)
        return bad(err, errlen, "schedule '%s': field 'cron': %s", s->name, sub);
    if (!tq_cron_ever(&s->rule.cron))
        return bad(err, errlen,
                   "schedule '%s': field 'cron': '%s' never fires (no day of "
                   "any year matches)",
                   s->name, s->cron);
    v = json_object_get(def, "tz");
    if (v && (!json_is_string(v) || json_string_length(v) >= sizeof s->tz))
        return bad(err, errlen,
                   "schedule '%s': field 'tz' must be a time zone name like "
                   "\"Europe/Berlin\"",
                   s->name);
    snprintf(s->tz, sizeof s->tz, "%s",
             v                           ? json_string_value(v)
             : default_tz && *default_tz ? default_tz
                                         : "UTC");
    int rc = tq_tz_get(s->tz, &s->rule.zone, sub, sizeof sub);
    if (rc == TQ_ENOMEM)
        return rc;
    if (rc < 0)
        return bad(err, errlen, "schedule '%s': field 'tz': %s", s->name, sub);
    s->rule.kind = TQ_SCHED_CRON;
    return 0;
}

int tq_sched_decode(tq_sched *s, const json_t *def, const char *default_tz, char *err,
                    size_t errlen)
{
    static const char *const known[] = {
        "name", "task",   "every",   "cron",        "tz",      "catchup", "queue",
        "args", "kwargs", "timeout", "max_retries", "expires", "enabled"};
    const char *k;
    json_t *v;
    double every = 0, retries = -1;
    int rc;

    memset(s, 0, sizeof *s);
    s->max_retries = -1;
    s->enabled = 1;
    if (!json_is_object(def))
        return bad(err, errlen, "a schedule must be a JSON object");
    if (str_field(def, "?", "name", s->name, sizeof s->name, NULL, err, errlen) < 0)
        return TQ_EDECODE;
    if (!tq_config_name_ok(s->name))
        return bad(err, errlen,
                   "schedule '%s': field 'name' must be 1 to 64 of A-Z a-z 0-9 _ . : -",
                   s->name);
    json_object_foreach((json_t *)def, k, v)
    {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(known[i], k) != 0)
            i++;
        if (i == sizeof known / sizeof known[0])
            return bad(err, errlen, "schedule '%s': unknown field '%s'", s->name, k);
    }
    if (str_field(def, s->name, "task", s->task, sizeof s->task, NULL, err, errlen) < 0 ||
        str_field(def, s->name, "queue", s->queue, sizeof s->queue, "default", err,
                  errlen) < 0)
        return TQ_EDECODE;
    if (!tq_config_name_ok(s->queue))
        return bad(err, errlen,
                   "schedule '%s': field 'queue' must be 1 to 64 of A-Z a-z 0-9 _ . : -",
                   s->name);
    int has_every = json_object_get(def, "every") != NULL;
    int has_cron = json_object_get(def, "cron") != NULL;
    if (has_every && has_cron)
        return bad(err, errlen,
                   "schedule '%s': fields 'every' and 'cron' exclude each other: "
                   "give one",
                   s->name);
    if (!has_every && !has_cron)
        return bad(err, errlen,
                   "schedule '%s': field 'every' is missing (or give 'cron' "
                   "for a cron schedule)",
                   s->name);
    if (has_every && json_object_get(def, "tz"))
        return bad(err, errlen,
                   "schedule '%s': field 'tz' applies only to 'cron' schedules; "
                   "an interval is on the UTC epoch grid",
                   s->name);
    if (has_cron && (rc = cron_fields(s, def, default_tz, err, errlen)) < 0)
        return rc;
    if ((has_every &&
         num_field(def, s->name, "every", TQ_SCHED_EVERY_MIN_MS / 1000.0,
                   TQ_SCHED_EVERY_MAX_MS / 1000.0, &every, err, errlen) < 0) ||
        num_field(def, s->name, "timeout", 0.001, 31536000, &s->timeout, err, errlen) <
            0 ||
        num_field(def, s->name, "max_retries", 0, 1000000, &retries, err, errlen) < 0 ||
        num_field(def, s->name, "expires", 0.001, 31536000, &s->expires, err, errlen) < 0)
        return TQ_EDECODE;
    if (has_every) {
        s->rule.kind = TQ_SCHED_EVERY;
        /* every * 1000 is off by up to about an ulp: 4e-6 ms near the
         * maximum, more than a fixed 1e-6 allows. */
        s->rule.every_ms = llround(every * 1000.0);
        if (s->rule.every_ms < TQ_SCHED_EVERY_MIN_MS ||
            fabs(every * 1000.0 - (double)s->rule.every_ms) >
                fmax(1e-6, every * 1000.0 * 4 * DBL_EPSILON))
            return bad(err, errlen,
                       "schedule '%s': field 'every' must be a whole number of "
                       "milliseconds, at least 0.001",
                       s->name);
    }
    if (retries != floor(retries))
        return bad(err, errlen,
                   "schedule '%s': field 'max_retries' must be a whole number", s->name);
    s->max_retries = (int)retries;
    v = json_object_get(def, "catchup");
    if (v && (!json_is_string(v) ||
              tq_sched_catchup_parse(json_string_value(v), &s->catchup) < 0))
        return bad(err, errlen,
                   "schedule '%s': field 'catchup' must be \"latest\", \"none\" "
                   "or \"all\"",
                   s->name);
    v = json_object_get(def, "enabled");
    if (v && !json_is_boolean(v))
        return bad(err, errlen, "schedule '%s': field 'enabled' must be true or false",
                   s->name);
    s->enabled = !v || json_is_true(v);

    v = json_object_get(def, "args");
    if (v && !json_is_array(v))
        return bad(err, errlen, "schedule '%s': field 'args' must be an array", s->name);
    s->args = v ? json_deep_copy(v) : json_array();
    v = json_object_get(def, "kwargs");
    if (v && !json_is_object(v)) {
        tq_sched_deinit(s);
        return bad(err, errlen, "schedule '%s': field 'kwargs' must be an object",
                   s->name);
    }
    s->kwargs = v ? json_deep_copy(v) : json_object();
    if (!s->args || !s->kwargs) {
        tq_sched_deinit(s);
        return TQ_ENOMEM;
    }
    return 0;
}

int tq_sched_decode_text(tq_sched *s, const char *text, size_t len,
                         const char *default_tz, char *err, size_t errlen)
{
    json_error_t je;
    json_t *def = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!def) {
        memset(s, 0, sizeof *s);
        return bad(err, errlen, "schedule is not valid JSON: %s", je.text);
    }
    int rc = tq_sched_decode(s, def, default_tz, err, errlen);
    json_decref(def);
    return rc;
}

char *tq_sched_encode(const tq_sched *s, size_t *len)
{
    json_t *o = json_object();
    char *out = NULL;
    if (!o)
        return NULL;
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "task", json_string(s->task));
    if (s->rule.kind == TQ_SCHED_CRON) {
        json_object_set_new(o, "cron", json_string(s->cron));
        json_object_set_new(o, "tz", json_string(s->tz));
    } else {
        json_object_set_new(o, "every", json_real((double)s->rule.every_ms / 1000.0));
    }
    json_object_set_new(o, "catchup", json_string(tq_sched_catchup_name(s->catchup)));
    json_object_set_new(o, "queue", json_string(s->queue));
    json_object_set(o, "args", s->args);
    json_object_set(o, "kwargs", s->kwargs);
    if (s->timeout > 0)
        json_object_set_new(o, "timeout", json_real(s->timeout));
    if (s->max_retries >= 0)
        json_object_set_new(o, "max_retries", json_integer(s->max_retries));
    if (s->expires > 0)
        json_object_set_new(o, "expires", json_real(s->expires));
    json_object_set_new(o, "enabled", json_boolean(s->enabled));
    out = tq_msg_dump_json(o, len);
    json_decref(o);
    return out;
}

/* ------------------------------------------------------------------------
 * Loading a schedules file. A file of up to TQ_SCHED_FILE_MAX bytes may
 * hold a million definitions, so the work is linear (the duplicate-name
 * check is a hash table, not a comparison of each name with every earlier
 * one) and is done in slices between which *stop is looked at: a SIGINT
 * during a long load stops it at once. */

#define LOAD_SLICE 1024 /* definitions decoded between looks at *stop */

/* The state of reading the file through jansson's callback. */
struct file_reader {
    FILE *f;
    const volatile sig_atomic_t *stop; /* borrowed, may be NULL */
    size_t total;                      /* bytes read so far */
    int too_big, stopped, error;       /* why the read ended early (errno) */
};

/* jansson's read callback: up to buflen bytes, or (size_t)-1 to end the
 * parse when the file grows over the limit, *stop is set or read fails. */
static size_t file_read(void *buf, size_t buflen, void *data)
{
    struct file_reader *r = data;
    if (r->stop && *r->stop) {
        r->stopped = 1;
        return (size_t)-1;
    }
    size_t got = fread(buf, 1, buflen, r->f);
    if (got == 0 && ferror(r->f)) {
        r->error = errno ? errno : EIO;
        return (size_t)-1;
    }
    r->total += got;
    if (r->total > TQ_SCHED_FILE_MAX) {
        r->too_big = 1;
        return (size_t)-1;
    }
    return got;
}

/* FNV-1a of a NUL-terminated name. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* Reads and parses path into *root. Returns 0, TQ_ESTOPPED, or TQ_EDECODE
 * / TQ_ETOOBIG with a sentence naming the file in err. */
static int load_json(const char *path, const volatile sig_atomic_t *stop, json_t **root,
                     char *err, size_t errlen)
{
    struct file_reader r = {NULL, stop, 0, 0, 0, 0};
    struct stat st;
    json_error_t je;
    *root = NULL;
    if (!(r.f = fopen(path, "rb")))
        return bad(err, errlen, "unable to open %s: %s", path, strerror(errno));
    if (fstat(fileno(r.f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(r.f);
        return bad(err, errlen, "%s is a directory, not a schedules file", path);
    }
    /* A regular file is measured before it is parsed; a pipe as it is read. */
    if (fstat(fileno(r.f), &st) == 0 && S_ISREG(st.st_mode) &&
        st.st_size > TQ_SCHED_FILE_MAX) {
        fclose(r.f);
        return tq_err_set(TQ_ETOOBIG, err, errlen,
                          "%s: %lld bytes, over the limit of %d bytes (64 MiB) for a "
                          "schedules file",
                          path, (long long)st.st_size, TQ_SCHED_FILE_MAX);
    }
    *root = json_load_callback(file_read, &r, JSON_REJECT_DUPLICATES, &je);
    fclose(r.f);
    if (*root)
        return 0;
    if (r.stopped)
        return tq_err_set(TQ_ESTOPPED, err, errlen, "stopped while reading %s", path);
    if (r.too_big)
        return tq_err_set(TQ_ETOOBIG, err, errlen,
                          "%s: more than %d bytes, over the limit of %d bytes (64 MiB) "
                          "for a schedules file",
                          path, TQ_SCHED_FILE_MAX, TQ_SCHED_FILE_MAX);
    if (r.error)
        return bad(err, errlen, "%s: read error: %s", path, strerror(r.error));
    return bad(err, errlen, "%s:%d: %s", path, je.line, je.text);
}

int tq_sched_load_file_until(const char *path, const char *default_tz,
                             const volatile sig_atomic_t *stop, tq_sched **out, size_t *n,
                             char *err, size_t errlen)
{
    char sub[512];
    json_t *root;
    *out = NULL;
    *n = 0;
    int rc = load_json(path, stop, &root, err, errlen);
    if (rc < 0)
        return rc;
    json_t *list = json_object_get(root, "schedules");
    if (!json_is_object(root) || !json_is_array(list)) {
        json_decref(root);
        return bad(err, errlen, "%s: must be an object with an array \"schedules\"",
                   path);
    }
    size_t count = json_array_size(list), cap = 16, i = 0;
    while (cap < 2 * count)
        cap *= 2;
    tq_sched *s = calloc(count ? count : 1, sizeof *s);
    size_t *seen = calloc(cap, sizeof *seen); /* index + 1 of a name, 0: free */
    if (!s || !seen) {
        rc = TQ_ENOMEM;
        goto fail;
    }
    for (; i < count; i++) {
        if (i % LOAD_SLICE == 0 && stop && *stop) {
            rc = tq_err_set(TQ_ESTOPPED, err, errlen, "stopped while reading %s", path);
            goto fail;
        }
        rc = tq_sched_decode(&s[i], json_array_get(list, i), default_tz, sub, sizeof sub);
        if (rc == TQ_ENOMEM)
            goto fail;
        size_t h = name_hash(s[i].name) & (cap - 1);
        while (rc == 0 && seen[h] && strcmp(s[seen[h] - 1].name, s[i].name) != 0)
            h = (h + 1) & (cap - 1);
        if (rc == 0 && seen[h]) {
            snprintf(sub, sizeof sub, "schedule '%s' is defined twice", s[i].name);
            tq_sched_deinit(&s[i]);
            rc = TQ_EDECODE;
        }
        if (rc < 0) {
            bad(err, errlen, "%s: entry %zu: %s", path, i + 1, sub);
            goto fail;
        }
        seen[h] = i + 1;
    }
    free(seen);
    json_decref(root);
    *out = s;
    *n = count;
    return 0;
fail:
    for (size_t j = 0; s && j < i; j++)
        tq_sched_deinit(&s[j]);
    free(s);
    free(seen);
    json_decref(root);
    return rc;
}

int tq_sched_load_file(const char *path, const char *default_tz, tq_sched **out,
                       size_t *n, char *err, size_t errlen)
{
    return tq_sched_load_file_until(path, default_tz, NULL, out, n, err, errlen);
}

/* Floor division that is right for negative numbers too. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t tq_sched_rule_prev(const tq_sched_rule *r, int64_t at_ms)
{
    if (r->kind == TQ_SCHED_CRON)
        return tq_cron_prev(&r->cron, r->zone, at_ms);
    return floor_div(at_ms, r->every_ms) * r->every_ms;
}

int64_t tq_sched_rule_next(const tq_sched_rule *r, int64_t after_ms)
{
    if (r->kind == TQ_SCHED_CRON)
        return tq_cron_next(&r->cron, r->zone, after_ms);
    if (after_ms > INT64_MAX - 2 * r->every_ms)
        return TQ_SCHED_NEVER;
    return floor_div(after_ms, r->every_ms) * r->every_ms + r->every_ms;
}

int64_t tq_sched_prev(const tq_sched *s, int64_t at_ms)
{
    return tq_sched_rule_prev(&s->rule, at_ms);
}

int64_t tq_sched_next(const tq_sched *s, int64_t after_ms)
{
    return tq_sched_rule_next(&s->rule, after_ms);
}

static const char *const catchup_names[] = {"latest", "none", "all"};

int tq_sched_catchup_parse(const char *text, tq_sched_catchup *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(text, catchup_names[i]) == 0) {
            *out = (tq_sched_catchup)i;
            return 0;
        }
    return TQ_EINVAL;
}

const char *tq_sched_catchup_name(tq_sched_catchup c)
{
    return (unsigned)c < 3 ? catchup_names[c] : "latest";
}

int tq_sched_message(const tq_sched *s, int64_t tick_ms, int64_t now_ms, tq_msg *m)
{
    if (tq_msg_init(m) < 0)
        return TQ_ENOMEM;
    snprintf(m->id, sizeof m->id, "%s@%lld", s->name, (long long)tick_ms);
    snprintf(m->task, sizeof m->task, "%s", s->task);
    snprintf(m->queue, sizeof m->queue, "%s", s->queue);
    snprintf(m->schedule, sizeof m->schedule, "%s", s->name);
    json_decref(m->args);
    json_decref(m->kwargs);
    m->args = json_incref(s->args);
    m->kwargs = json_incref(s->kwargs);
    m->scheduled_at = (double)tick_ms / 1000.0;
    m->enqueued_at = (double)now_ms / 1000.0;
    if (s->expires > 0)
        m->expires_at = m->scheduled_at + s->expires;
    m->max_retries = s->max_retries;
    m->timeout = s->timeout;
    return 0;
}
