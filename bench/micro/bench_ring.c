/*
 * rp_ring throughput: each step writes one chunk into the ring and reads one
 * chunk out (the way a session's buffer is filled and drained), next to
 * plain memcpy of the same chunk into and out of a linear buffer, in the same
 * run, interleaved, 7 times; the table gives medians and the median of the
 * paired ratios.
 *
 * The ring keeps an odd number of bytes stored throughout, so chunks land at
 * every offset of its 64 KiB and straddle the end like real traffic. Two
 * baselines:
 *   same offsets: memcpy at exactly the ring's offsets, in a linear buffer
 *                 with slack at the end so no copy ever splits; the ratio is
 *                 the ring's own cost (index math, split copies, calls);
 *   one buffer:   memcpy into and out of one chunk-sized buffer, always hot
 *                 in L1; the ratio adds the cost of walking 64 KiB.
 * Run: build-release/bench/bench_ring (or `make bench`).
 */
#include "buf/ring.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPS 7
#define BYTES_PER_RUN ((size_t)512 << 20) /* payload moved per measurement */
#define RING_CAP ((size_t)64 * 1024)
#define RING_PREFILL 1001 /* stays stored: keeps the offsets moving */
#define MAX_CHUNK ((size_t)16 * 1024)

static _Alignas(64) uint8_t src[MAX_CHUNK];
static _Alignas(64) uint8_t dst[MAX_CHUNK];
static _Alignas(64) uint8_t hot[MAX_CHUNK];
static _Alignas(64) uint8_t linear[RING_CAP + MAX_CHUNK];

/* Makes the compiler assume 'p' is read and written here, so the copies
   into it cannot be dropped. */
static inline void escape(void *p)
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

static double gb_per_s(size_t bytes, int64_t ns)
{
    return (double)bytes / (double)(ns > 0 ? ns : 1); /* bytes/ns = GB/s */
}

static double run_ring(struct rp_ring *ring, size_t chunk)
{
    size_t steps = BYTES_PER_RUN / chunk;
    int64_t t0 = rp_clock_ns();
    for (size_t i = 0; i < steps; i++) {
        escape(src);
        if (rp_ring_write(ring, src, chunk) < 0 ||
            rp_ring_read(ring, dst, chunk) != chunk) {
            fprintf(stderr, "bench_ring: ring refused a chunk\n");
            exit(1);
        }
        escape(dst);
    }
    return gb_per_s(steps * chunk, rp_clock_ns() - t0);
}

/* Writes and reads at the offsets the ring uses, minus the wrap. */
static double run_memcpy_same_offsets(size_t chunk)
{
    size_t steps = BYTES_PER_RUN / chunk;
    size_t wpos = RING_PREFILL, rpos = 0;
    int64_t t0 = rp_clock_ns();
    for (size_t i = 0; i < steps; i++) {
        escape(src);
        memcpy(linear + wpos, src, chunk);
        escape(linear);
        memcpy(dst, linear + rpos, chunk);
        escape(dst);
        wpos = (wpos + chunk) & (RING_CAP - 1);
        rpos = (rpos + chunk) & (RING_CAP - 1);
    }
    return gb_per_s(steps * chunk, rp_clock_ns() - t0);
}

static double run_memcpy_one_buffer(size_t chunk)
{
    size_t steps = BYTES_PER_RUN / chunk;
    int64_t t0 = rp_clock_ns();
    for (size_t i = 0; i < steps; i++) {
        escape(src);
        memcpy(hot, src, chunk);
        escape(hot);
        memcpy(dst, hot, chunk);
        escape(dst);
    }
    return gb_per_s(steps * chunk, rp_clock_ns() - t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(void)
{
    static const size_t chunks[] = {64, 512, 4096, 16384};
    struct rp_ring ring;
    if (rp_ring_init(&ring, RING_CAP, 0) < 0)
        return 1;
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 31 + 7);
    if (rp_ring_write(&ring, src, RING_PREFILL) < 0)
        return 1;

    printf("## rp_ring write+read vs memcpy into+out of a linear buffer\n\n");
    printf("GB/s of payload; median of %d interleaved runs of %zu MiB each; "
           "ring of %zu KiB holding %d bytes. Ratio = median of paired "
           "ring / memcpy.\n\n",
           REPS, BYTES_PER_RUN >> 20, RING_CAP / 1024, RING_PREFILL);
    printf("| chunk | ring | memcpy, same offsets | ratio | "
           "memcpy, one buffer | ratio |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        size_t chunk = chunks[c];
        double ring_gbs[REPS], same_gbs[REPS], one_gbs[REPS];
        double same_ratio[REPS], one_ratio[REPS];
        run_ring(&ring, chunk); /* warm caches and branch predictors */
        run_memcpy_same_offsets(chunk);
        run_memcpy_one_buffer(chunk);
        for (int r = 0; r < REPS; r++) {
            /* Rotate the order so drift favours no one. */
            for (int k = 0; k < 3; k++) {
                switch ((r + k) % 3) {
                case 0: ring_gbs[r] = run_ring(&ring, chunk); break;
                case 1: same_gbs[r] = run_memcpy_same_offsets(chunk); break;
                case 2: one_gbs[r] = run_memcpy_one_buffer(chunk); break;
                }
            }
            same_ratio[r] = ring_gbs[r] / same_gbs[r];
            one_ratio[r] = ring_gbs[r] / one_gbs[r];
        }
        printf("| %zu B | %.2f | %.2f | %.2f | %.2f | %.2f |\n", chunk,
               median(ring_gbs, REPS), median(same_gbs, REPS),
               median(same_ratio, REPS), median(one_gbs, REPS),
               median(one_ratio, REPS));
    }

    /* Every step read back as much as it wrote: the fill is unchanged. */
    if (rp_ring_used_bytes(&ring) != RING_PREFILL) {
        fprintf(stderr, "bench_ring: ring lost bytes\n");
        return 1;
    }
    rp_ring_destroy(&ring);
    return 0;
}
