#!/usr/bin/env bash
# Time limits, expiry and paused queues: a `sleep 5` with timeout 1 is
# stopped and fails; a shell task past its limit has its whole process group
# killed; an expired message is not run and its result says so; a paused
# queue is not consumed, and is again within a second of its resume.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
tq_spawn worker "$TICKQ_WORKER_BIN" -c 2 -Q default,other --max-retries 0

# sleep 5 with a 1 s limit: stopped at 1 s, a failure.
t0=$(date +%s%3N)
rcli LPUSH "$P:{default}:queue" "$(tq_msg s1 sleep '[5]' '"timeout":1')" >/dev/null
tq_wait_for 5 "s1 finished" '[ -n "$(tq_done "s1")" ]'
tq_assert_eq "s1 status" failure "$(tq_result s1 .status)"
tq_result s1 .error | grep -q "timed out after 1.000 s" || tq_fail "s1 error: $(tq_result s1 .error)"
rt=$(tq_result s1 .runtime)
awk -v r="$rt" 'BEGIN { exit !(r >= 0.99 && r < 1.5) }' || tq_fail "s1 ran $rt s, not about 1 s"
tq_log "ok: sleep 5 with timeout 1 stopped after $rt s"

# A shell task whose children outlive the limit: the whole group dies.
marker=$TQ_TMP/still-alive
# The long sleep has a duration no other test uses (tests run in
# parallel, and test_worker_orphans runs "sleep 300").
long="30.$$"
rcli LPUSH "$P:{default}:queue" "$(tq_msg sh1 shell "[\"sh\",\"-c\",\"(sleep 3; touch $marker) & sleep $long\"]" '"timeout":1')" >/dev/null
tq_wait_for 10 "sh1 finished" '[ -n "$(tq_done "sh1")" ]'
tq_assert_eq "sh1 status" failure "$(tq_result sh1 .status)"
tq_result sh1 .error | grep -q "killed at the time limit" || tq_fail "sh1 error: $(tq_result sh1 .error)"
tq_assert_eq "sh1 exit code (SIGTERM)" 143 "$(tq_result sh1 .exit_code)"
sleep 3
[ ! -e "$marker" ] || tq_fail "a child of the shell task survived the kill"
pgrep -fx "sleep $long" >/dev/null && pgrep -afx "sleep $long" && tq_fail "sleep $long still runs"
tq_log "ok: the process group was killed"

# Expired: not run, result says expired, an event says so.
past=$(( $(date +%s) - 10 ))
rcli LPUSH "$P:{default}:queue" "$(tq_msg e1 timer.tick '[]' "\"expires_at\":$past")" >/dev/null
tq_wait_for 5 "e1 handled" '[ -n "$(tq_done "e1")" ]'
tq_assert_eq "e1 status" expired "$(tq_result e1 .status)"
tq_assert_eq "e1 not run (timer untouched)" "" "$(rcli GET "$P:{default}:counter:timer")"
tq_assert_eq "e1 events" "task-expired" "$(tq_events e1 | tr '\n' ' ' | sed 's/ $//')"
tq_assert_eq "expired counter" 1 "$(rcli HGET "$P:{default}:stats" expired)"
future=$(( $(date +%s) + 60 ))
rcli LPUSH "$P:{default}:queue" "$(tq_msg e2 timer.tick '[]' "\"expires_at\":$future")" >/dev/null
tq_wait_for 5 "e2 run" '[ "$(tq_done "e2")" = success ]'

# Pause: nothing taken from "other" while paused, even for 3 s.
rcli SET "$P:{other}:paused" 1 >/dev/null; rcli SADD "$P:{@}:queues" other >/dev/null
sleep 1.5
for i in 1 2 3; do rcli LPUSH "$P:{other}:queue" "$(tq_msg p$i noop '[]' '"queue":"other"')" >/dev/null; done
sleep 3
tq_assert_eq "paused queue untouched" 3 "$(rcli LLEN "$P:{other}:queue")"
rcli LPUSH "$P:{default}:queue" "$(tq_msg d1 noop)" >/dev/null
tq_wait_for 3 "the default queue still served" '[ "$(tq_done "d1")" = success ]'
t0=$(date +%s%3N)
rcli DEL "$P:{other}:paused" >/dev/null
tq_wait_for 3 "the resumed queue drained" '[ "$(rcli LLEN "$P:{other}:queue")" = 0 ] && [ -n "$(tq_done "p3")" ]'
ms=$(( $(date +%s%3N) - t0 ))
# Seen by the next fetch (each checks P:paused) or within 0.1 s of
# blocking; 3 s of margin for the ASan build on two busy cores.
[ "$ms" -le 3000 ] || tq_fail "resume took $ms ms"
tq_log "ok: resumed queue consumed $ms ms after SREM"
