#!/bin/sh
# make run: ringport-echo (framed, a free port) under ringport-bench
# with every byte verified, then a graceful stop.
#
#   scripts/run-echo.sh BUILD_DIR [SECONDS] [CONNECTIONS]
#
# The server runs on CPU 0 and the load on CPU 1 when taskset exists. Prints
# the load tool's figures and the server's final totals; exits non-zero if
# either program failed. Bounded: the server gets 10 s to print its port and
# 15 s to stop after SIGTERM; everything it started is stopped by PID.
set -u

build=${1:?usage: run-echo.sh BUILD_DIR [SECONDS] [CONNECTIONS]}
secs=${2:-10}
conns=${3:-100}
echo_bin=$build/examples/echo/ringport-echo
load_bin=$build/tools/bench/ringport-bench
for b in "$echo_bin" "$load_bin"; do
    [ -x "$b" ] || { echo "run-echo: $b missing (build first)" >&2; exit 2; }
done

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
lib_pin

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringport-run.XXXXXX") || exit 1
srv_pid=""
cleanup() {
    lib_kill "$srv_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lib_start "$tmp/out" "$tmp/err" "$echo_bin" --mode framed --port 0 --no-stats
if ! lib_port "$tmp/out"; then
    echo "run-echo: ringport-echo did not start:" >&2
    cat "$tmp/err" >&2
    exit 1
fi
echo "ringport-echo: $line (pid $srv_pid); load: $conns connections, ${secs} s"

# shellcheck disable=SC2086
$cpu1 "$load_bin" --port "$port" --mode framed --connections "$conns" \
    --size 64-1024 --depth 4 --duration "$secs" --warmup 0
load_rc=$?

lib_stop "$srv_pid" run-echo ringport-echo
srv_rc=$stop_rc
srv_pid=""
tail -n +2 "$tmp/out" | sed 's/^/ringport-echo: /'
if [ "$srv_rc" -ne 0 ]; then
    echo "run-echo: ringport-echo exited with $srv_rc" >&2
    tail -n 20 "$tmp/err" >&2
fi
[ "$load_rc" -ne 0 ] && echo "run-echo: ringport-bench failed ($load_rc)" >&2
[ "$load_rc" -eq 0 ] && [ "$srv_rc" -eq 0 ]
