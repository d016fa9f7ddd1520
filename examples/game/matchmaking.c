/*
 * Cross-shard matchmaking: the PVP queue of one shard, its offer/commit
 * protocol with the other shards, the seats a host keeps, and the codec of
 * the protocol's NATS messages (matchmaking.h has the protocol and the
 * layout). Nothing here knows NATS or the engine: the cluster group feeds
 * it decoded messages and the time, and acts on its callbacks.
 *
 * Invariant: a local ticket is in exactly one state; only a message that
 * names the offer the ticket is in (leader shard, epoch, offer id, both
 * tickets) moves an OFFERING or PROMISED ticket on, so a duplicate, stray
 * or late message can never match a ticket twice.
 */
#include "matchmaking.h"

#include "rules.h"

#include <errno.h>
#include <string.h>

int mm_mode_parse(const char *s, enum mm_mode *out)
{
    static const char *names[] = {"local", "spill", "global"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum mm_mode)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *mm_mode_name(enum mm_mode m)
{
    return m == MM_LOCAL ? "local" : m == MM_SPILL ? "spill" : "global";
}

/* ---- codec ---- */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static bool host_valid(const char *h, size_t n)
{
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* The rules every message obeys besides its layout: ids that must be set
   are, an ADVERT goes to all and names no offer, and the others go to one
   shard about one offer between two tickets. */
static bool msg_valid(const struct mm_msg *m)
{
    if (m->kind < MM_ADVERT || m->kind > MM_REJECT || m->target_ticket == 0 ||
        m->from == MM_ALL)
        return false;
    if (m->kind == MM_ADVERT)
        return m->to == MM_ALL && m->offer == 0 && m->leader_ticket == 0;
    if (m->to == MM_ALL || m->to == m->from || m->offer == 0 ||
        m->leader_ticket == 0)
        return false;
    if (m->kind == MM_ACCEPT)
        return gm_name_valid(m->rec.name, m->rec.name_len);
    if (m->kind == MM_COMMIT)
        return m->token != 0 && m->port != 0 &&
               host_valid(m->host, m->host_len);
    return true;
}

int mm_msg_encode(const struct mm_msg *m, uint8_t *out, size_t cap)
{
    if (!msg_valid(m) || cap < MM_WIRE_MAX)
        return -EINVAL;
    uint8_t *p = out;
    *p++ = MM_WIRE_VERSION;
    *p++ = m->kind;
    put_le(p, m->from, 4), p += 4;
    put_le(p, m->epoch, 8), p += 8;
    put_le(p, m->to, 4), p += 4;
    put_le(p, m->offer, 8), p += 8;
    put_le(p, m->leader_ticket, 8), p += 8;
    put_le(p, m->target_ticket, 8), p += 8;
    if (m->kind == MM_ACCEPT) {
        *p++ = m->rec.name_len;
        memcpy(p, m->rec.name, m->rec.name_len), p += m->rec.name_len;
        put_le(p, m->rec.gold, 4), p += 4;
        put_le(p, m->rec.wins, 4), p += 4;
    } else if (m->kind == MM_COMMIT) {
        put_le(p, m->token, 8), p += 8;
        *p++ = m->host_len;
        memcpy(p, m->host, m->host_len), p += m->host_len;
        put_le(p, m->port, 2), p += 2;
    }
    return (int)(p - out);
}

int mm_msg_decode(const uint8_t *p, size_t n, struct mm_msg *out)
{
    const uint8_t *end = p + n;
    memset(out, 0, sizeof *out);
    if (n < MM_HEAD_LEN || p[0] != MM_WIRE_VERSION)
        return -EBADMSG;
    p++;
    out->kind = *p++;
    out->from = (uint32_t)get_le(p, 4), p += 4;
    out->epoch = get_le(p, 8), p += 8;
    out->to = (uint32_t)get_le(p, 4), p += 4;
    out->offer = get_le(p, 8), p += 8;
    out->leader_ticket = get_le(p, 8), p += 8;
    out->target_ticket = get_le(p, 8), p += 8;
    if (out->kind == MM_ACCEPT) {
        if (end - p < 1)
            return -EBADMSG;
        out->rec.name_len = *p++;
        if (out->rec.name_len >= sizeof out->rec.name ||
            (size_t)(end - p) != out->rec.name_len + 8u)
            return -EBADMSG;
        memcpy(out->rec.name, p, out->rec.name_len), p += out->rec.name_len;
        out->rec.gold = (uint32_t)get_le(p, 4), p += 4;
        out->rec.wins = (uint32_t)get_le(p, 4), p += 4;
    } else if (out->kind == MM_COMMIT) {
        if (end - p < 9)
            return -EBADMSG;
        out->token = get_le(p, 8), p += 8;
        out->host_len = *p++;
        if (out->host_len >= sizeof out->host ||
            (size_t)(end - p) != out->host_len + 2u)
            return -EBADMSG;
        memcpy(out->host, p, out->host_len), p += out->host_len;
        out->port = (uint16_t)get_le(p, 2), p += 2;
    }
    if (p != end || !msg_valid(out))
        return -EBADMSG;
    return 0;
}

/* ---- the queue ---- */

void mm_init(struct mm *m, const struct mm_config *cfg,
             const struct mm_ops *ops, void *ctx)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->ops = ops;
    m->ctx = ctx;
}

static bool is_free_to_match(const struct mm_ticket *t)
{
    return t->state == MM_WAITING || t->state == MM_ADVERTISED;
}

static struct mm_ticket *by_id(struct mm *m, uint64_t id)
{
    for (size_t i = 0; i < MM_MAX_LOCAL; i++)
        if (m->local[i].state != MM_FREE && m->local[i].id == id)
            return &m->local[i];
    return NULL;
}

static struct mm_ticket *by_player(struct mm *m, uint64_t player)
{
    for (size_t i = 0; i < MM_MAX_LOCAL; i++)
        if (m->local[i].state != MM_FREE && m->local[i].player == player)
            return &m->local[i];
    return NULL;
}

/* The oldest ticket free to match other than 'not'. */
static struct mm_ticket *oldest_free(struct mm *m,
                                     const struct mm_ticket * not )
{
    struct mm_ticket *best = NULL;
    for (size_t i = 0; i < MM_MAX_LOCAL; i++) {
        struct mm_ticket *t = &m->local[i];
        if (t != not &&is_free_to_match(t) && (!best || t->id < best->id))
            best = t;
    }
    return best;
}

size_t mm_queued(const struct mm *m)
{
    size_t n = 0;
    for (size_t i = 0; i < MM_MAX_LOCAL; i++)
        n += m->local[i].state != MM_FREE;
    return n;
}

static int64_t add_ticket(struct mm *m, uint64_t player, uint64_t now_ms,
                          uint8_t state)
{
    for (size_t i = 0; i < MM_MAX_LOCAL; i++) {
        struct mm_ticket *t = &m->local[i];
        if (t->state != MM_FREE)
            continue;
        memset(t, 0, sizeof *t);
        t->id = ++m->next_ticket;
        t->player = player;
        t->state = state;
        t->queued_ms = now_ms;
        return (int64_t)t->id;
    }
    return -ENOSPC;
}

int64_t mm_enqueue(struct mm *m, uint64_t player, uint64_t now_ms)
{
    if (by_player(m, player))
        return -EALREADY;
    struct mm_ticket *o = oldest_free(m, NULL);
    if (o) {
        uint64_t other = o->player;
        o->state = MM_FREE;
        m->st.local_matches++;
        m->ops->local_match(m->ctx, other, player);
        return 0;
    }
    return add_ticket(m, player, now_ms,
                      m->cfg.mode == MM_GLOBAL ? MM_ADVERTISED : MM_WAITING);
}

int mm_cancel(struct mm *m, uint64_t player)
{
    struct mm_ticket *t = by_player(m, player);
    if (!t)
        return -ENOENT;
    t->state = MM_FREE;
    return 0;
}

/* ---- the protocol ---- */

static void send_msg(struct mm *m, struct mm_msg *msg)
{
    msg->from = m->cfg.shard;
    msg->epoch = m->cfg.epoch;
    m->ops->send(m->ctx, msg);
}

/* An answer to 'req' about the same offer and tickets. */
static void answer(struct mm *m, const struct mm_msg *req, uint8_t kind)
{
    struct mm_msg a = {.kind = kind,
                       .to = req->from,
                       .offer = req->offer,
                       .leader_ticket = req->leader_ticket,
                       .target_ticket = req->target_ticket};
    send_msg(m, &a);
}

static struct mm_remote *remote_find(struct mm *m, uint32_t shard,
                                     uint64_t epoch, uint64_t ticket)
{
    for (size_t i = 0; i < MM_MAX_REMOTE; i++) {
        struct mm_remote *r = &m->remote[i];
        if (r->seen_ms && r->shard == shard && r->epoch == epoch &&
            r->ticket == ticket)
            return r;
    }
    return NULL;
}

static void remote_forget(struct mm *m, uint32_t shard, uint64_t epoch,
                          uint64_t ticket)
{
    struct mm_remote *r = remote_find(m, shard, epoch, ticket);
    if (r)
        r->seen_ms = 0;
}

static void on_advert(struct mm *m, const struct mm_msg *msg, uint64_t now)
{
    struct mm_remote *r =
        remote_find(m, msg->from, msg->epoch, msg->target_ticket);
    struct mm_remote *slot = NULL;
    for (size_t i = 0; i < MM_MAX_REMOTE && !r; i++) {
        struct mm_remote *x = &m->remote[i];
        /* A shard that started again: its old run's tickets are gone. */
        if (x->seen_ms && x->shard == msg->from && x->epoch != msg->epoch)
            x->seen_ms = 0;
        if (!x->seen_ms && !slot)
            slot = x;
    }
    if (!r && slot) {
        r = slot;
        r->shard = msg->from;
        r->epoch = msg->epoch;
        r->ticket = msg->target_ticket;
        r->not_before_ms = 0;
    }
    if (r)
        r->seen_ms = now ? now : 1;
}

static void on_offer(struct mm *m, const struct mm_msg *msg, uint64_t now)
{
    struct mm_ticket *t = by_id(m, msg->target_ticket);
    bool take = false;
    if (t && m->cfg.mode != MM_LOCAL) {
        if (t->state == MM_ADVERTISED)
            take = true;
        /* Two leaders at once: the lower shard leads, on both sides. Our
           own offer is then left to be answered ABORT if accepted. */
        else if (t->state == MM_OFFERING && msg->from < m->cfg.shard)
            take = true;
    }
    struct mm_msg a = {.kind = MM_ACCEPT,
                       .to = msg->from,
                       .offer = msg->offer,
                       .leader_ticket = msg->leader_ticket,
                       .target_ticket = msg->target_ticket};
    if (take && !m->ops->record(m->ctx, t->player, &a.rec)) {
        t->state = MM_FREE; /* the player is gone */
        take = false;
    }
    /* A record that could not go on the wire: decline, stay queued. */
    if (take && !gm_name_valid(a.rec.name, a.rec.name_len))
        take = false;
    if (!take) {
        m->st.declines++;
        answer(m, msg, MM_DECLINE);
        return;
    }
    t->state = MM_PROMISED;
    t->deadline_ms = now + m->cfg.promise_ms;
    t->peer_shard = msg->from;
    t->peer_epoch = msg->epoch;
    t->peer_ticket = msg->leader_ticket;
    t->offer = msg->offer;
    m->st.accepts++;
    send_msg(m, &a);
}

/* Is 't' in the offer that 'msg' answers, we being the leader? */
static bool our_offer(const struct mm_ticket *t, const struct mm_msg *msg)
{
    return t && t->state == MM_OFFERING && t->offer == msg->offer &&
           t->peer_shard == msg->from && t->peer_epoch == msg->epoch &&
           t->peer_ticket == msg->target_ticket;
}

static void remember_commit(struct mm *m, const struct mm_msg *msg,
                            uint64_t player, uint64_t token, uint64_t now)
{
    struct mm_commit *slot = NULL;
    for (size_t i = 0; i < MM_MAX_LOCAL; i++) {
        struct mm_commit *c = &m->committed[i];
        if (!c->token || c->until_ms <= now) {
            slot = c;
            break;
        }
    }
    if (!slot)
        return; /* full: a REJECT then finds nothing, and the seat expires */
    slot->peer_shard = msg->from;
    slot->offer = msg->offer;
    slot->player = player;
    slot->token = token;
    slot->until_ms = now + 2ull * m->cfg.promise_ms + m->cfg.offer_ms;
}

static void on_accept(struct mm *m, const struct mm_msg *msg, uint64_t now)
{
    struct mm_ticket *t = by_id(m, msg->leader_ticket);
    remote_forget(m, msg->from, msg->epoch, msg->target_ticket);
    if (!our_offer(t, msg)) {
        /* Too late (our offer timed out, or the ticket left or was
           matched otherwise): release the target's promise. */
        m->st.late_ignored++;
        m->st.aborts++;
        answer(m, msg, MM_ABORT);
        return;
    }
    uint64_t token = m->ops->host(m->ctx, t->player, &msg->rec, msg->from);
    if (token == 0) {
        t->state = MM_ADVERTISED;
        m->st.aborts++;
        answer(m, msg, MM_ABORT);
        return;
    }
    uint64_t player = t->player;
    t->state = MM_FREE;
    m->st.hosted++;
    m->st.commits++;
    remember_commit(m, msg, player, token, now);
    struct mm_msg c = {.kind = MM_COMMIT,
                       .to = msg->from,
                       .offer = msg->offer,
                       .leader_ticket = msg->leader_ticket,
                       .target_ticket = msg->target_ticket,
                       .token = token,
                       .port = m->cfg.port};
    c.host_len = (uint8_t)strnlen(m->cfg.host, sizeof c.host - 1);
    memcpy(c.host, m->cfg.host, c.host_len);
    send_msg(m, &c);
}

static void on_decline(struct mm *m, const struct mm_msg *msg, uint64_t now)
{
    struct mm_ticket *t = by_id(m, msg->leader_ticket);
    struct mm_remote *r =
        remote_find(m, msg->from, msg->epoch, msg->target_ticket);
    if (r)
        r->not_before_ms = now + m->cfg.offer_ms;
    if (our_offer(t, msg)) {
        m->st.declines++;
        t->state = MM_ADVERTISED;
    }
}

/* Is 't' promised to the offer 'msg' is about, we being the target? */
static bool our_promise(const struct mm_ticket *t, const struct mm_msg *msg)
{
    return t && t->state == MM_PROMISED && t->offer == msg->offer &&
           t->peer_shard == msg->from && t->peer_epoch == msg->epoch &&
           t->peer_ticket == msg->leader_ticket;
}

static bool moved_by(const struct mm *m, const struct mm_msg *msg)
{
    for (size_t i = 0; i < MM_MOVED_RING; i++) {
        const struct mm_moved *x = &m->moved[i];
        if (x->offer && x->offer == msg->offer && x->leader == msg->from &&
            x->epoch == msg->epoch)
            return true;
    }
    return false;
}

static void on_commit(struct mm *m, const struct mm_msg *msg)
{
    struct mm_ticket *t = by_id(m, msg->target_ticket);
    if (!our_promise(t, msg) && moved_by(m, msg)) {
        m->st.duplicates++; /* done already: the seat stays */
        return;
    }
    if (!our_promise(t, msg)) {
        /* A late commit: the promise timed out (the ticket may be queued
           or matched again) or the player left. Ignored; the leader
           drops its seat. */
        m->st.late_ignored++;
        m->st.rejects++;
        answer(m, msg, MM_REJECT);
        return;
    }
    uint64_t player = t->player;
    t->state = MM_FREE;
    m->st.moved++;
    m->moved[m->moved_next++ % MM_MOVED_RING] =
        (struct mm_moved){msg->from, msg->epoch, msg->offer};
    m->ops->move(m->ctx, player, msg->host, msg->port, msg->token);
}

static void on_abort(struct mm *m, const struct mm_msg *msg)
{
    struct mm_ticket *t = by_id(m, msg->target_ticket);
    if (our_promise(t, msg)) {
        m->st.aborts++;
        t->state = MM_ADVERTISED;
    }
}

static void on_reject(struct mm *m, const struct mm_msg *msg, uint64_t now)
{
    for (size_t i = 0; i < MM_MAX_LOCAL; i++) {
        struct mm_commit *c = &m->committed[i];
        if (c->token && c->peer_shard == msg->from && c->offer == msg->offer) {
            uint64_t player = c->player, token = c->token;
            c->token = 0;
            m->st.rejects++;
            /* Queued again first, so unhost may find it queued. */
            add_ticket(m, player, now, MM_ADVERTISED);
            m->ops->unhost(m->ctx, player, token);
            return;
        }
    }
}

void mm_receive(struct mm *m, const struct mm_msg *msg, uint64_t now_ms)
{
    if (msg->from == m->cfg.shard ||
        (msg->to != MM_ALL && msg->to != m->cfg.shard))
        return;
    switch (msg->kind) {
    case MM_ADVERT: on_advert(m, msg, now_ms); break;
    case MM_OFFER: on_offer(m, msg, now_ms); break;
    case MM_ACCEPT: on_accept(m, msg, now_ms); break;
    case MM_DECLINE: on_decline(m, msg, now_ms); break;
    case MM_COMMIT: on_commit(m, msg); break;
    case MM_ABORT: on_abort(m, msg); break;
    case MM_REJECT: on_reject(m, msg, now_ms); break;
    default: break;
    }
}

/* A remote ticket to offer to: advertised recently, not offered or
   declined lately, and not the target of another offer of ours. */
static struct mm_remote *pick_remote(struct mm *m, uint64_t now)
{
    for (size_t i = 0; i < MM_MAX_REMOTE; i++) {
        struct mm_remote *r = &m->remote[i];
        if (r->seen_ms && r->not_before_ms <= now)
            return r;
    }
    return NULL;
}

static void make_offers(struct mm *m, uint64_t now)
{
    for (;;) {
        struct mm_ticket *t = NULL;
        for (size_t i = 0; i < MM_MAX_LOCAL; i++) {
            struct mm_ticket *x = &m->local[i];
            if (x->state == MM_ADVERTISED && (!t || x->id < t->id))
                t = x;
        }
        struct mm_remote *r = t ? pick_remote(m, now) : NULL;
        if (!r)
            return;
        t->state = MM_OFFERING;
        t->deadline_ms = now + m->cfg.offer_ms;
        t->peer_shard = r->shard;
        t->peer_epoch = r->epoch;
        t->peer_ticket = r->ticket;
        t->offer = ++m->next_offer;
        r->not_before_ms = t->deadline_ms;
        m->st.offers++;
        struct mm_msg o = {.kind = MM_OFFER,
                           .to = r->shard,
                           .offer = t->offer,
                           .leader_ticket = t->id,
                           .target_ticket = r->ticket};
        send_msg(m, &o);
    }
}

void mm_tick(struct mm *m, uint64_t now)
{
    for (size_t i = 0; i < MM_MAX_LOCAL; i++) {
        struct mm_ticket *t = &m->local[i];
        if (t->state == MM_OFFERING && now >= t->deadline_ms) {
            m->st.offer_timeouts++;
            t->state = MM_ADVERTISED;
        } else if (t->state == MM_PROMISED && now >= t->deadline_ms) {
            m->st.promise_timeouts++;
            t->state = MM_ADVERTISED;
        } else if (t->state == MM_WAITING && m->cfg.mode == MM_SPILL &&
                   now - t->queued_ms >= m->cfg.spill_ms) {
            t->state = MM_ADVERTISED;
        } else if (t->state == MM_ADVERTISED && m->cfg.mode == MM_LOCAL) {
            t->state = MM_WAITING; /* never advertised in local mode */
        }
    }
    /* Two tickets free here again (an offer that came to nothing): they
       meet locally, the oldest first. */
    for (struct mm_ticket *a; (a = oldest_free(m, NULL));) {
        struct mm_ticket *b = oldest_free(m, a);
        if (!b)
            break;
        a->state = b->state = MM_FREE;
        m->st.local_matches++;
        m->ops->local_match(m->ctx, a->player, b->player);
    }
    for (size_t i = 0; i < MM_MAX_REMOTE; i++) {
        struct mm_remote *r = &m->remote[i];
        if (r->seen_ms && now - r->seen_ms >= m->cfg.ad_ttl_ms)
            r->seen_ms = 0; /* not advertised any more: gone, or shard dead */
    }
    for (size_t i = 0; i < MM_MAX_LOCAL; i++) {
        struct mm_commit *c = &m->committed[i];
        if (c->token && now >= c->until_ms)
            c->token = 0;
    }
    if (m->cfg.mode == MM_LOCAL)
        return;
    /* Each global ticket is advertised when it turns global, then every
       advert_ms while it stays free. */
    for (size_t i = 0; i < MM_MAX_LOCAL; i++) {
        struct mm_ticket *t = &m->local[i];
        if (t->state != MM_ADVERTISED ||
            (t->advert_ms && now - t->advert_ms < m->cfg.advert_ms))
            continue;
        t->advert_ms = now ? now : 1;
        struct mm_msg a = {
            .kind = MM_ADVERT, .to = MM_ALL, .target_ticket = t->id};
        send_msg(m, &a);
    }
    make_offers(m, now);
}

/* ---- seats ---- */

int mm_seat_reserve(struct mm_seats *t, uint64_t token, uint64_t deadline_ms,
                    uint64_t host_player, const struct mm_record *rec)
{
    struct mm_seat *slot = NULL;
    if (token == 0)
        return -EINVAL;
    for (size_t i = 0; i < MM_MAX_SEATS; i++) {
        if (t->s[i].token == token)
            return -EINVAL;
        if (!t->s[i].token && !slot)
            slot = &t->s[i];
    }
    if (!slot)
        return -ENOSPC;
    slot->token = token;
    slot->deadline_ms = deadline_ms;
    slot->host_player = host_player;
    slot->rec = *rec;
    return 0;
}

static struct mm_seat *seat_find(struct mm_seats *t, uint64_t token)
{
    for (size_t i = 0; token && i < MM_MAX_SEATS; i++)
        if (t->s[i].token == token)
            return &t->s[i];
    return NULL;
}

int mm_seat_claim(struct mm_seats *t, uint64_t token, uint64_t now_ms,
                  struct mm_seat *out)
{
    struct mm_seat *s = seat_find(t, token);
    if (!s)
        return -ENOENT;
    *out = *s;
    s->token = 0; /* single use, whatever the outcome */
    return now_ms > out->deadline_ms ? -ETIMEDOUT : 0;
}

int mm_seat_drop(struct mm_seats *t, uint64_t token)
{
    struct mm_seat *s = seat_find(t, token);
    if (!s)
        return -ENOENT;
    s->token = 0;
    return 0;
}

int mm_seats_expire(struct mm_seats *t, uint64_t now_ms,
                    void (*forfeit)(void *ctx, const struct mm_seat *s),
                    void *ctx)
{
    int n = 0;
    for (size_t i = 0; i < MM_MAX_SEATS; i++) {
        struct mm_seat *s = &t->s[i];
        if (s->token && now_ms > s->deadline_ms) {
            struct mm_seat gone = *s;
            s->token = 0;
            n++;
            forfeit(ctx, &gone);
        }
    }
    return n;
}
