/*
 * rp_packet and rp_reader: typed round trips at the extremes, truncation at
 * every length, capacity limits, the wire header, reference counting across
 * threads, and the pools behind packets.
 */
#include "helpers.h"

#include <ringport/packet.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct rp_packet *make(size_t cap, uint16_t type)
{
    struct rp_packet *p = NULL;
    assert_int_equal(rp_packet_create(cap, type, &p), 0);
    assert_non_null(p);
    return p;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static uint64_t f64_bits(double f)
{
    uint64_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void every_type_round_trips_at_its_extremes(void **state)
{
    (void)state;
    static const float f32s[] = {0.0f,       -0.0f,     1.5f,
                                 -3.25e-38f, 1e-45f,    3.4028235e38f,
                                 INFINITY,   -INFINITY, NAN};
    static const double f64s[] = {
        0.0,      -0.0,      2.5, 4.9e-324, -1.7976931348623157e308,
        INFINITY, -INFINITY, NAN};
    struct rp_packet *p = make(1024, 7);

    assert_int_equal(rp_packet_put_u8(p, 0), 0);
    assert_int_equal(rp_packet_put_u8(p, UINT8_MAX), 0);
    assert_int_equal(rp_packet_put_u16(p, 0), 0);
    assert_int_equal(rp_packet_put_u16(p, UINT16_MAX), 0);
    assert_int_equal(rp_packet_put_u32(p, 0), 0);
    assert_int_equal(rp_packet_put_u32(p, UINT32_MAX), 0);
    assert_int_equal(rp_packet_put_u64(p, 0), 0);
    assert_int_equal(rp_packet_put_u64(p, UINT64_MAX), 0);
    assert_int_equal(rp_packet_put_i8(p, INT8_MIN), 0);
    assert_int_equal(rp_packet_put_i8(p, INT8_MAX), 0);
    assert_int_equal(rp_packet_put_i16(p, INT16_MIN), 0);
    assert_int_equal(rp_packet_put_i16(p, INT16_MAX), 0);
    assert_int_equal(rp_packet_put_i32(p, INT32_MIN), 0);
    assert_int_equal(rp_packet_put_i32(p, INT32_MAX), 0);
    assert_int_equal(rp_packet_put_i64(p, INT64_MIN), 0);
    assert_int_equal(rp_packet_put_i64(p, INT64_MAX), 0);
    assert_int_equal(rp_packet_put_i64(p, -1), 0);
    for (size_t i = 0; i < sizeof f32s / sizeof f32s[0]; i++)
        assert_int_equal(rp_packet_put_f32(p, f32s[i]), 0);
    for (size_t i = 0; i < sizeof f64s / sizeof f64s[0]; i++)
        assert_int_equal(rp_packet_put_f64(p, f64s[i]), 0);
    assert_int_equal(rp_packet_put_str(p, ""), 0);
    assert_int_equal(rp_packet_put_str(p, "héllo"), 0);
    assert_int_equal(rp_packet_put_strn(p, "a\0b", 3), 0);
    assert_int_equal(rp_packet_put_bytes(p, "\x01\x02\x03", 3), 0);
    assert_int_equal(rp_packet_put_bytes(p, NULL, 0), 0);
    assert_int_equal(rp_packet_put_blob(p, "\xff\x00", 2), 0);
    assert_int_equal(rp_packet_put_blob(p, NULL, 0), 0);
    assert_false(rp_packet_failed(p));

    struct rp_reader r;
    rp_packet_reader(p, &r);
    assert_int_equal(rp_reader_get_u8(&r), 0);
    assert_int_equal(rp_reader_get_u8(&r), UINT8_MAX);
    assert_int_equal(rp_reader_get_u16(&r), 0);
    assert_int_equal(rp_reader_get_u16(&r), UINT16_MAX);
    assert_int_equal(rp_reader_get_u32(&r), 0);
    assert_int_equal(rp_reader_get_u32(&r), UINT32_MAX);
    assert_true(rp_reader_get_u64(&r) == 0);
    assert_true(rp_reader_get_u64(&r) == UINT64_MAX);
    assert_int_equal(rp_reader_get_i8(&r), INT8_MIN);
    assert_int_equal(rp_reader_get_i8(&r), INT8_MAX);
    assert_int_equal(rp_reader_get_i16(&r), INT16_MIN);
    assert_int_equal(rp_reader_get_i16(&r), INT16_MAX);
    assert_int_equal(rp_reader_get_i32(&r), INT32_MIN);
    assert_int_equal(rp_reader_get_i32(&r), INT32_MAX);
    assert_true(rp_reader_get_i64(&r) == INT64_MIN);
    assert_true(rp_reader_get_i64(&r) == INT64_MAX);
    assert_true(rp_reader_get_i64(&r) == -1);
    /* Bits, not values: NaN != NaN and -0.0 == 0.0. */
    for (size_t i = 0; i < sizeof f32s / sizeof f32s[0]; i++)
        assert_int_equal(f32_bits(rp_reader_get_f32(&r)), f32_bits(f32s[i]));
    for (size_t i = 0; i < sizeof f64s / sizeof f64s[0]; i++)
        assert_true(f64_bits(rp_reader_get_f64(&r)) == f64_bits(f64s[i]));
    char buf[16];
    size_t n;
    assert_int_equal(rp_reader_get_str(&r, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(rp_reader_get_str(&r, buf, sizeof buf), strlen("héllo"));
    assert_string_equal(buf, "héllo");
    const char *sv = rp_reader_get_strv(&r, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(sv, "a\0b", 3);
    uint8_t raw[3];
    rp_reader_get_bytes(&r, raw, 3);
    assert_memory_equal(raw, "\x01\x02\x03", 3);
    const uint8_t *blob = rp_reader_get_blob(&r, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(blob, "\xff\x00", 2);
    blob = rp_reader_get_blob(&r, &n);
    assert_non_null(blob);
    assert_int_equal(n, 0);
    assert_false(rp_reader_failed(&r));
    assert_int_equal(rp_reader_remaining(&r), 0);
    rp_packet_unref(p);
}

static void integers_are_little_endian_on_the_wire(void **state)
{
    (void)state;
    struct rp_packet *p = make(64, 1);
    rp_packet_put_u16(p, 0x0102);
    rp_packet_put_u32(p, 0x03040506);
    rp_packet_put_u64(p, 0x0708090a0b0c0d0eull);
    rp_packet_put_i16(p, -2);
    rp_packet_put_f32(p, 1.0f); /* 0x3f800000 */
    rp_packet_put_str(p, "ab");
    static const uint8_t want[] = {
        0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09,
        0x08, 0x07, 0xfe, 0xff, 0x00, 0x00, 0x80, 0x3f, 0x02, 0x00, 'a',  'b'};
    assert_int_equal(rp_packet_size(p), sizeof want);
    assert_memory_equal(rp_packet_payload(p), want, sizeof want);
    rp_packet_unref(p);
}

static void longest_strings_round_trip(void **state)
{
    (void)state;
    /* The longest string a packet can carry: prefix + 65533 bytes. */
    size_t longest = RP_PACKET_MAX_PAYLOAD - 2;
    char *s = malloc(RP_PACKET_MAX_PAYLOAD + 2);
    assert_non_null(s);
    for (size_t i = 0; i < RP_PACKET_MAX_PAYLOAD + 1; i++)
        s[i] = (char)('a' + i % 26);
    struct rp_packet *p = make(RP_PACKET_MAX_PAYLOAD, 2);
    assert_int_equal(rp_packet_put_strn(p, s, longest), 0);
    assert_int_equal(rp_packet_size(p), RP_PACKET_MAX_PAYLOAD);
    struct rp_reader r;
    rp_packet_reader(p, &r);
    size_t n;
    const char *v = rp_reader_get_strv(&r, &n);
    assert_int_equal(n, longest);
    assert_memory_equal(v, s, longest);
    assert_false(rp_reader_failed(&r));
    rp_packet_unref(p);

    /* The longest the encoding allows, read from a plain span. */
    uint8_t *span = malloc(2 + 65535);
    assert_non_null(span);
    span[0] = 0xff;
    span[1] = 0xff;
    memcpy(span + 2, s, 65535);
    rp_reader_init(&r, span, 2 + 65535);
    char *out = malloc(65536);
    assert_non_null(out);
    assert_int_equal(rp_reader_get_str(&r, out, 65536), 65535);
    assert_memory_equal(out, s, 65535);
    assert_int_equal(out[65535], '\0');
    assert_false(rp_reader_failed(&r));

    /* One byte more cannot be encoded at all. */
    p = make(16, 2);
    assert_int_equal(rp_packet_put_strn(p, s, 65536), -EMSGSIZE);
    assert_true(rp_packet_failed(p));
    assert_int_equal(rp_packet_size(p), 0);
    rp_packet_unref(p);
    free(out);
    free(span);
    free(s);
}

static void string_read_reports_truncation_and_keeps_the_stream(void **state)
{
    (void)state;
    struct rp_packet *p = make(64, 3);
    rp_packet_put_str(p, "hello");
    rp_packet_put_u8(p, 42);
    rp_packet_put_str(p, "xyz");
    rp_packet_put_u8(p, 43);
    struct rp_reader r;
    rp_packet_reader(p, &r);
    char buf[4];
    assert_int_equal(rp_reader_get_str(&r, buf, sizeof buf), 5); /* >= cap */
    assert_string_equal(buf, "hel");
    assert_int_equal(rp_reader_get_u8(&r), 42);
    assert_int_equal(rp_reader_get_str(&r, NULL, 0), 3);
    assert_int_equal(rp_reader_get_u8(&r), 43);
    assert_false(rp_reader_failed(&r));
    rp_packet_unref(p);
}

/* One value of every kind; the truncation test reads them all back. */
static void put_everything(struct rp_packet *p)
{
    rp_packet_put_u8(p, 0xa1);
    rp_packet_put_u16(p, 0xb2b3);
    rp_packet_put_u32(p, 0xc4c5c6c7);
    rp_packet_put_u64(p, 0xd8d9dadbdcdddedfull);
    rp_packet_put_i8(p, -5);
    rp_packet_put_i16(p, -300);
    rp_packet_put_i32(p, -70000);
    rp_packet_put_i64(p, -5000000000ll);
    rp_packet_put_f32(p, 0.5f);
    rp_packet_put_f64(p, -0.25);
    rp_packet_put_str(p, "name");
    rp_packet_put_str(p, "");
    rp_packet_put_bytes(p, "RAW", 3);
    rp_packet_put_blob(p, "blob!", 5);
}

/*
 * Reads what put_everything wrote from a copy cut to 'cut' bytes. After each
 * read the flag must be up exactly when that read ends past the cut (where
 * each value ends in the whole payload is known), and a value read without
 * failing must be right, one read with failure zero.
 */
static void get_everything(struct rp_reader *r, size_t cut)
{
    size_t end = 0;
#define CHECK(expr, size, want)                                                \
    do {                                                                       \
        uint64_t got = (uint64_t)(expr);                                       \
        end += (size);                                                         \
        assert_int_equal(rp_reader_failed(r), end > cut);                      \
        assert_true(end > cut ? got == 0 : got == (uint64_t)(want));           \
    } while (0)
    CHECK(rp_reader_get_u8(r), 1, 0xa1);
    CHECK(rp_reader_get_u16(r), 2, 0xb2b3);
    CHECK(rp_reader_get_u32(r), 4, 0xc4c5c6c7);
    CHECK(rp_reader_get_u64(r), 8, 0xd8d9dadbdcdddedfull);
    CHECK(rp_reader_get_i8(r), 1, -5);
    CHECK(rp_reader_get_i16(r), 2, -300);
    CHECK(rp_reader_get_i32(r), 4, -70000);
    CHECK(rp_reader_get_i64(r), 8, -5000000000ll);
    CHECK(rp_reader_get_f32(r) * 4, 4, 2);
    CHECK(rp_reader_get_f64(r) * -4, 8, 1);
    char buf[8];
    CHECK(rp_reader_get_str(r, buf, sizeof buf), 2 + 4, 4);
    assert_string_equal(buf, end > cut ? "" : "name");
    CHECK(rp_reader_get_str(r, buf, sizeof buf), 2, 0);
    assert_string_equal(buf, "");
    uint8_t raw[3];
    rp_reader_get_bytes(r, raw, 3);
    CHECK(0, 3, 0);
    assert_memory_equal(raw, end > cut ? "\0\0\0" : "RAW", 3);
    size_t n;
    const uint8_t *b = rp_reader_get_blob(r, &n);
    CHECK(n, 2 + 5, 5);
    assert_non_null(b);
    assert_true(end > cut || memcmp(b, "blob!", 5) == 0);
#undef CHECK
}

static void every_truncated_read_sets_the_flag(void **state)
{
    (void)state;
    struct rp_packet *p = make(256, 4);
    put_everything(p);
    size_t size = rp_packet_size(p);
    const uint8_t *payload = rp_packet_payload(p);
    /* A private copy of each prefix, so ASan catches any byte read past
       the cut. */
    for (size_t cut = 0; cut <= size; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, payload, cut);
        struct rp_reader r;
        rp_reader_init(&r, copy, cut);
        get_everything(&r, cut);
        assert_int_equal(rp_reader_failed(&r), cut < size);
        assert_int_equal(rp_reader_remaining(&r), 0);
        free(copy);
    }
    rp_packet_unref(p);

    /* The empty span, even a NULL one, reads as zeros. */
    struct rp_reader r;
    rp_reader_init(&r, NULL, 0);
    assert_int_equal(rp_reader_get_u32(&r), 0);
    assert_null(rp_reader_view_bytes(&r, 1));
    assert_true(rp_reader_failed(&r));
}

static void failed_reader_stays_failed(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {1, 2, 3};
    struct rp_reader r;
    rp_reader_init(&r, bytes, sizeof bytes);
    assert_int_equal(rp_reader_get_u32(&r), 0); /* 3 bytes left: fails */
    assert_true(rp_reader_failed(&r));
    /* The bytes that were there are not handed out afterwards. */
    assert_int_equal(rp_reader_get_u8(&r), 0);
    assert_int_equal(rp_reader_remaining(&r), 0);
    assert_true(rp_reader_failed(&r));
}

static void put_past_capacity_fails_and_flags(void **state)
{
    (void)state;
    struct rp_packet *p = make(7, 5);
    assert_int_equal(rp_packet_put_u32(p, 1), 0);
    assert_int_equal(rp_packet_put_u32(p, 2), -ENOBUFS);
    assert_true(rp_packet_failed(p));
    assert_int_equal(rp_packet_size(p), 4);
    /* Sticky: a later value that would fit is refused too, so no field
       lands after a missing one. */
    assert_int_equal(rp_packet_put_u8(p, 3), -ENOBUFS);
    assert_int_equal(rp_packet_size(p), 4);
    size_t len;
    const uint8_t *w = rp_packet_wire(p, &len);
    assert_int_equal(len, 8);
    assert_int_equal(w[0], 4);
    rp_packet_unref(p);

    /* A length-prefixed run is all or nothing. */
    p = make(5, 5);
    assert_int_equal(rp_packet_put_blob(p, "abcd", 4), -ENOBUFS);
    assert_int_equal(rp_packet_size(p), 0);
    rp_packet_unref(p);

    p = make(0, 5);
    assert_int_equal(rp_packet_put_u8(p, 1), -ENOBUFS);
    assert_true(rp_packet_failed(p));
    rp_packet_unref(p);

    struct rp_packet *none = NULL;
    assert_int_equal(rp_packet_create(RP_PACKET_MAX_PAYLOAD + 1, 1, &none),
                     -EMSGSIZE);
    assert_null(none);
}

static void wire_view_has_the_header_bytes(void **state)
{
    (void)state;
    struct rp_packet *p = make(300, 0x1234);
    size_t len;
    const uint8_t *w = rp_packet_wire(p, &len);
    static const uint8_t empty_hdr[] = {0x00, 0x00, 0x34, 0x12};
    assert_int_equal(len, 4);
    assert_memory_equal(w, empty_hdr, 4);

    for (int i = 0; i < 260; i++)
        rp_packet_put_u8(p, (uint8_t)i);
    rp_packet_set_type(p, 0xbeef);
    w = rp_packet_wire(p, &len);
    static const uint8_t hdr[] = {0x04, 0x01, 0xef, 0xbe}; /* 260 = 0x104 */
    assert_int_equal(len, 264);
    assert_memory_equal(w, hdr, 4);
    assert_ptr_equal(w + 4, rp_packet_payload(p));
    assert_int_equal(w[4 + 259], 259 & 0xff);
    assert_int_equal(rp_packet_type(p), 0xbeef);
    assert_int_equal(rp_packet_capacity(p), 300);
    rp_packet_unref(p);
}

static void last_unref_frees_exactly_once(void **state)
{
    (void)state;
    struct rp_packet_pool_stats before, after;
    rp_packet_pool_stats(&before);
    struct rp_packet *p = make(100, 6);
    for (int i = 0; i < 9; i++)
        assert_ptr_equal(rp_packet_ref(p), p);
    for (int i = 0; i < 9; i++)
        rp_packet_unref(p);
    rp_packet_pool_stats(&after);
    assert_true(after.created == before.created + 1);
    assert_true(after.freed == before.freed);
    rp_packet_unref(p);
    rp_packet_pool_stats(&after);
    assert_true(after.freed == before.freed + 1);
    assert_int_equal(after.classes[0].in_use, before.classes[0].in_use);
    rp_packet_unref(NULL);
}

#define SHARE_THREADS 4
#define SHARE_PACKETS 2000

struct share_arg {
    struct rp_packet **pkts;
    uint64_t sum;
};

/* Each thread holds one reference to every packet: it reads the packet,
   takes and drops a few extra references, then drops its own. */
static void *share_worker(void *argp)
{
    struct share_arg *arg = argp;
    for (int i = 0; i < SHARE_PACKETS; i++) {
        struct rp_packet *p = arg->pkts[i];
        for (int k = 0; k < 3; k++)
            rp_packet_ref(p);
        size_t len;
        const uint8_t *w = rp_packet_wire(p, &len);
        arg->sum += len + w[4];
        for (int k = 0; k < 3; k++)
            rp_packet_unref(p);
        rp_packet_unref(p);
    }
    return NULL;
}

static void refs_shared_across_threads_free_once(void **state)
{
    (void)state;
    struct rp_packet_pool_stats before, after;
    rp_packet_pool_stats(&before);
    struct rp_packet **pkts = calloc(SHARE_PACKETS, sizeof *pkts);
    assert_non_null(pkts);
    for (int i = 0; i < SHARE_PACKETS; i++) {
        /* Cover every size class, not just the small one. */
        size_t cap = i % 50 == 0 ? 20000 : i % 10 == 0 ? 1000 : 16;
        pkts[i] = make(cap, 9);
        rp_packet_put_u32(pkts[i], (uint32_t)i);
        for (int t = 0; t < SHARE_THREADS; t++)
            rp_packet_ref(pkts[i]); /* one per thread, taken here */
    }
    pthread_t th[SHARE_THREADS];
    struct share_arg args[SHARE_THREADS];
    for (int t = 0; t < SHARE_THREADS; t++) {
        args[t] = (struct share_arg){.pkts = pkts};
        assert_int_equal(pthread_create(&th[t], NULL, share_worker, &args[t]),
                         0);
    }
    /* The creator drops its own references while the threads run. */
    for (int i = 0; i < SHARE_PACKETS; i++)
        rp_packet_unref(pkts[i]);
    for (int t = 0; t < SHARE_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_true(args[t].sum > 0);
    }
    rp_packet_pool_stats(&after);
    assert_true(after.created - before.created == SHARE_PACKETS);
    assert_true(after.freed - before.freed == SHARE_PACKETS);
    for (int c = 0; c < RP_PACKET_POOL_CLASSES; c++)
        assert_int_equal(after.classes[c].in_use, before.classes[c].in_use);
    free(pkts);
}

static void packets_come_from_size_classes_then_the_heap(void **state)
{
    (void)state;
    static const size_t caps[RP_PACKET_POOL_CLASSES] = {0, 257, 2049,
                                                        RP_PACKET_MAX_PAYLOAD};
    struct rp_packet_pool_stats before, during;
    rp_packet_pool_stats(&before);
    struct rp_packet *p[RP_PACKET_POOL_CLASSES];
    for (int c = 0; c < RP_PACKET_POOL_CLASSES; c++)
        p[c] = make(caps[c], 1);
    rp_packet_pool_stats(&during);
    for (int c = 0; c < RP_PACKET_POOL_CLASSES; c++) {
        assert_int_equal(during.classes[c].in_use,
                         before.classes[c].in_use + 1);
        assert_true(during.classes[c].max_payload >= caps[c]);
        assert_true(during.classes[c].capacity >= 1);
        rp_packet_unref(p[c]);
    }

    /* Past the largest pool's cap, packets still come, from malloc. */
    enum { MANY = 300 };
    struct rp_packet **big = calloc(MANY, sizeof *big);
    assert_non_null(big);
    for (int i = 0; i < MANY; i++)
        big[i] = make(RP_PACKET_MAX_PAYLOAD, 1);
    rp_packet_pool_stats(&during);
    assert_true(during.heap_allocs > before.heap_allocs);
    assert_true(during.heap_in_use > 0);
    assert_true(during.classes[3].fails > before.classes[3].fails);
    for (int i = 0; i < MANY; i++)
        rp_packet_unref(big[i]);
    free(big);
    rp_packet_pool_stats(&during);
    assert_int_equal(during.heap_in_use, before.heap_in_use);
}

static void pools_shut_down_only_when_idle_and_come_back(void **state)
{
    (void)state;
    struct rp_packet *p = make(10, 1);
    assert_int_equal(rp_packet_pools_shutdown(), -EBUSY);
    rp_packet_unref(p);
    assert_int_equal(rp_packet_pools_shutdown(), 0);
    struct rp_packet_pool_stats st;
    rp_packet_pool_stats(&st);
    assert_int_equal(st.classes[0].capacity, 0);
    p = make(10, 1);
    assert_int_equal(rp_packet_put_u8(p, 1), 0);
    rp_packet_unref(p);
    assert_int_equal(rp_packet_pools_shutdown(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_type_round_trips_at_its_extremes),
        cmocka_unit_test(integers_are_little_endian_on_the_wire),
        cmocka_unit_test(longest_strings_round_trip),
        cmocka_unit_test(string_read_reports_truncation_and_keeps_the_stream),
        cmocka_unit_test(every_truncated_read_sets_the_flag),
        cmocka_unit_test(failed_reader_stays_failed),
        cmocka_unit_test(put_past_capacity_fails_and_flags),
        cmocka_unit_test(wire_view_has_the_header_bytes),
        cmocka_unit_test(last_unref_frees_exactly_once),
        cmocka_unit_test(refs_shared_across_threads_free_once),
        cmocka_unit_test(packets_come_from_size_classes_then_the_heap),
        cmocka_unit_test(pools_shut_down_only_when_idle_and_come_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
