/*
 * Session resume (resume_grace_ms > 0): the engine control messages
 * (docs/protocol.md "Engine control messages"), the deferred join, the
 * resume token, the retained frames and the RESUME hand-off between I/O
 * threads. The teardown variants (detach, hand-off) live in session.c.
 *
 * A RESUME arrives as the first frame of a new connection, on whichever
 * I/O thread accepted it (A). A takes its ops back and hands the fd, open,
 * to the thread that owns the named session (B) in a NET_REQ_RESUME
 * (rp__session_handoff). Everything about the session is decided on B:
 * the token check, the token's rotation, the count check, the takeover
 * of a still-attached connection, the attach, and the expiry (tick), so
 * two RESUMEs, or a RESUME and the expiry, never both win.
 *
 * Counting: each side counts the game frames (types below 0xFF00) it has
 * received on the session, across connections. The server keeps every
 * game frame it has handed to the kernel (ret_*) until the client ACKs
 * it; a RESUME's 'received' says where to start again. Control frames
 * are never counted, retained or resent.
 *
 * The token is 128 bits from getrandom(2), compared in constant time,
 * never logged. Thread: the session's owner for everything here.
 */
#include "net/net.h"

#include "core/assert.h"
#include <errno.h>
#include <ringport/log.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int token_new(uint8_t *tok)
{
    size_t got = 0;
    while (got < RP_RESUME_TOKEN_SIZE) {
        ssize_t n = getrandom(tok + got, RP_RESUME_TOKEN_SIZE - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Constant time: how many bytes match never shows in the timing. */
static bool token_equal(const uint8_t *a, const uint8_t *b)
{
    unsigned d = 0;
    for (int i = 0; i < RP_RESUME_TOKEN_SIZE; i++)
        d |= (unsigned)(a[i] ^ b[i]);
    return d == 0;
}

int rp__resume_ctl(struct net_thread *t, struct rp_session *s, uint16_t type,
                   const void *payload, size_t len, bool first)
{
    struct rp_server *srv = t->srv;
    struct net_req *r = rp_pool_alloc(srv->req_pool);
    struct rp_packet *pkt = NULL;
    if (!r || rp_packet_create(len, type, &pkt) < 0) {
        if (r)
            rp_pool_free(srv->req_pool, r);
        return -ENOMEM;
    }
    if (len)
        rp_packet_put_bytes(pkt, payload, len);
    r->kind = NET_REQ_SEND;
    r->sid = s->sid;
    r->pkt = pkt;
    r->bytes = 0; /* not counted against the limit: the engine's own */
    r->ctl = true;
    r->own = false;
    r->ws_raw = false;
    if (first) {
        r->next = s->q_head;
        s->q_head = r;
        if (!s->q_tail)
            s->q_tail = r;
    } else {
        r->next = NULL;
        if (s->q_tail)
            s->q_tail->next = r;
        else
            s->q_head = r;
        s->q_tail = r;
    }
    rp__session_mark_dirty(t, s);
    return 0;
}

/* Writes RESUME_ERROR to a connection no session holds, then closes it.
   A few bytes into an empty socket buffer: a plain non-blocking send. On
   a WebSocket connection, as a binary message and a close frame. */
static void resume_refuse(struct net_thread *t, int fd, uint16_t code, bool ws)
{
    uint8_t f[6], wrapped[32];
    const uint8_t *out = f;
    size_t len = sizeof f;
    put_le(f, 2, 2);
    put_le(f + 2, RP_CTL_RESUME_ERROR, 2);
    put_le(f + 4, code, 2);
    if (ws) {
        len = rp__ws_wrap_refusal(f, sizeof f, wrapped);
        out = wrapped;
    }
    /* Counted first: a client that reads the error then asks for stats
       finds it counted. */
    NET_STAT_ADD(t, resume_refused, 1);
    (void)send(fd, out, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* Ends a pre-join session for a bad first frame: RESUME_ERROR 4 first. */
static int first_frame_bad(struct net_thread *t, struct rp_session *s)
{
    uint8_t code[2];
    put_le(code, RP_RESUME_ERR_MALFORMED, 2);
    if (rp__resume_ctl(t, s, RP_CTL_RESUME_ERROR, code, 2, false) == 0)
        NET_STAT_ADD(t, resume_refused, 1);
    /* KICKED: the error goes out before the FIN (PROTOCOL would reset).
       Never joined: no callback runs. */
    rp__session_end(t, s, RP_LEAVE_KICKED, true);
    return -ECANCELED;
}

int rp__resume_first_frame(struct net_thread *t, struct rp_session *s,
                           const struct rp_frame *f)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    if (f->type == RP_CTL_RESUME) {
        if (f->len != RP_RESUME_MIN_PAYLOAD)
            return first_frame_bad(t, s);
        struct net_resume *r = malloc(sizeof *r);
        if (!r) {
            rp__session_end(t, s, RP_LEAVE_RESET, false);
            return -ECANCELED;
        }
        memset(r, 0, sizeof *r);
        r->req.kind = NET_REQ_RESUME;
        r->sid = get_le(f->payload, 8);
        memcpy(r->token, f->payload + 8, RP_RESUME_TOKEN_SIZE);
        r->received = get_le(f->payload + 24, 8);
        r->req.sid = r->sid;
        r->fd = s->fd;
        r->ws = s->ws_state != NULL;
        /* A slot reference for the trip; NULL: no such session, A
           refuses it itself when the hand-off is done. */
        r->target = r->sid != s->sid ? rp__session_get(srv, r->sid) : NULL;
        rp__session_handoff(t, s, r);
        return -ECANCELED; /* the client sends nothing more until OK */
    }
    if (f->type >= RP_CTL_FIRST && f->type != RP_CTL_HELLO)
        return first_frame_bad(t, s);
    if (f->type != RP_CTL_HELLO) {
        /* A game frame first: an ordinary session (no token, nothing
           retained, a drop ends it); the frame is delivered. */
        s->joined = true;
        if (srv->cfg.cb.on_join)
            srv->cfg.cb.on_join(srv, s->sid, srv->cfg.user);
        return 1;
    }
    /* HELLO: joins as a resumable session, with its resume state (the
       slot's extension: no memory ends it with RESET, before any
       callback); RESUME_TOKEN is the first frame out, before anything
       on_join sends. */
    struct net_resume_state *rs = calloc(1, sizeof *rs);
    if (!rs) {
        RP_WARN("resume", "session %llu: no memory for its resume state",
                (unsigned long long)s->sid);
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return -ECANCELED;
    }
    rs->pend_fd = -1;
    s->rs = rs;
    s->resumable = true; /* from here on, rp__resume_end frees 'rs' */
    uint8_t tok[8 + RP_RESUME_TOKEN_SIZE];
    put_le(tok, s->sid, 8);
    if (token_new(rs->token) < 0 ||
        (memcpy(tok + 8, rs->token, RP_RESUME_TOKEN_SIZE),
         rp__resume_ctl(t, s, RP_CTL_RESUME_TOKEN, tok, sizeof tok, false)) <
            0) {
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return -ECANCELED;
    }
    s->joined = true;
    if (srv->cfg.cb.on_join)
        srv->cfg.cb.on_join(srv, s->sid, srv->cfg.user);
    return 0;
}

/* How far an ACK lets the retained frames go now: up to the client's
   count, but only frames whose send is back. */
static uint64_t ack_limit(const struct rp_session *s)
{
    uint64_t top = s->rs->acked + s->rs->ret_n;
    return s->rs->ack_to < top ? s->rs->ack_to : top;
}

/* Releases the retained frames below the client's count 'n'. */
static void retained_release(struct rp_server *srv, struct rp_session *s,
                             uint64_t n)
{
    while (s->rs->acked < n) {
        struct net_req *r = s->rs->ret_head;
        s->rs->ret_head = r->next;
        if (!s->rs->ret_head)
            s->rs->ret_tail = NULL;
        s->rs->ret_n--;
        s->rs->acked++;
        rp__req_unqueue(s, r);
        rp_packet_unref(r->pkt);
        rp_pool_free(srv->req_pool, r);
    }
}

int rp__resume_ctl_frame(struct net_thread *t, struct rp_session *s,
                         const struct rp_frame *f)
{
    NET_ASSERT_OWNER(t, s);
    if (f->type == RP_CTL_BYE) {
        /* A clean leave: the session ends now (what is queued still goes
           out), it is not kept for a resume. */
        rp__session_end(t, s, RP_LEAVE_PEER_CLOSED, true);
        return -ECANCELED;
    }
    if (!s->resumable) {
        /* An ordinary session: a RESUME or ACK now is a client error,
           anything else in the range is ignored. */
        if (f->type == RP_CTL_RESUME || f->type == RP_CTL_ACK)
            return first_frame_bad(t, s);
        return 0;
    }
    if (f->type == RP_CTL_ACK && f->len == 8) {
        uint64_t n = get_le(f->payload, 8);
        /* The client may read a gather send's bytes before its completion
           is handled here: those frames count as sent (in flight). */
        uint64_t sent = s->rs->acked + s->rs->ret_n;
        for (struct net_req *r = s->inflight; r; r = r->next)
            sent += !r->ctl;
        if (n <= sent) {
            if (n > s->rs->ack_to)
                s->rs->ack_to = n;
            retained_release(t->srv, s, ack_limit(s));
            return 0;
        }
        /* Acknowledges what was never sent: a broken client. */
        rp__session_end(t, s, RP_LEAVE_PROTOCOL, false);
        return -ECANCELED;
    }
    if (f->type == RP_CTL_RESUME || f->type == RP_CTL_ACK)
        return first_frame_bad(t, s); /* not first, or malformed */
    return 0; /* HELLO again, or a type this engine does not know */
}

void rp__resume_sent(struct net_thread *t, struct rp_session *s,
                     struct net_req *r)
{
    struct rp_server *srv = t->srv;
    bool keep = rp__resume_on(srv) && s->resumable;
    while (r) {
        struct net_req *next = r->next;
        if (keep && !r->ctl) {
            r->next = NULL;
            if (s->rs->ret_tail)
                s->rs->ret_tail->next = r;
            else
                s->rs->ret_head = r;
            s->rs->ret_tail = r;
            s->rs->ret_n++;
            if (s->rs->ack_to > s->rs->acked)
                retained_release(srv, s, ack_limit(s)); /* ACKed early */
        } else {
            rp__req_unqueue(s, r);
            rp__req_release(t, r); /* its packet, or a lent buffer */
        }
        r = next;
    }
}

void rp__resume_attach(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    int fd = s->rs->pend_fd;
    bool ws = s->rs->pend_ws;
    uint64_t received = s->rs->pend_received;
    s->rs->pend_fd = -1;
    if (received < s->rs->acked || received - s->rs->acked > s->rs->ret_n) {
        resume_refuse(t, fd, RP_RESUME_ERR_COUNT, ws); /* stays detached */
        return;
    }
    retained_release(srv, s, received);
    s->rs->ack_to = received;
    /* What the client missed goes first, then what was queued. */
    if (s->rs->ret_head) {
        s->rs->ret_tail->next = s->q_head;
        if (!s->q_head)
            s->q_tail = s->rs->ret_tail;
        s->q_head = s->rs->ret_head;
        s->rs->ret_head = s->rs->ret_tail = NULL;
        s->rs->ret_n = 0;
    }
    uint8_t ok[8 + RP_RESUME_TOKEN_SIZE];
    put_le(ok, s->rs->rx_count, 8);
    memcpy(ok + 8, s->rs->token, RP_RESUME_TOKEN_SIZE);
    if (rp__resume_ctl(t, s, RP_CTL_RESUME_OK, ok, sizeof ok, true) < 0) {
        resume_refuse(t, fd, RP_RESUME_ERR_UNKNOWN, ws);
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return;
    }
    if (rp__session_attach(t, s, fd, ws) < 0)
        return; /* ended */
    NET_STAT_ADD(t, resumes, 1);
    rp__route_notify(t, s, true); /* on_resume */
}

void rp__resume_request(struct net_thread *t, struct net_resume *r)
{
    struct rp_server *srv = t->srv;
    struct rp_session *s = r->target;
    uint16_t err = 0;
    if (s)
        NET_ASSERT_OWNER(t, s);
    if (!s || s->sid != r->sid || s->closing || s->draining || !s->resumable)
        err = RP_RESUME_ERR_UNKNOWN;
    else if (!token_equal(s->rs->token, r->token))
        err = RP_RESUME_ERR_TOKEN; /* forged, or used already */
    else if (s->detached && (r->received < s->rs->acked ||
                             r->received - s->rs->acked > s->rs->ret_n))
        err = RP_RESUME_ERR_COUNT;
    else if (token_new(s->rs->token) < 0)
        err = RP_RESUME_ERR_UNKNOWN;
    if (err) {
        resume_refuse(t, r->fd, err, r->ws);
    } else {
        /* The token is spent: a second RESUME with it is refused. */
        s->rs->pend_fd = r->fd;
        s->rs->pend_ws = r->ws;
        s->rs->pend_received = r->received;
        if (s->detached)
            rp__resume_attach(t, s);
        else if (!s->detaching)
            rp__session_detach(t, s); /* takeover: attaches when done */
        /* else: the teardown under way attaches it when done */
    }
    if (s)
        rp__session_put(srv, s);
    free(r);
}

void rp__resume_end(struct net_thread *t, struct rp_session *s)
{
    struct rp_server *srv = t->srv;
    if (!s->rs)
        return; /* not resumable: nothing retained, never detached */
    if (s->rs->pend_fd >= 0) {
        resume_refuse(t, s->rs->pend_fd, RP_RESUME_ERR_UNKNOWN, s->rs->pend_ws);
        s->rs->pend_fd = -1;
    }
    while (s->rs->ret_head) {
        struct net_req *r = s->rs->ret_head;
        s->rs->ret_head = r->next;
        rp__req_unqueue(s, r);
        rp_packet_unref(r->pkt);
        rp_pool_free(srv->req_pool, r);
    }
    if (s->detached) {
        s->detached = false;
        atomic_fetch_sub_explicit(&srv->detached_now, 1, memory_order_relaxed);
    }
    free(s->rs);
    s->rs = NULL;
    s->resumable = false;
}

void rp__resume_drop_request(struct rp_server *srv, struct net_resume *r)
{
    close(r->fd);
    if (r->target)
        rp__session_put(srv, r->target);
    free(r);
}
