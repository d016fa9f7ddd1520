/*
 * Content groups in the metrics: rp_metrics_add_group registers a group;
 * the collector below writes the ringport_group_* families for all of
 * them (one family at a time, every group inside it), and the stats line
 * samples each group's message count. The groups' counters are kept by
 * their threads and read with relaxed loads (rp_group_get_stats).
 *
 * Tick durations: a histogram over the group's fixed buckets
 * (RP_GROUP_TICK_BUCKETS, rp_group_tick_bounds_ns), plus the max as a gauge.
 */
#include "metrics/writer.h"

#include <errno.h>
#include <ringport/group.h>
#include <stdio.h>
#include <string.h>

int rp_metrics_add_group(struct rp_metrics *m, struct rp_group *g)
{
    int r = 0;
    if (!g)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < m->ngroups; i++)
        if (m->groups[i] == g ||
            strcmp(rp_group_name(m->groups[i]), rp_group_name(g)) == 0) {
            r = -EEXIST;
            goto out;
        }
    if (m->ngroups == RP_METRICS_MAX_GROUPS)
        r = -ENOSPC;
    else
        m->groups[m->ngroups++] = g;
out:
    pthread_mutex_unlock(&m->lock);
    return r;
}

void rp_metrics_remove_group(struct rp_metrics *m, struct rp_group *g)
{
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < m->ngroups; i++)
        if (m->groups[i] == g) {
            memmove(&m->groups[i], &m->groups[i + 1],
                    (m->ngroups - i - 1) * sizeof m->groups[0]);
            m->ngroups--;
            break;
        }
    pthread_mutex_unlock(&m->lock);
}

#define GROUP_U64(w, gs, names, n, fam, type, help, field)                     \
    do {                                                                       \
        rp_metrics_family(w, fam, type, help);                                 \
        for (uint32_t i_ = 0; i_ < (n); i_++) {                                \
            struct rp_metric_label l_ = {"group", (names)[i_]};                \
            rp_metrics_sample_u64(w, &l_, 1, (gs)[i_].field);                  \
        }                                                                      \
    } while (0)

/* Called with m->lock held, from rp_metrics_render. */
void rp__metrics_collect_groups(struct rp_metrics_writer *w,
                                struct rp_group *const *groups, uint32_t n)
{
    struct rp_group_stats gs[RP_METRICS_MAX_GROUPS];
    const char *names[RP_METRICS_MAX_GROUPS];
    if (n == 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        rp_group_get_stats(groups[i], &gs[i]);
        names[i] = rp_group_name(groups[i]);
    }
    GROUP_U64(w, gs, names, n, "ringport_group_sessions", RP_METRIC_GAUGE,
              "Sessions inside the group now.", sessions);
    GROUP_U64(w, gs, names, n, "ringport_group_inbox_depth", RP_METRIC_GAUGE,
              "Messages queued for the group, not yet handled "
              "(approximate).",
              inbox_depth);
    GROUP_U64(w, gs, names, n, "ringport_group_messages_total",
              RP_METRIC_COUNTER, "Messages handled by the group.", messages);
    GROUP_U64(w, gs, names, n, "ringport_group_enters_total", RP_METRIC_COUNTER,
              "Sessions that entered the group.", enters);
    GROUP_U64(w, gs, names, n, "ringport_group_leaves_total", RP_METRIC_COUNTER,
              "Sessions that left the group.", leaves);
    GROUP_U64(w, gs, names, n, "ringport_group_posts_total", RP_METRIC_COUNTER,
              "Posts (rp_group_post) handled by the group.", posts);
    GROUP_U64(w, gs, names, n, "ringport_group_posts_refused_total",
              RP_METRIC_COUNTER,
              "Posts refused because post_limit were queued (-ENOBUFS).",
              posts_refused);
    GROUP_U64(w, gs, names, n, "ringport_group_tick_overruns_total",
              RP_METRIC_COUNTER,
              "Ticks that ended past the next tick's deadline.", tick_overruns);
    rp_metrics_family(w, "ringport_group_tick_duration_max_seconds",
                      RP_METRIC_GAUGE, "Longest on_tick since start.");
    for (uint32_t i = 0; i < n; i++) {
        struct rp_metric_label l = {"group", names[i]};
        rp_metrics_sample(w, &l, 1, (double)gs[i].tick_ns_max / 1e9);
    }
    rp_metrics_family(w, "ringport_group_tick_duration_seconds",
                      RP_METRIC_HISTOGRAM, "Time spent in on_tick.");
    for (uint32_t i = 0; i < n; i++) {
        struct rp_metric_label l = {"group", names[i]};
        double sum = (double)gs[i].tick_ns_sum / 1e9;
        double bounds[RP_GROUP_TICK_BUCKETS];
        for (size_t b = 0; b < RP_GROUP_TICK_BUCKETS; b++)
            bounds[b] = (double)rp_group_tick_bounds_ns[b] / 1e9;
        rp_metrics_histogram(w, &l, 1, bounds, RP_GROUP_TICK_BUCKETS,
                             gs[i].tick_buckets, sum);
    }
}

/* Called with m->lock held, from rp_metrics_sample_now. */
void rp__metrics_sample_groups(struct rp_group *const *groups, uint32_t n,
                               struct rp_statline_sample *out)
{
    for (uint32_t i = 0; i < n && i < RP_STATLINE_MAX_GROUPS; i++) {
        struct rp_group_stats gs;
        rp_group_get_stats(groups[i], &gs);
        snprintf(out->groups[i].name, sizeof out->groups[i].name, "%s",
                 rp_group_name(groups[i]));
        out->groups[i].messages = gs.messages;
        out->ngroups = i + 1;
    }
}
