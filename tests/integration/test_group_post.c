/*
 * rp_group_post: packets handed to a group from threads that are not the
 * engine's.
 *   - several producer threads post at once: the group's on_post gets
 *     every packet exactly once, in each producer's order, with its tag;
 *   - the bound: with post_limit posts queued a post returns -ENOBUFS and
 *     takes no reference (the caller's unref frees the packet), and posts
 *     go through again once the group has caught up;
 *   - stop: rp_group_stop and rp_server_stop return only after every post
 *     accepted before the stop was handled; a post during or after the
 *     stop returns -ESHUTDOWN; no packet outlives the server;
 *   - a group without on_post, or a NULL packet: -EINVAL.
 * Both layouts.
 */
#include "group_util.h"

#define PRODUCERS 4
#define PER_PRODUCER 5000

static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;

struct post_state {
    struct rp_group *g;
    uint32_t next[PRODUCERS]; /* expected sequence: group thread only */
    _Atomic uint64_t handled, errors;
    _Atomic int gate;    /* 1: on_post waits until it is 0 */
    _Atomic int waiting; /* on_post is waiting at the gate */
};

static struct post_state ps;

static struct rp_packet *post_packet(uint32_t seq)
{
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(4, 7, &pkt), 0);
    assert_int_equal(rp_packet_put_bytes(pkt, &seq, sizeof seq), 0);
    return pkt;
}

static void on_post(struct rp_group *g, uint32_t tag,
                    const struct rp_message *msg, void *user)
{
    struct post_state *st = user;
    uint32_t seq = gu_seq_of(msg->payload, msg->len);
    if (g != st->g && st->g != NULL)
        atomic_fetch_add(&st->errors, 1);
    if (msg->type != 7 || tag >= PRODUCERS || seq != st->next[tag])
        atomic_fetch_add(&st->errors, 1);
    else
        st->next[tag]++;
    if (atomic_load(&st->gate)) {
        atomic_store(&st->waiting, 1);
        while (atomic_load(&st->gate))
            su_sleep_ms(1);
        atomic_store(&st->waiting, 0);
    }
    atomic_fetch_add(&st->handled, 1);
}

static struct rp_server *start(void **state, uint32_t post_limit)
{
    struct rp_server_config cfg;
    su_config(&cfg, NULL);
    cfg.user = NULL;
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    assert_int_equal(
        rp_group_set_layout(srv, *(const enum rp_group_layout *)*state), 0);
    memset(&ps, 0, sizeof ps);
    struct rp_group_config gc = {.name = "posts",
                                 .cb = {.on_post = on_post},
                                 .user = &ps,
                                 .post_limit = post_limit};
    struct rp_group *g;
    assert_int_equal(rp_group_create(srv, &gc, &g), 0);
    ps.g = g;
    assert_int_equal(rp_server_start(srv), 0);
    return srv;
}

/* Posts 'seq' with 'tag', retrying while the group is behind. */
static int post_retry(struct rp_group *g, uint32_t tag, uint32_t seq)
{
    struct rp_packet *pkt = post_packet(seq);
    int r;
    while ((r = rp_group_post(g, tag, pkt)) == -ENOBUFS)
        sched_yield();
    rp_packet_unref(pkt);
    return r;
}

static void *producer(void *arg)
{
    uint32_t tag = (uint32_t)(uintptr_t)arg;
    for (uint32_t i = 0; i < PER_PRODUCER; i++)
        if (post_retry(ps.g, tag, i) != 0)
            atomic_fetch_add(&ps.errors, 1);
    return NULL;
}

static void posts_arrive_once_in_each_producers_order(void **state)
{
    uint64_t alive = su_packets_alive();
    struct rp_server *srv = start(state, 64);
    pthread_t th[PRODUCERS];
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, producer, (void *)i), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(rp_group_stop(ps.g), 0);
    assert_int_equal(atomic_load(&ps.errors), 0);
    assert_int_equal(atomic_load(&ps.handled), PRODUCERS * PER_PRODUCER);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(ps.next[i], PER_PRODUCER);
    struct rp_group_stats st;
    rp_group_get_stats(ps.g, &st);
    assert_int_equal(st.posts, PRODUCERS * PER_PRODUCER);
    assert_int_equal(st.inbox_depth, 0);
    rp_server_destroy(srv);
    assert_int_equal(su_packets_alive(), alive);
}

/* Holds the group in on_post (at the gate) with 'queued' posts in all. */
static void hold_group(uint32_t queued)
{
    atomic_store(&ps.gate, 1);
    assert_int_equal(post_retry(ps.g, 0, 0), 0);
    while (!atomic_load(&ps.waiting))
        su_sleep_ms(1);
    for (uint32_t i = 1; i < queued; i++)
        assert_int_equal(post_retry(ps.g, 0, i), 0);
}

static void post_past_the_bound_is_refused_without_a_reference(void **state)
{
    uint64_t alive = su_packets_alive();
    struct rp_server *srv = start(state, 4);
    /* The post in on_post still counts until it returns: 4 queued. */
    hold_group(4);
    struct rp_packet *pkt = post_packet(4);
    assert_int_equal(rp_group_post(ps.g, 0, pkt), -ENOBUFS);
    assert_int_equal(rp_group_post(ps.g, 0, pkt), -ENOBUFS);
    uint64_t before = su_packets_alive();
    rp_packet_unref(pkt); /* the only reference: the group took none */
    assert_int_equal(su_packets_alive(), before - 1);
    struct rp_group_stats st;
    rp_group_get_stats(ps.g, &st);
    assert_int_equal(st.posts_refused, 2);
    atomic_store(&ps.gate, 0);
    /* Caught up: the next post goes through, in order after the others. */
    assert_int_equal(post_retry(ps.g, 0, 4), 0);
    assert_int_equal(rp_group_stop(ps.g), 0);
    assert_int_equal(atomic_load(&ps.handled), 5);
    assert_int_equal(ps.next[0], 5);
    assert_int_equal(atomic_load(&ps.errors), 0);
    rp_server_destroy(srv);
    assert_int_equal(su_packets_alive(), alive);
}

struct stopper {
    struct rp_server *srv;
    bool whole_server;
};

static void *stop_thread(void *arg)
{
    struct stopper *s = arg;
    if (s->whole_server)
        rp_server_stop(s->srv);
    else
        (void)rp_group_stop(ps.g);
    return NULL;
}

/* Posts wait in the inbox while the group is stopped; they are all
   handled before the stop returns, and posts once it began are refused. */
static void stop_handles_every_accepted_post(void **state, bool whole_server)
{
    uint64_t alive = su_packets_alive();
    struct rp_server *srv = start(state, 100);
    hold_group(10);
    struct stopper s = {.srv = srv, .whole_server = whole_server};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_thread, &s), 0);
    /* Until the stop is seen, posts are accepted and must be handled. */
    uint32_t seq = 10;
    for (;;) {
        struct rp_packet *pkt = post_packet(seq);
        int r = rp_group_post(ps.g, 0, pkt);
        rp_packet_unref(pkt);
        if (r == -ESHUTDOWN)
            break;
        assert_int_equal(r, 0);
        seq++;
        su_sleep_ms(1);
    }
    atomic_store(&ps.gate, 0);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&ps.handled), seq);
    assert_int_equal(ps.next[0], seq);
    assert_int_equal(atomic_load(&ps.errors), 0);
    struct rp_packet *pkt = post_packet(seq);
    assert_int_equal(rp_group_post(ps.g, 0, pkt), -ESHUTDOWN);
    rp_packet_unref(pkt);
    rp_server_destroy(srv);
    assert_int_equal(su_packets_alive(), alive);
}

static void group_stop_handles_every_accepted_post(void **state)
{
    stop_handles_every_accepted_post(state, false);
}

static void server_stop_handles_every_accepted_post(void **state)
{
    stop_handles_every_accepted_post(state, true);
}

static void post_needs_a_packet_and_an_on_post(void **state)
{
    uint64_t alive = su_packets_alive();
    struct rp_server *srv = start(state, 0);
    struct rp_group_config gc = {.name = "no-posts",
                                 .cb = {.on_message = gu_on_message}};
    struct rp_group *g;
    assert_int_equal(rp_group_create(srv, &gc, &g), 0);
    struct rp_packet *pkt = post_packet(0);
    assert_int_equal(rp_group_post(g, 0, pkt), -EINVAL);
    assert_int_equal(rp_group_post(ps.g, 0, NULL), -EINVAL);
    assert_int_equal(rp_group_post(ps.g, 0, pkt), 0);
    rp_packet_unref(pkt);
    rp_server_destroy(srv);
    assert_int_equal(atomic_load(&ps.handled), 1);
    assert_int_equal(su_packets_alive(), alive);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(posts_arrive_once_in_each_producers_order,
                                  (void *)&hetero),
        cmocka_unit_test_prestate(posts_arrive_once_in_each_producers_order,
                                  (void *)&homo),
        cmocka_unit_test_prestate(
            post_past_the_bound_is_refused_without_a_reference,
            (void *)&hetero),
        cmocka_unit_test_prestate(
            post_past_the_bound_is_refused_without_a_reference, (void *)&homo),
        cmocka_unit_test_prestate(group_stop_handles_every_accepted_post,
                                  (void *)&hetero),
        cmocka_unit_test_prestate(group_stop_handles_every_accepted_post,
                                  (void *)&homo),
        cmocka_unit_test_prestate(server_stop_handles_every_accepted_post,
                                  (void *)&hetero),
        cmocka_unit_test_prestate(server_stop_handles_every_accepted_post,
                                  (void *)&homo),
        cmocka_unit_test_prestate(post_needs_a_packet_and_an_on_post,
                                  (void *)&homo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
