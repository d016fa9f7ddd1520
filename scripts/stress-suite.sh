#!/bin/sh
# make stress-suite: the whole CTest suite, round after round, on a machine
# kept busy on purpose, so a test that only passes on a quiet machine (a
# timing assumption, or a race that load widens) shows up here rather than
# in someone's `make test`.
#
#   scripts/stress-suite.sh BUILD_DIR [ROUNDS] [CTEST_ARG]...
#
# Starts two CPU-burning processes (`while :; do :; done`), then runs
# `ctest --output-on-failure -j <2 x cores>` in BUILD_DIR ROUNDS times
# (default 5), each round's whole output kept in
# BUILD_DIR/stress-suite/round-K.log (the folder is emptied first). Any
# further arguments go to ctest (-R / -E to narrow the suite). At the end
# it prints, for every test that failed at least once, the rounds it failed
# in and its output from each, then one line:
#
#   stress-suite: N rounds, T tests each, F failures (name xK, ...)
#
# F counts failed runs (a test failing in two rounds counts 2). Exit 0 if
# nothing failed, 1 if anything did, 2 for a usage error, 130 when
# interrupted.
#
# Bounded: CTest's per-test TIMEOUT bounds each test, and a whole round gets
# at most STRESS_ROUND_SECONDS (default 1200; the suite takes about a
# minute on a quiet 2-core machine) before it is killed and counted as a
# failure ("round-K-timeout"). The burners and the round are stopped by PID
# on every way out: normal end, error, Ctrl-C, SIGTERM, SIGHUP.
set -u

build=${1:?usage: stress-suite.sh BUILD_DIR [ROUNDS] [CTEST_ARG]...}
rounds=${2:-5}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
round_s=${STRESS_ROUND_SECONDS:-1200}
case "$rounds" in '' | *[!0-9]*) rounds=x ;; esac
case "$round_s" in '' | *[!0-9]*) round_s=x ;; esac
if [ "$rounds" = x ] || [ "$rounds" -lt 1 ] || [ "$round_s" = x ]; then
    echo "stress-suite: ROUNDS and STRESS_ROUND_SECONDS must be numbers >= 1" >&2
    exit 2
fi
[ -f "$build/CTestTestfile.cmake" ] ||
    { echo "stress-suite: $build is not a built CTest folder" >&2; exit 2; }
command -v timeout >/dev/null 2>&1 ||
    { echo "stress-suite: timeout(1) (coreutils) is needed" >&2; exit 2; }

cores=$(nproc 2>/dev/null || echo 2)
jobs=$((cores * 2))
out=$build/stress-suite
rm -rf "$out" && mkdir -p "$out" || exit 2

# Every process this script starts, stopped by PID on the way out.
burners=""
round_pid=""
cleanup() {
    for p in $round_pid $burners; do
        kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    round_pid="" burners=""
}
trap cleanup EXIT
trap 'echo "stress-suite: interrupted" >&2; exit 130' INT TERM HUP

for _ in 1 2; do
    sh -c 'while :; do :; done' &
    burners="$burners $!"
done
echo "stress-suite: $rounds rounds of the suite, ctest -j $jobs, 2 CPU" \
    "burners (pids$burners), logs in $out"

# Names of the tests that failed in one round's log, one a line: the
# "The following tests FAILED:" list ("  26 - name (Failed)").
failed_in() {
    sed -n '/^The following tests FAILED:/,$p' "$1" |
        sed -n 's/^[[:space:]]*[0-9][0-9]* - \([^ ]*\) (.*$/\1/p'
}

# One test's block of a round's log: its result line and the output
# --output-on-failure printed after it, up to the next test's line.
output_of() {
    awk -v name="$1" '
        /^ *[0-9]+\/[0-9]+ Test +#[0-9]+: / { on = ($4 == name) }
        /^ *Start +[0-9]+: / { on = 0 }
        /tests passed, .* tests failed out of / { on = 0 }
        on' "$2"
}

total=""
failures=0
failed_list="" # "round name" lines
k=1
while [ "$k" -le "$rounds" ]; do
    log=$out/round-$k.log
    start=$(date +%s)
    # In the background so that a signal runs the trap at once (sh defers
    # traps until a foreground command returns); timeout(1) puts ctest and
    # every test in its own process group and kills the group at the limit.
    (cd "$build" && exec timeout -k 30 "$round_s" \
        ctest --output-on-failure -j "$jobs" "$@") >"$log" 2>&1 &
    round_pid=$!
    wait "$round_pid"
    rc=$?
    round_pid=""
    took=$(($(date +%s) - start))
    n=$(sed -n 's/.*tests failed out of \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    [ -n "$n" ] && total=$n
    names=$(failed_in "$log")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        names="$names round-$k-timeout"
    elif [ "$rc" -ne 0 ] && [ -z "$names" ]; then
        names="round-$k-ctest-exit-$rc" # ctest itself failed
    fi
    count=0
    for t in $names; do
        failed_list="$failed_list$k $t
"
        count=$((count + 1))
    done
    failures=$((failures + count))
    echo "stress-suite: round $k/$rounds: ${n:-?} tests, $count failed," \
        "${took}s" "$(printf '%s' "$names" | tr '\n' ' ')"
    k=$((k + 1))
done

cleanup
names_summary=""
if [ "$failures" -gt 0 ]; then
    for t in $(printf '%s' "$failed_list" | awk '{ print $2 }' | sort -u); do
        in=$(printf '%s' "$failed_list" | awk -v t="$t" '$2 == t { print $1 }')
        times=$(echo "$in" | wc -l)
        echo
        echo "==== $t failed in round(s) $(printf '%s' "$in" | tr '\n' ' ')"
        for r in $in; do
            case "$t" in
            round-*)
                echo "---- round $r: see $out/round-$r.log" ;;
            *)
                echo "---- round $r ($out/round-$r.log):"
                output_of "$t" "$out/round-$r.log" ;;
            esac
        done
        if [ "$times" -gt 1 ]; then
            names_summary="$names_summary, $t x$times"
        else
            names_summary="$names_summary, $t"
        fi
    done
    echo
    names_summary=" (${names_summary#, })"
fi
echo "stress-suite: $rounds rounds, ${total:-?} tests each," \
    "$failures failures$names_summary"
[ "$failures" -eq 0 ]
