/*
 * Completion routines (model 2): each thread has an APC queue, an MPSC
 * queue in thread-local storage. The dispatcher (shared port) or the owner
 * (owned port) pushes a completed routine op to the queue of the thread
 * that submitted it; that thread runs it only inside
 * rp_port_alertable_wait(), never anywhere else (SleepEx(TRUE) semantics).
 *
 * Waking: a thread parks only after it set 'sleeping' and saw its queue
 * empty; a pusher wakes it only if it saw 'sleeping' after its push (both
 * sides fence, so one of them sees the other). A thread that owns a port
 * parks inside the port's pump, so it is woken through the port.
 */
#include "core/clock.h"
#include "port/port_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(sizeof(void *) == sizeof(struct rp_mpsc_node),
               "rp_op's link must hold an MPSC node");

static _Thread_local struct rp__apc_ctx apc_self;

struct rp__apc_ctx *rp__apc_self(void)
{
    if (!apc_self.ready) {
        rp_mpsc_init(&apc_self.queue);
        apc_self.ready = true;
    }
    return &apc_self;
}

void rp__apc_queue(struct rp__apc_ctx *ctx, struct rp_op *op)
{
    rp_mpsc_push(&ctx->queue, rp__op_node(op));
    if (ctx == &apc_self)
        return; /* our own thread: it will look before it sleeps */
    atomic_thread_fence(memory_order_seq_cst);
    if (!__atomic_load_n(&ctx->sleeping, __ATOMIC_SEQ_CST))
        return;
    if (ctx->owned) {
        rp__port_wake(ctx->owned);
    } else {
        __atomic_fetch_add(&ctx->futex, 1, __ATOMIC_SEQ_CST);
        syscall(SYS_futex, &ctx->futex, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

static int apc_run(struct rp__apc_ctx *ctx)
{
    int n = 0;
    struct rp_mpsc_node *node;
    while ((node = rp_mpsc_pop(&ctx->queue)) != NULL) {
        struct rp_op *op = rp__node_op(node);
        rp_op_routine routine = op->routine;
        routine(op, op->rp__priv.result, op->rp__priv.result_flags);
        n++;
    }
    return n;
}

static void apc_park(struct rp__apc_ctx *ctx, int64_t ns)
{
    uint32_t seen = __atomic_load_n(&ctx->futex, __ATOMIC_SEQ_CST);
    if (!rp_mpsc_empty(&ctx->queue))
        return;
    struct timespec ts = rp_timespec_from_ns(ns);
    syscall(SYS_futex, &ctx->futex, FUTEX_WAIT_PRIVATE, seen,
            ns < 0 ? NULL : &ts, NULL, 0);
}

int rp_port_alertable_wait(int timeout_ms)
{
    struct rp__apc_ctx *ctx = rp__apc_self();
    int64_t deadline = rp_deadline_after_ms(timeout_ms);
    for (;;) {
        int n = apc_run(ctx);
        if (n > 0)
            return n;
        int64_t left = rp__ns_left(deadline, rp_clock_ns());
        if (left == 0)
            return 0;
        __atomic_store_n(&ctx->sleeping, 1, __ATOMIC_SEQ_CST);
        atomic_thread_fence(memory_order_seq_cst);
        if (ctx->owned) {
            /* Completions of our own port land in our queue from the
               pump; a routine queued by another thread wakes the port. */
            rp__port_pump(ctx->owned, rp_mpsc_empty(&ctx->queue) ? left : 0);
        } else {
            apc_park(ctx, left);
        }
        __atomic_store_n(&ctx->sleeping, 0, __ATOMIC_SEQ_CST);
    }
}
