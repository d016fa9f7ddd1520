/*
 * The server against hostile or unlucky peers, once per backend: a peer
 * that never reads (send-queue limit), malformed frames, silence (idle and
 * first-packet deadlines), a 1-byte drip (frame deadline), refusals
 * (accept_filter, max_sessions) and running out of descriptors (EMFILE).
 */
#include "net_util.h"

#include <sys/resource.h>
#include <sys/syscall.h>

static enum rp_leave_reason only_reason(void)
{
    NT_WAIT_FOR(nt_count(&nt_rec.nleft) == 1);
    return nt_rec.reasons[0];
}

/* The client sees the end of the connection (EOF or reset). */
static void expect_closed(int fd)
{
    uint8_t buf[256];
    (void)nt_read_to_eof(fd, buf, sizeof buf);
    close(fd);
}

static void peer_that_never_reads_is_cut_at_the_queue_limit(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.max_payload = 1024;
    cfg.send_queue_limit = 16384;
    struct rp_server *srv = nt_start(&cfg);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(rp_server_port(srv)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == 1);
    rp_sid sid = nt_rec.joined[0];
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(1000, 1, &pkt), 0);
    uint8_t fill[1000] = {0};
    rp_packet_put_bytes(pkt, fill, sizeof fill);
    int r = 0;
    /* The kernel's buffers absorb some megabytes first; bounded loop. */
    for (int i = 0; i < 200000 && r == 0; i++) {
        r = rp_server_send(srv, sid, pkt);
        if (r == 0 && i % 64 == 63)
            usleep(100);
    }
    assert_int_equal(r, -ENOBUFS);
    assert_int_equal(only_reason(), RP_LEAVE_SEND_OVERFLOW);
    assert_int_equal(rp_server_send(srv, sid, pkt), -ENOTCONN);
    rp_packet_unref(pkt);
    close(fd);
    rp_server_destroy(srv);
    struct rp_packet_pool_stats ps;
    rp_packet_pool_stats(&ps);
    assert_int_equal(ps.created, ps.freed);
}

static void oversized_frame_ends_the_session_as_protocol(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.max_payload = 100;
    struct rp_server *srv = nt_start(&cfg);
    int fd = nt_connect(srv);
    uint8_t buf[256];
    uint8_t good[8] = "abcdefg";
    size_t n = nt_frame(buf, 2, good, sizeof good);
    /* Then a header claiming 5000 bytes, in the same write. */
    buf[n++] = 0x88;
    buf[n++] = 0x13;
    buf[n++] = 1;
    buf[n++] = 0;
    nt_write_all(fd, buf, n);
    expect_closed(fd);
    assert_int_equal(only_reason(), RP_LEAVE_PROTOCOL);
    /* The good frame before the bad header was delivered. */
    assert_int_equal(atomic_load(&nt_rec.messages), 1);
    rp_server_destroy(srv);
}

static void silent_peer_hits_the_idle_timeout(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.idle_timeout_ms = 100;
    struct rp_server *srv = nt_start(&cfg);
    int fd = nt_connect(srv);
    expect_closed(fd);
    assert_int_equal(only_reason(), RP_LEAVE_IDLE_TIMEOUT);
    struct rp_server_stats st;
    rp_server_get_stats(srv, &st);
    assert_int_equal(st.leaves[RP_LEAVE_IDLE_TIMEOUT], 1);
    rp_server_destroy(srv);
}

static void peer_without_a_first_packet_is_cut(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.first_packet_deadline_ms = 100;
    struct rp_server *srv = nt_start(&cfg);
    int fd = nt_connect(srv);
    uint8_t half[2] = {10, 0}; /* bytes, but no whole frame */
    nt_write_all(fd, half, sizeof half);
    expect_closed(fd);
    enum rp_leave_reason why = only_reason();
    /* The frame deadline (10 s default) is far; the first-packet one hit. */
    assert_int_equal(why, RP_LEAVE_FIRST_PACKET);
    rp_server_destroy(srv);
}

static void unfinished_frame_hits_the_frame_deadline(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.frame_deadline_ms = 100;
    struct rp_server *srv = nt_start(&cfg);
    int fd = nt_connect(srv);
    uint8_t whole[16];
    size_t n = nt_frame(whole, 1, "hi", 2);
    nt_write_all(fd, whole, n);
    uint8_t echo[6];
    nt_read_all(fd, echo, 6);
    uint8_t part[3] = {50, 0, 1}; /* a started frame, never finished */
    nt_write_all(fd, part, sizeof part);
    expect_closed(fd);
    assert_int_equal(only_reason(), RP_LEAVE_FRAME_DEADLINE);
    rp_server_destroy(srv);
}

static int refuse_all(const struct sockaddr *addr, socklen_t len, void *user)
{
    (void)addr, (void)len, (void)user;
    return -1;
}

static void accept_filter_and_max_sessions_refuse(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    cfg.cb.accept_filter = refuse_all;
    struct rp_server *srv = nt_start(&cfg);
    expect_closed(nt_connect(srv));
    struct rp_server_stats st;
    rp_server_get_stats(srv, &st);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.accepts, 0);
    assert_int_equal(nt_count(&nt_rec.njoined), 0);
    rp_server_destroy(srv);

    nt_config(&cfg);
    cfg.max_sessions = 1;
    srv = nt_start(&cfg);
    int a = nt_connect(srv);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == 1);
    expect_closed(nt_connect(srv));
    rp_server_get_stats(srv, &st);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.sessions, 1);
    close(a);
    rp_server_destroy(srv);
}

static void out_of_descriptors_sheds_and_recovers(void **state)
{
    (void)state;
    nt_reset();
    struct rp_server_config cfg;
    nt_config(&cfg);
    struct rp_server *srv = nt_start(&cfg);
    int kept = nt_connect(srv);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == 1);
    /* The accept thread back in accept4 (blocked there, its descriptor
       number already reserved) before the limit drops: 'kept' joined
       before that thread returned to accept4, and on a loaded machine
       it may not have yet (its next accept4 would then meet EMFILE and
       shed 'absorb'). */
    long nr = -1;
    NT_WAIT_FOR(t_thread_state("rp-accept", NULL, &nr) == 0 &&
                nr == SYS_accept4);
    int absorb = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int late = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int shed = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(late >= 0 && shed >= 0);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)(shed > late ? shed : late) + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    /* Every lower number taken too: the next accept4 gets EMFILE. */
    int fill[256], nfill = 0;
    while (nfill < 256 && (fill[nfill] = open("/dev/null", O_RDONLY)) >= 0)
        nfill++;
    assert_int_equal(errno, EMFILE);

    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(rp_server_port(srv)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* accept4 reserves its fd before it waits: the call already blocked
       takes one more connection; the one after that finds none left. */
    assert_int_equal(connect(absorb, (struct sockaddr *)&a, sizeof a), 0);
    NT_WAIT_FOR(nt_count(&nt_rec.njoined) == 2);
    assert_int_equal(connect(shed, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(shed, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    expect_closed(shed); /* told at once, not left hanging */
    struct rp_server_stats st;
    rp_server_get_stats(srv, &st);
    assert_true(st.accept_errors >= 1);

    /* The existing session is served meanwhile. */
    uint8_t f[8], e[8];
    size_t n = nt_frame(f, 4, "ping", 4);
    nt_write_all(kept, f, n);
    nt_read_all(kept, e, n);
    assert_memory_equal(e, f, n);

    while (nfill > 0)
        close(fill[--nfill]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(connect(late, (struct sockaddr *)&a, sizeof a), 0);
    setsockopt(late, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    nt_write_all(late, f, n);
    nt_read_all(late, e, n); /* accepting resumed */
    assert_memory_equal(e, f, n);
    close(late);
    close(absorb);
    close(kept);
    rp_server_destroy(srv);
}

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    (void)t_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(peer_that_never_reads_is_cut_at_the_queue_limit),
        cmocka_unit_test(oversized_frame_ends_the_session_as_protocol),
        cmocka_unit_test(silent_peer_hits_the_idle_timeout),
        cmocka_unit_test(peer_without_a_first_packet_is_cut),
        cmocka_unit_test(unfinished_frame_hits_the_frame_deadline),
        cmocka_unit_test(accept_filter_and_max_sessions_refuse),
        cmocka_unit_test(out_of_descriptors_sheds_and_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
