/*
 * rp_pool across threads: allocator threads take objects, stamp them and
 * pass them through an rp_mpsc queue to a freer thread, which checks the
 * stamp and frees them, so nearly every object is freed on a thread that
 * did not allocate it. The cap is small, so caches, the shared list and
 * the cap all come into play. The stamps are plain (non-atomic) fields on
 * purpose: if the pool ever handed an object to a second thread without a
 * happens-before edge from its last free, ThreadSanitizer reports the race,
 * and a double hand-out shows as a busy object. Threads exit with cached
 * objects; afterwards every object must be reachable again.
 */
#include "helpers.h"

#include "core/mpsc.h"
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define QUEUES 2
#define ALLOCATORS_PER_QUEUE 2
#define ALLOCATORS (QUEUES * ALLOCATORS_PER_QUEUE)
#define MESSAGES 250000 /* per allocator */
#define MAX_OBJECTS 2048
#define PAYLOAD 40

struct msg {
    struct rp_mpsc_node node; /* first: a node pointer is a msg pointer */
    uint32_t busy;            /* 1 while lent to the test */
    uint32_t owner;           /* allocator index */
    uint64_t seq;
    uint8_t payload[PAYLOAD];
};

struct lane {
    struct rp_mpsc q;
    struct rp_mpsc_node done[ALLOCATORS_PER_QUEUE]; /* end markers */
};

struct stress {
    struct rp_pool *pool;
    struct lane lanes[QUEUES];
    atomic_ulong errors;
    atomic_ulong alloc_waits; /* allocs that found the pool at its cap */
};

struct allocator {
    pthread_t thread;
    struct stress *s;
    uint32_t index;
};

struct freer {
    pthread_t thread;
    struct stress *s;
    uint32_t lane;
};

static void *allocator_main(void *arg)
{
    struct allocator *a = arg;
    struct stress *s = a->s;
    struct lane *lane = &s->lanes[a->index / ALLOCATORS_PER_QUEUE];
    unsigned long waits = 0, errors = 0;

    for (uint64_t seq = 0; seq < MESSAGES; seq++) {
        struct msg *m;
        /* At the cap, the freer is behind: let it run. */
        while ((m = rp_pool_alloc(s->pool)) == NULL) {
            waits++;
            sched_yield();
        }
        if (m->busy != 0)
            errors++;
        m->busy = 1;
        m->owner = a->index;
        m->seq = seq;
        memset(m->payload, (int)(seq * 31 + a->index), PAYLOAD);
        rp_mpsc_push(&lane->q, &m->node);
    }
    rp_mpsc_push(&lane->q, &lane->done[a->index % ALLOCATORS_PER_QUEUE]);
    atomic_fetch_add(&s->errors, errors);
    atomic_fetch_add(&s->alloc_waits, waits);
    return NULL; /* exits with whatever its cache took last */
}

static bool is_done_marker(struct lane *lane, struct rp_mpsc_node *n)
{
    return n >= &lane->done[0] && n < &lane->done[ALLOCATORS_PER_QUEUE];
}

static void *freer_main(void *arg)
{
    struct freer *f = arg;
    struct stress *s = f->s;
    struct lane *lane = &s->lanes[f->lane];
    uint64_t next_seq[ALLOCATORS] = {0};
    unsigned done = 0;
    unsigned long errors = 0;

    while (done < ALLOCATORS_PER_QUEUE) {
        struct rp_mpsc_node *n = rp_mpsc_pop(&lane->q);
        if (n == NULL) {
            sched_yield();
            continue;
        }
        if (is_done_marker(lane, n)) {
            done++;
            continue;
        }
        struct msg *m = (struct msg *)n;
        uint8_t want = (uint8_t)(m->seq * 31 + m->owner);
        if (m->busy != 1 || m->owner >= ALLOCATORS ||
            m->seq != next_seq[m->owner])
            errors++;
        else
            next_seq[m->owner]++;
        for (int i = 0; i < PAYLOAD; i++)
            if (m->payload[i] != want) {
                errors++;
                break;
            }
        uint64_t seq = m->seq;
        m->busy = 0;
        rp_pool_free(s->pool, m);
        /* Now and then allocate here too, so this cache runs both ways. */
        if ((seq & 63) == 0) {
            struct msg *own = rp_pool_alloc(s->pool);
            if (own != NULL) {
                if (own->busy != 0)
                    errors++;
                rp_pool_free(s->pool, own);
            }
        }
    }
    for (uint32_t i = 0; i < ALLOCATORS_PER_QUEUE; i++)
        if (next_seq[f->lane * ALLOCATORS_PER_QUEUE + i] != MESSAGES)
            errors++;
    atomic_fetch_add(&s->errors, errors);
    return NULL; /* exits with a full cache */
}

static void run_round(struct stress *s)
{
    struct allocator a[ALLOCATORS];
    struct freer f[QUEUES];

    for (uint32_t i = 0; i < QUEUES; i++) {
        rp_mpsc_init(&s->lanes[i].q);
        f[i] = (struct freer){.s = s, .lane = i};
        assert_int_equal(pthread_create(&f[i].thread, NULL, freer_main, &f[i]),
                         0);
    }
    for (uint32_t i = 0; i < ALLOCATORS; i++) {
        a[i] = (struct allocator){.s = s, .index = i};
        assert_int_equal(
            pthread_create(&a[i].thread, NULL, allocator_main, &a[i]), 0);
    }
    for (uint32_t i = 0; i < ALLOCATORS; i++)
        assert_int_equal(pthread_join(a[i].thread, NULL), 0);
    for (uint32_t i = 0; i < QUEUES; i++)
        assert_int_equal(pthread_join(f[i].thread, NULL), 0);
}

/* Pool memory starts undefined: lend out every object once to clear its
   busy flag, so the checks below read only values the test wrote. */
static void prime(struct rp_pool *pool)
{
    static struct msg *all[MAX_OBJECTS];
    for (int i = 0; i < MAX_OBJECTS; i++) {
        all[i] = rp_pool_alloc(pool);
        assert_non_null(all[i]);
        all[i]->busy = 0;
    }
    assert_null(rp_pool_alloc(pool));
    for (int i = 0; i < MAX_OBJECTS; i++)
        rp_pool_free(pool, all[i]);
}

static void pool_survives_cross_thread_free_and_threads_exiting(void **state)
{
    (void)state;
    static struct stress s; /* the lanes are large-ish and 64-aligned */
    struct rp_pool_config cfg = {.name = "stress",
                                 .object_size = sizeof(struct msg),
                                 .initial = 256,
                                 .max_objects = MAX_OBJECTS};

    for (int round = 0; round < 2; round++) {
        /* A fresh pool each round: the second takes the slot the first
           had, while nothing of the first is left but dead ids. */
        assert_int_equal(rp_pool_create(&cfg, &s.pool), 0);
        atomic_store(&s.errors, 0);
        atomic_store(&s.alloc_waits, 0);
        prime(s.pool);
        run_round(&s);
        assert_int_equal(atomic_load(&s.errors), 0);

        struct rp_pool_stats st;
        rp_pool_get_stats(s.pool, &st);
        assert_int_equal(st.in_use, 0);
        assert_true(st.allocs >= (uint64_t)ALLOCATORS * MESSAGES);
        assert_true(st.capacity <= MAX_OBJECTS);
        printf("pool: round %d, %llu allocs, %llu at the cap, capacity %zu\n",
               round, (unsigned long long)st.allocs,
               (unsigned long long)st.fails, st.capacity);

        /* Every object, including those cached by the exited threads, can
           be lent out again, and each exactly once. */
        static struct msg *all[MAX_OBJECTS];
        for (int i = 0; i < MAX_OBJECTS; i++) {
            all[i] = rp_pool_alloc(s.pool);
            assert_non_null(all[i]);
            assert_int_equal(all[i]->busy, 0);
            all[i]->busy = 1;
        }
        assert_null(rp_pool_alloc(s.pool));
        for (int i = 0; i < MAX_OBJECTS; i++) {
            all[i]->busy = 0;
            rp_pool_free(s.pool, all[i]);
        }
        rp_pool_destroy(s.pool);
    }
}

int main(int argc, char **argv)
{
    (void)t_backend(argc, argv); /* the pool does not use a backend */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_survives_cross_thread_free_and_threads_exiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
