#!/usr/bin/env bash
# SIGTERM stops a worker gracefully: no new tasks, running ones finish within
# --grace, the rest is requeued with its locks released, exit code 0, and the
# worker leaves P:workers. A second signal stops at once. With Redis away,
# the stop still ends, after the grace period.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
msg() { echo "{\"v\":1,\"id\":\"$1\",\"task\":\"sleep\",\"args\":[$2],\"queue\":\"q\"}"; }

stop_and_time() { # PID -> sets rc (exit code) and secs
    local t0=$SECONDS
    rc=0
    kill -TERM "$1"
    wait "$1" || rc=$?
    secs=$((SECONDS - t0))
}

# (a) a 2 s task finishes within the 10 s grace.
rcli LPUSH "$P:{q}:queue" "$(msg a1 2)" >/dev/null
tq_spawn wa "$TICKQ_WORKER_BIN" -c 2 -Q q --worker-id wa --grace 10
tq_wait_for 5 "a1 running" '[ "$(rcli LLEN "$P:{q}:processing:wa")" = 1 ]'
stop_and_time "$TQ_LAST_PID"
tq_assert_eq "exit code after SIGTERM" 0 "$rc"
tq_assert_eq "a1 finished during the grace" success "$(tq_done "a1")"
[ "$secs" -le 4 ] || tq_fail "stop took ${secs}s"
tq_assert_eq "wa deregistered" "" "$(rcli ZSCORE "$P:{@}:workers" wa)"
tq_assert_eq "wa's processing list gone" 0 "$(rcli EXISTS "$P:{q}:processing:wa")"

# (b) a 30 s task outlives a 1 s grace: it is requeued, its lock released.
rcli LPUSH "$P:{q}:queue" "$(msg b1 30)" >/dev/null
tq_spawn wb "$TICKQ_WORKER_BIN" -c 1 -Q q --worker-id wb --grace 1
tq_wait_for 5 "b1 running" '[ "$(rcli LLEN "$P:{q}:processing:wb")" = 1 ]'
stop_and_time "$TQ_LAST_PID"
tq_assert_eq "exit code after SIGTERM" 0 "$rc"
[ "$secs" -le 3 ] || tq_fail "stop took ${secs}s with a 1 s grace"
tq_assert_eq "b1 back in its queue" 1 "$(rcli LLEN "$P:{q}:queue")"
tq_assert_eq "b1 not done" "" "$(tq_done "b1")"
tq_assert_eq "b1's lock released" 0 "$(rcli EXISTS "$P:{q}:lock:b1")"
tq_assert_eq "requeued counter" 1 "$(rcli HGET "$P:{q}:stats" requeued)"

# (c) a second SIGTERM stops at once, even with a long grace.
tq_spawn wc "$TICKQ_WORKER_BIN" -c 1 -Q q --worker-id wc --grace 60
pid=$TQ_LAST_PID
tq_wait_for 5 "b1 running again" '[ "$(rcli LLEN "$P:{q}:processing:wc")" = 1 ]'
t0=$SECONDS
kill -TERM "$pid"; sleep 0.3; kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
tq_assert_eq "exit code after two signals" 0 "$rc"
[ $((SECONDS - t0)) -le 3 ] || tq_fail "second signal did not stop at once"
tq_assert_eq "b1 requeued again" 1 "$(rcli LLEN "$P:{q}:queue")"

# (d) SIGINT behaves like SIGTERM; an idle worker stops within about a second.
tq_spawn wd "$TICKQ_WORKER_BIN" -c 2 -Q idle --worker-id wd
tq_wait_for 5 "wd registered" '[ -n "$(rcli ZSCORE "$P:{@}:workers" wd)" ]'
t0=$SECONDS; kill -INT "$TQ_LAST_PID"; rc=0; wait "$TQ_LAST_PID" || rc=$?
tq_assert_eq "exit code after SIGINT" 0 "$rc"
[ $((SECONDS - t0)) -le 3 ] || tq_fail "idle stop took too long"

# (e) Redis away: the worker cannot deregister, and still stops once the
# grace is over (it waited for Redis forever before), leaving the rest to
# the reaper.
tq_spawn we "$TICKQ_WORKER_BIN" -c 1 -Q idle --worker-id we --grace 2
tq_wait_for 5 "we registered" '[ -n "$(rcli ZSCORE "$P:{@}:workers" we)" ]'
tq_redis_stop
sleep 0.5
stop_and_time "$TQ_LAST_PID"
tq_assert_eq "exit code after SIGTERM with redis away" 0 "$rc"
[ "$secs" -le 8 ] || tq_fail "stop with redis away took ${secs}s (grace 2 s)"
grep -q "the reaper will do it" "$TQ_TMP/we.log" ||
    tq_fail "no line saying the reaper will requeue: $(tail -3 "$TQ_TMP/we.log")"
