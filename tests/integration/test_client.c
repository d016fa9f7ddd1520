/*
 * libringport-client against a real ringport server (framed echo, this
 * run's backend): frames of every size come back whole and in order, in
 * blocking mode and in the caller's own poll loop; a refused connect is
 * reported; after the server cuts the session the client backs off,
 * reconnects by itself and sends what was queued meanwhile, in order; a
 * frame over the client's max_payload ends the connection with -EMSGSIZE;
 * the back-off doubles, is capped and stays within its jitter bounds.
 */
#include "server_util.h"

#include <poll.h>
#include <ringport/client.h>

static struct su_events ev;
static uint64_t rng;  /* sizes and jitter draws */
static uint64_t seed; /* payload bytes: fixed for the whole run */

static struct rp_client *client_for(uint16_t port, int reconnect)
{
    struct rp_client_config cc;
    struct rp_client *c = NULL;
    rp_client_config_init(&cc, "127.0.0.1", port);
    cc.reconnect = reconnect;
    cc.backoff_min_ms = 5;
    cc.backoff_max_ms = 40;
    cc.seed = rng;
    assert_int_equal(rp_client_create(&cc, &c), 0);
    return c;
}

/* Payload of frame k: its index, then bytes drawn from (seed, k). */
static uint16_t fill(uint8_t *p, uint32_t k, uint16_t len)
{
    uint64_t x = seed ^ k;
    for (uint16_t i = 0; i < len; i++)
        p[i] = (uint8_t)t_rand(&x);
    if (len >= 4)
        memcpy(p, &k, 4);
    return len;
}

/* Polls until frames [first, first + n) came back in order, each checked
   byte by byte; fails the test past SU_WAIT_MS. */
static void expect_echoes(struct rp_client *c, uint32_t first, uint32_t n,
                          const uint16_t *lens)
{
    static uint8_t want[8192];
    uint64_t deadline = su_now_ms() + SU_WAIT_MS;
    uint32_t k = first;
    struct rp_client_frame f;
    while (k < first + n) {
        assert_true(su_now_ms() < deadline);
        assert_true(rp_client_poll(c, 50) >= 0);
        while (k < first + n && rp_client_recv(c, &f) == 1) {
            uint16_t len = fill(want, k, lens[k]);
            assert_int_equal(f.type, (uint16_t)(k & 0xffff));
            assert_int_equal(f.len, len);
            assert_memory_equal(f.payload, want, len);
            k++;
        }
    }
}

static void client_echoes_frames_of_every_size_in_order(void **state)
{
    (void)state;
    static uint16_t lens[600];
    static uint8_t buf[8192];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    struct rp_server *srv = su_start(&cfg);

    struct rp_client *c = client_for(rp_server_port(srv), 0);
    assert_int_equal(rp_client_send(c, 1, "x", 1), -ENOTCONN);
    assert_int_equal(rp_client_connect(c, SU_WAIT_MS), 0);
    assert_int_equal(rp_client_state(c), RP_CLIENT_CONNECTED);
    /* In batches: a client that only writes while the server echoes
       would pass the server's send-queue limit and be cut. */
    for (uint32_t k = 0; k < 600; k++) {
        /* Every small size, then sizes up to the server's 8,192. */
        lens[k] = k < 300 ? (uint16_t)k : (uint16_t)(t_rand(&rng) % 8193);
        assert_int_equal(
            rp_client_send(c, (uint16_t)k, buf, fill(buf, k, lens[k])), 0);
        if (k % 50 == 49)
            expect_echoes(c, k - 49, 50, lens);
    }
    assert_int_equal(rp_client_flush(c, SU_WAIT_MS), 0);
    struct rp_client_stats st;
    rp_client_get_stats(c, &st);
    assert_int_equal(st.frames_out, 600);
    assert_int_equal(st.frames_in, 600);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.drops, 0);
    rp_client_destroy(c);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

static void client_reports_a_refused_connect(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    struct rp_server *srv = su_start(&cfg);
    uint16_t port = rp_server_port(srv);
    rp_server_destroy(srv); /* nothing listens on 'port' any more */

    struct rp_client *c = client_for(port, 0);
    assert_int_equal(rp_client_connect(c, SU_WAIT_MS), -ECONNREFUSED);
    assert_int_equal(rp_client_state(c), RP_CLIENT_IDLE);
    assert_int_equal(rp_client_last_error(c), -ECONNREFUSED);
    assert_int_equal(rp_client_fd(c), -1);
    rp_client_destroy(c);

    struct rp_client_config cc;
    rp_client_config_init(&cc, "127.0.0.1", 0);
    assert_int_equal(rp_client_create(&cc, &c), -EINVAL);
}

static void client_runs_in_the_callers_poll_loop(void **state)
{
    (void)state;
    static uint16_t lens[1000];
    static uint8_t buf[512];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    struct rp_server *srv = su_start(&cfg);

    struct rp_client *c = client_for(rp_server_port(srv), 0);
    assert_int_equal(rp_client_start(c), 0);
    for (uint32_t k = 0; k < 1000; k++) {
        lens[k] = (uint16_t)(t_rand(&rng) % 513);
        assert_int_equal(
            rp_client_send(c, (uint16_t)k, buf, fill(buf, k, lens[k])), 0);
    }
    uint64_t deadline = su_now_ms() + SU_WAIT_MS;
    uint32_t k = 0;
    struct rp_client_frame f;
    static uint8_t want[512];
    while (k < 1000) {
        assert_true(su_now_ms() < deadline);
        /* The caller's own loop: its poll, then the client's I/O. */
        struct pollfd p = {.fd = rp_client_fd(c),
                           .events = rp_client_events(c)};
        assert_true(p.fd >= 0);
        poll(&p, 1, 50);
        assert_true(rp_client_poll(c, 0) >= 0);
        while (rp_client_recv(c, &f) == 1) {
            assert_int_equal(f.type, (uint16_t)k);
            assert_int_equal(f.len, fill(want, k, lens[k]));
            assert_memory_equal(f.payload, want, f.len);
            k++;
        }
    }
    assert_int_equal(rp_client_state(c), RP_CLIENT_CONNECTED);
    rp_client_destroy(c);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

static rp_sid last_joined(void)
{
    pthread_mutex_lock(&ev.lock);
    rp_sid sid = ev.n_joined ? ev.joined[ev.n_joined - 1] : RP_SID_NONE;
    pthread_mutex_unlock(&ev.lock);
    return sid;
}

static void client_reconnects_and_sends_what_was_queued_in_order(void **state)
{
    (void)state;
    static uint16_t lens[400];
    static uint8_t buf[1024];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    struct rp_server *srv = su_start(&cfg);
    struct rp_client *c = client_for(rp_server_port(srv), 1);
    assert_int_equal(rp_client_connect(c, SU_WAIT_MS), 0);

    for (int round = 0; round < 4; round++) {
        uint32_t base = (uint32_t)round * 100;
        for (uint32_t k = base; k < base + 50; k++) {
            lens[k] = (uint16_t)(t_rand(&rng) % 1025);
            assert_int_equal(
                rp_client_send(c, (uint16_t)k, buf, fill(buf, k, lens[k])), 0);
        }
        expect_echoes(c, base, 50, lens);

        /* The server cuts the session; the client sees the drop. */
        SU_WAIT(atomic_load(&ev.joins) == (uint64_t)round + 1);
        assert_int_equal(rp_server_disconnect(srv, last_joined()), 0);
        uint64_t deadline = su_now_ms() + SU_WAIT_MS;
        while (rp_client_state(c) == RP_CLIENT_CONNECTED) {
            assert_true(su_now_ms() < deadline);
            assert_true(rp_client_poll(c, 20) >= 0);
        }
        assert_int_equal(rp_client_state(c), RP_CLIENT_BACKOFF);
        assert_true(rp_client_timeout_ms(c) >= 0);

        /* Sent while disconnected: all of it arrives after the
           reconnect, in order. */
        for (uint32_t k = base + 50; k < base + 100; k++) {
            lens[k] = (uint16_t)(t_rand(&rng) % 1025);
            assert_int_equal(
                rp_client_send(c, (uint16_t)k, buf, fill(buf, k, lens[k])), 0);
        }
        expect_echoes(c, base + 50, 50, lens);
        struct rp_client_stats st;
        rp_client_get_stats(c, &st);
        assert_int_equal(st.connects, (uint64_t)round + 2);
        assert_int_equal(st.drops, (uint64_t)round + 1);
    }
    rp_client_destroy(c);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

static void
client_drops_a_connection_that_sends_an_oversized_frame(void **state)
{
    (void)state;
    static uint8_t buf[200];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    struct rp_server *srv = su_start(&cfg);

    struct rp_client_config cc;
    struct rp_client *c;
    rp_client_config_init(&cc, "127.0.0.1", rp_server_port(srv));
    cc.max_payload = 100;
    cc.reconnect = 0;
    assert_int_equal(rp_client_create(&cc, &c), 0);
    assert_int_equal(rp_client_connect(c, SU_WAIT_MS), 0);
    assert_int_equal(rp_client_send(c, 7, buf, 100), 0);
    assert_int_equal(rp_client_send(c, 8, buf, 200), 0); /* echoed: too big */
    uint64_t deadline = su_now_ms() + SU_WAIT_MS;
    int got = 0;
    struct rp_client_frame f;
    while (rp_client_state(c) != RP_CLIENT_CLOSED) {
        assert_true(su_now_ms() < deadline);
        rp_client_poll(c, 20);
        while (rp_client_recv(c, &f) == 1) {
            assert_int_equal(f.type, 7); /* the good one comes first */
            got++;
        }
    }
    while (rp_client_recv(c, &f) == 1)
        got++;
    assert_int_equal(got, 1);
    assert_int_equal(rp_client_last_error(c), -EMSGSIZE);
    assert_int_equal(rp_client_poll(c, 0), -ENOTCONN);
    assert_int_equal(rp_client_send(c, 9, buf, 1), -ENOTCONN);
    rp_client_destroy(c);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, before);
}

/* rp_client_leave is a clean leave: on a server that keeps a dropped
   session for a minute, the session still ends at once (the client's BYE),
   and every frame queued before the leave was delivered first. */
static void client_leave_ends_a_resumable_session_at_once(void **state)
{
    (void)state;
    static uint8_t buf[256];
    struct rp_server_config cfg;
    uint64_t before = su_packets_alive();
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    atomic_store(&ev.echo, false);
    cfg.resume_grace_ms = 60000;
    struct rp_server *srv = su_start(&cfg);
    struct rp_client_config cc;
    struct rp_client *c;
    rp_client_config_init(&cc, "127.0.0.1", rp_server_port(srv));
    cc.resume = 1;
    assert_int_equal(rp_client_create(&cc, &c), 0);
    assert_int_equal(rp_client_connect(c, SU_WAIT_MS), 0);
    for (int k = 0; k < 50; k++)
        assert_int_equal(rp_client_send(c, 1, buf, sizeof buf), 0);
    assert_int_equal(rp_client_leave(c, SU_WAIT_MS), 0);
    assert_int_equal(rp_client_state(c), RP_CLIENT_CLOSED);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_PEER_CLOSED]), 1);
    assert_int_equal(atomic_load(&ev.messages), 50);
    rp_client_destroy(c);
    su_finish(srv, &ev, before);
}

static void backoff_doubles_up_to_its_cap_within_the_jitter(void **state)
{
    (void)state;
    for (uint32_t attempt = 1; attempt < 40; attempt++) {
        uint64_t d = 100ull << (attempt < 20 ? attempt - 1 : 19);
        if (d > 5000)
            d = 5000;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t b = rp_client_backoff_ms(attempt, 100, 5000, t_rand(&rng));
            lo = b < lo ? b : lo;
            hi = b > hi ? b : hi;
        }
        assert_true(lo >= d / 2);
        assert_true(hi <= d);
        assert_true(hi > lo); /* there is jitter */
    }
    assert_int_equal(rp_client_backoff_ms(3, 100, 5000, 0), 200);
}

int main(int argc, char **argv)
{
    rng = t_seed();
    seed = rng;
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(client_echoes_frames_of_every_size_in_order),
        cmocka_unit_test(client_reports_a_refused_connect),
        cmocka_unit_test(client_runs_in_the_callers_poll_loop),
        cmocka_unit_test(client_reconnects_and_sends_what_was_queued_in_order),
        cmocka_unit_test(
            client_drops_a_connection_that_sends_an_oversized_frame),
        cmocka_unit_test(client_leave_ends_a_resumable_session_at_once),
        cmocka_unit_test(backoff_doubles_up_to_its_cap_within_the_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
