/*
 * rp_group_post under contention: 6 producer threads post to 3 groups at
 * random, with a small bound (so -ENOBUFS happens all the time), while
 * each group's on_post also posts on to another group (a group handler is
 * a producer too) and the test thread stops the groups one by one in the
 * middle of it. At the end, for every (producer, group) pair: the posts
 * that returned 0 were handled exactly once, in the order they were
 * posted, and every post after that group's stop returned -ESHUTDOWN; no
 * packet outlives the server. Run in both layouts.
 *
 * The expected sequence numbers are plain fields written only by the
 * group's thread and read by the test after rp_group_stop returned:
 * under TSan that proves the stop's happens-before over every handled
 * post, and the per-producer order is checked without a lock.
 */
#include "../integration/server_util.h"

#include <ringport/group.h>

#if defined(__SANITIZE_THREAD__)
#define RP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RP_TSAN 1
#endif
#endif

#ifdef RP_TSAN
#define PER_PRODUCER 4000
#else
#define PER_PRODUCER 40000
#endif
#define PRODUCERS 6
#define NGROUPS 3
#define FORWARDERS NGROUPS /* producer ids of the groups' own handlers */
#define NPROD (PRODUCERS + FORWARDERS)
#define LIMIT 32

struct pair {
    uint32_t accepted; /* written by the producer only */
    uint32_t handled;  /* next expected sequence: the group's thread only */
    uint32_t next_fwd; /* forwarders: next sequence to post (group thread) */
};

static struct rp_group *groups[NGROUPS];
static struct pair pairs[NPROD][NGROUPS];
static uint64_t seed; /* t_seed() on the test thread, before the producers */
static _Atomic uint64_t errors, refused, shut, total;
static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;

static int post_seq(int to, uint32_t tag, uint32_t seq)
{
    struct rp_packet *pkt;
    if (rp_packet_create(4, 1, &pkt) < 0)
        return -ENOMEM;
    rp_packet_put_bytes(pkt, &seq, sizeof seq);
    int r = rp_group_post(groups[to], tag, pkt);
    rp_packet_unref(pkt);
    return r;
}

static void on_post(struct rp_group *g, uint32_t tag,
                    const struct rp_message *msg, void *user)
{
    int gi = (int)(intptr_t)user;
    uint32_t seq;
    if (g != groups[gi] || tag >= NPROD || msg->len != 4) {
        atomic_fetch_add(&errors, 1);
        return;
    }
    memcpy(&seq, msg->payload, 4);
    struct pair *p = &pairs[tag][gi];
    if (seq != p->handled)
        atomic_fetch_add(&errors, 1);
    p->handled = seq + 1;
    atomic_fetch_add_explicit(&total, 1, memory_order_relaxed);
    /* Every 4th post is forwarded to the next group, as producer
       PRODUCERS + gi: a post from a group handler, never waiting. */
    if (tag < PRODUCERS && seq % 4 == 0) {
        int to = (gi + 1) % NGROUPS;
        struct pair *f = &pairs[PRODUCERS + gi][to];
        int r = post_seq(to, (uint32_t)(PRODUCERS + gi), f->next_fwd);
        if (r == 0) {
            f->next_fwd++;
            f->accepted = f->next_fwd;
        } else if (r != -ENOBUFS && r != -ESHUTDOWN) {
            atomic_fetch_add(&errors, 1);
        }
    }
}

static void *producer(void *arg)
{
    uint32_t tag = (uint32_t)(uintptr_t)arg;
    uint64_t rng = seed ^ (tag + 1) * 0x9e3779b97f4a7c15ULL;
    bool gone[NGROUPS] = {false};
    int left = NGROUPS;
    for (uint32_t i = 0; i < PER_PRODUCER * NGROUPS && left > 0; i++) {
        int to = (int)t_rand_range(&rng, 0, NGROUPS - 1);
        if (gone[to])
            continue;
        struct pair *p = &pairs[tag][to];
        int r;
        while ((r = post_seq(to, tag, p->accepted)) == -ENOBUFS) {
            atomic_fetch_add_explicit(&refused, 1, memory_order_relaxed);
            sched_yield();
        }
        if (r == 0) {
            p->accepted++;
        } else if (r == -ESHUTDOWN) {
            /* Stopping: this producer is done with that group (the
               end checks that it stays refused). */
            atomic_fetch_add(&shut, 1);
            gone[to] = true;
            left--;
        } else {
            atomic_fetch_add(&errors, 1);
        }
    }
    return NULL;
}

static void posts_from_many_threads_survive_stops(void **state)
{
    uint64_t alive = su_packets_alive();
    struct rp_server_config cfg;
    su_config(&cfg, NULL);
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    assert_int_equal(
        rp_group_set_layout(srv, *(const enum rp_group_layout *)*state), 0);
    memset(pairs, 0, sizeof pairs);
    seed = t_seed();
    atomic_store(&errors, 0);
    atomic_store(&total, 0);
    atomic_store(&refused, 0);
    atomic_store(&shut, 0);
    for (int i = 0; i < NGROUPS; i++) {
        char name[16];
        snprintf(name, sizeof name, "post-%d", i);
        struct rp_group_config gc = {.name = name,
                                     .cb = {.on_post = on_post},
                                     .user = (void *)(intptr_t)i,
                                     .post_limit = LIMIT};
        assert_int_equal(rp_group_create(srv, &gc, &groups[i]), 0);
    }
    assert_int_equal(rp_server_start(srv), 0);
    pthread_t th[PRODUCERS];
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, producer, (void *)i), 0);
    /* Stop the groups one by one while the producers run, once each has
       handled some posts. The last is left to rp_server_stop. */
    for (int i = 0; i < NGROUPS - 1; i++) {
        uint64_t want = (uint64_t)(i + 1) * PER_PRODUCER;
        while (atomic_load(&total) < want)
            su_sleep_ms(1);
        assert_int_equal(rp_group_stop(groups[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    rp_server_stop(srv);
    assert_int_equal(atomic_load(&errors), 0);
    for (int t = 0; t < NPROD; t++)
        for (int gi = 0; gi < NGROUPS; gi++)
            assert_int_equal(pairs[t][gi].handled, pairs[t][gi].accepted);
    /* Each stopped group refuses every producer afterwards. */
    for (int i = 0; i < NGROUPS; i++)
        assert_int_equal(post_seq(i, 0, 0), -ESHUTDOWN);
    rp_server_destroy(srv);
    assert_int_equal(su_packets_alive(), alive);
    print_message("posts %llu, refused (-ENOBUFS) %llu, stopped %llu\n",
                  (unsigned long long)atomic_load(&total),
                  (unsigned long long)atomic_load(&refused),
                  (unsigned long long)atomic_load(&shut));
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(posts_from_many_threads_survive_stops,
                                  (void *)&hetero),
        cmocka_unit_test_prestate(posts_from_many_threads_survive_stops,
                                  (void *)&homo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
