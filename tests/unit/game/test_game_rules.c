/*
 * The rules of ringport-game (examples/game/rules.h) and the validation of
 * its messages (protocol.h, game_decode's three outcomes), without a
 * server: damage and cooldown, who wins and when, the party size limit,
 * nickname and chat validation, and decoding that refuses short, long,
 * unknown and out-of-range input without reading past it.
 */
#include "helpers.h"

#include "protocol.h"
#include "rules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Puts both fighters next to each other (in range). */
static void face_off(struct pvp_fight *f)
{
    pvp_fight_init(f);
    f->f[0].x = 10;
    f->f[1].x = 11;
}

static void step(struct pvp_fight *f, bool *over, uint8_t *winner,
                 uint8_t *reason)
{
    bool changed;
    *over = pvp_fight_step(f, winner, reason, &changed);
}

static void attack_hits_for_damage_only_in_range(void **state)
{
    (void)state;
    struct pvp_fight f;
    bool over;
    uint8_t w = 99, why = 99;
    pvp_fight_init(&f); /* start 10 apart: out of range */
    f.attack[0] = true;
    step(&f, &over, &w, &why);
    assert_false(over);
    assert_int_equal(f.f[1].hp, PVP_HP);

    face_off(&f);
    f.attack[0] = true;
    step(&f, &over, &w, &why);
    assert_int_equal(f.f[1].hp, PVP_HP - PVP_DAMAGE);
    assert_int_equal(f.f[0].hp, PVP_HP);
}

static void attack_waits_for_cooldown(void **state)
{
    (void)state;
    struct pvp_fight f;
    bool over;
    uint8_t w, why;
    face_off(&f);
    for (int t = 0; t < PVP_COOLDOWN_TICKS; t++) {
        f.attack[0] = true;
        step(&f, &over, &w, &why);
    }
    /* Only the first of PVP_COOLDOWN_TICKS back-to-back attacks lands. */
    assert_int_equal(f.f[1].hp, PVP_HP - PVP_DAMAGE);
    f.attack[0] = true;
    step(&f, &over, &w, &why);
    assert_int_equal(f.f[1].hp, PVP_HP - 2 * PVP_DAMAGE);
}

static void
knockout_names_the_winner_and_the_loser_cannot_strike_back(void **state)
{
    (void)state;
    struct pvp_fight f;
    bool over = false;
    uint8_t w = 99, why = 99;
    face_off(&f);
    f.f[0].hp = PVP_DAMAGE; /* one hit from the end, both attack at once */
    f.f[1].hp = PVP_DAMAGE;
    f.attack[0] = f.attack[1] = true;
    step(&f, &over, &w, &why);
    assert_true(over);
    assert_int_equal(w, 0);
    assert_int_equal(why, GM_END_KO);
    assert_int_equal(f.f[1].hp, 0);
    assert_int_equal(f.f[0].hp, PVP_DAMAGE);
}

static void moves_stay_inside_the_arena(void **state)
{
    (void)state;
    struct pvp_fight f;
    bool over;
    uint8_t w, why;
    pvp_fight_init(&f);
    f.f[0].x = 0;
    f.f[0].y = PVP_ARENA;
    f.dx[0] = -1;
    f.dy[0] = 1;
    step(&f, &over, &w, &why);
    assert_int_equal(f.f[0].x, 0);
    assert_int_equal(f.f[0].y, PVP_ARENA);
    f.dx[0] = 1;
    step(&f, &over, &w, &why);
    assert_int_equal(f.f[0].x, 1);
}

static void time_limit_gives_the_win_to_more_hp_or_a_draw(void **state)
{
    (void)state;
    struct pvp_fight f;
    bool over = false;
    uint8_t w = 99, why = 99;
    pvp_fight_init(&f);
    f.f[0].hp = 40;
    f.f[1].hp = 70;
    f.tick = PVP_TIME_LIMIT_TICKS - 1;
    step(&f, &over, &w, &why);
    assert_true(over);
    assert_int_equal(why, GM_END_TIME);
    assert_int_equal(w, 1);
    f.f[0].hp = f.f[1].hp;
    assert_int_equal(pvp_time_winner(&f), GM_DRAW);
}

static void party_size_is_one_to_four(void **state)
{
    (void)state;
    struct dungeon_fight d;
    assert_int_equal(dungeon_fight_init(&d, 0), -EINVAL);
    assert_int_equal(dungeon_fight_init(&d, GM_PARTY_MAX + 1), -EINVAL);
    for (unsigned n = 1; n <= GM_PARTY_MAX; n++) {
        assert_int_equal(dungeon_fight_init(&d, n), 0);
        assert_int_equal(d.nm, n + 2);
    }
    /* And on the wire: DUNGEON_ENTER with 0 or 5 is out of range. */
    struct gm_msg m;
    uint8_t five = 5, zero = 0, four = 4;
    assert_int_equal(gm_decode(GM_DUNGEON_ENTER, &five, 1, &m), -ERANGE);
    assert_int_equal(gm_decode(GM_DUNGEON_ENTER, &zero, 1, &m), -ERANGE);
    assert_int_equal(gm_decode(GM_DUNGEON_ENTER, &four, 1, &m), 0);
    assert_int_equal(m.u.party_size, 4);
}

static void dungeon_is_cleared_with_the_reward_or_wiped_with_none(void **state)
{
    (void)state;
    struct dungeon_fight d;
    uint8_t result = 99;
    bool changed, over = false;
    dungeon_fight_init(&d, 1);
    /* The lone member hits monster after monster until none is left. */
    for (int t = 0; t < 10000 && !over; t++) {
        for (unsigned m = 0; m < d.nm; m++)
            if (d.mhp[m]) {
                d.target[0] = (int16_t)m;
                break;
            }
        over = dungeon_fight_step(&d, &result, &changed);
    }
    assert_true(over);
    assert_int_equal(result, GM_DUNGEON_CLEARED);
    assert_true(d.php[0] > 0 && d.php[0] < DUNGEON_PLAYER_HP);
    assert_int_equal(dungeon_reward(&d, result),
                     d.nm * DUNGEON_GOLD_PER_MONSTER);

    /* A party that never attacks is worn down to a wipe. */
    dungeon_fight_init(&d, 2);
    over = false;
    for (int t = 0; t < 10000 && !over; t++)
        over = dungeon_fight_step(&d, &result, &changed);
    assert_true(over);
    assert_int_equal(result, GM_DUNGEON_WIPED);
    assert_int_equal(d.php[0], 0);
    assert_int_equal(d.php[1], 0);
    assert_int_equal(dungeon_reward(&d, result), 0);
}

static void member_who_left_is_neither_attacked_nor_counted(void **state)
{
    (void)state;
    struct dungeon_fight d;
    uint8_t result;
    bool changed;
    dungeon_fight_init(&d, 2);
    dungeon_fight_remove(&d, 1);
    assert_int_equal(dungeon_fight_present(&d), 1);
    for (int t = 0; t < DUNGEON_MONSTER_PERIOD; t++)
        dungeon_fight_step(&d, &result, &changed);
    assert_int_equal(d.php[1], GM_HP_GONE);
    assert_int_equal(d.php[0],
                     DUNGEON_PLAYER_HP - d.nm * DUNGEON_MONSTER_DAMAGE);
}

static void
attack_on_a_dead_monster_changes_nothing_and_keeps_the_cooldown(void **state)
{
    (void)state;
    struct dungeon_fight d;
    uint8_t result;
    bool changed;
    dungeon_fight_init(&d, 2);
    d.mhp[0] = 0;
    d.killed = 1;
    /* Tick 1 (no monster round): both ask for the dead monster. */
    d.target[0] = d.target[1] = 0;
    assert_false(dungeon_fight_step(&d, &result, &changed));
    assert_false(changed);
    assert_int_equal(d.mhp[0], 0);
    assert_int_equal(d.killed, 1);
    assert_int_equal(d.target[0], -1); /* the request is spent */
    /* The cooldown was not used: a live target is hit on the next tick. */
    d.target[0] = 1;
    assert_false(dungeon_fight_step(&d, &result, &changed));
    assert_true(changed);
    assert_int_equal(d.mhp[1], DUNGEON_MONSTER_HP - DUNGEON_PLAYER_DAMAGE);
    /* Killed earlier in the same tick by a member of lower index: the
       later member's attack is dropped the same way. */
    dungeon_fight_init(&d, 2);
    d.mhp[2] = DUNGEON_PLAYER_DAMAGE;
    d.target[0] = d.target[1] = 2;
    dungeon_fight_step(&d, &result, &changed);
    assert_int_equal(d.mhp[2], 0);
    assert_int_equal(d.killed, 1);
    assert_int_equal(d.ready_at[1], 0); /* member 1 never struck */
}

static void names_are_three_to_sixteen_word_characters(void **state)
{
    (void)state;
    assert_true(gm_name_valid("bob", 3));
    assert_true(gm_name_valid("Abc_123_xyz_0000", 16));
    assert_false(gm_name_valid("ab", 2));
    assert_false(gm_name_valid("Abc_123_xyz_00000", 17));
    assert_false(gm_name_valid("bad name", 8));
    assert_false(gm_name_valid("nul\0x", 5));
    assert_false(gm_name_valid("caf\xc3\xa9", 5));
    assert_true(gm_text_valid("hello", 5));
    assert_false(gm_text_valid("", 0));
    assert_false(gm_text_valid("bell\a", 5));
    char long_text[GM_TEXT_MAX + 1];
    memset(long_text, 'x', sizeof long_text);
    assert_true(gm_text_valid(long_text, GM_TEXT_MAX));
    assert_false(gm_text_valid(long_text, GM_TEXT_MAX + 1));
}

static void decode_refuses_unknown_short_long_and_out_of_range(void **state)
{
    (void)state;
    struct gm_msg m;
    uint8_t buf[64];
    /* Unknown types, client or not. */
    assert_int_equal(gm_decode(0, NULL, 0, &m), -ENOMSG);
    assert_int_equal(gm_decode(999, buf, 0, &m), -ENOMSG);
    assert_false(gm_is_client_type(GM_LOGIN_OK));
    assert_true(gm_is_client_type(GM_DUNGEON_ATTACK));
    /* Short and trailing payloads. */
    uint8_t move[3] = {1, 0xff, 7};
    assert_int_equal(gm_decode(GM_PVP_MOVE, move, 1, &m), -EBADMSG);
    assert_int_equal(gm_decode(GM_PVP_MOVE, move, 3, &m), -EBADMSG);
    assert_int_equal(gm_decode(GM_PVP_MOVE, move, 2, &m), 0);
    assert_int_equal(m.u.move.dx, 1);
    assert_int_equal(m.u.move.dy, -1);
    assert_int_equal(gm_decode(GM_PVP_ATTACK, move, 1, &m), -EBADMSG);
    /* A string whose length runs past the payload. */
    uint8_t login[5] = {200, 0, 'a', 'b', 'c'};
    assert_int_equal(gm_decode(GM_LOGIN, login, 5, &m), -EBADMSG);
    /* Out of range fields. */
    uint8_t far[2] = {2, 0};
    assert_int_equal(gm_decode(GM_PVP_MOVE, far, 2, &m), -ERANGE);
    uint8_t target = GM_MONSTERS_MAX;
    assert_int_equal(gm_decode(GM_DUNGEON_ATTACK, &target, 1, &m), -ERANGE);
    /* A dungeon state claiming more monsters than exist. */
    struct gm_msg st = {.type = GM_DUNGEON_STATE};
    st.u.dungeon_state.nm = 3;
    st.u.dungeon_state.np = 1;
    int n = gm_encode(&st, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(gm_decode(GM_DUNGEON_STATE, buf, (size_t)n, &m), 0);
    buf[8] = GM_MONSTERS_MAX + 1;
    assert_int_equal(gm_decode(GM_DUNGEON_STATE, buf, (size_t)n, &m), -EBADMSG);
}

static void every_message_survives_an_encode_decode_round_trip(void **state)
{
    (void)state;
    struct gm_msg in = {.type = GM_MATCH_START}, out;
    uint8_t buf[GM_PAYLOAD_MAX];
    in.u.match_start.room = 77;
    in.u.match_start.side = 1;
    in.u.match_start.opponent = gm_str_of("rival", 5);
    in.u.match_start.f[0] = (struct gm_fighter){-3, 4, 100};
    in.u.match_start.f[1] = (struct gm_fighter){15, 10, 90};
    int n = gm_encode(&in, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(gm_decode(GM_MATCH_START, buf, (size_t)n, &out), 0);
    assert_int_equal(out.u.match_start.room, 77);
    assert_int_equal(out.u.match_start.opponent.len, 5);
    assert_memory_equal(out.u.match_start.opponent.p, "rival", 5);
    assert_int_equal(out.u.match_start.f[0].x, -3);
    assert_int_equal(out.u.match_start.f[1].hp, 90);
    assert_int_equal(gm_encode(&in, buf, 8), -ENOBUFS);
    /* Random bytes for every type: decode never crashes or overreads
       (ASan checks the latter), and fails or fills consistently. */
    uint64_t seed = t_seed();
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)t_rand_range(&seed, 0, 40);
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        for (size_t k = 0; k < len; k++)
            p[k] = (uint8_t)t_rand(&seed);
        uint16_t type = (uint16_t)t_rand_range(&seed, 0, GM_SERVER_LAST + 1);
        int r = gm_decode(type, p, len, &out);
        assert_true(r == 0 || r == -ENOMSG || r == -EBADMSG || r == -ERANGE);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attack_hits_for_damage_only_in_range),
        cmocka_unit_test(attack_waits_for_cooldown),
        cmocka_unit_test(
            knockout_names_the_winner_and_the_loser_cannot_strike_back),
        cmocka_unit_test(moves_stay_inside_the_arena),
        cmocka_unit_test(time_limit_gives_the_win_to_more_hp_or_a_draw),
        cmocka_unit_test(party_size_is_one_to_four),
        cmocka_unit_test(dungeon_is_cleared_with_the_reward_or_wiped_with_none),
        cmocka_unit_test(member_who_left_is_neither_attacked_nor_counted),
        cmocka_unit_test(
            attack_on_a_dead_monster_changes_nothing_and_keeps_the_cooldown),
        cmocka_unit_test(names_are_three_to_sixteen_word_characters),
        cmocka_unit_test(decode_refuses_unknown_short_long_and_out_of_range),
        cmocka_unit_test(every_message_survives_an_encode_decode_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
