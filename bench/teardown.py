#!/usr/bin/env python3
"""Teardown cost with N armed sessions: ringport-echo (framed) holds IDLE
idle connections, each with its receive armed, while a client connects
and is torn down CHURN times; the figure is the server's CPU time per
connect + teardown cycle (the sum of its threads' run time from
/proc/PID/task/*/schedstat, so the host's load moves it little), and the
client's wall time per cycle beside it. Two kinds of end:

  peer    the client sends one frame, reads its echo and resets the
          connection: the server's receive ends by itself, so its
          teardown is only the close;
  server  the client sends a header over --max-payload: the server ends
          the session (PROTOCOL) with its receive armed, so its teardown
          cancels it, then closes.

With BASE_BUILD (a build folder of the base commit) both builds run,
interleaved (base, new, base, new, ... for each IDLE), because this
machine drifts; the report gives medians and the new/base ratio of the
CPU per cycle. The server on CPU 0, this client on CPU 1 (when there are
two). Standard library only. Run through bench/teardown.sh.

Environment: IDLE ("0 5000"), CHURN (3000), WARMUP (1000 unmeasured
cycles first), REPS (3), MODES ("peer server"), BASE_BUILD, OUT (a report
file; default bench/results/teardown-DATE.md).
"""
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import time

IDLE = [int(x) for x in os.environ.get("IDLE", "0 5000").split()]
CHURN = int(os.environ.get("CHURN", "3000"))
WARMUP = int(os.environ.get("WARMUP", "1000"))
REPS = int(os.environ.get("REPS", "3"))
MODES = os.environ.get("MODES", "peer server").split()
BASE_BUILD = os.environ.get("BASE_BUILD", "")
MAX_PAYLOAD = 64
PING = struct.pack("<HH", 1, 1) + b"x"  # one frame: length 1, type 1
BAD = struct.pack("<HH", 1000, 1)  # over --max-payload: PROTOCOL
RESET = struct.pack("ii", 1, 0)  # SO_LINGER 0: reset, no TIME_WAIT


def server_cpu_ns(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that just ended
    return total


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_exactly(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit("teardown: the server closed an echo")
        buf += chunk
    return buf


def churn(port, mode, cycles=CHURN):
    for _ in range(cycles):
        s = connect(port)
        if mode == "peer":
            s.sendall(PING)
            read_exactly(s, len(PING))
        else:
            s.sendall(BAD)
            try:
                while s.recv(64):
                    pass
            except ConnectionResetError:
                pass
        s.close()


def run(build, idle):
    echo = os.path.join(build, "examples/echo/ringport-echo")
    pin = ["taskset", "-c", "0"] if os.cpu_count() >= 2 else []
    srv = subprocess.Popen(
        pin + [echo, "--port", "0", "--no-stats", "--max-payload",
               str(MAX_PAYLOAD), "--max-sessions", str(idle + 2000)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    conns = []
    res = {}
    try:
        m = re.match(r"listening on .*:(\d+)$", srv.stdout.readline().strip())
        if not m:
            raise SystemExit("teardown: ringport-echo did not start")
        port = int(m.group(1))
        for _ in range(idle):
            conns.append(connect(port))
        for s in conns:  # every session open and armed before measuring
            s.sendall(PING)
        for s in conns:
            read_exactly(s, len(PING))
        # Warm-up, not measured: the first sessions of a fresh server touch
        # its pools and tables for the first time (page faults), which
        # would land in whichever figure comes first.
        churn(port, "peer", WARMUP)
        for mode in MODES:
            time.sleep(0.2)
            c0, w0 = server_cpu_ns(srv.pid), time.perf_counter()
            churn(port, mode)
            w1 = time.perf_counter()
            time.sleep(0.3)  # the last teardowns finish
            c1 = server_cpu_ns(srv.pid)
            res[mode] = ((c1 - c0) / CHURN / 1000.0, (w1 - w0) / CHURN * 1e6)
    finally:
        for s in conns:
            s.close()
        srv.terminate()
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
    return res


def main():
    if os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})
    new = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                          "build-release")
    builds = [("base", os.path.abspath(BASE_BUILD))] if BASE_BUILD else []
    builds.append(("new", new))
    results = {}  # (name, idle, mode) -> [(cpu_us, wall_us)]
    load0 = os.getloadavg()
    for rep in range(REPS):
        for idle in IDLE:
            for name, build in builds:
                r = run(build, idle)
                for mode, fig in r.items():
                    results.setdefault((name, idle, mode), []).append(fig)
                print("rep %d idle %5d %-4s %s" % (rep + 1, idle, name, "  ".join(
                    "%s %.1f us cpu %.1f us wall" % (m, c, w)
                    for m, (c, w) in r.items())), file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    out = []
    out.append("# Teardown cost with N armed sessions\n")
    out.append("ringport-echo (framed, 1 I/O thread) on CPU 0 holding IDLE "
               "idle connections (receives armed); %d connect + teardown "
               "cycles per figure (after %d unmeasured) from a Python client "
               "on CPU 1; %d repetitions, builds interleaved; medians. Server "
               "CPU per cycle: its threads' run time (schedstat). %s; load "
               "average %.1f at the start, %.1f at the end.\n" % (
                   CHURN, WARMUP, REPS, time.strftime("%Y-%m-%d %H:%M"), load0[0],
                   load1[0]))
    out.append("Builds: new %s%s.\n" % (
        new, ", base %s" % os.path.abspath(BASE_BUILD) if BASE_BUILD else ""))
    names = [n for n, _ in builds]
    head = "| end | idle sessions | " + " | ".join(
        "%s CPU us/cycle | %s wall us/cycle" % (n, n) for n in names)
    if BASE_BUILD:
        head += " | new/base CPU per cycle (per pair) |"
    else:
        head += " |"
    out.append(head)
    out.append("| --- | ---: | " + " | ".join(
        "---: | ---:" for _ in names) + (" | ---: |" if BASE_BUILD else " |"))
    med = statistics.median
    for mode in MODES:
        for idle in IDLE:
            row = "| %s | %d | " % (mode, idle)
            row += " | ".join("%.1f | %.1f" % (
                med([c for c, _ in results[(n, idle, mode)]]),
                med([w for _, w in results[(n, idle, mode)]])) for n in names)
            if BASE_BUILD:
                ratios = [b[0] / a[0] for a, b in zip(
                    results[("base", idle, mode)], results[("new", idle, mode)])
                    if a[0] > 0]
                row += " | %s (median %.3f) |" % (
                    ", ".join("%.3f" % x for x in ratios), med(ratios))
            else:
                row += " |"
            out.append(row)
    text = "\n".join(out) + "\n"
    print(text)
    dest = os.environ.get("OUT") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results",
        "teardown-%s.md" % time.strftime("%Y-%m-%d-%H%M"))
    with open(dest, "w") as f:
        f.write(text)
    print("report: %s" % dest, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
