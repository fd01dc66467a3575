# Helpers for integration tests: a private redis-server on a free port, the
# real tickq programs as background processes, assertions, and cleanup of all
# of it on exit. Source it first thing: . "$(dirname "$0")/lib.sh"
#
# Environment (set by ctest): TICKQ_BEAT, TICKQ_WORKER_BIN, TICKQ_WEB are the
# programs under test. The programs' own TICKQ_* variables are cleared so the
# caller's environment cannot leak into a test.
set -euo pipefail

for v in $(env | sed -n 's/^\(TICKQ_[A-Z_]*\)=.*/\1/p'); do
    case $v in
        TICKQ_BEAT|TICKQ_WORKER_BIN|TICKQ_WEB|TICKQ_SOURCE_DIR|TICKQ_TEST_TASKS|TICKQ_EXAMPLE_TASKS) ;;
        *) unset "$v" ;;
    esac
done
: "${TICKQ_BEAT:?set by ctest}" "${TICKQ_WORKER_BIN:?set by ctest}" "${TICKQ_WEB:?set by ctest}"

TQ_TMP=$(mktemp -d /tmp/tickq-test.XXXXXX)
TQ_PIDS=()
TQ_NAME=$(basename "$0" .sh)
TQ_PREFIX="t-$TQ_NAME-$$"
REDIS_PORT=
REDIS_PID=
REDIS_URL=

tq_log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$TQ_NAME" "$*" >&2; }
tq_fail() {
    tq_log "FAIL: $*"
    exit 1
}

tq_dump_logs() {
    for f in "$TQ_TMP"/*.log; do
        [ -e "$f" ] || continue
        echo "---- last lines of $(basename "$f")" >&2
        tail -n 30 "$f" >&2
    done
}

tq_cleanup() {
    local rc=$?
    # Any failure, an assertion or a command that set -e caught, shows the
    # programs' logs.
    [ $rc -eq 0 ] || { tq_log "failed with exit code $rc (line ${BASH_LINENO[0]})"; tq_dump_logs; }
    for p in "${TQ_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${TQ_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    [ -n "$REDIS_PID" ] && kill -KILL "$REDIS_PID" 2>/dev/null || true
    # A sanitizer report in any program's log fails the test.
    if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TQ_TMP"/*.log 2>/dev/null; then
        echo "sanitizer report in the logs above" >&2
        grep -hE -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TQ_TMP"/*.log >&2 || true
        rc=1
    fi
    [ -n "${TQ_KEEP:-}" ] && cp -r "$TQ_TMP" "$TQ_KEEP" 2>/dev/null
    rm -rf "$TQ_TMP"
    if [ $rc -eq 0 ]; then echo "$TQ_NAME: PASS"; else echo "$TQ_NAME: FAIL (exit $rc)"; fi
    exit $rc
}
trap tq_cleanup EXIT
trap 'exit 1' INT TERM

# Starts redis-server on a free port with AOF in $TQ_TMP/redis and sets
# REDIS_PORT, REDIS_URL, REDIS_PID. tq_redis_start again (after a stop)
# reuses the same port and data directory.
tq_redis_start() {
    mkdir -p "$TQ_TMP/redis"
    local tries=0
    while :; do
        if [ -z "$REDIS_PORT" ] || [ $tries -gt 0 ]; then
            REDIS_PORT=$((20000 + RANDOM % 12000))
        fi
        tries=$((tries + 1))
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TQ_TMP/redis" \
            --save '' --appendonly yes --appendfsync always \
            --logfile "$TQ_TMP/redis.log" --daemonize no &
        REDIS_PID=$!
        for _ in $(seq 100); do
            redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.05
        done
        if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then break; fi
        kill -KILL "$REDIS_PID" 2>/dev/null || true
        [ $tries -lt 20 ] || tq_fail "could not start redis-server"
    done
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    export TICKQ_REDIS_URL=$REDIS_URL TICKQ_PREFIX=$TQ_PREFIX
}

tq_redis_stop() {
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=
}

# tq_sentinel_start: a replica of the test's redis and three sentinels
# that watch it as master "tq" (quorum 2), declaring it down after 1 s
# without an answer. Waits until the replica is in sync and every sentinel
# knows the replica and the two other sentinels. Sets REPLICA_PORT,
# SENTINEL_PORTS and SENTINEL_URL (db 0 of the master).
tq_sentinel_start() {
    REPLICA_PORT=$(tq_free_port)
    mkdir -p "$TQ_TMP/replica"
    redis-server --port "$REPLICA_PORT" --bind 127.0.0.1 --dir "$TQ_TMP/replica" \
        --save '' --appendonly yes --appendfsync always \
        --replicaof 127.0.0.1 "$REDIS_PORT" \
        --logfile "$TQ_TMP/replica.log" --daemonize no &
    TQ_PIDS+=("$!")
    tq_wait_for 20 "the replica in sync" \
        'redis-cli -p "$REPLICA_PORT" INFO replication | grep -q "master_link_status:up"'
    SENTINEL_PORTS=()
    local i port hosts=
    for i in 1 2 3; do
        port=$(tq_free_port)
        SENTINEL_PORTS+=("$port")
        mkdir -p "$TQ_TMP/sentinel$i"
        printf '%s\n' "port $port" "bind 127.0.0.1" "dir $TQ_TMP/sentinel$i" \
            "sentinel monitor tq 127.0.0.1 $REDIS_PORT 2" \
            "sentinel down-after-milliseconds tq 1000" \
            "sentinel failover-timeout tq 10000" \
            "sentinel parallel-syncs tq 1" >"$TQ_TMP/sentinel$i/sentinel.conf"
        redis-server "$TQ_TMP/sentinel$i/sentinel.conf" --sentinel \
            --logfile "$TQ_TMP/sentinel$i.log" --daemonize no &
        TQ_PIDS+=("$!")
        hosts="$hosts${hosts:+,}127.0.0.1:$port"
    done
    for port in "${SENTINEL_PORTS[@]}"; do
        tq_wait_for 30 "sentinel $port knows the replica and the two other sentinels" \
            "[ \"\$(redis-cli -p $port SENTINEL replicas tq | grep -c '^name\$')\" = 1 ] &&
             [ \"\$(redis-cli -p $port SENTINEL sentinels tq | grep -c '^name\$')\" = 2 ]"
    done
    SENTINEL_URL="redis-sentinel://$hosts/0?master=tq"
}

# tq_cluster_start N: a Redis Cluster of N masters (no replicas) on free
# ports, the slots split evenly, each node told of the others; waits until
# every node says cluster_state:ok and knows the N slot ranges. Sets
# CLUSTER_PORTS and CLUSTER_URL (redis-cluster://, every node a seed).
tq_cluster_start() {
    local n=$1 i port bus pid try hosts= lo hi
    local -a buses=()
    CLUSTER_PORTS=()
    for i in $(seq "$n"); do
        mkdir -p "$TQ_TMP/node$i"
        # Both ports free now (the bus port is not port + 10000, which may
        # be another test's port); another test may take one before this
        # node binds it: then the node dies, and another pair is tried.
        for try in 1 2 3 4 5 6; do
            port=$(tq_free_port) bus=$(tq_free_port)
            while [ "$bus" = "$port" ]; do bus=$(tq_free_port); done
            redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 \
                --dir "$TQ_TMP/node$i" --save '' --appendonly yes --appendfsync everysec \
                --cluster-enabled yes --cluster-config-file nodes.conf \
                --cluster-node-timeout 2000 \
                --logfile "$TQ_TMP/node$i.log" --daemonize no &
            pid=$!
            for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                [ "$(redis-cli -p "$port" CONFIG GET dir 2>/dev/null | tail -1)" != "$TQ_TMP/node$i" ] ||
                    break 2
                sleep 0.1
            done
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            [ "$try" != 6 ] || tq_fail "cluster node $i did not start (see node$i.log)"
        done
        TQ_PIDS+=("$pid")
        CLUSTER_PORTS+=("$port")
        buses+=("$bus")
        hosts="$hosts${hosts:+,}127.0.0.1:$port"
    done
    for i in $(seq "$n"); do
        port=${CLUSTER_PORTS[$((i - 1))]}
        lo=$((16384 * (i - 1) / n)) hi=$((16384 * i / n - 1))
        redis-cli -p "$port" CLUSTER ADDSLOTSRANGE "$lo" "$hi" >/dev/null
        [ "$i" = 1 ] || redis-cli -p "$port" CLUSTER MEET 127.0.0.1 "${CLUSTER_PORTS[0]}" "${buses[0]}" >/dev/null
    done
    for port in "${CLUSTER_PORTS[@]}"; do
        tq_wait_for 30 "cluster node $port sees the cluster up" \
            "redis-cli -p $port CLUSTER INFO | grep -q 'cluster_state:ok' &&
             [ \"\$(redis-cli -p $port CLUSTER SLOTS | grep -c '^127.0.0.1\$')\" -ge $n ]"
    done
    CLUSTER_URL="redis-cluster://$hosts"
}

# tq_cluster_port KEY: the port of the node that serves KEY's slot.
tq_cluster_port() {
    local slot
    slot=$(redis-cli -p "${CLUSTER_PORTS[0]}" CLUSTER KEYSLOT "$1")
    redis-cli -p "${CLUSTER_PORTS[0]}" --json CLUSTER SLOTS |
        jq -r --argjson s "$slot" '.[] | select(.[0] <= $s and $s <= .[1]) | .[2][1]'
}

# tq_sentinel_master: the master's port, as the first sentinel says.
tq_sentinel_master() {
    redis-cli -p "${SENTINEL_PORTS[0]}" SENTINEL get-master-addr-by-name tq | sed -n 2p
}

# The namespace must be empty: a test never runs on someone's data.
tq_require_empty() {
    local n
    n=$(rcli --scan --pattern "$TQ_PREFIX:*" | wc -l)
    [ "$n" -eq 0 ] || tq_fail "namespace $TQ_PREFIX is not empty ($n keys)"
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# tq_spawn NAME CMD...: runs CMD in the background, output in $TQ_TMP/NAME.log;
# the pid is in TQ_LAST_PID.
tq_spawn() {
    local name=$1; shift
    "$@" >>"$TQ_TMP/$name.log" 2>&1 &
    TQ_LAST_PID=$!
    TQ_PIDS+=("$TQ_LAST_PID")
}

# tq_wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.1 s until it
# succeeds. A single CMD argument is a shell snippet, evaluated each time:
#   tq_wait_for 5 "queue empty" '[ "$(rcli LLEN q)" = 0 ]'
# It waits at least TQ_WAIT_MIN (10) seconds whatever SECONDS says: this is
# a deadline for something that must happen, not a timing assertion (those
# measure and compare explicitly), and the ASan build on two busy cores is
# many times slower than a plain one on an idle machine.
TQ_WAIT_MIN=${TQ_WAIT_MIN:-10}
tq_wait_for() {
    local secs=$1 what=$2; shift 2
    [ "$secs" -ge "$TQ_WAIT_MIN" ] || secs=$TQ_WAIT_MIN
    local end=$((SECONDS + secs))
    until if [ $# -eq 1 ]; then eval "$1"; else "$@"; fi >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || tq_fail "timed out after ${secs}s waiting for: $what"
        sleep 0.1
    done
}

tq_assert_eq() { # WHAT EXPECTED ACTUAL
    [ "$2" == "$3" ] || tq_fail "$1: expected '$2', got '$3'"
    tq_log "ok: $1 = '$3'"
}

# Test ports are drawn from 20000-31999, below Linux's ephemeral range
# (32768-60999), so that no client connection's local port takes them.
tq_free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# tq_start_web [ARGS...]: starts tickq-web on a free port and waits until it
# answers HTTP; picks another port if that one was taken meanwhile. Sets
# WEB_PORT and WEB_PID.
tq_start_web() {
    local tries
    for tries in 1 2 3 4 5; do
        WEB_PORT=$(tq_free_port)
        tq_spawn web "$TICKQ_WEB" --listen "127.0.0.1:$WEB_PORT" "$@"
        WEB_PID=$TQ_LAST_PID
        for _ in $(seq 100); do
            curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$WEB_PORT/" && return 0
            kill -0 "$WEB_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill -0 "$WEB_PID" 2>/dev/null && tq_fail "tickq-web does not answer on port $WEB_PORT"
        tq_log "tickq-web could not use port $WEB_PORT; trying another"
    done
    tq_fail "could not start tickq-web"
}

# tq_msg ID TASK [ARGS_JSON [MORE_FIELDS_JSON]]: a protocol v1 message, e.g.
#   tq_msg r1 fail '[]' '"max_retries":2,"queue":"q"'
tq_msg() {
    echo "{\"v\":1,\"id\":\"$1\",\"task\":\"$2\",\"args\":${3:-[]}${4:+,$4}}"
}

# tq_result ID [JQ_FILTER]: the task's result JSON, or a field of it.
tq_result() {
    rcli GET "$(P=$TQ_PREFIX tq_qkey "result:$1")" | jq -r "${2:-.}"
}

# tq_qkey REST: the key "<prefix>:{<queue>}:REST" of whichever queue has it
# (a task's result, lock or history lives in its queue's slot), or the
# default queue's when none has. Under the prefix $P when the test set one.
tq_qkey() {
    local p=${P:-$TQ_PREFIX} k
    k=$(rcli --scan --pattern "$p:{*}:$1" | grep -v "^$p:{@}:" | head -n1)
    [ -n "$k" ] || k="$p:{default}:$1"
    echo "$k"
}

# tq_done ID: the task's final status (success, failure, expired), or ""
# while it is not done: a final result is the done marker, so this is its
# result's status unless that is retrying. Under the prefix $P when the
# test set one, else $TQ_PREFIX.
tq_done() {
    local s
    s=$(rcli GET "$(tq_qkey "result:$1")" | jq -r .status 2>/dev/null) || s=
    if [ "$s" = null ] || [ "$s" = retrying ]; then s=; fi
    echo "$s"
}

# tq_events ID: the events of one task, oldest first, one name a line.
tq_events() {
    local k
    for k in $(rcli --scan --pattern "$TQ_PREFIX:{*}:events" | grep -v "^$TQ_PREFIX:{@}:"); do
        rcli --raw XRANGE "$k" - +
    done | awk -v id="$1" '
        /^[0-9]+-[0-9]+$/ { if (ev != "" && tid == id) print ev; ev = ""; tid = ""; next }
        prev == "event" { ev = $0 } prev == "id" { tid = $0 } { prev = $0 }
        END { if (ev != "" && tid == id) print ev }'
}
