/*
 * rp_group's public entry points and life cycle: the per-server group
 * system (created with the first group, freed by rp_server_destroy), the
 * layouts, create, move, stop, stats, and the hooks the network layer
 * calls (struct net_route_ops): admit, push, stop, destroy.
 *
 * Stop races: an I/O thread admits a session into a group by incrementing
 * 'entering' and then reading 'stopping' (both seq_cst); rp_group_stop sets
 * 'stopping' and the runner then reads 'entering'. So either the I/O thread
 * sees the stop and routes the session to no group, or the runner sees the
 * ENTER coming and waits for it before it finishes.
 *
 * Posts: rp_group_post follows the same rule with 'posts_queued'. It
 * increments the count (seq_cst), then reads 'stopping'; the runner
 * finishes only after it has seen 'stopping' and then a count of 0. So a
 * post either sees the stop (and takes back its count: -ESHUTDOWN) or is
 * counted before the runner looks, and the runner handles it before it
 * finishes. A caller that takes its count back wakes the runner if the
 * group is stopping, since the runner may be waiting for that 0. The
 * count is also the bound: a post that finds post_limit already counted
 * takes its count back (-ENOBUFS), so a burst of refused callers can
 * refuse one another for an instant, never let the queue pass the bound.
 */
#include "group/group.h"

#include "core/clock.h"
#include <errno.h>
#include <ringport/log.h>
#include <stdlib.h>
#include <string.h>

static bool group_admit(void *group)
{
    struct rp_group *g = group;
    atomic_fetch_add(&g->entering, 1);
    if (atomic_load(&g->stopping) == GROUP_RUNNING)
        return true;
    atomic_fetch_sub(&g->entering, 1);
    rp__runner_wake(g->runner); /* it may be waiting for this to reach 0 */
    return false;
}

/* Whether the calling thread runs groups of 'srv' (a group handler). */
static bool groups_is_own_thread(const struct rp_server *srv)
{
    struct group_runner *r = rp__runner_current();
    return r && r->sys->srv == srv;
}

static void groups_stop(struct rp_server *srv);
static void groups_destroy(struct rp_server *srv);

static const struct net_route_ops group_route_ops = {
    .admit = group_admit,
    .push = rp__group_push,
    .stop = groups_stop,
    .destroy = groups_destroy,
    .is_own_thread = groups_is_own_thread,
    .turn_begin = rp__group_turn_begin,
    .turn_end = rp__group_turn_end,
};

/* The server's group system, created on first use. */
static struct group_sys *sys_get(struct rp_server *srv)
{
    struct group_sys *sys = atomic_load(&srv->groups);
    if (sys)
        return sys;
    sys = calloc(1, sizeof *sys);
    if (!sys)
        return NULL;
    sys->srv = srv;
    pthread_mutex_init(&sys->lock, NULL);
    pthread_cond_init(&sys->cond, NULL);
    atomic_store(&srv->route_ops, &group_route_ops);
    void *expect = NULL;
    if (!atomic_compare_exchange_strong(&srv->groups, &expect, sys)) {
        pthread_mutex_destroy(&sys->lock);
        pthread_cond_destroy(&sys->cond);
        free(sys);
        return expect;
    }
    return sys;
}

int rp_group_set_layout(struct rp_server *srv, enum rp_group_layout layout)
{
    if (layout != RP_GROUP_HETERO && layout != RP_GROUP_HOMO)
        return -EINVAL;
    struct group_sys *sys = sys_get(srv);
    if (!sys)
        return -ENOMEM;
    pthread_mutex_lock(&sys->lock);
    int r = sys->all ? -EBUSY : 0;
    if (r == 0)
        sys->layout = layout;
    pthread_mutex_unlock(&sys->lock);
    return r;
}

static struct group_runner *runner_new(struct group_sys *sys, const char *name)
{
    struct group_runner *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->sys = sys;
    /* The kernel keeps 15 characters of a thread name. */
    size_t n = strnlen(name, sizeof r->name - 1);
    memcpy(r->name, name, n);
    r->name[n] = '\0';
    r->next = sys->runners;
    sys->runners = r;
    return r;
}

/* Adds 'g' to 'r' (under sys->lock); the runner sees it from its next
   turn. */
static void runner_add(struct group_runner *r, struct rp_group *g)
{
    uint32_t n = atomic_load_explicit(&r->ngroups, memory_order_relaxed);
    r->groups[n] = g;
    atomic_store_explicit(&r->ngroups, n + 1, memory_order_release);
    rp__runner_wake(r);
}

static int group_check(struct rp_server *srv, const struct rp_group_config *cfg)
{
    if (!cfg || !cfg->name || !cfg->name[0] ||
        strlen(cfg->name) >= GROUP_NAME_MAX || cfg->tick_ms > 60000)
        return -EINVAL;
    if (srv->cfg.mode != RP_SERVER_FRAMED)
        return -EINVAL;
    return 0;
}

int rp_group_create(struct rp_server *srv, const struct rp_group_config *cfg,
                    struct rp_group **out)
{
    int r = group_check(srv, cfg);
    if (r < 0)
        return r;
    struct group_sys *sys = sys_get(srv);
    if (!sys)
        return -ENOMEM;
    struct rp_group *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->srv = srv;
    g->sys = sys;
    strcpy(g->name, cfg->name);
    g->cb = cfg->cb;
    g->user = cfg->user;
    g->tick_ns = (int64_t)cfg->tick_ms * RP_NS_PER_MS;
    g->post_limit =
        cfg->post_limit ? cfg->post_limit : RP_GROUP_POST_LIMIT_DEFAULT;
    rp_mpsc_init(&g->inbox);

    pthread_mutex_lock(&sys->lock);
    r = -ESHUTDOWN;
    if (sys->stopped)
        goto fail_locked;
    struct group_runner *run = sys->homo;
    r = -ENOMEM;
    if (!run) {
        run = runner_new(sys,
                         sys->layout == RP_GROUP_HOMO ? "rp-logic" : g->name);
        if (!run)
            goto fail_locked;
    }
    r = -ENOSPC;
    if (atomic_load(&run->ngroups) == GROUP_HOMO_MAX)
        goto fail_locked;
    g->runner = run;
    runner_add(run, g);
    if (!run->started && (r = rp__runner_start(run)) < 0) {
        atomic_store(&run->ngroups, 0);
        goto fail_locked; /* the runner stays on the list, never started */
    }
    if (sys->layout == RP_GROUP_HOMO)
        sys->homo = run;
    g->next = sys->all;
    sys->all = g;
    pthread_mutex_unlock(&sys->lock);
    *out = g;
    return 0;
fail_locked:
    pthread_mutex_unlock(&sys->lock);
    free(g);
    return r;
}

int rp_group_move(struct rp_server *srv, rp_sid sid, struct rp_group *to,
                  void *ticket)
{
    if (to && to->srv != srv)
        return -EINVAL;
    /* A ticket must be able to come back: to an on_enter, or dropped. */
    if (ticket && (!to || !to->cb.on_enter || !srv->cfg.cb.on_ticket_drop))
        return -EINVAL;
    if (to && atomic_load(&to->stopping) != GROUP_RUNNING)
        return -ESHUTDOWN;
    return rp__route_request(srv, sid, to, NULL, RP_LEAVE_MOVED, ticket);
}

/* A refused post gives its count back (see "Posts" above). */
static void post_uncount(struct rp_group *g)
{
    atomic_fetch_sub(&g->posts_queued, 1);
    if (atomic_load(&g->stopping) != GROUP_RUNNING)
        rp__runner_wake(g->runner);
}

int rp_group_post(struct rp_group *g, uint32_t tag, struct rp_packet *pkt)
{
    if (!pkt || !g->cb.on_post)
        return -EINVAL;
    uint32_t queued = atomic_fetch_add(&g->posts_queued, 1);
    if (atomic_load(&g->stopping) != GROUP_RUNNING) {
        post_uncount(g);
        return -ESHUTDOWN;
    }
    if (queued >= g->post_limit) {
        atomic_fetch_add_explicit(&g->posts_refused, 1, memory_order_relaxed);
        post_uncount(g);
        return -ENOBUFS;
    }
    struct net_route_msg *m = rp_pool_alloc(g->srv->route_pool);
    if (!m) {
        post_uncount(g);
        return -ENOMEM;
    }
    m->kind = NET_ROUTE_POST;
    m->sid = 0;
    m->tag = tag;
    m->pkt = rp_packet_ref(pkt);
    rp__group_push(g, m);
    return 0;
}

/* Under sys->lock: waits until 'g' is done, then joins its runner if the
   runner has nothing else to run. */
static void group_wait_locked(struct rp_group *g)
{
    while (!g->done)
        pthread_cond_wait(&g->sys->cond, &g->sys->lock);
    struct group_runner *run = g->runner;
    if (run != g->sys->homo && run->started && !run->joined) {
        run->joined = true;
        atomic_store(&run->quit, 1);
        rp__runner_wake(run);
        pthread_join(run->tid, NULL);
    }
}

static void group_request_stop(struct rp_group *g, enum group_stop_mode mode)
{
    int expect = GROUP_RUNNING;
    atomic_compare_exchange_strong(&g->stopping, &expect, (int)mode);
    rp__runner_wake(g->runner);
}

int rp_group_stop(struct rp_group *g)
{
    if (rp__runner_current() || rp__thread_current(g->srv))
        return -EDEADLK;
    group_request_stop(g, GROUP_STOP_MOVE_OUT);
    pthread_mutex_lock(&g->sys->lock);
    group_wait_locked(g);
    pthread_mutex_unlock(&g->sys->lock);
    return 0;
}

/* net_route_ops.stop: the I/O threads have exited and every session has
   ended, so each member's final LEAVE is queued or already handled. */
static void groups_stop(struct rp_server *srv)
{
    struct group_sys *sys = atomic_load(&srv->groups);
    if (!sys)
        return;
    pthread_mutex_lock(&sys->lock);
    sys->stopped = true;
    for (struct rp_group *g = sys->all; g; g = g->next)
        group_request_stop(g, GROUP_STOP_SERVER);
    for (struct rp_group *g = sys->all; g; g = g->next)
        group_wait_locked(g);
    struct group_runner *run = sys->homo;
    if (run && run->started && !run->joined) {
        run->joined = true;
        atomic_store(&run->quit, 1);
        rp__runner_wake(run);
        pthread_join(run->tid, NULL);
    }
    pthread_mutex_unlock(&sys->lock);
}

static void groups_destroy(struct rp_server *srv)
{
    struct group_sys *sys = atomic_load(&srv->groups);
    if (!sys)
        return;
    groups_stop(srv); /* a server never started still has group threads */
    struct rp_group *g = sys->all;
    while (g) {
        struct rp_group *next = g->next;
        free(g);
        g = next;
    }
    struct group_runner *r = sys->runners;
    while (r) {
        struct group_runner *next = r->next;
        free(r);
        r = next;
    }
    pthread_mutex_destroy(&sys->lock);
    pthread_cond_destroy(&sys->cond);
    free(sys);
    atomic_store(&srv->groups, NULL);
}

const char *rp_group_name(const struct rp_group *g)
{
    return g->name;
}

struct rp_server *rp_group_server(const struct rp_group *g)
{
    return g->srv;
}

const uint64_t rp_group_tick_bounds_ns[RP_GROUP_TICK_BUCKETS] = {
    100000,   250000,   500000,   1000000,   2500000,   5000000,
    10000000, 25000000, 50000000, 100000000, 250000000, 1000000000,
};

void rp_group_get_stats(const struct rp_group *g, struct rp_group_stats *out)
{
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    struct rp_group *m = (struct rp_group *)g; /* atomics are read only */
    out->sessions = LD(m->sessions);
    out->enters = LD(m->enters);
    out->leaves = LD(m->leaves);
    out->messages = LD(m->messages);
    out->ticks = LD(m->ticks);
    out->tick_overruns = LD(m->overruns);
    out->tick_ns_max = LD(m->tick_ns_max);
    out->tick_ns_sum = LD(m->tick_ns_sum);
    for (size_t b = 0; b <= RP_GROUP_TICK_BUCKETS; b++)
        out->tick_buckets[b] = LD(m->tick_buckets[b]);
    out->posts = LD(m->posts);
    out->posts_refused = LD(m->posts_refused);
    uint64_t pushed = LD(m->pushed);
    uint64_t handled =
        out->messages + out->enters + out->leaves + LD(m->dropped) + out->posts;
    out->inbox_depth = pushed > handled ? pushed - handled : 0;
#undef LD
}
