/*
 * Guide steps 3-7 (docs/guide.md): a lobby and an arena, each a content
 * group on its own thread. Players queue in the lobby (QUEUE); the lobby
 * pairs them and moves both into the arena with a ticket naming the match
 * and the seat; the arena ticks at 10 Hz, broadcasts each match's state to
 * its two players, and after MATCH_TICKS sends them back to the lobby.
 * Limits refuse what a client has no business sending; a Prometheus
 * endpoint shows the server and both groups.
 *
 *     guide-arena [PORT [METRICS]] (defaults 7000, 127.0.0.1:0)
 *
 * Client -> server: QUEUE (1, lobby), ACT (2, arena; counted).
 * Server -> client: MATCHED (10, u32 match), STATE (11, u32 match, u32
 * tick), OVER (12, u32 actions the player made in the match).
 */
#include <ringport/group.h>
#include <ringport/metrics.h>
#include <ringport/server.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

enum { QUEUE = 1, ACT = 2, MATCHED = 10, STATE = 11, OVER = 12 };
#define MATCH_TICKS 20 /* 2 s at 10 Hz */
#define MAX_MATCHES 512

/* ANCHOR: types */
struct player {       /* the session's data */
    struct match *in; /* arena: its match (NULL elsewhere) */
    uint32_t acts;    /* ACTs in the current match */
};

struct seat { /* a move's ticket: lobby -> arena */
    uint32_t match;
    int side;
};

struct match { /* arena thread only */
    uint32_t id, ticks;
    rp_sid p[2];
};
/* ANCHOR_END: types */

static struct rp_server *srv;
static struct rp_group *lobby, *arena;
static rp_sid waiting;                    /* lobby thread only */
static uint32_t next_match;               /* lobby thread only */
static struct match matches[MAX_MATCHES]; /* arena thread only; id 0: free */

/* A frame with one u32 for one session. */
static void send_u32(rp_sid sid, uint16_t type, uint32_t v)
{
    struct rp_packet *pkt;
    if (rp_packet_create(4, type, &pkt) < 0)
        return;
    rp_packet_put_u32(pkt, v);
    rp_server_send(srv, sid, pkt);
    rp_packet_unref(pkt);
}

/* ---- the server: every session starts in the lobby ---------------------- */

/* ANCHOR: on_join */
static void on_join(struct rp_server *s, rp_sid sid, void *user)
{
    struct player *p = calloc(1, sizeof *p);
    if (!p || rp_session_set_data(s, sid, p) < 0 ||
        rp_group_move(s, sid, lobby, NULL) < 0) {
        free(p); /* set or not, the data is ours until the move */
        rp_session_set_data(s, sid, NULL);
        rp_server_disconnect(s, sid);
    }
}

static void on_leave(struct rp_server *s, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    free(data); /* after the group's final on_leave, wherever it was */
}
/* ANCHOR_END: on_join */

/* Frames of a session in no group: only between join and the lobby. */
static void on_message(struct rp_server *s, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
}

/* ANCHOR: on_ticket_drop */
static void on_ticket_drop(struct rp_server *s, rp_sid sid, void *ticket,
                           void *user)
{
    free(ticket); /* the move never reached the arena's on_enter */
}
/* ANCHOR_END: on_ticket_drop */

/* ---- the lobby ----------------------------------------------------------- */

/* ANCHOR: lobby */
static void lobby_message(struct rp_group *g, rp_sid sid, void *data,
                          const struct rp_message *msg, void *user)
{
    if (msg->type != QUEUE || waiting == sid)
        return;
    if (waiting == RP_SID_NONE) {
        waiting = sid;
        return;
    }
    uint32_t id = ++next_match;
    rp_sid pair[2] = {waiting, sid};
    waiting = RP_SID_NONE;
    for (int side = 0; side < 2; side++) {
        struct seat *t = malloc(sizeof *t);
        if (!t)
            break;
        *t = (struct seat){.match = id, .side = side};
        if (rp_group_move(srv, pair[side], arena, t) < 0)
            free(t); /* refused: the ticket is still ours */
    }
}

static void lobby_leave(struct rp_group *g, rp_sid sid, void *data,
                        enum rp_leave_reason reason, void *user)
{
    if (waiting == sid)
        waiting = RP_SID_NONE;
}
/* ANCHOR_END: lobby */

/* ---- the arena ----------------------------------------------------------- */

static struct match *match_get(uint32_t id)
{
    struct match *free_one = NULL;
    for (int i = 0; i < MAX_MATCHES; i++) {
        if (matches[i].id == id)
            return &matches[i];
        if (!matches[i].id && !free_one)
            free_one = &matches[i];
    }
    if (free_one)
        *free_one = (struct match){.id = id};
    return free_one;
}

/* ANCHOR: arena_enter */
static void arena_enter(struct rp_group *g, rp_sid sid, void *data,
                        void *ticket, void *user)
{
    struct player *p = data;
    struct seat *t = ticket; /* written by the lobby before the move */
    struct match *m = t ? match_get(t->match) : NULL;
    if (m) {
        m->p[t->side] = sid;
        p->in = m;
        p->acts = 0;
        send_u32(sid, MATCHED, m->id);
    } else {
        rp_group_move(srv, sid, lobby, NULL); /* no room: back you go */
    }
    free(t);
}
/* ANCHOR_END: arena_enter */

static void arena_message(struct rp_group *g, rp_sid sid, void *data,
                          const struct rp_message *msg, void *user)
{
    struct player *p = data;
    if (msg->type == ACT && p->in)
        p->acts++;
}

/* ANCHOR: match_end */
/* Sends whoever is in 'm' back to the lobby and frees it. */
static void match_end(struct match *m)
{
    for (int side = 0; side < 2; side++) {
        rp_sid sid = m->p[side];
        /* Every player of a match is in the arena: its data is ours. */
        struct player *p = sid ? rp_session_get_data(srv, sid) : NULL;
        if (!p)
            continue;
        p->in = NULL;
        /* Move first, then tell: the I/O thread takes requests in order,
           so the move is under way before OVER can reach the client, and
           what it sends after OVER goes to the lobby. */
        rp_group_move(srv, sid, lobby, NULL);
        send_u32(sid, OVER, p->acts);
    }
    m->id = 0;
}
/* ANCHOR_END: match_end */

/* ANCHOR: arena_tick */
static void arena_tick(struct rp_group *g, int64_t elapsed_ns, void *user)
{
    for (int i = 0; i < MAX_MATCHES; i++) {
        struct match *m = &matches[i];
        if (!m->id)
            continue;
        m->ticks++;
        struct rp_packet *state;
        if (m->p[0] && m->p[1] && rp_packet_create(8, STATE, &state) == 0) {
            rp_packet_put_u32(state, m->id);
            rp_packet_put_u32(state, m->ticks);
            rp_server_broadcast(srv, m->p, 2, state); /* one buffer */
            rp_packet_unref(state);
        }
        if (m->ticks >= MATCH_TICKS) /* over, or its second never came */
            match_end(m);
    }
}
/* ANCHOR_END: arena_tick */

static void arena_leave(struct rp_group *g, rp_sid sid, void *data,
                        enum rp_leave_reason reason, void *user)
{
    struct player *p = data;
    struct match *m = p->in;
    p->in = NULL;
    if (!m)
        return; /* sent back by match_end */
    /* Gone mid-match (disconnected): the match ends for the other. */
    m->p[m->p[0] == sid ? 0 : 1] = RP_SID_NONE;
    match_end(m);
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct rp_server_config cfg;
    struct rp_metrics *metrics;
    sigset_t stop;
    int sig;

    /* ANCHOR: limits */
    rp_server_config_init(&cfg);
    cfg.port = argc > 1 ? (uint16_t)atoi(argv[1]) : 7000;
    cfg.max_sessions = 2000;
    cfg.max_payload = 64; /* QUEUE and ACT are tiny */
    /* Any other type is a protocol error: the session is cut. */
    cfg.type_min = QUEUE;
    cfg.type_max = ACT;
    /* A client that connects and says nothing, or stops talking. */
    cfg.first_packet_deadline_ms = 5000;
    cfg.idle_timeout_ms = 30000;
    /* A client that stops reading: cut when this much waits for it. */
    cfg.send_queue_limit = 64 * 1024;
    /* ANCHOR_END: limits */
    cfg.cb = (struct rp_server_callbacks){.on_join = on_join,
                                          .on_message = on_message,
                                          .on_leave = on_leave,
                                          .on_ticket_drop = on_ticket_drop};
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* every thread inherits it */
    if (rp_server_create(&cfg, &srv) < 0)
        return 1;

    /* ANCHOR: groups */
    struct rp_group_config lc = {
        .name = "lobby",
        .cb = {.on_message = lobby_message, .on_leave = lobby_leave}};
    struct rp_group_config ac = {.name = "arena",
                                 .tick_ms = 100,
                                 .cb = {.on_enter = arena_enter,
                                        .on_message = arena_message,
                                        .on_tick = arena_tick,
                                        .on_leave = arena_leave}};
    if (rp_group_create(srv, &lc, &lobby) < 0 ||
        rp_group_create(srv, &ac, &arena) < 0 || rp_server_start(srv) < 0)
        return 1;
    /* ANCHOR_END: groups */

    /* ANCHOR: metrics */
    const char *endpoint = argc > 2 ? argv[2] : "127.0.0.1:0";
    if (rp_metrics_create(endpoint, &metrics) < 0 ||
        rp_metrics_add_server(metrics, srv, NULL) < 0 ||
        rp_metrics_add_group(metrics, lobby) < 0 ||
        rp_metrics_add_group(metrics, arena) < 0)
        return 1;
    /* ANCHOR_END: metrics */
    printf("listening on %s:%u\n", cfg.listen_addr, rp_server_port(srv));
    printf("metrics on port %u\n", rp_metrics_port(metrics));
    fflush(stdout);
    sigwait(&stop, &sig);
    rp_server_stop(srv); /* every on_leave has run when it returns */
    rp_metrics_destroy(metrics);
    rp_server_destroy(srv);
    return 0;
}
