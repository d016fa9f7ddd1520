/*
 * Memory that follows live sessions (src/net/session_table.c, session.c):
 *   - the session table reserves its slots and touches none before use:
 *     slots go out lowest first, released ones before never-used ones, a
 *     stale id stays refused, and the pages of slots never handed out
 *     stay non-resident (mincore);
 *   - a session receives into the thread's provided buffers on both
 *     backends and holds a buffer of its own only while a frame is cut:
 *     a frame split at every byte boundary arrives whole, and each cut
 *     allocates one partial-frame buffer that is freed as soon as the
 *     frame completes; whole frames allocate nothing; a partial frame
 *     left pending holds exactly one buffer while the server goes on, and
 *     a session that ends with one pending (peer close, protocol error)
 *     frees it.
 * The buffers are counted by the I/O threads (rp__server_partial_buffers);
 * every wait is bounded (SU_WAIT), no assertion is on time.
 */
#include "net/net.h"
#include "server_util.h"

#include <sys/mman.h>
#include <unistd.h>

/* ---- the table ------------------------------------------------------------
 */

/* Whether the page holding 'p' is resident. */
static bool resident(const void *p)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t at = (uintptr_t)p & ~(uintptr_t)(page - 1);
    unsigned char vec = 0;
    assert_int_equal(mincore((void *)at, (size_t)page, &vec), 0);
    return vec & 1;
}

static struct rp_session *take(struct rp_server *srv, rp_sid *sid)
{
    struct rp_session *s = rp__table_alloc(&srv->table, sid);
    assert_non_null(s);
    rp__table_publish(s, *sid);
    return s;
}

/* Ends the session in 'sid's slot as its last holder does. */
static void give_back(struct rp_server *srv, rp_sid sid)
{
    struct rp_session *s = rp__slot(srv, sid);
    atomic_fetch_or(&s->state, NET_CLOSING);
    rp__session_put(srv, s);
}

static void
table_hands_out_lowest_slots_and_touches_no_page_before_use(void **state)
{
    (void)state;
    enum { COUNT = 200000 };
    struct rp_server *srv = calloc(1, sizeof *srv);
    assert_non_null(srv);
    assert_int_equal(rp__table_init(&srv->table, COUNT), 0);
    struct net_table *t = &srv->table;
    /* Reserved, not touched: neither end nor the middle is resident. */
    assert_false(resident(&t->slots[0]));
    assert_false(resident(&t->slots[COUNT / 2]));
    assert_false(resident(&t->slots[COUNT - 1]));

    rp_sid sid[8];
    for (uint32_t i = 0; i < 8; i++) {
        take(srv, &sid[i]);
        assert_int_equal(rp_sid_slot(sid[i]), i);
        assert_int_equal(rp_sid_gen(sid[i]), 1); /* a never-used slot */
    }
    /* Released slots come back lowest first, before any new one. */
    give_back(srv, sid[5]);
    give_back(srv, sid[2]);
    give_back(srv, sid[6]);
    assert_null(rp__session_get(srv, sid[2])); /* stale */
    rp_sid again;
    take(srv, &again);
    assert_int_equal(rp_sid_slot(again), 2);
    assert_int_equal(rp_sid_gen(again), 2);
    assert_null(rp__session_get(srv, sid[2])); /* still stale */
    struct rp_session *s = rp__session_get(srv, again);
    assert_non_null(s);
    rp__session_put(srv, s);
    take(srv, &again);
    assert_int_equal(rp_sid_slot(again), 5);
    take(srv, &again);
    assert_int_equal(rp_sid_slot(again), 6);
    take(srv, &again);
    assert_int_equal(rp_sid_slot(again), 8); /* then the next new one */

    /* Churn far past the bitmap's first word: 2,000 at once, half freed
       (every odd one), then 1,000 taken again fill exactly those. */
    rp_sid many[2000];
    for (int i = 0; i < 2000; i++)
        take(srv, &many[i]);
    for (int i = 1; i < 2000; i += 2)
        give_back(srv, many[i]);
    for (int i = 1; i < 2000; i += 2) {
        take(srv, &again);
        assert_int_equal(rp_sid_slot(again), rp_sid_slot(many[i]));
    }
    take(srv, &again);
    assert_int_equal(rp_sid_slot(again), 2009);
    /* Only the low slots were ever written. */
    assert_true(resident(&t->slots[0]));
    assert_false(resident(&t->slots[COUNT / 2]));
    assert_false(resident(&t->slots[COUNT - 1]));
    rp__table_destroy(&srv->table);
    free(srv);
}

static void full_table_refuses_until_a_slot_is_released(void **state)
{
    (void)state;
    struct rp_server *srv = calloc(1, sizeof *srv);
    assert_non_null(srv);
    assert_int_equal(rp__table_init(&srv->table, 3), 0);
    rp_sid sid[3], more;
    for (int i = 0; i < 3; i++)
        take(srv, &sid[i]);
    assert_null(rp__table_alloc(&srv->table, &more));
    give_back(srv, sid[1]);
    take(srv, &more);
    assert_int_equal(rp_sid_slot(more), 1);
    assert_null(rp__table_alloc(&srv->table, &more));
    rp__table_destroy(&srv->table);
    free(srv);
}

/* ---- partial-frame buffers ----------------------------------------------
 */

static struct su_events ev;

static uint64_t partial_held(struct rp_server *srv, uint64_t *allocs)
{
    uint64_t a, f;
    rp__server_partial_buffers(srv, &a, &f);
    if (allocs)
        *allocs = a;
    return a - f;
}

static uint64_t bytes_in(struct rp_server *srv)
{
    struct rp_server_stats st;
    rp_server_get_stats(srv, &st);
    return st.bytes_in;
}

static struct rp_server *framed_server(void)
{
    struct rp_server_config cfg;
    su_events_reset(&ev);
    su_config(&cfg, &ev);
    cfg.mode = RP_SERVER_FRAMED;
    cfg.frame_deadline_ms = 0; /* a cut frame may wait for the test */
    return su_start(&cfg);
}

static void
frame_split_at_every_byte_boundary_allocates_once_per_cut(void **state)
{
    (void)state;
    uint64_t packets = su_packets_alive();
    struct rp_server *srv = framed_server();
    int fd = su_connect(rp_server_port(srv));
    uint8_t payload[12], frame[4 + sizeof payload];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(0xa0 + i);
    size_t len = su_frame(frame, 9, payload, sizeof payload);
    uint64_t sent = 0, allocs0 = 0;
    assert_int_equal(partial_held(srv, &allocs0), 0);
    for (size_t cut = 1; cut < len; cut++) {
        su_send_all(fd, frame, cut);
        sent += cut;
        /* The count comes after the bytes: wait for both. */
        SU_WAIT(bytes_in(srv) == sent && partial_held(srv, NULL) == 1);
        assert_int_equal(bytes_in(srv), sent);
        uint64_t allocs;
        /* The cut frame sits in one buffer, allocated for it. */
        assert_int_equal(partial_held(srv, &allocs), 1);
        assert_int_equal(allocs, allocs0 + cut);
        su_send_all(fd, frame + cut, len - cut);
        sent += len - cut;
        su_expect_frame(fd, 9, payload, sizeof payload);
        /* Whole again: the buffer is gone. */
        SU_WAIT(partial_held(srv, NULL) == 0);
        assert_int_equal(partial_held(srv, NULL), 0);
    }
    /* Whole frames, many per receive, are handed over where they lie. */
    uint64_t before;
    partial_held(srv, &before);
    uint8_t burst[16 * sizeof frame];
    for (int i = 0; i < 16; i++)
        memcpy(burst + i * len, frame, len);
    su_send_all(fd, burst, 16 * len);
    for (int i = 0; i < 16; i++)
        su_expect_frame(fd, 9, payload, sizeof payload);
    uint64_t after;
    assert_int_equal(partial_held(srv, &after), 0);
    /* Loopback may still cut the burst: at most once per receive. */
    assert_true(after - before <= 1);
    close(fd);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, packets);
}

static void partial_frame_then_idle_holds_one_buffer_until_whole(void **state)
{
    (void)state;
    uint64_t packets = su_packets_alive();
    struct rp_server *srv = framed_server();
    int idle = su_connect(rp_server_port(srv));
    int busy = su_connect(rp_server_port(srv));
    uint8_t payload[300], frame[4 + sizeof payload];
    memset(payload, 0x5c, sizeof payload);
    size_t len = su_frame(frame, 3, payload, sizeof payload);
    su_send_all(idle, frame, 100);
    SU_WAIT(bytes_in(srv) == 100 && partial_held(srv, NULL) == 1);
    uint64_t allocs;
    assert_int_equal(partial_held(srv, &allocs), 1);
    /* The server goes on with the other session, whole frames only: the
       idle one's buffer stays, and no other is made. */
    for (int i = 0; i < 50; i++)
        su_ping(busy, 1);
    uint64_t now;
    assert_int_equal(partial_held(srv, &now), 1);
    assert_int_equal(now, allocs);
    su_send_all(idle, frame + 100, len - 100);
    su_expect_frame(idle, 3, payload, sizeof payload);
    SU_WAIT(partial_held(srv, NULL) == 0);
    assert_int_equal(partial_held(srv, NULL), 0);
    close(idle);
    close(busy);
    SU_WAIT(su_sessions(srv) == 0);
    su_finish(srv, &ev, packets);
}

static void session_ending_with_a_partial_frame_frees_its_buffer(void **state)
{
    (void)state;
    uint64_t packets = su_packets_alive();
    struct rp_server *srv = framed_server();
    int fd[4];
    uint8_t frame[4 + 40], payload[40] = {0};
    size_t len = su_frame(frame, 2, payload, sizeof payload);
    for (int i = 0; i < 4; i++) {
        fd[i] = su_connect(rp_server_port(srv));
        su_send_all(fd[i], frame, (size_t)(2 + 9 * i) % len);
    }
    /* 2, 11, 20 and 29 bytes: each session holds one cut frame. */
    SU_WAIT(bytes_in(srv) == 2 + 11 + 20 + 29 && partial_held(srv, NULL) == 4);
    assert_int_equal(partial_held(srv, NULL), 4);
    for (int i = 0; i < 4; i++)
        close(fd[i]);
    SU_WAIT(su_sessions(srv) == 0 && partial_held(srv, NULL) == 0);
    assert_int_equal(su_sessions(srv), 0);
    assert_int_equal(partial_held(srv, NULL), 0);
    su_finish(srv, &ev, packets);
}

static void protocol_error_after_a_partial_frame_frees_its_buffer(void **st)
{
    (void)st;
    uint64_t packets = su_packets_alive();
    struct rp_server *srv = framed_server();
    int fd = su_connect(rp_server_port(srv));
    uint8_t frame[4 + 10], payload[10] = {1, 2, 3};
    size_t len = su_frame(frame, 4, payload, sizeof payload);
    su_send_all(fd, frame, 6);
    SU_WAIT(bytes_in(srv) == 6 && partial_held(srv, NULL) == 1);
    assert_int_equal(partial_held(srv, NULL), 1);
    /* The frame completes, and a header over the payload limit follows
       in the same write: the decoder fails with its buffer held. */
    uint8_t rest[8 + 4] = {0};
    memcpy(rest, frame + 6, len - 6);
    rest[len - 6] = 0xff;
    rest[len - 6 + 1] = 0xff;
    su_send_all(fd, rest, len - 6 + 4);
    /* A protocol error resets: the echo of the whole frame is dropped. */
    assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
    close(fd);
    /* The count drops when the session's end begins, the buffer goes when
       its last op is back: wait for both. */
    SU_WAIT(su_sessions(srv) == 0 && partial_held(srv, NULL) == 0);
    assert_int_equal(su_leaves(srv, RP_LEAVE_PROTOCOL), 1);
    uint64_t allocs;
    assert_int_equal(partial_held(srv, &allocs), 0);
    assert_int_equal(allocs, 1);
    su_finish(srv, &ev, packets);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            table_hands_out_lowest_slots_and_touches_no_page_before_use),
        cmocka_unit_test(full_table_refuses_until_a_slot_is_released),
        cmocka_unit_test(
            frame_split_at_every_byte_boundary_allocates_once_per_cut),
        cmocka_unit_test(partial_frame_then_idle_holds_one_buffer_until_whole),
        cmocka_unit_test(session_ending_with_a_partial_frame_frees_its_buffer),
        cmocka_unit_test(protocol_error_after_a_partial_frame_frees_its_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
