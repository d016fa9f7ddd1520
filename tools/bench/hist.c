/*
 * The latency histogram (bench.h): log-linear buckets, fixed size, no
 * allocation. Only the owning worker records; main takes snapshots for
 * the progress line and merges them all at the end. A single writer needs
 * no read-modify-write: a relaxed load and store compile to plain moves.
 *
 * Percentiles: the bucket holding the wanted rank only says the value lies
 * in [lo, lo + width). Reporting its middle (as this file once did) can put a
 * p99 above the max printed beside it when every value in the top bucket sits
 * low in it (`p99 4358.1 max 4333.2`). So the bucket is first narrowed to
 * the part that lies within [min, max] of the values recorded, the rank is
 * placed inside it as if its values were spread evenly, and the result is
 * clamped to [min, max].
 */
#include "bench.h"

#include <math.h>
#include <string.h>

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb >= HIST_MAX_BITS)
        return HIST_BUCKETS - 1;
    /* Bucket group g = msb - SUB_BITS + 1 holds [2^msb, 2^(msb+1)). */
    return (msb - HIST_SUB_BITS + 1) * HIST_SUB +
           (unsigned)((v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* The values bucket 'i' holds: the integers *lo..*last (ns). The last
   bucket also takes everything from 2^HIST_MAX_BITS up: no 'last'. */
static void hist_bounds(unsigned i, double *lo, double *last)
{
    if (i < HIST_SUB) {
        *lo = *last = (double)i;
        return;
    }
    unsigned g = i / HIST_SUB, sub = i % HIST_SUB;
    unsigned msb = g + HIST_SUB_BITS - 1;
    double width = (double)(1ull << (msb - HIST_SUB_BITS));
    *lo = (double)(1ull << msb) + (double)sub * width;
    *last = i == HIST_BUCKETS - 1 ? INFINITY : *lo + width - 1;
}

void hist_record(struct hist *h, uint64_t ns)
{
    _Atomic uint64_t *b = &h->b[hist_index(ns)];
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    uint64_t n = atomic_load_explicit(&h->count, memory_order_relaxed);
    if (n == 0 || ns < atomic_load_explicit(&h->min, memory_order_relaxed))
        atomic_store_explicit(&h->min, ns, memory_order_relaxed);
    if (n == 0 || ns > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, ns, memory_order_relaxed);
    /* Release: a reader that sees count > 0 sees a min and max set. */
    atomic_store_explicit(&h->count, n + 1, memory_order_release);
}

void hist_sum_clear(struct hist_sum *dst)
{
    memset(dst, 0, sizeof *dst);
}

void hist_sum_add(struct hist_sum *dst, const struct hist *src)
{
    uint64_t n = atomic_load_explicit(&src->count, memory_order_acquire);
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += atomic_load_explicit(&src->b[i], memory_order_relaxed);
    if (n == 0)
        return;
    uint64_t lo = atomic_load_explicit(&src->min, memory_order_relaxed);
    uint64_t hi = atomic_load_explicit(&src->max, memory_order_relaxed);
    if (dst->count == 0 || lo < dst->min)
        dst->min = lo;
    if (dst->count == 0 || hi > dst->max)
        dst->max = hi;
    dst->count += n;
}

double hist_percentile(const struct hist_sum *s, double p)
{
    /* The buckets, not 'count': a snapshot taken while a worker records
       may hold a bucket's increment before its count's, or after. */
    uint64_t total = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        total += s->b[i];
    if (total == 0 || s->count == 0)
        return 0;
    double min = (double)s->min, max = (double)s->max;
    if (p <= 0)
        return min;
    if (p >= 1)
        return max;
    uint64_t want = (uint64_t)(p * (double)total + 0.5); /* nearest rank */
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    unsigned i = 0;
    for (; i < HIST_BUCKETS - 1; i++) {
        if (seen + s->b[i] >= want)
            break;
        seen += s->b[i];
    }
    double lo, last;
    hist_bounds(i, &lo, &last);
    if (lo < min)
        lo = min;
    if (last > max)
        last = max;
    double v = lo;
    if (last > lo && s->b[i] > 0) {
        /* The k-th of the bucket's n values, spread evenly over it. */
        double k = (double)(want - seen), n = (double)s->b[i];
        v = lo + (last - lo) * (k - 0.5) / n;
    }
    return v < min ? min : v > max ? max : v;
}
