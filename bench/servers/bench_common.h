/*
 * What every competitor server in bench/servers/ shares (header-only, bs_
 * prefix): the command line (--port, --threads, --spin-us, --help), the
 * listening sockets (one per thread on the same port with SO_REUSEPORT, so
 * the kernel spreads connections over the threads' own loops), and the stop
 * signal (SIGINT/SIGTERM end the process with status 0).
 *
 * These servers are baselines for the side-by-side runs
 * (bench/side_by_side.sh); each is written the way its model is best used,
 * because ringport has to beat the best of each, not a strawman.
 */
#ifndef RP_BENCH_COMMON_H
#define RP_BENCH_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BS_MAX_THREADS 64

struct bs_opts {
    uint16_t port;    /* 0 = a free port */
    unsigned threads; /* 1..BS_MAX_THREADS */
    unsigned spin_us; /* poll this long before a blocking wait; 0 = never */
};

static inline void bs_usage(FILE *f, const char *prog, const char *what)
{
    fprintf(f,
            "usage: %s [--port N] [--threads N] [--spin-us US] [--help]\n"
            "  %s\n"
            "  --port N      TCP port on 127.0.0.1 (default 0: a free one)\n"
            "  --threads N   event loops, one per thread (default 1)\n"
            "  --spin-us US  poll for events this long before a blocking "
            "wait\n"
            "                (default 0: block at once)\n"
            "Prints \"listening on 127.0.0.1:PORT\" first; exits 0 on "
            "SIGINT or SIGTERM.\n",
            prog, what);
}

static inline unsigned long bs_number(const char *prog, const char *flag,
                                      const char *s, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || v > max) {
        fprintf(stderr, "%s: %s wants 0..%lu, got '%s'\n", prog, flag, max, s);
        exit(2);
    }
    return v;
}

static inline void bs_parse(int argc, char **argv, const char *what,
                            struct bs_opts *o)
{
    const char *prog = argv[0];
    o->port = 0;
    o->threads = 1;
    o->spin_us = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            bs_usage(stdout, prog, what);
            exit(0);
        }
        if (strcmp(f, "--port") != 0 && strcmp(f, "--threads") != 0 &&
            strcmp(f, "--spin-us") != 0) {
            fprintf(stderr, "%s: unknown flag '%s' (try --help)\n", prog, f);
            exit(2);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", prog, f);
            exit(2);
        }
        const char *v = argv[++i];
        if (strcmp(f, "--port") == 0)
            o->port = (uint16_t)bs_number(prog, f, v, 65535);
        else if (strcmp(f, "--threads") == 0)
            o->threads = (unsigned)bs_number(prog, f, v, BS_MAX_THREADS);
        else
            o->spin_us = (unsigned)bs_number(prog, f, v, 1000000);
    }
    if (o->threads == 0) {
        fprintf(stderr, "%s: --threads wants 1..%d\n", prog, BS_MAX_THREADS);
        exit(2);
    }
}

/*
 * A listening socket on 127.0.0.1:'port' (0 = a free one) with
 * SO_REUSEPORT, so each thread can open its own on the same port; the
 * bound port goes to '*bound'. TCP_NODELAY is set on the listener and
 * inherited by every accepted socket. Returns the fd or -errno.
 */
static inline int bs_listen(uint16_t port, int nonblock, uint16_t *bound)
{
    int fd =
        socket(AF_INET,
               SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

/*
 * Opens one listener per thread on one port (the first picks it when
 * 'port' is 0). Exits with status 1 and a line on failure.
 */
static inline uint16_t bs_listen_all(const char *prog, uint16_t port,
                                     unsigned n, int nonblock, int *fds)
{
    uint16_t bound = port;
    for (unsigned i = 0; i < n; i++) {
        int fd = bs_listen(bound, nonblock, &bound);
        if (fd < 0) {
            fprintf(stderr, "%s: cannot listen on 127.0.0.1:%u: %s\n", prog,
                    bound, strerror(-fd));
            exit(1);
        }
        fds[i] = fd;
    }
    return bound;
}

/* Blocks SIGINT/SIGTERM (call before any thread starts, so every thread
   inherits the mask) and ignores SIGPIPE. */
static inline void bs_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static inline void bs_announce(uint16_t port)
{
    printf("listening on 127.0.0.1:%u\n", port);
    fflush(stdout);
}

/*
 * Waits for SIGINT/SIGTERM, then ends the process with status 0. The
 * event loops are not unwound: a baseline has nothing to flush, and the
 * kernel closes every socket.
 */
__attribute__((noreturn)) static inline void bs_wait_and_exit(sigset_t *set)
{
    int sig;
    while (sigwait(set, &sig) != 0)
        ;
    fflush(stdout);
    _exit(0);
}

static inline uint64_t bs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
