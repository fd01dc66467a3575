#!/usr/bin/env bash
# Secrets and logins, against a redis-server that wants a password:
# - no output, log line, error message or web page of any program shows the
#   password, whatever goes wrong (bad URL, wrong password, --check, --help);
# - a shell task gets a clean environment: no TICKQ_* variable, no other
#   secret of the worker; kwargs.env adds;
# - a wrong or missing password is one "authentication failed" error per
#   program, then quiet retries (counted over 5 s), --check prints why, and
#   the web says it at start; the right password works.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
PW="pw-$$-$RANDOM-Zq7" # unique: grep finds it nowhere but where we put it
WRONG="wr-$$-$RANDOM-Kx3"
rcli CONFIG SET requirepass "$PW" >/dev/null
rcli() { redis-cli -p "$REDIS_PORT" --no-auth-warning -a "$PW" "$@"; }
GOOD="redis://:$PW@127.0.0.1:$REDIS_PORT/0"
BAD="redis://:$WRONG@127.0.0.1:$REDIS_PORT/0"
NONE="redis://127.0.0.1:$REDIS_PORT/0"
export TICKQ_REDIS_URL=$GOOD
bins=("$TICKQ_BEAT" "$TICKQ_WORKER_BIN" "$TICKQ_WEB")
names=(beat worker web)

# no_secret FILE...: neither password appears in the files.
no_secret() {
    if grep -l -e "$PW" -e "$WRONG" "$@"; then
        grep -h -e "$PW" -e "$WRONG" "$@" | head -n 5 >&2
        tq_fail "a password is in the output above"
    fi
}

# ---- bad URLs: exit 2, the option named, no password ----
for i in 0 1 2; do
    b=${bins[$i]} n=${names[$i]}
    for url in "redis://:$PW@h:99999/0" "redis://:$PW@a b/0" "redis://:$PW@h/x" \
        "redis://:$PW@[::1/0" "http://:$PW@h/0" "redis://:$PW@h/0 "; do
        rc=0
        "$b" --redis-url "$url" >"$TQ_TMP/out" 2>"$TQ_TMP/err.$n.flag" || rc=$?
        tq_assert_eq "tickq-$n --redis-url '${url/$PW/***}' exit code" 2 "$rc"
        grep -q -- "--redis-url" "$TQ_TMP/err.$n.flag" || tq_fail "the error does not name --redis-url"
        rc=0
        TICKQ_REDIS_URL=$url "$b" >"$TQ_TMP/out" 2>"$TQ_TMP/err.$n.env" || rc=$?
        [ "$rc" = 2 ] || tq_fail "tickq-$n with TICKQ_REDIS_URL='${url/$PW/***}': exit $rc"
        grep -q TICKQ_REDIS_URL "$TQ_TMP/err.$n.env" || tq_fail "the error does not name TICKQ_REDIS_URL"
        no_secret "$TQ_TMP/err.$n.flag" "$TQ_TMP/err.$n.env" "$TQ_TMP/out"
    done
    # --help and --version do not print the environment's URL.
    "$b" --help >"$TQ_TMP/help.$n" 2>&1
    "$b" --version >>"$TQ_TMP/help.$n" 2>&1
    no_secret "$TQ_TMP/help.$n"
done
tq_log "ok: no bad URL's error shows the password"

# ---- --check: right, wrong and no password ----
for i in 0 1 2; do
    b=${bins[$i]} n=${names[$i]}
    rc=0; "$b" --check >"$TQ_TMP/check.out" 2>&1 || rc=$?
    tq_assert_eq "tickq-$n --check with the password" 0 "$rc"
    tq_assert_eq "tickq-$n --check prints nothing when fine" "" "$(cat "$TQ_TMP/check.out")"
    for url in "$BAD" "$NONE"; do
        rc=0; TICKQ_REDIS_URL=$url "$b" --check >"$TQ_TMP/check.out" 2>&1 || rc=$?
        tq_assert_eq "tickq-$n --check with a wrong or no password" 1 "$rc"
        grep -q "authentication failed" "$TQ_TMP/check.out" ||
            tq_fail "tickq-$n --check does not say why: $(cat "$TQ_TMP/check.out")"
        tq_assert_eq "tickq-$n --check lines" 1 "$(wc -l <"$TQ_TMP/check.out")"
        no_secret "$TQ_TMP/check.out"
    done
done

# ---- a wrong or missing password: one clear error, then quiet ----
# Each program runs 5 s against the server; its log must have exactly one
# "authentication failed" line and no misleading one.
WEB_PORT2=$(tq_free_port)
for url in "$BAD" "$NONE"; do
    tag=$([ "$url" = "$BAD" ] && echo wrong || echo none)
    TICKQ_REDIS_URL=$url tq_spawn "beat-$tag" "$TICKQ_BEAT" --beat-id "b-$tag"
    pids=("$TQ_LAST_PID")
    TICKQ_REDIS_URL=$url tq_spawn "worker-$tag" "$TICKQ_WORKER_BIN" -c 2 --worker-id "w-$tag"
    pids+=("$TQ_LAST_PID")
    TICKQ_REDIS_URL=$url tq_spawn "web-$tag" "$TICKQ_WEB" --listen "127.0.0.1:$WEB_PORT2"
    pids+=("$TQ_LAST_PID")
    # The web says it at start, before any request.
    tq_wait_for 60 "the web logs the failed login at start" \
        "grep -q 'authentication failed' '$TQ_TMP/web-$tag.log'"
    # Requests meanwhile: 503, not a new error line each.
    for _ in 1 2 3; do curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$WEB_PORT2/healthz" || true; done
    sleep 5 # the window in which lines are counted
    for n in beat worker web; do
        f="$TQ_TMP/$n-$tag.log"
        tq_assert_eq "$n ($tag password): 'authentication failed' lines in 5 s" 1 \
            "$(grep -c 'authentication failed' "$f")"
        total=$(wc -l <"$f")
        [ "$total" -le 4 ] || { cat "$f" >&2; tq_fail "$n ($tag password): $total log lines in 5 s"; }
        if grep -qiE 'unexpected|multibulk|unreachable' "$f"; then
            cat "$f" >&2
            tq_fail "$n ($tag password): a misleading line"
        fi
    done
    for p in "${pids[@]}"; do kill -TERM "$p"; done
    for p in "${pids[@]}"; do
        tq_wait_for 60 "a program stops" "! kill -0 $p"
    done
done

# ---- the right password: everything works; a shell task's environment ----
cat >"$TQ_TMP/s.json" <<'EOF'
{"schedules": [{"name": "tick", "task": "noop", "every": 1, "queue": "nowhere"}]}
EOF
AWS_SECRET_ACCESS_KEY="aws-$PW" TICKQ_EXTRA="x-$PW" tq_spawn worker "$TICKQ_WORKER_BIN" -c 1 --worker-id w-good
tq_spawn beat "$TICKQ_BEAT" --schedules "$TQ_TMP/s.json" --beat-id b-good
tq_start_web
rcli LPUSH "$P:{default}:queue" "$(tq_msg e1 shell '["env"]' '"kwargs":{"env":{"ADDED":"by-kwargs"}}')" >/dev/null
tq_wait_for 60 "e1 finished" "[ -n \"\$(tq_done e1)\" ]"
tq_assert_eq "e1 status" success "$(tq_result e1 .status)"
tq_result e1 .output >"$TQ_TMP/env.out"
grep -q '^ADDED=by-kwargs$' "$TQ_TMP/env.out" || tq_fail "kwargs.env is missing: $(cat "$TQ_TMP/env.out")"
grep -q '^PATH=' "$TQ_TMP/env.out" || tq_fail "PATH is missing"
if grep -E '^(TICKQ_|AWS_)' "$TQ_TMP/env.out"; then tq_fail "the task inherited the variables above"; fi
no_secret "$TQ_TMP/env.out"
tq_wait_for 60 "the beat publishes" '[ "$(rcli LLEN '"$P"':{nowhere}:queue)" -gt 0 ]'
for path in / /healthz /timer /api/timer /api/workers /api/queues /api/schedules /metrics /nope; do
    curl -s --max-time 5 "http://127.0.0.1:$WEB_PORT$path" >>"$TQ_TMP/pages.out" || true
done
grep -q . "$TQ_TMP/pages.out" || tq_fail "the web answered nothing"
no_secret "$TQ_TMP/pages.out"
# Every log of every program, and the results in Redis.
rcli --scan --pattern "$P:*" | while read -r k; do
    if [ "$(rcli TYPE "$k")" = string ]; then rcli GET "$k"; fi
done >"$TQ_TMP/redis.out"
# The AOF holds every write any program made (hashes, streams, lists too).
no_secret "$TQ_TMP"/*.log "$TQ_TMP/redis.out" "$TQ_TMP"/redis/appendonlydir/*
tq_log "ok: no password in any log, output, page, result or write to Redis"
