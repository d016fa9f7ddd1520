/*
 * Cross-shard matchmaking in ringport-game (docs/cluster.md, "Cross-shard
 * matchmaking"): two shards with --pvp-queue global on a private
 * nats-server, players speaking the game protocol.
 *
 *   a_cross_shard_match_moves_the_record_once   a player with a win on
 *       shard B and one on shard A queue; one gets SHARD_MOVE to the
 *       other's shard, reconnects there with SEAT {token}, the match is
 *       played to a knockout, and the moved player's wins go on from its
 *       record (moved with the match); the token used again is refused
 *   a_player_who_never_arrives_loses_by_forfeit   the moved player never
 *       comes: the host's player wins by forfeit, the seat expires, and a
 *       late SEAT is refused
 *   spill_goes_global_after_the_wait   --pvp-queue spill: players alone
 *       on their shards meet across them after --pvp-spill-ms
 *   the_global_name_moves_with_the_player   after a move, with the old
 *       connection gone and past the lease, a LOGIN of the moved player's
 *       name on its old shard or a third one is NAME_TAKEN while it plays
 *       on the host, and LOGIN_OK once it logged out there
 *
 * Skips (77) with one line without nats-server.
 */
#include "cluster_util.h"

#include <poll.h>

static struct gu_game shards[3];

static const char *queue_mode = "global", *spill_ms = "3000",
                  *lease_ms = "15000";

/* A shard with this test's queue mode, spill wait and lease. */
static void mm_shard_start(struct gu_game *g, int shard)
{
    const char *const extra[] = {
        "--pvp-queue", queue_mode,           "--pvp-spill-ms",
        spill_ms,      "--cluster-lease-ms", lease_ms,
        NULL};
    cl_shard_start_with(g, shard, extra);
}

static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

static void recv_skipping_states(int fd, struct gm_msg *m, uint8_t *buf)
{
    do
        gu_recv(fd, m, buf);
    while (m->type == GM_PVP_STATE);
}

static void send_move(int fd, int8_t dx)
{
    struct gm_msg m = {.type = GM_PVP_MOVE};
    m.u.move.dx = dx;
    gu_send(fd, &m);
}

static void send_seat(int fd, uint64_t token)
{
    struct gm_msg m = {.type = GM_SEAT};
    m.u.seat = token;
    gu_send(fd, &m);
}

/* 'atk' (on 'side') walks to 2 steps from the other, who stands still,
   and attacks until the knockout; returns with MATCH_END read. */
static void knock_out(int atk, uint8_t side)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    int8_t dx = side == 0 ? 1 : -1;
    int16_t x = side == 0 ? 5 : 15, stop = side == 0 ? 13 : 7;
    while (x != stop) {
        send_move(atk, dx);
        do
            gu_expect(atk, GM_PVP_STATE, &m, buf);
        while (m.u.pvp_state.f[side].x == x);
        x = m.u.pvp_state.f[side].x;
    }
    for (int tries = 0;; tries++) {
        assert_true(tries < 5000);
        gu_send_raw(atk, GM_PVP_ATTACK, NULL, 0);
        if (!readable(atk, 30))
            continue;
        gu_recv(atk, &m, buf);
        if (m.type == GM_MATCH_END)
            break;
        assert_int_equal(m.type, GM_PVP_STATE);
    }
    assert_int_equal(m.u.match_end.winner, side);
    assert_int_equal(m.u.match_end.reason, GM_END_KO);
}

/* Attacks that crossed MATCH_END reach the lobby as WRONG_CONTENT:
   drained up to a marker (an empty chat line, BAD_TEXT). */
static void drain_stale(int fd)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_send_raw(fd, GM_CHAT, "\0\0", 2);
    for (;;) {
        gu_recv(fd, &m, buf);
        assert_int_equal(m.type, GM_ERROR);
        if (m.u.error.about == GM_CHAT)
            break;
        assert_int_equal(m.u.error.code, GM_ERR_WRONG_CONTENT);
    }
}

static void expect_lobby(int fd, uint32_t wins)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    recv_skipping_states(fd, &m, buf);
    if (m.type == GM_MATCH_END)
        recv_skipping_states(fd, &m, buf);
    assert_int_equal(m.type, GM_LOBBY_ENTER);
    assert_int_equal(m.u.lobby_enter.wins, wins);
}

/* Queues 'b' on its shard, then (once its advert is out) 'a' on the
   other; returns which of the two got SHARD_MOVE (0: a, 1: b) and the
   message. */
static int queue_across(int fds[2], struct gm_msg *mv, uint8_t *mvbuf)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_send_raw(fds[1], GM_PVP_QUEUE, NULL, 0);
    gu_expect(fds[1], GM_PVP_QUEUED, &m, buf);
    gu_sleep_ms(300);
    gu_send_raw(fds[0], GM_PVP_QUEUE, NULL, 0);
    gu_expect(fds[0], GM_PVP_QUEUED, &m, buf);
    struct pollfd p[2] = {{.fd = fds[0], .events = POLLIN},
                          {.fd = fds[1], .events = POLLIN}};
    assert_true(poll(p, 2, CL_RETRY_MS) > 0);
    int who = (p[0].revents & POLLIN) ? 0 : 1;
    gu_expect(fds[who], GM_SHARD_MOVE, mv, mvbuf);
    return who;
}

static void a_cross_shard_match_moves_the_record_once(void **state)
{
    (void)state;
    struct gm_msg m, mv;
    uint8_t buf[GM_PAYLOAD_MAX], mvbuf[GM_PAYLOAD_MAX];
    mm_shard_start(&shards[0], 0);
    mm_shard_start(&shards[1], 1);
    cl_wait_connected(&shards[0], 1);
    cl_wait_connected(&shards[1], 1);

    /* Bob wins a match on shard B first (two queued there meet there). */
    int bob = gu_login(shards[1].port, "mmbob");
    int carl = gu_login(shards[1].port, "mmcarl");
    gu_send_raw(bob, GM_PVP_QUEUE, NULL, 0);
    gu_expect(bob, GM_PVP_QUEUED, &m, buf);
    gu_send_raw(carl, GM_PVP_QUEUE, NULL, 0);
    gu_expect(carl, GM_PVP_QUEUED, &m, buf);
    gu_expect(bob, GM_MATCH_START, &m, buf);
    uint8_t bob_side = m.u.match_start.side;
    gu_expect(carl, GM_MATCH_START, &m, buf);
    knock_out(bob, bob_side);
    gu_expect(bob, GM_LOBBY_ENTER, &m, buf);
    assert_int_equal(m.u.lobby_enter.wins, 1);
    expect_lobby(carl, 0);
    close(carl);
    drain_stale(bob);
    assert_int_equal(cl_metric(&shards[1], "ringport_cluster_matches_total"),
                     0);

    /* Bob (B) and Alice (A): a cross-shard match. */
    int alice = gu_login(shards[0].port, "mmalice");
    int fds[2] = {alice, bob};
    uint32_t wins_before[2] = {0, 1};
    int mover = queue_across(fds, &mv, mvbuf);
    int host = 1 - mover; /* shards[i] holds fds[i]'s player */
    assert_int_equal(mv.u.shard_move.port, shards[host].port);
    assert_int_equal(mv.u.shard_move.host.len, 9);
    assert_memory_equal(mv.u.shard_move.host.p, "127.0.0.1", 9);
    uint64_t token = mv.u.shard_move.token;
    assert_true(token != 0);
    /* The client goes: it leaves its old shard and takes its seat. */
    close(fds[mover]);
    int moved = gu_connect(shards[host].port);
    send_seat(moved, token);
    gu_expect(moved, GM_LOGIN_OK, &m, buf);
    gu_expect(moved, GM_MATCH_START, &m, buf);
    assert_int_equal(m.u.match_start.side, 1);
    gu_expect(fds[host], GM_MATCH_START, &m, buf);
    assert_int_equal(m.u.match_start.side, 0);
    /* The moved player wins; its wins go on from the record it brought. */
    knock_out(moved, 1);
    expect_lobby(moved, wins_before[mover] + 1);
    expect_lobby(fds[host], wins_before[host]);
    cl_wait_metric(&shards[host], "ringport_cluster_matches_hosted_total", 1);
    cl_wait_metric(&shards[mover], "ringport_cluster_matches_moved_total", 1);
    assert_int_equal(cl_metric(&shards[host], "ringport_cluster_matches_total"),
                     1);
    assert_int_equal(
        cl_metric(&shards[host], "ringport_cluster_seats_claimed_total"), 1);
    /* The same token again: refused (single use). */
    int again = gu_connect(shards[host].port);
    send_seat(again, token);
    gu_expect_error(again, GM_ERR_SEAT_REFUSED, GM_SEAT);
    close(again);
    assert_int_equal(
        cl_metric(&shards[host], "ringport_cluster_seats_refused_total"), 1);
    /* The moved player is a player of the host now: it can queue there. */
    close(moved);
    close(fds[host]);
    gu_stop(&shards[0]);
    gu_stop(&shards[1]);
}

static void a_player_who_never_arrives_loses_by_forfeit(void **state)
{
    (void)state;
    struct gm_msg m, mv;
    uint8_t buf[GM_PAYLOAD_MAX], mvbuf[GM_PAYLOAD_MAX];
    mm_shard_start(&shards[0], 0);
    mm_shard_start(&shards[1], 1);
    cl_wait_connected(&shards[0], 1);
    cl_wait_connected(&shards[1], 1);
    int fds[2] = {gu_login(shards[0].port, "mmerin"),
                  gu_login(shards[1].port, "mmdave")};
    int mover = queue_across(fds, &mv, mvbuf);
    int host = 1 - mover;
    /* It never goes: the host's player wins by forfeit (the pvp room's
       wait) and the seat expires. */
    close(fds[mover]);
    recv_skipping_states(fds[host], &m, buf);
    assert_int_equal(m.type, GM_MATCH_END);
    assert_int_equal(m.u.match_end.winner, 0);
    assert_int_equal(m.u.match_end.reason, GM_END_OPPONENT_LEFT);
    expect_lobby(fds[host], 1);
    cl_wait_metric(&shards[host], "ringport_cluster_seats_expired_total", 1);
    /* Coming late with the token: refused. */
    int late = gu_connect(shards[host].port);
    send_seat(late, mv.u.shard_move.token);
    gu_expect_error(late, GM_ERR_SEAT_REFUSED, GM_SEAT);
    close(late);
    close(fds[host]);
    gu_stop(&shards[0]);
    gu_stop(&shards[1]);
}

/* spill: a player alone on its shard goes global after pvp_spill_ms and
   meets one of another shard. */
static void spill_goes_global_after_the_wait(void **state)
{
    (void)state;
    struct gm_msg m, mv;
    uint8_t buf[GM_PAYLOAD_MAX], mvbuf[GM_PAYLOAD_MAX];
    queue_mode = "spill";
    spill_ms = "300";
    mm_shard_start(&shards[0], 0);
    mm_shard_start(&shards[1], 1);
    queue_mode = "global";
    spill_ms = "3000";
    cl_wait_connected(&shards[0], 1);
    cl_wait_connected(&shards[1], 1);
    int fds[2] = {gu_login(shards[0].port, "mmfay"),
                  gu_login(shards[1].port, "mmgus")};
    int mover = queue_across(fds, &mv, mvbuf);
    int host = 1 - mover;
    close(fds[mover]);
    int moved = gu_connect(shards[host].port);
    send_seat(moved, mv.u.shard_move.token);
    gu_expect(moved, GM_LOGIN_OK, &m, buf);
    gu_expect(moved, GM_MATCH_START, &m, buf);
    gu_expect(fds[host], GM_MATCH_START, &m, buf);
    /* The host's player walks out: the moved one wins (opponent left). */
    close(fds[host]);
    recv_skipping_states(moved, &m, buf);
    assert_int_equal(m.type, GM_MATCH_END);
    assert_int_equal(m.u.match_end.winner, 1);
    expect_lobby(moved, 1);
    close(moved);
    gu_stop(&shards[0]);
    gu_stop(&shards[1]);
}

/* Waits (bounded) until the shard's series 'name' is at most 'max'. */
static void wait_metric_down(const struct gu_game *g, const char *name,
                             double max)
{
    for (int waited = 0; waited < CL_RETRY_MS; waited += 20) {
        if (cl_metric(g, name) <= max)
            return;
        gu_sleep_ms(20);
    }
    fail_msg("shard on port %u: %s stayed above %g", g->port, name, max);
}

/* The global name goes with SHARD_MOVE: the host takes the key over from
   the old shard, which neither refreshes nor deletes it from the COMMIT
   on. With a 1 s lease, waiting 1.5 s after the old connection is gone
   shows the host refreshing it (the old shard's last write would have
   expired). */
static void the_global_name_moves_with_the_player(void **state)
{
    (void)state;
    struct gm_msg m, mv;
    uint8_t buf[GM_PAYLOAD_MAX], mvbuf[GM_PAYLOAD_MAX];
    const char *names[2] = {"mvann", "mvben"};
    lease_ms = "1000";
    for (int i = 0; i < 3; i++)
        mm_shard_start(&shards[i], i);
    lease_ms = "15000";
    for (int i = 0; i < 3; i++)
        cl_wait_connected(&shards[i], 1);
    int fds[2] = {gu_login(shards[0].port, names[0]),
                  gu_login(shards[1].port, names[1])};
    int mover = queue_across(fds, &mv, mvbuf);
    int host = 1 - mover;
    close(fds[mover]);
    int moved = gu_connect(shards[host].port);
    send_seat(moved, mv.u.shard_move.token);
    gu_expect(moved, GM_LOGIN_OK, &m, buf);
    gu_expect(moved, GM_MATCH_START, &m, buf);
    gu_expect(fds[host], GM_MATCH_START, &m, buf);
    /* The old shard's session is gone (its logout ran: no name held
       there), the host holds both players' names. */
    wait_metric_down(&shards[mover], "ringport_cluster_names", 0);
    assert_int_equal(cl_metric(&shards[host], "ringport_cluster_names"), 2);
    gu_sleep_ms(1500); /* past the lease: only a refreshed key is left */
    int fd;
    assert_int_equal(cl_try_login(shards[mover].port, names[mover], &fd),
                     GM_ERR_NAME_TAKEN);
    close(fd);
    assert_int_equal(cl_try_login(shards[2].port, names[mover], &fd),
                     GM_ERR_NAME_TAKEN);
    close(fd);
    assert_int_equal(
        cl_metric(&shards[host], "ringport_cluster_name_conflicts_total"), 0);
    /* The host's player walks out; the moved one wins, then logs out: its
       name is free across the shards at once (deleted, not expired). */
    close(fds[host]);
    recv_skipping_states(moved, &m, buf);
    assert_int_equal(m.type, GM_MATCH_END);
    assert_int_equal(m.u.match_end.winner, 1);
    close(moved);
    wait_metric_down(&shards[host], "ringport_cluster_names", 0);
    assert_int_equal(
        cl_login_until(shards[2].port, names[mover], GM_ERR_NAME_TAKEN, &fd),
        0);
    close(fd);
    for (int i = 0; i < 3; i++)
        gu_stop(&shards[i]);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    gu_backend = t_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(a_cross_shard_match_moves_the_record_once,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(a_player_who_never_arrives_loses_by_forfeit,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(spill_goes_global_after_the_wait,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(the_global_name_moves_with_the_player,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, cl_nats_up, cl_nats_down);
}
