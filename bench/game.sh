#!/bin/sh
# ringport-game, hetero versus homo layout, under ringport-bench game bots,
# paired (interleaved repetitions): messages per second, tick overruns per
# content, p99 latency per message type and server CPU (bench/game.py does
# the work; standard-library Python 3).
#
# Usage: bench/game.sh [BUILD_DIR]            (default build-release)
#   BOTS=N (5000)  DURATION=S (20)  REPS=N (3)
#   THREADS="N ..." (bot threads, ringport-bench game --threads; 2)
#   OUT=FILE (default bench/results/game-DATE.md)
# One command for the whole comparison, e.g.
#   BOTS=5000 REPS=3 bench/game.sh build-release
# Prints a markdown report and writes it into bench/results/.
# 5,000 bots need ~10,000 descriptors across the two processes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/game.py" "${1:-build-release}"
