/*
 * A completion-queue overflow provoked on purpose: an owned port with a
 * tiny ring (SQ 4, CQ 8) gets 500 NOPs submitted without reaping, so the
 * kernel parks most completions on its overflow list. Every completion is
 * still delivered exactly once, and the overflow is counted. (The epoll
 * backend has no CQ; it runs the same scenario as a check of the path.)
 */
#include "port_util.h"

static void completions_survive_a_cq_overflow_exactly_once(void **state)
{
    (void)state;
    enum { N = 500 };
    static struct rp_op ops[N];
    static int seen[N];
    memset(seen, 0, sizeof seen);
    struct rp_port *p = pt_port_cfg(RP_PORT_OWNED, 4, 8);
    for (int i = 0; i < N; i++) {
        rp_op_init(&ops[i]);
        ops[i].key = (uint64_t)i;
        assert_int_equal(rp_port_nop(p, &ops[i]), 0);
    }
    struct rp_completion batch[16];
    for (int got = 0; got < N;) {
        int n = rp_port_get_many(p, batch, 16, PT_WAIT_MS);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            assert_true(batch[i].key < N);
            assert_int_equal(batch[i].res, 0);
            seen[batch[i].key]++;
        }
        got += n;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    struct rp_completion c;
    assert_int_equal(rp_port_get(p, &c, 0), -ETIMEDOUT);
    struct rp_port_stats st;
    rp_port_get_stats(p, &st);
    printf("overflow flushes: %llu\n", (unsigned long long)st.overflows);
    if (rp_port_backend(p) == RP_BACKEND_URING)
        assert_true(st.overflows > 0);
    assert_int_equal(st.completed, N);
    rp_port_destroy(p);
}

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(completions_survive_a_cq_overflow_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
