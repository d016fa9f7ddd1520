/*
 * What docs/protocol.md ("Game messages") promises a client author, checked
 * over real sockets against ringport-game on the backend of this run, with
 * the numbers written as the document gives them (not taken from the
 * server's headers), so the page and the server cannot drift apart:
 *
 * - which error wins when several apply: framing, then login, then
 *   content, then field, then the content's own checks;
 * - a member leaving a started dungeon run is sent to the rest of the
 *   party at once (a DUNGEON_STATE that differs from the one before only
 *   in the leaver's 65535), and members start at 100 hp against
 *   players + 2 monsters of 50;
 * - an attack on a monster already at 0 hp is dropped without an answer;
 * - what a PVP knockout and a walk-over pay (wins, no gold);
 * - the real payload limit: 8,192 bytes reach the game, 8,193 do not.
 *
 * Nothing here asserts on time: where the server's tick paces a fight, the
 * client repeats its request until the state it waits for arrives, and a
 * run or match that never ends fails on the bounded reads.
 */
#define CU_WAIT_MS 60000
#include "child_util.h"
#include "game_util.h"
#include "metrics_util.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

/* The next message that is not a PVP_STATE or DUNGEON_STATE (the ticks
   send those whenever something changed). */
static void recv_skipping_states(int fd, struct gm_msg *m, uint8_t *buf)
{
    do
        gu_recv(fd, m, buf);
    while (m->type == GM_PVP_STATE || m->type == GM_DUNGEON_STATE);
}

static void expect_error_skipping_states(int fd, uint16_t code, uint16_t about)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    recv_skipping_states(fd, &m, buf);
    if (m.type != GM_ERROR)
        fail_msg("expected ERROR %s about %s, got %s", gm_error_name(code),
                 gm_type_name(about), gm_type_name(m.type));
    if (m.u.error.code != code || m.u.error.about != about)
        fail_msg("expected ERROR %s about %s, got %s about %s",
                 gm_error_name(code), gm_type_name(about),
                 gm_error_name(m.u.error.code), gm_type_name(m.u.error.about));
}

static void send_u8(int fd, uint16_t type, uint8_t v)
{
    gu_send_raw(fd, type, &v, 1);
}

static void send_move(int fd, int8_t dx, int8_t dy)
{
    struct gm_msg m = {.type = GM_PVP_MOVE};
    m.u.move.dx = dx;
    m.u.move.dy = dy;
    gu_send(fd, &m);
}

/* True if 'fd' has something to read within 'ms' (paces a repeat). */
static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

/* ---- which error wins --------------------------------------------------- */

static void the_first_error_in_the_documented_order_wins(void **state)
{
    (void)state;
    struct gu_game g;
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_start(&g);

    /* Before login: login beats content and field. */
    int a = gu_connect(g.port);
    send_move(a, 1, 0);
    gu_expect_error(a, GM_ERR_NOT_LOGGED_IN, GM_PVP_MOVE);
    send_u8(a, GM_DUNGEON_ATTACK, 9);
    gu_expect_error(a, GM_ERR_NOT_LOGGED_IN, GM_DUNGEON_ATTACK);
    send_u8(a, GM_DUNGEON_ENTER, 5);
    gu_expect_error(a, GM_ERR_NOT_LOGGED_IN, GM_DUNGEON_ENTER);
    gu_send_raw(a, GM_CHAT, "\0\0", 2);
    gu_expect_error(a, GM_ERR_NOT_LOGGED_IN, GM_CHAT);
    /* Framing beats login: a wrong length closes even before login. */
    int b = gu_connect(g.port);
    gu_send_raw(b, GM_PVP_MOVE, "\1", 1);
    gu_expect_error(b, GM_ERR_MALFORMED, GM_PVP_MOVE);
    gu_expect_closed(b);
    close(b);

    /* Logged in, in the lobby: content beats field, field beats the
       lobby's own checks, login state beats the name check. */
    gu_send_login(a, "alice");
    gu_expect(a, GM_LOGIN_OK, &m, buf);
    send_u8(a, GM_DUNGEON_ATTACK, 9);
    gu_expect_error(a, GM_ERR_WRONG_CONTENT, GM_DUNGEON_ATTACK);
    send_move(a, 2, 0);
    gu_expect_error(a, GM_ERR_WRONG_CONTENT, GM_PVP_MOVE);
    gu_send_login(a, "x y");
    gu_expect_error(a, GM_ERR_ALREADY_LOGGED_IN, GM_LOGIN);
    gu_send_raw(a, GM_PVP_QUEUE, NULL, 0);
    gu_expect(a, GM_PVP_QUEUED, &m, buf);
    send_u8(a, GM_DUNGEON_ENTER, 5);
    gu_expect_error(a, GM_ERR_BAD_FIELD, GM_DUNGEON_ENTER);
    send_u8(a, GM_DUNGEON_ENTER, 2);
    gu_expect_error(a, GM_ERR_ALREADY_QUEUED, GM_DUNGEON_ENTER);

    /* In pvp (a is paired with c): content beats field. */
    int c = gu_login(g.port, "carol");
    gu_send_raw(c, GM_PVP_QUEUE, NULL, 0);
    gu_expect(c, GM_PVP_QUEUED, &m, buf);
    gu_expect(a, GM_MATCH_START, &m, buf);
    gu_expect(c, GM_MATCH_START, &m, buf);
    send_u8(a, GM_DUNGEON_ATTACK, 9);
    expect_error_skipping_states(a, GM_ERR_WRONG_CONTENT, GM_DUNGEON_ATTACK);
    gu_send_login(a, "x y");
    expect_error_skipping_states(a, GM_ERR_WRONG_CONTENT, GM_LOGIN);
    send_move(a, 2, 0);
    expect_error_skipping_states(a, GM_ERR_BAD_FIELD, GM_PVP_MOVE);
    gu_reset(c); /* a wins by walk-over and goes back to the lobby */
    recv_skipping_states(a, &m, buf);
    assert_int_equal(m.type, GM_MATCH_END);
    gu_expect(a, GM_LOBBY_ENTER, &m, buf);

    /* In a dungeon run of one (3 monsters): content beats field; a
       monster index inside the wire range but over the run's count is a
       field error too. */
    send_u8(a, GM_DUNGEON_ENTER, 1);
    gu_expect(a, GM_DUNGEON_QUEUED, &m, buf);
    gu_expect(a, GM_DUNGEON_START, &m, buf);
    assert_int_equal(m.u.dungeon_start.monsters, 3);
    send_move(a, 2, 2);
    expect_error_skipping_states(a, GM_ERR_WRONG_CONTENT, GM_PVP_MOVE);
    send_u8(a, GM_DUNGEON_ATTACK, 8);
    expect_error_skipping_states(a, GM_ERR_BAD_FIELD, GM_DUNGEON_ATTACK);
    send_u8(a, GM_DUNGEON_ATTACK, 3);
    expect_error_skipping_states(a, GM_ERR_BAD_FIELD, GM_DUNGEON_ATTACK);
    close(a);
    gu_stop(&g);
}

/* ---- dungeon: the party sees a leave at once ---------------------------- */

struct member {
    int fd;
    uint8_t you;
    struct gm_msg last; /* the latest DUNGEON_STATE it got */
};

/* Reads DUNGEON_STATEs until one lists member 'gone' as left (65535) and
   checks that nothing else changed since the one before: the leave was
   sent on its own, not folded into a later tick. */
static void expect_leave_alone(struct member *mb, uint8_t gone)
{
    uint8_t buf[GM_PAYLOAD_MAX];
    struct gm_msg m;
    for (;;) {
        gu_expect(mb->fd, GM_DUNGEON_STATE, &m, buf);
        if (m.u.dungeon_state.php[gone] == GM_HP_GONE)
            break;
        mb->last = m;
    }
    const __typeof__(m.u.dungeon_state) *was = &mb->last.u.dungeon_state,
                                        *now = &m.u.dungeon_state;
    assert_int_equal(now->id, was->id);
    assert_int_equal(now->nm, was->nm);
    assert_int_equal(now->np, was->np);
    assert_memory_equal(now->mhp, was->mhp, sizeof now->mhp);
    for (unsigned i = 0; i < now->np; i++)
        if (i != gone && now->php[i] != was->php[i])
            fail_msg("member %u: hp %u -> %u in the state that shows member "
                     "%u leaving: the leave waited for a monster round",
                     i, was->php[i], now->php[i], gone);
    mb->last = m;
}

static void a_member_leaving_a_run_is_sent_to_the_party_at_once(void **state)
{
    (void)state;
    struct gu_game g;
    struct member mb[3];
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_start(&g);
    const char *names[3] = {"ann", "ben", "cat"};
    for (int i = 0; i < 3; i++) {
        mb[i].fd = gu_login(g.port, names[i]);
        send_u8(mb[i].fd, GM_DUNGEON_ENTER, 3);
    }
    for (int i = 0; i < 3; i++) {
        gu_expect(mb[i].fd, GM_DUNGEON_QUEUED, &m, buf);
        gu_expect(mb[i].fd, GM_DUNGEON_START, &m, buf);
        mb[i].you = m.u.dungeon_start.you;
        assert_int_equal(m.u.dungeon_start.players, 3);
        assert_int_equal(m.u.dungeon_start.monsters, 3 + 2);
        assert_int_equal(m.u.dungeon_start.monster_hp, 50);
        /* The state right after the start: everyone at full hp. */
        gu_expect(mb[i].fd, GM_DUNGEON_STATE, &mb[i].last, buf);
        const __typeof__(m.u.dungeon_state) *s = &mb[i].last.u.dungeon_state;
        assert_int_equal(s->np, 3);
        assert_int_equal(s->nm, 5);
        for (unsigned k = 0; k < s->np; k++)
            assert_int_equal(s->php[k], 100);
        for (unsigned k = 0; k < s->nm; k++)
            assert_int_equal(s->mhp[k], 50);
    }
    /* The second member leaves (a clean close): the other two are told on
       their own; then the first resets: the last one is told too. */
    close(mb[1].fd);
    expect_leave_alone(&mb[0], mb[1].you);
    expect_leave_alone(&mb[2], mb[1].you);
    gu_reset(mb[0].fd);
    expect_leave_alone(&mb[2], mb[0].you);
    close(mb[2].fd);
    gu_stop(&g);
}

/* ---- dungeon: an attack on a dead monster ------------------------------- */

static void an_attack_on_a_dead_monster_is_dropped_silently(void **state)
{
    (void)state;
    struct gu_game g;
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_start(&g);
    int a = gu_login(g.port, "solo");
    send_u8(a, GM_DUNGEON_ENTER, 1);
    gu_expect(a, GM_DUNGEON_QUEUED, &m, buf);
    gu_expect(a, GM_DUNGEON_START, &m, buf);
    struct gm_msg last;
    gu_expect(a, GM_DUNGEON_STATE, &last, buf);
    /* Bring monster 0 to 0: an attack is a request for the next tick and
       the cooldown drops some, so repeat it until the state shows 0. */
    for (int tries = 0; last.u.dungeon_state.mhp[0] > 0; tries++) {
        assert_true(tries < 5000);
        send_u8(a, GM_DUNGEON_ATTACK, 0);
        while (readable(a, 30)) {
            gu_expect(a, GM_DUNGEON_STATE, &last, buf);
            if (last.u.dungeon_state.mhp[0] == 0)
                break;
        }
    }
    /* Now at 0: attack it again, then a marker that always gets an
       answer. Only the marker's error comes back. */
    for (int i = 0; i < 3; i++)
        send_u8(a, GM_DUNGEON_ATTACK, 0);
    send_u8(a, GM_DUNGEON_ATTACK, 9);
    for (;;) {
        gu_recv(a, &m, buf);
        if (m.type != GM_DUNGEON_STATE)
            break;
        last = m;
    }
    assert_int_equal(m.type, GM_ERROR);
    assert_int_equal(m.u.error.code, GM_ERR_BAD_FIELD);
    assert_int_equal(m.u.error.about, GM_DUNGEON_ATTACK);
    /* The next state comes from a tick after those requests (the monster
       round): no monster changed, monster 0 is still at 0. */
    gu_expect(a, GM_DUNGEON_STATE, &m, buf);
    assert_memory_equal(m.u.dungeon_state.mhp, last.u.dungeon_state.mhp,
                        sizeof m.u.dungeon_state.mhp);
    assert_int_equal(m.u.dungeon_state.mhp[0], 0);
    close(a);
    gu_stop(&g);
}

/* ---- pvp: what a knockout and a walk-over pay --------------------------- */

struct fighter {
    int fd;
    uint8_t side;
};

/* The next MATCH_END, then the LOBBY_ENTER that follows it. */
static void expect_end_and_pay(int fd, uint8_t winner, uint8_t reason,
                               uint32_t gold, uint32_t wins)
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    recv_skipping_states(fd, &m, buf);
    assert_int_equal(m.type, GM_MATCH_END);
    assert_int_equal(m.u.match_end.winner, winner);
    assert_int_equal(m.u.match_end.reason, reason);
    gu_expect(fd, GM_LOBBY_ENTER, &m, buf);
    assert_int_equal(m.u.lobby_enter.gold, gold);
    assert_int_equal(m.u.lobby_enter.wins, wins);
}

static void pair_up(struct fighter f[2])
{
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    for (int i = 0; i < 2; i++)
        gu_send_raw(f[i].fd, GM_PVP_QUEUE, NULL, 0);
    for (int i = 0; i < 2; i++) {
        gu_expect(f[i].fd, GM_PVP_QUEUED, &m, buf);
        gu_expect(f[i].fd, GM_MATCH_START, &m, buf);
        f[i].side = m.u.match_start.side;
        /* Both at 100 hp, side 0 at (5,10), side 1 at (15,10). */
        assert_int_equal(m.u.match_start.f[0].x, 5);
        assert_int_equal(m.u.match_start.f[1].x, 15);
        assert_int_equal(m.u.match_start.f[0].hp, 100);
        assert_int_equal(m.u.match_start.f[1].hp, 100);
    }
}

static void a_knockout_pays_one_win_and_a_walk_over_too_never_gold(void **state)
{
    (void)state;
    struct gu_game g;
    struct gm_msg m;
    uint8_t buf[GM_PAYLOAD_MAX];
    gu_start(&g);
    struct fighter f[2] = {{gu_login(g.port, "kay"), 0},
                           {gu_login(g.port, "lee"), 0}};
    pair_up(f);
    /* The attacker is whoever got side 0: it walks right until the other
       is 2 steps away, one state per step, then attacks until the KO. */
    struct fighter *atk = f[0].side == 0 ? &f[0] : &f[1];
    struct fighter *def = atk == &f[0] ? &f[1] : &f[0];
    int16_t x = 5;
    while (x < 13) {
        send_move(atk->fd, 1, 0);
        do
            gu_expect(atk->fd, GM_PVP_STATE, &m, buf);
        while (m.u.pvp_state.f[0].x == x);
        x = m.u.pvp_state.f[0].x;
    }
    for (int tries = 0;; tries++) {
        assert_true(tries < 5000);
        gu_send_raw(atk->fd, GM_PVP_ATTACK, NULL, 0);
        if (!readable(atk->fd, 30))
            continue;
        gu_recv(atk->fd, &m, buf);
        if (m.type == GM_MATCH_END)
            break;
        assert_int_equal(m.type, GM_PVP_STATE);
        assert_int_equal(m.u.pvp_state.f[0].hp, 100); /* it never hit back */
    }
    assert_int_equal(m.u.match_end.winner, 0);
    assert_int_equal(m.u.match_end.reason, 0); /* knockout */
    gu_expect(atk->fd, GM_LOBBY_ENTER, &m, buf);
    assert_int_equal(m.u.lobby_enter.gold, 0);
    assert_int_equal(m.u.lobby_enter.wins, 1);
    expect_end_and_pay(def->fd, 0, 0, 0, 0);
    /* Attacks that crossed MATCH_END reach the lobby: WRONG_CONTENT, which
       the client ignores. Drain them up to a marker (an empty chat line). */
    gu_send_raw(atk->fd, GM_CHAT, "\0\0", 2);
    for (;;) {
        gu_recv(atk->fd, &m, buf);
        assert_int_equal(m.type, GM_ERROR);
        if (m.u.error.about == GM_CHAT)
            break;
        assert_int_equal(m.u.error.code, GM_ERR_WRONG_CONTENT);
        assert_int_equal(m.u.error.about, GM_PVP_ATTACK);
    }
    assert_int_equal(m.u.error.code, GM_ERR_BAD_TEXT);

    /* A walk-over: the loser resets mid-match; the one left wins (reason 1)
       and is paid as for a knockout. */
    pair_up(f);
    struct fighter *stays = def, *goes = atk;
    gu_reset(goes->fd);
    expect_end_and_pay(stays->fd, stays->side, 1, 0, 1);
    close(stays->fd);
    gu_stop(&g);
}

/* ---- the payload limit -------------------------------------------------- */

static void payloads_up_to_8192_bytes_reach_the_game(void **state)
{
    (void)state;
    struct gu_game g;
    static uint8_t frame[4 + 8193];
    gu_start(&g);
    /* 8,192: a LOGIN with bytes after its name reaches the game, which
       answers MALFORMED and closes. */
    int a = gu_connect(g.port);
    memset(frame, 'x', sizeof frame);
    frame[0] = 8192 & 0xff;
    frame[1] = 8192 >> 8;
    frame[2] = GM_LOGIN;
    frame[3] = 0;
    frame[4] = 3;
    frame[5] = 0;
    assert_int_equal(write(a, frame, 4 + 8192), 4 + 8192);
    gu_expect_error(a, GM_ERR_MALFORMED, GM_LOGIN);
    gu_expect_closed(a);
    close(a);
    /* 8,193: the engine refuses the header; no ERROR, the connection is
       reset. */
    int b = gu_connect(g.port);
    frame[0] = 8193 & 0xff;
    frame[1] = 8193 >> 8;
    assert_int_equal(write(b, frame, 4), 4);
    uint8_t c;
    ssize_t r = read(b, &c, 1);
    if (r != 0 && !(r < 0 && errno == ECONNRESET))
        fail_msg("read %zd (%s): expected the connection cut", r,
                 strerror(errno));
    close(b);
    gu_stop(&g);
}

int main(int argc, char **argv)
{
    (void)t_seed();
    gu_backend = t_backend(argc, argv);
    cu_find_build_dir();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(the_first_error_in_the_documented_order_wins,
                                  cu_kill_leftovers),
        cmocka_unit_test_teardown(
            a_member_leaving_a_run_is_sent_to_the_party_at_once,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(
            an_attack_on_a_dead_monster_is_dropped_silently, cu_kill_leftovers),
        cmocka_unit_test_teardown(
            a_knockout_pays_one_win_and_a_walk_over_too_never_gold,
            cu_kill_leftovers),
        cmocka_unit_test_teardown(payloads_up_to_8192_bytes_reach_the_game,
                                  cu_kill_leftovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
