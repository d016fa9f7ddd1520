/*
 * Moving sessions between content groups, in both layouts (HETERO: a
 * thread per group; HOMO: one logic thread):
 *   - moves requested from group handlers and from another thread while
 *     the clients send: every message handled once, in order, by the group
 *     the session is in; on_leave of the old group before on_enter of the
 *     new one; every on_enter paired with one on_leave;
 *   - a disconnect right behind a move (server kick or peer close) ends in
 *     exactly one final on_leave, in the group that held the session last;
 *   - a move of a stale id fails with -ENOTCONN and changes nothing, even
 *     when the slot has a new occupant.
 */
#include "group_util.h"

#define CLIENTS 8
#define MSGS 2000
#define RACERS 100

static struct su_events ev;
static struct gu_group groups[3];
static struct rp_server *the_srv;
static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;

static struct rp_server *start(void **state, int ngroups)
{
    struct rp_server_config cfg;
    su_events_reset(&ev);
    gu_log_reset();
    gu_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    ev.srv = srv;
    the_srv = srv;
    assert_int_equal(
        rp_group_set_layout(srv, *(const enum rp_group_layout *)*state), 0);
    memset(groups, 0, sizeof groups);
    for (int i = 0; i < ngroups; i++)
        gu_group(srv, &groups[i], i, 0);
    /* The layout is fixed once a group exists. */
    assert_int_equal(rp_group_set_layout(srv, RP_GROUP_HETERO), -EBUSY);
    assert_int_equal(rp_server_start(srv), 0);
    return srv;
}

static void finish(struct rp_server *srv, uint64_t packets_before)
{
    su_finish(srv, &ev, packets_before);
    the_srv = NULL;
}

/* Every 7th message moves the session on to the next group; every 101st
   sends it to no group (the test thread brings it back). */
static _Atomic int hook_errors; /* no cmocka assert off the main thread */

static void hop_hook(struct gu_group *gg, struct rp_group *g, rp_sid sid,
                     uint32_t seq)
{
    (void)g;
    int r = 0;
    if (seq % 101 == 100)
        r = rp_group_move(the_srv, sid, NULL, NULL);
    else if (seq % 7 == 6)
        r = rp_group_move(the_srv, sid, groups[(gg->index + 1) % 3].g, NULL);
    if (r != 0)
        atomic_fetch_add(&hook_errors, 1);
}

static void
moves_from_handlers_and_threads_keep_every_message_in_order(void **state)
{
    static int fd[CLIENTS];
    static rp_sid sid[CLIENTS];
    uint64_t rng = t_seed();
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(state, 3);
    for (int i = 0; i < 3; i++)
        atomic_store(&groups[i].on_msg, hop_hook);
    for (int i = 0; i < CLIENTS; i++)
        fd[i] = su_connect(rp_server_port(srv));
    gu_match_sids(srv, &ev, fd, sid, CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(rp_group_move(srv, sid[i], groups[i % 3].g, NULL), 0);

    for (uint32_t k = 0; k < MSGS; k++) {
        for (int i = 0; i < CLIENTS; i++)
            gu_send_seq(fd[i], k);
        if (k % 16 == 0) {
            int i = (int)t_rand_range(&rng, 0, CLIENTS - 1);
            int to = (int)t_rand_range(&rng, 0, 3);
            assert_int_equal(
                rp_group_move(srv, sid[i], to == 3 ? NULL : groups[to].g, NULL),
                0);
        }
    }
    uint64_t total = (uint64_t)CLIENTS * MSGS;
    SU_WAIT(atomic_load(&gu_log.grp_msgs) + atomic_load(&gu_log.srv_msgs) ==
            total);
    assert_int_equal(
        atomic_load(&gu_log.grp_msgs) + atomic_load(&gu_log.srv_msgs), total);
    for (int i = 0; i < CLIENTS; i++)
        close(fd[i]);
    SU_WAIT(atomic_load(&ev.leaves) == CLIENTS &&
            atomic_load(&gu_log.leaves) == atomic_load(&gu_log.enters));
    assert_int_equal(atomic_load(&gu_log.leaves), atomic_load(&gu_log.enters));

    struct gu_summary sum;
    gu_check(&sum, true, MSGS);
    assert_int_equal(sum.sessions, CLIENTS);
    assert_int_equal(sum.messages, total);
    assert_true(sum.moved_leaves > 0);
    assert_int_equal(atomic_load(&hook_errors), 0);
    assert_true(atomic_load(&gu_log.grp_msgs) > 0);
    /* A session in a group when its client closed leaves it once. */
    assert_int_equal(sum.final_leaves, sum.by_reason[RP_LEAVE_PEER_CLOSED]);
    uint64_t enters = 0, leaves = 0, msgs = 0;
    for (int i = 0; i < 3; i++) {
        struct rp_group_stats gs;
        rp_group_get_stats(groups[i].g, &gs);
        assert_int_equal(gs.sessions, 0);
        assert_int_equal(gs.enters, gs.leaves);
        assert_int_equal(gs.inbox_depth, 0);
        enters += gs.enters;
        leaves += gs.leaves;
        msgs += gs.messages;
    }
    assert_int_equal(enters, atomic_load(&gu_log.enters));
    assert_int_equal(leaves, atomic_load(&gu_log.leaves));
    assert_int_equal(msgs, atomic_load(&gu_log.grp_msgs));
    finish(srv, before);
}

static void disconnect_during_a_move_ends_in_one_final_leave(void **state)
{
    static int fd[RACERS];
    static rp_sid sid[RACERS];
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(state, 2);
    for (int i = 0; i < RACERS; i++)
        fd[i] = su_connect(rp_server_port(srv));
    gu_match_sids(srv, &ev, fd, sid, RACERS);
    for (int i = 0; i < RACERS; i++)
        assert_int_equal(rp_group_move(srv, sid[i], groups[0].g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == RACERS);
    assert_int_equal(atomic_load(&gu_log.enters), RACERS);
    for (int i = 0; i < RACERS; i++)
        gu_send_seq(fd[i], 0);

    /* Each race differs: kick right behind the move (both reach the I/O
       thread in that order), close the socket right behind it, or kick
       first (then the move finds a closing session). */
    for (int i = 0; i < RACERS; i++) {
        switch (i % 3) {
        case 0:
            assert_int_equal(rp_group_move(srv, sid[i], groups[1].g, NULL), 0);
            assert_int_equal(rp_server_disconnect(srv, sid[i]), 0);
            break;
        case 1:
            assert_int_equal(rp_group_move(srv, sid[i], groups[1].g, NULL), 0);
            close(fd[i]);
            fd[i] = -1;
            break;
        case 2:
            assert_int_equal(rp_server_disconnect(srv, sid[i]), 0);
            assert_int_equal(rp_group_move(srv, sid[i], groups[1].g, NULL),
                             -ENOTCONN);
            break;
        }
    }
    SU_WAIT(atomic_load(&ev.leaves) == RACERS &&
            atomic_load(&gu_log.leaves) == atomic_load(&gu_log.enters));
    assert_int_equal(atomic_load(&ev.leaves), RACERS);
    assert_int_equal(atomic_load(&gu_log.leaves), atomic_load(&gu_log.enters));

    struct gu_summary sum;
    gu_check(&sum, true, 0);
    assert_int_equal(sum.sessions, RACERS);
    /* A session ends in a group (the disconnect won the race against the
       move) or between groups (the move's on_leave ran first): exactly one
       final leave or none, never two; the checker rejects two. */
    assert_true(sum.final_leaves <= RACERS);
    print_message("final leaves in a group: %u of %d; move leaves: %u\n",
                  sum.final_leaves, RACERS, sum.moved_leaves);
    assert_int_equal(sum.final_leaves, sum.by_reason[RP_LEAVE_KICKED] +
                                           sum.by_reason[RP_LEAVE_PEER_CLOSED]);
    for (int i = 0; i < 2; i++) {
        struct rp_group_stats gs;
        rp_group_get_stats(groups[i].g, &gs);
        assert_int_equal(gs.sessions, 0);
        assert_int_equal(gs.enters, gs.leaves);
    }
    for (int i = 0; i < RACERS; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    finish(srv, before);
}

static void stale_move_fails_with_enotconn_and_changes_nothing(void **state)
{
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(state, 1);
    int a = su_connect(rp_server_port(srv));
    rp_sid old;
    gu_match_sids(srv, &ev, &a, &old, 1);
    close(a);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    assert_int_equal(rp_group_move(srv, old, groups[0].g, NULL), -ENOTCONN);
    assert_int_equal(rp_group_move(srv, RP_SID_NONE, groups[0].g, NULL),
                     -ENOTCONN);
    assert_int_equal(rp_group_move(srv, rp_sid_make(1u << 30, 1), NULL, NULL),
                     -ENOTCONN);

    /* The slot's next occupant is untouched by the old id. */
    int b = su_connect(rp_server_port(srv));
    rp_sid cur;
    SU_WAIT(atomic_load(&ev.joins) == 2);
    gu_match_sids(srv, &ev, &b, &cur, 1);
    assert_int_equal(rp_sid_slot(cur), rp_sid_slot(old));
    assert_true(rp_sid_gen(cur) != rp_sid_gen(old));
    assert_int_equal(rp_group_move(srv, old, groups[0].g, NULL), -ENOTCONN);
    for (uint32_t k = 0; k < 10; k++)
        gu_send_seq(b, k);
    SU_WAIT(atomic_load(&gu_log.srv_msgs) == 10);
    assert_int_equal(atomic_load(&gu_log.srv_msgs), 10);
    struct rp_group_stats gs;
    rp_group_get_stats(groups[0].g, &gs);
    assert_int_equal(gs.enters, 0);
    assert_int_equal(gs.messages, 0);

    /* A group of another server is refused. */
    struct rp_server_config cfg2;
    struct rp_server *other;
    gu_config(&cfg2, NULL);
    cfg2.user = NULL;
    assert_int_equal(rp_server_create(&cfg2, &other), 0);
    struct gu_group og = {0};
    gu_group(other, &og, 3, 0);
    assert_int_equal(rp_group_move(srv, cur, og.g, NULL), -EINVAL);
    rp_server_destroy(other);

    close(b);
    SU_WAIT(atomic_load(&ev.leaves) == 2);
    struct gu_summary sum;
    gu_check(&sum, true, 0);
    finish(srv, before);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(
            moves_from_handlers_and_threads_keep_every_message_in_order,
            (void *)&hetero),
        cmocka_unit_test_prestate(
            moves_from_handlers_and_threads_keep_every_message_in_order,
            (void *)&homo),
        cmocka_unit_test_prestate(
            disconnect_during_a_move_ends_in_one_final_leave, (void *)&hetero),
        cmocka_unit_test_prestate(
            disconnect_during_a_move_ends_in_one_final_leave, (void *)&homo),
        cmocka_unit_test_prestate(
            stale_move_fails_with_enotconn_and_changes_nothing,
            (void *)&hetero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
