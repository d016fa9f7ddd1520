/*
 * Move tickets and session data under fire: sessions hop among 3 groups
 * (and no group) with a ticket on every move, while moves replace moves
 * (two in a row from a handler), sessions die mid-move (a handler moves
 * then kicks; the test thread kicks and closes clients at random) and, at
 * the end, the server stops with ticketed moves in flight. Moves come from
 * on_join (applied in place), the groups' handlers and the test thread.
 *
 * Every ticket is a slot of a pool with a state word: the mover sets it
 * to IN_FLIGHT before rp_group_move and takes it back if the call fails;
 * on_enter and on_ticket_drop turn IN_FLIGHT into BACK with a CAS, so a
 * ticket that comes back twice, or after its move failed, is caught, and
 * one still IN_FLIGHT at the end has leaked.
 *
 * Each session's data is a record allocated in on_join and freed in the
 * server's on_leave. Its fields are plain (no atomics): 'where' and the
 * expected sequence number are written by whichever thread holds the
 * session, so under TSan the engine's hand-offs (I/O thread -> group ->
 * group -> I/O thread, and the last one to the server's on_leave) are what
 * make those accesses race-free. Runs in both layouts; make tsan runs it
 * on epoll.
 */
#include "../integration/server_util.h"

#include <ringport/group.h>
#include <ringport/log.h>

#if defined(__SANITIZE_THREAD__)
#define RP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RP_TSAN 1
#endif
#endif

#ifdef RP_TSAN
#define BATCH 150 /* TSan slows every sync point ~10x */
#define ROUNDS 4
#define MSGS 30
#else
#define BATCH 400
#define ROUNDS 5
#define MSGS 50
#endif
#define NGROUPS 3
#define NONE (-1)
#define TICKETS 400000
#define RECENT 1024 /* sids the test thread picks from */
#define MAGIC 0x7e5u

enum { T_FREE = 0, T_IN_FLIGHT, T_BACK };

struct ticket {
    _Atomic int state;
    rp_sid sid;
    int target; /* group index */
};

struct sd {
    uint32_t magic;
    rp_sid sid;
    int where;     /* plain: the holder's */
    uint32_t next; /* plain: expected sequence number */
};

static struct ticket tickets[TICKETS];
static _Atomic uint32_t tickets_used;
static struct rp_group *groups[NGROUPS];
static struct rp_server *srv;
static _Atomic uint64_t errors, moves_ok, back_enter, back_drop;
static _Atomic uint64_t joins, leaves, alive, handled;
static _Atomic rp_sid recent[RECENT];
static _Atomic uint32_t recent_n;
static _Thread_local uint64_t rng;
static uint64_t seed;

static uint64_t rnd(uint64_t lo, uint64_t hi)
{
    if (rng == 0)
        rng = seed ^ (uint64_t)(uintptr_t)&rng;
    return t_rand_range(&rng, lo, hi);
}

static void bad(void)
{
    atomic_fetch_add(&errors, 1);
}

/* ---- tickets ----------------------------------------------------------- */

static void ticket_back(rp_sid sid, struct ticket *t, int group)
{
    int expect = T_IN_FLIGHT;
    if (t < tickets || t >= tickets + TICKETS || t->sid != sid ||
        (group != NONE && t->target != group) ||
        !atomic_compare_exchange_strong(&t->state, &expect, T_BACK))
        bad();
}

/* Moves 'sid' to group 'to' (NONE: no group; no ticket then). */
static void move(rp_sid sid, int to)
{
    struct ticket *t = NULL;
    if (to != NONE) {
        uint32_t i = atomic_fetch_add(&tickets_used, 1);
        if (i < TICKETS) {
            t = &tickets[i];
            t->sid = sid;
            t->target = to;
            atomic_store(&t->state, T_IN_FLIGHT);
        }
    }
    int r = rp_group_move(srv, sid, to == NONE ? NULL : groups[to], t);
    if (r == 0) {
        atomic_fetch_add_explicit(&moves_ok, 1, memory_order_relaxed);
        return;
    }
    if (r != -ENOTCONN)
        bad();
    /* A failed move never gives the ticket back: it is still ours. */
    int expect = T_IN_FLIGHT;
    if (t && !atomic_compare_exchange_strong(&t->state, &expect, T_FREE))
        bad();
}

static int random_group(bool allow_none)
{
    return (int)rnd(allow_none ? 0 : 1, NGROUPS) - 1; /* -1 = NONE */
}

static void on_ticket_drop(struct rp_server *s, rp_sid sid, void *ticket,
                           void *user)
{
    (void)s, (void)user;
    ticket_back(sid, ticket, NONE);
    atomic_fetch_add_explicit(&back_drop, 1, memory_order_relaxed);
}

/* ---- session data ------------------------------------------------------ */

static void check_data(rp_sid sid, struct sd *d, int where)
{
    if (!d || d->magic != MAGIC || d->sid != sid || d->where != where)
        bad();
}

static void check_seq(struct sd *d, const struct rp_message *msg)
{
    uint32_t seq = UINT32_MAX;
    if (msg->len == 4)
        memcpy(&seq, msg->payload, 4);
    if (seq != d->next)
        bad();
    d->next = seq + 1;
    atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
}

/* ---- the server -------------------------------------------------------- */

static void on_join(struct rp_server *s, rp_sid sid, void *user)
{
    (void)user;
    struct sd *d = calloc(1, sizeof *d);
    if (!d) {
        bad();
        rp_server_disconnect(s, sid);
        return;
    }
    d->magic = MAGIC;
    d->sid = sid;
    d->where = NONE;
    if (rp_session_set_data(s, sid, d) < 0)
        bad();
    atomic_fetch_add(&alive, 1);
    atomic_fetch_add(&joins, 1);
    uint32_t k = atomic_fetch_add(&recent_n, 1);
    atomic_store(&recent[k % RECENT], sid);
    if (rnd(0, 3) != 0)
        move(sid, random_group(false)); /* applied here, in place */
}

static void on_message(struct rp_server *s, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user)
{
    (void)s, (void)user;
    check_data(sid, data, NONE);
    check_seq(data, msg);
    if (rnd(0, 3) == 0)
        move(sid, random_group(false));
}

static void on_leave(struct rp_server *s, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user)
{
    (void)s, (void)reason, (void)user;
    check_data(sid, data, NONE); /* no group holds it any more */
    free(data);
    atomic_fetch_sub(&alive, 1);
    atomic_fetch_add(&leaves, 1);
}

/* ---- the groups -------------------------------------------------------- */

static void g_enter(struct rp_group *g, rp_sid sid, void *data, void *ticket,
                    void *user)
{
    int idx = (int)(intptr_t)user;
    struct sd *d = data;
    (void)g;
    check_data(sid, d, NONE);
    if (d)
        d->where = idx;
    if (ticket) {
        ticket_back(sid, ticket, idx);
        atomic_fetch_add_explicit(&back_enter, 1, memory_order_relaxed);
    }
}

static void g_message(struct rp_group *g, rp_sid sid, void *data,
                      const struct rp_message *msg, void *user)
{
    int idx = (int)(intptr_t)user;
    (void)g;
    check_data(sid, data, idx);
    check_seq(data, msg);
    switch (rnd(0, 31)) {
    case 0:
    case 1:
    case 2:
    case 3: move(sid, random_group(true)); break;
    case 4:
    case 5: /* the second replaces the first: its ticket is dropped */
        move(sid, random_group(false));
        move(sid, random_group(false));
        break;
    case 6: /* dies in transit */
        move(sid, random_group(false));
        rp_server_disconnect(srv, sid);
        break;
    }
}

static void g_leave(struct rp_group *g, rp_sid sid, void *data,
                    enum rp_leave_reason reason, void *user)
{
    struct sd *d = data;
    (void)g, (void)reason;
    check_data(sid, d, (int)(intptr_t)user);
    if (d)
        d->where = NONE;
}

/* ---- the clients (the test thread) ------------------------------------- */

static void send_seq(int fd, uint32_t seq)
{
    uint8_t frame[8] = {4, 0, 1, 0};
    memcpy(frame + 4, &seq, 4);
    /* A kicked session's socket refuses: that is the point. */
    (void)send(fd, frame, sizeof frame, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static rp_sid random_recent(void)
{
    uint32_t n = atomic_load(&recent_n);
    if (n == 0)
        return RP_SID_NONE;
    return atomic_load(&recent[rnd(0, (n < RECENT ? n : RECENT) - 1)]);
}

/*
 * Connects n clients and waits until each has joined. The earlier rounds'
 * clients were closed without waiting for their sessions to end, so that
 * sessions die while new ones join; but on a loaded machine (TSan, two CPU
 * burners) two earlier batches could still be alive, and a connect past
 * max_sessions (2 x BATCH + 64) is refused by the server and never joins.
 * So wait for room first: at most one earlier batch still alive (plus the
 * 64 spare slots for sessions whose on_leave ran but whose slot is not yet
 * back). Every connect then must join: a refusal fails the test.
 */
static uint64_t most_alive_at_batch; /* measured: the overlap the wait cut */

static void connect_batch(int *fd, int n)
{
    if (atomic_load(&alive) > most_alive_at_batch)
        most_alive_at_batch = atomic_load(&alive);
    SU_WAIT(atomic_load(&alive) <= BATCH);
    assert_true(atomic_load(&alive) <= BATCH);
    struct rp_server_stats s;
    su_stats(srv, &s);
    uint64_t refused = s.refused;
    uint64_t want = atomic_load(&joins) + (uint64_t)n;
    for (int i = 0; i < n; i++)
        fd[i] = su_connect(rp_server_port(srv));
    SU_WAIT(atomic_load(&joins) >= want);
    su_stats(srv, &s);
    if (atomic_load(&joins) < want)
        fail_msg("%llu of %d clients joined, %llu refused, %llu alive",
                 (unsigned long long)(atomic_load(&joins) + (uint64_t)n - want),
                 n, (unsigned long long)(s.refused - refused),
                 (unsigned long long)atomic_load(&alive));
    assert_int_equal(s.refused, refused);
}

static void round_of_chaos(void)
{
    static int fd[BATCH];
    connect_batch(fd, BATCH);
    for (uint32_t k = 0; k < MSGS; k++) {
        for (int i = 0; i < BATCH; i++)
            if (fd[i] >= 0)
                send_seq(fd[i], k);
        for (int j = 0; j < BATCH / 8; j++) {
            rp_sid sid = random_recent();
            switch (rnd(0, 15)) {
            case 0: rp_server_disconnect(srv, sid); break;
            case 1: {
                int i = (int)rnd(0, BATCH - 1);
                if (fd[i] >= 0)
                    close(fd[i]);
                fd[i] = -1;
                break;
            }
            default: move(sid, random_group(true));
            }
        }
    }
    for (int i = 0; i < BATCH; i++)
        if (fd[i] >= 0)
            close(fd[i]);
}

static bool wait_leaves(void)
{
    uint64_t end = su_now_ms() + 60000;
    while (atomic_load(&leaves) != atomic_load(&joins) && su_now_ms() < end)
        su_sleep_ms(5);
    return atomic_load(&leaves) == atomic_load(&joins);
}

static void tickets_come_back_once_while_sessions_die_mid_move(void **state)
{
    enum rp_group_layout layout = *(const enum rp_group_layout *)*state;
    seed = t_seed();
    rng = 0;
    memset(tickets, 0, sizeof tickets);
    atomic_store(&tickets_used, 0);
    atomic_store(&recent_n, 0);
    atomic_store(&errors, 0);
    atomic_store(&moves_ok, 0);
    atomic_store(&back_enter, 0);
    atomic_store(&back_drop, 0);
    atomic_store(&joins, 0);
    atomic_store(&leaves, 0);
    atomic_store(&alive, 0);
    atomic_store(&handled, 0);
    most_alive_at_batch = 0;

    struct rp_server_config cfg;
    su_config(&cfg, NULL);
    cfg.io_threads = 2;
    cfg.max_sessions = 2 * BATCH + 64;
    cfg.cb.on_join = on_join;
    cfg.cb.on_message = on_message;
    cfg.cb.on_leave = on_leave;
    cfg.cb.on_ticket_drop = on_ticket_drop;
    cfg.user = NULL;
    assert_int_equal(rp_server_create(&cfg, &srv), 0);
    assert_int_equal(rp_group_set_layout(srv, layout), 0);
    for (int i = 0; i < NGROUPS; i++) {
        char name[16];
        snprintf(name, sizeof name, "tk-%d", i);
        struct rp_group_config gc = {.name = name,
                                     .cb = {.on_enter = g_enter,
                                            .on_message = g_message,
                                            .on_leave = g_leave},
                                     .user = (void *)(intptr_t)i};
        assert_int_equal(rp_group_create(srv, &gc, &groups[i]), 0);
    }
    assert_int_equal(rp_server_start(srv), 0);

    for (int r = 0; r < ROUNDS; r++)
        round_of_chaos();
    assert_true(wait_leaves());

    /* The stop with moves in flight: each ticket still comes back once. */
    static int fd[BATCH];
    connect_batch(fd, BATCH);
    for (int j = 0; j < 4 * BATCH; j++)
        move(random_recent(), random_group(false));
    rp_server_stop(srv);
    assert_int_equal(atomic_load(&leaves), atomic_load(&joins));
    for (int i = 0; i < BATCH; i++)
        close(fd[i]);

    uint32_t used = atomic_load(&tickets_used);
    uint64_t issued = 0;
    for (uint32_t i = 0; i < used && i < TICKETS; i++) {
        int st = atomic_load(&tickets[i].state);
        assert_int_not_equal(st, T_IN_FLIGHT); /* leaked */
        issued += st == T_BACK;
    }
    print_message("%s: %llu joins, %llu messages, %llu moves, tickets: %llu "
                  "to on_enter, %llu dropped; at most %llu sessions still "
                  "alive when a batch began (max_sessions %d)\n",
                  layout == RP_GROUP_HOMO ? "homo" : "hetero",
                  (unsigned long long)atomic_load(&joins),
                  (unsigned long long)atomic_load(&handled),
                  (unsigned long long)atomic_load(&moves_ok),
                  (unsigned long long)atomic_load(&back_enter),
                  (unsigned long long)atomic_load(&back_drop),
                  (unsigned long long)most_alive_at_batch, 2 * BATCH + 64);
    assert_int_equal(atomic_load(&errors), 0);
    assert_true(used < TICKETS);
    assert_int_equal(issued,
                     atomic_load(&back_enter) + atomic_load(&back_drop));
    assert_true(atomic_load(&back_drop) > 0);
    assert_true(atomic_load(&back_enter) > 0);
    assert_int_equal(atomic_load(&alive), 0);
    rp_server_destroy(srv);
}

static const enum rp_group_layout hetero = RP_GROUP_HETERO;
static const enum rp_group_layout homo = RP_GROUP_HOMO;

int main(int argc, char **argv)
{
    su_parse_backend(argc, argv);
    rp_log_set_level(RP_LOG_WARN); /* a line per ended session otherwise */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(
            tickets_come_back_once_while_sessions_die_mid_move,
            (void *)&hetero),
        cmocka_unit_test_prestate(
            tickets_come_back_once_while_sessions_die_mid_move, (void *)&homo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
