/*
 * Shared plumbing of the echo-model programs (see echo_common.h): flags,
 * the listening socket and the dedicated accept thread. The accept thread
 * is the lecture's design: a thread of its own sits in a plain blocking
 * accept4() and hands each new socket to the I/O side, so no AcceptEx (no
 * accept op on the port) is needed.
 */
#include "echo_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f, const char *prog, bool with_threads)
{
    fprintf(f,
            "usage: %s [--port N] [--listen ADDR] [--backend auto|uring|epoll]"
            "%s [--help]\n"
            "  --port N        TCP port (default 7000; 0 picks a free one)\n"
            "  --listen ADDR   numeric address to bind (default 127.0.0.1)\n"
            "  --backend B     auto, uring or epoll (default auto)\n"
            "%s"
            "Prints \"listening on ADDR:PORT\" first; stops on SIGINT or "
            "SIGTERM.\n",
            prog, with_threads ? " [--threads N]" : "",
            with_threads ? "  --threads N     worker threads (default 2)\n"
                         : "");
}

__attribute__((format(printf, 2, 3), noreturn)) static void
bad_flag(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

static long parse_long(const char *prog, const char *flag, const char *s,
                       long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants a number in [%ld, %ld], got '%s'\n", prog,
                flag, lo, hi, s);
        exit(2);
    }
    return v;
}

void echo_parse_args(int argc, char **argv, struct echo_opts *o,
                     bool with_threads)
{
    const char *prog =
        strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout, prog, with_threads);
            exit(0);
        }
        bool known = strcmp(a, "--port") == 0 || strcmp(a, "--listen") == 0 ||
                     strcmp(a, "--backend") == 0 ||
                     (with_threads && strcmp(a, "--threads") == 0);
        if (!known)
            bad_flag(prog, "unknown flag '%s'", a);
        if (i + 1 >= argc)
            bad_flag(prog, "%s needs a value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0) {
            o->port = (uint16_t)parse_long(prog, a, v, 0, 65535);
        } else if (strcmp(a, "--listen") == 0) {
            o->listen = v;
        } else if (strcmp(a, "--backend") == 0) {
            int k = rp_backend_parse(v);
            if (k < 0)
                bad_flag(prog,
                         "--backend wants auto, uring or epoll, got "
                         "'%s'",
                         v);
            o->backend = (enum rp_backend_kind)k;
        } else {
            o->threads = (int)parse_long(prog, a, v, 1, 256);
        }
    }
}

void echo_die(const char *what, int err)
{
    fprintf(stderr, "echo: %s: %s\n", what, strerror(-err));
    exit(1);
}

int echo_port_create(const struct echo_opts *o, uint32_t flags,
                     struct rp_port **out)
{
    struct rp_port_config cfg = {.backend = o->backend, .flags = flags};
    return rp_port_create(&cfg, out);
}

/* Fills 'ss' from a numeric IPv4 or IPv6 address; -EINVAL otherwise. */
static int parse_addr(const char *host, uint16_t port,
                      struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof *in6;
        return 0;
    }
    return -EINVAL;
}

int echo_listen(const struct echo_opts *o, struct echo_acceptor *a)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1, err;
    if (parse_addr(o->listen, o->port, &ss, &len) < 0) {
        fprintf(stderr, "echo: --listen wants a numeric address, got '%s'\n",
                o->listen);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* TCP_NODELAY on the listener is inherited by every accepted socket. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        goto fail;

    char host[INET6_ADDRSTRLEN];
    uint16_t port;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
        port = ntohs(in4->sin_port);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    printf(ss.ss_family == AF_INET ? "listening on %s:%u\n"
                                   : "listening on [%s]:%u\n",
           host, port);
    fflush(stdout);
    a->listen_fd = fd;
    return 0;

fail:
    err = -errno;
    close(fd);
    return err;
}

static void *accept_main(void *arg)
{
    struct echo_acceptor *a = arg;
    for (;;) {
        int fd =
            accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            a->handoff(fd, a->user);
            continue;
        }
        switch (errno) {
        case EINTR:
        case ECONNABORTED:
        case EPROTO: continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM: {
            /* Out of descriptors: never spin; try again a little later. */
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        default:
            /* EINVAL after echo_accept_stop()'s shutdown: we are done. */
            return NULL;
        }
    }
}

int echo_accept_start(struct echo_acceptor *a, echo_handoff_fn handoff,
                      void *user)
{
    a->handoff = handoff;
    a->user = user;
    return -pthread_create(&a->thread, NULL, accept_main, a);
}

void echo_accept_stop(struct echo_acceptor *a)
{
    /* Linux wakes a thread blocked in accept() on a listening socket that
       is shut down: accept4() fails with EINVAL and the thread returns. */
    shutdown(a->listen_fd, SHUT_RDWR);
    pthread_join(a->thread, NULL);
    close(a->listen_fd);
    a->listen_fd = -1;
}

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

void echo_block_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    /* A shell starts background jobs with SIGINT ignored, and an ignored
       signal is discarded even while blocked: restore the default so
       sigwait() sees it. Blocked, the default action never runs. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    /* The port sends with MSG_NOSIGNAL; this is for anything else. */
    signal(SIGPIPE, SIG_IGN);
}

int echo_wait_for_stop(void)
{
    sigset_t set;
    int sig = 0;
    stop_signals(&set);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}
