/*
 * ringport-bench game: the command line, the live line and the report
 * around the bots' workers (game.c). Entered from main.c for
 * `ringport-bench game ...`; game.h has the contract.
 */
#include "game.h"
#include "game_bots.h"

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

static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --port N [flags]\n"
            "  --host ADDR        numeric address (default 127.0.0.1)\n"
            "  --port N           ringport-game's port (required; with "
            "--transport ws\n"
            "                     its WebSocket port, --ws-port)\n"
            "  --transport tcp|ws the bots' connections: TCP or WebSocket "
            "(default tcp)\n"
            "  --bots N           bots (default 100)\n"
            "  --duration S       seconds of play (default 10); then each bot "
            "leaves\n"
            "  --threads N        client threads (default 1)\n"
            "  --seed N           bots' choices (default 1)\n"
            "  --timeout-ms MS    bound on every reply, match found included "
            "(10000)\n"
            "  --resume           the bots resume their sessions (a server "
            "with\n"
            "                     resume_grace_ms > 0; libringport-client's "
            "resume)\n"
            "  --drop-rate P      resets of each bot's socket per second, at "
            "random\n"
            "                     moments (implies --resume; default 0)\n"
            "  --name-prefix P    up to 4 of [A-Za-z0-9] before each bot's "
            "name\n"
            "                     (bots of several runs on one cluster: "
            "docs/cluster.md)\n"
            "  --fault-port N     a server on port N is killed on purpose "
            "(cluster runs):\n"
            "                     a connection to it closed or refused is "
            "counted as a\n"
            "                     fault, not an error; the bot logs in again "
            "at --port\n"
            "                     with a new name\n"
            "  --json             one JSON object as the last line\n"
            "  --progress         a progress line each second even when "
            "stdout is\n"
            "                     not a terminal (one line each, not "
            "redrawn)\n"
            "Exit status: 0 all verified, 1 a verification error, timeout, "
            "close or\nfailed connect, 2 bad flag.\n");
}

#define bad_usage(...) bench_bad_usage(PROG, __VA_ARGS__)

static double num(const char *flag, const char *s, double lo, double hi,
                  bool whole)
{
    return bench_flag_num(PROG, flag, s, lo, hi, whole);
}

static void parse_args(int argc, char **argv, struct game_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--progress") == 0) {
            o->progress = true;
            continue;
        }
        if (strcmp(a, "--resume") == 0) {
            o->resume = true;
            continue;
        }
        const char *v = bench_flag_value(PROG, argc, argv, &i);
        if (strcmp(a, "--host") == 0)
            o->net.host = v;
        else if (strcmp(a, "--port") == 0)
            o->net.port = (uint16_t)num(a, v, 1, 65535, true);
        else if (strcmp(a, "--bots") == 0)
            o->bots = (uint32_t)num(a, v, 1, 1000000, true);
        else if (strcmp(a, "--duration") == 0)
            o->duration = num(a, v, 0.001, 86400, false);
        else if (strcmp(a, "--threads") == 0)
            o->threads = (uint32_t)num(a, v, 1, 1024, true);
        else if (strcmp(a, "--seed") == 0)
            o->seed = (uint64_t)num(a, v, 0, 9007199254740992.0, true);
        else if (strcmp(a, "--timeout-ms") == 0)
            o->timeout_ms = (uint32_t)num(a, v, 1, 3600000, true);
        else if (strcmp(a, "--drop-rate") == 0)
            o->drop_rate = num(a, v, 0, 1000, false);
        else if (strcmp(a, "--fault-port") == 0)
            o->fault_port = (uint16_t)num(a, v, 1, 65535, true);
        else if (strcmp(a, "--transport") == 0)
            o->ws = bench_flag_transport(PROG, v);
        else if (strcmp(a, "--name-prefix") == 0) {
            size_t n = strlen(v);
            if (n >= sizeof o->name_prefix ||
                strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789") != n)
                bad_usage("--name-prefix wants up to 4 of [A-Za-z0-9], got "
                          "'%s'",
                          v);
            memcpy(o->name_prefix, v, n + 1);
        } else
            bad_usage("unknown flag '%s'", a);
    }
    if (!o->net.port)
        bad_usage("--port is required");
    if (net_resolve(&o->net) < 0)
        bad_usage("--host wants a numeric address, got '%s'", o->net.host);
    if (o->threads > o->bots)
        o->threads = o->bots;
    if (o->drop_rate > 0)
        o->resume = true;
}

struct gtotals {
    uint64_t in, out, logins, chats, matches, dungeons, rejoins;
    uint64_t shard_moves, faults;
    uint64_t verify, timeout, closed, connect, packet, online;
    uint64_t drops, resumes, sessions_lost;
};

static void gsum(struct gworker *ws, uint32_t n, struct gtotals *t)
{
    memset(t, 0, sizeof *t);
    for (uint32_t i = 0; i < n; i++) {
        struct gstats *s = &ws[i].st;
        t->in += ld(&s->in);
        t->out += ld(&s->out);
        t->logins += ld(&s->logins);
        t->chats += ld(&s->chats);
        t->matches += ld(&s->matches);
        t->dungeons += ld(&s->dungeons);
        t->rejoins += ld(&s->rejoins);
        t->shard_moves += ld(&s->shard_moves);
        t->faults += ld(&s->faults);
        t->verify += ld(&s->err_verify);
        t->timeout += ld(&s->err_timeout);
        t->closed += ld(&s->err_closed);
        t->connect += ld(&s->err_connect);
        t->packet += ld(&s->err_packet);
        t->drops += ld(&s->drops);
        t->resumes += ld(&s->resumes);
        t->sessions_lost += ld(&s->sessions_lost);
        t->online += atomic_load_explicit(&s->online, memory_order_relaxed);
    }
}

static uint64_t errors_of(const struct gtotals *t)
{
    return t->verify + t->timeout + t->closed + t->connect + t->packet;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

static void report(const struct game_opts *o, struct gworker *ws,
                   const struct gtotals *t, double secs)
{
    static struct hist_sum sums[LAT_COUNT];
    const struct hist_sum *b[LAT_COUNT];
    uint64_t count[LAT_COUNT], max[LAT_COUNT];
    for (int k = 0; k < LAT_COUNT; k++) {
        hist_sum_clear(&sums[k]);
        for (uint32_t i = 0; i < o->threads; i++)
            hist_sum_add(&sums[k], &ws[i].lat[k]);
        b[k] = &sums[k];
        count[k] = sums[k].count;
        max[k] = sums[k].max;
    }
    bool ok = errors_of(t) == 0;
    printf(PROG ": %u bots%s, %u threads, %.1f s: msgs in %" PRIu64
                " (%.0f/s) out %" PRIu64 " (%.0f/s), logins %" PRIu64
                ", chats %" PRIu64 ", matches %" PRIu64 ", dungeons %" PRIu64
                ", rejoins %" PRIu64 "\n",
           o->bots, o->ws ? " over WebSocket" : "", o->threads, secs, t->in,
           (double)t->in / secs, t->out, (double)t->out / secs, t->logins,
           t->chats, t->matches, t->dungeons, t->rejoins);
    printf("  %-15s %9s %10s %10s %10s %10s\n", "latency (us)", "count", "p50",
           "p90", "p99", "max");
    for (int k = 0; k < LAT_COUNT; k++)
        if (k != LAT_MATCH_MOVED || count[k]) /* cluster runs only */
            printf("  %-15s %9" PRIu64 " %10.1f %10.1f %10.1f %10.1f\n",
                   lat_names[k], count[k], hist_percentile(b[k], 0.5) / 1e3,
                   hist_percentile(b[k], 0.9) / 1e3,
                   hist_percentile(b[k], 0.99) / 1e3, (double)max[k] / 1e3);
    static struct hist_sum rs;
    hist_sum_clear(&rs);
    for (uint32_t i = 0; i < o->threads; i++)
        hist_sum_add(&rs, &ws[i].resume_lat);
    if (o->resume)
        printf("  resume: drops %" PRIu64 ", resumes %" PRIu64
               ", resume latency (us) p50 %.1f p99 %.1f max %.1f, sessions "
               "lost %" PRIu64 "\n",
               t->drops, t->resumes, hist_percentile(&rs, 0.5) / 1e3,
               hist_percentile(&rs, 0.99) / 1e3, (double)rs.max / 1e3,
               t->sessions_lost);
    if (t->shard_moves) /* cluster shards: SHARD_MOVE followed */
        printf("  shard moves %" PRIu64 "\n", t->shard_moves);
    if (o->fault_port) /* connections cut by a server killed on purpose */
        printf("  faults %" PRIu64 " (port %u)\n", t->faults, o->fault_port);
    printf("  verification errors %" PRIu64 " (verify %" PRIu64
           ", timeout %" PRIu64 ", closed %" PRIu64 ", connect %" PRIu64
           ", error packets %" PRIu64 ")%s\n",
           errors_of(t), t->verify, t->timeout, t->closed, t->connect,
           t->packet, ok ? "" : " FAILED");
    if (o->json) {
        printf("{\"tool\":\"ringport-bench\",\"mode\":\"game\","
               "\"transport\":\"%s\",\"bots\":%u,"
               "\"threads\":%u,\"seed\":%" PRIu64 ",\"duration_s\":%.3f,"
               "\"messages_in\":%" PRIu64 ",\"messages_out\":%" PRIu64
               ",\"msgs_per_s\":%.1f,\"logins\":%" PRIu64 ",\"chats\":%" PRIu64
               ",\"matches\":%" PRIu64 ",\"dungeons\":%" PRIu64
               ",\"rejoins\":%" PRIu64 ",\"latency_us\":{",
               o->ws ? "ws" : "tcp", o->bots, o->threads, o->seed, secs, t->in,
               t->out, (double)(t->in + t->out) / secs, t->logins, t->chats,
               t->matches, t->dungeons, t->rejoins);
        for (int k = 0; k < LAT_COUNT; k++)
            printf("%s\"%s\":{\"count\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,"
                   "\"p99\":%.1f,\"max\":%.1f}",
                   k ? "," : "", lat_names[k], count[k],
                   hist_percentile(b[k], 0.5) / 1e3,
                   hist_percentile(b[k], 0.9) / 1e3,
                   hist_percentile(b[k], 0.99) / 1e3, (double)max[k] / 1e3);
        if (o->resume)
            printf("},\"drop_rate\":%.4f,\"drops\":%" PRIu64
                   ",\"resumes\":%" PRIu64 ",\"sessions_lost\":%" PRIu64
                   ",\"resume_latency_us\":{\"count\":%" PRIu64
                   ",\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f",
                   o->drop_rate, t->drops, t->resumes, t->sessions_lost,
                   rs.count, hist_percentile(&rs, 0.5) / 1e3,
                   hist_percentile(&rs, 0.99) / 1e3, (double)rs.max / 1e3);
        printf("},\"errors\":{\"verify\":%" PRIu64 ",\"timeout\":%" PRIu64
               ",\"closed\":%" PRIu64 ",\"connect\":%" PRIu64
               ",\"error_packet\":%" PRIu64 "},\"ok\":%s}\n",
               t->verify, t->timeout, t->closed, t->connect, t->packet,
               ok ? "true" : "false");
    }
    fflush(stdout);
}

int game_main(int argc, char **argv)
{
    struct game_opts o = {.net = {.host = "127.0.0.1"},
                          .bots = 100,
                          .threads = 1,
                          .duration = 10,
                          .seed = 1,
                          .timeout_ms = 10000};
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);

    struct gworker *ws = calloc(o.threads, sizeof *ws);
    pthread_t *tids = calloc(o.threads, sizeof *tids);
    if (!ws || !tids) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    /* Bot i belongs to worker i % threads for the whole run. */
    for (uint32_t t = 0; t < o.threads; t++) {
        int r = gworker_init(&ws[t], &o, t);
        if (r < 0) {
            fprintf(stderr, PROG ": cannot set up the bots: %s\n",
                    strerror(-r));
            for (uint32_t k = 0; k <= t; k++)
                gworker_fini(&ws[k]);
            return 1;
        }
    }
    uint64_t t0 = bench_now_ns();
    atomic_store(&g_t0, t0);
    atomic_store(&g_end, t0 + (uint64_t)(o.duration * 1e9));
    uint32_t running = 0;
    for (; running < o.threads; running++)
        if (pthread_create(&tids[running], NULL, gworker_main, &ws[running])) {
            fprintf(stderr, PROG ": cannot start a thread\n");
            atomic_store(&g_end, 0);
            break;
        }

    /* The live line, on a terminal, while the bots play. */
    bool tty = isatty(STDOUT_FILENO), live = tty || o.progress;
    struct gtotals prev, cur;
    gsum(ws, running, &prev);
    uint64_t tprev = t0, end = atomic_load(&g_end);
    while (live) {
        uint64_t now = bench_now_ns();
        if (now >= end)
            break;
        uint64_t next = tprev + 1000000000ull;
        sleep_ns((next < end ? next : end) - now);
        now = bench_now_ns();
        gsum(ws, running, &cur);
        double s = (double)(now - tprev) / 1e9;
        printf("%s[%5.0fs] bots online %" PRIu64 " | in %.0f/s out %.0f/s | "
               "matches %" PRIu64 " dungeons %" PRIu64 " chats %" PRIu64
               " | errors %" PRIu64 "%s",
               tty ? "\r" : "", (double)(now - t0) / 1e9, cur.online,
               (double)(cur.in - prev.in) / s, (double)(cur.out - prev.out) / s,
               cur.matches, cur.dungeons, cur.chats, errors_of(&cur),
               tty ? "\033[K" : "\n");
        fflush(stdout);
        prev = cur;
        tprev = now;
    }
    if (tty)
        printf("\n");
    for (uint32_t i = 0; i < running; i++)
        pthread_join(tids[i], NULL);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    struct gtotals t;
    gsum(ws, running, &t);
    report(&o, ws, &t, secs);
    bool ok = errors_of(&t) == 0 && running == o.threads;
    for (uint32_t i = 0; i < o.threads; i++)
        gworker_fini(&ws[i]);
    free(tids);
    free(ws);
    return ok ? 0 : 1;
}
