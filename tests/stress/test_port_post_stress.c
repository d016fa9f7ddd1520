/*
 * 4 threads on one shared port, each posting and taking completions:
 * 1,000,000 posted completions (RP_STRESS_POSTS to change), none lost,
 * none duplicated. Each thread recycles a small pool of ops: an op is
 * posted again only after some thread took its completion. Runs under
 * TSan (make tsan) on the epoll backend.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <ringport/port.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define POOL 256

struct slot {
    struct rp_op op; /* first: a completion's op is the slot */
    atomic_int busy;
};

struct worker {
    struct rp_port *port;
    int id;
    uint32_t per_thread;
    struct slot pool[POOL];
    int error;
};

static atomic_uchar *seen; /* one per (thread, sequence) */
static atomic_uint_fast64_t received;
static uint64_t total;

static void take(struct worker *w, struct rp_completion *c, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t key = c[i].key;
        uint64_t idx = (key >> 32) * w->per_thread + (uint32_t)key;
        if (idx >= total || (uint32_t)c[i].res != (uint32_t)key)
            w->error = 1;
        else if (atomic_fetch_add(&seen[idx], 1) != 0)
            w->error = 2;
        struct slot *s = (struct slot *)c[i].op;
        atomic_store_explicit(&s->busy, 0, memory_order_release);
    }
    atomic_fetch_add(&received, (uint64_t)n);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct rp_completion batch[32];
    uint32_t next = 0;
    int cursor = 0;
    while (atomic_load(&received) < total && !w->error) {
        /* Post while our pool has free ops. */
        int posted = 0;
        while (next < w->per_thread && posted < POOL) {
            struct slot *s = &w->pool[cursor];
            if (atomic_load_explicit(&s->busy, memory_order_acquire))
                break;
            atomic_store(&s->busy, 1);
            s->op.key = ((uint64_t)w->id << 32) | next;
            if (rp_port_post(w->port, &s->op, (int32_t)next) != 0) {
                w->error = 3;
                break;
            }
            next++;
            posted++;
            cursor = (cursor + 1) % POOL;
        }
        int n = rp_port_get_many(w->port, batch, 32, posted ? 0 : 100);
        if (n > 0)
            take(w, batch, n);
    }
    return NULL;
}

static void posted_completions_are_delivered_exactly_once(void **state)
{
    (void)state;
    const char *env = getenv("RP_STRESS_POSTS");
    uint32_t per_thread =
        (uint32_t)((env ? strtoull(env, NULL, 0) : 1000000ull) / THREADS);
    total = (uint64_t)per_thread * THREADS;
    seen = calloc(total, 1);
    assert_non_null(seen);
    struct rp_port_config cfg = {0}; /* shared; backend from the env */
    struct rp_port *p;
    int r = rp_port_create(&cfg, &p);
    if (r == -EPERM || r == -ENOSYS || r == -ENOMEM)
        exit(77); /* the uring run on a kernel that refuses io_uring */
    assert_int_equal(r, 0);
    static struct worker w[THREADS];
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].port = p;
        w[i].id = i;
        w[i].per_thread = per_thread;
        for (int k = 0; k < POOL; k++)
            rp_op_init(&w[i].pool[k].op);
        pthread_create(&tid[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(tid[i], NULL);
        assert_int_equal(w[i].error, 0);
    }
    assert_int_equal(atomic_load(&received), total);
    for (uint64_t i = 0; i < total; i++)
        assert_int_equal(atomic_load(&seen[i]), 1);
    struct rp_port_stats st;
    rp_port_get_stats(p, &st);
    assert_int_equal(st.posted, total);
    assert_int_equal(st.completed, total);
    struct rp_completion c;
    assert_int_equal(rp_port_get(p, &c, 0), -ETIMEDOUT);
    rp_port_destroy(p);
    free(seen);
}

int main(int argc, char **argv)
{
    (void)t_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(posted_completions_are_delivered_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
