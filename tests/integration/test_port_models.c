/*
 * The notification models beside the port queue: completion routines
 * (model 2: only on the submitting thread, only inside
 * rp_port_alertable_wait), events (model 1: rp_op_result and
 * rp_event_wait_any over 1,000 events), and the owned port's cross-thread
 * post that wakes a sleeping owner.
 */
#include "port_util.h"

#include <pthread.h>
#include <sys/resource.h>

#define MODES                                                                  \
    for (int mode_i = 0; mode_i < 2; mode_i++)                                 \
        for (uint32_t mode = mode_i ? 0 : RP_PORT_OWNED, once = 1; once;       \
             once = 0)

/* ---- routines ----------------------------------------------------------*/

static _Thread_local bool inside_wait;

struct routine_op {
    struct rp_op op; /* first: the routine gets &op */
    pthread_t submitter;
    int runs;
    bool on_wrong_thread;
    bool outside_wait;
    int32_t res;
};

static void record_routine(struct rp_op *op, int32_t res, uint32_t flags)
{
    (void)flags;
    struct routine_op *r = (struct routine_op *)op;
    r->runs++;
    r->res = res;
    if (!pthread_equal(r->submitter, pthread_self()))
        r->on_wrong_thread = true;
    if (!inside_wait)
        r->outside_wait = true;
}

static int alertable(int timeout_ms)
{
    inside_wait = true;
    int n = rp_port_alertable_wait(timeout_ms);
    inside_wait = false;
    return n;
}

enum { ROUTINE_OPS = 50 };

struct routine_thread {
    struct rp_port *port;
    struct routine_op ops[ROUTINE_OPS];
    int ran_early;
};

/* Submits nops, timers and posts with routines, then collects them. */
static void *routine_thread_main(void *arg)
{
    struct routine_thread *t = arg;
    for (int i = 0; i < ROUTINE_OPS; i++) {
        struct routine_op *r = &t->ops[i];
        rp_op_init(&r->op);
        r->op.routine = record_routine;
        r->submitter = pthread_self();
        int rc;
        if (i % 3 == 0)
            rc = rp_port_nop(t->port, &r->op);
        else if (i % 3 == 1)
            rc = rp_port_timer(t->port, &r->op, 1000000);
        else
            rc = rp_port_post(t->port, &r->op, i);
        if (rc != 0)
            return (void *)1;
    }
    usleep(20000); /* completions arrive meanwhile; none may run yet */
    for (int i = 0; i < ROUTINE_OPS; i++)
        t->ran_early += t->ops[i].runs;
    int total = 0;
    for (int tries = 0; total < ROUTINE_OPS && tries < 1000; tries++)
        total += alertable(PT_WAIT_MS);
    return NULL;
}

static void check_routines(struct routine_thread *t)
{
    assert_int_equal(t->ran_early, 0);
    for (int i = 0; i < ROUTINE_OPS; i++) {
        assert_int_equal(t->ops[i].runs, 1);
        assert_false(t->ops[i].on_wrong_thread);
        assert_false(t->ops[i].outside_wait);
        int32_t want = i % 3 == 0 ? 0 : i % 3 == 1 ? -ETIME : i;
        assert_int_equal(t->ops[i].res, want);
    }
}

static void routines_run_on_their_submitting_thread_in_shared_mode(void **s)
{
    (void)s;
    struct rp_port *p = pt_port(0);
    static struct routine_thread th[3];
    pthread_t tid[3];
    for (int i = 0; i < 3; i++) {
        memset(&th[i], 0, sizeof th[i]);
        th[i].port = p;
        pthread_create(&tid[i], NULL, routine_thread_main, &th[i]);
    }
    for (int i = 0; i < 3; i++) {
        void *ret;
        pthread_join(tid[i], &ret);
        assert_null(ret);
        check_routines(&th[i]);
    }
    rp_port_destroy(p);
}

static void routines_run_only_in_the_owners_alertable_wait(void **s)
{
    (void)s;
    struct rp_port *p = pt_port(RP_PORT_OWNED);
    static struct routine_thread th;
    memset(&th, 0, sizeof th);
    th.port = p;
    /* A model-3 op beside them: rp_port_get returns it but runs no
       routine. */
    struct rp_op plain;
    rp_op_init(&plain);
    for (int i = 0; i < ROUTINE_OPS; i++) {
        struct routine_op *r = &th.ops[i];
        rp_op_init(&r->op);
        r->op.routine = record_routine;
        r->submitter = pthread_self();
        assert_int_equal(
            i % 2 ? rp_port_nop(p, &r->op) : rp_port_post(p, &r->op, i), 0);
    }
    assert_int_equal(rp_port_nop(p, &plain), 0);
    assert_ptr_equal(pt_get(p).op, &plain);
    for (int i = 0; i < ROUTINE_OPS; i++)
        assert_int_equal(th.ops[i].runs, 0);
    int total = 0;
    for (int tries = 0; total < ROUTINE_OPS && tries < 1000; tries++)
        total += alertable(PT_WAIT_MS);
    assert_int_equal(total, ROUTINE_OPS);
    for (int i = 0; i < ROUTINE_OPS; i++) {
        assert_int_equal(th.ops[i].runs, 1);
        assert_false(th.ops[i].on_wrong_thread);
        assert_false(th.ops[i].outside_wait);
    }
    /* Nothing queued: the wait times out with 0. */
    assert_int_equal(alertable(0), 0);
    rp_port_destroy(p);
}

/* ---- events --------------------------------------------------------------*/

static void raise_fd_limit(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void event_wait_any_finds_each_of_1000_events(void **s)
{
    (void)s;
    raise_fd_limit();
    uint64_t seed = t_seed();
    enum { N = 1000 };
    static struct rp_event *ev[N];
    static struct rp_op ops[N];
    static int order[N];
    MODES
    {
        struct rp_port *p = pt_port(mode);
        for (int i = 0; i < N; i++) {
            assert_int_equal(rp_event_create(&ev[i]), 0);
            rp_op_init(&ops[i]);
            ops[i].event = ev[i];
            order[i] = i;
        }
        for (int i = N - 1; i > 0; i--) {
            int j = (int)t_rand_range(&seed, 0, (uint64_t)i);
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        assert_int_equal(rp_event_wait_any(ev, N, 0), -ETIMEDOUT);
        for (int k = 0; k < N; k++) {
            int i = order[k];
            /* Half real completions through the backend, half posts. */
            if (k % 2)
                assert_int_equal(rp_port_nop(p, &ops[i]), 0);
            else
                assert_int_equal(rp_port_post(p, &ops[i], i), 0);
            int got = rp_event_wait_any(ev, N, PT_WAIT_MS);
            assert_int_equal(got, i);
            uint32_t bytes = 12345;
            assert_int_equal(rp_op_result(&ops[i], &bytes, false), 0);
            assert_int_equal(bytes, k % 2 ? 0 : (uint32_t)i);
            assert_true(rp_event_is_set(ev[i]));
            assert_int_equal(rp_event_reset(ev[i]), 0);
            assert_false(rp_event_is_set(ev[i]));
        }
        for (int i = 0; i < N; i++)
            rp_event_destroy(ev[i]);
        rp_port_destroy(p);
    }
}

static void op_result_reports_in_progress_then_waits_for_the_result(void **s)
{
    (void)s;
    MODES
    {
        struct rp_port *p = pt_port(mode);
        int a, b;
        pt_tcp_pair(&a, &b);
        struct rp_event *ev;
        assert_int_equal(rp_event_create(&ev), 0);
        char buf[16];
        struct iovec iov = {buf, sizeof buf};
        struct rp_op op;
        rp_op_init(&op);
        op.event = ev;
        uint32_t bytes = 0;
        assert_int_equal(rp_op_result(&op, &bytes, false), -EINVAL);
        assert_int_equal(rp_port_recv(p, &op, a, &iov, 1), 0);
        assert_int_equal(rp_op_result(&op, &bytes, false), -EINPROGRESS);
        assert_int_equal(write(b, "hello", 5), 5);
        assert_int_equal(rp_op_result(&op, &bytes, true), 0);
        assert_int_equal(bytes, 5);
        assert_true(rp_event_is_set(ev));

        /* The failure path: the op's -errno. */
        rp_event_reset(ev);
        iov = (struct iovec){buf, sizeof buf};
        assert_int_equal(rp_port_recv(p, &op, a, &iov, 1), 0);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(b);
        assert_int_equal(rp_op_result(&op, &bytes, true), -ECONNRESET);
        rp_event_destroy(ev);
        close(a);
        rp_port_destroy(p);
    }
}

/* ---- owned-mode posts from other threads --------------------------------*/

struct poster {
    struct rp_port *port;
    struct rp_op *ops;
    int n;
    int delay_us;
};

static void *poster_main(void *arg)
{
    struct poster *t = arg;
    for (int i = 0; i < t->n; i++) {
        if (t->delay_us)
            usleep((useconds_t)t->delay_us);
        if (rp_port_post(t->port, &t->ops[i], i) != 0)
            return (void *)1;
    }
    return NULL;
}

static void owned_post_from_another_thread_wakes_a_sleeping_owner(void **s)
{
    (void)s;
    struct rp_port *p = pt_port(RP_PORT_OWNED);
    struct rp_op op;
    rp_op_init(&op);
    op.key = 7;
    struct poster t = {.port = p, .ops = &op, .n = 1, .delay_us = 100000};
    pthread_t tid;
    pthread_create(&tid, NULL, poster_main, &t);
    struct rp_completion c;
    /* Blocks in the kernel until the post wakes it. */
    assert_int_equal(rp_port_get(p, &c, -1), 0);
    assert_ptr_equal(c.op, &op);
    assert_int_equal(c.key, 7);
    pthread_join(tid, NULL);
    struct rp_port_stats st;
    rp_port_get_stats(p, &st);
    printf("wake-ups: %llu\n", (unsigned long long)st.wakeups);
    rp_port_destroy(p);
}

static void owned_port_receives_every_cross_thread_post_once(void **s)
{
    (void)s;
    struct rp_port *p = pt_port(RP_PORT_OWNED);
    enum { THREADS = 2, N = 20000 };
    static struct rp_op ops[THREADS][N];
    static uint8_t seen[THREADS][N];
    memset(seen, 0, sizeof seen);
    struct poster t[THREADS];
    pthread_t tid[THREADS];
    for (int k = 0; k < THREADS; k++) {
        for (int i = 0; i < N; i++) {
            rp_op_init(&ops[k][i]);
            ops[k][i].key = (uint64_t)k;
        }
        t[k] = (struct poster){.port = p, .ops = ops[k], .n = N};
        pthread_create(&tid[k], NULL, poster_main, &t[k]);
    }
    struct rp_completion batch[64];
    for (int got = 0; got < THREADS * N;) {
        int n = rp_port_get_many(p, batch, 64, PT_WAIT_MS);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            assert_true(batch[i].key < THREADS);
            assert_int_equal(seen[batch[i].key][batch[i].res]++, 0);
        }
        got += n;
    }
    for (int k = 0; k < THREADS; k++) {
        void *ret;
        pthread_join(tid[k], &ret);
        assert_null(ret);
    }
    rp_port_destroy(p);
}

int main(int argc, char **argv)
{
    pt_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            routines_run_on_their_submitting_thread_in_shared_mode),
        cmocka_unit_test(routines_run_only_in_the_owners_alertable_wait),
        cmocka_unit_test(event_wait_any_finds_each_of_1000_events),
        cmocka_unit_test(
            op_result_reports_in_progress_then_waits_for_the_result),
        cmocka_unit_test(owned_post_from_another_thread_wakes_a_sleeping_owner),
        cmocka_unit_test(owned_port_receives_every_cross_thread_post_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
