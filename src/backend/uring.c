/*
 * The io_uring backend. user_data is the op pointer; small values tag the
 * port's internal requests (the wake-up eventfd read, the cancel that
 * precedes a close), which are never delivered to the caller.
 *
 * Owned mode rings use SINGLE_ISSUER|DEFER_TASKRUN (plain flags when the
 * kernel refuses them): submissions accumulate in the SQ and go in with
 * the wait, one io_uring_enter per loop turn. Shared mode rings are filled
 * under the port's lock and submitted at once; the dispatcher sleeps in
 * the kernel without the lock and takes it to process the CQ.
 *
 * Short sends: stream sendmsg carries MSG_WAITALL so the kernel retries
 * itself, and a short completion is still continued here. Multishot
 * receives that end without MORE are re-armed unless the end is final;
 * -ENOBUFS parks the op until a buffer is free. Owned rings re-arm parked
 * ops before each wait, no more of them than the ring has buffers: when
 * the ring runs dry under load, re-arming every stopped receive at once
 * only has them meet -ENOBUFS again in the next enter (a multishot armed
 * on an empty ring ends at once, data or not: liburing #1275), each a
 * completion, a re-arm and a turn of the loop for no data.
 *
 * Cancels are honoured here, not only in the kernel. The kernel cancels
 * what it holds when the cancel arrives; an op whose kernel request had
 * already ended (a multishot that met -ENOBUFS, a short send) is outside
 * its reach, and continuing it would slip past the cancel. So every fd op
 * records its fd's cancel generation at submission (cancel_fd and close
 * bump it; a cancel naming the op marks it), and an op whose generation
 * moved is never continued, re-armed or parked: it completes with
 * -ECANCELED. (epoll needs no such check: its cancel_fd takes every
 * waiting and parked op of the fd in one step.)
 *
 * Cost: a cancel by descriptor (cancel_fd, and the one close links before
 * itself) walks every pending poll request of the ring, an armed receive
 * per open session; a cancel naming an op finds it by user_data in the
 * kernel's hash. A teardown that knows its ops cancels them by name and
 * closes with close_idle (no cancel), so its cost does not grow with the
 * number of sessions.
 */
#include "backend/backend.h"
#include "core/assert.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define TAG_WAKE 1ull
#define TAG_IGNORE 2ull
#define SQE_RETRIES 64
/* Wait moderation (owned rings, see uring_reap): a busy batch is one of at
   least MODERATE_MIN completions; the next wait then asks for what it
   submits plus up to MODERATE_MAX more, for at most MODERATE_NS. */
#define MODERATE_MIN 8u
#define MODERATE_MAX 32u
#define MODERATE_NS 20000
/* A buffer group starts with at most this many buffers in its ring and
   doubles them, up to its count, whenever a receive meets an empty ring
   (uring_buffers_grow): the kernel cycles through every buffer it is
   given, so resident memory is what the load has needed. */
#define BUFS_START 512u

struct uring_backend {
    struct rp__backend base;
    struct io_uring ring;
    int wake_fd;
    uint64_t wake_buf;
    bool wake_armed;
    struct rp_op *ready_head; /* completions made here, not by the kernel */
    struct rp_op *ready_tail;
    struct rp_buffers *buffers;
    /* Bumped by each cancel_fd/close of an fd: an op submitted before
       (rp__priv.fd_gen) was cancelled, whatever the kernel says of it
       (io_uring reports a cancelled partial send as the bytes it sent,
       and cannot cancel a multishot that already ended). Indexed by fd;
       nfd_gen entries. */
    uint32_t *fd_gen;
    size_t nfd_gen;
    uint32_t last_batch; /* completions the last reap dispatched */
    bool moderate;       /* wait moderation on (RINGPORT_BENCH_NO_MODERATE
                            turns it off, for measurements) */
};

static void uring_process(struct uring_backend *u);

static struct uring_backend *to_uring(struct rp__backend *be)
{
    return (struct uring_backend *)be;
}

static void uring_count_enter(struct uring_backend *u)
{
    rp__stat_add(&u->base.p, &u->base.p.stats->enters, 1);
}

/* The enter count, to date a send: one that completes after a later
   enter than the one that took it to the kernel was not done inline. */
static uint32_t uring_enters(const struct uring_backend *u)
{
    return (uint32_t)__atomic_load_n(&u->base.p.stats->enters,
                                     __ATOMIC_RELAXED);
}

static void uring_send_mark(struct uring_backend *u, struct rp_op *op)
{
    op->rp__priv.arg = (int)uring_enters(u);
}

static int uring_flush(struct uring_backend *u)
{
    int r = io_uring_submit(&u->ring);
    uring_count_enter(u);
    return r;
}

/* A free SQE; when the SQ is full, flushes it first (reaping the CQ when
   the kernel pushes back with -EBUSY). NULL only if the kernel keeps
   refusing. */
static struct io_uring_sqe *uring_sqe(struct uring_backend *u)
{
    for (int i = 0; i < SQE_RETRIES; i++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        if (sqe)
            return sqe;
        int r = uring_flush(u);
        if (r == -EBUSY || r == -EAGAIN)
            uring_process(u);
    }
    return NULL;
}

static void uring_ready_push(struct uring_backend *u, struct rp_op *op,
                             int32_t res)
{
    op->rp__priv.result = res;
    op->rp__priv.next = NULL;
    if (u->ready_tail)
        u->ready_tail->rp__priv.next = op;
    else
        u->ready_head = op;
    u->ready_tail = op;
    if (!u->base.p.owned)
        u->base.ops->wake(&u->base);
}

static void uring_arm_wake(struct uring_backend *u)
{
    if (u->wake_armed)
        return;
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (!sqe)
        return; /* retried at the next reap */
    io_uring_prep_read(sqe, u->wake_fd, &u->wake_buf, sizeof u->wake_buf, 0);
    io_uring_sqe_set_data64(sqe, TAG_WAKE);
    u->wake_armed = true;
}

static void uring_prep_multishot(struct io_uring_sqe *sqe, struct rp_op *op)
{
    io_uring_prep_recv_multishot(sqe, op->rp__priv.fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = op->rp__priv.buffers->group;
    io_uring_sqe_set_data(sqe, op);
}

/* The parked ops are a FIFO (parked .. parked_tail): under a long
   shortage the receive stopped first is re-armed first. */
static void parked_push(struct rp_buffers *bufs, struct rp_op *op)
{
    op->rp__priv.parked = 1;
    op->rp__priv.next = NULL;
    if (bufs->parked)
        bufs->parked_tail->rp__priv.next = op;
    else
        bufs->parked = op;
    bufs->parked_tail = op;
}

static struct rp_op *parked_pop(struct rp_buffers *bufs)
{
    struct rp_op *op = bufs->parked;
    bufs->parked = op->rp__priv.next;
    if (!bufs->parked)
        bufs->parked_tail = NULL;
    op->rp__priv.parked = 0;
    return op;
}

static bool parked_unlink(struct rp_buffers *bufs, struct rp_op *op)
{
    struct rp_op *prev = NULL;
    for (struct rp_op **pp = &bufs->parked; *pp; pp = &(*pp)->rp__priv.next) {
        if (*pp == op) {
            *pp = op->rp__priv.next;
            if (bufs->parked_tail == op)
                bufs->parked_tail = prev;
            op->rp__priv.parked = 0;
            return true;
        }
        prev = *pp;
    }
    return false;
}

/* Cancels parked multishot ops (not in the kernel): all of them on 'fd', or
   just 'target'. Returns how many. */
static int uring_cancel_parked(struct uring_backend *u, int fd,
                               struct rp_op *target)
{
    int n = 0;
    for (struct rp_buffers *b = u->buffers; b; b = b->be_next) {
        struct rp_op *op = b->parked;
        while (op) {
            struct rp_op *next = op->rp__priv.next;
            if (target ? op == target : op->rp__priv.fd == fd) {
                parked_unlink(b, op);
                uring_ready_push(u, op, -ECANCELED);
                n++;
            }
            op = next;
        }
    }
    return n;
}

static uint32_t *fd_gen(struct uring_backend *u, int fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= u->nfd_gen) {
        size_t n = u->nfd_gen ? u->nfd_gen : 64;
        while (n <= (size_t)fd)
            n *= 2;
        uint32_t *grown = realloc(u->fd_gen, n * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + u->nfd_gen, 0, (n - u->nfd_gen) * sizeof *grown);
        u->fd_gen = grown;
        u->nfd_gen = n;
    }
    return &u->fd_gen[fd];
}

/* An op's cancel marks: its fd's generation at submission, and 'where'
   set when a cancel names the op itself. */
static void op_mark(struct uring_backend *u, struct rp_op *op)
{
    uint32_t *gen = fd_gen(u, op->rp__priv.fd);
    op->rp__priv.fd_gen = gen ? *gen : 0;
    op->rp__priv.where = 0;
}

/* True once a cancel_fd, a close or a cancel naming it was submitted
   after the op: it must end with -ECANCELED, not go on. */
static bool op_was_cancelled(struct uring_backend *u, struct rp_op *op)
{
    uint32_t *gen = fd_gen(u, op->rp__priv.fd);
    return op->rp__priv.where || (gen && *gen != op->rp__priv.fd_gen);
}

static int uring_submit(struct rp__backend *be, struct rp_op *op)
{
    struct uring_backend *u = to_uring(be);
    int fd = op->rp__priv.fd;

    if (op->rp__priv.kind == RP_OP_SEND ||
        op->rp__priv.kind == RP_OP_RECV_MULTI)
        op_mark(u, op);
    if (op->rp__priv.kind == RP_OP_CANCEL_FD ||
        op->rp__priv.kind == RP_OP_CLOSE ||
        op->rp__priv.kind == RP_OP_CLOSE_IDLE) {
        uint32_t *gen = fd_gen(u, fd);
        if (gen)
            ++*gen;
    }
    if (op->rp__priv.kind == RP_OP_CANCEL) {
        struct rp_op *target = op->rp__priv.addr;
        if (target->rp__priv.kind == RP_OP_SEND ||
            target->rp__priv.kind == RP_OP_RECV_MULTI)
            target->rp__priv.where = 1;
        if (target->rp__priv.parked) {
            uring_cancel_parked(u, -1, target);
            uring_ready_push(u, op, 0);
            return 0;
        }
    }
    if (op->rp__priv.kind == RP_OP_SEND && op->rp__priv.total == 0) {
        uring_ready_push(u, op, 0);
        return 0;
    }
    if (op->rp__priv.kind == RP_OP_CLOSE &&
        io_uring_sq_space_left(&u->ring) < 2) {
        uring_flush(u);
        if (io_uring_sq_space_left(&u->ring) < 2)
            return -EAGAIN;
    }

    struct io_uring_sqe *sqe = uring_sqe(u);
    if (!sqe)
        return -EAGAIN;
    switch (op->rp__priv.kind) {
    case RP_OP_ACCEPT:
        io_uring_prep_accept(sqe, fd, op->rp__priv.addr, op->rp__priv.addrlen,
                             SOCK_CLOEXEC | SOCK_NONBLOCK);
        break;
    case RP_OP_CONNECT:
        io_uring_prep_connect(sqe, fd, op->rp__priv.addr,
                              (socklen_t)op->rp__priv.arg);
        break;
    case RP_OP_RECV:
        io_uring_prep_recvmsg(sqe, fd, &op->rp__priv.msg, 0);
        break;
    case RP_OP_SEND:
        io_uring_prep_sendmsg(sqe, fd, &op->rp__priv.msg,
                              MSG_NOSIGNAL | MSG_WAITALL);
        uring_send_mark(u, op);
        break;
    case RP_OP_SHUTDOWN:
        io_uring_prep_shutdown(sqe, fd, op->rp__priv.arg);
        break;
    case RP_OP_CLOSE: {
        /* Cancel everything on the fd, then close, in order whatever the
           cancel's result (a hard link survives a failed link member). */
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(sqe, TAG_IGNORE);
        sqe->flags |= IOSQE_IO_HARDLINK;
        uring_cancel_parked(u, fd, NULL);
        sqe = io_uring_get_sqe(&u->ring);
        assert(sqe); /* space for two was made above */
        io_uring_prep_close(sqe, fd);
        break;
    }
    case RP_OP_CLOSE_IDLE:
        /* Nothing pending on the fd (the caller's word): no cancel, which
           would walk every pending poll request of the ring to find none. */
        io_uring_prep_close(sqe, fd);
        break;
    case RP_OP_CANCEL:
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op->rp__priv.addr, 0);
        break;
    case RP_OP_CANCEL_FD:
        op->rp__priv.done = (uint64_t)uring_cancel_parked(u, fd, NULL);
        io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
        break;
    case RP_OP_TIMER:
        io_uring_prep_timeout(
            sqe, (struct __kernel_timespec *)&op->rp__priv.ts_sec, 0, 0);
        break;
    case RP_OP_NOP: io_uring_prep_nop(sqe); break;
    case RP_OP_RECV_MULTI: uring_prep_multishot(sqe, op); break;
    default:
        RP_PANIC("uring: op kind %d cannot be submitted", op->rp__priv.kind);
    }
    if (op->rp__priv.kind != RP_OP_RECV_MULTI)
        io_uring_sqe_set_data(sqe, op);
    if (!u->base.p.owned)
        uring_flush(u);
    return 0;
}

static void uring_buffers_add(struct rp_buffers *bufs, uint32_t from,
                              uint32_t n)
{
    struct io_uring_buf_ring *br = bufs->ring;
    int mask = io_uring_buf_ring_mask(bufs->count);
    for (uint32_t i = 0; i < n; i++)
        io_uring_buf_ring_add(br, bufs->data + (size_t)(from + i) * bufs->size,
                              bufs->size, (unsigned short)(from + i), mask,
                              (int)i);
    io_uring_buf_ring_advance(br, (int)n);
}

/* Doubles the buffers in the ring, up to the group's count. */
static void uring_buffers_grow(struct uring_backend *u, struct rp_buffers *b)
{
    uint32_t n = b->count - b->provided;
    if (n > b->provided)
        n = b->provided;
    if (n == 0)
        return;
    uring_buffers_add(b, b->provided, n);
    b->provided += n;
    rp__stat_add(&u->base.p, &u->base.p.stats->buffers_provided, n);
}

/* Re-arms a multishot whose kernel request ended without a final result,
   or ends it with -ECANCELED if it was cancelled meanwhile: the kernel
   could not see it when the cancel went in, so nothing else will. */
static void uring_rearm_multishot(struct uring_backend *u, struct rp_op *op)
{
    if (op_was_cancelled(u, op)) {
        u->base.p.complete(u->base.p.ctx, op, -ECANCELED, 0);
        return;
    }
    rp__stat_add(&u->base.p, &u->base.p.stats->recv_rearms, 1);
    struct io_uring_sqe *sqe = uring_sqe(u);
    if (!sqe) {
        /* Cannot happen short of a kernel refusing every submit: end the
           op rather than lose it. */
        u->base.p.complete(u->base.p.ctx, op, -EAGAIN, 0);
        return;
    }
    uring_prep_multishot(sqe, op);
}

static void uring_on_multishot(struct uring_backend *u, struct rp_op *op,
                               int32_t res, uint32_t cflags)
{
    const struct rp__backend_params *p = &u->base.p;
    if (res > 0) {
        uint32_t flags = RP_COMP_BUFFER | RP_COMP_MORE |
                         ((cflags >> IORING_CQE_BUFFER_SHIFT) << 16);
        struct rp_buffers *b = op->rp__priv.buffers;
        if (++b->held > p->stats->buffers_out_max)
            __atomic_store_n(&p->stats->buffers_out_max, b->held,
                             __ATOMIC_RELAXED);
        p->complete(p->ctx, op, res, flags);
        if (!(cflags & IORING_CQE_F_MORE))
            uring_rearm_multishot(u, op);
        return;
    }
    if (res == -ENOBUFS) {
        struct rp_buffers *b = op->rp__priv.buffers;
        rp__stat_add(p, &p->stats->recv_nobufs, 1);
        uring_buffers_grow(u, b);
        if (op_was_cancelled(u, op)) {
            uring_rearm_multishot(u, op); /* ends it: -ECANCELED */
            return;
        }
        /* Owned: the next reap re-arms it, if the ring has a buffer by
           then (uring_unpark). Shared: the ring was empty when the kernel
           looked, but buffers may have been recycled since (CQEs are
           reaped in order, so every buffer the kernel took before this
           one is already counted in 'held'): parking then would wait for
           a recycle that may never come. */
        if (!p->owned && b->held < b->provided) {
            uring_rearm_multishot(u, op);
            return;
        }
        parked_push(b, op);
        return;
    }
    if (cflags & IORING_CQE_F_MORE)
        return; /* not expected: an error that keeps the multishot armed */
    p->complete(p->ctx, op, res, 0);
}

static void uring_on_cqe(struct uring_backend *u, uint64_t data, int32_t res,
                         uint32_t cflags)
{
    const struct rp__backend_params *p = &u->base.p;
    if (data == TAG_WAKE) {
        u->wake_armed = false;
        rp__stat_add(p, &p->stats->wakeups, 1);
        uring_arm_wake(u);
        return;
    }
    if (data == TAG_IGNORE)
        return;
    struct rp_op *op = (struct rp_op *)(uintptr_t)data;
    switch (op->rp__priv.kind) {
    case RP_OP_SEND:
        /* Owned rings only: a shared ring's submit enters at once, beside
           a dispatcher already asleep in its own enter. */
        if (p->owned && uring_enters(u) - (uint32_t)op->rp__priv.arg > 1)
            rp__stat_add(p, &p->stats->sends_late, 1);
        if (res > 0) {
            op->rp__priv.done += (uint64_t)res;
            if (op->rp__priv.done < op->rp__priv.total &&
                op_was_cancelled(u, op)) {
                res = -ECANCELED;
            } else if (op->rp__priv.done < op->rp__priv.total) {
                rp__msg_advance(&op->rp__priv.msg, (size_t)res);
                struct io_uring_sqe *sqe = uring_sqe(u);
                if (sqe) {
                    io_uring_prep_sendmsg(sqe, op->rp__priv.fd,
                                          &op->rp__priv.msg,
                                          MSG_NOSIGNAL | MSG_WAITALL);
                    io_uring_sqe_set_data(sqe, op);
                    uring_send_mark(u, op);
                    rp__stat_add(p, &p->stats->sends_short, 1);
                    return;
                }
                res = -EAGAIN;
            } else {
                res = (int32_t)op->rp__priv.done;
            }
        }
        p->complete(p->ctx, op, res, 0);
        return;
    case RP_OP_RECV_MULTI: uring_on_multishot(u, op, res, cflags); return;
    case RP_OP_CANCEL_FD:
        if (res == -ENOENT)
            res = 0;
        if (res >= 0)
            res += (int32_t)op->rp__priv.done;
        p->complete(p->ctx, op, res, 0);
        return;
    default: p->complete(p->ctx, op, res, 0); return;
    }
}

/* Dispatches everything ready: local completions, then the CQ, flushing
   the kernel's overflow list whenever it holds completions. One CQE at a
   time so a handler may submit (and even re-enter this) safely. */
static void uring_process(struct uring_backend *u)
{
    const struct rp__backend_params *p = &u->base.p;
    for (;;) {
        while (u->ready_head) {
            struct rp_op *op = u->ready_head;
            u->ready_head = op->rp__priv.next;
            if (!u->ready_head)
                u->ready_tail = NULL;
            p->complete(p->ctx, op, op->rp__priv.result, 0);
        }
        unsigned head;
        struct io_uring_cqe *cqe;
        bool any = false;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            uint64_t data = cqe->user_data;
            int32_t res = cqe->res;
            uint32_t flags = cqe->flags;
            io_uring_cq_advance(&u->ring, 1);
            uring_on_cqe(u, data, res, flags);
            any = true;
            break;
        }
        if (any)
            continue;
        if (io_uring_cq_has_overflow(&u->ring)) {
            rp__stat_add(p, &p->stats->overflows, 1);
            io_uring_get_events(&u->ring);
            uring_count_enter(u);
            continue;
        }
        if (!u->ready_head)
            return;
    }
}

/* Owned rings, before each wait: re-arms parked receives, one per buffer
   the ring holds (provided - held; some of those may already be taken by
   completions not yet reaped, so a re-armed op can park again). Every
   wait is preceded by this, so no op stays parked while the ring has a
   buffer. A parked op cancelled meanwhile was already taken off the list
   by the cancel (uring_cancel_parked). */
static void uring_unpark(struct uring_backend *u)
{
    for (struct rp_buffers *b = u->buffers; b; b = b->be_next) {
        uint32_t room = b->provided - b->held;
        while (b->parked && room-- > 0) {
            struct rp_op *op = parked_pop(b);
            if (op_was_cancelled(u, op))
                uring_ready_push(u, op, -ECANCELED);
            else
                uring_rearm_multishot(u, op);
        }
    }
}

static int uring_reap(struct rp__backend *be, int64_t timeout_ns)
{
    struct uring_backend *u = to_uring(be);
    const struct rp__backend_params *p = &be->p;
    struct __kernel_timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    uint64_t before = __atomic_load_n(&p->stats->completed, __ATOMIC_RELAXED);
    bool waited = false;
    unsigned want = 1;
    if (p->owned) {
        uring_arm_wake(u);
        uring_unpark(u);
        if (u->ready_head || io_uring_cq_ready(&u->ring)) {
            if (io_uring_sq_ready(&u->ring))
                uring_flush(u);
        } else if (timeout_ns == 0) {
            io_uring_submit_and_get_events(&u->ring);
            uring_count_enter(u);
        } else {
            /*
             * Wait moderation. Under load the first completion to arrive
             * would end the wait and the loop would turn (and enter the
             * kernel) for a handful of messages; after a busy batch the
             * wait asks for the sends it submits (most complete inline)
             * plus half the last batch, but for MODERATE_NS at most, so a
             * lull costs at most that much latency. After a small batch
             * (a quiet or single-connection loop) it returns at the first
             * completion, as a plain wait does.
             */
            if (u->moderate && u->last_batch >= MODERATE_MIN &&
                (timeout_ns < 0 || timeout_ns > MODERATE_NS)) {
                unsigned more = u->last_batch / 2;
                want = io_uring_sq_ready(&u->ring) +
                       (more < MODERATE_MAX ? more : MODERATE_MAX);
                ts.tv_sec = 0;
                ts.tv_nsec = MODERATE_NS;
                tsp = &ts;
            }
            struct io_uring_cqe *cqe;
            int r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, want, tsp,
                                                     NULL);
            uring_count_enter(u);
            waited = true;
            if (r == -EBUSY)
                io_uring_get_events(&u->ring);
        }
        uring_process(u);
    } else {
        if (!io_uring_cq_ready(&u->ring) && timeout_ns != 0) {
            struct io_uring_cqe *cqe;
            if (tsp)
                io_uring_wait_cqe_timeout(&u->ring, &cqe, tsp);
            else
                io_uring_wait_cqe(&u->ring, &cqe);
            uring_count_enter(u);
            waited = true;
        }
        pthread_mutex_lock(p->lock);
        uring_process(u);
        if (io_uring_sq_ready(&u->ring))
            uring_flush(u);
        pthread_mutex_unlock(p->lock);
    }
    uint64_t after = __atomic_load_n(&p->stats->completed, __ATOMIC_RELAXED);
    u->last_batch = (uint32_t)(after - before);
    if (waited) {
        rp__stat_add(p, &p->stats->waits, 1);
        if (after == before)
            rp__stat_add(p, &p->stats->waits_empty, 1);
        else if (want > 1 && after - before < want)
            rp__stat_add(p, &p->stats->waits_short, 1);
    }
    return (int)(after - before);
}

static void uring_wake(struct rp__backend *be)
{
    struct uring_backend *u = to_uring(be);
    uint64_t one = 1;
    ssize_t w = write(u->wake_fd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is already non-zero, a wake is due */
}

static int uring_create(const struct rp__backend_params *p,
                        struct rp__backend **out)
{
    struct uring_backend *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->base.ops = &rp__uring_ops;
    u->base.p = *p;
    const char *no_mod = getenv("RINGPORT_BENCH_NO_MODERATE");
    u->moderate = !(no_mod && *no_mod && *no_mod != '0');
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = p->cq_entries;
    if (p->owned)
        params.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int r = io_uring_queue_init_params(p->sq_entries, &u->ring, &params);
    if (r == -EINVAL && p->owned) {
        memset(&params, 0, sizeof params);
        params.flags = IORING_SETUP_CQSIZE;
        params.cq_entries = p->cq_entries;
        r = io_uring_queue_init_params(p->sq_entries, &u->ring, &params);
    }
    if (r < 0)
        goto fail_ring;
    if (!(params.features & IORING_FEAT_EXT_ARG) ||
        !(params.features & IORING_FEAT_NODROP)) {
        r = -ENOSYS; /* a kernel this old lacks the ops we use as well */
        goto fail_features;
    }
    u->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (u->wake_fd < 0) {
        r = -errno;
        goto fail_features;
    }
    uring_arm_wake(u);
    if (!p->owned)
        uring_flush(u);
    *out = &u->base;
    return 0;

fail_features:
    io_uring_queue_exit(&u->ring);
fail_ring:
    free(u);
    return r;
}

static void uring_destroy(struct rp__backend *be)
{
    struct uring_backend *u = to_uring(be);
    io_uring_queue_exit(&u->ring);
    close(u->wake_fd);
    free(u->fd_gen);
    free(u);
}

static int uring_buffers_init(struct rp__backend *be, struct rp_buffers *bufs)
{
    struct uring_backend *u = to_uring(be);
    size_t bytes = bufs->count * sizeof(struct io_uring_buf);
    long page = sysconf(_SC_PAGESIZE);
    bytes = (bytes + (size_t)page - 1) & ~((size_t)page - 1);
    void *ring = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (ring == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)ring;
    reg.ring_entries = bufs->count;
    reg.bgid = bufs->group;
    int r = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (r < 0) {
        munmap(ring, bytes);
        return r;
    }
    io_uring_buf_ring_init(ring);
    bufs->ring = ring;
    bufs->ring_bytes = bytes;
    bufs->provided = bufs->count < BUFS_START ? bufs->count : BUFS_START;
    uring_buffers_add(bufs, 0, bufs->provided);
    rp__stat_add(&u->base.p, &u->base.p.stats->buffers_provided,
                 bufs->provided);
    bufs->be_next = u->buffers;
    u->buffers = bufs;
    return 0;
}

static void uring_buffers_fini(struct rp__backend *be, struct rp_buffers *bufs)
{
    struct uring_backend *u = to_uring(be);
    rp__stat_add(&u->base.p, &u->base.p.stats->buffers_provided,
                 -(uint64_t)bufs->provided);
    io_uring_unregister_buf_ring(&u->ring, bufs->group);
    munmap(bufs->ring, bufs->ring_bytes);
    for (struct rp_buffers **pp = &u->buffers; *pp; pp = &(*pp)->be_next) {
        if (*pp == bufs) {
            *pp = bufs->be_next;
            break;
        }
    }
}

static void uring_buffer_recycle(struct rp__backend *be,
                                 struct rp_buffers *bufs, uint16_t id)
{
    struct uring_backend *u = to_uring(be);
    struct io_uring_buf_ring *br = bufs->ring;
    io_uring_buf_ring_add(br, bufs->data + (size_t)id * bufs->size, bufs->size,
                          id, io_uring_buf_ring_mask(bufs->count), 0);
    io_uring_buf_ring_advance(br, 1);
    bufs->held--;
    /* Owned: the next reap re-arms parked ops (uring_unpark), as many as
       the ring then holds. Shared: no reap may come (its dispatcher
       sleeps), so every parked op is re-armed now. */
    if (!bufs->parked || be->p.owned)
        return;
    while (bufs->parked)
        uring_rearm_multishot(u, parked_pop(bufs));
    uring_flush(u);
}

const struct rp__backend_ops rp__uring_ops = {
    .kind = RP_BACKEND_URING,
    .create = uring_create,
    .destroy = uring_destroy,
    .submit = uring_submit,
    .reap = uring_reap,
    .wake = uring_wake,
    .buffers_init = uring_buffers_init,
    .buffers_fini = uring_buffers_fini,
    .buffer_recycle = uring_buffer_recycle,
};
