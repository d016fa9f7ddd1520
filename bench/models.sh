#!/bin/sh
# The three notification models side by side: echo-event (model 1),
# echo-routine (model 2) and echo-port (model 3) under the same load, in the
# same run, interleaved (the server order rotates every repetition), the
# server pinned to CPU 0 and the load client to CPU 1. Prints a markdown
# table of msgs/s medians and the median of paired ratios against the port
# model (each repetition's ratio uses runs minutes apart at most; the host
# drifts, so single absolute numbers mean little).
#
# Usage: bench/models.sh BUILD_DIR [BACKEND] [REPS] [SECONDS] [CONNECTIONS]
#   defaults: auto, 5 repetitions, 5 s per run, 50 connections;
#   message sizes 64 B and 1 KiB, depth 1.
set -eu

build=$1
backend=${2:-auto}
reps=${3:-5}
secs=${4:-5}
conns=${5:-50}
sizes="64 1024"
servers="echo-event echo-routine echo-port"
load="$build/tools/bench/ringport-bench"

pin_server=""
pin_load=""
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    pin_server="taskset -c 0"
    pin_load="taskset -c 1"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results="$tmp/results"
: >"$results"

# run_one SERVER SIZE REP: one server, one load run; appends a result line.
run_one() {
    srv=$1 size=$2 rep=$3
    out="$tmp/server.out"
    : >"$out"
    $pin_server "$build/examples/echo_models/$srv" --port 0 \
        --backend "$backend" >"$out" 2>"$tmp/server.err" &
    pid=$!
    i=0
    while [ ! -s "$out" ] && [ $i -lt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
    if [ -z "$port" ]; then
        echo "models.sh: $srv did not start:" >&2
        cat "$tmp/server.err" >&2
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    if ! json=$($pin_load "$load" --port "$port" --connections "$conns" \
        --size "$size" --depth 1 --duration "$secs" --warmup 0 --json |
        tail -n 1); then
        echo "models.sh: load against $srv failed" >&2
        kill "$pid" 2>/dev/null || true
        exit 1
    fi
    kill -TERM "$pid"
    wait "$pid" || { echo "models.sh: $srv exited non-zero" >&2; exit 1; }
    rate=$(echo "$json" | sed 's/.*"msgs_per_s":\([0-9.]*\).*/\1/')
    echo "$size $srv $rep $rate" >>"$results"
}

echo "## Notification models: echo msgs/s, backend $backend"
echo
echo "machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)"
echo "load: $conns connections, depth 1, $secs s per run, $reps repetitions, server on CPU 0, load on CPU 1"
echo

rep=1
while [ $rep -le "$reps" ]; do
    # Rotate the order so no server always runs first (or last).
    case $((rep % 3)) in
    1) order="echo-event echo-routine echo-port" ;;
    2) order="echo-routine echo-port echo-event" ;;
    0) order="echo-port echo-event echo-routine" ;;
    esac
    for size in $sizes; do
        for srv in $order; do
            run_one "$srv" "$size" "$rep"
        done
    done
    rep=$((rep + 1))
done

# Medians of msgs/s and of per-repetition ratios against echo-port.
awk -v sizes="$sizes" -v servers="$servers" '
function median(arr, n,    i, j, t) {
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && arr[j - 1] > arr[j]; j--) {
            t = arr[j]; arr[j] = arr[j - 1]; arr[j - 1] = t
        }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
{ rate[$1, $2, $3] = $4; if ($3 > reps) reps = $3 }
END {
    ns = split(sizes, sz, " "); nv = split(servers, sv, " ")
    printf "| message | echo-event (model 1) | echo-routine (model 2) | echo-port (model 3) | event / port | routine / port |\n"
    printf "| --- | ---: | ---: | ---: | ---: | ---: |\n"
    for (i = 1; i <= ns; i++) {
        line = sprintf("| %s B |", sz[i])
        for (k = 1; k <= nv; k++) {
            for (r = 1; r <= reps; r++) v[r] = rate[sz[i], sv[k], r]
            line = line sprintf(" %.0f |", median(v, reps))
        }
        for (k = 1; k <= 2; k++) {
            for (r = 1; r <= reps; r++)
                v[r] = rate[sz[i], sv[k], r] / rate[sz[i], "echo-port", r]
            line = line sprintf(" %.2f |", median(v, reps))
        }
        print line
    }
}' "$results"
echo
echo "msgs/s: medians over $reps repetitions; ratios: medians of the paired per-repetition ratios."
