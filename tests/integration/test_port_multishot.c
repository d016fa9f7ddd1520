/*
 * Multishot receive with provided buffers (model 3): many messages arrive
 * through recycled buffers; holding every buffer provokes -ENOBUFS, which
 * parks the receive instead of ending it; recycling resumes delivery with
 * no byte lost; EOF ends it (last completion without RP_COMP_MORE). The
 * port's counters say so (rp_port_stats: -ENOBUFS ends, re-arms, buffers
 * out, empty waits), and tell a send done inline from one that waited for
 * socket space.
 */
#include "port_util.h"

#define MODES                                                                  \
    for (int mode_i = 0; mode_i < 2; mode_i++)                                 \
        for (uint32_t mode = mode_i ? 0 : RP_PORT_OWNED, once = 1; once;       \
             once = 0)

enum { NBUF = 8, BUFSZ = 64 };

struct stream {
    char data[1 << 16];
    size_t len;
};

/* Takes one data completion: appends its bytes; returns the buffer id. */
static uint16_t take_data(struct rp_port *p, struct rp_buffers *bufs,
                          struct rp_op *op, struct stream *s)
{
    struct rp_completion c = pt_get(p);
    assert_ptr_equal(c.op, op);
    assert_true(c.res > 0);
    assert_true(c.flags & RP_COMP_BUFFER);
    assert_true(c.flags & RP_COMP_MORE);
    uint16_t id = rp_comp_buffer_id(c.flags);
    assert_true(id < NBUF);
    assert_true((uint32_t)c.res <= rp_buffers_size(bufs));
    memcpy(s->data + s->len, rp_buffers_data(bufs, id), (size_t)c.res);
    s->len += (size_t)c.res;
    return id;
}

static void multishot_recv_recycles_buffers_and_survives_enobufs(void **st)
{
    (void)st;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        struct rp_buffers *bufs;
        assert_int_equal(rp_port_buffers_create(p, NBUF, BUFSZ, &bufs), 0);
        struct rp_op op;
        rp_op_init(&op);
        assert_int_equal(rp_port_recv_multishot(p, &op, a, bufs), 0);
        static struct stream sent, got;
        memset(&sent, 0, sizeof sent);
        memset(&got, 0, sizeof got);

        /* 1. Many messages, each buffer handed back at once. */
        for (int i = 0; i < 100; i++) {
            char msg[32];
            int n = snprintf(msg, sizeof msg, "message %d;", i);
            assert_int_equal(write(b, msg, (size_t)n), n);
            memcpy(sent.data + sent.len, msg, (size_t)n);
            sent.len += (size_t)n;
            while (got.len < sent.len)
                rp_port_buffer_recycle(bufs, take_data(p, bufs, &op, &got));
        }

        /* 2. Hold every buffer: the next data finds none (-ENOBUFS). */
        uint16_t held[NBUF];
        for (int i = 0; i < NBUF; i++) {
            char msg[8] = "hold";
            assert_int_equal(write(b, msg, 4), 4);
            memcpy(sent.data + sent.len, msg, 4);
            sent.len += 4;
            held[i] = take_data(p, bufs, &op, &got);
            assert_int_equal(got.len, sent.len);
        }
        char big[1000];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (char)('a' + i % 26);
        assert_int_equal(write(b, big, sizeof big), (ssize_t)sizeof big);
        memcpy(sent.data + sent.len, big, sizeof big);
        sent.len += sizeof big;
        struct rp_completion c;
        assert_int_equal(rp_port_get(p, &c, 100), -ETIMEDOUT);

        /* 3. Recycling resumes delivery: nothing lost, no disconnect. */
        for (int i = 0; i < NBUF; i++)
            rp_port_buffer_recycle(bufs, held[i]);
        while (got.len < sent.len)
            rp_port_buffer_recycle(bufs, take_data(p, bufs, &op, &got));
        assert_int_equal(got.len, sent.len);
        assert_memory_equal(got.data, sent.data, sent.len);
        struct rp_port_stats ps;
        rp_port_get_stats(p, &ps);
        if (rp_port_backend(p) == RP_BACKEND_URING) {
            /* Step 2 emptied the ring: the receive ended with -ENOBUFS
               and was re-armed when buffers came back. */
            assert_true(ps.recv_nobufs >= 1);
            assert_true(ps.recv_rearms >= ps.recv_nobufs);
            assert_int_equal(ps.buffers_out_max, NBUF);
            /* Step 2's 100 ms wait returned with nothing (epoll may
               report the socket readable, with no buffer to take). */
            assert_true(ps.waits_empty >= 1);
        }
        assert_true(ps.waits >= ps.waits_empty);
        assert_true(ps.enters >= ps.waits);

        /* 4. EOF ends it: res 0 and no MORE. */
        close(b);
        c = pt_get(p);
        assert_ptr_equal(c.op, &op);
        assert_int_equal(c.res, 0);
        assert_false(c.flags & RP_COMP_MORE);
        close(a);
        rp_port_destroy(p);
    }
}

static void multishot_recv_ends_with_ecanceled_when_cancelled(void **st)
{
    (void)st;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        struct rp_buffers *bufs;
        assert_int_equal(rp_port_buffers_create(p, NBUF, BUFSZ, &bufs), 0);
        struct rp_op op, cancel;
        rp_op_init(&op);
        rp_op_init(&cancel);
        assert_int_equal(rp_port_recv_multishot(p, &op, a, bufs), 0);
        assert_int_equal(rp_port_cancel_fd(p, &cancel, a), 0);
        int seen = 0;
        for (int i = 0; i < 2; i++) {
            struct rp_completion c = pt_get(p);
            if (c.op == &op) {
                assert_int_equal(c.res, -ECANCELED);
                assert_false(c.flags & RP_COMP_MORE);
                seen++;
            } else {
                assert_ptr_equal(c.op, &cancel);
                assert_int_equal(c.res, 1);
            }
        }
        assert_int_equal(seen, 1);
        /* The model is checked: events and routines are refused. */
        struct rp_event *ev;
        assert_int_equal(rp_event_create(&ev), 0);
        op.event = ev;
        assert_int_equal(rp_port_recv_multishot(p, &op, a, bufs), -EINVAL);
        rp_event_destroy(ev);
        close(a);
        close(b);
        rp_port_destroy(p);
    }
}

/* Eight receives stopped by an empty ring, one buffer recycled: an owned
   io_uring port re-arms one of them, not all eight (the other seven would
   meet the empty ring and end with -ENOBUFS again at once). */
static void enobufs_rearms_no_more_receives_than_free_buffers(void **st)
{
    (void)st;
    enum { N = NBUF };
    struct rp_port *p = pt_port(RP_PORT_OWNED);
    if (rp_port_backend(p) != RP_BACKEND_URING) {
        rp_port_destroy(p);
        skip();
    }
    int a[N], b[N];
    struct rp_op op[N];
    struct rp_buffers *bufs;
    assert_int_equal(rp_port_buffers_create(p, NBUF, BUFSZ, &bufs), 0);
    for (int i = 0; i < N; i++) {
        pt_tcp_pair(&a[i], &b[i]);
        rp_op_init(&op[i]);
        assert_int_equal(rp_port_recv_multishot(p, &op[i], a[i], bufs), 0);
    }
    /* Every buffer held, one message at a time on the first socket. */
    uint16_t held[NBUF];
    for (int k = 0; k < NBUF; k++) {
        assert_int_equal(write(b[0], "h", 1), 1);
        struct rp_completion c = pt_get(p);
        assert_ptr_equal(c.op, &op[0]);
        assert_int_equal(c.res, 1);
        held[k] = rp_comp_buffer_id(c.flags);
    }
    /* Data on every socket: each receive ends with -ENOBUFS, parked. */
    for (int i = 0; i < N; i++)
        assert_int_equal(write(b[i], "x", 1), 1);
    struct rp_port_stats ps;
    struct rp_completion c;
    for (int tries = 0; tries < 1000; tries++) {
        rp_port_get_stats(p, &ps);
        if (ps.recv_nobufs >= N)
            break;
        assert_int_equal(rp_port_get(p, &c, 10), -ETIMEDOUT);
    }
    assert_int_equal(ps.recv_nobufs, N);
    uint64_t rearms = ps.recv_rearms;

    /* One buffer back: one receive re-armed, it takes the buffer, and
       nobody meets the empty ring again. */
    rp_port_buffer_recycle(bufs, held[0]);
    c = pt_get(p);
    assert_int_equal(c.res, 1);
    held[0] = rp_comp_buffer_id(c.flags);
    assert_int_equal(rp_port_get(p, &c, 50), -ETIMEDOUT);
    rp_port_get_stats(p, &ps);
    assert_int_equal(ps.recv_rearms, rearms + 1);
    assert_int_equal(ps.recv_nobufs, N);

    /* Everything back: the other seven deliver their byte. */
    for (int k = 0; k < NBUF; k++)
        rp_port_buffer_recycle(bufs, held[k]);
    for (int got = 1; got < N; got++) {
        c = pt_get(p);
        assert_int_equal(c.res, 1);
        rp_port_buffer_recycle(bufs, rp_comp_buffer_id(c.flags));
    }
    for (int i = 0; i < N; i++) {
        close(b[i]);
        close(a[i]);
    }
    rp_port_destroy(p);
}

/* A group of 1,024 buffers: io_uring puts 512 in the ring and doubles
   them when a receive finds it empty, so holding 512 never stops delivery
   (on epoll all 1,024 are free from the start). */
static void large_group_grows_its_ring_instead_of_stopping(void **st)
{
    (void)st;
    MODES
    {
        enum { BIG = 1024, HOLD = 600 };
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        struct rp_buffers *bufs;
        assert_int_equal(rp_port_buffers_create(p, BIG, 16, &bufs), 0);
        struct rp_port_stats ps;
        rp_port_get_stats(p, &ps);
        bool uring = rp_port_backend(p) == RP_BACKEND_URING;
        assert_int_equal(ps.buffers_provided, uring ? 512 : BIG);
        struct rp_op op;
        rp_op_init(&op);
        assert_int_equal(rp_port_recv_multishot(p, &op, a, bufs), 0);
        /* One message per completion, every buffer kept. */
        for (int i = 0; i < HOLD; i++) {
            char msg[8];
            int n = snprintf(msg, sizeof msg, "%d;", i);
            assert_int_equal(write(b, msg, (size_t)n), n);
            int got = 0;
            while (got < n) {
                struct rp_completion c = pt_get(p);
                assert_ptr_equal(c.op, &op);
                assert_true(c.res > 0);
                assert_true(c.flags & RP_COMP_MORE);
                assert_true(rp_comp_buffer_id(c.flags) < BIG);
                got += c.res;
            }
            assert_int_equal(got, n);
        }
        rp_port_get_stats(p, &ps);
        assert_int_equal(ps.buffers_provided, BIG);
        assert_true(ps.buffers_out_max >= HOLD);
        if (uring)
            assert_true(ps.recv_nobufs >= 1); /* the 513th message */
        close(a);
        close(b);
        rp_port_destroy(p);
    }
}

/* Sends 'len' bytes from 'a' while reading them on 'b', pumping the port
   between reads (an owned ring moves a waiting send only inside enters). */
static void send_and_drain(struct rp_port *p, int a, int b, char *buf,
                           size_t len)
{
    struct rp_op op;
    rp_op_init(&op);
    struct iovec v = {buf, len};
    assert_int_equal(rp_port_send(p, &op, a, &v, 1), 0);
    static char in[1 << 16];
    size_t got = 0;
    bool done = false;
    while (!done || got < len) {
        ssize_t n = read(b, in, sizeof in);
        if (n > 0)
            got += (size_t)n;
        struct rp_completion c;
        if (!done && rp_port_get(p, &c, n > 0 ? 0 : 1) == 0) {
            assert_ptr_equal(c.op, &op);
            assert_int_equal(c.res, (int32_t)len);
            done = true;
        }
    }
    assert_int_equal(got, len);
}

static void send_that_waits_for_socket_space_is_counted_late(void **st)
{
    (void)st;
    struct rp_port *p = pt_port(RP_PORT_OWNED);
    int a, b;
    pt_tcp_pair(&a, &b);
    pt_nonblock(b);
    int small = 1 << 14;
    assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
                     0);
    assert_int_equal(setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small),
                     0);
    static char buf[4 << 20];
    memset(buf, 'x', sizeof buf);
    struct rp_port_stats ps;

    /* 100 bytes fit in the socket: done in the enter that submits it. */
    send_and_drain(p, a, b, buf, 100);
    rp_port_get_stats(p, &ps);
    assert_int_equal(ps.sends_late, 0);

    /* 4 MiB do not: the send waits for the reader, across enters. */
    send_and_drain(p, a, b, buf, sizeof buf);
    rp_port_get_stats(p, &ps);
    if (rp_port_backend(p) == RP_BACKEND_URING)
        assert_true(ps.sends_late >= 1); /* more if it went out in parts */
    else
        assert_int_equal(ps.sends_late, 0); /* not counted on epoll */
    close(a);
    close(b);
    rp_port_destroy(p);
}

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multishot_recv_recycles_buffers_and_survives_enobufs),
        cmocka_unit_test(multishot_recv_ends_with_ecanceled_when_cancelled),
        cmocka_unit_test(send_that_waits_for_socket_space_is_counted_late),
        cmocka_unit_test(large_group_grows_its_ring_instead_of_stopping),
        cmocka_unit_test(enobufs_rearms_no_more_receives_than_free_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
