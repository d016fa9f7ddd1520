/*
 * A WebSocket connection on a session (RFC 6455; docs/protocol.md
 * "WebSocket mapping"). A connection accepted on the WebSocket listener
 * is an ordinary session (same id space, groups, moves, limits, resume,
 * send queue) whose bytes pass through here first:
 *
 *   handshake  the request is gathered (at most RP_WS_MAX_REQUEST bytes,
 *              within ws_handshake_timeout_ms of the connect) and parsed
 *              by proto/ws_handshake.c; 101 opens it, 400 / 403 / 426
 *              refuse it (the response, then a FIN). The program meets
 *              the session at the 101 (on_join, or with resume on the
 *              first frame as on TCP); a refused one never joins.
 *   frames     proto/ws_frame.c unmasks client frames in place; binary
 *              payload bytes go straight into the session's ringport frame
 *              decoder (rp__session_frames), as a TCP read's would, so
 *              nothing is reassembled and a fragmented message costs no
 *              buffer. A message must end on a frame boundary (1007).
 *              Ping gets a pong with its payload, close gets its code
 *              echoed and ends the session (PEER_CLOSED) after the echo.
 *   send       session.c sends every packet as one binary message through
 *              rp__packet_ws_wire (the header lives in the packet's own
 *              header room: one shared buffer per broadcast); the bytes
 *              queued here (response, pong, close) are 'ws_raw' requests.
 *
 * Why not libwebsockets or wslay: see proto/ws_handshake.h.
 *
 * A rule broken ends the session with PROTOCOL after a close frame with
 * the code (1002, 1003, 1007, 1009); that end is a FIN behind the close
 * frame, never the reset an abortive TCP end uses, so the client reads
 * the code. Thread: the session's I/O thread, every function.
 */
#include "net/net.h"

#include "proto/ws_frame.h"
#include "proto/ws_handshake.h"

#include "core/clock.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct net_ws {
    bool open;     /* handshake done: frames from here on */
    bool soft_end; /* a close frame or HTTP refusal is queued */
    uint16_t req_len;
    uint8_t *req; /* the request so far; freed at the upgrade */
    struct rp_ws_decoder dec;
};

int rp__ws_open(struct net_thread *t, struct rp_session *s, bool upgraded)
{
    NET_ASSERT_OWNER(t, s);
    struct net_ws *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    if (upgraded) {
        w->open = true;
        rp_ws_decoder_init(&w->dec, t->srv->cfg.ws_max_message);
    }
    s->ws_state = w;
    atomic_fetch_add_explicit(&t->srv->ws_sessions_now, 1,
                              memory_order_relaxed);
    return 0;
}

void rp__ws_release(struct rp_session *s)
{
    struct net_ws *w = s->ws_state;
    if (!w)
        return;
    atomic_fetch_sub_explicit(&s->owner->srv->ws_sessions_now, 1,
                              memory_order_relaxed);
    free(w->req);
    free(w);
    s->ws_state = NULL;
}

bool rp__ws_soft_end(const struct rp_session *s)
{
    return s->ws_state && s->ws_state->soft_end;
}

/* Queues bytes to go out as they are. Counted against send_queue_limit
   like any send (a peer that pings without reading is cut; not checked
   with 'no_limit', for the goodbye inside rp__session_end, which must not
   end the session again), released after the send and never retained for
   a resume. Returns 0, -ENOBUFS (the session is being cut) or -ENOMEM. */
static int ws_queue_raw(struct net_thread *t, struct rp_session *s,
                        const void *bytes, size_t len, bool no_limit)
{
    struct rp_server *srv = t->srv;
    uint32_t old = atomic_fetch_add_explicit(&s->queued_bytes, (uint32_t)len,
                                             memory_order_relaxed);
    if (!no_limit && (uint64_t)old + len > srv->cfg.send_queue_limit) {
        atomic_fetch_sub_explicit(&s->queued_bytes, (uint32_t)len,
                                  memory_order_relaxed);
        rp__session_end(t, s, RP_LEAVE_SEND_OVERFLOW, false);
        return -ENOBUFS;
    }
    struct net_req *r = rp_pool_alloc(srv->req_pool);
    struct rp_packet *pkt = NULL;
    if (!r || rp_packet_create(len, 0, &pkt) < 0) {
        if (r)
            rp_pool_free(srv->req_pool, r);
        atomic_fetch_sub_explicit(&s->queued_bytes, (uint32_t)len,
                                  memory_order_relaxed);
        return -ENOMEM;
    }
    if (len)
        rp_packet_put_bytes(pkt, bytes, len);
    r->kind = NET_REQ_SEND;
    r->sid = s->sid;
    r->pkt = pkt;
    r->bytes = (uint32_t)len;
    r->ctl = true;
    r->ws_raw = true;
    r->batch = false;
    r->own = false; /* counted in queued_bytes above */
    rp__session_enqueue(t, s, r);
    return 0;
}

/* A control frame (pong, close) with 'len' <= 125 payload bytes. */
static int ws_queue_control(struct net_thread *t, struct rp_session *s,
                            uint8_t opcode, const uint8_t *payload, size_t len,
                            bool no_limit)
{
    uint8_t f[RP_WS_MAX_HEADER + RP_WS_MAX_CONTROL];
    size_t h = rp_ws_header(f, opcode, len);
    if (len)
        memcpy(f + h, payload, len);
    return ws_queue_raw(t, s, f, h + len, no_limit);
}

/* Sends a close frame with 'code' and ends the session for 'reason' once
   it is out (a FIN, not a reset). */
static void ws_close(struct net_thread *t, struct rp_session *s, uint16_t code,
                     enum rp_leave_reason reason)
{
    uint8_t c[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    if (s->closing || s->draining)
        return;
    if (ws_queue_control(t, s, RP_WS_OP_CLOSE, c, code ? 2 : 0, false) ==
        -ENOBUFS)
        return; /* cut for overflow already */
    s->ws_state->soft_end = true;
    rp__session_end(t, s, reason, true);
}

void rp__ws_frame_error(struct net_thread *t, struct rp_session *s, int err)
{
    ws_close(t, s,
             err == -EMSGSIZE ? RP_WS_CLOSE_TOO_BIG : RP_WS_CLOSE_PROTOCOL,
             RP_LEAVE_PROTOCOL);
}

static int ws_event(void *user, enum rp_ws_event ev, const uint8_t *p, size_t n)
{
    struct rp_session *s = user;
    struct net_thread *t = s->owner;
    switch (ev) {
    case RP_WS_DATA: return rp__session_frames(t, s, p, n);
    case RP_WS_MESSAGE_END:
        if (rp_frame_decoder_pending(&s->dec) != 0) {
            /* A message carries whole frames: this one cut its last. */
            ws_close(t, s, RP_WS_CLOSE_INVALID, RP_LEAVE_PROTOCOL);
            return -ECANCELED;
        }
        return 0;
    case RP_WS_PING:
        if (ws_queue_control(t, s, RP_WS_OP_PONG, p, n, false) == -ENOBUFS)
            return -ECANCELED;
        return 0;
    case RP_WS_PONG: return 0;
    case RP_WS_CLOSE: {
        /* The close handshake: echo the code (none if none came), then
           the FIN. */
        uint16_t code = n >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 0;
        ws_close(t, s, code, RP_LEAVE_PEER_CLOSED);
        return -ECANCELED;
    }
    }
    return 0;
}

static void ws_frames(struct net_thread *t, struct rp_session *s, uint8_t *data,
                      size_t len)
{
    struct net_ws *w = s->ws_state;
    int r = rp_ws_decoder_feed(&w->dec, data, len, ws_event, s);
    if (r == -EPROTO)
        ws_close(t, s, w->dec.error, RP_LEAVE_PROTOCOL);
}

/* Answers the request: 101 opens the connection, anything else refuses
   it. Returns true if it is open. */
static bool ws_answer(struct net_thread *t, struct rp_session *s,
                      const struct rp_ws_request *rq)
{
    struct rp_server *srv = t->srv;
    struct net_ws *w = s->ws_state;
    int status = rq->status;
    if (status == 101 &&
        !rp_ws_origin_allowed(srv->cfg.ws_origins, rq->origin, rq->origin_len))
        status = 403;
    char resp[RP_WS_MAX_RESPONSE];
    size_t n = rp_ws_handshake_response(status, rq->accept, resp);
    if (ws_queue_raw(t, s, resp, n, false) < 0) {
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return false;
    }
    free(w->req);
    w->req = NULL;
    if (status != 101) {
        atomic_fetch_add_explicit(&srv->ws_refused, 1, memory_order_relaxed);
        w->soft_end = true;
        rp__session_end(t, s, RP_LEAVE_PROTOCOL, true);
        return false;
    }
    atomic_fetch_add_explicit(&srv->ws_upgrades, 1, memory_order_relaxed);
    w->open = true;
    rp_ws_decoder_init(&w->dec, srv->cfg.ws_max_message);
    if (!rp__resume_on(srv)) {
        s->joined = true;
        if (srv->cfg.cb.on_join)
            srv->cfg.cb.on_join(srv, s->sid, srv->cfg.user);
    }
    return !s->closing && !s->draining; /* on_join may have ended it */
}

void rp__ws_input(struct net_thread *t, struct rp_session *s, uint8_t *data,
                  size_t len)
{
    NET_ASSERT_OWNER(t, s);
    struct net_ws *w = s->ws_state;
    if (w->open) {
        ws_frames(t, s, data, len);
        return;
    }
    if (!w->req && !(w->req = malloc(RP_WS_MAX_REQUEST))) {
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return;
    }
    size_t old = w->req_len;
    size_t take = RP_WS_MAX_REQUEST - old;
    if (take > len)
        take = len;
    memcpy(w->req + old, data, take);
    w->req_len = (uint16_t)(old + take);
    struct rp_ws_request rq;
    int n = rp_ws_handshake_parse(w->req, w->req_len, &rq);
    if (n == 0)
        return; /* more to come (the deadline bounds the wait) */
    if (!ws_answer(t, s, &rq))
        return;
    /* Frames the client sent right behind its request (the earlier bytes
       held no end, so the request ends in this chunk). */
    size_t used = (size_t)n - old;
    if (used < len)
        ws_frames(t, s, data + used, len - used);
}

void rp__ws_goodbye(struct net_thread *t, struct rp_session *s,
                    enum rp_leave_reason reason)
{
    struct net_ws *w = s->ws_state;
    if (!w->open || w->soft_end)
        return;
    uint16_t code = reason == RP_LEAVE_SERVER_STOP ? RP_WS_CLOSE_GOING_AWAY
                                                   : RP_WS_CLOSE_NORMAL;
    uint8_t c[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    if (ws_queue_control(t, s, RP_WS_OP_CLOSE, c, 2, true) == 0)
        w->soft_end = true;
}

bool rp__ws_tick(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    const struct rp_server_config *cfg = &t->srv->cfg;
    if (s->ws_state->open || s->ws_state->soft_end)
        return false;
    if (t->now - s->joined_ns <
        (int64_t)cfg->ws_handshake_timeout_ms * RP_NS_PER_MS)
        return false;
    /* A slow or silent upgrade: cut, as a first packet that never came. */
    rp__session_end(t, s, RP_LEAVE_FIRST_PACKET, false);
    return true;
}

size_t rp__ws_wrap_refusal(const uint8_t *frame, size_t len, uint8_t *out)
{
    size_t n = rp_ws_header(out, RP_WS_OP_BINARY, len);
    memcpy(out + n, frame, len);
    n += len;
    uint8_t close[2] = {RP_WS_CLOSE_NORMAL >> 8, RP_WS_CLOSE_NORMAL & 0xFF};
    n += rp_ws_header(out + n, RP_WS_OP_CLOSE, sizeof close);
    memcpy(out + n, close, sizeof close);
    return n + sizeof close;
}
