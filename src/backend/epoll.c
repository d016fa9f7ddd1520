/*
 * The epoll backend: readiness turned into completions.
 *
 * One level-triggered epoll per port. Each fd with pending ops is
 * registered with the union of what its ops need (receive/accept -> IN,
 * send/connect -> OUT); ops wait in per-fd FIFOs, one per direction, in a
 * table indexed by fd. On readiness the head ops run their syscall
 * (MSG_DONTWAIT, MSG_NOSIGNAL) until the kernel says EAGAIN, except an
 * emulated multishot receive: it reads once per readiness (see run_in).
 * A partial send stays at the head and continues on the next EPOLLOUT
 * until every byte went out or it failed. A send is tried at once, so
 * EPOLLOUT is asked for only after an EAGAIN.
 *
 * Registration changes are lazy: an fd whose ops came or went is marked
 * dirty, and the registration is made to match its ops just before the
 * next epoll_pwait2 (fd_flush). A receive that completes and is re-armed
 * in the same loop turn (every message of a session) so costs no
 * epoll_ctl at all, where an eager update cost a DEL and an ADD per
 * message. Only an fd's first registration (whose error the submit must
 * return) and a cancel (after which the fd may go to another thread) are
 * applied at once. A stale registration between two waits is harmless:
 * the ops it would have run are looked up in the FIFOs, which are current.
 * Owned ports only: there the thread that gets a completion is the one
 * that flushes, so a caller that closes an fd on its completion does so
 * before (never during) the flush's epoll_ctl on it. A shared port's
 * completions go to other threads, which may close the fd at once: it
 * updates eagerly, before delivering, as a plain reactor does.
 *
 * Ops that finish without waiting (close, shutdown, cancel, nop, a send
 * that went out at once) go to a ready list delivered by the next reap.
 * Timers sit in a deadline-sorted list that bounds epoll_pwait2's timeout.
 * Closing through the port cancels the fd's ops and unregisters it first,
 * so a reused fd number never sees its predecessor's completions.
 */
#include "backend/backend.h"
#include "core/assert.h"
#include "core/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define EPOLL_BATCH 256 /* events per wait, as a tuned epoll loop takes */
#define WAKE_TAG UINT64_MAX

enum {
    WHERE_NONE,
    WHERE_IN,
    WHERE_OUT,
    WHERE_TIMER,
    WHERE_READY,
    WHERE_PARKED
};

struct op_fifo {
    struct rp_op *head;
    struct rp_op *tail;
};

struct fd_state {
    struct op_fifo in;
    struct op_fifo out;
    uint32_t armed; /* the events registered with epoll; 0: not registered */
    bool dirty;     /* on the dirty list: armed may not match the FIFOs */
};

struct epoll_backend {
    struct rp__backend base;
    int epfd;
    int wake_fd;
    struct fd_state *fds; /* indexed by fd; nfds entries */
    size_t nfds;
    int *dirty; /* fds whose registration is updated before the next wait;
                   fds[fd].dirty set for each, ndirty <= nfds */
    size_t ndirty;
    struct op_fifo ready;
    struct op_fifo timers; /* sorted by deadline_ns, earliest first */
    struct op_fifo done;   /* finished by this readiness, delivered after
                              the fd's registration is updated: once
                              delivered, the caller may close the fd */
    struct rp_buffers *buffers;
    bool skipped_wait; /* the last reap delivered ready ops only */
    bool lazy;         /* owned port: registration changes wait for the
                          next reap (fd_flush) */
};

static struct epoll_backend *to_epoll(struct rp__backend *be)
{
    return (struct epoll_backend *)be;
}

static void fifo_push(struct op_fifo *f, struct rp_op *op)
{
    op->rp__priv.next = NULL;
    op->rp__priv.prev = f->tail;
    if (f->tail)
        f->tail->rp__priv.next = op;
    else
        f->head = op;
    f->tail = op;
}

static void fifo_insert_before(struct op_fifo *f, struct rp_op *pos,
                               struct rp_op *op)
{
    if (!pos) {
        fifo_push(f, op);
        return;
    }
    op->rp__priv.next = pos;
    op->rp__priv.prev = pos->rp__priv.prev;
    if (pos->rp__priv.prev)
        pos->rp__priv.prev->rp__priv.next = op;
    else
        f->head = op;
    pos->rp__priv.prev = op;
}

static void fifo_unlink(struct op_fifo *f, struct rp_op *op)
{
    if (op->rp__priv.prev)
        op->rp__priv.prev->rp__priv.next = op->rp__priv.next;
    else
        f->head = op->rp__priv.next;
    if (op->rp__priv.next)
        op->rp__priv.next->rp__priv.prev = op->rp__priv.prev;
    else
        f->tail = op->rp__priv.prev;
    op->rp__priv.next = op->rp__priv.prev = NULL;
}

static void complete(struct epoll_backend *e, struct rp_op *op, int32_t res,
                     uint32_t flags)
{
    op->rp__priv.where = WHERE_NONE;
    e->base.p.complete(e->base.p.ctx, op, res, flags);
}

static void complete_later(struct epoll_backend *e, struct rp_op *op,
                           int32_t res)
{
    op->rp__priv.result = res;
    op->rp__priv.where = WHERE_READY;
    fifo_push(&e->done, op);
}

static void ready_push(struct epoll_backend *e, struct rp_op *op, int32_t res)
{
    op->rp__priv.result = res;
    op->rp__priv.where = WHERE_READY;
    bool was_empty = e->ready.head == NULL;
    fifo_push(&e->ready, op);
    if (!e->base.p.owned && was_empty)
        e->base.ops->wake(&e->base);
}

static struct fd_state *fd_state(struct epoll_backend *e, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= e->nfds) {
        size_t n = e->nfds ? e->nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        /* The dirty list holds each fd at most once: nfds entries. */
        int *dirty = realloc(e->dirty, n * sizeof *dirty);
        if (!dirty)
            return NULL;
        e->dirty = dirty;
        struct fd_state *grown = realloc(e->fds, n * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + e->nfds, 0, (n - e->nfds) * sizeof *grown);
        e->fds = grown;
        e->nfds = n;
    }
    return &e->fds[fd];
}

/* Makes the epoll registration match the fd's pending ops. */
static int fd_update(struct epoll_backend *e, int fd)
{
    struct fd_state *st = &e->fds[fd];
    uint32_t want = (st->in.head ? EPOLLIN : 0) | (st->out.head ? EPOLLOUT : 0);
    if (want == st->armed)
        return 0;
    struct epoll_event ev = {.events = want, .data.u64 = (uint64_t)fd};
    int r;
    if (want == 0) {
        r = epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
        r = 0; /* the fd may be gone already: nothing left to undo */
    } else if (st->armed == 0) {
        r = epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (r < 0 && errno == EEXIST)
            r = epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev);
    } else {
        r = epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev);
        if (r < 0 && errno == ENOENT) /* closed and reopened behind us */
            r = epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    if (r < 0)
        return -errno;
    st->armed = want;
    return 0;
}

/* The fd's ops changed: its registration is brought up to date before
   the next wait (fd_flush). */
static void fd_touch(struct epoll_backend *e, int fd)
{
    struct fd_state *st = &e->fds[fd];
    if (st->dirty)
        return;
    st->dirty = true;
    e->dirty[e->ndirty++] = fd;
}

/* Ends every op waiting on the fd with 'err' (its registration failed). */
static void fd_fail(struct epoll_backend *e, int fd, int32_t err);

/* Applies the pending registration changes; called right before a wait. An
   fd that cannot be re-registered (closed behind the port's back) has its
   waiting ops ended with the error rather than left to wait forever. */
static void fd_flush(struct epoll_backend *e)
{
    for (size_t i = 0; i < e->ndirty; i++) {
        int fd = e->dirty[i];
        e->fds[fd].dirty = false;
        int r = fd_update(e, fd);
        if (r < 0)
            fd_fail(e, fd, r);
    }
    e->ndirty = 0;
}

/* Queues an op that waits for readiness; -errno if the fd cannot be
   watched (nothing queued then). */
static int fd_enqueue(struct epoll_backend *e, struct rp_op *op, bool out)
{
    struct fd_state *st = fd_state(e, op->rp__priv.fd);
    if (!st)
        return op->rp__priv.fd < 0 ? -EBADF : -ENOMEM;
    struct op_fifo *f = out ? &st->out : &st->in;
    fifo_push(f, op);
    op->rp__priv.where = out ? WHERE_OUT : WHERE_IN;
    if (st->armed != 0 && e->lazy) {
        /* Registered already: at most a MOD, made before the next wait
           (none at all when a receive is re-armed in the turn that
           completed it). */
        fd_touch(e, op->rp__priv.fd);
        return 0;
    }
    int r = fd_update(e, op->rp__priv.fd);
    if (r < 0) {
        fifo_unlink(f, op);
        op->rp__priv.where = WHERE_NONE;
    }
    return r;
}

static void timer_insert(struct epoll_backend *e, struct rp_op *op)
{
    struct rp_op *pos = e->timers.head;
    while (pos && pos->rp__priv.deadline_ns <= op->rp__priv.deadline_ns)
        pos = pos->rp__priv.next;
    fifo_insert_before(&e->timers, pos, op);
    op->rp__priv.where = WHERE_TIMER;
    if (!e->base.p.owned && e->timers.head == op)
        e->base.ops->wake(&e->base); /* the dispatcher's sleep is too long */
}

static void parked_unlink(struct rp_op *op)
{
    struct rp_buffers *b = op->rp__priv.buffers;
    for (struct rp_op **pp = &b->parked; *pp; pp = &(*pp)->rp__priv.next) {
        if (*pp == op) {
            *pp = op->rp__priv.next;
            break;
        }
    }
    op->rp__priv.parked = 0;
}

/* Takes a pending op out of whatever list holds it. False if it is not
   waiting (already completed or on the ready list). */
static bool op_detach(struct epoll_backend *e, struct rp_op *op)
{
    struct fd_state *st;
    switch (op->rp__priv.where) {
    case WHERE_IN:
        st = &e->fds[op->rp__priv.fd];
        fifo_unlink(&st->in, op);
        return true;
    case WHERE_OUT:
        st = &e->fds[op->rp__priv.fd];
        fifo_unlink(&st->out, op);
        return true;
    case WHERE_TIMER: fifo_unlink(&e->timers, op); return true;
    case WHERE_PARKED: parked_unlink(op); return true;
    default: return false;
    }
}

/* Cancels every op waiting on fd; returns how many. */
static int cancel_fd(struct epoll_backend *e, int fd)
{
    int n = 0;
    if (fd >= 0 && (size_t)fd < e->nfds) {
        struct fd_state *st = &e->fds[fd];
        struct op_fifo *fifos[2] = {&st->in, &st->out};
        for (int i = 0; i < 2; i++) {
            while (fifos[i]->head) {
                struct rp_op *op = fifos[i]->head;
                fifo_unlink(fifos[i], op);
                ready_push(e, op, -ECANCELED);
                n++;
            }
        }
        fd_update(e, fd);
    }
    for (struct rp_buffers *b = e->buffers; b; b = b->be_next) {
        struct rp_op *op = b->parked;
        while (op) {
            struct rp_op *next = op->rp__priv.next;
            if (op->rp__priv.fd == fd) {
                parked_unlink(op);
                ready_push(e, op, -ECANCELED);
                n++;
            }
            op = next;
        }
    }
    return n;
}

static void fd_fail(struct epoll_backend *e, int fd, int32_t err)
{
    struct fd_state *st = &e->fds[fd];
    struct op_fifo *fifos[2] = {&st->in, &st->out};
    for (int i = 0; i < 2; i++) {
        while (fifos[i]->head) {
            struct rp_op *op = fifos[i]->head;
            fifo_unlink(fifos[i], op);
            ready_push(e, op, err);
        }
    }
    st->armed = 0; /* whatever epoll holds for it goes with the close */
}

/* One send attempt; true when the op is finished (completion queued). */
static bool try_send(struct epoll_backend *e, struct rp_op *op, bool queued)
{
    for (;;) {
        /* One iovec (a small echo, coalesced packets): send(2) skips
           sendmsg's copy and check of the msghdr and its iovec array. */
        const struct msghdr *m = &op->rp__priv.msg;
        ssize_t n =
            m->msg_iovlen == 1 && !m->msg_name && !m->msg_controllen
                ? send(op->rp__priv.fd, m->msg_iov[0].iov_base,
                       m->msg_iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT)
                : sendmsg(op->rp__priv.fd, m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return false;
            int32_t err = -errno;
            if (queued)
                complete_later(e, op, err);
            else
                ready_push(e, op, err);
            return true;
        }
        op->rp__priv.done += (uint64_t)n;
        if (op->rp__priv.done >= op->rp__priv.total) {
            int32_t res = (int32_t)op->rp__priv.done;
            if (queued)
                complete_later(e, op, res);
            else
                ready_push(e, op, res);
            return true;
        }
        rp__msg_advance(&op->rp__priv.msg, (size_t)n);
    }
}

static int epoll_submit(struct rp__backend *be, struct rp_op *op)
{
    struct epoll_backend *e = to_epoll(be);
    int fd = op->rp__priv.fd;
    int r;
    switch (op->rp__priv.kind) {
    case RP_OP_ACCEPT:
    case RP_OP_RECV:
    case RP_OP_RECV_MULTI: return fd_enqueue(e, op, false);
    case RP_OP_CONNECT:
        r = connect(fd, op->rp__priv.addr, (socklen_t)op->rp__priv.arg);
        if (r == 0)
            ready_push(e, op, 0);
        else if (errno == EINPROGRESS)
            return fd_enqueue(e, op, true);
        else
            ready_push(e, op, -errno);
        return 0;
    case RP_OP_SEND: {
        struct fd_state *st = fd_state(e, fd);
        if (!st)
            return fd < 0 ? -EBADF : -ENOMEM;
        if (op->rp__priv.total == 0) {
            ready_push(e, op, 0);
            return 0;
        }
        /* Sending at once saves the EPOLLOUT round trip, but never ahead of
           a send already waiting on the same socket. */
        if (!st->out.head && try_send(e, op, false))
            return 0;
        return fd_enqueue(e, op, true);
    }
    case RP_OP_SHUTDOWN:
        r = shutdown(fd, op->rp__priv.arg);
        ready_push(e, op, r < 0 ? -errno : 0);
        return 0;
    case RP_OP_CLOSE:
    case RP_OP_CLOSE_IDLE:
        /* Cheap here (the fd's own queues and the parked list), and it
           leaves the fd unregistered whatever the caller left pending. */
        cancel_fd(e, fd);
        if (fd >= 0 && (size_t)fd < e->nfds)
            e->fds[fd].armed = 0; /* close(2) unregisters it */
        r = close(fd);
        ready_push(e, op, r < 0 ? -errno : 0);
        return 0;
    case RP_OP_CANCEL: {
        struct rp_op *target = op->rp__priv.addr;
        if (target->rp__priv.port != op->rp__priv.port) {
            ready_push(e, op, -ENOENT);
            return 0;
        }
        bool found = op_detach(e, target);
        /* The registration follows at once, found or not (as cancel_fd's
           does): a teardown that cancels its ops by name may hand the fd
           to another thread as soon as they are back, and a stale
           registration here would hide a later fd with the same number. */
        int tfd = target->rp__priv.fd;
        if (tfd >= 0 && (size_t)tfd < e->nfds &&
            target->rp__priv.kind != RP_OP_TIMER)
            fd_update(e, tfd);
        if (!found) {
            ready_push(e, op, -ENOENT);
            return 0;
        }
        ready_push(e, target, -ECANCELED);
        ready_push(e, op, 0);
        return 0;
    }
    case RP_OP_CANCEL_FD:
        r = cancel_fd(e, fd);
        ready_push(e, op, r);
        return 0;
    case RP_OP_TIMER:
        op->rp__priv.deadline_ns = rp_clock_ns() +
                                   op->rp__priv.ts_sec * RP_NS_PER_SEC +
                                   op->rp__priv.ts_nsec;
        timer_insert(e, op);
        return 0;
    case RP_OP_NOP: ready_push(e, op, 0); return 0;
    default:
        RP_PANIC("epoll: op kind %d cannot be submitted", op->rp__priv.kind);
    }
}

static void park_multishot(struct rp_op *op)
{
    struct rp_buffers *b = op->rp__priv.buffers;
    op->rp__priv.parked = 1;
    op->rp__priv.where = WHERE_PARKED;
    op->rp__priv.next = b->parked;
    b->parked = op;
}

/* Runs the head of the fd's read FIFO until the kernel has nothing more
   (a multishot receive: until one read succeeded). */
static void run_in(struct epoll_backend *e, struct fd_state *st, int fd)
{
    while (st->in.head) {
        struct rp_op *op = st->in.head;
        ssize_t n;
        switch (op->rp__priv.kind) {
        case RP_OP_ACCEPT:
            n = accept4(fd, op->rp__priv.addr, op->rp__priv.addrlen,
                        SOCK_CLOEXEC | SOCK_NONBLOCK);
            break;
        case RP_OP_RECV:
            n = recvmsg(fd, &op->rp__priv.msg, MSG_DONTWAIT);
            break;
        case RP_OP_RECV_MULTI: {
            struct rp_buffers *b = op->rp__priv.buffers;
            if (b->nfree == 0) {
                fifo_unlink(&st->in, op);
                park_multishot(op);
                continue;
            }
            uint16_t id = b->free_ids[--b->nfree];
            n = recv(fd, b->data + (size_t)id * b->size, b->size, MSG_DONTWAIT);
            if (n > 0) {
                const struct rp__backend_params *p = &e->base.p;
                uint32_t out = b->count - b->nfree;
                if (out > p->stats->buffers_out_max)
                    __atomic_store_n(&p->stats->buffers_out_max, out,
                                     __ATOMIC_RELAXED);
                complete(e, op, (int32_t)n,
                         RP_COMP_BUFFER | RP_COMP_MORE | ((uint32_t)id << 16));
                op->rp__priv.where = WHERE_IN;
                /* One receive per readiness, as a plain reactor reads:
                   level-triggered epoll reports the fd again while bytes
                   are left, so no read is spent to learn EAGAIN, and what
                   the callback queued goes out (flushed at the end of the
                   turn) before the next buffer is read. Reading on while
                   the buffers came back full batched a deep pipeline's
                   replies into one send per readiness (64 KiB at 16 x 4
                   KiB): the peer got nothing until the server had read
                   everything, and the two sides took turns instead of
                   overlapping (docs/benchmarks.md, "Round two, second
                   session"). */
                return;
            }
            b->free_ids[b->nfree++] = id;
            break;
        }
        default:
            RP_PANIC("epoll: op kind %d in a read queue", op->rp__priv.kind);
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0 && errno == EINTR)
            continue;
        fifo_unlink(&st->in, op);
        complete_later(e, op, n < 0 ? -errno : (int32_t)n);
    }
}

static void run_out(struct epoll_backend *e, struct fd_state *st, int fd)
{
    while (st->out.head) {
        struct rp_op *op = st->out.head;
        if (op->rp__priv.kind == RP_OP_CONNECT) {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            fifo_unlink(&st->out, op);
            complete_later(e, op, -err);
            continue;
        }
        /* A finished send is completed (and unlinked) inside try_send, so
           unlink first: the completion may hand the op back to its owner. */
        fifo_unlink(&st->out, op);
        if (!try_send(e, op, true)) {
            fifo_insert_before(&st->out, st->out.head, op);
            op->rp__priv.where = WHERE_OUT;
            return;
        }
    }
}

static void expire_timers(struct epoll_backend *e)
{
    if (!e->timers.head)
        return;
    int64_t now = rp_clock_ns();
    while (e->timers.head && e->timers.head->rp__priv.deadline_ns <= now) {
        struct rp_op *op = e->timers.head;
        fifo_unlink(&e->timers, op);
        complete(e, op, -ETIME, 0);
    }
}

static void drain_ready(struct epoll_backend *e)
{
    while (e->ready.head) {
        struct rp_op *op = e->ready.head;
        fifo_unlink(&e->ready, op);
        complete(e, op, op->rp__priv.result, 0);
    }
}

static int64_t wait_ns(struct epoll_backend *e, int64_t timeout_ns)
{
    if (e->ready.head)
        return 0;
    if (e->timers.head) {
        int64_t left = e->timers.head->rp__priv.deadline_ns - rp_clock_ns();
        if (left < 0)
            left = 0;
        if (timeout_ns < 0 || left < timeout_ns)
            return left;
    }
    return timeout_ns;
}

static int epoll_reap(struct rp__backend *be, int64_t timeout_ns)
{
    struct epoll_backend *e = to_epoll(be);
    const struct rp__backend_params *p = &be->p;
    uint64_t before = __atomic_load_n(&p->stats->completed, __ATOMIC_RELAXED);
    if (p->lock)
        pthread_mutex_lock(p->lock);
    fd_flush(e);
    int64_t ns = wait_ns(e, timeout_ns);
    /* Ops finished at submission (a send that went out at once) are
       delivered without a zero-timeout epoll_pwait2 first: at depth 1
       that poll finds nothing and costs a system call per message. Every
       other reap polls whatever is ready, so readiness is never starved
       by ops that keep completing at once. */
    bool skip = ns == 0 && e->ready.head && !e->skipped_wait;
    e->skipped_wait = skip;
    if (p->lock)
        pthread_mutex_unlock(p->lock);

    struct epoll_event evs[EPOLL_BATCH];
    int n = 0;
    if (!skip) {
        struct timespec ts = rp_timespec_from_ns(ns < 0 ? 0 : ns);
        n = epoll_pwait2(e->epfd, evs, EPOLL_BATCH, ns < 0 ? NULL : &ts, NULL);
        rp__stat_add(p, &p->stats->enters, 1);
        if (ns != 0) {
            rp__stat_add(p, &p->stats->waits, 1);
            if (n <= 0)
                rp__stat_add(p, &p->stats->waits_empty, 1);
        }
        if (n < 0)
            n = 0; /* EINTR: the caller loops on its own deadline */
    }

    if (p->lock)
        pthread_mutex_lock(p->lock);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 == WAKE_TAG) {
            uint64_t v;
            ssize_t r = read(e->wake_fd, &v, sizeof v);
            (void)r; /* EAGAIN: someone drained it already */
            rp__stat_add(p, &p->stats->wakeups, 1);
            continue;
        }
        int fd = (int)evs[i].data.u64;
        if ((size_t)fd >= e->nfds)
            continue;
        struct fd_state *st = &e->fds[fd];
        uint32_t bits = evs[i].events;
        if (bits & (EPOLLIN | EPOLLERR | EPOLLHUP))
            run_in(e, st, fd);
        if (bits & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            run_out(e, st, fd);
        if (e->lazy)
            fd_touch(e, fd);
        else
            fd_update(e, fd);
        while (e->done.head) {
            struct rp_op *op = e->done.head;
            fifo_unlink(&e->done, op);
            complete(e, op, op->rp__priv.result, 0);
        }
    }
    expire_timers(e);
    drain_ready(e);
    if (p->lock)
        pthread_mutex_unlock(p->lock);
    uint64_t after = __atomic_load_n(&p->stats->completed, __ATOMIC_RELAXED);
    return (int)(after - before);
}

static void epoll_wake(struct rp__backend *be)
{
    uint64_t one = 1;
    ssize_t w = write(to_epoll(be)->wake_fd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is already non-zero, a wake is due */
}

static int epoll_create_backend(const struct rp__backend_params *p,
                                struct rp__backend **out)
{
    struct epoll_backend *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->base.ops = &rp__epoll_ops;
    e->base.p = *p;
    e->lazy = p->owned;
    int r;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        r = -errno;
        goto fail_epoll;
    }
    e->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (e->wake_fd < 0) {
        r = -errno;
        goto fail_wake;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wake_fd, &ev) < 0) {
        r = -errno;
        goto fail_register;
    }
    *out = &e->base;
    return 0;

fail_register:
    close(e->wake_fd);
fail_wake:
    close(e->epfd);
fail_epoll:
    free(e);
    return r;
}

static void epoll_destroy(struct rp__backend *be)
{
    struct epoll_backend *e = to_epoll(be);
    close(e->wake_fd);
    close(e->epfd);
    free(e->fds);
    free(e->dirty);
    free(e);
}

static int epoll_buffers_init(struct rp__backend *be, struct rp_buffers *bufs)
{
    struct epoll_backend *e = to_epoll(be);
    bufs->free_ids = malloc(bufs->count * sizeof *bufs->free_ids);
    if (!bufs->free_ids)
        return -ENOMEM;
    /* Lowest id on top, as the io_uring ring hands them out. */
    for (uint32_t i = 0; i < bufs->count; i++)
        bufs->free_ids[i] = (uint16_t)(bufs->count - 1 - i);
    bufs->nfree = bufs->count;
    bufs->provided = bufs->count; /* all in use from the start */
    rp__stat_add(&be->p, &be->p.stats->buffers_provided, bufs->count);
    bufs->be_next = e->buffers;
    e->buffers = bufs;
    return 0;
}

static void epoll_buffers_fini(struct rp__backend *be, struct rp_buffers *bufs)
{
    struct epoll_backend *e = to_epoll(be);
    rp__stat_add(&be->p, &be->p.stats->buffers_provided,
                 -(uint64_t)bufs->provided);
    free(bufs->free_ids);
    for (struct rp_buffers **pp = &e->buffers; *pp; pp = &(*pp)->be_next) {
        if (*pp == bufs) {
            *pp = bufs->be_next;
            break;
        }
    }
}

static void epoll_buffer_recycle(struct rp__backend *be,
                                 struct rp_buffers *bufs, uint16_t id)
{
    struct epoll_backend *e = to_epoll(be);
    assert(bufs->nfree < bufs->count);
    bufs->free_ids[bufs->nfree++] = id;
    while (bufs->parked) {
        struct rp_op *op = bufs->parked;
        bufs->parked = op->rp__priv.next;
        op->rp__priv.parked = 0;
        if (fd_enqueue(e, op, false) < 0)
            ready_push(e, op, -EBADF);
    }
}

const struct rp__backend_ops rp__epoll_ops = {
    .kind = RP_BACKEND_EPOLL,
    .create = epoll_create_backend,
    .destroy = epoll_destroy,
    .submit = epoll_submit,
    .reap = epoll_reap,
    .wake = epoll_wake,
    .buffers_init = epoll_buffers_init,
    .buffers_fini = epoll_buffers_fini,
    .buffer_recycle = epoll_buffer_recycle,
};
