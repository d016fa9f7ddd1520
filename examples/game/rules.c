/*
 * The game rules (rules.h). Deterministic: the same requests in the same
 * ticks give the same fight, which is what lets the bots check every
 * state the server sends.
 */
#include "rules.h"

#include <errno.h>
#include <string.h>

bool gm_name_valid(const char *p, size_t len)
{
    if (len < GM_NAME_MIN || len > GM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

bool gm_text_valid(const char *p, size_t len)
{
    if (len < 1 || len > GM_TEXT_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return true;
}

void pvp_fight_init(struct pvp_fight *f)
{
    memset(f, 0, sizeof *f);
    f->f[0] = (struct gm_fighter){PVP_ARENA / 4, PVP_ARENA / 2, PVP_HP};
    f->f[1] =
        (struct gm_fighter){PVP_ARENA - PVP_ARENA / 4, PVP_ARENA / 2, PVP_HP};
}

static int16_t clamp_coord(int v)
{
    return (int16_t)(v < 0 ? 0 : v > PVP_ARENA ? PVP_ARENA : v);
}

bool pvp_in_range(const struct gm_fighter *a, const struct gm_fighter *b)
{
    int dx = a->x - b->x, dy = a->y - b->y;
    if (dx < 0)
        dx = -dx;
    if (dy < 0)
        dy = -dy;
    return (dx > dy ? dx : dy) <= PVP_RANGE;
}

uint8_t pvp_time_winner(const struct pvp_fight *f)
{
    if (f->f[0].hp == f->f[1].hp)
        return GM_DRAW;
    return f->f[0].hp > f->f[1].hp ? 0 : 1;
}

bool pvp_fight_step(struct pvp_fight *f, uint8_t *winner, uint8_t *reason,
                    bool *changed)
{
    *changed = false;
    f->tick++;
    for (int s = 0; s < 2; s++) {
        struct gm_fighter *me = &f->f[s];
        int16_t x = clamp_coord(me->x + f->dx[s]);
        int16_t y = clamp_coord(me->y + f->dy[s]);
        if (x != me->x || y != me->y)
            *changed = true;
        me->x = x;
        me->y = y;
        f->dx[s] = f->dy[s] = 0;
    }
    bool over = false;
    for (int s = 0; s < 2; s++) {
        struct gm_fighter *me = &f->f[s], *other = &f->f[1 - s];
        bool wants = f->attack[s];
        f->attack[s] = false;
        if (!wants || over || f->tick < f->ready_at[s] ||
            !pvp_in_range(me, other))
            continue;
        f->ready_at[s] = f->tick + PVP_COOLDOWN_TICKS;
        other->hp = other->hp > PVP_DAMAGE ? other->hp - PVP_DAMAGE : 0;
        *changed = true;
        if (other->hp == 0) {
            over = true;
            *winner = (uint8_t)s;
            *reason = GM_END_KO;
        }
    }
    if (!over && f->tick >= PVP_TIME_LIMIT_TICKS) {
        over = true;
        *winner = pvp_time_winner(f);
        *reason = GM_END_TIME;
    }
    return over;
}

int dungeon_fight_init(struct dungeon_fight *d, unsigned np)
{
    if (np < 1 || np > GM_PARTY_MAX)
        return -EINVAL;
    memset(d, 0, sizeof *d);
    d->np = (uint8_t)np;
    d->nm = (uint8_t)(np + 2);
    for (unsigned i = 0; i < np; i++) {
        d->php[i] = DUNGEON_PLAYER_HP;
        d->target[i] = -1;
    }
    for (unsigned i = 0; i < d->nm; i++)
        d->mhp[i] = DUNGEON_MONSTER_HP;
    return 0;
}

void dungeon_fight_remove(struct dungeon_fight *d, unsigned i)
{
    if (i < d->np)
        d->php[i] = GM_HP_GONE;
}

unsigned dungeon_fight_present(const struct dungeon_fight *d)
{
    unsigned n = 0;
    for (unsigned i = 0; i < d->np; i++)
        n += d->php[i] != GM_HP_GONE;
    return n;
}

static bool member_alive(const struct dungeon_fight *d, unsigned i)
{
    return d->php[i] != GM_HP_GONE && d->php[i] > 0;
}

bool dungeon_fight_step(struct dungeon_fight *d, uint8_t *result, bool *changed)
{
    *changed = false;
    d->tick++;
    for (unsigned i = 0; i < d->np; i++) {
        int t = d->target[i];
        d->target[i] = -1;
        if (t < 0 || t >= d->nm || !member_alive(d, i) || d->mhp[t] == 0 ||
            d->tick < d->ready_at[i])
            continue;
        d->ready_at[i] = d->tick + DUNGEON_PLAYER_COOLDOWN;
        d->mhp[t] = d->mhp[t] > DUNGEON_PLAYER_DAMAGE
                        ? (uint16_t)(d->mhp[t] - DUNGEON_PLAYER_DAMAGE)
                        : 0;
        if (d->mhp[t] == 0)
            d->killed++;
        *changed = true;
    }
    if (d->killed == d->nm) {
        *result = GM_DUNGEON_CLEARED;
        return true;
    }
    if (d->tick % DUNGEON_MONSTER_PERIOD == 0) {
        for (unsigned m = 0; m < d->nm; m++) {
            unsigned alive[GM_PARTY_MAX], n = 0;
            for (unsigned i = 0; i < d->np; i++)
                if (member_alive(d, i))
                    alive[n++] = i;
            if (n == 0)
                break;
            if (d->mhp[m] == 0)
                continue;
            unsigned v = alive[(d->tick / DUNGEON_MONSTER_PERIOD + m) % n];
            d->php[v] = d->php[v] > DUNGEON_MONSTER_DAMAGE
                            ? (uint16_t)(d->php[v] - DUNGEON_MONSTER_DAMAGE)
                            : 0;
            *changed = true;
        }
    }
    bool any = false;
    for (unsigned i = 0; i < d->np; i++)
        any |= member_alive(d, i);
    if (!any || d->tick >= DUNGEON_TIME_LIMIT_TICKS) {
        *result = GM_DUNGEON_WIPED;
        return true;
    }
    return false;
}

uint32_t dungeon_reward(const struct dungeon_fight *d, uint8_t result)
{
    return result == GM_DUNGEON_CLEARED ? d->nm * DUNGEON_GOLD_PER_MONSTER : 0;
}
