#!/usr/bin/env bash
# A shell task dies with its worker: after a `kill -9` of the worker, no
# process of the task is left (its direct child and a grandchild in the
# background), so the reaper's redelivery never runs beside an old copy.
# A task's leftovers in its process group die when it ends, and a stopping
# worker leaves none either.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
W=$TQ_TMP/w
mkdir -p "$W"
# Whatever happens, no test process outlives the test (before the fix, the
# task's processes did).
trap 'rc=$?; set +e; for p in $(cat "$W"/*.pid* 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done; (exit $rc); tq_cleanup' EXIT

# alive PID: the process exists and is not a zombie (a zombie is dead, only
# not yet reaped by whatever PID 1 is here).
alive() {
    local s
    s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$s" ] && [ "$s" != Z ]
}
# none_alive FILE...: no pid listed in the files is alive.
none_alive() {
    local p
    for p in $(cat "$@" 2>/dev/null); do alive "$p" && return 1; done
    return 0
}
count_alive() {
    local p n=0
    for p in $(cat "$@" 2>/dev/null); do alive "$p" && n=$((n + 1)); done
    echo "$n"
}

# The task: a shell that records its pid, starts a grandchild in the
# background, records that, and waits. Every run appends to the same files.
task='echo $$ >>'"$W"'/sh.pids; sleep 300 & echo $! >>'"$W"'/bg.pids; wait'
push() { # ID SCRIPT [QUEUE]
    rcli LPUSH "$P:{${3:-default}}:queue" "$(tq_msg "$1" shell "[\"sh\",\"-c\",\"$2\"]" '"max_retries":0,"timeout":600')" >/dev/null
}

tq_spawn worker-a "$TICKQ_WORKER_BIN" -c 1 --liveness 3 --worker-id orphan-a
A=$TQ_LAST_PID
push o1 "$task"
tq_wait_for 60 "the task runs under worker a (two pids recorded)" \
    '[ "$(cat '"$W"'/sh.pids 2>/dev/null | wc -l)" = 1 ] && [ "$(cat '"$W"'/bg.pids 2>/dev/null | wc -l)" = 1 ]'
tq_assert_eq "processes of the first run alive" 2 "$(count_alive "$W/sh.pids" "$W/bg.pids")"

kill -KILL "$A"
t0=$(date +%s%N)
tq_wait_for 20 "no process of the task survives the worker's kill -9" none_alive "$W/sh.pids" "$W/bg.pids"
ms=$((($(date +%s%N) - t0) / 1000000))
tq_log "the task's processes were gone ${ms} ms after the kill -9"
[ "$ms" -lt 5000 ] || tq_fail "the task's processes outlived the worker by ${ms} ms"

# Worker b reaps a (liveness 3 s) and runs o1 again: its run must be alone.
tq_spawn worker-b "$TICKQ_WORKER_BIN" -c 1 --liveness 3 --grace 1 --worker-id orphan-b
B=$TQ_LAST_PID
tq_wait_for 90 "the redelivered o1 runs under worker b" \
    '[ "$(cat '"$W"'/sh.pids 2>/dev/null | wc -l)" = 2 ] && [ "$(cat '"$W"'/bg.pids 2>/dev/null | wc -l)" = 2 ]'
tq_assert_eq "live copies of the task while it is redelivered" 2 "$(count_alive "$W/sh.pids" "$W/bg.pids")"
tq_assert_eq "the first run is gone" 0 "$(count_alive <(head -n1 "$W/sh.pids") <(head -n1 "$W/bg.pids"))"

# A stopping worker (SIGTERM, grace 1 s) stops the task and its grandchild.
kill -TERM "$B"
tq_wait_for 60 "worker b stops" '! kill -0 '"$B"
tq_wait_for 20 "nothing of the second run is left after a graceful stop" none_alive "$W/sh.pids" "$W/bg.pids"

# A task that ends while a grandchild still runs in its process group: the
# leftover is killed when the task ends (like systemd's KillMode=control-group).
# (Queue "other": b's graceful stop put o1 back in "default".)
tq_spawn worker-c "$TICKQ_WORKER_BIN" -c 1 --worker-id orphan-c -Q other
push o2 'sleep 300 & echo $! >'"$W"'/left.pid; echo started' other
tq_wait_for 60 "o2 finished" "[ -n \"\$(tq_done o2)\" ]"
tq_assert_eq "o2 status" success "$(tq_result o2 .status)"
tq_wait_for 20 "o2's background sleep is gone after the task ended" none_alive "$W/left.pid"

# A program that cannot run still says why, with exit code 127.
push o3 'true' other
tq_wait_for 60 "o3 finished" "[ -n \"\$(tq_done o3)\" ]"
tq_assert_eq "o3 status" success "$(tq_result o3 .status)"
rcli LPUSH "$P:{other}:queue" "$(tq_msg o4 shell '["/no/such/program"]' '"max_retries":0')" >/dev/null
tq_wait_for 60 "o4 finished" "[ -n \"\$(tq_done o4)\" ]"
tq_assert_eq "o4 exit code" 127 "$(tq_result o4 .exit_code)"
tq_result o4 .error | grep -q "cannot run '/no/such/program'" || tq_fail "o4 error: $(tq_result o4 .error)"
