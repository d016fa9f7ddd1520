/*
 * rp_mpsc under contention: many producers, one consumer. Every item
 * carries its producer and a sequence number, so the consumer can check
 * that nothing is lost or duplicated and that each producer's order holds.
 * A second test parks the consumer on an eventfd and wakes it only when
 * a push reports the queue was empty: a lost wake-up leaves it asleep.
 */
#include "helpers.h"

#include "core/mpsc.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define PRODUCERS 4

/*
 * The figure: 4 x 1,000,000. Measured under ThreadSanitizer on the
 * 2-CPU box: about 7 s for the whole program, so TSan runs the full size
 * too. RP_MPSC_ITEMS=N overrides it (items per producer) for quick runs.
 */
#define ITEMS_DEFAULT 1000000

struct item {
    struct rp_mpsc_node node; /* first: a node pointer is an item pointer */
    uint32_t producer;
    uint32_t seq;
};

struct producer {
    pthread_t thread;
    struct rp_mpsc *q;
    struct item *items;
    uint32_t id;
    uint32_t count;
    int wake_fd;              /* -1: do not wake anybody */
    uint64_t seed;            /* for the pauses in the wake-up test */
    atomic_uint *go;          /* all producers start together */
    atomic_ulong *true_count; /* pushes that reported an empty queue */
};

static uint32_t items_per_producer(void)
{
    const char *env = getenv("RP_MPSC_ITEMS");
    long n = env ? strtol(env, NULL, 10) : ITEMS_DEFAULT;
    return n > 0 ? (uint32_t)n : ITEMS_DEFAULT;
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    while (atomic_load_explicit(p->go, memory_order_acquire) == 0)
        sched_yield();
    unsigned long trues = 0;
    for (uint32_t i = 0; i < p->count; i++) {
        struct item *it = &p->items[i];
        it->producer = p->id;
        it->seq = i;
        if (rp_mpsc_push(p->q, &it->node)) {
            trues++;
            if (p->wake_fd >= 0) {
                uint64_t one = 1;
                if (write(p->wake_fd, &one, sizeof one) != sizeof one)
                    abort();
            }
        }
        /* In the wake-up test, let the consumer drain and sleep often. */
        if (p->wake_fd >= 0 && t_rand(&p->seed) % 64 == 0)
            sched_yield();
    }
    atomic_fetch_add(p->true_count, trues);
    return NULL;
}

/* Checks one popped item against the next sequence number expected from
   its producer. */
static void consume(struct rp_mpsc_node *n, uint32_t *next_seq,
                    unsigned nproducers)
{
    struct item *it = (struct item *)n;
    assert_true(it->producer < nproducers);
    assert_int_equal(it->seq, next_seq[it->producer]);
    next_seq[it->producer]++;
}

static void start_producers(struct producer *p, unsigned n, struct rp_mpsc *q,
                            uint32_t count, int wake_fd, atomic_uint *go,
                            atomic_ulong *trues)
{
    uint64_t seed = t_seed();
    for (unsigned i = 0; i < n; i++) {
        p[i] = (struct producer){.q = q,
                                 .id = i,
                                 .count = count,
                                 .wake_fd = wake_fd,
                                 .seed = seed + i,
                                 .go = go,
                                 .true_count = trues};
        p[i].items = malloc(count * sizeof *p[i].items);
        assert_non_null(p[i].items);
        assert_int_equal(
            pthread_create(&p[i].thread, NULL, producer_main, &p[i]), 0);
    }
    atomic_store_explicit(go, 1, memory_order_release);
}

static void join_producers(struct producer *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(pthread_join(p[i].thread, NULL), 0);
        free(p[i].items);
    }
}

static void mpsc_single_thread_is_fifo_and_reports_empty(void **state)
{
    (void)state;
    struct rp_mpsc q;
    struct item it[3];
    rp_mpsc_init(&q);
    assert_true(rp_mpsc_empty(&q));
    assert_null(rp_mpsc_pop(&q));
    assert_true(rp_mpsc_push(&q, &it[0].node));
    assert_false(rp_mpsc_push(&q, &it[1].node));
    assert_false(rp_mpsc_empty(&q));
    assert_ptr_equal(rp_mpsc_pop(&q), &it[0].node);
    assert_false(rp_mpsc_push(&q, &it[2].node));
    assert_ptr_equal(rp_mpsc_pop(&q), &it[1].node);
    assert_ptr_equal(rp_mpsc_pop(&q), &it[2].node);
    assert_null(rp_mpsc_pop(&q));
    assert_true(rp_mpsc_empty(&q));
    /* Emptied: the next push is the one that must wake the consumer, and
       a popped node may be pushed again. */
    assert_true(rp_mpsc_push(&q, &it[0].node));
    assert_ptr_equal(rp_mpsc_pop(&q), &it[0].node);
    assert_null(rp_mpsc_pop(&q));
}

static void mpsc_four_producers_lose_nothing_and_keep_their_order(void **state)
{
    (void)state;
    static struct rp_mpsc q;
    struct producer p[PRODUCERS];
    uint32_t next_seq[PRODUCERS] = {0};
    atomic_uint go = 0;
    atomic_ulong trues = 0;
    uint32_t count = items_per_producer();
    uint64_t total = (uint64_t)count * PRODUCERS;

    rp_mpsc_init(&q);
    start_producers(p, PRODUCERS, &q, count, -1, &go, &trues);
    for (uint64_t got = 0; got < total;) {
        struct rp_mpsc_node *n = rp_mpsc_pop(&q);
        if (n == NULL) {
            sched_yield();
            continue;
        }
        consume(n, next_seq, PRODUCERS);
        got++;
    }
    join_producers(p, PRODUCERS);
    assert_null(rp_mpsc_pop(&q));
    assert_true(rp_mpsc_empty(&q));
    for (unsigned i = 0; i < PRODUCERS; i++)
        assert_int_equal(next_seq[i], count);
    assert_true(atomic_load(&trues) >= 1);
    printf("mpsc: %u x %u items, %lu pushes found it empty\n", PRODUCERS, count,
           atomic_load(&trues));
}

/*
 * The consumer drains until pop returns NULL, then blocks on the eventfd.
 * Producers write it only when push returns true. If any item could be
 * queued without a wake-up after the consumer saw empty, the consumer
 * would sleep with work pending: the poll below is a deadlock guard that
 * turns such a hang into a failure rather than a CTest timeout.
 */
static void mpsc_consumer_woken_by_was_empty_never_sleeps_on_work(void **state)
{
    (void)state;
    static struct rp_mpsc q;
    enum { WAKE_PRODUCERS = 3 };
    struct producer p[WAKE_PRODUCERS];
    uint32_t next_seq[WAKE_PRODUCERS] = {0};
    atomic_uint go = 0;
    atomic_ulong trues = 0;
    uint32_t count = items_per_producer() / 5;
    uint64_t total = (uint64_t)count * WAKE_PRODUCERS;
    unsigned long sleeps = 0;
    int efd = eventfd(0, EFD_CLOEXEC);
    assert_true(efd >= 0);

    rp_mpsc_init(&q);
    start_producers(p, WAKE_PRODUCERS, &q, count, efd, &go, &trues);
    for (uint64_t got = 0; got < total;) {
        struct rp_mpsc_node *n;
        while ((n = rp_mpsc_pop(&q)) != NULL) {
            consume(n, next_seq, WAKE_PRODUCERS);
            got++;
        }
        if (got == total)
            break;
        struct pollfd pfd = {.fd = efd, .events = POLLIN};
        int rc = poll(&pfd, 1, 60 * 1000);
        if (rc == 0)
            fail_msg("consumer asleep with %llu of %llu items: lost wake-up",
                     (unsigned long long)got, (unsigned long long)total);
        assert_int_equal(rc, 1);
        uint64_t v;
        assert_int_equal(read(efd, &v, sizeof v), sizeof v);
        sleeps++;
    }
    join_producers(p, WAKE_PRODUCERS);
    close(efd);
    assert_null(rp_mpsc_pop(&q));
    for (unsigned i = 0; i < WAKE_PRODUCERS; i++)
        assert_int_equal(next_seq[i], count);
    printf("mpsc: %u x %u items, consumer slept %lu times, %lu wake-ups\n",
           WAKE_PRODUCERS, count, sleeps, atomic_load(&trues));
}

int main(int argc, char **argv)
{
    (void)t_backend(argc, argv); /* the queue does not use a backend */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mpsc_single_thread_is_fifo_and_reports_empty),
        cmocka_unit_test(mpsc_four_producers_lose_nothing_and_keep_their_order),
        cmocka_unit_test(mpsc_consumer_woken_by_was_empty_never_sleeps_on_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
