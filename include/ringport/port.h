/*
 * rp_port: the completion port. Post an I/O operation now, learn of its
 * completion later, by one of the three Windows notification models:
 *
 *   1. event    (op->event set)   the result is stored in the op and the
 *                                 event is set: rp_op_result(), like
 *                                 WSAGetOverlappedResult, and
 *                                 rp_event_wait_any(), like
 *                                 WSAWaitForMultipleEvents;
 *   2. routine  (op->routine set) the routine runs on the thread that
 *                                 submitted the op, and only while that
 *                                 thread is inside rp_port_alertable_wait()
 *                                 (SleepEx(TRUE) and its APC queue);
 *   3. port     (neither set)     the completion is queued on the port and
 *                                 pulled with rp_port_get() /
 *                                 rp_port_get_many() by one thread or many
 *                                 (GetQueuedCompletionStatus(Ex)).
 *
 * Operations never block the caller and complete asynchronously: blocking
 * vs non-blocking and synchronous vs asynchronous are different axes. Every
 * rp_port_<op>() call returns 0 when the op was submitted (ringport's
 * WSA_IO_PENDING): exactly one completion will then be delivered for it
 * (a multishot receive delivers several, the last without RP_COMP_MORE).
 * A call that returns -errno submitted nothing and never delivers a
 * completion. A completion's 'res' is what io_uring would report: bytes
 * (or a new fd for accept) when >= 0, -errno on failure.
 *
 * Two modes (rp_port_config.flags):
 *
 *   shared (default)  any thread submits (under a mutex, sent to the kernel
 *                     at once); an internal dispatcher thread named
 *                     "rp-port" reaps the backend and dispatches each
 *                     completion by its model, playing the part of the
 *                     Windows kernel. A model-3 completion therefore takes
 *                     one thread hop (dispatcher -> waiter) before
 *                     rp_port_get() returns it.
 *   RP_PORT_OWNED     one owner thread - the thread that calls
 *                     rp_port_create() - submits and reaps; no lock and no
 *                     extra thread. Submissions are batched and go to the
 *                     kernel with one system call per wait ("one submit per
 *                     loop turn"). The owner's waits (rp_port_get,
 *                     rp_port_get_many, rp_port_alertable_wait,
 *                     rp_op_result(wait) and rp_event_wait_any on that
 *                     thread) pump the port and dispatch completions inline.
 *                     Only rp_port_post() may be called from other threads;
 *                     it wakes the owner only if the owner sleeps. Create an
 *                     owned port on the thread that will own it, and destroy
 *                     it there. This is the hot path of the network server.
 *
 * Backends: io_uring, or epoll turning readiness into completions. AUTO
 * probes io_uring and falls back to epoll with one log line naming the
 * reason (seccomp EPERM, ENOSYS, memlock ENOMEM, kernel.io_uring_disabled).
 * The environment variable RINGPORT_BACKEND=auto|uring|epoll chooses when
 * rp_port_config.backend is RP_BACKEND_AUTO; an explicit config value wins
 * over the environment. Registered files are not used: they measured no
 * faster with one thread per ring on the reference machine.
 */
#ifndef RINGPORT_PORT_H
#define RINGPORT_PORT_H

#include <ringport/api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rp_port;
struct rp_event;
struct rp_buffers;
struct rp_op;

/* ---- configuration --------------------------------------------------- */

enum rp_backend_kind {
    RP_BACKEND_AUTO = 0,
    RP_BACKEND_URING = 1,
    RP_BACKEND_EPOLL = 2,
};

/* One owner thread submits and reaps; see the file comment. */
#define RP_PORT_OWNED (1u << 0)

struct rp_port_config {
    enum rp_backend_kind backend; /* AUTO: probe io_uring, else epoll */
    uint32_t flags;               /* RP_PORT_OWNED or 0 (shared) */
    uint32_t sq_entries;          /* io_uring submission queue; 0: 256 */
    uint32_t cq_entries; /* io_uring completion queue; 0: 8 * sq_entries.
                            Small values are for tests: an overflow is
                            survived and counted, never lost. */
    uint32_t spin_us;    /* a waiter polls this long before it parks in the
                            kernel; 0: park at once. ~30 us pays off when
                            completions come often (FIELD-NOTES) */
};

/* ---- completions ----------------------------------------------------- */

/* Set in rp_completion.flags of a multishot receive: more completions will
   follow for this op. Its absence marks the op's last completion. */
#define RP_COMP_MORE (1u << 0)
/* Set when the data lies in a provided buffer; rp_comp_buffer_id() names
   it. The caller owns that buffer until rp_port_buffer_recycle(). */
#define RP_COMP_BUFFER (1u << 1)

static inline uint16_t rp_comp_buffer_id(uint32_t flags)
{
    return (uint16_t)(flags >> 16);
}

struct rp_completion {
    struct rp_op *op; /* the op that completed (or was posted) */
    uint64_t key;     /* op->key as it was when the op was submitted */
    int32_t res;      /* bytes / new fd / 0 when >= 0; -errno on failure */
    uint32_t flags;   /* RP_COMP_* */
};

/*
 * A completion routine (model 2): runs on the submitting thread inside
 * rp_port_alertable_wait(). 'res' and 'flags' as in struct rp_completion.
 * The op is the caller's again when the routine runs: it may be
 * resubmitted or freed from inside the routine.
 */
typedef void (*rp_op_routine)(struct rp_op *op, int32_t res, uint32_t flags);

/* ---- the operation (OVERLAPPED) -------------------------------------- */

/* Engine-internal: a queued completion record. */
struct rp__crec {
    struct rp__crec *next;
    struct rp_op *op;
    int32_t res;
    uint32_t flags;
};

/* Engine-internal: an op's state from submit to delivery (in rp_op's
   reserved area; its layout is not part of the ABI, its size limit is).
   Every kind of op uses the fields up to 'done'; those from 'addr' on
   are the arguments of the kinds that have them (an address, a message,
   a timeout, a cancel's target). A kind that takes none of those (a
   multishot receive, a close) never touches them, nor the reserved
   area's rest, even while it is the target of a cancel: the library's
   server keeps session state over that tail of its receive op
   (src/net/net.h, checked there at build time). Keep it so. */
struct rp__op_priv {
    struct rp__crec rec; /* this op's completion while queued */
    void *link;          /* MPSC node: posts and routine queues */
    struct rp_op *next;  /* backend queues (per-fd, timers, ready) */
    struct rp_op *prev;
    struct rp_port *port;       /* the port it was submitted to */
    void *thread;               /* submitting thread's routine queue */
    struct rp_buffers *buffers; /* multishot receive */
    uint32_t state;             /* idle / pending / done (atomic) */
    int32_t result;             /* models 1 and 2: the completion's res */
    uint32_t result_flags;
    uint8_t kind;
    uint8_t where;  /* epoll: which backend list holds the op;
                       io_uring: a cancel named this op */
    uint8_t parked; /* multishot waiting for a recycled buffer */
    uint8_t pad;
    int fd;
    uint32_t fd_gen; /* io_uring: the fd's cancel generation when
                        submitted (send, multishot receive) */
    uint64_t total;  /* send: bytes asked */
    uint64_t done;   /* send: bytes sent so far; cancel_fd: extra */
    /* ---- the other kinds' arguments (see above) ---- */
    void *addr;         /* accept/connect address; cancel target */
    socklen_t *addrlen; /* accept */
    int arg;            /* shutdown 'how'; connect addrlen */
    struct msghdr msg;  /* recv/send */
    int64_t ts_sec;     /* timer: a struct __kernel_timespec */
    long long ts_nsec;
    int64_t deadline_ns; /* timer on epoll */
};

/* The size of rp_op's engine area, in 64-bit words: 232 bytes, so that a
   whole op is 256 bytes on 64-bit targets. Fixed for a major version. */
#define RP_OP_RESERVED_WORDS 29

/*
 * struct rp_op is ringport's OVERLAPPED: allocated by the caller, usually
 * embedded in the object that issues the I/O (a session), prepared with
 * rp_op_init() once, then submitted with one rp_port_<op>() call at a time.
 *
 * Lifetime: from a successful submit until its completion has been
 * delivered (returned by rp_port_get, its routine called, or its event set
 * and rp_op_result() seen it), the op, every buffer it names, the iovec
 * array, the address and address-length objects must stay alive and must
 * not move. The port may rewrite the iovec array of a send while the op is
 * in flight (it advances past bytes already sent); its content is
 * unspecified afterwards. An op in flight must not be submitted again.
 *
 * Caller-set members (set them before submitting; they choose the model):
 *   key      returned with the completion (the completion key; any value);
 *   event    model 1: the event to set on completion; the result is stored
 *            in the op for rp_op_result();
 *   routine  model 2: the routine to run (ignored when event is set).
 * With neither set the completion is queued on the port (model 3).
 *
 * Everything in 'rp__priv' is the engine's: never read or write it.
 *
 * ABI: the op is meant to be embedded in the caller's own structs, as an
 * OVERLAPPED is, so its size and the offsets of the three members above
 * are part of the ABI (docs/architecture.md, "ABI"). The engine's state
 * lives in a fixed reserved area (RP_OP_RESERVED_WORDS 64-bit words, 256
 * bytes for the whole op on 64-bit targets): a new library may change what
 * it keeps there, but never the area's size. The library checks at build
 * time that its state fits.
 */
struct rp_op {
    uint64_t key;
    struct rp_event *event;
    rp_op_routine routine;

    /* ---- private: engine-owned from submit to delivery ---- */
    union {
        struct rp__op_priv rp__priv;
        uint64_t rp__reserved[RP_OP_RESERVED_WORDS];
    };
};

/* Prepares an op for its first use: all zero, no model chosen. */
RP_API void rp_op_init(struct rp_op *op);

/*
 * WSAGetOverlappedResult for a model-1 op (op->event set). Returns 0 and
 * stores the completion's res in *bytes (may be NULL) if the op succeeded;
 * the op's -errno if it failed; -EINPROGRESS (WSA_IO_INCOMPLETE) if it is
 * still pending and !wait; -EINVAL if the op has no event. With wait it
 * blocks until the op completes (on an owned port's owner thread it pumps
 * the port meanwhile). Thread: any for a shared port.
 */
RP_API int rp_op_result(struct rp_op *op, uint32_t *bytes, bool wait);

/* ---- the port -------------------------------------------------------- */

/* Returns 0 and *out, or -errno (-EINVAL bad config; the backend's error
   when a forced backend cannot start). Logs which backend won and why. */
RP_API int rp_port_create(const struct rp_port_config *cfg,
                          struct rp_port **out);

/*
 * Frees the port. Every op must have completed first (see "Closing with ops
 * in flight"): completions still pending are dropped, never delivered.
 * Owned: on the owner thread. Shared: no thread may be inside a call on it.
 * On io_uring, tearing the ring down queues kernel task work to the threads
 * that submitted to it; the next blocking system call with a timeout on such
 * a thread (e.g. recv with SO_RCVTIMEO) may then fail once with EINTR
 * without any signal. Callers retry EINTR anyway; this is why.
 */
RP_API void rp_port_destroy(struct rp_port *port);

RP_API enum rp_backend_kind rp_port_backend(const struct rp_port *port);
/* "auto", "uring", "epoll". */
RP_API const char *rp_backend_name(enum rp_backend_kind kind);
/* The inverse of rp_backend_name; -EINVAL for anything else. */
RP_API int rp_backend_parse(const char *name);

/*
 * Operations. Each returns 0 (submitted: one completion will follow) or
 * -errno (nothing submitted, no completion ever). Thread: any for a shared
 * port; the owner only for an owned port. fds should be non-blocking
 * sockets (the epoll backend needs it for connect). The port never closes
 * an fd except through rp_port_close().
 *
 * accept    res = the new fd, SOCK_CLOEXEC|SOCK_NONBLOCK; 'addr' and
 *           '*addrlen' (may be NULL) are filled as by accept4(2).
 * connect   res = 0 or -errno (-ECONNREFUSED, ...).
 * recv      scatter into iov[0..iovcnt); res = bytes, 0 = the peer closed.
 * send      gather iov[0..iovcnt) (iovcnt <= IOV_MAX), always MSG_NOSIGNAL
 *           (a closed peer gives -EPIPE, never SIGPIPE). Completes only
 *           when every byte is sent (res = the total) or on an error (res =
 *           -errno; some bytes may have gone out). Short sends are continued
 *           by the port, which advances the caller's iovec array. Keep one
 *           send in flight per socket: two may interleave their bytes.
 * shutdown  shutdown(2) with 'how' (SHUT_RD/WR/RDWR).
 * close     cancels the fd's pending ops first (each completes with
 *           -ECANCELED, or its result if it won the race), then closes it:
 *           a later fd with the same number never sees a completion meant
 *           for this one. Closing an fd that has ops pending by any other
 *           means than rp_port_close() is the caller's bug.
 * close_idle closes an fd on which no op of this port is pending (every
 *           op submitted on it has completed), without close's cancel
 *           first: res = 0 or -errno as close(2). On io_uring a cancel by
 *           descriptor walks every pending poll request of the ring (an
 *           armed receive of each open session), so close costs
 *           O(requests pending on the port) and close_idle O(1). An op
 *           still pending on the fd may outlive the close (the caller's
 *           bug). A teardown that cancels its own ops by name (cancel)
 *           and waits for them ends with close_idle.
 * cancel    cancels 'target' (an op submitted to this port). res = 0 found
 *           and cancelled, -ENOENT not pending (already completed), or
 *           -EALREADY (running, cannot be stopped). The target completes
 *           with -ECANCELED, or with its result if it won the race; like
 *           cancel_fd, it is never continued, re-armed or parked after the
 *           cancel. The kernel finds the target by its user_data (a hash
 *           lookup), not by a walk of the ring's requests: cancelling a
 *           closing socket's few ops one by one stays O(1) however many
 *           other requests are pending.
 * cancel_fd cancels every pending op on 'fd'. Each completes with
 *           -ECANCELED, or its result if it won the race; none is continued,
 *           re-armed or parked after the cancel (a multishot receive that
 *           had just met -ENOBUFS, a short send), so each completes without
 *           further help. res = how many ops the kernel found (plus parked
 *           receives): a figure, not a count to wait for. io_uring counts an
 *           op it found already running on a worker thread, which then
 *           completes with its own result, and the port ends with
 *           -ECANCELED some ops the kernel could no longer find.
 * timer     completes after 'timeout_ns' with res = -ETIME (as io_uring),
 *           or -ECANCELED if cancelled first.
 * nop       completes with res = 0 through the backend (a barrier, a test
 *           of the completion path).
 * post      PostQueuedCompletionStatus: delivers (op, op->key, res, 0) by
 *           the op's model without any I/O. Thread: ANY, also into an owned
 *           port (it wakes the owner only if the owner sleeps).
 *
 * Closing with ops in flight, the documented teardown: shutdown(fd) (or
 * rp_port_shutdown, and wait for it: a cancel_fd sent while it is in flight
 * may cancel the shutdown itself), rp_port_cancel_fd(fd), wait until every
 * op on the fd has completed (-ECANCELED or its result), then
 * rp_port_close(fd). A caller that knows its ops cancels each with
 * rp_port_cancel instead of cancel_fd, and closes with rp_port_close_idle
 * once they are back: the same guarantees, at O(1) per teardown on
 * io_uring where cancel_fd and close cost a walk of every pending request
 * (ringport's sessions do this). The
 * port never frees or reuses anything under a pending op; io_uring itself
 * does not cancel requests on close(2), and a multishot receive would keep
 * delivering.
 */
RP_API int rp_port_accept(struct rp_port *port, struct rp_op *op, int listen_fd,
                          struct sockaddr *addr, socklen_t *addrlen);
RP_API int rp_port_connect(struct rp_port *port, struct rp_op *op, int fd,
                           const struct sockaddr *addr, socklen_t addrlen);
RP_API int rp_port_recv(struct rp_port *port, struct rp_op *op, int fd,
                        struct iovec *iov, int iovcnt);
RP_API int rp_port_send(struct rp_port *port, struct rp_op *op, int fd,
                        struct iovec *iov, int iovcnt);
RP_API int rp_port_shutdown(struct rp_port *port, struct rp_op *op, int fd,
                            int how);
RP_API int rp_port_close(struct rp_port *port, struct rp_op *op, int fd);
RP_API int rp_port_close_idle(struct rp_port *port, struct rp_op *op, int fd);
RP_API int rp_port_cancel(struct rp_port *port, struct rp_op *op,
                          struct rp_op *target);
RP_API int rp_port_cancel_fd(struct rp_port *port, struct rp_op *op, int fd);
RP_API int rp_port_timer(struct rp_port *port, struct rp_op *op,
                         uint64_t timeout_ns);
RP_API int rp_port_nop(struct rp_port *port, struct rp_op *op);
RP_API int rp_port_post(struct rp_port *port, struct rp_op *op, int32_t res);

/*
 * Multishot receive with provided buffers (model 3 only: op->event and
 * op->routine must be NULL, else -EINVAL).
 *
 * rp_port_buffers_create registers 'count' buffers (a power of two, <=
 * 32768) of 'size' bytes each with the port. rp_port_recv_multishot arms
 * one receive that delivers a completion per chunk of data: res = bytes,
 * flags = RP_COMP_BUFFER | RP_COMP_MORE and the buffer id
 * (rp_comp_buffer_id); the data lies at rp_buffers_data(bufs, id). The
 * caller owns that buffer until it hands it back with
 * rp_port_buffer_recycle(). When every buffer is held the kernel stops the
 * receive with -ENOBUFS: that is not a disconnect; the port parks the op and
 * re-arms it when a buffer is recycled (no data is lost: it waits in the
 * socket). On io_uring a group of more than 512 buffers starts with 512 in
 * the ring and doubles them, up to 'count', each time a receive finds the
 * ring empty (memory follows the load: the kernel touches every buffer it
 * is given). The op's last completion comes without RP_COMP_MORE: res = 0 at
 * EOF, or -errno (-ECANCELED after a cancel). Any other end of the kernel's
 * multishot is re-armed transparently.
 *
 * Thread: the owner for an owned port; any for a shared port. The buffers
 * are freed with the port; they must not be recycled twice.
 */
RP_API int rp_port_buffers_create(struct rp_port *port, uint32_t count,
                                  uint32_t size, struct rp_buffers **out);
RP_API void *rp_buffers_data(struct rp_buffers *bufs, uint16_t id);
RP_API uint32_t rp_buffers_size(const struct rp_buffers *bufs);
RP_API void rp_port_buffer_recycle(struct rp_buffers *bufs, uint16_t id);
RP_API int rp_port_recv_multishot(struct rp_port *port, struct rp_op *op,
                                  int fd, struct rp_buffers *bufs);

/*
 * Model 3: takes one completion from the port. Returns 0 and *c, or
 * -ETIMEDOUT after timeout_ms (< 0: forever; 0: poll). Any number of threads
 * may wait on a shared port; each completion goes to exactly one of them.
 * Owned: the owner only (-EPERM otherwise); it pumps the port meanwhile.
 */
RP_API int rp_port_get(struct rp_port *port, struct rp_completion *c,
                       int timeout_ms);
/* As rp_port_get, but takes up to 'max' completions at once; returns how
   many (>= 1) or -ETIMEDOUT. */
RP_API int rp_port_get_many(struct rp_port *port, struct rp_completion *out,
                            size_t max, int timeout_ms);

/*
 * Model 2: SleepEx(timeout_ms, TRUE). Runs every completion routine queued
 * for the calling thread and returns how many ran (> 0), or 0 after
 * timeout_ms (< 0: forever) when none came. Routines run nowhere else. A
 * thread that owns a port pumps it here. A thread must not exit while it
 * has routine ops in flight.
 */
RP_API int rp_port_alertable_wait(int timeout_ms);

struct rp_port_stats {
    uint64_t submitted; /* ops accepted by rp_port_<op> (posts excluded) */
    uint64_t completed; /* completions dispatched */
    uint64_t enters;    /* system calls into the backend (submit + wait) */
    uint64_t overflows; /* io_uring CQ overflow flushes */
    uint64_t posted;    /* rp_port_post calls */
    uint64_t wakeups;   /* cross-thread wake-ups received */
    /* Where the system calls go (io_uring; epoll counts waits only). */
    uint64_t waits;            /* enters that may sleep (part of 'enters') */
    uint64_t waits_empty;      /* waits that returned with no completion */
    uint64_t waits_short;      /* moderated waits that ended (timed out) with
                                  fewer completions than they asked for */
    uint64_t recv_nobufs;      /* multishot receives ended by -ENOBUFS */
    uint64_t recv_rearms;      /* multishot receives re-armed after an end
                                  (-ENOBUFS, or a completion without MORE) */
    uint64_t sends_short;      /* sends continued after a short completion */
    uint64_t sends_late;       /* sends that completed after a later enter
                                  than the one that submitted them (they
                                  waited for socket space) */
    uint64_t buffers_out_max;  /* most provided buffers out of the ring at
                                  once (taken by receives, not recycled) */
    uint64_t buffers_provided; /* buffers in use by the rings now: io_uring
                                  starts a large group with 512 and
                                  doubles it, up to its count, when a
                                  receive meets an empty ring */
};

/* A snapshot (relaxed: counters may be mid-update in shared mode). */
RP_API void rp_port_get_stats(struct rp_port *port, struct rp_port_stats *out);

/* ---- events (model 1): manual-reset, like WSAEVENT ------------------- */

RP_API int rp_event_create(struct rp_event **out);
RP_API void rp_event_destroy(struct rp_event *ev);
/* Sets / resets the event. Set stays set until reset. Thread: any. */
RP_API int rp_event_set(struct rp_event *ev);
RP_API int rp_event_reset(struct rp_event *ev);
RP_API bool rp_event_is_set(struct rp_event *ev);
/* An fd that polls readable while the event is set (for your own poll). */
RP_API int rp_event_fd(const struct rp_event *ev);

/*
 * WSAWaitForMultipleEvents(fWaitAll = FALSE) without the 64 limit: returns
 * the index of a set event (the lowest), or -ETIMEDOUT after timeout_ms
 * (< 0: forever). On the owner thread of an owned port it pumps that port
 * while it waits; an event set from outside that port is then noticed at
 * the port's next completion or wake-up.
 */
RP_API int rp_event_wait_any(struct rp_event *const *events, size_t n,
                             int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
