/*
 * rp_packet and the frame decoder, each next to a hand-written baseline in
 * the same run, interleaved, 7 times; the table gives medians of ns per
 * message and the median of the paired ratios.
 *
 *   create: create a pooled packet, put_bytes a 23-byte message, take its
 *           wire view, unref; baseline: malloc a buffer, write the 4-byte
 *           header and memcpy the same 23 bytes, free (the issue's
 *           "rp_packet_create + unref vs malloc+memcpy+free").
 *   build:  create a pooled packet, put a 23-byte movement message (u32 id,
 *           3 x f32 position, u16 animation, u8 flags), take its wire view,
 *           unref; baseline: malloc a buffer, store the same fields with
 *           memcpy at fixed offsets, free.
 *   read:   read the same message back with an rp_reader (bounds-checked
 *           gets); baseline: memcpy from fixed offsets, no checks.
 *   decode: feed a stream of those frames to an rp_frame_decoder in 1500-byte
 *           chunks (frames cut at every chunk edge, as from the network);
 *           baseline: rp_frame_parse in a loop over the unsplit stream.
 * Run: build-release/bench/bench_packet [ROW] (or `make bench`); ROW, a
 * part of a row's name ("create:"), runs only the rows that match (for
 * perf record).
 */
#include "core/clock.h"
#include "proto/frame.h"

#include <ringport/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPS 7
#define MSGS 2000000
#define MSG_PAYLOAD 23
#define CHUNK 1500
#define STREAM_FRAMES 4096

static inline void escape(const void *p)
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

static volatile uint32_t sink;

static double run_build_packet(void)
{
    int64_t t0 = rp_clock_ns();
    for (uint32_t i = 0; i < MSGS; i++) {
        struct rp_packet *p;
        if (rp_packet_create(MSG_PAYLOAD, 17, &p) < 0)
            abort();
        rp_packet_put_u32(p, i);
        rp_packet_put_f32(p, 1.5f);
        rp_packet_put_f32(p, 2.5f);
        rp_packet_put_f32(p, (float)i);
        rp_packet_put_u16(p, 7);
        rp_packet_put_u8(p, 1);
        size_t len;
        const uint8_t *w = rp_packet_wire(p, &len);
        escape(w);
        sink += (uint32_t)len;
        rp_packet_unref(p);
    }
    return (double)(rp_clock_ns() - t0) / MSGS;
}

static uint8_t msg[MSG_PAYLOAD];

static double run_create_packet(void)
{
    int64_t t0 = rp_clock_ns();
    for (uint32_t i = 0; i < MSGS; i++) {
        struct rp_packet *p;
        if (rp_packet_create(MSG_PAYLOAD, 17, &p) < 0)
            abort();
        escape(msg);
        rp_packet_put_bytes(p, msg, MSG_PAYLOAD);
        size_t len;
        const uint8_t *w = rp_packet_wire(p, &len);
        escape(w);
        sink += (uint32_t)len;
        rp_packet_unref(p);
    }
    return (double)(rp_clock_ns() - t0) / MSGS;
}

static double run_create_malloc(void)
{
    int64_t t0 = rp_clock_ns();
    for (uint32_t i = 0; i < MSGS; i++) {
        uint8_t *b = malloc(4 + MSG_PAYLOAD);
        if (!b)
            abort();
        escape(msg);
        uint16_t len = MSG_PAYLOAD, type = 17;
        memcpy(b, &len, 2);
        memcpy(b + 2, &type, 2);
        memcpy(b + 4, msg, MSG_PAYLOAD);
        escape(b);
        sink += len;
        free(b);
    }
    return (double)(rp_clock_ns() - t0) / MSGS;
}

static double run_build_malloc(void)
{
    int64_t t0 = rp_clock_ns();
    for (uint32_t i = 0; i < MSGS; i++) {
        uint8_t *b = malloc(4 + MSG_PAYLOAD);
        if (!b)
            abort();
        uint16_t len = MSG_PAYLOAD, type = 17, anim = 7;
        float x = 1.5f, y = 2.5f, z = (float)i;
        memcpy(b, &len, 2);
        memcpy(b + 2, &type, 2);
        memcpy(b + 4, &i, 4);
        memcpy(b + 8, &x, 4);
        memcpy(b + 12, &y, 4);
        memcpy(b + 16, &z, 4);
        memcpy(b + 20, &anim, 2);
        b[22] = 1;
        escape(b);
        sink += len;
        free(b);
    }
    return (double)(rp_clock_ns() - t0) / MSGS;
}

static double run_read_reader(void)
{
    int64_t t0 = rp_clock_ns();
    for (uint32_t i = 0; i < MSGS; i++) {
        escape(msg);
        struct rp_reader r;
        rp_reader_init(&r, msg, sizeof msg);
        uint32_t id = rp_reader_get_u32(&r);
        float x = rp_reader_get_f32(&r);
        float y = rp_reader_get_f32(&r);
        float z = rp_reader_get_f32(&r);
        uint16_t anim = rp_reader_get_u16(&r);
        uint8_t flags = rp_reader_get_u8(&r);
        if (rp_reader_failed(&r))
            abort();
        sink += id + (uint32_t)(x + y + z) + anim + flags;
    }
    return (double)(rp_clock_ns() - t0) / MSGS;
}

static double run_read_memcpy(void)
{
    int64_t t0 = rp_clock_ns();
    for (uint32_t i = 0; i < MSGS; i++) {
        escape(msg);
        uint32_t id;
        float x, y, z;
        uint16_t anim;
        memcpy(&id, msg, 4);
        memcpy(&x, msg + 4, 4);
        memcpy(&y, msg + 8, 4);
        memcpy(&z, msg + 12, 4);
        memcpy(&anim, msg + 16, 2);
        sink += id + (uint32_t)(x + y + z) + anim + msg[18];
    }
    return (double)(rp_clock_ns() - t0) / MSGS;
}

static uint8_t *stream;
static size_t stream_len;

static int count_frame(void *user, const struct rp_frame *f)
{
    *(uint32_t *)user += f->len;
    return 0;
}

static double run_decode_chunks(void)
{
    struct rp_frame_limits lim = {0};
    uint32_t total = 0;
    int frames = 0;
    int64_t t0 = rp_clock_ns();
    for (int rep = 0; rep < MSGS / STREAM_FRAMES; rep++) {
        struct rp_frame_decoder d;
        rp_frame_decoder_init(&d, &lim);
        for (size_t at = 0; at < stream_len; at += CHUNK) {
            size_t n = stream_len - at < CHUNK ? stream_len - at : CHUNK;
            frames +=
                rp_frame_decoder_feed(&d, stream + at, n, count_frame, &total);
        }
        rp_frame_decoder_destroy(&d);
    }
    int64_t ns = rp_clock_ns() - t0;
    sink += total;
    return (double)ns / frames;
}

static double run_decode_parse(void)
{
    struct rp_frame_limits lim = {0};
    uint32_t total = 0;
    int frames = 0;
    int64_t t0 = rp_clock_ns();
    for (int rep = 0; rep < MSGS / STREAM_FRAMES; rep++) {
        escape(stream);
        struct rp_frame f;
        int rc;
        for (size_t at = 0;
             (rc = rp_frame_parse(stream + at, stream_len - at, &lim, &f)) > 0;
             at += (size_t)rc) {
            count_frame(&total, &f);
            frames++;
        }
    }
    int64_t ns = rp_clock_ns() - t0;
    sink += total;
    return (double)ns / frames;
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

static const char *only; /* argv[1]: run the rows whose name has it */

static void row(const char *name, double (*subject)(void),
                double (*baseline)(void))
{
    double s[REPS], b[REPS], ratio[REPS];
    if (only && !strstr(name, only))
        return;
    subject(); /* warm pools, caches and branch predictors */
    baseline();
    for (int r = 0; r < REPS; r++) {
        /* Alternate the order so drift favours neither. */
        if (r % 2) {
            b[r] = baseline();
            s[r] = subject();
        } else {
            s[r] = subject();
            b[r] = baseline();
        }
        ratio[r] = s[r] / b[r];
    }
    printf("| %s | %.1f | %.1f | %.2f |\n", name, median(s, REPS),
           median(b, REPS), median(ratio, REPS));
}

int main(int argc, char **argv)
{
    only = argc > 1 ? argv[1] : NULL;
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)(i * 13 + 1);
    stream_len = (size_t)STREAM_FRAMES * (4 + MSG_PAYLOAD);
    stream = malloc(stream_len);
    if (!stream)
        return 1;
    for (size_t f = 0; f < STREAM_FRAMES; f++) {
        uint8_t *h = stream + f * (4 + MSG_PAYLOAD);
        h[0] = MSG_PAYLOAD;
        h[1] = 0;
        h[2] = 17;
        h[3] = 0;
        memcpy(h + 4, msg, MSG_PAYLOAD);
    }

    printf("## rp_packet and frame decoding vs hand-written baselines\n\n");
    printf("ns per message; median of %d interleaved runs; %d-byte payload; "
           "decode chunks of %d B. Ratio = median of paired subject / "
           "baseline.\n\n",
           REPS, MSG_PAYLOAD, CHUNK);
    printf("| operation | ringport | baseline | ratio |\n");
    printf("| --- | ---: | ---: | ---: |\n");
    row("create: pooled packet, put_bytes, unref vs malloc+memcpy+free",
        run_create_packet, run_create_malloc);
    row("build: pooled packet vs malloc+memcpy", run_build_packet,
        run_build_malloc);
    row("read: rp_reader vs unchecked memcpy", run_read_reader,
        run_read_memcpy);
    row("decode: decoder, 1500 B chunks vs parse loop, one span",
        run_decode_chunks, run_decode_parse);
    free(stream);
    rp_packet_pools_shutdown();
    return 0;
}
