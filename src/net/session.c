/*
 * A session's life on its I/O thread: open, receive and frame, queue and
 * gather-send, deadlines, teardown. Everything here runs on the owner
 * thread only and takes no lock; other threads reach a session through
 * requests (io_thread.c) and the state word (session_table.c).
 *
 * Ops in flight are counted in s->ops: incremented where an op is
 * submitted, decremented in one place, session_op_done(), which every
 * completion handler ends with and which moves a teardown on. The open
 * reference (state word) is dropped only in rp__session_left(), after
 * every op has completed, the fd is closed and on_leave has run, so
 * nothing is freed under an op.
 *
 * Teardown (FIELD-NOTES: io_uring close does not cancel, multishot keeps
 * delivering), in two steps:
 *   session_end_begin()  CLOSING, shutdown(2), cancel each op in flight
 *                        by name (session_cancel_ops);
 *   session_op_done()    when the last op is back: rp_port_close_idle; when
 *                        the close is back (session_finish): the group's
 *                        final on_leave if it is in one (its reply comes
 *                        back as NET_REQ_LEFT), then the server's
 *                        on_leave, drop the open ref.
 * The server's on_leave is the session's last callback: it gets the
 * session data last. The port guarantees that every op pending at the
 * cancel completes without further help (-ECANCELED or its own result; a
 * multishot receive is never re-armed or parked after it), so one cancel
 * per op is enough and the session is released in the loop turn that
 * brings its close completion (or, in a group, its group's reply).
 *
 * The session names its ops (its receive while armed, its send while one
 * is out) rather than cancelling by descriptor, and closes with
 * close_idle: on io_uring a cancel by descriptor, and the one rp_port_close
 * links before itself, walk every pending poll request of the ring (one
 * armed receive per open session), which made each teardown cost O(open
 * sessions); a cancel by name is a hash lookup.
 *
 * Resume (resume.c, resume_grace_ms > 0) adds two variants of the same
 * teardown, both ended by session_op_done() once every op is back:
 *   detach   a drop (peer closed, reset) of a resumable session: shutdown,
 *            cancel, close as above, but the state word never gets
 *            CLOSING and 'detaching' (not 'closing') stops new ops; when
 *            the close is back the session stays in the thread's list,
 *            detached (no fd, no op, no receive buffer) with its queue,
 *            retained frames, group and data, until a RESUME attaches a
 *            new fd (rp__session_attach) or its deadline ends it.
 *   hand-off a pre-join session whose first frame is RESUME: CLOSING,
 *            cancel (no shutdown: the connection lives on), and once
 *            every op is back the fd goes, open, to the resumed session's
 *            thread; the slot is freed with no callback.
 * A session that ends while detaching lets the detach's ops finish the
 * end ('closing' then wins); a detached one ends at once (nothing in
 * flight).
 */
#include "net/net.h"

#include "net/leave_log.h"
#include "proto/ws_frame.h"

#include "core/assert.h"
#include "core/clock.h"
#include <errno.h>
#include <ringport/log.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PROTO_LOG_PER_SEC 10

static void session_op_done(struct net_thread *t, struct rp_session *s);
static void session_drop(struct net_thread *t, struct rp_session *s,
                         enum rp_leave_reason reason);

static inline uint64_t op_key(struct rp_session *s, unsigned kind)
{
    return (uint64_t)(uintptr_t)s | kind;
}

/* Lending a receive buffer saves a packet and a copy, but ties up a
   whole buffer until the send completes: below this size the copy is the
   cheaper of the two (a few tens of ns) and the buffer goes straight back
   to the kernel. */
#define LEND_MIN_BYTES 1024

void rp__req_release(struct net_thread *t, struct net_req *r)
{
    if (r->pkt) {
        rp_packet_unref(r->pkt);
    } else {
        rp_port_buffer_recycle(t->bufs, r->lent_id);
        t->lent--;
    }
    rp_pool_free(t->srv->req_pool, r);
}

bool rp__session_can_lend(const struct net_thread *t, const void *data,
                          size_t len)
{
    const uint8_t *p = data;
    return t->rx_buf_id >= 0 && !t->rx_lent && len >= LEND_MIN_BYTES &&
           t->lent < t->lend_max && p >= t->rx_base &&
           len <= t->rx_len - (size_t)(p - t->rx_base) &&
           !rp__resume_on(t->srv);
}

static void req_drop(struct net_thread *t, struct rp_session *s,
                     struct net_req *r)
{
    rp__req_unqueue(s, r);
    rp__req_release(t, r);
}

/* ---- receive ------------------------------------------------------- */

/* The slot's layout (net.h): session fields lie over the receive op's
   tail, which a multishot receive and a close never touch; the slot
   stays within its 7 cache lines (docs/benchmarks.md, "Memory that
   follows live sessions": an idle session costs its slot). */
_Static_assert(offsetof(struct rp_session, dec) -
                       offsetof(struct rp_session, recv_op) >=
                   NET_RX_OP_HEAD,
               "session fields over the receive op's used part");
_Static_assert(offsetof(struct rp_session, mv) + sizeof(void *) <=
                   offsetof(struct rp_session, recv_op) + sizeof(struct rp_op),
               "session fields past the receive op's tail");
_Static_assert(sizeof(struct rp_session) <= 7 * 64,
               "the session slot outgrew 448 bytes: move what an idle "
               "session does not use into an extension");

/* rp_op_init for the receive op's own part (it would clear the session
   fields over the rest: net.h). */
static void session_rx_op_init(struct rp_session *s)
{
    memset(&s->recv_op, 0, NET_RX_OP_HEAD);
    s->recv_op.rp__priv.fd = -1; /* as rp_op_init leaves it */
}

/*
 * One multishot receive into the thread's provided buffers, on either
 * backend (epoll emulates it: readiness, then a recv into a free buffer).
 * Each completion is handed over in place and its buffer recycled at once;
 * only a frame cut by a buffer's end is copied, into the decoder's partial
 * buffer, which is allocated then and freed as soon as it drains. An idle
 * session holds no receive memory.
 */
static int session_arm_recv(struct net_thread *t, struct rp_session *s)
{
    s->recv_op.key = op_key(s, NET_OP_RECV);
    int r = rp_port_recv_multishot(t->port, &s->recv_op, s->fd, t->bufs);
    if (r == 0) {
        s->ops++;
        s->recv_armed = true;
    }
    return r;
}

static void proto_log(struct net_thread *t, struct rp_session *s, int err)
{
    if (t->now - t->log_window_ns >= RP_NS_PER_SEC) {
        if (t->log_suppressed)
            RP_WARN("session", "%u protocol error lines suppressed",
                    t->log_suppressed);
        t->log_window_ns = t->now;
        t->log_lines = 0;
        t->log_suppressed = 0;
    }
    if (t->log_lines >= PROTO_LOG_PER_SEC) {
        t->log_suppressed++;
        return;
    }
    t->log_lines++;
    char hex[16 * 3 + 1] = "";
    size_t n = (size_t)(t->rx_limit - t->rx_pos);
    if (n > 16)
        n = 16;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 3 * i, 4, "%02x ", t->rx_pos[i]);
    RP_WARN("session", "session %llu: protocol error (%s), bytes: %s",
            (unsigned long long)s->sid, strerror(-err), hex);
}

static int session_on_frame(void *user, const struct rp_frame *f)
{
    struct rp_session *s = user;
    struct net_thread *t = s->owner;
    if (s->closing || s->draining)
        return -ECANCELED; /* a callback ended it: drop the rest */
    if (f->payload >= t->rx_pos && f->payload < t->rx_limit)
        t->rx_pos = f->payload + f->len;
    NET_STAT_ADD(t, packets_in, 1);
    s->got_first = true;
    if (rp__resume_on(t->srv)) {
        if (!s->joined) {
            int r = rp__resume_first_frame(t, s, f);
            if (r <= 0)
                return r; /* consumed (HELLO, RESUME) or ended */
            if (s->closing || s->draining)
                return -ECANCELED; /* on_join ended it */
        } else if (f->type >= RP_CTL_FIRST) {
            return rp__resume_ctl_frame(t, s, f);
        }
        if (s->resumable && ++s->rs->rx_count % RP_RESUME_ACK_EVERY == 0) {
            uint8_t ack[8];
            for (int i = 0; i < 8; i++)
                ack[i] = (uint8_t)(s->rs->rx_count >> (8 * i));
            /* No memory for an ACK: the client keeps its frames longer. */
            (void)rp__resume_ctl(t, s, RP_CTL_ACK, ack, sizeof ack, false);
        }
    }
    if (s->route || s->moving) {
        rp__route_frame(t, s, f); /* to its content group */
        return 0;
    }
    struct rp_message msg = {
        .type = f->type, .len = f->len, .payload = f->payload};
    t->srv->cfg.cb.on_message(t->srv, s->sid, s->data, &msg, t->srv->cfg.user);
    return 0;
}

/* Counts a partial-frame buffer allocated (none held before, one now) or
   freed (the reverse). */
static void session_count_partial(struct net_thread *t, bool before, bool now)
{
    if (!before && now)
        NET_STAT_ADD(t, rx_partial_allocs, 1);
    else if (before && !now)
        NET_STAT_ADD(t, rx_partial_frees, 1);
}

/* Hands 'len' received bytes to the application. */
static void session_input(struct net_thread *t, struct rp_session *s,
                          const uint8_t *data, size_t len)
{
    struct rp_server *srv = t->srv;
    s->last_rx_ns = t->now;
    NET_STAT_ADD(t, bytes_in, len);
    if (s->draining)
        return; /* ending after its sends: nothing more is delivered */
    if (s->ws_state) {
        /* The bytes lie in the thread's own provided buffer, writable
           memory: the WebSocket decoder unmasks them in place. */
        rp__ws_input(t, s, (uint8_t *)(uintptr_t)data, len);
        return;
    }
    if (srv->cfg.mode == RP_SERVER_RAW) {
        s->got_first = true;
        t->rx_session = s;
        t->rx_base = data;
        t->rx_len = len;
        srv->cfg.cb.on_data(srv, s->sid, s->data, data, len, srv->cfg.user);
        t->rx_session = NULL;
        return;
    }
    (void)rp__session_frames(t, s, data, len);
}

int rp__session_frames(struct net_thread *t, struct rp_session *s,
                       const uint8_t *data, size_t len)
{
    size_t before = rp_frame_decoder_pending(&s->dec);
    bool held = s->dec.partial != NULL;
    t->rx_pos = data;
    t->rx_limit = data + len;
    t->rx_session = s;
    int r = rp_frame_decoder_feed(&s->dec, data, len, session_on_frame, s);
    t->rx_session = NULL;
    /* Counted on every way out: the teardown counts the free of what the
       session holds then. */
    session_count_partial(t, held, s->dec.partial != NULL);
    held = s->dec.partial != NULL;
    if (r < 0) {
        if (r == -ECANCELED)
            return r;
        if (r == -EMSGSIZE || r == -EBADMSG) {
            proto_log(t, s, r);
            if (s->ws_state)
                rp__ws_frame_error(t, s, r); /* a close frame first */
            else
                rp__session_end(t, s, RP_LEAVE_PROTOCOL, false);
        } else {
            rp__session_end(t, s, RP_LEAVE_RESET, false);
        }
        return -ECANCELED;
    }
    if (rp_frame_decoder_pending(&s->dec) == 0) {
        s->frame_start_ns = 0;
        rp_frame_decoder_trim(&s->dec);
    } else if (before == 0 || r > 0) {
        s->frame_start_ns = t->now; /* a new frame has begun */
    }
    session_count_partial(t, held, s->dec.partial != NULL);
    return s->closing || s->draining ? -ECANCELED : 0;
}

static void session_on_recv(struct net_thread *t, struct rp_session *s,
                            int32_t res, uint32_t flags)
{
    bool final = !(flags & RP_COMP_MORE);
    if (flags & RP_COMP_BUFFER) {
        uint16_t id = rp_comp_buffer_id(flags);
        t->rx_lent = false;
        if (res > 0 && !s->closing && !s->detaching) {
            t->rx_buf_id = id;
            session_input(t, s, rp_buffers_data(t->bufs, id), (size_t)res);
            t->rx_buf_id = -1;
        }
        /* Lent to a send: recycled when that send is released. */
        if (!t->rx_lent)
            rp_port_buffer_recycle(t->bufs, id);
    }
    if (!final)
        return;
    s->recv_armed = false;
    if (s->closing || s->detaching) {
        session_op_done(t, s); /* may finish the session */
        return;
    }
    session_op_done(t, s); /* open: only counted back */
    if (res > 0 && session_arm_recv(t, s) == 0)
        return;
    session_drop(t, s, res == 0 ? RP_LEAVE_PEER_CLOSED : RP_LEAVE_RESET);
}

/* ---- send ---------------------------------------------------------- */

void rp__session_enqueue(struct net_thread *t, struct rp_session *s,
                         struct net_req *r)
{
    NET_ASSERT_OWNER(t, s);
    /* A request may race the session's end (or, with a guessed id, its
       start): the reference it holds keeps the slot, not the session. */
    /* Nothing goes after a WebSocket close frame (RFC 6455 5.5.1). */
    if (s->closing || s->sid != r->sid || rp__ws_soft_end(s)) {
        req_drop(t, s, r);
        return;
    }
    r->next = NULL;
    if (s->q_tail)
        s->q_tail->next = r;
    else
        s->q_head = r;
    s->q_tail = r;
    rp__session_mark_dirty(t, s);
}

/* Puts the session on the thread's flush list (flushed at the end of the
   loop turn), unless it is there already or a send is in flight (its
   completion flushes what queued meanwhile). */
void rp__session_mark_dirty(struct net_thread *t, struct rp_session *s)
{
    if (!s->dirty && !s->sending) {
        s->dirty = true;
        s->dirty_next = t->dirty;
        t->dirty = s;
    }
}

/*
 * Takes an ending session off the flush list. Its open reference goes
 * next, and the accept thread may hand the slot to a new connection at
 * once (lowest slot first, session_table.c), so the list must not keep
 * it. The list holds the sessions that queued this turn: a short walk,
 * and only at an end while something was queued.
 */
static void session_undirty(struct net_thread *t, struct rp_session *s)
{
    if (!s->dirty)
        return;
    for (struct rp_session **p = &t->dirty; *p; p = &(*p)->dirty_next)
        if (*p == s) {
            *p = s->dirty_next;
            break;
        }
    s->dirty = false;
}

/* The session's net_tx, taken from the pool at its first use (its ops
   prepared), or NULL when the pool has no memory. */
static struct net_tx *session_tx(struct net_thread *t, struct rp_session *s)
{
    if (s->tx)
        return s->tx;
    struct net_tx *tx = rp_pool_alloc(t->srv->iov_pool);
    if (!tx)
        return NULL;
    rp_op_init(&tx->send_op);
    rp_op_init(&tx->aux_op);
    rp_op_init(&tx->aux_send_op);
    tx->send_op.key = op_key(s, NET_OP_SEND);
    tx->aux_op.key = op_key(s, NET_OP_CANCEL);
    tx->aux_send_op.key = op_key(s, NET_OP_CANCEL);
    s->tx = tx;
    return tx;
}

/* Gives the net_tx back: nothing in flight uses it. */
static void session_tx_release(struct net_thread *t, struct rp_session *s)
{
    if (s->tx)
        rp_pool_free(t->srv->iov_pool, s->tx);
    s->tx = NULL;
}

/*
 * A teardown's cancels: the session's ops in flight, each by name (the
 * multishot receive while armed, the send while one is out; nothing else
 * of a session's goes to the port before its close). Each cancel that
 * goes in is one more op in flight, counted here. True when every op in
 * flight got its cancel; false when one did not (no memory for the
 * net_tx, or the port refused): the caller's shutdown then ends it.
 */
static bool session_cancel_ops(struct net_thread *t, struct rp_session *s)
{
    struct net_tx *tx = session_tx(t, s);
    if (!tx)
        return false;
    bool all = true;
    if (s->recv_armed) {
        if (rp_port_cancel(t->port, &tx->aux_op, &s->recv_op) == 0)
            s->ops++;
        else
            all = false;
    }
    if (s->sending) {
        if (rp_port_cancel(t->port, &tx->aux_send_op, &tx->send_op) == 0)
            s->ops++;
        else
            all = false;
    }
    return all;
}

/*
 * Starts one gather send of the queued packets: up to max_iov iovecs.
 * Small packets (up to NET_COALESCE_PKT bytes) are copied side by side
 * into the net_tx block's tail (NET_COALESCE_BYTES, net.h) and go out as
 * one iovec: copying 68 bytes costs a few ns, where the kernel's per-iovec
 * work in tcp_sendmsg (a segment walk and a hardened-usercopy check each)
 * cost more than that per packet. Packets keep their requests in the
 * in-flight list either way, released when the send completes.
 */
void rp__session_flush(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    if (s->closing || s->sending || s->detaching || s->detached)
        return; /* detached: the queue waits for a RESUME */
    if (!s->q_head) {
        if (s->draining)
            rp__session_end(t, s, (enum rp_leave_reason)s->reason, false);
        return;
    }
    struct net_tx *tx = session_tx(t, s);
    if (!tx) {
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return;
    }
    bool raw = srv->cfg.mode == RP_SERVER_RAW;
    uint8_t *co = (uint8_t *)(tx->iov + srv->cfg.max_iov);
    uint32_t co_used = 0;
    uint32_t n = 0, npkts = 0;
    struct net_req *last = NULL;
    for (struct net_req *r = s->q_head; r; r = r->next) {
        size_t len;
        const uint8_t *p;
        if (!r->pkt) { /* raw bytes in a lent receive buffer */
            p = r->lent;
            len = r->bytes;
        } else if (raw || r->ws_raw) {
            p = rp_packet_payload(r->pkt);
            len = rp_packet_size(r->pkt);
        } else if (s->ws_state) {
            /* One binary message per packet; its header lives in the
               packet (written once, by the first such send on any
               thread), so a broadcast's buffer stays shared. */
            p = rp__packet_ws_wire(r->pkt, &len);
        } else {
            p = rp_packet_wire(r->pkt, &len);
        }
        if (len <= NET_COALESCE_PKT && len <= NET_COALESCE_BYTES - co_used) {
            uint8_t *at = co + co_used;
            if (n > 0 &&
                (uint8_t *)tx->iov[n - 1].iov_base + tx->iov[n - 1].iov_len ==
                    at) {
                tx->iov[n - 1].iov_len += len; /* extends the run */
            } else if (n < srv->cfg.max_iov) {
                tx->iov[n].iov_base = at;
                tx->iov[n].iov_len = len;
                n++;
            } else {
                break;
            }
            memcpy(at, p, len);
            co_used += (uint32_t)len;
        } else if (n < srv->cfg.max_iov) {
            tx->iov[n].iov_base = (void *)(uintptr_t)p;
            tx->iov[n].iov_len = len;
            n++;
        } else {
            break;
        }
        npkts++;
        last = r;
    }
    s->inflight = s->q_head;
    s->inflight_n = npkts;
    s->q_head = last->next;
    if (!s->q_head)
        s->q_tail = NULL;
    last->next = NULL;
    if (rp_port_send(t->port, &tx->send_op, s->fd, tx->iov, (int)n) < 0) {
        /* Back into the queue: teardown releases it. */
        last->next = s->q_head;
        s->q_head = s->inflight;
        if (!s->q_tail)
            s->q_tail = last;
        s->inflight = NULL;
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return;
    }
    s->sending = true;
    s->ops++;
}

static void session_on_send(struct net_thread *t, struct rp_session *s,
                            int32_t res)
{
    s->sending = false;
    /* Handed to the kernel, whatever the result: released, or retained
       until the client ACKs them (resume on; their bytes stay counted). */
    rp__resume_sent(t, s, s->inflight);
    s->inflight = NULL;
    if (res >= 0) {
        NET_STAT_ADD(t, bytes_out, (uint64_t)res);
        NET_STAT_ADD(t, packets_out, s->inflight_n);
        NET_STAT_ADD(t, sends, 1);
    }
    s->inflight_n = 0;
    if (s->closing || s->detaching) {
        /* The net_tx stays: a teardown's cancel may be in flight in it
           (session_release_conn gives it back). */
        session_op_done(t, s); /* may finish the session */
        return;
    }
    if (!s->q_head)
        session_tx_release(t, s); /* an idle session holds no net_tx */
    session_op_done(t, s);        /* open: only counted back */
    if (res < 0)
        session_drop(t, s, RP_LEAVE_RESET);
    else
        rp__session_flush(t, s); /* more queued meanwhile, or drained */
}

/* ---- open and teardown ---------------------------------------------- */

static void session_refuse(struct net_thread *t, struct rp_session *s)
{
    atomic_fetch_add_explicit(&t->srv->refused, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&t->srv->accepts, 1, memory_order_relaxed);
    close(s->fd);
    atomic_fetch_or_explicit(&s->state, NET_CLOSING, memory_order_acq_rel);
    rp__session_put(t->srv, s);
}

void rp__session_open(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    s->sid = s->open_req.sid;
    if (t->stopping) {
        session_refuse(t, s);
        return;
    }
    session_rx_op_init(s);
    s->tx = NULL;
    atomic_store_explicit(&s->own_queued, 0, memory_order_relaxed);
    s->q_head = s->q_tail = s->inflight = NULL;
    s->inflight_n = 0;
    s->ops = 0;
    s->recv_armed = s->sending = s->draining = false;
    s->closing = s->closed = s->dirty = s->got_first = false;
    s->reason = 0;
    s->route = NULL;
    s->mv = NULL; /* allocated at its first move into a group (route.c) */
    s->data = NULL;
    s->ended = false;
    s->moving = false;
    /* Resume on: the join waits for the first frame (resume.c). */
    s->joined = !rp__resume_on(srv);
    s->resumable = false;
    s->detaching = s->detached = false;
    s->rs = NULL; /* allocated if it joins with HELLO (resume.c) */
    s->handoff = NULL;
    s->joined_ns = s->last_rx_ns = t->now;
    s->frame_start_ns = 0; /* drain_deadline_ns: joined_ns's, later */
    memset(&s->dec, 0, sizeof s->dec);
    s->ws_state = NULL;
    if (s->ws) {
        /* The program meets a WebSocket session at its upgrade: on_join
           (or, resume on, the first frame) waits for the handshake. */
        s->joined = false;
        if (rp__ws_open(t, s, false) < 0) {
            session_refuse(t, s);
            return;
        }
    }
    if (srv->cfg.mode == RP_SERVER_FRAMED) {
        struct rp_frame_limits lim = {.max_payload = srv->cfg.max_payload,
                                      .reject_empty = srv->cfg.reject_empty,
                                      .type_min = srv->cfg.type_min,
                                      .type_max = srv->cfg.type_max};
        rp_frame_decoder_init(&s->dec, &lim);
    }
    if (session_arm_recv(t, s) < 0) {
        rp__ws_release(s);
        session_refuse(t, s);
        return;
    }
    s->prev = NULL;
    s->next = t->list;
    if (t->list)
        t->list->prev = s;
    t->list = s;
    t->open++;
    uint64_t now = atomic_fetch_add(&srv->sessions_now, 1) + 1;
    uint64_t max = atomic_load(&srv->sessions_max);
    while (now > max &&
           !atomic_compare_exchange_weak(&srv->sessions_max, &max, now))
        ;
    if (s->joined && srv->cfg.cb.on_join)
        srv->cfg.cb.on_join(srv, s->sid, srv->cfg.user);
}

/* What a connection holds beyond its fd: the net_tx and the partial
   frame. Nothing in flight. */
static void session_release_conn(struct net_thread *t, struct rp_session *s)
{
    session_tx_release(t, s);
    bool held = s->dec.partial != NULL;
    rp_frame_decoder_destroy(&s->dec);
    session_count_partial(t, held, false);
    rp__ws_release(s);
}

static void session_unlist(struct net_thread *t, struct rp_session *s)
{
    session_undirty(t, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        t->list = s->next;
    if (s->next)
        s->next->prev = s->prev;
    t->open--;
}

static void session_finish(struct net_thread *t, struct rp_session *s)
{
    rp__resume_end(t, s); /* retained frames, a waiting RESUME */
    struct net_req *r = s->q_head;
    while (r) {
        struct net_req *next = r->next;
        req_drop(t, s, r);
        r = next;
    }
    s->q_head = s->q_tail = NULL;
    session_release_conn(t, s);
    session_unlist(t, s);
    if (rp__route_end(t, s)) {
        /* Its group runs on_leave first and replies (rp__route_on_left):
           the data is the group's until then. */
        s->ended = true;
        t->awaiting++;
        return;
    }
    rp__session_left(t, s);
}

void rp__session_left(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    if (s->ended) {
        s->ended = false;
        t->awaiting--;
    }
    /* A session that never joined (resume on: it closed before its first
       frame) gets no on_leave either. */
    if (s->joined && srv->cfg.cb.on_leave)
        srv->cfg.cb.on_leave(srv, s->sid, s->data,
                             (enum rp_leave_reason)s->reason, srv->cfg.user);
    s->data = NULL;
    rp__session_put(srv, s); /* the open reference */
}

/* Ends for which the peer misbehaved: the connection is reset, and what is
   still queued for it is dropped. */
static bool session_end_is_abortive(enum rp_leave_reason reason)
{
    switch (reason) {
    case RP_LEAVE_PROTOCOL:
    case RP_LEAVE_IDLE_TIMEOUT:
    case RP_LEAVE_FRAME_DEADLINE:
    case RP_LEAVE_FIRST_PACKET:
    case RP_LEAVE_SEND_OVERFLOW: return true;
    default: return false;
    }
}

/*
 * One op of the session is back (its last completion has been handled).
 * The only place s->ops goes down; while the session is closing, the last
 * op back moves the teardown on: the close goes in, and once the close is
 * back, the session is finished.
 */
static void session_handoff_done(struct net_thread *t, struct rp_session *s);
static void session_detached(struct net_thread *t, struct rp_session *s);

static void session_op_done(struct net_thread *t, struct rp_session *s)
{
    assert(s->ops > 0);
    if (--s->ops > 0 || !(s->closing || s->detaching))
        return;
    if (s->handoff) {
        session_handoff_done(t, s); /* the fd lives on, elsewhere */
        return;
    }
    if (!s->closed) {
        s->closed = true;
        /* Every op is back: the receive's op is free to carry the close,
           and the close needs no cancel before it. */
        s->recv_op.key = op_key(s, NET_OP_CLOSE);
        if (rp_port_close_idle(t->port, &s->recv_op, s->fd) == 0) {
            s->ops++;
            return;
        }
        close(s->fd); /* nothing pending: a plain close is safe */
    }
    if (s->closing)
        session_finish(t, s);
    else
        session_detached(t, s);
}

/* ---- resume: detach, attach, hand-off ------------------------------- */

/* The detach's close is back: the session holds no descriptor now. */
static void session_detached(struct net_thread *t, struct rp_session *s)
{
    session_release_conn(t, s);
    s->fd = -1;
    s->detaching = false;
    s->detached = true;
    s->rs->detach_deadline_ns =
        t->now + (int64_t)t->srv->cfg.resume_grace_ms * RP_NS_PER_MS;
    atomic_fetch_add_explicit(&t->srv->detached_now, 1, memory_order_relaxed);
    if (s->rs->pend_fd >= 0)
        rp__resume_attach(t, s); /* a RESUME waited for this teardown */
}

void rp__session_detach(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    assert(!s->closing && !s->detaching && !s->detached);
    s->detaching = true;
    s->ops++;
    shutdown(s->fd, SHUT_RDWR);
    if (s->ops > 1)
        session_cancel_ops(t, s);
    rp__route_notify(t, s, false); /* on_detach */
    session_op_done(t, s);
}

int rp__session_attach(struct net_thread *t, struct rp_session *s, int fd,
                       bool ws)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    assert(s->detached && s->ops == 0);
    s->fd = fd;
    session_rx_op_init(s);
    s->closed = s->recv_armed = s->sending = false;
    s->detached = false;
    atomic_fetch_sub_explicit(&srv->detached_now, 1, memory_order_relaxed);
    s->last_rx_ns = t->now;
    s->frame_start_ns = 0;
    struct rp_frame_limits lim = {.max_payload = srv->cfg.max_payload,
                                  .reject_empty = srv->cfg.reject_empty,
                                  .type_min = srv->cfg.type_min,
                                  .type_max = srv->cfg.type_max};
    rp_frame_decoder_init(&s->dec, &lim);
    s->ws = ws;
    if ((ws && rp__ws_open(t, s, true) < 0) || session_arm_recv(t, s) < 0) {
        /* Attached with no op: the end closes the fd at once. */
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return -ENOMEM;
    }
    if (s->q_head)
        rp__session_mark_dirty(t, s);
    return 0;
}

void rp__session_handoff(struct net_thread *t, struct rp_session *s,
                         struct net_resume *r)
{
    NET_ASSERT_OWNER(t, s);
    atomic_fetch_or_explicit(&s->state, NET_CLOSING, memory_order_acq_rel);
    s->handoff = r;
    s->closing = true;
    s->ops++;
    /* No shutdown: the connection goes on with the resumed session. The
       cancels take every op back (on epoll each also brings the fd's
       registration up to date at once, so once the ops are back it is
       no longer watched here). With no memory for a cancel, a shutdown
       has to take the op back: the connection arrives dead and the
       client connects again. */
    if (s->ops > 1 && !session_cancel_ops(t, s))
        shutdown(s->fd, SHUT_RDWR);
    session_op_done(t, s);
}

/* Every op of the hand-off is back: the slot goes (no callback, no leave
   counted: it never joined) and the fd travels in the request. */
static void session_handoff_done(struct net_thread *t, struct rp_session *s)
{
    struct rp_server *srv = t->srv;
    struct net_resume *r = s->handoff;
    s->handoff = NULL;
    struct net_req *q = s->q_head;
    while (q) {
        struct net_req *next = q->next;
        req_drop(t, s, q);
        q = next;
    }
    s->q_head = s->q_tail = NULL;
    session_release_conn(t, s);
    session_unlist(t, s);
    atomic_fetch_sub(&srv->sessions_now, 1);
    NET_STAT_ADD(t, resume_handoffs, 1);
    s->fd = -1;
    rp__thread_push(r->target ? r->target->owner : t, &r->req);
    rp__session_put(srv, s); /* the open reference */
}

/*
 * The first step of a teardown: no new op from here on, the peer learns
 * of the end (shutdown, or a reset for the abortive reasons), and a
 * cancel per op takes back every op in flight. The step counts itself as an
 * op while it runs, so that whichever finishes last, this step or an op
 * it cancels, moves the teardown on through session_op_done().
 */
static void session_end_begin(struct net_thread *t, struct rp_session *s)
{
    s->closing = true;
    /* Counted before the peer can see the end, so a client that reads EOF
       then asks for stats finds the session gone and its reason counted. */
    NET_STAT_ADD(t, leaves[s->reason], 1);
    rp__session_log_end(s, (enum rp_leave_reason)s->reason, t->now);
    atomic_fetch_sub(&t->srv->sessions_now, 1);
    if (s->detached) {
        s->closed = true; /* no fd, nothing in flight */
        session_finish(t, s);
        return;
    }
    if (s->detaching)
        return; /* the detach's ops are out: the last one finishes it */
    s->ops++;
    if (session_end_is_abortive((enum rp_leave_reason)s->reason) &&
        !rp__ws_soft_end(s)) {
        /* Reset, don't linger: a peer that stopped reading has a zero
           window, so a FIN would wait behind our unsent bytes for minutes
           (and so would the kernel memory they hold), and the peer would
           never learn it was cut. */
        struct linger abort_now = {.l_onoff = 1, .l_linger = 0};
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
    }
    shutdown(s->fd, SHUT_RDWR);
    /* Beyond our own step, something is in flight: cancel it. The port
       completes every op it cancels (or its result, if it won the race),
       multishot receives included, so nothing outlives these cancels. If
       a cancel cannot be submitted, the shutdown above still ends the
       receive and the send. */
    if (s->ops > 1)
        session_cancel_ops(t, s);
    session_op_done(t, s);
}

void rp__session_end(struct net_thread *t, struct rp_session *s,
                     enum rp_leave_reason reason, bool drain)
{
    NET_ASSERT_OWNER(t, s);
    if (s->closing)
        return; /* teardown under way: its ops move it on */
    if (!s->draining) {
        s->reason = (uint8_t)reason;
        atomic_fetch_or_explicit(&s->state, NET_CLOSING, memory_order_acq_rel);
    }
    if (drain && s->ws_state && !s->draining)
        rp__ws_goodbye(t, s, reason); /* a close frame, last in the queue */
    if (drain && !s->detached && !s->detaching && (s->sending || s->q_head)) {
        if (!s->draining) {
            s->draining = true;
            s->drain_deadline_ns =
                t->now + (int64_t)t->srv->cfg.stop_drain_ms * RP_NS_PER_MS;
        }
        return; /* the last send back (or the deadline) ends it */
    }
    session_end_begin(t, s);
}

/* The connection dropped: a resumable session detaches, any other ends. */
static void session_drop(struct net_thread *t, struct rp_session *s,
                         enum rp_leave_reason reason)
{
    if (rp__resume_on(t->srv) && s->resumable && !s->draining && !s->closing &&
        !t->stopping) {
        rp__session_detach(t, s);
        return;
    }
    rp__session_end(t, s, reason, false);
}

void rp__session_complete(struct net_thread *t, struct rp_session *s,
                          unsigned kind, int32_t res, uint32_t flags)
{
    NET_ASSERT_OWNER(t, s);
    switch (kind) {
    case NET_OP_RECV: session_on_recv(t, s, res, flags); break;
    case NET_OP_SEND: session_on_send(t, s, res); break;
    case NET_OP_CANCEL:
    case NET_OP_CLOSE: session_op_done(t, s); break;
    default: RP_PANIC("session: op kind %u", kind);
    }
}

void rp__session_tick(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    const struct rp_server_config *cfg = &t->srv->cfg;
    int64_t now = t->now;
    if (s->closing)
        return; /* its ops move it on: nothing is waited for by time */
    if (s->detached || s->detaching) {
        /* Only the grace period counts: decided here, on the thread that
           also takes a RESUME for it, so expiry and resume never both
           win. */
        if (s->detached && now >= s->rs->detach_deadline_ns)
            rp__session_end(t, s, RP_LEAVE_RESUME_EXPIRED, false);
        return;
    }
    if (s->draining) {
        if (now >= s->drain_deadline_ns)
            rp__session_end(t, s, (enum rp_leave_reason)s->reason, false);
        return;
    }
    if (s->ws_state && rp__ws_tick(t, s))
        return;
    if (cfg->idle_timeout_ms &&
        now - s->last_rx_ns >= (int64_t)cfg->idle_timeout_ms * RP_NS_PER_MS)
        rp__session_end(t, s, RP_LEAVE_IDLE_TIMEOUT, false);
    else if (cfg->frame_deadline_ms && s->frame_start_ns &&
             now - s->frame_start_ns >=
                 (int64_t)cfg->frame_deadline_ms * RP_NS_PER_MS)
        rp__session_end(t, s, RP_LEAVE_FRAME_DEADLINE, false);
    else if (cfg->first_packet_deadline_ms && !s->got_first &&
             now - s->joined_ns >=
                 (int64_t)cfg->first_packet_deadline_ms * RP_NS_PER_MS)
        rp__session_end(t, s, RP_LEAVE_FIRST_PACKET, false);
}
