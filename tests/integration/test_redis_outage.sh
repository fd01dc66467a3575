#!/usr/bin/env bash
# redis-server stopped for 5 s and restarted (same port, AOF data): every
# process survives, /healthz says 503 then 200 again, the timer resumes, and
# it is still exact: seconds = ticks published.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
echo '{"schedules": [{"name": "timer", "task": "timer.tick", "every": 1}]}' >"$TQ_TMP/s.json"
tq_start_web; WEB=$WEB_PID
tq_spawn beat "$TICKQ_BEAT" --schedules "$TQ_TMP/s.json" --lease 2; BEAT=$TQ_LAST_PID
tq_spawn worker1 "$TICKQ_WORKER_BIN" --concurrency 2; W1=$TQ_LAST_PID
tq_spawn worker2 "$TICKQ_WORKER_BIN" --concurrency 2; W2=$TQ_LAST_PID
tq_wait_for 6 "three ticks" '[ "$(rcli GET "$P:{default}:counter:timer" || echo 0)" -ge 3 ]'
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$WEB_PORT$1"; }
tq_assert_eq "healthz before" 200 "$(code /healthz)"

tq_redis_stop
tq_log "redis stopped"
sleep 1
tq_assert_eq "healthz while redis is down" 503 "$(code /healthz)"
tq_assert_eq "/timer while redis is down" 503 "$(code /timer)"
sleep 4
for p in "$WEB" "$BEAT" "$W1" "$W2"; do kill -0 "$p" || tq_fail "process $p died while redis was down"; done
tq_log "ok: all four processes alive after 5 s without redis"

tq_redis_start
s_restart=$(rcli GET "$P:{default}:counter:timer")
tq_log "redis back with timer = $s_restart"
tq_wait_for 15 "the timer to resume" '[ "$(rcli GET "$P:{default}:counter:timer")" -ge $((s_restart + 3)) ]'
tq_wait_for 5 "healthz 200 again" '[ "$(code /healthz)" = 200 ]'
for p in "$WEB" "$BEAT" "$W1" "$W2"; do kill -0 "$p" || tq_fail "process $p died after the restart"; done

kill -TERM "$BEAT"; wait "$BEAT" || tq_fail "beat exit code $?"
published=$(rcli HGET "$P:{default}:stats" published)
tq_wait_for 10 "timer = published ($published)" '[ "$(rcli GET "$P:{default}:counter:timer")" = "$published" ]'
sleep 1
tq_assert_eq "timer still exact after the outage" "$published" "$(rcli GET "$P:{default}:counter:timer")"
tq_assert_eq "no dead letters" 0 "$(rcli LLEN "$P:{default}:dead")"
for p in "$W1" "$W2" "$WEB"; do
    kill -TERM "$p"; rc=0; wait "$p" || rc=$?
    tq_assert_eq "exit code of $p" 0 "$rc"
done
