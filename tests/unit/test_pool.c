/* rp_pool: cap and fail counting, reuse, alignment, stats, per-thread
   caches across thread exit and pool destroy, config checks. */
#include "helpers.h"

#include "core/pool.h"
#include <ringport/log.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct rp_pool *make_pool(size_t size, size_t initial, size_t max,
                                 unsigned cache)
{
    struct rp_pool_config cfg = {.name = "test",
                                 .object_size = size,
                                 .initial = initial,
                                 .max_objects = max,
                                 .cache_size = cache};
    struct rp_pool *pool = NULL;
    assert_int_equal(rp_pool_create(&cfg, &pool), 0);
    assert_non_null(pool);
    return pool;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a;
    uintptr_t y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void pool_returns_null_at_its_cap_and_counts_fails(void **state)
{
    (void)state;
    enum { CAP = 200 };
    struct rp_pool *pool = make_pool(48, 0, CAP, 0);
    void *objs[CAP];
    for (int i = 0; i < CAP; i++) {
        objs[i] = rp_pool_alloc(pool);
        assert_non_null(objs[i]);
    }
    assert_null(rp_pool_alloc(pool));
    assert_null(rp_pool_alloc(pool));

    struct rp_pool_stats st;
    rp_pool_get_stats(pool, &st);
    assert_int_equal(st.capacity, CAP);
    assert_int_equal(st.in_use, CAP);
    assert_int_equal(st.allocs, CAP);
    assert_int_equal(st.fails, 2);

    qsort(objs, CAP, sizeof objs[0], cmp_ptr);
    for (int i = 1; i < CAP; i++)
        assert_true(objs[i] != objs[i - 1]);
    for (int i = 0; i < CAP; i++)
        rp_pool_free(pool, objs[i]);
    rp_pool_destroy(pool);
}

static void pool_hands_out_freed_objects_again(void **state)
{
    (void)state;
    enum { CAP = 64 };
    struct rp_pool *pool = make_pool(32, CAP, CAP, 0);
    void *objs[CAP];
    for (int i = 0; i < CAP; i++)
        assert_non_null(objs[i] = rp_pool_alloc(pool));
    assert_null(rp_pool_alloc(pool));

    rp_pool_free(pool, objs[17]);
    void *again = rp_pool_alloc(pool);
    assert_ptr_equal(again, objs[17]);
    assert_null(rp_pool_alloc(pool));

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < CAP; i++)
            rp_pool_free(pool, objs[i]);
        for (int i = 0; i < CAP; i++)
            assert_non_null(objs[i] = rp_pool_alloc(pool));
        assert_null(rp_pool_alloc(pool));
    }
    struct rp_pool_stats st;
    rp_pool_get_stats(pool, &st);
    assert_int_equal(st.capacity, CAP); /* no growth past the cap */
    assert_int_equal(st.in_use, CAP);
    for (int i = 0; i < CAP; i++)
        rp_pool_free(pool, objs[i]);
    rp_pool_destroy(pool);
}

static void pool_objects_are_aligned_to_16_and_never_overlap(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 7, 16, 17, 33, 100, 1000};
    enum { N = 300 };
    void *objs[N];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t size = sizes[s];
        struct rp_pool *pool = make_pool(size, 10, 0, 8);
        for (int i = 0; i < N; i++) {
            objs[i] = rp_pool_alloc(pool);
            assert_non_null(objs[i]);
            assert_int_equal((uintptr_t)objs[i] % 16, 0);
            memset(objs[i], 0xA5, size); /* ASan checks the bounds */
        }
        qsort(objs, N, sizeof objs[0], cmp_ptr);
        for (int i = 1; i < N; i++)
            assert_true((uintptr_t)objs[i] - (uintptr_t)objs[i - 1] >= size);
        for (int i = 0; i < N; i++)
            rp_pool_free(pool, objs[i]);
        rp_pool_destroy(pool);
    }
}

static void pool_stats_follow_allocs_frees_and_growth(void **state)
{
    (void)state;
    struct rp_pool *pool = make_pool(64, 10, 0, 4);
    struct rp_pool_stats st;
    rp_pool_get_stats(pool, &st);
    assert_int_equal(st.capacity, 10);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.allocs, 0);
    assert_int_equal(st.fails, 0);

    void *a = rp_pool_alloc(pool);
    void *b = rp_pool_alloc(pool);
    void *c = rp_pool_alloc(pool);
    rp_pool_free(pool, b);
    rp_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 2);
    assert_int_equal(st.allocs, 3);

    /* Uncapped: grows past 'initial' as needed. */
    enum { MANY = 1000 };
    void **objs = malloc(MANY * sizeof *objs);
    assert_non_null(objs);
    for (int i = 0; i < MANY; i++)
        assert_non_null(objs[i] = rp_pool_alloc(pool));
    rp_pool_get_stats(pool, &st);
    assert_true(st.capacity >= MANY + 2);
    assert_int_equal(st.in_use, MANY + 2);
    assert_int_equal(st.allocs, MANY + 3);
    for (int i = 0; i < MANY; i++)
        rp_pool_free(pool, objs[i]);
    rp_pool_free(pool, a);
    rp_pool_free(pool, c);
    rp_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.fails, 0);
    free(objs);
    rp_pool_destroy(pool);
}

static void
pool_destroy_is_safe_with_objects_in_this_threads_cache(void **state)
{
    (void)state;
    enum { N = 40 };
    void *objs[N];
    for (int round = 0; round < 3; round++) {
        struct rp_pool *pool = make_pool(24, 0, 0, 64);
        for (int i = 0; i < N; i++)
            assert_non_null(objs[i] = rp_pool_alloc(pool));
        for (int i = 0; i < N; i++)
            rp_pool_free(pool, objs[i]); /* all land in our cache */
        rp_pool_destroy(pool);
        /* The next pool likely takes the same slot: it must start with an
           empty cache, not the dead pool's pointers. */
    }
    struct rp_pool *pool = make_pool(24, 0, 8 * 4, 0);
    for (int i = 0; i < 32; i++)
        assert_non_null(objs[i] = rp_pool_alloc(pool));
    assert_null(rp_pool_alloc(pool));
    for (int i = 0; i < 32; i++)
        rp_pool_free(pool, objs[i]);
    rp_pool_destroy(pool);
}

static void pool_rejects_invalid_config(void **state)
{
    (void)state;
    struct rp_pool *pool = NULL;
    struct rp_pool_config ok = {.object_size = 16, .max_objects = 10};
    struct rp_pool_config cfg;

    assert_int_equal(rp_pool_create(NULL, &pool), -EINVAL);
    assert_int_equal(rp_pool_create(&ok, NULL), -EINVAL);
    cfg = ok;
    cfg.object_size = 0;
    assert_int_equal(rp_pool_create(&cfg, &pool), -EINVAL);
    cfg = ok;
    cfg.object_size = SIZE_MAX;
    assert_int_equal(rp_pool_create(&cfg, &pool), -EINVAL);
    cfg = ok;
    cfg.initial = 11; /* above max_objects */
    assert_int_equal(rp_pool_create(&cfg, &pool), -EINVAL);
    cfg = ok;
    cfg.cache_size = 1u << 20;
    assert_int_equal(rp_pool_create(&cfg, &pool), -EINVAL);
    assert_null(pool);
}

static void pool_beyond_the_cached_slots_still_works(void **state)
{
    (void)state;
    enum { POOLS = 40 }; /* more than the thread tables have slots */
    struct rp_pool *pools[POOLS];
    void *objs[POOLS][3];
    rp_log_set_level(RP_LOG_ERROR); /* one warning per uncached pool */
    for (int i = 0; i < POOLS; i++)
        pools[i] = make_pool(32 + (size_t)i, 0, 0, 0);
    rp_log_set_level(RP_LOG_INFO);
    for (int i = 0; i < POOLS; i++)
        for (int j = 0; j < 3; j++)
            assert_non_null(objs[i][j] = rp_pool_alloc(pools[i]));
    for (int i = 0; i < POOLS; i++) {
        struct rp_pool_stats st;
        for (int j = 0; j < 3; j++)
            rp_pool_free(pools[i], objs[i][j]);
        rp_pool_get_stats(pools[i], &st);
        assert_int_equal(st.in_use, 0);
        assert_int_equal(st.allocs, 3);
    }
    for (int i = 0; i < POOLS; i++)
        rp_pool_destroy(pools[i]);
}

/* ---- other threads ------------------------------------------------------ */

enum { XCAP = 256 }; /* cache_cap becomes XCAP / 8 = 32 */

struct xthread {
    struct rp_pool *pool;
    void **objs;
    int n;
};

static void *free_all_then_exit(void *arg)
{
    struct xthread *x = arg;
    for (int i = 0; i < x->n; i++)
        rp_pool_free(x->pool, x->objs[i]);
    return NULL; /* exits with a full cache */
}

static void pool_gets_cached_objects_back_when_a_thread_exits(void **state)
{
    (void)state;
    struct rp_pool *pool = make_pool(40, 0, XCAP, 0);
    void *objs[XCAP];
    for (int i = 0; i < XCAP; i++)
        assert_non_null(objs[i] = rp_pool_alloc(pool));

    struct xthread x = {.pool = pool, .objs = objs, .n = XCAP};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_all_then_exit, &x), 0);
    assert_int_equal(pthread_join(t, NULL), 0);

    struct rp_pool_stats st;
    rp_pool_get_stats(pool, &st);
    assert_int_equal(st.in_use, 0);
    /* Every object is reachable again, including the ones that sat in
       the exited thread's cache. */
    for (int i = 0; i < XCAP; i++)
        assert_non_null(objs[i] = rp_pool_alloc(pool));
    assert_null(rp_pool_alloc(pool));
    for (int i = 0; i < XCAP; i++)
        rp_pool_free(pool, objs[i]);
    rp_pool_destroy(pool);
}

struct lingerer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int step;             /* 1: cache filled, 2: pool replaced */
    struct rp_pool *pool; /* the pool to use at this step */
};

static void lingerer_wait(struct lingerer *l, int step)
{
    pthread_mutex_lock(&l->lock);
    while (l->step < step)
        pthread_cond_wait(&l->cond, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

static void lingerer_advance(struct lingerer *l, int step, struct rp_pool *p)
{
    pthread_mutex_lock(&l->lock);
    l->step = step;
    if (p != NULL)
        l->pool = p;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
}

static int churn(struct rp_pool *pool)
{
    void *objs[20];
    for (int i = 0; i < 20; i++)
        if ((objs[i] = rp_pool_alloc(pool)) == NULL)
            return -1;
    for (int i = 0; i < 20; i++)
        rp_pool_free(pool, objs[i]);
    return 0;
}

enum { NEXT_CAP = 128 }; /* cache_cap becomes 16 */

/* Allocates from 'pool' until NULL; returns how many it got, all distinct,
   or -1. Frees them all again. */
static int drain_count(struct rp_pool *pool)
{
    static void *objs[NEXT_CAP + 64];
    int n = 0;
    while (n < NEXT_CAP + 64 && (objs[n] = rp_pool_alloc(pool)) != NULL)
        n++;
    qsort(objs, (size_t)n, sizeof objs[0], cmp_ptr);
    for (int i = 1; i < n; i++)
        if (objs[i] == objs[i - 1])
            n = -1;
    for (int i = 0; i < (n < 0 ? 0 : n); i++)
        rp_pool_free(pool, objs[i]);
    return n;
}

static void *lingerer_main(void *arg)
{
    struct lingerer *l = arg;
    pthread_mutex_lock(&l->lock);
    struct rp_pool *pool = l->pool;
    pthread_mutex_unlock(&l->lock);
    int rc = churn(pool); /* leaves objects in this thread's cache */
    lingerer_advance(l, 1, NULL);
    lingerer_wait(l, 2);
    pthread_mutex_lock(&l->lock);
    pool = l->pool;
    pthread_mutex_unlock(&l->lock);
    /* Same slot (and often the same address), new pool: the stale cache
       must be dropped, so exactly the new pool's cap comes out. */
    if (rc == 0)
        rc = drain_count(pool);
    return (void *)(intptr_t)rc;
}

static void pool_destroy_is_safe_while_other_threads_hold_caches(void **state)
{
    (void)state;
    struct lingerer l = {.lock = PTHREAD_MUTEX_INITIALIZER,
                         .cond = PTHREAD_COND_INITIALIZER};
    l.pool = make_pool(64, 0, 0, 16);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, lingerer_main, &l), 0);
    lingerer_wait(&l, 1);
    rp_pool_destroy(l.pool); /* the thread still caches its objects */

    struct rp_pool *next = make_pool(64, 0, NEXT_CAP, 0);
    lingerer_advance(&l, 2, next);
    void *rc;
    assert_int_equal(pthread_join(t, &rc), 0);
    assert_int_equal((intptr_t)rc, NEXT_CAP);

    struct rp_pool_stats st;
    rp_pool_get_stats(next, &st);
    assert_int_equal(st.in_use, 0);
    assert_int_equal(st.allocs, NEXT_CAP);
    assert_int_equal(st.fails, 1);
    rp_pool_destroy(next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_returns_null_at_its_cap_and_counts_fails),
        cmocka_unit_test(pool_hands_out_freed_objects_again),
        cmocka_unit_test(pool_objects_are_aligned_to_16_and_never_overlap),
        cmocka_unit_test(pool_stats_follow_allocs_frees_and_growth),
        cmocka_unit_test(
            pool_destroy_is_safe_with_objects_in_this_threads_cache),
        cmocka_unit_test(pool_rejects_invalid_config),
        cmocka_unit_test(pool_beyond_the_cached_slots_still_works),
        cmocka_unit_test(pool_gets_cached_objects_back_when_a_thread_exits),
        cmocka_unit_test(pool_destroy_is_safe_while_other_threads_hold_caches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
