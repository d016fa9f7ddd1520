/*
 * The runner: the thread that runs groups. In HETERO each group has its
 * own (named after it); in HOMO one runner ("rp-logic") runs them all, the
 * single Update loop. The loop is the same either way, so the two layouts
 * measure the same code.
 *
 * A turn: clear the wake word; for each group, run its tick if due,
 * handle up to GROUP_BATCH inbox nodes in order (a flood in one group
 * cannot starve the others' ticks), advance its stop; then sleep until the
 * earliest tick deadline or a push wakes us. A turn that hit the batch
 * limit does not sleep.
 *
 * Ticks keep a fixed schedule (deadline += interval). A tick that ends past
 * the next deadline is an overrun: counted, and the schedule restarts from
 * its end, so the next tick runs at once and its elapsed time (start to
 * start) shows the delay. No tick is dropped without that trace, and a late
 * group does not fire a burst of catch-up ticks.
 *
 * Out of memory: a session whose ENTER finds no room in the member array
 * (its realloc failed) is refused rather than the process ended: no
 * on_enter (so no on_leave here either), its frames are dropped, and it is
 * ended with RESET, as the I/O thread ends a session it cannot route a
 * frame for. It still holds its membership reference until its LEAVE
 * arrives, which 'refused' waits for before the group may finish.
 */
#include "group/group.h"

#include "core/assert.h"
#include "core/clock.h"
#include <errno.h>
#include <ringport/log.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local struct group_runner *tls_runner;

struct group_runner *rp__runner_current(void)
{
    return tls_runner;
}

#define MEMBER_NONE UINT32_MAX /* member_pos of a refused session */

#define STAT_ADD(g, field, n)                                                  \
    atomic_store_explicit(                                                     \
        &(g)->field,                                                           \
        atomic_load_explicit(&(g)->field, memory_order_relaxed) + (n),         \
        memory_order_relaxed)

/* ---- membership -------------------------------------------------------- */

/* Returns 0, or -ENOMEM if the member array could not grow (the session
   is then not a member). */
static int members_add(struct rp_group *g, rp_sid sid)
{
    if (g->n_members == g->cap_members) {
        uint32_t cap = g->cap_members ? g->cap_members * 2 : 64;
        rp_sid *m = realloc(g->members, cap * sizeof *m);
        if (!m)
            return -ENOMEM;
        g->members = m;
        g->cap_members = cap;
    }
    rp__slot(g->srv, sid)->member_pos = g->n_members;
    g->members[g->n_members++] = sid;
    STAT_ADD(g, sessions, 1);
    return 0;
}

/* A session refused at its enter is never found: its member_pos is
   MEMBER_NONE, and a stale pos from an earlier stay no longer names it. */
static bool members_has(const struct rp_group *g, rp_sid sid)
{
    uint32_t pos = rp__slot(g->srv, sid)->member_pos;
    return pos < g->n_members && g->members[pos] == sid;
}

static void members_remove(struct rp_group *g, rp_sid sid)
{
    uint32_t pos = rp__slot(g->srv, sid)->member_pos;
    if (pos >= g->n_members || g->members[pos] != sid)
        RP_PANIC("group %s: session %llu is not a member", g->name,
                 (unsigned long long)sid);
    rp_sid last = g->members[--g->n_members];
    if (last != sid) {
        g->members[pos] = last;
        rp__slot(g->srv, last)->member_pos = pos;
    }
    atomic_store_explicit(&g->sessions, g->n_members, memory_order_relaxed);
}

/* Stopping: asks each member's I/O thread to move it out (to no group).
   A member already leaving, or ending, ignores it. */
static void group_move_out(struct rp_group *g, rp_sid sid)
{
    int r = rp__route_request(g->srv, sid, NULL, g, RP_LEAVE_GROUP_STOP, NULL);
    if (r == -ENOMEM)
        g->kick = true; /* try again next turn */
}

static void group_kick_all(struct rp_group *g)
{
    g->kick = false;
    for (uint32_t i = 0; i < g->n_members; i++)
        group_move_out(g, g->members[i]);
}

/* ---- the inbox --------------------------------------------------------- */

/* The session entered but cannot be held (see the file comment). */
static void group_refuse(struct rp_group *g, rp_sid sid, int err)
{
    rp__slot(g->srv, sid)->member_pos = MEMBER_NONE;
    g->refused++;
    STAT_ADD(g, dropped, 1);
    RP_WARN("group", "group %s: session %llu refused (%s): ending it", g->name,
            (unsigned long long)sid, strerror(-err));
    /* -ENOTCONN: it is ending already; its LEAVE comes all the same. */
    (void)rp__server_close(g->srv, sid, RP_LEAVE_RESET);
}

static void group_on_enter(struct rp_group *g, struct net_route_msg *m)
{
    rp_sid sid = m->sid;
    void *ticket = m->ticket;
    int r = members_add(g, sid);
    atomic_fetch_sub(&g->entering, 1);
    if (r < 0) {
        /* No on_enter will see the ticket: it goes back now, on this
           thread (server.h, on_ticket_drop). */
        rp__route_ticket_drop(g->srv, sid, ticket);
        group_refuse(g, sid, r);
        return;
    }
    STAT_ADD(g, enters, 1);
    /* rp_group_move takes a ticket only for a group with on_enter. */
    if (g->cb.on_enter)
        g->cb.on_enter(g, sid, rp__slot(g->srv, sid)->data, ticket, g->user);
    if (g->stop_seen && atomic_load(&g->stopping) == GROUP_STOP_MOVE_OUT)
        group_move_out(g, sid);
}

static void group_on_leave(struct rp_group *g, struct net_route_msg *m)
{
    rp_sid sid = m->sid;
    enum rp_leave_reason moved = (enum rp_leave_reason)m->reason;
    int st = atomic_exchange_explicit(&m->state, NET_LEAVE_TAKEN,
                                      memory_order_acq_rel);
    /* 'm' lives in the session slot: after rp__route_left the I/O thread
       may reuse it, so nothing reads it past this point. */
    if (RP_UNLIKELY(g->refused > 0) && !members_has(g, sid)) {
        /* Refused at its enter: no on_leave, the reference goes back. */
        g->refused--;
        STAT_ADD(g, dropped, 1);
        rp__route_left(g->srv, sid);
        return;
    }
    members_remove(g, sid);
    STAT_ADD(g, leaves, 1);
    enum rp_leave_reason why =
        st == NET_LEAVE_MOVE ? moved : (enum rp_leave_reason)st;
    if (g->cb.on_leave)
        g->cb.on_leave(g, sid, rp__slot(g->srv, sid)->data, why, g->user);
    /* A move's reply, or the end's: the server's on_leave runs next. */
    rp__route_left(g->srv, sid);
}

static void group_handle(struct rp_group *g, struct net_route_msg *m)
{
    switch (m->kind) {
    case NET_ROUTE_MSG:
        if (RP_UNLIKELY(g->refused > 0) && !members_has(g, m->sid)) {
            STAT_ADD(g, dropped, 1); /* a refused session's frame */
        } else {
            STAT_ADD(g, messages, 1);
            if (g->cb.on_message) {
                struct rp_message msg = {.type = rp_packet_type(m->pkt),
                                         .len =
                                             (uint16_t)rp_packet_size(m->pkt),
                                         .payload = rp_packet_payload(m->pkt),
                                         .packet = m->pkt};
                g->cb.on_message(g, m->sid, rp__slot(g->srv, m->sid)->data,
                                 &msg, g->user);
            }
        }
        rp__route_msg_free(g->srv, m);
        break;
    case NET_ROUTE_DETACH:
    case NET_ROUTE_RESUME: {
        void (*cb)(struct rp_group *, rp_sid, void *, void *) =
            m->kind == NET_ROUTE_RESUME ? g->cb.on_resume : g->cb.on_detach;
        if (cb && members_has(g, m->sid))
            cb(g, m->sid, rp__slot(g->srv, m->sid)->data, g->user);
        rp__route_msg_free(g->srv, m);
        break;
    }
    case NET_ROUTE_POST: {
        struct rp_message msg = {.type = rp_packet_type(m->pkt),
                                 .len = (uint16_t)rp_packet_size(m->pkt),
                                 .payload = rp_packet_payload(m->pkt),
                                 .packet = m->pkt};
        STAT_ADD(g, posts, 1);
        g->cb.on_post(g, m->tag, &msg, g->user); /* required by the post */
        rp__route_msg_free(g->srv, m);
        /* Last: a stopping group may finish once this reaches 0, and
           every post it counted has then been handled. */
        atomic_fetch_sub(&g->posts_queued, 1);
        break;
    }
    case NET_ROUTE_ENTER: group_on_enter(g, m); break;
    case NET_ROUTE_LEAVE: group_on_leave(g, m); break;
    default: RP_PANIC("group %s: message kind %u", g->name, m->kind);
    }
}

/* ---- ticks ------------------------------------------------------------- */

/* The histogram bucket of a tick that took 'dur' ns (12 bounds: a linear
   scan is as fast as anything cleverer). */
static size_t tick_bucket(uint64_t dur)
{
    size_t b = 0;
    while (b < RP_GROUP_TICK_BUCKETS && dur > rp_group_tick_bounds_ns[b])
        b++;
    return b;
}

static void group_tick(struct rp_group *g, int64_t now)
{
    int64_t elapsed = now - g->last_tick_ns;
    g->last_tick_ns = now;
    if (g->cb.on_tick)
        g->cb.on_tick(g, elapsed, g->user);
    int64_t end = rp_clock_ns();
    uint64_t dur = (uint64_t)(end - now);
    STAT_ADD(g, ticks, 1);
    STAT_ADD(g, tick_ns_sum, dur);
    if (dur > atomic_load_explicit(&g->tick_ns_max, memory_order_relaxed))
        atomic_store_explicit(&g->tick_ns_max, dur, memory_order_relaxed);
    STAT_ADD(g, tick_buckets[tick_bucket(dur)], 1);
    int64_t next = g->next_tick_ns + g->tick_ns;
    if (end >= next) {
        STAT_ADD(g, overruns, 1);
        g->next_tick_ns = end;
    } else {
        g->next_tick_ns = next;
    }
}

/* ---- stop -------------------------------------------------------------- */

static void group_finish(struct rp_group *g)
{
    g->finished = true;
    free(g->members);
    g->members = NULL;
    g->cap_members = 0;
    pthread_mutex_lock(&g->sys->lock);
    g->done = true;
    pthread_cond_broadcast(&g->sys->cond);
    pthread_mutex_unlock(&g->sys->lock);
}

/* True once the group may finish: nobody inside, nobody on the way in,
   no refused session's LEAVE still to come, no accepted post unhandled. */
static bool group_drained(struct rp_group *g)
{
    return g->n_members == 0 && g->refused == 0 &&
           atomic_load(&g->entering) == 0 &&
           atomic_load(&g->posts_queued) == 0 && rp_mpsc_empty(&g->inbox);
}

/* ---- the loop ---------------------------------------------------------- */

/* One turn for one group. Returns true if it has more to do at once.
   A due tick runs before the inbox: a message is never held back by a
   tick it did not wait for, and a tick never waits behind a flood. */
static bool group_run(struct rp_group *g, int64_t *deadline)
{
    if (g->tick_ns) {
        int64_t now = rp_clock_ns();
        if (now >= g->next_tick_ns)
            group_tick(g, now);
        if (g->next_tick_ns < *deadline)
            *deadline = g->next_tick_ns;
    }
    unsigned n = 0;
    struct rp_mpsc_node *node;
    while (n < GROUP_BATCH && (node = rp_mpsc_pop(&g->inbox)) != NULL) {
        n++;
        group_handle(g, (struct net_route_msg *)node);
    }
    int stop = atomic_load(&g->stopping);
    if (stop != GROUP_RUNNING) {
        if (!g->stop_seen) {
            g->stop_seen = true;
            g->kick = stop == GROUP_STOP_MOVE_OUT;
        }
        if (g->kick)
            group_kick_all(g);
        if (group_drained(g)) {
            group_finish(g);
            return false;
        }
    }
    return n == GROUP_BATCH || g->kick;
}

static void *runner_main(void *arg)
{
    struct group_runner *r = arg;
    rp_log_set_thread_name(r->name);
    tls_runner = r;
    for (;;) {
        rp__runner_arm(r);
        uint32_t n = atomic_load_explicit(&r->ngroups, memory_order_acquire);
        int64_t deadline = INT64_MAX;
        bool busy = false, all_done = true;
        for (uint32_t i = 0; i < n; i++) {
            struct rp_group *g = r->groups[i];
            if (g->finished)
                continue;
            if (g->next_tick_ns == 0 && g->tick_ns) {
                /* First turn for this group: its schedule starts now. */
                g->last_tick_ns = rp_clock_ns();
                g->next_tick_ns = g->last_tick_ns + g->tick_ns;
            }
            busy |= group_run(g, &deadline);
            if (!g->finished)
                all_done = false;
        }
        if (all_done && atomic_load(&r->quit))
            break;
        if (!busy)
            rp__runner_sleep(r, deadline);
    }
    tls_runner = NULL;
    return NULL;
}

int rp__runner_start(struct group_runner *r)
{
    int e = pthread_create(&r->tid, NULL, runner_main, r);
    if (e != 0)
        return -e;
    r->started = true;
    return 0;
}
