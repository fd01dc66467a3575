#!/usr/bin/env bash
# Data of the key layout before protocol v2 (keys without a hash tag, such
# as P:schedules and P:queue:default): the three programs refuse to start
# on it, exit code 2, with an error that names the keys found and says
# what to do; nothing is written. Under another prefix they start.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX

rcli HSET "$P:schedules" timer '{"name":"timer","task":"timer.tick","every":1}' >/dev/null
rcli LPUSH "$P:queue:default" '{"v":1,"id":"old-1","task":"noop"}' >/dev/null
before=$(rcli --scan --pattern "$P*" | sort)

# refused NAME CMD...: CMD exits 2 within 20 s, its log naming both keys.
refused() {
    local name=$1 rc=0
    shift
    timeout 20 "$@" >"$TQ_TMP/$name.out" 2>&1 || rc=$?
    [ "$rc" = 2 ] || tq_fail "$name: exit code $rc, not 2: $(head -c 400 "$TQ_TMP/$name.out")"
    for k in "$P:schedules" "$P:queue:default"; do
        grep -qF -- "$k" "$TQ_TMP/$name.out" || tq_fail "$name: the error does not name $k: $(cat "$TQ_TMP/$name.out")"
    done
    grep -qF 'key layout v1' "$TQ_TMP/$name.out" ||
        tq_fail "$name: the error does not say why: $(cat "$TQ_TMP/$name.out")"
    tq_log "ok: tickq-$name refuses the old layout: $(grep -m1 -o 'redis holds.*' "$TQ_TMP/$name.out" | head -c 160)"
}
refused worker "$TICKQ_WORKER_BIN" --worker-id old-w
refused beat "$TICKQ_BEAT"
refused web "$TICKQ_WEB" --listen "127.0.0.1:$(tq_free_port)"
tq_assert_eq "nothing written under $P" "$before" "$(rcli --scan --pattern "$P*" | sort)"

# The same programs under another prefix start (and write there only).
tq_spawn worker "$TICKQ_WORKER_BIN" --prefix "$P-new" --worker-id new-w
tq_wait_for 20 "the worker under another prefix registers" \
    '[ -n "$(rcli ZSCORE "$P-new:{@}:workers" new-w)" ]'
tq_assert_eq "still nothing written under $P" "$before" "$(rcli --scan --pattern "$P:*" | sort)"
