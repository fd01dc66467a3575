#!/usr/bin/env bash
# tickq-web keeps answering while 60 clients send their requests one byte a
# second (slowloris, issue 8 defect 9): GET /timer answers 200 quickly all
# along, with the default options, and the slow clients are dropped after
# the request timeout instead of holding their threads for ever. The slow
# clients connect to 127.0.0.1 only and stop by themselves.
. "$(dirname "$0")/lib.sh"

SLOW_CLIENTS=60
SLOW_SECONDS=40 # the slow clients' own bound; the test stops them sooner
PROBE_SECONDS=15 # past the 5 s request timeout, so dropped clients come back
PROBE_MAX_MS=3000 # an answer takes milliseconds; ASan on busy cores, more

tq_redis_start
tq_require_empty
rcli SET "$TQ_PREFIX:{default}:counter:timer" 125 >/dev/null
tq_start_web

# slow.py HOST PORT N SECONDS STATUS-FILE: keeps N connections open, each
# sending one more byte of a request (that never ends) a second; a
# connection the server closes is opened again. Every second it writes
# "<open> <connects> <drops>" to STATUS-FILE. Stops after SECONDS.
cat >"$TQ_TMP/slow.py" <<'EOF'
import os, select, socket, sys, time

host, port, n, secs, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
assert host == "127.0.0.1"
request = b"GET /timer HTTP/1.1\r\nHost: slow\r\nX-Pad: " + b"a" * 4000
conns = {}  # socket -> bytes sent
connects = drops = 0

def connect():
    global connects
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
    except OSError:
        s.close()
        return
    s.setblocking(False)
    conns[s] = 0
    connects += 1

def drop(s):
    global drops
    conns.pop(s, None)
    s.close()
    drops += 1

end = time.monotonic() + secs
while time.monotonic() < end:
    readable, _, _ = select.select(list(conns), [], [], 0)
    for s in readable:  # the server answered or closed: start again
        drop(s)
    for s in list(conns):
        try:
            s.send(request[conns[s]:conns[s] + 1])
            conns[s] = (conns[s] + 1) % len(request)
        except OSError:
            drop(s)
    while len(conns) < n and time.monotonic() < end:
        connect()
    with open(status + ".tmp", "w") as f:
        f.write("%d %d %d\n" % (len(conns), connects, drops))
    os.replace(status + ".tmp", status)
    time.sleep(1)
for s in list(conns):
    s.close()
EOF

tq_spawn slow /usr/bin/python3 "$TQ_TMP/slow.py" 127.0.0.1 "$WEB_PORT" \
    "$SLOW_CLIENTS" "$SLOW_SECONDS" "$TQ_TMP/slow.status"
SLOW_PID=$TQ_LAST_PID

slow_open() { read -r open _ <"$TQ_TMP/slow.status" 2>/dev/null && echo "$open"; }
all_open() { [ "$(slow_open)" = "$SLOW_CLIENTS" ]; }
tq_wait_for 30 "$SLOW_CLIENTS slow clients connected" all_open
# Let them take their threads (each sends a byte or two meanwhile); the
# probes below are what the test asserts on, not this pause.
sleep 2

now_ms() { date +%s%3N; }
probes=0 slowest=0
end=$((SECONDS + PROBE_SECONDS))
while [ $SECONDS -lt $end ]; do
    kill -0 "$SLOW_PID" 2>/dev/null || tq_fail "the slow clients stopped early"
    open=$(slow_open)
    [ "${open:-0}" -ge $((SLOW_CLIENTS - 5)) ] ||
        tq_fail "only ${open:-0} slow clients connected ($(cat "$TQ_TMP/slow.status")); the test needs $SLOW_CLIENTS"
    t0=$(now_ms)
    body=$(curl -s --max-time 10 -w ' %{http_code}' "http://127.0.0.1:$WEB_PORT/timer") || true
    t1=$(now_ms)
    took=$((t1 - t0))
    [ "$body" = "Minute: 2, Second: 5 200" ] ||
        tq_fail "GET /timer with $open slow clients: expected 200 'Minute: 2, Second: 5', got '$body' after $took ms"
    [ $took -lt $PROBE_MAX_MS ] ||
        tq_fail "GET /timer with $open slow clients took $took ms (limit $PROBE_MAX_MS)"
    probes=$((probes + 1))
    [ $took -gt $slowest ] && slowest=$took
    sleep 0.5
done
tq_log "ok: $probes GET /timer answered 200 with $SLOW_CLIENTS slow clients connected, slowest $slowest ms"

# The request timeout dropped slow clients (they reconnected), rather than
# letting them hold a thread for as long as they like.
read -r open connects drops <"$TQ_TMP/slow.status"
[ "$drops" -ge "$SLOW_CLIENTS" ] ||
    tq_fail "the server dropped $drops slow clients in ${PROBE_SECONDS}+ s; expected at least $SLOW_CLIENTS"
tq_log "ok: the server dropped slow clients $drops times ($connects connections)"

kill -TERM "$SLOW_PID" 2>/dev/null || true
wait "$SLOW_PID" 2>/dev/null || true

# Once they are gone it answers as before, and it is still the same process.
body=$(curl -s --max-time 10 "http://127.0.0.1:$WEB_PORT/api/timer")
tq_assert_eq "GET /api/timer after the slow clients" '{"seconds":125,"minute":2,"second":5}' "$body"
kill -0 "$WEB_PID" 2>/dev/null || tq_fail "tickq-web is not running any more"
