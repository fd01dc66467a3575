#!/usr/bin/env bash
# Least-privilege users (docs/DEPLOYMENT.md, "Least-privilege users"): the
# ACL SETUSER lines of that file, as written there, create tickq-beat,
# tickq-worker, tickq-web and tickq-web-admin. The beat, two workers, a
# read-only web and a web with mutations run as them: the timer, a retried
# and dead-lettered task, a slow task, a worker killed and reaped, the
# library loaded by whoever comes first; no program meets a refusal. Then
# each user is refused what it must not do: another application's keys,
# FLUSHALL, CONFIG, KEYS, the library's management; the read-only web any
# write, its API's mutations included. (The webs start once the library is
# loaded: the read-only user cannot load it.)
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=tickq # the documented lines name the default prefix
[ "$(rcli --scan --pattern 'tickq:*' | wc -l)" = 0 ] || tq_fail "the tickq namespace is not empty"
unset TICKQ_PREFIX
PW="acl-$$-$RANDOM"
lines=$(grep '^ACL SETUSER tickq-' "$TICKQ_SOURCE_DIR/docs/DEPLOYMENT.md")
tq_assert_eq "ACL lines in docs/DEPLOYMENT.md" 4 "$(echo "$lines" | wc -l)"
while read -r line; do
    # >beat-password -> >beat-$PW, and so on.
    line=$(echo "$line" | sed "s/>\([a-z-]*\)-password/>\1-$PW/")
    # shellcheck disable=SC2086 # the line is words for redis-cli
    out=$(rcli $line) || tq_fail "redis-cli $line"
    [ "$out" = OK ] || tq_fail "ACL SETUSER refused: $out"
done <<<"$lines"
url() { echo "redis://tickq-$1:$1-$PW@127.0.0.1:$REDIS_PORT/0"; }

cat >"$TQ_TMP/schedules.json" <<'JSON'
{"schedules": [{"name": "timer", "task": "timer.tick", "every": 1}]}
JSON
TICKQ_REDIS_URL=$(url beat) tq_spawn beat "$TICKQ_BEAT" --schedules "$TQ_TMP/schedules.json" --lease 2
W=()
for i in 1 2; do
    TICKQ_REDIS_URL=$(url worker) tq_spawn "worker$i" "$TICKQ_WORKER_BIN" --concurrency 2 \
        --liveness 3 --worker-id "w$i" --retry-base 0.1
    W+=("$TQ_LAST_PID")
done
tq_wait_for 20 "the timer at 3 s" '[ "$(rcli GET "$P:{default}:counter:timer")" -ge 3 ]'
# The webs once the library is there: the read-only user cannot load it.
# Both webs take the token: the read-only one's user is what refuses.
TOKEN="tok-$PW"
TICKQ_REDIS_URL=$(url web) TICKQ_API_TOKEN=$TOKEN tq_start_web
RO_PORT=$WEB_PORT
TICKQ_REDIS_URL=$(url web-admin) TICKQ_API_TOKEN=$TOKEN tq_start_web
RW_PORT=$WEB_PORT

# Work that uses the rest of the library: a retried then dead task, a slow
# task (lock extension, started events), a worker killed and reaped.
rcli LPUSH "$P:{default}:queue" "$(tq_msg f1 fail '[]' '"max_retries":1')" \
    "$(tq_msg s1 sleep '[1.5]')" >/dev/null
tq_wait_for 20 "the slow task started" '[ "$(rcli EXISTS "$P:{default}:lock:s1")" = 1 ]'
kill -KILL "${W[1]}"
tq_log "killed worker w2"
tq_wait_for 30 "the failing task dead and the slow one done" \
    '[ "$(rcli LLEN "$P:{default}:dead")" = 1 ] && [ "$(P=$P tq_done s1)" = success ]'
tq_wait_for 30 "w2 reaped" '[ -z "$(rcli ZSCORE "$P:{@}:workers" w2)" ]'

# The read-only web reads; the admin web mutates (audited).
for path in /timer /api/overview /api/queues /api/workers /api/schedules /api/tasks \
    /api/dead /api/tasks/f1 /metrics; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$RO_PORT$path")
    tq_assert_eq "read-only web GET $path" 200 "$code"
done
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$RW_PORT/api/queues/q9/pause")
tq_assert_eq "admin web POST /api/queues/q9/pause" 200 "$code"
tq_assert_eq "q9 paused" 1 "$(rcli EXISTS "$P:{q9}:paused")"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$RW_PORT/api/dead/requeue")
tq_assert_eq "admin web POST /api/dead/requeue" 200 "$code"
tq_assert_eq "the audit stream has both" 2 "$(rcli XLEN "$P:{@}:audit")"

if grep -l 'NOPERM\|permission denied\|authentication failed' "$TQ_TMP"/*.log; then
    grep -h 'NOPERM\|permission denied\|authentication failed' "$TQ_TMP"/*.log | head -5
    tq_fail "a program met a refusal"
fi
tq_log "ok: beat, workers and both webs ran as their users without a refusal"

# ---- what each user must not do
as() { local u=$1; shift; redis-cli -p "$REDIS_PORT" --user "tickq-$u" --pass "$u-$PW" --no-auth-warning "$@" 2>&1; }
refused() { # USER CMD...: the command is refused with NOPERM
    local out
    out=$(as "$@")
    case $out in *NOPERM*) ;; *) tq_fail "tickq-$1 was allowed '${*:2}': $out" ;; esac
}
for u in beat worker web web-admin; do
    refused "$u" SET other:key 1
    refused "$u" GET other:key
    refused "$u" FLUSHALL
    refused "$u" CONFIG GET requirepass
    refused "$u" KEYS '*'
    refused "$u" FUNCTION FLUSH
    refused "$u" FUNCTION DELETE tickq
    refused "$u" ACL LIST
    refused "$u" PUBLISH c x
done
refused web SET "$P:x" 1
refused web DEL "$P:{default}:counter:timer"
refused web FCALL tickq_version 0
refused web FUNCTION LOAD "#!lua name=x"
tq_assert_eq "the read-only web may read" "$(rcli GET "$P:{default}:counter:timer")" "$(as web GET "$P:{default}:counter:timer")"
code=$(curl -s -o "$TQ_TMP/body" -w '%{http_code}' --max-time 5 -X POST \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$RO_PORT/api/queues/q8/pause")
[ "$code" -ge 500 ] || tq_fail "a mutation through the read-only web answered $code: $(cat "$TQ_TMP/body")"
tq_assert_eq "nothing paused by the read-only web" 0 "$(rcli EXISTS "$P:{q8}:paused")"
tq_log "ok: every user is refused what it must not do"
