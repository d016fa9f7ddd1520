#!/usr/bin/env python3
"""Side-by-side benchmark: ringport-echo against the competitor servers.

Run through bench/side_by_side.sh (or directly): side_by_side.py BUILD_DIR

Each server runs pinned to CPU 0 (taskset), the load (ringport-bench) to
CPU 1. Within a cell every server of the cell is started once, then the
repetitions run interleaved (rep r starts at server r mod n), because this
host drifts up to 2x within minutes: only paired ratios taken in the same
repetition mean something. Per run it records the load's verified msgs/s
and errors, and the server's CPU time (utime+stime, /proc/PID/stat) and
context switches (every task's /proc/PID/task/*/status) over the middle of
the measured window. Syscalls per message come from one extra run per
server and cell under `perf stat -e raw_syscalls:sys_enter -p PID` (kept
apart because the tracepoint slows syscall-heavy servers more).

Environment: REPS (5), DURATION (2 s), WARMUP (1 s), QUICK=1 (a few cells,
REPS=3, DURATION=1), FILTER (regex on the cell name), OUT_DIR
(bench/results), SERVER_CPU (0), LOAD_CPU (1), NO_PERF=1, PERF_REPS (1:
extra runs per server and cell under perf; syscalls/msg is their median).
SERVERS (comma list: only these echo servers), BASE_BUILD (a second build
folder whose ringport-echo runs beside this one as "<name>@base": paired
before/after). Only the processes it starts are ever signalled; every wait is bounded.
"""
import datetime
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HZ = os.sysconf("SC_CLK_TCK")


def env_num(name, default):
    v = os.environ.get(name)
    return type(default)(v) if v not in (None, "") else default


QUICK = os.environ.get("QUICK", "") not in ("", "0")
REPS = env_num("REPS", 3 if QUICK else 5)
DURATION = env_num("DURATION", 1.0 if QUICK else 2.0)
WARMUP = env_num("WARMUP", 0.5 if QUICK else 1.0)
FILTER = os.environ.get("FILTER", "")
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")
USE_PERF = os.environ.get("NO_PERF", "") in ("", "0")
IDLE_CONNS = env_num("IDLE_CONNS", 10000)
PERF_REPS = env_num("PERF_REPS", 1)  # extra runs under perf, per server
# SERVERS: a comma list that narrows the echo cells to those servers.
SERVERS = [x for x in os.environ.get("SERVERS", "").split(",") if x]
# BASE_BUILD: another build folder (say, the commit before a change); its
# ringport-echo runs beside this one as "<name>@base" for every rp-* echo
# server, interleaved in the same repetitions, so a change is measured as
# a paired before/after ratio.
BASE_BUILD = os.environ.get("BASE_BUILD", "")

live = []  # every process we started and have not reaped yet


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- servers -----------------------------------------------------------


def server_table(build):
    echo = os.path.join(build, "examples/echo/ringport-echo")
    b = lambda n: os.path.join(build, "bench", "bench-" + n)
    rp = [echo, "--port", "0", "--no-stats"]  # max_sessions 10,000
    # name -> (argv, client mode, is the baseline for paired ratios)
    return {
        "rp-raw": (rp + ["--mode", "raw"], "raw"),
        "rp-raw-spin": (rp + ["--mode", "raw", "--spin-us", "30"], "raw"),
        # The fallback users in containers get: the same program forced
        # onto the epoll backend, measured against a plain epoll server.
        "rp-raw-epoll": (rp + ["--mode", "raw", "--backend", "epoll"], "raw"),
        # 16 KiB cells need more than the default 8,192-byte payload limit.
        "rp-framed": (rp + ["--mode", "framed", "--max-payload", "65535"],
                      "framed"),
        "epoll": ([b("epoll_echo")], "raw"),
        "epoll-spin": ([b("epoll_echo"), "--spin-us", "30"], "raw"),
        "uv": ([b("uv_echo")], "raw"),
        "uring": ([b("uring_echo")], "raw"),
        "uring-spin": ([b("uring_echo"), "--spin-us", "30"], "raw"),
        "epoll-room": ([b("epoll_room")], "room"),
        "rp-room": ([b("ringport_room")], "room"),
    }


def with_base(table):
    """Adds "<rp-*>@base" entries from BASE_BUILD's ringport-echo."""
    if not BASE_BUILD:
        return table
    base = os.path.join(os.path.abspath(BASE_BUILD),
                        "examples/echo/ringport-echo")
    for n, (argv, mode) in list(table.items()):
        if n.startswith("rp-") and n != "rp-room":
            table[n + "@base"] = ([base] + argv[1:], mode)
    return table


class Server:
    def __init__(self, name, argv, logdir):
        self.name = name
        self.argv = argv
        self.err = open(os.path.join(logdir, "server-%s.log" % name), "ab")
        self.p = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU] + argv,
            stdout=subprocess.PIPE,
            stderr=self.err,
            start_new_session=True,
        )
        live.append(self.p)
        line = read_line(self.p.stdout, 10.0)
        m = re.match(r"listening on .*:(\d+)", line or "")
        if not m:
            self.stop()
            raise RuntimeError("%s: no 'listening on' line (got %r)" % (name, line))
        self.port = int(m.group(1))
        self.pid = self.p.pid  # taskset execs the server: same pid

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        if self.p in live:
            live.remove(self.p)
        self.err.close()
        return self.p.returncode


def read_line(f, timeout):
    """One line from a pipe, bounded by 'timeout' seconds."""
    import select

    end = time.time() + timeout
    buf = b""
    fd = f.fileno()
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not r:
            break
        c = os.read(fd, 1)
        if not c:
            break
        if c == b"\n":
            return buf.decode(errors="replace")
        buf += c
    return buf.decode(errors="replace") if buf else None


# ---- /proc ---------------------------------------------------------------


def proc_cpu_ns(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e9 / HZ  # utime, stime


def proc_ctxsw(pid):
    n = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


# ---- the load ------------------------------------------------------------


class Load:
    """ringport-bench per the contract; the older ringport-echo-load as a
    fallback for echo cells (no warmup, --rate or room mode there)."""

    def __init__(self, build):
        self.path = os.path.join(build, "tools/bench/ringport-bench")
        self.contract = os.access(self.path, os.X_OK)
        if not self.contract:
            self.path = os.path.join(build, "tools/echo_load/ringport-echo-load")
        if not os.access(self.path, os.X_OK):
            raise SystemExit("no load tool in %s (build it first)" % build)

    def argv(self, cell, port, mode, duration, warmup):
        if not self.contract:
            if cell.get("rate") or mode == "room":
                return None
            return [self.path, "--port", str(port), "--connections",
                    str(cell["conns"]), "--size", str(cell["size"]), "--depth",
                    str(cell["depth"]), "--duration", str(duration), "--mode",
                    mode, "--json"]
        a = [self.path]
        if mode == "room":
            a += ["room", "--room-size", str(cell["room"])]
        else:
            a += ["--mode", mode]
        a += ["--port", str(port), "--connections", str(cell["conns"]),
              "--size", str(cell["size"]), "--depth", str(cell["depth"]),
              "--duration", str(duration), "--warmup", str(warmup), "--json"]
        if cell.get("rate"):
            a += ["--rate", str(cell["rate"])]
        return a

    def parse(self, out):
        for line in reversed(out.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                if not self.contract:  # ringport-echo-load's keys
                    j = {"msgs_per_s": j["msgs_per_s"], "messages": j["msgs"],
                         "errors": {"verify": j.get("errors", 0)}, "ok": True,
                         "latency_us": {"p50": j["p50_us"], "p99": j["p99_us"]}}
                return j
        return None


def run_once(load, srv, cell, mode, perf):
    """One bounded run of the load against 'srv'. Returns a dict."""
    argv = load.argv(cell, srv.port, mode, DURATION, WARMUP)
    if argv is None:
        return None
    warm = WARMUP if load.contract else 0.0
    cmd = ["taskset", "-c", LOAD_CPU] + argv
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    live.append(p)
    # The middle of the measured window: past the warmup plus a margin for
    # connecting, short of its end.
    margin = min(0.25, DURATION / 8)
    start = warm + margin + (0.15 if cell["conns"] >= 1000 else 0.0)
    window = DURATION - 2 * margin - (0.15 if cell["conns"] >= 1000 else 0.0)
    time.sleep(start)
    res = {"cpu_ns": None, "ctx": None, "syscalls": None, "window": 0.0}
    if p.poll() is None and srv.alive():
        c0, x0, w0 = proc_cpu_ns(srv.pid), proc_ctxsw(srv.pid), time.time()
        pp = None
        if perf:
            pp = subprocess.Popen(
                ["taskset", "-c", LOAD_CPU, "perf", "stat", "-x", ",", "-e",
                 "raw_syscalls:sys_enter", "-p", str(srv.pid), "--", "sleep",
                 "%.3f" % window], stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
            live.append(pp)
        time.sleep(window)
        if srv.alive():
            res["cpu_ns"] = proc_cpu_ns(srv.pid) - c0
            res["ctx"] = proc_ctxsw(srv.pid) - x0
            res["window"] = time.time() - w0
        if pp:
            try:
                _, err = pp.communicate(timeout=10)
                for line in err.decode().splitlines():
                    f = line.split(",")
                    if len(f) > 2 and "raw_syscalls" in line and f[0].isdigit():
                        res["syscalls"] = int(f[0])
            except subprocess.TimeoutExpired:
                pp.kill()
                pp.wait()
            live.remove(pp)
    try:
        out, err = p.communicate(timeout=DURATION + warm + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    live.remove(p)
    res["rc"] = p.returncode
    res["wall"] = time.time() - t0
    j = load.parse(out.decode(errors="replace"))
    res["json"] = j
    if j is None:
        res["note"] = (err.decode(errors="replace").strip().splitlines() or
                       ["no JSON"])[-1][:200]
    return res


# ---- cells ---------------------------------------------------------------

ECHO_SERVERS = ["rp-raw", "rp-raw-spin", "rp-raw-epoll", "rp-framed", "epoll",
                "epoll-spin", "uv", "uring", "uring-spin"]


def echo_servers():
    names = ECHO_SERVERS
    if SERVERS:
        names = [x for x in SERVERS if not x.endswith("@base")]
    if BASE_BUILD:
        names = names + [x + "@base" for x in names if x.startswith("rp-")]
    return names


def all_cells():
    ECHO = echo_servers()
    cells = []
    for c in (1, 100, 1000):
        for size in (64, 4096, 16384):
            for d in (1, 16):
                cells.append({"name": "echo c%d s%d d%d" % (c, size, d),
                              "kind": "echo", "conns": c, "size": size,
                              "depth": d, "servers": ECHO})
    cells.append({"name": "tick c1000 30Hz s128", "kind": "echo", "conns": 1000,
                  "size": 128, "depth": 1, "rate": 30,
                  "servers": ECHO})
    cells.append({"name": "fanout room100 c200 s64", "kind": "room",
                  "conns": 200, "size": 64, "depth": 1, "room": 100,
                  "servers": ["rp-room", "epoll-room"]})
    cells.append({"name": "idle c%d" % IDLE_CONNS, "kind": "idle",
                  "conns": IDLE_CONNS,
                  "servers": ["rp-raw", "rp-framed", "epoll", "uv", "uring"]})
    return cells


QUICK_CELLS = ["echo c1 s64 d1", "echo c100 s64 d16", "tick c1000 30Hz s128",
               "fanout room100 c200 s64", "idle c%d" % IDLE_CONNS]


# ---- the idle-memory cell --------------------------------------------------


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def idle_once(srv, n):
    """Opens n idle connections; returns KiB of RSS per session."""
    base_rss, base_fds = proc_rss_kib(srv.pid), proc_fds(srv.pid)
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", srv.port))
            socks.append(s)
        # Until the server has accepted them all (bounded).
        end = time.time() + 15
        while proc_fds(srv.pid) < base_fds + n and time.time() < end:
            time.sleep(0.05)
        accepted = proc_fds(srv.pid) - base_fds
        time.sleep(0.5)
        rss = proc_rss_kib(srv.pid)
        return {"kib_per_session": (rss - base_rss) / n, "accepted": accepted,
                "rss_before_kib": base_rss, "rss_after_kib": rss}
    finally:
        for s in socks:
            s.close()


# ---- statistics and the report -----------------------------------------


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt(x, spec="%.0f"):
    return "—" if x is None else spec % x


# Pairs for ratios: (numerator, denominator), as the targets ask.
PAIRS = [("rp-raw", "uring"), ("rp-raw-spin", "uring-spin"),
         ("rp-raw", "epoll"), ("rp-raw-epoll", "epoll"), ("rp-raw", "uv"),
         ("rp-raw-spin", "epoll"),
         ("rp-raw-spin", "epoll-spin"), ("rp-framed", "rp-raw"),
         ("rp-room", "epoll-room")] + [
             (n, n + "@base") for n in ("rp-raw", "rp-raw-spin", "rp-raw-epoll",
                                        "rp-framed")]


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    return {"cpu": model, "nproc": os.cpu_count(), "kernel": os.uname().release,
            "syscall_ns": syscall_cost(), "loadavg": loadavg}


def syscall_cost():
    """ns per getppid(), measured in C when a compiler is at hand."""
    src = "/tmp/sbs-getppid-%d.c" % os.getpid()
    exe = src[:-2]
    with open(src, "w") as f:
        f.write("#define _GNU_SOURCE\n#include <stdio.h>\n#include <time.h>\n"
                "#include <unistd.h>\n#include <sys/syscall.h>\n"
                "int main(void){struct timespec a,b;long best=-1;\n"
                "for(int r=0;r<5;r++){clock_gettime(CLOCK_MONOTONIC,&a);\n"
                "for(int i=0;i<200000;i++)syscall(SYS_getppid);\n"
                "clock_gettime(CLOCK_MONOTONIC,&b);long ns=(b.tv_sec-a.tv_sec)"
                "*1000000000L+(b.tv_nsec-a.tv_nsec);if(best<0||ns<best)best=ns;}\n"
                "printf(\"%.1f\\n\",best/200000.0);return 0;}\n")
    try:
        subprocess.run(["cc", "-O2", src, "-o", exe], check=True,
                       stderr=subprocess.DEVNULL, timeout=60)
        out = subprocess.run(["taskset", "-c", SERVER_CPU, exe],
                             capture_output=True, timeout=60).stdout
        return float(out.decode().strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        t = time.perf_counter_ns()
        for _ in range(100000):
            os.getppid()
        return (time.perf_counter_ns() - t) / 100000.0  # includes Python
    finally:
        for p in (src, exe):
            if os.path.exists(p):
                os.unlink(p)


def per_msg(r, key):
    j = r.get("json") or {}
    if r.get(key) is None or not r.get("window") or not j.get("msgs_per_s"):
        return None
    return r[key] / (j["msgs_per_s"] * r["window"])


def errors_of(r):
    j = r.get("json")
    if not j:
        return 1
    e = j.get("errors", {})
    return sum(v for v in e.values() if isinstance(v, (int, float))) + (
        0 if j.get("ok", True) and r["rc"] == 0 else 1)


def report_cell(cell, runs, perf_runs, out):
    if cell["kind"] == "idle":
        out.append("\n### %s\n" % cell["name"])
        out.append("| server | KiB per session (RSS delta / sessions) | "
                   "KiB per session (whole RSS / sessions) | accepted | "
                   "RSS before → after (KiB) |")
        out.append("|---|---|---|---|---|")
        for s in cell["servers"]:
            rs = runs.get(s) or []
            if not rs:
                out.append("| %s | — | — | — | — |" % s)
                continue
            r = rs[0]
            out.append("| %s | %.2f | %.2f | %d | %d → %d |" % (
                s, med([x["kib_per_session"] for x in rs]),
                r["rss_after_kib"] / cell["conns"], r["accepted"],
                r["rss_before_kib"], r["rss_after_kib"]))
        out.append("\nThe delta counts what a session adds once the server "
                   "runs; a server that sizes its tables for max_sessions "
                   "at start shows it only in the whole-RSS column "
                   "(ringport-echo reserves its table and touches a slot "
                   "only when used: bench/memory.sh).")
        return
    out.append("\n### %s\n" % cell["name"])
    out.append("| server | msgs/s (median) | min–max | p50 µs | p99 µs | "
               "CPU ns/msg | ctx sw/msg | syscalls/msg | errors |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for s in cell["servers"]:
        rs = [r for r in runs.get(s, []) if r]
        if not rs:
            continue
        rates = [(r.get("json") or {}).get("msgs_per_s") for r in rs]
        rates_ok = [x for x in rates if x is not None]
        lat = [(r.get("json") or {}).get("latency_us", {}) for r in rs]
        pr = [r for r in perf_runs.get(s, []) if r]
        sysc = med([per_msg(r, "syscalls") for r in pr])
        out.append("| %s | %s | %s–%s | %s | %s | %s | %s | %s | %d |" % (
            s, fmt(med(rates_ok)), fmt(min(rates_ok) if rates_ok else None),
            fmt(max(rates_ok) if rates_ok else None),
            fmt(med([x.get("p50") for x in lat]), "%.1f"),
            fmt(med([x.get("p99") for x in lat]), "%.1f"),
            fmt(med([per_msg(r, "cpu_ns") for r in rs])),
            fmt(med([per_msg(r, "ctx") for r in rs]), "%.3f"),
            fmt(sysc, "%.3f"), sum(errors_of(r) for r in rs + pr)))
        notes = {r.get("note") for r in rs if r.get("note")}
        for n in notes:
            out.append("| | note: %s | | | | | | | |" % n.replace("|", "/"))
    ratios = cell_ratios(cell, runs)
    if ratios:
        out.append("\nPaired ratios (msgs/s, per repetition; median [min–max]):"
                   "\n")
        for (a, b), rs in ratios.items():
            out.append("- %s / %s: %.3f [%.3f–%.3f]  (reps: %s)" % (
                a, b, statistics.median(rs), min(rs), max(rs),
                ", ".join("%.2f" % x for x in rs)))


def cell_ratios(cell, runs):
    out = {}
    for a, b in PAIRS:
        if a not in cell["servers"] or b not in cell["servers"]:
            continue
        ra, rb = runs.get(a, []), runs.get(b, [])
        rs = []
        for x, y in zip(ra, rb):
            xa = ((x or {}).get("json") or {}).get("msgs_per_s")
            yb = ((y or {}).get("json") or {}).get("msgs_per_s")
            if xa and yb:
                rs.append(xa / yb)
        if rs:
            out[(a, b)] = rs
    return out


def summary(cells, results, out):
    out.append("\n## Summary: geomean of the per-cell median paired ratios\n")
    out.append("| pair | geomean | min cell | cells |")
    out.append("|---|---|---|---|")
    agg = {}
    for cell in cells:
        if cell["kind"] != "echo" or cell["name"] not in results:
            continue
        for pair, rs in cell_ratios(cell, results[cell["name"]][0]).items():
            agg.setdefault(pair, []).append((statistics.median(rs),
                                             cell["name"]))
    for pair, xs in agg.items():
        lo = min(xs)
        out.append("| %s / %s | %.3f | %.3f (%s) | %d |" % (
            pair[0], pair[1], geomean([x for x, _ in xs]), lo[0], lo[1],
            len(xs)))


def cell_median(runs, server, fn):
    return med([fn(r) for r in runs.get(server, []) if r])


def targets(cells, results, out):
    """The issue's targets, each met or missed, with the margin."""
    out.append("\n## Targets\n")
    out.append("| target | result | verdict |")
    out.append("|---|---|---|")

    def row(name, value, ok):
        out.append("| %s | %s | %s |" % (name, value,
                                         "—" if ok is None else
                                         ("met" if ok else "**missed**")))

    echo = [c for c in cells if c["kind"] == "echo" and c["name"] in results]
    errs = 0
    for c in cells:
        if c["name"] in results and c["kind"] != "idle":
            runs, perf_runs = results[c["name"]]
            for rs in list(runs.values()) + list(perf_runs.values()):
                errs += sum(errors_of(r) for r in rs if r)
    row("zero verification errors, every cell", "%d errors" % errs, errs == 0)

    def ratio_rows(a, b, every, geo, only=None, where="every cell"):
        xs = []
        for c in echo:
            if only and not only(c):
                continue
            rs = cell_ratios(c, results[c["name"]][0]).get((a, b))
            if rs:
                xs.append((statistics.median(rs), c["name"]))
        if not xs:
            return
        lo = min(xs)
        g = geomean([x for x, _ in xs])
        if every is not None:
            row("%s / %s >= %.2fx %s" % (a, b, every, where),
                "min %.3f (%s)" % lo, lo[0] >= every)
        if geo is not None:
            row("%s / %s >= %.2fx geomean" % (a, b, geo), "%.3f over %d "
                "cells" % (g, len(xs)), g >= geo)

    ratio_rows("rp-raw", "uring", 0.95, 1.00)
    ratio_rows("rp-raw-spin", "uring-spin", 0.95, 1.00)
    ratio_rows("rp-raw", "epoll", 0.90, 1.00)
    ratio_rows("rp-raw", "uv", 0.90, 1.00)
    ratio_rows("rp-raw-spin", "epoll", None, 1.15)
    ratio_rows("rp-raw-spin", "epoll", 1.25, None,
               only=lambda c: c["conns"] == 1,
               where="every 1-connection cell")
    ratio_rows("rp-framed", "rp-raw", 0.85, None)
    # Round two (performance issue): the epoll fallback, large messages and
    # the framed path at 64 B.
    ratio_rows("rp-raw-epoll", "epoll", 0.95, None)
    large = lambda c: c.get("size", 0) >= 4096 and c["conns"] <= 100
    ratio_rows("rp-raw", "uring", 0.95, None, only=large,
               where="every 4-16 KiB cell, 1 and 100 connections")
    ratio_rows("rp-raw", "epoll", 1.00, None, only=large,
               where="every 4-16 KiB cell, 1 and 100 connections")
    ratio_rows("rp-framed", "rp-raw", 0.95, None,
               only=lambda c: c.get("size") == 64, where="every 64 B cell")

    for a, b in (("rp-raw", "uring"), ("rp-raw-spin", "uring-spin")):
        for key, limit, what in (("cpu_ns", 1.05, "server CPU/msg"),
                                 ("syscalls", 1.10, "syscalls/msg"),
                                 ("ctx", 1.00, "ctx switches/msg")):
            xs = []
            for c in echo:
                if c["conns"] < 100:
                    continue
                runs, perf_runs = results[c["name"]]
                src = perf_runs if key == "syscalls" else runs
                va = cell_median(src, a, lambda r: per_msg(r, key))
                vb = cell_median(src, b, lambda r: per_msg(r, key))
                if va is None or vb is None:
                    continue
                if vb > 0:
                    xs.append((va / vb, c["name"], va, vb))
                else:
                    xs.append((1.0 if va == 0 else math.inf, c["name"], va,
                               vb))
            if xs:
                hi = max(xs)
                row("%s %s <= %.2fx %s, >= 100 connections" % (
                    a, what, limit, b), "max %.3f (%s: %.4g vs %.4g)" % hi,
                    hi[0] <= limit + 1e-9)

    for c in cells:
        if c["kind"] == "room" and c["name"] in results:
            runs = results[c["name"]][0]
            va = cell_median(runs, "rp-room", lambda r: per_msg(r, "cpu_ns"))
            vb = cell_median(runs, "epoll-room",
                             lambda r: per_msg(r, "cpu_ns"))
            if va is not None and vb:
                row("fan-out CPU per delivery <= 0.5x epoll room",
                    "%.0f vs %.0f ns: %.3fx" % (va, vb, va / vb),
                    va / vb <= 0.5)
        if c["kind"] == "idle" and c["name"] in results:
            runs = results[c["name"]][0]
            for s in ("rp-raw", "rp-framed"):
                rs = [r for r in runs.get(s, []) if r]
                if rs:
                    d = med([r["kib_per_session"] for r in rs])
                    whole = rs[0]["rss_after_kib"] / c["conns"]
                    row("%s idle memory <= 4 KiB/session" % s,
                        "%.2f KiB delta, %.2f KiB whole RSS" % (d, whole),
                        max(d, whole) <= 4.0)


# ---- main ----------------------------------------------------------------


def rereport(path):
    """Rebuilds the report from a run's raw.json (no new measurement)."""
    with open(path) as f:
        data = json.load(f)
    header = data.get("header", ["# ringport side by side (from %s)" % path])
    results = data.get("results", data)
    cells = [c for c in all_cells() if c["name"] in results]
    for c in cells:
        runs = results[c["name"]][0]
        c["servers"] = [s for s in c["servers"] if s in runs] + [
            s for s in runs if s not in c["servers"]]  # e.g. "@base" ones
    out = list(header)
    for cell in cells:
        report_cell(cell, *results[cell["name"]], out)
    summary(cells, results, out)
    targets(cells, results, out)
    print("\n".join(out))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--rereport":
        return rereport(sys.argv[2])
    build = sys.argv[1] if len(sys.argv) > 1 else "build-release"
    build = os.path.abspath(build if os.path.isabs(build)
                            else os.path.join(ROOT, build))
    if not shutil.which("taskset"):
        raise SystemExit("taskset is needed (util-linux)")
    load = Load(build)
    table = with_base(server_table(build))
    perf = USE_PERF and shutil.which("perf") and subprocess.run(
        ["perf", "stat", "-e", "raw_syscalls:sys_enter", "true"],
        capture_output=True).returncode == 0
    cells = all_cells()
    if QUICK and not FILTER:
        cells = [c for c in cells if c["name"] in QUICK_CELLS]
    if FILTER:
        cells = [c for c in cells if re.search(FILTER, c["name"])]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    outdir = os.environ.get("OUT_DIR", os.path.join(ROOT, "bench/results"))
    os.makedirs(outdir, exist_ok=True)
    logdir = os.path.join(outdir, "side_by_side-%s-logs" % stamp)
    os.makedirs(logdir, exist_ok=True)
    raise_nofile(IDLE_CONNS + 1000)
    mach = machine()
    log("machine: %s" % mach)

    results = {}
    for cell in cells:
        names = [s for s in cell["servers"]
                 if os.access(table[s][0][0], os.X_OK)]
        missing = [s for s in cell["servers"] if s not in names]
        if missing:
            log("%s: not built, skipped: %s" % (cell["name"], missing))
        cell["servers"] = names
        runs = {s: [] for s in names}
        perf_runs = {s: [] for s in names}
        servers = {}
        try:
            for s in names:
                servers[s] = Server(s, table[s][0], logdir)
            if cell["kind"] == "idle":
                for s in names:
                    runs[s].append(idle_once(servers[s], cell["conns"]))
                    log("%s %s: %.2f KiB/session" % (
                        cell["name"], s, runs[s][-1]["kib_per_session"]))
            else:
                for rep in range(REPS + (PERF_REPS if perf else 0)):
                    order = names[rep % len(names):] + names[:rep % len(names)]
                    for s in order:
                        is_perf = rep >= REPS
                        if not servers[s].alive():
                            (perf_runs if is_perf else runs)[s].append(None)
                            continue
                        r = run_once(load, servers[s], cell, table[s][1],
                                     is_perf)
                        (perf_runs if is_perf else runs)[s].append(r)
                        j = (r or {}).get("json") or {}
                        log("%s rep %d %s: %s msgs/s%s" % (
                            cell["name"], rep, s, fmt(j.get("msgs_per_s")),
                            " (perf)" if is_perf else ""))
        finally:
            for s, srv in servers.items():
                rc = srv.stop()
                if rc != 0:
                    log("%s: %s exited with %s" % (cell["name"], s, rc))
        results[cell["name"]] = (runs, perf_runs)

    out = ["# ringport side by side, %s" % stamp, "",
           "- machine: %s, %d CPU, kernel %s; getppid() %.0f ns; load "
           "average at start %s" % (mach["cpu"], mach["nproc"], mach["kernel"],
                                    mach["syscall_ns"], mach["loadavg"]),
           "- command: `%s`" % " ".join(
               ["%s=%s" % (k, shlex.quote(os.environ[k])) for k in
                ("QUICK", "REPS", "DURATION", "WARMUP", "FILTER", "SERVERS",
                 "BASE_BUILD", "PERF_REPS")
                if os.environ.get(k)] + [shlex.quote(a) for a in sys.argv]),
           "- load: `%s` (%s), pinned to CPU %s; servers pinned to CPU %s; "
           "%d reps x %.1f s (+%.1f s warmup), servers interleaved" % (
               os.path.relpath(load.path, ROOT),
               "contract" if load.contract else "older echo-load fallback",
               LOAD_CPU, SERVER_CPU, REPS, DURATION, WARMUP),
           "- CPU ns/msg: server utime+stime (/proc/PID/stat, %d Hz ticks) "
           "over the middle of the measured window / (msgs/s x window); "
           "ctx sw: voluntary+nonvoluntary over all server threads; "
           "syscalls/msg: %s" % (HZ, "one extra run per server under perf "
                                 "stat -e raw_syscalls:sys_enter -p PID" if
                                 perf else "not measured (perf unavailable)"),
           "- messages: echo = echoes verified; room = deliveries (each "
           "message in reaches every member of its room)",
           "- servers: " + "; ".join(
               "%s = `%s`" % (n, " ".join([os.path.basename(a[0][0])] +
                                          a[0][1:]))
               for n, a in table.items())]
    for cell in cells:
        if cell["name"] in results:
            report_cell(cell, *results[cell["name"]], out)
    summary(cells, results, out)
    targets(cells, results, out)
    text = "\n".join(out) + "\n"
    path = os.path.join(outdir, "side_by_side-%s.md" % stamp)
    with open(path, "w") as f:
        f.write(text)
    with open(os.path.join(logdir, "raw.json"), "w") as f:
        json.dump({"header": out[:8], "results": results}, f, default=str)
    print(text)
    log("report: %s" % path)


if __name__ == "__main__":
    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        main()
    finally:
        for p in list(live):
            if p.poll() is None:
                p.kill()
                p.wait()
