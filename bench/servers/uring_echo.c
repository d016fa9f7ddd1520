/*
 * bench-uring_echo: the best-practice raw io_uring echo, the bar ringport's
 * io_uring backend must clear. Per thread: its own ring (SINGLE_ISSUER |
 * DEFER_TASKRUN, a completion queue 4x the submission queue), its own
 * SO_REUSEPORT listener with one multishot accept, and a provided-buffer
 * ring that every connection's multishot recv draws from (so an idle
 * connection holds no receive buffer).
 *
 * Echo path: a recv completion appends its buffer to the connection's queue;
 * at the end of the loop turn every connection with queued buffers and no
 * send in flight gets one send (one buffer) or sendmsg (several, gathered),
 * so there is never more than one send in flight per socket (two could
 * interleave: liburing #1001) and everything that arrived meanwhile goes
 * out together. A buffer returns to the ring when its bytes have been sent.
 * One io_uring_enter per loop turn submits everything and waits
 * (io_uring_submit_and_wait); with --spin-us the loop first polls for
 * completions (io_uring_get_events: with DEFER_TASKRUN completions are only
 * posted inside io_uring_enter) before it blocks.
 *
 * Teardown follows FIELD-NOTES: a connection that ends (EOF, error) is
 * closed only when its recv is no longer armed and no send is in flight;
 * a failed send shuts the socket down so the multishot recv ends.
 *
 * liburing 2.3 has no io_uring_setup_buf_ring: the buffer ring is mmap'ed
 * and registered by hand. A kernel that refuses DEFER_TASKRUN gets a plain
 * ring (a line on stderr says so).
 *
 *     bench-uring_echo --port 7002 &
 *     nc 127.0.0.1 7002
 */
#include "bench_common.h"

#include <liburing.h>
#include <stdbool.h>
#include <sys/mman.h>

#define PROG "bench-uring_echo"
#define SQ_ENTRIES 4096
#define NBUFS 8192    /* provided buffers per thread (power of two) */
#define BUF_SIZE 4096 /* each */
#define QCAP 256      /* received buffers queued per connection (power of 2) */
#define MAX_IOV 64    /* buffers per gathered send */
#define BGID 0

enum op { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

struct conn {
    int fd;
    bool recv_armed; /* a multishot recv is outstanding */
    bool sending;    /* one send is in flight (iov[] and msg belong to it) */
    bool closing;    /* EOF or error seen: no more sends */
    bool dirty;      /* on the loop's flush list */
    bool stalled;    /* recv ended with ENOBUFS: re-arm when buffers return */
    struct conn *next_dirty, *next_stalled;
    /*
     * Received buffers waiting to go back, oldest first:
     *     q[head & (QCAP-1)] .. q[(tail-1) & (QCAP-1)],
     * 0 <= tail - head <= QCAP; the first 'inflight' are in the send in
     * flight, and 'first_off' bytes of q[head] have been sent already.
     */
    uint32_t head, tail, inflight, first_off;
    struct {
        uint16_t bid, len;
    } q[QCAP];
    struct iovec iov[MAX_IOV];
    struct msghdr msg;
};

struct loop {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    uint8_t *bufs;      /* NBUFS * BUF_SIZE */
    unsigned recycled;  /* buffers added to br since the last advance */
    struct conn *dirty; /* connections with buffers to send */
    struct conn *stalled;
    int lfd;
    unsigned spin_us;
    pthread_t thread;
};

static inline uint64_t tag(void *p, enum op op)
{
    return (uint64_t)(uintptr_t)p | (uint64_t)op;
}

static struct io_uring_sqe *loop_sqe(struct loop *l)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
    while (!sqe) {
        /* The submission queue is full: push it to the kernel now. */
        io_uring_submit(&l->ring);
        sqe = io_uring_get_sqe(&l->ring);
    }
    return sqe;
}

static void buf_recycle(struct loop *l, uint16_t bid)
{
    io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
                          bid, io_uring_buf_ring_mask(NBUFS),
                          (int)l->recycled++);
}

static void arm_accept(struct loop *l)
{
    struct io_uring_sqe *sqe = loop_sqe(l);
    io_uring_prep_multishot_accept(sqe, l->lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(NULL, OP_ACCEPT));
}

static void arm_recv(struct loop *l, struct conn *c)
{
    struct io_uring_sqe *sqe = loop_sqe(l);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, tag(c, OP_RECV));
    c->recv_armed = true;
}

static void mark_dirty(struct loop *l, struct conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->next_dirty = l->dirty;
    l->dirty = c;
}

/* Frees the connection once nothing refers to it any more. */
static void conn_maybe_free(struct loop *l, struct conn *c)
{
    if (!c->closing || c->recv_armed || c->sending || c->dirty || c->stalled)
        return;
    while (c->head != c->tail)
        buf_recycle(l, c->q[c->head++ & (QCAP - 1)].bid);
    close(c->fd);
    free(c);
}

static void conn_fail(struct loop *l, struct conn *c)
{
    if (!c->closing) {
        c->closing = true;
        /* Ends an armed multishot recv (it completes with 0). */
        shutdown(c->fd, SHUT_RDWR);
    }
    conn_maybe_free(l, c);
}

/* Issues one send of everything queued (at most MAX_IOV buffers). */
static void conn_send(struct loop *l, struct conn *c)
{
    uint32_t n = c->tail - c->head;
    if (n > MAX_IOV)
        n = MAX_IOV;
    for (uint32_t i = 0; i < n; i++) {
        uint16_t bid = c->q[(c->head + i) & (QCAP - 1)].bid;
        uint32_t len = c->q[(c->head + i) & (QCAP - 1)].len;
        uint32_t off = i == 0 ? c->first_off : 0;
        c->iov[i].iov_base = l->bufs + (size_t)bid * BUF_SIZE + off;
        c->iov[i].iov_len = len - off;
    }
    struct io_uring_sqe *sqe = loop_sqe(l);
    if (n == 1) {
        io_uring_prep_send(sqe, c->fd, c->iov[0].iov_base, c->iov[0].iov_len,
                           MSG_NOSIGNAL);
    } else {
        c->msg = (struct msghdr){.msg_iov = c->iov, .msg_iovlen = n};
        io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
    }
    io_uring_sqe_set_data64(sqe, tag(c, OP_SEND));
    c->inflight = n;
    c->sending = true;
}

static void on_accept(struct loop *l, int res, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        arm_accept(l);
    if (res < 0) {
        fprintf(stderr, PROG ": accept: %s\n", strerror(-res));
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(res);
        return;
    }
    c->fd = res;
    arm_recv(l, c);
}

static void on_recv(struct loop *l, struct conn *c, int res, uint32_t flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        c->recv_armed = false;
    if (res > 0) {
        uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
        if (c->closing || c->tail - c->head == QCAP) {
            /* Closing, or a peer that sends far ahead of what it reads. */
            buf_recycle(l, bid);
            conn_fail(l, c);
            return;
        }
        c->q[c->tail++ & (QCAP - 1)].bid = bid;
        c->q[(c->tail - 1) & (QCAP - 1)].len = (uint16_t)res;
        if (!c->sending)
            mark_dirty(l, c);
        if (!c->recv_armed)
            arm_recv(l, c);
        return;
    }
    if (res == -ENOBUFS && !c->closing) {
        /* The buffer ring ran dry: not a disconnect. */
        if (!c->recv_armed && !c->stalled) {
            c->stalled = true;
            c->next_stalled = l->stalled;
            l->stalled = c;
        }
        return;
    }
    if (c->recv_armed)
        return; /* a transient error on a still-armed recv */
    conn_fail(l, c);
}

static void on_send(struct loop *l, struct conn *c, int res)
{
    c->sending = false;
    if (res < 0) {
        conn_fail(l, c);
        return;
    }
    uint32_t left = (uint32_t)res;
    for (uint32_t i = 0; i < c->inflight && left > 0; i++) {
        uint32_t slot = c->head & (QCAP - 1);
        uint32_t rest = c->q[slot].len - c->first_off;
        if (left < rest) { /* a short send: the rest goes next */
            c->first_off += left;
            break;
        }
        left -= rest;
        c->first_off = 0;
        buf_recycle(l, c->q[slot].bid);
        c->head++;
    }
    c->inflight = 0;
    if (c->closing)
        conn_maybe_free(l, c);
    else if (c->head != c->tail)
        mark_dirty(l, c);
}

/* End of a loop turn: one send per connection with data, buffers back. */
static void loop_flush(struct loop *l)
{
    while (l->dirty) {
        struct conn *c = l->dirty;
        l->dirty = c->next_dirty;
        c->dirty = false;
        if (c->closing)
            conn_maybe_free(l, c);
        else if (!c->sending && c->head != c->tail)
            conn_send(l, c);
    }
    if (l->recycled) {
        io_uring_buf_ring_advance(l->br, (int)l->recycled);
        l->recycled = 0;
        while (l->stalled) {
            struct conn *c = l->stalled;
            l->stalled = c->next_stalled;
            c->stalled = false;
            if (c->closing)
                conn_maybe_free(l, c);
            else if (!c->recv_armed)
                arm_recv(l, c);
        }
    }
}

static void loop_wait(struct loop *l)
{
    if (l->spin_us) {
        io_uring_submit_and_get_events(&l->ring);
        if (io_uring_cq_ready(&l->ring))
            return;
        uint64_t end = bs_now_ns() + (uint64_t)l->spin_us * 1000u;
        while (bs_now_ns() < end) {
            io_uring_get_events(&l->ring);
            if (io_uring_cq_ready(&l->ring))
                return;
        }
    }
    int r = io_uring_submit_and_wait(&l->ring, 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
        fprintf(stderr, PROG ": io_uring_enter: %s\n", strerror(-r));
        exit(1);
    }
}

static int loop_setup(struct loop *l)
{
    struct io_uring_params p = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                 IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
        .cq_entries = SQ_ENTRIES * 4,
    };
    int r = io_uring_queue_init_params(SQ_ENTRIES, &l->ring, &p);
    if (r == -EINVAL) {
        fprintf(stderr, PROG ": no DEFER_TASKRUN here; a plain ring\n");
        p = (struct io_uring_params){.flags = IORING_SETUP_CQSIZE,
                                     .cq_entries = SQ_ENTRIES * 4};
        r = io_uring_queue_init_params(SQ_ENTRIES, &l->ring, &p);
    }
    if (r < 0)
        return r;
    size_t ring_size = NBUFS * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE,
                    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    l->bufs = mmap(NULL, (size_t)NBUFS * BUF_SIZE, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED || l->bufs == MAP_FAILED)
        return -ENOMEM;
    l->br = br;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)br,
        .ring_entries = NBUFS,
        .bgid = BGID,
    };
    r = io_uring_register_buf_ring(&l->ring, &reg, 0);
    if (r < 0)
        return r;
    io_uring_buf_ring_init(l->br);
    for (uint16_t i = 0; i < NBUFS; i++)
        buf_recycle(l, i);
    io_uring_buf_ring_advance(l->br, (int)l->recycled);
    l->recycled = 0;
    return 0;
}

static void *loop_run(void *arg)
{
    struct loop *l = arg;
    /* The ring is created on the thread that submits (SINGLE_ISSUER). */
    int r = loop_setup(l);
    if (r < 0) {
        fprintf(stderr, PROG ": io_uring setup: %s\n", strerror(-r));
        exit(1);
    }
    arm_accept(l);
    for (;;) {
        loop_wait(l);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&l->ring, head, cqe)
        {
            uint64_t ud = cqe->user_data;
            void *p = (void *)(uintptr_t)(ud & ~(uint64_t)7);
            switch ((enum op)(ud & 7)) {
            case OP_ACCEPT: on_accept(l, cqe->res, cqe->flags); break;
            case OP_RECV: on_recv(l, p, cqe->res, cqe->flags); break;
            case OP_SEND: on_send(l, p, cqe->res); break;
            }
            seen++;
        }
        io_uring_cq_advance(&l->ring, seen);
        loop_flush(l);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct bs_opts o;
    static struct loop loops[BS_MAX_THREADS];
    int lfds[BS_MAX_THREADS];
    sigset_t set;

    bs_parse(argc, argv, "raw echo on an io_uring per thread", &o);
    uint16_t port = bs_listen_all(PROG, o.port, o.threads, 0, lfds);
    bs_block_signals(&set);
    for (unsigned i = 0; i < o.threads; i++) {
        loops[i].lfd = lfds[i];
        loops[i].spin_us = o.spin_us;
        if (pthread_create(&loops[i].thread, NULL, loop_run, &loops[i]) != 0) {
            fprintf(stderr, PROG ": cannot start a thread\n");
            return 1;
        }
    }
    bs_announce(port);
    bs_wait_and_exit(&set);
}
