/*
 * rp_server's public entry points: life cycle (create, start, stop,
 * destroy), sends, broadcast, disconnect, peer address and the stats sum.
 *
 * A send from any thread: reference the slot (one CAS), count the bytes
 * against send_queue_limit, take a packet reference, then either queue it
 * directly (the caller is the session's own I/O thread, inside a callback:
 * flushed at the end of the loop turn, no wake) or push a request to the
 * owner's inbox (the request carries the slot reference).
 */
#include "net/net.h"

#include "core/assert.h"
#include <errno.h>
#include <ringport/log.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int server_pools(struct rp_server *srv)
{
    struct rp_pool_config rc = {.name = "net.req",
                                .object_size = sizeof(struct net_req),
                                .initial = 1024};
    int r = rp_pool_create(&rc, &srv->req_pool);
    if (r < 0)
        return r;
    struct rp_pool_config ic = {.name = "net.tx",
                                .object_size =
                                    sizeof(struct net_tx) +
                                    srv->cfg.max_iov * sizeof(struct iovec) +
                                    NET_COALESCE_BYTES,
                                .initial = 16};
    if ((r = rp_pool_create(&ic, &srv->iov_pool)) < 0)
        return r;
    struct rp_pool_config mc = {.name = "net.route",
                                .object_size = sizeof(struct net_route_msg),
                                .initial = 0};
    return rp_pool_create(&mc, &srv->route_pool);
}

int rp_server_create(const struct rp_server_config *cfg, struct rp_server **out)
{
    char err[160];
    int r = rp_server_config_validate(cfg, err, sizeof err);
    if (r < 0) {
        RP_ERROR("server", "config: %s", err);
        return r;
    }
    if (strlen(cfg->listen_addr) >= sizeof((struct rp_server *)0)->listen_addr)
        return -EINVAL;
    struct rp_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->cfg = *cfg;
    strcpy(srv->listen_addr, cfg->listen_addr);
    srv->cfg.listen_addr = srv->listen_addr;
    srv->backend = cfg->backend;
    srv->listen_fd = -1;
    srv->spare_fd = -1;
    srv->ws_listen_fd = -1;
    srv->ws_spare_fd = -1;
    srv->nthreads = cfg->io_threads;
    pthread_mutex_init(&srv->life_lock, NULL);
    srv->threads = calloc(srv->nthreads, sizeof *srv->threads);
    if (!srv->threads) {
        r = -ENOMEM;
        goto fail;
    }
    if (cfg->ws_origins && *cfg->ws_origins &&
        !(srv->ws_origins = strdup(cfg->ws_origins))) {
        r = -ENOMEM;
        goto fail;
    }
    srv->cfg.ws_origins = srv->ws_origins;
    if ((r = rp__table_init(&srv->table, cfg->max_sessions)) < 0 ||
        (r = server_pools(srv)) < 0 || (r = rp__net_listen(srv)) < 0)
        goto fail;
    if (cfg->ws_enabled &&
        (r = rp__net_listen_on(srv, cfg->ws_port, &srv->ws_listen_fd,
                               &srv->ws_port)) < 0) {
        if (r == -EADDRINUSE || r == -EACCES)
            RP_ERROR("server", "listen %s:%u (WebSocket): %s", srv->listen_addr,
                     cfg->ws_port, strerror(-r));
        rp_server_destroy(srv);
        return r;
    }
    *out = srv;
    return 0;
fail:
    if (r == -EADDRINUSE || r == -EACCES)
        RP_ERROR("server", "listen %s:%u: %s", srv->listen_addr, cfg->port,
                 strerror(-r));
    rp_server_destroy(srv);
    return r;
}

static void server_stop_threads(struct rp_server *srv, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        rp__thread_stop(&srv->threads[i]);
    /* Every thread is joined before any inbox is drained: a thread may
       push to another until it exits (a RESUME's hand-off carries a
       descriptor), and what lands after a drain would be lost. */
    for (uint32_t i = 0; i < n; i++)
        rp__thread_join(&srv->threads[i]);
    for (uint32_t i = 0; i < n; i++)
        rp__thread_drain_inbox(&srv->threads[i]);
}

int rp_server_start(struct rp_server *srv)
{
    pthread_mutex_lock(&srv->life_lock);
    int r = -EALREADY;
    if (srv->started)
        goto out;
    uint32_t i;
    for (i = 0; i < srv->nthreads; i++) {
        struct net_thread *t = &srv->threads[i];
        t->index = i;
        t->kind = atomic_load(&srv->backend);
        if ((r = rp__thread_start(srv, t)) < 0)
            break;
        /* AUTO resolves on the first thread; the others follow it. */
        atomic_store(&srv->backend, t->kind);
    }
    if (r == 0 && (r = rp__accept_start(srv)) == 0) {
        srv->started = true;
        goto out;
    }
    server_stop_threads(srv, i);
out:
    pthread_mutex_unlock(&srv->life_lock);
    return r;
}

/*
 * Whether the calling thread is one that rp_server_stop joins or waits for:
 * an I/O thread, the accept thread, or a group thread of 'srv'. Read
 * before life_lock is taken: a stop already under way on another thread
 * holds it while it joins this one.
 */
static bool server_is_own_thread(const struct rp_server *srv)
{
    if (rp__thread_current(srv) || rp__accept_is_current(srv))
        return true;
    const struct net_route_ops *ops = atomic_load(&srv->route_ops);
    return ops && ops->is_own_thread(srv);
}

int rp_server_stop(struct rp_server *srv)
{
    if (server_is_own_thread(srv))
        return -EDEADLK;
    pthread_mutex_lock(&srv->life_lock);
    if (srv->started && !srv->stopped) {
        srv->stopped = true;
        rp__accept_stop(srv);
        server_stop_threads(srv, srv->nthreads);
        /* Every session has ended and had its last on_leave (an I/O thread
           waits for its groups' replies). Stop the groups, then release
           what reached an exited thread meanwhile (a late move's ticket
           is dropped there). */
        const struct net_route_ops *ops = atomic_load(&srv->route_ops);
        if (ops) {
            ops->stop(srv);
            for (uint32_t i = 0; i < srv->nthreads; i++)
                rp__thread_drain_inbox(&srv->threads[i]);
        }
    }
    pthread_mutex_unlock(&srv->life_lock);
    return 0;
}

void rp_server_destroy(struct rp_server *srv)
{
    if (!srv)
        return;
    if (rp_server_stop(srv) == -EDEADLK) {
        /* Freeing the server under its own running threads would be a
           use-after-free; leaking it is the lesser harm. */
        RP_ERROR("server", "rp_server_destroy called on one of the server's "
                           "own threads: refused (the server is not freed)");
        return;
    }
    const struct net_route_ops *ops = atomic_load(&srv->route_ops);
    if (ops)
        ops->destroy(srv); /* groups of a server never started, too */
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->ws_listen_fd >= 0)
        close(srv->ws_listen_fd);
    free(srv->ws_origins);
    if (srv->req_pool)
        rp_pool_destroy(srv->req_pool);
    if (srv->iov_pool)
        rp_pool_destroy(srv->iov_pool);
    if (srv->route_pool)
        rp_pool_destroy(srv->route_pool);
    rp__table_destroy(&srv->table);
    pthread_mutex_destroy(&srv->life_lock);
    free(srv->threads);
    free(srv);
}

uint16_t rp_server_port(const struct rp_server *srv)
{
    return srv->port;
}

uint16_t rp_server_ws_port(const struct rp_server *srv)
{
    return srv->ws_port;
}

/* Any thread, from create to destroy: a metrics endpoint reads it on its
   own thread, also before the start (then it is the configured kind,
   possibly AUTO, which the first I/O thread resolves). */
enum rp_backend_kind rp_server_backend(const struct rp_server *srv)
{
    return atomic_load(&srv->backend);
}

/* ---- ending a session from the API ---------------------------------- */

int rp__server_close(struct rp_server *srv, rp_sid sid,
                     enum rp_leave_reason why)
{
    struct rp_session *s;
    int r = rp__session_mark_closing(srv, sid, &s);
    if (r < 0)
        return r;
    atomic_store_explicit(&s->close_reason, (int)why, memory_order_relaxed);
    s->close_req.kind = NET_REQ_CLOSE;
    s->close_req.sid = sid;
    if (s->owner == rp__thread_current(srv)) {
        rp__session_end(s->owner, s, why, why == RP_LEAVE_KICKED);
        rp__session_put(srv, s);
    } else {
        rp__thread_push_sig(s->owner, &s->close_req); /* carries the ref */
    }
    return 0;
}

/* A second call finds CLOSING set and returns -ENOTCONN: nothing else
   happens, the session still leaves once. */
int rp_server_disconnect(struct rp_server *srv, rp_sid sid)
{
    return rp__server_close(srv, sid, RP_LEAVE_KICKED);
}

/* ---- sends -------------------------------------------------------- */

/* Queues 'pkt' for 's' (the caller holds a slot reference and has counted
   'bytes' in queued_bytes). Takes its own packet and slot references. */
static int server_queue(struct rp_server *srv, struct rp_session *s, rp_sid sid,
                        struct rp_packet *pkt, uint32_t bytes, bool own)
{
    struct net_req *r = rp_pool_alloc(srv->req_pool);
    if (!r)
        return -ENOMEM;
    r->kind = NET_REQ_SEND;
    r->sid = sid;
    r->pkt = rp_packet_ref(pkt);
    r->bytes = bytes;
    r->ctl = false;
    r->own = own;
    r->ws_raw = false;
    struct net_thread *cur = rp__thread_current(srv);
    if (s->owner == cur) {
        rp__session_enqueue(cur, s, r);
        return 0;
    }
    /* The request holds its own slot reference; the caller's is still
       held, so refs > 0 and the slot cannot be freed meanwhile. */
    atomic_fetch_add_explicit(&s->state, 1, memory_order_relaxed);
    rp__thread_push(s->owner, r);
    return 0;
}

/* Counts 'bytes' against the limit; over it, the session is cut. 'own':
   the owner's short path, counted in own_queued with no locked
   instruction (the owner is its only writer). */
static int server_reserve(struct rp_server *srv, struct rp_session *s,
                          rp_sid sid, uint32_t bytes, bool own)
{
    uint32_t mine = atomic_load_explicit(&s->own_queued, memory_order_relaxed);
    if (own) {
        uint32_t others =
            atomic_load_explicit(&s->queued_bytes, memory_order_relaxed);
        if ((uint64_t)others + mine + bytes <= srv->cfg.send_queue_limit) {
            atomic_store_explicit(&s->own_queued, mine + bytes,
                                  memory_order_relaxed);
            return 0;
        }
    } else {
        uint32_t old = atomic_fetch_add_explicit(&s->queued_bytes, bytes,
                                                 memory_order_relaxed);
        if ((uint64_t)old + mine + bytes <= srv->cfg.send_queue_limit)
            return 0;
        atomic_fetch_sub_explicit(&s->queued_bytes, bytes,
                                  memory_order_relaxed);
    }
    rp__server_close(srv, sid, RP_LEAVE_SEND_OVERFLOW);
    return -ENOBUFS;
}

/* Gives back what server_reserve counted, for bytes that were not queued. */
static void server_unreserve(struct rp_session *s, uint32_t bytes, bool own)
{
    struct net_req r = {.bytes = bytes, .own = own};
    rp__req_unqueue(s, &r);
}

static uint32_t wire_bytes(const struct rp_server *srv,
                           const struct rp_packet *pkt)
{
    size_t n = rp_packet_size(pkt);
    return (uint32_t)(srv->cfg.mode == RP_SERVER_RAW
                          ? n
                          : n + RP_PACKET_HEADER_SIZE);
}

/*
 * The session 'sid' if its own receive callback (on_data, on_message) is
 * running on this thread: a reply from there needs no slot reference (the
 * session cannot finish while the receive that called back is in flight)
 * and no trip through the inbox. NULL otherwise: the caller takes the
 * general path. A remote close may have set CLOSING already: such a
 * session is refused here as rp__session_get would.
 */
static struct rp_session *server_own_session(struct rp_server *srv, rp_sid sid,
                                             struct net_thread **tp)
{
    struct net_thread *t = rp__thread_current(srv);
    if (!t || !t->rx_session || t->rx_session->sid != sid)
        return NULL;
    *tp = t;
    return t->rx_session;
}

static bool server_session_closing(const struct rp_session *s)
{
    return s->closing ||
           (atomic_load_explicit(&s->state, memory_order_relaxed) &
            NET_CLOSING) != 0;
}

int rp_server_send(struct rp_server *srv, rp_sid sid, struct rp_packet *pkt)
{
    uint32_t bytes = wire_bytes(srv, pkt);
    if (rp__resume_on(srv) && rp_packet_type(pkt) >= RP_CTL_FIRST)
        return -EINVAL; /* the engine's control messages */
    struct net_thread *own = NULL;
    struct rp_session *s = server_own_session(srv, sid, &own);
    if (s && server_session_closing(s))
        return -ENOTCONN;
    if (!s && !(s = rp__session_get(srv, sid)))
        return -ENOTCONN;
    int r = 0;
    bool mine = own != NULL;
    if (bytes > 0 && (r = server_reserve(srv, s, sid, bytes, mine)) == 0 &&
        (r = server_queue(srv, s, sid, pkt, bytes, mine)) < 0)
        server_unreserve(s, bytes, mine);
    if (!own)
        rp__session_put(srv, s);
    return r;
}

/* Zero-copy forwarding: queues bytes of the receive buffer being handed
   to the callback, which stays out of the ring until the send is
   released (rp__req_release). */
static int server_queue_lent(struct net_thread *t, struct rp_session *s,
                             rp_sid sid, const void *data, uint32_t len)
{
    struct net_req *r = rp_pool_alloc(t->srv->req_pool);
    if (!r)
        return -ENOMEM;
    r->kind = NET_REQ_SEND;
    r->sid = sid;
    r->pkt = NULL;
    r->lent = data;
    r->lent_id = (uint16_t)t->rx_buf_id;
    r->bytes = len;
    r->ctl = false;
    r->own = true;
    r->ws_raw = false;
    t->rx_lent = true;
    t->lent++;
    NET_STAT_ADD(t, buffers_lent, 1);
    if (t->lent >
        atomic_load_explicit(&t->stats.buffers_lent_max, memory_order_relaxed))
        atomic_store_explicit(&t->stats.buffers_lent_max, t->lent,
                              memory_order_relaxed);
    rp__session_enqueue(t, s, r);
    return 0;
}

int rp_server_send_raw(struct rp_server *srv, rp_sid sid, const void *data,
                       size_t len)
{
    if (len > UINT32_MAX)
        return -EMSGSIZE;
    struct net_thread *own = NULL;
    struct rp_session *s = server_own_session(srv, sid, &own);
    if (s && server_session_closing(s))
        return -ENOTCONN;
    if (!s && !(s = rp__session_get(srv, sid)))
        return -ENOTCONN;
    bool mine = own != NULL;
    int r = len ? server_reserve(srv, s, sid, (uint32_t)len, mine) : 0;
    const uint8_t *p = data;
    if (r == 0 && own && rp__session_can_lend(own, data, len)) {
        r = server_queue_lent(own, s, sid, data, (uint32_t)len);
        if (r == 0)
            len = 0;
    }
    while (r == 0 && len > 0) {
        size_t n = len < RP_PACKET_MAX_PAYLOAD ? len : RP_PACKET_MAX_PAYLOAD;
        struct rp_packet *pkt;
        if ((r = rp_packet_create(n, 0, &pkt)) < 0)
            break;
        rp_packet_put_bytes(pkt, p, n);
        r = server_queue(srv, s, sid, pkt, (uint32_t)n, mine);
        rp_packet_unref(pkt);
        if (r == 0) {
            p += n;
            len -= n;
        }
    }
    if (r < 0 && r != -ENOBUFS)
        server_unreserve(s, (uint32_t)len, mine);
    if (!own)
        rp__session_put(srv, s);
    return r;
}

int rp_server_broadcast(struct rp_server *srv, const rp_sid *ids, size_t n,
                        struct rp_packet *pkt)
{
    int queued = 0;
    for (size_t i = 0; i < n; i++)
        if (rp_server_send(srv, ids[i], pkt) == 0)
            queued++;
    return queued;
}

int rp_server_peer(struct rp_server *srv, rp_sid sid,
                   struct sockaddr_storage *addr, socklen_t *addrlen)
{
    struct rp_session *s = rp__session_get(srv, sid);
    if (!s)
        return -ENOTCONN;
    if (addr) {
        memset(addr, 0, sizeof *addr);
        memcpy(addr, &s->addr, s->addrlen);
    }
    if (addrlen)
        *addrlen = s->addrlen;
    rp__session_put(srv, s);
    return 0;
}

int rp_message_keep(const struct rp_message *msg, struct rp_packet **out)
{
    if (msg->packet) {
        *out = rp_packet_ref(msg->packet);
        return 0;
    }
    return rp_message_to_packet(msg, out);
}

int rp_message_to_packet(const struct rp_message *msg, struct rp_packet **out)
{
    struct rp_packet *pkt;
    int r = rp_packet_create(msg->len, msg->type, &pkt);
    if (r < 0)
        return r == -EMSGSIZE ? r : -ENOMEM;
    rp_packet_put_bytes(pkt, msg->payload, msg->len);
    *out = pkt;
    return 0;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* One I/O thread's share of the io_* and buffer counters. */
static void server_add_io_stats(struct rp_server_stats *out,
                                struct net_thread *t)
{
    struct rp_port_stats ps;
    uint64_t *w = (uint64_t *)&ps;
    for (size_t k = 0; k < sizeof ps / sizeof *w; k++)
        w[k] = atomic_load_explicit(&t->stats.port[k], memory_order_relaxed);
    out->io_enters += ps.enters;
    out->io_waits += ps.waits;
    out->io_waits_empty += ps.waits_empty;
    out->io_waits_short += ps.waits_short;
    out->io_completions += ps.completed;
    out->recv_nobufs += ps.recv_nobufs;
    out->recv_rearms += ps.recv_rearms;
    out->sends_short += ps.sends_short;
    out->sends_late += ps.sends_late;
    out->buffers_out_max = max_u64(out->buffers_out_max, ps.buffers_out_max);
    out->buffers_lent +=
        atomic_load_explicit(&t->stats.buffers_lent, memory_order_relaxed);
    out->buffers_lent_max = max_u64(
        out->buffers_lent_max,
        atomic_load_explicit(&t->stats.buffers_lent_max, memory_order_relaxed));
    out->buffers = max_u64(out->buffers, ps.buffers_provided);
}

void rp_server_get_stats(struct rp_server *srv, struct rp_server_stats *out)
{
    memset(out, 0, sizeof *out);
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    for (uint32_t i = 0; i < srv->nthreads; i++) {
        struct net_counters *c = &srv->threads[i].stats;
        out->bytes_in += LD(c->bytes_in);
        out->bytes_out += LD(c->bytes_out);
        out->packets_in += LD(c->packets_in);
        out->packets_out += LD(c->packets_out);
        out->sends += LD(c->sends);
        for (int k = 0; k < RP_LEAVE_REASON_COUNT; k++)
            out->leaves[k] += LD(c->leaves[k]);
        out->resumes += LD(c->resumes);
        out->resume_refused += LD(c->resume_refused);
        out->resume_handoffs += LD(c->resume_handoffs);
        server_add_io_stats(out, &srv->threads[i]);
    }
    out->detached = LD(srv->detached_now);
    out->sessions = LD(srv->sessions_now);
    out->sessions_max = LD(srv->sessions_max);
    out->accepts = LD(srv->accepts);
    out->refused = LD(srv->refused);
    out->accept_errors = LD(srv->accept_errors);
    out->ws_accepts = LD(srv->ws_accepts);
    out->ws_sessions = LD(srv->ws_sessions_now);
    out->ws_upgrades = LD(srv->ws_upgrades);
    out->ws_refused = LD(srv->ws_refused);
#undef LD
}

void rp__server_partial_buffers(struct rp_server *srv, uint64_t *allocs,
                                uint64_t *frees)
{
    *allocs = *frees = 0;
    for (uint32_t i = 0; i < srv->nthreads; i++) {
        struct net_counters *c = &srv->threads[i].stats;
        *frees +=
            atomic_load_explicit(&c->rx_partial_frees, memory_order_relaxed);
        *allocs +=
            atomic_load_explicit(&c->rx_partial_allocs, memory_order_relaxed);
    }
}
