/*
 * Routing a session's frames to the content group it is in, and moving it
 * between groups (the I/O-thread half; src/group is the other half and
 * plugs in through srv->route_ops).
 *
 * The session's route lives in its slot and is read and written only by
 * its owning I/O thread, so a frame is routed with no lock: copy it into a
 * pooled packet, push one node into the group's MPSC inbox. What a move
 * needs beyond that (the ENTER and LEAVE markers, the target, the held
 * frames) is the slot's routing extension, s->mv (net.h): allocated when
 * a session in no group is moved into one, freed when it is in none
 * again and no group holds its markers.
 *
 * A move, always applied on the owner thread:
 *
 *   I/O thread                      old group G            new group H
 *   moving = true, push LEAVE ----> (messages before it)
 *   frames now held on the session   on_leave(MOVED)
 *   <---------------------------- NET_REQ_LEFT
 *   push ENTER, then the held frames, then route = H ---> on_enter, msgs
 *
 * So G handles everything that arrived before the move, H everything after,
 * never both at once, and G's on_leave runs before H's on_enter. A move
 * requested while one is under way replaces its target (the latest wins).
 *
 * The session's data needs no step of its own: the holder (the I/O thread,
 * or the group between its ENTER and its on_leave) is the only one to
 * touch it, and the LEAVE/LEFT/ENTER pushes order each hand-off. A move's
 * ticket rides in the request, waits in 'route_ticket' while the old group
 * leaves, and rides in the ENTER to on_enter; every path that does not get
 * there (replaced, target stopping or already current, session ended)
 * hands it to on_ticket_drop on this thread, so it comes back once.
 *
 * Resume (resume.c): a detach or a resume of a session in a group is a
 * DETACH/RESUME marker (a pooled node, no packet) pushed like a frame, so
 * the group's on_detach/on_resume run in order with its messages; while
 * moving it is held with the frames and goes to the group entered next,
 * or to the server's callback if that is none (rp__route_notify).
 *
 * References: an ENTER takes one slot reference, the group's membership; it
 * goes back with NET_REQ_LEFT, after a move's on_leave and after the final
 * one alike. The slot is never reused while a group may still name it, and
 * an ended session's server on_leave waits for that reply (it gets the
 * data last).
 */
#include "net/net.h"

#include "core/assert.h"
#include <errno.h>
#include <ringport/log.h>
#include <stdlib.h>

static const struct net_route_ops *route_ops(struct rp_server *srv)
{
    return atomic_load_explicit(&srv->route_ops, memory_order_acquire);
}

void rp__route_ticket_drop(struct rp_server *srv, rp_sid sid, void *ticket)
{
    /* rp_group_move refuses a ticket without the callback. */
    if (ticket && srv->cfg.cb.on_ticket_drop)
        srv->cfg.cb.on_ticket_drop(srv, sid, ticket, srv->cfg.user);
}

void rp__route_msg_free(struct rp_server *srv, struct net_route_msg *m)
{
    rp_packet_unref(m->pkt);
    rp_pool_free(srv->route_pool, m);
}

static void held_drop(struct rp_server *srv, struct rp_session *s)
{
    if (!s->mv)
        return;
    struct net_route_msg *m = s->mv->held_head;
    while (m) {
        struct net_route_msg *next = m->next;
        rp__route_msg_free(srv, m);
        m = next;
    }
    s->mv->held_head = s->mv->held_tail = NULL;
}

/* The routing extension of a session about to enter a group: 0, or
   -ENOMEM (nothing changed). */
static int route_state_get(struct rp_session *s)
{
    if (!s->mv && !(s->mv = calloc(1, sizeof *s->mv)))
        return -ENOMEM;
    return 0;
}

/* Frees the routing extension once nothing needs it: in no group, not
   moving, no marker held by a group (the callers know the last). */
static void route_state_trim(struct rp_session *s)
{
    if (s->mv && !s->route && !s->moving) {
        assert(!s->mv->held_head);
        free(s->mv);
        s->mv = NULL;
    }
}

void rp__route_frame(struct net_thread *t, struct rp_session *s,
                     const struct rp_frame *f)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    struct net_route_msg *m = rp_pool_alloc(srv->route_pool);
    struct rp_packet *pkt = NULL;
    if (!m || rp_packet_create(f->len, f->type, &pkt) < 0) {
        /* Dropping one frame would break exactly-once: end it instead. */
        if (m)
            rp_pool_free(srv->route_pool, m);
        RP_WARN("route", "session %llu: out of memory for a frame",
                (unsigned long long)s->sid);
        rp__session_end(t, s, RP_LEAVE_RESET, false);
        return;
    }
    rp_packet_put_bytes(pkt, f->payload, f->len);
    m->kind = NET_ROUTE_MSG;
    m->sid = s->sid;
    m->pkt = pkt;
    if (s->moving) {
        m->next = NULL;
        if (s->mv->held_tail)
            s->mv->held_tail->next = m;
        else
            s->mv->held_head = m;
        s->mv->held_tail = m;
        return;
    }
    route_ops(srv)->push(s->route, m);
}

static void route_server_notify(struct rp_server *srv, struct rp_session *s,
                                bool resumed)
{
    void (*cb)(struct rp_server *, rp_sid, void *, void *) =
        resumed ? srv->cfg.cb.on_resume : srv->cfg.cb.on_detach;
    if (cb)
        cb(srv, s->sid, s->data, srv->cfg.user);
}

/*
 * Resume: the session's connection was lost (on_detach) or a new one
 * attached (on_resume). In no group: the server's callback, here. In a
 * group: a marker through its inbox, so the group's callback runs on its
 * thread in order with the session's messages; while moving, the marker
 * waits with the held frames and goes to the group entered next (or to
 * the server's callback if that is none). A marker that finds no memory
 * is skipped with a warning (the session itself goes on).
 */
void rp__route_notify(struct net_thread *t, struct rp_session *s, bool resumed)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    if (!s->route && !s->moving) {
        route_server_notify(srv, s, resumed);
        return;
    }
    struct net_route_msg *m = rp_pool_alloc(srv->route_pool);
    if (!m) {
        RP_WARN("route", "session %llu: no memory for its %s notice",
                (unsigned long long)s->sid, resumed ? "resume" : "detach");
        return;
    }
    m->kind = resumed ? NET_ROUTE_RESUME : NET_ROUTE_DETACH;
    m->sid = s->sid;
    m->pkt = NULL;
    m->ticket = NULL;
    if (s->moving) {
        m->next = NULL;
        if (s->mv->held_tail)
            s->mv->held_tail->next = m;
        else
            s->mv->held_head = m;
        s->mv->held_tail = m;
        return;
    }
    route_ops(srv)->push(s->route, m);
}

/* Enters 'to' (or no group) with 'ticket' and hands it the frames held
   meanwhile. */
static void route_enter(struct net_thread *t, struct rp_session *s, void *to,
                        void *ticket)
{
    struct rp_server *srv = t->srv;
    const struct net_route_ops *ops = route_ops(srv);
    assert(s->mv); /* a move into a group (or off a LEAVE) made it */
    s->route = NULL;
    if (to && ops->admit(to)) {
        /* The membership reference (the session is open: refs > 0). */
        atomic_fetch_add_explicit(&s->state, 1, memory_order_relaxed);
        s->mv->enter_msg.kind = NET_ROUTE_ENTER;
        s->mv->enter_msg.sid = s->sid;
        s->mv->enter_msg.pkt = NULL;
        s->mv->enter_msg.ticket = ticket;
        ops->push(to, &s->mv->enter_msg);
        s->route = to;
    } else {
        rp__route_ticket_drop(srv, s->sid, ticket); /* target stopping */
    }
    struct net_route_msg *m = s->mv->held_head, *tail = s->mv->held_tail;
    s->mv->held_head = s->mv->held_tail = NULL;
    while (m) {
        struct net_route_msg *next = m->next;
        if (s->moving) {
            /* on_message below started another move: the rest waits for
               it (nothing was held meanwhile: we are the receiver). */
            s->mv->held_head = m;
            s->mv->held_tail = tail;
            return;
        }
        if (s->route) {
            ops->push(s->route, m);
        } else if (m->kind != NET_ROUTE_MSG) {
            /* A detach or resume that waited for the move: no group took
               the session, so the server hears of it. */
            if (!s->closing && !s->draining)
                route_server_notify(srv, s, m->kind == NET_ROUTE_RESUME);
            rp__route_msg_free(srv, m);
        } else if (!s->closing && !s->draining) {
            struct rp_message msg = {.type = rp_packet_type(m->pkt),
                                     .len = (uint16_t)rp_packet_size(m->pkt),
                                     .payload = rp_packet_payload(m->pkt),
                                     .packet = m->pkt};
            srv->cfg.cb.on_message(srv, s->sid, s->data, &msg, srv->cfg.user);
            rp__route_msg_free(srv, m);
        } else {
            rp__route_msg_free(srv, m);
        }
        m = next;
    }
    route_state_trim(s); /* in no group now: nothing holds a marker */
}

void rp__route_move(struct net_thread *t, struct rp_session *s, void *to,
                    void *from, enum rp_leave_reason why, void *ticket)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    if (s->closing || s->draining ||
        (from && (s->moving || s->route != from))) {
        /* Ending, or a stop's move-out of a session that has left 'from'
           already. */
        rp__route_ticket_drop(srv, s->sid, ticket);
        return;
    }
    if (s->moving) {
        /* The latest wins: the target it replaces never sees its ticket. */
        rp__route_ticket_drop(srv, s->sid, s->mv->route_ticket);
        s->mv->route_next = to;
        s->mv->route_ticket = ticket;
        return;
    }
    if (s->route == to) {
        rp__route_ticket_drop(srv, s->sid, ticket);
        return;
    }
    if (!s->route) {
        if (to && route_state_get(s) < 0) {
            /* Like a group with no memory for a member: this session
               alone is refused, and ends. */
            RP_WARN("route", "session %llu: no memory to enter a group",
                    (unsigned long long)s->sid);
            rp__route_ticket_drop(srv, s->sid, ticket);
            rp__session_end(t, s, RP_LEAVE_RESET, false);
            return;
        }
        route_enter(t, s, to, ticket);
        return;
    }
    s->moving = true;
    s->mv->route_next = to;
    s->mv->route_ticket = ticket;
    s->mv->leave_msg.kind = NET_ROUTE_LEAVE;
    s->mv->leave_msg.sid = s->sid;
    s->mv->leave_msg.pkt = NULL;
    s->mv->leave_msg.reason = (uint8_t)why;
    atomic_store_explicit(&s->mv->leave_msg.state, NET_LEAVE_MOVE,
                          memory_order_relaxed);
    route_ops(t->srv)->push(s->route, &s->mv->leave_msg);
}

void rp__route_on_left(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    assert(s->moving || s->ended);
    s->moving = false;
    s->route = NULL;
    if (s->ended) {
        /* The group's final on_leave (or the on_leave of a move it took
           before the end) has run: nobody else holds it now. */
        route_state_trim(s); /* its held frames went at the end */
        rp__session_left(t, s);
        return;
    }
    void *ticket = s->mv->route_ticket;
    s->mv->route_ticket = NULL;
    if (s->closing) {
        /* Ending after the old group took the leave as a move: it stays in
           no group; held frames go with the session. */
        rp__route_ticket_drop(t->srv, s->sid, ticket);
        held_drop(t->srv, s);
        route_state_trim(s);
        return;
    }
    route_enter(t, s, s->mv->route_next, ticket);
}

bool rp__route_end(struct net_thread *t, struct rp_session *s)
{
    NET_ASSERT_OWNER(t, s);
    struct rp_server *srv = t->srv;
    held_drop(srv, s);
    if (s->moving) {
        /* The target will never be entered. */
        rp__route_ticket_drop(srv, s->sid, s->mv->route_ticket);
        s->mv->route_ticket = NULL;
        s->mv->route_next = NULL;
        /* Won: the old group sees the end, not a move. Lost: it took the
           move. Either way its on_leave runs and it replies. */
        int expect = NET_LEAVE_MOVE;
        atomic_compare_exchange_strong_explicit(
            &s->mv->leave_msg.state, &expect, (int)s->reason,
            memory_order_acq_rel, memory_order_acquire);
        return true;
    }
    if (!s->route) {
        route_state_trim(s);
        return false;
    }
    s->mv->leave_msg.kind = NET_ROUTE_LEAVE;
    s->mv->leave_msg.sid = s->sid;
    s->mv->leave_msg.pkt = NULL;
    atomic_store_explicit(&s->mv->leave_msg.state, (int)s->reason,
                          memory_order_relaxed);
    route_ops(srv)->push(s->route, &s->mv->leave_msg);
    s->route = NULL;
    return true;
}

int rp__route_request(struct rp_server *srv, rp_sid sid, void *to, void *from,
                      enum rp_leave_reason why, void *ticket)
{
    struct rp_session *s = rp__session_get(srv, sid);
    if (!s)
        return -ENOTCONN;
    struct net_thread *cur = rp__thread_current(srv);
    if (s->owner == cur) {
        rp__route_move(cur, s, to, from, why, ticket);
        rp__session_put(srv, s);
        return 0;
    }
    struct net_req *r = rp_pool_alloc(srv->req_pool);
    if (!r) {
        rp__session_put(srv, s);
        return -ENOMEM;
    }
    r->kind = NET_REQ_MOVE;
    r->sid = sid;
    r->pkt = NULL;
    r->bytes = 0;
    r->route_to = to;
    r->route_from = from;
    r->ticket = ticket;
    r->why = (uint8_t)why;
    r->ctl = false;
    rp__thread_push(s->owner, r); /* carries our slot reference */
    return 0;
}

void rp__route_left(struct rp_server *srv, rp_sid sid)
{
    struct rp_session *s = rp__slot(srv, sid);
    s->left_req.kind = NET_REQ_LEFT;
    s->left_req.sid = sid;
    rp__thread_push_sig(s->owner, &s->left_req); /* the membership reference */
}
