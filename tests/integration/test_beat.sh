#!/usr/bin/env bash
# tickq-beat against a real redis-server: seeding and message format, three
# beats publishing every tick exactly once, failover after kill -9, clean
# stop, bad schedules files, schedules edited in Redis, the catch-up rule,
# and a Redis restart. Each part uses its own key prefix. Needs jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || tq_fail "jq is required (apt-get install -y jq)"

tq_redis_start
tq_require_empty

SCHED=$TQ_TMP/schedules.json
cat >"$SCHED" <<'EOF'
{"schedules": [
  {"name": "timer", "task": "timer.tick", "every": 1},
  {"name": "report", "task": "noop", "every": 0.25, "queue": "reports",
   "args": [1, "x"], "kwargs": {"k": true}}
]}
EOF

now_ms() { date +%s%3N; }

# part NAME: starts a part with its own, empty, key prefix in P.
part() {
    P="$TQ_PREFIX-$1"
    local n
    n=$(rcli --scan --pattern "$P:*" | wc -l)
    [ "$n" -eq 0 ] || tq_fail "namespace $P is not empty ($n keys)"
    tq_log "---- part $1"
}

# beat NAME ARGS...: starts tickq-beat with prefix $P; its pid is in BEAT_PID.
beat() {
    local name=$1; shift
    tq_spawn "$name" "$TICKQ_BEAT" --prefix "$P" --log-level debug "$@"
    BEAT_PID=$TQ_LAST_PID
}

# stop_beat PID: SIGTERM, then waits at most 10 s; STOP_RC is its exit code.
stop_beat() {
    kill -TERM "$1" 2>/dev/null || true
    local i
    for i in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$1" 2>/dev/null && tq_fail "beat $1 still runs 10 s after SIGTERM"
    STOP_RC=0
    wait "$1" || STOP_RC=$?
}

# grid_check QUEUE NAME STEP_MS [MIN_MS]: the messages of $P:{QUEUE}:queue
# (those from MIN_MS on) have ids NAME@<ms> on the STEP_MS grid, consecutive,
# with no gap and no duplicate. Sets GRID_N, GRID_FIRST, GRID_LAST.
grid_check() {
    local res
    res=$(rcli LRANGE "$P:{$1}:queue" 0 -1 | jq -r .id | sort -t@ -k2,2n |
        awk -F@ -v name="$2" -v step="$3" -v min="${4:-0}" '
        $1 != name || $2 !~ /^[0-9]+$/ { print "bad id " $0; err = 1; exit }
        $2 < min { next }
        $2 % step != 0 { print "id " $0 " is off the " step " ms grid"; err = 1; exit }
        n > 0 && $2 == prev { print "duplicate id " $0; err = 1; exit }
        n > 0 && $2 != prev + step {
            printf "gap: expected %s@%.0f after %s@%.0f, got %s\n", name, prev + step, name, prev, $0
            err = 1; exit }
        { if (n == 0) first = $2; prev = $2; n++ }
        END { if (!err) { if (n == 0) print "no messages"; else printf "ok %d %.0f %.0f\n", n, first, prev } }')
    case $res in
    ok*) read -r _ GRID_N GRID_FIRST GRID_LAST <<<"$res" ;;
    *) tq_fail "$P:{$1}:queue ($2 every $3 ms): $res" ;;
    esac
    tq_log "ok: $P:{$1}:queue: $GRID_N consecutive ticks of $2, $GRID_FIRST .. $GRID_LAST"
}

# msg_check QUEUE NAME TASK ARGS KWARGS STEP_MS MAX_LATE_S: every message of
# $P:{QUEUE}:queue is a v1 message of schedule NAME with these fields, an id
# that matches scheduled_at, and enqueued_at - scheduled_at in [0, MAX_LATE_S).
msg_check() {
    local bad
    bad=$(rcli LRANGE "$P:{$1}:queue" 0 -1 | jq -c --arg q "$1" --arg name "$2" --arg task "$3" \
        --argjson args "$4" --argjson kwargs "$5" --argjson step "$6" --argjson late "$7" '
        ((.id // "") | ltrimstr($name + "@") | tonumber? // -1) as $ms
        | select((.v == 1 and .task == $task and .queue == $q and .schedule == $name
                  and .args == $args and .kwargs == $kwargs and $ms > 0 and $ms % $step == 0
                  and (.scheduled_at * 1000 | round) == $ms
                  and .enqueued_at - .scheduled_at >= 0
                  and .enqueued_at - .scheduled_at < $late) | not)' | head -3)
    [ -z "$bad" ] || tq_fail "$P:{$1}:queue: expected v=1 $2@<ms> task=$3 args=$4 kwargs=$5, ms on the $6 ms grid = scheduled_at, lateness < $7 s; got: $bad"
    tq_log "ok: every message of $P:{$1}:queue is a well-formed $2 tick"
}

state_of() { rcli HGET "$P:{@}:schedule-state" "$1"; }

# ---------------------------------------------------------------------------
# (a) One beat: the file is upserted; messages are well formed, on time, on
# the grid, consecutive.
part a
beat beat-a --schedules "$SCHED"
tq_wait_for 5 "schedules upserted" '[ "$(rcli HLEN "$P:{@}:schedules")" = 2 ]'
tq_assert_eq "timer definition" '"timer.tick" 1 "default" true' \
    "$(rcli HGET "$P:{@}:schedules" timer | jq -r '[.task, .every, .queue, .enabled] | map(tojson) | join(" ")')"
tq_assert_eq "report definition" '"noop" 0.25 "reports" [1,"x"] {"k":true}' \
    "$(rcli HGET "$P:{@}:schedules" report | jq -r '[.task, .every, .queue, .args, .kwargs] | map(tojson) | join(" ")')"
sleep 3.2
stop_beat "$BEAT_PID"
tq_assert_eq "exit code after SIGTERM" 0 "$STOP_RC"
msg_check default timer timer.tick '[]' '{}' 1000 0.1
msg_check reports report noop '[1,"x"]' '{"k":true}' 250 0.1
grid_check default timer 1000
[ "$GRID_N" -ge 2 ] || tq_fail "timer: expected at least 2 ticks in 3.2 s, got $GRID_N"
tq_assert_eq "timer state = last tick" "$GRID_LAST" "$(state_of timer)"
ntimer=$GRID_N
grid_check reports report 250
[ "$GRID_N" -ge 11 ] || tq_fail "report: expected at least 11 ticks in 3.2 s, got $GRID_N"
tq_assert_eq "report state = last tick" "$GRID_LAST" "$(state_of report)"
# Each queue counts what was pushed to it.
tq_assert_eq "stats published" "$((ntimer + GRID_N))" \
    "$(($(rcli HGET "$P:{default}:stats" published) + $(rcli HGET "$P:{reports}:stats" published)))"
tq_assert_eq "lease released" "" "$(rcli GET "$P:{@}:leader")"

# ---------------------------------------------------------------------------
# (b) Three beats at once: one leader, every tick exactly once; (d) SIGTERM
# of the leader: exit 0, the lease goes to another beat, no tick lost.
part b
declare -A PID_OF
for id in b1 b2 b3; do
    beat "beat-$id" --schedules "$SCHED" --beat-id "$id"
    PID_OF[$id]=$BEAT_PID
done
sleep 5
leader=$(rcli GET "$P:{@}:leader")
case $leader in b1 | b2 | b3) ;; *) tq_fail "lease holder: expected one of b1 b2 b3, got '$leader'" ;; esac
tq_assert_eq "beats that ever led" 1 "$(grep -l 'leader: beat' "$TQ_TMP"/beat-b?.log | wc -l)"
stop_beat "${PID_OF[$leader]}"
tq_assert_eq "leader's exit code after SIGTERM" 0 "$STOP_RC"
after=$(rcli GET "$P:{@}:leader")
[ "$after" != "$leader" ] || tq_fail "lease still held by the stopped beat $leader"
tq_wait_for 3 "another beat takes the lease" '[ -n "$(rcli GET "$P:{@}:leader")" ]'
newleader=$(rcli GET "$P:{@}:leader")
tq_log "ok: lease passed from $leader to $newleader"
t_stop=$(now_ms)
tq_wait_for 5 "the new leader publishes" '[ "$(state_of timer)" -gt "$t_stop" ]'
for id in b1 b2 b3; do
    [ "$id" = "$leader" ] && continue
    stop_beat "${PID_OF[$id]}"
    tq_assert_eq "exit code of $id after SIGTERM" 0 "$STOP_RC"
done
grid_check default timer 1000
tq_assert_eq "timer ticks = state span" "$(((GRID_LAST - GRID_FIRST) / 1000 + 1))" "$GRID_N"
tq_assert_eq "timer state = last tick" "$GRID_LAST" "$(state_of timer)"
[ "$GRID_N" -ge 5 ] || tq_fail "timer: expected at least 5 ticks, got $GRID_N"
grid_check reports report 250
tq_assert_eq "report ticks = state span" "$(((GRID_LAST - GRID_FIRST) / 250 + 1))" "$GRID_N"
tq_assert_eq "report state = last tick" "$GRID_LAST" "$(state_of report)"
tq_assert_eq "lease after all stopped" "" "$(rcli GET "$P:{@}:leader")"

# ---------------------------------------------------------------------------
# (c) kill -9 of the leader (lease 2 s): a standby publishes within the
# lease, and every tick of the gap is published.
part c
beat beat-c1 --schedules "$SCHED" --beat-id c1 --lease 2
PID_OF[c1]=$BEAT_PID
tq_wait_for 5 "c1 leads" '[ "$(rcli GET "$P:{@}:leader")" = c1 ]'
beat beat-c2 --schedules "$SCHED" --beat-id c2 --lease 2
PID_OF[c2]=$BEAT_PID
sleep 2.2
kill -KILL "${PID_OF[c1]}"
t_kill=$(now_ms)
wait "${PID_OF[c1]}" 2>/dev/null || true
tq_wait_for 4 "c2 takes the lease" '[ "$(rcli GET "$P:{@}:leader")" = c2 ]'
tq_wait_for 4 "c2 publishes" '[ "$(state_of timer)" -gt "$t_kill" ]'
sleep 1.2
stop_beat "${PID_OF[c2]}"
tq_assert_eq "c2 exit code after SIGTERM" 0 "$STOP_RC"
# The first message enqueued after the kill is c2's first publication.
first_after=$(rcli LRANGE "$P:{reports}:queue" 0 -1 |
    jq -s --argjson k "$t_kill" '[.[] | .enqueued_at * 1000 | select(. > $k)] | min | round')
took=$((first_after - t_kill))
[ "$took" -le 2500 ] || tq_fail "failover: the standby published $took ms after the kill, expected <= 2500 (lease 2 s)"
tq_log "ok: the standby published $took ms after kill -9 of the leader"
grid_check default timer 1000
grid_check reports report 250
[ "$GRID_LAST" -gt "$t_kill" ] || tq_fail "no report tick after the kill ($GRID_LAST <= $t_kill)"

# ---------------------------------------------------------------------------
# (e) Bad schedules files: exit 2, a message naming the problem, and nothing
# written to Redis.
part e
bad_file() { # NAME CONTENT EXPECTED-TEXT
    local f=$TQ_TMP/$1.json rc=0
    printf '%s' "$2" >"$f"
    timeout 10 "$TICKQ_BEAT" --prefix "$P" --schedules "$f" >"$TQ_TMP/$1.out.log" \
        2>"$TQ_TMP/$1.err.log" || rc=$?
    tq_assert_eq "exit code for $1" 2 "$rc"
    grep -qF "$3" "$TQ_TMP/$1.err.log" ||
        tq_fail "stderr for $1: expected '$3', got '$(cat "$TQ_TMP/$1.err.log")'"
    grep -q '^tickq-beat: ' "$TQ_TMP/$1.err.log" ||
        tq_fail "stderr for $1 does not start with 'tickq-beat: ': $(cat "$TQ_TMP/$1.err.log")"
    tq_log "ok: $1: $(head -c 300 "$TQ_TMP/$1.err.log")"
}
bad_file unknown-field '{"schedules": [{"name": "a", "task": "t", "every": 1, "bogus": 1}]}' \
    "unknown field 'bogus'"
bad_file missing-every '{"schedules": [{"name": "a", "task": "t"}]}' "field 'every' is missing"
bad_file invalid-json '{"schedules": [{"name": "a", ' "invalid-json.json"
bad_file duplicate '{"schedules": [{"name": "a", "task": "t", "every": 1}, {"name": "a", "task": "u", "every": 2}]}' \
    "defined twice"
rc=0
timeout 10 "$TICKQ_BEAT" --prefix "$P" --schedules "$TQ_TMP/no-such-file.json" \
    2>"$TQ_TMP/missing.err.log" || rc=$?
tq_assert_eq "exit code for a missing file" 2 "$rc"
tq_assert_eq "keys written under $P" 0 "$(rcli --scan --pattern "$P:*" | wc -l)"

# ---------------------------------------------------------------------------
# (f) Schedules edited in Redis take effect at the next reload; a bad one is
# warned about once and does not stop the others.
part f
printf '%s' '{"schedules": [{"name": "timer", "task": "timer.tick", "every": 1}]}' >"$TQ_TMP/f.json"
beat beat-f --schedules "$TQ_TMP/f.json"
tq_wait_for 5 "a first tick" '[ -n "$(state_of timer)" ]'
t_edit=$(now_ms)
rcli HSET "$P:{@}:schedules" timer '{"name": "timer", "task": "timer.tick", "every": 0.5}' >/dev/null
rcli HSET "$P:{@}:schedules" broken '{"name": "broken", "task": "x"}' >/dev/null
sleep 3.2
# From the first half-second tick on, the ticks are 500 ms apart. The edit
# is seen at the next reload (<= 1 s) and the new grid starts with its first
# tick after that, which may be a whole second (shared by both grids): the
# first odd half second comes at most 2 s after the edit.
half=$(rcli LRANGE "$P:{default}:queue" 0 -1 | jq -r .id | sed 's/.*@//' | sort -n |
    awk '$1 % 1000 == 500 { print; exit }')
[ -n "$half" ] || tq_fail "no tick on the 500 ms grid within 3.2 s of the edit"
[ "$half" -le $((t_edit + 2100)) ] ||
    tq_fail "every 0.5 took effect at $half, expected <= $((t_edit + 2100)) (edit at $t_edit)"
tq_log "ok: every 0.5 took effect $((half - t_edit)) ms after the edit"
grid_check default timer 500 "$half"
tq_assert_eq "warnings about 'broken'" 1 "$(grep -c "schedule 'broken' in" "$TQ_TMP/beat-f.log")"
grep -q "field 'every' is missing" "$TQ_TMP/beat-f.log" ||
    tq_fail "the warning about 'broken' does not name the field"
t_dis=$(now_ms)
rcli HSET "$P:{@}:schedules" timer \
    '{"name": "timer", "task": "timer.tick", "every": 0.5, "enabled": false}' >/dev/null
sleep 1.6
n1=$(rcli LLEN "$P:{default}:queue")
sleep 1.5
tq_assert_eq "timer ticks while disabled" "$n1" "$(rcli LLEN "$P:{default}:queue")"
last=$(state_of timer)
[ "$last" -le $((t_dis + 1600)) ] ||
    tq_fail "disabled at $t_dis, but a tick at $last was published"
stop_beat "$BEAT_PID"
tq_assert_eq "exit code after SIGTERM" 0 "$STOP_RC"

# ---------------------------------------------------------------------------
# (h) The catch-up rule: a short gap in the state (3 s, within lease + 1 s)
# is a failover gap: every missed tick is published; a long one (60 s) means
# no beat ran: only the latest due tick is published.
part h
cat >"$TQ_TMP/h.json" <<'EOF'
{"schedules": [{"name": "recent", "task": "t", "every": 1, "queue": "recent"},
               {"name": "old", "task": "t", "every": 1, "queue": "old"}]}
EOF
t0=$(($(now_ms) / 1000 * 1000))
rcli HSET "$P:{@}:schedule-state" recent $((t0 - 3000)) old $((t0 - 60000)) >/dev/null
beat beat-h --schedules "$TQ_TMP/h.json"
sleep 1.5
stop_beat "$BEAT_PID"
grid_check recent recent 1000
tq_assert_eq "first tick after a 3 s gap" "$((t0 - 2000))" "$GRID_FIRST"
grid_check old old 1000
[ "$GRID_FIRST" -ge "$t0" ] ||
    tq_fail "after a 60 s gap: expected only ticks from $t0 on, got $GRID_FIRST first"
[ "$GRID_N" -le 3 ] || tq_fail "after a 60 s gap: expected at most 3 ticks, got $GRID_N"
grep -q "skipping 5[89] missed ticks" "$TQ_TMP/beat-h.log" ||
    tq_fail "no log line about the skipped ticks: $(grep -i skip "$TQ_TMP/beat-h.log")"

# ---------------------------------------------------------------------------
# (g) Redis stopped for 3 s and restarted: the beat keeps running and ticks
# resume; with a 10 s lease the outage is a gap that is filled.
part g
beat beat-g --schedules "$SCHED" --lease 10
tq_wait_for 5 "a first tick" '[ -n "$(state_of timer)" ]'
sleep 1
tq_redis_stop
sleep 3
kill -0 "$BEAT_PID" 2>/dev/null || tq_fail "the beat exited while Redis was down"
tq_redis_start
t_back=$(now_ms)
tq_wait_for 10 "ticks resume" '[ "$(state_of timer)" -ge "$t_back" ]'
kill -0 "$BEAT_PID" 2>/dev/null || tq_fail "the beat exited after Redis came back"
grep -q "unreachable" "$TQ_TMP/beat-g.log" || tq_fail "the beat did not log the outage"
stop_beat "$BEAT_PID"
tq_assert_eq "exit code after SIGTERM" 0 "$STOP_RC"
grid_check default timer 1000
grid_check reports report 250
