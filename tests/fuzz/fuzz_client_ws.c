/*
 * Fuzz target for libringport-client's WebSocket codec (client/ws_codec.c):
 * what a server sends the client. The input is checked as a handshake
 * answer (rp__cws_response with a fixed key: a whole, good answer's length
 * never passes the input), then as a stream of server frames: each header
 * rp__cws_parse accepts is at most RP_CWS_MAX_HEADER bytes, within the
 * input, control frames are short and whole, and writing the same header
 * back (rp__cws_header, masked) gives a header that parses to the same
 * opcode and length. 0 ("more bytes") only comes for a truncated header.
 * Any disagreement aborts.
 */
#include "ws_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int r =
        rp__cws_response((const char *)data, size, "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK(r == 0 || r == -EPROTO || (r > 0 && (size_t)r <= size));

    size_t pos = 0;
    while (pos < size) {
        struct rp__cws_frame f, g;
        int h = rp__cws_parse(data + pos, size - pos, &f);
        if (h == 0) {
            CHECK(size - pos < RP_CWS_MAX_HEADER);
            break;
        }
        if (h < 0) {
            CHECK(h == -EPROTO);
            break;
        }
        CHECK((size_t)h <= size - pos && h <= RP_CWS_MAX_HEADER);
        CHECK((unsigned)h == f.hdr_len);
        if (f.opcode >= RP_CWS_OP_CLOSE)
            CHECK(f.len <= RP_CWS_MAX_CONTROL && f.fin);
        if (f.fin) {
            uint8_t hdr[RP_CWS_MAX_HEADER];
            static const uint8_t key[4] = {1, 2, 3, 4};
            size_t n = rp__cws_header(hdr, f.opcode, f.len, key);
            CHECK(rp__cws_parse(hdr, n, &g) == (int)n);
            CHECK(g.opcode == f.opcode && g.len == f.len && g.masked);
            CHECK(memcmp(g.mask, key, 4) == 0);
        }
        pos += (size_t)h;
        if (f.len >= size - pos)
            break;
        pos += (size_t)f.len;
    }
    return 0;
}
