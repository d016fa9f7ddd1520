#!/bin/sh
# make run: ringport-game (defaults, a free port) under BOTS verifying bots
# (ringport-bench game) for SECONDS, with the server's and the bots' figures
# live each second, then a graceful stop and both final reports. Session
# resume is on (--resume-grace-ms 5000) and each bot's socket is reset
# 0.05 times a second (--drop-rate 0.05): the bots' report has a "resume:"
# line (resumes, resume latency p50/p99, sessions lost). The game also
# listens for WebSocket clients (--ws-port 0) and serves its spectator page
# on its metrics endpoint (--metrics 127.0.0.1:0): the URL to open is
# printed first ("spectator page: http://127.0.0.1:PORT/").
#
#   scripts/run-game.sh BUILD_DIR [SECONDS] [BOTS]
#
# The server runs on CPU 0 and the bots on CPU 1 when taskset exists.
# Exits non-zero if either program failed (a verification error included).
# Bounded: the server gets 10 s to print its port and 15 s to stop after
# SIGTERM; the bots end on their own (SECONDS + at most 20 s of wind-down)
# and are killed after SECONDS + 60 s. Everything it started is stopped by
# PID.
set -u

build=${1:?usage: run-game.sh BUILD_DIR [SECONDS] [BOTS]}
secs=${2:-30}
bots=${3:-1000}
game_bin=$build/examples/game/ringport-game
bots_bin=$build/tools/bench/ringport-bench
for b in "$game_bin" "$bots_bin"; do
    [ -x "$b" ] || { echo "run-game: $b missing (build first)" >&2; exit 2; }
done

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
lib_pin
threads=1
[ "$bots" -ge 2000 ] && threads=2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringport-game.XXXXXX") || exit 1
srv_pid="" bots_pid=""
cleanup() {
    lib_kill "$bots_pid"
    lib_kill "$srv_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Room for BOTS sessions (plus rejoins in flight) whatever the default.
max=$((bots + bots / 4 + 100))
[ "$max" -lt 10000 ] && max=10000
lib_start "$tmp/out" "$tmp/err" "$game_bin" --port 0 --max-sessions "$max" \
    --resume-grace-ms 5000 --ws-port 0 --metrics 127.0.0.1:0
if ! lib_port "$tmp/out"; then
    echo "run-game: ringport-game did not start:" >&2
    cat "$tmp/err" >&2
    exit 1
fi
echo "ringport-game: $line (pid $srv_pid); $bots bots for ${secs} s"
# "metrics on ADDR:PORT" follows "listening on" (and "ws listening on").
mline="" i=0
while [ -z "$mline" ] && [ $i -lt 50 ]; do
    mline=$(grep -m 1 '^metrics on ' "$tmp/out")
    [ -z "$mline" ] && sleep 0.1
    i=$((i + 1))
done
[ -n "$mline" ] &&
    echo "spectator page: http://127.0.0.1:${mline##*:}/ (open it in a browser while the bots play)"

# shellcheck disable=SC2086
$cpu1 "$bots_bin" game --port "$port" --bots "$bots" --duration "$secs" \
    --threads "$threads" --drop-rate 0.05 --progress >"$tmp/bots" 2>&1 &
bots_pid=$!

# Live: each second, the new lines of the server's stats (stderr) and of
# the bots' progress, prefixed. Bounded by the bots' own end or 'limit'.
shown_s=0 shown_b=0
show_new() { # FILE SHOWN PREFIX: prints lines after SHOWN, echoes the count
    n=$(wc -l <"$1")
    [ "$n" -gt "$2" ] && sed -n "$(($2 + 1)),${n}p" "$1" | sed "s/^/$3/" >&2
    echo "$n"
}
limit=$((secs + 60))
i=0
while kill -0 "$bots_pid" 2>/dev/null && [ $i -lt $((limit * 10)) ]; do
    sleep 0.1
    i=$((i + 1))
    if [ $((i % 10)) -eq 0 ]; then
        shown_s=$(show_new "$tmp/err" "$shown_s" "server | ")
        shown_b=$(show_new "$tmp/bots" "$shown_b" "bots   | ")
    fi
done
if kill -0 "$bots_pid" 2>/dev/null; then
    echo "run-game: the bots did not end within $limit s" >&2
    kill -KILL "$bots_pid" 2>/dev/null
fi
wait "$bots_pid"
bots_rc=$?
bots_pid=""

lib_stop "$srv_pid" run-game ringport-game
srv_rc=$stop_rc
srv_pid=""

echo "---- report"
tail -n +2 "$tmp/out" | sed 's/, /\n    /g; s/^/ringport-game: /'
grep -v '^\[' "$tmp/bots" | grep -v ': bot '
grep ': bot ' "$tmp/bots" >&2
if [ "$srv_rc" -ne 0 ]; then
    echo "run-game: ringport-game exited with $srv_rc" >&2
    tail -n 20 "$tmp/err" >&2
fi
[ "$bots_rc" -ne 0 ] && echo "run-game: the bots failed ($bots_rc)" >&2
[ "$bots_rc" -eq 0 ] && [ "$srv_rc" -eq 0 ]
