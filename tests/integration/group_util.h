/*
 * Helpers for the content-group tests (header-only, gu_ prefix): groups
 * whose callbacks append to one event log, a server whose on_message logs
 * frames handled with no group, and a checker that replays each session's
 * events through the state machine the guarantees describe:
 *
 *   none --on_enter(g)--> in g --on_leave(g, MOVED|GROUP_STOP)--> none
 *   in g --on_leave(g, any other reason)--> ended (nothing after)
 *   a message is handled by the group the session is in (or, in none, by
 *   the server), with sequence numbers 0, 1, 2, ... (exactly once, in
 *   order)
 *
 * The log's mutex orders events as they happened, so a session held by two
 * groups at once, or an on_enter before the old on_leave, shows up as an
 * illegal transition. Every message payload starts with a u32 sequence.
 */
#ifndef RP_TESTS_GROUP_UTIL_H
#define RP_TESTS_GROUP_UTIL_H

#include "server_util.h"

#include <ringport/group.h>

#define GU_MAX_GROUPS 4
#define GU_MAX_EVENTS 400000

enum gu_kind { GU_ENTER = 1, GU_LEAVE, GU_MSG, GU_SRV_MSG };

struct gu_event {
    rp_sid sid;
    uint32_t order; /* position in the log */
    uint32_t seq;   /* GU_MSG / GU_SRV_MSG */
    int8_t group;   /* -1: the server */
    uint8_t kind;
    uint8_t reason; /* GU_LEAVE */
};

struct gu_group;
/* Per-test hook, called from on_message after logging (group thread). */
typedef void (*gu_msg_hook)(struct gu_group *gg, struct rp_group *g, rp_sid sid,
                            uint32_t seq);
typedef void (*gu_tick_hook)(struct gu_group *gg, struct rp_group *g,
                             int64_t elapsed_ns);

/* The hooks may be swapped while the group runs, hence atomic. A hook
   uses the 'g' it is given: gg->g is written by the test thread. */
struct gu_group {
    int index;
    struct rp_group *g;
    _Atomic(gu_msg_hook) on_msg;
    _Atomic(gu_tick_hook) on_tick;
    _Atomic uint64_t ticks;
};

static struct {
    pthread_mutex_t lock;
    struct gu_event *ev;
    uint32_t n;
    _Atomic uint64_t srv_msgs, grp_msgs;
    _Atomic uint64_t enters, leaves;
} gu_log = {.lock = PTHREAD_MUTEX_INITIALIZER};

static inline void gu_log_reset(void)
{
    pthread_mutex_lock(&gu_log.lock);
    if (!gu_log.ev)
        gu_log.ev = calloc(GU_MAX_EVENTS, sizeof *gu_log.ev);
    assert_non_null(gu_log.ev);
    gu_log.n = 0;
    pthread_mutex_unlock(&gu_log.lock);
    atomic_store(&gu_log.srv_msgs, 0);
    atomic_store(&gu_log.grp_msgs, 0);
    atomic_store(&gu_log.enters, 0);
    atomic_store(&gu_log.leaves, 0);
}

static inline void gu_log_add(rp_sid sid, int group, enum gu_kind kind,
                              uint32_t seq, int reason)
{
    pthread_mutex_lock(&gu_log.lock);
    if (gu_log.n < GU_MAX_EVENTS) {
        struct gu_event *e = &gu_log.ev[gu_log.n];
        e->sid = sid;
        e->order = gu_log.n++;
        e->seq = seq;
        e->group = (int8_t)group;
        e->kind = (uint8_t)kind;
        e->reason = (uint8_t)reason;
    }
    pthread_mutex_unlock(&gu_log.lock);
}

static inline uint32_t gu_seq_of(const uint8_t *p, size_t len)
{
    uint32_t seq = UINT32_MAX;
    if (len >= 4)
        memcpy(&seq, p, 4);
    return seq;
}

static inline void gu_on_enter(struct rp_group *g, rp_sid sid, void *data,
                               void *ticket, void *user)
{
    struct gu_group *gg = user;
    (void)g, (void)data, (void)ticket;
    gu_log_add(sid, gg->index, GU_ENTER, 0, 0);
    atomic_fetch_add(&gu_log.enters, 1);
}

static inline void gu_on_message(struct rp_group *g, rp_sid sid, void *data,
                                 const struct rp_message *msg, void *user)
{
    struct gu_group *gg = user;
    uint32_t seq = gu_seq_of(msg->payload, msg->len);
    (void)data;
    gu_log_add(sid, gg->index, GU_MSG, seq, 0);
    atomic_fetch_add(&gu_log.grp_msgs, 1);
    gu_msg_hook hook = atomic_load(&gg->on_msg);
    if (hook)
        hook(gg, g, sid, seq);
}

static inline void gu_on_tick(struct rp_group *g, int64_t elapsed, void *user)
{
    struct gu_group *gg = user;
    atomic_fetch_add(&gg->ticks, 1);
    gu_tick_hook hook = atomic_load(&gg->on_tick);
    if (hook)
        hook(gg, g, elapsed);
}

static inline void gu_on_leave(struct rp_group *g, rp_sid sid, void *data,
                               enum rp_leave_reason reason, void *user)
{
    struct gu_group *gg = user;
    (void)g, (void)data;
    gu_log_add(sid, gg->index, GU_LEAVE, 0, (int)reason);
    atomic_fetch_add(&gu_log.leaves, 1);
}

/* The server's on_message: frames of sessions in no group. */
static inline void gu_srv_message(struct rp_server *srv, rp_sid sid, void *data,
                                  const struct rp_message *msg, void *user)
{
    (void)srv, (void)data;
    (void)user;
    gu_log_add(sid, -1, GU_SRV_MSG, gu_seq_of(msg->payload, msg->len), 0);
    atomic_fetch_add(&gu_log.srv_msgs, 1);
}

static inline void gu_config(struct rp_server_config *cfg, struct su_events *ev)
{
    su_config(cfg, ev);
    cfg->cb.on_message = gu_srv_message;
}

static inline struct rp_group *gu_group(struct rp_server *srv,
                                        struct gu_group *gg, int index,
                                        uint32_t tick_ms)
{
    char name[16];
    snprintf(name, sizeof name, "grp-%d", index);
    gg->index = index;
    struct rp_group_config gc = {.name = name,
                                 .tick_ms = tick_ms,
                                 .cb = {.on_enter = gu_on_enter,
                                        .on_message = gu_on_message,
                                        .on_tick = gu_on_tick,
                                        .on_leave = gu_on_leave},
                                 .user = gg};
    assert_int_equal(rp_group_create(srv, &gc, &gg->g), 0);
    assert_string_equal(rp_group_name(gg->g), name);
    assert_ptr_equal(rp_group_server(gg->g), srv);
    return gg->g;
}

static inline int gu_event_cmp(const void *a, const void *b)
{
    const struct gu_event *x = a, *y = b;
    if (x->sid != y->sid)
        return x->sid < y->sid ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* What the checker found, for the test's own asserts. */
struct gu_summary {
    uint32_t sessions;     /* distinct sids seen */
    uint32_t moved_leaves; /* MOVED or GROUP_STOP */
    uint32_t final_leaves; /* any other reason */
    uint32_t by_reason[RP_LEAVE_REASON_COUNT];
    uint64_t messages; /* group + server */
};

/*
 * Replays every session's events (see the file comment) and fails the test
 * on the first illegal one. 'all_out': every session must end outside any
 * group. 'want_msgs' (if not 0): every session handled exactly this many
 * messages.
 */
static inline void gu_check(struct gu_summary *out, bool all_out,
                            uint32_t want_msgs)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&gu_log.lock);
    uint32_t n = gu_log.n;
    assert_true(n < GU_MAX_EVENTS);
    qsort(gu_log.ev, n, sizeof *gu_log.ev, gu_event_cmp);
    for (uint32_t i = 0; i < n;) {
        rp_sid sid = gu_log.ev[i].sid;
        int where = -1; /* -1: no group */
        bool ended = false;
        uint32_t next = 0;
        out->sessions++;
        for (; i < n && gu_log.ev[i].sid == sid; i++) {
            const struct gu_event *e = &gu_log.ev[i];
            if (ended)
                fail_msg("sid %llx: event %u after its final leave",
                         (unsigned long long)sid, e->kind);
            switch (e->kind) {
            case GU_ENTER:
                if (where != -1)
                    fail_msg("sid %llx: enter %d while in %d",
                             (unsigned long long)sid, e->group, where);
                where = e->group;
                break;
            case GU_LEAVE:
                if (where != e->group)
                    fail_msg("sid %llx: leave %d while in %d",
                             (unsigned long long)sid, e->group, where);
                where = -1;
                out->by_reason[e->reason]++;
                if (e->reason == RP_LEAVE_MOVED ||
                    e->reason == RP_LEAVE_GROUP_STOP) {
                    out->moved_leaves++;
                } else {
                    out->final_leaves++;
                    ended = true;
                }
                break;
            case GU_MSG:
            case GU_SRV_MSG:
                if ((e->kind == GU_MSG && where != e->group) ||
                    (e->kind == GU_SRV_MSG && where != -1))
                    fail_msg("sid %llx: message %u handled by %d while in %d",
                             (unsigned long long)sid, e->seq,
                             e->kind == GU_MSG ? e->group : -1, where);
                if (e->seq != next)
                    fail_msg("sid %llx: message %u, expected %u",
                             (unsigned long long)sid, e->seq, next);
                next++;
                out->messages++;
                break;
            }
        }
        if (all_out && where != -1)
            fail_msg("sid %llx: still in group %d", (unsigned long long)sid,
                     where);
        if (want_msgs && next != want_msgs)
            fail_msg("sid %llx: %u messages handled, expected %u",
                     (unsigned long long)sid, next, want_msgs);
    }
    pthread_mutex_unlock(&gu_log.lock);
}

/* Sends frame 'seq' (payload: the u32 sequence number) on 'fd'. */
static inline void gu_send_seq(int fd, uint32_t seq)
{
    uint8_t p[4];
    memcpy(p, &seq, 4);
    su_send_frame(fd, 1, p, sizeof p);
}

/* The server-side sid of each of 'n' client sockets, matched by port. */
static inline void gu_match_sids(struct rp_server *srv, struct su_events *ev,
                                 const int *fd, rp_sid *sid, size_t n)
{
    SU_WAIT(atomic_load(&ev->joins) >= n);
    assert_true(atomic_load(&ev->joins) >= n);
    pthread_mutex_lock(&ev->lock);
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_in local;
        socklen_t len = sizeof local;
        getsockname(fd[i], (struct sockaddr *)&local, &len);
        sid[i] = RP_SID_NONE;
        for (size_t j = 0; j < ev->n_joined; j++) {
            struct sockaddr_storage ss;
            socklen_t plen = sizeof ss;
            if (rp_server_peer(srv, ev->joined[j], &ss, &plen) < 0)
                continue;
            if (((struct sockaddr_in *)&ss)->sin_port == local.sin_port)
                sid[i] = ev->joined[j];
        }
        assert_true(sid[i] != RP_SID_NONE);
    }
    pthread_mutex_unlock(&ev->lock);
}

#endif
