/*
 * The metrics registry: what a program added (servers, collectors), the
 * built-in server collector, rendering a scrape, and the samples behind the
 * stats line. Everything a scrape reads is a relaxed load of counters their
 * threads keep (rp_server_get_stats, rp_packet_pool_stats): no I/O or group
 * thread ever waits for a scrape.
 */
#include "metrics/writer.h"

#include <errno.h>
#include <ringport/metrics.h>
#include <ringport/ringport.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rp_metrics_create(const char *endpoint, struct rp_metrics **out)
{
    struct rp_metrics *m = calloc(1, sizeof *m);
    int r;
    if (!m)
        return -ENOMEM;
    r = pthread_mutex_init(&m->lock, NULL);
    if (r) {
        free(m);
        return -r;
    }
    if (endpoint && *endpoint) {
        r = rp__http_start(m, endpoint, &m->http);
        if (r < 0)
            goto fail_lock;
    }
    *out = m;
    return 0;

fail_lock:
    pthread_mutex_destroy(&m->lock);
    free(m);
    return r;
}

void rp_metrics_destroy(struct rp_metrics *m)
{
    if (!m)
        return;
    /* First the endpoint: once its thread is joined no scrape runs. */
    if (m->http)
        rp__http_stop(m->http);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

uint16_t rp_metrics_port(const struct rp_metrics *m)
{
    return m && m->http ? rp__http_port(m->http) : 0;
}

int rp_metrics_add_server(struct rp_metrics *m, struct rp_server *srv,
                          const char *name)
{
    int r = 0;
    if (!srv || (name && (!*name || strlen(name) >= 32)))
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < m->nservers; i++) {
        const struct metrics_server *s = &m->servers[i];
        if (s->srv == srv || (!name && !s->named) ||
            (name && s->named && strcmp(name, s->name) == 0)) {
            r = -EEXIST;
            goto out;
        }
    }
    if (m->nservers == RP_METRICS_MAX_SERVERS) {
        r = -ENOSPC;
        goto out;
    }
    struct metrics_server *s = &m->servers[m->nservers++];
    s->srv = srv;
    s->named = name != NULL;
    strcpy(s->name, name ? name : "");
out:
    pthread_mutex_unlock(&m->lock);
    return r;
}

void rp_metrics_remove_server(struct rp_metrics *m, struct rp_server *srv)
{
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < m->nservers; i++)
        if (m->servers[i].srv == srv) {
            m->servers[i] = m->servers[--m->nservers];
            break;
        }
    pthread_mutex_unlock(&m->lock);
}

int rp_metrics_add_collector(struct rp_metrics *m, rp_metrics_collect_fn fn,
                             void *user)
{
    int r = 0;
    if (!fn)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    if (m->ncollectors == RP_METRICS_MAX_COLLECTORS)
        r = -ENOSPC;
    else
        m->collectors[m->ncollectors++] =
            (struct metrics_collector){.fn = fn, .user = user};
    pthread_mutex_unlock(&m->lock);
    return r;
}

void rp_metrics_remove_collector(struct rp_metrics *m, rp_metrics_collect_fn fn,
                                 void *user)
{
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < m->ncollectors; i++)
        if (m->collectors[i].fn == fn && m->collectors[i].user == user) {
            /* Keep the order: families come out as they were added. */
            memmove(&m->collectors[i], &m->collectors[i + 1],
                    (m->ncollectors - i - 1) * sizeof m->collectors[0]);
            m->ncollectors--;
            break;
        }
    pthread_mutex_unlock(&m->lock);
}

/* ---- the server collector ------------------------------------------ */

/* One server's numbers, read once per scrape. */
struct server_snap {
    const struct metrics_server *reg;
    struct rp_server_stats st;
};

/* The label set of server 'i': none, or server="name", plus one extra. */
static size_t server_labels(const struct server_snap *s,
                            struct rp_metric_label *l, const char *extra_name,
                            const char *extra_value)
{
    size_t n = 0;
    if (s->reg->named)
        l[n++] = (struct rp_metric_label){"server", s->reg->name};
    if (extra_name)
        l[n++] = (struct rp_metric_label){extra_name, extra_value};
    return n;
}

#define SERVER_U64(w, snaps, n, fam, type, help, field)                        \
    do {                                                                       \
        rp_metrics_family(w, fam, type, help);                                 \
        for (uint32_t i_ = 0; i_ < (n); i_++) {                                \
            struct rp_metric_label l_[2];                                      \
            size_t nl_ = server_labels(&(snaps)[i_], l_, NULL, NULL);          \
            rp_metrics_sample_u64(w, l_, nl_, (snaps)[i_].st.field);           \
        }                                                                      \
    } while (0)

/* Where the I/O threads' system calls go (docs/server.md "I/O
   counters"): enters per received message is the figure to watch. */
static void collect_io(struct rp_metrics_writer *w,
                       const struct server_snap *snaps, uint32_t n)
{
    SERVER_U64(w, snaps, n, "ringport_io_enters_total", RP_METRIC_COUNTER,
               "System calls into the backend (io_uring_enter, "
               "epoll_pwait2).",
               io_enters);
    SERVER_U64(w, snaps, n, "ringport_io_waits_total", RP_METRIC_COUNTER,
               "Of those, waits (calls that may sleep).", io_waits);
    SERVER_U64(w, snaps, n, "ringport_io_waits_empty_total", RP_METRIC_COUNTER,
               "Waits that returned with no completion (a wake-up, a "
               "timeout).",
               io_waits_empty);
    SERVER_U64(w, snaps, n, "ringport_io_waits_short_total", RP_METRIC_COUNTER,
               "Moderated waits that timed out with fewer completions than "
               "they asked for.",
               io_waits_short);
    SERVER_U64(w, snaps, n, "ringport_io_completions_total", RP_METRIC_COUNTER,
               "Completions the I/O threads' ports "
               "dispatched.",
               io_completions);
    SERVER_U64(w, snaps, n, "ringport_recv_nobufs_total", RP_METRIC_COUNTER,
               "Multishot receives ended by an empty buffer ring "
               "(-ENOBUFS; io_uring).",
               recv_nobufs);
    SERVER_U64(w, snaps, n, "ringport_recv_rearms_total", RP_METRIC_COUNTER,
               "Multishot receives re-armed after they ended (io_uring).",
               recv_rearms);
    SERVER_U64(w, snaps, n, "ringport_sends_short_total", RP_METRIC_COUNTER,
               "Sends continued after a short completion.", sends_short);
    SERVER_U64(w, snaps, n, "ringport_sends_late_total", RP_METRIC_COUNTER,
               "Sends not done in the io_uring_enter that submitted them "
               "(they waited for socket space).",
               sends_late);
    SERVER_U64(w, snaps, n, "ringport_recv_buffers", RP_METRIC_GAUGE,
               "Provided receive buffers per I/O thread.", buffers);
    SERVER_U64(w, snaps, n, "ringport_recv_buffers_out_max", RP_METRIC_GAUGE,
               "Most receive buffers out of the ring at once (one thread).",
               buffers_out_max);
    SERVER_U64(w, snaps, n, "ringport_buffers_lent_total", RP_METRIC_COUNTER,
               "Receive buffers lent to sends (zero-copy forwarding).",
               buffers_lent);
    SERVER_U64(w, snaps, n, "ringport_buffers_lent_max", RP_METRIC_GAUGE,
               "Most receive buffers lent at once (one thread).",
               buffers_lent_max);
}

/* The same sessions by transport (tcp, ws): a WebSocket connection is
   counted as ws from its accept (handshake included); every other open
   session as tcp (a detached one, resume on, too). */
static void collect_transports(struct rp_metrics_writer *w,
                               const struct server_snap *snaps, uint32_t n)
{
    rp_metrics_family(w, "ringport_transport_sessions", RP_METRIC_GAUGE,
                      "Sessions open now, by transport (tcp, ws).");
    for (uint32_t i = 0; i < n; i++) {
        const struct rp_server_stats *st = &snaps[i].st;
        struct rp_metric_label l[2];
        size_t nl = server_labels(&snaps[i], l, "transport", "tcp");
        rp_metrics_sample_u64(w, l, nl,
                              st->sessions > st->ws_sessions
                                  ? st->sessions - st->ws_sessions
                                  : 0);
        nl = server_labels(&snaps[i], l, "transport", "ws");
        rp_metrics_sample_u64(w, l, nl, st->ws_sessions);
    }
    rp_metrics_family(w, "ringport_transport_accepts_total", RP_METRIC_COUNTER,
                      "Connections accepted into sessions, by transport.");
    for (uint32_t i = 0; i < n; i++) {
        const struct rp_server_stats *st = &snaps[i].st;
        struct rp_metric_label l[2];
        size_t nl = server_labels(&snaps[i], l, "transport", "tcp");
        rp_metrics_sample_u64(w, l, nl, st->accepts - st->ws_accepts);
        nl = server_labels(&snaps[i], l, "transport", "ws");
        rp_metrics_sample_u64(w, l, nl, st->ws_accepts);
    }
    rp_metrics_family(w, "ringport_ws_handshakes_total", RP_METRIC_COUNTER,
                      "WebSocket handshakes answered, by result (upgraded: "
                      "101; refused: 400, 403 or 426).");
    for (uint32_t i = 0; i < n; i++) {
        struct rp_metric_label l[2];
        size_t nl = server_labels(&snaps[i], l, "result", "upgraded");
        rp_metrics_sample_u64(w, l, nl, snaps[i].st.ws_upgrades);
        nl = server_labels(&snaps[i], l, "result", "refused");
        rp_metrics_sample_u64(w, l, nl, snaps[i].st.ws_refused);
    }
}

static void collect_servers(struct rp_metrics_writer *w,
                            const struct metrics_server *reg, uint32_t n)
{
    struct server_snap snaps[RP_METRICS_MAX_SERVERS];
    for (uint32_t i = 0; i < n; i++) {
        snaps[i].reg = &reg[i];
        rp_server_get_stats(reg[i].srv, &snaps[i].st);
    }
    rp_metrics_family(w, "ringport_server_info", RP_METRIC_GAUGE,
                      "The server's I/O backend in use (label), always 1.");
    for (uint32_t i = 0; i < n; i++) {
        struct rp_metric_label l[2];
        size_t nl =
            server_labels(&snaps[i], l, "backend",
                          rp_backend_name(rp_server_backend(reg[i].srv)));
        rp_metrics_sample_u64(w, l, nl, 1);
    }
    SERVER_U64(w, snaps, n, "ringport_sessions", RP_METRIC_GAUGE,
               "Sessions open now.", sessions);
    SERVER_U64(w, snaps, n, "ringport_sessions_max", RP_METRIC_GAUGE,
               "Most sessions open at once since start.", sessions_max);
    SERVER_U64(w, snaps, n, "ringport_accepts_total", RP_METRIC_COUNTER,
               "Connections accepted into sessions.", accepts);
    SERVER_U64(w, snaps, n, "ringport_refused_total", RP_METRIC_COUNTER,
               "Connections closed at once: over max_sessions, refused by "
               "the accept filter, or arriving while stopping.",
               refused);
    SERVER_U64(w, snaps, n, "ringport_accept_errors_total", RP_METRIC_COUNTER,
               "accept4 failures (EMFILE, ENFILE, ...).", accept_errors);
    SERVER_U64(w, snaps, n, "ringport_received_bytes_total", RP_METRIC_COUNTER,
               "Bytes received from clients.", bytes_in);
    SERVER_U64(w, snaps, n, "ringport_sent_bytes_total", RP_METRIC_COUNTER,
               "Bytes sent to clients.", bytes_out);
    SERVER_U64(w, snaps, n, "ringport_received_packets_total",
               RP_METRIC_COUNTER, "Packets (frames) received.", packets_in);
    SERVER_U64(w, snaps, n, "ringport_sent_packets_total", RP_METRIC_COUNTER,
               "Packets sent.", packets_out);
    SERVER_U64(w, snaps, n, "ringport_sends_total", RP_METRIC_COUNTER,
               "Gather send operations completed (sent packets / sends is "
               "the batching factor).",
               sends);
    rp_metrics_family(w, "ringport_packets_per_send", RP_METRIC_GAUGE,
                      "Packets per gather send since start (for the recent "
                      "figure divide the rates of sent_packets and sends).");
    for (uint32_t i = 0; i < n; i++) {
        struct rp_metric_label l[2];
        size_t nl = server_labels(&snaps[i], l, NULL, NULL);
        const struct rp_server_stats *st = &snaps[i].st;
        rp_metrics_sample(
            w, l, nl,
            st->sends ? (double)st->packets_out / (double)st->sends : 0.0);
    }
    SERVER_U64(w, snaps, n, "ringport_sessions_detached", RP_METRIC_GAUGE,
               "Sessions detached now, waiting for a resume (resume on).",
               detached);
    SERVER_U64(w, snaps, n, "ringport_resumes_total", RP_METRIC_COUNTER,
               "Detached sessions resumed by a new connection.", resumes);
    SERVER_U64(w, snaps, n, "ringport_resume_refused_total", RP_METRIC_COUNTER,
               "RESUMEs answered with RESUME_ERROR (bad token, expired, ...).",
               resume_refused);
    rp_metrics_family(w, "ringport_disconnects_total", RP_METRIC_COUNTER,
                      "Sessions ended, by reason.");
    for (uint32_t i = 0; i < n; i++)
        for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++) {
            struct rp_metric_label l[2];
            size_t nl =
                server_labels(&snaps[i], l, "reason",
                              rp_leave_reason_name((enum rp_leave_reason)r));
            rp_metrics_sample_u64(w, l, nl, snaps[i].st.leaves[r]);
        }
    collect_transports(w, snaps, n);
    collect_io(w, snaps, n);
}

/* The packet pools are process-wide: one set, no server label. */
static void collect_pools(struct rp_metrics_writer *w)
{
    struct rp_packet_pool_stats ps;
    char cls[RP_PACKET_POOL_CLASSES][24];
    rp_packet_pool_stats(&ps);
    for (int c = 0; c < RP_PACKET_POOL_CLASSES; c++)
        snprintf(cls[c], sizeof cls[c], "%zu", ps.classes[c].max_payload);
#define POOL_FAMILY(fam, type, help, field)                                    \
    do {                                                                       \
        rp_metrics_family(w, fam, type, help);                                 \
        for (int c = 0; c < RP_PACKET_POOL_CLASSES; c++) {                     \
            struct rp_metric_label l = {"class", cls[c]};                      \
            rp_metrics_sample_u64(w, &l, 1, (uint64_t)ps.classes[c].field);    \
        }                                                                      \
    } while (0)
    POOL_FAMILY("ringport_packet_pool_capacity", RP_METRIC_GAUGE,
                "Packets the pool of this size class holds (class = largest "
                "payload in bytes).",
                capacity);
    POOL_FAMILY("ringport_packet_pool_in_use", RP_METRIC_GAUGE,
                "Packets of this size class alive now.", in_use);
    POOL_FAMILY("ringport_packet_pool_allocs_total", RP_METRIC_COUNTER,
                "Packets taken from the pool of this size class.", allocs);
    POOL_FAMILY("ringport_packet_pool_full_total", RP_METRIC_COUNTER,
                "Times the pool of this size class was at its cap and a "
                "packet came from the heap instead.",
                fails);
#undef POOL_FAMILY
    rp_metrics_family(w, "ringport_packet_heap_in_use", RP_METRIC_GAUGE,
                      "Packets from the heap (a pool was full) alive now.");
    rp_metrics_sample_u64(w, NULL, 0, ps.heap_in_use);
    rp_metrics_family(w, "ringport_packet_heap_allocs_total", RP_METRIC_COUNTER,
                      "Packets ever taken from the heap (a pool was full).");
    rp_metrics_sample_u64(w, NULL, 0, ps.heap_allocs);
}

int rp_metrics_render(struct rp_metrics *m, char **out, size_t *len)
{
    struct rp_metrics_writer *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    rp__writer_init(w);
    uint64_t scrapes =
        atomic_fetch_add_explicit(&m->scrapes, 1, memory_order_relaxed) + 1;

    rp_metrics_family(w, "ringport_build_info", RP_METRIC_GAUGE,
                      "The ringport library version (label), always 1.");
    struct rp_metric_label v = {"version", rp_version_string()};
    rp_metrics_sample_u64(w, &v, 1, 1);
    rp_metrics_family(w, "ringport_metrics_scrapes_total", RP_METRIC_COUNTER,
                      "Renderings of this text, this one included.");
    rp_metrics_sample_u64(w, NULL, 0, scrapes);

    pthread_mutex_lock(&m->lock);
    if (m->nservers > 0) {
        collect_servers(w, m->servers, m->nservers);
        collect_pools(w);
    }
    rp__metrics_collect_groups(w, m->groups, m->ngroups);
    for (uint32_t i = 0; i < m->ncollectors; i++) {
        /* A collector starts outside any family: a sample before its own
           rp_metrics_family is a mistake, not part of ours. */
        w->in_family = false;
        m->collectors[i].fn(w, m->collectors[i].user);
    }
    pthread_mutex_unlock(&m->lock);

    int r = rp__writer_finish(w, out, len);
    free(w);
    return r;
}

/* ---- the stats line's samples ---------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void rp_metrics_sample_now(struct rp_metrics *m, struct rp_statline_sample *out)
{
    memset(out, 0, sizeof *out);
    out->t_ns = now_ns();
    pthread_mutex_lock(&m->lock);
    for (uint32_t i = 0; i < m->nservers; i++) {
        struct rp_server_stats st;
        rp_server_get_stats(m->servers[i].srv, &st);
        struct rp_server_stats *s = &out->srv;
        s->sessions += st.sessions;
        s->sessions_max += st.sessions_max;
        s->accepts += st.accepts;
        s->refused += st.refused;
        s->accept_errors += st.accept_errors;
        s->bytes_in += st.bytes_in;
        s->bytes_out += st.bytes_out;
        s->packets_in += st.packets_in;
        s->packets_out += st.packets_out;
        s->sends += st.sends;
        for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++)
            s->leaves[r] += st.leaves[r];
    }
    rp__metrics_sample_groups(m->groups, m->ngroups, out);
    pthread_mutex_unlock(&m->lock);
    struct rp_packet_pool_stats ps;
    rp_packet_pool_stats(&ps);
    for (int c = 0; c < RP_PACKET_POOL_CLASSES; c++) {
        out->pool_in_use += ps.classes[c].in_use;
        out->pool_capacity += ps.classes[c].capacity;
    }
    out->pool_in_use += ps.heap_in_use;
}
