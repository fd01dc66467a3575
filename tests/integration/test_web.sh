#!/usr/bin/env bash
# tickq-web against a real redis-server: /timer and /api/timer read
# <prefix>:timer, /healthz follows Redis, errors are JSON with the right
# status, Redis going away gives 503 quickly and recovery without a restart,
# SIGTERM exits 0 and bad configuration exits 2.
. "$(dirname "$0")/lib.sh"

tq_redis_start
tq_require_empty

PORT=$(tq_free_port)
BASE="http://127.0.0.1:$PORT"
KEY="$TQ_PREFIX:{default}:counter:timer"

# req METHOD PATH [curl args...]: one request; sets CODE, BODY and HEADERS
# (CODE is 000 when curl got no answer within its time limit).
req() {
    local method=$1 path=$2
    shift 2
    rm -f "$TQ_TMP/body" "$TQ_TMP/headers"
    CODE=$(curl -s --max-time 5 -X "$method" -D "$TQ_TMP/headers" -o "$TQ_TMP/body" \
        -w '%{http_code}' "$@" "$BASE$path") || true
    BODY=$(cat "$TQ_TMP/body" 2>/dev/null || true)
    HEADERS=$(tr -d '\r' <"$TQ_TMP/headers" 2>/dev/null || true)
}

# header NAME: the value of response header NAME from the last req ("" if none).
header() {
    printf '%s\n' "$HEADERS" | sed -n "s/^$1: //Ip" | head -n 1
}

# expect WHAT CODE BODY: the last response had this status and exactly this body.
expect() {
    tq_assert_eq "$1: status" "$2" "$CODE"
    tq_assert_eq "$1: body" "$3" "$BODY"
}

# Every response carries Content-Length (matching the body) and no-store.
expect_common_headers() {
    tq_assert_eq "$1: Cache-Control" "no-store" "$(header Cache-Control)"
    tq_assert_eq "$1: Content-Length" "$(wc -c <"$TQ_TMP/body")" "$(header Content-Length)"
}

web_alive() {
    kill -0 "$WEB_PID" 2>/dev/null || tq_fail "tickq-web (pid $WEB_PID) is not running any more"
}

now_ms() { date +%s%3N; }

# ---- bad configuration, --help, --version -----------------------------------

set +e
"$TICKQ_WEB" --listen nonsense >"$TQ_TMP/badlisten.log" 2>&1
rc=$?
set -e
tq_assert_eq "--listen nonsense: exit code" 2 "$rc"
grep -q "listen" "$TQ_TMP/badlisten.log" ||
    tq_fail "--listen nonsense: no message naming the option: $(cat "$TQ_TMP/badlisten.log")"

set +e
"$TICKQ_WEB" --redis-url http://x >"$TQ_TMP/badurl.log" 2>&1
rc=$?
set -e
tq_assert_eq "--redis-url http://x: exit code" 2 "$rc"
grep -q "redis-url" "$TQ_TMP/badurl.log" ||
    tq_fail "--redis-url http://x: no message naming the option: $(cat "$TQ_TMP/badurl.log")"

set +e
"$TICKQ_WEB" --listen no-such-host.invalid:5000 >"$TQ_TMP/badhost.log" 2>&1
rc=$?
set -e
tq_assert_eq "--listen no-such-host.invalid:5000: exit code" 2 "$rc"
grep -q "cannot resolve" "$TQ_TMP/badhost.log" ||
    tq_fail "--listen with an unknown host: no clear message: $(cat "$TQ_TMP/badhost.log")"

# IPv6 works only if civetweb was built with it: then the server runs (and
# stops with 0 on SIGTERM from timeout), else a clear error and exit 2.
set +e
timeout -s TERM 2 "$TICKQ_WEB" --listen "[::1]:$(tq_free_port)" >"$TQ_TMP/ipv6.log" 2>&1
rc=$?
set -e
case $rc in
0) tq_log "ok: civetweb has IPv6; [::1] served until SIGTERM" ;;
2) grep -q "IPv6" "$TQ_TMP/ipv6.log" || tq_fail "--listen [::1]: exit 2 without a word on IPv6: $(cat "$TQ_TMP/ipv6.log")"
   tq_log "ok: no IPv6 in this civetweb; [::1] is a clear error" ;;
*) tq_fail "--listen [::1]: expected exit 0 or 2, got $rc: $(cat "$TQ_TMP/ipv6.log")" ;;
esac

set +e
out=$("$TICKQ_WEB" --version 2>&1)
rc=$?
set -e
tq_assert_eq "--version: exit code" 0 "$rc"
case $out in tickq-web\ *) ;; *) tq_fail "--version: expected 'tickq-web <version>', got '$out'" ;; esac

set +e
out=$("$TICKQ_WEB" --help 2>&1)
rc=$?
set -e
tq_assert_eq "--help: exit code" 0 "$rc"
case $out in *--listen*) ;; *) tq_fail "--help: no --listen in '$out'" ;; esac

# ---- start ------------------------------------------------------------------

# On a port free now (the one picked above may have been taken meanwhile by
# another test's server).
tq_start_web --log-level debug
PORT=$WEB_PORT
BASE="http://127.0.0.1:$PORT"

# A second server on the same port is a clear error, exit 2.
set +e
timeout 10 "$TICKQ_WEB" --listen "127.0.0.1:$PORT" >"$TQ_TMP/busyport.log" 2>&1
rc=$?
set -e
tq_assert_eq "port already in use: exit code" 2 "$rc"
grep -q "^tickq-web: --listen 127.0.0.1:$PORT: cannot listen: .*in use" "$TQ_TMP/busyport.log" ||
    tq_fail "port already in use: no clear message: $(cat "$TQ_TMP/busyport.log")"

# ---- routes -----------------------------------------------------------------

req GET /
tq_assert_eq "GET /: status" 200 "$CODE"
case $BODY in *tickq*/timer*/api/timer*/healthz*) ;;
*) tq_fail "GET /: expected the service and its routes, got '$BODY'" ;; esac
expect_common_headers "GET /"

req GET /timer
expect "GET /timer without the key" 200 "Minute: 0, Second: 0"
expect_common_headers "GET /timer"
case $(header Content-Type) in text/plain*) ;;
*) tq_fail "GET /timer: expected text/plain, got '$(header Content-Type)'" ;; esac

rcli SET "$KEY" 125 >/dev/null
req GET /timer
expect "GET /timer at 125" 200 "Minute: 2, Second: 5"

rcli SET "$KEY" 3601 >/dev/null
req GET /timer
expect "GET /timer at 3601" 200 "Minute: 60, Second: 1"

req GET /api/timer
expect "GET /api/timer at 3601" 200 '{"seconds":3601,"minute":60,"second":1}'
expect_common_headers "GET /api/timer"
tq_assert_eq "GET /api/timer: Content-Type" "application/json" "$(header Content-Type)"

# HEAD: the headers of GET, no body (read raw, so a body would show).
raw_request() { # REQUEST-TEXT: prints the whole answer (the server closes)
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf '%b' "$1" >&3
    timeout 5 cat <&3 || true
    exec 3<&-
}
raw=$(raw_request 'HEAD /timer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | tr -d '\r')
case $raw in 'HTTP/1.1 200 '*) ;; *) tq_fail "HEAD /timer: expected 200, got '$raw'" ;; esac
case $raw in *'Content-Length: 21'*) ;; *) tq_fail "HEAD /timer: expected Content-Length 21 in '$raw'" ;; esac
case $raw in *Minute*) tq_fail "HEAD /timer: a body was sent: '$raw'" ;; esac
tq_log "ok: HEAD /timer has GET's headers and no body"

req GET /healthz
expect "GET /healthz" 200 '{"status":"ok","redis":"ok"}'
expect_common_headers "GET /healthz"

req GET /nope
tq_assert_eq "GET /nope: status" 404 "$CODE"
case $BODY in '{"error":"'*'"}') ;; *) tq_fail "GET /nope: expected a JSON error, got '$BODY'" ;; esac
tq_assert_eq "GET /nope: Content-Type" "application/json" "$(header Content-Type)"
expect_common_headers "GET /nope"

req GET /timer/extra
tq_assert_eq "GET /timer/extra: status" 404 "$CODE"

req POST /timer -d 'x=1'
tq_assert_eq "POST /timer: status" 405 "$CODE"
case $BODY in '{"error":"'*'"}') ;; *) tq_fail "POST /timer: expected a JSON error, got '$BODY'" ;; esac
case $(header Allow) in *GET*) ;; *) tq_fail "POST /timer: Allow header '$(header Allow)' lacks GET" ;; esac
expect_common_headers "POST /timer"

req DELETE /api/timer
tq_assert_eq "DELETE /api/timer: status" 405 "$CODE"

# A value that is not an integer is a 500 naming the key; so is a wrong type.
rcli SET "$KEY" twelve >/dev/null
req GET /timer
tq_assert_eq "GET /timer at 'twelve': status" 500 "$CODE"
case $BODY in *"$KEY"*) ;; *) tq_fail "GET /timer at 'twelve': error '$BODY' does not name $KEY" ;; esac
req GET /api/timer
tq_assert_eq "GET /api/timer at 'twelve': status" 500 "$CODE"
for v in 1e300 -5 99999999999999999999 ''; do
    rcli SET "$KEY" "$v" >/dev/null
    req GET /timer
    tq_assert_eq "GET /timer at '$v': status" 500 "$CODE"
    case $BODY in '{"error":"'*"$KEY"*'"}') ;; *) tq_fail "GET /timer at '$v': got '$BODY'" ;; esac
done
rcli DEL "$KEY" >/dev/null
rcli RPUSH "$KEY" 1 >/dev/null
req GET /timer
tq_assert_eq "GET /timer on a list: status" 500 "$CODE"
case $BODY in '{"error":"'*"$KEY"*'"}') ;; *) tq_fail "GET /timer on a list: got '$BODY'" ;; esac
rcli DEL "$KEY" >/dev/null

# Prefix isolation: another prefix's timer is not ours.
rcli SET "${TQ_PREFIX}x:counter:timer" 999 >/dev/null
rcli SET "other-$TQ_PREFIX:{default}:counter:timer" 998 >/dev/null
req GET /timer
expect "GET /timer with only other prefixes set" 200 "Minute: 0, Second: 0"
rcli SET "$KEY" 3601 >/dev/null
req GET /timer
expect "GET /timer with other prefixes set" 200 "Minute: 60, Second: 1"

# Weird requests are answered, and the server stays up.
long=$(head -c 9000 /dev/zero | tr '\0' a)
req GET "/$long"
case $CODE in 4??) ;; *) tq_fail "GET /<9000 x a>: expected a 4xx, got '$CODE'" ;; esac
case $BODY in '{"error":"'*'"}') ;; *) tq_fail "GET /<9000 x a>: expected a JSON error, got '${BODY:0:200}'" ;; esac
req GET '/timer?a=%00%ff&&&;==&b'
expect "GET /timer with an odd query string" 200 "Minute: 60, Second: 1"
req GET '/%ff%fe%0a%00x' --path-as-is
tq_assert_eq "GET /<bad bytes>: status" 400 "$CODE"
case $BODY in '{"error":"'*'"}') ;; *) tq_fail "GET /<bad bytes>: expected a JSON error, got '$BODY'" ;; esac
req GET /timer -H "X-Junk: $(head -c 4000 /dev/zero | tr '\0' z)"
expect "GET /timer with a large header" 200 "Minute: 60, Second: 1"
# A raw request that is not HTTP gets a 4xx or a closed connection, no crash.
raw=$(raw_request 'HELLO THERE\r\n\r\n')
case $raw in '' | 'HTTP/1.'?' 4'*) ;; *) tq_fail "garbage request: unexpected answer '${raw:0:200}'" ;; esac
web_alive

# ---- Redis down and back ----------------------------------------------------

tq_redis_stop

t0=$(now_ms)
req GET /healthz
t1=$(now_ms)
tq_assert_eq "GET /healthz with Redis down: status" 503 "$CODE"
case $BODY in '{"status":"unavailable","redis":"'*'"}') ;;
*) tq_fail "GET /healthz with Redis down: got '$BODY'" ;; esac
[ $((t1 - t0)) -lt 3000 ] || tq_fail "GET /healthz with Redis down took $((t1 - t0)) ms, expected < 3000"
tq_log "ok: /healthz answered 503 in $((t1 - t0)) ms"

for path in /timer /api/timer /timer; do
    t0=$(now_ms)
    req GET "$path"
    t1=$(now_ms)
    tq_assert_eq "GET $path with Redis down: status" 503 "$CODE"
    case $BODY in '{"error":"'*'"}') ;; *) tq_fail "GET $path with Redis down: got '$BODY'" ;; esac
    [ $((t1 - t0)) -lt 3000 ] || tq_fail "GET $path with Redis down took $((t1 - t0)) ms, expected < 3000"
    tq_log "ok: $path answered 503 in $((t1 - t0)) ms"
done
req GET /
tq_assert_eq "GET / with Redis down: status" 200 "$CODE"
web_alive

tq_redis_start
timer_is() { req GET /timer && [ "$CODE" = 200 ] && [ "$BODY" = "$1" ]; }
tq_wait_for 10 "/timer to answer 200 again after Redis came back" timer_is "Minute: 60, Second: 1"
req GET /timer
expect "GET /timer after Redis came back" 200 "Minute: 60, Second: 1"
healthy() { req GET /healthz && [ "$CODE" = 200 ]; }
tq_wait_for 10 "/healthz to answer 200 again" healthy
req GET /api/timer
expect "GET /api/timer after Redis came back" 200 '{"seconds":3601,"minute":60,"second":1}'
web_alive

# ---- SIGTERM ----------------------------------------------------------------

kill -TERM "$WEB_PID"
for _ in $(seq 100); do kill -0 "$WEB_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$WEB_PID" 2>/dev/null && tq_fail "tickq-web still running 10 s after SIGTERM"
set +e
wait "$WEB_PID"
rc=$?
set -e
tq_assert_eq "exit code after SIGTERM" 0 "$rc"
grep -q "stopped" "$TQ_TMP/web.log" || tq_fail "no 'stopped' line in the log"
