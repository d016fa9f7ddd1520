#!/bin/sh
# make cross-check: compiles (-c, no link, nothing runs) every library
# source, src/**/*.c, for aarch64 with Debian's cross toolchain and the
# flags the host build gives it (the project's warnings, -Werror, defines,
# include directories), so x86-only code (an unguarded
# __builtin_ia32_pause(), an x86 intrinsic, an assumption about long or
# alignment that a warning catches) cannot come back unnoticed.
#
#   scripts/cross-check.sh
#
# Installs what is missing first (scripts/deps.sh cross: gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, linux-libc-dev-arm64-cross; as root via apt-get).
#
# Flags: CMake configures a scratch build (no tests) with
# CMAKE_EXPORT_COMPILE_COMMANDS, and each source is compiled with the
# command CMake gives it, the host compiler swapped for the cross one and
# include directories outside the tree dropped. A source under src/ that
# no target compiles fails the check.
#
# Headers: the cross compiler's own and the arm64 C library's, with the
# host's /usr/include removed from the search (-nostdinc, then each cross
# directory by -isystem): a host header there could be x86's. The three
# third-party headers the library uses (liburing.h and liburing/, ini.h,
# microhttpd.h) are architecture-independent: they are copied from the host
# into a temporary directory, alone. Every compile writes its dependency
# list, and a source that read any header outside the cross directories,
# that copy, include/ and src/ fails the check.
#
# Output: one line per failing source (its first diagnostic), then
# "cross-check: N sources compiled for aarch64" (N failed: "cross-check:
# N of M sources failed for aarch64"). Exit 0 only when every source
# compiled. CROSS_CC overrides the compiler; CROSS_KEEP=1 keeps the
# temporary directory (its path is printed) with every compiler log.
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
sh scripts/deps.sh cross

cc=${CROSS_CC:-aarch64-linux-gnu-gcc}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "cross-check: $cc not found" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rp-cross.XXXXXX")
if [ "${CROSS_KEEP:-0}" = 1 ]; then
    echo "cross-check: keeping $tmp" >&2
else
    trap 'rm -rf "$tmp"' EXIT
fi
trap 'exit 130' INT TERM
mkdir -p "$tmp/include" "$tmp/out" "$tmp/host"

# The host build's compile command of every source, one "FILE<TAB>COMMAND"
# line each (compile_commands.json holds one key per line).
if ! cmake -S "$root" -B "$tmp/host" -Wno-dev -DRP_BUILD_TESTS=OFF \
        -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$tmp/configure.log" 2>&1; then
    cat "$tmp/configure.log" >&2
    echo "cross-check: cmake configure failed" >&2
    exit 1
fi
awk '
    /^  "command": / {
        c = $0
        sub(/^  "command": "/, "", c)
        sub(/",?$/, "", c)
        gsub(/\\"/, "\"", c)
    }
    /^  "file": / {
        f = $0
        sub(/^  "file": "/, "", f)
        sub(/",?$/, "", f)
        if (!(f in seen)) {
            seen[f] = 1
            print f "\t" c
        }
    }
' "$tmp/host/compile_commands.json" >"$tmp/commands"

# The cross compiler's include directories, less the host's.
sysdirs=$("$cc" -E -v -x c /dev/null -o /dev/null 2>&1 |
    sed -n '/^#include <...> search starts here:/,/^End of search list./p' |
    sed -e '1d' -e '$d' -e 's/^ *//' |
    while read -r d; do
        d=$(readlink -f "$d")
        case "$d" in
        /usr/include | /usr/local/include | /usr/include/*-linux-gnu) ;;
        *) echo "$d" ;;
        esac
    done)
if [ -z "$sysdirs" ]; then
    echo "cross-check: cannot read $cc's include directories" >&2
    exit 1
fi

# Third-party headers, copied alone (no host header beside them).
hostinc=$(pkg-config --variable=includedir liburing 2>/dev/null || true)
for h in liburing.h liburing ini.h microhttpd.h; do
    found=""
    for d in $hostinc /usr/include; do
        if [ -e "$d/$h" ]; then
            found=$d/$h
            break
        fi
    done
    if [ -z "$found" ]; then
        echo "cross-check: host header $h not found (scripts/deps.sh build)" >&2
        exit 1
    fi
    cp -R "$found" "$tmp/include/"
done

isys=""
for d in $sysdirs; do
    isys="$isys -isystem $d"
done
allowed=$(printf '%s\n' "$sysdirs" "$tmp" "$root")

# One compile per source, in parallel; each leaves NAME.ok or NAME.fail.
export cc isys tmp root allowed
find src -name '*.c' | LC_ALL=C sort >"$tmp/sources"
total=$(wc -l <"$tmp/sources")
if [ "$total" -eq 0 ]; then
    echo "cross-check: no sources under src/" >&2
    exit 1
fi
# shellcheck disable=SC2016 # expanded by the inner shell
xargs -P "$(nproc)" -n 1 sh -c '
    src=$1
    key=$(printf "%s" "$src" | tr "/." "__")
    log=$tmp/out/$key.log
    cmd=$(awk -F "\t" -v f="$root/$src" "\$1 == f { print \$2; exit }" \
        "$tmp/commands")
    if [ -z "$cmd" ]; then
        echo "$src: no target compiles it" >"$tmp/out/$key.fail"
        exit 0
    fi
    # The host command less its compiler, output, input and any include
    # directory outside the tree or the scratch build; -Werror always.
    # shellcheck disable=SC2086
    set -- $cmd
    shift
    flags=""
    while [ $# -gt 0 ]; do
        case "$1" in
        -o | -c | -MF | -MT | -MQ) shift ;;
        -I | -isystem | -iquote) d=$2; shift
            case "$d" in "$root"/* | "$tmp"/*) flags="$flags -I$d" ;; esac ;;
        -I* | -isystem* | -iquote*)
            d=${1#-I}; d=${d#-isystem}; d=${d#-iquote}
            case "$d" in "$root"/* | "$tmp"/*) flags="$flags -I$d" ;; esac ;;
        -fsanitize* | -fno-sanitize* | -MD | -MMD) ;;
        *) flags="$flags $1" ;;
        esac
        shift
    done
    # shellcheck disable=SC2086
    if ! $cc $flags -Werror -nostdinc $isys -I"$tmp/include" \
            -MD -MF "$tmp/out/$key.d" -c "$root/$src" -o "$tmp/out/$key.o" \
            >"$log" 2>&1; then
        first=$(grep -m 1 -E "error|warning" "$log" || head -n 1 "$log")
        echo "$src: $first" >"$tmp/out/$key.fail"
        exit 0
    fi
    # Every header it read must come from an allowed directory.
    stray=$(sed -e "s/\\\\$//" -e "s/^[^:]*://" "$tmp/out/$key.d" |
        tr " " "\n" | grep -v "^$" | while read -r f; do
            f=$(readlink -f "$f")
            ok=0
            for d in $allowed; do
                case "$f" in "$d"/*) ok=1 ;; esac
            done
            [ $ok = 1 ] || echo "$f"
        done | head -n 1)
    if [ -n "$stray" ]; then
        echo "$src: read a host header: $stray" >"$tmp/out/$key.fail"
        exit 0
    fi
    : >"$tmp/out/$key.ok"
' sh <"$tmp/sources"

failed=0
for f in "$tmp"/out/*.fail; do
    [ -e "$f" ] || continue
    echo "cross-check: FAILED $(cat "$f")"
    failed=$((failed + 1))
done
ok=$(find "$tmp/out" -name '*.ok' | wc -l)
if [ "$failed" -ne 0 ] || [ "$ok" -ne "$total" ]; then
    echo "cross-check: $((total - ok)) of $total sources failed for aarch64"
    exit 1
fi
echo "cross-check: $total sources compiled for aarch64"
