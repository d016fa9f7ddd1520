#!/usr/bin/env python3
"""io_uring system calls per message, with ringport's own I/O counters.

Runs ringport-echo (raw mode) in one or more variants beside the raw
io_uring baseline (bench-uring_echo), interleaved per repetition (A B C A
B C ...), server on CPU 0 and ringport-bench on CPU 1, and prints per
cell and variant the medians of:

  enters/msg   io_uring_enter calls per message (perf stat on the server's
               syscalls:sys_enter_io_uring_enter over the measured window,
               divided by the load's messages in that window)
  sys/msg      every system call per message (raw_syscalls:sys_enter)
  cpu ns/msg   server utime+stime over the window per message
  and, for ringport, its own counters per message over the same window
  (GET /metrics before and after it, docs/server.md "I/O counters"):
  enters, waits, empty and short waits, completions, -ENOBUFS ends,
  re-arms, late and short sends, buffers lent; and the most buffers out of
  the ring and lent at once since start.

Variants are NAME[@BUILD_DIR]=ENV[,ENV...] with ENV as VAR=VALUE ("-" for
none; @BUILD_DIR runs that build's ringport-echo), e.g.

  VARIANTS='rp=-;nolend=RINGPORT_BENCH_NO_LEND=1;nomod=RINGPORT_BENCH_NO_MODERATE=1'

Environment: BUILD (default build-release), BASE_BUILD (adds variant
"base": that build's ringport-echo), CELLS ('conns:size:depth' list,
default the 4 and 16 KiB cells at 100 and 1,000 connections), REPS (5),
DURATION (1.5 s), WARMUP (0.5 s), NO_URING=1 (skip the baseline), EACH=1
(print every repetition too).

    nice -n 19 python3 bench/io_counters.py
"""
import os
import re
import urllib.request
import signal
import statistics
import subprocess
import sys
import time

BUILD = os.environ.get("BUILD", "build-release")
BASE_BUILD = os.environ.get("BASE_BUILD")
REPS = int(os.environ.get("REPS", "5"))
DURATION = float(os.environ.get("DURATION", "1.5"))
WARMUP = float(os.environ.get("WARMUP", "0.5"))
CELLS = os.environ.get(
    "CELLS", "100:4096:16 100:16384:1 100:16384:16 1000:4096:16 "
    "1000:16384:16").split()
SERVER_CPU, LOAD_CPU = "0", "1"

# column -> ringport metric (counters are per message over the window)
METRICS = [("c.enters", "ringport_io_enters_total"),
           ("c.waits", "ringport_io_waits_total"),
           ("c.empty", "ringport_io_waits_empty_total"),
           ("c.short", "ringport_io_waits_short_total"),
           ("c.compl", "ringport_io_completions_total"),
           ("c.nobufs", "ringport_recv_nobufs_total"),
           ("c.rearms", "ringport_recv_rearms_total"),
           ("c.late", "ringport_sends_late_total"),
           ("c.sshort", "ringport_sends_short_total"),
           ("c.lent", "ringport_buffers_lent_total")]
GAUGES = [("bufs", "ringport_recv_buffers"),
          ("out max", "ringport_recv_buffers_out_max"),
          ("lent max", "ringport_buffers_lent_max")]


def scrape(port):
    if not port:
        return None
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                    timeout=5) as f:
            text = f.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, val = line.rpartition(" ")
        name = name.split("{")[0]
        try:
            out[name] = out.get(name, 0) + float(val)
        except ValueError:
            pass
    return out


def variants():
    spec = os.environ.get("VARIANTS", "rp=-")
    out = []
    for item in spec.split(";"):
        name, _, env = item.partition("=")
        e = {}
        if env and env != "-":
            for kv in env.split(","):
                k, _, v = kv.partition("=")
                e[k] = v
        build = BUILD
        if "@" in name:  # NAME@BUILD_DIR: another build's ringport-echo
            name, _, build = name.partition("@")
        out.append((name, os.path.join(build, "examples/echo/ringport-echo"),
                    e))
    if BASE_BUILD:
        out.append(("base", os.path.join(BASE_BUILD,
                                         "examples/echo/ringport-echo"), {}))
    return out


def start(argv, env):
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU] + argv,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, **env), text=True)
    line = p.stdout.readline()
    m = re.search(r"listening on .*:(\d+)", line)
    if not m:
        p.kill()
        raise SystemExit("no 'listening on' line: %r" % line)
    mport = None
    if "--metrics" in argv:
        mm = re.search(r"metrics on .*:(\d+)", p.stdout.readline())
        mport = int(mm.group(1)) if mm else None
    return p, int(m.group(1)), mport


def cpu_ns(pid):
    with open("/proc/%d/stat" % pid) as f:
        f = f.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1e9 / os.sysconf("SC_CLK_TCK")


def run(name, argv, env, conns, size, depth):
    p, port, mport = start(argv, env)
    load = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU,
         os.path.join(BUILD, "tools/bench/ringport-bench"), "--port",
         str(port), "--connections", str(conns), "--size", str(size),
         "--depth", str(depth), "--duration", str(DURATION), "--warmup",
         str(WARMUP), "--json"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    margin = min(0.25, DURATION / 8)
    time.sleep(WARMUP + margin + (0.15 if conns >= 1000 else 0))
    window = DURATION - 2 * margin - (0.15 if conns >= 1000 else 0)
    m0 = scrape(mport)
    c0 = cpu_ns(p.pid)
    perf = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, "perf", "stat", "-x", ",", "-e",
         "syscalls:sys_enter_io_uring_enter,raw_syscalls:sys_enter", "-p",
         str(p.pid), "--", "sleep", "%.3f" % window],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = perf.communicate(timeout=30)
    c1 = cpu_ns(p.pid)
    m1 = scrape(mport)
    out, _ = load.communicate(timeout=60)
    p.send_signal(signal.SIGINT)
    sout, _ = p.communicate(timeout=30)
    counts = {}
    for line in err.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].isdigit():
            counts[f[2]] = int(f[0])
    rate = None
    for line in reversed(out.splitlines()):
        m = re.search(r'"msgs_per_s":\s*([0-9.]+)', line)
        if m:
            rate = float(m.group(1))
            break
    r = {}
    if rate:
        msgs = rate * window
        r["msg/s"] = rate
        r["enters/msg"] = counts.get("syscalls:sys_enter_io_uring_enter",
                                     0) / msgs
        r["sys/msg"] = counts.get("raw_syscalls:sys_enter", 0) / msgs
        r["cpu ns/msg"] = (c1 - c0) / msgs
    if m0 and m1:
        # raw mode counts bytes, not messages
        n = (m1.get("ringport_received_bytes_total", 0) -
             m0.get("ringport_received_bytes_total", 0)) / size
        if n > 0:
            for col, name in METRICS:
                r[col] = (m1.get(name, 0) - m0.get(name, 0)) / n
            for col, name in GAUGES:
                r[col] = m1.get(name, 0)
    return r


def fmt(v):
    return "%.0f" % v if v >= 100 else "%.4f" % v if v < 1 else "%.2f" % v


def main():
    vs = variants()
    if not os.environ.get("NO_URING"):
        vs.append(("uring", os.path.join(BUILD, "bench/bench-uring_echo"),
                   {}))
    print("# %s  load: %s" % (time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                             time.gmtime()),
                              open("/proc/loadavg").read().strip()))
    for cell in CELLS:
        conns, size, depth = (int(x) for x in cell.split(":"))
        res = {v[0]: [] for v in vs}
        for _ in range(REPS):
            for name, path, env in vs:
                argv = [path, "--port", "0"]
                if "ringport-echo" in path:
                    argv += ["--no-stats", "--mode", "raw", "--metrics",
                             "127.0.0.1:0"]
                res[name].append(run(name, argv, env, conns, size, depth))
        print("\n## %d conn. x %d B x depth %d (medians of %d; load %s)" %
              (conns, size, depth, REPS,
               open("/proc/loadavg").read().split()[0]))
        keys = []
        for rs in res.values():
            for r in rs:
                for k in r:
                    if k not in keys:
                        keys.append(k)
        print("| variant | " + " | ".join(keys) + " |")
        print("| --- |" + " ---: |" * len(keys))
        for name, rs in res.items():
            cells = []
            for k in keys:
                vals = [r[k] for r in rs if k in r]
                if not vals:
                    cells.append("")
                    continue
                cells.append(fmt(statistics.median(vals)))
            print("| %s | %s |" % (name, " | ".join(cells)))
            if os.environ.get("EACH"):  # every repetition, not only medians
                for r in rs:
                    print("| %s (rep) | %s |" % (name, " | ".join(
                        fmt(r[k]) if k in r else "" for k in keys)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
