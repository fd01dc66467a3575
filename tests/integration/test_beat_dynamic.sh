#!/usr/bin/env bash
# Schedules edited in Redis by any client take effect within a second,
# without restarting the beat: a changed queue, a schedule added, an
# interval shortened (the next run comes from the new definition), disabled,
# re-enabled (the disabled period publishes nothing), deleted; a cron
# schedule added without "tz" gets --tz; a cron expression that never fires
# is skipped with a warning; a mass edit of thousands in one transaction. Delayed messages are promoted when due. Where
# WATCH is not allowed (an ACL), edits still take effect. Needs jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || tq_fail "jq is required (apt-get install -y jq)"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX

cat >"$TQ_TMP/s.json" <<'EOF'
{"schedules": [
  {"name": "edit", "task": "noop", "every": 0.25, "queue": "q1"},
  {"name": "slow", "task": "noop", "every": 3600, "queue": "slow"},
  {"name": "toggle", "task": "noop", "every": 0.25, "queue": "toggle"}
]}
EOF
now_ms() { date +%s%3N; }
ids() { rcli LRANGE "$P:{$1}:queue" 0 -1 | jq -r .id | sed 's/.*@//' | sort -n; }
def() { rcli HSET "$P:{@}:schedules" "$1" "$2" >/dev/null; }

tq_spawn beat "$TICKQ_BEAT" --schedules "$TQ_TMP/s.json" --tz Europe/Berlin --log-level debug
BEAT=$TQ_LAST_PID
tq_wait_for 5 "edit publishes" '[ "$(rcli LLEN "$P:{q1}:queue")" -gt 2 ]'

# A changed queue: every tick from a second after the edit on goes to q2.
t_edit=$(now_ms)
def edit '{"name": "edit", "task": "noop", "every": 0.25, "queue": "q2"}'
# A shortened interval: the next run comes from the new definition, not
# an hour from now.
t_slow=$(now_ms)
def slow '{"name": "slow", "task": "noop", "every": 1, "queue": "slow"}'
# A new schedule.
t_add=$(now_ms)
def added '{"name": "added", "task": "noop", "every": 0.5, "queue": "added"}'
# Disabled.
t_dis=$(now_ms)
def toggle '{"name": "toggle", "task": "noop", "every": 0.25, "queue": "toggle", "enabled": false}'
sleep 2.5

late=$(ids q1 | awk -v t=$((t_edit + 1000)) '$1 >= t' | head -1)
[ -z "$late" ] || tq_fail "edit: tick $late went to the old queue more than 1 s after the edit at $t_edit"
first=$(ids q2 | head -1)
[ -n "$first" ] && [ "$first" -le $((t_edit + 1000)) ] ||
    tq_fail "edit: the first tick on the new queue is '$first', expected one by $((t_edit + 1000))"
tq_log "ok: edit: the new queue took effect $((first - t_edit)) ms after the edit"
first=$(ids slow | head -1)
[ -n "$first" ] && [ "$first" -le $((t_slow + 2000)) ] ||
    tq_fail "slow: every 3600 -> 1 edited at $t_slow, first tick '$first'"
tq_log "ok: slow: its next run came from the new definition, $((first - t_slow)) ms after the edit"
first=$(ids added | head -1)
[ -n "$first" ] && [ "$first" -le $((t_add + 1500)) ] ||
    tq_fail "added at $t_add: first tick '$first'"
tq_log "ok: added: first tick $((first - t_add)) ms after HSET"
last=$(ids toggle | tail -1)
[ "$last" -lt $((t_dis + 1000)) ] || tq_fail "toggle: disabled at $t_dis, tick $last published"
tq_log "ok: toggle: disabled within $((last - t_dis + 250)) ms"

# Re-enabled: ticks resume; the disabled period publishes nothing.
t_en=$(now_ms)
def toggle '{"name": "toggle", "task": "noop", "every": 0.25, "queue": "toggle"}'
tq_wait_for 3 "toggle resumes" '[ "$(ids toggle | tail -1)" -gt "$t_en" ]'
first=$(ids toggle | awk -v l="$last" '$1 > l' | head -1)
[ "$first" -ge "$t_en" ] && [ "$first" -le $((t_en + 1250)) ] ||
    tq_fail "toggle: re-enabled at $t_en, first tick $first (the last before was $last)"
tq_log "ok: toggle: re-enabled after $((first - t_en)) ms, nothing from the disabled period"

# Deleted.
t_del=$(now_ms)
rcli HDEL "$P:{@}:schedules" added >/dev/null
sleep 1.5
last=$(ids added | tail -1)
[ "$last" -lt $((t_del + 1000)) ] || tq_fail "added: deleted at $t_del, tick $last published"
tq_wait_for 2 "the removal is logged" "grep -q \"schedule 'added' removed\" '$TQ_TMP/beat.log'"
tq_log "ok: added: deleted, no tick after $last"

# A cron schedule without "tz" gets --tz; one that never fires is skipped
# with a warning, and the others go on.
def nightly '{"name": "nightly", "task": "noop", "cron": "30 2 * * *"}'
def feb30 '{"name": "feb30", "task": "noop", "cron": "0 0 30 2 *"}'
tq_wait_for 2 "the cron schedule is added" \
    "grep -q \"schedule 'nightly' added: task noop on cron '30 2 \\* \\* \\*' in Europe/Berlin\" '$TQ_TMP/beat.log'"
tq_wait_for 2 "the never-firing one is skipped" \
    "grep -q \"schedule 'feb30' in .* is skipped: .*never fires\" '$TQ_TMP/beat.log'"
n=$(rcli LLEN "$P:{q2}:queue")
sleep 0.6
[ "$(rcli LLEN "$P:{q2}:queue")" -gt "$n" ] || tq_fail "the other schedules stopped"
tq_log "ok: cron defaults to --tz; a never-firing expression is skipped, the rest go on"

# Delayed messages: promoted when due, not before. Each is seen in the
# queue at some instant after it was promoted: d2 must not be seen before
# its due time, and it must be seen soon after it (the beat looks every
# ~100 ms; bench/ measures the real lateness, this only catches a
# promotion that waits for something else).
due1=$(($(now_ms) - 1000))
due2=$(($(now_ms) + 3000))
rcli SADD "$P:{@}:queues" promoted >/dev/null
rcli ZADD "$P:{promoted}:delayed" "$due1" '{"v":1,"id":"d1","task":"noop","queue":"promoted"}' \
    "$due2" '{"v":1,"id":"d2","task":"noop","queue":"promoted"}' >/dev/null
tq_wait_for 20 "the due message is promoted" '[ "$(rcli LLEN "$P:{promoted}:queue")" -ge 1 ]'
tq_assert_eq "promoted first" d1 "$(rcli LINDEX "$P:{promoted}:queue" -1 | jq -r .id)"
while [ "$(rcli LLEN "$P:{promoted}:queue")" -lt 2 ]; do
    [ "$(now_ms)" -lt $((due2 + 20000)) ] || tq_fail "d2 was never promoted"
    sleep 0.05
done
seen=$(now_ms)
[ "$seen" -ge "$due2" ] || tq_fail "d2 was promoted $((due2 - seen)) ms before it was due"
late=$((seen - due2))
[ "$late" -le 2000 ] || tq_fail "d2 was promoted $late ms after it was due"
tq_assert_eq "delayed left" 0 "$(rcli ZCARD "$P:{default}:delayed")"
tq_log "ok: delayed messages promoted when due (d2 within $late ms)"
# A mass edit in one transaction: 1000 of 3000 schedules deleted, 500
# changed, 1500 added; afterwards exactly the changed and added ones tick.
rcli EVAL "for i = 1, 3000 do redis.call('HSET', KEYS[1], 'm' .. i,
    '{\"name\":\"m' .. i .. '\",\"task\":\"noop\",\"every\":3600,\"queue\":\"mass\"}') end" \
    1 "$P:{@}:schedules" >/dev/null
tq_wait_for 3 "3000 schedules added" "grep -q 'reloaded .* 3000 added, 0 changed, 0 removed' '$TQ_TMP/beat.log'"
rcli EVAL "for i = 1, 1000 do redis.call('HDEL', KEYS[1], 'm' .. i) end
    for i = 1001, 1500 do redis.call('HSET', KEYS[1], 'm' .. i,
        '{\"name\":\"m' .. i .. '\",\"task\":\"noop\",\"every\":1,\"queue\":\"mass\"}') end
    for i = 3001, 4500 do redis.call('HSET', KEYS[1], 'm' .. i,
        '{\"name\":\"m' .. i .. '\",\"task\":\"noop\",\"every\":1,\"queue\":\"mass2\"}') end" \
    1 "$P:{@}:schedules" >/dev/null
tq_wait_for 3 "the mass edit is applied" \
    "grep -q 'reloaded .* 1500 added, 500 changed, 1000 removed' '$TQ_TMP/beat.log'"
sleep 2.2
names() { rcli LRANGE "$P:{$1}:queue" 0 -1 | jq -r .schedule | sort -u | sed 's/^m//' | sort -n | tr '\n' ' '; }
[ "$(names mass)" == "$(seq -s ' ' 1001 1500) " ] ||
    tq_fail "queue mass: expected ticks of m1001..m1500 only, got schedules $(names mass)"
[ "$(names mass2)" == "$(seq -s ' ' 3001 4500) " ] ||
    tq_fail "queue mass2: expected ticks of m3001..m4500 only, got schedules $(names mass2)"
tq_log "ok: after the mass edit exactly the 500 changed and 1500 added schedules tick"
kill -TERM "$BEAT"
wait "$BEAT" || tq_fail "the beat exited with $? after SIGTERM"

# ---------------------------------------------------------------------------
# Without WATCH (an ACL forbids it): the beat says so and reloads at every
# check instead; edits still take effect within a second.
P=$TQ_PREFIX-acl
rcli ACL SETUSER limited on '>secret' '~*' '&*' +@all -watch >/dev/null
tq_spawn beat-acl "$TICKQ_BEAT" --schedules "$TQ_TMP/s.json" --prefix "$P" \
    --redis-url "redis://limited:secret@127.0.0.1:$REDIS_PORT/0"
BEAT=$TQ_LAST_PID
tq_wait_for 5 "edit publishes" '[ "$(rcli LLEN "$P:{q1}:queue")" -gt 2 ]'
grep -q "cannot watch .*; reloading it every 250 ms instead" "$TQ_TMP/beat-acl.log" ||
    tq_fail "no warning about WATCH"
t_edit=$(now_ms)
def edit '{"name": "edit", "task": "noop", "every": 0.25, "queue": "q2"}'
sleep 2
late=$(ids q1 | awk -v t=$((t_edit + 1000)) '$1 >= t' | head -1)
[ -z "$late" ] || tq_fail "acl: tick $late went to the old queue more than 1 s after the edit"
[ -n "$(ids q2 | head -1)" ] || tq_fail "acl: nothing on the new queue"
tq_log "ok: without WATCH, the edit took effect $(($(ids q2 | head -1) - t_edit)) ms after it"
kill -TERM "$BEAT"
wait "$BEAT" || tq_fail "the beat exited with $? after SIGTERM"
