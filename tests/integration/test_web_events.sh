#!/usr/bin/env bash
# GET /api/events (Server-Sent Events) and tickq-web --top against a real
# redis-server, worker and web: a task's events arrive within a second of
# its result, framed as id:/event:/data: with JSON data; ?type=, ?task= and
# ?queue= filter; Last-Event-ID resumes exactly after an entry (compared
# with XRANGE) and a bad one is 400; a Redis restart mid-stream loses and
# repeats nothing; P:events of the wrong type ends the stream with an error
# event; 130 streams at once: those over 128 get 503 while /timer still
# answers, and closed clients give their slots back; SIGTERM with streams
# open exits 0 within about 3 s; --top into a file draws one frame.
. "$(dirname "$0")/lib.sh"

LATENCY_MAX_MS=1000 # an event reaches a listening client within this
TIMER_MAX_MS=2000   # /timer with every stream slot taken (ASan on busy cores)
STOP_MAX_MS=4000    # SIGTERM to exit with streams open (the brief's "~3 s")
STREAMS_MAX=128     # WEB_SSE_CLIENTS_MAX

tq_redis_start
tq_require_empty
EV="$TQ_PREFIX:{default}:events"
now_ms() { date +%s%3N; }

tq_spawn worker "$TICKQ_WORKER_BIN" -c 2 -Q default,q2 --worker-id "w-events-$$" \
    --tasks "$TICKQ_TEST_TASKS"
tq_wait_for 20 "the worker's heartbeat" '[ "$(rcli ZCARD "$TQ_PREFIX:{@}:workers")" = 1 ]'
tq_start_web --log-level debug
BASE="http://127.0.0.1:$WEB_PORT"

# sse_open NAME QUERY [curl args...]: a stream in the background into
# $TQ_TMP/NAME.sse (pid in SSE_PID), returned once its "retry:" line came.
sse_open() {
    local name=$1 query=$2
    shift 2
    curl -sN "$@" "$BASE/api/events$query" >"$TQ_TMP/$name.sse" 2>/dev/null &
    SSE_PID=$!
    TQ_PIDS+=("$SSE_PID")
    tq_wait_for 20 "stream $name to open" "grep -q '^retry: ' '$TQ_TMP/$name.sse'"
}

# sse_blocks FILE: the complete events of a stream, one "id<TAB>event<TAB>data"
# line each; a block that is not a comment, the retry line or exactly those
# three lines in that order comes out as "BAD<TAB>..." (a partial last block
# is left out: it may still be arriving).
sse_blocks() {
    awk '
        function flush() {
            if (n == 0) return
            if (n == 3 && l[1] ~ /^id: / && l[2] ~ /^event: / && l[3] ~ /^data: /)
                printf "%s\t%s\t%s\n", substr(l[1], 5), substr(l[2], 8), substr(l[3], 7)
            else {
                junk = 0
                for (i = 1; i <= n; i++) if (l[i] !~ /^:/ && l[i] !~ /^retry: [0-9]+$/) junk = 1
                if (junk) { printf "BAD"; for (i = 1; i <= n; i++) printf "\t%s", l[i]; print "" }
            }
            n = 0
        }
        /^$/ { flush(); next }
        { l[++n] = $0 }' "$1"
}

# sse_check NAME: every block is well formed, every id a stream id, every data
# line valid JSON whose "event" is the event: line. Leaves the events in
# $TQ_TMP/NAME.tsv.
sse_check() {
    local tsv="$TQ_TMP/$1.tsv"
    sse_blocks "$TQ_TMP/$1.sse" >"$tsv"
    if grep -q '^BAD' "$tsv"; then tq_fail "stream $1: malformed block: $(grep '^BAD' "$tsv" | head -n 3)"; fi
    if cut -f1 "$tsv" | grep -qvE '^[0-9]+-[0-9]+$'; then
        tq_fail "stream $1: an id: that is no stream id: $(cut -f1 "$tsv" | grep -vE '^[0-9]+-[0-9]+$' | head -n 3)"
    fi
    cut -f3 "$tsv" | jq -e -c 'type == "object"' >/dev/null ||
        tq_fail "stream $1: a data: line that is not a JSON object"
    local from_data
    from_data=$(cut -f3 "$tsv" | jq -r '.event')
    [ "$from_data" = "$(cut -f2 "$tsv")" ] || tq_fail "stream $1: event: lines differ from the data's event fields"
    # Ids only go up: nothing is repeated or out of order.
    cut -f1 "$tsv" | awk -F- 'NR > 1 && ($1 < pm || ($1 == pm && $2 <= ps)) { bad = 1; print "after " pm "-" ps ": " $0 } { pm = $1; ps = $2 } END { exit bad }' >&2 ||
        tq_fail "stream $1: ids do not increase"
}

# has_event NAME TASK_ID EVENT: the stream has that task event (complete).
has_event() {
    sse_blocks "$TQ_TMP/$1.sse" | awk -F'\t' -v id="$2" -v ev="$3" \
        '$2 == ev && index($3, "\"id\":\"" id "\"") { found = 1 } END { exit !found }'
}

# ---- a task's events arrive, framed, within a second --------------------------

sse_open all ""
ALL_PID=$SSE_PID
sse_open succeeded "?type=task-succeeded"
sse_open count "?task=test.count"
sse_open q2 "?queue=q2"
sse_open some_types "?type=task-received,%20task-dead"

rcli LPUSH "$TQ_PREFIX:{default}:queue" "$(tq_msg e1 noop)" >/dev/null
# Poll the file often and cheaply: the time the event line appears is the
# arrival time.
seen=0
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
    if grep -q '"event":"task-succeeded".*"id":"e1"' "$TQ_TMP/all.sse"; then
        seen=$(now_ms)
        break
    fi
    sleep 0.02
done
[ "$seen" -gt 0 ] || tq_fail "no task-succeeded event for e1 within 30 s: $(tail -n 20 "$TQ_TMP/all.sse")"
tq_wait_for 10 "e1's result" '[ "$(tq_result e1 .status)" = success ]'
line=$(grep '"event":"task-succeeded".*"id":"e1"' "$TQ_TMP/all.sse" | head -n 1)
ts=$(printf '%s\n' "${line#data: }" | jq -r .ts)
finished=$(tq_result e1 '.finished * 1000 | round')
late=$((seen - ts))
tq_log "e1: finished at $finished, event ts $ts, seen by the client $late ms after ts"
[ $((ts - finished)) -le 1 ] && [ $((finished - ts)) -le 1 ] ||
    tq_fail "the event's ts $ts is not the result's finished time $finished"
[ $late -le $LATENCY_MAX_MS ] || tq_fail "the event arrived $late ms after the task finished (limit $LATENCY_MAX_MS)"
tq_log "ok: task-succeeded of e1 arrived $late ms after the task finished"

tq_wait_for 10 "e1's task-succeeded event complete in the stream" has_event all e1 task-succeeded
sse_check all
data=$(awk -F'\t' '$2 == "task-succeeded" && index($3, "\"id\":\"e1\"")' "$TQ_TMP/all.tsv" | cut -f3)
tq_assert_eq "task-succeeded data: id, task, queue, worker" "e1 noop default w-events-$$" \
    "$(printf '%s\n' "$data" | jq -r '"\(.id) \(.task) \(.queue) \(.worker)"')"
tq_assert_eq "task-succeeded data: ts and runtime are numbers" "number number" \
    "$(printf '%s\n' "$data" | jq -r '"\(.ts | type) \(.runtime | type)"')"
id=$(awk -F'\t' '$2 == "task-succeeded" && index($3, "\"id\":\"e1\"")' "$TQ_TMP/all.tsv" | cut -f1)
tq_assert_eq "the id: line is the stream entry's id" "task-succeeded" \
    "$(rcli --raw XRANGE "$EV" "$id" "$id" | sed -n 3p)"
# noop is a fast task: its outcome is its only event.
for ev in task-received task-started; do
    ! has_event all e1 $ev || tq_fail "stream all has a $ev for e1, a fast task"
done
tq_log "ok: e1's events are framed as id:/event:/data: with JSON data"

# ---- filters -----------------------------------------------------------------

rcli LPUSH "$TQ_PREFIX:{q2}:queue" "$(tq_msg e2 test.count '["c2", 0]' '"queue":"q2"')" >/dev/null
tq_wait_for 20 "e2's task-succeeded in the unfiltered stream" has_event all e2 task-succeeded
tq_wait_for 10 "e2's task-succeeded in ?type=task-succeeded" has_event succeeded e2 task-succeeded
tq_wait_for 10 "e2's task-succeeded in ?task=test.count" has_event count e2 task-succeeded
tq_wait_for 10 "e2's task-succeeded in ?queue=q2" has_event q2 e2 task-succeeded
tq_wait_for 10 "e2's task-received in ?type=task-received,task-dead" has_event some_types e2 task-received

sse_check succeeded
tq_assert_eq "?type=task-succeeded: the events" "task-succeeded e1
task-succeeded e2" "$(cut -f3 "$TQ_TMP/succeeded.tsv" | jq -r '"\(.event) \(.id)"')"
sse_check count
tq_assert_eq "?task=test.count: the events" "task-received e2
task-started e2
task-succeeded e2" "$(cut -f3 "$TQ_TMP/count.tsv" | jq -r '"\(.event) \(.id)"')"
sse_check q2
tq_assert_eq "?queue=q2: every event is of queue q2" "q2" \
    "$(cut -f3 "$TQ_TMP/q2.tsv" | jq -r .queue | sort -u)"
has_event q2 e2 task-received || tq_fail "?queue=q2 lacks e2's task-received"
sse_check some_types
tq_assert_eq "?type=task-received,%20task-dead: the events" "task-received e2" "$(cut -f3 "$TQ_TMP/some_types.tsv" | jq -r '"\(.event) \(.id)"')"
# The unfiltered stream has the worker's heartbeats, which carry no task.
grep -q '^event: worker-heartbeat$' "$TQ_TMP/all.sse" ||
    tq_fail "the unfiltered stream has no worker-heartbeat"
tq_log "ok: ?type=, ?task= and ?queue= keep only the matching events"

# ---- Last-Event-ID and ?last_event_id= resume exactly after an entry ---------------

sse_ids() { sse_blocks "$1" | cut -f1; }
# merged_after FROM: the ids after FROM of every stream the web merges (the
# workers' global one, then each queue's in name order), in id order: the
# order the stream sends them in.
merged_after() {
    for k in "$TQ_PREFIX:{@}:events" "$EV" "$TQ_PREFIX:{q2}:events"; do
        rcli --raw XRANGE "$k" "($1" + | grep -E '^[0-9]+-[0-9]+$' || true
    done | sort -s -t- -k1,1n -k2,2n
}
# resume_check HOW ARGS...: a stream resumed after e1's task-succeeded sends
# exactly the entries after it: what XRANGE had before it opened comes
# first, and all it sent is what XRANGE has after it closed, in order.
resume_check() {
    local how=$1
    shift
    local from
    from=$(awk -F'\t' '$2 == "task-succeeded" && index($3, "\"id\":\"e1\"")' "$TQ_TMP/all.tsv" | cut -f1)
    merged_after "$from" >"$TQ_TMP/before.ids"
    curl -sN --max-time 3 "$@" >"$TQ_TMP/resume.sse" 2>/dev/null || true
    merged_after "$from" >"$TQ_TMP/after.ids"
    sse_ids "$TQ_TMP/resume.sse" >"$TQ_TMP/resume.ids"
    local nb ns
    nb=$(wc -l <"$TQ_TMP/before.ids")
    ns=$(wc -l <"$TQ_TMP/resume.ids")
    # e2's three events at least come after e1's task-succeeded.
    [ "$nb" -ge 3 ] || tq_fail "$how: expected several entries after $from, XRANGE has $nb"
    [ "$ns" -ge "$nb" ] || tq_fail "$how: the stream sent $ns entries, XRANGE had $nb before it opened"
    head -n "$nb" "$TQ_TMP/resume.ids" | diff "$TQ_TMP/before.ids" - >&2 ||
        tq_fail "$how: the stream does not start with the entries after $from"
    head -n "$ns" "$TQ_TMP/after.ids" | diff - "$TQ_TMP/resume.ids" >&2 ||
        tq_fail "$how: the stream sent other entries than XRANGE has after $from"
    tq_log "ok: $how resumes exactly after $from ($ns entries, as XRANGE)"
}
resume_check "Last-Event-ID" -H "Last-Event-ID: $(awk -F'\t' '$2 == "task-succeeded" && index($3, "\"id\":\"e1\"")' "$TQ_TMP/all.tsv" | cut -f1)" "$BASE/api/events"
resume_check "?last_event_id=" "$BASE/api/events?last_event_id=$(awk -F'\t' '$2 == "task-succeeded" && index($3, "\"id\":\"e1\"")' "$TQ_TMP/all.tsv" | cut -f1)"

# A bad id is 400 with a JSON error.
for bad in "-H|Last-Event-ID: nonsense" "-H|Last-Event-ID: 12" "-H|Last-Event-ID: 1-2-3" \
    "-H|Last-Event-ID: 99999999999999999999-0" "q|last_event_id=abc" "q|last_event_id=1-"; do
    kind=${bad%%|*} val=${bad#*|}
    if [ "$kind" = q ]; then
        out=$(curl -s --max-time 5 -w '\n%{http_code}' "$BASE/api/events?$val")
    else
        out=$(curl -s --max-time 5 -w '\n%{http_code}' -H "$val" "$BASE/api/events")
    fi
    tq_assert_eq "bad start '$val': status" 400 "${out##*$'\n'}"
    # (Not printf | head: head may close the pipe before printf's second
    # write, and pipefail then fails the check.)
    jq -e '.error | test("stream id")' <<<"${out%%$'\n'*}" >/dev/null ||
        tq_fail "bad start '$val': no JSON error naming a stream id: $out"
done
tq_log "ok: a Last-Event-ID that is no stream id is 400"

# HEAD: the stream's headers, no body, at once.
head_out=$(curl -s -I --max-time 5 "$BASE/api/events" | tr -d '\r')
printf '%s\n' "$head_out" | grep -q '^HTTP/1.1 200' || tq_fail "HEAD /api/events: $head_out"
printf '%s\n' "$head_out" | grep -qi '^Content-Type: text/event-stream' || tq_fail "HEAD /api/events: no text/event-stream: $head_out"
printf '%s\n' "$head_out" | grep -qi '^Cache-Control: no-store' || tq_fail "HEAD /api/events: no Cache-Control: $head_out"
printf '%s\n' "$head_out" | grep -qi '^Content-Length' && tq_fail "HEAD /api/events: a Content-Length: $head_out"
tq_log "ok: HEAD /api/events has the stream's headers"

# ---- Redis restarts under an open stream -------------------------------------------

tq_redis_stop
sleep 2 # the streams retry against a Redis that is down
kill -0 "$ALL_PID" 2>/dev/null || tq_fail "the stream ended when Redis went away"
tq_redis_start
rcli LPUSH "$TQ_PREFIX:{default}:queue" "$(tq_msg e3 noop)" >/dev/null
tq_wait_for 40 "e3's task-succeeded after the Redis restart" has_event all e3 task-succeeded
sse_check all # ids increase: nothing repeated after the resume
tq_assert_eq "e1's task-succeeded is in the stream once" 1 \
    "$(awk -F'\t' '$2 == "task-succeeded" && index($3, "\"id\":\"e1\"")' "$TQ_TMP/all.tsv" | wc -l)"
tq_log "ok: the stream survived a Redis restart and went on after its last entry"

# ---- P:events of the wrong type ends the stream with an error event ------------------

OTHER="$TQ_PREFIX-wrongtype"
rcli SET "$OTHER:{default}:events" "not a stream" >/dev/null
MAIN_WEB_PID=$WEB_PID MAIN_WEB_PORT=$WEB_PORT
tq_start_web --prefix "$OTHER"
rc=0
curl -sN --max-time 10 "http://127.0.0.1:$WEB_PORT/api/events" >"$TQ_TMP/wrongtype.sse" 2>/dev/null || rc=$?
tq_assert_eq "wrong type: the stream ended by itself (curl exit code)" 0 "$rc"
grep -q '^event: error$' "$TQ_TMP/wrongtype.sse" || tq_fail "wrong type: no error event: $(cat "$TQ_TMP/wrongtype.sse")"
grep '^data: ' "$TQ_TMP/wrongtype.sse" | cut -c7- | jq -e '.error | test("WRONGTYPE")' >/dev/null ||
    tq_fail "wrong type: the error data is not {\"error\": \"...WRONGTYPE...\"}: $(cat "$TQ_TMP/wrongtype.sse")"
kill -TERM "$WEB_PID"
wait "$WEB_PID" || tq_fail "the second web did not exit 0"
rcli DEL "$OTHER:{default}:events" >/dev/null
WEB_PID=$MAIN_WEB_PID WEB_PORT=$MAIN_WEB_PORT
tq_log "ok: P:events of the wrong type gives one error event and the end of the stream"

# ---- 130 streams: over 128 get 503, /timer still answers, closed slots come back -------

# Five streams are open (all, succeeded, count, q2, some_types): 125 more
# make 130, of which 123 fill the slots and 2 must be refused.
OPEN=5
mkdir -p "$TQ_TMP/many"
MANY=()
for i in $(seq $((STREAMS_MAX - OPEN + 2))); do
    curl -sNi "$BASE/api/events" >"$TQ_TMP/many/$i" 2>/dev/null &
    MANY+=($!)
    TQ_PIDS+=($!)
done
# (Files, not lines: a 503's body ends without a newline.)
answered() { grep -l '^HTTP/' "$TQ_TMP"/many/* 2>/dev/null | wc -l; }
tq_wait_for 60 "an answer to all $((STREAMS_MAX - OPEN + 2)) streams" \
    '[ "$(answered)" -ge '$((STREAMS_MAX - OPEN + 2))' ]'
ok=$(grep -l '^HTTP/1.1 200' "$TQ_TMP"/many/* | wc -l)
full=$(grep -l '^HTTP/1.1 503' "$TQ_TMP"/many/* | wc -l)
tq_assert_eq "streams accepted with $OPEN open" $((STREAMS_MAX - OPEN)) "$ok"
tq_assert_eq "streams refused" 2 "$full"
for f in $(grep -l '^HTTP/1.1 503' "$TQ_TMP"/many/*); do
    tr -d '\r' <"$f" | grep -qi '^Retry-After: [0-9]' || tq_fail "a 503 without Retry-After: $(cat "$f")"
    tail -n 1 "$f" | jq -e '.error | test("too many")' >/dev/null || tq_fail "a 503 without a JSON error: $(cat "$f")"
done

slowest=0
for _ in $(seq 10); do
    t0=$(now_ms)
    out=$(curl -s --max-time 10 -w ' %{http_code}' "$BASE/timer") || true
    took=$(($(now_ms) - t0))
    [ "${out##* }" = 200 ] || tq_fail "GET /timer with every stream slot taken: '$out' after $took ms"
    [ $took -gt $slowest ] && slowest=$took
done
[ $slowest -le $TIMER_MAX_MS ] || tq_fail "GET /timer with every stream slot taken took $slowest ms (limit $TIMER_MAX_MS)"
tq_log "ok: 128 streams open, 2 refused with 503, /timer answered 10 times (slowest $slowest ms)"

# try_open N: opens one more stream; 0 when it was accepted (it stays open).
try_open() {
    local f="$TQ_TMP/many/new$1" p
    curl -sNi "$BASE/api/events" >"$f" 2>/dev/null &
    p=$!
    for _ in $(seq 100); do
        grep -q '^HTTP/' "$f" 2>/dev/null && break
        sleep 0.05
    done
    if grep -q '^HTTP/1.1 200' "$f"; then
        TQ_PIDS+=("$p")
        return 0
    fi
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    rm -f "$f"
    return 1
}
# Close 10 accepted streams: their slots come back (the server notices a
# gone client at its next write, a ping within a second or two).
closed=0
for i in $(seq ${#MANY[@]}); do
    grep -q '^HTTP/1.1 200' "$TQ_TMP/many/$i" || continue
    kill "${MANY[$((i - 1))]}" 2>/dev/null || true
    closed=$((closed + 1))
    [ $closed -lt 10 ] || break
done
t0=$(now_ms)
for j in $(seq 10); do
    tq_wait_for 30 "a slot freed by a closed client (stream $j of 10)" "try_open $j"
done
tq_log "ok: 10 closed clients gave their slots back; 10 new streams opened within $(($(now_ms) - t0)) ms"
try_open 11 && tq_fail "a 129th stream was accepted after the slots were taken again"
tq_log "ok: with the slots taken again, one more stream is refused"

# ---- SIGTERM with 128 streams open ------------------------------------------------------

t0=$(now_ms)
kill -TERM "$WEB_PID"
rc=0
wait "$WEB_PID" || rc=$?
took=$(($(now_ms) - t0))
tq_assert_eq "tickq-web exit code after SIGTERM with 128 streams open" 0 "$rc"
[ $took -le $STOP_MAX_MS ] || tq_fail "tickq-web took $took ms to stop with streams open (limit $STOP_MAX_MS)"
tq_log "ok: SIGTERM with 128 streams open: exit 0 after $took ms"
tq_wait_for 10 "the stream clients to see the end" '! kill -0 "$ALL_PID"'

# ---- --top into a file: one frame, the sections, exit 0 ----------------------------

rcli HSET "$TQ_PREFIX:{@}:schedules" every-5 '{"name":"every-5","task":"noop","every":5}' >/dev/null
rcli SET "$TQ_PREFIX:{reports}:paused" 1 >/dev/null; rcli SADD "$TQ_PREFIX:{@}:queues" reports >/dev/null
rc=0
"$TICKQ_WEB" --top >"$TQ_TMP/top.out" 2>"$TQ_TMP/top.log" || rc=$?
tq_assert_eq "--top into a file: exit code" 0 "$rc"
for want in '^QUEUES' '^WORKERS' '^SCHEDULES' '^EVENTS' '^  default ' '^  q2 ' \
    '^  reports .* yes ' "^  w-events-$$ +yes " '^  every-5 +every 5s +noop -> default' \
    'task-succeeded +noop +e3'; do
    grep -Eq "$want" "$TQ_TMP/top.out" || tq_fail "--top: no line matching '$want' in:
$(cat "$TQ_TMP/top.out")"
done
if grep -q $'\033' "$TQ_TMP/top.out"; then tq_fail "--top into a file wrote terminal escapes"; fi
tq_log "ok: --top into a file drew queues, workers, schedules and events once"

TICKQ_REDIS_URL="redis://127.0.0.1:$(tq_free_port)/0" "$TICKQ_WEB" --top >"$TQ_TMP/top-down.out" 2>"$TQ_TMP/top-down.log" && rc=0 || rc=$?
tq_assert_eq "--top with Redis down: exit code" 1 "$rc"
grep -q "unreachable" "$TQ_TMP/top-down.out" || tq_fail "--top with Redis down does not say so: $(cat "$TQ_TMP/top-down.out")"
