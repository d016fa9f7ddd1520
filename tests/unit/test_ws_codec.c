/*
 * The WebSocket codec (src/proto/ws_handshake.c, ws_frame.c): SHA-1
 * against FIPS 180 vectors, the accept key against RFC 6455's example,
 * the handshake parser's verdicts, and the frame decoder's rules, events
 * and unmasking, with every stream also fed one byte at a time and in
 * 37-byte chunks. The
 * packet's WebSocket view is checked against the encoder at each length
 * class, and after a sole holder made the packet longer.
 */
#include "helpers.h"

#include "proto/ws_frame.h"
#include "proto/ws_handshake.h"
#include <ringport/packet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void sha1_matches_fips_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } v[] = {
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
         "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "a49b2446a02c645bf419f995b67091253a04a259"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t d[20];
        char h[41];
        rp_sha1(v[i].in, strlen(v[i].in), d);
        hex(d, 20, h);
        assert_string_equal(h, v[i].out);
    }
    /* A million 'a's: many blocks. */
    char *a = malloc(1000000);
    assert_non_null(a);
    memset(a, 'a', 1000000);
    uint8_t d[20];
    char h[41];
    rp_sha1(a, 1000000, d);
    hex(d, 20, h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(a);
}

static void accept_key_matches_the_rfc_example(void **state)
{
    (void)state;
    /* RFC 6455 section 1.3 (and 4.2.2); Python's hashlib agrees. */
    char acc[RP_WS_ACCEPT_SIZE];
    rp_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    char b[16];
    rp_base64_encode((const uint8_t *)"fo", 2, b);
    assert_string_equal(b, "Zm8=");
    rp_base64_encode((const uint8_t *)"foob", 4, b);
    assert_string_equal(b, "Zm9vYg==");
}

#define REQ_HEAD "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
#define REQ_OK                                                                 \
    REQ_HEAD "Upgrade: websocket\r\n"                                          \
             "Connection: Upgrade\r\n"                                         \
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                 \
             "Origin: http://example.com\r\n"                                  \
             "Sec-WebSocket-Version: 13\r\n\r\n"

static int parse(const char *req, struct rp_ws_request *out)
{
    return rp_ws_handshake_parse((const uint8_t *)req, strlen(req), out);
}

static void handshake_accepts_the_rfc_request(void **state)
{
    (void)state;
    struct rp_ws_request r;
    assert_int_equal(parse(REQ_OK, &r), (int)strlen(REQ_OK));
    assert_int_equal(r.status, 101);
    assert_string_equal(r.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(r.origin_len, strlen("http://example.com"));
    assert_memory_equal(r.origin, "http://example.com", r.origin_len);
    char resp[RP_WS_MAX_RESPONSE];
    size_t n = rp_ws_handshake_response(101, r.accept, resp);
    resp[n] = 0;
    assert_non_null(
        strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_memory_equal(resp, "HTTP/1.1 101 ", 13);
    /* Tokens in lists, any case; bytes after the request are not its. */
    const char *lists = "GET / HTTP/1.1\r\nhost: x\r\n"
                        "UPGRADE: foo, WebSocket\r\n"
                        "connection: keep-alive ,  upGRADE\r\n"
                        "sec-websocket-key:dGhlIHNhbXBsZSBub25jZQ==  \r\n"
                        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
                        "sec-websocket-version: 13\r\n\r\n\x82\x80";
    assert_int_equal(parse(lists, &r), (int)strlen(lists) - 2);
    assert_int_equal(r.status, 101);
    assert_null(r.origin);
}

static void handshake_waits_for_the_whole_header(void **state)
{
    (void)state;
    struct rp_ws_request r;
    size_t len = strlen(REQ_OK);
    for (size_t n = 0; n < len; n++)
        assert_int_equal(rp_ws_handshake_parse((const uint8_t *)REQ_OK, n, &r),
                         0);
}

static void handshake_refuses_malformed_requests(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        /* no Host */
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: "
        "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        /* no Upgrade token */
        REQ_HEAD
        "Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
        "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        /* "upgrade" only as a part of a token */
        REQ_HEAD "Upgrade: websocket\r\nConnection: upgraded\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        /* key of 15 bytes, key not base64, two keys, no key */
        REQ_HEAD "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZA=\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        REQ_HEAD "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        REQ_HEAD "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        REQ_HEAD "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        /* folded line, name with a space, control byte in a value */
        REQ_HEAD "Upgrade: websocket\r\n folded\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        REQ_HEAD "Up grade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        REQ_HEAD "Upgrade: web\x01socket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
        /* no version */
        REQ_HEAD "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        "\r\n\r\n",
        "GET  HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rp_ws_request r;
        int n = parse(bad[i], &r);
        if (n != (int)strlen(bad[i]) || r.status != 400)
            fail_msg("request %zu: %d, status %d", i, n, r.status);
    }
}

static void handshake_answers_426_for_another_version(void **state)
{
    (void)state;
    const char *req = REQ_HEAD "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 8\r\n\r\n";
    struct rp_ws_request r;
    assert_int_equal(parse(req, &r), (int)strlen(req));
    assert_int_equal(r.status, 426);
    char resp[RP_WS_MAX_RESPONSE];
    size_t n = rp_ws_handshake_response(426, NULL, resp);
    resp[n] = 0;
    assert_non_null(strstr(resp, "HTTP/1.1 426 "));
    assert_non_null(strstr(resp, "\r\nSec-WebSocket-Version: 13\r\n"));
}

static void handshake_refuses_an_oversized_request(void **state)
{
    (void)state;
    size_t len = RP_WS_MAX_REQUEST + 100;
    uint8_t *big = malloc(len);
    assert_non_null(big);
    memset(big, 'a', len);
    memcpy(big, REQ_HEAD, strlen(REQ_HEAD));
    struct rp_ws_request r;
    assert_int_equal(rp_ws_handshake_parse(big, RP_WS_MAX_REQUEST - 1, &r), 0);
    assert_int_equal(rp_ws_handshake_parse(big, RP_WS_MAX_REQUEST, &r),
                     (int)RP_WS_MAX_REQUEST);
    assert_int_equal(r.status, 400);
    /* An end just past the limit does not count. */
    memcpy(big + RP_WS_MAX_REQUEST - 2, "\r\n\r\n", 4);
    assert_int_equal(rp_ws_handshake_parse(big, len, &r),
                     (int)RP_WS_MAX_REQUEST);
    assert_int_equal(r.status, 400);
    free(big);
}

static void origin_allow_list_matches_whole_origins(void **state)
{
    (void)state;
    const char *list = "http://localhost:8080, https://Example.org";
    assert_true(rp_ws_origin_allowed(NULL, "http://x", 8));
    assert_true(rp_ws_origin_allowed("", "http://x", 8));
    assert_true(rp_ws_origin_allowed(list, NULL, 0));
    assert_true(rp_ws_origin_allowed(list, "http://localhost:8080", 21));
    assert_true(rp_ws_origin_allowed(list, "https://example.org", 19));
    assert_false(rp_ws_origin_allowed(list, "http://localhost:808", 20));
    assert_false(rp_ws_origin_allowed(list, "https://evil.org", 16));
}

/* ---- frames ------------------------------------------------------------ */

struct events {
    uint8_t data[70000];
    size_t data_len;
    int ends, pings, pongs, closes;
    uint8_t ctl[125];
    size_t ctl_len;
};

static int on_event(void *user, enum rp_ws_event ev, const uint8_t *p, size_t n)
{
    struct events *e = user;
    switch (ev) {
    case RP_WS_DATA:
        assert_true(e->data_len + n <= sizeof e->data);
        memcpy(e->data + e->data_len, p, n);
        e->data_len += n;
        break;
    case RP_WS_MESSAGE_END: e->ends++; break;
    case RP_WS_PING:
    case RP_WS_PONG:
    case RP_WS_CLOSE:
        e->pings += ev == RP_WS_PING;
        e->pongs += ev == RP_WS_PONG;
        e->closes += ev == RP_WS_CLOSE;
        memcpy(e->ctl, p, n);
        e->ctl_len = n;
        break;
    }
    return 0;
}

/* A masked client frame into 'out'; returns its size. */
static size_t client_frame(uint8_t *out, uint8_t b0, const uint8_t *payload,
                           size_t len)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t h = rp_ws_header(out, 0, len);
    out[0] = b0;
    out[1] |= 0x80;
    memcpy(out + h, key, 4);
    for (size_t i = 0; i < len; i++)
        out[h + 4 + i] = payload[i] ^ key[i & 3];
    return h + 4 + len;
}

/* Feeds 'stream' whole and byte by byte (copies: the decoder unmasks in
   place); both must give the same result, which is returned. */
static int feed_both(const uint8_t *stream, size_t len, uint64_t max,
                     struct events *e, uint16_t *code)
{
    uint8_t *copy = malloc(len + 1);
    assert_non_null(copy);
    struct rp_ws_decoder d;
    static struct events e2;
    memset(&e2, 0, sizeof e2);
    memcpy(copy, stream, len);
    rp_ws_decoder_init(&d, max);
    int whole = rp_ws_decoder_feed(&d, copy, len, on_event, e);
    uint16_t code1 = d.error;
    memcpy(copy, stream, len);
    rp_ws_decoder_init(&d, max);
    int r = 0;
    for (size_t i = 0; i < len && r == 0; i++)
        r = rp_ws_decoder_feed(&d, copy + i, 1, on_event, &e2);
    assert_int_equal(r, whole);
    assert_int_equal(d.error, code1);
    assert_int_equal(e2.data_len, e->data_len);
    assert_memory_equal(e2.data, e->data, e->data_len);
    assert_int_equal(e2.ends, e->ends);
    assert_int_equal(e2.pings + e2.pongs + e2.closes,
                     e->pings + e->pongs + e->closes);
    /* Chunks of 37 bytes: the word-wise unmasking starts at every key
       offset. */
    memset(&e2, 0, sizeof e2);
    memcpy(copy, stream, len);
    rp_ws_decoder_init(&d, max);
    r = 0;
    for (size_t i = 0; i < len && r == 0; i += 37)
        r = rp_ws_decoder_feed(&d, copy + i, len - i < 37 ? len - i : 37,
                               on_event, &e2);
    assert_int_equal(r, whole);
    assert_int_equal(e2.data_len, e->data_len);
    assert_memory_equal(e2.data, e->data, e->data_len);
    free(copy);
    *code = code1;
    return whole;
}

static void decoder_unmasks_and_reassembles_fragments(void **state)
{
    (void)state;
    static uint8_t payload[66000], stream[140000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    size_t n = 0;
    /* One short, one 16-bit, one 64-bit length; then a message in three
       fragments with a ping between them. */
    n += client_frame(stream + n, 0x82, payload, 5);
    n += client_frame(stream + n, 0x82, payload, 300);
    n += client_frame(stream + n, 0x82, payload, 65600);
    n += client_frame(stream + n, 0x02, payload, 10);
    n += client_frame(stream + n, 0x89, (const uint8_t *)"hi", 2);
    n += client_frame(stream + n, 0x00, payload + 10, 0);
    n += client_frame(stream + n, 0x80, payload + 10, 20);
    static struct events e;
    memset(&e, 0, sizeof e);
    uint16_t code;
    assert_int_equal(feed_both(stream, n, 70000, &e, &code), 0);
    assert_int_equal(code, 0);
    assert_int_equal(e.ends, 4);
    assert_int_equal(e.pings, 1);
    assert_int_equal(e.ctl_len, 2);
    assert_memory_equal(e.ctl, "hi", 2);
    assert_int_equal(e.data_len, 5 + 300 + 65600 + 30);
    assert_memory_equal(e.data, payload, 5);
    assert_memory_equal(e.data + 5, payload, 300);
    assert_memory_equal(e.data + 305, payload, 65600);
    assert_memory_equal(e.data + 65905, payload, 30);
}

static uint16_t error_of(const uint8_t *stream, size_t n, uint64_t max)
{
    static struct events e;
    memset(&e, 0, sizeof e);
    uint16_t code;
    int r = feed_both(stream, n, max, &e, &code);
    assert_int_equal(r, code ? -EPROTO : 0);
    return code;
}

static void decoder_enforces_the_rules(void **state)
{
    (void)state;
    uint8_t s[400], p[200];
    memset(p, 'x', sizeof p);
    /* Unmasked. */
    s[0] = 0x82;
    s[1] = 0x01;
    s[2] = 'a';
    assert_int_equal(error_of(s, 3, 1000), 1002);
    /* Text. */
    assert_int_equal(error_of(s, client_frame(s, 0x81, p, 3), 1000), 1003);
    /* Each RSV bit. */
    for (uint8_t rsv = 0x10; rsv <= 0x40; rsv <<= 1)
        assert_int_equal(error_of(s, client_frame(s, 0x82 | rsv, p, 3), 1000),
                         1002);
    /* Control frame of 126 bytes; fragmented ping. */
    assert_int_equal(error_of(s, client_frame(s, 0x89, p, 126), 1000), 1002);
    assert_int_equal(error_of(s, client_frame(s, 0x09, p, 3), 1000), 1002);
    /* Reserved opcodes. */
    assert_int_equal(error_of(s, client_frame(s, 0x83, p, 3), 1000), 1002);
    assert_int_equal(error_of(s, client_frame(s, 0x8B, p, 3), 1000), 1002);
    /* Continuation with nothing to continue; binary inside a message. */
    assert_int_equal(error_of(s, client_frame(s, 0x80, p, 3), 1000), 1002);
    size_t n = client_frame(s, 0x02, p, 3);
    n += client_frame(s + n, 0x82, p, 3);
    assert_int_equal(error_of(s, n, 1000), 1002);
    /* Over the message limit: one frame, and across fragments. */
    assert_int_equal(error_of(s, client_frame(s, 0x82, p, 101), 100), 1009);
    assert_int_equal(error_of(s, client_frame(s, 0x82, p, 100), 100), 0);
    n = client_frame(s, 0x02, p, 60);
    n += client_frame(s + n, 0x80, p, 41);
    assert_int_equal(error_of(s, n, 100), 1009);
    /* A 64-bit length with the top bit set. */
    uint8_t big[14] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    assert_int_equal(error_of(big, 14, 1000), 1002);
    /* Close payloads: 1 byte; a reserved code; a good one. */
    assert_int_equal(error_of(s, client_frame(s, 0x88, p, 1), 1000), 1002);
    uint8_t c1005[2] = {0x03, 0xED};
    assert_int_equal(error_of(s, client_frame(s, 0x88, c1005, 2), 1000), 1002);
    /* A close reason that is not UTF-8: a lone continuation byte, an
       overlong '/', a surrogate; and one that is (2, 3 and 4 bytes). */
    static const uint8_t bad_utf8[][5] = {{0x03, 0xE8, 0x80},
                                          {0x03, 0xE8, 0xC0, 0xAF},
                                          {0x03, 0xE8, 0xED, 0xA0, 0x80}};
    static const size_t bad_len[] = {3, 4, 5};
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            error_of(s, client_frame(s, 0x88, bad_utf8[i], bad_len[i]), 1000),
            1007);
    static const uint8_t good[] = {0x03, 0xE8, 0xC3, 0xA9, 0xE2, 0x82,
                                   0xAC, 0xF0, 0x9F, 0x8E, 0xAE};
    assert_int_equal(
        error_of(s, client_frame(s, 0x88, good, sizeof good), 1000), 0);
    uint8_t c1000[4] = {0x03, 0xE8, 'o', 'k'};
    static struct events e;
    memset(&e, 0, sizeof e);
    uint16_t code;
    assert_int_equal(
        feed_both(s, client_frame(s, 0x88, c1000, 4), 1000, &e, &code), 0);
    assert_int_equal(e.closes, 1);
    assert_int_equal(e.ctl_len, 4);
    assert_memory_equal(e.ctl, c1000, 4);
}

static void decoder_error_is_sticky(void **state)
{
    (void)state;
    uint8_t s[8] = {0x81, 0x80, 1, 2, 3, 4};
    struct rp_ws_decoder d;
    static struct events e;
    rp_ws_decoder_init(&d, 100);
    assert_int_equal(rp_ws_decoder_feed(&d, s, 6, on_event, &e), -EPROTO);
    assert_int_equal(d.error, 1003);
    uint8_t ok[8] = {0x82, 0x80, 1, 2, 3, 4};
    assert_int_equal(rp_ws_decoder_feed(&d, ok, 6, on_event, &e), -EPROTO);
    assert_int_equal(d.error, 1003);
}

static void encoder_uses_the_minimal_length(void **state)
{
    (void)state;
    uint8_t h[RP_WS_MAX_HEADER];
    assert_int_equal(rp_ws_header(h, 2, 125), 2);
    assert_int_equal(h[0], 0x82);
    assert_int_equal(h[1], 125);
    assert_int_equal(rp_ws_header(h, 2, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2] << 8 | h[3], 126);
    assert_int_equal(rp_ws_header(h, 2, 65535), 4);
    assert_int_equal(rp_ws_header(h, 2, 65536), 10);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 1);
}

static void packet_ws_view_matches_the_encoder(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 121, 122, 200, 65531, 65532, 65535};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct rp_packet *pkt;
        assert_int_equal(rp_packet_create(sizes[i], 77, &pkt), 0);
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal(rp_packet_put_u8(pkt, (uint8_t)k), 0);
        size_t wlen, len;
        const uint8_t *wire = rp_packet_wire(pkt, &wlen);
        const uint8_t *ws = rp__packet_ws_wire(pkt, &len);
        uint8_t h[RP_WS_MAX_HEADER];
        size_t hn = rp_ws_header(h, RP_WS_OP_BINARY, wlen);
        assert_int_equal(len, hn + wlen);
        assert_memory_equal(ws, h, hn);
        assert_ptr_equal(ws + hn, wire);
        rp_packet_unref(pkt);
    }
    /* Sent over WebSocket (the header written), then, a sole holder
       again, made longer: the next view has the new length. */
    struct rp_packet *pkt;
    assert_int_equal(rp_packet_create(300, 5, &pkt), 0);
    size_t len;
    const uint8_t *ws = rp__packet_ws_wire(pkt, &len);
    assert_int_equal(len, 2 + 4);
    assert_int_equal(ws[1], 4);
    for (int k = 0; k < 200; k++)
        assert_int_equal(rp_packet_put_u8(pkt, (uint8_t)k), 0);
    ws = rp__packet_ws_wire(pkt, &len);
    assert_int_equal(len, 4 + 4 + 200);
    assert_int_equal(ws[1], 126);
    assert_int_equal(ws[2] << 8 | ws[3], 204);
    rp_packet_unref(pkt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha1_matches_fips_vectors),
        cmocka_unit_test(accept_key_matches_the_rfc_example),
        cmocka_unit_test(handshake_accepts_the_rfc_request),
        cmocka_unit_test(handshake_waits_for_the_whole_header),
        cmocka_unit_test(handshake_refuses_malformed_requests),
        cmocka_unit_test(handshake_answers_426_for_another_version),
        cmocka_unit_test(handshake_refuses_an_oversized_request),
        cmocka_unit_test(origin_allow_list_matches_whole_origins),
        cmocka_unit_test(decoder_unmasks_and_reassembles_fragments),
        cmocka_unit_test(decoder_enforces_the_rules),
        cmocka_unit_test(decoder_error_is_sticky),
        cmocka_unit_test(encoder_uses_the_minimal_length),
        cmocka_unit_test(packet_ws_view_matches_the_encoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
