#!/usr/bin/env bash
# Tasks written in C and loaded with --tasks: the example library's tasks
# run (output, exactly-once counter); a bad library is a configuration error
# (exit 2); and a message that crashes its worker every time (test.crash)
# ends in the dead letters as poison after --max-deliveries deliveries.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX

tq_spawn w1 "$TICKQ_WORKER_BIN" -c 2 --tasks "$TICKQ_EXAMPLE_TASKS"
for i in 1 2 3; do rcli LPUSH "$P:{default}:queue" "$(tq_msg h$i example.hello '["world"]')" >/dev/null; done
tq_wait_for 5 "three greetings" '[ "$(rcli GET "$P:{default}:counter:example.greetings")" = 3 ]'
tq_assert_eq "h1 output" "hello, world (attempt 1)" "$(tq_result h1 .output | head -n1)"
rcli LPUSH "$P:{default}:queue" "$(tq_msg w1 example.work '[5]' '"timeout":0.5,"max_retries":0')" >/dev/null
tq_wait_for 5 "w1 stopped at its limit" '[ -n "$(tq_done "w1")" ]'
tq_result w1 .error | grep -q "timed out after 0.500 s: example.work: stopped" || tq_fail "w1 error: $(tq_result w1 .error)"
kill -TERM "$TQ_LAST_PID"; wait "$TQ_LAST_PID"

for bad in /no/such/lib.so "$TICKQ_WORKER_BIN"; do
    rc=0; "$TICKQ_WORKER_BIN" --tasks "$bad" 2>"$TQ_TMP/err" || rc=$?
    tq_assert_eq "--tasks $bad exit code" 2 "$rc"
    grep -q -- "--tasks" "$TQ_TMP/err" || tq_fail "the error does not name --tasks: $(cat "$TQ_TMP/err")"
done

# Poison: each delivery kills the worker; the reaper (liveness 2 s) counts
# the redelivery; the 4th delivery (max 3) goes to the dead letters.
dead0=$(rcli LLEN "$P:{default}:dead")
rcli LPUSH "$P:{default}:queue" "$(tq_msg boom test.crash)" >/dev/null
tq_spawn helper "$TICKQ_WORKER_BIN" -c 1 -Q unused --liveness 2   # the reaper
for round in 1 2 3 4 5 6; do
    [ "$(rcli LLEN "$P:{default}:dead")" = $((dead0 + 1)) ] && break
    tq_spawn crash$round "$TICKQ_WORKER_BIN" -c 1 --liveness 2 --max-deliveries 3 --tasks "$TICKQ_TEST_TASKS"
    pid=$TQ_LAST_PID
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    tq_wait_for 10 "boom requeued or dead" '[ "$(rcli LLEN "$P:{default}:queue")" = 1 ] || [ "$(rcli LLEN "$P:{default}:dead")" = $((dead0 + 1)) ]'
done
tq_assert_eq "poison dead letter" poison "$(rcli LINDEX "$P:{default}:dead" 0 | jq -r .reason)"
rcli LINDEX "$P:{default}:dead" 0 | jq -r .error | grep -q "delivered 4 times; the limit is 3" || tq_fail "$(rcli LINDEX "$P:{default}:dead" 0)"
tq_assert_eq "boom's message kept" boom "$(rcli LINDEX "$P:{default}:dead" 0 | jq -r .message | jq -r .id)"
tq_assert_eq "delivery counter cleared" 0 "$(rcli HLEN "$P:{default}:deliveries")"
