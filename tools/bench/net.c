/*
 * Resolving --host and starting connects. Only the address given is ever
 * contacted. One source address has about 28k ephemeral ports towards one
 * server port; when connect says EADDRNOTAVAIL and the target is in
 * 127.0.0.0/8 (where every 127.x.y.z is local), the sockets after it bind
 * to 127.0.0.2, .3, ... first (IP_BIND_ADDRESS_NO_PORT: the port is picked
 * at connect time, for the whole 4-tuple).
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#define SRC_LAST 254 /* 127.0.0.254 */

int net_resolve(struct bench_opts *o)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)&o->addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&o->addr;
    memset(&o->addr, 0, sizeof o->addr);
    if (inet_pton(AF_INET, o->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(o->port);
        o->addrlen = sizeof *in4;
        o->loopback4 = (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
        return 0;
    }
    if (inet_pton(AF_INET6, o->host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(o->port);
        o->addrlen = sizeof *in6;
        return 0;
    }
    return -EINVAL;
}

/* Source index k >= 1 means 127.0.0.(k + 1); 0 means the kernel's choice. */
static int bind_source(int fd, uint32_t k)
{
    struct sockaddr_in src = {.sin_family = AF_INET};
    int one = 1;
    src.sin_addr.s_addr = htonl(0x7F000001u + k);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    return bind(fd, (struct sockaddr *)&src, sizeof src) < 0 ? -errno : 0;
}

int net_connect(const struct bench_opts *o)
{
    for (;;) {
        uint32_t k = atomic_load(&g_run.src_index);
        int one = 1, r = 0;
        int fd = socket(o->addr.ss_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (k > 0)
            r = bind_source(fd, k);
        if (r == 0 &&
            connect(fd, (const struct sockaddr *)&o->addr, o->addrlen) < 0 &&
            errno != EINPROGRESS)
            r = -errno;
        if (r == 0)
            return fd;
        close(fd);
        if (r != -EADDRNOTAVAIL || !o->loopback4 || k >= SRC_LAST)
            return r;
        /* Another worker may have moved on already; either way, retry
           with the next source. */
        atomic_compare_exchange_strong(&g_run.src_index, &k, k + 1);
    }
}
