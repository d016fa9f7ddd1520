/*
 * rp_ring: checked against a reference model (a linear byte array with
 * memmove) over a million random operations, plus targeted tests of the
 * edges: capacity, index wrap past UINT32_MAX, iovec views, growth, init.
 */
#include "helpers.h"

#include "buf/ring.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- reference model ---------------------------------------------------- */

#define MODEL_MAX 512 /* largest max capacity the random test creates */
#define RANDOM_OPS 1000000

struct model {
    uint8_t bytes[MODEL_MAX]; /* the used bytes, head first */
    size_t len;
    size_t cap; /* the capacity the ring should have */
    size_t max; /* the growth cap it should honour */
};

static size_t round_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static void fill_random(uint64_t *rng, uint8_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)t_rand(rng);
}

/* Counts and every stored byte, read straight from the buffer. */
static void check_ring(const struct rp_ring *r, const struct model *m,
                       uint64_t op)
{
    if (rp_ring_capacity(r) != m->cap || rp_ring_used_bytes(r) != m->len ||
        rp_ring_free_bytes(r) != m->cap - m->len)
        fail_msg("op %" PRIu64 ": cap %zu used %zu free %zu, model cap %zu "
                 "len %zu",
                 op, rp_ring_capacity(r), rp_ring_used_bytes(r),
                 rp_ring_free_bytes(r), m->cap, m->len);
    for (size_t i = 0; i < m->len; i++)
        if (r->data[(r->head + (uint32_t)i) & r->mask] != m->bytes[i])
            fail_msg("op %" PRIu64 ": byte %zu of %zu differs", op, i, m->len);
}

static void model_append(struct model *m, const uint8_t *src, size_t n)
{
    memcpy(m->bytes + m->len, src, n);
    m->len += n;
}

static void model_drop(struct model *m, size_t n)
{
    memmove(m->bytes, m->bytes + n, m->len - n);
    m->len -= n;
}

/* What making room for 'n' more bytes should do: the return code, and the
   capacity afterwards in '*cap'. */
static int model_reserve(const struct model *m, size_t n, size_t *cap)
{
    *cap = m->cap;
    if (n <= m->cap - m->len)
        return 0;
    if (m->len + n > m->max)
        return -ENOBUFS;
    while (*cap < m->len + n)
        *cap <<= 1;
    return 0;
}

static void model_ring_init(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    size_t cap = (size_t)t_rand_range(rng, 1, 64);
    size_t max = 0;
    if (t_rand(rng) & 1)
        max = (size_t)t_rand_range(rng, cap, MODEL_MAX);
    assert_int_equal(rp_ring_init(r, cap, max), 0);
    m->len = 0;
    m->cap = round_pow2(cap);
    m->max = max ? round_pow2(max) : m->cap;

    /* Start somewhere else than 0, often just before the index wrap. */
    switch (t_rand(rng) % 3) {
    case 0: break;
    case 1:
        assert_int_equal(
            rp__ring_set_index(
                r, UINT32_MAX - (uint32_t)t_rand_range(rng, 0, 2 * m->cap)),
            0);
        break;
    case 2: assert_int_equal(rp__ring_set_index(r, (uint32_t)t_rand(rng)), 0);
    }
}

static void random_write(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    uint8_t buf[MODEL_MAX + 8];
    size_t n = (size_t)t_rand_range(rng, 0, m->cap + m->cap / 2 + 2);
    if (n > sizeof buf)
        n = sizeof buf;
    fill_random(rng, buf, n);
    size_t cap;
    int expect = model_reserve(m, n, &cap);
    assert_int_equal(rp_ring_write(r, buf, n), expect);
    if (expect == 0) {
        m->cap = cap;
        model_append(m, buf, n);
    }
}

static void random_read(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    uint8_t buf[MODEL_MAX + 8];
    size_t n = (size_t)t_rand_range(rng, 0, m->len + 3);
    size_t expect = n < m->len ? n : m->len;
    assert_int_equal(rp_ring_read(r, buf, n), expect);
    assert_memory_equal(buf, m->bytes, expect);
    model_drop(m, expect);
}

static void random_peek(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    uint8_t buf[MODEL_MAX + 8];
    size_t off = (size_t)t_rand_range(rng, 0, m->len + 2);
    size_t n = (size_t)t_rand_range(rng, 0, m->len + 3);
    size_t expect = off >= m->len ? 0 : (n < m->len - off ? n : m->len - off);
    memset(buf, 0xA5, sizeof buf);
    assert_int_equal(rp_ring_peek(r, off, buf, n), expect);
    if (expect)
        assert_memory_equal(buf, m->bytes + off, expect);
    /* Nothing past the copied bytes is touched. */
    for (size_t i = expect; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xA5);
}

static void random_consume(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    size_t n = (size_t)t_rand_range(rng, 0, m->len + 1);
    if (n > m->len) {
        assert_int_equal(rp_ring_consume(r, n), -EINVAL);
        return;
    }
    assert_int_equal(rp_ring_consume(r, n), 0);
    model_drop(m, n);
}

/* Like a recv: scatter into the free iovecs, then commit part of it. */
static void random_commit(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    struct iovec iov[2];
    size_t free_bytes = m->cap - m->len;
    int cnt = rp_ring_free_iov(r, iov);
    assert_int_equal(cnt == 0, free_bytes == 0);
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        assert_true(iov[i].iov_len > 0);
        assert_true((uint8_t *)iov[i].iov_base >= r->data);
        assert_true((uint8_t *)iov[i].iov_base + iov[i].iov_len <=
                    r->data + m->cap);
        total += iov[i].iov_len;
    }
    assert_int_equal(total, free_bytes);

    size_t k = (size_t)t_rand_range(rng, 0, free_bytes);
    uint8_t buf[MODEL_MAX];
    fill_random(rng, buf, free_bytes);
    /* The first k bytes are the received data; the rest is junk a recv may
       leave behind and that must not count. */
    size_t done = 0;
    for (int i = 0; i < cnt; i++) {
        memcpy(iov[i].iov_base, buf + done, iov[i].iov_len);
        done += iov[i].iov_len;
    }
    assert_int_equal(rp_ring_commit(r, free_bytes + 1), -EINVAL);
    assert_int_equal(rp_ring_commit(r, k), 0);
    model_append(m, buf, k);
}

/* Like a gather send: check the used iovecs, then consume what was sent. */
static void random_used_view(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    struct iovec iov[2];
    int cnt = rp_ring_used_iov(r, iov);
    assert_int_equal(cnt == 0, m->len == 0);
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        assert_true(iov[i].iov_len > 0);
        assert_memory_equal(iov[i].iov_base, m->bytes + total, iov[i].iov_len);
        total += iov[i].iov_len;
    }
    assert_int_equal(total, m->len);
    size_t sent = (size_t)t_rand_range(rng, 0, m->len);
    assert_int_equal(rp_ring_consume(r, sent), 0);
    model_drop(m, sent);
}

static void random_contig(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    size_t n = (size_t)t_rand_range(rng, 0, m->len + 2);
    uint32_t at = r->head & r->mask;
    const uint8_t *p = rp_ring_contig(r, n);
    if (n > m->len || n > m->cap - at) {
        assert_null(p);
        return;
    }
    assert_ptr_equal(p, r->data + at);
    if (n)
        assert_memory_equal(p, m->bytes, n);
}

static void random_reserve(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    size_t n = (size_t)t_rand_range(rng, 0, m->max - m->len + 2);
    size_t cap;
    int expect = model_reserve(m, n, &cap);
    assert_int_equal(rp_ring_reserve(r, n), expect);
    m->cap = cap;
}

static void fill_to_full(uint64_t *rng, struct rp_ring *r, struct model *m)
{
    uint8_t buf[MODEL_MAX];
    size_t n = m->cap - m->len;
    fill_random(rng, buf, n);
    assert_int_equal(rp_ring_write(r, buf, n), 0);
    model_append(m, buf, n);
    assert_int_equal(rp_ring_free_bytes(r), 0);
}

static void drain_to_empty(struct rp_ring *r, struct model *m)
{
    uint8_t buf[MODEL_MAX];
    assert_int_equal(rp_ring_read(r, buf, sizeof buf), m->len);
    assert_memory_equal(buf, m->bytes, m->len);
    model_drop(m, m->len);
}

static void ring_matches_a_linear_model_over_random_operations(void **state)
{
    (void)state;
    uint64_t rng = t_seed();
    static struct model m;
    struct rp_ring r;
    /* Edges the run must have reached, or it proved little. */
    uint64_t grew = 0, crossed_2_32 = 0, full = 0, empty = 0, split = 0;
    model_ring_init(&rng, &r, &m);
    for (uint64_t op = 0; op < RANDOM_OPS; op++) {
        size_t cap_before = m.cap;
        uint32_t tail_before = r.tail;
        unsigned pick = (unsigned)(t_rand(&rng) % 200);
        if (pick < 40)
            random_write(&rng, &r, &m);
        else if (pick < 70)
            random_read(&rng, &r, &m);
        else if (pick < 90)
            random_peek(&rng, &r, &m);
        else if (pick < 110)
            random_consume(&rng, &r, &m);
        else if (pick < 140)
            random_commit(&rng, &r, &m);
        else if (pick < 160)
            random_used_view(&rng, &r, &m);
        else if (pick < 175)
            random_contig(&rng, &r, &m);
        else if (pick < 185)
            random_reserve(&rng, &r, &m);
        else if (pick < 191)
            fill_to_full(&rng, &r, &m);
        else if (pick < 198)
            drain_to_empty(&r, &m);
        else {
            rp_ring_destroy(&r);
            model_ring_init(&rng, &r, &m);
        }
        check_ring(&r, &m, op);
        struct iovec iov[2];
        grew += m.cap > cap_before;
        crossed_2_32 += r.tail < tail_before && m.len > 0;
        full += m.len == m.cap;
        empty += m.len == 0;
        split += rp_ring_used_iov(&r, iov) == 2;
    }
    rp_ring_destroy(&r);
    printf("grew %" PRIu64 ", tail crossed 2^32 %" PRIu64 ", full %" PRIu64
           ", empty %" PRIu64 ", used bytes wrapped %" PRIu64 "\n",
           grew, crossed_2_32, full, empty, split);
    assert_true(grew > 0 && crossed_2_32 > 0 && full > 0 && empty > 0 &&
                split > 0);
}

/* ---- targeted tests ----------------------------------------------------- */

static void ring_refuses_write_past_capacity(void **state)
{
    (void)state;
    struct rp_ring r;
    uint8_t in[64], out[64];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(rp_ring_init(&r, 64, 0), 0);
    assert_int_equal(rp_ring_write(&r, in, 60), 0);
    /* All or nothing: 5 bytes do not fit in 4, so none go in. */
    assert_int_equal(rp_ring_write(&r, in + 60, 5), -ENOBUFS);
    assert_int_equal(rp_ring_used_bytes(&r), 60);
    assert_int_equal(rp_ring_write(&r, in + 60, 4), 0);
    assert_int_equal(rp_ring_free_bytes(&r), 0);
    assert_int_equal(rp_ring_write(&r, in, 1), -ENOBUFS);
    assert_int_equal(rp_ring_write(&r, in, 0), 0);
    assert_int_equal(rp_ring_reserve(&r, 1), -ENOBUFS);
    assert_int_equal(rp_ring_capacity(&r), 64);
    assert_int_equal(rp_ring_read(&r, out, sizeof out), 64);
    assert_memory_equal(out, in, 64);
    rp_ring_destroy(&r);
}

static void ring_wraps_indices_past_uint32_max(void **state)
{
    (void)state;
    struct rp_ring r;
    uint8_t in[40], out[40];
    assert_int_equal(rp_ring_init(&r, 32, 0), 0);
    assert_int_equal(rp__ring_set_index(&r, UINT32_MAX - 4), 0);
    /* Keep bytes stored while head and tail cross 2^32, many times round
       the buffer, so the wrap happens with the ring in use. */
    uint8_t next_in = 0, next_out = 0;
    int crossed = 0;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(round % 13) + 1;
        if (n > rp_ring_free_bytes(&r))
            n = rp_ring_free_bytes(&r);
        for (size_t i = 0; i < n; i++)
            in[i] = next_in++;
        uint32_t tail_before = r.tail;
        assert_int_equal(rp_ring_write(&r, in, n), 0);
        if (r.tail < tail_before)
            crossed++;
        assert_true(rp_ring_used_bytes(&r) <= 32);
        size_t want = (size_t)(round % 11);
        /* Leave at least one byte so the ring never drains (a drained ring
           restarts at index 0). */
        if (want >= rp_ring_used_bytes(&r))
            want = rp_ring_used_bytes(&r) - 1;
        size_t got = rp_ring_read(&r, out, want);
        assert_int_equal(got, want);
        for (size_t i = 0; i < got; i++)
            assert_int_equal(out[i], next_out++);
    }
    assert_true(crossed >= 1);
    assert_true(r.head < 10000 && r.tail < 10000); /* went past 2^32 */
    size_t left = rp_ring_used_bytes(&r);
    assert_int_equal(rp_ring_read(&r, out, sizeof out), left);
    for (size_t i = 0; i < left; i++)
        assert_int_equal(out[i], next_out++);
    assert_int_equal(next_in, next_out);
    rp_ring_destroy(&r);
}

static void ring_counts_stay_right_across_the_index_wrap(void **state)
{
    (void)state;
    struct rp_ring r;
    uint8_t in[16] = "abcdefghijklmno", out[16];
    assert_int_equal(rp_ring_init(&r, 16, 0), 0);
    assert_int_equal(rp__ring_set_index(&r, UINT32_MAX - 2), 0);
    assert_int_equal(rp_ring_write(&r, in, 10), 0); /* tail wraps to 7 */
    assert_true(r.tail < r.head);
    assert_int_equal(rp_ring_used_bytes(&r), 10);
    assert_int_equal(rp_ring_free_bytes(&r), 6);
    assert_int_equal(rp_ring_peek(&r, 2, out, 8), 8);
    assert_memory_equal(out, in + 2, 8);
    assert_int_equal(rp_ring_write(&r, in + 10, 6), 0);
    assert_int_equal(rp_ring_free_bytes(&r), 0);
    assert_int_equal(rp_ring_read(&r, out, 16), 16);
    assert_memory_equal(out, in, 16);
    rp_ring_destroy(&r);
}

static void
ring_iovec_views_cover_exactly_the_free_and_used_bytes_in_order(void **state)
{
    (void)state;
    struct rp_ring r;
    struct iovec iov[2];
    assert_int_equal(rp_ring_init(&r, 16, 0), 0);

    /* Empty at index 0: all free space in one segment, nothing used. */
    assert_int_equal(rp_ring_used_iov(&r, iov), 0);
    assert_int_equal(rp_ring_free_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.data);
    assert_int_equal(iov[0].iov_len, 16);

    /* Used bytes at [10, 16) + [0, 2): two used segments, one free. */
    assert_int_equal(rp__ring_set_index(&r, 10), 0);
    assert_int_equal(rp_ring_write(&r, "ABCDEFGH", 8), 0);
    assert_int_equal(rp_ring_used_iov(&r, iov), 2);
    assert_ptr_equal(iov[0].iov_base, r.data + 10);
    assert_int_equal(iov[0].iov_len, 6);
    assert_memory_equal(iov[0].iov_base, "ABCDEF", 6);
    assert_ptr_equal(iov[1].iov_base, r.data);
    assert_int_equal(iov[1].iov_len, 2);
    assert_memory_equal(iov[1].iov_base, "GH", 2);
    assert_int_equal(rp_ring_free_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.data + 2);
    assert_int_equal(iov[0].iov_len, 8);

    /* Used bytes at [4, 10) after consuming: one used segment, free space
       split in two, [10, 16) then [0, 4). */
    assert_int_equal(rp_ring_consume(&r, 8), 0); /* drains: back to 0 */
    assert_int_equal(rp__ring_set_index(&r, 4), 0);
    assert_int_equal(rp_ring_write(&r, "uvwxyz", 6), 0);
    assert_int_equal(rp_ring_used_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.data + 4);
    assert_int_equal(iov[0].iov_len, 6);
    assert_int_equal(rp_ring_free_iov(&r, iov), 2);
    assert_ptr_equal(iov[0].iov_base, r.data + 10);
    assert_int_equal(iov[0].iov_len, 6);
    assert_ptr_equal(iov[1].iov_base, r.data);
    assert_int_equal(iov[1].iov_len, 4);

    /* A recv filling both free segments, then committed: full, no free
       segment, and the used view reads it all back in order. */
    memcpy(iov[0].iov_base, "012345", 6);
    memcpy(iov[1].iov_base, "6789", 4);
    assert_int_equal(rp_ring_commit(&r, 10), 0);
    assert_int_equal(rp_ring_free_iov(&r, iov), 0);
    assert_int_equal(rp_ring_used_iov(&r, iov), 2);
    assert_int_equal(iov[0].iov_len + iov[1].iov_len, 16);
    uint8_t all[16];
    memcpy(all, iov[0].iov_base, iov[0].iov_len);
    memcpy(all + iov[0].iov_len, iov[1].iov_base, iov[1].iov_len);
    assert_memory_equal(all, "uvwxyz0123456789", 16);
    rp_ring_destroy(&r);
}

static void ring_offers_one_free_segment_once_drained(void **state)
{
    (void)state;
    struct rp_ring r;
    struct iovec iov[2];
    uint8_t out[16];
    assert_int_equal(rp_ring_init(&r, 16, 0), 0);
    assert_int_equal(rp_ring_write(&r, "0123456789", 10), 0);
    assert_int_equal(rp_ring_read(&r, out, 6), 6);
    assert_int_equal(rp_ring_free_iov(&r, iov), 2); /* [10,16) + [0,6) */
    /* Draining, by read or by consume, starts the ring over at 0. */
    assert_int_equal(rp_ring_read(&r, out, 16), 4);
    assert_int_equal(rp_ring_free_iov(&r, iov), 1);
    assert_ptr_equal(iov[0].iov_base, r.data);
    assert_int_equal(iov[0].iov_len, 16);
    assert_int_equal(rp_ring_write(&r, "abcdefghij", 10), 0);
    assert_int_equal(rp_ring_consume(&r, 7), 0);
    assert_int_equal(rp_ring_consume(&r, 3), 0);
    assert_int_equal(rp_ring_free_iov(&r, iov), 1);
    assert_int_equal(iov[0].iov_len, 16);
    rp_ring_destroy(&r);
}

static void ring_consume_and_commit_refuse_more_than_there_is(void **state)
{
    (void)state;
    struct rp_ring r;
    assert_int_equal(rp_ring_init(&r, 8, 0), 0);
    assert_int_equal(rp_ring_write(&r, "abc", 3), 0);
    assert_int_equal(rp_ring_consume(&r, 4), -EINVAL);
    assert_int_equal(rp_ring_commit(&r, 6), -EINVAL);
    assert_int_equal(rp_ring_used_bytes(&r), 3);
    assert_int_equal(rp_ring_commit(&r, 5), 0);
    assert_int_equal(rp_ring_consume(&r, 8), 0);
    assert_int_equal(rp_ring_used_bytes(&r), 0);
    rp_ring_destroy(&r);
}

static void ring_peek_reads_across_the_wrap_without_consuming(void **state)
{
    (void)state;
    struct rp_ring r;
    uint8_t out[8];
    assert_int_equal(rp_ring_init(&r, 8, 0), 0);
    assert_int_equal(rp__ring_set_index(&r, 6), 0);
    assert_int_equal(rp_ring_write(&r, "pqrstu", 6), 0); /* [6,8) + [0,4) */
    assert_int_equal(rp_ring_peek(&r, 1, out, 4), 4);
    assert_memory_equal(out, "qrst", 4);
    assert_int_equal(rp_ring_peek(&r, 4, out, 8), 2);
    assert_memory_equal(out, "tu", 2);
    assert_int_equal(rp_ring_peek(&r, 6, out, 8), 0);
    assert_int_equal(rp_ring_used_bytes(&r), 6);
    rp_ring_destroy(&r);
}

static void
ring_contig_points_in_place_only_when_bytes_do_not_wrap(void **state)
{
    (void)state;
    struct rp_ring r;
    assert_int_equal(rp_ring_init(&r, 8, 0), 0);
    assert_int_equal(rp__ring_set_index(&r, 5), 0);
    assert_int_equal(rp_ring_write(&r, "klmnop", 6), 0); /* [5,8) + [0,3) */
    const uint8_t *p = rp_ring_contig(&r, 3);
    assert_ptr_equal(p, r.data + 5);
    assert_memory_equal(p, "klm", 3);
    assert_null(rp_ring_contig(&r, 4));
    assert_int_equal(rp_ring_consume(&r, 3), 0);
    p = rp_ring_contig(&r, 3);
    assert_ptr_equal(p, r.data);
    assert_memory_equal(p, "nop", 3);
    assert_null(rp_ring_contig(&r, 4)); /* more than is stored */
    rp_ring_destroy(&r);
}

static void ring_growth_preserves_content(void **state)
{
    (void)state;
    struct rp_ring r;
    uint8_t in[100], out[100];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(200 - i);
    assert_int_equal(rp_ring_init(&r, 16, 128), 0);
    /* Stored bytes wrap the buffer when the ring has to grow. */
    assert_int_equal(rp__ring_set_index(&r, 12), 0);
    assert_int_equal(rp_ring_write(&r, in, 10), 0);
    assert_int_equal(rp_ring_used_iov(&r, (struct iovec[2]){{0}}), 2);
    assert_int_equal(rp_ring_write(&r, in + 10, 30), 0); /* 40 > 16 */
    assert_int_equal(rp_ring_capacity(&r), 64);
    assert_int_equal(rp_ring_used_bytes(&r), 40);
    assert_memory_equal(rp_ring_contig(&r, 40), in, 40); /* linearized */
    /* The explicit call grows too, and keeps the bytes. */
    assert_int_equal(rp_ring_reserve(&r, 60), 0);
    assert_int_equal(rp_ring_capacity(&r), 128);
    assert_int_equal(rp_ring_reserve(&r, 10), 0); /* room already there */
    assert_int_equal(rp_ring_capacity(&r), 128);
    assert_int_equal(rp_ring_write(&r, in + 40, 60), 0);
    assert_int_equal(rp_ring_read(&r, out, sizeof out), 100);
    assert_memory_equal(out, in, 100);
    rp_ring_destroy(&r);
}

static void ring_growth_stops_at_the_cap(void **state)
{
    (void)state;
    struct rp_ring r;
    uint8_t in[80] = {0};
    assert_int_equal(rp_ring_init(&r, 8, 64), 0);
    assert_int_equal(rp_ring_write(&r, in, 50), 0);
    assert_int_equal(rp_ring_capacity(&r), 64);
    assert_int_equal(rp_ring_write(&r, in, 15), -ENOBUFS);
    assert_int_equal(rp_ring_reserve(&r, 15), -ENOBUFS);
    assert_int_equal(rp_ring_used_bytes(&r), 50);
    assert_int_equal(rp_ring_write(&r, in, 14), 0);
    assert_int_equal(rp_ring_free_bytes(&r), 0);
    assert_int_equal(rp_ring_write(&r, in, 1), -ENOBUFS);
    assert_int_equal(rp_ring_capacity(&r), 64);
    rp_ring_destroy(&r);

    /* A write larger than the cap is refused at once. */
    assert_int_equal(rp_ring_init(&r, 8, 64), 0);
    assert_int_equal(rp_ring_write(&r, in, 65), -ENOBUFS);
    assert_int_equal(rp_ring_capacity(&r), 8);
    assert_int_equal(rp_ring_reserve(&r, SIZE_MAX), -ENOBUFS);
    rp_ring_destroy(&r);
}

static void ring_rounds_capacity_up_to_a_power_of_two(void **state)
{
    (void)state;
    static const size_t asked[] = {1, 2, 3, 5, 1000, 1024, 1025, 65535};
    static const size_t got[] = {1, 2, 4, 8, 1024, 1024, 2048, 65536};
    struct rp_ring r;
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        assert_int_equal(rp_ring_init(&r, asked[i], 0), 0);
        assert_int_equal(rp_ring_capacity(&r), got[i]);
        assert_int_equal(r.max_capacity, got[i]);
        assert_int_equal(rp_ring_free_bytes(&r), got[i]);
        rp_ring_destroy(&r);
    }
    /* The max is rounded the same way: 100 allows 128. */
    uint8_t in[128] = {0};
    assert_int_equal(rp_ring_init(&r, 3, 100), 0);
    assert_int_equal(rp_ring_write(&r, in, 128), 0);
    assert_int_equal(rp_ring_capacity(&r), 128);
    rp_ring_destroy(&r);
}

static void ring_rejects_invalid_init_args(void **state)
{
    (void)state;
    struct rp_ring r;
    assert_int_equal(rp_ring_init(&r, 0, 0), -EINVAL);
    assert_int_equal(rp_ring_init(&r, 0, 64), -EINVAL);
    assert_int_equal(rp_ring_init(&r, RP_RING_MAX_CAPACITY + 1, 0), -EINVAL);
    assert_int_equal(rp_ring_init(&r, SIZE_MAX, 0), -EINVAL);
    assert_int_equal(rp_ring_init(&r, 64, RP_RING_MAX_CAPACITY + 1), -EINVAL);
    assert_int_equal(rp_ring_init(&r, 64, 32), -EINVAL); /* max < capacity */
    assert_null(r.data); /* failed init holds no memory */
    /* 33 rounds up to 64, so a max of 40 (rounded: 64) is fine. */
    assert_int_equal(rp_ring_init(&r, 33, 40), 0);
    rp_ring_destroy(&r);
    rp_ring_destroy(&r); /* harmless twice */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ring_refuses_write_past_capacity),
        cmocka_unit_test(ring_wraps_indices_past_uint32_max),
        cmocka_unit_test(ring_counts_stay_right_across_the_index_wrap),
        cmocka_unit_test(
            ring_iovec_views_cover_exactly_the_free_and_used_bytes_in_order),
        cmocka_unit_test(ring_offers_one_free_segment_once_drained),
        cmocka_unit_test(ring_consume_and_commit_refuse_more_than_there_is),
        cmocka_unit_test(ring_peek_reads_across_the_wrap_without_consuming),
        cmocka_unit_test(
            ring_contig_points_in_place_only_when_bytes_do_not_wrap),
        cmocka_unit_test(ring_growth_preserves_content),
        cmocka_unit_test(ring_growth_stops_at_the_cap),
        cmocka_unit_test(ring_rounds_capacity_up_to_a_power_of_two),
        cmocka_unit_test(ring_rejects_invalid_init_args),
        cmocka_unit_test(ring_matches_a_linear_model_over_random_operations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
