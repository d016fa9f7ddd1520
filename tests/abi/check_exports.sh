#!/bin/sh
# The ABI and the layering of the two libraries, checked on the built .so
# files (docs/architecture.md, "ABI" and "Libraries"):
#   - every function or object declared in include/ringport/*.h carries
#     RP_API;
#   - each library exports (nm -D --defined-only) exactly what its headers
#     declare: nothing internal (no rp__*, rp_ring_*, rp_pool_*, ...), and
#     nothing declared is missing;
#   - libringport calls nothing outside itself named rp_*, and needs no
#     shared library but liburing, libc, libpthread and libm (and a
#     sanitizer's runtime in those builds): it never reaches into the extras;
#   - libringport-extras uses only what libringport exports.
# Usage: check_exports.sh CC INCLUDE_DIR CORE_SO CORE_HEADERS EXTRAS_SO
#        EXTRAS_HEADERS   (HEADERS: comma-separated names, "port.h,...")
set -eu
cc=$1
inc=$2
core_so=$3
core_headers=$4
extras_so=$5
extras_headers=$6
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

for h in "$inc"/ringport/*.h; do
    echo "#include <ringport/${h##*/}>"
done >"$work/all.c"
"$cc" -E -D_GNU_SOURCE -I"$inc" "$work/all.c" >"$work/all.i"
awk -f "$here/public_decls.awk" "$work/all.i" | sort -u >"$work/decls"

unmarked=$(awk '$3 == "unmarked" { print "  " $1 ": " $2 }' "$work/decls")
if [ -n "$unmarked" ]; then
    echo "declared in include/ringport without RP_API (hidden from the .so):"
    echo "$unmarked"
    fail=1
fi

# check_lib NAME SO HEADERS: exports against the headers' declarations.
check_lib() {
    name=$1
    so=$2
    echo "$3" | tr ',' '\n' >"$work/$name.headers"
    awk 'NR == FNR { h[$1] = 1; next } ($1 in h) { print $2 }' \
        "$work/$name.headers" "$work/decls" | sort -u >"$work/$name.declared"
    # AddressSanitizer exports an ODR indicator (__odr_asan.NAME) beside
    # each exported object; it is the sanitizer's, not ours.
    nm -D --defined-only "$so" |
        awk 'NF >= 3 && $3 !~ /^__odr_asan[.]/ { print $3 }' | sort -u \
            >"$work/$name.exported"
    extra=$(comm -13 "$work/$name.declared" "$work/$name.exported")
    missing=$(comm -23 "$work/$name.declared" "$work/$name.exported")
    if [ -n "$extra" ]; then
        echo "$name exports names its headers ($3) do not declare:"
        echo "$extra" | sed 's/^/  /'
        fail=1
    fi
    if [ -n "$missing" ]; then
        echo "$name does not export what its headers ($3) declare:"
        echo "$missing" | sed 's/^/  /'
        fail=1
    fi
    echo "$name: $(wc -l <"$work/$name.exported") exported names"
}
check_lib libringport "$core_so" "$core_headers"
check_lib libringport-extras "$extras_so" "$extras_headers"

# Layering: the core needs nothing of the extras or their dependencies.
up=$(nm -D --undefined-only "$core_so" | awk '$NF ~ /^rp_/ { print "  " $NF }')
if [ -n "$up" ]; then
    echo "libringport calls rp_* names it does not define:"
    echo "$up"
    fail=1
fi
needed=$(objdump -p "$core_so" | awk '$1 == "NEEDED" { print $2 }')
allowed='liburing|libc|libm|libpthread|ld-linux[-a-z0-9_]*'
allowed="$allowed|libasan|libubsan|libtsan|libgcc_s" # sanitizer builds
bad=$(echo "$needed" | grep -Ev "^($allowed)\.so" || true)
if [ -n "$bad" ]; then
    echo "libringport needs libraries beyond liburing, libc, pthreads, libm:"
    echo "$bad" | sed 's/^/  /'
    fail=1
fi
echo "libringport needs: $(echo $needed)"
nm -D --undefined-only "$extras_so" | awk '$NF ~ /^rp_/ { print $NF }' |
    sort -u >"$work/extras.uses"
hidden=$(comm -23 "$work/extras.uses" "$work/libringport.exported")
if [ -n "$hidden" ]; then
    echo "libringport-extras uses rp_* names libringport does not export:"
    echo "$hidden" | sed 's/^/  /'
    fail=1
fi
exit $fail
