/*
 * Closing with ops in flight, by the documented teardown (shutdown,
 * cancel_fd, wait for every op, close): each op completes exactly once and
 * nothing leaks (run under ASan/LSan). A reused fd number never receives a
 * completion meant for its predecessor. The same with each op cancelled
 * by name and close_idle, with other fds' receives armed beside it.
 *
 * What cancel_fd's count means (docs/reliability.md, "cancel_fd's count"):
 * the ops the kernel found on the fd, plus parked receives. io_uring also
 * counts an op it found already running on a worker thread, which then
 * completes with its own result (a shutdown, a receive woken by the
 * shutdown), and the port ends some ops with -ECANCELED that the kernel
 * could not find. So the count is bounded by the ops pending on the fd,
 * not by how many of them end -ECANCELED.
 */
#include "port_util.h"

#define MODES                                                                  \
    for (int mode_i = 0; mode_i < 2; mode_i++)                                 \
        for (uint32_t mode = mode_i ? 0 : RP_PORT_OWNED, once = 1; once;       \
             once = 0)

enum { RX1, RX2, TX, SHUT, CANCEL, CLOSE, NOPS };

/* Receives that were cut: cancelled, or ended by the shutdown first. */
static bool rx_cut(int32_t res)
{
    return res == -ECANCELED || res == 0;
}

/* A send that was cut: cancelled, or failed on the shut socket first. */
static bool tx_cut(int32_t res)
{
    return res == -ECANCELED || res == -EPIPE || res == -ECONNRESET;
}

static void teardown_completes_each_pending_op_exactly_once(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        int small = 8192;
        setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);

        struct rp_op ops[NOPS];
        int count[NOPS] = {0};
        int32_t res[NOPS];
        for (int i = 0; i < NOPS; i++) {
            rp_op_init(&ops[i]);
            ops[i].key = (uint64_t)i;
        }
        char r1[8], r2[8];
        struct iovec iv1 = {r1, sizeof r1}, iv2 = {r2, sizeof r2};
        enum { BIG = 8 << 20 }; /* never fits: the peer does not read */
        char *big = calloc(1, BIG);
        struct iovec ivt = {big, BIG};
        assert_int_equal(rp_port_recv(p, &ops[RX1], a, &iv1, 1), 0);
        assert_int_equal(rp_port_recv(p, &ops[RX2], a, &iv2, 1), 0);
        assert_int_equal(rp_port_send(p, &ops[TX], a, &ivt, 1), 0);

        /* The teardown. The shutdown completes before the cancel goes
           in: a cancel_fd would also take back a shutdown op still in
           flight on the fd (io_uring runs it on a worker thread). */
        assert_int_equal(rp_port_shutdown(p, &ops[SHUT], a, SHUT_RDWR), 0);
        int pending = 4; /* RX1 RX2 TX SHUT */
        while (count[SHUT] == 0) {
            struct rp_completion c = pt_get(p);
            assert_true(c.key <= SHUT);
            count[c.key]++;
            res[c.key] = c.res;
            pending--;
        }
        assert_int_equal(res[SHUT], 0);
        int before_cancel = pending; /* ops still on the fd */
        assert_int_equal(rp_port_cancel_fd(p, &ops[CANCEL], a), 0);
        pending++;
        while (pending > 0) {
            struct rp_completion c = pt_get(p);
            assert_true(c.key < NOPS && c.key != SHUT && c.key != CLOSE);
            count[c.key]++;
            res[c.key] = c.res;
            pending--;
        }
        assert_int_equal(rp_port_close(p, &ops[CLOSE], a), 0);
        struct rp_completion c = pt_get(p);
        assert_int_equal(c.key, CLOSE);
        count[CLOSE]++;
        assert_int_equal(c.res, 0);

        for (int i = 0; i < NOPS; i++)
            assert_int_equal(count[i], 1);
        assert_true(rx_cut(res[RX1]));
        assert_true(rx_cut(res[RX2]));
        assert_true(tx_cut(res[TX]));
        /* The count names ops that were on the fd, nothing more. */
        assert_true(res[CANCEL] >= 0 && res[CANCEL] <= before_cancel);
        /* Nothing else arrives. */
        struct rp_op marker;
        rp_op_init(&marker);
        assert_int_equal(rp_port_nop(p, &marker), 0);
        assert_ptr_equal(pt_get(p).op, &marker);
        assert_int_equal(rp_port_get(p, &c, 0), -ETIMEDOUT);
        free(big);
        close(b);
        rp_port_destroy(p);
    }
}

/*
 * The same, with the server's teardown: shutdown(2) in place, then
 * cancel_fd at once, so the kernel still holds the ops (woken by the
 * shutdown or not) when the cancel arrives. Every op completes once.
 */
static void cancel_right_after_a_shutdown_takes_back_every_op(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        int small = 8192;
        setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        struct rp_op ops[NOPS];
        int count[NOPS] = {0};
        int32_t res[NOPS];
        for (int i = 0; i < NOPS; i++) {
            rp_op_init(&ops[i]);
            ops[i].key = (uint64_t)i;
        }
        char r1[8], r2[8];
        struct iovec iv1 = {r1, sizeof r1}, iv2 = {r2, sizeof r2};
        enum { BIG = 8 << 20 };
        char *big = calloc(1, BIG);
        struct iovec ivt = {big, BIG};
        assert_int_equal(rp_port_recv(p, &ops[RX1], a, &iv1, 1), 0);
        assert_int_equal(rp_port_recv(p, &ops[RX2], a, &iv2, 1), 0);
        assert_int_equal(rp_port_send(p, &ops[TX], a, &ivt, 1), 0);
        assert_int_equal(shutdown(a, SHUT_RDWR), 0);
        assert_int_equal(rp_port_cancel_fd(p, &ops[CANCEL], a), 0);
        for (int pending = 4; pending > 0; pending--) {
            struct rp_completion c = pt_get(p);
            assert_true(c.key <= CANCEL && c.key != SHUT);
            count[c.key]++;
            res[c.key] = c.res;
        }
        assert_int_equal(rp_port_close(p, &ops[CLOSE], a), 0);
        struct rp_completion c = pt_get(p);
        assert_int_equal(c.key, CLOSE);
        assert_int_equal(c.res, 0);
        for (int i = RX1; i <= CANCEL; i++)
            assert_int_equal(count[i], i == SHUT ? 0 : 1);
        assert_true(rx_cut(res[RX1]));
        assert_true(rx_cut(res[RX2]));
        assert_true(tx_cut(res[TX]));
        assert_true(res[CANCEL] >= 0 && res[CANCEL] <= 3);
        struct rp_op marker;
        rp_op_init(&marker);
        assert_int_equal(rp_port_nop(p, &marker), 0);
        assert_ptr_equal(pt_get(p).op, &marker);
        assert_int_equal(rp_port_get(p, &c, 0), -ETIMEDOUT);
        free(big);
        close(b);
        rp_port_destroy(p);
    }
}

static void closing_through_the_port_cancels_pending_ops(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        char buf[8];
        struct iovec iov = {buf, sizeof buf};
        struct rp_op rx, cl;
        rp_op_init(&rx);
        rp_op_init(&cl);
        assert_int_equal(rp_port_recv(p, &rx, a, &iov, 1), 0);
        assert_int_equal(rp_port_close(p, &cl, a), 0);
        int seen_rx = 0, seen_close = 0;
        for (int i = 0; i < 2; i++) {
            struct rp_completion c = pt_get(p);
            if (c.op == &rx) {
                seen_rx++;
                assert_int_equal(c.res, -ECANCELED);
            } else {
                assert_ptr_equal(c.op, &cl);
                seen_close++;
                assert_int_equal(c.res, 0);
            }
        }
        assert_int_equal(seen_rx, 1);
        assert_int_equal(seen_close, 1);
        close(b);
        rp_port_destroy(p);
    }
}

static void a_reused_fd_never_gets_its_predecessors_completion(void **state)
{
    (void)state;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int reused = 0;
        for (int round = 0; round < 20; round++) {
            int a, b;
            pt_tcp_pair(&a, &b);
            char old_buf[8], new_buf[8];
            struct iovec old_iov = {old_buf, sizeof old_buf};
            struct iovec new_iov = {new_buf, sizeof new_buf};
            struct rp_op old_rx, cl, new_rx, marker;
            rp_op_init(&old_rx);
            rp_op_init(&cl);
            rp_op_init(&new_rx);
            rp_op_init(&marker);
            assert_int_equal(rp_port_recv(p, &old_rx, a, &old_iov, 1), 0);
            assert_int_equal(rp_port_close(p, &cl, a), 0);
            /* The close may complete before the cancelled recv: take both. */
            for (int i = 0; i < 2; i++) {
                struct rp_completion c = pt_get(p);
                assert_true(c.op == &old_rx || c.op == &cl);
                if (c.op == &old_rx)
                    assert_int_equal(c.res, -ECANCELED);
            }
            /* A new connection that reuses the number (socketpair takes
               the lowest free numbers, and a's is one of them). */
            int sv[2];
            assert_int_equal(
                socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                           0, sv),
                0);
            int c2 = sv[0], d2 = sv[1];
            reused += c2 == a || d2 == a;
            int fd = d2 == a ? d2 : c2;
            int peer = fd == c2 ? d2 : c2;
            assert_int_equal(rp_port_recv(p, &new_rx, fd, &new_iov, 1), 0);
            /* Data for the old connection must go nowhere. */
            ssize_t w = write(b, "old", 3);
            (void)w;
            assert_int_equal(write(peer, "new", 3), 3);
            struct rp_completion c = pt_get(p);
            assert_ptr_equal(c.op, &new_rx);
            assert_int_equal(c.res, 3);
            assert_memory_equal(new_buf, "new", 3);
            assert_int_equal(rp_port_nop(p, &marker), 0);
            assert_ptr_equal(pt_get(p).op, &marker);
            close(b);
            close(c2);
            close(d2);
        }
        assert_true(reused > 0); /* the scenario really happened */
        rp_port_destroy(p);
    }
}

/*
 * The teardown a caller that knows its ops makes (the server's sessions):
 * no shutdown, no cancel_fd, a cancel naming each op, then close_idle once
 * they are back. Each named op completes once with -ECANCELED, the
 * receives armed on other fds are untouched and still complete with their
 * own bytes, nothing else arrives, and a new fd that takes the closed
 * one's number is served.
 */
static void a_teardown_by_name_leaves_the_other_fds_armed(void **state)
{
    (void)state;
    enum { N = 16, BIG = 8 << 20 };
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int sa[N], sb[N];
        char sbuf[N][8];
        struct iovec siov[N];
        struct rp_op srx[N];
        for (int i = 0; i < N; i++) {
            pt_tcp_pair(&sa[i], &sb[i]);
            siov[i] = (struct iovec){sbuf[i], sizeof sbuf[i]};
            rp_op_init(&srx[i]);
            srx[i].key = 100 + (uint64_t)i;
            assert_int_equal(rp_port_recv(p, &srx[i], sa[i], &siov[i], 1), 0);
        }
        int a, b;
        pt_tcp_pair(&a, &b);
        int small = 8192;
        setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        enum { B_RX, B_TX, B_CANCEL_RX, B_CANCEL_TX, B_CLOSE, B_NOPS };
        struct rp_op ops[B_NOPS];
        int count[B_NOPS] = {0};
        int32_t res[B_NOPS];
        for (int i = 0; i < B_NOPS; i++) {
            rp_op_init(&ops[i]);
            ops[i].key = (uint64_t)i;
        }
        char r[8];
        struct iovec ivr = {r, sizeof r};
        char *big = calloc(1, BIG); /* never fits: the peer does not read */
        struct iovec ivt = {big, BIG};
        assert_int_equal(rp_port_recv(p, &ops[B_RX], a, &ivr, 1), 0);
        assert_int_equal(rp_port_send(p, &ops[B_TX], a, &ivt, 1), 0);
        /* Both in the kernel before the cancels: io_uring does not find a
           send whose first attempt went out short in the same submission
           batch as its cancel (by name or by descriptor alike); it waits
           for write space afterwards, out of the cancel's reach. */
        struct rp_op flush;
        rp_op_init(&flush);
        flush.key = 98;
        assert_int_equal(rp_port_nop(p, &flush), 0);
        assert_ptr_equal(pt_get(p).op, &flush);
        assert_int_equal(rp_port_cancel(p, &ops[B_CANCEL_RX], &ops[B_RX]), 0);
        assert_int_equal(rp_port_cancel(p, &ops[B_CANCEL_TX], &ops[B_TX]), 0);
        for (int pending = 4; pending > 0; pending--) {
            struct rp_completion c = pt_get(p);
            assert_true(c.key < B_CLOSE); /* no survivor's receive */
            count[c.key]++;
            res[c.key] = c.res;
        }
        assert_int_equal(rp_port_close_idle(p, &ops[B_CLOSE], a), 0);
        struct rp_completion c = pt_get(p);
        assert_int_equal(c.key, B_CLOSE);
        assert_int_equal(c.res, 0);
        for (int i = 0; i < B_CLOSE; i++)
            assert_int_equal(count[i], 1);
        assert_int_equal(res[B_RX], -ECANCELED);
        assert_int_equal(res[B_TX], -ECANCELED);
        assert_int_equal(res[B_CANCEL_RX], 0);
        assert_int_equal(res[B_CANCEL_TX], 0);

        /* A new connection, most likely on a's number. */
        int na, nb;
        pt_tcp_pair(&na, &nb);
        char nbuf[8];
        struct iovec niov = {nbuf, sizeof nbuf};
        struct rp_op nrx;
        rp_op_init(&nrx);
        nrx.key = 99;
        assert_int_equal(rp_port_recv(p, &nrx, na, &niov, 1), 0);
        assert_int_equal(write(nb, "new", 3), 3);
        c = pt_get(p);
        assert_ptr_equal(c.op, &nrx);
        assert_int_equal(c.res, 3);

        /* Every survivor's receive is still armed and gets its own bytes. */
        for (int i = 0; i < N; i++) {
            char msg[2] = {'s', (char)('a' + i)};
            assert_int_equal(write(sb[i], msg, 2), 2);
        }
        bool seen[N] = {false};
        for (int n = 0; n < N; n++) {
            c = pt_get(p);
            assert_true(c.key >= 100 && c.key < 100 + N);
            int i = (int)(c.key - 100);
            assert_false(seen[i]);
            seen[i] = true;
            assert_int_equal(c.res, 2);
            assert_int_equal(sbuf[i][1], 'a' + i);
        }
        struct rp_op marker;
        rp_op_init(&marker);
        assert_int_equal(rp_port_nop(p, &marker), 0);
        assert_ptr_equal(pt_get(p).op, &marker);
        assert_int_equal(rp_port_get(p, &c, 0), -ETIMEDOUT);
        for (int i = 0; i < N; i++) {
            close(sa[i]);
            close(sb[i]);
        }
        close(na);
        close(nb);
        close(b);
        free(big);
        rp_port_destroy(p);
    }
}

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(teardown_completes_each_pending_op_exactly_once),
        cmocka_unit_test(cancel_right_after_a_shutdown_takes_back_every_op),
        cmocka_unit_test(closing_through_the_port_cancels_pending_ops),
        cmocka_unit_test(a_reused_fd_never_gets_its_predecessors_completion),
        cmocka_unit_test(a_teardown_by_name_leaves_the_other_fds_armed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
