#!/usr/bin/env python3
"""Hetero versus homo: ringport-game under BOTS verifying bots, once per
layout per repetition, interleaved (hetero, homo, hetero, ...) because this
machine drifts (FIELD-NOTES). Reports messages per second, tick overruns
per content and p99 latency per message type, as medians over the
repetitions, and the homo/hetero ratio of the messages per second of each
pair. Standard library only. Run through bench/game.sh.

Each run: the server on CPU 0 (taskset, when there), the bots on CPU 1;
server --port 0 --no-stats; bots --json; SIGTERM to the server; its final
line gives the per-content messages and overruns. Any bot verification
error fails the whole benchmark (exit 1).
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
        out = subprocess.run(
            pin(1) + [bench, "game", "--port", m.group(1), "--bots",
                      str(bots), "--duration", str(secs), "--threads",
                      str(threads), "--json"],
            stdout=subprocess.PIPE, text=True, timeout=secs + 120)
        res = json.loads(out.stdout.strip().splitlines()[-1])
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


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build-release"
    bots = int(os.environ.get("BOTS", "5000"))
    secs = float(os.environ.get("DURATION", "20"))
    reps = int(os.environ.get("REPS", "3"))
    threads = int(os.environ.get("THREADS", "2"))
    runs = {"hetero": [], "homo": []}
    ok = True
    for r in range(reps):
        for layout in ("hetero", "homo"):
            res = run(build, layout, bots, secs, threads)
            ok &= res["ok"] and res["server_rc"] == 0
            runs[layout].append(res)
            print("rep %d %-6s %.0f msgs/s, errors %s, overruns %s" % (
                r + 1, layout, res["msgs_per_s"], res["errors"],
                {g: o for g, (n, o) in res["groups"].items()}),
                file=sys.stderr, flush=True)
    med = lambda xs: statistics.median(xs) if xs else 0
    kinds = list(runs["hetero"][0]["latency_us"].keys())
    print("# ringport-game: hetero versus homo\n")
    print("%d bots, %g s per run, %d repetitions per layout (interleaved), "
          "bot threads %d, %s; medians over the repetitions.\n" % (
              bots, secs, reps, threads, time.strftime("%Y-%m-%d %H:%M")))
    print("| figure | hetero | homo |")
    print("| --- | ---: | ---: |")
    for key, name in (("msgs_per_s", "messages/s (bots in + out)"),
                      ("matches", "PVP matches"),
                      ("dungeons", "dungeon runs")):
        print("| %s | %.0f | %.0f |" % (name, med([x[key] for x in runs["hetero"]]),
                                        med([x[key] for x in runs["homo"]])))
    for g in ("lobby", "pvp", "dungeon"):
        print("| %s messages handled | %.0f | %.0f |" % (g, *[
            med([x["groups"].get(g, (0, 0))[0] for x in runs[l]])
            for l in ("hetero", "homo")]))
        print("| %s tick overruns | %.0f | %.0f |" % (g, *[
            med([x["groups"].get(g, (0, 0))[1] for x in runs[l]])
            for l in ("hetero", "homo")]))
    for k in kinds:
        print("| p99 %s (us) | %.0f | %.0f |" % (k, *[
            med([x["latency_us"][k]["p99"] for x in runs[l]])
            for l in ("hetero", "homo")]))
    ratios = [b["msgs_per_s"] / a["msgs_per_s"]
              for a, b in zip(runs["hetero"], runs["homo"]) if a["msgs_per_s"]]
    print("\nhomo/hetero messages/s, per pair: %s (geomean %.3f)" % (
        ", ".join("%.3f" % r for r in ratios),
        statistics.geometric_mean(ratios) if ratios else 0))
    print("verification errors: %s" % ("0" if ok else "SOME (see stderr)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
