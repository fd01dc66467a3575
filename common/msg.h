/* Task messages, protocol v1 (docs/PROTOCOL.md): decode, validate, encode.
 *
 * A message is one JSON object of at most TQ_MSG_MAX bytes. v, id and task
 * are required; every other field has a default. Fields this version does not
 * know are kept in `extra` and written back by tq_msg_encode(), so an older
 * worker that retries a newer message loses nothing. Errors name the field. */
#ifndef TQ_MSG_H
#define TQ_MSG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define TQ_MSG_MAX (1024 * 1024) /* bytes of one encoded message */
#define TQ_MSG_VERSION 1
#define TQ_MSG_ID_MAX 257   /* bytes of an id, with the NUL */
#define TQ_MSG_NAME_MAX 129 /* bytes of a task or schedule name, with the NUL */
#define TQ_MSG_QUEUE_MAX 65 /* bytes of a queue name, with the NUL */
/* The ranges of the numeric fields: time stamps in [0, TQ_MSG_TIME_END),
 * timeout in (0, TQ_MSG_TIMEOUT_MAX], max_retries in [0, TQ_MSG_RETRIES_MAX]
 * and attempt in [1, TQ_MSG_RETRIES_MAX + 1] (the run after the last
 * retry). A value outside is a decode error that names the field and the
 * range (docs/PROTOCOL.md). */
#define TQ_MSG_TIME_END 253402300800.0 /* s: 10000-01-01T00:00:00Z, excluded */
#define TQ_MSG_TIMEOUT_MAX 31536000    /* s: a timeout is in (0, 365 days] */
#define TQ_MSG_RETRIES_MAX 1000000     /* retries of one message */

typedef struct {
    char id[TQ_MSG_ID_MAX];         /* unique per logical execution */
    char task[TQ_MSG_NAME_MAX];     /* task name, e.g. "timer.tick" */
    char queue[TQ_MSG_QUEUE_MAX];   /* default "default" */
    char schedule[TQ_MSG_NAME_MAX]; /* "" when not from a schedule */
    json_t *args;                   /* owned array, default [] */
    json_t *kwargs;                 /* owned object, default {} */
    double scheduled_at;            /* Unix seconds; 0 when absent */
    double enqueued_at;             /* Unix seconds; 0 when absent */
    double expires_at;              /* Unix seconds; 0 when it never expires */
    int attempt;                    /* 1 for the first run */
    int max_retries;                /* -1 when absent: the worker decides */
    double timeout;                 /* seconds; 0 when absent: the worker decides */
    json_t *extra;                  /* owned object of unknown fields */
} tq_msg;

/* Sets *m to an empty message with the defaults (args and kwargs are
 * allocated). Returns 0 or TQ_ENOMEM. Pair with tq_msg_deinit(). */
int tq_msg_init(tq_msg *m);

/* Frees what *m owns; the struct itself is the caller's. Safe twice. */
void tq_msg_deinit(tq_msg *m);

/* Decodes len bytes of buf into *m (which must not hold anything: it is
 * initialised here). Returns 0; TQ_ETOOBIG for more than TQ_MSG_MAX bytes;
 * or TQ_EDECODE with a sentence naming the field in err. On error *m is
 * left deinitialised. */
int tq_msg_decode(tq_msg *m, const char *buf, size_t len, char *err, size_t errlen);

/* tq_msg_decode's fast way in: the JSON object in buf (len bytes) when it
 * is flat and plain, else NULL, and then jansson's json_loadb() reads it.
 * Plain means: keys and string values of printable ASCII without escapes,
 * integers of up to 18 digits, decimals without an exponent of up to 17
 * digits, true, false, null, [] and {}, no key twice. What it returns is
 * what json_loadb() returns for the same bytes (tests/fuzz/fuzz_msg.c holds
 * it to that): jansson's lexer costs the worker more per message than all
 * the rest of a task. */
json_t *tq_msg_load_plain(const char *buf, size_t len);

/* Encodes *m as compact JSON, known fields first in protocol order. Every
 * message tq_msg_decode() accepted encodes back exactly: decoding the
 * output gives the same fields, and encoding those gives the same bytes.
 * Returns a new NUL-terminated string (free() it) and its length in *len,
 * or NULL when out of memory or the result is over TQ_MSG_MAX. */
char *tq_msg_encode(const tq_msg *m, size_t *len);

/* For JSON written by hand: s (n bytes) as a JSON string (invalid UTF-8
 * becomes U+FFFD); ms / 1000 with millisecond precision ("1764096000.001"),
 * written without printf; any JSON value as tq_msg_dump_json() writes it. */
void tq_msg_put_string(tq_buf *b, const char *s, size_t n);
void tq_msg_put_ms(tq_buf *b, int64_t ms);
void tq_msg_put_json(tq_buf *b, const json_t *v);

/* Encodes any JSON value compactly with the shortest number forms that
 * read back to the same double (0.1, not 0.10000000000000001). Returns a new
 * string (free() it) or NULL when out of memory. */
char *tq_msg_dump_json(const json_t *v, size_t *len);

/* Builds a dead letter: {"reason":..,"error":..,"worker":..,"dead_at":..,
 * "message":<the raw message>}. The raw bytes are kept whole: as a JSON
 * string when they are valid UTF-8 without NUL, else as "message_base64".
 * The result is valid JSON whatever the bytes (invalid UTF-8 in reason,
 * error or worker becomes U+FFFD; a dead_at that is not finite is null).
 * Returns a new string (free() it) or NULL when out of memory. */
char *tq_msg_dead_letter(const char *raw, size_t rawlen, const char *reason,
                         const char *error, const char *worker, double now_s,
                         size_t *len);

#endif
