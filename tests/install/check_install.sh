#!/bin/sh
# Installs the built tree into a scratch prefix and builds two small
# programs outside the source tree against it with pkg-config, each once
# statically and once against the shared libraries:
#   core.c    the engine alone: `pkg-config ringport` (liburing, pthreads)
#   extras.c  the metrics endpoint and the INI reader as well:
#             `pkg-config ringport-extras` (which Requires ringport)
# The static links take exactly the libraries the .pc files name, so a
# missing Libs.private fails here; the core program's shared link must not
# need the extras or their dependencies.
# Usage: check_install.sh BUILD_DIR CC [SANITIZERS]
set -eu
build=$1
cc=$2
# A sanitizer build installs instrumented libraries: link the programs the
# same way.
san=${3:+-fsanitize=$3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
lib=$(ls -d "$work"/prefix/lib* | head -n 1)
export PKG_CONFIG_PATH="$lib/pkgconfig"
for f in include/ringport/api.h include/ringport/ringport.h \
    include/ringport/metrics.h include/ringport/config.h \
    "${lib#"$work/prefix/"}/pkgconfig/ringport.pc" \
    "${lib#"$work/prefix/"}/pkgconfig/ringport-extras.pc"; do
    [ -f "$work/prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done

cat >"$work/core.c" <<'C'
#include <ringport/ringport.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    if (RP_VERSION_MAJOR != rp_version_major())
        return 1;
    /* A port touches liburing (a private dependency of ringport.pc). */
    struct rp_port_config cfg = {0};
    struct rp_port *port;
    if (rp_port_create(&cfg, &port) != 0)
        return 1;
    rp_port_destroy(port);
    printf("ringport %s\n", rp_version_string());
    return strcmp(rp_version_string(), RP_VERSION_STRING) != 0;
}
C
cat >"$work/extras.c" <<'C'
#include <ringport/config.h>
#include <ringport/metrics.h>
#include <ringport/ringport.h>
#include <stdio.h>
int main(void)
{
    /* Touch both private dependencies of ringport-extras.pc: the endpoint
       (libmicrohttpd) and the INI parser (libinih). */
    struct rp_metrics *m;
    if (rp_metrics_create("127.0.0.1:0", &m) != 0)
        return 1;
    rp_metrics_destroy(m);
    uint32_t n = 0;
    struct rp_config_key keys[] = {{"n", RP_CONFIG_U32, &n, 0, NULL}};
    char err[128];
    static const char ini[] = "n = 7\n";
    if (rp_config_parse(ini, sizeof ini - 1, "t.ini", NULL, keys, 1, err,
                        sizeof err) != 0 || n != 7)
        return 1;
    printf("ringport-extras %s\n", rp_version_string());
    return 0;
}
C

# A game client: libringport-client alone (libc only, its own .pc).
cat >"$work/client.c" <<'C'
#include <errno.h>
#include <ringport/client.h>
#include <stdio.h>
int main(void)
{
    struct rp_client_config cfg;
    struct rp_client *c;
    rp_client_config_init(&cfg, "127.0.0.1", 9);
    if (rp_client_create(&cfg, &c) != 0)
        return 1;
    int ok = rp_client_state(c) == RP_CLIENT_IDLE &&
             rp_client_send(c, 1, "x", 1) == -ENOTCONN &&
             rp_client_backoff_ms(1, 100, 5000, 0) == 50;
    rp_client_destroy(c);
    printf("ringport-client\n");
    return !ok;
}
C

# build NAME PACKAGE: NAME.c against PACKAGE, shared then static, and run.
build() {
    name=$1
    pkg=$2
    # shellcheck disable=SC2046
    "$cc" $san -o "$work/${name}_shared" "$work/$name.c" \
        $(pkg-config --cflags --libs "$pkg")
    LD_LIBRARY_PATH="$lib" "$work/${name}_shared"
    # Static: the archives by path (with -l the linker would prefer the
    # .so), then every private dependency the .pc files name.
    static_libs=$(pkg-config --libs --static "$pkg" |
        sed -e "s|-lringport-extras|$lib/libringport-extras.a|" \
            -e "s|-lringport-client|$lib/libringport-client.a|" \
            -e "s|-lringport\\b|$lib/libringport.a|")
    # shellcheck disable=SC2086
    "$cc" $san -o "$work/${name}_static" "$work/$name.c" \
        $(pkg-config --cflags "$pkg") $static_libs
    "$work/${name}_static"
}
build core ringport
build extras ringport-extras
build client ringport-client

# The client needs nothing but libc, and exports only rp_client_*.
if objdump -p "$work/client_shared" | grep NEEDED |
    grep -Ev 'libringport-client\.so|libc\.so|libasan|libubsan|libtsan|libgcc_s|libm\.so|libstdc' |
    grep -q .; then
    echo "a client-only program needs more than libc:" >&2
    objdump -p "$work/client_shared" | grep NEEDED >&2
    exit 1
fi
if nm -D --defined-only "$lib/libringport-client.so" | awk '{print $3}' |
    grep -v '^rp_client_' | grep -Ev '^(__odr_asan|_init|_fini|__bss|_edata|_end)' |
    grep -q .; then
    echo "libringport-client.so exports more than rp_client_*" >&2
    exit 1
fi

# The core alone pulls in nothing of the extras.
if pkg-config --libs --static ringport | grep -Eq 'microhttpd|inih|extras'; then
    echo "ringport.pc names an extras dependency" >&2
    exit 1
fi
if objdump -p "$work/core_shared" |
    grep -Eq 'NEEDED.*(microhttpd|inih|extras)'; then
    echo "a core-only program needs an extras library" >&2
    exit 1
fi

for l in libringport libringport-extras libringport-client; do
    soname=$(objdump -p "$lib/$l.so" | awk '/SONAME/ {print $2}')
    case "$soname" in
    "$l".so.[0-9]*) echo "soname $soname" ;;
    *) echo "unexpected soname '$soname' for $l" >&2; exit 1 ;;
    esac
done
