/*
 * An I/O thread: owns one RP_PORT_OWNED port (created and destroyed on the
 * thread), its sessions' I/O, its inbox of requests from other threads, a
 * periodic tick for deadlines, and its counters.
 *
 * A loop turn: take up to 64 completions (one submit + wait), handle each
 * by a flat switch, drain the inbox, start the gather sends queued during
 * the turn. The port sends every op submitted during the turn in one
 * system call when the next turn waits.
 *
 * Wake-up: a producer pushes to the inbox, then posts the thread's one wake
 * op only if wake_pending was 0 (it sets it to 1). The thread clears
 * wake_pending when that post arrives and only then drains the inbox, so a
 * push is either seen by this drain or wakes the thread again, and the wake
 * op is never posted twice while in flight (seq_cst on both sides). At
 * exit the thread sets wake_pending for good and waits for any post still
 * running (and its completion) before it destroys the port.
 *
 * Deadlines: one timer per thread ticks every tick_ns and scans the
 * thread's session list (fine at 10 Hz up to ~100k sessions per thread; a
 * timer wheel would make it O(expiring)).
 */
#include "net/net.h"

#include "core/assert.h"
#include "core/clock.h"
#include <errno.h>
#include <ringport/log.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BATCH 64
#define TICK_MAX_MS 100
#define TICK_MIN_MS 10

static _Thread_local struct net_thread *tls_thread;

struct net_thread *rp__thread_current(const struct rp_server *srv)
{
    struct net_thread *t = tls_thread;
    return t && t->srv == srv ? t : NULL;
}

static void thread_wake(struct net_thread *t)
{
    if (atomic_load(&t->wake_pending) != 0)
        return;
    /* 'posters' covers the window in which rp_port_post still reads the
       port after the thread may have seen the wake: the thread does not
       destroy its port until it is 0 (thread_exit). */
    atomic_fetch_add(&t->posters, 1);
    if (atomic_exchange(&t->wake_pending, 1) == 0)
        rp_port_post(t->port, &t->wake_op, 0);
    atomic_fetch_sub(&t->posters, 1);
}

/* Every inbox node is read as a net_sig first (thread_on_req). */
_Static_assert(offsetof(struct net_req, node) == 0 &&
                   offsetof(struct net_sig, node) == 0 &&
                   offsetof(struct net_req, sid) ==
                       offsetof(struct net_sig, sid) &&
                   offsetof(struct net_req, kind) ==
                       offsetof(struct net_sig, kind),
               "net_req must begin as net_sig does");

void rp__thread_push(struct net_thread *t, struct net_req *r)
{
    rp_mpsc_push(&t->inbox, &r->node);
    thread_wake(t);
}

void rp__thread_push_sig(struct net_thread *t, struct net_sig *g)
{
    rp_mpsc_push(&t->inbox, &g->node);
    thread_wake(t);
}

void rp__thread_stop(struct net_thread *t)
{
    atomic_store(&t->stop_req, 1);
    thread_wake(t);
}

/* Handles one request; the reference it carries is dropped here. */
static void thread_on_req(struct net_thread *t, struct rp_mpsc_node *n)
{
    struct rp_server *srv = t->srv;
    const struct net_sig *g = (const struct net_sig *)n;
    /* Only for SEND, MOVE and RESUME: the others are net_sigs. */
    struct net_req *r = (struct net_req *)n;
    if (g->kind == NET_REQ_RESUME) {
        /* Holds its own references (or none): resume.c drops them. */
        rp__resume_request(t, (struct net_resume *)r);
        return;
    }
    struct rp_session *s = &srv->table.slots[rp_sid_slot(g->sid)];
    switch (g->kind) {
    case NET_REQ_OPEN: rp__session_open(t, s); return; /* keeps its ref */
    case NET_REQ_SEND: rp__session_enqueue(t, s, r); break;
    case NET_REQ_MOVE:
        if (s->sid == r->sid)
            rp__route_move(t, s, r->route_to, r->route_from,
                           (enum rp_leave_reason)r->why, r->ticket);
        else
            rp__route_ticket_drop(srv, r->sid, r->ticket);
        rp_pool_free(srv->req_pool, r);
        break;
    case NET_REQ_LEFT: rp__route_on_left(t, s); break;
    case NET_REQ_RESUME: break; /* handled above */
    case NET_REQ_CLOSE:
        if (s->sid == g->sid && !s->closing) {
            int why =
                atomic_load_explicit(&s->close_reason, memory_order_relaxed);
            rp__session_end(t, s, (enum rp_leave_reason)why,
                            why == RP_LEAVE_KICKED ||
                                why == RP_LEAVE_SERVER_STOP);
        }
        break;
    }
    rp__session_put(srv, s);
}

static void thread_drain(struct net_thread *t)
{
    struct rp_mpsc_node *n;
    while ((n = rp_mpsc_pop(&t->inbox)) != NULL)
        thread_on_req(t, n);
}

static void thread_arm_tick(struct net_thread *t)
{
    t->tick_armed =
        rp_port_timer(t->port, &t->tick_op, (uint64_t)t->tick_ns) == 0;
}

static void thread_on_tick(struct net_thread *t)
{
    t->tick_armed = false;
    struct rp_session *s = t->list;
    while (s) {
        struct rp_session *next = s->next; /* s may finish here */
        rp__session_tick(t, s);
        s = next;
    }
    thread_arm_tick(t);
}

static void thread_begin_stop(struct net_thread *t)
{
    t->stopping = true;
    struct rp_session *s = t->list;
    while (s) {
        struct rp_session *next = s->next;
        if (!s->closing)
            rp__session_end(t, s, RP_LEAVE_SERVER_STOP, true);
        s = next;
    }
}

static void thread_dispatch(struct net_thread *t, const struct rp_completion *c)
{
    unsigned kind = (unsigned)(c->key & NET_OP_KIND_MASK);
    switch (kind) {
    case NET_OP_TICK: thread_on_tick(t); break;
    case NET_OP_WAKE: atomic_store(&t->wake_pending, 0); break;
    case NET_OP_TICK_CANCEL: break;
    default:
        rp__session_complete(
            t,
            (struct rp_session *)(uintptr_t)(c->key &
                                             ~(uint64_t)NET_OP_KIND_MASK),
            kind, c->res, c->flags);
        break;
    }
}

static void thread_flush(struct net_thread *t)
{
    while (t->dirty) {
        struct rp_session *s = t->dirty;
        t->dirty = s->dirty_next;
        s->dirty = false;
        rp__session_flush(t, s);
    }
}

/* Publishes the port's counters for rp_server_get_stats (a dozen relaxed
   stores a turn; the port is read only by its owner). */
static void thread_copy_port_stats(struct net_thread *t)
{
    struct rp_port_stats ps;
    rp_port_get_stats(t->port, &ps);
    const uint64_t *w = (const uint64_t *)&ps;
    for (size_t i = 0; i < sizeof ps / sizeof *w; i++)
        atomic_store_explicit(&t->stats.port[i], w[i], memory_order_relaxed);
}

static void thread_loop(struct net_thread *t)
{
    struct rp_completion batch[BATCH];
    for (;;) {
        int n = rp_port_get_many(t->port, batch, BATCH, -1);
        thread_copy_port_stats(t);
        t->now = rp_clock_ns();
        /* Groups may come at any time: a turn that saw none wakes at
           once, as a thread outside a turn does. */
        const struct net_route_ops *ro =
            atomic_load_explicit(&t->srv->route_ops, memory_order_acquire);
        if (ro)
            ro->turn_begin();
        for (int i = 0; i < n; i++)
            thread_dispatch(t, &batch[i]);
        thread_drain(t);
        if (!t->stopping && atomic_load(&t->stop_req))
            thread_begin_stop(t);
        thread_flush(t);
        if (ro)
            ro->turn_end(); /* before the next get_many can sleep */
        if (t->stopping && !t->list && !t->awaiting)
            return;
    }
}

static void thread_exit(struct net_thread *t)
{
    /* No producer may post after this: if one already did, its wake is
       in flight and must land before the port goes. */
    bool wake = atomic_exchange(&t->wake_pending, 1) == 1;
    while (atomic_load(&t->posters) > 0)
        sched_yield();
    bool tick = t->tick_armed, cancel = false;
    if (tick)
        cancel = rp_port_cancel(t->port, &t->tick_cancel_op, &t->tick_op) == 0;
    struct rp_completion c;
    while ((wake || tick || cancel) && rp_port_get(t->port, &c, -1) == 0) {
        switch (c.key) {
        case NET_OP_WAKE: wake = false; break;
        case NET_OP_TICK: tick = false; break;
        case NET_OP_TICK_CANCEL: cancel = false; break;
        }
    }
    thread_copy_port_stats(t);
    rp_port_destroy(t->port);
    t->port = NULL;
}

/* Provided receive buffers per thread: one per session the thread may
   hold, 64..2,048. A buffer is held while its completion is handled and,
   lent to a send (zero-copy forwarding), until that send completes; a ring
   that runs dry stops every receive that meets it with -ENOBUFS (a
   completion and a re-arm each, for no data). On io_uring the ring starts
   with 512 and doubles, up to this count, each time a receive finds it
   empty (uring.c): the kernel cycles through every buffer in the ring, so
   resident memory is 8 MiB per thread at the default 16 KiB until the load
   needs more (32 MiB at most, what the raw io_uring baseline's 8,192 x 4 KiB
   ring holds). epoll hands out the lowest free id first, so there only as
   many buffers as are held at once are ever touched. The array is
   reserved, not written, at create: an idle server holds none. */
static uint32_t buffer_count(const struct rp_server *srv)
{
    uint32_t per = srv->cfg.max_sessions / srv->nthreads + 1;
    uint32_t n = 64;
    while (n < per && n < 2048)
        n <<= 1;
    /* RINGPORT_BENCH_BUFFERS=N (a power of two, 64..32768): another ring
       size, for measurements only (docs/server.md). */
    const char *env = getenv("RINGPORT_BENCH_BUFFERS");
    unsigned long want = env ? strtoul(env, NULL, 10) : 0;
    if (want >= 64 && want <= 32768 && (want & (want - 1)) == 0)
        n = (uint32_t)want;
    return n;
}

static int64_t tick_ns(const struct rp_server_config *cfg)
{
    uint32_t ms = TICK_MAX_MS;
    uint32_t d[] = {cfg->idle_timeout_ms, cfg->frame_deadline_ms,
                    cfg->first_packet_deadline_ms, cfg->stop_drain_ms,
                    cfg->resume_grace_ms};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (d[i] && d[i] / 4 < ms)
            ms = d[i] / 4;
    if (cfg->ws_enabled && cfg->ws_handshake_timeout_ms / 4 < ms)
        ms = cfg->ws_handshake_timeout_ms / 4;
    if (ms < TICK_MIN_MS)
        ms = TICK_MIN_MS;
    return (int64_t)ms * RP_NS_PER_MS;
}

static void *thread_main(void *arg)
{
    struct net_thread *t = arg;
    struct rp_server *srv = t->srv;
    char name[16];
    snprintf(name, sizeof name, "rp-io-%u", t->index);
    rp_log_set_thread_name(name);
    tls_thread = t;
    t->owner = pthread_self();
    struct rp_port_config pc = {.backend = t->kind,
                                .flags = RP_PORT_OWNED,
                                .sq_entries = 1024,
                                .spin_us = srv->cfg.spin_us};
    int r = rp_port_create(&pc, &t->port);
    if (r < 0)
        goto fail;
    t->kind = rp_port_backend(t->port);
    t->uring = t->kind == RP_BACKEND_URING;
    /* Both backends receive into provided buffers (epoll emulates them),
       so a session holds no receive buffer of its own (session.c). */
    t->nbufs = buffer_count(srv);
    r = rp_port_buffers_create(t->port, t->nbufs, srv->cfg.recv_buffer_size,
                               &t->bufs);
    if (r < 0) {
        rp_port_destroy(t->port);
        goto fail;
    }
    /* Lent buffers stay out of the ring until their send completes:
       half stays for receives. RINGPORT_BENCH_NO_LEND (docs/server.md)
       turns lending off, to measure what it costs or saves. */
    const char *no_lend = getenv("RINGPORT_BENCH_NO_LEND");
    t->lend_max = no_lend && *no_lend && *no_lend != '0' ? 0 : t->nbufs / 2;
    rp_op_init(&t->wake_op);
    rp_op_init(&t->tick_op);
    rp_op_init(&t->tick_cancel_op);
    t->wake_op.key = NET_OP_WAKE;
    t->tick_op.key = NET_OP_TICK;
    t->tick_cancel_op.key = NET_OP_TICK_CANCEL;
    t->tick_ns = tick_ns(&srv->cfg);
    t->rx_buf_id = -1;
    t->now = rp_clock_ns();
    thread_arm_tick(t);
    sem_post(&t->ready);
    thread_loop(t);
    thread_exit(t);
    return NULL;
fail:
    t->port = NULL;
    t->start_error = r;
    sem_post(&t->ready);
    return NULL;
}

int rp__thread_start(struct rp_server *srv, struct net_thread *t)
{
    t->srv = srv;
    rp_mpsc_init(&t->inbox);
    sem_init(&t->ready, 0, 0);
    int r = pthread_create(&t->tid, NULL, thread_main, t);
    if (r != 0) {
        sem_destroy(&t->ready);
        return -r;
    }
    while (sem_wait(&t->ready) < 0)
        ;
    sem_destroy(&t->ready);
    if (t->start_error) {
        pthread_join(t->tid, NULL);
        return t->start_error;
    }
    return 0;
}

void rp__thread_join(struct net_thread *t)
{
    pthread_join(t->tid, NULL);
}

void rp__thread_drain_inbox(struct net_thread *t)
{
    struct rp_server *srv = t->srv;
    struct rp_mpsc_node *n;
    while ((n = rp_mpsc_pop(&t->inbox)) != NULL) {
        const struct net_sig *g = (const struct net_sig *)n;
        struct net_req *r = (struct net_req *)n; /* SEND, MOVE, RESUME */
        if (g->kind == NET_REQ_RESUME) {
            /* A connection on its way to a session that has ended. */
            rp__resume_drop_request(srv, (struct net_resume *)r);
            continue;
        }
        struct rp_session *s = &srv->table.slots[rp_sid_slot(g->sid)];
        if (g->kind == NET_REQ_SEND || g->kind == NET_REQ_MOVE) {
            /* A move that reached the thread as it exited: the session
               has ended, its ticket comes back here. */
            if (r->kind == NET_REQ_MOVE)
                rp__route_ticket_drop(srv, r->sid, r->ticket);
            rp_packet_unref(r->pkt);
            rp_pool_free(srv->req_pool, r);
        } else if (g->kind == NET_REQ_OPEN) {
            /* Accepted, never joined: close it and free the slot. */
            close(s->fd);
            atomic_fetch_or(&s->state, NET_CLOSING);
            atomic_fetch_add(&srv->refused, 1);
            atomic_fetch_sub(&srv->accepts, 1);
        }
        rp__session_put(srv, s);
    }
}
