/*
 * ringport-bench game: N bots that play ringport-game in a loop and check
 * every reply against the rules (examples/game/rules.h, docs/protocol.md).
 *
 *   connect -> LOGIN (now and then a bad name first: BAD_NAME expected)
 *   lobby: chat (its own line must come back), queue for PVP (a match
 *          within --match-timeout-ms), enter a dungeon (party of 1..4),
 *          probe an error (empty chat: BAD_TEXT), or leave and rejoin
 *   pvp:   walk to the opponent and attack every 100 ms; positions in the
 *          arena and moving at most one step per tick, hit points only
 *          falling by whole hits, the winner the one left standing
 *   dungeon: attack the first living monster every 200 ms; monster and
 *          member hit points only falling, the end matching the last
 *          state, the gold matching the reward
 *   back in the lobby: gold and wins add up
 *
 * Every request waits for its reply at most --timeout-ms. Bots leave and
 * rejoin at random (also mid-fight: the opponent must be told it won).
 * I/O: each connection of a bot is an rp_client (libringport-client) that
 * the worker drives in its own epoll loop (rp_client_fd / rp_client_events
 * / rp_client_poll(c, 0)); framing and partial writes stay in the library.
 * Threads: bot i belongs to worker i % threads for the whole run; a worker
 * owns its bots, their clients, its epoll set and its histograms; main reads
 * the counters and histograms with relaxed loads (one writer each). The run is
 * bounded: after --duration no bot starts anything new, each leaves at its
 * next idle moment, and every socket is closed by --duration + 20 s.
 */
#include "game_bots.h"
#include "protocol.h"

#include <ringport/client.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define ARENA 20
#define PVP_HIT 10
#define DUNGEON_HIT 10
#define MONSTER_HP 50
#define GOLD_PER_MONSTER 10
#define PVP_ACTION_MS 100
#define DUNGEON_ACTION_MS 200
#define GRACE_NS (20 * 1000000000ull)
#define NOTE_MAX 10 /* error lines printed to stderr */

const char *const lat_names[LAT_COUNT] = {
    "login",       "chat",          "pvp_queue",      "match",
    "pvp_action",  "dungeon_enter", "dungeon_action", "return",
    "error_probe", "match_moved"};

enum bstate {
    B_OFFLINE,       /* reconnect at 'due' */
    B_CONNECTING,    /* waiting for the connect to complete */
    B_LOGIN,         /* LOGIN sent */
    B_LOBBY,         /* idle until 'due' */
    B_CHAT,          /* own line awaited */
    B_PROBE,         /* an ERROR awaited */
    B_PVP_QUEUE,     /* PVP_QUEUED awaited */
    B_PVP_WAIT,      /* MATCH_START awaited */
    B_PVP,           /* fighting */
    B_DUNGEON_QUEUE, /* DUNGEON_QUEUED awaited */
    B_DUNGEON_WAIT,  /* DUNGEON_START awaited */
    B_DUNGEON,       /* in a run */
    B_RETURN,        /* LOBBY_ENTER awaited */
    B_LOGIN_AGAIN,   /* TRY_LATER (a cluster shard): LOGIN again at 'due' */
    B_SEAT,          /* SHARD_MOVE followed: SEAT sent, LOGIN_OK awaited */
    B_DONE,
};

struct bot {
    uint32_t idx, gen;
    struct rp_client *c;   /* this connection's client; NULL when offline */
    int reg_fd;            /* the descriptor in the worker's epoll set */
    uint32_t reg_ev;       /* its events there */
    uint64_t reg_closes;   /* socket_closes() when reg_fd was last checked */
    uint64_t drop_at;      /* --drop-rate: the next reset */
    uint64_t dropped_at;   /* when the reset not yet resumed was made; 0 */
    uint64_t own_drops;    /* resets made on this client */
    uint64_t cs_own_drops; /* own_drops when cs was taken */
    bool cut_armed;        /* rp_client_drop_next: the next send is cut */
    struct rp_client_stats cs; /* the client's stats as last seen */
    enum bstate st;
    uint64_t rng;
    char name[GM_NAME_MAX + 1];
    uint64_t due;       /* next action (ns) */
    uint64_t deadline;  /* the awaited reply must come by then; 0 none */
    uint64_t sent_at;   /* when the awaited request went out */
    uint64_t action_at; /* first action not yet answered by a state */
    bool bad_name_first, end_seen;
    uint16_t probe_code;
    uint32_t chat_seq;
    char chat[24];
    uint32_t gold, wins, want_gold, want_wins;
    /* SHARD_MOVE (a cluster shard): where the match is and the seat's
       token; token 0: none. The record (gold, wins) goes on there. */
    uint64_t seat_token;
    char seat_host[64];
    uint16_t seat_port;
    uint16_t conn_port;   /* the port of the current connection */
    uint64_t match_asked; /* when PVP_QUEUE went out (the match bound) */
    bool via_seat;        /* this match's MATCH_START comes via SHARD_MOVE */
    /* pvp */
    uint32_t room, ptick;
    uint8_t side;
    bool started;
    struct gm_fighter f[2];
    /* dungeon */
    uint32_t dun, dtick;
    uint8_t you, np, nm;
    uint16_t mhp[GM_MONSTERS_MAX], php[GM_PARTY_MAX];
};

_Atomic uint64_t g_t0, g_end;
static _Atomic uint32_t g_notes;

/* ---- small helpers ---------------------------------------------------- */

static uint64_t rnd(struct bot *b)
{
    uint64_t z = (b->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rnd_range(struct bot *b, uint64_t lo, uint64_t hi)
{
    return lo + rnd(b) % (hi - lo + 1);
}

static void bump(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static uint64_t ms(uint64_t v)
{
    return v * 1000000ull;
}

/* Counts a failure of 'kind' and prints the first few on stderr. */
__attribute__((format(printf, 4, 5))) static void fail(struct gworker *w,
                                                       struct bot *b,
                                                       _Atomic uint64_t *kind,
                                                       const char *fmt, ...)
{
    bump(kind);
    if (atomic_fetch_add(&g_notes, 1) >= NOTE_MAX)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, PROG ": bot %u (%s, worker %u): %s\n", b->idx, b->name,
            w->index, line);
}

/* How many sockets the client has closed by itself: a drop, a failed
   connect, a refused session. */
static uint64_t socket_closes(const struct rp_client *c)
{
    struct rp_client_stats cs;
    rp_client_get_stats(c, &cs);
    return cs.drops + cs.failed_connects + cs.sessions_lost;
}

/*
 * Brings the worker's epoll set in line with the bot's client: its
 * descriptor and the events it waits for change with every rp_client call.
 * Called right after each such call. A socket the client closed left the
 * epoll set by itself, and its number may already belong to a socket of
 * another thread (or, after a reconnect, to the client's new one): it is
 * never named to epoll_ctl again, only forgotten.
 */
static void sync_events(struct gworker *w, struct bot *b)
{
    int fd = b->c ? rp_client_fd(b->c) : -1;
    uint32_t ev = fd >= 0 ? (uint32_t)rp_client_events(b->c) : 0;
    uint64_t closes = b->c ? socket_closes(b->c) : b->reg_closes;
    if (closes != b->reg_closes) {
        b->reg_fd = -1; /* closed by the client: gone from the set */
        b->reg_closes = closes;
    }
    if (fd != b->reg_fd) {
        if (b->reg_fd >= 0) /* still open: no client closes it unseen */
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, b->reg_fd, NULL);
        b->reg_fd = -1;
        if (fd >= 0) {
            struct epoll_event e = {.events = ev, .data.ptr = b};
            epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e);
            b->reg_fd = fd;
            b->reg_ev = ev;
        }
    } else if (fd >= 0 && ev != b->reg_ev) {
        struct epoll_event e = {.events = ev, .data.ptr = b};
        epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &e);
        b->reg_ev = ev;
    }
}

static void bot_close(struct gworker *w, struct bot *b)
{
    if (b->c) {
        if (b->reg_fd >= 0)
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, b->reg_fd, NULL);
        b->reg_fd = -1;
        rp_client_destroy(b->c);
        b->c = NULL;
        if (b->st != B_CONNECTING && b->st != B_OFFLINE)
            atomic_fetch_sub_explicit(&w->st.online, 1, memory_order_relaxed);
    }
    b->deadline = 0;
}

/* Leaves on purpose; rejoins after a pause unless the run is over. */
static void bot_leave(struct gworker *w, struct bot *b, uint64_t now)
{
    bot_close(w, b);
    if (now >= atomic_load(&g_end)) {
        b->st = B_DONE;
        return;
    }
    bump(&w->st.rejoins);
    b->st = B_OFFLINE;
    b->due = now + ms(rnd_range(b, 50, 500));
}

static void send_msg(struct gworker *w, struct bot *b, const struct gm_msg *m)
{
    uint8_t payload[GM_PAYLOAD_MAX];
    int n = gm_encode(m, payload, sizeof payload);
    int r = n < 0 ? n : rp_client_send(b->c, m->type, payload, (uint16_t)n);
    if (r < 0) {
        fail(w, b, &w->st.err_verify, "cannot send %s: %s",
             gm_type_name(m->type),
             r == -ENOBUFS ? "send queue full (server not reading)"
                           : strerror(-r));
        return;
    }
    bump(&w->st.out);
    if (b->cut_armed && rp_client_state(b->c) != RP_CLIENT_CONNECTED) {
        /* --drop-rate: this frame was cut by the reset. */
        b->cut_armed = false;
        b->own_drops++;
        bump(&w->st.drops);
        b->dropped_at = bench_now_ns();
    }
    sync_events(w, b);
}

/* Waits for a reply to what was just sent. */
static void await(struct gworker *w, struct bot *b, enum bstate st,
                  uint64_t now)
{
    b->st = st;
    b->sent_at = now;
    b->deadline = now + ms(w->o->timeout_ms);
}

static void latency(struct gworker *w, enum lat k, uint64_t since, uint64_t now)
{
    hist_record(&w->lat[k], now > since ? now - since : 0);
}

/* ---- the lobby -------------------------------------------------------- */

static void send_login(struct gworker *w, struct bot *b, uint64_t now)
{
    struct gm_msg m = {.type = GM_LOGIN};
    if (b->bad_name_first)
        m.u.login = gm_str_of("no", 2); /* too short */
    else
        m.u.login = gm_str_of(b->name, strlen(b->name));
    send_msg(w, b, &m);
    await(w, b, B_LOGIN, now);
}

static void go_idle(struct gworker *w, struct bot *b, uint64_t now)
{
    (void)w;
    b->st = B_LOBBY;
    b->deadline = 0;
    b->due = now + ms(rnd_range(b, 100, 600));
}

static void lobby_act(struct gworker *w, struct bot *b, uint64_t now)
{
    if (now >= atomic_load(&g_end)) {
        bot_close(w, b);
        b->st = B_DONE;
        return;
    }
    uint64_t r = rnd_range(b, 0, 99);
    struct gm_msg m = {0};
    if (r < 4) {
        bot_leave(w, b, now);
    } else if (r < 30) {
        snprintf(b->chat, sizeof b->chat, "hi %u.%u", b->idx, ++b->chat_seq);
        m.type = GM_CHAT;
        m.u.chat = gm_str_of(b->chat, strlen(b->chat));
        send_msg(w, b, &m);
        await(w, b, B_CHAT, now);
    } else if (r < 33) {
        /* Wrong on purpose: the server must answer, not hang up. */
        if (r == 30) {
            m.type = GM_CHAT;
            m.u.chat = gm_str_of("", 0);
            b->probe_code = GM_ERR_BAD_TEXT;
        } else if (r == 31) {
            m.type = GM_PVP_ATTACK;
            b->probe_code = GM_ERR_WRONG_CONTENT;
        } else {
            m.type = GM_DUNGEON_ENTER;
            m.u.party_size = GM_PARTY_MAX + 1;
            b->probe_code = GM_ERR_BAD_FIELD;
        }
        send_msg(w, b, &m);
        await(w, b, B_PROBE, now);
    } else if (r < 66 && w->o->bots >= 2) {
        m.type = GM_PVP_QUEUE;
        send_msg(w, b, &m);
        await(w, b, B_PVP_QUEUE, now);
    } else {
        m.type = GM_DUNGEON_ENTER;
        m.u.party_size = (uint8_t)rnd_range(b, 1, GM_PARTY_MAX);
        send_msg(w, b, &m);
        await(w, b, B_DUNGEON_QUEUE, now);
    }
}

/* ---- pvp -------------------------------------------------------------- */

static int sgn(int v)
{
    return (v > 0) - (v < 0);
}

static void pvp_act(struct gworker *w, struct bot *b, uint64_t now)
{
    if (rnd_range(b, 0, 999) < 3) { /* rage quit: the other must win */
        bot_leave(w, b, now);
        return;
    }
    struct gm_fighter *me = &b->f[b->side], *o = &b->f[1 - b->side];
    int dx = o->x - me->x, dy = o->y - me->y;
    struct gm_msg m = {.type = GM_PVP_ATTACK};
    if (abs(dx) > 2 || abs(dy) > 2) {
        m.type = GM_PVP_MOVE;
        m.u.move.dx = (int8_t)sgn(dx);
        m.u.move.dy = (int8_t)sgn(dy);
    }
    send_msg(w, b, &m);
    if (!b->action_at)
        b->action_at = now;
    b->due = now + ms(PVP_ACTION_MS);
}

static bool fighter_ok(const struct gm_fighter *was,
                       const struct gm_fighter *now, uint32_t ticks)
{
    if (now->x < 0 || now->x > ARENA || now->y < 0 || now->y > ARENA)
        return false;
    if ((uint32_t)abs(now->x - was->x) > ticks ||
        (uint32_t)abs(now->y - was->y) > ticks)
        return false;
    return now->hp <= was->hp && (was->hp - now->hp) % PVP_HIT == 0;
}

static void on_pvp_state(struct gworker *w, struct bot *b,
                         const struct gm_msg *m, uint64_t now)
{
    if (b->st != B_PVP) {
        fail(w, b, &w->st.err_verify, "pvp_state outside a fight");
        return;
    }
    if (m->u.pvp_state.room != b->room || m->u.pvp_state.tick <= b->ptick) {
        fail(w, b, &w->st.err_verify, "pvp_state room %u tick %u after %u",
             m->u.pvp_state.room, m->u.pvp_state.tick, b->ptick);
        return;
    }
    uint32_t ticks = m->u.pvp_state.tick - b->ptick;
    for (int s = 0; s < 2; s++)
        if (!fighter_ok(&b->f[s], &m->u.pvp_state.f[s], ticks))
            fail(w, b, &w->st.err_verify,
                 "fighter %d: (%d,%d) hp %u -> (%d,%d) hp %u in %u ticks", s,
                 b->f[s].x, b->f[s].y, b->f[s].hp, m->u.pvp_state.f[s].x,
                 m->u.pvp_state.f[s].y, m->u.pvp_state.f[s].hp, ticks);
    if (m->u.pvp_state.f[0].hp == 0 && m->u.pvp_state.f[1].hp == 0)
        fail(w, b, &w->st.err_verify, "both fighters at 0 hp");
    memcpy(b->f, m->u.pvp_state.f, sizeof b->f);
    b->ptick = m->u.pvp_state.tick;
    if (b->action_at) {
        latency(w, LAT_PVP_ACTION, b->action_at, now);
        b->action_at = 0;
    }
}

static void on_match_end(struct gworker *w, struct bot *b,
                         const struct gm_msg *m, uint64_t now)
{
    uint8_t win = m->u.match_end.winner, why = m->u.match_end.reason;
    if (b->st == B_PVP_WAIT) {
        /* The opponent left before the fight began. */
        if (why != GM_END_OPPONENT_LEFT)
            fail(w, b, &w->st.err_verify, "match_end %u before match_start",
                 why);
        b->want_wins = b->wins + 1;
        b->side = win;
    } else if (b->st != B_PVP || m->u.match_end.room != b->room) {
        fail(w, b, &w->st.err_verify, "match_end for room %u",
             m->u.match_end.room);
        return;
    } else {
        const struct gm_fighter *f = b->f;
        bool ok = true;
        if (why == GM_END_KO)
            ok = win <= 1 && f[1 - win].hp == 0 && f[win].hp > 0;
        else if (why == GM_END_OPPONENT_LEFT)
            ok = win == b->side;
        else
            ok = win == (f[0].hp == f[1].hp  ? GM_DRAW
                         : f[0].hp > f[1].hp ? 0
                                             : 1);
        if (!ok)
            fail(w, b, &w->st.err_verify,
                 "match_end winner %u reason %u with hp %u/%u (side %u)", win,
                 why, f[0].hp, f[1].hp, b->side);
        b->want_wins = b->wins + (win == b->side);
    }
    b->want_gold = b->gold;
    await(w, b, B_RETURN, now);
}

/* ---- dungeon ---------------------------------------------------------- */

static void dungeon_act(struct gworker *w, struct bot *b, uint64_t now)
{
    if (rnd_range(b, 0, 999) < 3) {
        bot_leave(w, b, now);
        return;
    }
    b->due = now + ms(DUNGEON_ACTION_MS);
    if (b->php[b->you] == 0)
        return; /* dead: watch the others */
    for (uint8_t i = 0; i < b->nm; i++)
        if (b->mhp[i] > 0) {
            struct gm_msg m = {.type = GM_DUNGEON_ATTACK};
            m.u.target = i;
            send_msg(w, b, &m);
            if (!b->action_at)
                b->action_at = now;
            return;
        }
}

static void on_dungeon_state(struct gworker *w, struct bot *b,
                             const struct gm_msg *m, uint64_t now)
{
    const __typeof__(m->u.dungeon_state) *s = &m->u.dungeon_state;
    if (b->st != B_DUNGEON || s->id != b->dun || s->tick < b->dtick ||
        s->nm != b->nm || s->np != b->np) {
        fail(w, b, &w->st.err_verify, "dungeon_state id %u tick %u in state %d",
             s->id, s->tick, b->st);
        return;
    }
    for (unsigned i = 0; i < s->nm; i++)
        if (s->mhp[i] > b->mhp[i] || (b->mhp[i] - s->mhp[i]) % DUNGEON_HIT)
            fail(w, b, &w->st.err_verify, "monster %u hp %u -> %u", i,
                 b->mhp[i], s->mhp[i]);
    for (unsigned i = 0; i < s->np; i++)
        if (s->php[i] != GM_HP_GONE && s->php[i] > b->php[i])
            fail(w, b, &w->st.err_verify, "member %u hp %u -> %u", i, b->php[i],
                 s->php[i]);
    if (s->php[b->you] == GM_HP_GONE)
        fail(w, b, &w->st.err_verify, "listed as gone while here");
    memcpy(b->mhp, s->mhp, sizeof b->mhp);
    memcpy(b->php, s->php, sizeof b->php);
    b->dtick = s->tick;
    if (b->action_at) {
        latency(w, LAT_DUNGEON_ACTION, b->action_at, now);
        b->action_at = 0;
    }
}

static void on_dungeon_end(struct gworker *w, struct bot *b,
                           const struct gm_msg *m, uint64_t now)
{
    if (b->st != B_DUNGEON || m->u.dungeon_end.id != b->dun) {
        fail(w, b, &w->st.err_verify, "dungeon_end %u in state %d",
             m->u.dungeon_end.id, b->st);
        return;
    }
    bool cleared = m->u.dungeon_end.result == GM_DUNGEON_CLEARED;
    bool all_dead = true, all_down = true;
    for (unsigned i = 0; i < b->nm; i++)
        all_dead &= b->mhp[i] == 0;
    for (unsigned i = 0; i < b->np; i++)
        all_down &= b->php[i] == 0 || b->php[i] == GM_HP_GONE;
    uint32_t want = cleared ? b->nm * GOLD_PER_MONSTER : 0;
    /* A wipe is everyone down, or the time limit (nobody at 0 is fine). */
    if (cleared != all_dead || m->u.dungeon_end.gold != want ||
        (!cleared && all_dead))
        fail(w, b, &w->st.err_verify, "dungeon_end result %u gold %u (%s)",
             m->u.dungeon_end.result, m->u.dungeon_end.gold,
             all_down ? "party down" : "party standing");
    b->want_gold = b->gold + want;
    b->want_wins = b->wins;
    await(w, b, B_RETURN, now);
}

/* ---- replies ---------------------------------------------------------- */

static bool is_action(uint16_t type)
{
    return type == GM_PVP_MOVE || type == GM_PVP_ATTACK ||
           type == GM_DUNGEON_ATTACK;
}

static void on_error(struct gworker *w, struct bot *b, const struct gm_msg *m,
                     uint64_t now)
{
    uint16_t code = m->u.error.code, about = m->u.error.about;
    if (b->st == B_LOGIN && b->bad_name_first && code == GM_ERR_BAD_NAME) {
        b->bad_name_first = false;
        latency(w, LAT_ERROR, b->sent_at, now);
        send_login(w, b, now);
        return;
    }
    /* A cluster shard that cannot reach NATS (docs/cluster.md): as
       docs/protocol.md says, the session stays and may retry. */
    if (b->st == B_LOGIN && code == GM_ERR_TRY_LATER && about == GM_LOGIN) {
        b->st = B_LOGIN_AGAIN;
        b->deadline = 0;
        b->due = now + ms(200);
        return;
    }
    if (b->st == B_PROBE && code == b->probe_code) {
        latency(w, LAT_ERROR, b->sent_at, now);
        go_idle(w, b, now);
        return;
    }
    /* An action that crossed MATCH_END / DUNGEON_END on the wire reaches
       the lobby: expected. */
    if (code == GM_ERR_WRONG_CONTENT && is_action(about))
        return;
    fail(w, b, &w->st.err_packet, "error %s about %s in state %d",
         gm_error_name(code), gm_type_name(about), b->st);
}

static void on_shard_move(struct gworker *w, struct bot *b,
                          const struct gm_msg *m, uint64_t now);

static void on_msg(struct gworker *w, struct bot *b, const struct gm_msg *m,
                   uint64_t now)
{
    switch (m->type) {
    case GM_ERROR: on_error(w, b, m, now); return;
    case GM_LOGIN_OK:
        if (b->st == B_SEAT) {
            /* The record came with the match: same gold; MATCH_START
               follows, within the bound that runs from PVP_QUEUE. */
            if (m->u.login_ok.gold != b->gold)
                fail(w, b, &w->st.err_verify, "seat: gold %u, had %u",
                     m->u.login_ok.gold, b->gold);
            b->seat_token = 0;
            b->via_seat = true;
            b->st = B_PVP_WAIT;
            b->sent_at = b->match_asked;
            return;
        }
        if (b->st != B_LOGIN)
            break;
        bump(&w->st.logins);
        latency(w, LAT_LOGIN, b->sent_at, now);
        b->gold = b->wins = 0;
        go_idle(w, b, now);
        return;
    case GM_CHAT_MSG:
        if (b->st == B_CHAT && m->u.chat_msg.from.len == strlen(b->name) &&
            memcmp(m->u.chat_msg.from.p, b->name, strlen(b->name)) == 0) {
            if (m->u.chat_msg.text.len != strlen(b->chat) ||
                memcmp(m->u.chat_msg.text.p, b->chat, strlen(b->chat)) != 0) {
                fail(w, b, &w->st.err_verify, "own chat line changed");
                return;
            }
            bump(&w->st.chats);
            latency(w, LAT_CHAT, b->sent_at, now);
            go_idle(w, b, now);
        }
        return; /* other players' lines: fine in any state */
    case GM_PVP_QUEUED:
        if (b->st != B_PVP_QUEUE)
            break;
        latency(w, LAT_PVP_QUEUE, b->sent_at, now);
        b->st = B_PVP_WAIT; /* the match bound runs from the request */
        b->match_asked = b->sent_at;
        return;
    case GM_SHARD_MOVE: on_shard_move(w, b, m, now); return;
    case GM_MATCH_START:
        if (b->st != B_PVP_WAIT)
            break;
        latency(w, LAT_MATCH, b->sent_at, now);
        if (b->via_seat)
            latency(w, LAT_MATCH_MOVED, b->sent_at, now);
        b->via_seat = false;
        bump(&w->st.matches);
        b->room = m->u.match_start.room;
        b->side = m->u.match_start.side;
        memcpy(b->f, m->u.match_start.f, sizeof b->f);
        b->ptick = 0;
        b->action_at = 0;
        if (b->f[0].hp != b->f[1].hp || b->f[0].hp == 0) {
            fail(w, b, &w->st.err_verify, "match_start hp %u/%u", b->f[0].hp,
                 b->f[1].hp);
            return;
        }
        b->st = B_PVP;
        b->deadline = 0;
        b->due = now;
        return;
    case GM_PVP_STATE: on_pvp_state(w, b, m, now); return;
    case GM_MATCH_END: on_match_end(w, b, m, now); return;
    case GM_DUNGEON_QUEUED:
        if (b->st != B_DUNGEON_QUEUE)
            break;
        b->st = B_DUNGEON_WAIT;
        return;
    case GM_DUNGEON_START:
        if (b->st != B_DUNGEON_WAIT)
            break;
        latency(w, LAT_DUNGEON_ENTER, b->sent_at, now);
        bump(&w->st.dungeons);
        b->dun = m->u.dungeon_start.id;
        b->you = m->u.dungeon_start.you;
        b->np = m->u.dungeon_start.players;
        b->nm = m->u.dungeon_start.monsters;
        if (b->nm != b->np + 2 || m->u.dungeon_start.monster_hp != MONSTER_HP)
            fail(w, b, &w->st.err_verify,
                 "dungeon_start %u players %u monsters", b->np, b->nm);
        for (unsigned i = 0; i < GM_MONSTERS_MAX; i++)
            b->mhp[i] = MONSTER_HP;
        for (unsigned i = 0; i < GM_PARTY_MAX; i++)
            b->php[i] = 100;
        b->dtick = 0;
        b->action_at = 0;
        b->st = B_DUNGEON;
        b->deadline = 0;
        b->due = now;
        return;
    case GM_DUNGEON_STATE: on_dungeon_state(w, b, m, now); return;
    case GM_DUNGEON_END: on_dungeon_end(w, b, m, now); return;
    case GM_LOBBY_ENTER:
        if (b->st != B_RETURN)
            break;
        latency(w, LAT_RETURN, b->sent_at, now);
        if (m->u.lobby_enter.gold != b->want_gold ||
            m->u.lobby_enter.wins != b->want_wins)
            fail(w, b, &w->st.err_verify,
                 "lobby_enter gold %u wins %u, want %u %u",
                 m->u.lobby_enter.gold, m->u.lobby_enter.wins, b->want_gold,
                 b->want_wins);
        b->gold = m->u.lobby_enter.gold;
        b->wins = m->u.lobby_enter.wins;
        go_idle(w, b, now);
        return;
    }
    fail(w, b, &w->st.err_verify, "unexpected %s in state %d",
         gm_type_name(m->type), b->st);
}

/* Hands every whole frame the client holds to the rules. Stops when the
   bot is closed by what it read. */
static void take_frames(struct gworker *w, struct bot *b, uint64_t now)
{
    struct rp_client_frame f;
    while (b->c && rp_client_recv(b->c, &f) == 1) {
        struct gm_msg m;
        int r = gm_decode(f.type, f.payload, f.len, &m);
        bump(&w->st.in);
        if (r < 0 || gm_is_client_type(f.type))
            fail(w, b, &w->st.err_verify, "bad %s (%u bytes): %d",
                 gm_type_name(f.type), f.len, r);
        else
            on_msg(w, b, &m, now);
    }
}

static void bot_connect(struct gworker *w, struct bot *b, uint64_t now)
{
    struct rp_client_config cc;
    b->conn_port = b->seat_token ? b->seat_port : w->o->net.port;
    if (b->seat_token)
        rp_client_config_init(&cc, b->seat_host, b->seat_port);
    else
        rp_client_config_init(&cc, w->o->net.host, w->o->net.port);
    cc.max_payload = GM_PAYLOAD_MAX; /* a bigger frame is a protocol error */
    cc.send_queue_max = 64 * 1024;
    cc.reconnect = 0; /* a lost connection is an error of the run */
    if (w->o->ws)
        cc.transport = RP_CLIENT_WS;
    if (w->o->resume) {
        /* A drop is resumed; the back-off is short so the resume
           latency is mostly the protocol's. */
        cc.resume = 1;
        cc.reconnect = 1;
        cc.backoff_min_ms = 2;
        cc.backoff_max_ms = 500;
    }
    cc.seed = b->rng | 1;
    int r = rp_client_create(&cc, &b->c);
    if (r == 0)
        r = rp_client_start(b->c);
    if (r < 0) {
        fail(w, b, &w->st.err_connect, "connect: %s", strerror(-r));
        rp_client_destroy(b->c);
        b->c = NULL;
        b->st = B_DONE;
        return;
    }
    if (!b->seat_token) { /* a moved player keeps its name and record */
        b->gen++;
        snprintf(b->name, sizeof b->name, "%sb%u_%u", w->o->name_prefix, b->idx,
                 b->gen);
        b->bad_name_first = rnd_range(b, 0, 99) < 5;
    }
    memset(&b->cs, 0, sizeof b->cs);
    b->own_drops = b->cs_own_drops = 0;
    b->reg_closes = 0; /* a new client counts from 0 */
    b->cut_armed = false;
    b->dropped_at = 0;
    b->st = B_CONNECTING;
    b->deadline = now + ms(w->o->timeout_ms);
    sync_events(w, b);
}

static void on_connected(struct gworker *w, struct bot *b, uint64_t now)
{
    atomic_fetch_add_explicit(&w->st.online, 1, memory_order_relaxed);
    if (b->seat_token) {
        struct gm_msg m = {.type = GM_SEAT};
        m.u.seat = b->seat_token;
        send_msg(w, b, &m);
        await(w, b, B_SEAT, now);
        return;
    }
    send_login(w, b, now);
}

/* SHARD_MOVE: the match is on another shard. The bot leaves this one and
   connects there with the token (bot_connect, on_connected: SEAT). */
static void on_shard_move(struct gworker *w, struct bot *b,
                          const struct gm_msg *m, uint64_t now)
{
    const struct gm_str *h = &m->u.shard_move.host;
    if (b->st != B_PVP_WAIT || h->len == 0 || h->len >= sizeof b->seat_host ||
        m->u.shard_move.port == 0 || m->u.shard_move.token == 0) {
        fail(w, b, &w->st.err_verify, "shard_move in state %d", b->st);
        return;
    }
    bump(&w->st.shard_moves);
    memcpy(b->seat_host, h->p, h->len);
    b->seat_host[h->len] = '\0';
    b->seat_port = m->u.shard_move.port;
    b->seat_token = m->u.shard_move.token;
    bot_close(w, b);
    bot_connect(w, b, now);
}

/* The client was closed under the bot (reconnect is off): a failed
   connect, the server hanging up, or a frame over the protocol's limit. */
static void on_client_closed(struct gworker *w, struct bot *b, uint64_t now)
{
    int err = rp_client_last_error(b->c);
    if (w->o->fault_port && b->conn_port == w->o->fault_port &&
        err != -EMSGSIZE) {
        /* That server was killed on purpose: expected. The bot starts
           over at its own shard (a seat it was going to died too). */
        bump(&w->st.faults);
        b->seat_token = 0;
        b->via_seat = false;
        bot_close(w, b);
        b->st = now >= atomic_load(&g_end) ? B_DONE : B_OFFLINE;
        b->due = now + ms(rnd_range(b, 100, 300));
        return;
    }
    if (b->st == B_CONNECTING) {
        fail(w, b, &w->st.err_connect, "connect: %s", strerror(-err));
        bot_close(w, b);
        b->st = B_DONE;
    } else if (err == -EMSGSIZE) {
        fail(w, b, &w->st.err_verify, "frame over %u bytes", GM_PAYLOAD_MAX);
        bot_leave(w, b, now);
    } else {
        fail(w, b, &w->st.err_closed, "server closed the connection (%s)",
             err == -ECONNRESET ? "eof or reset" : strerror(-err));
        bot_leave(w, b, now);
    }
}

/* Seconds to the next reset: exponential, so resets are a Poisson process
   of rate --drop-rate per bot. */
static uint64_t next_drop(struct bot *b, double rate, uint64_t now)
{
    double u = ((double)(rnd(b) >> 11) + 1.0) / 9007199254740993.0;
    return now + (uint64_t)(-log(u) / rate * 1e9);
}

/*
 * With resume, what the client did on its own since the last look: a
 * resume (its latency from our reset), a lost session (an error: replies
 * are gone; the bot logs in again), a drop we did not make (the server
 * cut us: an error, as without resume), or a first connect that failed.
 */
static void resume_events(struct gworker *w, struct bot *b, uint64_t now)
{
    struct rp_client_stats cs;
    rp_client_get_stats(b->c, &cs);
    if (cs.resumes > b->cs.resumes) {
        for (uint64_t i = b->cs.resumes; i < cs.resumes; i++)
            bump(&w->st.resumes);
        if (b->dropped_at) {
            hist_record(&w->resume_lat,
                        now > b->dropped_at ? now - b->dropped_at : 0);
            b->dropped_at = 0;
        }
    }
    bool lost = cs.sessions_lost > b->cs.sessions_lost;
    bool cut = cs.drops > b->cs.drops + (b->own_drops - b->cs_own_drops);
    bool refused = b->st == B_CONNECTING && cs.failed_connects > 0;
    b->cs = cs;
    b->cs_own_drops = b->own_drops;
    if (refused) {
        fail(w, b, &w->st.err_connect, "connect: %s",
             strerror(-rp_client_last_error(b->c)));
        bot_close(w, b);
        b->st = B_DONE;
        return;
    }
    if (cut)
        fail(w, b, &w->st.err_closed, "server closed the connection");
    if (lost) {
        bump(&w->st.sessions_lost);
        fail(w, b, &w->st.err_closed, "session lost (resume refused)");
        b->dropped_at = 0;
        if (b->st != B_CONNECTING) {
            b->gen++;
            snprintf(b->name, sizeof b->name, "%sb%u_%u", w->o->name_prefix,
                     b->idx, b->gen);
            b->bad_name_first = false;
            send_login(w, b, now);
        }
    }
}

/* The client's I/O, then what it brought: a finished connect, frames, or
   the end of the connection. */
static void bot_io(struct gworker *w, struct bot *b, uint64_t now)
{
    int r = rp_client_poll(b->c, 0);
    sync_events(w, b);
    if (b->st == B_CONNECTING && rp_client_state(b->c) == RP_CLIENT_CONNECTED)
        on_connected(w, b, now);
    take_frames(w, b, now);
    if (b->c && w->o->resume)
        resume_events(w, b, now);
    if (b->c && (r == -ENOTCONN || rp_client_state(b->c) == RP_CLIENT_CLOSED))
        on_client_closed(w, b, now);
}

/* Timers: an awaited reply that is late, or the next action. */
static void bot_timers(struct gworker *w, struct bot *b, uint64_t now)
{
    uint64_t end = atomic_load(&g_end);
    /* A client closed by a send (a write that failed) has no descriptor
       left to wake the loop: look here. */
    if (b->c && (rp_client_state(b->c) == RP_CLIENT_CLOSED ||
                 rp_client_timeout_ms(b->c) == 0)) {
        bot_io(w, b, now); /* also: a back-off that has passed */
        if (b->st == B_DONE || !b->c)
            return;
    }
    /* --drop-rate: reset the socket at a random moment of play (a frame
       may be cut either way); the client resumes by itself. */
    /* Not before LOGIN_OK (the session's token comes first: a reset
       before it loses the session by design), nor while a resume is
       still unanswered (its RESUME_OK could be lost with the token). */
    if (w->o->drop_rate > 0 && b->c && now < end && b->st != B_CONNECTING &&
        b->st != B_LOGIN && b->st != B_LOGIN_AGAIN && !b->dropped_at &&
        rp_client_state(b->c) == RP_CLIENT_CONNECTED) {
        if (!b->drop_at)
            b->drop_at = next_drop(b, w->o->drop_rate, now);
        if (now >= b->drop_at && !b->cut_armed) {
            /* Half the resets now, between frames or in the middle of
               one arriving; half in the middle of the bot's next frame. */
            if (rnd(b) & 1) {
                rp_client_drop(b->c);
                sync_events(w, b);
                b->own_drops++;
                bump(&w->st.drops);
                b->dropped_at = now;
            } else {
                rp_client_drop_next(b->c);
                b->cut_armed = true;
            }
            b->drop_at = next_drop(b, w->o->drop_rate, now);
        }
    }
    if (b->deadline && now > b->deadline) {
        /* A lone bot left in the PVP queue when the run ends has nobody
           to meet: not the server's fault. */
        if (now > end && (b->st == B_PVP_WAIT || b->st == B_PVP_QUEUE)) {
            bot_close(w, b);
            b->st = B_DONE;
            return;
        }
        fail(w, b, &w->st.err_timeout, "no reply in state %d within %u ms",
             b->st, w->o->timeout_ms);
        bot_leave(w, b, now);
        return;
    }
    if (now > end && b->st == B_PVP_WAIT) {
        bot_close(w, b);
        b->st = B_DONE;
        return;
    }
    if (now < b->due)
        return;
    switch (b->st) {
    case B_OFFLINE: bot_connect(w, b, now); break;
    case B_LOGIN_AGAIN: send_login(w, b, now); break;
    case B_LOBBY: lobby_act(w, b, now); break;
    case B_PVP: pvp_act(w, b, now); break;
    case B_DUNGEON: dungeon_act(w, b, now); break;
    default: break;
    }
}

void *gworker_main(void *arg)
{
    struct gworker *w = arg;
    struct epoll_event ev[256];
    uint64_t t0 = atomic_load(&g_t0);
    for (uint32_t i = 0; i < w->nbots; i++) /* spread the logins */
        w->bots[i].due = t0 + ms(i * w->o->threads % 1000);
    for (;;) {
        uint64_t now = bench_now_ns();
        uint32_t live = 0;
        for (uint32_t i = 0; i < w->nbots; i++) {
            struct bot *b = &w->bots[i];
            if (b->st == B_DONE)
                continue;
            if (now > atomic_load(&g_end) + GRACE_NS) {
                bot_close(w, b);
                b->st = B_DONE;
                continue;
            }
            bot_timers(w, b, now);
            live += b->st != B_DONE;
        }
        if (!live)
            break;
        int n = epoll_wait(w->epfd, ev, 256, 5);
        now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            struct bot *b = ev[i].data.ptr;
            if (b->c)
                bot_io(w, b, now);
        }
    }
    return NULL;
}

int gworker_init(struct gworker *w, const struct game_opts *o, uint32_t index)
{
    w->index = index;
    w->o = o;
    w->epfd = -1;
    w->nbots = (o->bots - index + o->threads - 1) / o->threads;
    w->bots = calloc(w->nbots, sizeof *w->bots);
    if (!w->bots)
        return -ENOMEM;
    for (uint32_t k = 0; k < w->nbots; k++) {
        struct bot *b = &w->bots[k];
        b->idx = index + k * o->threads;
        b->reg_fd = -1;
        b->st = B_OFFLINE;
        b->rng = o->seed * 0x100000001B3ull + b->idx;
    }
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    return w->epfd < 0 ? -errno : 0;
}

void gworker_fini(struct gworker *w)
{
    for (uint32_t k = 0; w->bots && k < w->nbots; k++)
        rp_client_destroy(w->bots[k].c);
    free(w->bots);
    w->bots = NULL;
    if (w->epfd >= 0)
        close(w->epfd);
    w->epfd = -1;
}
