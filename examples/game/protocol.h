/*
 * The game protocol of ringport-game (docs/protocol.md, "Game messages"):
 * message types, error codes, limits, and the encoders and decoders that
 * both the server and the bots (ringport-bench game) compile in.
 *
 * Plain C on byte spans, with no ringport API, so the load tester keeps
 * its rule of depending on nothing it measures. Every field is
 * little-endian; strings are a u16 length then the bytes (as rp_packet
 * writes them), so a server may equally read them with rp_reader.
 *
 * gm_decode() judges a payload in three steps, and the server acts on
 * each result differently (docs/protocol.md has the table):
 *   -ENOMSG   type unknown to the protocol      -> error, then disconnect
 *   -EBADMSG  payload the wrong length          -> error, then disconnect
 *   -ERANGE   a field out of its range          -> error packet, stays
 * Semantics (a name taken, a message for another content, ...) are the
 * contents' business.
 */
#ifndef RINGPORT_GAME_PROTOCOL_H
#define RINGPORT_GAME_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Client -> server. */
enum gm_type {
    GM_LOGIN = 1,          /* lobby: str name */
    GM_CHAT = 2,           /* lobby: str text */
    GM_PVP_QUEUE = 3,      /* lobby: (empty) */
    GM_DUNGEON_ENTER = 4,  /* lobby: u8 party_size 1..4 */
    GM_PVP_MOVE = 5,       /* pvp: i8 dx, i8 dy, each -1..1 */
    GM_PVP_ATTACK = 6,     /* pvp: (empty) */
    GM_DUNGEON_ATTACK = 7, /* dungeon: u8 monster index */
    GM_SPECTATE = 8,       /* lobby, first message: (empty); watch only */
    GM_CLIENT_LAST = GM_SPECTATE,

    /* Server -> client. */
    GM_ERROR = 100,          /* u16 code, u16 about (the type that caused it) */
    GM_LOGIN_OK = 101,       /* u32 player_id, u32 gold */
    GM_CHAT_MSG = 102,       /* u32 channel, str from, str text */
    GM_PVP_QUEUED = 103,     /* (empty) */
    GM_MATCH_START = 104,    /* u32 room, u8 side, str opponent, fighter[2] */
    GM_PVP_STATE = 105,      /* u32 room, u32 tick, fighter[2] */
    GM_MATCH_END = 106,      /* u32 room, u8 winner, u8 reason */
    GM_LOBBY_ENTER = 107,    /* u32 gold, u32 wins */
    GM_DUNGEON_QUEUED = 108, /* u8 party_size */
    GM_DUNGEON_START = 109,  /* u32 id, u8 you, u8 players, u8 monsters,
                                u16 monster_hp */
    GM_DUNGEON_STATE = 110,  /* u32 id, u32 tick, u8 nm, u16 hp[nm], u8 np,
                                u16 hp[np] */
    GM_DUNGEON_END = 111,    /* u32 id, u8 result, u32 gold */
    GM_SPECTATOR_STATE = 112, /* see struct gm_spectator_state */
    GM_SERVER_LAST = GM_SPECTATOR_STATE,
};

enum gm_error {
    GM_ERR_BAD_NAME = 1,      /* not 3..16 of [A-Za-z0-9_] */
    GM_ERR_NAME_TAKEN = 2,    /* another session holds it */
    GM_ERR_NOT_LOGGED_IN = 3, /* lobby action before LOGIN */
    GM_ERR_ALREADY_LOGGED_IN = 4,
    GM_ERR_WRONG_CONTENT = 5, /* valid type, but the session is elsewhere */
    GM_ERR_BAD_FIELD = 6,     /* a field out of range (-ERANGE) */
    GM_ERR_BAD_TEXT = 7,      /* chat text empty or over GM_TEXT_MAX */
    GM_ERR_ALREADY_QUEUED = 8,
    GM_ERR_MALFORMED = 9,        /* wrong length: the session is closed */
    GM_ERR_UNKNOWN_TYPE = 10,    /* not a client type: the session is closed */
    GM_ERR_SPECTATORS_FULL = 11, /* SPECTATE past the spectator limit */
};

#define GM_NAME_MIN 3
#define GM_NAME_MAX 16
#define GM_TEXT_MAX 200
#define GM_PARTY_MAX 4
#define GM_MONSTERS_MAX 8
#define GM_HP_GONE 0xFFFFu /* dungeon state: the member has left */
/* The largest payload any message here needs (SPECTATOR_STATE, at most
   858 bytes with every arena and run listed). */
#define GM_PAYLOAD_MAX 1024
/* A SPECTATOR_STATE lists this many PVP arenas and dungeon runs at most
   (the oldest ones); it also carries how many there are in all. */
#define GM_SPECT_ARENAS 24
#define GM_SPECT_RUNS 16

enum gm_end_reason {
    GM_END_KO = 0,            /* a fighter reached 0 hp */
    GM_END_OPPONENT_LEFT = 1, /* the other disconnected (or never came) */
    GM_END_TIME = 2,          /* the time limit: more hp wins */
};
#define GM_DRAW 255 /* MATCH_END winner when nobody won */

enum gm_dungeon_result { GM_DUNGEON_CLEARED = 0, GM_DUNGEON_WIPED = 1 };

struct gm_fighter {
    int16_t x, y;
    uint16_t hp;
};

/* One PVP arena as a spectator sees it. */
struct gm_spect_arena {
    uint32_t room, tick;
    struct gm_fighter f[2];
};

/* One dungeon run in progress: members still in it, monsters' hp. */
struct gm_spect_run {
    uint32_t id;
    uint8_t players, nm;
    uint16_t mhp[GM_MONSTERS_MAX];
};

/*
 * SPECTATOR_STATE, on the wire in this order: u32 seq, u16 lobby, u16 pvp,
 * u16 dungeon, u16 spectators, u32 msgs_in, u32 msgs_out, u16 arenas,
 * u8 na, arena[na] (u32 room, u32 tick, fighter[2]), u16 runs, u8 nr,
 * run[nr] (u32 id, u8 players, u8 nm, u16 monster_hp[nm]).
 */
struct gm_spectator_state {
    uint32_t seq;                 /* +1 per state the server composes */
    uint16_t lobby, pvp, dungeon; /* players online in each content */
    uint16_t spectators;          /* watching now */
    uint32_t msgs_in, msgs_out;   /* server-wide messages per second */
    uint16_t arenas, runs;        /* in progress, listed or not */
    uint8_t na, nr;               /* listed: <= GM_SPECT_ARENAS / _RUNS */
    struct gm_spect_arena arena[GM_SPECT_ARENAS];
    struct gm_spect_run run[GM_SPECT_RUNS];
};

/* A string inside a decoded payload: a view, valid while the payload is. */
struct gm_str {
    const char *p;
    uint16_t len;
};

/* One decoded message. Only the member named by 'type' is meaningful. */
struct gm_msg {
    uint16_t type;
    union {
        struct gm_str login; /* name */
        struct gm_str chat;  /* text */
        uint8_t party_size;  /* DUNGEON_ENTER, DUNGEON_QUEUED */
        struct {
            int8_t dx, dy;
        } move;
        uint8_t target; /* DUNGEON_ATTACK */
        struct {
            uint16_t code, about;
        } error;
        struct {
            uint32_t player_id, gold;
        } login_ok;
        struct {
            uint32_t channel;
            struct gm_str from, text;
        } chat_msg;
        struct {
            uint32_t room;
            uint8_t side;
            struct gm_str opponent;
            struct gm_fighter f[2];
        } match_start;
        struct {
            uint32_t room, tick;
            struct gm_fighter f[2];
        } pvp_state;
        struct {
            uint32_t room;
            uint8_t winner, reason;
        } match_end;
        struct {
            uint32_t gold, wins;
        } lobby_enter;
        struct {
            uint32_t id;
            uint8_t you, players, monsters;
            uint16_t monster_hp;
        } dungeon_start;
        struct {
            uint32_t id, tick;
            uint8_t nm, np;
            uint16_t mhp[GM_MONSTERS_MAX];
            uint16_t php[GM_PARTY_MAX];
        } dungeon_state;
        struct {
            uint32_t id;
            uint8_t result;
            uint32_t gold;
        } dungeon_end;
        struct gm_spectator_state spectator_state;
    } u;
};

/* True for the types a client may send (1..GM_CLIENT_LAST). */
bool gm_is_client_type(uint16_t type);
/* "login", "pvp_state", ...; "unknown" otherwise. */
const char *gm_type_name(uint16_t type);
const char *gm_error_name(uint16_t code);

/*
 * Decodes the payload of a frame of 'type' into 'out' (strings point into
 * 'p'). Returns 0, -ENOMSG (unknown type), -EBADMSG (too short, trailing
 * bytes, a count over its array) or -ERANGE (a field out of range; 'out'
 * is filled as far as read). Never reads outside p[0..len).
 */
int gm_decode(uint16_t type, const uint8_t *p, size_t len, struct gm_msg *out);

/*
 * Encodes 'm' as a payload into buf[0..cap). Returns the payload length,
 * or -ENOBUFS (cap too small), -EINVAL (unknown type or a string over its
 * limit). Encoding does not check ranges: tests use it to build bad input.
 */
int gm_encode(const struct gm_msg *m, uint8_t *buf, size_t cap);

/* The frame (4-byte header + payload) of 'm' into buf; its length or
   -errno as gm_encode. */
int gm_encode_frame(const struct gm_msg *m, uint8_t *buf, size_t cap);

static inline struct gm_str gm_str_of(const char *s, size_t len)
{
    struct gm_str v = {s, (uint16_t)len};
    return v;
}

#endif
