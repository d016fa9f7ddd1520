/*
 * Intrusive MPSC queue after Dmitry Vyukov's design. Producers serialise on
 * one atomic exchange of 'head' and then link the previous node to theirs;
 * the consumer walks from 'tail' and never writes 'head' except to re-insert
 * the stub. The stub keeps the list non-empty, so a producer never needs the
 * consumer's cooperation and the consumer never needs a CAS.
 *
 * List shape: tail -> ... -> head, linked through 'next'. 'tail' is the next
 * node to hand out, except when it is the stub, which is skipped. A producer
 * that has exchanged 'head' but not yet stored prev->next leaves a gap; the
 * consumer waits out that gap (two stores away) instead of reporting empty,
 * so NULL from rp_mpsc_pop always means empty.
 *
 * Wake-up rule: push returns true exactly when it found the stub at 'head',
 * i.e. nothing was queued ahead of it. After pop returns NULL, 'head' is the
 * stub, so the first push after a consumer decided to sleep returns true.
 * A push that returns false found a real node at 'head', which the consumer
 * has not handed out yet or is handing out now; pop cannot return NULL
 * before it reaches the new node. (A true may also come while the consumer
 * is awake: a spare wake-up, never a lost one.)
 *
 * Why our own queue and not a library: bench/micro/bench_mpsc.c runs this
 * queue, liburcu 0.13's wfcqueue (cds_wfcq_enqueue +
 * __cds_wfcq_dequeue_blocking: the same exchange-then-link design) and
 * Concurrency Kit 0.7's ck_fifo_mpmc (Michael-Scott, a double-width CAS per
 * operation) side by side: 2,000,000 items, median of 9 interleaved rounds,
 * 2-vCPU Xeon VM shared with other builds (3 producers + 1 consumer
 * oversubscribe it). Two runs, Mops/s, ratio = median of per-round ratios:
 *
 *     producers  rp_mpsc  urcu wfcq  ck_fifo_mpmc  rp/urcu  rp/ck
 *     1          57-73    40-55      17-21         1.32-1.40  3.5-3.8
 *     3          71       58-61      11-19         1.17-1.27  3.6-6.6
 *
 * We keep our own because (1) it measured faster in both rows; (2) when an
 * enqueuer is preempted mid-push, liburcu's blocking dequeue sleeps 10 ms in
 * poll(), most of a 60 Hz game tick, where we sleep 20 us (see
 * mpsc_wait_next); (3) liburcu's x86 atomics are inline assembly, which
 * ThreadSanitizer cannot see, while C11 atomics keep our stress tests
 * TSan-checked; (4) it is ~150 lines with no dependency (both queues tell
 * the producer whether the queue was empty). Before the sleep step was
 * added (yield only), liburcu mostly led at 3 producers: 0.64-1.17x over 7
 * runs, 0.92x or below in 6, and the 1-producer row swung 0.45-1.6x.
 */
#include "core/mpsc.h"

#include "core/cpu.h"

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

/*
 * Waiting for a producer between its exchange and its link: spin with a
 * pause (the link is normally a few nanoseconds away), then yield, then
 * sleep in short steps. The sleep matters when the producer has been
 * preempted: sched_yield keeps the consumer runnable on its CPU, so on a
 * 2-CPU box the producer may not get a CPU back for a whole time slice,
 * while sleeping frees ours for it. Measured (bench_mpsc, 3 producers, vs
 * liburcu's wfcqueue): yield only 0.64-1.17x, with the sleep step
 * 1.17-1.32x. liburcu sleeps 10 ms here; 20 us keeps a game tick intact.
 */
#define MPSC_SPINS 64
#define MPSC_YIELDS 8
#define MPSC_SLEEP_NS 20000

void rp_mpsc_init(struct rp_mpsc *q)
{
    /* Relaxed: the queue is published to other threads by whatever
       synchronisation hands them 'q' (thread creation, a mutex, ...). */
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    q->tail = &q->stub;
}

/* Returns the node that was at 'head' before 'node'. */
static inline struct rp_mpsc_node *mpsc_link(struct rp_mpsc *q,
                                             struct rp_mpsc_node *node)
{
    /* Relaxed: this store is published by the acq_rel exchange below. */
    atomic_store_explicit(&node->next, NULL, memory_order_relaxed);
    /*
     * acq_rel. Release: the next producer (or the consumer re-inserting the
     * stub) that gets 'node' as its 'prev' will store node->next; our NULL
     * above must come before that store, or it could overwrite the link.
     * Acquire: symmetrically, the NULL stored into 'prev' by its owner
     * happens before our link store into prev->next.
     */
    struct rp_mpsc_node *prev =
        atomic_exchange_explicit(&q->head, node, memory_order_acq_rel);
    /*
     * Release: the consumer reaches 'node' only through prev->next with an
     * acquire load, so everything written to the message before the push is
     * visible to it.
     */
    atomic_store_explicit(&prev->next, node, memory_order_release);
    return prev;
}

bool rp_mpsc_push(struct rp_mpsc *q, struct rp_mpsc_node *node)
{
    return mpsc_link(q, node) == &q->stub;
}

/* Waits for the producer that has exchanged 'head' past 'node' to store
   node->next. */
static struct rp_mpsc_node *mpsc_wait_next(struct rp_mpsc_node *node)
{
    struct rp_mpsc_node *next;
    unsigned spins = 0;

    /* Acquire: pairs with the producer's release link (see mpsc_link). */
    while ((next = atomic_load_explicit(&node->next, memory_order_acquire)) ==
           NULL) {
        if (spins < MPSC_SPINS)
            rp_cpu_relax();
        else if (spins < MPSC_SPINS + MPSC_YIELDS)
            sched_yield();
        else
            nanosleep(&(struct timespec){.tv_nsec = MPSC_SLEEP_NS}, NULL);
        if (spins < MPSC_SPINS + MPSC_YIELDS)
            spins++;
    }
    return next;
}

struct rp_mpsc_node *rp_mpsc_pop(struct rp_mpsc *q)
{
    struct rp_mpsc_node *tail = q->tail;
    /* Acquire: makes the message behind 'next' visible (see mpsc_link). */
    struct rp_mpsc_node *next =
        atomic_load_explicit(&tail->next, memory_order_acquire);

    if (tail == &q->stub) {
        if (next == NULL) {
            /*
             * Relaxed: 'head' is only compared, never followed. We stored
             * the stub into it ourselves (or init did), so we read the stub
             * or a later producer's node; a later node means a push is
             * between its exchange and its link, and we wait for it.
             */
            if (atomic_load_explicit(&q->head, memory_order_relaxed) ==
                &q->stub)
                return NULL;
            next = mpsc_wait_next(tail);
        }
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
    }
    if (next == NULL) {
        /*
         * 'tail' looks like the last node. Handing it out would leave the
         * list without a node for producers to link to, so put the stub
         * behind it first. Relaxed is enough for the comparison: if 'head'
         * has moved on (or moves on after we read it), a producer links
         * tail->next and we wait for that instead; the exchange inside
         * mpsc_link always sees the latest 'head'.
         */
        if (atomic_load_explicit(&q->head, memory_order_relaxed) == tail)
            mpsc_link(q, &q->stub);
        next = mpsc_wait_next(tail);
    }
    q->tail = next;
    return tail;
}

bool rp_mpsc_empty(struct rp_mpsc *q)
{
    /* Relaxed: see the first comparison in rp_mpsc_pop. */
    return q->tail == &q->stub &&
           atomic_load_explicit(&q->head, memory_order_relaxed) == &q->stub;
}
