#!/usr/bin/env bash
# GET /metrics against a real system (redis-server, tickq-beat with a 1 s
# schedule, tickq-worker with the test tasks, tickq-web), every scrape
# parsed by Debian's python3-prometheus-client (prom_check.py, which also
# checks names, types, HELP, duplicates and histogram rules): the families
# and their types; tasks, runtime and lateness equal to what P:metrics holds
# (buckets cumulative, _count = +Inf bucket = runs); the timer's tick count
# against P:counter:timer; a paused queue's depth against LLEN and /api/queues;
# workers alive, then dead after kill -9 past --liveness; the beat leader and
# the schedule's last run; P:stats; keys of the wrong type leave the other
# series intact. Then, on a second prefix with data written by hand: label
# escaping and invalid UTF-8, bad fields, the time of a scrape with 1000
# series, the cap of 10 000 samples a family, a P:metrics too big to read,
# and 503 when Redis is gone. Needs jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || tq_fail "jq is required (apt-get install -y jq)"
PY=/usr/bin/python3
PROM_CHECK="$(cd "$(dirname "$0")" && pwd)/prom_check.py"
"$PY" -c 'from prometheus_client.parser import text_string_to_metric_families' ||
    tq_fail "python3-prometheus-client is required (apt-get install -y python3-prometheus-client)"

tq_redis_start
tq_require_empty
P=$TQ_PREFIX
S=$TQ_PREFIX-syn # the second part's prefix: data written by hand
n=$(rcli --scan --pattern "$S:*" | wc -l)
[ "$n" -eq 0 ] || tq_fail "namespace $S is not empty ($n keys)"

now_ms() { date +%s%3N; }

# scrape BASE NAME: GET BASE/metrics into $TQ_TMP/NAME.txt; the status must
# be 200 with the 0.0.4 Content-Type and prom_check must pass (with
# "--hash FILE" as more arguments, it also compares with that P:metrics
# dump). Sets CUR (the parsed JSON) and SCRAPE_S (curl's time_total).
scrape() {
    local base=$1 name=$2 out code ctype
    shift 2
    out=$TQ_TMP/$name
    read -r code SCRAPE_S < <(curl -s --max-time 20 -D "$out.headers" -o "$out.txt" \
        -w '%{http_code} %{time_total}\n' "$base/metrics" || echo "000 0")
    [ "$code" = 200 ] || tq_fail "GET /metrics ($name): status $code: $(head -c 300 "$out.txt")"
    ctype=$(tr -d '\r' <"$out.headers" | sed -n 's/^Content-Type: //Ip' | head -n 1)
    [ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] ||
        tq_fail "GET /metrics ($name): Content-Type '$ctype'"
    "$PY" "$PROM_CHECK" "$out.txt" "$@" >"$out.json" 2>"$out.err" ||
        tq_fail "GET /metrics ($name): prom_check: $(head -c 3000 "$out.err") (scrape in $out.txt)"
    CUR=$out.json
}

# val NAME [LABELS_JSON]: the value of the one sample NAME of the last
# scrape whose labels include LABELS_JSON; "none" when there is none.
val() {
    jq -r --arg n "$1" --argjson l "${2:-"{}"}" '
        [.samples[] | select(.name == $n) | . as $s
         | select([$l | to_entries[] | $s.labels[.key] == .value] | all)]
        | if length == 0 then "none" elif length > 1 then "many" else .[0].value | tostring end' "$CUR"
}

# count NAME: how many samples NAME the last scrape has.
count() { jq --arg n "$1" '[.samples[] | select(.name == $n)] | length' "$CUR"; }

# has_comment TEXT: the last scrape has a "# tickq:" comment holding TEXT.
has_comment() {
    jq -e --arg t "$1" 'any(.comments[]; contains($t))' "$CUR" >/dev/null
}

# num_ok WHAT EXPR: EXPR (awk, with the values substituted) is true.
num_ok() {
    awk "BEGIN { exit !($2) }" || tq_fail "$1: not true: $2"
    tq_log "ok: $1 ($2)"
}

# ---- part 1: a real system ----------------------------------------------------

SCHED=$TQ_TMP/schedules.json
cat >"$SCHED" <<'EOF'
{"schedules": [{"name": "timer", "task": "timer.tick", "every": 1}]}
EOF
tq_spawn beat "$TICKQ_BEAT" --schedules "$SCHED"
BEAT_PID=$TQ_LAST_PID
tq_spawn worker "$TICKQ_WORKER_BIN" --tasks "$TICKQ_TEST_TASKS" --liveness 2 -c 2
WORKER_PID=$TQ_LAST_PID
tq_start_web --liveness 2
WEB=http://127.0.0.1:$WEB_PORT

# A failing task and three that take at least 30 ms, so that their runtime
# histogram has empty buckets below 0.03 s.
rcli LPUSH "$P:{default}:queue" "$(tq_msg fail-1 fail '[]' '"max_retries":0')" >/dev/null
for i in 1 2 3; do
    rcli LPUSH "$P:{default}:queue" "$(tq_msg sleep-$i sleep '[0.03]')" >/dev/null
done
# A paused queue that no worker consumes, with 7 messages enqueued 30 s ago.
rcli SET "$P:{parked}:paused" 1 >/dev/null; rcli SADD "$P:{@}:queues" parked >/dev/null
old=$(awk -v ms="$(now_ms)" 'BEGIN { printf "%.3f", ms / 1000 - 30 }')
for i in 1 2 3 4 5 6 7; do
    rcli LPUSH "$P:{parked}:queue" \
        "$(tq_msg parked-$i noop '[]' "\"queue\":\"parked\",\"enqueued_at\":$old")" >/dev/null
done

tq_wait_for 60 "3 timer ticks counted" '[ "$(rcli GET "$P:{default}:counter:timer")" -ge 3 ] 2>/dev/null'
for id in fail-1 sleep-1 sleep-2 sleep-3; do
    tq_wait_for 30 "$id finished" "[ -n \"\$(tq_result $id .status)\" ] &&
        [ \"\$(tq_result $id .status)\" != retrying ]"
done
tq_log "fail-1 ended as $(tq_result fail-1 .status), P:stats: $(rcli HGETALL "$P:{default}:stats" | paste -sd' ')"

scrape "$WEB" live
tq_log "first scrape: $(wc -l <"$TQ_TMP/live.txt") lines in ${SCRAPE_S}s"

# Every family, with its type (the parser names a counter without _total).
expected_families='{
  "tickq_redis_up": "gauge", "tickq_tasks": "counter",
  "tickq_task_runtime_seconds": "histogram", "tickq_tick_lateness_seconds": "histogram",
  "tickq_queue_depth": "gauge", "tickq_queue_latency_seconds": "gauge",
  "tickq_queue_paused": "gauge", "tickq_workers": "gauge",
  "tickq_worker_last_heartbeat_timestamp_seconds": "gauge",
  "tickq_dead_letters": "gauge", "tickq_delayed_messages": "gauge",
  "tickq_beat_leader": "gauge", "tickq_beat_leader_lease_seconds": "gauge",
  "tickq_schedule_last_run_timestamp_seconds": "gauge",
  "tickq_ticks_published": "counter", "tickq_tasks_processed": "counter",
  "tickq_tasks_failed": "counter", "tickq_tasks_retried": "counter",
  "tickq_tasks_expired": "counter", "tickq_messages_dead": "counter",
  "tickq_messages_duplicate": "counter", "tickq_messages_requeued": "counter",
  "tickq_messages_promoted": "counter",
  "tickq_scrape_redis_roundtrips": "gauge", "tickq_scrape_duration_seconds": "gauge"}'
tq_assert_eq "families and their types" "$(jq -cS . <<<"$expected_families")" \
    "$(jq -cS .families "$CUR")"
tq_assert_eq "no tickq comment (nothing left out)" "[]" "$(jq -c .comments "$CUR")"
tq_assert_eq "tickq_redis_up" 1 "$(val tickq_redis_up)"
num_ok "scrape duration" "$(val tickq_scrape_duration_seconds) > 0 && $(val tickq_scrape_duration_seconds) < 5"

# The live system: one worker alive, the beat leads, the schedule ran.
# (Polled: on busy cores a heartbeat can come later than --liveness 2.)
alive_now() {
    scrape "$WEB" alive
    [ "$(val tickq_workers '{"state":"alive"}')" = 1 ] && [ "$(val tickq_workers '{"state":"dead"}')" = 0 ]
}
tq_wait_for 20 "one worker alive, none dead" alive_now
tq_log "ok: workers alive 1, dead 0"
WORKER_ID=$(rcli ZRANGE "$P:{@}:workers" 0 0)
hb=$(val tickq_worker_last_heartbeat_timestamp_seconds "{\"worker\":\"$WORKER_ID\"}")
num_ok "worker's last heartbeat is recent" "$hb > $(now_ms) / 1000 - 10 && $hb <= $(now_ms) / 1000 + 1"
leader=$(rcli GET "$P:{@}:leader")
[ -n "$leader" ] || tq_fail "no beat leader in Redis"
tq_assert_eq "beat leader" 1 "$(val tickq_beat_leader "{\"leader\":\"$leader\"}")"
lease=$(val tickq_beat_leader_lease_seconds)
num_ok "leader lease" "$lease > 0 && $lease <= 5"
last=$(val tickq_schedule_last_run_timestamp_seconds '{"schedule":"timer"}')
num_ok "timer's last run within 5 s of now" "$last > $(now_ms) / 1000 - 5 && $last <= $(now_ms) / 1000 + 1"

# The paused queue: depth = LLEN (and /api/queues says the same), paused,
# latency about 30 s.
tq_assert_eq "parked depth" "$(rcli LLEN "$P:{parked}:queue")" "$(val tickq_queue_depth '{"queue":"parked"}')"
tq_assert_eq "parked depth" 7 "$(val tickq_queue_depth '{"queue":"parked"}')"
api_depth=$(curl -s --max-time 10 "$WEB/api/queues" | jq '.[] | select(.name == "parked") | .depth')
tq_assert_eq "parked depth in /api/queues" 7 "$api_depth"
tq_assert_eq "parked paused" 1 "$(val tickq_queue_paused '{"queue":"parked"}')"
tq_assert_eq "default not paused" 0 "$(val tickq_queue_paused '{"queue":"default"}')"
lat=$(val tickq_queue_latency_seconds '{"queue":"parked"}')
num_ok "parked latency about 30 s" "$lat >= 29 && $lat < 90"

# Now freeze the counters: pause default, stop the beat, wait until the
# worker holds nothing. Then P:metrics, P:stats and P:counter:timer no longer move
# and must equal what /metrics says.
rcli SET "$P:{default}:paused" 1 >/dev/null; rcli SADD "$P:{@}:queues" default >/dev/null
kill -TERM "$BEAT_PID"
tq_wait_for 20 "beat stopped" "! kill -0 $BEAT_PID"
tq_wait_for 20 "worker idle" "[ \"\$(rcli LLEN '$P:{default}:processing:$WORKER_ID')\" = 0 ]"
rcli --raw HGETALL "$P:{default}:metrics" >"$TQ_TMP/metrics.dump"
[ -s "$TQ_TMP/metrics.dump" ] || tq_fail "the worker wrote nothing into $P:{default}:metrics"
scrape "$WEB" frozen --hash "$TQ_TMP/metrics.dump"
tq_log "ok: tasks, runtime and lateness families equal $P:{default}:metrics ($(($(wc -l <"$TQ_TMP/metrics.dump") / 2)) fields)"
ticks=$(rcli GET "$P:{default}:counter:timer")
tq_assert_eq "timer.tick successes = P:counter:timer" "$ticks" \
    "$(val tickq_tasks_total '{"queue":"default","task":"timer.tick","state":"success"}')"
tq_assert_eq "timer.tick runtime _count = runs" "$ticks" \
    "$(val tickq_task_runtime_seconds_count '{"queue":"default","task":"timer.tick"}')"
tq_assert_eq "timer.tick runtime +Inf = runs" "$ticks" \
    "$(val tickq_task_runtime_seconds_bucket '{"queue":"default","task":"timer.tick","le":"+Inf"}')"
tq_assert_eq "sleep runs" 3 "$(val tickq_task_runtime_seconds_count '{"queue":"default","task":"sleep"}')"
tq_assert_eq "sleep runs of 30 ms in le=0.025" 0 \
    "$(val tickq_task_runtime_seconds_bucket '{"queue":"default","task":"sleep","le":"0.025"}')"
num_ok "sleep runtime sum (3 runs of 30 ms, timed in ms)" "$(val tickq_task_runtime_seconds_sum '{"queue":"default","task":"sleep"}') >= 0.075"
tq_assert_eq "fail runs" 1 "$(val tickq_task_runtime_seconds_count '{"queue":"default","task":"fail"}')"
fail_runs=$(jq '[.samples[] | select(.name == "tickq_tasks_total" and .labels.task == "fail") | .value] | add' "$CUR")
num_ok "fail-1 in tickq_tasks_total (as P:metrics says, checked above)" "${fail_runs/null/0} >= 1"
late_n=$(val tickq_tick_lateness_seconds_count)
num_ok "lateness: the ticks counted" "$late_n >= 3"
tq_assert_eq "lateness +Inf = count" "$late_n" "$(val tickq_tick_lateness_seconds_bucket '{"le":"+Inf"}')"
# P:stats, field by field.
for pair in published:tickq_ticks_published_total processed:tickq_tasks_processed_total \
    failed:tickq_tasks_failed_total retried:tickq_tasks_retried_total \
    expired:tickq_tasks_expired_total dead:tickq_messages_dead_total \
    duplicates:tickq_messages_duplicate_total requeued:tickq_messages_requeued_total \
    promoted:tickq_messages_promoted_total; do
    want=$(rcli HGET "$P:{default}:stats" "${pair%%:*}")
    tq_assert_eq "${pair#*:} = P:stats ${pair%%:*}" "${want:-0}" "$(val "${pair#*:}")"
done
tq_assert_eq "dead letters = LLEN" "$(rcli LLEN "$P:{default}:dead")" "$(val tickq_dead_letters)"
tq_assert_eq "delayed = ZCARD" "$(rcli ZCARD "$P:{default}:delayed")" "$(val tickq_delayed_messages)"

# The beat stopped: after its lease no leader (0, no label).
tq_wait_for 20 "the lease ended" "[ \"\$(rcli EXISTS '$P:{@}:leader')\" = 0 ]"
scrape "$WEB" noleader
tq_assert_eq "no leader" 0 "$(val tickq_beat_leader)"
tq_assert_eq "no leader: no label" '{}' "$(jq -c '.samples[] | select(.name == "tickq_beat_leader") | .labels' "$CUR")"
tq_assert_eq "no leader: lease" 0 "$(val tickq_beat_leader_lease_seconds)"

# kill -9 the worker: dead once its heartbeat is older than --liveness 2.
kill -KILL "$WORKER_PID"
wait "$WORKER_PID" 2>/dev/null || true
t_kill=$SECONDS
dead_now() {
    scrape "$WEB" dead
    [ "$(val tickq_workers '{"state":"dead"}')" = 1 ] && [ "$(val tickq_workers '{"state":"alive"}')" = 0 ]
}
tq_wait_for 20 "the killed worker counted dead" dead_now
tq_log "ok: workers alive 0, dead 1, $((SECONDS - t_kill)) s after kill -9 (--liveness 2)"

# A key of the wrong type leaves its families out, with a comment, and the
# rest intact.
rcli DEL "$P:{default}:metrics" >/dev/null
rcli SET "$P:{default}:metrics" x >/dev/null
scrape "$WEB" wrongtype
has_comment "# tickq: $P:{default}:metrics holds the wrong type" ||
    tq_fail "no comment on $P:{default}:metrics: $(jq -c .comments "$CUR")"
# Each queue has its own P:{q}:metrics: the broken one's series are left
# out, the others' stay.
tq_assert_eq "no task series of default with a bad P:{default}:metrics" 0 \
    "$(jq '[.samples[] | select((.name | startswith("tickq_task")) and .labels.queue == "default")] | length' "$CUR")"
tq_assert_eq "the rest: workers dead" 1 "$(val tickq_workers '{"state":"dead"}')"
tq_assert_eq "the rest: parked depth" 7 "$(val tickq_queue_depth '{"queue":"parked"}')"
tq_assert_eq "the rest: schedules" 1 "$(count tickq_schedule_last_run_timestamp_seconds)"
tq_assert_eq "the rest: P:stats" "$(rcli HGET "$P:{default}:stats" processed)" "$(val tickq_tasks_processed_total)"
tq_assert_eq "the rest: families (the broken queue's series only left out)" 25 "$(jq '.families | length' "$CUR")"

# ---- part 2: data written by hand, on prefix $S ------------------------------------

WEB1_PORT=$WEB_PORT
tq_start_web --liveness 2 --prefix "$S"
SWEB=http://127.0.0.1:$WEB_PORT

# Label values: quote, backslash, newline and an invalid byte; histogram
# buckets from per-bucket counts; fields not of the layout (a bucket out of
# range or spelt with a leading zero, a missing label, a count that is not
# one; a family this version does not know is ignored).
rcli HSET "$S:{default}:metrics" \
    $'tasks\tq"\\\tt\n\xffx\tfailure' 4 \
    $'tasks\tq\tt\tsuccess' 9 \
    $'runtime\tq\tt\t0' 1 $'runtime\tq\tt\t3' 2 $'runtime\tq\tt\t14' 4 $'runtime_sum\tq\tt' 12.5 \
    $'lateness\t1' 3 lateness_sum 0.25 \
    $'runtime\tq\tt\t99' 1 $'runtime\tq\tt\t014' 1 $'tasks\ta\tb' 1 $'tasks\tx\ty\tz' many \
    $'future\tfield' 1 >/dev/null
rcli HSET "$S:{@}:schedule-state" $'sch"\\ed' 1764096000001 >/dev/null
rcli SET "$S:{@}:leader" $'beat\\1' PX 60000 >/dev/null
scrape "$SWEB" labels
tq_assert_eq "escaped labels read back" 4 \
    "$(val tickq_tasks_total '{"queue":"q\"\\","task":"t\n\ufffdx","state":"failure"}')"
tq_assert_eq "escaped schedule name" 1764096000.001 "$(val tickq_schedule_last_run_timestamp_seconds '{"schedule":"sch\"\\ed"}')"
tq_assert_eq "escaped leader" 1 "$(val tickq_beat_leader '{"leader":"beat\\1"}')"
grep -qF 'task="t\n'$'\xef\xbf\xbd''x"' "$TQ_TMP/labels.txt" || tq_fail "the label is not written as t\\n<U+FFFD>x"
hist=$(jq -c '[.samples[] | select(.name == "tickq_task_runtime_seconds_bucket" and .labels.queue == "q") | .value]' "$CUR")
tq_assert_eq "cumulative buckets from 1, 0, 0, 2, ..., 4" "[1,1,1,3,3,3,3,3,3,3,3,3,3,3,7]" "$hist"
tq_assert_eq "runtime _count" 7 "$(val tickq_task_runtime_seconds_count '{"queue":"q"}')"
tq_assert_eq "runtime _sum" 12.5 "$(val tickq_task_runtime_seconds_sum '{"queue":"q"}')"
tq_assert_eq "le text" '["0.005","0.01","0.025","0.05","0.1","0.25","0.5","1","2.5","5","10","30","60","300","+Inf"]' \
    "$(jq -c '[.samples[] | select(.name == "tickq_task_runtime_seconds_bucket" and .labels.queue == "q") | .labels.le]' "$CUR")"
tq_assert_eq "lateness" "[0,3,3,3,3,3,3,3,3,3,3]" \
    "$(jq -c '[.samples[] | select(.name == "tickq_tick_lateness_seconds_bucket") | .value]' "$CUR")"
has_comment "skipped 4 field(s) not of the documented layout" ||
    tq_fail "no comment on the 4 bad fields: $(jq -c .comments "$CUR")"
tq_assert_eq "series of bad fields left out" 2 "$(count tickq_tasks_total)"
TRIPS_SMALL=$(val tickq_scrape_redis_roundtrips)

# Every other key of the wrong type: a comment each, 200, P:metrics intact.
rcli SET "$S:{default}:dead" x >/dev/null
rcli SET "$S:{default}:delayed" x >/dev/null
rcli SET "$S:{@}:workers" x >/dev/null
rcli DEL "$S:{@}:leader" "$S:{@}:schedule-state" >/dev/null
rcli HSET "$S:{@}:leader" a b >/dev/null
rcli RPUSH "$S:{@}:schedule-state" x >/dev/null
rcli RPUSH "$S:{default}:stats" x >/dev/null
scrape "$SWEB" wrongtypes
for k in {default}:dead {default}:delayed {@}:workers {@}:leader {@}:schedule-state {default}:stats; do
    has_comment "# tickq: $S:$k holds the wrong type" ||
        tq_fail "no comment on $S:$k: $(jq -c .comments "$CUR")"
done
tq_log "ok: a comment for each of 6 keys of the wrong type"
tq_assert_eq "P:metrics intact" 9 "$(val tickq_tasks_total '{"queue":"q","state":"success"}')"
# The global keys' families are left out; the queues' sums stay (without
# the broken queue's part).
for f in tickq_workers tickq_beat_leader tickq_schedule_last_run_timestamp_seconds; do
    tq_assert_eq "no $f with its key broken" none "$(jq -r ".families.$f // \"none\"" "$CUR")"
done
tq_assert_eq "dead letters of the other queues" 0 "$(val tickq_dead_letters)"
rcli DEL "$S:{default}:dead" "$S:{default}:delayed" "$S:{@}:workers" "$S:{@}:leader" "$S:{@}:schedule-state" "$S:{default}:stats" >/dev/null

# 1000 series: 100 tasks x 5 states, 20 runtime histograms (17 samples
# each) and 160 schedules. A scrape must take under 50 ms (curl's
# time_total, the median of 9), 150 ms in a sanitizer build.
rcli DEL "$S:{default}:metrics" >/dev/null
rcli EVAL "for i = 1, 100 do
  for _, st in ipairs({'success', 'failure', 'retried', 'dead', 'expired'}) do
    redis.call('HSET', KEYS[1], 'tasks\tdefault\ttask.' .. i .. '\t' .. st, i)
  end
  if i <= 20 then
    for b = 0, 14 do redis.call('HSET', KEYS[1], 'runtime\tdefault\ttask.' .. i .. '\t' .. b, b) end
    redis.call('HSET', KEYS[1], 'runtime_sum\tdefault\ttask.' .. i, i * 1.5)
  end
end
for i = 1, 160 do redis.call('HSET', KEYS[2], 'schedule.' .. i, 1764096000000 + i) end
return 1" 2 "$S:{default}:metrics" "$S:{@}:schedule-state" >/dev/null
rcli --raw HGETALL "$S:{default}:metrics" >"$TQ_TMP/s-metrics.dump"
scrape "$SWEB" big --hash "$TQ_TMP/s-metrics.dump"
series=$(jq '[.samples[] | select(.name | test("^tickq_(tasks_total|task_runtime_seconds_|schedule_)"))] | length' "$CUR")
tq_assert_eq "series from P:metrics and P:schedule-state" 1000 "$series"
tq_assert_eq "P:metrics of 1000 series read in the first round trip" "$TRIPS_SMALL" "$(val tickq_scrape_redis_roundtrips)"
bound=0.05
case $(ldd "$TICKQ_WEB" 2>/dev/null || true) in *libasan*) bound=0.15 ;; esac
times=()
for i in 1 2 3 4 5 6 7 8 9; do
    scrape "$SWEB" big
    times+=("$SCRAPE_S")
done
median=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 5p)
tq_log "scrapes of $(wc -l <"$TQ_TMP/big.txt") lines ($(wc -c <"$TQ_TMP/big.txt") bytes): ${times[*]} s; tickq_scrape_duration_seconds $(val tickq_scrape_duration_seconds)"
num_ok "median scrape with 1000 series under $bound s" "$median < $bound"

# More than 10 000 series in a family: the first 10 000 by labels, the same
# every scrape, and a comment.
rcli EVAL "for i = 1, 2300 do
  for _, st in ipairs({'success', 'failure', 'retried', 'dead', 'expired'}) do
    redis.call('HSET', KEYS[1], 'tasks\tdefault\tmore.' .. i .. '\t' .. st, 1)
  end
end
return 1" 1 "$S:{default}:metrics" >/dev/null
scrape "$SWEB" capped
tq_assert_eq "tasks series capped" 10000 "$(count tickq_tasks_total)"
has_comment "tickq_tasks_total: 2000 series left out" ||
    tq_fail "no comment on the series left out: $(jq -c .comments "$CUR")"
jq -c '[.samples[] | select(.name == "tickq_tasks_total") | .labels]' "$CUR" >"$TQ_TMP/capped1"
scrape "$SWEB" capped
jq -c '[.samples[] | select(.name == "tickq_tasks_total") | .labels]' "$CUR" >"$TQ_TMP/capped2"
cmp -s "$TQ_TMP/capped1" "$TQ_TMP/capped2" || tq_fail "a capped family kept other series the next scrape"
tq_log "ok: the same 10 000 series kept on two scrapes (scrape ${SCRAPE_S}s)"

# A P:metrics too big to read: left out with a comment, the rest served.
rcli EVAL "for i = 1, 90000 do redis.call('HSET', KEYS[1], 'x' .. i, 1) end return 1" 1 "$S:{default}:metrics" >/dev/null
fields=$(rcli HLEN "$S:{default}:metrics")
scrape "$SWEB" huge
has_comment "# tickq: $S:{default}:metrics holds $fields fields, more than 100000: its series are left out" ||
    tq_fail "no comment on the huge P:metrics: $(jq -c .comments "$CUR")"
tq_assert_eq "no task series from a huge P:{default}:metrics" 0 "$(count tickq_tasks_total)"
tq_assert_eq "the rest: schedules" 160 "$(count tickq_schedule_last_run_timestamp_seconds)"
num_ok "huge P:metrics scrape" "$SCRAPE_S < 5"

# HEAD: the headers alone.
code=$(curl -s --max-time 10 -I -o /dev/null -w '%{http_code}' "$SWEB/metrics")
tq_assert_eq "HEAD /metrics" 200 "$code"

# Redis gone: 503 with a JSON error, on both webs.
tq_redis_stop
for base in "$SWEB" "http://127.0.0.1:$WEB1_PORT"; do
    code=$(curl -s --max-time 20 -o "$TQ_TMP/down.json" -w '%{http_code}' "$base/metrics" || echo 000)
    tq_assert_eq "GET /metrics with Redis down" 503 "$code"
    jq -e '.error | type == "string"' "$TQ_TMP/down.json" >/dev/null ||
        tq_fail "503 without a JSON error: $(head -c 300 "$TQ_TMP/down.json")"
done
tq_log "ok: 503 $(cat "$TQ_TMP/down.json")"

# Redis back (same port, same data): /metrics answers again, no restart.
tq_redis_start
tq_wait_for 20 "/metrics answers 200 again" \
    '[ "$(curl -s --max-time 5 -o /dev/null -w "%{http_code}" "$SWEB/metrics")" = 200 ]'
scrape "$SWEB" back
tq_assert_eq "after the restart: schedules" 160 "$(count tickq_schedule_last_run_timestamp_seconds)"
