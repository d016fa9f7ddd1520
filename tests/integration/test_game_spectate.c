/*
 * Spectators of ringport-game (docs/game.md, "Spectators"), over raw
 * sockets, on the backend this run is registered for: a session whose
 * first message is SPECTATE receives SPECTATOR_STATEs whose content
 * matches what the test set up (players per content, the arena with the
 * fighters MATCH_START announced, the run DUNGEON_START announced), at
 * most 5 a second counted over a window, with a state counter that only
 * goes up; a spectator never plays, a player never spectates; past the
 * limit (64) SPECTATE gets SPECTATORS_FULL and the session stays, and a
 * place comes back when a spectator leaves.
 *
 * Binaries: BUILD/tests/test_game_spectate -> BUILD/examples/game/
 * ringport-game. Bounded: every read has SO_RCVTIMEO and every loop a
 * count.
 */
#define CU_WAIT_MS 60000
#include "child_util.h"
#include "game_util.h"
#include "metrics_util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LIMIT 64 /* ringport-game's default --max-spectators */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int spectate(uint16_t port)
{
    int fd = gu_connect(port);
    gu_send_raw(fd, GM_SPECTATE, NULL, 0);
    return fd;
}

/* The next message that is not a SPECTATOR_STATE. */
static void recv_skipping_states(int fd, struct gm_msg *m, uint8_t *buf)
{
    for (int i = 0; i < 200; i++) {
        gu_recv(fd, m, buf);
        if (m->type != GM_SPECTATOR_STATE)
            return;
    }
    fail_msg("only spectator states");
}

static bool arena_shows(const struct gm_spect_arena *a,
                        const struct gm_fighter *f)
{
    return a->x0 == f[0].x && a->y0 == f[0].y && a->hp0 == f[0].hp &&
           a->x1 == f[1].x && a->y1 == f[1].y && a->hp1 == f[1].hp;
}

static void spectator_sees_the_players_arenas_and_runs_there_are(void **state)
{
    (void)state;
    struct gu_game srv;
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_start(&srv);

    /* One player stays in the lobby, two fight (nobody moves or strikes,
       so the arena keeps its opening positions and hit points), one runs
       a dungeon alone (nobody attacks the monsters: they keep 50 hp). */
    int lobby = gu_login(srv.port, "loiterer");
    int a = gu_login(srv.port, "fighter_a");
    int b = gu_login(srv.port, "fighter_b");
    int d = gu_login(srv.port, "delver");
    struct gm_msg q = {.type = GM_PVP_QUEUE};
    gu_send(a, &q);
    gu_expect(a, GM_PVP_QUEUED, &m, buf);
    gu_send(b, &q);
    gu_expect(b, GM_PVP_QUEUED, &m, buf);
    gu_expect(a, GM_MATCH_START, &m, buf);
    uint32_t room = m.u.match_start.room;
    struct gm_fighter f[2];
    memcpy(f, m.u.match_start.f, sizeof f);
    gu_expect(b, GM_MATCH_START, &m, buf);
    struct gm_msg enter = {.type = GM_DUNGEON_ENTER};
    enter.u.party_size = 1;
    gu_send(d, &enter);
    gu_expect(d, GM_DUNGEON_QUEUED, &m, buf);
    gu_expect(d, GM_DUNGEON_START, &m, buf);
    uint32_t run = m.u.dungeon_start.id;
    uint8_t monsters = m.u.dungeon_start.monsters;
    uint16_t m_hp = m.u.dungeon_start.monster_hp;

    /* A player never spectates. */
    gu_send_raw(lobby, GM_SPECTATE, NULL, 0);
    gu_expect_error(lobby, GM_ERR_ALREADY_LOGGED_IN, GM_SPECTATE);

    int s = spectate(srv.port);
    uint32_t seq = 0, tick = 0;
    bool matched = false;
    int ticks_seen = 0;
    /* Summaries are published every 200 ms: the first states may still
       show the game as it was; within 50 states (10 s) it must match, and
       the arena's tick must then go on advancing. */
    for (int i = 0; i < 50 && ticks_seen < 3; i++) {
        gu_expect(s, GM_SPECTATOR_STATE, &m, buf);
        const __typeof__(m.u.spectator_state) *st = &m.u.spectator_state;
        assert_true(st->seq > seq);
        seq = st->seq;
        if (!matched) {
            matched = st->lobby == 1 && st->pvp == 2 && st->dungeon == 1 &&
                      st->spectators == 1 && st->arenas == 1 && st->na == 1 &&
                      st->runs == 1 && st->nr == 1;
            if (!matched)
                continue;
            assert_int_equal(st->arena[0].room, room);
            assert_true(arena_shows(&st->arena[0], f));
            assert_int_equal(st->run[0].id, run);
            assert_int_equal(st->run[0].players, 1);
            assert_int_equal(st->run[0].monsters, monsters);
            assert_int_equal(st->nmh, monsters);
            for (unsigned k = 0; k < monsters; k++)
                assert_int_equal(st->monster_hp[k], m_hp);
            tick = st->arena[0].tick;
            continue;
        }
        assert_int_equal(st->na, 1);
        assert_true(st->arena[0].tick >= tick);
        ticks_seen += st->arena[0].tick > tick;
        tick = st->arena[0].tick;
    }
    assert_true(matched);
    assert_int_equal(ticks_seen, 3);

    /* A spectator never plays: LOGIN is another content's message. */
    gu_send_login(s, "sneaky");
    recv_skipping_states(s, &m, buf);
    assert_int_equal(m.type, GM_ERROR);
    assert_int_equal(m.u.error.code, GM_ERR_WRONG_CONTENT);
    assert_int_equal(m.u.error.about, GM_LOGIN);

    /* Nor does one whose LOGIN and second SPECTATE come in the same write
       as its SPECTATE, so they may reach the lobby before it has left:
       both WRONG_CONTENT, one place taken, no name. */
    uint8_t burst[64] = {0, 0, GM_SPECTATE, 0, 0, 0, GM_SPECTATE, 0};
    struct gm_msg login = {.type = GM_LOGIN};
    login.u.login = gm_str_of("sneaky", 6);
    int n = gm_encode_frame(&login, burst + 8, sizeof burst - 8);
    assert_true(n > 0);
    int s2 = gu_connect(srv.port);
    assert_int_equal(write(s2, burst, 8 + (size_t)n), 8 + n);
    uint16_t about[2];
    for (int i = 0; i < 2; i++) {
        recv_skipping_states(s2, &m, buf);
        assert_int_equal(m.type, GM_ERROR);
        assert_int_equal(m.u.error.code, GM_ERR_WRONG_CONTENT);
        about[i] = m.u.error.about;
    }
    assert_int_equal(about[0], GM_SPECTATE);
    assert_int_equal(about[1], GM_LOGIN);
    gu_expect(s2, GM_SPECTATOR_STATE, &m, buf);

    struct mu_reply r;
    assert_int_equal(mu_get(srv.mport, "/metrics", &r), 0);
    assert_true(mu_value(r.body, "ringport_game_spectators") == 2);
    assert_true(mu_value(r.body, "ringport_game_spectator_states_total") >= 4);
    mu_reply_free(&r);
    /* "sneaky" is free: no spectator took it. */
    close(gu_login(srv.port, "sneaky"));
    close(s2);
    close(s);
    close(a);
    close(b);
    close(d);
    close(lobby);
    gu_stop(&srv);
}

/*
 * States are at least 200 ms apart on the server. Every state received
 * between SPECTATE (t0, before the first could be composed) and t1 was
 * composed in that window, so at most (t1 - t0) * 5 + 1 arrive, however
 * late any of them is: the bound cannot flake on a slow machine.
 */
static void states_come_at_most_five_a_second(void **state)
{
    (void)state;
    struct gu_game srv;
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_start(&srv);
    int p = gu_login(srv.port, "alone");
    double t0 = mono_s();
    int s = spectate(srv.port);
    int n = 0;
    uint32_t seq = 0;
    while (mono_s() - t0 < 2.0 && n < 100) {
        gu_expect(s, GM_SPECTATOR_STATE, &m, buf);
        assert_true(m.u.spectator_state.seq > seq);
        seq = m.u.spectator_state.seq;
        n++;
    }
    double t1 = mono_s();
    fprintf(stderr, "%d states in %.3f s\n", n, t1 - t0);
    assert_true(n >= 1);
    assert_true(n <= (int)((t1 - t0) * 5) + 1);
    close(s);
    close(p);
    gu_stop(&srv);
}

static void spectators_past_the_limit_get_an_error_and_stay(void **state)
{
    (void)state;
    struct gu_game srv;
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    int fds[LIMIT];
    gu_start(&srv);
    for (int i = 0; i < LIMIT; i++)
        fds[i] = spectate(srv.port);
    /* A state reached each: all are in (the states of one round go to
       all at once, so this takes a round or two, not LIMIT of them). */
    for (int i = 0; i < LIMIT; i++)
        gu_expect(fds[i], GM_SPECTATOR_STATE, &m, buf);
    for (int i = 0; i < 20 && m.u.spectator_state.spectators < LIMIT; i++)
        gu_expect(fds[LIMIT - 1], GM_SPECTATOR_STATE, &m, buf);
    assert_int_equal(m.u.spectator_state.spectators, LIMIT);
    int extra = spectate(srv.port);
    gu_expect_error(extra, GM_ERR_SPECTATORS_FULL, GM_SPECTATE);
    struct mu_reply r;
    assert_int_equal(mu_get(srv.mport, "/metrics", &r), 0);
    assert_true(mu_value(r.body, "ringport_game_spectators") == LIMIT);
    mu_reply_free(&r);

    /* One leaves: its place comes back once the server has seen it go
       (not at a moment the client can see), so the extra one retries. */
    close(fds[0]);
    for (int tries = 0;; tries++) {
        gu_send_raw(extra, GM_SPECTATE, NULL, 0);
        gu_recv(extra, &m, buf);
        if (m.type != GM_ERROR || tries == 500)
            break;
        assert_int_equal(m.u.error.code, GM_ERR_SPECTATORS_FULL);
        gu_sleep_ms(10);
    }
    assert_int_equal(m.type, GM_SPECTATOR_STATE);
    close(extra);
    for (int i = 1; i < LIMIT; i++)
        close(fds[i]);
    gu_stop(&srv);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    gu_backend = t_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            spectator_sees_the_players_arenas_and_runs_there_are,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(states_come_at_most_five_a_second,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(
            spectators_past_the_limit_get_an_error_and_stay, cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
