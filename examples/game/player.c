/*
 * Player records and the send and validation helpers every content uses
 * (game.h says who owns what).
 */
#include "game.h"

#include <errno.h>
#include <stdio.h>
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
    g->max_sessions = max_sessions;
    for (int i = 0; i < SPECT_CONTENTS; i++)
        spect_board_init(&g->board[i]);
    return names_init(&g->names, max_sessions);
}

void game_destroy(struct game *g)
{
    lobby_destroy(g);
    pvp_destroy(g);
    dungeon_destroy(g);
    spect_destroy(g);
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
    /* The release is posted before the local name goes: a new login of
       the name on this shard (which needs the local name) then posts its
       claim after this release, and the cluster group handles them in
       that order. A claim still on its way is the lobby's to undo. */
    if (p->global_name)
        (void)game_post_name(g, g->cluster_g, CLUSTER_RELEASE, p->sid, 0,
                             p->name);
    if (p->id || p->claiming)
        names_remove(&g->names, p->name);
    if (p->spectator)
        count(&g->n.spectators, -1);
    count(&g->n.players_live, -1);
    free(p);
}

struct player *player_of(struct game *g, rp_sid sid)
{
    return rp_session_get_data(g->srv, sid);
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
    uint8_t buf[GM_PAYLOAD_MAX];
    int n = gm_encode(m, buf, sizeof buf);
    if (n < 0)
        return -ENOMEM;
    /* A copy of the encoded bytes: into the session's outgoing batch when
       this is its own I/O thread's callback, else a packet of its own.
       -ENOBUFS / -ENOTCONN: the session is being cut or is gone; its
       on_leave follows, which is where the content cleans up. */
    return rp_server_send_frame(g->srv, sid, m->type, buf, (size_t)n);
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

_Static_assert(sizeof((struct cluster_name_msg *)0)->name == GM_NAME_MAX + 1,
               "a name message holds any valid name");

int game_post_name(struct game *g, struct rp_group *to, uint32_t tag,
                   uint64_t sid, uint16_t code, const char *name)
{
    struct cluster_name_msg m = {.sid = sid, .code = code};
    snprintf(m.name, sizeof m.name, "%s", name);
    struct rp_packet *pkt;
    int r = rp_packet_create(sizeof m, 0, &pkt);
    if (r == 0) {
        r = rp_packet_put_bytes(pkt, &m, sizeof m);
        if (r == 0)
            r = rp_group_post(to, tag, pkt);
        rp_packet_unref(pkt);
    }
    if (r < 0)
        count(&g->ncl.posts_dropped, 1);
    return r;
}

int game_post_mm(struct game *g, struct rp_group *to, uint32_t tag,
                 const struct cluster_mm_msg *m)
{
    struct rp_packet *pkt;
    int r = rp_packet_create(sizeof *m, 0, &pkt);
    if (r == 0) {
        r = rp_packet_put_bytes(pkt, m, sizeof *m);
        if (r == 0)
            r = rp_group_post(to, tag, pkt);
        rp_packet_unref(pkt);
    }
    if (r < 0)
        count(&g->ncl.posts_dropped, 1);
    return r;
}

bool game_mm_msg(const struct rp_message *msg, struct cluster_mm_msg *out)
{
    if (msg->len != sizeof *out)
        return false;
    memcpy(out, msg->payload, sizeof *out);
    out->host[sizeof out->host - 1] = '\0';
    out->name[sizeof out->name - 1] = '\0';
    return true;
}

bool game_name_msg(const struct rp_message *msg, struct cluster_name_msg *out)
{
    if (msg->len != sizeof *out)
        return false;
    memcpy(out, msg->payload, sizeof *out);
    out->name[sizeof out->name - 1] = '\0';
    return true;
}

bool game_decode(struct game *g, rp_sid sid, const struct rp_message *msg,
                 uint32_t accepts, bool logged_in, struct gm_msg *m)
{
    uint16_t type = msg->type;
    int r = gm_is_client_type(type) ? gm_decode(type, msg->payload, msg->len, m)
                                    : -ENOMSG;
    if (r == -ENOMSG || r == -EBADMSG) {
        game_send_error(g, sid,
                        r == -ENOMSG ? GM_ERR_UNKNOWN_TYPE : GM_ERR_MALFORMED,
                        type);
        count(&g->n.kicks, 1);
        /* The error goes out first: disconnect sends what is queued. */
        rp_server_disconnect(g->srv, sid);
        return false;
    }
    uint16_t code = 0;
    if (!logged_in && type != GM_LOGIN && type != GM_SPECTATE &&
        type != GM_SEAT)
        code = GM_ERR_NOT_LOGGED_IN;
    else if (!(accepts & GAME_TYPE_BIT(type)))
        code = GM_ERR_WRONG_CONTENT;
    else if (r == -ERANGE)
        code = GM_ERR_BAD_FIELD;
    if (code) {
        game_send_error(g, sid, code, type);
        return false;
    }
    return true;
}
