#!/usr/bin/env bash
# Build and run the C engine tests: each tests/c/test_*.c is a program
# linked with the engine sources only (no Python).
#   bash tests/c/run.sh [BUILD_DIR]     CC, CFLAGS and VALGRIND=1 are honoured
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-build/ctests}"
mkdir -p "$out"
cc="${CC:-cc}"
status=0
for src in "$here"/test_*.c; do
    name="$(basename "$src" .c)"
    # shellcheck disable=SC2086
    "$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g ${CFLAGS:-} \
        -I"$root/csrc/engine" -o "$out/$name" "$src" "$root"/csrc/engine/*.c -lpthread
    if [ "${VALGRIND:-0}" = 1 ]; then
        valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
            "$out/$name" || status=1
    else
        "$out/$name" || status=1
    fi
done
exit $status
