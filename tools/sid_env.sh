#!/usr/bin/env bash
# The other CPythons of the matrix (3.13, 3.14, 3.15) come from Debian sid,
# in a chroot that this script makes once and keeps between runs.
#
#   tools/sid_env.sh ensure            make or update the chroot
#   tools/sid_env.sh run CMD [ARG...]  run CMD in it, in this repository
#
# The chroot lives in $IOLOOP_C_SID (default /var/cache/ioloop_c/sid), out
# of the repository, so a fresh clone on the same machine reuses it.  Each
# run happens in a private mount namespace (unshare -m): /proc, /dev and
# the repository are mounted into the chroot for that command alone and
# vanish with it, so nothing is left mounted on the host.  The repository
# is mounted at its own path, so `make` and every path in the tree work
# the same inside as outside.  Needs root (debootstrap, chroot, mount).
set -euo pipefail

SID=${IOLOOP_C_SID:-/var/cache/ioloop_c/sid}
MIRROR=${IOLOOP_C_SID_MIRROR:-http://deb.debian.org/debian}
VERSIONS=${IOLOOP_C_SID_VERSIONS:-"3.13 3.14 3.15"}
REPO=$(cd "$(dirname "$0")/.." && pwd)

# What the chroot must hold: each Python with its headers, venv and own
# test suite (test.test_asyncio), and a toolchain to build the extension.
packages() {
    # libssl-dev: the echo benchmark's C client with TLS (benchmarks/echo_client.c).
    local v list="gcc g++ make cmake ninja-build git ca-certificates procps libssl-dev"
    for v in $VERSIONS; do
        list="$list python$v python$v-dev python$v-venv libpython$v-testsuite"
    done
    echo "$list"
}

die() { echo "sid_env: $*" >&2; exit 1; }

ensure() {
    [ "$(id -u)" = 0 ] || die "needs root (debootstrap and chroot)"
    local want
    want=$(packages)
    if [ ! -x "$SID/usr/bin/apt-get" ]; then
        command -v debootstrap >/dev/null 2>&1 || {
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
        }
        echo "sid_env: debootstrap sid into $SID (about a minute)"
        rm -rf "$SID.tmp"
        mkdir -p "$(dirname "$SID")"
        debootstrap --variant=minbase --include="${want// /,}" sid \
            "$SID.tmp" "$MIRROR" >"$SID.log" 2>&1 ||
            { tail -20 "$SID.log"; die "debootstrap failed (log: $SID.log)"; }
        mv "$SID.tmp" "$SID"
        echo "$want" >"$SID/.ioloop_c-packages"
    elif [ "$(cat "$SID/.ioloop_c-packages" 2>/dev/null)" != "$want" ]; then
        # The package list grew since the chroot was made: add what is new.
        # sid's Release file is past its Valid-Until date on this mirror.
        echo "sid_env: installing into $SID: $want"
        in_chroot sh -c "apt-get -o Acquire::Check-Valid-Until=false \
            update -qq && DEBIAN_FRONTEND=noninteractive apt-get \
            -o Acquire::Check-Valid-Until=false install -y -qq $want"
        echo "$want" >"$SID/.ioloop_c-packages"
    fi
    # PyPI is reached through the host's certificate authorities; sid's own
    # bundle lacks any local one, so the host's is put in its place.
    cp /etc/ssl/certs/ca-certificates.crt "$SID/etc/ssl/certs/ca-certificates.crt"
    cp /etc/resolv.conf "$SID/etc/resolv.conf" 2>/dev/null || true
}

# Run "$@" inside the chroot, in the repository, with a clean environment
# (the host's pip settings point at paths that do not exist in there).
in_chroot() {
    local envs=(HOME=/root LANG=C.UTF-8 TERM=dumb
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
    local name
    for name in CI CMAKE_ARGS PYTEST_ARGS IOLOOP_C_BACKEND IOLOOP_C_STRESS \
        IOLOOP_C_SOAK PYTHONASYNCIODEBUG; do
        if [ -n "${!name+x}" ]; then
            envs+=("$name=${!name}")
        fi
    done
    unshare --mount --propagation private /bin/bash -euc '
        sid=$1 repo=$2; shift 2
        mount -t proc proc "$sid/proc"
        mount --rbind /dev "$sid/dev"
        mount -t tmpfs tmpfs "$sid/tmp"
        mkdir -p "$sid$repo"
        mount --bind "$repo" "$sid$repo"
        cd "$repo"
        exec chroot "$sid" /usr/bin/env -i "$@"
    ' sid_env "$SID" "$REPO" "${envs[@]}" /bin/sh -c 'cd "$0" && exec "$@"' \
        "$REPO" "$@"
}

case "${1:-}" in
ensure) ensure ;;
run)
    shift
    [ $# -gt 0 ] || die "usage: $0 run CMD [ARG...]"
    ensure
    in_chroot "$@"
    ;;
*) die "usage: $0 ensure | run CMD [ARG...]" ;;
esac
