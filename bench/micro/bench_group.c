/*
 * Content groups, end to end over loopback (epoll unless RINGPORT_BACKEND
 * says otherwise), each figure next to its baseline in the same run:
 *
 *   hop:   one client pipelines MSGS 4-byte frames; the handler counts them.
 *          Baseline: the server's on_message on the I/O thread. Measured:
 *          the session sits in a group, so each frame is copied into a
 *          packet, pushed to the group's inbox and handled on its thread.
 *          ns per message from the first write to the last handled frame;
 *          the difference is the cost of the hop (median of ROUNDS,
 *          interleaved).
 *   moves: MOVERS sessions moved between two groups, all at once, back
 *          and forth; completed moves (on_enter calls) per second.
 *   layouts: 3 groups, CLIENTS closed-loop clients (each sends one frame,
 *          waits for the echo, sends the next); the handler burns BURN_US
 *          of CPU per message before echoing. HETERO (a thread per group)
 *          next to HOMO (one logic thread): messages per second and the
 *          p50/p99 round trip, DURATION_MS each.
 *
 * Run: build-release/bench/bench_group [rounds] (or `make bench`).
 */
#include "core/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <ringport/group.h>
#include <ringport/log.h>
#include <ringport/server.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ROUNDS_DEFAULT 5
#define MSGS 400000
#define MOVERS 1000
#define MOVE_ROUNDS 20
#define CLIENTS 12
#define BURN_US 20
#define DURATION_MS 2000
#define MAX_SAMPLES 400000

static _Atomic uint64_t handled;
static _Atomic uint64_t entered;
static struct rp_group *groups[3];
static rp_sid last_sid;
static _Atomic int joined;
static bool echo;

static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    (void)srv;
    (void)user;
    last_sid = sid;
    atomic_fetch_add(&joined, 1);
}

static void burn(void)
{
    int64_t end = rp_clock_ns() + BURN_US * 1000;
    while (rp_clock_ns() < end)
        ;
}

static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)srv, (void)data;
    (void)sid;
    (void)msg;
    (void)user;
    atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
}

static void g_message(struct rp_group *g, rp_sid sid, void *data,
                      const struct rp_message *msg, void *user)
{
    (void)data, (void)user;
    if (echo) {
        burn();
        rp_server_send(rp_group_server(g), sid, msg->packet);
    }
    atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
}

static void g_enter(struct rp_group *g, rp_sid sid, void *data, void *ticket,
                    void *user)
{
    (void)g, (void)data, (void)ticket;
    (void)sid;
    (void)user;
    atomic_fetch_add_explicit(&entered, 1, memory_order_relaxed);
}

static struct rp_server *server(enum rp_group_layout layout, int ngroups)
{
    struct rp_server_config cfg;
    rp_server_config_init(&cfg);
    cfg.listen_addr = "127.0.0.1";
    cfg.max_sessions = MOVERS + 64;
    cfg.cb.on_join = on_join;
    cfg.cb.on_message = on_message;
    struct rp_server *srv;
    if (rp_server_create(&cfg, &srv) < 0 ||
        rp_group_set_layout(srv, layout) < 0)
        exit(1);
    for (int i = 0; i < ngroups; i++) {
        char name[24]; /* "bench-" and any int */
        snprintf(name, sizeof name, "bench-%d", i);
        struct rp_group_config gc = {
            .name = name,
            .tick_ms = 50,
            .cb = {.on_enter = g_enter, .on_message = g_message}};
        if (rp_group_create(srv, &gc, &groups[i]) < 0)
            exit(1);
    }
    if (rp_server_start(srv) < 0)
        exit(1);
    return srv;
}

static int client(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        exit(1);
    return fd;
}

static void wait_for(_Atomic uint64_t *v, uint64_t want)
{
    while (atomic_load(v) < want)
        sched_yield();
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0 && errno != EINTR)
            exit(1);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
    }
}

/* ns per message through on_message (grouped = false) or a group. */
static double run_hop(bool grouped)
{
    static uint8_t buf[8 * 1024];
    echo = false;
    atomic_store(&handled, 0);
    atomic_store(&joined, 0);
    struct rp_server *srv = server(RP_GROUP_HETERO, 1);
    int fd = client(rp_server_port(srv));
    while (atomic_load(&joined) == 0)
        sched_yield();
    if (grouped) {
        atomic_store(&entered, 0);
        rp_group_move(srv, last_sid, groups[0], NULL);
        wait_for(&entered, 1);
    }
    for (size_t i = 0; i < sizeof buf; i += 8) {
        uint8_t f[8] = {4, 0, 1, 0, 1, 2, 3, 4};
        memcpy(buf + i, f, 8);
    }
    int64_t t0 = rp_clock_ns();
    for (size_t sent = 0; sent < MSGS; sent += sizeof buf / 8)
        write_all(fd, buf, sizeof buf);
    uint64_t total =
        (MSGS + sizeof buf / 8 - 1) / (sizeof buf / 8) * (sizeof buf / 8);
    wait_for(&handled, total);
    double ns = (double)(rp_clock_ns() - t0) / (double)total;
    close(fd);
    rp_server_destroy(srv);
    return ns;
}

/* Completed moves per second. */
static double run_moves(void)
{
    static int fds[MOVERS];
    static rp_sid sids[MOVERS];
    echo = false;
    atomic_store(&joined, 0);
    atomic_store(&entered, 0);
    struct rp_server *srv = server(RP_GROUP_HETERO, 2);
    for (int i = 0; i < MOVERS; i++) {
        fds[i] = client(rp_server_port(srv));
        while (atomic_load(&joined) <= i)
            sched_yield();
        sids[i] = last_sid;
    }
    int64_t t0 = rp_clock_ns();
    for (int r = 0; r < MOVE_ROUNDS; r++) {
        for (int i = 0; i < MOVERS; i++)
            rp_group_move(srv, sids[i], groups[r % 2], NULL);
        wait_for(&entered, (uint64_t)(r + 1) * MOVERS);
    }
    double per_sec =
        (double)MOVE_ROUNDS * MOVERS / ((double)(rp_clock_ns() - t0) / 1e9);
    for (int i = 0; i < MOVERS; i++)
        close(fds[i]);
    rp_server_destroy(srv);
    return per_sec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

struct layout_result {
    double msgs_per_sec;
    double p50_us, p99_us;
};

/* Closed-loop clients on this thread (poll), CLIENTS / 3 per group. */
static struct layout_result run_layout(enum rp_group_layout layout)
{
    static int64_t samples[MAX_SAMPLES];
    static int fds[CLIENTS];
    static int64_t sent_at[CLIENTS];
    echo = true;
    atomic_store(&joined, 0);
    atomic_store(&entered, 0);
    struct rp_server *srv = server(layout, 3);
    struct pollfd pfd[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = client(rp_server_port(srv));
        while (atomic_load(&joined) <= i)
            sched_yield();
        rp_group_move(srv, last_sid, groups[i % 3], NULL);
        pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    }
    wait_for(&entered, CLIENTS);
    uint8_t f[8] = {4, 0, 1, 0, 1, 2, 3, 4};
    int64_t t0 = rp_clock_ns(), end = t0 + DURATION_MS * RP_NS_PER_MS;
    for (int i = 0; i < CLIENTS; i++) {
        sent_at[i] = rp_clock_ns();
        write_all(fds[i], f, 8);
    }
    size_t n = 0;
    int64_t now = t0;
    while (now < end) {
        if (poll(pfd, CLIENTS, 100) <= 0)
            continue;
        now = rp_clock_ns();
        for (int i = 0; i < CLIENTS; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            uint8_t in[8];
            size_t got = 0;
            while (got < 8) {
                ssize_t r = read(fds[i], in + got, 8 - got);
                if (r <= 0)
                    exit(1);
                got += (size_t)r;
            }
            if (n < MAX_SAMPLES)
                samples[n++] = now - sent_at[i];
            sent_at[i] = now;
            write_all(fds[i], f, 8);
        }
    }
    double secs = (double)(now - t0) / 1e9;
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
    rp_server_destroy(srv);
    qsort(samples, n, sizeof *samples, cmp_i64);
    struct layout_result r = {.msgs_per_sec = (double)n / secs,
                              .p50_us = n ? (double)samples[n / 2] / 1e3 : 0,
                              .p99_us =
                                  n ? (double)samples[n * 99 / 100] / 1e3 : 0};
    return r;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : ROUNDS_DEFAULT;
    if (rounds < 1 || rounds > 99)
        rounds = ROUNDS_DEFAULT;
    rp_log_set_level(RP_LOG_WARN);
    double direct[99], grouped[99], ratio[99];
    for (int r = 0; r < rounds; r++) {
        /* Interleaved, the order alternating. */
        if (r % 2) {
            grouped[r] = run_hop(true);
            direct[r] = run_hop(false);
        } else {
            direct[r] = run_hop(false);
            grouped[r] = run_hop(true);
        }
        ratio[r] = grouped[r] / direct[r];
    }
    double d = median(direct, rounds), g = median(grouped, rounds);
    printf("## bench_group: I/O thread to group hop (%d frames, %d rounds)\n\n",
           MSGS, rounds);
    printf("| path | ns/message | ratio |\n| --- | ---: | ---: |\n");
    printf("| on_message on the I/O thread (baseline) | %.0f | 1.00 |\n", d);
    printf("| via a group's inbox and thread | %.0f | %.2f |\n", g,
           median(ratio, rounds));
    printf("| hop cost (difference) | %.0f | |\n\n", g - d);

    double mv[99];
    for (int r = 0; r < rounds; r++)
        mv[r] = run_moves();
    printf("## bench_group: moves (%d sessions x %d rounds)\n\n", MOVERS,
           MOVE_ROUNDS);
    printf("| figure | value |\n| --- | ---: |\n");
    printf("| completed moves per second (median) | %.0f |\n\n",
           median(mv, rounds));

    struct layout_result het = run_layout(RP_GROUP_HETERO);
    struct layout_result hom = run_layout(RP_GROUP_HOMO);
    printf("## bench_group: hetero vs homo, 3 groups, %d closed-loop "
           "clients, %d us CPU per message\n\n",
           CLIENTS, BURN_US);
    printf("| layout | messages/s | p50 us | p99 us | throughput ratio |\n");
    printf("| --- | ---: | ---: | ---: | ---: |\n");
    printf("| homo (one logic thread, baseline) | %.0f | %.0f | %.0f | 1.00 "
           "|\n",
           hom.msgs_per_sec, hom.p50_us, hom.p99_us);
    printf("| hetero (a thread per group) | %.0f | %.0f | %.0f | %.2f |\n",
           het.msgs_per_sec, het.p50_us, het.p99_us,
           het.msgs_per_sec / hom.msgs_per_sec);
    return 0;
}
