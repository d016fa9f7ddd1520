/*
 * The classic server monitor line, once a second on stderr: sessions,
 * rates over the last interval, batching, disconnects, packet pool usage
 * and each group's message rate. Computed from two samples
 * (rp_metrics_sample_now), so any program prints the same line.
 */
#include <inttypes.h>
#include <ringport/metrics.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct out {
    char *buf;
    size_t len, used; /* 'used' may pass 'len': what was needed */
};

__attribute__((format(printf, 2, 3))) static void add(struct out *o,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->used < o->len ? o->len - o->used : 0;
    int n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->used += (size_t)n;
}

static double rate(uint64_t a, uint64_t b, double secs)
{
    return b >= a ? (double)(b - a) / secs : 0.0;
}

int rp_statline_format(const struct rp_statline_sample *prev,
                       const struct rp_statline_sample *cur, char *buf,
                       size_t len)
{
    struct out o = {.buf = buf, .len = len};
    const struct rp_server_stats *a = &prev->srv, *b = &cur->srv;
    double secs =
        cur->t_ns > prev->t_ns ? (double)(cur->t_ns - prev->t_ns) / 1e9 : 1.0;
    double sends = b->sends >= a->sends ? (double)(b->sends - a->sends) : 0;
    double pkts = b->packets_out >= a->packets_out
                      ? (double)(b->packets_out - a->packets_out)
                      : 0;
    uint64_t leaves = 0;
    for (int r = 0; r < RP_LEAVE_REASON_COUNT; r++)
        leaves += b->leaves[r];
    if (len)
        buf[0] = '\0';
    add(&o,
        "sessions %" PRIu64 " | accepts/s %.0f | msgs in/s %.0f out/s %.0f "
        "| MB/s in %.2f out %.2f | sends/s %.0f (%.1f pkts/send) | "
        "disconnects %" PRIu64 " | pool %" PRIu64 "/%" PRIu64,
        b->sessions, rate(a->accepts, b->accepts, secs),
        rate(a->packets_in, b->packets_in, secs), pkts / secs,
        rate(a->bytes_in, b->bytes_in, secs) / 1e6,
        rate(a->bytes_out, b->bytes_out, secs) / 1e6, sends / secs,
        sends > 0 ? pkts / sends : 0.0, leaves, cur->pool_in_use,
        cur->pool_capacity);
    for (uint32_t g = 0; g < cur->ngroups && g < RP_STATLINE_MAX_GROUPS; g++) {
        /* Groups are matched by name: one may have come or gone (a new
           one counts from 0). */
        uint64_t before = 0;
        for (uint32_t p = 0; p < prev->ngroups && p < RP_STATLINE_MAX_GROUPS;
             p++)
            if (strcmp(prev->groups[p].name, cur->groups[g].name) == 0)
                before = prev->groups[p].messages;
        add(&o, "%s %s %.0f/s", g == 0 ? " |" : "", cur->groups[g].name,
            rate(before, cur->groups[g].messages, secs));
    }
    return (int)o.used;
}
