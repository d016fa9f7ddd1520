/*
 * Fuzz target for the WebSocket frame decoder. The input's first bytes
 * choose the message limit and a list of chunk sizes; the rest is the
 * client's byte stream. It is decoded twice, fed whole and fed in the
 * chosen chunks; both must give the same events (kinds and unmasked
 * bytes) and the same close code, no binary message may pass the limit,
 * no control payload may pass 125 bytes, and a message end must follow
 * its data. Any disagreement aborts.
 *
 * Input layout: [0..1] message limit (LE, 0 = 65536), [2] number of chunk
 * sizes (mod 17), then that many chunk sizes (one byte each, used in turn,
 * 0 = an empty feed), then the stream.
 */
#include "proto/ws_frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

/* Every event appended as kind, length (u32), bytes. */
struct log {
    uint8_t *bytes;
    size_t len, cap;
    uint64_t max;    /* the message limit */
    uint64_t in_msg; /* bytes of the current binary message */
};

static int log_event(void *user, enum rp_ws_event ev, const uint8_t *p,
                     size_t n)
{
    struct log *l = user;
    CHECK(l->len + 5 + n <= l->cap);
    if (ev == RP_WS_DATA) {
        l->in_msg += n;
        CHECK(l->in_msg <= l->max);
    } else if (ev == RP_WS_MESSAGE_END) {
        CHECK(n == 0);
        l->in_msg = 0;
    } else {
        CHECK(n <= RP_WS_MAX_CONTROL);
    }
    l->bytes[l->len] = (uint8_t)ev;
    memcpy(l->bytes + l->len + 1, &(uint32_t){(uint32_t)n}, 4);
    if (n)
        memcpy(l->bytes + l->len + 5, p, n);
    l->len += 5 + n;
    return 0;
}

/* Merges adjacent DATA records, which depend on how the stream was cut. */
static size_t normalize(uint8_t *b, size_t len)
{
    size_t in = 0, out = 0, last_data = (size_t)-1;
    while (in < len) {
        uint8_t ev = b[in];
        uint32_t n;
        memcpy(&n, b + in + 1, 4);
        if (ev == RP_WS_DATA && last_data != (size_t)-1) {
            uint32_t m;
            memcpy(&m, b + last_data + 1, 4);
            memmove(b + out, b + in + 5, n);
            m += n;
            memcpy(b + last_data + 1, &m, 4);
            out += n;
        } else {
            memmove(b + out, b + in, 5 + n);
            last_data = ev == RP_WS_DATA ? out : (size_t)-1;
            out += 5 + n;
        }
        in += 5 + n;
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint64_t max = (uint64_t)(data[0] | data[1] << 8);
    if (max == 0)
        max = 65536;
    size_t nsplits = data[2] % 17;
    data += 3;
    size -= 3;
    if (nsplits > size)
        nsplits = size;
    const uint8_t *splits = data;
    const uint8_t *stream = data + nsplits;
    size_t len = size - nsplits;

    /* A record is 5 bytes plus its payload; fed a byte at a time, every
       payload byte may be a record of its own. */
    size_t cap = 6 * len + 64;
    struct log whole = {malloc(cap), 0, cap, max, 0};
    struct log split = {malloc(cap), 0, cap, max, 0};
    uint8_t *copy = malloc(len ? len : 1);
    CHECK(whole.bytes && split.bytes && copy);

    struct rp_ws_decoder d;
    memcpy(copy, stream, len);
    rp_ws_decoder_init(&d, max);
    int rc = rp_ws_decoder_feed(&d, copy, len, log_event, &whole);
    CHECK(rc == 0 || (rc == -EPROTO && d.error != 0));
    uint16_t code = d.error;
    CHECK(code == 0 || code == 1002 || code == 1003 || code == 1007 ||
          code == 1009);

    int all_empty = 1;
    for (size_t i = 0; i < nsplits; i++)
        all_empty &= splits[i] == 0;
    memcpy(copy, stream, len);
    rp_ws_decoder_init(&d, max);
    size_t pos = 0;
    for (size_t i = 0; pos < len || i == 0; i++) {
        size_t n = nsplits && !all_empty ? splits[i % nsplits] : len;
        if (n > len - pos)
            n = len - pos;
        rc = rp_ws_decoder_feed(&d, copy + pos, n, log_event, &split);
        pos += n;
        if (rc < 0)
            break;
    }
    CHECK(d.error == code);
    whole.len = normalize(whole.bytes, whole.len);
    split.len = normalize(split.bytes, split.len);
    CHECK(whole.len == split.len &&
          memcmp(whole.bytes, split.bytes, whole.len) == 0);
    free(whole.bytes);
    free(split.bytes);
    free(copy);
    return 0;
}
