#!/usr/bin/env bash
# docs/CONFIG.md is generated from the option table: it must match what the
# programs print with --help-markdown. Also every program answers --help and
# --version with exit 0, and a bad option with exit 2.
. "$(dirname "$0")/lib.sh"
doc="$TICKQ_SOURCE_DIR/docs/CONFIG.md"
for p in beat worker web; do
    bin_var="TICKQ_$(echo "$p" | tr a-z A-Z)"; [ "$p" = worker ] && bin_var=TICKQ_WORKER_BIN
    bin=${!bin_var}
    "$bin" --help-markdown >"$TQ_TMP/$p.md"
    # the table of this program is the block after its heading
    awk -v h="## tickq-$p" '$0 == h {on = 1; next} on && /^## / {on = 0} on && /^\|/' "$doc" >"$TQ_TMP/$p.doc"
    diff -u "$TQ_TMP/$p.doc" "$TQ_TMP/$p.md" || tq_fail "docs/CONFIG.md is stale for tickq-$p: regenerate it"
    "$bin" --help | grep -q -- "--redis-url" || tq_fail "tickq-$p --help"
    "$bin" --version | grep -qE "^tickq-$p [0-9]+\.[0-9]+" || tq_fail "tickq-$p --version"
    rc=0; "$bin" --no-such-option 2>"$TQ_TMP/err" || rc=$?
    tq_assert_eq "tickq-$p bad option exit code" 2 "$rc"
    grep -q "no-such-option" "$TQ_TMP/err" || tq_fail "the error does not name the option"
    rc=0; TICKQ_LOG_LEVEL=loud "$bin" 2>"$TQ_TMP/err" || rc=$?
    tq_assert_eq "tickq-$p bad env exit code" 2 "$rc"
    grep -q "TICKQ_LOG_LEVEL" "$TQ_TMP/err" || tq_fail "the error does not name the variable"
done
