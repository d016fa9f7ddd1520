#!/bin/sh
# Runs every micro-benchmark in BUILD_DIR/bench, pinned to one CPU where
# taskset exists, and prints their tables (markdown) for docs/benchmarks.md.
# Usage: bench/run.sh BUILD_DIR
set -eu
build=$1
echo "# ringport micro-benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)"
for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo
    "$b"
done
