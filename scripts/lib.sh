# shellcheck shell=sh disable=SC2034 # the variables set are the callers'
# Start and stop code shared by run-echo.sh and run-game.sh (sourced; POSIX
# sh). Every wait is bounded; processes are stopped by PID only.
#
#   lib_pin                    sets cpu0/cpu1 to "taskset -c 0"/"-c 1" when
#                              taskset exists and there are 2+ CPUs, else ""
#   lib_start OUT ERR PROG ARGS...
#                              starts PROG on $cpu0 in the background, stdout
#                              to OUT and stderr to ERR; sets srv_pid
#   lib_port OUT               waits at most 10 s (while srv_pid runs) for
#                              "listening on ADDR:PORT" as the first line of
#                              OUT; sets line and port; fails if none came
#   lib_kill PID               SIGKILL and reap, if PID (may be "") runs
#   lib_stop PID WHO NAME      SIGTERM, at most 15 s to exit, else a line
#                              "WHO: NAME did not stop within 15 s" and
#                              SIGKILL; sets stop_rc to its exit status
#   lib_nats_start [PORT]      nats-server with JetStream on 127.0.0.1 in a
#                              new temporary directory (nats_dir; kept by a
#                              restart: lib_nats_start "$nats_port" after
#                              lib_kill "$nats_pid"), on PORT or a free
#                              port the kernel picks (never 4222); waits at
#                              most 10 s for it to listen; sets nats_pid,
#                              nats_port, nats_url; fails (status 77 if
#                              nats-server is not installed)
#   lib_nats_stop              stops it by PID (lib_stop) and removes
#                              nats_dir; safe to call twice, and from an
#                              EXIT trap: trap 'lib_nats_stop' EXIT

lib_pin() {
    cpu0="" cpu1=""
    if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
        cpu0="taskset -c 0" cpu1="taskset -c 1"
    fi
}

lib_start() {
    lib_out=$1 lib_err=$2
    shift 2
    # shellcheck disable=SC2086
    $cpu0 "$@" >"$lib_out" 2>"$lib_err" &
    srv_pid=$!
}

lib_port() {
    port=""
    lib_i=0
    while [ $lib_i -lt 100 ]; do
        line=$(head -n 1 "$1" 2>/dev/null)
        case "$line" in
        "listening on "*) port=${line##*:}; return 0 ;;
        esac
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
        lib_i=$((lib_i + 1))
    done
    return 1
}

lib_kill() {
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null || true # 137: the kill; fine under set -e
    fi
}

lib_stop() {
    kill -TERM "$1"
    lib_i=0
    while kill -0 "$1" 2>/dev/null && [ $lib_i -lt 150 ]; do
        sleep 0.1
        lib_i=$((lib_i + 1))
    done
    if kill -0 "$1" 2>/dev/null; then
        echo "$2: $3 did not stop within 15 s" >&2
        kill -KILL "$1" 2>/dev/null
    fi
    wait "$1"
    stop_rc=$?
}

lib_nats_start() {
    command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] ||
        return 77
    lib_nats=$(command -v nats-server 2>/dev/null || echo /usr/sbin/nats-server)
    if [ -z "${nats_dir:-}" ] || [ -z "${1:-}" ]; then
        nats_dir=$(mktemp -d "${TMPDIR:-/tmp}/rp-nats.XXXXXX")
    fi
    rm -f "$nats_dir/log"
    "$lib_nats" -js -sd "$nats_dir" -a 127.0.0.1 -p "${1:--1}" \
        >"$nats_dir/log" 2>&1 &
    nats_pid=$!
    nats_port=""
    lib_i=0
    while [ $lib_i -lt 100 ]; do
        lib_line=$(grep -m 1 "Listening for client connections on" \
            "$nats_dir/log" 2>/dev/null || true)
        if [ -n "$lib_line" ]; then
            nats_port=${lib_line##*:}
            nats_url="nats://127.0.0.1:$nats_port"
            return 0
        fi
        kill -0 "$nats_pid" 2>/dev/null || break
        sleep 0.1
        lib_i=$((lib_i + 1))
    done
    lib_kill "$nats_pid"
    nats_pid=""
    return 1
}

lib_nats_stop() {
    if [ -n "${nats_pid:-}" ] && kill -0 "$nats_pid" 2>/dev/null; then
        lib_stop "$nats_pid" lib.sh nats-server || true
    fi
    nats_pid=""
    if [ -n "${nats_dir:-}" ]; then
        rm -rf "$nats_dir"
        nats_dir=""
    fi
}
