/*
 * bench-epoll_echo: the epoll reactor baseline, written the way a careful
 * engineer writes one. One epoll instance and one SO_REUSEPORT listener per
 * thread; level-triggered; non-blocking sockets. A readable socket gets one
 * read() into the connection's buffer and the bytes go straight back with
 * one write(); only when the write is short does the remainder stay in the
 * buffer, EPOLLOUT replace EPOLLIN (the peer is not read while its echo is
 * stuck: backpressure) until it is drained. Level-triggered readiness means
 * no read-until-EAGAIN: the kernel reports the socket again if more is
 * left, which saves the EAGAIN read per message.
 *
 *     bench-epoll_echo --port 7001 --spin-us 30 &
 *     nc 127.0.0.1 7001
 */
#include "bench_common.h"

#include <fcntl.h>
#include <sys/epoll.h>

#define PROG "bench-epoll_echo"
#define BUF_SIZE 16384 /* as ringport's default receive buffer */
#define MAX_EVENTS 256

struct conn {
    int fd;
    uint32_t off, len; /* bytes buf[off, off+len) still to write */
    uint8_t buf[BUF_SIZE];
};

struct loop {
    int ep, lfd;
    unsigned spin_us;
    pthread_t thread;
};

static void conn_close(struct loop *l, struct conn *c)
{
    epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

static int conn_watch(struct loop *l, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    return epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is pending; returns 0 (maybe still pending) or -1 (closed). */
static int conn_write(struct conn *c)
{
    while (c->len > 0) {
        ssize_t w = write(c->fd, c->buf + c->off, c->len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->off += (uint32_t)w;
        c->len -= (uint32_t)w;
    }
    return 0;
}

static void on_readable(struct loop *l, struct conn *c)
{
    ssize_t n = read(c->fd, c->buf, BUF_SIZE);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_close(l, c);
        return;
    }
    c->off = 0;
    c->len = (uint32_t)n;
    if (conn_write(c) < 0) {
        conn_close(l, c);
        return;
    }
    if (c->len > 0 && conn_watch(l, c, EPOLLOUT) < 0)
        conn_close(l, c);
}

static void on_writable(struct loop *l, struct conn *c)
{
    if (conn_write(c) < 0) {
        conn_close(l, c);
        return;
    }
    if (c->len == 0 && conn_watch(l, c, EPOLLIN) < 0)
        conn_close(l, c);
}

static void on_accept(struct loop *l)
{
    /* Bounded: a burst of connects must not starve the sockets. */
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
            return;
        }
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
        }
    }
}

/* Polls without sleeping for up to spin_us, then blocks. */
static int loop_wait(struct loop *l, struct epoll_event *evs)
{
    int n = 0;
    if (l->spin_us) {
        uint64_t end = bs_now_ns() + (uint64_t)l->spin_us * 1000u;
        do
            n = epoll_wait(l->ep, evs, MAX_EVENTS, 0);
        while (n == 0 && bs_now_ns() < end);
        if (n != 0)
            return n;
    }
    return epoll_wait(l->ep, evs, MAX_EVENTS, -1);
}

static void *loop_run(void *arg)
{
    struct loop *l = arg;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = loop_wait(l, evs);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, PROG ": epoll_wait: %s\n", strerror(errno));
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (!c)
                on_accept(l);
            else if (e & EPOLLOUT)
                on_writable(l, c);
            else if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(l, c);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bs_opts o;
    struct loop loops[BS_MAX_THREADS];
    int lfds[BS_MAX_THREADS];
    sigset_t set;

    bs_parse(argc, argv, "raw echo on an epoll reactor per thread", &o);
    uint16_t port = bs_listen_all(PROG, o.port, o.threads, 1, lfds);
    bs_block_signals(&set);
    for (unsigned i = 0; i < o.threads; i++) {
        struct loop *l = &loops[i];
        l->lfd = lfds[i];
        l->spin_us = o.spin_us;
        l->ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (l->ep < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->lfd, &ev) < 0) {
            fprintf(stderr, PROG ": epoll: %s\n", strerror(errno));
            return 1;
        }
        if (pthread_create(&l->thread, NULL, loop_run, l) != 0) {
            fprintf(stderr, PROG ": cannot start a thread\n");
            return 1;
        }
    }
    bs_announce(port);
    bs_wait_and_exit(&set);
}
