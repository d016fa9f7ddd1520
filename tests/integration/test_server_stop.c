/*
 * Graceful stop (rp_server_stop): with sends queued for every session, each
 * client still receives everything queued before the stop, in order, then
 * the server closes it; on_leave runs exactly once per session with
 * SERVER_STOP; new connections are refused; a second stop is harmless.
 * Called on one of the server's own threads (an I/O thread's callback, the
 * accept filter, a group handler), where it would join itself, the stop is
 * refused with -EDEADLK and the server runs on until a stop from outside.
 */
#include "group_util.h"

#define CLIENTS 50
#define QUEUED 64 /* packets queued per session before the stop */
#define PAYLOAD 4000

static struct su_events ev;
static uint64_t rng;

static void *stop_main(void *arg)
{
    rp_server_stop(arg);
    return NULL;
}

static void fill(uint8_t *p, uint32_t client, uint32_t k)
{
    uint64_t x = rng ^ ((uint64_t)client << 32 | k);
    memcpy(p, &client, 4);
    memcpy(p + 4, &k, 4);
    for (size_t i = 8; i < PAYLOAD; i++)
        p[i] = (uint8_t)t_rand(&x);
}

static void stop_delivers_queued_sends_and_ends_every_session(void **state)
{
    (void)state;
    static int fd[CLIENTS];
    static rp_sid sid[CLIENTS];
    static uint8_t payload[PAYLOAD], want[PAYLOAD];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    cfg.io_threads = 2;
    cfg.stop_drain_ms = 10000; /* "up to": a slow machine must not lose data */
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);

    /* Client i's session is found by its first frame's type. */
    for (int i = 0; i < CLIENTS; i++) {
        fd[i] = su_connect(port);
        su_ping(fd[i], (uint16_t)i);
    }
    SU_WAIT(atomic_load(&ev.joins) == CLIENTS);
    assert_int_equal(atomic_load(&ev.joins), CLIENTS);
    for (int i = 0; i < CLIENTS; i++) {
        struct sockaddr_in local, peer;
        socklen_t len = sizeof local;
        getsockname(fd[i], (struct sockaddr *)&local, &len);
        for (int j = 0; j < CLIENTS; j++) {
            struct sockaddr_storage ss;
            socklen_t plen = sizeof ss;
            if (rp_server_peer(srv, ev.joined[j], &ss, &plen) < 0)
                continue;
            memcpy(&peer, &ss, sizeof peer);
            if (peer.sin_port == local.sin_port)
                sid[i] = ev.joined[j];
        }
        assert_true(sid[i] != RP_SID_NONE);
    }

    /* Queue far more than the socket buffers hold while nobody reads. */
    for (uint32_t k = 0; k < QUEUED; k++)
        for (uint32_t i = 0; i < CLIENTS; i++) {
            struct rp_packet *pkt;
            fill(payload, i, k);
            assert_int_equal(rp_packet_create(PAYLOAD, (uint16_t)k, &pkt), 0);
            assert_int_equal(rp_packet_put_bytes(pkt, payload, PAYLOAD), 0);
            assert_int_equal(rp_server_send(srv, sid[i], pkt), 0);
            rp_packet_unref(pkt);
        }

    pthread_t stopper;
    assert_int_equal(pthread_create(&stopper, NULL, stop_main, srv), 0);

    /* While it drains: a newcomer is refused (connect fails, or it is
       closed without ever becoming a session). The stop's first step shuts
       the listener down and ends the accept thread: waited for, not slept
       for, as a loaded machine may not run the stopper for a while. */
    SU_WAIT(t_thread_state("rp-accept", NULL, NULL) == -ENOENT);
    assert_int_equal(t_thread_state("rp-accept", NULL, NULL), -ENOENT);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(late >= 0);
    if (connect(late, (struct sockaddr *)&sa, sizeof sa) == 0)
        assert_int_equal(su_wait_closed(late, SU_WAIT_MS), 0);
    close(late);

    for (uint32_t i = 0; i < CLIENTS; i++) {
        for (uint32_t k = 0; k < QUEUED; k++) {
            fill(want, i, k);
            su_expect_frame(fd[i], (uint16_t)k, want, PAYLOAD);
        }
        assert_int_equal(su_wait_closed(fd[i], SU_WAIT_MS), 0);
    }
    pthread_join(stopper, NULL);

    struct rp_server_stats s;
    su_stats(srv, &s);
    uint64_t late_joined = atomic_load(&ev.joins) - CLIENTS;
    assert_true(late_joined <= 1);
    assert_int_equal(s.sessions, 0);
    assert_int_equal(s.leaves[RP_LEAVE_SERVER_STOP], CLIENTS + late_joined);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_SERVER_STOP]),
                     CLIENTS + late_joined);
    assert_int_equal(s.packets_out, (uint64_t)CLIENTS * (QUEUED + 1));

    /* After the stop the port is closed. */
    late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(late, (struct sockaddr *)&sa, sizeof sa), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(late);

    /* Sends after the stop find no session. */
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(1, 1, &pkt), 0);
    assert_int_equal(rp_server_send(srv, sid[0], pkt), -ENOTCONN);
    rp_packet_unref(pkt);

    for (int i = 0; i < CLIENTS; i++)
        close(fd[i]);
    su_finish(srv, &ev, before); /* stops a second time: harmless */
}

/* A stop with no session and a server destroyed without a stop. */
static void stop_and_destroy_are_clean_on_an_idle_server(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    struct rp_server *srv = su_start(&cfg);
    int fd = su_connect(rp_server_port(srv));
    su_ping(fd, 1);
    rp_server_destroy(srv); /* stops first */
    assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
    close(fd);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_SERVER_STOP]), 1);
    su_events_check_once(&ev);
    assert_int_equal(su_packets_alive(), before);

    su_events_reset(&ev);
    srv = su_start(&cfg);
    rp_server_stop(srv);
    rp_server_stop(srv);
    assert_int_equal(su_sessions(srv), 0);
    rp_server_destroy(srv);
    assert_int_equal(atomic_load(&ev.joins), 0);
}

/* ---- a stop from the server's own threads -------------------------------- */

/* What each refused call returned (1: not called yet). */
static _Atomic int rc_filter = 1, rc_message = 1, rc_leave = 1;
static _Atomic int rc_group_message = 1, rc_group_tick = 1;
static _Atomic bool hooks_on;

static int own_filter(const struct sockaddr *addr, socklen_t len, void *user)
{
    struct su_events *events = user;
    (void)addr;
    (void)len;
    if (atomic_load(&hooks_on))
        atomic_store(&rc_filter, rp_server_stop(events->srv));
    return 0;
}

static void own_on_message(struct rp_server *srv, rp_sid sid, void *data,
                           const struct rp_message *msg, void *user)
{
    if (atomic_load(&hooks_on)) {
        atomic_store(&rc_message, rp_server_stop(srv));
        rp_server_destroy(srv); /* refused as well: the server lives on */
    }
    su_on_message(srv, sid, data, msg, user); /* and echoes */
}

static void own_on_leave(struct rp_server *srv, rp_sid sid, void *data,
                         enum rp_leave_reason reason, void *user)
{
    /* Runs on the I/O thread while the main thread's stop joins it. */
    if (atomic_load(&hooks_on))
        atomic_store(&rc_leave, rp_server_stop(srv));
    su_on_leave(srv, sid, data, reason, user);
}

static void stop_on_the_servers_own_threads_is_refused(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    cfg.io_threads = 2;
    cfg.cb.accept_filter = own_filter;
    cfg.cb.on_message = own_on_message;
    cfg.cb.on_leave = own_on_leave;
    atomic_store(&rc_filter, 1);
    atomic_store(&rc_message, 1);
    atomic_store(&rc_leave, 1);
    atomic_store(&hooks_on, true);
    struct rp_server *srv = su_start(&cfg);
    int fd[4];
    for (int i = 0; i < 4; i++) {
        fd[i] = su_connect(rp_server_port(srv));
        su_ping(fd[i], (uint16_t)i); /* answered: nothing hangs */
    }
    assert_int_equal(atomic_load(&rc_filter), -EDEADLK);
    assert_int_equal(atomic_load(&rc_message), -EDEADLK);
    /* Still serving every session, still accepting. */
    for (int i = 0; i < 4; i++)
        su_ping(fd[i], (uint16_t)(10 + i));
    int late = su_connect(rp_server_port(srv));
    su_ping(late, 20);
    assert_int_equal(su_sessions(srv), 5);

    /* The stop from outside ends every session (each on_leave, refused
       in turn, once) and joins every thread. */
    assert_int_equal(rp_server_stop(srv), 0);
    assert_int_equal(atomic_load(&rc_leave), -EDEADLK);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_SERVER_STOP]), 5);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(su_wait_closed(fd[i], SU_WAIT_MS), 0);
        close(fd[i]);
    }
    assert_int_equal(su_wait_closed(late, SU_WAIT_MS), 0);
    close(late);
    assert_int_equal(rp_server_stop(srv), 0); /* idempotent */
    atomic_store(&hooks_on, false);
    su_finish(srv, &ev, before);
}

static void stop_self_in_group_message(struct gu_group *gg, struct rp_group *g,
                                       rp_sid sid, uint32_t seq)
{
    (void)gg;
    (void)sid;
    (void)seq;
    atomic_store(&rc_group_message, rp_server_stop(rp_group_server(g)));
    rp_server_destroy(rp_group_server(g)); /* refused: nothing freed */
}

static void stop_self_in_group_tick(struct gu_group *gg, struct rp_group *g,
                                    int64_t elapsed_ns)
{
    (void)elapsed_ns;
    atomic_store(&rc_group_tick, rp_server_stop(rp_group_server(g)));
    atomic_store(&gg->on_tick, NULL);
}

static void stop_in_a_group_handler_is_refused(void **state)
{
    enum { N = 6 };
    static struct gu_group grp[2];
    static int fd[N];
    static rp_sid sid[N];
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    su_events_reset(&ev);
    gu_log_reset();
    gu_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    ev.srv = srv;
    assert_int_equal(
        rp_group_set_layout(srv, *(const enum rp_group_layout *)*state), 0);
    memset(grp, 0, sizeof grp);
    gu_group(srv, &grp[0], 0, 10);
    gu_group(srv, &grp[1], 1, 0);
    atomic_store(&rc_group_message, 1);
    atomic_store(&rc_group_tick, 1);
    atomic_store(&grp[0].on_msg, stop_self_in_group_message);
    atomic_store(&grp[0].on_tick, stop_self_in_group_tick);
    assert_int_equal(rp_server_start(srv), 0);

    for (int i = 0; i < N; i++)
        fd[i] = su_connect(rp_server_port(srv));
    gu_match_sids(srv, &ev, fd, sid, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(rp_group_move(srv, sid[i], grp[i % 2].g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == N);
    gu_send_seq(fd[0], 0);
    SU_WAIT(atomic_load(&rc_group_message) != 1 &&
            atomic_load(&rc_group_tick) != 1);
    assert_int_equal(atomic_load(&rc_group_message), -EDEADLK);
    assert_int_equal(atomic_load(&rc_group_tick), -EDEADLK);

    /* Both groups still handle their sessions' frames. */
    atomic_store(&grp[0].on_msg, NULL);
    gu_send_seq(fd[0], 1);
    for (int i = 1; i < N; i++) {
        gu_send_seq(fd[i], 0);
        gu_send_seq(fd[i], 1);
    }
    SU_WAIT(atomic_load(&gu_log.grp_msgs) == 2 * N);
    assert_int_equal(atomic_load(&gu_log.grp_msgs), 2 * N);

    assert_int_equal(rp_server_stop(srv), 0);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_SERVER_STOP]), N);
    struct gu_summary sum;
    gu_check(&sum, true, 2);
    assert_int_equal(sum.sessions, N);
    assert_int_equal(sum.by_reason[RP_LEAVE_SERVER_STOP], N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(su_wait_closed(fd[i], SU_WAIT_MS), 0);
        close(fd[i]);
    }
    su_finish(srv, &ev, before);
}

static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;

int main(int argc, char **argv)
{
    rng = t_seed();
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stop_delivers_queued_sends_and_ends_every_session),
        cmocka_unit_test(stop_and_destroy_are_clean_on_an_idle_server),
        cmocka_unit_test(stop_on_the_servers_own_threads_is_refused),
        cmocka_unit_test_prestate(stop_in_a_group_handler_is_refused,
                                  (void *)&hetero),
        cmocka_unit_test_prestate(stop_in_a_group_handler_is_refused,
                                  (void *)&homo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
