/*
 * Multishot receive with provided buffers (model 3): many messages arrive
 * through recycled buffers; holding every buffer provokes -ENOBUFS, which
 * parks the receive instead of ending it; recycling resumes delivery with
 * no byte lost; EOF ends it (last completion without RP_COMP_MORE).
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

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multishot_recv_recycles_buffers_and_survives_enobufs),
        cmocka_unit_test(multishot_recv_ends_with_ecanceled_when_cancelled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
