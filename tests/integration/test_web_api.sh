#!/usr/bin/env bash
# tickq-web's JSON reads against a real system (beat, worker, web, Redis):
# /api/overview, /api/queues, /api/workers, /api/schedules[/<name>],
# /api/tasks (search, filters, every page by cursor), /api/tasks/<id>
# (finished, running with its lock holder, unknown), /api/dead and
# /api/audit, each compared with what Redis holds; bad query parameters are
# 400, a key of the wrong type is a 500 naming it, Redis down is 503.
. "$(dirname "$0")/lib.sh"

tq_redis_start
tq_require_empty

cat >"$TQ_TMP/schedules.json" <<'EOF'
{"schedules": [
  {"name": "timer", "task": "timer.tick", "every": 1},
  {"name": "nightly", "task": "noop", "cron": "0 3 * * *", "tz": "Europe/Paris", "queue": "reports"}
]}
EOF
P=$TQ_PREFIX
tq_spawn beat "$TICKQ_BEAT" --redis-url "$REDIS_URL" --prefix "$P" --schedules "$TQ_TMP/schedules.json"
BEAT_PID=$TQ_LAST_PID
tq_spawn worker "$TICKQ_WORKER_BIN" --redis-url "$REDIS_URL" --prefix "$P" -c 2 \
    --queues default,reports --worker-id w-api --max-retries 0
WORKER_PID=$TQ_LAST_PID
tq_start_web --redis-url "$REDIS_URL" --prefix "$P"
BASE="http://127.0.0.1:$WEB_PORT"

# get PATH: a GET; CODE gets its status, $TQ_TMP/body its body.
get() {
    CODE=$(curl -s --max-time 10 -o "$TQ_TMP/body" -w '%{http_code}' "$BASE$1") || CODE=000
}
# json PATH FILTER: a jq filter applied to the body of a GET that must be 200.
json() {
    get "$1"
    [ "$CODE" = 200 ] || tq_fail "GET $1: status $CODE: $(cat "$TQ_TMP/body")"
    jq -r "$2" "$TQ_TMP/body"
}
expect_status() { # PATH STATUS GREP
    get "$1"
    tq_assert_eq "GET $1: status" "$2" "$CODE"
    [ -z "${3:-}" ] || grep -q -- "$3" "$TQ_TMP/body" || tq_fail "GET $1: no '$3' in $(cat "$TQ_TMP/body")"
}

tq_wait_for 20 "three ticks counted" '[ "$(rcli GET "$P:{default}:counter:timer" 2>/dev/null || echo 0)" -ge 3 ]'

# ---- a failing task, a dead letter, a long task, a held queue ----------------
rcli LPUSH "$P:{default}:queue" "$(tq_msg f-1 fail)" >/dev/null
rcli LPUSH "$P:{default}:queue" "$(tq_msg ghost-1 no.such.task)" >/dev/null
rcli SET "$P:{held}:paused" 1 >/dev/null; rcli SADD "$P:{@}:queues" held >/dev/null
for i in 1 2 3; do
    rcli LPUSH "$P:{held}:queue" "{\"v\":1,\"id\":\"h-$i\",\"task\":\"noop\",\"queue\":\"held\",\"enqueued_at\":$(($(date +%s) - 5))}" >/dev/null
done
tq_wait_for 20 "f-1 done" '[ "$(tq_done "f-1")" != "" ]'
tq_wait_for 20 "the unknown task dead-lettered" '[ "$(rcli LLEN "$P:{default}:dead")" -ge 1 ]'
rcli LPUSH "$P:{default}:queue" "$(tq_msg long-1 sleep '[30]' '"timeout":60')" >/dev/null
tq_wait_for 20 "long-1 running" '[ "$(rcli GET "$P:{default}:lock:long-1")" = w-api ]'

# ---- /api/workers ------------------------------------------------------------
tq_assert_eq "workers: one" 1 "$(json /api/workers 'length')"
tq_assert_eq "workers: id" w-api "$(json /api/workers '.[0].id')"
tq_assert_eq "workers: alive" true "$(json /api/workers '.[0].alive')"
tq_assert_eq "workers: queues" "default,reports" "$(json /api/workers '.[0].queues | join(",")')"
tq_assert_eq "workers: concurrency" 2 "$(json /api/workers '.[0].concurrency')"
tq_assert_eq "workers: pid" "$(rcli HGET "$P:{@}:worker:w-api" pid)" "$(json /api/workers '.[0].pid')"
tq_assert_eq "workers: running" long-1 "$(json /api/workers '.[0].running | join(",")')"

# ---- /api/queues ---------------------------------------------------------------
tq_assert_eq "queues: held depth" 3 "$(json /api/queues '.[] | select(.name=="held") | .depth')"
tq_assert_eq "queues: held paused" true "$(json /api/queues '.[] | select(.name=="held") | .paused')"
lat=$(json /api/queues '.[] | select(.name=="held") | .latency_s')
jq -e --argjson l "$lat" -n '$l >= 4 and $l < 120' >/dev/null ||
    tq_fail "queues: held latency $lat s, expected the age of its oldest message (~5 s)"
tq_assert_eq "queues: reports (a schedule's queue) listed" 1 \
    "$(json /api/queues '[.[] | select(.name=="reports")] | length')"
tq_assert_eq "queues: default processing" 1 \
    "$(json /api/queues '.[] | select(.name=="default") | .processing')"

# More queues than one pipeline carries (two commands a queue): all listed.
for i in $(seq 140); do echo "SET $P:{many-$i}:paused 1"; echo "SADD $P:{@}:queues many-$i"; done | rcli >/dev/null
tq_assert_eq "queues: 140 paused queues listed" 140 "$(json /api/queues '[.[] | select(.name | startswith("many-"))] | length')"
tq_assert_eq "queues: the held queue still right" 3 "$(json /api/queues '.[] | select(.name=="held") | .depth')"
for i in $(seq 140); do echo "DEL $P:{many-$i}:paused"; echo "SREM $P:{@}:queues many-$i"; done | rcli >/dev/null

# ---- /api/schedules ------------------------------------------------------------
tq_assert_eq "schedules: two" 2 "$(json /api/schedules 'length')"
tq_assert_eq "schedules: timer every" 1 "$(json /api/schedules '.[] | select(.name=="timer") | .every')"
tq_assert_eq "schedules: three next runs" 3 \
    "$(json /api/schedules '.[] | select(.name=="timer") | .next_runs | length')"
json /api/schedules '.[] | select(.name=="timer") | .next_runs | (.[0] < .[1] and .[1] < .[2])' |
    grep -qx true || tq_fail "schedules: timer's next runs are not increasing"
# 03:00 in Paris is 02:00Z in winter (CET) and 01:00Z in summer (CEST).
hour=$(json /api/schedules '.[] | select(.name=="nightly") | .next_runs[0][11:19]')
case $hour in 02:00:00|01:00:00) tq_log "ok: nightly next run at $hour Z" ;;
    *) tq_fail "schedules: nightly next run at $hour Z, expected 02:00 or 01:00" ;; esac
tq_assert_eq "schedules: nightly tz" Europe/Paris "$(json /api/schedules '.[] | select(.name=="nightly") | .tz')"
n=$(json /api/schedules/timer '.history | length')
[ "$n" -ge 3 ] || tq_fail "schedules/timer: $n runs in its history, expected at least 3"
tq_assert_eq "schedules/timer: runs link their tick" true \
    "$(json /api/schedules/timer '[.history[] | (.id | ltrimstr("timer@") | tonumber / 1000 | todate[0:19]) == .tick[0:19]] | all')"
tq_assert_eq "schedules/timer: runs succeeded" success "$(json /api/schedules/timer '[.history[].status] | unique | join(",")')"
expect_status /api/schedules/nope 404 "no schedule named nope"
expect_status "/api/schedules/bad!name" 400 "schedule name"

# ---- /api/tasks: every page, then filters ---------------------------------------
kill -TERM "$BEAT_PID"
tq_wait_for 20 "the queue drained" '[ "$(rcli LLEN "$P:{default}:queue")" = 0 ]'
last=$(rcli HGET "$P:{@}:schedule-state" timer)
tq_assert_eq "schedules: timer last run" "$(date -u -d "@$((last / 1000))" +%Y-%m-%dT%H:%M:%S)" \
    "$(json /api/schedules '.[] | select(.name=="timer") | .last_run[0:19]')"
tq_wait_for 20 "the last tick done" '[ "$(tq_done "timer@$last")" = success ]'
tq_assert_eq "schedules: timer's last result is its last tick's" "timer@$last success" \
    "$(json /api/schedules '.[] | select(.name=="timer") | .last_result | "\(.id) \(.status)"')"
tq_assert_eq "schedules: nightly has run never" null \
    "$(json /api/schedules '.[] | select(.name=="nightly") | .last_result')"
# Scores no clock gives (written by a client) must not make a page skip one.
for sc in inf 1e300 1e15 1e15; do
    rcli ZADD "$P:{default}:tasks" "$sc" "$(printf 'success\tdefault\tnoop\t\tfar-%s-%s' "$sc" "$RANDOM")" >/dev/null
done
expected=$(rcli ZREVRANGE "$P:{default}:tasks" 0 -1 | awk -F'\t' '{print $5}' | paste -sd, -)
[ -n "$expected" ] || tq_fail "P:tasks is empty: the worker did not index its tasks"
got=() cursor=""
for _ in $(seq 100); do
    json "/api/tasks?limit=2${cursor:+&cursor=$cursor}" . >/dev/null
    page=$(cat "$TQ_TMP/body")
    n=$(jq '.items | length' <<<"$page")
    [ "$n" -le 2 ] || tq_fail "tasks: page of $n items with limit=2"
    while read -r id; do [ -n "$id" ] && got+=("$id"); done < <(jq -r '.items[].id' <<<"$page")
    cursor=$(jq -r '.cursor // empty' <<<"$page")
    [ -n "$cursor" ] || break
done
tq_assert_eq "tasks: every page, newest first, equals P:tasks" "$expected" "$(IFS=,; echo "${got[*]}")"
rcli ZREMRANGEBYSCORE "$P:{default}:tasks" 1e15 +inf >/dev/null
tq_assert_eq "tasks: state=dead (retries used up)" f-1 "$(json '/api/tasks?state=dead' '[.items[].id] | join(",")')"
tq_assert_eq "tasks: state=success are ticks" true \
    "$(json '/api/tasks?state=success&limit=1000' '[.items[] | .status == "success" and (.id | startswith("timer@"))] | all')"
tq_assert_eq "tasks: task=fail" f-1 "$(json '/api/tasks?task=fail' '[.items[].id] | join(",")')"
tq_assert_eq "tasks: id prefix" f-1 "$(json '/api/tasks?q=f-' '[.items[].id] | join(",")')"
tq_assert_eq "tasks: schedule=timer are ticks" true \
    "$(json '/api/tasks?schedule=timer&limit=1000' '[.items[].id | startswith("timer@")] | all')"
tq_assert_eq "tasks: a finished tick's runtime" true \
    "$(json '/api/tasks?schedule=timer&limit=1' '.items[0].runtime >= 0')"
expect_status "/api/tasks?limit=0" 400 "limit"
expect_status "/api/tasks?limit=abc" 400 "limit"
expect_status "/api/tasks?cursor=nonsense" 400 "cursor"
expect_status "/api/tasks?state=%ZZ" 400 "state"

# ---- /api/tasks/<id> -------------------------------------------------------------
tq_assert_eq "task f-1: state" dead "$(json /api/tasks/f-1 '.state')"
tq_assert_eq "task f-1: its result" failure "$(json /api/tasks/f-1 '.result.status')"
tq_assert_eq "task f-1: the error" "$(tq_result f-1 .error)" "$(json /api/tasks/f-1 '.error')"
tq_assert_eq "task long-1: running" running "$(json /api/tasks/long-1 '.state')"
tq_assert_eq "task long-1: lock holder" w-api "$(json /api/tasks/long-1 '.lock.worker')"
tq_assert_eq "task long-1: its message" sleep "$(json /api/tasks/long-1 '.message.task')"
tq_assert_eq "task ghost-1: dead" dead "$(json /api/tasks/ghost-1 '.state')"
tq_assert_eq "task ghost-1: reason" unknown-task "$(json /api/tasks/ghost-1 '.dead_letter.reason')"
expect_status /api/tasks/never-was 404 "no task never-was"

# ---- /api/dead and /api/audit ---------------------------------------------------------
tq_assert_eq "dead: total" "$(rcli LLEN "$P:{default}:dead")" "$(json /api/dead '.total')"
tq_assert_eq "dead: the unknown task's reason" unknown-task \
    "$(json /api/dead '.items[] | select(.id=="ghost-1") | .reason')"
expect_status "/api/dead?cursor=-1" 400 "cursor"
expect_status "/api/dead?cursor=1-x" 400 "cursor"
# Paging while letters arrive: the next page goes on where the last one ended.
rcli RENAME "$P:{default}:dead" "$P:dead-saved" >/dev/null
letter() { printf '{"reason":"failed","error":"e","message":"{\\"v\\":1,\\"id\\":\\"%s\\",\\"task\\":\\"noop\\"}"}' "$1"; }
for i in 1 2 3 4 5; do rcli LPUSH "$P:{default}:dead" "$(letter "d-$i")" >/dev/null; done
tq_assert_eq "dead page 1" "d-5 d-4" "$(json '/api/dead?limit=2' '[.items[].id] | join(" ")')"
cursor=$(jq -r .cursor "$TQ_TMP/body")
for i in 6 7 8; do rcli LPUSH "$P:{default}:dead" "$(letter "d-$i")" >/dev/null; done
tq_assert_eq "dead page 2, three letters later" "d-3 d-2" \
    "$(json "/api/dead?limit=2&cursor=$cursor" '[.items[].id] | join(" ")')"
cursor=$(jq -r .cursor "$TQ_TMP/body")
tq_assert_eq "dead page 3" "d-1" "$(json "/api/dead?limit=2&cursor=$cursor" '[.items[].id] | join(" ")')"
tq_assert_eq "dead page 3: the last" null "$(jq -r .cursor "$TQ_TMP/body")"
# A byte budget: 3 MiB letters come two a page, whatever the limit; a letter
# over 8 MiB is shown as its size; a task's detail finds its id in a big one.
rcli DEL "$P:{default}:dead" >/dev/null
big() { /usr/bin/python3 -c 'import json,sys; import time; print(json.dumps({"reason":"failed","dead_at":time.time(),"error":"x"*int(sys.argv[2]),"message":json.dumps({"v":1,"id":sys.argv[1],"task":"noop"})}))' "$1" "$2"; }
for i in 1 2 3; do big "b-$i" 3000000 | rcli -x LPUSH "$P:{default}:dead" >/dev/null; done
big b-huge 9000000 | rcli -x RPUSH "$P:{default}:dead" >/dev/null
tq_assert_eq "3 MiB letters: two a page" "b-3 b-2" "$(json '/api/dead?limit=50' '[.items[].id] | join(" ")')"
cursor=$(jq -r .cursor "$TQ_TMP/body")
tq_assert_eq "3 MiB letters: then the third and the huge one" "b-1 unreadable" \
    "$(json "/api/dead?limit=50&cursor=$cursor" '[.items[] | .id // .reason] | join(" ")')"
jq -r '.items[1].error' "$TQ_TMP/body" | grep -qE "dead letter of 9000[0-9]{3} bytes" ||
    tq_fail "the huge letter: $(jq -c '.items[1]' "$TQ_TMP/body")"
tq_assert_eq "detail: found in a 3 MiB letter" dead "$(json /api/tasks/b-2 '.state')"
tq_assert_eq "detail: its message" b-2 "$(json /api/tasks/b-2 '.message.id')"
# Ids that hold the id: the detail reads on past them to the exact one.
for i in 1 10 11 12 13 14; do rcli LPUSH "$P:{default}:dead" "$(letter "job-$i")" >/dev/null; done
tq_assert_eq "detail: job-1 behind five ids that contain it" job-1 "$(json /api/tasks/job-1 '.message.id')"
# Enqueued again under its id: the newer of result and dead letter says.
rcli SET "$P:{default}:result:b-2" "{\"status\":\"success\",\"finished\":$(($(date +%s) + 5))}" >/dev/null
tq_assert_eq "detail: a success after the dead letter" success "$(json /api/tasks/b-2 '.state')"
rcli SET "$P:{default}:result:b-2" '{"status":"failure","finished":1}' >/dev/null
tq_assert_eq "detail: a result older than the dead letter" dead "$(json /api/tasks/b-2 '.state')"
rcli DEL "$P:{default}:result:b-2" >/dev/null
rcli DEL "$P:{default}:dead" >/dev/null
rcli RENAME "$P:dead-saved" "$P:{default}:dead" >/dev/null
tq_assert_eq "audit: empty" 0 "$(json /api/audit '.items | length')"
rcli XADD "$P:{@}:audit" '*' ts 1764096000000 method POST path /api/queues/x/pause remote 127.0.0.1 status 200 what "paused queue x" >/dev/null
tq_assert_eq "audit: an entry" "paused queue x" "$(json /api/audit '.items[0].what')"
tq_assert_eq "audit: its time" 2025-11-25T18:40:00.000Z "$(json /api/audit '.items[0].ts')"
expect_status "/api/audit?cursor=x" 400 "stream id"
expect_status "/api/audit?cursor=99999999999999999999999-0" 400 "stream id"

# ---- /api/overview -----------------------------------------------------------------
tq_assert_eq "overview: processed = P:stats" "$(rcli HGET "$P:{default}:stats" processed)" \
    "$(json /api/overview '.counts.processed')"
tq_assert_eq "overview: the last hour's minutes add up to P:stats" "$(rcli HGET "$P:{default}:stats" processed)" \
    "$(json /api/overview '[.minutes[].processed] | add')"
tq_assert_eq "overview: 60 minutes" 60 "$(json /api/overview '.minutes | length')"
tq_assert_eq "overview: workers alive" 1 "$(json /api/overview '.workers.alive')"
tq_assert_eq "overview: in queues (the held ones)" 3 "$(json /api/overview '.counts.in_queues')"
tq_assert_eq "overview: running" 1 "$(json /api/overview '.counts.running')"
tq_assert_eq "overview: redis ok" true "$(json /api/overview '.redis.ok')"
tq_assert_eq "overview: redis version" "$(rcli INFO server | tr -d '\r' | sed -n 's/^redis_version://p')" \
    "$(json /api/overview '.redis.version')"
# The broker library gone (a flushed or restarted Redis) or of another
# version: the overview's pipelined tickq_hgetall_bounded finds it so, and
# the web calls it again after loading its own. The worker (the beat has
# stopped) is paused meanwhile, so that the web is the one that loads it.
for lib in flushed another; do
    loads=$(grep -c "loaded the tickq function library" "$TQ_TMP/web.log" || true)
    kill -STOP "$WORKER_PID"
    if [ "$lib" = flushed ]; then
        rcli FUNCTION FLUSH >/dev/null
    else
        cat "$TICKQ_SOURCE_DIR"/common/lua/*.lua <(echo "VERSION = 'another'") |
            rcli -x FUNCTION LOAD REPLACE >/dev/null
    fi
    get /api/overview
    kill -CONT "$WORKER_PID"
    tq_assert_eq "overview with the library $lib: status" 200 "$CODE"
    tq_assert_eq "overview with the library $lib: loaded by the web" $((loads + 1)) \
        "$(grep -c "loaded the tickq function library" "$TQ_TMP/web.log")"
    got=$(jq -r '.queues[] | select(.name=="default") | .processed' "$TQ_TMP/body")
    tq_assert_eq "overview with the library $lib: processed by queue" \
        "$(json /api/queues '.[] | select(.name=="default") | .processed')" "$got"
    [ "$got" -gt 0 ] || tq_fail "overview with the library $lib: default processed $got"
done
# A minute of the wrong type counts 0 and says so; the others still count.
m=$(( $(date +%s) / 60 - 30 ))
rcli SET "$P:{default}:minute:$m" "not a hash" >/dev/null
tq_assert_eq "overview: that minute counts 0" 0 \
    "$(json /api/overview ".minutes[] | select(.minute == $m) | .processed")"
json /api/overview '.warnings' | grep -qF "1 of the last hour's minute keys hold a value of the wrong type ($P:{default}:minute:$m first)" ||
    tq_fail "overview: no warning about $P:{default}:minute:$m: $(cat "$TQ_TMP/body")"
rcli DEL "$P:{default}:minute:$m" >/dev/null

# ---- bodies: bounded, read only after the token check ---------------------------
tq_spawn web2 "$TICKQ_WEB" --listen "127.0.0.1:$(tq_free_port)" --redis-url "$REDIS_URL" --prefix "$P" \
    --api-token right-token
WEB2_PID=$TQ_LAST_PID
tq_wait_for 10 "the second web listens" "grep -q listening '$TQ_TMP/web2.log'"
BASE2=$(sed -n 's/.*listening on \(http:[^ ]*\) .*/\1/p' "$TQ_TMP/web2.log" | head -n 1)
t0=$(date +%s%N)
code=$(printf 'POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 100000000000\r\n\r\n' |
    timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/${BASE2##*:}; cat >&3; head -n 1 <&3" | tr -d '\r')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
tq_assert_eq "100 GB body, wrong token: answered at once" "HTTP/1.1 401 Unauthorized" "$code"
[ "$ms" -lt 3000 ] || tq_fail "100 GB body, wrong token: answered after $ms ms"
code=$(curl -s -o "$TQ_TMP/body" -w '%{http_code}' -H 'Authorization: Bearer right-token' \
    -H 'Transfer-Encoding: chunked' --data-binary '{"v":1,"task":"noop"}' "$BASE2/api/tasks")
tq_assert_eq "chunked body: 411" 411 "$code"
expect_status "/api/tasks?limit=1e3" 400 "limit"
# Expect: 100-continue is answered (curl waits a second for it otherwise).
body=$(printf '{"v":1,"id":"exp-1","task":"noop","queue":"held","kwargs":{"pad":"%01000d"}}' 0)
out=$(curl -s -o "$TQ_TMP/body" -w '%{http_code} %{time_total}' -H 'Authorization: Bearer right-token' \
    -H 'Expect: 100-continue' --data-binary "$body" "$BASE2/api/tasks")
tq_assert_eq "Expect: 100-continue: created" 201 "${out% *}"
awk -v t="${out#* }" 'BEGIN { exit !(t < 0.9) }' || tq_fail "Expect: 100-continue: took ${out#* } s"
rcli LREM "$P:{held}:queue" 1 "$(rcli LINDEX "$P:{held}:queue" 0)" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer right-token' \
    -H 'Expect: something-else' --data-binary '{}' "$BASE2/api/tasks")
tq_assert_eq "Expect: something-else: 417" 417 "$code"
# OPTIONS: 204 with Allow and no Content-Length.
hdr=$(curl -s -i -X OPTIONS "$BASE2/api/queues/q/pause" | tr -d '\r')
grep -q '^HTTP/1.1 204' <<<"$hdr" || tq_fail "OPTIONS: $hdr"
grep -q '^Allow: POST, OPTIONS$' <<<"$hdr" || tq_fail "OPTIONS: no Allow: $hdr"
! grep -qi '^Content-Length' <<<"$hdr" || tq_fail "OPTIONS: a 204 with Content-Length"
kill -TERM "$WEB2_PID"

# ---- keys of the wrong type, Redis down ----------------------------------------------
rcli RENAME "$P:{default}:dead" "$P:dead-saved" >/dev/null
rcli SET "$P:{default}:dead" oops >/dev/null
expect_status /api/dead 500 "$P:{default}:dead"
rcli DEL "$P:{default}:dead" >/dev/null
rcli RENAME "$P:dead-saved" "$P:{default}:dead" >/dev/null
rcli RENAME "$P:{@}:schedules" "$P:schedules-saved" >/dev/null
rcli SET "$P:{@}:schedules" oops >/dev/null
expect_status /api/schedules 500 "WRONGTYPE"
# The queue list goes on without the schedules' queues, and says why.
tq_assert_eq "queues without P:schedules: still the held queue" 3 \
    "$(json /api/queues '.[] | select(.name=="held") | .depth')"
json /api/overview '.warnings' | grep -q "$P:{@}:schedules holds a value of the wrong type" ||
    tq_fail "overview: no warning about $P:{@}:schedules"
rcli DEL "$P:{@}:schedules" >/dev/null
rcli RENAME "$P:schedules-saved" "$P:{@}:schedules" >/dev/null
# Heartbeats no clock gives (a score is whatever a client wrote): shown, clamped.
# (Only ones in the future: the worker reaps the long dead at any moment.)
rcli ZADD "$P:{@}:workers" inf w-inf 1e300 w-huge >/dev/null
tq_assert_eq "workers: an infinite heartbeat, clamped" 9999-12-31T23:59:59.999Z \
    "$(json /api/workers '.[] | select(.id=="w-inf") | .last_heartbeat')"
tq_assert_eq "workers: 1e300, clamped" 9999-12-31T23:59:59.999Z \
    "$(json /api/workers '.[] | select(.id=="w-huge") | .last_heartbeat')"
tq_assert_eq "overview: with such heartbeats" 200 "$(get /api/overview; echo "$CODE")"
rcli ZREM "$P:{@}:workers" w-inf w-huge >/dev/null
# Connection is a list of tokens: only the token keep-alive keeps it open.
for h in "keep-alive:keep-alive" "Keep-Alive , foo:keep-alive" "keep-alivex:close" \
    "foo, close-ish:close" "keep-alive, close-ish:keep-alive"; do
    got=$(curl -s -i -0 -H "Connection: ${h%%:*}" "$BASE/timer" | tr -d '\r' |
        sed -n 's/^Connection: //p')
    tq_assert_eq "HTTP/1.0, Connection: ${h%%:*}" "${h#*:}" "$got"
done
tq_redis_stop
for path in /api/overview /api/queues /api/workers /api/schedules /api/tasks /api/dead; do
    expect_status "$path" 503
done
