#!/usr/bin/env python3
"""Memory that follows live sessions: ringport-echo's resident memory
(VmRSS) before its first connection and per idle session, on both backends.

Figures (each one command: bench/memory.sh [BUILD_DIR], FIGURE=...):
  startup  RSS right after "listening on" with --max-sessions 10,000,
           200,000 and 1,000,000 (no connection): what the reserved
           session table and the per-thread structures cost before use.
  idle     RSS delta / sessions with CONNS idle connections (default
           19,000: the descriptor hard limit here is 20,000), raw and
           framed; also the cost of 100,000 sessions computed from it
           (startup RSS at --max-sessions 100,000 + 100,000 x delta).
  partial  framed, epoll and io_uring: every connection sends the first
           6 bytes of a 10-byte frame and stays: the per-session cost of a
           pending partial frame (the lazily allocated buffer), then the
           frames are completed and echoed: the buffers are freed (the
           server's RSS need not drop: malloc keeps freed memory).

Every server runs on a fresh process, one at a time; every process started
here is stopped on every exit path. Python 3, standard library only.
Environment: CONNS (19000), REPS (3, idle medians), FIGURE (all|startup|
idle|partial), BACKENDS ("uring epoll"), ECHO (the server binary).
"""
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build-release"
ECHO = os.environ.get("ECHO", os.path.join(BUILD, "examples/echo/ringport-echo"))
CONNS = int(os.environ.get("CONNS", "19000"))
REPS = int(os.environ.get("REPS", "3"))
FIGURE = os.environ.get("FIGURE", "all")
BACKENDS = os.environ.get("BACKENDS", "uring epoll").split()
STARTUP_SIZES = [10000, 200000, 1000000]
PROJECT = 100000


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def nfds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


class Server:
    """ringport-echo on a free loopback port; stop() by its pid."""

    def __init__(self, backend, mode, max_sessions, extra=()):
        self.proc = subprocess.Popen(
            [ECHO, "--port", "0", "--backend", backend, "--mode", mode,
             "--max-sessions", str(max_sessions), "--no-stats"] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.pid = self.proc.pid
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on"):
            self.stop()
            raise RuntimeError("ringport-echo did not start: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])
        time.sleep(0.3)  # the I/O threads are up and waiting

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def connect_many(srv, n, first_bytes=b""):
    """n connections (each sends first_bytes), accepted by the server."""
    base_fds = nfds(srv.pid)
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(10)
        s.connect(("127.0.0.1", srv.port))
        if first_bytes:
            s.sendall(first_bytes)
        socks.append(s)
    end = time.time() + 30
    while nfds(srv.pid) < base_fds + n and time.time() < end:
        time.sleep(0.05)
    time.sleep(1.0)  # the I/O thread has armed every receive
    return socks, nfds(srv.pid) - base_fds


def close_all(socks):
    for s in socks:
        s.close()


def startup(backend, max_sessions):
    srv = Server(backend, "framed", max_sessions)
    try:
        return rss_kib(srv.pid)
    finally:
        srv.stop()


def idle(backend, mode, n, first_bytes=b"", finish=b""):
    # A partial frame must outlive the connecting of all the others.
    extra = ["--frame-deadline-ms", "0"] if first_bytes else []
    srv = Server(backend, mode, 200000, extra)
    socks = []
    try:
        before = rss_kib(srv.pid)
        socks, accepted = connect_many(srv, n, first_bytes)
        after = rss_kib(srv.pid)
        drained = None
        if finish:
            for s in socks:
                s.sendall(finish)
            want = len(first_bytes) + len(finish)
            for s in socks:
                got = b""
                while len(got) < want:
                    chunk = s.recv(want - len(got))
                    if not chunk:
                        break
                    got += chunk
                if got != first_bytes + finish:
                    raise RuntimeError("echo mismatch")
            time.sleep(0.5)
            drained = rss_kib(srv.pid)
        return {"before": before, "after": after, "accepted": accepted,
                "per": (after - before) / n, "drained": drained}
    finally:
        close_all(socks)
        srv.stop()


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return "%s, %d CPUs, kernel %s, load %s" % (
        model, os.cpu_count(), os.uname().release, load)


def main():
    if not os.access(ECHO, os.X_OK):
        print("memory: %s missing (build first)" % ECHO, file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns = min(CONNS, hard - 200)
    print("## Memory that follows live sessions (bench/memory.sh)\n")
    print("%s; %s\n" % (machine(), ECHO))

    if FIGURE in ("all", "startup"):
        print("### RSS before the first connection\n")
        print("| backend | " + " | ".join(
            "--max-sessions %d" % n for n in STARTUP_SIZES) + " |")
        print("|---|" + "---:|" * len(STARTUP_SIZES))
        for be in BACKENDS:
            cells = ["%.1f MiB" % (startup(be, n) / 1024) for n in STARTUP_SIZES]
            print("| %s | %s |" % (be, " | ".join(cells)))
        print()

    if FIGURE in ("all", "idle"):
        print("### Idle sessions: %d connections, median of %d\n" % (conns, REPS))
        print("| backend | mode | RSS before KiB | after KiB | KiB per session "
              "(delta / sessions) | accepted | %d sessions would take |"
              % PROJECT)
        print("|---|---|---:|---:|---:|---:|---:|")
        for be in BACKENDS:
            base100k = startup(be, PROJECT)
            for mode in ("raw", "framed"):
                runs = [idle(be, mode, conns) for _ in range(REPS)]
                per = statistics.median(r["per"] for r in runs)
                r = sorted(runs, key=lambda x: x["per"])[len(runs) // 2]
                proj = base100k + per * PROJECT
                print("| %s | %s | %d | %d | %.3f | %d | %.1f MiB |" % (
                    be, mode, r["before"], r["after"], per, r["accepted"],
                    proj / 1024))
        print()

    if FIGURE in ("all", "partial"):
        print("### A partial frame pending on every session (framed), "
              "%d connections\n" % conns)
        print("| backend | KiB per session, 6 of 10 bytes pending | RSS after "
              "the frames completed and echoed KiB |")
        print("|---|---:|---:|")
        head = bytes([6, 0, 1, 0, 1, 2])  # 6-byte payload, type 1: 2 of 6
        for be in BACKENDS:
            r = idle(be, "framed", conns, head, bytes([3, 4, 5, 6]))
            print("| %s | %.3f | %d |" % (be, r["per"], r["drained"]))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
