/* Fuzzes the message codec (common/msg): any bytes through tq_msg_decode(),
 * whose fast path for plain messages must read what jansson reads;
 * a message it accepts must encode, decode to the same fields and encode
 * again to the same bytes (the round trip). Whatever the bytes, the dead
 * letter holding them, and tq_msg_dump_json() of a string or number made
 * from them, must be valid JSON that gives the bytes back. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/msg.h"
#include "common/utf8.h"

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_msg: %s failed: ", #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static int same_double(double a, double b)
{
    return a == b && signbit(a) == signbit(b);
}

static void check_equal(const tq_msg *a, const tq_msg *b, const char *text)
{
    CHECK(strcmp(a->id, b->id) == 0, "id: %s", text);
    CHECK(strcmp(a->task, b->task) == 0, "task: %s", text);
    CHECK(strcmp(a->queue, b->queue) == 0, "queue: %s", text);
    CHECK(strcmp(a->schedule, b->schedule) == 0, "schedule: %s", text);
    /* Zero means absent and is not written, so -0.0 comes back as 0. */
    CHECK(a->scheduled_at == b->scheduled_at, "%.17g %.17g: %s", a->scheduled_at,
          b->scheduled_at, text);
    CHECK(a->enqueued_at == b->enqueued_at, "%.17g %.17g: %s", a->enqueued_at,
          b->enqueued_at, text);
    CHECK(a->expires_at == b->expires_at, "%.17g %.17g: %s", a->expires_at, b->expires_at,
          text);
    CHECK(a->attempt == b->attempt, "%d %d: %s", a->attempt, b->attempt, text);
    CHECK(a->max_retries == b->max_retries, "%d %d: %s", a->max_retries, b->max_retries,
          text);
    CHECK(same_double(a->timeout, b->timeout), "%.17g %.17g: %s", a->timeout, b->timeout,
          text);
    CHECK(json_equal(a->args, b->args), "args: %s", text);
    CHECK(json_equal(a->kwargs, b->kwargs), "kwargs: %s", text);
    CHECK(json_equal(a->extra, b->extra), "extra: %s", text);
}

static void round_trip(const tq_msg *m, size_t inlen)
{
    size_t len = 0, len2 = 0;
    char *text = tq_msg_encode(m, &len);
    if (!text) {
        /* Only a message near the size limit may outgrow it. */
        CHECK(inlen > TQ_MSG_MAX / 2, "a %zu-byte message did not encode", inlen);
        return;
    }
    CHECK(len == strlen(text), "length %zu, strlen %zu", len, strlen(text));
    tq_msg back;
    char err[512] = "";
    int rc = tq_msg_decode(&back, text, len, err, sizeof err);
    CHECK(rc == 0, "its encoding does not decode (%s): %s", err, text);
    check_equal(m, &back, text);
    char *text2 = tq_msg_encode(&back, &len2);
    CHECK(text2 && len2 == len && memcmp(text, text2, len) == 0,
          "the second encoding differs:\n%s\n%s", text, text2 ? text2 : "(null)");
    free(text2);
    tq_msg_deinit(&back);
    free(text);
}

/* 1 if p is valid UTF-8; with nul_ok 0, without NUL bytes too. */
static int utf8_valid(const uint8_t *p, size_t n, int nul_ok)
{
    for (size_t i = 0, k; i < n; i += k)
        if ((k = tq_utf8_seq(p + i, n - i)) == 0 || (!nul_ok && p[i] == 0))
            return 0;
    return 1;
}

static size_t unbase64(const char *in, size_t len, uint8_t *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    CHECK(len % 4 == 0, "base64 of length %zu", len);
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *p = in[i + j] == '=' ? NULL : strchr(tab, in[i + j]);
            CHECK(in[i + j] == '=' || (p && in[i + j]), "base64 byte %d", in[i + j]);
            pad += in[i + j] == '=';
            v = v << 6 | (p ? (unsigned)(p - tab) : 0);
        }
        out[n++] = (uint8_t)(v >> 16);
        if (pad < 2)
            out[n++] = (uint8_t)(v >> 8);
        if (pad < 1)
            out[n++] = (uint8_t)v;
    }
    return n;
}

/* The dead letter of data, with an error text and a dead_at from the bytes
 * too: valid JSON, and the message in it is data exactly. */
static void check_dead_letter(const uint8_t *data, size_t size, const char *error)
{
    double now = 0;
    if (size >= sizeof now)
        memcpy(&now, data, sizeof now); /* any double: NaN, inf, 1e300, -0 */
    size_t len = 0;
    char *worker = malloc(size + 1); /* up to the first NUL: any bytes */
    memcpy(worker, data, size);
    worker[size] = '\0';
    char *dl = tq_msg_dead_letter((const char *)data, size, "undecodable", error, worker,
                                  now, &len);
    free(worker);
    CHECK(dl, "no dead letter");
    CHECK(len == strlen(dl), "length %zu, strlen %zu", len, strlen(dl));
    json_error_t je;
    json_t *o = json_loadb(dl, len, JSON_REJECT_DUPLICATES, &je);
    CHECK(json_is_object(o), "not a JSON object (%s): %s", je.text, dl);
    json_t *dead_at = json_object_get(o, "dead_at");
    CHECK(isfinite(now) ? same_double(json_number_value(dead_at), now) ||
                              fabs(json_number_value(dead_at) - now) <= 0.0005
                        : json_is_null(dead_at),
          "dead_at %.17g: %s", now, dl);
    const char *msg = json_string_value(json_object_get(o, "message"));
    if (utf8_valid(data, size, 0)) {
        CHECK(msg && json_string_length(json_object_get(o, "message")) == size &&
                  memcmp(msg, data, size) == 0,
              "message not kept: %s", dl);
    } else {
        json_t *b64 = json_object_get(o, "message_base64");
        CHECK(!msg && json_is_string(b64), "no message_base64: %s", dl);
        uint8_t *back = malloc(size + 3);
        size_t n = unbase64(json_string_value(b64), json_string_length(b64), back);
        CHECK(n == size && memcmp(back, data, size) == 0, "message_base64 differs");
        free(back);
    }
    json_decref(o);
    free(dl);
}

/* tq_msg_dump_json() of a string holding the bytes (any: NULs, invalid
 * UTF-8) as a value and as a key, and of a double made of them. */
static void check_dump(const uint8_t *data, size_t size)
{
    json_t *o = json_object();
    json_t *s = json_stringn_nocheck((const char *)data, size);
    double d = 0;
    if (size >= sizeof d)
        memcpy(&d, data + size - sizeof d, sizeof d);
    char *key = malloc(size + 1);
    memcpy(key, data, size);
    key[size] = '\0';
    json_object_set_new_nocheck(o, key, json_array());
    json_object_set_new(o, "s", s);
    if (isfinite(d))
        json_object_set_new(o, "d", json_real(d));
    size_t len = 0;
    char *text = tq_msg_dump_json(o, &len);
    CHECK(text && len == strlen(text), "dump");
    json_error_t je;
    json_t *back = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    CHECK(json_is_object(back), "dump is not JSON (%s): %s", je.text, text);
    json_t *bs = json_object_get(back, "s");
    if (utf8_valid(data, size, 1))
        CHECK(json_string_length(bs) == size &&
                  memcmp(json_string_value(bs), data, size) == 0,
              "string not kept: %s", text);
    if (isfinite(d))
        CHECK(same_double(json_number_value(json_object_get(back, "d")), d),
              "%.17g came back as %.17g: %s", d,
              json_number_value(json_object_get(back, "d")), text);
    json_decref(back);
    free(text);
    free(key);
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The plain-message fast path reads what jansson reads, or declines: the
 * same members in the same order, of the same types and values (dumped,
 * so that -0.0 and 0.0 differ). */
static void plain_matches_jansson(const uint8_t *data, size_t size)
{
    json_t *fast = tq_msg_load_plain((const char *)data, size);
    if (!fast)
        return;
    json_error_t je;
    json_t *slow = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
    CHECK(slow, "the fast path read what jansson refuses: %s", je.text);
    char *a = json_dumps(fast, JSON_COMPACT | JSON_ENCODE_ANY);
    char *b = json_dumps(slow, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK(a && b && strcmp(a, b) == 0, "fast %s, jansson %s", a ? a : "?", b ? b : "?");
    free(a);
    free(b);
    json_decref(fast);
    json_decref(slow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tq_msg m;
    char err[512];
    memset(err, 'x', sizeof err);
    plain_matches_jansson(data, size);
    int rc = tq_msg_decode(&m, (const char *)data, size, err, sizeof err);
    if (rc == 0) {
        round_trip(&m, size);
        tq_msg_deinit(&m);
        strcpy(err, "none");
    } else {
        CHECK(rc == TQ_EDECODE || rc == TQ_ETOOBIG, "rc %d", rc);
        CHECK(memchr(err, '\0', sizeof err) && err[0], "no error text");
        CHECK(!m.args && !m.kwargs && !m.extra, "a failed decode left owned fields");
    }
    check_dead_letter(data, size, err);
    check_dump(data, size);
    return 0;
}
