/*
 * The game developer's API around a session: its data (the completion
 * key), move tickets, and the one message view.
 *   - data set in on_join reaches every later callback, server and group,
 *     follows the session through moves, can be replaced by the holder,
 *     and reaches the server's on_leave last, after the group's final
 *     on_leave, however the session ends (peer close, kick, server stop);
 *     a stale id has none;
 *   - a move's ticket reaches the target's on_enter, or comes back once
 *     through on_ticket_drop when no on_enter will get it (already there,
 *     replaced by a later move, session ended in transit, target stopped
 *     meanwhile, server stopped); a move that fails leaves it with the
 *     caller;
 *   - server and group handlers get the same struct rp_message, and
 *     rp_message_keep keeps it: a reference to the group's packet, a copy
 *     of the server's receive-buffer view, usable after the call.
 * The thread-hand-off side of the same promises (under TSan, with sessions
 * dying mid-move) is tests/stress/test_group_tickets.c.
 */
#include "group_util.h"

#define T_PING 1     /* echoed by whoever handles it */
#define T_KEEP 60    /* kept and sent back later (group tick or test) */
#define T_REPLACE 50 /* a group moves it twice: the first ticket drops */
#define T_DIE 51     /* a group moves it, then kicks it */
#define T_STALL 52   /* a group moves it and waits for its target to stop */
#define NGROUPS 4    /* the 4th is the one a test stops */
#define MAGIC 0x5e55u

/* ---- session data ------------------------------------------------------ */

/* A session's data: allocated in on_join, freed in the server's on_leave.
   The plain fields are written by whichever thread holds the session. */
struct sd {
    uint32_t magic;
    rp_sid sid;
    int where;        /* -1: no group */
    uint32_t version; /* bumped when group 1 replaces the object */
    bool group_final; /* a group's final on_leave ran */
};

static struct rp_server *the_srv;
static struct rp_group *groups[NGROUPS];
static _Atomic int errors; /* no cmocka assert off the test thread */
static _Atomic uint64_t joins, leaves, alive, finals_first, versions;
static _Atomic uint64_t enters, srv_msgs, grp_msgs;
static _Atomic rp_sid last_sid;
static _Atomic(struct rp_packet *) srv_kept;
static struct rp_packet *grp_kept; /* group 0's thread only */
static rp_sid grp_kept_sid;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            print_error("%s:%d: %s\n", __FILE__, __LINE__, #cond);             \
            atomic_fetch_add(&errors, 1);                                      \
        }                                                                      \
    } while (0)

static void check_data(rp_sid sid, const struct sd *d, int where)
{
    CHECK(d != NULL);
    if (!d)
        return;
    CHECK(d->magic == MAGIC);
    CHECK(d->sid == sid);
    CHECK(d->where == where);
    CHECK(rp_session_get_data(the_srv, sid) == d);
}

/* ---- tickets ----------------------------------------------------------- */

struct tk {
    rp_sid sid;
    _Atomic int entered, dropped;
    int target; /* group index on_enter must be */
};

static struct tk tk[16];

static struct tk *tk_new(int i, rp_sid sid, int target)
{
    tk[i].sid = sid;
    tk[i].target = target;
    return &tk[i];
}

static void on_ticket_drop(struct rp_server *srv, rp_sid sid, void *ticket,
                           void *user)
{
    struct tk *t = ticket;
    (void)srv, (void)user;
    CHECK(t->sid == sid);
    atomic_fetch_add(&t->dropped, 1);
}

/* ---- the server's callbacks ---------------------------------------------- */

static void echo(rp_sid sid, const struct rp_message *msg)
{
    struct rp_packet *pkt;
    CHECK(rp_message_keep(msg, &pkt) == 0);
    CHECK(msg->packet ? pkt == msg->packet : pkt != NULL);
    CHECK(rp_packet_size(pkt) == msg->len);
    CHECK(memcmp(rp_packet_payload(pkt), msg->payload, msg->len) == 0);
    (void)rp_server_send(the_srv, sid, pkt);
    rp_packet_unref(pkt);
}

static void on_join(struct rp_server *srv, rp_sid sid, void *user)
{
    (void)user;
    CHECK(rp_session_get_data(srv, sid) == NULL);
    struct sd *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    d->magic = MAGIC;
    d->sid = sid;
    d->where = -1;
    CHECK(rp_session_set_data(srv, sid, d) == 0);
    atomic_fetch_add(&alive, 1);
    atomic_store(&last_sid, sid);
    atomic_fetch_add(&joins, 1);
}

static void on_message(struct rp_server *srv, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)srv, (void)user;
    check_data(sid, data, -1);
    if (msg->type == T_KEEP) {
        /* Straight from a receive buffer (this session was never in a
           group): keep copies it. Frames held during a move out of a group
           are packets already, like a group's. */
        struct rp_packet *pkt;
        CHECK(msg->packet == NULL);
        CHECK(rp_message_keep(msg, &pkt) == 0);
        CHECK(pkt != NULL && rp_packet_payload(pkt) != msg->payload);
        atomic_store(&srv_kept, pkt); /* the test thread sends it later */
    } else {
        echo(sid, msg);
    }
    atomic_fetch_add(&srv_msgs, 1);
}

static void on_leave(struct rp_server *srv, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    struct sd *d = data;
    (void)user, (void)reason;
    /* Every group callback is over: no group holds it. */
    check_data(sid, d, -1);
    CHECK(rp_server_disconnect(srv, sid) == -ENOTCONN);
    if (d->group_final)
        atomic_fetch_add(&finals_first, 1);
    atomic_fetch_add(&versions, d->version);
    free(d);
    atomic_fetch_sub(&alive, 1);
    atomic_fetch_add(&leaves, 1);
}

/* ---- the groups' callbacks ----------------------------------------------- */

static _Atomic int stall_state; /* T_STALL: 1 = stop it now, 2 = stopped */

static void g_enter(struct rp_group *g, rp_sid sid, void *data, void *ticket,
                    void *user)
{
    int idx = (int)(intptr_t)user;
    struct sd *d = data;
    (void)g;
    check_data(sid, d, -1);
    if (idx == 1) {
        /* The holder may replace the data: later callbacks get the new. */
        struct sd *n = malloc(sizeof *n);
        CHECK(n != NULL);
        *n = *d;
        n->version++;
        free(d);
        CHECK(rp_session_set_data(the_srv, sid, n) == 0);
        d = n;
    }
    d->where = idx;
    if (ticket) {
        struct tk *t = ticket;
        CHECK(t->sid == sid);
        CHECK(t->target == idx);
        atomic_fetch_add(&t->entered, 1);
    }
    atomic_fetch_add(&enters, 1);
}

static void g_message(struct rp_group *g, rp_sid sid, void *data,
                      const struct rp_message *msg, void *user)
{
    int idx = (int)(intptr_t)user;
    struct sd *d = data;
    check_data(sid, d, idx);
    /* A group's message is already a packet: keep is a reference. */
    CHECK(msg->packet != NULL);
    CHECK(msg->payload == rp_packet_payload(msg->packet));
    CHECK(msg->type == rp_packet_type(msg->packet));
    atomic_fetch_add(&grp_msgs, 1);
    switch (msg->type) {
    case T_KEEP: {
        struct rp_packet *pkt;
        CHECK(rp_message_keep(msg, &pkt) == 0);
        CHECK(pkt == msg->packet);
        CHECK(idx == 0 && grp_kept == NULL);
        grp_kept = pkt; /* sent by group 0's next tick */
        grp_kept_sid = sid;
        break;
    }
    case T_REPLACE:
        CHECK(rp_group_move(the_srv, sid, groups[1], tk_new(2, sid, 1)) == 0);
        CHECK(rp_group_move(the_srv, sid, groups[2], tk_new(3, sid, 2)) == 0);
        break;
    case T_DIE:
        CHECK(rp_group_move(the_srv, sid, groups[0], tk_new(4, sid, 0)) == 0);
        CHECK(rp_server_disconnect(the_srv, sid) == 0);
        break;
    case T_STALL: {
        CHECK(rp_group_move(the_srv, sid, groups[3], tk_new(5, sid, 3)) == 0);
        /* The move waits for our on_leave; the target stops meanwhile. */
        atomic_store(&stall_state, 1);
        uint64_t end = su_now_ms() + SU_WAIT_MS;
        while (atomic_load(&stall_state) != 2 && su_now_ms() < end)
            su_sleep_ms(1);
        CHECK(atomic_load(&stall_state) == 2);
        break;
    }
    default: (void)rp_server_send(rp_group_server(g), sid, msg->packet);
    }
    (void)g;
}

static void g_tick(struct rp_group *g, int64_t elapsed_ns, void *user)
{
    (void)elapsed_ns, (void)user;
    if (!grp_kept)
        return;
    (void)rp_server_send(rp_group_server(g), grp_kept_sid, grp_kept);
    rp_packet_unref(grp_kept);
    grp_kept = NULL;
}

static void g_leave(struct rp_group *g, rp_sid sid, void *data,
                    enum rp_leave_reason reason, void *user)
{
    int idx = (int)(intptr_t)user;
    struct sd *d = data;
    (void)g;
    check_data(sid, d, idx);
    d->where = -1;
    if (reason != RP_LEAVE_MOVED && reason != RP_LEAVE_GROUP_STOP)
        d->group_final = true;
}

/* ---- set-up ------------------------------------------------------------ */

static void reset(void)
{
    atomic_store(&errors, 0);
    atomic_store(&joins, 0);
    atomic_store(&leaves, 0);
    atomic_store(&alive, 0);
    atomic_store(&finals_first, 0);
    atomic_store(&versions, 0);
    atomic_store(&enters, 0);
    atomic_store(&srv_msgs, 0);
    atomic_store(&grp_msgs, 0);
    atomic_store(&stall_state, 0);
    atomic_store(&srv_kept, NULL);
    grp_kept = NULL;
    for (size_t i = 0; i < sizeof tk / sizeof tk[0]; i++) {
        tk[i].sid = RP_SID_NONE;
        atomic_store(&tk[i].entered, 0);
        atomic_store(&tk[i].dropped, 0);
    }
}

static struct rp_server *start(enum rp_group_layout layout)
{
    reset();
    struct rp_server_config cfg;
    su_config(&cfg, NULL);
    cfg.io_threads = 2;
    cfg.cb.on_join = on_join;
    cfg.cb.on_message = on_message;
    cfg.cb.on_leave = on_leave;
    cfg.cb.on_ticket_drop = on_ticket_drop;
    cfg.user = NULL;
    struct rp_server *srv;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    the_srv = srv;
    assert_int_equal(rp_group_set_layout(srv, layout), 0);
    for (int i = 0; i < NGROUPS; i++) {
        char name[16];
        snprintf(name, sizeof name, "sd-%d", i);
        struct rp_group_config gc = {.name = name,
                                     .tick_ms = i == 0 ? 5 : 0,
                                     .cb = {.on_enter = g_enter,
                                            .on_message = g_message,
                                            .on_tick = g_tick,
                                            .on_leave = g_leave},
                                     .user = (void *)(intptr_t)i};
        assert_int_equal(rp_group_create(srv, &gc, &groups[i]), 0);
    }
    assert_int_equal(rp_server_start(srv), 0);
    return srv;
}

/* Connects one client and returns its sid. */
static rp_sid join(struct rp_server *srv, int *fd)
{
    uint64_t before = atomic_load(&joins);
    *fd = su_connect(rp_server_port(srv));
    SU_WAIT(atomic_load(&joins) == before + 1);
    assert_int_equal(atomic_load(&joins), before + 1);
    return atomic_load(&last_sid);
}

static uint64_t group_enters(int i)
{
    struct rp_group_stats gs;
    rp_group_get_stats(groups[i], &gs);
    return gs.enters;
}

static uint64_t group_leaves(int i)
{
    struct rp_group_stats gs;
    rp_group_get_stats(groups[i], &gs);
    return gs.leaves;
}

/* Moves 'sid' into group 'to' and waits until it is there. */
static void move_to(struct rp_server *srv, rp_sid sid, int to)
{
    uint64_t before = group_enters(to);
    assert_int_equal(rp_group_move(srv, sid, groups[to], NULL), 0);
    SU_WAIT(group_enters(to) == before + 1);
    assert_int_equal(group_enters(to), before + 1);
}

static void ping(int fd, uint16_t type)
{
    uint8_t p[3] = {1, 2, (uint8_t)type};
    su_send_frame(fd, type, p, sizeof p);
    su_expect_frame(fd, type, p, sizeof p);
}

/* ---- tests ------------------------------------------------------------- */

static void data_follows_the_session_and_on_leave_gets_it_last(void **state)
{
    enum rp_group_layout layout = *(const enum rp_group_layout *)*state;
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(layout);
    int fd[3];
    rp_sid sid[3];
    for (int i = 0; i < 3; i++)
        sid[i] = join(srv, &fd[i]);

    /* In no group, then through every group and back, the same data. */
    ping(fd[0], T_PING);
    move_to(srv, sid[0], 0);
    ping(fd[0], T_PING);
    move_to(srv, sid[0], 1); /* replaces the data object */
    ping(fd[0], T_PING);
    /* Back to no group: once group 1 has let it go, its frames go to the
       server (those that arrive while it moves wait for the move). */
    uint64_t left = group_leaves(1);
    assert_int_equal(rp_group_move(srv, sid[0], NULL, NULL), 0);
    SU_WAIT(group_leaves(1) == left + 1);
    ping(fd[0], T_PING);
    assert_int_equal(atomic_load(&srv_msgs), 2);
    move_to(srv, sid[0], 2);
    ping(fd[0], T_PING);
    move_to(srv, sid[0], 1); /* and again */
    ping(fd[0], T_PING);

    /* Kept messages outlive their callback: a group's is the packet
       itself (sent on the next tick), the server's is a copy (sent from
       here, after the receive buffer moved on). */
    move_to(srv, sid[1], 0);
    uint8_t k1[5] = {'g', 'k', 'e', 'e', 'p'};
    su_send_frame(fd[1], T_KEEP, k1, sizeof k1);
    su_expect_frame(fd[1], T_KEEP, k1, sizeof k1);
    uint8_t k2[4] = {'s', 'r', 'v', 'k'};
    su_send_frame(fd[2], T_KEEP, k2, sizeof k2);
    SU_WAIT(atomic_load(&srv_kept) != NULL);
    struct rp_packet *kept = atomic_exchange(&srv_kept, NULL);
    assert_non_null(kept);
    ping(fd[2], T_PING); /* the buffer the frame was in is reused */
    assert_int_equal(rp_server_send(srv, sid[2], kept), 0);
    rp_packet_unref(kept);
    su_expect_frame(fd[2], T_KEEP, k2, sizeof k2);

    /* Three ends, each in a group: peer close, kick, server stop. The
       server's on_leave comes after the group's final on_leave. */
    move_to(srv, sid[2], 2);
    close(fd[0]);
    assert_int_equal(rp_server_disconnect(srv, sid[1]), 0);
    SU_WAIT(atomic_load(&leaves) == 2);
    assert_int_equal(atomic_load(&leaves), 2);
    /* A stale id has no data, and cannot be given any. */
    assert_null(rp_session_get_data(srv, sid[0]));
    assert_int_equal(rp_session_set_data(srv, sid[0], &kept), -ENOTCONN);
    assert_null(rp_session_get_data(srv, RP_SID_NONE));
    rp_server_stop(srv);
    assert_int_equal(atomic_load(&leaves), 3);
    assert_int_equal(atomic_load(&finals_first), 3);
    assert_int_equal(atomic_load(&alive), 0);
    assert_int_equal(atomic_load(&versions), 2); /* entered group 1 twice */
    assert_int_equal(atomic_load(&errors), 0);
    rp_server_destroy(srv);
    close(fd[1]);
    close(fd[2]);
    assert_int_equal(su_packets_alive(), before);
}

static void tickets_reach_on_enter_or_come_back_once(void **state)
{
    (void)state;
    uint64_t before = su_packets_alive();
    struct rp_server *srv = start(RP_GROUP_HETERO);
    int fd[3];
    rp_sid sid[3];
    for (int i = 0; i < 3; i++)
        sid[i] = join(srv, &fd[i]);

    /* To on_enter. */
    assert_int_equal(
        rp_group_move(srv, sid[0], groups[0], tk_new(0, sid[0], 0)), 0);
    SU_WAIT(atomic_load(&tk[0].entered) == 1);
    /* Already there: nothing changes, the ticket comes back. */
    assert_int_equal(
        rp_group_move(srv, sid[0], groups[0], tk_new(1, sid[0], 0)), 0);
    SU_WAIT(atomic_load(&tk[1].dropped) == 1);
    /* Refused moves leave the ticket with the caller. */
    assert_int_equal(rp_group_move(srv, sid[0], NULL, &tk[15]), -EINVAL);
    assert_int_equal(rp_group_move(srv, RP_SID_NONE, groups[0], &tk[15]),
                     -ENOTCONN);
    /* Replaced by a later move: the first target never sees its ticket. */
    su_send_frame(fd[0], T_REPLACE, "r", 1);
    SU_WAIT(atomic_load(&tk[3].entered) == 1);
    ping(fd[0], T_PING); /* handled in group 2 */
    /* Ended in transit. */
    su_send_frame(fd[0], T_DIE, "d", 1);
    SU_WAIT(atomic_load(&leaves) == 1);
    /* The target stopped while the old group held the session: it goes
       to no group and the ticket comes back. */
    move_to(srv, sid[1], 0);
    su_send_frame(fd[1], T_STALL, "s", 1);
    SU_WAIT(atomic_load(&stall_state) == 1);
    assert_int_equal(atomic_load(&stall_state), 1);
    assert_int_equal(rp_group_stop(groups[3]), 0);
    atomic_store(&stall_state, 2);
    SU_WAIT(atomic_load(&tk[5].dropped) == 1);
    assert_int_equal(rp_group_move(srv, sid[1], groups[3], &tk[15]),
                     -ESHUTDOWN);
    uint64_t srv_before = atomic_load(&srv_msgs);
    ping(fd[1], T_PING); /* in no group now */
    assert_int_equal(atomic_load(&srv_msgs), srv_before + 1);

    /* Server stop with ticketed moves in flight: each comes back once. */
    move_to(srv, sid[2], 1);
    for (int i = 0; i < 4; i++) {
        rp_sid s = i % 2 ? sid[1] : sid[2];
        int to = i % 3;
        assert_int_equal(
            rp_group_move(srv, s, groups[to], tk_new(6 + i, s, to)), 0);
    }
    rp_server_stop(srv);

    int want_entered[16] = {[0] = 1, [3] = 1};
    int want_dropped[16] = {[1] = 1, [2] = 1, [4] = 1, [5] = 1};
    for (int i = 0; i < 16; i++) {
        int e = atomic_load(&tk[i].entered), d = atomic_load(&tk[i].dropped);
        /* Ended in transit: dropped, unless the kick waited for a send
           still in flight and the move landed first (then the target's
           on_enter got it and its final on_leave followed). Stop: either. */
        if (i == 4 || (i >= 6 && i < 10)) {
            assert_int_equal(e + d, 1);
            continue;
        }
        assert_int_equal(e, want_entered[i]);
        assert_int_equal(d, want_dropped[i]);
    }
    assert_int_equal(atomic_load(&leaves), 3);
    assert_int_equal(atomic_load(&alive), 0);
    assert_int_equal(atomic_load(&errors), 0);
    rp_server_destroy(srv);
    for (int i = 0; i < 3; i++)
        close(fd[i]);
    assert_int_equal(su_packets_alive(), before);
}

static void g_enter_plain(struct rp_group *g, rp_sid sid, void *data,
                          void *ticket, void *user)
{
    (void)g, (void)sid, (void)data, (void)ticket, (void)user;
}

/* A ticket that could not come back is refused up front. */
static void ticket_without_a_way_back_is_refused(void **state)
{
    (void)state;
    struct rp_server_config cfg;
    struct rp_server *srv;
    struct rp_group *with_enter, *without_enter;
    su_config(&cfg, NULL);
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    struct rp_group_config gc = {.name = "a",
                                 .cb = {.on_enter = g_enter_plain}};
    assert_int_equal(rp_group_create(srv, &gc, &with_enter), 0);
    gc.name = "b";
    gc.cb.on_enter = NULL;
    assert_int_equal(rp_group_create(srv, &gc, &without_enter), 0);
    int t;
    /* No on_ticket_drop on the server. */
    assert_int_equal(rp_group_move(srv, rp_sid_make(1, 1), with_enter, &t),
                     -EINVAL);
    /* Without a ticket the same move only meets the stale id. */
    assert_int_equal(rp_group_move(srv, rp_sid_make(1, 1), with_enter, NULL),
                     -ENOTCONN);
    rp_server_destroy(srv);

    cfg.cb.on_ticket_drop = on_ticket_drop;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    gc.name = "c";
    assert_int_equal(rp_group_create(srv, &gc, &without_enter), 0);
    /* No on_enter in the target. */
    assert_int_equal(rp_group_move(srv, rp_sid_make(1, 1), without_enter, &t),
                     -EINVAL);
    rp_server_destroy(srv);
}

static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(
            data_follows_the_session_and_on_leave_gets_it_last,
            (void *)&hetero),
        cmocka_unit_test_prestate(
            data_follows_the_session_and_on_leave_gets_it_last, (void *)&homo),
        cmocka_unit_test(tickets_reach_on_enter_or_come_back_once),
        cmocka_unit_test(ticket_without_a_way_back_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
