# Thin wrapper over CMake/CTest: the targets people type. Each one installs
# missing Debian packages first (scripts/deps.sh), then configures its own
# build folder, so builds of different kinds never mix.
#
#   make test       build (RelWithDebInfo) and run every test
#   make sanitize   ASan+UBSan build, whole suite
#   make tsan       ThreadSanitizer build, every test on the epoll backend
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (default 60)
#   make bench      Release build, micro-benchmarks, then the side-by-side
#                   matrix against epoll, libuv and raw io_uring (~30 min;
#                   QUICK=1 for a 4-minute subset)
#   make bench-scaling  I/O threads 1, 2, 4, 8 (echo and game); needs 16 cores
#   make run        ringport-game with 1,000 verifying bots (BOTS, SECONDS)
#   make run-echo   ringport-echo under a verifying load (SECONDS, CONNECTIONS)
#   make run-cluster  3 game shards on a private nats-server (BOTS, SECONDS)
#   make soak       echo (and game) load for SOAK_SECONDS (default 600), server
#                   RSS and descriptors sampled into build/soak/soak.{csv,png}
#   make fresh-check  the README's two commands in a pristine Debian 12 root
#                   (debootstrap, cached; root only; scripts/fresh-check.sh)
#   make cross-check  compile every library source for aarch64 (Debian's
#                   cross toolchain, -Werror; no link, nothing runs)
#   make stress-suite  the whole suite N times (default 5), ctest -j twice
#                   the cores, two CPU burners beside it; lists every test
#                   that failed at least once (logs in build/stress-suite/)
#   make gen        regenerate the game's C and TypeScript message code from
#                   proto/game.schema (tools/gen/gen.py, Python 3 stdlib)
#   make check-gen  fail, naming the file, when a generated file is stale
#                   (make test runs it as the test gen_check)
#   make install    PREFIX=DIR (default /usr/local)
#   make format     clang-format the tree

MAKEFLAGS += --no-print-directory

JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 60
CTEST_ARGS ?=

CMAKE_CONFIGURE = cmake -S . -Wno-dev
CTEST = ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

.PHONY: all build test stress-suite sanitize tsan fuzz bench bench-scaling \
	run run-echo run-cluster soak fresh-check cross-check install format \
	clean deps gen check-gen

all: build

deps:
	@sh scripts/deps.sh build

build: deps
	@$(CMAKE_CONFIGURE) -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build -j $(JOBS)

test: build
	@cd build && $(CTEST)

# One message schema, two languages (docs/protocol.md, "The message schema
# and the generator"): the generated files are committed, so a build needs
# no Python; check-gen regenerates into a temporary folder and compares
# (also the CTest gen_check, where python3 is installed).
gen:
	@python3 tools/gen/gen.py

check-gen:
	@python3 tools/gen/gen.py --check

# The suite on a machine kept busy on purpose: N rounds, ctest -j twice the
# cores, two CPU-burning processes beside it; every test that failed in any
# round is listed with its output (scripts/stress-suite.sh, each round's log
# in build/stress-suite/). CTEST_ARGS narrows it (-R/-E).
N ?= 5
stress-suite: build
	@sh scripts/stress-suite.sh build $(N) $(CTEST_ARGS)

# The sanitizer suites run test_reliability_echo's 2,000 connections for
# 3 s instead of 15 (the length its fallback variants always have): what
# they are there to find is a report, and each second of a sanitized echo
# path costs several of a plain one (docs/reliability.md, "CI time").
SANITIZE_TEST_ENV = RP_ECHO_SECONDS=3

sanitize: deps
	@$(CMAKE_CONFIGURE) -B build-asan -DCMAKE_BUILD_TYPE=Debug \
	    -DRP_SANITIZE=address,undefined >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(SANITIZE_TEST_ENV) $(CTEST)

# ThreadSanitizer does not see io_uring's shared rings, so everything runs on
# the epoll backend here (see FIELD-NOTES): the stress tests, and every other
# test that runs threads.
tsan: deps
	@$(CMAKE_CONFIGURE) -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DRP_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	    $(SANITIZE_TEST_ENV) $(CTEST) -E '\.uring$$'

fuzz: deps
	@sh scripts/deps.sh fuzz
	@CC=clang $(CMAKE_CONFIGURE) -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DRP_FUZZ=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@sh scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

bench: deps
	@sh scripts/deps.sh bench
	@$(CMAKE_CONFIGURE) -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release -j $(JOBS) >build-release.log 2>&1 || \
	    { cat build-release.log; exit 1; }
	@sh bench/run.sh build-release
	@sh bench/side_by_side.sh build-release

# Multi-core scaling (bench/scaling.sh): run it on a machine with 16 or more
# cores; on fewer it says so and exits 2.
bench-scaling: deps
	@$(CMAKE_CONFIGURE) -B build-release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-release -j $(JOBS) >build-release.log 2>&1 || \
	    { cat build-release.log; exit 1; }
	@sh bench/scaling.sh build-release

# The main demo: ringport-game (lobby, PVP, dungeon groups) with BOTS
# verifying bots for SECONDS (make run BOTS=5000 SECONDS=60); it stops
# everything it started. `make run-echo` is the echo server under a verifying
# load (SECONDS, CONNECTIONS).
SECONDS ?= 30
BOTS ?= 1000
CONNECTIONS ?= 100
run: build
	@sh scripts/run-game.sh build $(SECONDS) $(BOTS)

run-echo: build
	@sh scripts/run-echo.sh build $(SECONDS) $(CONNECTIONS)

# Three ringport-game shards joined by a private nats-server, BOTS verifying
# bots spread over them for SECONDS, nats-server killed and restarted
# midway (docs/cluster.md; needs scripts/deps.sh cluster).
run-cluster: build
	@sh scripts/run-cluster.sh build $(SECONDS) $(BOTS)

# Echo and game load for SOAK_SECONDS, sampling server RSS and descriptors;
# fails if a byte is wrong or either keeps growing after warm-up (the rule
# is in scripts/soak.sh; docs/reliability.md).
SOAK_SECONDS ?= 600
soak: build
	@sh scripts/deps.sh soak
	@sh scripts/soak.sh build $(SOAK_SECONDS)

# Needs no build here: it proves the committed tree on a machine that has
# nothing (FRESH=rebuild bootstraps the cached root again).
fresh-check:
	@sh scripts/fresh-check.sh

# Every src/**/*.c compiled for aarch64 with our warning flags and -Werror,
# so x86-only code cannot come back (scripts/cross-check.sh; installs the
# `cross` set of scripts/deps.sh when missing).
cross-check:
	@sh scripts/cross-check.sh

install: build
	@cmake --install build --prefix $(PREFIX)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-asan build-tsan build-fuzz build-release
