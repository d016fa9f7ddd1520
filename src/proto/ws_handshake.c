/*
 * The WebSocket opening handshake (src/proto/ws_handshake.h): a bounded
 * HTTP/1.1 request parser that knows only what RFC 6455 section 4.2.1
 * asks of a server, the Sec-WebSocket-Accept computation (SHA-1 and
 * base64, written here: see rp_sha1 in the header) and the responses.
 *
 * The parser never reads past 'len', never writes outside 'out', and
 * treats every byte as hostile: a request is at most RP_WS_MAX_REQUEST
 * bytes, header names are tokens, values may not contain control bytes,
 * and folded (obsolete) header lines are refused.
 */
#include "proto/ws_handshake.h"

#include <stdio.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- SHA-1 (FIPS 180-4) ------------------------------------------------ */

static uint32_t rol32(uint32_t v, unsigned n)
{
    return v << n | v >> (32 - n);
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t tmp = rol32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol32(b, 30);
        b = a;
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void rp_sha1(const void *data, size_t len, uint8_t digest[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                     0xC3D2E1F0};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        sha1_block(h, p);
    /* The tail, the 0x80 marker and the bit length: one or two blocks. */
    uint8_t last[128];
    memset(last, 0, sizeof last);
    if (left)
        memcpy(last, p, left);
    last[left] = 0x80;
    size_t n = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        last[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, last);
    if (n == 128)
        sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++) {
        digest[4 * i] = (uint8_t)(h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)h[i];
    }
}

/* ---- base64 ------------------------------------------------------------ */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t rp_base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(uint8_t c)
{
    const char *at = c ? memchr(b64, c, 64) : NULL;
    return at ? (int)(at - b64) : -1;
}

/* Whether 'v' is the canonical base64 of exactly 16 bytes: 22 characters,
   "==", and the unused low bits of the last character zero. */
static bool key_is_valid(const uint8_t *v, size_t len)
{
    if (len != 24 || v[22] != '=' || v[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (b64_value(v[i]) < 0)
            return false;
    return (b64_value(v[21]) & 0xF) == 0;
}

void rp_ws_accept_key(const char *key, size_t len, char out[RP_WS_ACCEPT_SIZE])
{
    uint8_t buf[RP_WS_MAX_REQUEST + sizeof WS_GUID];
    uint8_t digest[20];
    if (len > RP_WS_MAX_REQUEST)
        len = RP_WS_MAX_REQUEST;
    memcpy(buf, key, len);
    memcpy(buf + len, WS_GUID, sizeof WS_GUID - 1);
    rp_sha1(buf, len + sizeof WS_GUID - 1, digest);
    rp_base64_encode(digest, sizeof digest, out);
}

/* ---- the request --------------------------------------------------------- */

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool ieq(const uint8_t *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower((uint8_t)b[i]))
            return false;
    return true;
}

/* RFC 9110 tchar. */
static bool is_tchar(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Whether the comma list v[0, len) holds 'token' (case-insensitive). */
static bool list_has(const uint8_t *v, size_t len, const char *token)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t a = start, b = i;
        while (a < b && is_ows(v[a]))
            a++;
        while (b > a && is_ows(v[b - 1]))
            b--;
        if (ieq(v + a, b - a, token))
            return true;
        i++; /* past the comma */
    }
    return false;
}

/* The end of the header ("\r\n\r\n"), or 0. */
static size_t header_end(const uint8_t *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
            buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* "GET <target> HTTP/1.1" in line[0, len). */
static bool request_line_ok(const uint8_t *line, size_t len)
{
    static const char http11[] = " HTTP/1.1";
    size_t vlen = sizeof http11 - 1;
    if (len < 4 + 1 + vlen || memcmp(line, "GET ", 4) != 0 ||
        memcmp(line + len - vlen, http11, vlen) != 0)
        return false;
    /* The target: at least one byte, no space or control byte. */
    for (size_t i = 4; i < len - vlen; i++)
        if (line[i] <= ' ' || line[i] == 0x7f)
            return false;
    return true;
}

int rp_ws_handshake_parse(const uint8_t *buf, size_t len,
                          struct rp_ws_request *out)
{
    memset(out, 0, sizeof *out);
    out->status = 400;
    size_t scan = len < RP_WS_MAX_REQUEST ? len : RP_WS_MAX_REQUEST;
    size_t end = header_end(buf, scan);
    if (!end)
        return len >= RP_WS_MAX_REQUEST ? (int)RP_WS_MAX_REQUEST : 0;

    const uint8_t *key = NULL, *version = NULL;
    size_t key_len = 0, version_len = 0;
    bool host = false, upgrade = false, connection = false, bad = false;
    int keys = 0, versions = 0;
    size_t pos = 0, line_no = 0;
    /* Each line up to its "\r\n"; the last, empty one ends the header. */
    while (pos < end - 2 && !bad) {
        size_t eol = pos;
        while (buf[eol] != '\r' || buf[eol + 1] != '\n')
            eol++;
        const uint8_t *line = buf + pos;
        size_t llen = eol - pos;
        pos = eol + 2;
        if (line_no++ == 0) {
            bad = !request_line_ok(line, llen);
            continue;
        }
        size_t colon = 0;
        while (colon < llen && is_tchar(line[colon]))
            colon++;
        if (colon == 0 || colon == llen || line[colon] != ':') {
            bad = true; /* no name, a folded line, or junk in the name */
            break;
        }
        size_t a = colon + 1, b = llen;
        while (a < b && is_ows(line[a]))
            a++;
        while (b > a && is_ows(line[b - 1]))
            b--;
        for (size_t i = a; i < b; i++)
            if ((line[i] < ' ' && line[i] != '\t') || line[i] == 0x7f)
                bad = true;
        const uint8_t *v = line + a;
        size_t vlen = b - a;
        if (ieq(line, colon, "host")) {
            host = vlen > 0;
        } else if (ieq(line, colon, "upgrade")) {
            upgrade |= list_has(v, vlen, "websocket");
        } else if (ieq(line, colon, "connection")) {
            connection |= list_has(v, vlen, "upgrade");
        } else if (ieq(line, colon, "sec-websocket-key")) {
            keys++;
            key = v;
            key_len = vlen;
        } else if (ieq(line, colon, "sec-websocket-version")) {
            versions++;
            version = v;
            version_len = vlen;
        } else if (ieq(line, colon, "origin")) {
            out->origin = (const char *)v;
            out->origin_len = vlen;
        }
    }
    if (bad)
        return (int)end;
    /* A well-formed request for another version learns which one we
       speak (426); a missing or repeated version is malformed. */
    if (versions == 1 && !(version_len == 2 && memcmp(version, "13", 2) == 0)) {
        out->status = 426;
        return (int)end;
    }
    if (versions != 1 || !host || !upgrade || !connection || keys != 1 ||
        !key_is_valid(key, key_len))
        return (int)end;
    rp_ws_accept_key((const char *)key, key_len, out->accept);
    out->status = 101;
    return (int)end;
}

bool rp_ws_origin_allowed(const char *allow, const char *origin, size_t len)
{
    if (!allow || !*allow || !origin)
        return true;
    const char *p = allow;
    while (*p) {
        const char *q = p;
        while (*q && *q != ',')
            q++;
        const char *a = p, *b = q;
        while (a < b && is_ows((uint8_t)*a))
            a++;
        while (b > a && is_ows((uint8_t)b[-1]))
            b--;
        if ((size_t)(b - a) == len) {
            size_t i = 0;
            while (i < len && lower((uint8_t)a[i]) == lower((uint8_t)origin[i]))
                i++;
            if (i == len)
                return true;
        }
        p = *q ? q + 1 : q;
    }
    return false;
}

size_t rp_ws_handshake_response(int status, const char *accept, char *dst)
{
    int n;
    switch (status) {
    case 101:
        n = snprintf(dst, RP_WS_MAX_RESPONSE,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
        break;
    case 403:
        n = snprintf(dst, RP_WS_MAX_RESPONSE,
                     "HTTP/1.1 403 Forbidden\r\n"
                     "Connection: close\r\n"
                     "Content-Length: 0\r\n\r\n");
        break;
    case 426:
        n = snprintf(dst, RP_WS_MAX_RESPONSE,
                     "HTTP/1.1 426 Upgrade Required\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Connection: close\r\n"
                     "Content-Length: 0\r\n\r\n");
        break;
    default:
        n = snprintf(dst, RP_WS_MAX_RESPONSE,
                     "HTTP/1.1 400 Bad Request\r\n"
                     "Connection: close\r\n"
                     "Content-Length: 0\r\n\r\n");
        break;
    }
    return n > 0 ? (size_t)n : 0;
}
