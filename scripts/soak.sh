#!/bin/sh
# make soak: long-running load with the servers' memory and descriptors
# watched, so a slow leak shows up as a curve a person can look at.
#
#   scripts/soak.sh BUILD_DIR [SECONDS] [OUT_DIR]
#
# Echo phase (always): ringport-echo (framed, free port) under ringport-bench
# --mode framed (sizes 1-2048, depth 4, 200 connections, every byte
# verified) for SECONDS. Game phase, at the same time, only when both
# BUILD_DIR/examples/game/ringport-game exists and `ringport-bench game` is
# supported (the probe `ringport-bench game --help` exits 0); otherwise it
# says so and is skipped. Every second the RSS (VmRSS, KiB) and open
# descriptor count of each server are sampled into OUT_DIR/soak.csv
# (default build dir/soak), plotted into OUT_DIR/soak.png with gnuplot
# when it is installed.
#
# Fails (exit 1) if a load tool reports any error (a wrong byte, a lost
# reply, an unexpected close), a server dies or does not stop cleanly, or
# a series keeps growing after warm-up. The growth rule, per series, over
# the samples after the first third (warm-up):
#   step  = median(last third) - median(second third)
#   drift = least-squares slope x time spanned by the last two thirds
#   RSS:  grows if step > max(1 MiB, 2 % of the second-third median) AND
#         drift > max(2 MiB, 5 % of that median)
#   fds:  grows if step > 1 AND drift > 2
# Both must agree: a one-off step (a pool that grows once) or noise in the
# slope alone is not a leak; a leak raises both. Runs under 60 s have too
# few samples for the rule to mean much: it is applied, but say so.
set -u

build=${1:?usage: soak.sh BUILD_DIR [SECONDS] [OUT_DIR]}
secs=${2:-600}
out=${3:-$build/soak}
echo_bin=$build/examples/echo/ringport-echo
game_bin=$build/examples/game/ringport-game
load_bin=$build/tools/bench/ringport-bench
for b in "$echo_bin" "$load_bin"; do
    [ -x "$b" ] || { echo "soak: $b missing (build first)" >&2; exit 2; }
done
case "$secs" in '' | *[!0-9]*) echo "soak: SECONDS must be a number" >&2; exit 2 ;; esac
[ "$secs" -ge 10 ] || { echo "soak: at least 10 seconds" >&2; exit 2; }
mkdir -p "$out" || exit 2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringport-soak.XXXXXX") || exit 1
pids=""
cleanup() {
    for p in $pids; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a server ($1 name, then its command) in the background; sets
# srv_pid and srv_port. Bounded: 10 s to print "listening on ADDR:PORT".
start_server() {
    name=$1
    shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    srv_pid=$!
    pids="$pids $srv_pid"
    srv_port=""
    i=0
    while [ $i -lt 100 ]; do
        line=$(head -n 1 "$tmp/$name.out" 2>/dev/null)
        case "$line" in
        "listening on "*) srv_port=${line##*:}; return 0 ;;
        esac
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "soak: $name did not start:" >&2
    cat "$tmp/$name.err" >&2
    return 1
}

# "RSS_KIB FDS" of a PID, or "0 0" once it is gone.
sample() {
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    fds=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
    echo "${rss:-0} ${fds:-0}"
}

status=0
start_server echo "$echo_bin" --mode framed --port 0 --no-stats || exit 1
echo_pid=$srv_pid
"$load_bin" --port "$srv_port" --mode framed --connections 200 \
    --size 1-2048 --depth 4 --threads 1 --duration "$secs" --warmup 0 \
    --json >"$tmp/echo-load.out" 2>"$tmp/echo-load.err" &
echo_load=$!
pids="$pids $echo_load"

game_pid="" game_load=""
if [ -x "$game_bin" ] && "$load_bin" game --help >/dev/null 2>&1; then
    start_server game "$game_bin" --port 0 --no-stats || exit 1
    game_pid=$srv_pid
    "$load_bin" game --port "$srv_port" --bots 200 \
        --duration "$secs" --json \
        >"$tmp/game-load.out" 2>"$tmp/game-load.err" &
    game_load=$!
    pids="$pids $game_load"
else
    echo "soak: game phase skipped (needs $game_bin and \`ringport-bench game\`)"
fi

csv=$out/soak.csv
echo "t_s,echo_rss_kib,echo_fds,game_rss_kib,game_fds" >"$csv"
echo "soak: ${secs}s, sampling every second into $csv"
t=0
limit=$((secs + 30)) # the load tools get 30 s past SECONDS to finish
while [ $t -lt $limit ]; do
    alive=0
    kill -0 "$echo_load" 2>/dev/null && alive=1
    [ -n "$game_load" ] && kill -0 "$game_load" 2>/dev/null && alive=1
    [ $alive -eq 1 ] || break
    e=$(sample "$echo_pid")
    g="0 0"
    [ -n "$game_pid" ] && g=$(sample "$game_pid")
    set -- $e $g
    echo "$t,$1,$2,$3,$4" >>"$csv"
    sleep 1
    t=$((t + 1))
done

# The load tools' verdicts: exit status 0 and "ok":true.
check_load() {
    if kill -0 "$2" 2>/dev/null; then
        echo "soak: $1 load still running after ${limit}s: stopped" >&2
        kill -KILL "$2" 2>/dev/null
    fi
    if ! wait "$2"; then
        echo "soak: $1 load failed:" >&2
        tail -n 5 "$tmp/$1-load.out" "$tmp/$1-load.err" >&2
        status=1
    elif ! tail -n 1 "$tmp/$1-load.out" | grep -q '"ok":true'; then
        echo "soak: $1 load did not report ok" >&2
        status=1
    else
        tail -n 1 "$tmp/$1-load.out" | sed "s/^/soak: $1 load: /"
    fi
}
check_load echo "$echo_load"
[ -n "$game_load" ] && check_load game "$game_load"

# Graceful stop: status 0 within 15 s.
stop_server() {
    kill -TERM "$2" 2>/dev/null
    i=0
    while kill -0 "$2" 2>/dev/null && [ $i -lt 150 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$2" 2>/dev/null; then
        echo "soak: $1 did not stop" >&2
        status=1
    elif ! wait "$2"; then
        echo "soak: $1 exited with an error:" >&2
        tail -n 5 "$tmp/$1.err" >&2
        status=1
    fi
}
stop_server echo "$echo_pid"
[ -n "$game_pid" ] && stop_server game "$game_pid"

# The growth rule (see the top of this file) on one CSV column.
judge() {
    col=$1 name=$2 kind=$3
    n=$(($(wc -l <"$csv") - 1))
    if [ "$n" -lt 9 ]; then
        echo "soak: $name: only $n samples, not judged" >&2
        return 0
    fi
    a=$((n / 3)) b=$((2 * n / 3))
    med() { tail -n +2 "$csv" | sed -n "$1,$2p" | cut -d, -f"$col" | sort -n |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
    m2=$(med $((a + 1)) "$b")
    m3=$(med $((b + 1)) "$n")
    tail -n +2 "$csv" | sed -n "$((a + 1)),${n}p" | cut -d, -f1,"$col" | tr , ' ' |
        awk -v m2="$m2" -v m3="$m3" -v kind="$kind" -v name="$name" '
        { x[NR] = $1; y[NR] = $2; sx += $1; sy += $2 }
        END {
            mx = sx / NR; my = sy / NR
            for (i = 1; i <= NR; i++) {
                sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ^ 2
            }
            slope = sxx > 0 ? sxy / sxx : 0
            drift = slope * (x[NR] - x[1]); step = m3 - m2
            if (kind == "rss") {
                lim_step = m2 * 0.02; if (lim_step < 1024) lim_step = 1024
                lim_drift = m2 * 0.05; if (lim_drift < 2048) lim_drift = 2048
            } else { lim_step = 1; lim_drift = 2 }
            grows = step > lim_step && drift > lim_drift
            printf "soak: %s: median %g -> %g (step %g, limit %g), slope %.3f/s " \
                "(drift %.1f, limit %g): %s\n", name, m2, m3, step, lim_step, \
                slope, drift, lim_drift, grows ? "GROWS" : "flat"
            exit grows
        }' || status=1
}
judge 2 "echo RSS KiB" rss
judge 3 "echo descriptors" fds
if [ -n "$game_pid" ]; then
    judge 4 "game RSS KiB" rss
    judge 5 "game descriptors" fds
fi

if command -v gnuplot >/dev/null 2>&1; then
    games=""
    [ -n "$game_pid" ] && games=", '' using 1:(\$4/1024) with lines lw 2 title 'game RSS (MiB)', '' using 1:5 axes x1y2 with lines dt 2 title 'game fds'"
    gnuplot <<EOF || echo "soak: gnuplot failed (the CSV is still there)" >&2
set terminal png size 1000,500
set output '$out/soak.png'
set datafile separator ','
set key autotitle columnhead outside bottom center horizontal
set title 'ringport soak: server RSS and descriptors, one sample a second'
set xlabel 'seconds'
set ylabel 'RSS (MiB)'
set y2label 'open descriptors'
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
set grid
plot '$csv' using 1:(\$2/1024) with lines lw 2 title 'echo RSS (MiB)', \
     '' using 1:3 axes x1y2 with lines dt 2 title 'echo fds'$games
EOF
    [ -f "$out/soak.png" ] && echo "soak: plot $out/soak.png"
else
    echo "soak: gnuplot not installed: no plot (scripts/deps.sh soak)" >&2
fi
[ $status -eq 0 ] && echo "soak: passed" || echo "soak: FAILED" >&2
exit $status
