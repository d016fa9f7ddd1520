#!/bin/sh
# Makes sure the Debian packages the build needs are installed. As root it
# installs what is missing with apt-get (Debian's archive is the only network
# it assumes); otherwise it prints the exact command to run and fails.
# Usage: scripts/deps.sh [build|fuzz|bench|soak|fresh|cross|ws|ts|cluster|
#                         browser]...
set -eu

pkgs="cmake make gcc pkg-config liburing-dev libcmocka-dev libinih-dev
      libmicrohttpd-dev"
for extra in "$@"; do
    case "$extra" in
    build) ;;
    fuzz) pkgs="$pkgs clang libclang-rt-dev" ;;
    bench) pkgs="$pkgs liburcu-dev libck-dev libuv1-dev" ;;
    soak) pkgs="$pkgs gnuplot-nox" ;;
    fresh) pkgs="$pkgs debootstrap" ;;
    # Real WebSocket peers for tests/integration/test_ws_clients.c and
    # test_client_ws.c (they skip with one line when missing).
    ws) pkgs="$pkgs nodejs node-ws python3-websockets" ;;
    # The TypeScript client (clients/ts): node, tsc, and ws for its tests;
    # python3 for the message generator's checks (tools/gen).
    ts) pkgs="$pkgs nodejs node-typescript node-ws python3" ;;
    # NATS: the server the cluster tests start, and the C client that
    # ringport-game --cluster links (docs/cluster.md).
    cluster) pkgs="$pkgs nats-server libnats-dev" ;;
    # The spectator page (tsc) and its browser test: headless Chromium
    # driven over the DevTools protocol by Node with Debian's node-ws.
    browser) pkgs="$pkgs node-typescript nodejs node-ws
                   chromium-headless-shell" ;;
    # Debian's aarch64 cross compiler, C library and kernel headers
    # (scripts/cross-check.sh compiles the library for aarch64).
    cross) pkgs="$pkgs gcc-aarch64-linux-gnu libc6-dev-arm64-cross
                 linux-libc-dev-arm64-cross" ;;
    *) echo "deps.sh: unknown set '$extra'" >&2; exit 2 ;;
    esac
done

missing=""
for p in $pkgs; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *" installed") ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "ringport: missing packages; run: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "ringport: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent on a fresh machine.
apt-get update -qq >/dev/null || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
