#!/bin/sh
# What the cluster adds to a player's wait (docs/cluster.md,
# docs/benchmarks.md "Cluster"): login latency on a shard against a game
# without --cluster, and a chat line's latency to a member on the same
# shard against one on another shard (bench/cluster/latency.c).
#
# Usage: bench/cluster.sh [BUILD_DIR]      (default build-release)
#   REPS=3  N=300 (logins and lines per repetition)
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
