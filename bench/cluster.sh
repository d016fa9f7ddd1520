#!/bin/sh
# What the cluster adds to a player's wait (docs/cluster.md,
# docs/benchmarks.md "Cluster"): login latency on a shard against a game
# without --cluster, and a chat line's latency to a member on the same
# shard against one on another shard (bench/cluster/latency.c); then
# messages per second with the same bots on 3 shards against 1 shard.
#
# Usage: bench/cluster.sh [BUILD_DIR]      (default build-release)
#   REPS=3  N=300 (logins and lines per repetition)
#   MPS_REPS=2 MPS_BOTS=300 MPS_SECS=10: the throughput part, each
#   repetition 1 shard then 3 shards (interleaved), MPS_BOTS bots of
#   ringport-bench game in all (all on the one shard, or a third on each
#   of the 3), every shard --cluster on the one nats-server, fresh shards
#   each time; msgs/s is the bots' messages in + out per second, summed.
#   MPS_REPS=0 skips it.
# One private nats-server (JetStream, a temporary store, a free loopback
# port), two shards and one plain game, started once; each repetition is
# one bench-cluster-latency run (logins interleaved cluster / plain). Prints
# each run's lines and the uptime beside them. Every process it starts is
# stopped by PID on every exit path. Exits 77 without nats-server or
# without a libnats build.
set -u

build=${1:-build-release}
reps=${REPS:-3}
n=${N:-300}
game_bin=$build/examples/game/ringport-game
lat_bin=$build/bench/bench-cluster-latency
bots_bin=$build/tools/bench/ringport-bench
mps_reps=${MPS_REPS:-2}
mps_bots=${MPS_BOTS:-300}
mps_secs=${MPS_SECS:-10}
[ -x "$game_bin" ] || { echo "cluster: $game_bin missing (build first)" >&2; exit 2; }
if [ ! -x "$lat_bin" ]; then
    echo "cluster: $lat_bin missing: a build without libnats (scripts/deps.sh cluster): skipped"
    exit 77
fi

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringport-bench-cluster.XXXXXX") || exit 1
pids=""
cleanup() {
    for p in $pids; do lib_kill "$p"; done
    lib_nats_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lib_nats_start
rc=$?
[ $rc -eq 77 ] && { echo "cluster: nats-server not installed (scripts/deps.sh cluster): skipped"; exit 77; }
[ $rc -eq 0 ] || { echo "cluster: nats-server did not start" >&2; exit 1; }

cpu0=""
start() { # NAME ARGS...: starts a game, sets its port in port_NAME
    name=$1
    shift
    lib_start "$tmp/$name.out" "$tmp/$name.err" "$game_bin" --port 0 "$@"
    pids="$pids $srv_pid"
    lib_port "$tmp/$name.out" || { cat "$tmp/$name.err" >&2; exit 1; }
    eval "port_$name=$port"
}
start a --cluster "$nats_url" --shard 0
start b --cluster "$nats_url" --shard 1
start plain --no-stats
for s in a b; do
    i=0
    until grep -q "| cluster up" "$tmp/$s.err" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "cluster: shard $s did not connect" >&2; exit 1; }
        sleep 0.1
    done
done

r=1
while [ $r -le "$reps" ]; do
    echo "---- repetition $r ($(uptime | sed 's/.*load/load/'))"
    # shellcheck disable=SC2154 # set by start()
    "$lat_bin" "$port_a" "$port_b" "$port_plain" "$n" "r$r" || exit 1
    r=$((r + 1))
done

# Throughput: the same bots on 1 shard, then on 3 (a third each).
[ "$mps_reps" -gt 0 ] || exit 0
[ -x "$bots_bin" ] || { echo "cluster: $bots_bin missing (build first)" >&2; exit 2; }
mps_run() { # $rep, $shards: prints "mps SHARDS shards, ...: N msgs/s"
    run_pids="" bot_pids="" k=0 mports=""
    rm -f "$tmp"/m*.out "$tmp"/m*.err "$tmp"/mb* # lib_port reads the new
    while [ $k -lt "$shards" ]; do
        lib_start "$tmp/m$k.out" "$tmp/m$k.err" "$game_bin" --port 0 \
            --max-sessions $((mps_bots + 100)) --cluster "$nats_url" \
            --shard $((10 + k))
        pids="$pids $srv_pid"
        run_pids="$run_pids $srv_pid"
        lib_port "$tmp/m$k.out" || { cat "$tmp/m$k.err" >&2; exit 1; }
        mports="$mports $port"
        i=0
        until grep -q "| cluster up" "$tmp/m$k.err" 2>/dev/null; do
            i=$((i + 1))
            [ $i -gt 100 ] && { echo "cluster: shard did not connect" >&2; exit 1; }
            sleep 0.1
        done
        k=$((k + 1))
    done
    # The same client side either way: 3 bots processes of a third each,
    # process j on shard j mod SHARDS.
    j=0
    while [ $j -lt 3 ]; do
        n=0
        for q in $mports; do
            [ $n -eq $((j % shards)) ] && p=$q
            n=$((n + 1))
        done
        "$bots_bin" game --port "$p" --bots $((mps_bots / 3)) \
            --duration "$mps_secs" --name-prefix "m$rep$shards$j" --json \
            >"$tmp/mb$j" 2>&1 &
        bot_pids="$bot_pids $!"
        pids="$pids $!"
        j=$((j + 1))
    done
    for p in $bot_pids; do wait "$p" || { cat "$tmp"/mb* >&2; exit 1; }; done
    for p in $run_pids; do lib_stop "$p" cluster shard; done
    j=0 total=0
    while [ $j -lt 3 ]; do
        v=$(tail -n 1 "$tmp/mb$j" | sed -n 's/.*"msgs_per_s":\([0-9]*\).*/\1/p')
        total=$((total + ${v:-0}))
        j=$((j + 1))
    done
    echo "mps $shards shards, $mps_bots bots, ${mps_secs} s: $total msgs/s"
}
r=1
while [ $r -le "$mps_reps" ]; do
    echo "---- throughput repetition $r ($(uptime | sed 's/.*load/load/'))"
    rep=$r shards=1
    mps_run
    shards=3
    mps_run
    r=$((r + 1))
done
