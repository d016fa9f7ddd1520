/*
 * The backend ops table: what the port needs from io_uring (uring.c) or
 * epoll (epoll.c). The port hands the backend prepared ops; the backend
 * turns kernel results into calls of params.complete(ctx, op, res, flags),
 * exactly one per op (several, with RP_COMP_MORE, for a multishot receive).
 *
 * Locking: in shared mode params.lock guards the backend. The port holds it
 * around submit, buffers_* and recycle; reap takes it itself around
 * processing, but never while it sleeps in the kernel. complete() runs with
 * the lock held. In owned mode lock is NULL and one thread does everything
 * (wake excepted).
 */
#ifndef RP_BACKEND_BACKEND_H
#define RP_BACKEND_BACKEND_H

#include <pthread.h>
#include <ringport/port.h>
#include <stdbool.h>
#include <stdint.h>

enum rp__op_kind {
    RP_OP_NONE = 0,
    RP_OP_ACCEPT,
    RP_OP_CONNECT,
    RP_OP_RECV,
    RP_OP_SEND,
    RP_OP_SHUTDOWN,
    RP_OP_CLOSE,
    RP_OP_CANCEL,
    RP_OP_CANCEL_FD,
    RP_OP_TIMER,
    RP_OP_NOP,
    RP_OP_POST,
    RP_OP_RECV_MULTI,
    RP_OP_CLOSE_IDLE, /* close with no op pending on the fd: no cancel */
};

/* rp_op.rp__priv.state */
enum {
    RP_OP_IDLE = 0,
    RP_OP_PENDING = 1,
    RP_OP_DONE = 2,
    RP_OP_COMPLETING = 3, /* model 1: result stored, event being set */
};

typedef void (*rp__complete_fn)(void *ctx, struct rp_op *op, int32_t res,
                                uint32_t flags);

struct rp__backend_params {
    uint32_t sq_entries;
    uint32_t cq_entries;
    bool owned;
    pthread_mutex_t *lock; /* shared mode only */
    rp__complete_fn complete;
    void *ctx;
    struct rp_port_stats *stats; /* the port's counters */
};

struct rp__backend;

struct rp__backend_ops {
    enum rp_backend_kind kind;
    int (*create)(const struct rp__backend_params *p, struct rp__backend **out);
    void (*destroy)(struct rp__backend *be);
    /* Queues the op (lock held). Returns 0 or -errno (nothing queued). */
    int (*submit)(struct rp__backend *be, struct rp_op *op);
    /* Sends queued submissions, waits up to timeout_ns (< 0 forever, 0
       poll) for a completion or a wake, then dispatches everything ready.
       Returns the number of completions dispatched (0 on timeout/wake). */
    int (*reap)(struct rp__backend *be, int64_t timeout_ns);
    /* Any thread: makes a reap in progress (or the next one) return. */
    void (*wake)(struct rp__backend *be);
    int (*buffers_init)(struct rp__backend *be, struct rp_buffers *bufs);
    void (*buffers_fini)(struct rp__backend *be, struct rp_buffers *bufs);
    /* Lock held. Returns the buffer; re-arms ops parked on -ENOBUFS. */
    void (*buffer_recycle)(struct rp__backend *be, struct rp_buffers *bufs,
                           uint16_t id);
};

struct rp__backend {
    const struct rp__backend_ops *ops;
    struct rp__backend_params p;
};

/* A group of provided buffers; shared by the port and its backend. */
struct rp_buffers {
    struct rp_port *port;
    struct rp_buffers *next;    /* the port's list */
    struct rp_buffers *be_next; /* the backend's list */
    uint16_t group;             /* io_uring buffer group id */
    uint32_t count;             /* a power of two */
    uint32_t size;
    unsigned char *data;       /* count * size bytes */
    struct rp__crec *recs;     /* one queued completion per buffer */
    struct rp_op *parked;      /* multishot ops stopped by -ENOBUFS */
    struct rp_op *parked_tail; /* io_uring: the last (a FIFO there) */
    /* epoll: a stack of free buffer ids */
    uint16_t *free_ids;
    uint32_t nfree;
    /* io_uring: the provided-buffer ring */
    uint32_t held;     /* buffers handed to the caller, not yet recycled */
    uint32_t provided; /* ids [0, provided) are in use: the ring starts
                          smaller than 'count' and grows (uring.c) */
    void *ring;
    size_t ring_bytes;
};

extern const struct rp__backend_ops rp__uring_ops;
extern const struct rp__backend_ops rp__epoll_ops;

/*
 * Chooses and creates the backend: cfg 'want' if not AUTO, else
 * RINGPORT_BACKEND, else AUTO (io_uring, falling back to epoll with one log
 * line naming the reason). A forced backend that fails returns its -errno.
 */
int rp__backend_select(enum rp_backend_kind want,
                       const struct rp__backend_params *p,
                       struct rp__backend **out);

static inline void rp__stat_add(const struct rp__backend_params *p,
                                uint64_t *counter, uint64_t n)
{
    if (p->owned)
        *counter += n;
    else
        __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* Moves a msghdr's iovec past 'n' bytes already transferred (rewrites the
   caller's array: documented in port.h). */
static inline void rp__msg_advance(struct msghdr *msg, size_t n)
{
    while (n > 0 && msg->msg_iovlen > 0) {
        struct iovec *v = msg->msg_iov;
        if (n < v->iov_len) {
            v->iov_base = (char *)v->iov_base + n;
            v->iov_len -= n;
            return;
        }
        n -= v->iov_len;
        msg->msg_iov++;
        msg->msg_iovlen--;
    }
}

static inline void rp__op_set_state(struct rp_op *op, uint32_t state)
{
    __atomic_store_n(&op->rp__priv.state, state, __ATOMIC_RELEASE);
}

static inline uint32_t rp__op_state(const struct rp_op *op)
{
    return __atomic_load_n(&op->rp__priv.state, __ATOMIC_ACQUIRE);
}

#endif
