/*
 * Helpers shared by the completion-port tests (header-only, pt_ prefix):
 * the backend from the command line, port creation that skips (77) when
 * the kernel refuses io_uring for the uring run, loopback socket pairs.
 */
#ifndef RP_TESTS_PORT_UTIL_H
#define RP_TESTS_PORT_UTIL_H

#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <ringport/port.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PT_WAIT_MS 10000 /* generous: a hang fails, slowness does not */

static enum rp_backend_kind pt_kind = RP_BACKEND_AUTO;

static inline void pt_parse_backend(int argc, char **argv)
{
    int k = rp_backend_parse(t_backend(argc, argv));
    pt_kind = k < 0 ? RP_BACKEND_AUTO : (enum rp_backend_kind)k;
    /* Probe once: a kernel that refuses io_uring skips the uring run. */
    if (pt_kind == RP_BACKEND_URING) {
        struct rp_port_config cfg = {.backend = RP_BACKEND_URING};
        struct rp_port *p;
        int r = rp_port_create(&cfg, &p);
        if (r == -EPERM || r == -ENOSYS || r == -ENOMEM) {
            printf("io_uring refused (%s): skipping\n", strerror(-r));
            exit(77);
        }
        if (r == 0)
            rp_port_destroy(p);
    }
}

static inline struct rp_port *pt_port_cfg(uint32_t flags, uint32_t sq,
                                          uint32_t cq)
{
    struct rp_port_config cfg = {
        .backend = pt_kind, .flags = flags, .sq_entries = sq, .cq_entries = cq};
    struct rp_port *p = NULL;
    int r = rp_port_create(&cfg, &p);
    assert_int_equal(r, 0);
    if (pt_kind != RP_BACKEND_AUTO)
        assert_int_equal(rp_port_backend(p), pt_kind);
    return p;
}

static inline struct rp_port *pt_port(uint32_t flags)
{
    return pt_port_cfg(flags, 0, 0);
}

static inline void pt_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A listening TCP socket on 127.0.0.1 with an ephemeral port. */
static inline int pt_listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (addr)
        *addr = a;
    return fd;
}

/* A connected TCP pair over loopback, both non-blocking. */
static inline void pt_tcp_pair(int *a, int *b)
{
    struct sockaddr_in addr;
    int l = pt_listener(&addr);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&addr, sizeof addr), 0);
    int s = -1;
    for (int i = 0; i < 1000 && s < 0; i++) {
        s = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (s < 0)
            usleep(1000);
    }
    assert_true(s >= 0);
    close(l);
    pt_nonblock(c);
    *a = c;
    *b = s;
}

/* A port of 127.0.0.1 that nobody listens on (bound, then closed). */
static inline struct sockaddr_in pt_dead_addr(void)
{
    struct sockaddr_in addr;
    int l = pt_listener(&addr);
    close(l);
    return addr;
}

static inline struct rp_completion pt_get(struct rp_port *p)
{
    struct rp_completion c;
    memset(&c, 0, sizeof c);
    int r = rp_port_get(p, &c, PT_WAIT_MS);
    assert_int_equal(r, 0);
    return c;
}

/* Reads exactly n bytes from a (possibly non-blocking) fd. */
static inline void pt_read_all(int fd, void *buf, size_t n)
{
    size_t got = 0;
    int idle = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            idle = 0;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            assert_true(++idle < 10000);
            usleep(1000);
        } else {
            fail_msg("read: %zd (%s) after %zu of %zu", r, strerror(errno), got,
                     n);
        }
    }
}

#endif
