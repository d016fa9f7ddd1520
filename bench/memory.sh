#!/bin/sh
# Memory that follows live sessions: ringport-echo's RSS before its first
# connection (--max-sessions 10,000 / 200,000 / 1,000,000) and per idle
# session at 19,000 connections, on io_uring and epoll, raw and framed,
# with the cost of 100,000 sessions computed from it; then the cost of a
# pending partial frame. The work is done by bench/memory.py (Python 3,
# standard library only); this wrapper finds it.
#
# Usage: bench/memory.sh [BUILD_DIR]              (default build-release)
#   FIGURE=startup|idle|partial  one figure (default: all three, ~3 min)
#   CONNS=N (19000)  REPS=N (3)  BACKENDS="uring epoll"  ECHO=path/to/server
# Prints a Markdown report (the tables in docs/benchmarks.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/memory.py" "${1:-build-release}"
