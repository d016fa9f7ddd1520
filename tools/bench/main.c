/*
 * ringport-bench: a load tester for echo and room (broadcast) servers that
 * verifies every byte it gets back. The lecture's "dummy client", grown
 * into a tool: many connections over a few threads, closed loop (--depth
 * messages in flight) or open loop (--rate: a fixed send schedule, latency
 * from the scheduled time, so a stalled server cannot hide behind
 * coordinated omission), a progress line each second on a terminal, a
 * final summary and one JSON line. docs/bench-tool.md has the details.
 *
 *     ringport-bench --port 7000 --connections 100 --size 64 --depth 16
 *     ringport-bench --port 7000 --mode framed --size 64-1024 --rate 60
 *     ringport-bench room --port 7001 --connections 1000 --room-size 100 \
 *         --rate 20 --json
 *
 * Exit status: 0 every message verified; 1 a verification error, an
 * unexpected close or a failed connect; 2 a bad flag.
 */
#include "bench.h"
#include "game.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(
        f, "usage: " BENCH_PROG " [echo|room] --port N [flags]\n"
           "  --host ADDR          numeric IPv4/IPv6 address (default "
           "127.0.0.1)\n"
           "  --port N             server port (required)\n"
           "  --connections N      connections (default 1)\n"
           "  --size N|MIN-MAX     message bytes (default 64; framed/room: "
           "payload)\n"
           "  --depth D            messages in flight per connection (default "
           "1)\n"
           "  --rate HZ            open loop: each connection sends HZ "
           "messages/s on a\n"
           "                       fixed schedule (default 0: closed loop)\n"
           "  --duration S         measured seconds (default 5)\n"
           "  --warmup S           seconds before that, not counted (default "
           "1)\n"
           "  --threads N          client threads (default 1)\n"
           "  --mode raw|framed    echo of bytes or of packets (default raw;\n"
           "                       framed with --transport ws)\n"
           "  --transport tcp|ws   TCP, or WebSocket to the server's ws port: "
           "each\n"
           "                       frame in its own masked binary message "
           "(default tcp)\n"
           "  --room-size N        room mode: connections per room (default "
           "100)\n"
           "  --seed N             message contents and sizes (default 1)\n"
           "  --connect-timeout-ms MS  connecting (and joining) bound (default "
           "5000)\n"
           "  --json               one JSON object as the last line\n"
           "Exit status: 0 all verified, 1 verify error / close / connect "
           "failure, 2 bad flag.\n");
}

#define bad_usage(...) bench_bad_usage(BENCH_PROG, __VA_ARGS__)

static double parse_num(const char *flag, const char *s, double lo, double hi)
{
    return bench_flag_num(BENCH_PROG, flag, s, lo, hi, false);
}

static uint32_t parse_u32(const char *flag, const char *s, uint32_t lo,
                          uint32_t hi)
{
    return (uint32_t)bench_flag_num(BENCH_PROG, flag, s, lo, hi, true);
}

/* "N", "MIN-MAX" (or "MIN..MAX", as the old echo-load took it). */
static void parse_size(const char *v, struct bench_opts *o)
{
    char lo[32];
    const char *sep = strstr(v, "..");
    size_t skip = 2;
    if (!sep) {
        sep = strchr(v, '-');
        skip = 1;
    }
    if (!sep || sep == v) {
        o->size_min = o->size_max = parse_u32("--size", v, 1, 16u << 20);
        return;
    }
    snprintf(lo, sizeof lo, "%.*s", (int)(sep - v), v);
    o->size_min = parse_u32("--size", lo, 1, 16u << 20);
    o->size_max = parse_u32("--size", sep + skip, o->size_min, 16u << 20);
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
    int i = 1;
    bool verb = false; /* echo|room, once, anywhere among the flags */
    bool raw_asked = false;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (!verb && (strcmp(a, "echo") == 0 || strcmp(a, "room") == 0)) {
            verb = true;
            if (strcmp(a, "room") == 0)
                o->mode = MODE_ROOM;
            continue;
        }
        const char *v = bench_flag_value(BENCH_PROG, argc, argv, &i);
        if (strcmp(a, "--host") == 0)
            o->host = v;
        else if (strcmp(a, "--port") == 0)
            o->port = (uint16_t)parse_u32(a, v, 1, 65535);
        else if (strcmp(a, "--connections") == 0)
            o->connections = parse_u32(a, v, 1, 1000000);
        else if (strcmp(a, "--size") == 0)
            parse_size(v, o);
        else if (strcmp(a, "--depth") == 0)
            o->depth = parse_u32(a, v, 1, 65536);
        else if (strcmp(a, "--duration") == 0)
            o->duration = parse_num(a, v, 0.001, 86400);
        else if (strcmp(a, "--warmup") == 0)
            o->warmup = parse_num(a, v, 0, 3600);
        else if (strcmp(a, "--threads") == 0)
            o->threads = parse_u32(a, v, 1, 1024);
        else if (strcmp(a, "--seed") == 0)
            o->seed = (uint64_t)parse_num(a, v, 0, 9007199254740992.0);
        else if (strcmp(a, "--rate") == 0)
            o->rate_hz = parse_num(a, v, 0, 1e7);
        else if (strcmp(a, "--connect-timeout-ms") == 0)
            o->connect_timeout_ms = parse_u32(a, v, 1, 3600000);
        else if (strcmp(a, "--room-size") == 0)
            o->room_size = parse_u32(a, v, 1, 1000000);
        else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "raw") != 0 && strcmp(v, "framed") != 0)
                bad_usage("--mode wants raw or framed, got '%s'", v);
            if (o->mode == MODE_ROOM && strcmp(v, "framed") != 0)
                bad_usage("room mode is framed only");
            if (o->mode != MODE_ROOM)
                o->mode = strcmp(v, "raw") == 0 ? MODE_RAW : MODE_FRAMED;
            raw_asked = strcmp(v, "raw") == 0;
        } else if (strcmp(a, "--transport") == 0)
            o->ws = bench_flag_transport(BENCH_PROG, v);
        else
            bad_usage("unknown flag '%s'", a);
    }
    if (!o->port)
        bad_usage("--port is required");
    if (o->ws && raw_asked)
        bad_usage("--transport ws carries frames: --mode framed (the default "
                  "with ws) or room");
    if (o->ws && o->mode == MODE_RAW)
        o->mode = MODE_FRAMED;
    if (o->mode != MODE_RAW && o->size_max > 65535)
        bad_usage("framed and room messages are at most 65535 bytes");
    if (o->mode == MODE_ROOM && o->size_min < MSG_HEADER)
        bad_usage("room messages are at least %u bytes (sender, sequence, "
                  "checksum)",
                  MSG_HEADER);
    if (net_resolve(o) < 0)
        bad_usage("--host wants a numeric address, got '%s'", o->host);
    if (o->threads > o->connections)
        o->threads = o->connections;
}

/* ---- progress and report --------------------------------------------------
 */

struct totals {
    uint64_t msgs, bytes, sent, delivered, verify, closed, connect, open;
};

static uint64_t ld(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void sum(const struct worker *ws, uint32_t n, struct totals *t,
                struct hist_sum *hist)
{
    memset(t, 0, sizeof *t);
    if (hist)
        hist_sum_clear(hist);
    for (uint32_t i = 0; i < n; i++) {
        const struct worker_stats *s = &ws[i].st;
        t->msgs += ld(&s->msgs);
        t->bytes += ld(&s->bytes);
        t->sent += ld(&s->sent);
        t->delivered += ld(&s->delivered);
        t->verify += ld(&s->err_verify);
        t->closed += ld(&s->err_closed);
        t->connect += ld(&s->err_connect);
        t->open += atomic_load_explicit(&s->open, memory_order_relaxed);
        if (hist)
            hist_sum_add(hist, &ws[i].hist);
    }
}

/* One progress line over the last interval, redrawn in place. 'ha' (the
   previous snapshot) becomes this interval's latencies; their exact min
   and max are unknown, but the run's so far bound them. */
static void progress(const struct totals *a, const struct totals *b,
                     struct hist_sum *ha, const struct hist_sum *hb,
                     double secs, double elapsed, double warmup)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        ha->b[i] = hb->b[i] - ha->b[i];
    ha->count = hb->count - ha->count;
    ha->min = hb->min;
    ha->max = hb->max;
    printf("\r[%5.0fs%s] conns %" PRIu64 " | %.0f msgs/s | %.2f MB/s | p50 "
           "%.1f us p99 %.1f us | errors %" PRIu64 "\033[K",
           elapsed, elapsed < warmup ? " warmup" : "", b->open,
           (double)(b->msgs - a->msgs) / secs,
           (double)(b->bytes - a->bytes) / secs / 1e6,
           hist_percentile(ha, 0.50) / 1e3, hist_percentile(ha, 0.99) / 1e3,
           b->verify + b->closed + b->connect);
    fflush(stdout);
}

static const char *mode_name(enum bench_mode m)
{
    return m == MODE_RAW ? "raw" : m == MODE_FRAMED ? "framed" : "room";
}

static void report(const struct bench_opts *o, const struct totals *t,
                   const struct hist_sum *hist, double secs)
{
    bool ok = t->verify + t->closed + t->connect == 0;
    double rate = secs > 0 ? (double)t->msgs / secs : 0;
    double mbs = secs > 0 ? (double)t->bytes / secs / 1e6 : 0;
    double p[4] = {
        hist_percentile(hist, 0.50) / 1e3, hist_percentile(hist, 0.90) / 1e3,
        hist_percentile(hist, 0.99) / 1e3, hist_percentile(hist, 0.999) / 1e3};
    double max = (double)hist->max / 1e3;
    char size[48], load[48];
    if (o->size_min == o->size_max)
        snprintf(size, sizeof size, "%u B", o->size_min);
    else
        snprintf(size, sizeof size, "%u-%u B", o->size_min, o->size_max);
    if (o->rate_hz)
        snprintf(load, sizeof load, "rate %g/s", o->rate_hz);
    else
        snprintf(load, sizeof load, "depth %u", o->depth);
    printf(BENCH_PROG ": %s%s, %u connections", mode_name(o->mode),
           o->ws ? " over WebSocket" : "", o->connections);
    if (o->mode == MODE_ROOM)
        printf(" in rooms of %u", o->room_size);
    printf(", %s, %s, %u threads, %.1f s: %" PRIu64 " msgs verified, %.0f "
           "msgs/s, %.2f MB/s, latency us p50 %.1f p90 %.1f p99 %.1f p99.9 "
           "%.1f max %.1f, errors verify %" PRIu64 " closed %" PRIu64
           " connect %" PRIu64 "%s\n",
           size, load, o->threads, secs, t->msgs, rate, mbs, p[0], p[1], p[2],
           p[3], max, t->verify, t->closed, t->connect, ok ? "" : " (FAILED)");
    if (o->json)
        printf("{\"tool\":\"ringport-bench\",\"mode\":\"%s\","
               "\"transport\":\"%s\","
               "\"connections\":%u,\"threads\":%u,\"size_min\":%u,"
               "\"size_max\":%u,\"depth\":%u,\"rate_hz\":%g,"
               "\"duration_s\":%.3f,\"messages\":%" PRIu64 ","
               "\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
               "\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
               "\"p999\":%.1f,\"max\":%.1f},"
               "\"errors\":{\"verify\":%" PRIu64 ",\"closed\":%" PRIu64
               ",\"connect\":%" PRIu64 "},\"ok\":%s,"
               "\"room_size\":%u,\"sent\":%" PRIu64 ",\"delivered\":%" PRIu64
               "}\n",
               mode_name(o->mode), o->ws ? "ws" : "tcp", o->connections,
               o->threads, o->size_min, o->size_max, o->depth, o->rate_hz, secs,
               t->msgs, rate, mbs, p[0], p[1], p[2], p[3], max, t->verify,
               t->closed, t->connect, ok ? "true" : "false",
               o->mode == MODE_ROOM ? o->room_size : 0, t->sent, t->delivered);
    fflush(stdout);
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "game") == 0) /* tools/bench/game.c */
        return game_main(argc - 1, argv + 1);
    struct bench_opts o = {.host = "127.0.0.1",
                           .connections = 1,
                           .size_min = 64,
                           .size_max = 64,
                           .depth = 1,
                           .duration = 5,
                           .warmup = 1,
                           .threads = 1,
                           .seed = 1,
                           .connect_timeout_ms = 5000,
                           .room_size = 100};
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    msg_init(&o);

    struct worker *ws = calloc(o.threads, sizeof *ws);
    struct hist_sum *hist = calloc(2, sizeof *hist);
    if (o.mode == MODE_ROOM)
        g_run.final_seq = calloc(o.connections, sizeof *g_run.final_seq);
    if (!ws || !hist || (o.mode == MODE_ROOM && !g_run.final_seq)) {
        fprintf(stderr, BENCH_PROG ": out of memory\n");
        return 1;
    }
    uint32_t started = 0;
    for (; started < o.threads; started++) {
        if (worker_init(&ws[started], &o, started) < 0) {
            fprintf(stderr, BENCH_PROG ": out of memory\n");
            atomic_store(&g_run.failed, true);
            started++; /* it holds allocations: fini it below */
            break;
        }
    }
    pthread_t *tids = calloc(o.threads, sizeof *tids);
    uint32_t running = 0;
    for (; tids && !atomic_load(&g_run.failed) && running < o.threads;
         running++)
        if (pthread_create(&tids[running], NULL, worker_main, &ws[running])) {
            fprintf(stderr, BENCH_PROG ": cannot start a thread\n");
            atomic_store(&g_run.failed, true);
            break;
        }

    /* Start the clock when every worker is connected (and joined). */
    while (atomic_load(&g_run.ready) < running && !atomic_load(&g_run.failed))
        sleep_ns(1000000);
    uint64_t t0 = bench_now_ns();
    atomic_store(&g_run.t0, t0);

    /* Progress each second while the workers run; they end on their own
       (the run is bounded: warmup + duration + drain). */
    bool live = isatty(STDOUT_FILENO) && !atomic_load(&g_run.failed);
    uint64_t end = t0 + (uint64_t)((o.warmup + o.duration) * 1e9);
    struct totals prev, cur;
    struct hist_sum *hprev = hist, *hcur = hist + 1;
    uint64_t tprev = t0;
    sum(ws, running, &prev, hprev);
    while (live && !atomic_load(&g_run.failed)) {
        uint64_t now = bench_now_ns();
        if (now >= end)
            break;
        uint64_t next = tprev + 1000000000ull;
        sleep_ns((next < end ? next : end) - now);
        now = bench_now_ns();
        sum(ws, running, &cur, hcur);
        progress(&prev, &cur, hprev, hcur, (double)(now - tprev) / 1e9,
                 (double)(now - t0) / 1e9, o.warmup);
        struct hist_sum *swap = hprev;
        hprev = hcur;
        hcur = swap;
        prev = cur;
        tprev = now;
    }
    if (live)
        printf("\n");

    uint64_t window = 0;
    for (uint32_t i = 0; i < running; i++) {
        pthread_join(tids[i], NULL);
        if (ws[i].window_ns > window)
            window = ws[i].window_ns;
    }
    struct totals t;
    sum(ws, running, &t, hist);
    report(&o, &t, hist, (double)window / 1e9);
    bool ok =
        t.verify + t.closed + t.connect == 0 && !atomic_load(&g_run.failed);

    for (uint32_t i = 0; i < started; i++)
        worker_fini(&ws[i]);
    free(tids);
    free(ws);
    free(hist);
    free(g_run.final_seq);
    msg_fini();
    return ok ? 0 : 1;
}
