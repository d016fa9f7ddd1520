/*
 * The client's side of RFC 6455 as pure functions: SHA-1 and base64 for
 * the Sec-WebSocket-Accept check, the upgrade request and the check of
 * the server's 101, frame headers (written with a mask key, read from the
 * server unmasked) and the masking XOR. No I/O and no state: client.c
 * (the transport) and ringport-bench's echo loop (tools/bench/loop.c, on
 * its hot path) both build on them, and tests/unit/test_client_ws.c checks
 * them against fixed vectors (RFC 6455 section 1.3 and 5.7, FIPS 180-1).
 *
 * Internal to libringport-client: hidden in its shared library, reachable
 * by the static library's users in this repository only.
 */
#ifndef RINGPORT_CLIENT_WS_CODEC_H
#define RINGPORT_CLIENT_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define RP_CWS_OP_CONT 0x0
#define RP_CWS_OP_TEXT 0x1
#define RP_CWS_OP_BINARY 0x2
#define RP_CWS_OP_CLOSE 0x8
#define RP_CWS_OP_PING 0x9
#define RP_CWS_OP_PONG 0xA

#define RP_CWS_KEY_LEN 24    /* base64 of 16 random bytes */
#define RP_CWS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
#define RP_CWS_MAX_HEADER 14 /* 2 + 8 (64-bit length) + 4 (mask key) */
#define RP_CWS_MAX_CONTROL 125
#define RP_CWS_MAX_RESPONSE 4096 /* the server's 101, headers included */

/* SHA-1 (FIPS 180-1) of data[0, len) into out. */
void rp__cws_sha1(const void *data, size_t len, uint8_t out[20]);

/* Standard base64 with padding of in[0, len) into out, NUL-terminated;
   returns the characters written (4 * ceil(len / 3)). */
size_t rp__cws_base64(const uint8_t *in, size_t len, char *out);

/* Sec-WebSocket-Key (RP_CWS_KEY_LEN chars + NUL) from 16 random bytes. */
void rp__cws_key(const uint8_t rnd[16], char key[RP_CWS_KEY_LEN + 1]);

/* The Sec-WebSocket-Accept a server must answer to 'key':
   base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")). */
void rp__cws_accept(const char *key, char out[RP_CWS_ACCEPT_LEN + 1]);

/* Writes the upgrade request for ws://host:port/path into out (cap bytes).
   Returns its length, or -ENOSPC. */
int rp__cws_request(char *out, size_t cap, const char *host, unsigned port,
                    const char *path, const char *key);

/*
 * Looks for the end of the server's handshake response in p[0, n).
 * Returns the response's length (up to and with the blank line) once it is
 * whole and good (status 101, Upgrade: websocket, Connection: Upgrade, the
 * right Sec-WebSocket-Accept, no extension we did not ask for), 0 if more
 * bytes are needed, or -EPROTO (a wrong answer, or none within
 * RP_CWS_MAX_RESPONSE bytes).
 */
int rp__cws_response(const char *p, size_t n, const char *key);

/* Writes a FIN frame header with the mask bit and 'mask' into h
   (RP_CWS_MAX_HEADER bytes); returns its length (6, 8 or 14). */
size_t rp__cws_header(uint8_t *h, unsigned opcode, uint64_t len,
                      const uint8_t mask[4]);

/* dst[i] = src[i] ^ mask[i % 4] for i in [0, len); dst may be src. */
void rp__cws_mask(uint8_t *dst, const uint8_t *src, size_t len,
                  const uint8_t mask[4]);

struct rp__cws_frame {
    unsigned fin, opcode, masked;
    uint64_t len;     /* payload bytes */
    uint8_t mask[4];  /* when masked */
    unsigned hdr_len; /* header bytes, mask key included */
};

/*
 * Reads a frame header from p[0, n). Returns its length (> 0) with *f
 * filled, 0 if more bytes are needed, or -EPROTO: RSV bits set, an
 * unknown opcode, a control frame fragmented or over 125 bytes, or a
 * length with its top bit set or not in its shortest form.
 */
int rp__cws_parse(const uint8_t *p, size_t n, struct rp__cws_frame *f);

#endif
