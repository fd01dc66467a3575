#!/usr/bin/env bash
# Exactly once across a Sentinel failover (docs/DEPLOYMENT.md): a master, a
# replica and three sentinels; two beats, two workers and the web on the
# sentinel URL run the timer ("catchup": "all") while a client pushes
# no-op tasks; the master is killed with SIGKILL. The replica is cut off
# from the master a second before the kill (REPLICAOF NO ONE), so that the
# master's last second of writes is lost with it for certain: publications,
# fetches and completions that the programs saw succeed. The timer must
# resume within 10 s of the kill, and at the end on the new master: the
# timer equals the ticks done, the done ticks are consecutive seconds on
# the grid, none ran twice, and nothing is stranded in a queue, a
# processing list or a lock.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
tq_sentinel_start
OLD_PORT=$REDIS_PORT
export TICKQ_REDIS_URL=$SENTINEL_URL
cat >"$TQ_TMP/schedules.json" <<'JSON'
{"schedules": [{"name": "timer", "task": "timer.tick", "every": 1, "catchup": "all"}]}
JSON
tq_start_web
B=()
for i in 1 2; do
    tq_spawn "beat$i" "$TICKQ_BEAT" --schedules "$TQ_TMP/schedules.json" --lease 2
    B+=("$TQ_LAST_PID")
done
for i in 1 2; do
    tq_spawn "worker$i" "$TICKQ_WORKER_BIN" --concurrency 2 --liveness 3 --worker-id "w$i"
done
# Load: 200 no-op tasks every 0.1 s, on whichever Redis is master.
(
    i=0
    while :; do
        port=$(tq_sentinel_master) || port=
        for _ in $(seq 200); do
            i=$((i + 1))
            echo "LPUSH $P:{default}:queue {\"v\":1,\"id\":\"load-$i\",\"task\":\"noop\"}"
        done | redis-cli -p "${port:-1}" >/dev/null 2>&1 || true
        sleep 0.1
    done
) &
TQ_PIDS+=("$!")
tq_wait_for 20 "the timer at 4 s" '[ "$(rcli GET "$P:{default}:counter:timer")" -ge 4 ]'
# A slow task that a worker takes before the cut and completes after it:
# on the new master it sits in that worker's processing list, locked, held
# by no thread. The worker must notice and requeue it.
rcli LPUSH "$P:{default}:queue" "$(tq_msg slow-1 sleep '[1.5]')" >/dev/null
tq_wait_for 10 "the slow task taken, as the replica knows" \
    '[ "$(redis-cli -p "$REPLICA_PORT" EXISTS "$P:{default}:lock:slow-1")" = 1 ]'
redis-cli -p "$REPLICA_PORT" REPLICAOF NO ONE >/dev/null
cut=$SECONDS
tq_wait_for 10 "the slow task done on the old master" '[ -n "$(tq_done slow-1)" ]'
while [ $((SECONDS - cut)) -lt 1 ]; do sleep 0.1; done
before=$(rcli GET "$P:{default}:counter:timer")
kill -KILL "$REDIS_PID"
killed=$SECONDS
tq_log "killed the master (port $OLD_PORT) with SIGKILL at timer $before, 1 s after the replica was cut off at $(redis-cli -p "$REPLICA_PORT" GET "$P:{default}:counter:timer")"

tq_wait_for 30 "the sentinels to promote the replica" \
    '[ "$(tq_sentinel_master)" = "$REPLICA_PORT" ]'
REDIS_PORT=$REPLICA_PORT
tq_log "the replica (port $REPLICA_PORT) is master after $((SECONDS - killed)) s"
promoted=$(rcli GET "$P:{default}:counter:timer")
tq_wait_for 30 "the timer to move on the new master" \
    '[ "$(rcli GET "$P:{default}:counter:timer")" -gt "${promoted:-0}" ]'
resumed=$((SECONDS - killed))
tq_log "the timer resumed $resumed s after the kill (at $promoted, $before before the kill)"
[ "$resumed" -le 10 ] || tq_fail "the timer resumed only $resumed s after the kill"
sleep 5
kill -TERM "${B[@]}"
for p in "${B[@]}"; do wait "$p" || tq_fail "a beat exited with $?"; done
tq_log "beats stopped"

# Every published tick is done, once: the results on the new master.
done_ids() { rcli --scan --pattern "$P:{default}:result:timer@*" | sed 's/.*@//' | sort -n; }
tq_wait_for 30 "timer = ticks done and nothing pending" \
    '[ "$(rcli GET "$P:{default}:counter:timer")" = "$(done_ids | wc -l)" ] && [ "$(rcli LLEN "$P:{default}:queue")" = 0 ] && [ -z "$(rcli --scan --pattern "$P:{default}:processing:*")" ] && [ -z "$(rcli --scan --pattern "$P:{default}:lock:*")" ]'
sleep 1 # a late duplicate run would show here
n=$(done_ids | wc -l)
tq_assert_eq "timer seconds = ticks done" "$n" "$(rcli GET "$P:{default}:counter:timer")"
[ "$n" -ge 10 ] || tq_fail "only $n ticks done"
done_ids | awk '
    NR > 1 && $1 != prev + 1000 { print "gap between " prev " and " $1; bad = 1 }
    { if ($1 % 1000) { print "off grid: " $1; bad = 1 }; prev = $1 }
    END { exit bad }' || tq_fail "the done ticks are not consecutive grid seconds"
ids=$(rcli LRANGE "$P:{default}:history:timer" 0 -1 | sed 's/.*"id":"\([^"]*\)".*/\1/' | sort)
tq_assert_eq "runs in history = ticks done" "$n" "$(echo "$ids" | wc -l)"
tq_assert_eq "no tick ran twice" "" "$(echo "$ids" | uniq -d)"
tq_assert_eq "the slow task, lost with the old master, ran again" success "$(tq_done slow-1)"
grep -q 'requeued a message left in processing' "$TQ_TMP"/worker?.log ||
    tq_fail "no worker requeued the slow task it had completed on the old master"
tq_assert_eq "no dead letters" 0 "$(rcli LLEN "$P:{default}:dead")"
tq_assert_eq "nothing delayed" 0 "$(rcli ZCARD "$P:{default}:delayed")"
tq_assert_eq "GET /timer" "Minute: $((n / 60)), Second: $((n % 60))" \
    "$(curl -sf --max-time 5 "http://127.0.0.1:$WEB_PORT/timer")"
for f in worker1 worker2 beat1 beat2; do
    grep -q 'the sentinels name a new redis master' "$TQ_TMP/$f.log" ||
        tq_fail "$f did not log the new master"
done
