/*
 * RFC 6455 for the client, as pure functions (ws_codec.h): the handshake's
 * key, request and answer check, frame headers and masking.
 *
 * Why a SHA-1 of our own: libringport-client depends on libc alone (no
 * OpenSSL), and it may not link the engine's internals, so the engine's
 * SHA-1 (src/proto/) cannot be called from here. SHA-1 is only used to
 * check the server's Sec-WebSocket-Accept (not for security), and FIPS
 * 180-1 fits in forty lines.
 */
#include "ws_codec.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static uint32_t rol(uint32_t x, unsigned n)
{
    return x << n | x >> (32 - n);
}

static void sha1_block(uint32_t h[5], const uint8_t *b)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (bb & c) | (~bb & d), k = 0x5A827999;
        else if (i < 40)
            f = bb ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60)
            f = (bb & c) | (bb & d) | (c & d), k = 0x8F1BBCDC;
        else
            f = bb ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(bb, 30), bb = a, a = t;
    }
    h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e;
}

void rp__cws_sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                     0xC3D2E1F0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; p += 64, left -= 64)
        sha1_block(h, p);
    /* The tail, the 0x80 marker and the bit length: one or two blocks. */
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tlen = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < tlen; off += 64)
        sha1_block(h, tail + off);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

size_t rp__cws_base64(const uint8_t *in, size_t len, char *out)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? abc[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

void rp__cws_key(const uint8_t rnd[16], char key[RP_CWS_KEY_LEN + 1])
{
    rp__cws_base64(rnd, 16, key);
}

void rp__cws_accept(const char *key, char out[RP_CWS_ACCEPT_LEN + 1])
{
    char buf[128];
    uint8_t digest[20];
    int n = snprintf(buf, sizeof buf, "%s" WS_GUID, key);
    if (n < 0 || (size_t)n >= sizeof buf)
        n = 0; /* a key this long never matches: the check fails */
    rp__cws_sha1(buf, (size_t)n, digest);
    rp__cws_base64(digest, sizeof digest, out);
}

int rp__cws_request(char *out, size_t cap, const char *host, unsigned port,
                    const char *path, const char *key)
{
    /* An IPv6 literal goes in brackets (RFC 3986 3.2.2). */
    int v6 = strchr(host, ':') != NULL;
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s%s%s:%u\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     path, v6 ? "[" : "", host, v6 ? "]" : "", port, key);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

/* Does the comma-separated header value 'v' (length n) hold 'token'? */
static int has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return 1;
    }
    return 0;
}

int rp__cws_response(const char *p, size_t n, const char *key)
{
    size_t end = 0;
    for (size_t i = 3; i < n && i < RP_CWS_MAX_RESPONSE; i++)
        if (memcmp(p + i - 3, "\r\n\r\n", 4) == 0) {
            end = i + 1;
            break;
        }
    if (!end)
        return n >= RP_CWS_MAX_RESPONSE ? -EPROTO : 0;
    /* Status line: "HTTP/1.1 101 ..." */
    if (end < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0 ||
        (p[12] != ' ' && p[12] != '\r'))
        return -EPROTO;
    char want[RP_CWS_ACCEPT_LEN + 1];
    rp__cws_accept(key, want);
    int upgrade = 0, connection = 0, accept = 0;
    const char *line = (const char *)memchr(p, '\n', end) + 1;
    while (line < p + end - 2) {
        const char *eol = memchr(line, '\n', (size_t)(p + end - line));
        if (!eol)
            return -EPROTO;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            return -EPROTO;
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = (size_t)(eol - v);
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
            vl--;
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(line, name, nl) == 0)
        if (IS("Upgrade"))
            upgrade = has_token(v, vl, "websocket");
        else if (IS("Connection"))
            connection = has_token(v, vl, "Upgrade");
        else if (IS("Sec-WebSocket-Accept"))
            accept = vl == RP_CWS_ACCEPT_LEN && memcmp(v, want, vl) == 0;
        else if (IS("Sec-WebSocket-Extensions") || IS("Sec-WebSocket-Protocol"))
            return -EPROTO; /* we asked for none (RFC 6455 4.1) */
#undef IS
        line = eol + 1;
    }
    return upgrade && connection && accept ? (int)end : -EPROTO;
}

size_t rp__cws_header(uint8_t *h, unsigned opcode, uint64_t len,
                      const uint8_t mask[4])
{
    size_t n = 2;
    h[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (len < 126) {
        h[1] = (uint8_t)(0x80 | len);
    } else if (len <= 0xFFFF) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    memcpy(h + n, mask, 4);
    return n + 4;
}

void rp__cws_mask(uint8_t *dst, const uint8_t *src, size_t len,
                  const uint8_t mask[4])
{
    /* Eight bytes at a time: the key repeats every four, so a 64-bit word
       of it lines up with every aligned-to-the-start eight bytes. */
    uint64_t k8;
    uint8_t kb[8];
    for (int i = 0; i < 8; i++)
        kb[i] = mask[i & 3];
    memcpy(&k8, kb, 8);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k8;
        memcpy(dst + i, &v, 8);
    }
    for (; i < len; i++)
        dst[i] = src[i] ^ mask[i & 3];
}

int rp__cws_parse(const uint8_t *p, size_t n, struct rp__cws_frame *f)
{
    if (n < 2)
        return 0;
    f->fin = p[0] >> 7;
    f->opcode = p[0] & 0x0F;
    f->masked = p[1] >> 7;
    if (p[0] & 0x70)
        return -EPROTO; /* RSV: no extension was agreed */
    int control = f->opcode >= 0x8;
    if (f->opcode > RP_CWS_OP_BINARY && !control)
        return -EPROTO;
    if (f->opcode > RP_CWS_OP_PONG)
        return -EPROTO;
    unsigned l7 = p[1] & 0x7F, hl = 2;
    uint64_t len = l7;
    if (l7 == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
        if (len < 126)
            return -EPROTO;
    } else if (l7 == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        hl = 10;
        if (len >> 63 || len <= 0xFFFF)
            return -EPROTO;
    }
    if (control && (len > RP_CWS_MAX_CONTROL || !f->fin))
        return -EPROTO;
    if (f->masked) {
        if (n < hl + 4)
            return 0;
        memcpy(f->mask, p + hl, 4);
        hl += 4;
    }
    f->len = len;
    f->hdr_len = hl;
    return (int)hl;
}
