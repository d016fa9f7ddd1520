/*
 * The spectator content ("spect" group) and the triple buffers the other
 * contents publish their summaries on (spectate.h says why this shape).
 *
 * A session becomes a spectator when its first game message is SPECTATE:
 * the lobby reserves one of max_spectators places (g->n.spectators; past
 * the limit it answers ERROR SPECTATORS_FULL and the session stays, not
 * logged in) and moves it here. It never logs in, never holds a name and
 * never queues; whatever it sends here is answered WRONG_CONTENT (a
 * malformed frame still ends it). Its place is given back when its record
 * is freed (player_free), however the session ends.
 *
 * Every SPECT_TICK_MS the group looks at the clock; once SPECT_PERIOD_MS
 * has passed since the last state it samples the server's message
 * counters (messages per second over that interval), reads the latest
 * summary of each content and, if anyone watches, broadcasts one
 * SPECTATOR_STATE (one shared packet) to all spectators. So states are at
 * least SPECT_PERIOD_MS apart: at most 5 a second, whatever the tick
 * jitter. Runs on its own thread (the one-thread-per-content rule).
 */
#include "game.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SPECT_TICK_MS 20

struct spectate {
    struct game *g;
    rp_sid *ids; /* [max_spectators], first 'n' used; p->slot indexes it */
    uint32_t n;
    uint32_t seq;
    int64_t last_ns; /* when the last state was composed (or sampled) */
    uint64_t last_in, last_out;
};

/* ---- the triple buffer -------------------------------------------------- */

void spect_board_init(struct spect_board *b)
{
    memset(b->buf, 0, sizeof b->buf);
    b->back = 0;
    atomic_init(&b->middle, 1);
    b->front = 2;
    b->ticks = 0;
}

bool spect_board_due(struct spect_board *b, uint32_t tick_ms)
{
    if (++b->ticks * tick_ms < SPECT_PERIOD_MS)
        return false;
    b->ticks = 0;
    return true;
}

struct spect_snap *spect_board_begin(struct spect_board *b)
{
    struct spect_snap *s = &b->buf[b->back];
    s->online = s->live = s->n = s->nmh = 0;
    return s;
}

void spect_board_publish(struct spect_board *b)
{
    /* Release: the summary's bytes go with it. Acquire: the buffer we get
       back may be one the reader just let go of; its reads come first. */
    uint32_t old = atomic_exchange_explicit(&b->middle, b->back | SPECT_FRESH,
                                            memory_order_acq_rel);
    b->back = old & 3u;
}

const struct spect_snap *spect_board_latest(struct spect_board *b)
{
    /* Only this thread clears FRESH, so it cannot vanish between the
       load and the exchange; without it the middle is older than ours. */
    if (atomic_load_explicit(&b->middle, memory_order_relaxed) & SPECT_FRESH) {
        uint32_t old = atomic_exchange_explicit(&b->middle, b->front,
                                                memory_order_acq_rel);
        b->front = old & 3u;
    }
    return &b->buf[b->front];
}

/* ---- the spectator content ---------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint16_t clamp16(uint64_t v)
{
    return v > 0xFFFF ? 0xFFFF : (uint16_t)v;
}

static uint32_t per_second(uint64_t delta, int64_t ns)
{
    uint64_t r = ns > 0 ? delta * 1000000000ull / (uint64_t)ns : 0;
    return r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

static void compose(struct spectate *sp, uint32_t in_s, uint32_t out_s,
                    struct gm_msg *m)
{
    struct game *g = sp->g;
    const struct spect_snap *lobby = spect_board_latest(&g->board[SPECT_LOBBY]);
    const struct spect_snap *pvp = spect_board_latest(&g->board[SPECT_PVP]);
    const struct spect_snap *dg = spect_board_latest(&g->board[SPECT_DUNGEON]);
    __typeof__(m->u.spectator_state) *s = &m->u.spectator_state;
    memset(m, 0, sizeof *m);
    m->type = GM_SPECTATOR_STATE;
    s->seq = ++sp->seq;
    s->lobby = clamp16(lobby->online);
    s->pvp = clamp16(pvp->online);
    s->dungeon = clamp16(dg->online);
    s->spectators = clamp16(sp->n);
    s->msgs_in = in_s;
    s->msgs_out = out_s;
    /* The publishers keep within the wire's bounds (spectate.h). */
    s->arenas = clamp16(pvp->live);
    s->na = (uint8_t)pvp->n;
    memcpy(s->arena, pvp->arena, s->na * sizeof *s->arena);
    s->runs = clamp16(dg->live);
    s->nr = (uint8_t)dg->n;
    memcpy(s->run, dg->run, s->nr * sizeof *s->run);
    s->nmh = (uint8_t)dg->nmh;
    memcpy(s->monster_hp, dg->monster_hp, s->nmh * sizeof *s->monster_hp);
}

static void spect_tick(struct rp_group *grp, int64_t elapsed_ns, void *user)
{
    struct spectate *sp = user;
    (void)grp, (void)elapsed_ns;
    int64_t now = now_ns();
    if (now - sp->last_ns < (int64_t)SPECT_PERIOD_MS * 1000000)
        return;
    struct rp_server_stats st;
    rp_server_get_stats(sp->g->srv, &st);
    uint32_t in_s = per_second(st.packets_in - sp->last_in, now - sp->last_ns);
    uint32_t out_s =
        per_second(st.packets_out - sp->last_out, now - sp->last_ns);
    sp->last_ns = now;
    sp->last_in = st.packets_in;
    sp->last_out = st.packets_out;
    if (!sp->n)
        return;
    struct gm_msg m;
    compose(sp, in_s, out_s, &m);
    if (game_broadcast(sp->g, sp->ids, sp->n, &m) >= 0)
        atomic_fetch_add_explicit(&sp->g->n.spectator_states, 1,
                                  memory_order_relaxed);
}

static void spect_enter(struct rp_group *grp, rp_sid sid, void *data,
                        void *ticket, void *user)
{
    struct spectate *sp = user;
    struct player *p = data;
    (void)grp, (void)ticket;
    /* Only the lobby sends sessions here, each with a place reserved. */
    if (!p->spectator || sp->n == sp->g->cfg.max_spectators) {
        rp_server_disconnect(sp->g->srv, sid);
        return;
    }
    p->slot = sp->n;
    sp->ids[sp->n++] = sid;
}

static void spect_leave(struct rp_group *grp, rp_sid sid, void *data,
                        enum rp_leave_reason reason, void *user)
{
    struct spectate *sp = user;
    struct player *p = data;
    (void)grp, (void)reason;
    if (p->slot >= sp->n || sp->ids[p->slot] != sid)
        return; /* refused in spect_enter */
    rp_sid last = sp->ids[--sp->n];
    if (p->slot < sp->n) {
        sp->ids[p->slot] = last;
        player_of(sp->g, last)->slot = p->slot; /* here too */
    }
}

/* A spectator only watches: every valid client message is WRONG_CONTENT
   (game_decode with nothing accepted), a malformed one ends the session. */
static void spect_message(struct rp_group *grp, rp_sid sid, void *data,
                          const struct rp_message *msg, void *user)
{
    struct spectate *sp = user;
    struct gm_msg m;
    (void)grp, (void)data;
    game_decode(sp->g, sid, msg, 0, true, &m);
}

int spect_create(struct game *g)
{
    struct spectate *sp = calloc(1, sizeof *sp);
    if (!sp)
        return -ENOMEM;
    sp->g = g;
    g->spect = sp;
    sp->ids = calloc(g->cfg.max_spectators ? g->cfg.max_spectators : 1,
                     sizeof *sp->ids);
    if (!sp->ids)
        return -ENOMEM;
    sp->last_ns = now_ns();
    struct rp_group_config cfg = {.name = "spect",
                                  .tick_ms = SPECT_TICK_MS,
                                  .cb = {.on_enter = spect_enter,
                                         .on_message = spect_message,
                                         .on_tick = spect_tick,
                                         .on_leave = spect_leave},
                                  .user = sp};
    return rp_group_create(g->srv, &cfg, &g->spect_g);
}

void spect_destroy(struct game *g)
{
    struct spectate *sp = g->spect;
    if (!sp)
        return;
    free(sp->ids);
    free(sp);
    g->spect = NULL;
}
