/*
 * The cluster benchmarks' blocking game-protocol connection (gm_wire.h):
 * what bench-cluster-latency and bench-cluster-races both need to talk to
 * a shard, and nothing of what they measure.
 */
#include "gm_wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void gw_die(const char *what)
{
    fprintf(stderr, "%s: %s\n", program_invocation_short_name, what);
    exit(1);
}

int64_t gw_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int gw_connect(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct timeval tv = {10, 0};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        gw_die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            gw_die("read (closed or 10 s without a reply)");
        p += r;
        n -= (size_t)r;
    }
}

void gw_send(int fd, const struct gm_msg *m)
{
    uint8_t b[GM_PAYLOAD_MAX + 4];
    int n = gm_encode_frame(m, b, sizeof b);
    if (n < 0 || write(fd, b, (size_t)n) != n)
        gw_die("write");
}

void gw_recv(int fd, struct gm_msg *m, uint8_t *buf)
{
    uint8_t h[4];
    read_full(fd, h, 4);
    uint16_t len = (uint16_t)(h[0] | h[1] << 8);
    uint16_t type = (uint16_t)(h[2] | h[3] << 8);
    if (len > GM_PAYLOAD_MAX)
        gw_die("oversized reply");
    read_full(fd, buf, len);
    if (gm_decode(type, buf, len, m) < 0)
        gw_die("undecodable reply");
}
