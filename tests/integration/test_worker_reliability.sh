#!/usr/bin/env bash
# Single execution and reliable delivery of tickq-worker against a real Redis:
# duplicates are acked without running, locks of live workers are honoured,
# dead workers are reaped, a kill -9 loses nothing and runs nothing twice.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
Q=$P:{default}:queue
now_ms() { date +%s%3N; }
# msg ID [TASK [ARGS [QUEUE]]]
msg() { echo "{\"v\":1,\"id\":\"$1\",\"task\":\"${2:-timer.tick}\",\"args\":${3:-[]},\"queue\":\"${4:-default}\"}"; }
sum_processing() {
    rcli EVAL "local n=0 for _,k in ipairs(redis.call('KEYS', ARGV[1])) do n=n+redis.call('LLEN',k) end return n" 0 "$P:{*}:processing:*"
}

# (a) done id: acked without running. (b) locked by a live worker: the same.
# (c) locked by a dead worker: taken over and run.
rcli SET "$P:{default}:result:d1" '{"id":"d1","status":"success"}' >/dev/null
# A lock's owner is alive while its heartbeat in the queue's consumers is.
rcli ZADD "$P:{default}:consumers" "$(now_ms)" ghost >/dev/null
rcli SET "$P:{default}:lock:l1" ghost >/dev/null
rcli ZADD "$P:{default}:consumers" 1000 zombie >/dev/null
rcli SET "$P:{default}:lock:z1" zombie >/dev/null
rcli LPUSH "$Q" "$(msg d1)" "$(msg l1)" "$(msg z1)" >/dev/null
tq_spawn w1 "$TICKQ_WORKER_BIN" --concurrency 2 --liveness 2 --worker-id w1
W1=$TQ_LAST_PID
tq_wait_for 10 "three messages handled" '[ "$(rcli LLEN "$Q")" = 0 ] && [ "$(rcli GET "$P:{default}:counter:timer")" = 1 ]'
sleep 0.5
tq_assert_eq "only z1 ran" 1 "$(rcli GET "$P:{default}:counter:timer")"
tq_assert_eq "z1 done" success "$(tq_done "z1")"
tq_assert_eq "l1 not done" "" "$(tq_done "l1")"
tq_assert_eq "duplicates counted" 2 "$(rcli HGET "$P:{default}:stats" duplicates)"
tq_assert_eq "ghost's lock untouched" ghost "$(rcli GET "$P:{default}:lock:l1")"

# (d) the reaper: a worker whose heartbeat is a minute old is dead; its
# processing list goes back to the queue, its locks are released.
rcli ZREM "$P:{default}:consumers" ghost >/dev/null
old=$(( $(now_ms) - 60000 ))
# In one step: the reaper runs every second, and one that came between
# separate commands would requeue part of the list, then see dead1 gone.
rcli ZADD "$P:{@}:workers" "$old" dead1 >/dev/null
rcli EVAL "for i = 1, 3 do
               redis.call('LPUSH', KEYS[1], ARGV[i])
               redis.call('SET', KEYS[2 + i], 'dead1')
           end
           redis.call('ZADD', KEYS[2], ARGV[4], 'dead1')" 5 "$P:{default}:processing:dead1" \
    "$P:{default}:consumers" "$P:{default}:lock:r1" "$P:{default}:lock:r2" "$P:{default}:lock:r3" "$(msg r1)" "$(msg r2)" "$(msg r3)" \
    "$old" >/dev/null
tq_wait_for 5 "the reaper to requeue dead1's messages" '[ "$(rcli GET "$P:{default}:counter:timer")" = 4 ]'
tq_assert_eq "dead1 removed from the consumers" "" "$(rcli ZSCORE "$P:{default}:consumers" dead1)"
tq_wait_for 5 "dead1 removed from the workers" '[ -z "$(rcli ZSCORE "$P:{@}:workers" dead1)" ]'
tq_assert_eq "dead1's processing list gone" 0 "$(rcli EXISTS "$P:{default}:processing:dead1")"
tq_assert_eq "requeued counter" 3 "$(rcli HGET "$P:{default}:stats" requeued)"
for i in 1 2 3; do tq_assert_eq "r$i ran by w1" w1 "$(rcli GET "$P:{default}:result:r$i" | sed 's/.*"worker":"\([^"]*\)".*/\1/')"; done

# (e) kill -9 a worker in the middle of long tasks: a survivor reaps and runs
# them, each exactly once.
tq_spawn w2 "$TICKQ_WORKER_BIN" --concurrency 4 --liveness 2 --worker-id w2 --queues slow
W2=$TQ_LAST_PID
tq_wait_for 5 "w2 registered" '[ -n "$(rcli ZSCORE "$P:{@}:workers" w2)" ]'
for i in 1 2 3 4; do rcli LPUSH "$P:{slow}:queue" "$(msg s$i sleep '[1.5]' slow)" >/dev/null; done
tq_wait_for 5 "w2 to hold 4 tasks" '[ "$(rcli LLEN "$P:{slow}:processing:w2")" = 4 ]'
kill -KILL "$W2"
tq_log "killed w2 holding 4 sleep tasks"
tq_spawn w3 "$TICKQ_WORKER_BIN" --concurrency 4 --liveness 2 --worker-id w3 --queues slow
W3=$TQ_LAST_PID
tq_wait_for 15 "s1..s4 done after the kill" \
    '[ "$(tq_done "s1")$(tq_done "s2")$(tq_done "s3")$(tq_done "s4")" = successsuccesssuccesssuccess ]'
for i in 1 2 3 4; do tq_assert_eq "s$i ran by the survivor" w3 "$(rcli GET "$P:{slow}:result:s$i" | sed 's/.*"worker":"\([^"]*\)".*/\1/')"; done
tq_assert_eq "no lock left" 0 "$(rcli EVAL "return #redis.call('KEYS', ARGV[1])" 0 "$P:{slow}:lock:s*")"

# (f) a worker restarted with the same id requeues what its last life held.
rcli LPUSH "$P:{default}:processing:w9" "$(msg f1)" >/dev/null
rcli SET "$P:{default}:lock:f1" w9 >/dev/null
tq_spawn w9 "$TICKQ_WORKER_BIN" --concurrency 1 --worker-id w9
tq_wait_for 5 "f1 requeued at start and run" '[ "$(tq_done "f1")" = success ]'

# (g) queues in strict priority order: with one thread, every 'high' message
# runs before any 'low' one.
for i in 1 2 3 4 5; do rcli LPUSH "$P:{low}:queue" "$(msg lo$i noop '[]' low)" >/dev/null; done
for i in 1 2 3 4 5; do rcli LPUSH "$P:{high}:queue" "$(msg hi$i noop '[]' high)" >/dev/null; done
tq_spawn wp "$TICKQ_WORKER_BIN" --concurrency 1 --worker-id wp -Q high,low
tq_wait_for 5 "all ten run" '[ "$(rcli LLEN "$P:{low}:queue")$(rcli LLEN "$P:{high}:queue")" = 00 ] && [ -n "$(tq_done "lo5")" ]'
last_hi=0; first_lo=99999999999
for i in 1 2 3 4 5; do
    f=$(rcli GET "$P:{high}:result:hi$i" | sed 's/.*"finished":\([0-9.]*\).*/\1/'); last_hi=$(echo "$f $last_hi" | awk '{print ($1>$2)?$1:$2}')
    f=$(rcli GET "$P:{low}:result:lo$i" | sed 's/.*"finished":\([0-9.]*\).*/\1/'); first_lo=$(echo "$f $first_lo" | awk '{print ($1<$2)?$1:$2}')
done
awk -v h="$last_hi" -v l="$first_lo" 'BEGIN{exit !(h <= l)}' || tq_fail "a low message ran before a high one ($first_lo < $last_hi)"
tq_log "ok: last high finished at $last_hi, first low at $first_lo"

# The workers with a 2 s liveness would reap wp if the connection kill below
# delayed its heartbeat past 2 s; (h) is about wp's own sweep.
kill -TERM "$W1" "$W3"; wait "$W1" "$W3"

# (h) a message left in a live worker's processing list by a lost reply (as
# when a connection drops between a fetch and its reply) is requeued by the
# worker's own orphan sweep, about 7 s later, and runs.
rcli LPUSH "$P:{low}:processing:wp" "$(msg o1 noop '[]' low)" >/dev/null
rcli CLIENT KILL TYPE normal >/dev/null   # every worker connection sees an I/O error
tq_wait_for 15 "the orphan o1 requeued and run" '[ "$(tq_done "o1")" = success ]'
grep -q "requeued a message left in processing by a lost redis reply" "$TQ_TMP/wp.log" ||
    tq_fail "wp did not log the orphan"

tq_assert_eq "nothing left in processing lists" 0 "$(sum_processing)"
tq_assert_eq "no dead letters" 0 "$(rcli LLEN "$P:{default}:dead")"
