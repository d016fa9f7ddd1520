#!/bin/sh
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from the
# seed corpus in tests/fuzz/corpus/<name>. New inputs go to a scratch folder so
# the checked-in corpus stays small; a crash leaves its input in the current
# folder and fails the run (turn it into a regression in
# tests/fuzz/regressions/<name>/).
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS
set -eu
build=$1
seconds=$2
status=0
for bin in "$build"/tests/fuzz_*; do
    case "$bin" in *_replay) continue ;; esac
    [ -x "$bin" ] || continue
    name=$(basename "$bin" | sed 's/^fuzz_//')
    scratch=$(mktemp -d)
    echo "fuzz: $name for ${seconds}s"
    if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 \
        "$scratch" "tests/fuzz/corpus/$name" 2>"$scratch.log"; then
        tail -n 40 "$scratch.log"
        status=1
    else
        grep -E 'stat::number_of_executed_units|stat::peak_rss' "$scratch.log" || true
    fi
    rm -rf "$scratch" "$scratch.log"
done
exit $status
