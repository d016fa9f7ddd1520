/*
 * Stopping content groups with sessions inside:
 *   - rp_group_stop: every session inside gets one on_leave(GROUP_STOP) and
 *     goes back to no group (its next frames reach the server's
 *     on_message); moves into the stopped group are refused; the other
 *     groups go on; stopping twice is harmless; stopping from a handler
 *     is refused (-EDEADLK) rather than hanging;
 *   - rp_server_stop: every session in a group, including those in the
 *     middle of a move, gets exactly one final on_leave(SERVER_STOP), and
 *     every on_enter is paired with one on_leave.
 * Both layouts.
 */
#include "group_util.h"

#define PER_GROUP 10
#define CLIENTS 30

static struct su_events ev;
static struct gu_group groups[3];
static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;
/* What rp_group_stop returned inside a handler; 1 until the handler ran.
   Reset by start(): each layout runs the test again in this process, and
   a value left from the first run would let the second go on before its
   own handler ran (that frame then reached the stopped group's server). */
static _Atomic int stop_from_handler = 1;

static struct rp_server *start(void **state)
{
    struct rp_server_config cfg;
    su_events_reset(&ev);
    gu_log_reset();
    atomic_store(&stop_from_handler, 1);
    gu_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    ev.srv = srv;
    assert_int_equal(
        rp_group_set_layout(srv, *(const enum rp_group_layout *)*state), 0);
    memset(groups, 0, sizeof groups);
    for (int i = 0; i < 3; i++)
        gu_group(srv, &groups[i], i, 10);
    assert_int_equal(rp_server_start(srv), 0);
    return srv;
}

static void stop_self_hook(struct gu_group *gg, struct rp_group *g, rp_sid sid,
                           uint32_t seq)
{
    (void)gg;
    (void)sid;
    (void)seq;
    atomic_store(&stop_from_handler, rp_group_stop(g));
}

static void group_stop_moves_every_session_out_once(void **state)
{
    static int fd[2 * PER_GROUP];
    static rp_sid sid[2 * PER_GROUP];
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(state);
    int n = 2 * PER_GROUP;
    for (int i = 0; i < n; i++)
        fd[i] = su_connect(rp_server_port(srv));
    gu_match_sids(srv, &ev, fd, sid, (size_t)n);
    for (int i = 0; i < n; i++)
        assert_int_equal(rp_group_move(srv, sid[i], groups[i % 2].g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == (uint64_t)n);
    atomic_store(&groups[0].on_msg, stop_self_hook);
    gu_send_seq(fd[0], 0);
    SU_WAIT(atomic_load(&stop_from_handler) != 1);
    assert_int_equal(atomic_load(&stop_from_handler), -EDEADLK);
    /* The hook runs after the frame is logged: it was the group's. */
    assert_int_equal(atomic_load(&gu_log.grp_msgs), 1);
    atomic_store(&groups[0].on_msg, NULL);
    for (int i = 1; i < n; i += 2)
        gu_send_seq(fd[i], 0);

    assert_int_equal(rp_group_stop(groups[0].g), 0);
    struct rp_group_stats gs;
    rp_group_get_stats(groups[0].g, &gs);
    assert_int_equal(gs.sessions, 0);
    assert_int_equal(gs.enters, PER_GROUP);
    assert_int_equal(gs.leaves, PER_GROUP);
    assert_int_equal(rp_group_stop(groups[0].g), 0);
    assert_int_equal(rp_group_move(srv, sid[0], groups[0].g, NULL), -ESHUTDOWN);

    /* The stopped group's sessions are served by the server now; the
       other group's by their group, as before. */
    for (int i = 0; i < n; i++)
        gu_send_seq(fd[i], i % 2 ? 1 : (i == 0 ? 1 : 0));
    SU_WAIT(atomic_load(&gu_log.srv_msgs) == PER_GROUP &&
            atomic_load(&gu_log.grp_msgs) == PER_GROUP * 2 + 1);
    assert_int_equal(atomic_load(&gu_log.srv_msgs), PER_GROUP);
    assert_int_equal(atomic_load(&gu_log.grp_msgs), PER_GROUP * 2 + 1);

    for (int i = 0; i < n; i++)
        close(fd[i]);
    SU_WAIT(atomic_load(&ev.leaves) == (uint64_t)n &&
            atomic_load(&gu_log.leaves) == atomic_load(&gu_log.enters));
    struct gu_summary sum;
    gu_check(&sum, true, 0);
    assert_int_equal(sum.by_reason[RP_LEAVE_GROUP_STOP], PER_GROUP);
    assert_int_equal(sum.by_reason[RP_LEAVE_PEER_CLOSED], PER_GROUP);
    su_finish(srv, &ev, before);
}

static void server_stop_ends_every_group_session_once(void **state)
{
    static int fd[CLIENTS];
    static rp_sid sid[CLIENTS];
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(state);
    for (int i = 0; i < CLIENTS; i++)
        fd[i] = su_connect(rp_server_port(srv));
    gu_match_sids(srv, &ev, fd, sid, CLIENTS);
    /* A third in each group, then a burst of moves still in flight (and
       frames behind them) when the stop begins. */
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(rp_group_move(srv, sid[i], groups[i % 3].g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == CLIENTS);
    for (int i = 0; i < CLIENTS; i++) {
        gu_send_seq(fd[i], 0);
        assert_int_equal(
            rp_group_move(srv, sid[i], groups[(i + 1) % 3].g, NULL), 0);
        gu_send_seq(fd[i], 1);
    }
    rp_server_stop(srv);

    assert_int_equal(atomic_load(&ev.leaves), CLIENTS);
    assert_int_equal(atomic_load(&gu_log.leaves), atomic_load(&gu_log.enters));
    struct gu_summary sum;
    gu_check(&sum, true, 0);
    assert_int_equal(sum.sessions, CLIENTS);
    /* Every session was in a group or moving between two: each ends with
       one SERVER_STOP leave, or its move's on_leave came first. */
    assert_true(sum.by_reason[RP_LEAVE_SERVER_STOP] <= CLIENTS);
    assert_int_equal(sum.final_leaves, sum.by_reason[RP_LEAVE_SERVER_STOP]);
    for (int i = 0; i < 3; i++) {
        struct rp_group_stats gs;
        rp_group_get_stats(groups[i].g, &gs);
        assert_int_equal(gs.sessions, 0);
        assert_int_equal(gs.enters, gs.leaves);
        assert_int_equal(gs.inbox_depth, 0);
    }
    /* Groups of a stopped server: no new group, stop is harmless. */
    struct gu_group late = {0};
    struct rp_group_config gc = {.name = "late", .cb = {0}, .user = &late};
    struct rp_group *g;
    assert_int_equal(rp_group_create(srv, &gc, &g), -ESHUTDOWN);
    assert_int_equal(rp_group_stop(groups[1].g), 0);
    for (int i = 0; i < CLIENTS; i++)
        close(fd[i]);
    su_finish(srv, &ev, before);
}

static void groups_of_a_server_never_started_are_freed(void **state)
{
    struct rp_server_config cfg;
    su_events_reset(&ev);
    gu_config(&cfg, &ev);
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    assert_int_equal(
        rp_group_set_layout(srv, *(const enum rp_group_layout *)*state), 0);
    gu_group(srv, &groups[0], 0, 5);
    gu_group(srv, &groups[1], 1, 0);
    assert_int_equal(rp_group_stop(groups[1].g), 0);
    struct rp_group_config bad = {.name = "", .tick_ms = 0};
    struct rp_group *g;
    assert_int_equal(rp_group_create(srv, &bad, &g), -EINVAL);
    bad.name = "slow";
    bad.tick_ms = 60001;
    assert_int_equal(rp_group_create(srv, &bad, &g), -EINVAL);
    rp_server_destroy(srv);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(group_stop_moves_every_session_out_once,
                                  (void *)&hetero),
        cmocka_unit_test_prestate(group_stop_moves_every_session_out_once,
                                  (void *)&homo),
        cmocka_unit_test_prestate(server_stop_ends_every_group_session_once,
                                  (void *)&hetero),
        cmocka_unit_test_prestate(server_stop_ends_every_group_session_once,
                                  (void *)&homo),
        cmocka_unit_test_prestate(groups_of_a_server_never_started_are_freed,
                                  (void *)&hetero),
        cmocka_unit_test_prestate(groups_of_a_server_never_started_are_freed,
                                  (void *)&homo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
