#!/usr/bin/env bash
# Leader election and failover: three beats with the default 5 s lease; the
# leader is killed with kill -9, then the next one too; each time a standby
# publishes within the lease, and over more than 30 s every tick of a 1 s
# schedule is published exactly once. Then a leader paused (SIGSTOP) past
# its lease: a standby takes over, and the old leader, resumed, publishes
# nothing. Needs jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || tq_fail "jq is required (apt-get install -y jq)"
tq_redis_start
tq_require_empty

SCHED=$TQ_TMP/schedules.json
cat >"$SCHED" <<'EOF'
{"schedules": [{"name": "timer", "task": "timer.tick", "every": 1}]}
EOF
P=$TQ_PREFIX
now_ms() { date +%s%3N; }
leader() { rcli GET "$P:{@}:leader"; }
state() { rcli HGET "$P:{@}:schedule-state" timer; }

# check_exactly_once: the ids in the queue are the consecutive seconds from
# the first to the last, each once, and the state and counter agree.
check_exactly_once() {
    local res
    res=$(rcli LRANGE "$P:{default}:queue" 0 -1 | jq -r .id | sed 's/^timer@//' | sort -n |
        awk 'NR == 1 { first = $1 } NR > 1 && $1 == prev { print "duplicate timer@" $1; exit }
             NR > 1 && $1 != prev + 1000 { printf "gap: timer@%s after timer@%s\n", $1, prev; exit }
             $1 % 1000 != 0 { print "off the grid: timer@" $1; exit }
             { prev = $1; n++ }
             END { if (n) printf "ok %d %s %s\n", n, first, prev }')
    case $res in ok*) ;; *) tq_fail "timer ticks: ${res:-none}" ;; esac
    read -r _ N FIRST LAST <<<"$res"
    tq_assert_eq "ticks published (stats)" "$N" "$(rcli HGET "$P:{default}:stats" published)"
    tq_assert_eq "state = last tick" "$LAST" "$(state)"
}

# takeover OLD T_KILL: waits for another beat to hold the lease and publish;
# the first message enqueued after T_KILL must come within the lease (5 s)
# plus 500 ms of scheduling slack.
takeover() {
    local old=$1 t_kill=$2 first took
    tq_wait_for 8 "a standby takes the lease from $old" \
        '[ -n "$(leader)" ] && [ "$(leader)" != "$old" ]'
    tq_wait_for 8 "the new leader publishes" '[ "$(state)" -gt "$t_kill" ]'
    first=$(rcli LRANGE "$P:{default}:queue" 0 -1 |
        jq -s --argjson k "$t_kill" '[.[] | .enqueued_at * 1000 | select(. > $k)] | min | round')
    took=$((first - t_kill))
    [ "$took" -le 5500 ] || tq_fail "the standby published $took ms after kill -9 of $old (lease 5 s)"
    tq_log "ok: $(leader) took over from $old and published $took ms after its kill -9"
}

declare -A PID_OF
for id in b1 b2 b3; do
    tq_spawn "beat-$id" "$TICKQ_BEAT" --schedules "$SCHED" --beat-id "$id" --log-level debug
    PID_OF[$id]=$TQ_LAST_PID
done
tq_wait_for 5 "a leader publishes" '[ -n "$(state)" ]'
t_start=$(now_ms)
sleep 6
first_leader=$(leader)
kill -KILL "${PID_OF[$first_leader]}"
t_kill=$(now_ms)
wait "${PID_OF[$first_leader]}" 2>/dev/null || true
takeover "$first_leader" "$t_kill"
sleep 8
second_leader=$(leader)
kill -KILL "${PID_OF[$second_leader]}"
t_kill=$(now_ms)
wait "${PID_OF[$second_leader]}" 2>/dev/null || true
takeover "$second_leader" "$t_kill"
tq_wait_for 20 "30 s of ticks" '[ $(( $(state) - t_start )) -ge 30000 ]'
check_exactly_once
[ "$N" -ge 30 ] || tq_fail "expected at least 30 ticks, got $N"
tq_log "ok: $N ticks from $FIRST to $LAST, each exactly once, across two kill -9 failovers"
tq_assert_eq "beats that led" 3 "$(grep -l 'leader: beat' "$TQ_TMP"/beat-b?.log | wc -l)"

# ---------------------------------------------------------------------------
# A paused leader (lease 2 s) never publishes once its lease is gone.
last=${PID_OF[$(leader)]}
kill -TERM "$last"
wait "$last" 2>/dev/null || true
P=$TQ_PREFIX-pause
for id in p1 p2; do
    tq_spawn "beat-$id" "$TICKQ_BEAT" --schedules "$SCHED" --beat-id "$id" --lease 2 --prefix "$P"
    PID_OF[$id]=$TQ_LAST_PID
done
tq_wait_for 5 "a leader publishes" '[ -n "$(state)" ]'
sleep 1
paused=$(leader)
other=p1
[ "$paused" = p1 ] && other=p2
kill -STOP "${PID_OF[$paused]}"
tq_wait_for 5 "$other takes over from the paused $paused" '[ "$(leader)" = "$other" ]'
sleep 1.5
kill -CONT "${PID_OF[$paused]}"
sleep 2.5
tq_assert_eq "leader after the resume" "$other" "$(leader)"
grep -q "lost leadership" "$TQ_TMP/beat-$paused.log" ||
    tq_fail "the resumed beat $paused did not notice it lost the lease"
check_exactly_once
tq_log "ok: the resumed old leader published nothing twice ($N ticks, each once)"
