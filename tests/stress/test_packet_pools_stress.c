/*
 * The packet pools' teardown against threads that are still using them
 * (src/proto/packet.c): rp_packet_pools_shutdown may destroy the pools only
 * when no thread is inside one, and the exit hook never destroys them.
 *
 *   - Threads free the last packets of a round while the main thread
 *     retries shutdown without any other synchronisation with them: a
 *     free counted before the pool took the packet back let the shutdown
 *     destroy the pool under it (a NULL or freed pool in rp_pool_free).
 *   - Threads create, fill, check and free packets without pause while the
 *     main thread shuts the pools down and they come back, again and again.
 *   - A child process calls exit() while its threads keep creating and
 *     freeing packets: the exit hook used to destroy the pools then.
 *
 *   - Packets relayed round a ring of threads, each taking a reference
 *     for the next holder while the previous one may be dropping its own:
 *     rp_packet_ref by a sole holder is a plain store, not a locked
 *     instruction, and must still order every holder's reads before the
 *     free (and the reuse of the memory) on whichever thread frees.
 *
 * Under ThreadSanitizer (make tsan runs this test) a missing happens-before
 * between a free and the destroy is a reported race even when the timing
 * does not crash; under ASan a destroyed pool touched later is a
 * use-after-free. Every run is bounded in rounds, none in time.
 */
#include "helpers.h"

#include <ringport/packet.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 3
#define PER_THREAD 8 /* packets a thread frees per round */
#define ROUNDS 1000
#define CHURN 10000 /* create/free bursts per thread */
#define CHILDREN 6
#define SHUTDOWNS 5000 /* while the churners run */

/* Payload sizes in the three smaller classes (the 64 KiB class would make
   every round carve megabytes). */
static const size_t sizes[] = {10, 200, 1000, 3000, 12000};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static atomic_ulong make_failures;

/* A packet of 'size' bytes of 'stamp', or NULL (counted): callable from
   any thread, unlike cmocka's asserts. */
static struct rp_packet *make(size_t size, uint8_t stamp)
{
    static _Thread_local uint8_t buf[12000];
    struct rp_packet *p;
    if (rp_packet_create(size, 7, &p) < 0) {
        atomic_fetch_add(&make_failures, 1);
        return NULL;
    }
    memset(buf, stamp, size);
    if (rp_packet_put_bytes(p, buf, size) < 0) {
        atomic_fetch_add(&make_failures, 1);
        rp_packet_unref(p);
        return NULL;
    }
    return p;
}

static bool intact(const struct rp_packet *p, size_t size, uint8_t stamp)
{
    const uint8_t *b = rp_packet_payload(p);
    if (rp_packet_size(p) != size || rp_packet_type(p) != 7)
        return false;
    for (size_t i = 0; i < size; i++)
        if (b[i] != stamp)
            return false;
    return true;
}

static size_t pooled_alive(void)
{
    struct rp_packet_pool_stats st;
    rp_packet_pool_stats(&st);
    size_t n = 0;
    for (int i = 0; i < RP_PACKET_POOL_CLASSES; i++)
        n += st.classes[i].in_use;
    return n + st.heap_in_use;
}

/* ---- the last frees of a round against shutdown --------------------------
 */

static struct {
    struct rp_packet *pkt[THREADS][PER_THREAD];
    _Atomic uint32_t round; /* release: pkt[][] is filled */
    _Atomic bool quit;
    atomic_ulong bad;
} last;

static void *last_freer(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint32_t seen = 0;
    for (;;) {
        uint32_t r;
        while ((r = atomic_load_explicit(&last.round, memory_order_acquire)) ==
               seen) {
            if (atomic_load(&last.quit))
                return NULL;
            sched_yield();
        }
        seen = r;
        for (int k = 0; k < PER_THREAD; k++) {
            struct rp_packet *p = last.pkt[me][k];
            if (!p)
                continue;
            if (!intact(p, sizes[(me + (unsigned)k) % NSIZES], (uint8_t)r))
                atomic_fetch_add(&last.bad, 1);
            rp_packet_unref(p); /* the last reference */
        }
        /* Nothing tells the main thread we are done but the pools'
           own counts: it retries shutdown until they say so. */
    }
}

static void shutdown_racing_the_last_frees_never_pulls_a_pool_away(void **st)
{
    (void)st;
    pthread_t th[THREADS];
    memset(&last, 0, sizeof last);
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(
            pthread_create(&th[i], NULL, last_freer, (void *)(uintptr_t)i), 0);
    uint64_t busy = 0, done = 0;
    for (uint32_t r = 1; r <= ROUNDS; r++) {
        for (unsigned i = 0; i < THREADS; i++)
            for (int k = 0; k < PER_THREAD; k++)
                last.pkt[i][k] =
                    make(sizes[(i + (unsigned)k) % NSIZES], (uint8_t)r);
        atomic_store_explicit(&last.round, r, memory_order_release);
        for (;;) {
            int rc = rp_packet_pools_shutdown();
            if (rc == 0)
                break;
            assert_int_equal(rc, -EBUSY);
            if (++busy % 64 == 0)
                sched_yield();
        }
        done++;
    }
    atomic_store(&last.quit, true);
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&last.bad), 0);
    assert_int_equal(atomic_load(&make_failures), 0);
    assert_int_equal(done, ROUNDS);
    assert_int_equal(pooled_alive(), 0);
    printf("rounds %d, shutdowns refused while frees ran: %llu\n", ROUNDS,
           (unsigned long long)busy);
}

/* ---- creators and freers against shutdown --------------------------------
 */

static _Atomic bool churn_stop;
static atomic_ulong churn_bad;

static void *churner(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (me + 1);
    for (uint32_t n = 0; n < CHURN && !atomic_load(&churn_stop); n++) {
        /* One to three alive at a time, then none for a moment: the
           pools are busy and idle by turns. */
        struct rp_packet *held[3] = {0};
        size_t size[3];
        unsigned k = 1 + (unsigned)(t_rand(&x) % 3);
        for (unsigned i = 0; i < k; i++) {
            size[i] = sizes[t_rand(&x) % NSIZES];
            held[i] = make(size[i], (uint8_t)(i + me)); /* or NULL */
        }
        for (unsigned i = 0; i < k; i++) {
            if (!held[i])
                continue;
            if (!intact(held[i], size[i], (uint8_t)(i + me)))
                atomic_fetch_add(&churn_bad, 1);
            rp_packet_unref(held[i]);
        }
        if (n % 8 == 0)
            sched_yield();
    }
    return NULL;
}

static void shutdown_racing_creators_and_freers_keeps_packets_intact(void **s)
{
    (void)s;
    pthread_t th[THREADS];
    atomic_store(&churn_stop, false);
    atomic_store(&churn_bad, 0);
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(
            pthread_create(&th[i], NULL, churner, (void *)(uintptr_t)i), 0);
    uint64_t freed = 0, busy = 0;
    for (int i = 0; i < SHUTDOWNS; i++) {
        int rc = rp_packet_pools_shutdown();
        if (rc == 0)
            freed++;
        else
            busy++;
        assert_true(rc == 0 || rc == -EBUSY);
        if (i % 64 == 0)
            sched_yield();
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&churn_bad), 0);
    assert_int_equal(atomic_load(&make_failures), 0);
    assert_int_equal(pooled_alive(), 0);
    assert_int_equal(rp_packet_pools_shutdown(), 0);
    printf("shutdowns: %llu done, %llu refused\n", (unsigned long long)freed,
           (unsigned long long)busy);
}

/* ---- exit() while threads use the pools ----------------------------------
 */

static void *exit_churner(void *arg)
{
    (void)arg;
    atomic_store(&churn_stop, false);
    churner((void *)(uintptr_t)0);
    return NULL;
}

/* The child: three threads churning, then exit() from main while they go
   on: the exit hook runs beside them. */
static void child_main(void)
{
    pthread_t th[THREADS];
    struct rp_packet *warm = make(10, 1); /* the pools and the hook exist */
    if (!warm)
        _exit(4);
    rp_packet_unref(warm);
    for (unsigned i = 0; i < THREADS; i++)
        if (pthread_create(&th[i], NULL, exit_churner, NULL) != 0)
            _exit(3);
    /* Let them get going; the exit hook then races them. */
    for (int i = 0; i < 2000; i++) {
        struct rp_packet *p = make(sizes[i % NSIZES], 1);
        if (!p)
            _exit(4);
        rp_packet_unref(p);
    }
    exit(0);
}

static void exit_while_threads_use_the_pools_is_clean(void **state)
{
    (void)state;
    for (int c = 0; c < CHILDREN; c++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            child_main();
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("child %d: %s %d", c,
                     WIFEXITED(status) ? "exit status" : "killed by signal",
                     WIFEXITED(status) ? WEXITSTATUS(status)
                                       : WTERMSIG(status));
    }
}

/* ---- references handed round a ring of threads ---------------------------
 */

#define RELAY_PACKETS 3000

/* slot[i]: thread i's inbox, one packet or NULL (release/acquire). */
static struct {
    _Atomic(struct rp_packet *) slot[3];
    atomic_ulong bad;
} relay;

static size_t relay_size(unsigned i)
{
    return sizes[i % 3]; /* the three smaller classes */
}

/* Hands 'p' (one reference, the caller's own kept) to thread 'to'. */
static void relay_pass(struct rp_packet *p, int to)
{
    rp_packet_ref(p); /* the next holder's: a plain store when sole */
    while (atomic_load_explicit(&relay.slot[to], memory_order_relaxed))
        sched_yield();
    atomic_store_explicit(&relay.slot[to], p, memory_order_release);
}

static struct rp_packet *relay_take(int me)
{
    struct rp_packet *p;
    while (!(p = atomic_exchange_explicit(&relay.slot[me], NULL,
                                          memory_order_acquire)))
        sched_yield();
    return p;
}

/* Threads 1 and 2: check, pass on (1 -> 2 -> 0), drop their own. */
static void *relay_hop(void *arg)
{
    int me = (int)(uintptr_t)arg;
    for (unsigned i = 0; i < RELAY_PACKETS; i++) {
        struct rp_packet *p = relay_take(me);
        if (!intact(p, relay_size(i), (uint8_t)i))
            atomic_fetch_add(&relay.bad, 1);
        relay_pass(p, (me + 1) % 3);
        rp_packet_unref(p);
    }
    return NULL;
}

static void
relayed_references_free_each_packet_once_after_every_read(void **state)
{
    (void)state;
    size_t alive = pooled_alive();
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(
            pthread_create(&th[k], NULL, relay_hop, (void *)(uintptr_t)(k + 1)),
            0);
    /* Thread 0 creates, passes, drops its own, and takes back (the last
       reference, while thread 2 may still be dropping its own). */
    unsigned back = 0;
    for (unsigned i = 0; i < RELAY_PACKETS; i++) {
        struct rp_packet *p = make(relay_size(i), (uint8_t)i);
        assert_non_null(p);
        rp_packet_ref(p);
        while (atomic_load_explicit(&relay.slot[1], memory_order_relaxed)) {
            struct rp_packet *q = atomic_exchange_explicit(
                &relay.slot[0], NULL, memory_order_acquire);
            if (q) {
                if (!intact(q, relay_size(back), (uint8_t)back))
                    atomic_fetch_add(&relay.bad, 1);
                back++;
                rp_packet_unref(q);
            } else {
                sched_yield();
            }
        }
        atomic_store_explicit(&relay.slot[1], p, memory_order_release);
        rp_packet_unref(p);
    }
    for (; back < RELAY_PACKETS; back++) {
        struct rp_packet *q = relay_take(0);
        if (!intact(q, relay_size(back), (uint8_t)back))
            atomic_fetch_add(&relay.bad, 1);
        rp_packet_unref(q);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    assert_int_equal(atomic_load(&relay.bad), 0);
    assert_int_equal(atomic_load(&make_failures), 0);
    assert_int_equal(pooled_alive(), alive);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            shutdown_racing_the_last_frees_never_pulls_a_pool_away),
        cmocka_unit_test(
            shutdown_racing_creators_and_freers_keeps_packets_intact),
        cmocka_unit_test(exit_while_threads_use_the_pools_is_clean),
        cmocka_unit_test(
            relayed_references_free_each_packet_once_after_every_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
