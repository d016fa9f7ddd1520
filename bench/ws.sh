#!/bin/sh
# WebSocket against TCP on the same server, paired and interleaved:
#  1. echo: one ringport-echo (framed) with both listeners; ringport-bench
#     echo over TCP and over WebSocket (--transport ws), 64 B and 4 KiB,
#     CONNS connections, --depth DEPTH; the order alternates per repetition;
#  2. broadcast fan-out: one bench-ringport_room with both listeners;
#     ringport-bench room over TCP and over WebSocket, ROOM_CONNS
#     connections in rooms of ROOM_SIZE, each sending ROOM_RATE msgs/s
#     (every message goes to every member: deliveries = sent x ROOM_SIZE);
#  3. the game: ringport-game with both listeners; ringport-bench game
#     --transport ws --bots BOTS, then the same over TCP; their report lines.
#
# Usage: bench/ws.sh [BUILD_DIR]               (default build-release)
#   REPS=5 DURATION=5 (s) CONNS=100 DEPTH=8
#   ROOM_CONNS=500 ROOM_SIZE=50 ROOM_RATE=5 BOTS=1000 GAME_DURATION=10
#   PARTS="echo room game" (any of them, in that order)
# Servers run pinned to CPU 0, the load on CPU 1. Per run: the load's
# verified messages/s (room: deliveries/s) and the server's CPU time per
# message (utime+stime from /proc/PID/stat over the load's whole run,
# divided by every message it carried, warmup included: echo counts each
# message once, room each delivery). Prints Markdown
# tables with the per-repetition ws/tcp ratios and their medians. Every
# process it starts is stopped by PID on every exit path.
set -u

build=${1:-build-release}
reps=${REPS:-5}
dur=${DURATION:-5}
conns=${CONNS:-100}
depth=${DEPTH:-8}
room_conns=${ROOM_CONNS:-500}
room_size=${ROOM_SIZE:-50}
room_rate=${ROOM_RATE:-5}
bots=${BOTS:-1000}
game_dur=${GAME_DURATION:-10}
parts=${PARTS:-echo room game}
part() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
echo_bin=$build/examples/echo/ringport-echo
room_bin=$build/bench/bench-ringport_room
game_bin=$build/examples/game/ringport-game
bench_bin=$build/tools/bench/ringport-bench
for b in "$echo_bin" "$room_bin" "$game_bin" "$bench_bin"; do
    [ -x "$b" ] || { echo "ws: $b missing (build first)" >&2; exit 2; }
done

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_begin ws

json_num() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }

# start_server NAME PROG ARGS...: both listeners up; sets port and ws_port.
start_server() {
    name=$1
    shift
    lib_start "$tmp/out" "$tmp/err" "$@" --port 0 --ws-port 0
    if ! lib_port "$tmp/out"; then
        echo "ws: $name did not start" >&2
        cat "$tmp/err" >&2
        exit 1
    fi
    ws_port=""
    i=0
    while [ -z "$ws_port" ] && [ $i -lt 100 ]; do
        ws_port=$(sed -n 's/^ws listening on .*:\([0-9]*\)$/\1/p' "$tmp/out")
        [ -n "$ws_port" ] || sleep 0.1
        i=$((i + 1))
    done
    [ -n "$ws_port" ] || { echo "ws: $name has no ws listener" >&2; exit 1; }
}

stop_server() {
    lib_stop "$srv_pid" ws "$1"
    srv_pid=""
}

# load TRANSPORT ARGS...: one ringport-bench run against the running
# server; prints "msgs_per_s cpu_us_per_msg p99_us", or "0 0 0" on a
# failure (named on stderr). ARGS[0] is echo or room.
load() {
    tr=$1
    shift
    p=$port
    [ "$tr" = ws ] && p=$ws_port
    c0=$(cpu_ticks "$srv_pid")
    # shellcheck disable=SC2086
    $cpu1 "$bench_bin" "$@" --port "$p" --transport "$tr" --json \
        >"$tmp/load" 2>&1
    rc=$?
    c1=$(cpu_ticks "$srv_pid")
    json=$(tail -n 1 "$tmp/load")
    if [ "$rc" -ne 0 ]; then
        echo "ws: ringport-bench $* over $tr failed ($rc)" >&2
        tail -n 3 "$tmp/load" >&2
        echo "0 0 0"
        return
    fi
    rate=$(echo "$json" | json_num msgs_per_s)
    p99=$(echo "$json" | sed -n 's/.*"p99": *\([0-9.]*\).*/\1/p')
    if [ "$1" = room ]; then
        n=$(echo "$json" | json_num delivered)
    else
        n=$(echo "$json" | json_num sent)
    fi
    awk -v r="$rate" -v n="${n:-0}" -v t=$((c1 - c0)) -v hz="$hz" \
        -v p="$p99" 'BEGIN {
            printf "%s %.3f %s\n", r, (n > 0 ? t * 1e6 / hz / n : 0), p }'
}

# paired TITLE ARGS...: REPS repetitions of tcp and ws, order alternating.
paired() {
    title=$1
    shift
    echo "### $title"
    echo
    bench_paired tcp ws "p99 us" "load tcp $*" "load ws $*"
    echo
}

echo "load: $(uptime | sed 's/.*load average/load average/'); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo

if part echo; then
    start_server ringport-echo "$echo_bin" --mode framed --no-stats
    for size in 64 4096; do
        paired "Echo, $size B, $conns connections, depth $depth, $dur s" \
            echo --mode framed --connections "$conns" --size "$size" \
            --depth "$depth" --duration "$dur" --warmup 1
    done
    stop_server ringport-echo
fi

if part room; then
    start_server bench-ringport_room "$room_bin"
    paired "Room broadcast, $room_conns connections in rooms of $room_size, $room_rate msgs/s each, $dur s" \
        room --connections "$room_conns" --room-size "$room_size" \
        --rate "$room_rate" --size 64 --duration "$dur" --warmup 1
    stop_server bench-ringport_room
fi

part game || exit 0
echo "### ringport-game, $bots bots, $game_dur s"
echo
start_server ringport-game "$game_bin" --no-stats \
    --max-sessions $((bots * 2 + 100))
for tr in ws tcp; do
    p=$port
    [ "$tr" = ws ] && p=$ws_port
    $cpu1 "$bench_bin" game --port "$p" --transport "$tr" --bots "$bots" \
        --duration "$game_dur" >"$tmp/bots" 2>&1
    rc=$?
    echo "    \$ ringport-bench game --transport $tr --bots $bots --duration $game_dur"
    grep -E '^ringport-bench|verification errors' "$tmp/bots" | sed 's/^/    /'
    [ "$rc" -eq 0 ] || echo "ws: the game bots over $tr failed ($rc)" >&2
    echo
done
stop_server ringport-game
