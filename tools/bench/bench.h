/*
 * ringport-bench internals: the options, the message layout, the latency
 * histogram and the per-thread client loop. Uses no ringport API (it must
 * be able to load any server); see docs/bench-tool.md for the user's view.
 *
 * Threads: main parses the flags, starts --threads workers (connection i
 * belongs to worker i % threads for its whole life), sets the start time
 * once every worker is connected (and, in room mode, joined), prints the
 * progress line each second and the report at the end. A worker owns its
 * connections, its epoll loop and its histogram; what main reads while it
 * runs (counters, histogram buckets) is written by that one worker only,
 * with relaxed atomic stores, and read with relaxed loads.
 */
#ifndef RINGPORT_BENCH_H
#define RINGPORT_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BENCH_PROG "ringport-bench"

enum bench_mode { MODE_RAW, MODE_FRAMED, MODE_ROOM };

struct bench_opts {
    const char *host;
    uint16_t port;
    uint32_t connections;
    uint32_t size_min, size_max; /* message (payload in framed/room) */
    uint32_t depth;
    double duration, warmup; /* seconds */
    uint32_t threads;
    enum bench_mode mode;
    uint64_t seed;
    bool json;
    double rate_hz; /* 0: closed loop */
    uint32_t connect_timeout_ms;
    uint32_t room_size;
    bool ws; /* --transport ws: RFC 6455 framing (loop.c) */
    /* Resolved --host/--port. */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool loopback4; /* target in 127.0.0.0/8: extra source addresses ok */
};

/* ---- messages (msg.c) ---------------------------------------------------
 *
 * A message of connection c, sequence s has a size drawn from --size by
 * (seed, c, s). Its bytes: u32 c, u32 s, u32 checksum of the filler, then
 * filler up to the size: a slice of a random pattern (from --seed) at an
 * offset drawn by (c, s), so neighbouring messages differ and every byte
 * can be checked with a memcmp and no generator in the loop. A message
 * shorter than 12 bytes carries the first bytes of that header only.
 * Framed and room modes send it as the payload of one frame (u16 length,
 * u16 type, little-endian: docs/protocol.md); echo uses type 2 like room.
 */
#define MSG_HEADER 12u
#define FRAME_HEADER 4u
#define MSG_TYPE_JOIN 1u
#define MSG_TYPE_DATA 2u
#define PATTERN_SPAN 4096u /* offsets 0..SPAN-1 */

struct msg_layout {
    uint8_t head[FRAME_HEADER + MSG_HEADER]; /* wire bytes before filler */
    uint32_t head_len;                       /* bytes of 'head' in use */
    uint32_t fill_len;
    const uint8_t *fill; /* into the pattern */
    uint32_t size;       /* message bytes (payload) */
};

void msg_init(const struct bench_opts *o);
void msg_fini(void);
uint32_t msg_size(uint32_t conn, uint32_t seq);
/* The wire form of message (conn, seq); 'framed' adds the frame header. */
void msg_layout(struct msg_layout *m, uint32_t conn, uint32_t seq, bool framed);
/* Copies the wire form to 'dst'; returns its length. */
uint32_t msg_write(const struct msg_layout *m, uint8_t *dst);

/* ---- latency histogram (hist.c) -----------------------------------------
 *
 * Log-linear, fixed size: values below 2^SUB_BITS ns are exact, then each
 * power of two is cut into 2^SUB_BITS equal buckets (under 1.6 % wide).
 * Written by hand because no Debian package ships HdrHistogram_c and this
 * much of it is sixty lines; one per worker, merged at the end into a
 * struct hist_sum, which is what percentiles are read from.
 *
 * A percentile is interpolated inside its bucket, over the part of the
 * bucket that lies between the smallest and the largest value recorded,
 * then clamped to them: it never exceeds the reported max nor falls below
 * the min (a bucket's edge or middle can lie past either).
 */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_BITS 40 /* ~1100 s: larger values land in the last bucket */
#define HIST_BUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
    _Atomic uint64_t b[HIST_BUCKETS]; /* one writer; relaxed */
    _Atomic uint64_t min, max;        /* valid once 'count' > 0 */
    _Atomic uint64_t count;           /* release: min and max are set */
};

/* A merged snapshot of one or more histograms. */
struct hist_sum {
    uint64_t b[HIST_BUCKETS];
    uint64_t count;    /* values recorded */
    uint64_t min, max; /* of those values; 0 and 0 when count is 0 */
};

/* Thread: the histogram's one writer. */
void hist_record(struct hist *h, uint64_t ns);
/* Empties 'dst' (count 0). */
void hist_sum_clear(struct hist_sum *dst);
/* dst += src (a snapshot: relaxed loads of the buckets). Thread: any. */
void hist_sum_add(struct hist_sum *dst, const struct hist *src);
/* Percentile p (0..1) of 's', in ns: p <= 0 gives the min, p >= 1 the max,
   anything between lies in [min, max]. 0 if empty. */
double hist_percentile(const struct hist_sum *s, double p);

/* ---- workers (loop.c) --------------------------------------------------- */

struct conn;

/* Counters main reads while the run goes on: one writer (the worker). */
struct worker_stats {
    _Atomic uint64_t msgs;      /* verified in the measured window */
    _Atomic uint64_t bytes;     /* their message bytes */
    _Atomic uint64_t sent;      /* messages sent (all phases; room: seq >= 1) */
    _Atomic uint64_t delivered; /* room: data messages verified (all) */
    _Atomic uint64_t err_verify, err_closed, err_connect;
    _Atomic uint32_t open; /* connections established and alive */
};

struct worker {
    uint32_t index;
    const struct bench_opts *o;
    struct conn *conns; /* connections index, index + threads, ... */
    uint32_t nconns;
    int epfd;
    uint8_t *rbuf; /* receive chunk */
    struct worker_stats st;
    struct hist hist;
    uint64_t window_ns; /* measured time this worker saw (main reads after
                           join) */
};

/* Shared run state, set by main / the workers (loop.c). */
struct run_state {
    _Atomic uint64_t t0;         /* start of warmup (ns); 0 until all ready */
    _Atomic uint32_t ready;      /* workers connected (and joined) */
    _Atomic uint32_t acked;      /* room: workers whose own msgs came back */
    _Atomic bool failed;         /* any error: everyone stops */
    _Atomic uint32_t *final_seq; /* room: per connection, after 'acked' */
    _Atomic uint32_t src_index;  /* next 127.0.0.x source (net.c) */
};

extern struct run_state g_run;

int worker_init(struct worker *w, const struct bench_opts *o, uint32_t index);
void worker_fini(struct worker *w);
void *worker_main(void *arg);

uint64_t bench_now_ns(void);

/* ---- connecting (net.c) ------------------------------------------------- */

/* Parses a numeric host into o->addr; -EINVAL if not numeric. */
int net_resolve(struct bench_opts *o);
/*
 * A non-blocking socket with TCP_NODELAY, connect started. On
 * EADDRNOTAVAIL (ephemeral ports of the current source address used up)
 * and a target in 127.0.0.0/8, binds to the next 127.0.0.x source and
 * tries again. Returns the fd or -errno.
 */
int net_connect(const struct bench_opts *o);

/* ---- the command line (cli.c), shared by both modes' parsers ---------- */

/* Prints "PROG: MESSAGE (try --help)" on stderr and exits with status 2. */
__attribute__((format(printf, 2, 3), noreturn)) void
bench_bad_usage(const char *prog, const char *fmt, ...);

/* The value of the flag at argv[*i] (which must start with "--"), from
   argv[*i + 1]; advances *i past it. Exits 2 (bench_bad_usage) if 'a' is
   not a flag or has no value. */
const char *bench_flag_value(const char *prog, int argc, char **argv, int *i);

/* The value of --transport: false for "tcp", true for "ws"; exits 2
   (bench_bad_usage) for anything else. */
bool bench_flag_transport(const char *prog, const char *v);

/* 's', the value of 'flag', as a number in [lo, hi] (a whole one if
   'whole'); exits 2 (bench_bad_usage) if it is not. */
double bench_flag_num(const char *prog, const char *flag, const char *s,
                      double lo, double hi, bool whole);

#endif
