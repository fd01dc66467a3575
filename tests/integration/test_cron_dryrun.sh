#!/usr/bin/env bash
# tickq-beat --next-runs: the dry run answers "when will this run?" around
# DST changes (the README's examples among them), prints nothing but the
# instants on stdout, and rejects bad expressions, zones and times with a
# message and exit code 2. No Redis needed.
. "$(dirname "$0")/lib.sh"

# runs EXPECTED-LINES ARGS...: the dry run's stdout is exactly the lines.
runs() {
    local want=$1 got rc=0; shift
    got=$("$TICKQ_BEAT" "$@" 2>"$TQ_TMP/err.log") || rc=$?
    [ "$rc" = 0 ] || tq_fail "tickq-beat $*: exit code $rc: $(cat "$TQ_TMP/err.log")"
    [ "$got" == "$want" ] || tq_fail "tickq-beat $*:
expected:
$want
got:
$got"
    [ ! -s "$TQ_TMP/err.log" ] || tq_fail "tickq-beat $*: unexpected stderr: $(cat "$TQ_TMP/err.log")"
    tq_log "ok: $*"
}

# rejected NEEDLE ARGS...: exit code 2, nothing on stdout, NEEDLE on stderr.
rejected() {
    local needle=$1 out rc=0; shift
    out=$("$TICKQ_BEAT" "$@" 2>"$TQ_TMP/err.log") || rc=$?
    tq_assert_eq "exit code of tickq-beat $*" 2 "$rc"
    tq_assert_eq "stdout of tickq-beat $*" "" "$out"
    grep -qF -- "$needle" "$TQ_TMP/err.log" ||
        tq_fail "stderr of tickq-beat $*: expected '$needle', got '$(cat "$TQ_TMP/err.log")'"
}

# Spring forward in Berlin: 02:30 does not exist on 2026-03-29 and fires
# when the gap ends (03:00 CEST = 01:00Z); the README shows this one.
runs "2026-03-29T01:00:00Z
2026-03-30T00:30:00Z
2026-03-31T00:30:00Z
2026-04-01T00:30:00Z" --next-runs '30 2 * * *' --tz Europe/Berlin --from 2026-03-28T12:00:00Z --count 4
# Fall back: 02:30 happens twice on 2026-10-25; it fires once.
runs "2026-10-25T00:30:00Z
2026-10-26T01:30:00Z" --next-runs '30 2 * * *' --tz Europe/Berlin --from 2026-10-24T12:00:00Z --count 2
# ...but an hourly job keeps firing every real hour through the repeat.
runs "2026-10-25T00:00:00Z
2026-10-25T01:00:00Z
2026-10-25T02:00:00Z" --next-runs '0 * * * *' --tz Europe/Berlin --from 2026-10-24T23:30:00Z --count 3
# London, and the issue's example instant.
runs "2026-03-29T01:00:00Z" --next-runs '30 1 * * *' --tz Europe/London --from 2026-03-28T12:00:00Z --count 1
# Several skipped times in one gap are one fire.
runs "2026-03-08T06:45:00Z
2026-03-08T07:00:00Z
2026-03-08T07:15:00Z" --next-runs '*/15 * * * *' --tz America/New_York --from 2026-03-08T06:30:00Z --count 3
# Lord Howe's 30-minute gap; Santiago's missing midnight; years past 2037.
runs "2026-10-03T15:30:00Z" --next-runs '15 2 4 10 *' --tz Australia/Lord_Howe --from 2026-10-01T00:00:00Z --count 1
runs "2026-09-06T04:00:00Z
2026-09-07T03:00:00Z" --next-runs '@daily' --tz America/Santiago --from 2026-09-05T12:00:00Z --count 2
runs "2040-03-11T07:00:00Z" --next-runs '30 2 11 3 *' --tz America/New_York --from 2040-01-01T00:00:00Z --count 1
# --from without an offset is the zone's wall clock; the environment works too.
runs "2026-03-28T07:00:00Z" --next-runs '0 8 * * *' --tz Europe/Berlin --from 2026-03-28T07:00:00 --count 1
TICKQ_NEXT_RUNS='0 9 * * MON-FRI' TICKQ_TZ=Asia/Kolkata TICKQ_COUNT=2 \
    runs "2026-03-30T03:30:00Z
2026-03-31T03:30:00Z" --from 2026-03-28T00:00:00Z
# The --tz default is UTC.
runs "2026-03-28T12:05:00Z" --next-runs '*/5 * * * *' --from 2026-03-28T12:00:00Z --count 1

# Without --from: the next runs from now, strictly after it, in order.
now=$(date +%s)
out=$("$TICKQ_BEAT" --next-runs '* * * * *')
tq_assert_eq "lines with the default --count" 10 "$(wc -l <<<"$out")"
prev=$now
while read -r line; do
    t=$(date -u -d "$line" +%s)
    [ "$t" -gt "$prev" ] || tq_fail "default --from: $line is not after $(date -u -d "@$prev" +%FT%TZ)"
    prev=$t
done <<<"$out"
tq_log "ok: --from defaults to now"

rejected "expected 5 fields (minute hour day-of-month month day-of-week), got 4" --next-runs '* * * *'
rejected "minute field: 60 is out of range 0-59" --next-runs '60 * * * *'
rejected "step 0" --next-runs '*/0 * * * *'
rejected "reversed range '5-1'" --next-runs '0 5-1 * * *'
rejected "unknown name 'FOO'" --next-runs '0 0 * FOO *'
rejected "empty item" --next-runs '0,,5 0 * * *'
rejected "unknown macro" --next-runs '@reboot'
rejected "never fires" --next-runs '0 0 30 2 *'
rejected "--tz: unknown time zone 'Mars/Olympus'" --next-runs '* * * * *' --tz Mars/Olympus
rejected "--tz: '../../etc/passwd' is not a time zone name" --next-runs '* * * * *' --tz ../../etc/passwd
rejected "not a time zone name" --next-runs '* * * * *' --tz "$(printf 'A%.0s' $(seq 100))"
rejected "--from: 'yesterday' is not an ISO-8601 time" --next-runs '* * * * *' --from yesterday
rejected "--from: '2026-02-30': there is no such date" --next-runs '* * * * *' --from 2026-02-30
rejected "--count" --next-runs '* * * * *' --count 0
rejected "--count" --next-runs '* * * * *' --count many
# A bad --tz stops the beat itself too.
rejected "--tz: unknown time zone" --tz Nowhere/Land --redis-url redis://127.0.0.1:1/0
