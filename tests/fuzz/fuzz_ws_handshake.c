/*
 * Fuzz target for the WebSocket handshake parser. The input is the bytes
 * a client sent. The parser must never read past them, must answer
 * "need more" only below RP_WS_MAX_REQUEST bytes, must give one of its
 * three verdicts, and must give the same verdict to the request alone
 * (its own length) and to every longer prefix: a verdict never depends on
 * the bytes after the request. A 101 carries a 28-character accept value
 * and an Origin view inside the input. Any disagreement aborts.
 */
#include "proto/ws_handshake.h"

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
    /* An exact-size copy: ASan flags any read past it. */
    uint8_t *buf = malloc(size ? size : 1);
    CHECK(buf);
    if (size)
        memcpy(buf, data, size);
    struct rp_ws_request r;
    int n = rp_ws_handshake_parse(buf, size, &r);
    CHECK(n >= 0 && (size_t)n <= size && n <= (int)RP_WS_MAX_REQUEST);
    if (n == 0) {
        CHECK(size < RP_WS_MAX_REQUEST);
    } else {
        CHECK(r.status == 101 || r.status == 400 || r.status == 426);
        if (r.status == 101)
            CHECK(strlen(r.accept) == RP_WS_ACCEPT_SIZE - 1);
        if (r.origin)
            CHECK((const uint8_t *)r.origin >= buf &&
                  (const uint8_t *)r.origin + r.origin_len <= buf + n);
        bool allowed = rp_ws_origin_allowed("http://a.example, https://b",
                                            r.origin, r.origin_len);
        (void)allowed;
        char resp[RP_WS_MAX_RESPONSE];
        size_t rl = rp_ws_handshake_response(r.status, r.accept, resp);
        CHECK(rl > 0 && rl < RP_WS_MAX_RESPONSE);
        /* The request alone gets the same verdict (unless it was cut at
           the size limit, which is decided by the length itself). */
        if (n < (int)RP_WS_MAX_REQUEST) {
            struct rp_ws_request again;
            CHECK(rp_ws_handshake_parse(buf, (size_t)n, &again) == n);
            CHECK(again.status == r.status);
            CHECK(strcmp(again.accept, r.accept) == 0);
        }
    }
    /* Every shorter prefix either needs more or ends at the same place. */
    for (size_t cut = size > 64 ? size - 64 : 0; cut < size; cut++) {
        struct rp_ws_request p;
        int m = rp_ws_handshake_parse(buf, cut, &p);
        CHECK(m == 0 || m == n || (size_t)m <= cut);
    }
    free(buf);
    return 0;
}
