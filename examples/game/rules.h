/*
 * The game rules of ringport-game as pure functions on plain structs: no
 * threads, no I/O, no ringport API, so tests/unit-style checks
 * (test_game_rules) can drive them tick by tick. The contents (pvp.c,
 * dungeon.c, lobby.c) own the structs and call these from their thread.
 */
#ifndef RINGPORT_GAME_RULES_H
#define RINGPORT_GAME_RULES_H

#include "protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PVP: a square arena, 1v1, melee. */
#define PVP_TICK_MS 50 /* 20 Hz */
#define PVP_ARENA 20   /* coordinates 0..PVP_ARENA on both axes */
#define PVP_HP 100
#define PVP_DAMAGE 10
#define PVP_RANGE 2          /* Chebyshev distance an attack reaches */
#define PVP_COOLDOWN_TICKS 2 /* ticks between two attacks of one fighter */
#define PVP_TIME_LIMIT_TICKS (60 * 20)
#define PVP_WAIT_TICKS (3 * 20) /* for the second fighter to arrive */

/* Dungeon: a party against server-driven monsters. */
#define DUNGEON_TICK_MS 100 /* 10 Hz */
#define DUNGEON_PLAYER_HP 100
#define DUNGEON_MONSTER_HP 50
#define DUNGEON_PLAYER_DAMAGE 10
#define DUNGEON_PLAYER_COOLDOWN 2 /* ticks */
#define DUNGEON_MONSTER_DAMAGE 5
#define DUNGEON_MONSTER_PERIOD 10 /* ticks between monster attacks */
#define DUNGEON_GOLD_PER_MONSTER 10
#define DUNGEON_WAIT_TICKS (3 * 10)
#define DUNGEON_TIME_LIMIT_TICKS (120 * 10)

/* A nickname: GM_NAME_MIN..GM_NAME_MAX bytes of [A-Za-z0-9_]. */
bool gm_name_valid(const char *p, size_t len);
/* Chat text: 1..GM_TEXT_MAX bytes, no control characters. */
bool gm_text_valid(const char *p, size_t len);

/* One PVP fight. Side 0 starts left, side 1 right, both at full hp. */
struct pvp_fight {
    struct gm_fighter f[2];
    int8_t dx[2], dy[2];  /* the latest move request, applied next tick */
    bool attack[2];       /* an attack requested since the last tick */
    uint32_t ready_at[2]; /* first tick the fighter may attack again */
    uint32_t tick;
};

void pvp_fight_init(struct pvp_fight *f);
bool pvp_in_range(const struct gm_fighter *a, const struct gm_fighter *b);
/*
 * One tick: moves (clamped to the arena), then side 0's attack, then side
 * 1's, each hitting for PVP_DAMAGE if in range and off cooldown; a fighter
 * knocked out in this tick does not strike back. Clears the requests.
 * Returns true when the fight is over, with *winner (0, 1 or GM_DRAW) and
 * *reason (GM_END_KO or GM_END_TIME). '*changed' says whether a position
 * or hp moved.
 */
bool pvp_fight_step(struct pvp_fight *f, uint8_t *winner, uint8_t *reason,
                    bool *changed);
/* Who wins on time: more hp, else GM_DRAW. */
uint8_t pvp_time_winner(const struct pvp_fight *f);

/* One dungeon run: 'np' players against np + 2 monsters. */
struct dungeon_fight {
    uint8_t np, nm;
    uint16_t php[GM_PARTY_MAX]; /* GM_HP_GONE once a member left */
    uint16_t mhp[GM_MONSTERS_MAX];
    int16_t target[GM_PARTY_MAX]; /* requested monster, -1 none */
    uint32_t ready_at[GM_PARTY_MAX];
    uint32_t killed; /* monsters brought to 0 */
    uint32_t tick;
};

/* Returns 0, or -EINVAL if np is not 1..GM_PARTY_MAX. */
int dungeon_fight_init(struct dungeon_fight *d, unsigned np);
/* Member 'i' has left: it no longer fights or is attacked. */
void dungeon_fight_remove(struct dungeon_fight *d, unsigned i);
/* Members still present (left ones do not count; dead ones do). */
unsigned dungeon_fight_present(const struct dungeon_fight *d);
/*
 * One tick: each living member's requested attack (if off cooldown and the
 * target lives), then, every DUNGEON_MONSTER_PERIOD ticks, each living
 * monster hits one living member (chosen round-robin by tick and monster).
 * Returns true when over: *result CLEARED (every monster at 0) or WIPED
 * (no member alive, or the time limit).
 */
bool dungeon_fight_step(struct dungeon_fight *d, uint8_t *result,
                        bool *changed);
/* Gold each member gets for a run that ended with 'result'. */
uint32_t dungeon_reward(const struct dungeon_fight *d, uint8_t result);

#endif
