#!/bin/sh
# make fresh-check: proves the README's quick start on a machine that has
# nothing. It bootstraps a pristine Debian 12 root (debootstrap --variant=
# minbase bookworm; the Debian archive is the only network it assumes),
# caches it as a tarball outside the clone, unpacks a throw-away copy, puts
# the committed tree in it (git archive HEAD: an untracked file cannot make
# it pass), installs only `make`, and runs exactly the README's two commands:
#
#   make run BOTS=50 SECONDS=5
#   make test
#
# Usage: scripts/fresh-check.sh            (as root)
#   FRESH=rebuild        bootstrap the cached root again
#   FRESH_CACHE=DIR      where the tarball lives (/var/cache/ringport-fresh)
#   FRESH_MIRROR=URL     Debian mirror (default: the host's, else
#                        http://deb.debian.org/debian)
#
# The cached root is rebuilt when older than a week. The copy and its mounts
# (/proc, /sys, /dev) live in a private mount namespace (unshare), so the
# mounts vanish with the script whatever kills it; the copy is removed by the
# trap on every exit path (Ctrl-C and failure included), and only after
# findmnt shows nothing mounted under it. Every process still running in the
# copy at exit was started by this script and is killed by PID.
#
# Last line: "fresh-check: run ok, test ok (N tests) in M s", or the command
# that failed followed by its last lines. Exit 0 on success, 1 on a failed
# command, 2 when it cannot run (not root, no debootstrap, no git tree).
set -u

if [ "$(id -u)" -ne 0 ]; then
    echo "fresh-check: needs root (debootstrap, chroot and mounts); run it as root" >&2
    exit 2
fi

# Re-enter in a private mount namespace: mounts made below die with it.
if [ -z "${FRESH_IN_NS:-}" ]; then
    FRESH_IN_NS=1 exec unshare --mount --propagation private sh "$0" "$@"
fi

start=$(date +%s)
src=$(cd "$(dirname "$0")/.." && pwd)
cache=${FRESH_CACHE:-/var/cache/ringport-fresh}
tarball=$cache/bookworm-minbase.tar
debs=$cache/apt-archives # downloaded .deb files only; never installed state

if ! git -C "$src" rev-parse --verify -q HEAD >/dev/null; then
    echo "fresh-check: $src is not a git tree with a commit" >&2
    exit 2
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    sh "$src/scripts/deps.sh" fresh || exit 2
fi

mirror=${FRESH_MIRROR:-}
if [ -z "$mirror" ]; then
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\/*\)$/\1/p' \
        /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi

# ---- the cached pristine root --------------------------------------------
mkdir -p "$cache" "$debs"
stale=$(find "$tarball" -mtime +7 2>/dev/null)
if [ ! -s "$tarball" ] || [ -n "$stale" ] || [ "${FRESH:-}" = rebuild ]; then
    echo "fresh-check: bootstrapping Debian 12 (minbase) from $mirror"
    boot=$(mktemp -d "$cache/boot.XXXXXX") || exit 2
    if ! debootstrap --variant=minbase bookworm "$boot/root" "$mirror" \
        >"$boot/log" 2>&1; then
        tail -n 20 "$boot/log" >&2
        echo "fresh-check: debootstrap failed" >&2
        rm -rf "$boot"
        exit 2
    fi
    tar -C "$boot/root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$boot"
fi

# ---- the throw-away copy ---------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/var/tmp}/ringport-fresh.XXXXXX") || exit 2
root=$work/root

kill_inside() { # every process whose root is the copy: ours, by PID
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] &&
            kill -KILL "${p#/proc/}" 2>/dev/null
    done
}
cleanup() {
    kill_inside
    umount -R "$root/var/cache/apt/archives" "$root/dev" "$root/sys" \
        "$root/proc" 2>/dev/null
    if findmnt -rn -o TARGET | grep -q "^$root"; then
        echo "fresh-check: mounts remain under $root; not removing it" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$root"
tar -C "$root" -xf "$tarball" || exit 2
mount -t proc proc "$root/proc" &&
    mount -t sysfs sysfs "$root/sys" &&
    mount --rbind /dev "$root/dev" &&
    mount --bind "$debs" "$root/var/cache/apt/archives" || {
    echo "fresh-check: could not mount /proc, /sys and /dev in the copy" >&2
    exit 2
}
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
mkdir -p "$root/src/ringport"
git -C "$src" archive HEAD | tar -C "$root/src/ringport" -xf - || exit 2

# in_root LOG COMMAND: runs COMMAND in the copy with a clean environment.
in_root() {
    log=$1
    shift
    chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive \
        sh -c "cd /src/ringport && $*" >"$log" 2>&1
}
failed() { # NAME LOG
    echo "---- last lines of '$1'"
    tail -n 40 "$2"
    echo "fresh-check: '$1' failed after $(($(date +%s) - start)) s"
    exit 1
}

echo "fresh-check: installing make in the pristine root"
in_root "$work/make.log" "apt-get update -qq && apt-get install -y -qq make" ||
    failed "apt-get install make" "$work/make.log"

echo "fresh-check: make run BOTS=50 SECONDS=5"
in_root "$work/run.log" "make run BOTS=50 SECONDS=5" ||
    failed "make run BOTS=50 SECONDS=5" "$work/run.log"
grep -E 'verification errors|sessions [0-9]+ players' "$work/run.log"

echo "fresh-check: make test"
in_root "$work/test.log" "make test" || failed "make test" "$work/test.log"
summary=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$work/test.log")
echo "$summary"
tests=${summary##* out of }

echo "fresh-check: run ok, test ok ($tests tests) in $(($(date +%s) - start)) s"
