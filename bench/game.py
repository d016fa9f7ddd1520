#!/usr/bin/env python3
"""Hetero versus homo: ringport-game under BOTS verifying bots, once per
layout per repetition, interleaved (hetero, homo, hetero, ...) because this
machine drifts (FIELD-NOTES). Reports messages per second, tick overruns
per content, p99 latency per message type and the server's CPU (share of
one core, and microseconds per message), as medians over the repetitions,
and the homo/hetero ratios of each pair (messages per second, CPU per
message). Standard library only. Run through bench/game.sh; the report
goes to stdout and to bench/results/game-DATE.md (OUT overrides), with
the load average at the start and the end.

Each run: the server on CPU 0 (taskset, when there), the bots on CPU 1;
server --port 0 --no-stats; bots --json; SIGTERM to the server; its final
line gives the per-content messages and overruns. The server's CPU is the
sum of its threads' run time (/proc/PID/task/*/schedstat) over the bots'
run. THREADS may list several bot-thread counts ("1 2"): a table each.
Any bot verification error fails the whole benchmark (exit 1).
"""
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time


def server_cpu_ns(pid):
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that just ended
    return total


def run(build, layout, bots, secs, threads):
    game = os.path.join(build, "examples/game/ringport-game")
    bench = os.path.join(build, "tools/bench/ringport-bench")
    ts = shutil.which("taskset") and os.cpu_count() >= 2
    pin = lambda cpu: ["taskset", "-c", str(cpu)] if ts else []
    max_sessions = str(max(10000, bots + bots // 4 + 100))
    srv = subprocess.Popen(pin(0) + [game, "--port", "0", "--no-stats",
                                     "--layout", layout,
                                     "--max-sessions", max_sessions],
                           stdout=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        m = re.match(r"listening on .*:(\d+)$", line.strip())
        if not m:
            raise SystemExit("ringport-game did not start: %r" % line)
        cpu0, t0 = server_cpu_ns(srv.pid), time.monotonic()
        out = subprocess.run(
            pin(1) + [bench, "game", "--port", m.group(1), "--bots",
                      str(bots), "--duration", str(secs), "--threads",
                      str(threads), "--json"],
            stdout=subprocess.PIPE, text=True, timeout=secs + 120)
        cpu1, t1 = server_cpu_ns(srv.pid), time.monotonic()
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["server_cpu"] = (cpu1 - cpu0) / 1e9 / (t1 - t0)  # cores
        nmsg = res["msgs_per_s"] * (t1 - t0)
        res["cpu_us_per_msg"] = (cpu1 - cpu0) / 1e3 / nmsg if nmsg else 0
        srv.send_signal(signal.SIGTERM)
        final = ""
        for l in srv.stdout:
            if l.startswith("final:"):
                final = l
        srv.wait(timeout=30)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    groups = {g: (int(n), int(o)) for g, n, o in re.findall(
        r"(\w+) msgs (\d+) overruns (\d+)", final)}
    res["groups"] = groups
    res["server_rc"] = srv.returncode
    return res


def errors(res):
    e = res["errors"]
    return sum(e.values()) if isinstance(e, dict) else e


def table(runs, bots, secs, reps, threads, out):
    med = lambda xs: statistics.median(xs) if xs else 0
    kinds = list(runs["hetero"][0]["latency_us"].keys())
    out.append("## bot threads %d\n" % threads)
    out.append("%d bots, %g s per run, %d repetitions per layout "
               "(interleaved), bot threads %d; medians over the "
               "repetitions.\n" % (bots, secs, reps, threads))
    out.append("| figure | hetero | homo |")
    out.append("| --- | ---: | ---: |")
    for key, name, fmt in (("msgs_per_s", "messages/s (bots in + out)", "%.0f"),
                           ("server_cpu", "server CPU (cores)", "%.2f"),
                           ("cpu_us_per_msg", "server CPU us per message",
                            "%.2f"),
                           ("matches", "PVP matches", "%.0f"),
                           ("dungeons", "dungeon runs", "%.0f")):
        out.append(("| %s | " + fmt + " | " + fmt + " |") % (
            name, med([x[key] for x in runs["hetero"]]),
            med([x[key] for x in runs["homo"]])))
    for g in ("lobby", "pvp", "dungeon"):
        out.append("| %s messages handled | %.0f | %.0f |" % (g, *[
            med([x["groups"].get(g, (0, 0))[0] for x in runs[l]])
            for l in ("hetero", "homo")]))
        out.append("| %s tick overruns | %.0f | %.0f |" % (g, *[
            med([x["groups"].get(g, (0, 0))[1] for x in runs[l]])
            for l in ("hetero", "homo")]))
    for k in kinds:
        out.append("| p99 %s (us) | %.0f | %.0f |" % (k, *[
            med([x["latency_us"][k]["p99"] for x in runs[l]])
            for l in ("hetero", "homo")]))
    pairs = list(zip(runs["hetero"], runs["homo"]))
    for key, name in (("msgs_per_s", "messages/s"),
                      ("cpu_us_per_msg", "server CPU per message")):
        ratios = [b[key] / a[key] for a, b in pairs if a[key] and b[key]]
        out.append("\nhomo/hetero %s, per pair: %s (geomean %.3f)" % (
            name, ", ".join("%.3f" % r for r in ratios),
            statistics.geometric_mean(ratios) if ratios else 0))
    out.append("\nPer run (order of the runs):\n")
    out.append("| rep | layout | messages/s | server CPU (cores) | "
               "CPU us/msg | errors | overruns (lobby, pvp, dungeon) |")
    out.append("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for r, (a, b) in enumerate(pairs):
        for layout, x in (("hetero", a), ("homo", b)):
            out.append("| %d | %s | %.0f | %.2f | %.2f | %s | %s |" % (
                r + 1, layout, x["msgs_per_s"], x["server_cpu"],
                x["cpu_us_per_msg"], errors(x), ", ".join(
                    str(x["groups"].get(g, (0, 0))[1])
                    for g in ("lobby", "pvp", "dungeon"))))
    out.append("")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build-release"
    bots = int(os.environ.get("BOTS", "5000"))
    secs = float(os.environ.get("DURATION", "20"))
    reps = int(os.environ.get("REPS", "3"))
    thread_list = [int(x) for x in os.environ.get("THREADS", "2").split()]
    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")
    ok = True
    out = ["# ringport-game: hetero versus homo\n"]
    tables = []
    for threads in thread_list:
        runs = {"hetero": [], "homo": []}
        for r in range(reps):
            for layout in ("hetero", "homo"):
                res = run(build, layout, bots, secs, threads)
                ok &= res["ok"] and res["server_rc"] == 0
                runs[layout].append(res)
                print("threads %d rep %d %-6s %.0f msgs/s, server CPU %.2f "
                      "(%.2f us/msg), errors %s, overruns %s" % (
                          threads, r + 1, layout, res["msgs_per_s"],
                          res["server_cpu"], res["cpu_us_per_msg"],
                          errors(res),
                          {g: o for g, (n, o) in res["groups"].items()}),
                      file=sys.stderr, flush=True)
        tables.append((threads, runs))
    load1 = os.getloadavg()
    out.append("Build %s, started %s; load average %.1f at the start, %.1f "
               "at the end (the 1-minute figure; the machine has %d CPUs). "
               "Server on CPU 0, bots on CPU 1.\n" % (
                   os.path.abspath(build), started, load0[0], load1[0],
                   os.cpu_count()))
    for threads, runs in tables:
        table(runs, bots, secs, reps, threads, out)
    out.append("verification errors: %s" % ("0" if ok else "SOME (see stderr)"))
    text = "\n".join(out) + "\n"
    print(text)
    dest = os.environ.get("OUT") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "results",
        "game-%s.md" % time.strftime("%Y-%m-%d-%H%M"))
    with open(dest, "w") as f:
        f.write(text)
    print("report: %s" % dest, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
