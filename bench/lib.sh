# shellcheck shell=sh disable=SC2034,SC2154 # the variables set and read (reps) are the callers'
# What the paired benchmark scripts share (bench/ws.sh, bench/resume.sh;
# sourced after scripts/lib.sh; POSIX sh): their set-up, the per-process
# CPU reading and the paired, interleaved repetitions with their ratios.
#
#   bench_begin NAME           lib_pin; sets hz (clock ticks a second) and
#                              tmp (a new temporary directory); on exit
#                              stops srv_pid (by PID) and removes tmp
#   cpu_ticks PID              utime + stime of PID so far, in ticks
#   median                     the median of the numbers on stdin, one a
#                              line (0 for none)
#   bench_paired A B THIRD RUN_A RUN_B
#                              REPS ($reps) repetitions of the commands
#                              RUN_A and RUN_B (split on blanks: no
#                              argument may hold one), A first on odd
#                              repetitions, B first on even ones; each
#                              prints "msgs_per_s cpu_us_per_msg THIRD"
#                              ("0 0 0" on a failure). Prints a Markdown
#                              table with the per-repetition B/A ratios of
#                              the first two, then their medians.

bench_begin() {
    lib_pin
    hz=$(getconf CLK_TCK)
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringport-$1.XXXXXX") || exit 1
    srv_pid=""
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    lib_kill "$srv_pid"
    rm -rf "$tmp"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

median() { sort -n | awk '{v[NR] = $1} END {print (NR ? v[int((NR + 1) / 2)] : 0)}'; }

bench_paired() {
    bp_a=$1 bp_b=$2 bp_third=$3 bp_run_a=$4 bp_run_b=$5
    echo "| rep | msgs/s $bp_a | msgs/s $bp_b | $bp_b/$bp_a | CPU us/msg $bp_a | $bp_b | $bp_b/$bp_a | $bp_third $bp_a | $bp_b |"
    echo "|---|---|---|---|---|---|---|---|---|"
    : >"$tmp/r_rate"
    : >"$tmp/r_cpu"
    bp_i=1
    while [ $bp_i -le "$reps" ]; do
        # shellcheck disable=SC2086
        if [ $((bp_i % 2)) -eq 1 ]; then
            bp_ra=$($bp_run_a)
            bp_rb=$($bp_run_b)
        else
            bp_rb=$($bp_run_b)
            bp_ra=$($bp_run_a)
        fi
        read -r bp_ar bp_ac bp_ax <<EOT
$bp_ra
EOT
        read -r bp_br bp_bc bp_bx <<EOT
$bp_rb
EOT
        bp_rr=$(awk -v a="$bp_br" -v b="$bp_ar" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
        bp_rc=$(awk -v a="$bp_bc" -v b="$bp_ac" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}')
        echo "$bp_rr" >>"$tmp/r_rate"
        echo "$bp_rc" >>"$tmp/r_cpu"
        echo "| $bp_i | $bp_ar | $bp_br | $bp_rr | $bp_ac | $bp_bc | $bp_rc | $bp_ax | $bp_bx |"
        bp_i=$((bp_i + 1))
    done
    echo
    echo "median $bp_b/$bp_a: msgs/s $(median <"$tmp/r_rate"), server CPU per message $(median <"$tmp/r_cpu")"
}
