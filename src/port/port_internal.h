/*
 * What port.c, apc.c and event.c share: the port object, the per-thread
 * routine (APC) queue and the owned-port pump.
 */
#ifndef RP_PORT_PORT_INTERNAL_H
#define RP_PORT_PORT_INTERNAL_H

#include "backend/backend.h"
#include "core/mpsc.h"

#include <pthread.h>
#include <ringport/port.h>

/*
 * A thread's routine queue (its APC queue). Filled from any thread, run
 * only by its thread inside rp_port_alertable_wait(). Lives in thread-local
 * storage: a thread must not exit with routine ops in flight.
 */
struct rp__apc_ctx {
    struct rp_mpsc queue;
    uint32_t sleeping;     /* atomic: the thread is (about to be) parked */
    uint32_t futex;        /* bumped by wakers of a thread without a port */
    struct rp_port *owned; /* the port this thread owns: pumped while it
                              waits, and woken instead of the futex */
    bool ready;
};

struct rp_port {
    struct rp_mpsc posts; /* owned: ops posted from other threads */
    struct rp__backend *be;
    enum rp_backend_kind kind;
    bool owned;
    uint32_t spin_us;
    pthread_t owner;         /* owned mode */
    uint32_t sleeping;       /* owned: atomic, the owner is parking */
    pthread_mutex_t be_lock; /* shared: guards the backend */
    pthread_mutex_t q_lock;  /* shared: guards the completion queue */
    pthread_cond_t q_cond;
    uint32_t q_waiters;
    struct rp__crec *q_head; /* model-3 completions, oldest first */
    struct rp__crec *q_tail;
    uint64_t q_len;       /* atomic in shared mode, for spinners */
    pthread_t dispatcher; /* shared mode */
    uint32_t stop;
    struct rp_port_stats stats;
    struct rp_buffers *buffers;
    uint16_t next_group;
};

struct rp__apc_ctx *rp__apc_self(void);
/* Queues a routine op to 'ctx' and wakes its thread if it sleeps. */
void rp__apc_queue(struct rp__apc_ctx *ctx, struct rp_op *op);

/* Owned port, owner thread: dispatches what is ready, waiting up to
   timeout_ns (< 0 forever, 0 not at all) for something to happen. */
void rp__port_pump(struct rp_port *port, int64_t timeout_ns);
bool rp__port_is_owner(const struct rp_port *port);
void rp__port_wake(struct rp_port *port);

static inline struct rp_mpsc_node *rp__op_node(struct rp_op *op)
{
    return (struct rp_mpsc_node *)(void *)&op->rp__priv.link;
}

static inline struct rp_op *rp__node_op(struct rp_mpsc_node *node)
{
    return (struct rp_op *)(void *)((char *)node -
                                    offsetof(struct rp_op, rp__priv.link));
}

/* Remaining nanoseconds to an absolute deadline (INT64_MAX: forever -> -1). */
static inline int64_t rp__ns_left(int64_t deadline, int64_t now)
{
    if (deadline == INT64_MAX)
        return -1;
    return deadline > now ? deadline - now : 0;
}

#endif
