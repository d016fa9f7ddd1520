/*
 * Internals of ringport-game shared by its contents (lobby.c, pvp.c,
 * dungeon.c), the player records (player.c), the nickname registry
 * (names.c) and main.c.
 *
 * Ownership (the one rule everything else follows): a session's struct
 * player is the session's data (rp_session_set_data): main.c's on_join
 * makes it, every callback of the session gets it, and main.c's on_leave
 * (the session's last callback, however and wherever it ends) frees it.
 * In between it belongs to the content whose group the session is in, and
 * only that content's thread reads or writes it; no lock guards it. The
 * engine hands it from content to content with the session (the old
 * content's on_leave runs before the new one's on_enter, and its writes
 * are visible there in either layout).
 *
 * Where a session goes next travels as the move's ticket: the lobby
 * allocates a struct seat (which match, which side, how big a party) for
 * each move to pvp or the dungeon; the target's on_enter takes it and
 * frees it, or, if the move never arrives (the session ended on the way,
 * the server is stopping), main.c's on_ticket_drop frees it.
 *
 * The nickname registry is the one shared structure: a name is taken at
 * login in the lobby and released in main.c's on_leave (an I/O thread),
 * so threads meet there; a mutex around a hash set is simple, and
 * login/logout are rare next to game messages.
 */
#ifndef RINGPORT_GAME_GAME_H
#define RINGPORT_GAME_GAME_H

#include "cluster.h"
#include "protocol.h"
#include "rules.h"
#include "spectate.h"

#include <pthread.h>
#include <ringport/group.h>
#include <ringport/server.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct player {
    rp_sid sid;
    uint32_t id; /* 0 until logged in */
    char name[GM_NAME_MAX + 1];
    uint32_t gold, wins;
    /* The holding content's own bookkeeping (meaningless to the others). */
    bool busy;     /* lobby: queued or being moved out */
    uint32_t chan; /* lobby: chat channel + 1 (0: none) */
    uint32_t chan_pos;
    uint8_t side;  /* pvp side, dungeon member index */
    void *where;   /* pvp: its room; dungeon: its run */
    uint32_t slot; /* spectator: its index in the spectator list */
    /* Set by the lobby when it reserves a spectator place for the
       session (g->n.spectators); player_free gives the place back. */
    bool spectator;
    /* Cluster (docs/cluster.md): the name is held locally and its global
       claim is on its way (the lobby waits for the answer), or the name
       is held in the cluster (player_free releases it there). */
    bool claiming, global_name;
    /* Cross-shard matchmaking (lobby): queued in the cluster group; its
       SEAT is being checked there. */
    bool mm_queued, seating;
};

/* A move's ticket, lobby -> pvp or dungeon: the match to join there and
   the place in it. The receiving on_enter (or on_ticket_drop) frees it. */
struct seat {
    uint32_t match_id;
    uint8_t side;    /* pvp side, dungeon member index */
    uint8_t party_n; /* dungeon: members in the party as formed */
};

/* Names taken by logged-in sessions (names.c). Thread: any. */
struct names {
    pthread_mutex_t lock;
    struct name_node **buckets;
    uint32_t mask;
    uint32_t count;
};

int names_init(struct names *n, uint32_t expected);
void names_fini(struct names *n);
/* Returns 0, or -EEXIST if taken, -ENOMEM. */
int names_add(struct names *n, const char *name);
void names_remove(struct names *n, const char *name);
uint32_t names_count(struct names *n);

struct game_config {
    uint32_t chat_channel_size; /* lobby chat reaches this many at most */
    uint32_t max_spectators;    /* SPECTATE past it: SPECTATORS_FULL */
    uint8_t pvp_queue; /* enum cluster_pvp_queue; not local: --cluster */
};

/* Counters: written by the content threads, read by main and metrics. */
struct game_counters {
    _Atomic uint64_t players_live; /* records allocated, not yet freed */
    _Atomic uint64_t logins, chats, matches, dungeons;
    _Atomic uint64_t errors_sent, kicks;
    /* Places taken by spectators (the lobby reserves, player_free gives
       back), and SPECTATOR_STATEs composed (one per broadcast). */
    _Atomic uint64_t spectators, spectator_states;
};

struct lobby;
struct pvp;
struct dungeon;
struct spectate;

struct game {
    struct rp_server *srv;
    struct game_config cfg;
    uint32_t max_sessions;
    struct names names;
    struct game_counters n;
    struct rp_group *lobby_g, *pvp_g, *dungeon_g, *spect_g;
    /* --cluster (cluster.c): the group that talks to NATS, or NULL. */
    struct rp_group *cluster_g;
    struct cluster *cluster;
    struct cluster_counters ncl;
    struct lobby *lobby;
    struct pvp *pvp;
    struct dungeon *dungeon;
    struct spectate *spect;
    /* Each content's summary for spectators (spectate.h): written by
       that content's thread, read by the spectator content's. */
    struct spect_board board[SPECT_CONTENTS];
};

/* cluster_mm.c (built with --cluster only): cross-shard matchmaking in
   the cluster group. 'publish' sends bytes on a NATS subject (cluster.c).
   Thread: the cluster group's (create/destroy: main, before the server
   starts and after it stopped). */
struct cluster_mm;
struct cluster_mm *cluster_mm_create(
    struct game *g, const struct cluster_config *cfg, uint64_t epoch,
    void (*publish)(void *ctx, const char *subject, const uint8_t *b, int n),
    void *ctx);
void cluster_mm_destroy(struct cluster_mm *c);
/* A CLUSTER_MM_* or CLUSTER_SEAT_CLAIM post. */
void cluster_mm_post(struct cluster_mm *c, uint32_t tag,
                     const struct rp_message *msg);
void cluster_mm_tick(struct cluster_mm *c);
/* cluster.c, for cluster_mm.c ('ctx' is publish's): the global name moves
   with a SHARD_MOVE. The old shard, on the COMMIT: its key is no longer
   refreshed nor deleted. The host, on the SEAT: it takes the key over
   from shard 'from' (compare-and-set at the revision it reads) for
   session 'sid', whose logout releases it. Thread: the cluster group's. */
void cluster_name_moved(void *ctx, const char *name);
void cluster_name_take_over(void *ctx, uint64_t sid, const char *name,
                            uint32_t from);

/* player.c */
int game_init(struct game *g, struct rp_server *srv, uint32_t max_sessions,
              const struct game_config *cfg);
/* After rp_server_stop (every record is freed by then): frees the
   contents; then names_fini(&g->names) once the final count is taken. */
void game_destroy(struct game *g);
struct player *player_new(struct game *g, rp_sid sid);
/* Releases the name (if any) and frees the record. */
void player_free(struct game *g, struct player *p);
/* The record of 'sid', a session the calling content holds. */
struct player *player_of(struct game *g, rp_sid sid);

/* Encodes and sends 'm' to one session / to 'n' (one shared packet). */
int game_send(struct game *g, rp_sid sid, const struct gm_msg *m);
int game_broadcast(struct game *g, const rp_sid *ids, size_t n,
                   const struct gm_msg *m);
void game_send_error(struct game *g, rp_sid sid, uint16_t code, uint16_t about);
/* Posts a struct cluster_name_msg to 'to' (cluster.h). Returns
   rp_group_post's result; a refusal is counted in ncl.posts_dropped. */
int game_post_name(struct game *g, struct rp_group *to, uint32_t tag,
                   uint64_t sid, uint16_t code, const char *name);
/* The same for a struct cluster_mm_msg (matchmaking, cluster_mm.c). */
int game_post_mm(struct game *g, struct rp_group *to, uint32_t tag,
                 const struct cluster_mm_msg *m);
bool game_mm_msg(const struct rp_message *msg, struct cluster_mm_msg *out);
/* The struct cluster_name_msg in a post; false if it is not one. */
bool game_name_msg(const struct rp_message *msg, struct cluster_name_msg *out);
/*
 * Decodes 'msg' into 'm' and judges it in the order docs/protocol.md
 * gives ("Which error wins"), answering only the first thing wrong:
 *   1. a type no client may send, or a payload of the wrong length: an
 *      error packet and a disconnect (the client is broken or hostile:
 *      nothing it sends later can be trusted to be framed as it means)
 *   2. anything but LOGIN or SPECTATE before login ('logged_in' false):
 *      NOT_LOGGED_IN
 *   3. a client type this content does not take (not in 'accepts', a
 *      mask of GAME_TYPE_BIT): WRONG_CONTENT
 *   4. a field out of its wire range: BAD_FIELD
 * In 2-4 the session stays. The content's own checks (name taken,
 * already queued, a monster index over the run's count, ...) come after.
 * Returns true if 'm' is usable.
 */
#define GAME_TYPE_BIT(t) (1u << (t))
bool game_decode(struct game *g, rp_sid sid, const struct rp_message *msg,
                 uint32_t accepts, bool logged_in, struct gm_msg *m);

/* Contents: each creates its group (tick included) and its state. */
int lobby_create(struct game *g);
void lobby_destroy(struct game *g);
int pvp_create(struct game *g);
void pvp_destroy(struct game *g);
int dungeon_create(struct game *g);
void dungeon_destroy(struct game *g);
int spect_create(struct game *g);
void spect_destroy(struct game *g);

/* cluster.c (built with libnats only). cluster_create: main thread,
   before rp_server_start: creates the cluster group and starts the NATS
   connection (which keeps retrying in the background if NATS is down).
   cluster_destroy: main thread, after rp_server_stop (every name has
   been released by then): closes the connection and waits for libnats's
   threads. */
int cluster_create(struct game *g, const struct cluster_config *cfg);
void cluster_destroy(struct game *g);

#endif
