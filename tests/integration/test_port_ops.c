/*
 * Every port operation's success and error paths over real loopback
 * sockets, model 3 (rp_port_get), in both port modes (owned and shared).
 */
#include "port_util.h"

#include <pthread.h>
#include <sys/socket.h>

#define MODES                                                                  \
    for (int mode_i = 0; mode_i < 2; mode_i++)                                 \
        for (uint32_t mode = mode_i ? 0 : RP_PORT_OWNED, once = 1; once;       \
             once = 0)

/* Two completions in either order, sorted back to (first, second). */
static void get_both(struct rp_port *p, struct rp_op *first,
                     struct rp_op *second, struct rp_completion *c1,
                     struct rp_completion *c2)
{
    struct rp_completion a = pt_get(p), b = pt_get(p);
    if (a.op == first) {
        *c1 = a;
        *c2 = b;
    } else {
        *c1 = b;
        *c2 = a;
    }
    assert_ptr_equal(c1->op, first);
    assert_ptr_equal(c2->op, second);
}

static void accept_and_connect_complete(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        struct sockaddr_in addr;
        int l = pt_listener(&addr);
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct rp_op acc, con;
        rp_op_init(&acc);
        rp_op_init(&con);
        acc.key = 1;
        con.key = 2;
        struct sockaddr_in peer;
        socklen_t peerlen = sizeof peer;
        assert_int_equal(
            rp_port_accept(p, &acc, l, (struct sockaddr *)&peer, &peerlen), 0);
        assert_int_equal(
            rp_port_connect(p, &con, c, (struct sockaddr *)&addr, sizeof addr),
            0);
        struct rp_completion ca, cc;
        get_both(p, &acc, &con, &ca, &cc);
        assert_int_equal(ca.key, 1);
        assert_true(ca.res >= 0);
        assert_int_equal(cc.res, 0);
        assert_int_equal(peer.sin_family, AF_INET);
        /* The accepted fd is non-blocking and close-on-exec. */
        assert_true(fcntl(ca.res, F_GETFL) & O_NONBLOCK);
        assert_true(fcntl(ca.res, F_GETFD) & FD_CLOEXEC);
        close(ca.res);
        close(c);
        close(l);
        rp_port_destroy(p);
    }
}

static void connect_to_a_dead_port_is_refused(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        struct sockaddr_in dead = pt_dead_addr();
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct rp_op con;
        rp_op_init(&con);
        assert_int_equal(
            rp_port_connect(p, &con, c, (struct sockaddr *)&dead, sizeof dead),
            0);
        struct rp_completion cc = pt_get(p);
        assert_ptr_equal(cc.op, &con);
        assert_int_equal(cc.res, -ECONNREFUSED);
        close(c);
        rp_port_destroy(p);
    }
}

static void recv_gets_data_then_eof(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        char x[3], y[16];
        struct iovec iov[2] = {{x, sizeof x}, {y, sizeof y}};
        struct rp_op op;
        rp_op_init(&op);
        assert_int_equal(rp_port_recv(p, &op, a, iov, 2), 0);
        assert_int_equal(write(b, "hello", 5), 5);
        struct rp_completion c = pt_get(p);
        assert_int_equal(c.res, 5);
        assert_memory_equal(x, "hel", 3); /* scattered over both */
        assert_memory_equal(y, "lo", 2);
        close(b);
        iov[0] = (struct iovec){x, sizeof x};
        iov[1] = (struct iovec){y, sizeof y};
        assert_int_equal(rp_port_recv(p, &op, a, iov, 2), 0);
        c = pt_get(p);
        assert_int_equal(c.res, 0);
        close(a);
        rp_port_destroy(p);
    }
}

static void recv_reports_a_reset_peer(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        char buf[16];
        struct iovec iov = {buf, sizeof buf};
        struct rp_op op;
        rp_op_init(&op);
        assert_int_equal(rp_port_recv(p, &op, a, &iov, 1), 0);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        assert_int_equal(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg),
                         0);
        close(b); /* RST */
        struct rp_completion c = pt_get(p);
        assert_int_equal(c.res, -ECONNRESET);
        close(a);
        rp_port_destroy(p);
    }
}

static void send_gathers_many_iovecs(void **state)
{
    (void)state;
    uint64_t seed = t_seed();
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        enum { N = 300 };
        static char data[N * 64];
        static char got[N * 64];
        struct iovec iov[N];
        size_t total = 0;
        for (int i = 0; i < N; i++) {
            size_t len = t_rand_range(&seed, 1, 64);
            for (size_t j = 0; j < len; j++)
                data[total + j] = (char)t_rand(&seed);
            iov[i] = (struct iovec){data + total, len};
            total += len;
        }
        struct rp_op op;
        rp_op_init(&op);
        assert_int_equal(rp_port_send(p, &op, a, iov, N), 0);
        struct rp_completion c = pt_get(p);
        assert_int_equal(c.res, (int32_t)total);
        pt_read_all(b, got, total);
        assert_memory_equal(got, data, total);
        close(a);
        close(b);
        rp_port_destroy(p);
    }
}

static void send_to_a_closed_peer_fails_with_epipe_not_sigpipe(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        close(b);
        /* The first send after the peer's FIN may succeed; its RST turns
           the next ones into EPIPE. SIGPIPE would kill this process. */
        int32_t res = 0;
        for (int i = 0; i < 100 && res >= 0; i++) {
            char msg[8] = "payload";
            struct iovec iov = {msg, sizeof msg};
            struct rp_op op;
            rp_op_init(&op);
            assert_int_equal(rp_port_send(p, &op, a, &iov, 1), 0);
            res = pt_get(p).res;
            if (res >= 0)
                usleep(1000);
        }
        assert_int_equal(res, -EPIPE);
        close(a);
        rp_port_destroy(p);
    }
}

struct slow_reader {
    int fd;
    size_t total;
    size_t bad; /* bytes that did not match the pattern */
};

static void *slow_reader_main(void *arg)
{
    struct slow_reader *r = arg;
    static char buf[16384];
    size_t got = 0;
    while (got < r->total) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] != (char)((got + (size_t)i) * 7))
                    r->bad++;
            got += (size_t)n;
            usleep(200); /* slower than the sender: short sends follow */
        } else if (n < 0 && errno == EAGAIN) {
            usleep(500);
        } else {
            break;
        }
    }
    r->total = got;
    return NULL;
}

static void send_larger_than_the_socket_buffer_completes_fully(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        int small = 16384;
        setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        enum { TOTAL = 4 << 20 };
        char *data = malloc(TOTAL);
        for (size_t i = 0; i < TOTAL; i++)
            data[i] = (char)(i * 7);
        struct iovec iov[3] = {{data, 1000},
                               {data + 1000, TOTAL / 2},
                               {data + 1000 + TOTAL / 2, TOTAL / 2 - 1000}};
        struct slow_reader r = {.fd = b, .total = TOTAL};
        pthread_t t;
        struct rp_op op;
        rp_op_init(&op);
        assert_int_equal(rp_port_send(p, &op, a, iov, 3), 0);
        pthread_create(&t, NULL, slow_reader_main, &r);
        struct rp_completion c = pt_get(p);
        pthread_join(t, NULL);
        assert_int_equal(c.res, TOTAL);
        assert_int_equal(r.total, TOTAL);
        assert_int_equal(r.bad, 0);
        free(data);
        close(a);
        close(b);
        rp_port_destroy(p);
    }
}

static void shutdown_sends_eof_to_the_peer(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        struct rp_op op;
        rp_op_init(&op);
        assert_int_equal(rp_port_shutdown(p, &op, a, SHUT_WR), 0);
        assert_int_equal(pt_get(p).res, 0);
        char c;
        pt_nonblock(b);
        ssize_t n;
        int tries = 0;
        while ((n = read(b, &c, 1)) < 0 && errno == EAGAIN && tries++ < 5000)
            usleep(1000);
        assert_int_equal(n, 0);
        close(a);
        close(b);
        rp_port_destroy(p);
    }
}

static void close_through_the_port_closes_the_fd(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        struct rp_op op;
        rp_op_init(&op);
        assert_int_equal(rp_port_close(p, &op, a), 0);
        assert_int_equal(pt_get(p).res, 0);
        assert_int_equal(fcntl(a, F_GETFD), -1);
        assert_int_equal(errno, EBADF);
        close(b);
        rp_port_destroy(p);
    }
}

static void cancel_stops_one_pending_op(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        char buf[8];
        struct iovec iov = {buf, sizeof buf};
        struct rp_op rx, cancel;
        rp_op_init(&rx);
        rp_op_init(&cancel);
        assert_int_equal(rp_port_recv(p, &rx, a, &iov, 1), 0);
        assert_int_equal(rp_port_cancel(p, &cancel, &rx), 0);
        struct rp_completion cr, cc;
        get_both(p, &rx, &cancel, &cr, &cc);
        assert_int_equal(cr.res, -ECANCELED);
        assert_int_equal(cc.res, 0);
        /* Cancelling an op that already completed finds nothing. */
        assert_int_equal(rp_port_cancel(p, &cancel, &rx), 0);
        assert_int_equal(pt_get(p).res, -ENOENT);
        close(a);
        close(b);
        rp_port_destroy(p);
    }
}

static void cancel_fd_cancels_every_op_on_the_fd(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        enum { N = 3 };
        char buf[N][8];
        struct iovec iov[N];
        struct rp_op rx[N], cancel;
        int seen[N] = {0};
        for (int i = 0; i < N; i++) {
            iov[i] = (struct iovec){buf[i], sizeof buf[i]};
            rp_op_init(&rx[i]);
            rx[i].key = (uint64_t)i;
            assert_int_equal(rp_port_recv(p, &rx[i], a, &iov[i], 1), 0);
        }
        rp_op_init(&cancel);
        cancel.key = 99;
        assert_int_equal(rp_port_cancel_fd(p, &cancel, a), 0);
        for (int i = 0; i < N + 1; i++) {
            struct rp_completion c = pt_get(p);
            if (c.op == &cancel) {
                assert_int_equal(c.res, N);
            } else {
                assert_int_equal(c.res, -ECANCELED);
                seen[c.key]++;
            }
        }
        for (int i = 0; i < N; i++)
            assert_int_equal(seen[i], 1);
        close(a);
        close(b);
        rp_port_destroy(p);
    }
}

static void timer_expires_with_etime_and_can_be_cancelled(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        struct rp_op t1, t2, cancel;
        rp_op_init(&t1);
        rp_op_init(&t2);
        rp_op_init(&cancel);
        assert_int_equal(rp_port_timer(p, &t1, 5 * 1000000ull), 0);
        struct rp_completion c = pt_get(p);
        assert_ptr_equal(c.op, &t1);
        assert_int_equal(c.res, -ETIME);

        assert_int_equal(rp_port_timer(p, &t2, 60ull * 1000000000ull), 0);
        assert_int_equal(rp_port_cancel(p, &cancel, &t2), 0);
        struct rp_completion ct, cc;
        get_both(p, &t2, &cancel, &ct, &cc);
        assert_int_equal(ct.res, -ECANCELED);
        assert_int_equal(cc.res, 0);
        rp_port_destroy(p);
    }
}

static void post_and_nop_deliver_their_key_and_result(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        struct rp_op post, nop;
        rp_op_init(&post);
        rp_op_init(&nop);
        post.key = 42;
        nop.key = 43;
        assert_int_equal(rp_port_post(p, &post, 7), 0);
        struct rp_completion c = pt_get(p);
        assert_ptr_equal(c.op, &post);
        assert_int_equal(c.key, 42);
        assert_int_equal(c.res, 7);
        assert_int_equal(rp_port_nop(p, &nop), 0);
        c = pt_get(p);
        assert_ptr_equal(c.op, &nop);
        assert_int_equal(c.key, 43);
        assert_int_equal(c.res, 0);
        /* Nothing more: a poll times out. */
        assert_int_equal(rp_port_get(p, &c, 0), -ETIMEDOUT);
        struct rp_port_stats st;
        rp_port_get_stats(p, &st);
        assert_int_equal(st.posted, 1);
        assert_int_equal(st.completed, 2);
        rp_port_destroy(p);
    }
}

static void a_pending_op_cannot_be_submitted_twice(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        struct rp_op t;
        rp_op_init(&t);
        assert_int_equal(rp_port_timer(p, &t, 60ull * 1000000000ull), 0);
        assert_int_equal(rp_port_nop(p, &t), -EBUSY);
        struct rp_op cancel;
        rp_op_init(&cancel);
        assert_int_equal(rp_port_cancel(p, &cancel, &t), 0);
        pt_get(p);
        pt_get(p);
        rp_port_destroy(p);
    }
}

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_and_connect_complete),
        cmocka_unit_test(connect_to_a_dead_port_is_refused),
        cmocka_unit_test(recv_gets_data_then_eof),
        cmocka_unit_test(recv_reports_a_reset_peer),
        cmocka_unit_test(send_gathers_many_iovecs),
        cmocka_unit_test(send_to_a_closed_peer_fails_with_epipe_not_sigpipe),
        cmocka_unit_test(send_larger_than_the_socket_buffer_completes_fully),
        cmocka_unit_test(shutdown_sends_eof_to_the_peer),
        cmocka_unit_test(close_through_the_port_closes_the_fd),
        cmocka_unit_test(cancel_stops_one_pending_op),
        cmocka_unit_test(cancel_fd_cancels_every_op_on_the_fd),
        cmocka_unit_test(timer_expires_with_etime_and_can_be_cancelled),
        cmocka_unit_test(post_and_nop_deliver_their_key_and_result),
        cmocka_unit_test(a_pending_op_cannot_be_submitted_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
