#!/usr/bin/env bash
# Retries: a failing task is retried through P:delayed with growing, jittered
# delays, every attempt's error is kept, and after the last attempt it is a
# dead letter with its errors; the events of a task's life come in order.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
tq_spawn worker "$TICKQ_WORKER_BIN" -c 2 --retry-base 0.4 --retry-cap 10

# 3 retries: attempts 1..4, delays drawn from [0, 0.4], [0, 0.8], [0, 1.6].
rcli LPUSH "$P:{default}:queue" "$(tq_msg f1 fail '[]' '"max_retries":3')" >/dev/null
tq_wait_for 15 "f1 dead after 4 attempts" '[ "$(rcli LLEN "$P:{default}:dead")" = 1 ]'
dead=$(rcli LINDEX "$P:{default}:dead" 0)
tq_assert_eq "dead letter reason" max-retries "$(echo "$dead" | jq -r .reason)"
msg=$(echo "$dead" | jq -r .message)
tq_assert_eq "attempt in the dead message" 4 "$(echo "$msg" | jq .attempt)"
tq_assert_eq "errors kept, one per attempt" "1 2 3 4" "$(echo "$msg" | jq -r '[.errors[].attempt] | join(" ")')"
tq_assert_eq "each error" "fail: this task always fails" "$(echo "$msg" | jq -r '.errors | map(.error) | unique | join(",")')"
tq_assert_eq "result status" failure "$(tq_result f1 .status)"
tq_assert_eq "result attempt" 4 "$(tq_result f1 .attempts)"
tq_assert_eq "result errors" 4 "$(tq_result f1 '.errors | length')"
tq_assert_eq "done: its final result" failure "$(tq_done "f1")"
tq_assert_eq "nothing left delayed" 0 "$(rcli ZCARD "$P:{default}:delayed")"
# The gaps between attempts stay within their full-jitter windows.
echo "$msg" | jq -r '.errors[].finished' | awk '
    NR > 1 { gap = $1 - prev; cap = 0.4 * 2 ^ (NR - 2) + 0.35
             if (gap < 0 || gap > cap) { print "gap " NR-1 ": " gap " > " cap; bad = 1 } }
    { prev = $1 } END { exit bad }' || tq_fail "retry gaps outside their windows"
# fail is a fast task: each attempt's only event is its outcome.
tq_assert_eq "events of f1" "task-retried task-retried task-retried task-failed task-dead" \
    "$(tq_events f1 | tr '\n' ' ' | sed 's/ $//')"

# max_retries 0: straight to the dead letters, no retry.
rcli LPUSH "$P:{default}:queue" "$(tq_msg f0 fail '[]' '"max_retries":0')" >/dev/null
tq_wait_for 5 "f0 dead" '[ "$(rcli LLEN "$P:{default}:dead")" = 2 ]'
tq_assert_eq "f0 attempts" 1 "$(tq_result f0 .attempts)"

# The worker's default (--max-retries, 3 here by default) when the message
# has none; a task that fails once then succeeds is not dead.
rcli SET "$P:{default}:counter:flaky" 0 >/dev/null
rcli LPUSH "$P:{default}:queue" "$(tq_msg f2 fail)" >/dev/null
tq_wait_for 20 "f2 dead after the default 3 retries" '[ "$(rcli LLEN "$P:{default}:dead")" = 3 ]'
tq_assert_eq "f2 attempts (default max_retries 3)" 4 "$(tq_result f2 .attempts)"

# A successful task's life: noop is fast, its outcome is its only event.
rcli LPUSH "$P:{default}:queue" "$(tq_msg ok1 noop)" >/dev/null
tq_wait_for 5 "ok1 done" '[ "$(tq_done "ok1")" = success ]'
tq_assert_eq "events of ok1" "task-succeeded" "$(tq_events ok1 | tr '\n' ' ' | sed 's/ $//')"
tq_assert_eq "retried counter" 6 "$(rcli HGET "$P:{default}:stats" retried)"
