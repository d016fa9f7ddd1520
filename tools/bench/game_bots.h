/*
 * Internals of ringport-bench game shared by the bots' worker loop
 * (game.c) and the command line, live line and report (game_main.c).
 * Each bot talks through its own libringport-client (rp_client, in the
 * caller-loop mode: the worker's epoll set watches rp_client_fd for
 * rp_client_events and calls rp_client_poll(c, 0)).
 * Threads: main fills the options and starts the workers; a worker owns
 * its bots and their clients, its epoll set, its counters and histograms
 * (single writer, relaxed stores); main reads the counters and histograms with
 * relaxed loads while the run goes on and after joining.
 */
#ifndef RINGPORT_BENCH_GAME_BOTS_H
#define RINGPORT_BENCH_GAME_BOTS_H

#include "bench.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define PROG BENCH_PROG " game"

/* Latency kinds, each a histogram per worker (docs/benchmarks-game.md). */
enum lat {
    LAT_LOGIN,
    LAT_CHAT,
    LAT_PVP_QUEUE,
    LAT_MATCH,
    LAT_PVP_ACTION,
    LAT_DUNGEON_ENTER,
    LAT_DUNGEON_ACTION,
    LAT_RETURN,
    LAT_ERROR,
    LAT_MATCH_MOVED, /* PVP_QUEUE to MATCH_START via SHARD_MOVE (cluster) */
    LAT_COUNT
};

extern const char *const lat_names[LAT_COUNT];

struct game_opts {
    struct bench_opts net; /* host, port (checked numeric by net.c) */
    uint32_t bots, threads;
    double duration;
    uint64_t seed;
    bool json, progress;
    uint32_t timeout_ms;
    bool resume;      /* the bots' clients resume their sessions (--resume) */
    double drop_rate; /* resets per second per bot (--drop-rate; resume) */
    bool ws;          /* --transport ws: libringport-client's RP_CLIENT_WS */
    char name_prefix[5]; /* --name-prefix: before each bot's name ("") */
    uint16_t fault_port; /* --fault-port: its closes are faults, not errors */
};

struct gstats {
    _Atomic uint64_t in, out, logins, chats, matches, dungeons, rejoins;
    _Atomic uint64_t shard_moves; /* SHARD_MOVE followed (cluster) */
    _Atomic uint64_t faults;      /* cut by --fault-port's server: expected */
    _Atomic uint64_t err_verify, err_timeout, err_closed, err_connect,
        err_packet;
    _Atomic uint64_t drops, resumes, sessions_lost; /* --drop-rate */
    _Atomic uint32_t online;
};

struct gworker {
    uint32_t index;
    const struct game_opts *o;
    struct bot *bots; /* its own, allocated by gworker_init */
    uint32_t nbots;
    int epfd;
    struct gstats st;
    struct hist lat[LAT_COUNT];
    struct hist resume_lat; /* from rp_client_drop to RESUME_OK */
};

/* The run's clock: start, and the end of play (no new action after it;
   every socket closed by end + 20 s). Set by main before the workers. */
extern _Atomic uint64_t g_t0, g_end;

/* Allocates the worker's bots (index, index + threads, ...) and its epoll
   set. Returns 0 or -errno; gworker_fini frees either way. */
int gworker_init(struct gworker *w, const struct game_opts *o, uint32_t index);
void gworker_fini(struct gworker *w);
/* The worker's loop; returns once all its bots are done. */
void *gworker_main(void *arg);

#endif
