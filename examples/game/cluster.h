/*
 * ringport-game as one shard of several joined by NATS (docs/cluster.md):
 * what the rest of the game sees of the cluster. No NATS type appears
 * here; only cluster.c includes <nats/nats.h>, and ringport-game links
 * libnats only when it is built with it (RP_GAME_CLUSTER).
 *
 * Threads: one `cluster` content group is the only code that calls
 * libnats after start-up. Everyone else talks to it with rp_group_post
 * (tags below) and it answers the same way; libnats's own callbacks only
 * copy what they got and post it. So no lock is added anywhere, and no
 * game thread ever waits on the network: a LOGIN in the lobby posts a
 * claim and gets its answer later, as a post to the lobby.
 *
 * Global names: a logged-in player's name is a key in the JetStream KV
 * bucket CLUSTER_BUCKET, created only if absent (compare-and-set on the
 * subject's last sequence 0), refreshed by its holder (the bucket's MaxAge
 * is the lease: a shard that dies stops refreshing and its names expire),
 * and deleted (compare-and-set on the holder's revision) at logout.
 */
#ifndef RINGPORT_GAME_CLUSTER_H
#define RINGPORT_GAME_CLUSTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CLUSTER_BUCKET "rp_names"
#define CLUSTER_LEASE_MS_DEFAULT 15000
/* Chat lines in the cluster group's inbox (both ways), and remote lines
   in the lobby's, at most this many each: past it a line is dropped
   (counted in posts_dropped). This keeps a chat flood from taking the
   room that names need: the cluster group's post_limit is 2 *
   max_sessions (a claim and a release per session at most) + this +
   room for connection events, the lobby's max_sessions (a claim answer
   per session at most) + this + spare; so a release or a claim's answer
   is never refused for want of room (no name stays held by a player gone,
   no LOGIN waits forever). */
#define CLUSTER_CHAT_QUEUE 2048

/* Posts to the cluster group. Payloads are native-endian structs of this
   process (never on the wire). */
enum cluster_tag {
    CLUSTER_CLAIM = 1, /* lobby: struct cluster_name_msg, code unused */
    CLUSTER_RELEASE,   /* player_free, lobby: struct cluster_name_msg */
    CLUSTER_EVENT,     /* libnats callbacks: one u8, enum cluster_event */
    CLUSTER_CHAT_OUT,  /* lobby: struct cw_chat (channel, from, text) */
    CLUSTER_CHAT_IN,   /* libnats delivery thread: the message's bytes */
};

/* Posts from the cluster group to the lobby. */
enum lobby_tag {
    LOBBY_CLAIMED = 1, /* struct cluster_name_msg: code 0 or GM_ERR_* */
    LOBBY_CHAT,        /* struct cw_chat: a line from another shard */
};

enum cluster_event {
    CLUSTER_EV_CONNECTED = 1,
    CLUSTER_EV_DISCONNECTED,
    CLUSTER_EV_RECONNECTED,
    CLUSTER_EV_CLOSED,
};

struct cluster_name_msg {
    uint64_t sid;
    uint16_t code; /* LOBBY_CLAIMED: 0 (the name is this player's) or an
                      ERROR code (NAME_TAKEN, TRY_LATER) */
    char name[17]; /* GM_NAME_MAX + 1, NUL-terminated */
};

/* Settings (flags and INI keys: cluster, shard, advertise,
   cluster_lease_ms). An empty url: no cluster, nothing below runs. */
struct cluster_config {
    char url[256];      /* nats://HOST:PORT */
    uint32_t shard;     /* this shard's number, unique in the cluster */
    char advertise[80]; /* HOST:PORT clients of other shards reach us at */
    uint32_t lease_ms;  /* name lease (the bucket's MaxAge) */
};

/* Counters: written by the cluster group (posts_dropped by any thread),
   read by metrics and the stats line. */
struct cluster_counters {
    _Atomic uint64_t connected; /* gauge: 1 while connected to NATS */
    _Atomic uint64_t names;     /* gauge: names this shard holds */
    _Atomic uint64_t reconnects, disconnects;
    _Atomic uint64_t posts_dropped;   /* a post to or from it refused */
    _Atomic uint64_t name_conflicts;  /* a held name found taken (lost) */
    _Atomic uint64_t names_recreated; /* a held name found gone, re-made */
    _Atomic uint64_t claims, claims_taken, claims_try_later;
    _Atomic uint64_t claims_timed_out; /* NATS did not answer in time */
    /* Cross-shard chat: lines published, lines that could not be (NATS
       down), remote lines delivered, and dropped as duplicates, as
       undecodable, and lines missing in an origin's sequence (gaps). */
    _Atomic uint64_t chat_out, chat_out_failed, chat_in;
    _Atomic uint64_t chat_duplicates, chat_bad, chat_gaps;
    /* Not counters: chat posts in the cluster group's inbox and in the
       lobby's now (a place is taken by the poster before it posts, given
       back by the receiver once handled, or by the poster if the post
       failed). */
    _Atomic uint64_t chat_queued, lobby_chat_queued;
};

/* Takes a place for one chat post in queue 'q' (chat_queued or
   lobby_chat_queued of 'n'); false, counted as dropped, if
   CLUSTER_CHAT_QUEUE are there. Thread: any. */
static inline bool cluster_chat_take(struct cluster_counters *n,
                                     _Atomic uint64_t *q)
{
    if (atomic_fetch_add(q, 1) < CLUSTER_CHAT_QUEUE)
        return true;
    atomic_fetch_sub(q, 1);
    atomic_fetch_add_explicit(&n->posts_dropped, 1, memory_order_relaxed);
    return false;
}

static inline void cluster_chat_give(_Atomic uint64_t *q)
{
    atomic_fetch_sub(q, 1);
}

#endif
