/* The mutations of tickq-web's API: schedules, queue pauses, enqueueing,
 * retrying and requeueing dead letters, purging them (see web/ops.h).
 *
 * Every handler validates all it was given before its first write, and
 * every write is one function of the broker library (common/lua/80-web.lua,
 * called with web_req_fcall()) that checks the types of the keys it
 * touches and then writes: a function that fails halfway is not rolled
 * back, so none may fail after its first write. Every key a function
 * touches comes in through KEYS, built here by common/keys (web_req_key),
 * never in Lua from ARGV: a per-message key (a done marker, a queue) is one
 * more KEYS entry. That is what Redis Cluster will need.
 *
 * Messages are decoded and encoded by common/msg (the worker's own rules)
 * and schedules by common/sched (the beat's), in C; Lua only compares
 * exact texts and writes, so what the API accepts is exactly what the
 * other programs accept. */
#include "web/ops.h"

#include "web/reply.h"
#include "web/req.h"

#include "common/clock.h"
#include "common/config.h"
#include "common/conn.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/msg.h"
#include "common/sched.h"
#include "common/utf8.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define ERR_MAX 512                       /* a sentence for a person, with the NUL */
#define DEAD_SCAN_MAX 10000               /* dead letters one request reads */
#define DEAD_PAGE 100                     /* dead letters per read and per write call */
#define DEAD_PAGE_BYTES (4 * 1024 * 1024) /* a page is cut after this many bytes */
#define REQUEUE_IDS_MAX 10000             /* ids in one POST /api/dead/requeue */
#define CAS_TRIES 5                       /* reads of a schedule that kept changing */
#define NAME_RULE "1 to 64 of A-Z a-z 0-9 _ . : -"

/* ---- helpers ------------------------------------------------------------ */

/* Parses the request body as JSON (duplicate keys refused, as the message
 * codec does; any value, so that valid JSON of the wrong kind, a 422, is
 * told apart from text that is not JSON, a 400). Returns a new value, or
 * NULL after answering 400 (*status is then the status sent). */
static json_t *body_json(web_req *rq, int *status)
{
    json_error_t je;
    json_t *v = json_loadb(rq->body ? rq->body : "", rq->body ? rq->body_len : 0,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!v)
        *status = web_reply_error(rq, 400, "the body is not valid JSON: %s at byte %d",
                                  je.text, je.position);
    return v;
}

/* Writes what a mutation did into rq->audit for the audit stream: one
 * line, printf-style, with control characters and bytes that are not
 * UTF-8 (a name from the path, a cut at the end) as '?'. Never a token
 * nor a message body: callers pass names and counts. */
static void audit(web_req *rq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void audit(web_req *rq, const char *fmt, ...)
{
    char raw[WEB_REQ_AUDIT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    size_t n = strlen(raw), o = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *c = (const unsigned char *)raw + i;
        size_t k = tq_utf8_seq(c, n - i);
        if (k == 0 || (k == 1 && (*c < 0x20 || *c == 0x7f))) {
            rq->audit[o++] = '?';
            i++;
        } else {
            memcpy(rq->audit + o, c, k);
            o += k;
            i += k;
        }
    }
    rq->audit[o] = '\0';
}

/* Writes the key of family k of queue (NULL: global) with arg, as
 * tq_keys_fmt() does, into buf. Returns 0, or -1 after answering 500: every
 * argument this file passes fits (a parameter is under WEB_REQ_PARAM_MAX
 * bytes), so that is a bug. */
static int key_of(web_req *rq, tq_key k, const char *queue, const char *arg, char *buf,
                  int *status)
{
    if (web_req_key(rq, k, queue, arg, buf) == 0)
        return 0;
    *status = web_reply_error(rq, 500, "cannot make the %s key for '%s'",
                              tq_keys_family(k), arg ? arg : "");
    return -1;
}

/* Calls the broker library's function tickq_<fn> (common/lua/80-web.lua;
 * argv: nkeys keys, then nargs arguments). Returns its reply, or NULL
 * after answering: 503 when Redis cannot be reached, 500 naming the key
 * for a WRONGTYPE error. what names the change for that answer ("writing
 * tickq:paused"). */
static redisReply *call(web_req *rq, const char *fn, int nkeys, int nargs,
                        const char **argv, const size_t *lens, const char *what,
                        int *status)
{
    uint64_t lost = rq->redis ? tq_conn_unanswered(rq->redis) : 0;
    redisReply *r = web_req_fcall(rq, fn, nkeys, nargs, argv, lens);
    if (r && r->type != REDIS_REPLY_ERROR)
        return r;
    /* A function that writes, sent but unanswered: its outcome is unknown.
     * (tickq_dead_page only reads.) */
    if (!r && rq->redis && tq_conn_unanswered(rq->redis) != lost &&
        strcmp(fn, "dead_page") != 0)
        rq->unanswered = 1;
    *status = web_reply_redis_error(rq, r, "%s", what);
    freeReplyObject(r);
    return NULL;
}

/* Answers 500 for a reply of a type the function never gives. */
static int odd_reply(web_req *rq, redisReply *r, const char *what)
{
    int status = web_reply_redis_error(rq, r, "%s", what);
    freeReplyObject(r);
    return status;
}

/* Reads the definition of schedule name: *text gets a new copy (free()
 * it) and *len its length. Returns 0, or the status it answered with: 404
 * for no such schedule, 500/503 for Redis. */
static int schedule_read(web_req *rq, const char *key, const char *name, char **text,
                         size_t *len)
{
    const char *argv[] = {"HGET", key, name};
    int status;
    *text = NULL;
    redisReply *r = web_req_redis(rq, 3, argv, NULL);
    if (r && r->type == REDIS_REPLY_NIL) {
        status = web_reply_error(rq, 404, "no schedule '%s'", name);
    } else if (r && r->type == REDIS_REPLY_STRING) {
        *text = malloc(r->len + 1);
        if (*text) {
            memcpy(*text, r->str, r->len);
            (*text)[r->len] = '\0';
            *len = r->len;
            status = 0;
        } else {
            status = web_reply_error(rq, 503, "out of memory");
        }
    } else {
        status = web_reply_redis_error(rq, r, "reading %s", key);
    }
    freeReplyObject(r);
    return status;
}

/* Pushes msg (len bytes) to the front of queue q, whose workers take from
 * the back. Returns 0, or the status it answered with. */
static int push(web_req *rq, const char *q, const char *msg, size_t len)
{
    char key[TQ_KEYS_MAX], qs[TQ_KEYS_MAX], what[TQ_KEYS_MAX + 16];
    int status = 0;
    if (key_of(rq, TQ_KEY_QUEUE, q, NULL, key, &status) < 0 ||
        key_of(rq, TQ_KEY_QUEUES, NULL, NULL, qs, &status) < 0)
        return status;
    /* First the queue joins the queues in use (P:{@}:queues), where the
     * web, the reaper and the beat's promotion find it; then the push, in
     * the queue's own slot. */
    snprintf(what, sizeof what, "writing %s", qs);
    const char *qv[] = {qs, q};
    redisReply *r = call(rq, "queues_add", 1, 1, qv, NULL, what, &status);
    if (!r)
        return status;
    freeReplyObject(r);
    snprintf(what, sizeof what, "writing %s", key);
    const char *argv[] = {key, msg};
    const size_t lens[] = {strlen(key), len};
    r = call(rq, "queue_push", 1, 1, argv, lens, what, &status);
    if (!r)
        return status;
    if (r->type != REDIS_REPLY_INTEGER)
        return odd_reply(rq, r, what);
    freeReplyObject(r);
    return 0;
}

/* ---- schedules -----------------------------------------------------------
 *
 * A definition is stored as it was given (compact, with "name" first),
 * not in the beat's canonical form: a cron schedule without "tz" then gets
 * each beat's --tz, as one written with HSET does (docs/SCHEDULES.md). It
 * is validated by the beat's own decoder, with UTC for an absent zone, and
 * refused when its messages would be over TQ_MSG_MAX, which the beat would
 * skip it for. */

/* Checks that schedule s's messages fit in TQ_MSG_MAX. Returns 0, or a
 * negative code with a sentence in err. */
static int sched_fits(const tq_sched *s, int64_t now_ms, char *err, size_t errlen)
{
    tq_msg m;
    if (tq_sched_message(s, now_ms, now_ms, &m) < 0)
        return tq_err_set(TQ_ENOMEM, err, errlen, "out of memory");
    char *text = tq_msg_encode(&m, NULL);
    tq_msg_deinit(&m);
    if (!text)
        return tq_err_set(TQ_ETOOBIG, err, errlen,
                          "schedule '%s': its messages would be over %d bytes", s->name,
                          TQ_MSG_MAX);
    free(text);
    return 0;
}

int web_ops_schedule_put(web_req *rq)
{
    const char *name = web_req_param(rq, 0);
    char key[TQ_KEYS_MAX], what[TQ_KEYS_MAX + 16], err[ERR_MAX];
    int status = 0, decoded = 0;
    char *text = NULL;
    size_t len = 0;
    json_t *def = NULL, *v;
    const char *k;
    tq_sched s;

    json_t *body = body_json(rq, &status);
    if (!body)
        return status;
    if (!json_is_object(body)) {
        status = web_reply_error(rq, 422, "a schedule must be a JSON object");
        goto out;
    }
    if (!tq_config_name_ok(name)) {
        status = web_reply_error(
            rq, 422, "schedule '%s': field 'name' (the path's) must be " NAME_RULE, name);
        goto out;
    }
    v = json_object_get(body, "name");
    if (v && (!json_is_string(v) || strcmp(json_string_value(v), name) != 0)) {
        status =
            web_reply_error(rq, 422,
                            "schedule '%s': field 'name' must be the path's name, '%s' "
                            "(or be left out)",
                            name, name);
        goto out;
    }
    /* The definition as given, with "name" first. */
    def = json_object();
    if (!def || json_object_set_new(def, "name", json_string(name)) < 0)
        goto oom;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "name") != 0 && json_object_set(def, k, v) < 0)
            goto oom;
    }
    int rc = tq_sched_decode(&s, def, NULL, err, sizeof err);
    if (rc == TQ_ENOMEM)
        goto oom;
    if (rc < 0) {
        status = web_reply_error(rq, 422, "%s", err);
        goto out;
    }
    decoded = 1;
    rc = sched_fits(&s, tq_clock_wall_ms(), err, sizeof err);
    if (rc == TQ_ENOMEM)
        goto oom;
    if (rc < 0) {
        status = web_reply_error(rq, 422, "%s", err);
        goto out;
    }
    if (!(text = tq_msg_dump_json(def, &len)))
        goto oom;

    char queues[TQ_KEYS_MAX];
    if (key_of(rq, TQ_KEY_SCHEDULES, NULL, NULL, key, &status) < 0 ||
        key_of(rq, TQ_KEY_QUEUES, NULL, NULL, queues, &status) < 0)
        goto out;
    snprintf(what, sizeof what, "writing %s", key);
    const char *argv[] = {key, queues, name, text, s.queue};
    const size_t lens[] = {strlen(key), strlen(queues), strlen(name), len,
                           strlen(s.queue)};
    redisReply *r = call(rq, "schedule_put", 2, 3, argv, lens, what, &status);
    if (!r)
        goto out;
    if (r->type != REDIS_REPLY_INTEGER) {
        status = odd_reply(rq, r, what);
        goto out;
    }
    int created = r->integer == 1;
    freeReplyObject(r);
    audit(rq, "%s schedule %s", created ? "created" : "replaced", name);
    status = web_reply_json(rq, created ? 201 : 200,
                            json_pack("{s:b,s:O}", "created", created, "schedule", def));
    goto out;
oom:
    status = web_reply_error(rq, 503, "out of memory");
out:
    if (decoded)
        tq_sched_deinit(&s);
    free(text);
    json_decref(def);
    json_decref(body);
    return status;
}

/* Deleting a schedule also deletes its P:schedule-state entry, its last
 * published tick. Kept, that entry would outlive the schedule forever
 * (names made through the API come and go), and it would be read back if
 * the name is ever added again: a running beat ignores ticks from before a
 * definition appeared, but a beat that starts later would take the old
 * schedule's last tick for its own and, under catchup "latest" or "all",
 * publish ticks that were due while the schedule did not exist. Without
 * it, a schedule added again under that name is a new schedule for every
 * beat: it starts with its next tick (docs/SCHEDULES.md, "Missed ticks").
 * Nothing can be published twice for it: tick ids are deterministic and a
 * done id is not run again. */
int web_ops_schedule_delete(web_req *rq)
{
    const char *name = web_req_param(rq, 0);
    char key[TQ_KEYS_MAX], state[TQ_KEYS_MAX], what[2 * TQ_KEYS_MAX + 16];
    int status = 0;
    if (key_of(rq, TQ_KEY_SCHEDULES, NULL, NULL, key, &status) < 0 ||
        key_of(rq, TQ_KEY_SCHEDULE_STATE, NULL, NULL, state, &status) < 0)
        return status;
    snprintf(what, sizeof what, "writing %s and %s", key, state);
    const char *argv[] = {key, state, name};
    redisReply *r = call(rq, "schedule_delete", 2, 1, argv, NULL, what, &status);
    if (!r)
        return status;
    if (r->type != REDIS_REPLY_INTEGER)
        return odd_reply(rq, r, what);
    int deleted = r->integer == 1;
    freeReplyObject(r);
    if (!deleted)
        return web_reply_error(rq, 404, "no schedule '%s'", name);
    audit(rq, "deleted schedule %s", name);
    return web_reply_json(rq, 200, json_pack("{s:s}", "deleted", name));
}

/* A tick now: the message the next tick would have, with the id
 * "<name>@run-<now ms>-<8 hex random>", which no grid tick has (those are
 * "<name>@<ms>"), so the worker neither takes it for one nor acks it as a
 * duplicate of one, nor of another run asked for in the same millisecond. It is published
 * whether the schedule is enabled or not: a person asked for it. */
static unsigned long long random_bits(void);

int web_ops_schedule_run(web_req *rq)
{
    const char *name = web_req_param(rq, 0);
    char key[TQ_KEYS_MAX], err[ERR_MAX];
    int status = 0;
    char *text = NULL, *msg = NULL;
    size_t len = 0, msglen = 0;
    tq_sched s;
    tq_msg m;

    if (key_of(rq, TQ_KEY_SCHEDULES, NULL, NULL, key, &status) < 0 ||
        (status = schedule_read(rq, key, name, &text, &len)) != 0)
        return status;
    int rc = tq_sched_decode_text(&s, text, len, NULL, err, sizeof err);
    free(text);
    if (rc == TQ_ENOMEM)
        return web_reply_error(rq, 503, "out of memory");
    if (rc < 0)
        return web_reply_error(rq, 409, "schedule '%s' cannot run: %s", name, err);
    if (strcmp(s.name, name) != 0) {
        tq_sched_deinit(&s);
        return web_reply_error(rq, 409,
                               "schedule '%s' cannot run: its definition's name is '%s'",
                               name, s.name);
    }
    int64_t now_ms = tq_clock_wall_ms();
    if (tq_sched_message(&s, now_ms, now_ms, &m) < 0) {
        tq_sched_deinit(&s);
        return web_reply_error(rq, 503, "out of memory");
    }
    tq_sched_deinit(&s);
    snprintf(m.id, sizeof m.id, "%s@run-%lld-%08llx", name, (long long)now_ms,
             random_bits() & 0xffffffffULL);
    if (!(msg = tq_msg_encode(&m, &msglen))) {
        status = web_reply_error(rq, 409,
                                 "schedule '%s' cannot run: its message would be over %d "
                                 "bytes (or out of memory)",
                                 name, TQ_MSG_MAX);
        goto out;
    }
    if ((status = push(rq, m.queue, msg, msglen)) != 0)
        goto out;
    audit(rq, "ran schedule %s now: task %s on queue %s", name, m.id, m.queue);
    status =
        web_reply_json(rq, 202, json_pack("{s:s,s:s}", "id", m.id, "queue", m.queue));
out:
    free(msg);
    tq_msg_deinit(&m);
    return status;
}

/* Sets "enabled" in schedule name's stored definition, compare-and-set:
 * the function writes only if the hash still holds the text read here, so a
 * change made meanwhile (another request, a beat upserting its file) is
 * never overwritten with a stale copy; after CAS_TRIES such races it
 * answers 409. The rest of the definition stays as it was. */
static int schedule_enable(web_req *rq, int enabled)
{
    const char *name = web_req_param(rq, 0);
    const char *verb = enabled ? "resumed" : "paused";
    char key[TQ_KEYS_MAX], what[TQ_KEYS_MAX + 16], err[ERR_MAX];
    int status = 0, was = enabled;

    if (key_of(rq, TQ_KEY_SCHEDULES, NULL, NULL, key, &status) < 0)
        return status;
    snprintf(what, sizeof what, "writing %s", key);
    for (int tries = 0; tries < CAS_TRIES; tries++) {
        char *text = NULL, *next = NULL;
        size_t len = 0, nlen = 0;
        tq_sched s;
        json_error_t je;
        if ((status = schedule_read(rq, key, name, &text, &len)) != 0)
            return status;
        int rc = tq_sched_decode_text(&s, text, len, NULL, err, sizeof err);
        if (rc < 0) {
            free(text);
            if (rc == TQ_ENOMEM)
                return web_reply_error(rq, 503, "out of memory");
            return web_reply_error(rq, 409, "schedule '%s' cannot be %s: %s", name, verb,
                                   err);
        }
        was = s.enabled;
        tq_sched_deinit(&s);
        if (was == enabled) { /* nothing to write */
            free(text);
            status = 0;
            break;
        }
        json_t *def = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (def && json_object_set_new(def, "enabled", json_boolean(enabled)) == 0)
            next = tq_msg_dump_json(def, &nlen);
        json_decref(def);
        if (!next) {
            free(text);
            return web_reply_error(rq, 503, "out of memory");
        }
        const char *argv[] = {key, name, text, next};
        const size_t lens[] = {strlen(key), strlen(name), len, nlen};
        redisReply *r = call(rq, "schedule_cas", 1, 3, argv, lens, what, &status);
        free(text);
        free(next);
        if (!r)
            return status;
        if (r->type != REDIS_REPLY_INTEGER)
            return odd_reply(rq, r, what);
        long long got = r->integer;
        freeReplyObject(r);
        if (got == -1)
            return web_reply_error(rq, 404, "no schedule '%s'", name);
        if (got == 1) {
            status = 0;
            break;
        }
        status = 409; /* changed meanwhile: read it again */
    }
    if (status)
        return web_reply_error(rq, 409,
                               "schedule '%s' kept changing while it was being %s; "
                               "try again",
                               name, verb);
    audit(rq, "%s schedule %s%s", verb, name,
          was == enabled ? (enabled ? " (it was not paused)" : " (it was paused already)")
                         : "");
    return web_reply_json(rq, 200,
                          json_pack("{s:s,s:b}", "name", name, "enabled", enabled));
}

int web_ops_schedule_pause(web_req *rq)
{
    return schedule_enable(rq, 0);
}

int web_ops_schedule_resume(web_req *rq)
{
    return schedule_enable(rq, 1);
}

/* ---- queues ------------------------------------------------------------- */

/* Sets queue q's P:{q}:paused (pause 1) or deletes it: workers stop or
 * start taking from it within a second (docs/PROTOCOL.md). */
static int queue_pause(web_req *rq, int pause)
{
    const char *q = web_req_param(rq, 0);
    char key[TQ_KEYS_MAX], what[TQ_KEYS_MAX + 16];
    int status = 0;
    if (!tq_config_name_ok(q))
        return web_reply_error(rq, 400, "queue name '%s': must be " NAME_RULE, q);
    if (key_of(rq, TQ_KEY_PAUSED, q, NULL, key, &status) < 0)
        return status;
    snprintf(what, sizeof what, "writing %s", key);
    const char *argv[] = {key, pause ? "1" : "0"};
    redisReply *r = call(rq, "queue_pause", 1, 1, argv, NULL, what, &status);
    if (!r)
        return status;
    if (r->type != REDIS_REPLY_INTEGER)
        return odd_reply(rq, r, what);
    int changed = r->integer == 1;
    freeReplyObject(r);
    audit(rq, "%s queue %s%s", pause ? "paused" : "resumed", q,
          changed ? ""
          : pause ? " (it was paused already)"
                  : " (it was not paused)");
    return web_reply_json(rq, 200, json_pack("{s:s,s:b}", "queue", q, "paused", pause));
}

int web_ops_queue_pause(web_req *rq)
{
    return queue_pause(rq, 1);
}

int web_ops_queue_resume(web_req *rq)
{
    return queue_pause(rq, 0);
}

/* ---- tasks -------------------------------------------------------------- */

/* 64 random bits from getrandom(); should that fail, from the clock, the
 * pid and a counter, which are unique enough within one process. */
static unsigned long long random_bits(void)
{
    static _Atomic unsigned long long counter;
    unsigned long long r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = ((unsigned long long)tq_clock_wall_us() << 20) ^
            ((unsigned long long)getpid() << 40) ^ ++counter * 0x9e3779b97f4a7c15ULL;
    return r;
}

/* Writes a new task id, "api-<unix ms>-<16 hex digits>", into out. */
static void new_task_id(char *out, size_t outlen)
{
    snprintf(out, outlen, "api-%lld-%016llx", (long long)tq_clock_wall_ms(),
             random_bits());
}

/* Enqueues one message, validated by the worker's decoder. A message
 * without "id" gets a new one first, added to the JSON that is then
 * decoded, so that every other field meets the same rules. */
int web_ops_task_enqueue(web_req *rq)
{
    char err[ERR_MAX], id[64];
    int status = 0, decoded = 0;
    char *made = NULL, *msg = NULL;
    size_t madelen = 0, msglen = 0;
    tq_msg m;

    json_t *body = body_json(rq, &status);
    if (!body)
        return status;
    if (!json_is_object(body)) {
        status = web_reply_error(rq, 422, "message must be a JSON object");
        goto out;
    }
    const char *text = rq->body;
    size_t len = rq->body_len;
    if (!json_object_get(body, "id")) {
        new_task_id(id, sizeof id);
        if (json_object_set_new(body, "id", json_string(id)) < 0 ||
            !(made = tq_msg_dump_json(body, &madelen)))
            goto oom;
        text = made;
        len = madelen;
    }
    int rc = tq_msg_decode(&m, text, len, err, sizeof err);
    if (rc == TQ_ENOMEM)
        goto oom;
    if (rc == TQ_ETOOBIG) {
        status = web_reply_error(rq, 413, "%s", err);
        goto out;
    }
    if (rc < 0) {
        status = web_reply_error(rq, 422, "%s", err);
        goto out;
    }
    decoded = 1;
    if (m.enqueued_at == 0)
        m.enqueued_at = (double)tq_clock_wall_ms() / 1000.0;
    if (!(msg = tq_msg_encode(&m, &msglen))) {
        status =
            web_reply_error(rq, 413,
                            "the message would be over %d bytes with enqueued_at (or "
                            "out of memory)",
                            TQ_MSG_MAX);
        goto out;
    }
    if ((status = push(rq, m.queue, msg, msglen)) != 0)
        goto out;
    audit(rq, "enqueued task %s on queue %s", m.id, m.queue);
    status =
        web_reply_json(rq, 201, json_pack("{s:s,s:s}", "id", m.id, "queue", m.queue));
    goto out;
oom:
    status = web_reply_error(rq, 503, "out of memory");
out:
    if (decoded)
        tq_msg_deinit(&m);
    free(msg);
    free(made);
    json_decref(body);
    return status;
}

/* ---- dead letters --------------------------------------------------------
 *
 * P:dead is a list, newest first, of {"reason","error","worker","dead_at",
 * "message"} where "message" is the raw message as a JSON string, or
 * "message_base64" when its bytes were not valid UTF-8
 * (docs/PROTOCOL.md). A dead letter is read in C: its message is decoded
 * by the worker's codec and becomes its next attempt (attempt 1, no
 * errors, enqueued now; the rest as it was). The write then passes the
 * dead letter's exact text, and the function requeues it only if that text
 * is still in the list, so a letter that someone else requeued or purged
 * meanwhile is never requeued twice.
 *
 * Reading goes by pages of DEAD_PAGE (LRANGE), at most DEAD_SCAN_MAX
 * letters a request. A scan keeps `off`, the number of letters at its end
 * of the list that it read and left there: removed letters close up, so
 * the next page starts right after those. A scan of everything goes from
 * the oldest end, where workers do not push, so that dead letters arriving
 * meanwhile do not shift the pages; it requeues the oldest first. Looking
 * for ids goes from the newest end, as GET /api/dead lists them. */

typedef struct {
    const char *text; /* the dead letter: borrowed from a page */
    size_t len;
    long long index;              /* its position in P:dead when read, 0 = newest */
    char id[TQ_MSG_ID_MAX];       /* the task id, "" when none can be read */
    char queue[TQ_MSG_QUEUE_MAX]; /* where the message goes */
    char *msg;                    /* new: the next attempt; NULL when there is none */
    size_t msglen;
    char why[ERR_MAX]; /* why it cannot be requeued, when msg is NULL */
} letter;

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 text into a new buffer (free() it). Returns NULL for bad
 * text or no memory. */
static unsigned char *b64_decode(const char *in, size_t len, size_t *outlen)
{
    unsigned char *out = malloc(len / 4 * 3 + 3);
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len && in[i] != '='; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *outlen = n;
    return out;
}

/* The id in the raw bytes of a message that is not valid UTF-8: the
 * string after the first "id":", when it is printable ASCII without
 * escapes. Such a message cannot be requeued, but its id answers "this
 * task's dead letter is undecodable" (409) rather than "no dead letter"
 * (404). */
static void raw_id(const unsigned char *raw, size_t len, char *id)
{
    static const char pat[] = "\"id\":\"";
    const size_t pl = sizeof pat - 1;
    id[0] = '\0';
    for (size_t i = 0; i + pl <= len; i++) {
        if (memcmp(raw + i, pat, pl) != 0)
            continue;
        size_t j = i + pl, n = 0;
        while (j < len && raw[j] != '"' && raw[j] >= 0x20 && raw[j] < 0x7f &&
               raw[j] != '\\' && n + 1 < TQ_MSG_ID_MAX)
            id[n++] = (char)raw[j++];
        if (j < len && raw[j] == '"' && n > 0)
            id[n] = '\0';
        else
            id[0] = '\0';
        return;
    }
}

/* Reads dead letter l->text: sets l->id when the task id can be read,
 * and with prepare also l->msg (the next attempt, its queue in l->queue)
 * or l->why. now_s is the new enqueued_at. Returns 0 or TQ_ENOMEM. */
static int letter_read(letter *l, int prepare, double now_s)
{
    json_error_t je;
    const json_t *m;
    json_t *mo = NULL;
    char *dumped = NULL;
    const char *raw = NULL, *id;
    size_t rawlen = 0;
    tq_msg msg;
    int rc = 0;

    l->id[0] = l->queue[0] = l->why[0] = '\0';
    l->msg = NULL;
    json_t *o = json_loadb(l->text, l->len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        snprintf(l->why, sizeof l->why, "the dead letter is not a JSON object");
        goto out;
    }
    if (json_is_string(m = json_object_get(o, "message"))) {
        raw = json_string_value(m);
        rawlen = json_string_length(m);
    } else if (json_is_object(m)) { /* written by another client: as good */
        if (!(dumped = tq_msg_dump_json(m, &rawlen))) {
            rc = TQ_ENOMEM;
            goto out;
        }
        raw = dumped;
    } else if (json_is_string(m = json_object_get(o, "message_base64"))) {
        size_t n = 0;
        unsigned char *bytes =
            b64_decode(json_string_value(m), json_string_length(m), &n);
        if (bytes)
            raw_id(bytes, n, l->id);
        free(bytes);
        snprintf(l->why, sizeof l->why,
                 "its message is not valid UTF-8 (message_base64): it cannot be "
                 "decoded");
        goto out;
    } else {
        snprintf(l->why, sizeof l->why, "the dead letter has no message");
        goto out;
    }
    /* The id, even of a message that does not decode: such a task is
     * "undecodable" (409), not "unknown" (404). */
    mo = json_loadb(raw, rawlen, 0, &je);
    id = json_string_value(json_object_get(mo, "id"));
    if (id && *id && strlen(id) < sizeof l->id)
        strcpy(l->id, id);
    if (!prepare)
        goto out;

    rc = tq_msg_decode(&msg, raw, rawlen, l->why, sizeof l->why);
    if (rc < 0) {
        rc = rc == TQ_ENOMEM ? rc : 0; /* l->why says why it does not decode */
        goto out;
    }
    msg.attempt = 1;
    json_object_del(msg.extra, "errors");
    msg.enqueued_at = now_s;
    l->msg = tq_msg_encode(&msg, &l->msglen);
    if (!l->msg)
        snprintf(l->why, sizeof l->why,
                 "its next attempt would be over %d bytes (or out of memory)",
                 TQ_MSG_MAX);
    snprintf(l->id, sizeof l->id, "%s", msg.id);
    snprintf(l->queue, sizeof l->queue, "%s", msg.queue);
    tq_msg_deinit(&msg);
out:
    json_decref(mo);
    json_decref(o);
    free(dumped);
    return rc;
}

/* A scan of P:dead from one end (see above). */
typedef struct {
    char key[TQ_KEYS_MAX];
    int from_tail;      /* 1: oldest first */
    long long off;      /* letters at the scanned end read and left there */
    long long examined; /* letters read so far */
    long long llen;     /* P:dead's length at the last read */
    redisReply *page;   /* the last page (owned) */
} scan;

/* Reads the next page into sc->page. Returns the number of letters in it
 * (0: the end, or DEAD_SCAN_MAX read), or -1 after answering. */
static int scan_next(web_req *rq, scan *sc, int *status)
{
    char count[24], off[24], budget[24], what[TQ_KEYS_MAX + 16];
    long long n = DEAD_SCAN_MAX - sc->examined;
    freeReplyObject(sc->page);
    sc->page = NULL;
    if (n <= 0)
        return 0;
    snprintf(count, sizeof count, "%lld", n < DEAD_PAGE ? n : DEAD_PAGE);
    snprintf(off, sizeof off, "%lld", sc->off);
    snprintf(budget, sizeof budget, "%d", DEAD_PAGE_BYTES);
    snprintf(what, sizeof what, "reading %s", sc->key);
    const char *argv[] = {sc->key, count, sc->from_tail ? "1" : "0", off, budget};
    redisReply *r = call(rq, "dead_page", 1, 4, argv, NULL, what, status);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements > DEAD_PAGE) {
        *status = odd_reply(rq, r, what);
        return -1;
    }
    for (size_t i = 0; i < r->element[1]->elements; i++) {
        if (r->element[1]->element[i]->type != REDIS_REPLY_STRING) {
            *status = odd_reply(rq, r, what);
            return -1;
        }
    }
    sc->page = r;
    sc->llen = r->element[0]->integer;
    int got = (int)r->element[1]->elements;
    sc->examined += got;
    return got;
}

/* Letter k (0-based, in the order of the scan) of the page just read,
 * with its position in the list when read. */
static void scan_letter(const scan *sc, int k, letter *l)
{
    const redisReply *e = sc->page->element[1]->element[k];
    memset(l, 0, sizeof *l);
    l->text = e->str;
    l->len = e->len;
    l->index = sc->from_tail ? sc->llen - 1 - sc->off - k : sc->off + k;
}

/* Requeues the n letters of ls that have a message, in order, in one
 * call, onto queue (the dead list's). Sets each one's code in codes: 1
 * requeued, 0 gone meanwhile, -1 not requeued (its why then says why).
 * Returns 0, or -1 after answering. */
static int requeue_letters(web_req *rq, const char *queue, const char *dead_key,
                           int from_tail, letter *ls, int n, int *codes, int *status)
{
    char dl[TQ_KEYS_MAX], qk[TQ_KEYS_MAX], what[TQ_KEYS_MAX + 32];
    char(*keys)[TQ_KEYS_MAX] = NULL;
    const char **argv = NULL;
    size_t *lens = NULL;
    int nl = 0, rc = -1;
    int *map = NULL;
    redisReply *r = NULL;

    for (int i = 0; i < n; i++)
        codes[i] = -1;
    keys = malloc((size_t)(n + 1) * sizeof *keys);
    argv = malloc((size_t)(4 * n + 4) * sizeof *argv);
    lens = malloc((size_t)(4 * n + 4) * sizeof *lens);
    map = malloc((size_t)(n + 1) * sizeof *map);
    if (!keys || !argv || !lens || !map) {
        *status = web_reply_error(rq, 503, "out of memory");
        goto out;
    }
    if (key_of(rq, TQ_KEY_DELIVERIES, queue, NULL, dl, status) < 0 ||
        key_of(rq, TQ_KEY_QUEUE, queue, NULL, qk, status) < 0)
        goto out;
    for (int i = 0; i < n; i++) {
        if (!ls[i].msg)
            continue;
        if (key_of(rq, TQ_KEY_RESULT, queue, ls[i].id, keys[nl], status) < 0)
            goto out;
        map[nl++] = i;
    }
    if (nl == 0) {
        rc = 0;
        goto out;
    }
    int a = 0;
    const char *fixed[] = {dead_key, dl, qk};
    for (int k = 0; k < 3; k++) {
        argv[a] = fixed[k];
        lens[a++] = strlen(fixed[k]);
    }
    for (int j = 0; j < nl; j++) {
        argv[a] = keys[j];
        lens[a++] = strlen(keys[j]);
    }
    argv[a] = from_tail ? "-1" : "1";
    lens[a] = strlen(argv[a]);
    a++;
    for (int j = 0; j < nl; j++) {
        const letter *l = &ls[map[j]];
        argv[a] = l->text;
        lens[a++] = l->len;
        argv[a] = l->msg;
        lens[a++] = l->msglen;
        argv[a] = l->id;
        lens[a++] = strlen(l->id);
    }
    snprintf(what, sizeof what, "requeueing from %s", dead_key);
    r = call(rq, "dead_requeue", 3 + nl, 1 + 3 * nl, argv, lens, what, status);
    if (!r)
        goto out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)nl) {
        *status = odd_reply(rq, r, what);
        r = NULL;
        goto out;
    }
    for (int j = 0; j < nl; j++) {
        const redisReply *e = r->element[j];
        letter *l = &ls[map[j]];
        if (e->type == REDIS_REPLY_INTEGER) {
            codes[map[j]] = e->integer == 1 ? 1 : 0;
            snprintf(l->queue, sizeof l->queue, "%s", queue);
        } else {
            web_reply_clean(e->type == REDIS_REPLY_STRING ? e->str : "unexpected reply",
                            l->why, sizeof l->why);
            codes[map[j]] = -1;
        }
    }
    rc = 0;
out:
    freeReplyObject(r);
    free(keys);
    free(argv);
    free(lens);
    free(map);
    return rc;
}

int web_ops_task_retry(web_req *rq)
{
    const char *id = web_req_param(rq, 0);
    int status = 0, found = 0, code = -1, nq, q = 0;
    long long bigger = 0;
    scan sc;
    letter l;
    char(*names)[TQ_CONFIG_NAME_MAX] = calloc(WEB_REQ_QUEUES_MAX, sizeof *names);

    memset(&sc, 0, sizeof sc);
    memset(&l, 0, sizeof l);
    if (!names)
        return web_reply_error(rq, 503, "out of memory");
    if ((nq = web_req_queues(rq, names)) < 0) {
        free(names);
        return web_reply_error(rq, 503, "reading the queues: %s", tq_strerror(TQ_EREDIS));
    }
    double now_s = (double)tq_clock_wall_ms() / 1000.0;
    int got = 0;
    /* Each queue's dead letters in turn, the newest DEAD_SCAN_MAX of each. */
    for (q = 0; q < nq && !found && got >= 0; q++) {
        freeReplyObject(sc.page);
        memset(&sc, 0, sizeof sc);
        if (key_of(rq, TQ_KEY_DEAD, names[q], NULL, sc.key, &status) < 0)
            goto out;
        while (!found && (got = scan_next(rq, &sc, &status)) > 0) {
            for (int i = 0; i < got && !found; i++) {
                scan_letter(&sc, i, &l);
                if (letter_read(&l, 0, now_s) < 0) {
                    status = web_reply_error(rq, 503, "out of memory");
                    goto out;
                }
                found = strcmp(l.id, id) == 0;
            }
            if (!found)
                sc.off += got;
        }
        bigger |= sc.examined >= DEAD_SCAN_MAX && sc.llen > DEAD_SCAN_MAX;
    }
    if (got < 0)
        goto out;
    if (!found) {
        if (bigger)
            status =
                web_reply_error(rq, 404,
                                "no dead letter for task %s among the newest %d of each "
                                "queue; only dead tasks can be retried",
                                id, DEAD_SCAN_MAX);
        else
            status = web_reply_error(rq, 404,
                                     "no dead letter for task %s; only dead tasks can be "
                                     "retried",
                                     id);
        goto out;
    }
    q--; /* the queue it was found in */
    if (letter_read(&l, 1, now_s) < 0) {
        status = web_reply_error(rq, 503, "out of memory");
        goto out;
    }
    if (!l.msg) {
        status = web_reply_error(
            rq, 409, "the dead letter of task %s cannot be retried: %s", id, l.why);
        goto out;
    }
    if (requeue_letters(rq, names[q], sc.key, 0, &l, 1, &code, &status) < 0)
        goto out;
    if (code == 0) {
        status = web_reply_error(rq, 409,
                                 "the dead letter of task %s was removed meanwhile "
                                 "(requeued or purged by someone else)",
                                 id);
    } else if (code < 0) {
        status = web_reply_error(rq, 500, "task %s cannot be retried: %s", id, l.why);
    } else {
        audit(rq, "retried task %s on queue %s", l.id, l.queue);
        status =
            web_reply_json(rq, 202, json_pack("{s:s,s:s}", "id", l.id, "queue", l.queue));
    }
out:
    free(names);
    free(l.msg);
    freeReplyObject(sc.page);
    return status;
}

/* Reads the body of POST /api/dead/requeue: absent or {} is every letter
 * (*ids NULL), {"ids": [...]} those tasks (*ids a new object used as a
 * set). Returns 0, or the status it answered with. */
static int requeue_body(web_req *rq, json_t **ids)
{
    int status = 0;
    const char *k;
    json_t *v, *set = NULL;
    size_t i;
    *ids = NULL;
    if (!rq->body)
        return 0;
    json_t *body = body_json(rq, &status);
    if (!body)
        return status;
    json_t *list = json_object_get(body, "ids");
    if (!json_is_object(body)) {
        status = web_reply_error(rq, 400, "the body must be {} or {\"ids\": [...]}");
        goto out;
    }
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "ids") != 0) {
            status = web_reply_error(
                rq, 400, "unknown field '%s': the body is {} or {\"ids\": [...]}", k);
            goto out;
        }
    }
    if (!list)
        goto out;
    if (!json_is_array(list) || json_array_size(list) > REQUEUE_IDS_MAX) {
        status = web_reply_error(rq, 400,
                                 "field 'ids': must be an array of at most %d task ids",
                                 REQUEUE_IDS_MAX);
        goto out;
    }
    if (!(set = json_object())) {
        status = web_reply_error(rq, 503, "out of memory");
        goto out;
    }
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) >= TQ_MSG_ID_MAX ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            status = web_reply_error(
                rq, 400, "field 'ids': item %zu must be a task id of 1 to %d bytes", i,
                TQ_MSG_ID_MAX - 1);
            goto out;
        }
        if (json_object_set_new(set, json_string_value(v), json_true()) < 0) {
            status = web_reply_error(rq, 503, "out of memory");
            goto out;
        }
    }
    *ids = set;
    set = NULL;
out:
    json_decref(set);
    json_decref(body);
    return status;
}

/* Adds {"index", "reason"} (and "id" when known) for l to skipped. */
static int skip(json_t *skipped, const letter *l)
{
    json_t *o = json_pack("{s:I,s:s}", "index", (json_int_t)l->index, "reason", l->why);
    if (o && l->id[0])
        json_object_set_new(o, "id", json_string(l->id));
    return json_array_append_new(skipped, o);
}

/* What a requeue of dead letters did so far. */
typedef struct {
    json_t *ids;     /* the tasks asked for (a set), NULL for all */
    json_t *skipped; /* letters that stay */
    long long requeued, left;
    letter *ls; /* DEAD_PAGE of them */
} requeue_run;

/* Requeues queue's dead letters (see web_ops_dead_requeue()), reading at
 * most DEAD_SCAN_MAX of them. Returns 0, or the status it answered with. */
static int requeue_queue(web_req *rq, requeue_run *run, const char *queue, double now_s)
{
    int codes[DEAD_PAGE];
    int status = 0, got, nl = 0;
    scan sc;
    memset(&sc, 0, sizeof sc);
    sc.from_tail = !run->ids;
    if (key_of(rq, TQ_KEY_DEAD, queue, NULL, sc.key, &status) < 0)
        return status;
    long long left = 0;
    while ((!run->ids || json_object_size(run->ids) > 0) &&
           !(rq->stopping && *rq->stopping)) {
        if ((got = scan_next(rq, &sc, &status)) < 0)
            goto out;
        if (got == 0) {
            left = sc.page ? 0 : left; /* the end, or DEAD_SCAN_MAX read */
            break;
        }
        for (int k = 0; k < got; k++) {
            letter *l = &run->ls[nl];
            scan_letter(&sc, k, l);
            if (letter_read(l, !run->ids, now_s) < 0)
                goto oom;
            if (run->ids) {
                if (!l->id[0] || !json_object_get(run->ids, l->id))
                    continue;
                json_object_del(run->ids, l->id); /* its newest dead letter only */
                if (letter_read(l, 1, now_s) < 0)
                    goto oom;
            }
            nl++;
        }
        if (requeue_letters(rq, queue, sc.key, sc.from_tail, run->ls, nl, codes,
                            &status) < 0)
            goto out;
        int removed = 0;
        for (int i = 0; i < nl; i++) {
            removed += codes[i] >= 0; /* requeued, or gone meanwhile */
            run->requeued += codes[i] == 1;
            if (codes[i] < 0 && skip(run->skipped, &run->ls[i]) < 0)
                goto oom;
        }
        for (; nl > 0; nl--) {
            free(run->ls[nl - 1].msg);
            run->ls[nl - 1].msg = NULL;
        }
        sc.off += got - removed;
        left = sc.llen - removed - sc.off;
        if (left < 0)
            left = 0;
    }
    run->left += left;
    goto out;
oom:
    status = web_reply_error(rq, 503, "out of memory");
out:
    for (int i = 0; i < nl; i++) {
        free(run->ls[i].msg);
        run->ls[i].msg = NULL;
    }
    freeReplyObject(sc.page);
    return status;
}

/* Requeues every dead letter (oldest first, each queue's onto that
 * queue), or those of the tasks in {"ids": [...]} (each one's newest),
 * reading at most DEAD_SCAN_MAX letters of each queue and writing one call
 * per page. A letter that cannot be requeued (undecodable, base64, its
 * queue key of the wrong type) stays where it is and is listed in
 * "skipped"; "remaining" counts the letters this request did not read (ask
 * again for those); with ids, "not_found" lists the ids that have no dead
 * letter among those read. */
int web_ops_dead_requeue(web_req *rq)
{
    requeue_run run;
    json_t *res = NULL;
    int status, nq;
    size_t wanted = 0;
    char(*names)[TQ_CONFIG_NAME_MAX] = NULL;

    memset(&run, 0, sizeof run);
    if ((status = requeue_body(rq, &run.ids)) != 0)
        return status;
    if (!(run.skipped = json_array()) || !(run.ls = calloc(DEAD_PAGE, sizeof *run.ls)) ||
        !(names = calloc(WEB_REQ_QUEUES_MAX, sizeof *names)))
        goto oom;
    if ((nq = web_req_queues(rq, names)) < 0) {
        status =
            web_reply_error(rq, 503, "reading the queues: %s", tq_strerror(TQ_EREDIS));
        goto out;
    }
    wanted = run.ids ? json_object_size(run.ids) : 0;
    double now_s = (double)tq_clock_wall_ms() / 1000.0;
    for (int q = 0; q < nq && (!run.ids || json_object_size(run.ids) > 0); q++)
        if ((status = requeue_queue(rq, &run, names[q], now_s)) != 0)
            goto out;
    res = json_pack("{s:I,s:O,s:I}", "requeued", (json_int_t)run.requeued, "skipped",
                    run.skipped, "remaining", (json_int_t)run.left);
    if (res && run.ids) {
        const char *k;
        json_t *v, *not_found = json_array();
        json_object_foreach(run.ids, k, v)
        {
            json_array_append_new(not_found, json_string(k));
        }
        json_object_set_new(res, "not_found", not_found);
    }
    if (run.ids)
        audit(rq, "requeued %lld of %zu dead letters by id", run.requeued, wanted);
    else
        audit(rq, "requeued %lld dead letters (%zu skipped, %lld remaining)",
              run.requeued, json_array_size(run.skipped), run.left);
    status = web_reply_json(rq, 200, res);
    goto out;
oom:
    status = web_reply_error(rq, 503, "out of memory");
out:
    if (status >= 500 && run.requeued > 0) /* the pages before the failure */
        audit(rq, "requeued %lld dead letters, then failed with %d", run.requeued,
              status);
    free(run.ls);
    free(names);
    json_decref(run.skipped);
    json_decref(run.ids);
    return status;
}

int web_ops_dead_purge(web_req *rq)
{
    char key[TQ_KEYS_MAX], what[TQ_KEYS_MAX + 16];
    int status = 0, nq;
    long long n = 0;
    char(*names)[TQ_CONFIG_NAME_MAX] = calloc(WEB_REQ_QUEUES_MAX, sizeof *names);
    if (!names)
        return web_reply_error(rq, 503, "out of memory");
    if ((nq = web_req_queues(rq, names)) < 0) {
        free(names);
        return web_reply_error(rq, 503, "reading the queues: %s", tq_strerror(TQ_EREDIS));
    }
    for (int q = 0; q < nq; q++) {
        if (key_of(rq, TQ_KEY_DEAD, names[q], NULL, key, &status) < 0)
            break;
        snprintf(what, sizeof what, "deleting %s", key);
        const char *argv[] = {key};
        redisReply *r = call(rq, "dead_purge", 1, 0, argv, NULL, what, &status);
        if (!r)
            break;
        if (r->type != REDIS_REPLY_INTEGER) {
            status = odd_reply(rq, r, what);
            break;
        }
        n += r->integer;
        freeReplyObject(r);
    }
    free(names);
    if (n > 0 || !status)
        audit(rq, "deleted all %lld dead letters%s", n, status ? ", then failed" : "");
    if (status)
        return status;
    return web_reply_json(rq, 200, json_pack("{s:I}", "deleted", (json_int_t)n));
}
