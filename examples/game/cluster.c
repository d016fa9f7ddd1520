/*
 * The cluster content group: the one thread that talks to NATS after
 * start-up (cluster.h says who posts what to it, docs/cluster.md what it
 * promises). It holds this shard's global names: a claim from the lobby
 * becomes a JetStream KV create-if-absent, a release a delete that only
 * succeeds while the key is still at our revision, and its tick refreshes
 * every held name well within the lease (the bucket's MaxAge), so names
 * of a shard that died expire by themselves.
 *
 * The connection follows docs/cluster.md and FIELD-NOTES: SendAsap (no
 * flusher delay), a 1-byte reconnect buffer (a request that timed out
 * during an outage must never be replayed after it: core NATS is
 * at-most-once, and a replayed create could take a name for a player who
 * was told "try later"), reconnect forever, and retry a failed first
 * connect in the background so a shard starts while NATS is down. libnats
 * runs its callbacks on its own threads: they only post an event here.
 *
 * Cross-shard chat: a lobby's line is published on "rp.chat.<channel>"
 * with this shard's number, its run (epoch) and a sequence number; lines
 * from the other shards come back through a subscription, are checked
 * (in order per origin, duplicates dropped, gaps counted) and posted to
 * the lobby, which gives them to its channel of the same number.
 *
 * The KV calls are synchronous, bounded by CLUSTER_REQ_MS, and made only
 * on this thread: no game content ever waits for NATS. While NATS is
 * unreachable a claim is answered TRY_LATER at once, without a call.
 * Threads: everything below runs on the cluster group's thread, except
 * cluster_create / cluster_destroy (main thread, before the server starts
 * and after it stopped) and the nats_* callbacks (libnats threads).
 */
#include "cluster_wire.h"
#include "game.h"
#include "matchmaking.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <ringport/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLUSTER_TICK_MS 250
#define CLUSTER_REQ_MS 500         /* one KV request, at most */
#define CLUSTER_RECONNECT_MS 250   /* wait between reconnect attempts */
#define CLUSTER_REFRESH_BATCH 1024 /* refreshes per tick, at most */
#define CLUSTER_SLOW_MS 1000       /* after a timeout: TRY_LATER at once */

/* A name this shard holds in the bucket. */
struct held {
    struct held *next;
    uint64_t rev;       /* the key's revision we wrote: our CAS token */
    int64_t written_ms; /* when (monotonic) */
    uint64_t sid;
    /* SHARD_MOVE (docs/cluster.md, "Global names"): 'moved' on the old
       shard once its player was sent away: never refreshed, never
       deleted (the host takes the key over; unclaimed, it expires).
       'taking' on the host until the key is ours: 'from' (the old
       shard) still holds it, and our CAS takes it over at its revision. */
    bool moved, taking;
    uint32_t from;
    char name[GM_NAME_MAX + 1];
};

struct cluster {
    struct game *g;
    struct cluster_config cfg;
    /* Written by cluster_create before 'ready', then the group's only. */
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    _Atomic bool ready; /* main thread's set-up done (release/acquire) */
    /* ---- the group's thread only ---- */
    kvStore *kv; /* NULL until the bucket is bound */
    struct held **buckets;
    uint32_t mask;
    bool reassert; /* reconnected: refresh every held name now */
    /* A request timed out at this time: until CLUSTER_SLOW_MS later,
       claims are answered TRY_LATER without asking (a server that hangs
       would otherwise cost every queued claim its full timeout). */
    int64_t slow_since_ms;
    char value[160];
    int value_len;
    /* Cross-shard chat. */
    natsSubscription *sub; /* "rp.chat.>"; NULL until first connected */
    uint64_t epoch;        /* this run of this shard (its start, in ns) */
    uint64_t out_seq;      /* last sequence published */
    struct origin *origins;
    uint32_t n_origins, cap_origins;
    /* Cross-shard matchmaking (cluster_mm.c): NULL with --pvp-queue
       local; subscribed to rp.mm.<shard> and rp.mm.ads once connected. */
    struct cluster_mm *mm;
    natsSubscription *mm_sub, *mm_ads;
};

/* What we last heard from one other shard. */
struct origin {
    uint32_t shard;
    uint64_t epoch, last_seq;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(_Atomic uint64_t *c, int64_t d)
{
    atomic_fetch_add_explicit(c, (uint64_t)d, memory_order_relaxed);
}

/* ---- libnats's threads: copy, post, nothing else ------------------------ */

static void post_event(struct cluster *c, uint8_t ev)
{
    struct rp_packet *pkt;
    int r = rp_packet_create(1, 0, &pkt);
    if (r == 0) {
        r = rp_packet_put_u8(pkt, ev);
        if (r == 0)
            r = rp_group_post(c->g->cluster_g, CLUSTER_EVENT, pkt);
        rp_packet_unref(pkt);
    }
    /* -ESHUTDOWN: the game is stopping, the event no longer matters. */
    if (r < 0 && r != -ESHUTDOWN)
        count(&c->g->ncl.posts_dropped, 1);
}

static void nats_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    post_event(closure, CLUSTER_EV_CONNECTED);
}

static void nats_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    post_event(closure, CLUSTER_EV_DISCONNECTED);
}

static void nats_reconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    post_event(closure, CLUSTER_EV_RECONNECTED);
}

static void nats_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    post_event(closure, CLUSTER_EV_CLOSED);
}

/* A chat line from NATS: its bytes go to the cluster group as they are
   (decoded there: this thread only copies). */
static void nats_chat(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                      void *closure)
{
    struct cluster *c = closure;
    (void)nc, (void)sub;
    int len = natsMsg_GetDataLength(msg);
    struct rp_packet *pkt;
    int r = -EMSGSIZE;
    if (len < 0 || len > CW_CHAT_MAX) {
        count(&c->g->ncl.chat_bad, 1);
    } else if (cluster_chat_take(&c->g->ncl, &c->g->ncl.chat_queued)) {
        r = rp_packet_create((size_t)len, 0, &pkt);
        if (r == 0) {
            r = rp_packet_put_bytes(pkt, natsMsg_GetData(msg), (size_t)len);
            if (r == 0)
                r = rp_group_post(c->g->cluster_g, CLUSTER_CHAT_IN, pkt);
            rp_packet_unref(pkt);
        }
        if (r < 0)
            cluster_chat_give(&c->g->ncl.chat_queued);
        if (r < 0 && r != -ESHUTDOWN)
            count(&c->g->ncl.posts_dropped, 1);
    }
    natsMsg_Destroy(msg);
}

/* A matchmaking message: copied and posted as it came (decoded in
   cluster_mm.c), at most CLUSTER_MM_IN_QUEUE in the inbox so names keep
   their room; the protocol survives a dropped one (timeouts). */
static void nats_mm(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                    void *closure)
{
    struct cluster *c = closure;
    _Atomic uint64_t *q = &c->g->ncl.mm_in_queued;
    (void)nc, (void)sub;
    int len = natsMsg_GetDataLength(msg);
    struct rp_packet *pkt;
    int r = -EMSGSIZE;
    if (len > 0 && len <= MM_WIRE_MAX &&
        atomic_fetch_add(q, 1) < CLUSTER_MM_IN_QUEUE) {
        r = rp_packet_create((size_t)len, 0, &pkt);
        if (r == 0) {
            r = rp_packet_put_bytes(pkt, natsMsg_GetData(msg), (size_t)len);
            if (r == 0)
                r = rp_group_post(c->g->cluster_g, CLUSTER_MM_IN, pkt);
            rp_packet_unref(pkt);
        }
        if (r < 0)
            atomic_fetch_sub(q, 1);
    } else if (len > 0 && len <= MM_WIRE_MAX) {
        atomic_fetch_sub(q, 1);
    }
    if (r < 0 && r != -ESHUTDOWN)
        count(&c->g->ncl.posts_dropped, 1);
    natsMsg_Destroy(msg);
}

/* cluster_mm.c's way out (the group's thread): at most once, as all of
   core NATS; nothing is sent while disconnected. */
static void mm_publish(void *ctx, const char *subject, const uint8_t *b, int n)
{
    struct cluster *c = ctx;
    if (natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED)
        (void)natsConnection_Publish(c->nc, subject, b, n);
}

/* ---- held names --------------------------------------------------------- */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a, as names.c */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static struct held **held_find(struct cluster *c, const char *name)
{
    struct held **at = &c->buckets[name_hash(name) & c->mask];
    while (*at && strcmp((*at)->name, name) != 0)
        at = &(*at)->next;
    return at;
}

static void held_drop(struct cluster *c, struct held **at)
{
    struct held *h = *at;
    *at = h->next;
    free(h);
    count(&c->g->ncl.names, -1);
}

/* ---- the KV calls (this thread only) ------------------------------------ */

static bool connected(struct cluster *c)
{
    return c->kv && natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED;
}

/* A create or update refused because the key is at another revision (or
   exists): the name is someone else's. Anything else (a timeout, no
   connection) says nothing about the key. */
static bool lost_race(natsStatus s)
{
    const char *e = nats_GetLastError(NULL);
    return s == NATS_ERR && e && strstr(e, "wrong last sequence") != NULL;
}

/* Binds the bucket, creating it if absent (every shard asks the same:
   the lease as MaxAge, one value per key). */
static void bind_bucket(struct cluster *c)
{
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = CLUSTER_BUCKET;
    kc.History = 1;
    kc.TTL = (int64_t)c->cfg.lease_ms * 1000000; /* ns */
    natsStatus s = js_CreateKeyValue(&c->kv, c->js, &kc);
    if (s != NATS_OK) {
        /* Made by a shard with another lease, say: use it as it is. */
        c->kv = NULL;
        s = js_KeyValue(&c->kv, c->js, CLUSTER_BUCKET);
    }
    if (s != NATS_OK) {
        c->kv = NULL;
        RP_WARN("cluster", "bucket %s: %s", CLUSTER_BUCKET,
                nats_GetLastError(NULL));
        return;
    }
    RP_INFO("cluster", "shard %u: bucket %s bound", c->cfg.shard,
            CLUSTER_BUCKET);
    c->reassert = true; /* after a loss: every held name, at once */
}

static void kv_release(struct cluster *c, const struct held *h);

/* No stream answers for the bucket: nats-server came back without its
   store (or JetStream is still starting). The bucket is bound again on
   the next tick, and every held name re-created. */
static void bucket_lost(struct cluster *c)
{
    RP_WARN("cluster", "shard %u: bucket %s is gone; binding it again",
            c->cfg.shard, CLUSTER_BUCKET);
    kvStore_Destroy(c->kv);
    c->kv = NULL;
    c->reassert = true;
}

static void claim(struct cluster *c, const struct cluster_name_msg *m)
{
    struct game *g = c->g;
    uint16_t code = GM_ERR_TRY_LATER;
    count(&g->ncl.claims, 1);
    if (*held_find(c, m->name)) {
        code = GM_ERR_NAME_TAKEN; /* ours, for a session on its way out */
    } else if (c->slow_since_ms &&
               now_ms() - c->slow_since_ms < CLUSTER_SLOW_MS) {
        /* NATS just timed out: answer now, ask again a second later. */
    } else if (connected(c)) {
        c->slow_since_ms = 0;
        uint64_t rev = 0;
        natsStatus s =
            kvStore_Create(&rev, c->kv, m->name, c->value, c->value_len);
        /* A key expiring while libnats checks it (create, then read it
           back for a delete marker) ends in a bare error: once more. */
        if (s == NATS_ERR && !lost_race(s))
            s = kvStore_Create(&rev, c->kv, m->name, c->value, c->value_len);
        struct held *h = s == NATS_OK ? calloc(1, sizeof *h) : NULL;
        if (h) {
            h->rev = rev;
            h->written_ms = now_ms();
            h->sid = m->sid;
            strcpy(h->name, m->name);
            struct held **at = held_find(c, m->name);
            *at = h;
            count(&g->ncl.names, 1);
            code = 0;
        } else if (s == NATS_OK) {
            /* No memory to remember it: give it straight back. */
            struct held tmp = {.rev = rev};
            strcpy(tmp.name, m->name);
            kv_release(c, &tmp);
        } else if (lost_race(s)) {
            code = GM_ERR_NAME_TAKEN;
        } else if (s == NATS_NO_RESPONDERS) {
            bucket_lost(c);
        } else if (s == NATS_TIMEOUT) {
            c->slow_since_ms = now_ms();
            count(&g->ncl.claims_timed_out, 1);
        } else {
            RP_WARN("cluster", "shard %u: claim %s: %s (%s): try later",
                    c->cfg.shard, m->name, natsStatus_GetText(s),
                    nats_GetLastError(NULL));
        }
        /* A timeout may still have created it: nobody refreshes it, so
           it expires within the lease (docs/cluster.md). */
    }
    if (code == GM_ERR_NAME_TAKEN)
        count(&g->ncl.claims_taken, 1);
    else if (code == GM_ERR_TRY_LATER)
        count(&g->ncl.claims_try_later, 1);
    int r = game_post_name(g, g->lobby_g, LOBBY_CLAIMED, m->sid, code, m->name);
    if (r < 0 && code == 0) {
        /* The lobby is stopping: nobody will log in with it. */
        struct held **at = held_find(c, m->name);
        kv_release(c, *at);
        held_drop(c, at);
    }
}

/* Deletes 'name' only while it is still at our revision: a key that
   expired (an outage longer than the lease) and was taken by another
   shard since must not be deleted under it. */
static void kv_release(struct cluster *c, const struct held *h)
{
    char subj[64 + GM_NAME_MAX];
    snprintf(subj, sizeof subj, "$KV.%s.%s", CLUSTER_BUCKET, h->name);
    natsMsg *msg = NULL;
    if (natsMsg_Create(&msg, subj, NULL, NULL, 0) != NATS_OK)
        return;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.ExpectLastSubjectSeq = h->rev;
    po.MaxWait = CLUSTER_REQ_MS;
    jsErrCode jerr = 0;
    if (natsMsgHeader_Set(msg, "KV-Operation", "DEL") == NATS_OK)
        (void)js_PublishMsg(NULL, c->js, msg, &po, &jerr);
    natsMsg_Destroy(msg);
}

static void release(struct cluster *c, const struct cluster_name_msg *m)
{
    struct held **at = held_find(c, m->name);
    if (!*at || (*at)->sid != m->sid)
        return; /* never ours, or already lost */
    /* Not connected: the key expires within the lease. Moved: the key
       is the host's now (or expires). Taking: still the old shard's. */
    if (connected(c) && !(*at)->moved && !(*at)->taking)
        kv_release(c, *at);
    held_drop(c, at);
}

/* A held name found taken by another shard: lost (the player keeps
   playing under it on this shard). */
static void conflict(struct cluster *c, struct held **at)
{
    count(&c->g->ncl.name_conflicts, 1);
    RP_WARN("cluster", "shard %u: name %s is held elsewhere now (lease lost)",
            c->cfg.shard, (*at)->name);
    held_drop(c, at);
}

/* Writes the name again at our revision (the lease starts over). If the
   key is gone (deleted, or expired during a long outage) it is created
   again; if someone else holds it now, it is lost: counted and logged,
   the player keeps playing under it on this shard. Returns false when
   NATS did not answer (try again next tick). */
static bool refresh(struct cluster *c, struct held **at)
{
    struct held *h = *at;
    uint64_t rev = 0;
    natsStatus s =
        kvStore_Update(&rev, c->kv, h->name, c->value, c->value_len, h->rev);
    bool recreated = false;
    if (s != NATS_OK && lost_race(s)) {
        s = kvStore_Create(&rev, c->kv, h->name, c->value, c->value_len);
        recreated = true;
    }
    if (s == NATS_OK) {
        h->rev = rev;
        h->written_ms = now_ms();
        if (recreated)
            count(&c->g->ncl.names_recreated, 1);
        return true;
    }
    if (s == NATS_NO_RESPONDERS) {
        bucket_lost(c);
        return false;
    }
    if (!lost_race(s))
        return false;
    conflict(c, at);
    return true;
}

/* The host's side of a SHARD_MOVE: the key still holds the old shard's
   value (it stopped refreshing it when it sent the player, and never
   deletes it), so the host rewrites it with a compare-and-set at the
   revision it reads: nobody else can take the name in between, and two
   never hold it. A key gone meanwhile (the player came later than the
   lease) is created; one another shard took is lost (a conflict).
   Returns false when NATS did not answer (again next tick). */
static bool take_over(struct cluster *c, struct held **at)
{
    struct held *h = *at;
    kvEntry *e = NULL;
    uint64_t rev = 0;
    natsStatus s = kvStore_Get(&e, c->kv, h->name);
    if (s == NATS_OK) {
        char theirs[32];
        int tl = snprintf(theirs, sizeof theirs, "shard %u at ", h->from);
        bool from_old = kvEntry_ValueLen(e) > tl &&
                        memcmp(kvEntry_Value(e), theirs, (size_t)tl) == 0;
        uint64_t last = kvEntry_Revision(e);
        kvEntry_Destroy(e);
        if (!from_old) {
            conflict(c, at);
            return true;
        }
        s = kvStore_Update(&rev, c->kv, h->name, c->value, c->value_len, last);
        if (s != NATS_OK && lost_race(s))
            return false; /* written meanwhile: read it again next tick */
    } else if (s == NATS_NOT_FOUND) {
        s = kvStore_Create(&rev, c->kv, h->name, c->value, c->value_len);
        if (s != NATS_OK && lost_race(s)) {
            conflict(c, at);
            return true;
        }
    }
    if (s == NATS_OK) {
        h->rev = rev;
        h->written_ms = now_ms();
        h->taking = false;
        return true;
    }
    if (s == NATS_NO_RESPONDERS)
        bucket_lost(c);
    return false;
}

void cluster_name_moved(void *ctx, const char *name)
{
    struct cluster *c = ctx;
    struct held **at = held_find(c, name);
    if (!*at || (*at)->taking)
        return; /* not held globally: nothing to hand over */
    /* A last rewrite starts the lease over: the player has all of it to
       reach the host. */
    if (connected(c) && !(*at)->moved)
        (void)refresh(c, at);
    if (*at)
        (*at)->moved = true;
}

void cluster_name_take_over(void *ctx, uint64_t sid, const char *name,
                            uint32_t from)
{
    struct cluster *c = ctx;
    struct held **at = held_find(c, name);
    if (*at)
        return; /* held here already: the lobby refuses the seat's name */
    struct held *h = calloc(1, sizeof *h);
    if (!h)
        return; /* held on this shard only; the old shard's key expires */
    h->sid = sid;
    h->taking = true;
    h->from = from;
    strcpy(h->name, name);
    *at = h;
    count(&c->g->ncl.names, 1);
    /* Now, before the player's LOGIN_OK; NATS down: on reconnect. */
    if (connected(c))
        (void)take_over(c, at);
}

static void refresh_due(struct cluster *c)
{
    int64_t due = now_ms() - c->cfg.lease_ms / 3;
    unsigned n = 0;
    bool all = c->reassert;
    c->reassert = false;
    for (uint32_t b = 0; b <= c->mask; b++) {
        struct held **at = &c->buckets[b];
        while (*at) {
            struct held *h = *at;
            if (h->moved || (!all && h->written_ms > due)) {
                at = &h->next;
                continue;
            }
            if (n++ == CLUSTER_REFRESH_BATCH ||
                !(h->taking ? take_over(c, at) : refresh(c, at))) {
                c->reassert |= all; /* the rest next tick */
                return;
            }
            if (!c->kv)
                return;   /* the bucket is gone: bound again next tick */
            if (*at == h) /* kept */
                at = &h->next;
        }
    }
}

/* ---- cross-shard chat -----------------------------------------------------
 */

/* Publishes a lobby's line (the lobby already gave it to its own
   members). A line that cannot be sent takes no sequence number: the
   others see no gap for what never left. */
static void chat_out(struct cluster *c, const struct rp_message *msg)
{
    struct cw_chat line;
    uint8_t buf[CW_CHAT_MAX];
    char subj[32];
    if (msg->len != sizeof line)
        return;
    memcpy(&line, msg->payload, sizeof line);
    line.origin = c->cfg.shard;
    line.epoch = c->epoch;
    line.seq = c->out_seq + 1;
    int n = cw_chat_encode(&line, buf, sizeof buf);
    if (n < 0)
        return;
    snprintf(subj, sizeof subj, "rp.chat.%u", line.channel);
    if (natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED &&
        natsConnection_Publish(c->nc, subj, buf, n) == NATS_OK) {
        c->out_seq++;
        count(&c->g->ncl.chat_out, 1);
    } else {
        count(&c->g->ncl.chat_out_failed, 1);
    }
}

static struct origin *origin_of(struct cluster *c, uint32_t shard)
{
    for (uint32_t i = 0; i < c->n_origins; i++)
        if (c->origins[i].shard == shard)
            return &c->origins[i];
    if (c->n_origins == c->cap_origins) {
        uint32_t cap = c->cap_origins ? c->cap_origins * 2 : 8;
        struct origin *o = realloc(c->origins, cap * sizeof *o);
        if (!o)
            return NULL;
        c->origins = o;
        c->cap_origins = cap;
    }
    struct origin *o = &c->origins[c->n_origins++];
    *o = (struct origin){.shard = shard};
    return o;
}

/* A line from another shard: in order per origin, each once. A sequence
   at or below the last one seen from that origin's run is a duplicate;
   one past the next counts the lines between as a gap. The first line of
   an origin's run (a new shard, or one restarted) starts its count. */
static void chat_in(struct cluster *c, const struct rp_message *msg)
{
    struct game *g = c->g;
    struct cw_chat line;
    if (cw_chat_decode(msg->payload, msg->len, &line) < 0) {
        count(&g->ncl.chat_bad, 1);
        return;
    }
    if (line.origin == c->cfg.shard)
        return; /* our own (NoEcho is set; a misconfigured twin is not) */
    struct origin *o = origin_of(c, line.origin);
    if (!o)
        return;
    if (o->epoch != line.epoch) {
        o->epoch = line.epoch;
        o->last_seq = line.seq - 1;
    }
    if (line.seq <= o->last_seq) {
        count(&g->ncl.chat_duplicates, 1);
        return;
    }
    if (line.seq > o->last_seq + 1)
        count(&g->ncl.chat_gaps, (int64_t)(line.seq - o->last_seq - 1));
    o->last_seq = line.seq;
    if (!cluster_chat_take(&g->ncl, &g->ncl.lobby_chat_queued))
        return;
    struct rp_packet *pkt;
    int r = rp_packet_create(sizeof line, 0, &pkt);
    if (r == 0) {
        r = rp_packet_put_bytes(pkt, &line, sizeof line);
        if (r == 0)
            r = rp_group_post(g->lobby_g, LOBBY_CHAT, pkt);
        rp_packet_unref(pkt);
    }
    if (r == 0) {
        count(&g->ncl.chat_in, 1);
    } else {
        cluster_chat_give(&g->ncl.lobby_chat_queued);
        count(&g->ncl.posts_dropped, 1);
    }
}

/* ---- the group's callbacks ---------------------------------------------- */

static void cluster_on_post(struct rp_group *grp, uint32_t tag,
                            const struct rp_message *msg, void *user)
{
    struct cluster *c = user;
    struct game *g = c->g;
    struct cluster_name_msg m;
    (void)grp;
    if (!atomic_load_explicit(&c->ready, memory_order_acquire)) {
        if (tag == CLUSTER_EVENT)
            return; /* the tick reads the state itself once ready */
    }
    if (tag == CLUSTER_EVENT && msg->len == 1) {
        switch (msg->payload[0]) {
        case CLUSTER_EV_RECONNECTED:
            count(&g->ncl.reconnects, 1);
            c->reassert = true;
            break;
        case CLUSTER_EV_DISCONNECTED: count(&g->ncl.disconnects, 1); break;
        case CLUSTER_EV_CONNECTED: c->reassert = true; break;
        default: break;
        }
        return;
    }
    if (tag >= CLUSTER_MM_QUEUE && tag <= CLUSTER_SEAT_CLAIM) {
        if (c->mm)
            cluster_mm_post(c->mm, tag, msg);
        else if (tag == CLUSTER_MM_IN)
            atomic_fetch_sub(&g->ncl.mm_in_queued, 1);
        return;
    }
    if (tag == CLUSTER_CHAT_OUT || tag == CLUSTER_CHAT_IN) {
        if (tag == CLUSTER_CHAT_OUT)
            chat_out(c, msg);
        else
            chat_in(c, msg);
        cluster_chat_give(&g->ncl.chat_queued);
        return;
    }
    if (!game_name_msg(msg, &m))
        return;
    if (tag == CLUSTER_CLAIM)
        claim(c, &m);
    else if (tag == CLUSTER_RELEASE)
        release(c, &m);
}

static void cluster_on_tick(struct rp_group *grp, int64_t elapsed_ns,
                            void *user)
{
    struct cluster *c = user;
    (void)grp, (void)elapsed_ns;
    if (!atomic_load_explicit(&c->ready, memory_order_acquire))
        return;
    bool up = natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED;
    if (up && !c->kv)
        bind_bucket(c);
    if (up && c->kv)
        refresh_due(c);
    /* Once: libnats subscribes again by itself after every reconnect. */
    if (up && !c->sub &&
        natsConnection_Subscribe(&c->sub, c->nc, "rp.chat.>", nats_chat, c) !=
            NATS_OK)
        c->sub = NULL;
    if (up && c->mm && !c->mm_sub) {
        char subj[32];
        snprintf(subj, sizeof subj, "rp.mm.%u", c->cfg.shard);
        if (natsConnection_Subscribe(&c->mm_sub, c->nc, subj, nats_mm, c) !=
            NATS_OK)
            c->mm_sub = NULL;
    }
    if (up && c->mm && !c->mm_ads &&
        natsConnection_Subscribe(&c->mm_ads, c->nc, "rp.mm.ads", nats_mm, c) !=
            NATS_OK)
        c->mm_ads = NULL;
    if (c->mm)
        cluster_mm_tick(c->mm);
    /* "Connected" means claims can be made: the bucket is bound too (and
       a first rewrite of the names held has been tried since). */
    atomic_store_explicit(&c->g->ncl.connected, up && c->kv,
                          memory_order_relaxed);
}

/* ---- main thread: start and end ----------------------------------------- */

static int nats_err(const char *what, natsStatus s)
{
    RP_ERROR("cluster", "%s: %s (%s)", what, natsStatus_GetText(s),
             nats_GetLastError(NULL));
    return -EINVAL;
}

static int connect_nats(struct cluster *c)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, c->cfg.url);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    /* 1 byte: nothing is buffered during an outage, so nothing that
       already failed is replayed after it (FIELD-NOTES, NATS). */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, 1);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, CLUSTER_RECONNECT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, CLUSTER_REQ_MS);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, nats_connected, c);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, nats_disconnected, c);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, nats_reconnected, c);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, nats_closed, c);
    /* Our own chat lines stay here (the lobby gave them out already). */
    if (s == NATS_OK)
        s = natsOptions_SetNoEcho(o, true);
    c->opts = o;
    if (s != NATS_OK)
        return nats_err("options", s);
    s = natsConnection_Connect(&c->nc, o);
    if (s == NATS_NOT_YET_CONNECTED) {
        RP_WARN("cluster",
                "shard %u: %s unreachable; retrying in the "
                "background (LOGIN answers TRY_LATER meanwhile)",
                c->cfg.shard, c->cfg.url);
    } else if (s != NATS_OK) {
        return nats_err(c->cfg.url, s);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = CLUSTER_REQ_MS;
    s = natsConnection_JetStream(&c->js, c->nc, &jo);
    if (s != NATS_OK)
        return nats_err("jetstream", s);
    if (natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED)
        bind_bucket(c);
    return 0;
}

int cluster_create(struct game *g, const struct cluster_config *cfg)
{
    struct cluster *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->g = g;
    c->cfg = *cfg;
    if (!c->cfg.lease_ms)
        c->cfg.lease_ms = CLUSTER_LEASE_MS_DEFAULT;
    c->value_len = snprintf(c->value, sizeof c->value, "shard %u at %s",
                            c->cfg.shard, c->cfg.advertise);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->epoch = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint32_t size = 64;
    while (size < g->max_sessions && size < (1u << 24))
        size <<= 1;
    c->buckets = calloc(size, sizeof *c->buckets);
    c->mask = size - 1;
    g->cluster = c;
    if (!c->buckets)
        return -ENOMEM;
    if (cfg->pvp_queue != CLUSTER_PVP_LOCAL) {
        c->mm = cluster_mm_create(g, &c->cfg, c->epoch, mm_publish, c);
        if (!c->mm)
            return -ENOMEM;
    }
    /* The group first: libnats's callbacks post to it as soon as the
       connection exists. Until 'ready' it makes no libnats call. */
    struct rp_group_config gc = {
        .name = "cluster",
        .tick_ms = CLUSTER_TICK_MS,
        .cb = {.on_tick = cluster_on_tick, .on_post = cluster_on_post},
        .user = c,
        /* cluster.h, CLUSTER_CHAT_QUEUE: releases always fit */
        .post_limit = 2 * g->max_sessions + CLUSTER_CHAT_QUEUE + 1024 +
                      3 * g->max_sessions + CLUSTER_MM_IN_QUEUE};
    int r = rp_group_create(g->srv, &gc, &g->cluster_g);
    if (r < 0)
        return r;
    r = connect_nats(c);
    atomic_store_explicit(&c->ready, true, memory_order_release);
    if (r == 0)
        RP_INFO("cluster", "shard %u: %s, lease %u ms, advertise %s",
                c->cfg.shard, c->cfg.url, c->cfg.lease_ms, c->cfg.advertise);
    return r;
}

void cluster_destroy(struct game *g)
{
    struct cluster *c = g->cluster;
    if (!c)
        return;
    /* The group has stopped (rp_server_stop): from here libnats's
       callbacks get -ESHUTDOWN from their posts and touch nothing. */
    if (c->sub)
        natsSubscription_Destroy(c->sub);
    if (c->mm_sub)
        natsSubscription_Destroy(c->mm_sub);
    if (c->mm_ads)
        natsSubscription_Destroy(c->mm_ads);
    if (c->kv)
        kvStore_Destroy(c->kv);
    if (c->js)
        jsCtx_Destroy(c->js);
    if (c->nc)
        natsConnection_Destroy(c->nc);
    if (c->opts)
        natsOptions_Destroy(c->opts);
    /* libnats's threads are gone after this: none can post later. */
    nats_CloseAndWait(2000);
    for (uint32_t b = 0; c->buckets && b <= c->mask; b++)
        while (c->buckets[b])
            held_drop(c, &c->buckets[b]);
    free(c->buckets);
    free(c->origins);
    cluster_mm_destroy(c->mm);
    free(c);
    g->cluster = NULL;
}
