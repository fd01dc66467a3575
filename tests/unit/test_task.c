/* Tests of common/task.h, the API for tasks written in C: the output keeps
 * its last TQ_TASK_OUTPUT_MAX bytes, errors are formatted and cut, counter
 * names are checked, and tq_task_should_stop() tells a time limit from a
 * shutdown. */
#include "tests/support/check.h"

#include <stdlib.h>

#include "common/task.h"

static void ctx_init(tq_task_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->deadline_mono_ms = tq_task_now_ms() + 60000;
    ctx->exit_code = -1;
}

static void test_output_keeps_the_tail(void **state)
{
    (void)state;
    tq_task_ctx ctx;
    ctx_init(&ctx);
    tq_task_write(&ctx, "abc", 3);
    tq_task_write(&ctx, "def", 3);
    TQ_ASSERT_INT(ctx.output_len, 6);
    assert_memory_equal(ctx.output, "abcdef", 6);

    /* Filling past the limit drops the oldest bytes. */
    char big[TQ_TASK_OUTPUT_MAX];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    tq_task_write(&ctx, big, sizeof big - 2);
    TQ_ASSERT_INT(ctx.output_len, TQ_TASK_OUTPUT_MAX);
    assert_memory_equal(ctx.output, "ef", 2); /* "abcd" dropped */
    assert_memory_equal(ctx.output + 2, big, sizeof big - 2);

    /* One write larger than the limit keeps its own end. */
    char *huge = malloc(3 * TQ_TASK_OUTPUT_MAX);
    assert_non_null(huge);
    memset(huge, 'x', 3 * TQ_TASK_OUTPUT_MAX);
    memcpy(huge + 3 * TQ_TASK_OUTPUT_MAX - 3, "END", 3);
    tq_task_write(&ctx, huge, 3 * TQ_TASK_OUTPUT_MAX);
    TQ_ASSERT_INT(ctx.output_len, TQ_TASK_OUTPUT_MAX);
    assert_memory_equal(ctx.output + TQ_TASK_OUTPUT_MAX - 3, "END", 3);
    free(huge);
}

static void test_fail_formats_and_cuts(void **state)
{
    (void)state;
    tq_task_ctx ctx;
    ctx_init(&ctx);
    TQ_ASSERT_INT(tq_task_fail(&ctx, "no such file: %s (%d)", "/x", 2), -1);
    TQ_ASSERT_STR(ctx.error, "no such file: /x (2)");
    char longtext[2 * TQ_TASK_ERROR_MAX];
    memset(longtext, 'e', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    tq_task_fail(&ctx, "%s", longtext);
    TQ_ASSERT_INT(strlen(ctx.error), TQ_TASK_ERROR_MAX - 1);
}

static void test_count_checks_the_name(void **state)
{
    (void)state;
    tq_task_ctx ctx;
    ctx_init(&ctx);
    TQ_ASSERT_INT(tq_task_count(&ctx, "jobs.done:v2", 3), 0);
    TQ_ASSERT_STR(ctx.counter, "jobs.done:v2");
    TQ_ASSERT_INT(ctx.counter_by, 3);
    TQ_ASSERT_INT(tq_task_count(&ctx, "", 1), -1);
    TQ_ASSERT_CONTAINS(ctx.error, "counter name");
    TQ_ASSERT_INT(tq_task_count(&ctx, "a b", 1), -1);
    char longname[TQ_TASK_NAME_MAX + 1];
    memset(longname, 'n', TQ_TASK_NAME_MAX);
    longname[TQ_TASK_NAME_MAX] = '\0';
    TQ_ASSERT_INT(tq_task_count(&ctx, longname, 1), -1);
    longname[TQ_TASK_NAME_MAX - 1] = '\0'; /* 128 bytes fit */
    TQ_ASSERT_INT(tq_task_count(&ctx, longname, 1), 0);
}

static void test_should_stop(void **state)
{
    (void)state;
    tq_task_ctx ctx;
    volatile sig_atomic_t stop = 0;
    _Atomic int64_t grace_end = 0;
    ctx_init(&ctx);
    ctx.stop = &stop;
    ctx.grace_end_ms = &grace_end;
    TQ_ASSERT_INT(tq_task_should_stop(&ctx), 0);

    /* A first signal alone does not stop a task: the grace does. */
    stop = 1;
    atomic_store(&grace_end, tq_task_now_ms() + 60000);
    TQ_ASSERT_INT(tq_task_should_stop(&ctx), 0);
    atomic_store(&grace_end, tq_task_now_ms() - 1);
    TQ_ASSERT_INT(tq_task_should_stop(&ctx), 1);
    TQ_ASSERT_INT(ctx.aborted, 1);
    TQ_ASSERT_INT(ctx.timed_out, 0);

    /* A second signal stops at once. */
    ctx_init(&ctx);
    ctx.stop = &stop;
    stop = 2;
    TQ_ASSERT_INT(tq_task_should_stop(&ctx), 1);
    TQ_ASSERT_INT(ctx.aborted, 1);

    /* The time limit. */
    ctx_init(&ctx);
    ctx.deadline_mono_ms = tq_task_now_ms() - 1;
    TQ_ASSERT_INT(tq_task_should_stop(&ctx), 1);
    TQ_ASSERT_INT(ctx.timed_out, 1);
    TQ_ASSERT_INT(ctx.aborted, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_keeps_the_tail),
        cmocka_unit_test(test_fail_formats_and_cuts),
        cmocka_unit_test(test_count_checks_the_name),
        cmocka_unit_test(test_should_stop),
    };
    return cmocka_run_group_tests_name("task", tests, NULL, NULL);
}
