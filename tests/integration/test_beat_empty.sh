#!/usr/bin/env bash
# An empty schedule set (issue 8, defect 12): the beat starts, leads and
# runs with P:schedules absent (Redis has no empty hash), and with a
# schedules file that holds none, {"schedules": []}. In the ASan+UBSan
# build, a qsort(NULL, 0, ...) once stopped it; lib.sh fails the test on any
# sanitizer report in a log. A bare [] or {} is not a schedules file (the
# format is {"schedules": [...]}): a clear error and exit 2. A schedule
# added to an empty set is published.
. "$(dirname "$0")/lib.sh"

tq_redis_start
tq_require_empty
P=$TQ_PREFIX

# run_empty NAME [ARGS...]: starts a beat, waits until it has loaded the
# (empty) set and made a few passes, then stops it: it must exit 0.
run_empty() {
    local name=$1 pid; shift
    tq_spawn "$name" "$TICKQ_BEAT" --beat-id "$name" --lease 1 "$@"
    pid=$TQ_LAST_PID
    tq_wait_for 30 "$name: loaded 0 schedules" \
        "grep -q 'loaded 0 schedules' '$TQ_TMP/$name.log'"
    tq_wait_for 30 "$name: leads" "[ \"\$(rcli GET '$P:{@}:leader')\" = '$name' ]"
    sleep 1.5 # a few more passes, a lease renewal and change checks
    kill -0 "$pid" || tq_fail "$name: the beat stopped by itself"
    kill -TERM "$pid"
    wait "$pid" || tq_fail "$name: exit code $? after SIGTERM"
    tq_log "ok: $name: started, led and stopped with no schedule"
}

run_empty absent
echo '{"schedules": []}' >"$TQ_TMP/empty-list.json"
run_empty file-empty-list --schedules "$TQ_TMP/empty-list.json"
for text in '[]' '{}'; do
    echo "$text" >"$TQ_TMP/bare.json"
    rc=0
    timeout 60 "$TICKQ_BEAT" --schedules "$TQ_TMP/bare.json" >"$TQ_TMP/bare.out.log" \
        2>"$TQ_TMP/bare.err.log" || rc=$?
    tq_assert_eq "exit code for a file of $text" 2 "$rc"
    grep -q 'must be an object with an array "schedules"' "$TQ_TMP/bare.err.log" ||
        tq_fail "file of $text: $(cat "$TQ_TMP/bare.err.log")"
done
tq_assert_eq "nothing written to P:schedules" 0 "$(rcli EXISTS "$P:{@}:schedules")"

# From nothing to one schedule while running.
tq_spawn late "$TICKQ_BEAT" --beat-id late
tq_wait_for 30 "late: loaded 0 schedules" "grep -q 'loaded 0 schedules' '$TQ_TMP/late.log'"
rcli HSET "$P:{@}:schedules" one '{"name": "one", "task": "noop", "every": 0.5, "queue": "one"}' >/dev/null
tq_wait_for 30 "a schedule added to an empty set is published" \
    '[ "$(rcli LLEN "$P:{one}:queue")" -ge 1 ]'
rcli HDEL "$P:{@}:schedules" one >/dev/null
tq_wait_for 30 "the set is empty again" "grep -q \"schedule 'one' removed\" '$TQ_TMP/late.log'"
sleep 1
kill -TERM "$TQ_LAST_PID"
wait "$TQ_LAST_PID" || tq_fail "late: exit code $? after SIGTERM"
tq_log "ok: a schedule added to and removed from an empty set"
