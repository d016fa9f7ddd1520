/*
 * Metrics: a registry of what a program exposes, an optional HTTP endpoint
 * serving it in the Prometheus text format (version 0.0.4) at GET /metrics
 * (and any static files the program adds, e.g. a status page), and the
 * once-a-second stats line. A server's metrics in a few lines:
 *
 *     struct rp_metrics *m;
 *     rp_metrics_create("127.0.0.1:9100", &m);   // NULL or "": no endpoint
 *     rp_metrics_add_server(m, srv, NULL);
 *     ...
 *     rp_metrics_destroy(m);                      // before rp_server_destroy
 *
 * Threads: the endpoint runs on its own thread (libmicrohttpd's); a scrape
 * reads the servers' per-thread counters with relaxed loads and sums them
 * (rp_server_get_stats), so it never blocks an I/O or group thread and
 * never takes a lock they take. Registration and scrapes share one mutex.
 *
 * Families (all prefixed ringport_): build_info, server_info{backend},
 * sessions, sessions_max, accepts_total, refused_total,
 * accept_errors_total, received/sent_bytes_total,
 * received/sent_packets_total, sends_total, packets_per_send,
 * disconnects_total{reason}, packet_pool_* {class}, packet_heap_*,
 * metrics_scrapes_total; with groups, group_sessions, group_inbox_depth,
 * group_messages_total, group_enters/leaves_total,
 * group_tick_overruns_total, group_tick_duration_seconds (histogram),
 * group_tick_duration_max_seconds, all {group}. A server added
 * with a name carries server="name" on its samples. docs/operations.md
 * lists them with their meaning.
 */
#ifndef RINGPORT_METRICS_H
#define RINGPORT_METRICS_H

#include <ringport/api.h>
#include <ringport/server.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rp_metrics;        /* opaque */
struct rp_metrics_writer; /* a text being rendered; valid in a collector */

/*
 * Creates a registry and, when 'endpoint' is "ADDR:PORT" (see
 * rp_config_parse_endpoint; port 0 picks a free one), starts the HTTP
 * endpoint on it. NULL or "" creates the registry alone (for the stats
 * line). Returns 0, -EINVAL (bad endpoint), -EADDRINUSE or another -errno
 * if it cannot listen, -ENOMEM.
 */
RP_API int rp_metrics_create(const char *endpoint, struct rp_metrics **out);
/* Stops the endpoint (joins its thread) and frees the registry. NULL is a
   no-op. Call it before destroying what was added. */
RP_API void rp_metrics_destroy(struct rp_metrics *m);

/* The endpoint's bound port (useful with port 0); 0 if none. */
RP_API uint16_t rp_metrics_port(const struct rp_metrics *m);

/*
 * Exposes 'srv' (its counters, backend and the packet pools). 'name' NULL:
 * no server label (one such server at most); else server="name" (at most
 * 31 characters). Returns 0, -EEXIST, -ENOSPC (RP_METRICS_MAX_SERVERS) or
 * -EINVAL. The server must outlive the registration.
 */
#define RP_METRICS_MAX_SERVERS 8
RP_API int rp_metrics_add_server(struct rp_metrics *m, struct rp_server *srv,
                                 const char *name);
/* Removes 'srv' if present; after it returns no scrape touches 'srv'. */
RP_API void rp_metrics_remove_server(struct rp_metrics *m,
                                     struct rp_server *srv);

/*
 * Exposes content group 'g' (<ringport/group.h>): ringport_group_*{group=
 * name} and its msg/s in the stats line. Returns 0, -EEXIST (that group or
 * its name), -ENOSPC (RP_METRICS_MAX_GROUPS) or -EINVAL. Remove it (or
 * destroy the registry) before the group is freed.
 */
#define RP_METRICS_MAX_GROUPS 32
struct rp_group;
RP_API int rp_metrics_add_group(struct rp_metrics *m, struct rp_group *g);
RP_API void rp_metrics_remove_group(struct rp_metrics *m, struct rp_group *g);

/* ---- static files on the endpoint ------------------------------------ */

/*
 * Serves 'len' bytes at 'data' at GET 'path' ("/", "/page.js"; matched
 * exactly, no query string) with Content-Type 'content_type', from the
 * endpoint's thread, with "Cache-Control: no-cache". Nothing is copied but
 * the path and type: 'data' must stay valid and unchanged until
 * rp_metrics_destroy (a static array, e.g. bytes embedded at build time),
 * even after it is replaced. Adding a path again replaces its file.
 * Returns 0, -EINVAL ('path' not starting with '/', 63 characters at
 * most, or "/metrics"; 'content_type' empty or over 63), -ENOSPC
 * (RP_METRICS_MAX_FILES). Thread: any.
 */
#define RP_METRICS_MAX_FILES 16
RP_API int rp_metrics_add_file(struct rp_metrics *m, const char *path,
                               const char *content_type, const void *data,
                               size_t len);

/* ---- your own metrics ---------------------------------------------- */

enum rp_metric_type {
    RP_METRIC_COUNTER,
    RP_METRIC_GAUGE,
    RP_METRIC_HISTOGRAM,
};

struct rp_metric_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
    const char *value; /* any UTF-8; escaped on output */
};

/*
 * Called on every scrape, on the endpoint's thread (or the thread calling
 * rp_metrics_render): writes whole families with the calls below. Must not
 * block; read counters with relaxed atomic loads.
 */
typedef void (*rp_metrics_collect_fn)(struct rp_metrics_writer *w, void *user);
/* Returns 0, -ENOSPC (RP_METRICS_MAX_COLLECTORS). */
#define RP_METRICS_MAX_COLLECTORS 16
RP_API int rp_metrics_add_collector(struct rp_metrics *m,
                                    rp_metrics_collect_fn fn, void *user);
RP_API void rp_metrics_remove_collector(struct rp_metrics *m,
                                        rp_metrics_collect_fn fn, void *user);

/*
 * Starts a family: its # HELP and # TYPE lines. The samples that follow,
 * until the next family, belong to it. A bad name or a family started
 * twice in one scrape fails the whole scrape (HTTP 500), so mistakes show.
 */
RP_API void rp_metrics_family(struct rp_metrics_writer *w, const char *name,
                              enum rp_metric_type type, const char *help);
/* One sample of the current counter or gauge family. */
RP_API void rp_metrics_sample(struct rp_metrics_writer *w,
                              const struct rp_metric_label *labels,
                              size_t nlabels, double value);
RP_API void rp_metrics_sample_u64(struct rp_metrics_writer *w,
                                  const struct rp_metric_label *labels,
                                  size_t nlabels, uint64_t value);
/*
 * One histogram of the current histogram family: 'counts[i]' observations
 * fell in bucket i (not cumulative): upper bound 'bounds[i]' for i <
 * nbounds, counts[nbounds] above the last bound (+Inf). Writes the
 * cumulative _bucket{le=...} lines, _sum and _count.
 */
RP_API void rp_metrics_histogram(struct rp_metrics_writer *w,
                                 const struct rp_metric_label *labels,
                                 size_t nlabels, const double *bounds,
                                 size_t nbounds, const uint64_t *counts,
                                 double sum);

/*
 * Renders every registered metric now into a malloc'd NUL-terminated text
 * (*out, *len; the caller frees it). Returns 0, -ENOMEM, or -EINVAL if a
 * collector wrote a bad name. What GET /metrics serves. Thread: any.
 */
RP_API int rp_metrics_render(struct rp_metrics *m, char **out, size_t *len);

/* ---- the once-a-second stats line ---------------------------------- */

#define RP_STATLINE_MAX_GROUPS 16

/* What the line is computed from: two samples give the rates between. */
struct rp_statline_sample {
    uint64_t t_ns;              /* CLOCK_MONOTONIC */
    struct rp_server_stats srv; /* every added server, summed */
    uint64_t pool_in_use;       /* packets alive (pools and heap) */
    uint64_t pool_capacity;     /* packets the pools hold */
    uint32_t ngroups;
    struct {
        char name[24];
        uint64_t messages; /* handled so far */
    } groups[RP_STATLINE_MAX_GROUPS];
};

/* Takes a sample of everything added to 'm'. Thread: any. */
RP_API void rp_metrics_sample_now(struct rp_metrics *m,
                                  struct rp_statline_sample *out);

/*
 * Formats the line for the interval from 'prev' to 'cur' into 'buf' (no
 * newline), e.g.
 *   sessions 812 | accepts/s 40 | msgs in/s 96120 out/s 96100 | MB/s in
 *   6.15 out 6.15 | sends/s 24000 (4.0 pkts/send) | disconnects 17 | pool
 *   1022/4096 | lobby 310/s pvp 95000/s
 * Returns the length it needed (as snprintf does).
 */
RP_API int rp_statline_format(const struct rp_statline_sample *prev,
                              const struct rp_statline_sample *cur, char *buf,
                              size_t len);

#ifdef __cplusplus
}
#endif

#endif
