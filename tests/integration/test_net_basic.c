/*
 * The network server's core on a real loopback socket, once per backend:
 * framed and raw echo, stale ids, disconnect, broadcast, config validation,
 * and a clean stop.
 */
#include "net_util.h"

static uint64_t seed_state;

static void framed_echo_returns_every_frame_in_order(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.io_threads = 2;
    cfg.recv_buffer_size = 512; /* frames cut across receives */
    struct rp_server *srv = nt_start(&cfg);
    enum { CLIENTS = 3, FRAMES = 200 };
    int fds[CLIENTS];
    for (int c = 0; c < CLIENTS; c++)
        fds[c] = nt_connect(srv);
    static uint8_t out[CLIENTS][FRAMES * 1100], in[FRAMES * 1100];
    size_t len[CLIENTS] = {0};
    for (int c = 0; c < CLIENTS; c++) {
        for (int i = 0; i < FRAMES; i++) {
            uint8_t payload[1024];
            uint16_t n = (uint16_t)t_rand_range(&seed_state, 1, sizeof payload);
            for (uint16_t k = 0; k < n; k++)
                payload[k] = (uint8_t)t_rand(&seed_state);
            len[c] += nt_frame(out[c] + len[c], (uint16_t)(i + 1), payload, n);
        }
        nt_write_all(fds[c], out[c], len[c]);
    }
    for (int c = 0; c < CLIENTS; c++) {
        nt_read_all(fds[c], in, len[c]);
        assert_memory_equal(in, out[c], len[c]);
        close(fds[c]);
    }
    NT_WAIT_FOR(nt_count(&nt_rec.nleft) == CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(nt_rec.reasons[i], RP_LEAVE_PEER_CLOSED);
    struct rp_server_stats st;
    rp_server_get_stats(srv, &st);
    assert_int_equal(st.packets_in, CLIENTS * FRAMES);
    assert_int_equal(st.packets_out, CLIENTS * FRAMES);
    assert_int_equal(st.accepts, CLIENTS);
    assert_int_equal(st.leaves[RP_LEAVE_PEER_CLOSED], CLIENTS);
    assert_int_equal(st.sessions, 0);
    assert_true(st.sends >= 1 && st.sends <= st.packets_out);
    rp_server_destroy(srv);
}

static void stale_sid_is_rejected_after_leave_and_slot_reuse(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.max_sessions = 1;
    struct rp_server *srv = nt_start(&cfg);
    int a = nt_connect(srv);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == 1);
    rp_sid old = nt_rec.joined[0];
    assert_true(old != RP_SID_NONE);
    close(a);
    NT_WAIT_FOR(nt_count(&nt_rec.nleft) == 1);
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(8, 7, &pkt), 0);
    assert_int_equal(rp_packet_put_u32(pkt, 0xdeadbeef), 0);
    assert_int_equal(rp_server_send(srv, old, pkt), -ENOTCONN);

    int b = nt_connect(srv);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == 2);
    rp_sid cur = nt_rec.joined[1];
    assert_int_equal(rp_sid_slot(cur), rp_sid_slot(old)); /* reused */
    assert_true(rp_sid_gen(cur) != rp_sid_gen(old));
    assert_int_equal(rp_server_send(srv, old, pkt), -ENOTCONN);
    assert_int_equal(rp_server_disconnect(srv, old), -ENOTCONN);
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(rp_server_peer(srv, old, &ss, &sl), -ENOTCONN);
    assert_int_equal(rp_server_peer(srv, cur, &ss, &sl), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    /* The new occupant gets only what was sent to its own id. */
    assert_int_equal(rp_server_send(srv, cur, pkt), 0);
    uint8_t got[8];
    nt_read_all(b, got, 8);
    assert_int_equal(got[0], 4);
    assert_int_equal(got[2], 7);
    assert_int_equal(got[4], 0xef);
    rp_packet_unref(pkt);
    close(b);
    rp_server_destroy(srv);
}

static void raw_mode_echoes_the_byte_stream(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.mode = RP_SERVER_RAW;
    struct rp_server *srv = nt_start(&cfg);
    int fd = nt_connect(srv);
    static uint8_t out[200000], in[200000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (uint8_t)t_rand(&seed_state);
    nt_write_all(fd, out, sizeof out);
    nt_read_all(fd, in, sizeof in);
    assert_memory_equal(in, out, sizeof out);
    close(fd);
    NT_WAIT_FOR(nt_count(&nt_rec.nleft) == 1);
    struct rp_server_stats st;
    rp_server_get_stats(srv, &st);
    assert_int_equal(st.bytes_in, sizeof out);
    assert_int_equal(st.bytes_out, sizeof out);
    rp_server_destroy(srv);
}

static void disconnect_twice_is_harmless_and_leaves_once(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    struct rp_server *srv = nt_start(&cfg);
    int fd = nt_connect(srv);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == 1);
    rp_sid sid = nt_rec.joined[0];
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(4, 9, &pkt), 0);
    rp_packet_put_u32(pkt, 42);
    assert_int_equal(rp_server_send(srv, sid, pkt), 0);
    rp_packet_unref(pkt);
    assert_int_equal(rp_server_disconnect(srv, sid), 0);
    int second = rp_server_disconnect(srv, sid);
    assert_true(second == 0 || second == -ENOTCONN);
    /* The packet queued before the kick still arrives, then EOF. */
    uint8_t buf[64];
    assert_int_equal(nt_read_to_eof(fd, buf, sizeof buf), 8);
    assert_int_equal(buf[2], 9);
    NT_WAIT_FOR(nt_count(&nt_rec.nleft) == 1);
    assert_int_equal(nt_rec.reasons[0], RP_LEAVE_KICKED);
    assert_int_equal(rp_server_disconnect(srv, sid), -ENOTCONN);
    close(fd);
    rp_server_destroy(srv);
    assert_int_equal(nt_count(&nt_rec.nleft), 1);
}

static void broadcast_shares_one_packet(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.io_threads = 2;
    struct rp_server *srv = nt_start(&cfg);
    enum { N = 4 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = nt_connect(srv);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == N);
    rp_sid ids[N + 1];
    memcpy(ids, nt_rec.joined, sizeof(rp_sid) * N);
    ids[N] = rp_sid_make(5000, 77); /* never issued */
    struct rp_packet_pool_stats before, after;
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(100, 3, &pkt), 0);
    for (int i = 0; i < 100; i++)
        rp_packet_put_u8(pkt, (uint8_t)i);
    rp_packet_pool_stats(&before);
    assert_int_equal(rp_server_broadcast(srv, ids, N + 1, pkt), N);
    for (int i = 0; i < N; i++) {
        uint8_t buf[104];
        nt_read_all(fds[i], buf, sizeof buf);
        assert_int_equal(buf[0], 100);
        assert_int_equal(buf[2], 3);
        assert_int_equal(buf[4 + 99], 99);
    }
    rp_packet_pool_stats(&after);
    assert_int_equal(after.created, before.created); /* no copies */
    rp_packet_unref(pkt);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    rp_server_destroy(srv);
}

static void config_validation_names_the_field(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    char err[160];
    nt_config(&cfg);
    assert_int_equal(rp_server_config_validate(&cfg, err, sizeof err), 0);
    cfg.io_threads = 0;
    assert_int_equal(rp_server_config_validate(&cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "io_threads = 0"));
    nt_config(&cfg);
    cfg.send_queue_limit = 10;
    assert_int_equal(rp_server_config_validate(&cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "send_queue_limit"));
    nt_config(&cfg);
    cfg.listen_addr = "localhost";
    assert_int_equal(rp_server_config_validate(&cfg, NULL, 0), -EINVAL);
    struct rp_server *srv = NULL;
    assert_int_equal(rp_server_create(&cfg, &srv), -EINVAL);
    assert_null(srv);
    nt_config(&cfg);
    cfg.max_iov = 0;
    assert_int_equal(rp_server_config_validate(&cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "max_iov"));
    assert_string_equal(rp_leave_reason_name(RP_LEAVE_PEER_CLOSED),
                        "peer_closed");
    assert_string_equal(rp_leave_reason_name(RP_LEAVE_SEND_OVERFLOW),
                        "send_overflow");
}

static void stop_ends_every_session_and_leaks_nothing(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.io_threads = 2;
    struct rp_server *srv = nt_start(&cfg);
    enum { N = 6 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = nt_connect(srv);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == N);
    /* Queued replies drain before the stop ends the sessions. */
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(16, 5, &pkt), 0);
    rp_packet_put_u64(pkt, 1);
    for (int i = 0; i < N; i++)
        assert_int_equal(rp_server_send(srv, nt_rec.joined[i], pkt), 0);
    rp_packet_unref(pkt);
    rp_server_stop(srv);
    rp_server_stop(srv); /* idempotent */
    assert_int_equal(nt_count(&nt_rec.nleft), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(nt_rec.reasons[i], RP_LEAVE_SERVER_STOP);
    struct rp_server_stats st;
    rp_server_get_stats(srv, &st);
    assert_int_equal(st.sessions, 0);
    assert_int_equal(st.sessions_max, N);
    assert_int_equal(st.leaves[RP_LEAVE_SERVER_STOP], N);
    for (int i = 0; i < N; i++) {
        uint8_t buf[64];
        assert_int_equal(nt_read_to_eof(fds[i], buf, sizeof buf), 12);
        close(fds[i]);
    }
    rp_server_destroy(srv);
    struct rp_packet_pool_stats ps;
    rp_packet_pool_stats(&ps);
    assert_int_equal(ps.created, ps.freed);
}

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    seed_state = t_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framed_echo_returns_every_frame_in_order),
        cmocka_unit_test(stale_sid_is_rejected_after_leave_and_slot_reuse),
        cmocka_unit_test(raw_mode_echoes_the_byte_stream),
        cmocka_unit_test(disconnect_twice_is_harmless_and_leaves_once),
        cmocka_unit_test(broadcast_shares_one_packet),
        cmocka_unit_test(config_validation_names_the_field),
        cmocka_unit_test(stop_ends_every_session_and_leaks_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
