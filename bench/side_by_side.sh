#!/bin/sh
# Side-by-side benchmark of ringport-echo against the competitor servers in
# bench/servers/ (epoll, libuv, raw io_uring; epoll room for fan-out), with
# ringport-bench as the load. The work is done by bench/side_by_side.py
# (Python 3, standard library only); this wrapper finds it.
#
# Usage: bench/side_by_side.sh [BUILD_DIR]        (default build-release)
#   QUICK=1      a few cells, REPS=3, DURATION=1: a fast check
#   FILTER=RE    only the cells whose name matches RE ('echo c100', 'tick')
#   REPS=N       repetitions per cell (default 5); DURATION=S (default 2)
#   PERF_REPS=N  extra runs per server and cell under perf stat (default 1)
# Writes bench/results/side_by_side-<date>.md and prints it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/side_by_side.py" "${1:-build-release}"
