#!/bin/sh
# Multi-core scaling: ringport-echo (raw, 64 B) and ringport-game with 1, 2,
# 4 and 8 I/O threads, each server pinned to its own cores and the load to
# the others, so a thread count never shares a core with the load.
#
# Usage: bench/scaling.sh [BUILD_DIR]          (default build-release)
#   THREADS="1 2 4 8"  I/O thread counts     DURATION=5 (seconds a run)
#   REPS=3             runs per count (the median is reported)
#   CONNECTIONS=400    echo connections      BOTS=2000 (game bots)
# Needs at least 2 x max(THREADS) cores (16 for the default): with fewer it
# says so in one line and exits 2, because a load that shares cores with
# the server measures the machine, not the server. Prints a Markdown table
# for docs/benchmarks.md ("Multi-core scaling") with msgs/s per count and
# the speed-up against 1 thread. Every process it starts is stopped by PID.
set -u

build=${1:-build-release}
threads=${THREADS:-1 2 4 8}
dur=${DURATION:-5}
reps=${REPS:-3}
conns=${CONNECTIONS:-400}
bots=${BOTS:-2000}
echo_bin=$build/examples/echo/ringport-echo
game_bin=$build/examples/game/ringport-game
load_bin=$build/tools/bench/ringport-bench
for b in "$echo_bin" "$game_bin" "$load_bin"; do
    [ -x "$b" ] || { echo "scaling: $b missing (build first)" >&2; exit 2; }
done

max=0
for t in $threads; do [ "$t" -gt "$max" ] && max=$t; done
cores=$(nproc)
if [ "$cores" -lt $((2 * max)) ]; then
    echo "scaling: needs $((2 * max)) cores for $max I/O threads plus the load; this machine has $cores" >&2
    exit 2
fi

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringport-scaling.XXXXXX") || exit 1
srv_pid=""
cleanup() {
    lib_kill "$srv_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_one KIND T: one run with T server threads; prints msgs/s (0 on error).
run_one() {
    kind=$1 t=$2
    srv_cpus="0-$((t - 1))"
    load_cpus="$t-$((cores - 1))"
    load_threads=$((cores - t))
    [ "$load_threads" -gt 8 ] && load_threads=8
    if [ "$kind" = echo ]; then
        cpu0="taskset -c $srv_cpus"
        lib_start "$tmp/out" "$tmp/err" "$echo_bin" --port 0 --mode raw \
            --threads "$t" --no-stats
    else
        cpu0="taskset -c $srv_cpus"
        lib_start "$tmp/out" "$tmp/err" "$game_bin" --port 0 \
            --threads "$t" --max-sessions $((bots * 2))
    fi
    if ! lib_port "$tmp/out"; then
        echo "scaling: the $kind server did not start" >&2
        cat "$tmp/err" >&2
        echo 0
        return
    fi
    if [ "$kind" = echo ]; then
        taskset -c "$load_cpus" "$load_bin" echo --port "$port" \
            --connections "$conns" --depth 16 --size 64 --duration "$dur" \
            --warmup 1 --threads "$load_threads" --json >"$tmp/load" 2>&1
    else
        taskset -c "$load_cpus" "$load_bin" game --port "$port" \
            --bots "$bots" --duration "$dur" --threads "$load_threads" \
            --json >"$tmp/load" 2>&1
    fi
    rc=$?
    lib_stop "$srv_pid" scaling "$kind server"
    srv_pid=""
    if [ "$rc" -ne 0 ]; then
        echo "scaling: $kind load failed ($rc)" >&2
        tail -n 5 "$tmp/load" >&2
        echo 0
        return
    fi
    tail -n 1 "$tmp/load" | sed -n 's/.*"msgs_per_s": *\([0-9.]*\).*/\1/p'
}

median() { sort -n | awk '{v[NR] = $1} END {print (NR ? v[int((NR + 1) / 2)] : 0)}'; }

echo "| workload | I/O threads | msgs/s (median of $reps) | speed-up |"
echo "|---|---|---|---|"
for kind in echo game; do
    base=""
    for t in $threads; do
        i=0
        : >"$tmp/runs"
        while [ $i -lt "$reps" ]; do
            run_one "$kind" "$t" >>"$tmp/runs"
            i=$((i + 1))
        done
        m=$(median <"$tmp/runs")
        [ -z "$base" ] && base=$m
        up=$(awk -v a="$m" -v b="$base" 'BEGIN {printf "%.2fx", (b > 0 ? a / b : 0)}')
        echo "| $kind | $t | $m | $up |"
    done
done
