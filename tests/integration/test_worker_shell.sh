#!/usr/bin/env bash
# The shell task: argv without a shell, env, cwd, stdin, output and exit code
# in the result, failures, and output bounded to its last 4 KiB.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX
tq_spawn worker "$TICKQ_WORKER_BIN" -c 2 --max-retries 0
run() { # ID ARGS KWARGS
    rcli LPUSH "$P:{default}:queue" "$(tq_msg "$1" shell "$2" "\"kwargs\":${3:-{\}}")" >/dev/null
    tq_wait_for 10 "$1 finished" "[ -n \"\$(tq_done $1)\" ]"
}
mkdir -p "$TQ_TMP/work"
echo "in the cwd" >"$TQ_TMP/work/file.txt"

run a1 '["echo", "hello", "$HOME", "*"]'
tq_assert_eq "a1 status" success "$(tq_result a1 .status)"
tq_assert_eq "a1 output (no shell expansion)" 'hello $HOME *' "$(tq_result a1 .output | head -n1)"
tq_assert_eq "a1 exit code" 0 "$(tq_result a1 .exit_code)"

run a2 '["sh", "-c", "echo out; echo err >&2; exit 3"]'
tq_assert_eq "a2 status" failure "$(tq_result a2 .status)"
tq_assert_eq "a2 exit code" 3 "$(tq_result a2 .exit_code)"
tq_assert_eq "a2 stdout and stderr" "out err" "$(tq_result a2 .output | sed '/^$/d' | paste -sd' ')"
tq_result a2 .error | grep -q "exited with code 3" || tq_fail "a2 error: $(tq_result a2 .error)"
tq_assert_eq "a2 is a dead letter (max_retries 0)" max-retries "$(rcli LINDEX "$P:{default}:dead" 0 | jq -r .reason)"

run a3 '["sh", "-c", "echo $GREETING; cat file.txt; cat"]' \
    "{\"env\":{\"GREETING\":\"bonjour\"},\"cwd\":\"$TQ_TMP/work\",\"stdin\":\"from stdin\\n\"}"
tq_assert_eq "a3 env, cwd, stdin" "bonjour|in the cwd|from stdin" "$(tq_result a3 .output | sed '/^$/d' | paste -sd'|')"

run a4 '["no-such-program-here"]'
tq_assert_eq "a4 exit code" 127 "$(tq_result a4 .exit_code)"
tq_result a4 .error | grep -q "cannot run 'no-such-program-here'" || tq_fail "a4 error: $(tq_result a4 .error)"

run a5 '["sh", "-c", "seq 1 5000"]'
tq_assert_eq "a5 output bounded to 4096 bytes" 4096 "$(rcli GET "$P:{default}:result:a5" | jq -j .output | wc -c)"
tq_assert_eq "a5 keeps the end" 5000 "$(tq_result a5 .output | sed '/^$/d' | tail -n1)"

run a6 '[]'
tq_result a6 .error | grep -q "args must be the argv" || tq_fail "a6 error: $(tq_result a6 .error)"
run a7 '["true"]' '{"env":{"BAD=NAME":"x"}}'
tq_result a7 .error | grep -q "kwargs.env" || tq_fail "a7 error: $(tq_result a7 .error)"
run a8 '["pwd"]' '{"cwd":"/no/such/dir"}'
tq_assert_eq "a8 status" failure "$(tq_result a8 .status)"
kill -0 "$TQ_LAST_PID" || tq_fail "the worker died"
