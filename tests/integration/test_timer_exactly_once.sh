#!/usr/bin/env bash
# The demo, exactly right: 2 beats and 3 workers run the timer for 10 s; one
# worker is killed with SIGKILL halfway. At the end the timer's seconds equal
# the ticks published, each tick ran exactly once, nothing is left in any
# queue or processing list, and GET /timer shows the same number.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
cat >"$TQ_TMP/schedules.json" <<'JSON'
{"schedules": [{"name": "timer", "task": "timer.tick", "every": 1}]}
JSON
tq_start_web
tq_spawn beat1 "$TICKQ_BEAT" --schedules "$TQ_TMP/schedules.json" --lease 2
B1=$TQ_LAST_PID
tq_spawn beat2 "$TICKQ_BEAT" --schedules "$TQ_TMP/schedules.json" --lease 2
B2=$TQ_LAST_PID
W=()
for i in 1 2 3; do
    tq_spawn "worker$i" "$TICKQ_WORKER_BIN" --concurrency 2 --liveness 3 --worker-id "w$i"
    W+=("$TQ_LAST_PID")
done
sleep 5
kill -KILL "${W[1]}"
tq_log "killed worker w2 (pid ${W[1]}) with SIGKILL"
sleep 5
kill -TERM "$B1" "$B2"
wait "$B1" || tq_fail "beat1 exit code $?"
wait "$B2" || tq_fail "beat2 exit code $?"
published=$(rcli HGET "$P:{default}:stats" published)
tq_log "beats stopped after publishing $published ticks"
[ "$published" -ge 8 ] || tq_fail "only $published ticks published in 10 s"

# The reaper (liveness 3 s) hands back what w2 held; then all is drained.
tq_wait_for 20 "timer = published ($published) and nothing pending" \
    '[ "$(rcli GET "$P:{default}:counter:timer")" = "$published" ] && [ "$(rcli LLEN "$P:{default}:queue")" = 0 ] && [ -z "$(rcli --scan --pattern "$P:{default}:processing:*")" ]'
sleep 1 # a late duplicate run would show up here
tq_assert_eq "timer seconds = ticks published" "$published" "$(rcli GET "$P:{default}:counter:timer")"
tq_assert_eq "results (done markers) = ticks published" "$published" "$(rcli --scan --pattern "$P:{default}:result:timer@*" | wc -l)"
ids=$(rcli LRANGE "$P:{default}:history:timer" 0 -1 | sed 's/.*"id":"\([^"]*\)".*/\1/' | sort)
tq_assert_eq "runs in history = ticks published" "$published" "$(echo "$ids" | wc -l)"
tq_assert_eq "no tick ran twice" "" "$(echo "$ids" | uniq -d)"
# The ticks are consecutive seconds on the grid: none lost between beats.
echo "$ids" | sed 's/timer@//' | sort -n | awk '
    NR > 1 && $1 != prev + 1000 { print "gap between " prev " and " $1; bad = 1 }
    { if ($1 % 1000) { print "off grid: " $1; bad = 1 }; prev = $1 }
    END { exit bad }' || tq_fail "ticks are not consecutive grid seconds"
tq_assert_eq "no dead letters" 0 "$(rcli LLEN "$P:{default}:dead")"
tq_assert_eq "w2 reaped" "" "$(rcli ZSCORE "$P:{@}:workers" w2)"
tq_assert_eq "no lock left" "" "$(rcli --scan --pattern "$P:{default}:lock:*")"
s=$published
tq_assert_eq "GET /timer" "Minute: $((s / 60)), Second: $((s % 60))" \
    "$(curl -sf --max-time 5 "http://127.0.0.1:$WEB_PORT/timer")"
