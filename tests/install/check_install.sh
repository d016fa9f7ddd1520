#!/bin/sh
# Installs the built tree into a scratch prefix and builds a small program
# outside the source tree against it with `pkg-config --cflags --libs
# ringport`, once statically and once against the shared library.
# Usage: check_install.sh BUILD_DIR CC [SANITIZERS]
set -eu
build=$1
cc=$2
# A sanitizer build installs an instrumented library: link the program the
# same way.
san=${3:+-fsanitize=$3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
lib=$(ls -d "$work"/prefix/lib* | head -n 1)
export PKG_CONFIG_PATH="$lib/pkgconfig"
cat > "$work/hello.c" <<'C'
#include <ringport/ringport.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    if (RP_VERSION_MAJOR != rp_version_major())
        return 1;
    /* Touch the parts with private dependencies (libmicrohttpd, inih) so
       the static link must resolve them through ringport.pc. */
    struct rp_metrics *m;
    if (rp_metrics_create("127.0.0.1:0", &m) != 0)
        return 1;
    rp_metrics_destroy(m);
    printf("ringport %s\n", rp_version_string());
    return strcmp(rp_version_string(), RP_VERSION_STRING) != 0;
}
C
# shellcheck disable=SC2046
"$cc" $san -o "$work/hello_shared" "$work/hello.c" $(pkg-config --cflags --libs ringport)
LD_LIBRARY_PATH="$lib" "$work/hello_shared"
# Static: the archive by path (with -lringport the linker would prefer the
# .so), then every private dependency ringport.pc names.
static_libs=$(pkg-config --libs --static ringport | sed "s|-lringport|$lib/libringport.a|")
# shellcheck disable=SC2086
"$cc" $san -o "$work/hello_static" "$work/hello.c" $(pkg-config --cflags ringport) \
    $static_libs
"$work/hello_static"
soname=$(objdump -p "$lib/libringport.so" | awk '/SONAME/ {print $2}')
case "$soname" in
libringport.so.[0-9]*) echo "soname $soname" ;;
*) echo "unexpected soname '$soname'" >&2; exit 1 ;;
esac
