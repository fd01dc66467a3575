#!/usr/bin/env bash
# The worker under bad input and faults (issue 8): every key it writes made
# the wrong type loses no message and records no success without its
# effect; a dead letter releases its lock; out-of-range numbers; a retry
# that would outgrow 1 MiB; two processes with one worker id; the longest
# queue list in the heartbeat.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
W=(--concurrency 2 --retry-base 0.05 --retry-cap 0.2 --liveness 3)

# where.py PREFIX ID...: checks that each message (an id, or "raw:TEXT")
# is in exactly one place: a queue, a processing list, P:delayed, P:dead,
# or finished (a done marker that is not "dead"); prints "id place" lines.
# With --final, nothing may be waiting. And a tick whose result says
# success has added its 1 to the timer: successes == timer.
cat >"$TQ_TMP/where.py" <<'EOF'
import json, subprocess, sys
port, prefix, final, ids = sys.argv[1], sys.argv[2], sys.argv[3] == "final", sys.argv[4:]
def r(*a):
    return subprocess.run(["redis-cli", "-p", port, "--raw", *a], capture_output=True,
                          text=True).stdout
# One script reads everything at one instant: messages move while we look.
SNAP = """
local out = {places = {}, result = {}}
local function add(kind, ms) for _, m in ipairs(ms) do table.insert(out.places, {kind, m}) end end
for _, pat in ipairs({'queue', 'processing:*'}) do
  for _, k in ipairs(redis.call('KEYS', ARGV[1] .. ':{*}:' .. pat)) do
    if redis.call('TYPE', k).ok == 'list' then add(pat, redis.call('LRANGE', k, 0, -1)) end
  end
end
for _, k in ipairs(redis.call('KEYS', ARGV[1] .. ':{*}:delayed')) do
  if redis.call('TYPE', k).ok == 'zset' then add('delayed', redis.call('ZRANGE', k, 0, -1)) end
end
for _, k in ipairs(redis.call('KEYS', ARGV[1] .. ':{*}:dead')) do
  if redis.call('TYPE', k).ok == 'list' then
    for _, d in ipairs(redis.call('LRANGE', k, 0, -1)) do
      table.insert(out.places, {'dead', cjson.decode(d).message or ''}) end
  end
end
for i = 2, #ARGV do
  out.result[ARGV[i]] = ''
  for _, q in ipairs({'default', 'other'}) do
    local res = redis.pcall('GET', ARGV[1] .. ':{' .. q .. '}:result:' .. ARGV[i])
    if type(res) == 'string' then out.result[ARGV[i]] = res end
  end
end
-- The timer counts in the queue a tick ran from: both queues' counters.
local sum, bad = 0, nil
for _, q in ipairs({'default', 'other'}) do
  local t = redis.pcall('GET', ARGV[1] .. ':{' .. q .. '}:counter:timer')
  if type(t) == 'string' then
    if tonumber(t) then sum = sum + tonumber(t) else bad = t end
  end
end
out.timer = bad or tostring(sum)
return cjson.encode(out)
"""
snap = json.loads(r("EVAL", SNAP, "0", prefix, *ids))
places = [(p[0], p[1]) for p in snap["places"]] if isinstance(snap["places"], list) else []
def ident(m):
    try:
        o = json.loads(m)
        return o["id"] if isinstance(o, dict) and "id" in o else "raw:" + m
    except ValueError:
        return "raw:" + m
bad, successes = [], 0
for i in ids:
    where = [k for k, m in places if ident(m) == i]
    # A final result is the done marker; a task dead-lettered after its
    # last run has one too, and is where its dead letter is.
    res = snap["result"].get(i, "") if isinstance(snap["result"], dict) else ""
    status = json.loads(res).get("status") if res else None
    if status and status != "retrying" and "dead" not in where:
        where.append("done")
    if len(where) != 1 or (final and where[0] not in ("done", "dead")):
        bad.append(i + ": in " + (",".join(where) or "nowhere"))
    if res and json.loads(res)["status"] == "success" and json.loads(res)["task"] == "timer.tick":
        successes += 1
    print(i, ",".join(where) or "nowhere")
timer = snap["timer"]
if timer.lstrip("-").isdigit() and int(timer) != successes:
    bad.append("timer %s but %d successful ticks" % (timer, successes))
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
where() { /usr/bin/python3 "$TQ_TMP/where.py" "$REDIS_PORT" "$@"; }

# --- Every key made the wrong type for 3 s, then fixed ---------------------
# KEY|HOW|TICKS: the key (relative to the prefix), how to break it, and
# how many of the three ticks succeed in the end (a message whose lock key
# is broken cannot be locked: it is a dead letter).
cases=(
    "{default}:dead|SET|3"
    "{default}:delayed|SET|3"
    "{default}:stats|SET|3"
    "{default}:events|SET|3"
    "{@}:workers|SET|3"
    "{default}:consumers|SET|3"
    "{default}:deliveries|SET|3"
    "{default}:queue|SET|3"
    "{default}:counter:timer|SETNAN|3"
    "{default}:history:s|SET|3"
    "{default}:lock:t-2|LIST|2"
    "{default}:result:t-3|LIST|3"
    "{@}:worker:w1|SET|3"
)
n=0
for c in "${cases[@]}"; do
    IFS='|' read -r key how ticks <<<"$c"
    n=$((n + 1))
    P="$TQ_PREFIX-$n"
    Q=$P:{default}:queue
    case $how in
        SET) rcli SET "$P:$key" wrong >/dev/null ;;
        SETNAN) rcli SET "$P:$key" notanumber >/dev/null ;;
        LIST) rcli RPUSH "$P:$key" wrong >/dev/null ;;
    esac
    ids=()
    for i in 1 2 3; do
        m="{\"v\":1,\"id\":\"t-$i\",\"task\":\"timer.tick\",\"schedule\":\"s\",\"max_retries\":100000}"
        if [ "$key" = {default}:queue ]; then
            # Its queue is broken: the messages wait in another queue.
            rcli LPUSH "$P:{other}:queue" "$m" >/dev/null
        else
            rcli LPUSH "$Q" "$m" >/dev/null
        fi
        ids+=("t-$i")
    done
    if [ "$key" != {default}:queue ]; then
        rcli LPUSH "$Q" "$(tq_msg f-1 fail '[]' '"max_retries":1')" >/dev/null
        rcli LPUSH "$Q" 'not json' >/dev/null
        ids+=(f-1 "raw:not json")
    fi
    tq_spawn "worker-$n" "$TICKQ_WORKER_BIN" --prefix "$P" --worker-id w1 \
        --queues default,other "${W[@]}"
    pid=$TQ_LAST_PID
    sleep 3
    kill -0 "$pid" || tq_fail "$key: the worker died"
    where "$P" while "${ids[@]}" >"$TQ_TMP/where.out" 2>&1 ||
        { cat "$TQ_TMP/where.out" >&2; tq_fail "$key of the wrong type: a message is lost or twice"; }
    # The log names the key (a broken lock key: the dead letter does; a
    # result key is simply overwritten).
    { cat "$TQ_TMP/worker-$n.log"; rcli LRANGE "$P:{default}:dead" 0 -1; } >"$TQ_TMP/said"
    [ "$key" = {default}:result:t-3 ] || grep -qF "$P:$key" "$TQ_TMP/said" ||
        tq_fail "$key of the wrong type: no error names it"
    tq_log "ok: $key of the wrong type: $(tr '\n' ' ' <"$TQ_TMP/where.out")"
    # Fixed: deleted, unless the worker has overwritten it (a result).
    broken=string
    [ "$how" = LIST ] && broken=list
    [ "$(rcli TYPE "$P:$key")" != "$broken" ] || rcli DEL "$P:$key" >/dev/null
    tq_wait_for 60 "$key fixed: every message done or dead" \
        'where "$P" final "${ids[@]}" >"$TQ_TMP/where.out" 2>&1'
    tq_log "ok: $key fixed: $(tr '\n' ' ' <"$TQ_TMP/where.out")"
    tq_assert_eq "$key: ticks counted" "$ticks" \
        "$(($(rcli GET "$P:{default}:counter:timer") + $(rcli GET "$P:{other}:counter:timer")))"
    kill -TERM "$pid"
    tq_wait_for 30 "worker $n to stop" '! kill -0 $pid'
done

# --- A dead-lettered message releases its lock (defect 3) ------------------
P=$TQ_PREFIX-lock Q=$P:{default}:queue
tq_spawn worker-lock "$TICKQ_WORKER_BIN" --prefix "$P" "${W[@]}"
lockpid=$TQ_LAST_PID
# Redis' parser reads the id; the worker's decoder refuses the message.
rcli LPUSH "$Q" '{"v":1,"id":"fix-1","task":"timer.tick","attempt":"one"}' >/dev/null
rcli LPUSH "$Q" '{"v":1,"id":"fix-2","task":"timer.tick","timeout":1e11}' >/dev/null
rcli LPUSH "$Q" '{"v":1,"id":"fix-3","task":"no.such.task"}' >/dev/null
tq_wait_for 20 "three dead letters" '[ "$(rcli LLEN "$P:{default}:dead")" = 3 ]'
for i in 1 2 3; do
    tq_assert_eq "fix-$i: no lock left" 0 "$(rcli EXISTS "$P:{default}:lock:fix-$i")"
done
for i in 1 2 3; do rcli LPUSH "$Q" "$(tq_msg "fix-$i" timer.tick)" >/dev/null; done
tq_wait_for 20 "the corrected messages run" '[ "$(rcli GET "$P:{default}:counter:timer")" = 3 ]'
grep -q "field 'timeout'" <(rcli LRANGE "$P:{default}:dead" 0 -1) || tq_fail "timeout 1e11 not named"

# --- timeout 1e300 among batch-mates (defect 5) ----------------------------
for i in $(seq 1 10); do rcli LPUSH "$Q" "$(tq_msg "b-$i" timer.tick)" >/dev/null; done
rcli LPUSH "$Q" '{"v":1,"id":"huge","task":"timer.tick","timeout":1e300}' >/dev/null
for i in $(seq 11 20); do rcli LPUSH "$Q" "$(tq_msg "b-$i" timer.tick)" >/dev/null; done
tq_wait_for 20 "20 batch-mates run" '[ "$(rcli GET "$P:{default}:counter:timer")" = 23 ]'
tq_wait_for 20 "the 1e300 message is a dead letter" '[ "$(rcli LLEN "$P:{default}:dead")" = 4 ]'
rcli LINDEX "$P:{default}:dead" 0 | grep -q "field 'timeout'" || tq_fail "timeout 1e300 not named"
# expires_at 1e300 (it once made a retry invalid JSON): a dead letter
# naming the field, the dead letter valid JSON with the message exact.
rcli LPUSH "$Q" '{"v":1,"id":"exp","task":"timer.tick","expires_at":1e300}' >/dev/null
tq_wait_for 20 "the 1e300 expiry is a dead letter" '[ "$(rcli LLEN "$P:{default}:dead")" = 5 ]'
rcli LINDEX "$P:{default}:dead" 0 | jq -e '(.error | test("expires_at")) and (.message | fromjson | .id) == "exp"' \
    >/dev/null || tq_fail "expires_at 1e300: $(rcli LINDEX "$P:{default}:dead" 0)"
tq_assert_eq "no lock with expires_at 1e300" 0 "$(rcli EXISTS "$P:{default}:lock:exp")"
tq_assert_eq "no lock with 1e300" 0 "$(rcli EXISTS "$P:{default}:lock:huge")"
tq_assert_eq "processing empty" 0 "$(rcli LLEN "$P:{default}:processing:$(rcli ZRANGE "$P:{@}:workers" 0 0)")"

# --- A failing message near 1 MiB (defect 6) -------------------------------
/usr/bin/python3 -c '
import json, sys
pad = 1024 * 1024 - 200
sys.stdout.write(json.dumps({"v": 1, "id": "big", "task": "fail", "args": ["x" * pad],
                              "max_retries": 2}, separators=(",", ":")))' >"$TQ_TMP/big.json"
[ "$(stat -c %s "$TQ_TMP/big.json")" -lt $((1024 * 1024)) ] || tq_fail "big.json too big"
rcli -x LPUSH "$Q" <"$TQ_TMP/big.json" >/dev/null
tq_wait_for 30 "the big message is a dead letter" '[ "$(rcli LLEN "$P:{default}:dead")" = 6 ]'
rcli LINDEX "$P:{default}:dead" 0 | jq -e '.reason == "too-big" and (.message | fromjson | .id) == "big"' \
    >/dev/null || tq_fail "the big message's dead letter: $(rcli LINDEX "$P:{default}:dead" 0 | cut -c1-300)"
tq_assert_eq "big: failure recorded" failure "$(rcli GET "$P:{default}:result:big" | jq -r .status)"
tq_assert_eq "big: nothing delayed or processing" "0:0" \
    "$(rcli ZCARD "$P:{default}:delayed"):$(rcli LLEN "$P:{default}:processing:$(rcli ZRANGE "$P:{@}:workers" 0 0)")"
kill -TERM "$lockpid"
tq_wait_for 30 "the lock worker to stop" '! kill -0 $lockpid'

# --- Two processes, one worker id (defect 8) -------------------------------
P=$TQ_PREFIX-id Q=$P:{default}:queue
tq_spawn worker-a "$TICKQ_WORKER_BIN" --prefix "$P" --worker-id same "${W[@]}"
apid=$TQ_LAST_PID
rcli LPUSH "$Q" "$(tq_msg long sleep '[4]')" >/dev/null
tq_wait_for 20 "worker a runs the long task" '[ "$(rcli LLEN "$P:{default}:processing:same")" = 1 ]'
set +e
"$TICKQ_WORKER_BIN" --prefix "$P" --worker-id same "${W[@]}" \
    --redis-url "redis://127.0.0.1:$REDIS_PORT" >"$TQ_TMP/worker-b.log" 2>&1 &
bpid=$!
TQ_PIDS+=("$bpid")
wait "$bpid"
rc=$?
set -e
tq_assert_eq "a second worker with the same id exits" 2 "$rc"
grep -q "in use by a live worker" "$TQ_TMP/worker-b.log" || tq_fail "no clear message: $(cat "$TQ_TMP/worker-b.log")"
tq_wait_for 30 "the long task done once" '[ "$(tq_done "long")" = success ]'
tq_assert_eq "long: started once" 1 "$(rcli --raw XRANGE "$P:{default}:events" - + | grep -cx task-started)"
tq_assert_eq "long: nothing requeued" "" "$(rcli HGET "$P:{default}:stats" requeued)"
# A worker killed with -9 is replaced under the same id once its heartbeat
# stops moving (no exit 2 then).
kill -KILL "$apid"
tq_spawn worker-c "$TICKQ_WORKER_BIN" --prefix "$P" --worker-id same "${W[@]}"
cpid=$TQ_LAST_PID
rcli LPUSH "$Q" "$(tq_msg after timer.tick)" >/dev/null
tq_wait_for 20 "the replacement runs a task" '[ "$(tq_done "after")" = success ]'
kill -0 "$cpid" || tq_fail "the replacement exited"
kill -TERM "$cpid"
tq_wait_for 30 "worker c to stop" '! kill -0 $cpid'

# --- 16 queues of 64 bytes in the heartbeat (defect 11) --------------------
P=$TQ_PREFIX-q
qs=$(for i in $(seq -w 1 16); do printf 'q%s%s,' "$i" "$(printf 'x%.0s' $(seq 61))"; done)
qs=${qs%,}
tq_assert_eq "queue name length" 64 "$(echo "$qs" | cut -d, -f1 | tr -d '\n' | wc -c)"
tq_spawn worker-q "$TICKQ_WORKER_BIN" --prefix "$P" --worker-id wq --queues "$qs" "${W[@]}"
qpid=$TQ_LAST_PID
tq_wait_for 20 "the heartbeat lists 16 queues" '[ "$(rcli HGET "$P:{@}:worker:wq" queues)" = "$qs" ]'
sleep 1.5
kill -0 "$qpid" || tq_fail "the worker with 16 long queue names died"
