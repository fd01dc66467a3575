#!/usr/bin/env bash
# Loading a large schedules file (issue 8, defect 10). The duplicate-name
# check was quadratic: 100 000 schedules took minutes, and SIGINT waited
# for it. Now: 100 000 load and publish well within a generous bound (the
# point is seconds, not minutes; the time is logged), a file over the
# 64 MiB limit is refused before it is parsed (exit 2, a message), and
# SIGINT during the load of a large file stops the beat within seconds,
# having upserted nothing.
. "$(dirname "$0")/lib.sh"

tq_redis_start
tq_require_empty
P=$TQ_PREFIX
now_ms() { date +%s%3N; }

# gen N FILE [EXTRA]: N interval schedules s0..s(N-1) (hourly, so that they
# publish little), and EXTRA entries appended as they are.
gen() {
    awk -v n="$1" -v extra="${3:-}" 'BEGIN {
        printf "{\"schedules\": [\n"
        for (i = 0; i < n; i++)
            printf "%s{\"name\": \"s%d\", \"task\": \"noop\", \"every\": 3600, \"queue\": \"load\"}\n",
                (i ? "," : ""), i
        if (extra != "") printf ",%s\n", extra
        printf "]}\n"
    }' >"$2"
}

# ---- 100 000 schedules: up and publishing ----
gen 100000 "$TQ_TMP/100k.json" \
    '{"name": "probe", "task": "noop", "every": 0.5, "queue": "probe"}'
t0=$(now_ms)
tq_spawn beat "$TICKQ_BEAT" --schedules "$TQ_TMP/100k.json" --beat-id big
BEAT=$TQ_LAST_PID
tq_wait_for 120 "100 001 schedules upserted" '[ "$(rcli HLEN "$P:{@}:schedules")" = 100001 ]'
t_seeded=$(now_ms)
tq_wait_for 120 "the beat loaded them and publishes" \
    "grep -q 'loaded 100001 schedules' '$TQ_TMP/beat.log' && [ \"\$(rcli LLEN '$P:{probe}:queue')\" -ge 1 ]"
t_up=$(now_ms)
tq_log "ok: 100 001 schedules: file read and upserted in $((t_seeded - t0)) ms, publishing after $((t_up - t0)) ms"
kill -TERM "$BEAT"
wait "$BEAT" || tq_fail "exit code $? after SIGTERM"

# ---- a file over the limit: refused before parsing ----
big=$TQ_TMP/65mib.json
{
    printf '{"schedules": []'
    head -c $((65 * 1024 * 1024)) /dev/zero | tr '\0' ' '
    printf '}\n'
} >"$big"
rc=0
timeout 60 "$TICKQ_BEAT" --schedules "$big" --prefix "$P-big" >"$TQ_TMP/big.out.log" \
    2>"$TQ_TMP/big.err.log" || rc=$?
tq_assert_eq "exit code for a 65 MiB file" 2 "$rc"
grep -q "over the limit of 67108864 bytes" "$TQ_TMP/big.err.log" ||
    tq_fail "65 MiB file: $(head -c 300 "$TQ_TMP/big.err.log")"
tq_log "ok: $(head -c 300 "$TQ_TMP/big.err.log")"
# The same through a pipe, where the size is not known ahead.
rc=0
timeout 60 "$TICKQ_BEAT" --schedules <(cat "$big") --prefix "$P-big" >"$TQ_TMP/pipe.out.log" \
    2>"$TQ_TMP/pipe.err.log" || rc=$?
tq_assert_eq "exit code for 65 MiB through a pipe" 2 "$rc"
grep -q "over the limit of 67108864 bytes" "$TQ_TMP/pipe.err.log" ||
    tq_fail "65 MiB pipe: $(head -c 300 "$TQ_TMP/pipe.err.log")"
rm -f "$big"

# ---- SIGINT during a long load ----
gen 400000 "$TQ_TMP/400k.json"
tq_spawn int "$TICKQ_BEAT" --schedules "$TQ_TMP/400k.json" --beat-id int --prefix "$P-int"
INT=$TQ_LAST_PID
sleep 0.5
t_int=$(now_ms)
kill -INT "$INT"
for _ in $(seq 300); do kill -0 "$INT" 2>/dev/null || break; sleep 0.05; done
kill -0 "$INT" 2>/dev/null && tq_fail "the beat still runs 15 s after SIGINT during its load"
rc=0
wait "$INT" || rc=$?
took=$(($(now_ms) - t_int))
tq_assert_eq "exit code after SIGINT during the load" 0 "$rc"
grep -q "stopped while reading" "$TQ_TMP/int.log" ||
    tq_fail "no 'stopped while reading' in the log: $(tail -3 "$TQ_TMP/int.log")"
tq_assert_eq "nothing upserted" 0 "$(rcli EXISTS "$P-int:schedules")"
tq_log "ok: SIGINT during the load of 400 000 schedules: stopped after $took ms"
