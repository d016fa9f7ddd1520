/*
 * The latency histogram (bench.h): log-linear buckets, fixed size, no
 * allocation. Only the owning worker records; main takes snapshots for
 * the progress line and merges them all at the end. A single writer needs
 * no read-modify-write: a relaxed load and store compile to plain moves.
 */
#include "bench.h"

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

/* The middle of bucket 'i', in ns. */
static double hist_value(unsigned i)
{
    if (i < HIST_SUB)
        return (double)i;
    unsigned g = i / HIST_SUB, sub = i % HIST_SUB;
    unsigned msb = g + HIST_SUB_BITS - 1;
    double width = (double)(1ull << (msb - HIST_SUB_BITS));
    return (double)(1ull << msb) + ((double)sub + 0.5) * width;
}

void hist_record(struct hist *h, uint64_t ns)
{
    _Atomic uint64_t *b = &h->b[hist_index(ns)];
    atomic_store_explicit(b, atomic_load_explicit(b, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (ns > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, ns, memory_order_relaxed);
}

void hist_add(uint64_t *dst, const struct hist *src)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst[i] += atomic_load_explicit(&src->b[i], memory_order_relaxed);
}

double hist_percentile(const uint64_t *b, double p)
{
    uint64_t total = 0, seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        total += b[i];
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)total + 0.5);
    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += b[i];
        if (seen >= want)
            return hist_value(i);
    }
    return hist_value(HIST_BUCKETS - 1);
}
