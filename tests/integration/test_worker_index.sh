#!/usr/bin/env bash
# The monitoring data a worker writes at completion, for tickq-web: the
# finished-task index P:tasks (exact members, capped at 100 000), the
# per-minute counters P:minute:<m>, the labelled counters and histograms in
# P:metrics (an unknown task labelled "(unknown)", runtime buckets that add
# up to the runs, the lateness of scheduled first attempts), the `queue`
# field of task events, and keys of the wrong type that are skipped with a
# warning instead of stopping the work.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
TAB=$'\t'

# rj CMD...: a redis reply as JSON.
rj() { rcli --json "$@"; }
# metric FIELD: a P:metrics field ("" when absent); fields are TAB-separated.
# Each queue keeps its own (this test's: default and reports); these read
# both, as tickq-web does.
QS=(default reports)
# metrics_all: both queues' P:{q}:metrics as one JSON object.
metrics_all() { for q in "${QS[@]}"; do rj HGETALL "$P:{$q}:metrics"; done | jq -s add; }
metric() { metrics_all | jq -r --arg f "$1" '.[$f] // ""'; }
# tasks_all [WITHSCORES]: both queues' P:{q}:tasks as one JSON array.
tasks_all() { for q in "${QS[@]}"; do rj ZRANGE "$P:{$q}:tasks" 0 -1 "$@"; done | jq -cs add; }
# events_all: both queues' event streams, in id order.
events_all() {
    for q in "${QS[@]}"; do rj XRANGE "$P:{$q}:events" - +; done |
        jq -cs 'add | sort_by(.[0] | split("-") | map(tonumber))'
}
# minutes FIELD [QUEUE]: that counter summed over every P:{q}:minute:<m>
# key (of every queue, or of QUEUE).
minutes() {
    local k sum=0 v
    local q=${2:-*}
    for k in $(rcli --scan --pattern "$P:{$q}:minute:*"); do
        v=$(rcli HGET "$k" "$1")
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

t0=$(date +%s%3N)
# Pushed before the worker starts, so that the first fetch takes a batch.
# Two queues: default, and reports for a plugin task that runs 30 ms (a
# slow task: its task-started event comes from C, not from the script).
rcli LPUSH "$P:{default}:queue" \
    "$(tq_msg ok1 noop)" \
    "$(tq_msg f1 fail '[]' '"max_retries":2')" \
    "$(tq_msg e1 noop '[]' '"expires_at":1')" \
    "$(tq_msg u1 no.such.task)" \
    "$(tq_msg s1 noop '[]' '"schedule":"nightly","scheduled_at":1764096000.000,"enqueued_at":1764096000.300')" \
    "$(tq_msg s2 noop '[]' '"schedule":"nightly","scheduled_at":1764096000.000,"enqueued_at":1764096100.000,"attempt":2')" \
    "$(tq_msg s3 noop '[]' '"schedule":"nightly","scheduled_at":1764096005.000,"enqueued_at":1764096000.000')" \
    >/dev/null
rcli LPUSH "$P:{reports}:queue" "$(tq_msg ok2 test.count '["c", 30]' '"queue":"reports"')" >/dev/null
tq_spawn worker "$TICKQ_WORKER_BIN" -c 2 -Q default,reports --retry-base 0.05 --retry-cap 0.1 \
    --tasks "$TICKQ_TEST_TASKS"
WPID=$TQ_LAST_PID

# (The snippet is eval'ed in this shell: its loop runs in a subshell, so
# that "not yet" is not an exit of the test.)
tq_wait_for 30 "every message completed" '[ "$(rcli LLEN "$P:{default}:dead")" = 2 ] &&
    (for id in ok1 ok2 e1 s1 s2 s3; do [ -n "$(tq_done "$id")" ] || exit 1; done)'
# One more through the blocking wait and claim (the queues are empty now),
# so that both delivery paths' events are looked at.
rcli LPUSH "$P:{default}:queue" "$(tq_msg ok3 noop)" >/dev/null
tq_wait_for 10 "ok3 done" '[ "$(tq_done "ok3")" = success ]'
t1=$(date +%s%3N)

# --- P:tasks: exactly one member per result written, newest score first.
expected=$(printf '%s\n' \
    "dead${TAB}default${TAB}fail${TAB}${TAB}f1" \
    "expired${TAB}default${TAB}noop${TAB}${TAB}e1" \
    "retrying${TAB}default${TAB}fail${TAB}${TAB}f1" \
    "success${TAB}default${TAB}noop${TAB}${TAB}ok1" \
    "success${TAB}default${TAB}noop${TAB}${TAB}ok3" \
    "success${TAB}default${TAB}noop${TAB}nightly${TAB}s1" \
    "success${TAB}default${TAB}noop${TAB}nightly${TAB}s2" \
    "success${TAB}default${TAB}noop${TAB}nightly${TAB}s3" \
    "success${TAB}reports${TAB}test.count${TAB}${TAB}ok2" | LC_ALL=C sort)
actual=$(tasks_all | jq -r '.[]' | LC_ALL=C sort)
tq_assert_eq "P:tasks members" "$expected" "$actual"
# Scores are the finished times (Unix ms) of this run, the same as the results'.
tasks_all WITHSCORES | jq -e --argjson a "$t0" --argjson b "$t1" \
    'all(.[]; .[1] >= $a and .[1] <= $b)' >/dev/null || tq_fail "a P:tasks score outside [$t0, $t1]"
for id in ok1 ok2 s1; do
    want=$(tq_result $id '(.finished * 1000 | round)')
    got=$(tasks_all WITHSCORES | jq -r --arg id "$id" \
        '.[] | select(.[0] | endswith("\t" + $id)) | .[1]')
    tq_assert_eq "P:tasks score of $id = its result's finished" "$want" "$got"
done
retrying=$(rcli ZSCORE "$P:{default}:tasks" "retrying${TAB}default${TAB}fail${TAB}${TAB}f1")
dead=$(rcli ZSCORE "$P:{default}:tasks" "dead${TAB}default${TAB}fail${TAB}${TAB}f1")
[ "$dead" -ge "$retrying" ] || tq_fail "f1 dead at $dead, before its retry at $retrying"

# --- P:minute:<m>: the counters of this run, whatever minutes it spans.
tq_assert_eq "minute processed (ok1 ok2 ok3 s1 s2 s3)" 6 "$(minutes processed)"
tq_assert_eq "minute retried (f1 twice)" 2 "$(minutes retried)"
tq_assert_eq "minute failed (f1's last run)" 1 "$(minutes failed)"
tq_assert_eq "minute dead (f1, u1)" 2 "$(minutes dead)"
tq_assert_eq "minute expired (e1)" 1 "$(minutes expired)"
for k in $(rcli --scan --pattern "$P:{*}:minute:*"); do
    m=${k##*:}
    [ "$m" -ge $((t0 / 60000)) ] && [ "$m" -le $((t1 / 60000)) ] ||
        tq_fail "minute key $k outside this run's minutes $((t0 / 60000))..$((t1 / 60000))"
    ttl=$(rcli TTL "$k")
    [ "$ttl" -gt 7000 ] && [ "$ttl" -le 7200 ] || tq_fail "TTL of $k is $ttl, not about 7200"
done
tq_log "ok: minute keys of this run, expiring in 2 hours"

# --- P:metrics: labelled counters.
tq_assert_eq "tasks default noop success" 5 "$(metric "tasks${TAB}default${TAB}noop${TAB}success")"
tq_assert_eq "tasks reports test.count success" 1 "$(metric "tasks${TAB}reports${TAB}test.count${TAB}success")"
tq_assert_eq "tasks default fail retried" 2 "$(metric "tasks${TAB}default${TAB}fail${TAB}retried")"
tq_assert_eq "tasks default fail failure" 1 "$(metric "tasks${TAB}default${TAB}fail${TAB}failure")"
tq_assert_eq "tasks default fail dead" 1 "$(metric "tasks${TAB}default${TAB}fail${TAB}dead")"
tq_assert_eq "tasks default noop expired" 1 "$(metric "tasks${TAB}default${TAB}noop${TAB}expired")"
tq_assert_eq "unknown task labelled (unknown)" 1 "$(metric "tasks${TAB}default${TAB}(unknown)${TAB}dead")"
tq_assert_eq "no label made from the unknown task's name" "" \
    "$(metrics_all | jq -r 'keys[] | select(contains("no.such.task"))')"
# Runtime histogram: each run that started is in exactly one bucket.
runtime_total() { # [LABELS]: the runs in every runtime bucket (of these labels)
    metrics_all | jq --arg l "${1:-}" \
        '[to_entries[] | select(.key | startswith("runtime\t" + $l)) |
          select(.key | startswith("runtime_sum") | not) | .value | tonumber] | add'
}
tq_assert_eq "runtime buckets: every started run (9: not e1 nor u1)" 9 "$(runtime_total)"
tq_assert_eq "runtime buckets of default noop" 5 "$(runtime_total "default${TAB}noop${TAB}")"
tq_assert_eq "runtime buckets of default fail" 3 "$(runtime_total "default${TAB}fail${TAB}")"
tq_assert_eq "runtime buckets of reports test.count" 1 "$(runtime_total "reports${TAB}test.count${TAB}")"
metrics_all | jq -e '[keys[] | select(startswith("runtime\t")) |
    split("\t")[3] | tonumber | select(. < 0 or . > 14)] | length == 0' >/dev/null ||
    tq_fail "a runtime bucket index outside 0..14"
sum=$(metric "runtime_sum${TAB}reports${TAB}test.count")
# (30 ms of the task's monotonic clock, in whole ms, can read 29 on the
# wall clock the worker measures with.)
awk -v s="$sum" 'BEGIN { exit !(s > 0.025 && s < 30) }' ||
    tq_fail "runtime_sum of test.count is '$sum', not the 30 ms it worked"
tq_log "ok: runtime_sum of test.count = $sum"
# test.count worked 30 ms: bucket 3 (0.025, 0.05] or later on a slow machine.
b=$(metrics_all | jq -r 'keys[] | select(startswith("runtime\treports\ttest.count\t")) | split("\t")[3]')
[ "$b" -ge 3 ] || tq_fail "test.count's 30 ms run in runtime bucket $b"
# Lateness: s1 published 0.3 s late (bucket 4: (0.25, 0.5]), s3 before its
# time (counted as 0: bucket 0); s2 is a retry and ok1 has no schedule.
tq_assert_eq "lateness bucket 4 (s1)" 1 "$(metric "lateness${TAB}4")"
tq_assert_eq "lateness bucket 0 (s3, early, clamped)" 1 "$(metric "lateness${TAB}0")"
tq_assert_eq "lateness observations" 2 \
    "$(metrics_all | jq '[to_entries[] | select(.key | startswith("lateness\t")) | .value | tonumber] | add')"
tq_assert_eq "lateness_sum" 0.3 "$(metric lateness_sum)"

# --- Events: every task event names its queue (both delivery paths, the
# library's outcome events and the received and started events of the slow
# task, recorded when it starts).
events=$(events_all | jq -c '.[] | .[1] as $a |
    reduce range(0; $a | length; 2) as $i ({}; .[$a[$i]] = $a[$i + 1])')
tq_assert_eq "task events without a queue field" 0 \
    "$(echo "$events" | jq -s '[.[] | select(.event | startswith("task-")) | select(has("queue") | not)] | length')"
tq_assert_eq "queues of ok2's events" "reports reports reports" \
    "$(echo "$events" | jq -rs '[.[] | select(.id == "ok2") | .queue] | join(" ")')"
tq_assert_eq "events of ok2" "task-received task-started task-succeeded" \
    "$(echo "$events" | jq -rs '[.[] | select(.id == "ok2") | .event] | join(" ")')"
tq_assert_eq "queues of u1's events (unknown task)" "default" \
    "$(echo "$events" | jq -rs '[.[] | select(.id == "u1") | .queue] | join(" ")')"
tq_assert_eq "queues of ok3's events (blocking wait, claim)" "default" \
    "$(echo "$events" | jq -rs '[.[] | select(.id == "ok3") | .queue] | join(" ")')"
tq_assert_eq "task event fields, in order" "event ts id task queue worker runtime error info" \
    "$(events_all | jq -r '[.[] | .[1] | select(.[1] | startswith("task-"))][0] |
        [range(0; length; 2) as $i | .[$i]] | join(" ")')"

# --- Keys of the wrong type are skipped with a warning; the work goes on.
# A script that failed halfway would leave the writes after the failing one
# undone and make the worker log that the tasks wait in processing; the
# script writes the minute keys, then P:metrics, then P:tasks, so each step
# breaks one and looks at a later write.
noop_success() { metric "tasks${TAB}default${TAB}noop${TAB}success"; }
m=$(( $(date +%s) / 60 ))
for i in -1 0 1 2; do rcli SET "$P:{default}:minute:$((m + i))" "not a hash" >/dev/null; done
rcli LPUSH "$P:{default}:queue" "$(tq_msg w1 noop)" >/dev/null
tq_wait_for 10 "w1 done despite minute keys of the wrong type" '[ "$(tq_done "w1")" = success ]'
for i in -1 0 1 2; do
    tq_assert_eq "minute key $((m + i)) left as it was" "not a hash" "$(rcli GET "$P:{default}:minute:$((m + i))")"
done
tq_wait_for 10 "the warning about the minute key" \
    "grep -qE 'complete: key $P:{default}:minute:[0-9]+ is a string, not a hash: that minute is not counted' '$TQ_TMP/worker.log'"
tq_assert_eq "w1 in P:metrics (written after the minutes)" 6 "$(noop_success)"
[ -n "$(rcli ZSCORE "$P:{default}:tasks" "success${TAB}default${TAB}noop${TAB}${TAB}w1")" ] || tq_fail "w1 not in P:tasks"

for i in -1 0 1 2; do rcli DEL "$P:{default}:minute:$((m + i))" >/dev/null; done
rcli SET "$P:{default}:metrics" "not a hash" >/dev/null
rcli LPUSH "$P:{default}:queue" "$(tq_msg w2 noop)" >/dev/null
tq_wait_for 10 "w2 done despite P:metrics of the wrong type" '[ "$(tq_done "w2")" = success ]'
tq_assert_eq "P:metrics left as it was" "not a hash" "$(rcli GET "$P:{default}:metrics")"
tq_assert_eq "w2 in the minute counters" 1 "$(minutes processed default)"
[ -n "$(rcli ZSCORE "$P:{default}:tasks" "success${TAB}default${TAB}noop${TAB}${TAB}w2")" ] ||
    tq_fail "w2 not in P:tasks (written after P:metrics)"
tq_log "ok: w2 in P:tasks"

rcli RENAME "$P:{default}:metrics" "$P:metrics-broken" >/dev/null
rcli SET "$P:{default}:tasks" "not a zset" >/dev/null
rcli LPUSH "$P:{default}:queue" "$(tq_msg w3 noop)" >/dev/null
tq_wait_for 10 "w3 done despite P:tasks of the wrong type" '[ "$(tq_done "w3")" = success ]'
tq_assert_eq "P:tasks left as it was" "not a zset" "$(rcli GET "$P:{default}:tasks")"
tq_assert_eq "w3 in P:metrics" 1 "$(noop_success)"
tq_assert_eq "w1 w2 w3 counted in P:stats" 9 \
    "$(($(rcli HGET "$P:{default}:stats" processed) + $(rcli HGET "$P:{reports}:stats" processed)))"
tq_assert_eq "completions refused (the worker's log)" 0 \
    "$(grep -c 'wait in processing until it is fixed' "$TQ_TMP/worker.log" || true)"
rcli DEL "$P:{default}:tasks" >/dev/null

# --- The cap: P:tasks keeps the newest TQ_METRICS_TASKS_MAX (100 000).
# Fill it with 100 010 old members (scores 1..100010), then complete one.
rcli EVAL "local n = tonumber(ARGV[1])
    for i = 1, n, 1000 do
      local a = {}
      for j = i, math.min(i + 999, n) do a[#a + 1] = j; a[#a + 1] = 'old' .. j end
      redis.call('ZADD', KEYS[1], unpack(a))
    end
    return redis.call('ZCARD', KEYS[1])" 1 "$P:{default}:tasks" 100010 >/dev/null
tq_assert_eq "P:tasks filled" 100010 "$(rcli ZCARD "$P:{default}:tasks")"
rcli LPUSH "$P:{default}:queue" "$(tq_msg c1 noop)" >/dev/null
tq_wait_for 10 "c1 done" '[ "$(tq_done "c1")" = success ]'
tq_assert_eq "P:tasks trimmed to the cap" 100000 "$(rcli ZCARD "$P:{default}:tasks")"
[ -n "$(rcli ZSCORE "$P:{default}:tasks" "success${TAB}default${TAB}noop${TAB}${TAB}c1")" ] ||
    tq_fail "the newest member c1 was trimmed"
tq_assert_eq "the 11 oldest removed" "" "$(rcli ZSCORE "$P:{default}:tasks" old11)"
tq_assert_eq "the 12th oldest kept" 12 "$(rcli ZSCORE "$P:{default}:tasks" old12)"

kill -0 "$WPID" || tq_fail "the worker died"
