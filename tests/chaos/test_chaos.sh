#!/usr/bin/env bash
# Chaos: 20 000 tasks, each adding 1 to a Redis counter in its completion
# transaction (test.count, 10 ms of work each), across 3 workers at
# concurrency 4, while a loop kills a random worker with SIGKILL every 2 s
# and starts a new one. At the end the counter is exactly 20 000, nothing is
# in any queue, processing list or P:dead, and every task id completed once.
# Prints how long each kill took to recover (the dead worker reaped and its
# messages requeued).
. "$(dirname "$0")/../integration/lib.sh"
N=${CHAOS_TASKS:-20000}
tq_redis_start
tq_require_empty
P=$TQ_PREFIX

awk -v n="$N" -v q="$P:{default}:queue" 'BEGIN {
    for (i = 0; i < n; i++) {
        m = sprintf("{\"v\":1,\"id\":\"c%d\",\"task\":\"test.count\",\"args\":[\"chaos\",10]}", i)
        printf "*3\r\n$5\r\nLPUSH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(q), q, length(m), m
    }}' | rcli --pipe >/dev/null
tq_assert_eq "enqueued" "$N" "$(rcli LLEN "$P:{default}:queue")"

next=0
start_worker() {
    next=$((next + 1))
    tq_spawn "w$next" "$TICKQ_WORKER_BIN" -c 4 --liveness 2 --worker-id "w$next" \
        --tasks "$TICKQ_TEST_TASKS"
    pids[$next]=$TQ_LAST_PID
    alive+=("$next")
}
pids=(); alive=()
for _ in 1 2 3; do start_worker; done

t_start=$(date +%s%3N)
kills=0
while [ "$(rcli GET "$P:{default}:counter:chaos" || echo 0)" != "$N" ]; do
    [ $(( $(date +%s%3N) - t_start )) -lt 300000 ] || tq_fail "not done after 300 s: counter $(rcli GET "$P:{default}:counter:chaos")"
    sleep 2
    [ "$(rcli GET "$P:{default}:counter:chaos")" = "$N" ] && break
    k=$((RANDOM % ${#alive[@]}))
    victim=${alive[$k]}
    held=$(rcli LLEN "$P:{default}:processing:w$victim")
    kill -KILL "${pids[$victim]}"
    t_kill=$(date +%s%3N)
    kills=$((kills + 1))
    alive=("${alive[@]:0:$k}" "${alive[@]:$((k + 1))}")
    start_worker
    # Recovery, measured in the background: until the reaper has removed the
    # dead worker and requeued what it held.
    ( until [ -z "$(rcli ZSCORE "$P:{@}:workers" "w$victim")" ] && [ "$(rcli EXISTS "$P:{default}:processing:w$victim")" = 0 ]; do sleep 0.05; done
      echo "kill $kills: w$victim (holding $held) recovered in $(( $(date +%s%3N) - t_kill )) ms" >>"$TQ_TMP/recovery.txt" ) &
done
t_done=$(date +%s%3N)
wait_recovery() { [ "$(wc -l <"$TQ_TMP/recovery.txt" 2>/dev/null || echo 0)" -ge "$kills" ]; }
tq_wait_for 30 "every kill recovered" wait_recovery
sort -t: -k1,1V "$TQ_TMP/recovery.txt" >&2
tq_log "$N tasks in $(( (t_done - t_start) / 1000 )) s with $kills kills"
[ "$kills" -ge 3 ] || tq_fail "only $kills kills happened: the test proves little"

# Stop the survivors gracefully; then everything must be clean.
for v in "${alive[@]}"; do kill -TERM "${pids[$v]}"; done
for v in "${alive[@]}"; do wait "${pids[$v]}" || tq_fail "worker w$v exit code $?"; done
sleep 0.5
tq_assert_eq "counter" "$N" "$(rcli GET "$P:{default}:counter:chaos")"
tq_assert_eq "results (the done markers)" "$N" "$(rcli --scan --pattern "$P:{default}:result:c*" | wc -l)"
tq_assert_eq "queue empty" 0 "$(rcli LLEN "$P:{default}:queue")"
tq_assert_eq "processing lists" "" "$(rcli --scan --pattern "$P:{default}:processing:*")"
tq_assert_eq "dead letters" 0 "$(rcli LLEN "$P:{default}:dead")"
tq_assert_eq "delayed" 0 "$(rcli ZCARD "$P:{default}:delayed")"
tq_assert_eq "successes counted once each" "$N" "$(rcli HGET "$P:{default}:stats" processed)"
d=$(rcli HGET "$P:{default}:stats" duplicates); tq_log "requeued by the reaper: $(rcli HGET "$P:{default}:stats" requeued); duplicates dropped: ${d:-0}"
