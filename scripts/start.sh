#!/usr/bin/env bash
# Starts the whole tickq system on this machine, without Docker: installs what
# is missing, builds, starts a redis-server (AOF in ./run/redis) unless one
# answers at TICKQ_REDIS_URL, then tickq-web on http://127.0.0.1:5000, one
# tickq-beat with examples/schedules.json and WORKERS workers (default 2).
# Ctrl-C stops everything gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
tq_deps_install

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" >/dev/null

export TICKQ_REDIS_URL=${TICKQ_REDIS_URL:-redis://127.0.0.1:6379/0}
export TICKQ_LISTEN=${TICKQ_LISTEN:-127.0.0.1:5000}
pids=()
redis_pid=
# Stop the tickq programs first (workers requeue what they hold and leave
# P:workers), then the redis-server this script started.
stop() {
    echo "stopping..." >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    if [ -n "$redis_pid" ]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    exit 0
}
trap stop INT TERM

if ! build/web/tickq-web --check; then
    mkdir -p run/redis
    echo "starting redis-server on 127.0.0.1:6379 (data in run/redis)" >&2
    # Its own session, so that Ctrl-C reaches the tickq programs only and
    # Redis outlives them long enough for their graceful stop.
    setsid redis-server --bind 127.0.0.1 --port 6379 --dir "$PWD/run/redis" --appendonly yes \
        --save '' --logfile "$PWD/run/redis.log" &
    redis_pid=$!
    for _ in $(seq 50); do build/web/tickq-web --check && break; sleep 0.1; done
fi
build/web/tickq-web & pids+=($!)
build/beat/tickq-beat --schedules examples/schedules.json & pids+=($!)
for _ in $(seq "${WORKERS:-2}"); do build/worker/tickq-worker & pids+=($!); done
echo "tickq is running: curl http://$TICKQ_LISTEN/timer   (Ctrl-C stops it)" >&2
wait
