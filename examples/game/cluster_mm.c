/*
 * Cross-shard matchmaking in the cluster group (docs/cluster.md,
 * "Cross-shard matchmaking"): the glue between the lobby, NATS and the
 * protocol in matchmaking.c. No NATS here either: cluster.c gives a
 * publish function and posts what its subscriptions deliver
 * (CLUSTER_MM_IN, the bytes as they came).
 *
 * - The lobby posts a queued player with its record (CLUSTER_MM_QUEUE)
 *   and its leaving (CLUSTER_MM_CANCEL); the protocol's outcomes go back
 *   to the lobby as posts: LOBBY_MM_LOCAL (two players meet here),
 *   LOBBY_MM_HOST (ours fights here; a seat waits for the other),
 *   LOBBY_MM_MOVE (ours goes: SHARD_MOVE).
 * - Seats: a random single-use token, CLUSTER_SEAT_MS to arrive. The
 *   arriving client's SEAT (CLUSTER_SEAT_CLAIM) gets the record moved with
 *   the match (LOBBY_SEAT). A player who never arrives: the host's pvp room
 *   ends after PVP_WAIT_TICKS with the host's player as winner (forfeit),
 *   and the seat expires here.
 * - Players are the lobby's session ids; their records are copied here
 *   at queue time (the lobby keeps the player busy meanwhile, so the copy
 *   stays true) and dropped when the ticket ends.
 * Thread: the cluster group's only.
 */
#include "game.h"
#include "matchmaking.h"

#include <errno.h>
#include <ringport/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MM_ADVERT_MS 200
#define MM_AD_TTL_MS 1500 /* a killed shard's tickets: gone within it */
#define MM_OFFER_MS 500
#define MM_PROMISE_MS 1000

struct queued {
    uint64_t sid; /* 0: unused */
    struct mm_record rec;
};

struct cluster_mm {
    struct game *g;
    struct mm mm;
    struct mm_seats seats;
    struct queued q[MM_MAX_LOCAL];
    uint32_t next_match;
    void (*publish)(void *ctx, const char *subject, const uint8_t *b, int n);
    void *ctx;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static struct queued *queued_of(struct cluster_mm *c, uint64_t sid)
{
    for (size_t i = 0; i < MM_MAX_LOCAL; i++)
        if (c->q[i].sid == sid)
            return &c->q[i];
    return NULL;
}

static void queued_drop(struct cluster_mm *c, uint64_t sid)
{
    struct queued *q = queued_of(c, sid);
    if (q)
        q->sid = 0;
}

/* ---- the protocol's callbacks ---- */

static void op_send(void *ctx, const struct mm_msg *m)
{
    struct cluster_mm *c = ctx;
    uint8_t b[MM_WIRE_MAX];
    char subj[32];
    int n = mm_msg_encode(m, b, sizeof b);
    if (n < 0)
        return;
    if (m->to == MM_ALL)
        snprintf(subj, sizeof subj, "rp.mm.ads");
    else
        snprintf(subj, sizeof subj, "rp.mm.%u", m->to);
    c->publish(c->ctx, subj, b, n);
}

static void op_local_match(void *ctx, uint64_t a, uint64_t b)
{
    struct cluster_mm *c = ctx;
    struct cluster_mm_msg m = {.sid = a, .sid2 = b};
    queued_drop(c, a);
    queued_drop(c, b);
    count(&c->g->ncl.mm_local);
    (void)game_post_mm(c->g, c->g->lobby_g, LOBBY_MM_LOCAL, &m);
}

static uint64_t op_host(void *ctx, uint64_t player, const struct mm_record *rec,
                        uint32_t from)
{
    struct cluster_mm *c = ctx;
    uint64_t token = 0;
    while (token == 0)
        if (getrandom(&token, sizeof token, 0) != sizeof token)
            return 0;
    /* Match ids with the high bit: the lobby's own count never gets
       there, so a hosted match never meets a local one. */
    uint32_t match = 0x80000000u | (++c->next_match & 0x7fffffffu);
    struct mm_record r = *rec;
    /* The seat's host_player: the match id, and above it the player's
       old shard (whose name key the SEAT takes over). */
    if (mm_seat_reserve(&c->seats, token, now_ms() + CLUSTER_SEAT_MS,
                        (uint64_t)from << 32 | match, &r) < 0)
        return 0;
    queued_drop(c, player);
    struct cluster_mm_msg m = {.sid = player, .match_id = match};
    count(&c->g->ncl.mm_hosted);
    count(&c->g->ncl.mm_cross);
    (void)game_post_mm(c->g, c->g->lobby_g, LOBBY_MM_HOST, &m);
    return token;
}

static void op_unhost(void *ctx, uint64_t player, uint64_t token)
{
    struct cluster_mm *c = ctx;
    /* The other shard took its player back (a late COMMIT). Ours is in
       its pvp room already, which ends by forfeit in its favour; it does
       not queue again. */
    (void)mm_seat_drop(&c->seats, token);
    (void)mm_cancel(&c->mm, player);
}

static void op_move(void *ctx, uint64_t player, const char *host, uint16_t port,
                    uint64_t token)
{
    struct cluster_mm *c = ctx;
    struct cluster_mm_msg m = {.sid = player, .port = port, .token = token};
    snprintf(m.host, sizeof m.host, "%s", host);
    struct queued *q = queued_of(c, player);
    if (q)
        cluster_name_moved(c->ctx, q->rec.name);
    queued_drop(c, player);
    count(&c->g->ncl.mm_moved);
    count(&c->g->ncl.mm_cross);
    (void)game_post_mm(c->g, c->g->lobby_g, LOBBY_MM_MOVE, &m);
}

static bool op_record(void *ctx, uint64_t player, struct mm_record *out)
{
    struct queued *q = queued_of(ctx, player);
    if (!q)
        return false;
    *out = q->rec;
    return true;
}

static const struct mm_ops cluster_mm_ops = {
    .send = op_send,
    .local_match = op_local_match,
    .host = op_host,
    .unhost = op_unhost,
    .move = op_move,
    .record = op_record,
};

/* ---- the group's side ---- */

struct cluster_mm *cluster_mm_create(
    struct game *g, const struct cluster_config *cfg, uint64_t epoch,
    void (*publish)(void *ctx, const char *subject, const uint8_t *b, int n),
    void *ctx)
{
    struct cluster_mm *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->g = g;
    c->publish = publish;
    c->ctx = ctx;
    struct mm_config mc = {
        .mode = cfg->pvp_queue == CLUSTER_PVP_GLOBAL  ? MM_GLOBAL
                : cfg->pvp_queue == CLUSTER_PVP_SPILL ? MM_SPILL
                                                      : MM_LOCAL,
        .shard = cfg->shard,
        .epoch = epoch,
        .spill_ms = cfg->pvp_spill_ms,
        .advert_ms = MM_ADVERT_MS,
        .ad_ttl_ms = MM_AD_TTL_MS,
        .offer_ms = MM_OFFER_MS,
        .promise_ms = MM_PROMISE_MS,
    };
    /* advertise is HOST:PORT (main.c fills it in when not given). */
    const char *colon = strrchr(cfg->advertise, ':');
    size_t hl = colon ? (size_t)(colon - cfg->advertise) : 0;
    if (hl >= sizeof mc.host)
        hl = 0;
    memcpy(mc.host, cfg->advertise, hl);
    mc.port = colon ? (uint16_t)atoi(colon + 1) : 0;
    mm_init(&c->mm, &mc, &cluster_mm_ops, c);
    return c;
}

void cluster_mm_destroy(struct cluster_mm *c)
{
    free(c);
}

static void claim_seat(struct cluster_mm *c, const struct cluster_mm_msg *in)
{
    struct mm_seat s;
    struct cluster_mm_msg m = {.sid = in->sid};
    int r = mm_seat_claim(&c->seats, in->token, now_ms(), &s);
    if (r == 0) {
        count(&c->g->ncl.seats_claimed);
        /* Before LOGIN_OK: the name is this shard's across the cluster. */
        cluster_name_take_over(c->ctx, in->sid, s.rec.name,
                               (uint32_t)(s.host_player >> 32));
        m.match_id = (uint32_t)s.host_player;
        m.name_len = s.rec.name_len;
        memcpy(m.name, s.rec.name, sizeof m.name);
        m.gold = s.rec.gold;
        m.wins = s.rec.wins;
    } else {
        count(&c->g->ncl.seats_refused);
        m.code = GM_ERR_SEAT_REFUSED;
    }
    (void)game_post_mm(c->g, c->g->lobby_g, LOBBY_SEAT, &m);
}

void cluster_mm_post(struct cluster_mm *c, uint32_t tag,
                     const struct rp_message *msg)
{
    struct cluster_mm_msg m;
    if (tag == CLUSTER_MM_IN) {
        struct mm_msg mm;
        atomic_fetch_sub(&c->g->ncl.mm_in_queued, 1);
        if (mm_msg_decode(msg->payload, msg->len, &mm) == 0)
            mm_receive(&c->mm, &mm, now_ms());
        mm_tick(&c->mm, now_ms()); /* offers at once, not a tick later */
        return;
    }
    if (!game_mm_msg(msg, &m))
        return;
    if (tag == CLUSTER_MM_QUEUE) {
        struct queued *q = queued_of(c, 0);
        if (!q || queued_of(c, m.sid)) {
            /* Full: the lobby hears nothing and the player waits; it can
               leave the queue by leaving the lobby. Never expected with
               MM_MAX_LOCAL over the bots' queue. */
            RP_WARN("cluster", "matchmaking queue full");
            return;
        }
        q->sid = m.sid;
        memset(&q->rec, 0, sizeof q->rec);
        q->rec.name_len = m.name_len;
        memcpy(q->rec.name, m.name, sizeof q->rec.name);
        q->rec.gold = m.gold;
        q->rec.wins = m.wins;
        if (mm_enqueue(&c->mm, m.sid, now_ms()) < 0) {
            q->sid = 0;
            RP_WARN("cluster", "matchmaking queue full");
        }
        mm_tick(&c->mm, now_ms());
    } else if (tag == CLUSTER_MM_CANCEL) {
        (void)mm_cancel(&c->mm, m.sid);
        queued_drop(c, m.sid);
    } else if (tag == CLUSTER_SEAT_CLAIM) {
        claim_seat(c, &m);
    }
}

static void seat_expired(void *ctx, const struct mm_seat *s)
{
    struct cluster_mm *c = ctx;
    (void)s; /* the pvp room ends by forfeit on its own */
    count(&c->g->ncl.seats_expired);
}

void cluster_mm_tick(struct cluster_mm *c)
{
    uint64_t now = now_ms();
    mm_tick(&c->mm, now);
    (void)mm_seats_expire(&c->seats, now, seat_expired, c);
}
