#!/usr/bin/env bash
# Builds the whole tree (programs, examples, tests) with gcc and clang in
# Debug, RelWithDebInfo and Release, each under -Werror, and fails on any
# warning: a compiler or an optimisation level must not turn up a warning
# that the usual build hides (gcc's format-truncation shows only at some
# levels, with or without the sanitizers). Run by scripts/test.sh; alone:
# scripts/build-matrix.sh [DIR] (default build-matrix). gcc RelWithDebInfo,
# plain and sanitized, is what scripts/test.sh builds anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
top=${1:-build-matrix}
mkdir -p "$top"
status=0
for combo in gcc:Debug gcc:Release gcc:Debug:sanitize clang:Debug clang:RelWithDebInfo \
    clang:Release; do
    IFS=: read -r cc type san <<<"$combo"
    dir=$top/$cc-$type${san:+-$san}
    flags=(-DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE="$type")
    [ -n "$san" ] && flags+=(-DTICKQ_SANITIZE=ON)
    if ! command -v "$cc" >/dev/null; then
        echo "build-matrix: $combo: no $cc" >&2
        status=1
    elif cmake -S . -B "$dir" "${flags[@]}" >"$dir.log" 2>&1 &&
        cmake --build "$dir" -j "$(nproc)" >>"$dir.log" 2>&1; then
        echo "build-matrix: $combo: ok"
    else
        echo "build-matrix: $combo: FAILED" >&2
        grep -E 'error|warning' "$dir.log" | head -20 >&2
        status=1
    fi
done
exit $status
