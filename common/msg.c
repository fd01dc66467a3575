/* Message codec for protocol v1. */
#include "common/msg.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/err.h"
#include "common/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes s as a JSON string. Invalid UTF-8 becomes U+FFFD: this is for
 * names and error texts; raw messages are checked before (utf8_ok). */
static void put_str(tq_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    tq_buf_puts(b, "\"");
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
               p[run] != '\\')
            run++;
        tq_buf_put(b, s + i, run - i);
        i = run;
        if (i == n)
            break;
        size_t len = tq_utf8_seq(p + i, n - i);
        if (p[i] == '"' || p[i] == '\\') {
            char e[2] = {'\\', (char)p[i]};
            tq_buf_put(b, e, 2);
            i++;
        } else if (p[i] < 0x20) {
            static const char *const short_esc[0x20] = {['\b'] = "\\b",
                                                        ['\f'] = "\\f",
                                                        ['\n'] = "\\n",
                                                        ['\r'] = "\\r",
                                                        ['\t'] = "\\t"};
            if (short_esc[p[i]])
                tq_buf_puts(b, short_esc[p[i]]);
            else
                tq_buf_putf(b, "\\u%04x", p[i]);
            i++;
        } else if (len) {
            tq_buf_put(b, s + i, len);
            i += len;
        } else {
            tq_buf_puts(b, "\\ufffd");
            i++;
        }
    }
    tq_buf_puts(b, "\"");
}

/* The shortest %g form that reads back to the same double. */
static void put_real(tq_buf *b, double v)
{
    char tmp[40];
    if (!isfinite(v)) { /* cannot come from JSON input; keep the output valid */
        tq_buf_puts(b, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    tq_buf_puts(b, tmp);
    if (!strpbrk(tmp, ".eEn")) /* keep it a real on the way back */
        tq_buf_puts(b, ".0");
}

/* ms / 1000 as "S.mmm" into tmp (at least 32 bytes), without printf:
 * it is written for every time stamp of every result. Returns tmp. */
static char *fmt_ms(char *tmp, int64_t ms)
{
    char digits[24];
    int n = 0, neg = ms < 0;
    uint64_t u = neg ? -(uint64_t)ms : (uint64_t)ms;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u || n < 4);
    char *p = tmp;
    if (neg)
        *p++ = '-';
    while (n > 3)
        *p++ = digits[--n];
    *p++ = '.';
    while (n > 0)
        *p++ = digits[--n];
    *p = '\0';
    return tmp;
}

void tq_msg_put_ms(tq_buf *b, int64_t ms)
{
    char tmp[32];
    tq_buf_puts(b, fmt_ms(tmp, ms));
}

void tq_msg_put_string(tq_buf *b, const char *s, size_t n)
{
    put_str(b, s, n);
}

/* A time stamp: with millisecond precision ("1764096000.001") when that
 * reads back to the same double, as it does for every stamp the programs
 * write; else in the shortest exact form, so that whatever the decoder
 * accepted is encoded back exactly. */
static void put_time(tq_buf *b, double v)
{
    char tmp[48];
    if (isfinite(v) && fabs(v) < 1e15) {
        fmt_ms(tmp, (int64_t)llround(v * 1000.0));
        if (strtod(tmp, NULL) == v) {
            tq_buf_puts(b, tmp);
            return;
        }
    }
    put_real(b, v);
}

static void put_value(tq_buf *b, const json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    int first = 1;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        tq_buf_puts(b, "{");
        json_object_foreach((json_t *)v, k, x)
        {
            if (!first)
                tq_buf_puts(b, ",");
            first = 0;
            put_str(b, k, strlen(k));
            tq_buf_puts(b, ":");
            put_value(b, x);
        }
        tq_buf_puts(b, "}");
        break;
    case JSON_ARRAY:
        tq_buf_puts(b, "[");
        json_array_foreach(v, i, x)
        {
            if (i)
                tq_buf_puts(b, ",");
            put_value(b, x);
        }
        tq_buf_puts(b, "]");
        break;
    case JSON_STRING:
        put_str(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        tq_buf_putf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        put_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        tq_buf_puts(b, "true");
        break;
    case JSON_FALSE:
        tq_buf_puts(b, "false");
        break;
    case JSON_NULL:
        tq_buf_puts(b, "null");
        break;
    }
}

void tq_msg_put_json(tq_buf *b, const json_t *v)
{
    put_value(b, v);
}

char *tq_msg_dump_json(const json_t *v, size_t *len)
{
    tq_buf b = {0};
    put_value(&b, v);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

int tq_msg_init(tq_msg *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->queue, "default");
    m->attempt = 1;
    m->max_retries = -1;
    m->args = json_array();
    m->kwargs = json_object();
    m->extra = json_object();
    if (!m->args || !m->kwargs || !m->extra) {
        tq_msg_deinit(m);
        return TQ_ENOMEM;
    }
    return 0;
}

void tq_msg_deinit(tq_msg *m)
{
    json_decref(m->args);
    json_decref(m->kwargs);
    json_decref(m->extra);
    m->args = m->kwargs = m->extra = NULL;
}

#define bad(err, errlen, ...) tq_err_set(TQ_EDECODE, err, errlen, __VA_ARGS__)

/* Copies string field f into dst (cap bytes with NUL). Control characters
 * are refused: ids and names end up in keys, logs and terminals. */
static int take_str(const json_t *v, const char *f, char *dst, size_t cap, char *err,
                    size_t errlen)
{
    if (!json_is_string(v))
        return bad(err, errlen, "field '%s': must be a string", f);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n >= cap)
        return bad(err, errlen, "field '%s': must be 1 to %zu bytes long", f, cap - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return bad(err, errlen, "field '%s': control characters are not allowed", f);
    memcpy(dst, s, n + 1);
    return 0;
}

/* A time field: null (absent) or Unix seconds in [0, TQ_MSG_TIME_END). */
static int take_time(const json_t *v, const char *f, double *out, char *err,
                     size_t errlen)
{
    if (json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) >= 0) ||
        !(json_number_value(v) < TQ_MSG_TIME_END))
        return bad(err, errlen,
                   "field '%s': must be null or a number of Unix seconds from 0 to "
                   "%.3f (years 1970 to 9999)",
                   f, TQ_MSG_TIME_END - 0.001);
    *out = json_number_value(v);
    return 0;
}

static int take_int(const json_t *v, const char *f, json_int_t lo, json_int_t hi,
                    int *out, char *err, size_t errlen)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return bad(err, errlen, "field '%s': must be a whole number from %lld to %lld", f,
                   (long long)lo, (long long)hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int decode_field(tq_msg *m, const char *k, json_t *v, char *err, size_t errlen)
{
    if (strcmp(k, "v") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) != TQ_MSG_VERSION)
            return bad(err, errlen, "field 'v': must be %d, the protocol version",
                       TQ_MSG_VERSION);
        return 0;
    }
    if (strcmp(k, "id") == 0)
        return take_str(v, k, m->id, sizeof m->id, err, errlen);
    if (strcmp(k, "task") == 0) {
        if (take_str(v, k, m->task, sizeof m->task, err, errlen) < 0)
            return TQ_EDECODE;
        return 0;
    }
    if (strcmp(k, "queue") == 0) {
        if (!json_is_string(v) || !tq_config_name_ok(json_string_value(v)))
            return bad(err, errlen,
                       "field 'queue': must be 1 to 64 of A-Z a-z 0-9 _ . : -");
        strcpy(m->queue, json_string_value(v));
        return 0;
    }
    if (strcmp(k, "schedule") == 0) {
        if (json_is_null(v)) {
            m->schedule[0] = '\0';
            return 0;
        }
        return take_str(v, k, m->schedule, sizeof m->schedule, err, errlen);
    }
    if (strcmp(k, "args") == 0) {
        if (!json_is_array(v))
            return bad(err, errlen, "field 'args': must be an array");
        json_decref(m->args);
        m->args = json_incref(v);
        return 0;
    }
    if (strcmp(k, "kwargs") == 0) {
        if (!json_is_object(v))
            return bad(err, errlen, "field 'kwargs': must be an object");
        json_decref(m->kwargs);
        m->kwargs = json_incref(v);
        return 0;
    }
    if (strcmp(k, "scheduled_at") == 0)
        return take_time(v, k, &m->scheduled_at, err, errlen);
    if (strcmp(k, "enqueued_at") == 0)
        return take_time(v, k, &m->enqueued_at, err, errlen);
    if (strcmp(k, "expires_at") == 0)
        return take_time(v, k, &m->expires_at, err, errlen);
    if (strcmp(k, "attempt") == 0)
        return take_int(v, k, 1, TQ_MSG_RETRIES_MAX + 1, &m->attempt, err, errlen);
    if (strcmp(k, "max_retries") == 0) {
        if (json_is_null(v)) {
            m->max_retries = -1;
            return 0;
        }
        return take_int(v, k, 0, TQ_MSG_RETRIES_MAX, &m->max_retries, err, errlen);
    }
    if (strcmp(k, "timeout") == 0) {
        if (json_is_null(v)) {
            m->timeout = 0;
            return 0;
        }
        if (!json_is_number(v) || !(json_number_value(v) > 0) ||
            !(json_number_value(v) <= TQ_MSG_TIMEOUT_MAX))
            return bad(err, errlen,
                       "field 'timeout': must be null or a number of seconds > 0 and "
                       "<= %d",
                       TQ_MSG_TIMEOUT_MAX);
        m->timeout = json_number_value(v);
        return 0;
    }
    return json_object_set(m->extra, k, v) == 0 ? 0 : TQ_ENOMEM;
}

/* ---- the plain-message fast path (see tq_msg_load_plain) ---- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string of printable ASCII without escapes at p (after its quote): its
 * end (the closing quote), or NULL. */
static const char *plain_string(const char *p, const char *end)
{
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p;
        if (c < 0x20 || c > 0x7e || c == '\\')
            return NULL;
    }
    return NULL;
}

/* The value at p as a new json_t, *next after it; NULL when it is not one
 * of the plain kinds. */
static json_t *plain_value(const char *p, const char *end, const char **next)
{
    if (p >= end)
        return NULL;
    if (*p == '"') {
        const char *q = plain_string(p + 1, end);
        if (!q)
            return NULL;
        *next = q + 1;
        return json_stringn_nocheck(p + 1, (size_t)(q - p - 1));
    }
    if (*p == '[' || *p == '{') {
        const char *q = skip_ws(p + 1, end);
        if (q >= end || *q != (*p == '[' ? ']' : '}'))
            return NULL;
        *next = q + 1;
        return *p == '[' ? json_array() : json_object();
    }
    static const struct {
        const char *word;
        size_t len;
    } words[] = {{"true", 4}, {"false", 5}, {"null", 4}};
    for (int w = 0; w < 3; w++)
        if ((size_t)(end - p) >= words[w].len &&
            memcmp(p, words[w].word, words[w].len) == 0) {
            *next = p + words[w].len;
            return w == 0 ? json_true() : w == 1 ? json_false() : json_null();
        }
    /* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?, no exponent. */
    const char *q = p;
    if (q < end && *q == '-')
        q++;
    const char *digits = q;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    size_t ndig = (size_t)(q - digits);
    if (ndig == 0 || (*digits == '0' && ndig > 1))
        return NULL;
    int real = 0;
    if (q < end && *q == '.') {
        const char *f = ++q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == f)
            return NULL;
        ndig += (size_t)(q - f);
        real = 1;
    }
    if (q < end && (*q == 'e' || *q == 'E'))
        return NULL;
    if (ndig > (real ? 17u : 18u))
        return NULL;
    char num[48];
    memcpy(num, p, (size_t)(q - p));
    num[q - p] = '\0';
    *next = q;
    return real ? json_real(strtod(num, NULL)) : json_integer(strtoll(num, NULL, 10));
}

json_t *tq_msg_load_plain(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p >= end || *p != '"')
                goto no;
            const char *k = p + 1, *ke = plain_string(k, end);
            if (!ke || json_object_getn(o, k, (size_t)(ke - k)))
                goto no; /* jansson says what is wrong with a key twice */
            p = skip_ws(ke + 1, end);
            if (p >= end || *p != ':')
                goto no;
            p = skip_ws(p + 1, end);
            json_t *v = plain_value(p, end, &p);
            if (!v || json_object_setn_new_nocheck(o, k, (size_t)(ke - k), v) < 0)
                goto no;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            goto no;
        }
    }
    if (skip_ws(p, end) != end)
        goto no;
    return o;
no:
    json_decref(o);
    return NULL;
}

int tq_msg_decode(tq_msg *m, const char *buf_, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    const char *k;
    json_t *v;
    int rc;

    memset(m, 0, sizeof *m); /* deinitialised on every error, this one too */
    if (len > TQ_MSG_MAX) {
        bad(err, errlen, "message is %zu bytes, over the limit of %d", len, TQ_MSG_MAX);
        return TQ_ETOOBIG;
    }
    if ((rc = tq_msg_init(m)) < 0)
        return rc;
    json_t *root = tq_msg_load_plain(buf_, len);
    if (!root)
        root = json_loadb(buf_, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        tq_msg_deinit(m);
        return bad(err, errlen, "not valid JSON: %s at byte %d", je.text, je.position);
    }
    if (!json_is_object(root)) {
        rc = bad(err, errlen, "message must be a JSON object");
        goto err;
    }
    static const char *const required[] = {"v", "id", "task"};
    for (size_t i = 0; i < 3; i++) {
        if (!json_object_get(root, required[i])) {
            rc = bad(err, errlen, "field '%s': missing", required[i]);
            goto err;
        }
    }
    json_object_foreach(root, k, v)
    {
        if ((rc = decode_field(m, k, v, err, errlen)) < 0)
            goto err;
    }
    json_decref(root);
    return 0;
err:
    json_decref(root);
    tq_msg_deinit(m);
    return rc;
}

char *tq_msg_encode(const tq_msg *m, size_t *len)
{
    tq_buf b = {0};
    const char *k;
    json_t *v;

    tq_buf_putf(&b, "{\"v\":%d,\"id\":", TQ_MSG_VERSION);
    put_str(&b, m->id, strlen(m->id));
    tq_buf_puts(&b, ",\"task\":");
    put_str(&b, m->task, strlen(m->task));
    tq_buf_puts(&b, ",\"queue\":");
    put_str(&b, m->queue, strlen(m->queue));
    tq_buf_puts(&b, ",\"args\":");
    put_value(&b, m->args);
    tq_buf_puts(&b, ",\"kwargs\":");
    put_value(&b, m->kwargs);
    if (m->schedule[0]) {
        tq_buf_puts(&b, ",\"schedule\":");
        put_str(&b, m->schedule, strlen(m->schedule));
    }
    if (m->scheduled_at > 0) {
        tq_buf_puts(&b, ",\"scheduled_at\":");
        put_time(&b, m->scheduled_at);
    }
    if (m->enqueued_at > 0) {
        tq_buf_puts(&b, ",\"enqueued_at\":");
        put_time(&b, m->enqueued_at);
    }
    if (m->expires_at > 0) {
        tq_buf_puts(&b, ",\"expires_at\":");
        put_time(&b, m->expires_at);
    }
    tq_buf_putf(&b, ",\"attempt\":%d", m->attempt);
    if (m->max_retries >= 0)
        tq_buf_putf(&b, ",\"max_retries\":%d", m->max_retries);
    if (m->timeout > 0) {
        tq_buf_puts(&b, ",\"timeout\":");
        put_real(&b, m->timeout);
    }
    json_object_foreach(m->extra, k, v)
    {
        tq_buf_puts(&b, ",");
        put_str(&b, k, strlen(k));
        tq_buf_puts(&b, ":");
        put_value(&b, v);
    }
    tq_buf_puts(&b, "}");
    if (b.oom || b.len > TQ_MSG_MAX) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

static int utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0, len; i < n; i += len)
        if ((len = tq_utf8_seq(p + i, n - i)) == 0 || p[i] == 0)
            return 0;
    return 1;
}

static void put_base64(tq_buf *b, const unsigned char *s, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        q[0] = tab[v >> 18 & 63];
        q[1] = tab[v >> 12 & 63];
        q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? tab[v & 63] : '=';
        tq_buf_put(b, q, 4);
    }
}

char *tq_msg_dead_letter(const char *raw, size_t rawlen, const char *reason,
                         const char *error, const char *worker, double now_s, size_t *len)
{
    tq_buf b = {0};
    tq_buf_puts(&b, "{\"reason\":");
    put_str(&b, reason, strlen(reason));
    tq_buf_puts(&b, ",\"error\":");
    put_str(&b, error, strlen(error));
    tq_buf_puts(&b, ",\"worker\":");
    put_str(&b, worker, strlen(worker));
    tq_buf_puts(&b, ",\"dead_at\":");
    put_time(&b, now_s);
    if (utf8_ok(raw, rawlen)) {
        tq_buf_puts(&b, ",\"message\":");
        put_str(&b, raw, rawlen);
    } else {
        tq_buf_puts(&b, ",\"message_base64\":\"");
        put_base64(&b, (const unsigned char *)raw, rawlen);
        tq_buf_puts(&b, "\"");
    }
    tq_buf_puts(&b, "}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
