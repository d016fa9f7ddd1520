/*
 * A group out of memory for its member array (src/group/runner.c): the
 * session that cannot be held is refused and ended with RESET, and the
 * process, the group and every other session go on. It gets no on_enter
 * and no on_leave in the group, its frames reach no handler, the group's
 * counters still add up (inbox depth back to 0), and rp_group_stop still
 * completes. Both the first member (the array's first allocation) and the
 * 65th (its first growth) are refused; a later enter succeeds.
 *
 * The failure is injected with the linker: this program is linked with
 * -Wl,--wrap=realloc (tests/CMakeLists.txt), so every realloc of the
 * library goes through __wrap_realloc below, which fails the armed number
 * of calls made on the group's thread (found by its name) and passes every
 * other call through. Both layouts. Also: no memory for a session's
 * routing state (an I/O thread's calloc, wrapped the same way).
 */
#include "group_util.h"

#include <stdlib.h>

#define MEMBERS 64 /* the member array's first capacity */

void *__real_realloc(void *ptr, size_t size);
void *__wrap_realloc(void *ptr, size_t size);

static _Atomic int fail_left;        /* reallocs still to fail */
static _Atomic int failed;           /* reallocs failed so far */
static char fail_thread[16];         /* only on this thread */
static _Atomic bool fail_thread_set; /* release: fail_thread is written */

void *__wrap_realloc(void *ptr, size_t size)
{
    if (atomic_load(&fail_left) > 0 &&
        atomic_load_explicit(&fail_thread_set, memory_order_acquire)) {
        char name[16];
        if (pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
            strcmp(name, fail_thread) == 0 &&
            atomic_fetch_sub(&fail_left, 1) > 0) {
            atomic_fetch_add(&failed, 1);
            errno = ENOMEM;
            return NULL;
        }
    }
    return __real_realloc(ptr, size);
}

/* The same for calloc, on the I/O threads (io_calloc_fail.h): there, on a
   TCP server, only a session's extensions are calloc'd, the routing state
   among them (allocated when a session in no group is moved into one). */
#include "io_calloc_fail.h"

static struct su_events ev;
static struct gu_group grp;
static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;

/* Moves the client on 'fd' (sid 'sid') into the group with the next
   realloc on the group's thread failing; waits for the session's end. */
static void enter_refused(struct rp_server *srv, int fd, rp_sid sid)
{
    uint64_t resets = atomic_load(&ev.by_reason[RP_LEAVE_RESET]);
    int before = atomic_load(&failed);
    atomic_store(&fail_left, 1);
    assert_int_equal(rp_group_move(srv, sid, grp.g, NULL), 0);
    assert_int_equal(su_wait_closed(fd, SU_WAIT_MS), 0);
    SU_WAIT(atomic_load(&ev.by_reason[RP_LEAVE_RESET]) == resets + 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_RESET]), resets + 1);
    assert_int_equal(atomic_load(&failed), before + 1);
    assert_int_equal(atomic_load(&fail_left), 0);
}

static void a_member_array_out_of_memory_refuses_only_that_session(void **st)
{
    enum { N = MEMBERS + 2 }; /* fd[0]: refused first; fd[N-1]: 65th */
    static int fd[N];
    static rp_sid sid[N];
    enum rp_group_layout layout = *(const enum rp_group_layout *)*st;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    su_events_reset(&ev);
    gu_log_reset();
    gu_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    ev.srv = srv;
    assert_int_equal(rp_group_set_layout(srv, layout), 0);
    memset(&grp, 0, sizeof grp);
    gu_group(srv, &grp, 0, 0);
    snprintf(fail_thread, sizeof fail_thread, "%s",
             layout == RP_GROUP_HOMO ? "rp-logic" : "grp-0");
    atomic_store_explicit(&fail_thread_set, true, memory_order_release);
    atomic_store(&failed, 0);
    assert_int_equal(rp_server_start(srv), 0);
    for (int i = 0; i < N; i++)
        fd[i] = su_connect(rp_server_port(srv));
    gu_match_sids(srv, &ev, fd, sid, N);

    /* The very first member: the array's first allocation fails. */
    enter_refused(srv, fd[0], sid[0]);
    struct rp_group_stats gs;
    rp_group_get_stats(grp.g, &gs);
    assert_int_equal(gs.sessions, 0);
    assert_int_equal(gs.enters, 0);

    /* The array fills up to its first capacity... */
    for (int i = 1; i <= MEMBERS; i++)
        assert_int_equal(rp_group_move(srv, sid[i], grp.g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == MEMBERS);
    assert_int_equal(atomic_load(&gu_log.enters), MEMBERS);

    /* ...and cannot grow for one more: that one alone is refused, while
       the members' frames go on reaching the group. */
    for (int i = 1; i <= MEMBERS; i++)
        gu_send_seq(fd[i], 0);
    enter_refused(srv, fd[MEMBERS + 1], sid[MEMBERS + 1]);
    for (int i = 1; i <= MEMBERS; i++)
        gu_send_seq(fd[i], 1);
    SU_WAIT(atomic_load(&gu_log.grp_msgs) == 2 * MEMBERS);
    assert_int_equal(atomic_load(&gu_log.grp_msgs), 2 * MEMBERS);
    rp_group_get_stats(grp.g, &gs);
    assert_int_equal(gs.sessions, MEMBERS);
    assert_int_equal(gs.enters, MEMBERS);
    assert_int_equal(gs.leaves, 0);

    /* Memory back: the array grows and the group stops as ever, each
       member going back to no group and staying connected. */
    int late = su_connect(rp_server_port(srv));
    rp_sid late_sid;
    SU_WAIT(atomic_load(&ev.joins) == N + 1);
    gu_match_sids(srv, &ev, &late, &late_sid, 1);
    assert_int_equal(rp_group_move(srv, late_sid, grp.g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == MEMBERS + 1);
    assert_int_equal(rp_group_stop(grp.g), 0);
    rp_group_get_stats(grp.g, &gs);
    assert_int_equal(gs.sessions, 0);
    assert_int_equal(gs.enters, MEMBERS + 1);
    assert_int_equal(gs.leaves, MEMBERS + 1);
    assert_int_equal(gs.inbox_depth, 0);
    gu_send_seq(late, 0);
    for (int i = 1; i <= MEMBERS; i++)
        gu_send_seq(fd[i], 2);
    SU_WAIT(atomic_load(&gu_log.srv_msgs) == MEMBERS + 1);
    assert_int_equal(atomic_load(&gu_log.srv_msgs), MEMBERS + 1);

    for (int i = 0; i < N; i++)
        close(fd[i]);
    close(late);
    SU_WAIT(atomic_load(&ev.leaves) == N + 1);
    struct gu_summary sum;
    gu_check(&sum, true, 0);
    /* The two refused sessions never appear in the group's log. */
    assert_int_equal(sum.sessions, MEMBERS + 1);
    assert_int_equal(sum.by_reason[RP_LEAVE_GROUP_STOP], MEMBERS + 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_RESET]), 2);
    assert_int_equal(atomic_load(&failed), 2);
    su_finish(srv, &ev, before);
}

/* No memory for a session's routing state: the session that was to enter
   is refused and ended with RESET (the group never sees it), and the
   others go on: one enters, leaves to no group (its routing state freed)
   and enters again, its frames in order wherever it is. */
static void a_routing_state_out_of_memory_refuses_only_that_session(void **st)
{
    enum { N = 3 };
    static int fd[N];
    static rp_sid sid[N];
    (void)st;
    uint64_t before = su_packets_alive();
    struct rp_server_config cfg;
    su_events_reset(&ev);
    gu_log_reset();
    gu_config(&cfg, &ev);
    cfg.io_threads = 2;
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    ev.srv = srv;
    memset(&grp, 0, sizeof grp);
    gu_group(srv, &grp, 0, 0);
    assert_int_equal(rp_server_start(srv), 0);
    for (int i = 0; i < N; i++)
        fd[i] = su_connect(rp_server_port(srv));
    gu_match_sids(srv, &ev, fd, sid, N);

    atomic_store(&calloc_failed, 0);
    atomic_store(&calloc_fail_left, 1);
    assert_int_equal(rp_group_move(srv, sid[0], grp.g, NULL), 0);
    assert_int_equal(su_wait_closed(fd[0], SU_WAIT_MS), 0);
    SU_WAIT(atomic_load(&ev.by_reason[RP_LEAVE_RESET]) == 1);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_RESET]), 1);
    assert_int_equal(atomic_load(&calloc_failed), 1);
    assert_int_equal(atomic_load(&calloc_fail_left), 0);

    assert_int_equal(rp_group_move(srv, sid[1], grp.g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == 1);
    gu_send_seq(fd[1], 0);
    gu_send_seq(fd[2], 0);
    SU_WAIT(atomic_load(&gu_log.grp_msgs) == 1);
    assert_int_equal(rp_group_move(srv, sid[1], NULL, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.leaves) == 1);
    gu_send_seq(fd[1], 1);
    SU_WAIT(atomic_load(&gu_log.srv_msgs) == 2);
    assert_int_equal(rp_group_move(srv, sid[1], grp.g, NULL), 0);
    SU_WAIT(atomic_load(&gu_log.enters) == 2);
    gu_send_seq(fd[1], 2);
    SU_WAIT(atomic_load(&gu_log.grp_msgs) == 2);
    assert_int_equal(atomic_load(&gu_log.grp_msgs), 2);
    struct rp_group_stats gs;
    rp_group_get_stats(grp.g, &gs);
    assert_int_equal(gs.sessions, 1);
    assert_int_equal(gs.enters, 2);
    assert_int_equal(rp_group_stop(grp.g), 0);

    for (int i = 0; i < N; i++)
        close(fd[i]);
    SU_WAIT(atomic_load(&ev.leaves) == N);
    struct gu_summary sum;
    gu_check(&sum, true, 0);
    assert_int_equal(sum.sessions, 2); /* the refused one never appears */
    assert_int_equal(sum.by_reason[RP_LEAVE_MOVED], 1);
    assert_int_equal(sum.by_reason[RP_LEAVE_GROUP_STOP], 1);
    assert_int_equal(sum.messages, 4);
    assert_int_equal(atomic_load(&ev.by_reason[RP_LEAVE_RESET]), 1);
    su_finish(srv, &ev, before);
}

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(
            a_member_array_out_of_memory_refuses_only_that_session,
            (void *)&hetero),
        cmocka_unit_test_prestate(
            a_member_array_out_of_memory_refuses_only_that_session,
            (void *)&homo),
        cmocka_unit_test(
            a_routing_state_out_of_memory_refuses_only_that_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
