#!/bin/sh
# ringport-game, hetero versus homo layout, under ringport-bench game bots:
# messages per second, tick overruns per content and p99 latency per
# message type (bench/game.py does the work; standard-library Python 3).
#
# Usage: bench/game.sh [BUILD_DIR]            (default build-release)
#   BOTS=N (5000)  DURATION=S (20)  REPS=N (3)  THREADS=N (bot threads, 2)
# Prints a markdown table (docs/benchmarks.md holds a recorded one).
# 5,000 bots need ~10,000 descriptors across the two processes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/game.py" "${1:-build-release}"
