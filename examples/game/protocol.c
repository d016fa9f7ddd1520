/*
 * Encoding and decoding of the game messages (protocol.h). A cursor over a
 * byte span with a sticky failure flag on each side, so a run of fields is
 * written or read and checked once, as rp_packet and rp_reader do.
 */
#include "protocol.h"

#include <errno.h>
#include <string.h>

struct wr {
    uint8_t *p;
    size_t len, cap;
    bool failed;
};

struct rd {
    const uint8_t *p;
    size_t pos, len;
    bool failed;
};

static void put(struct wr *w, const void *src, size_t n)
{
    if (w->failed || w->cap - w->len < n) {
        w->failed = true;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u8(struct wr *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u16(struct wr *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(w, b, 2);
}

static void put_u32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};
    put(w, b, 4);
}

static void put_str(struct wr *w, struct gm_str s)
{
    put_u16(w, s.len);
    put(w, s.p, s.len);
}

static void put_fighters(struct wr *w, const struct gm_fighter *f)
{
    for (int i = 0; i < 2; i++) {
        put_u16(w, (uint16_t)f[i].x);
        put_u16(w, (uint16_t)f[i].y);
        put_u16(w, f[i].hp);
    }
}

static const uint8_t *get(struct rd *r, size_t n)
{
    if (r->failed || r->len - r->pos < n) {
        r->failed = true;
        r->pos = r->len;
        return NULL;
    }
    const uint8_t *at = r->p + r->pos;
    r->pos += n;
    return at;
}

static uint8_t get_u8(struct rd *r)
{
    const uint8_t *b = get(r, 1);
    return b ? b[0] : 0;
}

static uint16_t get_u16(struct rd *r)
{
    const uint8_t *b = get(r, 2);
    return b ? (uint16_t)(b[0] | b[1] << 8) : 0;
}

static uint32_t get_u32(struct rd *r)
{
    const uint8_t *b = get(r, 4);
    return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24
             : 0;
}

static struct gm_str get_str(struct rd *r)
{
    struct gm_str s = {"", 0};
    uint16_t n = get_u16(r);
    const uint8_t *b = get(r, n);
    if (b) {
        s.p = (const char *)b;
        s.len = n;
    }
    return s;
}

static void get_fighters(struct rd *r, struct gm_fighter *f)
{
    for (int i = 0; i < 2; i++) {
        f[i].x = (int16_t)get_u16(r);
        f[i].y = (int16_t)get_u16(r);
        f[i].hp = get_u16(r);
    }
}

/* SPECTATOR_STATE: counts over their arrays are -1 (EBADMSG / EINVAL). */
static int get_spectator_state(struct rd *r, struct gm_spectator_state *s)
{
    s->seq = get_u32(r);
    s->lobby = get_u16(r);
    s->pvp = get_u16(r);
    s->dungeon = get_u16(r);
    s->spectators = get_u16(r);
    s->msgs_in = get_u32(r);
    s->msgs_out = get_u32(r);
    s->arenas = get_u16(r);
    s->na = get_u8(r);
    if (s->na > GM_SPECT_ARENAS)
        return -1;
    for (unsigned i = 0; i < s->na; i++) {
        s->arena[i].room = get_u32(r);
        s->arena[i].tick = get_u32(r);
        get_fighters(r, s->arena[i].f);
    }
    s->runs = get_u16(r);
    s->nr = get_u8(r);
    if (s->nr > GM_SPECT_RUNS)
        return -1;
    for (unsigned i = 0; i < s->nr; i++) {
        struct gm_spect_run *run = &s->run[i];
        run->id = get_u32(r);
        run->players = get_u8(r);
        run->nm = get_u8(r);
        if (run->nm > GM_MONSTERS_MAX)
            return -1;
        for (unsigned k = 0; k < run->nm; k++)
            run->mhp[k] = get_u16(r);
    }
    return 0;
}

static int put_spectator_state(struct wr *w, const struct gm_spectator_state *s)
{
    if (s->na > GM_SPECT_ARENAS || s->nr > GM_SPECT_RUNS)
        return -1;
    put_u32(w, s->seq);
    put_u16(w, s->lobby);
    put_u16(w, s->pvp);
    put_u16(w, s->dungeon);
    put_u16(w, s->spectators);
    put_u32(w, s->msgs_in);
    put_u32(w, s->msgs_out);
    put_u16(w, s->arenas);
    put_u8(w, s->na);
    for (unsigned i = 0; i < s->na; i++) {
        put_u32(w, s->arena[i].room);
        put_u32(w, s->arena[i].tick);
        put_fighters(w, s->arena[i].f);
    }
    put_u16(w, s->runs);
    put_u8(w, s->nr);
    for (unsigned i = 0; i < s->nr; i++) {
        const struct gm_spect_run *run = &s->run[i];
        if (run->nm > GM_MONSTERS_MAX)
            return -1;
        put_u32(w, run->id);
        put_u8(w, run->players);
        put_u8(w, run->nm);
        for (unsigned k = 0; k < run->nm; k++)
            put_u16(w, run->mhp[k]);
    }
    return 0;
}

bool gm_is_client_type(uint16_t type)
{
    return type >= GM_LOGIN && type <= GM_CLIENT_LAST;
}

const char *gm_type_name(uint16_t type)
{
    switch (type) {
    case GM_LOGIN: return "login";
    case GM_CHAT: return "chat";
    case GM_PVP_QUEUE: return "pvp_queue";
    case GM_DUNGEON_ENTER: return "dungeon_enter";
    case GM_PVP_MOVE: return "pvp_move";
    case GM_PVP_ATTACK: return "pvp_attack";
    case GM_DUNGEON_ATTACK: return "dungeon_attack";
    case GM_SPECTATE: return "spectate";
    case GM_ERROR: return "error";
    case GM_LOGIN_OK: return "login_ok";
    case GM_CHAT_MSG: return "chat_msg";
    case GM_PVP_QUEUED: return "pvp_queued";
    case GM_MATCH_START: return "match_start";
    case GM_PVP_STATE: return "pvp_state";
    case GM_MATCH_END: return "match_end";
    case GM_LOBBY_ENTER: return "lobby_enter";
    case GM_DUNGEON_QUEUED: return "dungeon_queued";
    case GM_DUNGEON_START: return "dungeon_start";
    case GM_DUNGEON_STATE: return "dungeon_state";
    case GM_DUNGEON_END: return "dungeon_end";
    case GM_SPECTATOR_STATE: return "spectator_state";
    }
    return "unknown";
}

const char *gm_error_name(uint16_t code)
{
    switch (code) {
    case GM_ERR_BAD_NAME: return "bad_name";
    case GM_ERR_NAME_TAKEN: return "name_taken";
    case GM_ERR_NOT_LOGGED_IN: return "not_logged_in";
    case GM_ERR_ALREADY_LOGGED_IN: return "already_logged_in";
    case GM_ERR_WRONG_CONTENT: return "wrong_content";
    case GM_ERR_BAD_FIELD: return "bad_field";
    case GM_ERR_BAD_TEXT: return "bad_text";
    case GM_ERR_ALREADY_QUEUED: return "already_queued";
    case GM_ERR_MALFORMED: return "malformed";
    case GM_ERR_UNKNOWN_TYPE: return "unknown_type";
    case GM_ERR_SPECTATORS_FULL: return "spectators_full";
    }
    return "unknown";
}

int gm_decode(uint16_t type, const uint8_t *p, size_t len, struct gm_msg *out)
{
    struct rd r = {p, 0, len, false};
    bool range_ok = true;
    memset(out, 0, sizeof *out);
    out->type = type;
    switch (type) {
    case GM_LOGIN: out->u.login = get_str(&r); break;
    case GM_CHAT: out->u.chat = get_str(&r); break;
    case GM_PVP_QUEUE:
    case GM_PVP_ATTACK:
    case GM_SPECTATE:
    case GM_PVP_QUEUED: break;
    case GM_DUNGEON_ENTER:
    case GM_DUNGEON_QUEUED:
        out->u.party_size = get_u8(&r);
        range_ok = out->u.party_size >= 1 && out->u.party_size <= GM_PARTY_MAX;
        break;
    case GM_PVP_MOVE:
        out->u.move.dx = (int8_t)get_u8(&r);
        out->u.move.dy = (int8_t)get_u8(&r);
        range_ok = out->u.move.dx >= -1 && out->u.move.dx <= 1 &&
                   out->u.move.dy >= -1 && out->u.move.dy <= 1;
        break;
    case GM_DUNGEON_ATTACK:
        out->u.target = get_u8(&r);
        range_ok = out->u.target < GM_MONSTERS_MAX;
        break;
    case GM_ERROR:
        out->u.error.code = get_u16(&r);
        out->u.error.about = get_u16(&r);
        break;
    case GM_LOGIN_OK:
        out->u.login_ok.player_id = get_u32(&r);
        out->u.login_ok.gold = get_u32(&r);
        break;
    case GM_CHAT_MSG:
        out->u.chat_msg.channel = get_u32(&r);
        out->u.chat_msg.from = get_str(&r);
        out->u.chat_msg.text = get_str(&r);
        break;
    case GM_MATCH_START:
        out->u.match_start.room = get_u32(&r);
        out->u.match_start.side = get_u8(&r);
        out->u.match_start.opponent = get_str(&r);
        get_fighters(&r, out->u.match_start.f);
        range_ok = out->u.match_start.side <= 1;
        break;
    case GM_PVP_STATE:
        out->u.pvp_state.room = get_u32(&r);
        out->u.pvp_state.tick = get_u32(&r);
        get_fighters(&r, out->u.pvp_state.f);
        break;
    case GM_MATCH_END:
        out->u.match_end.room = get_u32(&r);
        out->u.match_end.winner = get_u8(&r);
        out->u.match_end.reason = get_u8(&r);
        range_ok = out->u.match_end.reason <= GM_END_TIME;
        break;
    case GM_LOBBY_ENTER:
        out->u.lobby_enter.gold = get_u32(&r);
        out->u.lobby_enter.wins = get_u32(&r);
        break;
    case GM_DUNGEON_START:
        out->u.dungeon_start.id = get_u32(&r);
        out->u.dungeon_start.you = get_u8(&r);
        out->u.dungeon_start.players = get_u8(&r);
        out->u.dungeon_start.monsters = get_u8(&r);
        out->u.dungeon_start.monster_hp = get_u16(&r);
        range_ok = out->u.dungeon_start.players <= GM_PARTY_MAX &&
                   out->u.dungeon_start.monsters <= GM_MONSTERS_MAX &&
                   out->u.dungeon_start.you < out->u.dungeon_start.players;
        break;
    case GM_DUNGEON_STATE: {
        __typeof__(out->u.dungeon_state) *s = &out->u.dungeon_state;
        s->id = get_u32(&r);
        s->tick = get_u32(&r);
        s->nm = get_u8(&r);
        if (s->nm > GM_MONSTERS_MAX)
            return -EBADMSG;
        for (unsigned i = 0; i < s->nm; i++)
            s->mhp[i] = get_u16(&r);
        s->np = get_u8(&r);
        if (s->np > GM_PARTY_MAX)
            return -EBADMSG;
        for (unsigned i = 0; i < s->np; i++)
            s->php[i] = get_u16(&r);
        break;
    }
    case GM_DUNGEON_END:
        out->u.dungeon_end.id = get_u32(&r);
        out->u.dungeon_end.result = get_u8(&r);
        out->u.dungeon_end.gold = get_u32(&r);
        range_ok = out->u.dungeon_end.result <= GM_DUNGEON_WIPED;
        break;
    case GM_SPECTATOR_STATE:
        if (get_spectator_state(&r, &out->u.spectator_state) < 0)
            return -EBADMSG;
        break;
    default: return -ENOMSG;
    }
    if (r.failed || r.pos != r.len)
        return -EBADMSG;
    return range_ok ? 0 : -ERANGE;
}

int gm_encode(const struct gm_msg *m, uint8_t *buf, size_t cap)
{
    struct wr w = {buf, 0, cap, false};
    switch (m->type) {
    case GM_LOGIN: put_str(&w, m->u.login); break;
    case GM_CHAT: put_str(&w, m->u.chat); break;
    case GM_PVP_QUEUE:
    case GM_PVP_ATTACK:
    case GM_SPECTATE:
    case GM_PVP_QUEUED: break;
    case GM_DUNGEON_ENTER:
    case GM_DUNGEON_QUEUED: put_u8(&w, m->u.party_size); break;
    case GM_PVP_MOVE:
        put_u8(&w, (uint8_t)m->u.move.dx);
        put_u8(&w, (uint8_t)m->u.move.dy);
        break;
    case GM_DUNGEON_ATTACK: put_u8(&w, m->u.target); break;
    case GM_ERROR:
        put_u16(&w, m->u.error.code);
        put_u16(&w, m->u.error.about);
        break;
    case GM_LOGIN_OK:
        put_u32(&w, m->u.login_ok.player_id);
        put_u32(&w, m->u.login_ok.gold);
        break;
    case GM_CHAT_MSG:
        put_u32(&w, m->u.chat_msg.channel);
        put_str(&w, m->u.chat_msg.from);
        put_str(&w, m->u.chat_msg.text);
        break;
    case GM_MATCH_START:
        put_u32(&w, m->u.match_start.room);
        put_u8(&w, m->u.match_start.side);
        put_str(&w, m->u.match_start.opponent);
        put_fighters(&w, m->u.match_start.f);
        break;
    case GM_PVP_STATE:
        put_u32(&w, m->u.pvp_state.room);
        put_u32(&w, m->u.pvp_state.tick);
        put_fighters(&w, m->u.pvp_state.f);
        break;
    case GM_MATCH_END:
        put_u32(&w, m->u.match_end.room);
        put_u8(&w, m->u.match_end.winner);
        put_u8(&w, m->u.match_end.reason);
        break;
    case GM_LOBBY_ENTER:
        put_u32(&w, m->u.lobby_enter.gold);
        put_u32(&w, m->u.lobby_enter.wins);
        break;
    case GM_DUNGEON_START:
        put_u32(&w, m->u.dungeon_start.id);
        put_u8(&w, m->u.dungeon_start.you);
        put_u8(&w, m->u.dungeon_start.players);
        put_u8(&w, m->u.dungeon_start.monsters);
        put_u16(&w, m->u.dungeon_start.monster_hp);
        break;
    case GM_DUNGEON_STATE: {
        const __typeof__(m->u.dungeon_state) *s = &m->u.dungeon_state;
        if (s->nm > GM_MONSTERS_MAX || s->np > GM_PARTY_MAX)
            return -EINVAL;
        put_u32(&w, s->id);
        put_u32(&w, s->tick);
        put_u8(&w, s->nm);
        for (unsigned i = 0; i < s->nm; i++)
            put_u16(&w, s->mhp[i]);
        put_u8(&w, s->np);
        for (unsigned i = 0; i < s->np; i++)
            put_u16(&w, s->php[i]);
        break;
    }
    case GM_DUNGEON_END:
        put_u32(&w, m->u.dungeon_end.id);
        put_u8(&w, m->u.dungeon_end.result);
        put_u32(&w, m->u.dungeon_end.gold);
        break;
    case GM_SPECTATOR_STATE:
        if (put_spectator_state(&w, &m->u.spectator_state) < 0)
            return -EINVAL;
        break;
    default: return -EINVAL;
    }
    return w.failed ? -ENOBUFS : (int)w.len;
}

int gm_encode_frame(const struct gm_msg *m, uint8_t *buf, size_t cap)
{
    if (cap < 4)
        return -ENOBUFS;
    int n = gm_encode(m, buf + 4, cap - 4);
    if (n < 0)
        return n;
    buf[0] = (uint8_t)n;
    buf[1] = (uint8_t)(n >> 8);
    buf[2] = (uint8_t)m->type;
    buf[3] = (uint8_t)(m->type >> 8);
    return n + 4;
}
