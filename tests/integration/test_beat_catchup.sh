#!/usr/bin/env bash
# Missed ticks after every beat was down: two beats run, both stop, 10 s
# pass, two start again. "catchup": "latest" publishes the most recent
# missed tick once, "none" none of them, "all" each of them, up to
# --catchup-max (the most recent ones). Cron schedules too: a minutely one
# with "all" and "latest", and one in Lord Howe's zone whose published
# ticks must be exactly what the dry run (--next-runs) says. Needs jq.
. "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || tq_fail "jq is required (apt-get install -y jq)"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX

SCHED=$TQ_TMP/schedules.json
cat >"$SCHED" <<'EOF'
{"schedules": [
  {"name": "latest", "task": "noop", "every": 1, "queue": "latest"},
  {"name": "none", "task": "noop", "every": 1, "queue": "none", "catchup": "none"},
  {"name": "all", "task": "noop", "every": 1, "queue": "all", "catchup": "all"},
  {"name": "fast", "task": "noop", "every": 0.25, "queue": "fast", "catchup": "all"},
  {"name": "minutely", "task": "noop", "cron": "* * * * *", "queue": "minutely",
   "catchup": "all"},
  {"name": "minutely-latest", "task": "noop", "cron": "* * * * *",
   "queue": "minutely-latest"},
  {"name": "lordhowe", "task": "noop", "cron": "17 */3 * * *", "tz": "Australia/Lord_Howe",
   "queue": "lordhowe", "catchup": "all"}
]}
EOF
now_ms() { date +%s%3N; }
state() { rcli HGET "$P:{@}:schedule-state" "$1"; }
# ids QUEUE: the ticks (ms) of the queue's messages, sorted.
ids() { rcli LRANGE "$P:{$1}:queue" 0 -1 | jq -r .id | sed 's/.*@//' | sort -n; }
# contiguous STEP: stdin's ticks are consecutive multiples of STEP.
contiguous() {
    awk -v step="$1" 'NR > 1 && $1 != prev + step { print "gap or duplicate at " $1 " after " prev; exit 1 }
                      { prev = $1 }'
}

start_beats() {
    local id
    PIDS=()
    for id in "$@"; do
        tq_spawn "beat-$id" "$TICKQ_BEAT" --schedules "$SCHED" --beat-id "$id" \
            --catchup-max 20 --log-level debug
        PIDS+=("$TQ_LAST_PID")
    done
}
stop_beats() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p"; done
    for p in "${PIDS[@]}"; do wait "$p" || tq_fail "a beat exited with $? after SIGTERM"; done
}

# ---- all beats run, then all stop ----
start_beats a1 a2
tq_wait_for 5 "every interval schedule published" \
    '[ -n "$(state latest)" ] && [ -n "$(state none)" ] && [ -n "$(state all)" ] && [ -n "$(state fast)" ]'
sleep 2
stop_beats
t_stop=$(now_ms)
tq_assert_eq "lease after all beats stopped" "" "$(rcli GET "$P:{@}:leader")"
declare -A L
for s in latest none all fast; do L[$s]=$(state "$s"); done
# The cron schedules: pretend their last ticks were long ago (and were
# never pushed: a minute pushed in the first run would be skipped as
# pushed before).
minute=$((t_stop / 60000 * 60000))
lh_from=$(((t_stop - 2 * 86400000) / 60000 * 60000))
for q in minutely minutely-latest lordhowe; do
    rcli DEL "$P:{$q}:queue" "$P:{$q}:published" >/dev/null
done
rcli HSET "$P:{@}:schedule-state" minutely $((minute - 300000)) minutely-latest $((minute - 300000)) \
    lordhowe "$lh_from" >/dev/null
left=$((t_stop + 10000 - $(now_ms)))
sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"

# ---- 10 s later, two beats start again ----
t_start=$(now_ms)
start_beats b1 b2
sleep 3
stop_beats
t_end=$(now_ms)
tq_log "down from $t_stop to $t_start ($((t_start - t_stop)) ms)"

# latest: one tick for the whole gap, the most recent one, then on.
after=$(ids latest | awk -v l="${L[latest]}" '$1 > l')
F=$(head -1 <<<"$after")
[ -n "$F" ] || tq_fail "latest: nothing published after the restart"
[ "$F" -gt $((t_start - 1000)) ] && [ "$F" -le $((t_start + 2000)) ] ||
    tq_fail "latest: first tick after the gap is $F, expected the latest due at the restart ($t_start)"
contiguous 1000 <<<"$after" || tq_fail "latest: ticks after the restart are not contiguous"
tq_log "ok: latest: skipped $(((F - L[latest]) / 1000 - 1)) ticks, published $F, then every tick"
grep -q "schedule 'latest': no beat ran for .* publishing only the latest" "$TQ_TMP"/beat-b?.log ||
    tq_fail "latest: no log line about the skipped ticks"

# none: nothing from the gap; the next tick after the restart.
F=$(ids none | awk -v l="${L[none]}" '$1 > l' | head -1)
[ -n "$F" ] && [ "$F" -gt "$t_start" ] && [ "$F" -le $((t_start + 3000)) ] ||
    tq_fail "none: first tick after the gap is '$F', expected the first after the restart ($t_start)"
ids none | awk -v l="${L[none]}" '$1 > l' | contiguous 1000 || tq_fail "none: not contiguous"
tq_log "ok: none: skipped every missed tick, resumed at $F"

# all: every tick, no gap at all.
ids all | contiguous 1000 || tq_fail "all: the missed ticks were not all published"
n=$(ids all | awk -v l="${L[all]}" -v s="$t_start" '$1 > l && $1 <= s' | wc -l)
[ "$n" -ge 9 ] || tq_fail "all: expected at least 9 ticks of the gap, got $n"
tq_log "ok: all: the $n ticks of the gap were published"

# all, bounded by --catchup-max 20: only the 20 most recent of ~40.
after=$(ids fast | awk -v l="${L[fast]}" '$1 > l')
F=$(head -1 <<<"$after")
contiguous 250 <<<"$after" || tq_fail "fast: ticks after the restart are not contiguous"
[ "$F" -gt $((L[fast] + 250)) ] || tq_fail "fast: expected older ticks to be skipped, first is $F"
[ "$F" -ge $((t_start - 20 * 250 - 1000)) ] && [ "$F" -lt "$t_start" ] ||
    tq_fail "fast: first published tick $F is not one of the 20 most recent before $t_start"
grep -q "schedule 'fast': no beat ran for .* publishing the last 20" "$TQ_TMP"/beat-b?.log ||
    tq_fail "fast: no log line about --catchup-max"
tq_log "ok: fast: skipped $(((F - L[fast]) / 250 - 1)) ticks, published the 20 most recent from $F"

# cron, all: each missed minute; latest: only the last one.
got=$(ids minutely)
want=$(seq $((minute - 240000)) 60000 $((t_end / 60000 * 60000)))
[ "$got" == "$want" ] || [ "$got" == "$(head -n -1 <<<"$want")" ] ||
    tq_fail "minutely: expected the minutes $(tr '\n' ' ' <<<"$want"), got $(tr '\n' ' ' <<<"$got")"
tq_log "ok: minutely (cron, all): $(wc -l <<<"$got") missed minutes published"
got=$(ids minutely-latest)
first=$(head -1 <<<"$got")
[ "$first" = $((t_start / 60000 * 60000)) ] || [ "$first" = $(((t_start + 2000) / 60000 * 60000)) ] ||
    tq_fail "minutely-latest: expected only the latest minute before the restart, got $(tr '\n' ' ' <<<"$got")"
[ "$(wc -l <<<"$got")" -le 2 ] || tq_fail "minutely-latest: too many ticks: $(tr '\n' ' ' <<<"$got")"
tq_log "ok: minutely-latest (cron, latest): only $first"

# A cron schedule in Lord Howe's zone publishes exactly the dry run's times.
want=$("$TICKQ_BEAT" --next-runs '17 */3 * * *' --tz Australia/Lord_Howe \
    --from "$(date -u -d "@$((lh_from / 1000))" +%FT%TZ)" --count 40 |
    while read -r t; do
        ms=$(($(date -u -d "$t" +%s) * 1000))
        if [ "$ms" -le "$t_start" ]; then echo "$ms"; fi
    done)
got=$(ids lordhowe | awk -v s="$t_start" '$1 <= s')
[ "$got" == "$want" ] || tq_fail "lordhowe: published $(tr '\n' ' ' <<<"$got"), the dry run says $(tr '\n' ' ' <<<"$want")"
tq_log "ok: lordhowe: the $(wc -l <<<"$got") ticks published are the dry run's"
