/*
 * Helpers for the network-server tests (header-only, nt_ prefix): a server
 * with recording callbacks, blocking loopback clients, bounded waits.
 */
#ifndef RP_TESTS_NET_UTIL_H
#define RP_TESTS_NET_UTIL_H

#include "port_util.h"

#include <poll.h>
#include <pthread.h>
#include <ringport/server.h>
#include <stdatomic.h>
#include <sys/time.h>

#define NT_MAX_SIDS 1024

/* What the callbacks saw; the callbacks run on I/O threads. */
struct nt_record {
    pthread_mutex_t lock;
    rp_sid joined[NT_MAX_SIDS];
    int njoined;
    rp_sid left[NT_MAX_SIDS];
    enum rp_leave_reason reasons[NT_MAX_SIDS];
    int nleft;
    _Atomic int messages;
    bool echo; /* echo every message / chunk back */
};

static struct nt_record nt_rec = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline void nt_reset(void)
{
    pthread_mutex_lock(&nt_rec.lock);
    nt_rec.njoined = nt_rec.nleft = 0;
    atomic_store(&nt_rec.messages, 0);
    nt_rec.echo = true;
    pthread_mutex_unlock(&nt_rec.lock);
}

static inline void nt_on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    (void)srv, (void)user;
    pthread_mutex_lock(&nt_rec.lock);
    if (nt_rec.njoined < NT_MAX_SIDS)
        nt_rec.joined[nt_rec.njoined++] = sid;
    pthread_mutex_unlock(&nt_rec.lock);
}

static inline void nt_on_leave(struct rp_server *srv, rp_sid sid, void *data,
                               enum rp_leave_reason why, void *user)
{
    (void)user;
    (void)data;
    /* Already stale for every API. */
    assert_int_equal(rp_server_disconnect(srv, sid), -ENOTCONN);
    pthread_mutex_lock(&nt_rec.lock);
    if (nt_rec.nleft < NT_MAX_SIDS) {
        nt_rec.reasons[nt_rec.nleft] = why;
        nt_rec.left[nt_rec.nleft++] = sid;
    }
    pthread_mutex_unlock(&nt_rec.lock);
}

static inline void nt_on_message(struct rp_server *srv, rp_sid sid, void *data,
                                 const struct rp_message *msg, void *user)
{
    (void)user;
    (void)data;
    atomic_fetch_add(&nt_rec.messages, 1);
    if (!nt_rec.echo)
        return;
    struct rp_packet *pkt;
    assert_int_equal(rp_message_to_packet(msg, &pkt), 0);
    /* A session kicked from another thread refuses further sends. */
    int r = rp_server_send(srv, sid, pkt);
    assert_true(r == 0 || r == -ENOTCONN || r == -ENOBUFS);
    rp_packet_unref(pkt);
}

static inline void nt_on_data(struct rp_server *srv, rp_sid sid, void *data,
                              const void *bytes, size_t len, void *user)
{
    (void)user;
    (void)data;
    atomic_fetch_add(&nt_rec.messages, 1);
    if (nt_rec.echo) {
        int r = rp_server_send_raw(srv, sid, bytes, len);
        assert_true(r == 0 || r == -ENOTCONN || r == -ENOBUFS);
    }
}

static inline int nt_count(int *field)
{
    pthread_mutex_lock(&nt_rec.lock);
    int n = *field;
    pthread_mutex_unlock(&nt_rec.lock);
    return n;
}

/* Polls 'cond' every ms for up to 10 s (a bound against hangs, not a
   timing assertion) and asserts that it held when seen: not evaluated
   again, since a condition on counts other threads move (joins still on
   their way) may be true at the wait's end and false a moment later. */
#define NT_WAIT_FOR(cond)                                                      \
    do {                                                                       \
        int nt_i_ = 0;                                                         \
        bool nt_ok_;                                                           \
        while (!(nt_ok_ = (cond)) && nt_i_++ < 10000)                          \
            usleep(1000);                                                      \
        assert_true(nt_ok_);                                                   \
    } while (0)

static inline void nt_config(struct rp_server_config *cfg)
{
    rp_server_config_init(cfg);
    cfg->port = 0;
    cfg->backend = pt_kind;
    cfg->cb.on_join = nt_on_join;
    cfg->cb.on_leave = nt_on_leave;
    cfg->cb.on_message = nt_on_message;
    cfg->cb.on_data = nt_on_data;
}

static inline struct rp_server *nt_start(const struct rp_server_config *cfg)
{
    struct rp_server *srv = NULL;
    assert_int_equal(rp_server_create(cfg, &srv), 0);
    assert_int_equal(rp_server_start(srv), 0);
    if (pt_kind != RP_BACKEND_AUTO)
        assert_int_equal(rp_server_backend(srv), pt_kind);
    return srv;
}

/* A blocking client connected to the server (10 s receive timeout). */
static inline int nt_connect(struct rp_server *srv)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(rp_server_port(srv)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline void nt_write_all(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const char *)buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r > 0);
        done += (size_t)r;
    }
}

/* Reads exactly n bytes; EINTR is retried (io_uring teardown may cause a
   spurious one: notes/port-bugs.md). */
static inline void nt_read_all(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("read: %zd (%s) after %zu of %zu", r,
                     r < 0 ? strerror(errno) : "EOF", got, n);
        got += (size_t)r;
    }
}

/* Reads until EOF or reset; returns the bytes that came first (<= cap). */
static inline size_t nt_read_to_eof(int fd, void *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        char tmp[4096];
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            fail_msg("no EOF within the receive timeout");
        if (r <= 0)
            return got;
        size_t take = (size_t)r < cap - got ? (size_t)r : cap - got;
        memcpy((char *)buf + got, tmp, take);
        got += take;
    }
}

static inline size_t nt_frame(uint8_t *out, uint16_t type, const void *p,
                              uint16_t len)
{
    out[0] = (uint8_t)len;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)type;
    out[3] = (uint8_t)(type >> 8);
    memcpy(out + 4, p, len);
    return 4u + len;
}

#endif
