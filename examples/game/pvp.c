/*
 * The PVP content: 1v1 rooms ticking at 20 Hz (rules.h has the fight).
 * The lobby pairs two players and moves both here, each with a seat of
 * the same match as its move's ticket; the first to arrive opens the
 * room, the second starts the fight (MATCH_START to both). A room whose
 * second player never comes (it disconnected on the way) ends after
 * PVP_WAIT_TICKS with the first as winner. At the end both get MATCH_END
 * and go back to the lobby. A player who disconnects loses: the other is
 * told (OPPONENT_LEFT) and sent back.
 *
 * Moves and attacks are requests, applied at the next tick; a request from
 * a player whose room has ended (it crossed MATCH_END on the wire) is
 * dropped without an answer. Every SPECT_PERIOD_MS the tick publishes a
 * summary for spectators (spectate.h): players here, arenas fighting and
 * the oldest GM_SPECT_ARENAS of them. Everything here runs on the pvp
 * thread.
 */
#include "game.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum room_state { ROOM_WAITING, ROOM_FIGHTING };

struct room {
    uint32_t id;
    enum room_state state;
    struct player *p[2];
    struct pvp_fight fight;
    uint32_t wait_ticks;
    struct room *prev, *next;
};

struct pvp {
    struct game *g;
    struct room *rooms; /* waiting and fighting, newest first */
};

static void room_unlink(struct pvp *pv, struct room *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        pv->rooms = r->next;
    if (r->next)
        r->next->prev = r->prev;
}

static void room_state_msg(const struct room *r, uint16_t type,
                           struct gm_msg *m)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->u.pvp_state.room = r->id;
    m->u.pvp_state.tick = r->fight.tick;
    memcpy(m->u.pvp_state.f, r->fight.f, sizeof r->fight.f);
}

static void room_broadcast(struct pvp *pv, struct room *r,
                           const struct gm_msg *m)
{
    rp_sid ids[2];
    size_t n = 0;
    for (int s = 0; s < 2; s++)
        if (r->p[s])
            ids[n++] = r->p[s]->sid;
    game_broadcast(pv->g, ids, n, m);
}

/* Tells who is still there, sends them home and frees the room. */
static void room_end(struct pvp *pv, struct room *r, uint8_t winner,
                     uint8_t reason)
{
    struct gm_msg m = {.type = GM_MATCH_END};
    m.u.match_end.room = r->id;
    m.u.match_end.winner = winner;
    m.u.match_end.reason = reason;
    room_broadcast(pv, r, &m);
    for (int s = 0; s < 2; s++) {
        struct player *p = r->p[s];
        if (!p)
            continue;
        if (winner == s)
            p->wins++;
        p->where = NULL;
        rp_group_move(pv->g->srv, p->sid, pv->g->lobby_g, NULL);
    }
    room_unlink(pv, r);
    free(r);
}

static void room_start(struct pvp *pv, struct room *r)
{
    r->state = ROOM_FIGHTING;
    for (int s = 0; s < 2; s++) {
        struct player *o = r->p[1 - s];
        struct gm_msg m = {.type = GM_MATCH_START};
        m.u.match_start.room = r->id;
        m.u.match_start.side = (uint8_t)s;
        m.u.match_start.opponent = gm_str_of(o->name, strlen(o->name));
        memcpy(m.u.match_start.f, r->fight.f, sizeof r->fight.f);
        game_send(pv->g, r->p[s]->sid, &m);
    }
}

static void pvp_enter(struct rp_group *grp, rp_sid sid, void *data,
                      void *ticket, void *user)
{
    struct pvp *pv = user;
    struct player *p = data;
    struct seat seat;
    (void)grp;
    if (!ticket) { /* only the lobby sends sessions here, with a seat */
        rp_server_disconnect(pv->g->srv, sid);
        return;
    }
    seat = *(struct seat *)ticket;
    free(ticket);
    p->side = seat.side;
    struct room *r = pv->rooms;
    for (; r; r = r->next)
        if (r->id == seat.match_id && r->state == ROOM_WAITING)
            break;
    if (r) {
        r->p[p->side] = p;
        p->where = r;
        room_start(pv, r);
        return;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        p->where = NULL;
        rp_group_move(pv->g->srv, sid, pv->g->lobby_g, NULL);
        return;
    }
    r->id = seat.match_id;
    r->p[p->side] = p;
    pvp_fight_init(&r->fight);
    p->where = r;
    r->next = pv->rooms;
    if (pv->rooms)
        pv->rooms->prev = r;
    pv->rooms = r;
}

static void pvp_message(struct rp_group *grp, rp_sid sid, void *data,
                        const struct rp_message *msg, void *user)
{
    struct pvp *pv = user;
    struct player *p = data;
    struct gm_msg m;
    (void)grp;
    /* Only logged-in sessions are ever moved here. */
    if (!game_decode(pv->g, sid, msg,
                     GAME_TYPE_BIT(GM_PVP_MOVE) | GAME_TYPE_BIT(GM_PVP_ATTACK),
                     true, &m))
        return;
    struct room *r = p->where;
    if (!r || r->state != ROOM_FIGHTING)
        return; /* crossed MATCH_END or arrived early: dropped */
    if (m.type == GM_PVP_MOVE) {
        r->fight.dx[p->side] = m.u.move.dx;
        r->fight.dy[p->side] = m.u.move.dy;
    } else {
        r->fight.attack[p->side] = true;
    }
}

/* The summary for spectators; rooms are newest first, so the oldest
   arenas (the ones a spectator has been watching) are the last ones. */
static void pvp_publish(struct pvp *pv)
{
    struct spect_board *b = &pv->g->board[SPECT_PVP];
    struct spect_snap *s = spect_board_begin(b);
    for (const struct room *r = pv->rooms; r; r = r->next) {
        s->online += (r->p[0] != NULL) + (r->p[1] != NULL);
        s->live += r->state == ROOM_FIGHTING;
    }
    uint32_t skip = s->live > GM_SPECT_ARENAS ? s->live - GM_SPECT_ARENAS : 0;
    for (const struct room *r = pv->rooms; r; r = r->next) {
        if (r->state != ROOM_FIGHTING)
            continue;
        if (skip) {
            skip--;
            continue;
        }
        const struct gm_fighter *f = r->fight.f;
        s->arena[s->n++] = (struct gm_spect_arena){
            .room = r->id,
            .tick = r->fight.tick,
            .x0 = f[0].x,
            .y0 = f[0].y,
            .hp0 = f[0].hp,
            .x1 = f[1].x,
            .y1 = f[1].y,
            .hp1 = f[1].hp,
        };
    }
    spect_board_publish(b);
}

static void pvp_tick(struct rp_group *grp, int64_t elapsed_ns, void *user)
{
    struct pvp *pv = user;
    (void)grp, (void)elapsed_ns;
    for (struct room *r = pv->rooms, *next; r; r = next) {
        next = r->next;
        if (r->state == ROOM_WAITING) {
            if (++r->wait_ticks >= PVP_WAIT_TICKS)
                room_end(pv, r, r->p[0] ? 0 : 1, GM_END_OPPONENT_LEFT);
            continue;
        }
        uint8_t winner, reason;
        bool changed;
        bool over = pvp_fight_step(&r->fight, &winner, &reason, &changed);
        if (changed) {
            struct gm_msg m;
            room_state_msg(r, GM_PVP_STATE, &m);
            room_broadcast(pv, r, &m);
        }
        if (over)
            room_end(pv, r, winner, reason);
    }
    if (spect_board_due(&pv->g->board[SPECT_PVP], PVP_TICK_MS))
        pvp_publish(pv);
}

/* Moving on or ended: main.c's on_leave frees the record at the end. */
static void pvp_leave(struct rp_group *grp, rp_sid sid, void *data,
                      enum rp_leave_reason reason, void *user)
{
    struct pvp *pv = user;
    struct player *p = data;
    (void)grp, (void)sid, (void)reason;
    struct room *r = p->where;
    if (r) {
        /* It left mid-fight (or before the fight): it loses. */
        r->p[p->side] = NULL;
        p->where = NULL;
        room_end(pv, r, (uint8_t)(1 - p->side), GM_END_OPPONENT_LEFT);
    }
}

int pvp_create(struct game *g)
{
    struct pvp *pv = calloc(1, sizeof *pv);
    if (!pv)
        return -ENOMEM;
    pv->g = g;
    g->pvp = pv;
    struct rp_group_config cfg = {.name = "pvp",
                                  .tick_ms = PVP_TICK_MS,
                                  .cb = {.on_enter = pvp_enter,
                                         .on_message = pvp_message,
                                         .on_tick = pvp_tick,
                                         .on_leave = pvp_leave},
                                  .user = pv};
    return rp_group_create(g->srv, &cfg, &g->pvp_g);
}

void pvp_destroy(struct game *g)
{
    struct pvp *pv = g->pvp;
    if (!pv)
        return;
    for (struct room *r = pv->rooms, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    free(pv);
    g->pvp = NULL;
}
