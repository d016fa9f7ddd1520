/*
 * Fuzz target for the framing decoder. The input's first bytes choose the
 * limits and a list of chunk sizes; the rest is a byte stream. The stream is
 * decoded three ways: by the stateless parser in a loop, by a decoder fed
 * the whole stream at once, and by a decoder fed it in the chosen chunks.
 * All three must give the same frames and the same final error, and the
 * decoders must copy exactly the frames they were made to cut. Any
 * disagreement aborts.
 *
 * Input layout: [0..1] max payload (LE, 0 = default), [2] bit 0 reject
 * empty payloads, [3] type_min, [4] type_max (0 = no type check), [5]
 * number of chunk sizes (mod 17), then that many chunk sizes (one byte
 * each, used in turn, 0 = an empty feed), then the stream.
 */
#include "proto/frame.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

/* Every frame appended as type, length, payload. */
struct log {
    uint8_t *bytes;
    size_t len;
    size_t cap;
};

static int log_frame(void *user, const struct rp_frame *f)
{
    struct log *l = user;
    CHECK(l->len + 4 + f->len <= l->cap);
    memcpy(l->bytes + l->len, &f->type, 2);
    memcpy(l->bytes + l->len + 2, &f->len, 2);
    if (f->len)
        memcpy(l->bytes + l->len + 4, f->payload, f->len);
    l->len += 4 + f->len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    struct rp_frame_limits lim = {
        .max_payload = (uint32_t)(data[0] | data[1] << 8),
        .reject_empty = data[2] & 1,
        .type_min = data[3],
        .type_max = data[4],
    };
    if (lim.type_max != 0 && lim.type_min > lim.type_max)
        lim.type_min = lim.type_max;
    size_t nsplits = data[5] % 17;
    data += 6;
    size -= 6;
    if (nsplits > size)
        nsplits = size;
    const uint8_t *splits = data;
    const uint8_t *stream = data + nsplits;
    size_t len = size - nsplits;

    /* Frames are never larger than the stream, plus 4 log bytes each. */
    size_t cap = 2 * len + 8;
    struct log ref = {malloc(cap), 0, cap};
    struct log whole = {malloc(cap), 0, cap};
    struct log split = {malloc(cap), 0, cap};
    CHECK(ref.bytes && whole.bytes && split.bytes);

    /* 1. The stateless parser, frame after frame. */
    size_t at = 0;
    int ref_err = 0;
    for (;;) {
        struct rp_frame f;
        int rc = rp_frame_parse(stream + at, len - at, &lim, &f);
        if (rc < 0)
            ref_err = rc;
        if (rc <= 0)
            break;
        CHECK(f.len <= rp_frame_max_payload(&lim));
        CHECK(f.payload == stream + at + 4);
        log_frame(&ref, &f);
        at += (size_t)rc;
    }
    size_t tail = ref_err ? 0 : len - at;

    /* 2. One feed: only the tail may be copied. */
    struct rp_frame_decoder d;
    CHECK(rp_frame_decoder_init(&d, &lim) == 0);
    int rc = rp_frame_decoder_feed(&d, stream, len, log_frame, &whole);
    CHECK(ref_err ? rc == ref_err : rc >= 0);
    CHECK(whole.len == ref.len && memcmp(whole.bytes, ref.bytes, ref.len) == 0);
    CHECK(rp_frame_decoder_pending(&d) == tail);
    CHECK(d.copied == tail);
    rp_frame_decoder_destroy(&d);

    /* 3. The chosen chunks, used in turn. */
    int all_empty = 1;
    for (size_t i = 0; i < nsplits; i++)
        all_empty &= splits[i] == 0;
    CHECK(rp_frame_decoder_init(&d, &lim) == 0);
    size_t pos = 0;
    for (size_t i = 0; pos < len || i == 0; i++) {
        size_t n = nsplits && !all_empty ? splits[i % nsplits] : len;
        if (n > len - pos)
            n = len - pos;
        rc = rp_frame_decoder_feed(&d, stream + pos, n, log_frame, &split);
        CHECK(rc == d.error || (rc >= 0 && d.error == 0));
        pos += n;
        if (rc < 0)
            break;
    }
    CHECK(d.error == ref_err);
    CHECK(split.len == ref.len && memcmp(split.bytes, ref.bytes, ref.len) == 0);
    if (!ref_err)
        CHECK(rp_frame_decoder_pending(&d) == tail);
    CHECK(d.cap <= RP_FRAME_HEADER_SIZE + rp_frame_max_payload(&lim));
    rp_frame_decoder_destroy(&d);

    free(ref.bytes);
    free(whole.bytes);
    free(split.bytes);
    return 0;
}
