#!/usr/bin/env bash
# Keys of the wrong type under a running beat (issue 8, defect 1). Each beat
# key in turn is made the wrong type for a few seconds, then fixed: a
# queue, one schedule's state value (not a number), P:schedule-state,
# P:schedules, P:beat:leader, P:delayed and P:stats. Redis does not roll a
# failed script back, so a script that fails after its first write would
# lose ticks; the property checked at the end is that every tick of the
# three 1 s schedules, from the first to the last, was published exactly
# once (no gap, no duplicate), that the other schedules went on while one
# queue was bad, that a delayed message was promoted once P:delayed was
# fixed, and that each problem was logged as a clear error naming the key,
# a few times at most (no flood). Then a beat starts while P:schedules and
# P:schedule-state are of the wrong type: it waits, and publishes every
# tick it missed (catchup "all") once they are fixed. Needs jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || tq_fail "jq is required (apt-get install -y jq)"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
BAD_SECS=3

cat >"$TQ_TMP/s.json" <<'EOF'
{"schedules": [
  {"name": "a", "task": "noop", "every": 1, "queue": "qa", "catchup": "all"},
  {"name": "b", "task": "noop", "every": 1, "queue": "qb", "catchup": "all"},
  {"name": "c", "task": "noop", "every": 1, "queue": "qc", "catchup": "all"}
]}
EOF
now_ms() { date +%s%3N; }
state() { rcli HGET "$P:{@}:schedule-state" "$1"; }
# ids QUEUE: the ticks (ms) of the queue's messages, sorted.
ids() { rcli LRANGE "$P:{$1}:queue" 0 -1 | jq -r .id | sed 's/.*@//' | sort -n; }
# Makes KEY a string "wrong" and keeps its value in KEY.saved, atomically.
spoil() {
    rcli EVAL "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
               redis.call('SET', KEYS[1], 'wrong') return 1" 2 "$1" "$1.saved" >/dev/null
}
spoil_as() { # KEY TYPE: the same with a hash or a list
    local cmd=HSET args="f v"
    [ "$2" = list ] && cmd=RPUSH args=v
    rcli EVAL "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
               redis.call('$cmd', KEYS[1], unpack(ARGV)) return 1" 2 "$1" "$1.saved" $args >/dev/null
}
# Puts KEY's saved value back, atomically.
restore() {
    rcli EVAL "redis.call('DEL', KEYS[1])
               if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[1]) end
               return 1" 2 "$1" "$1.saved" >/dev/null
}
# newest QUEUE: the tick of the newest message on the queue (its head).
newest() { rcli LINDEX "$P:{$1}:queue" 0 | jq -r .id | sed 's/.*@//'; }
# caught_up QUEUE: its newest message is at most 1.5 s old.
caught_up() { local t; t=$(newest "$1"); [ -n "$t" ] && [ "$t" -ge $(($(now_ms) - 1500)) ]; }
# exactly_once QUEUE: its ticks are consecutive seconds, none twice.
exactly_once() {
    local gaps
    gaps=$(ids "$1" | awk 'NR > 1 && $1 != prev + 1000 { print "after " prev ": " $1 } { prev = $1 }')
    [ -z "$gaps" ] || tq_fail "queue $1: a tick skipped or published twice: $gaps"
}
# After each fault: every schedule's queue has caught up, and holds each
# tick once (checked now, so that a later phase cannot hide a loss).
wait_all_caught_up() {
    tq_wait_for 30 "$1: every queue caught up" 'caught_up qa && caught_up qb && caught_up qc'
    exactly_once qa
    exactly_once qb
    exactly_once qc
    tq_log "ok: $1: every tick so far published exactly once"
}

tq_spawn beat "$TICKQ_BEAT" --schedules "$TQ_TMP/s.json" --beat-id w1
BEAT=$TQ_LAST_PID
tq_wait_for 20 "the beat publishes" '[ "$(rcli LLEN "$P:{qa}:queue")" -ge 2 ]'
wait_all_caught_up start

# ---- a queue of the wrong type: that schedule waits, the others go on ----
spoil "$P:{qa}:queue"
t_bad=$(now_ms)
sleep $BAD_SECS
b_during=$(ids qb | awk -v t="$t_bad" '$1 > t' | wc -l)
[ "$b_during" -ge 2 ] || tq_fail "schedule b published $b_during ticks while queue qa was bad"
tq_log "ok: b published $b_during ticks while qa was a string"
restore "$P:{qa}:queue"
wait_all_caught_up "queue qa fixed"

# ---- one schedule's state value is not a number ----
saved=$(state a)
rcli HSET "$P:{@}:schedule-state" a not-a-number >/dev/null
sleep $BAD_SECS
rcli HSET "$P:{@}:schedule-state" a "$saved" >/dev/null
wait_all_caught_up "state value of a fixed"

# ---- the keys every schedule shares ----
for spec in "{@}:schedule-state list" "{@}:schedules string" "{@}:leader hash" "{qa}:stats list"; do
    set -- $spec
    if [ "$2" = string ]; then spoil "$P:$1"; else spoil_as "$P:$1" "$2"; fi
    sleep $BAD_SECS
    kill -0 "$BEAT" || tq_fail "the beat died while $P:$1 was a $2"
    restore "$P:$1"
    wait_all_caught_up "$P:$1 fixed"
done

# ---- P:delayed of the wrong type: publishing goes on; a due message is
# promoted once it is fixed ----
# The due message goes into the saved set after the spoiling: added before,
# the beat could promote it in between.
rcli SADD "$P:{@}:queues" qd >/dev/null # the leader promotes the queues in use
spoil "$P:{qd}:delayed"
rcli ZADD "$P:{qd}:delayed.saved" 1 "$(tq_msg d1 noop '[]' '"queue":"qd"')" >/dev/null
sleep $BAD_SECS
kill -0 "$BEAT" || tq_fail "the beat died while $P:{qd}:delayed was a string"
[ "$(rcli LLEN "$P:{qd}:queue")" = 0 ] || tq_fail "a message came out of a P:delayed that was a string"
restore "$P:{qd}:delayed"
tq_wait_for 20 "the delayed message is promoted" '[ "$(rcli LLEN "$P:{qd}:queue")" = 1 ]'
wait_all_caught_up "$P:{qd}:delayed fixed"

sleep 2
kill -TERM "$BEAT"
wait "$BEAT" || tq_fail "the beat exited with $? after SIGTERM"

# ---- a beat that starts while P:schedules and P:schedule-state are of
# the wrong type: it cannot upsert its file nor read the state (one error
# each), and publishes, from the state, once they are fixed ----
spoil "$P:{@}:schedules"
spoil_as "$P:{@}:schedule-state" list
tq_spawn beat2 "$TICKQ_BEAT" --schedules "$TQ_TMP/s.json" --beat-id w2
BEAT=$TQ_LAST_PID
tq_wait_for 30 "the upsert fails" "grep -q 'could not upsert' '$TQ_TMP/beat2.log'"
sleep $BAD_SECS
kill -0 "$BEAT" || tq_fail "the beat died at start with keys of the wrong type"
restore "$P:{@}:schedules"
tq_wait_for 30 "the state cannot be read" "grep -q 'cannot read $P:{@}:schedule-state' '$TQ_TMP/beat2.log'"
sleep 1
restore "$P:{@}:schedule-state"
wait_all_caught_up "a restart with bad keys, fixed"
sleep 1
kill -TERM "$BEAT"
wait "$BEAT" || tq_fail "the second beat exited with $? after SIGTERM"
t_end=$(now_ms)

# ---- every tick exactly once ----
for q in qa qb qc; do
    n=$(ids $q | wc -l)
    exactly_once $q
    last=$(ids $q | tail -1)
    [ "$last" -ge $((t_end - 3000)) ] || tq_fail "queue $q: last tick $last, stopped at $t_end"
    tq_log "ok: $q: $n ticks, each exactly once, none missing"
done
tq_assert_eq "delayed message promoted once" 1 "$(rcli LLEN "$P:{qd}:queue")"

# ---- each problem named, and not flooded ----
# named LOG KEY...: each KEY is named in 1 to 3 warnings or errors of LOG.
named() {
    local log=$TQ_TMP/$1.log key n
    shift
    for key in "$@"; do
        n=$(grep -E ' (warn|error) ' "$log" | grep -c -- "$key" || true)
        [ "$n" -ge 1 ] || tq_fail "$(basename "$log"): no warning or error names $key"
        [ "$n" -le 3 ] || tq_fail "$(basename "$log"): $n warnings or errors name $key: a flood"
        tq_log "ok: $(basename "$log"): $key named in $n warning or error lines"
    done
}
named beat "$P:{qa}:queue" "$P:{@}:schedule-state" "$P:{@}:schedules" "$P:{@}:leader" "$P:{qd}:delayed" "$P:{qa}:stats"
named beat2 "$P:{@}:schedules" "$P:{@}:schedule-state"
n=$(grep -E ' (warn|error) ' "$TQ_TMP/beat.log" | grep -c "field 'a' is 'not-a-number', not a tick" || true)
[ "$n" = 1 ] || tq_fail "the bad state value of 'a': $n error lines"
