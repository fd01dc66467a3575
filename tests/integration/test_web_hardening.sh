#!/usr/bin/env bash
# tickq-web against requests an attacker would send (issue 8 defect 16):
# request smuggling (Content-Length with Transfer-Encoding), NUL and other
# bytes in the path, dot segments, encoded slashes, a huge Content-Length,
# bad chunks, too many or too long headers, bad methods and versions,
# absolute-form targets, header injection through the query string. Each
# gets a 4xx (505 for a version) with a JSON error, a request that declared
# a body gets its answer at once and its connection closed, and the server
# keeps answering.
. "$(dirname "$0")/lib.sh"

tq_redis_start
tq_require_empty
rcli SET "$TQ_PREFIX:{default}:counter:timer" 125 >/dev/null
tq_start_web --log-level debug

# raw.py PORT WAIT-S: sends stdin as one request to 127.0.0.1:PORT, reads
# until the server closes or WAIT-S seconds pass, and prints one JSON object:
# status (0 for no answer), the ms to the status line and to the close
# (null if it stayed open), the headers of the first response (lower-case
# names), its body and the number of responses.
cat >"$TQ_TMP/raw.py" <<'EOF'
import json, re, socket, sys, time

port, wait = int(sys.argv[1]), float(sys.argv[2])
request = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port), timeout=wait)
t0 = time.monotonic()
try:
    s.sendall(request)
except OSError:
    pass
data, first_ms, closed_ms = b"", None, None
end = t0 + wait
while time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        break
    except OSError:  # reset after the answer: closed all the same
        closed_ms = int((time.monotonic() - t0) * 1000)
        break
    if first_ms is None and chunk:
        first_ms = int((time.monotonic() - t0) * 1000)
    if not chunk:
        closed_ms = int((time.monotonic() - t0) * 1000)
        break
    data += chunk
s.close()
head, _, rest = data.partition(b"\r\n\r\n")
lines = head.decode("latin-1").split("\r\n")
m = re.match(r"HTTP/\S* (\d\d\d)", lines[0])
status = int(m.group(1)) if m else 0
headers = {}
for line in lines[1:]:
    name, _, value = line.partition(":")
    headers.setdefault(name.strip().lower(), value.strip())
length = int(headers.get("content-length", len(rest)))
print(json.dumps({"status": status, "status_line": lines[0], "first_ms": first_ms, "closed_ms": closed_ms,
                  "headers": headers, "body": rest[:length].decode("latin-1"),
                  "responses": data.count(b"HTTP/1.")}))
EOF

# send WAIT-S REQUEST: sends REQUEST (printf %b escapes) and sets R (the JSON
# above), CODE, BODY.
send() {
    R=$(printf '%b' "$2" | /usr/bin/python3 "$TQ_TMP/raw.py" "$WEB_PORT" "$1")
    CODE=$(jq -r .status <<<"$R")
    BODY=$(jq -r .body <<<"$R")
}

web_alive() {
    kill -0 "$WEB_PID" 2>/dev/null || tq_fail "tickq-web (pid $WEB_PID) is not running any more"
}

# expect_error WHAT CODE: the last answer had status CODE and a JSON error
# body {"error": "<non-empty>"}, then the server still answers /timer.
expect_error() {
    tq_assert_eq "$1: status" "$2" "$CODE"
    jq -e '.status_line | test("^HTTP/1\\.[01] [0-9]{3} [A-Za-z -]+$")' <<<"$R" >/dev/null ||
        tq_fail "$1: not a clean status line: $R"
    jq -e '.error | type == "string" and length > 0' <<<"$BODY" >/dev/null 2>&1 ||
        tq_fail "$1: expected a JSON error, got '$BODY'"
    [ "$(jq -r '.headers["content-type"]' <<<"$R")" = application/json ] ||
        tq_fail "$1: Content-Type is not application/json: $R"
    tq_log "ok: $1: $BODY"
    still_serving "$1"
}

# expect_closed WHAT MS: the server closed the connection within MS ms.
expect_closed() {
    local ms
    ms=$(jq -r .closed_ms <<<"$R")
    [ "$ms" != null ] && [ "$ms" -lt "$2" ] ||
        tq_fail "$1: the connection was not closed within $2 ms: $R"
}

still_serving() {
    web_alive
    local got
    got=$(curl -s --max-time 10 "http://127.0.0.1:$WEB_PORT/timer") || true
    [ "$got" = "Minute: 2, Second: 5" ] || tq_fail "after $1: GET /timer answered '$got'"
}

H='Host: x\r\nConnection: close\r\n'
OK='Minute: 2, Second: 5'

# ---- request smuggling ------------------------------------------------------

# Content-Length and Transfer-Encoding together: the length is ambiguous, a
# proxy in front may frame the body otherwise. 400, closed.
send 10 'POST /timer HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/timer HTTP/1.1\r\nHost: x\r\n\r\n'
expect_error "POST with Content-Length and Transfer-Encoding" 400
case $BODY in *Content-Length*Transfer-Encoding*) ;; *) tq_fail "the error does not name both headers: $BODY" ;; esac
expect_closed "POST with Content-Length and Transfer-Encoding" 3000
tq_assert_eq "responses on the smuggling connection" 1 "$(jq -r .responses <<<"$R")"
send 10 'GET /timer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n'
expect_error "GET with Transfer-Encoding and Content-Length" 400
expect_closed "GET with Transfer-Encoding and Content-Length" 3000

send 10 "GET /timer HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 5\r\n\r\n"
expect_error "two Content-Length headers" 400
send 10 "GET /timer HTTP/1.1\r\n${H}Content-Length: +0\r\n\r\n"
expect_error "Content-Length +0" 400
send 10 "GET /timer HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n"
expect_error "Content-Length past 64 bits" 400
send 10 "GET /timer HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n"
expect_error "Transfer-Encoding identity" 400
send 10 "GET /timer HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n"
expect_error "Transfer-Encoding gzip, chunked" 400
send 10 'GET /timer HTTP/1.1\r\nConnection: close\r\n\r\n'
expect_error "HTTP/1.1 without Host" 400
send 10 "GET /timer HTTP/1.1\r\n${H}Host: y\r\n\r\n"
expect_error "two Host headers" 400

# ---- bodies: answered at once without reading them, then closed --------------

# A huge Content-Length on a route that takes no body: 405 at once (not
# after the request timeout spent reading a body that never comes), closed.
send 10 'POST /timer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\nsome of the body'
expect_error "POST /timer with a 100 GB Content-Length" 405
first=$(jq -r .first_ms <<<"$R")
[ "$first" != null ] && [ "$first" -lt 3000 ] || tq_fail "the 405 took ${first} ms (limit 3000): $R"
expect_closed "POST /timer with a 100 GB Content-Length" 3000
tq_log "ok: 405 in $first ms, closed in $(jq -r .closed_ms <<<"$R") ms"

# A body on GET: 413 at once, closed; a bad chunk is never read.
send 10 'GET /timer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n'
expect_error "GET with a bad chunk" 413
expect_closed "GET with a bad chunk" 3000
send 10 'POST /api/timer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n'
expect_error "POST with an oversized chunk" 405
expect_closed "POST with an oversized chunk" 3000
send 10 'GET /timer HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd'
expect_error "GET with a 4-byte body" 413
expect_closed "GET with a 4-byte body" 3000
# Content-Length: 0 is no body.
send 10 "GET /timer HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n"
tq_assert_eq "GET with Content-Length 0" "200 $OK" "$CODE $BODY"

# ---- paths: served only when exactly a route once decoded -------------------

for path in '/timer%00.html' '/timer%00' '/timer/../timer' '/./timer' '/%2e%2e/timer' \
    '/timer/%2E' '//timer' '/api//timer' '/api%2ftimer' '/api%2Ftimer' '/timer%' \
    '/timer%zz' '/timer%0d%0aX-Injected:%20yes' '/tim%C3%28' '/%ff%fe' '/timer%20'; do
    send 10 "GET $path HTTP/1.1\r\n$H\r\n"
    expect_error "GET $path" 400
    [ "$(jq -r '.headers["x-injected"]' <<<"$R")" = null ] || tq_fail "GET $path: a header was injected: $R"
done
for path in '/timer/' '/timer.html' '/TIMER' '/timer#x' '/timer\\' '/api'; do
    send 10 "GET $path HTTP/1.1\r\n$H\r\n"
    expect_error "GET $path" 404
done
# Percent-encoding of plain characters decodes to the route.
send 10 "GET /%74imer HTTP/1.1\r\n$H\r\n"
tq_assert_eq "GET /%74imer" "200 $OK" "$CODE $BODY"

long=$(head -c 3000 /dev/zero | tr '\0' a)
send 10 "GET /$long HTTP/1.1\r\n$H\r\n"
expect_error "GET /<3000 bytes>" 414
send 10 "GET /timer?$long HTTP/1.1\r\n$H\r\n"
expect_error "GET /timer?<3000 bytes>" 414

# Absolute-form targets are for proxies: refused when for this server, and
# civetweb closes the connection of one for another server without calling
# any handler (nothing is served either way).
send 10 "GET http://127.0.0.1:$WEB_PORT/timer HTTP/1.1\r\n$H\r\n"
expect_error "GET http://127.0.0.1:$WEB_PORT/timer" 400
send 10 "GET http://example.com/timer HTTP/1.1\r\n$H\r\n"
case $CODE in 0 | 4??) ;; *) tq_fail "GET http://example.com/timer: expected no answer or a 4xx, got $R" ;; esac
[ "$BODY" != "$OK" ] || tq_fail "GET http://example.com/timer was served: $R"
still_serving "an absolute-form target for another server"

# ---- header injection through the query string ------------------------------

send 10 "GET /timer?x=%0d%0aSet-Cookie:%20a=b&y=%0aX-Injected:1 HTTP/1.1\r\n$H\r\n"
tq_assert_eq "GET /timer with CR LF in the query" "200 $OK" "$CODE $BODY"
[ "$(jq -r '.headers["set-cookie"]' <<<"$R")" = null ] || tq_fail "a Set-Cookie was injected: $R"
[ "$(jq -r '.headers["x-injected"]' <<<"$R")" = null ] || tq_fail "a header was injected: $R"
send 10 "GET /nope?x=%0d%0aSet-Cookie:%20a=b HTTP/1.1\r\n$H\r\n"
expect_error "GET /nope with CR LF in the query" 404
[ "$(jq -r '.headers["set-cookie"]' <<<"$R")" = null ] || tq_fail "a Set-Cookie was injected: $R"

# ---- header fields ----------------------------------------------------------

many=''
for i in $(seq 70); do many="${many}X-H$i: v\r\n"; done
send 10 "GET /timer HTTP/1.1\r\n$H$many\r\n"
expect_error "70 header fields" 431
send 10 "GET /timer HTTP/1.1\r\n${H}X-Big: $(head -c 20000 /dev/zero | tr '\0' z)\r\n\r\n"
case $CODE in 4??) expect_error "a 20 000-byte header" "$CODE" ;; *) tq_fail "a 20 000-byte header: expected a 4xx, got $R" ;; esac
send 10 "GET /timer HTTP/1.1\r\n${H}X-Ctl: a\x01b\r\n\r\n"
case $CODE in 4??) expect_error "a control byte in a header value" "$CODE" ;; *) tq_fail "a control byte in a header value: $R" ;; esac
send 10 "GET /timer HTTP/1.1\r\n${H}Bad(Name): v\r\n\r\n"
expect_error "a header name that is not a token" 400

# ---- methods and versions ---------------------------------------------------

send 10 "BREW /timer HTTP/1.1\r\n$H\r\n"
expect_error "BREW /timer" 400
send 10 "get /timer HTTP/1.1\r\n$H\r\n"
expect_error "get /timer (lower case)" 400
send 10 "DELETE /timer HTTP/1.1\r\n$H\r\n"
expect_error "DELETE /timer" 405
send 10 'GET /timer\r\n\r\n'
expect_error "HTTP/0.9 GET /timer" 400
send 10 "GET /timer HTTP/2.0\r\n$H\r\n"
expect_error "HTTP/2.0" 505
send 10 "GET /timer HTTP/1.1 extra\r\n$H\r\n"
case $CODE in 4?? | 505) expect_error "a request line with four words" "$CODE" ;; *) tq_fail "a request line with four words: $R" ;; esac

# ---- what must keep working -------------------------------------------------

# HTTP/1.0 without Host, as the container health check sends it.
send 10 'GET /healthz HTTP/1.0\r\n\r\n'
tq_assert_eq "HTTP/1.0 GET /healthz" 200 "$CODE"
# Two requests on one keep-alive connection both get their answer.
send 10 'GET /timer HTTP/1.1\r\nHost: x\r\n\r\nGET /api/timer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
tq_assert_eq "first of two keep-alive requests" "200 $OK" "$CODE $BODY"
tq_assert_eq "responses on a keep-alive connection" 2 "$(jq -r .responses <<<"$R")"
web_alive
