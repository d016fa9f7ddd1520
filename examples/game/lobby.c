/*
 * The lobby content: login with a unique nickname, chat, the PVP match
 * queue and the dungeon queue. Every session starts here (main.c moves it
 * in from on_join) and comes back here after a match or a run.
 *
 * Chat goes to the sender's channel: logged-in players fill channels of
 * chat_channel_size in order, so one line costs at most that many sends
 * (one shared packet) however many players wait in the lobby; with the
 * size at or above max_sessions the whole lobby is one channel.
 *
 * The PVP queue pairs the first two players who ask. The dungeon queue
 * keeps one line per party size: a party forms when 'size' players asked
 * for that size, or, on the tick, when the oldest has waited
 * LOBBY_PARTY_WAIT_MS, with whoever is there (so a party never waits on
 * players who do not come). A session whose first message is SPECTATE
 * goes to the spectator content instead (spectate.c), if a place is free.
 * Every SPECT_PERIOD_MS the tick publishes how many players are logged in
 * here (spectate.h). Everything here runs on the lobby's thread.
 *
 * With --cluster a name must also be free across the shards: the lobby
 * takes it locally, posts a claim to the cluster group and keeps the
 * player pending (not logged in) until the answer comes back as a post
 * (lobby_post): LOGIN_OK, or NAME_TAKEN / TRY_LATER and the local name
 * given back. The lobby never waits on the network. A player that ends
 * while pending leaves no trace here; if its claim then succeeds, the
 * lobby releases the name at once.
 */
#include "cluster_wire.h"
#include "game.h"

#include <errno.h>
#include <ringport/log.h>
#include <stdlib.h>
#include <string.h>

#define LOBBY_TICK_MS 100
#define LOBBY_PARTY_WAIT_MS 1000
#define LOBBY_ACCEPTS                                                          \
    (GAME_TYPE_BIT(GM_LOGIN) | GAME_TYPE_BIT(GM_CHAT) |                        \
     GAME_TYPE_BIT(GM_PVP_QUEUE) | GAME_TYPE_BIT(GM_DUNGEON_ENTER) |           \
     GAME_TYPE_BIT(GM_SPECTATE) | GAME_TYPE_BIT(GM_SEAT))

struct channel {
    rp_sid *members; /* [chat_channel_size], first 'n' used */
    uint32_t n;
};

struct party_line {
    struct player *waiting[GM_PARTY_MAX];
    uint32_t n;
    uint32_t oldest_ticks; /* lobby ticks since the first one queued */
};

struct lobby {
    struct game *g;
    struct channel *chans;
    uint32_t nchans;
    struct player *pvp_waiting;
    struct party_line lines[GM_PARTY_MAX + 1]; /* index = party size */
    uint32_t next_player_id, next_match_id;
    uint32_t online; /* logged-in players here (for spectators) */
    /* --cluster: players whose name claim is on its way (at most one
       each; a claim is answered within the cluster's request timeout). */
    struct player **pending;
    uint32_t n_pending, cap_pending;
    /* Cross-shard matchmaking: players queued in the cluster group, and
       players whose SEAT is being checked there (the lobby looks a post's
       session id up here only: a session elsewhere is not its to touch). */
    struct plist {
        struct player **a;
        uint32_t n, cap;
    } mmq, seating;
};

static bool plist_add(struct plist *l, struct player *p)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 64;
        struct player **a = realloc(l->a, cap * sizeof *a);
        if (!a)
            return false;
        l->a = a;
        l->cap = cap;
    }
    l->a[l->n++] = p;
    return true;
}

static struct player *plist_take(struct plist *l, uint64_t sid)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->a[i]->sid == sid) {
            struct player *p = l->a[i];
            l->a[i] = l->a[--l->n];
            return p;
        }
    return NULL;
}

static void chan_join(struct lobby *lb, struct player *p)
{
    uint32_t size = lb->g->cfg.chat_channel_size;
    for (uint32_t c = 0; c < lb->nchans; c++) {
        struct channel *ch = &lb->chans[c];
        if (ch->n == size)
            continue;
        if (!ch->members) {
            ch->members = malloc(size * sizeof *ch->members);
            if (!ch->members)
                return; /* no chat for this one; everything else works */
        }
        p->chan = c + 1;
        p->chan_pos = ch->n;
        ch->members[ch->n++] = p->sid;
        return;
    }
}

static void chan_leave(struct lobby *lb, struct player *p)
{
    if (!p->chan)
        return;
    struct channel *ch = &lb->chans[p->chan - 1];
    rp_sid last = ch->members[--ch->n];
    if (p->chan_pos < ch->n) {
        ch->members[p->chan_pos] = last;
        player_of(lb->g, last)->chan_pos = p->chan_pos; /* in the lobby too */
    }
    p->chan = 0;
}

static void line_remove(struct party_line *l, struct player *p)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->waiting[i] == p) {
            memmove(&l->waiting[i], &l->waiting[i + 1],
                    (l->n - i - 1) * sizeof *l->waiting);
            l->n--;
            if (i == 0)
                l->oldest_ticks = 0;
            return;
        }
}

static bool pending_add(struct lobby *lb, struct player *p)
{
    if (lb->n_pending == lb->cap_pending) {
        uint32_t cap = lb->cap_pending ? lb->cap_pending * 2 : 64;
        struct player **a = realloc(lb->pending, cap * sizeof *a);
        if (!a)
            return false;
        lb->pending = a;
        lb->cap_pending = cap;
    }
    lb->pending[lb->n_pending++] = p;
    return true;
}

/* Takes the pending player of 'sid' off the list; NULL if none. */
static struct player *pending_take(struct lobby *lb, uint64_t sid)
{
    for (uint32_t i = 0; i < lb->n_pending; i++)
        if (lb->pending[i]->sid == sid) {
            struct player *p = lb->pending[i];
            lb->pending[i] = lb->pending[--lb->n_pending];
            return p;
        }
    return NULL;
}

/* Takes 'p' out of every queue and channel: it is leaving the lobby. */
static void lobby_forget(struct lobby *lb, struct player *p)
{
    if (p->claiming)
        (void)pending_take(lb, p->sid); /* p->claiming stays: player_free */
    if (p->mm_queued) {
        struct cluster_mm_msg m = {.sid = p->sid};
        (void)plist_take(&lb->mmq, p->sid);
        p->mm_queued = false;
        (void)game_post_mm(lb->g, lb->g->cluster_g, CLUSTER_MM_CANCEL, &m);
    }
    if (p->seating) {
        (void)plist_take(&lb->seating, p->sid);
        p->seating = false;
    }
    chan_leave(lb, p);
    if (lb->pvp_waiting == p)
        lb->pvp_waiting = NULL;
    for (int s = 1; s <= GM_PARTY_MAX; s++)
        line_remove(&lb->lines[s], p);
}

/* Hands 'p' to another content with its seat there as the move's ticket.
   On failure the session is closing (its on_leave follows) or out of
   memory: it stays here, busy, until it ends. */
static void send_away(struct lobby *lb, struct player *p, struct rp_group *to,
                      uint32_t match_id, uint32_t side, uint32_t party_n)
{
    lobby_forget(lb, p);
    p->busy = true;
    struct seat *t = malloc(sizeof *t);
    int r = -ENOMEM;
    if (t) {
        *t = (struct seat){.match_id = match_id,
                           .side = (uint8_t)side,
                           .party_n = (uint8_t)party_n};
        r = rp_group_move(lb->g->srv, p->sid, to, t);
    }
    if (r < 0)
        free(t); /* a refused move leaves the ticket with us */
    if (r < 0 && r != -ENOTCONN && r != -ESHUTDOWN)
        RP_WARN("lobby", "session %llu: move: %d", (unsigned long long)p->sid,
                r);
}

static void form_party(struct lobby *lb, struct party_line *l)
{
    uint32_t id = ++lb->next_match_id;
    uint32_t n = l->n;
    struct player *members[GM_PARTY_MAX];
    memcpy(members, l->waiting, n * sizeof *members);
    l->n = 0;
    l->oldest_ticks = 0;
    for (uint32_t i = 0; i < n; i++)
        send_away(lb, members[i], lb->g->dungeon_g, id, i, n);
    atomic_fetch_add_explicit(&lb->g->n.dungeons, 1, memory_order_relaxed);
}

static void login_ok(struct lobby *lb, struct player *p);
static void chat_to_cluster(struct lobby *lb, struct player *p,
                            struct gm_str text);

static void on_login(struct lobby *lb, struct player *p, struct gm_str name)
{
    struct game *g = lb->g;
    if (p->id) {
        game_send_error(g, p->sid, GM_ERR_ALREADY_LOGGED_IN, GM_LOGIN);
        return;
    }
    if (!gm_name_valid(name.p, name.len)) {
        game_send_error(g, p->sid, GM_ERR_BAD_NAME, GM_LOGIN);
        return;
    }
    if (p->claiming || p->seating) { /* an answer is still to come */
        game_send_error(g, p->sid, GM_ERR_TRY_LATER, GM_LOGIN);
        return;
    }
    memcpy(p->name, name.p, name.len);
    p->name[name.len] = '\0';
    int r = names_add(&g->names, p->name);
    if (r < 0) {
        p->name[0] = '\0';
        game_send_error(g, p->sid,
                        r == -EEXIST ? GM_ERR_NAME_TAKEN : GM_ERR_BAD_NAME,
                        GM_LOGIN);
        return;
    }
    if (g->cluster_g) {
        /* Asked, not awaited: lobby_post gets the answer. */
        if (!pending_add(lb, p) ||
            game_post_name(g, g->cluster_g, CLUSTER_CLAIM, p->sid, 0, p->name) <
                0) {
            if (lb->n_pending && lb->pending[lb->n_pending - 1] == p)
                lb->n_pending--;
            names_remove(&g->names, p->name);
            p->name[0] = '\0';
            game_send_error(g, p->sid, GM_ERR_TRY_LATER, GM_LOGIN);
            return;
        }
        p->claiming = true;
        return;
    }
    login_ok(lb, p);
}

/* The name is the player's (locally, and across the cluster if any). */
static void login_ok(struct lobby *lb, struct player *p)
{
    struct game *g = lb->g;
    p->id = ++lb->next_player_id;
    lb->online++;
    chan_join(lb, p);
    atomic_fetch_add_explicit(&g->n.logins, 1, memory_order_relaxed);
    struct gm_msg m = {.type = GM_LOGIN_OK};
    m.u.login_ok.player_id = p->id;
    m.u.login_ok.gold = p->gold;
    game_send(g, p->sid, &m);
}

static void on_chat(struct lobby *lb, struct player *p, struct gm_str text)
{
    if (!gm_text_valid(text.p, text.len)) {
        game_send_error(lb->g, p->sid, GM_ERR_BAD_TEXT, GM_CHAT);
        return;
    }
    if (!p->chan)
        return;
    struct channel *ch = &lb->chans[p->chan - 1];
    struct gm_msg m = {.type = GM_CHAT_MSG};
    m.u.chat_msg.channel = p->chan - 1;
    m.u.chat_msg.from = gm_str_of(p->name, strlen(p->name));
    m.u.chat_msg.text = text;
    game_broadcast(lb->g, ch->members, ch->n, &m);
    atomic_fetch_add_explicit(&lb->g->n.chats, 1, memory_order_relaxed);
    if (lb->g->cluster_g)
        chat_to_cluster(lb, p, text);
}

/* The other shards get the line through the cluster group (local members
   already have it). A refused post is counted, the line stays local. */
static void chat_to_cluster(struct lobby *lb, struct player *p,
                            struct gm_str text)
{
    struct cw_chat c = {.channel = p->chan - 1,
                        .from_len = (uint8_t)strlen(p->name),
                        .text_len = text.len};
    memcpy(c.from, p->name, c.from_len + 1u);
    memcpy(c.text, text.p, text.len);
    if (!cluster_chat_take(&lb->g->ncl, &lb->g->ncl.chat_queued))
        return;
    struct rp_packet *pkt;
    int r = rp_packet_create(sizeof c, 0, &pkt);
    if (r == 0) {
        r = rp_packet_put_bytes(pkt, &c, sizeof c);
        if (r == 0)
            r = rp_group_post(lb->g->cluster_g, CLUSTER_CHAT_OUT, pkt);
        rp_packet_unref(pkt);
    }
    if (r < 0) {
        cluster_chat_give(&lb->g->ncl.chat_queued);
        atomic_fetch_add_explicit(&lb->g->ncl.posts_dropped, 1,
                                  memory_order_relaxed);
    }
}

/* A line from another shard's channel of the same number. */
static void chat_from_cluster(struct lobby *lb, const struct rp_message *msg)
{
    struct cw_chat c;
    if (msg->len != sizeof c)
        return;
    memcpy(&c, msg->payload, sizeof c);
    if (c.channel >= lb->nchans || lb->chans[c.channel].n == 0)
        return;
    struct channel *ch = &lb->chans[c.channel];
    struct gm_msg m = {.type = GM_CHAT_MSG};
    m.u.chat_msg.channel = c.channel;
    m.u.chat_msg.from = gm_str_of(c.from, c.from_len);
    m.u.chat_msg.text = gm_str_of(c.text, c.text_len);
    game_broadcast(lb->g, ch->members, ch->n, &m);
}

/* --pvp-queue spill or global: the cluster group queues the player
   (cluster_mm.c) and answers with LOBBY_MM_* posts. */
static void pvp_queue_cluster(struct lobby *lb, struct player *p, bool answer)
{
    struct cluster_mm_msg m = {.sid = p->sid, .gold = p->gold, .wins = p->wins};
    m.name_len = (uint8_t)strlen(p->name);
    memcpy(m.name, p->name, m.name_len);
    if (!plist_add(&lb->mmq, p) ||
        game_post_mm(lb->g, lb->g->cluster_g, CLUSTER_MM_QUEUE, &m) < 0) {
        (void)plist_take(&lb->mmq, p->sid);
        p->busy = false; /* free to ask again */
        game_send_error(lb->g, p->sid, GM_ERR_TRY_LATER, GM_PVP_QUEUE);
        return;
    }
    if (answer) {
        struct gm_msg q = {.type = GM_PVP_QUEUED};
        game_send(lb->g, p->sid, &q);
    }
    p->busy = true;
    p->mm_queued = true;
}

static void on_pvp_queue(struct lobby *lb, struct player *p)
{
    if (lb->g->cluster_g && lb->g->cfg.pvp_queue != CLUSTER_PVP_LOCAL) {
        pvp_queue_cluster(lb, p, true);
        return;
    }
    struct gm_msg m = {.type = GM_PVP_QUEUED};
    game_send(lb->g, p->sid, &m);
    struct player *o = lb->pvp_waiting;
    if (!o) {
        lb->pvp_waiting = p;
        p->busy = true;
        return;
    }
    lb->pvp_waiting = NULL;
    uint32_t id = ++lb->next_match_id;
    send_away(lb, o, lb->g->pvp_g, id, 0, 2);
    send_away(lb, p, lb->g->pvp_g, id, 1, 2);
    atomic_fetch_add_explicit(&lb->g->n.matches, 1, memory_order_relaxed);
}

static void on_dungeon_enter(struct lobby *lb, struct player *p, uint8_t size)
{
    struct gm_msg m = {.type = GM_DUNGEON_QUEUED};
    m.u.party_size = size;
    game_send(lb->g, p->sid, &m);
    struct party_line *l = &lb->lines[size];
    p->busy = true;
    if (l->n == 0)
        l->oldest_ticks = 0;
    l->waiting[l->n++] = p;
    if (l->n == size)
        form_party(lb, l);
}

/* SEAT {token}: a player sent here by SHARD_MOVE. The cluster group
   checks the token (LOBBY_SEAT answers). */
static void on_seat(struct lobby *lb, struct player *p, uint64_t token)
{
    struct game *g = lb->g;
    struct cluster_mm_msg m = {.sid = p->sid, .token = token};
    if (p->id) {
        game_send_error(g, p->sid, GM_ERR_ALREADY_LOGGED_IN, GM_SEAT);
        return;
    }
    if (p->claiming || p->seating) {
        game_send_error(g, p->sid, GM_ERR_TRY_LATER, GM_SEAT);
        return;
    }
    if (!g->cluster_g || g->cfg.pvp_queue == CLUSTER_PVP_LOCAL) {
        game_send_error(g, p->sid, GM_ERR_SEAT_REFUSED, GM_SEAT);
        return;
    }
    if (!plist_add(&lb->seating, p) ||
        game_post_mm(g, g->cluster_g, CLUSTER_SEAT_CLAIM, &m) < 0) {
        (void)plist_take(&lb->seating, p->sid);
        game_send_error(g, p->sid, GM_ERR_TRY_LATER, GM_SEAT);
        return;
    }
    p->seating = true;
}

/* SPECTATE: never logged in, a place under max_spectators, then off to
   the spectator content. The place is the record's from here on
   (player_free gives it back), so a move that fails loses nothing. */
static void on_spectate(struct lobby *lb, struct player *p)
{
    struct game *g = lb->g;
    /* Claiming (--cluster): its LOGIN is on its way and would land on a
       spectator; it counts as logged in here. */
    if (p->id || p->claiming || p->seating) {
        game_send_error(g, p->sid, GM_ERR_ALREADY_LOGGED_IN, GM_SPECTATE);
        return;
    }
    if (atomic_fetch_add_explicit(&g->n.spectators, 1, memory_order_relaxed) >=
        g->cfg.max_spectators) {
        atomic_fetch_sub_explicit(&g->n.spectators, 1, memory_order_relaxed);
        game_send_error(g, p->sid, GM_ERR_SPECTATORS_FULL, GM_SPECTATE);
        return;
    }
    p->spectator = true;
    p->busy = true;
    int r = rp_group_move(g->srv, p->sid, g->spect_g, NULL);
    if (r < 0 && r != -ENOTCONN && r != -ESHUTDOWN)
        RP_WARN("lobby", "session %llu: move to spect: %d",
                (unsigned long long)p->sid, r);
}

static void lobby_message(struct rp_group *grp, rp_sid sid, void *data,
                          const struct rp_message *msg, void *user)
{
    struct lobby *lb = user;
    struct player *p = data;
    struct gm_msg m;
    (void)grp;
    if (p->spectator) {
        /* On its way to the spectator content (frames sent right after
           SPECTATE can be here already): answered as spect_message would,
           so it never logs in, queues or takes a second place. */
        game_decode(lb->g, sid, msg, 0, true, &m);
        return;
    }
    if (!game_decode(lb->g, sid, msg, LOBBY_ACCEPTS, p->id != 0, &m))
        return;
    if (m.type == GM_LOGIN) {
        on_login(lb, p, m.u.login);
        return;
    }
    if (m.type == GM_CHAT) {
        on_chat(lb, p, m.u.chat);
        return;
    }
    if (m.type == GM_SEAT) {
        on_seat(lb, p, m.u.seat);
        return;
    }
    if (m.type == GM_SPECTATE) {
        on_spectate(lb, p);
        return;
    }
    if (p->busy) {
        game_send_error(lb->g, sid, GM_ERR_ALREADY_QUEUED, m.type);
        return;
    }
    if (m.type == GM_PVP_QUEUE)
        on_pvp_queue(lb, p);
    else
        on_dungeon_enter(lb, p, m.u.party_size);
}

static void lobby_enter(struct rp_group *grp, rp_sid sid, void *data,
                        void *ticket, void *user)
{
    struct lobby *lb = user;
    struct player *p = data; /* made by main.c's on_join */
    (void)grp, (void)ticket;
    p->busy = false;
    p->where = NULL;
    if (p->id) { /* back from a match or a run */
        lb->online++;
        chan_join(lb, p);
        struct gm_msg m = {.type = GM_LOBBY_ENTER};
        m.u.lobby_enter.gold = p->gold;
        m.u.lobby_enter.wins = p->wins;
        game_send(lb->g, sid, &m);
    }
}

/* Moving on, or ended: either way it leaves the lobby's queues and
   channels; main.c's on_leave frees the record at the end. */
static void lobby_leave(struct rp_group *grp, rp_sid sid, void *data,
                        enum rp_leave_reason reason, void *user)
{
    struct lobby *lb = user;
    struct player *p = data;
    (void)grp, (void)sid, (void)reason;
    if (p->id)
        lb->online--;
    lobby_forget(lb, p);
}

/* Matchmaking's outcomes (cluster_mm.c). A session id is looked up only
   among the lobby's own lists: one that left meanwhile is not found. */
static void mm_from_cluster(struct lobby *lb, uint32_t tag,
                            const struct cluster_mm_msg *m)
{
    struct game *g = lb->g;
    if (tag == LOBBY_MM_LOCAL) {
        struct player *a = plist_take(&lb->mmq, m->sid);
        struct player *b = plist_take(&lb->mmq, m->sid2);
        if (a && b) {
            a->mm_queued = b->mm_queued = false;
            uint32_t id = ++lb->next_match_id;
            send_away(lb, a, g->pvp_g, id, 0, 2);
            send_away(lb, b, g->pvp_g, id, 1, 2);
            atomic_fetch_add_explicit(&g->n.matches, 1, memory_order_relaxed);
            return;
        }
        /* One left on the way: the other queues again (it was told
           PVP_QUEUED already). */
        struct player *o = a ? a : b;
        if (o) {
            o->mm_queued = false;
            pvp_queue_cluster(lb, o, false);
        }
        return;
    }
    if (tag == LOBBY_MM_HOST) {
        struct player *p = plist_take(&lb->mmq, m->sid);
        if (!p)
            return; /* it left: the arriving player wins by forfeit */
        p->mm_queued = false;
        send_away(lb, p, g->pvp_g, m->match_id, 0, 2);
        atomic_fetch_add_explicit(&g->n.matches, 1, memory_order_relaxed);
        return;
    }
    if (tag == LOBBY_MM_MOVE) {
        struct player *p = plist_take(&lb->mmq, m->sid);
        if (!p)
            return; /* it left: the host's player wins by forfeit */
        /* Its record now belongs to the host shard: it stays busy here
           (no queue, no dungeon) until the client goes. */
        p->mm_queued = false;
        struct gm_msg mv = {.type = GM_SHARD_MOVE};
        mv.u.shard_move.host = gm_str_of(m->host, strlen(m->host));
        mv.u.shard_move.port = m->port;
        mv.u.shard_move.token = m->token;
        game_send(g, p->sid, &mv);
        return;
    }
    if (tag == LOBBY_SEAT) {
        struct player *p = plist_take(&lb->seating, m->sid);
        char name[GM_NAME_MAX + 1];
        memcpy(name, m->name, sizeof name);
        name[sizeof name - 1] = '\0';
        if (!p || m->code) {
            /* Gone (the host's player wins by forfeit), or refused. The
               cluster group took the name over for it: give it back. */
            if (!m->code)
                (void)game_post_name(g, g->cluster_g, CLUSTER_RELEASE, m->sid,
                                     0, name);
            if (p) {
                p->seating = false;
                game_send_error(g, p->sid, m->code, GM_SEAT);
            }
            return;
        }
        p->seating = false;
        /* The record moved with the match, and the global name with it:
           the cluster group took the key over from the old shard before
           this answer (docs/cluster.md, "Global names"); the logout
           releases it here. */
        memcpy(p->name, name, sizeof p->name);
        if (names_add(&g->names, p->name) < 0) {
            p->name[0] = '\0';
            (void)game_post_name(g, g->cluster_g, CLUSTER_RELEASE, m->sid, 0,
                                 name);
            game_send_error(g, p->sid, GM_ERR_NAME_TAKEN, GM_SEAT);
            return;
        }
        p->global_name = true;
        p->gold = m->gold;
        p->wins = m->wins;
        login_ok(lb, p);
        send_away(lb, p, g->pvp_g, m->match_id, 1, 2);
    }
}

/* The cluster group's answer to a claim (cluster.h, LOBBY_CLAIMED). */
static void lobby_post(struct rp_group *grp, uint32_t tag,
                       const struct rp_message *msg, void *user)
{
    struct lobby *lb = user;
    struct game *g = lb->g;
    struct cluster_name_msg m;
    (void)grp;
    if (tag == LOBBY_CHAT) {
        chat_from_cluster(lb, msg);
        cluster_chat_give(&g->ncl.lobby_chat_queued);
        return;
    }
    if (tag >= LOBBY_MM_LOCAL && tag <= LOBBY_SEAT) {
        struct cluster_mm_msg mm;
        if (game_mm_msg(msg, &mm))
            mm_from_cluster(lb, tag, &mm);
        return;
    }
    if (tag != LOBBY_CLAIMED || !game_name_msg(msg, &m))
        return;
    struct player *p = pending_take(lb, m.sid);
    if (!p) {
        /* It ended while asking: a name it won goes back at once. */
        if (m.code == 0)
            (void)game_post_name(g, g->cluster_g, CLUSTER_RELEASE, m.sid, 0,
                                 m.name);
        return;
    }
    p->claiming = false;
    if (m.code == 0) {
        p->global_name = true;
        login_ok(lb, p);
        return;
    }
    names_remove(&g->names, p->name);
    p->name[0] = '\0';
    game_send_error(g, p->sid, m.code, GM_LOGIN);
}

static void lobby_tick(struct rp_group *grp, int64_t elapsed_ns, void *user)
{
    struct lobby *lb = user;
    (void)grp, (void)elapsed_ns;
    for (int s = 2; s <= GM_PARTY_MAX; s++) {
        struct party_line *l = &lb->lines[s];
        if (l->n && ++l->oldest_ticks * LOBBY_TICK_MS >= LOBBY_PARTY_WAIT_MS)
            form_party(lb, l);
    }
    if (spect_board_due(&lb->g->board[SPECT_LOBBY], LOBBY_TICK_MS)) {
        struct spect_snap *s = spect_board_begin(&lb->g->board[SPECT_LOBBY]);
        s->online = lb->online;
        spect_board_publish(&lb->g->board[SPECT_LOBBY]);
    }
}

int lobby_create(struct game *g)
{
    struct lobby *lb = calloc(1, sizeof *lb);
    if (!lb)
        return -ENOMEM;
    lb->g = g;
    lb->nchans = (g->max_sessions + g->cfg.chat_channel_size - 1) /
                 g->cfg.chat_channel_size;
    lb->chans = calloc(lb->nchans, sizeof *lb->chans);
    g->lobby = lb;
    if (!lb->chans)
        return -ENOMEM;
    struct rp_group_config cfg = {.name = "lobby",
                                  .tick_ms = LOBBY_TICK_MS,
                                  .cb = {.on_enter = lobby_enter,
                                         .on_message = lobby_message,
                                         .on_tick = lobby_tick,
                                         .on_leave = lobby_leave,
                                         .on_post = lobby_post},
                                  .user = lb,
                                  /* cluster.h, CLUSTER_CHAT_QUEUE: a
                                     claim's answer always fits */
                                  .post_limit = 4 * g->max_sessions +
                                                CLUSTER_CHAT_QUEUE + 1024};
    return rp_group_create(g->srv, &cfg, &g->lobby_g);
}

void lobby_destroy(struct game *g)
{
    struct lobby *lb = g->lobby;
    if (!lb)
        return;
    /* Every session has left (server stop): the tables hold nothing. */
    for (uint32_t c = 0; lb->chans && c < lb->nchans; c++)
        free(lb->chans[c].members);
    free(lb->chans);
    free(lb->pending);
    free(lb->mmq.a);
    free(lb->seating.a);
    free(lb);
    g->lobby = NULL;
}
