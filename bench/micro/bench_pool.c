/*
 * rp_pool against glibc malloc/free for one object size, three patterns:
 *   pair:   alloc then free at once, one thread (hot cache);
 *   burst:  32 allocs then 32 frees, one thread;
 *   cross:  one thread allocates, another frees (handed over in batches
 *           of 256 through a small ring), ns per object over the run.
 * Rounds are interleaved (pool then malloc, order swapped every round);
 * the table shows medians and the median of the per-round ratios.
 * Run: build-release/bench/bench_pool [rounds]
 */
#include "core/clock.h"
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define OBJ_SIZE 64
#define PAIRS 5000000
#define BURST 32
#define CROSS_OBJECTS 2000000
#define CROSS_BATCH 256
#define CROSS_SLOTS 8
#define ROUNDS_DEFAULT 5

enum alloc_kind { A_POOL, A_MALLOC, ALLOC_KINDS };

static struct rp_pool *pool;
static void *volatile sink; /* keeps the compiler from eliding malloc/free */

static inline void *obj_alloc(enum alloc_kind k)
{
    return k == A_POOL ? rp_pool_alloc(pool) : malloc(OBJ_SIZE);
}

static inline void obj_free(enum alloc_kind k, void *p)
{
    if (k == A_POOL)
        rp_pool_free(pool, p);
    else
        free(p);
}

static double bench_pair(enum alloc_kind k)
{
    int64_t t0 = rp_clock_ns();
    for (int i = 0; i < PAIRS; i++) {
        void *p = obj_alloc(k);
        *(volatile char *)p = (char)i;
        sink = p;
        obj_free(k, p);
    }
    return (double)(rp_clock_ns() - t0) / PAIRS;
}

static double bench_burst(enum alloc_kind k)
{
    void *p[BURST];
    int64_t t0 = rp_clock_ns();
    for (int i = 0; i < PAIRS / BURST; i++) {
        for (int j = 0; j < BURST; j++) {
            p[j] = obj_alloc(k);
            *(volatile char *)p[j] = (char)j;
        }
        sink = p[BURST - 1];
        for (int j = 0; j < BURST; j++)
            obj_free(k, p[j]);
    }
    return (double)(rp_clock_ns() - t0) / (PAIRS / BURST * BURST);
}

/* Hand-over ring for the cross-thread case: slot 'full' flips 0 -> 1 by
   the allocating thread, 1 -> 0 by the freeing one. */
static struct {
    _Alignas(64) atomic_int full;
    void *objs[CROSS_BATCH];
} ring[CROSS_SLOTS];

static void wait_flag(atomic_int *flag, int want)
{
    while (atomic_load_explicit(flag, memory_order_acquire) != want)
        sched_yield();
}

static void *cross_freer(void *arg)
{
    enum alloc_kind k = (enum alloc_kind)(intptr_t)arg;
    for (int b = 0; b < CROSS_OBJECTS / CROSS_BATCH; b++) {
        int s = b % CROSS_SLOTS;
        wait_flag(&ring[s].full, 1);
        for (int i = 0; i < CROSS_BATCH; i++)
            obj_free(k, ring[s].objs[i]);
        atomic_store_explicit(&ring[s].full, 0, memory_order_release);
    }
    return NULL;
}

static double bench_cross(enum alloc_kind k)
{
    pthread_t t;
    int64_t t0 = rp_clock_ns();
    if (pthread_create(&t, NULL, cross_freer, (void *)(intptr_t)k) != 0)
        abort();
    for (int b = 0; b < CROSS_OBJECTS / CROSS_BATCH; b++) {
        int s = b % CROSS_SLOTS;
        wait_flag(&ring[s].full, 0);
        for (int i = 0; i < CROSS_BATCH; i++) {
            void *p = obj_alloc(k);
            if (p == NULL)
                abort();
            *(volatile char *)p = (char)i;
            ring[s].objs[i] = p;
        }
        atomic_store_explicit(&ring[s].full, 1, memory_order_release);
    }
    pthread_join(t, NULL);
    return (double)(rp_clock_ns() - t0) /
           (CROSS_OBJECTS / CROSS_BATCH * CROSS_BATCH);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : ROUNDS_DEFAULT;
    if (rounds < 1 || rounds > 100)
        rounds = ROUNDS_DEFAULT;
    struct rp_pool_config cfg = {
        .name = "bench", .object_size = OBJ_SIZE, .initial = 4096};
    if (rp_pool_create(&cfg, &pool) != 0)
        return 1;

    static const struct {
        const char *name;
        double (*fn)(enum alloc_kind);
    } cases[] = {{"pair, same thread", bench_pair},
                 {"burst of 32, same thread", bench_burst},
                 {"alloc here, free on another thread", bench_cross}};

    printf("## Object pool vs malloc: %d-byte objects, ns per alloc+free, "
           "median of %d interleaved rounds\n\n",
           OBJ_SIZE, rounds);
    printf("%ld CPUs online; the cross-thread case runs both threads at "
           "once.\n\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("| pattern | rp_pool ns | malloc ns | malloc / rp_pool |\n");
    printf("|---|---|---|---|\n");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double ns[ALLOC_KINDS][100], ratio[100];
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i < ALLOC_KINDS; i++) {
                enum alloc_kind k = (enum alloc_kind)((i + r) % ALLOC_KINDS);
                ns[k][r] = cases[c].fn(k);
            }
            ratio[r] = ns[A_MALLOC][r] / ns[A_POOL][r];
        }
        double pool_ns = median(ns[A_POOL], rounds);
        double malloc_ns = median(ns[A_MALLOC], rounds);
        printf("| %s | %.1f | %.1f | %.2f |\n", cases[c].name, pool_ns,
               malloc_ns, median(ratio, rounds));
    }
    printf("\nratio > 1: rp_pool faster (median of per-round ratios).\n");
    rp_pool_destroy(pool);
    return 0;
}
