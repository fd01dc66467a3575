#!/usr/bin/env bash
# tickq-web's mutations (web/ops.c) against a real redis-server, a real
# beat and a real worker: every route is refused without a configured token
# (403) and with a missing or wrong one (401), changing nothing; with the
# token (from --api-token-file, then from TICKQ_API_TOKEN) each one works
# and leaves the exact JSON and Redis state documented in docs/API.md;
# bad input is a 400, 413 or 422 that names the field; a schedule run now,
# an enqueued task, a retried dead task and requeued dead letters really
# run on the worker; a schedule paused through the API stops publishing
# on the beat; every successful mutation, and nothing else, is in the
# audit stream; the token never appears in the web's log. Needs jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || tq_fail "jq is required (apt-get install -y jq)"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX

# Tokens that appear nowhere else, so that a grep of the logs is meaningful.
TOKEN="file-token-$$-$RANDOM$RANDOM"
TOKEN2="env-token-$$-$RANDOM$RANDOM"
printf '%s\n' "$TOKEN" >"$TQ_TMP/token"
# The largest body the web reads (WEB_REQ_BODY_MAX in web/req.h).
BODY_MAX=$((1024 * 1024 + 4096))

AUTH=()
MUTATIONS=() # "METHOD PATH" of every 2xx mutation, in order

# req METHOD PATH [curl args...]: one request with the headers in AUTH;
# sets CODE and BODY. A 2xx answer to a mutation is remembered in
# MUTATIONS: the audit stream must hold exactly those.
req() {
    local method=$1 path=$2
    shift 2
    rm -f "$TQ_TMP/body"
    CODE=$(curl -s --max-time 30 -X "$method" -o "$TQ_TMP/body" -w '%{http_code}' \
        ${AUTH[@]+"${AUTH[@]}"} "$@" "$BASE$path") || true
    BODY=$(cat "$TQ_TMP/body" 2>/dev/null || true)
    case $method:$CODE in
    GET:* | HEAD:* | OPTIONS:*) ;;
    *:2??) MUTATIONS+=("$method $path") ;;
    esac
}

# expect WHAT CODE BODY: the last answer had this status and exactly this body.
expect() {
    tq_assert_eq "$1: status" "$2" "$CODE"
    tq_assert_eq "$1: body" "$3" "$BODY"
}

# expect_error WHAT CODE TEXT: a JSON error with this status whose
# sentence contains TEXT (the field it names).
expect_error() {
    tq_assert_eq "$1: status" "$2" "$CODE"
    local e
    e=$(printf '%s' "$BODY" | jq -r .error 2>/dev/null) || tq_fail "$1: not JSON: '$BODY'"
    case $e in *"$3"*) ;; *) tq_fail "$1: error '$e' does not say '$3'" ;; esac
    tq_log "ok: $1: $2 $e"
}

# snapshot: a digest of every key of the test's namespace, type and value.
snapshot() {
    local k
    rcli --scan --pattern "$P:*" | sort | while read -r k; do
        printf '%s %s\n' "$k" "$(rcli TYPE "$k")"
        rcli DUMP "$k" | od -An -tx1
    done | md5sum
}

stop_web() {
    kill -TERM "$WEB_PID"
    wait "$WEB_PID" 2>/dev/null || true
}

start_web() { # [ARGS...]
    tq_start_web --log-level debug "$@"
    BASE="http://127.0.0.1:$WEB_PORT"
}

counter() { rcli GET "$(tq_qkey "counter:$1")"; }
# Each queue keeps its own dead letters: the flaky tasks run on ops.
DOPS="$P:{ops}:dead"
dead_total() { echo $(($(rcli LLEN "$P:{default}:dead") + $(rcli LLEN "$DOPS"))); }

# Every mutation route, with a body where it takes one: "METHOD PATH BODY".
ROUTES=(
    "PUT /api/schedules/seed {\"task\":\"noop\",\"every\":60}"
    "DELETE /api/schedules/seed -"
    "POST /api/schedules/seed/run -"
    "POST /api/schedules/seed/pause -"
    "POST /api/schedules/seed/resume -"
    "POST /api/queues/seedq/pause -"
    "POST /api/queues/seedq/resume -"
    "POST /api/tasks {\"v\":1,\"task\":\"noop\"}"
    "POST /api/tasks/seed-dead/retry -"
    "POST /api/dead/requeue -"
    "DELETE /api/dead -"
)

# refused_all WHAT CODE [curl args...]: every route answers CODE.
refused_all() {
    local what=$1 code=$2 r method path body
    shift 2
    for r in "${ROUTES[@]}"; do
        read -r method path body <<<"$r"
        if [ "$body" = - ]; then
            req "$method" "$path" "$@"
        else
            req "$method" "$path" "$@" -H 'Content-Type: application/json' --data-binary "$body"
        fi
        tq_assert_eq "$what: $method $path" "$code" "$CODE"
        case $BODY in '{"error":"'*'"}') ;; *) tq_fail "$what: $method $path: not a JSON error: '$BODY'" ;; esac
    done
}

# State that a mutation would change: a schedule with a tick state, a
# dead letter, a paused queue.
rcli HSET "$P:{@}:schedules" seed '{"name":"seed","task":"noop","every":3600}' >/dev/null
rcli HSET "$P:{@}:schedule-state" seed 1000 >/dev/null
rcli LPUSH "$P:{default}:dead" "{\"reason\":\"max-retries\",\"error\":\"x\",\"worker\":\"w\",\"dead_at\":1,\"message\":$(jq -Rn --arg m '{"v":1,"id":"seed-dead","task":"noop"}' '$m')}" >/dev/null
rcli SET "$P:{seedq}:paused" 1 >/dev/null; rcli SADD "$P:{@}:queues" seedq >/dev/null
before=$(snapshot)

# ---- no token configured: read-only, every mutation is 403 ----------------

start_web
refused_all "no token configured" 403
AUTH=(-H "Authorization: Bearer $TOKEN")
refused_all "no token configured, a token sent" 403
AUTH=()
req POST /api/queues/seedq/pause
expect_error "read-only web" 403 "read-only"
tq_assert_eq "read-only: nothing changed" "$before" "$(snapshot)"
stop_web

# ---- the token from a file: missing or wrong is 401 ------------------------

start_web --api-token-file "$TQ_TMP/token"
refused_all "no Authorization header" 401
AUTH=(-H "Authorization: Bearer wrong-$TOKEN")
refused_all "wrong token" 401
AUTH=(-H "Authorization: Basic $(printf 'u:%s' "$TOKEN" | base64)")
refused_all "Basic instead of Bearer" 401
AUTH=(-H "Authorization: Bearer ${TOKEN%?}")
refused_all "the token less its last byte" 401
AUTH=()
tq_assert_eq "refused requests changed nothing" "$before" "$(snapshot)"
tq_assert_eq "refused requests are not audited" 0 "$(rcli EXISTS "$P:{@}:audit")"
rcli DEL "$P:{@}:schedules" "$P:{@}:schedule-state" "$P:{default}:dead" >/dev/null; rcli DEL "$P:{seedq}:paused" >/dev/null

AUTH=(-H "Authorization: Bearer $TOKEN")
JSON=(-H 'Content-Type: application/json')

# ---- GET-only routes refuse POST; mutation routes refuse GET ---------------

for p in /api/overview /api/queues /api/workers /api/schedules /api/dead?x=1 /api/audit /metrics; do
    req POST "$p"
    expect_error "POST ${p%%\?*}" 405 "not allowed"
done
req GET /api/queues/q/pause
expect_error "GET /api/queues/q/pause" 405 "not allowed"
req PUT /api/tasks "${JSON[@]}" --data-binary '{}'
expect_error "PUT /api/tasks" 405 "not allowed"
req POST /api/schedules/x/pause "${JSON[@]}" --data-binary '{}'
expect_error "a body on a route that takes none" 413 "takes no request body"

# ---- queues ----------------------------------------------------------------

req POST /api/queues/reports/pause
expect "pause reports" 200 '{"queue":"reports","paused":true}'
tq_assert_eq "reports in P:paused" 1 "$(rcli EXISTS "$P:{reports}:paused")"
req POST /api/queues/reports/pause
expect "pause reports again" 200 '{"queue":"reports","paused":true}'
req POST /api/queues/reports/resume
expect "resume reports" 200 '{"queue":"reports","paused":false}'
tq_assert_eq "reports not in P:paused" 0 "$(rcli EXISTS "$P:{reports}:paused")"
req POST '/api/queues/bad!name/pause'
expect_error "pause a bad queue name" 400 "queue name"
# Any value of P:{q}:paused pauses (workers test only that it exists), and
# a resume deletes whatever it holds.
rcli HSET "$P:{reports}:paused" a b >/dev/null
req POST /api/queues/reports/resume
expect "resume a queue whose paused key is a hash" 200 '{"queue":"reports","paused":false}'
tq_assert_eq "P:{reports}:paused deleted" 0 "$(rcli EXISTS "$P:{reports}:paused")"

# ---- schedules: validation -------------------------------------------------

put() { # NAME BODY
    req PUT "/api/schedules/$1" "${JSON[@]}" --data-binary "$2"
}
put s1 '{"task":"x","every":"often"}'
expect_error "every as a string" 422 "field 'every'"
put s1 '{"task":"x","cron":"0 0 32 * *"}'
expect_error "a bad cron expression" 422 "field 'cron'"
put s1 '{"task":"x","cron":"0 * * * *","tz":"Mars/Olympus"}'
expect_error "an unknown zone" 422 "field 'tz'"
put s1 '{"task":"x","every":1,"colour":"red"}'
expect_error "an unknown field" 422 "unknown field 'colour'"
put s1 '{"every":1}'
expect_error "no task" 422 "field 'task'"
put s1 '{"name":"s2","task":"x","every":1}'
expect_error "a name that is not the path's" 422 "field 'name'"
put 'bad!name' '{"task":"x","every":1}'
expect_error "a bad name in the path" 422 "field 'name'"
put s1 '{"task":"x","every":1'
expect_error "malformed JSON" 400 "not valid JSON"
put s1 '{"task":"x","every":1,"every":2}'
expect_error "a duplicate key" 400 "not valid JSON"
put s1 '[1,2]'
expect_error "not an object" 422 "JSON object"
req PUT /api/schedules/s1
expect_error "no body" 400 "needs a JSON body"
head -c $((BODY_MAX + 1)) /dev/zero | tr '\0' ' ' >"$TQ_TMP/big"
req PUT /api/schedules/s1 "${JSON[@]}" --data-binary "@$TQ_TMP/big"
expect_error "a body over the limit" 413 "at most $BODY_MAX"
tq_assert_eq "no schedule was written" 0 "$(rcli EXISTS "$P:{@}:schedules")"

# ---- schedules: success, with a beat and a worker --------------------------

tq_spawn worker "$TICKQ_WORKER_BIN" -c 2 --queues ops,sched --tasks "$TICKQ_TEST_TASKS"
tq_spawn beat "$TICKQ_BEAT" --tz Europe/Berlin

put s1 '{"task":"test.count","every":3600,"queue":"ops","args":["s1",0]}'
expect "create s1" 201 '{"created":true,"schedule":{"name":"s1","task":"test.count","every":3600,"queue":"ops","args":["s1",0]}}'
tq_assert_eq "s1 as stored" '{"name":"s1","task":"test.count","every":3600,"queue":"ops","args":["s1",0]}' \
    "$(rcli HGET "$P:{@}:schedules" s1)"
put s1 '{"name":"s1","task":"test.count","every":7200,"queue":"ops","args":["s1",0]}'
expect "replace s1" 200 '{"created":false,"schedule":{"name":"s1","task":"test.count","every":7200,"queue":"ops","args":["s1",0]}}'
tq_assert_eq "s1 replaced" 7200 "$(rcli HGET "$P:{@}:schedules" s1 | jq .every)"

# A cron schedule without "tz" is stored without it: each beat applies
# its own --tz (docs/SCHEDULES.md).
put nightly '{"task":"noop","cron":"30 2 * * *"}'
expect "create nightly" 201 '{"created":true,"schedule":{"name":"nightly","task":"noop","cron":"30 2 * * *"}}'
tq_assert_eq "nightly stored as given" '{"name":"nightly","task":"noop","cron":"30 2 * * *"}' \
    "$(rcli HGET "$P:{@}:schedules" nightly)"

# Run now: a message with a "@run-" id, which the worker runs.
t0=$(date +%s%3N)
req POST /api/schedules/s1/run
tq_assert_eq "run s1: status" 202 "$CODE"
run_id=$(printf '%s' "$BODY" | jq -r .id)
[[ $run_id =~ ^s1@run-([0-9]+)-[0-9a-f]{8}$ ]] ||
    tq_fail "run s1: id '$run_id' is not s1@run-<ms>-<8 hex>"
[ "${BASH_REMATCH[1]}" -ge "$t0" ] || tq_fail "run s1: id '$run_id' is older than the request ($t0)"
expect "run s1" 202 "{\"id\":\"$run_id\",\"queue\":\"ops\"}"
tq_wait_for 30 "the run of s1 finished" "[ \"\$(tq_done '$run_id')\" = success ]"
tq_assert_eq "run s1: its result" "success s1 ops" "$(tq_result "$run_id" '"\(.status) \(.schedule) \(.queue)"')"
tq_assert_eq "run s1: the task ran once" 1 "$(counter s1)"
req POST /api/schedules/nope/run
expect_error "run an unknown schedule" 404 "no schedule 'nope'"
rcli HSET "$P:{@}:schedules" broken '{"name":"broken","task":"noop"}' >/dev/null
req POST /api/schedules/broken/run
expect_error "run a schedule that does not decode" 409 "field 'every'"
req POST /api/schedules/broken/pause
expect_error "pause a schedule that does not decode" 409 "field 'every'"
rcli HDEL "$P:{@}:schedules" broken >/dev/null

# sched_idle: no message of the queue sched waits or runs.
sched_idle() {
    local k
    [ "$(rcli LLEN "$P:{sched}:queue")" = 0 ] || return 1
    for k in $(rcli --scan --pattern "$P:{*}:processing:*"); do
        [ "$(rcli LLEN "$k")" = 0 ] || return 1
    done
}

# Pause and resume on a schedule the beat publishes: ticks stop and go on.
put tick '{"task":"test.count","every":0.5,"queue":"sched","args":["tick",0]}'
tq_assert_eq "create tick: status" 201 "$CODE"
tq_wait_for 30 "the beat publishes tick and the worker runs it" '[ "$(counter tick)" -ge 2 ]'
req POST /api/schedules/tick/pause
expect "pause tick" 200 '{"name":"tick","enabled":false}'
tq_assert_eq "tick stored disabled" \
    '{"name":"tick","task":"test.count","every":0.5,"queue":"sched","args":["tick",0],"enabled":false}' \
    "$(rcli HGET "$P:{@}:schedules" tick)"
req POST /api/schedules/tick/pause
expect "pause tick again" 200 '{"name":"tick","enabled":false}'
# The beat sees the change within about 0.25 s; a tick it published just
# before may still be running. Then nothing more for 2 s (4 ticks' time).
sleep 1
tq_wait_for 30 "sched idle" sched_idle
paused_at=$(counter tick)
sleep 2
tq_assert_eq "a paused schedule publishes nothing" "$paused_at" "$(counter tick)"
req POST /api/schedules/tick/resume
expect "resume tick" 200 '{"name":"tick","enabled":true}'
tq_assert_eq "tick stored enabled" true "$(rcli HGET "$P:{@}:schedules" tick | jq .enabled)"
tq_wait_for 30 "tick publishes again" "[ \"\$(counter tick)\" -ge $((paused_at + 2)) ]"
req POST /api/schedules/nope/pause
expect_error "pause an unknown schedule" 404 "no schedule 'nope'"
req POST /api/schedules/nope/resume
expect_error "resume an unknown schedule" 404 "no schedule 'nope'"

# Delete: the beat stops publishing. (Its tick state is deleted too, but
# the beat may publish once more before it sees the change, which writes
# it again: that is checked below on a schedule the beat does not publish.)
req DELETE /api/schedules/tick
expect "delete tick" 200 '{"deleted":"tick"}'
tq_assert_eq "tick deleted" 0 "$(rcli HEXISTS "$P:{@}:schedules" tick)"
sleep 1
tq_wait_for 30 "sched idle" sched_idle
deleted_at=$(counter tick)
sleep 2
tq_assert_eq "a deleted schedule publishes nothing" "$deleted_at" "$(counter tick)"
req DELETE /api/schedules/tick
expect_error "delete it again" 404 "no schedule 'tick'"
rcli RENAME "$P:{@}:schedules" "$P:schedules-saved" >/dev/null
rcli SET "$P:{@}:schedules" oops >/dev/null
put s3 '{"task":"noop","every":1}'
expect_error "P:schedules of the wrong type" 500 "$P:{@}:schedules"
req DELETE /api/schedules/s1
expect_error "delete with P:schedules of the wrong type" 500 "$P:{@}:schedules"
rcli DEL "$P:{@}:schedules" >/dev/null
rcli RENAME "$P:schedules-saved" "$P:{@}:schedules" >/dev/null
rcli HSET "$P:{@}:schedule-state" s1 1000 >/dev/null
req DELETE /api/schedules/s1
expect "delete s1" 200 '{"deleted":"s1"}'
tq_assert_eq "s1 deleted" 0 "$(rcli HEXISTS "$P:{@}:schedules" s1)"
tq_assert_eq "s1's tick state deleted" 0 "$(rcli HEXISTS "$P:{@}:schedule-state" s1)"

# ---- tasks -----------------------------------------------------------------

t0=$(date +%s)
req POST /api/tasks "${JSON[@]}" --data-binary '{"v":1,"task":"test.count","queue":"ops","args":["enq",0]}'
tq_assert_eq "enqueue without id: status" 201 "$CODE"
enq_id=$(printf '%s' "$BODY" | jq -r .id)
[[ $enq_id =~ ^api-[0-9]{13}-[0-9a-f]{16}$ ]] || tq_fail "enqueue: made-up id '$enq_id' is not api-<ms>-<16 hex>"
expect "enqueue without id" 201 "{\"id\":\"$enq_id\",\"queue\":\"ops\"}"
tq_wait_for 30 "$enq_id finished" "[ \"\$(tq_done '$enq_id')\" = success ]"
tq_assert_eq "the enqueued task ran" 1 "$(counter enq)"

# On a queue no worker reads: the message as pushed.
req POST /api/tasks "${JSON[@]}" --data-binary '{"v":1,"id":"t-given","task":"noop","queue":"idle","kwargs":{"k":[1,2.5]},"future":"kept"}'
expect "enqueue with an id" 201 '{"id":"t-given","queue":"idle"}'
msg=$(rcli LINDEX "$P:{idle}:queue" 0)
tq_assert_eq "the pushed message" \
    '{"v":1,"id":"t-given","task":"noop","queue":"idle","args":[],"kwargs":{"k":[1,2.5]},"attempt":1,"future":"kept"}' \
    "$(printf '%s' "$msg" | jq -c 'del(.enqueued_at)')"
enq_at=$(printf '%s' "$msg" | jq '.enqueued_at | floor')
[ "$enq_at" -ge "$t0" ] && [ "$enq_at" -le $(($(date +%s) + 1)) ] ||
    tq_fail "enqueued_at $enq_at is not now ($t0)"
req POST /api/tasks "${JSON[@]}" --data-binary '{"v":1,"id":"t-at","task":"noop","queue":"idle","enqueued_at":1700000000.5}'
expect "enqueue with enqueued_at" 201 '{"id":"t-at","queue":"idle"}'
tq_assert_eq "a given enqueued_at is kept" 1700000000.5 "$(rcli LINDEX "$P:{idle}:queue" 0 | jq .enqueued_at)"

task() { req POST /api/tasks "${JSON[@]}" --data-binary "$1"; }
task '{"v":1,"task":"noop","args":{}}'
expect_error "args not an array" 422 "field 'args'"
task '{"v":2,"task":"noop"}'
expect_error "protocol version 2" 422 "field 'v'"
task '{"task":"noop"}'
expect_error "no v" 422 "field 'v'"
task '{"v":1}'
expect_error "no task" 422 "field 'task'"
task '{"v":1,"id":"","task":"noop"}'
expect_error "an empty id" 422 "field 'id'"
task '{"v":1,"task":"noop","queue":"bad name"}'
expect_error "a bad queue" 422 "field 'queue'"
task '{"v":1,"task":"noop","timeout":1e300}'
expect_error "a timeout out of range" 422 "field 'timeout'"
task '{"v":1,"task":"noop"'
expect_error "malformed JSON" 400 "not valid JSON"
task '"noop"'
expect_error "not an object" 422 "JSON object"
# Over the 1 MiB of a message but under the body limit: the codec's 413.
printf '{"v":1,"task":"noop","args":["%s"]}' "$(head -c $((1024 * 1024)) /dev/zero | tr '\0' a)" >"$TQ_TMP/bigmsg"
req POST /api/tasks "${JSON[@]}" --data-binary "@$TQ_TMP/bigmsg"
expect_error "a message over 1 MiB" 413 "over the limit"
req POST /api/tasks "${JSON[@]}" --data-binary "@$TQ_TMP/big"
expect_error "a body over the limit" 413 "at most $BODY_MAX"
tq_assert_eq "refused tasks were not pushed" 2 "$(rcli LLEN "$P:{idle}:queue")"
rcli SET "$P:{wrong}:queue" x >/dev/null
task '{"v":1,"task":"noop","queue":"wrong"}'
expect_error "a queue key of the wrong type" 500 "$P:{wrong}:queue"

# ---- retry a dead task -----------------------------------------------------

# A shell task that fails until a file exists: dead after its one attempt.
flaky() { # ID FLAG
    printf '{"v":1,"id":"%s","task":"shell","queue":"ops","max_retries":0,"args":["sh","-c","test -f %s"]}' "$1" "$2"
}
task "$(flaky flaky-1 "$TQ_TMP/flag1")"
tq_assert_eq "enqueue flaky-1: status" 201 "$CODE"
tq_wait_for 30 "flaky-1 is dead" "[ \"\$(tq_done 'flaky-1')\" = failure ] && [ \"\$(rcli LLEN '$DOPS')\" != 0 ]"
tq_assert_eq "flaky-1's dead letter" "max-retries flaky-1" \
    "$(rcli LINDEX "$DOPS" 0 | jq -r '"\(.reason) \(.message | fromjson | .id)"')"
touch "$TQ_TMP/flag1"
req POST /api/tasks/flaky-1/retry
expect "retry flaky-1" 202 '{"id":"flaky-1","queue":"ops"}'
tq_wait_for 30 "flaky-1 ran again" "[ \"\$(tq_done 'flaky-1')\" = success ]"
tq_assert_eq "flaky-1 succeeded" success "$(tq_result flaky-1 .status)"
tq_assert_eq "flaky-1's dead letter is gone" 0 "$(rcli LLEN "$DOPS")"
req POST /api/tasks/flaky-1/retry
expect_error "retry a task that is not dead" 404 "no dead letter for task flaky-1; only dead tasks can be retried"
req POST /api/tasks/never-seen/retry
expect_error "retry an unknown task" 404 "only dead tasks can be retried"

# Dead letters that cannot be requeued: one whose message is not valid
# UTF-8 (message_base64), one whose message does not decode.
b64=$(printf '{"v":1,"id":"b64-1","task":"noop","args":["\377"]}' | base64 -w0)
rcli LPUSH "$P:{default}:dead" "{\"reason\":\"undecodable\",\"error\":\"e\",\"worker\":\"w\",\"dead_at\":1,\"message_base64\":\"$b64\"}" >/dev/null
rcli LPUSH "$P:{default}:dead" "{\"reason\":\"undecodable\",\"error\":\"e\",\"worker\":\"w\",\"dead_at\":1,\"message\":$(jq -Rn '"{\"v\":1,\"id\":\"bad-1\",\"task\":\"noop\",\"args\":5}"')}" >/dev/null
req POST /api/tasks/b64-1/retry
expect_error "retry a base64 dead letter" 409 "message_base64"
req POST /api/tasks/bad-1/retry
expect_error "retry an undecodable dead letter" 409 "field 'args'"
tq_assert_eq "both stay" 2 "$(rcli LLEN "$P:{default}:dead")"

# ---- requeue and purge dead letters ----------------------------------------

for i in 1 2 3; do
    task "$(flaky "flaky-r$i" "$TQ_TMP/flag2")"
    tq_wait_for 30 "flaky-r$i is dead" "[ \"\$(tq_done 'flaky-r$i')\" = failure ]"
done
tq_assert_eq "five dead letters" 5 "$(dead_total)"
touch "$TQ_TMP/flag2"
for b in '{"ids":"x"}' '{"ids":[1]}' '{"what":1}' '[1]' '{"ids":['; do
    req POST /api/dead/requeue "${JSON[@]}" --data-binary "$b"
    tq_assert_eq "requeue with the body $b: status" 400 "$CODE"
done
req POST /api/dead/requeue "${JSON[@]}" --data-binary '{"ids":"x"}'
expect_error "requeue with ids not an array" 400 "field 'ids'"
tq_assert_eq "bad bodies requeued nothing" 5 "$(dead_total)"

# By id: only flaky-r1; bad-1 is skipped, nope is not found.
req POST /api/dead/requeue "${JSON[@]}" --data-binary '{"ids":["flaky-r1","bad-1","nope"]}'
expect "requeue by ids" 200 '{"requeued":1,"skipped":[{"index":0,"reason":"field '"'args'"': must be an array","id":"bad-1"}],"remaining":0,"not_found":["nope"]}'
tq_wait_for 30 "flaky-r1 ran again" "[ \"\$(tq_done 'flaky-r1')\" = success ]"
tq_assert_eq "four dead letters left" 4 "$(dead_total)"
req POST /api/dead/requeue "${JSON[@]}" --data-binary '{"ids":[]}'
expect "requeue no ids" 200 '{"requeued":0,"skipped":[],"remaining":0,"not_found":[]}'

# All: each queue's, the oldest first; the two that cannot be requeued
# stay, listed with their place in their list (0 = newest).
req POST /api/dead/requeue
expect "requeue all" 200 '{"requeued":2,"skipped":[{"index":1,"reason":"its message is not valid UTF-8 (message_base64): it cannot be decoded","id":"b64-1"},{"index":0,"reason":"field '"'args'"': must be an array","id":"bad-1"}],"remaining":0}'
for i in 2 3; do
    tq_wait_for 30 "flaky-r$i ran again" "[ \"\$(tq_done 'flaky-r$i')\" = success ]"
done
tq_assert_eq "requeued attempts start at 1 again" "1 null" \
    "$(rcli GET "$P:{ops}:result:flaky-r2" | jq -c -r '"\(.attempts) \(.errors)"')"
tq_assert_eq "the two left" "bad-1 b64-1" \
    "$(rcli LRANGE "$P:{default}:dead" 0 -1 | jq -r '(.message | fromjson? | .id) // "b64-1"' | paste -sd' ')"
req POST /api/dead/requeue "${JSON[@]}" --data-binary '{}'
tq_assert_eq "requeue all with {}: status" 200 "$CODE"
tq_assert_eq "requeue all with {}: nothing requeued" "0 2" "$(printf '%s' "$BODY" | jq -r '"\(.requeued) \(.skipped | length)"')"

rcli RENAME "$P:{default}:dead" "$P:dead-saved" >/dev/null
rcli SET "$P:{default}:dead" oops >/dev/null
req POST /api/dead/requeue
expect_error "requeue with P:dead of the wrong type" 500 "$P:{default}:dead"
req POST /api/tasks/bad-1/retry
expect_error "retry with P:dead of the wrong type" 500 "$P:{default}:dead"
req DELETE /api/dead
expect_error "purge with P:dead of the wrong type" 500 "$P:{default}:dead"
tq_assert_eq "P:dead left alone" oops "$(rcli GET "$P:{default}:dead")"
rcli DEL "$P:{default}:dead" >/dev/null
rcli RENAME "$P:dead-saved" "$P:{default}:dead" >/dev/null

req DELETE /api/dead
expect "purge" 200 '{"deleted":2}'
tq_assert_eq "P:dead is gone" 0 "$(rcli EXISTS "$P:{default}:dead")"
req DELETE /api/dead
expect "purge nothing" 200 '{"deleted":0}'

# What a retry writes, exactly: the message with attempt 1, no errors and
# enqueued now (the rest as it was, unknown fields too), on its queue; the
# done marker and the delivery count of that task gone, others untouched.
letter() { # MESSAGE-JSON: a dead letter holding it
    jq -cn --arg m "$1" '{reason: "max-retries", error: "e", worker: "w", dead_at: 1, message: $m}'
}
rcli SADD "$P:{@}:queues" idle2 >/dev/null
rcli LPUSH "$P:{idle2}:dead" "$(letter '{"v":1,"id":"hand-1","task":"noop","queue":"idle2","attempt":4,"max_retries":3,"errors":[{"attempt":1,"error":"x"}],"enqueued_at":1.5,"custom":"kept"}')" >/dev/null
rcli SET "$P:{idle2}:result:hand-1" '{"id":"hand-1","status":"failure"}' >/dev/null
rcli HSET "$P:{idle2}:deliveries" hand-1 7 other 2 >/dev/null
t0=$(date +%s)
req POST /api/tasks/hand-1/retry
expect "retry hand-1" 202 '{"id":"hand-1","queue":"idle2"}'
msg=$(rcli LINDEX "$P:{idle2}:queue" 0)
tq_assert_eq "the retried message" \
    '{"v":1,"id":"hand-1","task":"noop","queue":"idle2","args":[],"kwargs":{},"attempt":1,"max_retries":3,"custom":"kept"}' \
    "$(printf '%s' "$msg" | jq -c 'del(.enqueued_at)')"
enq_at=$(printf '%s' "$msg" | jq '.enqueued_at | floor')
[ "$enq_at" -ge "$t0" ] || tq_fail "the retried message's enqueued_at $enq_at is not now ($t0)"
tq_assert_eq "hand-1's result (its done marker) deleted" 0 "$(rcli EXISTS "$P:{idle2}:result:hand-1")"
tq_assert_eq "hand-1's deliveries deleted, not the others'" "0 2" \
    "$(rcli HEXISTS "$P:{idle2}:deliveries" hand-1) $(rcli HGET "$P:{idle2}:deliveries" other)"
tq_assert_eq "hand-1's dead letter gone" 0 "$(rcli LLEN "$P:{idle2}:dead")"

# A dead letter whose queue key is of the wrong type stays, and says why.
rcli SADD "$P:{@}:queues" wrong >/dev/null
rcli LPUSH "$P:{wrong}:dead" "$(letter '{"v":1,"id":"wq-1","task":"noop","queue":"wrong"}')" >/dev/null
req POST /api/tasks/wq-1/retry
expect_error "retry to a queue key of the wrong type" 500 "key $P:{wrong}:queue is a string, not a list"
req POST /api/dead/requeue
expect "requeue to a queue key of the wrong type" 200 \
    "{\"requeued\":0,\"skipped\":[{\"index\":0,\"reason\":\"key $P:{wrong}:queue is a string, not a list\",\"id\":\"wq-1\"}],\"remaining\":0}"
tq_assert_eq "wq-1 stays" 1 "$(rcli LLEN "$P:{wrong}:dead")"
req DELETE /api/dead
expect "purge wq-1" 200 '{"deleted":1}'

# Many: 10 050 dead letters, one in 201 undecodable. A request reads at
# most 10 000 (the oldest), in pages; the undecodable ones stay where they
# were and are listed with their place (the letters newer than bulk-k:
# 10050 - k, as none of those was requeued yet); 50 are left for the next
# request. The queue gets them oldest first, so they run in order.
rcli EVAL "for i = 1, 10050 do
  local m = '{\"v\":1,\"id\":\"bulk-' .. i .. '\",\"task\":\"noop\",\"queue\":\"bulk\"' ..
            (i % 201 == 0 and ',\"args\":5' or '') .. '}'
  redis.call('LPUSH', KEYS[1], cjson.encode({reason = 'max-retries', error = 'e',
                                             worker = 'w', dead_at = 1, message = m}))
end" 1 "$P:{bulk}:dead" >/dev/null
rcli SADD "$P:{@}:queues" bulk >/dev/null
tq_assert_eq "10 050 dead letters" 10050 "$(rcli LLEN "$P:{bulk}:dead")"
tq_assert_eq "as written" '{"v":1,"id":"bulk-201","task":"noop","queue":"bulk","args":5}' \
    "$(rcli LINDEX "$P:{bulk}:dead" $((10050 - 201)) | jq -r .message)"
t0=$(date +%s%3N)
req POST /api/dead/requeue
tq_log "requeueing 10 000 dead letters took $(($(date +%s%3N) - t0)) ms"
tq_assert_eq "bulk: status" 200 "$CODE"
tq_assert_eq "bulk: counts" "9951 49 50" "$(printf '%s' "$BODY" | jq -r '"\(.requeued) \(.skipped | length) \(.remaining)"')"
tq_assert_eq "bulk: the first skipped" '{"index":9849,"reason":"field '"'args'"': must be an array","id":"bulk-201"}' \
    "$(printf '%s' "$BODY" | jq -c '.skipped[0]')"
tq_assert_eq "bulk: the places of the skipped" \
    "$(for j in $(seq 49); do echo "$((10050 - 201 * j)) bulk-$((201 * j))"; done)" \
    "$(printf '%s' "$BODY" | jq -r '.skipped[] | "\(.index) \(.id)"')"
tq_assert_eq "bulk: the queue, oldest at the consuming end" "9951 bulk-1 bulk-10000" \
    "$(rcli LLEN "$P:{bulk}:queue") $(rcli LINDEX "$P:{bulk}:queue" -1 | jq -r .id) $(rcli LINDEX "$P:{bulk}:queue" 0 | jq -r .id)"
tq_assert_eq "bulk: dead letters left" 99 "$(rcli LLEN "$P:{bulk}:dead")"
req POST /api/dead/requeue
tq_assert_eq "bulk again: status" 200 "$CODE"
tq_assert_eq "bulk again: counts" "49 50 0" "$(printf '%s' "$BODY" | jq -r '"\(.requeued) \(.skipped | length) \(.remaining)"')"
tq_assert_eq "bulk again: the queue" "10000 bulk-10049" \
    "$(rcli LLEN "$P:{bulk}:queue") $(rcli LINDEX "$P:{bulk}:queue" 0 | jq -r .id)"
req DELETE /api/dead
expect "purge the undecodable 50" 200 '{"deleted":50}'

# ---- the audit stream ------------------------------------------------------

# One entry per successful mutation, in order, with its method, path,
# address, status and what it did; none for the refused ones.
rcli --json XRANGE "$P:{@}:audit" - + >"$TQ_TMP/audit.json"
audit=$(jq -r '.[] | .[1] as $f | [range(0; $f | length; 2) | {($f[.]): $f[. + 1]}] | add
    | "\(.method) \(.path)"' "$TQ_TMP/audit.json")
tq_assert_eq "the audit stream lists every successful mutation" \
    "$(printf '%s\n' "${MUTATIONS[@]}")" "$audit"
fields=$(jq -r '.[] | .[1] as $f | [range(0; $f | length; 2) | {($f[.]): $f[. + 1]}] | add
    | "\(.remote) \(.status | test("^2")) \(.what | length > 0) \(.ts | test("^[0-9]{13}$"))"' \
    "$TQ_TMP/audit.json" | sort -u)
tq_assert_eq "every entry has the address, a 2xx status, what and when" "127.0.0.1 true true true" "$fields"
whats=$(jq -r '.[] | .[1] as $f | [range(0; $f | length; 2) | {($f[.]): $f[. + 1]}] | add | .what' \
    "$TQ_TMP/audit.json")
for w in "paused queue reports" "paused queue reports (it was paused already)" "resumed queue reports" \
    "created schedule s1" "replaced schedule s1" "paused schedule tick" "resumed schedule tick" \
    "deleted schedule tick" "deleted schedule s1" "ran schedule s1 now: task $run_id on queue ops" \
    "enqueued task t-given on queue idle" "retried task flaky-1 on queue ops" \
    "requeued 1 of 3 dead letters by id" "requeued 2 dead letters (2 skipped, 0 remaining)" \
    "deleted all 2 dead letters"; do
    printf '%s\n' "$whats" | grep -qxF "$w" || tq_fail "no audit entry '$w' in: $whats"
done
tq_log "ok: ${#MUTATIONS[@]} audit entries, one per successful mutation"
stop_web

# ---- the token from TICKQ_API_TOKEN ----------------------------------------

TICKQ_API_TOKEN=$TOKEN2 start_web
AUTH=(-H "Authorization: Bearer $TOKEN")
req POST /api/queues/envq/pause
expect_error "the file's token with TICKQ_API_TOKEN set" 401 "wrong API token"
AUTH=(-H "Authorization: Bearer $TOKEN2")
req POST /api/queues/envq/pause
expect "pause with TICKQ_API_TOKEN's token" 200 '{"queue":"envq","paused":true}'
tq_assert_eq "envq in P:paused" 1 "$(rcli EXISTS "$P:{envq}:paused")"
tq_assert_eq "audited" "POST /api/queues/envq/pause paused queue envq" \
    "$(rcli --json XREVRANGE "$P:{@}:audit" + - COUNT 1 |
        jq -r '.[0][1] as $f | [range(0; $f | length; 2) | {($f[.]): $f[. + 1]}] | add | "\(.method) \(.path) \(.what)"')"
# Redis answering too late (a script holds it 3-4 s, past the web's 2 s):
# a 503. When the change reached Redis (the thread's connection was up) it
# says the change may have been made and the audit says "outcome unknown";
# when it never left (a new connection waits in its login), neither.
before=$(rcli XLEN "$P:{@}:audit")
rcli EVAL "local e = tonumber(redis.call('TIME')[1]) + 4
    while tonumber(redis.call('TIME')[1]) < e do end" 0 >/dev/null &
busy=$!
sleep 0.5
req POST /api/queues/slowq/pause
tq_assert_eq "pause while redis is busy: status" 503 "$CODE"
wait "$busy" || true
sleep 4 # the audit's tries
last=$(rcli --json XREVRANGE "$P:{@}:audit" + - COUNT 1 |
    jq -r '.[0][1] as $f | [range(0; $f | length; 2) | {($f[.]): $f[. + 1]}] | add | "\(.status) \(.what)"')
case $BODY in
*"may have been made"*)
    tq_assert_eq "an unknown outcome audited" \
        "503 outcome unknown: redis did not answer, the change may have been made" "$last" ;;
*)
    tq_assert_eq "a change that never left: not audited" "$before" "$(rcli XLEN "$P:{@}:audit")"
    tq_assert_eq "a change that never left: not made" 0 "$(rcli EXISTS "$P:{slowq}:paused")" ;;
esac
stop_web

# ---- tokens never in a log --------------------------------------------------

for t in "$TOKEN" "$TOKEN2"; do
    if grep -qF -- "$t" "$TQ_TMP"/*.log; then
        tq_fail "a token appears in a log: $(grep -lF -- "$t" "$TQ_TMP"/*.log)"
    fi
done
grep -q "POST /api/queues/envq/pause" "$TQ_TMP/web.log" ||
    tq_fail "the web's debug log does not show the requests (so the grep above proves nothing)"
tq_log "ok: no token in any log"
