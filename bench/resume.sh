#!/bin/sh
# What session resume costs: ringport-game with resume off (grace 0) and on
# (grace 5,000 ms), paired, under the same ringport-bench game bots (with
# --resume when it is on, so they ACK), then one run with drops for the
# resume latency.
#
# Usage: bench/resume.sh [BUILD_DIR]          (default build-release)
#   REPS=5  DURATION=10 (s)  BOTS=1000  DROP_RATE=0.05
# Each repetition runs both modes back to back, the order alternating, on a
# fresh server pinned to CPU 0 (bots on CPU 1). Per run: the bots' verified
# messages/s, the server's CPU time per message (utime+stime from
# /proc/PID/stat over the bots' run) and its peak RSS (VmHWM). Prints a
# Markdown table with the per-repetition on/off ratios and their medians,
# then the drop run's resume count and latency. Every process it starts is
# stopped by PID on every exit path.
set -u

build=${1:-build-release}
reps=${REPS:-5}
dur=${DURATION:-10}
bots=${BOTS:-1000}
drop=${DROP_RATE:-0.05}
game_bin=$build/examples/game/ringport-game
bots_bin=$build/tools/bench/ringport-bench
for b in "$game_bin" "$bots_bin"; do
    [ -x "$b" ] || { echo "resume: $b missing (build first)" >&2; exit 2; }
done

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_begin resume

hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# run_one MODE [BOT FLAGS...]: prints "msgs_per_s cpu_us_per_msg hwm_kib",
# or "0 0 0" on a failure (named on stderr).
run_one() {
    mode=$1
    shift
    grace=0
    [ "$mode" = on ] && grace=5000
    lib_start "$tmp/out" "$tmp/err" "$game_bin" --port 0 --no-stats \
        --max-sessions $((bots * 2 + 100)) --resume-grace-ms "$grace"
    if ! lib_port "$tmp/out"; then
        echo "resume: ringport-game did not start" >&2
        cat "$tmp/err" >&2
        echo "0 0 0"
        return
    fi
    c0=$(cpu_ticks "$srv_pid")
    # shellcheck disable=SC2086
    $cpu1 "$bots_bin" game --port "$port" --bots "$bots" --duration "$dur" \
        --json "$@" >"$tmp/bots" 2>&1
    rc=$?
    c1=$(cpu_ticks "$srv_pid")
    hwm=$(hwm_kib "$srv_pid")
    lib_stop "$srv_pid" resume ringport-game
    srv_pid=""
    if [ "$rc" -ne 0 ]; then
        echo "resume: the bots failed ($rc) with resume $mode" >&2
        tail -n 5 "$tmp/bots" >&2
        echo "0 0 0"
        return
    fi
    json=$(tail -n 1 "$tmp/bots")
    rate=$(echo "$json" | sed -n 's/.*"msgs_per_s": *\([0-9.]*\).*/\1/p')
    m_in=$(echo "$json" | sed -n 's/.*"messages_in": *\([0-9]*\).*/\1/p')
    m_out=$(echo "$json" | sed -n 's/.*"messages_out": *\([0-9]*\).*/\1/p')
    msgs=$((${m_in:-0} + ${m_out:-0}))
    awk -v r="$rate" -v m="$msgs" -v t=$((c1 - c0)) -v hz="$hz" \
        -v h="$hwm" 'BEGIN {
            printf "%s %.2f %s\n", r, (m > 0 ? t * 1e6 / hz / m : 0), h }'
}

bench_paired off on "peak RSS KiB" "run_one off" "run_one on --resume"

echo
echo "Drops: resume on, --drop-rate $drop, $bots bots, $dur s:"
lib_start "$tmp/out" "$tmp/err" "$game_bin" --port 0 --no-stats \
    --max-sessions $((bots * 2 + 100)) --resume-grace-ms 5000
if lib_port "$tmp/out"; then
    $cpu1 "$bots_bin" game --port "$port" --bots "$bots" --duration "$dur" \
        --drop-rate "$drop" >"$tmp/bots" 2>&1
    rc=$?
    lib_stop "$srv_pid" resume ringport-game
    srv_pid=""
    grep -E 'resume:|verification errors' "$tmp/bots"
    [ "$rc" -eq 0 ] || echo "resume: the bots failed ($rc) in the drop run" >&2
fi
