/*
 * Fuzz target for rp_reader and rp_packet. The input's first byte says how
 * many typed reads to make, the next bytes name them, and the rest is the
 * span they read. A simple model of the format tracks how many bytes each
 * read needs; the reader's failure flag must rise exactly when the model
 * runs out of bytes, and stay up. Every value read without failure is
 * written back into a packet, which must then hold exactly the bytes that
 * were consumed: get and put agree on the encoding. Any disagreement aborts.
 *
 * Op byte: low 4 bits pick the read (see the switch); high 4 bits give a
 * size for the reads that take one (byte count, string buffer capacity).
 */
#include <ringport/packet.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

enum {
    OP_U8,
    OP_U16,
    OP_U32,
    OP_U64,
    OP_I8,
    OP_I16,
    OP_I32,
    OP_I64,
    OP_F32,
    OP_F64,
    OP_STR,
    OP_STRV,
    OP_BYTES,
    OP_VIEW,
    OP_BLOB,
    OP_COUNT
};

static const size_t fixed_size[] = {1, 2, 4, 8, 1, 2, 4, 8, 4, 8};

/* Bytes the read 'op' needs at span[off, len), or SIZE_MAX if it cannot
   even learn its length. */
static size_t model_need(int op, unsigned arg, const uint8_t *span, size_t off,
                         size_t len)
{
    if (op < OP_STR)
        return fixed_size[op];
    if (op == OP_BYTES || op == OP_VIEW)
        return arg;
    if (len - off < 2)
        return SIZE_MAX;
    return 2 + (size_t)(span[off] | span[off + 1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nops = data[0] % 65;
    data++;
    size--;
    if (nops > size)
        nops = size;
    const uint8_t *ops = data;
    const uint8_t *span = data + nops;
    size_t len = size - nops;
    if (len > RP_PACKET_MAX_PAYLOAD)
        len = RP_PACKET_MAX_PAYLOAD;

    struct rp_packet *pkt;
    CHECK(rp_packet_create(len, 1, &pkt) == 0);
    struct rp_reader r;
    rp_reader_init(&r, span, len);
    size_t off = 0; /* the model's read position */
    int failed = 0;

    for (size_t i = 0; i < nops; i++) {
        int op = ops[i] % OP_COUNT;
        unsigned arg = ops[i] >> 4;
        size_t need = failed ? SIZE_MAX : model_need(op, arg, span, off, len);
        int fits = need <= len - off;
        const uint8_t *at = span + off;
        char buf[16];
        size_t n = 0;
        const uint8_t *v = NULL;

        switch (op) {
        case OP_U8: {
            uint8_t x = rp_reader_get_u8(&r);
            CHECK(fits || x == 0);
            if (fits)
                rp_packet_put_u8(pkt, x);
            break;
        }
        case OP_U16: {
            uint16_t x = rp_reader_get_u16(&r);
            CHECK(fits || x == 0);
            if (fits)
                rp_packet_put_u16(pkt, x);
            break;
        }
        case OP_U32: {
            uint32_t x = rp_reader_get_u32(&r);
            CHECK(fits || x == 0);
            if (fits)
                rp_packet_put_u32(pkt, x);
            break;
        }
        case OP_U64: {
            uint64_t x = rp_reader_get_u64(&r);
            CHECK(fits || x == 0);
            if (fits)
                rp_packet_put_u64(pkt, x);
            break;
        }
        case OP_I8: {
            int8_t x = rp_reader_get_i8(&r);
            CHECK(fits || x == 0);
            if (fits)
                rp_packet_put_i8(pkt, x);
            break;
        }
        case OP_I16: {
            int16_t x = rp_reader_get_i16(&r);
            CHECK(fits || x == 0);
            if (fits)
                rp_packet_put_i16(pkt, x);
            break;
        }
        case OP_I32: {
            int32_t x = rp_reader_get_i32(&r);
            CHECK(fits || x == 0);
            if (fits)
                rp_packet_put_i32(pkt, x);
            break;
        }
        case OP_I64: {
            int64_t x = rp_reader_get_i64(&r);
            CHECK(fits || x == 0);
            if (fits)
                rp_packet_put_i64(pkt, x);
            break;
        }
        case OP_F32: {
            float x = rp_reader_get_f32(&r);
            uint32_t bits;
            memcpy(&bits, &x, sizeof bits);
            CHECK(fits || bits == 0);
            if (fits)
                rp_packet_put_f32(pkt, x);
            break;
        }
        case OP_F64: {
            double x = rp_reader_get_f64(&r);
            uint64_t bits;
            memcpy(&bits, &x, sizeof bits);
            CHECK(fits || bits == 0);
            if (fits)
                rp_packet_put_f64(pkt, x);
            break;
        }
        case OP_STR: {
            size_t cap = arg; /* 0..15: truncation is common */
            n = rp_reader_get_str(&r, cap ? buf : NULL, cap);
            if (!fits) {
                CHECK(n == 0 && (cap == 0 || buf[0] == '\0'));
                break;
            }
            CHECK(n == need - 2);
            if (cap) {
                size_t copy = n < cap - 1 ? n : cap - 1;
                CHECK(memcmp(buf, at + 2, copy) == 0 && buf[copy] == '\0');
            }
            rp_packet_put_strn(pkt, (const char *)at + 2, n);
            break;
        }
        case OP_STRV:
        case OP_BLOB:
            v = op == OP_BLOB ? rp_reader_get_blob(&r, &n)
                              : (const uint8_t *)rp_reader_get_strv(&r, &n);
            CHECK(v != NULL);
            if (!fits) {
                CHECK(n == 0);
                break;
            }
            CHECK(n == need - 2 && v == at + 2);
            rp_packet_put_blob(pkt, v, n);
            break;
        case OP_BYTES: {
            uint8_t raw[16];
            rp_reader_get_bytes(&r, raw, arg);
            for (size_t k = 0; !fits && k < arg; k++)
                CHECK(raw[k] == 0);
            if (fits)
                rp_packet_put_bytes(pkt, raw, arg);
            break;
        }
        case OP_VIEW:
            v = rp_reader_view_bytes(&r, arg);
            CHECK(fits ? v == at : v == NULL);
            if (fits)
                rp_packet_put_bytes(pkt, v, arg);
            break;
        }

        if (fits) {
            off += need;
        } else {
            failed = 1;
            off = len;
        }
        CHECK(rp_reader_failed(&r) == failed);
        CHECK(rp_reader_remaining(&r) == len - off);
    }

    /* What was read, written back, is what was consumed. */
    CHECK(!rp_packet_failed(pkt));
    size_t consumed = rp_packet_size(pkt);
    CHECK(failed || consumed == off);
    CHECK(consumed == 0 || memcmp(rp_packet_payload(pkt), span, consumed) == 0);
    size_t wire_len;
    const uint8_t *wire = rp_packet_wire(pkt, &wire_len);
    CHECK(wire_len == consumed + 4);
    CHECK((size_t)(wire[0] | wire[1] << 8) == consumed);
    rp_packet_unref(pkt);
    return 0;
}
