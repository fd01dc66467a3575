#!/usr/bin/env bash
# End to end in containers, the way users run tickq: builds the three images,
# runs docker-compose.yml with 3 workers and 2 beats, and checks that /timer
# advances through the published port, that the queue holds protocol JSON
# (read with redis-cli inside the redis container), that `docker kill` of a
# worker and a restart of the redis container lose nothing, and that at the
# end the timer's seconds equal the ticks published, each run once; then the
# same with docker-compose.sentinel.yml (a replica and three sentinels): the
# redis master container killed, the timer goes on on the promoted replica,
# each tick done once; then docker-compose.tls.yml: a TLS-only redis with
# certificates made here, each program as its ACL user from
# docs/DEPLOYMENT.md, the server name checked; then
# docker-compose.cluster.yml: three Redis Cluster masters, the timer
# advancing and no CROSSSLOT error. Starts a
# Docker engine if none runs, builds the base images if no registry has them,
# and tears everything down (down -v) even on failure. Reports build time
# and image sizes.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/deps.sh
NAME=test_compose
log() { printf '[%s %s] %s\n' "$(date +%T)" "$NAME" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# ---- a Docker engine
DOCKERD_PID=
if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null && command -v debootstrap >/dev/null ||
        tq_deps_install docker.io docker-compose debootstrap
    log "starting dockerd"
    dockerd >/tmp/tickq-e2e-dockerd.log 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 /tmp/tickq-e2e-dockerd.log; fail "dockerd did not start"; }
fi
command -v debootstrap >/dev/null || tq_deps_install debootstrap
command -v openssl >/dev/null || tq_deps_install openssl # the TLS phase's certificates
if docker compose version >/dev/null 2>&1; then DC=(docker compose)
elif command -v docker-compose >/dev/null; then DC=(docker-compose)
else tq_deps_install docker-compose; DC=(docker-compose); fi

PROJECT=tickq-e2e-$$
DCP=("${DC[@]}" -p "$PROJECT")
unset TICKQ_API_TOKEN # the compose file passes it through: a read-only web here
export TICKQ_WEB_PORT=$((20000 + RANDOM % 12000))
cleanup() { # [RC]: the exit code, else $?
    local rc=${1:-$?}
    if [ $rc -ne 0 ]; then
        log "failed (exit $rc); container logs:"
        "${DCP[@]}" logs --no-color --tail 30 >&2 2>/dev/null || true
    fi
    "${DCP[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    [ -n "$DOCKERD_PID" ] && kill "$DOCKERD_PID" 2>/dev/null
    if [ $rc -eq 0 ]; then echo "$NAME: PASS"; else echo "$NAME: FAIL"; fi
    exit $rc
}
trap cleanup EXIT

rcli() { "${DCP[@]}" exec -T redis redis-cli "$@" | tr -d '\r'; }
timer() { curl -sf --max-time 5 "http://127.0.0.1:$TICKQ_WEB_PORT/timer"; }
seconds() { rcli GET 'tickq:{default}:counter:timer'; }
wait_for() { # SECONDS DESCRIPTION SNIPPET
    local end=$((SECONDS + $1))
    until eval "$3" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || fail "timed out after $1 s waiting for: $2"
        sleep 0.5
    done
}

# ---- images
t0=$SECONDS
bash tests/e2e/base-images.sh >/dev/null
t1=$SECONDS
"${DCP[@]}" build >/tmp/tickq-e2e-build.log 2>&1 || { tail -30 /tmp/tickq-e2e-build.log; fail "build"; }
t2=$SECONDS
log "base images ready in $((t1 - t0)) s; the three tickq images built in $((t2 - t1)) s"
for img in tickq-web tickq-beat tickq-worker redis:7 debian:trixie-slim; do
    bytes=$(docker image inspect -f '{{.Size}}' "$img")
    log "image $img: $((bytes / 1000000)) MB"
    case $img in tickq-*) [ "$bytes" -lt 120000000 ] || fail "$img is over 120 MB" ;; esac
done
for img in tickq-web tickq-beat tickq-worker; do
    [ "$(docker image inspect -f '{{.Config.User}}' "$img")" = tickq ] || fail "$img does not run as tickq"
done

# ---- up, scaled
"${DCP[@]}" up -d --scale worker=3 --scale beat=2 >/dev/null 2>&1 || fail "compose up"
wait_for 90 "/timer through port $TICKQ_WEB_PORT" '[[ "$(timer)" =~ ^Minute:\ 0,\ Second:\ ([2-9]|[1-9][0-9])$ ]]'
s0=$(seconds); sleep 3; s1=$(seconds)
[ "$s1" -ge $((s0 + 2)) ] || fail "the timer went from $s0 to $s1 in 3 s"
log "ok: /timer answers '$(timer)', advancing ($s0 -> $s1 in 3 s)"
# No TICKQ_API_TOKEN where compose runs: the web starts, read-only.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
    "http://127.0.0.1:$TICKQ_WEB_PORT/api/queues/default/pause")
[ "$code" = 403 ] || fail "a mutation without a token configured answered $code, not 403"
log "ok: the web's API is read-only without TICKQ_API_TOKEN (403)"
wait_for 30 "every container healthy" '[ "$("${DCP[@]}" ps | grep -c "(healthy)")" -eq 7 ]'
log "ok: 7 containers healthy"

# ---- the queue, read with redis-cli inside the redis container
"${DCP[@]}" pause worker >/dev/null 2>&1
sleep 2.5
msgs=$(rcli LRANGE 'tickq:{default}:queue' 0 -1)
"${DCP[@]}" unpause worker >/dev/null 2>&1
[ -n "$msgs" ] || fail "no message waiting while the workers were paused"
echo "$msgs" | /usr/bin/python3 -c '
import json, re, sys
for line in filter(None, sys.stdin.read().splitlines()):
    m = json.loads(line)
    assert m["v"] == 1 and m["task"] == "timer.tick" and m["queue"] == "default", m
    assert re.fullmatch(r"timer@\d+", m["id"]), m
    assert int(m["id"][6:]) == round(m["scheduled_at"] * 1000), m
    assert m["args"] == [] and m["kwargs"] == {} and m["attempt"] == 1, m
    assert m["schedule"] == "timer" and m["enqueued_at"] >= m["scheduled_at"], m
' || fail "the queue does not hold protocol v1 messages: $msgs"
log "ok: the queue holds protocol v1 JSON: $(echo "$msgs" | head -n1)"

# ---- a worker killed, redis restarted
victim=$("${DCP[@]}" ps -q worker | head -n1)
docker kill "$victim" >/dev/null
log "killed worker container ${victim:0:12}"
sleep 5
before=$(seconds)
"${DCP[@]}" restart redis >/dev/null 2>&1
after=$(seconds)
[ "$after" -ge "$before" ] || fail "redis lost data in its restart: timer $before -> $after"
log "ok: redis restarted with the timer at $after (was $before): nothing lost"
wait_for 30 "the timer to advance after the redis restart" '[ "$(seconds)" -ge $((after + 3)) ]'
wait_for 30 "/healthz 200 again" 'curl -sf --max-time 3 http://127.0.0.1:$TICKQ_WEB_PORT/healthz'
log "ok: the services recovered"

# ---- stop publishing, drain, check exactness
"${DCP[@]}" stop beat >/dev/null 2>&1
published=$(rcli HGET 'tickq:{default}:stats' published)
log "beats stopped after publishing $published ticks"
# The killed worker's messages come back after the liveness window (10 s).
wait_for 60 "timer = published ($published), queue and processing lists empty" \
    '[ "$(seconds)" = "$published" ] && [ "$(rcli LLEN tickq:{default}:queue)" = 0 ] && [ -z "$(rcli --scan --pattern "tickq:{default}:processing:*")" ]'
sleep 1
[ "$(seconds)" = "$published" ] || fail "timer $(seconds) != published $published"
done_n=$(rcli --scan --pattern 'tickq:{default}:result:timer@*' | wc -l)
[ "$done_n" = "$published" ] || fail "$done_n results (the done markers) for $published ticks"
ids=$(rcli LRANGE 'tickq:{default}:history:timer' 0 -1 | sed 's/.*"id":"\([^"]*\)".*/\1/' | sort)
dups=$(echo "$ids" | uniq -d)
[ -z "$dups" ] || fail "ticks run twice: $dups"
expect=$(( published < 100 ? published : 100 ))
[ "$(echo "$ids" | wc -l)" = "$expect" ] || fail "history has $(echo "$ids" | wc -l) runs, expected $expect"
[ "$(rcli LLEN 'tickq:{default}:dead')" = 0 ] || fail "dead letters: $(rcli LRANGE 'tickq:{default}:dead' 0 -1)"
want="Minute: $((published / 60)), Second: $((published % 60))"
[ "$(timer)" = "$want" ] || fail "/timer says '$(timer)', expected '$want'"
log "ok: timer = $published = ticks published, each run once; /timer says '$want'"

# ---- Redis behind Sentinel (docker-compose.sentinel.yml): the master killed
"${DCP[@]}" down -v --remove-orphans >/dev/null 2>&1
DCP=("${DC[@]}" -f docker-compose.yml -f docker-compose.sentinel.yml -p "$PROJECT")
sentinel() { "${DCP[@]}" exec -T "${SENTINEL:-sentinel1}" redis-cli -p 26379 "$@" | tr -d '\r'; }
"${DCP[@]}" up -d --scale worker=2 >/dev/null 2>&1 || fail "compose up with Sentinel"
wait_for 90 "/timer with Sentinel" '[[ "$(timer)" =~ ^Minute:\ 0,\ Second:\ ([3-9]|[1-9][0-9])$ ]]'
# Sentinels learn of replicas only from the master's INFO, every 10 s: one
# that has not seen the replica before the kill can never promote it, and
# when it wins the election the failover aborts (-failover-abort-no-good-slave,
# a red CI run). So each sentinel must know it.
for SENTINEL in sentinel1 sentinel2 sentinel3; do
    wait_for 30 "$SENTINEL to know the replica" '[ "$(sentinel SENTINEL replicas tickq | grep -c "^name$")" = 1 ]'
done
SENTINEL=sentinel1
# A replica that has not finished its first sync holds nothing, and the
# sentinels may still promote it: the test is about what a synced one holds.
wait_for 60 "the replica in sync" '"${DCP[@]}" exec -T redis-replica redis-cli INFO replication | grep -q "master_link_status:up"'
"${DCP[@]}" kill redis >/dev/null 2>&1
killed=$SECONDS
log "killed the redis master container"
wait_for 30 "the sentinels to promote the replica" '[ "$(sentinel SENTINEL get-master-addr-by-name tickq | head -n1)" = redis-replica ]'
rcli() { "${DCP[@]}" exec -T redis-replica redis-cli "$@" | tr -d '\r'; }
s0=$(seconds)
wait_for 30 "the timer to advance on the new master" '[ "$(seconds)" -ge $((s0 + 2)) ]'
log "ok: the timer advances on the promoted replica, $((SECONDS - killed)) s after the kill"
"${DCP[@]}" stop beat >/dev/null 2>&1
wait_for 60 "timer = ticks done, queue and processing lists empty" \
    '[ "$(seconds)" = "$(rcli --scan --pattern "tickq:{default}:result:timer@*" | wc -l)" ] && [ "$(rcli LLEN tickq:{default}:queue)" = 0 ] && [ -z "$(rcli --scan --pattern "tickq:{default}:processing:*")" ]'
ids=$(rcli LRANGE 'tickq:{default}:history:timer' 0 -1 | sed 's/.*"id":"\([^"]*\)".*/\1/' | sort)
[ -z "$(echo "$ids" | uniq -d)" ] || fail "ticks run twice: $(echo "$ids" | uniq -d)"
log "ok: with Sentinel, timer = $(seconds) = ticks done, each once, after the master's death"

# ---- TLS only, each program as its own ACL user (docker-compose.tls.yml)
"${DCP[@]}" down -v --remove-orphans >/dev/null 2>&1
TLS_DIR=$(mktemp -d /tmp/tickq-e2e-tls.XXXXXX)
trap 'rc=$?; rm -rf "$TLS_DIR"; cleanup "$rc"' EXIT
(
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tickq-e2e-ca \
        -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj /CN=redis -keyout redis.key -out redis.csr
    printf 'subjectAltName=DNS:redis\n' >san.ext
    openssl x509 -req -in redis.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile san.ext -out redis.crt
) >/dev/null 2>&1 || fail "could not make the test certificates with openssl"
TICKQ_BEAT_PASSWORD=$(openssl rand -hex 16)
TICKQ_WORKER_PASSWORD=$(openssl rand -hex 16)
TICKQ_WEB_PASSWORD=$(openssl rand -hex 16)
export TICKQ_TLS_DIR=$TLS_DIR TICKQ_BEAT_PASSWORD TICKQ_WORKER_PASSWORD TICKQ_WEB_PASSWORD
# The users as docs/DEPLOYMENT.md writes them, in ACL file syntax.
grep '^ACL SETUSER tickq-' docs/DEPLOYMENT.md | sed -e 's/^ACL SETUSER /user /' \
    -e "s/>beat-password/>$TICKQ_BEAT_PASSWORD/" -e "s/>worker-password/>$TICKQ_WORKER_PASSWORD/" \
    -e "s/>web-password/>$TICKQ_WEB_PASSWORD/" -e "s/>web-admin-password/>$(openssl rand -hex 16)/" \
    >"$TLS_DIR/users.acl"
echo 'user default off' >>"$TLS_DIR/users.acl"
[ "$(grep -c '^user tickq-' "$TLS_DIR/users.acl")" = 4 ] || fail "no ACL lines in docs/DEPLOYMENT.md"
chmod 644 "$TLS_DIR"/* # the containers' users read them
chmod 755 "$TLS_DIR"
DCP=("${DC[@]}" -f docker-compose.yml -f docker-compose.tls.yml -p "$PROJECT")
rcli() {
    "${DCP[@]}" exec -T redis redis-cli --tls --cacert /tls/ca.crt -h redis --user tickq-web \
        --pass "$TICKQ_WEB_PASSWORD" --no-auth-warning "$@" | tr -d '\r'
}
"${DCP[@]}" up -d --scale worker=2 >/dev/null 2>&1 || fail "compose up with TLS"
wait_for 90 "/timer with TLS" '[[ "$(timer)" =~ ^Minute:\ 0,\ Second:\ ([3-9]|[1-9][0-9])$ ]]'
s0=$(seconds); sleep 3; s1=$(seconds)
[ "$s1" -ge $((s0 + 2)) ] || fail "over TLS the timer went from $s0 to $s1 in 3 s"
log "ok: over TLS only, as ACL users, the timer advances ($s0 -> $s1 in 3 s)"
out=$("${DCP[@]}" exec -T redis redis-cli -h redis ping 2>&1 | tr -d '\r') || true
[ "$out" != PONG ] || fail "redis answered plain TCP"
# The server's name is checked: the same server by its IP address, which
# its certificate does not name, is refused; by its name it is fine.
net=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' "$("${DCP[@]}" ps -q redis)")
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$("${DCP[@]}" ps -q redis)")
check_as_worker() { # HOST: tickq-worker --check against rediss://HOST
    docker run --rm --network "$net" -v "$TLS_DIR:/tls:ro" tickq-worker --check \
        --redis-url "rediss://tickq-worker:$TICKQ_WORKER_PASSWORD@$1:6379/0" \
        --redis-tls-ca /tls/ca.crt 2>&1
}
out=$(check_as_worker redis) || fail "--check by the server's name failed: $out"
out=$(check_as_worker "$ip") && fail "--check by IP address $ip passed: the name is not checked"
case $out in *mismatch*) ;; *) fail "--check by IP address: $out" ;; esac
case $out in *"$TICKQ_WORKER_PASSWORD"*) fail "--check printed the password" ;; esac
log "ok: a server whose certificate does not name the host is refused ($out)"
if "${DCP[@]}" logs --no-color 2>&1 | grep -q 'NOPERM\|permission denied\|authentication failed'; then
    "${DCP[@]}" logs --no-color 2>&1 | grep 'NOPERM\|permission denied\|authentication failed' | head -5 >&2
    fail "a program met a refusal as its ACL user"
fi
log "ok: beat, workers and web ran as their least-privilege users without a refusal"

# ---- Redis Cluster (docker-compose.cluster.yml): three masters, each queue
# on the master of its slot
"${DCP[@]}" down -v --remove-orphans >/dev/null 2>&1
unset TICKQ_TLS_DIR
DCP=("${DC[@]}" -f docker-compose.yml -f docker-compose.cluster.yml -p "$PROJECT")
rcli() { "${DCP[@]}" exec -T redis redis-cli -c "$@" | tr -d '\r'; }
"${DCP[@]}" up -d --scale worker=2 >/dev/null 2>&1 || fail "compose up with Redis Cluster"
wait_for 90 "/timer with Redis Cluster" '[[ "$(timer)" =~ ^Minute:\ 0,\ Second:\ ([3-9]|[1-9][0-9])$ ]]'
s0=$(seconds); sleep 3; s1=$(seconds)
[ "$s1" -ge $((s0 + 2)) ] || fail "on the cluster the timer went from $s0 to $s1 in 3 s"
[ "$(rcli CLUSTER INFO | grep -c 'cluster_known_nodes:3')" = 1 ] || fail "the cluster has not 3 nodes"
if "${DCP[@]}" logs --no-color 2>&1 | grep -q CROSSSLOT; then
    "${DCP[@]}" logs --no-color 2>&1 | grep CROSSSLOT | head -5 >&2
    fail "a CROSSSLOT error on the cluster"
fi
log "ok: on a three-master Redis Cluster the timer advances ($s0 -> $s1 in 3 s), no CROSSSLOT"
