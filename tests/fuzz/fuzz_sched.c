/* Fuzzes schedule definitions (common/sched): any bytes through
 * tq_sched_decode_text(), the decoder a schedules file and P:schedules go
 * through. A definition it accepts must encode to a canonical definition
 * that decodes to the same schedule (and encodes to the same bytes), have
 * next and prev ticks on the right side of the instant asked, and make
 * messages that the worker can decode. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/msg.h"
#include "common/sched.h"

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_sched: %s failed: ", #cond);                           \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static void check_same(const tq_sched *a, const tq_sched *b, const char *text)
{
    CHECK(strcmp(a->name, b->name) == 0, "name: %s", text);
    CHECK(strcmp(a->task, b->task) == 0, "task: %s", text);
    CHECK(strcmp(a->queue, b->queue) == 0, "queue: %s", text);
    CHECK(a->rule.kind == b->rule.kind, "kind: %s", text);
    if (a->rule.kind == TQ_SCHED_EVERY) {
        CHECK(a->rule.every_ms == b->rule.every_ms, "every %lld, %lld: %s",
              (long long)a->rule.every_ms, (long long)b->rule.every_ms, text);
    } else {
        CHECK(strcmp(a->cron, b->cron) == 0 && strcmp(a->tz, b->tz) == 0 &&
                  a->rule.zone == b->rule.zone &&
                  memcmp(&a->rule.cron, &b->rule.cron, sizeof a->rule.cron) == 0,
              "cron: %s", text);
    }
    CHECK(a->catchup == b->catchup, "catchup: %s", text);
    CHECK(json_equal(a->args, b->args) && json_equal(a->kwargs, b->kwargs),
          "args or kwargs: %s", text);
    CHECK(a->timeout == b->timeout, "timeout %.17g, %.17g: %s", a->timeout, b->timeout,
          text);
    CHECK(a->max_retries == b->max_retries, "max_retries: %s", text);
    CHECK(a->expires == b->expires, "expires %.17g, %.17g: %s", a->expires, b->expires,
          text);
    CHECK(a->enabled == b->enabled, "enabled: %s", text);
}

/* The message of a tick decodes to what the schedule says. */
static void check_message(const tq_sched *s, int64_t tick, int64_t now)
{
    tq_msg m, back;
    char err[512] = "";
    CHECK(tq_sched_message(s, tick, now, &m) == 0, "no message");
    size_t len = 0;
    char *text = tq_msg_encode(&m, &len);
    CHECK(text, "the message of '%s' at %lld does not encode", s->name, (long long)tick);
    CHECK(tq_msg_decode(&back, text, len, err, sizeof err) == 0,
          "the message of '%s' at %lld does not decode (%s): %s", s->name,
          (long long)tick, err, text);
    CHECK(strcmp(back.task, s->task) == 0 && strcmp(back.queue, s->queue) == 0 &&
              strcmp(back.schedule, s->name) == 0 && back.max_retries == s->max_retries &&
              back.timeout == s->timeout,
          "the message of '%s' differs: %s", s->name, text);
    tq_msg_deinit(&back);
    tq_msg_deinit(&m);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tq_sched s, back;
    char err[512];
    memset(err, 'x', sizeof err);
    /* The beat's --tz, for cron schedules that name no zone. */
    const char *default_tz = size % 2 ? "Europe/Berlin" : NULL;
    int rc =
        tq_sched_decode_text(&s, (const char *)data, size, default_tz, err, sizeof err);
    if (rc < 0) {
        CHECK(rc == TQ_EDECODE && memchr(err, '\0', sizeof err) && err[0], "rc %d", rc);
        CHECK(!s.args && !s.kwargs, "a failed decode left owned fields");
        return 0;
    }

    size_t len = 0, len2 = 0;
    char *text = tq_sched_encode(&s, &len);
    CHECK(text && len == strlen(text), "encode");
    /* Canonical: it names its zone, so any --tz gives the same schedule. */
    CHECK(tq_sched_decode_text(&back, text, len, "America/New_York", err, sizeof err) ==
              0,
          "its encoding does not decode (%s): %s", err, text);
    check_same(&s, &back, text);
    char *text2 = tq_sched_encode(&back, &len2);
    CHECK(text2 && len2 == len && memcmp(text, text2, len) == 0,
          "the second encoding differs:\n%s\n%s", text, text2 ? text2 : "(null)");
    free(text2);
    tq_sched_deinit(&back);

    /* Ticks around a few instants (ms), from 1970 to 9999. */
    static const int64_t at[] = {0, 1774744200123, 1792890000000, 4102444800000,
                                 253402300000000};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        int64_t n = tq_sched_next(&s, at[i]);
        CHECK(n == TQ_SCHED_NEVER || n > at[i], "next(%lld) = %lld: %s", (long long)at[i],
              (long long)n, text);
        int64_t p = tq_sched_prev(&s, at[i]);
        CHECK(p == TQ_SCHED_NEVER || p <= at[i], "prev(%lld) = %lld: %s",
              (long long)at[i], (long long)p, text);
        if (n != TQ_SCHED_NEVER && p != TQ_SCHED_NEVER)
            CHECK(tq_sched_next(&s, p) == n, "next(prev(%lld)) = %lld, next is %lld: %s",
                  (long long)at[i], (long long)tq_sched_next(&s, p), (long long)n, text);
        if (n != TQ_SCHED_NEVER && n < 253402300800000 - 31536000000LL)
            check_message(&s, n, at[i] > 0 ? at[i] : n);
    }
    free(text);
    tq_sched_deinit(&s);
    return 0;
}
