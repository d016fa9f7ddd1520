/*
 * MPSC queue throughput: rp_mpsc next to liburcu's wfcqueue and Concurrency
 * Kit's ck_fifo_mpmc. P producer threads push ITEMS nodes in total; the
 * main thread is the single consumer and pops them all. Time runs from the
 * start signal to the last pop. Every queue gets the same harness: nodes
 * preallocated, the consumer spins (pause) and then yields when it finds
 * the queue empty. Runs are interleaved (the order rotates each round);
 * the table shows medians and the median of the per-round ratios.
 *
 * liburcu is called through its library functions (no _LGPL_SOURCE), as
 * rp_mpsc is called through libringport: one call per operation on both.
 * Run: build-release/bench/bench_mpsc [rounds]
 */
#include "core/clock.h"
#include "core/mpsc.h"

#include <ck_fifo.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <urcu/wfcqueue.h>

#define ITEMS 2000000
#define ROUNDS_DEFAULT 7
#define MAX_PRODUCERS 3

enum kind { Q_RP, Q_URCU, Q_CK, KINDS };
static const char *const kind_names[KINDS] = {"rp_mpsc", "urcu wfcqueue",
                                              "ck_fifo_mpmc"};

struct rp_item {
    struct rp_mpsc_node node;
    uint64_t value;
};

struct urcu_item {
    struct cds_wfcq_node node;
    uint64_t value;
};

static struct {
    struct rp_mpsc rp;
    struct __cds_wfcq_head urcu_head;
    struct cds_wfcq_tail urcu_tail;
    struct ck_fifo_mpmc ck;
    struct ck_fifo_mpmc_entry ck_stub;
} q;

static struct rp_item *rp_items;
static struct urcu_item *urcu_items;
static struct ck_fifo_mpmc_entry *ck_entries;
static uint64_t ck_values[ITEMS];

struct producer {
    pthread_t thread;
    enum kind kind;
    size_t first, count;
    atomic_int *go;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    while (!atomic_load_explicit(p->go, memory_order_acquire))
        sched_yield();
    size_t end = p->first + p->count;
    switch (p->kind) {
    case Q_RP:
        for (size_t i = p->first; i < end; i++) {
            rp_items[i].value = i;
            rp_mpsc_push(&q.rp, &rp_items[i].node);
        }
        break;
    case Q_URCU:
        for (size_t i = p->first; i < end; i++) {
            urcu_items[i].value = i;
            cds_wfcq_node_init(&urcu_items[i].node);
            cds_wfcq_enqueue(&q.urcu_head, &q.urcu_tail, &urcu_items[i].node);
        }
        break;
    case Q_CK:
        for (size_t i = p->first; i < end; i++) {
            ck_values[i] = i;
            ck_fifo_mpmc_enqueue(&q.ck, &ck_entries[i], &ck_values[i]);
        }
        break;
    default: break;
    }
    return NULL;
}

/* Pops one item; returns false when the queue is empty. */
static inline bool consume_one(enum kind kind, uint64_t *sum)
{
    switch (kind) {
    case Q_RP: {
        struct rp_mpsc_node *n = rp_mpsc_pop(&q.rp);
        if (n == NULL)
            return false;
        *sum += ((struct rp_item *)n)->value;
        return true;
    }
    case Q_URCU: {
        struct cds_wfcq_node *n =
            __cds_wfcq_dequeue_blocking(&q.urcu_head, &q.urcu_tail);
        if (n == NULL)
            return false;
        *sum += ((struct urcu_item *)n)->value;
        return true;
    }
    case Q_CK: {
        uint64_t *v;
        struct ck_fifo_mpmc_entry *garbage;
        if (!ck_fifo_mpmc_dequeue(&q.ck, &v, &garbage))
            return false;
        *sum += *v;
        return true;
    }
    default: return false;
    }
}

/* One timed run; returns items per second. */
static double run_once(enum kind kind, int nprod)
{
    struct producer p[MAX_PRODUCERS];
    atomic_int go = 0;
    uint64_t sum = 0;

    rp_mpsc_init(&q.rp);
    __cds_wfcq_init(&q.urcu_head, &q.urcu_tail);
    ck_fifo_mpmc_init(&q.ck, &q.ck_stub);
    for (int i = 0; i < nprod; i++) {
        size_t share = ITEMS / (size_t)nprod;
        p[i] = (struct producer){
            .kind = kind,
            .first = share * (size_t)i,
            .count = i == nprod - 1 ? ITEMS - share * (size_t)i : share,
            .go = &go};
        if (pthread_create(&p[i].thread, NULL, producer_main, &p[i]) != 0)
            abort();
    }
    int64_t t0 = rp_clock_ns();
    atomic_store_explicit(&go, 1, memory_order_release);
    for (size_t got = 0; got < ITEMS;) {
        if (consume_one(kind, &sum)) {
            got++;
            continue;
        }
        for (int i = 0; i < 32; i++)
            cpu_relax();
        sched_yield();
    }
    int64_t t1 = rp_clock_ns();
    for (int i = 0; i < nprod; i++)
        pthread_join(p[i].thread, NULL);
    if (sum != (uint64_t)ITEMS * (ITEMS - 1) / 2) {
        fprintf(stderr, "bench_mpsc: %s lost items\n", kind_names[kind]);
        exit(1);
    }
    return (double)ITEMS / ((double)(t1 - t0) / 1e9);
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
    rp_items = calloc(ITEMS, sizeof *rp_items);
    urcu_items = calloc(ITEMS, sizeof *urcu_items);
    ck_entries = calloc(ITEMS, sizeof *ck_entries);
    if (rp_items == NULL || urcu_items == NULL || ck_entries == NULL)
        return 1;

    static const int producer_counts[] = {1, 3};
    printf("## MPSC queue: %d items, P producers -> 1 consumer, median of %d "
           "interleaved rounds\n\n",
           ITEMS, rounds);
    printf("%ld CPUs online: with 3 producers + 1 consumer the threads "
           "outnumber the CPUs, so that row measures behaviour under "
           "preemption more than raw speed.\n\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("| producers | rp_mpsc Mops/s | urcu wfcqueue Mops/s | "
           "ck_fifo_mpmc Mops/s | rp / urcu | rp / ck |\n");
    printf("|---|---|---|---|---|---|\n");
    for (size_t c = 0; c < 2; c++) {
        int nprod = producer_counts[c];
        double rate[KINDS][100], ratio_urcu[100], ratio_ck[100];
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < KINDS; k++) {
                enum kind kind = (enum kind)((k + r) % KINDS);
                rate[kind][r] = run_once(kind, nprod);
            }
            ratio_urcu[r] = rate[Q_RP][r] / rate[Q_URCU][r];
            ratio_ck[r] = rate[Q_RP][r] / rate[Q_CK][r];
        }
        double med[KINDS];
        for (int k = 0; k < KINDS; k++)
            med[k] = median(rate[k], rounds);
        printf("| %d | %.1f | %.1f | %.1f | %.2f | %.2f |\n", nprod,
               med[Q_RP] / 1e6, med[Q_URCU] / 1e6, med[Q_CK] / 1e6,
               median(ratio_urcu, rounds), median(ratio_ck, rounds));
    }
    printf("\nratio > 1: rp_mpsc faster (median of per-round ratios).\n");
    free(rp_items);
    free(urcu_items);
    free(ck_entries);
    return 0;
}
