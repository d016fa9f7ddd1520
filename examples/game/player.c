/*
 * Player records, their hand-off between contents, and the send and
 * validation helpers every content uses (game.h says who owns what).
 */
#include "game.h"

#include <errno.h>
#include <ringport/log.h>
#include <stdlib.h>
#include <string.h>

static void count(_Atomic uint64_t *c, int64_t d)
{
    atomic_fetch_add_explicit(c, (uint64_t)d, memory_order_relaxed);
}

int game_init(struct game *g, struct rp_server *srv, uint32_t max_sessions,
              const struct game_config *cfg)
{
    memset(g, 0, sizeof *g);
    g->srv = srv;
    g->cfg = *cfg;
    g->nslots = max_sessions;
    g->handoff = calloc(max_sessions, sizeof *g->handoff);
    if (!g->handoff)
        return -ENOMEM;
    for (uint32_t i = 0; i < max_sessions; i++)
        atomic_init(&g->handoff[i], NULL);
    int r = names_init(&g->names, max_sessions);
    if (r < 0) {
        free(g->handoff);
        g->handoff = NULL;
        return r;
    }
    return 0;
}

void game_destroy(struct game *g)
{
    lobby_destroy(g);
    pvp_destroy(g);
    dungeon_destroy(g);
    for (uint32_t i = 0; g->handoff && i < g->nslots; i++) {
        struct player *p = atomic_load(&g->handoff[i]);
        if (p)
            player_free(g, p);
    }
    free(g->handoff);
    g->handoff = NULL;
    /* The names stay for the caller's final count: names_fini(). */
}

struct player *player_new(struct game *g, rp_sid sid)
{
    struct player *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->sid = sid;
    count(&g->n.players_live, 1);
    return p;
}

void player_free(struct game *g, struct player *p)
{
    if (p->id)
        names_remove(&g->names, p->name);
    count(&g->n.players_live, -1);
    free(p);
}

void handoff_put(struct game *g, struct player *p)
{
    /* The slot is empty: a session is held by one content at a time, and
       the next one empties the slot before the session can move again. */
    struct player *old = atomic_exchange_explicit(
        &g->handoff[rp_sid_slot(p->sid)], p, memory_order_acq_rel);
    if (old) {
        RP_WARN("game", "session %llu: stale hand-off record freed",
                (unsigned long long)old->sid);
        player_free(g, old);
    }
}

struct player *handoff_take(struct game *g, rp_sid sid)
{
    uint32_t slot = rp_sid_slot(sid);
    if (slot >= g->nslots)
        return NULL;
    struct player *p =
        atomic_exchange_explicit(&g->handoff[slot], NULL, memory_order_acq_rel);
    if (p && p->sid != sid) {
        /* Cannot happen (slots are not reused while a group holds one);
           never hand a record to the wrong session. */
        RP_WARN("game", "session %llu: hand-off record of %llu freed",
                (unsigned long long)sid, (unsigned long long)p->sid);
        player_free(g, p);
        return NULL;
    }
    return p;
}

static struct rp_packet *encode(const struct gm_msg *m)
{
    uint8_t buf[GM_PAYLOAD_MAX];
    struct rp_packet *pkt;
    int n = gm_encode(m, buf, sizeof buf);
    if (n < 0 || rp_packet_create((size_t)n, m->type, &pkt) < 0)
        return NULL;
    if (rp_packet_put_bytes(pkt, buf, (size_t)n) < 0) {
        rp_packet_unref(pkt);
        return NULL;
    }
    return pkt;
}

int game_send(struct game *g, rp_sid sid, const struct gm_msg *m)
{
    struct rp_packet *pkt = encode(m);
    if (!pkt)
        return -ENOMEM;
    /* -ENOBUFS / -ENOTCONN: the session is being cut or is gone; its
       on_leave follows, which is where the content cleans up. */
    int r = rp_server_send(g->srv, sid, pkt);
    rp_packet_unref(pkt);
    return r;
}

int game_broadcast(struct game *g, const rp_sid *ids, size_t n,
                   const struct gm_msg *m)
{
    struct rp_packet *pkt = encode(m);
    if (!pkt)
        return -ENOMEM;
    int r = rp_server_broadcast(g->srv, ids, n, pkt);
    rp_packet_unref(pkt);
    return r;
}

void game_send_error(struct game *g, rp_sid sid, uint16_t code, uint16_t about)
{
    struct gm_msg m = {.type = GM_ERROR};
    m.u.error.code = code;
    m.u.error.about = about;
    count(&g->n.errors_sent, 1);
    (void)game_send(g, sid, &m);
}

bool game_decode(struct game *g, rp_sid sid, const struct rp_message *msg,
                 struct gm_msg *m)
{
    uint16_t type = msg->type;
    int r = gm_is_client_type(type) ? gm_decode(type, msg->payload, msg->len, m)
                                    : -ENOMSG;
    if (r == 0)
        return true;
    if (r == -ERANGE) {
        game_send_error(g, sid, GM_ERR_BAD_FIELD, type);
        return false;
    }
    game_send_error(
        g, sid, r == -ENOMSG ? GM_ERR_UNKNOWN_TYPE : GM_ERR_MALFORMED, type);
    count(&g->n.kicks, 1);
    /* The error goes out first: disconnect sends what is queued. */
    rp_server_disconnect(g->srv, sid);
    return false;
}
