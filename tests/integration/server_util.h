/*
 * Helpers shared by the server integration tests (header-only, su_ prefix):
 * an in-process server on 127.0.0.1 with an ephemeral port and this run's
 * backend, a recorder of on_join/on_leave that echoes in framed or raw
 * mode, and a blocking client side (connect, send a frame, read a frame
 * with a timeout, wait for the server to close). Every wait is bounded by
 * SU_WAIT_MS: a hang fails the test, slowness does not.
 */
#ifndef RP_TESTS_SERVER_UTIL_H
#define RP_TESTS_SERVER_UTIL_H

#include "helpers.h"

#include <ringport/packet.h>
#include <ringport/port.h>
#include <ringport/server.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SU_WAIT_MS 15000 /* bound on any one wait */
#define SU_MAX_SIDS 4096 /* sessions one test may record */
#define SU_MAX_FRAME (4 + 65535)

static enum rp_backend_kind su_kind = RP_BACKEND_AUTO;

/* The backend from --backend=; exits 77 (skip) when the kernel refuses
   io_uring for the uring run. */
static inline void su_parse_backend(int argc, char **argv)
{
    int k = rp_backend_parse(t_backend(argc, argv));
    su_kind = k < 0 ? RP_BACKEND_AUTO : (enum rp_backend_kind)k;
    if (su_kind == RP_BACKEND_URING) {
        struct rp_port_config cfg = {.backend = RP_BACKEND_URING};
        struct rp_port *p;
        int r = rp_port_create(&cfg, &p);
        if (r < 0) {
            printf("io_uring refused (%s): skipping\n", strerror(-r));
            exit(77);
        }
        rp_port_destroy(p);
    }
}

static inline uint64_t su_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void su_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Re-evaluates 'cond' every 2 ms until it holds or SU_WAIT_MS pass; the
   caller asserts 'cond' afterwards. */
#define SU_WAIT(cond)                                                          \
    do {                                                                       \
        uint64_t su_end_ = su_now_ms() + SU_WAIT_MS;                           \
        while (!(cond) && su_now_ms() < su_end_)                               \
            su_sleep_ms(2);                                                    \
    } while (0)

/* ---- what the callbacks saw ---------------------------------------------- */

/*
 * Filled by the su_on_* callbacks on the I/O threads, read by the test
 * thread. Every joined sid and every left sid is kept, so a test can check
 * that each session left exactly once.
 */
struct su_events {
    pthread_mutex_t lock;
    rp_sid joined[SU_MAX_SIDS];
    rp_sid left[SU_MAX_SIDS];
    size_t n_joined, n_left;
    _Atomic uint64_t joins, leaves;
    _Atomic uint64_t by_reason[RP_LEAVE_REASON_COUNT];
    _Atomic uint64_t messages; /* frames (framed) or chunks (raw) */
    _Atomic int send_errors;   /* echo sends refused other than ENOBUFS */
    _Atomic bool echo;         /* echo what arrives (default on) */
    struct rp_server *srv;
};

static inline void su_events_reset(struct su_events *ev)
{
    memset(ev, 0, sizeof *ev);
    pthread_mutex_init(&ev->lock, NULL);
    atomic_store(&ev->echo, true);
}

static inline void su_on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    struct su_events *ev = user;
    (void)srv;
    pthread_mutex_lock(&ev->lock);
    if (ev->n_joined < SU_MAX_SIDS)
        ev->joined[ev->n_joined++] = sid;
    pthread_mutex_unlock(&ev->lock);
    atomic_fetch_add(&ev->joins, 1);
}

static inline void su_on_leave(struct rp_server *srv, rp_sid sid, void *data,
                               enum rp_leave_reason reason, void *user)
{
    struct su_events *ev = user;
    (void)srv;
    (void)data;
    pthread_mutex_lock(&ev->lock);
    if (ev->n_left < SU_MAX_SIDS)
        ev->left[ev->n_left++] = sid;
    pthread_mutex_unlock(&ev->lock);
    if ((unsigned)reason < RP_LEAVE_REASON_COUNT)
        atomic_fetch_add(&ev->by_reason[reason], 1);
    atomic_fetch_add(&ev->leaves, 1);
}

static inline void su_on_message(struct rp_server *srv, rp_sid sid, void *data,
                                 const struct rp_message *msg, void *user)
{
    struct su_events *ev = user;
    struct rp_packet *pkt;
    (void)data;
    atomic_fetch_add(&ev->messages, 1);
    if (!atomic_load(&ev->echo))
        return;
    if (rp_message_to_packet(msg, &pkt) < 0) {
        atomic_fetch_add(&ev->send_errors, 1);
        return;
    }
    int r = rp_server_send(srv, sid, pkt);
    if (r < 0 && r != -ENOBUFS)
        atomic_fetch_add(&ev->send_errors, 1);
    rp_packet_unref(pkt);
}

static inline void su_on_data(struct rp_server *srv, rp_sid sid, void *data,
                              const void *bytes, size_t len, void *user)
{
    struct su_events *ev = user;
    (void)data;
    atomic_fetch_add(&ev->messages, 1);
    if (!atomic_load(&ev->echo))
        return;
    int r = rp_server_send_raw(srv, sid, bytes, len);
    if (r < 0 && r != -ENOBUFS)
        atomic_fetch_add(&ev->send_errors, 1);
}

static inline int su_sid_cmp(const void *a, const void *b)
{
    rp_sid x = *(const rp_sid *)a, y = *(const rp_sid *)b;
    return x < y ? -1 : x > y;
}

/* Every joined session left exactly once and nothing else left. Call
   once no session is open. */
static inline void su_events_check_once(struct su_events *ev)
{
    pthread_mutex_lock(&ev->lock);
    size_t nj = ev->n_joined, nl = ev->n_left;
    assert_true(nj < SU_MAX_SIDS && nl < SU_MAX_SIDS);
    assert_int_equal(nj, nl);
    qsort(ev->joined, nj, sizeof(rp_sid), su_sid_cmp);
    qsort(ev->left, nl, sizeof(rp_sid), su_sid_cmp);
    for (size_t i = 0; i < nj; i++) {
        assert_true(ev->joined[i] != RP_SID_NONE);
        assert_true(ev->joined[i] == ev->left[i]);
        if (i > 0)
            assert_true(ev->joined[i] != ev->joined[i - 1]);
    }
    pthread_mutex_unlock(&ev->lock);
}

/* ---- the server ---------------------------------------------------------- */

/* Defaults for a test: loopback, ephemeral port, this run's backend, the
   recorder's callbacks in framed mode. */
static inline void su_config(struct rp_server_config *cfg, struct su_events *ev)
{
    rp_server_config_init(cfg);
    cfg->listen_addr = "127.0.0.1";
    cfg->port = 0;
    cfg->backend = su_kind;
    cfg->cb.on_join = su_on_join;
    cfg->cb.on_leave = su_on_leave;
    cfg->cb.on_message = su_on_message;
    cfg->cb.on_data = su_on_data;
    cfg->user = ev;
}

static inline struct rp_server *su_start(const struct rp_server_config *cfg)
{
    struct rp_server *srv = NULL;
    struct su_events *ev = cfg->user;
    assert_int_equal(rp_server_create(cfg, &srv), 0);
    assert_non_null(srv);
    assert_true(rp_server_port(srv) > 0);
    if (ev)
        ev->srv = srv;
    assert_int_equal(rp_server_start(srv), 0);
    if (su_kind != RP_BACKEND_AUTO)
        assert_int_equal(rp_server_backend(srv), su_kind);
    return srv;
}

static inline void su_stats(struct rp_server *srv, struct rp_server_stats *s)
{
    rp_server_get_stats(srv, s);
}

static inline uint64_t su_sessions(struct rp_server *srv)
{
    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    return s.sessions;
}

static inline uint64_t su_leaves(struct rp_server *srv,
                                 enum rp_leave_reason reason)
{
    struct rp_server_stats s;
    rp_server_get_stats(srv, &s);
    return s.leaves[reason];
}

static inline uint64_t su_packets_alive(void)
{
    struct rp_packet_pool_stats ps;
    rp_packet_pool_stats(&ps);
    return ps.created - ps.freed;
}

/*
 * The end of every test: waits until no session is open (the clients are
 * closed by then, or the stop ends them), stops and destroys the server,
 * and checks that every on_leave ran once, the stats agree with the
 * callbacks, and no packet outlived the server.
 */
static inline void su_finish(struct rp_server *srv, struct su_events *ev,
                             uint64_t packets_before)
{
    struct rp_server_stats s;
    rp_server_stop(srv);
    rp_server_get_stats(srv, &s);
    assert_int_equal(s.sessions, 0);
    uint64_t leaves = 0;
    for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++) {
        leaves += s.leaves[r];
        assert_int_equal(s.leaves[r], atomic_load(&ev->by_reason[r]));
    }
    assert_int_equal(leaves, s.accepts);
    assert_int_equal(atomic_load(&ev->joins), s.accepts);
    assert_int_equal(atomic_load(&ev->leaves), s.accepts);
    su_events_check_once(ev);
    rp_server_destroy(srv);
    ev->srv = NULL;
    /* The stop joined every thread: no send can still hold a packet. */
    assert_int_equal(su_packets_alive(), packets_before);
}

/* ---- the client side ----------------------------------------------------- */

/* A TCP socket to the server, blocking, TCP_NODELAY, every call bounded by
   SO_RCVTIMEO/SO_SNDTIMEO. 'rcvbuf' > 0 shrinks the receive buffer (set
   before connect so the window starts small). */
static inline int su_connect_buf(uint16_t port, int rcvbuf)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {SU_WAIT_MS / 1000, 0};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int r;
    do
        r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        fail_msg("connect to port %u: %s", port, strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static inline int su_connect(uint16_t port)
{
    return su_connect_buf(port, 0);
}

static inline void su_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/*
 * Peers that never read: writes 'stream' (again and again) on each of the
 * n non-blocking sockets in fd[] until the server cuts every one (EPIPE,
 * ECONNRESET, POLLERR or POLLHUP) or 'wait_ms' pass with no progress (no
 * byte sent and no peer cut: a stall, not a slow machine, ends it; 'cap'
 * bounds the whole). sent[i] counts the bytes each got into its kernel
 * buffer; a peer past 'cap' bytes fails the test (the server's queue would
 * be unbounded). Returns how many were still not cut. cut[] and sent[] are
 * the caller's, n entries each.
 */
static inline int su_flood_until_cut(const int *fd, bool *cut, uint64_t *sent,
                                     int n, const uint8_t *stream,
                                     size_t stream_len, uint64_t cap,
                                     uint64_t wait_ms)
{
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    assert_non_null(p);
    uint64_t end = su_now_ms() + wait_ms;
    int left = 0;
    for (int i = 0; i < n; i++)
        left += !cut[i];
    while (left > 0 && su_now_ms() < end) {
        for (int i = 0; i < n; i++) {
            p[i] =
                (struct pollfd){.fd = cut[i] ? -1 : fd[i], .events = POLLOUT};
            while (!cut[i]) {
                assert_true(sent[i] < cap);
                size_t off = sent[i] % stream_len;
                ssize_t r =
                    send(fd[i], stream + off, stream_len - off, MSG_NOSIGNAL);
                if (r > 0) {
                    sent[i] += (uint64_t)r;
                    end = su_now_ms() + wait_ms;
                    continue;
                }
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    break;
                cut[i] = true; /* EPIPE / ECONNRESET: the server cut it */
                left--;
                end = su_now_ms() + wait_ms;
            }
        }
        poll(p, (nfds_t)n, 10);
        for (int i = 0; i < n; i++)
            if (!cut[i] && (p[i].revents & (POLLERR | POLLHUP))) {
                cut[i] = true;
                left--;
                end = su_now_ms() + wait_ms;
            }
    }
    free(p);
    return left;
}

/* Closes with an RST instead of a FIN (SO_LINGER 0). */
static inline void su_close_rst(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static inline void su_send_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            fail_msg("send: %s", r < 0 ? strerror(errno) : "0");
        p += r;
        n -= (size_t)r;
    }
}

/* The wire bytes of a frame (docs/protocol.md) into 'out'; returns the
   length. 'out' holds 4 + len bytes. */
static inline size_t su_frame(uint8_t *out, uint16_t type, const void *payload,
                              size_t len)
{
    out[0] = (uint8_t)len;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)type;
    out[3] = (uint8_t)(type >> 8);
    if (len)
        memcpy(out + 4, payload, len);
    return 4 + len;
}

static inline void su_send_frame(int fd, uint16_t type, const void *payload,
                                 size_t len)
{
    static _Thread_local uint8_t buf[SU_MAX_FRAME];
    assert_true(len <= 65535);
    su_send_all(fd, buf, su_frame(buf, type, payload, len));
}

/*
 * Reads exactly 'n' bytes within 'timeout_ms'. Returns 0, -ETIMEDOUT,
 * -ECONNABORTED for an orderly close by the server (EOF), or -errno of
 * recv (-ECONNRESET). Works on blocking and non-blocking sockets.
 */
static inline int su_read_full(int fd, void *buf, size_t n, int timeout_ms)
{
    uint8_t *p = buf;
    uint64_t end = su_now_ms() + (uint64_t)timeout_ms;
    while (n > 0) {
        uint64_t now = su_now_ms();
        if (now >= end)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(end - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t got = recv(fd, p, n, MSG_DONTWAIT);
        if (got == 0)
            return -ECONNABORTED;
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

/* Reads one frame: its payload into 'payload' (room for 'cap'). Returns
   the payload length, or su_read_full's errors, or -EMSGSIZE if it does
   not fit. */
static inline int su_read_frame(int fd, uint16_t *type, uint8_t *payload,
                                size_t cap, int timeout_ms)
{
    uint8_t h[4];
    int r = su_read_full(fd, h, 4, timeout_ms);
    if (r < 0)
        return r;
    size_t len = (size_t)h[0] | (size_t)h[1] << 8;
    *type = (uint16_t)(h[2] | h[3] << 8);
    if (len > cap)
        return -EMSGSIZE;
    r = su_read_full(fd, payload, len, timeout_ms);
    return r < 0 ? r : (int)len;
}

/* Expects exactly this frame next. */
static inline void su_expect_frame(int fd, uint16_t type, const void *payload,
                                   size_t len)
{
    static _Thread_local uint8_t got[65535];
    uint16_t t = 0;
    int r = su_read_frame(fd, &t, got, sizeof got, SU_WAIT_MS);
    if (r < 0)
        fail_msg("expected a frame of %zu bytes: %s", len, strerror(-r));
    assert_int_equal(t, type);
    assert_int_equal((size_t)r, len);
    assert_memory_equal(got, payload, len);
}

/* One frame there and back: the session is up and echoing. */
static inline void su_ping(int fd, uint16_t type)
{
    uint8_t msg[16];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(type * 31 + i);
    su_send_frame(fd, type, msg, sizeof msg);
    su_expect_frame(fd, type, msg, sizeof msg);
}

/*
 * Waits until the server closes the connection, discarding anything that
 * arrives first. Returns 0 (EOF or reset seen) or -ETIMEDOUT.
 */
static inline int su_wait_closed(int fd, int timeout_ms)
{
    static _Thread_local uint8_t sink[65536];
    uint64_t end = su_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = su_now_ms();
        if (now >= end)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(end - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t got = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
            return 0;
    }
}

/* True if the server has closed 'fd' (EOF or reset pending) now. */
static inline bool su_is_closed_now(int fd)
{
    uint8_t b;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0)
        return false;
    ssize_t got = recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    return got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR);
}

/* ---- process resources -------------------------------------------------- */

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"); 0 if absent. */
static inline uint64_t su_proc_kib(const char *field)
{
    char line[256];
    uint64_t v = 0;
    size_t flen = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            v = strtoull(line + flen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* User + system CPU time of the whole process, in microseconds. */
static inline uint64_t su_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

#endif
