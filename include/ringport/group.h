/*
 * rp_group: content groups, the "hetero" thread design. Each content of a
 * game (lobby, PVP, dungeon, ...) is a group with its own thread, its own
 * sessions and its own tick; a session is in no group (its frames go to
 * the server's on_message on its I/O thread) or in exactly one, and its
 * frames always go to the thread of the group it is in.
 *
 *   I/O thread: frame for a grouped session -> copy into a packet -> push
 *               onto the group's inbox (lock-free; the push that finds it
 *               empty wakes the group thread)
 *   group thread: drains its inbox in order (on_enter, on_message,
 *                 on_leave), runs on_tick at its interval, sends with
 *                 rp_server_send / rp_server_broadcast
 *
 * Layouts (rp_group_set_layout, before the first group): HETERO (default)
 * gives every group its own thread, named after the group; HOMO runs every
 * group's callbacks on one shared logic thread ("rp-logic"), the single
 * Update loop, so both designs can be measured on the same game code.
 *
 * Guarantees (docs/groups.md says how each is tested): a session's
 * messages are handled in arrival order, exactly once, by one group at a
 * time, across any number of moves; the old group's on_leave runs before
 * the new group's on_enter, and messages that arrive during a move are
 * handled by the new group after its on_enter; every on_enter in a group
 * is balanced by exactly one on_leave in that group; a group never sees a
 * session id reused while it holds it; the session's data goes with it
 * (server.h: the group's thread owns it while the session is inside), and
 * a move's ticket comes back exactly once.
 *
 * Groups work with framed servers only. Errors: >= 0 success, -errno.
 */
#ifndef RINGPORT_GROUP_H
#define RINGPORT_GROUP_H

#include <ringport/api.h>
#include <ringport/packet.h>
#include <ringport/server.h>
#include <ringport/session.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rp_group; /* owned by its server; freed by rp_server_destroy */

enum rp_group_layout {
    RP_GROUP_HETERO = 0, /* one thread per group (default) */
    RP_GROUP_HOMO = 1,   /* every group on one shared logic thread */
};

/*
 * Callbacks run on the group's thread, one at a time for the whole group
 * (and, in HOMO, for all groups). They must not block for long: a slow
 * handler delays every session of the group and its ticks (counted as
 * overruns). They may call any rp_server_* and rp_group_* function except
 * rp_group_stop and rp_server_stop, which wait for this thread and return
 * -EDEADLK here (rp_server_destroy logs an error and does nothing).
 */
struct rp_group_callbacks {
    /* The session is now in this group; its messages follow. 'data' is
       the session's data (rp_session_set_data), as the previous holder
       left it; 'ticket' is what rp_group_move was given (NULL: none),
       now the program's again. */
    void (*on_enter)(struct rp_group *g, rp_sid sid, void *data, void *ticket,
                     void *user);
    /* One message, in arrival order. 'msg' is valid during the call;
       rp_message_keep keeps it (a reference: a group's message is already
       a packet, msg->packet, which rp_server_send can forward as is). */
    void (*on_message)(struct rp_group *g, rp_sid sid, void *data,
                       const struct rp_message *msg, void *user);
    /* Every tick_ms (if not 0). 'elapsed_ns' is the time since the
       previous tick started (since the group started, for the first): a
       value over the interval says the thread was late, and an overrun
       was counted (see rp_group_stats). */
    void (*on_tick)(struct rp_group *g, int64_t elapsed_ns, void *user);
    /* The session has left: RP_LEAVE_MOVED (rp_group_move), GROUP_STOP
       (rp_group_stop), or why it ended (peer closed, kicked, server stop,
       ...), in which case 'sid' is already stale for every rp_server_*
       call and the server's on_leave follows (it gets 'data' last).
       Exactly once per on_enter. The group holds 'data' until this
       returns. */
    void (*on_leave)(struct rp_group *g, rp_sid sid, void *data,
                     enum rp_leave_reason reason, void *user);
    /* Resume (server resume_grace_ms > 0): the member's connection was
       lost (it is detached: still a member, its sends are kept), or a new
       connection resumed it. In order with its messages: messages before
       on_detach arrived on the old connection, after on_resume on the new
       one. A detach during a move is told to the group entered next. May
       be NULL. */
    void (*on_detach)(struct rp_group *g, rp_sid sid, void *data, void *user);
    void (*on_resume)(struct rp_group *g, rp_sid sid, void *data, void *user);
    /* A packet posted with rp_group_post, with the poster's 'tag', in
       each producer's order (posts of different producers interleave
       as they reach the inbox). msg->packet is the posted packet and
       'msg' is valid during the call; rp_message_keep keeps it. NULL:
       the group takes no posts (rp_group_post returns -EINVAL). */
    void (*on_post)(struct rp_group *g, uint32_t tag,
                    const struct rp_message *msg, void *user);
};

struct rp_group_config {
    const char *name; /* thread name in HETERO (15 chars show); copied */
    uint32_t tick_ms; /* 0: no tick; else 1..60,000 */
    struct rp_group_callbacks cb;
    void *user; /* passed to every callback */
    /* Posts (rp_group_post) queued and not yet handled, at most; a post
       past it returns -ENOBUFS. 0: RP_GROUP_POST_LIMIT_DEFAULT. */
    uint32_t post_limit;
};

#define RP_GROUP_POST_LIMIT_DEFAULT 4096

/*
 * Chooses the layout for the groups of 'srv'. Returns 0, -EBUSY once a
 * group exists, or -EINVAL. Thread: the one that creates the groups.
 */
RP_API int rp_group_set_layout(struct rp_server *srv,
                               enum rp_group_layout layout);

/*
 * Creates a group on 'srv' and starts its thread (HETERO) or adds it to the
 * shared logic thread (HOMO). Groups may be created before or after
 * rp_server_start. The thread may run before this returns: callbacks use
 * the group they are passed, not *out. Returns 0, -EINVAL (no name, bad tick,
 * raw-mode server), -ESHUTDOWN (server stopped), -ENOMEM or a pthread error.
 * Thread: any but the server's and groups' own threads.
 */
RP_API int rp_group_create(struct rp_server *srv,
                           const struct rp_group_config *cfg,
                           struct rp_group **out);

/*
 * Moves session 'sid' into group 'to' (NULL: back to no group), after the
 * messages it already has in its current group. Asynchronous: the move is
 * applied on the session's I/O thread; on_leave (RP_LEAVE_MOVED) runs in the
 * old group, then on_enter in the new one. A move requested while another
 * is under way replaces its target (the latest wins); a move to the group
 * the session is in changes nothing. If 'to' is stopping when the move is
 * applied the session goes to no group.
 *
 * 'ticket' (NULL: none) is the move's payload: 'to's on_enter receives it,
 * after the old group's on_leave, so whatever the mover wrote before the
 * call is visible there. Once the call returns 0 the ticket is the
 * engine's until it comes back, exactly once: to that on_enter, or to the
 * server's on_ticket_drop (the move was replaced, its target was stopping
 * or is the session's group already, or the session ended in transit);
 * either may happen before the call returns. A call that fails leaves it
 * with the caller. A ticket needs a target that has an on_enter and a
 * server with on_ticket_drop.
 *
 * Returns 0, -ENOTCONN if 'sid' is stale or closing (nothing changes),
 * -EINVAL if 'to' belongs to another server or a ticket cannot come back
 * (see above), -ESHUTDOWN if 'to' is stopping, or -ENOMEM.
 * Thread: any, including a group's own handlers.
 */
RP_API int rp_group_move(struct rp_server *srv, rp_sid sid, struct rp_group *to,
                         void *ticket);

/*
 * Stops the group: new moves into it are refused, every session inside
 * leaves (on_leave with RP_LEAVE_GROUP_STOP, once each) and goes back to
 * no group, then its thread exits (HETERO). Returns 0 once done, or
 * -EDEADLK if called from a group's handler or an I/O thread of the
 * server (it waits on both). Idempotent. rp_server_stop stops every group
 * after the sessions have ended (their on_leave says SERVER_STOP).
 * Thread: any other.
 */
RP_API int rp_group_stop(struct rp_group *g);

/*
 * Posts 'pkt' with 'tag' to the group: its thread calls on_post(g, tag,
 * msg) with it, in this producer's order. This is how a thread that is
 * not the engine's (a library's callback thread, a timer, another group)
 * hands work to a content without a lock: it copies what it got into a
 * packet and posts it. Lock-free (one exchange on the group's inbox, one
 * atomic on its post count), never blocks.
 *
 * On 0 the group has taken its own reference to 'pkt' (the caller keeps
 * its own) and will hand it to on_post exactly once, even when the group
 * stops afterwards: a stopping group handles every post it accepted
 * before it finishes. A call that fails takes nothing.
 *
 * Returns 0; -ENOBUFS if post_limit posts are queued already (the group
 * is behind: the caller drops or retries, and counts it); -ESHUTDOWN if
 * the group is stopping or stopped; -EINVAL if 'pkt' is NULL or the group
 * has no on_post; -ENOMEM. Thread: any, including foreign threads and
 * the group's own handlers, until rp_server_destroy (stop every poster
 * before that: the group is freed there).
 */
RP_API int rp_group_post(struct rp_group *g, uint32_t tag,
                         struct rp_packet *pkt);

RP_API const char *rp_group_name(const struct rp_group *g);
RP_API struct rp_server *rp_group_server(const struct rp_group *g);

/*
 * Tick duration histogram: tick_buckets[b] counts ticks whose on_tick took
 * at most rp_group_tick_bounds_ns[b] (and more than the bound before it);
 * tick_buckets[RP_GROUP_TICK_BUCKETS] counts the slower ones. Per-bucket
 * counts, not cumulative. Bounds: 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50,
 * 100, 250 and 1000 ms.
 */
#define RP_GROUP_TICK_BUCKETS 12
RP_API extern const uint64_t rp_group_tick_bounds_ns[RP_GROUP_TICK_BUCKETS];

/* Counters, written by the group's thread, read with relaxed loads. */
struct rp_group_stats {
    uint64_t sessions;       /* inside now */
    uint64_t enters, leaves; /* on_enter / on_leave calls so far */
    uint64_t messages;       /* on_message calls */
    uint64_t inbox_depth;    /* queued, not yet handled (approximate) */
    uint64_t ticks;          /* on_tick calls */
    uint64_t tick_overruns;  /* ticks that ended past the next deadline */
    uint64_t tick_ns_max, tick_ns_sum;                /* on_tick durations */
    uint64_t tick_buckets[RP_GROUP_TICK_BUCKETS + 1]; /* see above */
    uint64_t posts;                                   /* on_post calls */
    uint64_t posts_refused; /* rp_group_post calls that got -ENOBUFS */
};

RP_API void rp_group_get_stats(const struct rp_group *g,
                               struct rp_group_stats *out);

#ifdef __cplusplus
}
#endif

#endif
