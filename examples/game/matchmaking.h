/*
 * Cross-shard matchmaking (docs/cluster.md, "Cross-shard matchmaking"): the
 * PVP queue of one shard, the offer/commit protocol that pairs its tickets
 * with other shards' tickets, and the seats a host keeps for players on
 * their way. Pure logic: no NATS, no engine, no clock of its own (every
 * call takes 'now' in ms), so two leaders at once, a decline, a timeout
 * and a late commit are unit tests (tests/unit/game/test_matchmaking.c)
 * and the message decoder is fuzzed (tests/fuzz/fuzz_mm_wire.c).
 *
 * Thread rule: a struct mm belongs to one thread (the cluster group's);
 * its callbacks run on that thread, inside the call that caused them.
 *
 * The protocol, between a leader L (a shard that offers) and a target T:
 *   ADVERT  T -> all   "ticket t waits globally" (every advert_ms; a
 *                      remote ticket not re-advertised within ad_ttl_ms
 *                      is forgotten: a killed shard's tickets expire)
 *   OFFER   L -> T     "match my ticket l with your ticket t, I host"
 *   ACCEPT  T -> L     t is promised to this offer until promise_ms;
 *                      carries t's player record (name, gold, wins)
 *   DECLINE T -> L     t is gone, matched or promised elsewhere, or T
 *                      won the tie-break (below)
 *   COMMIT  L -> T     L reserved a seat: {host, port, token}; T tells
 *                      its player SHARD_MOVE and forgets the record
 *   ABORT   L -> T     the ACCEPT came too late (the offer had timed out
 *                      or the ticket left): T's ticket queues again
 *   REJECT  T -> L     the COMMIT came too late (the promise had timed
 *                      out or the player left): it is ignored, and L
 *                      drops the seat and queues its ticket again
 * - A ticket is matched at most once: it is offered or promised to one
 *   offer at a time, and only an ACCEPT or COMMIT naming that very offer
 *   (leader shard, leader epoch, offer id) moves it on.
 * - Two leaders at once (each offering its ticket to the other's): the
 *   lower shard number leads. A ticket that is OFFERING accepts an
 *   incoming offer only from a lower shard and declines it otherwise, so
 *   both sides decide the same way without a further message.
 * - The record moves exactly once: T sends it in ACCEPT and keeps its own
 *   copy; the host takes it into the seat only on that ACCEPT, and T
 *   forgets its copy only on the COMMIT. A COMMIT that comes too late is
 *   ignored and answered ABORT, so the host drops its copy: one owner at
 *   every step (a lost COMMIT leaves the seat to expire unclaimed).
 */
#ifndef RINGPORT_GAME_MATCHMAKING_H
#define RINGPORT_GAME_MATCHMAKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mm_mode {
    MM_LOCAL,  /* only this shard's queue */
    MM_SPILL,  /* this shard first; global after spill_ms waiting */
    MM_GLOBAL, /* advertised at once (a local partner is still preferred) */
};

/* Parses "local", "spill", "global". Returns 0 or -EINVAL. */
int mm_mode_parse(const char *s, enum mm_mode *out);
const char *mm_mode_name(enum mm_mode m);

/* ---- messages on NATS (subject rp.mm.<shard>, adverts rp.mm.ads) ----
 * Little-endian:
 *   u8 version (1) | u8 kind | u32 from shard | u64 from epoch |
 *   u32 to shard (MM_ALL for ADVERT) | u64 offer id (0 in ADVERT) |
 *   u64 leader ticket (0 in ADVERT) | u64 target ticket
 * then ACCEPT: u8 name length, name (3..16 of [A-Za-z0-9_]) | u32 gold |
 *              u32 wins
 *      COMMIT: u64 token (not 0) | u8 host length, host (1..63 of
 *              [A-Za-z0-9.:-]) | u16 port (not 0)
 * and nothing after it. */
#define MM_WIRE_VERSION 1
#define MM_ALL UINT32_MAX
#define MM_HEAD_LEN (1 + 1 + 4 + 8 + 4 + 8 + 8 + 8)
#define MM_WIRE_MAX (MM_HEAD_LEN + 8 + 1 + 63 + 2 + 1 + 16 + 4 + 4)

enum mm_kind {
    MM_ADVERT = 1,
    MM_OFFER,
    MM_ACCEPT,
    MM_DECLINE,
    MM_COMMIT,
    MM_ABORT,
    MM_REJECT,
};

struct mm_record {
    uint8_t name_len;
    char name[17]; /* NUL-terminated */
    uint32_t gold, wins;
};

struct mm_msg {
    uint8_t kind;
    uint32_t from, to;
    uint64_t epoch;
    uint64_t offer;         /* the leader's offer id */
    uint64_t leader_ticket; /* the leader's ticket */
    uint64_t target_ticket; /* the target's (ADVERT: the advertised one) */
    struct mm_record rec;   /* ACCEPT */
    uint64_t token;         /* COMMIT */
    uint8_t host_len;       /* COMMIT */
    char host[64];          /* COMMIT, NUL-terminated */
    uint16_t port;          /* COMMIT */
};

/* Encodes 'm' (MM_WIRE_MAX bytes suffice). Returns the length, or -EINVAL
   for a field out of range. */
int mm_msg_encode(const struct mm_msg *m, uint8_t *out, size_t cap);
/* Decodes exactly one message. Returns 0, or -EBADMSG (wrong version or
   kind, short, trailing bytes, a zero id where one is needed, a name, host
   or port that is not valid). */
int mm_msg_decode(const uint8_t *p, size_t n, struct mm_msg *out);

/* ---- the queue and the protocol ---- */
#define MM_MAX_LOCAL 256
#define MM_MAX_REMOTE 512

enum mm_state {
    MM_FREE,       /* slot unused */
    MM_WAITING,    /* queued here only */
    MM_ADVERTISED, /* queued, and visible to the other shards */
    MM_OFFERING,   /* offered by us to a remote ticket, until a deadline */
    MM_PROMISED,   /* promised to a remote leader's offer, until a deadline */
};

struct mm_ticket {
    uint64_t id;     /* this shard's ticket id, never 0 */
    uint64_t player; /* the caller's key for the player */
    uint8_t state;   /* enum mm_state */
    uint64_t queued_ms, deadline_ms, advert_ms; /* advert_ms: last ADVERT */
    /* OFFERING: our offer and its target; PROMISED: the leader's offer */
    uint32_t peer_shard;
    uint64_t peer_epoch, peer_ticket, offer;
};

struct mm_remote {
    uint32_t shard;
    uint64_t epoch, ticket;
    uint64_t seen_ms;       /* last ADVERT; 0: slot unused */
    uint64_t not_before_ms; /* offered or declined: not offered till then */
};

struct mm_config {
    enum mm_mode mode;
    uint32_t shard;
    uint64_t epoch;      /* this run (a restarted shard: a new one) */
    uint32_t spill_ms;   /* MM_SPILL: waiting before going global */
    uint32_t advert_ms;  /* how often a global ticket is advertised */
    uint32_t ad_ttl_ms;  /* a remote ticket not advertised: forgotten */
    uint32_t offer_ms;   /* an offer unanswered: the ticket is free */
    uint32_t promise_ms; /* a promise with no COMMIT: the ticket free */
    char host[64];       /* where this shard's clients reach it */
    uint16_t port;
};

/* What the protocol asks of its owner. Each runs on the owner's thread,
   inside the mm_* call that caused it. */
struct mm_ops {
    /* Publish 'm' (to m->to, or to every shard for MM_ALL). May fail:
       NATS is at-most-once, and the protocol's timeouts cover a loss. */
    void (*send)(void *ctx, const struct mm_msg *m);
    /* Two local tickets matched: fight here. Both tickets are gone. */
    void (*local_match)(void *ctx, uint64_t player_a, uint64_t player_b);
    /* We lead: our 'player' meets the remote player 'rec'. Reserve a seat
       and return its token (not 0), or 0 if that cannot be done (then the
       match is aborted and the ticket queues again). The ticket is gone
       unless unhost() gives it back. */
    uint64_t (*host)(void *ctx, uint64_t player, const struct mm_record *rec,
                     uint32_t from_shard);
    /* The target aborted after we hosted: drop the seat of 'token'; the
       ticket of 'player' queues again (the module has re-queued it). */
    void (*unhost)(void *ctx, uint64_t player, uint64_t token);
    /* We are the target and it is final: send SHARD_MOVE {host, port,
       token} to 'player' and forget its record. The ticket is gone. */
    void (*move)(void *ctx, uint64_t player, const char *host, uint16_t port,
                 uint64_t token);
    /* ACCEPT needs the record of a local player; false: it is gone. */
    bool (*record)(void *ctx, uint64_t player, struct mm_record *out);
};

/* A match we host whose COMMIT is out: kept a while so that a REJECT can
   undo it. */
struct mm_commit {
    uint32_t peer_shard;
    uint64_t offer, player, token, until_ms; /* token 0: unused */
};

/* An offer we were moved by (the target side), kept so that a duplicate of
   its COMMIT is ignored rather than answered REJECT (which would make the
   host drop the seat the player is on the way to). */
struct mm_moved {
    uint32_t leader;
    uint64_t epoch, offer; /* offer 0: unused */
};
#define MM_MOVED_RING 64

struct mm_stats {
    uint64_t local_matches, hosted, moved; /* hosted + moved: cross-shard */
    uint64_t offers, accepts, declines, commits, aborts;
    uint64_t rejects, offer_timeouts, promise_timeouts, late_ignored;
    uint64_t duplicates; /* a COMMIT of an offer we already moved by */
};

struct mm {
    struct mm_config cfg;
    const struct mm_ops *ops;
    void *ctx;
    uint64_t next_ticket, next_offer;
    struct mm_ticket local[MM_MAX_LOCAL];
    struct mm_remote remote[MM_MAX_REMOTE];
    struct mm_commit committed[MM_MAX_LOCAL];
    struct mm_moved moved[MM_MOVED_RING];
    uint32_t moved_next;
    struct mm_stats st;
};

void mm_init(struct mm *m, const struct mm_config *cfg,
             const struct mm_ops *ops, void *ctx);
/* Queues 'player' (the caller's key). A waiting local partner matches at
   once (local_match). Returns the ticket id (> 0), 0 if matched at once,
   -EALREADY if 'player' is queued, or -ENOSPC. */
int64_t mm_enqueue(struct mm *m, uint64_t player, uint64_t now_ms);
/* The player left the queue (or the shard): its ticket goes. An offer or
   promise it was in is then answered ABORT/DECLINE when its answer
   comes. Returns 0, or -ENOENT. */
int mm_cancel(struct mm *m, uint64_t player);
/* Timeouts, spilling, adverts and new offers. Call every few tens of ms. */
void mm_tick(struct mm *m, uint64_t now_ms);
/* A message from NATS, already decoded. Messages from this shard, or for
   another one, are ignored. */
void mm_receive(struct mm *m, const struct mm_msg *msg, uint64_t now_ms);
/* Local tickets in the queue (any state). */
size_t mm_queued(const struct mm *m);

/* ---- seats: the host's reservations for players on their way ---- */
#define MM_MAX_SEATS 256

struct mm_seat {
    uint64_t token; /* 0: slot unused; single use */
    uint64_t deadline_ms;
    uint64_t host_player; /* who waits for the arriving player */
    struct mm_record rec; /* the arriving player's record, moved here */
};

struct mm_seats {
    struct mm_seat s[MM_MAX_SEATS];
};

/* Returns 0 or -ENOSPC (or -EINVAL for a token 0 or already in use). */
int mm_seat_reserve(struct mm_seats *t, uint64_t token, uint64_t deadline_ms,
                    uint64_t host_player, const struct mm_record *rec);
/* The player arrived with 'token': the seat is used up (a second use is
   refused) and its record and host player are copied out. Returns 0,
   -ENOENT (unknown or used), or -ETIMEDOUT (past the deadline: the seat
   is gone too; the forfeit is the caller's). */
int mm_seat_claim(struct mm_seats *t, uint64_t token, uint64_t now_ms,
                  struct mm_seat *out);
/* Drops the seat of 'token' (unhost). Returns 0 or -ENOENT. */
int mm_seat_drop(struct mm_seats *t, uint64_t token);
/* Removes every seat past its deadline, calling forfeit for each (the
   player never arrived: the host player wins). Returns how many. */
int mm_seats_expire(struct mm_seats *t, uint64_t now_ms,
                    void (*forfeit)(void *ctx, const struct mm_seat *s),
                    void *ctx);

#endif
