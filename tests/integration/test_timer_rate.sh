#!/usr/bin/env bash
# One beat, one worker, the web: the timer advances by one a second, and
# GET /timer and /api/timer show it.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
echo '{"schedules": [{"name": "timer", "task": "timer.tick", "every": 1}]}' >"$TQ_TMP/s.json"
tq_start_web
tq_spawn worker "$TICKQ_WORKER_BIN" --concurrency 1
tq_spawn beat "$TICKQ_BEAT" --schedules "$TQ_TMP/s.json"
tq_wait_for 5 "the first tick" '[ -n "$(rcli GET "$P:{default}:counter:timer")" ]'
s0=$(rcli GET "$P:{default}:counter:timer"); t0=$(date +%s.%N)
sleep 6
s1=$(rcli GET "$P:{default}:counter:timer"); t1=$(date +%s.%N)
# 6 s of wall time contain 6 ticks, give or take the one on the boundary.
awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" 'BEGIN {
    d = b - a; e = t1 - t0; exit !(d >= e - 1.05 && d <= e + 1.05) }' ||
    tq_fail "timer went from $s0 to $s1 in $(echo "$t1 - $t0" | bc 2>/dev/null || echo 6) s"
tq_log "ok: timer went from $s0 to $s1 in 6 s"
s=$(rcli GET "$P:{default}:counter:timer")
body=$(curl -sf --max-time 5 "http://127.0.0.1:$WEB_PORT/timer")
[[ "$body" =~ ^Minute:\ 0,\ Second:\ ([0-9]+)$ ]] || tq_fail "GET /timer answered '$body'"
d=$(( BASH_REMATCH[1] - s ))
[ "$d" -ge 0 ] && [ "$d" -le 1 ] || tq_fail "/timer says ${BASH_REMATCH[1]}, redis said $s just before"
json=$(curl -sf --max-time 5 "http://127.0.0.1:$WEB_PORT/api/timer")
echo "$json" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["minute"] == d["seconds"] // 60 and d["second"] == d["seconds"] % 60, d
' || tq_fail "/api/timer answered $json"
tq_log "ok: /timer '$body', /api/timer $json"
