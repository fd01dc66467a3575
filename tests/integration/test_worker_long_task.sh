#!/usr/bin/env bash
# A 60 s task on a live worker is never run a second time, however long it
# runs past the liveness window (3 s here): its worker keeps heartbeating
# and keeps its lock alive, so neither the reaper nor another worker touches
# it (unlike a visibility timeout, celery#5935).
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
tq_spawn w1 "$TICKQ_WORKER_BIN" -c 2 --liveness 3 --worker-id w1
tq_spawn w2 "$TICKQ_WORKER_BIN" -c 2 --liveness 3 --worker-id w2
tq_wait_for 5 "two workers" '[ "$(rcli ZCARD "$P:{@}:workers")" = 2 ]'
rcli LPUSH "$P:{default}:queue" "$(tq_msg long1 sleep '[60]' '"timeout":120')" >/dev/null
tq_wait_for 5 "long1 taken" '[ -n "$(rcli GET "$P:{default}:lock:long1")" ]'
owner=$(rcli GET "$P:{default}:lock:long1")
tq_log "long1 runs on $owner"
# A stray duplicate of the same id, pushed while it runs, is dropped.
sleep 20
rcli LPUSH "$P:{default}:queue" "$(tq_msg long1 sleep '[60]' '"timeout":120')" >/dev/null
tq_wait_for 75 "long1 done" '[ "$(tq_done "long1")" = success ]'
sleep 2
tq_assert_eq "ran by its first worker" "$owner" "$(tq_result long1 .worker)"
tq_assert_eq "one attempt" 1 "$(tq_result long1 .attempts)"
tq_assert_eq "started once" 1 "$(tq_events long1 | grep -c '^task-started$')"
tq_assert_eq "received once" 1 "$(tq_events long1 | grep -c '^task-received$')"
tq_assert_eq "nothing requeued" "" "$(rcli HGET "$P:{default}:stats" requeued)"
tq_assert_eq "the duplicate dropped" 1 "$(rcli HGET "$P:{default}:stats" duplicates)"
tq_assert_eq "queue empty" 0 "$(rcli LLEN "$P:{default}:queue")"
# Runtime is wall-clock ms at both ends, each truncated: 60 s reads 59.999.
awk -v r="$(tq_result long1 .runtime)" 'BEGIN { exit !(r >= 59.99 && r < 62) }' || tq_fail "runtime $(tq_result long1 .runtime)"
