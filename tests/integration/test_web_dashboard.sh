#!/usr/bin/env bash
# The dashboard (GET /dashboard) against a real system: redis, a beat with a
# 1 s timer schedule, a worker with the test tasks, tickq-web with an API
# token, and a dead letter. The page is served whole from the binary (small,
# text/html, a strict Content-Security-Policy whose hashes match its inline
# script and style, nosniff, no referrer, no framing); then Debian's
# headless Chromium, driven over the DevTools protocol by dashboard_check.py
# (standard library only), loads it and acts on it like a person: no request
# to another origin, no console error, the live worker, the schedule with
# its next runs, the queues and the dead letter's reason are shown, pausing
# a queue asks for the token once and pauses it in Redis, running a schedule
# now publishes "<name>@run-..." which the live feed shows, its detail view
# opens, and a refused action says why (a wrong token: 401; a second,
# read-only tickq-web: 403). The page also follows dark mode and fits a
# phone's width. The test keeps a
# screenshot in $TQ_TMP; with TICKQ_SCREENSHOT_DIR set it is copied there
# as dashboard.png (for docs/).
SHOT_DIR=${TICKQ_SCREENSHOT_DIR:-} # lib.sh clears every TICKQ_ variable
. "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] ||
    tq_fail "chromium is required at $CHROMIUM (apt-get install -y chromium; scripts/test.sh installs it)"

tq_redis_start
tq_require_empty
P=$TQ_PREFIX
TOKEN="dash-$RANDOM$RANDOM-token"
WORKER=dash-worker-1
SCHEDULE=tick

# ---- the page as served ------------------------------------------------------

PAGE=$TICKQ_SOURCE_DIR/web/dashboard/index.html
size=$(wc -c <"$PAGE")
[ "$size" -lt 204800 ] || tq_fail "web/dashboard/index.html is $size bytes; it must stay under 200 KB"
tq_log "ok: the page is $size bytes (< 200 KB)"

tq_start_web --api-token "$TOKEN" --log-level debug
BASE="http://127.0.0.1:$WEB_PORT"

curl -s --max-time 10 -D "$TQ_TMP/dash.headers" -o "$TQ_TMP/dash.html" "$BASE/dashboard" ||
    tq_fail "GET /dashboard: no answer"
tr -d '\r' <"$TQ_TMP/dash.headers" >"$TQ_TMP/dash.h"
header() { sed -n "s/^$1: //Ip" "$TQ_TMP/dash.h" | head -n 1; }
tq_assert_eq "GET /dashboard: status" "HTTP/1.1 200 OK" "$(head -n 1 "$TQ_TMP/dash.h")"
tq_assert_eq "GET /dashboard: Content-Type" "text/html; charset=utf-8" "$(header Content-Type)"
tq_assert_eq "GET /dashboard: the page embedded at build time" "$(sha256sum <"$PAGE")" \
    "$(sha256sum <"$TQ_TMP/dash.html")"
tq_assert_eq "GET /dashboard: Content-Length" "$size" "$(header Content-Length)"
tq_assert_eq "GET /dashboard: X-Content-Type-Options" "nosniff" "$(header X-Content-Type-Options)"
tq_assert_eq "GET /dashboard: Referrer-Policy" "no-referrer" "$(header Referrer-Policy)"
tq_assert_eq "GET /dashboard: X-Frame-Options" "DENY" "$(header X-Frame-Options)"

# The policy allows exactly the page's own inline script and style (by
# hash, no 'unsafe-inline'), connections to its own origin, and nothing
# else by default.
header Content-Security-Policy >"$TQ_TMP/csp"
/usr/bin/python3 - "$TQ_TMP/dash.html" "$TQ_TMP/csp" <<'PY' || tq_fail "Content-Security-Policy: $(cat "$TQ_TMP/csp")"
import base64, hashlib, re, sys
page = open(sys.argv[1], "rb").read()
csp = open(sys.argv[2]).read().strip()
d = {}
for part in csp.split(";"):
    words = part.split()
    if words:
        d[words[0]] = words[1:]
def want(name, values):
    if sorted(d.get(name, [])) != sorted(values):
        sys.exit(f"{name}: expected {sorted(values)}, got {d.get(name)}")
def hashes(tag):
    return ["'sha256-%s'" % base64.b64encode(hashlib.sha256(m).digest()).decode()
            for m in re.findall(b"<%s>(.*?)</%s>" % (tag, tag), page, re.S)]
want("default-src", ["'none'"])
want("connect-src", ["'self'"])
want("img-src", ["'self'", "data:"])
want("frame-ancestors", ["'none'"])
want("script-src", hashes(b"script"))
want("style-src", hashes(b"style"))
if len(hashes(b"script")) != 1 or len(hashes(b"style")) != 1:
    sys.exit("the page should have one inline script and one inline style")
if "unsafe" in csp:
    sys.exit("the policy allows something unsafe")
# Nothing in the page loads from elsewhere, nor may an attribute run code.
for bad in (rb"<script[^>]", rb"<link[^>]+stylesheet", rb"\son[a-z]+=", rb"style=", rb"https?://(?!www\.w3\.org/2000/svg)"):
    m = re.search(bad, page)
    if m:
        sys.exit(f"the page has {m.group(0)!r}")
PY
tq_log "ok: the Content-Security-Policy names the inline script and style by hash: $(cat "$TQ_TMP/csp")"

code=$(curl -s --max-time 10 -I -o "$TQ_TMP/head.h" -w '%{http_code}' "$BASE/dashboard")
tq_assert_eq "HEAD /dashboard: status" 200 "$code"
tq_assert_eq "HEAD /dashboard: Content-Length" "$size" "$(tr -d '\r' <"$TQ_TMP/head.h" | sed -n 's/^Content-Length: //Ip')"

# ---- a real system -------------------------------------------------------------

cat >"$TQ_TMP/schedules.json" <<'EOF'
{"schedules": [
  {"name": "tick", "task": "timer.tick", "every": 1},
  {"name": "nightly-report", "task": "noop", "cron": "30 2 * * *", "tz": "Europe/Berlin",
   "queue": "reports"}
]}
EOF
tq_spawn beat "$TICKQ_BEAT" --schedules "$TQ_TMP/schedules.json"
tq_spawn worker "$TICKQ_WORKER_BIN" --worker-id "$WORKER" -Q default,reports -c 4 \
    --tasks "$TICKQ_TEST_TASKS" --grace 1 --retry-base 0.2
tq_wait_for 20 "the worker's heartbeat" '[ -n "$(rcli ZSCORE "$P:{@}:workers" "$WORKER")" ]'
tq_wait_for 20 "the timer to tick" '[ "$(rcli GET "$P:{default}:counter:timer")" -ge 2 ]'

# A dead letter (a task no worker knows), a task that fails after a retry,
# one of the test tasks, and a long one that is running while the page looks.
rcli LPUSH "$P:{default}:queue" "$(tq_msg ghost-1 no.such.task)" >/dev/null
rcli LPUSH "$P:{default}:queue" "$(tq_msg flaky-1 fail '[]' '"max_retries":1')" >/dev/null
rcli LPUSH "$P:{reports}:queue" "$(tq_msg count-1 test.count '["dash",10]')" >/dev/null
rcli LPUSH "$P:{default}:queue" "$(tq_msg long-1 sleep '[300]')" >/dev/null
tq_wait_for 20 "the dead letter" '[ "$(rcli LLEN "$P:{default}:dead")" -ge 1 ]'
tq_wait_for 20 "the test task" '[ "$(rcli GET "$P:{reports}:counter:dash")" = 1 ]'
tq_wait_for 30 "the failing task to fail for good" '[ "$(tq_result flaky-1 .status)" = failure ]'
dead_error=$(rcli LINDEX "$P:{default}:dead" -1 | jq -r .error)
tq_assert_eq "the dead letter's reason" unknown-task "$(rcli LINDEX "$P:{default}:dead" -1 | jq -r .reason)"

# An hour of per-minute counters, as workers would have left them (the
# minutes before this test began are empty: Redis is new). The chart must
# draw the API's series: one minute has a count no other minute has.
now_min=$(($(date +%s) / 60))
CHART_MARK=97
for i in $(seq 2 59); do
    m=$((now_min - i))
    processed=$((40 + (i * 37) % 25))
    [ "$i" = 30 ] && processed=$CHART_MARK
    printf 'HSET %s processed %d failed %d retried %d dead %d expired %d\nEXPIRE %s 7200\n' \
        "$P:{default}:minute:$m" "$processed" $((i % 7 == 0 ? 2 : 0)) $((i % 5 == 0 ? 3 : 0)) \
        $((i % 13 == 0 ? 1 : 0)) $((i % 17 == 0 ? 1 : 0)) "$P:{default}:minute:$m"
done | rcli >/dev/null

# The routes the page reads must answer before a browser looks at them.
for route in overview queues workers schedules tasks dead audit; do
    code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$BASE/api/$route")
    tq_assert_eq "GET /api/$route" 200 "$code"
done

# ---- the page in a browser ---------------------------------------------------

# A second tickq-web, read-only (no token), on the same Redis: the page
# must say so when an action is refused.
MAIN_PORT=$WEB_PORT
tq_start_web
RO_PORT=$WEB_PORT
WEB_PORT=$MAIN_PORT

mkdir -p "$TQ_TMP/chromium"
nice -n 19 /usr/bin/python3 "$(dirname "$0")/dashboard_check.py" \
    --chromium "$CHROMIUM" --profile "$TQ_TMP/chromium/profile" \
    --web-port "$WEB_PORT" --redis-port "$REDIS_PORT" --prefix "$P" --token "$TOKEN" \
    --worker-id "$WORKER" --schedule "$SCHEDULE" --queue default --pause-queue reports \
    --dead-reason unknown-task --dead-error "$dead_error" \
    --chart-mark "$CHART_MARK" --readonly-port "$RO_PORT" --screenshot "$TQ_TMP/dashboard.png" --timeout 60 ||
    tq_fail "the dashboard in Chromium (see the lines above; chromium.log: $(tail -n 5 "$TQ_TMP/chromium/chromium.log" 2>/dev/null))"

# The token reached the server as a bearer token: the actions are in the
# audit stream, and the queue is active again.
tq_assert_eq "queue reports after pause and resume" 0 "$(rcli EXISTS "$P:{reports}:paused")"
n=$(rcli XLEN "$P:{@}:audit")
[ "$n" -ge 3 ] || tq_fail "the audit stream has $n entries; expected pause, resume and run"
tq_log "ok: $n actions in $P:{@}:audit"
grep -q "$TOKEN" "$TQ_TMP"/*.log && tq_fail "the API token appears in a log"

# The screenshot is a PNG of some size.
[ "$(head -c 8 "$TQ_TMP/dashboard.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    tq_fail "the screenshot is not a PNG"
shot=$(wc -c <"$TQ_TMP/dashboard.png")
[ "$shot" -gt 20000 ] || tq_fail "the screenshot is only $shot bytes"
tq_log "ok: screenshot of $shot bytes"
if [ -n "$SHOT_DIR" ]; then
    mkdir -p "$SHOT_DIR"
    cp "$TQ_TMP/dashboard.png" "$SHOT_DIR/dashboard.png"
    tq_log "screenshot copied to $SHOT_DIR/dashboard.png"
fi
