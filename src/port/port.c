/*
 * rp_port: submission, dispatch by notification model, and the waits.
 *
 * Every completion the backend reports comes through port_complete(),
 * which hands it to its model: store + set the event (1), queue to the
 * submitting thread's APC queue (2), or append to the port's completion
 * queue (3). In shared mode port_complete runs on the dispatcher thread
 * (or a submitter holding the backend lock) and the queue is a mutex +
 * condvar; in owned mode it runs on the owner inside its waits and the
 * queue is a plain list.
 *
 * Posts into an owned port from other threads go through an MPSC queue
 * that the owner drains on every pump; the poster wakes the owner only
 * when the owner announced it is parking ('sleeping'), so a busy owner
 * costs posters no system call.
 */
#include "core/assert.h"
#include "core/clock.h"
#include "core/cpu.h"
#include "port/port_internal.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/*
 * struct rp_op is embedded in programs' own structs, so its size, its
 * alignment and the places of its caller-set members are ABI
 * (docs/architecture.md, "ABI"): a program built against an older header
 * must find them where it left them. The engine's state may change freely
 * inside the reserved area, but must fit it.
 */
static_assert(sizeof(struct rp__op_priv) <=
                  sizeof(((struct rp_op *)0)->rp__reserved),
              "rp_op: the engine's state outgrew RP_OP_RESERVED_WORDS");
static_assert(offsetof(struct rp_op, key) == 0 &&
                  offsetof(struct rp_op, event) == sizeof(uint64_t) &&
                  offsetof(struct rp_op, routine) ==
                      sizeof(uint64_t) + sizeof(void *),
              "rp_op: a caller-set member moved");
static_assert(sizeof(void *) != 8 ||
                  (sizeof(struct rp_op) == 256 && alignof(struct rp_op) == 8),
              "rp_op: its size or alignment changed (an ABI break)");

#define DEFAULT_SQ_ENTRIES 256
#define MAX_BUFFERS 32768

static void stat_add(struct rp_port *p, uint64_t *counter, uint64_t n)
{
    if (p->owned)
        *counter += n;
    else
        __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

bool rp__port_is_owner(const struct rp_port *port)
{
    return port->owned && pthread_equal(port->owner, pthread_self());
}

void rp__port_wake(struct rp_port *port)
{
    port->be->ops->wake(port->be);
}

/* ---- the completion queue (model 3) ---------------------------------- */

static void queue_push(struct rp_port *p, struct rp__crec *rec)
{
    rec->next = NULL;
    if (!p->owned)
        pthread_mutex_lock(&p->q_lock);
    if (p->q_tail)
        p->q_tail->next = rec;
    else
        p->q_head = rec;
    p->q_tail = rec;
    if (p->owned) {
        p->q_len++;
        return;
    }
    __atomic_store_n(&p->q_len, p->q_len + 1, __ATOMIC_RELAXED);
    if (p->q_waiters)
        pthread_cond_signal(&p->q_cond);
    pthread_mutex_unlock(&p->q_lock);
}

/* Takes up to 'max' completions; the caller holds q_lock when shared. */
static size_t queue_pop(struct rp_port *p, struct rp_completion *out,
                        size_t max)
{
    size_t n = 0;
    while (n < max && p->q_head) {
        struct rp__crec *rec = p->q_head;
        p->q_head = rec->next;
        if (!p->q_head)
            p->q_tail = NULL;
        out[n].op = rec->op;
        out[n].key = rec->op->key;
        out[n].res = rec->res;
        out[n].flags = rec->flags;
        n++;
    }
    if (p->owned)
        p->q_len -= n;
    else
        __atomic_store_n(&p->q_len, p->q_len - n, __ATOMIC_RELAXED);
    return n;
}

/* ---- dispatch by model ----------------------------------------------- */

static void deliver(struct rp_port *p, struct rp_op *op, struct rp__crec *rec,
                    int32_t res, uint32_t flags)
{
    bool final = !(flags & RP_COMP_MORE);
    if (op->event) {
        /* COMPLETING until the event is set: once DONE is seen the caller
           may free the event, so DONE comes last. */
        struct rp_event *ev = op->event;
        op->rp__priv.result = res;
        op->rp__priv.result_flags = flags;
        rp__op_set_state(op, RP_OP_COMPLETING);
        rp_event_set(ev);
        if (final)
            rp__op_set_state(op, RP_OP_DONE);
    } else if (op->routine) {
        struct rp__apc_ctx *ctx = op->rp__priv.thread;
        op->rp__priv.result = res;
        op->rp__priv.result_flags = flags;
        if (final)
            rp__op_set_state(op, RP_OP_DONE);
        rp__apc_queue(ctx, op);
    } else {
        rec->op = op;
        rec->res = res;
        rec->flags = flags;
        if (final)
            rp__op_set_state(op, RP_OP_DONE);
        queue_push(p, rec);
    }
}

static void port_complete(void *ctx, struct rp_op *op, int32_t res,
                          uint32_t flags)
{
    struct rp_port *p = ctx;
    stat_add(p, &p->stats.completed, 1);
    struct rp__crec *rec = &op->rp__priv.rec;
    if (flags & RP_COMP_BUFFER)
        rec = &op->rp__priv.buffers->recs[rp_comp_buffer_id(flags)];
    deliver(p, op, rec, res, flags);
}

static int drain_posts(struct rp_port *p)
{
    int n = 0;
    struct rp_mpsc_node *node;
    while ((node = rp_mpsc_pop(&p->posts)) != NULL) {
        struct rp_op *op = rp__node_op(node);
        stat_add(p, &p->stats.completed, 1);
        deliver(p, op, &op->rp__priv.rec, op->rp__priv.result, 0);
        n++;
    }
    return n;
}

void rp__port_pump(struct rp_port *p, int64_t timeout_ns)
{
    RP_ASSERT_THREAD(p); /* owned ports only: the owner pumps */
    /* Something delivered now is what the caller waits for: do not sleep
       on top of it. */
    if (drain_posts(p) > 0)
        timeout_ns = 0;
    if (timeout_ns != 0) {
        __atomic_store_n(&p->sleeping, 1, __ATOMIC_SEQ_CST);
        atomic_thread_fence(memory_order_seq_cst);
        if (!rp_mpsc_empty(&p->posts))
            timeout_ns = 0;
    }
    p->be->ops->reap(p->be, timeout_ns);
    if (timeout_ns != 0)
        __atomic_store_n(&p->sleeping, 0, __ATOMIC_RELAXED);
    drain_posts(p);
}

/* ---- life cycle ------------------------------------------------------- */

static void *dispatcher_main(void *arg)
{
    struct rp_port *p = arg;
    rp_log_set_thread_name("rp-port");
    while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
        p->be->ops->reap(p->be, -1);
    return NULL;
}

int rp_port_create(const struct rp_port_config *cfg, struct rp_port **out)
{
    struct rp_port_config def;
    if (!cfg) {
        memset(&def, 0, sizeof def);
        cfg = &def;
    }
    if (cfg->flags & ~RP_PORT_OWNED)
        return -EINVAL;
    uint32_t sq = cfg->sq_entries ? cfg->sq_entries : DEFAULT_SQ_ENTRIES;
    uint32_t cq = cfg->cq_entries ? cfg->cq_entries : sq * 8;
    if (cq < sq)
        cq = sq;

    size_t size = (sizeof(struct rp_port) + 63) & ~(size_t)63;
    struct rp_port *p = aligned_alloc(64, size);
    if (!p)
        return -ENOMEM;
    memset(p, 0, sizeof *p);
    p->owned = cfg->flags & RP_PORT_OWNED;
    p->spin_us = cfg->spin_us;
    p->owner = pthread_self();
    rp_mpsc_init(&p->posts);
    pthread_mutex_init(&p->be_lock, NULL);
    pthread_mutex_init(&p->q_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->q_cond, &ca);
    pthread_condattr_destroy(&ca);

    struct rp__backend_params params = {
        .sq_entries = sq,
        .cq_entries = cq,
        .owned = p->owned,
        .lock = p->owned ? NULL : &p->be_lock,
        .complete = port_complete,
        .ctx = p,
        .stats = &p->stats,
    };
    int r = rp__backend_select(cfg->backend, &params, &p->be);
    if (r < 0)
        goto fail_backend;
    p->kind = p->be->ops->kind;
    if (p->owned) {
        struct rp__apc_ctx *ctx = rp__apc_self();
        if (!ctx->owned)
            ctx->owned = p;
    } else {
        r = -pthread_create(&p->dispatcher, NULL, dispatcher_main, p);
        if (r < 0)
            goto fail_thread;
    }
    RP_DEBUG("port", "%s port on %s", p->owned ? "owned" : "shared",
             rp_backend_name(p->kind));
    *out = p;
    return 0;

fail_thread:
    p->be->ops->destroy(p->be);
fail_backend:
    pthread_cond_destroy(&p->q_cond);
    pthread_mutex_destroy(&p->q_lock);
    pthread_mutex_destroy(&p->be_lock);
    free(p);
    return r;
}

void rp_port_destroy(struct rp_port *p)
{
    if (!p)
        return;
    if (p->owned) {
        RP_ASSERT_THREAD(p); /* Thread: the owner */
        struct rp__apc_ctx *ctx = rp__apc_self();
        if (ctx->owned == p)
            ctx->owned = NULL;
    } else {
        __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
        p->be->ops->wake(p->be);
        pthread_join(p->dispatcher, NULL);
    }
    while (p->buffers) {
        struct rp_buffers *b = p->buffers;
        p->buffers = b->next;
        p->be->ops->buffers_fini(p->be, b);
        free(b->recs);
        free(b->data);
        free(b);
    }
    p->be->ops->destroy(p->be);
    pthread_cond_destroy(&p->q_cond);
    pthread_mutex_destroy(&p->q_lock);
    pthread_mutex_destroy(&p->be_lock);
    free(p);
}

enum rp_backend_kind rp_port_backend(const struct rp_port *port)
{
    return port->kind;
}

void rp_port_get_stats(struct rp_port *p, struct rp_port_stats *out)
{
    uint64_t *src = (uint64_t *)&p->stats;
    uint64_t *dst = (uint64_t *)out;
    for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/* ---- operations ------------------------------------------------------- */

void rp_op_init(struct rp_op *op)
{
    memset(op, 0, sizeof *op);
    op->rp__priv.fd = -1;
}

static int op_begin(struct rp_port *p, struct rp_op *op, int kind, int fd)
{
    if (p->owned && !rp__port_is_owner(p))
        return -EPERM;
    if (rp__op_state(op) == RP_OP_PENDING)
        return -EBUSY;
    op->rp__priv.port = p;
    op->rp__priv.kind = (uint8_t)kind;
    op->rp__priv.fd = fd;
    op->rp__priv.parked = 0;
    op->rp__priv.where = 0;
    op->rp__priv.done = 0;
    op->rp__priv.total = 0;
    if (op->routine && !op->event)
        op->rp__priv.thread = rp__apc_self();
    return 0;
}

static int op_submit(struct rp_port *p, struct rp_op *op)
{
    rp__op_set_state(op, RP_OP_PENDING);
    if (!p->owned)
        pthread_mutex_lock(&p->be_lock);
    int r = p->be->ops->submit(p->be, op);
    if (!p->owned)
        pthread_mutex_unlock(&p->be_lock);
    if (r < 0) {
        rp__op_set_state(op, RP_OP_IDLE);
        return r;
    }
    stat_add(p, &p->stats.submitted, 1);
    return 0;
}

int rp_port_accept(struct rp_port *port, struct rp_op *op, int listen_fd,
                   struct sockaddr *addr, socklen_t *addrlen)
{
    int r = op_begin(port, op, RP_OP_ACCEPT, listen_fd);
    if (r < 0)
        return r;
    op->rp__priv.addr = addr;
    op->rp__priv.addrlen = addrlen;
    return op_submit(port, op);
}

int rp_port_connect(struct rp_port *port, struct rp_op *op, int fd,
                    const struct sockaddr *addr, socklen_t addrlen)
{
    int r = op_begin(port, op, RP_OP_CONNECT, fd);
    if (r < 0)
        return r;
    op->rp__priv.addr = (void *)(uintptr_t)addr;
    op->rp__priv.arg = (int)addrlen;
    return op_submit(port, op);
}

static int op_msg(struct rp_port *port, struct rp_op *op, int kind, int fd,
                  struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && !iov))
        return -EINVAL;
    int r = op_begin(port, op, kind, fd);
    if (r < 0)
        return r;
    memset(&op->rp__priv.msg, 0, sizeof op->rp__priv.msg);
    op->rp__priv.msg.msg_iov = iov;
    op->rp__priv.msg.msg_iovlen = (size_t)iovcnt;
    uint64_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total > INT32_MAX)
        return -EMSGSIZE; /* res could not report it */
    op->rp__priv.total = total;
    return op_submit(port, op);
}

int rp_port_recv(struct rp_port *port, struct rp_op *op, int fd,
                 struct iovec *iov, int iovcnt)
{
    return op_msg(port, op, RP_OP_RECV, fd, iov, iovcnt);
}

int rp_port_send(struct rp_port *port, struct rp_op *op, int fd,
                 struct iovec *iov, int iovcnt)
{
    return op_msg(port, op, RP_OP_SEND, fd, iov, iovcnt);
}

int rp_port_shutdown(struct rp_port *port, struct rp_op *op, int fd, int how)
{
    int r = op_begin(port, op, RP_OP_SHUTDOWN, fd);
    if (r < 0)
        return r;
    op->rp__priv.arg = how;
    return op_submit(port, op);
}

int rp_port_close(struct rp_port *port, struct rp_op *op, int fd)
{
    int r = op_begin(port, op, RP_OP_CLOSE, fd);
    return r < 0 ? r : op_submit(port, op);
}

int rp_port_close_idle(struct rp_port *port, struct rp_op *op, int fd)
{
    int r = op_begin(port, op, RP_OP_CLOSE_IDLE, fd);
    return r < 0 ? r : op_submit(port, op);
}

int rp_port_cancel(struct rp_port *port, struct rp_op *op, struct rp_op *target)
{
    if (!target || target == op)
        return -EINVAL;
    int r = op_begin(port, op, RP_OP_CANCEL, -1);
    if (r < 0)
        return r;
    op->rp__priv.addr = target;
    return op_submit(port, op);
}

int rp_port_cancel_fd(struct rp_port *port, struct rp_op *op, int fd)
{
    int r = op_begin(port, op, RP_OP_CANCEL_FD, fd);
    return r < 0 ? r : op_submit(port, op);
}

int rp_port_timer(struct rp_port *port, struct rp_op *op, uint64_t timeout_ns)
{
    int r = op_begin(port, op, RP_OP_TIMER, -1);
    if (r < 0)
        return r;
    op->rp__priv.ts_sec = (int64_t)(timeout_ns / RP_NS_PER_SEC);
    op->rp__priv.ts_nsec = (long long)(timeout_ns % RP_NS_PER_SEC);
    return op_submit(port, op);
}

int rp_port_nop(struct rp_port *port, struct rp_op *op)
{
    int r = op_begin(port, op, RP_OP_NOP, -1);
    return r < 0 ? r : op_submit(port, op);
}

int rp_port_post(struct rp_port *p, struct rp_op *op, int32_t res)
{
    if (rp__op_state(op) == RP_OP_PENDING)
        return -EBUSY;
    op->rp__priv.port = p;
    op->rp__priv.kind = RP_OP_POST;
    if (op->routine && !op->event)
        op->rp__priv.thread = rp__apc_self();
    rp__op_set_state(op, RP_OP_PENDING);
    /* Any thread posts, also into an owned port: always atomic. */
    __atomic_fetch_add(&p->stats.posted, 1, __ATOMIC_RELAXED);
    if (!p->owned || rp__port_is_owner(p)) {
        stat_add(p, &p->stats.completed, 1);
        deliver(p, op, &op->rp__priv.rec, res, 0);
        return 0;
    }
    op->rp__priv.result = res;
    rp_mpsc_push(&p->posts, rp__op_node(op));
    atomic_thread_fence(memory_order_seq_cst);
    if (__atomic_load_n(&p->sleeping, __ATOMIC_SEQ_CST))
        p->be->ops->wake(p->be);
    return 0;
}

/* ---- provided buffers and multishot receive --------------------------- */

int rp_port_buffers_create(struct rp_port *p, uint32_t count, uint32_t size,
                           struct rp_buffers **out)
{
    if (count == 0 || count > MAX_BUFFERS || (count & (count - 1)) ||
        size == 0 || size > INT32_MAX)
        return -EINVAL;
    if (p->owned && !rp__port_is_owner(p))
        return -EPERM;
    struct rp_buffers *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    int r = -ENOMEM;
    b->data = aligned_alloc(64, ((size_t)count * size + 63) & ~(size_t)63);
    b->recs = calloc(count, sizeof *b->recs);
    if (!b->data || !b->recs)
        goto fail;
    b->port = p;
    b->count = count;
    b->size = size;
    if (!p->owned)
        pthread_mutex_lock(&p->be_lock);
    b->group = p->next_group++;
    r = p->be->ops->buffers_init(p->be, b);
    if (r == 0) {
        b->next = p->buffers;
        p->buffers = b;
    }
    if (!p->owned)
        pthread_mutex_unlock(&p->be_lock);
    if (r < 0)
        goto fail;
    *out = b;
    return 0;

fail:
    free(b->recs);
    free(b->data);
    free(b);
    return r;
}

void *rp_buffers_data(struct rp_buffers *bufs, uint16_t id)
{
    assert(id < bufs->count);
    return bufs->data + (size_t)id * bufs->size;
}

uint32_t rp_buffers_size(const struct rp_buffers *bufs)
{
    return bufs->size;
}

void rp_port_buffer_recycle(struct rp_buffers *bufs, uint16_t id)
{
    struct rp_port *p = bufs->port;
    assert(id < bufs->count);
    /* Thread: the owner of an owned port (there is no error to return:
       a recycle from elsewhere would race the owner's backend). */
    if (p->owned)
        RP_ASSERT_THREAD(p);
    if (!p->owned)
        pthread_mutex_lock(&p->be_lock);
    p->be->ops->buffer_recycle(p->be, bufs, id);
    if (!p->owned)
        pthread_mutex_unlock(&p->be_lock);
}

int rp_port_recv_multishot(struct rp_port *port, struct rp_op *op, int fd,
                           struct rp_buffers *bufs)
{
    if (op->event || op->routine || !bufs || bufs->port != port)
        return -EINVAL;
    int r = op_begin(port, op, RP_OP_RECV_MULTI, fd);
    if (r < 0)
        return r;
    op->rp__priv.buffers = bufs;
    return op_submit(port, op);
}

/* ---- waits ------------------------------------------------------------ */

static int get_owned(struct rp_port *p, struct rp_completion *out, size_t max,
                     int timeout_ms)
{
    if (!rp__port_is_owner(p))
        return -EPERM;
    int64_t deadline = rp_deadline_after_ms(timeout_ms);
    int64_t spin_until = 0;
    for (;;) {
        size_t n = queue_pop(p, out, max);
        if (n > 0)
            return (int)n;
        int64_t now = rp_clock_ns();
        int64_t left = rp__ns_left(deadline, now);
        if (left == 0) {
            rp__port_pump(p, 0);
            n = queue_pop(p, out, max);
            return n > 0 ? (int)n : -ETIMEDOUT;
        }
        if (p->spin_us) {
            if (spin_until == 0)
                spin_until = now + (int64_t)p->spin_us * RP_NS_PER_US;
            if (now < spin_until) {
                rp__port_pump(p, 0);
                continue;
            }
        }
        rp__port_pump(p, left);
    }
}

static int get_shared(struct rp_port *p, struct rp_completion *out, size_t max,
                      int timeout_ms)
{
    if (p->spin_us && timeout_ms != 0) {
        int64_t spin_until = rp_clock_ns() + (int64_t)p->spin_us * RP_NS_PER_US;
        while (__atomic_load_n(&p->q_len, __ATOMIC_RELAXED) == 0 &&
               rp_clock_ns() < spin_until)
            rp_cpu_relax();
    }
    struct timespec abs;
    if (timeout_ms > 0)
        abs = rp_timespec_from_ns(rp_clock_ns() +
                                  (int64_t)timeout_ms * RP_NS_PER_MS);
    pthread_mutex_lock(&p->q_lock);
    while (!p->q_head) {
        if (timeout_ms == 0)
            break;
        p->q_waiters++;
        int r = timeout_ms < 0
                    ? pthread_cond_wait(&p->q_cond, &p->q_lock)
                    : pthread_cond_timedwait(&p->q_cond, &p->q_lock, &abs);
        p->q_waiters--;
        if (r == ETIMEDOUT)
            break;
    }
    size_t n = queue_pop(p, out, max);
    /* More left than we took: pass the baton to another waiter. */
    if (p->q_head && p->q_waiters)
        pthread_cond_signal(&p->q_cond);
    pthread_mutex_unlock(&p->q_lock);
    return n > 0 ? (int)n : -ETIMEDOUT;
}

int rp_port_get_many(struct rp_port *port, struct rp_completion *out,
                     size_t max, int timeout_ms)
{
    if (max == 0)
        return -EINVAL;
    if (port->owned)
        return get_owned(port, out, max, timeout_ms);
    return get_shared(port, out, max, timeout_ms);
}

int rp_port_get(struct rp_port *port, struct rp_completion *c, int timeout_ms)
{
    int r = rp_port_get_many(port, c, 1, timeout_ms);
    return r < 0 ? r : 0;
}

int rp_op_result(struct rp_op *op, uint32_t *bytes, bool wait)
{
    if (!op->event)
        return -EINVAL;
    for (;;) {
        uint32_t state = rp__op_state(op);
        if (state == RP_OP_DONE) {
            int32_t res = op->rp__priv.result;
            if (res < 0)
                return res;
            if (bytes)
                *bytes = (uint32_t)res;
            return 0;
        }
        if (state == RP_OP_IDLE)
            return -EINVAL; /* never submitted: it would never complete */
        if (state == RP_OP_COMPLETING) {
            sched_yield(); /* one store away */
            continue;
        }
        if (!wait)
            return -EINPROGRESS;
        struct rp_port *p = op->rp__priv.port;
        if (rp__port_is_owner(p)) {
            rp__port_pump(p, -1);
        } else {
            struct pollfd pfd = {.fd = rp_event_fd(op->event),
                                 .events = POLLIN};
            /* Set by an earlier op and not reset: do not spin hot. */
            if (poll(&pfd, 1, -1) > 0 && rp__op_state(op) != RP_OP_DONE)
                sched_yield();
        }
    }
}
