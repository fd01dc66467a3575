#!/usr/bin/env bash
# Bad messages pushed with redis-cli land in P:dead with a reason that names
# the problem, nothing is lost, and the worker keeps working.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
Q=$P:{default}:queue

good() { echo "{\"v\":1,\"id\":\"$1\",\"task\":\"timer.tick\"}"; }
rcli LPUSH "$Q" "$(good ok-1)" >/dev/null
rcli LPUSH "$Q" 'this is not json' >/dev/null
rcli LPUSH "$Q" '{"v":1,"id":"no-task"}' >/dev/null
rcli LPUSH "$Q" '{"v":1,"id":"bad-args","task":"noop","args":{"a":1}}' >/dev/null
rcli LPUSH "$Q" '{"v":2,"id":"future","task":"noop"}' >/dev/null
rcli LPUSH "$Q" '{"v":1,"id":"unknown","task":"no.such.task"}' >/dev/null
rcli LPUSH "$Q" '[1,2,3]' >/dev/null
printf '{"v":1,"id":"latin1-\xe9","task":"noop"}' | rcli -x LPUSH "$Q" >/dev/null
rcli LPUSH "$Q" "$(good ok-2)" >/dev/null

tq_spawn worker "$TICKQ_WORKER_BIN" --concurrency 2
tq_wait_for 10 "the queue to drain" '[ "$(rcli LLEN "$Q")" = 0 ]'
tq_wait_for 10 "7 dead letters and 2 ticks" \
    '[ "$(rcli LLEN "$P:{default}:dead"):$(rcli GET "$P:{default}:counter:timer")" = "7:2" ]'

dead=$(rcli LRANGE "$P:{default}:dead" 0 -1)
check_dead() { # REASON PATTERN
    grep -q "\"reason\":\"$1\".*$2" <<<"$dead" ||
        tq_fail "no dead letter with reason $1 matching $2 in: $dead"
    tq_log "ok: dead letter $1 ~ $2"
}
check_dead undecodable "not valid JSON"
check_dead undecodable "field 'task': missing"
check_dead undecodable "field 'args': must be an array"
check_dead undecodable "field 'v': must be 1"
check_dead unknown-task "unknown task 'no.such.task'"
check_dead undecodable "must be a JSON object"
# Invalid UTF-8 is kept byte for byte, base64-encoded.
b64=$(echo "$dead" | sed -n 's/.*"message_base64":"\([^"]*\)".*/\1/p')
[ -n "$b64" ] || tq_fail "no message_base64 in: $dead"
tq_assert_eq "raw bytes kept" "$(printf '{"v":1,"id":"latin1-\xe9","task":"noop"}' | base64 -w0)" "$b64"
# Every dead letter is valid JSON with the original message.
echo "$dead" | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line)
    assert d["reason"] and d["error"] and d["worker"] and d["dead_at"] > 0, d
    assert "message" in d or "message_base64" in d, d
' || tq_fail "a dead letter is not valid JSON"

# The worker is alive and still works.
kill -0 "$TQ_LAST_PID" || tq_fail "worker died"
rcli LPUSH "$Q" "$(good ok-3)" >/dev/null
tq_wait_for 5 "a tick after the bad messages" '[ "$(rcli GET "$P:{default}:counter:timer")" = 3 ]'
tq_assert_eq "processing list empty" 0 "$(rcli EVAL "local n=0 for _,k in ipairs(redis.call('KEYS', ARGV[1])) do n=n+redis.call('LLEN',k) end return n" 0 "$P:{default}:processing:*")"
tq_assert_eq "dead counter" 7 "$(rcli HGET "$P:{default}:stats" dead)"
