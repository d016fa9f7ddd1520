/*
 * The server's side of tests/stress/test_cancel_enobufs_stress.c: sessions
 * kicked while their multishot receives keep running out of provided
 * buffers, thousands of times, and every one released.
 *
 * One I/O thread, max_sessions 60 (so the thread's ring has the minimum of
 * 64 buffers) of 256 bytes (the smallest recv_buffer_size): 50 clients
 * write frames as fast as the sockets take them, so the ring runs dry over
 * and over. Each session is kicked from its own on_message after a
 * quota of 1..40 frames (a direct end on the owner thread, mid-batch), its
 * client sees the end and connects again. RP_STRESS_SESSIONS sessions
 * (default 3,000) are kicked.
 *
 * Asserted on counters, never on time: every session that joined left
 * exactly once, the stats agree with the callbacks, the sessions gauge
 * returns to 0 once the clients are gone, and no packet outlives the
 * server. A teardown that waited on a timer, or on traffic that no longer
 * comes, would keep a session open and the final wait would fail.
 */
#include "integration/server_util.h"

#define CLIENTS 50
#define MAX_SESSIONS 60
#define FRAME 200

static struct su_events ev;
static uint32_t quota[MAX_SESSIONS]; /* I/O thread only */
static uint32_t seen[MAX_SESSIONS];

static uint32_t quota_of(rp_sid sid)
{
    uint64_t x = sid * 0x9E3779B97F4A7C15ull;
    return 1 + (uint32_t)((x >> 33) % 40);
}

static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    quota[rp_sid_slot(sid)] = quota_of(sid);
    seen[rp_sid_slot(sid)] = 0;
    su_on_join(srv, sid, user);
}

static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)data;
    (void)msg;
    struct su_events *e = user;
    atomic_fetch_add(&e->messages, 1);
    uint32_t slot = rp_sid_slot(sid);
    if (++seen[slot] == quota[slot])
        rp_server_disconnect(srv, sid); /* on the owner: ends it now */
}

static int client_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    assert_true(r == 0 || errno == EINPROGRESS);
    return fd;
}

/* True once the server ended this connection (EOF or reset). */
static bool client_ended(int fd)
{
    char buf[512];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n == 0)
            return true;
        return errno != EAGAIN && errno != EINTR;
    }
}

static void sessions_kicked_mid_enobufs_are_all_released(void **state)
{
    (void)state;
    long target = 3000;
    const char *env = getenv("RP_STRESS_SESSIONS");
    if (env && atol(env) > 0)
        target = atol(env);
    if (target > SU_MAX_SIDS - 2 * CLIENTS)
        target = SU_MAX_SIDS - 2 * CLIENTS; /* the recorder's capacity */
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    struct rp_server_config cfg;
    su_config(&cfg, &ev);
    cfg.io_threads = 1;
    cfg.max_sessions = MAX_SESSIONS;
    cfg.recv_buffer_size = 256;
    cfg.cb.on_join = on_join;
    cfg.cb.on_message = on_message;
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);
    printf("backend %s, %ld sessions to kick\n",
           rp_backend_name(rp_server_backend(srv)), target);

    uint8_t frames[4 * (4 + FRAME)];
    uint8_t payload[FRAME];
    memset(payload, 'x', sizeof payload);
    size_t n = 0;
    for (int i = 0; i < 4; i++)
        n += su_frame(frames + n, 7, payload, FRAME);

    int fd[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fd[i] = client_connect(port);
    uint64_t reconnects = 0, idle_rounds = 0, last_leaves = 0;
    while (atomic_load(&ev.by_reason[RP_LEAVE_KICKED]) < (uint64_t)target) {
        for (int i = 0; i < CLIENTS; i++) {
            if (client_ended(fd[i])) {
                close(fd[i]);
                fd[i] = client_connect(port);
                reconnects++;
                continue;
            }
            ssize_t w = send(fd[i], frames, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w; /* full, connecting or cut: the next round sees */
        }
        /* A hang guard, not a measurement: leaves must keep coming. */
        uint64_t leaves = atomic_load(&ev.leaves);
        idle_rounds = leaves == last_leaves ? idle_rounds + 1 : 0;
        last_leaves = leaves;
        if (idle_rounds > 0 && idle_rounds % 1000 == 0)
            su_sleep_ms(1);
        assert_true(idle_rounds < 2000000);
    }
    for (int i = 0; i < CLIENTS; i++)
        close(fd[i]);
    /* Every session ends (kicked, or its client gone) and is released. */
    SU_WAIT(su_sessions(srv) == 0 &&
            atomic_load(&ev.leaves) == atomic_load(&ev.joins));
    assert_int_equal(su_sessions(srv), 0);
    assert_int_equal(atomic_load(&ev.leaves), atomic_load(&ev.joins));
    struct rp_server_stats s;
    su_stats(srv, &s);
    printf("joined %llu, kicked %llu, reconnects %llu, refused %llu, "
           "frames %llu\n",
           (unsigned long long)atomic_load(&ev.joins),
           (unsigned long long)s.leaves[RP_LEAVE_KICKED],
           (unsigned long long)reconnects, (unsigned long long)s.refused,
           (unsigned long long)atomic_load(&ev.messages));
    su_finish(srv, &ev, before);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sessions_kicked_mid_enobufs_are_all_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
