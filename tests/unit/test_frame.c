/*
 * Framing: the stateless parser's answers and errors, and the streaming
 * decoder fed one stream split at every point and at random points, which
 * must always yield the same packets while copying only frames cut by a
 * split.
 */
#include "helpers.h"

#include "proto/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NPKT 48

/* A stream of random frames, with where each one starts. */
struct stream {
    uint8_t *bytes;
    size_t len;
    size_t start[NPKT + 1]; /* start[NPKT] == len */
    uint16_t type[NPKT];
};

static void stream_make(struct stream *s, uint64_t *rng, uint32_t max)
{
    size_t lens[NPKT];
    s->len = 0;
    for (int i = 0; i < NPKT; i++) {
        /* Mostly small, as game traffic is; always one empty and one of
           the largest size allowed. */
        if (i == 3)
            lens[i] = 0;
        else if (i == 17)
            lens[i] = max;
        else if (t_rand(rng) % 8 == 0)
            lens[i] = t_rand_range(rng, 0, max);
        else
            lens[i] = t_rand_range(rng, 0, 40);
        s->len += 4 + lens[i];
    }
    s->bytes = malloc(s->len);
    assert_non_null(s->bytes);
    size_t at = 0;
    for (int i = 0; i < NPKT; i++) {
        s->start[i] = at;
        s->type[i] = (uint16_t)t_rand(rng);
        uint8_t *h = s->bytes + at;
        h[0] = (uint8_t)lens[i];
        h[1] = (uint8_t)(lens[i] >> 8);
        h[2] = (uint8_t)s->type[i];
        h[3] = (uint8_t)(s->type[i] >> 8);
        for (size_t k = 0; k < lens[i]; k++)
            h[4 + k] = (uint8_t)t_rand(rng);
        at += 4 + lens[i];
    }
    s->start[NPKT] = at;
}

/* The callback checks each delivered frame against the stream in order. */
struct expect {
    const struct stream *s;
    int next;
};

static int check_frame(void *user, const struct rp_frame *f)
{
    struct expect *e = user;
    assert_true(e->next < NPKT);
    const struct stream *s = e->s;
    size_t at = s->start[e->next];
    size_t len = s->start[e->next + 1] - at - 4;
    assert_int_equal(f->type, s->type[e->next]);
    assert_int_equal(f->len, len);
    assert_non_null(f->payload);
    assert_memory_equal(f->payload, s->bytes + at + 4, len);
    e->next++;
    return 0;
}

/* Bytes of the frames that some cut falls strictly inside: exactly what
   the decoder has to copy. */
static size_t cut_frame_bytes(const struct stream *s, const size_t *cuts,
                              int ncuts)
{
    size_t total = 0;
    for (int i = 0; i < NPKT; i++)
        for (int c = 0; c < ncuts; c++)
            if (cuts[c] > s->start[i] && cuts[c] < s->start[i + 1]) {
                total += s->start[i + 1] - s->start[i];
                break;
            }
    return total;
}

/* Feeds the stream in pieces ending at the sorted 'cuts', then the rest. */
static void feed_split(const struct stream *s, const size_t *cuts, int ncuts,
                       const struct rp_frame_limits *lim)
{
    struct rp_frame_decoder d;
    assert_int_equal(rp_frame_decoder_init(&d, lim), 0);
    struct expect e = {.s = s};
    size_t at = 0;
    int frames = 0;
    for (int c = 0; c <= ncuts; c++) {
        size_t to = c < ncuts ? cuts[c] : s->len;
        int rc =
            rp_frame_decoder_feed(&d, s->bytes + at, to - at, check_frame, &e);
        assert_true(rc >= 0);
        frames += rc;
        at = to;
    }
    assert_int_equal(e.next, NPKT);
    assert_int_equal(frames, NPKT);
    assert_int_equal(rp_frame_decoder_pending(&d), 0);
    assert_true(d.copied == cut_frame_bytes(s, cuts, ncuts));
    assert_true(d.cap <= 4 + rp_frame_max_payload(lim));
    rp_frame_decoder_destroy(&d);
}

static void split_at_every_point_yields_the_same_packets(void **state)
{
    (void)state;
    uint64_t rng = t_seed();
    struct rp_frame_limits lim = {.max_payload = 3000};
    struct stream s;
    stream_make(&s, &rng, 3000);
    feed_split(&s, NULL, 0, &lim);
    for (size_t cut = 0; cut <= s.len; cut++)
        feed_split(&s, &cut, 1, &lim);
    free(s.bytes);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static void random_multi_point_splits_yield_the_same_packets(void **state)
{
    (void)state;
    uint64_t rng = t_seed() ^ 0x5bd1e995;
    for (int round = 0; round < 300; round++) {
        struct rp_frame_limits lim = {0}; /* default limit, 8192 */
        uint32_t max = RP_PACKET_DEFAULT_MAX_PAYLOAD;
        if (round % 3 == 1) {
            max = RP_PACKET_MAX_PAYLOAD;
            lim.max_payload = max;
        }
        struct stream s;
        stream_make(&s, &rng, max);
        size_t cuts[64];
        int ncuts = (int)t_rand_range(&rng, 1, 64);
        for (int c = 0; c < ncuts; c++)
            cuts[c] = t_rand_range(&rng, 0, s.len);
        qsort(cuts, (size_t)ncuts, sizeof cuts[0], cmp_size);
        feed_split(&s, cuts, ncuts, &lim);
        free(s.bytes);
    }
}

static void byte_at_a_time_yields_the_same_packets(void **state)
{
    (void)state;
    uint64_t rng = t_seed() ^ 0x1234;
    struct rp_frame_limits lim = {.max_payload = 500};
    struct stream s;
    stream_make(&s, &rng, 500);
    size_t *cuts = malloc(s.len * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < s.len; i++)
        cuts[i] = i + 1;
    feed_split(&s, cuts, (int)s.len, &lim);
    free(cuts);
    free(s.bytes);
}

static void put_header(uint8_t *h, uint16_t len, uint16_t type)
{
    h[0] = (uint8_t)len;
    h[1] = (uint8_t)(len >> 8);
    h[2] = (uint8_t)type;
    h[3] = (uint8_t)(type >> 8);
}

static void parser_finds_one_whole_frame(void **state)
{
    (void)state;
    uint8_t buf[16] = {0};
    put_header(buf, 3, 0x0102);
    memcpy(buf + 4, "abc", 3);
    put_header(buf + 7, 0, 9);
    struct rp_frame_limits lim = {0};
    struct rp_frame f;
    assert_int_equal(rp_frame_parse(buf, 11, &lim, &f), 7);
    assert_int_equal(f.type, 0x0102);
    assert_int_equal(f.len, 3);
    assert_ptr_equal(f.payload, buf + 4);
    /* An empty payload is allowed by default and is a whole frame. */
    assert_int_equal(rp_frame_parse(buf + 7, 4, &lim, &f), 4);
    assert_int_equal(f.len, 0);
    assert_int_equal(f.type, 9);
    /* One payload byte short: need more. */
    assert_int_equal(rp_frame_parse(buf, 6, &lim, &f), 0);
}

static void truncated_header_alone_needs_more(void **state)
{
    (void)state;
    /* Even bytes that will make an oversized header wait for all four. */
    static const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff};
    struct rp_frame_limits lim = {0};
    struct rp_frame f;
    for (size_t n = 0; n < 4; n++)
        assert_int_equal(rp_frame_parse(bad, n, &lim, &f), 0);
    assert_int_equal(rp_frame_parse(NULL, 0, &lim, &f), 0);

    struct rp_frame_decoder d;
    assert_int_equal(rp_frame_decoder_init(&d, &lim), 0);
    struct expect e = {0};
    assert_int_equal(rp_frame_decoder_feed(&d, bad, 3, check_frame, &e), 0);
    assert_int_equal(rp_frame_decoder_pending(&d), 3);
    assert_int_equal(rp_frame_decoder_feed(&d, bad + 3, 1, check_frame, &e),
                     -EMSGSIZE);
    rp_frame_decoder_destroy(&d);
}

static void oversized_frames_are_refused_at_the_header(void **state)
{
    (void)state;
    uint8_t h[4];
    struct rp_frame f;
    struct rp_frame_limits lim = {.max_payload = 100};
    put_header(h, 100, 1);
    assert_int_equal(rp_frame_parse(h, 4, &lim, &f), 0); /* at max: fine */
    put_header(h, 101, 1);
    assert_int_equal(rp_frame_parse(h, 4, &lim, &f), -EMSGSIZE);
    put_header(h, 65535, 1);
    struct rp_frame_limits dflt = {0};
    assert_int_equal(rp_frame_parse(h, 4, &dflt, &f), -EMSGSIZE);
    put_header(h, 8193, 1);
    assert_int_equal(rp_frame_parse(h, 4, &dflt, &f), -EMSGSIZE);
    put_header(h, 8192, 1);
    assert_int_equal(rp_frame_parse(h, 4, &dflt, &f), 0);
    /* With the largest limit every length is legal. */
    struct rp_frame_limits full = {.max_payload = 65535};
    put_header(h, 65535, 1);
    assert_int_equal(rp_frame_parse(h, 4, &full, &f), 0);
}

static void malformed_headers_give_ebadmsg(void **state)
{
    (void)state;
    uint8_t h[8] = {0};
    struct rp_frame f;
    struct rp_frame_limits no_empty = {.reject_empty = true};
    put_header(h, 0, 1);
    assert_int_equal(rp_frame_parse(h, 4, &no_empty, &f), -EBADMSG);
    put_header(h, 1, 1);
    assert_int_equal(rp_frame_parse(h, 5, &no_empty, &f), 5);

    struct rp_frame_limits types = {.type_min = 10, .type_max = 20};
    put_header(h, 1, 9);
    assert_int_equal(rp_frame_parse(h, 5, &types, &f), -EBADMSG);
    put_header(h, 1, 21);
    assert_int_equal(rp_frame_parse(h, 5, &types, &f), -EBADMSG);
    put_header(h, 1, 10);
    assert_int_equal(rp_frame_parse(h, 5, &types, &f), 5);
    put_header(h, 1, 20);
    assert_int_equal(rp_frame_parse(h, 5, &types, &f), 5);

    struct rp_frame_decoder d;
    struct rp_frame_limits bad = {.max_payload = 65536};
    assert_int_equal(rp_frame_decoder_init(&d, &bad), -EINVAL);
    bad = (struct rp_frame_limits){.type_min = 5, .type_max = 4};
    assert_int_equal(rp_frame_decoder_init(&d, &bad), -EINVAL);
}

static int count_frame(void *user, const struct rp_frame *f)
{
    (void)f;
    (*(int *)user)++;
    return 0;
}

static void decoder_error_is_sticky(void **state)
{
    (void)state;
    uint8_t buf[32] = {0};
    put_header(buf, 2, 1);      /* good frame: 6 bytes */
    put_header(buf + 6, 0, 1);  /* refused: empty */
    put_header(buf + 10, 1, 1); /* never reached */
    struct rp_frame_limits lim = {.reject_empty = true};
    struct rp_frame_decoder d;
    assert_int_equal(rp_frame_decoder_init(&d, &lim), 0);
    int n = 0;
    assert_int_equal(rp_frame_decoder_feed(&d, buf, 15, count_frame, &n),
                     -EBADMSG);
    assert_int_equal(n, 1);
    /* A good frame afterwards changes nothing. */
    assert_int_equal(rp_frame_decoder_feed(&d, buf, 6, count_frame, &n),
                     -EBADMSG);
    assert_int_equal(n, 1);
    rp_frame_decoder_destroy(&d);
}

static int stop_at_second(void *user, const struct rp_frame *f)
{
    (void)f;
    return ++*(int *)user == 2 ? -ECANCELED : 0;
}

static void callback_error_stops_and_sticks(void **state)
{
    (void)state;
    uint8_t buf[12] = {0};
    for (int i = 0; i < 3; i++)
        put_header(buf + 4 * i, 0, 1);
    struct rp_frame_limits lim = {0};
    struct rp_frame_decoder d;
    assert_int_equal(rp_frame_decoder_init(&d, &lim), 0);
    int n = 0;
    assert_int_equal(rp_frame_decoder_feed(&d, buf, 12, stop_at_second, &n),
                     -ECANCELED);
    assert_int_equal(n, 2);
    assert_int_equal(rp_frame_decoder_feed(&d, buf, 4, stop_at_second, &n),
                     -ECANCELED);
    assert_int_equal(n, 2);
    rp_frame_decoder_destroy(&d);
}

static void decoder_copies_only_the_partial_tail(void **state)
{
    (void)state;
    /* Three whole frames (10 + 4 + 20 bytes), then 7 of a 24-byte frame. */
    uint8_t buf[64] = {0};
    put_header(buf, 6, 1);
    put_header(buf + 10, 0, 2);
    put_header(buf + 14, 16, 3);
    put_header(buf + 34, 20, 4);
    for (int i = 38; i < 58; i++)
        buf[i] = (uint8_t)i;
    struct rp_frame_limits lim = {0};
    struct rp_frame_decoder d;
    assert_int_equal(rp_frame_decoder_init(&d, &lim), 0);
    int n = 0;

    /* Whole frames only: nothing copied, nothing even allocated. */
    assert_int_equal(rp_frame_decoder_feed(&d, buf, 34, count_frame, &n), 3);
    assert_true(d.copied == 0);
    assert_null(d.partial);

    assert_int_equal(rp_frame_decoder_feed(&d, buf + 34, 7, count_frame, &n),
                     0);
    assert_true(d.copied == 7);
    assert_int_equal(rp_frame_decoder_pending(&d), 7);
    /* Completing it copies just the 17 bytes it lacked; the whole frame
       after it in the same chunk is parsed in place. */
    uint8_t rest[17 + 4];
    memcpy(rest, buf + 41, 17);
    put_header(rest + 17, 0, 5);
    assert_int_equal(rp_frame_decoder_feed(&d, rest, 21, count_frame, &n), 2);
    assert_true(d.copied == 24);
    assert_int_equal(rp_frame_decoder_pending(&d), 0);
    assert_int_equal(n, 5);

    /* Idle: the buffer can be given back, and comes again when needed. */
    assert_non_null(d.partial);
    rp_frame_decoder_trim(&d);
    assert_null(d.partial);
    assert_int_equal(rp_frame_decoder_feed(&d, buf, 3, count_frame, &n), 0);
    rp_frame_decoder_trim(&d); /* holds 3 bytes: kept */
    assert_non_null(d.partial);
    assert_int_equal(rp_frame_decoder_feed(&d, buf + 3, 7, count_frame, &n), 1);
    assert_int_equal(n, 6);
    rp_frame_decoder_destroy(&d);
}

/* The session's pattern: every frame cut in two, the decoder trimmed as
   soon as it is between frames. The buffer goes to the thread's cache
   and comes back: one malloc in all, not one per split frame. */
static void split_frames_reuse_the_threads_buffer(void **state)
{
    (void)state;
    uint8_t frame[4 + 60];
    put_header(frame, 60, 7);
    for (int i = 4; i < (int)sizeof frame; i++)
        frame[i] = (uint8_t)i;
    struct rp_frame_limits lim = {0};
    struct rp_frame_decoder d;
    assert_int_equal(rp_frame_decoder_init(&d, &lim), 0);
    int n = 0;
    for (int i = 0; i < 1000; i++) {
        size_t cut = 1 + (size_t)i % (sizeof frame - 1);
        assert_int_equal(rp_frame_decoder_feed(&d, frame, cut, count_frame, &n),
                         0);
        assert_int_equal(rp_frame_decoder_feed(&d, frame + cut,
                                               sizeof frame - cut, count_frame,
                                               &n),
                         1);
        rp_frame_decoder_trim(&d);
        assert_null(d.partial); /* an idle decoder still holds nothing */
    }
    assert_int_equal(n, 1000);
    assert_true(d.allocs <= 1);
    /* A second decoder on the thread takes the same cached buffer. */
    struct rp_frame_decoder d2;
    assert_int_equal(rp_frame_decoder_init(&d2, &lim), 0);
    assert_int_equal(rp_frame_decoder_feed(&d2, frame, 5, count_frame, &n), 0);
    assert_int_equal(d2.allocs, 0);
    rp_frame_decoder_destroy(&d2);
    rp_frame_decoder_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_at_every_point_yields_the_same_packets),
        cmocka_unit_test(random_multi_point_splits_yield_the_same_packets),
        cmocka_unit_test(byte_at_a_time_yields_the_same_packets),
        cmocka_unit_test(parser_finds_one_whole_frame),
        cmocka_unit_test(truncated_header_alone_needs_more),
        cmocka_unit_test(oversized_frames_are_refused_at_the_header),
        cmocka_unit_test(malformed_headers_give_ebadmsg),
        cmocka_unit_test(decoder_error_is_sticky),
        cmocka_unit_test(callback_error_stops_and_sticks),
        cmocka_unit_test(decoder_copies_only_the_partial_tail),
        cmocka_unit_test(split_frames_reuse_the_threads_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
