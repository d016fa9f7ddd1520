/*
 * Internals of content groups (layer 7), shared by src/group/: the group,
 * the runner (the thread that runs one group in HETERO, every group in
 * HOMO), and the per-server group system. Routing and moves on the I/O
 * threads live in src/net/route.c; this layer plugs into it through
 * struct net_route_ops.
 *
 * Ownership:
 *   - struct group_sys hangs off the server (srv->groups) from the first
 *     group to rp_server_destroy; 'lock' guards creation, stop and the
 *     'done' flags.
 *   - A group's inbox is written by any thread and read by its runner;
 *     everything marked "runner only" is touched by the runner thread alone.
 *   - Counters: single writer (the runner), relaxed loads by stats.
 */
#ifndef RP_GROUP_GROUP_H
#define RP_GROUP_GROUP_H

#include "core/mpsc.h"
#include "net/net.h"
#include <pthread.h>
#include <ringport/group.h>
#include <stdatomic.h>
#include <stdbool.h>

#define GROUP_HOMO_MAX 64 /* groups on the shared logic thread */
#define GROUP_BATCH 256   /* messages per group per runner turn */
#define GROUP_NAME_MAX 32

enum group_stop_mode {
    GROUP_RUNNING = 0,
    GROUP_STOP_MOVE_OUT, /* rp_group_stop: members go back to no group */
    GROUP_STOP_SERVER,   /* server stop: every member's end is on its way */
};

struct group_sys;

struct group_runner {
    struct group_sys *sys;
    pthread_t tid;
    char name[16];
    _Atomic uint32_t wake; /* futex word: 1 = woken since last cleared */
    _Atomic int quit;      /* exit once every group here is finished */
    struct rp_group *groups[GROUP_HOMO_MAX];
    _Atomic uint32_t ngroups;  /* release-published after groups[n] */
    bool started, joined;      /* under sys->lock */
    struct group_runner *next; /* sys->runners */
};

struct rp_group {
    struct rp_server *srv;
    struct group_sys *sys;
    struct group_runner *runner;
    char name[GROUP_NAME_MAX];
    struct rp_group_callbacks cb;
    void *user;
    int64_t tick_ns; /* 0: no tick */

    struct rp_mpsc inbox;
    _Atomic uint64_t pushed; /* nodes ever pushed (depth = pushed - popped) */
    _Atomic int stopping;    /* enum group_stop_mode, set once */
    _Atomic int entering;    /* ENTERs admitted, not yet handled */
    /* Posts admitted and not yet handled (plus, for an instant, callers
       that are being refused): the bound, and what a stopping group
       waits for. See group.c, "Posts". */
    _Atomic uint32_t posts_queued;
    uint32_t post_limit;
    bool done; /* finished: under sys->lock */

    /* ---- runner only ---- */
    bool finished;
    bool stop_seen;
    bool kick; /* stopping: some member still needs its move-out asked */
    rp_sid *members;
    uint32_t n_members, cap_members;
    uint32_t refused; /* entered, not members (no memory): LEAVE to come */
    int64_t next_tick_ns, last_tick_ns;

    /* ---- counters ---- */
    _Atomic uint64_t sessions, enters, leaves, messages;
    _Atomic uint64_t dropped;       /* handled without a callback (refused) */
    _Atomic uint64_t posts;         /* on_post calls (runner) */
    _Atomic uint64_t posts_refused; /* -ENOBUFS (any thread: fetch_add) */
    _Atomic uint64_t ticks, overruns, tick_ns_max, tick_ns_sum;
    _Atomic uint64_t tick_buckets[RP_GROUP_TICK_BUCKETS + 1];

    struct rp_group *next; /* sys->all */
};

struct group_sys {
    struct rp_server *srv;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a group became done */
    enum rp_group_layout layout;
    bool stopped; /* the server stopped: no new group */
    struct rp_group *all;
    struct group_runner *runners;
    struct group_runner *homo; /* HOMO: the shared runner */
};

/* ---- mailbox.c ---- */
/* net_route_ops.push: appends to the inbox, wakes the runner if it was
   empty. Thread: any. */
void rp__group_push(void *group, struct net_route_msg *m);
/* net_route_ops.turn_begin / turn_end: the calling thread's pushes hold
   their wakes from begin to end, each runner's once (mailbox.c). */
void rp__group_turn_begin(void);
void rp__group_turn_end(void);
/* Wakes the runner (a spare wake is harmless). Thread: any. */
void rp__runner_wake(struct group_runner *r);
/* Runner: clears the wake word before it looks at its inboxes. */
void rp__runner_arm(struct group_runner *r);
/* Runner: sleeps until woken or 'deadline_ns' (INT64_MAX: no deadline). */
void rp__runner_sleep(struct group_runner *r, int64_t deadline_ns);

/* ---- runner.c ---- */
int rp__runner_start(struct group_runner *r);
/* The runner of the calling thread, or NULL. */
struct group_runner *rp__runner_current(void);

#endif
