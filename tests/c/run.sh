#!/usr/bin/env bash
# Build and run the C engine tests.  Each tests/c/test_*.c is a standalone
# program linked with the engine sources only (no Python); test_waker.c is
# built a second time with -DIOL_WAKER_PIPE, to test the pipe waker that
# non-Linux systems use, and test_clock runs a second time with
# IOLOOP_C_TICKS=clock, to test the tick counter's fallback.
#
#   bash tests/c/run.sh [BUILD_DIR]      (default: build/ctests in the repo)
#
#   CC=gcc                    compiler (default: cc)
#   CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
#                             extra flags, added after the fixed ones
#   VALGRIND=1                run each program under valgrind (memcheck)
#
# Exits non-zero if any program fails to build or fails a check.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/build/ctests}"
cc="${CC:-cc}"
mkdir -p "$out" || exit 1

# shellcheck disable=SC2206  # CFLAGS is a list of words on purpose
extra=(${CFLAGS:-})
base=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g)
engine=("$root"/csrc/engine/*.c)

failed=()

# build NAME SOURCE [FLAGS...]: compile one program into $out/NAME.
build() {
    local name="$1" src="$2"
    shift 2
    "$cc" "${base[@]}" "$@" "${extra[@]}" -I"$root/csrc/engine" \
        -o "$out/$name" "$src" "${engine[@]}" -pthread
}

run() {
    local name="$1"
    if [ "${VALGRIND:-0}" = 1 ]; then
        valgrind -q --error-exitcode=99 --leak-check=full \
            "$out/$name"
    else
        "$out/$name"
    fi
}

programs=()
for src in "$here"/test_*.c; do
    name="$(basename "$src" .c)"
    if build "$name" "$src"; then
        programs+=("$name")
    else
        failed+=("$name (build)")
    fi
    if [ "$name" = test_waker ]; then
        if build test_waker_pipe "$src" -DIOL_WAKER_PIPE; then
            programs+=(test_waker_pipe)
        else
            failed+=("test_waker_pipe (build)")
        fi
    fi
done

for name in "${programs[@]}"; do
    if ! run "$name"; then
        failed+=("$name")
    fi
done
# The tick counter's fallback (CLOCK_MONOTONIC nanoseconds).
if [[ " ${programs[*]} " == *" test_clock "* ]] && ! IOLOOP_C_TICKS=clock run test_clock; then
    failed+=("test_clock (ticks=clock)")
fi

if [ "${#failed[@]}" -ne 0 ]; then
    echo "C engine tests FAILED: ${failed[*]}" >&2
    exit 1
fi
