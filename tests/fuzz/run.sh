#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan into a build directory, then runs each for a bounded time on a copy
# of its seed corpus (the repository is never written), one at a time, and
# prints one line per target. Exit code 0 only if no target crashed, leaked,
# timed out or ran out of memory; a failing input is kept in
# <build dir>/fuzz-crashes/ and the end of the target's log is printed.
#
#   tests/fuzz/run.sh [build dir, default build-fuzz] [target ...]
#
# TICKQ_FUZZ_SECONDS sets the time per target (default 30). Without clang
# or its libFuzzer runtime it says so and exits 0: scripts/deps.sh installs
# both on Debian and Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-fuzz}
shift || true
seconds=${TICKQ_FUZZ_SECONDS:-30}
case $seconds in
'' | *[!0-9]*)
    echo "TICKQ_FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
    ;;
esac

if ! command -v clang >/dev/null; then
    echo "fuzz: skipped: no clang (scripts/deps.sh installs it)"
    exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' \
    >"$probe/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" \
    2>"$probe/log"; then
    echo "fuzz: skipped: clang has no libFuzzer runtime (Debian: libclang-rt-dev)"
    sed 's/^/    /' "$probe/log" | tail -3
    exit 0
fi

cmake -S . -B "$build" -DTICKQ_FUZZ=ON -DTICKQ_TESTS=OFF -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target tickq_fuzzers >/dev/null

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for t in "$build"/tests/fuzz/fuzz_*; do
        [ -x "$t" ] && targets+=("$(basename "$t")")
    done
fi
[ ${#targets[@]} -gt 0 ] || {
    echo "fuzz: no targets built in $build/tests/fuzz" >&2
    exit 1
}

crashes="$build/fuzz-crashes"
status=0
for t in "${targets[@]}"; do
    name=${t#fuzz_}
    work="$probe/$name"
    mkdir -p "$work/corpus" "$work/artifacts"
    if [ -d "tests/fuzz/corpus/$name" ]; then
        cp -R "tests/fuzz/corpus/$name/." "$work/corpus/"
    fi
    dict=()
    [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
    rc=0
    # halt_on_error: the first UBSan report fails the run, as a crash does.
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
        "${dict[@]}" "$work/corpus" >"$work/log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
    last=$(grep -E '^#[0-9]+' "$work/log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1, ft \2, corpus \3/p' \
        <<<"$last")
    if [ $rc -eq 0 ]; then
        echo "fuzz: $t: ok, ${seconds} s, ${runs:-?} runs (${speed:-?}/s), ${cov:-no coverage line}"
    else
        status=1
        mkdir -p "$crashes"
        cp "$work"/artifacts/* "$crashes/" 2>/dev/null || true
        echo "fuzz: $t: FAILED (exit $rc) after ${runs:-?} runs; inputs kept in $crashes:"
        ls "$work/artifacts" | sed "s|^|    $crashes/|"
        grep -v -E '^#[0-9]+|^(INFO|MS|base unit|Done|stat::)|^\s*"' "$work/log" | tail -40 |
            sed 's/^/    /'
    fi
done
exit $status
