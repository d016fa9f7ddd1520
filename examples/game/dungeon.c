/*
 * The dungeon content: a party (1..4, formed by the lobby) against
 * server-driven monsters ticking at 10 Hz (rules.h has the fight). The
 * members arrive one by one, each with a seat of the same run as its
 * move's ticket; the run starts when all party_n have arrived, or after
 * DUNGEON_WAIT_TICKS with those who did (a member that disconnected on
 * the way counts as gone). At the end every member left gets the final
 * DUNGEON_STATE, DUNGEON_END with its gold and goes back to the lobby. A
 * member who disconnects is removed and the others get a DUNGEON_STATE at
 * once (every visible change is sent when it happens, docs/protocol.md);
 * the party goes on, and a run with nobody left is dropped. Every
 * SPECT_PERIOD_MS the tick publishes a summary for spectators
 * (spectate.h): players here, runs started and the oldest GM_SPECT_RUNS
 * of them. Runs on its own thread.
 */
#include "game.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct run {
    uint32_t id;
    bool started;
    uint8_t party_n, arrived;
    struct player *m[GM_PARTY_MAX];
    struct dungeon_fight fight;
    uint32_t wait_ticks;
    struct run *prev, *next;
};

struct dungeon {
    struct game *g;
    struct run *runs;
};

static void run_unlink(struct dungeon *dg, struct run *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        dg->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static size_t run_members(const struct run *r, rp_sid *ids)
{
    size_t n = 0;
    for (unsigned i = 0; i < r->party_n; i++)
        if (r->m[i])
            ids[n++] = r->m[i]->sid;
    return n;
}

static void run_send_state(struct dungeon *dg, struct run *r)
{
    rp_sid ids[GM_PARTY_MAX];
    struct gm_msg m = {.type = GM_DUNGEON_STATE};
    m.u.dungeon_state.id = r->id;
    m.u.dungeon_state.tick = r->fight.tick;
    m.u.dungeon_state.nm = r->fight.nm;
    m.u.dungeon_state.np = r->fight.np;
    memcpy(m.u.dungeon_state.mhp, r->fight.mhp, sizeof r->fight.mhp);
    memcpy(m.u.dungeon_state.php, r->fight.php, sizeof r->fight.php);
    game_broadcast(dg->g, ids, run_members(r, ids), &m);
}

static void run_start(struct dungeon *dg, struct run *r)
{
    r->started = true;
    dungeon_fight_init(&r->fight, r->party_n);
    for (unsigned i = 0; i < r->party_n; i++) {
        if (!r->m[i]) {
            dungeon_fight_remove(&r->fight, i);
            continue;
        }
        struct gm_msg m = {.type = GM_DUNGEON_START};
        m.u.dungeon_start.id = r->id;
        m.u.dungeon_start.you = (uint8_t)i;
        m.u.dungeon_start.players = r->party_n;
        m.u.dungeon_start.monsters = r->fight.nm;
        m.u.dungeon_start.monster_hp = DUNGEON_MONSTER_HP;
        game_send(dg->g, r->m[i]->sid, &m);
    }
    run_send_state(dg, r);
}

static void run_end(struct dungeon *dg, struct run *r, uint8_t result)
{
    struct gm_msg m = {.type = GM_DUNGEON_END};
    m.u.dungeon_end.id = r->id;
    m.u.dungeon_end.result = result;
    m.u.dungeon_end.gold = dungeon_reward(&r->fight, result);
    for (unsigned i = 0; i < r->party_n; i++) {
        struct player *p = r->m[i];
        if (!p)
            continue;
        p->gold += m.u.dungeon_end.gold;
        p->where = NULL;
        game_send(dg->g, p->sid, &m);
        rp_group_move(dg->g->srv, p->sid, dg->g->lobby_g, NULL);
    }
    run_unlink(dg, r);
    free(r);
}

static void dungeon_enter(struct rp_group *grp, rp_sid sid, void *data,
                          void *ticket, void *user)
{
    struct dungeon *dg = user;
    struct player *p = data;
    struct seat seat;
    (void)grp;
    if (!ticket) { /* only the lobby sends sessions here, with a seat */
        rp_server_disconnect(dg->g->srv, sid);
        return;
    }
    seat = *(struct seat *)ticket;
    free(ticket);
    p->side = seat.side;
    struct run *r = dg->runs;
    for (; r; r = r->next)
        if (r->id == seat.match_id && !r->started)
            break;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) {
            rp_group_move(dg->g->srv, sid, dg->g->lobby_g, NULL);
            return;
        }
        r->id = seat.match_id;
        r->party_n = seat.party_n;
        r->next = dg->runs;
        if (dg->runs)
            dg->runs->prev = r;
        dg->runs = r;
    }
    r->m[p->side] = p;
    r->arrived++;
    p->where = r;
    if (r->arrived == r->party_n)
        run_start(dg, r);
}

static void dungeon_message(struct rp_group *grp, rp_sid sid, void *data,
                            const struct rp_message *msg, void *user)
{
    struct dungeon *dg = user;
    struct player *p = data;
    struct gm_msg m;
    (void)grp;
    /* Only logged-in sessions are ever moved here. */
    if (!game_decode(dg->g, sid, msg, GAME_TYPE_BIT(GM_DUNGEON_ATTACK), true,
                     &m))
        return;
    struct run *r = p->where;
    if (!r || !r->started)
        return; /* crossed DUNGEON_END on the wire, or too early */
    if (m.u.target >= r->fight.nm) {
        game_send_error(dg->g, sid, GM_ERR_BAD_FIELD, m.type);
        return;
    }
    r->fight.target[p->side] = m.u.target;
}

/* The summary for spectators; runs are newest first (pvp_publish). */
static void dungeon_publish(struct dungeon *dg)
{
    struct spect_board *b = &dg->g->board[SPECT_DUNGEON];
    struct spect_snap *s = spect_board_begin(b);
    rp_sid ids[GM_PARTY_MAX];
    for (const struct run *r = dg->runs; r; r = r->next) {
        s->online += (uint32_t)run_members(r, ids);
        s->live += r->started;
    }
    uint32_t skip = s->live > GM_SPECT_RUNS ? s->live - GM_SPECT_RUNS : 0;
    for (const struct run *r = dg->runs; r; r = r->next) {
        if (!r->started)
            continue;
        if (skip) {
            skip--;
            continue;
        }
        /* nm <= GM_MONSTERS_MAX, so SPECT_RUNS runs fit SPECT_MONSTERS. */
        s->run[s->n++] = (struct gm_spect_run){
            .id = r->id,
            .players = (uint8_t)run_members(r, ids),
            .monsters = r->fight.nm,
        };
        memcpy(&s->monster_hp[s->nmh], r->fight.mhp,
               r->fight.nm * sizeof *s->monster_hp);
        s->nmh += r->fight.nm;
    }
    spect_board_publish(b);
}

static void dungeon_tick(struct rp_group *grp, int64_t elapsed_ns, void *user)
{
    struct dungeon *dg = user;
    (void)grp, (void)elapsed_ns;
    for (struct run *r = dg->runs, *next; r; r = next) {
        next = r->next;
        if (!r->started) {
            if (++r->wait_ticks >= DUNGEON_WAIT_TICKS)
                run_start(dg, r);
            continue;
        }
        uint8_t result;
        bool changed;
        bool over = dungeon_fight_step(&r->fight, &result, &changed);
        if (changed || over)
            run_send_state(dg, r);
        if (over)
            run_end(dg, r, result);
    }
    if (spect_board_due(&dg->g->board[SPECT_DUNGEON], DUNGEON_TICK_MS))
        dungeon_publish(dg);
}

/* Moving on or ended: main.c's on_leave frees the record at the end. */
static void dungeon_leave(struct rp_group *grp, rp_sid sid, void *data,
                          enum rp_leave_reason reason, void *user)
{
    struct dungeon *dg = user;
    struct player *p = data;
    (void)grp, (void)sid, (void)reason;
    struct run *r = p->where;
    if (r) {
        r->m[p->side] = NULL;
        if (r->started)
            dungeon_fight_remove(&r->fight, p->side);
        else
            r->arrived--;
        p->where = NULL;
        rp_sid ids[GM_PARTY_MAX];
        if (run_members(r, ids) == 0) {
            run_unlink(dg, r);
            free(r);
        } else if (r->started) {
            /* Every change the party can see goes out when it happens
               (docs/protocol.md): the others learn of the leave now, not
               at the next tick that changes something. */
            run_send_state(dg, r);
        }
    }
}

int dungeon_create(struct game *g)
{
    struct dungeon *dg = calloc(1, sizeof *dg);
    if (!dg)
        return -ENOMEM;
    dg->g = g;
    g->dungeon = dg;
    struct rp_group_config cfg = {.name = "dungeon",
                                  .tick_ms = DUNGEON_TICK_MS,
                                  .cb = {.on_enter = dungeon_enter,
                                         .on_message = dungeon_message,
                                         .on_tick = dungeon_tick,
                                         .on_leave = dungeon_leave},
                                  .user = dg};
    return rp_group_create(g->srv, &cfg, &g->dungeon_g);
}

void dungeon_destroy(struct game *g)
{
    struct dungeon *dg = g->dungeon;
    if (!dg)
        return;
    for (struct run *r = dg->runs, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    free(dg);
    g->dungeon = NULL;
}
