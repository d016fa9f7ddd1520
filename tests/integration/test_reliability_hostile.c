/*
 * Hostile and broken peers next to 100 well-behaved bystanders (the
 * reliability suite, docs/reliability.md): malformed frames close only
 * their own session, promptly, with one rate-limited log line each; a
 * storm of connect-then-reset and mid-frame FIN/RST clients crashes
 * nothing; 100 peers that never read are each cut at the send-queue limit
 * with the server's memory bounded; and on a refused io_uring the server
 * logs why it runs on epoll. The bystanders ping-pong verified frames
 * throughout and must all be open and served at the end.
 */
#include "reliability_util.h"

#include <dirent.h>

#define BYSTANDERS 100
#define MAX_PAYLOAD 8192

/*
 * The criterion is 100 ms from the bad bytes to the close. It is measured
 * and printed (docs/reliability.md records it), not asserted: a loaded CI
 * machine (load 10-20 on 2 cores) stalls a process for seconds. What is
 * asserted is that the bad bytes alone close the session: it is closed
 * with no further input within the bounded wait, with the reason PROTOCOL
 * and one log line naming it (no deadline or timeout of the configuration
 * could end it sooner than 10 s, the frame deadline).
 */

static struct su_events ev;
static uint64_t rng;

static int reset_events(void **state)
{
    (void)state;
    su_events_reset(&ev);
    ru_leaves_reset();
    return 0;
}

static void hostile_config(struct rp_server_config *cfg)
{
    su_config(cfg, &ev);
    cfg->cb.on_leave = ru_on_leave;
    cfg->io_threads = 2;
    cfg->max_payload = MAX_PAYLOAD;
}

/* Connects, pings, and returns the new session's id (nobody else joins
   while a test calls this). */
static int connect_session(uint16_t port, rp_sid *sid)
{
    uint64_t joins = atomic_load(&ev.joins);
    int fd = su_connect(port);
    su_ping(fd, 7);
    assert_int_equal(atomic_load(&ev.joins), joins + 1);
    pthread_mutex_lock(&ev.lock);
    *sid = ev.joined[ev.n_joined - 1];
    pthread_mutex_unlock(&ev.lock);
    return fd;
}

/* Milliseconds from now until the server has closed 'fd'. */
static uint64_t ms_until_closed(int fd, uint64_t t0)
{
    assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
    return su_now_ms() - t0;
}

enum bad_kind { BAD_MAX_PLUS_1, BAD_HUGE, BAD_GARBAGE, BAD_KINDS };
static const char *const bad_names[BAD_KINDS] = {"max+1", "huge (65535)",
                                                 "garbage flood"};

/*
 * Sends one kind of bad input on 'fd' and returns the milliseconds until
 * the server closed it. The garbage flood keeps writing random bytes (at
 * most 4 MiB) until the close; its first header is random too, so frames
 * before the first impossible header may be valid and echoed.
 */
static uint64_t send_bad(int fd, enum bad_kind kind)
{
    uint8_t buf[4 + 64];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)t_rand(&rng);
    uint64_t t0 = su_now_ms();
    if (kind == BAD_MAX_PLUS_1 || kind == BAD_HUGE) {
        uint16_t len = kind == BAD_HUGE ? 65535 : MAX_PAYLOAD + 1;
        buf[0] = (uint8_t)len;
        buf[1] = (uint8_t)(len >> 8);
        /* The header alone must be judged: only part of a payload. */
        su_send_all(fd, buf, sizeof buf);
        return ms_until_closed(fd, t0);
    }
    static uint8_t junk[16384];
    su_set_nonblock(fd);
    for (uint64_t sent = 0; sent < (4u << 20);) {
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)t_rand(&rng);
        ssize_t r = send(fd, junk, sizeof junk, MSG_NOSIGNAL);
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            break; /* EPIPE / ECONNRESET: closed */
        if (r > 0)
            sent += (uint64_t)r;
        if (su_is_closed_now(fd))
            break;
        if (r < 0) {
            struct pollfd p = {.fd = fd, .events = POLLOUT | POLLIN};
            poll(&p, 1, 10);
        }
    }
    return ms_until_closed(fd, t0);
}

/*
 * Every kind of malformed frame, four times each, spaced so the log's rate
 * limit (10 lines a second per I/O thread) is never reached: each bad
 * session is closed with PROTOCOL within the bound, named by exactly one
 * protocol-error line; a header cut short then closed (FIN or RST) is an
 * ordinary end, not a protocol error; an empty payload is legal by
 * default (reject_empty refuses it: see the test below); the 100
 * bystanders notice nothing.
 */
static void malformed_frames_close_only_their_session_promptly(void **state)
{
    (void)state;
    enum { REPEAT = 4 };
    struct rp_server_config cfg;
    struct ru_bystanders by;
    uint64_t before = su_packets_alive(), worst[BAD_KINDS] = {0};
    ru_log_begin();
    hostile_config(&cfg);
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);
    ru_bystanders_start(&by, BYSTANDERS, port, rng);

    for (int rep = 0; rep < REPEAT; rep++)
        for (int k = 0; k < BAD_KINDS; k++) {
            rp_sid sid;
            int fd = connect_session(port, &sid);
            uint64_t ms = send_bad(fd, (enum bad_kind)k);
            if (ms > worst[k])
                worst[k] = ms;
            close(fd);
            SU_WAIT(ru_reason_of(sid) >= 0 && ru_proto_lines_for(sid) == 1);
            assert_int_equal(ru_reason_of(sid), RP_LEAVE_PROTOCOL);
            assert_int_equal(ru_proto_lines_for(sid), 1);
            su_sleep_ms(150); /* under the log's 10 lines a second */
        }

    /* A header cut short, then FIN or RST: the peer's own end. */
    for (int rst = 0; rst < 2; rst++) {
        rp_sid sid;
        int fd = connect_session(port, &sid);
        su_send_all(fd, "\x10\x00", 2);
        su_sleep_ms(5);
        if (rst)
            su_close_rst(fd);
        else
            close(fd);
        SU_WAIT(ru_reason_of(sid) >= 0);
        assert_int_equal(ru_reason_of(sid),
                         rst ? RP_LEAVE_RESET : RP_LEAVE_PEER_CLOSED);
        assert_int_equal(ru_proto_lines_for(sid), 0);
    }

    /* An empty payload is a frame like any other. */
    rp_sid sid;
    int empty = connect_session(port, &sid);
    su_send_frame(empty, 42, "", 0);
    su_expect_frame(empty, 42, "", 0);
    su_ping(empty, 43);

    ru_bystanders_finish(&by, 3);
    printf("close after bad bytes, worst of %d (criterion 100 ms, measured):",
           REPEAT);
    for (int k = 0; k < BAD_KINDS; k++)
        printf(" %s %llu ms;", bad_names[k], (unsigned long long)worst[k]);
    printf(" bystander rounds %llu\n",
           (unsigned long long)atomic_load(&by.rounds));
    close(empty);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PROTOCOL), REPEAT * BAD_KINDS);
    uint64_t suppressed;
    assert_int_equal(ru_proto_count(&suppressed), REPEAT * BAD_KINDS);
    assert_int_equal(suppressed, 0);
    su_finish(srv, &ev, before);
    ru_log_end();
}

/*
 * 60 bad sessions at once: each is closed with PROTOCOL, no session is
 * named twice, lines past the rate limit are dropped and counted, and the
 * count is reported in one line when the next window opens - so lines
 * logged plus lines reported suppressed equals the bad sessions exactly.
 */
static void a_burst_of_protocol_errors_is_rate_limited(void **state)
{
    (void)state;
    enum { BURST = 60 };
    struct rp_server_config cfg;
    struct ru_bystanders by;
    static int fd[BURST];
    uint8_t bad[4] = {0xff, 0xff, 0, 0};
    uint64_t before = su_packets_alive();
    ru_log_begin();
    hostile_config(&cfg);
    cfg.io_threads = 1; /* one rate-limit window to reason about */
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);
    ru_bystanders_start(&by, BYSTANDERS, port, rng);

    for (int i = 0; i < BURST; i++)
        fd[i] = su_connect(port);
    for (int i = 0; i < BURST; i++)
        su_send_all(fd[i], bad, sizeof bad);
    for (int i = 0; i < BURST; i++)
        assert_int_equal(su_wait_closed(fd[i], SU_WAIT_MS), 0);
    SU_WAIT(su_leaves(srv, RP_LEAVE_PROTOCOL) == BURST);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PROTOCOL), BURST);
    size_t burst_lines = ru_proto_count(NULL);

    /* One more, a window later: it reports what the burst suppressed. */
    su_sleep_ms(1100);
    int late = su_connect(port);
    su_send_all(late, bad, sizeof bad);
    assert_int_equal(su_wait_closed(late, SU_WAIT_MS), 0);
    SU_WAIT(ru_proto_count(NULL) == burst_lines + 1);
    ru_bystanders_finish(&by, 2);
    uint64_t suppressed;
    size_t lines = ru_proto_count(&suppressed);
    printf("burst of %d: %zu lines, %llu reported suppressed\n", BURST,
           burst_lines, (unsigned long long)suppressed);
    assert_true(burst_lines >= 1 && burst_lines < BURST);
    assert_int_equal(lines, burst_lines + 1);
    assert_int_equal(burst_lines + suppressed, BURST);
    for (size_t i = 0; i < lines; i++) {
        pthread_mutex_lock(&ru_logged.lock);
        rp_sid sid = ru_logged.proto_sid[i];
        pthread_mutex_unlock(&ru_logged.lock);
        assert_int_equal(ru_proto_lines_for(sid), 1);
    }

    for (int i = 0; i < BURST; i++)
        close(fd[i]);
    close(late);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
    ru_log_end();
}

/* ---- storm -------------------------------------------------------------- */

/*
 * How many storm connections may be connected and not yet accepted. The
 * listen backlog is 1,024: past it the kernel drops a handshake's last ACK,
 * and a client that resets at once leaves nothing for the server to
 * accept, so the count below could never add up. On a loaded machine the
 * accept thread falls that far behind two connecting threads (it runs
 * when the scheduler lets it), so each connect first waits, bounded, until
 * the server has taken all but STORM_AHEAD of those made before it.
 */
#define STORM_AHEAD 256

struct stormer {
    pthread_t thread;
    struct rp_server *srv;
    uint16_t port;
    int count;
    uint64_t seed;
    uint64_t before;            /* accepts + refused before the storm */
    _Atomic uint64_t *connects; /* made by every stormer so far */
    int fins, rsts;             /* closes of each kind done */
    char error[128];
};

/* Accepted or refused connections of 'srv' since the storm began. */
static uint64_t storm_taken(struct stormer *s)
{
    struct rp_server_stats st;
    su_stats(s->srv, &st);
    return st.accepts + st.refused - s->before;
}

/*
 * Connects and leaves at once, four ways in turn: RST right after
 * connect, RST after half a frame, FIN after half a frame, FIN after a
 * whole frame without reading the echo. Nonblocking sends: nothing here
 * may wait on the server.
 */
static void *storm_main(void *arg)
{
    struct stormer *s = arg;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(s->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint8_t wire[4 + 200], payload[200];
    uint64_t x = s->seed;
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)t_rand(&x);
    for (int i = 0; i < s->count && !s->error[0]; i++) {
        uint64_t end = su_now_ms() + SU_WAIT_MS;
        while (storm_taken(s) + STORM_AHEAD < atomic_load(s->connects) &&
               su_now_ms() < end)
            su_sleep_ms(1);
        if (storm_taken(s) + STORM_AHEAD < atomic_load(s->connects)) {
            snprintf(
                s->error, sizeof s->error,
                "storm: %llu connections not accepted in %d ms",
                (unsigned long long)(atomic_load(s->connects) - storm_taken(s)),
                SU_WAIT_MS);
            break;
        }
        atomic_fetch_add(s->connects, 1);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            snprintf(s->error, sizeof s->error, "storm connect: %s",
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            break;
        }
        size_t n = su_frame(wire, (uint16_t)i, payload,
                            1 + t_rand(&x) % sizeof payload);
        int how = i % 4;
        if (how == 1 || how == 2)
            (void)send(fd, wire, n / 2, MSG_NOSIGNAL | MSG_DONTWAIT);
        else if (how == 3)
            (void)send(fd, wire, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (how <= 1) {
            su_close_rst(fd);
            s->rsts++;
        } else {
            close(fd);
            s->fins++;
        }
    }
    return NULL;
}

/*
 * 2,000 connections that come and go at once (connect-then-reset, and FIN
 * or RST in the middle of a frame) from two threads, at most STORM_AHEAD
 * of them waiting for an accept at any time, against 100 bystanders: no crash
 * (under ASan/UBSan: no error either), every storm session ends exactly once
 * with an ordinary reason, the bystanders are served throughout and all stay
 * open.
 */
static void connect_and_reset_storm_leaves_bystanders_unharmed(void **state)
{
    (void)state;
    enum { THREADS = 2, EACH = 1000 };
    struct rp_server_config cfg;
    struct ru_bystanders by;
    struct stormer st[THREADS];
    uint64_t before = su_packets_alive();
    hostile_config(&cfg);
    cfg.max_sessions = 4096;
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);
    ru_bystanders_start(&by, BYSTANDERS, port, rng);

    static _Atomic uint64_t connects;
    struct rp_server_stats s;
    su_stats(srv, &s);
    atomic_store(&connects, 0);
    for (int t = 0; t < THREADS; t++) {
        st[t] = (struct stormer){.srv = srv,
                                 .port = port,
                                 .count = EACH,
                                 .seed = rng + (uint64_t)t,
                                 .before = s.accepts + s.refused,
                                 .connects = &connects};
        assert_int_equal(
            pthread_create(&st[t].thread, NULL, storm_main, &st[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(st[t].thread, NULL);
    for (int t = 0; t < THREADS; t++)
        if (st[t].error[0])
            fail_msg("%s", st[t].error);

    SU_WAIT((su_stats(srv, &s),
             s.accepts + s.refused == BYSTANDERS + THREADS * EACH &&
                 s.sessions == BYSTANDERS &&
                 s.leaves[RP_LEAVE_PEER_CLOSED] + s.leaves[RP_LEAVE_RESET] ==
                     s.accepts - BYSTANDERS));
    printf("storm: accepts %llu, refused %llu, peer_closed %llu, reset "
           "%llu\n",
           (unsigned long long)s.accepts, (unsigned long long)s.refused,
           (unsigned long long)s.leaves[RP_LEAVE_PEER_CLOSED],
           (unsigned long long)s.leaves[RP_LEAVE_RESET]);
    assert_int_equal(s.accepts + s.refused, BYSTANDERS + THREADS * EACH);
    assert_int_equal(s.sessions, BYSTANDERS);
    assert_int_equal(s.leaves[RP_LEAVE_PEER_CLOSED] + s.leaves[RP_LEAVE_RESET],
                     s.accepts - BYSTANDERS);
    assert_int_equal(s.leaves[RP_LEAVE_PROTOCOL], 0);
    ru_bystanders_finish(&by, 3);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

/* ---- slow readers ------------------------------------------------------- */

/*
 * Fixes the server-side send buffer of each of the n sessions whose client
 * sockets are fd[] at 'bytes' (the kernel doubles it), and returns how many
 * it found. The server runs in this process, so its sockets are in
 * /proc/self/fd: a server socket is the one whose peer is a client's local
 * address. Call it while those sessions are open and nothing else connects.
 * Why: on loopback the kernel autotunes a socket's send buffer up to
 * net.ipv4.tcp_wmem's maximum (4 MiB), so a peer that never reads had to
 * push ~4.2 MiB before its session's queue even began to grow, 420 MiB for
 * 100 peers; a TSan build beside two CPU burners did not get through that
 * in 60 s, and no peer was cut.
 */
static int pin_server_sndbuf(const int *fd, int n, int bytes)
{
    struct sockaddr_storage local[128];
    socklen_t len;
    assert_true(n <= 128);
    for (int i = 0; i < n; i++) {
        len = sizeof local[i];
        assert_int_equal(getsockname(fd[i], (struct sockaddr *)&local[i], &len),
                         0);
    }
    int found = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int sfd = atoi(e->d_name);
        struct sockaddr_storage peer;
        len = sizeof peer;
        if (e->d_name[0] == '.' || sfd == dirfd(d) ||
            getpeername(sfd, (struct sockaddr *)&peer, &len) != 0)
            continue;
        for (int i = 0; i < n; i++)
            if (memcmp(&peer, &local[i], sizeof(struct sockaddr_in)) == 0) {
                assert_int_equal(setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &bytes,
                                            sizeof bytes),
                                 0);
                found++;
                break;
            }
    }
    closedir(d);
    return found;
}

/*
 * 100 peers send max-size frames and never read their echoes. Each must
 * be cut with SEND_OVERFLOW, and the process's peak memory must stay
 * under baseline + N x (limit + receive buffer) x 1.5 + 16 MiB (plain
 * builds; sanitizers keep freed memory resident). Bystanders are served
 * meanwhile. The server's socket send buffers are pinned small and the
 * limit is 256 KiB so that each cut takes ~0.4 MiB of traffic, not ~4.2
 * MiB (see pin_server_sndbuf): the cuts must not depend on how fast the
 * build moves bytes.
 */
static void
hundred_peers_that_never_read_are_cut_with_memory_bounded(void **state)
{
    (void)state;
    enum { N = 100, LIMIT = 256 << 10, FRAMES = 8, PAY = MAX_PAYLOAD };
    static uint8_t stream[FRAMES * (4 + PAY)];
    static int fd[N];
    static uint64_t sent[N];
    static bool cut[N];
    const size_t stream_len = sizeof stream;
    struct rp_server_config cfg;
    struct ru_bystanders by;
    uint64_t before = su_packets_alive();
    hostile_config(&cfg);
    cfg.send_queue_limit = LIMIT;
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);

    for (size_t i = 0, off = 0; i < FRAMES; i++) {
        uint8_t payload[PAY];
        for (size_t k = 0; k < PAY; k++)
            payload[k] = (uint8_t)t_rand(&rng);
        off += su_frame(stream + off, (uint16_t)i, payload, PAY);
    }
    int snd = 64 * 1024;
    for (int i = 0; i < N; i++) {
        fd[i] = su_connect_buf(port, 4096);
        setsockopt(fd[i], SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
        su_ping(fd[i], 2);
        su_set_nonblock(fd[i]);
        sent[i] = 0;
        cut[i] = false;
    }
    assert_int_equal(pin_server_sndbuf(fd, N, 32 * 1024), N);
    ru_bystanders_start(&by, 10, port, rng);

    /* Reset the peak so VmHWM measures this test alone (Linux >= 4.0). */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    bool hwm = cr && fputs("5", cr) >= 0;
    if (cr && fclose(cr) != 0)
        hwm = false;
    uint64_t base_kib = su_proc_kib("VmRSS");
    struct rp_server_stats st_before, st_after;
    rp_server_get_stats(srv, &st_before);

    /* 64 MiB per peer is far past anything a bounded queue absorbs. */
    const uint64_t cap = 64ull << 20;
    int left = su_flood_until_cut(fd, cut, sent, N, stream, stream_len, cap,
                                  4 * SU_WAIT_MS);
    if (left > 0) {
        uint64_t all = 0;
        for (int i = 0; i < N; i++)
            all += sent[i];
        fail_msg("%d of %d peers not cut; %llu KiB sent in all", left, N,
                 (unsigned long long)(all >> 10));
    }
    SU_WAIT(su_leaves(srv, RP_LEAVE_SEND_OVERFLOW) == N &&
            atomic_load(&ev.by_reason[RP_LEAVE_SEND_OVERFLOW]) == N);
    assert_int_equal(su_leaves(srv, RP_LEAVE_SEND_OVERFLOW), N);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_SEND_OVERFLOW]), N);

    uint64_t peak_kib = hwm ? su_proc_kib("VmHWM") : su_proc_kib("VmRSS");
    /* A flood may grow an I/O thread's provided-buffer ring (io_uring
       doubles it on -ENOBUFS, up to its count): paid once per thread, not
       per peer, so the bound adds what grew (as test_server_limits). */
    rp_server_get_stats(srv, &st_after);
    uint64_t grown = st_after.buffers > st_before.buffers
                         ? st_after.buffers - st_before.buffers
                         : 0;
    uint64_t bound_kib =
        base_kib +
        (uint64_t)(N * ((double)LIMIT + cfg.recv_buffer_size) * 1.5 / 1024) +
        grown * cfg.io_threads * cfg.recv_buffer_size / 1024 + 16 * 1024;
    uint64_t total = 0;
    for (int i = 0; i < N; i++)
        total += sent[i];
    printf(
        "slow readers: %d cut; memory base %llu KiB, peak %llu KiB (%s), "
        "growth %llu KiB, bound %llu KiB (ring grew by %llu buffers); %llu MiB "
        "sent in all\n",
        N, (unsigned long long)base_kib, (unsigned long long)peak_kib,
        hwm ? "VmHWM" : "VmRSS after",
        (unsigned long long)(peak_kib - base_kib),
        (unsigned long long)bound_kib, (unsigned long long)grown,
        (unsigned long long)(total >> 20));
#ifdef RU_SANITIZED
    (void)bound_kib;
#else
    assert_true(peak_kib <= bound_kib);
#endif
    ru_bystanders_finish(&by, 2);
    for (int i = 0; i < N; i++)
        close(fd[i]);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

/* rp_server_disconnect twice on a live session, then once more on the
   stale id: the session ends once, KICKED; nothing else is disturbed. */
static void double_disconnect_is_harmless(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    hostile_config(&cfg);
    struct rp_server *srv = su_start(&cfg);
    rp_sid sid;
    int other = su_connect(rp_server_port(srv));
    su_ping(other, 3);
    int fd = connect_session(rp_server_port(srv), &sid);
    assert_int_equal(rp_server_disconnect(srv, sid), 0);
    int r = rp_server_disconnect(srv, sid);
    assert_true(r == 0 || r == -ENOTCONN);
    assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
    SU_WAIT(ru_reason_of(sid) >= 0);
    assert_int_equal(ru_reason_of(sid), RP_LEAVE_KICKED);
    assert_int_equal(rp_server_disconnect(srv, sid), -ENOTCONN);
    su_ping(other, 4);
    close(fd);
    close(other);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_leaves(srv, RP_LEAVE_KICKED), 1);
    su_finish(srv, &ev, before); /* each on_leave exactly once */
}

/* ---- the fallback names its reason --------------------------------------- */

/*
 * Under tests/tools/no_uring (RP_TEST_FALLBACK=EPERM|ENOSYS) a server on
 * AUTO must run on epoll and log a line that names the refusal. Elsewhere
 * there is nothing to check: skipped.
 */
static void server_on_a_refused_io_uring_logs_the_reason(void **state)
{
    (void)state;
    const char *err = getenv("RP_TEST_FALLBACK");
    if (!err || su_kind != RP_BACKEND_AUTO)
        skip();
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    ru_log_begin();
    hostile_config(&cfg);
    struct rp_server *srv = su_start(&cfg);
    assert_int_equal(rp_server_backend(srv), RP_BACKEND_EPOLL);
    int fd = su_connect(rp_server_port(srv));
    su_ping(fd, 1);
    close(fd);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
    ru_log_end();
    char want[64];
    snprintf(want, sizeof want, "io_uring refused (%s", err);
    printf("fallback lines %zu: %s\n", ru_logged.n_fallback,
           ru_logged.fallback_line);
    assert_true(ru_logged.n_fallback >= 1);
    assert_non_null(strstr(ru_logged.fallback_line, want));
    assert_non_null(strstr(ru_logged.fallback_line, "epoll"));
}

/*
 * Where the configuration refuses them (reject_empty, type_min..type_max),
 * an empty payload and a type outside the range are protocol errors, judged
 * on the header alone: that session is closed with PROTOCOL within the
 * bound and named by one line; a well-behaved neighbour keeps echoing.
 */
static void
empty_payload_and_stray_type_are_refused_where_configured(void **state)
{
    (void)state;
    static const struct {
        uint16_t type;
        size_t len;
    } bad[] = {{42, 0}, {0, 8}, {1000, 8}};
    enum { NBAD = sizeof bad / sizeof bad[0] };
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    ru_log_begin();
    hostile_config(&cfg);
    cfg.reject_empty = true;
    cfg.type_min = 1;
    cfg.type_max = 999;
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);
    rp_sid good_sid;
    int good = connect_session(port, &good_sid);

    for (size_t i = 0; i < NBAD; i++) {
        rp_sid sid;
        int fd = connect_session(port, &sid);
        uint8_t wire[4 + 8];
        size_t n = su_frame(wire, bad[i].type, "12345678", bad[i].len);
        uint64_t t0 = su_now_ms();
        su_send_all(fd, wire, n);
        printf("%s: closed after %llu ms\n", i ? "stray type" : "empty payload",
               (unsigned long long)ms_until_closed(fd, t0));
        close(fd);
        SU_WAIT(ru_reason_of(sid) >= 0 && ru_proto_lines_for(sid) == 1);
        assert_int_equal(ru_reason_of(sid), RP_LEAVE_PROTOCOL);
        assert_int_equal(ru_proto_lines_for(sid), 1);
        su_ping(good, 9); /* the neighbour is untouched */
        su_sleep_ms(150); /* under the log's 10 lines a second */
    }
    close(good);
    SU_WAIT(su_sessions(srv) == 0);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PROTOCOL), NBAD);
    /* The session count drops when the teardown begins; on_leave runs
       once the session's last op is back (under TSan and load, after). */
    SU_WAIT(ru_reason_of(good_sid) >= 0);
    assert_int_equal(ru_reason_of(good_sid), RP_LEAVE_PEER_CLOSED);
    su_finish(srv, &ev, before);
    ru_log_end();
}

int main(int argc, char **argv)
{
    rng = t_seed();
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(
            malformed_frames_close_only_their_session_promptly, reset_events),
        cmocka_unit_test_setup(a_burst_of_protocol_errors_is_rate_limited,
                               reset_events),
        cmocka_unit_test_setup(
            empty_payload_and_stray_type_are_refused_where_configured,
            reset_events),
        cmocka_unit_test_setup(
            connect_and_reset_storm_leaves_bystanders_unharmed, reset_events),
        cmocka_unit_test_setup(
            hundred_peers_that_never_read_are_cut_with_memory_bounded,
            reset_events),
        cmocka_unit_test_setup(double_disconnect_is_harmless, reset_events),
        cmocka_unit_test_setup(server_on_a_refused_io_uring_logs_the_reason,
                               reset_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
