#!/usr/bin/env bash
# Runs every tickq test on a fresh Debian or Ubuntu machine: installs what is
# missing, builds twice (plain, and with AddressSanitizer + UBSan), runs the
# whole ctest suite in both builds (each integration test starts its own
# redis-server on a free port), then runs each libFuzzer target of
# tests/fuzz for TICKQ_FUZZ_SECONDS (30; 0 skips them) in build-fuzz with
# clang, then builds the tree with gcc and clang in every build type under
# -Werror (scripts/build-matrix.sh), then the container end-to-end test (tests/e2e: starts a Docker
# engine if none runs; TICKQ_SKIP_E2E=1 skips it). Exit code 0 only if
# everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
tq_deps_install python3-prometheus-client chromium
[ "${TICKQ_FUZZ_SECONDS:-30}" = 0 ] || tq_deps_install_fuzz

jobs=$(nproc)
status=0
for variant in build build-asan; do
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
    [ "$variant" = build-asan ] && flags+=(-DTICKQ_SANITIZE=ON)
    echo "=== $variant: configure and build"
    cmake -S . -B "$variant" "${flags[@]}" >/dev/null
    cmake --build "$variant" -j "$jobs" >/dev/null
    echo "=== $variant: ctest"
    # LeakSanitizer needs ptrace-free mode in containers; halt on the first
    # UBSan report so a test fails instead of printing and going on.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ctest --test-dir "$variant" --output-on-failure -j "$jobs" || status=1
done
if [ "${TICKQ_FUZZ_SECONDS:-30}" = 0 ]; then
    echo "=== fuzz: skipped (TICKQ_FUZZ_SECONDS=0)"
else
    echo "=== fuzz: each target for ${TICKQ_FUZZ_SECONDS:-30} s (tests/fuzz/run.sh)"
    bash tests/fuzz/run.sh build-fuzz || status=1
fi
echo "=== build matrix: gcc and clang, Debug/RelWithDebInfo/Release, -Werror (scripts/build-matrix.sh)"
bash scripts/build-matrix.sh build-matrix || status=1
if [ "${TICKQ_SKIP_E2E:-0}" = 1 ]; then
    echo "=== e2e: skipped (TICKQ_SKIP_E2E=1)"
else
    echo "=== e2e: docker compose"
    bash tests/e2e/test_compose.sh || status=1
fi
[ $status -eq 0 ] && echo "all tests passed" || echo "SOME TESTS FAILED" >&2
exit $status
