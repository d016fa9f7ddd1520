#!/bin/sh
# Teardown cost with N armed sessions: server CPU per connect + teardown
# cycle of ringport-echo while IDLE idle sessions stay connected, against a
# base build (bench/teardown.py does the work; standard-library Python 3).
#
# Usage: [BASE_BUILD=DIR] bench/teardown.sh [BUILD_DIR]  (default build-release)
#   IDLE="0 5000"  CHURN=3000  WARMUP=1000  REPS=3  MODES="peer server"
# Writes a markdown report into bench/results/teardown-DATE.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/teardown.py" "${1:-build-release}"
