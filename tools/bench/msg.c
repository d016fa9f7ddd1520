/*
 * Message contents (see bench.h): deterministic from (--seed, connection,
 * sequence), so the sender builds and the receiver checks every byte
 * without storing what was sent. The filler is a slice of one shared random
 * pattern, read-only after msg_init, so building a message is two small
 * copies and checking one is a memcmp.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

static uint8_t *pattern; /* PATTERN_SPAN + size_max bytes */
static uint64_t seed;
static uint32_t size_min, size_span;

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void msg_init(const struct bench_opts *o)
{
    size_t len = PATTERN_SPAN + o->size_max;
    seed = o->seed;
    size_min = o->size_min;
    size_span = o->size_max - o->size_min + 1;
    pattern = malloc(len);
    if (!pattern)
        abort();
    uint64_t s = seed;
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0)
            s = mix64(s + 0x9E3779B97F4A7C15ull);
        pattern[i] = (uint8_t)(s >> (8 * (i % 8)));
    }
}

void msg_fini(void)
{
    free(pattern);
    pattern = NULL;
}

uint32_t msg_size(uint32_t conn, uint32_t seq)
{
    if (size_span == 1)
        return size_min;
    uint64_t z = mix64(seed ^ ((uint64_t)conn << 32 | seq) ^ 0x512Eull);
    return size_min + (uint32_t)(z % size_span);
}

/* FNV-1a over 8-byte words, then the tail: cheap, and any flipped bit of
   the filler changes it. */
static uint32_t checksum(const uint8_t *p, uint32_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001B3ull;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ull;
    return (uint32_t)(h ^ (h >> 32));
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void msg_layout(struct msg_layout *m, uint32_t conn, uint32_t seq, bool framed)
{
    uint32_t size = msg_size(conn, seq);
    uint32_t off = (uint32_t)mix64(((uint64_t)conn << 32 | seq) ^ seed) &
                   (PATTERN_SPAN - 1);
    uint32_t hdr = size < MSG_HEADER ? size : MSG_HEADER;
    uint8_t full[MSG_HEADER];
    uint8_t *h = m->head;

    m->size = size;
    m->fill_len = size - hdr;
    m->fill = pattern + off;
    if (framed) {
        h[0] = (uint8_t)size;
        h[1] = (uint8_t)(size >> 8);
        h[2] = (uint8_t)MSG_TYPE_DATA;
        h[3] = 0;
        h += FRAME_HEADER;
    }
    put_u32(full, conn);
    put_u32(full + 4, seq);
    put_u32(full + 8, checksum(m->fill, m->fill_len));
    memcpy(h, full, hdr);
    m->head_len = (uint32_t)(h - m->head) + hdr;
}

uint32_t msg_write(const struct msg_layout *m, uint8_t *dst)
{
    memcpy(dst, m->head, m->head_len);
    memcpy(dst + m->head_len, m->fill, m->fill_len);
    return m->head_len + m->fill_len;
}
