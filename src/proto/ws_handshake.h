/*
 * The WebSocket opening handshake (RFC 6455 section 4), server side, as a
 * pure codec: bytes in, a verdict and the response bytes out. No I/O, no
 * allocation, no state between calls; the server (src/net/ws_session.c)
 * keeps the request bytes and calls the parser again as more arrive.
 *
 * Why the engine has its own: libwebsockets owns its own event loop, and
 * wslay copies every queued message (wslay_event_queue_msg "makes a copy"),
 * which would turn a broadcast's one shared packet into one copy per
 * session. A handshake is a few dozen lines of bounded parsing on top of
 * the engine's own I/O.
 *
 * Rules (the parser's verdict, out->status):
 *   101  GET, HTTP/1.1, Host, Upgrade naming "websocket" and Connection
 *        naming "upgrade" (case-insensitive tokens, comma lists),
 *        Sec-WebSocket-Key the base64 of exactly 16 bytes (given once),
 *        Sec-WebSocket-Version 13; out->accept holds Sec-WebSocket-Accept.
 *   426  a well-formed request for another version (the response names
 *        version 13).
 *   400  anything malformed, or no end of header within
 *        RP_WS_MAX_REQUEST bytes.
 * The Origin allow-list (403) is the caller's choice: the parser only
 * hands the Origin over. permessage-deflate and subprotocols are declined
 * by not echoing them (docs/protocol.md "WebSocket mapping" says why).
 */
#ifndef RP_PROTO_WS_HANDSHAKE_H
#define RP_PROTO_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest request accepted, header included. */
#define RP_WS_MAX_REQUEST 4096u
/* Base64 of a SHA-1 (28 characters) plus a NUL. */
#define RP_WS_ACCEPT_SIZE 29u
/* Room for any response rp_ws_handshake_response writes. */
#define RP_WS_MAX_RESPONSE 256u

struct rp_ws_request {
    int status;                     /* 101, 400 or 426 */
    char accept[RP_WS_ACCEPT_SIZE]; /* 101: Sec-WebSocket-Accept */
    const char *origin;             /* view into the request, or NULL */
    size_t origin_len;
};

/*
 * Looks at the first 'len' bytes received on a connection. Returns 0 when
 * the header is not complete yet (and len < RP_WS_MAX_REQUEST: wait for
 * more), or the request's length in bytes (> 0: bytes after it are the
 * first WebSocket frames) with out->status set. A request with no end
 * within RP_WS_MAX_REQUEST bytes returns RP_WS_MAX_REQUEST with status
 * 400. Thread: any; touches nothing but its arguments.
 */
int rp_ws_handshake_parse(const uint8_t *buf, size_t len,
                          struct rp_ws_request *out);

/*
 * Whether 'origin' may connect under 'allow', a comma-separated list of
 * origins ("http://localhost:8080, https://example.org"), compared
 * case-insensitively. A NULL or empty list allows every origin; a request
 * without an Origin (a non-browser client: the header is a browser's
 * promise, not an authentication) is allowed too.
 */
bool rp_ws_origin_allowed(const char *allow, const char *origin, size_t len);

/*
 * Writes the response for 'status' (101 with 'accept', 400, 403 or 426)
 * into 'dst' (at least RP_WS_MAX_RESPONSE bytes). Returns its length.
 */
size_t rp_ws_handshake_response(int status, const char *accept, char *dst);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC's GUID)).
   'out' gets 28 characters and a NUL. */
void rp_ws_accept_key(const char *key, size_t len, char out[RP_WS_ACCEPT_SIZE]);

/* SHA-1 (FIPS 180-4) of 'len' bytes into 'digest'. Hand-written because
   the engine links only liburing and pthreads: no crypto library is in
   its build set, and the handshake needs nothing else from one. Not for
   security use: the handshake's hash only proves the server read the key. */
void rp_sha1(const void *data, size_t len, uint8_t digest[20]);

/* Base64 (RFC 4648, with padding) of 'len' bytes into 'out'
   (4 * ceil(len / 3) characters and a NUL). Returns the characters. */
size_t rp_base64_encode(const uint8_t *in, size_t len, char *out);

#endif
