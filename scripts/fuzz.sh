#!/bin/sh
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from the
# seed corpus in tests/fuzz/corpus/<name>. New inputs go to a scratch folder so
# the checked-in corpus stays small; a crash leaves its input in the current
# folder and fails the run (turn it into a regression in
# tests/fuzz/regressions/<name>/).
# Usage: scripts/fuzz.sh BUILD_DIR SECONDS
#   FUZZ_JOBS=N  targets run at once (default: the CPU count). Each target
#   is single-threaded, so N at once on N cores give each its SECONDS of
#   a core as one at a time would, in 1/N of the wall time. Reports come
#   in the targets' order, each after its batch.
set -eu
build=$1
seconds=$2
jobs=${FUZZ_JOBS:-$(nproc)}
status=0
work=$(mktemp -d)
pids=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# report NAME: what one finished target printed; a failure sets status.
report() {
    echo "fuzz: $1 for ${seconds}s"
    if [ "$(cat "$work/$1.rc")" -ne 0 ]; then
        tail -n 40 "$work/$1.log"
        status=1
    else
        grep -E 'stat::number_of_executed_units|stat::peak_rss' \
            "$work/$1.log" || true
    fi
}

batch=""
n=0
for bin in "$build"/tests/fuzz_*; do
    case "$bin" in *_replay) continue ;; esac
    [ -x "$bin" ] || continue
    name=$(basename "$bin" | sed 's/^fuzz_//')
    mkdir "$work/$name.corpus"
    (
        rc=0
        "$bin" -max_total_time="$seconds" -print_final_stats=1 \
            "$work/$name.corpus" "tests/fuzz/corpus/$name" \
            2>"$work/$name.log" || rc=$?
        echo "$rc" >"$work/$name.rc"
    ) &
    pids="$pids $!"
    batch="$batch $name"
    n=$((n + 1))
    if [ "$n" -ge "$jobs" ]; then
        wait
        pids=""
        for b in $batch; do report "$b"; done
        batch="" n=0
    fi
done
wait
pids=""
for b in $batch; do report "$b"; done
exit $status
