#!/usr/bin/env bash
# Redis Cluster (docs/DEPLOYMENT.md): three masters on this machine; two
# beats, two workers on the queues default, a, b and c, and the web, all on
# a redis-cluster:// URL. The timer and one schedule per queue a, b, c tick
# every second ("catchup": "all") while slow tasks keep the workers busy;
# one worker is killed with SIGKILL midway and the other reaps it. At the
# end: the timer equals the ticks done, every tick of each schedule from
# its first to its last is done exactly once, nothing is stranded in a
# queue, a processing list, a delayed set or the dead letters, no program
# met a CROSSSLOT error, and the work is spread over the three nodes.
. "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || tq_fail "jq is required (apt-get install -y jq)"
P=$TQ_PREFIX
tq_cluster_start 3
export TICKQ_REDIS_URL=$CLUSTER_URL TICKQ_PREFIX=$P
# ccli ARGS...: redis-cli following the cluster's redirects.
ccli() { redis-cli -c -p "${CLUSTER_PORTS[0]}" "$@"; }
# scan_all PATTERN: the keys matching PATTERN on every node.
scan_all() {
    local port
    for port in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$port" --scan --pattern "$1"; done
}

# Where each queue lives: the hash tag puts every key of a queue on one node.
declare -A NODE_OF
for q in default a b c; do
    NODE_OF[$q]=$(tq_cluster_port "$P:{$q}:queue")
    tq_log "queue $q: node $(tq_cluster_port "$P:{$q}:queue"), slot $(ccli CLUSTER KEYSLOT "$P:{$q}:queue")"
    for k in "processing:w1" "lock:x" "result:x" "dead" "stats" "events" "consumers"; do
        tq_assert_eq "$P:{$q}:$k on queue $q's node" "${NODE_OF[$q]}" "$(tq_cluster_port "$P:{$q}:$k")"
    done
done
nodes=$(printf '%s\n' "${NODE_OF[@]}" | sort -u | wc -l)
[ "$nodes" -ge 2 ] || tq_fail "the four queues share one node: nothing to spread"
tq_log "ok: the queues' keys live on $nodes nodes"

cat >"$TQ_TMP/schedules.json" <<'JSON'
{"schedules": [
  {"name": "timer", "task": "timer.tick", "every": 1, "catchup": "all"},
  {"name": "sa", "task": "noop", "every": 1, "queue": "a", "catchup": "all"},
  {"name": "sb", "task": "noop", "every": 1, "queue": "b", "catchup": "all"},
  {"name": "sc", "task": "noop", "every": 1, "queue": "c", "catchup": "all"}
]}
JSON
B=()
for i in 1 2; do
    tq_spawn "beat$i" "$TICKQ_BEAT" --schedules "$TQ_TMP/schedules.json" --lease 2
    B+=("$TQ_LAST_PID")
done
W=()
for i in 1 2; do
    tq_spawn "worker$i" "$TICKQ_WORKER_BIN" --concurrency 3 --liveness 3 --worker-id "w$i" \
        -Q default,a,b,c
    W+=("$TQ_LAST_PID")
done
tq_start_web
tq_wait_for 20 "the timer to tick" '[ "$(curl -s "http://127.0.0.1:$WEB_PORT/api/timer" | jq .seconds)" -ge 3 ]'

# Slow tasks on every queue, so that the worker killed below holds some.
for q in default a b c; do
    for i in 1 2 3 4; do
        ccli LPUSH "$P:{$q}:queue" "$(tq_msg "slow-$q-$i" sleep '[1.5]' "\"queue\":\"$q\"")" >/dev/null
    done
done
tq_wait_for 10 "w1 to hold a task" \
    '[ -n "$(scan_all "$P:{*}:processing:w1" | while read -r k; do [ "$(ccli LLEN "$k")" -gt 0 ] && echo "$k"; done)" ]'
kill -KILL "${W[0]}"
tq_log "killed w1 (kill -9) while it held tasks"
sleep 10
kill -TERM "${B[@]}"
tq_wait_for 20 "the beats stopped" '! kill -0 "${B[0]}" 2>/dev/null && ! kill -0 "${B[1]}" 2>/dev/null'

# Then everything drains: no queue, processing list or delayed set holds anything.
stranded() {
    local k n=0
    for k in $(scan_all "$P:{*}:queue") $(scan_all "$P:{*}:processing:*") $(scan_all "$P:{*}:delayed"); do
        n=$((n + $(ccli LLEN "$k" 2>/dev/null || ccli ZCARD "$k")))
    done
    echo "$n"
}
tq_wait_for 30 "nothing left in a queue, a processing list or a delayed set" '[ "$(stranded)" = 0 ]'
tq_assert_eq "no dead letters" "" "$(scan_all "$P:{*}:dead")"
for k in $(scan_all "$P:{*}:lock:*"); do
    tq_fail "a lock left: $k = $(ccli GET "$k")"
done

# Every tick of each schedule, from its first to its last, done exactly once.
check_schedule() { # NAME QUEUE
    local name=$1 q=$2 ticks dups gaps n
    ticks=$(scan_all "$P:{$q}:result:$name@*" | sed 's/.*@//' | sort -n)
    n=$(printf '%s\n' "$ticks" | grep -c . || true)
    [ "$n" -ge 8 ] || tq_fail "$name: only $n ticks done"
    gaps=$(printf '%s\n' "$ticks" | awk 'NR > 1 && $1 != prev + 1000 { print "after " prev ": " $1 } { prev = $1 }')
    [ -z "$gaps" ] || tq_fail "$name: ticks missing: $gaps"
    dups=$(ccli LRANGE "$P:{$q}:history:$name" 0 -1 | jq -r .id | sort | uniq -d)
    [ -z "$dups" ] || tq_fail "$name: ticks run twice: $dups"
    tq_assert_eq "$name: last tick done = its state" "$(printf '%s\n' "$ticks" | tail -n1)" \
        "$(ccli HGET "$P:{@}:schedule-state" "$name")"
    tq_log "ok: $name on queue $q: $n consecutive ticks, each done once"
}
check_schedule timer default
check_schedule sa a
check_schedule sb b
check_schedule sc c
timer_done=$(scan_all "$P:{default}:result:timer@*" | wc -l)
tq_assert_eq "the timer = the ticks done" "$timer_done" "$(ccli GET "$P:{default}:counter:timer")"
tq_assert_eq "/timer says so" "Minute: $((timer_done / 60)), Second: $((timer_done % 60))" \
    "$(curl -s "http://127.0.0.1:$WEB_PORT/timer")"
for q in default a b c; do
    for i in 1 2 3 4; do
        tq_assert_eq "slow-$q-$i done" success \
            "$(ccli GET "$P:{$q}:result:slow-$q-$i" | jq -r .status)"
    done
done
grep -q "reaper: worker w1 is dead" "$TQ_TMP/worker2.log" || tq_fail "w2 did not reap w1"

# The web sees the cluster whole.
curl -s "http://127.0.0.1:$WEB_PORT/api/queues" >"$TQ_TMP/queues.json"
for q in default a b c; do
    [ "$(jq --arg q "$q" '.[] | select(.name == $q) | .processed' "$TQ_TMP/queues.json")" -gt 0 ] ||
        tq_fail "/api/queues: queue $q processed nothing: $(cat "$TQ_TMP/queues.json")"
done
tq_assert_eq "/api/tasks finds a tick of sc" "sc" \
    "$(curl -s "http://127.0.0.1:$WEB_PORT/api/tasks?schedule=sc&limit=1" | jq -r '.items[0].schedule')"

# No CROSSSLOT anywhere; every node did work (FCALLs in its commandstats).
if grep -l CROSSSLOT "$TQ_TMP"/*.log; then tq_fail "a CROSSSLOT error in the logs above"; fi
for port in "${CLUSTER_PORTS[@]}"; do
    calls=$(redis-cli -p "$port" INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_fcall:calls=\([0-9]*\).*/\1/p')
    [ "${calls:-0}" -gt 0 ] || tq_fail "node $port ran no FCALL: the work is not spread"
    tq_log "ok: node $port ran ${calls} FCALLs"
done
