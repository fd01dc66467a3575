#!/usr/bin/env bash
# Every option of the three programs against bad values, by flag and by
# environment variable: an empty value, leading or trailing spaces, a control
# byte, and for numbers hex, an exponent, an overflow and a negative. Each is
# exit code 2 and one line on stderr that names the option, and no program
# starts. Also: both flag forms, a missing value, unknown and repeated
# options, --help as another option's value, and the dry run's options.
. "$(dirname "$0")/lib.sh"
tq_redis_start
tq_require_empty
P=$TQ_PREFIX

# refused NAME WHAT CMD...: CMD exits 2 with one stderr line containing NAME,
# within 20 s (a program that started instead is killed by timeout: 124).
refused() {
    local name=$1 what=$2 rc=0
    shift 2
    timeout 20 "$@" >"$TQ_TMP/out" 2>"$TQ_TMP/err" || rc=$?
    [ "$rc" = 2 ] || tq_fail "$what: exit code $rc, not 2 (stderr: $(head -c 300 "$TQ_TMP/err"))"
    [ "$(wc -l <"$TQ_TMP/err")" = 1 ] || tq_fail "$what: not one line: $(cat "$TQ_TMP/err")"
    grep -qF -- "$name" "$TQ_TMP/err" || tq_fail "$what: '$(cat "$TQ_TMP/err")' does not name $name"
    [ ! -s "$TQ_TMP/out" ] || tq_fail "$what: printed on stdout: $(head -c 300 "$TQ_TMP/out")"
}

n=0
for prog in beat worker web; do
    case $prog in
        beat) bin=$TICKQ_BEAT ;;
        worker) bin=$TICKQ_WORKER_BIN ;;
        web) bin=$TICKQ_WEB ;;
    esac
    # The options of this program from its own table: flag, variable, default.
    "$bin" --help-markdown | sed -n 's/^| `\(-., \)\{0,1\}--\([a-z-]*\)` | `\([A-Z_]*\)` | \([^|]*\) |.*/\2 \3 \4/p' \
        >"$TQ_TMP/options.$prog"
    [ "$(wc -l <"$TQ_TMP/options.$prog")" -ge 7 ] || tq_fail "cannot read the options of tickq-$prog"
    while read -r flag env def; do
        extra=()
        # --from and --count only go with a dry run; give it, so that the
        # value itself is what is refused.
        case $flag in from | count) extra=(--next-runs '* * * * *') ;; esac
        values=('' ' x' 'x ' $'a\001b')
        if [[ $def =~ ^\`[0-9.]+\`$ ]]; then
            values+=(' 5' '5 ' '0x10' '1e3' '99999999999999999999' '-5' '+5' '5s')
        fi
        for v in "${values[@]}"; do
            shown=$(printf '%q' "$v")
            refused "--$flag" "tickq-$prog --$flag=$shown" "$bin" "--$flag=$v" "${extra[@]}"
            refused "$env" "tickq-$prog $env=$shown" env "$env=$v" "$bin" "${extra[@]}"
            n=$((n + 2))
        done
        if [ "$flag" != check ] && [ "$flag" != top ]; then # booleans take no next word
            refused "--$flag" "tickq-$prog --$flag ''" "$bin" "--$flag" '' "${extra[@]}"
            refused "--$flag" "tickq-$prog --$flag at the end" "$bin" "${extra[@]}" "--$flag"
            n=$((n + 2))
        fi
    done <"$TQ_TMP/options.$prog"

    # Unknown options, positional arguments, options of another program.
    refused "--bogus" "tickq-$prog --bogus" "$bin" --bogus
    refused "stray" "tickq-$prog stray" "$bin" stray
    refused "-x" "tickq-$prog -x" "$bin" -x
    # Both flag forms, and the last of a repeated option wins (an unreachable
    # URL first, the test server's last: --check answers 0).
    for form in "--redis-url=$REDIS_URL" "--redis-url $REDIS_URL"; do
        # shellcheck disable=SC2086 # the space form is two words on purpose
        rc=0; "$bin" --redis-url redis://127.0.0.1:1/0 $form --check || rc=$?
        tq_assert_eq "tickq-$prog $form after another --redis-url: --check" 0 "$rc"
    done
    rc=0; "$bin" --redis-url "$REDIS_URL" --redis-url redis://127.0.0.1:1/0 --check 2>/dev/null || rc=$?
    tq_assert_eq "tickq-$prog: the last --redis-url wins" 1 "$rc"
    # A bad value is refused even when a later one is good.
    refused "--log-level" "tickq-$prog --log-level loud --log-level info" \
        "$bin" --log-level loud --log-level info
    # --help after an option that takes a value is that value.
    rc=0; "$bin" --prefix --help --check >"$TQ_TMP/out" 2>&1 || rc=$?
    tq_assert_eq "tickq-$prog --prefix --help --check (a prefix named --help)" 0 "$rc"
    grep -q usage "$TQ_TMP/out" && tq_fail "tickq-$prog printed help for a value"
    refused "--log-level" "tickq-$prog --log-level --help" "$bin" --log-level --help
done
tq_log "ok: $n bad values refused"

# The beat's dry run: an empty --next-runs was the daemon, which took the
# lease and published. It and --from alone are refused and touch no key.
refused "--next-runs" "tickq-beat --next-runs ''" "$TICKQ_BEAT" --next-runs ''
refused "TICKQ_NEXT_RUNS" "TICKQ_NEXT_RUNS=''" env TICKQ_NEXT_RUNS= "$TICKQ_BEAT"
refused "--from" "tickq-beat --from without --next-runs" "$TICKQ_BEAT" --from 2026-01-01T00:00:00
refused "--count" "tickq-beat --count without --next-runs" "$TICKQ_BEAT" --count 3
refused "TICKQ_FROM" "TICKQ_FROM without --next-runs" env TICKQ_FROM=2026-01-01T00:00:00 "$TICKQ_BEAT"
refused "--check" "tickq-beat --check --next-runs" "$TICKQ_BEAT" --check --next-runs '* * * * *'
refused "--next-runs" "tickq-beat --next-runs --help" "$TICKQ_BEAT" --next-runs --help
tq_assert_eq "keys written by refused beats" 0 "$(rcli --scan --pattern "$P:*" | wc -l)"
out=$("$TICKQ_BEAT" --next-runs '0 3 * * *' --from 2026-01-01T00:00:00Z --count 2)
tq_assert_eq "a dry run with --from and --count" \
    "2026-01-01T03:00:00Z 2026-01-02T03:00:00Z" "$(echo $out)"
