/*
 * libringport-client's WebSocket codec (client/ws_codec.c) against fixed
 * vectors: SHA-1 (FIPS 180-1 examples), base64 (RFC 4648 section 10), the
 * Sec-WebSocket-Accept of RFC 6455 section 1.3, the frames of RFC 6455
 * section 5.7, header lengths at the 125/126 and 65535/65536 edges, the
 * parse errors the RFC asks for, and the check of a server's 101.
 */
#include "helpers.h"

#include "ws_codec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void sha1_matches_fips_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    };
    uint8_t d[20];
    char h[41];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        rp__cws_sha1(v[i].in, strlen(v[i].in), d);
        hex(d, 20, h);
        assert_string_equal(h, v[i].out);
    }
    /* A million 'a': many blocks. */
    static uint8_t a[1000000];
    memset(a, 'a', sizeof a);
    rp__cws_sha1(a, sizeof a, d);
    hex(d, 20, h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

static void base64_matches_rfc4648(void **state)
{
    (void)state;
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    char b[16];
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(
            rp__cws_base64((const uint8_t *)in[i], strlen(in[i]), b),
            strlen(out[i]));
        assert_string_equal(b, out[i]);
    }
}

static void accept_matches_rfc6455_example(void **state)
{
    (void)state;
    char acc[RP_CWS_ACCEPT_LEN + 1], key[RP_CWS_KEY_LEN + 1];
    rp__cws_accept("dGhlIHNhbXBsZSBub25jZQ==", acc);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* The RFC's key is the base64 of "the sample nonce". */
    rp__cws_key((const uint8_t *)"the sample nonce", key);
    assert_string_equal(key, "dGhlIHNhbXBsZSBub25jZQ==");
}

static void headers_and_masking_match_rfc6455_examples(void **state)
{
    (void)state;
    /* 5.7: a masked "Hello" (text) with key 37 fa 21 3d. */
    static const uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t f[32];
    size_t h = rp__cws_header(f, RP_CWS_OP_TEXT, 5, key);
    assert_int_equal(h, 6);
    rp__cws_mask(f + h, (const uint8_t *)"Hello", 5, key);
    assert_memory_equal(f, want, sizeof want);

    /* Length edges: 125 in 7 bits, 126 and 65535 in 16, 65536 in 64. */
    assert_int_equal(rp__cws_header(f, 2, 125, key), 6);
    assert_int_equal(f[1], 0x80 | 125);
    assert_int_equal(rp__cws_header(f, 2, 126, key), 8);
    assert_int_equal(f[1], 0x80 | 126);
    assert_int_equal(f[2] << 8 | f[3], 126);
    assert_int_equal(rp__cws_header(f, 2, 65535, key), 8);
    assert_int_equal(f[2] << 8 | f[3], 65535);
    assert_int_equal(rp__cws_header(f, 2, 65536, key), 14);
    static const uint8_t l64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0};
    assert_memory_equal(f, l64, sizeof l64);
    assert_memory_equal(f + 10, key, 4);

    /* Masking in place, over lengths that exercise the 8-byte path and
       its tail, is its own inverse. */
    uint8_t buf[37], orig[37];
    for (size_t i = 0; i < sizeof buf; i++)
        orig[i] = buf[i] = (uint8_t)(i * 13 + 1);
    rp__cws_mask(buf, buf, sizeof buf, key);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], orig[i] ^ key[i % 4]);
    rp__cws_mask(buf, buf, sizeof buf, key);
    assert_memory_equal(buf, orig, sizeof buf);
}

static void parse_reads_rfc6455_examples(void **state)
{
    (void)state;
    struct rp__cws_frame f;
    /* 5.7: unmasked "Hello", its first fragment, an unmasked ping, a
       masked pong, 256 and 65536 byte binary headers. */
    static const uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    assert_int_equal(rp__cws_parse(hello, sizeof hello, &f), 2);
    assert_true(f.fin && !f.masked);
    assert_int_equal(f.opcode, RP_CWS_OP_TEXT);
    assert_int_equal(f.len, 5);
    static const uint8_t frag[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
    assert_int_equal(rp__cws_parse(frag, sizeof frag, &f), 2);
    assert_false(f.fin);
    static const uint8_t ping[] = {0x89, 0x05};
    assert_int_equal(rp__cws_parse(ping, 2, &f), 2);
    assert_int_equal(f.opcode, RP_CWS_OP_PING);
    static const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d};
    assert_int_equal(rp__cws_parse(pong, 5, &f), 0); /* key cut */
    assert_int_equal(rp__cws_parse(pong, 6, &f), 6);
    assert_true(f.masked);
    assert_memory_equal(f.mask, pong + 2, 4);
    static const uint8_t b256[] = {0x82, 0x7E, 0x01, 0x00};
    assert_int_equal(rp__cws_parse(b256, 3, &f), 0);
    assert_int_equal(rp__cws_parse(b256, 4, &f), 4);
    assert_int_equal(f.len, 256);
    static const uint8_t b64k[] = {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0};
    assert_int_equal(rp__cws_parse(b64k, 9, &f), 0);
    assert_int_equal(rp__cws_parse(b64k, 10, &f), 10);
    assert_int_equal(f.len, 65536);
}

static void parse_refuses_what_rfc6455_forbids(void **state)
{
    (void)state;
    struct rp__cws_frame f;
    static const uint8_t bad[][10] = {
        {0xC2, 0x00},                               /* RSV1 */
        {0x83, 0x00},                               /* opcode 3 (reserved) */
        {0x8B, 0x00},                               /* opcode 11 (reserved) */
        {0x09, 0x00},                               /* fragmented ping */
        {0x89, 0x7E, 0x00, 0x7E},                   /* ping of 126 bytes */
        {0x82, 0x7E, 0x00, 0x10},                   /* 16 in 16 bits */
        {0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, /* 65535 in 64 */
        {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0},    /* top bit set */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rp__cws_parse(bad[i], 10, &f), -EPROTO);
    assert_int_equal(rp__cws_parse(bad[0], 1, &f), 0);
}

static void response_check_wants_101_and_the_right_accept(void **state)
{
    (void)state;
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    static const char good[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "upgrade: WebSocket\r\n"
        "Connection: keep-alive, Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n\x82\x00";
    size_t gl = sizeof good - 1; /* with the two bytes of a frame */
    assert_int_equal(rp__cws_response(good, gl, key), (int)gl - 2);
    for (size_t cut = 0; cut < gl - 2; cut++)
        assert_int_equal(rp__cws_response(good, cut, key), 0);
    static const char *bad[] = {
        "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo_\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rp__cws_response(bad[i], strlen(bad[i]), key),
                         -EPROTO);
    /* No end within 4 KiB. */
    static char big[RP_CWS_MAX_RESPONSE + 10];
    memset(big, 'x', sizeof big);
    memcpy(big, "HTTP/1.1 101 x\r\n", 16);
    assert_int_equal(rp__cws_response(big, sizeof big, key), -EPROTO);
    assert_int_equal(rp__cws_response(big, RP_CWS_MAX_RESPONSE - 1, key), 0);

    /* The request carries what the server checks. */
    char req[512];
    int n = rp__cws_request(req, sizeof req, "127.0.0.1", 7001, "/", key);
    assert_true(n > 0);
    assert_non_null(strstr(req, "GET / HTTP/1.1\r\nHost: 127.0.0.1:7001\r\n"));
    assert_non_null(strstr(req, "Sec-WebSocket-Key: "
                                "dGhlIHNhbXBsZSBub25jZQ==\r\n"));
    assert_int_equal(rp__cws_request(req, 40, "127.0.0.1", 1, "/", key),
                     -ENOSPC);
    assert_true(rp__cws_request(req, sizeof req, "::1", 7001, "/x", key) > 0);
    assert_non_null(strstr(req, "GET /x HTTP/1.1\r\nHost: [::1]:7001\r\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha1_matches_fips_vectors),
        cmocka_unit_test(base64_matches_rfc4648),
        cmocka_unit_test(accept_matches_rfc6455_example),
        cmocka_unit_test(headers_and_masking_match_rfc6455_examples),
        cmocka_unit_test(parse_reads_rfc6455_examples),
        cmocka_unit_test(parse_refuses_what_rfc6455_forbids),
        cmocka_unit_test(response_check_wants_101_and_the_right_accept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
