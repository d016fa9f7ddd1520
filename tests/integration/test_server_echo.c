/*
 * The server as an echo: every byte comes back, in order, to the client
 * that sent it, whatever the cut of the stream; clients that vanish do not
 * disturb the others; a broadcast shares one packet among 1,000 sessions.
 * The server runs in this process (server_util.h); the clients are plain
 * sockets driven by a few threads with epoll. Frame 'seq' of client 'c' is
 * a pure function of (seed, c, seq), so the reader regenerates what it
 * expects and checks every byte and the type.
 */
#include "server_util.h"

#include <sys/epoll.h>

#define MANY_CLIENTS 1000
#define DRIVER_THREADS 4
#define MAX_TEST_PAYLOAD 1500
#define DEPTH 3

static struct su_events ev;
static uint64_t seed; /* frames are a function of it; never advanced */
static uint64_t rng;  /* t_rand state for everything else */

/* ---- deterministic frames --------------------------------------------- */

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Frame 'seq' of client 'id' on the wire into 'out'; returns its length.
   Payload: id (4 bytes), seq (4 bytes), then a stream of (seed, id, seq). */
static uint32_t frame_make(uint8_t *out, uint32_t id, uint32_t seq)
{
    uint64_t h = mix(seed ^ ((uint64_t)id << 32) ^ seq);
    uint32_t len = 8 + (uint32_t)(h % (MAX_TEST_PAYLOAD - 8 + 1));
    uint8_t *p = out + 4;
    out[0] = (uint8_t)len;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)(id * 7 + seq);
    out[3] = (uint8_t)((id * 7 + seq) >> 8);
    memcpy(p, &id, 4);
    memcpy(p + 4, &seq, 4);
    for (uint32_t i = 8; i < len; i++) {
        if ((i & 7) == 0)
            h = mix(h + 0x9E3779B97F4A7C15ull);
        p[i] = (uint8_t)(h >> (8 * (i & 7)));
    }
    return 4 + len;
}

/* ---- the client driver ------------------------------------------------- */

/*
 * One client: frames [recv_seq, send_seq) are in flight; send_off bytes of
 * frame send_seq are written, recv_off bytes of frame recv_seq are echoed
 * and checked. A client with vanish_at < frames sends half of that frame
 * once every earlier echo is in, then closes (FIN, or RST if 'rst').
 */
struct client {
    int fd;
    uint32_t id;
    uint32_t frames, vanish_at;
    bool rst, done, gone;
    uint32_t send_seq, recv_seq;
    uint32_t send_off, recv_off, send_len, recv_len;
    uint8_t send_buf[4 + MAX_TEST_PAYLOAD];
    uint8_t expect[4 + MAX_TEST_PAYLOAD];
};

struct driver {
    pthread_t thread;
    struct client *c;
    size_t n;
    char error[256]; /* first failure; cmocka asserts only on the main thread */
};

__attribute__((format(printf, 2, 3))) static void
driver_fail(struct driver *d, const char *fmt, ...)
{
    va_list ap;
    if (d->error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
}

static void client_vanish(struct client *c)
{
    uint32_t len = frame_make(c->send_buf, c->id, c->send_seq);
    ssize_t r = send(c->fd, c->send_buf, len / 2, MSG_NOSIGNAL);
    (void)r; /* a short write still leaves the frame cut */
    if (c->rst)
        su_close_rst(c->fd);
    else
        close(c->fd);
    c->fd = -1;
    c->gone = c->done = true;
}

static void client_send(struct driver *d, struct client *c)
{
    while (!c->done) {
        if (c->send_off == 0) {
            if (c->send_seq == c->frames || c->send_seq - c->recv_seq >= DEPTH)
                return;
            if (c->send_seq == c->vanish_at) {
                if (c->recv_seq == c->send_seq)
                    client_vanish(c);
                return;
            }
            c->send_len = frame_make(c->send_buf, c->id, c->send_seq);
        }
        ssize_t r = send(c->fd, c->send_buf + c->send_off,
                         c->send_len - c->send_off, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno != EAGAIN && errno != EINTR)
                driver_fail(d, "client %u: send: %s", c->id, strerror(errno));
            return;
        }
        c->send_off += (uint32_t)r;
        if (c->send_off == c->send_len) {
            c->send_seq++;
            c->send_off = 0;
        }
    }
}

static void client_check(struct driver *d, struct client *c, const uint8_t *p,
                         size_t n)
{
    while (n > 0) {
        if (c->recv_seq >= c->send_seq && c->recv_off == 0) {
            driver_fail(d, "client %u: %zu bytes echoed beyond frame %u", c->id,
                        n, c->recv_seq);
            return;
        }
        if (c->recv_off == 0)
            c->recv_len = frame_make(c->expect, c->id, c->recv_seq);
        size_t take = c->recv_len - c->recv_off;
        if (take > n)
            take = n;
        if (memcmp(p, c->expect + c->recv_off, take) != 0) {
            driver_fail(d, "client %u: frame %u differs near byte %u", c->id,
                        c->recv_seq, c->recv_off);
            return;
        }
        c->recv_off += (uint32_t)take;
        p += take;
        n -= take;
        if (c->recv_off == c->recv_len) {
            c->recv_seq++;
            c->recv_off = 0;
            if (c->recv_seq == c->frames)
                c->done = true;
        }
    }
}

static void client_recv(struct driver *d, struct client *c)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            client_check(d, c, buf, (size_t)r);
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        driver_fail(d, "client %u: %s after %u of %u frames", c->id,
                    r == 0 ? "closed by the server" : strerror(errno),
                    c->recv_seq, c->frames);
        c->done = true;
        return;
    }
}

static void *driver_main(void *arg)
{
    struct driver *d = arg;
    struct epoll_event evs[64];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        driver_fail(d, "epoll_create1: %s", strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &d->c[i]};
        su_set_nonblock(d->c[i].fd);
        if (epoll_ctl(ep, EPOLL_CTL_ADD, d->c[i].fd, &e) < 0)
            driver_fail(d, "epoll_ctl: %s", strerror(errno));
    }
    uint64_t end = su_now_ms() + SU_WAIT_MS;
    while (!d->error[0]) {
        size_t busy = 0;
        for (size_t i = 0; i < d->n; i++) {
            client_send(d, &d->c[i]);
            busy += !d->c[i].done;
        }
        if (busy == 0)
            break;
        if (su_now_ms() >= end) {
            driver_fail(d, "%zu clients unfinished after %d ms", busy,
                        SU_WAIT_MS);
            break;
        }
        /* Closing an fd removes it from the epoll set by itself. */
        int n = epoll_wait(ep, evs, 64, 2);
        for (int k = 0; k < n; k++) {
            struct client *c = evs[k].data.ptr;
            if (!c->gone)
                client_recv(d, c);
        }
    }
    close(ep);
    return NULL;
}

/*
 * Connects 'n' clients, runs them on DRIVER_THREADS threads until every
 * one has its echoes (or vanished), and fails on the first bad byte.
 */
static void run_clients(struct client *cl, size_t n, uint16_t port)
{
    struct driver d[DRIVER_THREADS];
    for (size_t i = 0; i < n; i++)
        cl[i].fd = su_connect(port);
    for (int t = 0; t < DRIVER_THREADS; t++) {
        size_t lo = n * (size_t)t / DRIVER_THREADS;
        size_t hi = n * (size_t)(t + 1) / DRIVER_THREADS;
        d[t] = (struct driver){.c = cl + lo, .n = hi - lo};
        assert_int_equal(pthread_create(&d[t].thread, NULL, driver_main, &d[t]),
                         0);
    }
    for (int t = 0; t < DRIVER_THREADS; t++)
        pthread_join(d[t].thread, NULL);
    for (int t = 0; t < DRIVER_THREADS; t++)
        if (d[t].error[0])
            fail_msg("%s", d[t].error);
}

static void close_clients(struct client *cl, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cl[i].fd >= 0) {
            close(cl[i].fd);
            cl[i].fd = -1;
        }
}

/* ---- tests ----------------------------------------------------------- */

static int reset_events(void **state)
{
    (void)state;
    su_events_reset(&ev);
    return 0;
}

static void echoes_every_byte_to_1000_concurrent_clients(void **state)
{
    (void)state;
    static struct client cl[MANY_CLIENTS];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv = su_start(&cfg);

    for (uint32_t i = 0; i < MANY_CLIENTS; i++)
        cl[i] = (struct client){.id = i,
                                .frames = 4 + (uint32_t)(mix(seed + i) % 12),
                                .vanish_at = UINT32_MAX};
    run_clients(cl, MANY_CLIENTS, rp_server_port(srv));

    /* A send is counted at its completion, which may come after the
       client has read the bytes. */
    struct rp_server_stats s;
    SU_WAIT((su_stats(srv, &s), s.packets_out == s.packets_in));
    assert_int_equal(s.accepts, MANY_CLIENTS);
    assert_int_equal(s.sessions_max, MANY_CLIENTS);
    assert_int_equal(s.packets_in, s.packets_out);
    assert_int_equal(s.bytes_in, s.bytes_out);
    assert_true(s.sends > 0 && s.sends <= s.packets_out);
    assert_int_equal(atomic_load(&ev.send_errors), 0);
    close_clients(cl, MANY_CLIENTS);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_sessions(srv), 0);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PEER_CLOSED), MANY_CLIENTS);
    su_finish(srv, &ev, before);
}

static void delivers_a_packet_sent_one_byte_at_a_time(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    uint8_t wire[4 + 300], payload[300];
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    struct rp_server *srv = su_start(&cfg);
    int fd = su_connect(rp_server_port(srv));

    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)t_rand(&rng);
    size_t n = su_frame(wire, 0xBEEF, payload, sizeof payload);
    for (size_t i = 0; i < n; i++) {
        su_send_all(fd, wire + i, 1);
        su_sleep_ms(1); /* so the server sees the bytes one at a time */
    }
    su_expect_frame(fd, 0xBEEF, payload, sizeof payload);
    /* And the other way round: two frames and the start of a third in one
       write, the rest later. */
    uint8_t three[3 * (4 + 300)];
    size_t a = su_frame(three, 1, payload, 10);
    a += su_frame(three + a, 2, payload + 10, 0);
    size_t b = a + su_frame(three + a, 3, payload, 300);
    su_send_all(fd, three, a + 2);
    su_sleep_ms(5);
    su_send_all(fd, three + a + 2, b - a - 2);
    su_expect_frame(fd, 1, payload, 10);
    su_expect_frame(fd, 2, payload + 10, 0);
    su_expect_frame(fd, 3, payload, 300);

    close(fd);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PEER_CLOSED), 1);
    su_finish(srv, &ev, before);
}

static void echoes_max_payload_and_cuts_one_byte_more(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    static uint8_t payload[8193];
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    cfg.max_payload = 8192;
    struct rp_server *srv = su_start(&cfg);
    int ok = su_connect(rp_server_port(srv));
    int bad = su_connect(rp_server_port(srv));

    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)t_rand(&rng);
    su_send_frame(ok, 77, payload, 8192);
    su_expect_frame(ok, 77, payload, 8192);

    /* The header alone is judged: the server must not wait for 8,193
       payload bytes, so send only part of them. */
    uint8_t hdr[4 + 100];
    su_frame(hdr, 78, payload, 100);
    hdr[0] = (uint8_t)8193;
    hdr[1] = (uint8_t)(8193 >> 8);
    su_send_all(bad, hdr, sizeof hdr);
    assert_int_equal(su_wait_closed(bad, SU_WAIT_MS), 0);
    SU_WAIT(su_leaves(srv, RP_LEAVE_PROTOCOL) == 1 &&
            atomic_load(&ev.by_reason[RP_LEAVE_PROTOCOL]) == 1);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PROTOCOL), 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_PROTOCOL]), 1);
    /* Nothing of the bad frame reached on_message. */
    assert_int_equal(atomic_load(&ev.messages), 1);

    su_ping(ok, 79); /* the other session is untouched */
    close(ok);
    close(bad);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

static void clients_that_vanish_mid_send_leave_the_rest_unharmed(void **state)
{
    (void)state;
    enum { N = 300 };
    static struct client cl[N];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    uint32_t fin = 0, rst = 0;
    su_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv = su_start(&cfg);

    /* 30 %: every third-ish client, half of them with FIN, half with RST,
       each after a random number of whole frames. */
    for (uint32_t i = 0; i < N; i++) {
        bool vanish = mix(seed ^ (i * 0x1234567ull)) % 10 < 3;
        cl[i] = (struct client){
            .id = i, .frames = 12, .vanish_at = UINT32_MAX, .rst = false};
        if (vanish) {
            cl[i].vanish_at = (uint32_t)(mix(seed + i) % 11);
            cl[i].rst = (fin + rst) % 2 == 1;
            rst += cl[i].rst;
            fin += !cl[i].rst;
        }
    }
    run_clients(cl, N, rp_server_port(srv));
    for (uint32_t i = 0; i < N; i++)
        if (!cl[i].gone)
            assert_int_equal(cl[i].recv_seq, cl[i].frames);
    SU_WAIT(su_sessions(srv) == N - fin - rst);
    assert_int_equal(su_sessions(srv), N - fin - rst);

    close_clients(cl, N);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_sessions(srv), 0);
    /* A FIN after half a frame is still an orderly close; the RSTs are
       resets; nothing was a protocol error. */
    assert_int_equal(su_leaves(srv, RP_LEAVE_RESET), rst);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PEER_CLOSED), N - rst);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PROTOCOL), 0);
    su_finish(srv, &ev, before);
}

static void raw_mode_echoes_bytes_as_they_come(void **state)
{
    (void)state;
    enum { N = 20, ROUNDS = 10 };
    static uint8_t msg[N][20000], got[20000];
    size_t len[N];
    int fd[N];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    cfg.mode = RP_SERVER_RAW;
    struct rp_server *srv = su_start(&cfg);
    for (int i = 0; i < N; i++)
        fd[i] = su_connect(rp_server_port(srv));
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N; i++) {
            len[i] = (size_t)t_rand_range(&rng, 1, sizeof msg[i]);
            for (size_t k = 0; k < len[i]; k++)
                msg[i][k] = (uint8_t)t_rand(&rng);
            su_send_all(fd[i], msg[i], len[i]);
        }
        for (int i = 0; i < N; i++) {
            assert_int_equal(su_read_full(fd[i], got, len[i], SU_WAIT_MS), 0);
            assert_memory_equal(got, msg[i], len[i]);
        }
    }
    for (int i = 0; i < N; i++)
        close(fd[i]);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PEER_CLOSED), N);
    su_finish(srv, &ev, before);
}

/*
 * A burst of bytes in a raw session is echoed one receive buffer at a
 * time, as a plain reactor echoes each read(): 32 KiB written at once into
 * 4 KiB buffers come back whole and in order on both backends, and on the
 * epoll backend in at least one send per buffer (one receive per
 * readiness, its echo flushed before the next read). Reading the whole
 * burst before the first send made a deep pipeline's two sides take turns
 * (docs/benchmarks.md, "Round two, second session"). io_uring's multishot
 * receive hands the burst over in one batch; there only the bytes are
 * checked.
 */
static void raw_mode_echoes_a_burst_one_buffer_at_a_time(void **state)
{
    (void)state;
    enum { BUF = 4096, BURST = 8 * BUF, ROUNDS = 4 };
    static uint8_t msg[BURST], got[BURST];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    cfg.mode = RP_SERVER_RAW;
    cfg.io_threads = 1;
    cfg.recv_buffer_size = BUF;
    struct rp_server *srv = su_start(&cfg);
    int fd = su_connect(rp_server_port(srv));
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t k = 0; k < sizeof msg; k++)
            msg[k] = (uint8_t)t_rand(&rng);
        su_send_all(fd, msg, sizeof msg);
        assert_int_equal(su_read_full(fd, got, sizeof got, SU_WAIT_MS), 0);
        assert_memory_equal(got, msg, sizeof msg);
    }
    /* The last send's completion may be counted just after the client
       read its bytes. */
    struct rp_server_stats st;
    SU_WAIT((su_stats(srv, &st), st.bytes_out == (uint64_t)BURST * ROUNDS));
    assert_int_equal(st.bytes_out, (uint64_t)BURST * ROUNDS);
    if (rp_server_backend(srv) == RP_BACKEND_EPOLL)
        assert_true(st.sends >= (uint64_t)ROUNDS * (BURST / BUF));
    close(fd);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

/*
 * Raw echoes of large chunks go out from the receive buffer they arrived
 * in (zero-copy forwarding on io_uring), which stays out of the ring until
 * the send completes. A peer that never reads holds its echoes (and with
 * a queue limit this high, is never cut): past what its socket buffer
 * takes (4 MiB at most here), were every buffer lent to it,
 * the ring would run dry and no other session of the thread would be
 * read again. Lending stops at half the ring, so a second client keeps
 * its echo while the first holds 8 MiB in flight; the server's counters
 * (buffers_lent_max) show where it stopped.
 */
static void raw_mode_reader_that_stalls_does_not_starve_the_rest(void **state)
{
    (void)state;
    enum { CHUNK = 16384, STALLED_BYTES = 8 << 20, ROUNDS = 200 };
    static uint8_t chunk[CHUNK], msg[4096], got[4096];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    cfg.mode = RP_SERVER_RAW;
    cfg.io_threads = 1;
    cfg.max_sessions = 16; /* the smallest ring: 64 buffers, 1 MiB */
    cfg.send_queue_limit = 64u << 20;
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);
    int stalled = su_connect_buf(port, 4096);
    int fd = su_connect(port);
    for (size_t k = 0; k < sizeof chunk; k++)
        chunk[k] = (uint8_t)t_rand(&rng);
    /* Blocking writes: the server reads all of it (the echo queues up),
       so they finish although nobody reads the echo. */
    for (size_t sent = 0; sent < STALLED_BYTES; sent += sizeof chunk)
        su_send_all(stalled, chunk, sizeof chunk);
    SU_WAIT((uint64_t)atomic_load(&ev.messages) > 0);
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t k = 0; k < sizeof msg; k++)
            msg[k] = (uint8_t)t_rand(&rng);
        su_send_all(fd, msg, sizeof msg);
        assert_int_equal(su_read_full(fd, got, sizeof msg, SU_WAIT_MS), 0);
        assert_memory_equal(got, msg, sizeof msg);
    }
    /* The counters say so: lent up to half the ring's 64 buffers. */
    struct rp_server_stats st;
    rp_server_get_stats(srv, &st);
    assert_int_equal(st.buffers_lent_max, 32);
    assert_true(st.buffers_lent >= 32);
    assert_int_equal(st.buffers, 64);
    assert_true(st.io_waits > 0);
    assert_true(st.io_enters >= st.io_waits);
    close(fd);
    close(stalled);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_sessions(srv), 0);
    su_finish(srv, &ev, before);
}

/*
 * rp_server_broadcast to 1,000 sessions plus one stale id: one packet is
 * created (pool counter +1), it is queued 1,000 times, every client reads
 * exactly it, and it is freed once the last send completes.
 */
static void broadcast_shares_one_packet_among_1000_sessions(void **state)
{
    (void)state;
    static int fd[MANY_CLIENTS];
    static rp_sid ids[MANY_CLIENTS + 1];
    struct rp_server_config cfg;
    uint8_t payload[100];
    uint64_t before = su_packets_alive();
    su_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);

    int gone = su_connect(port);
    SU_WAIT(atomic_load(&ev.joins) == 1);
    assert_int_equal(atomic_load(&ev.joins), 1);
    close(gone);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    assert_int_equal(atomic_load(&ev.leaves), 1);

    for (int i = 0; i < MANY_CLIENTS; i++) {
        fd[i] = su_connect(port);
        su_set_nonblock(fd[i]);
    }
    SU_WAIT(atomic_load(&ev.joins) == MANY_CLIENTS + 1);
    assert_int_equal(atomic_load(&ev.joins), MANY_CLIENTS + 1);
    pthread_mutex_lock(&ev.lock);
    memcpy(ids, ev.joined, sizeof ids); /* [0] is the stale one */
    pthread_mutex_unlock(&ev.lock);

    struct rp_packet *pkt;
    struct rp_packet_pool_stats p0, p1;
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 3 + 1);
    rp_packet_pool_stats(&p0);
    assert_int_equal(rp_packet_create(sizeof payload, 4242, &pkt), 0);
    assert_int_equal(rp_packet_put_bytes(pkt, payload, sizeof payload), 0);
    assert_int_equal(rp_server_broadcast(srv, ids, MANY_CLIENTS + 1, pkt),
                     MANY_CLIENTS);
    rp_packet_unref(pkt);
    for (int i = 0; i < MANY_CLIENTS; i++)
        su_expect_frame(fd[i], 4242, payload, sizeof payload);
    rp_packet_pool_stats(&p1);
    assert_int_equal(p1.created, p0.created + 1);
    /* Freed after the last send completed: nothing else holds a packet. */
    SU_WAIT(su_packets_alive() == before);
    assert_int_equal(su_packets_alive(), before);

    struct rp_server_stats s;
    SU_WAIT((su_stats(srv, &s), s.packets_out == MANY_CLIENTS));
    assert_int_equal(s.packets_out, MANY_CLIENTS);
    assert_int_equal(s.bytes_out,
                     (uint64_t)MANY_CLIENTS * (4 + sizeof payload));
    for (int i = 0; i < MANY_CLIENTS; i++)
        assert_false(su_is_closed_now(fd[i]));
    for (int i = 0; i < MANY_CLIENTS; i++)
        close(fd[i]);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

int main(int argc, char **argv)
{
    seed = rng = t_seed();
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(echoes_every_byte_to_1000_concurrent_clients,
                               reset_events),
        cmocka_unit_test_setup(delivers_a_packet_sent_one_byte_at_a_time,
                               reset_events),
        cmocka_unit_test_setup(echoes_max_payload_and_cuts_one_byte_more,
                               reset_events),
        cmocka_unit_test_setup(
            clients_that_vanish_mid_send_leave_the_rest_unharmed, reset_events),
        cmocka_unit_test_setup(raw_mode_echoes_bytes_as_they_come,
                               reset_events),
        cmocka_unit_test_setup(raw_mode_echoes_a_burst_one_buffer_at_a_time,
                               reset_events),
        cmocka_unit_test_setup(
            raw_mode_reader_that_stalls_does_not_starve_the_rest, reset_events),
        cmocka_unit_test_setup(broadcast_shares_one_packet_among_1000_sessions,
                               reset_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
