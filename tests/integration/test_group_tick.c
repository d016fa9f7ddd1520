/*
 * Group ticks and wake-ups, asserted by counting, never by the clock:
 *   - an idle group, its thread asleep until a tick a minute away,
 *     handles each message before that tick (the push wakes its thread; a
 *     group that only looked at its inbox on ticks would not handle it
 *     within the test's bounded wait);
 *   - a tick that sleeps past its interval is counted as an overrun before
 *     the next tick runs, and that tick's elapsed time covers the sleep;
 *   - HOMO: one group's slow tick delays the other groups on the shared
 *     thread, and their overruns are counted (the cost the hetero layout
 *     avoids).
 */
#include "group_util.h"

#define TRIALS 5
/* The longest tick a group may have: no scheduling delay on a loaded
   machine comes near it, and a missing wake-up would leave a message
   unhandled for longer than SU_WAIT waits. */
#define IDLE_TICK_MS 60000
#define SLOW_MS 70
#define SLOW_NS ((int64_t)SLOW_MS * 1000000)

static struct su_events ev;
static struct gu_group groups[2];
static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;

static _Atomic uint64_t ticks_when_handled;
static _Atomic int64_t elapsed_after_slow;
static _Atomic uint64_t overruns_seen;

/* A server with 'ngroups' groups ticking every 'tick_ms'; 'tick0' (may be
   NULL) is group 0's tick hook. It is in place before the group exists:
   a group's thread starts ticking at rp_group_create, and a hook stored
   afterwards could miss the first ticks on a loaded machine (the test
   thread may not run again for longer than three ticks). */
static struct rp_server *start(void **state, int ngroups, uint32_t tick_ms,
                               gu_tick_hook tick0)
{
    struct rp_server_config cfg;
    su_events_reset(&ev);
    gu_log_reset();
    gu_config(&cfg, &ev);
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    ev.srv = srv;
    assert_int_equal(
        rp_group_set_layout(srv, *(const enum rp_group_layout *)*state), 0);
    memset(groups, 0, sizeof groups);
    atomic_store(&groups[0].on_tick, tick0);
    for (int i = 0; i < ngroups; i++)
        gu_group(srv, &groups[i], i, tick_ms);
    assert_int_equal(rp_server_start(srv), 0);
    return srv;
}

static void record_ticks(struct gu_group *gg, struct rp_group *g, rp_sid sid,
                         uint32_t seq)
{
    (void)g;
    (void)sid;
    (void)seq;
    atomic_store(&ticks_when_handled, atomic_load(&gg->ticks));
}

/* True if this process's thread 'name' is asleep (state S: the runner
   waits on its futex there). */
static bool thread_asleep(const char *name)
{
    char state = 0;
    return t_thread_state(name, &state, NULL) == 0 && state == 'S';
}

static void idle_group_handles_a_message_before_its_next_tick(void **state)
{
    enum rp_group_layout layout = *(const enum rp_group_layout *)*state;
    const char *thread = layout == RP_GROUP_HOMO ? "rp-logic" : "grp-0";
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(state, 1, IDLE_TICK_MS, NULL);
    atomic_store(&ticks_when_handled, UINT64_MAX);
    atomic_store(&groups[0].on_msg, record_ticks);
    int fd = su_connect(rp_server_port(srv));
    rp_sid sid;
    gu_match_sids(srv, &ev, &fd, &sid, 1);
    assert_int_equal(rp_group_move(srv, sid, groups[0].g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == 1);

    /* Counting, not timing: the message is handled while the group's
       first tick is still a minute away, however long the threads wait
       for a CPU. */
    for (uint32_t k = 0; k < TRIALS; k++) {
        SU_WAIT(thread_asleep(thread));
        assert_true(thread_asleep(thread));
        gu_send_seq(fd, k);
        SU_WAIT(atomic_load(&gu_log.grp_msgs) == k + 1);
        assert_int_equal(atomic_load(&gu_log.grp_msgs), k + 1);
        assert_int_equal(atomic_load(&ticks_when_handled), 0);
    }
    assert_int_equal(atomic_load(&groups[0].ticks), 0);
    close(fd);
    SU_WAIT(atomic_load(&ev.leaves) == 1);
    su_finish(srv, &ev, before);
}

static void slow_tick(struct gu_group *gg, struct rp_group *g, int64_t elapsed)
{
    uint64_t n = atomic_load(&gg->ticks);
    if (n == 3) {
        struct timespec ts = {0, SLOW_NS};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    } else if (n == 4) {
        struct rp_group_stats gs;
        rp_group_get_stats(g, &gs);
        atomic_store(&overruns_seen, gs.tick_overruns);
        atomic_store(&elapsed_after_slow, elapsed);
    }
}

static void tick_overrun_is_counted_and_next_elapsed_shows_it(void **state)
{
    atomic_store(&elapsed_after_slow, 0);
    atomic_store(&overruns_seen, 0);
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(state, 1, 20, slow_tick);
    SU_WAIT(atomic_load(&groups[0].ticks) >= 6);
    assert_true(atomic_load(&groups[0].ticks) >= 6);
    /* Tick 4 ran after tick 3's sleep, knew of the overrun, and its
       elapsed time (start to start) covers the sleep. */
    assert_true(atomic_load(&overruns_seen) >= 1);
    assert_true(atomic_load(&elapsed_after_slow) >= SLOW_NS);
    struct rp_group_stats gs;
    rp_group_get_stats(groups[0].g, &gs);
    assert_true(gs.tick_overruns >= 1);
    assert_true(gs.tick_ns_max >= (uint64_t)SLOW_NS);
    assert_true(gs.tick_ns_sum >= gs.tick_ns_max);
    /* The histogram: every tick in exactly one bucket, and the 70 ms one
       above the 50 ms bound. */
    uint64_t in_buckets = 0, slow = 0;
    for (size_t b = 0; b <= RP_GROUP_TICK_BUCKETS; b++) {
        in_buckets += gs.tick_buckets[b];
        if (b == RP_GROUP_TICK_BUCKETS ||
            rp_group_tick_bounds_ns[b] > (uint64_t)SLOW_NS)
            slow += gs.tick_buckets[b];
    }
    assert_int_equal(in_buckets, gs.ticks);
    assert_true(slow >= 1);
    su_finish(srv, &ev, before);
}

static void homo_slow_group_delays_the_others_and_it_is_counted(void **state)
{
    atomic_store(&elapsed_after_slow, 0);
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(state, 2, 20, slow_tick);
    SU_WAIT(atomic_load(&groups[0].ticks) >= 6 &&
            atomic_load(&groups[1].ticks) >= 6);
    assert_true(atomic_load(&groups[0].ticks) >= 6);
    struct rp_group_stats gs;
    rp_group_get_stats(groups[1].g, &gs);
    /* Group 1 never sleeps, yet on the shared thread it waited out group
       0's 70 ms tick: at least one of its ticks ended past its deadline. */
    assert_true(gs.tick_overruns >= 1);
    su_finish(srv, &ev, before);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(
            idle_group_handles_a_message_before_its_next_tick, (void *)&hetero),
        cmocka_unit_test_prestate(
            idle_group_handles_a_message_before_its_next_tick, (void *)&homo),
        cmocka_unit_test_prestate(
            tick_overrun_is_counted_and_next_elapsed_shows_it, (void *)&hetero),
        cmocka_unit_test_prestate(
            tick_overrun_is_counted_and_next_elapsed_shows_it, (void *)&homo),
        cmocka_unit_test_prestate(
            homo_slow_group_delays_the_others_and_it_is_counted, (void *)&homo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
